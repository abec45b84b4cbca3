/* Unit tests for agent addresses (vsock/addr.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A stand-in for sbx-vsockd on a Unix socket: takes one connection,
 * reads until it has `want` (the CONNECT line and what came with it) or
 * 2 s pass, then answers `reply` and closes. Exits 0 when it got exactly
 * `want` before answering. */
static pid_t fake_vsockd(const char *path, const char *want, const char *reply)
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
		size_t n = 0, len = strlen(want);
		int fd = accept(l, NULL, NULL);

		while (fd >= 0 && n < len) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t k;

			if (poll(&p, 1, 2000) != 1 || (k = read(fd, got + n, sizeof(got) - n)) <= 0)
				break;
			n += (size_t)k;
		}
		if (*reply && write(fd, reply, strlen(reply)) < 0)
			_exit(2);
		close(fd);
		_exit(n == len && memcmp(got, want, len) == 0 ? 0 : 1);
	}
	close(l);
	return pid;
}

static int fake_status(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first bytes of the stream go with the CONNECT line, before the OK
 * comes; what follows the OK line is left for the caller. */
static void test_hybrid_first_bytes(void **state)
{
	char path[] = "/tmp/sbx-test-addr-XXXXXX", sock[64], spec[128], err[256], buf[16];
	struct addr a;
	pid_t pid;
	int fd;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/v.sock", path);
	snprintf(spec, sizeof(spec), "hybrid:%s:1024", sock);
	assert_int_equal(addr_parse(spec, &a, err, sizeof(err)), 0);
	pid = fake_vsockd(sock, "CONNECT 1024\nHELLO-BYTES", "OK 1073741824\nstream");
	fd = addr_connect_with(&a, 2000, "HELLO-BYTES", 11);
	assert_true(fd >= 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 6);
	assert_string_equal(buf, "stream");
	close(fd);
	assert_int_equal(fake_status(pid), 0);
	unlink(sock);
	rmdir(path);
}

/* A refused port: sbx-vsockd closes with our first bytes unread, which
 * resets the connection; that is still a refusal. */
static void test_hybrid_refused_with_bytes(void **state)
{
	char path[] = "/tmp/sbx-test-addr-XXXXXX", sock[64], spec[128], err[256];
	struct addr a;
	pid_t pid;

	assert_non_null(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/v.sock", path);
	snprintf(spec, sizeof(spec), "hybrid:%s:7", sock);
	assert_int_equal(addr_parse(spec, &a, err, sizeof(err)), 0);
	pid = fake_vsockd(sock, "CONNECT 7\n", "");
	assert_int_equal(addr_connect_with(&a, 2000, "HELLO-BYTES", 11), -ECONNREFUSED);
	fake_status(pid);
	unlink(sock);
	rmdir(path);
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
