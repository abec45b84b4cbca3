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

int kmod_load_list(const char *list)
{
	char line[512];
	unsigned loaded = 0;
	uint64_t start = time_boot_ns();
	FILE *f = fopen(list, "re");

	if (!f) {
		int r = -errno;

		if (errno != ENOENT)
			log_warn(errno, "unable to read %s", list);
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		int fd;

		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		fd = open(line, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_warn(errno, "unable to open module %s", line);
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
			log_warn(errno, "unable to load module %s", line);
		else
			loaded++;
		close(fd);
	}
	fclose(f);
	log_debug(0, "loaded %u modules in %llu ms", loaded,
		  (unsigned long long)((time_boot_ns() - start) / NSEC_PER_MSEC));
	return 0;
}
