/* libFuzzer target: the configuration file parser (lib/config.c):
 * config_parse_text on the input as a whole file, and kv_parse_text with
 * a callback that checks each statement, then writes its value back with
 * kv_write and reads it again: the value must come back unchanged. */
#include <ctype.h>
#include <errno.h>

#include "lib/config.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static int got_value(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	char **out = ctx;

	free(*out);
	*out = strdup(value);
	return 0;
}

/* kv_write then kv_parse_text: the same value. */
static void value_round_trip(const char *value)
{
	char *text = NULL, *back = NULL, err[256];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int r;

	FUZZ_CHECK(f);
	kv_write(f, "k", value);
	FUZZ_CHECK(fclose(f) == 0);
	r = kv_parse_text(text, len, "round trip", got_value, &back, err, sizeof(err));
	if (r != 0 || !back || strcmp(back, value) != 0) {
		fprintf(stderr, "fuzz: kv_write wrote '%s', read back as '%s' (%d: %s)\n", text,
			back ? back : "(nothing)", r, r ? err : "");
		abort();
	}
	free(back);
	free(text);
}

static int check_statement(void *ctx, const char *key, const char *value, char *err, size_t n)
{
	size_t klen = strlen(key);

	FUZZ_CHECK(klen > 0 && klen <= CONFIG_VALUE_MAX && strlen(value) <= CONFIG_VALUE_MAX);
	FUZZ_CHECK(!isspace((unsigned char)key[0]) && !isspace((unsigned char)key[klen - 1]));
	FUZZ_CHECK(!strchr(key, '='));
	value_round_trip(value);
	(*(unsigned *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char err[512];
	unsigned statements = 0;
	int r;

	config_init(&c);
	err[0] = '\0';
	r = config_parse_text(&c, (const char *)data, size, "fuzz", err, sizeof(err));
	FUZZ_CHECK(r == 0 || (r == -EINVAL && err[0]));
	fuzz_config_check(&c);
	config_free(&c);

	r = kv_parse_text((const char *)data, size, "fuzz", check_statement, &statements, err,
			  sizeof(err));
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	return 0;
}
