/* The intercepting child of gateway/tls.h. One process per connection to
 * a secret's host: the TLS and HTTP parsing of what the guest sends run
 * apart from the gateway's loop (a crash or a stall there ends one
 * connection, never the gateway), and plain blocking-with-poll code
 * suffices. Order: the real server first (so that an untrusted server is
 * told to the guest as an HTTP 502, never by silence), then the guest's
 * handshake, then requests rewritten one way and responses relayed back
 * as they come. */
#include "gateway/tls.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway/subst.h"
#include "lib/log.h"
#include "lib/util.h"

#define HANDSHAKE_MS 10000
#define WRITE_STALL_MS 30000
#define IO_CHUNK 16384

static const struct secret_set *secrets;
static SSL_CTX *to_guest, *to_server;
static EVP_PKEY *leaf_key;
static pid_t children[TLS_CHILDREN_MAX];
static unsigned nchildren;

/* ---- the gateway's side ---- */

/* The guest may offer h2: only http/1.1 is chosen, so clients fall back. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	for (unsigned i = 0; i + 1 <= inlen && i + 1 + in[i] <= inlen; i += 1u + in[i])
		if (in[i] == 8 && !memcmp(in + i + 1, "http/1.1", 8)) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

int tls_init(const struct secret_set *set)
{
	static const unsigned char alpn[] = "\x08http/1.1";
	const char *extra = getenv("SBX_EGRESS_CA_FILE");
	char err[512];
	int r;

	secrets = set;
	if ((r = ca_load(set, err, sizeof(err))) < 0) {
		log_error(0, "%s", err);
		return r;
	}
	leaf_key = EVP_EC_gen("P-256");
	to_guest = SSL_CTX_new(TLS_server_method());
	to_server = SSL_CTX_new(TLS_client_method());
	if (!leaf_key || !to_guest || !to_server ||
	    !SSL_CTX_set_min_proto_version(to_guest, TLS1_2_VERSION) ||
	    !SSL_CTX_set_min_proto_version(to_server, TLS1_2_VERSION) ||
	    SSL_CTX_set_alpn_protos(to_server, alpn, sizeof(alpn) - 1) != 0 ||
	    !SSL_CTX_set_default_verify_paths(to_server)) {
		log_error(0, "cannot set up TLS: %s", ERR_error_string(ERR_get_error(), NULL));
		return -EIO;
	}
	if (extra && !SSL_CTX_load_verify_locations(to_server, extra, NULL)) {
		log_error(0, "SBX_EGRESS_CA_FILE=%s: cannot load it: %s", extra,
			  ERR_error_string(ERR_get_error(), NULL));
		return -EINVAL;
	}
	SSL_CTX_set_verify(to_server, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_select_cb(to_guest, alpn_select, NULL);
	SSL_CTX_set_mode(to_guest, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_mode(to_server, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	log_info(0, "gateway: %zu secrets, TLS intercepted for their hosts%s%s", set->n,
		 extra ? "; upstream also trusts " : "", extra ? extra : "");
	return 0;
}

void tls_reaped(pid_t pid)
{
	for (unsigned i = 0; i < nchildren; i++)
		if (children[i] == pid) {
			children[i] = children[--nchildren];
			return;
		}
}

/* ---- the child ---- */

static const struct tls_conn *conn;
static uint64_t up_bytes, down_bytes;

static void audit(const char *verdict, const char *secret, bool stats, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void audit(const char *verdict, const char *secret, bool stats, const char *fmt, ...)
{
	char line[2048], why[900], ts[40];
	struct timespec now;
	struct tm tm;
	size_t at;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	for (char *p = why; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	at = (size_t)snprintf(line, sizeof(line), "time=%s.%03ldZ conn=%llu verdict=%s dest=\"%s\" "
			      "addr=%s rule=\"-\"", ts, now.tv_nsec / 1000000,
			      (unsigned long long)conn->id, verdict, conn->dest_text, conn->addr);
	if (secret && at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " secret=%s", secret);
	if (stats && at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " up=%llu down=%llu",
				       (unsigned long long)up_bytes, (unsigned long long)down_bytes);
	if (at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " ms=%llu reason=\"%s\"\n",
				       (unsigned long long)((time_mono_ns() - conn->t0) /
							    NSEC_PER_MSEC), why);
	if (at >= sizeof(line)) {
		at = sizeof(line);
		line[at - 1] = '\n';
	}
	(void)!fd_write_all(conn->audit_fd, line, at);
}

static void on_standin(void *arg, const struct secret *s, const char *where, bool done)
{
	if (!s)
		audit("secret", NULL, false, "%s", where);
	else if (done)
		audit("secret", s->name, false, "%s substituted in %s", s->name, where);
	else
		audit("secret", s->name, false, "%s left as is in %s: %s is not one of its hosts",
		      s->name, where, conn->host);
}

static const char *ssl_why(void)
{
	static char e[256];
	unsigned long code = ERR_get_error();

	if (!code)
		return "the connection ended";
	ERR_error_string_n(code, e, sizeof(e));
	ERR_clear_error();
	return e;
}

/* Waits for fd as SSL asked (err is SSL_get_error's); 0, or -errno. */
static int wait_for(int fd, int err, int ms)
{
	struct pollfd p = { .fd = fd, .events = err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN };
	int r = poll(&p, 1, ms);

	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

static int handshake(SSL *ssl, int fd, bool server)
{
	uint64_t end = time_mono_ns() + (uint64_t)HANDSHAKE_MS * NSEC_PER_MSEC;

	for (;;) {
		int r = server ? SSL_accept(ssl) : SSL_connect(ssl), e, ms;
		uint64_t now = time_mono_ns();

		if (r == 1)
			return 0;
		e = SSL_get_error(ssl, r);
		if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || now >= end)
			return now >= end ? -ETIMEDOUT : -EPROTO;
		ms = (int)((end - now) / NSEC_PER_MSEC) + 1;
		if ((r = wait_for(fd, e, ms)) < 0)
			return r;
	}
}

static int write_all(SSL *ssl, int fd, const void *p, size_t n)
{
	while (n) {
		int w = SSL_write(ssl, p, (int)MIN(n, (size_t)1 << 20)), e, r;

		if (w > 0) {
			p = (const char *)p + w;
			n -= (size_t)w;
			continue;
		}
		e = SSL_get_error(ssl, w);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return -EPIPE;
		if ((r = wait_for(fd, e, WRITE_STALL_MS)) < 0)
			return r;
	}
	return 0;
}

/* Closes everything inherited but the connection's fds and 0-2: a copy of
 * another connection's socket held here would keep it from closing. */
static void close_others(int a, int b, int c)
{
	int keep[3] = { a, b, c }, lo = 3;

	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];

				keep[i] = keep[j];
				keep[j] = t;
			}
	for (int i = 0; i < 3; i++) {
		if (keep[i] > lo)
			syscall(SYS_close_range, lo, keep[i] - 1, 0);
		lo = MAX(lo, keep[i] + 1);
	}
	syscall(SYS_close_range, lo, ~0U, 0);
}

/* Answers the guest with an HTTP error and closes gently: what the guest
 * still sends is read and dropped for a moment, since closing a socket
 * with unread bytes resets it, and the reset can overtake the answer. */
static void send_error(SSL *g, int fd, int status, const char *why)
{
	struct buf out;
	char sink[4096];
	uint64_t end = time_mono_ns() + 2 * NSEC_PER_SEC;

	buf_init(&out, 1 << 16);
	subst_error_response(status, why, &out);
	(void)!write_all(g, fd, buf_head(&out), buf_len(&out));
	SSL_shutdown(g);
	buf_free(&out);
	shutdown(fd, SHUT_WR);
	while (time_mono_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) < 0 || ((p.revents & POLLIN) && read(fd, sink, sizeof(sink)) <= 0))
			break;
	}
}

/* The guest's first bytes (its request), waited for up to 5 s. */
static void await_request(SSL *g, int fd)
{
	char sink[IO_CHUNK];
	uint64_t end = time_mono_ns() + 5 * NSEC_PER_SEC;

	while (time_mono_ns() < end) {
		int n = SSL_read(g, sink, sizeof(sink)), e = SSL_get_error(g, n);

		if (n > 0 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
		    wait_for(fd, e, 100) == -EINTR)
			return;
	}
}

enum { GUEST, SERVER };

static _Noreturn void child_main(int gfd, int ufd)
{
	SSL *ssl[2] = { SSL_new(to_guest), SSL_new(to_server) };
	int fds[2] = { gfd, ufd };
	X509 *leaf = ca_leaf(conn->host, leaf_key);
	static struct subst sub;
	static char in[IO_CHUNK];
	char upstream_err[512] = "", err[300], when[64];
	struct buf out;
	int r;

	/* Past the sandbox's lifetime (sbx extend): the guest refuses the
	 * leaf; say why here, where the guest's client cannot. */
	if (ca_expired(when, sizeof(when)))
		audit("deny", NULL, false, "the sandbox's CA expired at %s, the end of the lifetime "
		      "it was created with (sbx extend does not renew it): the guest refuses its "
		      "certificates", when);

	if (!ssl[GUEST] || !ssl[SERVER] || !leaf) {
		audit("fail", NULL, false, "cannot set up TLS: %s", ssl_why());
		_exit(1);
	}
	/* The real server, verified against the host's trust store. */
	SSL_set_fd(ssl[SERVER], ufd);
	SSL_set_tlsext_host_name(ssl[SERVER], conn->host);
	SSL_set1_host(ssl[SERVER], conn->host);
	if ((r = handshake(ssl[SERVER], ufd, false)) < 0) {
		long v = SSL_get_verify_result(ssl[SERVER]);

		if (v != X509_V_OK)
			snprintf(upstream_err, sizeof(upstream_err), "the certificate of %s is not "
				 "trusted: %s", conn->host, X509_verify_cert_error_string(v));
		else
			snprintf(upstream_err, sizeof(upstream_err), "TLS with %s failed: %s",
				 conn->host, r == -ETIMEDOUT ? "timed out" : ssl_why());
		audit("deny", NULL, false, "%s", upstream_err);
	}
	/* The guest, with a certificate of the sandbox's CA for this host. */
	SSL_use_certificate(ssl[GUEST], leaf);
	SSL_use_PrivateKey(ssl[GUEST], leaf_key);
	SSL_set_fd(ssl[GUEST], gfd);
	if ((r = handshake(ssl[GUEST], gfd, true)) < 0) {
		if (!upstream_err[0])
			audit("close", NULL, true, "TLS with the guest failed: %s",
			      r == -ETIMEDOUT ? "timed out" : ssl_why());
		_exit(1);
	}
	if (upstream_err[0]) {
		await_request(ssl[GUEST], gfd);
		send_error(ssl[GUEST], gfd, 502, upstream_err);
		_exit(1);
	}
	audit("allow", NULL, false, "TLS intercepted for secrets (%s)",
	      SSL_get_version(ssl[SERVER]));
	subst_init(&sub, secrets, conn->host, on_standin, NULL);
	buf_init(&out, 1 << 20);
	for (;;) {
		struct pollfd p[2];
		int done = -1;

		for (int side = 0; side < 2 && done < 0; side++) {
			p[side] = (struct pollfd){ .fd = fds[side], .events = POLLIN };
			for (;;) {
				int n = SSL_read(ssl[side], in, sizeof(in)), e;

				if (n <= 0) {
					e = SSL_get_error(ssl[side], n);
					if (e == SSL_ERROR_WANT_WRITE)
						p[side].events = POLLOUT;
					else if (e != SSL_ERROR_WANT_READ)
						done = side;
					break;
				}
				if (side == SERVER) {
					down_bytes += (size_t)n;
					if (write_all(ssl[GUEST], gfd, in, (size_t)n) < 0) {
						done = GUEST;
						break;
					}
					continue;
				}
				up_bytes += (size_t)n;
				r = subst_feed(&sub, in, (size_t)n, &out, err, sizeof(err));
				if (r < 0) {
					audit("deny", NULL, true, "%s", err);
					send_error(ssl[GUEST], gfd, r == -E2BIG ? 431 : 400, err);
					_exit(1);
				}
				if (write_all(ssl[SERVER], ufd, buf_head(&out), buf_len(&out)) < 0) {
					done = SERVER;
					break;
				}
				buf_consume(&out, buf_len(&out));
			}
		}
		if (done >= 0) {
			SSL_shutdown(ssl[!done]);
			audit("close", NULL, true, "ended by the %s; %llu requests, %llu substitutions",
			      done == GUEST ? "guest" : "server", (unsigned long long)sub.requests,
			      (unsigned long long)sub.substituted);
			_exit(0);
		}
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			_exit(1);
	}
}

pid_t tls_intercept(int gfd, int ufd, const struct tls_conn *c)
{
	pid_t pid;

	if (nchildren == TLS_CHILDREN_MAX)
		return -EAGAIN;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		close_others(gfd, ufd, c->audit_fd);
		conn = c;
		child_main(gfd, ufd);
	}
	children[nchildren++] = pid;
	return pid;
}
