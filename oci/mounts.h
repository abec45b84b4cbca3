/* The mounts of a container's root file system that the host makes (docs/
 * OCI.md): config.json's bind mounts of host paths go into the rootfs in
 * a mount namespace of the container's own, so that virtiofsd, started
 * from there, shares them with the guest together with the root; the
 * mount points of the tmpfs mounts the guest makes are created in the
 * rootfs (a read-only root could not take them in the guest). */
#ifndef SBX_OCI_MOUNTS_H
#define SBX_OCI_MOUNTS_H

#include <stddef.h>

#include "oci/spec.h"

/* Creates s's mount points inside s->rootfs (never following a path out
 * of it) and, when s has bind mounts, moves the calling process into a new
 * mount namespace (a slave of the host's: nothing mounted here reaches
 * the host) and binds each source on its mount point there, read-only
 * and nosuid/nodev/noexec as asked. What is started afterwards (virtiofsd,
 * QEMU, the monitor) sees them; they go when the last of these exits.
 * Returns 0, or -errno with why, naming the mount, in msg. */
int oci_mounts_setup(const struct oci_spec *s, char *msg, size_t n);

#endif
