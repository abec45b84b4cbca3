/* The relay of net/relay.h, built into libsbx: the host side of `sbx
 * expose` moves bytes exactly as the agent does, with the same code.
 * (Until the Makefile lists net/relay.c in LIBSBX_SRC, this file is how
 * libsbx gets it.) */
#include "net/relay.c"
