/* Codec for the file operations (docs/protocol/files.md). */
#ifndef SBX_PROTO_FS_H
#define SBX_PROTO_FS_H

#include <stdint.h>

#include "vsock/proto.h"

/* The name of a frame type in this feature's ranges, or "unknown". */
const char *proto_fs_type_name(uint16_t type);

#endif
