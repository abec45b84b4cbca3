/* Stand-ins replaced in requests (gateway/subst.h). The parser is paused
 * at the end of each head and of each message: the head is kept whole
 * (the callbacks record where the target and the header values are in
 * it), rewritten and sent; the body goes on as it came, the parser only
 * following it to find where the next request starts, except a small
 * URL-encoded or JSON body, which is held with its head until it is
 * whole, then rewritten and sent after the head with a new Content-Length.
 * A value put into the request target or a URL-encoded body is
 * percent-encoded, into a JSON body escaped as in a JSON string, so that
 * the server decodes exactly the value. */
#include "gateway/subst.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* SUBST_HOLD: the body gathered (body_held checked that it fits). */
static int on_body(http_parser *p, const char *at, size_t len)
{
	struct subst *s = of(p);

	if (s->state != SUBST_HOLD)
		return 0;
	if (len > sizeof(s->body) - s->body_len)
		return -1;
	memcpy(s->body + s->body_len, at, len);
	s->body_len += len;
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
	s->cb.on_body = on_body;
	s->cb.on_headers_complete = pause_here;
	s->cb.on_message_complete = pause_here;
	s->set = set;
	s->host = host;
	s->audit = audit;
	s->arg = arg;
	s->state = SUBST_HEAD;
}

/* How byte c of a value is written where enc says: as it is (1), escaped
 * with a backslash (2) or percent-encoded (3). */
static int value_byte(unsigned char c, int enc)
{
	if (enc == SUBST_ENC_URL)             /* RFC 3986 2.1: all but unreserved */
		return (c < 0x80 && isalnum(c)) || strchr("-._~", c) ? 1 : 3;
	if (enc == SUBST_ENC_JSON)            /* RFC 8259 7 (no control bytes in values) */
		return c == '"' || c == '\\' ? 2 : 1;
	return 1;
}

/* Appends the value as it must appear where it goes (out NULL: adds its
 * size to *size). */
static int put_value(const struct secret *sec, int enc, struct buf *out, size_t *size)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (size_t i = 0; i < sec->len && r == 0; i++) {
		unsigned char c = (unsigned char)sec->value[i];
		int k = value_byte(c, enc);
		char e[3] = { k == 3 ? '%' : '\\', hex[c >> 4], hex[c & 15] };

		if (!out)
			*size += (size_t)k;
		else if (k == 1)
			r = buf_append(out, &c, 1);
		else if (k == 2)
			r = buf_append(out, (char[2]){ '\\', (char)c }, 2);
		else
			r = buf_append(out, e, 3);
	}
	return r;
}

/* Copies p..p+len to out, each stand-in in it replaced by its value when
 * the secret belongs to this host. With out NULL, only counts the bytes
 * it would copy into *size (and audits nothing). */
static int put_span(struct subst *s, const char *p, size_t len, int enc, const char *where,
		    struct buf *out, size_t *size)
{
	const char *end = p + len;
	int r = 0;

	while (p < end && r == 0) {
		const char *hit = memmem(p, (size_t)(end - p), STANDIN_PREFIX,
					 sizeof(STANDIN_PREFIX) - 1);
		const struct secret *sec = NULL;

		if (!hit)
			hit = end;
		for (size_t i = 0; hit + SECRET_STANDIN_LEN <= end && i < s->set->n; i++)
			if (!memcmp(hit, s->set->s[i].standin, SECRET_STANDIN_LEN))
				sec = &s->set->s[i];
		if (!sec && hit < end)
			hit++;                /* a prefix, not a stand-in: as it is */
		if (out)
			r = buf_append(out, p, (size_t)(hit - p));
		else
			*size += (size_t)(hit - p);
		p = hit;
		if (!sec || r < 0)
			continue;
		p += SECRET_STANDIN_LEN;
		if (!secret_for_host(sec, s->host)) {
			if (out)
				r = buf_append(out, hit, SECRET_STANDIN_LEN);
			else
				*size += SECRET_STANDIN_LEN;
			if (out && s->audit)
				s->audit(s->arg, sec, where, false);
			continue;
		}
		r = put_value(sec, enc, out, size);
		if (out) {
			s->substituted++;
			if (s->audit)
				s->audit(s->arg, sec, where, true);
		}
	}
	return r;
}

/* Is header i named name (case-insensitive)? */
static bool field_is(const struct subst *s, size_t i, const char *name)
{
	return s->field[i].len == strlen(name) &&
	       !strncasecmp(s->head + s->field[i].off, name, s->field[i].len);
}

/* The value of header name (its first), without spaces at either end;
 * NULL when absent. */
static const char *field_value(const struct subst *s, const char *name, size_t *len)
{
	for (size_t i = 0; i < s->nfields; i++) {
		const char *v = s->head + s->value[i].off;
		size_t n = s->value[i].len;

		if (!field_is(s, i, name))
			continue;
		while (n && (*v == ' ' || *v == '\t'))
			v++, n--;
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		*len = n;
		return v;
	}
	return NULL;
}

/* The kind of body the Content-Type announces: URL-encoded, JSON
 * (application/json or a +json type), or anything else (RAW). */
static int body_kind(const struct subst *s)
{
	size_t n, k = 0;
	const char *v = field_value(s, "Content-Type", &n);

	if (!v)
		return SUBST_ENC_RAW;
	while (k < n && v[k] != ';' && v[k] != ' ' && v[k] != '\t')
		k++;
	if (k == 33 && !strncasecmp(v, "application/x-www-form-urlencoded", k))
		return SUBST_ENC_URL;
	if ((k == 16 && !strncasecmp(v, "application/json", k)) ||
	    (k > 17 && !strncasecmp(v, "application/", 12) && !strncasecmp(v + k - 5, "+json", 5)))
		return SUBST_ENC_JSON;
	return SUBST_ENC_RAW;
}

static const char *kind_name(int enc)
{
	return enc == SUBST_ENC_URL ? "URL-encoded" : "JSON";
}

/* At the end of a head: is its body to be held and rewritten? A body
 * that could carry stand-ins but is not rewritten is said so (audit). */
static bool body_held(struct subst *s)
{
	char why[160];
	size_t n;
	const char *v;

	s->body_enc = body_kind(s);
	s->body_len = 0;
	if (s->body_enc == SUBST_ENC_RAW)
		return false;
	if (s->p.flags & F_CHUNKED)
		snprintf(why, sizeof(why), "a chunked %s body (passed on unchanged)",
			 kind_name(s->body_enc));
	else if (!(s->p.flags & F_CONTENTLENGTH) || s->p.content_length == 0)
		return false;
	else if (s->p.content_length > SUBST_BODY_MAX)
		snprintf(why, sizeof(why), "a %s body of %llu bytes, over %d (passed on unchanged)",
			 kind_name(s->body_enc), (unsigned long long)s->p.content_length,
			 SUBST_BODY_MAX);
	else if ((v = field_value(s, "Content-Encoding", &n)) &&
		 !(n == 8 && !strncasecmp(v, "identity", 8)))
		snprintf(why, sizeof(why), "a %s body with Content-Encoding %.*s (passed on "
			 "unchanged)", kind_name(s->body_enc), (int)MIN(n, 40), v);
	else if (field_value(s, "Expect", &n))
		snprintf(why, sizeof(why), "a %s body sent after Expect: 100-continue (passed on "
			 "unchanged)", kind_name(s->body_enc));
	else
		return true;
	if (s->audit)
		s->audit(s->arg, NULL, why, false);
	return false;
}

/* The head (len bytes) rewritten into out; with cl >= 0, Content-Length
 * says cl (the body was rewritten). */
static int put_head(struct subst *s, size_t len, long long cl, struct buf *out)
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
		if (r == 0 && i > 0 && cl >= 0 && field_is(s, i - 1, "Content-Length")) {
			char num[24];

			r = buf_append(out, num, (size_t)snprintf(num, sizeof(num), "%lld", cl));
		} else if (r == 0) {
			r = put_span(s, s->head + sp.off, sp.len,
				     i == 0 ? SUBST_ENC_URL : SUBST_ENC_RAW, where, out, NULL);
		}
		at = sp.off + sp.len;
	}
	if (r == 0)
		r = buf_append(out, s->head + at, len - at);
	return r;
}

/* A held message whole: its head with the new Content-Length, then its
 * body rewritten. */
static int put_held(struct subst *s, struct buf *out)
{
	char where[40];
	size_t size = 0;
	int r;

	snprintf(where, sizeof(where), "the %s body", kind_name(s->body_enc));
	put_span(s, s->body, s->body_len, s->body_enc, where, NULL, &size);
	r = put_head(s, s->head_len, (long long)size, out);
	if (r == 0)
		r = put_span(s, s->body, s->body_len, s->body_enc, where, out, NULL);
	s->head_len = s->body_len = 0;
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
			http_parser_pause(&s->p, 0);
			s->skip = 1;
			s->state = SUBST_BODY;
			if (body_held(s)) {   /* the head waits for its body */
				s->state = SUBST_HOLD;
				d += c;
				n -= c;
				break;
			}
			if (put_head(s, s->head_len, -1, out) < 0)
				return fail(s, -E2BIG, err, errn, "%s", "out of buffer");
			s->head_len = 0;
			d += c;
			n -= c;
			break;
		case SUBST_BODY:
		case SUBST_HOLD:
			c = http_parser_execute(&s->p, &s->cb, d, n);
			e = HTTP_PARSER_ERRNO(&s->p);
			if (e != HPE_OK && e != HPE_PAUSED)
				return fail(s, -EPROTO, err, errn, "malformed HTTP request body: %s",
					    http_errno_description(e));
			if (c == 0 && e == HPE_OK)  /* never loop without progress */
				return fail(s, -EPROTO, err, errn, "%s", "the parser stopped");
			from = MIN(s->skip, c);
			s->skip -= from;
			if (s->state == SUBST_BODY && c > from &&
			    buf_append(out, d + from, c - from) < 0)
				return fail(s, -E2BIG, err, errn, "%s", "out of buffer");
			d += c;
			n -= c;
			if (e != HPE_PAUSED)
				break;
			http_parser_pause(&s->p, 0);
			if (s->state == SUBST_HOLD && put_held(s, out) < 0)
				return fail(s, -E2BIG, err, errn, "%s", "a rewritten body is too large");
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
