/* What a parsed configuration must look like, whatever the input: the
 * invariants docs/CONFIG.md promises, shared by the config file and
 * kernel command line targets. */
#include <ctype.h>

#include "lib/config.h"
#include "tests/fuzz/fuzz.h"

static bool env_name_valid(const char *s, size_t len)
{
	if (len == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

void fuzz_config_check(const struct config *c)
{
	size_t hl = strlen(c->hostname);

	FUZZ_CHECK(hl >= 1 && hl <= CONFIG_HOSTNAME_MAX);
	FUZZ_CHECK(c->port >= 1);
	FUZZ_CHECK(c->user[0] && !strchr(c->user, ':') && !strchr(c->user, '/'));
	FUZZ_CHECK(!c->workdir[0] || c->workdir[0] == '/');
	FUZZ_CHECK(c->lifetime <= CONFIG_LIFETIME_MAX);
	FUZZ_CHECK(c->session_grace <= 3600 && c->stop_grace <= 3600);
	FUZZ_CHECK(c->output_buffer >= 4096 && c->output_buffer <= CONFIG_OUTPUT_BUFFER_MAX);
	FUZZ_CHECK(c->envc <= CONFIG_ENV_MAX && (!c->env || c->env[c->envc] == NULL));
	for (size_t i = 0; i < c->envc; i++) {
		const char *eq = strchr(c->env[i], '=');

		FUZZ_CHECK(eq && env_name_valid(c->env[i], (size_t)(eq - c->env[i])));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strncmp(c->env[j], c->env[i], (size_t)(eq - c->env[i]) + 1) != 0);
	}
	FUZZ_CHECK(!c->token[0] ||
		   (strlen(c->token) >= PROTO_TOKEN_MIN && strlen(c->token) <= PROTO_TOKEN_MAX));
	FUZZ_CHECK(c->nlabels <= CONFIG_LABELS_MAX && (!c->labels || c->labels[c->nlabels] == NULL));
	for (size_t i = 0; i < c->nlabels; i++) {
		const char *eq = strchr(c->labels[i], '=');

		FUZZ_CHECK(eq && eq > c->labels[i] && eq - c->labels[i] <= CONFIG_LABEL_KEY_MAX);
		FUZZ_CHECK(strlen(eq + 1) <= CONFIG_LABEL_VALUE_MAX && !strchr(eq + 1, '\n'));
	}
}

