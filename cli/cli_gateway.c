/* sbx gateway: the egress gateway of one sandbox (gateway/gateway.c). Hidden
 * from `sbx --help`: `sbx create --allow-net` starts it, and the
 * integration tests drive it directly over its Unix socket. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "gateway/secrets.h"
#include "gateway/tls.h"
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
	"  --connect-timeout MS per address (default 10000)\n"
	"  --secrets-fd N       read the sandbox's secrets and CA from fd N (sbx create\n"
	"                       --secret; docs/protocol/secrets.md)\n"
	"  --secret N=HOSTS:V   for tests: a secret given here (repeatable), with a\n"
	"                       CA made at start whose certificate goes to --ca-out\n"
	"  --ca-out FILE        where --secret writes the CA certificate\n";

static int fs_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f || fputs(text, f) < 0) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) < 0 ? -1 : 0;
}

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
		{ "secrets-fd", required_argument, NULL, 'S' },
		{ "secret", required_argument, NULL, 's' },
		{ "ca-out", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct allow_rule rules[ALLOW_RULES_MAX];
	static struct gateway_resolve resolves[GATEWAY_RESOLVE_MAX];
	struct gateway_opts o = { .ready_fd = -1 };
	char err[512];
	uint64_t v;
	const char *specs[SECRETS_MAX + 1], *ca_out = NULL;
	size_t nspecs = 0;
	int c, secrets_fd = -1;

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
		case 'S':
			if (str_to_u64(optarg, c == 't' ? 600000 : 1u << 30, &v) < 0) {
				cli_error("%s: not a number", optarg);
				return 2;
			}
			if (c == 'p')
				o.watch_pid = (pid_t)v;
			else if (c == 'r')
				o.ready_fd = (int)v;
			else if (c == 'S')
				secrets_fd = (int)v;
			else
				o.connect_timeout_ms = (unsigned)v;
			break;
		case 's':
			if (nspecs == SECRETS_MAX) {
				cli_error("at most %d --secret options", SECRETS_MAX);
				return 2;
			}
			specs[nspecs++] = optarg;
			break;
		case 'C':
			ca_out = optarg;
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
	if (secrets_fd >= 0 || nspecs) {
		secrets_gateway = calloc(1, sizeof(*secrets_gateway));
		if (!secrets_gateway) {
			cli_error("out of memory");
			return 1;
		}
		if (secrets_fd >= 0 && secrets_read(secrets_fd, secrets_gateway, err,
						    sizeof(err)) < 0) {
			cli_error("%s", err);
			return 1;
		}
		if (secrets_fd >= 0)
			close(secrets_fd);
		for (size_t i = 0; i < nspecs; i++)
			if (secrets_add(secrets_gateway, specs[i], err, sizeof(err)) < 0) {
				cli_error("%s", err);
				return 2;
			}
		if (nspecs && (secrets_make_ca(secrets_gateway, "test", 86400, err,
					       sizeof(err)) < 0 ||
			       !ca_out || fs_write_text(ca_out, secrets_gateway->ca_cert) < 0)) {
			cli_error("--secret: %s", !ca_out ? "needs --ca-out" : err);
			return 1;
		}
		for (size_t i = 0; i < nspecs; i++)
			printf("%s=%s\n", secrets_gateway->s[i].name, secrets_gateway->s[i].standin);
		fflush(stdout);
		if (tls_init(secrets_gateway) < 0)
			return 1;
	}
	return gateway_run(&o) < 0 ? 1 : 0;
}
