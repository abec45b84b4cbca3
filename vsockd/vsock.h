/* The virtio-vsock device (virtio 1.2 §5.10) behind sbx-vsockd: stream
 * connections between the guest and host Unix sockets, presented the way
 * Firecracker's hybrid vsock does it. Driven through its virtqueues and host
 * fds only, so tests can run it without QEMU. */
#ifndef SBX_VSOCKD_VSOCK_H
#define SBX_VSOCKD_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_vsock.h>

#include "vsockd/virtq.h"

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define VSOCK_QUEUES 3		/* rx, tx, event (§5.10.2) */
#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2
#ifndef VSOCK_MAX_CONNS		/* the fuzz target makes it small (Makefile) */
#define VSOCK_MAX_CONNS 4096	/* host<->guest connections at once */
#endif
#define VSOCK_CONN_BUF (256u * 1024)	/* our buf_alloc per connection */
#define VSOCK_MAX_PKT (64u * 1024)	/* largest payload we accept or send */
#define VSOCK_CREDIT_LOW (VSOCK_CONN_BUF / 2) /* credit the guest sees before an update */
#define VSOCK_RST_QUEUE 256	/* RSTs for unknown connections not yet sent */
#define VSOCK_TIMEOUT_MS 10000	/* for CONNECT lines and guest RESPONSEs */
#define VSOCK_LINE_MAX 32	/* "CONNECT 4294967295\n" fits */
#define VSOCK_RX_BATCH 16	/* rx buffers filled by one readv */
#define VSOCK_TX_BATCH 256	/* tx packets handled before looking elsewhere */

/* epoll tags: the event's data.u64 is (tag << 32) | index. */
enum vsockd_tag {
	VSOCKD_TAG_VHOST_LISTEN = 1,
	VSOCKD_TAG_VHOST,
	VSOCKD_TAG_UDS,
	VSOCKD_TAG_KICK,
	VSOCKD_TAG_CONN,
	VSOCKD_TAG_SIGNAL,
};

enum vsock_conn_state {
	CONN_FREE,
	CONN_HANDSHAKE,		/* host client accepted, "CONNECT <port>" not yet read */
	CONN_CONNECTING,	/* REQUEST sent to the guest, no RESPONSE yet */
	CONN_ESTABLISHED,
	CONN_CLOSING,		/* both directions done: an RST is the last packet */
};

/* Control packets a connection owes the guest (flags in conn->pending). */
enum {
	PEND_REQUEST = 1 << 0,
	PEND_RESPONSE = 1 << 1,
	PEND_CREDIT_UPDATE = 1 << 2,
	PEND_SHUTDOWN = 1 << 3,
	PEND_RST = 1 << 4,
};

struct vsock_conn {
	enum vsock_conn_state state;
	int fd;				/* the host-side Unix stream socket */
	uint32_t local_port;		/* host side of the connection */
	uint32_t peer_port;		/* guest side */
	bool host_initiated;
	uint64_t deadline_ms;		/* HANDSHAKE / CONNECTING give-up time */

	/* host -> guest: the guest's credit (§5.10.6.3) */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;		/* payload bytes sent to the guest */

	/* guest -> host: our credit and the bytes waiting for the host fd */
	uint32_t rx_cnt;		/* payload bytes received from the guest */
	uint32_t fwd_cnt;		/* of those, handed to the host socket */
	uint32_t fwd_cnt_sent;		/* fwd_cnt the guest last heard of */
	char *buf;			/* ring of VSOCK_CONN_BUF, allocated on demand */
	uint32_t buf_head, buf_len;

	bool host_readable, host_writable;
	bool host_eof;			/* no more bytes will come from the host */
	bool host_wr_done;		/* we shut down or lost the host's write side */
	uint32_t peer_shutdown;		/* VIRTIO_VSOCK_SHUTDOWN_* the guest sent */
	uint32_t our_shutdown;		/* ... and the ones we sent it */
	unsigned pending;		/* PEND_* */

	char line[VSOCK_LINE_MAX];	/* the CONNECT line being read */
	unsigned line_len;

	/* list links, as indexes (-1: none) */
	bool hashed;
	int hash_next;
	int ctl_next, ctl_prev;		/* conns with pending control packets */
	int rx_next, rx_prev;		/* conns that may have host data to send */
	bool in_ctl, in_rx;
};

struct vsock_stats {
	uint64_t rx_bytes, tx_bytes;	/* payload to / from the guest */
	uint64_t conns_opened, conns_refused;
	uint64_t bad_packets;
};

struct vsock_dev {
	uint64_t guest_cid;
	const char *uds_path;		/* host clients connect here; guest -> PATH_<port> */
	int epfd;
	struct virtq vq[VSOCK_QUEUES];
	bool reset_event_pending;	/* owe the driver a TRANSPORT_RESET event */

	struct vsock_conn *conns;	/* VSOCK_MAX_CONNS, allocated once */
	int *hash;			/* VSOCK_HASH buckets of conn indexes */
	int free_head;			/* free conns chained through hash_next */
	unsigned nconns;
	int ctl_head, ctl_tail, rx_head, rx_tail;
	uint32_t next_port;

	struct vq_chain rx_chain[VSOCK_RX_BATCH];	/* scratch for one readv */
	struct iovec rx_iov[VSOCK_RX_BATCH * VQ_IOV_MAX];

	struct virtio_vsock_hdr rst_queue[VSOCK_RST_QUEUE];
	unsigned rst_head, rst_len;

	uint64_t now_ms, next_deadline_ms;
	struct vsock_stats stats;
};

/* Allocates the tables. epfd receives host fds (tag VSOCKD_TAG_CONN). */
int vsock_dev_init(struct vsock_dev *dev, uint64_t guest_cid, const char *uds_path, int epfd);
void vsock_dev_fini(struct vsock_dev *dev);

/* Accepts host clients from the --uds listener. Returns 0 or -errno. */
int vsock_dev_accept(struct vsock_dev *dev, int listen_fd);
/* epoll told us something about connection `idx`'s host fd. */
void vsock_dev_conn_event(struct vsock_dev *dev, unsigned idx, uint32_t events);
/* Moves packets: guest tx, host writes, guest rx, events; signals the guest.
 * Returns true when work is left (call again before sleeping). */
bool vsock_dev_process(struct vsock_dev *dev);
/* The driver stopped the rings (reset, reload, shutdown): every connection
 * is gone for the guest, so close them all. */
void vsock_dev_reset(struct vsock_dev *dev);
/* Expires handshakes and connection attempts; returns the ms until the
 * next deadline, or -1. */
int vsock_dev_tick(struct vsock_dev *dev, uint64_t now_ms);

/* Credit the guest grants us for host -> guest data (§5.10.6.3). */
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* Finds a connection by (host port, guest port); NULL if none. */
struct vsock_conn *vsock_dev_find(struct vsock_dev *dev, uint32_t local_port, uint32_t peer_port);

uint64_t vsock_now_ms(void);

#endif
