/* Templates: a sandbox booted to READY, let settle, and saved into the
 * data directory (its RAM apart, memory.ram, and QEMU's migration stream
 * without it, memory.state, QEMU's x-ignore-shared), so that new
 * sandboxes start from its memory instead of booting: each clone's RAM is
 * a memfd of its own with memory.ram copied in. A clone is a new sandbox,
 * not a copy: after the restore, before it counts as ready, its agent
 * takes the clone's identity (IDENTITY: token, environment, labels, host
 * name, lifetime from now, wall clock, RNG reseeded). The template of an
 * image with disks keeps the writable disk it booted with (disk.ext4);
 * each clone writes into a qcow2 overlay of its own over it. */
#ifndef SBX_TEMPLATE_H
#define SBX_TEMPLATE_H

#include <limits.h>
#include <stdint.h>

#include "launcher/sandbox.h"

#define TEMPLATE_NAME_MAX 63
#define TEMPLATE_SETTLE_MS 1000  /* READY to the save at least: boot's stragglers finish */
#define TEMPLATE_QUIET_MS 2500   /* and the guest's RAM not smaller for that long (free page reporting) */
#define TEMPLATE_QUIET_DROP (1 << 20) /* less given back is not worth the wait */
#define TEMPLATE_SETTLE_MAX_MS 10000
#define TEMPLATE_SEED_BYTES 64   /* the clone's RNG seed from the host */

struct template {
	char name[TEMPLATE_NAME_MAX + 1];
	char dir[PATH_MAX];           /* <data>/templates/NAME */
	char image[64];
	uint64_t memory_mib;
	unsigned cpus;
	uint64_t created;             /* unix time */
	uint64_t state_bytes;         /* the saved memory and device state (on disk) */
	char token[65];               /* its agent's token: only a clone's restore uses it */
	bool disk;                    /* it has disk.ext4, the backing file of clones' disks */
	bool old;                     /* an older sbx's (no memory.ram): refused, make it again */
	char stamp[512];              /* the image's files as they were (sizes, mtimes) */
	unsigned spares;              /* QEMUs kept started for its clones (launcher/spare.h) */
};

/* Boots a sandbox of image (NULL: the default) and memory_mib, saves it as
 * template NAME and stops it, then starts making its spares (at most
 * SPARES_MAX, launcher/spare.h) in the background. Nothing is left on
 * failure. */
int template_create(const char *name, const char *image, uint64_t memory_mib,
		    unsigned spares, struct template *t, struct sbx_error *err);

/* Reads template NAME; -ENOENT with a message when there is none. */
int template_load(const char *name, struct template *t, struct sbx_error *err);

/* The template a default `sbx create` of this image, memory and CPUs
 * would use: 0 and *t, or -ENOENT. */
int template_find(const char *image, uint64_t memory_mib, unsigned cpus, struct template *t);

/* Calls fn for every template, in no particular order. */
int template_list(void (*fn)(void *arg, const struct template *t), void *arg);

/* Removes template NAME. Safe while clones run or start: a clone reads the
 * saved state only while it is restored, from a file it keeps open. A
 * template with a disk is refused while a clone exists (its disk's
 * backing file). */
int template_remove(const char *name, struct sbx_error *err);

/* For launcher/sandbox.c: -ESTALE when the image changed since the
 * template was made (its guest has the old files cached); the clone's own
 * disk at path, a qcow2 overlay over the template's (qemu-img). */
struct image;
int template_image_check(const struct template *t, const struct image *im,
			 struct sbx_error *err);
int template_disk_clone(const struct template *t, const char *path, struct sbx_error *err);

/* For launcher/sandbox.c: a clone's -kernel, into out: kernel's setup
 * sectors (the boot header QEMU parses) and one page of its payload.
 * QEMU reads the whole file it is given into memory, to serve it over
 * fw_cfg to a firmware that will never ask (the clone's kernel is in its
 * RAM, and -no-reboot ends QEMU at a reset): 13.5 MiB of each clone's RSS
 * for the real one. 0, -ENOEXEC when kernel has no bzImage boot header
 * (then QEMU is given kernel itself), or -errno, with err set. */
int template_kernel_stub(const char *kernel, const char *out, struct sbx_error *err);

/* For launcher/sandbox.c: starts QEMU for sandbox sb from t's saved state
 * (argv: the clone's own command line, vsock device included), plugs the
 * vsock device in and hands the agent the clone's configuration text
 * (IDENTITY); returns once the agent answered as the clone. */
int template_restore(struct sandbox *sb, const struct template *t, char *const argv[],
		     const char *config, size_t config_len, struct sbx_error *err);

/* template_restore in two halves, for a template's spares
 * (launcher/spare.h): _start leaves QEMU started, waiting for its stream
 * with the clone's RAM filled in and answering QMP on q (which the caller
 * may close); _finish (q open, or q->fd < 0: opened again) loads the
 * stream, plugs the vsock device in and hands the agent the clone's
 * identity, and closes q. */
struct qmp;
int template_restore_start(struct sandbox *sb, const struct template *t, char *const argv[],
			   struct qmp *q, struct sbx_error *err);
int template_restore_finish(struct sandbox *sb, const struct template *t, struct qmp *q,
			    const char *config, size_t config_len, struct sbx_error *err);

#endif
