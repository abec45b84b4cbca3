/* sbx info: what runs at the other end of an address. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "host/cli.h"
#include "lib/util.h"

int cli_info(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct info info;
	char addr[256];
	const char *id = NULL;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: sbx [--connect ADDR] info [ID]\n\n"
		       "Show the agent's version, the guest's host name, kernel and uptime.\n");
		return 0;
	}
	if (argc > 2) {
		cli_error("info takes at most one sandbox id");
		return 2;
	}
	if (argc == 2)
		id = argv[1];
	if (cli_target(cli, id, addr, sizeof(addr)) < 0)
		return CLI_FAIL;
	if (sbx_info(addr, &info, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	printf("agent:    %s\nhostname: %s\nkernel:   %s\nuptime:   %.3f s\npid1:     %s\n",
	       info.version, info.hostname, info.kernel, (double)info.uptime_ns / 1e9,
	       info.pid1 ? "yes" : "no");
	return 0;
}
