/* sbx create, run, ls, kill, logs: sandboxes as QEMU microVMs on this
 * host (launcher/sandbox.c does the work). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/cli.h"
#include "gateway/gateway.h"
#include "gateway/allow.h"
#include "gateway/secrets.h"
#include "launcher/image.h"
#include "launcher/pause.h"
#include "launcher/sandbox.h"
#include "lib/util.h"

#define LIFETIME_MAX_S (24 * 3600)

static const char create_opts_help[] =
	"  -m, --memory SIZE     memory: 768 to 4096 MiB (1024, 768MiB, 2GiB);\n"
	"                        default 1024\n"
	"  -l, --lifetime L      \"session\" (the default): the sandbox lives while a\n"
	"                        session is open (sbx create holds one) and its\n"
	"                        grace period after; or a duration (90s, 5m, 2h;\n"
	"                        at most 24h)\n"
	"      --session-grace D how long a session sandbox waits for a session to\n"
	"                        come back (default 30s, at most 1h)\n"
	"      --stop-grace D    at power-off, time between SIGTERM and SIGKILL\n"
	"                        (default 3s)\n"
	"  -e, --env K=V         environment of every command in the sandbox\n"
	"  -L, --label K=V       a label (at most 64; key 1-63 of [A-Za-z0-9_.-],\n"
	"                        value up to 255 bytes)\n"
	"      --image NAME      what the sandbox boots: \"debian\" (make image; the\n"
	"                        default, or $SBX_IMAGE), \"minimal\" (busybox in the\n"
	"                        initramfs, no disk), or an image of `sbx image ls`\n"
	"      --disk SIZE       the writable disk of an image other than minimal\n"
	"                        (default 10G, sparse; 64M to 1T)\n"
	"      --volume NAME:DIR mount volume NAME (sbx volume create) at DIR\n"
	"                        (repeatable, at most 8)\n"
	"      --rootfs DIR      boot DIR, a root file system on this host, shared\n"
	"                        with the guest over virtio-fs (not copied: the\n"
	"                        sandbox's writes land in DIR), instead of an image\n"
	"  -n, --name ID         the sandbox id (default: sbx-XXXXXXXX)\n"
	"      --cpus N          virtual CPUs (default 1)\n"
	"      --kernel FILE     guest kernel (default: vmlinuz next to sbx)\n"
	"      --initrd FILE     guest initramfs (default: initramfs.cpio.lz4 next to sbx)\n"
	"      --boot-timeout S  give up when the agent is not ready after S seconds\n"
	"                        (default 60)\n"
	"      --allow-net P     let the sandbox reach P over TCP (repeatable): HOST,\n"
	"                        HOST:PORT, *.DOMAIN[:PORT] (subdomains, not DOMAIN\n"
	"                        itself), IPv4[:PORT], [IPv6][:PORT]; without it the\n"
	"                        sandbox has no network at all\n"
	"      --resolve N=ADDR  for tests: the egress gateway resolves N to ADDR\n"
	"      --pausable        boot it so that sbx pause can save it to disk (a -M pc\n"
	"                        machine instead of microvm; a duration lifetime, no\n"
	"                        --allow-net)\n"
	"      --from NAME       restore it from template NAME (sbx template) instead\n"
	"                        of booting; its image, memory and CPUs are the\n"
	"                        template's\n"
	"      --cold            boot, even when a template of the same image, memory\n"
	"                        and CPUs exists (without it, sbx create starts from\n"
	"                        such a template when its options allow)\n"
	"      --secret NAME=HOSTS:VALUE  a secret the sandbox never sees (repeatable):\n"
	"                        NAME holds a stand-in, which the egress gateway\n"
	"                        replaces with VALUE in HTTPS requests to HOSTS (names\n"
	"                        or *.DOMAIN, comma-separated; port 443; added to the\n"
	"                        allow list). VALUE as @FILE reads it from FILE, as -\n"
	"                        from standard input (a value on the command line is\n"
	"                        visible to every user of this host)\n";

struct create_args {
	struct sandbox_opts o;
	const char *env[CLI_ENV_MAX + 1];
	const char *labels[SANDBOX_LABELS_MAX + 2];
	size_t nenv, nlabels;
	const char *allow[ALLOW_RULES_MAX + 2];
	const char *resolve[GATEWAY_RESOLVE_MAX + 2];
	size_t nallow, nresolve;
	const char *volumes[SANDBOX_VOLUMES_MAX + 2];
	size_t nvolumes;
	char *secrets[SECRETS_MAX + 2];
	size_t nsecrets;
	bool stdin_taken;
};

enum { OPT_CPUS = 1000, OPT_KERNEL, OPT_INITRD, OPT_BOOT_TIMEOUT, OPT_SESSION_GRACE,
       OPT_STOP_GRACE, OPT_ALLOW_NET, OPT_RESOLVE, OPT_DISK, OPT_IMAGE, OPT_VOLUME,
       OPT_ROOTFS, OPT_PAUSABLE, OPT_SECRET, OPT_FROM, OPT_COLD };

#define CREATE_LONGOPTS                                                 \
	{ "memory", required_argument, NULL, 'm' },                     \
	{ "lifetime", required_argument, NULL, 'l' },                   \
	{ "env", required_argument, NULL, 'e' },                        \
	{ "label", required_argument, NULL, 'L' },                      \
	{ "name", required_argument, NULL, 'n' },                       \
	{ "image", required_argument, NULL, OPT_IMAGE },                \
	{ "disk", required_argument, NULL, OPT_DISK },                  \
	{ "volume", required_argument, NULL, OPT_VOLUME },              \
	{ "rootfs", required_argument, NULL, OPT_ROOTFS },              \
	{ "secret", required_argument, NULL, OPT_SECRET },              \
	{ "cpus", required_argument, NULL, OPT_CPUS },                  \
	{ "kernel", required_argument, NULL, OPT_KERNEL },              \
	{ "initrd", required_argument, NULL, OPT_INITRD },              \
	{ "boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT },  \
	{ "session-grace", required_argument, NULL, OPT_SESSION_GRACE }, \
	{ "stop-grace", required_argument, NULL, OPT_STOP_GRACE },      \
	{ "allow-net", required_argument, NULL, OPT_ALLOW_NET },        \
	{ "resolve", required_argument, NULL, OPT_RESOLVE },            \
	{ "pausable", no_argument, NULL, OPT_PAUSABLE },                \
	{ "from", required_argument, NULL, OPT_FROM },                  \
	{ "cold", no_argument, NULL, OPT_COLD }

static int create_args_init(struct create_args *a)
{
	memset(a, 0, sizeof(*a));
	a->o.memory_mib = SANDBOX_MEM_DEFAULT;
	a->o.session = true;
	a->o.env = a->env;
	a->o.labels = a->labels;
	a->o.allow_net = a->allow;
	a->o.resolve = a->resolve;
	a->o.volumes = a->volumes;
	a->o.secrets = (const char *const *)a->secrets;
	return 0;
}

/* --secret NAME=HOSTS:VALUE with VALUE itself, @FILE or - (standard
 * input, once): the spec with the value read, or NULL after saying why.
 * One line break at the end of a file or of the input is dropped. */
static char *secret_spec(const char *arg, bool *stdin_taken)
{
	const char *colon = strchr(arg, ':'), *v = colon ? colon + 1 : NULL;
	char *out;
	size_t len = 0, prefix;
	int fd;

	if (!v || (v[0] != '@' && strcmp(v, "-")))
		return strdup(arg);
	prefix = (size_t)(v - arg);
	out = calloc(1, prefix + SECRET_VALUE_MAX + 3);
	if (!out) {
		cli_error("out of memory");
		return NULL;
	}
	memcpy(out, arg, prefix);
	if (!strcmp(v, "-")) {
		if (*stdin_taken) {
			cli_error("--secret %.*s: only one secret can be read from standard input",
				  (int)(strchr(arg, '=') ? strchr(arg, '=') - arg : 0), arg);
			free(out);
			return NULL;
		}
		*stdin_taken = true;
		fd = 0;
	} else if ((fd = open(v + 1, O_RDONLY | O_CLOEXEC)) < 0) {
		cli_error("--secret: cannot read %s: %s", v + 1, strerror(errno));
		free(out);
		return NULL;
	}
	for (ssize_t n; len < SECRET_VALUE_MAX + 2; len += (size_t)n) {
		n = read(fd, out + prefix + len, SECRET_VALUE_MAX + 2 - len);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0) {
			cli_error("--secret: cannot read %s: %s", fd ? v + 1 : "standard input",
				  strerror(errno));
			len = 0;
			break;
		}
		if (n == 0)
			break;
	}
	if (fd > 0)
		close(fd);
	if (len && out[prefix + len - 1] == '\n')
		out[prefix + --len] = '\0';
	if (len && out[prefix + len - 1] == '\r')
		out[prefix + --len] = '\0';
	if (len == 0 || len > SECRET_VALUE_MAX) {
		if (len)
			cli_error("--secret: %s holds more than %d bytes", fd ? v + 1 :
				  "standard input", SECRET_VALUE_MAX);
		else
			cli_error("--secret: %s is empty", fd ? v + 1 : "standard input");
		free(out);
		return NULL;
	}
	return out;
}

/* Returns 0 when opt was a create option, 1 when it was not, 2 on a bad
 * value (after saying why). */
static int create_option(int opt, struct create_args *a)
{
	struct sbx_error err;
	uint64_t v;

	switch (opt) {
	case 'm':
		if (sandbox_parse_memory(optarg, &a->o.memory_mib, &err) < 0) {
			cli_error("%s", err.msg);
			return 2;
		}
		return 0;
	case 'l':
		if (!strcmp(optarg, "session")) {
			a->o.session = true;
			return 0;
		}
		if (str_to_duration(optarg, LIFETIME_MAX_S, &v) < 0 || v == 0) {
			cli_error("--lifetime %s: expected \"session\" or a duration from 1s to 24h "
				  "(90s, 5m, 2h)", optarg);
			return 2;
		}
		a->o.session = false;
		a->o.lifetime_s = v;
		return 0;
	case OPT_SESSION_GRACE:
	case OPT_STOP_GRACE:
		if (str_to_duration(optarg, 3600, &v) < 0 || v == 0) {
			cli_error("--%s %s: expected a duration from 1s to 1h",
				  opt == OPT_STOP_GRACE ? "stop-grace" : "session-grace", optarg);
			return 2;
		}
		*(opt == OPT_STOP_GRACE ? &a->o.stop_grace_s : &a->o.session_grace_s) = v;
		return 0;
	case 'e':
		if (a->nenv == CLI_ENV_MAX) {
			cli_error("too many --env options (at most %d)", CLI_ENV_MAX);
			return 2;
		}
		a->env[a->nenv++] = optarg;
		return 0;
	case 'L':
		if (a->nlabels > SANDBOX_LABELS_MAX) {
			cli_error("too many labels (at most %d)", SANDBOX_LABELS_MAX);
			return 2;
		}
		a->labels[a->nlabels++] = optarg;
		return 0;
	case 'n':
		a->o.name = optarg;
		return 0;
	case OPT_IMAGE:
		a->o.image = optarg;
		return 0;
	case OPT_ROOTFS:
		a->o.rootfs = optarg;
		return 0;
	case OPT_VOLUME:
		if (a->nvolumes > SANDBOX_VOLUMES_MAX) {
			cli_error("too many --volume options (at most %d)", SANDBOX_VOLUMES_MAX);
			return 2;
		}
		a->volumes[a->nvolumes++] = optarg;
		return 0;
	case OPT_DISK:
		if (image_parse_size(optarg, &a->o.disk_bytes, &err) < 0) {
			cli_error("--disk %s: %s", optarg, err.msg);
			return 2;
		}
		return 0;
	case OPT_ALLOW_NET:
		if (a->nallow > ALLOW_RULES_MAX) {
			cli_error("too many --allow-net patterns (at most %d)", ALLOW_RULES_MAX);
			return 2;
		}
		{
			/* A bad pattern is a usage error, like any bad option. */
			struct allow_rule rule;
			char why[512];

			if (allow_parse(optarg, &rule, why, sizeof(why)) < 0) {
				cli_error("%s", why);
				return 2;
			}
		}
		a->allow[a->nallow++] = optarg;
		return 0;
	case OPT_SECRET:
		if (a->nsecrets == SECRETS_MAX) {
			cli_error("too many secrets (at most %d)", SECRETS_MAX);
			return 2;
		}
		if (!(a->secrets[a->nsecrets] = secret_spec(optarg, &a->stdin_taken)))
			return 2;
		a->nsecrets++;
		return 0;
	case OPT_RESOLVE:
		if (a->nresolve > GATEWAY_RESOLVE_MAX) {
			cli_error("too many --resolve entries (at most %d)", GATEWAY_RESOLVE_MAX);
			return 2;
		}
		a->resolve[a->nresolve++] = optarg;
		return 0;
	case OPT_CPUS:
		if (str_to_u64(optarg, 16, &v) < 0 || v == 0) {
			cli_error("--cpus %s: expected 1 to 16", optarg);
			return 2;
		}
		a->o.cpus = (unsigned)v;
		return 0;
	case OPT_KERNEL:
		a->o.kernel = optarg;
		return 0;
	case OPT_INITRD:
		a->o.initrd = optarg;
		return 0;
	case OPT_PAUSABLE:
		a->o.pausable = true;
		return 0;
	case OPT_FROM:
		a->o.from = optarg;
		return 0;
	case OPT_COLD:
		a->o.cold = true;
		return 0;
	case OPT_BOOT_TIMEOUT:
		if (str_to_u64(optarg, 3600, &v) < 0 || v == 0) {
			cli_error("--boot-timeout %s: expected 1 to 3600 seconds", optarg);
			return 2;
		}
		a->o.boot_timeout_s = (unsigned)v;
		return 0;
	}
	return 1;
}

/* Boots the sandbox; SIGINT/SIGTERM/SIGHUP during the boot abort it
 * cleanly rather than leave a VM behind. */
static int boot(struct create_args *a, struct sandbox *sb)
{
	struct sbx_error err;
	sigset_t mask, old;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	a->o.cancel_mask = &mask;
	r = sandbox_create(&a->o, sb, &err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	/* A session keeps this process alive: forget the values now. */
	for (size_t i = 0; i < a->nsecrets; i++) {
		explicit_bzero(a->secrets[i], strlen(a->secrets[i]));
		free(a->secrets[i]);
		a->secrets[i] = NULL;
	}
	a->nsecrets = 0;
	if (r < 0)
		cli_error("%s", err.msg);
	return r;
}

/* Holds the session of sb in a background process of its own (its own
 * session, nothing of ours open but the pipe that says it is held), as
 * `docker run -d` leaves a container running: returns once the session
 * is open, 0, or CLI_FAIL when the holder could not open it. */
static int hold_in_background(struct sandbox *sb)
{
	struct sbx_error err;
	int p[2], null;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0) {
		cli_error("cannot make a pipe: %s", strerror(errno));
		return CLI_FAIL;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_error("cannot start the session holder: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return CLI_FAIL;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		/* Not the caller's stdout: $(sbx create) must see its end;
		 * nothing else of the caller's either. */
		if ((null = open("/dev/null", O_RDWR)) >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		if (dup2(p[1], 3) < 0)
			_exit(CLI_FAIL);
		syscall(SYS_close_range, 4, ~0U, 0);
		_exit(cli_hold_session(sb, true, 3) == 0 ? 0 : CLI_FAIL);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		cli_error("the session holder of %s could not open its session", sb->id);
		sandbox_kill(sb, "no session holder", &err);
		return CLI_FAIL;
	}
	close(p[0]);
	printf("%s\n", sb->id);
	fflush(stdout);
	fprintf(stderr, "sbx: session of %s held by process %d in the background; sbx close %s "
		"ends it\n", sb->id, (int)pid, sb->id);
	return 0;
}

enum { OPT_DETACH = 2000, OPT_FOREGROUND };

int cli_create(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { CREATE_LONGOPTS, { "help", no_argument, NULL, 'h' },
					      { "detach", no_argument, NULL, OPT_DETACH },
					      { "foreground", no_argument, NULL, OPT_FOREGROUND },
					      { NULL, 0, NULL, 0 } };
	struct create_args a;
	struct sandbox sb;
	int opt, r, hold = -1; /* 1 detach, 0 foreground, -1 as stdout says */

	if (create_args_init(&a) < 0)
		return CLI_FAIL;
	while ((opt = getopt_long(argc, argv, "m:l:e:L:n:hd", opts, NULL)) != -1) {
		if (opt == 'h') {
			printf("usage: sbx create [OPTIONS]\n\n"
			       "Boot a sandbox (a QEMU microVM with sbx-init as PID 1), wait until\n"
			       "its agent is ready, and print its id. With the session lifetime (the\n"
			       "default) the sandbox lives while its session is held, and powers off\n"
			       "when the holder ends (sbx close ID, or killed) and the grace period\n"
			       "passes. On a terminal sbx create holds it in the foreground (Ctrl-C\n"
			       "ends it); otherwise, as in ID=$(sbx create), a background process\n"
			       "holds it and sbx create returns once it is held, like docker run -d.\n"
			       "With --lifetime DURATION it returns at once.\n\n"
			       "  -d, --detach          hold the session in the background, even on a\n"
			       "                        terminal\n"
			       "      --foreground      hold it in this process, even when standard\n"
			       "                        output is not a terminal\n%s",
			       create_opts_help);
			return 0;
		}
		if (opt == OPT_DETACH || opt == 'd' || opt == OPT_FOREGROUND) {
			hold = opt != OPT_FOREGROUND;
			continue;
		}
		if ((r = create_option(opt, &a)) != 0)
			return 2;
	}
	if (optind < argc) {
		cli_error("create takes no arguments (see sbx create --help)");
		return 2;
	}
	if (boot(&a, &sb) < 0)
		return CLI_FAIL;
	if (hold < 0)
		hold = !isatty(1);
	if (a.o.session && hold)
		return hold_in_background(&sb);
	printf("%s\n", sb.id);
	fflush(stdout);
	return a.o.session ? cli_hold_session(&sb, false, -1) : 0;
}

int cli_run(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		CREATE_LONGOPTS,
		{ "interactive", no_argument, NULL, 'i' },
		{ "tty", no_argument, NULL, 't' },
		{ "cwd", required_argument, NULL, 'w' },
		{ "user", required_argument, NULL, 'u' },
		{ "direct-stdout", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sbx_exec_opts xo = { 0 };
	struct create_args a;
	struct sandbox sb;
	struct sbx_error err;
	struct sbx_conn *session = NULL;
	struct lifetime life;
	int opt, r, status;

	if (create_args_init(&a) < 0)
		return CLI_FAIL;
	while ((opt = getopt_long(argc, argv, "+m:l:e:L:n:itw:u:h", opts, NULL)) != -1) {
		if (opt == 'h') {
			printf("usage: sbx run [OPTIONS] [--] CMD [ARG...]\n\n"
			       "Create a sandbox, run CMD in it with stdio attached, destroy it, and\n"
			       "exit with CMD's status.\n\n%s"
			       "  -i, --interactive     forward stdin\n"
			       "  -t, --tty             run on a terminal\n"
			       "  -w, --cwd DIR         working directory\n"
			       "  -u, --user U          user name or uid\n"
			       "      --direct-stdout   CMD writes its stdout straight into a connection\n"
			       "                        of its own (see sbx exec --help); not with -t\n",
			       create_opts_help);
			return 0;
		}
		if ((r = create_option(opt, &a)) == 0)
			continue;
		if (r == 2 || cli_exec_option(opt, &xo, NULL, NULL) != 0) {
			if (r != 2)
				cli_error("see sbx run --help");
			return 2;
		}
	}
	if (optind >= argc) {
		cli_error("no command given (see sbx run --help)");
		return 2;
	}
	if (cli->connect) {
		cli_error("run creates its own sandbox: --connect does not apply");
		return 2;
	}
	if (xo.direct_stdout && xo.tty) {
		cli_error("--direct-stdout does not go with --tty");
		return 2;
	}
	xo.argv = (const char *const *)&argv[optind];
	if (boot(&a, &sb) < 0)
		return CLI_FAIL;
	/* Hold a session while the command runs: if sbx dies, the sandbox
	 * follows after its grace period. */
	if (a.o.session && sbx_session(sb.addr, &session, &life, &err) < 0)
		cli_error("%s", err.msg);
	status = cli_exec_attached(sb.addr, &xo, true);
	sbx_close(session);
	if (sandbox_kill(&sb, "the command ended", &err) < 0) {
		cli_error("%s", err.msg);
		return status ? status : CLI_FAIL;
	}
	return status;
}

/* ---- ls ---- */

struct ls_ctx {
	bool json;
	unsigned n;
	const char *const *filters; /* KEY=VALUE labels that must match */
};

static bool labels_match(const struct sandbox *sb, const char *const *filters)
{
	for (; filters && *filters; filters++) {
		const char *eq = strchr(*filters, '=');
		bool found = false;

		for (unsigned i = 0; i < sb->nlabels && !found; i++)
			found = eq && strlen(sb->labels[i].key) == (size_t)(eq - *filters) &&
				!strncmp(sb->labels[i].key, *filters, (size_t)(eq - *filters)) &&
				!strcmp(sb->labels[i].value, eq + 1);
		if (!found)
			return false;
	}
	return true;
}

/* A paused sandbox's lifetime stands still at what was left at the pause. */
static uint64_t lifetime_left(const struct sandbox *sb, uint64_t now)
{
	uint64_t end = sb->created + sb->lifetime_s;

	if (sb->paused && sb->paused_at)
		now = sb->paused_at;
	return sb->lifetime_s && end > now ? end - now : 0;
}

static void ls_one(void *arg, const struct sandbox *sb)
{
	struct ls_ctx *ctx = arg;
	uint64_t now = (uint64_t)time(NULL), age = now > sb->created ? now - sb->created : 0;
	char a[32], l[32];

	if (!labels_match(sb, ctx->filters))
		return;
	if (ctx->json) {
		printf("%s{\"id\":", ctx->n ? "," : "");
		cli_json_str(stdout, sb->id);
		printf(",\"state\":\"%s\"", sb->paused ? "paused" : "running");
		printf(",\"age_s\":%llu,\"memory_mib\":%llu,\"lifetime\":\"%s\",\"lifetime_s\":%llu,",
		       (unsigned long long)age, (unsigned long long)sb->memory_mib,
		       sb->session ? "session" : "duration", (unsigned long long)sb->lifetime_s);
		if (sb->lifetime_s && !sb->session)
			printf("\"lifetime_left_s\":%llu,", (unsigned long long)lifetime_left(sb, now));
		else
			printf("\"lifetime_left_s\":null,");
		printf("\"labels\":{");
		for (unsigned i = 0; i < sb->nlabels; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(stdout, sb->labels[i].key);
			putchar(':');
			cli_json_str(stdout, sb->labels[i].value);
		}
		printf("}}");
	} else {
		cli_fmt_duration(a, sizeof(a), age);
		if (sb->session)
			snprintf(l, sizeof(l), "session");
		else if (sb->lifetime_s)
			cli_fmt_duration(l, sizeof(l), lifetime_left(sb, now));
		else
			snprintf(l, sizeof(l), "-");
		printf("%-24s %-8s %4lluMiB %-9s %-8s ", sb->id, a, (unsigned long long)sb->memory_mib, l,
		       sb->paused ? "paused" : "running");
		for (unsigned i = 0; i < sb->nlabels; i++) {
			printf("%s%s=", i ? "," : "", sb->labels[i].key);
			cli_text_str(stdout, sb->labels[i].value);
		}
		putchar('\n');
	}
	ctx->n++;
}

int cli_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
					      { "label", required_argument, NULL, 'L' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *filters[SANDBOX_LABELS_MAX + 1] = { 0 };
	struct ls_ctx ctx = { .filters = filters };
	size_t nf = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "jL:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			ctx.json = true;
			break;
		case 'L':
			if (!strchr(optarg, '=') || nf == SANDBOX_LABELS_MAX) {
				cli_error("--label %s: expected KEY=VALUE", optarg);
				return 2;
			}
			filters[nf++] = optarg;
			break;
		case 'h':
			printf("usage: sbx ls [--json] [--label K=V]...\n\n"
			       "List the live sandboxes of this user (id, age, memory, lifetime left,\n"
			       "state: running or paused, labels), removing the state of dead ones. --label keeps only those\n"
			       "with every given label.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (ctx.json)
		printf("[");
	else
		printf("%-24s %-8s %-7s %-9s %-8s %s\n", "ID", "AGE", "MEMORY", "LIFETIME", "STATE",
		       "LABELS");
	r = sandbox_list(ls_one, &ctx);
	if (ctx.json)
		printf("]\n");
	if (r < 0) {
		cli_error("cannot list %s: %s", sandbox_root(), strerror(-r));
		return CLI_FAIL;
	}
	return 0;
}

/* ---- kill, logs ---- */

int cli_kill(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;
	int status = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
			"usage: sbx kill ID...\n\n"
			"Power the sandboxes off now: their clients are told, their processes\n"
			"stopped, their disks synced; whatever is left is killed after 15 s and\n"
			"their state removed.\n");
		return argc < 2 ? 2 : 0;
	}
	for (int i = 1; i < argc; i++) {
		if (sandbox_load_any(argv[i], &sb, &err) < 0 || sandbox_kill(&sb, "killed", &err) < 0) {
			cli_error("%s", err.msg);
			status = CLI_FAIL;
		}
	}
	return status;
}

/* ---- pause, resume ---- */

int cli_pause(struct cli *cli, int argc, char **argv)
{
	bool resume = !strcmp(argv[0], "resume");
	struct sbx_error err;
	struct sandbox sb;
	uint64_t t0;
	int r;

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc != 2 ? stderr : stdout, resume ?
			"usage: sbx resume ID\n\n"
			"Bring a paused sandbox back from disk: its processes, files and the\n"
			"buffered output of detached commands are as they were at the pause;\n"
			"its wall clock is set again. Prints how long the restore took.\n" :
			"usage: sbx pause ID\n\n"
			"Save a running sandbox to disk and stop its QEMU, freeing its memory\n"
			"and CPU; sbx resume brings it back. Its lifetime does not run while it\n"
			"is paused. Only a sandbox created with --pausable and a duration\n"
			"lifetime can be paused; connections to it end. Prints how long the\n"
			"save took.\n");
		return argc != 2 ? 2 : 0;
	}
	if (sandbox_load_any(argv[1], &sb, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	t0 = time_mono_ns();
	r = resume ? sandbox_resume(&sb, &err) : sandbox_pause(&sb, &err);
	if (r < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	printf("%s %s in %llu ms\n", resume ? "resumed" : "paused", sb.id,
	       (unsigned long long)((time_mono_ns() - t0) / NSEC_PER_MSEC));
	return 0;
}

int cli_logs(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;
	char path[PATH_MAX + 16], buf[65536];
	bool net = false;
	ssize_t n;
	int fd;

	for (; argc > 2 && argv[1][0] == '-'; argv++, argc--) {
		if (!strcmp(argv[1], "--net"))
			net = true;
		else if (!strcmp(argv[1], "--raw"))
			cli_text_raw(true);
		else
			break;
	}
	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc != 2 ? stderr : stdout,
			"usage: sbx logs [--net] [--raw] ID\n\nPrint the sandbox's guest console; with "
			"--net, its egress audit log\n(one line per decision of its gateway, see "
			"docs/protocol/egress.md). On a terminal, control\ncharacters the guest wrote "
			"are shown as \\xHH; --raw writes the bytes as they are.\n");
		return argc != 2 ? 2 : 0;
	}
	if (sandbox_load(argv[1], &sb, &err) < 0) {
		cli_error("%s", err.msg);
		return CLI_FAIL;
	}
	if (net && !sb.allow_net[0]) {
		cli_error("sandbox %s has no network (it was created without --allow-net)", sb.id);
		return CLI_FAIL;
	}
	/* The rotated half first, if any. */
	snprintf(path, sizeof(path), "%s/%s.1", sb.dir, net ? "egress.log" : "console.log");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			cli_text(stdout, buf, (size_t)n, true);
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/%s", sb.dir, net ? "egress.log" : "console.log");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return CLI_FAIL;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		cli_text(stdout, buf, (size_t)n, true);
	close(fd);
	return fflush(stdout) == 0 ? 0 : CLI_FAIL;
}
