/* sbx serve: the libwebsockets loop. It checks tokens, upgrades
 * /api/v3/sandboxes/create and /api/v3/sandbox/<id>/connect to
 * WebSockets that carry the SDK's JSON-RPC, answers the REST calls (kill,
 * extend, list), owns the tables of sandboxes, sockets, jobs and client
 * streams, and applies what the worker threads post (deno.md §2-§4, §9). */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "launcher/image.h"
#include "lib/util.h"
#include "serve/dash.h"
#include "serve/serve.h"

#define CONFIG_MAX (192 * 1024)  /* the decoded x-deno-sandbox-config */
#define BODY_MAX (64 * 1024)     /* REST bodies */
#define STREAMS_MAX 1024         /* unclaimed client streams per socket */
#define EXTEND_MAX_S 1800        /* one extendTimeout call, as the README says */

pthread_mutex_t serve_lock = PTHREAD_MUTEX_INITIALIZER;

enum { PAUSE_BOOT = 1, PAUSE_INPUT = 2 };

struct outmsg {
	struct outmsg *next;
	struct job *job;
	size_t len;
	unsigned char data[]; /* LWS_PRE + len */
};

struct held {
	struct held *next;
	size_t len;
	char text[];
};

/* A client stream (stdin, an upload body) by its id on one socket. */
struct cstream {
	struct cstream *next;
	json_int_t id;
	struct job *job;            /* claimed by */
	struct in_item *head, *tail;
	size_t bytes;
	bool ended, failed;
};

/* One WebSocket. */
struct conn {
	struct conn *next;
	uint64_t id;
	struct lws *wsi;
	struct sbox *box;
	bool established, ready, closing;
	int close_code;
	char close_reason[120];
	unsigned paused;
	struct sbx_conn *session;
	char *rx;
	size_t rxlen, rxcap;
	struct held *held_head, *held_tail;
	unsigned nheld;
	struct outmsg *out_head, *out_tail;
	struct cstream *cstreams;
	size_t unclaimed;
	unsigned nstreams;
	struct job *jobs;
	uint64_t next_fh;
};

/* One REST request waiting for a worker. */
struct httpreq {
	struct httpreq *next;
	uint64_t id;
	struct lws *wsi;
	int method;                 /* 'G', 'P' (POST), 'A' (PATCH), 'D' */
	char path[256];
	char owner[SERVE_OWNER_LEN + 1];
	bool authed;
	char *body;
	size_t blen;
	bool answered;
	int status;
	char *reply;
};

struct pss {
	struct conn *c;
	struct httpreq *h;
	struct dash_req *d;         /* a request of the dashboard (serve/dash.c) */
};

static struct {
	struct serve_opts o;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct event *ev_head, *ev_tail;
	struct sbox *boxes;
	struct conn *conns;
	struct httpreq *reqs;
	uint64_t next_id;
	uint64_t next_stream;
	volatile sig_atomic_t stop;
	bool trace;                 /* $SBX_SERVE_TRACE: log every message */
} S;

/* ---- events from workers ---- */

struct event *serve_event_new(enum ev_kind kind, uint64_t conn_id, const char *text, size_t len)
{
	struct event *e = calloc(1, sizeof(*e) + len + 1);

	if (!e)
		return NULL;
	e->kind = kind;
	e->conn_id = conn_id;
	e->len = len;
	if (text)
		memcpy(e->text, text, len);
	return e;
}

void serve_post_event(struct event *e)
{
	pthread_mutex_lock(&serve_lock);
	if (S.ev_tail)
		S.ev_tail->next = e;
	else
		S.ev_head = e;
	S.ev_tail = e;
	/* Under the lock: serve_run clears ctx before destroying it. */
	if (S.ctx)
		lws_cancel_service(S.ctx);
	pthread_mutex_unlock(&serve_lock);
}

void serve_post(enum ev_kind kind, uint64_t conn_id, struct job *job, const char *text, size_t len)
{
	struct event *e = serve_event_new(kind, conn_id, text, len);

	if (!e) {
		lwsl_err("sbx serve: out of memory posting an event\n");
		if (job)
			job_put(job);
		return;
	}
	e->job = job;
	serve_post_event(e);
}

uint64_t serve_stream_id(void)
{
	uint64_t id;

	pthread_mutex_lock(&serve_lock);
	id = S.next_stream++;
	pthread_mutex_unlock(&serve_lock);
	return id;
}

/* ---- helpers ---- */

static struct conn *conn_find(uint64_t id)
{
	for (struct conn *c = S.conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static struct sbox *box_find(const char *id, const char *owner)
{
	for (struct sbox *b = S.boxes; b; b = b->next)
		if (!strcmp(b->id, id) && !strcmp(b->owner, owner) && b->state != SBOX_DEAD)
			return b;
	return NULL;
}

static char *json_text(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *json_text(const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *j = json_pack("{s:s,s:s}", "code", code, "message", msg);
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

/* A whole HTTP answer, JSON body; returns what the callback returns. */
static int http_write(struct lws *wsi, int status, const char *body)
{
	size_t len = strlen(body);
	unsigned char *buf = malloc(LWS_PRE + 2048 + len);
	unsigned char *start, *p, *end;
	int r = -1;

	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = start + 2048;
	if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		goto out;
	memcpy(buf + LWS_PRE, body, len);
	if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		goto out;
	r = lws_http_transaction_completed(wsi) ? -1 : 0;
out:
	free(buf);
	return r;
}

static int http_answer(struct lws *wsi, int status, char *body)
{
	int r = http_write(wsi, status, body ? body : "{}");

	free(body);
	return r;
}

/* The owner hash of the request's bearer token, or -EACCES. */
static int auth(struct lws *wsi, char owner[SERVE_OWNER_LEN + 1])
{
	char h[512];
	int n = lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION);

	if (n <= 7 || strncasecmp(h, "Bearer ", 7))
		return dash_auth(wsi, owner); /* a dashboard session, or -EACCES */
	return tokens_check(h + 7, owner);
}

static bool box_alive(struct sbox *b)
{
	return S.o.agent || sandbox_alive(&b->sb);
}

static void id_new(char out[SERVE_ID_LEN + 1])
{
	static const char alpha[] = "0123456789abcdefghjkmnpqrstuvwxyz";
	uint8_t raw[20];

	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (uint8_t)(rand() ^ (int)time(NULL));
	memcpy(out, "sbx_loc_", 8);
	for (int i = 0; i < 20; i++)
		out[8 + i] = alpha[raw[i] % 32];
	out[SERVE_ID_LEN] = '\0';
}

static bool id_shape_ok(const char *s)
{
	if (strlen(s) != SERVE_ID_LEN || strncmp(s, "sbx_", 4) || s[7] != '_')
		return false;
	for (int i = 8; i < SERVE_ID_LEN; i++)
		if (!strchr("0123456789abcdefghjkmnpqrstuvwxyz", s[i]))
			return false;
	return true;
}

/* ---- sandboxes ---- */

struct sbox *serve_boxes(void)
{
	return S.boxes;
}

/* Forgets dead sandboxes nothing refers to any more. */
static void box_gc(void)
{
	struct sbox **pp = &S.boxes;

	while (*pp) {
		struct sbox *b = *pp;

		if (b->state == SBOX_DEAD && b->nconns == 0 && !b->boot_pending) {
			*pp = b->next;
			json_decref(b->labels);
			free(b);
		} else {
			pp = &b->next;
		}
	}
}

struct boot {
	struct sbox *box;
	struct sandbox_opts o;
	char **labels;
	char **allow;
	char **secrets;               /* NAME=HOSTS:VALUE: wiped when freed */
	json_t *labels_json;
};

/* The SDK's secrets, { NAME: { hosts: [HOST...], value } }, as sbx
 * create's NAME=HOSTS:VALUE (the launcher checks them: docs/protocol/secrets.md). */
static int boot_secrets(struct boot *b, json_t *secrets, char **body)
{
	const char *name;
	json_t *one;
	size_t k = 0;

	if (!json_is_object(secrets) || json_object_size(secrets) > 64) {
		*body = json_text("INVALID_SECRETS", "secrets must be an object of %s", "{ hosts, value }");
		return -EINVAL;
	}
	b->secrets = calloc(json_object_size(secrets) + 1, sizeof(char *));
	if (!b->secrets)
		return -ENOMEM;
	json_object_foreach(secrets, name, one) {
		json_t *hosts = json_object_get(one, "hosts"), *value = json_object_get(one, "value"), *h;
		char list[2048] = "";
		size_t i, at = 0;

		if (!json_is_array(hosts) || !json_array_size(hosts) || !json_is_string(value) ||
		    strlen(json_string_value(value)) != json_string_length(value)) {
			*body = json_text("INVALID_SECRETS", "secrets.%s: expected { hosts: [names], "
					  "value: string }", name);
			return -EINVAL;
		}
		json_array_foreach(hosts, i, h) {
			if (!json_is_string(h) || strpbrk(json_string_value(h), ",:") ||
			    at + json_string_length(h) + 2 > sizeof(list)) {
				*body = json_text("INVALID_SECRETS", "secrets.%s.hosts[%zu]: not a host "
						  "name", name, i);
				return -EINVAL;
			}
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", i ? "," : "",
					       json_string_value(h));
		}
		if (asprintf(&b->secrets[k++], "%s=%s:%s", name, list, json_string_value(value)) < 0)
			return -ENOMEM;
	}
	b->o.secrets = (const char *const *)b->secrets;
	return 0;
}

static void boot_free(struct boot *b)
{
	for (size_t i = 0; b->labels && b->labels[i]; i++)
		free(b->labels[i]);
	for (size_t i = 0; b->allow && b->allow[i]; i++)
		free(b->allow[i]);
	for (size_t i = 0; b->secrets && b->secrets[i]; i++) {
		explicit_bzero(b->secrets[i], strlen(b->secrets[i]));
		free(b->secrets[i]);
	}
	free(b->secrets);
	free(b->labels);
	free(b->allow);
	json_decref(b->labels_json);
	free(b);
}

static void *boot_main(void *arg)
{
	struct boot *b = arg;
	struct sbx_error err = { 0 };
	struct event *e;
	int r;

	if (S.o.agent) {
		/* Development: no VM; the agent at --agent plays every sandbox. */
		struct sandbox *sb = &b->box->sb;

		memset(sb, 0, sizeof(*sb));
		str_copy(sb->id, sizeof(sb->id), b->box->id);
		str_copy(sb->addr, sizeof(sb->addr), S.o.agent);
		sb->created = (uint64_t)time(NULL);
		sb->session = b->o.session;
		sb->lifetime_s = b->o.lifetime_s;
		sb->memory_mib = b->o.memory_mib;
		r = 0;
	} else {
		r = sandbox_create(&b->o, &b->box->sb, &err);
	}
	e = serve_event_new(EV_BOOTED, 0, err.msg, r < 0 ? strlen(err.msg) : 0);
	if (e) {
		e->box = b->box;
		e->status = r;
		serve_post_event(e);
	}
	boot_free(b);
	return NULL;
}

static int thread_start(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int r;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 1024 * 1024);
	r = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -r;
}

static bool label_key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > SANDBOX_LABEL_KEY_MAX || !strcmp(k, SERVE_OWNER_LABEL))
		return false;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && !strchr("_.-", *k))
			return false;
	return true;
}

/* Checks the create config; on success *out is a boot to start. The
 * refusal goes to status/body. */
static int config_parse(const char *raw, size_t rawlen, const char *owner, struct boot **out,
			int *status, char **body)
{
	char *latin = NULL, *utf8 = NULL;
	json_error_t je;
	json_t *cfg = NULL, *v, *labels, *allow;
	struct boot *b = NULL;
	const char *key;
	size_t i, k = 0;
	int n;

	*status = 400;
	latin = malloc(rawlen + 1);
	if (!latin)
		goto oom;
	n = lws_b64_decode_string_len(raw, (int)rawlen, latin, (int)rawlen + 1);
	if (n < 0) {
		*body = json_text("INVALID_CONFIG", "x-deno-sandbox-config is not base64");
		goto fail;
	}
	/* btoa() made one byte per character: read the bytes as Latin-1. */
	utf8 = malloc((size_t)n * 2 + 1);
	if (!utf8)
		goto oom;
	for (int s = 0; s < n; s++) {
		unsigned char ch = (unsigned char)latin[s];

		if (ch < 0x80) {
			utf8[k++] = (char)ch;
		} else {
			utf8[k++] = (char)(0xc0 | (ch >> 6));
			utf8[k++] = (char)(0x80 | (ch & 0x3f));
		}
	}
	cfg = json_loadb(utf8, k, 0, &je);
	if (!json_is_object(cfg)) {
		*body = json_text("INVALID_CONFIG", "x-deno-sandbox-config is not a JSON object: %s",
				  je.text);
		goto fail;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		goto oom;
	b->o.image = S.o.image;
	b->o.session_grace_s = S.o.session_grace_s;
	v = json_object_get(cfg, "memory_mb");
	b->o.memory_mib = 1280;
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < SANDBOX_MEM_MIN ||
		    json_integer_value(v) > SANDBOX_MEM_MAX) {
			*body = json_text("INVALID_MEMORY", "memory_mb must be %d to %d", SANDBOX_MEM_MIN,
					  SANDBOX_MEM_MAX);
			goto fail;
		}
		b->o.memory_mib = (uint64_t)json_integer_value(v);
	}
	v = json_object_get(cfg, "stop_at_ms");
	b->o.session = true;
	if (v && !json_is_null(v)) {
		json_int_t now_ms = (json_int_t)time(NULL) * 1000, at;

		if (!json_is_integer(v) || (at = json_integer_value(v)) <= now_ms) {
			*body = json_text("INVALID_TIMEOUT", "stop_at_ms must be a time in the future");
			goto fail;
		}
		b->o.session = false;
		b->o.lifetime_s = (uint64_t)(at - now_ms + 999) / 1000;
		if (b->o.lifetime_s > 24 * 3600) {
			*body = json_text("INVALID_TIMEOUT", "a sandbox lives at most 24 hours");
			goto fail;
		}
	}
	v = json_object_get(cfg, "volumes");
	if ((v && json_array_size(v) > 0) || json_object_get(cfg, "root")) {
		*status = 501;
		*body = json_text("NOT_SUPPORTED", "sbx serve: volumes and root are not "
				  "available yet");
		goto fail;
	}
	labels = json_object_get(cfg, "labels");
	if (labels && !json_is_object(labels)) {
		*body = json_text("INVALID_LABELS", "labels must be an object of strings");
		goto fail;
	}
	if (json_object_size(labels) >= SANDBOX_LABELS_MAX) {
		*body = json_text("INVALID_LABELS", "at most %d labels", SANDBOX_LABELS_MAX - 1);
		goto fail;
	}
	b->labels = calloc(json_object_size(labels) + 2, sizeof(char *));
	if (!b->labels)
		goto oom;
	k = 0;
	json_object_foreach(labels, key, v) {
		if (!label_key_ok(key) || !json_is_string(v) ||
		    json_string_length(v) > SANDBOX_LABEL_VALUE_MAX ||
		    strchr(json_string_value(v), '\n')) {
			*body = json_text("INVALID_LABELS", "label %s: keys have 1-%d letters, digits, "
					  "'_', '.' and '-'; values are strings of at most %d bytes",
					  key, SANDBOX_LABEL_KEY_MAX, SANDBOX_LABEL_VALUE_MAX);
			goto fail;
		}
		if (asprintf(&b->labels[k++], "%s=%s", key, json_string_value(v)) < 0)
			goto oom;
	}
	if (asprintf(&b->labels[k++], "%s=%s", SERVE_OWNER_LABEL, owner) < 0)
		goto oom;
	b->o.labels = (const char *const *)b->labels;
	b->labels_json = labels ? json_deep_copy(labels) : json_object();
	allow = json_object_get(cfg, "allow_net");
	if (allow && !json_is_null(allow)) {
		if (!json_is_array(allow) || json_array_size(allow) > 256) {
			*body = json_text("INVALID_ALLOW_NET", "allow_net must be an array of at most "
					  "256 strings");
			goto fail;
		}
		b->allow = calloc(json_array_size(allow) + 1, sizeof(char *));
		if (!b->allow)
			goto oom;
		json_array_foreach(allow, i, v) {
			if (!json_is_string(v)) {
				*body = json_text("INVALID_ALLOW_NET", "allow_net[%zu] is not a string",
						  i);
				goto fail;
			}
			b->allow[i] = strdup(json_string_value(v));
		}
		if (json_array_size(allow) > 0)
			b->o.allow_net = (const char *const *)b->allow;
	}
	v = json_object_get(cfg, "secrets");
	if (v && !json_is_null(v)) {
		int r = boot_secrets(b, v, body);

		if (r == -ENOMEM)
			goto oom;
		if (r < 0)
			goto fail;
	}
	json_decref(cfg);
	free(latin);
	free(utf8);
	*out = b;
	return 0;
oom:
	*status = 500;
	*body = json_text("INTERNAL", "out of memory");
fail:
	if (b)
		boot_free(b);
	json_decref(cfg);
	free(latin);
	free(utf8);
	return -EINVAL;
}

/* ---- sockets: sending ---- */

static void conn_queue(struct conn *c, const char *text, size_t len, struct job *job)
{
	struct outmsg *m = malloc(sizeof(*m) + LWS_PRE + len);

	if (!m) {
		lwsl_err("sbx serve: out of memory queueing %zu bytes\n", len);
		return;
	}
	m->next = NULL;
	m->job = job;
	m->len = len;
	memcpy(m->data + LWS_PRE, text, len);
	if (c->out_tail)
		c->out_tail->next = m;
	else
		c->out_head = m;
	c->out_tail = m;
	lws_callback_on_writable(c->wsi);
}

static void conn_send(struct conn *c, char *text)
{
	if (text) {
		conn_queue(c, text, strlen(text), NULL);
		free(text);
	}
}

/* The job's output left the queue (written or dropped). */
static void job_sent(struct job *j, size_t len)
{
	bool kick;

	if (!j)
		return;
	pthread_mutex_lock(&serve_lock);
	j->queued -= len;
	kick = j->throttled && j->queued < SERVE_OUT_HIGH / 2;
	pthread_mutex_unlock(&serve_lock);
	if (kick)
		job_kick(j);
	job_put(j);
}

static void conn_close(struct conn *c, int code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	str_copy(c->close_reason, sizeof(c->close_reason), reason);
	lws_callback_on_writable(c->wsi);
}

static void conn_flow(struct conn *c)
{
	if (c->established)
		lws_rx_flow_control(c->wsi, c->paused ? 0 : 1);
}

/* ---- sockets: streams from the client ---- */

static struct cstream *cstream_find(struct conn *c, json_int_t id)
{
	for (struct cstream *s = c->cstreams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void cstream_drop(struct conn *c, struct cstream *s)
{
	struct cstream **pp = &c->cstreams;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	while (s->head) {
		struct in_item *it = s->head;

		s->head = it->next;
		free(it);
	}
	c->unclaimed -= s->bytes;
	c->nstreams--;
	if (s->job)
		job_put(s->job);
	free(s);
}

/* Hands input to a job; pauses the socket when the job is behind. */
static void input_push(struct conn *c, struct job *j, enum in_kind kind, const void *d, size_t n)
{
	size_t waiting = job_push(j, kind, 0, d, n);

	if (waiting > SERVE_IN_HIGH && !(c->paused & PAUSE_INPUT)) {
		pthread_mutex_lock(&serve_lock);
		j->rx_paused = true;
		pthread_mutex_unlock(&serve_lock);
		c->paused |= PAUSE_INPUT;
		conn_flow(c);
	}
}

/* A call names a client stream: what arrived so far goes to the job. */
static int cstream_claim(struct conn *c, json_int_t id, struct job *j)
{
	struct cstream *s = cstream_find(c, id);
	bool ended;

	if (!s || s->job || s->failed)
		return -ENOENT;
	pthread_mutex_lock(&serve_lock);
	j->refs++;
	pthread_mutex_unlock(&serve_lock);
	s->job = j;
	while (s->head) {
		struct in_item *it = s->head;

		s->head = it->next;
		input_push(c, j, it->kind, it->data, it->len);
		c->unclaimed -= it->len;
		s->bytes -= it->len;
		free(it);
	}
	s->tail = NULL;
	ended = s->ended;
	if (ended)
		cstream_drop(c, s);
	return 0;
}

static void stream_cancel(struct conn *c, json_int_t id, const char *why)
{
	conn_send(c, rpc_notify("$sandbox.stream.cancel",
				json_pack("{s:I,s:{s:s,s:s}}", "streamId", id, "reason",
					  "constructorName", "Error", "message", why)));
}

static void on_stream(struct conn *c, const char *method, json_t *params)
{
	json_t *jid = json_object_get(params, "streamId");
	json_int_t id = json_integer_value(jid);
	struct cstream *s;

	if (!json_is_integer(jid))
		return;
	if (!strcmp(method, "$sandbox.stream.cancel")) {
		/* A server stream the client stops reading: its job sends
		 * nothing more on it. */
		for (struct job *j = c->jobs; j; j = j->next) {
			pthread_mutex_lock(&serve_lock);
			for (int k = 0; k < 2; k++)
				if (j->sid[k] && j->sid[k] == (uint64_t)id)
					j->sid_cancelled[k] = true;
			pthread_mutex_unlock(&serve_lock);
		}
		return;
	}
	if (!strcmp(method, "$sandbox.stream.start")) {
		if (cstream_find(c, id) || c->nstreams >= STREAMS_MAX) {
			stream_cancel(c, id, "sbx serve: too many open streams on this socket");
			return;
		}
		s = calloc(1, sizeof(*s));
		if (!s)
			return;
		s->id = id;
		s->next = c->cstreams;
		c->cstreams = s;
		c->nstreams++;
		return;
	}
	s = cstream_find(c, id);
	if (!s)
		return;
	if (!strcmp(method, "$sandbox.stream.enqueue")) {
		const char *b64 = json_string_value(json_object_get(params, "data"));
		size_t blen = b64 ? strlen(b64) : 0;
		struct in_item *it;
		int n;

		if (!b64 || s->failed)
			return;
		it = malloc(sizeof(*it) + blen);
		if (!it)
			return;
		n = lws_b64_decode_string_len(b64, (int)blen, (char *)it->data, (int)blen + 1);
		if (n < 0) {
			free(it);
			return;
		}
		if (s->job) {
			input_push(c, s->job, IN_DATA, it->data, (size_t)n);
			free(it);
			return;
		}
		if (c->unclaimed + (size_t)n > SERVE_UNCLAIMED_MAX) {
			free(it);
			s->failed = true;
			stream_cancel(c, id, "sbx serve: too much data for a stream no call has named");
			return;
		}
		it->next = NULL;
		it->kind = IN_DATA;
		it->len = (size_t)n;
		if (s->tail)
			s->tail->next = it;
		else
			s->head = it;
		s->tail = it;
		s->bytes += (size_t)n;
		c->unclaimed += (size_t)n;
		return;
	}
	if (!strcmp(method, "$sandbox.stream.end") || !strcmp(method, "$sandbox.stream.error")) {
		enum in_kind k = method[16] == 'e' && method[17] == 'n' ? IN_EOF : IN_ERROR;

		if (s->job) {
			input_push(c, s->job, k, NULL, 0);
			cstream_drop(c, s);
			return;
		}
		if (k == IN_ERROR) {
			cstream_drop(c, s);
			return;
		}
		s->ended = true;
		{
			struct in_item *it = calloc(1, sizeof(*it));

			if (!it)
				return;
			it->kind = IN_EOF;
			if (s->tail)
				s->tail->next = it;
			else
				s->head = it;
			s->tail = it;
		}
	}
}

/* ---- sockets: calls ---- */

static struct job *conn_job_new(struct conn *c)
{
	struct job *j = job_new(c->id);

	if (!j)
		return NULL;
	j->next = c->jobs;
	c->jobs = j;
	return j;
}

static void conn_job_remove(struct conn *c, struct job *j)
{
	struct job **pp = &c->jobs;

	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (*pp)
		*pp = j->next;
	pthread_mutex_lock(&serve_lock);
	j->cancelled = true;
	j->closed = 1;
	pthread_mutex_unlock(&serve_lock);
	job_kick(j);
	job_put(j);
}

static struct job *job_by_pid(struct conn *c, json_t *params)
{
	json_t *pid = json_object_get(params, "pid");

	if (!json_is_integer(pid))
		return NULL;
	for (struct job *j = c->jobs; j; j = j->next)
		if (j->pid && j->pid == (pid_t)json_integer_value(pid))
			return j;
	return NULL;
}

static struct job *job_by_fh(struct conn *c, json_t *params)
{
	json_t *fh = json_object_get(params, "fileHandleId");

	if (!json_is_integer(fh))
		return NULL;
	for (struct job *j = c->jobs; j; j = j->next)
		if (j->fh_id && j->fh_id == (uint64_t)json_integer_value(fh))
			return j;
	return NULL;
}

static const struct method {
	const char *name;
	int (*fn)(struct call *c);
	int job; /* 0 none, 1 a job of its own, 2 an optional stream job */
	const char *stream_key;
} methods[] = {
	{ "envGet", m_env_get, 0, NULL },
	{ "envSet", m_env_set, 0, NULL },
	{ "envDelete", m_env_delete, 0, NULL },
	{ "envToObject", m_env_to_object, 0, NULL },
	{ "spawn", m_spawn, 1, "stdinStreamId" },
	{ "readFile", m_read_file, 0, NULL },
	{ "readTextFile", m_read_text_file, 0, NULL },
	{ "writeFile", m_write_file, 2, "contentStreamId" },
	{ "writeTextFile", m_write_text_file, 2, "contentStreamId" },
	{ "mkdir", m_mkdir, 0, NULL },
	{ "readDir", m_read_dir, 0, NULL },
	{ "stat", m_stat, 0, NULL },
	{ "lstat", m_lstat, 0, NULL },
	{ "remove", m_remove, 0, NULL },
	{ "rename", m_rename, 0, NULL },
	{ "copyFile", m_copy_file, 0, NULL },
	{ "chmod", m_chmod, 0, NULL },
	{ "chown", m_chown, 0, NULL },
	{ "symlink", m_symlink, 0, NULL },
	{ "link", m_link, 0, NULL },
	{ "readLink", m_read_link, 0, NULL },
	{ "realPath", m_real_path, 0, NULL },
	{ "truncate", m_truncate, 0, NULL },
	{ "makeTempDir", m_make_temp_dir, 0, NULL },
	{ "makeTempFile", m_make_temp_file, 0, NULL },
	{ "walk", m_walk, 1, NULL },
	{ "expandGlob", m_expand_glob, 1, NULL },
	{ "utime", m_utime, 0, NULL },
	{ "spawnDeno", m_spawn_deno, 1, "stdinStreamId" },
	{ "spawnDenoRepl", m_spawn_deno_repl, 1, "stdinStreamId" },
	{ "denoHttpWait", m_deno_http_wait, 0, NULL },
	{ "denoReplEval", m_deno_repl_eval, 0, NULL },
	{ "denoReplCall", m_deno_repl_call, 0, NULL },
	{ "denoReplClose", m_deno_repl_close, 0, NULL },
	{ "fetch", m_fetch, 1, "bodyStreamId" },
};

/* File handles (serve/handles.c): the loop makes the handle (a job) for
 * the first two, finds it for the others, then runs these. */
static const struct method handle_methods[] = {
	{ "open", m_open, 0, NULL },
	{ "create", m_open, 0, NULL },
	{ "fileRead", m_file_read, 0, NULL },
	{ "fileWrite", m_file_write, 0, NULL },
	{ "fileStat", m_file_stat, 0, NULL },
	{ "fileSeek", m_file_seek, 0, NULL },
	{ "fileTruncate", m_file_truncate, 0, NULL },
	{ "fileSync", m_file_sync, 0, NULL },
	{ "fileSyncData", m_file_sync, 0, NULL },
	{ "fileUtime", m_file_utime, 0, NULL },
	{ "fileLock", m_file_lock, 0, NULL },
	{ "fileUnlock", m_file_unlock, 0, NULL },
};

/* fileClose of a handle that holds a lock: the handle goes at once, the
 * answer once the agent has released the lock. */
static const struct method close_locked = { "fileClose", m_file_unlock, 0, NULL };

/* Known to the SDK, not served yet: an {error} naming the call. */
static const char *const refused[] = {
	"vscode",
};

static const struct method *handle_method(const char *name)
{
	for (size_t i = 0; i < sizeof(handle_methods) / sizeof(handle_methods[0]); i++)
		if (!strcmp(handle_methods[i].name, name))
			return &handle_methods[i];
	return NULL;
}

/* processWait's answer: the exit, or an error when the process was lost
 * with its sandbox (proc.c marks that exit "$lost"). */
static char *proc_exit_answer(json_t *id, json_t *exit)
{
	const char *lost = json_string_value(json_object_get(exit, "$lost"));

	return lost ? rpc_errno(id, ECONNRESET, lost) : rpc_ok(id, json_deep_copy(exit));
}

static bool proc_answer_waiters(struct conn *c, struct job *j)
{
	size_t i, n = json_array_size(j->waiters);
	json_t *id;

	json_array_foreach(j->waiters, i, id)
		conn_send(c, proc_exit_answer(id, j->exit));
	json_array_clear(j->waiters);
	return n > 0;
}

/* Takes a job off the socket's list if it is there (it keeps an eventfd). */
static void conn_job_drop(struct conn *c, struct job *j)
{
	for (struct job *k = c->jobs; k; k = k->next)
		if (k == j) {
			conn_job_remove(c, j);
			return;
		}
}

static void on_call(struct conn *c, json_t *id, const char *method, json_t *params)
{
	const struct method *m = NULL;
	struct call *call;
	struct job *j = NULL;
	json_t *abort_id;
	char msg[256];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].name, method))
			m = &methods[i];
	if (!m) {
		if (!strcmp(method, "exposeHttp")) {
			expose_rpc(c->id, c->box, id, params);
			return;
		}
		if (!strcmp(method, "processWait")) {
			j = job_by_pid(c, params);
			if (!j) {
				conn_send(c, rpc_errno(id, ENOENT, "processWait: no such process"));
			} else if (j->exited) {
				conn_send(c, proc_exit_answer(id, j->exit));
				conn_job_drop(c, j);
			} else {
				if (!j->waiters)
					j->waiters = json_array();
				if (json_array_size(j->waiters) < 64)
					json_array_append(j->waiters, id);
				else
					conn_send(c, rpc_errno(id, EBUSY, "processWait: too many waiters"));
			}
			return;
		}
		if (!strcmp(method, "processKill")) {
			const char *sig = json_string_value(json_object_get(params, "signal"));
			int n = sig ? proc_signal_number(sig) : SIGTERM;

			j = job_by_pid(c, params);
			if (n < 0) {
				snprintf(msg, sizeof(msg), "processKill: unknown signal %s", sig);
				conn_send(c, rpc_error_class(id, "TypeError", NULL, msg));
			} else if (!j || j->exited) {
				conn_send(c, rpc_errno(id, ENOENT, "processKill: no such process"));
			} else {
				job_push(j, IN_SIGNAL, n, NULL, 0);
				conn_send(c, rpc_ok(id, NULL));
			}
			return;
		}
		if (!strcmp(method, "fileClose")) {
			bool locked;

			j = job_by_fh(c, params);
			if (!j) {
				conn_send(c, rpc_error_class(id, "BadResource", NULL, "Bad resource ID"));
				return;
			}
			pthread_mutex_lock(&serve_lock);
			locked = j->lock != NULL && !j->locking;
			if (locked)
				j->refs++; /* the unlock call's */
			pthread_mutex_unlock(&serve_lock);
			/* A lock being taken sees the handle closed and lets go. */
			conn_job_remove(c, j);
			if (!locked) {
				conn_send(c, rpc_ok(id, NULL));
				return;
			}
			m = &close_locked;
			goto run;
		}
		if (!strcmp(method, "abort")) {
			/* The call with that abortId stops where libsbx polls
			 * (transfers) or at its end, and answers AbortError;
			 * a call already answered is left alone. */
			json_t *aid = json_object_get(params, "abortId");

			for (struct job *k = c->jobs; k && json_is_integer(aid); k = k->next)
				if (k->has_abort && k->abort_id == json_integer_value(aid)) {
					pthread_mutex_lock(&serve_lock);
					k->aborted = 1;
					pthread_mutex_unlock(&serve_lock);
					job_kick(k);
				}
			conn_send(c, rpc_ok(id, NULL));
			return;
		}
		if (!strcmp(method, "umask")) {
			/* The sandbox's mask for what its clients create
			 * through this server (the agent's own stays 022). */
			json_t *mask = json_object_get(params, "mask");
			unsigned prev = c->box->umask_set ? c->box->umask : 022;

			if (json_is_integer(mask)) {
				c->box->umask = (unsigned)json_integer_value(mask) & 0777;
				c->box->umask_set = true;
			}
			conn_send(c, rpc_ok(id, json_integer(prev)));
			return;
		}
		if ((m = handle_method(method))) {
			bool open = !strcmp(method, "open") || !strcmp(method, "create");

			if (open) {
				j = conn_job_new(c);
				if (j)
					j->fh_id = ++c->next_fh;
			} else {
				j = job_by_fh(c, params);
				if (!j || !j->path) {
					conn_send(c, rpc_error_class(id, "BadResource", NULL,
								     "Bad resource ID"));
					return;
				}
			}
			if (!j) {
				conn_send(c, rpc_errno(id, ENOMEM, "out of memory"));
				return;
			}
			pthread_mutex_lock(&serve_lock);
			j->refs++;
			pthread_mutex_unlock(&serve_lock);
		} else {
			for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
				if (!strcmp(refused[i], method)) {
					snprintf(msg, sizeof(msg), "sbx serve: %s is not available yet",
						 method);
					conn_send(c, rpc_error_class(id, "NotSupported", "ENOTSUP", msg));
					return;
				}
			snprintf(msg, sizeof(msg), "Method not found: %s", method);
			conn_send(c, rpc_fault(id, -32601, msg));
			return;
		}
	}
run:
	call = calloc(1, sizeof(*call));
	if (!call) {
		if (j)
			job_put(j);
		conn_send(c, rpc_errno(id, ENOMEM, "out of memory"));
		return;
	}
	call->conn_id = c->id;
	call->id = json_incref(id);
	call->params = json_deep_copy(params ? params : json_object());
	json_object_set_new(call->params, "$method", json_string(method));
	str_copy(call->addr, sizeof(call->addr), c->box->sb.addr);
	str_copy(call->token, sizeof(call->token), c->box->sb.token);
	call->fn = m->fn;
	call->job = j;
	call->umask = c->box->umask_set ? c->box->umask : 022;
	/* readFile, writeFile and their text forms carry an abortId when
	 * the client passed a signal: such a call gets a job to abort. */
	abort_id = j ? NULL : json_object_get(params, "abortId");
	if (!json_is_integer(abort_id))
		abort_id = NULL;
	if (m->job || abort_id) {
		json_t *sid = m->stream_key ? json_object_get(params, m->stream_key) : NULL;

		if (m->job == 2 && !json_is_integer(sid) && !abort_id)
			goto start;
		j = conn_job_new(c);
		if (!j) {
			conn_send(c, rpc_errno(id, ENOMEM, "out of memory"));
			call_free(call);
			return;
		}
		pthread_mutex_lock(&serve_lock);
		j->refs++;
		pthread_mutex_unlock(&serve_lock);
		call->job = j;
		call->job_done = true;
		if (abort_id) {
			j->has_abort = true;
			j->abort_id = json_integer_value(abort_id);
		}
		if (json_is_integer(sid) && cstream_claim(c, json_integer_value(sid), j) < 0) {
			snprintf(msg, sizeof(msg), "%s: stream %lld was not started", method,
				 (long long)json_integer_value(sid));
			conn_send(c, rpc_error_class(id, "TypeError", NULL, msg));
			conn_job_remove(c, j);
			call_free(call);
			return;
		}
	}
start:
	if (call_start(call) < 0) {
		conn_send(c, rpc_errno(id, EAGAIN, "sbx serve: cannot start a worker thread"));
		call_free(call);
	}
}

static void on_message(struct conn *c, const char *text, size_t len)
{
	json_error_t je;
	json_t *msg, *id, *params;
	const char *method;

	if (len == 4 && !memcmp(text, "ping", 4))
		return; /* the SDK's keep-alive; it drops our pong anyway */
	if (S.trace)
		lwsl_user("sbx serve: %llu <- %.*s\n", (unsigned long long)c->id,
			  (int)(len > 300 ? 300 : len), text);
	msg = json_loadb(text, len, 0, &je);
	if (!json_is_object(msg)) {
		conn_send(c, rpc_fault(NULL, -32700, "Parse error: not a JSON object"));
		json_decref(msg);
		return;
	}
	id = json_object_get(msg, "id");
	method = json_string_value(json_object_get(msg, "method"));
	params = json_object_get(msg, "params");
	if (!method) {
		if (id)
			conn_send(c, rpc_fault(id, -32600, "Invalid Request: no method"));
	} else if (!strncmp(method, "$sandbox.stream.", 16)) {
		if (json_is_object(params))
			on_stream(c, method, params);
	} else if (!id || (!json_is_integer(id) && !json_is_string(id))) {
		/* a notification we do not know: ignored, as the SDK does */
	} else if (params && !json_is_object(params)) {
		conn_send(c, rpc_fault(id, -32602, "Invalid params: not an object"));
	} else {
		on_call(c, id, method, params);
	}
	json_decref(msg);
}

/* Before the sandbox answers, messages wait (bounded; the socket is
 * paused once one waits). */
static void conn_hold(struct conn *c, const char *text, size_t len)
{
	struct held *h;

	if (c->nheld >= SERVE_HELD_MAX || !(h = malloc(sizeof(*h) + len))) {
		conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many calls before the sandbox "
			   "was ready");
		return;
	}
	h->next = NULL;
	h->len = len;
	memcpy(h->text, text, len);
	if (c->held_tail)
		c->held_tail->next = h;
	else
		c->held_head = h;
	c->held_tail = h;
	c->nheld++;
	c->paused |= PAUSE_BOOT;
	conn_flow(c);
}

static void conn_ready(struct conn *c)
{
	c->ready = true;
	while (c->held_head && !c->closing) {
		struct held *h = c->held_head;

		c->held_head = h->next;
		c->nheld--;
		on_message(c, h->text, h->len);
		free(h);
	}
	c->held_tail = NULL;
	c->paused &= ~PAUSE_BOOT;
	conn_flow(c);
}

/* ---- sessions: a session sandbox lives while a socket holds one ---- */

struct attach {
	uint64_t conn_id;
	char addr[PATH_MAX + 32];
	char token[65];
};

static void *attach_main(void *arg)
{
	struct attach *a = arg;
	struct sbx_conn *s = NULL;
	struct sbx_error err = { 0 };
	struct lifetime l;
	struct event *e;

	sbx_set_token(a->token);
	if (sbx_session(a->addr, &s, &l, &err) < 0) {
		e = serve_event_new(EV_FAIL, a->conn_id, err.msg, strlen(err.msg));
	} else {
		e = serve_event_new(EV_READY, a->conn_id, NULL, 0);
		if (e)
			e->sess = s;
	}
	if (e)
		serve_post_event(e);
	else
		sbx_close(s);
	free(a);
	return NULL;
}

static void conn_attach(struct conn *c)
{
	struct attach *a;

	if (!c->box->session) {
		conn_ready(c);
		return;
	}
	a = calloc(1, sizeof(*a));
	if (!a || (a->conn_id = c->id,
		   str_copy(a->addr, sizeof(a->addr), c->box->sb.addr),
		   str_copy(a->token, sizeof(a->token), c->box->sb.token),
		   thread_start(attach_main, a) < 0)) {
		free(a);
		conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "sbx serve: cannot start a thread");
	}
}

/* ---- kill ---- */

struct killer {
	uint64_t req_id;
	struct sandbox sb;
};

static void *kill_main(void *arg)
{
	struct killer *k = arg;
	struct sbx_error err = { 0 };
	char *body;
	struct event *e;
	int r;

	sbx_set_token(k->sb.token);
	r = S.o.agent ? 0 : sandbox_kill(&k->sb, "killed", &err);
	body = r < 0 && r != -ENOENT ? json_text("KILL_FAILED", "%s", err.msg) : strdup("{}");
	e = serve_event_new(EV_HTTP, k->req_id, body, body ? strlen(body) : 0);
	if (e) {
		e->status = r < 0 && r != -ENOENT ? 500 : 200;
		serve_post_event(e);
	}
	free(body);
	free(k);
	return NULL;
}

static void box_close_conns(struct sbox *b, int code, const char *why)
{
	for (struct conn *c = S.conns; c; c = c->next)
		if (c->box == b)
			conn_close(c, code, why);
}

/* A sandbox killed with `sbx kill`, powered off from inside or past its
 * deadline: its sockets close with 1011 naming that, once a second, so
 * that the calls in flight on them fail in the client instead of waiting
 * for an answer that cannot come. */
static lws_sorted_usec_list_t sweep_sul;

static void box_sweep(lws_sorted_usec_list_t *sul)
{
	for (struct sbox *b = S.boxes; b; b = b->next)
		if (b->state == SBOX_READY && !box_alive(b)) {
			lwsl_user("sbx serve: %s is gone (killed, powered off or past its "
				  "deadline); closing its %u connection(s)\n", b->id, b->nconns);
			b->state = SBOX_DEAD;
			box_close_conns(b, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					"the sandbox ended (killed or powered off)");
		}
	box_gc();
	lws_sul_schedule(S.ctx, 0, sul, box_sweep, LWS_US_PER_SEC);
}

/* ---- extend ---- */

struct extender {
	uint64_t req_id;
	struct sandbox sb;
	json_int_t want_ms;
};

static void *extend_main(void *arg)
{
	struct extender *x = arg;
	struct sbx_error err = { 0 };
	json_int_t now_ms = (json_int_t)time(NULL) * 1000;
	json_int_t end_ms = (json_int_t)(x->sb.created + x->sb.lifetime_s) * 1000;
	json_int_t add_s = (x->want_ms - end_ms) / 1000;
	struct lifetime l;
	struct event *e;
	char *body;
	int status = 200;

	(void)now_ms;
	/* From the saved state, not the loop's copy: an earlier extend moved
	 * the end (and saved it), and the add is counted from there. */
	{
		struct sandbox cur;

		if (sandbox_load(x->sb.id, &cur, &err) == 0) {
			x->sb = cur;
			end_ms = (json_int_t)(x->sb.created + x->sb.lifetime_s) * 1000;
			add_s = (x->want_ms - end_ms) / 1000;
		}
	}
	sbx_set_token(x->sb.token);
	if (add_s > EXTEND_MAX_S)
		add_s = EXTEND_MAX_S;
	if (add_s > 0 && sbx_extend(x->sb.addr, (uint64_t)add_s, &l, &err) < 0) {
		status = 500;
		body = json_text("EXTEND_FAILED", "%s", err.msg);
	} else {
		if (add_s > 0) {
			uint64_t now = (uint64_t)time(NULL);

			x->sb.lifetime_s = now - x->sb.created +
					   (l.left_ns + NSEC_PER_SEC / 2) / NSEC_PER_SEC;
			sandbox_save(&x->sb, &err);
		}
		json_t *v = json_pack("{s:I}", "stop_at_ms",
				      (json_int_t)(x->sb.created + x->sb.lifetime_s) * 1000);
		body = json_dumps(v, JSON_COMPACT);
		json_decref(v);
	}
	e = serve_event_new(EV_HTTP, x->req_id, body, body ? strlen(body) : 0);
	if (e) {
		e->status = status;
		serve_post_event(e);
	}
	free(body);
	free(x);
	return NULL;
}

/* ---- the list ---- */

static json_t *box_json(struct sbox *b)
{
	json_t *labels = json_deep_copy(b->labels), *v;
	char created[64];
	struct tm tm;

	gmtime_r(&b->created, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
	if (!labels)
		labels = json_object();
	v = json_pack("{s:s,s:s,s:n,s:s,s:s,s:o}", "id", b->id, "createdAt", created, "stoppedAt",
		      "region", "loc", "status", "running", "labels", labels);
	return v;
}

static int http_list(struct lws *wsi, const char *owner)
{
	char frag[1024], key[256];
	json_t *want = json_object(), *out = json_array();
	int n;

	for (int i = 0; (n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag),
						   WSI_TOKEN_HTTP_URI_ARGS, i)) > 0; i++) {
		char *eq = strchr(frag, '=');
		const char *k = frag;

		if (!eq)
			continue;
		*eq = '\0';
		if (!strncmp(k, "labels[", 7) && k[strlen(k) - 1] == ']') {
			str_copy(key, sizeof(key), k + 7);
			key[strlen(key) - 1] = '\0';
			json_object_set_new(want, key, json_string(eq + 1));
		} else if (!strncmp(k, "labels%5B", 9)) {
			str_copy(key, sizeof(key), k + 9);
			if (strlen(key) >= 3)
				key[strlen(key) - 3] = '\0';
			json_object_set_new(want, key, json_string(eq + 1));
		}
	}
	for (struct sbox *b = S.boxes; b; b = b->next) {
		const char *k;
		json_t *v, *item;
		bool match = true;

		if (b->state == SBOX_DEAD || strcmp(b->owner, owner))
			continue;
		if (b->state == SBOX_READY && !box_alive(b)) {
			b->state = SBOX_DEAD;
			continue;
		}
		item = box_json(b);
		json_object_foreach(want, k, v) {
			json_t *have = json_object_get(json_object_get(item, "labels"), k);

			if (!have || strcmp(json_string_value(have), json_string_value(v)))
				match = false;
		}
		if (match)
			json_array_append_new(out, item);
		else
			json_decref(item);
	}
	json_decref(want);
	char *body = json_dumps(out, JSON_COMPACT);

	json_decref(out);
	return http_answer(wsi, 200, body);
}

/* ---- REST ---- */

static struct httpreq *req_find(uint64_t id)
{
	for (struct httpreq *h = S.reqs; h; h = h->next)
		if (h->id == id)
			return h;
	return NULL;
}

static void req_free(struct httpreq *h)
{
	struct httpreq **pp = &S.reqs;

	while (*pp && *pp != h)
		pp = &(*pp)->next;
	if (*pp)
		*pp = h->next;
	free(h->body);
	free(h->reply);
	free(h);
}

/* /api/v3/sandbox/<id>[/rest] -> the box of owner, or an answer. */
static struct sbox *rest_box(const char *path, char *rest, size_t n, const char *owner)
{
	char id[64];
	const char *p = path + strlen("/api/v3/sandbox/");
	size_t len = strcspn(p, "/");

	if (len >= sizeof(id))
		return NULL;
	memcpy(id, p, len);
	id[len] = '\0';
	str_copy(rest, n, p + len);
	return box_find(id, owner);
}

/* Runs a REST request once its body (if any) is in. Returns what the
 * callback returns; deferred answers come through EV_HTTP. */
static int rest_run(struct lws *wsi, struct httpreq *h)
{
	char rest[128];
	struct sbox *b;

	if (!h->authed)
		return http_answer(wsi, 401, json_text("INVALID_TOKEN", "the token is not valid"));
	if (h->method == 'G' && (!strcmp(h->path, "/api/v2/sandboxes") ||
				 !strcmp(h->path, "/api/v2/sandboxes/")))
		return http_list(wsi, h->owner);
	if (!strncmp(h->path, "/api/v2/", 8))
		return http_answer(wsi, 501, json_text("NOT_SUPPORTED", "sbx serve: %s %s is not "
						       "available (volumes, snapshots, apps and "
						       "deploys are Deno Deploy's)",
						       h->method == 'G' ? "GET" : h->method == 'P' ?
						       "POST" : h->method == 'D' ? "DELETE" :
						       "PATCH", h->path));
	if (strncmp(h->path, "/api/v3/sandbox/", 16))
		return http_answer(wsi, 404, json_text("NOT_FOUND", "no such endpoint: %s", h->path));
	b = rest_box(h->path, rest, sizeof(rest), h->owner);
	if (!b)
		return http_answer(wsi, 404, json_text("SANDBOX_NOT_FOUND", "no such sandbox"));
	if (h->method == 'D' && !rest[0]) {
		struct killer *k;

		expose_forget(b->id);
		if (b->state == SBOX_BOOTING) {
			/* Answered once it has booted and been killed. */
			b->state = SBOX_DEAD;
			b->kill_req = h->id;
			box_close_conns(b, LWS_CLOSE_STATUS_NORMAL, "sandbox killed");
			return 0;
		}
		k = calloc(1, sizeof(*k));
		if (!k)
			return http_answer(wsi, 500, json_text("INTERNAL", "out of memory"));
		k->req_id = h->id;
		k->sb = b->sb;
		b->state = SBOX_DEAD;
		box_close_conns(b, LWS_CLOSE_STATUS_NORMAL, "sandbox killed");
		if (thread_start(kill_main, k) < 0) {
			free(k);
			return http_answer(wsi, 500, json_text("INTERNAL", "cannot start a thread"));
		}
		return 0;
	}
	if (h->method == 'A' && !rest[0]) {
		json_t *body = json_loadb(h->body ? h->body : "", h->blen, 0, NULL);
		json_t *at = json_object_get(body, "stop_at_ms");
		struct extender *x;

		if (!json_is_integer(at)) {
			json_decref(body);
			return http_answer(wsi, 400, json_text("INVALID_BODY", "expected {\"stop_at_ms\": "
							       "<epoch ms>}"));
		}
		if (b->session || b->state != SBOX_READY) {
			json_decref(body);
			return http_answer(wsi, 400, json_text("INVALID_TIMEOUT", "a session sandbox "
							       "has no deadline to extend"));
		}
		x = calloc(1, sizeof(*x));
		if (!x) {
			json_decref(body);
			return http_answer(wsi, 500, json_text("INTERNAL", "out of memory"));
		}
		x->req_id = h->id;
		x->sb = b->sb;
		x->want_ms = json_integer_value(at);
		json_decref(body);
		if (thread_start(extend_main, x) < 0) {
			free(x);
			return http_answer(wsi, 500, json_text("INTERNAL", "cannot start a thread"));
		}
		return 0;
	}
	if (h->method == 'P' && !strncmp(rest, "/expose/", 8)) {
		expose_rest(b, h->id, rest + 8); /* answered through EV_HTTP */
		return 0;
	}
	return http_answer(wsi, 404, json_text("NOT_FOUND", "no such endpoint: %s", h->path));
}

/* ---- the upgrade ---- */

static int refuse(struct lws *wsi, int status, char *body)
{
	http_write(wsi, status, body ? body : "{}");
	free(body);
	return 1;
}

static int on_confirm_upgrade(struct lws *wsi)
{
	char uri[256], owner[SERVE_OWNER_LEN + 1];
	struct conn *c;
	struct sbox *b;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return refuse(wsi, 400, json_text("BAD_REQUEST", "no URI"));
	if (auth(wsi, owner) < 0)
		return refuse(wsi, 401, json_text("INVALID_TOKEN", "the token is not valid"));
	c = calloc(1, sizeof(*c));
	if (!c)
		return refuse(wsi, 500, json_text("INTERNAL", "out of memory"));
	c->id = ++S.next_id;
	if (!strcmp(uri, "/api/v3/sandboxes/create")) {
		int n = lws_hdr_custom_length(wsi, "x-deno-sandbox-config:", 22);
		struct boot *boot;
		char *raw;
		int status;
		char *body = NULL;

		if (n <= 0 || n > CONFIG_MAX) {
			free(c);
			return refuse(wsi, 400, json_text("INVALID_CONFIG", "x-deno-sandbox-config is "
							  "missing or larger than %d bytes",
							  CONFIG_MAX));
		}
		raw = malloc((size_t)n + 1);
		if (!raw || lws_hdr_custom_copy(wsi, raw, n + 1, "x-deno-sandbox-config:", 22) < 0) {
			free(raw);
			free(c);
			return refuse(wsi, 500, json_text("INTERNAL", "cannot read the config header"));
		}
		if (config_parse(raw, (size_t)n, owner, &boot, &status, &body) < 0) {
			free(raw);
			free(c);
			return refuse(wsi, status, body);
		}
		free(raw);
		{
			unsigned count = 0;
			uint64_t mem = 0;

			for (struct sbox *o = S.boxes; o; o = o->next)
				if (o->state != SBOX_DEAD && !strcmp(o->owner, owner)) {
					count++;
					mem += o->memory_mib;
				}
			if (count + 1 > S.o.max_sandboxes ||
			    mem + boot->o.memory_mib > S.o.max_memory_mib) {
				uint64_t asked = boot->o.memory_mib;

				boot_free(boot);
				free(c);
				return refuse(wsi, 429, json_text("LIMIT_EXCEEDED", "this token has %u "
								  "sandboxes using %llu MiB; a new one "
								  "of %llu MiB would pass its limit of "
								  "%u sandboxes or %llu MiB", count,
								  (unsigned long long)mem,
								  (unsigned long long)asked,
								  S.o.max_sandboxes,
								  (unsigned long long)S.o.max_memory_mib));
			}
		}
		b = calloc(1, sizeof(*b));
		if (!b) {
			boot_free(boot);
			free(c);
			return refuse(wsi, 500, json_text("INTERNAL", "out of memory"));
		}
		id_new(b->id);
		str_copy(b->owner, sizeof(b->owner), owner);
		b->state = SBOX_BOOTING;
		b->boot_pending = true;
		b->memory_mib = boot->o.memory_mib;
		b->session = boot->o.session;
		b->created = time(NULL);
		b->labels = boot->labels_json;
		boot->labels_json = NULL;
		boot->o.name = b->id;
		boot->box = b;
		if (thread_start(boot_main, boot) < 0) {
			boot_free(boot);
			free(b);
			free(c);
			return refuse(wsi, 503, json_text("INTERNAL", "cannot start a boot thread"));
		}
		b->next = S.boxes;
		S.boxes = b;
		lwsl_user("sbx serve: creating %s (%s, %llu MiB)\n", b->id,
			  b->session ? "session" : "duration", (unsigned long long)boot->o.memory_mib);
	} else if (!strncmp(uri, "/api/v3/sandbox/", 16) &&
		   strlen(uri) > 24 && !strcmp(uri + strlen(uri) - 8, "/connect")) {
		char id[64];
		size_t len = strlen(uri) - 16 - 8;

		if (len >= sizeof(id)) {
			free(c);
			return refuse(wsi, 404, json_text("SANDBOX_NOT_FOUND", "no such sandbox"));
		}
		memcpy(id, uri + 16, len);
		id[len] = '\0';
		b = box_find(id, owner);
		if (!b || (b->state == SBOX_READY && !box_alive(b))) {
			if (b)
				b->state = SBOX_DEAD;
			free(c);
			return refuse(wsi, 404, json_text("SANDBOX_NOT_FOUND", "no such sandbox: %s",
							  id));
		}
	} else {
		free(c);
		return refuse(wsi, 404, json_text("NOT_FOUND", "no such endpoint: %s", uri));
	}
	c->box = b;
	b->nconns++;
	lws_set_opaque_user_data(wsi, c);
	return 0;
}

/* ---- socket life ---- */

static void conn_free(struct conn *c)
{
	struct conn **pp = &S.conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	while (c->jobs)
		conn_job_remove(c, c->jobs);
	while (c->cstreams)
		cstream_drop(c, c->cstreams);
	while (c->held_head) {
		struct held *h = c->held_head;

		c->held_head = h->next;
		free(h);
	}
	while (c->out_head) {
		struct outmsg *m = c->out_head;

		c->out_head = m->next;
		job_sent(m->job, m->len);
		free(m);
	}
	sbx_close(c->session);
	if (c->box) {
		c->box->nconns--;
		if (c->box->session && c->box->nconns == 0 && c->box->state == SBOX_READY)
			lwsl_user("sbx serve: %s: last connection closed; the session sandbox "
				  "powers off after its grace period\n", c->box->id);
	}
	free(c->rx);
	free(c);
}

static int on_receive(struct conn *c, struct lws *wsi, const void *in, size_t len)
{
	if (c->rxlen + len > SERVE_MSG_MAX) {
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
				 (unsigned char *)"message too large", 17);
		return -1;
	}
	if (c->rxlen + len > c->rxcap) {
		size_t cap = c->rxcap ? c->rxcap : 4096;
		char *p;

		while (cap < c->rxlen + len)
			cap *= 2;
		p = realloc(c->rx, cap);
		if (!p)
			return -1;
		c->rx = p;
		c->rxcap = cap;
	}
	memcpy(c->rx + c->rxlen, in, len);
	c->rxlen += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	if (c->closing) {
		c->rxlen = 0;
		return 0;
	}
	if (!c->ready)
		conn_hold(c, c->rx, c->rxlen);
	else
		on_message(c, c->rx, c->rxlen);
	c->rxlen = 0;
	if (c->rxcap > (1u << 20)) {
		free(c->rx);
		c->rx = NULL;
		c->rxcap = 0;
	}
	return 0;
}

static int on_writeable(struct conn *c, struct lws *wsi)
{
	while (c->out_head && !lws_send_pipe_choked(wsi)) {
		struct outmsg *m = c->out_head;
		int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT);

		if (S.trace)
			lwsl_user("sbx serve: %llu -> %.*s\n", (unsigned long long)c->id,
				  (int)(m->len > 300 ? 300 : m->len), (char *)m->data + LWS_PRE);
		c->out_head = m->next;
		if (!c->out_head)
			c->out_tail = NULL;
		job_sent(m->job, m->len);
		free(m);
		if (n < 0)
			return -1;
	}
	if (c->out_head) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (c->closing) {
		lws_close_reason(wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	}
	return 0;
}

/* ---- events from workers, on the loop ---- */

static void box_booted(struct sbox *b, int status, const char *why)
{
	b->boot_pending = false;
	if (status < 0) {
		char reason[120];

		if (b->kill_req) {
			/* Killed during a boot that failed anyway. */
			char *body = strdup("{}");
			struct event *e = serve_event_new(EV_HTTP, b->kill_req, body, strlen(body));

			free(body);
			if (e) {
				e->status = 200;
				serve_post_event(e);
			}
		}
		lwsl_err("sbx serve: %s did not boot: %s\n", b->id, why);
		snprintf(reason, sizeof(reason), "sandbox did not boot: %s", why);
		b->state = SBOX_DEAD;
		box_close_conns(b, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, reason);
		return;
	}
	lwsl_user("sbx serve: %s ready (%s)\n", b->id, b->sb.addr);
	if (b->state == SBOX_DEAD) {
		/* Killed while it booted. */
		struct killer *k = calloc(1, sizeof(*k));

		if (k) {
			k->sb = b->sb;
			k->req_id = b->kill_req;
			thread_start(kill_main, k);
		}
		return;
	}
	b->state = SBOX_READY;
	if (b->nconns == 0 && b->session) {
		/* The client left during the boot. */
		struct killer *k = calloc(1, sizeof(*k));

		b->state = SBOX_DEAD;
		if (k) {
			k->sb = b->sb;
			thread_start(kill_main, k);
		}
		return;
	}
	for (struct conn *c = S.conns; c; c = c->next)
		if (c->box == b && c->established && !c->ready && !c->closing)
			conn_attach(c);
}

static void events_run(void)
{
	struct event *e;

	pthread_mutex_lock(&serve_lock);
	e = S.ev_head;
	S.ev_head = S.ev_tail = NULL;
	pthread_mutex_unlock(&serve_lock);
	while (e) {
		struct event *next = e->next;
		struct conn *c = e->kind == EV_BOOTED || e->kind == EV_HTTP || e->kind == EV_KILLED
					 ? NULL : conn_find(e->conn_id);

		switch (e->kind) {
		case EV_SEND:
			if (c && !c->closing)
				conn_queue(c, e->text, e->len, e->job);
			else
				job_sent(e->job, e->len);
			break;
		case EV_READY:
			if (c && !c->closing) {
				c->session = e->sess;
				conn_ready(c);
			} else {
				sbx_close(e->sess);
			}
			break;
		case EV_FAIL:
			if (c) {
				char reason[120];

				snprintf(reason, sizeof(reason), "sandbox unreachable: %s", e->text);
				conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, reason);
			}
			break;
		case EV_BOOTED:
			box_booted(e->box, e->status, e->text);
			expose_booted(e->box);
			box_gc();
			break;
		case EV_PROC:
			if (c && e->job) {
				if (e->exit) {
					e->job->exited = true;
					e->job->exit = e->exit;
					e->exit = NULL;
					/* Once a processWait has its answer the process
					 * is forgotten (processKill then says ENOENT,
					 * which the SDK expects). */
					if (proc_answer_waiters(c, e->job))
						conn_job_drop(c, e->job);
				}
			}
			job_put(e->job);
			break;
		case EV_RESUME:
			if (c && (c->paused & PAUSE_INPUT)) {
				c->paused &= ~PAUSE_INPUT;
				conn_flow(c);
			}
			break;
		case EV_HTTP: {
			struct httpreq *h = req_find(e->conn_id);

			if (h) {
				h->answered = true;
				h->status = e->status;
				h->reply = strdup(e->text);
				lws_callback_on_writable(h->wsi);
			}
			break;
		}
		case EV_KILLED:
			break;
		case EV_DONE:
			/* Uploads and walks end with their thread; a process
			 * stays until its exit has been waited for. */
			if (c && e->job && !e->job->pid)
				conn_job_drop(c, e->job);
			job_put(e->job);
			break;
		}
		json_decref(e->exit);
		free(e);
		e = next;
	}
}

/* ---- the callback ---- */

static int method_of(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return 'G';
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return 'P';
	if (lws_hdr_total_length(wsi, WSI_TOKEN_PATCH_URI))
		return 'A';
	if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI))
		return 'D';
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct pss *pss = user;
	struct conn *c = pss ? pss->c : NULL;
	struct httpreq *h = pss ? pss->h : NULL;

	if (pss && dash_claims(wsi, reason, &pss->d, in))
		return dash_callback(wsi, reason, &pss->d, in, len);
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		events_run();
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return on_confirm_upgrade(wsi);
	case LWS_CALLBACK_ADD_HEADERS: {
		struct lws_process_html_args *args = in;
		struct conn *up = lws_get_opaque_user_data(wsi);

		if (up && lws_add_http_header_by_name(wsi, (unsigned char *)"x-deno-sandbox-id:",
						      (unsigned char *)up->box->id,
						      (int)strlen(up->box->id),
						      (unsigned char **)&args->p,
						      (unsigned char *)args->p + args->max_len))
			return 1;
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED: {
		struct conn *up = lws_get_opaque_user_data(wsi);

		if (!up)
			return -1;
		lws_set_opaque_user_data(wsi, NULL);
		pss->c = up;
		up->wsi = wsi;
		up->established = true;
		up->next = S.conns;
		S.conns = up;
		if (up->box->state == SBOX_READY)
			conn_attach(up);
		else if (up->box->state == SBOX_DEAD)
			conn_close(up, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "the sandbox is gone");
		return 0;
	}
	case LWS_CALLBACK_RECEIVE:
		return c ? on_receive(c, wsi, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c ? on_writeable(c, wsi) : 0;
	case LWS_CALLBACK_CLOSED:
		if (c) {
			conn_free(c);
			pss->c = NULL;
			box_gc();
		}
		return 0;
	case LWS_CALLBACK_WSI_DESTROY: {
		struct conn *up = lws_get_opaque_user_data(wsi);

		/* An upgrade accepted but never established. */
		if (up) {
			lws_set_opaque_user_data(wsi, NULL);
			up->box->nconns--;
			free(up);
		}
		return 0;
	}
	case LWS_CALLBACK_HTTP: {
		char owner[SERVE_OWNER_LEN + 1];

		h = calloc(1, sizeof(*h));
		if (!h)
			return -1;
		h->id = ++S.next_id;
		h->wsi = wsi;
		h->method = method_of(wsi);
		str_copy(h->path, sizeof(h->path), in ? (const char *)in : "");
		h->authed = auth(wsi, owner) == 0;
		str_copy(h->owner, sizeof(h->owner), owner);
		h->next = S.reqs;
		S.reqs = h;
		pss->h = h;
		if ((h->method == 'P' || h->method == 'A') &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
			return 0; /* the body follows */
		return rest_run(wsi, h);
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (!h)
			return -1;
		if (h->blen + len > BODY_MAX)
			return http_answer(wsi, 413, json_text("TOO_LARGE", "the body is larger "
							       "than %d bytes", BODY_MAX)) ?: -1;
		{
			char *p = realloc(h->body, h->blen + len + 1);

			if (!p)
				return -1;
			h->body = p;
			memcpy(h->body + h->blen, in, len);
			h->blen += len;
			h->body[h->blen] = '\0';
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return h ? rest_run(wsi, h) : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (h && h->answered) {
			int status = h->status;
			char *reply = h->reply;

			h->reply = NULL;
			h->answered = false;
			return http_answer(wsi, status, reply);
		}
		return 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (h) {
			req_free(h);
			pss->h = NULL;
		}
		return 0;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "sbx-serve", callback, sizeof(struct pss), 64 * 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- sandboxes from before a restart ---- */

static void adopt_one(void *arg, const struct sandbox *sb)
{
	const char *owner = NULL;
	struct sbox *b;

	for (unsigned i = 0; i < sb->nlabels; i++)
		if (!strcmp(sb->labels[i].key, SERVE_OWNER_LABEL))
			owner = sb->labels[i].value;
	if (!owner || strlen(owner) != SERVE_OWNER_LEN || !id_shape_ok(sb->id))
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;
	str_copy(b->id, sizeof(b->id), sb->id);
	str_copy(b->owner, sizeof(b->owner), owner);
	b->state = SBOX_READY;
	b->session = sb->session;
	b->sb = *sb;
	b->created = (time_t)sb->created;
	b->memory_mib = sb->memory_mib;
	b->labels = json_object();
	for (unsigned i = 0; i < sb->nlabels; i++)
		if (strcmp(sb->labels[i].key, SERVE_OWNER_LABEL))
			json_object_set_new(b->labels, sb->labels[i].key,
					    json_string(sb->labels[i].value));
	b->next = S.boxes;
	S.boxes = b;
	expose_adopt(b);
	(*(unsigned *)arg)++;
}

static void on_signal(int sig)
{
	/* poll(2) in lws_service returns with EINTR; the loop sees stop. */
	S.stop = 1;
}

int serve_run(const struct serve_opts *o)
{
	struct lws_context_creation_info info;
	unsigned adopted = 0;
	uint64_t start;

	S.o = *o;
	S.trace = getenv("SBX_SERVE_TRACE") != NULL;
	/* A socket per agent call and an eventfd per job. */
	fd_limit_raise(65536);
	if (getrandom(&start, sizeof(start), 0) != sizeof(start))
		start = (uint64_t)time(NULL);
	/* Random start, within JavaScript's safe integers (deno.md §4). */
	S.next_stream = (start & ((1ull << 50) - 1)) + 1;
	if (!o->agent)
		sandbox_list(adopt_one, &adopted);
	memset(&info, 0, sizeof(info));
	info.port = o->port;
	info.iface = o->listen_addr;
	info.protocols = protocols;
	info.max_http_header_data = 0;
	info.max_http_header_data2 = 262144;
	info.max_http_header_pool = 64;
	info.timeout_secs = 30;
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; /* for exposeHttp's TLS vhost */
	info.ssl_cert_filepath = o->listen_cert;       /* NULL: plain HTTP */
	info.ssl_private_key_filepath = o->listen_key;
	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_USER, NULL);
	S.ctx = lws_create_context(&info);
	if (!S.ctx) {
		fprintf(stderr, "sbx: serve: cannot listen on %s:%d%s\n", o->listen_addr, o->port,
			o->listen_cert ? " with the certificate and key of --listen-cert/--listen-key" :
			"");
		return -EADDRINUSE;
	}
	S.vh = lws_get_vhost_by_name(S.ctx, "default");
	if (expose_start(S.ctx, o) < 0) {
		lws_context_destroy(S.ctx);
		S.ctx = NULL;
		return -EADDRINUSE;
	}
	dash_start(S.ctx);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("sbx serve: listening on %s://%s:%d (image %s, %u sandbox%s found again)\n",
	       o->listen_cert ? "https" : "http", o->listen_addr, S.vh ? lws_get_vhost_listen_port(S.vh) : o->port,
	       o->image ? o->image : image_default(), adopted, adopted == 1 ? "" : "es");
	fflush(stdout);
	lws_sul_schedule(S.ctx, 0, &sweep_sul, box_sweep, LWS_US_PER_SEC);
	while (!S.stop && lws_service(S.ctx, 0) >= 0)
		;
	{
		struct lws_context *ctx = S.ctx;

		/* Workers still running find no loop to wake; duration
		 * sandboxes live on, session ones end after their grace. */
		pthread_mutex_lock(&serve_lock);
		S.ctx = NULL;
		pthread_mutex_unlock(&serve_lock);
		lws_context_destroy(ctx);
	}
	return 0;
}
