/* sbx fs: the sandbox's file system from the command line, one
 * subcommand per operation of docs/protocol/files.md (ls, stat, cat,
 * mkdir, rm, mv, cp, chmod, chown, ln, readlink, realpath, truncate,
 * touch, mktemp). Structured output (ls, stat) has --json. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "libsbx/sbx_fs.h"

/* The options a subcommand was given, by letter. */
struct flags {
	bool on[128];
	const char *val[128];
};

struct fsc {
	struct cli *cli;
	struct sbx_fs_opts o;
	char addr[PATH_MAX + 64];
	bool json;
};

struct subcmd {
	const char *name;
	const char *args;
	const char *help;
	const char *shortopts;
	int (*fn)(struct fsc *x, const struct flags *f, char **args, int nargs);
	int min_args, max_args; /* max -1: any */
};

static const struct subcmd *current;

static void sub_usage(FILE *out, const struct subcmd *s);

/* ---- output ---- */

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFCHR:
		return "char-device";
	case S_IFBLK:
		return "block-device";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	}
	return "unknown";
}

static void mode_string(uint32_t mode, char out[11])
{
	static const char types[] = "?pc?d?b?-?l?s???";
	const char *rwx = "rwxrwxrwx";

	out[0] = types[(mode >> 12) & 15];
	for (int i = 0; i < 9; i++)
		out[i + 1] = (mode & (0400u >> i)) ? rwx[i] : '-';
	if (mode & S_ISUID)
		out[3] = (mode & 0100) ? 's' : 'S';
	if (mode & S_ISGID)
		out[6] = (mode & 010) ? 's' : 'S';
	if (mode & S_ISVTX)
		out[9] = (mode & 01) ? 't' : 'T';
	out[10] = '\0';
}

static void time_string(const struct fs_time *t, char *out, size_t n, bool full)
{
	time_t s = (time_t)t->sec;
	struct tm tm;

	gmtime_r(&s, &tm);
	if (full) {
		char base[32];

		strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(out, n, "%s.%09u +0000", base, t->nsec);
	} else {
		strftime(out, n, "%Y-%m-%d %H:%M", &tm);
	}
}

static long long ns_of(const struct fs_time *t)
{
	return (long long)t->sec * 1000000000LL + t->nsec;
}

static void json_stat(const struct fs_stat *st)
{
	printf("\"type\":\"%s\",\"mode\":%u,\"perm\":\"%04o\",\"uid\":%u,\"gid\":%u,"
	       "\"size\":%llu,\"nlink\":%llu,\"ino\":%llu,\"dev\":%llu,\"rdev\":%llu,\"blocks\":%llu,"
	       "\"atime_ns\":%lld,\"mtime_ns\":%lld,\"ctime_ns\":%lld",
	       type_name(st->mode), st->mode, st->mode & 07777, st->uid, st->gid,
	       (unsigned long long)st->size, (unsigned long long)st->nlink,
	       (unsigned long long)st->ino, (unsigned long long)st->dev,
	       (unsigned long long)st->rdev, (unsigned long long)st->blocks, ns_of(&st->atime),
	       ns_of(&st->mtime), ns_of(&st->ctime));
}

static int failed(const struct sbx_error *err)
{
	cli_error("%s", err->msg);
	return CLI_FAIL;
}

/* ---- ls ---- */

struct listing {
	struct fs_dirent *v;
	size_t n, cap;
};

static int collect(void *arg, const struct fs_dirent *d)
{
	struct listing *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct fs_dirent *g = realloc(l->v, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		l->v = g;
		l->cap = cap;
	}
	l->v[l->n++] = *d;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct fs_dirent *)a)->name, ((const struct fs_dirent *)b)->name);
}

static int cmd_ls(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	bool lng = f->on['l'];
	struct listing l = { 0 };
	struct sbx_error err;
	const char *path = nargs ? args[0] : ".";
	int rc;

	rc = sbx_fs_readdir(x->addr, path, lng || x->json, &x->o, collect, &l, &err);
	if (rc == -ENOMEM) {
		cli_error("out of memory listing %s", path);
		return CLI_FAIL;
	}
	if (rc < 0)
		return failed(&err);
	qsort(l.v, l.n, sizeof(*l.v), by_name);
	if (x->json)
		putchar('[');
	for (size_t i = 0; i < l.n; i++) {
		const struct fs_dirent *d = &l.v[i];

		if (x->json) {
			printf("%s{\"name\":", i ? "," : "");
			cli_json_str(stdout, d->name);
			putchar(',');
			json_stat(&d->st);
			putchar('}');
		} else if (lng) {
			char mode[11], when[32];

			mode_string(d->st.mode, mode);
			time_string(&d->st.mtime, when, sizeof(when), false);
			printf("%s %3llu %5u %5u %10llu %s %s\n", mode, (unsigned long long)d->st.nlink,
			       d->st.uid, d->st.gid, (unsigned long long)d->st.size, when, d->name);
		} else {
			printf("%s\n", d->name);
		}
	}
	if (x->json)
		printf("]\n");
	free(l.v);
	return 0;
}

/* ---- stat ---- */

static int cmd_stat(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	bool follow = f->on['L'];
	int status = 0;

	if (x->json && nargs > 1)
		putchar('[');
	for (int i = 0; i < nargs; i++) {
		char target[PATH_MAX], mode[11], t[3][64];
		struct sbx_error err;
		struct fs_stat st;

		if (sbx_fs_stat(x->addr, args[i], follow, &x->o, &st, target, sizeof(target), &err) <
		    0) {
			failed(&err);
			status = CLI_FAIL;
			continue;
		}
		if (x->json) {
			printf("%s{\"path\":", i && nargs > 1 ? "," : "");
			cli_json_str(stdout, args[i]);
			putchar(',');
			json_stat(&st);
			if (target[0]) {
				printf(",\"target\":");
				cli_json_str(stdout, target);
			}
			putchar('}');
			continue;
		}
		mode_string(st.mode, mode);
		time_string(&st.atime, t[0], sizeof(t[0]), true);
		time_string(&st.mtime, t[1], sizeof(t[1]), true);
		time_string(&st.ctime, t[2], sizeof(t[2]), true);
		printf("  File: %s%s%s\n", args[i], target[0] ? " -> " : "", target);
		printf("  Type: %s\n", type_name(st.mode));
		printf("  Size: %-12llu Blocks: %-10llu Links: %llu\n", (unsigned long long)st.size,
		       (unsigned long long)st.blocks, (unsigned long long)st.nlink);
		printf("  Mode: %04o (%s)  Uid: %u  Gid: %u\n", st.mode & 07777, mode, st.uid,
		       st.gid);
		printf(" Inode: %-12llu Device: %llu\n", (unsigned long long)st.ino,
		       (unsigned long long)st.dev);
		printf("Access: %s\nModify: %s\nChange: %s\n", t[0], t[1], t[2]);
	}
	if (x->json)
		printf("%s\n", nargs > 1 ? "]" : "");
	return status;
}

/* ---- the rest ---- */

static int cmd_cat(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	struct sbx_error err;
	int status = 0;

	for (int i = 0; i < nargs; i++)
		if (sbx_fs_read_fd(x->addr, args[i], 0, -1, 1, &x->o, NULL, NULL, &err) < 0)
			status = failed(&err);
	return status;
}

static long parse_mode(const char *s)
{
	char *end;
	unsigned long m = strtoul(s, &end, 8);

	if (!*s || *end || m > 07777)
		return -1;
	return (long)m;
}

static int cmd_mkdir(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	const char *m = f->val['m'];
	long mode = m ? parse_mode(m) : -1;
	struct sbx_error err;
	int status = 0;

	if (m && mode < 0) {
		cli_error("-m %s: not an octal mode", m);
		return 2;
	}
	for (int i = 0; i < nargs; i++)
		if (sbx_fs_mkdir(x->addr, args[i], (int)mode, f->on['p'], &x->o,
				 &err) < 0)
			status = failed(&err);
	return status;
}

static int cmd_rm(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	bool force = f->on['f'];
	struct sbx_error err;
	int status = 0;

	for (int i = 0; i < nargs; i++)
		if (sbx_fs_remove(x->addr, args[i], f->on['r'], &x->o, &err) < 0 &&
		    !(force && err.code == ENOENT))
			status = failed(&err);
	return status;
}

/* DST, or DST/basename(SRC) when DST is a directory in the sandbox. */
static void dest_path(struct fsc *x, const char *src, const char *dst, char *out, size_t n)
{
	struct sbx_error err;
	struct fs_stat st;
	size_t len = strlen(src), start;

	snprintf(out, n, "%s", dst);
	if (sbx_fs_stat(x->addr, dst, true, &x->o, &st, NULL, 0, &err) < 0 || !S_ISDIR(st.mode))
		return;
	while (len > 1 && src[len - 1] == '/')
		len--;
	start = len;
	while (start > 0 && src[start - 1] != '/')
		start--;
	snprintf(out, n, "%s%s%.*s", dst, dst[strlen(dst) - 1] == '/' ? "" : "/",
		 (int)(len - start), src + start);
}

static int two(struct fsc *x, char **args, const struct flags *f,
	       int (*fn)(const char *, const char *, const char *, uint32_t,
			 const struct sbx_fs_opts *, struct sbx_error *))
{
	char dst[PATH_MAX + NAME_MAX + 2];
	struct sbx_error err;
	uint32_t flags = f->on['n'] ? FS_F_CREATE_NEW : 0;

	dest_path(x, args[0], args[1], dst, sizeof(dst));
	return fn(x->addr, args[0], dst, flags, &x->o, &err) < 0 ? failed(&err) : 0;
}

static int cmd_mv(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	return two(x, args, f, sbx_fs_rename);
}

static int cmd_cp(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	return two(x, args, f, sbx_fs_copy);
}

static int cmd_chmod(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	long mode = parse_mode(args[0]);
	struct sbx_error err;
	int status = 0;

	if (mode < 0) {
		cli_error("%s: not an octal mode", args[0]);
		return 2;
	}
	for (int i = 1; i < nargs; i++)
		if (sbx_fs_chmod(x->addr, args[i], (uint32_t)mode, &x->o, &err) < 0)
			status = failed(&err);
	return status;
}

static int cmd_chown(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	const char *spec = args[0], *colon = strchr(spec, ':');
	int64_t uid = -1, gid = -1;
	struct sbx_error err;
	uint64_t v;
	int status = 0;

	if (colon != spec) {
		char u[16];

		snprintf(u, sizeof(u), "%.*s", (int)(colon ? colon - spec : (long)strlen(spec)), spec);
		if (str_to_u64(u, UINT32_MAX - 1, &v) < 0)
			goto bad;
		uid = (int64_t)v;
	}
	if (colon) {
		if (str_to_u64(colon + 1, UINT32_MAX - 1, &v) < 0)
			goto bad;
		gid = (int64_t)v;
	}
	for (int i = 1; i < nargs; i++)
		if (sbx_fs_chown(x->addr, args[i], uid, gid, !f->on['h'], &x->o, &err) < 0)
			status = failed(&err);
	return status;
bad:
	cli_error("%s: expected UID, UID:GID or :GID (numbers)", spec);
	return 2;
}

static int cmd_ln(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	struct sbx_error err;
	int rc = f->on['s'] ? sbx_fs_symlink(x->addr, args[0], args[1], 0, &x->o, &err) :
				     sbx_fs_link(x->addr, args[0], args[1], 0, &x->o, &err);

	return rc < 0 ? failed(&err) : 0;
}

static int print_path(int rc, const char *p, const struct sbx_error *err)
{
	if (rc < 0)
		return failed(err);
	printf("%s\n", p);
	return 0;
}

static int cmd_readlink(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	char out[PATH_MAX];
	struct sbx_error err;

	return print_path(sbx_fs_readlink(x->addr, args[0], out, sizeof(out), &x->o, &err), out,
			  &err);
}

static int cmd_realpath(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	char out[PATH_MAX];
	struct sbx_error err;

	return print_path(sbx_fs_realpath(x->addr, args[0], out, sizeof(out), &x->o, &err), out,
			  &err);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	if (!*s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (*end && end[1])
		return -EINVAL;
	if (v > (unsigned long long)(INT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

static int cmd_truncate(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	const char *s = f->val['s'];
	struct sbx_error err;
	uint64_t size;
	int status = 0;

	if (!s || parse_size(s, &size) < 0) {
		cli_error("truncate needs -s SIZE (bytes, or with K, M, G)");
		return 2;
	}
	for (int i = 0; i < nargs; i++)
		if (sbx_fs_truncate(x->addr, args[i], size, &x->o, &err) < 0)
			status = failed(&err);
	return status;
}

static int parse_when(const char *s, struct fs_time *t)
{
	char *end;
	long long sec;

	if (s[0] != '@')
		return -EINVAL;
	sec = strtoll(s + 1, &end, 10);
	if (end == s + 1)
		return -EINVAL;
	t->sec = sec;
	t->nsec = 0;
	if (*end == '.') {
		char digits[10] = "000000000";
		size_t n = strspn(end + 1, "0123456789");

		if (n == 0 || n > 9 || end[1 + n])
			return -EINVAL;
		memcpy(digits, end + 1, n);
		t->nsec = (uint32_t)strtoul(digits, NULL, 10);
	} else if (*end) {
		return -EINVAL;
	}
	return 0;
}

static int cmd_touch(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	const char *d = f->val['d'];
	struct sbx_write_opts w = { .flags = FS_F_CREATE_NEW };
	struct fs_time t;
	struct sbx_error err;
	int status = 0;

	if (d && parse_when(d, &t) < 0) {
		cli_error("-d %s: expected @SECONDS[.FRACTION]", d);
		return 2;
	}
	for (int i = 0; i < nargs; i++) {
		int rc = sbx_fs_utimes(x->addr, args[i], d ? &t : NULL, d ? &t : NULL,
				       !f->on['h'], &x->o, &err);

		if (rc == -ENOENT) {
			/* As touch(1): a missing file is created, empty. */
			if (d) {
				w.set_times = true;
				w.atime = w.mtime = t;
			}
			rc = sbx_fs_write_buf(x->addr, "", 0, args[i], &w, &x->o, &err);
			if (rc == -EEXIST) /* appeared meanwhile */
				rc = sbx_fs_utimes(x->addr, args[i], d ? &t : NULL, d ? &t : NULL, true,
						   &x->o, &err);
		}
		if (rc < 0)
			status = failed(&err);
	}
	return status;
}

static int cmd_mktemp(struct fsc *x, const struct flags *f, char **args, int nargs)
{
	char out[PATH_MAX];
	struct sbx_error err;
	const char *prefix = f->val['P'];
	char p[FS_AFFIX_MAX + 1] = "";

	if (prefix)
		str_copy(p, sizeof(p), prefix);
	return print_path(sbx_fs_mktemp(x->addr, nargs ? args[0] : NULL, prefix ? p : NULL,
					f->val['S'], f->on['d'], out,
					sizeof(out), &x->o, &err),
			  out, &err);
}

static const struct subcmd subcmds[] = {
	{ "ls", "[-l] [--json] [PATH]", "list a directory (default: the working directory)",
	  "l", cmd_ls, 0, 1 },
	{ "stat", "[-L] [--json] PATH...", "show a file's status; -L follows a symbolic link",
	  "L", cmd_stat, 1, -1 },
	{ "cat", "PATH...", "write files to standard output", "", cmd_cat, 1, -1 },
	{ "mkdir", "[-p] [-m MODE] PATH...", "make directories; -p: parents too, no error if it exists",
	  "pm:", cmd_mkdir, 1, -1 },
	{ "rm", "[-r] [-f] PATH...", "remove files; -r: whole trees; -f: a missing one is fine",
	  "rf", cmd_rm, 1, -1 },
	{ "mv", "[-n] SRC DST", "rename (into DST if it is a directory); -n: do not replace",
	  "n", cmd_mv, 2, 2 },
	{ "cp", "[-n] SRC DST", "copy a file inside the sandbox, atomically; -n: do not replace",
	  "n", cmd_cp, 2, 2 },
	{ "chmod", "MODE PATH...", "change permission bits (octal MODE)", "", cmd_chmod, 2, -1 },
	{ "chown", "[-h] UID[:GID] PATH...", "change owner and group (numbers); -h: a link itself",
	  "h", cmd_chown, 2, -1 },
	{ "ln", "[-s] TARGET LINK", "make a hard link, or with -s a symbolic link", "s", cmd_ln, 2,
	  2 },
	{ "readlink", "PATH", "print a symbolic link's target", "", cmd_readlink, 1, 1 },
	{ "realpath", "PATH", "print the canonical absolute path", "", cmd_realpath, 1, 1 },
	{ "truncate", "-s SIZE PATH...", "set files' size (SIZE in bytes, or with K, M, G)", "s:",
	  cmd_truncate, 1, -1 },
	{ "touch", "[-h] [-d @SECONDS[.FRACTION]] PATH...",
	  "set access and modification times (now by default), creating missing files", "hd:",
	  cmd_touch, 1, -1 },
	{ "mktemp", "[-d] [-P PREFIX] [-S SUFFIX] [DIR]",
	  "make a new file (-d: directory) with a unique name in DIR (default /tmp)", "dP:S:",
	  cmd_mktemp, 0, 1 },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx fs COMMAND [OPTIONS] ID ARGS...\n"
		"       sbx --connect ADDR fs COMMAND [OPTIONS] ARGS...\n"
		"\n"
		"The sandbox's file system. Paths are absolute, or relative to the\n"
		"sandbox's working directory.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		fprintf(out, "  %-9s %s\n", subcmds[i].name, subcmds[i].help);
	fprintf(out,
		"\n"
		"Options of every command:\n"
		"  -u, --user USER  act as USER (its permissions apply; default: the\n"
		"                   sandbox's user)\n"
		"      --json       structured output (ls, stat)\n"
		"  -h, --help       help (`sbx fs COMMAND --help` for a command)\n"
		"\n"
		"To copy files in and out of a sandbox, see `sbx cp`.\n"
		"Exit status: 0, 125 when an operation failed (with a message), 2 for a\n"
		"usage error.\n");
}

static void sub_usage(FILE *out, const struct subcmd *s)
{
	fprintf(out,
		"usage: sbx fs %s [-u USER] ID %s\n"
		"       sbx --connect ADDR fs %s [-u USER] %s\n"
		"\n"
		"%c%s.\n",
		s->name, s->args, s->name, s->args, s->help[0] - 'a' + 'A', s->help + 1);
}

int cli_fs(struct cli *cli, int argc, char **argv)
{
	struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsc x = { .cli = cli };
	struct flags fl = { 0 };
	char shortopts[32];
	const char *id = NULL;
	int opt, first;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subcmds); i++)
		if (!strcmp(argv[1], subcmds[i].name))
			current = &subcmds[i];
	if (!current) {
		cli_error("unknown fs command '%s' (see sbx fs --help)", argv[1]);
		return 2;
	}
	/* The subcommand's own letters, then the shared ones. -h is help
	 * unless the command has its own -h (chown, touch). */
	snprintf(shortopts, sizeof(shortopts), "%su:%s", current->shortopts,
		 strchr(current->shortopts, 'h') ? "" : "h");
	argv++;
	argc--;
	optind = 0; /* a full reset: main's "+" must not carry over (glibc) */
	while ((opt = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			x.o.user = optarg;
			continue;
		case 'J':
			x.json = true;
			continue;
		case 'H':
			sub_usage(stdout, current);
			return 0;
		case 'h':
			if (!strchr(current->shortopts, 'h')) {
				sub_usage(stdout, current);
				return 0;
			}
			break;
		case '?':
			sub_usage(stderr, current);
			return 2;
		}
		if (opt > 0 && opt < 128) {
			fl.on[opt] = true;
			fl.val[opt] = optarg;
		}
	}
	first = optind;
	if (!cli->connect) {
		if (first >= argc) {
			cli_error("no sandbox given: name one by id, or use --connect ADDR");
			return 2;
		}
		id = argv[first++];
	}
	if (argc - first < current->min_args ||
	    (current->max_args >= 0 && argc - first > current->max_args)) {
		sub_usage(stderr, current);
		return 2;
	}
	if (cli_target(cli, id, x.addr, sizeof(x.addr)) < 0)
		return CLI_FAIL;
	return current->fn(&x, &fl, argv + first, argc - first);
}
