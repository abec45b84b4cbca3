/* A writer for "newc" cpio archives, the format the Linux kernel unpacks as
 * an initramfs. Used by mkcpio (rootfs/, the image builder) and by the
 * launcher to append a per-sandbox config archive without a shell. */
#ifndef SBX_CPIO_H
#define SBX_CPIO_H

#include <stddef.h>
#include <stdint.h>

struct cpio_writer {
	int fd;
	uint32_t ino;   /* next inode number: entries are numbered in order */
	uint32_t mtime; /* every entry gets this mtime (reproducible output) */
};

void cpio_writer_init(struct cpio_writer *w, int fd, uint32_t mtime);

/* Writes one entry. `mode` carries the file type (S_IFREG, S_IFDIR,
 * S_IFLNK, S_IFCHR) and permission bits; for S_IFLNK `data` is the target;
 * for S_IFCHR `rdev_major`/`rdev_minor` name the device. `name` is relative
 * ("etc/sbx/config"), without a leading slash. Returns 0 or -errno. */
int cpio_write_entry(struct cpio_writer *w, const char *name, uint32_t mode,
		     uint32_t uid, uint32_t gid, const void *data, size_t len,
		     uint32_t rdev_major, uint32_t rdev_minor);

/* Ends the archive. Returns 0 or -errno. */
int cpio_write_trailer(struct cpio_writer *w);

/* Writes a complete archive holding one regular file `name` (mode 0600,
 * owner root) with `len` bytes of `data`, after its parent directories
 * (0755): the per-sandbox config the host puts before the initramfs
 * ("etc/sbx/config"). Returns 0 or -errno. */
int cpio_write_single_file(int fd, const char *name, const void *data,
			   size_t len, uint32_t mtime);

#endif
