/* A network namespace an engine gives in config.json (Podman's CNI
 * bridge, a Kubernetes pod's) bridged into the container's VM, the way
 * Kata Containers does it: a tap device made in that namespace, tied to
 * its interface both ways by tc (mirred redirect on ingress), which QEMU
 * opens as the guest's virtio-net NIC; the guest takes the interface's
 * MAC, IPv4 address and default route (docs/OCI.md, "Networking"). */
#ifndef SBX_OCI_NET_H
#define SBX_OCI_NET_H

#include <stddef.h>

#include "launcher/sandbox.h"

/* Moves the calling process into netns (a path: /run/netns/..., or
 * /proc/PID/ns/net), reads its interface and makes the tap, filling nic.
 * Returns 1 with nic filled, 0 when the namespace has no interface but
 * lo (no NIC then), or -errno with why in msg. The process stays in netns, so
 * that the QEMU it starts opens the tap there. */
int oci_net_setup(const char *netns, struct sandbox_nic *nic, char *msg, size_t n);

#endif
