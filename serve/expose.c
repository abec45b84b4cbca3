/* sbx serve: exposeHttp and exposeSsh (deno.md §2.6, §2.7). Both stand on
 * the relay `sbx expose --detach` already is (libsbx/expose.c): a process
 * tied to the sandbox (it ends with its QEMU, `sbx kill` stops it, `sbx
 * info` lists it) that listens on the host and forwards to a guest port.
 *
 * HTTP: a TLS listener of its own (a libwebsockets vhost whose accepted
 * sockets are raw: lws decrypts, we see bytes) routes each connection by
 * its SNI name, <name>.BASE, to the relay of that name on 127.0.0.1 and
 * copies bytes both ways; unknown names get a 404. SSH: a relay on port 22
 * of a loopback address of its own, to the guest's SSH server, which lets
 * in one account named by the unguessable username, with no password. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "libsbx/sbx.h"
#include "libsbx/sbx_net.h"
#include "lib/atomic.h"
#include "lib/util.h"
#include "serve/serve.h"

#define NAME_LEN 24              /* 120 bits of a 32-letter alphabet */
#define NAMES_MAX 64             /* issued names per sandbox */
#define PIPE_HIGH (256 * 1024)   /* queued towards one side before the other pauses */
#define PIPE_LOW (64 * 1024)
#define IDLE_404_S 30            /* an unknown name's client, waiting to send */
#define SSH_TRIES 8              /* loopback addresses tried for one exposeSsh */
/* A sandbox's exposeHttp names, in its state directory, so that a
 * restarted server routes them again (expose_adopt). */
#define NAMES_FILE "serve-expose.json"

static const char alphabet[] = "0123456789abcdefghjkmnpqrstuvwxyz";

/* A name handed out by POST .../expose/http; bound by the exposeHttp call. */
struct xname {
	struct xname *next;
	char name[NAME_LEN + 1];
	char box[SERVE_ID_LEN + 1];
	struct sandbox *sb;          /* to see whether it still runs */
	char dir[PATH_MAX];          /* the sandbox's state directory ("": not known yet) */
	unsigned guest_port;         /* 0: not bound yet */
	unsigned relay_port;         /* the relay's port on 127.0.0.1 */
};

static struct {
	bool on;                     /* a listener serves exposeHttp */
	bool agent;                  /* --agent: no sandboxes to expose */
	struct lws_vhost *vh;
	char base[254];
	int port;
	char why_off[300];           /* why exposeHttp is off */
	pthread_mutex_t lock;        /* names: the loop and bind workers */
	struct xname *names;
} X = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void name_new(char *out, size_t len, bool letter_first)
{
	uint8_t raw[64];

	if (getrandom(raw, len, 0) != (ssize_t)len)
		abort(); /* never on Linux ≥ 3.17 after boot: no unguessable name without it */
	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[raw[i] % 32];
	if (letter_first)
		out[0] = alphabet[10 + raw[0] % 22];
	out[len] = '\0';
}

static void xname_free(struct xname *n)
{
	free(n->sb);
	free(n);
}

/* ---- answers ---- */

static void http_post(uint64_t req_id, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	struct event *e;

	json_decref(body);
	e = serve_event_new(EV_HTTP, req_id, s ? s : "{}", s ? strlen(s) : 2);
	free(s);
	if (!e)
		return;
	e->status = status;
	serve_post_event(e);
}

static void http_refuse(uint64_t req_id, int status, const char *code, const char *msg)
{
	http_post(req_id, status, json_pack("{s:s,s:s}", "code", code, "message", msg));
}

static void rpc_post(uint64_t conn_id, char *text)
{
	if (text)
		serve_post(EV_SEND, conn_id, NULL, text, strlen(text));
	free(text);
}

/* ---- the relay: `sbx expose --detach` ---- */

/* Starts `sbx expose -d [--bind ADDR --host-port HP] ID GUEST_PORT` and
 * returns the port it listens on. */
static int relay_spawn(const char *id, const char *bind, unsigned host_port, unsigned guest_port,
		       unsigned *port, char err[256])
{
	char hp[16], gp[16], out[1024], *colon;
	size_t got = 0;
	ssize_t n;
	int pfd[2], status;
	pid_t pid;

	snprintf(hp, sizeof(hp), "%u", host_port);
	snprintf(gp, sizeof(gp), "%u", guest_port);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, 256, "cannot make a pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, 256, "cannot start sbx expose: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -EAGAIN;
	}
	if (pid == 0) {
		/* Only system calls until exec: the parent has threads. */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		/* lws's sockets may lack CLOEXEC: the relay outlives us and must
		 * not hold our listening ports. */
		close_range(3, ~0U, 0);
		execl("/proc/self/exe", "sbx", "expose", "--detach", "--bind", bind, "--host-port",
		      hp, id, gp, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (got < sizeof(out) - 1 &&
	       ((n = read(pfd[0], out + got, sizeof(out) - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	colon = strrchr(out, ':');
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strncmp(out, "http://", 7) ||
	    !colon || sscanf(colon + 1, "%u", port) != 1) {
		out[strcspn(out, "\n")] = '\0';
		snprintf(err, 256, "sbx expose failed: %s", out[0] ? out : "no output");
		return -EIO;
	}
	return 0;
}

/* ---- exposeHttp: names ---- */

static struct xname *name_find(const char *name)
{
	for (struct xname *n = X.names; n; n = n->next)
		if (!strcmp(n->name, name))
			return n;
	return NULL;
}

static void names_drop(const char *box_id, const char *name)
{
	struct xname **pp = &X.names;

	while (*pp) {
		struct xname *n = *pp;

		if ((box_id && !strcmp(n->box, box_id)) || (name && !strcmp(n->name, name))) {
			*pp = n->next;
			xname_free(n);
		} else {
			pp = &n->next;
		}
	}
}

/* Writes box_id's names to NAMES_FILE in its state directory, atomically
 * (a restart finds the old list or the new one, never a mix). X.lock
 * held. A failure is logged: the names work until the next restart. */
static void names_save(const char *box_id)
{
	json_t *list = json_array(), *doc;
	const char *dir = NULL;
	char *text = NULL;
	int dfd = -1, r = -ENOMEM;

	for (struct xname *n = X.names; n && list; n = n->next)
		if (!strcmp(n->box, box_id)) {
			if (n->dir[0])
				dir = n->dir;
			json_array_append_new(list, json_pack("{s:s,s:i,s:i}", "name", n->name,
							      "guestPort", (int)n->guest_port,
							      "relayPort", (int)n->relay_port));
		}
	if (!dir) {
		json_decref(list);
		return;
	}
	doc = json_pack("{s:i,s:o}", "version", 1, "http", list);
	if (doc)
		text = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (text && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	else if (text)
		r = atomic_write(dfd, NAMES_FILE, text, strlen(text), 0600);
	if (r < 0)
		lwsl_warn("sbx serve: %s: cannot save the exposeHttp names in %s/%s: %s\n", box_id,
			  dir, NAMES_FILE, strerror(-r));
	if (dfd >= 0)
		close(dfd);
	free(text);
}

/* Does something listen on 127.0.0.1:port? */
static bool relay_listens(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static bool name_shape_ok(const char *name)
{
	if (strlen(name) != NAME_LEN)
		return false;
	for (const char *p = name; *p; p++)
		if (!strchr(alphabet, *p))
			return false;
	return true;
}

void expose_adopt(const struct sbox *b)
{
	char path[PATH_MAX + 32], err[256];
	json_t *doc, *v;
	size_t i;
	unsigned count = 0;
	bool changed = false;

	snprintf(path, sizeof(path), "%s/%s", b->sb.dir, NAMES_FILE);
	doc = json_load_file(path, 0, NULL);
	if (!doc)
		return; /* no names (or not readable: they are gone) */
	pthread_mutex_lock(&X.lock);
	json_array_foreach(json_object_get(doc, "http"), i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		json_int_t gp = json_integer_value(json_object_get(v, "guestPort"));
		json_int_t rp = json_integer_value(json_object_get(v, "relayPort"));
		struct xname *n;

		if (!name || !name_shape_ok(name) || name_find(name) || gp < 0 || gp > 65535 ||
		    rp < 0 || rp > 65535 || count >= NAMES_MAX)
			continue;
		n = calloc(1, sizeof(*n));
		if (!n || (gp && !(n->sb = malloc(sizeof(*n->sb))))) {
			free(n);
			break;
		}
		str_copy(n->name, sizeof(n->name), name);
		str_copy(n->box, sizeof(n->box), b->id);
		str_copy(n->dir, sizeof(n->dir), b->sb.dir);
		if (n->sb)
			*n->sb = b->sb;
		n->guest_port = (unsigned)gp;
		n->relay_port = (unsigned)rp;
		/* The relay lives with the sandbox; one that is gone (stopped
		 * by hand) is started again, for this name's port. */
		if (gp && (!rp || !relay_listens((unsigned)rp))) {
			unsigned relay = 0;

			for (struct xname *o = X.names; o; o = o->next)
				if (!strcmp(o->box, b->id) && o->guest_port == (unsigned)gp &&
				    o->relay_port)
					relay = o->relay_port;
			if (!relay && relay_spawn(b->id, "127.0.0.1", 0, (unsigned)gp, &relay, err) < 0)
				fprintf(stderr, "sbx serve: %s: exposeHttp name %s: %s\n", b->id, name,
					err);
			n->relay_port = relay;
			changed = true;
		}
		n->next = X.names;
		X.names = n;
		count++;
	}
	if (changed)
		names_save(b->id);
	pthread_mutex_unlock(&X.lock);
	json_decref(doc);
	/* Before lws's log is set up: plain stdout, like the start lines. */
	if (count)
		printf("sbx serve: %s: %u exposeHttp name%s found again\n", b->id, count,
		       count == 1 ? "" : "s");
}

static void ssh_waiting_run(struct sbox *b, const char *box_id);

void expose_forget(const char *box_id)
{
	ssh_waiting_run(NULL, box_id);
	pthread_mutex_lock(&X.lock);
	names_drop(box_id, NULL);
	pthread_mutex_unlock(&X.lock);
}

static void domain_of(const char *name, char *out, size_t n)
{
	if (X.port == 443)
		snprintf(out, n, "%s.%s", name, X.base);
	else
		snprintf(out, n, "%s.%s:%d", name, X.base, X.port);
}

static void rest_http(struct sbox *b, uint64_t req_id)
{
	struct xname *n;
	char domain[400];
	unsigned count = 0;

	if (!X.on) {
		http_refuse(req_id, 503, "NOT_AVAILABLE", X.why_off);
		return;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		http_refuse(req_id, 500, "INTERNAL", "out of memory");
		return;
	}
	name_new(n->name, NAME_LEN, true);
	str_copy(n->box, sizeof(n->box), b->id);
	pthread_mutex_lock(&X.lock);
	for (struct xname *o = X.names; o; o = o->next)
		count += !strcmp(o->box, b->id);
	if (count >= NAMES_MAX) {
		pthread_mutex_unlock(&X.lock);
		xname_free(n);
		http_refuse(req_id, 429, "LIMIT_EXCEEDED", "sbx serve: a sandbox has at most 64 "
			    "exposeHttp names");
		return;
	}
	if (b->state == SBOX_READY)
		str_copy(n->dir, sizeof(n->dir), b->sb.dir);
	n->next = X.names;
	X.names = n;
	names_save(b->id);
	pthread_mutex_unlock(&X.lock);
	domain_of(n->name, domain, sizeof(domain));
	lwsl_user("sbx serve: %s: exposeHttp name %s\n", b->id, domain);
	http_post(req_id, 200, json_pack("{s:s}", "domain", domain));
}

struct bind {
	uint64_t conn_id;
	json_t *id;
	char name[NAME_LEN + 1];
	char box[SERVE_ID_LEN + 1];
	unsigned guest_port;         /* 0: the port pid listens on */
	pid_t pid;
	char addr[PATH_MAX + 32];
	char token[65];
};

/* Run in the guest as the sandbox's user, the one the SDK's processes run
 * as (root there lacks CAP_SYS_PTRACE and cannot read another user's
 * /proc/PID/fd): the lowest TCP port that process $1 (or one of its
 * children) listens on, from its sockets' inodes in /proc/PID/fd and the
 * listening sockets (state 0A) of /proc/PID/net/tcp and tcp6. */
static const char PID_PORT_SCRIPT[] =
	"[ -d /proc/$1 ] || { echo \"no process $1 in the sandbox\" >&2; exit 3; }\n"
	"inodes=' '\n"
	"for p in $1 $(cat /proc/$1/task/*/children 2>/dev/null); do\n"
	"  for f in /proc/$p/fd/*; do\n"
	"    l=$(readlink \"$f\" 2>/dev/null) || continue\n"
	"    case $l in socket:\\[*\\]) i=${l#socket:?}; inodes=\"$inodes${i%]} \";; esac\n"
	"  done\n"
	"done\n"
	"cat /proc/$1/net/tcp /proc/$1/net/tcp6 2>/dev/null |\n"
	"while read -r _ local _ st _ _ _ _ _ inode _; do\n"
	"  [ \"$st\" = 0A ] || continue\n"
	"  case \"$inodes\" in *\" $inode \"*) printf '%d\\n' \"0x${local##*:}\";; esac\n"
	"done | sort -n | head -n 1\n";

#define PID_WAIT_MS 10000        /* for the process to start listening */

/* The port process pid listens on in the sandbox at addr, waiting a
 * little for it to listen (deno.run exposes before its server is up).
 * Shared with fetch {pid} (serve/fetch.c). */
int serve_pid_port(const char *addr, const char *token, pid_t pid, unsigned *port,
		   char err[256])
{
	char pidtxt[16], out[64];
	const char *argv[] = { "/bin/sh", "-c", PID_PORT_SCRIPT, "sh", pidtxt, NULL };
	struct sbx_exec_opts eo = { .argv = argv, .cwd = "/" };
	struct sbx_error e = { 0 };
	struct sbx_exit ex;

	snprintf(pidtxt, sizeof(pidtxt), "%d", (int)pid);
	sbx_set_token(token);
	for (int waited = 0;; waited += 500) {
		int pfd[2];
		ssize_t n;

		if (pipe2(pfd, O_CLOEXEC) < 0) {
			snprintf(err, 256, "cannot make a pipe: %s", strerror(errno));
			return -errno;
		}
		/* A few bytes: the pipe holds them until the command is done. */
		if (sbx_run(addr, &eo, -1, pfd[1], -1, &ex, &e) < 0) {
			close(pfd[0]);
			close(pfd[1]);
			snprintf(err, 256, "cannot look at process %d: %s", (int)pid, e.msg);
			return -EIO;
		}
		close(pfd[1]);
		n = read(pfd[0], out, sizeof(out) - 1);
		close(pfd[0]);
		out[n > 0 ? n : 0] = '\0';
		if (sbx_exit_status(&ex) == 3) {
			snprintf(err, 256, "no process %d in the sandbox", (int)pid);
			return -ESRCH;
		}
		if (sscanf(out, "%u", port) == 1 && *port >= 1 && *port <= 65535)
			return 0;
		if (waited >= PID_WAIT_MS) {
			snprintf(err, 256, "process %d listens on no TCP port (waited %d s)",
				 (int)pid, PID_WAIT_MS / 1000);
			return -ENOENT;
		}
		usleep(500 * 1000);
	}
}

static void *bind_main(void *arg)
{
	struct bind *bd = arg;
	unsigned relay = 0;
	char err[256], msg[400];
	struct xname *n;
	int r = 0;

	if (bd->pid &&
	    (r = serve_pid_port(bd->addr, bd->token, bd->pid, &bd->guest_port, err)) < 0) {
		snprintf(msg, sizeof(msg), "exposeHttp {pid: %d}: %s", (int)bd->pid, err);
		rpc_post(bd->conn_id, rpc_error_class(bd->id, r == -ESRCH ? "NotFound" : "Error",
						      r == -ESRCH ? "ENOENT" : "EIO", msg));
		goto out;
	}
	/* Another name of the sandbox on the same port shares its relay. */
	pthread_mutex_lock(&X.lock);
	for (n = X.names; n; n = n->next)
		if (!strcmp(n->box, bd->box) && n->guest_port == bd->guest_port && n->relay_port)
			relay = n->relay_port;
	pthread_mutex_unlock(&X.lock);
	if (!relay)
		r = relay_spawn(bd->box, "127.0.0.1", 0, bd->guest_port, &relay, err);
	pthread_mutex_lock(&X.lock);
	n = name_find(bd->name);
	if (r == 0 && n) {
		n->guest_port = bd->guest_port;
		n->relay_port = relay;
		names_save(bd->box);
	}
	pthread_mutex_unlock(&X.lock);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "exposeHttp: port %u: %s", bd->guest_port, err);
		rpc_post(bd->conn_id, rpc_error_class(bd->id, "Error", "EIO", msg));
	} else if (!n) {
		rpc_post(bd->conn_id, rpc_error_class(bd->id, "NotFound", "ENOENT", "exposeHttp: the "
						      "sandbox ended"));
	} else {
		lwsl_user("sbx serve: %s: %s.%s -> port %u (relay 127.0.0.1:%u)\n", bd->box, bd->name,
			  X.base, bd->guest_port, relay);
		rpc_post(bd->conn_id, rpc_ok(bd->id, NULL));
	}
out:
	json_decref(bd->id);
	free(bd);
	return NULL;
}

static int thread_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int r;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 256 * 1024);
	r = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -r;
}

void expose_rpc(uint64_t conn_id, struct sbox *b, json_t *id, json_t *params)
{
	const char *domain = json_string_value(json_object_get(params, "domain"));
	json_t *port = json_object_get(params, "port"), *pid = json_object_get(params, "pid");
	char name[NAME_LEN + 1], msg[300];
	struct bind *bd;
	struct sandbox *sb;
	struct xname *n;
	bool ours;

	if (!domain) {
		rpc_post(conn_id, rpc_error_class(id, "TypeError", NULL, "exposeHttp: domain must be "
						  "a string"));
		return;
	}
	if (!port && !json_is_integer(pid)) {
		rpc_post(conn_id, rpc_error_class(id, "TypeError", NULL, "exposeHttp: give {port} or "
						  "{pid}"));
		return;
	}
	if (port && (!json_is_integer(port) || json_integer_value(port) < 1 ||
		     json_integer_value(port) > 65535)) {
		rpc_post(conn_id, rpc_error_class(id, "TypeError", NULL, "exposeHttp: port must be "
						  "a number from 1 to 65535"));
		return;
	}
	if (!port && (json_integer_value(pid) < 1 || json_integer_value(pid) > INT32_MAX)) {
		rpc_post(conn_id, rpc_error_class(id, "TypeError", NULL, "exposeHttp: pid must be "
						  "a process id"));
		return;
	}
	str_copy(name, sizeof(name), domain);
	name[strcspn(name, ".")] = '\0';
	pthread_mutex_lock(&X.lock);
	n = name_find(name);
	ours = n && !strcmp(n->box, b->id);
	pthread_mutex_unlock(&X.lock);
	if (!ours) {
		snprintf(msg, sizeof(msg), "exposeHttp: %s was not handed out for this sandbox "
			 "(POST .../expose/http first)", domain);
		rpc_post(conn_id, rpc_error_class(id, "NotFound", "ENOENT", msg));
		return;
	}
	bd = calloc(1, sizeof(*bd));
	sb = malloc(sizeof(*sb));
	if (!bd || !sb) {
		free(bd);
		free(sb);
		rpc_post(conn_id, rpc_errno(id, ENOMEM, "out of memory"));
		return;
	}
	/* The sandbox runs: calls wait for its boot. */
	*sb = b->sb;
	pthread_mutex_lock(&X.lock);
	n = name_find(name);
	if (n && !n->sb) {
		n->sb = sb;
		sb = NULL;
	}
	if (n && !n->dir[0])
		str_copy(n->dir, sizeof(n->dir), b->sb.dir);
	pthread_mutex_unlock(&X.lock);
	free(sb);
	bd->conn_id = conn_id;
	bd->id = json_incref(id);
	str_copy(bd->name, sizeof(bd->name), name);
	str_copy(bd->box, sizeof(bd->box), b->id);
	if (port)
		bd->guest_port = (unsigned)json_integer_value(port);
	else
		bd->pid = (pid_t)json_integer_value(pid);
	str_copy(bd->addr, sizeof(bd->addr), b->sb.addr);
	str_copy(bd->token, sizeof(bd->token), b->sb.token);
	if (thread_detached(bind_main, bd) < 0) {
		json_decref(bd->id);
		free(bd);
		rpc_post(conn_id, rpc_errno(id, EAGAIN, "sbx serve: cannot start a worker thread"));
	}
}

/* ---- exposeHttp: the TLS listener ---- */

struct chunk {
	struct chunk *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE + len */
};

/* One side of a connection: what waits to be written to it. */
struct end {
	struct lws *wsi;             /* NULL once closed */
	struct chunk *head, *tail;
	size_t queued;
	bool paused;                 /* its reading is paused */
	bool gone;
};

/* A client (down) and the relay of its name (up). */
struct xpipe {
	struct end down, up;
	unsigned ends;               /* wsis alive */
	bool answered;               /* a 404/502 of our own went down */
	bool routed;                 /* the first bytes came: routed by name */
	bool unknown;                /* the name routes nowhere: 404 */
	bool sent_down;              /* any byte went down */
	char name[256];
};

static void queue(struct end *e, const void *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c) + LWS_PRE + len);

	if (!c)
		return;
	c->next = NULL;
	c->len = len;
	memcpy(c->data + LWS_PRE, data, len);
	if (e->tail)
		e->tail->next = c;
	else
		e->head = c;
	e->tail = c;
	e->queued += len;
	if (e->wsi)
		lws_callback_on_writable(e->wsi);
}

static void queue_free(struct end *e)
{
	while (e->head) {
		struct chunk *c = e->head;

		e->head = c->next;
		free(c);
	}
	e->tail = NULL;
	e->queued = 0;
}

/* Our own answer to the client, then the connection closes. */
static void answer(struct xpipe *p, int status, const char *text)
{
	char reply[800];
	int n;

	if (p->answered || p->sent_down)
		return;
	p->answered = true;
	n = snprintf(reply, sizeof(reply), "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
		     status == 404 ? "Not Found" : "Bad Gateway", strlen(text), text);
	queue(&p->down, reply, (size_t)n);
}

static struct end *end_of(struct xpipe *p, struct lws *wsi, struct end **other)
{
	bool down = wsi == p->down.wsi;

	*other = down ? &p->up : &p->down;
	return down ? &p->down : &p->up;
}

static void end_closed(struct xpipe *p, struct end *e, struct end *o)
{
	if (e->gone)
		return;
	e->gone = true;
	e->wsi = NULL;
	queue_free(e);
	if (o->paused && o->wsi) {
		o->paused = false;
		lws_rx_flow_control(o->wsi, 1);
	}
	if (o->wsi)
		lws_callback_on_writable(o->wsi); /* to flush, then close */
	if (--p->ends == 0)
		free(p);
}

/* The SNI name of a TLS connection, checked and stripped of .BASE. */
static bool sni_name(struct lws *wsi, char *out, size_t n)
{
	SSL *ssl = lws_get_ssl(wsi);
	const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	size_t len, blen = strlen(X.base);

	if (!sni)
		return false;
	str_copy(out, n, sni);
	len = strlen(out);
	if (len <= blen + 1 || out[len - blen - 1] != '.' || strcasecmp(out + len - blen, X.base))
		return false;
	out[len - blen - 1] = '\0';
	for (char *s = out; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	return true;
}

/* The relay port of a name whose sandbox still runs; 0: none. */
static unsigned route(const char *name)
{
	struct xname *n;
	unsigned port = 0;

	pthread_mutex_lock(&X.lock);
	n = name_find(name);
	if (n && n->relay_port && n->sb) {
		if (sandbox_alive(n->sb))
			port = n->relay_port;
		else
			names_drop(n->box, NULL); /* the sandbox ended */
	}
	pthread_mutex_unlock(&X.lock);
	return port;
}

static void on_adopt(struct lws *wsi)
{
	struct xpipe *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->down.wsi = wsi;
	p->ends = 1;
	p->up.gone = true; /* until the request routes somewhere */
	lws_set_opaque_user_data(wsi, p);
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, IDLE_404_S);
}

/* The first bytes came, so the handshake is done and the SNI name known:
 * connect to the name's relay, or answer 404 (answering before the
 * request is in would be lost to a reset). */
static void on_first_rx(struct lws *wsi, struct xpipe *p)
{
	struct lws_client_connect_info ci;
	char name[256] = "";
	unsigned port = 0;

	p->routed = true;
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	if (sni_name(wsi, name, sizeof(name)))
		port = route(name);
	str_copy(p->name, sizeof(p->name), name[0] ? name : "(no name)");
	if (!port) {
		char msg[400];

		p->unknown = true;
		snprintf(msg, sizeof(msg), "no sandbox port is exposed at %s.%s\n", p->name, X.base);
		answer(p, 404, msg);
		return;
	}
	memset(&ci, 0, sizeof(ci));
	ci.context = lws_get_context(wsi);
	ci.vhost = X.vh;
	ci.address = "127.0.0.1";
	ci.port = (int)port;
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.method = "RAW";
	ci.local_protocol_name = "sbx-expose";
	ci.opaque_user_data = p;
	p->ends++;
	p->up.gone = false;
	p->up.wsi = lws_client_connect_via_info(&ci);
	if (!p->up.wsi && !p->up.gone) {
		p->up.gone = true;
		p->ends--;
		answer(p, 502, "sbx serve: cannot reach the sandbox's relay\n");
	}
}

static int on_rx(struct lws *wsi, struct xpipe *p, const void *in, size_t len)
{
	struct end *o, *e = end_of(p, wsi, &o);

	if (e == &p->down && !p->routed)
		on_first_rx(wsi, p);
	if (o->gone)
		return 0;
	if (e == &p->up)
		p->sent_down = true;
	queue(o, in, len);
	if (o->queued > PIPE_HIGH && !e->paused) {
		e->paused = true;
		lws_rx_flow_control(wsi, 0);
	}
	return 0;
}

static int on_writeable(struct lws *wsi, struct xpipe *p)
{
	struct end *o, *e = end_of(p, wsi, &o);

	while (e->head && !lws_send_pipe_choked(wsi)) {
		struct chunk *c = e->head;
		int n = lws_write(wsi, c->data + LWS_PRE, c->len, LWS_WRITE_RAW);

		e->head = c->next;
		if (!e->head)
			e->tail = NULL;
		e->queued -= c->len;
		free(c);
		if (n < 0)
			return -1;
	}
	if (o->paused && o->wsi && e->queued < PIPE_LOW) {
		o->paused = false;
		lws_rx_flow_control(o->wsi, 1);
	}
	if (e->head) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	/* The other side is gone (or never was) and all of it is out. */
	if (o->gone && (e == &p->up || p->routed))
		return -1;
	return 0;
}

static int xcallback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct xpipe *p = lws_get_opaque_user_data(wsi);
	struct end *e, *o;

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		on_adopt(wsi);
		return 0;
	case LWS_CALLBACK_RAW_CONNECTED:
		if (p && p->up.head)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		return p ? on_rx(wsi, p, in, len) : -1;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return p ? on_writeable(wsi, p) : -1;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!p || p->up.gone)
			return 0;
		lwsl_warn("sbx serve: %s: cannot reach the relay: %s\n", p->name,
			  in ? (const char *)in : "?");
		p->up.wsi = wsi; /* end_of() tells the sides apart by wsi */
		e = end_of(p, wsi, &o);
		answer(p, 502, "sbx serve: the sandbox does not answer (has it ended?)\n");
		end_closed(p, e, o);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE:
		if (!p)
			return 0;
		lws_set_opaque_user_data(wsi, NULL);
		e = end_of(p, wsi, &o);
		end_closed(p, e, o);
		return 0;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols xprotocols[] = {
	{ "sbx-expose", xcallback, 0, 64 * 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

int expose_start(struct lws_context *ctx, const struct serve_opts *o)
{
	struct lws_context_creation_info i;
	struct tls_files f;
	const char *cert = o->tls_cert, *key = o->tls_key;
	char err[256];

	if (o->agent) {
		X.agent = true;
		snprintf(X.why_off, sizeof(X.why_off), "sbx serve --agent has no sandboxes to "
			 "expose");
		return 0;
	}
	if (!o->expose_addr) {
		snprintf(X.why_off, sizeof(X.why_off), "sbx serve runs without an exposeHttp "
			 "listener (--expose-listen)");
		return 0;
	}
	str_copy(X.base, sizeof(X.base), o->domain);
	if (!cert) {
		if (tls_ensure(X.base, &f, err) < 0) {
			fprintf(stderr, "sbx: serve: %s\n", err);
			return -EIO;
		}
		cert = f.cert;
		key = f.key;
	}
	memset(&i, 0, sizeof(i));
	i.port = o->expose_port;
	i.iface = o->expose_addr;
	i.vhost_name = X.base;
	i.protocols = xprotocols;
	/* lws reads DO_SSL_GLOBAL_INIT per vhost: without it, no TLS here. */
	i.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
		    LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	i.listen_accept_role = "raw-skt";
	i.listen_accept_protocol = "sbx-expose";
	i.ssl_cert_filepath = cert;
	i.ssl_private_key_filepath = key;
	i.alpn = "http/1.1";
	X.vh = lws_create_vhost(ctx, &i);
	if (!X.vh) {
		fprintf(stderr, "sbx: serve: cannot serve exposeHttp on %s:%d with %s and %s\n",
			o->expose_addr, o->expose_port, cert, key);
		return -EADDRINUSE;
	}
	X.port = lws_get_vhost_listen_port(X.vh);
	X.on = true;
	printf("sbx serve: exposeHttp at https://<name>.%s:%d (TLS on %s:%d", X.base, X.port,
	       o->expose_addr, X.port);
	if (o->tls_cert)
		printf(", certificate %s)\n", cert);
	else
		printf("; clients trust the CA %s)\n", f.ca);
	return 0;
}

/* ---- exposeSsh ---- */

/* Run as root in the guest: a passwd entry named $1, with app's uid, gid,
 * home and shell (root's when the image has no app), and an empty
 * password field, which the guest's SSH server accepts with no password
 * (dropbear -B). Nothing is in /etc/shadow for it. */
static const char ACCOUNT_SCRIPT[] =
	"set -e\n"
	"line=$(grep '^app:' /etc/passwd || grep '^root:' /etc/passwd)\n"
	"IFS=: read -r _ _ uid gid _ home shell <<EOF\n"
	"$line\n"
	"EOF\n"
	"printf '%s::%s:%s:sbx serve exposeSsh:%s:%s\\n' \"$1\" \"$uid\" \"$gid\" \"$home\" "
	"\"$shell\" >> /etc/passwd\n";

struct sshx {
	uint64_t req_id;
	char id[SERVE_ID_LEN + 1];
	char addr[PATH_MAX + 32];
	char token[65];
};

static void *ssh_main(void *arg)
{
	struct sshx *s = arg;
	struct ssh_server_info srv;
	struct sbx_error err = { 0 };
	struct sbx_exit ex;
	char user[NAME_LEN + 1], host[32], why[256], msg[600];
	unsigned port;
	int r = -EIO;

	sbx_set_token(s->token);
	if (sbx_ssh_start(s->addr, &srv, &err) < 0) {
		snprintf(msg, sizeof(msg), "the sandbox's SSH server did not start: %s", err.msg);
		goto fail;
	}
	name_new(user, NAME_LEN, true);
	{
		const char *argv[] = { "/bin/sh", "-c", ACCOUNT_SCRIPT, "sh", user, NULL };
		struct sbx_exec_opts eo = { .argv = argv, .user = "root", .cwd = "/" };

		if (sbx_run(s->addr, &eo, -1, -1, -1, &ex, &err) < 0) {
			snprintf(msg, sizeof(msg), "cannot add the login account: %s", err.msg);
			goto fail;
		}
		if (sbx_exit_status(&ex) != 0) {
			snprintf(msg, sizeof(msg), "cannot add the login account: the script exited "
				 "%d", sbx_exit_status(&ex));
			goto fail;
		}
	}
	/* A loopback address of its own, so that port 22 is free. */
	for (int t = 0; t < SSH_TRIES; t++) {
		uint8_t a[3];

		if (getrandom(a, sizeof(a), 0) != sizeof(a))
			break;
		snprintf(host, sizeof(host), "127.%u.%u.%u", 1 + a[0] % 254, a[1], 1 + a[2] % 254);
		r = relay_spawn(s->id, host, 22, srv.port, &port, why);
		if (r == 0)
			break;
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "cannot listen on port 22 of a loopback address: %s", why);
		goto fail;
	}
	lwsl_user("sbx serve: %s: exposeSsh at %s@%s\n", s->id, user, host);
	http_post(s->req_id, 200, json_pack("{s:s,s:s}", "hostname", host, "username", user));
	free(s);
	return NULL;
fail:
	lwsl_err("sbx serve: %s: exposeSsh: %s\n", s->id, msg);
	http_refuse(s->req_id, 500, "EXPOSE_FAILED", msg);
	free(s);
	return NULL;
}

/* exposeSsh calls that came during a boot (Sandbox.create({ssh: true})
 * makes one at once); loop only. */
struct ssh_wait {
	struct ssh_wait *next;
	uint64_t req_id;
	char box[SERVE_ID_LEN + 1];
};
static struct ssh_wait *ssh_waiting;

static void rest_ssh(struct sbox *b, uint64_t req_id)
{
	struct sshx *s;

	if (X.agent) {
		http_refuse(req_id, 501, "NOT_SUPPORTED", X.why_off);
		return;
	}
	if (b->state == SBOX_BOOTING) {
		struct ssh_wait *w = calloc(1, sizeof(*w));

		if (!w) {
			http_refuse(req_id, 500, "INTERNAL", "out of memory");
			return;
		}
		w->req_id = req_id;
		str_copy(w->box, sizeof(w->box), b->id);
		w->next = ssh_waiting;
		ssh_waiting = w;
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		http_refuse(req_id, 500, "INTERNAL", "out of memory");
		return;
	}
	s->req_id = req_id;
	str_copy(s->id, sizeof(s->id), b->id);
	str_copy(s->addr, sizeof(s->addr), b->sb.addr);
	str_copy(s->token, sizeof(s->token), b->sb.token);
	if (thread_detached(ssh_main, s) < 0) {
		free(s);
		http_refuse(req_id, 500, "INTERNAL", "cannot start a thread");
	}
}

void expose_rest(struct sbox *b, uint64_t req_id, const char *what)
{
	char msg[200];

	if (!strcmp(what, "http")) {
		rest_http(b, req_id);
	} else if (!strcmp(what, "ssh")) {
		rest_ssh(b, req_id);
	} else {
		snprintf(msg, sizeof(msg), "sbx serve: expose %.60s is not available (no VS Code in "
			 "the images)", what);
		http_refuse(req_id, 501, "NOT_SUPPORTED", msg);
	}
}

/* Answers or starts the exposeSsh calls waiting for box (or all of
 * box_id's when b is NULL: it was killed). */
static void ssh_waiting_run(struct sbox *b, const char *box_id)
{
	struct ssh_wait **pp = &ssh_waiting;

	while (*pp) {
		struct ssh_wait *w = *pp;

		if (strcmp(w->box, box_id)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (b && b->state == SBOX_READY)
			rest_ssh(b, w->req_id);
		else
			http_refuse(w->req_id, 404, "SANDBOX_NOT_FOUND", "the sandbox ended before "
				    "its SSH could be exposed");
		free(w);
	}
}

void expose_booted(struct sbox *b)
{
	ssh_waiting_run(b, b->id);
}
