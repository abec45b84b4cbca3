/* Agent addresses: `unix:PATH`, `vsock:CID:PORT` and `hybrid:PATH:PORT`
 * (a Firecracker-style Unix socket that takes `CONNECT <port>\n`). The one
 * seam between the protocol and the transports, shared by both ends. */
#ifndef SBX_ADDR_H
#define SBX_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define ADDR_PATH_MAX 108 /* sun_path */

enum addr_kind { ADDR_UNIX, ADDR_VSOCK, ADDR_HYBRID };

struct addr {
	enum addr_kind kind;
	char path[ADDR_PATH_MAX];
	uint32_t cid;
	uint32_t port;
};

/* Parses s; on failure returns -EINVAL and writes a reason to err. */
int addr_parse(const char *s, struct addr *a, char *err, size_t errlen);
void addr_format(const struct addr *a, char *out, size_t n);

/* Connects (blocking, close-on-exec) and returns the fd, or -errno. For
 * hybrid sockets it completes the CONNECT handshake; -ECONNREFUSED when
 * the guest refused the port. timeout_ms bounds the handshake. */
int addr_connect(const struct addr *a, int timeout_ms);
/* The same, sending `first` (the start of the stream) at once: for hybrid
 * sockets in the same write as the CONNECT line, so that sbx-vsockd
 * forwards it as soon as the guest accepts, with no wait for the "OK"
 * line in between (it reads the line and leaves the rest in the socket). */
int addr_connect_with(const struct addr *a, int timeout_ms, const void *first, size_t len);

/* Creates a listening socket (unix or vsock); a stale Unix socket file is
 * replaced. Returns the fd or -errno. */
int addr_listen(const struct addr *a, int backlog);

#endif
