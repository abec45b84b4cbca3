/* sbx info: a sandbox's state (id, memory, lifetime, labels, boot timings)
 * and what its agent says about itself; with --connect, the agent only. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "launcher/sandbox.h"
#include "lib/util.h"
#include "libsbx/sbx_net.h"

static void print_exposure(void *arg, const struct sbx_exposure *e)
{
	printf("exposed:    port %u at %s (pid %d%s)\n", e->guest_port, e->url, (int)e->pid,
	       e->detached ? ", background" : "");
}

static void json_exposure(void *arg, const struct sbx_exposure *e)
{
	unsigned *n = arg;

	printf("%s{\"guest_port\":%u,\"url\":", (*n)++ ? "," : "", e->guest_port);
	cli_json_str(stdout, e->url);
	printf(",\"pid\":%d,\"detached\":%s}", (int)e->pid, e->detached ? "true" : "false");
}

static void print_text(const struct sandbox *sb, const struct info *info)
{
	uint64_t now = (uint64_t)time(NULL);

	if (sb) {
		printf("id:         %s\n", sb->id);
		printf("address:    %s\n", sb->addr);
		printf("memory:     %llu MiB\n", (unsigned long long)sb->memory_mib);
		printf("cpus:       %u (%s)\n", sb->cpus, sb->accel);
		printf("age:        %llu s\n", (unsigned long long)(now - sb->created));
		printf("labels:    ");
		for (unsigned i = 0; i < sb->nlabels; i++)
		{
			printf(" %s=", sb->labels[i].key);
			cli_text_str(stdout, sb->labels[i].value);
		}
		printf("\n");
		if (sb->template[0])
			printf("boot:       %llu ms from %s to agent ready as a clone of template %s\n",
			       (unsigned long long)sb->boot_ms,
			       sb->from_spare ? "taking a spare (its QEMU started ahead)" : "QEMU start",
			       sb->template);
		else
			printf("boot:       %llu ms from QEMU start to agent ready; in the guest: agent "
			       "started at %.1f ms, listening at %.1f ms (%.1f ms loading modules), "
			       "ready at %.1f ms\n",
			       (unsigned long long)sb->boot_ms, sb->ready.start_ns / 1e6,
			       sb->ready.listen_ns / 1e6, sb->ready.modules_ns / 1e6,
			       sb->ready.uptime_ns / 1e6);
		printf("pids:       qemu %d, sbx-vsockd %d\n", (int)sb->qemu_pid, (int)sb->vsockd_pid);
		sbx_expose_list(sb->dir, print_exposure, NULL);
		if (!sb->allow_net[0]) {
			printf("allow-net:  none (no network)\n");
		} else {
			printf("allow-net: ");
			for (const char *p = sb->allow_net, *nl; (nl = strchr(p, '\n')); p = nl + 1)
				printf(" %.*s", (int)(nl - p), p);
			printf(" (egress gateway pid %d; sbx logs --net %s)\n", (int)sb->gateway_pid, sb->id);
		}
	}
	if (info->lifetime_kind == LIFE_DURATION) {
		char left[32];

		cli_fmt_duration(left, sizeof(left),
				 (info->lifetime_left_ns + NSEC_PER_SEC / 2) / NSEC_PER_SEC);
		printf("lifetime:   %s left (the guest's CLOCK_BOOTTIME)\n", left);
	}
	else if (info->lifetime_kind == LIFE_SESSION && info->sessions)
		printf("lifetime:   session; %u open\n", info->sessions);
	else if (info->lifetime_kind == LIFE_SESSION)
		printf("lifetime:   session; none open: powers off in %.0f s\n",
		       (double)info->grace_left_ns / 1e9);
	else
		printf("lifetime:   no limit\n");
	printf("commands:   %u\n", info->jobs);
	/* Everything below is the guest's word. */
	printf("agent:      ");
	cli_text_str(stdout, info->version);
	printf("\nhostname:   ");
	cli_text_str(stdout, info->hostname);
	printf("\nkernel:     ");
	cli_text_str(stdout, info->kernel);
	printf("\nuptime:     %.3f s\n", (double)info->uptime_ns / 1e9);
}

static void print_json(const struct sandbox *sb, const struct info *info)
{
	printf("{");
	if (sb) {
		printf("\"id\":");
		cli_json_str(stdout, sb->id);
		printf(",\"address\":");
		cli_json_str(stdout, sb->addr);
		printf(",\"memory_mib\":%llu,\"cpus\":%u,\"accel\":\"%s\",\"created\":%llu,"
		       "\"lifetime_s\":%llu,\"boot_ms\":%llu,\"guest_start_ns\":%llu,"
		       "\"guest_listen_ns\":%llu,\"guest_modules_ns\":%llu,\"guest_ready_ns\":%llu,"
		       "\"qemu_pid\":%d,\"vsockd_pid\":%d,\"labels\":{",
		       (unsigned long long)sb->memory_mib, sb->cpus, sb->accel,
		       (unsigned long long)sb->created, (unsigned long long)sb->lifetime_s,
		       (unsigned long long)sb->boot_ms, (unsigned long long)sb->ready.start_ns,
		       (unsigned long long)sb->ready.listen_ns,
		       (unsigned long long)sb->ready.modules_ns,
		       (unsigned long long)sb->ready.uptime_ns, (int)sb->qemu_pid,
		       (int)sb->vsockd_pid);
		for (unsigned i = 0; i < sb->nlabels; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(stdout, sb->labels[i].key);
			putchar(':');
			cli_json_str(stdout, sb->labels[i].value);
		}
		printf("},\"allow_net\":[");
		for (const char *p = sb->allow_net, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
			char pat[512];

			snprintf(pat, sizeof(pat), "%.*s", (int)(nl - p), p);
			printf("%s", p == sb->allow_net ? "" : ",");
			cli_json_str(stdout, pat);
		}
		printf("],\"gateway_pid\":%d,\"exposures\":[", (int)sb->gateway_pid);
		{
			unsigned n = 0;

			sbx_expose_list(sb->dir, json_exposure, &n);
		}
		printf("],");
	}
	printf("\"agent\":");
	cli_json_str(stdout, info->version);
	printf(",\"hostname\":");
	cli_json_str(stdout, info->hostname);
	printf(",\"kernel\":");
	cli_json_str(stdout, info->kernel);
	printf(",\"uptime_ns\":%llu,\"lifetime\":\"%s\",\"lifetime_left_ns\":%llu,"
	       "\"sessions\":%u,\"grace_left_ns\":%llu,\"commands\":%u}\n",
	       (unsigned long long)info->uptime_ns,
	       info->lifetime_kind == LIFE_DURATION ? "duration" :
	       info->lifetime_kind == LIFE_SESSION ? "session" : "none",
	       (unsigned long long)info->lifetime_left_ns, info->sessions,
	       (unsigned long long)info->grace_left_ns, info->jobs);
}

int cli_info(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct sbx_error err;
	struct sandbox sb;
	struct info info;
	bool json = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		if (opt == 'j') {
			json = true;
		} else if (opt == 'h') {
			printf("usage: sbx info [--json] ID\n"
			       "       sbx --connect ADDR info [--json]\n\n"
			       "Show a sandbox: memory, lifetime, labels, boot timings, and what its\n"
			       "agent reports (version, host name, kernel, uptime).\n");
			return 0;
		} else {
			return 2;
		}
	}
	if (argc - optind > 1 || (argc - optind == 1) == !!cli->connect) {
		cli_error("info takes one sandbox id, or --connect ADDR");
		return 2;
	}
	if (!cli->connect && sandbox_load(argv[optind], &sb, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (sbx_info(cli->connect ? cli->connect : sb.addr, &info, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (json)
		print_json(cli->connect ? NULL : &sb, &info);
	else
		print_text(cli->connect ? NULL : &sb, &info);
	return 0;
}
