/* The guest's loopback interface, which workloads, the SSH server,
 * FORWARD and egress's proxy and DNS stub talk over. */
#ifndef SBX_LOOPBACK_H
#define SBX_LOOPBACK_H

/* Brings lo up (the kernel gives it 127.0.0.1 and ::1) unless it is up;
 * logs what failed. The server's, in a VM: before it reads its first
 * request, after READY (server/server.c). Not at boot: under TCG the
 * first run of the kernel's IPv4 and IPv6 code for it costs 10-20 ms, and
 * nothing before READY talks over lo but egress, which brings it up
 * first. */
void loopback_up(void);

#endif
