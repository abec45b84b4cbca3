/* The synthetic resolver of net/dns.h. RFC 1035 section 4.1: a 12-byte
 * header, one question (labels of 1-63 bytes, no compression in a
 * question), QTYPE and QCLASS. A answers carry the name's synthetic
 * address, AAAA and other types are answered with no records, a name no
 * allow pattern can match with NXDOMAIN, and anything malformed with
 * FORMERR: one bounded pass, no allocation. */
#include "net/dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop.h"
#include "lib/util.h"

enum { RC_OK = 0, RC_FORMERR = 1, RC_NXDOMAIN = 3, RC_NOTIMP = 4, RC_REFUSED = 5 };
enum { T_A = 1, T_AAAA = 28, T_ANY = 255, C_IN = 1 };

/* ---- the mapping ---- */

struct entry {
	char name[DNS_NAME_MAX + 1];
	uint32_t index;   /* offset in the range; 0: free */
	uint64_t used;    /* last use, a counter */
};

static struct entry table[DNS_NAMES_MAX];
static const char *allowed_names; /* space-separated; NULL: every name */
static void (*refused_hook)(const char *name);
static uint32_t next_index;
static uint64_t clock_tick;

void dns_reset(void)
{
	memset(table, 0, sizeof(table));
	next_index = 0;
	clock_tick = 0;
}

/* Offsets go round the whole range (131,070 addresses) while at most
 * DNS_NAMES_MAX names are kept: an address is handed out again only long
 * after its old name was forgotten, so a stale address leads nowhere
 * rather than to another name. */
static uint32_t new_index(void)
{
	uint32_t size = 1u << (32 - DNS_NET_BITS);

	next_index = next_index + 1 >= size - 1 ? 1 : next_index + 1;
	return next_index;
}

uint32_t dns_map_name(const char *name)
{
	struct entry *victim = &table[0];

	if (strlen(name) > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < DNS_NAMES_MAX; i++) {
		struct entry *e = &table[i];

		if (e->index && strcmp(e->name, name) == 0) {
			e->used = ++clock_tick;
			return DNS_NET + e->index;
		}
		if (!e->index || (victim->index && e->used < victim->used))
			victim = e;
	}
	str_copy(victim->name, sizeof(victim->name), name);
	victim->index = new_index();
	victim->used = ++clock_tick;
	return DNS_NET + victim->index;
}

bool dns_lookup_addr(uint32_t addr, char *name, size_t n)
{
	if (!dns_is_synthetic(addr) || addr == DNS_NET)
		return false;
	for (size_t i = 0; i < DNS_NAMES_MAX; i++)
		if (table[i].index == addr - DNS_NET) {
			table[i].used = ++clock_tick;
			return str_copy(name, n, table[i].name) == 0;
		}
	return false;
}

/* ---- the wire format ---- */

static uint16_t get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

/* Reads the question's name at q[off] into name (lower case, dotted) and
 * returns the offset after it, or -1 when it is malformed. *host is false
 * when it is well formed but no host name (odd bytes, root, too long). */
static long read_qname(const uint8_t *q, size_t qlen, size_t off, char *name, bool *host)
{
	size_t wire = 0, out = 0;

	*host = true;
	for (;;) {
		uint8_t len;

		if (off >= qlen)
			return -1;
		len = q[off++];
		wire += 1u + len;
		if (len == 0)
			break;
		if (len > 63)            /* a pointer (0xc0) or a reserved label type */
			return -1;
		if (off + len > qlen || wire > 255)
			return -1;
		if (out + (out ? 1 : 0) + len > DNS_NAME_MAX)
			*host = false;
		for (uint8_t i = 0; i < len && *host; i++)
			if (!isalnum(q[off + i]) && q[off + i] != '-' && q[off + i] != '_')
				*host = false;
		if (*host) {
			if (out)
				name[out++] = '.';
			for (uint8_t i = 0; i < len; i++)
				name[out++] = (char)tolower(q[off + i]);
		}
		off += len;
	}
	name[*host ? out : 0] = '\0';
	if (out == 0)
		*host = false;
	return (long)off;
}

static size_t header_only(const uint8_t *q, uint8_t *out, int rcode)
{
	memset(out, 0, 12);
	out[0] = q[0];
	out[1] = q[1];
	/* QR, the opcode as asked, RD as asked; RA. */
	out[2] = (uint8_t)(0x80 | (q[2] & 0x79));
	out[3] = (uint8_t)(0x80 | rcode);
	return 12;
}

size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out)
{
	char name[DNS_NAME_MAX + 2];
	uint16_t qtype, qclass;
	size_t qend, len;
	long off;
	uint32_t addr;
	int rcode = RC_OK;
	bool host;

	if (qlen < 12 || (q[2] & 0x80))   /* no id to answer, or a response */
		return 0;
	if (qlen > DNS_QUERY_MAX)
		return header_only(q, out, RC_FORMERR);
	if (((q[2] >> 3) & 0x0f) != 0)     /* only standard queries */
		return header_only(q, out, RC_NOTIMP);
	if (get_be16(q + 4) != 1)
		return header_only(q, out, RC_FORMERR);
	off = read_qname(q, qlen, 12, name, &host);
	if (off < 0)
		return header_only(q, out, RC_FORMERR);
	qend = (size_t)off;
	if (!host)
		rcode = RC_NXDOMAIN;
	if (qend + 4 > qlen || qend - 12 + 4 > DNS_REPLY_MAX - 12 - 16)
		return header_only(q, out, RC_FORMERR);
	qtype = get_be16(q + qend);
	qclass = get_be16(q + qend + 2);
	qend += 4;
	if (rcode == RC_OK && qclass != C_IN)
		rcode = RC_REFUSED;
	/* No pattern can let a connection to it through: say so now rather
	 * than hand out an address that leads to a reset. */
	if (rcode == RC_OK && !dns_name_allowed(name)) {
		rcode = RC_NXDOMAIN;
		if (refused_hook)
			refused_hook(name);
	}
	header_only(q, out, rcode);
	put_be16(out + 4, 1);
	memcpy(out + 12, q + 12, qend - 12);  /* the question, as asked (0x20 case kept) */
	len = qend;
	if (rcode != RC_OK || (qtype != T_A && qtype != T_ANY))
		return len;
	addr = dns_map_name(name);
	if (!addr) {
		out[3] = 0x80 | RC_NXDOMAIN;
		return len;
	}
	put_be16(out + 6, 1);
	out[2] |= 0x04;                        /* authoritative: the mapping is ours */
	put_be16(out + len, 0xc00c);           /* the name in the question */
	put_be16(out + len + 2, T_A);
	put_be16(out + len + 4, C_IN);
	put_be32(out + len + 6, DNS_TTL);
	put_be16(out + len + 10, 4);
	put_be32(out + len + 12, addr);
	return len + 16;
}

void dns_set_names(const char *names)
{
	allowed_names = names;
}

void dns_set_refused_hook(void (*fn)(const char *name))
{
	refused_hook = fn;
}

/* Can the allow list match name (lower case)? "api.test" only itself,
 * "*.example.com" the names under example.com, not example.com itself. */
bool dns_name_allowed(const char *name)
{
	size_t nlen = strlen(name);

	if (!allowed_names)
		return true;
	for (const char *p = allowed_names; *p;) {
		const char *end = strchrnul(p, ' ');
		size_t plen = (size_t)(end - p);

		if (plen > 2 && p[0] == '*' && p[1] == '.') {
			if (nlen > plen - 1 && memcmp(name + nlen - (plen - 1), p + 1, plen - 1) == 0)
				return true;
		} else if (plen == nlen && memcmp(name, p, plen) == 0) {
			return true;
		}
		p = *end ? end + 1 : end;
	}
	return false;
}

/* ---- the socket ---- */

static struct watch w_dns;

static void on_query(struct watch *w, uint32_t events)
{
	static uint8_t q[DNS_QUERY_MAX + 1];
	uint8_t reply[DNS_REPLY_MAX];

	/* Bounded work per wake-up: a flood cannot starve the loop. */
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(w->fd, q, sizeof(q), MSG_DONTWAIT | MSG_TRUNC,
				     (struct sockaddr *)&from, &flen);
		size_t len;

		if (n < 0)
			return;
		len = dns_answer(q, (size_t)MIN((size_t)n, sizeof(q)), reply);
		if (len)
			(void)!sendto(w->fd, reply, len, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
	}
}

int dns_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, r;

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(0x7f000035); /* 127.0.0.53 */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = loop_add(&w_dns, fd, EPOLLIN, on_query)) < 0) {
		close(fd);
		return r;
	}
	return 0;
}
