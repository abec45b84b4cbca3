/* qemu-ga client for the benchmarks: see qga.h. */
#include "bench/qga.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

static _Noreturn void qga_die(const char *what, const char *why)
{
	fprintf(stderr, "sbx-bench qga: %s: %s\n", what, why);
	exit(1);
}

static void grow(char **p, size_t *cap, size_t want)
{
	if (want <= *cap)
		return;
	*cap = want + want / 2;
	*p = realloc(*p, *cap);
	if (!*p)
		qga_die("realloc", strerror(ENOMEM));
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			qga_die("write", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

/* The next reply line; the one before it is dropped first. */
static char *read_line(struct qga *q)
{
	size_t scanned = 0;
	char *nl;

	for (;;) {
		nl = q->len > scanned ? memchr(q->buf + scanned, '\n', q->len - scanned) : NULL;
		if (nl)
			break;
		scanned = q->len;
		grow(&q->buf, &q->cap, q->len + (1 << 20));
		ssize_t n = read(q->fd, q->buf + q->len, q->cap - q->len - 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			qga_die("read", n ? strerror(errno) : "qemu-ga closed the connection");
		q->len += (size_t)n;
	}
	*nl = '\0';
	q->line_len = (size_t)(nl - q->buf) + 1;
	return q->buf;
}

static void consume(struct qga *q)
{
	size_t used = q->line_len;

	q->line_len = 0;
	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
}

const char *qga_call(struct qga *q, const char *json)
{
	const char *line;

	if (q->line_len)
		consume(q);
	send_all(q->fd, json, strlen(json));
	send_all(q->fd, "\n", 1);
	line = read_line(q);
	if (strstr(line, "\"error\""))
		qga_die(json[0] ? "request" : "", line);
	return line;
}

/* The integer after "key": in a reply. */
static long long field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		qga_die(key, line);
	return strtoll(p + strlen(pat), NULL, 10);
}

void qga_open(struct qga *q, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[128];
	uint32_t id;

	memset(q, 0, sizeof(*q));
	if (strlen(path) >= sizeof(sa.sun_path))
		qga_die(path, strerror(ENAMETOOLONG));
	strcpy(sa.sun_path, path);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		qga_die(path, strerror(errno));
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint32_t)getpid();
	id &= 0x7fffffff;
	snprintf(req, sizeof(req), "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":%u}}",
		 (unsigned)id);
	send_all(q->fd, req, strlen(req));
	send_all(q->fd, "\n", 1);
	/* Anything before our id's reply is left over from someone else. */
	for (;;) {
		const char *line = read_line(q);

		if (strstr(line, "\"return\"") && field(line, "return") == (long long)id)
			break;
		consume(q);
	}
}

void qga_close(struct qga *q)
{
	close(q->fd);
	free(q->buf);
	free(q->req);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}

static void req_printf(struct qga *q, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(q->req, q->req_cap, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < q->req_cap)
			return;
		grow(&q->req, &q->req_cap, (size_t)n + 1);
	}
}

pid_t qga_exec_start(struct qga *q, const char *const *argv)
{
	char args[1024] = "";
	size_t off = 0;

	/* Our arguments are plain words: no JSON escaping needed. */
	for (int i = 1; argv[i]; i++)
		off += (size_t)snprintf(args + off, sizeof(args) - off, "%s\"%s\"", i > 1 ? "," : "",
					argv[i]);
	req_printf(q, "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"%s\",\"arg\":[%s]}}",
		   argv[0], args);
	return (pid_t)field(qga_call(q, q->req), "pid");
}

int qga_exec_wait(struct qga *q, const char *const *argv)
{
	pid_t pid = qga_exec_start(q, argv);
	char req[128];

	snprintf(req, sizeof(req),
		 "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%d}}", (int)pid);
	for (;;) {
		const char *line;

		if (q->poll_us)
			usleep(q->poll_us);
		line = qga_call(q, req);
		if (strstr(line, "\"exited\": true") || strstr(line, "\"exited\":true"))
			return (int)field(line, "exitcode");
	}
}

static int open_handle(struct qga *q, const char *path, const char *mode)
{
	req_printf(q, "{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"%s\",\"mode\":\"%s\"}}",
		   path, mode);
	return (int)field(qga_call(q, q->req), "return");
}

static void close_handle(struct qga *q, int h)
{
	req_printf(q, "{\"execute\":\"guest-file-close\",\"arguments\":{\"handle\":%d}}", h);
	qga_call(q, q->req);
}

uint64_t qga_upload(struct qga *q, const char *src, const char *dst, size_t chunk)
{
	size_t b64len = sodium_base64_ENCODED_LEN(chunk, sodium_base64_VARIANT_ORIGINAL);
	unsigned char *raw = malloc(chunk);
	char *b64 = malloc(b64len);
	int fd = open(src, O_RDONLY | O_CLOEXEC), h;
	uint64_t total = 0;
	ssize_t n;

	if (!raw || !b64)
		qga_die("malloc", strerror(ENOMEM));
	if (fd < 0)
		qga_die(src, strerror(errno));
	h = open_handle(q, dst, "w");
	while ((n = read(fd, raw, chunk)) > 0) {
		sodium_bin2base64(b64, b64len, raw, (size_t)n, sodium_base64_VARIANT_ORIGINAL);
		req_printf(q, "{\"execute\":\"guest-file-write\",\"arguments\":{\"handle\":%d,"
			   "\"buf-b64\":\"%s\"}}", h, b64);
		if (field(qga_call(q, q->req), "count") != n)
			qga_die("guest-file-write", "short write");
		total += (uint64_t)n;
	}
	if (n < 0)
		qga_die(src, strerror(errno));
	close_handle(q, h);
	close(fd);
	free(raw);
	free(b64);
	return total;
}

uint64_t qga_download(struct qga *q, const char *src, const char *dst, size_t chunk)
{
	unsigned char *raw = malloc(chunk);
	int fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), h;
	uint64_t total = 0;
	bool eof = false;

	if (!raw)
		qga_die("malloc", strerror(ENOMEM));
	if (fd < 0)
		qga_die(dst, strerror(errno));
	h = open_handle(q, src, "r");
	req_printf(q, "{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":%d,\"count\":%zu}}",
		   h, chunk);
	while (!eof) {
		char *line = (char *)qga_call(q, q->req), *b, *e;
		size_t n;

		eof = strstr(line, "\"eof\": true") || strstr(line, "\"eof\":true");
		b = strstr(line, "\"buf-b64\":");
		if (!b || !(b = strchr(b + 10, '"')) || !(e = strchr(b + 1, '"')))
			qga_die("guest-file-read", line);
		*e = '\0';
		if (sodium_base642bin(raw, chunk, b + 1, (size_t)(e - b - 1), NULL, &n, NULL,
				      sodium_base64_VARIANT_ORIGINAL) < 0)
			qga_die("guest-file-read", "bad base64");
		if (n && write(fd, raw, n) != (ssize_t)n)
			qga_die(dst, "short write");
		total += n;
		if (!n)
			break;
	}
	close_handle(q, h);
	fsync(fd);
	close(fd);
	free(raw);
	return total;
}
