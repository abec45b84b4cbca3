/* File transfer benchmarks (bench/fs.sh): sbx uploads and downloads
 * through libsbx, in-process, against the same bytes copied file ->
 * plain Unix socket -> file by two processes with 1 MiB reads and writes,
 * the two sides alternated run by run (../shared/BENCH.md). Every copy
 * writes a new file, as sbx's atomic writes do, so both sides pay for
 * fresh tmpfs pages alike; and each side removes its previous output
 * just before it starts, outside the timing, so neither pays for freeing
 * a gigabyte inside it.
 *
 *   bench_fs(argc, argv):
 *     fs ADDR SRC DIR RUNS   markdown rows: baseline, sbx, sbx --no-verify,
 *                            both directions, and each digest alone
 *     fs-ends ADDR SRC DIR RUNS  one end at a time, verified against
 *                            unverified (bench/fs_ends.c)
 *     fs-plain SRC DST       one baseline copy; prints MB/s
 *     fs --probe             exit 0 (tells bench/fs.sh sbx-bench has this)
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "bench/stats.h"
#include "lib/hasher.h"
#include "libsbx/sbx_fs.h"

#define CHUNK (1 << 20)

int bench_fs(int argc, char **argv);
int bench_fs_ends(const char *addr, const char *src, const char *dir, size_t runs);

static _Noreturn void die(const char *what, const char *why)
{
	fprintf(stderr, "sbx-bench fs: %s: %s\n", what, why);
	exit(1);
}

static double mbps(uint64_t bytes, uint64_t t0)
{
	return (double)bytes / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die(path, strerror(errno));
	return (uint64_t)st.st_size;
}

/* Baseline: one process reads src into a Unix socket, the other writes
 * what it receives into a new file dst. */
static double plain_copy(const char *src, const char *dst)
{
	static char buf[CHUNK];
	uint64_t t0, got = 0;
	int sv[2], status, out;
	ssize_t n;
	pid_t pid;

	unlink(dst);
	t0 = bench_now_ns();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", strerror(errno));
	pid = fork();
	if (pid == 0) {
		static char cbuf[CHUNK];
		int in = open(src, O_RDONLY);

		close(sv[0]);
		while ((n = read(in, cbuf, sizeof(cbuf))) > 0)
			if (write(sv[1], cbuf, (size_t)n) != n)
				_exit(1);
		_exit(n < 0);
	}
	close(sv[1]);
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		die(dst, strerror(errno));
	while ((n = read(sv[0], buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n)
			die(dst, "short write");
		got += (uint64_t)n;
	}
	/* sbx fsyncs before it renames; so does the baseline (free on
	 * tmpfs, but the same work either way). */
	fsync(out);
	close(out);
	close(sv[0]);
	waitpid(pid, &status, 0);
	if (got != file_size(src) || status != 0)
		die("baseline copy", "incomplete");
	return mbps(got, t0);
}

static double sbx_upload(const char *addr, const char *src, const char *dst, bool verify)
{
	struct sbx_fs_opts o = { .no_verify = !verify };
	struct sbx_error err;
	struct sbx_xfer x;
	uint64_t t0;
	int fd = open(src, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die(src, strerror(errno));
	unlink(dst); /* the agent runs on this machine: same file system */
	t0 = bench_now_ns();
	if (sbx_fs_write_fd(addr, fd, dst, NULL, &o, &x, &err) < 0)
		die("sbx upload", err.msg);
	close(fd);
	return mbps(x.bytes, t0);
}

static double sbx_download(const char *addr, const char *src, const char *dst, bool verify)
{
	struct sbx_fs_opts o = { .no_verify = !verify };
	struct sbx_error err;
	struct sbx_xfer x;
	uint64_t t0;

	unlink(dst);
	t0 = bench_now_ns();
	if (sbx_fs_download(addr, src, dst, 0, &o, &x, &err) < 0)
		die("sbx download", err.msg);
	return mbps(x.bytes, t0);
}

/* A digest of dlen bytes (FS_DIGEST_XXH3_LEN: XXH3-128, else BLAKE2b,
 * without sodium_init as the ends run it), hashed inline on one core. */
static double hash_alone(const char *src, size_t dlen)
{
	static unsigned char buf[CHUNK];
	static struct hasher h;
	unsigned char out[FS_DIGEST_LEN];
	uint64_t t0, total = 0;
	int fd = open(src, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		die(src, strerror(errno));
	t0 = bench_now_ns();
	hasher_init(&h, dlen);
	h.no_thread = true; /* one core: the figure is the digest's own speed */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		hasher_put(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	hasher_final(&h, out);
	close(fd);
	return mbps(total, t0);
}

struct side {
	const char *what, *name;
	struct samples v, ratio;
};

static void add(struct side *s, double v, double base)
{
	samples_add(&s->v, v);
	samples_add(&s->ratio, v / base);
}

static void print_side(const struct side *s, size_t runs, bool baseline)
{
	char ratio[96] = "1";

	if (!baseline)
		snprintf(ratio, sizeof(ratio), "%.2f (min %.2f, max %.2f)", samples_pct(&s->ratio, 50),
			 samples_min(&s->ratio), samples_max(&s->ratio));
	printf("| %s | %s | %zu | %.0f MB/s | min %.0f, max %.0f | %s |\n", s->what, s->name, runs,
	       samples_pct(&s->v, 50), samples_min(&s->v), samples_max(&s->v), ratio);
}

static int bench_transfers(const char *addr, const char *src, const char *dir, size_t runs)
{
	char dst[4096], remote[4096], local[4096], what_up[128], what_down[128], hashrow[128];
	uint64_t size = file_size(src);
	struct side base_up = { .what = what_up, .name = "baseline: file → plain Unix socket → new file, 1 MiB I/O" },
		    up = { .what = what_up, .name = "sbx upload (libsbx; XXH3-128 at both ends; atomic)" },
		    up_nv = { .what = what_up, .name = "sbx upload, no digests (`--no-verify`)" },
		    base_down = { .what = what_down, .name = "baseline: file → plain Unix socket → new file, 1 MiB I/O" },
		    down = { .what = what_down, .name = "sbx download (libsbx; XXH3-128 at both ends; atomic)" },
		    down_nv = { .what = what_down, .name = "sbx download, no digests (`--no-verify`)" };
	struct samples hash = { 0 }, xxh = { 0 }, vnv_up = { 0 }, vnv_down = { 0 };

	snprintf(what_up, sizeof(what_up), "upload %llu MiB to tmpfs",
		 (unsigned long long)(size >> 20));
	snprintf(what_down, sizeof(what_down), "download %llu MiB from tmpfs",
		 (unsigned long long)(size >> 20));
	snprintf(dst, sizeof(dst), "%s/plain.out", dir);
	snprintf(remote, sizeof(remote), "%s/sbx.out", dir);
	snprintf(local, sizeof(local), "%s/sbx.back", dir);
	/* One of each first, not counted: page cache, allocator, sockets. */
	plain_copy(src, dst);
	sbx_upload(addr, src, remote, true);
	sbx_download(addr, remote, local, true);
	for (size_t i = 0; i < runs; i++) {
		double b = plain_copy(src, dst);

		double v, nv;

		add(&base_up, b, b);
		add(&up, v = sbx_upload(addr, src, remote, true), b);
		b = plain_copy(src, dst);
		add(&base_up, b, b);
		add(&up_nv, nv = sbx_upload(addr, src, remote, false), b);
		samples_add(&vnv_up, v / nv);
		b = plain_copy(remote, dst);
		add(&base_down, b, b);
		add(&down, v = sbx_download(addr, remote, local, true), b);
		b = plain_copy(remote, dst);
		add(&base_down, b, b);
		add(&down_nv, nv = sbx_download(addr, remote, local, false), b);
		samples_add(&vnv_down, v / nv);
		samples_add(&hash, hash_alone(src, FS_DIGEST_BLAKE2B_LEN));
		samples_add(&xxh, hash_alone(src, FS_DIGEST_XXH3_LEN));
	}
	unlink(dst);
	unlink(remote);
	unlink(local);
	print_side(&base_up, 2 * runs, true);
	print_side(&up, runs, false);
	print_side(&up_nv, runs, false);
	print_side(&base_down, 2 * runs, true);
	print_side(&down, runs, false);
	print_side(&down_nv, runs, false);
	/* verified / unverified, pair by pair (goal: at least 0.8, i.e. a
	 * verified transfer costs at most 1.25 times an unverified one) */
	printf("| %s | sbx upload: verified / no digests (pairs) | %zu | | | %.2f (min %.2f, max %.2f) |\n",
	       what_up, runs, samples_pct(&vnv_up, 50), samples_min(&vnv_up), samples_max(&vnv_up));
	printf("| %s | sbx download: verified / no digests (pairs) | %zu | | | %.2f (min %.2f, max %.2f) |\n",
	       what_down, runs, samples_pct(&vnv_down, 50), samples_min(&vnv_down),
	       samples_max(&vnv_down));
	snprintf(hashrow, sizeof(hashrow), "XXH3-128 of %llu MiB, one core",
		 (unsigned long long)(size >> 20));
	printf("| %s | xxHash, inline (what each end runs) | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | |\n",
	       hashrow, runs, samples_pct(&xxh, 50), samples_min(&xxh), samples_max(&xxh));
	snprintf(hashrow, sizeof(hashrow), "BLAKE2b-256 of %llu MiB, one core",
		 (unsigned long long)(size >> 20));
	printf("| %s | libsodium `crypto_generichash` (a version 1 peer's) | %zu | %.0f MB/s | "
	       "min %.0f, max %.0f | |\n",
	       hashrow, runs, samples_pct(&hash, 50), samples_min(&hash), samples_max(&hash));
	return 0;
}

int bench_fs(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && !strcmp(argv[0], "fs") && !strcmp(argv[1], "--probe"))
		return 0;
	if (argc == 3 && !strcmp(argv[0], "fs-plain")) {
		printf("%.1f\n", plain_copy(argv[1], argv[2]));
		return 0;
	}
	if (argc == 5 && !strcmp(argv[0], "fs-ends"))
		return bench_fs_ends(argv[1], argv[2], argv[3], strtoull(argv[4], NULL, 10));
	if (argc == 5 && !strcmp(argv[0], "fs"))
		return bench_transfers(argv[1], argv[2], argv[3], strtoull(argv[4], NULL, 10));
	fprintf(stderr, "usage: sbx-bench fs ADDR SRC DIR RUNS | fs-ends ADDR SRC DIR RUNS | "
		"fs-plain SRC DST\n");
	return 2;
}

#ifdef BENCH_FS_MAIN
/* Standalone, until sbx-bench's main calls bench_fs. */
int main(int argc, char **argv)
{
	return bench_fs(argc - 1, argv + 1);
}
#endif
