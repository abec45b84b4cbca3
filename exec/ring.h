/* The output buffer of a detached command: a circular buffer in a memfd,
 * with its read and write positions in the memfd's first page. PID 1 holds
 * the memfd along with the command's pipes, so after a restart of the
 * server the new one maps it again and loses no byte. Positions are
 * stream offsets (bytes since the command started), so a client can
 * acknowledge "everything up to byte N". Pages are only allocated as they
 * are written. */
#ifndef SBX_RING_H
#define SBX_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct ring_hdr {
	uint64_t magic;
	uint64_t cap;
	uint64_t acked;  /* stream offset of the first byte kept */
	uint64_t end;    /* stream offset one past the last byte kept */
};

struct ring {
	int fd;          /* the memfd, or -1 */
	struct ring_hdr *hdr;
	uint8_t *data;
	size_t cap;
};

/* A new empty ring of cap bytes; 0 or -errno. */
int ring_create(struct ring *r, size_t cap, const char *name);
/* Maps an existing ring's memfd (taken over); -EBADMSG if it is not one. */
int ring_open(struct ring *r, int fd);
void ring_close(struct ring *r);

static inline size_t ring_len(const struct ring *r) { return (size_t)(r->hdr->end - r->hdr->acked); }
static inline size_t ring_room(const struct ring *r) { return r->cap - ring_len(r); }

/* Reads from fd into the free space (at most max bytes): the read(2)
 * result. */
ssize_t ring_fill(struct ring *r, int fd, size_t max);
/* The bytes from stream offset `from` (acked <= from <= end), at most
 * max, as up to two iovecs; returns how many iovecs. */
int ring_peek(const struct ring *r, uint64_t from, size_t max, struct iovec iov[2]);
/* Drops everything before stream offset `to`. */
void ring_ack(struct ring *r, uint64_t to);

#endif
