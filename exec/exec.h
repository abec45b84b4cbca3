/* The EXEC operation (docs/PROTOCOL.md, "EXEC"). */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include "server/conn.h"

/* Takes over connection c for the EXEC request f. */
void exec_start(struct conn *c, const struct frame *f);

#endif
