/* Operations on the sandbox as a whole: INFO, SHUTDOWN, SESSION, EXTEND,
 * SET_TIME and ENV (docs/PROTOCOL.md). The lifetime itself is kept by
 * PID 1; this side keeps PID 1's latest word on it and the count of open
 * sessions, which it reports back. */
#ifndef SBX_CONTROL_H
#define SBX_CONTROL_H

#include "conn/conn.h"
#include "lib/ctl.h"

/* Loads the environment store. */
void control_init(void);
/* Writes the labels file for workloads (/run/sbx/labels in a VM): the
 * server's after READY, before it reads its first request. */
void control_write_labels(void);
/* A message from PID 1 about the lifetime. */
void control_from_init(const struct ctl_msg *m);

int control_info(struct conn *c, const struct frame *f, struct proto_err *e);
int control_shutdown(struct conn *c, const struct frame *f, struct proto_err *e);
int control_session(struct conn *c, const struct frame *f, struct proto_err *e);
int control_extend(struct conn *c, const struct frame *f, struct proto_err *e);
int control_set_time(struct conn *c, const struct frame *f, struct proto_err *e);
int control_env(struct conn *c, const struct frame *f, struct proto_err *e);
int control_freeze(struct conn *c, const struct frame *f, struct proto_err *e);
/* IDENTITY: a template's clone takes its own configuration. */
int control_identity(struct conn *c, const struct frame *f, struct proto_err *e);

#endif
