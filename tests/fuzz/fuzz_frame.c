/* libFuzzer target: the frame decoder. The input is a byte stream as a
 * peer would send it; it is cut into frames with proto_frame_parse, as
 * the agent (conn/conn.c) and libsbx do, and every whole frame goes to
 * every decoder of the codec (decode_all.c). */
#include <errno.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t used = 0;

	while (used < size) {
		struct proto_err e;
		struct frame f;
		long n;

		fuzz_err_reset(&e);
		n = proto_frame_parse(data + used, size - used, &f, &e);
		if (n == 0) {
			/* Only a short header or a short payload waits. */
			FUZZ_CHECK(size - used < PROTO_HDR_LEN ||
				   size - used - PROTO_HDR_LEN < get_le32(data + used));
			break;
		}
		if (n < 0) {
			fuzz_check_rc((int)n, &e);
			FUZZ_CHECK(n == -EMSGSIZE || n == -EPROTO);
			break;
		}
		FUZZ_CHECK(f.len <= PROTO_FRAME_MAX);
		FUZZ_CHECK((size_t)n == PROTO_HDR_LEN + f.len && (size_t)n <= size - used);
		FUZZ_CHECK(f.payload == data + used + PROTO_HDR_LEN);
		fuzz_decode_all(&f);
		used += (size_t)n;
	}
	return 0;
}
