/* The control channel between PID 1 and its server process: a
 * SOCK_SEQPACKET socketpair (the server's end is fd SERVER_CTL_FD) carrying
 * fixed-size messages, checked for exact size by the receiver. This is the
 * only input PID 1 reads after boot, and it comes from its own child, never
 * from the network: the server turns client requests into these. */
#ifndef SBX_CTL_H
#define SBX_CTL_H

#include <stdint.h>

#define SERVER_CTL_FD 4
#define CTL_TEXT_MAX 64

enum ctl_type {
	CTL_SHUTDOWN = 1, /* server -> PID 1: power off now; text = reason */
	CTL_STOPPING,     /* PID 1 -> server: shutting down; text = reason */
};

struct ctl_msg {
	uint32_t type;
	uint32_t reserved;
	int64_t arg;
	char text[CTL_TEXT_MAX]; /* NUL-terminated */
};

/* Sends one message (non-blocking); 0 or -errno. */
int ctl_send(int fd, uint32_t type, int64_t arg, const char *text);
/* Receives one message; 1 when one came, 0 when none is waiting, -EPIPE
 * when the peer is gone, -EBADMSG for a message of the wrong size or
 * type (it is dropped). */
int ctl_recv(int fd, struct ctl_msg *m);

#endif
