/* PID 1's lifetime watchdog: see watchdog.h. */
#include "init/watchdog.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vsock/proto.h"

static struct {
	uint32_t kind;        /* LIFE_* */
	uint64_t deadline;    /* CLOCK_BOOTTIME ns */
	uint64_t grace;       /* session grace period, ns */
	uint64_t grace_end;   /* when no session: CLOCK_BOOTTIME ns; 0 otherwise */
	int dfd, gfd;
} wd = { .dfd = -1, .gfd = -1 };

static void arm(int fd, uint64_t when)
{
	struct itimerspec its = { 0 };

	/* 0 disarms; an instant already past fires at once. */
	if (when) {
		its.it_value.tv_sec = (time_t)(when / NSEC_PER_SEC);
		its.it_value.tv_nsec = (long)(when % NSEC_PER_SEC);
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (fd >= 0 && timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_error(errno, "unable to arm the lifetime watchdog");
}

void watchdog_init(const struct config *cfg)
{
	uint64_t now = time_boot_ns();

	wd.dfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	wd.gfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (wd.dfd < 0 || wd.gfd < 0)
		log_error(errno, "unable to create the lifetime watchdog");
	wd.grace = cfg->session_grace * NSEC_PER_SEC;
	if (cfg->session) {
		/* Until the first session opens, the grace period runs. */
		wd.kind = LIFE_SESSION;
		wd.grace_end = now + wd.grace;
		arm(wd.gfd, wd.grace_end);
	} else if (cfg->lifetime) {
		wd.kind = LIFE_DURATION;
		wd.deadline = now + cfg->lifetime * NSEC_PER_SEC;
		arm(wd.dfd, wd.deadline);
	}
}

int watchdog_deadline_fd(void) { return wd.dfd; }
int watchdog_grace_fd(void) { return wd.gfd; }

void watchdog_sessions(unsigned n)
{
	if (wd.kind != LIFE_SESSION)
		return;
	if (n > 0) {
		wd.grace_end = 0;
	} else if (!wd.grace_end) {
		wd.grace_end = time_boot_ns() + wd.grace;
	}
	arm(wd.gfd, wd.grace_end);
}

static int need_duration(char *why, size_t n)
{
	if (wd.kind == LIFE_DURATION)
		return 0;
	snprintf(why, n, "the sandbox %s: its lifetime cannot be changed",
		 wd.kind == LIFE_SESSION ? "lives as long as its session" : "has no time limit");
	return -EINVAL;
}

static int set_deadline(uint64_t deadline, char *why, size_t n)
{
	uint64_t now = time_boot_ns();

	if (deadline > now + CONFIG_LIFETIME_MAX * NSEC_PER_SEC) {
		snprintf(why, n, "a sandbox lives at most %d hours from now",
			 CONFIG_LIFETIME_MAX / 3600);
		return -ERANGE;
	}
	wd.deadline = deadline;
	arm(wd.dfd, wd.deadline);
	return 0;
}

int watchdog_extend(uint64_t seconds, char *why, size_t n)
{
	int r = need_duration(why, n);

	return r < 0 ? r : set_deadline(wd.deadline + seconds * NSEC_PER_SEC, why, n);
}

int watchdog_set_left(uint64_t ns, char *why, size_t n)
{
	int r = need_duration(why, n);

	return r < 0 ? r : set_deadline(time_boot_ns() + ns, why, n);
}

void watchdog_restart(uint32_t kind, uint64_t lifetime_s, uint64_t grace_s)
{
	uint64_t now = time_boot_ns();

	if (grace_s)
		wd.grace = grace_s * NSEC_PER_SEC;
	wd.kind = LIFE_NONE;
	wd.deadline = wd.grace_end = 0;
	if (kind == LIFE_SESSION) {
		wd.kind = LIFE_SESSION;
		wd.grace_end = now + wd.grace;
	} else if (kind == LIFE_DURATION && lifetime_s) {
		wd.kind = LIFE_DURATION;
		wd.deadline = now + MIN(lifetime_s, CONFIG_LIFETIME_MAX) * NSEC_PER_SEC;
	}
	arm(wd.dfd, wd.deadline);
	arm(wd.gfd, wd.grace_end);
}

void watchdog_describe(struct ctl_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CTL_LIFETIME;
	m->flags = wd.kind;
	m->arg = (int64_t)(wd.kind == LIFE_DURATION ? wd.deadline : 0);
	m->arg2 = (int64_t)wd.grace_end;
}
