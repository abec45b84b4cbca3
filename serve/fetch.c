/* sbx serve: fetch (deno.md §5.1), an HTTP request made from inside the
 * sandbox's network: `sandbox.fetch(url)` and, with a pid, a deno.run
 * process's own server (`DenoProcess.fetch`, sent to 127.0.0.1 on the
 * port that process listens on, the path of the URL kept).
 *
 * The guest's curl makes the request (no HTTP code here): the request
 * body, read whole from the client's stream, is its stdin; its output is
 * the reason phrase of the last status line, then curl's own JSON
 * (--write-out %{json} for the status, %{header_json} for the headers),
 * then the body, all read whole (up to SERVE_READ_MAX) before the answer,
 * whose body goes out as a server stream in 64 KiB chunks. So the answer
 * comes once the response is complete: an endless response (server-sent
 * events) never answers, until the client aborts it (run_curl). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "serve/serve.h"

#define FETCH_HEADERS_MAX 256
#define FETCH_CHUNK (64u << 10)
#define FETCH_ERR_MAX 1024
#define TCHARS "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

/* In the guest: $1 the URL, $2 the method, then curl's options. Exit 90:
 * no curl; else curl's own exit status (its message on stderr). */
static const char fetch_sh[] =
	"command -v curl >/dev/null || { echo 'curl is not installed in the sandbox' >&2; exit 90; }\n"
	"t=$(mktemp -d) || exit 1\n"
	"trap 'rm -rf \"$t\"' EXIT\n"
	"u=$1 m=$2; shift 2\n"
	"if [ \"$m\" = HEAD ]; then set -- -I \"$@\"; else set -- -X \"$m\" \"$@\"; fi\n"
	"curl -sS --no-buffer --connect-timeout 30 -D \"$t/h\" -o \"$t/b\" \\\n"
	"  -w '%{json}\\n%{header_json}\\n' \"$@\" --url \"$u\" >\"$t/w\" || exit $?\n"
	"r=$(grep -a '^HTTP/' \"$t/h\" | tail -n 1 | tr -d '\\r')\n"
	"r=${r#* }; case $r in *' '*) r=${r#* } ;; *) r= ;; esac\n"
	"printf '%s\\n' \"$r\"\n"
	"cat \"$t/w\" \"$t/b\"\n";

static char *fail(struct call *c, int e, const char *cls, const char *fmt, const char *a,
		  const char *b)
{
	char msg[FETCH_ERR_MAX + 512];

	snprintf(msg, sizeof(msg), fmt, a, b);
	return cls ? rpc_error_class(c->id, cls, NULL, msg) : rpc_errno(c->id, e, msg);
}

/* The client's body stream, whole, into fd. */
static int read_body(struct call *c, int fd, struct sbx_error *err)
{
	struct job *j = c->job;
	int r = 0;

	for (;;) {
		struct in_item *it;
		bool resume;

		while ((it = job_pop(j, &resume))) {
			enum in_kind k = it->kind;

			if (resume)
				serve_post(EV_RESUME, j->conn_id, NULL, NULL, 0);
			if (k == IN_DATA && r == 0 && write(fd, it->data, it->len) != (ssize_t)it->len)
				r = sbx_fail(err, errno ? errno : EIO, "the request body: %s",
					     strerror(errno ? errno : EIO));
			free(it);
			if (k == IN_EOF)
				return r;
			if (k == IN_ERROR)
				return sbx_fail(err, ECANCELED, "the client aborted the request body");
		}
		if (job_cancelled(j))
			return sbx_fail(err, ECONNRESET, "the client went away");
		if (serve_call_aborted(c))
			return sbx_fail(err, ECANCELED, "the client aborted the call");
		job_wait(j, -1, 0, 1000);
	}
}

/* Runs o in the guest as sbx_run does (in: stdin, out and errout: the
 * output, errout only its first FETCH_ERR_MAX bytes), but gives up when
 * the client aborts the call or goes away: closing the agent connection
 * hangs up on curl in the guest. */
static int run_curl(struct call *c, const struct sbx_exec_opts *o, int in, int out, int errout,
		    struct sbx_exit *x, struct sbx_error *err)
{
	struct job *j = c->job;
	struct sbx_conn *conn = NULL;
	bool want_write = false, in_open = in >= 0;
	size_t got = 0, errlen = 0;
	uint8_t chunk[FETCH_CHUNK];
	int r;

	if ((r = sbx_connect(c->addr, &conn, err)) < 0 || (r = sbx_exec_send(conn, o, err)) < 0 ||
	    (r = sbx_flush(conn, err)) < 0)
		goto out;
	for (;;) {
		struct sbx_event ev;
		struct frame f;
		short events = POLLIN;

		while (in_open && buf_len(sbx_txbuf(conn)) < (1u << 20)) {
			ssize_t n = read(in, chunk, sizeof(chunk));

			if (n < 0) {
				r = sbx_fail(err, errno, "the request body: %s", strerror(errno));
				goto out;
			}
			r = n ? sbx_exec_stdin(conn, chunk, (size_t)n, err) : sbx_exec_stdin_eof(conn, err);
			if (r < 0)
				goto out;
			in_open = n > 0;
		}
		if (buf_len(sbx_txbuf(conn)))
			events |= POLLOUT;
		job_wait(j, sbx_fd(conn), events, 1000);
		if (job_cancelled(j)) {
			r = sbx_fail(err, ECONNRESET, "the client went away");
			goto out;
		}
		if (serve_call_aborted(c)) {
			r = sbx_fail(err, ECANCELED, "the client aborted the call");
			goto out;
		}
		if ((r = sbx_pump(conn, &want_write, err)) < 0)
			goto out;
		while ((r = sbx_next_frame(conn, &f, err)) == 1) {
			if ((r = sbx_exec_event(&f, &ev, err)) < 0)
				goto out;
			if (ev.kind == SBX_EV_STDOUT) {
				got += ev.len;
				if (got > SERVE_READ_MAX) {
					r = sbx_fail(err, EFBIG, "the response is larger than 64 MiB");
					goto out;
				}
				if (write(out, ev.data, ev.len) != (ssize_t)ev.len) {
					r = sbx_fail(err, errno ? errno : EIO, "keeping the response: %s",
						     strerror(errno ? errno : EIO));
					goto out;
				}
			} else if (ev.kind == SBX_EV_STDERR && errlen < FETCH_ERR_MAX) {
				size_t n = ev.len < FETCH_ERR_MAX - errlen ? ev.len : FETCH_ERR_MAX - errlen;

				if (write(errout, ev.data, n) == (ssize_t)n)
					errlen += n;
			} else if (ev.kind == SBX_EV_EXIT) {
				*x = ev.exit;
				r = 0;
				goto out;
			}
		}
		if (r < 0)
			goto out;
	}
out:
	sbx_close(conn);
	return r;
}

static int memfd(const char *name)
{
	return memfd_create(name, MFD_CLOEXEC);
}

/* The whole of fd, malloc'd and NUL-terminated; NULL with *len beyond
 * SERVE_READ_MAX when too large. */
static char *slurp(int fd, size_t *len)
{
	struct stat st;
	char *s;

	*len = 0;
	if (fstat(fd, &st) < 0)
		return NULL;
	*len = (size_t)st.st_size;
	if (*len > SERVE_READ_MAX)
		return NULL;
	s = malloc(*len + 1);
	if (!s)
		return NULL;
	if (pread(fd, s, *len, 0) != (ssize_t)*len) {
		free(s);
		return NULL;
	}
	s[*len] = '\0';
	return s;
}

/* http://127.0.0.1:PORT followed by the URL's path and query. */
static int pid_url(struct call *c, const char *url, char **out, char *why)
{
	json_t *p = json_object_get(c->params, "pid");
	const char *rest = strstr(url, "://");
	unsigned port;
	char err[256];
	int r;

	if (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 0x7fffffff) {
		snprintf(why, 256, "pid must be a process id");
		return -EINVAL;
	}
	r = serve_pid_port(c->addr, c->token[0] ? c->token : NULL,
			   (pid_t)json_integer_value(p), &port, err);
	sbx_set_token(c->token[0] ? c->token : NULL);
	if (r < 0) {
		snprintf(why, 256, "%s", err);
		return r;
	}
	rest = rest ? strchr(rest + 3, '/') : NULL;
	if (asprintf(out, "http://127.0.0.1:%u%s", port, rest ? rest : "/") < 0)
		return -ENOMEM;
	return 0;
}

/* Answers with the response in out (fetch_sh's layout). */
static void answer(struct call *c, const char *method, const char *url, char *out, size_t len)
{
	struct job *j = c->job;
	json_error_t je;
	json_t *info = NULL, *hdrs = NULL, *list = NULL, *v, *res;
	char *nl = memchr(out, '\n', len), *p;
	const char *name;
	size_t left, off, i;
	json_int_t status;
	uint64_t sid = 0;
	bool nobody;

	if (!nl)
		goto bad;
	*nl = '\0';
	p = nl + 1;
	left = len - (size_t)(p - out);
	info = json_loadb(p, left, JSON_DISABLE_EOF_CHECK, &je);
	if (!json_is_object(info))
		goto bad;
	p += je.position;
	left -= (size_t)je.position;
	hdrs = json_loadb(p, left, JSON_DISABLE_EOF_CHECK, &je);
	if (!json_is_object(hdrs) || (size_t)je.position >= left || p[je.position] != '\n')
		goto bad;
	p += je.position + 1;
	left -= (size_t)je.position + 1;
	status = json_integer_value(json_object_get(info, "response_code"));
	if (status < 200 || status > 599) {
		call_answer(c, fail(c, 0, "TypeError", "fetch %s: the answer's status is not one a "
				    "Response can have (%s)", url, nl == out ? "none" : out));
		goto out;
	}
	list = json_array();
	json_object_foreach(hdrs, name, v) {
		json_t *s;

		json_array_foreach(v, i, s)
			if (json_is_string(s))
				json_array_append_new(list, json_pack("[s,O]", name, s));
	}
	nobody = !strcmp(method, "HEAD") || status == 204 || status == 205 || status == 304;
	if (!nobody) {
		sid = serve_stream_id();
		job_stream_set(j, 0, sid);
		job_send(j, rpc_notify("$sandbox.stream.start",
				       json_pack("{s:I}", "streamId", (json_int_t)sid)));
	}
	/* a reason phrase that is not UTF-8 (JSON cannot carry it): none */
	v = json_string(out);
	res = json_pack("{s:I,s:o,s:o,s:o}", "status", status, "statusText", v ? v : json_string(""),
			"headers", list, "bodyStreamId",
			sid ? json_integer((json_int_t)sid) : json_null());
	job_send(j, rpc_ok(c->id, res));
	for (off = 0; sid && off < left; off += FETCH_CHUNK) {
		size_t n = left - off < FETCH_CHUNK ? left - off : FETCH_CHUNK;
		json_t *m;
		char *b;

		while (!job_may_send(j))
			job_wait(j, -1, 0, 1000);
		if (job_cancelled(j) || job_stream_cancelled(j, 0))
			goto out;
		b = serve_b64(p + off, n);
		if (!b)
			break;
		m = json_pack("{s:I,s:s}", "streamId", (json_int_t)sid, "data", b);
		free(b);
		job_send(j, rpc_notify("$sandbox.stream.enqueue", m));
	}
	if (sid && !job_stream_cancelled(j, 0))
		job_send(j, rpc_notify("$sandbox.stream.end",
				       json_pack("{s:I}", "streamId", (json_int_t)sid)));
	goto out;
bad:
	call_answer(c, fail(c, EIO, NULL, "fetch %s: curl in the sandbox answered something "
			    "unexpected%s", url, ""));
out:
	json_decref(info);
	json_decref(hdrs);
}

/* A curl exit status as the call's error (curl's own message in why). */
static char *curl_error(struct call *c, const char *url, int code, const char *why)
{
	char msg[FETCH_ERR_MAX + 512];

	snprintf(msg, sizeof(msg), "fetch %s: %s", url, why[0] ? why : "curl failed");
	switch (code) {
	case 7:
		return rpc_errno(c->id, ECONNREFUSED, msg);
	case 28:
		return rpc_errno(c->id, ETIMEDOUT, msg);
	case 90:
		return rpc_errno(c->id, ENOENT, msg);
	default:
		return rpc_error_class(c->id, "TypeError", NULL, msg);
	}
}

int m_fetch(struct call *c)
{
	const char *url = json_string_value(json_object_get(c->params, "url"));
	const char *method = json_string_value(json_object_get(c->params, "method"));
	const char *redirect = json_string_value(json_object_get(c->params, "redirect"));
	json_t *headers = json_object_get(c->params, "headers"), *h;
	bool body = json_is_integer(json_object_get(c->params, "bodyStreamId")), ctype = false;
	const char **argv = NULL;
	char **hv = NULL, *target = NULL, *out = NULL, why[FETCH_ERR_MAX];
	struct sbx_error err = { 0 };
	struct sbx_exec_opts o = { 0 };
	struct sbx_exit x;
	int in = -1, of = -1, ef = -1, r = -EINVAL;
	size_t nh, k = 0, i, len = 0;

	if (!url || !method || !*method || strpbrk(method, " \r\n")) {
		call_answer(c, fail(c, 0, "TypeError", "fetch: %s%s", "url and method must be strings",
				    ""));
		goto out;
	}
	if (!json_is_array(headers) || (nh = json_array_size(headers)) > FETCH_HEADERS_MAX) {
		call_answer(c, fail(c, 0, "TypeError", "fetch %s: headers must be an array of at "
				    "most 256 [name, value] pairs%s", url, ""));
		goto out;
	}
	if (json_is_integer(json_object_get(c->params, "pid"))) {
		if ((r = pid_url(c, url, &target, why)) < 0) {
			call_answer(c, fail(c, r, r == -EINVAL ? "TypeError" : NULL, "fetch %s: %s",
					    url, why));
			goto out;
		}
	} else if (!(target = strdup(url))) {
		r = -ENOMEM;
		call_answer(c, rpc_errno(c->id, r, "fetch: out of memory"));
		goto out;
	}
	argv = calloc(2 * nh + 16, sizeof(*argv));
	hv = calloc(nh + 1, sizeof(*hv));
	if (!argv || !hv) {
		r = -ENOMEM;
		call_answer(c, rpc_errno(c->id, r, "fetch: out of memory"));
		goto out;
	}
	argv[k++] = "bash";
	argv[k++] = "-c";
	argv[k++] = fetch_sh;
	argv[k++] = "sbx-serve-fetch";
	argv[k++] = target;
	argv[k++] = method;
	json_array_foreach(headers, i, h) {
		const char *n = json_string_value(json_array_get(h, 0));
		const char *v = json_string_value(json_array_get(h, 1));

		/* a name is an RFC 9110 token (so never curl's "@file") */
		if (!n || !v || !*n || n[strspn(n, TCHARS)] || strpbrk(v, "\r\n")) {
			call_answer(c, fail(c, 0, "TypeError", "fetch %s: header %s is not a valid "
					    "[name, value] pair", url, n ? n : "?"));
			goto out;
		}
		if (!strcasecmp(n, "content-type"))
			ctype = true;
		/* "Name;" is curl's way to send a header with an empty value */
		if (asprintf(&hv[i], *v ? "%s: %s" : "%s;", n, v) < 0) {
			r = -ENOMEM;
			call_answer(c, rpc_errno(c->id, r, "fetch: out of memory"));
			goto out;
		}
		argv[k++] = "-H";
		argv[k++] = hv[i];
	}
	/* curl adds neither: no form content type for a raw body, no
	 * "Expect: 100-continue" wait before a large one */
	if (body && !ctype) {
		argv[k++] = "-H";
		argv[k++] = "Content-Type:";
	}
	argv[k++] = "-H";
	argv[k++] = "Expect:";
	if (body) {
		argv[k++] = "--data-binary";
		argv[k++] = "@-";
	}
	if (redirect && !strcmp(redirect, "follow"))
		argv[k++] = "-L";
	argv[k] = NULL;

	of = memfd("sbx-serve-fetch-out");
	ef = memfd("sbx-serve-fetch-err");
	if (of < 0 || ef < 0) {
		r = -errno;
		call_answer(c, rpc_errno(c->id, r, "fetch: memfd_create failed"));
		goto out;
	}
	if (body) {
		in = memfd("sbx-serve-fetch-in");
		if (in < 0) {
			r = -errno;
			call_answer(c, rpc_errno(c->id, r, "fetch: memfd_create failed"));
			goto out;
		}
		if ((r = read_body(c, in, &err)) < 0 || lseek(in, 0, SEEK_SET) < 0) {
			if (r == -ECANCELED && serve_call_aborted(c))
				call_answer(c, rpc_aborted(c->id));
			else
				call_answer(c, fail(c, r ? r : -EIO, NULL, "fetch %s: %s", url, err.msg));
			goto out;
		}
	}
	o.argv = argv;
	o.stdin_pipe = body;
	o.cwd = "/";
	if ((r = run_curl(c, &o, in, of, ef, &x, &err)) < 0) {
		if (r == -ECANCELED && serve_call_aborted(c))
			call_answer(c, rpc_aborted(c->id));
		else
			call_answer(c, fail(c, r, NULL, "fetch %s: %s", url, err.msg));
		goto out;
	}
	if (x.how != EXIT_EXITED || x.code != 0) {
		ssize_t n = pread(ef, why, sizeof(why) - 1, 0);

		why[n > 0 ? n : 0] = '\0';
		why[strcspn(why, "\n")] = '\0';
		call_answer(c, curl_error(c, url, x.how == EXIT_EXITED ? x.code : -1, why));
		r = -EIO;
		goto out;
	}
	out = slurp(of, &len);
	if (!out) {
		r = len > SERVE_READ_MAX ? -EFBIG : -ENOMEM;
		call_answer(c, fail(c, r, NULL, "fetch %s: %s", url,
				    r == -EFBIG ? "the response is larger than 64 MiB"
						: "cannot read curl's output"));
		goto out;
	}
	answer(c, method, url, out, len);
	r = 0;
out:
	if (in >= 0)
		close(in);
	if (of >= 0)
		close(of);
	if (ef >= 0)
		close(ef);
	for (i = 0; hv && hv[i]; i++)
		free(hv[i]);
	free(hv);
	free(argv);
	free(target);
	free(out);
	return r;
}
