/* vhost-user back-end for the vsock device. Section names in comments refer
 * to QEMU's docs/interop/vhost-user.rst. Messages are small and QEMU sends
 * each in one piece and waits for our answer, so this side reads them with
 * blocking calls (bounded by a receive timeout) from the event loop. */
#include "vsockd/vhost_user.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"

/* "Message types" */
enum {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_RESET_OWNER = 4,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_LOG_BASE = 6,
	VHOST_USER_SET_LOG_FD = 7,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_SET_CONFIG = 25,
	VHOST_USER_RESET_DEVICE = 34,
};

#define VHOST_USER_VERSION 0x1
#define VHOST_USER_FLAG_REPLY (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_USER_PROTOCOL_F_REPLY_ACK 3
#define VHOST_USER_PROTOCOL_F_CONFIG 9
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD (1u << 8)
#define VHOST_USER_PAYLOAD_MAX 4096
#define VIRTIO_F_VERSION_1 32

/* What we offer: virtio 1.x rings with event index and indirect tables. */
static const uint64_t vu_features = (1ull << VIRTIO_F_VERSION_1) |
				    (1ull << VIRTIO_RING_F_EVENT_IDX) |
				    (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
				    (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
static const uint64_t vu_protocol_features = (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
					     (1ull << VHOST_USER_PROTOCOL_F_CONFIG);

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region region[VQ_MEM_MAX_REGIONS];
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[256];
};

/* The wire header is 12 bytes; the payload follows it directly there but
 * is kept 8-byte aligned here (pad), so it is read and sent separately. */
struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint32_t pad;
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_mem_table mem;
		struct vu_config config;
		uint8_t raw[VHOST_USER_PAYLOAD_MAX];
	};
};

#define VU_HDR_LEN 12u

void vhost_user_init(struct vhost_user *vu, int fd, int epfd, struct vsock_dev *dev)
{
	memset(vu, 0, sizeof(*vu));
	vu->fd = fd;
	vu->epfd = epfd;
	vu->dev = dev;
	for (unsigned q = 0; q < VSOCK_QUEUES; q++)
		vu->ring[q].kick_fd = -1;
}

static void vu_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static int vu_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Header and fds come in one recvmsg ("Communication"), the payload after. */
static int vu_msg_read(int fd, struct vu_msg *m, int *fds, unsigned *nfds)
{
	char cbuf[CMSG_SPACE(VQ_MEM_MAX_REGIONS * sizeof(int))];
	struct iovec iov = { m, VU_HDR_LEN };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n;
	int r;

	*nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			unsigned k = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			if (k > VQ_MEM_MAX_REGIONS - *nfds)
				k = VQ_MEM_MAX_REGIONS - *nfds;
			memcpy(fds + *nfds, CMSG_DATA(cm), k * sizeof(int));
			*nfds += k;
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		log_warn(0, "vhost-user message %u carried too many fds", m->request);
		r = -EPROTO;
		goto out_fds;
	}
	if ((size_t)n < VU_HDR_LEN) {
		r = vu_read_full(fd, (char *)m + n, VU_HDR_LEN - (size_t)n);
		if (r)
			goto out_fds;
	}
	if ((m->flags & 3) != VHOST_USER_VERSION || m->size > VHOST_USER_PAYLOAD_MAX) {
		log_warn(0, "bad vhost-user message header (request %u, flags %#x, size %u)",
			 m->request, m->flags, m->size);
		r = -EPROTO;
		goto out_fds;
	}
	r = vu_read_full(fd, m->raw, m->size);
	if (r)
		goto out_fds;
	return 0;
out_fds:
	vu_close_fds(fds, *nfds);
	*nfds = 0;
	return r;
}

static int vu_reply(struct vhost_user *vu, struct vu_msg *m, uint32_t size)
{
	struct iovec iov[2] = { { m, VU_HDR_LEN }, { m->raw, size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	m->flags = VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY;
	m->size = size;
	do
		n = sendmsg(vu->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* a reply is at most a few hundred bytes: a short send means trouble */
	return (size_t)n == VU_HDR_LEN + size ? 0 : -EIO;
}

static void vu_unmap(struct vhost_user *vu)
{
	for (unsigned i = 0; i < VQ_MEM_MAX_REGIONS; i++) {
		if (vu->map[i])
			munmap(vu->map[i], vu->map_len[i]);
		vu->map[i] = NULL;
	}
	vu->mem.nregions = 0;
}

/* Maps ring q into the device once everything it needs has arrived
 * ("Starting and stopping rings"): with protocol features negotiated a
 * ring also waits for SET_VRING_ENABLE. */
static int vu_ring_try_start(struct vhost_user *vu, unsigned q)
{
	struct vu_ring *r = &vu->ring[q];
	struct virtq *vq = &vu->dev->vq[q];
	bool need_enable = vu->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
	void *desc, *avail, *used;
	int err;

	if (r->started || r->kick_fd < 0 || !r->addr_set || !r->num || !vu->mem.nregions ||
	    (need_enable && !r->enabled))
		return 0;
	desc = vq_mem_uva(&vu->mem, r->desc_uva, 16ull * r->num);
	avail = vq_mem_uva(&vu->mem, r->avail_uva, 6 + 2ull * r->num);
	used = vq_mem_uva(&vu->mem, r->used_uva, 6 + 8ull * r->num);
	vq->event_idx = vu->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = vu->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	err = virtq_setup(vq, &vu->mem, r->num, desc, avail, used, r->base);
	if (err) {
		log_warn(err, "unable to start vring %u (size %u)", q, r->num);
		return err;
	}
	r->started = true;
	log_debug(0, "vring %u started: size %u, base %u", q, r->num, r->base);
	if (q == VSOCK_EVQ && vu->dev->reset_event_pending)
		log_debug(0, "transport reset event pending");
	return 0;
}

static void vu_ring_stop(struct vhost_user *vu, unsigned q)
{
	struct vu_ring *r = &vu->ring[q];
	struct virtq *vq = &vu->dev->vq[q];

	if (r->started) {
		virtq_flush(vq);
		r->base = vq->last_avail_idx;
		vq->ready = false;
		r->started = false;
	}
	/* Every connection lived in the rings being stopped (QEMU disables
	 * them with SET_VRING_ENABLE first, so do not wait for "started"). */
	if (q != VSOCK_EVQ) {
		vsock_dev_reset(vu->dev);
		vu->dev->reset_event_pending = true;
	}
	if (r->kick_fd >= 0) {
		epoll_ctl(vu->epfd, EPOLL_CTL_DEL, r->kick_fd, NULL);
		close(r->kick_fd);
		r->kick_fd = -1;
	}
}

static int vu_set_mem_table(struct vhost_user *vu, struct vu_msg *m, int *fds, unsigned nfds)
{
	struct vu_mem_table *t = &m->mem;
	int err = 0;

	if (m->size < 8 || t->nregions > VQ_MEM_MAX_REGIONS || t->nregions != nfds ||
	    m->size < 8 + t->nregions * sizeof(struct vu_mem_region))
		return -EINVAL;
	vu_unmap(vu);
	for (unsigned i = 0; i < t->nregions; i++) {
		struct vu_mem_region *mr = &t->region[i];
		size_t len = mr->size + mr->mmap_offset;
		void *p;

		if (mr->size == 0 || len < mr->size) {
			err = -EINVAL;
			goto out_unmap;
		}
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
			 fds[i], 0);
		if (p == MAP_FAILED) {
			err = -errno;
			log_warn(err, "unable to map memory region %u", i);
			goto out_unmap;
		}
		vu->map[i] = p;
		vu->map_len[i] = len;
		vu->mem.region[i] = (struct vq_mem_region){
			.gpa = mr->gpa, .size = mr->size, .uva = mr->uva,
			.host = (uint8_t *)p + mr->mmap_offset,
		};
		vu->mem.nregions = i + 1;
		log_debug(0, "memory region %u: guest %#llx size %#llx", i,
			  (unsigned long long)mr->gpa, (unsigned long long)mr->size);
	}
	/* Running rings point into the old mapping: re-translate them. */
	for (unsigned q = 0; q < VSOCK_QUEUES; q++) {
		if (vu->ring[q].started) {
			virtq_flush(&vu->dev->vq[q]);
			vu->ring[q].base = vu->dev->vq[q].last_avail_idx;
			vu->ring[q].started = false;
			vu->dev->vq[q].ready = false;
		}
		vu_ring_try_start(vu, q);
	}
	return 0;
out_unmap:
	vu_unmap(vu);
	return err;
}

/* SET_VRING_KICK/CALL/ERR: u64 with the index in bits 0-7, bit 8 "no fd". */
static int vu_set_vring_fd(struct vhost_user *vu, struct vu_msg *m, int *fds, unsigned *nfds)
{
	unsigned q = (unsigned)(m->u64 & VHOST_USER_VRING_IDX_MASK);
	bool nofd = m->u64 & VHOST_USER_VRING_NOFD;
	int fd = -1;

	if (m->size < 8 || q >= VSOCK_QUEUES || (!nofd && *nfds != 1))
		return -EINVAL;
	if (!nofd) {
		fd = fds[0];
		*nfds = 0; /* ours now */
	}
	switch (m->request) {
	case VHOST_USER_SET_VRING_KICK: {
		struct epoll_event ev = {
			.events = EPOLLIN,
			.data.u64 = ((uint64_t)VSOCKD_TAG_KICK << 32) | q,
		};

		if (vu->ring[q].kick_fd >= 0) {
			epoll_ctl(vu->epfd, EPOLL_CTL_DEL, vu->ring[q].kick_fd, NULL);
			close(vu->ring[q].kick_fd);
		}
		vu->ring[q].kick_fd = fd;
		if (fd < 0) {
			/* polling mode is not offered (no INBAND_NOTIFICATIONS) */
			log_warn(0, "vring %u: kick without an fd is not supported", q);
			return -ENOTSUP;
		}
		if (epoll_ctl(vu->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		return vu_ring_try_start(vu, q);
	}
	case VHOST_USER_SET_VRING_CALL:
		if (vu->dev->vq[q].call_fd >= 0)
			close(vu->dev->vq[q].call_fd);
		vu->dev->vq[q].call_fd = fd;
		return 0;
	default:
		if (vu->dev->vq[q].err_fd >= 0)
			close(vu->dev->vq[q].err_fd);
		vu->dev->vq[q].err_fd = fd;
		return 0;
	}
}

/* The device config space (§5.10.4): le64 guest_cid, nothing else. */
static int vu_get_config(struct vhost_user *vu, struct vu_msg *m)
{
	uint8_t space[8];
	uint64_t cid = htole64(vu->dev->guest_cid);
	uint32_t size = m->config.size;

	if (m->size < 12 || size > sizeof(m->config.data))
		return -EINVAL;
	memcpy(space, &cid, sizeof(space));
	memset(m->config.data, 0, size);
	if (m->config.offset < sizeof(space)) {
		uint32_t n = sizeof(space) - m->config.offset;

		memcpy(m->config.data, space + m->config.offset, n < size ? n : size);
	}
	return vu_reply(vu, m, 12 + size);
}

static const char *vu_request_name(uint32_t req)
{
	static const char *const names[] = {
		[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
		[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
		[VHOST_USER_SET_OWNER] = "SET_OWNER",
		[VHOST_USER_RESET_OWNER] = "RESET_OWNER",
		[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHOST_USER_SET_LOG_FD] = "SET_LOG_FD",
		[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
		[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
		[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
		[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
		[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
	};

	if (req < sizeof(names) / sizeof(names[0]) && names[req])
		return names[req];
	return "unknown";
}

static void vu_reset(struct vhost_user *vu)
{
	for (unsigned q = 0; q < VSOCK_QUEUES; q++) {
		vu_ring_stop(vu, q);
		vu->ring[q] = (struct vu_ring){ .kick_fd = -1 };
	}
	vsock_dev_reset(vu->dev);
	vu->features = 0;
}

/* Handles m; returns 0 or -errno. Requests with a reply of their own send
 * it here; the others get a REPLY_ACK from the caller when asked. */
static int vu_dispatch(struct vhost_user *vu, struct vu_msg *m, int *fds, unsigned *nfds)
{
	unsigned q = m->state.index;

	switch (m->request) {
	case VHOST_USER_GET_FEATURES:
		m->u64 = vu_features;
		return vu_reply(vu, m, 8);
	case VHOST_USER_SET_FEATURES:
		if (m->size < 8 || (m->u64 & ~vu_features))
			return -EINVAL;
		vu->features = m->u64;
		log_debug(0, "features acked: %#llx", (unsigned long long)m->u64);
		for (unsigned i = 0; i < VSOCK_QUEUES; i++) {
			vu->dev->vq[i].event_idx = m->u64 & (1ull << VIRTIO_RING_F_EVENT_IDX);
			vu->dev->vq[i].indirect = m->u64 & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
		}
		return 0;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		m->u64 = vu_protocol_features;
		return vu_reply(vu, m, 8);
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (m->size < 8)
			return -EINVAL;
		vu->protocol_features = m->u64 & vu_protocol_features;
		return 0;
	case VHOST_USER_GET_QUEUE_NUM:
		m->u64 = VSOCK_QUEUES;
		return vu_reply(vu, m, 8);
	case VHOST_USER_SET_OWNER:
		return 0;
	case VHOST_USER_RESET_OWNER:
	case VHOST_USER_RESET_DEVICE:
		vu_reset(vu);
		return 0;
	case VHOST_USER_SET_MEM_TABLE:
		return vu_set_mem_table(vu, m, fds, *nfds);
	case VHOST_USER_SET_VRING_NUM:
		if (m->size < 8 || q >= VSOCK_QUEUES || !m->state.num || m->state.num > VQ_MAX_SIZE ||
		    (m->state.num & (m->state.num - 1)))
			return -EINVAL;
		vu->ring[q].num = m->state.num;
		return 0;
	case VHOST_USER_SET_VRING_BASE:
		if (m->size < 8 || q >= VSOCK_QUEUES || m->state.num > 0xffff)
			return -EINVAL;
		vu->ring[q].base = (uint16_t)m->state.num;
		return 0;
	case VHOST_USER_SET_VRING_ADDR:
		q = m->addr.index;
		if (m->size < sizeof(struct vu_vring_addr) || q >= VSOCK_QUEUES)
			return -EINVAL;
		vu->ring[q].desc_uva = m->addr.desc;
		vu->ring[q].avail_uva = m->addr.avail;
		vu->ring[q].used_uva = m->addr.used;
		vu->ring[q].addr_set = true;
		return vu_ring_try_start(vu, q);
	case VHOST_USER_GET_VRING_BASE:
		/* "Stopping rings": reply with the next avail index we would read */
		if (m->size < 8 || q >= VSOCK_QUEUES)
			return -EINVAL;
		vu_ring_stop(vu, q);
		m->state.num = vu->ring[q].base;
		vu->ring[q].enabled = false;
		return vu_reply(vu, m, sizeof(struct vu_vring_state));
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
	case VHOST_USER_SET_VRING_ERR:
		return vu_set_vring_fd(vu, m, fds, nfds);
	case VHOST_USER_SET_VRING_ENABLE:
		if (m->size < 8 || q >= VSOCK_QUEUES)
			return -EINVAL;
		vu->ring[q].enabled = m->state.num != 0;
		if (vu->ring[q].enabled)
			return vu_ring_try_start(vu, q);
		if (vu->ring[q].started) {
			/* disabled but not stopped: keep state, stop processing */
			virtq_flush(&vu->dev->vq[q]);
			vu->ring[q].base = vu->dev->vq[q].last_avail_idx;
			vu->dev->vq[q].ready = false;
			vu->ring[q].started = false;
		}
		return 0;
	case VHOST_USER_GET_CONFIG:
		return vu_get_config(vu, m);
	case VHOST_USER_SET_CONFIG:
		/* guest_cid is read-only for the driver; accept and ignore */
		return 0;
	default:
		log_warn(0, "unsupported vhost-user request %u (%s)", m->request,
			 vu_request_name(m->request));
		return -ENOTSUP;
	}
}

static bool vu_has_own_reply(uint32_t req)
{
	return req == VHOST_USER_GET_FEATURES || req == VHOST_USER_GET_PROTOCOL_FEATURES ||
	       req == VHOST_USER_GET_QUEUE_NUM || req == VHOST_USER_GET_VRING_BASE ||
	       req == VHOST_USER_GET_CONFIG;
}

int vhost_user_handle(struct vhost_user *vu)
{
	struct vu_msg m;
	int fds[VQ_MEM_MAX_REGIONS];
	unsigned nfds = 0;
	bool need_reply;
	int r;

	r = vu_msg_read(vu->fd, &m, fds, &nfds);
	if (r)
		return r;
	need_reply = (m.flags & VHOST_USER_FLAG_NEED_REPLY) &&
		     (vu->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK));
	log_debug(0, "vhost-user %s (%u) size %u fds %u", vu_request_name(m.request),
		  m.request, m.size, nfds);
	r = vu_dispatch(vu, &m, fds, &nfds);
	/* fds no handler kept; memory stays mapped after its fd is closed */
	vu_close_fds(fds, nfds);
	if (r == -ECONNRESET || r == -EPIPE)
		return r;
	if (r && r != -ENOTSUP)
		log_warn(r, "vhost-user request %u (%s) failed", m.request,
			 vu_request_name(m.request));
	if (vu_has_own_reply(m.request)) {
		/* the front-end waits for an answer: an empty one fails it */
		if (r)
			return vu_reply(vu, &m, 0);
	} else if (need_reply) {
		/* "REPLY_ACK": 0 for success, anything else for failure */
		m.u64 = r ? 1 : 0;
		return vu_reply(vu, &m, 8);
	}
	return 0;
}

void vhost_user_kick(struct vhost_user *vu, unsigned q)
{
	uint64_t v;

	if (q < VSOCK_QUEUES && vu->ring[q].kick_fd >= 0 &&
	    read(vu->ring[q].kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn(errno, "unable to read the kick eventfd of vring %u", q);
}

void vhost_user_fini(struct vhost_user *vu)
{
	for (unsigned q = 0; q < VSOCK_QUEUES; q++) {
		vu_ring_stop(vu, q);
		if (vu->dev->vq[q].call_fd >= 0)
			close(vu->dev->vq[q].call_fd);
		if (vu->dev->vq[q].err_fd >= 0)
			close(vu->dev->vq[q].err_fd);
		vu->dev->vq[q].call_fd = vu->dev->vq[q].err_fd = -1;
	}
	vu_unmap(vu);
	if (vu->fd >= 0)
		close(vu->fd);
	vu->fd = -1;
}
