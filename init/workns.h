/* The workloads' PID namespace. Every command (and the SSH server) is born
 * in one PID namespace shared by all workloads, so that a root workload
 * that mounts a procfs of its own sees only workloads there, never PID 1
 * or the server (whose oom_score_adj, say, it could otherwise write). Its
 * init is a small child of PID 1 that only reaps: commands are not each
 * the init of a namespace of their own, where the kernel would drop the
 * signals they do not handle (SIGTERM to a shell). The agent outside sees
 * every workload under its real pid. */
#ifndef SBX_WORKNS_H
#define SBX_WORKNS_H

#include <sys/types.h>

/* Starts the namespace's init; its pid and a descriptor of the namespace
 * (/proc/PID/ns/pid, close-on-exec) in *ns, or -errno. */
pid_t workns_start(int *ns);

#endif
