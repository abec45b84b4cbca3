/* The EXEC operation (docs/PROTOCOL.md, "EXEC"). */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include "conn/conn.h"

/* Takes over connection c for the EXEC request f. */
int exec_start(struct conn *c, const struct frame *f, struct proto_err *e);
/* ATTACH: connects c to a detached command. */
int exec_attach(struct conn *c, const struct frame *f, struct proto_err *e);
/* PS: lists the commands. */
int exec_ps(struct conn *c, const struct frame *f, struct proto_err *e);

#endif
