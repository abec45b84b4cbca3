/* sbx pause and resume: a running sandbox saved to disk (QEMU's migration
 * stream to a file), QEMU and sbx-vsockd gone, and brought back later with
 * its processes, files and command output. QEMU 7.2 cannot migrate the
 * vhost-user vsock device, so only a sandbox created --pausable (a -M pc
 * machine, launcher/qemu.h) can be paused: the device is unplugged before
 * the save and plugged again after the restore. */
#ifndef SBX_PAUSE_H
#define SBX_PAUSE_H

#include "launcher/sandbox.h"

/* Saves a running sandbox and stops its QEMU; sb->paused on success. On
 * failure the sandbox keeps running (its vsock device plugged again). */
int sandbox_pause(struct sandbox *sb, struct sbx_error *err);

/* The same, calling saved(sb, arg, err) once its state is saved, while the
 * VM is still there, stopped (a failure there fails the pause); with
 * ram_apart, the stream leaves the guest's RAM out (QEMU's x-ignore-shared:
 * saved then reads it from the VM's memfd, launcher/template.c). */
int sandbox_pause_then(struct sandbox *sb, bool ram_apart,
		       int (*saved)(struct sandbox *sb, void *arg, struct sbx_error *err), void *arg,
		       struct sbx_error *err);

/* Restores a paused sandbox and waits until its agent answers (setting
 * its wall clock); the saved state is removed. On failure it stays
 * paused, its state kept. */
int sandbox_resume(struct sandbox *sb, struct sbx_error *err);

/* For launcher/template.c, whose clones restore the same way: plugs the
 * vsock device in again. */
struct qmp;
int sandbox_vsock_plug(struct qmp *q, struct sbx_error *err);
/* Sets QEMU's x-ignore-shared migration capability (on: the guest's RAM,
 * shared, stays out of the stream, on both sides). */
int pause_ram_apart(struct qmp *q, bool apart, struct sbx_error *err);
/* The -incoming URI (n bytes) that reads the saved state file state. */
int pause_incoming_uri(const char *state, char *uri, size_t n, struct sbx_error *err);
/* QEMU's command line argv less the vsock device (plugged in again after
 * the restore), plus -incoming uri ("defer": migrate-incoming says it).
 * out (max entries, NULL-terminated) points into argv and to uri. */
int pause_incoming_argv(char *const argv[], const char *uri, char **out, size_t max,
			struct sbx_error *err);
/* Waits until QEMU has loaded an incoming migration and the VM runs; any
 * other state is an error. */
int pause_incoming_wait(struct qmp *q, const struct sandbox *sb, struct sbx_error *err);

#endif
