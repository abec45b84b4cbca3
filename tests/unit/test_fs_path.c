/* Unit tests for path handling in the agent's file operations (fs/path.c,
 * lib/atomic.c, lib/tree.c, fs/cred.c): joining and splitting, following
 * links, making parents, walking a received tree without following links,
 * temporary names, atomic files and tree removal; on real files in a
 * temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/fs.h"
#include "fs/internal.h"
#include "server/server.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sbx-fs-path.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char where[PATH_MAX];
	int d = open("/tmp", O_RDONLY | O_DIRECTORY);

	tree_remove(d, dir + strlen("/tmp/"), where, sizeof(where));
	close(d);
	return 0;
}

/* dir/rel */
static const char *at(const char *rel)
{
	static char p[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, rel);
	return p[i];
}

static void put(const char *rel, const char *content)
{
	FILE *f = fopen(at(rel), "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_join(void **state)
{
	char out[32];

	assert_int_equal(fs_path_join("/base", "/abs", out, sizeof(out)), 0);
	assert_string_equal(out, "/abs");
	assert_int_equal(fs_path_join("/base", "rel/x", out, sizeof(out)), 0);
	assert_string_equal(out, "/base/rel/x");
	assert_int_equal(fs_path_join("/", "rel", out, sizeof(out)), 0);
	assert_string_equal(out, "/rel");
	assert_int_equal(fs_path_join("/base", "", out, sizeof(out)), -EINVAL);
	assert_int_equal(fs_path_join("/base", "a-name-long-enough-to-overflow", out, sizeof(out)),
			 -ENAMETOOLONG);
}

/* Relative paths start at the sandbox working directory: the workdir
 * key, else the default user's home (here: the user running the test,
 * with the configuration unset). */
static void test_resolve(void **state)
{
	struct passwd *pw = getpwuid(geteuid());
	char out[PATH_MAX], want[PATH_MAX], base[PATH_MAX];

	assert_non_null(pw);
	assert_int_equal(fs_sandbox_dir(server_config(), base, sizeof(base)), 0);
	assert_string_equal(base, pw->pw_dir);
	assert_int_equal(fs_path_resolve(server_config(), "x/y", out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/x/y", strcmp(pw->pw_dir, "/") ? pw->pw_dir : "");
	assert_string_equal(out, want);
	assert_int_equal(fs_path_resolve(server_config(), "/etc", out, sizeof(out)), 0);
	assert_string_equal(out, "/etc");
	assert_int_equal(fs_path_resolve(server_config(), "", out, sizeof(out)), -EINVAL);
}

static void test_split(void **state)
{
	static const struct {
		const char *in, *dir, *name;
		int rc;
	} cases[] = {
		{ "/a/b", "/a", "b", 0 },	  { "/a/b/", "/a", "b", 0 },
		{ "/a", "/", "a", 0 },		  { "//a//b//", "//a", "b", 0 },
		{ "/a b/ü", "/a b", "ü", 0 },	  { "/", NULL, NULL, -EISDIR },
		{ "/a/.", NULL, NULL, -EISDIR },  { "/a/..", NULL, NULL, -EISDIR },
		{ "rel", NULL, NULL, -EINVAL },	  { "", NULL, NULL, -EINVAL },
	};
	char d[PATH_MAX], n[NAME_MAX + 1], longname[300];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fs_path_split(cases[i].in, d, sizeof(d), n, sizeof(n)), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_string_equal(d, cases[i].dir);
			assert_string_equal(n, cases[i].name);
		}
	}
	longname[0] = '/';
	memset(longname + 1, 'x', 256);
	longname[257] = '\0';
	assert_int_equal(fs_path_split(longname, d, sizeof(d), n, sizeof(n)), -ENAMETOOLONG);
}

static void test_follow(void **state)
{
	char p[PATH_MAX];

	put("file", "x");
	assert_int_equal(mkdir(at("sub"), 0755), 0);
	assert_int_equal(symlink("file", at("l1")), 0);            /* relative */
	assert_int_equal(symlink("l1", at("l2")), 0);              /* a chain */
	assert_int_equal(symlink("../file", at("sub/up")), 0);     /* relative to its dir */
	assert_int_equal(symlink(at("file"), at("abs")), 0);       /* absolute */
	assert_int_equal(symlink("nowhere", at("dangling")), 0);
	assert_int_equal(symlink("loop", at("loop")), 0);
	assert_int_equal(symlink("b", at("a")), 0);
	assert_int_equal(symlink("a", at("b")), 0);

	snprintf(p, sizeof(p), "%s", at("l2"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), 0);
	assert_string_equal(p, at("file"));
	snprintf(p, sizeof(p), "%s", at("sub/up"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), 0);
	assert_string_equal(p, at("sub/../file"));
	snprintf(p, sizeof(p), "%s", at("abs"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), 0);
	assert_string_equal(p, at("file"));
	/* a dangling link names the file it would create */
	snprintf(p, sizeof(p), "%s", at("dangling"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), 0);
	assert_string_equal(p, at("nowhere"));
	/* not a link, or not there: unchanged */
	snprintf(p, sizeof(p), "%s", at("missing"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), 0);
	assert_string_equal(p, at("missing"));
	/* loops */
	snprintf(p, sizeof(p), "%s", at("loop"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), -ELOOP);
	snprintf(p, sizeof(p), "%s", at("a"));
	assert_int_equal(fs_path_follow(p, sizeof(p)), -ELOOP);
}

static void test_mkdir_p(void **state)
{
	struct stat st;

	assert_int_equal(fs_mkdir_p(at("m/n//o/"), 0755), 0);
	assert_int_equal(stat(at("m/n/o"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fs_mkdir_p(at("m/n/o"), 0755), 0); /* exists: fine */
	put("m/file", "x");
	assert_int_equal(fs_mkdir_p(at("m/file/p"), 0755), -ENOTDIR);
}

/* A received tree is walked without following links: a link where a
 * directory is expected is an error, never a way out. */
static void test_walk(void **state)
{
	struct tree_walk w;
	int root, fd, fd2;

	assert_int_equal(fs_mkdir_p(at("t/a/b/c"), 0755), 0);
	assert_int_equal(symlink("/etc", at("t/a/escape")), 0);
	root = open(at("t"), O_RDONLY | O_DIRECTORY);
	assert_true(root >= 0);
	tree_walk_init(&w, root);
	assert_int_equal(tree_walk_dir(&w, "", 0), root);
	fd = tree_walk_dir(&w, "a/b", 3);
	assert_true(fd >= 0);
	assert_int_equal(tree_walk_dir(&w, "a/b/zzz", 3), fd); /* cached */
	fd2 = tree_walk_dir(&w, "a/b/c", 5);                  /* one level down */
	assert_true(fd2 >= 0);
	assert_int_equal(faccessat(fd2, ".", F_OK, 0), 0);
	assert_int_equal(tree_walk_dir(&w, "a/escape", 8), -ENOTDIR);
	assert_int_equal(tree_walk_dir(&w, "a/escape/x", 8), -ENOTDIR);
	assert_int_equal(tree_walk_dir(&w, "a/missing", 9), -ENOENT);
	tree_walk_close(&w);
	close(root);
}

static void test_tmpname(void **state)
{
	char a[NAME_MAX + 1], b[NAME_MAX + 1], longname[NAME_MAX + 1];

	atomic_tmpname("file", a);
	atomic_tmpname("file", b);
	assert_true(strncmp(a, ".file.sbx-", 10) == 0);
	assert_int_equal(strlen(a), 10 + 12);
	assert_string_not_equal(a, b);
	memset(longname, 'n', NAME_MAX);
	longname[NAME_MAX] = '\0';
	atomic_tmpname(longname, a);
	assert_true(strlen(a) <= NAME_MAX);
	assert_non_null(strstr(a, ".sbx-"));
}

/* What is in dir, as "name name ...". */
static const char *listing(const char *rel)
{
	static char out[1024];
	char cmd[PATH_MAX + 64];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | tr '\\n' ' '", at(rel));
	p = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

static void test_atomic(void **state)
{
	struct atomic_file a;
	char buf[16] = "";
	int d, fd;

	assert_int_equal(mkdir(at("at"), 0755), 0);
	put("at/target", "old");
	d = open(at("at"), O_RDONLY | O_DIRECTORY);
	/* abort: nothing left */
	assert_int_equal(atomic_open(&a, d, "target"), 0);
	assert_int_equal(write(a.fd, "new", 3), 3);
	atomic_abort(&a);
	assert_string_equal(listing("at"), "target ");
	/* no_replace onto an existing name: EEXIST, nothing left */
	assert_int_equal(atomic_open(&a, d, "target"), 0);
	assert_int_equal(atomic_commit(&a, true, true, true), -EEXIST);
	atomic_abort(&a);
	assert_string_equal(listing("at"), "target ");
	/* replace */
	assert_int_equal(atomic_open(&a, d, "target"), 0);
	assert_int_equal(write(a.fd, "new", 3), 3);
	assert_int_equal(atomic_commit(&a, false, true, true), 0);
	assert_string_equal(listing("at"), "target ");
	fd = open(at("at/target"), O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	close(fd);
	assert_string_equal(buf, "new");
	/* a new name */
	assert_int_equal(atomic_open(&a, d, "fresh"), 0);
	assert_int_equal(atomic_commit(&a, true, true, true), 0);
	assert_string_equal(listing("at"), "fresh target ");
	close(d);
}

/* Removing a tree never follows a link out of it. */
static void test_remove_tree(void **state)
{
	char where[PATH_MAX];
	int d;

	assert_int_equal(fs_mkdir_p(at("outside"), 0755), 0);
	put("outside/precious", "keep");
	assert_int_equal(fs_mkdir_p(at("rm/x/y/z"), 0755), 0);
	put("rm/x/y/z/f", "1");
	put("rm/x/f", "2");
	assert_int_equal(symlink(at("outside"), at("rm/x/link")), 0);
	assert_int_equal(chmod(at("rm/x/y"), 0555), 0); /* read-only: root removes anyway */
	d = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(tree_remove(d, "rm", where, sizeof(where)), 0);
	assert_int_equal(access(at("rm"), F_OK), -1);
	assert_int_equal(access(at("outside/precious"), F_OK), 0);
	/* a missing one names itself */
	assert_int_equal(tree_remove(d, "rm", where, sizeof(where)), -ENOENT);
	assert_string_equal(where, "rm");
	close(d);
}

/* Acting as another user: its permissions apply, and they end with
 * fs_cred_leave. Needs root. */
static void test_cred(void **state)
{
	struct fs_cred cr;
	int fd;

	if (geteuid() != 0)
		skip();
	assert_int_equal(fs_cred_init(server_config(), "65534", &cr), 0);
	assert_true(cr.other);
	assert_int_equal(mkdir(at("rootonly"), 0755), 0);
	assert_int_equal(fs_cred_enter(&cr), 0);
	fd = open(at("rootonly/x"), O_CREAT | O_WRONLY, 0600);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, EACCES);
	fs_cred_leave(&cr);
	fd = open(at("rootonly/x"), O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fs_cred_init(server_config(), "no-such-user-here", &cr), -ENOENT);
	assert_int_equal(fs_cred_init(server_config(), NULL, &cr), 0); /* the default user */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_split),
		cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk, setup, teardown),
		cmocka_unit_test(test_tmpname),
		cmocka_unit_test_setup_teardown(test_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cred, setup, teardown),
	};

	return cmocka_run_group_tests_name("fs paths", tests, NULL, NULL);
}
