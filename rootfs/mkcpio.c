/* mkcpio: writes a newc cpio archive to stdout from a spec on stdin, so that
 * the image's contents, owners and modes come from a readable list and not
 * from whatever the build directory happens to hold (like the kernel's
 * gen_init_cpio). Also makes the per-sandbox config archive (--config). */
#include "lib/cpio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MKCPIO_FILE_MAX (256u << 20)

static const char usage[] =
	"usage: mkcpio [-t MTIME] < SPEC > ARCHIVE\n"
	"       mkcpio [-t MTIME] --config FILE > ARCHIVE\n"
	"SPEC lines (octal MODE, names relative, no spaces):\n"
	"  dir   NAME MODE UID GID\n"
	"  file  NAME SRC MODE UID GID\n"
	"  slink NAME TARGET MODE UID GID\n"
	"  nod   NAME MODE UID GID c MAJOR MINOR\n"
	"--config FILE writes etc/sbx/config (0600, root) holding FILE, after its directories.\n"
	"MTIME defaults to $SOURCE_DATE_EPOCH, else 0.\n";

/* Reads a whole file into a malloc'd buffer; the cap keeps a wrong path
 * (a disk image, /dev/zero) from eating the build machine. */
static int mkcpio_read_file(const char *path, char **buf, size_t *len)
{
	struct stat st;
	size_t off = 0;
	char *p;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MKCPIO_FILE_MAX) {
		r = -EFBIG;
		goto out_close;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!p) {
		r = -ENOMEM;
		goto out_close;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, p + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			free(p);
			goto out_close;
		}
		off += (size_t)n;
	}
	*buf = p;
	*len = off;
out_close:
	close(fd);
	return r;
}

static int mkcpio_parse_mode(const char *s, uint32_t *mode)
{
	char *end;
	unsigned long v = strtoul(s, &end, 8);

	if (*s == '\0' || *end != '\0' || v > 07777)
		return -EINVAL;
	*mode = (uint32_t)v;
	return 0;
}

static int mkcpio_parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

/* One spec line: tokens already split. Returns 0 or -errno. */
static int mkcpio_do_line(struct cpio_writer *w, char **tok, int ntok)
{
	uint32_t mode, uid, gid, maj, min;
	char *data = NULL;
	size_t len = 0;
	int r;

	if (!strcmp(tok[0], "dir") && ntok == 5) {
		if (mkcpio_parse_mode(tok[2], &mode) || mkcpio_parse_u32(tok[3], &uid) ||
		    mkcpio_parse_u32(tok[4], &gid))
			return -EINVAL;
		return cpio_write_entry(w, tok[1], S_IFDIR | mode, uid, gid, NULL, 0, 0, 0);
	}
	if (!strcmp(tok[0], "slink") && ntok == 6) {
		if (mkcpio_parse_mode(tok[3], &mode) || mkcpio_parse_u32(tok[4], &uid) ||
		    mkcpio_parse_u32(tok[5], &gid))
			return -EINVAL;
		return cpio_write_entry(w, tok[1], S_IFLNK | mode, uid, gid, tok[2],
					strlen(tok[2]), 0, 0);
	}
	if (!strcmp(tok[0], "nod") && ntok == 8 && !strcmp(tok[5], "c")) {
		if (mkcpio_parse_mode(tok[2], &mode) || mkcpio_parse_u32(tok[3], &uid) ||
		    mkcpio_parse_u32(tok[4], &gid) || mkcpio_parse_u32(tok[6], &maj) ||
		    mkcpio_parse_u32(tok[7], &min))
			return -EINVAL;
		return cpio_write_entry(w, tok[1], S_IFCHR | mode, uid, gid, NULL, 0, maj, min);
	}
	if (!strcmp(tok[0], "file") && ntok == 6) {
		if (mkcpio_parse_mode(tok[3], &mode) || mkcpio_parse_u32(tok[4], &uid) ||
		    mkcpio_parse_u32(tok[5], &gid))
			return -EINVAL;
		r = mkcpio_read_file(tok[2], &data, &len);
		if (r) {
			fprintf(stderr, "mkcpio: unable to read %s: %s\n", tok[2], strerror(-r));
			return r;
		}
		r = cpio_write_entry(w, tok[1], S_IFREG | mode, uid, gid, data, len, 0, 0);
		free(data);
		return r;
	}
	return -EINVAL;
}

static int mkcpio_spec(struct cpio_writer *w, FILE *in)
{
	char line[8192];
	unsigned lineno = 0;

	while (fgets(line, sizeof(line), in)) {
		char *tok[9], *save = NULL, *t;
		int ntok = 0, r;

		lineno++;
		for (t = strtok_r(line, " \t\n", &save); t && ntok < 9;
		     t = strtok_r(NULL, " \t\n", &save))
			tok[ntok++] = t;
		if (ntok == 0 || tok[0][0] == '#')
			continue;
		r = mkcpio_do_line(w, tok, ntok);
		if (r) {
			fprintf(stderr, "mkcpio: line %u: %s\n", lineno, strerror(-r));
			return r;
		}
	}
	return cpio_write_trailer(w);
}

int main(int argc, char **argv)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	uint32_t mtime = 0;
	struct cpio_writer w;
	int i = 1, r;

	if (sde && mkcpio_parse_u32(sde, &mtime))
		mtime = 0;
	if (i + 1 < argc && !strcmp(argv[i], "-t")) {
		if (mkcpio_parse_u32(argv[i + 1], &mtime))
			goto out_usage;
		i += 2;
	}
	if (isatty(1))
		goto out_usage;
	if (i + 2 == argc && !strcmp(argv[i], "--config")) {
		char *data;
		size_t len;

		r = mkcpio_read_file(argv[i + 1], &data, &len);
		if (r) {
			fprintf(stderr, "mkcpio: unable to read %s: %s\n", argv[i + 1], strerror(-r));
			return 1;
		}
		r = cpio_write_single_file(1, "etc/sbx/config", data, len, mtime);
		free(data);
	} else if (i == argc) {
		cpio_writer_init(&w, 1, mtime);
		r = mkcpio_spec(&w, stdin);
	} else {
		goto out_usage;
	}
	if (r) {
		fprintf(stderr, "mkcpio: unable to write archive: %s\n", strerror(-r));
		return 1;
	}
	return 0;
out_usage:
	fputs(usage, stderr);
	return 2;
}
