/* Sample statistics for the benchmarks: see stats.h. */
#include "bench/stats.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void samples_add(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (!s->v)
			abort();
	}
	s->v[s->n++] = x;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double samples_pct(const struct samples *s, double p)
{
	double *c, r;
	size_t i;

	if (s->n == 0)
		return 0;
	c = malloc(s->n * sizeof(double));
	if (!c)
		abort();
	memcpy(c, s->v, s->n * sizeof(double));
	qsort(c, s->n, sizeof(double), cmp);
	i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
	r = c[i];
	free(c);
	return r;
}

double samples_min(const struct samples *s) { return samples_pct(s, 0); }
double samples_max(const struct samples *s) { return samples_pct(s, 100); }

void samples_free(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
