/* sbx serve: the environment and file-by-path methods (deno.md §5.1,
 * §5.3; file handles are in handles.c, walk and expandGlob in walk.c),
 * each run on its own worker thread as one or a few libsbx calls,
 * answered with the value the SDK's schema wants or a Deno error object
 * built from the agent's errno. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libsbx/sbx_fs.h"
#include "serve/serve.h"

static const char *pstr(struct call *c, const char *key)
{
	return json_string_value(json_object_get(c->params, key));
}

/* Transfers stop when the client aborts the call (libsbx polls cancel). */
const struct sbx_fs_opts *serve_fsopts(struct call *c)
{
	c->fsopts.cancel = c->job && c->job->has_abort ? &c->job->aborted : NULL;
	return &c->fsopts;
}

bool serve_call_aborted(struct call *c)
{
	return c->job && c->job->has_abort && c->job->aborted;
}

/* Deno's message form: "<strerror> (os error N): <op> '<path>'". */
char *serve_fs_fail(struct call *c, int r, const char *op, const char *path, const char *path2)
{
	char msg[PATH_MAX * 2 + 256];
	int e = r < 0 ? -r : r;

	if (path2)
		snprintf(msg, sizeof(msg), "%s (os error %d): %s '%s' -> '%s'", strerror(e), e, op,
			 path, path2);
	else
		snprintf(msg, sizeof(msg), "%s (os error %d): %s '%s'", strerror(e), e, op,
			 path ? path : "");
	return rpc_errno(c->id, e, msg);
}

static char *need(struct call *c, const char *key)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s: \"%s\" must be a string",
		 json_string_value(json_object_get(c->params, "$method")), key);
	return rpc_error_class(c->id, "TypeError", NULL, msg);
}

#define PATH_PARAM(var, key)                                      \
	const char *var = pstr(c, key);                           \
	if (!var) {                                               \
		call_answer(c, need(c, key));                     \
		return -EINVAL;                                   \
	}

/* ---- environment ---- */

struct env_find {
	const char *key;
	size_t klen;
	json_t *out;
};

static void env_one(void *arg, const char *entry)
{
	struct env_find *f = arg;
	const char *eq = strchr(entry, '=');

	if (!eq)
		return;
	if (f->key) {
		if ((size_t)(eq - entry) == f->klen && !strncmp(entry, f->key, f->klen))
			f->out = json_string(eq + 1);
	}
}

static void env_all(void *arg, const char *entry)
{
	struct env_find *f = arg;
	const char *eq = strchr(entry, '=');
	char key[256];

	if (!eq || (size_t)(eq - entry) >= sizeof(key))
		return;
	memcpy(key, entry, (size_t)(eq - entry));
	key[eq - entry] = '\0';
	json_object_set_new(f->out, key, json_string(eq + 1));
}

int m_env_get(struct call *c)
{
	struct env_find f = { .key = pstr(c, "key") };
	struct sbx_error err;
	int r;

	if (!f.key) {
		call_answer(c, need(c, "key"));
		return -EINVAL;
	}
	f.klen = strlen(f.key);
	if ((r = sbx_env_list(c->addr, env_one, &f, &err)) < 0) {
		call_answer(c, rpc_errno(c->id, r, err.msg));
		return r;
	}
	call_answer(c, rpc_ok(c->id, f.out ? f.out : json_null()));
	return 0;
}

int m_env_to_object(struct call *c)
{
	struct env_find f = { .out = json_object() };
	struct sbx_error err;
	int r;

	if ((r = sbx_env_list(c->addr, env_all, &f, &err)) < 0) {
		json_decref(f.out);
		call_answer(c, rpc_errno(c->id, r, err.msg));
		return r;
	}
	call_answer(c, rpc_ok(c->id, f.out));
	return 0;
}

int m_env_set(struct call *c)
{
	const char *key = pstr(c, "key"), *value = pstr(c, "value");
	struct sbx_error err;
	char *entry = NULL;
	int r;

	if (!key || !value) {
		call_answer(c, need(c, !key ? "key" : "value"));
		return -EINVAL;
	}
	if (asprintf(&entry, "%s=%s", key, value) < 0)
		return -ENOMEM;
	{
		const char *entries[] = { entry, NULL };

		r = sbx_env_set(c->addr, entries, &err);
	}
	free(entry);
	call_answer(c, r < 0 ? rpc_errno(c->id, r, err.msg) : rpc_ok(c->id, NULL));
	return r;
}

int m_env_delete(struct call *c)
{
	const char *key = pstr(c, "key");
	struct sbx_error err;
	int r;

	if (!key) {
		call_answer(c, need(c, "key"));
		return -EINVAL;
	}
	{
		const char *names[] = { key, NULL };

		r = sbx_env_unset(c->addr, names, &err);
	}
	call_answer(c, r < 0 ? rpc_errno(c->id, r, err.msg) : rpc_ok(c->id, NULL));
	return r;
}

/* ---- stat ---- */

static json_t *iso_time(const struct fs_time *t)
{
	char s[64];
	struct tm tm;
	time_t sec = (time_t)t->sec;

	gmtime_r(&sec, &tm);
	snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(t->nsec / 1000000) % 1000);
	return json_string(s);
}

json_t *serve_file_info(const struct fs_stat *st)
{
	json_t *v = json_object();

	json_object_set_new(v, "isFile", json_boolean(S_ISREG(st->mode)));
	json_object_set_new(v, "isDirectory", json_boolean(S_ISDIR(st->mode)));
	json_object_set_new(v, "isSymlink", json_boolean(S_ISLNK(st->mode)));
	json_object_set_new(v, "isBlockDevice", json_boolean(S_ISBLK(st->mode)));
	json_object_set_new(v, "isCharDevice", json_boolean(S_ISCHR(st->mode)));
	json_object_set_new(v, "isFifo", json_boolean(S_ISFIFO(st->mode)));
	json_object_set_new(v, "isSocket", json_boolean(S_ISSOCK(st->mode)));
	json_object_set_new(v, "size", json_integer((json_int_t)st->size));
	json_object_set_new(v, "mode", json_integer(st->mode));
	json_object_set_new(v, "dev", json_integer((json_int_t)st->dev));
	json_object_set_new(v, "ino", json_integer((json_int_t)st->ino));
	json_object_set_new(v, "nlink", json_integer((json_int_t)st->nlink));
	json_object_set_new(v, "uid", json_integer(st->uid));
	json_object_set_new(v, "gid", json_integer(st->gid));
	json_object_set_new(v, "rdev", json_integer((json_int_t)st->rdev));
	json_object_set_new(v, "blksize", json_integer(4096));
	json_object_set_new(v, "blocks", json_integer((json_int_t)st->blocks));
	json_object_set_new(v, "mtime", iso_time(&st->mtime));
	json_object_set_new(v, "atime", iso_time(&st->atime));
	json_object_set_new(v, "ctime", iso_time(&st->ctime));
	/* The agent's stat record has no birth time: Deno's fallback. */
	json_object_set_new(v, "birthtime", iso_time(&st->ctime));
	return v;
}

static int do_stat(struct call *c, bool follow)
{
	struct sbx_error err;
	struct fs_stat st;
	int r;
	PATH_PARAM(path, "path");

	r = sbx_fs_stat(c->addr, path, follow, serve_fsopts(c), &st, NULL, 0, &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, follow ? "stat" : "lstat", path, NULL)
			     : rpc_ok(c->id, serve_file_info(&st)));
	return r;
}

int m_stat(struct call *c) { return do_stat(c, true); }
int m_lstat(struct call *c) { return do_stat(c, false); }

/* ---- reading ---- */

/* Reads up to max bytes of path from offset into memory. */
int serve_read_mem(struct call *c, const char *path, uint64_t offset, int64_t length,
		   uint8_t **data, size_t *len, struct sbx_error *err)
{
	int fd = memfd_create("sbx-serve-read", MFD_CLOEXEC);
	struct sbx_xfer x;
	struct stat st;
	int r;

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return sbx_fail(err, errno, "memfd_create: %s", strerror(errno));
	r = sbx_fs_read_fd(c->addr, path, offset, length, fd, serve_fsopts(c), NULL, &x, err);
	if (r < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		r = sbx_fail(err, errno, "fstat: %s", strerror(errno));
		goto out;
	}
	*len = (size_t)st.st_size;
	*data = malloc(*len + 1);
	if (!*data || pread(fd, *data, *len, 0) != (ssize_t)*len) {
		free(*data);
		*data = NULL;
		r = sbx_fail(err, EIO, "cannot read back %s", path);
	}
out:
	close(fd);
	return r;
}

static int do_read(struct call *c, bool text)
{
	struct sbx_error err;
	struct fs_stat st;
	uint8_t *data;
	size_t len;
	int r;
	PATH_PARAM(path, "path");

	r = sbx_fs_stat(c->addr, path, true, serve_fsopts(c), &st, NULL, 0, &err);
	if (r == 0 && S_ISDIR(st.mode))
		r = -EISDIR;
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "readfile", path, NULL));
		return r;
	}
	if (st.size > SERVE_READ_MAX) {
		char msg[PATH_MAX + 200];

		snprintf(msg, sizeof(msg), "sbx serve: %s is %llu bytes, more than readFile "
			 "returns in one message (%u); use fs.download or open/fileRead", path,
			 (unsigned long long)st.size, SERVE_READ_MAX);
		call_answer(c, rpc_errno(c->id, EFBIG, msg));
		return -EFBIG;
	}
	r = serve_read_mem(c, path, 0, -1, &data, &len, &err);
	if (serve_call_aborted(c)) {
		free(data);
		call_answer(c, rpc_aborted(c->id));
		return -ECANCELED;
	}
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "readfile", path, NULL));
		return r;
	}
	if (text) {
		data[len] = '\0';
		call_answer(c, rpc_ok(c->id, json_stringn_nocheck((char *)data, len)));
	} else {
		char *b = serve_b64(data, len);

		call_answer(c, b ? rpc_ok(c->id, json_string(b))
				 : rpc_errno(c->id, ENOMEM, "out of memory"));
		free(b);
	}
	free(data);
	return 0;
}

int m_read_file(struct call *c) { return do_read(c, false); }
int m_read_text_file(struct call *c) { return do_read(c, true); }

/* ---- writing ---- */

static int write_opts(struct call *c, struct sbx_write_opts *w)
{
	json_t *o = json_object_get(c->params, "options");
	json_t *mode = json_object_get(o, "mode");

	memset(w, 0, sizeof(*w));
	if (json_is_true(json_object_get(o, "append")))
		w->flags |= FS_F_APPEND;
	if (json_is_false(json_object_get(o, "create")))
		w->flags |= FS_F_NO_CREATE;
	if (json_is_true(json_object_get(o, "createNew")))
		w->flags |= FS_F_CREATE_NEW;
	if (json_is_integer(mode)) {
		w->set_mode = true;
		w->mode = (uint32_t)json_integer_value(mode) & 07777;
	} else if (c->umask != 022) {
		/* The client's fs.umask for a file this makes; the agent's
		 * own umask (022) otherwise. */
		const char *path = pstr(c, "path");
		struct sbx_error err;
		struct fs_stat st;

		if (path && sbx_fs_stat(c->addr, path, true, serve_fsopts(c), &st, NULL, 0, &err) ==
				    -ENOENT) {
			w->set_mode = true;
			w->mode = 0666 & ~c->umask;
		}
	}
	return 0;
}

/* The body from the client's stream, as the loop hands it over. */
static int write_stream(struct call *c, const char *path, const struct sbx_write_opts *w,
			struct sbx_error *err)
{
	struct sbx_fs_writer *wr = NULL;
	struct job *j = c->job;
	int r;

	if ((r = sbx_fs_writer_open(c->addr, path, w, serve_fsopts(c), &wr, err)) < 0)
		goto drain;
	for (;;) {
		struct in_item *it;
		bool resume;

		while ((it = job_pop(j, &resume))) {
			enum in_kind k = it->kind;

			if (resume)
				serve_post(EV_RESUME, j->conn_id, NULL, NULL, 0);
			if (k == IN_DATA)
				r = sbx_fs_writer_write(wr, it->data, it->len, err);
			free(it);
			if (r < 0) {
				sbx_fs_writer_abort(wr);
				goto drain;
			}
			if (k == IN_EOF)
				return sbx_fs_writer_close(wr, NULL, err);
			if (k == IN_ERROR) {
				sbx_fs_writer_abort(wr);
				return sbx_fail(err, ECANCELED, "the client aborted the upload");
			}
		}
		if (job_cancelled(j)) {
			sbx_fs_writer_abort(wr);
			return sbx_fail(err, ECONNRESET, "the client went away");
		}
		if (serve_call_aborted(c)) {
			sbx_fs_writer_abort(wr);
			r = sbx_fail(err, ECANCELED, "the client aborted the call");
			goto drain;
		}
		job_wait(j, -1, 0, 1000);
	}
drain:
	/* Keep taking the client's data (it does not wait for our answer)
	 * so that a paused socket resumes; the loop drops the rest once the
	 * stream ends. */
	pthread_mutex_lock(&serve_lock);
	j->cancelled = true;
	pthread_mutex_unlock(&serve_lock);
	{
		struct in_item *it;
		bool resume;

		while ((it = job_pop(j, &resume))) {
			if (resume)
				serve_post(EV_RESUME, j->conn_id, NULL, NULL, 0);
			free(it);
		}
	}
	return r;
}

static int do_write(struct call *c, bool text)
{
	json_t *content = json_object_get(c->params, "content");
	struct sbx_write_opts w;
	struct sbx_error err = { 0 };
	int r;
	PATH_PARAM(path, "path");

	write_opts(c, &w);
	if (json_is_integer(json_object_get(c->params, "contentStreamId"))) {
		r = write_stream(c, path, &w, &err);
	} else if (json_is_string(content)) {
		const char *s = json_string_value(content);
		size_t len = json_string_length(content);

		if (text) {
			r = sbx_fs_write_buf(c->addr, s, len, path, &w, serve_fsopts(c), &err);
		} else {
			char *raw = malloc(len + 1);
			int n = raw ? lws_b64_decode_string_len(s, (int)len, raw, (int)len + 1) : -1;

			if (n < 0) {
				free(raw);
				call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
							       "writeFile: content is not base64"));
				return -EINVAL;
			}
			r = sbx_fs_write_buf(c->addr, raw, (size_t)n, path, &w, serve_fsopts(c), &err);
			free(raw);
		}
	} else {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "writeFile: give content or contentStreamId"));
		return -EINVAL;
	}
	if (serve_call_aborted(c))
		call_answer(c, rpc_aborted(c->id));
	else
		call_answer(c, r < 0 ? serve_fs_fail(c, r, "writefile", path, NULL)
				     : rpc_ok(c->id, NULL));
	return r;
}

int m_write_file(struct call *c) { return do_write(c, false); }
int m_write_text_file(struct call *c) { return do_write(c, true); }

/* ---- directories and names ---- */

int m_mkdir(struct call *c)
{
	json_t *o = json_object_get(c->params, "options");
	json_t *mode = json_object_get(o, "mode");
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	/* An explicit mode is exact for the agent: the client's umask
	 * applies here, as mkdir(2) would. */
	r = sbx_fs_mkdir(c->addr, path,
			 (json_is_integer(mode) ? (int)(json_integer_value(mode) & 07777) : 0777) &
				 ~(int)c->umask,
			 json_is_true(json_object_get(o, "recursive")), serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "mkdir", path, NULL) : rpc_ok(c->id, NULL));
	return r;
}

static int dirent_add(void *arg, const struct fs_dirent *d)
{
	json_array_append_new(arg, json_pack("{s:s,s:b,s:b,s:b}", "name", d->name, "isFile",
					     d->type == DT_REG, "isDirectory", d->type == DT_DIR,
					     "isSymlink", d->type == DT_LNK));
	return json_array_size(arg) > 1000000 ? -E2BIG : 0;
}

int m_read_dir(struct call *c)
{
	json_t *list = json_array();
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	r = sbx_fs_readdir(c->addr, path, false, serve_fsopts(c), dirent_add, list, &err);
	if (r < 0) {
		json_decref(list);
		call_answer(c, serve_fs_fail(c, r, "readdir", path, NULL));
		return r;
	}
	call_answer(c, rpc_ok(c->id, list));
	return 0;
}

int m_remove(struct call *c)
{
	json_t *o = json_object_get(c->params, "options");
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	r = sbx_fs_remove(c->addr, path, json_is_true(json_object_get(o, "recursive")), serve_fsopts(c),
			  &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "remove", path, NULL) : rpc_ok(c->id, NULL));
	return r;
}

int m_rename(struct call *c)
{
	struct sbx_error err;
	int r;
	PATH_PARAM(from, "oldPath");
	PATH_PARAM(to, "newPath");

	r = sbx_fs_rename(c->addr, from, to, 0, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "rename", from, to) : rpc_ok(c->id, NULL));
	return r;
}

int m_copy_file(struct call *c)
{
	struct sbx_error err;
	int r;
	PATH_PARAM(from, "fromPath");
	PATH_PARAM(to, "toPath");

	r = sbx_fs_copy(c->addr, from, to, 0, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "copy", from, to) : rpc_ok(c->id, NULL));
	return r;
}

int m_chmod(struct call *c)
{
	json_t *mode = json_object_get(c->params, "mode");
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	if (!json_is_integer(mode)) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL, "chmod: mode must be a number"));
		return -EINVAL;
	}
	r = sbx_fs_chmod(c->addr, path, (uint32_t)json_integer_value(mode) & 07777, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "chmod", path, NULL) : rpc_ok(c->id, NULL));
	return r;
}

int m_chown(struct call *c)
{
	json_t *uid = json_object_get(c->params, "uid"), *gid = json_object_get(c->params, "gid");
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	r = sbx_fs_chown(c->addr, path, json_is_integer(uid) ? json_integer_value(uid) : -1,
			 json_is_integer(gid) ? json_integer_value(gid) : -1, true, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "chown", path, NULL) : rpc_ok(c->id, NULL));
	return r;
}

int m_symlink(struct call *c)
{
	struct sbx_error err;
	int r;
	PATH_PARAM(target, "target");
	PATH_PARAM(path, "path");

	r = sbx_fs_symlink(c->addr, target, path, 0, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "symlink", target, path) : rpc_ok(c->id, NULL));
	return r;
}

int m_link(struct call *c)
{
	struct sbx_error err;
	int r;
	PATH_PARAM(target, "target");
	PATH_PARAM(path, "path");

	r = sbx_fs_link(c->addr, target, path, 0, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "link", target, path) : rpc_ok(c->id, NULL));
	return r;
}

static int do_path_query(struct call *c, bool real)
{
	char out[FS_PATH_MAX + 1];
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	r = real ? sbx_fs_realpath(c->addr, path, out, sizeof(out), serve_fsopts(c), &err)
		 : sbx_fs_readlink(c->addr, path, out, sizeof(out), serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, real ? "realpath" : "readlink", path, NULL)
			     : rpc_ok(c->id, json_string(out)));
	return r;
}

int m_read_link(struct call *c) { return do_path_query(c, false); }
int m_real_path(struct call *c) { return do_path_query(c, true); }

int m_truncate(struct call *c)
{
	json_t *len = json_object_get(c->params, "length");
	struct sbx_error err;
	int r;
	PATH_PARAM(name, "name");

	r = sbx_fs_truncate(c->addr, name, json_is_integer(len) ? (uint64_t)json_integer_value(len) : 0,
			    serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "truncate", name, NULL) : rpc_ok(c->id, NULL));
	return r;
}

static int do_mktemp(struct call *c, bool dir)
{
	json_t *o = json_object_get(c->params, "options");
	const char *d = json_string_value(json_object_get(o, "dir"));
	char out[FS_PATH_MAX + 1];
	struct sbx_error err;
	int r;

	r = sbx_fs_mktemp(c->addr, d, json_string_value(json_object_get(o, "prefix")),
			  json_string_value(json_object_get(o, "suffix")), dir, out, sizeof(out),
			  serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, dir ? "mkdtemp" : "mkstemp", d ? d : "/tmp", NULL)
			     : rpc_ok(c->id, json_string(out)));
	return r;
}

int m_make_temp_dir(struct call *c) { return do_mktemp(c, true); }
int m_make_temp_file(struct call *c) { return do_mktemp(c, false); }

/* ---- times ---- */

/* An ISO-8601 date as the SDK sends it ("2026-12-06T01:02:03.456Z"). */
int serve_parse_date(json_t *v, struct fs_time *t)
{
	const char *s = json_string_value(v);
	struct tm tm = { 0 };
	unsigned ms = 0;
	int n = 0;

	if (json_is_number(v)) { /* seconds, as Deno also takes */
		double d = json_number_value(v);

		t->sec = (int64_t)d;
		t->nsec = (uint32_t)((d - (double)t->sec) * 1e9);
		return 0;
	}
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	if (s[n] == '.')
		sscanf(s + n + 1, "%3u", &ms);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t->sec = (int64_t)timegm(&tm);
	t->nsec = ms * 1000000u;
	return 0;
}

int m_utime(struct call *c)
{
	struct fs_time at, mt;
	struct sbx_error err;
	int r;
	PATH_PARAM(path, "path");

	if (serve_parse_date(json_object_get(c->params, "atime"), &at) < 0 ||
	    serve_parse_date(json_object_get(c->params, "mtime"), &mt) < 0) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "utime: atime and mtime must be dates"));
		return -EINVAL;
	}
	r = sbx_fs_utimes(c->addr, path, &at, &mt, true, serve_fsopts(c), &err);
	call_answer(c, r < 0 ? serve_fs_fail(c, r, "utime", path, NULL) : rpc_ok(c->id, NULL));
	return r;
}
