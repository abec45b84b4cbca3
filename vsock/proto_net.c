/* Codec for the port forwarding and SSH keys (docs/protocol/net.md). */
#include "vsock/proto_net.h"

#include <stddef.h>

#include "lib/util.h"

static const struct {
	uint16_t type;
	const char *name;
} names[] = {
	{ 0, NULL },
};

const char *proto_net_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].name && names[i].type == type)
			return names[i].name;
	return "unknown";
}
