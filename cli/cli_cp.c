/* sbx cp: files and directory trees into and out of a sandbox
 * (docs/protocol/files.md). One side is ID:PATH (or :PATH with
 * --connect), the other a local path or - for stdin/stdout. A transfer
 * that takes more than a second shows a progress line when stderr is a
 * terminal; Ctrl-C stops it and leaves nothing half-written. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "libsbx/sbx_fs.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx cp [OPTIONS] SRC DST\n"
		"       sbx --connect ADDR cp [OPTIONS] SRC DST\n"
		"\n"
		"Copy a file, or with -r a directory tree, into or out of a sandbox.\n"
		"One of SRC and DST is in the sandbox, written ID:PATH (:PATH with\n"
		"--connect); the other is a local path, or - for standard input or\n"
		"output. A PATH in the sandbox is absolute or relative to its working\n"
		"directory. When DST is an existing directory (or ends with /), SRC is\n"
		"copied into it under its own name.\n"
		"\n"
		"Files are written to a temporary name and renamed into place once\n"
		"complete and verified (XXH3-128 at both ends): a failed or interrupted\n"
		"copy leaves the old file, or nothing, at DST.\n"
		"\n"
		"What the sandbox sends is not trusted: a download gets the sandbox's\n"
		"permission bits less the local umask, never setuid, setgid or sticky\n"
		"(see -p); a tree merged into an existing directory leaves the modes\n"
		"and times of the directories that were there; a file longer than the\n"
		"size the sandbox announced is refused.\n"
		"\n"
		"  -r, --recursive    copy directory trees; modes, times and symbolic\n"
		"                     links are kept (a link named as SRC is followed),\n"
		"                     special files skipped; a new directory appears\n"
		"                     whole or not at all\n"
		"  -p, --preserve     keep the permission bits as they are (downloads:\n"
		"                     not the host's umask; never setuid or setgid), and\n"
		"                     a single file's access and modification times\n"
		"      --unsafe-keep-setuid\n"
		"                     with -p, download setuid and setgid bits too: a\n"
		"                     program the sandbox wrote then runs as its local\n"
		"                     owner (root, when run as root)\n"
		"  -n, --no-clobber   fail if DST exists\n"
		"      --append       append to DST (not atomic)\n"
		"      --in-place     overwrite DST's own inode (not atomic; keeps its\n"
		"                     owner and links)\n"
		"      --parents      make DST's missing parent directories\n"
		"  -m, --mode MODE    permission bits for an uploaded file (octal)\n"
		"      --owner U[:G]  numeric owner (and group) for an uploaded file\n"
		"  -u, --user USER    act as USER in the sandbox (its permissions apply)\n"
		"      --no-verify    skip the digests\n"
		"  -q, --quiet        no progress line\n"
		"\n"
		"Exit status: 0 when copied, 125 when it failed (with a message), 2 for\n"
		"a usage error.\n");
}

enum { OPT_APPEND = 256, OPT_IN_PLACE, OPT_PARENTS, OPT_OWNER, OPT_NO_VERIFY, OPT_KEEP_SETID };

struct cp {
	bool recursive, preserve, keep_setid, quiet;
	uint32_t flags;
	struct sbx_write_opts w;
	struct sbx_fs_opts o;
	char addr[PATH_MAX + 64];
	/* progress */
	uint64_t start_ns;
	bool shown;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* SIGINT/TERM/HUP set a flag that the transfer checks; it then removes
 * what it started and returns. */
static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void human(char *out, size_t n, double v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	struct cp *cp = arg;
	double secs = (double)(time_mono_ns() - cp->start_ns) / 1e9, rate;
	char a[32], b[32], r[32], left[32] = "";

	if (secs < 1.0)
		return; /* quick transfers show nothing */
	rate = (double)done / secs;
	human(a, sizeof(a), (double)done);
	human(r, sizeof(r), rate);
	if (total && total >= done && rate > 0) {
		unsigned s = (unsigned)((double)(total - done) / rate);

		human(b, sizeof(b), (double)total);
		snprintf(left, sizeof(left), "  %u:%02u left", s / 60, s % 60);
		fprintf(stderr, "\r%s / %s  %s/s%s\033[K", a, b, r, left);
	} else {
		fprintf(stderr, "\r%s  %s/s\033[K", a, r);
	}
	cp->shown = true;
}

/* "ID:PATH" / ":PATH" -> remote; anything else is local. A local name
 * with a ':' in its first component is written ./name. */
static bool split_remote(const char *arg, const char **id, char *idbuf, size_t n,
			 const char **path)
{
	const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');

	if (!colon || (slash && slash < colon) || !strcmp(arg, "-"))
		return false;
	if ((size_t)(colon - arg) >= n)
		return false;
	memcpy(idbuf, arg, (size_t)(colon - arg));
	idbuf[colon - arg] = '\0';
	*id = idbuf[0] ? idbuf : NULL;
	*path = colon + 1;
	return true;
}

static const char *base_name(const char *path, char *buf, size_t n)
{
	size_t len = strlen(path), start;

	while (len > 1 && path[len - 1] == '/')
		len--;
	start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	snprintf(buf, n, "%.*s", (int)(len - start), path + start);
	return buf;
}

static bool ends_with_slash(const char *p)
{
	size_t len = strlen(p);

	return len > 0 && p[len - 1] == '/';
}

/* DST, or DST/basename(SRC) when DST is a directory. */
static int into_dir(const char *dst, bool is_dir, const char *src, char *out, size_t n)
{
	char base[NAME_MAX + 1];

	base_name(src, base, sizeof(base));
	if (!is_dir || !base[0] || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) {
		if (is_dir && !strcmp(src, "-"))
			return -EISDIR;
		return str_copy(out, n, dst);
	}
	if (!strcmp(src, "-"))
		return -EISDIR;
	return snprintf(out, n, "%s%s%s", dst, ends_with_slash(dst) ? "" : "/", base) >= (int)n ?
		       -ENAMETOOLONG : 0;
}

static int local_error(int code, const char *path)
{
	char cause[128];

	cli_error("%s: %s", proto_fs_strerror(code, cause, sizeof(cause)), path);
	return CLI_FAIL;
}

static int fail_err(const struct sbx_error *err)
{
	if (err->code == EINTR && interrupted)
		cli_error("interrupted: nothing was left half-written");
	else
		cli_error("%s", err->msg);
	return CLI_FAIL;
}

static int upload(struct cp *cp, const char *src, const char *dst)
{
	char target[PATH_MAX + NAME_MAX + 2];
	struct fs_stat rst;
	struct sbx_error err;
	struct stat lst;
	bool remote_dir = ends_with_slash(dst);
	int fd, rc;

	if (strcmp(src, "-") && stat(src, &lst) < 0)
		return local_error(errno, src);
	if (strcmp(src, "-") && S_ISDIR(lst.st_mode) && !cp->recursive) {
		cli_error("%s is a directory (use -r to copy trees)", src);
		return CLI_FAIL;
	}
	/* Is DST an existing directory? One STAT round trip to know. */
	if (!remote_dir && sbx_fs_stat(cp->addr, dst, true, &cp->o, &rst, NULL, 0, &err) == 0)
		remote_dir = S_ISDIR(rst.mode);
	if (into_dir(dst, remote_dir, src, target, sizeof(target)) < 0) {
		cli_error("is a directory: %s", dst);
		return CLI_FAIL;
	}
	if (cp->recursive && strcmp(src, "-")) {
		rc = sbx_fs_upload_tree(cp->addr, src, target, cp->flags, &cp->o, NULL, &err);
		return rc < 0 ? fail_err(&err) : 0;
	}
	if (!strcmp(src, "-")) {
		fd = 0;
	} else {
		fd = open(src, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return local_error(errno, src);
		if (!cp->w.set_mode && !(cp->w.flags & (FS_F_APPEND | FS_F_IN_PLACE))) {
			/* Like cp and scp: the new file gets the local bits. */
			cp->w.set_mode = true;
			cp->w.mode = lst.st_mode & 07777;
		}
		if (cp->preserve) {
			cp->w.set_times = true;
			cp->w.atime = (struct fs_time){ lst.st_atim.tv_sec, (uint32_t)lst.st_atim.tv_nsec };
			cp->w.mtime = (struct fs_time){ lst.st_mtim.tv_sec, (uint32_t)lst.st_mtim.tv_nsec };
		}
	}
	rc = sbx_fs_write_fd(cp->addr, fd, target, &cp->w, &cp->o, NULL, &err);
	if (fd > 0)
		close(fd);
	return rc < 0 ? fail_err(&err) : 0;
}

static int download(struct cp *cp, const char *src, const char *dst)
{
	char target[PATH_MAX + NAME_MAX + 2];
	struct sbx_error err;
	struct stat lst;
	uint32_t dl;
	int rc;

	if (!strcmp(dst, "-")) {
		if (cp->recursive) {
			cli_error("a tree cannot be written to standard output");
			return 2;
		}
		rc = sbx_fs_read_fd(cp->addr, src, 0, -1, 1, &cp->o, NULL, NULL, &err);
		return rc < 0 ? fail_err(&err) : 0;
	}
	if (into_dir(dst, ends_with_slash(dst) || (stat(dst, &lst) == 0 && S_ISDIR(lst.st_mode)),
		     src, target, sizeof(target)) < 0) {
		cli_error("path too long: %s", dst);
		return CLI_FAIL;
	}
	dl = (cp->preserve ? SBX_DL_PRESERVE : 0) | (cp->keep_setid ? SBX_DL_KEEP_SETID : 0);
	if (cp->recursive)
		rc = sbx_fs_download_tree(cp->addr, src, target,
					  (cp->flags & (FS_F_CREATE_NEW | FS_F_MKDIRS)) | dl, &cp->o,
					  NULL, &err);
	else if ((cp->flags & FS_F_CREATE_NEW) && lstat(target, &lst) == 0) {
		cli_error("file exists: %s", target);
		return CLI_FAIL;
	} else
		rc = sbx_fs_download(cp->addr, src, target, dl, &cp->o, NULL, &err);
	if (rc < 0 && err.code == EISDIR && !cp->recursive && strstr(err.msg, src))
		strncat(err.msg, " (use -r to copy trees)", sizeof(err.msg) - strlen(err.msg) - 1);
	return rc < 0 ? fail_err(&err) : 0;
}

static int parse_owner(const char *s, struct sbx_write_opts *w)
{
	char *colon = strchr(s, ':');
	uint64_t v;

	if (colon != s) {
		char uid[16];

		if ((size_t)((colon ? colon : s + strlen(s)) - s) >= sizeof(uid))
			return -EINVAL;
		snprintf(uid, sizeof(uid), "%.*s", (int)((colon ? colon : s + strlen(s)) - s), s);
		if (str_to_u64(uid, UINT32_MAX - 1, &v) < 0)
			return -EINVAL;
		w->set_uid = true;
		w->uid = (uint32_t)v;
	}
	if (colon) {
		if (str_to_u64(colon + 1, UINT32_MAX - 1, &v) < 0)
			return -EINVAL;
		w->set_gid = true;
		w->gid = (uint32_t)v;
	}
	return 0;
}

int cli_cp(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "preserve", no_argument, NULL, 'p' },
		{ "no-clobber", no_argument, NULL, 'n' },
		{ "append", no_argument, NULL, OPT_APPEND },
		{ "in-place", no_argument, NULL, OPT_IN_PLACE },
		{ "parents", no_argument, NULL, OPT_PARENTS },
		{ "mode", required_argument, NULL, 'm' },
		{ "owner", required_argument, NULL, OPT_OWNER },
		{ "user", required_argument, NULL, 'u' },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "unsafe-keep-setuid", no_argument, NULL, OPT_KEEP_SETID },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cp cp = { 0 };
	const char *sid = NULL, *did = NULL, *spath, *dpath;
	char sbuf[256], dbuf[256], *end;
	bool sremote, dremote;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "rpnm:u:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			cp.recursive = true;
			break;
		case 'p':
			cp.preserve = true;
			break;
		case OPT_KEEP_SETID:
			cp.keep_setid = true;
			break;
		case 'n':
			cp.flags |= FS_F_CREATE_NEW;
			break;
		case OPT_APPEND:
			cp.flags |= FS_F_APPEND;
			break;
		case OPT_IN_PLACE:
			cp.flags |= FS_F_IN_PLACE;
			break;
		case OPT_PARENTS:
			cp.flags |= FS_F_MKDIRS;
			break;
		case 'm':
			cp.w.mode = (uint32_t)strtoul(optarg, &end, 8);
			if (!*optarg || *end || cp.w.mode > 07777) {
				cli_error("--mode %s: not an octal mode", optarg);
				return 2;
			}
			cp.w.set_mode = true;
			break;
		case OPT_OWNER:
			if (parse_owner(optarg, &cp.w) < 0) {
				cli_error("--owner %s: expected UID, UID:GID or :GID (numbers)", optarg);
				return 2;
			}
			break;
		case 'u':
			cp.o.user = optarg;
			break;
		case OPT_NO_VERIFY:
			cp.o.no_verify = true;
			break;
		case 'q':
			cp.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	sremote = split_remote(argv[optind], &sid, sbuf, sizeof(sbuf), &spath);
	dremote = split_remote(argv[optind + 1], &did, dbuf, sizeof(dbuf), &dpath);
	if (sremote == dremote) {
		cli_error(sremote ? "both SRC and DST are in a sandbox; use `sbx fs cp` inside one" :
				    "neither SRC nor DST is in a sandbox (write ID:PATH, or :PATH with --connect)");
		return 2;
	}
	if ((cp.flags & FS_F_APPEND) && (cp.flags & FS_F_IN_PLACE)) {
		cli_error("--append and --in-place contradict each other");
		return 2;
	}
	if (cp.recursive && (cp.flags & (FS_F_APPEND | FS_F_IN_PLACE))) {
		cli_error("--append and --in-place are for single files");
		return 2;
	}
	if (cp.keep_setid && (!cp.preserve || !sremote)) {
		cli_error("--unsafe-keep-setuid is for downloads with -p");
		return 2;
	}
	if (cli_target(cli, sremote ? sid : did, cp.addr, sizeof(cp.addr)) < 0)
		return CLI_FAIL;
	cp.w.flags = cp.flags;
	catch_signals();
	cp.o.cancel = &interrupted;
	cp.start_ns = time_mono_ns();
	if (!cp.quiet && isatty(2)) {
		cp.o.progress = progress;
		cp.o.progress_arg = &cp;
	}
	rc = sremote ? download(&cp, spath, argv[optind + 1]) : upload(&cp, argv[optind], dpath);
	if (cp.shown)
		fputs("\r\033[K", stderr);
	/* An interrupt that came after the copy was complete changes
	 * nothing: the copy stands. */
	return rc;
}
