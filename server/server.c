/* The agent's server process. PID 1 starts it with the listening socket on
 * fd 3 and restarts it if it dies; it accepts connections and serves them
 * from one epoll loop until SIGTERM. */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"
#include "server/conn.h"

#define CONN_MAX 1024
#define STOP_WAIT_NS (1 * NSEC_PER_SEC)

static struct config cfg;
static int devnull_fd = -1;
static bool pid1;
static bool stopping;
static struct watch w_listen, w_signal;

const struct config *server_config(void) { return &cfg; }
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

static void stop(void)
{
	if (stopping)
		return;
	stopping = true;
	loop_del(&w_listen);
	conn_shutdown_all(ESHUTDOWN, "the sandbox is shutting down");
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
			stop();
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
		{ NULL, 0, NULL, 0 },
	};
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
	/* A command may have exited while we were starting. */
	reap_all();

	while (!stopping)
		loop_run_once(-1);
	deadline = time_mono_ns() + STOP_WAIT_NS;
	while (conn_count() > 0 && time_mono_ns() < deadline)
		loop_run_once(100);
	return 0;
}
