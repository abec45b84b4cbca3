/* Moving PID 1 from the initramfs into a root file system on disks
 * (docs/IMAGES.md): the image's read-only layers under an overlay whose
 * upper layer is the sandbox's own writable disk, found by the serial
 * numbers the launcher gave the disks. sbx-init stays PID 1: it empties the
 * initramfs (its memory goes back to the guest), moves the kernel's file
 * systems along, and makes the overlay its root. Nothing here parses input
 * from outside the image but the configuration PID 1 already read. */
#include "init/root.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/kmod.h"
#include "lib/log.h"
#include "lib/util.h"

#define ROOT_DIR "/.sbx"             /* in the initramfs: the mounts below */
#define NEW_ROOT ROOT_DIR "/root"
#define DISK_WAIT_MS 5000

/* The kernel's file systems PID 1 mounted in the initramfs; each moves
 * with what is mounted below it. */
static const char *const moved[] = { "/dev", "/proc", "/sys", "/run" };

static int upper_fd = -1; /* root_upper_fd */
static bool switched;     /* root_switched */

/* mkdir -p, for a volume's mount point. */
static int mkdir_p(const char *path, mode_t mode)
{
	char p[CONFIG_VOLUME_PATH_MAX];

	if (str_copy(p, sizeof(p), path) < 0)
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	return mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* /dev/vdX of the virtio disk whose serial is `serial`: virtio_blk shows
 * it in /sys/block/vdX/serial. Waits for the disk to appear. */
static int disk_find(const char *serial, char *dev, size_t n)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	for (int waited = 0; waited <= DISK_WAIT_MS; waited += 20) {
		DIR *d = opendir("/sys/block");
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[300], got[64];
			ssize_t len;
			int fd;

			if (strncmp(e->d_name, "vd", 2) != 0)
				continue;
			snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			len = read(fd, got, sizeof(got) - 1);
			close(fd);
			if (len <= 0)
				continue;
			got[len] = '\0';
			got[strcspn(got, "\n")] = '\0';
			if (strcmp(got, serial) == 0) {
				snprintf(dev, n, "/dev/%s", e->d_name);
				closedir(d);
				return 0;
			}
		}
		if (d)
			closedir(d);
		nanosleep(&pause, NULL);
	}
	return -ENODEV;
}

/* Mounts the disk with serial `serial` on dir: an image layer (erofs, or
 * ext4 read-only) or a writable ext4 disk. */
static int disk_mount(const char *serial, const char *dir, bool rw)
{
	static const char *const types[] = { "erofs", "ext4" };
	char dev[64];
	int r = disk_find(serial, dev, sizeof(dev));

	if (r < 0) {
		log_error(r, "no disk with serial %s", serial);
		return r;
	}
	r = mkdir_p(dir, 0755);
	if (r < 0) {
		log_error(r, "unable to create %s", dir);
		return r;
	}
	for (size_t i = rw ? 1 : 0; i < ARRAY_SIZE(types); i++) {
		unsigned long flags = MS_NOATIME | (rw ? 0 : MS_RDONLY);
		/* A snapshot's layer was copied from a mounted disk: its journal
		 * is not replayed into a read-only layer. */
		const char *data = !rw && !strcmp(types[i], "ext4") ? "noload" : NULL;

		if (mount(dev, dir, types[i], flags, data) == 0)
			return 0;
		r = -errno;
	}
	log_error(r, "unable to mount %s (%s) on %s", dev, serial, dir);
	return r;
}

/* Removes everything of the initramfs but the mounts under it, as
 * switch_root does: the files are in RAM, nothing will read them again. */
static void empty_dir(int dfd, dev_t rootdev)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;

	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d))) {
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_dev != rootdev)
			continue; /* a mount point: not ours to empty */
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub >= 0)
				empty_dir(sub, rootdev);
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR); /* fails above a mount */
		} else {
			unlinkat(dirfd(d), e->d_name, 0);
		}
	}
	closedir(d);
}

/* The image's /etc/hosts names the sandbox, as sudo and many programs
 * expect of their own host name. */
static void hosts_write(const char *hostname)
{
	char text[256];
	int fd, len;

	if (!hostname[0])
		return;
	len = snprintf(text, sizeof(text), "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
		       "::1\tlocalhost ip6-localhost ip6-loopback\n", hostname);
	fd = open("/etc/hosts", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fd_write_all(fd, text, (size_t)len) < 0)
		log_warn(errno, "unable to write /etc/hosts");
	if (fd >= 0)
		close(fd);
}

static void initramfs_empty(void)
{
	struct stat st;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		log_warn(errno, "unable to empty the initramfs");
		if (fd >= 0)
			close(fd);
		return;
	}
	empty_dir(fd, st.st_dev);
}

/* Makes NEW_ROOT, already mounted, the root: moves the kernel's file
 * systems into it, empties the initramfs and moves there. A root that
 * is `ours` (an image's overlay) also gets a /tmp and an /etc/hosts. */
static int root_enter(const struct config *c, bool ours)
{
	int r;

	/* From here on there is no way back: a half-moved root is worse than
	 * a failed boot, so every step below only logs. */
	umount2("/tmp", MNT_DETACH); /* the initramfs's; the new root gets its own */
	for (size_t i = 0; i < ARRAY_SIZE(moved); i++) {
		char to[64];

		snprintf(to, sizeof(to), NEW_ROOT "%s", moved[i]);
		if (mkdir(to, 0755) < 0 && errno != EEXIST)
			log_warn(errno, "unable to create %s", to);
		if (mount(moved[i], to, NULL, MS_MOVE, NULL) < 0)
			log_warn(errno, "unable to move %s into the new root", moved[i]);
	}
	initramfs_empty();
	if (chdir(NEW_ROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
	    chdir("/") < 0) {
		r = -errno;
		log_error(r, "unable to make %s the root", NEW_ROOT);
		return r;
	}
	switched = true;
	if (!ours)
		return 0;
	/* Programs expect /tmp to be writable by all, whatever the image. */
	if (mkdir("/tmp", 01777) < 0 && errno != EEXIST)
		log_warn(errno, "unable to create /tmp");
	chmod("/tmp", 01777);
	hosts_write(c->hostname);
	return 0;
}

/* A root shared by the host over virtio-fs (a container's rootfs, oci/):
 * mounted as it is, writes go to the host's directory. It is not ours to
 * change: no /etc/hosts is written and /tmp is a tmpfs of the guest. */
static int root_share(const struct config *c)
{
	int r;

	kmod_load_list(KMOD_SHARE_LIST);
	if (mkdir(ROOT_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(NEW_ROOT, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mount(c->root_share, NEW_ROOT, "virtiofs", c->root_readonly ? MS_RDONLY : 0,
		  NULL) < 0) {
		r = -errno;
		log_error(r, "unable to mount the shared root (virtio-fs tag %s)", c->root_share);
		return r;
	}
	r = root_enter(c, false);
	if (r == 0 && mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		log_warn(errno, "unable to mount a tmpfs on /tmp");
	return r;
}

int root_switch(const struct config *c)
{
	char lower[1024] = "", opts[1200];
	char dir[64];
	int r;

	if (c->root_share[0])
		return root_share(c);
	if (c->nroot_lower || c->nvolumes)
		kmod_load_list(KMOD_DISK_LIST);
	if (!c->root_upper[0] || c->nroot_lower == 0)
		return 0;
	/* The read-only layers, top first, each at ROOT_DIR/lN; the image's
	 * own file system is its root, a snapshot's is its upper/. */
	for (size_t i = 0; i < c->nroot_lower; i++) {
		snprintf(dir, sizeof(dir), ROOT_DIR "/l%zu", i);
		r = disk_mount(c->root_lower[i], dir, false);
		if (r < 0)
			return r;
		/* A snapshot's layer is the upper/ of a sandbox's disk. */
		snprintf(lower + strlen(lower), sizeof(lower) - strlen(lower), "%s%s%s",
			 i ? ":" : "", dir, i + 1 < c->nroot_lower ? "/upper" : "");
	}
	r = disk_mount(c->root_upper, ROOT_DIR "/rw", true);
	if (r < 0)
		return r;
	if ((mkdir(ROOT_DIR "/rw/upper", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(ROOT_DIR "/rw/work", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(NEW_ROOT, 0755) < 0 && errno != EEXIST)) {
		r = -errno;
		log_error(r, "unable to prepare the writable layer");
		return r;
	}
	/* Kept for FREEZE: the disk's mount leaves every path with the switch. */
	upper_fd = open(ROOT_DIR "/rw", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (upper_fd < 0)
		log_warn(errno, "unable to open " ROOT_DIR "/rw: snapshots will not freeze it");
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=" ROOT_DIR "/rw/upper,workdir="
		 ROOT_DIR "/rw/work", lower);
	if (mount("overlay", NEW_ROOT, "overlay", MS_NOATIME, opts) < 0) {
		r = -errno;
		log_error(r, "unable to mount the root overlay (%s)", opts);
		return r;
	}
	return root_enter(c, true);
}

bool root_switched(void)
{
	return switched;
}

int root_upper_fd(void)
{
	return upper_fd;
}

int root_mount_tmpfs(const struct config *c)
{
	int r = 0;

	for (size_t i = 0; i < CONFIG_TMPFS_MAX; i++) {
		const struct config_tmpfs *t = &c->tmpfs[i];
		int v;

		if (!t->path[0])
			continue;
		v = mkdir_p(t->path, 0755);
		if (v == 0 && mount("tmpfs", t->path, "tmpfs", t->flags, t->data) < 0)
			v = -errno;
		if (v < 0) {
			log_error(v, "unable to mount a tmpfs on %s (%s)", t->path, t->data);
			if (r == 0)
				r = v;
		}
	}
	return r;
}

int root_mount_volumes(const struct config *c)
{
	int r = 0;

	for (size_t i = 0; i < c->nvolumes; i++) {
		int v = disk_mount(c->volumes[i].serial, c->volumes[i].path, true);

		if (v < 0 && r == 0)
			r = v;
	}
	return r;
}
