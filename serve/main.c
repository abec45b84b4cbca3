/* sbx serve: the command line of the server (`sbx serve`, `sbx serve token
 * new`); the server itself is serve/serve.c. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "serve/serve.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sbx serve [--listen ADDR:PORT] [--tokens FILE] [--image NAME]\n"
		"                 [--listen-cert FILE --listen-key FILE]\n"
		"                 [--expose-listen ADDR:PORT|none] [--domain BASE]\n"
		"                 [--tls-cert FILE --tls-key FILE]\n"
		"       sbx serve token new [--tokens FILE]\n\n"
		"Serve the @deno/sandbox SDK: point it here with\n"
		"  DENO_SANDBOX_ENDPOINT=http://ADDR:PORT DENO_DEPLOY_ENDPOINT=http://ADDR:PORT\n"
		"  DENO_DEPLOY_TOKEN=<a token of FILE>\n\n"
		"  --listen ADDR:PORT   where to listen (default 127.0.0.1:8600; port 0: any)\n"
		"  --listen-cert FILE, --listen-key FILE  serve the API and the dashboard\n"
		"                       over TLS (https://) with this certificate and key\n"
		"  --tokens FILE        the tokens let in (default %s)\n"
		"  --image NAME         the image sandboxes boot (default $SBX_IMAGE, else\n"
		"                       debian; the SDK's sh needs bash and its deno calls Deno)\n"
		"  --session-grace S    seconds a session sandbox outlives its last socket\n"
		"                       (default: the agent's, 30)\n"
		"  --max-sandboxes N    live sandboxes per token (default 16)\n"
		"  --max-memory MIB     their memory together, per token (default 32768)\n"
		"  --agent ADDR         development: no VMs, the agent at ADDR (unix:PATH) plays\n"
		"                       every sandbox (sbx-init --listen unix:PATH)\n"
		"  --expose-listen ADDR:PORT  the TLS listener of exposeHttp's\n"
		"                       https://<name>.BASE[:PORT] (default 127.0.0.1:8443;\n"
		"                       port 0: any; none: no exposeHttp)\n"
		"  --domain BASE        the domain exposeHttp names end in (default\n"
		"                       sbx.localhost: curl and browsers resolve *.localhost\n"
		"                       to 127.0.0.1 themselves)\n"
		"  --tls-cert FILE, --tls-key FILE  its certificate (for *.BASE) and key;\n"
		"                       without them sbx serve makes a CA and a certificate\n"
		"                       under the data directory and prints the CA's path\n\n"
		"`token new` adds a new ddo_ token to FILE (made 0600) and prints it.\n",
		tokens_default_path());
}

/* Two labels at least: a client refuses a wildcard of one (*.localhost). */
static bool domain_ok(const char *d)
{
	size_t n = strlen(d);
	bool dot = false;

	if (n == 0 || n > 200 || d[0] == '.' || d[0] == '-' || d[n - 1] == '.')
		return false;
	for (const char *s = d; *s; s++) {
		if (*s == '.') {
			if (s[1] == '.')
				return false;
			dot = true;
		} else if (!isalnum((unsigned char)*s) && *s != '-') {
			return false;
		}
	}
	return dot;
}

int serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "tokens", required_argument, NULL, 't' },
		{ "image", required_argument, NULL, 'i' },
		{ "session-grace", required_argument, NULL, 'g' },
		{ "max-sandboxes", required_argument, NULL, 'n' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "agent", required_argument, NULL, 'a' },
		{ "expose-listen", required_argument, NULL, 'x' },
		{ "domain", required_argument, NULL, 'd' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "listen-cert", required_argument, NULL, 'C' },
		{ "listen-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct serve_opts o = { .listen_addr = "127.0.0.1", .port = 8600, .max_sandboxes = 16,
				.max_memory_mib = 32768, .expose_addr = "127.0.0.1",
				.expose_port = 8443, .domain = "sbx.localhost" };
	static char addr[64], xaddr[64];
	char err[256];
	uint64_t v;
	int opt;

	o.tokens_file = tokens_default_path();
	while ((opt = getopt_long(argc, argv, "l:t:i:g:n:m:a:x:d:c:k:C:K:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'l': {
			const char *colon = strrchr(optarg, ':');

			if (!colon || (size_t)(colon - optarg) >= sizeof(addr) ||
			    str_to_u64(colon + 1, 65535, &v) < 0) {
				fprintf(stderr, "sbx: serve: --listen %s: expected ADDR:PORT\n", optarg);
				return 2;
			}
			memcpy(addr, optarg, (size_t)(colon - optarg));
			addr[colon - optarg] = '\0';
			o.listen_addr = addr;
			o.port = (int)v;
			break;
		}
		case 't':
			o.tokens_file = optarg;
			break;
		case 'i':
			o.image = optarg;
			break;
		case 'g':
			if (str_to_u64(optarg, 3600, &v) < 0 || v == 0) {
				fprintf(stderr, "sbx: serve: --session-grace %s: expected 1 to 3600\n",
					optarg);
				return 2;
			}
			o.session_grace_s = (unsigned)v;
			break;
		case 'n':
			if (str_to_u64(optarg, 4096, &v) < 0 || v == 0) {
				fprintf(stderr, "sbx: serve: --max-sandboxes %s: expected 1 to 4096\n",
					optarg);
				return 2;
			}
			o.max_sandboxes = (unsigned)v;
			break;
		case 'm':
			if (str_to_u64(optarg, 1u << 30, &v) < 0 || v < 768) {
				fprintf(stderr, "sbx: serve: --max-memory %s: expected MiB, at least 768\n",
					optarg);
				return 2;
			}
			o.max_memory_mib = v;
			break;
		case 'a':
			o.agent = optarg;
			break;
		case 'x': {
			const char *colon = strrchr(optarg, ':');

			if (!strcmp(optarg, "none")) {
				o.expose_addr = NULL;
				break;
			}
			if (!colon || (size_t)(colon - optarg) >= sizeof(xaddr) ||
			    str_to_u64(colon + 1, 65535, &v) < 0) {
				fprintf(stderr, "sbx: serve: --expose-listen %s: expected ADDR:PORT or "
					"none\n", optarg);
				return 2;
			}
			memcpy(xaddr, optarg, (size_t)(colon - optarg));
			xaddr[colon - optarg] = '\0';
			o.expose_addr = xaddr;
			o.expose_port = (int)v;
			break;
		}
		case 'd':
			if (!domain_ok(optarg)) {
				fprintf(stderr, "sbx: serve: --domain %s: expected a DNS name of at least "
					"two labels (letters, digits, '-'), like sbx.example.com\n", optarg);
				return 2;
			}
			o.domain = optarg;
			break;
		case 'c':
			o.tls_cert = optarg;
			break;
		case 'k':
			o.tls_key = optarg;
			break;
		case 'C':
			o.listen_cert = optarg;
			break;
		case 'K':
			o.listen_key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.tls_cert != !o.tls_key) {
		fprintf(stderr, "sbx: serve: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (!o.listen_cert != !o.listen_key) {
		fprintf(stderr, "sbx: serve: --listen-cert and --listen-key go together\n");
		return 2;
	}
	if (optind < argc) {
		char token[128];

		if (argc - optind != 2 || strcmp(argv[optind], "token") ||
		    strcmp(argv[optind + 1], "new")) {
			usage(stderr);
			return 2;
		}
		if (tokens_new(o.tokens_file, token, sizeof(token), err) < 0) {
			fprintf(stderr, "sbx: serve: %s\n", err);
			return 125;
		}
		printf("%s\n", token);
		return 0;
	}
	if (tokens_load(o.tokens_file, err) < 0) {
		fprintf(stderr, "sbx: serve: %s\n", err);
		return 125;
	}
	return serve_run(&o) < 0 ? 125 : 0;
}
