/* libsbx's file operations, split by what they do (fs_meta.c single
 * requests, fs_write.c uploads, fs_read.c downloads, fs_tree.c trees),
 * share what this header declares (fs_xfer.c). Not installed. Protocol:
 * docs/protocol/files.md; the API: libsbx/sbx_fs.h. */
#ifndef SBX_LIBSBX_FS_XFER_H
#define SBX_LIBSBX_FS_XFER_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <sodium.h>

#include "lib/hasher.h"
#include "libsbx/conn.h"
#include "libsbx/sbx_fs.h"

/* Upload frames of 256 KiB, not the 1 MiB the protocol allows: measured
 * here, 1 GiB unverified to /dev/null takes 0.15 s with 256 KiB frames and
 * 0.62 s with 1 MiB ones (the frame no longer fits the CPU's L2 cache at
 * either end, and the agent's allocator maps and unmaps each 1 MiB
 * receive buffer). */
#define UP_CHUNK (256 * 1024)
#define TX_HIGH (2 * (PROTO_HDR_LEN + UP_CHUNK)) /* queue before waiting */
/* A deeper socket for uploads lets reading and hashing here overlap with
 * the agent's writing (0.31 s -> 0.15 s for the same 1 GiB). */
#define UP_SNDBUF (2 * 1024 * 1024)
#define TICK_MS 250

/* Progress, at most every TICK_MS (and always when final). */
struct xfer_meter {
	const struct sbx_fs_opts *o;
	uint64_t done, total, last_ns;
};

struct sbx_fs_writer {
	struct hasher h; /* first: the hash state wants 64-byte alignment */
	struct sbx_conn *c;
	const struct sbx_fs_opts *o;
	bool verify;
	struct xfer_meter m;
	char path[FS_PATH_MAX + 1];
};

/* Receives one body (DATA... END) into fd; hashed as it comes (on a
 * second thread for a big body, lib/hasher.h). No more
 * than the agent announced: a body that goes on past it is refused, so a
 * hostile agent cannot fill the disk behind a small size. */
struct xfer_body {
	struct hasher h; /* first: the hash state wants 64-byte alignment */
	bool verify;
	uint64_t bytes;
	uint64_t limit;
	uint8_t digest[FS_DIGEST_LEN];
};

int xfer_fail_path(struct sbx_error *err, int code, const char *path);
bool xfer_cancelled(const struct sbx_fs_opts *o);
void xfer_meter_add(struct xfer_meter *m, uint64_t n, bool final);
void xfer_req_init(struct fs_req *r, uint16_t type, const char *path,
		   const struct sbx_fs_opts *o);
void xfer_req_flags(struct fs_req *r, uint32_t flags);
int xfer_start(const char *addr, const struct fs_req *r, struct sbx_conn **out,
	       struct sbx_error *err);
void xfer_deep_sndbuf(int fd, int bytes);
int xfer_recv_frame(struct sbx_conn *c, struct frame *f, const struct sbx_fs_opts *o,
		    struct sbx_error *err);
int xfer_rescue_error(struct sbx_conn *c, int r, struct sbx_error *err);
int xfer_push(struct sbx_conn *c, size_t high, const struct sbx_fs_opts *o,
	      struct sbx_error *err);
void *xfer_zalloc64(size_t size);
int xfer_writer_from_fd(struct sbx_fs_writer *wr, int fd, struct sbx_error *err);
uint64_t xfer_body_limit(uint64_t size, uint64_t offset, int64_t length);
/* verify: with the digest connection c agreed on (HELLO_OK came). */
int xfer_body_start(struct xfer_body *b, const struct sbx_conn *c, bool verify, uint64_t limit);
int xfer_body_frame(struct xfer_body *b, const struct frame *f, int fd, struct xfer_meter *m,
		    const char *what, struct sbx_error *err);
/* Stops the body's hasher thread, if any (after an error; harmless after
 * the END). */
void xfer_body_close(struct xfer_body *b);
int xfer_open_parent(const char *path, bool mkdirs, char name[NAME_MAX + 1],
		     struct sbx_error *err);
mode_t xfer_download_mask(uint32_t flags);
struct timespec xfer_ts_of(const struct fs_time *t);

#endif
