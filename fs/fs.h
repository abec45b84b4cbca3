/* File operations in the guest (docs/protocol/files.md). */
#ifndef SBX_FS_H
#define SBX_FS_H

#include <stddef.h>

#include "conn/conn.h"

struct config;

/* Takes over connection c for a file operation request f (a frame type
 * in FT_FS_FIRST..FT_FS_LAST). */
int fs_dispatch(struct conn *c, const struct frame *f, struct proto_err *e);

/* The sandbox's working directory: the `workdir` configuration key, else
 * the default user's home directory ("/" if it has none). */
int fs_sandbox_dir(const struct config *cfg, char *out, size_t n);
/* A path as the sandbox understands it: absolute as given, or relative
 * to fs_sandbox_dir. -EINVAL when empty, -ENAMETOOLONG when too long. */
int fs_path_resolve(const struct config *cfg, const char *path, char *out, size_t n);

#endif
