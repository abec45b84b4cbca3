/* sbx-hostile: files: NULs and bytes in paths, long paths, '..' and
 * symbolic link loops. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vsock/proto_fs.h"
#include "tests/tools/hostile/hostile.h"

static int c_invalid_utf8_path(void)
{
	char path[512];

	/* File names are bytes too. */
	snprintf(path, sizeof(path), "%s/bad-\xff\xfe-\xc3\x28", scratch);
	if (fs_expect(FT_FS_MKDIR, path, NULL, NULL, 0, FT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_STAT, path, NULL, NULL, 0, FT_FS_STAT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_REMOVE, path, NULL, NULL, 0, FT_OK, NULL, 0) < 0)
		return -1;
	if (access(path, F_OK) == 0)
		return fail("%s is still there", path);
	return 0;
}

static int c_path_10000_fs(void)
{
	char *p = long_path(10000);
	int r;

	if (!p)
		return fail("out of memory");
	r = fs_error(FT_FS_STAT, p, NULL, 0, ENAMETOOLONG,
		     "FS_STAT: the path is 10000 bytes long (at most 4095)");
	free(p);
	return r;
}

static int c_dotdot_realpath(void)
{
	char path[512], got[PROTO_MSG_MAX + 1];

	snprintf(path, sizeof(path), "%s/../../../../../../../../../..", scratch);
	if (fs_expect(FT_FS_REALPATH, path, NULL, NULL, 0, FT_FS_PATH_OK, got, sizeof(got)) < 0)
		return -1;
	return strcmp(got, "/") == 0 ? 0 : fail("realpath of %s is %s", path, got);
}

static int c_dotdot_remove(void)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/sub/..", scratch);
	mkdir(path, 0755); /* sub may not exist; the request is judged first */
	snprintf(path, sizeof(path), "%s/sub", scratch);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sub/..", scratch);
	if (fs_error(FT_FS_REMOVE, path, NULL, FS_F_RECURSIVE, EINVAL,
		     "refusing to remove '.' or '..'") < 0)
		return -1;
	if (access(scratch, F_OK) < 0)
		return fail("%s was removed", scratch);
	return 0;
}

static int c_dotdot_cwd(void)
{
	char *argv[] = { "/bin/pwd", "-P", NULL };

	return run_prints(argv, NULL, "/tmp/../../../../..", "/\n");
}

static int c_dotdot_tree_entry(void)
{
	struct fs_stat dir = { .mode = 040755 };
	struct fs_req req = { .type = FT_FS_TREE_WRITE, .flags = FS_F_NO_VERIFY,
			      .have = FS_HAVE(FS_FLAGS) };
	char dest[512], escape[512];
	struct buf b;
	struct peer p;
	int r;

	/* A tree whose second entry climbs out of it. */
	snprintf(dest, sizeof(dest), "%s/tree", scratch);
	snprintf(escape, sizeof(escape), "%s/escaped", scratch);
	req.path = dest;
	buf_init(&b, 2 * PROTO_FRAME_MAX);
	proto_hello_put(&b, PROTO_VERSION, PROTO_VERSION);
	proto_fs_req_put(&b, &req);
	proto_fs_entry_put(&b, "", &dir, NULL);
	/* proto_fs_entry_put does not judge the path; the agent must. */
	proto_fs_entry_put(&b, "../escaped", &dir, NULL);
	proto_fs_tree_end_put(&b, &(struct fs_tree_end){ 2, 0, 0 });
	if (peer_open(&p) < 0) {
		buf_free(&b);
		return -1;
	}
	send_buf(&p, &b);
	buf_free(&b);
	r = expect_error(&p, EINVAL, "tree entry path '../escaped' is not a plain relative path");
	peer_close(&p);
	if (r == 0 && access(escape, F_OK) == 0)
		r = fail("%s was created", escape);
	if (r == 0 && access(dest, F_OK) == 0)
		r = fail("%s was left behind by a refused tree", dest);
	return r;
}

static int make_loop(char *a, size_t n)
{
	char b[512];

	snprintf(a, n, "%s/loop-a", scratch);
	snprintf(b, sizeof(b), "%s/loop-b", scratch);
	unlink(a);
	unlink(b);
	if (fs_expect(FT_FS_SYMLINK, a, NULL, "loop-b", 0, FT_OK, NULL, 0) < 0 ||
	    fs_expect(FT_FS_SYMLINK, b, NULL, "loop-a", 0, FT_OK, NULL, 0) < 0)
		return -1;
	return 0;
}

static int c_symlink_loop_stat(void)
{
	char a[512];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	return fs_error(FT_FS_STAT, a, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_realpath(void)
{
	char a[512];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	return fs_error(FT_FS_REALPATH, a, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_write(void)
{
	char a[512], path[600];

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/file", a);
	return fs_error(FT_FS_WRITE, path, NULL, 0, ELOOP, "too many levels of symbolic links");
}

static int c_symlink_loop_cwd(void)
{
	char a[512], *argv[] = { "true", NULL };

	if (make_loop(a, sizeof(a)) < 0)
		return -1;
	/* strerror(ELOOP): "Too many levels of symbolic links" (glibc) or
	 * "Symbolic link loop" (musl). */
	char text[600];

	snprintf(text, sizeof(text), "cannot change directory to %s: ", a);
	if (run(argv, NULL, a, 0, EXIT_NOT_STARTED, 126, text, NULL) < 0)
		return -1;
	return 0;
}

static const struct hostile_case cases[] = {
	{ .name = "a NUL byte in a file path: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FS_STAT,
		     .fields = { FIELD(FS_PATH, "/etc\0passwd") },
		     .code = EINVAL, .text = "FS_STAT: the path contains a NUL byte" } },
	{ .name = "invalid UTF-8 in a path: mkdir, stat, remove", .fn = c_invalid_utf8_path },
	{ .name = "a 10,000-byte file path: ENAMETOOLONG", .fn = c_path_10000_fs },
	{ .name = "'..' past the root in a path resolves to /", .fn = c_dotdot_realpath },
	{ .name = "removing 'dir/..': EINVAL, nothing removed", .fn = c_dotdot_remove },
	{ .name = "'..' past the root as working directory: /", .fn = c_dotdot_cwd },
	{ .name = "a tree entry '../escaped': EINVAL, nothing written", .fn = c_dotdot_tree_entry },
	{ .name = "a symbolic link loop: stat says ELOOP", .fn = c_symlink_loop_stat },
	{ .name = "a symbolic link loop: realpath says ELOOP", .fn = c_symlink_loop_realpath },
	{ .name = "a symbolic link loop: writing below it says ELOOP", .fn = c_symlink_loop_write },
	{ .name = "a symbolic link loop as working directory: not started (126)", .fn = c_symlink_loop_cwd },
	{ .name = "FS_STAT without PATH: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FS_STAT,
		     .fields = { FIELD(FS_USER, "root") },
		     .code = EINVAL, .text = "FS_STAT: field PATH is missing" } },
	{ .name = "FS_STAT with PATH twice: EINVAL",
	  .frame = { AFTER_HELLO, FIELDS, FT_FS_STAT,
		     .fields = { FIELD(FS_PATH, "/"), FIELD(FS_PATH, "/tmp") },
		     .code = EINVAL, .text = "FS_STAT: field PATH given twice" } },
};

HOSTILE_AREA(hostile_fs, cases);
