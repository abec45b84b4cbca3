/* sbx ssh: log in to a sandbox with the system's OpenSSH client. sbx
 * authorizes a per-user client key in the sandbox, has the agent start
 * the guest's SSH server and report its host key over the sbx channel,
 * pins that key in a known_hosts file of the sandbox's own, and runs ssh
 * (or scp) with a ProxyCommand that reaches guest port 22 through a
 * forward: no network in the guest, no trust-on-first-use prompt, and a
 * changed host key is refused. See docs/protocol/net.md. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/cli_net.h"
#include "lib/util.h"

#define ARGS_MAX 512
#define USER_OPTS_MAX 64
#define KEY_FILE_MAX (SSH_KEY_LINE_MAX + 2)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx ssh [OPTIONS] ID [-- CMD [ARG...]]\n"
		"       sbx --connect ADDR ssh [OPTIONS] [-- CMD [ARG...]]\n"
		"       sbx ssh --scp [OPTIONS] ID SRC... DST   remote paths written :PATH\n"
		"       sbx ssh --expose ID\n"
		"       sbx ssh --add-key FILE | --remove-key FILE | --list-keys  ID\n"
		"\n"
		"Log in to the sandbox with OpenSSH's ssh, as its default user unless\n"
		"-u. sbx authorizes its own client key (made on first use under the sbx\n"
		"state directory), starts the sandbox's SSH server, and pins the host key\n"
		"the sandbox reports: a different key is refused. The connection goes\n"
		"over vsock (ProxyCommand: sbx expose --stdio ID 22).\n"
		"\n"
		"  -u, --user USER       log in as USER\n"
		"  -t                    force a terminal (ssh -t)\n"
		"  -o OPTION             pass an option to ssh or scp (repeatable)\n"
		"      --scp             run scp instead: sbx ssh --scp ID file :/tmp/\n"
		"      --expose          expose the SSH port on the host (in the background,\n"
		"                        until the sandbox ends) and print how to log in\n"
		"      --print           print the ssh command instead of running it\n"
		"      --add-key FILE    authorize a public key (- reads stdin)\n"
		"      --remove-key FILE take an authorized key away\n"
		"      --list-keys       list the authorized keys\n"
		"\n"
		"Exit status: ssh's (the command's own, 255 when ssh failed), 125 when\n"
		"sbx failed before running ssh.\n");
}

static _Noreturn void oom(void)
{
	cli_error("out of memory");
	exit(CLI_FAIL);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;

	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

/* s in single quotes for sh, with every ' written '\''. */
static char *shell_quote(const char *s)
{
	size_t n = 3;
	char *q, *p;

	for (const char *c = s; *c; c++)
		n += *c == '\'' ? 4 : 1;
	q = p = malloc(n);
	if (!q)
		oom();
	*p++ = '\'';
	for (const char *c = s; *c; c++) {
		if (*c == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *c;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* ssh expands %-tokens in ProxyCommand: a literal % is %%. */
static char *percent_escape(const char *s)
{
	size_t n = strlen(s) + 1;
	char *q, *p;

	for (const char *c = s; *c; c++)
		n += *c == '%';
	q = p = malloc(n);
	if (!q)
		oom();
	for (const char *c = s; *c; c++) {
		*p++ = *c;
		if (*c == '%')
			*p++ = '%';
	}
	*p = '\0';
	return q;
}

static bool plain_word(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "-_./=:,@+%", *s))
			return false;
	return true;
}

static void print_command(FILE *f, char *const *argv)
{
	for (int i = 0; argv[i]; i++) {
		char *q = plain_word(argv[i]) ? NULL : shell_quote(argv[i]);

		fprintf(f, "%s%s", i ? " " : "", q ? q : argv[i]);
		free(q);
	}
	fputc('\n', f);
}

/* An argument vector and the strings it owns. */
struct args {
	char *v[ARGS_MAX + 1];
	int n;
	char *owned[ARGS_MAX];
	int nowned;
};

static void add(struct args *a, char *s)
{
	if (a->n >= ARGS_MAX) {
		cli_error("too many arguments");
		exit(2);
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* Adds s, which a now owns. */
static void add_own(struct args *a, char *s)
{
	add(a, s);
	a->owned[a->nowned++] = s;
}

static void args_free(struct args *a)
{
	for (int i = 0; i < a->nowned; i++)
		free(a->owned[i]);
	a->n = a->nowned = 0;
}

/* Everything sbx knows about reaching this sandbox with ssh. */
struct login {
	struct cli_net_target t;
	struct ssh_server_info srv;
	char key[PATH_MAX];
	char known_hosts[PATH_MAX + 32];
	char alias[96];
	const char *user;
};

/* The options that make ssh trust exactly the reported host key and use
 * exactly sbx's client key, ignoring the user's own configuration. */
static void add_trust(struct args *a, const struct login *l)
{
	add(a, "-F");
	add(a, "none");
	add(a, "-i");
	add(a, (char *)l->key);
	add(a, "-o");
	add(a, "IdentitiesOnly=yes");
	add(a, "-o");
	add(a, "IdentityAgent=none");
	add(a, "-o");
	add_own(a, fmt("UserKnownHostsFile=%s", l->known_hosts));
	add(a, "-o");
	add(a, "GlobalKnownHostsFile=/dev/null");
	add(a, "-o");
	add(a, "StrictHostKeyChecking=yes");
	add(a, "-o");
	add_own(a, fmt("HostKeyAlias=%s", l->alias));
	add(a, "-o");
	add(a, "HostKeyAlgorithms=ssh-ed25519");
	add(a, "-o");
	add(a, "CheckHostIP=no");
	add(a, "-o");
	add(a, "UpdateHostKeys=no");
	add(a, "-o");
	add(a, "PasswordAuthentication=no");
	add(a, "-o");
	add(a, "KbdInteractiveAuthentication=no");
	add(a, "-o");
	add(a, "LogLevel=ERROR");
}

static void add_proxy(struct args *a, const struct login *l)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *cmd, *qself, *qaddr, *qid = NULL, *esc;

	if (n <= 0) {
		cli_error("cannot find the sbx executable: %s", strerror(errno));
		exit(CLI_FAIL);
	}
	self[n] = '\0';
	qself = shell_quote(self);
	qaddr = shell_quote(l->t.addr);
	/* By id for a sandbox: that sbx finds the sandbox's token itself
	 * (the state directory's location comes in the environment); for an
	 * agent at --connect, $SBX_TOKEN is passed down too. */
	if (l->t.is_sandbox)
		cmd = fmt("%s expose --stdio %s %u", qself, qid = shell_quote(l->t.sb.id),
			  (unsigned)l->srv.port);
	else
		cmd = fmt("%s --connect %s expose --stdio %u", qself, qaddr, (unsigned)l->srv.port);
	esc = percent_escape(cmd);
	add(a, "-o");
	add_own(a, fmt("ProxyCommand=%s", esc));
	free(qself);
	free(qaddr);
	free(qid);
	free(cmd);
	free(esc);
}

/* Authorizes sbx's key, starts the server, pins its key. */
static int prepare(struct login *l, const char *user)
{
	char pub[512], dir[PATH_MAX];
	struct sbx_error err;
	uint8_t h[crypto_hash_sha256_BYTES];
	char hex[17];

	if (sandbox_ssh_dir(dir, sizeof(dir), &err) < 0 ||
	    sbx_ssh_client_key(dir, l->key, sizeof(l->key), pub, sizeof(pub), &err) < 0 ||
	    sbx_ssh_key_add(l->t.addr, user, pub, &err) < 0 ||
	    sbx_ssh_start(l->t.addr, &l->srv, &err) < 0) {
		cli_error("%s", err.msg);
		return -err.code;
	}
	l->user = user ? user : l->srv.user;
	if (l->t.is_sandbox) {
		snprintf(l->known_hosts, sizeof(l->known_hosts), "%s/known_hosts", l->t.sb.dir);
		snprintf(l->alias, sizeof(l->alias), "sbx-%s", l->t.sb.id);
	} else {
		/* An agent at --connect: one file per address. */
		crypto_hash_sha256(h, (const uint8_t *)l->t.addr, strlen(l->t.addr));
		sodium_bin2hex(hex, sizeof(hex), h, 8);
		snprintf(l->known_hosts, sizeof(l->known_hosts), "%s/.ssh/known_hosts-%s",
			 sandbox_root(), hex);
		snprintf(l->alias, sizeof(l->alias), "sbx-agent-%s", hex);
	}
	if (sbx_ssh_known_hosts(l->known_hosts, l->alias, l->srv.host_key, &err) < 0) {
		cli_error("%s", err.msg);
		return -err.code;
	}
	return 0;
}

static void announce_ssh(void *arg, const struct sbx_expose *x)
{
	const struct login *l = arg;
	struct args a = { .n = 0 };

	add(&a, "ssh");
	add(&a, "-i");
	add(&a, (char *)l->key);
	add(&a, "-o");
	add(&a, "IdentitiesOnly=yes");
	add(&a, "-o");
	add_own(&a, fmt("UserKnownHostsFile=%s", l->known_hosts));
	add(&a, "-o");
	add(&a, "StrictHostKeyChecking=yes");
	add(&a, "-o");
	add_own(&a, fmt("HostKeyAlias=%s", l->alias));
	add(&a, "-p");
	add_own(&a, fmt("%u", sbx_expose_port(x)));
	add_own(&a, fmt("%s@%s", l->user, sbx_expose_host(x)));
	printf("hostname: %s\nport:     %u\nusername: %s\nhost key: %s\ncommand:  ",
	       sbx_expose_host(x), sbx_expose_port(x), l->user, l->srv.fingerprint);
	print_command(stdout, a.v);
	fflush(stdout);
	args_free(&a);
}

static int read_key_file(const char *path, char *out, size_t n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	size_t len;

	if (!f) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	len = fread(out, 1, n - 1, f);
	if (f != stdin)
		fclose(f);
	out[len] = '\0';
	return 0;
}

static void print_line(void *arg, const char *line)
{
	puts(line);
}

enum key_action { KEY_NONE, KEY_ADD, KEY_REMOVE, KEY_LIST };

static int key_action(const struct login *l, enum key_action act, const char *file,
		      const char *user)
{
	char key[KEY_FILE_MAX + 1];
	struct sbx_error err;
	int r;

	if (act != KEY_LIST && read_key_file(file, key, sizeof(key)) < 0)
		return CLI_FAIL;
	if (act == KEY_ADD)
		r = sbx_ssh_key_add(l->t.addr, user, key, &err);
	else if (act == KEY_REMOVE)
		r = sbx_ssh_key_remove(l->t.addr, user, key, &err);
	else
		r = sbx_ssh_key_list(l->t.addr, user, print_line, NULL, &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	return 0;
}

int cli_ssh(struct cli *cli, int argc, char **argv)
{
	enum { O_SCP = 256, O_EXPOSE, O_PRINT, O_ADD, O_REMOVE, O_LIST };
	static const struct option opts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "scp", no_argument, NULL, O_SCP },
		{ "expose", no_argument, NULL, O_EXPOSE },
		{ "print", no_argument, NULL, O_PRINT },
		{ "add-key", required_argument, NULL, O_ADD },
		{ "remove-key", required_argument, NULL, O_REMOVE },
		{ "list-keys", no_argument, NULL, O_LIST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct login l;
	const char *user = NULL, *id = NULL, *key_file = NULL;
	char *user_opts[USER_OPTS_MAX];
	int nuser_opts = 0, opt, i;
	bool tty = false, scp = false, expose = false, print = false;
	enum key_action act = KEY_NONE;
	struct args a = { .n = 0 };

	/* 0, not 1: a full restart of getopt, so that options may follow
	 * the id and the port (sbx's own options were parsed in order). */
	optind = 0;
	while ((opt = getopt_long(argc, argv, "u:to:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			user = optarg;
			break;
		case 't':
			tty = true;
			break;
		case 'o':
			if (nuser_opts == USER_OPTS_MAX) {
				cli_error("too many -o options");
				return 2;
			}
			user_opts[nuser_opts++] = optarg;
			break;
		case O_SCP:
			scp = true;
			break;
		case O_EXPOSE:
			expose = true;
			break;
		case O_PRINT:
			print = true;
			break;
		case O_ADD:
		case O_REMOVE:
			act = opt == O_ADD ? KEY_ADD : KEY_REMOVE;
			key_file = optarg;
			break;
		case O_LIST:
			act = KEY_LIST;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	i = optind;
	if (!cli->connect) {
		if (i >= argc) {
			cli_error("no sandbox given (see sbx ssh --help)");
			return 2;
		}
		id = argv[i++];
	}
	if ((act != KEY_NONE || expose) && i < argc) {
		cli_error("unexpected argument '%s'", argv[i]);
		return 2;
	}
	if (scp && argc - i < 2) {
		cli_error("--scp takes sources and a destination; name remote paths :PATH");
		return 2;
	}
	if (cli_net_target(cli, id, &l.t) < 0)
		return CLI_FAIL;
	if (act != KEY_NONE)
		return key_action(&l, act, key_file, user);
	if (prepare(&l, user) < 0)
		return CLI_FAIL;
	if (expose) {
		struct cli_expose_req req = {
			.t = &l.t,
			.guest_port = l.srv.port,
			.detach = l.t.is_sandbox,
			.kind = "ssh",
			.announce = announce_ssh,
			.arg = &l,
		};

		return cli_expose_run(&req);
	}

	add(&a, scp ? "scp" : "ssh");
	add_trust(&a, &l);
	add_proxy(&a, &l);
	for (int k = 0; k < nuser_opts; k++) {
		add(&a, "-o");
		add(&a, user_opts[k]);
	}
	if (scp) {
		add(&a, "-o");
		add_own(&a, fmt("User=%s", l.user));
		for (; i < argc; i++)
			if (argv[i][0] == ':')
				add_own(&a, fmt("%s%s", l.alias, argv[i]));
			else
				add(&a, argv[i]);
	} else {
		add(&a, "-l");
		add(&a, (char *)l.user);
		if (tty)
			add(&a, "-t");
		add(&a, l.alias);
		if (i < argc)
			add(&a, "--");
		for (; i < argc; i++)
			add(&a, argv[i]);
	}
	if (print) {
		print_command(stdout, a.v);
		args_free(&a);
		return 0;
	}
	fflush(NULL);
	execvp(a.v[0], a.v);
	cli_error("cannot run %s: %s (install OpenSSH's client)", a.v[0], strerror(errno));
	return CLI_FAIL;
}
