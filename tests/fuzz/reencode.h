/* What the round-trip targets share (fuzz_msgs.c, fuzz_fs.c,
 * fuzz_net.c): a buffer b the encoders write into, made once at start,
 * and reencoded(), which reads back the one frame an encoder just put
 * there and checks it is whole and of the expected type. */
#ifndef SBX_FUZZ_REENCODE_H
#define SBX_FUZZ_REENCODE_H

#include "tests/fuzz/fuzz.h"

static struct buf b;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	buf_init(&b, 2 * (PROTO_HDR_LEN + PROTO_FRAME_MAX));
	return 0;
}

/* The single frame the encoder just put in b. */
static struct frame reencoded(uint16_t type)
{
	struct proto_err e;
	struct frame g;
	long n = proto_frame_parse(buf_head(&b), buf_len(&b), &g, &e);

	FUZZ_CHECK(n > 0 && (size_t)n == buf_len(&b) && g.type == type);
	return g;
}

#endif
