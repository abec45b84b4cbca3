/* Agent addresses and the three transports behind them: see addr.h. */
#include "vsock/addr.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

static int parse_u32(const char *s, uint32_t *v)
{
	uint64_t x;
	int r = str_to_u64(s, UINT32_MAX, &x);

	if (r == 0)
		*v = (uint32_t)x;
	return r;
}

int addr_parse(const char *s, struct addr *a, char *err, size_t errlen)
{
	const char *rest;
	char tmp[256];
	char *colon;

	memset(a, 0, sizeof(*a));
	if (str_starts_with(s, "unix:")) {
		a->kind = ADDR_UNIX;
		rest = s + 5;
		if (!*rest)
			goto bad_path;
		if (str_copy(a->path, sizeof(a->path), rest) < 0)
			goto long_path;
		return 0;
	}
	if (str_starts_with(s, "vsock:")) {
		a->kind = ADDR_VSOCK;
		if (str_copy(tmp, sizeof(tmp), s + 6) < 0 || !(colon = strchr(tmp, ':')))
			goto bad_form;
		*colon = '\0';
		if (parse_u32(tmp, &a->cid) < 0 || parse_u32(colon + 1, &a->port) < 0)
			goto bad_form;
		return 0;
	}
	if (str_starts_with(s, "hybrid:")) {
		a->kind = ADDR_HYBRID;
		rest = s + 7;
		colon = strrchr(rest, ':');
		if (!colon || colon == rest)
			goto bad_form;
		if ((size_t)(colon - rest) >= sizeof(a->path))
			goto long_path;
		memcpy(a->path, rest, (size_t)(colon - rest));
		if (parse_u32(colon + 1, &a->port) < 0)
			goto bad_form;
		return 0;
	}
	snprintf(err, errlen, "bad address '%s': expected unix:PATH, vsock:CID:PORT or hybrid:PATH:PORT", s);
	return -EINVAL;
bad_path:
	snprintf(err, errlen, "bad address '%s': empty path", s);
	return -EINVAL;
long_path:
	snprintf(err, errlen, "bad address '%s': the socket path is longer than %d bytes", s,
		 ADDR_PATH_MAX - 1);
	return -EINVAL;
bad_form:
	snprintf(err, errlen, "bad address '%s': expected vsock:CID:PORT or hybrid:PATH:PORT with decimal numbers", s);
	return -EINVAL;
}

void addr_format(const struct addr *a, char *out, size_t n)
{
	switch (a->kind) {
	case ADDR_UNIX:
		snprintf(out, n, "unix:%s", a->path);
		break;
	case ADDR_VSOCK:
		snprintf(out, n, "vsock:%u:%u", a->cid, a->port);
		break;
	case ADDR_HYBRID:
		snprintf(out, n, "hybrid:%s:%u", a->path, a->port);
		break;
	}
}

static int unix_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	return str_copy(sun->sun_path, sizeof(sun->sun_path), path);
}

static void set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Firecracker's hybrid vsock handshake: "CONNECT <port>\n" (and the
 * first bytes of the stream, if any), then "OK <host port>\n". The reply
 * is peeked at and only the line read, so that no byte of the stream that
 * follows is consumed here. */
static int hybrid_handshake(int fd, uint32_t port, int timeout_ms, const void *first, size_t len)
{
	char line[64];
	size_t n = 0;
	int w, r;

	w = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	set_timeouts(fd, timeout_ms);
	if ((r = fd_write_all(fd, line, (size_t)w)) < 0)
		return r == -EAGAIN ? -ETIMEDOUT : r;
	/* A few bytes into a fresh socket: one send. A peer that is already
	 * gone refused the port (read below). */
	if (len) {
		ssize_t k = send(fd, first, len, MSG_NOSIGNAL);

		if (k >= 0 && (size_t)k != len)
			return -EIO;
		if (k < 0 && errno != EPIPE && errno != ECONNRESET)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
	}
	for (;;) {
		ssize_t k = recv(fd, line + n, sizeof(line) - 1 - n, MSG_PEEK);
		char *nl;

		if (k < 0 && errno == EINTR)
			continue;
		/* sbx-vsockd closes a refused connection; with bytes of ours
		 * still unread, the close resets it. */
		if (k < 0)
			return errno == EAGAIN ? -ETIMEDOUT : errno == ECONNRESET ? -ECONNREFUSED : -errno;
		if (k == 0)
			return -ECONNREFUSED;
		nl = memchr(line + n, '\n', (size_t)k);
		if (nl)
			k = nl - (line + n) + 1;
		if (read(fd, line + n, (size_t)k) != k)
			return -EIO;
		n += (size_t)k;
		if (nl)
			break;
		if (n == sizeof(line) - 1)
			return -EPROTO;
	}
	line[n - 1] = '\0';
	set_timeouts(fd, 0);
	return str_starts_with(line, "OK ") ? 0 : -ECONNREFUSED;
}

int addr_connect_with(const struct addr *a, int timeout_ms, const void *first, size_t len)
{
	struct sockaddr_un sun;
	struct sockaddr_vm svm;
	int fd, r;

	if (a->kind == ADDR_VSOCK) {
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		memset(&svm, 0, sizeof(svm));
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = a->cid;
		svm.svm_port = a->port;
		if (connect(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0)
			goto fail;
		goto out_first;
	}
	if ((r = unix_sockaddr(a->path, &sun)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		if (errno != EINTR)
			goto fail;
	if (a->kind == ADDR_HYBRID) {
		if ((r = hybrid_handshake(fd, a->port, timeout_ms, first, len)) < 0) {
			close(fd);
			return r;
		}
		return fd;
	}
out_first:
	if (len && (r = fd_write_all(fd, first, len)) < 0) {
		close(fd);
		return r;
	}
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}

int addr_connect(const struct addr *a, int timeout_ms)
{
	return addr_connect_with(a, timeout_ms, NULL, 0);
}

int addr_listen(const struct addr *a, int backlog)
{
	struct sockaddr_un sun;
	struct sockaddr_vm svm;
	struct stat st;
	int fd, r;

	if (a->kind == ADDR_VSOCK) {
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		memset(&svm, 0, sizeof(svm));
		svm.svm_family = AF_VSOCK;
		svm.svm_cid = VMADDR_CID_ANY;
		svm.svm_port = a->port;
		if (bind(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0)
			goto fail;
	} else if (a->kind == ADDR_UNIX) {
		if ((r = unix_sockaddr(a->path, &sun)) < 0)
			return r;
		/* Replace a stale socket left by a previous run, nothing else. */
		if (lstat(a->path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(a->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			goto fail;
	} else {
		return -EINVAL;
	}
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	r = -errno;
	close(fd);
	return r;
}
