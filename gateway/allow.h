/* The egress allow list of a sandbox (`sbx create --allow-net PATTERN`):
 * parsing patterns and destinations, matching one against the other, and
 * the address ranges a name may never lead to (docs/protocol/egress.md). */
#ifndef SBX_ALLOW_H
#define SBX_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALLOW_NAME_MAX 253      /* a DNS name without its trailing dot */
#define ALLOW_PATTERN_MAX 300   /* a pattern as given */
#define ALLOW_RULES_MAX 256     /* patterns per sandbox */

enum allow_kind {
	ALLOW_HOST,   /* "api.example.com": that name only */
	ALLOW_SUFFIX, /* "*.example.com": names under it, not the name itself */
	ALLOW_IP,     /* "1.2.3.4", "[2001:db8::1]": that address only */
};

/* An address: IPv4 is kept as IPv4 even when written as ::ffff:a.b.c.d. */
struct allow_addr {
	int family;      /* AF_INET or AF_INET6 */
	uint8_t a[16];   /* 4 or 16 bytes used */
};

struct allow_rule {
	enum allow_kind kind;
	char name[ALLOW_NAME_MAX + 1]; /* lower case, no trailing dot; SUFFIX: the domain */
	struct allow_addr addr;        /* ALLOW_IP */
	uint16_t port;                 /* 0: any port */
	char text[ALLOW_PATTERN_MAX + 8]; /* canonical form, for messages and logs */
};

/* A destination a guest asks for: a name or an address, and a port. */
struct allow_dest {
	bool is_addr;
	char name[ALLOW_NAME_MAX + 1]; /* lower case, no trailing dot */
	struct allow_addr addr;
	uint16_t port;
};

/* Parses one pattern. Returns 0, or -EINVAL with a reason in err that
 * names the pattern. */
int allow_parse(const char *pattern, struct allow_rule *r, char *err, size_t n);

/* Parses a destination host (a name, an IPv4 literal, or an IPv6 literal
 * with or without brackets) and a port (1-65535). */
int allow_parse_dest(const char *host, uint32_t port, struct allow_dest *d, char *err, size_t n);

/* The first rule that allows d, or NULL. Name rules match names only and
 * address rules addresses only: a name is never allowed through its
 * address, nor an address through a name. */
const struct allow_rule *allow_match(const struct allow_rule *rules, size_t n,
				     const struct allow_dest *d);
/* The first address rule naming exactly this address (and port). */
const struct allow_rule *allow_match_addr(const struct allow_rule *rules, size_t n,
					  const struct allow_addr *a, uint16_t port);

/* Is a in a range a name must never lead to (loopback, private,
 * link-local, CGNAT, multicast, reserved, ...)? *why names the range. */
bool allow_addr_special(const struct allow_addr *a, const char **why);

/* Converts a socket address's bytes (4 or 16, with family) to an
 * allow_addr, folding IPv4-mapped IPv6 to IPv4. */
void allow_addr_set(struct allow_addr *out, int family, const void *bytes);
bool allow_addr_eq(const struct allow_addr *x, const struct allow_addr *y);
/* "1.2.3.4" or "2001:db8::1" (no brackets). */
void allow_addr_format(const struct allow_addr *a, char *out, size_t n);

#endif
