/* sbx attach, ps: commands started with `sbx exec --detach`, and every
 * other command the agent knows. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/util.h"

int cli_attach(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "interactive", no_argument, NULL, 'i' },
					      { "sig-proxy", no_argument, NULL, 's' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct sbx_exec_opts o = { 0 };
	const char *id = NULL, *pidarg;
	char addr[PATH_MAX + 64];
	bool sig_proxy = false;
	uint64_t pid;
	int opt;

	while ((opt = getopt_long(argc, argv, "+ih", opts, NULL)) != -1) {
		if (opt == 'i') {
			o.stdin_pipe = true;
		} else if (opt == 's') {
			sig_proxy = true;
		} else if (opt == 'h') {
			printf("usage: sbx attach [-i] [--sig-proxy] ID PID\n"
			       "       sbx --connect ADDR attach [-i] [--sig-proxy] PID\n\n"
			       "Attach to a detached command (sbx exec --detach): its output resumes\n"
			       "at the first byte no client has acknowledged, then streams live, and\n"
			       "sbx exits with its status (kept until a client collects it, also when\n"
			       "it ended long ago). -i forwards stdin (to a command started with\n"
			       "sbx exec --detach -i, whose stdin stays open).\n\n"
			       "Leaving does not end the command: Ctrl-C (or SIGTERM, SIGHUP) detaches,\n"
			       "and so does Ctrl-P Ctrl-Q, as with docker attach: on the forwarded\n"
			       "stdin, and when stdin is a terminal anywhere in a line, also without\n"
			       "-i (the terminal is read key by key while attached: no line editing,\n"
			       "Ctrl-Z and Ctrl-Q are plain keys, Ctrl-D ends the input; its settings\n"
			       "come back on every way out). What follows the keys is not sent. sbx\n"
			       "attach then exits 0, and a later sbx attach resumes.\n\n"
			       "      --sig-proxy  forward SIGINT, SIGTERM, SIGHUP and SIGQUIT to the\n"
			       "                   command's process group instead (Ctrl-C interrupts\n"
			       "                   it)\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (argc - optind != (cli->connect ? 1 : 2)) {
		cli_error("attach takes %s (see sbx attach --help)",
			  cli->connect ? "a pid" : "a sandbox id and a pid");
		return 2;
	}
	if (!cli->connect)
		id = argv[optind++];
	pidarg = argv[optind];
	if (str_to_u64(pidarg, 0x7fffffff, &pid) < 0 || pid == 0) {
		cli_error("attach: '%s' is not a pid", pidarg);
		return 2;
	}
	if (cli_target(cli, id, addr, sizeof(addr)) < 0)
		return CLI_FAIL;
	o.attach_pid = (pid_t)pid;
	return cli_exec_attached(addr, &o, sig_proxy);
}

struct ps_ctx {
	bool json;
	unsigned n;
};

static void ps_one(void *arg, const struct ps_entry *p)
{
	struct ps_ctx *ctx = arg;
	static const char *const states[] = { "running", "exited", "killed" };
	const char *state = p->state <= PS_SIGNALED ? states[p->state] : "?";
	time_t t = (time_t)(p->started_ns / NSEC_PER_SEC);
	char when[32];

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	if (ctx->json) {
		printf("%s{\"pid\":%u,\"argv\":", ctx->n ? "," : "", p->pid);
		cli_json_str(stdout, p->argv);
		printf(",\"state\":\"%s\",\"started\":\"%s\",", state, when);
		if (p->state == PS_RUNNING)
			printf("\"status\":null,");
		else if (p->state == PS_EXITED)
			printf("\"status\":%d,", p->status);
		else
			printf("\"status\":%d,\"signal\":%d,", 128 + p->status, p->status);
		printf("\"detached\":%s,\"attached\":%s,\"tty\":%s}",
		       p->flags & PS_F_DETACHED ? "true" : "false",
		       p->flags & PS_F_ATTACHED ? "true" : "false",
		       p->flags & PS_F_PTY ? "true" : "false");
	} else {
		char st[32];

		if (p->state == PS_RUNNING)
			snprintf(st, sizeof(st), "-");
		else if (p->state == PS_EXITED)
			snprintf(st, sizeof(st), "%d", p->status);
		else
			snprintf(st, sizeof(st), "%d (signal %d)", 128 + p->status, p->status);
		printf("%-7u %-8s %-14s %-20s ", p->pid, state, st, when);
		cli_text_str(stdout, p->argv);
		putchar('\n');
	}
	ctx->n++;
}

int cli_ps(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct ps_ctx ctx = { 0 };
	struct sbx_error err;
	char addr[PATH_MAX + 64];
	int opt;

	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			ctx.json = true;
		} else if (opt == 'h') {
			printf("usage: sbx ps [--json] ID\n\n"
			       "List the commands the sandbox's agent knows: running ones, and ended\n"
			       "detached ones whose status nobody collected yet (pid, state, exit\n"
			       "status, start time, command line).\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (argc - optind > 1 || (argc - optind == 1) == !!cli->connect) {
		cli_error("ps takes one sandbox id, or --connect ADDR");
		return 2;
	}
	if (cli_target(cli, cli->connect ? NULL : argv[optind], addr, sizeof(addr)) < 0)
		return CLI_FAIL;
	if (ctx.json)
		printf("[");
	else
		printf("%-7s %-8s %-14s %-20s %s\n", "PID", "STATE", "STATUS", "STARTED", "COMMAND");
	if (sbx_ps(addr, ps_one, &ctx, &err) < 0) {
		if (ctx.json)
			printf("]\n");
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (ctx.json)
		printf("]\n");
	return 0;
}
