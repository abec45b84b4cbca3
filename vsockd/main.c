/* sbx-vsockd: a user-space virtio-vsock device for QEMU (a vhost-user
 * back-end) for hosts without /dev/vhost-vsock. Host programs reach the
 * guest through a Unix socket, the way Firecracker's hybrid vsock works. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lib/log.h"
#include "lib/util.h"
#include "vsockd/vsock.h"
#include "vsockd/vsockd.h"

static const char usage[] =
	"usage: sbx-vsockd --socket VHOST_SOCK --uds PATH --cid N [--ready-fd FD] [-v]\n"
	"\n"
	"Serves one QEMU VM as its virtio-vsock device (vhost-user back-end).\n"
	"  --socket VHOST_SOCK  listen here for QEMU:\n"
	"                       -chardev socket,id=vu,path=VHOST_SOCK\n"
	"                       -device vhost-user-vsock-device,chardev=vu (microvm)\n"
	"                       or vhost-user-vsock-pci,chardev=vu (q35/pc);\n"
	"                       QEMU needs shared memory (memory-backend-memfd,share=on)\n"
	"  --uds PATH           host side, as Firecracker's hybrid vsock: connect to PATH,\n"
	"                       write \"CONNECT <port>\\n\", read \"OK <hostport>\\n\", then\n"
	"                       the stream is the guest's port; EOF before OK means\n"
	"                       nothing listens there (or the guest did not answer in 10 s).\n"
	"                       A guest connecting to CID 2 port P reaches the Unix\n"
	"                       socket PATH_P, or gets a reset if none accepts.\n"
	"  --cid N              the guest's CID (3 .. 4294967294)\n"
	"  --ready-fd FD        write one byte to FD and close it once both sockets listen\n"
	"  -v, --verbose        debug logging\n"
	"Exits 0 when QEMU disconnects or on SIGTERM/SIGINT; removes both sockets.\n";

/* Every connection holds one fd: make room for the whole table. */
static void raise_fd_limit(void)
{
	unsigned long have = fd_limit_raise(VSOCK_MAX_CONNS + 64);

	if (have < VSOCK_MAX_CONNS + 64)
		log_warn(0, "open file limit %lu is below %u connections", have, VSOCK_MAX_CONNS);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "uds", required_argument, NULL, 'u' },
		{ "cid", required_argument, NULL, 'c' },
		{ "ready-fd", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vsockd_opts o = { .ready_fd = -1 };
	unsigned long long cid = 0;
	char *end;
	int c;

	log_set_prog("sbx-vsockd");
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.vhost_path = optarg;
			break;
		case 'u':
			o.uds_path = optarg;
			break;
		case 'c':
			errno = 0;
			cid = strtoull(optarg, &end, 10);
			if (errno || *end || cid < 3 || cid > 0xfffffffeull)
				die_code(2, 0, "invalid --cid %s: need 3 .. 4294967294", optarg);
			break;
		case 'r': {
			long fd = strtol(optarg, &end, 10);

			if (*end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0)
				die_code(2, 0, "invalid --ready-fd %s", optarg);
			o.ready_fd = (int)fd;
			/* it is ours to close; no child should inherit it */
			fcntl(o.ready_fd, F_SETFD, FD_CLOEXEC);
			break;
		}
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!o.vhost_path || !o.uds_path || !cid || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	o.guest_cid = cid;
	raise_fd_limit();
	return vsockd_run(&o);
}
