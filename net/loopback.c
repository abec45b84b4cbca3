/* The loopback interface: see loopback.h. */
#include "net/loopback.h"

#include <errno.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

void loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = fd < 0 ? -errno : iface_up(fd, "lo", IFF_UP | IFF_RUNNING);

	if (r < 0)
		log_warn(-r, "unable to bring up lo");
	if (fd >= 0)
		close(fd);
}
