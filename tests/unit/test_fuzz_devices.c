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

#include "tests/unit/corpus.h"

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

/* The targets' entry points, as each_input calls them. */
static void vsockd_input(const uint8_t *p, size_t len)
{
	fuzz_vsockd_one(p, len);
}

static void gateway_input(const uint8_t *p, size_t len)
{
	fuzz_gateway_one(p, len);
}

static void test_corpus_vsockd(void **state)
{
	fuzz_vsockd_init(NULL, NULL);
	assert_true(each_input("vsockd", vsockd_input) > 0);
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
	assert_true(each_input("gateway", gateway_input) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_vsockd),
		cmocka_unit_test(test_corpus_gateway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
