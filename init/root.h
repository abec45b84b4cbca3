/* A root file system on disks for PID 1 (init/root.c): the image's
 * read-only layers under an overlay with the sandbox's writable disk on
 * top, and the volumes. */
#ifndef SBX_ROOT_H
#define SBX_ROOT_H

#include "lib/config.h"

/* When the configuration names disks (root.lower, root.upper): mounts
 * them, empties the initramfs and makes the overlay the root, moving
 * /dev, /proc, /sys and /run along. 0 (also when there are no disks), or
 * -errno: the sandbox cannot run its image, and PID 1 powers off. */
int root_switch(const struct config *c);
/* Whether root_switch left the initramfs (which it emptied). */
bool root_switched(void);

/* A directory on the writable disk's file system (out of reach of the
 * workloads once the root switched), or -1 without a disk. */
int root_upper_fd(void);

/* Mounts every volume (volume.SERIAL = PATH) on its path, after the
 * switch. 0, or the first -errno (the others are still mounted). */
int root_mount_volumes(const struct config *c);

/* Mounts every tmpfs of the configuration (tmpfs.N = PATH:OPTIONS) on
 * its path, making the path when missing, after the switch. 0, or the
 * first -errno (the others are still mounted). */
int root_mount_tmpfs(const struct config *c);

#endif
