/* The guest's stub resolver for egress (docs/protocol/egress.md): every
 * name gets a synthetic IPv4 address from 198.18.0.0/15 that maps back to
 * the name, so that the transparent proxy (net/egress.c) can hand the
 * gateway a name, never an address the guest made up. Queries come from
 * workloads: the parser trusts nothing and reads within hard bounds. */
#ifndef SBX_DNS_H
#define SBX_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DNS_NAME_MAX 253            /* text form, no trailing dot */
#define DNS_NAMES_MAX 1024          /* names mapped at once (least recently used go) */
#define DNS_NET 0xc6120000u         /* 198.18.0.0 */
#define DNS_NET_BITS 15
#define DNS_TTL 60                  /* seconds */
#define DNS_QUERY_MAX 4096          /* larger datagrams are dropped */
#define DNS_REPLY_MAX 512           /* classic DNS over UDP */

/* Is addr (host byte order) in the synthetic range? */
static inline bool dns_is_synthetic(uint32_t addr)
{
	return (addr >> (32 - DNS_NET_BITS)) == (DNS_NET >> (32 - DNS_NET_BITS));
}

/* The address of name (lower case, valid), allocating one if needed;
 * 0 on failure. Host byte order. */
uint32_t dns_map_name(const char *name);
/* The name an address stands for; false when it stands for none (never
 * handed out, or forgotten since). */
bool dns_lookup_addr(uint32_t addr, char *name, size_t n);
/* Forgets every mapping (tests). */
void dns_reset(void);

/* Builds the reply to one query datagram into out (at least
 * DNS_REPLY_MAX bytes). Returns its length, or 0 when the datagram gets
 * no reply at all (too short to hold an id, or itself a response). */
size_t dns_answer(const uint8_t *q, size_t qlen, uint8_t *out);

/* The allow list's name patterns, space-separated ("api.test
 * *.example.com", config key egress_names; kept, not copied): names none
 * can match get NXDOMAIN. NULL (the default): every name resolves. */
void dns_set_names(const char *names);
bool dns_name_allowed(const char *name);
/* fn is told each name refused that way (for the host's audit log). */
void dns_set_refused_hook(void (*fn)(const char *name));

/* Serves 127.0.0.53:53/udp in the caller's event loop. */
int dns_start(void);

#endif
