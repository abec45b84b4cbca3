/* A byte queue with a hard size limit: bytes are appended at the end and
 * consumed from the front. Used for frame reassembly and output queues; the
 * limit is what keeps per-connection memory bounded. */
#ifndef SBX_BUF_H
#define SBX_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t start; /* first unconsumed byte */
	size_t end;   /* one past the last byte */
	size_t cap;   /* allocated */
	size_t max;   /* never grow beyond this */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline uint8_t *buf_head(const struct buf *b) { return b->data + b->start; }
/* Makes room for n more bytes at the tail; -ENOBUFS past the limit. */
int buf_reserve(struct buf *b, size_t n);
static inline uint8_t *buf_tail(const struct buf *b) { return b->data + b->end; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->end; }
static inline void buf_commit(struct buf *b, size_t n) { b->end += n; }
int buf_append(struct buf *b, const void *p, size_t n);
void buf_consume(struct buf *b, size_t n);
/* Drops what was appended after the first len bytes. */
static inline void buf_truncate(struct buf *b, size_t len)
{
	if (len < buf_len(b))
		b->end = b->start + len;
}
/* Releases memory beyond `keep` bytes once the buffer is empty, so an idle
 * connection does not pin a large allocation. */
void buf_shrink(struct buf *b, size_t keep);

/* Released allocations of 64 KiB to 1 MiB are kept (two at most) for the
 * next buffer that grows that large: a stream of large frames reuses them
 * instead of mapping and unmapping memory for each frame. The agent's
 * server drops them after a second idle; other processes keep them. */
bool buf_spares_held(void);
void buf_drop_spares(void);

#endif
