/* tsc-khz: prints the host TSC frequency in kHz (launcher/tsc.c), for scripts
 * that start QEMU themselves: -M microvm guests need tsc_early_khz=. */
#include <stdio.h>

#include "launcher/tsc.h"

int main(void)
{
	unsigned long khz;

	if (host_tsc_khz(&khz) < 0) {
		fprintf(stderr, "tsc-khz: unable to find the TSC frequency\n");
		return 1;
	}
	printf("%lu\n", khz);
	return 0;
}
