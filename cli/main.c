/* sbx: the host command line. Global options, then one subcommand; each
 * subcommand lives in cli/cli_<name>.c. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "launcher/sandbox.h"
#include "lib/log.h"
#include "lib/util.h"
#include "serve/serve.h"

static int cli_serve(struct cli *cli, int argc, char **argv)
{
	return serve_main(argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *help;
} commands[] = {
	{ "create", cli_create, "boot a sandbox and print its id" },
	{ "run", cli_run, "create a sandbox, run a command in it, destroy it" },
	{ "exec", cli_exec, "run a command in a sandbox" },
	{ "attach", cli_attach, "attach to a detached command" },
	{ "ps", cli_ps, "list a sandbox's commands" },
	{ "env", cli_env, "show or change a sandbox's environment" },
	{ "cp", cli_cp, "copy files and directories in and out of a sandbox" },
	{ "fs", cli_fs, "file-system operations in a sandbox (ls, stat, cat, mkdir, ...)" },
	{ "expose", cli_expose, "reach a TCP port of a sandbox from the host" },
	{ "ssh", cli_ssh, "log in to a sandbox with SSH" },
	{ "ls", cli_ls, "list sandboxes" },
	{ "info", cli_info, "show a sandbox (or the agent at --connect)" },
	{ "logs", cli_logs, "print a sandbox's guest console" },
	{ "connect", cli_connect, "open a session on a sandbox and hold it" },
	{ "close", cli_close, "end the sessions held on a sandbox" },
	{ "extend", cli_extend, "add time to a sandbox's lifetime" },
	{ "clock", cli_clock, "set a sandbox's clock (and lifetime left)" },
	{ "kill", cli_kill, "power a sandbox off now" },
	{ "pause", cli_pause, "save a sandbox to disk and stop it (created --pausable)" },
	{ "resume", cli_pause, "bring a paused sandbox back" },
	{ "image", cli_image, "list, import and remove images" },
	{ "volume", cli_volume, "create, list and remove volumes" },
	{ "snapshot", cli_snapshot, "turn a sandbox's disk into an image" },
	{ "template", cli_template, "warm snapshots new sandboxes start from" },
	{ "serve", cli_serve, "serve the @deno/sandbox SDK (HTTP/WebSocket)" },
	{ "gateway", cli_gateway, NULL }, /* hidden: started by create --allow-net */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx [--connect ADDR] COMMAND [ARGS...]\n"
		"\n"
		"Drive sbx sandboxes: Linux microVMs with the sbx-init agent as PID 1.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].help)
			fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(out,
		"\n"
		"Options:\n"
		"  --connect ADDR  talk to the agent at ADDR instead of a sandbox by id:\n"
		"                  unix:PATH          an agent in development mode\n"
		"                  vsock:CID:PORT     AF_VSOCK (hosts with vhost-vsock)\n"
		"                  hybrid:PATH:PORT   a Firecracker-style vsock socket\n"
		"                  ($SBX_CONNECT does the same)\n"
		"                  ($SBX_TOKEN: the agent's token, if it has one)\n"
		"  --help          this text; `sbx COMMAND --help` for a command\n"
		"\n"
		"Exit status: a command's own status (128+N when it died of signal N),\n"
		"126/127 when it could not be started, 125 when sbx itself failed, and 2\n"
		"for a usage error (an unknown option, a bad value of any option).\n");
}

void cli_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sbx: %s\n", msg);
}

int cli_target(const struct cli *cli, const char *id, char *addr, size_t n)
{
	if (id && cli->connect) {
		cli_error("give either a sandbox id or --connect, not both");
		return -EINVAL;
	}
	if (cli->connect) {
		if (str_copy(addr, n, cli->connect) < 0) {
			cli_error("address too long: %s", cli->connect);
			return -ENAMETOOLONG;
		}
		return 0;
	}
	if (!id) {
		cli_error("no sandbox given: name one by id, or use --connect ADDR");
		return -EINVAL;
	}
	{
		struct sbx_error err;
		struct sandbox sb;

		if (sandbox_load(id, &sb, &err) < 0) {
			cli_error("%s", err.msg);
			return -err.code;
		}
		if (str_copy(addr, n, sb.addr) < 0) {
			cli_error("address too long: %s", sb.addr);
			return -ENAMETOOLONG;
		}
	}
	return 0;
}

void cli_fmt_duration(char *out, size_t n, uint64_t s)
{
	if (s >= 3600)
		snprintf(out, n, "%lluh%02llum", (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(out, n, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else
		snprintf(out, n, "%llus", (unsigned long long)s);
}

static int text_escape = -1; /* -1: not decided yet */

void cli_text_raw(bool raw)
{
	text_escape = raw ? 0 : -1;
}

void cli_text(FILE *f, const char *s, size_t len, bool keep_lines)
{
	if (text_escape < 0)
		text_escape = isatty(fileno(f));
	if (!text_escape) {
		fwrite(s, 1, len, f);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (keep_lines && (c == '\n' || c == '\t')) {
			fputc(c, f);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\x%02x", c);
		} else if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
			   (unsigned char)s[i + 1] <= 0x9f) {
			fprintf(f, "\\xc2\\x%02x", (unsigned char)s[++i]); /* a C1 control */
		} else {
			fputc(c, f);
		}
	}
}

void cli_text_str(FILE *f, const char *s)
{
	cli_text(f, s, strlen(s), false);
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .connect = getenv("SBX_CONNECT") };
	int opt;

	log_set_prog("sbx");
	/* A token for --connect; sandboxes by id bring their own. */
	sbx_set_token(getenv("SBX_TOKEN"));
	if (cli.connect && !*cli.connect)
		cli.connect = NULL;
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cli.connect = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[optind], commands[i].name) == 0) {
			argv += optind;
			argc -= optind;
			optind = 0; /* a full reset: the subcommand's own option string decides whether options may follow its operands (optind = 1 kept main's "+") */
			return commands[i].fn(&cli, argc, argv);
		}
	cli_error("unknown command '%s' (see sbx --help)", argv[optind]);
	return 2;
}
