/* The transfer log: one line per transfer, written when it ends, in text
 * (key=value) or JSON. Formatting is pure; the file is opened with O_APPEND
 * and reopened on SIGHUP, for logrotate. */
#ifndef FERRY_TRANSLOG_H
#define FERRY_TRANSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daemon/config.h"

struct transfer_record {
	struct timespec end;   /* CLOCK_REALTIME when the transfer ended */
	const char *client;    /* "127.0.0.1:53422", "[::1]:40000" */
	const char *path;      /* as requested (decoded), or "-" */
	const char *mode;      /* "sendfile", "buffered", "list", "-" */
	int status;            /* 200, an ERR code, or 499 */
	uint64_t offset;
	uint64_t bytes;        /* file bytes sent (not the header) */
	uint64_t size;         /* file size, 0 when unknown */
	double duration_s;
	const char *error;     /* NULL, or why it failed: one token without
				* spaces, e.g. "truncated", "client-gone" */
};

/* Formats R as one line, LF included, into BUF. Returns the full length
 * (snprintf semantics: what fits is written, NUL-terminated), or -ENOMEM
 * when jansson cannot allocate the JSON object. Text: "2026-11-24T10:00:00.123Z client=... path=...
 * mode=... status=... offset=... bytes=... size=... duration_s=0.1438
 * mib_per_s=695.33 [error=TOKEN]", the path percent-encoded as the protocol
 * does (so a line never holds a space or LF inside a value); JSON: the same
 * keys in one object (made and written by jansson), strings JSON-escaped,
 * the path decoded. */
int translog_format(const struct transfer_record *r, enum log_format format,
		    char *buf, size_t cap);

/* Frees the calling thread's reusable JSON line (translog_format keeps
 * one per thread that formats JSON). translog_close calls it for its own
 * thread. */
void translog_thread_done(void);

/* Opens (or reopens) the log at PATH ("-" for stderr). 0 or -errno; on error
 * the previous file stays in use. */
int translog_open(const char *path, enum log_format format);
void translog_close(void);
/* log.flush: with ON, lines gather in a 64 KiB buffer until it is full or
 * translog_flush is called; off writes what is gathered and each line at
 * once from then on. 0 or -errno. */
int translog_set_buffered(bool on);
/* Writes the lines gathered so far. 0 or -errno. */
int translog_flush(void);
/* Writes one record. 0 or -errno. */
int translog_write(const struct transfer_record *r);

#endif
