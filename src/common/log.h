/* Diagnostic log: startup, listeners, errors. It goes to stderr, which
 * journald collects under systemd; the transfer log is separate (translog.h).
 *
 * Levels, from most to least severe, follow syslog:
 *   LOG_LEVEL_ERROR  something failed: a listener, a config reload, a file read
 *   LOG_LEVEL_WARN   ferryd goes on, but an administrator should look
 *   LOG_LEVEL_INFO   lifecycle: started, listening on, reloaded, stopping
 *   LOG_LEVEL_DEBUG  per-connection detail; off unless log.level is debug
 * Under systemd (JOURNAL_STREAM set) each line carries a "<N>" priority prefix
 * instead of a timestamp, so journald files it at the right level. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

extern enum log_level log_threshold;

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
/* Does not evaluate its arguments unless debug logging is on. */
#define log_debug(...)                                                        \
	do {                                                                  \
		if (log_threshold >= LOG_LEVEL_DEBUG)                         \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                \
	} while (0)

#endif
