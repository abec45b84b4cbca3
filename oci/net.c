/* An engine's network namespace bridged into the VM: see net.h. */
#include "oci/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"

#define TAP_NAME "sbxtap0"

/* The namespace's interface: the first that is not lo (a CNI bridge or
 * Kubernetes pod namespace has one veth, eth0). */
static int nic_find(char *name, size_t n)
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	int r = -ENODEV;

	for (i = ifs; i && i->if_index; i++)
		if (strcmp(i->if_name, "lo") != 0 && strcmp(i->if_name, TAP_NAME) != 0) {
			str_copy(name, n, i->if_name);
			r = 0;
			break;
		}
	if (ifs)
		if_freenameindex(ifs);
	return r;
}

/* The default route's gateway, from /proc/net/route (this namespace's). */
static void gw_find(const char *dev, char *out, size_t n)
{
	char line[256], ifname[IFNAMSIZ + 1];
	unsigned dst, gw, flags;
	FILE *f = fopen("/proc/net/route", "re");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%16s %x %x %x", ifname, &dst, &gw, &flags) == 4 && dst == 0 &&
		    gw != 0 && strcmp(ifname, dev) == 0) {
			struct in_addr a = { .s_addr = gw };

			inet_ntop(AF_INET, &a, out, (socklen_t)n);
			break;
		}
	if (f)
		fclose(f);
}

static int tap_create(void)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), r = 0;

	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), TAP_NAME);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

/* Runs tc with argv (the namespace is ours, and so the child's). */
static int tc_run(const char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, 1);
		execvp("tc", (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	return 0;
}

/* Every frame that arrives on `from` leaves on `to` (tc's mirred action on
 * an ingress qdisc, as Kata Containers bridges a pod's veth to its VM). */
static int redirect(const char *from, const char *to)
{
	const char *qdisc[] = { "tc", "qdisc", "add", "dev", from, "ingress", NULL };
	const char *filter[] = { "tc", "filter", "add", "dev", from, "parent", "ffff:",
				 "protocol", "all", "u32", "match", "u8", "0", "0", "action",
				 "mirred", "egress", "redirect", "dev", to, NULL };

	return tc_run(qdisc) < 0 ? -EIO : tc_run(filter);
}

int oci_net_setup(const char *netns, struct sandbox_nic *nic, char *msg, size_t n)
{
	char dev[IFNAMSIZ];
	struct ifreq ifr = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	unsigned char *mac;
	struct in_addr mask;
	int ns = open(netns, O_RDONLY | O_CLOEXEC), s = -1, r;

	memset(nic, 0, sizeof(*nic));
	if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) {
		r = -errno;
		snprintf(msg, n, "the network namespace %s: %s", netns, strerror(errno));
		goto out;
	}
	if (nic_find(dev, sizeof(dev)) < 0) {
		r = 0; /* lo only (--network none): no NIC, as everywhere else */
		goto out;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	str_copy(ifr.ifr_name, sizeof(ifr.ifr_name), dev);
	if (s < 0 || ioctl(s, SIOCGIFADDR, &ifr) < 0) {
		r = -errno;
		snprintf(msg, n, "%s in %s has no IPv4 address: %s", dev, netns, strerror(errno));
		goto out;
	}
	inet_ntop(AF_INET, &sin->sin_addr, nic->addr, sizeof(nic->addr));
	if (ioctl(s, SIOCGIFNETMASK, &ifr) < 0) {
		r = -errno;
		snprintf(msg, n, "%s in %s: %s", dev, netns, strerror(errno));
		goto out;
	}
	mask = sin->sin_addr;
	snprintf(nic->addr + strlen(nic->addr), sizeof(nic->addr) - strlen(nic->addr), "/%d",
		 __builtin_popcount(mask.s_addr));
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
		r = -errno;
		snprintf(msg, n, "%s in %s: %s", dev, netns, strerror(errno));
		goto out;
	}
	mac = (unsigned char *)ifr.ifr_hwaddr.sa_data;
	snprintf(nic->mac, sizeof(nic->mac), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
	gw_find(dev, nic->gw, sizeof(nic->gw));
	str_copy(nic->tap, sizeof(nic->tap), TAP_NAME);
	/* One VM per namespace: its interface cannot be handed out twice. */
	if (if_nametoindex(TAP_NAME) != 0) {
		r = -EBUSY;
		snprintf(msg, n, "the network namespace %s is bridged into another container's VM "
			 "already: sbx-oci gives a namespace's interface to one container", netns);
		goto out;
	}
	if ((r = tap_create()) < 0) {
		snprintf(msg, n, "cannot create the tap %s in %s: %s", TAP_NAME, netns, strerror(-r));
		goto out;
	}
	if ((r = iface_up(s, TAP_NAME, IFF_UP)) < 0) {
		snprintf(msg, n, "cannot bring up %s in %s: %s", TAP_NAME, netns, strerror(-r));
		goto out;
	}
	if ((r = redirect(dev, TAP_NAME)) < 0 || (r = redirect(TAP_NAME, dev)) < 0) {
		snprintf(msg, n, "tc cannot connect %s and %s in %s (iproute2's tc, act_mirred)",
			 dev, TAP_NAME, netns);
		goto out;
	}
	r = 1;
out:
	if (s >= 0)
		close(s);
	if (ns >= 0)
		close(ns);
	return r;
}
