/* Unit tests for agent addresses (vsock/addr.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_connect_errors),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
