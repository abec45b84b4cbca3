/* Unit tests for sbx-vsockd's vsock device (vsockd/vsock.c): the
 * connection state machine and credit accounting, driven through a fake
 * guest's rx/tx rings and real Unix sockets on the host side, no QEMU. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsockd/vsock.h"
#include "lib/log.h"
#include "tests/unit/vsockd_fake_guest.h"

#define CID 3
#define RXBUF 4096

struct fixture {
	struct vq_mem mem;
	struct vsock_dev dev;
	struct fg_ring rx, tx;
	int epfd, lfd;
	char dir[32], path[64];
};

static struct fixture fx;

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0)
		return -1;
	return fd;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = &fx;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)VSOCKD_TAG_UDS << 32 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/vsockd-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	memcpy(f->path, f->dir, sizeof(f->dir));
	strcat(f->path, "/v.sock");
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_int_equal(vsock_dev_init(&f->dev, CID, f->path, f->epfd), 0);
	fg_init_mem(&f->mem);
	assert_int_equal(fg_ring_init(&f->rx, &f->dev.vq[VSOCK_RXQ], &f->mem, 1024, 0), 0);
	assert_int_equal(fg_ring_init(&f->tx, &f->dev.vq[VSOCK_TXQ], &f->mem, 1024, 0), 0);
	f->lfd = listen_unix(f->path);
	assert_true(f->lfd >= 0);
	assert_int_equal(epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	vsock_dev_fini(&f->dev);
	close(f->lfd);
	close(f->epfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

/* One round of the daemon's loop, without sleeping. */
static void pump(struct fixture *f)
{
	for (int round = 0; round < 4; round++) {
		struct epoll_event evs[64];
		int n = epoll_wait(f->epfd, evs, 64, 0);

		for (int i = 0; i < n; i++) {
			uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);

			if (tag == VSOCKD_TAG_UDS)
				vsock_dev_accept(&f->dev, f->lfd);
			else if (tag == VSOCKD_TAG_CONN)
				vsock_dev_conn_event(&f->dev, (uint32_t)evs[i].data.u64, evs[i].events);
		}
		vsock_dev_process(&f->dev);
	}
}

static void post_rx(struct fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		/* the Linux 6.1 layout: header and payload in two descriptors */
		struct fg_desc d[2] = {
			{ fg_gpa(fg_alloc(VSOCK_HDR_LEN)), VSOCK_HDR_LEN, VRING_DESC_F_WRITE },
			{ fg_gpa(fg_alloc(RXBUF)), RXBUF, VRING_DESC_F_WRITE },
		};

		fg_add_chain(&f->rx, d, 2);
	}
}

static struct virtio_vsock_hdr mkhdr(uint16_t op, uint32_t src_port, uint32_t dst_port,
				     uint32_t len)
{
	struct virtio_vsock_hdr h = {
		.src_cid = CID, .dst_cid = VSOCK_HOST_CID, .src_port = src_port,
		.dst_port = dst_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = 262144, .fwd_cnt = 0,
	};

	return h;
}

/* Puts a packet on the tx ring: header split over two descriptors and the
 * payload over two more, so that no code assumes one buffer per part. */
static void guest_send(struct fixture *f, struct virtio_vsock_hdr h, const void *data)
{
	uint8_t *hb = fg_alloc(VSOCK_HDR_LEN);
	uint8_t *pb = fg_alloc(h.len ? h.len : 1);
	struct fg_desc d[4] = {
		{ fg_gpa(hb), 20, 0 }, { fg_gpa(hb + 20), VSOCK_HDR_LEN - 20, 0 },
		{ fg_gpa(pb), h.len / 2, 0 }, { fg_gpa(pb + h.len / 2), h.len - h.len / 2, 0 },
	};

	memcpy(hb, &h, VSOCK_HDR_LEN);
	if (h.len)
		memcpy(pb, data, h.len);
	fg_add_chain(&f->tx, d, h.len ? 4 : 2);
	pump(f);
}

/* Takes the next packet the device put on the rx ring: 1, or 0 if none. */
static int guest_recv(struct fixture *f, struct virtio_vsock_hdr *h, void *data, size_t cap)
{
	uint32_t id, len;
	struct vring_desc *d;

	if (!fg_get_used(&f->rx, &id, &len))
		return 0;
	d = &f->rx.desc[id];
	memcpy(h, fg_ptr(d->addr), VSOCK_HDR_LEN);
	assert_int_equal(len, VSOCK_HDR_LEN + h->len);
	assert_true(h->len <= cap);
	if (h->len)
		memcpy(data, fg_ptr(f->rx.desc[d->next].addr), h->len);
	return 1;
}

static void expect_pkt(struct fixture *f, uint16_t op, struct virtio_vsock_hdr *out)
{
	static char buf[RXBUF];
	struct virtio_vsock_hdr h;

	assert_int_equal(guest_recv(f, &h, buf, sizeof(buf)), 1);
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_HOST_CID);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.type, VIRTIO_VSOCK_TYPE_STREAM);
	if (out)
		*out = h;
}

static void expect_no_pkt(struct fixture *f)
{
	struct virtio_vsock_hdr h;
	char buf[RXBUF];

	assert_int_equal(guest_recv(f, &h, buf, sizeof(buf)), 0);
}

static ssize_t read_timeout(int fd, void *buf, size_t len)
{
	struct timeval tv = { .tv_sec = 2 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return read(fd, buf, len);
}

/* Host client connects to guest port 1234 and the guest accepts. */
static int host_connect(struct fixture *f, uint32_t *local_port)
{
	struct virtio_vsock_hdr h;
	char line[32];
	int fd = connect_unix(f->path);
	ssize_t n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "CONNECT 1234\n", 13), 13);
	post_rx(f, 8);
	pump(f);
	expect_pkt(f, VIRTIO_VSOCK_OP_REQUEST, &h);
	assert_int_equal(h.dst_port, 1234);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 1234, h.src_port, 0), NULL);
	n = read_timeout(fd, line, sizeof(line) - 1);
	assert_true(n > 3);
	line[n] = '\0';
	assert_int_equal(strtoul(line + 3, NULL, 10), h.src_port);
	assert_memory_equal(line, "OK ", 3);
	*local_port = h.src_port;
	return fd;
}

static void test_host_connect_and_data(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint32_t port;
	char buf[RXBUF];
	int fd = host_connect(f, &port);

	assert_int_equal(write(fd, "hello", 5), 5);
	pump(f);
	assert_int_equal(guest_recv(f, &h, buf, sizeof(buf)), 1);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(h.buf_alloc, VSOCK_CONN_BUF);

	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, 5), "world");
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "world", 5);
	close(fd);
}

static void test_host_connect_refused(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	char buf[32];
	int fd = connect_unix(f->path);

	assert_int_equal(write(fd, "CONNECT 99\n", 11), 11);
	post_rx(f, 4);
	pump(f);
	expect_pkt(f, VIRTIO_VSOCK_OP_REQUEST, &h);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RST, 99, h.src_port, 0), NULL);
	/* EOF before "OK": the client's clear error */
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	assert_null(vsock_dev_find(&f->dev, h.src_port, 99));
	close(fd);
}

static void test_host_bad_connect_line(void **state)
{
	struct fixture *f = *state;
	char buf[32];
	int fd = connect_unix(f->path);

	assert_int_equal(write(fd, "HELLO 12\n", 9), 9);
	post_rx(f, 4);
	pump(f);
	expect_no_pkt(f);
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	assert_int_equal(f->dev.nconns, 0);
	close(fd);
}

/* The device never sends more than the guest's buf_alloc - (tx_cnt -
 * fwd_cnt), and resumes when the guest reports progress. */
static void test_credit_host_to_guest(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 1234, 0, 0), r;
	char data[100], buf[RXBUF];
	uint32_t port, got = 0;
	int fd = host_connect(f, &port);

	memset(data, 'x', sizeof(data));
	h.dst_port = port;
	h.buf_alloc = 30;
	guest_send(f, h, NULL);
	assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
	pump(f);
	while (guest_recv(f, &r, buf, sizeof(buf)))
		got += r.len;
	assert_int_equal(got, 30);
	/* the guest's app read 10 bytes: 10 more may come */
	h.fwd_cnt = 10;
	guest_send(f, h, NULL);
	pump(f);
	while (guest_recv(f, &r, buf, sizeof(buf)))
		got += r.len;
	assert_int_equal(got, 40);
	h.fwd_cnt = 40;
	h.buf_alloc = 262144;
	guest_send(f, h, NULL);
	pump(f);
	while (guest_recv(f, &r, buf, sizeof(buf)))
		got += r.len;
	assert_int_equal(got, 100);
	close(fd);
}

/* A guest fwd_cnt beyond what it was sent grants nothing. */
static void test_credit_lying_guest(void **state)
{
	struct vsock_conn c = { .peer_buf_alloc = 100, .tx_cnt = 50, .peer_fwd_cnt = 60 };

	(void)state;
	assert_int_equal(vsock_conn_peer_credit(&c), 0);
	c.peer_fwd_cnt = 20;
	assert_int_equal(vsock_conn_peer_credit(&c), 70);
	/* 32-bit counters wrap */
	c.tx_cnt = 10;
	c.peer_fwd_cnt = 0xfffffff0u;
	assert_int_equal(vsock_conn_peer_credit(&c), 74);
}

/* Makes the host socket look full, for good: no epoll edge will say it
 * drained (the test drives writability by hand). */
static void host_stall(struct fixture *f, struct vsock_conn *c)
{
	epoll_ctl(f->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->host_writable = false;
}

/* The guest may not send more than the buffer space we advertised. */
static void test_credit_guest_overrun(void **state)
{
	struct fixture *f = *state;
	static char chunk[VSOCK_MAX_PKT];
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t port;
	int fd = host_connect(f, &port);

	c = vsock_dev_find(&f->dev, port, 1234);
	assert_non_null(c);
	host_stall(f, c);
	for (unsigned i = 0; i < VSOCK_CONN_BUF / VSOCK_MAX_PKT; i++)
		guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, VSOCK_MAX_PKT), chunk);
	assert_int_equal(c->buf_len, VSOCK_CONN_BUF);
	assert_int_equal(c->state, CONN_ESTABLISHED);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, 1), chunk);
	while (guest_recv(f, &h, chunk, sizeof(chunk)) && h.op != VIRTIO_VSOCK_OP_RST)
		;
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RST);
	assert_null(vsock_dev_find(&f->dev, port, 1234));
	close(fd);
}

/* Buffered guest data reaches the host in order once it reads, and the
 * freed space is reported with a CREDIT_UPDATE. */
static void test_buffered_then_credit_update(void **state)
{
	struct fixture *f = *state;
	static char out[VSOCK_CONN_BUF], in[VSOCK_CONN_BUF];
	struct virtio_vsock_hdr h;
	struct vsock_conn *c;
	uint32_t port, total = 0;
	bool update = false;
	int fd = host_connect(f, &port);

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + i / 251);
	c = vsock_dev_find(&f->dev, port, 1234);
	host_stall(f, c);
	for (unsigned i = 0; i < 4; i++)
		guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, VSOCK_MAX_PKT),
			   out + i * VSOCK_MAX_PKT);
	assert_int_equal(c->fwd_cnt, 0);
	vsock_dev_conn_event(&f->dev, (unsigned)(c - f->dev.conns), EPOLLOUT);
	while (total < sizeof(in)) {
		ssize_t n = read_timeout(fd, in + total, sizeof(in) - total);

		assert_true(n > 0);
		total += (uint32_t)n;
		vsock_dev_conn_event(&f->dev, (unsigned)(c - f->dev.conns), EPOLLOUT);
	}
	assert_memory_equal(in, out, sizeof(out));
	pump(f);
	while (guest_recv(f, &h, in, sizeof(in)))
		if (h.op == VIRTIO_VSOCK_OP_CREDIT_UPDATE && h.fwd_cnt == VSOCK_CONN_BUF)
			update = true;
	assert_true(update);
	close(fd);
}

/* Guest data the host reads at once: no CREDIT_UPDATE while the guest
 * still sees half the buffer free, one when it sees less. */
static void test_credit_update_batched(void **state)
{
	struct fixture *f = *state;
	static char out[VSOCK_MAX_PKT], in[VSOCK_MAX_PKT];
	struct virtio_vsock_hdr h;
	uint32_t port, sent = 0;
	int fd = host_connect(f, &port);

	memset(out, 'y', sizeof(out));
	while (sent + VSOCK_MAX_PKT <= VSOCK_CREDIT_LOW) {
		guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, VSOCK_MAX_PKT), out);
		sent += VSOCK_MAX_PKT;
		for (uint32_t got = 0; got < VSOCK_MAX_PKT;) {
			ssize_t n = read_timeout(fd, in, VSOCK_MAX_PKT - got);

			assert_true(n > 0);
			got += (uint32_t)n;
		}
		pump(f);
		expect_no_pkt(f);
	}
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, VSOCK_MAX_PKT), out);
	sent += VSOCK_MAX_PKT;
	pump(f);
	expect_pkt(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, &h);
	assert_int_equal(h.fwd_cnt, sent);
	expect_no_pkt(f);
	close(fd);
}

static void test_credit_request(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint32_t port;
	int fd = host_connect(f, &port);

	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 1234, port, 0), NULL);
	expect_pkt(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, &h);
	assert_int_equal(h.buf_alloc, VSOCK_CONN_BUF);
	assert_int_equal(h.fwd_cnt, 0);
	close(fd);
}

/* Guest connects to CID 2 port 5000: relayed to PATH_5000. */
static void test_guest_connect(void **state)
{
	struct fixture *f = *state;
	char p[128], buf[16];
	int l, fd;

	snprintf(p, sizeof(p), "%s_5000", f->path);
	l = listen_unix(p);
	assert_true(l >= 0);
	post_rx(f, 4);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 40000, 5000, 0), NULL);
	expect_pkt(f, VIRTIO_VSOCK_OP_RESPONSE, NULL);
	fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 40000, 5000, 4), "ping");
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(fd, "pong", 4), 4);
	pump(f);
	{
		struct virtio_vsock_hdr h;

		assert_int_equal(guest_recv(f, &h, buf, sizeof(buf)), 1);
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
		assert_int_equal(h.src_port, 5000);
		assert_int_equal(h.dst_port, 40000);
		assert_memory_equal(buf, "pong", 4);
	}
	close(fd);
	close(l);
}

static void test_guest_connect_nobody_listens(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;

	post_rx(f, 4);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_REQUEST, 40001, 5001, 0), NULL);
	expect_pkt(f, VIRTIO_VSOCK_OP_RST, &h);
	assert_int_equal(h.src_port, 5001);
	assert_int_equal(h.dst_port, 40001);
	assert_int_equal(f->dev.nconns, 0);
}

/* Half-closes both ways, then the final RST. */
static void test_shutdown_both_ways(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, 0, 0);
	char buf[16];
	uint32_t port;
	int fd = host_connect(f, &port);

	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, 3), "abc");
	h.dst_port = port;
	h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
	guest_send(f, h, NULL);
	/* the host reads the data, then EOF, and can still write */
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 3);
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	assert_int_equal(write(fd, "xyz", 3), 3);
	shutdown(fd, SHUT_WR);
	pump(f);
	expect_pkt(f, VIRTIO_VSOCK_OP_RW, &h);
	assert_int_equal(h.len, 3);
	expect_pkt(f, VIRTIO_VSOCK_OP_SHUTDOWN, &h);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	expect_pkt(f, VIRTIO_VSOCK_OP_RST, NULL);
	assert_null(vsock_dev_find(&f->dev, port, 1234));
	assert_int_equal(f->dev.nconns, 0);
	close(fd);
}

/* Guest shuts down receiving: the host's writes fail (EPIPE). */
static void test_shutdown_rcv(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_SHUTDOWN, 1234, 0, 0);
	uint32_t port;
	int fd = host_connect(f, &port);

	h.dst_port = port;
	h.flags = VIRTIO_VSOCK_SHUTDOWN_RCV;
	guest_send(f, h, NULL);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write(fd, "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(fd);
}

/* A host client that vanishes mid-stream: the guest is told. */
static void test_host_vanishes(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	char buf[RXBUF];
	uint32_t port;
	bool shut = false, rst = false;
	int fd = host_connect(f, &port);

	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	pump(f);
	/* also the guest's data now has nowhere to go */
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 1234, port, 3), "abc");
	pump(f);
	while (guest_recv(f, &h, buf, sizeof(buf))) {
		if (h.op == VIRTIO_VSOCK_OP_SHUTDOWN)
			shut = true;
		if (h.op == VIRTIO_VSOCK_OP_RST)
			rst = true;
		if (h.op == VIRTIO_VSOCK_OP_RW)
			assert_false(shut);
	}
	assert_true(shut);
	assert_true(rst);
	assert_int_equal(f->dev.nconns, 0);
}

static void test_unknown_connection_gets_rst(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;

	post_rx(f, 4);
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RW, 7, 8, 2), "zz");
	expect_pkt(f, VIRTIO_VSOCK_OP_RST, &h);
	assert_int_equal(h.dst_port, 7);
	/* an RST is never answered */
	guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RST, 7, 8, 0), NULL);
	expect_no_pkt(f);
}

static void test_spoofed_and_malformed_dropped(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0);
	uint8_t *short_hdr = fg_alloc(10);
	struct fg_desc d = { fg_gpa(short_hdr), 10, 0 };

	post_rx(f, 4);
	h.src_cid = 77; /* not the guest's CID */
	guest_send(f, h, NULL);
	h = mkhdr(VIRTIO_VSOCK_OP_RW, 1, 2, 100); /* len beyond the buffer */
	{
		uint8_t *hb = fg_alloc(VSOCK_HDR_LEN);
		struct fg_desc d1 = { fg_gpa(hb), VSOCK_HDR_LEN, 0 };

		memcpy(hb, &h, VSOCK_HDR_LEN);
		fg_add_chain(&f->tx, &d1, 1);
	}
	fg_add_chain(&f->tx, &d, 1); /* shorter than a header */
	pump(f);
	expect_no_pkt(f);
	assert_int_equal(f->dev.stats.bad_packets, 3);
	assert_false(f->dev.vq[VSOCK_TXQ].broken);
	/* all three were returned to the driver */
	assert_int_equal(f->tx.used->idx, 3);
}

static void test_seqpacket_refused(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h = mkhdr(VIRTIO_VSOCK_OP_REQUEST, 1, 2, 0);

	post_rx(f, 4);
	h.type = VIRTIO_VSOCK_TYPE_SEQPACKET;
	guest_send(f, h, NULL);
	expect_pkt(f, VIRTIO_VSOCK_OP_RST, NULL);
}

/* Packets for the guest wait for rx buffers instead of being dropped. */
static void test_waits_for_rx_buffers(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	char buf[RXBUF];
	int fd = connect_unix(f->path);

	assert_int_equal(write(fd, "CONNECT 5\n", 10), 10);
	pump(f);
	expect_no_pkt(f);
	post_rx(f, 1);
	pump(f);
	assert_int_equal(guest_recv(f, &h, buf, sizeof(buf)), 1);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	close(fd);
}

/* The driver reset: every connection is closed on the host side. */
static void test_device_reset(void **state)
{
	struct fixture *f = *state;
	char buf[8];
	uint32_t port;
	int fd = host_connect(f, &port);

	vsock_dev_reset(&f->dev);
	assert_int_equal(read_timeout(fd, buf, sizeof(buf)), 0);
	assert_int_equal(f->dev.nconns, 0);
	close(fd);
}

/* Many connections at once, each with its own bytes. */
static void test_many_connections(void **state)
{
	struct fixture *f = *state;
	enum { N = 200 };
	static int fds[N];
	static uint32_t ports[N];
	struct virtio_vsock_hdr h;
	char buf[RXBUF];
	unsigned seen[N] = { 0 };

	for (int i = 0; i < N; i++) {
		fds[i] = connect_unix(f->path);
		assert_true(fds[i] >= 0);
		assert_int_equal(write(fds[i], "CONNECT 80\n", 11), 11);
	}
	post_rx(f, 250);
	pump(f);
	for (int i = 0; i < N; i++) {
		expect_pkt(f, VIRTIO_VSOCK_OP_REQUEST, &h);
		ports[i] = h.src_port;
		guest_send(f, mkhdr(VIRTIO_VSOCK_OP_RESPONSE, 80, h.src_port, 0), NULL);
	}
	assert_int_equal(f->dev.nconns, N);
	for (int i = 0; i < N; i++) {
		char line[32];

		assert_true(read_timeout(fds[i], line, sizeof(line)) > 3);
		assert_int_equal(write(fds[i], &i, sizeof(i)), (ssize_t)sizeof(i));
	}
	post_rx(f, 250);
	pump(f);
	while (guest_recv(f, &h, buf, sizeof(buf))) {
		int i;

		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
		memcpy(&i, buf, sizeof(i));
		assert_true(i >= 0 && i < N);
		assert_int_equal(h.src_port, ports[i]);
		seen[i]++;
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(seen[i], 1);
		close(fds[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_connect_and_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_bad_connect_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_host_to_guest, setup, teardown),
		cmocka_unit_test(test_credit_lying_guest),
		cmocka_unit_test_setup_teardown(test_credit_guest_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_then_credit_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_update_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connect_nobody_listens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_rcv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_vanishes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_connection_gets_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spoofed_and_malformed_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seqpacket_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_for_rx_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_device_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
