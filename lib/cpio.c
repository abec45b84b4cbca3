/* newc cpio writer: see cpio.h. The format is documented in the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst: a 110-byte
 * ASCII header, the NUL-terminated name, the data, each padded to 4 bytes. */
#include "lib/cpio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define CPIO_NAME_MAX 4096

/* Pads with zeros so that `len` bytes written end on a 4-byte boundary. */
static int cpio_write_pad(int fd, size_t len)
{
	static const char zero[4];
	size_t pad = (4 - (len & 3)) & 3;

	return pad ? fd_write_all(fd, zero, pad) : 0;
}

void cpio_writer_init(struct cpio_writer *w, int fd, uint32_t mtime)
{
	w->fd = fd;
	w->ino = 1;
	w->mtime = mtime;
}

int cpio_write_entry(struct cpio_writer *w, const char *name, uint32_t mode,
		     uint32_t uid, uint32_t gid, const void *data, size_t len,
		     uint32_t rdev_major, uint32_t rdev_minor)
{
	char hdr[111];
	size_t namesize = strlen(name) + 1;
	int r;

	if (namesize > CPIO_NAME_MAX || len > UINT32_MAX)
		return -ENAMETOOLONG;
	if (S_ISDIR(mode) || S_ISCHR(mode))
		len = 0;
	/* nlink 1 everywhere: we never write hard links, so the kernel never
	 * needs the inode numbers to match up, but they are unique anyway. */
	snprintf(hdr, sizeof(hdr),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		 w->ino, mode, uid, gid, S_ISDIR(mode) ? 2u : 1u, w->mtime,
		 (uint32_t)len, 0u, 0u, rdev_major, rdev_minor,
		 (uint32_t)namesize, 0u);
	w->ino++;
	r = fd_write_all(w->fd, hdr, 110);
	if (!r)
		r = fd_write_all(w->fd, name, namesize);
	if (!r)
		r = cpio_write_pad(w->fd, 110 + namesize);
	if (!r && len)
		r = fd_write_all(w->fd, data, len);
	if (!r)
		r = cpio_write_pad(w->fd, len);
	return r;
}

int cpio_write_trailer(struct cpio_writer *w)
{
	w->ino = 0;
	return cpio_write_entry(w, "TRAILER!!!", 0, 0, 0, NULL, 0, 0, 0);
}

int cpio_write_single_file(int fd, const char *name, const void *data,
			   size_t len, uint32_t mtime)
{
	struct cpio_writer w;
	int r;

	cpio_writer_init(&w, fd, mtime);
	/* Its parent directories first: the archive stands alone, before
	 * the image's or after it. */
	r = 0;
	for (const char *s = strchr(name, '/'); s && !r; s = strchr(s + 1, '/')) {
		char dir[256];

		if ((size_t)(s - name) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, name, (size_t)(s - name));
		dir[s - name] = '\0';
		r = cpio_write_entry(&w, dir, S_IFDIR | 0755, 0, 0, NULL, 0, 0, 0);
	}
	if (!r)
		r = cpio_write_entry(&w, name, S_IFREG | 0600, 0, 0, data, len, 0, 0);
	if (!r)
		r = cpio_write_trailer(&w);
	return r;
}
