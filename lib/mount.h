/* Mounting the guest's own file systems once (lib/mount.c), for PID 1 at
 * boot and the server for what only commands use. */
#ifndef SBX_MOUNT_H
#define SBX_MOUNT_H

#include <sys/types.h>

struct mount_spec {
	const char *src, *dir, *type;
	unsigned long flags;
	const char *data;
	mode_t mode;         /* of dir, when it has to be made */
	unsigned long magic; /* the statfs type found there that counts as done; 0: any */
};

/* Makes each dir, and mounts on it unless it is mounted already (with a
 * file system of the spec's magic, when one is given); a step that fails
 * is logged and the next one tried. */
void mount_missing(const struct mount_spec *m, size_t n);

#endif
