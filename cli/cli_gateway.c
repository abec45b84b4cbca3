/* sbx gateway: the egress gateway of one sandbox (gateway/gateway.c). Hidden
 * from `sbx --help`: `sbx create --allow-net` starts it, and the
 * integration tests drive it directly over its Unix socket. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "lib/log.h"
#include "lib/util.h"

static const char usage_text[] =
	"usage: sbx gateway --listen PATH --audit FILE [OPTIONS]\n\n"
	"The egress gateway of a sandbox: reads one request per connection\n"
	"(\"CONNECT HOST PORT\\n\"), decides it against the allow list, answers\n"
	"\"OK ADDR:PORT\\n\" and relays, or \"ERR CODE REASON\\n\" and closes.\n"
	"See docs/protocol/egress.md.\n\n"
	"  --listen PATH        the Unix socket to listen on\n"
	"  --audit FILE         the audit log (appended to)\n"
	"  --allow PATTERN      an allow-list pattern (repeatable)\n"
	"  --resolve NAME=ADDR  for tests: NAME resolves to ADDR, not through DNS\n"
	"                       (repeatable; several for one name are tried in order)\n"
	"  --watch-pid PID      exit when PID ends\n"
	"  --ready-fd N         write one byte to fd N once listening\n"
	"  --connect-timeout MS per address (default 10000)\n";

int cli_gateway(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "audit", required_argument, NULL, 'a' },
		{ "allow", required_argument, NULL, 'A' },
		{ "resolve", required_argument, NULL, 'R' },
		{ "watch-pid", required_argument, NULL, 'p' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct allow_rule rules[ALLOW_RULES_MAX];
	static struct gateway_resolve resolves[GATEWAY_RESOLVE_MAX];
	struct gateway_opts o = { .ready_fd = -1 };
	char err[512];
	uint64_t v;
	int c;

	log_set_prog("sbx gateway");
	o.rules = rules;
	o.resolves = resolves;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o.listen = optarg;
			break;
		case 'a':
			o.audit = optarg;
			break;
		case 'A':
			if (o.nrules == ALLOW_RULES_MAX) {
				cli_error("at most %d --allow patterns", ALLOW_RULES_MAX);
				return 2;
			}
			if (allow_parse(optarg, &rules[o.nrules], err, sizeof(err)) < 0) {
				cli_error("%s", err);
				return 2;
			}
			o.nrules++;
			break;
		case 'R':
			if (o.nresolves == GATEWAY_RESOLVE_MAX) {
				cli_error("at most %d --resolve entries", GATEWAY_RESOLVE_MAX);
				return 2;
			}
			if (gateway_parse_resolve(optarg, &resolves[o.nresolves], err, sizeof(err)) < 0) {
				cli_error("%s", err);
				return 2;
			}
			o.nresolves++;
			break;
		case 'p':
		case 'r':
		case 't':
			if (str_to_u64(optarg, c == 't' ? 600000 : 1u << 30, &v) < 0) {
				cli_error("%s: not a number", optarg);
				return 2;
			}
			if (c == 'p')
				o.watch_pid = (pid_t)v;
			else if (c == 'r')
				o.ready_fd = (int)v;
			else
				o.connect_timeout_ms = (unsigned)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (!o.listen || !o.audit || optind < argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	return gateway_run(&o) < 0 ? 1 : 0;
}
