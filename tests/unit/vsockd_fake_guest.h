/* A fake virtio driver for sbx-vsockd's unit tests: guest memory is a plain
 * buffer, rings are laid out in it, and helpers add descriptor chains and
 * read used entries the way a guest driver would. Header-only: each test
 * program includes it once. */
#ifndef SBX_TEST_VSOCKD_FAKE_GUEST_H
#define SBX_TEST_VSOCKD_FAKE_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vsockd/virtq.h"

#define FG_MEM_SIZE (4u << 20)
#define FG_GPA 0x100000ull
#define FG_UVA 0x7f0000000000ull

struct fg_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* VRING_DESC_F_WRITE / _INDIRECT; NEXT is added */
};

struct fg_ring {
	unsigned num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t next_desc;
	uint16_t used_seen;
};

static uint8_t *fg_mem;
static size_t fg_heap; /* bump allocator for buffers in guest memory */

static inline uint64_t fg_gpa(const void *p)
{
	return FG_GPA + (uint64_t)((const uint8_t *)p - fg_mem);
}

static inline void *fg_ptr(uint64_t gpa)
{
	return fg_mem + (gpa - FG_GPA);
}

/* Allocates len bytes of guest memory, 16-aligned; never freed. */
static inline void *fg_alloc(size_t len)
{
	void *p;

	fg_heap = (fg_heap + 15) & ~(size_t)15;
	if (fg_heap + len > FG_MEM_SIZE)
		fg_heap = 1u << 20; /* recycle the buffer area (rings live below) */
	p = fg_mem + fg_heap;
	fg_heap += len;
	return p;
}

static inline void fg_init_mem(struct vq_mem *mem)
{
	if (!fg_mem)
		fg_mem = aligned_alloc(4096, FG_MEM_SIZE);
	memset(fg_mem, 0, FG_MEM_SIZE);
	fg_heap = 0;
	mem->nregions = 1;
	mem->region[0] = (struct vq_mem_region){
		.gpa = FG_GPA, .size = FG_MEM_SIZE, .uva = FG_UVA, .host = fg_mem,
	};
}

/* Lays out a ring of `num` entries in guest memory and sets vq up on it. */
static inline int fg_ring_init(struct fg_ring *r, struct virtq *vq, const struct vq_mem *mem,
			unsigned num, uint16_t base)
{
	memset(r, 0, sizeof(*r));
	r->num = num;
	r->desc = fg_alloc(16 * num);
	r->avail = fg_alloc(6 + 2 * num);
	r->used = fg_alloc(6 + 8 * num);
	r->avail->idx = base;
	r->used->idx = base;
	r->used_seen = base;
	return virtq_setup(vq, mem, num, r->desc, r->avail, r->used, base);
}

/* Writes n descriptors as one chain into the table and makes it available.
 * Returns the head index. */
static inline uint16_t fg_add_chain(struct fg_ring *r, const struct fg_desc *d, unsigned n)
{
	uint16_t head = r->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % r->num);

		r->desc[idx].addr = d[i].addr;
		r->desc[idx].len = d[i].len;
		r->desc[idx].flags = d[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		r->desc[idx].next = (uint16_t)((idx + 1) % r->num);
	}
	r->next_desc = (uint16_t)((head + n) % r->num);
	r->avail->ring[r->avail->idx % r->num] = head;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	r->avail->idx++;
	return head;
}

/* Takes the next used entry: 1 and its id/len, or 0 when none. */
static inline int fg_get_used(struct fg_ring *r, uint32_t *id, uint32_t *len)
{
	struct vring_used_elem *e;

	if (r->used_seen == r->used->idx)
		return 0;
	e = &r->used->ring[r->used_seen % r->num];
	*id = e->id;
	*len = e->len;
	r->used_seen++;
	return 1;
}

#endif
