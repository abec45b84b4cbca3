/* `sbx template`: warm snapshots that sandboxes start from instead of
 * booting (launcher/template.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "launcher/image.h"
#include "launcher/sandbox.h"
#include "launcher/spare.h"
#include "launcher/template.h"
#include "lib/util.h"

static const char template_usage[] =
	"usage: sbx template create NAME [--image I] [--memory M] [--spares N]\n"
	"       sbx template ls\n"
	"       sbx template rm NAME...\n\n"
	"A template is a sandbox booted until its agent is ready, let settle, and\n"
	"saved to the data directory (memory and device state, as sbx pause saves\n"
	"one). `sbx create --from NAME` restores a new sandbox from it instead of\n"
	"booting, and plain `sbx create` does so by itself when a template of the\n"
	"same image, memory and CPUs exists (and it has no --allow-net, --secret,\n"
	"--volume, --rootfs, --kernel or --initrd); `sbx create --cold` boots.\n"
	"A clone is a new sandbox: its agent takes the clone's id, host name,\n"
	"token, environment, labels and lifetime (counted from the clone's start),\n"
	"the host's clock and fresh seed for its random number generator before\n"
	"sbx create returns. A clone of an image with disks writes into an overlay\n"
	"of its own over the template's disk. rm is safe while clones of the\n"
	"minimal image run (they do not use the template after their start), and\n"
	"refused while a clone with a disk exists.\n\n"
	"  --image NAME     the image (default: $SBX_IMAGE, else debian)\n"
	"  -m, --memory M   its memory, as sbx create --memory (default 1024)\n"
	"  --spares N       keep N QEMUs (0-8, default 0) started for its next\n"
	"                   clones, each with its memory filled in: a clone's create\n"
	"                   then skips QEMU's start and the copy of the template's\n"
	"                   memory; each holds a clone's memory while it waits, and\n"
	"                   is made again in the background once taken (not for\n"
	"                   sbx create --name, whose id a spare cannot have)\n";

static void template_row(void *arg, const struct template *t)
{
	char when[32] = "-";
	time_t c = (time_t)t->created;
	struct tm tm;

	if (localtime_r(&c, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	printf("%-24s %-12s %6llu %4u %7.0fM  %s%s\n", t->name, t->image,
	       (unsigned long long)t->memory_mib, t->cpus, (double)t->state_bytes / (1 << 20), when,
	       t->old ? "  (an older sbx's: not used; make it again)" : "");
}

static int template_create_cmd(int argc, char **argv)
{
	static const struct option opts[] = { { "image", required_argument, NULL, 'i' },
					      { "memory", required_argument, NULL, 'm' },
					      { "spares", required_argument, NULL, 's' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	uint64_t mib = SANDBOX_MEM_DEFAULT, spares = 0;
	const char *image = NULL;
	struct sbx_error err;
	struct template t;
	int opt;

	optind = 0; /* a fresh scan: main already ran getopt over other arguments */
	while ((opt = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'i':
			image = optarg;
			break;
		case 'm':
			if (sandbox_parse_memory(optarg, &mib, &err) < 0) {
				cli_error("%s", err.msg); /* it names --memory and the value */
				return 2;
			}
			break;
		case 's':
			if (str_to_u64(optarg, SPARES_MAX, &spares) < 0) {
				cli_error("--spares %s: a number from 0 to %d", optarg, SPARES_MAX);
				return 2;
			}
			break;
		case 'h':
			fputs(template_usage, stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc) {
		cli_error("template create takes one NAME (see sbx template --help)");
		return 2;
	}
	if (template_create(argv[optind], image, mib, (unsigned)spares, &t, &err) < 0) {
		cli_error("template create %s: %s", argv[optind], err.msg);
		return CLI_FAIL;
	}
	printf("%s\n", t.name);
	return 0;
}

int cli_template(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	int status = 0;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(template_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "create"))
		return template_create_cmd(argc - 1, argv + 1);
	/* Not for users: the spares' filler (launcher/spare.c). */
	if (!strcmp(argv[1], "_fill") && argc == 3)
		return spares_fill_now(argv[2]);
	if (!strcmp(argv[1], "ls") && argc == 2) {
		printf("%-24s %-12s %6s %4s %8s  %s\n", "NAME", "IMAGE", "MEMORY", "CPUS", "STATE",
		       "CREATED");
		template_list(template_row, NULL);
		return 0;
	}
	if (!strcmp(argv[1], "rm") && argc > 2) {
		for (int i = 2; i < argc; i++)
			if (template_remove(argv[i], &err) < 0) {
				cli_error("template rm %s: %s", argv[i], err.msg);
				status = CLI_FAIL;
			}
		return status;
	}
	fputs(template_usage, stderr);
	return 2;
}
