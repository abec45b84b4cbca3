/* sbx-hostile: the tables of hostile inputs of issue 7, sent over a real
 * connection to a real agent, one table per area (frames.c, exec.c, fs.c,
 * net.c, control.c, conns.c, auth.c). Each case builds its bytes with the
 * codec (vsock/proto*.h) or by hand, or is data (struct bad_frame in
 * hostile.h), sends them, and checks the answer a client gets: an ERROR with the documented code and a message naming what was
 * wrong, or an EXIT. After every case the agent must still serve (an echo
 * command works), its server process must be the same one (no crash, no
 * restart), and its fd count and RSS must come back to where they were.
 *
 *   sbx-hostile ADDR SERVER_PID SCRATCH_DIR [CASE...]
 *
 * CASE selects cases whose name contains it. Prints "# plan: N cases",
 * then TAP lines "ok - SUITE: case" (SUITE from $HOSTILE_SUITE, default
 * "hostile"); exits 0 only when every case passed.
 * With $HOSTILE_TOKEN (the agent's token) only the "auth:" cases run,
 * which need an agent with a token; without, they do not.
 * $HOSTILE_RSS_SLACK_KIB is how far above its baseline the server's RSS
 * may stay after a case (default 512 KiB: allocator noise); floods may
 * take it 4 MiB (or that slack) above while they last. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tests/tools/hostile/hostile.h"

struct addr agent;
pid_t server;
const char *scratch;
const char *token;
uint8_t auth_key[32];
long rss_slack_kib = 512;
char why[2048];
int base_fds;
long base_rss;
long worst_rss_delta;

static const char *suite = "hostile";

/* In this order: the cases that hold connections open come last, the
 * auth: ones run alone (against an agent with a token). */
static const struct hostile_area *const areas[] = {
	&hostile_frames, &hostile_exec, &hostile_fs, &hostile_net, &hostile_control,
	&hostile_conns, &hostile_auth,
};

static bool selected(const char *name, int argc, char **argv)
{
	/* The auth: cases need an agent with a token, and only run there. */
	if ((strncmp(name, "auth:", 5) == 0) != (token != NULL))
		return false;
	if (argc == 0)
		return true;
	for (int i = 0; i < argc; i++)
		if (strstr(name, argv[i]))
			return true;
	return false;
}

/* One case, then the agent's health; prints its TAP line. 1 if it failed. */
static int run_case(const struct hostile_case *c)
{
	char answer[sizeof(why)], after[sizeof(why)];
	uint64_t t0 = now_ms();
	int r;

	why[0] = '\0';
	r = c->fn ? c->fn() : bad_frame_check(&c->frame);
	/* Whatever the answer was, the agent must recover from it. */
	memcpy(answer, why, sizeof(answer));
	if (healthy() < 0) {
		memcpy(after, why, sizeof(after));
		snprintf(why, sizeof(why), "%s%safterwards: %s", r ? answer : "", r ? "; " : "", after);
		r = -1;
	} else {
		memcpy(why, answer, sizeof(why));
	}
	printf("%s - %s: %s\n", r == 0 ? "ok" : "not ok", suite, c->name);
	if (r != 0) {
		printf("#   %s\n", why);
		if (c->bug)
			printf("#   known bug (reported): %s\n", c->bug);
	}
	if (now_ms() - t0 > 3000)
		printf("#   (%.1f s)\n", (double)(now_ms() - t0) / 1000);
	return r != 0;
}

int main(int argc, char **argv)
{
	char err[256];
	size_t planned = 0;
	int failed = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: sbx-hostile ADDR SERVER_PID SCRATCH_DIR [CASE...]\n");
		return 2;
	}
	if (addr_parse(argv[1], &agent, err, sizeof(err)) < 0) {
		fprintf(stderr, "sbx-hostile: %s\n", err);
		return 2;
	}
	server = (pid_t)atoi(argv[2]);
	scratch = argv[3];
	if (getenv("HOSTILE_SUITE"))
		suite = getenv("HOSTILE_SUITE");
	if (getenv("HOSTILE_TOKEN") && *getenv("HOSTILE_TOKEN")) {
		token = getenv("HOSTILE_TOKEN");
		proto_auth_key(token, auth_key);
	}
	if (getenv("HOSTILE_RSS_SLACK_KIB"))
		rss_slack_kib = atol(getenv("HOSTILE_RSS_SLACK_KIB"));
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Warm up, then take the baseline the server must come back to. */
	for (int i = 0; i < 20; i++)
		if (echo_works() < 0) {
			printf("not ok - %s: the agent serves before the table (%s)\n", suite, why);
			return 1;
		}
	usleep(200000);
	base_fds = fd_count(server);
	base_rss = rss_kib(server);
	if (base_fds < 0 || base_rss < 0) {
		printf("not ok - %s: cannot read /proc/%d of the server\n", suite, (int)server);
		return 1;
	}
	printf("# server %d: %d fds, %ld KiB RSS before the table (slack %ld KiB)\n", (int)server,
	       base_fds, base_rss, rss_slack_kib);
	/* The plan: tests/integration/hostile.sh checks that as many results
	 * as this came out, so a crash or a hang mid-table cannot pass. */
	for (size_t a = 0; a < ARRAY_SIZE(areas); a++)
		for (size_t i = 0; i < areas[a]->n; i++)
			planned += selected(areas[a]->cases[i].name, argc - 4, argv + 4);
	printf("# plan: %zu cases\n", planned);
	for (size_t a = 0; a < ARRAY_SIZE(areas); a++)
		for (size_t i = 0; i < areas[a]->n; i++)
			if (selected(areas[a]->cases[i].name, argc - 4, argv + 4))
				failed += run_case(&areas[a]->cases[i]);
	printf("# server %d: %d fds, %ld KiB RSS after the table; largest RSS left after a case: "
	       "+%ld KiB\n", (int)server, fd_count(server), rss_kib(server), worst_rss_delta);
	return failed ? 1 : 0;
}
