/* libsbx, network part: reach a TCP port inside a sandbox (FORWARD), expose
 * it on the host, and SSH access (authorized keys, the guest's SSH server,
 * a per-user client key). Same conventions as sbx.h: 0 or -errno, and a
 * struct sbx_error naming what failed. Protocol: docs/protocol/net.md. */
#ifndef SBX_NET_H_PUBLIC
#define SBX_NET_H_PUBLIC

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libsbx/sbx.h"
#include "vsock/proto_net.h"

/* ---- forwarding one connection ---- */

/* A FORWARD connection being set up without blocking: connect (and the
 * hybrid CONNECT handshake), HELLO, FORWARD, then the agent's reply. Drive
 * it from poll/epoll: wait for sbx_dial_events() on sbx_dial_fd(), then
 * call sbx_dial_step() until it returns 1 (the fd now carries the guest
 * port's bytes; take it with sbx_dial_take) or fails. */
struct sbx_dial;
int sbx_dial_start(const char *addr, unsigned port, struct sbx_dial **out,
		   struct sbx_error *err);
int sbx_dial_fd(const struct sbx_dial *d);
uint32_t sbx_dial_events(const struct sbx_dial *d); /* EPOLLIN or EPOLLOUT */
/* 1: ready; 0: call again on the next event; -errno: failed (err says
 * why; "nothing listens on port 8080 in the sandbox" when refused). */
int sbx_dial_step(struct sbx_dial *d, struct sbx_error *err);
/* The connected fd (non-blocking, close-on-exec); frees d. */
int sbx_dial_take(struct sbx_dial *d);
void sbx_dial_free(struct sbx_dial *d);


/* The same, blocking: returns a blocking fd connected to guest port
 * `port`, or -errno. timeout_ms < 0 waits forever. */
int sbx_forward_open(const char *addr, unsigned port, int timeout_ms, struct sbx_error *err);

/* ---- exposing a port on the host ---- */

struct sbx_expose_opts {
	const char *addr;        /* the agent */
	unsigned guest_port;
	const char *bind;        /* host address to listen on; NULL: 127.0.0.1 */
	unsigned host_port;      /* 0: an ephemeral port */
	const char *state_dir;   /* the sandbox's state directory, for the
				  * record `sbx info` lists; NULL: none */
	pid_t watch_pid;         /* stop when this process ends (the
				  * sandbox's QEMU); 0: run until stopped */
	bool detached;           /* recorded as running in the background */
	const char *kind;        /* "http" or "ssh": how the URL is written */
};

struct sbx_expose;
/* Listens (errors such as a port in use are reported here). */
int sbx_expose_listen(const struct sbx_expose_opts *o, struct sbx_expose **out,
		      struct sbx_error *err);
/* Where it listens: "http://127.0.0.1:N/" (or "127.0.0.1:N" for ssh). */
const char *sbx_expose_url(const struct sbx_expose *x);
unsigned sbx_expose_port(const struct sbx_expose *x);
const char *sbx_expose_host(const struct sbx_expose *x);
/* Records the exposure (when state_dir is set) and relays every accepted
 * connection through its own FORWARD connection until SIGINT, SIGTERM or
 * SIGHUP, or until watch_pid ends. Once it serves it writes one byte to
 * ready_fd and closes it (-1: none; `--detach` waits for it). Returns 0 on
 * a clean stop. */
int sbx_expose_serve(struct sbx_expose *x, int ready_fd, struct sbx_error *err);
void sbx_expose_free(struct sbx_expose *x);

/* Relays stdin/stdout through one FORWARD connection until both
 * directions end (an ssh ProxyCommand). */
int sbx_forward_stdio(const char *addr, unsigned port, struct sbx_error *err);

/* The exposures recorded in a sandbox's state directory: one file
 * `expose-<host port>` each (docs/protocol/net.md). Stale records (their
 * process is gone) are removed on the way. */
struct sbx_exposure {
	pid_t pid;
	unsigned guest_port;
	char host[64];
	unsigned host_port;
	char url[128];
	bool detached;
};
int sbx_expose_list(const char *state_dir, void (*fn)(void *arg, const struct sbx_exposure *e),
		    void *arg);
/* Stops every exposure of a sandbox (SIGTERM, then SIGKILL after 1 s)
 * and removes their records. Returns how many were stopped, or -errno. */
int sbx_expose_stop_all(const char *state_dir);

/* ---- SSH ---- */

/* Authorized keys of `user` (NULL: the sandbox's default user). key is
 * one public key line, "TYPE BASE64 [COMMENT]". */
int sbx_ssh_key_add(const char *addr, const char *user, const char *key, struct sbx_error *err);
int sbx_ssh_key_remove(const char *addr, const char *user, const char *key,
		       struct sbx_error *err);
int sbx_ssh_key_list(const char *addr, const char *user,
		     void (*fn)(void *arg, const char *line), void *arg, struct sbx_error *err);

/* Makes sure the guest's SSH server runs and returns its host key, as the
 * agent reports it over the sbx connection; the fingerprint is checked to
 * belong to the key. */
int sbx_ssh_start(const char *addr, struct ssh_server_info *out, struct sbx_error *err);

/* The per-user client key: DIR/id_ed25519 (OpenSSH format) and .pub,
 * created when missing, as is DIR (0700; its parent must exist). path
 * receives the private key's path, pub the public key line. */
int sbx_ssh_client_key(const char *dir, char *path, size_t path_len, char *pub,
		       size_t pub_len, struct sbx_error *err);

/* Writes a known_hosts file holding one line, "ALIAS HOSTKEY" (atomically,
 * 0600). */
int sbx_ssh_known_hosts(const char *path, const char *alias, const char *host_key,
			struct sbx_error *err);

#endif
