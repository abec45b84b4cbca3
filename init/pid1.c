/* PID 1. After boot it does four things forever: consume signals through a
 * signalfd, reap every child, keep the server process running (restarting
 * it at most once a second, and holding the fds of its jobs so they
 * outlive it: init/hold.c), and run the lifetime watchdog
 * (init/watchdog.c) and the shutdown sequence. It parses no input from the
 * network, only fixed-size messages from its own server; and it never
 * exits in a VM: its last act is sync() and reboot(RB_POWER_OFF). */
#include "init/pid1.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init/boot.h"
#include "init/hold.h"
#include "init/root.h"
#include "init/watchdog.h"
#include "init/workns.h"
#include "lib/config.h"
#include "lib/ctl.h"
#include "lib/kmod.h"
#include "lib/log.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "vsock/addr.h"

#define RESTART_INTERVAL_NS (1 * NSEC_PER_SEC)
#define SERVER_STOP_NS (1 * NSEC_PER_SEC)
#define KILL_WAIT_NS (5 * NSEC_PER_SEC)
#define VM_STATE_DIR "/run/sbx"
#define NOFILE_WANT 16384

static struct {
	bool vm;              /* booted as a VM's init: mounts, power-off */
	bool pid1;            /* getpid() == 1: in a VM or a PID namespace */
	struct config cfg;
	const char *config_path;
	struct addr listen;
	int listen_fd;
	int sfd;              /* signalfd */
	int tfd;              /* timerfd: the next server restart */
	int ctl;              /* our end of the control channel, or -1 */
	int config_fd;        /* a VM's configuration, kept open (hide_config) */
	bool unlink_config;   /* the server removes CONFIG_PATH (hide_config) */
	int workns_fd;        /* the workloads' PID namespace (init/workns.c), or -1 */
	struct child workns;  /* its init */
	struct child server;
	uint64_t server_started;
	unsigned server_starts;
	bool stopping;
	char state_dir[256];  /* the agent's state (/run/sbx in a VM) */
	bool own_state_dir;   /* made by us in development mode: removed at exit */
	uint64_t t_start, t_listen, t_modules; /* CLOCK_BOOTTIME, for READY */
	int late_fds[4];      /* KMOD_LATE_LIST, opened at boot */
	int nlate;
	bool late_done;       /* loaded (on the server's first CTL_READY) */
} st; /* zero, in .bss rather than 15 KiB of the file: init_main sets the fds */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx-init                          (as PID 1 of a VM)\n"
		"       sbx-init --listen ADDR [--config FILE] [--state DIR]\n"
		"\n"
		"The sbx agent. As a VM's PID 1 it mounts the basic file systems, loads\n"
		"the modules listed in " KMOD_BOOT_LIST ", reads " CONFIG_PATH " and\n"
		"the sbx.* keys of the kernel command line, and serves the sbx protocol\n"
		"on vsock port 1024 (the `port` key). A VM without " CONFIG_PATH " (its\n"
		"token) is not served: PID 1 names the missing file on the console and\n"
		"powers off.\n"
		"\n"
		"  --listen ADDR   development mode: serve on ADDR (unix:PATH or\n"
		"                  vsock:CID:PORT) as an ordinary process that reaps its\n"
		"                  descendants; SIGTERM stops it and every command\n"
		"  --config FILE   read the configuration from FILE\n"
		"  --state DIR     keep the agent's state (environment store, labels) in\n"
		"                  DIR (default: a new directory in /tmp, removed at exit;\n"
		"                  " VM_STATE_DIR " in a VM)\n"
		"  --help          this text\n"
		"  --version       the version\n");
}

/* ---- the server ---- */

static void on_server_exit(struct child *c, int status);
static void handle_ctl(void);

static void send_lifetime(bool reply, int err, const char *why)
{
	struct ctl_msg m;

	if (st.ctl < 0)
		return;
	watchdog_describe(&m);
	m.arg3 = err;
	m.arg4 = reply;
	if (why)
		str_copy(m.text, sizeof(m.text), why);
	ctl_send_msg(st.ctl, &m, NULL, 0);
}

static void start_server(void)
{
	char *argv[16], ready[80];
	int argc = 0, sv[2];
	pid_t pid;

	argv[argc++] = "sbx-init";
	argv[argc++] = "--server";
	if (st.config_fd >= 0) {
		argv[argc++] = "--config-fd"; /* SERVER_CONFIG_FD */
	} else if (st.config_path) {
		argv[argc++] = "--config";
		argv[argc++] = (char *)st.config_path;
	}
	if (st.vm)
		argv[argc++] = "--cmdline";
	if (st.pid1)
		argv[argc++] = "--pid1";
	if (root_upper_fd() >= 0)
		argv[argc++] = "--upper-fd"; /* SERVER_UPPER_FD is the disk's */
	if (st.unlink_config)
		argv[argc++] = "--unlink-config";
	if (st.workns_fd >= 0)
		argv[argc++] = "--workns-fd"; /* SERVER_WORKNS_FD */
	if (st.state_dir[0]) {
		argv[argc++] = "--state";
		argv[argc++] = st.state_dir;
	}
	if (st.vm && st.server_starts == 0) {
		/* Only the first server announces the boot to the host. */
		snprintf(ready, sizeof(ready), "%llu,%llu,%llu", (unsigned long long)st.t_start,
			 (unsigned long long)st.t_listen, (unsigned long long)st.t_modules);
		argv[argc++] = "--ready";
		argv[argc++] = ready;
	}
	argv[argc] = NULL;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error(errno, "unable to create the control channel");
		sv[0] = sv[1] = -1;
	}
	st.server_started = time_mono_ns();
	st.server_starts++;
	pid = fork();
	if (pid < 0) {
		log_error(errno, "unable to start the server");
		fd_close(&sv[0]);
		fd_close(&sv[1]);
		return;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int from[] = { st.listen_fd, sv[1], st.config_fd, root_upper_fd(),
			       st.workns_fd };
		const int to[] = { SERVER_LISTEN_FD, SERVER_CTL_FD, SERVER_CONFIG_FD,
				   SERVER_UPPER_FD, SERVER_WORKNS_FD };

		/* Out of the way first: a source may sit on another's
		 * target number. */
		for (size_t i = 0; i < ARRAY_SIZE(from); i++)
			if (from[i] >= 0 && (from[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 10)) < 0)
				_exit(127);
		for (size_t i = 0; i < ARRAY_SIZE(from); i++)
			if (from[i] >= 0 && dup2(from[i], to[i]) < 0)
				_exit(127);
		execv("/proc/self/exe", argv);
		log_error(errno, "unable to execute the server");
		_exit(127);
	}
	fd_close(&sv[1]);
	fd_close(&st.ctl);
	st.ctl = sv[0];
	if (st.ctl >= 0)
		fd_set_nonblock(st.ctl, true);
	reap_watch(&st.server, pid, on_server_exit);
	/* The new server learns the lifetime before anything else. */
	send_lifetime(false, 0, NULL);
}

static void schedule_restart(void)
{
	uint64_t now = time_mono_ns(), next = st.server_started + RESTART_INTERVAL_NS;
	struct itimerspec its = { 0 };

	if (now >= next) {
		start_server();
		return;
	}
	its.it_value.tv_sec = (time_t)((next - now) / NSEC_PER_SEC);
	its.it_value.tv_nsec = (long)((next - now) % NSEC_PER_SEC);
	timerfd_settime(st.tfd, 0, &its, NULL);
}

static void on_server_exit(struct child *c, int status)
{
	if (WIFSIGNALED(status))
		log_warn(0, "the server was killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), st.stopping ? "" : "; restarting it");
	else if (!st.stopping || WEXITSTATUS(status) != 0)
		log_warn(0, "the server exited with status %d%s", WEXITSTATUS(status),
			 st.stopping ? "" : "; restarting it");
	/* What it sent before dying still counts: a command it started
	 * just before must be held for the next server. */
	handle_ctl();
	fd_close(&st.ctl);
	/* A FREEZE it held ends with it: a frozen disk would hang every
	 * writer (EINVAL when it was not frozen). */
	if (root_upper_fd() >= 0)
		ioctl(root_upper_fd(), FITHAW, 0);
	if (st.stopping)
		return;
	/* Its sessions ended with it; the clients may come back. */
	watchdog_sessions(0);
	schedule_restart();
}

/* The workloads' PID namespace: in a VM, every command is born in it. */
static void on_workns_exit(struct child *c, int status);

static void start_workns(void)
{
	pid_t pid;

	fd_close(&st.workns_fd);
	pid = workns_start(&st.workns_fd);
	if (pid < 0) {
		/* Commands then share PID 1's namespace, as before. */
		log_warn(pid, "unable to create the workloads' PID namespace");
		return;
	}
	reap_watch(&st.workns, pid, on_workns_exit);
}

static void on_workns_exit(struct child *c, int status)
{
	(void)c;
	if (st.stopping)
		return;
	/* Its end killed every workload in it, and the namespace takes no
	 * new process: a new one, and a server that spawns into it. */
	log_warn(0, "the workloads' PID namespace ended (status 0x%x); starting a new one "
		 "and restarting the server", (unsigned)status);
	start_workns();
	if (st.server.pid > 0)
		kill(st.server.pid, SIGTERM);
}

/* A held job ended while no server could reap it (it was re-parented to
 * us): keep the status, and tell the server if one runs. */
static void on_orphan(pid_t pid, int status)
{
	struct ctl_msg m = { .type = CTL_JOB_STATUS, .arg = pid, .arg2 = status };

	if (hold_reaped(pid, status) && st.ctl >= 0)
		ctl_send_msg(st.ctl, &m, NULL, 0);
}

/* What only gives memory back is loaded after READY: the balloon's
 * module (~9 ms under TCG, its device's probe included), then its
 * page-reporting order. Once a boot, on the first server's CTL_READY. */
static void late_modules(void)
{
	if (!st.vm || st.late_done)
		return;
	st.late_done = true;
	kmod_load_fds(st.late_fds, st.nlate);
	st.nlate = 0;
	boot_page_reporting();
}

/* ---- shutdown ---- */

/* Sends sig to every process but us. As a PID namespace's init kill(-1)
 * does it; as a subreaper in development mode, signal our children and
 * their groups (orphans of theirs are re-parented to us and get the next
 * round). */
static void signal_all(int sig)
{
	char path[64], buf[512];
	struct dirent *d;
	DIR *dir;

	if (st.pid1) {
		kill(-1, sig);
		return;
	}
	dir = opendir("/proc");
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		pid_t pid = (pid_t)atoi(d->d_name), ppid;
		ssize_t n;
		char *rp;
		int fd;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != getpid())
			continue;
		kill(-pid, sig);
		kill(pid, sig);
	}
	closedir(dir);
}

/* Reaps until no child is left or the time is up; true when none is left. */
static bool wait_children(uint64_t ns)
{
	uint64_t deadline = time_mono_ns() + ns;
	struct signalfd_siginfo si;

	for (;;) {
		uint64_t now;
		struct pollfd p = { .fd = st.sfd, .events = POLLIN };

		reap_all();
		if (reap_none_left())
			return true;
		now = time_mono_ns();
		if (now >= deadline)
			return false;
		poll(&p, 1, (int)MIN((deadline - now) / NSEC_PER_MSEC + 1, 100));
		while (read(st.sfd, &si, sizeof(si)) == sizeof(si))
			;
	}
}

static void remove_state_dir(void)
{
	char path[300];
	struct dirent *d;
	DIR *dir = opendir(st.state_dir);

	if (!dir)
		return;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", st.state_dir, d->d_name);
			unlink(path);
		}
	closedir(dir);
	rmdir(st.state_dir);
}

static _Noreturn void shutdown_now(const char *why)
{
	st.stopping = true;
	log_info(0, "shutting down: %s", why);
	if (st.server.pid > 0) {
		/* Let the server tell its clients why, first. */
		if (st.ctl >= 0)
			ctl_send(st.ctl, CTL_STOPPING, 0, why);
		kill(st.server.pid, SIGTERM);
		for (uint64_t end = time_mono_ns() + SERVER_STOP_NS;
		     st.server.pid > 0 && time_mono_ns() < end;) {
			struct pollfd p = { .fd = st.sfd, .events = POLLIN };
			struct signalfd_siginfo si;

			poll(&p, 1, 20);
			while (read(st.sfd, &si, sizeof(si)) == sizeof(si))
				;
			reap_all();
		}
	}
	signal_all(SIGTERM);
	signal_all(SIGCONT);
	if (!wait_children(st.cfg.stop_grace * NSEC_PER_SEC)) {
		signal_all(SIGKILL);
		if (!wait_children(KILL_WAIT_NS))
			log_warn(0, "some processes did not exit after SIGKILL");
	}
	if (!st.vm) {
		if (st.listen.kind == ADDR_UNIX)
			unlink(st.listen.path);
		if (st.own_state_dir)
			remove_state_dir();
		exit(0);
	}
	boot_unmount_all();
	for (;;) {
		reboot(RB_POWER_OFF);
		log_error(errno, "unable to power off; trying again");
		sleep(1);
	}
}

/* ---- messages and signals ---- */

static void handle_ctl(void)
{
	int fds[CTL_FDS_MAX], nfds, r, err;
	struct ctl_msg m;
	char why[128];

	while (st.ctl >= 0 && (r = ctl_recv(st.ctl, &m, fds, &nfds)) != 0) {
		if (r == -EBADMSG) {
			log_warn(0, "dropped a malformed control message from the server");
			continue;
		}
		if (r < 0) {
			/* The server died; the reaper restarts it. */
			fd_close(&st.ctl);
			return;
		}
		why[0] = '\0';
		switch (m.type) {
		case CTL_SHUTDOWN:
			shutdown_now(m.text[0] ? m.text : "requested by the host");
		case CTL_JOB_HOLD:
			hold_add(&m, fds, nfds);
			break;
		case CTL_JOB_STATUS:
			hold_status((pid_t)m.arg, (int)m.arg2);
			break;
		case CTL_JOB_DONE:
			hold_done((pid_t)m.arg);
			break;
		case CTL_RESTORE_NEXT: {
			struct ctl_msg out;
			int ofds[CTL_FDS_MAX], n;

			if (hold_next((long)m.arg, &out, ofds, &n))
				ctl_send_msg(st.ctl, &out, ofds, n);
			else
				ctl_send(st.ctl, CTL_RESTORE_END, 0, NULL);
			break;
		}
		case CTL_SESSIONS:
			watchdog_sessions(m.arg > 0 ? (unsigned)m.arg : 0);
			send_lifetime(false, 0, NULL);
			break;
		case CTL_EXTEND:
		case CTL_SET_LEFT:
			err = m.arg <= 0 ? -EINVAL :
			      m.type == CTL_EXTEND ? watchdog_extend((uint64_t)m.arg, why, sizeof(why)) :
						     watchdog_set_left((uint64_t)m.arg, why, sizeof(why));
			send_lifetime(true, err, why);
			break;
		case CTL_IDENTITY:
			/* A clone of a template: a restarted server reads the
			 * clone's configuration, and its lifetime starts now. */
			if (nfds == 1) {
				fd_close(&st.config_fd);
				st.config_fd = fds[0];
				nfds = 0;
			}
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			watchdog_restart(m.flags, m.arg > 0 ? (uint64_t)m.arg : 0,
					 m.arg2 > 0 ? (uint64_t)m.arg2 : 0);
			send_lifetime(true, 0, NULL);
			break;
		case CTL_READY:
			late_modules();
			break;
		default:
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			break;
		}
	}
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;

	while (read(st.sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_all();
			break;
		case SIGTERM:
		case SIGINT: /* Ctrl-Alt-Del in a VM */
		case SIGPWR:
			shutdown_now(si.ssi_signo == SIGTERM ? "received SIGTERM" :
				     si.ssi_signo == SIGINT ? "received SIGINT" : "power failure");
			break; /* not reached: shutdown_now does not return */
		case SIGHUP:
			if (!st.vm)
				shutdown_now("received SIGHUP");
			break;
		default:
			break;
		}
	}
}

/* ---- start ---- */

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
		{ "state", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int opt;

	st.pid1 = getpid() == 1;
	st.vm = st.pid1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (addr_parse(optarg, &st.listen, err, sizeof(err)) < 0 ||
			    st.listen.kind == ADDR_HYBRID)
				die_code(2, 0, "--listen: %s", st.listen.kind == ADDR_HYBRID ?
					 "a hybrid address is for clients; use unix: or vsock:" : err);
			st.vm = false;
			break;
		case 'c':
			st.config_path = optarg;
			break;
		case 's':
			if (str_copy(st.state_dir, sizeof(st.state_dir), optarg) < 0)
				die_code(2, 0, "--state: path too long");
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("sbx-init 0.1.0\n");
			exit(0);
		default:
			/* The kernel passes unknown boot parameters to init
			 * as arguments: never fail a boot over them. */
			if (!st.vm) {
				usage(stderr);
				exit(2);
			}
		}
	}
	if (!st.vm && st.listen.path[0] == '\0' && st.listen.kind != ADDR_VSOCK) {
		usage(stderr);
		exit(2);
	}
	if (st.vm) {
		if (!st.config_path)
			st.config_path = CONFIG_PATH;
		st.listen.kind = ADDR_VSOCK;
		str_copy(st.state_dir, sizeof(st.state_dir), VM_STATE_DIR);
	}
}

static void make_state_dir(void)
{
	if (!st.state_dir[0]) {
		str_copy(st.state_dir, sizeof(st.state_dir), "/tmp/sbx-init.XXXXXX");
		if (!mkdtemp(st.state_dir))
			die(errno, "unable to create a state directory in /tmp");
		st.own_state_dir = true;
		return;
	}
	if (mkdir(st.state_dir, 0755) < 0 && errno != EEXIST)
		log_warn(errno, "unable to create %s", st.state_dir);
}

/* The configuration may hold the sandbox's token: it must leave the file
 * system, where a workload running as root could read it. PID 1 keeps
 * the file open for each server it starts (SERVER_CONFIG_FD, which the
 * server reopens through /proc/self/fd/5 even once the file is removed,
 * then closes before it spawns anything: dup2 cleared its close-on-exec).
 * Only this process holds it then (non-dumpable; the workloads lose
 * CAP_SYS_PTRACE, so /proc/1/fd is closed to them), and once removed the
 * file can be opened by no one, for writing or reading: no workload can
 * change what a restarted server reads, which is why a plain file does
 * as well as a sealed memfd here. It goes with the
 * initramfs when the root switches, or else the server removes it before
 * it reads the first request (server/server.c). Neither a copy into a
 * memfd nor the first unlink from the initramfs (~2 and ~3 ms under TCG)
 * is on the way to READY. A file that cannot be opened is a boot gone
 * wrong, as a missing one: left in place, a workload could read it, and
 * restarted servers would read it by name, which a root workload could
 * replace with one without a token. */
static void hide_config(void)
{
	st.config_fd = open(st.config_path, O_RDONLY | O_CLOEXEC);
	if (st.config_fd < 0) {
		log_error(errno, "unable to open %s; refusing to serve, powering off",
			  st.config_path);
		shutdown_now("the configuration cannot be opened");
	}
}

int init_main(int argc, char **argv)
{
	char err[512];
	sigset_t mask;
	int r;

	st.listen_fd = st.sfd = st.tfd = st.ctl = st.config_fd = st.workns_fd = -1;
	st.t_start = time_boot_ns();
	log_set_prog("sbx-init");
	parse_args(argc, argv);

	if (st.vm) {
		boot_mounts();
		boot_stdio();
		reboot(RB_DISABLE_CAD);
	}
	config_init(&st.cfg);
	r = config_load(&st.cfg, st.config_path, !st.vm, st.vm, err, sizeof(err));
	if (r < 0 && !st.vm && st.config_path && access(st.config_path, R_OK) < 0)
		die_code(2, 0, "%s", err);
	if (st.vm && access(st.config_path, F_OK) < 0) {
		/* The launcher puts the config first in every initrd: a VM
		 * without it is a boot gone wrong (the kernel boots on when it
		 * cannot unpack an archive), and serving it would mean no
		 * token and none of the sandbox's settings. */
		log_error(0, "this VM has no configuration: %s is missing (did the kernel "
			  "say \"Initramfs unpacking failed\"?); refusing to serve, powering off",
			  st.config_path);
		shutdown_now("no configuration");
	}
	if (st.vm) {
		uint64_t t = time_boot_ns();

		kmod_load_list(KMOD_BOOT_LIST);
		if (boot_has_pci())
			kmod_load_list(KMOD_PCI_LIST);
		st.t_modules = time_boot_ns() - t;
		st.nlate = kmod_open_list(KMOD_LATE_LIST, st.late_fds, ARRAY_SIZE(st.late_fds));
		boot_hostname(st.cfg.hostname);
		if (st.cfg.net) {
			kmod_load_list(KMOD_NET_LIST);
			boot_nic(st.cfg.net_addr, st.cfg.net_prefix, st.cfg.net_gw);
		}
		st.listen.port = st.cfg.port;
	} else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		die(errno, "unable to become a child subreaper");
	}
	make_state_dir();
	if (st.vm) {
		prctl(PR_SET_DUMPABLE, 0);
		hide_config();
		/* Leaving the initramfs: what the server would load from it
		 * later must be loaded now. */
		if (st.cfg.egress && st.cfg.nroot_lower)
			kmod_load_list(KMOD_EGRESS_LIST);
		if (root_switch(&st.cfg) < 0)
			shutdown_now("the root file system cannot be mounted (see above)");
		st.unlink_config = st.config_fd >= 0 && !root_switched();
		root_mount_volumes(&st.cfg);
		root_mount_tmpfs(&st.cfg);
	}

	st.listen_fd = addr_listen(&st.listen, 1024);
	if (st.listen_fd < 0) {
		char a[160];

		addr_format(&st.listen, a, sizeof(a));
		if (!st.vm)
			die(st.listen_fd, "unable to listen on %s", a);
		/* Without a listener the VM is useless: power off. */
		log_error(st.listen_fd, "unable to listen on %s", a);
		shutdown_now("no listening socket");
	}
	st.t_listen = time_boot_ns();
	/* What only matters once PID 1 has children, after the listen (a
	 * connection waits in its queue meanwhile; the host connects after
	 * READY anyway, which the server sends). */
	fd_limit_raise(NOFILE_WANT); /* room to hold every job's fds (init/hold.c) */
	if (st.vm) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		/* The kernel's OOM killer must never pick the agent; the
		 * server and the workloads' init inherit this, workloads
		 * reset it. */
		if (fd < 0 || write(fd, "-1000", 5) < 0)
			log_warn(errno, "unable to protect the agent from the OOM killer");
		if (fd >= 0)
			close(fd);
	}
	reap_set_orphan(on_orphan);
	/* Every signal but the fault ones arrives through the signalfd. */
	sigfillset(&mask);
	sigdelset(&mask, SIGSEGV);
	sigdelset(&mask, SIGBUS);
	sigdelset(&mask, SIGILL);
	sigdelset(&mask, SIGFPE);
	sigdelset(&mask, SIGTRAP);
	sigdelset(&mask, SIGABRT);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	st.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	st.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (st.sfd < 0 || st.tfd < 0)
		die(errno, "unable to create the signal and timer fds");
	watchdog_init(&st.cfg);
	if (st.vm)
		start_workns();
	start_server();

	for (;;) {
		struct pollfd p[5] = { { .fd = st.sfd, .events = POLLIN },
				       { .fd = st.tfd, .events = POLLIN },
				       { .fd = st.ctl, .events = POLLIN },
				       { .fd = watchdog_deadline_fd(), .events = POLLIN },
				       { .fd = watchdog_grace_fd(), .events = POLLIN } };
		uint64_t ticks;

		if (poll(p, 5, -1) < 0)
			continue;
		if (p[1].revents & POLLIN && read(st.tfd, &ticks, sizeof(ticks)) > 0 &&
		    !st.stopping && st.server.pid <= 0)
			start_server();
		if (p[0].revents & POLLIN)
			handle_signals();
		if (p[2].revents)
			handle_ctl();
		if (p[3].revents & POLLIN && read(p[3].fd, &ticks, sizeof(ticks)) > 0)
			shutdown_now("lifetime expired");
		if (p[4].revents & POLLIN && read(p[4].fd, &ticks, sizeof(ticks)) > 0)
			shutdown_now("session ended");
	}
}
