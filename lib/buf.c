/* Bounded byte queue: see buf.h. */
#include "lib/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
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
	want = b->cap ? b->cap : 4096;
	while (want < len + n)
		want *= 2;
	if (want > b->max)
		want = b->max;
	p = realloc(b->data, want);
	if (!p)
		return -ENOMEM;
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
		free(b->data);
		b->data = NULL;
		b->cap = b->start = b->end = 0;
	}
}
