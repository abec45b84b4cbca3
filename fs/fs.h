/* File operations in the guest (docs/protocol/files.md). */
#ifndef SBX_FS_H
#define SBX_FS_H

#include "server/conn.h"

/* Takes over connection c for a file operation request f (a frame type
 * in FT_FS_FIRST..FT_FS_LAST). */
void fs_dispatch(struct conn *c, const struct frame *f);

#endif
