/* Secrets of a sandbox (`sbx create --secret NAME=HOSTS:VALUE`): the guest
 * sees NAME set to an opaque stand-in; the gateway, which alone holds the
 * values, terminates TLS to the secret's hosts and puts the value on the
 * wire in place of the stand-in (docs/protocol/secrets.md). This header is
 * the host side's: parsing and checking at create, the hand-over from
 * `sbx create` to `sbx gateway` over a pipe, matching hosts, and the
 * per-sandbox certificate authority (gateway/ca.c). */
#ifndef SBX_SECRETS_H
#define SBX_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gateway/allow.h"

#define SECRETS_MAX 32                /* secrets per sandbox */
#define SECRET_NAME_MAX 128           /* an environment variable name */
#define SECRET_HOSTS_MAX 8            /* host patterns per secret */
#define SECRET_VALUE_MAX 4096         /* bytes of one value */
#define SECRET_STANDIN_LEN 50         /* "sbxsecret_" + 40 random hex digits */
#define SECRETS_PORT 443              /* the port intercepted */
#define SECRETS_CA_MAX 4096           /* the CA certificate, PEM */
#define SECRETS_CA_VALID_S (7 * 86400) /* CA validity without a fixed lifetime */
/* The CA's margin past a fixed lifetime: the CA is made before the guest boots, whose
 * lifetime counts from PID 1's start; this covers the boot and clock
 * skew (as the CA's notBefore does), not `sbx extend`, which does not
 * renew the CA (docs/protocol/secrets.md). */
#define SECRETS_CA_MARGIN_S 300

struct secret {
	char name[SECRET_NAME_MAX + 1];
	struct allow_rule hosts[SECRET_HOSTS_MAX];
	size_t nhosts;
	char standin[SECRET_STANDIN_LEN + 1];
	char value[SECRET_VALUE_MAX + 1];
	size_t len;
};

struct secret_set {
	struct secret s[SECRETS_MAX];
	size_t n;
	char ca_cert[SECRETS_CA_MAX];     /* PEM */
	char ca_key[SECRETS_CA_MAX];      /* PEM: only ever in the gateway and create */
};

/* "NAME=HOSTS:VALUE", HOSTS a comma-separated list of host names or
 * *.DOMAIN (no ports, no addresses), VALUE the value itself (the caller
 * has already read @FILE or -). Adds it to set with a fresh stand-in.
 * Returns 0 or -errno with err naming what is wrong (never the value). */
int secrets_add(struct secret_set *set, const char *spec, char *err, size_t n);

/* Makes the sandbox's CA (gateway/ca.c): a P-256 key and a certificate
 * named for the sandbox, constrained to the secrets' hosts, valid from
 * now for valid_s seconds. */
int secrets_make_ca(struct secret_set *set, const char *sandbox_id, uint64_t valid_s, char *err,
		    size_t n);

/* The hand-over to the gateway: the whole set written into a new pipe
 * (it fits in the pipe's buffer, so nothing blocks); returns its read
 * end, or -errno. secrets_read loads it back in the gateway. */
int secrets_pipe(const struct secret_set *set, char *err, size_t n);
int secrets_read(int fd, struct secret_set *set, char *err, size_t n);

/* Forgets the values and the key (memory cleared). */
void secrets_wipe(struct secret_set *set);

/* Does one of the secrets belong to host (a normalised name)? */
bool secrets_for_host(const struct secret_set *set, const char *host);
bool secret_for_host(const struct secret *s, const char *host);

/* The allow list with each secret's hosts added (HOST:443) where no
 * pattern names HOST or HOST:443 already. */
struct secrets_allow {
	const char *list[ALLOW_RULES_MAX + 1];
	char text[SECRETS_MAX * SECRET_HOSTS_MAX][ALLOW_PATTERN_MAX + 16];
};
int secrets_allow(const struct secret_set *set, const char *const *allow,
		  struct secrets_allow *out, char *err, size_t n);

/* The guest's configuration lines (docs/CONFIG.md): env.NAME = stand-in
 * for each secret, egress_ca, and the variables that point TLS clients at
 * the trust store the agent puts the CA into. */
#define SECRETS_GUEST_CA "/run/sbx/egress-ca.pem"
#define SECRETS_GUEST_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
void secrets_config(const struct secret_set *set, FILE *f);

/* The gateway's set (cli/cli_gateway.c loads it; NULL: no secrets). */
extern struct secret_set *secrets_gateway;

#endif
