/* Small helpers every sbx program uses: fd I/O that retries on EINTR,
 * clocks, and bounded string copies. All return 0 or -errno. */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);
/* Writes all of buf to a blocking fd. */
int fd_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes from a blocking fd; -EPIPE on early EOF. */
int fd_read_full(int fd, void *buf, size_t len);
/* Raises RLIMIT_NOFILE to want (soft and hard); without the privilege to
 * raise the hard limit, the soft one up to it. Returns the soft limit now
 * in force. */
unsigned long fd_limit_raise(unsigned long want);
/* Most descriptors fd_send passes in one message. */
#define FD_SEND_MAX 4
/* One sendmsg of len bytes of buf (len > 0) on the socket sock, with nfds
 * descriptors (at most FD_SEND_MAX) passed as SCM_RIGHTS; flags as
 * sendmsg's. Returns the bytes sent (maybe fewer than len; the descriptors
 * went with the first) or -errno; -EINTR is the caller's to retry. */
ssize_t fd_send(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags);
/* Closes *fd if it is >= 0 and sets it to -1. */
void fd_close(int *fd);
/* In a forked child about to exec a program of its own (QEMU, the
 * gateway, a tool): no signal blocked, and the job-control signals and
 * SIGPIPE back to their default, whatever the parent blocked or ignored
 * for itself or inherited ignored (a background job of a script starts
 * with SIGINT and SIGQUIT ignored). */
void signals_reset_for_exec(void);

/* Brings the network interface name up, adding flags (IFF_UP, and
 * IFF_RUNNING if wanted) unless they are all set already, through sock
 * (any socket, e.g. AF_INET datagram): 0 or -errno. */
int iface_up(int sock, const char *name, short flags);

/* CLOCK_MONOTONIC and CLOCK_BOOTTIME in nanoseconds. */
uint64_t time_mono_ns(void);
uint64_t time_boot_ns(void);

/* Copies src into dst (size n) always NUL-terminating; -ENAMETOOLONG if it
 * did not fit. */
int str_copy(char *dst, size_t n, const char *src);
/* Parses a whole decimal string into an unsigned value no larger than max. */
int str_to_u64(const char *s, uint64_t max, uint64_t *out);
bool str_starts_with(const char *s, const char *prefix);
/* Parses a duration: a whole number with an optional unit s, m or h
 * ("90", "90s", "5m", "2h"), in seconds, at most max. */
int str_to_duration(const char *s, uint64_t max, uint64_t *seconds);

/* Little-endian loads and stores for wire formats. */
static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(uint8_t *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}
static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get_le32(const uint8_t *p)
{
	return get_le16(p) | ((uint32_t)get_le16(p + 2) << 16);
}
static inline uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

#endif
