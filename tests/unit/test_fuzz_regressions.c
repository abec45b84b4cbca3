/* Regressions from fuzzing (tests/fuzz) and from the hostile-input table
 * (tests/tools/hostile/), in the ordinary build, so `make unit` and
 * `make asan` run them without clang:
 *
 *  - every fuzz corpus (tests/fuzz/corpus/<target>/, one test each for
 *    frame, the payload targets exec, msgs, fs and net, config and
 *    cmdline, agent, dns) replayed through the same checks the fuzz
 *    targets make (tests/fuzz/decode_all.c, config_check.c, and the
 *    targets fuzz_agent.c and fuzz_dns.c themselves, included below): the
 *    frame stream and every codec decoder, the configuration file and the
 *    kernel command line, the agent's side of a connection with the
 *    stubs of the agent target (tests/fuzz/agent_stubs.c: nothing is
 *    started, no file or port touched), the guest's resolver. An input
 *    that once crashed a target is added to its corpus and runs here
 *    from then on;
 *  - the agent's answers to inputs that broke it, through its real
 *    connection code (server/conn.c, ops.c, control.c, exec/exec.c and
 *    the real spawn.c) on a socketpair, with the agent target's stubs for
 *    the server's globals and the job table (see below): each test names
 *    the bug it guards against. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/corpus.h"
#include "tests/fuzz/config_check.c"
#include "tests/fuzz/decode_all.c"

/* The resolver target, as it is (its entry points renamed). */
#define LLVMFuzzerInitialize fuzz_dns_init
#define LLVMFuzzerTestOneInput fuzz_dns_one
#include "tests/fuzz/fuzz_dns.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

/* The agent target with its stubs, as `make fuzz-build` links it, but in
 * this binary, whose agent tests below need the real spawn_process
 * (exec/spawn.c, compiled in here under another name) for the reason a
 * start failed: spawn_process is the stub while the agent corpus is
 * replayed, the real one otherwise. Everything else the stubs replace
 * (the server's globals, the job table, file and network operations,
 * cgroups) is the stub for the whole binary, as in the agent target; the
 * real restrict_filter (exec/restrict.c, which the real spawn needs)
 * answers as the stub does, NULL, as no filter is ever built here. */
#include "exec/restrict.h"
#include "exec/spawn.h"
#define spawn_process real_spawn_process
#include "exec/spawn.c"
#undef spawn_process
#define spawn_process stub_spawn_process
#define restrict_filter stub_restrict_filter
#include "tests/fuzz/agent_stubs.c"
#undef spawn_process
#undef restrict_filter

static bool replaying_agent;

int spawn_process(const struct spawn_req *r, pid_t *pid, struct spawn_err *e);
int spawn_process(const struct spawn_req *r, pid_t *pid, struct spawn_err *e)
{
	return replaying_agent ? stub_spawn_process(r, pid, e) : real_spawn_process(r, pid, e);
}

/* fuzz_agent.c aborts on an answer a client could not decode: here that
 * is a failure naming the input. */
#define LLVMFuzzerInitialize fuzz_agent_init
#define LLVMFuzzerTestOneInput fuzz_agent_one
#define abort() FUZZ_FAIL()
#include "tests/fuzz/fuzz_agent.c"
#undef abort
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#include "lib/config.h"
#include "lib/loop.h"
#include "conn/conn.h"
#include "server/server.h"


/* With make asan, UBSan stops the process at its first report (it only
 * prints by default), so undefined behaviour fails a test here. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

/* ---- the corpora ---- */

/* As fuzz_frame does: cut into frames, every decoder on each. */
static void frames(const uint8_t *p, size_t len)
{
	size_t used = 0;

	while (used < len) {
		struct proto_err e;
		struct frame f;
		long n = proto_frame_parse(p + used, len - used, &f, &e);

		if (n <= 0)
			break;
		fuzz_decode_all(&f);
		used += (size_t)n;
	}
}

/* A payload for one decoder (exec) or behind a selector byte (msgs, fs,
 * net): every decoder on it. */
static void payload(const uint8_t *p, size_t len)
{
	struct frame f = { .type = FT_EXEC, .len = (uint32_t)len, .payload = p };

	fuzz_decode_all(&f);
	if (len > 0) {
		f.payload = p + 1;
		f.len = (uint32_t)(len - 1);
		fuzz_decode_all(&f);
	}
}

static void config_text(const uint8_t *p, size_t len)
{
	struct config c;
	char err[512];

	config_init(&c);
	config_parse_text(&c, (const char *)p, len, "corpus", err, sizeof(err));
	fuzz_config_check(&c);
	config_free(&c);
}

static void cmdline(const uint8_t *p, size_t len)
{
	char *s = strndup((const char *)p, len), err[512];
	struct config c;

	assert_non_null(s);
	config_init(&c);
	config_parse_cmdline(&c, s, err, sizeof(err));
	fuzz_config_check(&c);
	config_free(&c);
	free(s);
}

static void test_corpus_frame(void **state)
{
	assert_true(each_input("frame", frames) > 0);
}

static void test_corpus_payloads(void **state)
{
	assert_true(each_input("exec", payload) > 0);
	assert_true(each_input("msgs", payload) > 0);
	assert_true(each_input("fs", payload) > 0);
	assert_true(each_input("net", payload) > 0);
}

static void test_corpus_config(void **state)
{
	assert_true(each_input("config", config_text) > 0);
	assert_true(each_input("cmdline", cmdline) > 0);
}

static void dns_query(const uint8_t *p, size_t len)
{
	fuzz_dns_one(p, len);
}

static void test_corpus_dns(void **state)
{
	assert_true(each_input("dns", dns_query) > 0);
}

/* The event loop, once for the whole binary (the agent corpus and the
 * agent tests below). */
static void loop_ready(void)
{
	static bool once;

	if (!once) {
		assert_int_equal(loop_init(), 0);
		once = true;
	}
}

static void agent_input(const uint8_t *p, size_t len)
{
	fuzz_agent_one(p, len);
}

/* As fuzz_agent's LLVMFuzzerInitialize, with the loop shared. */
static void test_corpus_agent(void **state)
{
	size_t n;

	signal(SIGPIPE, SIG_IGN);
	loop_ready();
	config_free(&fuzz_cfg);
	config_init(&fuzz_cfg);
	server_devnull();
	replaying_agent = true;
	n = each_input("agent", agent_input);
	assert_true(n > 0);
}

/* Also after a failure half-way: the tests below use the real spawn. */
static int agent_corpus_teardown(void **state)
{
	replaying_agent = false;
	fuzz_auth = false;
	config_free(&fuzz_cfg);
	config_init(&fuzz_cfg);
	return 0;
}

/* ---- the agent, through its real connection code ---- */

/* The request and the answer of an agent test (freed by the teardown,
 * also when the test fails half-way). */
static struct buf in, out;
static bool half_close; /* shut our sending side once `in` is sent */

static int agent_setup(void **state)
{
	log_set_level((enum log_level)(LOG_ERROR + 1));
	loop_ready();
	config_free(server_config_mut());
	config_init(server_config_mut());
	buf_init(&in, 2 * PROTO_FRAME_MAX);
	buf_init(&out, 8u << 20);
	half_close = false;
	return 0;
}

static int agent_teardown(void **state)
{
	config_free(server_config_mut());
	buf_free(&in);
	buf_free(&out);
	return 0;
}

/* Sends `in` on a new connection (after HELLO) and returns everything
 * the agent answered, once it has closed the connection. */
static void converse(void)
{
	struct buf hello;
	size_t sent = 0;
	bool eof = false;
	int sv[2];

	buf_init(&hello, 64);
	assert_int_equal(proto_hello_put(&hello, PROTO_VERSION, PROTO_VERSION), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(conn_start(sv[0], false), 0);
	assert_int_equal(send(sv[1], buf_head(&hello), buf_len(&hello), MSG_NOSIGNAL),
			 (ssize_t)buf_len(&hello));
	buf_free(&hello);
	for (int rounds = 0; !eof && rounds < 100000; rounds++) {
		ssize_t n;

		if (sent < buf_len(&in)) {
			n = send(sv[1], buf_head(&in) + sent, buf_len(&in) - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			if (sent == buf_len(&in) && half_close)
				shutdown(sv[1], SHUT_WR);
		}
		loop_run_once(1);
		for (;;) {
			assert_int_equal(buf_reserve(&out, 65536), 0);
			n = recv(sv[1], buf_tail(&out), buf_room(&out), MSG_DONTWAIT);
			if (n <= 0) {
				eof = n == 0;
				break;
			}
			buf_commit(&out, (size_t)n);
		}
	}
	assert_true(eof);
	close(sv[1]);
	loop_run_once(0);
	assert_int_equal(conn_count(), 0);
}

/* The agent's answer decodes into whole frames; returns the last one. */
static struct frame last_frame(size_t *count)
{
	struct frame f = { 0 }, g;
	size_t used = 0;

	*count = 0;
	while (used < buf_len(&out)) {
		struct proto_err e;
		long n = proto_frame_parse(buf_head(&out) + used, buf_len(&out) - used, &g, &e);

		if (n <= 0)
			fail_msg("the agent's answer is not a sequence of frames: %s at byte %zu of %zu "
				 "(after %zu frames, the last %s)", n == 0 ? "a partial frame" : e.msg,
				 used, buf_len(&out), *count, *count ? proto_type_name(f.type) : "none");
		f = g;
		used += (size_t)n;
		(*count)++;
	}
	return f;
}

/* Hostile table, "ENV list of 2.4 MiB": with an environment too large
 * for one ENV_LIST frame, control_env (server/control.c) left the frame
 * it had begun in the queue (a header saying 0 bytes, then the entries)
 * and put its ERROR behind it: the client read an empty list and then
 * garbage. Four variables of 600 KiB are more than a frame (1 MiB) and
 * more than a connection's output queue (2 MiB). The answer must be
 * whole frames: HELLO_OK, then the list (ENV_LIST frames and OK; or one
 * ENV_LIST, as the protocol had it), or an ERROR. */
static void test_env_list_over_frame_cap(void **state)
{
	struct config *cfg = server_config_mut();
	char *big = malloc(600 * 1024 + 1);
	size_t used = 0, mark, entries = 0, frames = 0;
	uint16_t last = 0;

	assert_non_null(big);
	memset(big, 'v', 600 * 1024);
	big[600 * 1024] = '\0';
	for (char name[] = "BIG_A"; name[4] <= 'D'; name[4]++)
		assert_int_equal(config_env_set(&cfg->env, &cfg->envc, name, big), 0);
	free(big);
	assert_int_equal(proto_begin(&in, FT_ENV, &mark), 0);
	assert_int_equal(proto_field_put_u32(&in, ENV_OP, ENV_LIST), 0);
	assert_int_equal(proto_end(&in, mark), 0);
	converse();
	last_frame(&frames); /* whole frames, or a failure */
	while (used < buf_len(&out)) {
		struct field_iter it;
		struct proto_err e;
		const uint8_t *v;
		struct frame f;
		uint16_t tag;
		uint32_t len;
		int k;

		used += (size_t)proto_frame_parse(buf_head(&out) + used, buf_len(&out) - used, &f, &e);
		if (f.type == FT_ENV_LIST) {
			proto_fields(&it, &f);
			while ((k = proto_field_next(&it, &tag, &v, &len, &e)) > 0)
				entries++;
			assert_int_equal(k, 0);
		} else if (f.type != FT_HELLO_OK) {
			assert_true(f.type == FT_OK || f.type == FT_ERROR);
			assert_int_equal(used, buf_len(&out)); /* the last frame */
		}
		last = f.type;
	}
	if (last == FT_OK || (last == FT_ENV_LIST && frames == 2))
		assert_int_equal(entries, 4);
	else
		assert_int_equal(last, FT_ERROR);
}

/* Hostile table, "a 10,000-byte program path": spawn_failed
 * (exec/exec.c) wrote the program name before the reason, and a long name
 * pushed the reason out of the 4,096 bytes of EXIT's message: the client
 * learned that it failed, not why. */
static void test_exec_reason_survives_a_long_name(void **state)
{
	static struct exit_status x;
	char *prog = malloc(10001);
	struct proto_err e;
	struct frame f;
	size_t n;

	assert_non_null(prog);
	for (size_t i = 0; i < 10000; i++)
		prog[i] = i % 100 == 0 ? '/' : 'a';
	prog[10000] = '\0';
	{
		char *argv[] = { prog, NULL };
		/* STDIN: every stdio fd is a pipe of this test's, not /dev/null
		 * (the server's /dev/null is opened by server_main). */
		struct exec_req r = { .argv = argv, .argc = 1, .flags = EXEC_F_STDIN };

		assert_int_equal(proto_exec_put(&in, &r), 0);
	}
	free(prog);
	converse();
	f = last_frame(&n);
	assert_int_equal(f.type, FT_EXIT);
	assert_int_equal(proto_exit_decode(&f, &x, &e), 0);
	assert_int_equal(x.how, EXIT_NOT_STARTED);
	assert_int_equal(x.value, 126);
	if (!strstr(x.msg, "too long"))
		fail_msg("EXIT's message does not say why: \"%.120s...\"", x.msg);
}

/* Hostile table, "ENV set of 5,000 variables": control_env checks the
 * names of a request before changing anything, but meets the limit of
 * 4,096 variables (lib/config.c config_env_set, E2BIG) while applying it:
 * the ERROR came after 4,096 of the variables were set, in memory only
 * (the state file was not written). docs/PROTOCOL.md: "the whole request
 * is checked before anything changes". */
static void test_env_set_over_limit_changes_nothing(void **state)
{
	const struct config *cfg = server_config();
	struct frame f;
	size_t mark, n;

	assert_int_equal(proto_begin(&in, FT_ENV, &mark), 0);
	assert_int_equal(proto_field_put_u32(&in, ENV_OP, ENV_SET), 0);
	for (int i = 0; i < 5000; i++) {
		char e[32];

		snprintf(e, sizeof(e), "MANY_%d=%d", i, i);
		assert_int_equal(proto_field_put_str(&in, ENV_ENTRY, e), 0);
	}
	assert_int_equal(proto_end(&in, mark), 0);
	converse();
	f = last_frame(&n);
	assert_int_equal(f.type, FT_ERROR);
	assert_int_equal(cfg->envc, 0);
}

/* The hostile table under make asan ("100,000 empty STDIN frames"):
 * job_frame (exec/job.c) appended each empty STDIN payload to the
 * command's input queue, and buf_append (lib/buf.c) then passed the empty
 * queue's NULL data to memcpy, which C leaves undefined even for 0 bytes
 * (UBSan: "lib/buf.c:56: null pointer passed as argument 1"). Since
 * 2461329 job.c no longer appends empty payloads, but any other caller
 * appending nothing to an empty buf does the same. In a child, which
 * UBSan stops (see above) in the instrumented build. */
static void test_buf_append_nothing_to_empty(void **state)
{
	int status;
	pid_t pid;

#ifndef __SANITIZE_ADDRESS__
	/* Only UBSan sees the undefined memcpy: without the instrumented
	 * build (make asan) this would pass whatever buf_append does. */
	skip();
#endif
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct buf b;
		int r;

		buf_init(&b, 1024);
		r = buf_append(&b, "", 0);
		_exit(r == 0 && buf_len(&b) == 0 ? 0 : 3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("appending 0 bytes to an empty buf: child status 0x%x (UBSan report above?)",
			 status);
}

/* fuzz_agent (tests/fuzz/corpus/agent/regress-half-close-big-answer), and
 * the hostile table: a client that shuts its sending side after its
 * request (shutdown(SHUT_WR), as socat does) lost the end of an answer
 * larger than the socket's buffer: since e85bd07 a connection flushing
 * its answer (server/conn.c, `closing`) took EPOLLRDHUP for a hang-up and
 * closed mid-frame. */
static void test_half_closed_client_gets_whole_answer(void **state)
{
	struct config *cfg = server_config_mut();
	char *big = malloc(600 * 1024 + 1);
	size_t mark, frames;
	struct frame f;

	assert_non_null(big);
	memset(big, 'v', 600 * 1024);
	big[600 * 1024] = '\0';
	assert_int_equal(config_env_set(&cfg->env, &cfg->envc, "BIG_A", big), 0);
	assert_int_equal(config_env_set(&cfg->env, &cfg->envc, "BIG_B", big), 0);
	free(big);
	assert_int_equal(proto_begin(&in, FT_ENV, &mark), 0);
	assert_int_equal(proto_field_put_u32(&in, ENV_OP, ENV_LIST), 0);
	assert_int_equal(proto_end(&in, mark), 0);
	half_close = true;
	converse();
	f = last_frame(&frames);
	assert_true(buf_len(&out) > 2 * 600 * 1024);
	assert_int_equal(f.type, FT_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_frame),
		cmocka_unit_test(test_corpus_payloads),
		cmocka_unit_test(test_corpus_config),
		cmocka_unit_test(test_corpus_dns),
		cmocka_unit_test_teardown(test_corpus_agent, agent_corpus_teardown),
		cmocka_unit_test(test_buf_append_nothing_to_empty),
		cmocka_unit_test_setup_teardown(test_env_list_over_frame_cap, agent_setup,
						agent_teardown),
		cmocka_unit_test_setup_teardown(test_exec_reason_survives_a_long_name, agent_setup,
						agent_teardown),
		cmocka_unit_test_setup_teardown(test_env_set_over_limit_changes_nothing, agent_setup,
						agent_teardown),
		cmocka_unit_test_setup_teardown(test_half_closed_client_gets_whole_answer, agent_setup,
						agent_teardown),
	};

	log_set_level((enum log_level)(LOG_ERROR + 1));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
