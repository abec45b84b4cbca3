/* sbx serve: file handles (deno.md §5.4). The agent keeps no file open
 * between connections, so a handle is a path, a position and the modes it
 * was opened with, and each call is one agent operation on that path:
 * fileRead a positioned read, fileWrite a positioned write in place (or
 * an append), fileTruncate a truncate. A handle belongs to its socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libsbx/sbx_fs.h"
#include "serve/serve.h"

#define HANDLE_WRITE_MAX (64u << 20) /* one fileWrite: what one message holds */
/* A handle read in sequence (FsFile.readable and fs.download read 64 KiB
 * at a time) fetches this much per agent call and answers the next reads
 * from it: one agent round trip per 2 MiB instead of per 64 KiB. */
#define HANDLE_READAHEAD (2u << 20)

/* Drops the read-ahead (a write, truncate or seek through the handle).
 * The caller holds serve_lock. */
static void readahead_drop(struct job *h)
{
	free(h->ra);
	h->ra = NULL;
	h->ra_len = 0;
	h->ra_next = UINT64_MAX;
}

/* Answers {data} with len bytes (none: end of file). */
static void answer_data(struct call *c, const uint8_t *data, size_t len)
{
	char *b;

	if (len == 0) {
		call_answer(c, rpc_ok(c->id, json_pack("{s:n}", "data")));
		return;
	}
	b = serve_b64(data, len);
	call_answer(c, b ? rpc_ok(c->id, json_pack("{s:s}", "data", b))
			 : rpc_errno(c->id, ENOMEM, "out of memory"));
	free(b);
}

static bool opt(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static char *bad_mode(struct call *c, const char *op)
{
	/* What Deno says for a read of a write-only file and the reverse. */
	return serve_fs_fail(c, EBADF, op, c->job->path, NULL);
}

/* Makes, truncates or checks the file for a writable handle: an empty
 * in-place write does all three in one agent call. */
static int open_for_write(struct call *c, const char *path, json_t *o, bool create,
			  bool create_new, bool truncate)
{
	json_t *mode = json_object_get(o, "mode");
	struct sbx_write_opts w = { .flags = FS_F_IN_PLACE };
	struct sbx_error err;
	struct fs_stat st;
	int r;

	r = sbx_fs_stat(c->addr, path, true, serve_fsopts(c), &st, NULL, 0, &err);
	if (r == 0 && S_ISDIR(st.mode))
		return -EISDIR;
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && create_new)
		return -EEXIST;
	if (r == -ENOENT && !create && !create_new)
		return -ENOENT;
	if (r == 0 && !truncate)
		return 0; /* nothing to change: writes come at their offset */
	if (create_new)
		w.flags |= FS_F_CREATE_NEW;
	else if (!create)
		w.flags |= FS_F_NO_CREATE;
	if (r == -ENOENT) {
		/* A new file: the mode asked for, less the client's umask. */
		w.set_mode = true;
		w.mode = (json_is_integer(mode) ? (uint32_t)json_integer_value(mode) & 07777 : 0666) &
			 ~c->umask;
	}
	if (!truncate) {
		w.has_offset = true;
		w.offset = 0;
	}
	return sbx_fs_write_buf(c->addr, "", 0, path, &w, serve_fsopts(c), &err);
}

/* open and create. Without options a handle reads; the flags follow
 * Rust's OpenOptions, as Deno's do. */
int m_open(struct call *c)
{
	const char *method = json_string_value(json_object_get(c->params, "$method"));
	json_t *o = json_object_get(c->params, "options");
	bool rd, wr, app, trunc, creat, cnew;
	struct sbx_error err;
	struct fs_stat st;
	int r;
	const char *path = json_string_value(json_object_get(c->params, "path"));

	if (!path) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "open: \"path\" must be a string"));
		return -EINVAL;
	}
	if (method && !strcmp(method, "create")) {
		rd = wr = creat = trunc = true;
		app = cnew = false;
	} else if (!json_is_object(o)) {
		rd = true;
		wr = app = trunc = creat = cnew = false;
	} else {
		rd = opt(o, "read");
		wr = opt(o, "write");
		app = opt(o, "append");
		trunc = opt(o, "truncate");
		creat = opt(o, "create");
		cnew = opt(o, "createNew");
	}
	if ((!rd && !wr && !app) || ((trunc || creat || cnew) && !wr && !app) || (trunc && app)) {
		call_answer(c, serve_fs_fail(c, EINVAL, "open", path, NULL));
		return -EINVAL;
	}
	if (wr || app) {
		r = open_for_write(c, path, o, creat, cnew, trunc);
	} else {
		r = sbx_fs_stat(c->addr, path, true, serve_fsopts(c), &st, NULL, 0, &err);
		if (r == 0 && S_ISDIR(st.mode))
			r = -EISDIR;
	}
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "open", path, NULL));
		return r;
	}
	pthread_mutex_lock(&serve_lock);
	c->job->path = strdup(path);
	c->job->fh_read = rd;
	c->job->fh_write = wr || app;
	c->job->fh_append = app;
	pthread_mutex_unlock(&serve_lock);
	call_answer(c, rpc_ok(c->id, json_pack("{s:I}", "fileHandleId", (json_int_t)c->job->fh_id)));
	return 0;
}

int m_file_read(struct call *c)
{
	struct job *h = c->job;
	json_t *jl = json_object_get(c->params, "length");
	struct sbx_error err;
	uint64_t offset;
	json_int_t want = json_is_integer(jl) ? json_integer_value(jl) : 65536;
	uint8_t *data;
	size_t len, n;
	bool sequential;
	int r;

	if (!h->fh_read) {
		call_answer(c, bad_mode(c, "read"));
		return -EBADF;
	}
	if (want <= 0 || want > (16 << 20))
		want = 65536;
	pthread_mutex_lock(&serve_lock);
	offset = h->offset;
	if (h->ra && offset >= h->ra_off && offset < h->ra_off + h->ra_len) {
		size_t at = (size_t)(offset - h->ra_off);

		n = h->ra_len - at;
		if (n > (size_t)want)
			n = (size_t)want;
		data = malloc(n);
		if (data)
			memcpy(data, h->ra + at, n);
		if (data) {
			h->offset = h->ra_next = offset + n;
			pthread_mutex_unlock(&serve_lock);
			answer_data(c, data, n);
			free(data);
			return 0;
		}
	}
	sequential = offset > 0 && offset == h->ra_next;
	pthread_mutex_unlock(&serve_lock);
	r = serve_read_mem(c, h->path, offset,
			   sequential && want < HANDLE_READAHEAD ? HANDLE_READAHEAD : want, &data,
			   &len, &err);
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "read", h->path, NULL));
		return r;
	}
	n = len > (size_t)want ? (size_t)want : len;
	/* The position moves before the answer goes: the client's next call
	 * (a seek, a write) may arrive as soon as it has the answer. */
	pthread_mutex_lock(&serve_lock);
	readahead_drop(h);
	h->offset = h->ra_next = offset + n;
	pthread_mutex_unlock(&serve_lock);
	answer_data(c, data, n);
	/* The rest is kept for the next read, unless the handle moved since. */
	pthread_mutex_lock(&serve_lock);
	if (len > n && !h->ra && h->offset == offset + n) {
		h->ra = data;
		h->ra_off = offset;
		h->ra_len = len;
		data = NULL;
	}
	pthread_mutex_unlock(&serve_lock);
	free(data);
	return 0;
}

/* One positioned write (or an append) of the whole chunk. */
int m_file_write(struct call *c)
{
	json_t *data = json_object_get(c->params, "data");
	struct sbx_write_opts w = { .flags = FS_F_NO_CREATE };
	struct job *h = c->job;
	struct sbx_error err;
	size_t len = json_string_length(data);
	char *raw;
	int n, r;

	if (!h->fh_write) {
		call_answer(c, bad_mode(c, "write"));
		return -EBADF;
	}
	if (!json_is_string(data) || len > HANDLE_WRITE_MAX / 3 * 4 + 4) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "fileWrite: \"data\" must be base64 bytes (at most "
					       "64 MiB)"));
		return -EINVAL;
	}
	raw = malloc(len + 1);
	n = raw ? lws_b64_decode_string_len(json_string_value(data), (int)len, raw, (int)len + 1)
		: -1;
	if (n < 0) {
		free(raw);
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "fileWrite: \"data\" is not base64"));
		return -EINVAL;
	}
	pthread_mutex_lock(&serve_lock);
	readahead_drop(h);
	if (h->fh_append) {
		w.flags |= FS_F_APPEND;
	} else {
		w.flags |= FS_F_IN_PLACE;
		w.has_offset = true;
		w.offset = h->offset;
	}
	pthread_mutex_unlock(&serve_lock);
	r = sbx_fs_write_buf(c->addr, raw, (size_t)n, h->path, &w, serve_fsopts(c), &err);
	free(raw);
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "write", h->path, NULL));
		return r;
	}
	pthread_mutex_lock(&serve_lock);
	h->offset = (h->fh_append ? h->offset : w.offset) + (uint64_t)n;
	pthread_mutex_unlock(&serve_lock);
	call_answer(c, rpc_ok(c->id, json_pack("{s:i}", "bytesWritten", n)));
	return 0;
}

int m_file_stat(struct call *c)
{
	struct sbx_error err;
	struct fs_stat st;
	int r;

	r = sbx_fs_stat(c->addr, c->job->path, true, serve_fsopts(c), &st, NULL, 0, &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "fstat", c->job->path, NULL)
			     : rpc_ok(c->id, serve_file_info(&st)));
	return r;
}

int m_file_seek(struct call *c)
{
	json_t *off = json_object_get(c->params, "offset");
	json_int_t whence = json_integer_value(json_object_get(c->params, "whence"));
	struct job *h = c->job;
	struct sbx_error err;
	struct fs_stat st;
	long long o = 0, base = 0;
	int r;

	if (json_is_integer(off))
		o = json_integer_value(off);
	else if (json_is_real(off))
		o = (long long)json_real_value(off);
	else if (!json_is_string(off) || sscanf(json_string_value(off), "%lld", &o) != 1 ||
		 whence < 0 || whence > 2) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "fileSeek: offset and whence (0, 1, 2) expected"));
		return -EINVAL;
	}
	if (whence == 2) {
		r = sbx_fs_stat(c->addr, h->path, true, serve_fsopts(c), &st, NULL, 0, &err);
		if (r < 0) {
			call_answer(c, serve_fs_fail(c, r, "seek", h->path, NULL));
			return r;
		}
		base = (long long)st.size;
	}
	pthread_mutex_lock(&serve_lock);
	if (whence == 1)
		base = (long long)h->offset;
	if (base + o >= 0 && (uint64_t)(base + o) != h->offset)
		h->ra_next = UINT64_MAX; /* a jump: the next read is not in sequence */
	if (base + o >= 0)
		h->offset = (uint64_t)(base + o);
	pthread_mutex_unlock(&serve_lock);
	if (base + o < 0) {
		call_answer(c, serve_fs_fail(c, -EINVAL, "seek", h->path, NULL));
		return -EINVAL;
	}
	call_answer(c, rpc_ok(c->id, json_pack("{s:I}", "position", (json_int_t)(base + o))));
	return 0;
}

int m_file_truncate(struct call *c)
{
	json_t *len = json_object_get(c->params, "len");
	struct job *h = c->job;
	struct sbx_error err;
	int r;

	if (!h->fh_write) {
		call_answer(c, serve_fs_fail(c, EINVAL, "ftruncate", h->path, NULL));
		return -EINVAL;
	}
	if (len && !json_is_null(len) && (!json_is_integer(len) || json_integer_value(len) < 0)) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "fileTruncate: \"len\" must be a length"));
		return -EINVAL;
	}
	pthread_mutex_lock(&serve_lock);
	readahead_drop(h);
	pthread_mutex_unlock(&serve_lock);
	r = sbx_fs_truncate(c->addr, h->path,
			    json_is_integer(len) ? (uint64_t)json_integer_value(len) : 0,
			    serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "ftruncate", h->path, NULL)
			     : rpc_ok(c->id, NULL));
	return r;
}

/* fileSync and fileSyncData: every fileWrite already reached the guest's
 * file before it answered (nothing is buffered here or in the agent);
 * the file still exists is all there is to check. */
int m_file_sync(struct call *c)
{
	struct sbx_error err;
	struct fs_stat st;
	int r;

	r = sbx_fs_stat(c->addr, c->job->path, true, serve_fsopts(c), &st, NULL, 0, &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "fsync", c->job->path, NULL)
			     : rpc_ok(c->id, NULL));
	return r;
}

int m_file_utime(struct call *c)
{
	struct fs_time at, mt;
	struct sbx_error err;
	int r;

	if (serve_parse_date(json_object_get(c->params, "atime"), &at) < 0 ||
	    serve_parse_date(json_object_get(c->params, "mtime"), &mt) < 0) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "fileUtime: atime and mtime must be dates"));
		return -EINVAL;
	}
	r = sbx_fs_utimes(c->addr, c->job->path, &at, &mt, true, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "futime", c->job->path, NULL)
			     : rpc_ok(c->id, NULL));
	return r;
}

/* A handle's lock lives in the guest (fs/lock.c): an agent connection
 * that holds flock and an fcntl lock on the file for as long as it stays
 * open. Lock and unlock calls on one handle take turns (locking). */
static bool lock_begin(struct call *c)
{
	struct job *h = c->job;
	bool ok;

	pthread_mutex_lock(&serve_lock);
	ok = !h->locking && !h->closed;
	if (ok)
		h->locking = true;
	pthread_mutex_unlock(&serve_lock);
	if (!ok)
		call_answer(c, h->closed ? rpc_error_class(c->id, "BadResource", NULL,
							   "Bad resource ID")
					 : serve_fs_fail(c, EBUSY, "flock", h->path, NULL));
	return ok;
}

static struct sbx_conn *lock_take(struct job *h)
{
	struct sbx_conn *held;

	pthread_mutex_lock(&serve_lock);
	held = h->lock;
	h->lock = NULL;
	pthread_mutex_unlock(&serve_lock);
	return held;
}

static void lock_end(struct job *h)
{
	pthread_mutex_lock(&serve_lock);
	h->locking = false;
	pthread_mutex_unlock(&serve_lock);
}

/* fileLock {exclusive}: Deno's FsFile.lock, shared unless exclusive;
 * waits while others hold the file, until the handle or the socket goes
 * (the wait is polled every 250 ms). Asking again for the mode held is
 * a no-op; for the other mode the lock is let go and taken again, which
 * is what flock(2) itself promises (the conversion is not atomic). */
int m_file_lock(struct call *c)
{
	bool ex = json_is_true(json_object_get(c->params, "exclusive"));
	struct sbx_fs_opts o = *serve_fsopts(c);
	struct job *h = c->job;
	struct sbx_conn *held;
	struct sbx_error err;
	bool closed;
	int r = 0;

	if (!lock_begin(c))
		return -EBUSY;
	pthread_mutex_lock(&serve_lock);
	held = h->lock;
	if (held && h->lock_exclusive == ex) {
		h->locking = false;
		pthread_mutex_unlock(&serve_lock);
		call_answer(c, rpc_ok(c->id, NULL));
		return 0;
	}
	pthread_mutex_unlock(&serve_lock);
	if (held)
		r = sbx_fs_unlock(lock_take(h), &err);
	o.cancel = &h->closed;
	if (r == 0)
		r = sbx_fs_lock(c->addr, h->path, ex, &o, &held, &err);
	pthread_mutex_lock(&serve_lock);
	closed = h->closed;
	if (r == 0 && !closed) {
		h->lock = held;
		h->lock_exclusive = ex;
		held = NULL;
	}
	h->locking = false;
	pthread_mutex_unlock(&serve_lock);
	if (r == 0 && held) /* the handle went while the lock came */
		sbx_fs_unlock(held, &err);
	if (closed)
		call_answer(c, rpc_error_class(c->id, "BadResource", NULL, "Bad resource ID"));
	else
		call_answer(c, r < 0 ? serve_fs_fail(c, r, "flock", h->path, NULL)
				     : rpc_ok(c->id, NULL));
	return r;
}

/* fileUnlock (nothing held: nothing to do, as with flock(2)), and
 * fileClose of a locked handle: answered once the guest let go. */
int m_file_unlock(struct call *c)
{
	struct job *h = c->job;
	struct sbx_conn *held;
	struct sbx_error err;
	bool closing = !strcmp(json_string_value(json_object_get(c->params, "$method")),
			       "fileClose");
	int r = 0;

	if (!closing && !lock_begin(c))
		return -EBUSY;
	held = lock_take(h);
	if (held)
		r = sbx_fs_unlock(held, &err);
	if (!closing)
		lock_end(h);
	/* A close answers ok whatever happened: the connection that held
	 * the lock is gone either way, and with it the lock. */
	call_answer(c, r < 0 && !closing ? serve_fs_fail(c, r, "flock", h->path, NULL)
					 : rpc_ok(c->id, NULL));
	return r;
}
