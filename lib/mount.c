/* Mounting once: see mount.h. */
#include "lib/mount.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "lib/log.h"

/* Whether something is mounted on dir already (the kernel may have
 * mounted devtmpfs; a restarted server finds its predecessor's): a mount
 * point's device is not its parent's. Two stat calls, not a read of
 * /proc/self/mounts: under TCG the first run of the kernel's mount table
 * printer costs 3-6 ms. A bind mount of a directory of the same file
 * system would look unmounted; only the kernel's and the agent's own
 * mounts are made there. With magic, the file system must be of that
 * type too (devtmpfs says TMPFS_MAGIC for any of its directories, hence
 * the device check as well). */
static bool mounted(const char *dir, unsigned long magic)
{
	char parent[64];
	const char *slash = strrchr(dir, '/');
	size_t len = slash > dir ? (size_t)(slash - dir) : 1;
	struct statfs fs;
	struct stat d, p;

	if (len >= sizeof(parent))
		return false;
	memcpy(parent, dir, len);
	parent[len] = '\0';
	if (magic && (statfs(dir, &fs) < 0 || (unsigned long)fs.f_type != magic))
		return false;
	return stat(dir, &d) == 0 && stat(parent, &p) == 0 && d.st_dev != p.st_dev;
}

void mount_missing(const struct mount_spec *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (mkdir(m[i].dir, m[i].mode) < 0 && errno != EEXIST)
			log_warn(errno, "unable to create %s", m[i].dir);
		if (!mounted(m[i].dir, m[i].magic) &&
		    mount(m[i].src, m[i].dir, m[i].type, m[i].flags, m[i].data) < 0)
			log_warn(errno, "unable to mount %s on %s", m[i].type, m[i].dir);
	}
}
