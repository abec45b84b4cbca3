/* The PID 1 <-> server control channel: see ctl.h. */
#include "init/ctl.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"

int ctl_send(int fd, uint32_t type, int64_t arg, const char *text)
{
	struct ctl_msg m = { .type = type, .arg = arg };

	if (text)
		str_copy(m.text, sizeof(m.text), text);
	if (send(fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(m))
		return -errno;
	return 0;
}

int ctl_recv(int fd, struct ctl_msg *m)
{
	ssize_t n = recv(fd, m, sizeof(*m), MSG_DONTWAIT | MSG_TRUNC);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -EPIPE;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n != sizeof(*m) || m->type < CTL_SHUTDOWN || m->type > CTL_STOPPING)
		return -EBADMSG;
	m->text[CTL_TEXT_MAX - 1] = '\0';
	return 1;
}
