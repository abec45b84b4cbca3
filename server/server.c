/* The agent's server process. PID 1 starts it with the listening socket on
 * fd 3 and restarts it if it dies; it accepts connections and serves them
 * from one epoll loop until SIGTERM. */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec/reap.h"
#include "init/ctl.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "server/conn.h"
#include "vsock/addr.h"

#define CONN_MAX 1024
#define STOP_WAIT_NS (1 * NSEC_PER_SEC)

static struct config cfg;
static int devnull_fd = -1;
static bool pid1;
static bool stopping;
static struct watch w_listen, w_signal, w_ctl;
static int ctl_fd = -1;

const struct config *server_config(void) { return &cfg; }

int server_request_shutdown(const char *reason)
{
	if (ctl_fd < 0)
		return -ENOTCONN;
	return ctl_send(ctl_fd, CTL_SHUTDOWN, 0, reason);
}
int server_devnull(void) { return devnull_fd; }
bool server_under_pid1(void) { return pid1; }

/* Only the host may talk to the agent: on vsock, that is peer CID 2. */
static bool peer_allowed(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family != AF_VSOCK)
		return true;
	if (((struct sockaddr_vm *)&ss)->svm_cid == VMADDR_CID_HOST)
		return true;
	log_warn(0, "refused a connection from vsock CID %u: only the host (CID 2) is served",
		 ((struct sockaddr_vm *)&ss)->svm_cid);
	return false;
}

static void refuse(int fd, int code, const char *why)
{
	struct buf b;

	buf_init(&b, 8192);
	if (proto_error_put(&b, code, "%s", why) == 0)
		(void)!send(fd, buf_head(&b), buf_len(&b), MSG_NOSIGNAL | MSG_DONTWAIT);
	buf_free(&b);
	close(fd);
}

static void on_accept(struct watch *w, uint32_t events)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), r;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn(errno, "unable to accept a connection");
			return;
		}
		if (!peer_allowed(fd)) {
			close(fd);
			continue;
		}
		if (conn_count() >= CONN_MAX) {
			refuse(fd, EAGAIN, "too many connections (the agent serves at most 1024 at once)");
			continue;
		}
		if ((r = conn_start(fd)) < 0) {
			refuse(fd, -r, "the agent cannot take this connection");
			log_warn(r, "unable to serve a new connection");
		}
	}
}

static void stop(const char *reason)
{
	char why[128];

	if (stopping)
		return;
	stopping = true;
	loop_del(&w_listen);
	snprintf(why, sizeof(why), "the sandbox is shutting down: %s", reason);
	conn_shutdown_all(ESHUTDOWN, why);
}

static void on_ctl(struct watch *w, uint32_t events)
{
	struct ctl_msg m;
	int r;

	while ((r = ctl_recv(w->fd, &m)) != 0) {
		if (r == -EBADMSG)
			continue;
		if (r < 0) {
			/* PID 1 is gone or closed its end: nothing to serve for. */
			loop_del(w);
			stop("the init process went away");
			return;
		}
		if (m.type == CTL_STOPPING)
			stop(m.text);
	}
}

/* Tells the host we are ready: one READY frame to CID 2, port ready_port
 * (sbx-vsockd relays it to the launcher waiting on <uds>_<port>). */
static void notify_ready(const struct ready_info *ri)
{
	struct addr a = { .kind = ADDR_VSOCK, .cid = 2, .port = cfg.ready_port };
	struct ready_info r = *ri;
	struct buf b;
	int fd;

	r.uptime_ns = time_boot_ns();
	buf_init(&b, 4096);
	fd = addr_connect(&a, 2000);
	if (fd < 0) {
		log_warn(fd, "unable to tell the host we are ready (vsock port %u)", cfg.ready_port);
		return;
	}
	if (proto_ready_put(&b, &r) == 0 && fd_write_all(fd, buf_head(&b), buf_len(&b)) < 0)
		log_warn(errno, "unable to tell the host we are ready");
	buf_free(&b);
	close(fd);
}

static void on_signal(struct watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap_all();
			break;
		case SIGTERM:
		case SIGINT:
		case SIGHUP:
			stop("the agent was told to stop");
			break;
		}
	}
}

/* PID 1 has already reported any mistakes in the configuration; read it
 * again quietly. */
static void load_config(const char *path, bool cmdline)
{
	char err[512];

	config_init(&cfg);
	log_set_level(LOG_ERROR);
	config_load(&cfg, path, false, cmdline, err, sizeof(err));
	log_set_level(LOG_INFO);
}

int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", no_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "cmdline", no_argument, NULL, 'k' },
		{ "pid1", no_argument, NULL, '1' },
		{ "ready", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct ready_info ready = { 0 };
	bool want_ready = false;
	const char *config_path = NULL;
	bool cmdline = false;
	sigset_t mask;
	uint64_t deadline;
	int opt, sfd, r;

	log_set_prog("sbx-init");
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'k':
			cmdline = true;
			break;
		case '1':
			pid1 = true;
			break;
		case 'r':
			want_ready = sscanf(optarg, "%" SCNu64 ",%" SCNu64 ",%" SCNu64, &ready.start_ns,
					    &ready.listen_ns, &ready.modules_ns) == 3;
			break;
		default:
			die(0, "server: bad arguments");
		}
	}
	/* Die with PID 1 in development mode rather than linger. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Whoever started the agent may have ignored signals (a shell
	 * ignores SIGINT for background jobs); commands must start with
	 * default dispositions, and spawn only resets SIGPIPE. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (getppid() == 1 && !pid1)
		die(0, "server: PID 1 went away before we started");

	load_config(config_path, cmdline);
	devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull_fd < 0)
		die(errno, "server: unable to open /dev/null");
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die(errno, "server: unable to create a signalfd");
	if ((r = loop_init()) < 0)
		die(r, "server: unable to create the event loop");
	if (fd_set_nonblock(SERVER_LISTEN_FD, true) < 0 || fd_set_cloexec(SERVER_LISTEN_FD, true) < 0)
		die(errno, "server: no listening socket on fd %d", SERVER_LISTEN_FD);
	if ((r = loop_add(&w_listen, SERVER_LISTEN_FD, EPOLLIN, on_accept)) < 0 ||
	    (r = loop_add(&w_signal, sfd, EPOLLIN, on_signal)) < 0)
		die(r, "server: unable to watch the listening socket");
	if (fd_set_cloexec(SERVER_CTL_FD, true) == 0) {
		ctl_fd = SERVER_CTL_FD;
		loop_add(&w_ctl, ctl_fd, EPOLLIN, on_ctl);
	}
	if (want_ready && cfg.ready_port)
		notify_ready(&ready);
	/* A command may have exited while we were starting. */
	reap_all();

	while (!stopping)
		loop_run_once(-1);
	deadline = time_mono_ns() + STOP_WAIT_NS;
	while (conn_count() > 0 && time_mono_ns() < deadline)
		loop_run_once(100);
	return 0;
}
