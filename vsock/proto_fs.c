/* Codec for the file operations (docs/protocol/files.md). */
#include "vsock/proto_fs.h"

#include <stddef.h>

#include "lib/util.h"

static const struct {
	uint16_t type;
	const char *name;
} names[] = {
	{ 0, NULL },
};

const char *proto_fs_type_name(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].name && names[i].type == type)
			return names[i].name;
	return "unknown";
}
