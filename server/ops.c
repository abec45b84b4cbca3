/* The operation table: which request frame starts which operation, and
 * the agent every connection of the server carries (conn/agent.h). Each
 * operation lives with its feature (exec/, fs/, net/, server/control.c);
 * this file only routes. */
#include <errno.h>

#include "conn/agent.h"
#include "conn/conn.h"
#include "exec/exec.h"
#include "fs/fs.h"
#include "net/net.h"
#include "server/control.h"
#include "server/server.h"

static void op_dispatch(struct conn *c, const struct frame *f);

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

int conn_start(int fd)
{
	return conn_open(fd, &server_agent);
}

static void op_dispatch(struct conn *c, const struct frame *f)
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
