/* Every decoder of the codec on one frame: a peer chooses the type and the
 * payload, so each decoder must cope with any bytes under any type. Used
 * by the frame target (fuzz_frame.c); the per-message targets add round
 * trips. */
#include "tests/fuzz/fuzz.h"
#include "vsock/proto_fs.h"
#include "vsock/proto_net.h"

static void key_line(void *arg, const char *line)
{
	size_t *n = arg;

	FUZZ_CHECK(strlen(line) <= SSH_KEY_LINE_MAX);
	(*n)++;
}

/* The decoders that judge f under the type it has. */
static void decode_as_is(const struct frame *f)
{
	struct proto_err e;
	union {
		struct hello_ok hok;
		struct exit_status x;
		struct info i;
		struct ready_info rd;
		struct attached at;
		struct ack ack;
		struct ps_entry ps;
		struct lifetime l;
		struct fs_stat st;
		struct fs_tree_end te;
		struct ssh_server_info ss;
		struct ssh_key_req kr;
	} u;
	struct exec_req xr;
	struct fs_req fr;
	char msg[PROTO_MSG_MAX + 1], reason[PROTO_REASON_MAX + 1];
	uint16_t a16, b16;
	uint32_t v32;
	uint64_t count;
	uint8_t digest[FS_DIGEST_LEN];
	bool has_digest;
	size_t lines = 0;
	int code, sig, r;

#define RUN(call)                       \
	do {                            \
		fuzz_err_reset(&e);     \
		r = (call);             \
		fuzz_check_rc(r, &e);   \
	} while (0)

	RUN(proto_hello_decode(f, &a16, &b16, &e));
	if (r == 0)
		FUZZ_CHECK(a16 <= b16);
	RUN(proto_hello_ok_decode(f, &u.hok, &e));
	RUN(proto_error_decode(f, &code, msg, sizeof(msg), &e));
	if (r == 0)
		FUZZ_CHECK(code > 0 && code <= 4095 && strlen(msg) <= PROTO_MSG_MAX);
	RUN(proto_exec_decode(f, &xr, &e));
	if (r == 0)
		proto_exec_free(&xr);
	else
		FUZZ_CHECK(xr.mem == NULL);
	RUN(proto_u32_decode(f, &v32, &e));
	RUN(proto_signal_decode(f, &sig, &e));
	if (r == 0)
		FUZZ_CHECK(sig >= 1 && sig <= PROTO_SIG_MAX);
	RUN(proto_resize_decode(f, &a16, &b16, &e));
	RUN(proto_exit_decode(f, &u.x, &e));
	if (r == 0)
		FUZZ_CHECK(strlen(u.x.msg) <= PROTO_MSG_MAX);
	RUN(proto_info_ok_decode(f, &u.i, &e));
	RUN(proto_ready_decode(f, &u.rd, &e));
	RUN(proto_shutdown_decode(f, reason, &e));
	if (r == 0)
		FUZZ_CHECK(strlen(reason) <= PROTO_REASON_MAX);
	RUN(proto_attached_decode(f, &u.at, &e));
	RUN(proto_ack_decode(f, &u.ack, &e));
	RUN(proto_ps_entry_decode(f, &u.ps, &e));
	RUN(proto_lifetime_decode(f, &u.l, &e));

	RUN(proto_fs_req_decode(f, &fr, &e));
	if (r == 0)
		proto_fs_req_free(&fr);
	else
		FUZZ_CHECK(fr.mem == NULL);
	RUN(proto_fs_stat_ok_decode(f, &u.st, msg, sizeof(msg), &e));
	RUN(proto_fs_end_decode(f, FS_DIGEST_BLAKE2B_LEN, &count, digest, &has_digest, &e));
	RUN(proto_fs_end_decode(f, FS_DIGEST_XXH3_LEN, &count, digest, &has_digest, &e));
	RUN(proto_fs_path_ok_decode(f, msg, sizeof(msg), &e));
	if (r == 0)
		FUZZ_CHECK(strlen(msg) >= 1 && strlen(msg) == f->len);
	{
		struct fs_dirent_iter it;
		struct fs_dirent *d = malloc(sizeof(*d));

		FUZZ_CHECK(d);
		RUN(proto_fs_dirents_iter(&it, f, &e));
		while (r == 0) {
			fuzz_err_reset(&e);
			r = proto_fs_dirent_next(&it, d, &e);
			if (r <= 0) {
				fuzz_check_rc(r, &e);
				break;
			}
			FUZZ_CHECK(d->name[0] && strlen(d->name) <= FS_NAME_MAX &&
				   !strchr(d->name, '/'));
			r = 0;
		}
		free(d);
	}
	{
		struct fs_entry *en = malloc(sizeof(*en));

		FUZZ_CHECK(en);
		RUN(proto_fs_entry_decode(f, en, &e));
		if (r == 0)
			FUZZ_CHECK(strlen(en->path) <= FS_PATH_MAX &&
				   strlen(en->target) <= FS_PATH_MAX);
		free(en);
	}
	RUN(proto_fs_tree_end_decode(f, &u.te, &e));

	RUN(proto_forward_decode(f, &a16, &e));
	if (r == 0)
		FUZZ_CHECK(a16 >= 1);
	RUN(proto_ssh_start_decode(f, &e));
	RUN(proto_ssh_key_decode(f, &u.kr, &e));
	RUN(proto_ssh_server_decode(f, &u.ss, &e));
	RUN(proto_ssh_keys_decode(f, key_line, &lines, &e));
#undef RUN
}

/* Decoders of bare bytes: the stat record, tree paths, key lines. */
static void decode_bytes(const uint8_t *p, size_t len)
{
	struct proto_err e;
	struct fs_stat st;
	struct ssh_pubkey *k = malloc(sizeof(*k));
	int r;

	FUZZ_CHECK(k);
	fuzz_err_reset(&e);
	fuzz_check_rc(proto_fs_stat_get(p, len, &st, &e), &e);
	fuzz_err_reset(&e);
	fuzz_check_rc(proto_fs_relpath_check((const char *)p, len, &e), &e);
	fuzz_err_reset(&e);
	r = ssh_key_parse((const char *)p, len, k, &e);
	fuzz_check_rc(r, &e);
	if (r == 0)
		FUZZ_CHECK(k->blob_len <= SSH_KEY_BLOB_MAX && k->comment_len <= len);
	r = ssh_key_find((const char *)p, len, k);
	FUZZ_CHECK(r == 0 || r == 1);
	free(k);
}

static const uint16_t all_types[] = {
	FT_HELLO, FT_HELLO_OK, FT_ERROR, FT_OK, FT_EXEC, FT_ATTACH, FT_PS, FT_SHUTDOWN,
	FT_SESSION, FT_EXTEND, FT_ENV, FT_ENV_LIST, FT_LIFETIME, FT_SET_TIME, FT_INFO,
	FT_INFO_OK, FT_READY, FT_STDIN, FT_STDIN_EOF, FT_SIGNAL, FT_RESIZE, FT_ACK, FT_STARTED,
	FT_STDOUT, FT_STDERR, FT_EXIT, FT_ATTACHED, FT_PS_ENTRY,
	FT_FS_WRITE, FT_FS_READ, FT_FS_STAT, FT_FS_READDIR, FT_FS_MKDIR, FT_FS_REMOVE,
	FT_FS_RENAME, FT_FS_COPY, FT_FS_CHMOD, FT_FS_CHOWN, FT_FS_SYMLINK, FT_FS_LINK,
	FT_FS_READLINK, FT_FS_REALPATH, FT_FS_TRUNCATE, FT_FS_UTIMES, FT_FS_MKTEMP,
	FT_FS_TREE_READ, FT_FS_TREE_WRITE, FT_FS_LOCK, FT_FS_DATA, FT_FS_END, FT_FS_STAT_OK,
	FT_FS_PATH_OK, FT_FS_DIRENTS, FT_FS_ENTRY, FT_FS_TREE_END,
	FT_FORWARD, FT_SSH_START, FT_SSH_KEY_ADD, FT_SSH_KEY_REMOVE, FT_SSH_KEY_LIST,
	FT_SSH_SERVER, FT_SSH_KEYS,
};

void fuzz_decode_all(const struct frame *f)
{
	const char *name = proto_type_name(f->type);

	FUZZ_CHECK(name && name[0]);
	decode_as_is(f);
	decode_bytes(f->payload, f->len);
	/* The same payload under a type derived from it, so that decoders
	 * which check the type first still see every payload. */
	if (f->len > 0) {
		struct frame g = *f;

		g.type = all_types[f->payload[0] % (sizeof(all_types) / sizeof(all_types[0]))];
		decode_as_is(&g);
	}
}
