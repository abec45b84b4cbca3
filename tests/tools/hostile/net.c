/* sbx-hostile: port forwarding: FORWARD out of range, to nothing, and
 * spoken to too early. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vsock/proto_net.h"
#include "tests/tools/hostile/hostile.h"

static int forward_error(uint32_t port, int code, const char *text)
{
	struct buf b;
	struct peer p;
	int r;

	if (peer_open(&p) < 0)
		return -1;
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_forward_put(&b, port);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, code, text);
	peer_close(&p);
	return r;
}

static int c_forward_nothing_listens(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	char text[64];
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A port that was free a moment ago. */
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0)
		return fail("cannot find a free port: %s", strerror(errno));
	close(s);
	snprintf(text, sizeof(text), "nothing listens on port %u", ntohs(sa.sin_port));
	return forward_error(ntohs(sa.sin_port), ECONNREFUSED, text);
}

static int c_forward_bytes_before_reply(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;
	struct buf b;
	struct peer p;

	/* Something listens; the client does not wait for OK before it
	 * starts the byte stream. */
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0)
		return fail("cannot listen: %s", strerror(errno));
	if (peer_open(&p) < 0) {
		close(s);
		return -1;
	}
	buf_init(&b, 4096);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_forward_put(&b, ntohs(sa.sin_port));
	buf_append(&b, "GET / HTTP/1.0\r\n\r\n", 18);
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EPROTO, "the client sent bytes before the reply");
	peer_close(&p);
	close(s);
	return r;
}

static const struct hostile_case cases[] = {
	{ .name = "FORWARD to port 0: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FORWARD,
		     .fields = { FIELD(FORWARD_PORT, "\0\0\0\0") },
		     .code = EINVAL, .text = "FORWARD: port 0 is out of range (1-65535)" } },
	{ .name = "FORWARD to port 70000: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FORWARD,
		     .fields = { FIELD(FORWARD_PORT, "\x70\x11\1\0") },
		     .code = EINVAL,
		     .text = "FORWARD: port 70000 is out of range (1-65535)" } },
	{ .name = "FORWARD to a port nobody listens on: ECONNREFUSED", .fn = c_forward_nothing_listens },
	{ .name = "FORWARD with PORT twice: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FORWARD,
		     .fields = { FIELD(FORWARD_PORT, "\x16\0\0\0"), FIELD(FORWARD_PORT, "\x17\0\0\0") },
		     .code = EINVAL, .text = "FORWARD: field PORT given twice" } },
	{ .name = "FORWARD with bytes before the reply: EPROTO", .fn = c_forward_bytes_before_reply },
};

HOSTILE_AREA(hostile_net, cases);
