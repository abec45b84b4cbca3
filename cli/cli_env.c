/* sbx env: the sandbox-wide environment that commands started afterwards
 * get (it survives a restart of the agent's server). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct get_ctx {
	const char *name;
	bool found;
};

static void print_entry(void *arg, const char *entry)
{
	printf("%s\n", entry);
}

static void get_entry(void *arg, const char *entry)
{
	struct get_ctx *g = arg;
	size_t n = strlen(g->name);

	if (!strncmp(entry, g->name, n) && entry[n] == '=') {
		printf("%s\n", entry + n + 1);
		g->found = true;
	}
}

int cli_env(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	char addr[PATH_MAX + 64];
	const char *id = NULL, *verb;
	int i = 1, r;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: sbx env ID list | get NAME | set NAME=VALUE... | unset NAME...\n"
			"       sbx --connect ADDR env list | ...\n\n"
			"Show or change the sandbox environment: what commands started from now\n"
			"on begin with (before their own --env). It starts as the --env of sbx\n"
			"create and survives a restart of the agent's server.\n");
		return argc < 2 ? 2 : 0;
	}
	if (!cli->connect)
		id = argv[i++];
	if (i >= argc) {
		cli_error("env: list, get, set or unset?");
		return 2;
	}
	verb = argv[i++];
	if (cli_target(cli, id, addr, sizeof(addr)) < 0)
		return CLI_FAIL;
	if (!strcmp(verb, "list") && i == argc) {
		r = sbx_env_list(addr, print_entry, NULL, &err);
	} else if (!strcmp(verb, "get") && i == argc - 1) {
		struct get_ctx g = { .name = argv[i] };

		r = sbx_env_list(addr, get_entry, &g, &err);
		if (r == 0 && !g.found)
			return 1;
	} else if (!strcmp(verb, "set") && i < argc) {
		for (int k = i; k < argc; k++)
			if (!strchr(argv[k], '=')) {
				cli_error("env set %s: expected NAME=VALUE", argv[k]);
				return 2;
			}
		r = sbx_env_set(addr, (const char *const *)&argv[i], &err);
	} else if (!strcmp(verb, "unset") && i < argc) {
		r = sbx_env_unset(addr, (const char *const *)&argv[i], &err);
	} else {
		cli_error("env: expected list, get NAME, set NAME=VALUE... or unset NAME...");
		return 2;
	}
	if (r < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return 0;
}
