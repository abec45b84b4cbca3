/* Sandbox lifecycle on the host: state directories, booting QEMU (with
 * sbx-vsockd, or vhost-vsock where the host has it), waiting for the
 * agent's READY, and tearing everything down. See sandbox.h. */
#include "launcher/sandbox.h"
#include "gateway/gateway.h"
#include "gateway/secrets.h"
#include "launcher/image.h"
#include "launcher/qemu.h"
#include "launcher/qmp.h"
#include "launcher/spare.h"
#include "launcher/template.h"
#include "launcher/store.h"
#include "launcher/tsc.h"
#include "libsbx/sbx_net.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/cpio.h"
#include "lib/util.h"
#include "vsock/addr.h"

#define GUEST_CID 3
#define BOOT_TIMEOUT_S 60
#define KILL_WAIT_MS 15000
#define CONSOLE_TAIL 20
/* How the agent's fatal lines start on the console (lib/log.c). */
#define AGENT_ERROR "sbx-init: error: "
/* The guest decides how much it writes to its console (7.4 MB a minute
 * under TCG from a loop on /dev/ttyS0, and a sandbox may live a day):
 * console.log is rotated to console.log.1 at this size, so the two stay
 * under twice it. SBX_CONSOLE_LOG_MAX (bytes) changes it. */
#define CONSOLE_LOG_MAX (8u << 20)
#define CONSOLE_FD 3 /* QEMU writes its serial port to this pipe */

const char *sandbox_root(void)
{
	static char root[PATH_MAX];
	const char *env = getenv("SBX_STATE_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env)
		snprintf(root, sizeof(root), "%s", env);
	else if (xdg && *xdg)
		snprintf(root, sizeof(root), "%s/sbx", xdg);
	else if (geteuid() == 0)
		snprintf(root, sizeof(root), "/run/sbx");
	else
		snprintf(root, sizeof(root), "/tmp/sbx-%u", (unsigned)geteuid());
	return root;
}

int sandbox_ssh_dir(char *dir, size_t len, struct sbx_error *err)
{
	const char *root = sandbox_root();

	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "cannot create %s: %s", root, strerror(errno));
	/* A dot name: sandbox_list() takes other directories for sandboxes. */
	if (snprintf(dir, len, "%s/.ssh", root) >= (int)len)
		return sbx_fail(err, ENAMETOOLONG, "path too long: %s", root);
	return 0;
}

int sandbox_parse_memory(const char *s, uint64_t *mib, struct sbx_error *err)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		goto bad;
	if (strcmp(end, "G") == 0 || strcmp(end, "GB") == 0 || strcmp(end, "GiB") == 0) {
		if (v > (1ULL << 20))
			goto range;
		v *= 1024;
	} else if (*end && strcmp(end, "M") && strcmp(end, "MB") && strcmp(end, "MiB")) {
		goto bad;
	}
	if (v < SANDBOX_MEM_MIN || v > SANDBOX_MEM_MAX)
		goto range;
	*mib = v;
	return 0;
bad:
	return sbx_fail(err, EINVAL, "--memory %s: not a size (examples: 1024, 768MiB, 2GiB)", s);
range:
	return sbx_fail(err, ERANGE, "--memory %s: a sandbox has %d to %d MiB of memory", s,
		    SANDBOX_MEM_MIN, SANDBOX_MEM_MAX);
}

/* ---- small file helpers ---- */

static void path_in(char *out, size_t n, const struct sandbox *sb, const char *name)
{
	snprintf(out, n, "%s/%s", sb->dir, name);
}

/* mkdir -p with mode 0700 for what it creates. */
static int mkdir_parents(const char *path)
{
	char p[PATH_MAX];

	if (str_copy(p, sizeof(p), path) < 0)
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

/* Empties and removes a state directory. QEMU's supervisor writes
 * qemu.exit just after QEMU is gone and may be a moment late: a directory
 * that is not empty yet is emptied again, for up to a second. */
static int remove_dir(const char *dir)
{
	char path[PATH_MAX];

	for (int tries = 0;; tries++) {
		struct dirent *d;
		DIR *dp = opendir(dir);

		if (!dp)
			return errno == ENOENT ? 0 : -errno;
		while ((d = readdir(dp))) {
			if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			unlink(path);
		}
		closedir(dp);
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY || tries == 50)
			return -errno;
		usleep(20000);
	}
}

/* The names left in a directory, for an error message. */
static void dir_names(const char *dir, char *out, size_t n)
{
	DIR *dp = opendir(dir);
	struct dirent *d;
	size_t at = 0;

	out[0] = '\0';
	while (dp && (d = readdir(dp)) && at + 2 < n) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		at += (size_t)snprintf(out + at, n - at, "%s%s", at ? ", " : "", d->d_name);
	}
	if (dp)
		closedir(dp);
}

/* What a kill that lost the race with QEMU's supervisor left (before it
 * retried): a directory holding qemu.exit alone. */
static bool is_leftover(const char *dir)
{
	char names[64];

	dir_names(dir, names, sizeof(names));
	return !strcmp(names, "qemu.exit");
}

/* Last `lines` lines of a file, for error messages. */
static void tail_file(const char *path, int lines, char *out, size_t n)
{
	char buf[16384];
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC), seen = 0;
	off_t size;
	char *p;

	out[0] = '\0';
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return;
	buf[len] = '\0';
	for (p = buf + len - 1; p > buf; p--)
		if (*p == '\n' && p != buf + len - 1 && ++seen == lines) {
			p++;
			break;
		}
	snprintf(out, n, "%s", p);
}

/* ---- processes ---- */

/* Does pid exist and is it not a zombie? */
static bool pid_running(pid_t pid)
{
	char path[64], state = 0, stat[512];
	ssize_t n;
	int fd;

	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n > 0) {
			char *rp;

			stat[n] = '\0';
			rp = strrchr(stat, ')');
			if (rp && rp[1])
				state = rp[2];
		}
	}
	if (state == 'Z') {
		waitpid(pid, NULL, WNOHANG); /* ours to reap, if we started it */
		return false;
	}
	return true;
}

/* Is pid alive and ours (its command line names our state directory)? */
static bool owned_alive(pid_t pid, const char *dir)
{
	char path[64], cmd[8192];
	ssize_t n;
	int fd;

	if (!pid_running(pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	return strstr(cmd, dir) != NULL;
}

bool sandbox_pid_owned(pid_t pid, const char *mark)
{
	return owned_alive(pid, mark);
}

bool sandbox_alive(const struct sandbox *sb)
{
	return owned_alive(sb->qemu_pid, sb->dir);
}

/* Waits until pid is gone (reaping it if it is our child). */
static bool wait_gone(pid_t pid, const char *dir, int ms)
{
	for (int waited = 0; waited <= ms; waited += 20) {
		waitpid(pid, NULL, WNOHANG);
		if (!owned_alive(pid, dir))
			return true;
		usleep(20000);
	}
	return false;
}

/* Starts a long-lived helper process in its own session with stdin on
 * /dev/null and stdout/stderr appended to log; keep_fd becomes fd 3, and
 * nothing else of the caller's reaches it (a descriptor its caller was
 * given without O_CLOEXEC, such as a container engine's pipe that sbx-oci
 * inherits, would otherwise live as long as the helper). */
static pid_t start_daemon(char *const argv[], const char *log, int keep_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	setsid();
	int null = open("/dev/null", O_RDONLY);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

	if (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	if (keep_fd >= 0 && (dup2(keep_fd, 3) < 0 || fcntl(3, F_SETFD, 0) < 0))
		_exit(127);
	syscall(SYS_close_range, keep_fd >= 0 ? 4 : 3, ~0U, 0);
	/* sbx create blocks SIGINT, SIGTERM and SIGHUP while it boots. */
	signals_reset_for_exec();
	execvp(argv[0], argv);
	dprintf(2, "sbx: cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static uint64_t console_log_max(void)
{
	const char *env = getenv("SBX_CONSOLE_LOG_MAX");
	uint64_t v;

	if (env && str_to_u64(env, UINT64_MAX, &v) == 0 && v > 0)
		return v;
	return CONSOLE_LOG_MAX;
}

/* Copies QEMU's serial output from in to <dir>/console.log until QEMU
 * closes it, rotating the log to console.log.1 each time it reaches max
 * bytes, as the gateway does its egress.log. */
static void console_pump(int in, const char *dir, uint64_t max)
{
	char path[PATH_MAX + 16], old[PATH_MAX + 16], buf[65536];
	uint64_t size = 0;
	ssize_t n;
	int out;

	snprintf(path, sizeof(path), "%s/console.log", dir);
	snprintf(old, sizeof(old), "%s/console.log.1", dir);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	for (;;) {
		n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t at = 0; at < n;) {
			size_t take = (size_t)MIN((uint64_t)(n - at), max - size);

			if (out >= 0 && fd_write_all(out, buf + at, take) < 0)
				fd_close(&out); /* a full disk: the guest's output is dropped */
			size += take;
			at += (ssize_t)take;
			if (size == max) {
				fd_close(&out);
				if (rename(path, old) == 0 || errno == ENOENT)
					out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
				size = 0;
			}
		}
	}
	fd_close(&out);
}

/* Starts QEMU under a small supervisor (a forked copy of us, in its own
 * session) that copies its serial console to console.log (console_pump)
 * and, once QEMU is gone, writes its exit status to <dir>/qemu.exit, so
 * that a clean power-off (status 0) can be told from a crash. Returns
 * QEMU's pid, read from a pipe, or -1. */
static pid_t start_qemu(char *const argv[], const char *log, const struct sandbox *sb)
{
	int p[2], con[2], status;
	pid_t sup, qemu = -1;
	uint64_t max = console_log_max();

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(con, O_CLOEXEC) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	sup = fork();
	if (sup < 0) {
		close(p[0]);
		close(p[1]);
		close(con[0]);
		close(con[1]);
		return -1;
	}
	if (sup == 0) {
		char path[PATH_MAX + 16];
		FILE *f;

		close(p[0]);
		setsid();
		qemu = start_daemon(argv, log, con[1]);
		close(con[1]);
		(void)!write(p[1], &qemu, sizeof(qemu));
		/* Hold nothing of the caller's: not its stdout (a shell's
		 * $(sbx create) would wait for it), not its sockets; only the
		 * console pipe, as fd 3. */
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		if (con[0] != CONSOLE_FD && dup2(con[0], CONSOLE_FD) < 0)
			_exit(1);
		syscall(SYS_close_range, CONSOLE_FD + 1, ~0U, 0);
		if (qemu >= 0)
			console_pump(CONSOLE_FD, sb->dir, max);
		if (qemu < 0 || waitpid(qemu, &status, 0) != qemu)
			_exit(1);
		snprintf(path, sizeof(path), "%s/qemu.exit", sb->dir);
		if ((f = fopen(path, "we"))) {
			fprintf(f, "%d\n", WIFEXITED(status) ? WEXITSTATUS(status) :
				128 + WTERMSIG(status));
			fclose(f);
		}
		_exit(0);
	}
	close(p[1]);
	/* Only QEMU may hold the console's write end: the pump stops when it
	 * is gone. */
	close(con[0]);
	close(con[1]);
	if (read(p[0], &qemu, sizeof(qemu)) != sizeof(qemu))
		qemu = -1;
	close(p[0]);
	/* The supervisor lives on: it is reaped by whoever inherits it. */
	return qemu;
}

void sandbox_find_file(const char *name, char *out, size_t n)
{
	char self[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (len > 0) {
		self[len] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, n, "%s/%s", self, name);
			if (access(out, F_OK) == 0)
				return;
		}
	}
	snprintf(out, n, "%s", name);
}

static bool kvm_usable(void)
{
	char line[4096];
	bool virt = false;
	FILE *f = fopen("/proc/cpuinfo", "re");
	int fd;

	if (!f)
		return false;
	while (!virt && fgets(line, sizeof(line), f))
		if (str_starts_with(line, "flags"))
			virt = strstr(line, " vmx") || strstr(line, " svm");
	fclose(f);
	/* /dev/kvm can exist on a CPU without virtualisation, and then
	 * QEMU's KVM accelerator fails: both are needed. */
	if (!virt || (fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
		return false;
	close(fd);
	return true;
}

static bool vhost_vsock_usable(void)
{
	int fd;

	if (getenv("SBX_NO_VHOST_VSOCK"))
		return false;
	fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* ---- the configuration the guest gets ---- */

static bool name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > SANDBOX_ID_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

static bool env_name_ok(const char *s, size_t len)
{
	if (len == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static int check_labels(const char *const *labels, struct sandbox *sb, struct sbx_error *err)
{
	for (size_t i = 0; labels && labels[i]; i++) {
		const char *eq = strchr(labels[i], '=');
		size_t klen = eq ? (size_t)(eq - labels[i]) : 0;

		if (sb->nlabels == SANDBOX_LABELS_MAX)
			return sbx_fail(err, E2BIG, "too many labels (at most %d)", SANDBOX_LABELS_MAX);
		if (!eq || klen == 0 || klen > SANDBOX_LABEL_KEY_MAX)
			return sbx_fail(err, EINVAL, "--label %s: expected KEY=VALUE with a key of 1-%d "
				    "characters", labels[i], SANDBOX_LABEL_KEY_MAX);
		for (size_t k = 0; k < klen; k++)
			if (!isalnum((unsigned char)labels[i][k]) && !strchr("_.-", labels[i][k]))
				return sbx_fail(err, EINVAL, "--label %s: a key has letters, digits, "
					    "'_', '.' and '-'", labels[i]);
		if (strlen(eq + 1) > SANDBOX_LABEL_VALUE_MAX || strchr(eq + 1, '\n'))
			return sbx_fail(err, EINVAL, "--label %s: a value is one line of at most %d "
				    "bytes", labels[i], SANDBOX_LABEL_VALUE_MAX);
		memcpy(sb->labels[sb->nlabels].key, labels[i], klen);
		sb->labels[sb->nlabels].key[klen] = '\0';
		str_copy(sb->labels[sb->nlabels].value, sizeof(sb->labels[0].value), eq + 1);
		sb->nlabels++;
	}
	return 0;
}

/* The serial numbers of a sandbox's disks, as QEMU gives them to the
 * guest and the configuration names them (init/root.c). */
#define DISK_SERIAL_BASE "sbx-base"
#define DISK_SERIAL_LAYER "sbx-layer%u"
#define DISK_SERIAL_RW "sbx-rw"
#define DISK_SERIAL_VOLUME "sbx-vol%u"

/* The virtio-fs tag of a root shared from the host (init/root.c). */
#define SHARE_TAG "sbx-root"
#define VIRTIOFSD "/usr/lib/qemu/virtiofsd" /* QEMU 7.2's, in qemu-system-common */

/* The configuration keys of an image on disks: its layers, newest first,
 * the base last, and the writable disk on top; its default user. */
static void write_image_config(FILE *f, const struct image *im)
{
	char lower[256] = "", serial[32];

	if (!im->base[0])
		return;
	for (unsigned i = 0; i < im->nlayers; i++) {
		snprintf(serial, sizeof(serial), DISK_SERIAL_LAYER, i);
		snprintf(lower + strlen(lower), sizeof(lower) - strlen(lower), "%s,", serial);
	}
	snprintf(lower + strlen(lower), sizeof(lower) - strlen(lower), "%s", DISK_SERIAL_BASE);
	kv_write(f, "root.lower", lower);
	kv_write(f, "root.upper", DISK_SERIAL_RW);
	kv_write(f, "user", im->user);
	if (im->workdir[0])
		kv_write(f, "workdir", im->workdir);
}
/* The names the allow list can match (host names and *.domain patterns,
 * ports left out), for the guest's DNS stub: a name none of them can match
 * does not resolve; and the IPv4 addresses it names, for the guest's
 * nftables rules: a connection to another address is refused before its
 * handshake (docs/protocol/egress.md). */
static void egress_names_write(FILE *f, const char *allow_net)
{
	char names[ALLOW_RULES_MAX * (ALLOW_NAME_MAX + 3)] = "", why[256];
	char addrs[ALLOW_RULES_MAX * 16] = "";
	size_t at = 0, aat = 0;

	for (const char *p = allow_net, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		char pat[ALLOW_PATTERN_MAX + 8];
		struct allow_rule r;

		snprintf(pat, sizeof(pat), "%.*s", (int)(nl - p), p);
		if (allow_parse(pat, &r, why, sizeof(why)) < 0)
			continue;
		if (r.kind == ALLOW_IP) {
			if (r.addr.family == AF_INET && aat < sizeof(addrs)) {
				char a[INET6_ADDRSTRLEN];

				allow_addr_format(&r.addr, a, sizeof(a));
				aat += (size_t)snprintf(addrs + aat, sizeof(addrs) - aat, "%s%s",
							aat ? " " : "", a);
			}
			continue;
		}
		if (at < sizeof(names))
			at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s%s",
					       at ? " " : "", r.kind == ALLOW_SUFFIX ? "*." : "",
					       r.name);
	}
	kv_write(f, "egress_names", names);
	kv_write(f, "egress_addrs", addrs);
}


static int write_config(const struct sandbox_opts *o, const struct sandbox *sb,
			const struct image *im, uint32_t ready_port, const struct secret_set *secrets,
			char **text, size_t *len, struct sbx_error *err)
{
	FILE *f = open_memstream(text, len);
	char key[300], num[32];

	if (!f)
		return sbx_fail(err, errno, "out of memory");
	fprintf(f, "# written by sbx create\n");
	/* The id as a host name: '_' (sbx serve's ids, sbx_loc_...) is not
	 * allowed in one, '-' is. */
	{
		char host[SANDBOX_ID_MAX + 1];

		str_copy(host, sizeof(host), sb->id);
		for (char *p = host; *p; p++)
			if (*p == '_')
				*p = '-';
		for (size_t k = strlen(host); k > 1 && host[k - 1] == '-'; k--)
			host[k - 1] = '\0';
		kv_write(f, "hostname", o->hostname ? o->hostname : host);
	}
	if (o->nic) {
		kv_write(f, "net.addr", o->nic->addr);
		if (o->nic->gw[0])
			kv_write(f, "net.gw", o->nic->gw);
	}
	for (size_t i = 0; o->rlimits && o->rlimits[i]; i++) {
		const char *eq = strchr(o->rlimits[i], '=');

		if (!eq)
			continue;
		snprintf(key, sizeof(key), "rlimit.%.*s", (int)(eq - o->rlimits[i]), o->rlimits[i]);
		kv_write(f, key, eq + 1);
	}
	for (size_t i = 0; o->tmpfs && o->tmpfs[i] && i < CONFIG_TMPFS_MAX; i++) {
		snprintf(key, sizeof(key), "tmpfs.%zu", i);
		kv_write(f, key, o->tmpfs[i]);
	}
	write_image_config(f, im);
	if (o->rootfs) {
		kv_write(f, "root.share", SHARE_TAG);
		kv_write(f, "root.readonly", o->rootfs_readonly ? "on" : "off");
	}
	for (unsigned i = 0; i < sb->nvolumes; i++) {
		const char *colon = strchr(o->volumes[i], ':');

		snprintf(key, sizeof(key), "volume." DISK_SERIAL_VOLUME, i);
		kv_write(f, key, colon + 1);
	}
	snprintf(num, sizeof(num), "%llu", (unsigned long long)o->lifetime_s);
	kv_write(f, "lifetime", o->session ? "session" : num);
	if (o->session_grace_s) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)o->session_grace_s);
		kv_write(f, "session_grace", num);
	}
	if (o->stop_grace_s) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)o->stop_grace_s);
		kv_write(f, "stop_grace", num);
	}
	for (unsigned i = 0; i < sb->nlabels; i++) {
		snprintf(key, sizeof(key), "label.%s", sb->labels[i].key);
		kv_write(f, key, sb->labels[i].value);
	}
	snprintf(num, sizeof(num), "%u", ready_port);
	kv_write(f, "ready_port", num);
	if (sb->allow_net[0]) {
		snprintf(num, sizeof(num), "%u", GATEWAY_PORT);
		kv_write(f, "egress", "on");
		kv_write(f, "egress_port", num);
		egress_names_write(f, sb->allow_net);
	}
	kv_write(f, "token", sb->token);
	for (size_t i = 0; o->env && o->env[i]; i++) {
		const char *eq = strchr(o->env[i], '=');

		if (!eq || !env_name_ok(o->env[i], (size_t)(eq - o->env[i]))) {
			fclose(f);
			free(*text);
			return sbx_fail(err, EINVAL, "--env %s: expected NAME=value with a NAME of "
				    "letters, digits and '_'", o->env[i]);
		}
		snprintf(key, sizeof(key), "env.%.*s", (int)(eq - o->env[i]), o->env[i]);
		kv_write(f, key, eq + 1);
	}
	if (secrets)
		secrets_config(secrets, f);
	if (o->template_boot)
		kv_write(f, "template", "on");
	fclose(f);
	return 0;
}

/* The initramfs for this sandbox: an archive holding etc/sbx/config, then
 * the image's (the kernel unpacks both). The image's comes last: it is
 * lz4-compressed (rootfs/build.sh), and an lz4 stream has no end the
 * kernel can find, so an archive after it would be lost, the token with
 * it. The config is written whole (entries end 4-byte aligned, as the
 * kernel wants the next archive). base NULL: the config alone. */
static int make_initrd(const char *base, const char *out, const char *config, size_t len,
		       struct sbx_error *err)
{
	struct stat st = { 0 };
	int in = base ? open(base, O_RDONLY | O_CLOEXEC) : -1, fd = -1, r;
	off_t off = 0;

	if (base && in < 0)
		return sbx_fail(err, errno, "cannot open the initramfs %s: %s", base, strerror(errno));
	if (in >= 0 && fstat(in, &st) < 0)
		goto io;
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto io;
	r = cpio_write_single_file(fd, "etc/sbx/config", config, len, 0);
	if (r < 0) {
		errno = -r;
		goto io;
	}
	while (off < st.st_size)
		if (sendfile(fd, in, &off, (size_t)(st.st_size - off)) <= 0)
			goto io;
	if (in >= 0)
		close(in);
	close(fd);
	return 0;
io:
	r = sbx_fail(err, errno, "cannot write %s: %s", out, strerror(errno));
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- metadata ---- */

/* durable: fsynced before the rename. A new sandbox's first meta need
 * not be: a crash of the host that could lose it takes its QEMU along,
 * and a missing meta or a stale one of a dead sandbox are cleaned up
 * alike (sandbox_list); readers see it whole either way (the rename). A
 * paused sandbox outlives its QEMU, so its meta must last: every later
 * save (pause, resume, extend, serve's) is durable. The fsync was ~1.3
 * ms of a clone's create -> ready with the state directory on ext4 (more
 * when the disk is busy), nothing on /run's tmpfs, the default. */
static int save(const struct sandbox *sb, bool durable, struct sbx_error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX], num[64], key[80];
	FILE *f;

	path_in(path, sizeof(path), sb, "meta");
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "we");
	if (!f)
		return sbx_fail(err, errno, "cannot write %s: %s", tmp, strerror(errno));
#define PUT(k, fmt, v) (snprintf(num, sizeof(num), fmt, v), kv_write(f, k, num))
	kv_write(f, "id", sb->id);
	kv_write(f, "addr", sb->addr);
	kv_write(f, "accel", sb->accel);
	kv_write(f, "image", sb->image);
	if (sb->template[0])
		kv_write(f, "template", sb->template);
	if (sb->spare[0])
		kv_write(f, "spare", sb->spare);
	if (sb->from_spare)
		kv_write(f, "from_spare", "yes");
	if (sb->disk[0])
		kv_write(f, "disk", sb->disk);
	for (unsigned i = 0; i < sb->nvolumes; i++)
		kv_write(f, "volume", sb->volumes[i]);
	if (sb->pausable)
		kv_write(f, "machine", "pc");
	if (sb->paused) {
		kv_write(f, "state", "paused");
		PUT("paused_at", "%llu", (unsigned long long)sb->paused_at);
	}
	PUT("created", "%llu", (unsigned long long)sb->created);
	PUT("memory_mib", "%llu", (unsigned long long)sb->memory_mib);
	PUT("lifetime_s", "%llu", (unsigned long long)sb->lifetime_s);
	kv_write(f, "lifetime", sb->session ? "session" : "duration");
	PUT("cpus", "%u", sb->cpus);
	PUT("qemu_pid", "%d", (int)sb->qemu_pid);
	PUT("vsockd_pid", "%d", (int)sb->vsockd_pid);
	PUT("gateway_pid", "%d", (int)sb->gateway_pid);
	PUT("share_pid", "%d", (int)sb->share_pid);
	PUT("boot_ms", "%llu", (unsigned long long)sb->boot_ms);
	PUT("guest_start_ns", "%llu", (unsigned long long)sb->ready.start_ns);
	PUT("guest_listen_ns", "%llu", (unsigned long long)sb->ready.listen_ns);
	PUT("guest_modules_ns", "%llu", (unsigned long long)sb->ready.modules_ns);
	PUT("guest_ready_ns", "%llu", (unsigned long long)sb->ready.uptime_ns);
#undef PUT
	for (unsigned i = 0; i < sb->nlabels; i++) {
		snprintf(key, sizeof(key), "label.%s", sb->labels[i].key);
		kv_write(f, key, sb->labels[i].value);
	}
	for (const char *p = sb->allow_net, *nl; *p; p = nl + 1) {
		char pat[ALLOW_PATTERN_MAX + 8];

		if (!(nl = strchr(p, '\n')))
			break;
		snprintf(pat, sizeof(pat), "%.*s", (int)(nl - p), p);
		kv_write(f, "allow_net", pat);
	}
	if (fflush(f) != 0 || (durable && fsync(fileno(f)) < 0)) {
		fclose(f);
		return sbx_fail(err, errno, "cannot write %s: %s", tmp, strerror(errno));
	}
	fclose(f);
	if (rename(tmp, path) < 0)
		return sbx_fail(err, errno, "cannot rename %s: %s", tmp, strerror(errno));
	return 0;
}

int sandbox_save(const struct sandbox *sb, struct sbx_error *err)
{
	return save(sb, true, err);
}

static int meta_set(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	struct sandbox *sb = ctx;
	unsigned long long v = strtoull(value, NULL, 10);

	if (!strcmp(key, "id"))
		str_copy(sb->id, sizeof(sb->id), value);
	else if (!strcmp(key, "addr"))
		str_copy(sb->addr, sizeof(sb->addr), value);
	else if (!strcmp(key, "accel"))
		str_copy(sb->accel, sizeof(sb->accel), value);
	else if (!strcmp(key, "image"))
		str_copy(sb->image, sizeof(sb->image), value);
	else if (!strcmp(key, "disk"))
		str_copy(sb->disk, sizeof(sb->disk), value);
	else if (!strcmp(key, "volume") && sb->nvolumes < SANDBOX_VOLUMES_MAX)
		str_copy(sb->volumes[sb->nvolumes++], sizeof(sb->volumes[0]), value);
	else if (!strcmp(key, "machine"))
		sb->pausable = !strcmp(value, "pc");
	else if (!strcmp(key, "state"))
		sb->paused = !strcmp(value, "paused");
	else if (!strcmp(key, "template"))
		str_copy(sb->template, sizeof(sb->template), value);
	else if (!strcmp(key, "spare"))
		str_copy(sb->spare, sizeof(sb->spare), value);
	else if (!strcmp(key, "from_spare"))
		sb->from_spare = !strcmp(value, "yes");
	else if (!strcmp(key, "paused_at"))
		sb->paused_at = v;
	else if (!strcmp(key, "created"))
		sb->created = v;
	else if (!strcmp(key, "memory_mib"))
		sb->memory_mib = v;
	else if (!strcmp(key, "lifetime_s"))
		sb->lifetime_s = v;
	else if (!strcmp(key, "lifetime"))
		sb->session = !strcmp(value, "session");
	else if (!strcmp(key, "cpus"))
		sb->cpus = (unsigned)v;
	else if (!strcmp(key, "qemu_pid"))
		sb->qemu_pid = (pid_t)v;
	else if (!strcmp(key, "vsockd_pid"))
		sb->vsockd_pid = (pid_t)v;
	else if (!strcmp(key, "gateway_pid"))
		sb->gateway_pid = (pid_t)v;
	else if (!strcmp(key, "share_pid"))
		sb->share_pid = (pid_t)v;
	else if (!strcmp(key, "allow_net")) {
		size_t at = strlen(sb->allow_net);

		snprintf(sb->allow_net + at, sizeof(sb->allow_net) - at, "%s\n", value);
	}
	else if (!strcmp(key, "boot_ms"))
		sb->boot_ms = v;
	else if (!strcmp(key, "guest_start_ns"))
		sb->ready.start_ns = v;
	else if (!strcmp(key, "guest_listen_ns"))
		sb->ready.listen_ns = v;
	else if (!strcmp(key, "guest_modules_ns"))
		sb->ready.modules_ns = v;
	else if (!strcmp(key, "guest_ready_ns"))
		sb->ready.uptime_ns = v;
	else if (str_starts_with(key, "label.") && sb->nlabels < SANDBOX_LABELS_MAX) {
		str_copy(sb->labels[sb->nlabels].key, sizeof(sb->labels[0].key), key + 6);
		str_copy(sb->labels[sb->nlabels].value, sizeof(sb->labels[0].value), value);
		sb->nlabels++;
	}
	return 0; /* unknown keys: written by a newer sbx */
}

/* The token: a file of its own, 0600, never in the metadata. */
static int token_new(struct sandbox *sb, struct sbx_error *err)
{
	uint8_t raw[32];
	char path[PATH_MAX + 16];
	int fd;

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		return sbx_fail(err, EAGAIN, "no randomness for the sandbox token");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(sb->token + 2 * i, 3, "%02x", raw[i]);
	path_in(path, sizeof(path), sb, "token");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || fd_write_all(fd, sb->token, strlen(sb->token)) < 0) {
		if (fd >= 0)
			close(fd);
		return sbx_fail(err, errno, "cannot write %s: %s", path, strerror(errno));
	}
	close(fd);
	sbx_set_token(sb->token);
	return 0;
}

static void token_load(struct sandbox *sb)
{
	char path[PATH_MAX + 16];
	ssize_t n;
	int fd;

	path_in(path, sizeof(path), sb, "token");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, sb->token, sizeof(sb->token) - 1);
	close(fd);
	sb->token[n > 0 ? n : 0] = '\0';
	sbx_set_token(sb->token);
}

static int meta_read(const char *dir, struct sandbox *sb)
{
	char path[PATH_MAX], err[256], text[65536];
	ssize_t n;
	int fd;

	memset(sb, 0, sizeof(*sb));
	snprintf(sb->dir, sizeof(sb->dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/meta", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return -EIO;
	kv_parse_text(text, (size_t)n, path, meta_set, sb, err, sizeof(err));
	if (!sb->id[0])
		return -EBADMSG;
	token_load(sb);
	return 0;
}

/* Stops what is left of a sandbox and removes its state directory. */
static void cleanup(struct sandbox *sb)
{
	sbx_expose_stop_all(sb->dir);
	if (owned_alive(sb->qemu_pid, sb->dir)) {
		kill(sb->qemu_pid, SIGKILL);
		wait_gone(sb->qemu_pid, sb->dir, 2000);
	}
	if (owned_alive(sb->gateway_pid, sb->dir)) {
		/* It exits by itself with QEMU; make sure. */
		kill(sb->gateway_pid, SIGTERM);
		if (!wait_gone(sb->gateway_pid, sb->dir, 1000))
			kill(sb->gateway_pid, SIGKILL);
	}
	if (owned_alive(sb->share_pid, sb->dir)) {
		/* virtiofsd, too, exits with QEMU. */
		if (!wait_gone(sb->share_pid, sb->dir, 1000)) {
			kill(sb->share_pid, SIGKILL);
			wait_gone(sb->share_pid, sb->dir, 1000);
		}
	}
	if (owned_alive(sb->vsockd_pid, sb->dir)) {
		/* It exits by itself once QEMU is gone; give it a moment. */
		if (!wait_gone(sb->vsockd_pid, sb->dir, 1000)) {
			kill(sb->vsockd_pid, SIGKILL);
			wait_gone(sb->vsockd_pid, sb->dir, 1000);
		}
	}
	if (sb->disk[0])
		unlink(sb->disk);
	remove_dir(sb->dir);
}

/* ---- boot ---- */

/* QEMU's command line as NUL-terminated strings in <dir>/qemu.argv. */
static int argv_save(const struct sandbox *sb, char *const argv[], struct sbx_error *err)
{
	char path[PATH_MAX];
	FILE *f;

	path_in(path, sizeof(path), sb, "qemu.argv");
	if (!(f = fopen(path, "we")))
		return sbx_fail(err, errno, "cannot write %s: %s", path, strerror(errno));
	for (int i = 0; argv[i]; i++)
		fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
	if (fclose(f) != 0)
		return sbx_fail(err, EIO, "cannot write %s", path);
	return 0;
}

/* Listens where the agent's READY will arrive: sbx-vsockd relays guest
 * connections to CID 2 port P to the Unix socket <uds>_P; with
 * vhost-vsock it arrives on a host AF_VSOCK port. */
static int ready_listen(const struct sandbox *sb, bool vhost, uint32_t *port)
{
	struct addr a = { .kind = ADDR_UNIX };
	struct sockaddr_vm svm = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				   .svm_port = VMADDR_PORT_ANY };
	socklen_t len = sizeof(svm);
	int fd;

	if (!vhost) {
		*port = SANDBOX_READY_PORT;
		snprintf(a.path, sizeof(a.path), "%s/vsock.sock_%u", sb->dir, SANDBOX_READY_PORT);
		return addr_listen(&a, 4);
	}
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&svm, &len) < 0) {
		close(fd);
		return -errno;
	}
	*port = svm.svm_port;
	return fd;
}

/* Reads the one READY frame on an accepted connection. */
static int read_ready(int fd, struct ready_info *ri)
{
	uint8_t buf[512];
	size_t have = 0;
	struct frame f;
	struct proto_err e;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long n = proto_frame_parse(buf, have, &f, &e);
		ssize_t k;

		if (n < 0)
			return (int)n;
		if (n > 0)
			return proto_ready_decode(&f, ri, &e);
		if (have == sizeof(buf) || poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
		k = read(fd, buf + have, sizeof(buf) - have);
		if (k <= 0)
			return -EPIPE;
		have += (size_t)k;
	}
}

static int boot_failed(struct sandbox *sb, struct sbx_error *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int boot_failed(struct sandbox *sb, struct sbx_error *err, const char *fmt, ...)
{
	char why[512], tail[3072], path[PATH_MAX], qlog[1024], said[512];
	const char *agent;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	path_in(path, sizeof(path), sb, "console.log");
	tail_file(path, CONSOLE_TAIL, tail, sizeof(tail));
	path_in(path, sizeof(path), sb, "qemu.log");
	tail_file(path, 5, qlog, sizeof(qlog));
	/* An error of the agent's leads (init/pid1.c powers off a VM that
	 * has no configuration, saying why), the console's lines follow. */
	agent = strstr(tail, AGENT_ERROR);
	if (agent)
		snprintf(said, sizeof(said), "; the agent said: %.*s",
			 (int)strcspn(agent + strlen(AGENT_ERROR), "\r\n"), agent + strlen(AGENT_ERROR));
	sbx_fail(err, EIO, "sandbox %s did not start: %s%s%s%s%s%s", sb->id, why, agent ? said : "",
	     qlog[0] ? "\nQEMU said:\n" : "", qlog, tail[0] ? "\nlast lines of the guest console:\n" : "",
	     tail);
	cleanup(sb);
	return -EIO;
}

/* The disks of an image: its read-only layers and base, shared by every
 * sandbox that boots it (QEMU opens them read-only), and this sandbox's
 * own writable disk in the data directory (not the state directory,
 * which may be in RAM). Fills drives with QEMU's -drive/-device pairs. */
static int make_disks(const struct sandbox_opts *o, struct sandbox *sb, const struct image *im,
		      const struct template *tp, struct qemu_drive *drives, unsigned *n,
		      struct sbx_error *err)
{
	char dir[PATH_MAX];
	int r;

	for (unsigned i = 0; i <= im->nlayers; i++) {
		char serial[32];
		const char *file = i < im->nlayers ? im->layers[i] : im->base;

		if (i < im->nlayers)
			snprintf(serial, sizeof(serial), DISK_SERIAL_LAYER, i);
		else
			snprintf(serial, sizeof(serial), "%s", DISK_SERIAL_BASE);
		snprintf(drives[*n].drive, sizeof(drives[0].drive),
			 "file=%s,if=none,id=ro%u,format=raw,readonly=on", file, i);
		snprintf(drives[*n].device, sizeof(drives[0].device),
			 "virtio-blk-device,drive=ro%u,serial=%s", i, serial);
		(*n)++;
	}
	snprintf(dir, sizeof(dir), "%s/disks", image_data_dir());
	if ((r = mkdir_parents(dir)) < 0)
		return sbx_fail(err, -r, "cannot create %s: %s", dir, strerror(-r));
	/* A clone's: an overlay over its template's disk (launcher/template.h). */
	snprintf(sb->disk, sizeof(sb->disk), "%s/%s.%s", dir, sb->id, tp ? "qcow2" : "ext4");
	unlink(sb->disk); /* a leftover of a sandbox of that name that died */
	r = tp ? template_disk_clone(tp, sb->disk, err) :
		 image_disk_create(sb->disk, o->disk_bytes ? o->disk_bytes : IMAGE_DEFAULT_DISK, err);
	if (r < 0) {
		sb->disk[0] = '\0';
		return r;
	}
	snprintf(drives[*n].drive, sizeof(drives[0].drive),
		 "file=%s,if=none,id=rw,format=%s,discard=unmap", sb->disk, tp ? "qcow2" : "raw");
	snprintf(drives[*n].device, sizeof(drives[0].device), "virtio-blk-device,drive=rw,serial=%s",
		 DISK_SERIAL_RW);
	(*n)++;
	return 0;
}

_Static_assert(IMAGE_LAYERS_MAX + 2 + SANDBOX_VOLUMES_MAX <= QEMU_DRIVES_MAX,
	       "QEMU's command line has room for every disk");

/* The volumes asked for (NAME:/PATH): each free, each a disk. */
static int take_volumes(const struct sandbox_opts *o, struct sandbox *sb,
			struct qemu_drive *drives, unsigned *n, struct sbx_error *err)
{
	for (size_t i = 0; o->volumes && o->volumes[i]; i++) {
		const char *spec = o->volumes[i], *colon = strchr(spec, ':');
		char name[64], path[PATH_MAX];
		int r;

		if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(name) ||
		    colon[1] != '/' || !colon[2])
			return sbx_fail(err, EINVAL, "--volume %s: expected NAME:/PATH (a path other "
					"than /)", spec);
		if (sb->nvolumes == SANDBOX_VOLUMES_MAX)
			return sbx_fail(err, E2BIG, "at most %d volumes", SANDBOX_VOLUMES_MAX);
		snprintf(name, sizeof(name), "%.*s", (int)(colon - spec), spec);
		for (unsigned j = 0; j < sb->nvolumes; j++)
			if (!strcmp(sb->volumes[j], name))
				return sbx_fail(err, EINVAL, "--volume %s: volume %s named twice", spec,
						name);
		if ((r = store_volume_take(name, path, sizeof(path), err)) < 0)
			return r;
		snprintf(drives[*n].drive, sizeof(drives[0].drive),
			 "file=%s,if=none,id=vol%u,format=raw,discard=unmap", path, sb->nvolumes);
		snprintf(drives[*n].device, sizeof(drives[0].device), "virtio-blk-device,drive=vol%u,serial="
			 DISK_SERIAL_VOLUME, sb->nvolumes, sb->nvolumes);
		(*n)++;
		str_copy(sb->volumes[sb->nvolumes++], sizeof(sb->volumes[0]), name);
	}
	return 0;
}

/* Shares o->rootfs with the guest: QEMU 7.2's virtiofsd serves it on
 * <dir>/share.sock, where QEMU's vhost-user-fs device connects. The
 * directory is not copied; the guest's writes land in it. */
static int start_share(const struct sandbox_opts *o, struct sandbox *sb, char *sock, size_t n,
		       struct sbx_error *err)
{
	char log[PATH_MAX], src[PATH_MAX + 16], tail[1024];
	struct stat st;

	if (stat(o->rootfs, &st) < 0 || !S_ISDIR(st.st_mode))
		return sbx_fail(err, errno ? errno : ENOTDIR, "the root file system %s: %s",
				o->rootfs, errno ? strerror(errno) : "not a directory");
	if (access(VIRTIOFSD, X_OK) < 0)
		return sbx_fail(err, errno, "cannot run %s (qemu-system-common): %s", VIRTIOFSD,
				strerror(errno));
	path_in(sock, n, sb, "share.sock");
	path_in(log, sizeof(log), sb, "virtiofsd.log");
	snprintf(src, sizeof(src), "source=%s", o->rootfs);
	{
		char sockopt[PATH_MAX + 16];
		char *argv[] = { VIRTIOFSD, sockopt, "-o", src, "-o", "cache=auto", "-o",
				 "xattr", NULL };

		snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", sock);
		sb->share_pid = start_daemon(argv, log, -1);
	}
	if (sb->share_pid < 0) {
		sb->share_pid = 0;
		return sbx_fail(err, errno, "cannot start %s: %s", VIRTIOFSD, strerror(errno));
	}
	/* QEMU connects at start: the socket must be there first. */
	for (int waited = 0; waited < 5000; waited += 10) {
		if (access(sock, F_OK) == 0)
			return 0;
		if (waitpid(sb->share_pid, NULL, WNOHANG) == sb->share_pid)
			break;
		usleep(10000);
	}
	tail_file(log, 5, tail, sizeof(tail));
	return sbx_fail(err, EIO, "virtiofsd did not start for %s%s%s", o->rootfs,
			tail[0] ? ": " : "", tail);
}

int sandbox_start_vsockd(struct sandbox *sb, struct sbx_error *err)
{
	char vsockd[PATH_MAX], vhost[PATH_MAX], uds[PATH_MAX], vlog[PATH_MAX], cidarg[16], byte;
	char *vargv[] = { vsockd, "--socket", vhost, "--uds", uds, "--cid", cidarg,
			  "--ready-fd", "3", NULL };
	int pfd[2];
	struct pollfd p;

	sandbox_find_file("sbx-vsockd", vsockd, sizeof(vsockd));
	path_in(vhost, sizeof(vhost), sb, "vhost.sock");
	path_in(uds, sizeof(uds), sb, "vsock.sock");
	path_in(vlog, sizeof(vlog), sb, "vsockd.log");
	snprintf(cidarg, sizeof(cidarg), "%u", GUEST_CID);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return sbx_fail(err, errno, "pipe: %s", strerror(errno));
	sb->vsockd_pid = start_daemon(vargv, vlog, pfd[1]);
	fd_close(&pfd[1]);
	p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	if (sb->vsockd_pid < 0 || poll(&p, 1, 5000) <= 0 || read(pfd[0], &byte, 1) != 1) {
		char tail[1024];

		fd_close(&pfd[0]);
		tail_file(vlog, 5, tail, sizeof(tail));
		return sbx_fail(err, EIO, "sbx-vsockd (%s) did not start%s%s", vsockd,
				tail[0] ? ": " : "", tail);
	}
	fd_close(&pfd[0]);
	return 0;
}

/* The secrets (gateway/secrets.h): checked, given stand-ins and a CA,
 * their hosts added to the allow list. */
static int secrets_begin(const struct sandbox_opts *o, const char *id, struct secret_set **set,
			 struct secrets_allow **allow, struct sbx_error *err)
{
	char why[512];
	uint64_t valid_s = o->session || !o->lifetime_s ? SECRETS_CA_VALID_S :
			   o->lifetime_s + SECRETS_CA_MARGIN_S;

	if (!o->secrets || !o->secrets[0])
		return 0;
	*set = calloc(1, sizeof(**set));
	*allow = calloc(1, sizeof(**allow));
	if (!*set || !*allow)
		return sbx_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; o->secrets[i]; i++)
		if (secrets_add(*set, o->secrets[i], why, sizeof(why)) < 0)
			return sbx_fail(err, EINVAL, "%s", why);
	if (secrets_allow(*set, o->allow_net, *allow, why, sizeof(why)) < 0 ||
	    secrets_make_ca(*set, id, valid_s, why, sizeof(why)) < 0)
		return sbx_fail(err, EINVAL, "%s", why);
	return 0;
}

/* What one boot gathers on its way: files, sockets, the guest's config. */
struct boot {
	char kernel[PATH_MAX], initrd[PATH_MAX], img[PATH_MAX], vhost[PATH_MAX], uds[PATH_MAX];
	char qlog[PATH_MAX], qmp[PATH_MAX], share[PATH_MAX];
	struct image im;
	struct qemu_drive *drives;
	unsigned ndrives;
	bool kvm, vhost_mode;
	uint32_t cid, ready_port;
	int rfd;                 /* where the agent's READY arrives */
	char *config;            /* the guest's config, in its initrd */
	size_t config_len;
};

/* The options, checked before anything starts; names the sandbox. */
static int check_opts(const struct sandbox_opts *o, struct sandbox *sb,
		      const struct secrets_allow *allow, struct boot *b, struct sbx_error *err)
{
	char why[512];
	int r;

	if (o->memory_mib < SANDBOX_MEM_MIN || o->memory_mib > SANDBOX_MEM_MAX)
		return sbx_fail(err, ERANGE, "a sandbox has %d to %d MiB of memory, not %llu",
			    SANDBOX_MEM_MIN, SANDBOX_MEM_MAX, (unsigned long long)o->memory_mib);
	if ((r = check_labels(o->labels, sb, err)) < 0)
		return r;
	if (o->rootfs && o->volumes && o->volumes[0])
		return sbx_fail(err, EINVAL, "--rootfs %s: a shared root takes no --volume yet",
				o->rootfs);
	if (o->rootfs && o->pausable)
		return sbx_fail(err, EINVAL, "--rootfs %s: a shared root cannot be paused (virtiofsd "
				"cannot be migrated)", o->rootfs);
	if (gateway_check(allow ? allow->list : o->allow_net, o->resolve, sb->allow_net,
			  sizeof(sb->allow_net), why, sizeof(why)) < 0)
		return sbx_fail(err, EINVAL, "%s", why);
	/* The gateway listens where sbx-vsockd relays guest connections. */
	if (sb->allow_net[0])
		b->vhost_mode = false;
	if (o->name) {
		if (!name_ok(o->name))
			return sbx_fail(err, EINVAL, "--name %s: a name has 1-%d letters, digits, '-' and '_', "
				    "starting with a letter or digit", o->name, SANDBOX_ID_MAX);
		str_copy(sb->id, sizeof(sb->id), o->name);
	} else {
		uint32_t rnd;

		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid();
		snprintf(sb->id, sizeof(sb->id), "sbx-%08x", rnd);
	}
	return 0;
}

/* Files the VM needs: the kernel, the initramfs and the image, checked
 * before anything starts (and against the template a clone comes from). */
static int find_files(const struct sandbox_opts *o, const struct sandbox *sb,
		      const struct template *tp, struct boot *b, struct sbx_error *err)
{
	int r;

	if (o->kernel)
		str_copy(b->kernel, sizeof(b->kernel), o->kernel);
	else if (getenv("SBX_KERNEL"))
		str_copy(b->kernel, sizeof(b->kernel), getenv("SBX_KERNEL"));
	else
		sandbox_find_file("vmlinuz", b->kernel, sizeof(b->kernel));
	if (o->initrd)
		str_copy(b->initrd, sizeof(b->initrd), o->initrd);
	else if (getenv("SBX_INITRD"))
		str_copy(b->initrd, sizeof(b->initrd), getenv("SBX_INITRD"));
	else
		sandbox_find_file("initramfs.cpio.lz4", b->initrd, sizeof(b->initrd));
	if (access(b->kernel, R_OK) < 0)
		return sbx_fail(err, errno, "cannot read the kernel %s: %s", b->kernel, strerror(errno));
	if (access(b->initrd, R_OK) < 0)
		return sbx_fail(err, errno, "cannot read the initramfs %s: %s", b->initrd,
				strerror(errno));
	if ((r = image_find(o->rootfs ? IMAGE_MINIMAL : tp ? tp->image : o->image ? o->image :
			      image_default(), &b->im, err)) < 0)
		return r;
	if (tp && (o->rootfs || sb->allow_net[0] || (o->volumes && o->volumes[0]) ||
		   (o->tmpfs && o->tmpfs[0])))
		return sbx_fail(err, EINVAL, "template %s: a clone has no %s yet", tp->name,
				o->rootfs ? "--rootfs" : sb->allow_net[0] ? "--allow-net or --secret" :
				o->tmpfs && o->tmpfs[0] ? "tmpfs mount" : "--volume");
	if (tp && (r = template_image_check(tp, &b->im, err)) < 0)
		return r;
	return 0;
}

/* The state directory, and what the sandbox records of itself there. */
static int state_dir_make(const struct sandbox_opts *o, struct sandbox *sb,
			  const struct template *tp, struct boot *b, struct sbx_error *err)
{
	const char *root = sandbox_root();

	if (mkdir(root, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "cannot create %s: %s", root, strerror(errno));
	snprintf(sb->dir, sizeof(sb->dir), "%s/%s", root, sb->id);
	if (strlen(sb->dir) + sizeof("/vsock.sock_1023") > sizeof(((struct sockaddr_un *)0)->sun_path))
		return sbx_fail(err, ENAMETOOLONG, "the state directory %s is too long for Unix "
			    "sockets; set SBX_STATE_DIR to a shorter path", sb->dir);
	if (mkdir(sb->dir, 0700) < 0) {
		if (errno == EEXIST)
			return sbx_fail(err, EEXIST, "a sandbox named %s already exists", sb->id);
		return sbx_fail(err, errno, "cannot create %s: %s", sb->dir, strerror(errno));
	}
	sb->created = (uint64_t)time(NULL);
	sb->memory_mib = tp ? tp->memory_mib : o->memory_mib;
	sb->session = o->session;
	sb->lifetime_s = o->session ? 0 : o->lifetime_s;
	sb->cpus = tp ? tp->cpus : o->cpus ? o->cpus : 1;
	str_copy(sb->accel, sizeof(sb->accel), b->kvm ? "kvm" : "tcg");
	path_in(b->img, sizeof(b->img), sb, "initrd.img");
	path_in(b->vhost, sizeof(b->vhost), sb, "vhost.sock");
	path_in(b->uds, sizeof(b->uds), sb, "vsock.sock");
	path_in(b->qlog, sizeof(b->qlog), sb, "qemu.log");
	path_in(b->qmp, sizeof(b->qmp), sb, "qmp.sock");
	sb->pausable = o->pausable || tp; /* a clone is a -M pc machine, as its template */
	str_copy(sb->image, sizeof(sb->image), b->im.name);
	if (tp)
		str_copy(sb->template, sizeof(sb->template), tp->name);
	return 0;
}

/* The guest's disks, its config in its initrd, and the socket its READY
 * comes to. Undone by removing the state directory. */
static int guest_prepare(const struct sandbox_opts *o, struct sandbox *sb,
			 const struct template *tp, const struct secret_set *secrets,
			 struct boot *b, struct sbx_error *err)
{
	char stub[PATH_MAX];
	int r;

	b->drives = calloc(QEMU_DRIVES_MAX, sizeof(*b->drives));
	if (!b->drives)
		return sbx_fail(err, ENOMEM, "out of memory");
	/* The volumes first: finding who has one reads every sandbox's
	 * metadata, which sets libsbx's token to theirs (token_load). */
	if ((r = take_volumes(o, sb, b->drives, &b->ndrives, err)) < 0)
		return r;
	if ((r = token_new(sb, err)) < 0)
		return r;
	if (b->im.base[0] && (r = make_disks(o, sb, &b->im, tp, b->drives, &b->ndrives, err)) < 0)
		return r;
	b->rfd = ready_listen(sb, b->vhost_mode, &b->ready_port);
	if (b->rfd < 0)
		return sbx_fail(err, b->rfd, "cannot listen for the agent: %s", strerror(-b->rfd));
	if ((r = write_config(o, sb, &b->im, b->ready_port, secrets, &b->config, &b->config_len,
			      err)) < 0)
		return r;
	if (!tp)
		return make_initrd(b->initrd, b->img, b->config, b->config_len, err);
	/* A clone: QEMU's -kernel and -initrd are what it loads into fw_cfg
	 * for a boot that never comes (the kernel and its unpacked root are
	 * in the template's RAM, the config comes with the identity): a stub
	 * kernel and the config alone. The initrd stays in the state
	 * directory: it names this sandbox's QEMU (launcher/qemu.c). */
	path_in(stub, sizeof(stub), sb, "kernel.stub");
	r = template_kernel_stub(b->kernel, stub, err);
	if (r == 0)
		str_copy(b->kernel, sizeof(b->kernel), stub);
	else if (r != -ENOEXEC)
		return r;
	else /* a kernel without a bzImage header is given whole */
		*err = (struct sbx_error){ 0 };
	return make_initrd(NULL, b->img, b->config, b->config_len, err);
}

/* The agent's address: a CID of the host's vhost-vsock, or sbx-vsockd's
 * socket (started here). */
static int agent_addr(struct sandbox *sb, struct boot *b, struct sbx_error *err)
{
	if (b->vhost_mode) {
		/* A CID the host kernel hands out uniquely per VM. */
		if (getrandom(&b->cid, sizeof(b->cid), 0) != sizeof(b->cid))
			b->cid = (uint32_t)getpid();
		b->cid = 3 + b->cid % 0x7ffffff0u;
		snprintf(sb->addr, sizeof(sb->addr), "vsock:%u:%u", b->cid, SANDBOX_AGENT_PORT);
		return 0;
	}
	snprintf(sb->addr, sizeof(sb->addr), "hybrid:%s:%u", b->uds, SANDBOX_AGENT_PORT);
	return sandbox_start_vsockd(sb, err);
}

static void qemu_args(const struct sandbox_opts *o, const struct sandbox *sb, const struct boot *b,
		      bool clone, struct qemu_argv *qa)
{
	char name[80];
	unsigned long khz = 0;

	/* A clone's kernel booted in its template: nothing to calibrate, and
	 * where the host's log has wrapped the figure costs a 50 ms
	 * measurement (launcher/tsc.c). */
	if (!clone && host_tsc_khz(&khz) < 0)
		khz = 0;
	snprintf(name, sizeof(name), "sbx-%s", sb->id);
	struct qemu_spec q = {
		.name = name, .kvm = b->kvm, .memory_mib = sb->memory_mib, .cpus = sb->cpus,
		.kernel = b->kernel, .initrd = b->img, .console = "/dev/fd/3", /* CONSOLE_FD */
		.vhost_user = b->vhost_mode ? NULL : b->vhost, .cid = b->cid, .tsc_khz = khz,
		.drives = b->drives, .ndrives = b->ndrives,
		.share = b->share[0] ? b->share : NULL, .share_tag = SHARE_TAG,
		.pausable = sb->pausable, .qmp = sb->pausable ? b->qmp : NULL,
		.tap = o->nic ? o->nic->tap : NULL, .mac = o->nic ? o->nic->mac : NULL,
	};

	qemu_argv_build(&q, qa);
}

/* The egress gateway, given the secrets through a pipe. */
static int gateway_start(const struct sandbox_opts *o, struct sandbox *sb,
			 const struct secret_set *secrets, const struct secrets_allow *allow,
			 struct sbx_error *err)
{
	char why[512];
	int sfd = secrets ? secrets_pipe(secrets, why, sizeof(why)) : -1;

	sb->gateway_pid = secrets && sfd < 0 ? sfd :
			  gateway_spawn(sb->dir, sb->qemu_pid, allow ? allow->list : o->allow_net,
					o->resolve, sfd, why, sizeof(why));
	if (sfd >= 0)
		close(sfd);
	if (sb->gateway_pid < 0) {
		sb->gateway_pid = 0;
		return boot_failed(sb, err, "%s", why);
	}
	return 0;
}

/* Waits for the agent's READY on rfd, or for QEMU to give up, the
 * deadline to pass or a signal of o->cancel_mask to be pending. */
static int ready_wait(const struct sandbox_opts *o, struct sandbox *sb, int rfd, uint64_t t0,
		      struct sbx_error *err)
{
	unsigned timeout_s = o->boot_timeout_s ? o->boot_timeout_s : BOOT_TIMEOUT_S;
	uint64_t deadline = t0 + (uint64_t)timeout_s * NSEC_PER_SEC;

	for (;;) {
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		int c, r;

		/* Just started: its command line may not be QEMU's yet. */
		if (!pid_running(sb->qemu_pid)) {
			char path[PATH_MAX + 16];
			int status = -1;
			FILE *fp;

			/* Its supervisor writes the status as it reaps it. */
			usleep(50000);
			path_in(path, sizeof(path), sb, "qemu.exit");
			if ((fp = fopen(path, "re"))) {
				if (fscanf(fp, "%d", &status) != 1)
					status = -1;
				fclose(fp);
			}
			return boot_failed(sb, err, "QEMU exited with status %d before the agent was "
					   "ready", status);
		}
		if (o->cancel_mask) {
			sigset_t pending;
			bool stop = false;

			sigpending(&pending);
			for (int sig = 1; sig < NSIG && !stop; sig++)
				stop = sigismember(o->cancel_mask, sig) == 1 &&
				       sigismember(&pending, sig) == 1;
			if (stop)
				return boot_failed(sb, err, "interrupted");
		}
		if (time_mono_ns() >= deadline)
			return boot_failed(sb, err, "the agent was not ready within %u seconds",
					   timeout_s);
		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept4(rfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		r = read_ready(c, &sb->ready);
		close(c);
		if (r == 0)
			return 0;
	}
}

void sandbox_lifetime_note(struct sandbox *sb, const struct lifetime *l)
{
	if (l->kind == LIFE_DURATION)
		sb->lifetime_s = (uint64_t)time(NULL) - sb->created +
				 (l->left_ns + NSEC_PER_SEC / 2) / NSEC_PER_SEC;
}

/* The guest's wall clock starts from a virtual RTC: set it. */
static void guest_clock_set(struct sandbox *sb)
{
	struct lifetime l;
	struct sbx_error e2;

	sbx_set_token(sb->token); /* ours, whatever was loaded meanwhile */
	if (sbx_set_time(sb->addr, 0, &l, &e2) < 0)
		fprintf(stderr, "sbx: warning: cannot set the clock of %s: %s\n", sb->id, e2.msg);
	/* The deadline is the guest's (PID 1 counts from its start). */
	else
		sandbox_lifetime_note(sb, &l);
}

/* A spare that will never be taken: its QEMU is gone; or its taker died
 * mid-restore (SANDBOX_SPARE_TAKEN is there and nobody holds its lock:
 * the taker locks it before the rename and keeps it to the end); or its
 * filler died before SANDBOX_SPARE_READY (neither file, for 10 min). */
static bool spare_dead(const struct sandbox *sb)
{
	char path[PATH_MAX];
	struct stat st;
	bool dead = false;
	int fd;

	if (!sandbox_alive(sb))
		return true;
	path_in(path, sizeof(path), sb, SANDBOX_SPARE_TAKEN);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		dead = flock(fd, LOCK_EX | LOCK_NB) == 0;
		close(fd);
		return dead;
	}
	path_in(path, sizeof(path), sb, SANDBOX_SPARE_READY);
	if (access(path, F_OK) == 0)
		return false;
	path_in(path, sizeof(path), sb, "meta");
	return stat(path, &st) == 0 && time(NULL) - st.st_mtime > 600;
}

/* The next sandbox directory under the state root (dp) whose meta says
 * it is a spare of template NAME, read into sb; false at the end. */
static bool spare_next(DIR *dp, const char *name, struct sandbox *sb)
{
	struct dirent *d;

	while (dp && (d = readdir(dp))) {
		char dir[PATH_MAX];

		if (d->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", sandbox_root(), d->d_name);
		if (meta_read(dir, sb) == 0 && !strcmp(sb->spare, name))
			return true;
	}
	return false;
}

/* Takes a spare of t that waits: locks its SANDBOX_SPARE_READY and
 * renames it SANDBOX_SPARE_TAKEN (one taker wins), and loads it into sb.
 * The lock's fd, to hold until the spare is a sandbox or gone; -ENOENT
 * when none waits. Dead spares met on the way are cleaned away. */
static int spare_take(const struct template *t, struct sandbox *sb)
{
	char path[PATH_MAX], taken[PATH_MAX];
	DIR *dp = opendir(sandbox_root());
	int lock = -ENOENT;

	while (lock < 0 && spare_next(dp, t->name, sb)) {
		if (spare_dead(sb)) {
			cleanup(sb);
			continue;
		}
		if (sb->created < t->created)
			continue; /* of an older template of that name */
		path_in(path, sizeof(path), sb, SANDBOX_SPARE_READY);
		path_in(taken, sizeof(taken), sb, SANDBOX_SPARE_TAKEN);
		if ((lock = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			lock = -ENOENT;
			continue;
		}
		if (flock(lock, LOCK_EX | LOCK_NB) < 0 || rename(path, taken) < 0) {
			close(lock);
			lock = -ENOENT;
		}
	}
	if (dp)
		closedir(dp);
	return lock;
}

unsigned sandbox_spares(const char *name, enum spares_op op)
{
	struct template t = { .created = 0 };
	struct sandbox *sb = malloc(sizeof(*sb));
	char path[PATH_MAX];
	unsigned n = 0;
	DIR *dp;
	int lock;

	if (!sb)
		return 0;
	if (op == SPARES_STOP) {
		str_copy(t.name, sizeof(t.name), name);
		while ((lock = spare_take(&t, sb)) >= 0) {
			cleanup(sb);
			close(lock);
			n++;
		}
		free(sb);
		return n;
	}
	dp = opendir(sandbox_root());
	while (spare_next(dp, name, sb)) {
		if (spare_dead(sb))
			continue;
		path_in(path, sizeof(path), sb,
			op == SPARES_WAITING ? SANDBOX_SPARE_READY : SANDBOX_SPARE_TAKEN);
		n += access(path, F_OK) == 0;
	}
	if (dp)
		closedir(dp);
	free(sb);
	return n;
}

/* Whether a clone made with o can be a spare: it asks for nothing a
 * spare was not made with (its own id, a network, secrets, volumes,
 * mounts, another kernel) and its labels are good (checked again, and
 * refused with their reason, by the create without a spare). */
static bool spare_fits(const struct sandbox_opts *o, const struct secret_set *secrets,
		       const struct secrets_allow *allow, struct sandbox *sb)
{
	struct sbx_error e;

	return !o->name && !o->rootfs && !secrets && !allow && !(o->allow_net && o->allow_net[0]) &&
	       !(o->volumes && o->volumes[0]) && !(o->tmpfs && o->tmpfs[0]) && !o->kernel &&
	       !o->initrd && !o->nic && check_labels(o->labels, sb, &e) == 0;
}

/* A clone that takes one of tp's spares instead of starting a QEMU of its
 * own: -ENOENT when none waits. Once taken, the spare is this sandbox
 * (its id, its state directory); a failure then stops it and says why. */
static int create_from_spare(const struct sandbox_opts *o, struct sandbox *sb,
			     const struct template *tp, struct sbx_error *err)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], *config = NULL;
	struct qmp q = { .fd = -1 };
	struct image im;
	size_t len = 0;
	uint64_t t0 = time_mono_ns();
	int r, lock;

	if ((lock = spare_take(tp, sb)) < 0)
		return -ENOENT;
	sb->spare[0] = '\0';
	sb->from_spare = true;
	sb->created = (uint64_t)time(NULL);
	sb->session = o->session;
	sb->lifetime_s = o->session ? 0 : o->lifetime_s;
	if ((r = check_labels(o->labels, sb, err)) < 0 || (r = image_find(tp->image, &im, err)) < 0 ||
	    (r = template_image_check(tp, &im, err)) < 0 ||
	    (r = write_config(o, sb, &im, SANDBOX_READY_PORT, NULL, &config, &len, err)) < 0)
		goto fail;
	/* The initrd of its configuration, as any clone's; a new file, since
	 * the spare's QEMU maps the one it was started with. */
	path_in(path, sizeof(path), sb, "initrd.img");
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((r = make_initrd(NULL, tmp, config, len, err)) < 0)
		goto fail;
	if (rename(tmp, path) < 0) {
		r = sbx_fail(err, errno, "cannot rename %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if ((r = template_restore_finish(sb, tp, &q, config, len, err)) < 0)
		goto fail;
	sb->boot_ms = (time_mono_ns() - t0) / NSEC_PER_MSEC;
	if ((r = save(sb, false, err)) < 0)
		goto fail;
	path_in(path, sizeof(path), sb, SANDBOX_SPARE_TAKEN);
	unlink(path);
	close(lock);
	free(config);
	return 0;
fail:
	free(config);
	cleanup(sb);
	close(lock);
	return r;
}

/* Boots one sandbox: checked options, a state directory, the guest's
 * disks and config, its vsock device, QEMU (or a template's clone, or a spare up to its QEMU), the
 * gateway, then the agent's READY. Undone on failure. */
static int create(const struct sandbox_opts *o, struct sandbox *sb,
		  const struct secret_set *secrets, const struct secrets_allow *allow,
		  const struct template *tp, bool spare, struct sbx_error *err)
{
	struct boot *b;
	struct qemu_argv qa;
	uint64_t t0;
	int r;

	/* A clone takes a spare when one waits and fits (spare_fits). */
	if (tp && !spare && tp->spares && spare_fits(o, secrets, allow, sb)) {
		r = create_from_spare(o, sb, tp, err);
		if (r == 0)
			return 0;
		if (r != -ENOENT) {
			fprintf(stderr, "sbx: warning: %s; restoring without a spare\n", err->msg);
			*err = (struct sbx_error){ 0 };
		}
	}
	b = calloc(1, sizeof(*b));
	memset(sb, 0, sizeof(*sb));
	if (!b)
		return sbx_fail(err, ENOMEM, "out of memory");
	b->rfd = -1;
	b->kvm = kvm_usable();
	b->vhost_mode = b->kvm && vhost_vsock_usable();
	if ((r = check_opts(o, sb, allow, b, err)) < 0 || (r = find_files(o, sb, tp, b, err)) < 0 ||
	    (r = state_dir_make(o, sb, tp, b, err)) < 0)
		goto out;
	if ((r = guest_prepare(o, sb, tp, secrets, b, err)) < 0)
		goto fail_dir;
	if ((r = agent_addr(sb, b, err)) < 0) {
		if (r != -EIO)
			goto fail_dir;
		cleanup(sb);
		goto out;
	}
	if (o->rootfs && (r = start_share(o, sb, b->share, sizeof(b->share), err)) < 0) {
		cleanup(sb);
		goto out;
	}
	qemu_args(o, sb, b, tp != NULL, &qa);
	/* sbx resume starts the same command line again (launcher/pause.c). */
	if (sb->pausable && (r = argv_save(sb, qa.argv, err)) < 0) {
		cleanup(sb);
		goto out;
	}
	t0 = time_mono_ns();
	if (spare) {
		/* Up to QEMU started with its RAM; the rest when taken. */
		struct qmp q;

		r = template_restore_start(sb, tp, qa.argv, &q, err);
		qmp_close(&q);
		str_copy(sb->spare, sizeof(sb->spare), tp->name);
		if (r == 0 && (r = save(sb, false, err)) == 0) {
			char path[PATH_MAX];
			int fd;

			path_in(path, sizeof(path), sb, SANDBOX_SPARE_READY);
			if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
				r = sbx_fail(err, errno, "cannot create %s: %s", path, strerror(errno));
			else
				close(fd);
		}
		if (r < 0)
			cleanup(sb);
		goto out;
	}
	if (tp) {
		/* Its agent is ready once it has taken the clone's identity. */
		if ((r = template_restore(sb, tp, qa.argv, b->config, b->config_len, err)) < 0) {
			int code = err->code ? err->code : EIO;

			/* With what QEMU said (a stream it could not load), and
			 * the restore's own errno (EBADMSG, ETIMEDOUT, ...). */
			boot_failed(sb, err, "the restore from template %s failed: %s", tp->name,
				    err->msg);
			err->code = code;
			r = -code;
			goto out;
		}
	} else {
		sb->qemu_pid = start_qemu(qa.argv, b->qlog, sb);
		if (sb->qemu_pid < 0) {
			r = boot_failed(sb, err, "cannot start QEMU: %s", strerror(errno));
			goto out;
		}
		if ((sb->allow_net[0] && (r = gateway_start(o, sb, secrets, allow, err)) < 0) ||
		    (r = ready_wait(o, sb, b->rfd, t0, err)) < 0)
			goto out;
	}
	sb->boot_ms = (time_mono_ns() - t0) / NSEC_PER_MSEC;
	/* A clone's agent set its clock and answered its lifetime with
	 * IDENTITY (template_restore): no second round trip. */
	if (!tp)
		guest_clock_set(sb);
	r = save(sb, false, err);
	if (r < 0)
		cleanup(sb);
	goto out;
fail_dir:
	if (sb->disk[0])
		unlink(sb->disk);
	remove_dir(sb->dir);
out:
	if (b->rfd >= 0) {
		char path[PATH_MAX];

		close(b->rfd);
		path_in(path, sizeof(path), sb, "vsock.sock_1023");
		unlink(path);
	}
	free(b->config);
	free(b->drives);
	free(b);
	return r;
}

int sandbox_spare_make(const struct template *t, struct sbx_error *err)
{
	struct sandbox_opts o = { .memory_mib = t->memory_mib, .cpus = t->cpus };
	struct sandbox sb;

	return create(&o, &sb, NULL, NULL, t, true, err);
}

int sandbox_create(const struct sandbox_opts *o, struct sandbox *sb, struct sbx_error *err)
{
	struct secret_set *secrets = NULL;
	struct secrets_allow *allow = NULL;
	int r = secrets_begin(o, o->name ? o->name : "sbx", &secrets, &allow, err);
	struct template t;
	bool picked = false;

	if (r == 0 && o->from)
		r = template_load(o->from, &t, err);
	else if (r == 0 && !o->cold && !o->template_boot && !o->rootfs && !secrets &&
		 !(o->allow_net && o->allow_net[0]) && !(o->volumes && o->volumes[0]) && !o->disk_bytes &&
		 !(o->tmpfs && o->tmpfs[0]) &&
		 !o->kernel && !o->initrd && !getenv("SBX_KERNEL") && !getenv("SBX_INITRD") &&
		 template_find(o->image ? o->image : image_default(), o->memory_mib, o->cpus, &t) == 0)
		picked = true;
	if (r == 0 && (o->from || picked)) {
		r = create(o, sb, secrets, allow, &t, false, err);
		/* Spares up to the template's count again, in the background:
		 * the one this clone took, or one that died. */
		if (r == 0 && t.spares)
			spares_fill(t.name);
		if (r < 0 && picked) {
			fprintf(stderr, "sbx: warning: %s; booting instead\n", err->msg);
			r = create(o, sb, secrets, allow, NULL, false, err);
		}
	} else if (r == 0) {
		r = create(o, sb, secrets, allow, NULL, false, err);
	}
	explicit_bzero(t.token, sizeof(t.token));
	if (secrets) {
		secrets_wipe(secrets);
		free(secrets);
	}
	free(allow);
	return r;
}

/* ---- finding and ending sandboxes ---- */

int sandbox_load_any(const char *id, struct sandbox *sb, struct sbx_error *err)
{
	char dir[PATH_MAX];

	if (!name_ok(id))
		return sbx_fail(err, ENOENT, "no such sandbox: %s", id);
	snprintf(dir, sizeof(dir), "%s/%s", sandbox_root(), id);
	if (meta_read(dir, sb) < 0 || sb->spare[0]) {
		if (is_leftover(dir))
			remove_dir(dir);
		return sbx_fail(err, ENOENT, "no such sandbox: %s", id);
	}
	if (!sb->paused && !sandbox_alive(sb)) {
		cleanup(sb);
		return sbx_fail(err, ENOENT, "sandbox %s is no longer running", id);
	}
	return 0;
}

int sandbox_load(const char *id, struct sandbox *sb, struct sbx_error *err)
{
	int r = sandbox_load_any(id, sb, err);

	if (r == 0 && sb->paused)
		return sbx_fail(err, EAGAIN, "sandbox %s is paused (sbx resume %s)", id, id);
	return r;
}

int sandbox_kill(struct sandbox *sb, const char *reason, struct sbx_error *err)
{
	struct sbx_error e2;

	/* Ask the guest first: it tells its clients, stops its processes,
	 * syncs and powers off, and QEMU exits. A paused one has no QEMU:
	 * its saved state goes with its directory. */
	if (sb->paused) {
		char state[PATH_MAX];

		sandbox_memory_path(sb, state, sizeof(state));
		unlink(state);
	} else {
		sbx_shutdown(sb->addr, reason, &e2);
		if (!wait_gone(sb->qemu_pid, sb->dir, KILL_WAIT_MS))
			kill(sb->qemu_pid, SIGKILL);
	}
	cleanup(sb);
	if (access(sb->dir, F_OK) == 0) {
		char names[512];
		int e = rmdir(sb->dir) < 0 ? errno : 0;

		dir_names(sb->dir, names, sizeof(names));
		return sbx_fail(err, e ? e : EBUSY, "cannot remove %s: %s%s%s", sb->dir,
				strerror(e ? e : EBUSY), names[0] ? "; still in it: " : "", names);
	}
	return 0;
}

void sandbox_session_register(const struct sandbox *sb)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/session.%d", sb->dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

void sandbox_session_unregister(const struct sandbox *sb)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/session.%d", sb->dir, (int)getpid());
	unlink(path);
}

int sandbox_close_sessions(const struct sandbox *sb)
{
	struct dirent *d;
	DIR *dp = opendir(sb->dir);
	int n = 0;

	if (!dp)
		return 0;
	while ((d = readdir(dp))) {
		char path[PATH_MAX + 300], cmd[256] = "";
		pid_t pid;
		ssize_t k;
		int fd;

		if (strncmp(d->d_name, "session.", 8) != 0)
			continue;
		pid = (pid_t)atoi(d->d_name + 8);
		/* Only an sbx process: the pid may have been reused. */
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
		if (pid > 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
			k = read(fd, cmd, sizeof(cmd) - 1);
			close(fd);
			cmd[k > 0 ? k : 0] = '\0';
			if (strstr(cmd, "sbx") && kill(pid, SIGTERM) == 0)
				n++;
		}
		snprintf(path, sizeof(path), "%s/%s", sb->dir, d->d_name);
		unlink(path);
	}
	closedir(dp);
	return n;
}

int sandbox_list(void (*fn)(void *arg, const struct sandbox *sb), void *arg)
{
	const char *root = sandbox_root();
	struct sandbox *sb = malloc(sizeof(*sb));
	struct dirent *d;
	DIR *dp;

	if (!sb)
		return -ENOMEM;
	dp = opendir(root);
	if (!dp) {
		free(sb);
		return errno == ENOENT ? 0 : -errno;
	}
	while ((d = readdir(dp))) {
		char dir[PATH_MAX];

		if (d->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", root, d->d_name);
		if (meta_read(dir, sb) < 0) {
			struct stat st;

			/* A directory without metadata is a sandbox still
			 * booting, or one whose create died: leave recent
			 * ones alone. What a racing kill left goes now. */
			if (is_leftover(dir) ||
			    (stat(dir, &st) == 0 && time(NULL) - st.st_mtime > 600))
				remove_dir(dir);
			continue;
		}
		if (sb->spare[0]) {
			/* A template's spare is no sandbox yet; a dead one goes. */
			if (spare_dead(sb))
				cleanup(sb);
			continue;
		}
		if (!sb->paused && !sandbox_alive(sb)) {
			cleanup(sb);
			continue;
		}
		fn(arg, sb);
	}
	closedir(dp);
	free(sb);
	return 0;
}

/* ---- for launcher/pause.c ---- */

void sandbox_path(char *out, size_t n, const struct sandbox *sb, const char *name)
{
	path_in(out, n, sb, name);
}

void sandbox_memory_path(const struct sandbox *sb, char *out, size_t n)
{
	snprintf(out, n, "%s/paused/%s.state", image_data_dir(), sb->id);
}

pid_t sandbox_start_qemu(char *const argv[], const struct sandbox *sb)
{
	char qlog[PATH_MAX];

	path_in(qlog, sizeof(qlog), sb, "qemu.log");
	return start_qemu(argv, qlog, sb);
}

bool sandbox_wait_gone(pid_t pid, const struct sandbox *sb, int ms)
{
	return wait_gone(pid, sb->dir, ms);
}

int sandbox_mkdirs(const char *path)
{
	return mkdir_parents(path);
}

bool sandbox_owns(pid_t pid, const struct sandbox *sb)
{
	return owned_alive(pid, sb->dir);
}
