/* The EXEC operation (docs/PROTOCOL.md, "EXEC"). */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include "conn/conn.h"

/* Takes over connection c for the EXEC request f. */
void exec_start(struct conn *c, const struct frame *f);
/* ATTACH: connects c to a detached command. */
void exec_attach(struct conn *c, const struct frame *f);
/* PS: lists the commands. */
void exec_ps(struct conn *c, const struct frame *f);

#endif
