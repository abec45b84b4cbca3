/* sbx exec: run a command in a sandbox with stdio attached. Signals that
 * sbx receives are forwarded to the command's process group; with -t the
 * local terminal is put in raw mode and its size follows SIGWINCH. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"

#define ENV_MAX CLI_ENV_MAX
#define GIVE_UP_AFTER 3 /* interrupts before sbx stops waiting */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx exec [OPTIONS] ID [--] CMD [ARG...]\n"
		"       sbx --connect ADDR exec [OPTIONS] [--] CMD [ARG...]\n"
		"\n"
		"Run CMD in the sandbox with its stdout and stderr on sbx's.\n"
		"\n"
		"  -i, --interactive  forward sbx's stdin (otherwise the command's\n"
		"                     stdin is /dev/null)\n"
		"  -t, --tty          run on a terminal: raw mode here, window size\n"
		"                     changes forwarded\n"
		"  -w, --cwd DIR      working directory (relative: to the sandbox's)\n"
		"  -e, --env K=V      set an environment variable (K alone: take its\n"
		"                     value from here); repeatable\n"
		"      --clear-env    start from an empty environment\n"
		"  -u, --user U       user name or uid (default: the sandbox's user)\n"
		"  -d, --detach       start the command, print its pid and return; it keeps\n"
		"                     running, its output is kept (up to 1 MiB per stream,\n"
		"                     then it waits) for `sbx attach ID PID`; with -i its\n"
		"                     stdin stays open for `sbx attach -i`\n"
		"      --direct-stdout\n"
		"                     the command writes its stdout straight into a\n"
		"                     connection of its own (no pipe, no relay in the\n"
		"                     agent: faster for large outputs); its stdout and\n"
		"                     stderr are then not ordered with each other,\n"
		"                     output written after its exit (by background\n"
		"                     processes) is lost, and so is the rest of it if\n"
		"                     the agent's server restarts; not with -t or\n"
		"                     --detach\n"
		"\n"
		"SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the command's\n"
		"process group; after %d interrupts sbx stops waiting and exits. Before\n"
		"the command has started (a busy agent), any of them ends sbx at once\n"
		"with 128+N. A\n"
		"command started without --detach gets SIGHUP, then SIGKILL, when sbx\n"
		"goes away before it ends.\n"
		"Exit status: the command's, 128+N if it died of signal N, 126/127 if\n"
		"it could not be started, 125 if sbx failed.\n", GIVE_UP_AFTER);
}

/* --env NAME entries built here (the others point into argv). */
static char *owned_env[ENV_MAX];
static size_t nowned;

static void free_owned_env(void)
{
	while (nowned)
		free(owned_env[--nowned]);
}

struct exec_state {
	int sfd;
	bool tty;
	int tty_fd;       /* the local terminal, or -1 */
	int interrupts;
	bool detach_on_signal;
	bool started;     /* the agent said STARTED */
};

static struct termios saved_termios;
static int raw_fd = -1;

static void restore_terminal(void)
{
	if (raw_fd >= 0) {
		tcsetattr(raw_fd, TCSADRAIN, &saved_termios);
		raw_fd = -1;
	}
}

static void make_raw(int fd)
{
	struct termios t;

	if (tcgetattr(fd, &saved_termios) < 0)
		return;
	t = saved_termios;
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSADRAIN, &t) == 0) {
		raw_fd = fd;
		atexit(restore_terminal);
	}
}

/* sbx attach on a terminal: bytes come as they are typed (no line
 * editing: the detach keys work anywhere in a line) and Ctrl-Q is no
 * longer the terminal's flow control, but Ctrl-C and Ctrl-\ still raise
 * SIGINT and SIGQUIT here (detach, or forwarded with --sig-proxy): the
 * command has no terminal of its own to give them a meaning. Ctrl-Z is an
 * ordinary key, so that sbx is never stopped with the terminal changed;
 * Ctrl-D ends the input (sbx_io.eof_key). What is typed is echoed only
 * when it goes to the command (-i). */
static void make_keys_mode(int fd, bool echo)
{
	struct termios t;

	if (tcgetattr(fd, &saved_termios) < 0)
		return;
	t = saved_termios;
	t.c_lflag &= ~(tcflag_t)(ICANON | IEXTEN);
	if (!echo)
		t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF);
	t.c_cc[VSUSP] = _POSIX_VDISABLE;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSADRAIN, &t) == 0) {
		raw_fd = fd;
		atexit(restore_terminal);
	}
}

static void window_size(int fd, unsigned short *rows, unsigned short *cols)
{
	struct winsize ws;

	if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static int on_signal(void *arg, struct sbx_conn *c, struct sbx_error *err)
{
	struct exec_state *st = arg;
	struct signalfd_siginfo si;
	int r = 0;

	while (r == 0 && read(st->sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGWINCH) {
			unsigned short rows = 0, cols = 0;

			window_size(st->tty_fd, &rows, &cols);
			if (st->tty && rows)
				r = sbx_exec_resize(c, rows, cols, err);
			continue;
		}
		if (si.ssi_signo == SIGINT && ++st->interrupts >= GIVE_UP_AFTER) {
			restore_terminal();
			cli_error("interrupted %d times: no longer waiting for the command",
				  st->interrupts);
			exit(128 + SIGINT);
		}
		if (st->detach_on_signal)
			return SBX_IO_DETACH; /* sbx attach without --sig-proxy */
		/* Not started yet (a slow or starved agent): there is no
		 * command to forward it to, and waiting for one would make
		 * SIGTERM (timeout(1)) and Ctrl-C do nothing. Leave: the
		 * agent hangs up a command whose client went away. */
		if (!st->started) {
			restore_terminal();
			cli_error("%s before the command started: not waiting for it",
				  strsignal((int)si.ssi_signo));
			exit(128 + (int)si.ssi_signo);
		}
		r = sbx_exec_signal(c, (int)si.ssi_signo, err);
	}
	return r;
}

static void on_started(void *arg, pid_t pid)
{
	((struct exec_state *)arg)->started = true;
}

/* Splits "ID [--] CMD..." / "[--] CMD...": see usage. */
static int split_target(const struct cli *cli, int argc, char **argv, const char **id,
			char ***cmd)
{
	bool dashdash = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	int i = optind;

	*id = NULL;
	if (!cli->connect && !dashdash && i < argc) {
		*id = argv[i++];
		if (i < argc && strcmp(argv[i], "--") == 0)
			i++;
	}
	if (i >= argc) {
		cli_error("no command given (see sbx exec --help)");
		return -EINVAL;
	}
	*cmd = &argv[i];
	return 0;
}

int cli_exec_attached(const char *addr, struct sbx_exec_opts *o, bool sig_proxy)
{
	struct exec_state st = { .sfd = -1, .tty_fd = -1 };
	struct sbx_io io = { .in_fd = -1, .out_fd = 1, .err_fd = 2 };

	/* Attached to a detached command, leaving must not end it: Ctrl-P
	 * Ctrl-Q on stdin, or a signal unless --sig-proxy forwards them. */
	struct sbx_exit x;
	struct sbx_error err;
	struct sbx_conn *c;
	sigset_t mask;
	bool keys_tty = false;
	int r;

	if (o->attach_pid) {
		io.detach_keys = "\x10\x11";
		st.detach_on_signal = !sig_proxy;
		/* On a terminal the keys are read also without -i. */
		keys_tty = isatty(0);
		if (keys_tty && !o->stdin_pipe) {
			io.in_fd = 0;
			io.keys_only = true;
		}
	}

	if (o->stdin_pipe)
		io.in_fd = 0;
	if (o->tty) {
		st.tty = true;
		st.tty_fd = isatty(0) ? 0 : isatty(1) ? 1 : -1;
		window_size(st.tty_fd, &o->rows, &o->cols);
	}
	/* Signals arrive through a signalfd polled with the connection. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	st.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	io.extra_fd = st.sfd;
	io.on_extra = on_signal;
	io.on_started = on_started;
	io.arg = &st;

	if (sbx_connect(addr, &c, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (o->tty && o->stdin_pipe && isatty(0))
		make_raw(0);
	else if (keys_tty)
		make_keys_mode(0, o->stdin_pipe);
	/* Ctrl-D still ends what -i forwards, as in line mode. */
	if (keys_tty && o->stdin_pipe && raw_fd >= 0)
		io.eof_key = (char)saved_termios.c_cc[VEOF];
	if (o->attach_pid)
		r = sbx_attach_io(c, o->attach_pid, o->stdin_pipe, &io, &x, &err);
	else
		r = sbx_exec_io(c, o, &io, &x, &err);
	restore_terminal();
	sbx_close(c);
	close(st.sfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	if (r < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (x.detached) {
		fprintf(stderr, "\nsbx: detached from %d, which runs on (sbx attach %d resumes)\n",
			(int)o->attach_pid, (int)o->attach_pid);
		return 0;
	}
	if (x.how == EXIT_NOT_STARTED)
		cli_error("%s", x.msg);
	else if (x.oom)
		cli_error("the command was killed by the out-of-memory killer (oom): it used all the "
			  "memory the sandbox gives commands");
	return sbx_exit_status(&x);
}

/* Parses the options shared by exec and run into o; returns 0, or the
 * exit status to return (2: usage, -1: --help done). */
int cli_exec_option(int opt, struct sbx_exec_opts *o, const char **env, size_t *nenv)
{
	switch (opt) {
	case 'i':
		o->stdin_pipe = true;
		return 0;
	case 't':
		o->tty = true;
		return 0;
	case 'w':
		o->cwd = optarg;
		return 0;
	case 'e':
		if (*nenv == ENV_MAX) {
			cli_error("too many --env options (at most %d)", ENV_MAX);
			return 2;
		}
		if (!strchr(optarg, '=')) {
			const char *v = getenv(optarg);
			char *kv;

			if (!v)
				return 0; /* not set here: nothing to pass */
			if (asprintf(&kv, "%s=%s", optarg, v) < 0)
				return CLI_FAIL;
			owned_env[nowned++] = kv;
			env[(*nenv)++] = kv;
		} else if (optarg[0] == '=') {
			cli_error("--env %s: the variable name is empty", optarg);
			return 2;
		} else {
			env[(*nenv)++] = optarg;
		}
		return 0;
	case 'C':
		o->clear_env = true;
		return 0;
	case 'u':
		o->user = optarg;
		return 0;
	case 'D':
		o->direct_stdout = true;
		return 0;
	}
	return 2;
}

int cli_exec(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "cwd", required_argument, NULL, 'w' },
		{ "env", required_argument, NULL, 'e' },
		{ "clear-env", no_argument, NULL, 'C' },
		{ "user", required_argument, NULL, 'u' },
		{ "detach", no_argument, NULL, 'd' },
		{ "direct-stdout", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sbx_exec_opts o = { 0 };
	struct sbx_error err;
	const char *env[ENV_MAX + 1] = { 0 };
	const char *id;
	char addr[PATH_MAX + 64], **cmd;
	size_t nenv = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "+itw:e:u:dh", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt == 'd') {
			o.detach = true;
			continue;
		}
		if ((r = cli_exec_option(opt, &o, env, &nenv)) != 0) {
			if (r == 2)
				usage(stderr);
			return r;
		}
	}
	if (split_target(cli, argc, argv, &id, &cmd) < 0)
		return 2;
	if (cli_target(cli, id, addr, sizeof(addr)) < 0)
		return CLI_FAIL;
	o.argv = (const char *const *)cmd;
	o.env = env;
	if (o.direct_stdout && (o.tty || o.detach)) {
		cli_error("--direct-stdout does not go with %s", o.tty ? "--tty" : "--detach");
		return 2;
	}
	if (o.detach) {
		pid_t pid;

		if (o.tty) {
			cli_error("--detach runs without a terminal");
			return 2;
		}
		r = sbx_exec_detached(addr, &o, &pid, &err);
		free_owned_env();
		if (r < 0) {
			cli_error("%s", err.msg);
			return err.code == ENOENT ? 127 : err.code == EACCES ? 126 : CLI_FAIL;
		}
		printf("%d\n", (int)pid);
		return 0;
	}
	r = cli_exec_attached(addr, &o, true);
	free_owned_env();
	return r;
}
