/* Unit tests for the guest's synthetic resolver (net/dns.c): answers to
 * well-formed queries, the name <-> address mapping and its bounds, and
 * malformed, truncated and hostile datagrams (every prefix of a query,
 * compression pointers, long labels and names, responses, other opcodes). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/dns.h"

enum { T_A = 1, T_MX = 15, T_AAAA = 28, T_ANY = 255 };

/* Writes a query for name (dotted) with id 0x1234, RD set. */
static size_t query(uint8_t *q, const char *name, uint16_t type, uint16_t class)
{
	size_t at = 12;
	const char *p = name;

	memset(q, 0, 12);
	q[0] = 0x12;
	q[1] = 0x34;
	q[2] = 0x01; /* RD */
	q[5] = 1;    /* QDCOUNT */
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		q[at++] = (uint8_t)len;
		memcpy(q + at, p, len);
		at += len;
		p += len + (dot ? 1 : 0);
	}
	q[at++] = 0;
	q[at++] = (uint8_t)(type >> 8);
	q[at++] = (uint8_t)type;
	q[at++] = (uint8_t)(class >> 8);
	q[at++] = (uint8_t)class;
	return at;
}

static int rcode(const uint8_t *r) { return r[3] & 0x0f; }
static int ancount(const uint8_t *r) { return r[6] << 8 | r[7]; }
static uint32_t a_record(const uint8_t *r, size_t len)
{
	return (uint32_t)r[len - 4] << 24 | (uint32_t)r[len - 3] << 16 | (uint32_t)r[len - 2] << 8 |
	       r[len - 1];
}

static void setup_reset(void) { dns_reset(); }

static void test_a_answer(void **state)
{
	uint8_t q[512], r[DNS_REPLY_MAX];
	size_t ql = query(q, "api.test", T_A, 1), rl;
	char name[300];
	uint32_t a;

	setup_reset();
	rl = dns_answer(q, ql, r);
	assert_int_equal(rl, ql + 16);
	assert_int_equal(r[0], 0x12);
	assert_int_equal(r[1], 0x34);
	assert_true(r[2] & 0x80);     /* a response */
	assert_true(r[2] & 0x01);     /* RD echoed */
	assert_int_equal(rcode(r), 0);
	assert_int_equal(ancount(r), 1);
	assert_memory_equal(r + 12, q + 12, ql - 12);
	a = a_record(r, rl);
	assert_true(dns_is_synthetic(a));
	assert_true(dns_lookup_addr(a, name, sizeof(name)));
	assert_string_equal(name, "api.test");
}

static void test_same_name_same_address(void **state)
{
	uint8_t q[512], r[DNS_REPLY_MAX];
	size_t ql;
	uint32_t a1, a2, a3;

	setup_reset();
	ql = query(q, "api.test", T_A, 1);
	a1 = a_record(r, dns_answer(q, ql, r));
	/* DNS 0x20: a mixed-case query gets the same address, and its
	 * question is echoed as asked. */
	ql = query(q, "ApI.TeSt", T_A, 1);
	a2 = a_record(r, dns_answer(q, ql, r));
	assert_memory_equal(r + 13, "ApI", 3);
	ql = query(q, "other.test", T_A, 1);
	a3 = a_record(r, dns_answer(q, ql, r));
	assert_int_equal(a1, a2);
	assert_int_not_equal(a1, a3);
}

static void test_other_types(void **state)
{
	uint8_t q[512], r[DNS_REPLY_MAX];
	size_t ql;

	setup_reset();
	ql = query(q, "api.test", T_AAAA, 1);
	assert_int_equal(dns_answer(q, ql, r), ql);
	assert_int_equal(rcode(r), 0);
	assert_int_equal(ancount(r), 0);
	ql = query(q, "api.test", T_MX, 1);
	assert_int_equal(dns_answer(q, ql, r), ql);
	assert_int_equal(ancount(r), 0);
	ql = query(q, "api.test", T_ANY, 1);
	assert_int_equal(dns_answer(q, ql, r), ql + 16);
	ql = query(q, "api.test", T_A, 3); /* class CH */
	dns_answer(q, ql, r);
	assert_int_equal(rcode(r), 5);
	assert_int_equal(ancount(r), 0);
}

static void test_not_host_names(void **state)
{
	uint8_t q[512], r[DNS_REPLY_MAX];
	size_t ql;

	setup_reset();
	ql = query(q, "a b.test", T_A, 1);
	dns_answer(q, ql, r);
	assert_int_equal(rcode(r), 3);
	ql = query(q, "", T_A, 1);         /* the root */
	dns_answer(q, ql, r);
	assert_int_equal(rcode(r), 3);
	ql = query(q, "a/b.test", T_A, 1);
	dns_answer(q, ql, r);
	assert_int_equal(rcode(r), 3);
	assert_int_equal(ancount(r), 0);
}

static void test_malformed(void **state)
{
	uint8_t q[600], r[DNS_REPLY_MAX];
	size_t ql;

	setup_reset();
	/* Too short for an id: no reply at all. */
	assert_int_equal(dns_answer(q, 11, r), 0);
	/* A response: never answered (no loops between resolvers). */
	ql = query(q, "api.test", T_A, 1);
	q[2] |= 0x80;
	assert_int_equal(dns_answer(q, ql, r), 0);
	/* Another opcode. */
	ql = query(q, "api.test", T_A, 1);
	q[2] |= 0x10;
	assert_int_equal(dns_answer(q, ql, r), 12);
	assert_int_equal(rcode(r), 4);
	/* Two questions. */
	ql = query(q, "api.test", T_A, 1);
	q[5] = 2;
	assert_int_equal(dns_answer(q, ql, r), 12);
	assert_int_equal(rcode(r), 1);
	/* A compression pointer in the question. */
	ql = query(q, "api.test", T_A, 1);
	q[12] = 0xc0;
	assert_int_equal(dns_answer(q, ql, r), 12);
	assert_int_equal(rcode(r), 1);
	/* A label longer than 63. */
	ql = query(q, "api.test", T_A, 1);
	q[12] = 64;
	assert_int_equal(dns_answer(q, ql, r), 12);
	assert_int_equal(rcode(r), 1);
}

/* Every prefix of a good query is handled without reading past it. */
static void test_every_prefix(void **state)
{
	uint8_t q[512], r[DNS_REPLY_MAX];
	size_t ql = query(q, "www.api.test", T_A, 1);

	setup_reset();
	for (size_t n = 0; n < ql; n++) {
		uint8_t copy[512];
		size_t rl;

		memcpy(copy, q, n);
		rl = dns_answer(copy, n, r);
		if (n < 12) {
			assert_int_equal(rl, 0);
		} else {
			assert_int_equal(rl, 12);
			assert_int_equal(rcode(r), 1);
		}
	}
}

static void test_name_too_long(void **state)
{
	uint8_t q[600], r[DNS_REPLY_MAX];
	char name[400] = "";
	size_t ql;

	setup_reset();
	/* 4 x 63-byte labels: 4 * 64 + 1 = 257 bytes on the wire (> 255). */
	for (int i = 0; i < 4; i++) {
		strcat(name, i ? "." : "");
		memset(name + strlen(name), 'a', 63);
		name[strlen(name) + 63] = '\0';
	}
	ql = query(q, name, T_A, 1);
	assert_int_equal(dns_answer(q, ql, r), 12);
	assert_int_equal(rcode(r), 1);
	/* 3 x 63 + 61: 253 characters, 255 on the wire: fine. */
	name[3 * 64 + 61] = '\0';
	ql = query(q, name, T_A, 1);
	assert_int_equal(dns_answer(q, ql, r), ql + 16);
	assert_int_equal(rcode(r), 0);
}

/* At most DNS_NAMES_MAX names: the least recently used goes, and its
 * address then leads nowhere (never to another name). */
static void test_bounded_table(void **state)
{
	char name[64], back[300];
	uint32_t first, kept;

	setup_reset();
	first = dns_map_name("first.test");
	kept = dns_map_name("kept.test");
	for (int i = 0; i < DNS_NAMES_MAX - 1; i++) {
		snprintf(name, sizeof(name), "n%d.test", i);
		assert_true(dns_is_synthetic(dns_map_name(name)));
		if (i % 100 == 0)
			assert_int_equal(dns_map_name("kept.test"), kept); /* keeps it fresh */
	}
	assert_false(dns_lookup_addr(first, back, sizeof(back)));
	assert_true(dns_lookup_addr(kept, back, sizeof(back)));
	assert_string_equal(back, "kept.test");
	assert_false(dns_lookup_addr(0xc6120000, back, sizeof(back)));
	assert_false(dns_lookup_addr(0x01020304, back, sizeof(back)));
	assert_int_not_equal(dns_map_name("first.test"), first);
}

/* With the allow list's names set, a name none can match gets NXDOMAIN
 * and no address; a listed name, or one under a *.domain pattern, does. */
static void test_allowed_names(void **state)
{
	static const struct { const char *name; bool ok; } cases[] = {
		{ "api.test", true }, { "API.Test", true }, { "other.test", false },
		{ "a.wild.test", true }, { "x.y.wild.test", true }, { "wild.test", false },
		{ "ild.test", false }, { "xwild.test", false }, { "api.test.evil", false },
		{ "pi.test", false },
	};
	uint8_t q[512], r[DNS_REPLY_MAX];

	setup_reset();
	dns_set_names("api.test *.wild.test");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t ql = query(q, cases[i].name, T_A, 1), rl = dns_answer(q, ql, r);

		assert_int_equal(rcode(r), cases[i].ok ? 0 : 3);
		assert_int_equal(ancount(r), cases[i].ok ? 1 : 0);
		assert_int_equal(rl, cases[i].ok ? ql + 16 : ql);
	}
	dns_set_names("");
	assert_int_equal(rcode((dns_answer(q, query(q, "api.test", T_A, 1), r), r)), 3);
	dns_set_names(NULL);
	assert_int_equal(rcode((dns_answer(q, query(q, "other.test", T_A, 1), r), r)), 0);
}

static void test_synthetic_range(void **state)
{
	assert_true(dns_is_synthetic(0xc6120001));  /* 198.18.0.1 */
	assert_true(dns_is_synthetic(0xc613fffe));  /* 198.19.255.254 */
	assert_false(dns_is_synthetic(0xc6140000)); /* 198.20.0.0 */
	assert_false(dns_is_synthetic(0xc611ffff)); /* 198.17.255.255 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_answer),
		cmocka_unit_test(test_same_name_same_address),
		cmocka_unit_test(test_other_types),
		cmocka_unit_test(test_not_host_names),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_name_too_long),
		cmocka_unit_test(test_bounded_table),
		cmocka_unit_test(test_synthetic_range),
		cmocka_unit_test(test_allowed_names),
	};

	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
