/* libsbx: the files `sbx ssh` gives the OpenSSH client. A per-user Ed25519
 * client key made with libsodium and written in OpenSSH's private key
 * format (PROTOCOL.key in OpenSSH: "openssh-key-v1", unencrypted), and a
 * known_hosts file pinning the host key the agent reported. */
#include "libsbx/sbx_net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/atomic.h"
#include "lib/buf.h"
#include "lib/util.h"

#define KEY_NAME "id_ed25519"
#define KEY_COMMENT "sbx-client"
#define PEM_WIDTH 70

/* Writes data to path through a temporary file and a rename. */
/* Replaces path with data, atomically (lib/atomic.h). */
static int write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int dfd, r;

	if (!slash)
		str_copy(dir, sizeof(dir), ".");
	else if (slash == path)
		str_copy(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = atomic_write(dfd, slash ? slash + 1 : path, data, len, mode);
	close(dfd);
	return r;
}

static int put_u32(struct buf *b, uint32_t v)
{
	uint8_t p[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	return buf_append(b, p, 4);
}

/* An RFC 4251 string. */
static int put_str(struct buf *b, const void *s, size_t len)
{
	int r = put_u32(b, (uint32_t)len);

	return r < 0 ? r : buf_append(b, s, len);
}

/* The OpenSSH private key file for an Ed25519 key pair. */
static int openssh_private(const uint8_t pk[32], const uint8_t sk[64], struct buf *pem)
{
	uint8_t blob[SSH_ED25519_BLOB_LEN];
	struct buf bin, priv;
	uint32_t check = randombytes_random();
	char *b64 = NULL;
	size_t b64_len;
	int r;

	buf_init(&bin, 4096);
	buf_init(&priv, 4096);
	ssh_ed25519_blob(pk, blob);
	/* The private section: two equal check words, the key, a comment,
	 * then padding 1, 2, 3, ... to the cipher block size (8 for "none"). */
	if ((r = put_u32(&priv, check)) < 0 || (r = put_u32(&priv, check)) < 0 ||
	    (r = put_str(&priv, "ssh-ed25519", 11)) < 0 || (r = put_str(&priv, pk, 32)) < 0 ||
	    (r = put_str(&priv, sk, 64)) < 0 ||
	    (r = put_str(&priv, KEY_COMMENT, strlen(KEY_COMMENT))) < 0)
		goto out;
	for (uint8_t pad = 1; buf_len(&priv) % 8; pad++)
		if ((r = buf_append(&priv, &pad, 1)) < 0)
			goto out;
	if ((r = buf_append(&bin, "openssh-key-v1", 15)) < 0 ||
	    (r = put_str(&bin, "none", 4)) < 0 || (r = put_str(&bin, "none", 4)) < 0 ||
	    (r = put_str(&bin, "", 0)) < 0 || (r = put_u32(&bin, 1)) < 0 ||
	    (r = put_str(&bin, blob, sizeof(blob))) < 0 ||
	    (r = put_str(&bin, buf_head(&priv), buf_len(&priv))) < 0)
		goto out;
	b64_len = sodium_base64_ENCODED_LEN(buf_len(&bin), sodium_base64_VARIANT_ORIGINAL);
	b64 = malloc(b64_len);
	if (!b64) {
		r = -ENOMEM;
		goto out;
	}
	sodium_bin2base64(b64, b64_len, buf_head(&bin), buf_len(&bin),
			  sodium_base64_VARIANT_ORIGINAL);
	r = buf_append(pem, "-----BEGIN OPENSSH PRIVATE KEY-----\n", 36);
	for (size_t at = 0, n = strlen(b64); r == 0 && at < n; at += PEM_WIDTH) {
		r = buf_append(pem, b64 + at, MIN((size_t)PEM_WIDTH, n - at));
		if (r == 0)
			r = buf_append(pem, "\n", 1);
	}
	if (r == 0)
		r = buf_append(pem, "-----END OPENSSH PRIVATE KEY-----\n", 34);
out:
	if (priv.data)
		sodium_memzero(priv.data, priv.cap);
	if (bin.data)
		sodium_memzero(bin.data, bin.cap);
	buf_free(&priv);
	buf_free(&bin);
	free(b64);
	return r;
}

/* Reads the public key line of an existing key pair; 0 when both files
 * are there and the line is a good Ed25519 key. */
static int read_pub(const char *path, char *pub, size_t pub_len)
{
	char pubpath[PATH_MAX + 8], line[1024];
	struct ssh_pubkey k;
	ssize_t n;
	int fd;

	if (access(path, R_OK) < 0)
		return -errno;
	snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
	fd = open(pubpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return -EBADMSG;
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (ssh_key_parse(line, strlen(line), &k, NULL) < 0 || strcmp(k.type, "ssh-ed25519"))
		return -EBADMSG;
	return str_copy(pub, pub_len, line);
}

static int make_key(const char *path, char *pub, size_t pub_len, struct sbx_error *err)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t blob[SSH_ED25519_BLOB_LEN];
	char pubpath[PATH_MAX + 8], line[256];
	struct buf pem;
	int r;

	buf_init(&pem, 8192);
	crypto_sign_keypair(pk, sk);
	r = openssh_private(pk, sk, &pem);
	sodium_memzero(sk, sizeof(sk));
	if (r == 0)
		r = write_file(path, buf_head(&pem), buf_len(&pem), 0600);
	if (pem.data)
		sodium_memzero(pem.data, pem.cap);
	buf_free(&pem);
	if (r < 0)
		return sbx_fail(err, r, "cannot write the SSH client key %s: %s", path, strerror(-r));
	ssh_ed25519_blob(pk, blob);
	ssh_key_format("ssh-ed25519", blob, sizeof(blob), KEY_COMMENT, line, sizeof(line) - 1);
	str_copy(pub, pub_len, line);
	strcat(line, "\n");
	snprintf(pubpath, sizeof(pubpath), "%s.pub", path);
	if ((r = write_file(pubpath, line, strlen(line), 0644)) < 0)
		return sbx_fail(err, r, "cannot write %s: %s", pubpath, strerror(-r));
	return 0;
}

int sbx_ssh_client_key(const char *dir, char *path, size_t path_len, char *pub,
		       size_t pub_len, struct sbx_error *err)
{
	char lock[PATH_MAX + 8];
	int lfd, r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "cannot create %s: %s", dir, strerror(errno));
	if (snprintf(path, path_len, "%s/" KEY_NAME, dir) >= (int)path_len)
		return sbx_fail(err, ENAMETOOLONG, "path too long: %s", dir);
	/* Two sbx ssh at once must not make two different keys. */
	snprintf(lock, sizeof(lock), "%s/lock", dir);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return sbx_fail(err, errno, "cannot open %s: %s", lock, strerror(errno));
	flock(lfd, LOCK_EX);
	r = read_pub(path, pub, pub_len);
	if (r < 0)
		r = make_key(path, pub, pub_len, err);
	close(lfd);
	return r;
}

int sbx_ssh_known_hosts(const char *path, const char *alias, const char *host_key,
			struct sbx_error *err)
{
	char line[SSH_HOST_KEY_MAX + 160];
	int r, n = snprintf(line, sizeof(line), "%s %s\n", alias, host_key);

	if (n < 0 || (size_t)n >= sizeof(line))
		return sbx_fail(err, ENAMETOOLONG, "host key too long");
	if ((r = write_file(path, line, (size_t)n, 0600)) < 0)
		return sbx_fail(err, r, "cannot write %s: %s", path, strerror(-r));
	return 0;
}
