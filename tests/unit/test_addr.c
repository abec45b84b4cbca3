/* Unit tests for agent addresses (vsock/addr.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vsock/addr.h"

static void test_good(void **state)
{
	struct addr a;
	char err[256], out[200];

	assert_int_equal(addr_parse("unix:/run/sbx/a.sock", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, ADDR_UNIX);
	assert_string_equal(a.path, "/run/sbx/a.sock");
	assert_int_equal(addr_parse("vsock:3:1024", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, ADDR_VSOCK);
	assert_int_equal(a.cid, 3);
	assert_int_equal(a.port, 1024);
	/* The hybrid path may itself contain colons: the port is last. */
	assert_int_equal(addr_parse("hybrid:/tmp/a:b/v.sock:1024", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, ADDR_HYBRID);
	assert_string_equal(a.path, "/tmp/a:b/v.sock");
	assert_int_equal(a.port, 1024);
	addr_format(&a, out, sizeof(out));
	assert_string_equal(out, "hybrid:/tmp/a:b/v.sock:1024");
}

static void expect_bad(const char *s, const char *needle)
{
	struct addr a;
	char err[256];

	assert_int_equal(addr_parse(s, &a, err, sizeof(err)), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_bad(void **state)
{
	char long_path[200];

	expect_bad("tcp:1.2.3.4:5", "expected unix:PATH");
	expect_bad("unix:", "empty path");
	expect_bad("vsock:3", "vsock:CID:PORT");
	expect_bad("vsock:x:1", "decimal");
	expect_bad("vsock:3:99999999999", "decimal");
	expect_bad("hybrid:/x", "hybrid:PATH:PORT");
	expect_bad("hybrid::5", "hybrid:PATH:PORT");
	memset(long_path, 'a', sizeof(long_path));
	memcpy(long_path, "unix:/", 6);
	long_path[sizeof(long_path) - 1] = '\0';
	expect_bad(long_path, "longer than 107 bytes");
}

static void test_connect_errors(void **state)
{
	struct addr a;
	char err[256];

	assert_int_equal(addr_parse("unix:/nonexistent/sbx.sock", &a, err, sizeof(err)), 0);
	assert_int_equal(addr_connect(&a, 100), -ENOENT);
	assert_int_equal(addr_parse("hybrid:/nonexistent/v.sock:1024", &a, err, sizeof(err)), 0);
	assert_int_equal(addr_connect(&a, 100), -ENOENT);
}

/* Whether fd has n bytes queued to read within 2 s. */
static bool queued(int fd, size_t n)
{
	for (int i = 0; i < 200; i++) {
		int q;

		if (ioctl(fd, FIONREAD, &q) < 0)
			return false;
		if ((size_t)q >= n)
			return true;
		usleep(10000);
	}
	return false;
}

/* A stand-in for sbx-vsockd on a Unix socket: takes one connection,
 * reads until it has `want` (the CONNECT line and what came with it) or
 * 2 s pass, never more than that, waits for `unread` more bytes to be
 * queued, then answers `reply` and closes (bytes left unread reset the
 * connection). Exits 0 when it got exactly `want` and saw the bytes. */
static pid_t fake_vsockd(const char *path, const char *want, size_t unread, const char *reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char got[256];
		size_t n = 0, len = strlen(want) < sizeof(got) ? strlen(want) : sizeof(got);
		int fd = accept(l, NULL, NULL);

		while (fd >= 0 && n < len) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t k;

			if (poll(&p, 1, 2000) != 1 || (k = read(fd, got + n, len - n)) <= 0)
				break;
			n += (size_t)k;
		}
		if (unread && !queued(fd, unread))
			_exit(3);
		if (*reply && write(fd, reply, strlen(reply)) < 0)
			_exit(2);
		close(fd);
		_exit(n == len && memcmp(got, want, len) == 0 ? 0 : 1);
	}
	close(l);
	return pid;
}

/* A hybrid address to PORT on a fake sbx-vsockd (above) in a directory
 * of its own; *a holds its socket's path, for hybrid_end. */
static pid_t hybrid_start(struct addr *a, unsigned port, const char *want, size_t unread,
			  const char *reply)
{
	char dir[] = "/tmp/sbx-test-addr-XXXXXX", spec[128], err[256];

	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "hybrid:%s/v.sock:%u", dir, port);
	assert_int_equal(addr_parse(spec, a, err, sizeof(err)), 0);
	return fake_vsockd(a->path, want, unread, reply);
}

/* The fake's exit status; its socket and directory removed. */
static int hybrid_end(struct addr *a, pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	unlink(a->path);
	*strrchr(a->path, '/') = '\0';
	rmdir(a->path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first bytes of the stream go with the CONNECT line, before the OK
 * comes; what follows the OK line is left for the caller. */
static void test_hybrid_first_bytes(void **state)
{
	char buf[16];
	struct addr a;
	pid_t pid;
	int fd;

	pid = hybrid_start(&a, 1024, "CONNECT 1024\nHELLO-BYTES", 0, "OK 1073741824\nstream");
	fd = addr_connect_with(&a, 2000, "HELLO-BYTES", 11);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 6);
	assert_string_equal(buf, "stream");
	close(fd);
	assert_int_equal(hybrid_end(&a, pid), 0);
}

/* A refused port: sbx-vsockd closes with our first bytes unread, which
 * resets the connection; that is still a refusal. The fake closes only
 * once those bytes are queued, so the reset is what the client sees. */
static void test_hybrid_refused_with_bytes(void **state)
{
	struct addr a;
	pid_t pid;

	pid = hybrid_start(&a, 7, "CONNECT 7\n", 11, "");
	assert_int_equal(addr_connect_with(&a, 2000, "HELLO-BYTES", 11), -ECONNREFUSED);
	assert_int_equal(hybrid_end(&a, pid), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_hybrid_first_bytes),
		cmocka_unit_test(test_hybrid_refused_with_bytes),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
