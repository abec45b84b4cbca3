/* What PID 1 sets up in a VM before anything else runs: mounts, a valid
 * stdio, kernel modules, the host name (the loopback interface is the
 * server's: net/loopback.h). Each
 * step logs what failed and carries on: a sandbox with one missing mount
 * is better than a kernel panic. */
#ifndef SBX_BOOT_H
#define SBX_BOOT_H

#include <netinet/in.h>
#include <stdbool.h>

void boot_mounts(void);
/* Makes fds 0-2 valid (the console, else /dev/null). */
void boot_stdio(void);
/* Whether the machine has PCI devices (a `pc` machine; microvm has none):
 * then PID 1 loads virtio over PCI too. */
bool boot_has_pci(void);
void boot_hostname(const char *name);
/* The guest's one NIC (the first interface that is not lo): addr/prefix,
 * up, and a default route via gw (none when gw is 0.0.0.0). */
void boot_nic(struct in_addr addr, unsigned prefix, struct in_addr gw);
/* After the balloon's module is loaded: smaller blocks reported. */
void boot_page_reporting(void);
/* Shutdown: sync and unmount everything we can, detaching what is busy. */
void boot_unmount_all(void);

#endif
