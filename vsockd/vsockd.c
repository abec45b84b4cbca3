/* The event loop of sbx-vsockd: one epoll set, one thread. Handlers only
 * record what happened; vsock_dev_process() then moves the data, so every
 * round signals the guest at most once per queue. */
#include "vsockd/vsockd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "vsockd/vhost_user.h"
#include "vsockd/vsock.h"

#define VSOCKD_EVENTS 128
#define VSOCKD_VHOST_TIMEOUT_S 5 /* a front-end message arrives in one piece */

static int vsockd_watch(int epfd, int fd, uint32_t events, enum vsockd_tag tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)tag << 32 };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* A stale socket file from an earlier run would make bind fail; anything
 * that is not a socket is left alone. */
static int vsockd_listen(const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int vsockd_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int vsockd_accept_vhost(int epfd, int *listen_fd, struct vhost_user *vu)
{
	struct timeval tv = { .tv_sec = VSOCKD_VHOST_TIMEOUT_S };
	int fd = accept4(*listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int r;

	if (fd < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	/* This daemon serves one VM: no second front-end. */
	epoll_ctl(epfd, EPOLL_CTL_DEL, *listen_fd, NULL);
	close(*listen_fd);
	*listen_fd = -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	r = vsockd_watch(epfd, fd, EPOLLIN, VSOCKD_TAG_VHOST);
	if (r) {
		close(fd);
		return r;
	}
	vu->fd = fd;
	log_debug(0, "front-end connected");
	return 0;
}

int vsockd_run(const struct vsockd_opts *o)
{
	static struct vsock_dev dev;
	struct vhost_user vu;
	struct epoll_event evs[VSOCKD_EVENTS];
	int epfd, sfd, vhost_lfd = -1, uds_lfd = -1, status = 1, r;
	bool more = false, running = true;

	sfd = vsockd_signalfd();
	if (sfd < 0) {
		log_error(sfd, "unable to set up signals");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		log_error(errno, "unable to create an epoll instance");
		goto out_sfd;
	}
	r = vsock_dev_init(&dev, o->guest_cid, o->uds_path, epfd);
	if (r) {
		log_error(r, "unable to allocate the connection table");
		goto out_epfd;
	}
	vhost_user_init(&vu, -1, epfd, &dev);
	vhost_lfd = vsockd_listen(o->vhost_path, 1);
	if (vhost_lfd < 0) {
		log_error(vhost_lfd, "unable to listen on %s", o->vhost_path);
		goto out_dev;
	}
	uds_lfd = vsockd_listen(o->uds_path, 1024);
	if (uds_lfd < 0) {
		log_error(uds_lfd, "unable to listen on %s", o->uds_path);
		goto out_listen;
	}
	if ((r = vsockd_watch(epfd, sfd, EPOLLIN, VSOCKD_TAG_SIGNAL)) ||
	    (r = vsockd_watch(epfd, vhost_lfd, EPOLLIN, VSOCKD_TAG_VHOST_LISTEN)) ||
	    (r = vsockd_watch(epfd, uds_lfd, EPOLLIN, VSOCKD_TAG_UDS))) {
		log_error(r, "unable to watch the listening sockets");
		goto out_listen;
	}
	if (o->ready_fd >= 0) {
		while (write(o->ready_fd, "R", 1) < 0 && errno == EINTR)
			;
		close(o->ready_fd);
	}
	log_debug(0, "listening on %s and %s, guest cid %llu", o->vhost_path, o->uds_path,
		  (unsigned long long)o->guest_cid);

	while (running) {
		int timeout = vsock_dev_tick(&dev, vsock_now_ms());
		int n = epoll_wait(epfd, evs, VSOCKD_EVENTS, more ? 0 : timeout);

		if (n < 0 && errno != EINTR) {
			log_error(errno, "epoll_wait failed");
			break;
		}
		dev.now_ms = vsock_now_ms();
		for (int i = 0; i < n && running; i++) {
			uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;

			switch (tag) {
			case VSOCKD_TAG_CONN:
				vsock_dev_conn_event(&dev, idx, evs[i].events);
				break;
			case VSOCKD_TAG_KICK:
				vhost_user_kick(&vu, idx);
				break;
			case VSOCKD_TAG_VHOST:
				r = vhost_user_handle(&vu);
				if (r == -ECONNRESET) {
					log_debug(0, "front-end disconnected");
					status = 0;
					running = false;
				} else if (r) {
					log_error(r, "vhost-user connection failed");
					running = false;
				}
				break;
			case VSOCKD_TAG_UDS:
				r = vsock_dev_accept(&dev, uds_lfd);
				if (r)
					log_warn(r, "unable to accept a host client");
				break;
			case VSOCKD_TAG_VHOST_LISTEN:
				r = vsockd_accept_vhost(epfd, &vhost_lfd, &vu);
				if (r)
					log_warn(r, "unable to accept the front-end");
				break;
			case VSOCKD_TAG_SIGNAL:
				log_debug(0, "stopping on a signal");
				status = 0;
				running = false;
				break;
			}
		}
		if (running)
			more = vsock_dev_process(&dev);
	}
	log_debug(0, "guest rx %llu bytes, tx %llu bytes, %llu connections, %llu refused",
		  (unsigned long long)dev.stats.rx_bytes, (unsigned long long)dev.stats.tx_bytes,
		  (unsigned long long)dev.stats.conns_opened,
		  (unsigned long long)dev.stats.conns_refused);
out_listen:
	if (uds_lfd >= 0)
		close(uds_lfd);
	if (vhost_lfd >= 0)
		close(vhost_lfd);
	unlink(o->uds_path);
	unlink(o->vhost_path);
out_dev:
	vhost_user_fini(&vu);
	vsock_dev_fini(&dev);
out_epfd:
	close(epfd);
out_sfd:
	close(sfd);
	return status;
}
