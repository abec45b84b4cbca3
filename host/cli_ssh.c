/* sbx ssh: see docs/protocol/net.md. */
#include "host/cli.h"

int cli_ssh(struct cli *cli, int argc, char **argv)
{
	cli_error("ssh is not implemented yet");
	return CLI_FAIL;
}
