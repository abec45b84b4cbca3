/* sbx serve: walk and expandGlob (deno.md §5.3): Deno std's walk over the
 * agent's readdir, one WalkEntry per $sandbox.stream.enqueue, root first,
 * parents before children. expandGlob is the same walk from the glob's
 * fixed leading directories, keeping what the glob's expression matches
 * and skipping what an exclude matches. */
#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "libsbx/sbx_fs.h"
#include "serve/serve.h"

#define WALK_DEPTH_MAX 64
#define WALK_PATTERNS_MAX 64

struct walk {
	struct call *c;
	uint64_t sid;
	json_int_t max_depth; /* remaining levels; < 0: none at all */
	bool files, dirs, links, follow, canon;
	const char *exts[WALK_PATTERNS_MAX];
	size_t nexts;
	regex_t match[WALK_PATTERNS_MAX], skip[WALK_PATTERNS_MAX];
	size_t nmatch, nskip;
	bool has_match;
	struct sbx_error err;
	char msg[512]; /* a pattern's refusal */
};

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && !strcmp(s + a - b, tail);
}

static bool skipped(struct walk *w, const char *path)
{
	for (size_t i = 0; i < w->nskip; i++)
		if (!regexec(&w->skip[i], path, 0, NULL, 0))
			return true;
	return false;
}

/* std's include(): exts, then match, then skip. */
static bool included(struct walk *w, const char *path)
{
	bool ok = w->nexts == 0;

	for (size_t i = 0; i < w->nexts && !ok; i++)
		ok = ends_with(path, w->exts[i]);
	if (!ok)
		return false;
	if (w->has_match) {
		ok = false;
		for (size_t i = 0; i < w->nmatch && !ok; i++)
			ok = !regexec(&w->match[i], path, 0, NULL, 0);
		if (!ok)
			return false;
	}
	return !skipped(w, path);
}

static int emit(struct walk *w, const char *path, const char *name, int type)
{
	struct job *j = w->c->job;
	json_t *e;
	char *text, *b;

	while (!job_may_send(j))
		job_wait(j, -1, 0, 1000);
	if (job_stream_cancelled(j, 0))
		return -ECANCELED;
	e = json_pack("{s:s,s:s,s:b,s:b,s:b}", "path", path, "name", name, "isFile",
		      type == DT_REG, "isDirectory", type == DT_DIR, "isSymlink", type == DT_LNK);
	text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	if (!text)
		return -ENOMEM;
	b = serve_b64(text, strlen(text));
	free(text);
	if (!b)
		return -ENOMEM;
	job_send(j, rpc_notify("$sandbox.stream.enqueue",
			       json_pack("{s:I,s:s}", "streamId", (json_int_t)w->sid, "data", b)));
	free(b);
	return 0;
}

static int collect(void *arg, const struct fs_dirent *d)
{
	json_array_append_new(arg, json_pack("[s,i]", d->name, d->type));
	return json_array_size(arg) > 1000000 ? -E2BIG : 0;
}

static int type_of(uint32_t mode)
{
	return S_ISDIR(mode) ? DT_DIR : S_ISLNK(mode) ? DT_LNK : S_ISREG(mode) ? DT_REG : DT_UNKNOWN;
}

static int walk_dir(struct walk *w, const char *root, const char *name, int type, json_int_t left,
		    int depth);

/* One entry of a directory, as std's loop body. */
static int walk_entry(struct walk *w, const char *child, const char *name, int type,
		      json_int_t left, int depth)
{
	char real[FS_PATH_MAX + 1];
	struct fs_stat st;
	int r;

	if (type == DT_LNK) {
		if (!w->follow)
			return w->links && included(w, child) ? emit(w, child, name, DT_LNK) : 0;
		r = sbx_fs_realpath(w->c->addr, child, real, sizeof(real), serve_fsopts(w->c),
				    &w->err);
		if (r == 0)
			r = sbx_fs_stat(w->c->addr, real, false, serve_fsopts(w->c), &st, NULL, 0,
					&w->err);
		if (r == -ENOENT || r == -ELOOP) /* a dangling link: as std, an error */
			return r;
		if (r < 0)
			return r;
		if (S_ISDIR(st.mode)) {
			const char *p = w->canon ? real : child;
			const char *base = strrchr(p, '/');

			return walk_dir(w, p, base && base[1] ? base + 1 : p, DT_DIR, left - 1,
					depth + 1);
		}
		/* std yields the readDir entry itself: still a link */
		return w->files && included(w, w->canon ? real : child)
			       ? emit(w, w->canon ? real : child, name, DT_LNK)
			       : 0;
	}
	if (type == DT_DIR)
		return walk_dir(w, child, name, DT_DIR, left - 1, depth + 1);
	return w->files && included(w, child) ? emit(w, child, name, type) : 0;
}

/* std's walk(root) for a directory (or the first root of any type). */
static int walk_dir(struct walk *w, const char *root, const char *name, int type, json_int_t left,
		    int depth)
{
	json_t *names, *v;
	size_t i;
	int r = 0;

	if (left < 0)
		return 0;
	if (type == DT_DIR ? w->dirs : type == DT_LNK ? w->links : w->files)
		if (included(w, root) && (r = emit(w, root, name, type)) < 0)
			return r;
	if (type != DT_DIR || left < 1 || skipped(w, root) || depth >= WALK_DEPTH_MAX)
		return 0;
	names = json_array();
	r = sbx_fs_readdir(w->c->addr, root, false, serve_fsopts(w->c), collect, names, &w->err);
	json_array_foreach(names, i, v) {
		const char *entry = json_string_value(json_array_get(v, 0));
		char *child;

		if (r < 0)
			break;
		if (asprintf(&child, "%s%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/",
			     entry) < 0) {
			r = -ENOMEM;
			break;
		}
		r = walk_entry(w, child, entry, (int)json_integer_value(json_array_get(v, 1)), left,
			       depth);
		free(child);
	}
	json_decref(names);
	return r;
}

/* Starts the stream, walks from path, ends the stream. */
static int walk_run(struct walk *w, const char *path)
{
	struct call *c = w->c;
	struct job *j = c->job;
	struct fs_stat st;
	const char *base;
	int r;

	r = sbx_fs_stat(c->addr, path, false, serve_fsopts(c), &st, NULL, 0, &w->err);
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "walk", path, NULL));
		return r;
	}
	w->sid = serve_stream_id();
	job_stream_set(j, 0, w->sid);
	job_send(j, rpc_notify("$sandbox.stream.start",
			       json_pack("{s:I}", "streamId", (json_int_t)w->sid)));
	job_send(j, rpc_ok(c->id, json_pack("{s:I}", "streamId", (json_int_t)w->sid)));
	base = strrchr(path, '/');
	base = base && base[1] ? base + 1 : path;
	r = walk_dir(w, path, base, type_of(st.mode), w->max_depth, 0);
	if (r == -ECANCELED) {
		/* The client cancelled: nothing more on the stream. */
	} else if (r < 0) {
		char msg[1200];

		snprintf(msg, sizeof(msg), "walk %s: %s", path,
			 w->err.msg[0] ? w->err.msg : strerror(-r));
		job_send(j, rpc_notify("$sandbox.stream.error",
				       json_pack("{s:I,s:{s:s,s:s,s:s}}", "streamId",
						 (json_int_t)w->sid, "error", "constructorName",
						 errno_class(-r), "message", msg, "code",
						 errno_symbol(-r))));
	} else {
		job_send(j, rpc_notify("$sandbox.stream.end",
				       json_pack("{s:I}", "streamId", (json_int_t)w->sid)));
	}
	return r;
}

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->nmatch; i++)
		regfree(&w->match[i]);
	for (size_t i = 0; i < w->nskip; i++)
		regfree(&w->skip[i]);
}

/* Compiles one ERE into set; the refusal goes to w->msg. */
static int add_regex(struct walk *w, regex_t *set, size_t *n, const char *ere, bool icase)
{
	int r;

	if (*n >= WALK_PATTERNS_MAX) {
		snprintf(w->msg, sizeof(w->msg), "at most %d patterns", WALK_PATTERNS_MAX);
		return -EINVAL;
	}
	r = regcomp(&set[*n], ere, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
	if (r) {
		char why[200];

		regerror(r, &set[*n], why, sizeof(why));
		snprintf(w->msg, sizeof(w->msg), "the pattern %.200s: %s", ere, why);
		return -EINVAL;
	}
	(*n)++;
	return 0;
}

/* match or skip: [{source, flags}] or null. */
static int js_patterns(struct walk *w, json_t *list, regex_t *set, size_t *n)
{
	size_t i;
	json_t *v;

	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list)) {
		snprintf(w->msg, sizeof(w->msg), "match and skip must be arrays of RegExp");
		return -EINVAL;
	}
	json_array_foreach(list, i, v) {
		const char *src = json_string_value(json_object_get(v, "source"));
		const char *flags = json_string_value(json_object_get(v, "flags"));
		char *ere;
		int r;

		if (!src) {
			snprintf(w->msg, sizeof(w->msg), "a RegExp is {source, flags}");
			return -EINVAL;
		}
		if ((r = serve_js_regex(src, flags ? flags : "", &ere, w->msg, sizeof(w->msg))) < 0)
			return r;
		r = add_regex(w, set, n, ere, flags && strchr(flags, 'i'));
		free(ere);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool opt_bool(json_t *params, const char *key, bool dflt)
{
	json_t *v = json_object_get(params, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int m_walk(struct call *c)
{
	json_t *md = json_object_get(c->params, "maxDepth");
	json_t *exts = json_object_get(c->params, "exts");
	struct walk *w = calloc(1, sizeof(*w));
	const char *path = json_string_value(json_object_get(c->params, "path"));
	char *owned[WALK_PATTERNS_MAX];
	size_t i;
	json_t *v;
	int r = 0;

	if (!w) {
		call_answer(c, rpc_errno(c->id, ENOMEM, "out of memory"));
		return -ENOMEM;
	}
	w->c = c;
	w->max_depth = json_is_integer(md) ? json_integer_value(md)
		       : json_is_real(md) ? (json_int_t)json_real_value(md) : WALK_DEPTH_MAX;
	if (w->max_depth > WALK_DEPTH_MAX)
		w->max_depth = WALK_DEPTH_MAX;
	w->files = opt_bool(c->params, "includeFiles", true);
	w->dirs = opt_bool(c->params, "includeDirs", true);
	w->links = opt_bool(c->params, "includeSymlinks", true);
	w->follow = opt_bool(c->params, "followSymlinks", false);
	w->canon = opt_bool(c->params, "canonicalize", true);
	/* exts: ".ts" or "ts", as std adds the dot */
	json_array_foreach(json_is_array(exts) ? exts : NULL, i, v) {
		const char *e = json_string_value(v);

		if (!e || w->nexts >= WALK_PATTERNS_MAX ||
		    asprintf(&owned[w->nexts], "%s%s", e[0] == '.' ? "" : ".", e) < 0) {
			snprintf(w->msg, sizeof(w->msg), "exts: at most %d strings", WALK_PATTERNS_MAX);
			r = -EINVAL;
			break;
		}
		w->exts[w->nexts] = owned[w->nexts];
		w->nexts++;
	}
	w->has_match = json_is_array(json_object_get(c->params, "match"));
	if (r == 0)
		r = js_patterns(w, json_object_get(c->params, "match"), w->match, &w->nmatch);
	if (r == 0)
		r = js_patterns(w, json_object_get(c->params, "skip"), w->skip, &w->nskip);
	if (!path) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "walk: \"path\" must be a string"));
		r = -EINVAL;
	} else if (r < 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "walk: %s", w->msg);
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL, msg));
	} else {
		r = walk_run(w, path);
	}
	for (i = 0; i < w->nexts; i++)
		free(owned[i]);
	walk_free(w);
	free(w);
	return r;
}

/* The directory a glob's walk starts in: its leading names without a
 * pattern character ("/a/b/x*.c" gives "/a/b"), and how many names follow. */
static void glob_base(const char *glob, bool extended, char *base, size_t n, int *rest,
		      bool *globstar_seen)
{
	const char *s = glob, *last = glob;
	int names = 0;

	*rest = 0;
	*globstar_seen = strstr(glob, "**") != NULL;
	while (*s) {
		const char *end = strchr(s + 1, '/');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		bool magic = false;

		for (size_t i = 0; i < len; i++)
			if (strchr("*?[{\\", s[i]) || (extended && strchr("@+!", s[i]) &&
						     i + 1 < len && s[i + 1] == '('))
				magic = true;
		if (magic)
			break;
		last = s + len;
		s += len;
	}
	snprintf(base, n, "%.*s", (int)(last - glob), glob);
	if (!base[0])
		snprintf(base, n, "/");
	for (; *s; s++)
		if (*s == '/' && s[1] && s[1] != '/')
			names++;
	*rest = names;
}

/* A glob relative to root ("" or "."-prefixed names allowed) made absolute. */
static char *absolute(const char *root, const char *glob)
{
	char *out;

	if (glob[0] == '/')
		return strdup(glob);
	while (glob[0] == '.' && glob[1] == '/')
		glob += 2;
	if (asprintf(&out, "%s%s%s", root, root[strlen(root) - 1] == '/' ? "" : "/", glob) < 0)
		return NULL;
	return out;
}

int m_expand_glob(struct call *c)
{
	const char *glob = json_string_value(json_object_get(c->params, "glob"));
	const char *root = json_string_value(json_object_get(c->params, "root"));
	json_t *exclude = json_object_get(c->params, "exclude");
	bool extended = opt_bool(c->params, "extended", true);
	bool globstar = opt_bool(c->params, "globstar", true);
	bool icase = opt_bool(c->params, "caseInsensitive", false);
	struct walk *w = calloc(1, sizeof(*w));
	char cwd[FS_PATH_MAX + 1], base[FS_PATH_MAX + 1];
	char *abs = NULL, *ere = NULL;
	bool deep;
	int r = 0, rest;
	size_t i;
	json_t *v;

	if (!w) {
		call_answer(c, rpc_errno(c->id, ENOMEM, "out of memory"));
		return -ENOMEM;
	}
	w->c = c;
	if (!glob) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL,
					       "expandGlob: \"glob\" must be a string"));
		free(w);
		return -EINVAL;
	}
	/* Relative globs and roots: from the sandbox's working directory. */
	r = sbx_fs_realpath(c->addr, root ? root : ".", cwd, sizeof(cwd), serve_fsopts(c), &w->err);
	if (r < 0) {
		call_answer(c, serve_fs_fail(c, r, "expandGlob", root ? root : ".", NULL));
		free(w);
		return r;
	}
	w->files = w->links = true;
	w->dirs = opt_bool(c->params, "includeDirs", true);
	w->follow = opt_bool(c->params, "followSymlinks", false);
	w->canon = opt_bool(c->params, "canonicalize", true);
	w->has_match = true;
	abs = absolute(cwd, glob);
	r = abs ? serve_glob_regex(abs, extended, globstar, &ere, w->msg, sizeof(w->msg)) : -ENOMEM;
	if (r == 0)
		r = add_regex(w, w->match, &w->nmatch, ere, icase);
	free(ere);
	json_array_foreach(json_is_array(exclude) ? exclude : NULL, i, v) {
		char *x = json_is_string(v) ? absolute(cwd, json_string_value(v)) : NULL;

		if (r < 0)
			break;
		r = x ? serve_glob_regex(x, extended, globstar, &ere, w->msg, sizeof(w->msg))
		      : -EINVAL;
		if (r == 0)
			r = add_regex(w, w->skip, &w->nskip, ere, icase);
		free(ere);
		ere = NULL;
		free(x);
	}
	if (r < 0) {
		char msg[600];

		snprintf(msg, sizeof(msg), "expandGlob: %s", w->msg[0] ? w->msg : strerror(-r));
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL, msg));
	} else {
		struct fs_stat st;

		glob_base(abs, extended, base, sizeof(base), &rest, &deep);
		w->max_depth = deep && globstar ? WALK_DEPTH_MAX : rest;
		if (sbx_fs_stat(c->addr, base, false, serve_fsopts(c), &st, NULL, 0, &w->err) ==
		    -ENOENT) {
			/* Nothing can match: an empty stream, as std yields nothing. */
			w->max_depth = -1;
			snprintf(base, sizeof(base), "/");
		}
		r = walk_run(w, base);
	}
	free(abs);
	walk_free(w);
	free(w);
	return r;
}
