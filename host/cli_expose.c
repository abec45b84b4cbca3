/* sbx expose: see docs/protocol/net.md. */
#include "host/cli.h"

int cli_expose(struct cli *cli, int argc, char **argv)
{
	cli_error("expose is not implemented yet");
	return CLI_FAIL;
}
