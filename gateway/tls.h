/* TLS interception for secrets (docs/protocol/secrets.md): the gateway
 * hands a connection to a secret's host (port 443) to a child process
 * that terminates the guest's TLS with a certificate of the sandbox's CA,
 * makes its own verified TLS connection to the real server, and rewrites
 * the stand-ins of requests (gateway/subst.c) on the way. */
#ifndef SBX_TLS_H
#define SBX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/secrets.h"

#define TLS_CHILDREN_MAX 256          /* intercepted connections at once */

/* What the child needs to know of the connection, for its audit lines. */
struct tls_conn {
	uint64_t id, t0;              /* the gateway's connection number, start */
	const char *dest_text;        /* "api.test:443" */
	const char *host;             /* "api.test" */
	const char *addr;             /* the address connected to */
	int audit_fd;
};

/* In the gateway, once: the CA from the set, a leaf key, the two TLS
 * contexts; upstream trust is the host's store plus $SBX_EGRESS_CA_FILE
 * when set. Returns 0 or -errno after logging why. */
int tls_init(const struct secret_set *set);

/* Forks the child for one connection (the caller closes its copies of
 * gfd and ufd). Returns the child's pid or -errno (-EAGAIN: at the
 * TLS_CHILDREN_MAX limit). */
pid_t tls_intercept(int gfd, int ufd, const struct tls_conn *c);

/* The gateway reaped pid: one child fewer if it was one. */
void tls_reaped(pid_t pid);

/* The certificate of the sandbox's CA, for a host (gateway/ca.c). */
struct x509_st;
struct evp_pkey_st;
int ca_load(const struct secret_set *set, char *err, size_t n);
struct x509_st *ca_leaf(const char *host, struct evp_pkey_st *key);
/* Is the CA past its notAfter (when says it, as OpenSSL prints it)? */
bool ca_expired(char *when, size_t n);

#endif
