/* The certificate maker (gateway/cert.h): fields, extensions and the
 * signature, with OpenSSL's X509 API; RFC 5280 4.1.2.2 for the serial. */
#include "gateway/cert.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static int ext_add(X509 *x, X509 *issuer, const struct cert_ext *e)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, e->nid, e->value);
	if (!ext)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* At most 20 octets, positive (RFC 5280 4.1.2.2): 16 random bytes, the
 * top bit cleared. */
static int serial_set(X509 *x)
{
	unsigned char r[16];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[0] &= 0x7f;
	bn = BN_bin2bn(r, sizeof(r), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return ok ? 0 : -1;
}

static int dates_set(X509 *x, const struct cert_spec *s)
{
	if (s->dates_of)
		return X509_set1_notBefore(x, X509_get0_notBefore(s->dates_of)) &&
		       X509_set1_notAfter(x, X509_get0_notAfter(s->dates_of)) ? 0 : -1;
	return X509_gmtime_adj(X509_getm_notBefore(x), s->from_s) &&
	       X509_gmtime_adj(X509_getm_notAfter(x), s->to_s) ? 0 : -1;
}

X509 *cert_make(EVP_PKEY *key, const struct cert_spec *s)
{
	X509 *x = X509_new();
	X509_NAME *name = x ? X509_get_subject_name(x) : NULL;

	if (!x || !X509_set_version(x, 2) || serial_set(x) < 0 || dates_set(x, s) < 0 ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)s->org,
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, s->ca ? X509_get_subject_name(s->ca) : name))
		goto fail;
	for (size_t i = 0; i < s->next; i++)
		if (ext_add(x, s->ca ? s->ca : x, &s->ext[i]) < 0)
			goto fail;
	if (!X509_sign(x, s->ca_key, EVP_sha256()))
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

BIO *cert_pem(EVP_PKEY *key, X509 *cert)
{
	BIO *b = BIO_new(BIO_s_mem());

	if (b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		      : PEM_write_bio_X509(b, cert)))
		return b;
	BIO_free(b);
	return NULL;
}
