/* sbx-oci: an OCI runtime (docs/OCI.md). Podman, containerd and the other
 * engines that call runc call this instead, with runc's command line; each
 * container is an sbx microVM whose root is the bundle's rootfs, shared
 * over virtio-fs, and whose process runs through sbx-init, PID 1 of the VM.
 *
 * The process the engine waits on is a monitor on the host: forked by
 * `create`, it waits for `start` on a FIFO, runs the container's process
 * through the agent with the engine's stdio (or a terminal handed over the
 * console socket), forwards the signals it gets, powers the VM off when
 * the process ends and exits with its status (128+N for signal N). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "launcher/sandbox.h"
#include "lib/tree.h"
#include "lib/util.h"
#include "libsbx/sbx.h"
#include "oci/mounts.h"
#include "oci/net.h"
#include "oci/spec.h"

#define OCI_VERSION "1.0.2"
#define DEFAULT_ROOT "/run/sbx-oci"

static const char *root_dir = DEFAULT_ROOT;
static FILE *log_file;
static bool log_json;

/* An error, to standard error and to --log (runc's JSON lines with
 * --log-format json: the engine shows the last one to its user). */
static void oci_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sbx-oci: %s\n", msg);
	if (!log_file)
		return;
	if (log_json) {
		char when[64];
		time_t t = time(NULL);
		json_t *j;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		j = json_pack("{s:s, s:s, s:s}", "level", "error", "msg", msg, "time", when);
		if (j) {
			json_dumpf(j, log_file, JSON_COMPACT);
			json_decref(j);
		}
		fputc('\n', log_file);
	} else {
		fprintf(log_file, "sbx-oci: %s\n", msg);
	}
	fflush(log_file);
}

/* ---- the containers' records: ROOT/ID/ -------------------------------------- */

static bool id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 128 || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || strchr("_-.+", id[i])))
			return false;
	return true;
}

static void rec_path(char *out, size_t n, const char *id, const char *name)
{
	snprintf(out, n, "%s/%s%s%s", root_dir, id, name ? "/" : "", name ? name : "");
}

static int rec_write(const char *id, const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	rec_path(path, sizeof(path), id, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "we")))
		return -errno;
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

static int rec_read(const char *id, const char *name, char *out, size_t n)
{
	char path[PATH_MAX];
	FILE *f;
	size_t got;

	rec_path(path, sizeof(path), id, name);
	if (!(f = fopen(path, "re")))
		return -errno;
	got = fread(out, 1, n - 1, f);
	out[got] = '\0';
	fclose(f);
	while (got && out[got - 1] == '\n')
		out[--got] = '\0';
	return 0;
}

/* The monitor's pid, or 0 when it is gone (exited, or a pid reused by
 * another program: its command line must name the container). */
static pid_t monitor_alive(const char *id)
{
	char text[32];
	pid_t pid;

	if (rec_read(id, "pid", text, sizeof(text)) < 0 || (pid = atoi(text)) <= 0)
		return 0;
	return sandbox_pid_owned(pid, id) && sandbox_pid_owned(pid, "sbx-oci") ? pid : 0;
}

static const char *status_of(const char *id)
{
	char path[PATH_MAX];

	rec_path(path, sizeof(path), id, "started");
	if (!monitor_alive(id))
		return "stopped";
	return access(path, F_OK) == 0 ? "running" : "created";
}

/* The sandbox of a container: oci-<the id's first 40 characters>, the
 * rest of the id replaced where sandbox ids allow less. */
static void sandbox_name(const char *id, char *out, size_t n)
{
	size_t k = (size_t)snprintf(out, n, "oci-%.40s", id);

	for (size_t i = 4; i < k && i < n; i++)
		if (!((out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') ||
		      (out[i] >= '0' && out[i] <= '9') || out[i] == '-' || out[i] == '_'))
			out[i] = '_';
}

/* Powers the container's VM off, if it still runs. */
static void vm_stop(const char *id, const char *reason)
{
	char name[64];
	struct sandbox sb;
	struct sbx_error err;

	sandbox_name(id, name, sizeof(name));
	if (sandbox_load(name, &sb, &err) == 0 && sandbox_kill(&sb, reason, &err) < 0)
		oci_error("%s: %s", id, err.msg);
}

/* Removes a container's record, ROOT/ID and what it holds. */
static int rec_remove(const char *id)
{
	char where[PATH_MAX];
	int root = open(root_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (root < 0)
		return -errno;
	r = tree_remove(root, id, where, sizeof(where));
	close(root);
	return r;
}

/* ---- running the process in the VM -------------------------------------------- */

struct run {
	int sfd;
	bool tty;
};

static int on_signal(void *arg, struct sbx_conn *c, struct sbx_error *err)
{
	struct run *st = arg;
	struct signalfd_siginfo si;
	int r = 0;

	while (r == 0 && read(st->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			struct winsize ws;

			if (st->tty && ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
				r = sbx_exec_resize(c, ws.ws_row, ws.ws_col, err);
			continue;
		}
		if (si.ssi_signo != SIGCHLD)
			r = sbx_exec_signal(c, (int)si.ssi_signo, err);
	}
	return r;
}

/* Runs s's process in the container's VM with our stdio; returns its
 * status as a shell gives it. */
static int run_process(const char *id, const struct oci_spec *s)
{
	struct sbx_exec_opts o = {
		.argv = (const char *const *)s->args, .env = (const char *const *)s->env,
		.clear_env = true, .cwd = s->cwd, .user = s->user, .stdin_pipe = true,
		.tty = s->terminal,
	};
	struct run st = { .tty = s->terminal };
	struct sbx_io io = { .in_fd = 0, .out_fd = 1, .err_fd = s->terminal ? -1 : 2 };
	char name[64];
	struct sandbox sb;
	struct sbx_error err;
	struct sbx_conn *c;
	struct sbx_exit x;
	sigset_t mask;
	int r;

	sandbox_name(id, name, sizeof(name));
	if (sandbox_load(name, &sb, &err) < 0) {
		oci_error("%s: its VM is gone: %s", id, err.msg);
		return 128 + SIGKILL;
	}
	if (s->terminal) {
		struct winsize ws;

		if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row) {
			o.rows = ws.ws_row;
			o.cols = ws.ws_col;
		}
	}
	/* Every signal the engine sends goes to the process in the VM. */
	sigfillset(&mask);
	sigdelset(&mask, SIGKILL);
	sigdelset(&mask, SIGSTOP);
	sigdelset(&mask, SIGSEGV);
	sigdelset(&mask, SIGBUS);
	sigdelset(&mask, SIGFPE);
	sigdelset(&mask, SIGILL);
	sigdelset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	st.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	io.extra_fd = st.sfd;
	io.on_extra = on_signal;
	io.arg = &st;
	if (sbx_connect(sb.addr, &c, &err) < 0) {
		oci_error("%s: cannot reach the agent of its VM: %s", id, err.msg);
		return 128 + SIGKILL;
	}
	r = sbx_exec_io(c, &o, &io, &x, &err);
	sbx_close(c);
	if (r < 0) {
		/* The VM went away under the process: killed (SIGKILL). */
		oci_error("%s: %s", id, err.msg);
		return 128 + SIGKILL;
	}
	if (x.how == EXIT_NOT_STARTED)
		oci_error("%s: %s", id, x.msg);
	return sbx_exit_status(&x);
}

/* A terminal for the process: the master goes to the engine over the
 * console socket (SCM_RIGHTS), the slave becomes our stdio. */
static int console_setup(const char *sock_path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char name[64] = "/dev/ptmx";
	int master, slave = -1, s = -1, r;
	ssize_t n;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof(name)) != 0 ||
	    (slave = open(name, O_RDWR | O_NOCTTY)) < 0)
		goto fail;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), sock_path) < 0) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		goto fail;
	/* The terminal's name as the bytes, the master passed with them. */
	if ((n = fd_send(s, name, strlen(name), &master, 1, 0)) < 0) {
		errno = (int)-n;
		goto fail;
	}
	close(s);
	close(master);
	return slave;
fail:
	r = -errno;
	if (s >= 0)
		close(s);
	if (slave >= 0)
		close(slave);
	close(master);
	return r;
}

/* Makes the terminal slave our stdio and controlling terminal (so that
 * window changes arrive as SIGWINCH). */
static void use_terminal(int slave)
{
	setsid();
	ioctl(slave, TIOCSCTTY, 0);
	dup2(slave, 0);
	dup2(slave, 1);
	dup2(slave, 2);
	if (slave > 2)
		close(slave);
}

static int write_pid_file(const char *file, pid_t pid)
{
	char text[32];
	char tmp[PATH_MAX + 8];
	int fd;

	if (!file)
		return 0;
	snprintf(text, sizeof(text), "%d", (int)pid);
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fd_write_all(fd, text, strlen(text)) < 0 || close(fd) < 0 ||
	    rename(tmp, file) < 0)
		return -errno;
	return 0;
}

static void pod_sandbox_stop(int sig)
{
	(void)sig;
	_exit(0);
}

/* ---- commands ------------------------------------------------------------------- */

/* mkdir -p of the state root (containerd's is /run/containerd/runc/NS). */
static int mkdir_parents(const char *path)
{
	char p[PATH_MAX];

	if (str_copy(p, sizeof(p), path) < 0)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* A Kubernetes pod's sandbox ("pause") container stays on the host, as a
 * process and no VM: all it does for a pod is hold its namespaces, and
 * containerd gives the pod's other containers the network namespace of
 * its pid (/proc/PID/ns/net), so the monitor enters the pod's namespace
 * and waits there, as pause(8) does, until SIGTERM or SIGINT (exit 0) or
 * SIGKILL. The application container that joins the namespace is the one
 * whose VM gets the pod's interface (oci/net.h). */
static int pod_sandbox_create(const char *id, const struct oci_spec *s, const char *fifo,
			      const char *pid_file)
{
	char text[32];
	pid_t pid;
	int ns;

	if (s->netns[0]) {
		ns = open(s->netns, O_RDONLY | O_CLOEXEC);
		if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
			oci_error("the network namespace %s: %s", s->netns, strerror(errno));
			if (ns >= 0)
				close(ns);
			return -1;
		}
		close(ns);
	}
	pid = fork();
	if (pid < 0) {
		oci_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		char byte;
		int fd = open(fifo, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || read(fd, &byte, 1) != 1)
			_exit(128 + SIGKILL);
		close(fd);
		signal(SIGTERM, pod_sandbox_stop);
		signal(SIGINT, pod_sandbox_stop);
		for (;;)
			pause();
	}
	snprintf(text, sizeof(text), "%d", (int)pid);
	if (rec_write(id, "pid", text) < 0 || write_pid_file(pid_file, pid) < 0) {
		oci_error("cannot write the pid of %s: %s", id, strerror(errno));
		kill(pid, SIGKILL);
		return -1;
	}
	return 0;
}

static int cmd_create(const char *id, const char *bundle, const char *pid_file,
		      const char *console)
{
	char dir[PATH_MAX], fifo[PATH_MAX], name[64], msg[1024], abs_bundle[PATH_MAX];
	struct sandbox_opts o = { .cpus = 1 };
	struct sandbox_nic nic;
	struct oci_spec s;
	struct sandbox sb;
	struct sbx_error err;
	int slave = -1, r;
	pid_t pid;

	if (!realpath(bundle, abs_bundle)) {
		oci_error("the bundle %s: %s", bundle, strerror(errno));
		return 1;
	}
	if ((r = oci_spec_load(abs_bundle, &s, msg, sizeof(msg))) < 0) {
		oci_error("%s", msg);
		return 1;
	}
	if (s.terminal && !console) {
		oci_error("config.json asks for a terminal, but no --console-socket was given");
		goto fail_spec;
	}
	if (mkdir_parents(root_dir) < 0) {
		oci_error("cannot create %s: %s", root_dir, strerror(errno));
		goto fail_spec;
	}
	rec_path(dir, sizeof(dir), id, NULL);
	if (mkdir(dir, 0700) < 0) {
		oci_error(errno == EEXIST ? "a container named %s already exists" :
			  "cannot create the state of %s: %s", id, strerror(errno));
		goto fail_spec;
	}
	rec_path(fifo, sizeof(fifo), id, "start.fifo");
	if (mkfifo(fifo, 0600) < 0 || rec_write(id, "bundle", abs_bundle) < 0 ||
	    rec_write(id, "annotations", s.json) < 0) {
		oci_error("cannot write the state of %s in %s: %s", id, dir, strerror(errno));
		goto fail_dir;
	}
	if (s.pod_sandbox) {
		if (pod_sandbox_create(id, &s, fifo, pid_file) < 0)
			goto fail_dir;
		oci_spec_free(&s);
		return 0;
	}
	/* The VM: memory.limit within sbx's bounds (a smaller limit gets the
	 * smallest VM), no lifetime (the engine decides), no network. */
	sandbox_name(id, name, sizeof(name));
	o.name = name;
	o.memory_mib = s.memory_limit ? s.memory_limit >> 20 : SANDBOX_MEM_DEFAULT;
	if (o.memory_mib < SANDBOX_MEM_MIN)
		o.memory_mib = SANDBOX_MEM_MIN;
	if (o.memory_mib > SANDBOX_MEM_MAX) {
		oci_error("memory.limit %llu MiB is above the largest sbx VM (%d MiB)",
			  (unsigned long long)o.memory_mib, SANDBOX_MEM_MAX);
		goto fail_dir;
	}
	/* An engine's network namespace: the one case where the VM gets a
	 * NIC (oci/net.h). Everything started from here on is in it. */
	if (s.netns[0]) {
		if ((r = oci_net_setup(s.netns, &nic, msg, sizeof(msg))) < 0) {
			oci_error("%s", msg);
			goto fail_dir;
		}
		o.nic = r ? &nic : NULL;
	}
	/* The bind mounts: from here on we are in the container's own mount
	 * namespace, and so is everything we start. */
	if ((r = oci_mounts_setup(&s, msg, sizeof(msg))) < 0) {
		oci_error("%s", msg);
		goto fail_dir;
	}
	o.tmpfs = (const char *const *)s.tmpfs;
	o.hostname = s.hostname[0] ? s.hostname : NULL;
	o.rlimits = (const char *const *)s.rlimits;
	o.rootfs = s.rootfs;
	o.rootfs_readonly = s.readonly;
	if (sandbox_create(&o, &sb, &err) < 0) {
		oci_error("cannot start the VM of %s: %s", id, err.msg);
		goto fail_dir;
	}
	if (s.terminal && (slave = console_setup(console)) < 0) {
		oci_error("the console socket %s: %s", console, strerror(-slave));
		goto fail_vm;
	}
	pid = fork();
	if (pid < 0) {
		oci_error("fork: %s", strerror(errno));
		goto fail_vm;
	}
	if (pid == 0) {
		char byte;
		int fd, status;

		if (slave >= 0)
			use_terminal(slave);
		/* Wait for `start` (or for `delete`, which opens it empty). */
		fd = open(fifo, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || read(fd, &byte, 1) != 1)
			_exit(128 + SIGKILL);
		close(fd);
		status = run_process(id, &s);
		vm_stop(id, "the container's process exited");
		_exit(status);
	}
	if (slave >= 0)
		close(slave);
	snprintf(msg, sizeof(msg), "%d", (int)pid);
	if (rec_write(id, "pid", msg) < 0 || write_pid_file(pid_file, pid) < 0) {
		oci_error("cannot write the pid of %s: %s", id, strerror(errno));
		kill(pid, SIGKILL);
		goto fail_vm;
	}
	oci_spec_free(&s);
	return 0;
fail_vm:
	vm_stop(id, "the container could not be created");
fail_dir:
	rec_remove(id);
fail_spec:
	oci_spec_free(&s);
	return 1;
}

static int cmd_start(const char *id)
{
	char fifo[PATH_MAX], started[PATH_MAX];
	const char *status = status_of(id);
	int fd;

	if (strcmp(status, "created") != 0) {
		oci_error("container %s is %s: only a created container can be started", id,
			  status);
		return 1;
	}
	rec_path(fifo, sizeof(fifo), id, "start.fifo");
	rec_path(started, sizeof(started), id, "started");
	/* The monitor may not have opened the FIFO yet (ENXIO: no reader):
	 * create returns as soon as it is forked. */
	for (int waited = 0;; waited += 10) {
		fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 || errno != ENXIO || waited >= 10000 || !monitor_alive(id))
			break;
		usleep(10000);
	}
	if (fd < 0 || write(fd, "s", 1) != 1) {
		oci_error("cannot start %s: %s", id, strerror(errno));
		return 1;
	}
	close(fd);
	close(open(started, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	return 0;
}

static int cmd_state(const char *id)
{
	char bundle[PATH_MAX] = "", ann[65536] = "{}", created[64] = "";
	json_t *j, *a;
	pid_t pid = monitor_alive(id);
	struct stat st;
	char dir[PATH_MAX];

	rec_path(dir, sizeof(dir), id, NULL);
	if (stat(dir, &st) < 0) {
		oci_error("container %s does not exist", id);
		return 1;
	}
	rec_read(id, "bundle", bundle, sizeof(bundle));
	rec_read(id, "annotations", ann, sizeof(ann));
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime(&st.st_ctime));
	a = json_loads(ann, 0, NULL);
	j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o}", "ociVersion", OCI_VERSION, "id", id,
		      "status", status_of(id), "pid", (json_int_t)pid, "bundle", bundle,
		      "created", created, "annotations", a ? a : json_object());
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return 0;
}

static int signal_number(const char *s)
{
	static const struct { const char *name; int sig; } names[] = {
		{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "KILL", SIGKILL },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "ALRM", SIGALRM },
		{ "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "WINCH", SIGWINCH },
	};
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && !*end)
		return n > 0 && n < NSIG ? (int)n : -1;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].sig;
	return -1;
}

static int cmd_kill(const char *id, const char *signame)
{
	int sig = signal_number(signame ? signame : "TERM");
	pid_t pid = monitor_alive(id);

	if (sig < 0) {
		oci_error("unknown signal %s", signame);
		return 1;
	}
	if (!pid) {
		oci_error("container %s is not running", id);
		return 1;
	}
	/* SIGKILL cannot be forwarded: the VM goes, and the process with it. */
	if (sig == SIGKILL) {
		vm_stop(id, "killed");
		kill(pid, SIGKILL);
		return 0;
	}
	if (sig == SIGSTOP || sig == SIGCONT) {
		oci_error("%s cannot be sent to a process in a VM by sbx-oci (pausing is not "
			  "supported)", signame);
		return 1;
	}
	if (kill(pid, sig) < 0) {
		oci_error("cannot signal %s: %s", id, strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_delete(const char *id, bool force)
{
	char dir[PATH_MAX], fifo[PATH_MAX];
	const char *status = status_of(id);
	pid_t pid = monitor_alive(id);
	int fd, r;

	rec_path(dir, sizeof(dir), id, NULL);
	if (access(dir, F_OK) < 0) {
		oci_error("container %s does not exist", id);
		return 1;
	}
	if (strcmp(status, "running") == 0 && !force) {
		oci_error("container %s is running: stop it first, or delete --force", id);
		return 1;
	}
	/* A created container's monitor waits on the FIFO: wake it empty. */
	rec_path(fifo, sizeof(fifo), id, "start.fifo");
	if ((fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0)
		close(fd);
	vm_stop(id, "deleted");
	if (pid)
		kill(pid, SIGKILL);
	if ((r = rec_remove(id)) < 0) {
		oci_error("cannot remove %s: %s", dir, strerror(-r));
		return 1;
	}
	return 0;
}

static int cmd_ps(const char *id)
{
	pid_t pid = monitor_alive(id);

	if (pid)
		printf("[%d]\n", (int)pid);
	else
		printf("[]\n");
	return 0;
}

/* `exec`: another process in a running container, from --process FILE. */
static int cmd_exec(const char *id, const char *process, bool detach, const char *pid_file,
		    const char *console)
{
	struct oci_spec s = { 0 };
	char msg[1024];
	int slave = -1;
	pid_t pid;

	if (strcmp(status_of(id), "running") != 0) {
		oci_error("container %s is not running", id);
		return 1;
	}
	if (!process) {
		oci_error("exec needs --process FILE (the process as JSON)");
		return 1;
	}
	if (oci_process_load(process, &s, msg, sizeof(msg)) < 0) {
		oci_error("%s", msg);
		return 1;
	}
	if (s.terminal && console && (slave = console_setup(console)) < 0) {
		oci_error("the console socket %s: %s", console, strerror(-slave));
		return 1;
	}
	if (!detach) {
		if (slave >= 0)
			use_terminal(slave);
		return run_process(id, &s);
	}
	pid = fork();
	if (pid == 0) {
		if (slave >= 0)
			use_terminal(slave);
		_exit(run_process(id, &s));
	}
	if (pid < 0 || write_pid_file(pid_file, pid) < 0) {
		oci_error("cannot start the process: %s", strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_features(void)
{
	json_t *j = json_pack("{s:s, s:s, s:[], s:[], s:{s:[], s:{s:b, s:b}, s:{s:b}}}",
			      "ociVersionMin", "1.0.0", "ociVersionMax", OCI_VERSION, "hooks",
			      "mountOptions", "linux", "namespaces", "cgroup", "v1", 0, "v2", 0,
			      "seccomp", "enabled", 0);

	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sbx-oci [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...\n\n"
		"An OCI runtime whose containers are sbx microVMs (docs/OCI.md).\n\n"
		"  create ID --bundle DIR [--pid-file F] [--console-socket S]\n"
		"  start ID\n"
		"  state ID\n"
		"  kill ID [SIGNAL]       (default TERM; KILL powers the VM off)\n"
		"  delete [--force] ID\n"
		"  exec ID --process FILE [--detach] [--pid-file F] [--console-socket S]\n"
		"  ps ID\n"
		"  features\n"
		"  --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "log", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "systemd-cgroup", no_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "bundle", required_argument, NULL, 'b' },
		{ "pid-file", required_argument, NULL, 'p' },
		{ "console-socket", required_argument, NULL, 'c' },
		{ "process", required_argument, NULL, 'P' },
		{ "detach", no_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'F' },
		{ "all", no_argument, NULL, 'a' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "format", required_argument, NULL, 'o' },
		{ "no-pivot", no_argument, NULL, 'n' },
		{ "no-new-keyring", no_argument, NULL, 'n' },
		{ "preserve-fds", required_argument, NULL, 'x' },
		{ "tty", no_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *bundle = ".", *pid_file = NULL, *console = NULL, *process = NULL;
	const char *cmd, *id;
	bool detach = false, force = false;
	int opt;

	/* Global options, then the command word and its options (runc's). */
	while ((opt = getopt_long(argc, argv, "+b:p:dFDah", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': root_dir = optarg; break;
		case 'l':
			if (!(log_file = fopen(optarg, "ae")))
				fprintf(stderr, "sbx-oci: cannot open the log %s: %s\n", optarg,
					strerror(errno));
			break;
		case 'f': log_json = strcmp(optarg, "json") == 0; break;
		case 's': break; /* no host cgroups: the VM is the boundary */
		case 'b': bundle = optarg; break;
		case 'p': pid_file = optarg; break;
		case 'c': console = optarg; break;
		case 'P': process = optarg; break;
		case 'D': detach = true; break;
		case 'F': force = true; break;
		case 'v':
			printf("sbx-oci version 0.1\nspec: %s\n", OCI_VERSION);
			return 0;
		case 'h': usage(stdout); return 0;
		case 'x':
			if (atoi(optarg) > 0) {
				oci_error("--preserve-fds is not supported: a VM's process cannot "
					  "inherit host file descriptors");
				return 1;
			}
			break;
		case '?': usage(stderr); return 2;
		default: break;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "features"))
		return cmd_features();
	/* runc's commands take their options after the command word. */
	while ((opt = getopt_long(argc, argv, "+b:p:dFDat", opts, NULL)) != -1) {
		switch (opt) {
		case 'b': bundle = optarg; break;
		case 'p': pid_file = optarg; break;
		case 'c': console = optarg; break;
		case 'P': process = optarg; break;
		case 'D': case 'd': detach = true; break;
		case 'F': force = true; break;
		case 'x':
			if (atoi(optarg) > 0) {
				oci_error("--preserve-fds is not supported: a VM's process cannot "
					  "inherit host file descriptors");
				return 1;
			}
			break;
		case '?': return 2;
		default: break;
		}
	}
	if (optind >= argc) {
		oci_error("%s: no container id given", cmd);
		return 2;
	}
	id = argv[optind++];
	if (!id_ok(id)) {
		oci_error("'%s' is not a container id", id);
		return 2;
	}
	/* getopt stops at the id: options after it (runc allows them). */
	while ((opt = getopt_long(argc, argv, "+b:p:dFDat", opts, NULL)) != -1) {
		switch (opt) {
		case 'b': bundle = optarg; break;
		case 'p': pid_file = optarg; break;
		case 'c': console = optarg; break;
		case 'P': process = optarg; break;
		case 'D': case 'd': detach = true; break;
		case 'F': force = true; break;
		case '?': return 2;
		default: break;
		}
	}
	if (!strcmp(cmd, "create"))
		return cmd_create(id, bundle, pid_file, console);
	if (!strcmp(cmd, "start"))
		return cmd_start(id);
	if (!strcmp(cmd, "state"))
		return cmd_state(id);
	if (!strcmp(cmd, "kill"))
		return cmd_kill(id, optind < argc ? argv[optind] : NULL);
	if (!strcmp(cmd, "delete"))
		return cmd_delete(id, force);
	if (!strcmp(cmd, "ps"))
		return cmd_ps(id);
	if (!strcmp(cmd, "exec"))
		return cmd_exec(id, process, detach, pid_file, console);
	oci_error("unknown command %s (see sbx-oci --help)", cmd);
	return 2;
}
