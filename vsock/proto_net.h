/* Codec for the port forwarding and SSH keys (docs/protocol/net.md). */
#ifndef SBX_PROTO_NET_H
#define SBX_PROTO_NET_H

#include <stdint.h>

#include "vsock/proto.h"

/* The name of a frame type in this feature's ranges, or "unknown". */
const char *proto_net_type_name(uint16_t type);

#endif
