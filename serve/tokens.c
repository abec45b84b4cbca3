/* sbx serve: the token file. One `ddo_` token per line (the SDK wants the
 * prefix, deno.md §1.2); a request is let in when its bearer token equals
 * one of them, compared in constant time. A sandbox records only the
 * owner hash of the token that made it (a BLAKE2b), never the token. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher/image.h"
#include "lib/util.h"
#include "serve/serve.h"

#define TOKEN_MAX 128
#define TOKEN_RANDOM 32 /* characters after ddo_ */

static char tokens[SERVE_TOKENS_MAX][TOKEN_MAX + 1];
static unsigned ntokens;

const char *tokens_default_path(void)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/serve/tokens", image_data_dir());
	return path;
}

int tokens_load(const char *path, char err[256])
{
	char line[TOKEN_MAX + 64];
	FILE *f = fopen(path, "re");

	ntokens = 0;
	if (!f) {
		snprintf(err, 256, "cannot read the tokens file %s: %s (make one with `sbx serve "
			 "token new`)", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (strlen(line) > TOKEN_MAX || !str_starts_with(line, "ddo_")) {
			snprintf(err, 256, "%s: a line is not a ddo_ token of at most %d characters",
				 path, TOKEN_MAX);
			fclose(f);
			return -EINVAL;
		}
		if (ntokens == SERVE_TOKENS_MAX) {
			snprintf(err, 256, "%s: more than %d tokens", path, SERVE_TOKENS_MAX);
			fclose(f);
			return -E2BIG;
		}
		str_copy(tokens[ntokens++], TOKEN_MAX + 1, line);
	}
	fclose(f);
	if (ntokens == 0) {
		snprintf(err, 256, "%s holds no token (make one with `sbx serve token new`)", path);
		return -ENOENT;
	}
	return 0;
}

static void owner_of(const char *token, char owner[SERVE_OWNER_LEN + 1])
{
	uint8_t h[SERVE_OWNER_LEN / 2];

	crypto_generichash(h, sizeof(h), (const uint8_t *)token, strlen(token),
			   (const uint8_t *)"sbx-serve-owner", 15);
	sodium_bin2hex(owner, SERVE_OWNER_LEN + 1, h, sizeof(h));
}

int tokens_check(const char *token, char owner[SERVE_OWNER_LEN + 1])
{
	uint8_t want[TOKEN_MAX + 1] = { 0 };
	size_t len = strlen(token);
	int found = 0;

	if (len > TOKEN_MAX)
		return -EACCES;
	memcpy(want, token, len);
	/* Every token is compared, all TOKEN_MAX + 1 bytes of it. */
	for (unsigned i = 0; i < ntokens; i++)
		found |= sodium_memcmp(want, tokens[i], sizeof(want)) == 0;
	if (!found)
		return -EACCES;
	owner_of(token, owner);
	return 0;
}

static int mkdir_parent(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	str_copy(dir, sizeof(dir), path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir_parent(dir) < 0)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int tokens_new(const char *path, char *out, size_t n, char err[256])
{
	static const char alpha[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char token[4 + TOKEN_RANDOM + 2];
	int fd, r;

	memcpy(token, "ddo_", 4);
	for (int i = 0; i < TOKEN_RANDOM; i++)
		token[4 + i] = alpha[randombytes_uniform(sizeof(alpha) - 1)];
	token[4 + TOKEN_RANDOM] = '\n';
	token[4 + TOKEN_RANDOM + 1] = '\0';
	if ((r = mkdir_parent(path)) < 0) {
		snprintf(err, 256, "cannot make the directory of %s: %s", path, strerror(-r));
		return r;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || fd_write_all(fd, token, strlen(token)) < 0 ||
	    fsync(fd) < 0) {
		r = -errno;
		snprintf(err, 256, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return r;
	}
	close(fd);
	token[4 + TOKEN_RANDOM] = '\0';
	str_copy(out, n, token);
	return 0;
}
