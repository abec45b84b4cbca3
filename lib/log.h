/* One logger for every sbx program: single-line messages of the form
 * "sbx-init: warning: unable to mount /proc: Operation not permitted",
 * written with one write(2) so lines from several processes never mix.
 * The logger preserves errno. */
#ifndef SBX_LOG_H
#define SBX_LOG_H

#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Program name printed before every line; defaults to "sbx". */
void log_set_prog(const char *prog);
/* Messages below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);
/* Where lines go (default 2). */
void log_set_fd(int fd);

/* err is 0, or an errno value (positive or negative): its text is appended. */
void log_msg(enum log_level level, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, int err, const char *fmt, va_list ap);

#define log_debug(err, ...) log_msg(LOG_DEBUG, (err), __VA_ARGS__)
#define log_info(err, ...)  log_msg(LOG_INFO, (err), __VA_ARGS__)
#define log_warn(err, ...)  log_msg(LOG_WARN, (err), __VA_ARGS__)
#define log_error(err, ...) log_msg(LOG_ERROR, (err), __VA_ARGS__)

/* Logs at LOG_ERROR and exits with status 1 (or `code`). Only for use
 * before a program's main loop starts; PID 1 never calls it. */
_Noreturn void die(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void die_code(int code, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
