/* sbx serve: the certificate of the exposeHttp listener when none is given
 * (--tls-cert/--tls-key): a private CA made once under the data directory
 * and, signed by it, a certificate for BASE and *.BASE, made once per BASE.
 * Clients trust the CA file (its path is printed at start). OpenSSL's C
 * API, the library libwebsockets is built against, through the one
 * certificate maker of sbx (gateway/cert.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gateway/cert.h"
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
	BIO *b = cert_pem(key, cert);
	char *data;
	long len;
	int dfd, r;

	if (!b)
		return ssl_fail(err, "PEM_write");
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

/* A certificate of sbx serve for key, named cn, valid from an hour ago
 * for days, signed by ca_key (issuer: ca, or itself when ca is NULL). */
static X509 *serve_cert(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key, int days,
			const struct cert_ext *ext, size_t next)
{
	return cert_make(key, &(struct cert_spec){ .org = "sbx serve", .cn = cn, .ca = ca,
						  .ca_key = ca_key, .from_s = -3600,
						  .to_s = (long)days * 86400, .ext = ext,
						  .next = next });
}

/* The CA of dir (ca.pem, ca.key), made when missing. */
static int ca_load(const char *dir, X509 **ca, EVP_PKEY **key, char err[256])
{
	static const struct cert_ext ext[] = {
		{ NID_basic_constraints, "critical,CA:TRUE" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
	};
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
	*ca = serve_cert(*key, "sbx serve local CA", NULL, *key, CA_DAYS, ext, ARRAY_SIZE(ext));
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
	char san[600], cname[300], kname[300];
	const struct cert_ext ext[] = {
		{ NID_basic_constraints, "CA:FALSE" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_subject_alt_name, san },
		{ NID_authority_key_identifier, "keyid" },
	};
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
	leaf = serve_cert(key, base, ca, ca_key, LEAF_DAYS, ext, ARRAY_SIZE(ext));
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
