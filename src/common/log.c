/* Diagnostic log: one line per message on stderr (see log.h for the levels).
 *
 * Each line is formatted into a stack buffer and handed to a single write(2),
 * so lines from different threads or places never interleave, even though
 * stderr is shared with whatever else the process inherited. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOG_LINE_MAX 2048

enum log_level log_threshold = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

static const char *level_name(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:
		return "error";
	case LOG_LEVEL_WARN:
		return "warn";
	case LOG_LEVEL_INFO:
		return "info";
	case LOG_LEVEL_DEBUG:
		return "debug";
	}
	return "info";
}

/* Writes the prefix: "<N>" for journald, else a UTC timestamp, the program
 * name, the pid and the level. Returns the number of bytes written. */
static size_t format_prefix(char *buf, size_t cap, enum log_level level)
{
	struct timespec now;
	struct tm tm;
	int n;

	if (getenv("JOURNAL_STREAM") != NULL) {
		n = snprintf(buf, cap, "<%d>", (int)level);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		n = snprintf(buf, cap,
			     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ferryd[%ld]: %s: ",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     now.tv_nsec / 1000000L, (long)getpid(),
			     level_name(level));
	}
	if (n < 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char buf[LOG_LINE_MAX];
	size_t len;
	va_list ap;
	int n;
	int saved_errno = errno;

	if (level > log_threshold)
		return;

	len = format_prefix(buf, sizeof(buf), level);
	va_start(ap, fmt);
	n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n < sizeof(buf) - len ? (size_t)n
						      : sizeof(buf) - len - 1;
	/* A message that did not fit is cut, but the line still ends. */
	if (len >= sizeof(buf) - 1)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';

	/* Nothing sensible can be done when stderr is gone; the loop keeps
	 * going only so a signal interrupting the write does not lose it. */
	while (write(STDERR_FILENO, buf, len) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}
