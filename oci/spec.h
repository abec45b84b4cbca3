/* What sbx-oci takes from an OCI bundle's config.json (the OCI Runtime
 * Specification, config.md): the process to run, the root file system,
 * the memory limit, the host name, the rlimits and the mounts (tmpfs, made
 * in the guest, and bind mounts of host paths, shared with the rootfs);
 * everything else a VM cannot honour is either ignored because the VM
 * already provides it (/proc, /dev, /sys, /run, cgroups, namespaces) or
 * refused with an error naming it. */
#ifndef SBX_OCI_SPEC_H
#define SBX_OCI_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OCI_ARGS_MAX 256
#define OCI_ENV_MAX 256
#define OCI_RLIMITS_MAX 16
#define OCI_BINDS_MAX 16
#define OCI_TMPFS_MAX 8   /* the guest's tmpfs.N slots (lib/config.h) */

/* A bind mount of a host path (a directory or a file) into the rootfs,
 * made on the host where virtiofsd sees it (oci/mounts.h). */
struct oci_bind {
	char *source;          /* absolute, on the host */
	char *dest;            /* absolute, in the container */
	bool recursive;        /* rbind */
	unsigned long attr;    /* MOUNT_ATTR_RDONLY, _NOSUID, _NODEV, _NOEXEC */
};

struct oci_spec {
	char *args[OCI_ARGS_MAX + 1];  /* NULL-terminated */
	char *env[OCI_ENV_MAX + 1];    /* NAME=value, NULL-terminated */
	char cwd[PATH_MAX];
	char user[16];                 /* the uid, in decimal */
	bool terminal;
	char rootfs[PATH_MAX];         /* absolute */
	bool readonly;
	char hostname[65];             /* "": none given (the VM's is its sandbox id) */
	char *rlimits[OCI_RLIMITS_MAX + 1]; /* name=SOFT:HARD (nofile=1024:1024), NULL-terminated */
	struct oci_bind binds[OCI_BINDS_MAX];
	size_t nbinds;
	char *tmpfs[OCI_TMPFS_MAX + 1]; /* PATH:OPTIONS, the guest's tmpfs.N, NULL-terminated */
	uint64_t memory_limit;         /* bytes; 0: none given */
	char netns[PATH_MAX];          /* linux.namespaces' network path; "": none */
	char *json;                    /* the annotations, as JSON text ("{}" if none) */
	bool pod_sandbox;              /* a Kubernetes pod's sandbox ("pause") container:
					* annotation io.kubernetes.cri.container-type
					* (CRI-O: io.kubernetes.cri-o.ContainerType) = sandbox */
};

/* Reads DIR/config.json. Returns 0, or -errno with why in msg. */
int oci_spec_load(const char *bundle, struct oci_spec *s, char *msg, size_t n);

/* Reads the process JSON of `exec --process FILE` into s's process part. */
int oci_process_load(const char *file, struct oci_spec *s, char *msg, size_t n);

void oci_spec_free(struct oci_spec *s);

#endif
