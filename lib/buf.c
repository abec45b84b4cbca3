/* Bounded byte queue: see buf.h. */
#include "lib/buf.h"
#include "lib/util.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Spare allocations. A stream of large frames (STDIN, DATA: up to 256 KiB
 * each) fills a buffer and empties it once per frame; allocations that
 * large are mapped and unmapped by the allocator each time, and every
 * unmapping is a TLB shootdown on all CPUs and every fresh page a fault
 * (a third of the server's CPU time in a stdin stream, under nested
 * virtualization). So released allocations of SPARE_MIN to SPARE_MAX bytes
 * are kept, at most SPARES of them (2 MiB), for the next buffer that
 * grows that large, until buf_drop_spares (the agent's server calls it
 * after a second with nothing to do). Atomic slots: libsbx may be used
 * from many threads. */
#define SPARE_MIN (64 * 1024)
#define SPARE_MAX (1024 * 1024)
#define SPARES 2

static _Atomic(uint8_t *) spares[SPARES];

/* Frees p, an allocation of `size` bytes, or keeps it as a spare if it is
 * the right size and a slot is free. */
static void release(uint8_t *p, size_t size)
{
	if (size >= SPARE_MIN && size <= SPARE_MAX)
		for (int i = 0; i < SPARES; i++) {
			uint8_t *none = NULL;

			if (atomic_compare_exchange_strong(&spares[i], &none, p))
				return;
		}
	free(p);
}

/* A spare of at least `want` bytes, or NULL. */
static uint8_t *take_spare(size_t want)
{
	for (int i = 0; i < SPARES; i++) {
		uint8_t *p = atomic_exchange(&spares[i], NULL);

		if (p && malloc_usable_size(p) >= want)
			return p;
		if (p)
			release(p, malloc_usable_size(p));
	}
	return NULL;
}

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	release(b->data, b->cap);
	buf_init(b, b->max);
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t len = buf_len(b), want;
	uint8_t *p;

	if (b->cap - b->end >= n)
		return 0;
	if (n > b->max || len > b->max - n)
		return -ENOBUFS;
	/* Slide the unconsumed bytes to the front before growing. */
	if (b->start > 0) {
		memmove(b->data, b->data + b->start, len);
		b->start = 0;
		b->end = len;
		if (b->cap - b->end >= n)
			return 0;
	}
	/* From 512 bytes: most frames are small, and musl serves that from
	 * the groups it has, while a first 4 KiB maps a new one (~7 ms of a
	 * clone's create -> ready under TCG: the guest's mmap and fault code
	 * running for the first time since the restore). */
	want = b->cap ? b->cap : 512;
	while (want < len + n)
		want *= 2;
	if (want > b->max)
		want = b->max;
	if (want >= SPARE_MIN && (p = take_spare(want))) {
		if (len)
			memcpy(p, b->data, len);
		release(b->data, b->cap);
		want = MIN(malloc_usable_size(p), b->max);
	} else if (!(p = realloc(b->data, want))) {
		return -ENOMEM;
	}
	b->data = p;
	b->cap = want;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0; /* and no memcpy to a buffer not allocated yet */
	r = buf_reserve(b, n);

	if (r < 0)
		return r;
	memcpy(buf_tail(b), p, n);
	b->end += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	b->start += n;
	if (b->start >= b->end)
		b->start = b->end = 0;
}

void buf_shrink(struct buf *b, size_t keep)
{
	if (buf_len(b) == 0 && b->cap > keep) {
		release(b->data, b->cap);
		b->data = NULL;
		b->cap = b->start = b->end = 0;
	}
}

bool buf_spares_held(void)
{
	for (int i = 0; i < SPARES; i++)
		if (atomic_load(&spares[i]))
			return true;
	return false;
}

void buf_drop_spares(void)
{
	for (int i = 0; i < SPARES; i++)
		free(atomic_exchange(&spares[i], NULL));
}
