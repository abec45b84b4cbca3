/* What PID 1 sets up in a VM before anything else runs: mounts, a valid
 * stdio, kernel modules, the host name and the loopback interface. Each
 * step logs what failed and carries on: a sandbox with one missing mount
 * is better than a kernel panic. */
#ifndef SBX_BOOT_H
#define SBX_BOOT_H

void boot_mounts(void);
/* Makes fds 0-2 valid (the console, else /dev/null). */
void boot_stdio(void);
void boot_hostname(const char *name);
void boot_loopback(void);
/* After the balloon's module is loaded: smaller blocks reported. */
void boot_page_reporting(void);
/* Shutdown: sync and unmount everything we can, detaching what is busy. */
void boot_unmount_all(void);

#endif
