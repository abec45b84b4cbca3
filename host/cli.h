/* The sbx command line: shared pieces of the subcommands (host/cli_*.c). */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <stddef.h>

#include "host/sbx.h"

/* Exit status when sbx itself failed (cannot connect, protocol error). */
#define CLI_FAIL 125

struct cli {
	const char *connect; /* --connect ADDR, or $SBX_CONNECT */
};

/* Prints "sbx: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The agent address for a subcommand: --connect/$SBX_CONNECT, or the
 * sandbox `id`. Returns 0, or -errno after printing why. */
int cli_target(const struct cli *cli, const char *id, char *addr, size_t n);

int cli_exec(struct cli *cli, int argc, char **argv);
int cli_info(struct cli *cli, int argc, char **argv);

#endif
