/* A small client for the QEMU guest agent (qemu-ga) over its Unix socket,
 * for the benchmarks that compare sbx with it: QMP-style JSON, one
 * request and one reply line at a time, as a host program that drives
 * qemu-ga does. Replies are read with strstr, not a JSON parser: the
 * benchmark sends a handful of known commands and checks what it needs. */
#ifndef SBX_BENCH_QGA_H
#define SBX_BENCH_QGA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct qga {
	int fd;
	char *buf;          /* received bytes; a reply ends with '\n' */
	size_t len, cap;
	size_t line_len;    /* the reply handed out, with its '\n' */
	char *req;          /* the request being built */
	size_t req_cap;
	unsigned poll_us;   /* between guest-exec-status polls */
};

/* Connects to the qemu-ga socket and synchronises (guest-sync with a
 * random id, discarding anything older). Dies on failure. */
void qga_open(struct qga *q, const char *path);
void qga_close(struct qga *q);

/* Sends one request (a JSON object, no newline) and returns the reply
 * line, NUL-terminated, valid until the next call. Dies on an error reply. */
const char *qga_call(struct qga *q, const char *json);

/* guest-exec of argv (stdio not captured) -> the pid. */
pid_t qga_exec_start(struct qga *q, const char *const *argv);
/* guest-exec then guest-exec-status every q->poll_us until it exited;
 * returns the exit code. */
int qga_exec_wait(struct qga *q, const char *const *argv);

/* File transfers with guest-file-open/write/read/close, chunk bytes per
 * call (base64 in JSON). Return bytes moved. */
uint64_t qga_upload(struct qga *q, const char *src, const char *dst, size_t chunk);
uint64_t qga_download(struct qga *q, const char *src, const char *dst, size_t chunk);

#endif
