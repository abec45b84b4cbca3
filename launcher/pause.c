/* sbx pause and resume: see pause.h. QEMU 7.2 marks vhost-user-vsock
 * unmigratable, and its backend lacks VHOST_USER_PROTOCOL_F_LOG_SHMFD: both
 * blockers go when the device is unplugged (ACPI PCI hotplug on -M pc).
 * The migration stream goes to a file through `exec:cat` (7.2 has no
 * file: URI); the guest's clocks stop with the VM, so its CLOCK_BOOTTIME,
 * and the lifetime PID 1 counts on it, do not run while it is paused. */
#include "launcher/pause.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher/qemu.h"
#include "launcher/qmp.h"
#include "lib/util.h"

#define QMP_TIMEOUT_MS 10000
#define MIGRATE_TIMEOUT_MS 600000
#define AGENT_TIMEOUT_MS 30000
#define INCOMING_ASK_MS 100 /* the longest wait between two query-status */
#define ARGV_FILE_MAX 65536

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The vsock device back, as the command line had it. */
int sandbox_vsock_plug(struct qmp *q, struct sbx_error *err)
{
	char addr[16];
	json_t *args;
	int r;

	snprintf(addr, sizeof(addr), "0x%x", QEMU_VSOCK_SLOT);
	args = json_pack("{s:s, s:s, s:s, s:s}", "driver", "vhost-user-vsock-pci", "id",
			 QEMU_VSOCK_ID, "chardev", QEMU_VHOST_USER_CHARDEV, "addr", addr);
	if (!args)
		return sbx_fail(err, ENOMEM, "out of memory");
	r = qmp_run(q, "device_add", args, NULL, QMP_TIMEOUT_MS, err);
	json_decref(args);
	return r;
}

/* Polls query-migrate until the migration ends. */
static int migrate_wait(struct qmp *q, const struct sandbox *sb, struct sbx_error *err)
{
	long long deadline = now_ms() + MIGRATE_TIMEOUT_MS;

	for (;;) {
		json_t *ret;
		const char *st, *why;
		int r = qmp_run(q, "query-migrate", NULL, &ret, QMP_TIMEOUT_MS, err);

		if (r < 0)
			return r;
		st = json_string_value(json_object_get(ret, "status"));
		why = json_string_value(json_object_get(ret, "error-desc"));
		if (st && !strcmp(st, "completed")) {
			json_decref(ret);
			return 0;
		}
		if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
			r = sbx_fail(err, EIO, "saving sandbox %s failed: %s", sb->id,
				     why ? why : st);
			json_decref(ret);
			return r;
		}
		json_decref(ret);
		if (now_ms() >= deadline)
			return sbx_fail(err, ETIMEDOUT, "saving sandbox %s took over %d s", sb->id,
					MIGRATE_TIMEOUT_MS / 1000);
		usleep(20000);
	}
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* x-ignore-shared: QEMU 7.2 leaves the guest's RAM (a shared memfd or
 * file) out of the stream. Set either way: a template's clone was loaded
 * with it on, and its own pause must save its RAM. */
int pause_ram_apart(struct qmp *q, bool apart, struct sbx_error *err)
{
	json_t *args = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
				 "x-ignore-shared", "state", apart);
	int r;

	if (!args)
		return sbx_fail(err, ENOMEM, "out of memory");
	r = qmp_run(q, "migrate-set-capabilities", args, NULL, QMP_TIMEOUT_MS, err);
	json_decref(args);
	return r;
}

int sandbox_pause(struct sandbox *sb, struct sbx_error *err)
{
	return sandbox_pause_then(sb, false, NULL, NULL, err);
}

int sandbox_pause_then(struct sandbox *sb, bool ram_apart,
		       int (*saved)(struct sandbox *sb, void *arg, struct sbx_error *err), void *arg,
		       struct sbx_error *err)
{
	char path[PATH_MAX], state[PATH_MAX], tmp[PATH_MAX + 8], uri[PATH_MAX + 32];
	struct qmp q;
	json_t *args;
	int r;

	if (sb->paused)
		return sbx_fail(err, EALREADY, "sandbox %s is already paused", sb->id);
	if (!sb->pausable)
		return sbx_fail(err, EOPNOTSUPP, "sandbox %s cannot be paused: it was not created "
				"with --pausable", sb->id);
	if (sb->session)
		return sbx_fail(err, EOPNOTSUPP, "sandbox %s cannot be paused: its lifetime is a "
				"session (create it with --lifetime DURATION)", sb->id);
	if (sb->allow_net[0] || !sb->vsockd_pid)
		return sbx_fail(err, EOPNOTSUPP, "sandbox %s cannot be paused: %s", sb->id,
				sb->allow_net[0] ? "it has network egress (--allow-net)" :
				"it uses the host's vhost-vsock");
	sandbox_memory_path(sb, state, sizeof(state));
	snprintf(tmp, sizeof(tmp), "%s.new", state);
	/* QEMU runs the exec: URI with sh -c: the path goes in single quotes. */
	if (strpbrk(tmp, "'\\\n"))
		return sbx_fail(err, EINVAL, "cannot save to %s: a quote or backslash in the path",
				tmp);
	str_copy(path, sizeof(path), state);
	*strrchr(path, '/') = '\0';
	if ((r = sandbox_mkdirs(path)) < 0)
		return sbx_fail(err, -r, "cannot create %s: %s", path, strerror(-r));

	/* The guest's memory: readable by us alone (cat > keeps the mode). */
	{
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0)
			return sbx_fail(err, errno, "cannot create %s: %s", tmp, strerror(errno));
		close(fd);
	}
	sandbox_path(path, sizeof(path), sb, "qmp.sock");
	if ((r = qmp_open(&q, path, QMP_TIMEOUT_MS, err)) < 0) {
		unlink(tmp);
		return r;
	}
	args = json_pack("{s:s}", "id", QEMU_VSOCK_ID);
	r = qmp_run(&q, "device_del", args, NULL, QMP_TIMEOUT_MS, err);
	json_decref(args);
	if (r < 0 || (r = qmp_wait_event(&q, "DEVICE_DELETED", QMP_TIMEOUT_MS, err)) < 0)
		goto out;
	if ((r = pause_ram_apart(&q, ram_apart, err)) < 0) {
		struct sbx_error e2;

		sandbox_vsock_plug(&q, &e2);
		goto out;
	}
	snprintf(uri, sizeof(uri), "exec:cat > '%s'", tmp);
	args = json_pack("{s:s}", "uri", uri);
	r = qmp_run(&q, "migrate", args, NULL, QMP_TIMEOUT_MS, err);
	json_decref(args);
	if (r == 0)
		r = migrate_wait(&q, sb, err);
	if (r == 0 && saved)
		r = saved(sb, arg, err);
	if (r == 0 && (r = fsync_path(tmp)) < 0)
		sbx_fail(err, -r, "cannot sync %s: %s", tmp, strerror(-r));
	if (r == 0 && rename(tmp, state) < 0)
		r = sbx_fail(err, errno, "cannot rename %s: %s", tmp, strerror(errno));
	if (r < 0) {
		struct sbx_error e2;

		/* Running again, as it was: a failed migration resumes the VM. */
		unlink(tmp);
		qmp_run(&q, "cont", NULL, NULL, QMP_TIMEOUT_MS, &e2);
		sandbox_vsock_plug(&q, &e2);
		goto out;
	}
	sb->paused = true;
	sb->paused_at = (uint64_t)time(NULL);
	if ((r = sandbox_save(sb, err)) < 0) {
		struct sbx_error e2;

		sb->paused = false;
		unlink(state);
		qmp_run(&q, "cont", NULL, NULL, QMP_TIMEOUT_MS, &e2);
		sandbox_vsock_plug(&q, &e2);
		goto out;
	}
	{
		struct sbx_error e2;

		/* QEMU may close the socket before it answers. */
		qmp_run(&q, "quit", NULL, NULL, QMP_TIMEOUT_MS, &e2);
	}
	if (!sandbox_wait_gone(sb->qemu_pid, sb, QMP_TIMEOUT_MS))
		kill(sb->qemu_pid, SIGKILL);
	/* sbx-vsockd exits once QEMU is gone. */
	if (sandbox_owns(sb->vsockd_pid, sb) && !sandbox_wait_gone(sb->vsockd_pid, sb, 2000))
		kill(sb->vsockd_pid, SIGKILL);
out:
	if (r < 0)
		unlink(tmp); /* nothing half-written: an early failure left it empty */
	qmp_close(&q);
	return r;
}

int pause_incoming_uri(const char *state, char *uri, size_t n, struct sbx_error *err)
{
	/* QEMU runs the exec: URI with sh -c: the path goes in single quotes. */
	if (strpbrk(state, "'\\\n"))
		return sbx_fail(err, EINVAL, "cannot restore from %s: a quote or backslash in the "
				"path", state);
	snprintf(uri, n, "exec:cat '%s'", state);
	return 0;
}

int pause_incoming_argv(char *const argv[], const char *uri, char **out, size_t max,
			struct sbx_error *err)
{
	size_t k = 0;

	for (size_t i = 0; argv[i]; i++) {
		if (k + 4 >= max)
			return sbx_fail(err, E2BIG, "QEMU's command line is too long");
		if (!strcmp(argv[i], "-device") && argv[i + 1] &&
		    str_starts_with(argv[i + 1], "vhost-user-vsock-pci")) {
			i++; /* the value too */
			continue;
		}
		out[k++] = argv[i];
	}
	out[k++] = "-incoming";
	out[k++] = (char *)uri;
	out[k] = NULL;
	return 0;
}

/* QEMU's saved command line (<dir>/qemu.argv, NUL-separated arguments)
 * into argv, pointing into buf. */
static int saved_argv(const struct sandbox *sb, char *buf, size_t n, char **argv, size_t max,
		      struct sbx_error *err)
{
	char path[PATH_MAX];
	size_t len = 0, k = 0;
	ssize_t got;
	int fd;

	sandbox_path(path, sizeof(path), sb, "qemu.argv");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return sbx_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	while (len < n && (got = read(fd, buf + len, n - len)) > 0)
		len += (size_t)got;
	close(fd);
	if (len == 0 || len == n || buf[len - 1] != '\0')
		return sbx_fail(err, EINVAL, "%s is not a command line sbx wrote", path);
	for (size_t at = 0; at < len; at += strlen(buf + at) + 1) {
		if (k + 1 >= max)
			return sbx_fail(err, E2BIG, "%s: too many arguments", path);
		argv[k++] = buf + at;
	}
	argv[k] = NULL;
	return 0;
}

/* Asks query-status until the incoming migration is loaded and the VM
 * runs. Between two
 * questions it waits for QEMU's RESUME event (a VM that runs once
 * loaded), not a fixed time: the question after it comes at once. */
int pause_incoming_wait(struct qmp *q, const struct sandbox *sb, struct sbx_error *err)
{
	long long deadline = now_ms() + MIGRATE_TIMEOUT_MS;

	for (;;) {
		json_t *ret;
		const char *st;
		int r = qmp_run(q, "query-status", NULL, &ret, QMP_TIMEOUT_MS, err);

		if (r < 0)
			return r;
		st = json_string_value(json_object_get(ret, "status"));
		if (st && strcmp(st, "inmigrate") != 0) {
			r = !strcmp(st, "running") ? 0 : sbx_fail(err, EIO, "restoring sandbox %s failed: QEMU is %s",
					      sb->id, st);
			json_decref(ret);
			return r;
		}
		json_decref(ret);
		if (now_ms() >= deadline)
			return sbx_fail(err, ETIMEDOUT, "restoring sandbox %s took over %d s",
					sb->id, MIGRATE_TIMEOUT_MS / 1000);
		/* A timeout asks again; QEMU gone (a stream it could not
		 * load) is the error. */
		if ((r = qmp_wait_event(q, "RESUME", INCOMING_ASK_MS, err)) < 0 && r != -ETIMEDOUT)
			return r;
	}
}

/* The agent answers once the guest has probed the new device; setting
 * its wall clock (which stood still while paused) is the question. */
static int agent_wait(struct sandbox *sb, struct sbx_error *err)
{
	long long deadline = now_ms() + AGENT_TIMEOUT_MS;
	struct lifetime l;

	sbx_set_token(sb->token);
	for (;;) {
		if (sbx_set_time(sb->addr, 0, &l, err) == 0)
			break;
		if (now_ms() >= deadline)
			return sbx_fail(err, err->code ? err->code : ETIMEDOUT, "the agent of %s did "
					"not answer within %d s of the restore: %s", sb->id,
					AGENT_TIMEOUT_MS / 1000, err->msg);
		usleep(50000);
	}
	sandbox_lifetime_note(sb, &l);
	return 0;
}

int sandbox_resume(struct sandbox *sb, struct sbx_error *err)
{
	char state[PATH_MAX], path[PATH_MAX], incoming[PATH_MAX + 16];
	char *buf = NULL, *saved[QEMU_ARGV_MAX + 4], *argv[QEMU_ARGV_MAX + 4];
	pid_t old_qemu = sb->qemu_pid, old_vsockd = sb->vsockd_pid;
	struct qmp q = { .fd = -1 };
	int r;

	if (!sb->paused)
		return sbx_fail(err, EINVAL, "sandbox %s is not paused", sb->id);
	sandbox_memory_path(sb, state, sizeof(state));
	if (access(state, R_OK) < 0)
		return sbx_fail(err, errno, "cannot read the saved state %s: %s", state,
				strerror(errno));
	if (!(buf = malloc(ARGV_FILE_MAX)))
		return sbx_fail(err, ENOMEM, "out of memory");
	if ((r = saved_argv(sb, buf, ARGV_FILE_MAX, saved, sizeof(saved) / sizeof(saved[0]),
			    err)) < 0 ||
	    (r = pause_incoming_uri(state, incoming, sizeof(incoming), err)) < 0 ||
	    (r = pause_incoming_argv(saved, incoming, argv, sizeof(argv) / sizeof(argv[0]),
				     err)) < 0)
		goto out;
	sandbox_path(path, sizeof(path), sb, "qemu.exit");
	unlink(path);
	if ((r = sandbox_start_vsockd(sb, err)) < 0)
		goto fail;
	sb->qemu_pid = sandbox_start_qemu(argv, sb);
	if (sb->qemu_pid < 0) {
		r = sbx_fail(err, errno, "cannot start QEMU: %s", strerror(errno));
		goto fail;
	}
	sandbox_path(path, sizeof(path), sb, "qmp.sock");
	if ((r = qmp_open(&q, path, QMP_TIMEOUT_MS, err)) < 0 ||
	    (r = pause_incoming_wait(&q, sb, err)) < 0 || (r = sandbox_vsock_plug(&q, err)) < 0 ||
	    (r = agent_wait(sb, err)) < 0)
		goto fail;
	sb->paused = false;
	if ((r = sandbox_save(sb, err)) < 0) {
		sb->paused = true;
		goto fail;
	}
	unlink(state);
	goto out;
fail:
	if (sb->qemu_pid > 0 && sandbox_owns(sb->qemu_pid, sb)) {
		kill(sb->qemu_pid, SIGKILL);
		sandbox_wait_gone(sb->qemu_pid, sb, 2000);
	}
	if (sb->vsockd_pid > 0 && sandbox_owns(sb->vsockd_pid, sb)) {
		kill(sb->vsockd_pid, SIGKILL);
		sandbox_wait_gone(sb->vsockd_pid, sb, 2000);
	}
	sb->qemu_pid = old_qemu;
	sb->vsockd_pid = old_vsockd;
out:
	qmp_close(&q);
	free(buf);
	return r;
}
