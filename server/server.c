/* The agent's server process. PID 1 starts it with the listening socket on
 * fd 3 and the control channel on fd 4, and restarts it if it dies; it
 * accepts connections and serves them from one epoll loop until SIGTERM.
 * At start it takes back from PID 1 the jobs a previous server left. */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conn/conn.h"
#include "exec/cgroup.h"
#include "exec/job.h"
#include "exec/restrict.h"
#include "exec/spawn.h"
#include "lib/buf.h"
#include "lib/ctl.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/mount.h"
#include "lib/reap.h"
#include "lib/util.h"
#include "net/egress.h"
#include "net/loopback.h"
#include "server/control.h"
#include "vsock/addr.h"

_Static_assert(CONFIG_PORT == PROTO_DEFAULT_PORT, "the configuration's default port is the protocol's");

#define CONN_MAX 1024
#define STOP_WAIT_NS (1 * NSEC_PER_SEC)
#define RESTORE_WAIT_MS 2000
#define NOFILE_WANT 16384

static struct config cfg;
static int devnull_fd = -1;
static bool pid1, in_vm;
static bool stopping;
static struct watch w_listen, w_signal, w_ctl;
static struct timer t_accept; /* listening again after running out of fds */
static int ctl_fd = -1;
static char state_dir[256];
static uint8_t auth_key[32];
static bool have_token;
static int upper_fd = -1; /* --upper-fd: SERVER_UPPER_FD is the writable disk */
static bool unlink_config; /* --unlink-config: CONFIG_PATH is still in the initramfs */
static struct rlimit workload_nofile;

const struct config *server_config(void) { return &cfg; }
struct config *server_config_mut(void) { return &cfg; }
int server_devnull(void) { return devnull_fd; }
bool server_under_pid1(void) { return pid1; }
int server_upper_fd(void) { return upper_fd; }
bool server_in_vm(void) { return in_vm; }
const char *server_state_dir(void) { return state_dir; }
const uint8_t *server_auth_key(void) { return have_token ? auth_key : NULL; }

void server_set_token(const char *token)
{
	have_token = token[0] != '\0';
	if (have_token)
		proto_auth_key(token, auth_key);
}
const struct rlimit *server_workload_nofile(void) { return &workload_nofile; }

int server_ctl(const struct ctl_msg *m, const int *fds, int nfds)
{
	if (ctl_fd < 0)
		return -ENOTCONN;
	return ctl_send_msg(ctl_fd, m, fds, nfds);
}

int server_request_shutdown(const char *reason)
{
	struct ctl_msg m = { .type = CTL_SHUTDOWN };

	str_copy(m.text, sizeof(m.text), reason);
	return server_ctl(&m, NULL, 0);
}

/* ---- jobs held by PID 1 ---- */

/* Not the write end of stdin: a copy in PID 1 would keep the command
 * from ever seeing EOF. After a restart a command finds its stdin closed
 * (a terminal's master is held, as the output). */
int server_job_hold(pid_t pid, pid_t ns_pid, bool keep, bool pty, uint64_t started_ns,
		    const char *argv, const struct job_fds *f)
{
	struct ctl_msg m = { .type = CTL_JOB_HOLD, .arg = pid, .arg2 = (int64_t)started_ns,
			     .arg5 = ns_pid };
	const int in[] = { f->out, f->err, f->out_ring, f->err_ring };
	const uint32_t bit[] = { JOBF_OUT, JOBF_ERR, JOBF_OUT_RING, JOBF_ERR_RING };
	int fds[CTL_FDS_MAX], n = 0;

	m.flags = (keep ? JOBF_KEEP : 0) | (pty ? JOBF_PTY : 0);
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		if (in[i] >= 0) {
			m.flags |= bit[i];
			fds[n++] = in[i];
		}
	str_copy(m.text, sizeof(m.text), argv);
	return server_ctl(&m, fds, n);
}

void server_job_status(pid_t pid, int status)
{
	struct ctl_msg m = { .type = CTL_JOB_STATUS, .arg = pid, .arg2 = status };

	server_ctl(&m, NULL, 0);
}

void server_job_done(pid_t pid)
{
	struct ctl_msg m = { .type = CTL_JOB_DONE, .arg = pid };

	server_ctl(&m, NULL, 0);
}

/* A job PID 1 kept for us: it becomes a detached job. */
static void restore_job(const struct ctl_msg *m, int *fds, int nfds)
{
	struct job_spawned js = { .pid = (pid_t)m->arg, .ns_pid = (pid_t)m->arg5, .keep = true, .held = true,
				  .out_fd = -1, .err_fd = -1, .in_fd = -1, .out_ring = -1,
				  .err_ring = -1, .out_sock = -1 };
	int k = 0;

	js.pty = m->flags & JOBF_PTY;
	js.started_ns = (uint64_t)m->arg2;
	js.exited = m->flags & JOBF_EXITED;
	js.status = (int)m->arg4;
	if ((m->flags & JOBF_OUT) && k < nfds)
		js.out_fd = fds[k++];
	if ((m->flags & JOBF_ERR) && k < nfds)
		js.err_fd = fds[k++];
	if ((m->flags & JOBF_OUT_RING) && k < nfds)
		js.out_ring = fds[k++];
	if ((m->flags & JOBF_ERR_RING) && k < nfds)
		js.err_ring = fds[k++];
	while (k < nfds)
		close(fds[k++]);
	if (js.pty && js.out_fd >= 0)
		js.in_fd = fcntl(js.out_fd, F_DUPFD_CLOEXEC, 3);
	str_copy(js.argv, sizeof(js.argv), m->text);
	if (!job_new(&server_agent, &js, NULL))
		log_warn(ENOMEM, "unable to take back command %d", js.pid);
}

/* Asks PID 1 for every job it holds, one at a time (so no message ever
 * waits for room in the channel), before serving anyone. */
static void restore_jobs(void)
{
	struct ctl_msg req = { .type = CTL_RESTORE_NEXT, .arg = -1 }, m;
	unsigned restored = 0;
	int fds[CTL_FDS_MAX], nfds, r;

	if (server_ctl(&req, NULL, 0) < 0)
		return;
	for (;;) {
		struct pollfd p = { .fd = ctl_fd, .events = POLLIN };

		if (poll(&p, 1, RESTORE_WAIT_MS) <= 0) {
			log_warn(0, "PID 1 did not hand back the commands in time");
			return;
		}
		r = ctl_recv(ctl_fd, &m, fds, &nfds);
		if (r < 0 && r != -EBADMSG)
			return;
		if (r <= 0)
			continue;
		if (m.type == CTL_RESTORE_END)
			break;
		if (m.type == CTL_JOB_RESTORE) {
			restore_job(&m, fds, nfds);
			restored++;
			req.arg = m.arg3;
			if (server_ctl(&req, NULL, 0) < 0)
				return;
		} else {
			control_from_init(&m);
		}
	}
	if (restored)
		log_info(0, "took back %u commands from before the restart", restored);
}

/* ---- connections ---- */

/* Only the host may talk to the agent: on vsock, that is peer CID 2.
 * ss is the peer's address as accept4 gave it (zeroed first: an address
 * shorter than a vsock one reads as CID 0, refused). */
static bool peer_allowed(const struct sockaddr_storage *ss)
{
	const struct sockaddr_vm *svm = (const struct sockaddr_vm *)ss;

	if (ss->ss_family != AF_VSOCK || svm->svm_cid == VMADDR_CID_HOST)
		return true;
	log_warn(0, "refused a connection from vsock CID %u: only the host (CID 2) is served",
		 svm->svm_cid);
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

static void accept_again(struct timer *t)
{
	if (!stopping)
		loop_set(&w_listen, EPOLLIN);
}

/* One connection per event: the listening socket's watch is level-
 * triggered, so the loop reports the next one at once, while an accept
 * that finds none still makes and releases a socket in the kernel (in a
 * template's clone under TCG, ~6 ms of code translated for the first time
 * before IDENTITY's answer). The peer's address comes with the accept:
 * no getpeername or getsockname per connection. */
static void on_accept(struct watch *w, uint32_t events)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int fd = accept4(w->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC), r;

	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		/* Out of descriptors or memory: the connection stays queued,
		 * and the level-triggered watch would report it again at once,
		 * for ever. Listen again in 100 ms. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn(errno, "unable to accept a connection (listening again in 100 ms)");
			loop_set(&w_listen, 0);
			timer_arm(&t_accept, 100 * NSEC_PER_MSEC, accept_again);
			return;
		}
		log_warn(errno, "unable to accept a connection");
		return;
	}
	if (!peer_allowed(&ss)) {
		close(fd);
		return;
	}
	if (conn_count() >= CONN_MAX) {
		refuse(fd, EAGAIN, "too many connections (the agent serves at most 1024 at once)");
		return;
	}
	if ((r = conn_start(fd, ss.ss_family == AF_VSOCK)) < 0) {
		refuse(fd, -r, "the agent cannot take this connection");
		log_warn(r, "unable to serve a new connection");
	}
}

static void stop(const char *reason)
{
	char why[128];

	if (stopping)
		return;
	stopping = true;
	timer_cancel(&t_accept);
	loop_del(&w_listen);
	snprintf(why, sizeof(why), "the sandbox is shutting down: %s", reason);
	conn_shutdown_all(ESHUTDOWN, why);
}

static void on_ctl(struct watch *w, uint32_t events)
{
	int fds[CTL_FDS_MAX], nfds;
	struct ctl_msg m;
	int r;

	while ((r = ctl_recv(w->fd, &m, fds, &nfds)) != 0) {
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
		else if (m.type == CTL_JOB_STATUS)
			job_status_from_init((pid_t)m.arg, (int)m.arg2);
		else
			control_from_init(&m);
	}
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

/* Room for 1,000+ connections and their commands' pipes; workloads get
 * the ordinary soft limit back. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		workload_nofile.rlim_cur = MIN(rl.rlim_cur, 1024);
		workload_nofile.rlim_max = rl.rlim_max;
	}
	fd_limit_raise(NOFILE_WANT);
}

/* What of the file systems only commands use (their terminals, POSIX
 * shared memory, their cgroups, the links programs expect into /proc,
 * one mount namespace per command whose mounts reach the others: the
 * root made shared), PID 1 leaves to the server: each first mount costs
 * 1-2 ms under TCG. A restarted server finds them done. */
static void workloads_mount(void)
{
	static const struct mount_spec mounts[] = {
		{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "mode=0620,ptmxmode=0666,gid=5", 0755, DEVPTS_SUPER_MAGIC },
		{ "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, TMPFS_MAGIC },
		/* nsdelegate: a workload's cgroup namespace (exec/restrict.c)
		 * is a delegation boundary, no process in it can be moved out
		 * of it. */
		{ "cgroup2", CGROUP_ROOT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate",
		  0555, CGROUP2_SUPER_MAGIC },
	};

	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" }, { "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
	};

	/* First: a mount made below a shared one is shared too. */
	if (mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0)
		log_warn(errno, "unable to make the mounts shared");
	/* Done by a previous server: found there, of its type. */
	mount_missing(mounts, ARRAY_SIZE(mounts));
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			log_warn(errno, "unable to link %s to %s", links[i][1], links[i][0]);
}

/* Removes CONFIG_PATH (/etc/sbx/config) from the initramfs, following no
 * symbolic link on the way: a restarted server does it again, and by then
 * a root workload may have made /etc or /etc/sbx a link elsewhere. */
static void unlink_config_file(void)
{
	int etc = open("/etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), sbx = -1;

	if (etc >= 0)
		sbx = openat(etc, "sbx", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if ((sbx < 0 || unlinkat(sbx, "config", 0) < 0) && errno != ENOENT)
		log_warn(errno, "unable to remove %s", CONFIG_PATH);
	if (etc >= 0)
		close(etc);
	if (sbx >= 0)
		close(sbx);
}

/* What only commands need: the configuration file gone (PID 1 keeps it
 * open, the only one to: a workload must never read the token), the
 * loopback interface (theirs, the SSH server's, FORWARD's), the labels
 * file, their terminals and cgroups, and their seccomp filter (built by
 * libseccomp, the dearest step of the start under TCG). Done after
 * READY, while the host's first request is on its way: no request is
 * read before this returns (one thread, the listening socket queues). */
static void workloads_setup(bool workns)
{
	if (unlink_config)
		unlink_config_file();
	control_write_labels();
	if (in_vm) {
		loopback_up();
		workloads_mount();
		cgroup_setup(&cfg);
	}
	restrict_init(cfg.seccomp, workns ? 0 : getpid());
}

int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", no_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "config-fd", no_argument, NULL, 'f' },
		{ "cmdline", no_argument, NULL, 'k' },
		{ "pid1", no_argument, NULL, '1' },
		{ "upper-fd", no_argument, NULL, 'u' },
		{ "unlink-config", no_argument, NULL, 'x' },
		{ "workns-fd", no_argument, NULL, 'w' },
		{ "ready", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct ready_info ready = { 0 };
	bool want_ready = false;
	const char *config_path = NULL;
	bool cmdline = false, workns = false, config_fd = false;
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
		case 'f':
			config_path = SERVER_CONFIG_PATH;
			config_fd = true;
			break;
		case 'k':
			cmdline = true;
			in_vm = true;
			break;
		case '1':
			pid1 = true;
			break;
		case 'u':
			upper_fd = SERVER_UPPER_FD;
			break;
		case 'x':
			unlink_config = true;
			break;
		case 'w':
			workns = true;
			break;
		case 'r':
			want_ready = sscanf(optarg, "%" SCNu64 ",%" SCNu64 ",%" SCNu64, &ready.start_ns,
					    &ready.listen_ns, &ready.modules_ns) == 3;
			break;
		case 'd':
			str_copy(state_dir, sizeof(state_dir), optarg);
			break;
		default:
			die(0, "server: bad arguments");
		}
	}
	/* Die with PID 1 in development mode rather than linger. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* Whoever started the agent may have ignored signals (a shell
	 * ignores SIGINT for background jobs); commands must start with
	 * default dispositions, and spawn only resets SIGPIPE. In a VM the
	 * kernel started PID 1, which ignores none: 64 system calls fewer on
	 * the way to READY. */
	for (int sig = 1; sig < NSIG && !in_vm; sig++)
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
	raise_fd_limit();

	load_config(config_path, cmdline);
	/* PID 1 keeps its own copy for the next server; this one must go
	 * before anything is spawned, or every command and sshd would start
	 * with the token on fd 5 (dup2 cleared its close-on-exec). */
	if (config_fd && close(SERVER_CONFIG_FD) < 0)
		die(errno, "server: unable to close the configuration (fd %d)", SERVER_CONFIG_FD);
	/* Development mode only: SBX_PROTO_MAX=1 makes this agent one of
	 * protocol version 1 (BLAKE2b digests), for the tests of a new
	 * client against an old agent. */
	if (!in_vm && getenv("SBX_PROTO_MAX") && strcmp(getenv("SBX_PROTO_MAX"), "1") == 0)
		conn_version_max = 1;
	if (cfg.token[0]) {
		proto_auth_key(cfg.token, auth_key);
		have_token = true;
		sodium_memzero(cfg.token, sizeof(cfg.token));
	}
	control_init();
	/* Workloads cannot read this process's memory (they also lose
	 * CAP_SYS_PTRACE): the key is in it. */
	if (in_vm)
		prctl(PR_SET_DUMPABLE, 0);
	/* Workloads in their own PID namespace cannot name the server (its
	 * pid there may be one of theirs): the filter protects their pid 1. */
	if (workns) {
		r = fd_set_cloexec(SERVER_WORKNS_FD, true) < 0 ? -errno :
		    spawn_set_pidns(SERVER_WORKNS_FD);
		if (r < 0) {
			log_warn(r, "server: no workloads' PID namespace: commands share PID 1's");
			workns = false;
		}
	}
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
	if ((r = loop_add(&w_signal, sfd, EPOLLIN, on_signal)) < 0)
		die(r, "server: unable to watch signals");
	if (upper_fd >= 0 && fd_set_cloexec(upper_fd, true) < 0)
		upper_fd = -1;
	if (fd_set_cloexec(SERVER_CTL_FD, true) == 0) {
		ctl_fd = SERVER_CTL_FD;
		/* The first server of a boot (the one that announces it)
		 * has no predecessor whose jobs PID 1 could hold: no
		 * round trip on the way to READY. */
		if (!want_ready)
			restore_jobs();
		loop_add(&w_ctl, ctl_fd, EPOLLIN, on_ctl);
	}
	if ((r = loop_add(&w_listen, SERVER_LISTEN_FD, EPOLLIN, on_accept)) < 0)
		die(r, "server: unable to watch the listening socket");
	/* Before READY: the host lets workloads run only after it. Its
	 * proxy and DNS stub listen on lo. */
	if (in_vm && cfg.egress)
		loopback_up();
	egress_start(&cfg, in_vm);
	if (want_ready && cfg.ready_port)
		notify_ready(&ready);
	/* PID 1 loads what may come after READY (init/pid1.c). */
	if (in_vm)
		server_ctl(&(struct ctl_msg){ .type = CTL_READY }, NULL, 0);
	workloads_setup(workns);
	/* A command may have exited while we were starting. */
	reap_all();

	while (!stopping)
		/* A second with nothing to do: give back the memory kept for
		 * streams of large frames (lib/buf.h). */
		if (loop_run_once(buf_spares_held() ? 1000 : -1) == 0)
			buf_drop_spares();
	deadline = time_mono_ns() + STOP_WAIT_NS;
	while (conn_count() > 0 && time_mono_ns() < deadline)
		loop_run_once(100);
	return 0;
}
