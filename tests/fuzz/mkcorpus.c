/* Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>):
 * valid examples of every message, made with the real encoders so that
 * the seeds follow the codec when it changes. `make fuzz-corpus`.
 *
 *   mkcorpus DIR */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "lib/buf.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"
#include "vsock/proto.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

static const char *root;
static struct buf b;

static void die_at(const char *what)
{
	fprintf(stderr, "mkcorpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *target, const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die_at(path);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
		die_at(path);
}

/* r: 0, -errno, or 1 for a chain of calls joined with || that failed. */
static void check(int r, const char *what)
{
	if (r != 0) {
		fprintf(stderr, "mkcorpus: encoding %s: %s\n", what, r < 0 ? strerror(-r) : "failed");
		exit(1);
	}
}

/* The frames encoded since the last reset. */
static void reset(void) { buf_consume(&b, buf_len(&b)); }

/* The payload of the single frame in b. */
static const uint8_t *payload(size_t *len)
{
	*len = get_le32(buf_head(&b));
	return buf_head(&b) + PROTO_HDR_LEN;
}

/* A seed for a selector target: the selector byte, then the payload of
 * the single frame in b. */
static void sel_seed(const char *target, const char *name, unsigned sel)
{
	uint8_t *out;
	size_t len;
	const uint8_t *p = payload(&len);

	out = malloc(len + 1);
	if (!out)
		die_at("malloc");
	out[0] = (uint8_t)sel;
	memcpy(out + 1, p, len);
	write_file(target, name, out, len + 1);
	free(out);
}

/* A seed for the frame and agent targets: the frames in b. */
static void frame_seed(const char *name)
{
	write_file("frame", name, buf_head(&b), buf_len(&b));
}

/* Agent target modes (fuzz_agent.c): whole frames, no token; and a
 * sandbox with a token. */
#define WHOLE 0xef
#define AUTH 0xff
#define BIG_ENV 0xee

/* An agent seed: mode byte, HELLO, then what is in b. */
static void agent_seed(const char *name, uint8_t mode)
{
	struct buf s;

	buf_init(&s, 4 * PROTO_FRAME_MAX);
	check(buf_append(&s, &mode, 1), "mode");
	check(proto_hello_put(&s, 1, 1), "HELLO");
	check(buf_append(&s, buf_head(&b), buf_len(&b)), name);
	write_file("agent", name, buf_head(&s), buf_len(&s));
	buf_free(&s);
}

/* ---- the command frames ---- */

static void exec_full(void)
{
	char *argv[] = { "sh", "-c", "echo \"$GREETING\"; cat; exit 3", NULL };
	char *env[] = { "GREETING=hello world", "EMPTY=", "X=1=2", NULL };
	struct exec_req r = { .argv = argv, .argc = 3, .env = env, .envc = 3, .cwd = "/tmp",
			      .user = "root", .flags = EXEC_F_STDIN | EXEC_F_CLEAR_ENV,
			      .pty = true, .rows = 24, .cols = 80 };

	check(proto_exec_put(&b, &r), "EXEC");
}

static void exec_simple(void)
{
	char *argv[] = { "echo", "hello", NULL };
	struct exec_req r = { .argv = argv, .argc = 2 };

	check(proto_exec_put(&b, &r), "EXEC");
}

static void exec_detached(void)
{
	char *argv[] = { "/bin/sleep", "1", NULL };
	char *env[] = { "PATH=/bin", NULL };
	struct exec_req r = { .argv = argv, .argc = 2, .env = env, .envc = 1, .cwd = "rel/dir",
			      .user = "1000", .flags = EXEC_F_DETACH | EXEC_F_NO_STDOUT |
						       EXEC_F_NO_STDERR };

	check(proto_exec_put(&b, &r), "EXEC");
}

static void commands(void)
{
	static void (*const execs[])(void) = { exec_simple, exec_full, exec_detached };
	static const char *const names[] = { "simple", "full", "detached" };

	for (size_t i = 0; i < ARRAY_SIZE(execs); i++) {
		char name[64];
		size_t len;
		const uint8_t *p;

		reset();
		execs[i]();
		p = payload(&len);
		snprintf(name, sizeof(name), "exec-%s", names[i]);
		write_file("exec", name, p, len);
		frame_seed(name);
		agent_seed(name, WHOLE);
		agent_seed(i == 0 ? "exec-simple-split1" : i == 1 ? "exec-full-split7" :
			   "exec-detached-split16", i == 0 ? 0 : i == 1 ? 6 : 15);
	}
	/* A command's whole conversation, as a client sends it. */
	reset();
	exec_full();
	check(proto_put(&b, FT_STDIN, "input\n", 6), "STDIN");
	check(proto_put(&b, FT_STDIN, NULL, 0), "STDIN");
	check(proto_resize_put(&b, 50, 120), "RESIZE");
	check(proto_u32_put(&b, FT_SIGNAL, 2), "SIGNAL");
	check(proto_put(&b, FT_STDIN_EOF, NULL, 0), "STDIN_EOF");
	frame_seed("exec-conversation");
	agent_seed("exec-conversation", 100);
	write_file("exec", "empty", "", 0);
}

/* ---- every other message, as frames and as selector seeds ---- */

static void msgs(void)
{
	struct hello_ok hok = { .version = 1, .flags = HELLO_F_AUTH };
	struct exit_status x = { .how = EXIT_NOT_STARTED, .value = 127 };
	struct attached at = { .pid = 4242, .flags = PS_F_PTY, .out_base = 1 << 20, .err_base = 7 };
	struct ack ack = { .out_off = 1 << 20, .err_off = 7, .flags = ACK_F_EXIT };
	struct ps_entry ps = { .pid = 4242, .state = PS_SIGNALED, .started_ns = 1700000000000000000ull,
			       .status = 9, .flags = PS_F_DETACHED | PS_F_ATTACHED };
	struct lifetime l = { .kind = LIFE_DURATION, .left_ns = 600 * NSEC_PER_SEC,
			      .realtime_ns = 1700000000000000000ull };
	struct info i = { .version = "sbx-init 0.1.0", .hostname = "sandbox", .kernel = "6.1.0",
			  .uptime_ns = 123456789, .pid1 = true, .lifetime_kind = LIFE_SESSION,
			  .sessions = 2, .jobs = 3, .grace_left_ns = 30 * NSEC_PER_SEC };
	struct ready_info rd = { 5, 1, 3, 2 };
	uint8_t ext[8], authp[PROTO_AUTH_LEN];
	size_t mark;

	memset(hok.nonce, 0x5a, sizeof(hok.nonce));
	str_copy(x.msg, sizeof(x.msg), "command not found: nosuch");
	str_copy(ps.argv, sizeof(ps.argv), "sleep 1000");

#define SEED(name, sel, encode)                  \
	do {                                     \
		reset();                         \
		check((encode), name);           \
		if ((int)(sel) >= 0)             \
			sel_seed("msgs", name, sel); \
		frame_seed(name);                \
	} while (0)

	SEED("hello", M_HELLO, proto_hello_put(&b, 1, 1));
	SEED("hello-range", M_HELLO, proto_hello_put(&b, 1, 7));
	SEED("hello-ok", M_HELLO_OK, proto_hello_ok_put(&b, &hok));
	SEED("error", M_ERROR, proto_error_put(&b, ENOENT, "no such file or directory: /app/x"));
	SEED("exit-not-started", M_EXIT, proto_exit_put(&b, &x));
	x.how = EXIT_SIGNALED;
	x.value = 9;
	x.flags = EXIT_F_CORE;
	x.msg[0] = '\0';
	SEED("exit-signaled", M_EXIT, proto_exit_put(&b, &x));
	SEED("signal", M_SIGNAL, proto_u32_put(&b, FT_SIGNAL, 15));
	SEED("resize", M_RESIZE, proto_resize_put(&b, 24, 80));
	SEED("started", M_U32, proto_u32_put(&b, FT_STARTED, 4242));
	SEED("attached", M_ATTACHED, proto_attached_put(&b, &at));
	SEED("ack", M_ACK, proto_ack_put(&b, &ack));
	SEED("shutdown", M_SHUTDOWN, proto_shutdown_put(&b, "killed"));
	SEED("shutdown-empty", M_SHUTDOWN, proto_shutdown_put(&b, NULL));
	SEED("lifetime", M_LIFETIME, proto_lifetime_put(&b, FT_LIFETIME, &l));
	SEED("ps-entry", M_PS_ENTRY, proto_ps_entry_put(&b, &ps));
	SEED("info-ok", M_INFO_OK, proto_info_ok_put(&b, &i));
	SEED("ready", M_READY, proto_ready_put(&b, &rd));
	SEED("ok", -1, proto_put(&b, FT_OK, NULL, 0));
	SEED("stdout", -1, proto_put(&b, FT_STDOUT, "hello\n", 6));
	SEED("stderr", -1, proto_put(&b, FT_STDERR, "oops\n", 5));
	memset(authp, 0xa5, sizeof(authp));
	SEED("auth", -1, proto_put(&b, FT_AUTH, authp, sizeof(authp)));

	/* Requests, which are also agent seeds. */
#define REQ(name, sel, encode)            \
	do {                              \
		SEED(name, sel, encode);  \
		agent_seed(name, WHOLE);  \
		agent_seed(name "-split3", 2); \
	} while (0)

	REQ("attach", M_FIELDS, (proto_begin(&b, FT_ATTACH, &mark) ||
				 proto_field_put_u32(&b, ATTACH_PID, 4242) || proto_end(&b, mark)));
	REQ("ps", -1, proto_put(&b, FT_PS, NULL, 0));
	REQ("info", -1, proto_put(&b, FT_INFO, NULL, 0));
	REQ("session", -1, proto_put(&b, FT_SESSION, NULL, 0));
	put_le64(ext, 300);
	REQ("extend", -1, proto_put(&b, FT_EXTEND, ext, 8));
	REQ("shutdown-req", -1, proto_shutdown_put(&b, "killed"));
	REQ("env-list", M_FIELDS, (proto_begin(&b, FT_ENV, &mark) ||
				   proto_field_put_u32(&b, ENV_OP, ENV_LIST) || proto_end(&b, mark)));
	/* Found by the hostile table: a list longer than a frame. */
	agent_seed("env-list-big-env", BIG_ENV);
	REQ("env-set", M_FIELDS, (proto_begin(&b, FT_ENV, &mark) ||
				  proto_field_put_u32(&b, ENV_OP, ENV_SET) ||
				  proto_field_put_str(&b, ENV_ENTRY, "MODE=fast") ||
				  proto_field_put_str(&b, ENV_ENTRY, "EMPTY=") || proto_end(&b, mark)));
	REQ("env-unset", M_FIELDS, (proto_begin(&b, FT_ENV, &mark) ||
				    proto_field_put_u32(&b, ENV_OP, ENV_UNSET) ||
				    proto_field_put_str(&b, ENV_NAME, "MODE") || proto_end(&b, mark)));
	REQ("set-time", M_FIELDS, (proto_begin(&b, FT_SET_TIME, &mark) ||
				   proto_field_put_u64(&b, LIFE_REALTIME_NS, 1700000000000000000ull) ||
				   proto_field_put_u64(&b, LIFE_LEFT_NS, 60 * NSEC_PER_SEC) ||
				   proto_end(&b, mark)));
	REQ("set-time-clock", M_FIELDS, (proto_begin(&b, FT_SET_TIME, &mark) ||
					 proto_field_put_u64(&b, LIFE_REALTIME_NS, 1) ||
					 proto_end(&b, mark)));
	/* An attached client's frames after ATTACH. */
	reset();
	check(proto_begin(&b, FT_ATTACH, &mark) || proto_field_put_u32(&b, ATTACH_PID, 1) ||
	      proto_end(&b, mark), "ATTACH");
	ack.flags = 0;
	check(proto_ack_put(&b, &ack), "ACK");
	check(proto_u32_put(&b, FT_SIGNAL, 9), "SIGNAL");
	frame_seed("attach-conversation");
	agent_seed("attach-conversation", 200);
	/* Two connections' worth of garbage: a second HELLO, an unknown type. */
	reset();
	check(proto_hello_put(&b, 1, 1), "HELLO");
	check(proto_put(&b, 0x7777, "?", 1), "unknown");
	frame_seed("hello-twice");
	agent_seed("hello-twice", WHOLE);
	/* A sandbox with a token: the request comes before any proof. */
	reset();
	check(proto_put(&b, FT_INFO, NULL, 0), "INFO");
	agent_seed("auth-missing", AUTH);
	reset();
	check(proto_put(&b, FT_AUTH, authp, sizeof(authp)) || proto_put(&b, FT_INFO, NULL, 0), "AUTH");
	agent_seed("auth-wrong", AUTH);
#undef REQ
#undef SEED
}

/* ---- files ---- */

static void fs(void)
{
	struct fs_stat st = { .mode = 0100644, .uid = 1000, .gid = 1000, .size = 12, .nlink = 1,
			      .ino = 99, .dev = 2049, .blocks = 8,
			      .atime = { 1700000000, 1 }, .mtime = { 1700000000, 2 },
			      .ctime = { 1700000000, 3 } };
	struct fs_tree_end te = { 3, 1234, 1 };
	uint8_t digest[FS_DIGEST_LEN];
	size_t mark;
	char name[64];

	/* Every request, with the fields it accepts. */
	for (uint16_t t = FT_FS_WRITE; t <= FT_FS_LOCK; t++) {
		struct fs_req r = { .type = t, .path = "/tmp/sbx-fuzz/file", .user = "root" };

		r.have = FS_HAVE(FS_FLAGS);
		switch (t) {
		case FT_FS_WRITE:
			r.flags = FS_F_MKDIRS | FS_F_CREATE_NEW;
			r.mode = 0644;
			r.size = 12;
			r.mtime = (struct fs_time){ 1700000000, FS_TIME_NOW };
			r.have |= FS_HAVE(FS_MODE) | FS_HAVE(FS_SIZE) | FS_HAVE(FS_MTIME);
			break;
		case FT_FS_READ:
			r.offset = 4;
			r.length = 100;
			r.flags = FS_F_NO_VERIFY;
			r.have |= FS_HAVE(FS_OFFSET) | FS_HAVE(FS_LENGTH);
			break;
		case FT_FS_READDIR:
			r.flags = FS_F_STAT;
			break;
		case FT_FS_RENAME:
		case FT_FS_COPY:
		case FT_FS_LINK:
			r.path2 = "/tmp/sbx-fuzz/other";
			break;
		case FT_FS_CHMOD:
			r.mode = 0755;
			r.have |= FS_HAVE(FS_MODE);
			break;
		case FT_FS_CHOWN:
			r.uid = 1000;
			r.gid = 1000;
			r.have |= FS_HAVE(FS_UID) | FS_HAVE(FS_GID);
			break;
		case FT_FS_SYMLINK:
			r.target = "../target";
			break;
		case FT_FS_LOCK:
			r.flags = FS_F_EXCLUSIVE;
			break;
		case FT_FS_TRUNCATE:
			r.length = 0;
			r.have |= FS_HAVE(FS_LENGTH);
			break;
		case FT_FS_UTIMES:
			r.atime = (struct fs_time){ 0, FS_TIME_OMIT };
			r.mtime = (struct fs_time){ 1700000000, 5 };
			r.have |= FS_HAVE(FS_ATIME) | FS_HAVE(FS_MTIME);
			break;
		case FT_FS_MKTEMP:
			r.path = "/tmp";
			r.prefix = "pre-";
			r.suffix = ".txt";
			r.flags = FS_F_DIRECTORY;
			break;
		case FT_FS_REMOVE:
			r.flags = FS_F_RECURSIVE;
			break;
		}
		reset();
		check(proto_fs_req_put(&b, &r), proto_fs_type_name(t));
		snprintf(name, sizeof(name), "%s", proto_fs_type_name(t));
		for (char *p = name; *p; p++)
			*p = (char)(*p == '_' ? '-' : *p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		sel_seed("fs", name, (unsigned)(t - FT_FS_WRITE));
		frame_seed(name);
		agent_seed(name, WHOLE);
	}
	reset();
	check(proto_fs_stat_ok_put(&b, &st, "target", 6), "STAT_OK");
	sel_seed("fs", "stat-ok", R_STAT_OK);
	frame_seed("fs-stat-ok");
	memset(digest, 0x42, sizeof(digest));
	reset();
	check(proto_fs_end_put(&b, 12, digest, FS_DIGEST_BLAKE2B_LEN), "END");
	sel_seed("fs", "end", R_END);
	frame_seed("fs-end");
	reset();
	check(proto_fs_end_put(&b, 12, digest, FS_DIGEST_XXH3_LEN), "END");
	sel_seed("fs", "end-xxh3", R_END);
	reset();
	check(proto_fs_end_put(&b, 12, NULL, 0), "END");
	sel_seed("fs", "end-unverified", R_END);
	reset();
	check(proto_put(&b, FT_FS_PATH_OK, "/tmp/x", 6), "PATH_OK");
	sel_seed("fs", "path-ok", R_PATH_OK);
	frame_seed("fs-path-ok");
	reset();
	check(proto_fs_dirents_begin(&b, true, &mark) ||
	      proto_fs_dirent_put(&b, "file", 4, 8, &st) ||
	      proto_fs_dirent_put(&b, "dir", 3, 4, &st) || proto_end(&b, mark), "DIRENTS");
	sel_seed("fs", "dirents-stat", R_DIRENTS);
	frame_seed("fs-dirents");
	reset();
	check(proto_fs_dirents_begin(&b, false, &mark) ||
	      proto_fs_dirent_put(&b, "a", 1, 8, NULL) || proto_end(&b, mark), "DIRENTS");
	sel_seed("fs", "dirents", R_DIRENTS);
	reset();
	check(proto_fs_entry_put(&b, "dir/file", &st, NULL), "ENTRY");
	sel_seed("fs", "entry", R_ENTRY);
	frame_seed("fs-entry");
	st.mode = 0120777;
	reset();
	check(proto_fs_entry_put(&b, "dir/link", &st, "../file"), "ENTRY");
	sel_seed("fs", "entry-link", R_ENTRY);
	reset();
	check(proto_fs_tree_end_put(&b, &te), "TREE_END");
	sel_seed("fs", "tree-end", R_TREE_END);
	frame_seed("fs-tree-end");
	reset();
	check(proto_put(&b, FT_FS_DATA, "hello world\n", 12), "DATA");
	frame_seed("fs-data");
	{
		/* R_RELPATH is the selector: patch the first byte. */
		char rel[] = "?a/b/c.txt";

		rel[0] = (char)R_RELPATH;
		write_file("fs", "relpath", rel, sizeof(rel) - 1);
	}
}

/* ---- ports and SSH ---- */

/* An RFC 4253 string. */
static size_t wire_put(uint8_t *p, const void *s, size_t len)
{
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	memcpy(p + 4, s, len);
	return 4 + len;
}

static void key_seed(const char *name, const char *type, const uint8_t *blob, size_t len,
		     const char *comment)
{
	char line[SSH_KEY_LINE_MAX + 1], seed[SSH_KEY_LINE_MAX + 2];

	check(ssh_key_format(type, blob, len, comment, line, sizeof(line)), name);
	seed[0] = (char)N_PARSE;
	memcpy(seed + 1, line, strlen(line));
	write_file("net", name, seed, strlen(line) + 1);
	seed[0] = (char)N_FIND;
	snprintf(seed + 1, sizeof(seed) - 1, "no-pty,command=\"echo a b\" %s", line);
	write_file("net", "find-options", seed, strlen(seed + 1) + 1);
}

static void net(void)
{
	struct ssh_server_info s = { .port = 22 };
	uint8_t pk[32], blob[1024];
	char line[SSH_KEY_LINE_MAX + 1];
	size_t n, mark;

	for (size_t i = 0; i < sizeof(pk); i++)
		pk[i] = (uint8_t)(i * 7 + 1);
	ssh_ed25519_blob(pk, blob);
	check(ssh_key_format("ssh-ed25519", blob, SSH_ED25519_BLOB_LEN, "user@host", line,
			     sizeof(line)), "ed25519");
	key_seed("parse-ed25519", "ssh-ed25519", blob, SSH_ED25519_BLOB_LEN, "user@host");

	/* ECDSA P-256: the shape only (the codec does not check the curve). */
	n = wire_put(blob, "ecdsa-sha2-nistp256", 19);
	n += wire_put(blob + n, "nistp256", 8);
	{
		uint8_t point[65];

		memset(point, 0x11, sizeof(point));
		point[0] = 0x04;
		n += wire_put(blob + n, point, sizeof(point));
	}
	key_seed("parse-ecdsa", "ecdsa-sha2-nistp256", blob, n, "");

	/* RSA 2048: e = 65537, a 2048-bit modulus with its sign byte. */
	{
		uint8_t e[3] = { 1, 0, 1 }, mod[257];

		memset(mod, 0xc3, sizeof(mod));
		mod[0] = 0;
		n = wire_put(blob, "ssh-rsa", 7);
		n += wire_put(blob + n, e, sizeof(e));
		n += wire_put(blob + n, mod, sizeof(mod));
		key_seed("parse-rsa", "ssh-rsa", blob, n, "rsa key");
	}

	reset();
	check(proto_forward_put(&b, 8080), "FORWARD");
	sel_seed("net", "forward", N_FORWARD);
	frame_seed("forward");
	agent_seed("forward", WHOLE);
	reset();
	check(proto_ssh_start_put(&b), "SSH_START");
	sel_seed("net", "ssh-start", N_SSH_START);
	frame_seed("ssh-start");
	agent_seed("ssh-start", WHOLE);
	reset();
	check(proto_ssh_key_put(&b, FT_SSH_KEY_ADD, "root", line), "SSH_KEY_ADD");
	sel_seed("net", "key-add", N_KEY_ADD);
	frame_seed("ssh-key-add");
	agent_seed("ssh-key-add", WHOLE);
	reset();
	check(proto_ssh_key_put(&b, FT_SSH_KEY_REMOVE, NULL, line), "SSH_KEY_REMOVE");
	sel_seed("net", "key-remove", N_KEY_REMOVE);
	frame_seed("ssh-key-remove");
	reset();
	check(proto_ssh_key_put(&b, FT_SSH_KEY_LIST, "1000", NULL), "SSH_KEY_LIST");
	sel_seed("net", "key-list", N_KEY_LIST);
	frame_seed("ssh-key-list");
	agent_seed("ssh-key-list", WHOLE);
	str_copy(s.host_key, sizeof(s.host_key), line);
	*strrchr(s.host_key, ' ') = '\0';
	ssh_key_fingerprint(blob, SSH_ED25519_BLOB_LEN, s.fingerprint);
	str_copy(s.user, sizeof(s.user), "root");
	reset();
	check(proto_ssh_server_put(&b, &s), "SSH_SERVER");
	sel_seed("net", "ssh-server", N_SERVER);
	frame_seed("ssh-server");
	reset();
	check(proto_begin(&b, FT_SSH_KEYS, &mark) || proto_field_put_str(&b, SSH_KEY_KEY, line) ||
	      proto_field_put_str(&b, SSH_KEY_KEY, "# a comment") || proto_end(&b, mark),
	      "SSH_KEYS");
	sel_seed("net", "ssh-keys", N_KEYS);
	frame_seed("ssh-keys");
}

/* ---- configuration ---- */

static void config(void)
{
	static const struct {
		const char *name, *text;
	} files[] = {
		{ "docs-example",
		  "# a sandbox configuration\n"
		  "hostname = sbx-1234\n"
		  "port = 1024\n"
		  "user = root\n"
		  "workdir = /app\n"
		  "env.GREETING = \"hello\\tworld\"\n"
		  "env.PLAIN = one two\n"
		  "lifetime = 5m\n"
		  "session_grace = 30s\n"
		  "stop_grace = 3s\n"
		  "output_buffer = 1048576\n"
		  "label.team = core\n"
		  "label.note = \"a b\"\n"
		  "ready_port = 1023\n" },
		{ "session", "lifetime = session\nsession_grace = 1h\n" },
		{ "hardening", "token = 0123456789abcdef0123456789abcdef\nseccomp = off\npids_max = 0\n"
			       "token = short\nseccomp = maybe\n" },
		{ "quoting", "env.Q = \"\\\\ \\\" \\n \\t \\r \\x41\\x7f\"\n  env.SPACE =  \"  padded  \"  \n" },
		{ "bad-lines",
		  "port = 0\nhostname = -bad\nbogus_key = 1\nno equals sign\n= no key\n"
		  "env.1X = y\nenv.OK = \"unterminated\nenv.E = \"\\x00\"\nlabel.k!y = v\n"
		  "output_buffer = 100\nlifetime = 25h\n" },
		{ "crlf", "hostname = crlf\r\nenv.A = 1\r\n" },
		{ "empty", "" },
	};
	static const char *const cmdlines[][2] = {
		{ "vm", "console=ttyS0 root=/dev/vda quiet sbx.hostname=sbx-1 sbx.lifetime=10m "
			"sbx.ready_port=1023 sbx.env.MSG=\"hello world\" panic=-1" },
		{ "bad", "sbx.port=0 sbx.novalue sbx. sbx.=x sbx.env.=1 \"sbx.env.Q=a b\"" },
		{ "quotes", "sbx.env.A=\"unterminated sbx.env.B=2" },
		{ "token", "sbx.token=0123456789abcdef0123 sbx.token= \"sbx.token=x\" sbx.seccomp=off "
			   "sbx.pids_max=100" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		write_file("config", files[i].name, files[i].text, strlen(files[i].text));
	for (size_t i = 0; i < ARRAY_SIZE(cmdlines); i++)
		write_file("cmdline", cmdlines[i][0], cmdlines[i][1], strlen(cmdlines[i][1]));
}

/* ---- the guest's resolver (net/dns.c): DNS queries ---- */

static void dns_query(const char *name, const char *qname, uint16_t qtype, uint16_t flags)
{
	uint8_t q[300];
	size_t n = 0, len = strlen(qname);

	q[n++] = 0x12;
	q[n++] = 0x34;
	q[n++] = (uint8_t)(flags >> 8);
	q[n++] = (uint8_t)flags;
	memcpy(q + n, "\0\1\0\0\0\0\0\0", 8); /* one question */
	n += 8;
	memcpy(q + n, qname, len + 1); /* labels, with the root's 0 */
	n += len + 1;
	q[n++] = (uint8_t)(qtype >> 8);
	q[n++] = (uint8_t)qtype;
	q[n++] = 0;
	q[n++] = 1; /* IN */
	write_file("dns", name, q, n);
}

static void dns(void)
{
	dns_query("a-example-com", "\7example\3com", 1, 0x0100);
	dns_query("aaaa-example-com", "\7example\3com", 28, 0x0100);
	dns_query("mx-sub", "\3sub\7example\3org", 15, 0x0100);
	dns_query("a-one-label", "\011localhost", 1, 0x0000);
	dns_query("response-bit", "\1x\2io", 1, 0x8100);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		die_at(root);
	if (sodium_init() < 0)
		die_at("sodium_init");
	buf_init(&b, 4 * PROTO_FRAME_MAX);
	commands();
	msgs();
	fs();
	net();
	config();
	dns();
	buf_free(&b);
	return 0;
}
