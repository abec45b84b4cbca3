/* The number of threads of this process, for the unit tests that check
 * that a transfer's hasher thread does not outlive it (test_hasher.c,
 * test_fs_download.c). Include after <cmocka.h>. */
#ifndef SBX_TESTS_UNIT_THREADS_H
#define SBX_TESTS_UNIT_THREADS_H

#include <dirent.h>
#include <time.h>

static int threads_now(void)
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

/* The fewest seen over 20 ms: pthread_join returns when the kernel clears
 * the thread's tid, a moment before it drops the thread from
 * /proc/self/task, so a count taken right after a join could still see
 * it (1 run in 30 did, before and after XXH3). A thread that is leaked,
 * or still running, is seen every time. */
static int threads(void)
{
	struct timespec ms = { 0, 1000000 };
	int n = threads_now();

	for (int i = 0; i < 20 && n > 1; i++) {
		int m;

		nanosleep(&ms, NULL);
		m = threads_now();
		n = m < n ? m : n;
	}
	return n;
}

#endif
