/* PID 1. After boot it does four things forever: consume signals through a
 * signalfd, reap every child, keep the server process running (restarting
 * it at most once a second), and run the shutdown sequence. It parses no
 * input from the network, and it never exits in a VM: its last act is
 * sync() and reboot(RB_POWER_OFF). */
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
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/reap.h"
#include "init/boot.h"
#include "init/ctl.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/util.h"
#include "server/server.h"
#include "vsock/addr.h"

#define RESTART_INTERVAL_NS (1 * NSEC_PER_SEC)
#define SERVER_STOP_NS (1 * NSEC_PER_SEC)
#define TERM_GRACE_NS (3 * NSEC_PER_SEC)
#define KILL_WAIT_NS (5 * NSEC_PER_SEC)

static struct {
	bool vm;              /* booted as a VM's init: mounts, power-off */
	bool pid1;            /* getpid() == 1: in a VM or a PID namespace */
	struct config cfg;
	const char *config_path;
	struct addr listen;
	int listen_fd;
	int sfd;              /* signalfd */
	int tfd;              /* timerfd: the next server restart */
	int lfd;              /* timerfd: the end of the sandbox's lifetime */
	int ctl;              /* our end of the control channel, or -1 */
	struct child server;
	uint64_t server_started;
	unsigned server_starts;
	bool stopping;
	uint64_t t_start, t_listen, t_modules; /* CLOCK_BOOTTIME, for READY */
} st = { .listen_fd = -1, .sfd = -1, .tfd = -1, .lfd = -1, .ctl = -1 };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx-init                          (as PID 1 of a VM)\n"
		"       sbx-init --listen ADDR [--config FILE]\n"
		"\n"
		"The sbx agent. As a VM's PID 1 it mounts the basic file systems, loads\n"
		"the modules listed in " BOOT_MODULES_LIST ", reads " CONFIG_PATH " and\n"
		"the sbx.* keys of the kernel command line, and serves the sbx protocol\n"
		"on vsock port 1024 (the `port` key).\n"
		"\n"
		"  --listen ADDR   development mode: serve on ADDR (unix:PATH or\n"
		"                  vsock:CID:PORT) as an ordinary process that reaps its\n"
		"                  descendants; SIGTERM stops it and every command\n"
		"  --config FILE   read the configuration from FILE\n"
		"  --help          this text\n"
		"  --version       the version\n");
}

static void on_server_exit(struct child *c, int status);

static void start_server(void)
{
	char *argv[10], ready[80];
	int argc = 0, sv[2];
	pid_t pid;

	argv[argc++] = "sbx-init";
	argv[argc++] = "--server";
	if (st.config_path) {
		argv[argc++] = "--config";
		argv[argc++] = (char *)st.config_path;
	}
	if (st.vm)
		argv[argc++] = "--cmdline";
	if (st.pid1)
		argv[argc++] = "--pid1";
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
		if (dup2(st.listen_fd, SERVER_LISTEN_FD) < 0 ||
		    (sv[1] >= 0 && dup2(sv[1], SERVER_CTL_FD) < 0))
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
	if (!st.stopping)
		schedule_restart();
}

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
	if (!wait_children(TERM_GRACE_NS)) {
		signal_all(SIGKILL);
		if (!wait_children(KILL_WAIT_NS))
			log_warn(0, "some processes did not exit after SIGKILL");
	}
	if (!st.vm) {
		if (st.listen.kind == ADDR_UNIX)
			unlink(st.listen.path);
		exit(0);
	}
	boot_unmount_all();
	for (;;) {
		reboot(RB_POWER_OFF);
		log_error(errno, "unable to power off; trying again");
		sleep(1);
	}
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "config", required_argument, NULL, 'c' },
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
		case SIGHUP:
			if (!st.vm)
				shutdown_now("received SIGHUP");
			break;
		default:
			break;
		}
	}
}

static void handle_ctl(void)
{
	struct ctl_msg m;
	int r;

	while ((r = ctl_recv(st.ctl, &m)) != 0) {
		if (r == -EBADMSG) {
			log_warn(0, "dropped a malformed control message from the server");
			continue;
		}
		if (r < 0) {
			/* The server died; the reaper restarts it. */
			fd_close(&st.ctl);
			return;
		}
		if (m.type == CTL_SHUTDOWN)
			shutdown_now(m.text[0] ? m.text : "requested by the host");
	}
}

/* The lifetime is kept on CLOCK_BOOTTIME: see docs/CONFIG.md. */
static void arm_lifetime(uint64_t seconds)
{
	struct itimerspec its = { .it_value.tv_sec = (time_t)seconds };

	if (!seconds)
		return;
	st.lfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (st.lfd < 0 || timerfd_settime(st.lfd, 0, &its, NULL) < 0)
		log_error(errno, "unable to arm the lifetime watchdog");
}

int init_main(int argc, char **argv)
{
	char err[512];
	sigset_t mask;
	int r;

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
	if (st.vm) {
		uint64_t t = time_boot_ns();

		boot_modules(BOOT_MODULES_LIST);
		st.t_modules = time_boot_ns() - t;
		boot_hostname(st.cfg.hostname);
		boot_loopback();
		st.listen.port = st.cfg.port;
	} else if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		die(errno, "unable to become a child subreaper");
	}

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
	arm_lifetime(st.cfg.lifetime);
	start_server();

	for (;;) {
		struct pollfd p[4] = { { .fd = st.sfd, .events = POLLIN },
				       { .fd = st.tfd, .events = POLLIN },
				       { .fd = st.ctl, .events = POLLIN },
				       { .fd = st.lfd, .events = POLLIN } };
		uint64_t ticks;

		if (poll(p, 4, -1) < 0)
			continue;
		if (p[1].revents & POLLIN && read(st.tfd, &ticks, sizeof(ticks)) > 0 &&
		    !st.stopping && st.server.pid <= 0)
			start_server();
		if (p[0].revents & POLLIN)
			handle_signals();
		if (p[2].revents && st.ctl >= 0)
			handle_ctl();
		if (p[3].revents & POLLIN)
			shutdown_now("lifetime expired");
	}
}
