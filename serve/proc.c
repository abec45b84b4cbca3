/* sbx serve: the `spawn` call (deno.md §5.2). One worker thread per
 * process holds its EXEC connection to the agent: it answers the spawn
 * once the agent says STARTED, turns STDOUT/STDERR frames into
 * $sandbox.stream.enqueue notifications, stops reading from the agent
 * while the socket has SERVE_OUT_HIGH bytes of its output unsent, feeds
 * stdin and signals from the loop, and ends both streams and reports the
 * exit when the agent sends EXIT. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "serve/serve.h"

#define ENV_MAX 1024
#define ARGS_MAX 4096

static const char *const signames[] = {
	[SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",   [SIGQUIT] = "SIGQUIT", [SIGILL] = "SIGILL",
	[SIGTRAP] = "SIGTRAP", [SIGABRT] = "SIGABRT", [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",
	[SIGKILL] = "SIGKILL", [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV", [SIGUSR2] = "SIGUSR2",
	[SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM", [SIGTERM] = "SIGTERM", [SIGCHLD] = "SIGCHLD",
	[SIGCONT] = "SIGCONT", [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP", [SIGTTIN] = "SIGTTIN",
	[SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",   [SIGXCPU] = "SIGXCPU", [SIGXFSZ] = "SIGXFSZ",
	[SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF", [SIGWINCH] = "SIGWINCH",
	[SIGIO] = "SIGIO",     [SIGPWR] = "SIGPWR",   [SIGSYS] = "SIGSYS",
};

const char *proc_signal_name(int sig)
{
	if (sig > 0 && sig < (int)(sizeof(signames) / sizeof(signames[0])) && signames[sig])
		return signames[sig];
	return NULL;
}

int proc_signal_number(const char *name)
{
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (signames[i] && !strcmp(signames[i], name))
			return (int)i;
	return -EINVAL;
}

static char *stream_msg(const char *method, uint64_t sid, const uint8_t *data, size_t len)
{
	json_t *p = json_pack("{s:I}", "streamId", (json_int_t)sid);

	if (data) {
		char *b = serve_b64(data, len);

		if (!b) {
			json_decref(p);
			return NULL;
		}
		json_object_set_new(p, "data", json_string(b));
		free(b);
	}
	return rpc_notify(method, p);
}

static json_t *exit_value(const struct sbx_exit *x)
{
	const char *sig = x->how == EXIT_SIGNALED ? proc_signal_name(x->signal) : NULL;
	json_t *v = json_pack("{s:b,s:i}", "success",
			      x->how == EXIT_EXITED && x->code == 0, "code",
			      sbx_exit_status(x));

	json_object_set_new(v, "signal", sig ? json_string(sig) : json_null());
	json_object_set_new(v, "oom", x->oom ? json_string("high-confidence") : json_null());
	return v;
}

/* The process's options from spawn's params; strings point into params. */
struct spawn_args {
	const char *argv[ARGS_MAX + 2];
	char *envbuf[ENV_MAX + 1];
	struct sbx_exec_opts o;
	bool out_piped, err_piped;
};

static int spawn_args_parse(json_t *params, struct spawn_args *a, char *why, size_t n)
{
	json_t *args = json_object_get(params, "args"), *env = json_object_get(params, "env");
	const char *cmd = json_string_value(json_object_get(params, "command"));
	const char *cwd = json_string_value(json_object_get(params, "cwd"));
	const char *out = json_string_value(json_object_get(params, "stdout"));
	const char *err = json_string_value(json_object_get(params, "stderr"));
	size_t i, k = 0;
	const char *key;
	json_t *v;

	if (!cmd || !*cmd) {
		snprintf(why, n, "spawn: command must be a non-empty string");
		return -EINVAL;
	}
	a->argv[k++] = cmd;
	if (args && !json_is_null(args)) {
		if (!json_is_array(args) || json_array_size(args) > ARGS_MAX) {
			snprintf(why, n, "spawn: args must be an array of at most %d strings",
				 ARGS_MAX);
			return -EINVAL;
		}
		json_array_foreach(args, i, v) {
			if (!json_is_string(v)) {
				snprintf(why, n, "spawn: args[%zu] is not a string", i);
				return -EINVAL;
			}
			a->argv[k++] = json_string_value(v);
		}
	}
	a->argv[k] = NULL;
	k = 0;
	if (env && !json_is_null(env)) {
		if (!json_is_object(env) || json_object_size(env) > ENV_MAX) {
			snprintf(why, n, "spawn: env must be an object of at most %d strings",
				 ENV_MAX);
			return -EINVAL;
		}
		json_object_foreach(env, key, v) {
			if (!json_is_string(v) || !*key || strchr(key, '=')) {
				snprintf(why, n, "spawn: env %s is not NAME: string", key);
				return -EINVAL;
			}
			if (asprintf(&a->envbuf[k], "%s=%s", key, json_string_value(v)) < 0)
				return -ENOMEM;
			k++;
		}
	}
	a->envbuf[k] = NULL;
	a->o.argv = a->argv;
	a->o.env = (const char *const *)a->envbuf;
	a->o.clear_env = json_is_true(json_object_get(params, "clearEnv"));
	a->o.cwd = cwd;
	a->o.stdin_pipe = json_is_integer(json_object_get(params, "stdinStreamId"));
	a->out_piped = !out || strcmp(out, "null") != 0;
	a->err_piped = !err || strcmp(err, "null") != 0;
	a->o.no_stdout = !a->out_piped;
	a->o.no_stderr = !a->err_piped;
	return 0;
}

/* spawnDeno with watch (serve/deno.c): Deno's watcher writes this on
 * stderr each time it restarts the program ("Watcher Restarting! File
 * change detected: PATH", coloured or not); each one becomes a
 * $sandbox.deno.watcher.restart notification. The end of each chunk is
 * kept, since the words may straddle two. */
#define WATCH_MARK "Restarting! File change detected"
struct watch_scan {
	const char *id;              /* NULL: no watcher */
	char tail[sizeof(WATCH_MARK)];
	size_t tail_len;
};

static void watch_scan(struct watch_scan *w, struct job *j, const uint8_t *data, size_t len)
{
	const size_t keep = sizeof(WATCH_MARK) - 2, ml = sizeof(WATCH_MARK) - 1;
	size_t n = w->tail_len + len;
	char *buf = malloc(n), *at, *p;

	if (!buf)
		return;
	memcpy(buf, w->tail, w->tail_len);
	memcpy(buf + w->tail_len, data, len);
	for (p = buf; (at = memmem(p, n - (size_t)(p - buf), WATCH_MARK, ml)); p = at + ml)
		job_send(j, rpc_notify("$sandbox.deno.watcher.restart",
				       json_pack("{s:s}", "watcherId", w->id)));
	/* What may start a mark the next chunk completes (never a whole one). */
	w->tail_len = n - (size_t)(p - buf) < keep ? n - (size_t)(p - buf) : keep;
	memcpy(w->tail, buf + n - w->tail_len, w->tail_len);
	free(buf);
}

static void spawn_args_free(struct spawn_args *a)
{
	for (size_t i = 0; a->envbuf[i]; i++)
		free(a->envbuf[i]);
}

/* Hands the loop the input queued for the process (stdin, signals). */
static int feed(struct call *c, struct sbx_conn *conn, bool *stdin_open, struct sbx_error *err)
{
	struct job *j = c->job;
	struct in_item *it;
	bool resume;
	int r = 0;

	while (buf_len(sbx_txbuf(conn)) < (1u << 20) && (it = job_pop(j, &resume))) {
		if (resume)
			serve_post(EV_RESUME, j->conn_id, NULL, NULL, 0);
		switch (it->kind) {
		case IN_DATA:
			if (*stdin_open)
				r = sbx_exec_stdin(conn, it->data, it->len, err);
			break;
		case IN_EOF:
		case IN_ERROR:
			if (*stdin_open)
				r = sbx_exec_stdin_eof(conn, err);
			*stdin_open = false;
			break;
		case IN_SIGNAL:
			r = sbx_exec_signal(conn, it->sig, err);
			break;
		}
		free(it);
		if (r < 0)
			return r;
	}
	return 0;
}

int m_spawn(struct call *c)
{
	struct job *j = c->job;
	struct spawn_args *a = calloc(1, sizeof(*a));
	uint64_t out_sid = 0, err_sid = 0;
	struct sbx_conn *conn = NULL;
	struct sbx_error err = { 0 };
	struct watch_scan watch = {
		.id = json_string_value(json_object_get(c->params, "$watcherId")),
	};
	bool started = false, stdin_open, want_write = false;
	char why[256];
	int r;

	if (!a) {
		call_answer(c, rpc_errno(c->id, ENOMEM, "spawn: out of memory"));
		return -ENOMEM;
	}
	if ((r = spawn_args_parse(c->params, a, why, sizeof(why))) < 0) {
		call_answer(c, rpc_error_class(c->id, "TypeError", NULL, why));
		goto out;
	}
	stdin_open = a->o.stdin_pipe;
	if (watch.id)
		a->o.no_stderr = false; /* read for the watcher, sent only if piped */
	if ((r = sbx_connect(c->addr, &conn, &err)) < 0 ||
	    (r = sbx_exec_send(conn, &a->o, &err)) < 0 || (r = sbx_flush(conn, &err)) < 0) {
		call_answer(c, rpc_errno(c->id, r, err.msg));
		goto out;
	}
	for (;;) {
		struct sbx_event ev;
		struct frame f;
		short events = 0;
		int rev;

		if ((r = feed(c, conn, &stdin_open, &err)) < 0)
			break;
		if (job_may_send(j))
			events |= POLLIN;
		if (buf_len(sbx_txbuf(conn)))
			events |= POLLOUT;
		rev = job_wait(j, sbx_fd(conn), events, 1000);
		if (job_cancelled(j)) {
			r = -ECONNRESET;
			break;
		}
		if (!(rev & (POLLIN | POLLOUT | POLLHUP | POLLERR)))
			continue;
		if ((r = sbx_pump(conn, &want_write, &err)) < 0)
			break;
		while ((r = sbx_next_frame(conn, &f, &err)) == 1) {
			if ((r = sbx_exec_event(&f, &ev, &err)) < 0)
				break;
			if (ev.kind == SBX_EV_STARTED && !started) {
				json_t *v = json_pack("{s:i}", "pid", (int)ev.pid);
				struct event *e;

				started = true;
				if (a->out_piped) {
					out_sid = serve_stream_id();
					job_stream_set(j, 0, out_sid);
					job_send(j, stream_msg("$sandbox.stream.start", out_sid,
							       NULL, 0));
				}
				if (a->err_piped) {
					err_sid = serve_stream_id();
					job_stream_set(j, 1, err_sid);
					job_send(j, stream_msg("$sandbox.stream.start", err_sid,
							       NULL, 0));
				}
				json_object_set_new(v, "stdoutStreamId",
						    out_sid ? json_integer((json_int_t)out_sid)
							    : json_null());
				json_object_set_new(v, "stderrStreamId",
						    err_sid ? json_integer((json_int_t)err_sid)
							    : json_null());
				/* spawnDeno's answer has one more key (serve/deno.c). */
				if (!strcmp(json_string_value(json_object_get(c->params, "$method")),
					    "spawnDeno"))
					json_object_set_new(v, "watcherId",
							    watch.id ? json_string(watch.id)
								     : json_null());
				/* The loop registers the pid before the answer goes out. */
				pthread_mutex_lock(&serve_lock);
				j->pid = ev.pid;
				pthread_mutex_unlock(&serve_lock);
				e = serve_event_new(EV_PROC, j->conn_id, NULL, 0);
				if (e) {
					e->job = j;
					pthread_mutex_lock(&serve_lock);
					j->refs++;
					pthread_mutex_unlock(&serve_lock);
					serve_post_event(e);
				}
				job_send(j, rpc_ok(c->id, v));
			} else if (ev.kind == SBX_EV_STDOUT || ev.kind == SBX_EV_STDERR) {
				int slot = ev.kind == SBX_EV_STDOUT ? 0 : 1;
				uint64_t sid = slot == 0 ? out_sid : err_sid;

				if (slot == 1 && watch.id && ev.len)
					watch_scan(&watch, j, ev.data, ev.len);
				/* A stream the client cancelled: drain, send nothing. */
				if (sid && ev.len && !job_stream_cancelled(j, slot))
					job_send(j, stream_msg("$sandbox.stream.enqueue", sid,
							       ev.data, ev.len));
			} else if (ev.kind == SBX_EV_EXIT) {
				struct event *e;

				if (!started) {
					/* Not started (no such program, not executable). */
					r = ev.exit.code == 126 ? -EACCES : -ENOENT;
					snprintf(why, sizeof(why), "%s (os error %d): spawn '%s'",
						 ev.exit.msg[0] ? ev.exit.msg : strerror(-r), -r,
						 a->argv[0]);
					call_answer(c, rpc_errno(c->id, r, why));
					r = 0;
					goto out;
				}
				/* Not on a stream the client cancelled: the SDK
				 * throws closing a stream twice. */
				if (out_sid && !job_stream_cancelled(j, 0))
					job_send(j, stream_msg("$sandbox.stream.end", out_sid, NULL, 0));
				if (err_sid && !job_stream_cancelled(j, 1))
					job_send(j, stream_msg("$sandbox.stream.end", err_sid, NULL, 0));
				e = serve_event_new(EV_PROC, j->conn_id, NULL, 0);
				if (e) {
					e->job = j;
					e->exit = exit_value(&ev.exit);
					pthread_mutex_lock(&serve_lock);
					j->refs++;
					pthread_mutex_unlock(&serve_lock);
					serve_post_event(e);
				}
				r = 0;
				goto out;
			}
		}
		if (r < 0)
			break;
	}
	/* The agent connection failed or the socket went away. */
	if (!started) {
		call_answer(c, rpc_errno(c->id, r, err.msg[0] ? err.msg : "spawn: connection lost"));
	} else {
		struct event *e;
		char msg[1200];

		snprintf(msg, sizeof(msg), "sbx serve: lost the process: %s",
			 err.msg[0] ? err.msg : strerror(-r));
		if (out_sid && !job_stream_cancelled(j, 0))
			job_send(j, rpc_notify("$sandbox.stream.error",
					       json_pack("{s:I,s:{s:s,s:s}}", "streamId",
							 (json_int_t)out_sid, "error",
							 "constructorName", "Error", "message",
							 msg)));
		if (err_sid && !job_stream_cancelled(j, 1))
			job_send(j, rpc_notify("$sandbox.stream.error",
					       json_pack("{s:I,s:{s:s,s:s}}", "streamId",
							 (json_int_t)err_sid, "error",
							 "constructorName", "Error", "message",
							 msg)));
		e = serve_event_new(EV_PROC, j->conn_id, msg, strlen(msg));
		if (e) {
			e->job = j;
			/* processWait answers an error, not an exit status */
			e->exit = json_pack("{s:s}", "$lost", msg);
			pthread_mutex_lock(&serve_lock);
			j->refs++;
			pthread_mutex_unlock(&serve_lock);
			serve_post_event(e);
		}
	}
out:
	sbx_close(conn);
	spawn_args_free(a);
	free(a);
	return r;
}
