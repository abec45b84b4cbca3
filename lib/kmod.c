/* Loading kernel modules from a list of .ko paths: PID 1 at boot (the
 * vsock transport) and the server when egress is turned on (nftables).
 * The kernel resolves nothing here: the list is in dependency order. */
#include "lib/kmod.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define KMOD_LIST_MAX 4096 /* bytes of a list */

/* Each line of list, the path of a .ko; fn(path, ctx) for each; fn
 * returns false to stop. -errno when the list cannot be read (-ENOENT
 * silently). Read with read(2) into the stack, not stdio: PID 1 loads
 * its modules before anything else of it allocates, and the first
 * malloc costs ~10 ms under TCG (lib/config.h); a list is a few lines. */
static int each_module(const char *list, bool (*fn)(const char *path, void *ctx), void *ctx)
{
	char text[KMOD_LIST_MAX + 1];
	int fd = open(list, O_RDONLY | O_CLOEXEC), r = 0;
	size_t len = 0;

	if (fd < 0) {
		r = -errno;
		if (errno != ENOENT)
			log_warn(errno, "unable to read %s", list);
		return r;
	}
	/* One byte more than a list may have: a longer one is refused. */
	while (len < sizeof(text)) {
		ssize_t n = read(fd, text + len, sizeof(text) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		log_warn(-r, "unable to read %s", list);
		return r;
	}
	if (len > KMOD_LIST_MAX) {
		log_warn(0, "%s is longer than %d bytes: none of its modules loaded", list,
			 KMOD_LIST_MAX);
		return -EFBIG;
	}
	text[len] = '\0';
	for (char *line = text, *end; *line; line = end) {
		end = line + strcspn(line, "\n");
		if (*end)
			*end++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (!fn(line, ctx))
			break;
	}
	return 0;
}

static int open_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		log_warn(errno, "unable to open module %s", path);
	return fd;
}

/* Loads and closes fd; true when the module is in. A module opened
 * earlier (path NULL) is named by the path it was opened from. */
static bool load_module(int fd, const char *path)
{
	bool ok = syscall(SYS_finit_module, fd, "", 0) == 0 || errno == EEXIST;

	if (!ok) {
		int e = errno;
		char link[64], opened[256] = "(opened at boot)";
		ssize_t n;

		if (!path) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			if ((n = readlink(link, opened, sizeof(opened) - 1)) > 0)
				opened[n] = '\0';
		}
		log_warn(e, "unable to load module %s", path ? path : opened);
	}
	close(fd);
	return ok;
}

static bool load_path(const char *path, void *ctx)
{
	int fd = open_module(path);

	if (fd >= 0 && load_module(fd, path))
		(*(unsigned *)ctx)++;
	return true;
}

int kmod_load_list(const char *list)
{
	unsigned loaded = 0;
	uint64_t start = time_boot_ns();
	int r = each_module(list, load_path, &loaded);

	if (r < 0)
		return r;
	log_debug(0, "loaded %u modules in %llu ms", loaded,
		  (unsigned long long)((time_boot_ns() - start) / NSEC_PER_MSEC));
	return 0;
}

struct opened {
	int *fds, n, max;
};

static bool open_path(const char *path, void *ctx)
{
	struct opened *o = ctx;
	int fd;

	if (o->n >= o->max) {
		log_warn(E2BIG, "%s: more than %d modules to load late", path, o->max);
		return false;
	}
	if ((fd = open_module(path)) >= 0)
		o->fds[o->n++] = fd;
	return true;
}

int kmod_open_list(const char *list, int *fds, int max)
{
	struct opened o = { fds, 0, max };

	each_module(list, open_path, &o);
	return o.n;
}

void kmod_load_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		load_module(fds[i], NULL);
}
