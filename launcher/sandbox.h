/* Sandboxes on this host: each is a QEMU microVM (plus its sbx-vsockd when
 * the host has no vhost-vsock) with a state directory holding its pids,
 * sockets, configuration and console log. `sbx create/ls/info/kill/logs`
 * are thin wrappers around these functions. */
#ifndef SBX_SANDBOX_H
#define SBX_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "libsbx/sbx.h"

#define SANDBOX_MEM_MIN 768        /* MiB, as in the product we model */
#define SANDBOX_MEM_MAX 4096
#define SANDBOX_MEM_DEFAULT 1024
#define SANDBOX_ID_MAX 63
#define SANDBOX_AGENT_PORT 1024
#define SANDBOX_READY_PORT 1023
#define SANDBOX_LABELS_MAX 64
#define SANDBOX_LABEL_KEY_MAX 63
#define SANDBOX_LABEL_VALUE_MAX 255
#define SANDBOX_VOLUMES_MAX 8

/* A NIC for the guest (sbx-oci, docs/OCI.md): a tap device that the caller
 * made in the network namespace it is in (QEMU opens it there), and the
 * address the guest takes. */
struct sandbox_nic {
	char tap[16];                 /* IFNAMSIZ */
	char mac[18];                 /* aa:bb:cc:dd:ee:ff */
	char addr[19];                /* a.b.c.d/prefix */
	char gw[16];                  /* the default route; "": none */
};

struct sandbox_opts {
	const char *name;             /* NULL: a generated id */
	uint64_t memory_mib;
	bool session;                 /* lifetime "session" (the default) */
	uint64_t lifetime_s;          /* a duration: power off after it (0: none) */
	uint64_t session_grace_s;     /* 0: the agent's default (30 s) */
	uint64_t stop_grace_s;        /* 0: the agent's default (3 s) */
	unsigned cpus;
	const char *const *env;       /* NAME=value, NULL-terminated or NULL */
	const char *const *labels;    /* KEY=value, NULL-terminated or NULL */
	const char *kernel;           /* NULL: the image next to sbx */
	const char *initrd;
	unsigned boot_timeout_s;
	const sigset_t *cancel_mask;  /* a pending one of these aborts the boot */
	const char *const *allow_net; /* egress allow list (gateway/allow.h), NULL-terminated */
	const char *const *resolve;   /* test-only NAME=ADDR for the gateway */
	const char *const *secrets;   /* NAME=HOSTS:VALUE, the values themselves
				       * (gateway/secrets.h), NULL-terminated or NULL */
	const char *image;            /* launcher/image.h; NULL: "minimal" */
	const char *const *volumes;   /* NAME:/PATH, NULL-terminated or NULL */
	uint64_t disk_bytes;          /* the writable disk's size; 0: 10 GiB */
	const char *rootfs;           /* a host directory shared as the root (virtio-fs,
				       * not copied: oci/); instead of an image */
	bool rootfs_readonly;
	const char *hostname;         /* the guest's host name; NULL: the id (oci/) */
	const char *const *rlimits;   /* NAME=SOFT:HARD (lib/config.h's rlimit.NAME) every
				       * workload starts with, NULL-terminated or NULL (oci/) */
	const char *const *tmpfs;     /* PATH:OPTIONS (lib/config.h's tmpfs.N) the guest
				       * mounts, at most 8, NULL-terminated or NULL (oci/) */
	const struct sandbox_nic *nic; /* NULL: no NIC (sbx's default) */
	bool pausable;                /* -M pc, so that sbx pause works (launcher/pause.h) */
	const char *from;             /* restore template NAME (launcher/template.h) */
	bool cold;                    /* boot even when a template fits */
	bool template_boot;           /* booted to become a template (template_create) */
};

struct sandbox_label {
	char key[SANDBOX_LABEL_KEY_MAX + 1];
	char value[SANDBOX_LABEL_VALUE_MAX + 1];
};

/* What the state directory's `meta` file records. */
struct sandbox {
	char id[SANDBOX_ID_MAX + 1];
	char dir[PATH_MAX];
	char addr[PATH_MAX + 32];     /* where its agent listens */
	uint64_t created;             /* unix time, seconds */
	uint64_t memory_mib;
	bool session;
	uint64_t lifetime_s;          /* created + lifetime_s: the end (after extends) */
	unsigned cpus;
	pid_t qemu_pid, vsockd_pid;
	char accel[8];                /* "tcg" or "kvm" */
	char token[65];               /* proves us to its agent (the file `token`) */
	uint64_t boot_ms;             /* host: QEMU started -> agent ready */
	struct ready_info ready;      /* the guest's own timings */
	struct sandbox_label labels[SANDBOX_LABELS_MAX];
	unsigned nlabels;
	pid_t gateway_pid;            /* the egress gateway, 0: no egress */
	pid_t share_pid;              /* virtiofsd sharing the root, 0: none */
	char allow_net[8192];         /* canonical allow-list patterns, one per line */
	char image[64];               /* the image it booted */
	char template[64];            /* the template it was cloned from; "": booted */
	char disk[PATH_MAX];          /* its writable disk, removed with it; "": none */
	char volumes[SANDBOX_VOLUMES_MAX][64]; /* the volumes it has (launcher/store.h) */
	unsigned nvolumes;
	bool pausable;                /* booted for sbx pause (launcher/pause.h) */
	bool paused;                  /* saved to disk, no QEMU running */
	uint64_t paused_at;           /* unix time of the pause: the lifetime stood still */
	char spare[64];               /* a spare of this template (launcher/spare.h), not a
				       * sandbox yet; "": a sandbox */
	bool from_spare;              /* a clone that took a spare: boot_ms is from then */
};

/* Where state directories live: $SBX_STATE_DIR, else $XDG_RUNTIME_DIR/sbx,
 * else /run/sbx for root, else /tmp/sbx-UID. */
const char *sandbox_root(void);

/* Makes the state root when missing and gives the directory of sbx's own
 * SSH client key under it (<root>/.ssh, for sbx_ssh_client_key()). */
int sandbox_ssh_dir(char *dir, size_t len, struct sbx_error *err);

/* Parses "1024", "768MiB", "2GiB" (also M, MB, G, GB) into MiB and checks
 * the allowed range; err says why not. */
int sandbox_parse_memory(const char *s, uint64_t *mib, struct sbx_error *err);

/* A file next to the sbx binary (build/ in a checkout), else `name`. */
void sandbox_find_file(const char *name, char *out, size_t n);

/* Boots a sandbox and waits until its agent is ready. On failure nothing
 * is left running or on disk, and err holds the reason (with the tail of
 * the guest console when the guest got that far). With o->from, or when
 * o->cold is not set and a template fits (launcher/template.h: same image,
 * memory and CPUs; no egress, secrets, volumes, shared root or kernel of
 * its own), the sandbox is a clone of that template instead: a failed
 * clone of a template picked this way falls back to a boot. */
int sandbox_create(const struct sandbox_opts *o, struct sandbox *sb, struct sbx_error *err);

/* Loads a sandbox's metadata; -ENOENT when there is no such sandbox or
 * it has died (its state is then cleaned up). */
int sandbox_load(const char *id, struct sandbox *sb, struct sbx_error *err);

/* The same, and a paused sandbox too (sb->paused); sandbox_load fails
 * with -EAGAIN on a paused one, since nothing answers there. */
int sandbox_load_any(const char *id, struct sandbox *sb, struct sbx_error *err);

/* Is its QEMU still running? */
bool sandbox_alive(const struct sandbox *sb);

/* Whether pid runs (not a zombie) with mark in its command line: how a
 * recorded pid is told from a reused one. */
bool sandbox_pid_owned(pid_t pid, const char *mark);

/* Asks the guest to power off, waits, kills what is left, and removes
 * the state directory. */
int sandbox_kill(struct sandbox *sb, const char *reason, struct sbx_error *err);

/* Records the meta file again (after `sbx extend`). */
int sandbox_save(const struct sandbox *sb, struct sbx_error *err);

/* The lifetime the agent answered (SET_TIME, IDENTITY): a duration's end
 * into sb->lifetime_s, so that sbx ls agrees with the guest, whose PID 1
 * counts it. */
void sandbox_lifetime_note(struct sandbox *sb, const struct lifetime *l);

/* Session holders (`sbx create` with a session lifetime, `sbx connect`)
 * register themselves so that `sbx close` can end them. */
void sandbox_session_register(const struct sandbox *sb);
void sandbox_session_unregister(const struct sandbox *sb);
/* Ends every registered holder (SIGTERM); returns how many there were. */
int sandbox_close_sessions(const struct sandbox *sb);

/* Calls fn for every live sandbox, cleaning up dead ones on the way. */
int sandbox_list(void (*fn)(void *arg, const struct sandbox *sb), void *arg);

/* For launcher/pause.c: a file in the state directory; where a paused
 * sandbox's saved state is (the data directory, not the state directory,
 * which may be in RAM); starting sbx-vsockd (sb->vsockd_pid; -EIO when it
 * did not come up) and QEMU under its supervisor (the pid, or -1); waiting
 * for a pid of the sandbox to be gone; is the pid one of its processes? */
void sandbox_path(char *out, size_t n, const struct sandbox *sb, const char *name);
void sandbox_memory_path(const struct sandbox *sb, char *out, size_t n);
int sandbox_start_vsockd(struct sandbox *sb, struct sbx_error *err);
pid_t sandbox_start_qemu(char *const argv[], const struct sandbox *sb);
bool sandbox_wait_gone(pid_t pid, const struct sandbox *sb, int ms);
bool sandbox_owns(pid_t pid, const struct sandbox *sb);
int sandbox_mkdirs(const char *path); /* mkdir -p */

/* For launcher/spare.c. A spare is made as a clone of t up to QEMU
 * started with its RAM (template_restore_start), with `spare = NAME` in
 * its metadata and the file SANDBOX_SPARE_READY: hidden from every list
 * and load, taken by the next clone of t (create locks the file and
 * renames it SANDBOX_SPARE_TAKEN first, so one taker wins, and holds the
 * lock to the end, so that a taker's death shows). */
#define SANDBOX_SPARE_READY "spare.ready"
#define SANDBOX_SPARE_TAKEN "spare.taken"
struct template;
int sandbox_spare_make(const struct template *t, struct sbx_error *err);
/* Template NAME's spares: how many wait, how many are being taken (a
 * clone's restore under way), or each that waits taken and stopped
 * (template rm); dead ones are not counted. */
enum spares_op { SPARES_WAITING, SPARES_TAKING, SPARES_STOP };
unsigned sandbox_spares(const char *name, enum spares_op op);

#endif
