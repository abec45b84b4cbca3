/* sbx-vsockd's event loop: owns the listening sockets, the vhost-user
 * connection and the vsock device, and runs until the VM goes away. */
#ifndef SBX_VSOCKD_VSOCKD_H
#define SBX_VSOCKD_VSOCKD_H

#include <stdint.h>

struct vsockd_opts {
	const char *vhost_path;	/* QEMU connects here (vhost-user) */
	const char *uds_path;	/* host clients connect here (hybrid vsock) */
	uint64_t guest_cid;
	int ready_fd;		/* -1, or gets one byte once both sockets listen */
};

/* Returns the process exit status: 0 when QEMU disconnected or a signal
 * asked us to stop, 1 on a setup or protocol error. */
int vsockd_run(const struct vsockd_opts *opts);

#endif
