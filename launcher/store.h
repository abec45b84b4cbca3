/* The data directory's contents (launcher/image.h for where it is):
 * images imported from any root file system or snapshotted from a sandbox,
 * and volumes, the disks whose data outlives a sandbox. docs/IMAGES.md. */
#ifndef SBX_STORE_H
#define SBX_STORE_H

#include <stdint.h>

#include "launcher/image.h"
#include "launcher/sandbox.h"

#define VOLUME_NAME_MAX 63

/* Makes an image of a root file system: a directory, or a tar archive
 * (compressed or not, as `docker export` writes). sbx-init is installed
 * as /sbin/sbx-init; a tree without /bin/sh, /etc/passwd or a user root
 * (uid 0), an archive with absolute or "../" names, and a /sbin that
 * leads outside the tree are refused naming the problem. Its commands run
 * as `app` when its /etc/passwd has that user, else as root. Nothing is
 * written outside the data directory, and nothing is left behind on
 * failure. On success, notes (lines) says what the image lacks that some
 * commands need (the SSH server): empty when nothing. */
int store_image_import(const char *name, const char *src, char *notes, size_t notes_n,
		       struct sbx_error *err);

/* Calls fn for each image of the data directory and each built one. */
void store_image_list(void (*fn)(void *arg, const struct image *im, const char *where),
		      void *arg);

/* Removes an image of the data directory; refused while a live sandbox
 * booted it or a snapshot image is built on it. */
int store_image_remove(const char *name, struct sbx_error *err);

/* Turns a sandbox's writable disk into a new image over the sandbox's
 * own image: the guest syncs and freezes the disk's file system while it
 * is copied (FREEZE, docs/PROTOCOL.md). */
int store_snapshot(const struct sandbox *sb, const char *name, struct sbx_error *err);

/* Volumes: DATA/volumes/NAME.ext4. */
int store_volume_create(const char *name, uint64_t bytes, struct sbx_error *err);
int store_volume_remove(const char *name, struct sbx_error *err);
void store_volume_list(void (*fn)(void *arg, const char *name, uint64_t bytes,
				  uint64_t used, const char *user), void *arg);
/* The file of a volume, checked to exist and to be free (no live sandbox
 * has it); -EBUSY naming the sandbox that has it. */
int store_volume_take(const char *name, char *path, size_t n, struct sbx_error *err);

#endif
