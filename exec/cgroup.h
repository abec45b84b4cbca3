/* The cgroup v2 subtree workloads run in (in a VM): memory.max leaves the
 * agent headroom, pids.max bounds forks, the cpu controller weighs them
 * together against the agent and each command as much as any other
 * (cgroup.c), and every command gets a child
 * cgroup of its own so that an out-of-memory kill can be told apart from
 * any other SIGKILL. PID 1 and the server stay in the root cgroup. */
#ifndef SBX_CGROUP_H
#define SBX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/config.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_WORKLOADS CGROUP_ROOT "/workloads"

/* Creates and limits the workloads cgroup; false when cgroups are not
 * used (development mode, or no cgroup2). */
bool cgroup_setup(const struct config *cfg);
/* The workloads' memory limit in bytes for a VM with `total` bytes:
 * total - min(total / 8, 128 MiB). */
uint64_t cgroup_memory_max(uint64_t total);
/* The workloads' pids.max when pids_max is not configured, for their
 * memory.max (0: unknown, CONFIG_PIDS_MAX). */
uint64_t cgroup_pids_auto(uint64_t memory_max);

/* A new cgroup for one command, whose pids.max leaves PIDS_RESERVE of the
 * workloads' to other commands: its id (for cgroup_done) and a directory
 * fd the command is spawned into (spawn_req.cgroup). Returns the fd, or
 * -errno (the command then runs without one). */
int cgroup_new(unsigned *id);
/* Did the kernel's OOM killer kill something in it? */
bool cgroup_oom_killed(unsigned id);
/* Removes it once empty (processes a command left behind keep it until
 * they end: it is retried later), and makes the next command's ahead of
 * it (cgroup_setup makes the first). */
void cgroup_done(unsigned id);

#endif
