/* Codec for port forwarding and SSH access (docs/protocol/net.md): the
 * FORWARD, SSH_START and SSH_KEY_* requests and their replies, and the SSH
 * public key format their KEY fields carry, which both ends validate with
 * the same code. */
#ifndef SBX_PROTO_NET_H
#define SBX_PROTO_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsock/proto.h"

enum net_frame_type {
	FT_FORWARD = 0x0040,        /* c->a: relay this connection to a guest port */
	FT_SSH_START = 0x0041,      /* c->a: make sure the SSH server runs */
	FT_SSH_KEY_ADD = 0x0042,    /* c->a: authorize a public key for a user */
	FT_SSH_KEY_REMOVE = 0x0043, /* c->a: take a public key away */
	FT_SSH_KEY_LIST = 0x0044,   /* c->a: list a user's authorized keys */
	FT_SSH_SERVER = 0x0300,     /* a->c: reply to SSH_START */
	FT_SSH_KEYS = 0x0301,       /* a->c: reply to SSH_KEY_LIST */
};

/* FORWARD fields */
enum { FORWARD_PORT = 1 };
/* SSH_KEY_* fields */
enum { SSH_KEY_USER = 1, SSH_KEY_KEY = 2 };
/* SSH_SERVER fields */
enum { SSH_SERVER_HOST_KEY = 1, SSH_SERVER_FINGERPRINT, SSH_SERVER_PORT, SSH_SERVER_USER };
/* SSH_KEYS fields: SSH_KEY_KEY, repeated */

#define NET_USER_MAX 32           /* as the agent's user names */
#define SSH_KEY_LINE_MAX 8192     /* one authorized_keys line */
#define SSH_KEY_BLOB_MAX 4096     /* decoded key data (16384-bit RSA fits) */
#define SSH_KEY_TYPE_MAX 47
#define SSH_FINGERPRINT_MAX 63    /* "SHA256:" and 43 base64 characters */
#define SSH_HOST_KEY_MAX 1023     /* "type base64", no comment */

/* The name of a frame type in this feature's ranges, or "unknown". */
const char *proto_net_type_name(uint16_t type);

/* FORWARD: the encoder takes any value so tests can send bad ports; the
 * decoder accepts 1 to 65535. */
int proto_forward_put(struct buf *b, uint32_t port);
int proto_forward_decode(const struct frame *f, uint16_t *port, struct proto_err *e);

/* SSH_START (empty) */
int proto_ssh_start_put(struct buf *b);
int proto_ssh_start_decode(const struct frame *f, struct proto_err *e);

/* SSH_KEY_ADD, SSH_KEY_REMOVE, SSH_KEY_LIST. user "" means the sandbox's
 * default user; key is required for ADD and REMOVE, absent for LIST. The
 * decoder checks field shapes only; ssh_key_parse judges the key. */
struct ssh_key_req {
	char user[NET_USER_MAX + 1];
	char key[SSH_KEY_LINE_MAX + 1];
	size_t key_len;
};
int proto_ssh_key_put(struct buf *b, uint16_t type, const char *user, const char *key);
int proto_ssh_key_decode(const struct frame *f, struct ssh_key_req *r, struct proto_err *e);

/* SSH_SERVER */
struct ssh_server_info {
	char host_key[SSH_HOST_KEY_MAX + 1];       /* "ssh-ed25519 AAAA..." */
	char fingerprint[SSH_FINGERPRINT_MAX + 1]; /* "SHA256:..." */
	uint32_t port;                             /* in the guest: 22 */
	char user[NET_USER_MAX + 1];               /* the sandbox's default user */
};
int proto_ssh_server_put(struct buf *b, const struct ssh_server_info *s);
int proto_ssh_server_decode(const struct frame *f, struct ssh_server_info *s, struct proto_err *e);

/* SSH_KEYS: the agent appends lines between proto_begin and proto_end with
 * proto_field_put(b, SSH_KEY_KEY, ...); the decoder checks every field,
 * then calls fn once per line (NUL-terminated copy). */
int proto_ssh_keys_decode(const struct frame *f, void (*fn)(void *arg, const char *line),
			  void *arg, struct proto_err *e);

/* ---- SSH public keys ---- */

/* One public key: the type named on the line, the decoded key data
 * (RFC 4253 section 6.6 "public key blob"), and the comment. */
struct ssh_pubkey {
	char type[SSH_KEY_TYPE_MAX + 1];
	uint8_t blob[SSH_KEY_BLOB_MAX];
	size_t blob_len;
	const char *comment; /* points into the parsed line, not terminated */
	size_t comment_len;
};

/* Strict parse of a key as a client sends it: "TYPE BASE64 [COMMENT]" on
 * one line, no options, a known type whose key data has the right shape.
 * Returns 0, or -EINVAL with e->msg saying what is wrong. */
int ssh_key_parse(const char *line, size_t len, struct ssh_pubkey *k, struct proto_err *e);

/* Tolerant parse of an authorized_keys line, which may start with
 * options: 1 and k filled when the line holds a key, 0 when it is blank,
 * a comment or unparsable. */
int ssh_key_find(const char *line, size_t len, struct ssh_pubkey *k);

/* Same key (type and key data; comments do not count)? */
bool ssh_key_equal(const struct ssh_pubkey *a, const struct ssh_pubkey *b);

/* OpenSSH's fingerprint of key data: "SHA256:" and unpadded base64. */
void ssh_key_fingerprint(const uint8_t *blob, size_t len, char out[SSH_FINGERPRINT_MAX + 1]);

/* "TYPE BASE64" and " COMMENT" when comment is not empty. -ENAMETOOLONG
 * when it does not fit in n bytes. */
int ssh_key_format(const char *type, const uint8_t *blob, size_t len, const char *comment,
		   char *out, size_t n);

/* The key data of an Ed25519 public key (51 bytes). */
#define SSH_ED25519_BLOB_LEN 51
void ssh_ed25519_blob(const uint8_t pk[32], uint8_t blob[SSH_ED25519_BLOB_LEN]);

#endif
