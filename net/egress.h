/* Egress from inside the guest (docs/protocol/egress.md): with `egress =
 * on` the agent makes outbound TCP transparent. Names resolve to
 * synthetic addresses (net/dns.c); the kernel redirects every outbound
 * TCP connection to the agent's proxy, which asks the host's gateway over
 * vsock for the original destination and relays. The guest enforces
 * nothing: the gateway decides. */
#ifndef SBX_EGRESS_H
#define SBX_EGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

#define EGRESS_PROXY_PORT 999          /* 127.0.0.1: privileged, out of workloads' reach */
#define EGRESS_NFT_TABLE "sbx_egress"
#define EGRESS_ROUTE_TABLE 99
#define EGRESS_RULE_PREF 100
#define EGRESS_MAX 1024                /* proxied connections at once */
#define EGRESS_RESOLV_CONF "/etc/resolv.conf"

/* Sets everything up when the configuration turns egress on: in a VM, or
 * in development mode when $SBX_EGRESS_GATEWAY names the gateway
 * (unix:PATH; for tests in a network namespace). Failures are logged;
 * what is not set up stays closed. */
void egress_start(const struct config *c, bool in_vm);

/* Kernel set-up (net/egress_rules.c); 0 or -errno. */
int egress_rules_install(uint16_t proxy_port);
int egress_route_install(void);
/* Refuses at once, with a TCP reset to the SYN (ECONNREFUSED), outbound
 * TCP to any address but the n in addrs (network byte order), the DNS
 * stub's synthetic range and loopback. After egress_rules_install. */
int egress_refuse_install(const uint32_t *addrs, size_t n);

#endif
