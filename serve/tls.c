/* sbx serve: the certificate of the exposeHttp listener when none is given
 * (--tls-cert/--tls-key): a private CA made once under the data directory
 * and, signed by it, a certificate for BASE and *.BASE, made once per BASE.
 * Clients trust the CA file (its path is printed at start). OpenSSL's C
 * API, the library libwebsockets is built against. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "launcher/image.h"
#include "lib/atomic.h"
#include "lib/util.h"
#include "serve/serve.h"

#define CA_DAYS (10 * 365)
#define LEAF_DAYS (10 * 365)

static int ssl_fail(char err[256], const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(err, 256, "%s: %s", what, e ? ERR_reason_error_string(e) : "OpenSSL failed");
	ERR_clear_error();
	return -EIO;
}

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static int mkdirs(const char *path, char err[256])
{
	char p[PATH_MAX];

	str_copy(p, sizeof(p), path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			goto fail;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, 256, "cannot create %s: %s", p, strerror(errno));
	return -errno;
}

/* Writes a PEM object (key or certificate) to dir/name through a rename. */
static int pem_save(const char *dir, const char *name, EVP_PKEY *key, X509 *cert, char err[256])
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int dfd, r;

	if (!b)
		return ssl_fail(err, "BIO_new");
	if (key ? !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
		: !PEM_write_bio_X509(b, cert)) {
		BIO_free(b);
		return ssl_fail(err, "PEM_write");
	}
	len = BIO_get_mem_data(b, &data);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = dfd < 0 ? -errno : atomic_write(dfd, name, data, (size_t)len, key ? 0600 : 0644);
	if (dfd >= 0)
		close(dfd);
	BIO_free(b);
	if (r < 0)
		snprintf(err, 256, "cannot write %s/%s: %s", dir, name, strerror(-r));
	return r;
}

static EVP_PKEY *pem_key(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (!f)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *pem_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static int ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* A certificate for key, named cn, signed by ca_key (issuer: ca, or
 * itself when ca is NULL), with the extensions exts (nid, value pairs). */
static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key, int days,
		       const int *nids, const char *const *values, size_t n)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;

	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400) ||
	    !X509_set_pubkey(x, key))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"sbx serve",
					-1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					-1, 0) ||
	    !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (ext_add(x, ca ? ca : x, nids[i], values[i]) < 0)
			goto fail;
	if (!X509_sign(x, ca_key, EVP_sha256()))
		goto fail;
	BN_free(bn);
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/* The CA of dir (ca.pem, ca.key), made when missing. */
static int ca_load(const char *dir, X509 **ca, EVP_PKEY **key, char err[256])
{
	static const int nids[] = { NID_basic_constraints, NID_key_usage,
				    NID_subject_key_identifier };
	static const char *const values[] = { "critical,CA:TRUE", "critical,keyCertSign,cRLSign",
					      "hash" };
	char cpath[PATH_MAX + 16], kpath[PATH_MAX + 16];
	int r;

	snprintf(cpath, sizeof(cpath), "%s/ca.pem", dir);
	snprintf(kpath, sizeof(kpath), "%s/ca.key", dir);
	if (exists(cpath) && exists(kpath)) {
		*ca = pem_cert(cpath);
		*key = pem_key(kpath);
		if (*ca && *key)
			return 0;
		X509_free(*ca);
		EVP_PKEY_free(*key);
		snprintf(err, 256, "cannot read the CA %s and its key %s (remove both to make a "
			 "new CA)", cpath, kpath);
		return -EINVAL;
	}
	*key = EVP_EC_gen("P-256");
	if (!*key)
		return ssl_fail(err, "cannot make the CA's key");
	*ca = cert_make(*key, "sbx serve local CA", NULL, *key, CA_DAYS, nids, values, 3);
	if (!*ca) {
		EVP_PKEY_free(*key);
		return ssl_fail(err, "cannot make the CA's certificate");
	}
	if ((r = pem_save(dir, "ca.key", *key, NULL, err)) < 0 ||
	    (r = pem_save(dir, "ca.pem", NULL, *ca, err)) < 0) {
		X509_free(*ca);
		EVP_PKEY_free(*key);
		return r;
	}
	return 0;
}

int tls_ensure(const char *base, struct tls_files *out, char err[256])
{
	int nids[] = { NID_basic_constraints, NID_ext_key_usage, NID_subject_alt_name,
		       NID_authority_key_identifier };
	char san[600], cname[300], kname[300];
	const char *values[] = { "CA:FALSE", "serverAuth", san, "keyid" };
	X509 *ca = NULL, *leaf = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	int r;

	snprintf(out->dir, sizeof(out->dir), "%s/serve/tls", image_data_dir());
	snprintf(out->ca, sizeof(out->ca), "%s/ca.pem", out->dir);
	snprintf(cname, sizeof(cname), "%s.pem", base);
	snprintf(kname, sizeof(kname), "%s.key", base);
	snprintf(out->cert, sizeof(out->cert), "%s/%s", out->dir, cname);
	snprintf(out->key, sizeof(out->key), "%s/%s", out->dir, kname);
	if (exists(out->cert) && exists(out->key) && exists(out->ca))
		return 0;
	if ((r = mkdirs(out->dir, err)) < 0 || (r = ca_load(out->dir, &ca, &ca_key, err)) < 0)
		return r;
	snprintf(san, sizeof(san), "DNS:%s,DNS:*.%s", base, base);
	r = -EIO;
	key = EVP_EC_gen("P-256");
	if (!key) {
		ssl_fail(err, "cannot make the certificate's key");
		goto out;
	}
	leaf = cert_make(key, base, ca, ca_key, LEAF_DAYS, nids, values, 4);
	if (!leaf) {
		ssl_fail(err, "cannot make the certificate");
		goto out;
	}
	if ((r = pem_save(out->dir, kname, key, NULL, err)) < 0 ||
	    (r = pem_save(out->dir, cname, NULL, leaf, err)) < 0)
		goto out;
	r = 0;
out:
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return r;
}
