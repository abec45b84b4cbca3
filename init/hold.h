/* PID 1 keeps every job's pipes open (the fds the server sends it) so that
 * a job survives a restart of the server, and keeps the exit status of a
 * job that ends while no server runs. A fixed table: PID 1 allocates
 * nothing after boot. */
#ifndef SBX_HOLD_H
#define SBX_HOLD_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/ctl.h"

#define HOLD_MAX 1280

/* CTL_JOB_HOLD: takes ownership of the fds (closes them if full). */
void hold_add(const struct ctl_msg *m, int *fds, int nfds);
void hold_status(pid_t pid, int status);
void hold_done(pid_t pid);
/* Fills the CTL_JOB_RESTORE message for the first held job after slot
 * `after` (-1: from the start), with its fds (still ours); false when
 * there is none. */
bool hold_next(long after, struct ctl_msg *m, int *fds, int *nfds);
/* A child reaped by PID 1: if it is a held job, its status is kept and
 * true returned. */
bool hold_reaped(pid_t pid, int status);

#endif
