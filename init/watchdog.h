/* The lifetime watchdog, kept by PID 1: a deadline for a duration
 * lifetime, or a grace period that runs while a session-lifetime sandbox
 * has no session open. Both are timerfds on CLOCK_BOOTTIME: see
 * docs/PROTOCOL.md, "Lifetime", for why that clock. */
#ifndef SBX_WATCHDOG_H
#define SBX_WATCHDOG_H

#include <stdint.h>

#include "lib/config.h"
#include "lib/ctl.h"

/* Arms the timers from the configuration, at boot. */
void watchdog_init(const struct config *cfg);
/* The two timerfds to poll (-1 when unused): the deadline, the grace. */
int watchdog_deadline_fd(void);
int watchdog_grace_fd(void);
/* The number of open sessions changed (0 when the server died). */
void watchdog_sessions(unsigned n);
/* EXTEND and SET_LEFT: 0, or -errno with why filled in. */
int watchdog_extend(uint64_t seconds, char *why, size_t n);
int watchdog_set_left(uint64_t ns, char *why, size_t n);
/* A template's clone starts its own lifetime (kind LIFE_*, seconds; a
 * grace of 0 keeps the current one), counted from now. */
void watchdog_restart(uint32_t kind, uint64_t lifetime_s, uint64_t grace_s);
/* The CTL_LIFETIME message that describes the current state. */
void watchdog_describe(struct ctl_msg *m);

#endif
