/* SSH_KEY_ADD, SSH_KEY_REMOVE, SSH_KEY_LIST: a user's ~/.ssh/authorized_keys.
 * The directory is created 0700 and the file rewritten atomically (a
 * temporary file, fsync, rename, fsync of the directory) 0600, both owned
 * by the user. Everything is opened relative to the home directory
 * without following symbolic links, so a user cannot point the agent's
 * writes elsewhere. The files are small; the work is done on the spot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn/agent.h"
#include "lib/atomic.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/user.h"
#include "lib/util.h"
#include "net/net.h"
#include "vsock/proto_net.h"

/* The whole file must fit in one SSH_KEYS reply. */
#define AUTH_KEYS_MAX (512 * 1024)
#define AUTH_KEYS "authorized_keys"

struct keyfile {
	struct user u;
	int home, dir;          /* fds; dir is ~/.ssh, -1 when it does not exist */
	char *text;             /* the file's content */
	size_t len;
	char path[PATH_MAX + 32];
};

/* Opens ~/.ssh, creating it when `create`. -ENOENT: it does not exist. */
static int open_ssh_dir(struct keyfile *k, bool create, char *why, size_t n)
{
	struct stat st;
	bool made = false;
	int fd;

	k->home = open(k->u.home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k->home < 0) {
		snprintf(why, n, "cannot open the home directory of %s, %s: %s", k->u.name,
			 k->u.home, strerror(errno));
		return -errno;
	}
	fd = openat(k->home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(k->home, ".ssh", 0700) < 0 && errno != EEXIST) {
			snprintf(why, n, "cannot create %s/.ssh: %s", k->u.home, strerror(errno));
			return -errno;
		}
		made = true;
		fd = openat(k->home, ".ssh", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		int err = errno;

		if (err == ENOENT)
			return -ENOENT;
		snprintf(why, n, "cannot open %s/.ssh%s: %s", k->u.home,
			 err == ELOOP || err == ENOTDIR ? " (not a directory)" : "", strerror(err));
		return -err;
	}
	k->dir = fd;
	if (made && (fchown(fd, k->u.uid, k->u.gid) < 0 || fchmod(fd, 0700) < 0)) {
		snprintf(why, n, "cannot give %s/.ssh to %s: %s", k->u.home, k->u.name,
			 strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != k->u.uid && st.st_uid != 0) {
		snprintf(why, n, "%s/.ssh belongs to uid %u, not to %s", k->u.home,
			 (unsigned)st.st_uid, k->u.name);
		return -EPERM;
	}
	return 0;
}

static int read_keys(struct keyfile *k, char *why, size_t n)
{
	struct stat st;
	ssize_t got;
	int fd;

	k->text = NULL;
	k->len = 0;
	if (k->dir < 0)
		return 0;
	fd = openat(k->dir, AUTH_KEYS, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, n, "cannot open %s: %s", k->path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_KEYS_MAX) {
		snprintf(why, n, "%s is not a regular file of at most %d bytes", k->path,
			 AUTH_KEYS_MAX);
		close(fd);
		return -EFBIG;
	}
	k->text = malloc((size_t)st.st_size + 1);
	if (!k->text) {
		close(fd);
		return -ENOMEM;
	}
	/* Read one byte more than the size, to notice a file that grew. */
	while ((got = read(fd, k->text + k->len, (size_t)st.st_size + 1 - k->len)) > 0)
		k->len += (size_t)got;
	close(fd);
	if (got < 0 || k->len > (size_t)st.st_size) {
		snprintf(why, n, "cannot read %s: %s", k->path,
			 got < 0 ? strerror(errno) : "it changed while being read");
		return got < 0 ? -errno : -EAGAIN;
	}
	return 0;
}

/* Replaces the file with text[0..len), atomically (lib/atomic.h), owned by
 * the user. */
static int write_keys(struct keyfile *k, const char *text, size_t len, char *why, size_t n)
{
	struct atomic_file a;
	int r;

	if ((r = atomic_open(&a, k->dir, AUTH_KEYS)) < 0) {
		snprintf(why, n, "cannot create a file in %s/.ssh: %s", k->u.home, strerror(-r));
		return r;
	}
	if (fchown(a.fd, k->u.uid, k->u.gid) < 0 || fchmod(a.fd, 0600) < 0)
		r = -errno;
	else if ((r = fd_write_all(a.fd, text, len)) == 0 && fsync(a.fd) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(why, n, "cannot write %s: %s", k->path, strerror(-r));
		goto out_abort;
	}
	if ((r = atomic_commit(&a, false, false, true)) < 0) {
		snprintf(why, n, "cannot replace %s: %s", k->path, strerror(-r));
		goto out_abort;
	}
	return 0;
out_abort:
	atomic_abort(&a);
	return r;
}

/* Calls fn for each line of text (without its newline); stops when fn
 * returns non-zero and returns that. */
static int each_line(const char *text, size_t len,
		     int (*fn)(void *arg, const char *line, size_t n), void *arg)
{
	size_t at = 0;

	while (at < len) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - text) : len;
		int r = fn(arg, text + at, end - at);

		if (r)
			return r;
		at = end + 1;
	}
	return 0;
}

static struct ssh_pubkey want, have;

static int line_has_key(void *arg, const char *line, size_t n)
{
	return ssh_key_find(line, n, &have) == 1 && ssh_key_equal(&have, &want);
}

struct filter {
	char *out;
	size_t len;
	unsigned removed;
};

static int keep_other_keys(void *arg, const char *line, size_t n)
{
	struct filter *fl = arg;

	if (line_has_key(NULL, line, n)) {
		fl->removed++;
		return 0;
	}
	memcpy(fl->out + fl->len, line, n);
	fl->len += n;
	fl->out[fl->len++] = '\n';
	return 0;
}

static int list_line(void *arg, const char *line, size_t n)
{
	struct buf *b = arg;
	size_t i = 0;

	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == n || line[i] == '#' || memchr(line, '\0', n))
		return 0;
	if (line[n - 1] == '\r')
		n--;
	return proto_field_put(b, SSH_KEY_KEY, line, n) < 0 ? -ENOBUFS : 0;
}

static int key_add(struct conn *c, struct keyfile *k, struct proto_err *e)
{
	char why[512], fp[SSH_FINGERPRINT_MAX + 1], comment[SSH_KEY_LINE_MAX + 1];
	char line[SSH_KEY_LINE_MAX + 2];
	char *text;
	size_t len;
	int r;

	ssh_key_fingerprint(want.blob, want.blob_len, fp);
	if (each_line(k->text, k->len, line_has_key, NULL)) {
		log_debug(0, "key %s is already authorized for %s", fp, k->u.name);
		goto out_ok;
	}
	memcpy(comment, want.comment, want.comment_len);
	comment[want.comment_len] = '\0';
	if (ssh_key_format(want.type, want.blob, want.blob_len, comment, line, sizeof(line) - 1) <
	    0)
		return proto_fail(e, EINVAL, "malformed key: longer than %d bytes", SSH_KEY_LINE_MAX);
	strcat(line, "\n");
	len = k->len + (k->len && k->text[k->len - 1] != '\n') + strlen(line);
	if (len > AUTH_KEYS_MAX)
		return proto_fail(e, EFBIG, "%s would exceed %d bytes", k->path, AUTH_KEYS_MAX);
	text = malloc(len);
	if (!text)
		return proto_fail(e, ENOMEM, "out of memory");
	if (k->len) {
		memcpy(text, k->text, k->len);
		if (k->text[k->len - 1] != '\n')
			text[k->len] = '\n';
	}
	memcpy(text + len - strlen(line), line, strlen(line));
	r = write_keys(k, text, len, why, sizeof(why));
	free(text);
	if (r < 0)
		return proto_fail(e, -r, "%s", why);
	log_info(0, "authorized SSH key %s for %s", fp, k->u.name);
out_ok:
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
}

static int key_remove(struct conn *c, struct keyfile *k, struct proto_err *e)
{
	struct filter fl = { 0 };
	char why[512], fp[SSH_FINGERPRINT_MAX + 1];
	int r;

	ssh_key_fingerprint(want.blob, want.blob_len, fp);
	fl.out = malloc(k->len + 1);
	if (!fl.out)
		return proto_fail(e, ENOMEM, "out of memory");
	each_line(k->text, k->len, keep_other_keys, &fl);
	if (fl.removed == 0) {
		free(fl.out);
		return proto_fail(e, ENOENT, "key %s is not authorized for %s", fp, k->u.name);
	}
	r = write_keys(k, fl.out, fl.len, why, sizeof(why));
	free(fl.out);
	if (r < 0)
		return proto_fail(e, -r, "%s", why);
	log_info(0, "removed SSH key %s of %s", fp, k->u.name);
	proto_put(conn_txbuf(c), FT_OK, NULL, 0);
	conn_finish(c);
	return 0;
}

static int key_list(struct conn *c, struct keyfile *k, struct proto_err *e)
{
	struct buf *b = conn_txbuf(c);
	size_t mark;

	if (proto_begin(b, FT_SSH_KEYS, &mark) < 0 || each_line(k->text, k->len, list_line, b) ||
	    proto_end(b, mark) < 0)
		return proto_fail(e, ENOBUFS, "the key list does not fit in a reply");
	conn_finish(c);
	return 0;
}

int keys_op(struct conn *c, const struct frame *f, struct proto_err *e)
{
	static struct ssh_key_req req;
	struct keyfile k = { .home = -1, .dir = -1 };
	const char *who;
	char why[512];
	int r;

	if (proto_ssh_key_decode(f, &req, e) < 0)
		return -e->code;
	if (f->type != FT_SSH_KEY_LIST && ssh_key_parse(req.key, req.key_len, &want, e) < 0)
		return -e->code;
	who = req.user[0] ? req.user : c->agent->config()->user;
	if ((r = user_lookup(who, &k.u)) < 0)
		return proto_fail(e, -r, r == -ENOENT ? "no such user: %s" : "cannot look up user %s", who);
	snprintf(k.path, sizeof(k.path), "%s%s.ssh/" AUTH_KEYS, k.u.home,
		 strcmp(k.u.home, "/") ? "/" : "");
	why[0] = '\0';
	r = open_ssh_dir(&k, f->type == FT_SSH_KEY_ADD, why, sizeof(why));
	if (r < 0 && r != -ENOENT) {
		proto_fail(e, -r, "%s", why[0] ? why : strerror(-r));
		goto out;
	}
	if ((r = read_keys(&k, why, sizeof(why))) < 0) {
		proto_fail(e, -r, "%s", why);
		goto out;
	}
	switch (f->type) {
	case FT_SSH_KEY_ADD:
		r = key_add(c, &k, e);
		break;
	case FT_SSH_KEY_REMOVE:
		r = key_remove(c, &k, e);
		break;
	default:
		r = key_list(c, &k, e);
		break;
	}
out:
	free(k.text);
	if (k.dir >= 0)
		close(k.dir);
	if (k.home >= 0)
		close(k.home);
	return r < 0 ? r : 0;
}
