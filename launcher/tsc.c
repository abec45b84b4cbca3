/* The host's TSC frequency, for the guest kernel's tsc_early_khz= on
 * -M microvm: without it about one boot in ten hangs while the guest
 * calibrates its timers. Under TCG the guest's TSC is the host's. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <time.h>
#include <x86intrin.h>

#include "launcher/tsc.h"

#define SYSLOG_ACTION_READ_ALL 3
#define KLOG_BUF (1u << 20)

/* The kernel's own figure: "tsc: Refined TSC clocksource calibration: X
 * MHz" (the precise one), else "tsc: Detected X MHz processor". The log
 * may be restricted (dmesg_restrict) or have wrapped: then this fails. */
static int tsc_khz_from_klog(unsigned long *khz)
{
	static const char *const keys[] = {
		"tsc: Refined TSC clocksource calibration: ",
		"tsc: Detected ",
	};
	char *buf = malloc(KLOG_BUF + 1);
	int n, r = -ENOENT;

	if (!buf)
		return -ENOMEM;
	n = klogctl(SYSLOG_ACTION_READ_ALL, buf, KLOG_BUF);
	if (n < 0) {
		r = -errno;
		goto out;
	}
	buf[n] = '\0';
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]) && r; k++) {
		char *p = strstr(buf, keys[k]), *end;
		unsigned long mhz, frac = 0;
		int digits = 0;

		if (!p)
			continue;
		p += strlen(keys[k]);
		mhz = strtoul(p, &end, 10);
		if (*end == '.') {
			/* kHz precision: up to three fractional digits */
			for (p = end + 1; digits < 3 && *p >= '0' && *p <= '9'; p++, digits++)
				frac = frac * 10 + (unsigned long)(*p - '0');
			for (; digits < 3; digits++)
				frac *= 10;
		}
		if (mhz > 100 && mhz < 100000) {
			*khz = mhz * 1000 + frac;
			r = 0;
		}
	}
out:
	free(buf);
	return r;
}

/* Counts TSC ticks over 50 ms of CLOCK_MONOTONIC_RAW: good to a few ppm
 * on an idle machine with an invariant TSC. */
static int tsc_khz_measure(unsigned long *khz)
{
	struct timespec t0, t1, req = { 0, 50 * 1000 * 1000 };
	uint64_t c0, c1, ns;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
	c0 = __rdtsc();
	while (nanosleep(&req, &req) < 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
	c1 = __rdtsc();
	ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	if (ns == 0 || c1 <= c0)
		return -EIO;
	*khz = (unsigned long)((c1 - c0) * 1000000u / ns);
	return 0;
}

int host_tsc_khz(unsigned long *khz)
{
	if (tsc_khz_from_klog(khz) == 0)
		return 0;
	return tsc_khz_measure(khz);
}
