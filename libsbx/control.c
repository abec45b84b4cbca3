/* libsbx: the agent's requests other than commands and files: INFO, the
 * job list, the environment store, sessions and the lifetime, the clock,
 * shutdown. Each opens its own connection. */
#include "libsbx/sbx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "libsbx/conn.h"

/* ---- the agent ---- */

int sbx_info(const char *addr, struct info *out, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct proto_err pe;
	struct frame f;
	int r;

	if ((r = sbx_connect(addr, &c, err)) < 0)
		return r;
	if ((r = sbx_send(c, FT_INFO, NULL, 0, err)) < 0 || (r = sbx_recv(c, &f, -1, err)) < 0)
		goto out;
	if (f.type != FT_INFO_OK)
		r = sbx_fail(err, EPROTO, "%s answered INFO with %s", addr, proto_type_name(f.type));
	else if (proto_info_ok_decode(&f, out, &pe) < 0)
		r = sbx_fail(err, pe.code, "bad INFO_OK from %s: %s", addr, pe.msg);
out:
	sbx_close(c);
	return r;
}

/* ---- jobs, environment, lifetime ---- */

/* Opens a connection, sends what build queued, and returns the first
 * answer frame in *f (valid until sbx_close). */
static int request(const char *addr, struct sbx_conn **c, struct frame *f,
		   int (*build)(struct buf *b, const void *arg), const void *arg,
		   struct sbx_error *err)
{
	int r;

	if ((r = sbx_connect(addr, c, err)) < 0)
		return r;
	if ((r = build(&(*c)->tx, arg)) < 0) {
		sbx_close(*c);
		return sbx_fail(err, r, "cannot build the request");
	}
	if ((r = sbx_recv(*c, f, -1, err)) < 0) {
		sbx_close(*c);
		return r;
	}
	return 0;
}

static int build_empty(struct buf *b, const void *type)
{
	return proto_put(b, *(const uint16_t *)type, NULL, 0);
}

int sbx_ps(const char *addr, void (*fn)(void *arg, const struct ps_entry *p), void *arg,
	   struct sbx_error *err)
{
	static const uint16_t type = FT_PS;
	struct sbx_conn *c;
	struct proto_err pe;
	struct ps_entry p;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_empty, &type, err)) < 0)
		return r;
	while (f.type == FT_PS_ENTRY) {
		if (proto_ps_entry_decode(&f, &p, &pe) < 0) {
			r = sbx_fail(err, pe.code, "%s", pe.msg);
			goto out;
		}
		fn(arg, &p);
		if ((r = sbx_recv(c, &f, -1, err)) < 0)
			goto out;
	}
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "PS answered with %s", proto_type_name(f.type));
out:
	sbx_close(c);
	return r;
}

struct env_req {
	uint32_t op;
	const char *const *items;
};

static int build_env(struct buf *b, const void *arg)
{
	const struct env_req *e = arg;
	size_t mark;
	int r;

	if ((r = proto_begin(b, FT_ENV, &mark)) < 0 ||
	    (r = proto_field_put_u32(b, ENV_OP, e->op)) < 0)
		return r;
	for (size_t i = 0; e->items && e->items[i]; i++)
		if ((r = proto_field_put_str(b, e->op == ENV_SET ? ENV_ENTRY : ENV_NAME,
					     e->items[i])) < 0)
			return r;
	return proto_end(b, mark);
}

static int env_change(const char *addr, uint32_t op, const char *const *items,
		      struct sbx_error *err)
{
	struct env_req e = { .op = op, .items = items };
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_env, &e, err)) < 0)
		return r;
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "ENV answered with %s", proto_type_name(f.type));
	sbx_close(c);
	return r;
}

int sbx_env_set(const char *addr, const char *const *entries, struct sbx_error *err)
{
	return env_change(addr, ENV_SET, entries, err);
}

int sbx_env_unset(const char *addr, const char *const *names, struct sbx_error *err)
{
	return env_change(addr, ENV_UNSET, names, err);
}

int sbx_env_list(const char *addr, void (*fn)(void *arg, const char *entry), void *arg,
		 struct sbx_error *err)
{
	struct env_req e = { .op = ENV_LIST };
	struct field_iter it;
	struct proto_err pe;
	struct sbx_conn *c;
	const uint8_t *v;
	struct frame f;
	uint16_t tag;
	uint32_t len;
	int r;

	if ((r = request(addr, &c, &f, build_env, &e, err)) < 0)
		return r;
	/* ENV_LIST frames, then OK. */
	while (f.type == FT_ENV_LIST) {
		proto_fields(&it, &f);
		while ((r = proto_field_next(&it, &tag, &v, &len, &pe)) > 0) {
			char *entry;

			if (tag != ENV_ENTRY)
				continue;
			entry = strndup((const char *)v, len);
			if (!entry) {
				r = sbx_fail(err, ENOMEM, "out of memory");
				goto out;
			}
			fn(arg, entry);
			free(entry);
		}
		if (r < 0) {
			r = sbx_fail(err, pe.code, "%s", pe.msg);
			goto out;
		}
		if ((r = sbx_recv(c, &f, -1, err)) < 0)
			goto out;
	}
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "ENV answered with %s", proto_type_name(f.type));
out:
	sbx_close(c);
	return r;
}

static int lifetime_answer(struct sbx_conn *c, const struct frame *f, struct lifetime *l,
			   struct sbx_error *err)
{
	struct proto_err pe;

	if (f->type != FT_LIFETIME)
		return sbx_fail(err, EPROTO, "%s answered with %s", c->addr, proto_type_name(f->type));
	if (proto_lifetime_decode(f, l, &pe) < 0)
		return sbx_fail(err, pe.code, "%s", pe.msg);
	return 0;
}

int sbx_session(const char *addr, struct sbx_conn **out, struct lifetime *l,
		struct sbx_error *err)
{
	static const uint16_t type = FT_SESSION;
	struct frame f;
	int r;

	if ((r = request(addr, out, &f, build_empty, &type, err)) < 0)
		return r;
	if ((r = lifetime_answer(*out, &f, l, err)) < 0) {
		sbx_close(*out);
		*out = NULL;
	}
	return r;
}

int sbx_freeze(const char *addr, struct sbx_conn **out, struct sbx_error *err)
{
	static const uint16_t type = FT_FREEZE;
	struct frame f;
	int r;

	if ((r = request(addr, out, &f, build_empty, &type, err)) < 0)
		return r;
	if (f.type != FT_OK) {
		r = sbx_fail(err, EPROTO, "%s answered FREEZE with %s", addr,
			     proto_type_name(f.type));
		sbx_close(*out);
		*out = NULL;
	}
	return r;
}

static int build_extend(struct buf *b, const void *arg)
{
	uint8_t p[8];

	put_le64(p, *(const uint64_t *)arg);
	return proto_put(b, FT_EXTEND, p, sizeof(p));
}

int sbx_extend(const char *addr, uint64_t seconds, struct lifetime *l, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_extend, &seconds, err)) < 0)
		return r;
	r = lifetime_answer(c, &f, l, err);
	sbx_close(c);
	return r;
}

static int build_set_time(struct buf *b, const void *arg)
{
	uint64_t left = *(const uint64_t *)arg;
	struct timespec ts;
	size_t mark;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	if ((r = proto_begin(b, FT_SET_TIME, &mark)) < 0 ||
	    (r = proto_field_put_u64(b, LIFE_REALTIME_NS, (uint64_t)ts.tv_sec * 1000000000ULL +
								 (uint64_t)ts.tv_nsec)) < 0 ||
	    (left && (r = proto_field_put_u64(b, LIFE_LEFT_NS, left)) < 0))
		return r;
	return proto_end(b, mark);
}

int sbx_set_time(const char *addr, uint64_t left_ns, struct lifetime *l, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_set_time, &left_ns, err)) < 0)
		return r;
	r = lifetime_answer(c, &f, l, err);
	sbx_close(c);
	return r;
}

struct identity_arg {
	const char *config;
	size_t len;
	const uint8_t *seed;
	size_t seed_len;
};

static int build_identity(struct buf *b, const void *arg)
{
	const struct identity_arg *a = arg;
	struct timespec ts;
	size_t mark;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	if ((r = proto_begin(b, FT_IDENTITY, &mark)) < 0 ||
	    (r = proto_field_put(b, IDENT_CONFIG, a->config, a->len)) < 0 ||
	    (r = proto_field_put(b, IDENT_SEED, a->seed, a->seed_len)) < 0 ||
	    (r = proto_field_put_u64(b, IDENT_REALTIME_NS, (uint64_t)ts.tv_sec * 1000000000ULL +
								  (uint64_t)ts.tv_nsec)) < 0)
		return r;
	return proto_end(b, mark);
}

int sbx_identity(const char *addr, const char *config, size_t len, const uint8_t *seed,
		 size_t seed_len, struct lifetime *l, struct sbx_error *err)
{
	struct identity_arg a = { config, len, seed, seed_len };
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_identity, &a, err)) < 0)
		return r;
	r = lifetime_answer(c, &f, l, err);
	sbx_close(c);
	return r;
}

static int build_shutdown(struct buf *b, const void *reason)
{
	return proto_shutdown_put(b, reason);
}

int sbx_shutdown(const char *addr, const char *reason, struct sbx_error *err)
{
	struct sbx_conn *c;
	struct frame f;
	int r;

	if ((r = request(addr, &c, &f, build_shutdown, reason, err)) < 0)
		return r;
	if (f.type != FT_OK)
		r = sbx_fail(err, EPROTO, "SHUTDOWN answered with %s", proto_type_name(f.type));
	sbx_close(c);
	return r;
}
