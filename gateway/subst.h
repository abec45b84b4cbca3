/* The request side of an intercepted connection: HTTP/1.1 requests parsed
 * with http-parser (Debian's libhttp-parser), each head rewritten with the
 * values of the stand-ins it carries in its request target and header
 * values, and URL-encoded or JSON bodies of at most SUBST_BODY_MAX bytes
 * (with a Content-Length) rewritten too, Content-Length recomputed;
 * everything else (other bodies, chunking, bytes after an Upgrade) passed
 * on byte for byte. A stand-in of a secret that does not belong to this
 * host is left as it is (and said so). */
#ifndef SBX_SUBST_H
#define SBX_SUBST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "gateway/secrets.h"
#include "lib/buf.h"

#define SUBST_HEAD_MAX 32768          /* one request's line and headers */
#define SUBST_FIELDS_MAX 128          /* headers per request */
#define SUBST_BODY_MAX 65536          /* a URL-encoded or JSON body rewritten */

/* Called for each stand-in found: done is false when it was left as is.
 * With s NULL, where says why a body that may carry stand-ins was passed
 * on unchanged (too large, chunked, compressed, Expect: 100-continue). */
typedef void (*subst_audit_fn)(void *arg, const struct secret *s, const char *where, bool done);

struct subst_span {
	uint32_t off, len;
};

struct subst {
	http_parser p;
	http_parser_settings cb;
	enum { SUBST_HEAD, SUBST_BODY, SUBST_HOLD, SUBST_RAW, SUBST_ERROR } state;
	enum { SUBST_ENC_RAW, SUBST_ENC_URL, SUBST_ENC_JSON } body_enc;
	const struct secret_set *set;
	const char *host;
	subst_audit_fn audit;
	void *arg;
	char head[SUBST_HEAD_MAX];
	size_t head_len;              /* bytes of the head kept so far */
	const char *chunk;            /* the bytes being parsed, for the callbacks */
	struct subst_span url, field[SUBST_FIELDS_MAX], value[SUBST_FIELDS_MAX];
	size_t nfields;               /* fields seen; value[nfields - 1] may grow */
	bool in_value, too_many;
	size_t skip;                  /* bytes the parser sees again after a pause */
	char body[SUBST_BODY_MAX];    /* SUBST_HOLD: the body, the head kept whole */
	size_t body_len;
	uint64_t requests, substituted;
};

void subst_init(struct subst *s, const struct secret_set *set, const char *host,
		subst_audit_fn audit, void *arg);

/* Takes n more bytes from the guest, appends what goes upstream to out.
 * Returns 0, or -EPROTO (malformed: answer 400) or -E2BIG (too large:
 * answer 431) with err saying why; the stream is over then. */
int subst_feed(struct subst *s, const char *data, size_t n, struct buf *out, char *err,
	       size_t errn);

/* The HTTP response to send the guest for an error of subst_feed, or of
 * the gateway itself: status line, headers, and why as the body. */
void subst_error_response(int status, const char *why, struct buf *out);

#endif
