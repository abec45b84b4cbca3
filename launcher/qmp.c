/* QMP client: see qmp.h. Messages are parsed with jansson; a message is
 * one line of at most sizeof(q->buf) bytes (QEMU ends each with CRLF). */
#include "launcher/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define QMP_RETRY_US 2000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next message, parsed; NULL with err set on a timeout, a closed
 * socket or a message that is not a JSON object. */
static json_t *read_msg(struct qmp *q, long long deadline, struct sbx_error *err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->have);

		if (nl) {
			json_error_t je;
			size_t len = (size_t)(nl - q->buf);
			json_t *m = json_loadb(q->buf, len, 0, &je);

			memmove(q->buf, nl + 1, q->have - len - 1);
			q->have -= len + 1;
			if (!json_is_object(m)) {
				json_decref(m);
				sbx_fail(err, EPROTO, "QEMU sent a QMP message that is not a JSON "
					 "object: %s", je.text);
				return NULL;
			}
			return m;
		}
		if (q->have == sizeof(q->buf)) {
			sbx_fail(err, EMSGSIZE, "QEMU sent a QMP message over %zu bytes",
				 sizeof(q->buf));
			return NULL;
		}
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = q->fd, .events = POLLIN };

		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			sbx_fail(err, ETIMEDOUT, "QEMU did not answer on QMP in time");
			return NULL;
		}
		ssize_t n = read(q->fd, q->buf + q->have, sizeof(q->buf) - q->have);

		if (n <= 0) {
			sbx_fail(err, n < 0 ? errno : EPIPE, "QMP: QEMU closed the connection");
			return NULL;
		}
		q->have += (size_t)n;
	}
}

static void note_event(struct qmp *q, json_t *m)
{
	const char *name = json_string_value(json_object_get(m, "event"));

	if (name && q->nseen < sizeof(q->seen) / sizeof(q->seen[0]))
		str_copy(q->seen[q->nseen++], sizeof(q->seen[0]), name);
}

/* send() without SIGPIPE: QEMU may be gone (a restore that failed to load
 * exits), which is an error to report, not a signal that kills us. A
 * descriptor to pass (pass_fd >= 0) goes with the first byte. */
static int send_all(int fd, const char *buf, size_t len, int pass_fd)
{
	while (len) {
		ssize_t n = fd_send(fd, buf, len, &pass_fd, pass_fd >= 0, MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		buf += n;
		len -= (size_t)n;
		pass_fd = -1;
	}
	return 0;
}

static int send_cmd(struct qmp *q, const char *cmd, json_t *args, int pass_fd,
		    struct sbx_error *err)
{
	json_t *m = json_pack("{s:s}", "execute", cmd);
	char *text;
	int r = 0;

	if (!m)
		return sbx_fail(err, ENOMEM, "out of memory");
	if (args)
		json_object_set(m, "arguments", args);
	text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	if (!text)
		return sbx_fail(err, ENOMEM, "out of memory");
	size_t len = strlen(text);

	text[len] = '\n'; /* json_dumps' NUL: the line's end instead */
	if ((r = send_all(q->fd, text, len + 1, pass_fd)) < 0)
		r = sbx_fail(err, -r, "QMP: cannot send %s: %s", cmd, strerror(-r));
	free(text);
	return r;
}

static int run(struct qmp *q, const char *cmd, json_t *args, int pass_fd, json_t **ret,
	       int timeout_ms, struct sbx_error *err)
{
	long long deadline = now_ms() + timeout_ms;
	int r;

	if (ret)
		*ret = NULL;
	if ((r = send_cmd(q, cmd, args, pass_fd, err)) < 0)
		return r;
	for (;;) {
		json_t *m = read_msg(q, deadline, err), *v;

		if (!m)
			return -err->code;
		if (json_object_get(m, "event")) {
			note_event(q, m);
		} else if ((v = json_object_get(m, "return"))) {
			if (ret)
				*ret = json_incref(v);
			json_decref(m);
			return 0;
		} else if ((v = json_object_get(m, "error"))) {
			const char *desc = json_string_value(json_object_get(v, "desc"));

			r = sbx_fail(err, EIO, "QEMU refused %s: %s", cmd, desc ? desc : "(no reason)");
			json_decref(m);
			return r;
		}
		json_decref(m);
	}
}

int qmp_run(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
	    struct sbx_error *err)
{
	return run(q, cmd, args, -1, ret, timeout_ms, err);
}

int qmp_send_fd(struct qmp *q, const char *name, int fd, int timeout_ms, struct sbx_error *err)
{
	json_t *args = json_pack("{s:s}", "fdname", name);
	int r;

	if (!args)
		return sbx_fail(err, ENOMEM, "out of memory");
	r = run(q, "getfd", args, fd, NULL, timeout_ms, err);
	json_decref(args);
	return r;
}

int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct sbx_error *err)
{
	long long deadline = now_ms() + timeout_ms;

	for (unsigned i = 0; i < q->nseen; i++)
		if (!strcmp(q->seen[i], name))
			return 0;
	for (;;) {
		json_t *m = read_msg(q, deadline, err);
		const char *ev;

		if (!m) {
			if (err->code == ETIMEDOUT)
				sbx_fail(err, ETIMEDOUT, "QEMU sent no %s event within %d ms", name,
					 timeout_ms);
			return -err->code;
		}
		ev = json_string_value(json_object_get(m, "event"));
		bool hit = ev && !strcmp(ev, name);

		json_decref(m);
		if (hit)
			return 0;
	}
}

int qmp_open(struct qmp *q, const char *path, int timeout_ms, struct sbx_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + timeout_ms;
	json_t *m;

	memset(q, 0, sizeof(*q));
	if (strlen(path) >= sizeof(sa.sun_path))
		return sbx_fail(err, ENAMETOOLONG, "QMP socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return sbx_fail(err, errno, "socket: %s", strerror(errno));
		if (connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int e = errno;

		close(q->fd);
		q->fd = -1;
		if ((e != ENOENT && e != ECONNREFUSED) || now_ms() >= deadline)
			return sbx_fail(err, e, "cannot connect to QEMU's QMP socket %s: %s", path,
					strerror(e));
		/* QEMU is starting: a restore waits on this (a connect
		 * costs little, a late one the whole interval). */
		usleep(QMP_RETRY_US);
	}
	/* The greeting ({"QMP": ...}), then capabilities negotiation. */
	if (!(m = read_msg(q, deadline, err)))
		goto fail;
	json_decref(m);
	if (qmp_run(q, "qmp_capabilities", NULL, NULL, (int)(deadline - now_ms()), err) < 0)
		goto fail;
	return 0;
fail:
	close(q->fd);
	q->fd = -1;
	return -err->code;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}
