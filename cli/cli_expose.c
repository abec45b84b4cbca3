/* sbx expose: reach a TCP port of a sandbox from the host (a listening
 * port that relays every connection over vsock), in the foreground or in
 * the background tied to the sandbox; --stdio relays stdin/stdout instead
 * (ssh's ProxyCommand). See docs/protocol/net.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_net.h"
#include "lib/util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx expose [OPTIONS] ID PORT\n"
		"       sbx --connect ADDR expose [OPTIONS] PORT\n"
		"       sbx expose --list ID | --stop ID\n"
		"\n"
		"Reach TCP port PORT inside the sandbox from this host: listen on\n"
		"127.0.0.1 (any free port unless --host-port), print the URL, and relay\n"
		"every connection to PORT in the sandbox (127.0.0.1, then ::1) over\n"
		"vsock, until interrupted or until the sandbox ends.\n"
		"\n"
		"      --host-port N  listen on port N\n"
		"      --bind ADDR    listen on ADDR (default 127.0.0.1; 0.0.0.0 or ::\n"
		"                     for every interface)\n"
		"  -d, --detach       keep exposing in the background, tied to the sandbox\n"
		"                     (shown by --list and `sbx info`, stopped by `sbx kill`)\n"
		"      --stdio        relay stdin and stdout to PORT instead (for ssh's\n"
		"                     ProxyCommand)\n"
		"      --list         list the sandbox's exposures\n"
		"      --stop         stop them\n"
		"\n"
		"Exit status: 0 when stopped by a signal or by the sandbox's end, 125\n"
		"when sbx failed.\n");
}

int cli_net_target(const struct cli *cli, const char *id, struct cli_net_target *t)
{
	struct sbx_error err;

	memset(t, 0, sizeof(*t));
	if (cli->connect && id) {
		cli_error("give either a sandbox id or --connect, not both");
		return -EINVAL;
	}
	if (cli->connect)
		return cli_target(cli, NULL, t->addr, sizeof(t->addr));
	if (!id) {
		cli_error("no sandbox given: name one by id, or use --connect ADDR");
		return -EINVAL;
	}
	if (sandbox_load(id, &t->sb, &err) < 0) {
		cli_error("%s", err.msg);
		return -err.code;
	}
	if (str_copy(t->addr, sizeof(t->addr), t->sb.addr) < 0) {
		cli_error("address too long: %s", t->sb.addr);
		return -ENAMETOOLONG;
	}
	t->is_sandbox = true; /* sandbox_load set its token */
	return 0;
}

int cli_net_port(const char *s, bool zero_ok, const char *what, unsigned *port)
{
	uint64_t v;

	if (str_to_u64(s, 65535, &v) < 0 || (v == 0 && !zero_ok)) {
		cli_error("invalid %s '%s': a port is a number from %d to 65535", what, s,
			  zero_ok ? 0 : 1);
		return -EINVAL;
	}
	*port = (unsigned)v;
	return 0;
}

/* The background side of --detach: serve, logging next to the record. */
static _Noreturn void serve_detached(struct sbx_expose *x, const struct cli_net_target *t,
				     int ready)
{
	char log[PATH_MAX + 64];
	struct sbx_error err;
	int fd;

	setsid();
	snprintf(log, sizeof(log), "%s/expose-%u.log", t->sb.dir, sbx_expose_port(x));
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (sbx_expose_serve(x, ready, &err) < 0) {
		cli_error("%s", err.msg);
		_exit(CLI_FAIL);
	}
	_exit(0);
}

int cli_expose_run(const struct cli_expose_req *r)
{
	struct sbx_expose_opts o = {
		.addr = r->t->addr,
		.guest_port = r->guest_port,
		.bind = r->bind,
		.host_port = r->host_port,
		.state_dir = r->t->is_sandbox ? r->t->sb.dir : NULL,
		.watch_pid = r->t->is_sandbox ? r->t->sb.qemu_pid : 0,
		.detached = r->detach,
		.kind = r->kind,
	};
	struct sbx_expose *x;
	struct sbx_error err;
	int pfd[2], rc = 0;
	char ok;
	pid_t pid;

	if (r->detach && !r->t->is_sandbox) {
		cli_error("--detach needs a sandbox id (it is tied to the sandbox's life)");
		return 2;
	}
	if (sbx_expose_listen(&o, &x, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (!r->detach) {
		r->announce(r->arg, x);
		if (sbx_expose_serve(x, -1, &err) < 0) {
			cli_error("%s", err.msg);
			rc = CLI_FAIL;
		}
		sbx_expose_free(x);
		return rc;
	}
	fflush(NULL);
	if (pipe2(pfd, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		cli_error("cannot start a background process: %s", strerror(errno));
		sbx_expose_free(x);
		return CLI_FAIL;
	}
	if (pid == 0) {
		close(pfd[0]);
		serve_detached(x, r->t, pfd[1]);
	}
	close(pfd[1]);
	/* Return only once it serves and is recorded. */
	if (read(pfd[0], &ok, 1) != 1) {
		cli_error("the background exposer failed to start (see %s/expose-%u.log)",
			  r->t->sb.dir, sbx_expose_port(x));
		rc = CLI_FAIL;
	} else {
		r->announce(r->arg, x);
	}
	close(pfd[0]);
	sbx_expose_free(x);
	return rc;
}

static void announce_url(void *arg, const struct sbx_expose *x)
{
	const unsigned *port = arg;

	printf("%s\n", sbx_expose_url(x));
	fflush(stdout);
	if (isatty(2))
		fprintf(stderr, "sbx: port %u of the sandbox is at %s\n", *port, sbx_expose_url(x));
}

static void print_exposure(void *arg, const struct sbx_exposure *e)
{
	printf("%-6u %-28s pid %-8d %s\n", e->guest_port, e->url, (int)e->pid,
	       e->detached ? "background" : "foreground");
}

int cli_expose(struct cli *cli, int argc, char **argv)
{
	enum { O_HOST_PORT = 256, O_BIND, O_STDIO, O_LIST, O_STOP };
	static const struct option opts[] = {
		{ "host-port", required_argument, NULL, O_HOST_PORT },
		{ "bind", required_argument, NULL, O_BIND },
		{ "detach", no_argument, NULL, 'd' },
		{ "stdio", no_argument, NULL, O_STDIO },
		{ "list", no_argument, NULL, O_LIST },
		{ "stop", no_argument, NULL, O_STOP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_expose_req req = { .kind = "http", .announce = announce_url };
	struct cli_net_target t;
	struct sbx_error err;
	bool stdio = false, list = false, stop = false;
	const char *id = NULL;
	unsigned port;
	int opt, npos;

	/* 0, not 1: a full restart of getopt, so that options may follow
	 * the id and the port (sbx's own options were parsed in order). */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "dh", opts, NULL)) != -1) {
		switch (opt) {
		case O_HOST_PORT:
			if (cli_net_port(optarg, true, "host port", &req.host_port) < 0)
				return 2;
			break;
		case O_BIND:
			req.bind = optarg;
			break;
		case 'd':
			req.detach = true;
			break;
		case O_STDIO:
			stdio = true;
			break;
		case O_LIST:
			list = true;
			break;
		case O_STOP:
			stop = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	npos = argc - optind;
	if (list || stop) {
		if (cli->connect || npos != 1) {
			cli_error("--list and --stop take a sandbox id");
			return 2;
		}
		if (cli_net_target(cli, argv[optind], &t) < 0)
			return CLI_FAIL;
		if (list)
			return sbx_expose_list(t.sb.dir, print_exposure, NULL) < 0 ? CLI_FAIL : 0;
		printf("%d stopped\n", sbx_expose_stop_all(t.sb.dir));
		return 0;
	}
	if (npos != (cli->connect ? 1 : 2)) {
		cli_error(cli->connect ? "expose takes a port (see sbx expose --help)" :
			  "expose takes a sandbox id and a port (see sbx expose --help)");
		return 2;
	}
	if (!cli->connect)
		id = argv[optind++];
	if (cli_net_port(argv[optind], false, "port", &port) < 0)
		return 2;
	if (cli_net_target(cli, id, &t) < 0)
		return CLI_FAIL;
	if (stdio) {
		if (sbx_forward_stdio(t.addr, port, &err) < 0) {
			cli_error("%s", err.msg);
			return CLI_FAIL;
		}
		return 0;
	}
	req.t = &t;
	req.guest_port = port;
	req.arg = &port;
	return cli_expose_run(&req);
}
