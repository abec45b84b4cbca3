/* Port forwarding and SSH: the table of the network family's requests and
 * the handler that starts each. */
#include <errno.h>

#include "lib/util.h"
#include "net/net.h"
#include "vsock/proto_net.h"

static const struct conn_route routes[] = {
	{ FT_FORWARD, forward_start },
	{ FT_SSH_START, sshd_start_op },
	{ FT_SSH_KEY_ADD, keys_op },
	{ FT_SSH_KEY_REMOVE, keys_op },
	{ FT_SSH_KEY_LIST, keys_op },
};

int net_dispatch(struct conn *c, const struct frame *f, struct proto_err *e)
{
	const struct conn_route *rt = conn_route_find(routes, ARRAY_SIZE(routes), f->type);

	if (!rt)
		return proto_fail(e, EOPNOTSUPP, "operation 0x%04x (%s) is not implemented by this "
				  "agent", f->type, proto_type_name(f->type));
	return rt->start(c, f, e);
}
