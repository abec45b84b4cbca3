/* sbx connect, close, extend, clock: a sandbox's session and lifetime.
 * A sandbox with the "session" lifetime lives while a session is open;
 * `sbx create` holds one in the foreground, and `sbx connect` opens another
 * (after a crash of the first, say). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "launcher/sandbox.h"
#include "lib/util.h"

#define RECONNECT_EVERY_MS 200

static void describe(const char *id, const struct lifetime *l)
{
	if (l->kind == LIFE_SESSION)
		fprintf(stderr, "sbx: session open on %s; it ends with this process (Ctrl-C, or "
			"sbx close %s)\n", id, id);
	else if (l->kind == LIFE_DURATION)
		fprintf(stderr, "sbx: session open on %s, which powers off in %llu s\n", id,
			(unsigned long long)(l->left_ns / NSEC_PER_SEC));
	else
		fprintf(stderr, "sbx: session open on %s (no time limit)\n", id);
}

/* Holds a session until a signal, the sandbox's shutdown, or its end.
 * If the connection drops (the agent's server restarted), reconnects
 * while the sandbox lives: the agent's grace period covers the gap.
 * ready_fd (unless -1) gets one byte and is closed once the session is
 * open. */
int cli_hold_session(const struct sandbox *sb, bool quiet, int ready_fd)
{
	struct sbx_error err;
	struct sbx_conn *c = NULL;
	struct lifetime l;
	sigset_t mask;
	int sfd, status = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	sandbox_session_register(sb);
	for (;;) {
		struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = -1 } };
		struct frame f;

		if (!c) {
			if (sbx_session(sb->addr, &c, &l, &err) < 0) {
				if (!sandbox_alive(sb)) {
					cli_error("sandbox %s has ended", sb->id);
					break;
				}
				c = NULL;
			} else {
				if (!quiet)
					describe(sb->id, &l);
				quiet = true;
				if (ready_fd >= 0) {
					(void)!write(ready_fd, "1", 1);
					fd_close(&ready_fd);
				}
			}
		}
		if (c)
			p[1] = (struct pollfd){ .fd = sbx_fd(c), .events = POLLIN };
		if (poll(p, 2, c ? -1 : RECONNECT_EVERY_MS) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			struct signalfd_siginfo si;

			/* Closed by a signal (sbx close, Ctrl-C): consume it,
			 * so that unblocking it below does not kill us. */
			(void)!read(sfd, &si, sizeof(si));
			break;
		}
		if (c && p[1].revents && sbx_recv(c, &f, 0, &err) < 0 && err.code != EAGAIN) {
			sbx_close(c);
			c = NULL;
			if (err.code == ESHUTDOWN) {
				/* The sandbox powers off and says why. */
				cli_error("%s", err.msg);
				break;
			}
		}
	}
	sandbox_session_unregister(sb);
	sbx_close(c);
	close(sfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	return status;
}

int cli_connect(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc != 2 ? stderr : stdout,
			"usage: sbx connect ID\n\n"
			"Open a session on the sandbox and hold it until interrupted (or until\n"
			"sbx close ID). A sandbox with the session lifetime lives while a session\n"
			"is open, plus its grace period; this brings one back after its first\n"
			"holder went away.\n");
		return argc != 2 ? 2 : 0;
	}
	if (sandbox_load(argv[1], &sb, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return cli_hold_session(&sb, false, -1);
}

int cli_close(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;
	int n;

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc != 2 ? stderr : stdout,
			"usage: sbx close ID\n\n"
			"End the sessions this host holds on the sandbox (sbx create, sbx\n"
			"connect). A sandbox with a duration lifetime keeps running; one with\n"
			"the session lifetime powers off after its grace period unless a session\n"
			"is opened again.\n");
		return argc != 2 ? 2 : 0;
	}
	if (sandbox_load(argv[1], &sb, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	n = sandbox_close_sessions(&sb);
	fprintf(stderr, "sbx: closed %d session%s on %s\n", n, n == 1 ? "" : "s", sb.id);
	return 0;
}

static void print_lifetime(const char *id, const struct lifetime *l)
{
	uint64_t s = l->left_ns / NSEC_PER_SEC;

	if (l->kind == LIFE_DURATION)
		printf("%s powers off in %llum%02llus\n", id, (unsigned long long)(s / 60),
		       (unsigned long long)(s % 60));
	else
		printf("%s %s\n", id, l->kind == LIFE_SESSION ? "lives as long as its session" :
								 "has no time limit");
}

/* After a change of the lifetime, the metadata (for sbx ls) follows. */
static void record_end(struct sandbox *sb, const struct lifetime *l)
{
	struct sbx_error err;
	uint64_t now = (uint64_t)time(NULL);

	if (l->kind != LIFE_DURATION)
		return;
	sb->lifetime_s = now - sb->created + (l->left_ns + NSEC_PER_SEC / 2) / NSEC_PER_SEC;
	if (sandbox_save(sb, &err) < 0)
		cli_error("%s", err.msg);
}

int cli_extend(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;
	struct lifetime l;
	uint64_t s;

	if (argc != 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc != 3 ? stderr : stdout,
			"usage: sbx extend ID DURATION\n\n"
			"Add DURATION (90s, 5m, 1h; at most 1h at a time) to the lifetime of a\n"
			"sandbox created with --lifetime DURATION; a sandbox lives at most 24h from\n"
			"now. Prints the new time left.\n");
		return argc != 3 ? 2 : 0;
	}
	if (str_to_duration(argv[2], 3600, &s) < 0 || s == 0) {
		cli_error("extend %s: expected a duration from 1s to 1h (90s, 5m, 1h)", argv[2]);
		return 2;
	}
	if (sandbox_load(argv[1], &sb, &err) < 0 || sbx_extend(sb.addr, s, &l, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	record_end(&sb, &l);
	print_lifetime(sb.id, &l);
	return 0;
}

int cli_clock(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "lifetime-left", required_argument, NULL, 'l' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct sbx_error err;
	struct sandbox sb;
	struct lifetime l;
	uint64_t left = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		if (opt == 'l' && str_to_duration(optarg, 24 * 3600, &left) == 0 && left) {
			continue;
		} else if (opt == 'h') {
			printf("usage: sbx clock ID [--lifetime-left DURATION]\n\n"
			       "Set the sandbox's wall clock to this host's (after a pause or a\n"
			       "restore from a snapshot), and optionally the lifetime it has left.\n"
			       "The lifetime counts time the sandbox runs (CLOCK_BOOTTIME in the\n"
			       "guest), so a paused sandbox does not age.\n");
			return 0;
		}
		cli_error("see sbx clock --help");
		return 2;
	}
	if (optind != argc - 1) {
		cli_error("clock takes one sandbox id");
		return 2;
	}
	if (sandbox_load(argv[optind], &sb, &err) < 0 ||
	    sbx_set_time(sb.addr, left * NSEC_PER_SEC, &l, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (left)
		record_end(&sb, &l);
	print_lifetime(sb.id, &l);
	return 0;
}
