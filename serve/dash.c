/* sbx serve: the dashboard. Serves the page at / (embedded files), signs
 * a browser in with one of the server's tokens into a session cookie
 * (HttpOnly, SameSite=Strict, Secure over TLS; the token never leaves the
 * sign-in request), streams the session's sandboxes as server-sent events,
 * and lends the API its sessions (dash_auth) so that kill and extend take
 * the API's own code paths. A sampler thread reads each sandbox's QEMU
 * RSS and CPU and the guest's own memory use (its /proc/meminfo, through
 * the agent) once a second and, for the sandboxes someone watches, its
 * host name (the agent's INFO), console and egress log tails, `ps` and
 * exposures. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "libsbx/sbx.h"
#include "libsbx/sbx_fs.h"
#include "libsbx/sbx_net.h"
#include "serve/dash.h"

#define SESSIONS_MAX 64
#define SESSION_S (12 * 3600)
#define SAMPLES 600               /* ten minutes, one a second */
#define BODY_MAX 4096             /* a sign-in request */
#define CONSOLE_TAIL (16 * 1024)  /* bytes of console.log shown */
#define EGRESS_TAIL (24 * 1024)   /* bytes of egress.log shown */
#define PS_MAX 200
#define MEMINFO_MAX 8192          /* bytes of the guest's /proc/meminfo read */
#define GUEST_NONE UINT32_MAX     /* no guest memory sample (the agent did not answer) */
#define COOKIE "sbx_session"
#define HUP_CHECK_US (100 * 1000) /* how soon a closed page's stream is dropped */

/* A signed-in browser. sid is the cookie, csrf what its page sends back in
 * X-SBX-CSRF with every API request. Loop thread only. */
struct session {
	char sid[65];
	char csrf[65];
	char owner[SERVE_OWNER_LEN + 1];
	time_t expires;
};

enum req_kind { R_STATIC, R_LOGIN, R_LOGOUT, R_SESSION, R_EVENTS, R_MISSING };

struct dash_req {
	struct dash_req *next;        /* the event streams' list */
	struct lws *wsi;
	enum req_kind kind;
	const struct dash_file *file;
	char owner[SERVE_OWNER_LEN + 1];
	char id[SERVE_ID_LEN + 1];    /* events: the sandbox shown, "": the list only */
	bool streaming;
	char *body;
	size_t blen;
};

/* The sampler's view of one ready sandbox. The loop adds and drops them
 * (seen, watchers); the sampler fills the rest; both under mu. */
struct target {
	struct target *next;
	char id[SERVE_ID_LEN + 1];
	pid_t qemu_pid;
	char addr[PATH_MAX + 32];
	char token[65];
	bool seen;
	unsigned watchers;
	uint32_t rss_kib[SAMPLES];
	uint32_t guest_kib[SAMPLES];  /* MemTotal - MemAvailable, or GUEST_NONE */
	uint16_t cpu_pm[SAMPLES];     /* per mille of one CPU */
	unsigned nsamples, head;      /* head: the next slot */
	uint64_t last_ticks, last_ns;
	uint64_t ends;                /* unix seconds, 0: a session sandbox */
	char *detail;                 /* JSON text, for watched ones */
};

static struct {
	struct lws_context *ctx;
	lws_sorted_usec_list_t tick;
	lws_sorted_usec_list_t hup;
	struct session sessions[SESSIONS_MAX];
	struct dash_req *streams;
	pthread_mutex_t mu;
	struct target *targets;
} D = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* ---- answers ---- */

/* Every answer of the dashboard carries these: no inline script, nothing
 * from elsewhere, no framing, no sniffing, no caching of sessions. */
static int add_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	static const char *const h[][2] = {
		{ "content-security-policy:", "default-src 'none'; script-src 'self'; style-src "
		  "'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action "
		  "'self'; frame-ancestors 'none'" },
		{ "x-content-type-options:", "nosniff" },
		{ "referrer-policy:", "no-referrer" },
		{ "x-frame-options:", "DENY" },
		{ "cache-control:", "no-store" },
	};

	for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i][0],
						(const unsigned char *)h[i][1], (int)strlen(h[i][1]),
						p, end))
			return -1;
	return 0;
}

/* A whole answer; cookie (may be NULL) is a Set-Cookie value. Returns what
 * the callback returns. */
static int answer(struct lws *wsi, int status, const char *type, const void *body, size_t len,
		  const char *cookie)
{
	unsigned char *buf = malloc(LWS_PRE + 4096 + len);
	unsigned char *start, *p, *end;
	int r = -1;

	if (!buf)
		return -1;
	start = p = buf + LWS_PRE;
	end = start + 4096;
	if (lws_add_http_common_headers(wsi, (unsigned)status, type, len, &p, end) ||
	    add_headers(wsi, &p, end) ||
	    (cookie && lws_add_http_header_by_name(wsi, (const unsigned char *)"set-cookie:",
						   (const unsigned char *)cookie,
						   (int)strlen(cookie), &p, end)) ||
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

static int answer_json(struct lws *wsi, int status, json_t *v, const char *cookie)
{
	char *s = json_dumps(v, JSON_COMPACT);
	int r;

	json_decref(v);
	if (!s)
		return -1;
	r = answer(wsi, status, "application/json", s, strlen(s), cookie);
	free(s);
	return r;
}

static int refuse(struct lws *wsi, int status, const char *msg)
{
	return answer_json(wsi, status, json_pack("{s:s}", "message", msg), NULL);
}

/* ---- sessions and the checks of a request ---- */

/* The Origin header, when there is one, names this server; required says
 * whether there must be one (browsers send it with every POST, PATCH and
 * DELETE). */
static bool origin_ok(struct lws *wsi, bool required)
{
	char origin[300], host[256], want[300];

	if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0)
		return !required;
	/* HTTP/2 (TLS with ALPN) names the host in :authority, not Host. */
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) <= 0 &&
	    lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HTTP_COLON_AUTHORITY) <= 0)
		return false;
	snprintf(want, sizeof(want), "%s://%s", lws_is_ssl(wsi) ? "https" : "http", host);
	return !strcmp(origin, want);
}

static struct session *session_of(struct lws *wsi)
{
	char sid[80];
	size_t max = sizeof(sid);
	time_t now = time(NULL);
	struct session *found = NULL;

	if (lws_http_cookie_get(wsi, COOKIE, sid, &max) || strlen(sid) != 64)
		return NULL;
	for (int i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &D.sessions[i];

		if (s->sid[0] && s->expires > now && !sodium_memcmp(s->sid, sid, 64))
			found = s;
	}
	return found;
}

static void random_hex(char out[65])
{
	uint8_t raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 65, raw, sizeof(raw));
}

static struct session *session_new(const char *owner)
{
	struct session *s = &D.sessions[0];
	time_t now = time(NULL);

	/* A free or expired slot, else the one closest to expiring. */
	for (int i = 0; i < SESSIONS_MAX; i++) {
		if (!D.sessions[i].sid[0] || D.sessions[i].expires <= now) {
			s = &D.sessions[i];
			break;
		}
		if (D.sessions[i].expires < s->expires)
			s = &D.sessions[i];
	}
	random_hex(s->sid);
	random_hex(s->csrf);
	str_copy(s->owner, sizeof(s->owner), owner);
	s->expires = now + SESSION_S;
	return s;
}

static bool csrf_ok(struct lws *wsi, const struct session *s)
{
	char got[80];

	if (lws_hdr_custom_copy(wsi, got, sizeof(got), "x-sbx-csrf:", 11) != 64)
		return false;
	return !sodium_memcmp(got, s->csrf, 64);
}

int dash_auth(struct lws *wsi, char owner[SERVE_OWNER_LEN + 1])
{
	struct session *s = session_of(wsi);
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;

	if (!s || !csrf_ok(wsi, s) || !origin_ok(wsi, !get))
		return -EACCES;
	str_copy(owner, SERVE_OWNER_LEN + 1, s->owner);
	return 0;
}

/* ---- the sampler ---- */

static struct target *target_find(const char *id)
{
	for (struct target *t = D.targets; t; t = t->next)
		if (!strcmp(t->id, id))
			return t;
	return NULL;
}

/* Host RSS (KiB) and CPU ticks of a process; false when it is gone. */
static bool proc_sample(pid_t pid, uint32_t *rss_kib, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long utime, stime;
	long pages;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* After the command name: state is field 3, utime 14, stime 15, rss 24. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
			 "%*d %*d %*d %*u %*u %ld", &utime, &stime, &pages) != 3)
		return false;
	*ticks = utime + stime;
	*rss_kib = (uint32_t)((uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024);
	return true;
}

/* The last max bytes of a file, from a line start, as a JSON string (bytes
 * that are not UTF-8 become '?'). */
static json_t *file_tail(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf;
	off_t size, from;
	ssize_t n;
	json_t *s;
	char *start;

	if (fd < 0)
		return json_string("");
	size = lseek(fd, 0, SEEK_END);
	from = size > (off_t)max ? size - (off_t)max : 0;
	buf = malloc(max + 1);
	if (!buf || (n = pread(fd, buf, max, from)) < 0) {
		free(buf);
		close(fd);
		return json_string("");
	}
	close(fd);
	buf[n] = '\0';
	start = buf;
	if (from > 0 && (start = memchr(buf, '\n', (size_t)n)))
		start++;
	else
		start = buf;
	s = json_stringn(start, (size_t)(buf + n - start));
	if (!s) {
		for (char *c = start; c < buf + n; c++)
			if ((unsigned char)*c >= 0x80 || *c == '\0')
				*c = '?';
		s = json_stringn(start, (size_t)(buf + n - start));
	}
	free(buf);
	return s ? s : json_string("");
}

/* The guest's memory in use, MemTotal - MemAvailable of its /proc/meminfo
 * (KiB), read through the agent at addr with the token already set; the
 * guest writes that file, so every number is checked. GUEST_NONE when the
 * agent does not answer or the file makes no sense. */
static uint32_t guest_used_kib(const char *addr)
{
	struct sbx_fs_opts o = { .no_verify = true }; /* it changes between reads */
	struct sbx_error err = { 0 };
	char buf[MEMINFO_MAX + 1];
	unsigned long long total = 0, avail = 0;
	bool have_total = false, have_avail = false;
	ssize_t n;
	int fd = memfd_create("sbx-serve-meminfo", MFD_CLOEXEC);

	if (fd < 0)
		return GUEST_NONE;
	if (sbx_fs_read_fd(addr, "/proc/meminfo", 0, MEMINFO_MAX, fd, &o, NULL, NULL, &err) < 0 ||
	    (n = pread(fd, buf, MEMINFO_MAX, 0)) <= 0) {
		close(fd);
		return GUEST_NONE;
	}
	close(fd);
	buf[n] = '\0';
	for (char *line = buf, *next; line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		if (sscanf(line, "MemTotal: %llu kB", &total) == 1)
			have_total = true;
		else if (sscanf(line, "MemAvailable: %llu kB", &avail) == 1)
			have_avail = true;
	}
	if (!have_total || !have_avail || avail > total || total >= GUEST_NONE)
		return GUEST_NONE;
	return (uint32_t)(total - avail);
}

/* A string the guest chose, as JSON: bytes that are not UTF-8 become '?'. */
static json_t *guest_string(const char *text)
{
	json_t *s = json_string(text);
	char *copy;

	if (s)
		return s;
	copy = strdup(text);
	if (!copy)
		return json_string("");
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	s = json_string(copy);
	free(copy);
	return s ? s : json_string("");
}

static void ps_one(void *arg, const struct ps_entry *p)
{
	json_t *a = arg;
	char argv[sizeof(p->argv) + 1];

	if (json_array_size(a) >= PS_MAX)
		return;
	memcpy(argv, p->argv, sizeof(p->argv));
	argv[sizeof(p->argv)] = '\0';
	for (char *c = argv; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	json_array_append_new(a, json_pack("{s:i,s:s,s:s,s:I,s:i,s:b}", "pid", (int)p->pid,
					   "argv", argv, "state",
					   p->state == PS_RUNNING ? "running" :
					   p->state == PS_EXITED ? "exited" : "signaled",
					   "started_ms", (json_int_t)(p->started_ns / 1000000),
					   "status", (int)p->status, "detached",
					   (p->flags & PS_F_DETACHED) != 0));
}

static void expose_one(void *arg, const struct sbx_exposure *e)
{
	json_array_append_new(arg, json_pack("{s:i,s:s}", "guest_port", (int)e->guest_port, "url",
					     e->url));
}

/* What the sandbox page shows beyond the list: configuration (never a
 * secret: serve keeps none), the host name the guest reports, console and
 * egress tails, ps, exposures. */
static char *detail_build(const struct sandbox *sb, const char *token)
{
	char path[PATH_MAX + 32];
	json_t *allow = json_array(), *ps = json_array(), *ex = json_array(), *d, *console, *egress;
	json_t *hostname = json_null();
	struct sbx_error err = { 0 }, ierr = { 0 };
	struct info info;
	char *text, *line, *save = NULL, *copy = strdup(sb->allow_net);
	int r;

	for (line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save))
		json_array_append_new(allow, json_string(line));
	free(copy);
	sbx_set_token(token);
	r = sbx_ps(sb->addr, ps_one, ps, &err);
	if (sbx_info(sb->addr, &info, &ierr) == 0)
		hostname = guest_string(info.hostname);
	sbx_expose_list(sb->dir, expose_one, ex);
	snprintf(path, sizeof(path), "%s/console.log", sb->dir);
	console = file_tail(path, CONSOLE_TAIL);
	snprintf(path, sizeof(path), "%s/egress.log", sb->dir);
	egress = file_tail(path, EGRESS_TAIL);
	d = json_pack("{s:{s:I,s:i,s:s,s:b,s:I,s:I,s:o,s:b},s:o,s:o,s:o,s:o,s:o,s:s?}",
		      "config", "memory_mib", (json_int_t)sb->memory_mib, "cpus", (int)sb->cpus,
		      "image", sb->image, "session", sb->session, "created", (json_int_t)sb->created,
		      "lifetime_s", (json_int_t)sb->lifetime_s, "allow_net", allow, "egress",
		      sb->gateway_pid > 0, "hostname", hostname,
		      "console", console, "egress", egress,
		      "ps", ps, "exposures", ex, "ps_error", r < 0 ? err.msg : NULL);
	text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	return text;
}

struct work {
	char id[SERVE_ID_LEN + 1];
	pid_t qemu_pid;
	char addr[PATH_MAX + 32];
	char token[65];
	bool watched;
	bool alive;
	uint32_t rss_kib, guest_kib;
	uint64_t ticks, ns, ends;
	char *detail;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sample_one(struct work *w)
{
	struct sandbox sb;
	struct sbx_error err = { 0 };

	w->alive = proc_sample(w->qemu_pid, &w->rss_kib, &w->ticks);
	w->ns = now_ns();
	w->guest_kib = GUEST_NONE;
	if (w->alive) {
		sbx_set_token(w->token);
		w->guest_kib = guest_used_kib(w->addr);
	}
	/* The saved state, not the loop's copy: an extend rewrites it. */
	if (sandbox_load(w->id, &sb, &err) < 0)
		return;
	w->ends = sb.session ? 0 : sb.created + sb.lifetime_s;
	if (w->watched)
		w->detail = detail_build(&sb, w->token);
}

static void sample_store(struct work *w)
{
	struct target *t = target_find(w->id);
	long hz = sysconf(_SC_CLK_TCK);

	if (!t) {
		free(w->detail);
		return;
	}
	t->ends = w->ends;
	if (w->detail) {
		free(t->detail);
		t->detail = w->detail;
	}
	if (!w->alive)
		return;
	if (t->last_ns && w->ns > t->last_ns) {
		uint64_t pm = (w->ticks - t->last_ticks) * 1000000000000ull / (uint64_t)hz /
			      (w->ns - t->last_ns);

		t->rss_kib[t->head] = w->rss_kib;
		t->guest_kib[t->head] = w->guest_kib;
		t->cpu_pm[t->head] = (uint16_t)(pm > 60000 ? 60000 : pm);
		t->head = (t->head + 1) % SAMPLES;
		if (t->nsamples < SAMPLES)
			t->nsamples++;
	}
	t->last_ticks = w->ticks;
	t->last_ns = w->ns;
}

static void *sampler_main(void *arg)
{
	for (;;) {
		struct work *w = NULL;
		size_t n = 0, i = 0;
		uint64_t start = now_ns(), spent;

		pthread_mutex_lock(&D.mu);
		for (struct target *t = D.targets; t; t = t->next)
			n++;
		if (n)
			w = calloc(n, sizeof(*w));
		for (struct target *t = D.targets; t && w; t = t->next, i++) {
			str_copy(w[i].id, sizeof(w[i].id), t->id);
			w[i].qemu_pid = t->qemu_pid;
			str_copy(w[i].addr, sizeof(w[i].addr), t->addr);
			str_copy(w[i].token, sizeof(w[i].token), t->token);
			w[i].watched = t->watchers > 0;
		}
		pthread_mutex_unlock(&D.mu);
		for (i = 0; w && i < n; i++)
			sample_one(&w[i]);
		pthread_mutex_lock(&D.mu);
		for (i = 0; w && i < n; i++)
			sample_store(&w[i]);
		pthread_mutex_unlock(&D.mu);
		free(w);
		spent = now_ns() - start;
		if (spent < 1000000000ull)
			usleep((useconds_t)((1000000000ull - spent) / 1000));
	}
	return NULL;
}

/* ---- the loop's tick: targets follow the boxes, streams are woken ---- */

static void targets_sync(void)
{
	struct target **pp;

	pthread_mutex_lock(&D.mu);
	for (struct target *t = D.targets; t; t = t->next) {
		t->seen = false;
		t->watchers = 0;
	}
	for (struct sbox *b = serve_boxes(); b; b = b->next) {
		struct target *t;

		if (b->state != SBOX_READY || !b->sb.qemu_pid)
			continue;
		t = target_find(b->id);
		if (!t && (t = calloc(1, sizeof(*t)))) {
			str_copy(t->id, sizeof(t->id), b->id);
			t->qemu_pid = b->sb.qemu_pid;
			str_copy(t->addr, sizeof(t->addr), b->sb.addr);
			str_copy(t->token, sizeof(t->token), b->sb.token);
			t->ends = b->session ? 0 : b->sb.created + b->sb.lifetime_s;
			t->next = D.targets;
			D.targets = t;
		}
		if (t)
			t->seen = true;
	}
	for (struct dash_req *r = D.streams; r; r = r->next) {
		struct target *t = r->id[0] ? target_find(r->id) : NULL;

		if (t)
			t->watchers++;
	}
	pp = &D.targets;
	while (*pp) {
		struct target *t = *pp;

		if (!t->seen) {
			*pp = t->next;
			free(t->detail);
			free(t);
		} else {
			pp = &t->next;
		}
	}
	pthread_mutex_unlock(&D.mu);
}

static void tick(lws_sorted_usec_list_t *sul)
{
	targets_sync();
	for (struct dash_req *r = D.streams; r; r = r->next)
		lws_callback_on_writable(r->wsi);
	lws_sul_schedule(D.ctx, 0, &D.tick, tick, LWS_US_PER_SEC);
}

void dash_start(struct lws_context *ctx)
{
	pthread_attr_t a;
	pthread_t t;

	D.ctx = ctx;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 1024 * 1024);
	if (pthread_create(&t, &a, sampler_main, NULL))
		lwsl_err("sbx serve: dashboard: cannot start the sampler thread; no plots\n");
	pthread_attr_destroy(&a);
	lws_sul_schedule(ctx, 0, &D.tick, tick, LWS_US_PER_SEC);
}

/* ---- the event stream ---- */

/* A page that closes leaves its HTTP/1 stream's socket readable, and lws
 * 4.1 reads nothing during a transaction: the loop spun on it until the
 * next event's write failed (up to the 1 s tick, a whole core for that
 * time). So every 100 ms while there are streams, one poll(2) per stream
 * notices the hang-up and has lws close it. An HTTP/2 stream shares its
 * connection, whose reads lws does handle. */
static void hup_check(lws_sorted_usec_list_t *sul)
{
	for (struct dash_req *r = D.streams; r; r = r->next) {
		struct pollfd p = { .events = POLLRDHUP };

		if (lws_get_network_wsi(r->wsi) != r->wsi)
			continue;
		p.fd = lws_get_socket_fd(r->wsi);
		if (p.fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			lws_set_timeout(r->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	}
	if (D.streams)
		lws_sul_schedule(D.ctx, 0, &D.hup, hup_check, HUP_CHECK_US);
}

static json_t *box_item(struct sbox *b)
{
	struct target *t = target_find(b->id);
	json_t *ends = json_null();
	json_int_t rss = -1, guest = -1;

	if (!b->session)
		ends = json_integer(t ? (json_int_t)t->ends :
				    (json_int_t)(b->sb.created + b->sb.lifetime_s));
	if (t && t->nsamples) {
		unsigned k = (t->head + SAMPLES - 1) % SAMPLES;

		rss = t->rss_kib[k];
		if (t->guest_kib[k] != GUEST_NONE)
			guest = t->guest_kib[k];
	}
	return json_pack("{s:s,s:s,s:I,s:I,s:o,s:I,s:I,s:O}", "id", b->id, "state",
			 b->state == SBOX_BOOTING ? "booting" : "running", "created",
			 (json_int_t)b->created, "memory_mib", (json_int_t)b->memory_mib, "ends",
			 ends, "rss_kib", rss, "guest_kib", guest, "labels",
			 b->labels ? b->labels : json_object());
}

static json_t *detail_json(struct sbox *b)
{
	struct target *t = target_find(b->id);
	json_t *d = NULL, *rss = json_array(), *guest = json_array(), *cpu = json_array();

	if (t && t->detail)
		d = json_loads(t->detail, 0, NULL);
	if (!d)
		d = json_object();
	for (unsigned i = 0; t && i < t->nsamples; i++) {
		unsigned k = (t->head + SAMPLES - t->nsamples + i) % SAMPLES;

		json_array_append_new(rss, json_integer(t->rss_kib[k]));
		json_array_append_new(guest, t->guest_kib[k] == GUEST_NONE ? json_null() :
				      json_integer(t->guest_kib[k]));
		json_array_append_new(cpu, json_integer(t->cpu_pm[k]));
	}
	json_object_set_new(d, "id", json_string(b->id));
	json_object_set_new(d, "labels", json_deep_copy(b->labels ? b->labels : json_object()));
	json_object_set_new(d, "state", json_string(b->state == SBOX_BOOTING ? "booting" : "running"));
	json_object_set_new(d, "samples", json_pack("{s:i,s:o,s:o,s:o}", "step_s", 1, "rss_kib",
						     rss, "guest_kib", guest, "cpu_pm", cpu));
	return d;
}

static struct sbox *owned(const char *id, const char *owner)
{
	for (struct sbox *b = serve_boxes(); b; b = b->next)
		if (b->state != SBOX_DEAD && !strcmp(b->id, id) && !strcmp(b->owner, owner))
			return b;
	return NULL;
}

static int stream_write(struct dash_req *r)
{
	json_t *list = json_array(), *ev;
	struct sbox *shown = NULL;
	struct timespec ts;
	char *text;
	unsigned char *buf;
	size_t len;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&D.mu);
	for (struct sbox *b = serve_boxes(); b; b = b->next)
		if (b->state != SBOX_DEAD && !strcmp(b->owner, r->owner))
			json_array_append_new(list, box_item(b));
	if (r->id[0])
		shown = owned(r->id, r->owner);
	ev = json_pack("{s:I,s:o,s:o}", "now_ms",
		       (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "sandboxes", list,
		       "detail", r->id[0] ? (shown ? detail_json(shown) :
					     json_pack("{s:s,s:b}", "id", r->id, "gone", 1)) :
		       json_null());
	pthread_mutex_unlock(&D.mu);
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!text)
		return -1;
	len = strlen(text) + 8;
	buf = malloc(LWS_PRE + len + 1);
	if (!buf) {
		free(text);
		return -1;
	}
	len = (size_t)snprintf((char *)buf + LWS_PRE, len + 1, "data: %s\n\n", text);
	free(text);
	n = lws_write(r->wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP);
	free(buf);
	return n < 0 ? -1 : 0;
}

static int stream_start(struct lws *wsi, struct dash_req *r)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
		      *end = start + 2048;

	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "text/event-stream",
					LWS_ILLEGAL_HTTP_CONTENT_LEN, &p, end) ||
	    add_headers(wsi, &p, end) || lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	r->streaming = true;
	if (!D.streams)
		lws_sul_schedule(D.ctx, 0, &D.hup, hup_check, HUP_CHECK_US);
	r->next = D.streams;
	D.streams = r;
	/* The stream lives as long as the page: no idle timeout (and under
	 * HTTP/2, none for its connection either). */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	lws_http_mark_sse(wsi);
	lws_callback_on_writable(wsi);
	return 0;
}

/* ---- requests ---- */

static const struct dash_file *file_find(const char *name)
{
	for (size_t i = 0; i < dash_nfiles; i++)
		if (!strcmp(dash_files[i].name, name))
			return &dash_files[i];
	return NULL;
}

static void req_drop(struct dash_req **d)
{
	struct dash_req *r = *d;

	if (!r)
		return;
	if (r->streaming) {
		struct dash_req **pp = &D.streams;

		while (*pp && *pp != r)
			pp = &(*pp)->next;
		if (*pp)
			*pp = r->next;
	}
	free(r->body);
	free(r);
	*d = NULL;
}

bool dash_claims(struct lws *wsi, enum lws_callback_reasons reason, struct dash_req **d,
		 const void *in)
{
	const char *uri = in;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		req_drop(d);
		if (!uri || (strcmp(uri, "/") && strcmp(uri, "/dashboard") &&
			     strncmp(uri, "/dashboard/", 11)))
			return false;
		*d = calloc(1, sizeof(**d));
		if (*d)
			(*d)->wsi = wsi;
		return true;
	case LWS_CALLBACK_HTTP_BODY:
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return *d != NULL;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		req_drop(d);
		return false;
	default:
		return false;
	}
}

static int on_login(struct lws *wsi, struct dash_req *r)
{
	json_t *body = json_loadb(r->body ? r->body : "", r->blen, 0, NULL);
	const char *token = json_string_value(json_object_get(body, "token"));
	char owner[SERVE_OWNER_LEN + 1], cookie[200];
	struct session *s;
	int ret;

	if (!token || tokens_check(token, owner) < 0) {
		json_decref(body);
		return refuse(wsi, 401, "that is not a token of this server");
	}
	json_decref(body);
	s = session_new(owner);
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
		 COOKIE, s->sid, SESSION_S, lws_is_ssl(wsi) ? "; Secure" : "");
	ret = answer_json(wsi, 200, json_pack("{s:s}", "csrf", s->csrf), cookie);
	sodium_memzero(cookie, sizeof(cookie));
	return ret;
}

static int on_logout(struct lws *wsi)
{
	struct session *s = session_of(wsi);
	char cookie[120];

	if (!s || !csrf_ok(wsi, s))
		return refuse(wsi, 401, "not signed in");
	sodium_memzero(s, sizeof(*s));
	snprintf(cookie, sizeof(cookie), "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s",
		 COOKIE, lws_is_ssl(wsi) ? "; Secure" : "");
	return answer_json(wsi, 200, json_object(), cookie);
}

static int on_http(struct lws *wsi, struct dash_req *r, const char *uri)
{
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	struct session *s;

	if (!strcmp(uri, "/") || !strcmp(uri, "/dashboard") || !strcmp(uri, "/dashboard/"))
		r->file = file_find("index.html");
	else if (!strncmp(uri, "/dashboard/", 11) && strncmp(uri + 11, "api/", 4))
		r->file = file_find(uri + 11);
	if (r->file) {
		if (!get)
			return refuse(wsi, 405, "only GET");
		return answer(wsi, 200, r->file->type, r->file->data, r->file->len, NULL);
	}
	if (!strcmp(uri, "/dashboard/api/login") || !strcmp(uri, "/dashboard/api/logout")) {
		if (!post)
			return refuse(wsi, 405, "only POST");
		/* Signing in or out from another site's page is refused. */
		if (!origin_ok(wsi, true))
			return refuse(wsi, 403, "the request comes from another origin");
		r->kind = !strcmp(uri, "/dashboard/api/login") ? R_LOGIN : R_LOGOUT;
		if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
			return 0; /* the body follows */
		return r->kind == R_LOGIN ? on_login(wsi, r) : on_logout(wsi);
	}
	if (!get)
		return refuse(wsi, 405, "only GET");
	if (!origin_ok(wsi, false))
		return refuse(wsi, 403, "the request comes from another origin");
	s = session_of(wsi);
	if (!strcmp(uri, "/dashboard/api/session")) {
		if (!s)
			return refuse(wsi, 401, "not signed in");
		return answer_json(wsi, 200, json_pack("{s:s}", "csrf", s->csrf), NULL);
	}
	if (!strcmp(uri, "/dashboard/api/events")) {
		char id[64];

		if (!s)
			return refuse(wsi, 401, "not signed in");
		str_copy(r->owner, sizeof(r->owner), s->owner);
		if (lws_get_urlarg_by_name(wsi, "id=", id, sizeof(id))) {
			const char *v = id + 3;

			if (strlen(v) > SERVE_ID_LEN || !owned(v, r->owner))
				return refuse(wsi, 404, "no such sandbox");
			str_copy(r->id, sizeof(r->id), v);
		}
		r->kind = R_EVENTS;
		return stream_start(wsi, r);
	}
	return refuse(wsi, 404, "no such page");
}

int dash_callback(struct lws *wsi, enum lws_callback_reasons reason, struct dash_req **d,
		  void *in, size_t len)
{
	struct dash_req *r = *d;

	if (!r)
		return -1;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, r, in);
	case LWS_CALLBACK_HTTP_BODY: {
		char *p;

		if (r->blen + len > BODY_MAX)
			return refuse(wsi, 413, "the body is too large") ?: -1;
		p = realloc(r->body, r->blen + len + 1);
		if (!p)
			return -1;
		r->body = p;
		memcpy(r->body + r->blen, in, len);
		r->blen += len;
		r->body[r->blen] = '\0';
		return 0;
	}
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (r->kind == R_LOGIN)
			return on_login(wsi, r);
		if (r->kind == R_LOGOUT)
			return on_logout(wsi);
		return -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return r->streaming ? stream_write(r) : 0;
	default:
		return 0;
	}
}
