/* Loading kernel modules from a list (lib/kmod.c), for PID 1 and the
 * server alike. */
#ifndef SBX_KMOD_H
#define SBX_KMOD_H

/* Loads the modules listed in the file `list` (one .ko path per line, in
 * dependency order; empty lines and # comments skipped). A module that
 * fails is logged and skipped. 0, or -errno when the list cannot be read
 * (-ENOENT silently), -EFBIG (and none loaded) when it is over 4 KiB:
 * it is read into the stack, PID 1 calls no malloc before it listens
 * (rootfs/build.sh refuses to build a longer list). */
int kmod_load_list(const char *list);
/* Opens the modules of `list` (at most max), for kmod_load_fds later: the
 * files may be gone by then (the initramfs emptied, init/root.c). The
 * number opened; a file that cannot be opened is logged and skipped, and
 * a list longer than max is logged and cut there (over 4 KiB: none, as
 * kmod_load_list). */
int kmod_open_list(const char *list, int *fds, int max);
/* Loads and closes the n modules kmod_open_list opened. */
void kmod_load_fds(int *fds, int n);

/* The lists the image carries (rootfs/build.sh): the modules PID 1 loads
 * at boot, and those the egress path needs, loaded only when egress is on
 * (by the server; by PID 1 before it leaves the initramfs for a disk). */
#define KMOD_BOOT_LIST "/etc/sbx/modules"
#define KMOD_EGRESS_LIST "/etc/sbx/modules.egress"
/* Loaded by PID 1 after the boot list when the machine has PCI devices
 * (init/boot.c): virtio over PCI. */
#define KMOD_PCI_LIST "/etc/sbx/modules.pci"
/* Loaded by PID 1 for a sandbox with disks (init/root.c). */
#define KMOD_DISK_LIST "/etc/sbx/modules.disk"
/* Loaded by PID 1 for a root shared over virtio-fs (init/root.c). */
#define KMOD_SHARE_LIST "/etc/sbx/modules.share"
/* Loaded by PID 1 for a sandbox given a NIC (net.addr, init/boot.c). */
#define KMOD_NET_LIST "/etc/sbx/modules.net"
/* Opened by PID 1 at boot, loaded once the server has told the host it is
 * ready (init/pid1.c): the balloon, which only gives memory back. */
#define KMOD_LATE_LIST "/etc/sbx/modules.late"

#endif
