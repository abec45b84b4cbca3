/* A small QMP client (QEMU's JSON control protocol on a Unix socket), for
 * what sbx pause and resume ask a running QEMU: unplug and plug a device,
 * migrate to a file, query the state, quit. One command at a time;
 * events read while waiting are kept only as far as qmp_wait_event needs. */
#ifndef SBX_QMP_H
#define SBX_QMP_H

#include <jansson.h>

#include "libsbx/sbx.h"

struct qmp {
	int fd;
	char buf[65536];       /* a QMP message is one line; bigger ones are refused */
	size_t have;
	char seen[8][32];      /* names of events that arrived during a command */
	unsigned nseen;
};

/* Connects to the socket, reads the greeting, negotiates capabilities;
 * gives up after timeout_ms. */
int qmp_open(struct qmp *q, const char *path, int timeout_ms, struct sbx_error *err);
void qmp_close(struct qmp *q);

/* Runs one command (args may be NULL; it is not consumed). On success,
 * *ret (when not NULL) holds the "return" value, to json_decref. An
 * "error" answer fails with its description. */
int qmp_run(struct qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
	    struct sbx_error *err);

/* Hands QEMU descriptor fd under `name` (getfd, the descriptor passed
 * with SCM_RIGHTS), for a command that takes "fd:name" (migrate-incoming). */
int qmp_send_fd(struct qmp *q, const char *name, int fd, int timeout_ms, struct sbx_error *err);

/* Waits for the event `name` (or finds it among those seen meanwhile). */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct sbx_error *err);

#endif
