/* Unit tests for the host side of downloads (libsbx/fs_read.c, fs_tree.c over
 * lib/tree.c) against a hostile agent: a child process on a Unix socket
 * that answers the way the table says, lying about sizes. What the
 * sandbox sends is not trusted, so the host's memory and disk must stay
 * bounded whatever it sends (issue 18, item 3). And a body big enough to
 * be hashed on libsbx's second thread (lib/hasher.c), sent with its own
 * digest or with a byte damaged on the way: the first is kept, the second
 * refused, with nothing left behind and no thread; with each digest kind:
 * XXH3-128 from an agent of protocol version 2, BLAKE2b-256 from one of
 * version 1 (an older agent), and none from an agent choosing a version
 * the client did not offer. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "lib/tree.h"
#include "libsbx/sbx_fs.h"
#include "vsock/proto_fs.h"
#include "tests/unit/threads.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define LIE_SIZE 10                /* what the agent announces */
#define SENT (4u << 20)            /* what it sends */

static char dir[64], sock[96], addr[128];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sbx-test-dl.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/agent.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", sock);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct fs_stat file_stat(uint64_t size)
{
	return (struct fs_stat){ .mode = S_IFREG | 0644, .size = size, .nlink = 1 };
}

enum agent_mode {
	LIE_FILE,   /* announces LIE_SIZE bytes, sends SENT, no digest */
	LIE_TREE,   /* the same as the root of a tree */
	INTACT,     /* announces and sends SENT bytes, with their digest */
	DAMAGED,    /* the same with one byte changed after it was hashed */
};

/* The body's bytes: not all alike, so a byte out of place changes the
 * digest. */
static void fill_chunk(uint8_t *p, size_t n, unsigned at)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((at + i) * 2654435761u >> 13);
}

/* The socket a fake agent listens on, at sock. */
static int agent_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	unlink(sock);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	return lfd;
}

/* The hostile agent: answers HELLO with version and one request as mode
 * says (a STAT_OK and a body, or a tree whose root is a file), the body
 * SENT bytes long, then an END that agrees with the count sent, with the
 * digest of that version (hashed here with libsodium and xxHash
 * themselves, not lib/hasher.c). */
static pid_t fake_agent_v(enum agent_mode mode, uint16_t version)
{
	bool tree = mode == LIE_TREE;
	int lfd = agent_listen();
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static uint8_t chunk[64 * 1024], in[65536];
		struct hello_ok h = { .version = version };
		struct fs_stat st = file_stat(mode >= INTACT ? SENT : LIE_SIZE);
		crypto_generichash_state hs;
		XXH3_state_t xs;
		XXH128_canonical_t xc;
		uint8_t digest[FS_DIGEST_LEN];
		size_t dlen = version >= 2 ? FS_DIGEST_XXH3_LEN : FS_DIGEST_BLAKE2B_LEN;
		struct fs_tree_end t = { .entries = 1, .bytes = SENT };
		struct buf b;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0 || read(fd, in, sizeof(in)) <= 0)
			_exit(1);
		buf_init(&b, 2 * PROTO_FRAME_MAX);
		crypto_generichash_init(&hs, NULL, 0, FS_DIGEST_BLAKE2B_LEN);
		XXH3_128bits_reset(&xs);
		proto_hello_ok_put(&b, &h);
		if (tree)
			proto_fs_entry_put(&b, "", &st, NULL);
		else
			proto_fs_stat_ok_put(&b, &st, NULL, 0);
		for (unsigned sent = 0; sent < SENT; sent += sizeof(chunk)) {
			fill_chunk(chunk, sizeof(chunk), sent);
			crypto_generichash_update(&hs, chunk, sizeof(chunk));
			XXH3_128bits_update(&xs, chunk, sizeof(chunk));
			if (mode == DAMAGED && sent == SENT / 2)
				chunk[1234] ^= 0x20;
			proto_put(&b, FT_FS_DATA, chunk, sizeof(chunk));
			if (write(fd, buf_head(&b), buf_len(&b)) != (ssize_t)buf_len(&b))
				_exit(0); /* the host hung up: what it should do */
			buf_consume(&b, buf_len(&b));
		}
		crypto_generichash_final(&hs, digest, FS_DIGEST_BLAKE2B_LEN);
		if (version >= 2) {
			XXH128_canonicalFromHash(&xc, XXH3_128bits_digest(&xs));
			memcpy(digest, xc.digest, sizeof(xc.digest));
		}
		proto_fs_end_put(&b, SENT, mode >= INTACT ? digest : NULL, dlen);
		if (tree)
			proto_fs_tree_end_put(&b, &t);
		if (write(fd, buf_head(&b), buf_len(&b)) < 0)
			_exit(0);
		while (read(fd, in, sizeof(in)) > 0)
			;
		_exit(0);
	}
	close(lfd);
	return pid;
}

static pid_t fake_agent(enum agent_mode mode)
{
	return fake_agent_v(mode, PROTO_VERSION);
}

static void expect_refused(int rc, const struct sbx_error *err, const char *dest, pid_t agent)
{
	struct stat st;
	int status;

	assert_true(rc < 0);
	assert_int_equal(err->code, EPROTO);
	assert_non_null(strstr(err->msg, "more than the 10 bytes it announced"));
	/* nothing at the destination, nothing hidden beside it */
	assert_int_equal(stat(dest, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(waitpid(agent, &status, 0), agent);
}

static void count_entries(size_t *n)
{
	char cmd[160];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A %s | grep -vc agent.sock", dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%zu", n), 1);
	pclose(p);
}

static void test_file_longer_than_announced(void **state)
{
	struct sbx_fs_opts o = { .no_verify = true };
	struct sbx_error err = { 0 };
	char dest[128];
	size_t n;
	pid_t agent = fake_agent(LIE_FILE);

	snprintf(dest, sizeof(dest), "%s/out", dir);
	expect_refused(sbx_fs_download(addr, "/f", dest, 0, &o, NULL, &err), &err, dest, agent);
	count_entries(&n);
	assert_int_equal(n, 0);
}

static void test_tree_file_longer_than_announced(void **state)
{
	struct sbx_fs_opts o = { .no_verify = true };
	struct sbx_error err = { 0 };
	char dest[128];
	size_t n;
	pid_t agent = fake_agent(LIE_TREE);

	snprintf(dest, sizeof(dest), "%s/tree", dir);
	expect_refused(sbx_fs_download_tree(addr, "/t", dest, 0, &o, NULL, &err), &err, dest,
		       agent);
	count_entries(&n);
	assert_int_equal(n, 0);
}

/* The agent of version `version` sends a big body intact: kept, with
 * that version's digest. */
static void check_intact(uint16_t version, size_t dlen)
{
	struct sbx_error err = { 0 };
	struct sbx_xfer x;
	struct stat st;
	char dest[128];
	int status;
	pid_t agent = fake_agent_v(INTACT, version);

	snprintf(dest, sizeof(dest), "%s/out", dir);
	if (sbx_fs_download(addr, "/f", dest, 0, NULL, &x, &err) < 0)
		fail_msg("version %u: %s", version, err.msg);
	assert_true(x.verified);
	assert_int_equal(x.bytes, SENT);
	assert_int_equal(x.digest_len, dlen);
	assert_int_equal(stat(dest, &st), 0);
	assert_int_equal(st.st_size, SENT);
	assert_int_equal(threads(), 1);
	assert_int_equal(waitpid(agent, &status, 0), agent);
}

/* One byte changed on the way: refused, nothing left. */
static void check_damaged(uint16_t version)
{
	struct sbx_error err = { 0 };
	struct stat st;
	char dest[128];
	size_t n;
	int status;
	pid_t agent = fake_agent_v(DAMAGED, version);

	snprintf(dest, sizeof(dest), "%s/out", dir);
	assert_true(sbx_fs_download(addr, "/f", dest, 0, NULL, NULL, &err) < 0);
	assert_int_equal(err.code, EBADMSG);
	assert_non_null(strstr(err.msg, "checksum mismatch"));
	assert_int_equal(stat(dest, &st), -1);
	count_entries(&n);
	assert_int_equal(n, 0);
	assert_int_equal(threads(), 1);
	assert_int_equal(waitpid(agent, &status, 0), agent);
}

static void test_big_body_intact(void **state) { check_intact(2, FS_DIGEST_XXH3_LEN); }
static void test_big_body_damaged(void **state) { check_damaged(2); }
/* An older agent (version 1) gets BLAKE2b-256 exactly as before. */
static void test_old_agent_intact(void **state) { check_intact(1, FS_DIGEST_BLAKE2B_LEN); }
static void test_old_agent_damaged(void **state) { check_damaged(1); }

/* An agent that picks a version the client did not offer (3): refused
 * before any byte is written. */
static void test_version_not_offered(void **state)
{
	struct sbx_error err = { 0 };
	struct stat st;
	char dest[128];
	int status;
	pid_t agent = fake_agent_v(INTACT, PROTO_VERSION + 1);

	snprintf(dest, sizeof(dest), "%s/out", dir);
	assert_true(sbx_fs_download(addr, "/f", dest, 0, NULL, NULL, &err) < 0);
	assert_int_equal(err.code, EPROTO);
	assert_non_null(strstr(err.msg, "chose protocol version 3"));
	assert_int_equal(stat(dest, &st), -1);
	assert_int_equal(waitpid(agent, &status, 0), agent);
}

/* A directory sent again and again is remembered once: the table of
 * directories whose modes are applied at the end does not grow with
 * repeats (it grew by one entry each time). */
static void test_repeated_directory(void **state)
{
	struct timespec times[2] = { { 1, 0 }, { 1, 0 } };
	struct tree_write tw;
	int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(pfd >= 0);
	tree_write_init(&tw, SBX_DL_DIRS_MAX, 1 << 20);
	assert_int_equal(tree_write_open(&tw, pfd, "rep"), 0);
	assert_int_equal(tree_write_root(&tw, S_IFDIR | 0755, NULL, times), 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(tree_write_child(&tw, "a", S_IFDIR | 0777, NULL, times), 0);
	assert_int_equal(tw.ndirs, 1);
	assert_int_equal(tree_write_finish(&tw), 0);
	tree_write_free(&tw);
}

/* The hostile agent of a tree: the root, then n distinct directories
 * d0..d(n-1), and an END that agrees. */
static pid_t fake_agent_dirs(unsigned n)
{
	int lfd = agent_listen();
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static uint8_t in[65536];
		struct hello_ok h = { .version = PROTO_VERSION };
		struct fs_stat st = { .mode = S_IFDIR | 0755, .nlink = 2 };
		struct fs_tree_end t = { .entries = n + 1 };
		struct buf b;
		char name[32];
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0 || read(fd, in, sizeof(in)) <= 0)
			_exit(1);
		buf_init(&b, 2 * PROTO_FRAME_MAX);
		proto_hello_ok_put(&b, &h);
		proto_fs_entry_put(&b, "", &st, NULL);
		for (unsigned i = 0; i <= n; i++) {
			if (i < n) {
				snprintf(name, sizeof(name), "d%u", i);
				proto_fs_entry_put(&b, name, &st, NULL);
			} else {
				proto_fs_tree_end_put(&b, &t);
			}
			if (write(fd, buf_head(&b), buf_len(&b)) != (ssize_t)buf_len(&b))
				_exit(0); /* the host hung up */
			buf_consume(&b, buf_len(&b));
		}
		while (read(fd, in, sizeof(in)) > 0)
			;
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* The cap on the directories of a tree download: a million by default,
 * lowered here through the test-only hook (the same code path, without a
 * million directories on disk). Under the cap the tree arrives; past it
 * the download stops with E2BIG. Fails if the cap is removed. */
static void test_tree_directory_cap(void **state)
{
	struct sbx_fs_opts o = { .no_verify = true };
	struct sbx_error err = { 0 };
	struct sbx_xfer x;
	char dest[128];
	struct stat st;
	int status, rc;
	pid_t agent;

	assert_int_equal(sbx_dl_dirs_max, 1024 * 1024);
	sbx_dl_dirs_max = 128;
	agent = fake_agent_dirs(100);
	snprintf(dest, sizeof(dest), "%s/under", dir);
	rc = sbx_fs_download_tree(addr, "/t", dest, 0, &o, &x, &err);
	assert_int_equal(waitpid(agent, &status, 0), agent);
	if (rc < 0)
		fail_msg("100 directories under a cap of 128: %s", err.msg);
	assert_int_equal(x.entries, 101);
	snprintf(dest, sizeof(dest), "%s/under/d99", dir);
	assert_int_equal(stat(dest, &st), 0);

	agent = fake_agent_dirs(1000);
	snprintf(dest, sizeof(dest), "%s/over", dir);
	rc = sbx_fs_download_tree(addr, "/t", dest, 0, &o, &x, &err);
	sbx_dl_dirs_max = SBX_DL_DIRS_MAX;
	assert_int_equal(waitpid(agent, &status, 0), agent);
	assert_true(rc < 0);
	assert_int_equal(err.code, E2BIG);
	assert_non_null(strstr(err.msg, "the agent sent more than 128 directories"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_longer_than_announced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree_file_longer_than_announced, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_repeated_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree_directory_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_body_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_body_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_agent_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_agent_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_not_offered, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
