/* Shared pieces of the libFuzzer targets (tests/fuzz/fuzz_*.c): a check
 * that aborts with a message (libFuzzer then saves the input), the rule
 * every decoder failure must follow, and quiet logging. */
#ifndef SBX_FUZZ_H
#define SBX_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vsock/proto.h"

/* What a failed check does: abort, for libFuzzer; the unit test that
 * replays the corpora (tests/unit/test_fuzz_regressions.c) makes it a
 * cmocka failure instead. */
#ifndef FUZZ_FAIL
#define FUZZ_FAIL() abort()
#endif

#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz: check failed at %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                                     \
			FUZZ_FAIL();                                                  \
		}                                                                     \
	} while (0)

/* A decoder that fails says why: the code it returns is the one in e, and
 * the message is a non-empty C string (it becomes an ERROR frame). */
static inline void fuzz_check_rc(int r, const struct proto_err *e)
{
	FUZZ_CHECK(r <= 0);
	if (r < 0) {
		FUZZ_CHECK(e->code == -r);
		FUZZ_CHECK(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
		FUZZ_CHECK(e->msg[0] != '\0');
	}
}

static inline void fuzz_err_reset(struct proto_err *e)
{
	e->code = 0;
	memset(e->msg, 0, sizeof(e->msg));
}

/* Parsers log bad lines; a fuzzer would print millions of them. */
static inline void fuzz_quiet(void)
{
	log_set_level((enum log_level)(LOG_ERROR + 1));
}

static inline struct frame fuzz_frame_of(uint16_t type, const uint8_t *p, size_t len)
{
	struct frame f = { .type = type, .len = (uint32_t)len, .payload = p };

	return f;
}

/* Feeds f to every decoder of the codec (vsock/proto*.c), with its own
 * type and with the type each decoder expects. tests/fuzz/decode_all.c */
void fuzz_decode_all(const struct frame *f);

/* Input formats. fuzz_msgs, fuzz_fs and fuzz_net take a selector byte
 * (modulo the count) and then a payload; tests/fuzz/mkcorpus.c writes
 * seeds in these formats. */
enum {
	M_HELLO, M_HELLO_OK, M_ERROR, M_EXIT, M_SIGNAL, M_RESIZE, M_U32, M_ATTACHED, M_ACK,
	M_SHUTDOWN, M_LIFETIME, M_PS_ENTRY, M_INFO_OK, M_READY, M_FIELDS, M_COUNT
};
/* fuzz_fs: 0 to NREQ - 1 are the requests FT_FS_WRITE + n. */
#define NREQ (0x0032 - 0x0020 + 1)
enum { R_STAT_OK = NREQ, R_END, R_PATH_OK, R_DIRENTS, R_ENTRY, R_TREE_END, R_RELPATH, R_COUNT };
enum { N_FORWARD, N_SSH_START, N_KEY_ADD, N_KEY_REMOVE, N_KEY_LIST, N_SERVER, N_KEYS,
       N_PARSE, N_FIND, N_COUNT };

/* Checks the invariants of a parsed configuration (config_check.c). */
struct config;
void fuzz_config_check(const struct config *c);

#endif
