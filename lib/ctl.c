/* The PID 1 <-> server control channel: see ctl.h. */
#include "lib/ctl.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

_Static_assert(CTL_FDS_MAX <= FD_SEND_MAX, "fd_send passes every descriptor of a message");

int ctl_send_msg(int fd, const struct ctl_msg *m, const int *fds, int nfds)
{
	ssize_t n;

	if (nfds < 0 || nfds > CTL_FDS_MAX)
		return -EINVAL;
	n = fd_send(fd, m, sizeof(*m), fds, nfds, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return (int)n;
	return n == (ssize_t)sizeof(*m) ? 0 : -EIO;
}

int ctl_send(int fd, uint32_t type, int64_t arg, const char *text)
{
	struct ctl_msg m = { .type = type, .arg = arg };

	if (text)
		str_copy(m.text, sizeof(m.text), text);
	return ctl_send_msg(fd, &m, NULL, 0);
}

int ctl_recv(int fd, struct ctl_msg *m, int *fds, int *nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	bool bad = false;
	ssize_t n;

	*nfds = 0;
	n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
	if (n == 0)
		return -EPIPE;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			bad = true;
			continue;
		}
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*nfds < CTL_FDS_MAX)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n != sizeof(*m) ||
	    m->type < CTL_SHUTDOWN || m->type > CTL_TYPE_MAX)
		bad = true;
	if (!bad && *nfds > 0 && m->type != CTL_JOB_HOLD && m->type != CTL_JOB_RESTORE &&
	    m->type != CTL_IDENTITY)
		bad = true;
	if (bad) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return -EBADMSG;
	}
	m->text[CTL_TEXT_MAX - 1] = '\0';
	return 1;
}
