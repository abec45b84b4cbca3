/* The certificate authority of one sandbox's secrets (OpenSSL): made by
 * `sbx create`, its key handed to the gateway through a pipe and kept
 * nowhere else, its certificate constrained (RFC 5280 4.2.1.10, name
 * constraints) to the secrets' hosts and dated to the sandbox's life. The
 * gateway issues one leaf certificate per intercepted connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gateway/cert.h"
#include "gateway/secrets.h"
#include "gateway/tls.h"
#include "lib/util.h"

#define CA_BACKDATE_S 300             /* clocks a few minutes apart still agree */

static EVP_PKEY *ca_key;
static X509 *ca_cert;

static int ssl_fail(char *err, size_t n, const char *what)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, n, "%s: %s", what, e);
	ERR_clear_error();
	return -EIO;
}

static int pem_out(EVP_PKEY *key, X509 *cert, char *out, size_t cap)
{
	BIO *b = cert_pem(key, cert);
	char *p;
	long len = b ? BIO_get_mem_data(b, &p) : 0;
	int r = len <= 0 ? -EIO : (size_t)len >= cap ? -E2BIG : 0;

	if (r == 0) {
		memcpy(out, p, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(b);
	return r;
}

int secrets_make_ca(struct secret_set *set, const char *sandbox_id, uint64_t valid_s, char *err,
		    size_t n)
{
	char cn[128], nc[SECRETS_MAX * SECRET_HOSTS_MAX * (ALLOW_NAME_MAX + 16)];
	const struct cert_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_name_constraints, nc },
	};
	size_t at = 0;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = NULL;
	int r = -EIO;

	if (!key) {
		r = ssl_fail(err, n, "cannot make the secrets' CA");
		goto out;
	}
	/* Name constraints: exactly the hosts; *.d.test permits d.test and
	 * every name under it (the constraint's own grain). */
	at = (size_t)snprintf(nc, sizeof(nc), "critical");
	for (size_t i = 0; i < set->n; i++)
		for (size_t k = 0; k < set->s[i].nhosts; k++)
			at += (size_t)snprintf(nc + at, sizeof(nc) - MIN(at, sizeof(nc)),
					       ",permitted;DNS:%s", set->s[i].hosts[k].name);
	snprintf(cn, sizeof(cn), "sbx secrets CA of sandbox %.60s", sandbox_id);
	cert = cert_make(key, &(struct cert_spec){ .org = "sbx", .cn = cn, .ca_key = key,
						  .from_s = -CA_BACKDATE_S, .to_s = (long)valid_s,
						  .ext = ext, .next = ARRAY_SIZE(ext) });
	if (!cert) {
		r = ssl_fail(err, n, "cannot make the secrets' CA certificate");
		goto out;
	}
	if (pem_out(key, NULL, set->ca_key, sizeof(set->ca_key)) < 0 ||
	    pem_out(NULL, cert, set->ca_cert, sizeof(set->ca_cert)) < 0) {
		r = ssl_fail(err, n, "cannot write the secrets' CA");
		goto out;
	}
	r = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

int ca_load(const struct secret_set *set, char *err, size_t n)
{
	BIO *kb = BIO_new_mem_buf(set->ca_key, -1), *cb = BIO_new_mem_buf(set->ca_cert, -1);
	int r = 0;

	EVP_PKEY_free(ca_key);
	X509_free(ca_cert);
	ca_key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	ca_cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	if (!ca_key || !ca_cert || !X509_check_private_key(ca_cert, ca_key))
		r = ssl_fail(err, n, "cannot load the secrets' CA");
	BIO_free(kb);
	BIO_free(cb);
	return r;
}

X509 *ca_leaf(const char *host, EVP_PKEY *key)
{
	char san[ALLOW_NAME_MAX + 8];
	const struct cert_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_authority_key_identifier, "keyid:always" },
		{ NID_subject_alt_name, san },
	};

	snprintf(san, sizeof(san), "DNS:%s", host);
	return cert_make(key, &(struct cert_spec){ .org = "sbx", .cn = host, .ca = ca_cert,
						  .ca_key = ca_key, .dates_of = ca_cert,
						  .ext = ext, .next = ARRAY_SIZE(ext) });
}

bool ca_expired(char *when, size_t n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long len;
	bool expired = X509_cmp_current_time(X509_get0_notAfter(ca_cert)) < 0;

	when[0] = '\0';
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(ca_cert)) &&
	    (len = BIO_get_mem_data(b, &p)) > 0)
		snprintf(when, n, "%.*s", (int)len, p);
	BIO_free(b);
	return expired;
}
