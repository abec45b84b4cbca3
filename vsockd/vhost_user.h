/* The vhost-user back-end side (QEMU docs/interop/vhost-user.rst): one
 * connection from the front-end (QEMU), its guest memory table and vring
 * setup, feeding the virtqueues of the vsock device. */
#ifndef SBX_VSOCKD_VHOST_USER_H
#define SBX_VSOCKD_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "vsockd/vsock.h"

struct vu_ring {
	unsigned num;
	uint64_t desc_uva, avail_uva, used_uva;
	bool addr_set;
	uint16_t base;
	int kick_fd;
	bool enabled;
	bool started;
};

struct vhost_user {
	int fd;				/* the front-end connection */
	int epfd;			/* kick fds are added here (VSOCKD_TAG_KICK) */
	struct vsock_dev *dev;
	uint64_t features;		/* acked by SET_FEATURES */
	uint64_t protocol_features;	/* acked by SET_PROTOCOL_FEATURES */
	struct vq_mem mem;
	void *map[VQ_MEM_MAX_REGIONS];
	size_t map_len[VQ_MEM_MAX_REGIONS];
	struct vu_ring ring[VSOCK_QUEUES];
};

void vhost_user_init(struct vhost_user *vu, int fd, int epfd, struct vsock_dev *dev);
/* Reads and answers one message. Returns 0, or -errno when the connection
 * is over (-ECONNRESET: the front-end hung up). */
int vhost_user_handle(struct vhost_user *vu);
/* Drains ring q's kick eventfd. */
void vhost_user_kick(struct vhost_user *vu, unsigned q);
/* Unmaps memory, closes fds. */
void vhost_user_fini(struct vhost_user *vu);

#endif
