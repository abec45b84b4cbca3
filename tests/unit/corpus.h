/* The fuzz corpora in the ordinary build (test_fuzz_regressions.c,
 * test_fuzz_devices.c): every input of tests/fuzz/corpus/<target> through
 * a function, its path in current_input so that a failed check of a fuzz
 * oracle (FUZZ_FAIL, a cmocka failure here) names it. Include after
 * <cmocka.h> and before the fuzz targets. */
#ifndef SBX_TESTS_UNIT_CORPUS_H
#define SBX_TESTS_UNIT_CORPUS_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define CORPUS "tests/fuzz/corpus"

static char current_input[512];
#define FUZZ_FAIL() fail_msg("corpus input %s", current_input)

/* Calls fn on every file of CORPUS/target; returns how many. */
static size_t each_input(const char *target, void (*fn)(const uint8_t *p, size_t len))
{
	char dir[256], path[512];
	struct dirent *d;
	size_t n = 0;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/%s", CORPUS, target);
	dp = opendir(dir);
	assert_non_null(dp);
	while ((d = readdir(dp))) {
		struct stat st;
		uint8_t *p;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		snprintf(current_input, sizeof(current_input), "%s", path);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		p = malloc((size_t)st.st_size + 1);
		assert_non_null(p);
		assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
		close(fd);
		fn(p, (size_t)st.st_size);
		free(p);
		n++;
	}
	closedir(dp);
	return n;
}

#endif
