/* OUTPUT: a connection that offers itself as the standard output of a
 * command an EXEC on another connection starts (docs/PROTOCOL.md, "Direct
 * standard output"). */
#ifndef SBX_EXEC_OUTPUT_H
#define SBX_EXEC_OUTPUT_H

#include <stdint.h>

#include "conn/conn.h"

/* OUTPUT: answers OUTPUT_OK with a fresh id, then c waits for an EXEC
 * that names it. */
int exec_output(struct conn *c, const struct frame *f, struct proto_err *e);

/* The socket of the connection waiting under id, now the caller's (in
 * blocking mode, for a command's fd 1): that connection is gone from the
 * agent's view. -errno with e filled: none waits under that id (ENOENT),
 * or it broke the protocol (EPROTO: it was failed). */
int exec_output_claim(const uint8_t id[PROTO_OUTPUT_ID_LEN], struct proto_err *e);

/* Ends a direct stdout (our copy of a command's fd 1) and closes it:
 * the client reads what the command wrote, then its end of file; never
 * sleeps, whatever the command set on the socket (SO_LINGER). *fd = -1;
 * nothing when it is -1 already (no direct stdout). */
void exec_output_end(int *fd);

#endif
