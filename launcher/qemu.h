/* QEMU's command line for a sandbox (launcher/qemu.c): a -M microvm guest
 * booting the sbx kernel and initramfs, its console in a file, and a vsock
 * device, either the host kernel's (vhost-vsock) or sbx-vsockd's
 * (vhost-user). A pausable sandbox is a -M pc guest instead, its devices
 * on PCI at fixed slots, so that the vsock device (which QEMU 7.2 cannot
 * migrate) can be unplugged before its state is saved and plugged again
 * after the restore (launcher/pause.c). */
#ifndef SBX_QEMU_H
#define SBX_QEMU_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define QEMU_DRIVES_MAX 20         /* image layers, the writable disk, volumes */
#define QEMU_ARGV_MAX (56 + 4 * QEMU_DRIVES_MAX)
#define QEMU_VSOCK_ID "vsock"      /* the vsock device's id on a pausable sandbox */
#define QEMU_VSOCK_SLOT 2          /* and its PCI slot; the balloon's is 3, disks' 4 on */
#define QEMU_VHOST_USER_CHARDEV "vu"

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
	bool pausable;             /* -M pc, PCI devices at fixed slots (see above) */
	const char *qmp;           /* a QMP socket to listen on, or NULL */
	const char *tap;           /* a NIC on this tap device (QEMU runs in its network
				    * namespace: sbx-oci), or NULL: none */
	const char *mac;           /* the NIC's MAC address */
};

/* The argument vector and the strings it points into. */
struct qemu_argv {
	char *argv[QEMU_ARGV_MAX];
	char mem[64], memobj[128], machine[64], append[256], serial[PATH_MAX + 8];
	char chardev[PATH_MAX + 32], device[96], cpus[16], name[80];
	char share_chardev[PATH_MAX + 32], share_device[96];
	char kernel[PATH_MAX], initrd[PATH_MAX];
	char balloon[64], qmp[PATH_MAX + 32];
	char drive_dev[QEMU_DRIVES_MAX][128];
	char netdev[64], nic[96];
};

/* Fills a->argv (NULL-terminated) for q. */
void qemu_argv_build(const struct qemu_spec *q, struct qemu_argv *a);

#endif
