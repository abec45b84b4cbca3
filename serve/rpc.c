/* sbx serve: JSON-RPC answers in the SDK's envelope (deno.md §3), Deno's
 * error objects for errnos (§6), and the machinery that runs one call on
 * a worker thread and the jobs that carry streams between a worker and
 * the loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "serve/serve.h"

char *serve_b64(const void *data, size_t len)
{
	/* lws wants room beyond the encoded text and its NUL */
	size_t n = 4 * ((len + 2) / 3) + 8;
	char *b = malloc(n);

	if (b && lws_b64_encode_string(data, (int)len, b, (int)n) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

static char *dump(json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	return s;
}

static json_t *reply(json_t *id)
{
	return json_pack("{s:s,s:O}", "jsonrpc", "2.0", "id", id ? id : json_null());
}

char *rpc_ok(json_t *id, json_t *value)
{
	json_t *m = reply(id);

	json_object_set_new(m, "result", json_pack("{s:o}", "ok", value ? value : json_null()));
	return dump(m);
}

char *rpc_error_class(json_t *id, const char *cls, const char *code, const char *msg)
{
	json_t *m = reply(id);
	json_t *e = json_pack("{s:s,s:s}", "constructorName", cls, "message", msg);

	if (code)
		json_object_set_new(e, "code", json_string(code));
	json_object_set_new(m, "result", json_pack("{s:o}", "error", e));
	return dump(m);
}

/* What Deno throws for an aborted call: DOMException "AbortError". */
char *rpc_aborted(json_t *id)
{
	json_t *m = reply(id);

	json_object_set_new(m, "result",
			    json_pack("{s:{s:s,s:s,s:s}}", "error", "constructorName", "DOMException",
				      "name", "AbortError", "message", "The signal has been aborted"));
	return dump(m);
}

char *rpc_errno(json_t *id, int r, const char *msg)
{
	int e = r < 0 ? -r : r;

	return rpc_error_class(id, errno_class(e), errno_symbol(e), msg);
}

char *rpc_fault(json_t *id, int code, const char *msg)
{
	json_t *m = reply(id);

	json_object_set_new(m, "error", json_pack("{s:i,s:s}", "code", code, "message", msg));
	return dump(m);
}

char *rpc_notify(const char *method, json_t *params)
{
	return dump(json_pack("{s:s,s:s,s:o}", "jsonrpc", "2.0", "method", method, "params",
			      params));
}

static const struct {
	int e;
	const char *sym, *cls;
} errnos[] = {
	{ ENOENT, "ENOENT", "NotFound" },
	{ EACCES, "EACCES", "PermissionDenied" },
	{ EPERM, "EPERM", "PermissionDenied" },
	{ EEXIST, "EEXIST", "AlreadyExists" },
	{ EISDIR, "EISDIR", "IsADirectory" },
	{ ENOTDIR, "ENOTDIR", "NotADirectory" },
	{ ELOOP, "ELOOP", "FilesystemLoop" },
	{ EINVAL, "EINVAL", "TypeError" },
	{ ECONNREFUSED, "ECONNREFUSED", "ConnectionRefused" },
	{ ECONNRESET, "ECONNRESET", "ConnectionReset" },
	{ ECONNABORTED, "ECONNABORTED", "ConnectionAborted" },
	{ ENOTCONN, "ENOTCONN", "NotConnected" },
	{ EADDRINUSE, "EADDRINUSE", "AddrInUse" },
	{ EADDRNOTAVAIL, "EADDRNOTAVAIL", "AddrNotAvailable" },
	{ ENETUNREACH, "ENETUNREACH", "NetworkUnreachable" },
	{ EPIPE, "EPIPE", "BrokenPipe" },
	{ EINTR, "EINTR", "Interrupted" },
	{ EAGAIN, "EAGAIN", "WouldBlock" },
	{ ETIMEDOUT, "ETIMEDOUT", "TimedOut" },
	{ ENOTSUP, "ENOTSUP", "NotSupported" },
	{ ENOTEMPTY, "ENOTEMPTY", "Error" },
	{ ENAMETOOLONG, "ENAMETOOLONG", "Error" },
	{ EXDEV, "EXDEV", "Error" },
	{ EBUSY, "EBUSY", "Error" },
	{ EIO, "EIO", "Error" },
	{ ENOSPC, "ENOSPC", "Error" },
	{ EROFS, "EROFS", "Error" },
	{ ENOMEM, "ENOMEM", "Error" },
	{ ETXTBSY, "ETXTBSY", "Error" },
	{ EBADF, "EBADF", "Error" },
	{ EFBIG, "EFBIG", "Error" },
	{ E2BIG, "E2BIG", "Error" },
	{ ESRCH, "ESRCH", "Error" },
	{ ESHUTDOWN, "ESHUTDOWN", "Error" },
	{ EPROTO, "EPROTO", "Error" },
};

const char *errno_class(int e)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].e == e)
			return errnos[i].cls;
	return "Error";
}

const char *errno_symbol(int e)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].e == e)
			return errnos[i].sym;
	return "EIO";
}

/* ---- calls on worker threads ---- */

void call_free(struct call *c)
{
	if (!c)
		return;
	json_decref(c->id);
	json_decref(c->params);
	if (c->job)
		job_put(c->job);
	free(c);
}

void call_answer(struct call *c, char *text)
{
	if (!text)
		return;
	serve_post(EV_SEND, c->conn_id, NULL, text, strlen(text));
	free(text);
}

static void *call_main(void *arg)
{
	struct call *c = arg;

	sbx_set_token(c->token[0] ? c->token : NULL);
	c->fn(c);
	if (c->job && c->job_done) {
		/* Tell the loop the job's thread is gone (it may drop the job). */
		pthread_mutex_lock(&serve_lock);
		c->job->refs++;
		pthread_mutex_unlock(&serve_lock);
		serve_post(EV_DONE, c->conn_id, c->job, NULL, 0);
	}
	call_free(c);
	return NULL;
}

/* One thread per call: libsbx's calls block (connect, request, answer),
 * and rewriting them as state machines for this loop would duplicate the
 * library. A thread costs a small stack; the loop never waits. */
int call_start(struct call *c)
{
	pthread_attr_t a;
	pthread_t t;
	int r;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 512 * 1024);
	r = pthread_create(&t, &a, call_main, c);
	pthread_attr_destroy(&a);
	return -r;
}

/* ---- jobs ---- */

struct job *job_new(uint64_t conn_id)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		free(j);
		return NULL;
	}
	j->refs = 1;
	j->conn_id = conn_id;
	return j;
}

void job_put(struct job *j)
{
	bool last;

	if (!j)
		return;
	pthread_mutex_lock(&serve_lock);
	last = --j->refs == 0;
	pthread_mutex_unlock(&serve_lock);
	if (!last)
		return;
	while (j->in_head) {
		struct in_item *it = j->in_head;

		j->in_head = it->next;
		free(it);
	}
	json_decref(j->exit);
	json_decref(j->waiters);
	free(j->path);
	free(j->ra);
	if (j->lock)
		sbx_close(j->lock); /* the agent releases the lock */
	close(j->efd);
	free(j);
}

void job_kick(struct job *j)
{
	uint64_t one = 1;

	(void)!write(j->efd, &one, sizeof(one));
}

size_t job_push(struct job *j, enum in_kind kind, int sig, const void *data, size_t len)
{
	struct in_item *it = malloc(sizeof(*it) + len);
	size_t n;

	if (!it)
		return SIZE_MAX;
	it->next = NULL;
	it->kind = kind;
	it->sig = sig;
	it->len = len;
	if (len)
		memcpy(it->data, data, len);
	pthread_mutex_lock(&serve_lock);
	if (j->in_tail)
		j->in_tail->next = it;
	else
		j->in_head = it;
	j->in_tail = it;
	j->in_bytes += len;
	n = j->in_bytes;
	pthread_mutex_unlock(&serve_lock);
	job_kick(j);
	return n;
}

struct in_item *job_pop(struct job *j, bool *resume)
{
	struct in_item *it;

	*resume = false;
	pthread_mutex_lock(&serve_lock);
	it = j->in_head;
	if (it) {
		j->in_head = it->next;
		if (!j->in_head)
			j->in_tail = NULL;
		j->in_bytes -= it->len;
		if (j->rx_paused && j->in_bytes < SERVE_IN_HIGH / 2) {
			j->rx_paused = false;
			*resume = true;
		}
	}
	pthread_mutex_unlock(&serve_lock);
	return it;
}

void job_send(struct job *j, char *text)
{
	size_t len;

	if (!text)
		return;
	len = strlen(text);
	pthread_mutex_lock(&serve_lock);
	j->queued += len;
	j->refs++; /* the event's; the loop drops it once written */
	pthread_mutex_unlock(&serve_lock);
	serve_post(EV_SEND, j->conn_id, j, text, len);
	free(text);
}

bool job_cancelled(struct job *j)
{
	bool c;

	pthread_mutex_lock(&serve_lock);
	c = j->cancelled;
	pthread_mutex_unlock(&serve_lock);
	return c;
}

bool job_may_send(struct job *j)
{
	bool ok;

	pthread_mutex_lock(&serve_lock);
	ok = j->queued < SERVE_OUT_HIGH || j->cancelled;
	j->throttled = !ok;
	pthread_mutex_unlock(&serve_lock);
	return ok;
}

void job_stream_set(struct job *j, int slot, uint64_t sid)
{
	pthread_mutex_lock(&serve_lock);
	j->sid[slot] = sid;
	pthread_mutex_unlock(&serve_lock);
}

bool job_stream_cancelled(struct job *j, int slot)
{
	bool c;

	pthread_mutex_lock(&serve_lock);
	c = j->sid_cancelled[slot] || j->cancelled;
	pthread_mutex_unlock(&serve_lock);
	return c;
}

int job_wait(struct job *j, int extra_fd, short extra_events, int ms)
{
	struct pollfd p[2] = { { .fd = j->efd, .events = POLLIN },
			       { .fd = extra_fd, .events = extra_events } };
	uint64_t v;

	if (poll(p, extra_fd >= 0 ? 2 : 1, ms) < 0)
		return 0;
	if (p[0].revents & POLLIN)
		(void)!read(j->efd, &v, sizeof(v));
	return extra_fd >= 0 ? p[1].revents : 0;
}
