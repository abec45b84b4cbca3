/* sbx serve: the Deno calls (deno.md §5.5) on the guest's `deno`.
 * spawnDeno and spawnDenoRepl are spawns of `deno` (serve/proc.c does the
 * rest: streams, processWait, processKill). A REPL is `deno eval` of a
 * small helper that serves evaluations on a Unix socket named after its
 * pid; denoReplEval/Call/Close each run curl in the guest against that
 * socket and hand the helper's {ok}/{error} envelope to the client.
 * denoHttpWait waits in the guest until the process listens on a TCP
 * port (true) or is gone (false). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/serve.h"

#define DENO_BIN "deno"               /* on the guest's PATH (/usr/local/bin) */
#define DENO_ARGS_MAX 4096
#define REPL_ANSWER_MAX SERVE_READ_MAX

/* The REPL: evaluates as a script in the global scope (node:vm), so a
 * `const` of one eval is seen by the next, as in Deno's REPL; code with
 * a top-level await runs in an async function (an expression's value is
 * its result). Values are awaited and sent as JSON (Map as an object, Set
 * as an array, bigint as a string, undefined as null: the SDK's schema
 * refuses a missing ok); a throw becomes a Deno error object.
 * POST /eval {code}, /call {fn, args}, /close. */
static const char repl_js[] =
	"import vm from 'node:vm';\n"
	"const path = `/tmp/.sbx-deno-repl-${Deno.pid}.sock`;\n"
	"try { Deno.removeSync(path); } catch { /* not there */ }\n"
	"const errorObject = (e) => e instanceof Error\n"
	"  ? { constructorName: e.constructor?.name || 'Error', name: e.name,\n"
	"      message: String(e.message), stack: e.stack ?? null }\n"
	"  : { constructorName: 'Error', message: String(e) };\n"
	"const replacer = (_k, v) => typeof v === 'bigint' ? v.toString()\n"
	"  : v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v] : v;\n"
	"const evaluate = (code) => {\n"
	"  try {\n"
	"    return vm.runInThisContext(code);\n"
	"  } catch (e) {\n"
	"    if (!(e instanceof SyntaxError) || !/await/.test(e.message)) throw e;\n"
	"    try {\n"
	"      return vm.runInThisContext(`(async () => (${code}\\n))()`);\n"
	"    } catch {\n"
	"      return vm.runInThisContext(`(async () => {${code}\\n})()`);\n"
	"    }\n"
	"  }\n"
	"};\n"
	"globalThis.addEventListener('unhandledrejection', (e) => {\n"
	"  e.preventDefault();\n"
	"  console.error(e.reason);\n"
	"});\n"
	"const server = Deno.serve({ path, onListen() {} }, async (req) => {\n"
	"  const what = new URL(req.url).pathname;\n"
	"  if (what === '/close') {\n"
	"    setTimeout(async () => {\n"
	"      await server.shutdown();\n"
	"      try { Deno.removeSync(path); } catch { /* gone */ }\n"
	"      Deno.exit(0);\n"
	"    }, 0);\n"
	"    return new Response('{\"ok\":null}');\n"
	"  }\n"
	"  try {\n"
	"    const q = await req.json();\n"
	"    const v = what === '/call' ? await evaluate(`(${q.fn})`)(...q.args)\n"
	"                               : await evaluate(q.code);\n"
	"    return new Response(JSON.stringify({ ok: v ?? null }, replacer));\n"
	"  } catch (e) {\n"
	"    return new Response(JSON.stringify({ error: errorObject(e) }));\n"
	"  }\n"
	"});\n";

/* Runs in the guest: $1 the REPL's pid, $2 eval|call|close, the request
 * on stdin. Waits (up to 60 s) for the REPL's socket, since the SDK sends
 * its first eval as soon as the spawn is answered; exit 7 (curl's "could
 * not connect") when there is no REPL of that pid. */
static const char repl_client_sh[] =
	"s=/tmp/.sbx-deno-repl-$1.sock; req=$(cat); i=0\n"
	"while [ $i -lt 600 ]; do\n"
	"  if [ -S \"$s\" ]; then\n"
	"    printf '%s' \"$req\" | curl -sS --unix-socket \"$s\" --data-binary @- \"http://repl/$2\"\n"
	"    r=$?; [ $r -ne 7 ] && exit $r\n"
	"  fi\n"
	"  [ -d /proc/$1 ] || exit 7\n"
	"  sleep 0.1; i=$((i + 1))\n"
	"done\n"
	"exit 7\n";

/* Runs in the guest: exits 0 once process $1 listens on a TCP port, 1
 * when it is gone. */
static const char http_wait_sh[] =
	"while [ -d /proc/$1 ]; do\n"
	"  ss -Hltnp 2>/dev/null | grep -q \"pid=$1,\" && exit 0\n"
	"  sleep 0.5\n"
	"done\n"
	"exit 1\n";

static const char *const extensions[] = { "js", "cjs", "mjs", "ts", "cts", "mts", "jsx", "tsx" };

static const char *method_of(struct call *c)
{
	return json_string_value(json_object_get(c->params, "$method"));
}

static char *type_error(struct call *c, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", method_of(c), what);
	return rpc_error_class(c->id, "TypeError", NULL, msg);
}

/* Appends the strings of more (a new reference, dropped) to args. */
static void args_add(json_t *args, json_t *more)
{
	json_array_extend(args, more);
	json_decref(more);
}

/* Appends scriptArgs (strings) to args. */
static int script_args(struct call *c, json_t *args)
{
	json_t *sa = json_object_get(c->params, "scriptArgs"), *v;
	size_t i;

	if (!sa || json_is_null(sa))
		return 0;
	if (!json_is_array(sa) || json_array_size(sa) > DENO_ARGS_MAX)
		return -EINVAL;
	json_array_foreach(sa, i, v) {
		if (!json_is_string(v))
			return -EINVAL;
		json_array_append(args, v);
	}
	return 0;
}

/* watch: Deno's own watcher in the guest: `--watch` (the entrypoint's
 * module graph) or `--watch=A,B` (those paths too). NULL: not a boolean
 * or an array of non-empty strings without commas (Deno's separator). */
static char *watch_flag(json_t *watch)
{
	json_t *v;
	size_t i, n = sizeof("--watch=");
	char *out;

	if (json_is_true(watch) || (json_is_array(watch) && !json_array_size(watch)))
		return strdup("--watch");
	if (!json_is_array(watch) || json_array_size(watch) > DENO_ARGS_MAX)
		return NULL;
	json_array_foreach(watch, i, v) {
		if (!json_is_string(v) || !json_string_length(v) || strchr(json_string_value(v), ','))
			return NULL;
		n += json_string_length(v) + 1;
	}
	out = malloc(n);
	if (!out)
		return NULL;
	strcpy(out, "--watch=");
	json_array_foreach(watch, i, v) {
		if (i)
			strcat(out, ",");
		strcat(out, json_string_value(v));
	}
	return out;
}

/* spawnDeno's and spawnDenoRepl's params become spawn's: `deno run -A
 * ENTRYPOINT ARGS`, `deno eval --ext=EXT CODE -- ARGS` (eval grants every
 * permission, as run -A does) or the REPL helper. */
static int deno_command(struct call *c, bool repl)
{
	const char *entry = json_string_value(json_object_get(c->params, "entrypoint"));
	const char *code = json_string_value(json_object_get(c->params, "code"));
	const char *ext = json_string_value(json_object_get(c->params, "extension"));
	json_t *watch = json_object_get(c->params, "watch");
	json_t *args = json_array();
	char flag[32];
	size_t i;

	if (!args)
		return -ENOMEM;
	if (repl) {
		args_add(args, json_pack("[s,s,s,s]", "eval", "--ext=js", repl_js, "--"));
	} else if (entry && *entry) {
		json_array_append_new(args, json_string("run"));
		if (watch && !json_is_null(watch) && !json_is_false(watch)) {
			char *flag_w = watch_flag(watch);

			if (!flag_w) {
				json_decref(args);
				call_answer(c, type_error(c, "watch must be a boolean or an array of "
							     "paths without commas"));
				return -EINVAL;
			}
			snprintf(flag, sizeof(flag), "w%llu",
				 (unsigned long long)serve_stream_id());
			json_object_set_new(c->params, "$watcherId", json_string(flag));
			args_add(args, json_pack("[s,s]", flag_w, "--no-clear-screen"));
			free(flag_w);
		}
		args_add(args, json_pack("[s,s]", "-A", entry));
	} else if (code) {
		for (i = 0; ext && i < sizeof(extensions) / sizeof(extensions[0]); i++)
			if (!strcmp(ext, extensions[i]))
				break;
		if (!ext || i == sizeof(extensions) / sizeof(extensions[0])) {
			json_decref(args);
			call_answer(c, type_error(c, "extension must be one of js, cjs, mjs, ts, "
						     "cts, mts, jsx, tsx"));
			return -EINVAL;
		}
		snprintf(flag, sizeof(flag), "--ext=%s", ext);
		args_add(args, json_pack("[s,s,s,s]", "eval", flag, code, "--"));
	} else {
		json_decref(args);
		call_answer(c, type_error(c, "an entrypoint or code is needed"));
		return -EINVAL;
	}
	if (script_args(c, args) < 0) {
		json_decref(args);
		call_answer(c, type_error(c, "scriptArgs must be an array of strings"));
		return -EINVAL;
	}
	json_object_set_new(c->params, "command", json_string(DENO_BIN));
	json_object_set_new(c->params, "args", args);
	return 0;
}

int m_spawn_deno(struct call *c)
{
	int r = deno_command(c, false);

	return r < 0 ? r : m_spawn(c);
}

int m_spawn_deno_repl(struct call *c)
{
	int r = deno_command(c, true);

	return r < 0 ? r : m_spawn(c);
}

/* Runs a bash script in the guest as the sandbox's user: args after the
 * script are $1..; request (may be NULL) is its stdin; its stdout lands
 * in *out (malloc'd, NUL-terminated, at most REPL_ANSWER_MAX). */
static int guest_script(struct call *c, const char *script, const char *const *args,
			const char *request, char **out, size_t *outlen, struct sbx_exit *x,
			struct sbx_error *err)
{
	const char *argv[8] = { "bash", "-c", script, "sbx-serve" };
	int in = -1, of = -1, r;
	struct sbx_exec_opts o = { .argv = argv, .stdin_pipe = request != NULL };
	struct stat st;
	size_t k = 4, len = request ? strlen(request) : 0;

	for (size_t i = 0; args[i] && k < 7; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	if (out) {
		*out = NULL;
		of = memfd_create("sbx-serve-deno-out", MFD_CLOEXEC);
		if (of < 0)
			return sbx_fail(err, errno, "memfd_create: %s", strerror(errno));
	}
	if (request) {
		in = memfd_create("sbx-serve-deno-in", MFD_CLOEXEC);
		if (in < 0 || write(in, request, len) != (ssize_t)len || lseek(in, 0, SEEK_SET) < 0) {
			r = sbx_fail(err, errno ? errno : EIO, "the request to the guest: %s",
				     strerror(errno ? errno : EIO));
			goto out;
		}
	}
	if ((r = sbx_run(c->addr, &o, in, of, -1, x, err)) < 0)
		goto out;
	if (out) {
		if (fstat(of, &st) < 0) {
			r = sbx_fail(err, errno, "fstat: %s", strerror(errno));
			goto out;
		}
		if ((size_t)st.st_size > REPL_ANSWER_MAX) {
			r = sbx_fail(err, EFBIG, "the answer is %lld bytes, more than %u",
				     (long long)st.st_size, REPL_ANSWER_MAX);
			goto out;
		}
		*outlen = (size_t)st.st_size;
		*out = malloc(*outlen + 1);
		if (!*out) {
			r = sbx_fail(err, ENOMEM, "out of memory");
			goto out;
		}
		if (pread(of, *out, *outlen, 0) != (ssize_t)*outlen) {
			r = sbx_fail(err, EIO, "reading the answer: %s", strerror(errno));
			free(*out);
			*out = NULL;
			goto out;
		}
		(*out)[*outlen] = '\0';
	}
	r = 0;
out:
	if (in >= 0)
		close(in);
	if (of >= 0)
		close(of);
	return r;
}

static bool pid_param(struct call *c, char pid[16])
{
	json_t *p = json_object_get(c->params, "pid");

	if (!json_is_integer(p) || json_integer_value(p) <= 0 || json_integer_value(p) > 0x7fffffff)
		return false;
	snprintf(pid, 16, "%lld", (long long)json_integer_value(p));
	return true;
}

/* The helper's envelope, checked, as the call's result. */
static char *repl_result(struct call *c, const char *text, size_t len)
{
	json_error_t je;
	json_t *env = json_loadb(text, len, 0, &je), *e, *m;
	char *s;

	if (!json_is_object(env) ||
	    ((e = json_object_get(env, "error")) &&
	     (!json_is_string(json_object_get(e, "constructorName")) ||
	      !json_is_string(json_object_get(e, "message"))))) {
		char msg[256];

		json_decref(env);
		snprintf(msg, sizeof(msg), "%s: the REPL answered something that is not a "
			 "result: %.80s", method_of(c), text);
		return rpc_error_class(c->id, "Error", "EIO", msg);
	}
	m = json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", c->id, "result", env);
	s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

static int repl_request(struct call *c, const char *what, json_t *body)
{
	char pid[16], msg[256], *req = NULL, *out = NULL;
	const char *args[] = { pid, what, NULL };
	struct sbx_error err = { 0 };
	struct sbx_exit x;
	size_t len = 0;
	int r;

	if (!pid_param(c, pid)) {
		json_decref(body);
		call_answer(c, type_error(c, "pid must be a process id"));
		return -EINVAL;
	}
	req = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!req) {
		call_answer(c, rpc_errno(c->id, ENOMEM, "out of memory"));
		return -ENOMEM;
	}
	r = guest_script(c, repl_client_sh, args, req, &out, &len, &x, &err);
	free(req);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s: %s", method_of(c), err.msg);
		call_answer(c, rpc_errno(c->id, r, msg));
	} else if (x.how == EXIT_EXITED && x.code == 7) {
		snprintf(msg, sizeof(msg), "%s: no REPL of pid %s in the sandbox", method_of(c), pid);
		call_answer(c, rpc_errno(c->id, ENOENT, msg));
		r = -ENOENT;
	} else if (x.how != EXIT_EXITED || x.code != 0) {
		snprintf(msg, sizeof(msg), "%s: the REPL of pid %s did not answer (curl: status %d)",
			 method_of(c), pid, sbx_exit_status(&x));
		call_answer(c, rpc_errno(c->id, EIO, msg));
		r = -EIO;
	} else {
		call_answer(c, repl_result(c, out, len));
	}
	free(out);
	return r;
}

int m_deno_repl_eval(struct call *c)
{
	json_t *code = json_object_get(c->params, "code");

	if (!json_is_string(code)) {
		call_answer(c, type_error(c, "code must be a string"));
		return -EINVAL;
	}
	return repl_request(c, "eval", json_pack("{s:O}", "code", code));
}

int m_deno_repl_call(struct call *c)
{
	json_t *fn = json_object_get(c->params, "fn"), *args = json_object_get(c->params, "args");

	if (!json_is_string(fn) || !json_is_array(args)) {
		call_answer(c, type_error(c, "fn must be a string and args an array"));
		return -EINVAL;
	}
	return repl_request(c, "call", json_pack("{s:O,s:O}", "fn", fn, "args", args));
}

int m_deno_repl_close(struct call *c)
{
	return repl_request(c, "close", json_object());
}

int m_deno_http_wait(struct call *c)
{
	char pid[16];
	const char *args[] = { pid, NULL };
	struct sbx_error err = { 0 };
	struct sbx_exit x;
	int r;

	if (!pid_param(c, pid)) {
		call_answer(c, type_error(c, "pid must be a process id"));
		return -EINVAL;
	}
	if ((r = guest_script(c, http_wait_sh, args, NULL, NULL, NULL, &x, &err)) < 0) {
		char msg[256];

		snprintf(msg, sizeof(msg), "denoHttpWait: %s", err.msg);
		call_answer(c, rpc_errno(c->id, r, msg));
		return r;
	}
	call_answer(c, rpc_ok(c->id, json_boolean(x.how == EXIT_EXITED && x.code == 0)));
	return 0;
}
