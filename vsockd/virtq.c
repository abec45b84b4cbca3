/* Split virtqueue, device side (virtio 1.2 §2.7). The driver (guest) is not
 * trusted: every index, address and length read from shared memory is
 * checked, and a queue whose driver breaks the rules stops, never crashes. */
#include "vsockd/virtq.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

/* Guest memory changes under our feet: read each shared field exactly once. */
#define VQ_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define VQ_WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

void *vq_mem_gpa(const struct vq_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vq_mem_region *r = &mem->region[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

void *vq_mem_uva(const struct vq_mem *mem, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct vq_mem_region *r = &mem->region[i];

		if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
			return r->host + (uva - r->uva);
	}
	return NULL;
}

/* Maps guest-physical [gpa, gpa+len) into iovecs, splitting it where it
 * crosses from one region into an adjacent one. Returns 0 or -EFAULT. */
static int vq_mem_map(const struct vq_mem *mem, uint64_t gpa, uint32_t len,
		      struct iovec *iov, unsigned *n)
{
	while (len > 0) {
		const struct vq_mem_region *r = NULL;
		uint64_t off, take;

		for (unsigned i = 0; i < mem->nregions; i++) {
			if (gpa >= mem->region[i].gpa &&
			    gpa - mem->region[i].gpa < mem->region[i].size) {
				r = &mem->region[i];
				break;
			}
		}
		if (!r || *n >= VQ_IOV_MAX)
			return -EFAULT;
		off = gpa - r->gpa;
		take = r->size - off < len ? r->size - off : len;
		iov[*n].iov_base = r->host + off;
		iov[*n].iov_len = (size_t)take;
		(*n)++;
		gpa += take;
		len -= (uint32_t)take;
	}
	return 0;
}

void virtq_init(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->call_fd = -1;
	vq->err_fd = -1;
}

int virtq_setup(struct virtq *vq, const struct vq_mem *mem, unsigned num,
		void *desc, void *avail, void *used, uint16_t base)
{
	if (num == 0 || num > VQ_MAX_SIZE || (num & (num - 1)) || !desc || !avail || !used)
		return -EINVAL;
	if (((uintptr_t)desc & 15) || ((uintptr_t)avail & 1) || ((uintptr_t)used & 3))
		return -EINVAL;
	vq->mem = mem;
	vq->num = num;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->last_avail_idx = base;
	/* The used index lives in the ring; a restarted queue continues it. */
	vq->used_idx = le16toh(VQ_READ_ONCE(vq->used->idx));
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = false;
	vq->broken = false;
	vq->ready = true;
	return 0;
}

void virtq_set_broken(struct virtq *vq, const char *why)
{
	uint64_t one = 1;

	if (vq->broken)
		return;
	vq->broken = true;
	log_warn(0, "virtqueue broken by the driver: %s", why);
	if (vq->err_fd >= 0 && write(vq->err_fd, &one, sizeof(one)) < 0)
		log_warn(errno, "unable to signal the vring error eventfd");
}

static uint16_t virtq_avail_idx(struct virtq *vq)
{
	return le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
}

bool virtq_has_avail(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	return virtq_avail_idx(vq) != vq->last_avail_idx;
}

/* Walks one descriptor chain from `head` (§2.7.5, §2.7.5.3 indirect). */
static int virtq_walk(struct virtq *vq, uint16_t head, struct vq_chain *c)
{
	const struct vring_desc *table = vq->desc;
	unsigned table_n = vq->num, count = 0, n = 0;
	bool in_indirect = false, writable_seen = false;
	uint32_t idx = head;

	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		struct vring_desc d;
		uint16_t flags;
		uint32_t len;
		uint64_t addr;
		unsigned before = n;

		if (idx >= table_n)
			return virtq_set_broken(vq, "descriptor index out of range"), -EIO;
		/* A chain visits each descriptor at most once: more is a loop. */
		if (++count > table_n)
			return virtq_set_broken(vq, "descriptor chain loops"), -EIO;
		memcpy(&d, (const void *)&table[idx], sizeof(d));
		flags = le16toh(d.flags);
		len = le32toh(d.len);
		addr = le64toh(d.addr);
		if (flags & VRING_DESC_F_INDIRECT) {
			/* §2.7.5.3.1: not with NEXT, not nested, whole entries */
			if (!vq->indirect || in_indirect || (flags & VRING_DESC_F_NEXT))
				return virtq_set_broken(vq, "misplaced indirect descriptor"), -EIO;
			if (len == 0 || len % sizeof(struct vring_desc) ||
			    len / sizeof(struct vring_desc) > VQ_INDIRECT_MAX)
				return virtq_set_broken(vq, "bad indirect table length"), -EIO;
			table = vq_mem_gpa(vq->mem, addr, len);
			if (!table)
				return virtq_set_broken(vq, "indirect table outside guest memory"), -EIO;
			table_n = len / sizeof(struct vring_desc);
			idx = 0;
			count = 0;
			in_indirect = true;
			continue;
		}
		if (vq_mem_map(vq->mem, addr, len, c->iov, &n) < 0)
			return virtq_set_broken(vq, "buffer outside guest memory or chain too long"),
			       -EIO;
		if (flags & VRING_DESC_F_WRITE) {
			writable_seen = true;
			c->nin += n - before;
			c->in_len += len;
		} else {
			/* §2.7.4.2: device-readable descriptors come first */
			if (writable_seen)
				return virtq_set_broken(vq, "readable descriptor after writable"), -EIO;
			c->nout += n - before;
			c->out_len += len;
		}
		if (!(flags & VRING_DESC_F_NEXT))
			return 0;
		idx = le16toh(d.next);
	}
}

int virtq_pop(struct virtq *vq, struct vq_chain *chain)
{
	uint16_t avail_idx, head;
	int r;

	if (vq->broken)
		return -EIO;
	if (!vq->ready)
		return 0;
	avail_idx = virtq_avail_idx(vq);
	if (avail_idx == vq->last_avail_idx)
		return 0;
	/* §2.7.13.3: the driver never gets more than a ring ahead of us */
	if ((uint16_t)(avail_idx - vq->last_avail_idx) > vq->num) {
		virtq_set_broken(vq, "avail index moved more than the queue size");
		return -EIO;
	}
	head = le16toh(VQ_READ_ONCE(vq->avail->ring[vq->last_avail_idx & (vq->num - 1)]));
	r = virtq_walk(vq, head, chain);
	if (r < 0)
		return r;
	vq->last_avail_idx++;
	return 1;
}

void virtq_unpop(struct virtq *vq, unsigned n)
{
	vq->last_avail_idx -= (uint16_t)n;
}

void virtq_push(struct virtq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &vq->used->ring[vq->used_idx & (vq->num - 1)];

	VQ_WRITE_ONCE(e->id, htole32(head));
	VQ_WRITE_ONCE(e->len, htole32(len));
	vq->used_idx++;
}

/* §2.7.7.2 / §2.7.10: with EVENT_IDX the driver names the used index at
 * which it wants an interrupt (used_event, after the avail ring). */
static bool virtq_need_signal(struct virtq *vq, uint16_t old, uint16_t new)
{
	uint16_t event;

	if (!vq->event_idx)
		return !(le16toh(VQ_READ_ONCE(vq->avail->flags)) & VRING_AVAIL_F_NO_INTERRUPT);
	event = le16toh(VQ_READ_ONCE(vq->avail->ring[vq->num]));
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

bool virtq_flush(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx;
	uint64_t one = 1;

	if (!vq->ready || old == new)
		return false;
	/* §2.7.8: the used elements must be visible before the index. */
	__atomic_store_n(&vq->used->idx, htole16(new), __ATOMIC_RELEASE);
	/* ...and the index before we read the driver's suppression state. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = new;
	if (!virtq_need_signal(vq, old, new) || vq->call_fd < 0)
		return false;
	if (write(vq->call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn(errno, "unable to signal the vring call eventfd");
	return true;
}

bool virtq_want_kick(struct virtq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx) {
		/* avail_event sits after the used ring (§2.7.10) */
		uint16_t *avail_event = (uint16_t *)&vq->used->ring[vq->num];

		VQ_WRITE_ONCE(*avail_event, htole16(vq->last_avail_idx));
	} else {
		VQ_WRITE_ONCE(vq->used->flags, 0);
	}
	/* The driver may have added a chain before it saw our request. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_avail_idx(vq) != vq->last_avail_idx;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len - done)
			take = len - done;
		memcpy((char *)buf + done, (char *)iov[i].iov_base + off, take);
		done += take;
		off = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t off, const void *buf,
		    size_t len)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t take;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len - done)
			take = len - done;
		memcpy((char *)iov[i].iov_base + off, (const char *)buf + done, take);
		done += take;
		off = 0;
	}
	return done;
}
