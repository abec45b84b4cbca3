/* Port forwarding and SSH access in the guest (docs/protocol/net.md). */
#ifndef SBX_NET_H
#define SBX_NET_H

#include "conn/conn.h"

/* Takes over connection c for a request f (a frame type in
 * FT_NET_FIRST..FT_NET_LAST). */
int net_dispatch(struct conn *c, const struct frame *f, struct proto_err *e);

/* The handlers it routes to (net/forward.c, net/sshd.c, net/keys.c). */
int forward_start(struct conn *c, const struct frame *f, struct proto_err *e);
int sshd_start_op(struct conn *c, const struct frame *f, struct proto_err *e);
int keys_op(struct conn *c, const struct frame *f, struct proto_err *e);

#endif
