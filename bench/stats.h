/* Sample statistics for the benchmarks: medians and percentiles of
 * paired measurements, as ../shared/BENCH.md asks (ratios from one run,
 * the two sides alternated). */
#ifndef SBX_BENCH_STATS_H
#define SBX_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

struct samples {
	double *v;
	size_t n, cap;
};

void samples_add(struct samples *s, double x);
/* p in [0, 100]; sorts a copy. */
double samples_pct(const struct samples *s, double p);
double samples_min(const struct samples *s);
double samples_max(const struct samples *s);
void samples_free(struct samples *s);

uint64_t bench_now_ns(void);

#endif
