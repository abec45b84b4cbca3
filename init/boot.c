/* VM start-up and the file-system half of shutdown, for PID 1: see
 * boot.h. Nothing here parses input from outside the image. */
#include "init/boot.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mount.h"
#include "lib/util.h"

static const struct mount_spec mounts[] = {
	{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, 0 },
	{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, 0 },
	{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755, 0 },
	{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755, 0 },
	{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, 0 },
	/* devpts, /dev/shm and cgroup2, which only commands use, are the
	 * server's, after READY (server/server.c). */
};

void boot_mounts(void)
{
	mount_missing(mounts, ARRAY_SIZE(mounts));
}

void boot_stdio(void)
{
	int fd = -1;

	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) >= 0)
			continue;
		if (fd < 0)
			fd = open("/dev/console", O_RDWR | O_NOCTTY);
		if (fd < 0)
			fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return;
		if (fd != i)
			dup2(fd, i);
	}
	if (fd > 2)
		close(fd);
}

/* getdents64's record (man 2 getdents): opendir would allocate, and
 * PID 1 allocates nothing before it listens (lib/config.h says why). */
struct dirent64_rec {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

bool boot_has_pci(void)
{
	char buf[1024] __attribute__((aligned(8)));
	int fd = open("/sys/bus/pci/devices", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool any = false;
	long n;

	if (fd < 0)
		return false;
	while (!any && (n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long at = 0; at < n && !any;) {
			const struct dirent64_rec *e = (const struct dirent64_rec *)(buf + at);

			any = e->name[0] != '.';
			at += e->reclen;
		}
	close(fd);
	return any;
}

void boot_hostname(const char *name)
{
	if (sethostname(name, strlen(name)) < 0)
		log_warn(errno, "unable to set the host name to %s", name);
}

void boot_nic(struct in_addr addr, unsigned prefix, struct in_addr gw)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	struct ifreq ifr = { 0 };
	struct rtentry rt = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	for (i = ifs; i && i->if_index; i++)
		if (strcmp(i->if_name, "lo") != 0)
			break;
	if (fd < 0 || !i || !i->if_index) {
		log_warn(fd < 0 ? errno : ENODEV, "unable to configure the NIC");
		goto out;
	}
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), i->if_name);
	sin->sin_family = AF_INET;
	sin->sin_addr = addr;
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		goto fail;
	sin->sin_addr.s_addr = htonl(prefix ? ~0u << (32 - prefix) : 0);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		goto fail;
	if ((r = iface_up(fd, ifr.ifr_name, IFF_UP | IFF_RUNNING)) < 0) {
		errno = -r;
		goto fail;
	}
	if (gw.s_addr) {
		((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_gateway)->sin_family = AF_INET;
		((struct sockaddr_in *)&rt.rt_gateway)->sin_addr = gw;
		rt.rt_flags = RTF_UP | RTF_GATEWAY;
		if (ioctl(fd, SIOCADDRT, &rt) < 0)
			goto fail;
	}
	goto out;
fail:
	log_warn(errno, "unable to configure the NIC %s", ifr.ifr_name);
out:
	if (fd >= 0)
		close(fd);
	if (ifs)
		if_freenameindex(ifs);
}

/* Free-page reporting (the balloon hands freed guest pages back to the
 * host) only looks at free blocks of page_reporting_order and up, and
 * only in a zone with more than 32 such blocks free above its low
 * watermark. The kernel sets the order to a pageblock's (9: 2 MiB) when
 * the balloon registers (6.1 ignores the boot parameter), so the 16 MiB
 * DMA zone (where QEMU loaded the compressed kernel: ~14 MiB touched at
 * boot, free afterwards) never qualifies. Order 5 (128 KiB blocks, 4 MiB
 * to have free) reports it too: ~14 MiB less host RSS per sandbox. */
void boot_page_reporting(void)
{
	static const char path[] = "/sys/module/page_reporting/parameters/page_reporting_order";
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "5", 1) != 1)
		log_warn(errno, "unable to set %s", path);
	if (fd >= 0)
		close(fd);
}

void boot_unmount_all(void)
{
	char mnts[64][256];
	int n = 0;
	FILE *f;

	sync();
	f = fopen("/proc/self/mounts", "re");
	if (f) {
		char line[512];

		while (n < 64 && fgets(line, sizeof(line), f)) {
			char dir[256];

			if (sscanf(line, "%*s %255s", dir) == 1 && strcmp(dir, "/") != 0)
				str_copy(mnts[n++], sizeof(mnts[0]), dir);
		}
		fclose(f);
	}
	/* Innermost first: the reverse of the order they were mounted. */
	for (int i = n - 1; i >= 0; i--) {
		if (umount2(mnts[i], 0) == 0)
			continue;
		if (umount2(mnts[i], 0) == 0 || umount2(mnts[i], MNT_DETACH) == 0)
			continue;
		log_warn(errno, "unable to unmount %s", mnts[i]);
	}
	sync();
}
