/* Workload restrictions: see restrict.h. */
#include "exec/restrict.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "exec/cgroup.h"
#include "lib/log.h"
#include "lib/util.h"

static struct sock_fprog prog;
static bool built;

/* Capabilities no workload keeps, root included: reading other processes'
 * memory (and so the agent's), raw I/O (/dev/mem, /proc/kcore), modules,
 * reboot. The filter below refuses the calls as well. */
static const int dropped_caps[] = { CAP_SYS_PTRACE, CAP_SYS_RAWIO, CAP_SYS_MODULE, CAP_SYS_BOOT };

/* Calls refused outright. */
static const int refused[] = {
	SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
	SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(reboot),
	SCMP_SYS(swapon), SCMP_SYS(swapoff),
};

/* Calls refused when their first argument names a protected pid: to
 * signal, trace or read the agent, or to change its limits, priority,
 * CPUs or memory placement (root may, for any process it can see). */
static const int aimed[] = {
	SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(kill),
	SCMP_SYS(tkill), SCMP_SYS(tgkill), SCMP_SYS(rt_sigqueueinfo),
	SCMP_SYS(rt_tgsigqueueinfo), SCMP_SYS(pidfd_open), SCMP_SYS(prlimit64),
	SCMP_SYS(sched_setaffinity), SCMP_SYS(sched_setscheduler), SCMP_SYS(sched_setparam),
	SCMP_SYS(sched_setattr), SCMP_SYS(migrate_pages), SCMP_SYS(move_pages),
};
/* The same, with the pid as the second argument. */
static const int aimed2[] = { SCMP_SYS(ptrace), SCMP_SYS(setpriority), SCMP_SYS(ioprio_set) };

static int refuse_pid(scmp_filter_ctx ctx, int sys, uint32_t pid)
{
	for (size_t i = 0; i < ARRAY_SIZE(aimed2); i++)
		if (sys == aimed2[i])
			return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys, 1,
						SCMP_A1_32(SCMP_CMP_EQ, pid));
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), sys, 1, SCMP_A0_32(SCMP_CMP_EQ, pid));
}

bool restrict_init(bool enabled, int server)
{
	scmp_filter_ctx ctx;
	struct stat st;
	int fd = -1, r = 0;

#ifdef SBX_NO_SECCOMP
	enabled = false; /* the sanitizer build */
#endif
	if (!enabled)
		return false;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		log_warn(0, "unable to build the workload filter: seccomp_init failed");
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(refused) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0);
	/* PID 1 and the server, and kill(-1), which would hit the server. */
	for (size_t i = 0; i < ARRAY_SIZE(aimed) + ARRAY_SIZE(aimed2) && r == 0; i++) {
		int sys = i < ARRAY_SIZE(aimed) ? aimed[i] : aimed2[i - ARRAY_SIZE(aimed)];

		r = refuse_pid(ctx, sys, 1);
		if (r == 0 && server > 1)
			r = refuse_pid(ctx, sys, (uint32_t)server);
	}
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1,
				     SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)-1));
	/* libseccomp 2.5 exports to an fd only: a memfd, read back. */
	if (r == 0 && (fd = memfd_create("sbx-seccomp", MFD_CLOEXEC)) < 0)
		r = -errno;
	if (r == 0)
		r = seccomp_export_bpf(ctx, fd);
	if (r == 0 && (fstat(fd, &st) < 0 || st.st_size <= 0 ||
		       st.st_size % (off_t)sizeof(struct sock_filter)))
		r = -EIO;
	if (r == 0) {
		prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
		prog.filter = malloc((size_t)st.st_size);
		if (!prog.filter || pread(fd, prog.filter, (size_t)st.st_size, 0) != st.st_size)
			r = -EIO;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	if (r < 0) {
		log_warn(r, "unable to build the workload filter: workloads run unfiltered");
		free(prog.filter);
		prog.filter = NULL;
		return false;
	}
	built = true;
	return true;
}

const struct sock_fprog *restrict_filter(void)
{
	return built ? &prog : NULL;
}

int restrict_apply(const struct sock_fprog *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(dropped_caps); i++)
		/* EPERM without CAP_SETPCAP: an unprivileged agent's workloads
		 * never had these. */
		if (prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0) < 0 && errno != EPERM &&
		    errno != EINVAL)
			return -errno;
	if (!p)
		return 0;
	/* Without CAP_SYS_ADMIN the kernel wants no_new_privs first. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p) == 0)
		return 0;
	if (errno != EACCES || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p) == 0 ? 0 : -errno;
}

int restrict_confine(void)
{
	const unsigned long nodev = MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (unshare(CLONE_NEWCGROUP | CLONE_NEWNS) < 0)
		return -errno;
	/* /sys private first: the unmount and the new mount must not
	 * propagate to the agent's /sys. Nothing is left under the new
	 * mount to uncover. */
	if (mount(NULL, "/sys", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    umount2(CGROUP_ROOT, MNT_DETACH) < 0 ||
	    mount("cgroup2", CGROUP_ROOT, "cgroup2", nodev | MS_RDONLY, NULL) < 0)
		return -errno;
	/* /proc's parent is /, which stays shared: mount over it, never
	 * unmount it (that would propagate). */
	if (mount(NULL, "/proc", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", nodev, "hidepid=ptraceable") < 0)
		return -errno;
	return 0;
}
