/* The transfer log: formatting of one record per line, and the file it goes
 * to (see translog.h).
 *
 * Text lines are key=value pairs separated by single spaces. The path is
 * percent-encoded exactly as the protocol encodes it (proto_encode), and the
 * other string values go through the same encoding, which leaves well-formed
 * values ("127.0.0.1:53422", "sendfile", "client-gone") unchanged but
 * guarantees that no value ever holds a space or a line break.
 *
 * JSON lines hold the same keys in one object. Strings are escaped per RFC
 * 8259: '"' and '\\' with a backslash, every byte below 0x20 and DEL as
 * \u00xx. Valid UTF-8 sequences are copied as they are; every byte that is
 * not part of a valid UTF-8 sequence (a stray continuation byte, an overlong
 * form, a surrogate, a truncated sequence) is written as \u00xx with xx the
 * byte's value, so the line is always valid UTF-8 and valid JSON. The path is
 * written decoded, as the client asked for it.
 *
 * The file descriptor is shared by every thread that ends a transfer and by
 * the reload that reopens it; a read-write lock keeps a reopen from closing
 * the descriptor under a write in flight (writers share the lock, since
 * O_APPEND writes of one line each do not interleave). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/protocol.h"
#include "daemon/translog.h"

#define TRANSLOG_STACK_BYTES 8192

/* An output buffer with snprintf semantics: bytes past CAP are counted but
 * not stored. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
};

static void put_bytes(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put_bytes(o, s, strlen(s));
}

static void put_fmt(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put_fmt(struct out *o, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put_bytes(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n
							   : sizeof(tmp) - 1);
}

/* Writes S percent-encoded, straight into the buffer. */
static void put_encoded(struct out *o, const char *s)
{
	if (o->len < o->cap)
		o->len += proto_encode(s, strlen(s), o->buf + o->len,
				       o->cap - o->len);
	else
		o->len += proto_encode(s, strlen(s), NULL, 0);
}

/* The length of the valid UTF-8 sequence at S (at most AVAIL bytes), or 0
 * when the bytes there do not start one. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t need, i;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

/* Writes S as a JSON string, quotes included. */
static void put_json_string(struct out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t avail = strlen(s);

	put_bytes(o, "\"", 1);
	while (avail > 0) {
		size_t n = 1;

		if (*p == '"' || *p == '\\') {
			put_bytes(o, "\\", 1);
			put_bytes(o, (const char *)p, 1);
		} else if (*p < 0x20 || *p == 0x7f) {
			put_fmt(o, "\\u%04x", *p);
		} else if (*p < 0x80) {
			put_bytes(o, (const char *)p, 1);
		} else if ((n = utf8_sequence(p, avail)) > 0) {
			put_bytes(o, (const char *)p, n);
		} else {
			n = 1;
			put_fmt(o, "\\u%04x", *p);
		}
		p += n;
		avail -= n;
	}
	put_bytes(o, "\"", 1);
}

static void put_time(struct out *o, const struct timespec *ts)
{
	struct tm tm;
	time_t sec = ts->tv_sec;
	long ms = ts->tv_nsec / 1000000L;

	if (ms < 0 || ms > 999)
		ms = 0;
	if (gmtime_r(&sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	put_fmt(o, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		ms);
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

int translog_format(const struct transfer_record *r, enum log_format format,
		    char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	double duration_s = r->duration_s;
	double mib_per_s = 0.0;

	/* NaN and negative durations (a clock step) would make the line
	 * unparseable as JSON; they are logged as zero. */
	if (!(duration_s > 0.0))
		duration_s = 0.0;
	if (duration_s > 0.0 && r->bytes > 0)
		mib_per_s = (double)r->bytes / 1048576.0 / duration_s;

	if (format == FERRY_LOG_JSON) {
		put_str(&o, "{\"time\":\"");
		put_time(&o, &r->end);
		put_str(&o, "\",\"client\":");
		put_json_string(&o, or_dash(r->client));
		put_str(&o, ",\"path\":");
		put_json_string(&o, or_dash(r->path));
		put_str(&o, ",\"mode\":");
		put_json_string(&o, or_dash(r->mode));
		put_fmt(&o,
			",\"status\":%d,\"offset\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"size\":%" PRIu64
			",\"duration_s\":%.4f,\"mib_per_s\":%.2f",
			r->status, r->offset, r->bytes, r->size, duration_s,
			mib_per_s);
		if (r->error != NULL) {
			put_str(&o, ",\"error\":");
			put_json_string(&o, r->error);
		}
		put_str(&o, "}\n");
	} else {
		put_time(&o, &r->end);
		put_str(&o, " client=");
		put_encoded(&o, or_dash(r->client));
		put_str(&o, " path=");
		put_encoded(&o, or_dash(r->path));
		put_str(&o, " mode=");
		put_encoded(&o, or_dash(r->mode));
		put_fmt(&o,
			" status=%d offset=%" PRIu64 " bytes=%" PRIu64
			" size=%" PRIu64 " duration_s=%.4f mib_per_s=%.2f",
			r->status, r->offset, r->bytes, r->size, duration_s,
			mib_per_s);
		if (r->error != NULL) {
			put_str(&o, " error=");
			put_encoded(&o, or_dash(r->error));
		}
		put_str(&o, "\n");
	}

	if (cap > 0)
		buf[o.len < cap ? o.len : cap - 1] = '\0';
	return o.len > INT32_MAX ? INT32_MAX : (int)o.len;
}

static pthread_rwlock_t log_lock = PTHREAD_RWLOCK_INITIALIZER;
static int log_fd = -1;
static enum log_format log_fmt = FERRY_LOG_TEXT;

static void close_fd(int fd)
{
	if (fd >= 0 && fd != STDERR_FILENO)
		close(fd);
}

/* log.flush: lines gather in this buffer and are written together, when it
 * is full, when translog_flush is called (a timer), and before the file is
 * reopened or closed. Only whole lines are in it. */
#define TRANSLOG_BUFFER_BYTES 65536
static char *log_buf;
static size_t log_buf_len;
static bool log_buffered;

/* Writes LEN bytes at BUF to the log, all of them. 0 or -errno. */
static int write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(log_fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* With the write lock held. */
static int flush_locked(void)
{
	int rc = 0;

	if (log_buf_len > 0 && log_fd >= 0)
		rc = write_all(log_buf, log_buf_len);
	log_buf_len = 0;
	return rc;
}

int translog_flush(void)
{
	int rc;

	pthread_rwlock_wrlock(&log_lock);
	rc = flush_locked();
	pthread_rwlock_unlock(&log_lock);
	return rc;
}

int translog_set_buffered(bool on)
{
	int rc = 0;

	pthread_rwlock_wrlock(&log_lock);
	if (on && log_buf == NULL) {
		log_buf = malloc(TRANSLOG_BUFFER_BYTES);
		if (log_buf == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		if (!on)
			rc = flush_locked();
		log_buffered = on;
	}
	pthread_rwlock_unlock(&log_lock);
	return rc;
}

int translog_open(const char *path, enum log_format format)
{
	int fd, old;

	if (strcmp(path, "-") == 0) {
		fd = STDERR_FILENO;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			  0640);
		if (fd < 0)
			return -errno;
	}

	pthread_rwlock_wrlock(&log_lock);
	flush_locked(); /* what was logged goes to the file it was logged to */
	old = log_fd;
	log_fd = fd;
	log_fmt = format;
	pthread_rwlock_unlock(&log_lock);

	close_fd(old);
	return 0;
}

void translog_close(void)
{
	int old;

	pthread_rwlock_wrlock(&log_lock);
	flush_locked();
	old = log_fd;
	log_fd = -1;
	log_buffered = false;
	free(log_buf);
	log_buf = NULL;
	pthread_rwlock_unlock(&log_lock);

	close_fd(old);
}

int translog_write(const struct transfer_record *r)
{
	char stack[TRANSLOG_STACK_BYTES];
	char *line = stack;
	ssize_t written;
	int len, rc = 0;

	/* Buffering appends to shared memory: that takes the write lock. */
	if (log_buffered)
		pthread_rwlock_wrlock(&log_lock);
	else
		pthread_rwlock_rdlock(&log_lock);
	if (log_fd < 0) {
		rc = -EBADF;
		goto out;
	}

	len = translog_format(r, log_fmt, stack, sizeof(stack));
	if ((size_t)len >= sizeof(stack)) {
		line = malloc((size_t)len + 1);
		if (line == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		translog_format(r, log_fmt, line, (size_t)len + 1);
	}

	if (log_buffered) {
		if (log_buf_len + (size_t)len > TRANSLOG_BUFFER_BYTES)
			rc = flush_locked();
		if ((size_t)len > TRANSLOG_BUFFER_BYTES) {
			rc = write_all(line, (size_t)len);
		} else {
			memcpy(log_buf + log_buf_len, line, (size_t)len);
			log_buf_len += (size_t)len;
		}
		goto out;
	}
	/* One write per line: with O_APPEND, lines from concurrent writers
	 * (and other processes appending to the same file) never mix. */
	do {
		written = write(log_fd, line, (size_t)len);
	} while (written < 0 && errno == EINTR);
	if (written < 0)
		rc = -errno;
	else if (written < len)
		rc = -EIO;

out:
	pthread_rwlock_unlock(&log_lock);
	if (line != stack)
		free(line);
	return rc;
}
