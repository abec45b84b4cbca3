/* Loading kernel modules from a list (lib/kmod.c), for PID 1 and the
 * server alike. */
#ifndef SBX_KMOD_H
#define SBX_KMOD_H

/* Loads the modules listed in the file `list` (one .ko path per line, in
 * dependency order; empty lines and # comments skipped). A module that
 * fails is logged and skipped. 0, or -errno when the list cannot be read
 * (-ENOENT silently). */
int kmod_load_list(const char *list);

#endif
