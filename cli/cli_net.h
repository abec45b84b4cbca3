/* Pieces `sbx expose` and `sbx ssh` share (cli/cli_expose.c). */
#ifndef SBX_CLI_NET_H
#define SBX_CLI_NET_H

#include <stdbool.h>

#include "cli/cli.h"
#include "launcher/sandbox.h"
#include "libsbx/sbx_net.h"

/* A sandbox named by id, or an agent at --connect (sb NULL). */
struct cli_net_target {
	char addr[PATH_MAX + 32];
	struct sandbox sb;
	bool is_sandbox;
};

/* Resolves ID / --connect; prints why not and returns -errno. */
int cli_net_target(const struct cli *cli, const char *id, struct cli_net_target *t);

/* Parses a port: 1-65535 (0 too when zero_ok); prints why not. */
int cli_net_port(const char *s, bool zero_ok, const char *what, unsigned *port);

struct cli_expose_req {
	const struct cli_net_target *t;
	unsigned guest_port;
	unsigned host_port;        /* 0: ephemeral */
	const char *bind;          /* NULL: 127.0.0.1 */
	bool detach;
	const char *kind;          /* "http" or "ssh" */
	/* Called once listening (and, with detach, once the background
	 * process serves), to print where. */
	void (*announce)(void *arg, const struct sbx_expose *x);
	void *arg;
};

/* Exposes a guest port: in the foreground until interrupted or the
 * sandbox ends, or in the background (detach). Returns sbx's exit
 * status. */
int cli_expose_run(const struct cli_expose_req *r);

#endif
