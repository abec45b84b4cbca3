/* libFuzzer target: sbx-vsockd's device (vsockd/vsock.c over
 * vsockd/virtq.c), the host code that reads guest memory. The input is a
 * script of guest and host actions: the guest's memory is two separately
 * allocated regions (so ASan sees a chain that runs off one), the rx, tx
 * and event rings live in it with sizes, base indexes and features the
 * input picks, and the script posts descriptor chains (direct, indirect,
 * split across descriptors), vsock packets with fuzzer headers, raw
 * writes over any byte of guest memory (descriptors, indexes, flags,
 * headers), host clients that connect and write CONNECT lines, host
 * writes and closes, timer ticks and device resets. Real Unix sockets on
 * the host side, as sbx-vsockd has. The checks: no memory error, every
 * used entry names a descriptor in the table with a length the chain
 * could hold, the connection count matches the table. The table has 64
 * connections here (VSOCK_MAX_CONNS, set by the Makefile), so inputs
 * reach a full one. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "vsockd/vsock.h"

#define CID 3
#define REGION_SIZE (32u * 1024)
#define GPA0 0x10000ull		/* region 0; region 1 follows it at once */
#define RING_AREA 0x2000u	/* rings live in the first 8 KiB of region 0 */
#define RING_MAX 64
#define HOST_FDS 16
#define PORT_GUEST 1024		/* the port a host listener takes guest connections on */

struct ring {
	unsigned num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t next_desc, avail_idx;
	uint64_t desc_gpa;
};

static uint8_t *region[2];
static struct vq_mem mem;
static struct vsock_dev dev;
static struct ring rings[VSOCK_QUEUES];
static int epfd, lfd_host, lfd_guest;
static char dir[64], uds[96];
static int host_fd[HOST_FDS];
static size_t heap;
static bool poked;		/* this input wrote over guest memory (act_poke) */
static uint32_t first_port;	/* the device's next_port once initialised */

/* ---- the input, read front to back; zeros once it runs out ---- */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t in_u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t in_u16(struct in *in)
{
	return (uint16_t)(in_u8(in) | in_u8(in) << 8);
}

static uint32_t in_u32(struct in *in)
{
	return (uint32_t)in_u16(in) | (uint32_t)in_u16(in) << 16;
}

/* ---- guest memory ---- */

static uint8_t *gpa_host(uint64_t gpa)
{
	uint64_t off = gpa - GPA0;

	return off < 2 * REGION_SIZE ? region[off / REGION_SIZE] + off % REGION_SIZE : NULL;
}

/* Writes into guest memory byte by byte, crossing regions as the guest's
 * physical memory would. */
static void guest_write(uint64_t gpa, const void *src, size_t len)
{
	const uint8_t *s = src;

	for (size_t i = 0; i < len; i++) {
		uint8_t *h = gpa_host(gpa + i);

		if (h)
			*h = s[i];
	}
}

/* Buffers go in the rest of guest memory, wrapping round; a chain may
 * straddle the two regions. */
static uint64_t guest_alloc(size_t len)
{
	const size_t area = 2 * REGION_SIZE - RING_AREA;

	len = (len + 15) & ~(size_t)15;
	if (len > area)
		len = area;
	if (heap + len > area)
		heap = 0;
	heap += len;
	return GPA0 + RING_AREA + heap - len;
}

static void ring_init(unsigned q, unsigned num, uint16_t base, bool event_idx, bool indirect)
{
	struct ring *r = &rings[q];
	uint8_t *at = region[0] + q * 0xa00; /* 16-aligned, room for RING_MAX */

	r->num = num;
	r->desc = (struct vring_desc *)at;
	r->avail = (struct vring_avail *)(at + 16 * RING_MAX);
	r->used = (struct vring_used *)(at + 16 * RING_MAX + 8 + 2 * RING_MAX);
	r->desc_gpa = GPA0 + (uint64_t)(at - region[0]);
	r->next_desc = 0;
	r->avail_idx = base;
	r->avail->idx = base;
	r->used->idx = base;
	virtq_init(&dev.vq[q]);
	FUZZ_CHECK(virtq_setup(&dev.vq[q], &mem, num, r->desc, r->avail, r->used, base) == 0);
	dev.vq[q].event_idx = event_idx;
	dev.vq[q].indirect = indirect;
	dev.vq[q].ready = true;
}

/* Adds a chain of n buffers (gpa, len, write flag); with `indirect` they
 * go in an indirect table in guest memory and the ring holds one entry. */
static void ring_add(unsigned q, const uint64_t *gpa, const uint32_t *len, const bool *wr,
		     unsigned n, bool indirect)
{
	struct ring *r = &rings[q];
	uint16_t head = r->next_desc;

	if (!n)
		return;
	if (indirect) {
		uint64_t table = guest_alloc(16 * n);

		for (unsigned i = 0; i < n; i++) {
			struct vring_desc d = {
				.addr = gpa[i], .len = len[i],
				.flags = (uint16_t)((wr[i] ? VRING_DESC_F_WRITE : 0) |
						    (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
				.next = (uint16_t)(i + 1),
			};
			guest_write(table + 16 * i, &d, sizeof(d));
		}
		r->desc[head].addr = table;
		r->desc[head].len = 16 * n;
		r->desc[head].flags = VRING_DESC_F_INDIRECT;
		r->desc[head].next = 0;
		r->next_desc = (uint16_t)((head + 1) % r->num);
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint16_t idx = (uint16_t)((head + i) % r->num);

			r->desc[idx].addr = gpa[i];
			r->desc[idx].len = len[i];
			r->desc[idx].flags = (uint16_t)((wr[i] ? VRING_DESC_F_WRITE : 0) |
							(i + 1 < n ? VRING_DESC_F_NEXT : 0));
			r->desc[idx].next = (uint16_t)((idx + 1) % r->num);
		}
		r->next_desc = (uint16_t)((head + n) % r->num);
	}
	r->avail->ring[r->avail_idx % r->num] = head;
	r->avail_idx++;
	__atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
}

/* ---- the actions ---- */

/* A vsock packet from the guest: a header mostly as a guest would write
 * it (each field the input may also set), a payload, laid out in one to
 * four descriptors. */
static void act_tx(struct in *in)
{
	struct virtio_vsock_hdr h = { 0 };
	uint8_t sel = in_u8(in), layout = in_u8(in);
	uint16_t plen = in_u16(in) & 0x1fff;
	uint8_t buf[VSOCK_HDR_LEN + 0x2000];
	uint64_t gpa[4];
	uint32_t len[4];
	bool wr[4] = { false, false, false, false };
	unsigned n = 1 + layout % 4, total;

	h.src_cid = htole64(sel & 1 ? (uint64_t)in_u32(in) : CID);
	h.dst_cid = htole64(sel & 2 ? (uint64_t)in_u32(in) : VSOCK_HOST_CID);
	h.type = htole16(sel & 4 ? in_u16(in) : VIRTIO_VSOCK_TYPE_STREAM);
	h.src_port = htole32(sel & 8 ? in_u32(in) : 50000u + in_u8(in) % 4);
	if (sel & 16) {
		h.dst_port = htole32(in_u32(in));
	} else {
		/* a port with a live connection, or the listening one */
		unsigned k = in_u8(in) % VSOCK_MAX_CONNS;

		h.dst_port = htole32(dev.conns[k].state != CONN_FREE ? dev.conns[k].local_port
								  : PORT_GUEST);
		if (dev.conns[k].state != CONN_FREE)
			h.src_port = htole32(dev.conns[k].peer_port);
	}
	h.op = htole16(in_u8(in) % 9);
	h.flags = htole32(in_u8(in) % 4);
	h.buf_alloc = htole32(sel & 32 ? in_u32(in) : 256 * 1024);
	h.fwd_cnt = htole32(sel & 64 ? in_u32(in) : 0);
	h.len = htole32(sel & 128 ? in_u32(in) : plen);
	memcpy(buf, &h, sizeof(h));
	for (unsigned i = 0; i < plen; i++)
		buf[VSOCK_HDR_LEN + i] = in_u8(in);
	total = VSOCK_HDR_LEN + plen;
	/* split points: the Linux layout is header | payload */
	for (unsigned i = 0, at = 0; i < n; i++) {
		unsigned part = i + 1 == n ? total - at
				: (i == 0 && layout & 4 ? VSOCK_HDR_LEN : in_u8(in) % (total - at + 1));

		if (part > total - at)
			part = total - at;
		gpa[i] = guest_alloc(part ? part : 1);
		len[i] = part;
		guest_write(gpa[i], buf + at, part);
		at += part;
	}
	if (layout & 8) /* a writable descriptor on the tx queue */
		wr[n - 1] = true;
	ring_add(VSOCK_TXQ, gpa, len, wr, n, layout & 16);
}

/* Receive buffers: header and payload apart (Linux 6.1) or together. */
static void act_rx(struct in *in)
{
	unsigned count = 1 + in_u8(in) % 8;

	for (unsigned k = 0; k < count; k++) {
		uint8_t layout = in_u8(in);
		uint32_t size = in_u16(in) % 0x3000;
		uint64_t gpa[2];
		uint32_t len[2];
		bool wr[2] = { !(layout & 4), true };
		unsigned n = layout & 1 ? 2 : 1;

		if (n == 2) {
			len[0] = layout & 8 ? VSOCK_HDR_LEN : in_u8(in) % 64;
			len[1] = size;
		} else {
			len[0] = size;
		}
		for (unsigned i = 0; i < n; i++)
			gpa[i] = guest_alloc(len[i] ? len[i] : 1);
		ring_add(VSOCK_RXQ, gpa, len, wr, n, layout & 2);
	}
}

static void act_event(struct in *in)
{
	uint64_t gpa;
	uint32_t len = in_u8(in) % 16;
	bool wr = true;

	gpa = guest_alloc(16);
	ring_add(VSOCK_EVQ, &gpa, &len, &wr, 1, false);
}

/* The guest scribbles over its own memory: rings, tables, buffers. */
static void act_poke(struct in *in)
{
	uint32_t off = in_u16(in) % (2 * REGION_SIZE);
	unsigned n = 1 + in_u8(in) % 16;

	poked = true;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b = in_u8(in);

		guest_write(GPA0 + off + i, &b, 1);
	}
}

static void host_keep(int fd)
{
	for (unsigned i = 0; i < HOST_FDS; i++) {
		if (host_fd[i] < 0) {
			host_fd[i] = fd;
			return;
		}
	}
	close(fd);
}

/* One pass of the device; the used entries it wrote must name a
 * descriptor of the table, with no more than a header and the largest
 * payload written. Not once the guest has poked its memory: a buffer it
 * points into its own used ring gets the device's writes there, after
 * the entries (a guest may hurt itself). */
static void process_checked(void)
{
	uint16_t before[VSOCK_QUEUES];

	for (unsigned q = 0; q < VSOCK_QUEUES; q++)
		before[q] = dev.vq[q].used_idx;
	vsock_dev_process(&dev);
	for (unsigned q = 0; q < VSOCK_QUEUES && !poked; q++) {
		for (uint16_t i = before[q]; i != dev.vq[q].used_idx; i++) {
			const struct vring_used_elem *e = &rings[q].used->ring[i % rings[q].num];

			FUZZ_CHECK(e->id < rings[q].num);
			FUZZ_CHECK(e->len <= VSOCK_HDR_LEN + VSOCK_MAX_PKT);
		}
	}
}

/* The daemon's loop, once, without sleeping. */
static void pump(void)
{
	struct epoll_event evs[32];
	int n = epoll_wait(epfd, evs, 32, 0);

	for (int i = 0; i < n; i++) {
		uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);

		if (tag == VSOCKD_TAG_UDS) {
			vsock_dev_accept(&dev, lfd_host);
		} else if (tag == VSOCKD_TAG_CONN) {
			vsock_dev_conn_event(&dev, (uint32_t)evs[i].data.u64, evs[i].events);
		} else {
			int fd;

			while ((fd = accept4(lfd_guest, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
				host_keep(fd);
		}
	}
	process_checked();
}

/* A host client: connects and writes its CONNECT line (or other bytes). */
static void act_host_connect(struct in *in)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	uint8_t how = in_u8(in);
	char line[64];
	int n;

	if (fd < 0)
		return;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return;
	}
	if (how & 1) {
		n = 1 + in_u8(in) % 40;
		for (int i = 0; i < n; i++)
			line[i] = (char)in_u8(in);
	} else {
		n = snprintf(line, sizeof(line), "CONNECT %u\n",
			     how & 2 ? in_u32(in) : 1024u + in_u8(in) % 4);
	}
	if (write(fd, line, (size_t)n) < 0) {
		close(fd);
		return;
	}
	host_keep(fd);
}

static void act_host_io(struct in *in)
{
	uint8_t how = in_u8(in);
	unsigned i = in_u8(in) % HOST_FDS;
	char buf[4096];

	if (host_fd[i] < 0)
		return;
	switch (how % 4) {
	case 0: {
		size_t n = (size_t)in_u16(in) % sizeof(buf);

		memset(buf, how, n);
		if (write(host_fd[i], buf, n) < 0 && errno != EAGAIN)
			break;
		break;
	}
	case 1:
		while (read(host_fd[i], buf, sizeof(buf)) > 0)
			;
		break;
	case 2:
		shutdown(host_fd[i], how & 4 ? SHUT_RD : SHUT_WR);
		break;
	default:
		close(host_fd[i]);
		host_fd[i] = -1;
		break;
	}
}

/* Brings the device back to the state vsock_dev_init leaves, without
 * allocating its 4096-entry table again for every input (that cost most
 * of the run time): the host ends close, the handshakes they leave see
 * the end of file, a reset frees the rest, and the free list is laid out
 * again in order (or, when a handshake outlives its client, the table is
 * made again), so that an input means the same thing whatever ran
 * before it. */
static void device_empty(void)
{
	int fd;

	for (unsigned i = 0; i < HOST_FDS; i++) {
		if (host_fd[i] >= 0)
			close(host_fd[i]);
		host_fd[i] = -1;
	}
	while ((fd = accept4(lfd_guest, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	while ((fd = accept4(lfd_host, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &dev.conns[i];

		if (c->state == CONN_HANDSHAKE)
			vsock_dev_conn_event(&dev, i, EPOLLIN | EPOLLRDHUP);
	}
	vsock_dev_reset(&dev);
	if (dev.nconns) {
		/* a handshake holding half a line outlives its client's close
		 * until its deadline: start afresh */
		vsock_dev_fini(&dev);
		FUZZ_CHECK(vsock_dev_init(&dev, CID, uds, epfd) == 0);
		return;
	}
	FUZZ_CHECK(dev.ctl_head == -1 && dev.rx_head == -1);
	for (int i = 0; i < VSOCK_MAX_CONNS; i++) {
		dev.conns[i].hash_next = i + 1 < VSOCK_MAX_CONNS ? i + 1 : -1;
		dev.conns[i].fd = -1;
	}
	dev.free_head = 0;
	dev.ctl_tail = dev.rx_tail = -1;
	dev.next_port = first_port;
	dev.reset_event_pending = false;
	dev.rst_head = dev.rst_len = 0;
	dev.next_deadline_ms = UINT64_MAX;
	memset(&dev.stats, 0, sizeof(dev.stats));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };

	fuzz_quiet();
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/sbx-fuzz-vsockd.XXXXXX");
	FUZZ_CHECK(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	region[0] = aligned_alloc(4096, REGION_SIZE);
	region[1] = aligned_alloc(4096, REGION_SIZE);
	FUZZ_CHECK(region[0] && region[1]);
	mem.nregions = 2;
	mem.region[0] = (struct vq_mem_region){
		.gpa = GPA0, .size = REGION_SIZE, .uva = 0x7f0000000000ull, .host = region[0],
	};
	mem.region[1] = (struct vq_mem_region){
		.gpa = GPA0 + REGION_SIZE, .size = REGION_SIZE, .uva = 0x7f1000000000ull,
		.host = region[1],
	};
	epfd = epoll_create1(EPOLL_CLOEXEC);
	FUZZ_CHECK(epfd >= 0);

	/* host clients connect to uds; guest connections to port 1024 land on
	 * uds_1024 (any other port is refused: nothing listens) */
	lfd_host = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", uds);
	FUZZ_CHECK(bind(lfd_host, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_CHECK(listen(lfd_host, 64) == 0);
	ev.data.u64 = (uint64_t)VSOCKD_TAG_UDS << 32;
	FUZZ_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, lfd_host, &ev) == 0);
	lfd_guest = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", uds, PORT_GUEST);
	FUZZ_CHECK(bind(lfd_guest, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_CHECK(listen(lfd_guest, 64) == 0);
	ev.data.u64 = (uint64_t)VSOCKD_TAG_KICK << 32;
	FUZZ_CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, lfd_guest, &ev) == 0);
	for (unsigned i = 0; i < HOST_FDS; i++)
		host_fd[i] = -1;
	FUZZ_CHECK(vsock_dev_init(&dev, CID, uds, epfd) == 0);
	first_port = dev.next_port;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	uint8_t cfg = in_u8(&in);

	/* fresh memory for each input; the device is the one the last input
	 * left, emptied (see device_empty) */
	memset(region[0], 0, REGION_SIZE);
	memset(region[1], 0, REGION_SIZE);
	heap = 0;
	poked = false;
	dev.now_ms = 0;
	for (unsigned q = 0; q < VSOCK_QUEUES; q++) {
		unsigned num = 1u << (in_u8(&in) % 7); /* 1 .. 64 */
		uint16_t base = cfg & 8 ? in_u16(&in) : 0;

		ring_init(q, num, base, cfg & 1, cfg & 2);
	}

	for (unsigned steps = 0; in.n && steps < 256; steps++) {
		switch (in_u8(&in) % 11) {
		case 0: act_tx(&in); break;
		case 1: act_rx(&in); break;
		case 2: act_event(&in); break;
		case 3: act_poke(&in); break;
		case 4: act_host_connect(&in); break;
		case 5: act_host_io(&in); break;
		case 6: pump(); break;
		case 7: vsock_dev_tick(&dev, dev.now_ms + (uint64_t)in_u16(&in) * 10); break;
		case 8: vsock_dev_reset(&dev); dev.reset_event_pending = true; break;
		case 9: process_checked(); break;
		default: pump(); pump(); break;
		}
	}
	pump();

	/* the connection table agrees with its count */
	{
		unsigned live = 0;

		for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
			live += dev.conns[i].state != CONN_FREE;
		FUZZ_CHECK(live == dev.nconns);
	}
	device_empty();
	return 0;
}
