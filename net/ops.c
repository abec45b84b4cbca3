/* Port forwarding and SSH: routes each request type to its handler. */
#include <errno.h>

#include "net/net.h"
#include "vsock/proto_net.h"

void net_dispatch(struct conn *c, const struct frame *f)
{
	switch (f->type) {
	case FT_FORWARD:
		forward_start(c, f);
		break;
	case FT_SSH_START:
		sshd_start_op(c, f);
		break;
	case FT_SSH_KEY_ADD:
	case FT_SSH_KEY_REMOVE:
	case FT_SSH_KEY_LIST:
		keys_op(c, f);
		break;
	default:
		conn_fail(c, EOPNOTSUPP, "operation 0x%04x (%s) is not implemented by this agent",
			  f->type, proto_type_name(f->type));
	}
}
