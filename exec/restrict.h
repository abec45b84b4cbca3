/* What workloads may not do (docs/PROTOCOL.md, "Workload restrictions"):
 * a seccomp filter, built once when the server starts and installed in
 * each command before exec, that refuses with EPERM the system calls that
 * could take the VM or the agent down; and capabilities dropped from the
 * bounding set so that even root cannot read the agent's memory. */
#ifndef SBX_RESTRICT_H
#define SBX_RESTRICT_H

#include <stdbool.h>
#include <linux/filter.h>

/* Builds the filter (protecting pid 1, and `server` unless it is 0: the
 * workloads' PID namespace hides it); false when it is off
 * (the `seccomp` key) or cannot be built (then logged). */
bool restrict_init(bool enabled, int server);
/* The filter for spawn, or NULL. */
const struct sock_fprog *restrict_filter(void);
/* In the child, before dropping privileges: the capability drops and the
 * filter. 0 or -errno. Only system calls: safe after CLONE_VM. */
int restrict_apply(const struct sock_fprog *prog);

/* In the child, after it is in its cgroup, while still root: its own
 * cgroup namespace (rooted at that cgroup) and mount namespace, where
 * /sys/fs/cgroup is a read-only view of that cgroup only and /proc shows
 * only the processes the workload may trace (hidepid=ptraceable: not PID
 * 1, not the server), of the child's PID namespace (the workloads' one,
 * exec/spawn.c, where neither is). Mounts elsewhere stay shared with the agent (PID 1
 * makes / shared). 0 or -errno. Only system calls: safe after CLONE_VM. */
int restrict_confine(void);

#endif
