/* The data directory: importing images from root file systems, snapshots
 * of sandboxes' disks, listing and removing images, and volumes. The
 * heavy lifting is done by the tools made for it (GNU tar, cp, mkfs.erofs,
 * mkfs.ext4); this file checks what they are given and what they made.
 * See store.h. */
#include "launcher/store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/util.h"
#include "libsbx/sbx.h"

static int mkdir_in_data(const char *sub, char *out, size_t n, struct sbx_error *err)
{
	const char *data = image_data_dir();

	if (mkdir(data, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "cannot create %s: %s", data, strerror(errno));
	snprintf(out, n, "%s/%s", data, sub);
	if (mkdir(out, 0700) < 0 && errno != EEXIST)
		return sbx_fail(err, errno, "cannot create %s: %s", out, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	char why[256];
	char *argv[] = { "rm", "-rf", "--one-file-system", "--", (char *)path, NULL };

	image_tool_run(argv, -1, why, sizeof(why));
}

/* A new image is made in a scratch folder of the data directory and
 * renamed into images/NAME once whole: stage_begin checks the name and
 * makes the folder, stage_publish writes the descriptor (fill writes its
 * keys) and renames; on any failure the caller removes the stage. */
static int stage_begin(const char *name, const char *what, char *stage, size_t n, char *dest,
		       size_t dn, struct sbx_error *err)
{
	char images[PATH_MAX], tmp[PATH_MAX];
	struct stat st;
	int r;

	if (!image_name_ok(name) || !strcmp(name, IMAGE_MINIMAL))
		return sbx_fail(err, EINVAL, "%s: an image name has 1-%d letters, digits, '-', '_' "
				"and '.' (and is not \"minimal\")", name, IMAGE_NAME_MAX);
	if ((r = mkdir_in_data("images", images, sizeof(images), err)) < 0 ||
	    (r = mkdir_in_data("tmp", tmp, sizeof(tmp), err)) < 0)
		return r;
	snprintf(dest, dn, "%s/%s", images, name);
	if (lstat(dest, &st) == 0)
		return sbx_fail(err, EEXIST, "an image %s exists (sbx image rm %s first)", name,
				name);
	snprintf(stage, n, "%s/%s-XXXXXX", tmp, what);
	if (!mkdtemp(stage))
		return sbx_fail(err, errno, "cannot create a directory in %s: %s", tmp,
				strerror(errno));
	return 0;
}

static int stage_publish(const char *stage, const char *dest, void (*fill)(FILE *f, const void *arg),
			 const void *arg, struct sbx_error *err)
{
	char meta[PATH_MAX];
	FILE *f;

	snprintf(meta, sizeof(meta), "%s/image", stage);
	f = fopen(meta, "we");
	if (!f)
		return sbx_fail(err, errno, "cannot write %s: %s", meta, strerror(errno));
	fill(f, arg);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		return sbx_fail(err, errno, "cannot write %s: %s", meta, strerror(errno));
	}
	if (fclose(f) != 0)
		return sbx_fail(err, errno, "cannot write %s: %s", meta, strerror(errno));
	if (rename(stage, dest) < 0)
		return sbx_fail(err, errno, "cannot rename %s to %s: %s", stage, dest,
				strerror(errno));
	return 0;
}

static int openat_beneath(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC, .resolve = resolve };

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* ---- import ---------------------------------------------------------------- */

/* Every name in a tar listing must stay inside the tree. */
static int tar_names_check(const char *list, const char *src, struct sbx_error *err)
{
	FILE *f = fopen(list, "re");
	char line[PATH_MAX + 2];
	int r = 0, count = 0;

	if (!f)
		return sbx_fail(err, errno, "cannot read %s: %s", list, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		const char *p = line;

		line[strcspn(line, "\n")] = '\0';
		count++;
		if (line[0] == '/') {
			r = sbx_fail(err, EPERM, "%s: the entry %s has an absolute name: refused", src,
				     line);
			break;
		}
		for (; *p; p += strcspn(p, "/"), p += *p == '/') {
			if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0')) {
				r = sbx_fail(err, EPERM, "%s: the entry %s leads outside the tree "
					     "(\"..\"): refused", src, line);
				break;
			}
		}
		if (r < 0)
			break;
	}
	fclose(f);
	if (r == 0 && count == 0)
		r = sbx_fail(err, EINVAL, "%s: an empty archive", src);
	return r;
}

/* Unpacks (or copies) src into dir/root. */
static int import_unpack(const char *src, const char *dir, struct sbx_error *err)
{
	char root[PATH_MAX], list[PATH_MAX], why[512];
	struct stat st;
	int r, fd;

	snprintf(root, sizeof(root), "%s/root", dir);
	if (stat(src, &st) < 0)
		return sbx_fail(err, errno, "%s: %s", src, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char *argv[] = { "cp", "-a", "--no-target-directory", "--", (char *)src, root,
				 NULL };

		if ((r = image_tool_run(argv, -1, why, sizeof(why))) != 0)
			return sbx_fail(err, EIO, "cannot copy %s: %s", src, why);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return sbx_fail(err, EINVAL, "%s is neither a directory nor a tar archive", src);
	/* The listing first: nothing is unpacked from an archive with names
	 * that leave the tree. GNU tar reads compressed archives as they are. */
	snprintf(list, sizeof(list), "%s/names", dir);
	fd = open(list, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return sbx_fail(err, errno, "cannot create %s: %s", list, strerror(errno));
	{
		char *argv[] = { "tar", "-tf", (char *)src, NULL };

		r = image_tool_run(argv, fd, why, sizeof(why));
		close(fd);
		if (r != 0)
			return sbx_fail(err, EINVAL, "%s is not a tar archive (%s)", src, why);
	}
	if ((r = tar_names_check(list, src, err)) < 0)
		return r;
	if (mkdir(root, 0755) < 0)
		return sbx_fail(err, errno, "cannot create %s: %s", root, strerror(errno));
	{
		char *argv[] = { "tar", "--numeric-owner", "-xpf", (char *)src, "-C", root, NULL };

		if ((r = image_tool_run(argv, -1, why, sizeof(why))) != 0)
			return sbx_fail(err, EIO, "cannot unpack %s: %s", src, why);
	}
	return 0;
}

/* Is `path` (in the tree, links resolved inside it) a file with mode? */
static bool tree_has(int rootfd, const char *path, mode_t type, mode_t any_bits)
{
	struct stat st;
	int fd = openat_beneath(rootfd, path, O_PATH, RESOLVE_IN_ROOT);
	bool ok;

	if (fd < 0)
		return false;
	ok = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type &&
	     (!any_bits || (st.st_mode & any_bits));
	close(fd);
	return ok;
}

/* An image's default user, found in its /etc/passwd, and what sbx ssh
 * will lack (notes for the person importing, not refusals). */
struct import_result {
	const char *src;
	char user[33];
	char workdir[256];
	char notes[512];
};

/* Looks up `name` in the tree's /etc/passwd (name:pw:uid:gid:gecos:home:
 * shell): its uid and home; false when it has no such line. */
static bool passwd_find(int rootfd, const char *name, long *uid, char *home, size_t n)
{
	int fd = openat_beneath(rootfd, "etc/passwd", O_RDONLY, RESOLVE_IN_ROOT);
	FILE *f = fd >= 0 ? fdopen(fd, "re") : NULL;
	char line[1024];
	bool found = false;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		char *field[7] = { line }, *end;
		int i;

		line[strcspn(line, "\n")] = '\0';
		for (i = 1; i < 7 && (field[i] = strchr(field[i - 1], ':')); i++)
			*field[i]++ = '\0';
		if (i < 7 || strcmp(field[0], name) != 0)
			continue;
		*uid = strtol(field[2], &end, 10);
		if (*end || end == field[2])
			continue;
		str_copy(home, n, field[5]);
		found = true;
	}
	fclose(f);
	return found;
}

static void note_add(struct import_result *res, const char *text)
{
	size_t len = strlen(res->notes);

	snprintf(res->notes + len, sizeof(res->notes) - len, "%s%s", len ? "\n" : "", text);
}

/* The users the agent needs: root (uid 0) runs the agent's helpers and
 * `-u root`; commands run as `app` when the image has one (as on the
 * Debian image), in its home when the tree has it, else as root. The SSH
 * pieces are noted when missing: the sandbox runs, sbx ssh says why not. */
static int import_users(int rootfd, const char *src, struct import_result *res,
			struct sbx_error *err)
{
	char home[256];
	long uid;

	if (!passwd_find(rootfd, "root", &uid, home, sizeof(home)) || uid != 0)
		return sbx_fail(err, ENOENT, "%s: its /etc/passwd has no user root with uid 0 "
				"(the agent runs `-u root` commands and the SSH server as root)",
				src);
	str_copy(res->user, sizeof(res->user), "root");
	if (passwd_find(rootfd, "app", &uid, home, sizeof(home))) {
		str_copy(res->user, sizeof(res->user), "app");
		if (home[0] == '/' && tree_has(rootfd, home + 1, S_IFDIR, 0))
			str_copy(res->workdir, sizeof(res->workdir), home);
		else
			note_add(res, "the home of user app is missing: its commands start in /");
	}
	if (!tree_has(rootfd, "usr/sbin/dropbear", S_IFREG, 0111))
		note_add(res, "no /usr/sbin/dropbear: sbx ssh will not work in this image");
	else if (!tree_has(rootfd, "usr/lib/sftp-server", S_IFREG, 0111))
		note_add(res, "no /usr/lib/sftp-server: sbx ssh --scp will not work in this image");
	return 0;
}

/* What the agent needs of a root file system; sbx-init put in place. */
static int import_check(const char *dir, const char *src, struct import_result *res,
			struct sbx_error *err)
{
	char root[PATH_MAX], init[PATH_MAX];
	int rootfd, sbin, in = -1, out = -1, r = 0;
	char buf[65536];
	ssize_t n;

	snprintf(root, sizeof(root), "%s/root", dir);
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return sbx_fail(err, errno, "cannot open %s: %s", root, strerror(errno));
	if (!tree_has(rootfd, "bin/sh", S_IFREG, 0111)) {
		r = sbx_fail(err, ENOEXEC, "%s is not a root file system: no /bin/sh (every "
			     "command of a sandbox needs a shell)", src);
		goto out;
	}
	if (!tree_has(rootfd, "etc/passwd", S_IFREG, 0)) {
		r = sbx_fail(err, ENOENT, "%s is not a root file system: no /etc/passwd (users "
			     "are looked up there)", src);
		goto out;
	}
	if ((r = import_users(rootfd, src, res, err)) < 0)
		goto out;
	/* /sbin may be a link (usr/sbin on merged-/usr systems), but one that
	 * stays in the tree: writing through it must not reach the host. */
	sbin = openat_beneath(rootfd, "sbin", O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
	if (sbin < 0 && errno == ENOENT && mkdirat(rootfd, "sbin", 0755) == 0)
		sbin = openat_beneath(rootfd, "sbin", O_RDONLY | O_DIRECTORY, RESOLVE_BENEATH);
	if (sbin < 0) {
		r = sbx_fail(err, errno == EXDEV ? EPERM : errno, "%s: its /sbin %s: refused", src,
			     errno == EXDEV ? "is a symbolic link that leads outside the tree" :
			     strerror(errno));
		goto out;
	}
	sandbox_find_file("sbx-init", init, sizeof(init));
	in = open(init, O_RDONLY | O_CLOEXEC);
	unlinkat(sbin, "sbx-init", 0);
	out = openat(sbin, "sbx-init", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (fd_write_all(out, buf, (size_t)n) < 0)
			n = -1;
	if (in < 0 || out < 0 || fchmod(out, 0755) < 0)
		r = sbx_fail(err, errno, "cannot install sbx-init (%s) as /sbin/sbx-init: %s",
			     init, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	close(sbin);
out:
	close(rootfd);
	return r;
}

static void import_fill(FILE *f, const void *arg)
{
	const struct import_result *res = arg;

	fprintf(f, "# imported by sbx image import\n");
	kv_write(f, "base", "base.erofs");
	kv_write(f, "user", res->user);
	if (res->workdir[0])
		kv_write(f, "workdir", res->workdir);
	kv_write(f, "source", res->src);
}

int store_image_import(const char *name, const char *src, char *notes, size_t notes_n,
		       struct sbx_error *err)
{
	struct import_result res = { .src = src };
	char stage[PATH_MAX], dest[PATH_MAX], base[PATH_MAX], root[PATH_MAX], names[PATH_MAX];
	char why[512];
	int r;

	if ((r = stage_begin(name, "import", stage, sizeof(stage), dest, sizeof(dest), err)) < 0)
		return r;
	if ((r = import_unpack(src, stage, err)) < 0 || (r = import_check(stage, src, &res, err)) < 0)
		goto out;
	snprintf(base, sizeof(base), "%s/base.erofs", stage);
	snprintf(root, sizeof(root), "%s/root", stage);
	{
		char *argv[] = { "mkfs.erofs", "-zlz4hc", "--quiet", base, root, NULL };

		if (image_tool_run(argv, -1, why, sizeof(why)) != 0) {
			r = sbx_fail(err, EIO, "mkfs.erofs failed: %s (erofs-utils)", why);
			goto out;
		}
	}
	/* The image is the folder with base.erofs and image; the rest goes. */
	remove_tree(root);
	snprintf(names, sizeof(names), "%s/names", stage);
	unlink(names);
	if ((r = stage_publish(stage, dest, import_fill, &res, err)) < 0)
		goto out;
	str_copy(notes, notes_n, res.notes);
	return 0;
out:
	remove_tree(stage);
	return r;
}

/* ---- list and remove --------------------------------------------------------- */

/* Calls fn for each image in dir; `skip` (when not NULL) is a folder
 * whose images hide those of the same name in dir. */
static void list_dir(const char *dir, const char *skip, const char *where,
		     void (*fn)(void *arg, const struct image *im, const char *where), void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[PATH_MAX];
		struct image im;
		struct sbx_error err;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", skip ? skip : "", e->d_name);
		if (skip && access(path, F_OK) == 0)
			continue;
		if (image_find(e->d_name, &im, &err) == 0)
			fn(arg, &im, where);
	}
	if (d)
		closedir(d);
}

void store_image_list(void (*fn)(void *arg, const struct image *im, const char *where),
		      void *arg)
{
	char built[PATH_MAX], data[PATH_MAX];
	struct image minimal = { .name = IMAGE_MINIMAL, .user = "root" };

	fn(arg, &minimal, "built");
	sandbox_find_file("images", built, sizeof(built));
	snprintf(data, sizeof(data), "%s/images", image_data_dir());
	list_dir(built, data, "built", fn, arg);
	list_dir(data, NULL, "data", fn, arg);
}

struct users {
	const char *image, *volume;
	char who[SANDBOX_ID_MAX + 1];
};

static void find_user(void *arg, const struct sandbox *sb)
{
	struct users *u = arg;

	if (u->image && !strcmp(sb->image, u->image))
		str_copy(u->who, sizeof(u->who), sb->id);
	for (unsigned i = 0; u->volume && i < sb->nvolumes; i++)
		if (!strcmp(sb->volumes[i], u->volume))
			str_copy(u->who, sizeof(u->who), sb->id);
}

/* Snapshot images name files of the image they were taken over. */
struct refs {
	char dir[PATH_MAX];            /* the folder of the image asked about */
	const char *name;
	char who[IMAGE_NAME_MAX + 1];  /* an image built on it */
};

static void find_ref(void *arg, const struct image *im, const char *where)
{
	struct refs *r = arg;
	size_t len = strlen(r->dir);

	if (!strcmp(im->name, r->name))
		return;
	if (!strncmp(im->base, r->dir, len) && im->base[len] == '/')
		str_copy(r->who, sizeof(r->who), im->name);
	for (unsigned i = 0; i < im->nlayers; i++)
		if (!strncmp(im->layers[i], r->dir, len) && im->layers[i][len] == '/')
			str_copy(r->who, sizeof(r->who), im->name);
}

int store_image_remove(const char *name, struct sbx_error *err)
{
	struct users u = { .image = name };
	struct refs refs = { .name = name };
	struct image im;
	struct stat st;
	int r;

	if (!image_name_ok(name))
		return sbx_fail(err, EINVAL, "%s is not an image name", name);
	snprintf(refs.dir, sizeof(refs.dir), "%s/images/%s", image_data_dir(), name);
	if (lstat(refs.dir, &st) < 0) {
		if ((r = image_find(name, &im, err)) < 0)
			return r;
		return sbx_fail(err, EPERM, "image %s was built with sbx (%s), not imported: "
				"make clean removes it", name, im.base[0] ? im.base : "the initramfs");
	}
	sandbox_list(find_user, &u);
	if (u.who[0])
		return sbx_fail(err, EBUSY, "image %s is in use by sandbox %s (sbx kill %s first)",
				name, u.who, u.who);
	store_image_list(find_ref, &refs);
	if (refs.who[0])
		return sbx_fail(err, EBUSY, "image %s is under snapshot %s (sbx image rm %s first)",
				name, refs.who, refs.who);
	remove_tree(refs.dir);
	if (lstat(refs.dir, &st) == 0)
		return sbx_fail(err, EIO, "cannot remove %s", refs.dir);
	return 0;
}

/* ---- snapshots ---------------------------------------------------------------- */

struct snapshot {
	const struct sandbox *sb;
	const struct image *parent;
};

static void snapshot_fill(FILE *f, const void *arg)
{
	const struct snapshot *s = arg;

	fprintf(f, "# snapshot of sandbox %s, by sbx snapshot create\n", s->sb->id);
	kv_write(f, "base", s->parent->base);
	kv_write(f, "layer", "layer.ext4");
	for (unsigned i = 0; i < s->parent->nlayers; i++)
		kv_write(f, "layer", s->parent->layers[i]);
	kv_write(f, "user", s->parent->user);
	if (s->parent->workdir[0])
		kv_write(f, "workdir", s->parent->workdir);
	kv_write(f, "parent", s->parent->name);
}

int store_snapshot(const struct sandbox *sb, const char *name, struct sbx_error *err)
{
	char stage[PATH_MAX], dest[PATH_MAX], layer[PATH_MAX], why[512];
	struct image parent;
	struct snapshot snap = { sb, &parent };
	struct sbx_conn *frozen = NULL;
	int r;

	if (!sb->disk[0])
		return sbx_fail(err, EINVAL, "sandbox %s runs the minimal image: it has no disk "
				"to snapshot (create it with --image)", sb->id);
	if (sb->template[0])
		return sbx_fail(err, EOPNOTSUPP, "sandbox %s is a clone of template %s: its disk "
				"is an overlay, which sbx snapshot cannot take yet", sb->id,
				sb->template);
	if ((r = image_find(sb->image, &parent, err)) < 0)
		return r;
	if (parent.nlayers >= IMAGE_LAYERS_MAX)
		return sbx_fail(err, E2BIG, "image %s has %d layers already, the most an image "
				"can have", parent.name, IMAGE_LAYERS_MAX);
	if ((r = stage_begin(name, "snapshot", stage, sizeof(stage), dest, sizeof(dest), err)) < 0)
		return r;
	/* The guest syncs its disk and holds its writers (FREEZE) while we
	 * copy it: the copy is whole, its journal empty. */
	sbx_set_token(sb->token);
	if ((r = sbx_freeze(sb->addr, &frozen, err)) < 0)
		goto out;
	snprintf(layer, sizeof(layer), "%s/layer.ext4", stage);
	{
		char *argv[] = { "cp", "--sparse=always", "--", (char *)sb->disk, layer, NULL };

		r = image_tool_run(argv, -1, why, sizeof(why));
		sbx_close(frozen);
		if (r != 0) {
			r = sbx_fail(err, EIO, "cannot copy %s: %s", sb->disk, why);
			goto out;
		}
	}
	if ((r = stage_publish(stage, dest, snapshot_fill, &snap, err)) < 0)
		goto out;
	return 0;
out:
	remove_tree(stage);
	return r;
}

/* ---- volumes -------------------------------------------------------------------- */

static int volume_path(const char *name, char *path, size_t n, struct sbx_error *err)
{
	if (!image_name_ok(name))
		return sbx_fail(err, EINVAL, "%s: a volume name has 1-%d letters, digits, '-', '_' "
				"and '.'", name, VOLUME_NAME_MAX);
	snprintf(path, n, "%s/volumes/%s.ext4", image_data_dir(), name);
	return 0;
}

int store_volume_create(const char *name, uint64_t bytes, struct sbx_error *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int r;

	if ((r = volume_path(name, path, sizeof(path), err)) < 0 ||
	    (r = mkdir_in_data("volumes", dir, sizeof(dir), err)) < 0)
		return r;
	if (access(path, F_OK) == 0)
		return sbx_fail(err, EEXIST, "a volume %s exists", name);
	return image_disk_create(path, bytes, err);
}

int store_volume_take(const char *name, char *path, size_t n, struct sbx_error *err)
{
	struct users u = { .volume = name };
	int r;

	if ((r = volume_path(name, path, n, err)) < 0)
		return r;
	if (access(path, R_OK | W_OK) < 0)
		return sbx_fail(err, errno, "no volume %s (%s: %s; sbx volume create %s --size 2G)",
				name, path, strerror(errno), name);
	sandbox_list(find_user, &u);
	if (u.who[0])
		return sbx_fail(err, EBUSY, "volume %s is in use by sandbox %s: a volume is in one "
				"running sandbox at a time", name, u.who);
	return 0;
}

int store_volume_remove(const char *name, struct sbx_error *err)
{
	char path[PATH_MAX];
	int r = store_volume_take(name, path, sizeof(path), err);

	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return sbx_fail(err, errno, "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

void store_volume_list(void (*fn)(void *arg, const char *name, uint64_t bytes,
				  uint64_t used, const char *user), void *arg)
{
	char dir[PATH_MAX];
	DIR *d;
	struct dirent *e;

	snprintf(dir, sizeof(dir), "%s/volumes", image_data_dir());
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		char name[VOLUME_NAME_MAX + 1];
		size_t len = strlen(e->d_name);
		struct users u;
		struct stat st;

		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".ext4") ||
		    len - 5 > VOLUME_NAME_MAX || fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 5), e->d_name);
		u = (struct users){ .volume = name };
		sandbox_list(find_user, &u);
		fn(arg, name, (uint64_t)st.st_size, (uint64_t)st.st_blocks * 512, u.who);
	}
	if (d)
		closedir(d);
}
