/* The sbx command line: shared pieces of the subcommands (cli/cli_*.c). */
#ifndef SBX_CLI_H
#define SBX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "libsbx/sbx.h"

/* Exit status when sbx itself failed (cannot connect, protocol error). */
#define CLI_FAIL 125

struct cli {
	const char *connect; /* --connect ADDR, or $SBX_CONNECT */
};

/* Prints "sbx: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The agent address for a subcommand: --connect/$SBX_CONNECT, or the
 * sandbox `id`. Returns 0, or -errno after printing why. */
int cli_target(const struct cli *cli, const char *id, char *addr, size_t n);

/* Runs a command with sbx's stdio attached (signals forwarded, -t raw
 * mode); returns the exit status sbx should exit with. */
/* sig_proxy: signals go to the command; without, attached to a detached
 * command (o->attach_pid), a signal detaches. */
int cli_exec_attached(const char *addr, struct sbx_exec_opts *o, bool sig_proxy);
/* One of exec's options (-i -t -w -e -C -u) into o; 0 when handled. */
#define CLI_ENV_MAX 4096
int cli_exec_option(int opt, struct sbx_exec_opts *o, const char **env, size_t *nenv);

int cli_exec(struct cli *cli, int argc, char **argv);
int cli_info(struct cli *cli, int argc, char **argv);
int cli_create(struct cli *cli, int argc, char **argv);
int cli_run(struct cli *cli, int argc, char **argv);
int cli_ls(struct cli *cli, int argc, char **argv);
int cli_kill(struct cli *cli, int argc, char **argv);
int cli_pause(struct cli *cli, int argc, char **argv); /* also resume */
int cli_logs(struct cli *cli, int argc, char **argv);
int cli_cp(struct cli *cli, int argc, char **argv);
int cli_fs(struct cli *cli, int argc, char **argv);
int cli_expose(struct cli *cli, int argc, char **argv);
int cli_connect(struct cli *cli, int argc, char **argv);
int cli_close(struct cli *cli, int argc, char **argv);
int cli_extend(struct cli *cli, int argc, char **argv);
int cli_clock(struct cli *cli, int argc, char **argv);
int cli_attach(struct cli *cli, int argc, char **argv);
int cli_ps(struct cli *cli, int argc, char **argv);
int cli_env(struct cli *cli, int argc, char **argv);
int cli_image(struct cli *cli, int argc, char **argv);
int cli_volume(struct cli *cli, int argc, char **argv);
int cli_snapshot(struct cli *cli, int argc, char **argv);
int cli_template(struct cli *cli, int argc, char **argv);

/* Holds a session on sb until a signal or the sandbox's end. */
struct sandbox;
int cli_hold_session(const struct sandbox *sb, bool quiet, int ready_fd);
int cli_ssh(struct cli *cli, int argc, char **argv);

/* A duration as sbx ls and sbx info print it: 45s, 4m55s, 2h05m. */
void cli_fmt_duration(char *out, size_t n, uint64_t seconds);

/* Text the guest chose (host names, command lines, labels, log lines):
 * written as is, unless standard output is a terminal, where control
 * characters (C0, DEL, and C1 encoded as UTF-8) become \xHH so that no
 * guest can retitle, clear or drive the user's terminal. keep_lines: \n
 * and \t pass (for logs). cli_text_raw(true) (`sbx logs --raw`) turns
 * the escaping off. */
void cli_text(FILE *f, const char *s, size_t len, bool keep_lines);
void cli_text_str(FILE *f, const char *s);
void cli_text_raw(bool raw);

/* Writes s as a JSON string (with quotes). */
void cli_json_str(FILE *f, const char *s);

#endif
