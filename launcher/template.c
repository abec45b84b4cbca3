/* Templates and their clones: see template.h. A template is a directory
 * <data>/templates/NAME holding `meta` (key = value), `memory.ram` (the
 * guest's RAM, a sparse file: its pages of data only), `memory.state`
 * (QEMU's migration stream without the RAM, QEMU's x-ignore-shared: the
 * devices' state, made by sandbox_pause_then; the vsock device, which QEMU
 * 7.2 cannot migrate, is unplugged for the save and a fresh one is plugged
 * into each clone) and, for an image with disks, `disk.ext4`: the writable
 * disk of the saved sandbox, consistent with the memory (QEMU flushes it
 * when the migration completes), which clones' qcow2 overlays have as
 * their read-only backing file. A clone's RAM is a memfd of its own with
 * memory.ram copied in (ram_clone), loaded with the same capability.
 * Published by renaming a staging directory, removed by renaming it away
 * first: a reader sees a whole one or none. A template of an older sbx
 * (zero.map, the RAM inside memory.state) is listed as old and refused. */
#include "launcher/template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "launcher/image.h"
#include "launcher/pause.h"
#include "launcher/qemu.h"
#include "launcher/qmp.h"
#include "launcher/spare.h"
#include "lib/config.h"
#include "lib/util.h"

#define QMP_TIMEOUT_MS 10000
#define AGENT_TIMEOUT_MS 30000
#define RAM_CHUNK (2u << 20)
#define RAM_PAGE 4096u
#define RAM_MEMFD "/memfd:memory-backend-memfd" /* QEMU's name for the guest's RAM */
#define ZERO_MAP "zero.map" /* an older sbx's: where memory.state's RAM was zero */
#define RAM_FILE "memory.ram"
#define STATE_FILE "memory.state"
#define STATE_FDNAME "sbx-state" /* the stream's descriptor, in QEMU (getfd) */
#define DISK_FILE "disk.ext4"
#define KERNEL_STUB_MAX (256u * 512 + RAM_PAGE) /* setup_sects is a byte */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void templates_dir(char *out, size_t n)
{
	snprintf(out, n, "%s/templates", image_data_dir());
}

static int meta_set(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	struct template *t = ctx;
	uint64_t v = 0;

	if (!strcmp(key, "image"))
		str_copy(t->image, sizeof(t->image), value);
	else if (!strcmp(key, "stamp"))
		str_copy(t->stamp, sizeof(t->stamp), value);
	else if (!strcmp(key, "disk"))
		t->disk = !strcmp(value, "yes");
	else if (!strcmp(key, "token"))
		str_copy(t->token, sizeof(t->token), value);
	else if (str_to_u64(value, UINT64_MAX, &v) < 0)
		return 0;
	else if (!strcmp(key, "memory"))
		t->memory_mib = v;
	else if (!strcmp(key, "cpus"))
		t->cpus = (unsigned)v;
	else if (!strcmp(key, "created"))
		t->created = v;
	else if (!strcmp(key, "spares"))
		t->spares = (unsigned)MIN(v, SPARES_MAX);
	return 0;
}

/* 0, -ENOENT when there is no such template (or a half-removed one);
 * t->old for one of an older sbx. */
static int meta_read(const char *name, struct template *t)
{
	char path[PATH_MAX + 16], err[256], text[4096];
	struct stat st;
	ssize_t n;
	int fd;

	memset(t, 0, sizeof(*t));
	str_copy(t->name, sizeof(t->name), name);
	templates_dir(path, sizeof(path));
	snprintf(t->dir, sizeof(t->dir), "%s/%s", path, name);
	snprintf(path, sizeof(path), "%s/meta", t->dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return -EIO;
	kv_parse_text(text, (size_t)n, path, meta_set, t, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/" STATE_FILE, t->dir);
	if (stat(path, &st) < 0)
		return -ENOENT;
	t->state_bytes = (uint64_t)st.st_size;
	snprintf(path, sizeof(path), "%s/" RAM_FILE, t->dir);
	if (stat(path, &st) == 0)
		t->state_bytes += (uint64_t)st.st_blocks * 512;
	else if (errno == ENOENT)
		t->old = true;
	else
		return -errno;
	snprintf(path, sizeof(path), "%s/" DISK_FILE, t->dir);
	if (t->disk && access(path, R_OK) < 0)
		return -EBADMSG;
	if (!t->image[0] || !t->memory_mib || !t->cpus || strlen(t->token) < 16)
		return -EBADMSG;
	return 0;
}

int template_load(const char *name, struct template *t, struct sbx_error *err)
{
	int r;

	if (!image_name_ok(name))
		return sbx_fail(err, EINVAL, "%s is not a template name (1-63 letters, digits, '-', "
				"'_' and '.', starting with a letter or digit)", name);
	r = meta_read(name, t);
	if (r == -ENOENT)
		return sbx_fail(err, ENOENT, "no template %s (`sbx template ls` lists them)", name);
	if (r < 0)
		return sbx_fail(err, -r, "template %s is damaged (%s/meta); remove it with "
				"`sbx template rm %s`", name, t->dir, name);
	if (t->old)
		return sbx_fail(err, EPROTO, "template %s was made by an older sbx (its RAM is in "
				"memory.state, which clones no longer load): make it again with `sbx "
				"template rm %s` then `sbx template create %s --image %s --memory %llu`",
				name, name, name, t->image, (unsigned long long)t->memory_mib);
	return 0;
}

int template_list(void (*fn)(void *arg, const struct template *t), void *arg)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;

	templates_dir(dir, sizeof(dir));
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct template t;

		if (de->d_name[0] == '.' || !image_name_ok(de->d_name))
			continue;
		if (meta_read(de->d_name, &t) == 0)
			fn(arg, &t);
	}
	closedir(d);
	return 0;
}

struct find {
	const char *image;
	uint64_t memory_mib;
	unsigned cpus;
	struct template *out;
	bool found;
};

static void find_one(void *arg, const struct template *t)
{
	struct find *f = arg;

	/* The oldest of the fitting ones: the same answer every time. */
	if (t->old || strcmp(t->image, f->image) || t->memory_mib != f->memory_mib || t->cpus != f->cpus ||
	    (f->found && (f->out->created < t->created ||
			  (f->out->created == t->created && strcmp(f->out->name, t->name) < 0))))
		return;
	*f->out = *t;
	f->found = true;
}

int template_find(const char *image, uint64_t memory_mib, unsigned cpus, struct template *t)
{
	struct find f = { image, memory_mib, cpus ? cpus : 1, t, false };

	template_list(find_one, &f);
	return f.found ? 0 : -ENOENT;
}

static void remove_files(const char *dir)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/" STATE_FILE, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" RAM_FILE, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" DISK_FILE, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" ZERO_MAP, dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/meta", dir);
	unlink(path);
	rmdir(dir);
}

struct user {
	const char *name;
	char id[SANDBOX_ID_MAX + 1];
};

static void find_user(void *arg, const struct sandbox *sb)
{
	struct user *u = arg;

	if (!u->id[0] && sb->disk[0] && !strcmp(sb->template, u->name))
		str_copy(u->id, sizeof(u->id), sb->id);
}

int template_remove(const char *name, struct sbx_error *err)
{
	char dir[PATH_MAX], gone[PATH_MAX + 32];
	struct user u = { .name = name };
	struct template t;
	int r, lock;

	if ((r = template_load(name, &t, err)) < 0 && r != -EBADMSG && r != -EPROTO)
		return r;
	if (t.disk) {
		sandbox_list(find_user, &u);
		if (u.id[0])
			return sbx_fail(err, EBUSY, "template %s is in use: the disk of sandbox %s "
					"is an overlay over its disk (sbx kill %s first)", name, u.id,
					u.id);
	}
	templates_dir(dir, sizeof(dir));
	snprintf(gone, sizeof(gone), "%s/.%s.rm-%d", dir, name, (int)getpid());
	/* Its spares first, with no filler at work until it is gone. A
	 * spare being taken is a clone on its way: its disk is an overlay
	 * over the template's too. (The lock file stays: a filler may wait
	 * on it.) */
	lock = spares_lock(name);
	sandbox_spares(name, SPARES_STOP);
	if (t.disk && sandbox_spares(name, SPARES_TAKING))
		r = sbx_fail(err, EBUSY, "template %s is in use: a clone of it is being made", name);
	else
		r = rename(t.dir, gone) < 0 ? sbx_fail(err, errno, "cannot remove %s: %s", t.dir,
						       strerror(errno)) : 0;
	if (lock >= 0)
		close(lock);
	if (r == 0)
		remove_files(gone);
	return r;
}

static int meta_write(const char *dir, const struct template *t, struct sbx_error *err)
{
	char path[PATH_MAX + 16], num[32];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/meta", dir);
	/* It holds the template's token. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return sbx_fail(err, errno, "cannot write %s: %s", path, strerror(errno));
	}
	fprintf(f, "# written by sbx template create\n");
	kv_write(f, "image", t->image);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)t->memory_mib);
	kv_write(f, "memory", num);
	snprintf(num, sizeof(num), "%u", t->cpus);
	kv_write(f, "cpus", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)t->created);
	kv_write(f, "created", num);
	kv_write(f, "token", t->token);
	kv_write(f, "disk", t->disk ? "yes" : "no");
	kv_write(f, "stamp", t->stamp);
	snprintf(num, sizeof(num), "%u", t->spares);
	kv_write(f, "spares", num);
	if (fflush(f) != 0 || fsync(fd) < 0) {
		int e = errno;

		fclose(f);
		return sbx_fail(err, e, "cannot write %s: %s", path, strerror(e));
	}
	fclose(f);
	return 0;
}

/* The image's files as a clone's guest expects them: its page cache came
 * from them. */
static void image_stamp(const struct image *im, char *out, size_t n)
{
	size_t at = 0;

	out[0] = '\0';
	for (unsigned i = 0; i <= im->nlayers && im->base[0]; i++) {
		const char *file = i < im->nlayers ? im->layers[i] : im->base;
		struct stat st;

		if (stat(file, &st) < 0)
			memset(&st, 0, sizeof(st));
		at += (size_t)snprintf(out + at, n - at, "%s%lld.%lld.%lld", i ? "," : "",
				       (long long)st.st_size, (long long)st.st_mtim.tv_sec,
				       (long long)st.st_ino);
		if (at >= n)
			break;
	}
}

int template_image_check(const struct template *t, const struct image *im,
			 struct sbx_error *err)
{
	char stamp[sizeof(t->stamp)];

	image_stamp(im, stamp, sizeof(stamp));
	if (strcmp(stamp, t->stamp) || (im->base[0] != '\0') != t->disk)
		return sbx_fail(err, ESTALE, "image %s changed since template %s was made (make the "
				"template again)", im->name, t->name);
	return 0;
}

int template_disk_clone(const struct template *t, const char *path, struct sbx_error *err)
{
	char backing[PATH_MAX + 16], out[256];
	char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing,
			 (char *)path, NULL };
	int st;

	snprintf(backing, sizeof(backing), "%s/" DISK_FILE, t->dir);
	st = image_tool_run(argv, -1, out, sizeof(out));
	if (st != 0) {
		unlink(path);
		return sbx_fail(err, st == 127 ? ENOENT : EIO, "cannot make the disk of a clone of "
				"template %s: qemu-img %s", t->name, st == 127 ?
				"is missing (Debian's qemu-utils)" : out);
	}
	return 0;
}

/* ---- the guest's RAM ---- */

/* The guest's RAM (QEMU's memfd), opened through /proc. */
static int ram_open(pid_t pid)
{
	char dir[64], path[96], link[128];
	struct dirent *de;
	int fd = -ENOENT;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	if (!(d = opendir(dir)))
		return -errno;
	while (fd == -ENOENT && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (str_starts_with(link, RAM_MEMFD) && (fd = open(path, O_RDWR | O_CLOEXEC)) < 0)
			fd = -errno;
	}
	closedir(d);
	return fd;
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, off_t at)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
		at += n;
	}
	return 0;
}

/* The next run of data in fd at or after off: [*data, *hole). 1 when only
 * a hole is left (ENXIO), 0, or -errno: an error is not taken for the end,
 * or a copy would lose the guest's memory without a word. */
static int next_extent(int fd, off_t off, off_t *data, off_t *hole)
{
	if ((*data = lseek(fd, off, SEEK_DATA)) < 0)
		return errno == ENXIO ? 1 : -errno;
	if ((*hole = lseek(fd, *data, SEEK_HOLE)) < 0)
		return -errno;
	return 0;
}

/* The template's RAM, once its VM is saved and stopped, into file out
 * (memory.ram): a sparse copy, its pages of data only (the memfd's holes
 * and its zero pages stay holes). 0 or -errno. */
static int ram_save_sparse(int in, int out)
{
	static const uint8_t zero[RAM_PAGE];
	off_t end = lseek(in, 0, SEEK_END), off = 0;
	uint8_t *buf;
	int r = 0;

	if (end < 0)
		return -errno;
	if (!(buf = malloc(RAM_CHUNK)))
		return -ENOMEM;
	while (off < end && r == 0) {
		off_t data, hole;

		if ((r = next_extent(in, off, &data, &hole)) != 0)
			break;
		for (off_t at = data; at < hole && r == 0;) {
			ssize_t got = pread(in, buf, (size_t)MIN((off_t)RAM_CHUNK, hole - at), at);
			ssize_t p = 0, run = -1;

			/* Whole pages only (a memfd's extents are): what is
			 * left of a short read is read again. */
			if (got < 0 || (got -= got % RAM_PAGE) == 0) {
				r = got < 0 ? -errno : -EIO;
				break;
			}
			/* Runs of pages that are not zero, each written at once. */
			for (; p <= got && r == 0; p += RAM_PAGE) {
				bool z = p == got || memcmp(buf + p, zero, RAM_PAGE) == 0;

				if (!z && run < 0)
					run = p;
				if (z && run >= 0) {
					r = pwrite_all(out, buf + run, (size_t)(p - run), at + run);
					run = -1;
				}
			}
			at += got;
		}
		off = hole;
	}
	free(buf);
	if (r > 0)
		r = 0; /* a hole up to the end */
	if (r == 0 && ftruncate(out, end) < 0)
		r = -errno;
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	return r;
}

/* READY comes before boot's last stragglers (module loading, the first
 * page-ins): let them finish so that clones start quiet. And the pages the
 * guest freed while booting (its initrd, the kernel's init sections) are
 * still data in its memfd until its free page reporting (the balloon,
 * launcher/qemu.c) gives them back, in rounds 2 s apart, the first ~2 s
 * after READY: until then each clone would copy them (~30 MB of ~120 for
 * the minimal image). So: at least TEMPLATE_SETTLE_MS, then until the
 * memfd's allocated size has not fallen by TEMPLATE_QUIET_DROP for
 * TEMPLATE_QUIET_MS (QEMU punches reported pages out of it; the guest
 * touching a page more, or a round giving back a few, is no news), at most
 * TEMPLATE_SETTLE_MAX_MS. The balloon's module is loaded only after READY
 * (init/pid1.c), so the first round can come ~2 s into the wait, or later
 * on a busy host: until a round has given pages back, the quiet time
 * asked is twice as long. The guest growing in between raises the mark
 * (a round that gives back what it grew by is still news). */
static void settle(const struct sandbox *sb)
{
	long long start = now_ms(), changed = start;
	blkcnt_t mark = -1; /* 512-byte blocks allocated: the most since the last news */
	bool given_back = false;
	int fd = ram_open(sb->qemu_pid);

	for (;;) {
		long long now = now_ms(), quiet = given_back ? TEMPLATE_QUIET_MS : 2 * TEMPLATE_QUIET_MS;
		struct stat st;

		if (fd >= 0 && fstat(fd, &st) == 0) {
			if (mark >= 0 && (mark - st.st_blocks) * 512 >= TEMPLATE_QUIET_DROP) {
				given_back = true;
				changed = now;
				mark = st.st_blocks;
			} else if (st.st_blocks > mark) {
				mark = st.st_blocks;
			}
		}
		if (now - start >= TEMPLATE_SETTLE_MAX_MS ||
		    (now - start >= TEMPLATE_SETTLE_MS && (fd < 0 || now - changed >= quiet)))
			break;
		usleep(100000);
	}
	if (fd >= 0)
		close(fd);
}

/* After the template's save (the stream without its RAM), its VM stopped:
 * the RAM from its memfd into memory.ram. */
static int ram_save(struct sandbox *sb, void *stage, struct sbx_error *err)
{
	char path[PATH_MAX + 16];
	int in = ram_open(sb->qemu_pid), out, r;

	if (in < 0)
		return sbx_fail(err, -in, "cannot open the RAM of %s: %s", sb->id, strerror(-in));
	snprintf(path, sizeof(path), "%s/" RAM_FILE, (const char *)stage);
	/* The guest's memory: readable by us alone. */
	if ((out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		r = sbx_fail(err, errno, "cannot create %s: %s", path, strerror(errno));
		close(in);
		return r;
	}
	r = ram_save_sparse(in, out);
	close(in);
	close(out);
	if (r < 0)
		return sbx_fail(err, -r, "cannot save the RAM of %s to %s: %s", sb->id, path,
				strerror(-r));
	return 0;
}

/* The clone's RAM: a memfd of its own, of the template's size, which QEMU
 * maps shared through /proc/<our pid>/fd (sbx-vsockd maps it too, as
 * vhost-user), and *in, memory.ram opened, for ram_fill. Freed with the
 * last process that maps it: nothing to remove on any path. Returns the
 * fd or -errno with err set. */
static int ram_clone(const struct template *t, int *in, struct sbx_error *err)
{
	char path[PATH_MAX + 16];
	off_t size = (off_t)(t->memory_mib << 20);
	struct stat st;
	int fd, r;

	snprintf(path, sizeof(path), "%s/" RAM_FILE, t->dir);
	if ((*in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return sbx_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	if (fstat(*in, &st) < 0 || st.st_size != size) {
		r = sbx_fail(err, EBADMSG, "template %s is damaged: %s is not %llu MiB (remove it "
			     "with `sbx template rm %s`)", t->name, path,
			     (unsigned long long)t->memory_mib, t->name);
		goto fail;
	}
	if ((fd = memfd_create("sbx-clone-ram", MFD_CLOEXEC)) < 0 || ftruncate(fd, size) < 0) {
		r = sbx_fail(err, errno, "cannot make the RAM of a clone (%llu MiB): %s",
			     (unsigned long long)t->memory_mib, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	return fd;
fail:
	close(*in);
	*in = -1;
	return r;
}

/* memory.ram's data extents (in) into the clone's RAM (fd), in the kernel
 * (one copy). Runs while QEMU starts: it does not write the guest's RAM
 * before it loads the stream, which comes after this. */
static int ram_fill(const struct template *t, int in, int fd, struct sbx_error *err)
{
	off_t size = (off_t)(t->memory_mib << 20), off = 0;

	while (off < size) {
		off_t data, hole;
		int r = next_extent(in, off, &data, &hole);

		if (r > 0)
			break; /* a hole up to the end */
		if (r < 0)
			return sbx_fail(err, -r, "cannot read %s/" RAM_FILE " at %lld: %s", t->dir,
					(long long)off, strerror(-r));
		for (off = data; off < hole;) {
			off_t at = off;
			/* sendfile writes at fd's own offset. */
			ssize_t n = lseek(fd, off, SEEK_SET) < 0 ? -1 :
				    sendfile(fd, in, &off, (size_t)MIN(hole - off, (off_t)1 << 30));

			if (n <= 0)
				return sbx_fail(err, n < 0 ? errno : EIO, "cannot copy %s/" RAM_FILE
						" into a clone's RAM at %lld: %s", t->dir, (long long)at,
						n < 0 ? strerror(errno) : "short copy");
		}
	}
	return 0;
}

int template_create(const char *name, const char *image, uint64_t memory_mib,
		    unsigned spares, struct template *t, struct sbx_error *err)
{
	char dir[PATH_MAX], stage[PATH_MAX + 32], state[PATH_MAX], path[PATH_MAX + 16];
	struct sandbox_opts o = { 0 };
	struct sbx_error e2;
	struct sandbox sb;
	struct image im;
	int r;

	if (!image_name_ok(name))
		return sbx_fail(err, EINVAL, "%s is not a template name (1-63 letters, digits, '-', "
				"'_' and '.', starting with a letter or digit)", name);
	if ((r = image_find(image ? image : image_default(), &im, err)) < 0)
		return r;
	templates_dir(dir, sizeof(dir));
	if ((r = sandbox_mkdirs(dir)) < 0)
		return sbx_fail(err, -r, "cannot create %s: %s", dir, strerror(-r));
	snprintf(stage, sizeof(stage), "%s/.%s.new-%d", dir, name, (int)getpid());
	snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", name);
	if (access(dir, F_OK) == 0)
		return sbx_fail(err, EEXIST, "a template named %s already exists (sbx template rm %s)",
				name, name);

	o.memory_mib = memory_mib;
	o.image = im.name;
	o.pausable = true;        /* -M pc and the vsock device that can be unplugged */
	o.session = false;        /* no lifetime: each clone gets its own */
	o.template_boot = true;   /* the agent will take a clone's identity once */
	o.cold = true;
	o.cpus = 1;
	if ((r = sandbox_create(&o, &sb, err)) < 0)
		return r;
	settle(&sb);
	remove_files(stage);
	if (mkdir(stage, 0700) < 0) {
		r = sbx_fail(err, errno, "cannot create %s: %s", stage, strerror(errno));
		sandbox_kill(&sb, "template not saved", &e2);
		return r;
	}
	if ((r = sandbox_pause_then(&sb, true, ram_save, stage, err)) < 0) {
		remove_files(stage);
		sandbox_kill(&sb, "template not saved", &e2);
		return r;
	}
	memset(t, 0, sizeof(*t));
	str_copy(t->name, sizeof(t->name), name);
	str_copy(t->dir, sizeof(t->dir), dir);
	str_copy(t->image, sizeof(t->image), im.name);
	str_copy(t->token, sizeof(t->token), sb.token);
	t->memory_mib = sb.memory_mib;
	t->cpus = sb.cpus;
	t->created = (uint64_t)time(NULL);
	t->disk = sb.disk[0] != '\0';
	image_stamp(&im, t->stamp, sizeof(t->stamp));
	t->spares = MIN(spares, SPARES_MAX);
	sandbox_memory_path(&sb, state, sizeof(state));
	snprintf(path, sizeof(path), "%s/" STATE_FILE, stage);
	if (rename(state, path) < 0) {
		r = sbx_fail(err, errno, "cannot move %s to %s: %s", state, path, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/" DISK_FILE, stage);
	/* The clones' backing file: nobody writes it again. */
	if (t->disk && (rename(sb.disk, path) < 0 || chmod(path, 0400) < 0)) {
		r = sbx_fail(err, errno, "cannot move %s to %s: %s", sb.disk, path, strerror(errno));
		goto fail;
	}
	if ((r = meta_write(stage, t, err)) < 0)
		goto fail;
	if (rename(stage, dir) < 0) {
		r = sbx_fail(err, errno == ENOTEMPTY ? EEXIST : errno, "cannot publish template %s: "
			     "%s", dir, errno == ENOTEMPTY ? "one of that name was made meanwhile" :
			     strerror(errno));
		goto fail;
	}
	/* The paused sandbox is done with: its saved state moved out. */
	sandbox_kill(&sb, "saved as a template", &e2);
	if (meta_read(name, t) < 0)
		return sbx_fail(err, EIO, "template %s vanished as it was made", name);
	if (t->spares)
		spares_fill(name);
	return 0;
fail:
	remove_files(stage);
	sandbox_kill(&sb, "template not saved", &e2);
	return r;
}

int template_kernel_stub(const char *kernel, const char *out, struct sbx_error *err)
{
	uint8_t *buf = NULL;
	size_t len;
	ssize_t got;
	int in = -1, fd = -1, r;

	if ((in = open(kernel, O_RDONLY | O_CLOEXEC)) < 0)
		return sbx_fail(err, errno, "cannot read the kernel %s: %s", kernel, strerror(errno));
	/* The boot protocol's header: setup_sects at 0x1f1 (0 means 4),
	 * "HdrS" at 0x202. */
	if (!(buf = malloc(KERNEL_STUB_MAX))) {
		r = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	got = pread(in, buf, KERNEL_STUB_MAX, 0);
	if (got < 0x206 || memcmp(buf + 0x202, "HdrS", 4) != 0) {
		r = sbx_fail(err, got < 0 ? errno : ENOEXEC, "%s has no Linux boot header", kernel);
		goto out;
	}
	len = ((size_t)(buf[0x1f1] ? buf[0x1f1] : 4) + 1) * 512 + RAM_PAGE;
	if ((size_t)got < len) {
		r = sbx_fail(err, ENOEXEC, "%s is shorter than its boot header says", kernel);
		goto out;
	}
	if ((fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		r = sbx_fail(err, errno, "cannot create %s: %s", out, strerror(errno));
		goto out;
	}
	if ((r = pwrite_all(fd, buf, len, 0)) < 0)
		sbx_fail(err, -r, "cannot write %s: %s", out, strerror(-r));
out:
	free(buf);
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	return r;
}

/* The agent answers once the guest has probed the new vsock device. Only
 * a connection that did not reach it is tried again: an answer that
 * refuses is final. */
static int identify(struct sandbox *sb, const struct template *t, const char *config,
		    size_t len, struct sbx_error *err)
{
	long long deadline = now_ms() + AGENT_TIMEOUT_MS;
	uint8_t seed[TEMPLATE_SEED_BYTES];
	struct lifetime l;
	int r;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return sbx_fail(err, errno, "cannot make the clone's seed: %s", strerror(errno));
	sbx_set_token(t->token);
	for (;;) {
		r = sbx_identity(sb->addr, config, len, seed, sizeof(seed), &l, err);
		if (r == 0 || now_ms() >= deadline ||
		    (err->code != ECONNREFUSED && err->code != ECONNRESET && err->code != ENOENT &&
		     err->code != EPIPE && err->code != ETIMEDOUT && err->code != ENODEV &&
		     err->code != ECONNABORTED && err->code != EHOSTUNREACH))
			break;
		usleep(20000);
	}
	explicit_bzero(seed, sizeof(seed));
	sbx_set_token(sb->token);
	if (r < 0)
		return sbx_fail(err, err->code ? err->code : ETIMEDOUT, "the agent of %s (a clone "
				"of template %s) did not take its identity: %s", sb->id, t->name,
				err->msg);
	/* It set the guest's clock too: create() asks nothing more. */
	sandbox_lifetime_note(sb, &l);
	return 0;
}

/* The -object value of the clone's RAM in argv (the memfd backend the
 * command line has) replaced with value. */
static int memobj_swap(char **argv, char *value, struct sbx_error *err)
{
	for (size_t i = 1; argv[i]; i++)
		if (!strcmp(argv[i - 1], "-object") &&
		    str_starts_with(argv[i], "memory-backend-memfd,id=mem,")) {
			argv[i] = value;
			return 0;
		}
	return sbx_fail(err, EINVAL, "QEMU's command line has no memory-backend-memfd");
}


/* The first half of a restore: QEMU started from the clone's command
 * line, waiting for its stream (-incoming defer), with the clone's RAM
 * filled in, and its QMP answering on q. A spare stops here (its QEMU
 * holds the RAM from then on); template_restore_finish is the rest. */
int template_restore_start(struct sandbox *sb, const struct template *t, char *const argv[],
			   struct qmp *q, struct sbx_error *err)
{
	char path[PATH_MAX + 16], memobj[160];
	char *cargv[QEMU_ARGV_MAX + 4];
	int mfd, rfd = -1, r;

	q->fd = -1;
	if ((mfd = r = ram_clone(t, &rfd, err)) < 0)
		return r;
	/* QEMU opens the RAM through our /proc (we are there until it
	 * answers QMP, by which time it has opened it). */
	snprintf(memobj, sizeof(memobj), "memory-backend-file,id=mem,size=%lluM,share=on,"
		 "mem-path=/proc/%d/fd/%d", (unsigned long long)t->memory_mib, (int)getpid(), mfd);
	if ((r = pause_incoming_argv(argv, "defer", cargv,
				     sizeof(cargv) / sizeof(cargv[0]), err)) < 0 ||
	    (r = memobj_swap(cargv, memobj, err)) < 0)
		goto out;
	sb->qemu_pid = sandbox_start_qemu(cargv, sb);
	if (sb->qemu_pid < 0) {
		r = sbx_fail(err, errno, "cannot start QEMU: %s", strerror(errno));
		goto out;
	}
	if ((r = ram_fill(t, rfd, mfd, err)) < 0)
		goto out;
	sandbox_path(path, sizeof(path), sb, "qmp.sock");
	r = qmp_open(q, path, QMP_TIMEOUT_MS, err);
out:
	fd_close(&mfd);
	fd_close(&rfd);
	return r;
}

/* The second half: QEMU (answering on q, or opened again when q->fd < 0)
 * loads the template's stream, the vsock device is plugged in and the
 * agent takes the clone's identity. */
int template_restore_finish(struct sandbox *sb, const struct template *t, struct qmp *q,
			    const char *config, size_t config_len, struct sbx_error *err)
{
	char path[PATH_MAX + 16];
	json_t *args;
	int sfd, r;

	/* Held open for the load: template rm may come. */
	snprintf(path, sizeof(path), "%s/" STATE_FILE, t->dir);
	if ((sfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return sbx_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	sandbox_path(path, sizeof(path), sb, "qmp.sock");
	if (q->fd < 0 && (r = qmp_open(q, path, QMP_TIMEOUT_MS, err)) < 0)
		goto out;
	if ((r = pause_ram_apart(q, true, err)) < 0)
		goto out;
	/* The stream read from its descriptor (fd:), not through the
	 * `sh -c cat` an exec: URI makes QEMU spawn: two fork+execs less
	 * before the load. */
	if ((r = qmp_send_fd(q, STATE_FDNAME, sfd, QMP_TIMEOUT_MS, err)) < 0)
		goto out;
	if (!(args = json_pack("{s:s}", "uri", "fd:" STATE_FDNAME))) {
		r = sbx_fail(err, ENOMEM, "out of memory");
		goto out;
	}
	r = qmp_run(q, "migrate-incoming", args, NULL, QMP_TIMEOUT_MS, err);
	json_decref(args);
	if (r < 0 || (r = pause_incoming_wait(q, sb, err)) < 0)
		goto out;
	fd_close(&sfd);
	if ((r = sandbox_vsock_plug(q, err)) < 0)
		goto out;
	r = identify(sb, t, config, config_len, err);
out:
	fd_close(&sfd);
	qmp_close(q);
	return r;
}

int template_restore(struct sandbox *sb, const struct template *t, char *const argv[],
		     const char *config, size_t config_len, struct sbx_error *err)
{
	struct qmp q = { .fd = -1 };
	int r = template_restore_start(sb, t, argv, &q, err);

	if (r < 0) {
		qmp_close(&q);
		return r;
	}
	return template_restore_finish(sb, t, &q, config, config_len, err);
}
