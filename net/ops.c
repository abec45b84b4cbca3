/* Port forwarding and SSH: routes each request type to its handler. */
#include <errno.h>

#include "net/net.h"

void net_dispatch(struct conn *c, const struct frame *f)
{
	conn_fail(c, EOPNOTSUPP, "operation 0x%04x is not implemented by this agent", f->type);
}
