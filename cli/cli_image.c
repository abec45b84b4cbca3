/* `sbx image`, `sbx volume` and `sbx snapshot`: what the data directory
 * holds (launcher/store.h, docs/IMAGES.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "launcher/image.h"
#include "launcher/sandbox.h"
#include "launcher/store.h"

static bool is_help(int argc, char **argv)
{
	return argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
}

/* `sbx image rm` and `sbx volume rm`: each name in turn, each failure
 * said; CLI_FAIL when one failed. */
static int remove_each(const char *what, int (*rm)(const char *name, struct sbx_error *err),
		       char **names, int n)
{
	struct sbx_error err;
	int status = 0;

	for (int i = 0; i < n; i++)
		if (rm(names[i], &err) < 0) {
			cli_error("%s rm %s: %s", what, names[i], err.msg);
			status = CLI_FAIL;
		}
	return status;
}

static void human(uint64_t bytes, char *out, size_t n)
{
	if (bytes >= (1ull << 30))
		snprintf(out, n, "%.1fG", (double)bytes / (1ull << 30));
	else
		snprintf(out, n, "%.0fM", (double)bytes / (1ull << 20));
}

static void image_row(void *arg, const struct image *im, const char *where)
{
	char size[32] = "-";
	FILE *f = im->base[0] ? fopen(im->base, "re") : NULL;

	if (f) {
		fseek(f, 0, SEEK_END);
		human((uint64_t)ftell(f), size, sizeof(size));
		fclose(f);
	}
	printf("%-24s %-6s %6s %6u  %s\n", im->name, where, size, im->nlayers,
	       im->base[0] ? im->base : "(the initramfs)");
}

static const char image_usage[] =
	"usage: sbx image ls\n"
	"       sbx image import NAME (DIR | TARBALL)\n"
	"       sbx image rm NAME\n\n"
	"Images are what sandboxes boot (sbx create --image NAME): \"minimal\" (the\n"
	"initramfs), those built with sbx (make image: \"debian\"), and those imported\n"
	"or snapshotted into the data directory ($SBX_DATA_DIR, $XDG_DATA_HOME/sbx, or\n"
	"/var/lib/sbx for root). import takes any Linux root file system, a directory\n"
	"or a tar archive as `docker export` writes it; it needs /bin/sh and a user\n"
	"root in /etc/passwd, and gets sbx-init as /sbin/sbx-init; its commands run\n"
	"as user app if it has one, else as root. Import as root to keep\n"
	"the files' owners. rm is refused while a sandbox or a snapshot uses it.\n";

int cli_image(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;

	if (is_help(argc, argv)) {
		fputs(image_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "ls") && argc == 2) {
		printf("%-24s %-6s %6s %6s  %s\n", "NAME", "WHERE", "SIZE", "LAYERS", "BASE");
		store_image_list(image_row, NULL);
		return 0;
	}
	if (!strcmp(argv[1], "import") && argc == 4) {
		char notes[512];

		if (store_image_import(argv[2], argv[3], notes, sizeof(notes), &err) < 0) {
			cli_error("image import %s: %s", argv[2], err.msg);
			return CLI_FAIL;
		}
		for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n"))
			fprintf(stderr, "sbx: image import %s: note: %s\n", argv[2], line);
		printf("%s\n", argv[2]);
		return 0;
	}
	if (!strcmp(argv[1], "rm") && argc >= 3)
		return remove_each("image", store_image_remove, argv + 2, argc - 2);
	fputs(image_usage, stderr);
	return 2;
}

static void volume_row(void *arg, const char *name, uint64_t bytes, uint64_t used,
		       const char *user)
{
	char size[32], u[32];

	human(bytes, size, sizeof(size));
	human(used, u, sizeof(u));
	printf("%-24s %7s %7s  %s\n", name, size, u, user[0] ? user : "-");
}

static const char volume_usage[] =
	"usage: sbx volume create NAME [--size SIZE]\n"
	"       sbx volume ls\n"
	"       sbx volume rm NAME\n\n"
	"A volume is an ext4 disk whose data outlives sandboxes: sbx create --volume\n"
	"NAME:/data mounts it at /data. It is in one running sandbox at a time. SIZE\n"
	"is 64M to 1T (default 2G); the file is sparse and grows as it is written.\n";

int cli_volume(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;

	if (is_help(argc, argv)) {
		fputs(volume_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "ls") && argc == 2) {
		printf("%-24s %7s %7s  %s\n", "NAME", "SIZE", "USED", "SANDBOX");
		store_volume_list(volume_row, NULL);
		return 0;
	}
	if (!strcmp(argv[1], "create") && (argc == 3 || argc == 5)) {
		uint64_t bytes = 2ull << 30;

		if (argc == 5 && (strcmp(argv[3], "--size") ||
				  image_parse_size(argv[4], &bytes, &err) < 0)) {
			cli_error("volume create: %s", strcmp(argv[3], "--size") ?
				  "expected --size SIZE" : err.msg);
			return 2;
		}
		if (store_volume_create(argv[2], bytes, &err) < 0) {
			cli_error("volume create %s: %s", argv[2], err.msg);
			return CLI_FAIL;
		}
		printf("%s\n", argv[2]);
		return 0;
	}
	if (!strcmp(argv[1], "rm") && argc >= 3)
		return remove_each("volume", store_volume_remove, argv + 2, argc - 2);
	fputs(volume_usage, stderr);
	return 2;
}

int cli_snapshot(struct cli *cli, int argc, char **argv)
{
	struct sbx_error err;
	struct sandbox sb;

	if (argc != 4 || strcmp(argv[1], "create")) {
		bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));

		fputs("usage: sbx snapshot create ID NAME\n\n"
		      "Turn what sandbox ID wrote to its disk into a new image NAME over the\n"
		      "image it booted: `sbx create --image NAME` starts from there. The guest\n"
		      "syncs first; a write still under way in the sandbox may be missed.\n",
		      help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (sandbox_load(argv[2], &sb, &err) < 0 || store_snapshot(&sb, argv[3], &err) < 0) {
		cli_error("snapshot create: %s", err.msg);
		return CLI_FAIL;
	}
	printf("%s\n", argv[3]);
	return 0;
}
