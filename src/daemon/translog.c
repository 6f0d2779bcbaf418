/* The transfer log: formatting of one record per line, and the file it goes
 * to (see translog.h).
 *
 * Text lines are key=value pairs separated by single spaces. The path is
 * percent-encoded exactly as the protocol encodes it (proto_encode), and the
 * other string values go through the same encoding, which leaves well-formed
 * values ("127.0.0.1:53422", "sendfile", "client-gone") unchanged but
 * guarantees that no value ever holds a space or a line break.
 *
 * JSON lines hold the same keys in one object, in that order, made and
 * written by jansson (compact, keys in insertion order). Strings are
 * escaped per RFC 8259; valid UTF-8 is copied as it is. jansson holds
 * only UTF-8, so a line with a string that is not UTF-8 (a path of Latin-1
 * bytes, a stray continuation byte, an overlong form, a surrogate) is made
 * with every byte from 0x80 up, in every string, as the code point of the
 * same value (U+0080..U+00FF) and written with JSON_ENSURE_ASCII: each such
 * byte is then \u00XX of the byte, which ferry stats reads back as that
 * byte (stats.h), so every string of the line keeps its bytes. The path is
 * written decoded, as the client asked for it. The reals are rounded to the
 * decimals the log has always had (duration_s 4, mib_per_s 2) and written
 * with 15 significant digits, so 0.1438 stays 0.1438; jansson drops
 * trailing zeros (2.5000 is 2.5, 0.0000 is 0.0), the same number.
 *
 * The file descriptor is shared by every thread that ends a transfer and by
 * the reload that reopens it; a read-write lock keeps a reopen from closing
 * the descriptor under a write in flight (writers share the lock, since
 * O_APPEND writes of one line each do not interleave). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

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
	va_list ap;
	int n;

	/* Straight into the buffer: the numbers of one line can be longer
	 * than any scratch buffer (five 20-digit integers and two doubles). */
	va_start(ap, fmt);
	if (o->len < o->cap)
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
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

/* TS as "2026-11-24T10:00:00.123Z" into BUF (CAP bytes). */
static void time_text(const struct timespec *ts, char *buf, size_t cap)
{
	struct tm tm;
	time_t sec = ts->tv_sec;
	long ms = ts->tv_nsec / 1000000L;

	if (ms < 0 || ms > 999)
		ms = 0;
	if (gmtime_r(&sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ms);
}

static const char *or_dash(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : "-";
}

/* Sets the string V to S. With AS_BYTES every byte from 0x80 up becomes
 * the code point of the same value (see the top of the file). -EILSEQ when
 * S is not UTF-8 (and AS_BYTES is off), -ENOMEM. */
static int set_string(json_t *v, const char *s, bool as_bytes)
{
	char stack[512] = "";
	char *buf = stack;
	size_t i, n = 0, len = strlen(s);
	int rc;

	if (!as_bytes)
		return json_string_set(v, s) == 0 ? 0 : -EILSEQ;
	if (2 * len > sizeof(stack)) {
		buf = calloc(2, len);
		if (buf == NULL)
			return -ENOMEM;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			buf[n++] = (char)c;
		} else {
			buf[n++] = (char)(0xc0 | c >> 6);
			buf[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	rc = json_string_setn_nocheck(v, buf, n) == 0 ? 0 : -ENOMEM;
	if (buf != stack)
		free(buf);
	return rc;
}

/* V rounded to DECIMALS (2 or 4) as printf rounds it: the nearest double
 * to the decimal the log has always shown. Scaled by 10^DECIMALS and below
 * 2^32, the product's error is under 2^-20, so rint picks printf's digit
 * unless the product is within 0.0001 of a tie; such a value, or a larger
 * one, goes through "%.*f" and strtod, with TEXT (CAP bytes) as scratch.
 * r / scale is then the nearest double to the decimal (IEEE division). */
static double rounded(double v, int decimals, char *text, size_t cap)
{
	double scale = decimals == 4 ? 1e4 : 1e2;
	double x = v * scale, r = rint(x);

	if (x < 4294967296.0 && fabs(x - r) < 0.4999)
		return r / scale;
	snprintf(text, cap, "%.*f", decimals, v);
	return strtod(text, NULL);
}

/* json_dump_callback's sink: the snprintf-like buffer. */
static int put_cb(const char *s, size_t n, void *data)
{
	put_bytes(data, s, n);
	return 0;
}

/* Every line is made in one object per thread whose values are updated in
 * place: building a fresh object costs some 25 allocations a line, which a
 * log written for every request should not pay. Its keys stand in the
 * log's order once and for all; "error", last, is added for the lines
 * that have one and taken out again after. */
enum { J_TIME, J_CLIENT, J_PATH, J_MODE, J_STATUS, J_OFFSET, J_BYTES,
       J_SIZE, J_DURATION, J_RATE, J_ERROR, J_COUNT };

struct json_line {
	json_t *obj;
	json_t *v[J_COUNT];
};
static _Thread_local struct json_line *json_line;

static const char *const json_keys[J_COUNT] = {
	"time", "client", "path", "mode", "status", "offset",
	"bytes", "size", "duration_s", "mib_per_s", "error",
};

static void json_line_free(struct json_line *l)
{
	size_t i;

	for (i = 0; i < J_COUNT; i++)
		json_decref(l->v[i]);
	json_decref(l->obj);
	free(l);
}

/* This thread's reusable line, made on first use. NULL on ENOMEM. */
static struct json_line *json_line_get(void)
{
	struct json_line *l = json_line;
	size_t i;

	if (l != NULL)
		return l;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->obj = json_object();
	if (l->obj == NULL)
		goto fail;
	for (i = 0; i < J_COUNT; i++) {
		l->v[i] = i <= J_MODE || i == J_ERROR ? json_string("")
			  : i <= J_SIZE		     ? json_integer(0)
						     : json_real(0.0);
		/* json_object_set takes a reference of its own; the line keeps
		 * the first, to update the value in place. */
		if (l->v[i] == NULL ||
		    (i != J_ERROR &&
		     json_object_set(l->obj, json_keys[i], l->v[i]) < 0))
			goto fail;
	}
	json_line = l;
	return l;
fail:
	json_line_free(l);
	return NULL;
}

void translog_thread_done(void)
{
	if (json_line != NULL)
		json_line_free(json_line);
	json_line = NULL;
}

/* R's strings into the line (the error's too, when R has one). 0, -EILSEQ
 * (a string is not UTF-8 and AS_BYTES is off) or -ENOMEM. */
static int json_line_strings(struct json_line *l,
			     const struct transfer_record *r, bool as_bytes)
{
	char time[64];
	const char *str[J_MODE + 1];
	size_t i;
	int rc;

	time_text(&r->end, time, sizeof(time));
	str[J_TIME] = time;
	str[J_CLIENT] = or_dash(r->client);
	str[J_PATH] = or_dash(r->path);
	str[J_MODE] = or_dash(r->mode);
	for (i = 0; i <= J_MODE; i++)
		if ((rc = set_string(l->v[i], str[i], as_bytes)) < 0)
			return rc;
	if (r->error != NULL)
		return set_string(l->v[J_ERROR], r->error, as_bytes);
	return 0;
}

/* Writes R as one JSON object. 0 or -ENOMEM. */
static int put_json(struct out *o, const struct transfer_record *r,
		    double duration_s, double mib_per_s)
{
	size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(15);
	uint64_t num[3] = { r->offset, r->bytes, r->size };
	char text[400]; /* DBL_MAX in %f is 309 digits */
	struct json_line *l = json_line_get();
	size_t i;
	int rc;

	if (l == NULL)
		return -ENOMEM;
	rc = json_line_strings(l, r, false);
	if (rc == -EILSEQ) {
		rc = json_line_strings(l, r, true);
		flags |= JSON_ENSURE_ASCII;
	}
	if (rc < 0)
		return rc;
	json_integer_set(l->v[J_STATUS], r->status);
	/* File offsets and sizes are off_t, so they fit jansson's json_int_t
	 * (int64_t); a larger value is clamped. */
	for (i = 0; i < 3; i++)
		json_integer_set(l->v[J_OFFSET + i], num[i] > INT64_MAX
							     ? INT64_MAX
							     : (json_int_t)num[i]);
	json_real_set(l->v[J_DURATION], rounded(duration_s, 4, text, sizeof(text)));
	json_real_set(l->v[J_RATE], rounded(mib_per_s, 2, text, sizeof(text)));
	if (r->error != NULL &&
	    json_object_set(l->obj, "error", l->v[J_ERROR]) < 0)
		return -ENOMEM;
	/* Not json_dumpb: it skips a piece that does not fit and copies the
	 * later ones, where the callback keeps snprintf's prefix. */
	if (json_dump_callback(l->obj, put_cb, o, flags) < 0)
		rc = -ENOMEM;
	if (r->error != NULL)
		json_object_del(l->obj, "error");
	return rc;
}

int translog_format(const struct transfer_record *r, enum log_format format,
		    char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	double duration_s = r->duration_s;
	double mib_per_s = 0.0;
	char time[64];
	int rc;

	/* NaN and negative durations (a clock step) would make the line
	 * unparseable as JSON; they are logged as zero. */
	if (!(duration_s > 0.0))
		duration_s = 0.0;
	if (duration_s > 0.0 && r->bytes > 0)
		mib_per_s = (double)r->bytes / 1048576.0 / duration_s;

	if (format == FERRY_LOG_JSON) {
		rc = put_json(&o, r, duration_s, mib_per_s);
		if (rc < 0)
			return rc;
		put_str(&o, "\n");
	} else {
		time_text(&r->end, time, sizeof(time));
		put_str(&o, time);
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

	/* jansson seeds its hash function from /dev/urandom when the first
	 * object is made; done here, that read happens at start-up (or at
	 * the reload that turns JSON on), not in the middle of serving, where
	 * the descriptor it opens would count against the budget and show in
	 * the daemon's fd count. Later calls are no-ops. */
	if (format == FERRY_LOG_JSON)
		json_object_seed(0);
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
	translog_thread_done();
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
	if (len < 0) {
		rc = len;
		goto out;
	}
	if ((size_t)len >= sizeof(stack)) {
		line = malloc((size_t)len + 1);
		if (line == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		if (translog_format(r, log_fmt, line, (size_t)len + 1) < 0) {
			rc = -ENOMEM;
			goto out;
		}
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
