/* Guest images and per-sandbox disks (docs/IMAGES.md). An image is either
 * the initramfs alone ("minimal") or a read-only root file system file
 * (erofs or ext4) with, for a snapshot, the layers sandboxes wrote over it;
 * a sandbox boots it under an overlay whose upper layer is its own sparse
 * ext4 disk, removed with it. */
#ifndef SBX_IMAGE_H
#define SBX_IMAGE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "libsbx/sbx.h"

#define IMAGE_NAME_MAX 63
#define IMAGE_LAYERS_MAX 7            /* snapshot layers above the base */
#define IMAGE_MINIMAL "minimal"       /* the initramfs: no disk at all */
#define IMAGE_DEFAULT "debian"        /* without --image or $SBX_IMAGE */
#define IMAGE_DEFAULT_DISK (10ull << 30)
#define IMAGE_DISK_MIN (64ull << 20)
#define IMAGE_DISK_MAX (1ull << 40)

struct image {
	char name[IMAGE_NAME_MAX + 1];
	char base[PATH_MAX];          /* the root file system; "" for minimal */
	char layers[IMAGE_LAYERS_MAX][PATH_MAX]; /* ext4 disks, newest first */
	unsigned nlayers;
	char user[33];                /* who commands run as by default */
	char workdir[256];
};

/* Where images, volumes and sandboxes' disks live: $SBX_DATA_DIR, else
 * $XDG_DATA_HOME/sbx, else /var/lib/sbx for root, else ~/.local/share/sbx. */
const char *image_data_dir(void);

/* 1-63 letters, digits, '-', '_' and '.', starting with a letter or digit:
 * the names of images and volumes. */
bool image_name_ok(const char *name);

/* The image a sandbox boots when none is named: $SBX_IMAGE, else
 * IMAGE_DEFAULT. */
const char *image_default(void);

/* Finds an image by name: one imported or snapshotted into the data
 * directory, else one built with sbx (build/images/NAME next to sbx).
 * -ENOENT with a message listing where it looked. */
int image_find(const char *name, struct image *im, struct sbx_error *err);

/* A sparse file of `bytes` at path holding an empty ext4 file system,
 * made by mkfs.ext4 (e2fsprogs). Nothing is left at path on failure. */
int image_disk_create(const char *path, uint64_t bytes, struct sbx_error *err);

/* Runs a tool (argv[0] from PATH) with its standard output on out_fd (-1:
 * kept with its standard error); the first line it printed goes to `out`
 * for error messages. Returns its exit status, 127 when it could not run. */
int image_tool_run(char *const argv[], int out_fd, char *out, size_t n);

/* Parses a disk size: "10G", "512M", "2GiB", "1T", or bytes. */
int image_parse_size(const char *s, uint64_t *bytes, struct sbx_error *err);

#endif
