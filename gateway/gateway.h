/* The egress gateway of a sandbox (`sbx gateway`, started by `sbx create
 * --allow-net`): the only way out of a guest. It listens where sbx-vsockd
 * relays guest connections to vsock port GATEWAY_PORT, decides each
 * request against the allow list, connects and relays; every decision is
 * appended to an audit log (docs/protocol/egress.md). */
#ifndef SBX_GATEWAY_H
#define SBX_GATEWAY_H

#include <stddef.h>
#include <sys/types.h>

#include "gateway/allow.h"

#define GATEWAY_PORT 1025              /* the guest -> host vsock port */
#define GATEWAY_REQUEST_MAX 512        /* "CONNECT host port\n" */
#define GATEWAY_CONN_MAX 1024          /* connections at once */
#define GATEWAY_RESOLVE_MAX 64         /* --resolve entries */
#define GATEWAY_ADDRS_MAX 8            /* addresses tried per name */
#define GATEWAY_AUDIT_ROTATE (64u << 20) /* egress.log -> egress.log.1 */

struct gateway_resolve {
	char name[ALLOW_NAME_MAX + 1];
	struct allow_addr addr;
};

struct gateway_opts {
	const char *listen;                /* Unix socket path */
	const char *audit;                 /* audit log path */
	pid_t watch_pid;                   /* exit when it ends (QEMU); 0: none */
	int ready_fd;                      /* one byte when listening; -1: none */
	unsigned connect_timeout_ms;       /* per address; 0: 10 s */
	const struct allow_rule *rules;
	size_t nrules;
	const struct gateway_resolve *resolves; /* test-only name overrides */
	size_t nresolves;
};

/* A request line, "CONNECT <host> <port>" without its end of line (the
 * guest's; tests/fuzz/fuzz_gateway.c): the destination, or -EPROTO (not
 * such a line) or -EINVAL (a bad host or port), with why in err. host and
 * port point into line, which is cut up, once found. */
int gateway_parse_connect(char *line, struct allow_dest *d, char **host, char **port,
			  char *err, size_t n);

/* "name=addr" (--resolve): addr is IPv4 or IPv6, with or without brackets. */
int gateway_parse_resolve(const char *s, struct gateway_resolve *r, char *err, size_t n);

/* Serves until SIGTERM/SIGINT/SIGHUP or the end of watch_pid. Returns 0,
 * or -errno when it could not start (after logging why). */
int gateway_run(const struct gateway_opts *o);

/* For `sbx create`: checks the --allow-net patterns and --resolve entries
 * (NULL-terminated, either may be NULL) before anything starts, and writes
 * the canonical patterns, one per line, to canon (n bytes). Returns 0 or
 * -errno with a message naming the bad one. */
int gateway_check(const char *const *allow, const char *const *resolve, char *canon, size_t n,
		  char *err, size_t errn);
/* Starts `sbx gateway` (the sbx next to this program) for the sandbox in
 * dir: it listens on dir/vsock.sock_GATEWAY_PORT, audits to
 * dir/egress.log, logs to dir/gateway.log and exits with watch_pid.
 * secrets_fd (-1: none) is the read end of secrets_pipe (gateway/secrets.h).
 * Returns its pid once it listens, or -errno. */
pid_t gateway_spawn(const char *dir, pid_t watch_pid, const char *const *allow,
		    const char *const *resolve, int secrets_fd, char *err, size_t errn);

/* The hidden `sbx gateway` command (cli/cli_gateway.c). */
struct cli;
int cli_gateway(struct cli *cli, int argc, char **argv);

#endif
