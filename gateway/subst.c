/* Stand-ins replaced in request heads (gateway/subst.h). The parser is
 * paused at the end of each head and of each message: the head is kept
 * whole (the callbacks record where the target and the header values are
 * in it), rewritten and sent; the body goes on as it came, the parser
 * only following it to find where the next request starts. */
#include "gateway/subst.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

#define STANDIN_PREFIX "sbxsecret_"

static struct subst *of(http_parser *p)
{
	return p->data;
}

/* Where at is in the head being gathered. */
static uint32_t offset(struct subst *s, const char *at)
{
	return (uint32_t)(s->head_len + (size_t)(at - s->chunk));
}

static int on_message_begin(http_parser *p)
{
	struct subst *s = of(p);

	s->url = (struct subst_span){ 0, 0 };
	s->nfields = 0;
	s->in_value = s->too_many = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct subst *s = of(p);

	if (s->state != SUBST_HEAD)
		return 0;
	if (!s->url.len)
		s->url.off = offset(s, at);
	s->url.len += (uint32_t)len;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct subst *s = of(p);

	if (s->state != SUBST_HEAD)     /* trailers of a chunked body */
		return 0;
	if (s->nfields == 0 || s->in_value) {
		if (s->nfields == SUBST_FIELDS_MAX) {
			s->too_many = true;
			return 0;
		}
		s->field[s->nfields] = (struct subst_span){ offset(s, at), 0 };
		s->value[s->nfields] = (struct subst_span){ 0, 0 };
		s->nfields++;
		s->in_value = false;
	}
	if (!s->too_many)
		s->field[s->nfields - 1].len += (uint32_t)len;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct subst *s = of(p);
	struct subst_span *v;

	if (s->state != SUBST_HEAD || s->too_many || s->nfields == 0)
		return 0;
	v = &s->value[s->nfields - 1];
	if (!s->in_value)
		*v = (struct subst_span){ offset(s, at), 0 };
	v->len += (uint32_t)len;
	s->in_value = true;
	return 0;
}

static int pause_here(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

void subst_init(struct subst *s, const struct secret_set *set, const char *host,
		subst_audit_fn audit, void *arg)
{
	memset(s, 0, sizeof(*s));
	http_parser_init(&s->p, HTTP_REQUEST);
	s->p.data = s;
	s->cb.on_message_begin = on_message_begin;
	s->cb.on_url = on_url;
	s->cb.on_header_field = on_header_field;
	s->cb.on_header_value = on_header_value;
	s->cb.on_headers_complete = pause_here;
	s->cb.on_message_complete = pause_here;
	s->set = set;
	s->host = host;
	s->audit = audit;
	s->arg = arg;
	s->state = SUBST_HEAD;
}

/* Copies one span of the head to out, each stand-in in it replaced by its
 * value when the secret belongs to this host. */
static int put_span(struct subst *s, struct subst_span sp, const char *where, struct buf *out)
{
	const char *p = s->head + sp.off, *end = p + sp.len;
	int r = 0;

	while (p < end && r == 0) {
		const char *hit = memmem(p, (size_t)(end - p), STANDIN_PREFIX,
					 sizeof(STANDIN_PREFIX) - 1);
		const struct secret *sec = NULL;

		if (!hit) {
			r = buf_append(out, p, (size_t)(end - p));
			break;
		}
		for (size_t i = 0; hit + SECRET_STANDIN_LEN <= end && i < s->set->n; i++)
			if (!memcmp(hit, s->set->s[i].standin, SECRET_STANDIN_LEN))
				sec = &s->set->s[i];
		if (!sec) {
			r = buf_append(out, p, (size_t)(hit - p) + 1);
			p = hit + 1;
			continue;
		}
		r = buf_append(out, p, (size_t)(hit - p));
		if (r == 0 && secret_for_host(sec, s->host)) {
			r = buf_append(out, sec->value, sec->len);
			s->substituted++;
			if (s->audit)
				s->audit(s->arg, sec, where, true);
		} else if (r == 0) {
			r = buf_append(out, hit, SECRET_STANDIN_LEN);
			if (s->audit)
				s->audit(s->arg, sec, where, false);
		}
		p = hit + SECRET_STANDIN_LEN;
	}
	return r;
}

/* The head (len bytes) rewritten into out. */
static int put_head(struct subst *s, size_t len, struct buf *out)
{
	size_t at = 0;
	int r = 0;

	for (size_t i = 0; i <= s->nfields && r == 0; i++) {
		struct subst_span sp = i == 0 ? s->url : s->value[i - 1];
		char where[96];

		if (!sp.len)
			continue;
		if (i == 0)
			snprintf(where, sizeof(where), "the request target");
		else
			snprintf(where, sizeof(where), "the %.*s header",
				 (int)MIN(s->field[i - 1].len, 64), s->head + s->field[i - 1].off);
		r = buf_append(out, s->head + at, sp.off - at);
		if (r == 0)
			r = put_span(s, sp, where, out);
		at = sp.off + sp.len;
	}
	if (r == 0)
		r = buf_append(out, s->head + at, len - at);
	return r;
}

static int fail(struct subst *s, int e, char *err, size_t errn, const char *fmt, const char *what)
{
	s->state = SUBST_ERROR;
	snprintf(err, errn, fmt, what);
	return e;
}

int subst_feed(struct subst *s, const char *d, size_t n, struct buf *out, char *err, size_t errn)
{
	while (n) {
		size_t c = 0, from;
		enum http_errno e;

		switch (s->state) {
		case SUBST_ERROR:
			return fail(s, -EPROTO, err, errn, "%s", "the request stream already failed");
		case SUBST_RAW:
			return buf_append(out, d, n) < 0 ?
			       fail(s, -E2BIG, err, errn, "%s", "out of buffer") : 0;
		case SUBST_HEAD:
			s->chunk = d;
			c = http_parser_execute(&s->p, &s->cb, d, n);
			e = HTTP_PARSER_ERRNO(&s->p);
			if (s->too_many)
				return fail(s, -E2BIG, err, errn, "more than %s headers in a request",
					    "128");
			if (e != HPE_OK && e != HPE_PAUSED)
				return fail(s, -EPROTO, err, errn, "malformed HTTP request: %s",
					    http_errno_description(e));
			/* Paused at the end of the head: c is at its last byte
			 * (the LF), which the parser sees again on resuming. */
			from = e == HPE_PAUSED ? c + 1 : n;
			if (s->head_len + from > sizeof(s->head))
				return fail(s, -E2BIG, err, errn, "a request's line and headers "
					    "are more than %s bytes", "32768");
			memcpy(s->head + s->head_len, d, from);
			s->head_len += from;
			if (e != HPE_PAUSED)
				return 0;
			if (put_head(s, s->head_len, out) < 0)
				return fail(s, -E2BIG, err, errn, "%s", "out of buffer");
			s->head_len = 0;
			http_parser_pause(&s->p, 0);
			s->state = SUBST_BODY;
			s->skip = 1;
			d += c;
			n -= c;
			break;
		case SUBST_BODY:
			c = http_parser_execute(&s->p, &s->cb, d, n);
			e = HTTP_PARSER_ERRNO(&s->p);
			if (e != HPE_OK && e != HPE_PAUSED)
				return fail(s, -EPROTO, err, errn, "malformed HTTP request body: %s",
					    http_errno_description(e));
			if (c == 0 && e == HPE_OK)  /* never loop without progress */
				return fail(s, -EPROTO, err, errn, "%s", "the parser stopped");
			from = MIN(s->skip, c);
			s->skip -= from;
			if (c > from && buf_append(out, d + from, c - from) < 0)
				return fail(s, -E2BIG, err, errn, "%s", "out of buffer");
			d += c;
			n -= c;
			if (e != HPE_PAUSED)
				break;
			http_parser_pause(&s->p, 0);
			s->requests++;
			s->state = s->p.upgrade ? SUBST_RAW : SUBST_HEAD;
			break;
		}
	}
	return 0;
}

void subst_error_response(int status, const char *why, struct buf *out)
{
	char head[256];
	const char *reason = status == 400 ? "Bad Request" : status == 431 ?
			     "Request Header Fields Too Large" : status == 502 ? "Bad Gateway" :
			     "Error";
	int blen = (int)strlen(why) + (int)sizeof("sbx egress gateway: \n") - 1;
	int hlen = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			    "Content-Length: %d\r\nConnection: close\r\n\r\n", status, reason, blen);

	(void)!buf_append(out, head, (size_t)hlen);
	(void)!buf_append(out, "sbx egress gateway: ", 20);
	(void)!buf_append(out, why, strlen(why));
	(void)!buf_append(out, "\n", 1);
}
