/* The device side of a split virtqueue (virtio 1.2 §2.7) over guest memory
 * described by a translation table. Knows nothing about vhost-user or vsock,
 * so the unit tests drive it with a plain buffer standing in for the guest. */
#ifndef SBX_VSOCKD_VIRTQ_H
#define SBX_VSOCKD_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#define VQ_MEM_MAX_REGIONS 8	/* vhost-user's VHOST_MEMORY_BASELINE_NREGIONS */
#define VQ_MAX_SIZE 32768	/* §2.7: Queue Size is at most 32768 */
#define VQ_IOV_MAX 64		/* iovecs in one chain (both directions) */
#define VQ_INDIRECT_MAX 1024	/* descriptors in one indirect table */

/* One slice of guest memory: guest-physical range [gpa, gpa+size), known to
 * the VMM (QEMU) at virtual address uva, mapped here at host. */
struct vq_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint8_t *host;
};

struct vq_mem {
	struct vq_mem_region region[VQ_MEM_MAX_REGIONS];
	unsigned nregions;
};

/* Returns the host address of guest-physical [gpa, gpa+len) if it lies in
 * one region, else NULL. */
void *vq_mem_gpa(const struct vq_mem *mem, uint64_t gpa, uint64_t len);
/* The same for a VMM virtual address (vring addresses in vhost-user). */
void *vq_mem_uva(const struct vq_mem *mem, uint64_t uva, uint64_t len);

/* A descriptor chain taken from the avail ring: the device-readable part
 * (out, the driver's data) then the device-writable part (in). */
struct vq_chain {
	uint16_t head;
	unsigned nout, nin;
	size_t out_len, in_len;
	struct iovec iov[VQ_IOV_MAX]; /* out iovecs, then in iovecs */
};

struct virtq {
	const struct vq_mem *mem;
	unsigned num;			/* queue size, power of 2 */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail_idx;	/* next avail entry we will take */
	uint16_t used_idx;		/* next used entry we will write */
	uint16_t signalled_used;	/* used_idx when we last signalled */
	bool signalled_valid;
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;			/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool ready;			/* rings mapped and started */
	bool broken;			/* the driver broke the rules: stop */
	int call_fd;			/* eventfd to interrupt the guest, or -1 */
	int err_fd;			/* eventfd to report a broken ring, or -1 */
};

void virtq_init(struct virtq *vq);
/* Points the queue at its rings (host addresses), checks size and
 * alignment (§2.7: desc 16, avail 2, used 4). Returns 0 or -EINVAL. */
int virtq_setup(struct virtq *vq, const struct vq_mem *mem, unsigned num,
		void *desc, void *avail, void *used, uint16_t base);

/* Takes the next chain: 1 when one was taken, 0 when the ring is empty,
 * -EIO when the queue is (or just became) broken. */
int virtq_pop(struct virtq *vq, struct vq_chain *chain);
/* Gives back the last `n` chains taken and not yet pushed (in order). */
void virtq_unpop(struct virtq *vq, unsigned n);
/* Returns a chain to the driver with `len` bytes written into it; the
 * used index becomes visible to the driver at virtq_flush(). */
void virtq_push(struct virtq *vq, uint16_t head, uint32_t len);
/* Publishes pushed entries and interrupts the guest when it asked to be.
 * Returns true when it signalled. */
bool virtq_flush(struct virtq *vq);
/* True when the driver has made chains available that we have not taken. */
bool virtq_has_avail(struct virtq *vq);
/* Asks the driver for a kick at the next available chain. Returns true
 * when chains arrived meanwhile (the caller must not sleep then). */
bool virtq_want_kick(struct virtq *vq);

/* Marks the queue broken, logs `why` once and tells the VMM (err_fd). */
void virtq_set_broken(struct virtq *vq, const char *why);

/* Copies between a linear buffer and part of an iovec array.
 * Return the number of bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf,
		    size_t len);

#endif
