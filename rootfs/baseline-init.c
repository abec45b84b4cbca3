/* The boot-time baseline: a static /init that powers the VM off at once.
 * Booting it measures kernel + firmware + QEMU cost alone, which every
 * sbx boot figure is compared against (bench/). */
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	reboot(RB_POWER_OFF);
	/* PID 1 must not exit (the kernel panics); reboot only fails if we
	 * are not PID 1 or lack CAP_SYS_BOOT, so just stop here. */
	for (;;)
		pause();
}
