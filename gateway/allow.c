/* The allow-list matcher of gateway/allow.h. Patterns are parsed once, to a
 * canonical lower-case form, so that matching is plain comparison; every
 * refusal names the pattern and says what is wrong with it. */
#include "gateway/allow.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"

static int bad(char *err, size_t n, const char *pattern, const char *why)
{
	snprintf(err, n, "--allow-net %s: %s", pattern, why);
	return -EINVAL;
}

void allow_addr_set(struct allow_addr *out, int family, const void *bytes)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (family == AF_INET6 && memcmp(bytes, mapped, sizeof(mapped)) == 0) {
		out->family = AF_INET;
		memcpy(out->a, (const uint8_t *)bytes + 12, 4);
		return;
	}
	out->family = family;
	memcpy(out->a, bytes, family == AF_INET ? 4 : 16);
}

bool allow_addr_eq(const struct allow_addr *x, const struct allow_addr *y)
{
	return x->family == y->family && memcmp(x->a, y->a, x->family == AF_INET ? 4 : 16) == 0;
}

void allow_addr_format(const struct allow_addr *a, char *out, size_t n)
{
	char buf[INET6_ADDRSTRLEN];

	if (!inet_ntop(a->family, a->a, buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "?");
	snprintf(out, n, "%s", buf);
}

/* A port: 1 to 65535, digits only. */
static int parse_port(const char *s, uint16_t *port)
{
	uint64_t v;

	if (!*s || strlen(s) > 5 || !isdigit((unsigned char)*s) || str_to_u64(s, 65535, &v) < 0 ||
	    v == 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* An IPv6 literal (no brackets, no zone). */
static bool parse_v6(const char *s, struct allow_addr *a)
{
	uint8_t b[16];

	if (strchr(s, '%') || inet_pton(AF_INET6, s, b) != 1)
		return false;
	allow_addr_set(a, AF_INET6, b);
	return true;
}

/* A dotted-quad IPv4 literal (inet_pton: exactly four decimal parts). */
static bool parse_v4(const char *s, struct allow_addr *a)
{
	uint8_t b[4];

	if (inet_pton(AF_INET, s, b) != 1)
		return false;
	allow_addr_set(a, AF_INET, b);
	return true;
}

/* Checks and lower-cases a DNS name in place (one trailing dot already
 * removed). Letters, digits, '-' and '_'; labels of 1-63, not starting or
 * ending with '-'; at most 253 in all; a last label that is all digits is
 * an address gone wrong ("1.2.3", "300.1.1.1"), not a name. */
static const char *check_name(char *s)
{
	size_t len = strlen(s), label = 0;
	bool digits = true;

	if (len == 0)
		return "the host name is empty";
	if (len > ALLOW_NAME_MAX)
		return "the host name is longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0)
				return "the host name has an empty label";
			if (label > 63)
				return "a label of the host name is longer than 63 characters";
			if (s[i - 1] == '-')
				return "a label of the host name ends with '-'";
			if (c == '\0' && digits)
				return "not an IPv4 address (a.b.c.d, each 0-255) nor a host name";
			label = 0;
			digits = true;
			continue;
		}
		if (c == '*')
			return "'*' is allowed only as the whole first label (*.example.com)";
		if (!isalnum((unsigned char)c) && c != '-' && c != '_')
			return "a host name has only letters, digits, '-', '_' and '.'";
		if (c == '-' && label == 0)
			return "a label of the host name starts with '-'";
		if (!isdigit((unsigned char)c))
			digits = false;
		s[i] = (char)tolower((unsigned char)c);
		label++;
	}
	return NULL;
}

/* Host part of a pattern or destination: an address or a name (one
 * trailing dot dropped). */
static const char *parse_host(char *host, bool wildcard_ok, enum allow_kind *kind, char *name,
			      struct allow_addr *addr)
{
	size_t len = strlen(host);
	const char *why;

	if (parse_v4(host, addr)) {
		*kind = ALLOW_IP;
		return NULL;
	}
	if (len > 0 && host[len - 1] == '.')
		host[--len] = '\0';
	if (len == 0)
		return "the host name is empty";
	*kind = ALLOW_HOST;
	if (host[0] == '*') {
		if (!wildcard_ok)
			return "a destination cannot be a wildcard";
		if (host[1] != '.')
			return "'*' is allowed only as the whole first label (*.example.com)";
		host += 2;
		*kind = ALLOW_SUFFIX;
	}
	if ((why = check_name(host)))
		return why;
	str_copy(name, ALLOW_NAME_MAX + 1, host);
	return NULL;
}

static void format_rule(struct allow_rule *r)
{
	char host[ALLOW_NAME_MAX + 8], port[8] = "";

	if (r->port)
		snprintf(port, sizeof(port), ":%u", r->port);
	if (r->kind == ALLOW_IP) {
		allow_addr_format(&r->addr, host, sizeof(host));
		if (r->addr.family == AF_INET6) {
			snprintf(r->text, sizeof(r->text), "[%s]%s", host, port);
			return;
		}
	} else {
		snprintf(host, sizeof(host), "%s%s", r->kind == ALLOW_SUFFIX ? "*." : "", r->name);
	}
	snprintf(r->text, sizeof(r->text), "%s%s", host, port);
}

/* A URL where a pattern was expected: say what to write instead. */
static int url_given(const char *url, char *err, size_t n)
{
	const char *host = strstr(url, "://") + 3;
	size_t len = strcspn(host, "/?#");
	bool https = !strncmp(url, "https://", 8), http = !strncmp(url, "http://", 7);
	const char *at = memchr(host, '@', len);

	if (at) { /* user@host: not part of what is allowed */
		len -= (size_t)(at + 1 - host);
		host = at + 1;
	}
	if (len == 0)
		return bad(err, n, url, "a URL, not a pattern: write the host name (HOST or HOST:PORT)");
	snprintf(err, n, "--allow-net %s: a URL, not a pattern: write the host%s, as in "
		 "--allow-net %.*s%s", url, http || https ? " and the port" : "", (int)len, host,
		 memchr(host, ':', len) || (!http && !https) ? "" : https ? ":443" : ":80");
	return -EINVAL;
}

int allow_parse(const char *pattern, struct allow_rule *r, char *err, size_t n)
{
	char buf[ALLOW_PATTERN_MAX + 1], *host = buf, *colon;
	const char *why;

	memset(r, 0, sizeof(*r));
	if (!*pattern)
		return bad(err, n, "''", "an empty pattern");
	if (strlen(pattern) > ALLOW_PATTERN_MAX)
		return bad(err, n, "(too long)", "a pattern is at most 300 characters");
	strcpy(buf, pattern);
	for (const char *p = pattern; *p; p++)
		if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return bad(err, n, pattern, "white space or control characters in the pattern");
	if (strstr(pattern, "://"))
		return url_given(pattern, err, n);
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (!close)
			return bad(err, n, pattern, "'[' without ']' (write IPv6 as [2001:db8::1]:443)");
		*close = '\0';
		if (!parse_v6(buf + 1, &r->addr))
			return bad(err, n, pattern, "not an IPv6 address between the brackets");
		r->kind = ALLOW_IP;
		if (close[1] == ':') {
			if (parse_port(close + 2, &r->port) < 0)
				return bad(err, n, pattern, "the port is not a number from 1 to 65535");
		} else if (close[1]) {
			return bad(err, n, pattern, "only ':PORT' may follow ']'");
		}
		format_rule(r);
		return 0;
	}
	colon = strchr(buf, ':');
	if (colon && strchr(colon + 1, ':')) {
		/* Two colons or more: an IPv6 address without brackets,
		 * which cannot carry a port. */
		if (!parse_v6(buf, &r->addr))
			return bad(err, n, pattern, "not an IPv6 address (a port needs brackets: "
				   "[2001:db8::1]:443)");
		r->kind = ALLOW_IP;
		format_rule(r);
		return 0;
	}
	if (colon) {
		*colon = '\0';
		if (parse_port(colon + 1, &r->port) < 0)
			return bad(err, n, pattern, "the port is not a number from 1 to 65535");
	}
	if ((why = parse_host(host, true, &r->kind, r->name, &r->addr)))
		return bad(err, n, pattern, why);
	format_rule(r);
	return 0;
}

int allow_parse_dest(const char *host, uint32_t port, struct allow_dest *d, char *err, size_t n)
{
	char buf[ALLOW_NAME_MAX + 8];
	enum allow_kind kind;
	const char *why;
	size_t len = strlen(host);

	memset(d, 0, sizeof(*d));
	if (port == 0 || port > 65535) {
		snprintf(err, n, "port %u is out of range (1-65535)", port);
		return -EINVAL;
	}
	d->port = (uint16_t)port;
	if (len == 0 || len >= sizeof(buf)) {
		snprintf(err, n, "the destination host is empty or too long");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)host[i])) {
			snprintf(err, n, "the destination host has white space or control characters");
			return -EINVAL;
		}
	if (host[0] == '[' && host[len - 1] == ']') {
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
	} else {
		strcpy(buf, host);
	}
	if (strchr(buf, ':')) {
		if (!parse_v6(buf, &d->addr)) {
			snprintf(err, n, "'%s' is not an IPv6 address", host);
			return -EINVAL;
		}
		d->is_addr = true;
		return 0;
	}
	if ((why = parse_host(buf, false, &kind, d->name, &d->addr))) {
		snprintf(err, n, "'%s': %s", host, why);
		return -EINVAL;
	}
	d->is_addr = kind == ALLOW_IP;
	return 0;
}

static bool port_ok(const struct allow_rule *r, uint16_t port)
{
	return r->port == 0 || r->port == port;
}

static bool name_matches(const struct allow_rule *r, const char *name)
{
	size_t nl = strlen(name), dl = strlen(r->name);

	if (r->kind == ALLOW_HOST)
		return strcmp(r->name, name) == 0;
	/* *.example.com: a.example.com, a.b.example.com; not example.com. */
	return nl > dl + 1 && name[nl - dl - 1] == '.' && strcmp(name + nl - dl, r->name) == 0;
}

const struct allow_rule *allow_match_addr(const struct allow_rule *rules, size_t n,
					  const struct allow_addr *a, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (rules[i].kind == ALLOW_IP && port_ok(&rules[i], port) &&
		    allow_addr_eq(&rules[i].addr, a))
			return &rules[i];
	return NULL;
}

const struct allow_rule *allow_match(const struct allow_rule *rules, size_t n,
				     const struct allow_dest *d)
{
	if (d->is_addr)
		return allow_match_addr(rules, n, &d->addr, d->port);
	for (size_t i = 0; i < n; i++)
		if (rules[i].kind != ALLOW_IP && port_ok(&rules[i], d->port) &&
		    name_matches(&rules[i], d->name))
			return &rules[i];
	return NULL;
}

/* Ranges no name may lead to: RFC 6890 special-purpose blocks that are
 * not globally reachable, plus multicast and the reserved space. The
 * documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24,
 * 2001:db8::/32) are not here: they stand for the internet in tests. */
static const struct special {
	int family;
	uint8_t prefix[16];
	unsigned bits;
	const char *why;
} specials[] = {
	{ AF_INET, { 0 }, 8, "'this network' (0.0.0.0/8)" },
	{ AF_INET, { 10 }, 8, "a private address (10.0.0.0/8)" },
	{ AF_INET, { 100, 64 }, 10, "a carrier-grade NAT address (100.64.0.0/10)" },
	{ AF_INET, { 127 }, 8, "a loopback address (127.0.0.0/8)" },
	{ AF_INET, { 169, 254 }, 16, "a link-local address (169.254.0.0/16)" },
	{ AF_INET, { 172, 16 }, 12, "a private address (172.16.0.0/12)" },
	{ AF_INET, { 192, 0, 0 }, 24, "an IETF protocol address (192.0.0.0/24)" },
	{ AF_INET, { 192, 168 }, 16, "a private address (192.168.0.0/16)" },
	{ AF_INET, { 198, 18 }, 15, "a benchmarking address (198.18.0.0/15)" },
	{ AF_INET, { 224 }, 4, "a multicast address (224.0.0.0/4)" },
	{ AF_INET, { 240 }, 4, "a reserved address (240.0.0.0/4)" },
	{ AF_INET6, { 0 }, 128, "the unspecified address (::)" },
	{ AF_INET6, { [15] = 1 }, 128, "the loopback address (::1)" },
	{ AF_INET6, { 0, 0x64, 0xff, 0x9b, 0, 1 }, 48, "a local NAT64 address (64:ff9b:1::/48)" },
	{ AF_INET6, { 1 }, 64, "a discard-only address (100::/64)" },
	{ AF_INET6, { 0x20, 0x01, 0 }, 23, "an IETF protocol address (2001::/23)" },
	{ AF_INET6, { 0xfc }, 7, "a unique local address (fc00::/7)" },
	{ AF_INET6, { 0xfe, 0x80 }, 10, "a link-local address (fe80::/10)" },
	{ AF_INET6, { 0xfe, 0xc0 }, 10, "a site-local address (fec0::/10)" },
	{ AF_INET6, { 0xff }, 8, "a multicast address (ff00::/8)" },
};

static bool in_prefix(const uint8_t *a, const uint8_t *prefix, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, prefix, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ prefix[full]) & (0xff << (8 - rest))) == 0;
}

bool allow_addr_special(const struct allow_addr *a, const char **why)
{
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };
	static const uint8_t compat[12] = { 0 };

	/* Addresses that carry an IPv4 address inside (NAT64's well-known
	 * prefix, the deprecated IPv4-compatible form) are judged by it. */
	if (a->family == AF_INET6 && (memcmp(a->a, nat64, 12) == 0 ||
				      (memcmp(a->a, compat, 12) == 0 && (a->a[12] | a->a[13]) != 0))) {
		struct allow_addr v4;

		allow_addr_set(&v4, AF_INET, a->a + 12);
		return allow_addr_special(&v4, why);
	}
	for (size_t i = 0; i < ARRAY_SIZE(specials); i++)
		if (specials[i].family == a->family && in_prefix(a->a, specials[i].prefix,
								 specials[i].bits)) {
			*why = specials[i].why;
			return true;
		}
	return false;
}
