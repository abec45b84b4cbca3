/* One end of a transfer at a time (bench/fs.sh): what a verified body
 * costs one end against an unverified one, when the other end costs
 * next to nothing. In the fs rows both ends run on the same machine and
 * share its cores; here the peer is a stand-in that neither hashes nor
 * writes (its digests, XXH3-128 as the stand-ins speak version 2, are
 * computed before the clock starts). Verified and unverified runs alternate;
 * the ratio is pair by pair (goal: a verified body costs at most 1.25
 * times an unverified one, a ratio of at least 0.8).
 *
 *   bench_fs_ends(addr, src, dir, runs)   markdown rows
 *     addr: the agent (for its ends); src: a file of the body's size. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench/stats.h"
#include "lib/buf.h"
#include "lib/hasher.h"
#include "lib/util.h"
#include "libsbx/sbx_fs.h"
#include "vsock/proto.h"
#include "vsock/proto_fs.h"

#define CHUNK (1u << 20)          /* the stand-ins' body: this, repeated */
#define UP_FRAME (256u * 1024)    /* libsbx's upload frames */

int bench_fs_ends(const char *addr, const char *src, const char *dir, size_t runs);

static uint8_t chunk[CHUNK];

static _Noreturn void die(const char *what, const char *why)
{
	fprintf(stderr, "sbx-bench fs-ends: %s: %s\n", what, why);
	exit(1);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

static void put_buf(int fd, struct buf *b)
{
	write_all(fd, buf_head(b), buf_len(b));
	buf_consume(b, buf_len(b));
}

static void send_frame(int fd, uint16_t type, const void *p, size_t n)
{
	uint8_t hdr[PROTO_HDR_LEN];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)p, n } };
	size_t left = sizeof(hdr) + n;

	proto_hdr_put(hdr, type, (uint32_t)n);
	while (left) {
		ssize_t w = writev(fd, iov, 2);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("writev", strerror(errno));
		left -= (size_t)w;
		for (int i = 0; i < 2; i++) {
			size_t k = MIN((size_t)w, iov[i].iov_len);

			iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			w -= (ssize_t)k;
		}
	}
}

/* Reads frames, skipping payloads, until one of type `until` (or ERROR:
 * fatal); its payload is not kept. */
static void drain_until(int fd, uint16_t until)
{
	static uint8_t in[4 * CHUNK];
	size_t have = 0, skip = 0;

	for (;;) {
		ssize_t n = read(fd, in + have, sizeof(in) - have);
		size_t at = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("the stream", n < 0 ? strerror(errno) : "ended early");
		have += (size_t)n;
		for (;;) {
			uint32_t len;
			uint16_t type;

			if (skip) {
				size_t k = MIN(skip, have - at);

				at += k;
				skip -= k;
				if (skip)
					break;
			}
			if (have - at < PROTO_HDR_LEN)
				break;
			memcpy(&len, in + at, 4);
			memcpy(&type, in + at + 4, 2);
			if (type == FT_ERROR)
				die("the agent", "answered with an ERROR");
			if (type == until)
				return;
			at += PROTO_HDR_LEN;
			skip = len;
		}
		memmove(in, in + at, have - at);
		have -= at;
	}
}

/* The digest of `count` bytes of chunk repeated: this version's
 * (XXH3-128; the stand-ins speak PROTO_VERSION). */
#define DLEN (proto_fs_digest_len(PROTO_VERSION))
static void chunk_digest(uint64_t count, uint8_t out[FS_DIGEST_LEN])
{
	static struct hasher h;

	hasher_init(&h, DLEN);
	for (uint64_t i = 0; i < count; i += CHUNK)
		hasher_put(&h, chunk, (size_t)MIN((uint64_t)CHUNK, count - i));
	hasher_final(&h, out);
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(path, strerror(errno));
	return fd;
}

static void send_request(int fd, uint16_t type, const char *path, bool verify)
{
	struct fs_req r = { .type = type, .path = (char *)path };
	struct buf b;

	if (!verify) {
		r.flags = FS_F_NO_VERIFY;
		r.have |= FS_HAVE(FS_FLAGS);
	}
	buf_init(&b, 1 << 16);
	if (proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION) < 0 || proto_fs_req_put(&b, &r) < 0)
		die("request", "cannot encode");
	put_buf(fd, &b);
	buf_free(&b);
}

/* ---- the agent's ends, against a stand-in client ---- */

/* The agent receives `size` bytes into dst: the client sends frames of
 * chunk and a digest computed beforehand. */
static double agent_upload(const char *sock, const char *dst, uint64_t size, bool verify,
			   const uint8_t *digest)
{
	struct buf b;
	uint64_t t0;
	int fd;

	unlink(dst);
	t0 = bench_now_ns();
	fd = unix_connect(sock);
	send_request(fd, FT_FS_WRITE, dst, verify);
	for (uint64_t off = 0; off < size; off += UP_FRAME)
		send_frame(fd, FT_FS_DATA, chunk + off % CHUNK, (size_t)MIN((uint64_t)UP_FRAME, size - off));
	buf_init(&b, 1 << 16);
	proto_fs_end_put(&b, size, verify ? digest : NULL, DLEN);
	put_buf(fd, &b);
	buf_free(&b);
	drain_until(fd, FT_OK);
	close(fd);
	return (double)size / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

/* The agent sends src; the client only reads the frames. */
static double agent_download(const char *sock, const char *src, uint64_t size, bool verify)
{
	uint64_t t0 = bench_now_ns();
	int fd = unix_connect(sock);

	send_request(fd, FT_FS_READ, src, verify);
	drain_until(fd, FT_FS_END);
	close(fd);
	return (double)size / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

/* ---- libsbx's ends, against a stand-in agent ---- */

/* A child that answers one connection on path: for a download, the
 * body of `size` bytes of chunk with the digest given; for an upload,
 * reads it to the END and answers OK. */
static pid_t stand_in_agent(const char *path, bool download, uint64_t size, const uint8_t *digest)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		die(path, strerror(errno));
	pid = fork();
	if (pid < 0)
		die("fork", strerror(errno));
	if (pid == 0) {
		struct hello_ok h = { .version = PROTO_VERSION };
		struct fs_stat st = { .mode = S_IFREG | 0644, .size = size, .nlink = 1 };
		struct buf b;
		int fd = accept(lfd, NULL, NULL);
		uint8_t in[4096];

		if (fd < 0)
			_exit(1);
		buf_init(&b, 1 << 16);
		proto_hello_ok_put(&b, &h);
		if (!download) {
			put_buf(fd, &b);
			drain_until(fd, FT_FS_END);
			proto_put(&b, FT_OK, NULL, 0);
			put_buf(fd, &b);
			while (read(fd, in, sizeof(in)) > 0)
				;
			_exit(0);
		}
		if (read(fd, in, sizeof(in)) <= 0) /* HELLO and FS_READ */
			_exit(1);
		proto_fs_stat_ok_put(&b, &st, NULL, 0);
		put_buf(fd, &b);
		for (uint64_t off = 0; off < size; off += CHUNK)
			send_frame(fd, FT_FS_DATA, chunk, (size_t)MIN((uint64_t)CHUNK, size - off));
		proto_fs_end_put(&b, size, digest, DLEN);
		put_buf(fd, &b);
		while (read(fd, in, sizeof(in)) > 0)
			;
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die("the stand-in agent", "failed");
}

static double sbx_upload_end(const char *sock, const char *src, uint64_t size, bool verify)
{
	struct sbx_fs_opts o = { .no_verify = !verify };
	char addr[4200];
	struct sbx_error err;
	uint64_t t0;
	pid_t pid = stand_in_agent(sock, false, size, NULL);
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(src, strerror(errno));
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	t0 = bench_now_ns();
	if (sbx_fs_write_fd(addr, fd, "/x", NULL, &o, NULL, &err) < 0)
		die("sbx upload", err.msg);
	t0 = bench_now_ns() - t0;
	close(fd);
	reap(pid);
	return (double)size / ((double)t0 / 1e9) / 1e6;
}

static double sbx_download_end(const char *sock, const char *dst, uint64_t size, bool verify,
			       const uint8_t *digest)
{
	struct sbx_fs_opts o = { .no_verify = !verify };
	char addr[4200];
	struct sbx_error err;
	uint64_t t0;
	pid_t pid = stand_in_agent(sock, true, size, verify ? digest : NULL);

	snprintf(addr, sizeof(addr), "unix:%s", sock);
	unlink(dst);
	t0 = bench_now_ns();
	if (sbx_fs_download(addr, "/x", dst, 0, &o, NULL, &err) < 0)
		die("sbx download", err.msg);
	t0 = bench_now_ns() - t0;
	reap(pid);
	return (double)size / ((double)t0 / 1e9) / 1e6;
}

struct end {
	const char *what;
	struct samples v, nv, ratio;
};

static void print_end(const struct end *e, size_t runs)
{
	printf("| %s | verified (ratio: to the same end unverified, pairs) | %zu | %.0f MB/s | min %.0f, max %.0f | %.2f (min %.2f, max %.2f) |\n",
	       e->what, runs, samples_pct(&e->v, 50), samples_min(&e->v), samples_max(&e->v),
	       samples_pct(&e->ratio, 50), samples_min(&e->ratio), samples_max(&e->ratio));
	printf("| %s | no digests (`--no-verify`) | %zu | %.0f MB/s | min %.0f, max %.0f | 1 |\n",
	       e->what, runs, samples_pct(&e->nv, 50), samples_min(&e->nv), samples_max(&e->nv));
}

int bench_fs_ends(const char *addr, const char *src, const char *dir, size_t runs)
{
	struct end up_agent = { .what = "the agent's end of an upload (the client a stand-in)" },
		   down_agent = { .what = "the agent's end of a download (the client a stand-in)" },
		   up_sbx = { .what = "libsbx's end of an upload (the agent a stand-in)" },
		   down_sbx = { .what = "libsbx's end of a download (the agent a stand-in)" };
	uint8_t digest[FS_DIGEST_LEN];
	char dst[4096], sock[4096];
	struct stat st;
	uint64_t size;
	const char *agent;

	if (strncmp(addr, "unix:", 5) != 0)
		die(addr, "the agent's address must be unix:PATH");
	agent = addr + 5;
	if (stat(src, &st) < 0)
		die(src, strerror(errno));
	size = (uint64_t)st.st_size;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 2654435761u >> 13);
	chunk_digest(size, digest);
	snprintf(dst, sizeof(dst), "%s/ends.out", dir);
	snprintf(sock, sizeof(sock), "%s/ends.sock", dir);
	/* One of each first, not counted. */
	agent_upload(agent, dst, size, true, digest);
	sbx_download_end(sock, dst, size, true, digest);
	for (size_t i = 0; i < runs; i++) {
		double v, nv;

		v = agent_upload(agent, dst, size, true, digest);
		nv = agent_upload(agent, dst, size, false, digest);
		samples_add(&up_agent.v, v);
		samples_add(&up_agent.nv, nv);
		samples_add(&up_agent.ratio, v / nv);
		v = agent_download(agent, src, size, true);
		nv = agent_download(agent, src, size, false);
		samples_add(&down_agent.v, v);
		samples_add(&down_agent.nv, nv);
		samples_add(&down_agent.ratio, v / nv);
		v = sbx_upload_end(sock, src, size, true);
		nv = sbx_upload_end(sock, src, size, false);
		samples_add(&up_sbx.v, v);
		samples_add(&up_sbx.nv, nv);
		samples_add(&up_sbx.ratio, v / nv);
		v = sbx_download_end(sock, dst, size, true, digest);
		nv = sbx_download_end(sock, dst, size, false, digest);
		samples_add(&down_sbx.v, v);
		samples_add(&down_sbx.nv, nv);
		samples_add(&down_sbx.ratio, v / nv);
	}
	unlink(dst);
	unlink(sock);
	print_end(&up_agent, runs);
	print_end(&down_agent, runs);
	print_end(&up_sbx, runs);
	print_end(&down_sbx, runs);
	return 0;
}
