/* File operations: routes each request type to its handler. */
#include <errno.h>

#include "fs/fs.h"

void fs_dispatch(struct conn *c, const struct frame *f)
{
	conn_fail(c, EOPNOTSUPP, "file operation 0x%04x is not implemented by this agent", f->type);
}
