/* The control channel between PID 1 and its server process: a
 * SOCK_SEQPACKET socketpair (the server's end is fd SERVER_CTL_FD) carrying
 * fixed-size messages, checked for exact size by the receiver, some with
 * file descriptors attached (SCM_RIGHTS). This is the only input PID 1
 * reads after boot, and it comes from its own child, never from the
 * network: the server turns client requests into these. */
#ifndef SBX_CTL_H
#define SBX_CTL_H

#include <stdint.h>

/* The fds PID 1 hands its server: the listening socket (created by PID 1,
 * so it survives the server's restarts) and the server's end of this
 * channel. */
#define SERVER_LISTEN_FD 3
#define SERVER_CTL_FD 4
/* A VM's configuration file (with the sandbox's token), which PID 1 keeps
 * open: the server reads it through SERVER_CONFIG_PATH (--config-fd) and
 * closes it at once, so that no command it spawns can inherit it. */
#define SERVER_CONFIG_FD 5
#define SERVER_CONFIG_PATH "/proc/self/fd/5"
/* A directory of the sandbox's writable disk (its file system), when the
 * root is an image's overlay: what FREEZE freezes (server/control.c). */
#define SERVER_UPPER_FD 6
/* The workloads' PID namespace (init/workns.h), in a VM: commands are
 * spawned into it (exec/spawn.c). */
#define SERVER_WORKNS_FD 7
/* The file system freeze ioctls of linux/fs.h (which clashes with
 * sys/mount.h): FIFREEZE syncs and blocks writers, FITHAW lets them go. */
#ifndef FIFREEZE
#define FIFREEZE _IOWR('X', 119, int)
#define FITHAW _IOWR('X', 120, int)
#endif
#define CTL_TEXT_MAX 256
#define CTL_FDS_MAX 4

enum ctl_type {
	CTL_SHUTDOWN = 1,  /* server -> PID 1: power off now; text = reason */
	CTL_STOPPING,      /* PID 1 -> server: shutting down; text = reason */
	/* PID 1 holds every job's fds so that a job survives a restart of
	 * the server (docs/PROTOCOL.md, "What survives a server restart"). */
	CTL_JOB_HOLD,      /* server -> PID 1: arg pid, flags JOBF_*, arg2 start time,
			    * arg5 its pid in the workloads' PID namespace,
			    * text argv; fds out, err, out ring, err ring as
			    * flags say */
	CTL_JOB_STATUS,    /* both ways: arg pid, arg2 wait status */
	CTL_JOB_DONE,      /* server -> PID 1: arg pid: forget it */
	CTL_RESTORE_NEXT,  /* server -> PID 1: send the held job after slot arg */
	CTL_JOB_RESTORE,   /* PID 1 -> server: as HOLD, arg3 its slot, arg4 status */
	CTL_RESTORE_END,   /* PID 1 -> server: no more */
	/* The lifetime is kept by PID 1 (docs/PROTOCOL.md, "Lifetime"). */
	CTL_SESSIONS,      /* server -> PID 1: arg = open session connections */
	CTL_EXTEND,        /* server -> PID 1: arg = seconds to add */
	CTL_SET_LEFT,      /* server -> PID 1: arg = ns of lifetime left from now */
	CTL_LIFETIME,      /* PID 1 -> server: flags LIFE_*, arg = deadline on
			    * CLOCK_BOOTTIME in ns (0: none), arg2 = grace
			    * deadline (0: none), arg3 = -errno of a refused
			    * EXTEND/SET_LEFT or 0, text = why */
	/* A template's clone takes its identity (server/control.c, IDENTITY). */
	CTL_IDENTITY,      /* server -> PID 1: flags LIFE_*, arg = lifetime s, arg2 =
			    * session grace s (0: as before); fd: the new
			    * configuration, a sealed memfd; answered with
			    * CTL_LIFETIME */
	CTL_READY,         /* server -> PID 1: it is set up and has told the
			    * host (init/pid1.c loads the late modules) */
	CTL_TYPE_MAX = CTL_READY,
};

#define JOBF_KEEP 0x1u
#define JOBF_PTY 0x2u
#define JOBF_OUT 0x4u
#define JOBF_ERR 0x8u
#define JOBF_EXITED 0x20u
#define JOBF_OUT_RING 0x40u
#define JOBF_ERR_RING 0x80u

struct ctl_msg {
	uint32_t type;
	uint32_t flags;
	int64_t arg;
	int64_t arg2;
	int64_t arg3;
	int64_t arg4;
	int64_t arg5;
	char text[CTL_TEXT_MAX]; /* NUL-terminated */
};

/* Sends one message with nfds fds attached (non-blocking); 0 or -errno. */
int ctl_send_msg(int fd, const struct ctl_msg *m, const int *fds, int nfds);
/* Sends a message with no fds. */
int ctl_send(int fd, uint32_t type, int64_t arg, const char *text);
/* Receives one message; fds (room for CTL_FDS_MAX, close-on-exec) and
 * *nfds get the attached fds. 1 when one came, 0 when none is waiting,
 * -EPIPE when the peer is gone, -EBADMSG for a message of the wrong size
 * or type or with fds it should not carry (it is dropped, its fds
 * closed). */
int ctl_recv(int fd, struct ctl_msg *m, int *fds, int *nfds);

#endif
