/* What the codec's unit tests share (test_proto.c, test_fs_proto.c,
 * test_net.c): one buffer b, made and freed around each test (setup,
 * teardown), that an encoder fills and one_frame reads back. Include
 * after <cmocka.h>. */
#ifndef SBX_TESTS_UNIT_CODEC_H
#define SBX_TESTS_UNIT_CODEC_H

#include "lib/buf.h"
#include "vsock/proto.h"

static struct buf b;

static int setup(void **state)
{
	buf_init(&b, 4 * PROTO_FRAME_MAX);
	return 0;
}

static int teardown(void **state)
{
	buf_free(&b);
	return 0;
}

/* Parses the single frame in b: it must take all of b. */
static void one_frame(struct frame *f)
{
	struct proto_err e;
	long n = proto_frame_parse(buf_head(&b), buf_len(&b), f, &e);

	assert_int_equal(n, (long)buf_len(&b));
}

#endif
