/* libFuzzer target: the kernel command line parser (config_parse_cmdline,
 * lib/config.c): the input is /proc/cmdline as the kernel would pass it
 * (a C string; the parser reads up to the first NUL). Whatever it holds,
 * no token may come from it. */
#include <errno.h>

#include "lib/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1), err[512];
	struct config c;
	int r;

	FUZZ_CHECK(line);
	memcpy(line, data, size);
	line[size] = '\0';
	config_init(&c);
	err[0] = '\0';
	r = config_parse_cmdline(&c, line, err, sizeof(err));
	FUZZ_CHECK(r == 0 || (r == -EINVAL && err[0]));
	fuzz_config_check(&c);
	/* "file only, refused on the kernel command line" (docs/CONFIG.md):
	 * every process can read /proc/cmdline. */
	FUZZ_CHECK(c.token[0] == '\0');
	config_free(&c);
	free(line);
	return 0;
}
