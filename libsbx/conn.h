/* What libsbx's own files share about a connection (libsbx/client.c):
 * its socket and buffers. Not installed: to a program, struct sbx_conn is
 * opaque. */
#ifndef SBX_LIBSBX_CONN_H
#define SBX_LIBSBX_CONN_H

#include <stdbool.h>

#include "lib/buf.h"
#include "libsbx/sbx.h"

struct sbx_conn {
	int fd;
	struct buf rx;
	struct buf tx;
	bool hello_done;
	uint16_t version;       /* HELLO_OK's, once hello_done */
	bool eof;
	char addr[160];
};

/* Waits for HELLO_OK unless it came (then c->version is the agreed
 * version): what a verified upload needs before its first byte, since
 * the version decides the digest. With a token, queues AUTH. */
int sbx_hello_wait(struct sbx_conn *c, struct sbx_error *err);

/* Fails err for a connection that broke with errno code ("the connection
 * to ADDR was lost" for EPIPE and ECONNRESET); returns -code. */
int sbx_conn_lost(struct sbx_conn *c, struct sbx_error *err, int code);

#endif
