/* Memfd-backed output rings for detached commands: see ring.h. */
#include "exec/ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define RING_MAGIC 0x31676e69722d7862ULL /* "bx-ring1" */
#define RING_HDR 4096

static int map(struct ring *r, int fd, size_t cap)
{
	void *p = mmap(NULL, RING_HDR + cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	r->fd = fd;
	r->hdr = p;
	r->data = (uint8_t *)p + RING_HDR;
	r->cap = cap;
	return 0;
}

int ring_create(struct ring *r, size_t cap, const char *name)
{
	int fd = memfd_create(name, MFD_CLOEXEC), e = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(RING_HDR + cap)) < 0 || (e = map(r, fd, cap)) < 0) {
		e = -errno;
		close(fd);
		return e ? e : -ENOMEM;
	}
	r->hdr->cap = cap;
	r->hdr->acked = r->hdr->end = 0;
	r->hdr->magic = RING_MAGIC;
	return 0;
}

int ring_open(struct ring *r, int fd)
{
	struct ring_hdr h;
	struct stat st;
	int e;

	if (fstat(fd, &st) < 0 || st.st_size < RING_HDR || pread(fd, &h, sizeof(h), 0) != sizeof(h) ||
	    h.magic != RING_MAGIC || h.cap == 0 || (uint64_t)st.st_size != RING_HDR + h.cap ||
	    h.end < h.acked || h.end - h.acked > h.cap) {
		close(fd);
		return -EBADMSG;
	}
	if ((e = map(r, fd, (size_t)h.cap)) < 0) {
		close(fd);
		return e;
	}
	return 0;
}

void ring_close(struct ring *r)
{
	if (r->fd < 0)
		return;
	munmap(r->hdr, RING_HDR + r->cap);
	close(r->fd);
	r->fd = -1;
	r->hdr = NULL;
}

ssize_t ring_fill(struct ring *r, int fd, size_t max)
{
	size_t room = MIN(ring_room(r), max), at = (size_t)(r->hdr->end % r->cap);
	struct iovec iov[2] = {
		{ .iov_base = r->data + at, .iov_len = MIN(room, r->cap - at) },
		{ .iov_base = r->data, .iov_len = room - MIN(room, r->cap - at) },
	};
	ssize_t n;

	if (room == 0)
		return 0;
	n = readv(fd, iov, iov[1].iov_len ? 2 : 1);
	/* The bytes are in place before the position says so: a server
	 * that dies between the two loses nothing that was counted. */
	if (n > 0)
		__atomic_store_n(&r->hdr->end, r->hdr->end + (uint64_t)n, __ATOMIC_RELEASE);
	return n;
}

int ring_peek(const struct ring *r, uint64_t from, size_t max, struct iovec iov[2])
{
	size_t n = MIN((size_t)(r->hdr->end - from), max), at = (size_t)(from % r->cap);
	size_t first = MIN(n, r->cap - at);

	iov[0] = (struct iovec){ .iov_base = r->data + at, .iov_len = first };
	iov[1] = (struct iovec){ .iov_base = r->data, .iov_len = n - first };
	return n == 0 ? 0 : n > first ? 2 : 1;
}

void ring_ack(struct ring *r, uint64_t to)
{
	r->hdr->acked = to;
}
