/* The shared logger: see log.h. */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_prog = "sbx";
static enum log_level log_min = LOG_INFO;
static int log_fd = 2;

void log_set_prog(const char *prog) { log_prog = prog; }
void log_set_level(enum log_level level) { log_min = level; }
void log_set_fd(int fd) { log_fd = fd; }

static const char *const level_name[] = {
	[LOG_DEBUG] = "debug: ",
	[LOG_INFO] = "",
	[LOG_WARN] = "warning: ",
	[LOG_ERROR] = "error: ",
};

void log_vmsg(enum log_level level, int err, const char *fmt, va_list ap)
{
	int saved = errno;
	char line[1024];
	size_t n;
	int r;

	if (level < log_min)
		return;
	r = snprintf(line, sizeof(line), "%s: %s", log_prog, level_name[level]);
	n = r < 0 ? 0 : (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		n += r < 0 ? 0 : (size_t)r;
	}
	if (err && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(err < 0 ? -err : err));
		n += r < 0 ? 0 : (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
	errno = saved;
}

void log_msg(enum log_level level, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, err, fmt, ap);
	va_end(ap);
}

void die(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void die_code(int code, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, err, fmt, ap);
	va_end(ap);
	exit(code);
}
