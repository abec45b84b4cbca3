/* Guest images and per-sandbox disks: finding an image by name, the data
 * directory, and making a sandbox's writable disk. See image.h. */
#include "launcher/image.h"
#include "launcher/sandbox.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/util.h"

const char *image_data_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("SBX_DATA_DIR"), *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");

	if (env && *env)
		snprintf(dir, sizeof(dir), "%s", env);
	else if (xdg && *xdg)
		snprintf(dir, sizeof(dir), "%s/sbx", xdg);
	else if (geteuid() == 0)
		snprintf(dir, sizeof(dir), "/var/lib/sbx");
	else
		snprintf(dir, sizeof(dir), "%s/.local/share/sbx", home && *home ? home : "/tmp");
	return dir;
}

bool image_name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > IMAGE_NAME_MAX || !isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

struct image_ctx {
	struct image *im;
	const char *dir;
};

/* A path in an image file: absolute, or relative to the image's folder. */
static int image_path(char *out, size_t n, const char *dir, const char *value)
{
	if (value[0] == '/')
		return str_copy(out, n, value);
	return snprintf(out, n, "%s/%s", dir, value) >= (int)n ? -ENAMETOOLONG : 0;
}

static int image_set(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	struct image_ctx *c = ctx;
	struct image *im = c->im;

	if (strcmp(key, "base") == 0)
		return image_path(im->base, sizeof(im->base), c->dir, value);
	if (strcmp(key, "layer") == 0) {
		if (im->nlayers == IMAGE_LAYERS_MAX) {
			snprintf(err, n, "layer: at most %d layers", IMAGE_LAYERS_MAX);
			return -E2BIG;
		}
		return image_path(im->layers[im->nlayers++], sizeof(im->layers[0]), c->dir, value);
	}
	if (strcmp(key, "user") == 0)
		return str_copy(im->user, sizeof(im->user), value);
	if (strcmp(key, "workdir") == 0)
		return str_copy(im->workdir, sizeof(im->workdir), value);
	return 0; /* description, versions, ...: for people */
}

/* Reads DIR/image into im; -ENOENT when DIR holds no image. */
static int image_read(const char *dir, struct image *im, struct sbx_error *err)
{
	char path[PATH_MAX], text[16384], why[256];
	struct image_ctx c = { im, dir };
	ssize_t len;
	int fd, r;

	snprintf(path, sizeof(path), "%s/image", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (len < 0)
		return sbx_fail(err, errno, "cannot read %s: %s", path, strerror(errno));
	r = kv_parse_text(text, (size_t)len, path, image_set, &c, why, sizeof(why));
	if (r < 0)
		return sbx_fail(err, -r, "%s: %s", path, why);
	if (!im->base[0])
		return sbx_fail(err, EINVAL, "%s names no base file system (base = FILE)", path);
	if (access(im->base, R_OK) < 0)
		return sbx_fail(err, errno, "image %s: cannot read %s: %s", im->name, im->base,
				strerror(errno));
	for (unsigned i = 0; i < im->nlayers; i++)
		if (access(im->layers[i], R_OK) < 0)
			return sbx_fail(err, errno, "image %s: cannot read %s: %s", im->name,
					im->layers[i], strerror(errno));
	return 0;
}

const char *image_default(void)
{
	const char *e = getenv("SBX_IMAGE");

	return e && *e ? e : IMAGE_DEFAULT;
}

int image_find(const char *name, struct image *im, struct sbx_error *err)
{
	char dir[PATH_MAX], built[PATH_MAX], rel[IMAGE_NAME_MAX + 16];
	int r;

	memset(im, 0, sizeof(*im));
	str_copy(im->user, sizeof(im->user), "root");
	if (!image_name_ok(name))
		return sbx_fail(err, EINVAL, "--image %s: an image name has 1-%d letters, digits, "
				"'-', '_' and '.'", name, IMAGE_NAME_MAX);
	str_copy(im->name, sizeof(im->name), name);
	if (strcmp(name, IMAGE_MINIMAL) == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s/images/%s", image_data_dir(), name);
	r = image_read(dir, im, err);
	if (r != -ENOENT)
		return r;
	snprintf(rel, sizeof(rel), "images/%s", name);
	sandbox_find_file(rel, built, sizeof(built));
	r = image_read(built, im, err);
	if (r != -ENOENT)
		return r;
	return sbx_fail(err, ENOENT, "no image %s (looked in %s and %s; `sbx image ls` lists them, "
			"`make image` builds debian)", name, dir, built);
}

int image_parse_size(const char *s, uint64_t *bytes, struct sbx_error *err)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		goto bad;
	switch (*end) {
	case 'K': case 'k': unit = 1ull << 10; end++; break;
	case 'M': case 'm': unit = 1ull << 20; end++; break;
	case 'G': case 'g': unit = 1ull << 30; end++; break;
	case 'T': case 't': unit = 1ull << 40; end++; break;
	}
	if (unit > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
		end += strlen(end);
	if (*end || v > IMAGE_DISK_MAX / unit)
		goto bad;
	*bytes = v * unit;
	if (*bytes < IMAGE_DISK_MIN || *bytes > IMAGE_DISK_MAX)
		return sbx_fail(err, ERANGE, "a disk has 64M to 1T, not %s", s);
	return 0;
bad:
	return sbx_fail(err, EINVAL, "'%s' is not a size (10G, 512M, 2GiB, 1T)", s);
}

int image_tool_run(char *const argv[], int out_fd, char *out, size_t n)
{
	char text[1024], sink[4096];
	int status, p[2];
	ssize_t len, got = 0;
	pid_t pid;

	out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return 127;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return 127;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, 0);
		dup2(out_fd >= 0 ? out_fd : p[1], 1);
		dup2(p[1], 2);
		signals_reset_for_exec();
		execvp(argv[0], argv);
		dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	/* Keep the first lines; read the rest away so the tool never blocks. */
	for (;;) {
		bool keep = got < (ssize_t)sizeof(text) - 1;

		len = read(p[0], keep ? text + got : sink,
			   keep ? sizeof(text) - 1 - (size_t)got : sizeof(sink));
		if (len <= 0)
			break;
		if (keep)
			got += len;
	}
	close(p[0]);
	text[got] = '\0';
	snprintf(out, n, "%.*s", (int)strcspn(text, "\n"), text);
	if (waitpid(pid, &status, 0) != pid)
		return 127;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int image_disk_create(const char *path, uint64_t bytes, struct sbx_error *err)
{
	char size[32], why[512];
	/* Lazy inode tables and journal: the file stays sparse and the
	 * format takes milliseconds; the guest fills them in. */
	char *argv[] = { "mkfs.ext4", "-q", "-F", "-E",
			 "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
			 "-L", "sbx-disk", (char *)path, size, NULL };
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return sbx_fail(err, errno, "cannot create %s: %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)bytes) < 0) {
		int e = errno;

		close(fd);
		unlink(path);
		return sbx_fail(err, e, "cannot size %s: %s", path, strerror(e));
	}
	close(fd);
	snprintf(size, sizeof(size), "%lluk", (unsigned long long)(bytes >> 10));
	if (image_tool_run(argv, -1, why, sizeof(why)) != 0) {
		unlink(path);
		return sbx_fail(err, EIO, "mkfs.ext4 %s failed%s%s (e2fsprogs)", path,
				why[0] ? ": " : "", why);
	}
	return 0;
}
