/* PID 1 of a sandbox VM, or the same code as a subreaper in development
 * mode (`sbx-init --listen ADDR`). */
#ifndef SBX_PID1_H
#define SBX_PID1_H

int init_main(int argc, char **argv);

#endif
