/* sbx fs: see docs/protocol/files.md. */
#include "host/cli.h"

int cli_fs(struct cli *cli, int argc, char **argv)
{
	cli_error("fs is not implemented yet");
	return CLI_FAIL;
}
