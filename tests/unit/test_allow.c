/* Unit tests for the egress allow list (gateway/allow.c): pattern parsing,
 * canonical forms, matching names, wildcards, ports and addresses, and the
 * ranges a name may never lead to. One cmocka test per table row, so a
 * failure names its case. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/allow.h"
#include "lib/util.h"

/* ---- patterns: valid ones and their canonical text ---- */

static const struct good {
	const char *in, *canon;
	enum allow_kind kind;
	unsigned port;
} goods[] = {
	{ "api.test", "api.test", ALLOW_HOST, 0 },
	{ "api.test:8080", "api.test:8080", ALLOW_HOST, 8080 },
	{ "API.Test", "api.test", ALLOW_HOST, 0 },
	{ "api.test.", "api.test", ALLOW_HOST, 0 },
	{ "Api.TEST.:443", "api.test:443", ALLOW_HOST, 443 },
	{ "localhost", "localhost", ALLOW_HOST, 0 },
	{ "*.example.com", "*.example.com", ALLOW_SUFFIX, 0 },
	{ "*.Example.COM.:443", "*.example.com:443", ALLOW_SUFFIX, 443 },
	{ "x-1_y.example", "x-1_y.example", ALLOW_HOST, 0 },
	{ "1.2.3.4", "1.2.3.4", ALLOW_IP, 0 },
	{ "1.2.3.4:80", "1.2.3.4:80", ALLOW_IP, 80 },
	{ "203.0.113.7:65535", "203.0.113.7:65535", ALLOW_IP, 65535 },
	{ "[2001:db8::1]", "[2001:db8::1]", ALLOW_IP, 0 },
	{ "[2001:DB8:0:0::1]:443", "[2001:db8::1]:443", ALLOW_IP, 443 },
	{ "2001:db8::1", "[2001:db8::1]", ALLOW_IP, 0 },
	{ "[::1]:22", "[::1]:22", ALLOW_IP, 22 },
	{ "[::ffff:1.2.3.4]:80", "1.2.3.4:80", ALLOW_IP, 80 },
	{ "api.test:080", "api.test:80", ALLOW_HOST, 80 },
	{ "a.b.c.d.e.f.example", "a.b.c.d.e.f.example", ALLOW_HOST, 0 },
	{ "1.2.3.com", "1.2.3.com", ALLOW_HOST, 0 },
};

static void test_good(void **state)
{
	const struct good *g = *state;
	struct allow_rule r;
	char err[512];

	if (allow_parse(g->in, &r, err, sizeof(err)) != 0)
		fail_msg("'%s' refused: %s", g->in, err);
	assert_string_equal(r.text, g->canon);
	assert_int_equal(r.kind, g->kind);
	assert_int_equal(r.port, g->port);
}

/* ---- patterns that are refused, with words the message must have ---- */

static const struct badp {
	const char *in, *why;
} bads[] = {
	{ "", "empty" },
	{ "*", "'*'" },
	{ "*.", "'*'" },
	{ "*example.com", "'*'" },
	{ "a.*.example.com", "'*'" },
	{ "*.*.example.com", "'*'" },
	{ "api.test:0", "port" },
	{ "api.test:65536", "port" },
	{ "api.test:", "port" },
	{ "api.test:http", "port" },
	{ "api.test:-1", "port" },
	{ "api.test:+80", "port" },
	{ "api.test:80:81", "IPv6" },
	{ "http://api.test", "port" },
	{ "api..test", "empty label" },
	{ ".api.test", "empty label" },
	{ "api.test..", "empty label" },
	{ "-api.test", "starts with '-'" },
	{ "api-.test", "ends with '-'" },
	{ "api test", "white space" },
	{ "api\ttest", "white space" },
	{ "api/test", "letters, digits" },
	{ "1.2.3", "IPv4" },
	{ "256.1.1.1", "IPv4" },
	{ "1.2.3.4.5", "IPv4" },
	{ "[2001:db8::1", "']'" },
	{ "[1.2.3.4]", "IPv6" },
	{ "[2001:db8::1]443", "':PORT'" },
	{ "[2001:db8::1]:0", "port" },
	{ "[fe80::1%eth0]", "IPv6" },
	{ "2001:db8::zz", "IPv6" },
	{ "[]", "IPv6" },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test", "63" },
};

static void test_bad(void **state)
{
	const struct badp *b = *state;
	struct allow_rule r;
	char err[512] = "";

	assert_int_equal(allow_parse(b->in, &r, err, sizeof(err)), -EINVAL);
	if (!strstr(err, b->why) || !strstr(err, "--allow-net"))
		fail_msg("'%s': message '%s' does not say '%s'", b->in, err, b->why);
}

/* ---- matching ---- */

static const char *const list[] = {
	"api.test:8080", "*.example.com", "exact.test", "*.ports.test:443", "203.0.113.9",
	"203.0.113.10:22", "[2001:db8::5]:443", "10.1.2.3:80",
};

static const struct match {
	const char *host;
	unsigned port;
	const char *rule; /* NULL: refused */
} matches[] = {
	{ "api.test", 8080, "api.test:8080" },
	{ "API.TEST.", 8080, "api.test:8080" },
	{ "api.test", 8081, NULL },
	{ "other.test", 8080, NULL },
	{ "x.api.test", 8080, NULL },
	{ "a.example.com", 1, "*.example.com" },
	{ "a.b.example.com", 65535, "*.example.com" },
	{ "example.com", 443, NULL },
	{ "badexample.com", 443, NULL },
	{ "example.com.evil.test", 443, NULL },
	{ "exact.test", 22, "exact.test" },
	{ "www.ports.test", 443, "*.ports.test:443" },
	{ "www.ports.test", 80, NULL },
	{ "203.0.113.9", 1234, "203.0.113.9" },
	{ "203.0.113.10", 22, "203.0.113.10:22" },
	{ "203.0.113.10", 23, NULL },
	{ "203.0.113.11", 22, NULL },
	{ "[2001:db8::5]", 443, "[2001:db8::5]:443" },
	{ "2001:db8:0::5", 443, "[2001:db8::5]:443" },
	{ "[2001:db8::5]", 80, NULL },
	{ "[::ffff:203.0.113.9]", 80, "203.0.113.9" },
	{ "10.1.2.3", 80, "10.1.2.3:80" },
};

static void test_match(void **state)
{
	const struct match *m = *state;
	struct allow_rule rules[ARRAY_SIZE(list)];
	const struct allow_rule *got;
	struct allow_dest d;
	char err[512];

	for (size_t i = 0; i < ARRAY_SIZE(list); i++)
		assert_int_equal(allow_parse(list[i], &rules[i], err, sizeof(err)), 0);
	if (allow_parse_dest(m->host, m->port, &d, err, sizeof(err)) != 0)
		fail_msg("destination %s refused: %s", m->host, err);
	got = allow_match(rules, ARRAY_SIZE(list), &d);
	if (!m->rule && got)
		fail_msg("%s:%u matched %s", m->host, m->port, got->text);
	if (m->rule && (!got || strcmp(got->text, m->rule)))
		fail_msg("%s:%u: matched %s, want %s", m->host, m->port, got ? got->text : "nothing",
			 m->rule);
}

/* A name is not allowed because an address rule names its address, and
 * an address is not allowed because a name rule would resolve to it. */
static void test_names_and_addresses_apart(void **state)
{
	struct allow_rule r[2];
	struct allow_dest d;
	char err[256];

	assert_int_equal(allow_parse("203.0.113.9", &r[0], err, sizeof(err)), 0);
	assert_int_equal(allow_parse("api.test", &r[1], err, sizeof(err)), 0);
	assert_int_equal(allow_parse_dest("9.113.0.203.in-addr.arpa", 80, &d, err, sizeof(err)), 0);
	assert_null(allow_match(r, 1, &d));
	assert_int_equal(allow_parse_dest("203.0.113.9", 80, &d, err, sizeof(err)), 0);
	assert_null(allow_match(&r[1], 1, &d));
}

static void test_bad_destinations(void **state)
{
	struct allow_dest d;
	char err[256];

	assert_int_equal(allow_parse_dest("api.test", 0, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("api.test", 65536, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("*.test", 80, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("", 80, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("a b", 80, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("[zz::1]", 80, &d, err, sizeof(err)), -EINVAL);
	assert_int_equal(allow_parse_dest("1.2.3", 80, &d, err, sizeof(err)), -EINVAL);
}

/* ---- ranges a name may not lead to ---- */

static const struct spec {
	const char *addr;
	const char *why; /* NULL: an ordinary address */
} specs[] = {
	{ "127.0.0.1", "loopback" },
	{ "127.255.0.9", "loopback" },
	{ "10.0.0.1", "private" },
	{ "172.16.0.1", "private" },
	{ "172.31.255.255", "private" },
	{ "172.32.0.1", NULL },
	{ "192.168.1.1", "private" },
	{ "100.64.0.1", "carrier-grade" },
	{ "100.128.0.1", NULL },
	{ "169.254.169.254", "link-local" },
	{ "0.0.0.0", "this network" },
	{ "224.0.0.1", "multicast" },
	{ "255.255.255.255", "reserved" },
	{ "198.18.0.1", "benchmarking" },
	{ "203.0.113.5", NULL },
	{ "8.8.8.8", NULL },
	{ "::1", "loopback" },
	{ "::", "unspecified" },
	{ "fe80::1", "link-local" },
	{ "fd00::1", "unique local" },
	{ "fc00::1", "unique local" },
	{ "ff02::1", "multicast" },
	{ "::ffff:127.0.0.1", "loopback" },
	{ "::ffff:10.0.0.1", "private" },
	{ "64:ff9b::a9fe:a9fe", "link-local" },
	{ "64:ff9b::808:808", NULL },
	{ "2001:db8::1", NULL },
	{ "2606:4700::1111", NULL },
};

static void test_special(void **state)
{
	const struct spec *s = *state;
	struct allow_dest d;
	const char *why = NULL;
	char err[256];
	bool special;

	assert_int_equal(allow_parse_dest(s->addr, 80, &d, err, sizeof(err)), 0);
	assert_true(d.is_addr);
	special = allow_addr_special(&d.addr, &why);
	if (!s->why && special)
		fail_msg("%s called %s", s->addr, why);
	if (s->why && (!special || !strstr(why, s->why)))
		fail_msg("%s: got '%s', want '%s'", s->addr, special ? why : "ordinary", s->why);
}

#define ROWS(table, fn, fmt, ...)                                                  \
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {                           \
		char *name;                                                        \
		if (asprintf(&name, fmt, __VA_ARGS__) < 0)                         \
			return 1;                                                  \
		t[n++] = (struct CMUnitTest){ name, fn, NULL, NULL, (void *)&table[i] }; \
	}

int main(void)
{
	static struct CMUnitTest t[ARRAY_SIZE(goods) + ARRAY_SIZE(bads) + ARRAY_SIZE(matches) +
				   ARRAY_SIZE(specs) + 2];
	size_t n = 0;

	ROWS(goods, test_good, "pattern '%s' is %s", goods[i].in, goods[i].canon);
	ROWS(bads, test_bad, "pattern '%s' is refused", bads[i].in);
	ROWS(matches, test_match, "%s port %u: %s", matches[i].host, matches[i].port,
	     matches[i].rule ? matches[i].rule : "refused");
	ROWS(specs, test_special, "address %s: %s", specs[i].addr,
	     specs[i].why ? specs[i].why : "ordinary");
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_names_and_addresses_apart);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_destinations);
	return _cmocka_run_group_tests("allow", t, n, NULL, NULL);
}
