/* lib/buf.c: the bounded byte queue and its spare allocations. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"

#define KIB 1024

/* The limit holds: nothing grows past max, and the bytes come out in order. */
static void test_limit_and_order(void **state)
{
	struct buf b;
	uint8_t in[3000], out[3000];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	buf_init(&b, 4 * KIB);
	assert_int_equal(buf_append(&b, in, sizeof(in)), 0);
	assert_int_equal(buf_append(&b, in, sizeof(in)), -ENOBUFS);
	buf_consume(&b, 1000);
	assert_int_equal(buf_append(&b, in, 2000), 0); /* slides to the front */
	assert_int_equal(buf_len(&b), 4000);
	assert_true(b.cap <= 4 * KIB);
	memcpy(out, buf_head(&b), 2000);
	assert_memory_equal(out, in + 1000, 2000);
	buf_free(&b);
	buf_drop_spares();
}

/* A large allocation released by one buffer is taken by the next buffer
 * that grows that large, and dropped on request. */
static void test_spares_reused_then_dropped(void **state)
{
	struct buf a, b;
	uint8_t *first;
	static uint8_t big[300 * KIB];

	buf_drop_spares();
	assert_false(buf_spares_held());
	buf_init(&a, 1024 * KIB);
	assert_int_equal(buf_append(&a, big, sizeof(big)), 0);
	first = a.data;
	buf_consume(&a, sizeof(big));
	buf_shrink(&a, 0);
	assert_null(a.data);
	assert_true(buf_spares_held());

	buf_init(&b, 1024 * KIB);
	assert_int_equal(buf_append(&b, "x", 1), 0); /* small: from malloc */
	assert_int_equal(buf_reserve(&b, 200 * KIB), 0);
	assert_ptr_equal(b.data, first);
	assert_int_equal(buf_len(&b), 1);
	assert_int_equal(buf_head(&b)[0], 'x');
	assert_false(buf_spares_held());
	buf_free(&b);
	assert_true(buf_spares_held());
	buf_drop_spares();
	assert_false(buf_spares_held());
}

/* A spare never lets a buffer exceed its own limit, and small or huge
 * allocations are not kept. */
static void test_spare_respects_limit(void **state)
{
	struct buf a, b;
	static uint8_t big[600 * KIB];

	buf_drop_spares();
	buf_init(&a, 1024 * KIB);
	assert_int_equal(buf_append(&a, big, sizeof(big)), 0);
	buf_free(&a);
	assert_true(buf_spares_held());
	buf_init(&b, 100 * KIB);
	assert_int_equal(buf_append(&b, big, 90 * KIB), 0);
	assert_false(buf_spares_held()); /* b has it now */
	assert_true(b.cap <= 100 * KIB);
	assert_int_equal(buf_append(&b, big, 20 * KIB), -ENOBUFS);
	buf_free(&b);
	buf_drop_spares();

	buf_init(&a, 4 * KIB);
	assert_int_equal(buf_append(&a, big, 4 * KIB), 0);
	buf_free(&a);
	assert_false(buf_spares_held());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_and_order),
		cmocka_unit_test(test_spares_reused_then_dropped),
		cmocka_unit_test(test_spare_respects_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
