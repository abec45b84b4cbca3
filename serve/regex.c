/* sbx serve: the patterns of walk and expandGlob as POSIX extended regular
 * expressions for regcomp(3). The SDK sends a RegExp as {source, flags}
 * (JavaScript syntax) and a glob as text (Deno std's globToRegExp rules);
 * what both languages share is translated, the rest (lookaround,
 * backreferences, named groups, extglob's !(...)) is refused by name. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

#define PATTERN_MAX 4096 /* bytes of one source pattern */

struct out {
	char *p;
	size_t len, cap;
};

static int put(struct out *o, const char *s)
{
	size_t n = strlen(s);

	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->len + n + 1) * 2;
		char *p = realloc(o->p, cap);

		if (!p)
			return -ENOMEM;
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n + 1);
	o->len += n;
	return 0;
}

static int putc1(struct out *o, char c)
{
	char s[2] = { c, 0 };

	return put(o, s);
}

/* A literal character outside a bracket expression. */
static int put_literal(struct out *o, char c)
{
	if (strchr(".[]{}()*+?^$|\\", c)) {
		char s[3] = { '\\', c, 0 };

		return put(o, s);
	}
	return putc1(o, c);
}

static int refuse(char *msg, size_t n, const char *what, const char *src)
{
	snprintf(msg, n, "%s in /%.200s/ has no POSIX equivalent (sbx serve matches with POSIX "
		 "extended regular expressions)", what, src);
	return -EINVAL;
}

/* "{n}", "{n,}" or "{n,m}" at s: a quantifier (else a literal brace). */
static size_t interval_len(const char *s)
{
	size_t i = 1;

	if (!isdigit((unsigned char)s[i]))
		return 0;
	while (isdigit((unsigned char)s[i]))
		i++;
	if (s[i] == ',')
		for (i++; isdigit((unsigned char)s[i]); i++)
			;
	return s[i] == '}' ? i + 1 : 0;
}

static int js_escape(struct out *o, char e, bool in_class, const char *src, char *msg, size_t n)
{
	switch (e) {
	case 'd': return put(o, in_class ? "0-9" : "[0-9]");
	case 'w': return put(o, in_class ? "A-Za-z0-9_" : "[A-Za-z0-9_]");
	case 's': return put(o, in_class ? " \t\n\r\f\v" : "[ \t\n\r\f\v]");
	case 'n': return putc1(o, '\n');
	case 't': return putc1(o, '\t');
	case 'r': return putc1(o, '\r');
	case 'f': return putc1(o, '\f');
	case 'v': return putc1(o, '\v');
	}
	if (in_class) {
		if (strchr("DWSbB]^-\\", e) || isalnum((unsigned char)e))
			return refuse(msg, n, "this escape inside [...]", src);
		return putc1(o, e);
	}
	switch (e) {
	case 'D': return put(o, "[^0-9]");
	case 'W': return put(o, "[^A-Za-z0-9_]");
	case 'S': return put(o, "[^ \t\n\r\f\v]");
	case 'b': return put(o, "\\b");
	case 'B': return put(o, "\\B");
	}
	if (isalnum((unsigned char)e))
		return refuse(msg, n, "a backreference or escape of a letter", src);
	return put_literal(o, e);
}

int serve_js_regex(const char *src, const char *flags, char **result, char *msg, size_t n)
{
	struct out o = { 0 };
	bool in_class = false;
	int r = 0;

	(void)flags; /* i is REG_ICASE for the caller; g, m, s, u, y change no path match */
	*result = NULL;
	if (strlen(src) > PATTERN_MAX)
		return refuse(msg, n, "a pattern this long", "...");
	r = put(&o, "");
	for (const char *s = src; r == 0 && *s; s++) {
		if (*s == '\\') {
			if (!s[1]) {
				r = refuse(msg, n, "a trailing backslash", src);
				break;
			}
			r = js_escape(&o, *++s, in_class, src, msg, n);
		} else if (in_class) {
			if (*s == ']')
				in_class = false;
			r = putc1(&o, *s);
		} else if (*s == '[') {
			in_class = true;
			r = putc1(&o, '[');
			if (s[1] == '^')
				r = putc1(&o, *++s);
		} else if (*s == '(' && s[1] == '?') {
			if (s[2] != ':') {
				r = refuse(msg, n, "a lookaround or named group", src);
				break;
			}
			r = putc1(&o, '(');
			s += 2;
		} else if (*s == '{') {
			size_t len = interval_len(s);

			if (!len) {
				r = put(&o, "\\{");
				continue;
			}
			for (size_t i = 0; i < len && r == 0; i++)
				r = putc1(&o, s[i]);
			s += len - 1;
			if (s[1] == '?')
				s++; /* lazy: the same paths match */
		} else if (strchr("*+?", *s) && s != src) {
			r = putc1(&o, *s);
			if (s[1] == '?')
				s++;
		} else if (*s == '}') {
			r = put(&o, "\\}");
		} else {
			r = putc1(&o, *s);
		}
	}
	if (r == 0 && in_class)
		r = refuse(msg, n, "an unterminated [", src);
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(msg, n, "out of memory");
		free(o.p);
		return r;
	}
	*result = o.p;
	return 0;
}

/* One glob segment (no '/'), Deno std's rules: * ? [...] [!...] {a,b}
 * and, when extended, @(..) ?(..) *(..) +(..). */
static int glob_segment(struct out *o, const char *seg, size_t len, bool extended,
			const char *glob, char *msg, size_t n)
{
	int braces = 0, groups = 0, r = 0;
	char close[64]; /* what each open extglob group ends with */

	for (size_t i = 0; i < len && r == 0; i++) {
		char c = seg[i];

		if (c == '\\' && i + 1 < len) {
			r = put_literal(o, seg[++i]);
		} else if (extended && strchr("@?*+!", c) && i + 1 < len && seg[i + 1] == '(') {
			if (c == '!' || groups >= (int)sizeof(close)) {
				snprintf(msg, n, "the glob %.200s: !(...) has no POSIX equivalent", glob);
				return -EINVAL;
			}
			close[groups++] = c == '@' ? 0 : c;
			r = putc1(o, '(');
			i++;
		} else if (c == ')' && groups > 0) {
			char q = close[--groups];

			r = putc1(o, ')');
			if (r == 0 && q)
				r = putc1(o, q);
		} else if (c == '|' && groups > 0) {
			r = putc1(o, '|');
		} else if (c == '*') {
			r = put(o, "[^/]*");
		} else if (c == '?') {
			r = put(o, "[^/]");
		} else if (c == '[') {
			size_t j = i + 1;

			if (j < len && (seg[j] == '!' || seg[j] == '^'))
				j++;
			if (j < len && seg[j] == ']')
				j++;
			while (j < len && seg[j] != ']')
				j++;
			if (j >= len) {
				r = put(o, "\\[");
				continue;
			}
			r = putc1(o, '[');
			for (size_t k = i + 1; k < j && r == 0; k++)
				r = putc1(o, k == i + 1 && seg[k] == '!' ? '^' : seg[k]);
			if (r == 0)
				r = putc1(o, ']');
			i = j;
		} else if (c == '{') {
			braces++;
			r = putc1(o, '(');
		} else if (c == ',' && braces > 0) {
			r = putc1(o, '|');
		} else if (c == '}' && braces > 0) {
			braces--;
			r = putc1(o, ')');
		} else {
			r = put_literal(o, c);
		}
	}
	if (r == 0 && (braces || groups)) {
		snprintf(msg, n, "the glob %.200s has an unclosed { or (", glob);
		return -EINVAL;
	}
	return r;
}

int serve_glob_regex(const char *glob, bool extended, bool globstar, char **result, char *msg,
		     size_t n)
{
	struct out o = { 0 };
	const char *s = glob;
	int r;

	*result = NULL;
	if (strlen(glob) > PATTERN_MAX || glob[0] != '/') {
		snprintf(msg, n, "the glob %.200s: absolute, at most %d bytes", glob, PATTERN_MAX);
		return -EINVAL;
	}
	r = put(&o, "^");
	while (r == 0 && *s) {
		const char *end;
		size_t len;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		end = strchr(s, '/');
		len = end ? (size_t)(end - s) : strlen(s);
		if (globstar && len == 2 && !memcmp(s, "**", 2)) {
			/* zero or more whole names */
			r = put(&o, "(/[^/]+)*");
		} else {
			r = putc1(&o, '/');
			if (r == 0)
				r = glob_segment(&o, s, len, extended, glob, msg, n);
		}
		s += len;
	}
	if (r == 0 && o.len == 1)
		r = putc1(&o, '/'); /* the glob "/" */
	if (r == 0)
		r = put(&o, "/*$");
	if (r < 0) {
		if (r == -ENOMEM)
			snprintf(msg, n, "out of memory");
		free(o.p);
		return r;
	}
	*result = o.p;
	return 0;
}
