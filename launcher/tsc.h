/* The host's TSC frequency, for the guest kernel's tsc_early_khz= on
 * -M microvm (launcher/tsc.c). */
#ifndef SBX_TSC_H
#define SBX_TSC_H

/* 0 and the frequency in kHz, or -errno. */
int host_tsc_khz(unsigned long *khz);

#endif
