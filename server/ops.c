/* The operation table: which request frame starts which operation. Each
 * operation lives with its feature (exec/, fs/, net/, server/control.c);
 * this file only routes. */
#include <errno.h>

#include "exec/exec.h"
#include "fs/fs.h"
#include "net/net.h"
#include "server/conn.h"
#include "server/control.h"

void op_dispatch(struct conn *c, const struct frame *f)
{
	switch (f->type) {
	case FT_EXEC:
		exec_start(c, f);
		return;
	case FT_ATTACH:
		exec_attach(c, f);
		return;
	case FT_PS:
		exec_ps(c, f);
		return;
	case FT_INFO:
		control_info(c, f);
		return;
	case FT_SHUTDOWN:
		control_shutdown(c, f);
		return;
	case FT_SESSION:
		control_session(c, f);
		return;
	case FT_EXTEND:
		control_extend(c, f);
		return;
	case FT_SET_TIME:
		control_set_time(c, f);
		return;
	case FT_ENV:
		control_env(c, f);
		return;
	}
	if (f->type >= FT_FS_FIRST && f->type <= FT_FS_LAST)
		fs_dispatch(c, f);
	else if (f->type >= FT_NET_FIRST && f->type <= FT_NET_LAST)
		net_dispatch(c, f);
	else
		conn_fail(c, EOPNOTSUPP, "unknown operation: frame type 0x%04x (%s)", f->type,
			  proto_type_name(f->type));
}
