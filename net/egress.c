/* The guest half of egress (net/egress.h): the set-up at the agent's start
 * and the transparent proxy on 127.0.0.1:EGRESS_PROXY_PORT. Each
 * redirected connection's original destination (SO_ORIGINAL_DST) becomes
 * a name again when it is a synthetic address, is sent to the gateway as
 * "CONNECT host port", and on "OK" the two sockets are spliced together
 * (lib/relay.c); on anything else the guest's connection is reset. */
#include "net/egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/kmod.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/relay.h"
#include "lib/util.h"
#include "net/dns.h"
#include "vsock/addr.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#define REPLY_MAX 256
#define GATEWAY_WAIT_NS (30 * NSEC_PER_SEC) /* > the gateway's own 10 s + 10 s */
#define FIRST_BYTES_NS (2 * NSEC_PER_SEC)    /* refused: is it HTTP? */

enum estate { E_CONNECT, E_REPLY, E_REFUSED };

struct eproxy {
	struct watch gw;       /* the gateway connection */
	int tcp;               /* the workload's connection */
	struct watch tw;       /* E_REFUSED: on tcp, waiting for its first bytes */
	struct timer timer;
	enum estate state;
	char req[DNS_NAME_MAX + 32];
	int reqlen;
	char why[REPLY_MAX + 1]; /* E_REFUSED: the gateway's ERR line */
};

static struct watch w_proxy;
static struct addr gateway;
static unsigned nproxied;

/* The workload sees ECONNRESET: the connection it thought it had is
 * gone at once, never left hanging. */
static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void proxy_free(struct eproxy *p, bool reset)
{
	timer_cancel(&p->timer);
	loop_del(&p->tw);
	if (p->gw.fd >= 0) {
		loop_del(&p->gw);
		close(p->gw.fd);
	}
	if (p->tcp >= 0) {
		if (reset)
			reset_close(p->tcp);
		else
			close(p->tcp);
	}
	nproxied--;
	loop_free_later(p);
}

/* Does the workload speak HTTP/1 on this connection? Its request line has
 * usually arrived by the time the gateway refuses: the first word is
 * enough to tell (a method and a space), nothing is parsed. */
static bool http_request_waiting(int fd)
{
	static const char *const methods[] = { "GET ", "HEAD ", "POST ", "PUT ", "DELETE ",
					       "OPTIONS ", "PATCH ", "TRACE " };
	char head[8];
	ssize_t n = recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);

	for (size_t i = 0; n > 0 && i < ARRAY_SIZE(methods); i++) {
		size_t len = strlen(methods[i]);

		if ((size_t)n >= len && memcmp(head, methods[i], len) == 0)
			return true;
	}
	return false;
}

/* The gateway said no ("ERR CODE why"), and the workload has sent its
 * first bytes (or closed, or kept quiet for FIRST_BYTES_NS): an HTTP
 * client gets 403 (the allow list refused) or 502 (allowed, but the
 * connection failed) with the gateway's reason as the body, then an
 * orderly close; any other client a reset. */
static void refuse_now(struct eproxy *p)
{
	const char *why = p->why, *sp;
	bool denied = strncmp(why, "ERR EACCES ", 11) == 0;
	char body[REPLY_MAX + 64], resp[sizeof(body) + 256], sink[4096];
	int blen, rlen;

	if (!http_request_waiting(p->tcp)) {
		proxy_free(p, true);
		return;
	}
	if (strncmp(why, "ERR ", 4) == 0 && (sp = strchr(why + 4, ' ')))
		why = sp + 1;
	blen = snprintf(body, sizeof(body), "sbx egress: %s%s\n", why,
			denied ? " (sbx create --allow-net)" : "");
	rlen = snprintf(resp, sizeof(resp), "HTTP/1.1 %s\r\nContent-Type: text/plain\r\n"
			"Content-Length: %d\r\nConnection: close\r\n\r\n%s",
			denied ? "403 Forbidden" : "502 Bad Gateway", blen, body);
	/* Read what the request sent so far: closing with unread bytes
	 * would reset the connection and could take the answer with it. */
	while (recv(p->tcp, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	(void)!send(p->tcp, resp, (size_t)MIN(rlen, (int)sizeof(resp) - 1),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(p->tcp, SHUT_WR);
	proxy_free(p, false);
}

static void on_first_bytes(struct watch *w, uint32_t events)
{
	refuse_now(container_of(w, struct eproxy, tw));
}

static void on_first_bytes_timeout(struct timer *t)
{
	refuse_now(container_of(t, struct eproxy, timer));
}

static void refuse(struct eproxy *p, const char *line)
{
	char c;

	str_copy(p->why, sizeof(p->why), line);
	timer_cancel(&p->timer);
	loop_del(&p->gw);
	fd_close(&p->gw.fd);
	p->state = E_REFUSED;
	/* The gateway can answer before the workload's request is here. */
	if (recv(p->tcp, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN &&
	    loop_add(&p->tw, p->tcp, EPOLLIN | EPOLLRDHUP, on_first_bytes) == 0) {
		timer_arm(&p->timer, FIRST_BYTES_NS, on_first_bytes_timeout);
		return;
	}
	refuse_now(p);
}

static void relay_done(void *arg, const struct relay_stats *st)
{
	nproxied--;
}

static void on_reply(struct eproxy *p)
{
	char line[REPLY_MAX + 1], *nl;
	ssize_t n = recv(p->gw.fd, line, REPLY_MAX, MSG_PEEK | MSG_DONTWAIT);
	int tcp, gfd, r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_debug(n < 0 ? errno : 0, "egress: the gateway closed before its reply to %.*s",
			  p->reqlen - 1, p->req);
		proxy_free(p, true);
		return;
	}
	line[n] = '\0';
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if (n == REPLY_MAX)
			proxy_free(p, true);
		return;
	}
	/* Take the line only: the destination's first bytes may follow. */
	if (recv(p->gw.fd, line, (size_t)(nl - line) + 1, MSG_DONTWAIT) != nl - line + 1) {
		proxy_free(p, true);
		return;
	}
	*nl = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		log_debug(0, "egress: %.*s: %s", p->reqlen - 1, p->req, line);
		refuse(p, line);
		return;
	}
	timer_cancel(&p->timer);
	loop_del(&p->gw);
	tcp = p->tcp;
	gfd = p->gw.fd;
	p->tcp = p->gw.fd = -1;
	loop_free_later(p);
	r = relay_start(&(struct relay_end){ tcp, tcp }, &(struct relay_end){ gfd, gfd },
			relay_done, NULL);
	if (r < 0) {
		log_warn(r, "egress: cannot relay a connection");
		nproxied--;
	}
}

static void on_gateway(struct watch *w, uint32_t events)
{
	struct eproxy *p = container_of(w, struct eproxy, gw);
	socklen_t len = sizeof(int);
	int err = 0;

	if (p->state == E_REPLY) {
		on_reply(p);
		return;
	}
	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		log_debug(err, "egress: cannot reach the gateway for %.*s", p->reqlen - 1, p->req);
		proxy_free(p, true);
		return;
	}
	/* A few hundred bytes into a new connection: they go at once. */
	if (send(w->fd, p->req, (size_t)p->reqlen, MSG_NOSIGNAL | MSG_DONTWAIT) != p->reqlen) {
		proxy_free(p, true);
		return;
	}
	p->state = E_REPLY;
	loop_set(w, EPOLLIN | EPOLLRDHUP);
}

static void on_timeout(struct timer *t)
{
	struct eproxy *p = container_of(t, struct eproxy, timer);

	log_debug(0, "egress: no answer from the gateway for %.*s", p->reqlen - 1, p->req);
	proxy_free(p, true);
}

/* Opens the connection to the gateway without blocking. */
static int gateway_open(void)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, family = gateway.kind == ADDR_VSOCK ? AF_VSOCK : AF_UNIX;

	if (family == AF_VSOCK) {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&ss;

		vm->svm_family = AF_VSOCK;
		vm->svm_cid = gateway.cid;
		vm->svm_port = gateway.port;
		len = sizeof(*vm);
	} else {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;

		un->sun_family = AF_UNIX;
		str_copy(un->sun_path, sizeof(un->sun_path), gateway.path);
		len = sizeof(*un);
	}
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS &&
	    errno != EAGAIN) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* ---- reports for the host's audit log ----
 * What the guest refuses itself never reaches the gateway as a CONNECT:
 * a name the DNS stub answers with NXDOMAIN, a connection the refuse
 * chain rejects before its handshake. Each is reported on a connection
 * of its own ("NXDOMAIN name", "REFUSED address port"), fire and forget,
 * so that the audit log on the host still has its line. Bounded: the same
 * report is sent once per REPORT_QUIET_NS, at most REPORTS_MAX at once. */
#define REPORTS_MAX 16
#define REPORT_RECENT 32
#define REPORT_QUIET_NS (10 * NSEC_PER_SEC)
#define REPORT_WAIT_NS (5 * NSEC_PER_SEC)
#define REPORT_LINE_MAX (DNS_NAME_MAX + 16)

struct report {
	struct watch w;
	struct timer timer;
	char line[REPORT_LINE_MAX];
	size_t len;
};

static unsigned nreports;
static struct {
	char line[REPORT_LINE_MAX];
	uint64_t at;
} recent[REPORT_RECENT];
static unsigned recent_next;

static void report_free(struct report *r)
{
	timer_cancel(&r->timer);
	loop_del(&r->w);
	close(r->w.fd);
	nreports--;
	loop_free_later(r);
}

static void on_report_ready(struct watch *w, uint32_t events)
{
	struct report *r = container_of(w, struct report, w);

	(void)!send(w->fd, r->line, r->len, MSG_NOSIGNAL | MSG_DONTWAIT);
	report_free(r);
}

static void on_report_timeout(struct timer *t)
{
	report_free(container_of(t, struct report, timer));
}

/* Was line reported within REPORT_QUIET_NS? If not, it is now. */
static bool reported_lately(const char *line)
{
	uint64_t now = time_mono_ns();

	for (size_t i = 0; i < REPORT_RECENT; i++)
		if (recent[i].at && now - recent[i].at < REPORT_QUIET_NS &&
		    strcmp(recent[i].line, line) == 0)
			return true;
	str_copy(recent[recent_next].line, sizeof(recent[0].line), line);
	recent[recent_next].at = now;
	recent_next = (recent_next + 1) % REPORT_RECENT;
	return false;
}

static void report(const char *line)
{
	struct report *r;
	int g;

	if (nreports >= REPORTS_MAX || reported_lately(line) || !(r = calloc(1, sizeof(*r))))
		return;
	str_copy(r->line, sizeof(r->line), line);
	r->len = strlen(r->line);
	if ((g = gateway_open()) < 0 || loop_add(&r->w, g, EPOLLOUT, on_report_ready) < 0) {
		log_debug(g < 0 ? g : errno, "egress: cannot report to the gateway: %s", line);
		if (g >= 0)
			close(g);
		free(r);
		return;
	}
	nreports++;
	timer_arm(&r->timer, REPORT_WAIT_NS, on_report_timeout);
}

static void on_dns_refused(const char *name)
{
	char line[REPORT_LINE_MAX];

	snprintf(line, sizeof(line), "NXDOMAIN %s\n", name);
	report(line);
}

/* ---- addresses refused at once ---- */

static struct watch w_rst;
static uint32_t named[256]; /* the addresses the allow list names */
static size_t nnamed;

/* The resets the refuse chain answers SYNs with reach the workload over
 * lo; a raw TCP socket gets a copy of each incoming TCP segment, which
 * this classic BPF filter narrows in the kernel to resets from an
 * address outside 127/8 (the relays' own traffic on lo never wakes us):
 * IPv4 header, then TCP. */
static const struct sock_filter rst_code[] = {
	BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 12),          /* A = first byte of saddr */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 127, 3, 0),  /* loopback: drop */
	BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),          /* X = IP header length */
	BPF_STMT(BPF_LD | BPF_B | BPF_IND, 13),          /* A = TCP flags */
	BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x04, 1, 0), /* RST: keep */
	BPF_STMT(BPF_RET | BPF_K, 0),
	BPF_STMT(BPF_RET | BPF_K, 128),
};

static bool is_named(uint32_t a)
{
	for (size_t i = 0; i < nnamed; i++)
		if (named[i] == a)
			return true;
	return false;
}

/* A reset from an address the list does not name came from the refuse
 * chain (the proxy's resets carry a synthetic or a named address). */
static void on_rst(struct watch *w, uint32_t events)
{
	uint8_t p[128];

	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(w->fd, p, sizeof(p), MSG_DONTWAIT);
		char a[INET_ADDRSTRLEN], line[REPORT_LINE_MAX];
		size_t ihl;
		uint32_t src;

		if (n < 0)
			return;
		if (n < 20 || (ihl = (size_t)(p[0] & 0x0f) * 4) < 20 || (size_t)n < ihl + 14 ||
		    p[9] != IPPROTO_TCP || !(p[ihl + 13] & 0x04))
			continue;
		memcpy(&src, p + 12, 4);
		if (dns_is_synthetic(ntohl(src)) || (ntohl(src) >> 24) == 127 || is_named(src) ||
		    !inet_ntop(AF_INET, &src, a, sizeof(a)))
			continue;
		snprintf(line, sizeof(line), "REFUSED %s %u\n", a, (unsigned)(p[ihl] << 8 | p[ihl + 1]));
		report(line);
	}
}

/* "a.b.c.d ...": the addresses the allow list names. */
static int refuse_start(const char *list)
{
	struct sock_fprog prog = { .len = ARRAY_SIZE(rst_code),
				   .filter = (struct sock_filter *)rst_code };
	int fd, r;

	for (const char *p = list; *p;) {
		const char *end = strchrnul(p, ' ');
		char a[INET_ADDRSTRLEN];

		if (end > p) {
			if (nnamed == ARRAY_SIZE(named) || (size_t)(end - p) >= sizeof(a))
				return -E2BIG;
			memcpy(a, p, (size_t)(end - p));
			a[end - p] = '\0';
			if (inet_pton(AF_INET, a, &named[nnamed++]) != 1)
				return -EINVAL;
		}
		p = *end ? end + 1 : end;
	}
	if ((r = egress_refuse_install(named, nnamed)) < 0)
		return r;
	/* Without it refusals still happen, only without their audit line. */
	fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ||
	    loop_add(&w_rst, fd, EPOLLIN, on_rst) < 0) {
		log_warn(errno, "egress: refused addresses will not be reported to the audit log");
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* The original destination as the gateway should see it: the name behind
 * a synthetic address, else the address itself. */
static int destination(int fd, char *host, size_t n, uint16_t *port)
{
	struct sockaddr_in dst;
	socklen_t len = sizeof(dst);
	uint32_t a;

	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) < 0)
		return -errno;
	a = ntohl(dst.sin_addr.s_addr);
	*port = ntohs(dst.sin_port);
	/* Straight to the proxy's own port, not redirected: nowhere to go. */
	if ((a >> 24) == 127)
		return -EINVAL;
	if (dns_is_synthetic(a))
		return dns_lookup_addr(a, host, n) ? 0 : -ENOENT;
	return inet_ntop(AF_INET, &dst.sin_addr, host, (socklen_t)n) ? 0 : -EINVAL;
}

static void proxy_accept_one(int tcp)
{
	char host[DNS_NAME_MAX + 1];
	struct eproxy *p;
	uint16_t port = 0;
	int one = 1, g, r;

	if ((r = destination(tcp, host, sizeof(host), &port)) < 0) {
		log_debug(r, "egress: a connection with no destination to ask for");
		reset_close(tcp);
		return;
	}
	if (nproxied >= EGRESS_MAX || !(p = calloc(1, sizeof(*p)))) {
		reset_close(tcp);
		return;
	}
	nproxied++;
	p->tcp = tcp;
	p->gw.fd = -1;
	p->tw.fd = -1;
	p->reqlen = snprintf(p->req, sizeof(p->req), "CONNECT %s %u\n", host, port);
	setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	g = gateway_open();
	if (g < 0 || loop_add(&p->gw, g, EPOLLOUT, on_gateway) < 0) {
		log_debug(g < 0 ? g : errno, "egress: cannot reach the gateway");
		if (g >= 0)
			close(g);
		proxy_free(p, true);
		return;
	}
	timer_arm(&p->timer, GATEWAY_WAIT_NS, on_timeout);
}

static void on_proxy_accept(struct watch *w, uint32_t events)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		proxy_accept_one(fd);
	}
}

static int proxy_listen(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(EGRESS_PROXY_PORT) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, r;

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = loop_add(&w_proxy, fd, EPOLLIN, on_proxy_accept)) < 0) {
		close(fd);
		return r;
	}
	return 0;
}

static void write_resolv_conf(void)
{
	static const char text[] = "# written by sbx-init: names resolve through the egress gateway\n"
				   "nameserver 127.0.0.53\n";
	const char *tmp = EGRESS_RESOLV_CONF ".sbx-new";
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || fd_write_all(fd, text, sizeof(text) - 1) < 0 || close(fd) < 0 ||
	    rename(tmp, EGRESS_RESOLV_CONF) < 0) {
		log_warn(errno, "egress: unable to write %s", EGRESS_RESOLV_CONF);
		if (fd >= 0)
			unlink(tmp);
	}
}

static int write_file(const char *path, const char *text, bool append)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
	int r = fd < 0 ? -errno : fd_write_all(fd, text, strlen(text)) < 0 ? -errno : 0;

	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Whether the file at path already holds text (a restarted agent). */
static bool file_has(const char *path, const char *text)
{
	FILE *f = fopen(path, "re");
	char *data = NULL;
	size_t cap = 0;
	ssize_t n;
	bool has = false;

	if (!f)
		return false;
	n = getdelim(&data, &cap, '\0', f);
	has = n > 0 && memmem(data, (size_t)n, text, strlen(text));
	free(data);
	fclose(f);
	return has;
}

/* The CA of the sandbox's secrets (docs/protocol/secrets.md) into the
 * trust stores: a file of its own (NODE_EXTRA_CA_CERTS, DENO_CERT), the
 * system bundle (OpenSSL, curl, Python: SSL_CERT_FILE, REQUESTS_CA_BUNDLE)
 * and Debian's local store, so that update-ca-certificates keeps it. */
static void install_ca(const char *pem)
{
	static const char own[] = "/run/sbx/egress-ca.pem",
			  bundle[] = "/etc/ssl/certs/ca-certificates.crt",
			  local[] = "/usr/local/share/ca-certificates";
	int r;

	if ((r = write_file(own, pem, false)) < 0)
		log_warn(r, "egress: unable to write %s", own);
	if (access(local, F_OK) == 0 &&
	    (r = write_file("/usr/local/share/ca-certificates/sbx-egress.crt", pem, false)) < 0)
		log_warn(r, "egress: unable to write %s/sbx-egress.crt", local);
	if (access(bundle, F_OK) < 0) {
		mkdir("/etc/ssl", 0755);
		mkdir("/etc/ssl/certs", 0755);
	}
	if (!file_has(bundle, pem) && (r = write_file(bundle, pem, true)) < 0)
		log_warn(r, "egress: unable to add the secrets' CA to %s", bundle);
}

void egress_start(const struct config *c, bool in_vm)
{
	const char *dev = getenv("SBX_EGRESS_GATEWAY");
	char err[256];
	int r;

	if (!c->egress || (!in_vm && !dev))
		return;
	if (in_vm) {
		gateway = (struct addr){ .kind = ADDR_VSOCK, .cid = VMADDR_CID_HOST,
					 .port = c->egress_port };
		if (access(KMOD_EGRESS_LIST, F_OK) == 0)
			kmod_load_list(KMOD_EGRESS_LIST);
		if (c->egress_ca[0])
			install_ca(c->egress_ca);
	} else if (addr_parse(dev, &gateway, err, sizeof(err)) < 0 || gateway.kind != ADDR_UNIX) {
		log_warn(0, "egress: SBX_EGRESS_GATEWAY=%s: expected unix:PATH", dev);
		return;
	}
	/* Rules first, the route last: until the route exists every
	 * connection fails at once, never into a black hole. */
	if ((r = egress_rules_install(EGRESS_PROXY_PORT)) < 0) {
		log_warn(r, "egress: unable to install the nftables redirect; no way out");
		return;
	}
	if ((r = proxy_listen()) < 0) {
		log_warn(r, "egress: unable to listen on 127.0.0.1:%d; no way out", EGRESS_PROXY_PORT);
		return;
	}
	if (c->egress_addrs && (r = refuse_start(c->egress_addrs)) < 0)
		log_warn(r, "egress: unable to refuse unnamed addresses at once (egress_addrs '%s')",
			 c->egress_addrs);
	dns_set_names(c->egress_names);
	dns_set_refused_hook(on_dns_refused);
	if ((r = dns_start()) < 0)
		log_warn(r, "egress: unable to serve DNS on 127.0.0.53:53");
	else if (in_vm)
		write_resolv_conf();
	if ((r = egress_route_install()) < 0) {
		log_warn(r, "egress: unable to add the route for TCP; no way out");
		return;
	}
	log_info(0, "egress: on, through the gateway at vsock port %u", c->egress_port);
}
