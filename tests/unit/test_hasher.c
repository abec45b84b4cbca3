/* Unit tests for lib/hasher.c: whatever the chunks, inline or on the
 * second thread, through put or reserve/commit, the digest is BLAKE2b of
 * the bytes in order (the digest of protocol version 1); a body dropped
 * half-way stops its thread; threads are bounded; no thread outlives its
 * body. And XXH3-128 (version 2): xxHash's one-shot digest in its
 * canonical form, whatever the chunks, never on a thread, and a damaged
 * byte changes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/hasher.h"
#include "tests/unit/threads.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define BODY (5u * 1024 * 1024 + 12345) /* past the inline part and the ring */

static uint8_t *body(void)
{
	static uint8_t *b;

	if (!b) {
		b = malloc(BODY);
		assert_non_null(b);
		for (size_t i = 0; i < BODY; i++)
			b[i] = (uint8_t)(i * 2654435761u >> 11);
	}
	return b;
}

static void one_shot(const uint8_t *p, size_t n, uint8_t out[32])
{
	crypto_generichash(out, 32, p, n, NULL, 0);
}

/* put in chunks of `chunk` bytes (0: sizes that vary from 1 byte up). */
/* Feeds b to hs in pieces of chunk bytes, or (chunk 0) of sizes growing
 * 1, 4, 13, ... up to 3 MiB and again; with no_thread, checks after each
 * piece that no hasher thread runs. */
static void put_in_pieces(struct hasher *hs, const uint8_t *b, size_t len, size_t chunk,
			  bool no_thread)
{
	size_t off = 0, step = 1;

	while (off < len) {
		size_t n = chunk ? chunk : step;

		n = n < len - off ? n : len - off;
		hasher_put(hs, b + off, n);
		off += n;
		step = step * 3 + 1;
		if (step > 3 * 1024 * 1024)
			step = 1;
		if (no_thread)
			assert_int_equal(threads(), 1);
	}
}

static void check_put(size_t len, size_t chunk)
{
	uint8_t want[32], got[32];
	struct hasher *hs = aligned_alloc(64, sizeof(*hs));
	const uint8_t *b = body();

	assert_non_null(hs);
	hasher_init(hs, 32);
	put_in_pieces(hs, b, len, chunk, false);
	hasher_final(hs, got);
	one_shot(b, len, want);
	assert_memory_equal(got, want, 32);
	assert_int_equal(threads(), 1);
	free(hs);
}

static void test_put_chunk_sizes(void **state)
{
	check_put(0, 1);
	check_put(1000, 7);
	check_put(BODY, 256 * 1024);   /* libsbx's upload frames */
	check_put(BODY, 1024 * 1024);  /* the protocol's largest, the whole ring */
	check_put(BODY, 65536 - 8);
	check_put(BODY, 0);
	check_put(512 * 1024, 4096);   /* exactly the inline part */
	check_put(512 * 1024 + 1, 4096);
}

/* reserve/commit as the agent's sender uses them, mixed with put. */
static void test_reserve_commit(void **state)
{
	uint8_t want[32], got[32];
	struct hasher *hs = aligned_alloc(64, sizeof(*hs));
	const uint8_t *b = body();
	size_t off = 0;
	bool flip = false;

	assert_non_null(hs);
	hasher_init(hs, 32);
	while (off < BODY) {
		size_t n = BODY - off < 300000 ? BODY - off : 300000, room;
		uint8_t *dst = flip ? hasher_reserve(hs, n, &room) : NULL;

		if (dst) {
			assert_true(room >= 1 && room <= n);
			memcpy(dst, b + off, room / 2 + 1);
			hasher_commit(hs, room / 2 + 1);
			off += room / 2 + 1;
		} else {
			hasher_put(hs, b + off, n);
			off += n;
		}
		flip = !flip;
	}
	hasher_final(hs, got);
	one_shot(b, BODY, want);
	assert_memory_equal(got, want, 32);
	assert_int_equal(threads(), 1);
	free(hs);
}

/* A body dropped half-way, with the ring full: close stops and joins
 * the thread; closing again, or a hasher never used, is harmless. */
static void test_close_midway(void **state)
{
	struct hasher *hs = aligned_alloc(64, sizeof(*hs));

	assert_non_null(hs);
	hasher_init(hs, 32);
	hasher_put(hs, body(), BODY);
	/* with one CPU the body was hashed inline */
	assert_int_equal(threads(), sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1);
	hasher_close(hs);
	assert_int_equal(threads(), 1);
	hasher_close(hs);
	memset(hs, 0, sizeof(*hs));
	hasher_close(hs);
	assert_int_equal(threads(), 1);
	free(hs);
}

/* More bodies at once than there are CPUs to spare: the extra ones are
 * hashed inline (one thread per spare CPU, at most 4), every digest right. */
static void test_many_at_once(void **state)
{
	enum { N = 6 };
	struct hasher *hs = aligned_alloc(64, N * sizeof(*hs));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int spare = cpus - 1 < 4 ? (int)cpus - 1 : 4;
	const uint8_t *b = body();
	uint8_t want[32], got[32];

	assert_non_null(hs);
	for (int i = 0; i < N; i++)
		hasher_init(&hs[i], 32);
	for (size_t off = 0; off < BODY; off += 65536)
		for (int i = 0; i < N; i++)
			hasher_put(&hs[i], b + off, BODY - off < 65536 ? BODY - off : 65536);
	assert_int_equal(threads(), 1 + spare);
	one_shot(b, BODY, want);
	for (int i = 0; i < N; i++) {
		hasher_final(&hs[i], got);
		assert_memory_equal(got, want, 32);
	}
	assert_int_equal(threads(), 1);
	free(hs);
}

/* XXH3-128 over the body put in chunks of `chunk` bytes (0: sizes that
 * vary), against xxHash's one-shot function. */
static void check_xxh3(const uint8_t *b, size_t len, size_t chunk, uint8_t got[16])
{
	struct hasher *hs = aligned_alloc(64, sizeof(*hs));
	XXH128_canonical_t want;
	size_t room;

	assert_non_null(hs);
	hasher_init(hs, 16);
	/* inline: nothing to read into, no thread */
	assert_null(hasher_reserve(hs, 65536, &room));
	put_in_pieces(hs, b, len, chunk, true);
	hasher_final(hs, got);
	XXH128_canonicalFromHash(&want, XXH3_128bits(b, len));
	assert_memory_equal(got, want.digest, 16);
	hasher_close(hs);
	free(hs);
}

static void test_xxh3(void **state)
{
	/* XXH3-128 of nothing, canonical (big-endian): xxHash's test vector */
	static const uint8_t empty[16] = { 0x99, 0xaa, 0x06, 0xd3, 0x01, 0x47, 0x98, 0xd8,
					   0x60, 0x01, 0xc3, 0x24, 0x46, 0x8d, 0x49, 0x7f };
	uint8_t *b = body(), got[16], again[16];

	check_xxh3(b, 0, 1, got);
	assert_memory_equal(got, empty, 16);
	check_xxh3(b, 1000, 7, got);
	check_xxh3(b, BODY, 256 * 1024, got);
	check_xxh3(b, BODY, 0, again);
	assert_memory_equal(got, again, 16);
	/* one byte damaged in the middle: another digest */
	b[BODY / 2] ^= 0x01;
	check_xxh3(b, BODY, 256 * 1024, again);
	b[BODY / 2] ^= 0x01;
	assert_memory_not_equal(got, again, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xxh3),
		cmocka_unit_test(test_put_chunk_sizes),
		cmocka_unit_test(test_reserve_commit),
		cmocka_unit_test(test_close_midway),
		cmocka_unit_test(test_many_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
