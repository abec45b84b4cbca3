/* sbx-init: one static binary, two roles. Started by the kernel (or with
 * --listen) it is PID 1; PID 1 re-executes it with --server to run the
 * server process. */
#include <string.h>

#include "init/pid1.h"
#include "server/server.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--server") == 0)
		return server_main(argc, argv);
	return init_main(argc, argv);
}
