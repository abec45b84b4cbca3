/* Unit tests for the configuration parser (lib/config.c): the file format,
 * quoting, the kernel command line, and errors that name the bad key. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/cgroup.h"
#include "lib/config.h"
#include "lib/log.h"

static struct config c;
static char err[512];

static int setup(void **state)
{
	config_init(&c);
	err[0] = '\0';
	log_set_level(LOG_ERROR); /* the parser logs each bad line */
	return 0;
}

static int teardown(void **state)
{
	config_free(&c);
	return 0;
}

static int parse(const char *text)
{
	return config_parse_text(&c, text, strlen(text), "test", err, sizeof(err));
}

static void test_defaults(void **state)
{
	assert_string_equal(c.hostname, "sandbox");
	assert_int_equal(c.port, 1024);
	assert_string_equal(c.user, "root");
	assert_string_equal(c.workdir, "");
	assert_int_equal(c.envc, 0);
}

static void test_basic_file(void **state)
{
	assert_int_equal(parse("# comment\n\n  hostname = box-1\nport=2000\nuser = user\n"
			       "workdir = /home/user\nenv.PATH = /bin:/usr/bin\n"
			       "env.EMPTY =\n"),
			 0);
	assert_string_equal(c.hostname, "box-1");
	assert_int_equal(c.port, 2000);
	assert_string_equal(c.user, "user");
	assert_string_equal(c.workdir, "/home/user");
	assert_int_equal(c.envc, 2);
	assert_string_equal(config_env_get(c.env, "PATH"), "/bin:/usr/bin");
	assert_string_equal(config_env_get(c.env, "EMPTY"), "");
	assert_null(c.env[2]);
}

static void test_quoting(void **state)
{
	assert_int_equal(parse("env.A = \"  spaced  \"\n"
			       "env.B = \"tab\\there\\nnew \\\"q\\\" back\\\\ \\x41\"\n"
			       "env.C = \"#not a comment\"  \n"),
			 0);
	assert_string_equal(config_env_get(c.env, "A"), "  spaced  ");
	assert_string_equal(config_env_get(c.env, "B"), "tab\there\nnew \"q\" back\\ A");
	assert_string_equal(config_env_get(c.env, "C"), "#not a comment");
}

static void test_later_wins(void **state)
{
	assert_int_equal(parse("env.X = 1\nenv.Y = 2\nenv.X = 3\n"), 0);
	assert_int_equal(c.envc, 2);
	assert_string_equal(config_env_get(c.env, "X"), "3");
}

static void expect_error(const char *text, const char *needle)
{
	err[0] = '\0';
	assert_int_equal(parse(text), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_errors_name_the_key(void **state)
{
	expect_error("colour = blue\n", "test:1: unknown key 'colour'");
	expect_error("\nport = 0\n", "test:2: port: '0' is not a port number");
	expect_error("port = 4294967295\n", "port:");
	expect_error("port = 12ab\n", "port:");
	expect_error("hostname = -bad\n", "hostname: '-bad' is not a host name");
	expect_error("hostname = a_b\n", "hostname:");
	expect_error("workdir = relative\n", "workdir: 'relative' is not an absolute path");
	expect_error("env.1X = v\n", "env.1X: bad environment variable name");
	expect_error("env.A-B = v\n", "env.A-B: bad environment");
	expect_error("env. = v\n", "env.:");
	expect_error("just words\n", "'just words' is not key=value");
	expect_error(" = value\n", "missing key");
	expect_error("env.A = \"open\n", "env.A: missing closing quote");
	expect_error("env.A = \"x\" y\n", "env.A: text after the closing quote");
	expect_error("env.A = \"\\q\"\n", "env.A: unknown escape '\\q'");
	expect_error("env.A = \"\\x00\"\n", "env.A: bad \\x escape");
	expect_error("env.A = \"\\x4\"\n", "env.A: bad \\x escape");
	expect_error("user = a:b\n", "user: 'a:b' is not a user name");
}

static void test_bad_lines_do_not_stop_the_rest(void **state)
{
	assert_int_equal(parse("bogus = 1\nhostname = good\nport = x\nenv.K = v\n"), -EINVAL);
	/* The first error is reported... */
	assert_non_null(strstr(err, "test:1: unknown key 'bogus'"));
	/* ...and every good line still applied. */
	assert_string_equal(c.hostname, "good");
	assert_int_equal(c.port, 1024);
	assert_string_equal(config_env_get(c.env, "K"), "v");
}

static void test_nul_and_long_lines(void **state)
{
	char text[] = "env.A = x\0y\nhostname = ok\n";
	static char big[CONFIG_VALUE_MAX + 100];

	assert_int_equal(config_parse_text(&c, text, sizeof(text) - 1, "test", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "NUL byte"));
	assert_string_equal(c.hostname, "ok");
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "env.B = ", 8);
	expect_error(big, "longer than 65536");
}

static void test_cmdline(void **state)
{
	assert_int_equal(config_parse_cmdline(&c,
					      "console=ttyS0 quiet sbx.hostname=vm1 "
					      "sbx.env.MSG=\"hello world\" sbx.port=5000 "
					      "tsc_early_khz=2596124 sbx.env.ESC=\"a\\x20b\"\n",
					      err, sizeof(err)),
			 0);
	assert_string_equal(c.hostname, "vm1");
	assert_int_equal(c.port, 5000);
	assert_string_equal(config_env_get(c.env, "MSG"), "hello world");
	assert_string_equal(config_env_get(c.env, "ESC"), "a b");
}

static void test_cmdline_errors(void **state)
{
	assert_int_equal(config_parse_cmdline(&c, "sbx.nokey sbx.port=-1 sbx.hostname=ok", err,
					      sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "'sbx.nokey' has no value"));
	assert_string_equal(c.hostname, "ok");
	err[0] = '\0';
	assert_int_equal(config_parse_cmdline(&c, "sbx.port=-1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "port: '-1'"));
}

static void test_env_set_unset(void **state)
{
	char **env = NULL;
	size_t n = 0;

	assert_int_equal(config_env_set(&env, &n, "A", "1"), 0);
	assert_int_equal(config_env_set(&env, &n, "B", "2"), 0);
	assert_int_equal(config_env_set(&env, &n, "A", NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(env[0], "B=2");
	assert_null(env[1]);
	assert_null(config_env_get(env, "A"));
	/* A name that is a prefix of another is a different variable. */
	assert_int_equal(config_env_set(&env, &n, "BB", "3"), 0);
	assert_string_equal(config_env_get(env, "B"), "2");
	assert_string_equal(config_env_get(env, "BB"), "3");
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(env);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/sbx-config-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hostname = fromfile\n", 20), 20);
	close(fd);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
	assert_string_equal(c.hostname, "fromfile");
	unlink(path);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	assert_int_equal(config_load(&c, path, false, false, err, sizeof(err)), 0);
	assert_int_equal(config_load(&c, path, true, false, err, sizeof(err)), -ENOENT);
}

/* Egress (docs/protocol/egress.md): off unless the host turns it on. */
static void test_egress(void **state)
{
	assert_false(c.egress);
	assert_int_equal(c.egress_port, 1025);
	assert_int_equal(parse("egress = on\negress_port = 2000\n"), 0);
	assert_true(c.egress);
	assert_int_equal(c.egress_port, 2000);
	assert_int_equal(parse("egress = yes\n"), -EINVAL);
	assert_non_null(strstr(err, "egress: 'yes' is not on or off"));
	assert_true(c.egress);
	assert_int_equal(parse("egress_port = 0\n"), -EINVAL);
	assert_non_null(strstr(err, "egress_port: '0' is not a port number"));
	assert_int_equal(c.egress_port, 2000);
	assert_int_equal(config_parse_cmdline(&c, "quiet sbx.egress=off", err, sizeof(err)), 0);
	assert_false(c.egress);
}

/* rlimit.NAME (sbx-oci's process.rlimits): SOFT:HARD, the later wins. */
static void test_rlimits(void **state)
{
	assert_int_equal(parse("rlimit.nofile = 100:200\nrlimit.core = 0:unlimited\n"
			       "rlimit.nofile = 300:400\n"), 0);
	assert_int_equal(c.nrlimits, 2);
	assert_int_equal(c.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(c.rlimits[0].lim.rlim_cur, 300);
	assert_int_equal(c.rlimits[0].lim.rlim_max, 400);
	assert_int_equal(c.rlimits[1].resource, RLIMIT_CORE);
	assert_true(c.rlimits[1].lim.rlim_max == RLIM_INFINITY);
	expect_error("rlimit.files = 1:2\n", "rlimit.files: 'files' is not a resource limit");
	expect_error("rlimit.nofile = 5\n", "rlimit.nofile: '5' is not SOFT:HARD");
	expect_error("rlimit.nofile = 5:4\n", "rlimit.nofile: '5:4' is not SOFT:HARD");
	expect_error("rlimit.nproc = x:4\n", "rlimit.nproc: 'x:4' is not SOFT:HARD");
	assert_int_equal(c.nrlimits, 2);
	assert_int_equal(c.rlimits[0].lim.rlim_cur, 300);
}

/* net.addr and net.gw (sbx-oci's bridged namespace): no NIC unless given. */
static void test_net_keys(void **state)
{
	assert_false(c.net);
	assert_int_equal(parse("net.addr = 10.88.0.4/16\nnet.gw = 10.88.0.1\n"), 0);
	assert_true(c.net);
	assert_int_equal(c.net_prefix, 16);
	assert_int_equal(ntohl(c.net_addr.s_addr), 0x0a580004);
	assert_int_equal(ntohl(c.net_gw.s_addr), 0x0a580001);
	expect_error("net.addr = 10.88.0.4\n", "net.addr: '10.88.0.4' is not an IPv4 address/prefix");
	expect_error("net.addr = 10.88.0.4/33\n", "net.addr:");
	expect_error("net.addr = 10.88.0/8\n", "net.addr:");
	expect_error("net.gw = ::1\n", "net.gw: '::1' is not an IPv4 address");
	assert_int_equal(ntohl(c.net_addr.s_addr), 0x0a580004);
}

/* tmpfs.N (sbx-oci's tmpfs mounts): mount(2)'s flags and tmpfs's own
 * options apart; a path under /, a known option, a slot from 0 to 7. */
static void test_tmpfs(void **state)
{
	assert_int_equal(parse("tmpfs.0 = /scratch:size=16m,mode=1777,nosuid,nodev,noexec,ro\n"
			       "tmpfs.3 = /run/x\n"), 0);
	assert_string_equal(c.tmpfs[0].path, "/scratch");
	assert_string_equal(c.tmpfs[0].data, "size=16m,mode=1777");
	assert_true(c.tmpfs[0].flags == (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY));
	assert_string_equal(c.tmpfs[3].path, "/run/x");
	assert_string_equal(c.tmpfs[3].data, "");
	assert_string_equal(c.tmpfs[1].path, "");
	expect_error("tmpfs.8 = /a\n", "tmpfs.8: '8' is not a tmpfs slot (0 to 7)");
	expect_error("tmpfs.1 = a:size=1m\n", "tmpfs.1: 'a:size=1m' is not PATH:OPTIONS");
	expect_error("tmpfs.1 = /:size=1m\n", "tmpfs.1:");
	expect_error("tmpfs.1 = /a/..\n", "tmpfs.1:");
	expect_error("tmpfs.1 = /a:size=1m,bogus\n", "tmpfs.1: unknown or malformed tmpfs option");
	expect_error("tmpfs.1 = /a:size=1m;rm\n", "tmpfs.1: unknown or malformed tmpfs option");
	expect_error("tmpfs.1 = /a:size=\n", "tmpfs.1: unknown or malformed tmpfs option");
	assert_string_equal(c.tmpfs[1].path, "");
}

/* pids_max unset: the agent sizes the workloads' pids.max by their memory
 * (one process per 512 KiB, 256 to 4096); set, it is taken as it is. */
static void test_pids_auto(void **state)
{
	assert_true(c.pids_max == CONFIG_PIDS_AUTO);
	assert_int_equal(cgroup_pids_auto(cgroup_memory_max(1024ULL << 20)), 1792);
	assert_int_equal(cgroup_pids_auto(cgroup_memory_max(768ULL << 20)), 1344);
	assert_int_equal(cgroup_pids_auto(cgroup_memory_max(4096ULL << 20)), CONFIG_PIDS_MAX);
	assert_int_equal(cgroup_pids_auto(64ULL << 20), CONFIG_PIDS_AUTO_MIN);
	assert_int_equal(cgroup_pids_auto(0), CONFIG_PIDS_MAX);
	assert_int_equal(config_set(&c, "pids_max", "4096", err, sizeof(err)), 0);
	assert_int_equal(c.pids_max, 4096);
	assert_int_equal(config_set(&c, "pids_max", "0", err, sizeof(err)), 0);
	assert_int_equal(c.pids_max, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),	 T(test_basic_file),	T(test_quoting),
		T(test_later_wins),	 T(test_errors_name_the_key),
		T(test_bad_lines_do_not_stop_the_rest),	 T(test_nul_and_long_lines),
		T(test_cmdline),	 T(test_cmdline_errors), T(test_env_set_unset),
		T(test_load_file),	 T(test_egress),		T(test_rlimits),
		T(test_net_keys),	 T(test_tmpfs),		T(test_pids_auto),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
