/* The operation table: which request frame starts which operation. Each
 * operation lives with its feature (exec/, fs/, net/); this file only
 * routes, plus INFO, which is answered on the spot. */
#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "exec/exec.h"
#include "fs/fs.h"
#include "net/net.h"
#include "lib/util.h"
#include "server/conn.h"
#include "server/server.h"

#define SBX_VERSION "0.1.0"

static void info(struct conn *c, const struct frame *f)
{
	struct info i = { 0 };
	struct utsname u;

	if (f->len != 0) {
		conn_fail(c, EBADMSG, "INFO payload is %u bytes, expected 0", f->len);
		return;
	}
	str_copy(i.version, sizeof(i.version), "sbx-init " SBX_VERSION);
	if (uname(&u) == 0) {
		str_copy(i.hostname, sizeof(i.hostname), u.nodename);
		str_copy(i.kernel, sizeof(i.kernel), u.release);
	}
	i.uptime_ns = time_boot_ns();
	i.pid1 = server_under_pid1();
	proto_info_ok_put(conn_txbuf(c), &i);
	conn_finish(c);
}

static void shutdown_op(struct conn *c, const struct frame *f)
{
	char reason[PROTO_REASON_MAX + 1];
	struct proto_err e;
	int r;

	if (proto_shutdown_decode(f, reason, &e) < 0) {
		conn_fail(c, e.code, "%s", e.msg);
		return;
	}
	r = server_request_shutdown(reason[0] ? reason : "requested by the host");
	if (r < 0) {
		conn_fail(c, -r, "cannot reach the init process to shut down");
		return;
	}
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
}

void op_dispatch(struct conn *c, const struct frame *f)
{
	switch (f->type) {
	case FT_EXEC:
		exec_start(c, f);
		break;
	case FT_INFO:
		info(c, f);
		break;
	case FT_SHUTDOWN:
		shutdown_op(c, f);
		break;
	default:
		if (f->type >= FT_FS_FIRST && f->type <= FT_FS_LAST) {
			fs_dispatch(c, f);
			break;
		}
		if (f->type >= FT_NET_FIRST && f->type <= FT_NET_LAST) {
			net_dispatch(c, f);
			break;
		}
		conn_fail(c, EOPNOTSUPP, "unknown operation: frame type 0x%04x (%s)", f->type,
			  proto_type_name(f->type));
	}
}
