/* The certificate authority of one sandbox's secrets (OpenSSL): made by
 * `sbx create`, its key handed to the gateway through a pipe and kept
 * nowhere else, its certificate constrained (RFC 5280 4.2.1.10, name
 * constraints) to the secrets' hosts and dated to the sandbox's life. The
 * gateway issues one leaf certificate per intercepted connection. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EINVAL;
}

static int random_serial(X509 *cert)
{
	BIGNUM *bn = BN_new();
	int ok = bn && BN_rand(bn, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
		 BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));

	BN_free(bn);
	return ok ? 0 : -EIO;
}

static int set_cn(X509_NAME *name, const char *cn)
{
	return X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"sbx",
					  -1, -1, 0) &&
	       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
					  -1, -1, 0) ? 0 : -EINVAL;
}

static int pem_out(BIO *b, char *out, size_t cap)
{
	char *p;
	long len = BIO_get_mem_data(b, &p);

	if (len <= 0 || (size_t)len >= cap)
		return -E2BIG;
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	return 0;
}

int secrets_make_ca(struct secret_set *set, const char *sandbox_id, uint64_t valid_s, char *err,
		    size_t n)
{
	char cn[128], nc[SECRETS_MAX * SECRET_HOSTS_MAX * (ALLOW_NAME_MAX + 16)];
	size_t at = 0;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	int r = -EIO;

	if (!key || !cert || !kb || !cb) {
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
	if (!X509_set_version(cert, 2) || random_serial(cert) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(cert), -CA_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(cert), (long)valid_s) ||
	    set_cn(X509_get_subject_name(cert), cn) < 0 ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(cert)) ||
	    !X509_set_pubkey(cert, key) ||
	    add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(cert, cert, NID_name_constraints, nc) < 0 ||
	    !X509_sign(cert, key, EVP_sha256())) {
		r = ssl_fail(err, n, "cannot make the secrets' CA certificate");
		goto out;
	}
	if (!PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, cert) || pem_out(kb, set->ca_key, sizeof(set->ca_key)) < 0 ||
	    pem_out(cb, set->ca_cert, sizeof(set->ca_cert)) < 0) {
		r = ssl_fail(err, n, "cannot write the secrets' CA");
		goto out;
	}
	r = 0;
out:
	BIO_free(kb);
	BIO_free(cb);
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

int ca_load(const struct secret_set *set, char *err, size_t n)
{
	BIO *kb = BIO_new_mem_buf(set->ca_key, -1), *cb = BIO_new_mem_buf(set->ca_cert, -1);
	int r = 0;

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
	X509 *cert = X509_new();

	snprintf(san, sizeof(san), "DNS:%s", host);
	if (!cert || !X509_set_version(cert, 2) || random_serial(cert) < 0 ||
	    !X509_set1_notBefore(cert, X509_get0_notBefore(ca_cert)) ||
	    !X509_set1_notAfter(cert, X509_get0_notAfter(ca_cert)) ||
	    set_cn(X509_get_subject_name(cert), host) < 0 ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) ||
	    !X509_set_pubkey(cert, key) ||
	    add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, ca_cert, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(cert, ca_cert, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid:always") < 0 ||
	    add_ext(cert, ca_cert, NID_subject_alt_name, san) < 0 ||
	    !X509_sign(cert, ca_key, EVP_sha256())) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}
