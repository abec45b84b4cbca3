/* QEMU's command line for a sandbox (launcher/qemu.c): a -M microvm guest
 * booting the sbx kernel and initramfs, its console in a file, and a vsock
 * device, either the host kernel's (vhost-vsock) or sbx-vsockd's
 * (vhost-user). */
#ifndef SBX_QEMU_H
#define SBX_QEMU_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define QEMU_DRIVES_MAX 20         /* image layers, the writable disk, volumes */
#define QEMU_ARGV_MAX (44 + 4 * QEMU_DRIVES_MAX)

/* A virtio disk: QEMU's -drive and -device values. */
struct qemu_drive {
	char drive[PATH_MAX + 96];
	char device[96];
};

struct qemu_spec {
	const char *name;          /* -name */
	bool kvm;                  /* else TCG */
	uint64_t memory_mib;
	unsigned cpus;
	const char *kernel;
	const char *initrd;
	const char *console;       /* the file the serial console goes to */
	const char *vhost_user;    /* sbx-vsockd's socket, or NULL for vhost-vsock */
	uint32_t cid;              /* vhost-vsock: the guest's CID */
	unsigned long tsc_khz;     /* the host's TSC frequency, 0: unknown */
	const struct qemu_drive *drives; /* launcher/image.h: the image's disks */
	unsigned ndrives;
	const char *share;         /* virtiofsd's socket: a root shared from the host */
	const char *share_tag;
};

/* The argument vector and the strings it points into. */
struct qemu_argv {
	char *argv[QEMU_ARGV_MAX];
	char mem[64], memobj[128], machine[64], append[256], serial[PATH_MAX + 8];
	char chardev[PATH_MAX + 32], device[64], cpus[16], name[80];
	char share_chardev[PATH_MAX + 32], share_device[96];
	char kernel[PATH_MAX], initrd[PATH_MAX];
};

/* Fills a->argv (NULL-terminated) for q. */
void qemu_argv_build(const struct qemu_spec *q, struct qemu_argv *a);

#endif
