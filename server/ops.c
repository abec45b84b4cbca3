/* The operation table: which request frame starts which operation. Each
 * operation lives with its feature (exec/, fs/, net/); this file only
 * routes, plus INFO, which is answered on the spot. */
#include <errno.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "exec/exec.h"
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

void op_dispatch(struct conn *c, const struct frame *f)
{
	switch (f->type) {
	case FT_EXEC:
		exec_start(c, f);
		break;
	case FT_INFO:
		info(c, f);
		break;
	default:
		conn_fail(c, EOPNOTSUPP, "unknown operation: frame type 0x%04x (%s)", f->type,
			  proto_type_name(f->type));
	}
}
