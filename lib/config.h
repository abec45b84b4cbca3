/* The sandbox configuration: one parser for the config file
 * (/etc/sbx/config) and the kernel command line (sbx.* keys). Format in
 * docs/CONFIG.md. Bad lines are reported naming the key and skipped; the
 * rest still applies, so a typo never leaves a sandbox unbootable. */
#ifndef SBX_CONFIG_H
#define SBX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/resource.h>

#define CONFIG_PATH "/etc/sbx/config"
#define CONFIG_HOSTNAME_MAX 64
#define CONFIG_USER_MAX 32
#define CONFIG_PATH_MAX 4096
#define CONFIG_VALUE_MAX 65536
/* A configuration file, a kernel command line or a value shorter than
 * this is read, split and decoded in buffers on the stack: PID 1 reads
 * its own at boot without calling malloc (a sandbox's usual
 * configuration: no env.* or label.* keys, which the parser keeps in
 * the heap), whose first call in the guest runs musl's brk and mmap
 * set-up, kernel code that TCG translates on its first run (~10 ms);
 * the server, after PID 1 listens, pays it instead. */
#define CONFIG_SMALL 4096
#define CONFIG_ENV_MAX 4096 /* entries */
#define CONFIG_SERIAL_MAX 20 /* a virtio disk's serial number */
#define CONFIG_LAYERS_MAX 8
#define CONFIG_VOLUMES_MAX 8
#define CONFIG_VOLUME_PATH_MAX 256
#define CONFIG_CA_MAX 4096
#define CONFIG_RLIMITS_MAX 16 /* RLIMIT_NLIMITS */
#define CONFIG_TMPFS_MAX 8
#define CONFIG_TMPFS_DATA_MAX 128

struct config {
	char hostname[CONFIG_HOSTNAME_MAX + 1];
	uint32_t port;
	char user[CONFIG_USER_MAX + 1];
	char workdir[CONFIG_PATH_MAX]; /* empty: the default user's home */
	char **env;                    /* "NAME=value", names unique, NULL-terminated */
	size_t envc;
	bool session;                  /* lifetime "session": lives while a session is open */
	uint64_t lifetime;             /* seconds; 0: no limit (ignored with session) */
	uint64_t session_grace;        /* seconds without a session before shutdown */
	uint64_t stop_grace;           /* seconds between SIGTERM and SIGKILL at shutdown */
	uint64_t output_buffer;        /* bytes kept per stream of a detached command */
	uint32_t ready_port;           /* host vsock port told when ready; 0: none */
	char **labels;                 /* "KEY=value", keys unique, NULL-terminated */
	size_t nlabels;
	char token[257];               /* clients must prove it; empty: no token */
	bool seccomp;                  /* restrict workloads (seccomp, capabilities) */
	bool template;                 /* booted to be saved as a template: takes a
					* clone's identity once (IDENTITY) */
	uint64_t pids_max;             /* workloads' pids.max (0: no limit) */
	bool egress;                   /* outbound TCP through the host's gateway */
	uint32_t egress_port;          /* the gateway's host vsock port (CID 2) */
	char *egress_names;            /* the allow list's name patterns, space-separated
					* ("api.test *.example.com"); NULL: not told */
	char *egress_addrs;            /* the IPv4 addresses it names, space-separated;
					* NULL: not told (no address refused at once) */
	char egress_ca[CONFIG_CA_MAX]; /* PEM: the CA of the sandbox's secrets; "": none */
	/* A root on disks (init/root.c): the read-only layers' serials, top
	 * first (the image last), and the writable layer's; none: the
	 * initramfs is the root. */
	char root_lower[CONFIG_LAYERS_MAX][CONFIG_SERIAL_MAX + 1];
	size_t nroot_lower;
	char root_upper[CONFIG_SERIAL_MAX + 1];
	/* Or a root shared by the host over virtio-fs: its tag (the OCI
	 * runtime's container rootfs), read-only or not. */
	char root_share[CONFIG_SERIAL_MAX + 1];
	bool root_readonly;
	struct config_volume {
		char serial[CONFIG_SERIAL_MAX + 1];
		char path[CONFIG_VOLUME_PATH_MAX];
	} volumes[CONFIG_VOLUMES_MAX];
	size_t nvolumes;
	/* Resource limits every workload starts with (sbx-oci's
	 * process.rlimits), on top of the agent's own RLIMIT_NOFILE. */
	struct config_rlimit {
		int resource;          /* RLIMIT_* */
		struct rlimit lim;
	} rlimits[CONFIG_RLIMITS_MAX];
	size_t nrlimits;
	/* tmpfs mounts PID 1 makes once the root is in place (sbx-oci's
	 * config.json mounts of type tmpfs): tmpfs.N = PATH:OPTIONS. */
	struct config_tmpfs {
		char path[CONFIG_VOLUME_PATH_MAX]; /* "": slot unused */
		unsigned long flags;              /* MS_RDONLY, MS_NOSUID, ... */
		char data[CONFIG_TMPFS_DATA_MAX]; /* size=16m,mode=1777 */
	} tmpfs[CONFIG_TMPFS_MAX];
	/* A NIC (sbx-oci with an engine's network namespace): the address of
	 * the guest's one virtio-net interface and its default route. */
	bool net;
	struct in_addr net_addr, net_gw;
	unsigned net_prefix;
};

/* pids_max unless configured: CONFIG_PIDS_AUTO, which the agent turns
 * into one process per CONFIG_PIDS_AUTO_BYTES of the workloads' memory,
 * from CONFIG_PIDS_AUTO_MIN to CONFIG_PIDS_MAX (exec/cgroup.c). */
#define CONFIG_PIDS_MAX 4096
#define CONFIG_PIDS_AUTO UINT64_MAX
#define CONFIG_PIDS_AUTO_MIN 256
#define CONFIG_PIDS_AUTO_BYTES (512ULL << 10)
#define CONFIG_EGRESS_PORT 1025
/* The agent's own vsock port; the protocol's PROTO_DEFAULT_PORT, and
 * checked to be (server/server.c). */
#define CONFIG_PORT 1024

#define CONFIG_LIFETIME_MAX (24 * 3600)
#define CONFIG_READY_PORT 1023
#define CONFIG_SESSION_GRACE 30
#define CONFIG_STOP_GRACE 3
#define CONFIG_OUTPUT_BUFFER (1u << 20)
#define CONFIG_OUTPUT_BUFFER_MAX (64u << 20)
#define CONFIG_LABELS_MAX 64
#define CONFIG_LABEL_KEY_MAX 63
#define CONFIG_LABEL_VALUE_MAX 255

void config_init(struct config *c);
void config_free(struct config *c);

/* Sets one key. Returns 0, or -errno with a message naming the key. */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t n);

/* Parses a whole file's text / a kernel command line (where `token` is
 * refused: every process can read /proc/cmdline). Every bad line is
 * logged (prefixed with `origin`) and skipped; returns 0 when all lines
 * were good, else -EINVAL with the first error in err. */
int config_parse_text(struct config *c, const char *text, size_t len, const char *origin,
		      char *err, size_t n);
int config_parse_cmdline(struct config *c, const char *cmdline, char *err, size_t n);
/* Reads and parses a file; -ENOENT when it does not exist. */
int config_load_file(struct config *c, const char *path, char *err, size_t n);

/* The whole configuration of a sandbox: the kernel command line (when
 * `cmdline`, from /proc/cmdline), then the file at `path` (if not NULL; a
 * missing file is fine unless `must_exist`). Later settings win. Returns
 * the first error as config_parse_text does. */
int config_load(struct config *c, const char *path, bool must_exist, bool cmdline, char *err,
		size_t n);

/* The file format on its own, for other key = value files (the host's
 * sandbox metadata): calls fn for each statement; bad lines are logged and
 * skipped as in config_parse_text. */
typedef int (*kv_fn)(void *ctx, const char *key, const char *value, char *err, size_t n);
int kv_parse_text(const char *text, size_t len, const char *origin, kv_fn fn, void *ctx,
		  char *err, size_t n);
/* Writes "key = value", quoting and escaping the value when it needs it. */
void kv_write(FILE *f, const char *key, const char *value);

/* Decodes a value as written in the file: bare (trimmed) or "quoted" with
 * \\ \" \n \t \r \xHH escapes. out must hold strlen(in) + 1 bytes. */
int config_unquote(const char *in, char *out, char *err, size_t n);

/* Sets NAME=value in a NULL-terminated environment array, replacing an
 * existing NAME; value NULL removes it. */
int config_env_set(char ***env, size_t *envc, const char *name, const char *value);
const char *config_env_get(char *const *env, const char *name);

#endif
