/* sbx cp: see docs/protocol/files.md. */
#include "host/cli.h"

int cli_cp(struct cli *cli, int argc, char **argv)
{
	cli_error("cp is not implemented yet");
	return CLI_FAIL;
}
