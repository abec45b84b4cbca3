/* The agent's server process: what operations need from it. */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H

#include <stdbool.h>

#include "lib/config.h"

/* `sbx-init --server`: serve the listening socket on fd SERVER_LISTEN_FD
 * (created by PID 1, so it survives our restarts) until SIGTERM. */
#define SERVER_LISTEN_FD 3
int server_main(int argc, char **argv);

/* The sandbox configuration (read-only for operations). */
const struct config *server_config(void);
/* Asks PID 1 to power the sandbox off (reason: a short text). */
int server_request_shutdown(const char *reason);
/* An O_RDWR fd on /dev/null, shared by all operations. */
int server_devnull(void);
/* True when the agent is the init of a VM or of a PID namespace. */
bool server_under_pid1(void);

#endif
