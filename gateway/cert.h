/* Certificates made with OpenSSL, the one maker for the two private CAs
 * of sbx: the sandbox's secrets CA and its leaves (gateway/ca.c) and the
 * local CA and certificates of `sbx serve`'s exposeHttp listener
 * (serve/tls.c). */
#ifndef SBX_CERT_H
#define SBX_CERT_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* One X509v3 extension in OpenSSL's configuration syntax. */
struct cert_ext {
	int nid;
	const char *value;
};

struct cert_spec {
	const char *org, *cn;         /* the subject: O=org, CN=cn */
	X509 *ca;                     /* the issuer; NULL: self-signed */
	EVP_PKEY *ca_key;             /* signs (the certificate's own key if self-signed) */
	long from_s, to_s;            /* validity, in seconds from now ... */
	const X509 *dates_of;         /* ... or that certificate's (when not NULL) */
	const struct cert_ext *ext;
	size_t next;
};

/* A certificate for key: version 3, a random positive 127-bit serial,
 * SHA-256. NULL when OpenSSL fails (its error queue says why). */
X509 *cert_make(EVP_PKEY *key, const struct cert_spec *spec);

/* key (when not NULL) or cert as PEM, in a memory BIO
 * (BIO_get_mem_data; the caller frees it). NULL when OpenSSL fails. */
BIO *cert_pem(EVP_PKEY *key, X509 *cert);

#endif
