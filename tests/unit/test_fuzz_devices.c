/* The corpora of the host-side fuzz targets that read what a guest writes
 * (tests/fuzz/fuzz_vsockd.c: sbx-vsockd's device over guest memory;
 * tests/fuzz/fuzz_gateway.c: the gateway's CONNECT line) replayed in the
 * ordinary build, through the targets themselves, so `make unit` and
 * `make asan` run them without clang. An input that once crashed a
 * target goes into its corpus and runs here from then on. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char current_input[512];
#define FUZZ_FAIL() fail_msg("corpus input %s", current_input)

#define LLVMFuzzerInitialize fuzz_vsockd_init
#define LLVMFuzzerTestOneInput fuzz_vsockd_one
#include "tests/fuzz/fuzz_vsockd.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerInitialize fuzz_gateway_init
#define LLVMFuzzerTestOneInput fuzz_gateway_one
#define patterns gateway_patterns
#define rules gateway_rules
#include "tests/fuzz/fuzz_gateway.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

#define CORPUS "tests/fuzz/corpus"

/* Calls fn on every file of CORPUS/target; returns how many. */
static size_t each_input(const char *target, int (*fn)(const uint8_t *p, size_t len))
{
	char path[512], cdir[256];
	struct dirent *d;
	size_t n = 0;
	DIR *dp;

	snprintf(cdir, sizeof(cdir), "%s/%s", CORPUS, target);
	dp = opendir(cdir);
	assert_non_null(dp);
	while ((d = readdir(dp))) {
		struct stat st;
		uint8_t *p;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", cdir, d->d_name);
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

static void test_corpus_vsockd(void **state)
{
	fuzz_vsockd_init(NULL, NULL);
	assert_true(each_input("vsockd", fuzz_vsockd_one) > 0);
	vsock_dev_fini(&dev);
	close(lfd_host);
	close(lfd_guest);
	close(epfd);
	unlink(uds);
	snprintf(current_input, sizeof(current_input), "%s_%u", uds, PORT_GUEST);
	unlink(current_input);
	rmdir(dir);
	free(region[0]);
	free(region[1]);
}

static void test_corpus_gateway(void **state)
{
	fuzz_gateway_init(NULL, NULL);
	assert_true(each_input("gateway", fuzz_gateway_one) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_vsockd),
		cmocka_unit_test(test_corpus_gateway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
