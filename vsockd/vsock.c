/* The virtio-vsock device: packets on the tx queue become writes to host
 * Unix sockets, host socket data becomes packets on the rx queue, with the
 * connection state machine and credit flow control of virtio 1.2 §5.10.6.
 * Host data is read straight into the guest's rx buffers (no copy). */
#include "vsockd/vsock.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define VSOCK_HASH 8192			/* buckets, power of 2 */
#define VSOCK_PORT_BASE 0x40000000u	/* host ports for host-initiated conns */
#define VSOCK_RX_FILL_MAX 1024		/* rx buffers used per process call */

enum rx_result { RX_BLOCKED, RX_READY, RX_NO_BUFFERS };

uint64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned vsock_hash_key(uint32_t local, uint32_t peer)
{
	return ((local * 2654435761u) ^ (peer * 40503u) ^ (peer >> 16)) & (VSOCK_HASH - 1);
}

static int conn_idx(const struct vsock_dev *dev, const struct vsock_conn *c)
{
	return (int)(c - dev->conns);
}

/* ---- lists: index-linked so that the table never moves -------------- */

static void ctl_add(struct vsock_dev *dev, struct vsock_conn *c)
{
	int i = conn_idx(dev, c);

	if (c->in_ctl)
		return;
	c->in_ctl = true;
	c->ctl_next = -1;
	c->ctl_prev = dev->ctl_tail;
	if (dev->ctl_tail >= 0)
		dev->conns[dev->ctl_tail].ctl_next = i;
	else
		dev->ctl_head = i;
	dev->ctl_tail = i;
}

static void ctl_del(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (!c->in_ctl)
		return;
	if (c->ctl_prev >= 0)
		dev->conns[c->ctl_prev].ctl_next = c->ctl_next;
	else
		dev->ctl_head = c->ctl_next;
	if (c->ctl_next >= 0)
		dev->conns[c->ctl_next].ctl_prev = c->ctl_prev;
	else
		dev->ctl_tail = c->ctl_prev;
	c->in_ctl = false;
}

static void rx_add(struct vsock_dev *dev, struct vsock_conn *c, bool front)
{
	int i = conn_idx(dev, c);

	if (c->in_rx)
		return;
	c->in_rx = true;
	if (front) {
		c->rx_prev = -1;
		c->rx_next = dev->rx_head;
		if (dev->rx_head >= 0)
			dev->conns[dev->rx_head].rx_prev = i;
		else
			dev->rx_tail = i;
		dev->rx_head = i;
		return;
	}
	c->rx_next = -1;
	c->rx_prev = dev->rx_tail;
	if (dev->rx_tail >= 0)
		dev->conns[dev->rx_tail].rx_next = i;
	else
		dev->rx_head = i;
	dev->rx_tail = i;
}

static void rx_del(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (!c->in_rx)
		return;
	if (c->rx_prev >= 0)
		dev->conns[c->rx_prev].rx_next = c->rx_next;
	else
		dev->rx_head = c->rx_next;
	if (c->rx_next >= 0)
		dev->conns[c->rx_next].rx_prev = c->rx_prev;
	else
		dev->rx_tail = c->rx_prev;
	c->in_rx = false;
}

static void hash_add(struct vsock_dev *dev, struct vsock_conn *c)
{
	unsigned b = vsock_hash_key(c->local_port, c->peer_port);

	c->hash_next = dev->hash[b];
	dev->hash[b] = conn_idx(dev, c);
	c->hashed = true;
}

static void hash_del(struct vsock_dev *dev, struct vsock_conn *c)
{
	int *p = &dev->hash[vsock_hash_key(c->local_port, c->peer_port)];

	if (!c->hashed)
		return;
	while (*p >= 0 && *p != conn_idx(dev, c))
		p = &dev->conns[*p].hash_next;
	if (*p >= 0)
		*p = c->hash_next;
	c->hashed = false;
}

struct vsock_conn *vsock_dev_find(struct vsock_dev *dev, uint32_t local_port, uint32_t peer_port)
{
	int i = dev->hash[vsock_hash_key(local_port, peer_port)];

	while (i >= 0) {
		struct vsock_conn *c = &dev->conns[i];

		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
		i = c->hash_next;
	}
	return NULL;
}

/* ---- connection life ------------------------------------------------ */

int vsock_dev_init(struct vsock_dev *dev, uint64_t guest_cid, const char *uds_path, int epfd)
{
	memset(dev, 0, sizeof(*dev));
	dev->guest_cid = guest_cid;
	dev->uds_path = uds_path;
	dev->epfd = epfd;
	for (unsigned q = 0; q < VSOCK_QUEUES; q++)
		virtq_init(&dev->vq[q]);
	dev->conns = calloc(VSOCK_MAX_CONNS, sizeof(*dev->conns));
	dev->hash = malloc(VSOCK_HASH * sizeof(*dev->hash));
	if (!dev->conns || !dev->hash) {
		free(dev->conns);
		free(dev->hash);
		return -ENOMEM;
	}
	for (unsigned b = 0; b < VSOCK_HASH; b++)
		dev->hash[b] = -1;
	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		dev->conns[i].fd = -1;
		dev->conns[i].hash_next = i + 1 < VSOCK_MAX_CONNS ? i + 1 : -1;
	}
	dev->free_head = 0;
	dev->ctl_head = dev->ctl_tail = dev->rx_head = dev->rx_tail = -1;
	dev->next_port = VSOCK_PORT_BASE;
	dev->now_ms = vsock_now_ms();
	dev->next_deadline_ms = UINT64_MAX;
	return 0;
}

static struct vsock_conn *conn_alloc(struct vsock_dev *dev, int fd)
{
	struct vsock_conn *c;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	int i = dev->free_head;

	if (i < 0)
		return NULL;
	c = &dev->conns[i];
	ev.data.u64 = ((uint64_t)VSOCKD_TAG_CONN << 32) | (uint32_t)i;
	if (dev->epfd >= 0 && epoll_ctl(dev->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_warn(errno, "unable to watch a host connection");
		return NULL;
	}
	dev->free_head = c->hash_next;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->hash_next = c->ctl_next = c->ctl_prev = c->rx_next = c->rx_prev = -1;
	dev->nconns++;
	return c;
}

/* Closes the host side now; the slot lives on while packets are owed. */
static void conn_close_host(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (c->fd >= 0) {
		if (dev->epfd >= 0)
			epoll_ctl(dev->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->buf);
	c->buf = NULL;
	c->buf_len = 0;
	c->host_readable = c->host_writable = false;
	rx_del(dev, c);
}

static void conn_free(struct vsock_dev *dev, struct vsock_conn *c)
{
	conn_close_host(dev, c);
	ctl_del(dev, c);
	hash_del(dev, c);
	c->state = CONN_FREE;
	c->hash_next = dev->free_head;
	dev->free_head = conn_idx(dev, c);
	dev->nconns--;
}

static void conn_pend(struct vsock_dev *dev, struct vsock_conn *c, unsigned what)
{
	c->pending |= what;
	ctl_add(dev, c);
}

/* Ends the connection with an RST to the guest (§5.10.6.5: either side may
 * reset it at any time). A host-initiated one still connecting has told its
 * client nothing, so the client simply sees EOF. */
static void conn_reset(struct vsock_dev *dev, struct vsock_conn *c)
{
	conn_close_host(dev, c);
	if (c->state == CONN_HANDSHAKE) {
		conn_free(dev, c);
		return;
	}
	c->state = CONN_CLOSING;
	c->pending = PEND_RST;
	ctl_add(dev, c);
}

/* Both directions finished: the RST tells the guest the connection is gone
 * for good (a Linux peer waits for it after its own SHUTDOWN). */
static void conn_check_done(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (c->state == CONN_ESTABLISHED && c->host_eof && c->host_wr_done) {
		conn_close_host(dev, c);
		c->state = CONN_CLOSING;
		conn_pend(dev, c, PEND_RST);
	}
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	/* A guest whose fwd_cnt runs ahead of what we sent is lying: no credit. */
	if (in_flight > c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

static void conn_maybe_rx(struct vsock_dev *dev, struct vsock_conn *c)
{
	if (c->state == CONN_ESTABLISHED && c->host_readable && !c->host_eof &&
	    vsock_conn_peer_credit(c) > 0)
		rx_add(dev, c, false);
}

/* §5.10.6.3 leaves it to the receiver when to report freed space, and
 * every CREDIT_UPDATE is a packet and an interrupt in the guest. Report it
 * once the credit the guest still sees falls below half the buffer: two
 * largest packets of headroom, so the guest never waits for the update,
 * and one update per 128 KiB forwarded (a quarter-buffer rule sent one per
 * 64 KiB, as many as the data packets of a bulk transfer). */
static void conn_credit_check(struct vsock_dev *dev, struct vsock_conn *c)
{
	uint32_t seen_used = c->rx_cnt - c->fwd_cnt_sent;

	if (c->fwd_cnt != c->fwd_cnt_sent && seen_used > VSOCK_CONN_BUF - VSOCK_CREDIT_LOW)
		conn_pend(dev, c, PEND_CREDIT_UPDATE);
}

/* The host will take no more data: tell the guest, drop what is buffered. */
static void conn_host_wr_gone(struct vsock_dev *dev, struct vsock_conn *c)
{
	c->host_wr_done = true;
	c->fwd_cnt += c->buf_len;
	c->buf_len = 0;
	if (!(c->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND)) {
		c->our_shutdown |= VIRTIO_VSOCK_SHUTDOWN_RCV;
		conn_pend(dev, c, PEND_SHUTDOWN);
	}
	conn_check_done(dev, c);
}

/* ---- host side -------------------------------------------------------- */

static void conn_set_deadline(struct vsock_dev *dev, struct vsock_conn *c)
{
	c->deadline_ms = dev->now_ms + VSOCK_TIMEOUT_MS;
	if (c->deadline_ms < dev->next_deadline_ms)
		dev->next_deadline_ms = c->deadline_ms;
}

int vsock_dev_accept(struct vsock_dev *dev, int listen_fd)
{
	for (;;) {
		struct vsock_conn *c;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return 0;
			return -errno;
		}
		c = conn_alloc(dev, fd);
		if (!c) {
			log_warn(0, "too many connections (%u), refusing a host client",
				 dev->nconns);
			close(fd);
			continue;
		}
		c->state = CONN_HANDSHAKE;
		conn_set_deadline(dev, c);
	}
}

/* Host ports for host-initiated connections count up from VSOCK_PORT_BASE;
 * a connection is named by both ports, so only that pair must be unused. */
static uint32_t vsock_alloc_port(struct vsock_dev *dev, uint32_t peer)
{
	for (;;) {
		uint32_t p = dev->next_port++;

		if (dev->next_port < VSOCK_PORT_BASE)
			dev->next_port = VSOCK_PORT_BASE;
		if (!vsock_dev_find(dev, p, peer))
			return p;
	}
}

/* Parses "CONNECT <port>\n" without consuming what follows it. */
static void conn_read_line(struct vsock_dev *dev, struct vsock_conn *c)
{
	char line[VSOCK_LINE_MAX + 1], *nl, *end;
	unsigned long port;
	ssize_t n;

	n = recv(c->fd, line, VSOCK_LINE_MAX, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		goto out_close;
	line[n] = '\0';
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if (n == VSOCK_LINE_MAX)
			goto out_close;
		return;
	}
	if (read(c->fd, line, (size_t)(nl - line + 1)) != nl - line + 1)
		goto out_close;
	*nl = '\0';
	if (nl > line && nl[-1] == '\r')
		nl[-1] = '\0';
	if (strncmp(line, "CONNECT ", 8) != 0 || line[8] < '0' || line[8] > '9')
		goto out_close;
	errno = 0;
	port = strtoul(line + 8, &end, 10);
	if (*end != '\0' || errno || port > UINT32_MAX)
		goto out_close;
	c->host_initiated = true;
	c->peer_port = (uint32_t)port;
	c->local_port = vsock_alloc_port(dev, c->peer_port);
	hash_add(dev, c);
	c->state = CONN_CONNECTING;
	conn_set_deadline(dev, c);
	conn_pend(dev, c, PEND_REQUEST);
	return;
out_close:
	conn_free(dev, c);
}

/* Writes buffered guest data to the host socket. */
static void conn_flush(struct vsock_dev *dev, struct vsock_conn *c)
{
	while (c->buf_len && c->host_writable && !c->host_wr_done) {
		struct iovec iov[2];
		uint32_t first = VSOCK_CONN_BUF - c->buf_head;
		ssize_t n;

		if (first > c->buf_len)
			first = c->buf_len;
		iov[0] = (struct iovec){ c->buf + c->buf_head, first };
		iov[1] = (struct iovec){ c->buf, c->buf_len - first };
		n = writev(c->fd, iov, iov[1].iov_len ? 2 : 1);
		if (n < 0) {
			if (errno == EAGAIN) {
				c->host_writable = false;
				break;
			}
			if (errno == EINTR)
				continue;
			conn_host_wr_gone(dev, c);
			return;
		}
		c->buf_head = (c->buf_head + (uint32_t)n) % VSOCK_CONN_BUF;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->buf_len == 0 && (c->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) &&
	    !c->host_wr_done && c->fd >= 0) {
		shutdown(c->fd, SHUT_WR);
		c->host_wr_done = true;
	}
	conn_credit_check(dev, c);
	conn_check_done(dev, c);
}

void vsock_dev_conn_event(struct vsock_dev *dev, unsigned idx, uint32_t events)
{
	struct vsock_conn *c;

	if (idx >= VSOCK_MAX_CONNS)
		return;
	c = &dev->conns[idx];
	if (c->state == CONN_FREE || c->fd < 0)
		return;
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
		c->host_writable = true;
		if (c->buf_len)
			conn_flush(dev, c);
	}
	if (c->fd < 0)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		c->host_readable = true;
		if (c->state == CONN_HANDSHAKE)
			conn_read_line(dev, c);
		else
			conn_maybe_rx(dev, c);
	}
}

int vsock_dev_tick(struct vsock_dev *dev, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;

	dev->now_ms = now_ms;
	if (dev->next_deadline_ms == UINT64_MAX)
		return -1;
	if (now_ms < dev->next_deadline_ms)
		return (int)(dev->next_deadline_ms - now_ms);
	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &dev->conns[i];

		if (c->state != CONN_HANDSHAKE && c->state != CONN_CONNECTING)
			continue;
		if (c->deadline_ms <= now_ms) {
			log_info(0, "connection to guest port %u timed out", c->peer_port);
			if (c->state == CONN_HANDSHAKE)
				conn_free(dev, c);
			else
				conn_reset(dev, c);
			continue;
		}
		if (c->deadline_ms < next)
			next = c->deadline_ms;
	}
	dev->next_deadline_ms = next;
	return next == UINT64_MAX ? -1 : (int)(next - now_ms);
}

/* ---- guest tx queue: packets from the guest --------------------------- */

static void rst_queue_reply(struct vsock_dev *dev, const struct virtio_vsock_hdr *in)
{
	struct virtio_vsock_hdr *h;

	if (dev->rst_len == VSOCK_RST_QUEUE)
		return; /* vsock_tx_drain() stops before this can happen */
	h = &dev->rst_queue[(dev->rst_head + dev->rst_len++) % VSOCK_RST_QUEUE];
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VSOCK_HOST_CID);
	h->dst_cid = htole64(dev->guest_cid);
	h->src_port = in->dst_port;
	h->dst_port = in->src_port;
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(VIRTIO_VSOCK_OP_RST);
}

/* A guest connects to CID 2 port P: relay to the Unix socket PATH_P. */
static void vsock_guest_connect(struct vsock_dev *dev, const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint32_t port = le32toh(h->dst_port);
	struct vsock_conn *c;
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", dev->uds_path, port);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		goto out_refuse;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out_refuse;
	/* A Unix stream connect completes at once, or fails (EAGAIN: the
	 * listener's backlog is full; we refuse rather than retry). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		log_debug(errno, "guest connection to port %u refused: %s", port, sa.sun_path);
		close(fd);
		goto out_refuse;
	}
	c = conn_alloc(dev, fd);
	if (!c) {
		close(fd);
		goto out_refuse;
	}
	c->state = CONN_ESTABLISHED;
	c->local_port = port;
	c->peer_port = le32toh(h->src_port);
	c->peer_buf_alloc = le32toh(h->buf_alloc);
	c->peer_fwd_cnt = le32toh(h->fwd_cnt);
	c->host_writable = true;
	hash_add(dev, c);
	conn_pend(dev, c, PEND_RESPONSE);
	dev->stats.conns_opened++;
	return;
out_refuse:
	dev->stats.conns_refused++;
	rst_queue_reply(dev, h);
}

/* Guest payload for connection c: straight to the host socket when it
 * takes it, the rest into the connection's buffer (which the credit we
 * granted guarantees has room). */
static void conn_recv_payload(struct vsock_dev *dev, struct vsock_conn *c,
			      const struct vq_chain *chain, uint32_t len)
{
	struct iovec iov[VQ_IOV_MAX];
	unsigned niov = 0;
	size_t off = VSOCK_HDR_LEN, left = len;
	ssize_t n = 0;

	c->rx_cnt += len;
	dev->stats.tx_bytes += len;
	if (c->host_wr_done) {
		/* the host is gone: count it as delivered so credit flows */
		c->fwd_cnt += len;
		conn_credit_check(dev, c);
		return;
	}
	for (unsigned i = 0; i < chain->nout && left; i++) {
		const struct iovec *v = &chain->iov[i];

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		iov[niov].iov_base = (char *)v->iov_base + off;
		iov[niov].iov_len = v->iov_len - off < left ? v->iov_len - off : left;
		left -= iov[niov++].iov_len;
		off = 0;
	}
	if (c->buf_len == 0 && c->host_writable) {
		do
			n = writev(c->fd, iov, (int)niov);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			c->fwd_cnt += len;
			conn_host_wr_gone(dev, c);
			return;
		}
		if (n < 0) {
			c->host_writable = false;
			n = 0;
		}
		c->fwd_cnt += (uint32_t)n;
	}
	if ((uint32_t)n < len) {
		uint32_t rest = len - (uint32_t)n, tail, first;

		if (!c->buf) {
			c->buf = malloc(VSOCK_CONN_BUF);
			if (!c->buf) {
				log_warn(ENOMEM, "unable to buffer guest data");
				conn_reset(dev, c);
				return;
			}
			c->buf_head = 0;
		}
		tail = (c->buf_head + c->buf_len) % VSOCK_CONN_BUF;
		first = VSOCK_CONN_BUF - tail < rest ? VSOCK_CONN_BUF - tail : rest;
		iov_to_buf(iov, niov, (size_t)n, c->buf + tail, first);
		iov_to_buf(iov, niov, (size_t)n + first, c->buf, rest - first);
		c->buf_len += rest;
	}
	conn_credit_check(dev, c);
}

static void vsock_tx_packet(struct vsock_dev *dev, const struct vq_chain *chain)
{
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t len, flags;
	uint16_t op;

	if (chain->out_len < VSOCK_HDR_LEN) {
		dev->stats.bad_packets++;
		return;
	}
	iov_to_buf(chain->iov, chain->nout, 0, &h, VSOCK_HDR_LEN);
	len = le32toh(h.len);
	op = le16toh(h.op);
	if (len > VSOCK_MAX_PKT || len > chain->out_len - VSOCK_HDR_LEN ||
	    le64toh(h.src_cid) != dev->guest_cid) {
		/* §5.10.6.6: a packet not from the guest's own CID is dropped */
		dev->stats.bad_packets++;
		return;
	}
	if (le64toh(h.dst_cid) != VSOCK_HOST_CID || le16toh(h.type) != VIRTIO_VSOCK_TYPE_STREAM) {
		if (op != VIRTIO_VSOCK_OP_RST)
			rst_queue_reply(dev, &h);
		return;
	}
	c = vsock_dev_find(dev, le32toh(h.dst_port), le32toh(h.src_port));
	if (!c || c->state == CONN_CLOSING) {
		if (!c && op == VIRTIO_VSOCK_OP_REQUEST)
			vsock_guest_connect(dev, &h);
		else if (!c && op != VIRTIO_VSOCK_OP_RST)
			rst_queue_reply(dev, &h);
		return;
	}
	/* §5.10.6.3: every packet carries the sender's credit */
	c->peer_buf_alloc = le32toh(h.buf_alloc);
	c->peer_fwd_cnt = le32toh(h.fwd_cnt);

	switch (op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state != CONN_CONNECTING) {
			conn_reset(dev, c);
			break;
		}
		{
			char ok[32];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

			/* a fresh socket always has room for one short line */
			if (write(c->fd, ok, (size_t)n) != n) {
				conn_reset(dev, c);
				break;
			}
		}
		c->state = CONN_ESTABLISHED;
		c->host_writable = true;
		dev->stats.conns_opened++;
		conn_maybe_rx(dev, c);
		break;
	case VIRTIO_VSOCK_OP_RST:
		if (c->state == CONN_CONNECTING)
			dev->stats.conns_refused++;
		conn_free(dev, c);
		break;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if (c->state != CONN_ESTABLISHED) {
			conn_reset(dev, c);
			break;
		}
		flags = le32toh(h.flags) & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
		c->peer_shutdown |= flags;
		if ((flags & VIRTIO_VSOCK_SHUTDOWN_RCV) && !c->host_eof) {
			/* the guest reads no more: the host's writes now fail */
			shutdown(c->fd, SHUT_RD);
			c->host_eof = true;
			rx_del(dev, c);
		}
		conn_flush(dev, c); /* half-closes the host side once drained */
		break;
	case VIRTIO_VSOCK_OP_RW:
		if (c->state != CONN_ESTABLISHED || (c->peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND) ||
		    c->rx_cnt - c->fwd_cnt + len > VSOCK_CONN_BUF) {
			/* data out of place or beyond the credit we gave */
			dev->stats.bad_packets++;
			conn_reset(dev, c);
			break;
		}
		conn_recv_payload(dev, c, chain, len);
		break;
	case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		conn_pend(dev, c, PEND_CREDIT_UPDATE);
		break;
	default:
		/* a REQUEST for a live connection, OP_INVALID, unknown ops */
		conn_reset(dev, c);
		break;
	}
	if (c->state != CONN_FREE)
		conn_maybe_rx(dev, c);
}

/* Returns true when packets are left on the tx queue. */
static bool vsock_tx_drain(struct vsock_dev *dev)
{
	struct virtq *vq = &dev->vq[VSOCK_TXQ];
	struct vq_chain chain;

	for (unsigned n = 0; n < VSOCK_TX_BATCH; n++) {
		/* Replies to unknown connections need rx buffers: stop taking
		 * packets until they are out, not drop them. */
		if (dev->rst_len == VSOCK_RST_QUEUE)
			return false;
		if (virtq_pop(vq, &chain) <= 0)
			return false;
		vsock_tx_packet(dev, &chain);
		virtq_push(vq, chain.head, 0);
	}
	return true;
}

/* ---- guest rx queue: packets to the guest ----------------------------- */

static void vsock_hdr_fill(struct vsock_dev *dev, struct vsock_conn *c,
			   struct virtio_vsock_hdr *h, uint16_t op, uint32_t len)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = htole64(VSOCK_HOST_CID);
	h->dst_cid = htole64(dev->guest_cid);
	h->src_port = htole32(c->local_port);
	h->dst_port = htole32(c->peer_port);
	h->len = htole32(len);
	h->type = htole16(VIRTIO_VSOCK_TYPE_STREAM);
	h->op = htole16(op);
	h->buf_alloc = htole32(VSOCK_CONN_BUF);
	h->fwd_cnt = htole32(c->fwd_cnt);
	c->fwd_cnt_sent = c->fwd_cnt;
}

/* Takes one rx buffer and writes a header-only packet into it. Returns 1
 * when sent, 0 when the guest has no buffer, -EIO on a broken queue. */
static int vsock_rx_put_hdr(struct vsock_dev *dev, const struct virtio_vsock_hdr *h)
{
	struct virtq *vq = &dev->vq[VSOCK_RXQ];
	struct vq_chain chain;
	int r = virtq_pop(vq, &chain);

	if (r <= 0)
		return r;
	if (chain.nout || chain.in_len < VSOCK_HDR_LEN) {
		virtq_set_broken(vq, "rx buffer too small or not writable");
		return -EIO;
	}
	iov_from_buf(chain.iov, chain.nin, 0, h, VSOCK_HDR_LEN);
	virtq_push(vq, chain.head, VSOCK_HDR_LEN);
	return 1;
}

/* Sends one of c's pending control packets. Returns as vsock_rx_put_hdr. */
static int conn_send_ctl(struct vsock_dev *dev, struct vsock_conn *c)
{
	static const struct { unsigned bit; uint16_t op; } order[] = {
		{ PEND_REQUEST, VIRTIO_VSOCK_OP_REQUEST },
		{ PEND_RESPONSE, VIRTIO_VSOCK_OP_RESPONSE },
		{ PEND_CREDIT_UPDATE, VIRTIO_VSOCK_OP_CREDIT_UPDATE },
		{ PEND_SHUTDOWN, VIRTIO_VSOCK_OP_SHUTDOWN },
		{ PEND_RST, VIRTIO_VSOCK_OP_RST },
	};
	struct virtio_vsock_hdr h;
	uint32_t fwd_cnt_sent = c->fwd_cnt_sent;
	unsigned k;
	int r;

	for (k = 0; k < sizeof(order) / sizeof(order[0]); k++)
		if (c->pending & order[k].bit)
			break;
	if (k == sizeof(order) / sizeof(order[0]))
		return 1;
	vsock_hdr_fill(dev, c, &h, order[k].op, 0);
	if (order[k].op == VIRTIO_VSOCK_OP_SHUTDOWN)
		h.flags = htole32(c->our_shutdown);
	r = vsock_rx_put_hdr(dev, &h);
	if (r <= 0) {
		c->fwd_cnt_sent = fwd_cnt_sent;
		return r;
	}
	c->pending &= ~order[k].bit;
	/* any packet carried our credit: a separate update is now redundant */
	if (c->pending & PEND_CREDIT_UPDATE && c->fwd_cnt_sent == c->fwd_cnt)
		c->pending &= ~PEND_CREDIT_UPDATE;
	return 1;
}

/* Reads host data for c straight into up to VSOCK_RX_BATCH rx buffers with
 * one readv, never more than the guest's credit. */
static enum rx_result conn_rx(struct vsock_dev *dev, struct vsock_conn *c)
{
	struct virtq *vq = &dev->vq[VSOCK_RXQ];
	uint32_t credit = vsock_conn_peer_credit(c), room = 0;
	uint32_t cap[VSOCK_RX_BATCH];
	unsigned nchain = 0, niov = 0, i;
	ssize_t n;

	if (c->state != CONN_ESTABLISHED || c->host_eof || !c->host_readable || credit == 0)
		return RX_BLOCKED;
	while (nchain < VSOCK_RX_BATCH && room < credit) {
		struct vq_chain *ch = &dev->rx_chain[nchain];
		size_t off = VSOCK_HDR_LEN, want;
		int r = virtq_pop(vq, ch);

		if (r <= 0)
			break;
		if (ch->nout || ch->in_len <= VSOCK_HDR_LEN) {
			virtq_set_broken(vq, "rx buffer too small or not writable");
			return RX_NO_BUFFERS;
		}
		want = ch->in_len - VSOCK_HDR_LEN;
		if (want > VSOCK_MAX_PKT)
			want = VSOCK_MAX_PKT;
		if (want > credit - room)
			want = credit - room;
		cap[nchain++] = (uint32_t)want;
		room += (uint32_t)want;
		for (i = 0; i < ch->nin && want; i++) {
			const struct iovec *v = &ch->iov[i];

			if (off >= v->iov_len) {
				off -= v->iov_len;
				continue;
			}
			dev->rx_iov[niov].iov_base = (char *)v->iov_base + off;
			dev->rx_iov[niov].iov_len = v->iov_len - off < want ? v->iov_len - off : want;
			want -= dev->rx_iov[niov++].iov_len;
			off = 0;
		}
	}
	if (nchain == 0)
		return RX_NO_BUFFERS;
	do
		n = readv(c->fd, dev->rx_iov, (int)niov);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		virtq_unpop(vq, nchain);
		if (n < 0 && errno == EAGAIN) {
			c->host_readable = false;
			return RX_BLOCKED;
		}
		if (n < 0) {
			/* ECONNRESET & co: the client is gone both ways */
			conn_reset(dev, c);
			return RX_BLOCKED;
		}
		c->host_eof = true;
		c->our_shutdown |= VIRTIO_VSOCK_SHUTDOWN_SEND;
		conn_pend(dev, c, PEND_SHUTDOWN);
		conn_check_done(dev, c);
		return RX_BLOCKED;
	}
	for (i = 0; i < nchain && n > 0; i++) {
		struct virtio_vsock_hdr h;
		uint32_t len = (uint32_t)n < cap[i] ? (uint32_t)n : cap[i];

		vsock_hdr_fill(dev, c, &h, VIRTIO_VSOCK_OP_RW, len);
		iov_from_buf(dev->rx_chain[i].iov, dev->rx_chain[i].nin, 0, &h, VSOCK_HDR_LEN);
		virtq_push(vq, dev->rx_chain[i].head, VSOCK_HDR_LEN + len);
		c->tx_cnt += len;
		dev->stats.rx_bytes += len;
		n -= len;
	}
	virtq_unpop(vq, nchain - i);
	if (c->pending & PEND_CREDIT_UPDATE && c->fwd_cnt_sent == c->fwd_cnt) {
		c->pending &= ~PEND_CREDIT_UPDATE;
		if (!c->pending)
			ctl_del(dev, c);
	}
	/* Even after a short read, only EAGAIN proves the socket empty: an EOF
	 * that arrived with the data raised its one edge already. */
	return vsock_conn_peer_credit(c) ? RX_READY : RX_BLOCKED;
}

enum fill_result { FILL_DONE, FILL_STARVED, FILL_MORE };

/* Fills rx buffers: RSTs for unknown connections, then control packets,
 * then data, connection by connection (round robin). Control packets a read
 * raises (SHUTDOWN, RST) go out before the next connection's data. */
static enum fill_result vsock_rx_fill(struct vsock_dev *dev)
{
	unsigned budget = VSOCK_RX_FILL_MAX;
	int r;

	if (!dev->vq[VSOCK_RXQ].ready || dev->vq[VSOCK_RXQ].broken)
		return FILL_DONE;
	for (;;) {
		while (dev->rst_len) {
			r = vsock_rx_put_hdr(dev, &dev->rst_queue[dev->rst_head]);
			if (r <= 0)
				return r == 0 ? FILL_STARVED : FILL_DONE;
			dev->rst_head = (dev->rst_head + 1) % VSOCK_RST_QUEUE;
			dev->rst_len--;
		}
		while (dev->ctl_head >= 0) {
			struct vsock_conn *c = &dev->conns[dev->ctl_head];

			r = conn_send_ctl(dev, c);
			if (r <= 0)
				return r == 0 ? FILL_STARVED : FILL_DONE;
			if (!c->pending) {
				ctl_del(dev, c);
				if (c->state == CONN_CLOSING)
					conn_free(dev, c);
			}
		}
		if (dev->rx_head < 0)
			return FILL_DONE;
		if (budget-- == 0)
			return FILL_MORE;
		{
			struct vsock_conn *c = &dev->conns[dev->rx_head];
			enum rx_result res;

			rx_del(dev, c);
			res = conn_rx(dev, c);
			if (res == RX_READY && c->state == CONN_ESTABLISHED) {
				rx_add(dev, c, false); /* round robin: to the back */
			} else if (res == RX_NO_BUFFERS) {
				rx_add(dev, c, true);
				return dev->vq[VSOCK_RXQ].broken ? FILL_DONE : FILL_STARVED;
			}
		}
	}
}

/* §5.10.6.7: tells the driver its connections are gone (after a reset). */
static void vsock_event_send(struct vsock_dev *dev)
{
	struct virtq *vq = &dev->vq[VSOCK_EVQ];
	struct virtio_vsock_event ev = { .id = htole32(VIRTIO_VSOCK_EVENT_TRANSPORT_RESET) };
	struct vq_chain chain;

	if (!dev->reset_event_pending || !vq->ready || virtq_pop(vq, &chain) <= 0)
		return;
	if (chain.in_len < sizeof(ev)) {
		virtq_set_broken(vq, "event buffer too small");
		return;
	}
	iov_from_buf(chain.iov + chain.nout, chain.nin, 0, &ev, sizeof(ev));
	virtq_push(vq, chain.head, sizeof(ev));
	dev->reset_event_pending = false;
}

bool vsock_dev_process(struct vsock_dev *dev)
{
	struct virtq *rxq = &dev->vq[VSOCK_RXQ], *txq = &dev->vq[VSOCK_TXQ];
	enum fill_result fill;
	bool more;

	more = vsock_tx_drain(dev);
	fill = vsock_rx_fill(dev);
	if (fill == FILL_MORE)
		more = true;
	vsock_event_send(dev);
	/* one interrupt per queue per round, after all of its work */
	for (unsigned q = 0; q < VSOCK_QUEUES; q++)
		virtq_flush(&dev->vq[q]);
	if (!more && virtq_want_kick(txq))
		more = true;
	/* a RST-queue stall on tx also waits for rx buffers */
	if ((fill == FILL_STARVED || dev->rst_len) && virtq_want_kick(rxq))
		more = true;
	return more;
}

static unsigned vsock_close_all(struct vsock_dev *dev, bool keep_handshakes)
{
	unsigned n = 0;

	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		enum vsock_conn_state st = dev->conns[i].state;

		if (st != CONN_FREE && !(keep_handshakes && st == CONN_HANDSHAKE)) {
			conn_free(dev, &dev->conns[i]);
			n++;
		}
	}
	return n;
}

/* Host clients still sending their CONNECT line have not reached the guest
 * yet: they survive, everything else is gone for the guest. */
void vsock_dev_reset(struct vsock_dev *dev)
{
	unsigned n = vsock_close_all(dev, true);

	dev->rst_len = 0;
	if (n)
		log_info(0, "device reset: closed %u connections", n);
}

void vsock_dev_fini(struct vsock_dev *dev)
{
	if (dev->conns)
		vsock_close_all(dev, false);
	free(dev->conns);
	free(dev->hash);
	dev->conns = NULL;
	dev->hash = NULL;
}
