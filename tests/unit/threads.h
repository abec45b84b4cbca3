/* The number of threads of this process, for the unit tests that check
 * that a transfer's hasher thread does not outlive it (test_hasher.c,
 * test_fs_download.c). Include after <cmocka.h>. */
#ifndef SBX_TESTS_UNIT_THREADS_H
#define SBX_TESTS_UNIT_THREADS_H

#include <dirent.h>

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

#endif
