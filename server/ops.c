/* The operation table: which request frame starts which operation, and
 * the agent every connection of the server carries (conn/agent.h). Each
 * operation lives with its feature (exec/, fs/, net/, server/control.c);
 * this file only routes. */
#include <errno.h>

#include "conn/agent.h"
#include "conn/conn.h"
#include "exec/exec.h"
#include "exec/output.h"
#include "fs/fs.h"
#include "lib/util.h"
#include "net/net.h"
#include "server/control.h"
#include "server/server.h"

static int op_dispatch(struct conn *c, const struct frame *f, struct proto_err *e);

const struct agent server_agent = {
	.config = server_config,
	.auth_key = server_auth_key,
	.dispatch = op_dispatch,
	.devnull = server_devnull,
	.in_vm = server_in_vm,
	.workload_nofile = server_workload_nofile,
	.job_hold = server_job_hold,
	.job_status = server_job_status,
	.job_done = server_job_done,
};

int conn_start(int fd, bool vsock)
{
	return conn_open(fd, vsock, &server_agent);
}

/* The agent's own operations; the file and network families have tables
 * of their own (fs/ops.c, net/ops.c). */
static const struct conn_route routes[] = {
	{ FT_EXEC, exec_start },
	{ FT_ATTACH, exec_attach },
	{ FT_PS, exec_ps },
	{ FT_OUTPUT, exec_output },
	{ FT_INFO, control_info },
	{ FT_SHUTDOWN, control_shutdown },
	{ FT_SESSION, control_session },
	{ FT_EXTEND, control_extend },
	{ FT_SET_TIME, control_set_time },
	{ FT_ENV, control_env },
	{ FT_FREEZE, control_freeze },
	{ FT_IDENTITY, control_identity },
};

static int op_dispatch(struct conn *c, const struct frame *f, struct proto_err *e)
{
	const struct conn_route *rt;

	if (f->type >= FT_FS_FIRST && f->type <= FT_FS_LAST)
		return fs_dispatch(c, f, e);
	if (f->type >= FT_NET_FIRST && f->type <= FT_NET_LAST)
		return net_dispatch(c, f, e);
	if (!(rt = conn_route_find(routes, ARRAY_SIZE(routes), f->type)))
		return proto_fail(e, EOPNOTSUPP, "unknown operation: frame type 0x%04x (%s)", f->type,
				  proto_type_name(f->type));
	return rt->start(c, f, e);
}
