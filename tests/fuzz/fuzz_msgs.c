/* libFuzzer target: the other decoders of vsock/proto.c, one per input
 * (the first byte chooses: HELLO, HELLO_OK, ERROR, EXIT, SIGNAL, RESIZE,
 * STARTED/u32, ATTACHED, ACK, SHUTDOWN, LIFETIME and SET_TIME's reply,
 * PS_ENTRY, INFO_OK, READY, and the field iterator), the rest being the
 * payload. What a decoder accepts is encoded again and must decode to
 * the same values. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/reencode.h"

#define OK(call)                                  \
	do {                                      \
		struct proto_err e_;              \
		int r_;                           \
		fuzz_err_reset(&e_);              \
		r_ = (call);                      \
		fuzz_check_rc(r_, &e_);           \
		FUZZ_CHECK(r_ == 0);              \
	} while (0)

static void one(unsigned which, const struct frame *f)
{
	struct proto_err e;
	int r;

	fuzz_err_reset(&e);
	switch (which) {
	case M_HELLO: {
		uint16_t lo, hi, lo2, hi2;

		r = proto_hello_decode(f, &lo, &hi, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(lo <= hi);
		FUZZ_CHECK(proto_hello_put(&b, lo, hi) == 0);
		struct frame g = reencoded(FT_HELLO);
		OK(proto_hello_decode(&g, &lo2, &hi2, &e_));
		FUZZ_CHECK(lo == lo2 && hi == hi2);
		FUZZ_CHECK(g.len == f->len && memcmp(g.payload, f->payload, f->len) == 0);
		break;
	}
	case M_HELLO_OK: {
		struct hello_ok h, h2;

		r = proto_hello_ok_decode(f, &h, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(proto_hello_ok_put(&b, &h) == 0);
		struct frame g = reencoded(FT_HELLO_OK);
		OK(proto_hello_ok_decode(&g, &h2, &e_));
		FUZZ_CHECK(memcmp(&h, &h2, sizeof(h)) == 0);
		break;
	}
	case M_ERROR: {
		char msg[PROTO_MSG_MAX + 1], msg2[PROTO_MSG_MAX + 1];
		int code, code2;

		r = proto_error_decode(f, &code, msg, sizeof(msg), &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(code > 0 && code <= 4095);
		FUZZ_CHECK(proto_error_put(&b, code, "%s", msg) == 0);
		struct frame g = reencoded(FT_ERROR);
		OK(proto_error_decode(&g, &code2, msg2, sizeof(msg2), &e_));
		FUZZ_CHECK(code == code2);
		/* An empty message is sent as "error". */
		FUZZ_CHECK(strcmp(msg2, msg[0] ? msg : "error") == 0);
		break;
	}
	case M_EXIT: {
		static struct exit_status x, x2;

		r = proto_exit_decode(f, &x, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(x.how <= EXIT_NOT_STARTED && strlen(x.msg) <= PROTO_MSG_MAX);
		FUZZ_CHECK(proto_exit_put(&b, &x) == 0);
		struct frame g = reencoded(FT_EXIT);
		OK(proto_exit_decode(&g, &x2, &e_));
		FUZZ_CHECK(x.how == x2.how && x.flags == x2.flags && x.value == x2.value &&
			   strcmp(x.msg, x2.msg) == 0);
		break;
	}
	case M_SIGNAL: {
		int sig;

		r = proto_signal_decode(f, &sig, &e);
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(sig >= 1 && sig <= PROTO_SIG_MAX);
		break;
	}
	case M_RESIZE: {
		uint16_t rows, cols, rows2, cols2;

		r = proto_resize_decode(f, &rows, &cols, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(rows >= 1 && rows <= PROTO_WINSIZE_MAX && cols >= 1 &&
			   cols <= PROTO_WINSIZE_MAX);
		FUZZ_CHECK(proto_resize_put(&b, rows, cols) == 0);
		struct frame g = reencoded(FT_RESIZE);
		OK(proto_resize_decode(&g, &rows2, &cols2, &e_));
		FUZZ_CHECK(rows == rows2 && cols == cols2);
		break;
	}
	case M_U32: {
		uint32_t v, v2;

		r = proto_u32_decode(f, &v, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(proto_u32_put(&b, FT_STARTED, v) == 0);
		struct frame g = reencoded(FT_STARTED);
		OK(proto_u32_decode(&g, &v2, &e_));
		FUZZ_CHECK(v == v2);
		break;
	}
	case M_ATTACHED: {
		struct attached a, a2;

		r = proto_attached_decode(f, &a, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(proto_attached_put(&b, &a) == 0);
		struct frame g = reencoded(FT_ATTACHED);
		OK(proto_attached_decode(&g, &a2, &e_));
		FUZZ_CHECK(memcmp(&a, &a2, sizeof(a)) == 0);
		break;
	}
	case M_ACK: {
		struct ack a, a2;

		memset(&a, 0, sizeof(a));
		memset(&a2, 0, sizeof(a2));
		r = proto_ack_decode(f, &a, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK((a.flags & ~ACK_F_EXIT) == 0);
		FUZZ_CHECK(proto_ack_put(&b, &a) == 0);
		struct frame g = reencoded(FT_ACK);
		OK(proto_ack_decode(&g, &a2, &e_));
		FUZZ_CHECK(memcmp(&a, &a2, sizeof(a)) == 0);
		break;
	}
	case M_SHUTDOWN: {
		char reason[PROTO_REASON_MAX + 1], reason2[PROTO_REASON_MAX + 1];

		r = proto_shutdown_decode(f, reason, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(strlen(reason) <= PROTO_REASON_MAX);
		FUZZ_CHECK(proto_shutdown_put(&b, reason[0] ? reason : NULL) == 0);
		struct frame g = reencoded(FT_SHUTDOWN);
		OK(proto_shutdown_decode(&g, reason2, &e_));
		FUZZ_CHECK(strcmp(reason, reason2) == 0);
		break;
	}
	case M_LIFETIME: {
		struct lifetime l, l2;

		r = proto_lifetime_decode(f, &l, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(proto_lifetime_put(&b, FT_LIFETIME, &l) == 0);
		struct frame g = reencoded(FT_LIFETIME);
		OK(proto_lifetime_decode(&g, &l2, &e_));
		FUZZ_CHECK(l.kind == l2.kind && l.left_ns == l2.left_ns &&
			   l.realtime_ns == l2.realtime_ns);
		break;
	}
	case M_PS_ENTRY: {
		struct ps_entry p, p2;

		r = proto_ps_entry_decode(f, &p, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(strlen(p.argv) < sizeof(p.argv));
		FUZZ_CHECK(proto_ps_entry_put(&b, &p) == 0);
		struct frame g = reencoded(FT_PS_ENTRY);
		OK(proto_ps_entry_decode(&g, &p2, &e_));
		FUZZ_CHECK(p.pid == p2.pid && p.state == p2.state && p.started_ns == p2.started_ns &&
			   p.status == p2.status && p.flags == p2.flags &&
			   strcmp(p.argv, p2.argv) == 0);
		break;
	}
	case M_INFO_OK: {
		struct info i, i2;

		r = proto_info_ok_decode(f, &i, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(strlen(i.version) < sizeof(i.version) &&
			   strlen(i.hostname) < sizeof(i.hostname) &&
			   strlen(i.kernel) < sizeof(i.kernel));
		FUZZ_CHECK(proto_info_ok_put(&b, &i) == 0);
		struct frame g = reencoded(FT_INFO_OK);
		OK(proto_info_ok_decode(&g, &i2, &e_));
		FUZZ_CHECK(strcmp(i.version, i2.version) == 0 && strcmp(i.hostname, i2.hostname) == 0 &&
			   strcmp(i.kernel, i2.kernel) == 0 && i.uptime_ns == i2.uptime_ns &&
			   i.pid1 == i2.pid1 && i.lifetime_kind == i2.lifetime_kind &&
			   i.lifetime_left_ns == i2.lifetime_left_ns && i.sessions == i2.sessions &&
			   i.jobs == i2.jobs && i.grace_left_ns == i2.grace_left_ns);
		break;
	}
	case M_READY: {
		struct ready_info rd, rd2;

		r = proto_ready_decode(f, &rd, &e);
		fuzz_check_rc(r, &e);
		if (r < 0)
			return;
		FUZZ_CHECK(proto_ready_put(&b, &rd) == 0);
		struct frame g = reencoded(FT_READY);
		OK(proto_ready_decode(&g, &rd2, &e_));
		FUZZ_CHECK(memcmp(&rd, &rd2, sizeof(rd)) == 0);
		break;
	}
	case M_FIELDS: {
		struct field_iter it;
		const uint8_t *v;
		uint16_t tag;
		uint32_t len;
		size_t seen = 0;

		proto_fields(&it, f);
		while ((r = proto_field_next(&it, &tag, &v, &len, &e)) > 0) {
			FUZZ_CHECK(v >= f->payload && v + len <= f->payload + f->len);
			seen += 6 + (size_t)len;
		}
		fuzz_check_rc(r, &e);
		if (r == 0)
			FUZZ_CHECK(seen == f->len); /* whole fields, nothing left over */
		break;
	}
	}
}

/* Types the payload is tried under: each decoder's own. */
static const uint16_t type_of[M_COUNT] = {
	[M_HELLO] = FT_HELLO, [M_HELLO_OK] = FT_HELLO_OK, [M_ERROR] = FT_ERROR,
	[M_EXIT] = FT_EXIT, [M_SIGNAL] = FT_SIGNAL, [M_RESIZE] = FT_RESIZE,
	[M_U32] = FT_STARTED, [M_ATTACHED] = FT_ATTACHED, [M_ACK] = FT_ACK,
	[M_SHUTDOWN] = FT_SHUTDOWN, [M_LIFETIME] = FT_LIFETIME, [M_PS_ENTRY] = FT_PS_ENTRY,
	[M_INFO_OK] = FT_INFO_OK, [M_READY] = FT_READY, [M_FIELDS] = FT_ENV,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f;
	unsigned which;

	if (size < 1 || size - 1 > PROTO_FRAME_MAX)
		return 0;
	which = data[0] % M_COUNT;
	f = fuzz_frame_of(type_of[which], data + 1, size - 1);
	buf_consume(&b, buf_len(&b));
	one(which, &f);
	return 0;
}
