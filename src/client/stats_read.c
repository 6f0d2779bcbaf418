/* `ferry stats`, reading: the times (--since/--until and the log's own),
 * the two line formats (the text one and the JSON object), and the loop
 * that feeds a log's lines to the accumulator (see stats.h for the rules a
 * well-formed line follows).
 *
 * Everything a log line holds is untrusted: strings are decoded into fixed
 * buffers with their lengths checked. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/protocol.h"
#include "client/stats.h"

/* -- times ---------------------------------------------------------------- */

/* Reads exactly N decimal digits at S. */
static bool read_digits(const char *s, size_t n, int *out)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Parses "YYYY-MM-DD" (when DATE_OK) or "YYYY-MM-DDTHH:MM:SS[.frac]Z", the
 * whole of the LEN bytes at S. */
static int parse_iso(const char *s, size_t len, bool date_ok, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
	struct tm tm;
	size_t i;

	if (len < 10 || !read_digits(s, 4, &y) || s[4] != '-' ||
	    !read_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !read_digits(s + 8, 2, &d))
		return -EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (len == 10) {
		if (!date_ok)
			return -EINVAL;
		goto done;
	}
	if (len < 20 || s[10] != 'T' || !read_digits(s + 11, 2, &h) ||
	    s[13] != ':' || !read_digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !read_digits(s + 17, 2, &sec) || h > 23 || mi > 59 || sec > 59)
		return -EINVAL;
	i = 19;
	if (s[i] == '.') {
		size_t first = ++i;
		int scale = 100;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			/* Milliseconds are kept; further digits are dropped,
			 * not rounded, as a time stamp is truncated. */
			frac_ms += (s[i] - '0') * scale;
			scale /= 10;
			i++;
		}
		if (i == first)
			return -EINVAL;
	}
	if (i + 1 != len || s[i] != 'Z')
		return -EINVAL;
done:
	/* The fields are checked above, so timegm (glibc: UTC, 64-bit time_t,
	 * proleptic Gregorian) has nothing to normalise. */
	tm = (struct tm){ .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			  .tm_hour = h, .tm_min = mi, .tm_sec = sec };
	*ms = (int64_t)timegm(&tm) * STATS_MS_PER_S + frac_ms;
	return 0;
}

/* Epoch seconds, "1795514400" or "1795514400.5". */
static int parse_epoch(const char *s, int64_t *ms)
{
	int64_t sec = 0;
	int frac_ms = 0, scale = 100;
	size_t i = 0;

	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i >= 15) /* keeps the milliseconds well inside int64 */
			return -EINVAL;
		sec = sec * 10 + (s[i] - '0');
	}
	if (i == 0)
		return -EINVAL;
	if (s[i] == '.') {
		size_t first = ++i;

		for (; s[i] >= '0' && s[i] <= '9'; i++) {
			frac_ms += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (i == first)
			return -EINVAL;
	}
	if (s[i] != '\0')
		return -EINVAL;
	*ms = sec * STATS_MS_PER_S + frac_ms;
	return 0;
}

int stats_parse_time(const char *s, int64_t *ms)
{
	size_t i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++)
		;
	/* A date starts with four digits and a '-'; anything else made of
	 * digits is a number of seconds. */
	if (s[i] == '-')
		return parse_iso(s, strlen(s), true, ms);
	return parse_epoch(s, ms);
}

int64_t stats_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Breaks epoch milliseconds into UTC fields. */
void stats_utc_fields(int64_t ms, struct tm *tm, int *msec)
{
	time_t sec = (time_t)stats_floor_div(ms, STATS_MS_PER_S);

	*msec = (int)(ms - (int64_t)sec * STATS_MS_PER_S);
	if (gmtime_r(&sec, tm) == NULL)
		memset(tm, 0, sizeof(*tm));
}

/* "2026-11-24T10:00:00.123Z", as the log writes it. */
void stats_format_time(int64_t ms, char *buf, size_t cap)
{
	struct tm tm;
	int msec;

	stats_utc_fields(ms, &tm, &msec);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, msec);
}

/* -- numbers -------------------------------------------------------------- */

/* Log numbers follow the protocol's rules (proto_parse_number). */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	return proto_parse_number(s, len, out) < 0 ? -EINVAL : 0;
}

/* A non-negative decimal: DIGITS [. DIGITS] [e|E [+|-] DIGITS]. The grammar
 * is checked here because strtod would also take "inf", "nan", hex and
 * leading spaces. (The client runs in the C locale, so '.' is strtod's
 * decimal point.) */
static int parse_nonneg_double(const char *s, size_t len, double *out)
{
	char buf[64];
	size_t i = 0, start;
	char *end;
	double v;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	for (start = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == start)
		return -EINVAL;
	if (i < len && s[i] == '.') {
		for (start = ++i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == start)
			return -EINVAL;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		for (start = i; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == start)
			return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtod(buf, &end);
	if (*end != '\0' || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

/* -- the fields of a record ------------------------------------------------ */

enum field {
	F_TIME,
	F_CLIENT,
	F_PATH,
	F_MODE,
	F_STATUS,
	F_OFFSET,
	F_BYTES,
	F_SIZE,
	F_DURATION,
	F_RATE,
	F_COUNT
};

#define ALL_FIELDS ((1u << F_COUNT) - 1)

static const char *const field_names[F_COUNT] = {
	"time",	  "client", "path", "mode",	  "status",
	"offset", "bytes",  "size", "duration_s", "mib_per_s",
};

/* The field called NAME (LEN bytes), or F_COUNT for a key stats ignores. */
static enum field field_lookup(const char *name, size_t len)
{
	int f;

	for (f = 0; f < F_COUNT; f++)
		if (strlen(field_names[f]) == len &&
		    memcmp(field_names[f], name, len) == 0)
			return (enum field)f;
	return F_COUNT;
}

static bool field_is_string(enum field f)
{
	return f == F_TIME || f == F_CLIENT || f == F_PATH || f == F_MODE;
}

/* Sets string field F from its decoded value. */
static int set_string(struct stats_record *r, enum field f, const char *v,
		      size_t len)
{
	char *dst;
	size_t cap;

	if (len == 0 || memchr(v, '\0', len) != NULL)
		return -EINVAL;
	switch (f) {
	case F_TIME:
		return parse_iso(v, len, false, &r->time_ms);
	case F_CLIENT:
		dst = r->client;
		cap = sizeof(r->client);
		break;
	case F_PATH:
		dst = r->path;
		cap = sizeof(r->path);
		break;
	case F_MODE:
		dst = r->mode;
		cap = sizeof(r->mode);
		break;
	default:
		return -EINVAL;
	}
	if (len >= cap)
		return -EINVAL;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

/* Sets number field F from its text. */
static int set_number(struct stats_record *r, enum field f, const char *v,
		      size_t len)
{
	uint64_t u;

	switch (f) {
	case F_STATUS:
		if (parse_u64(v, len, &u) < 0 || u < 100 ||
		    u > STATS_STATUS_MAX)
			return -EINVAL;
		r->status = (int)u;
		return 0;
	case F_OFFSET:
		return parse_u64(v, len, &r->offset);
	case F_BYTES:
		return parse_u64(v, len, &r->bytes);
	case F_SIZE:
		return parse_u64(v, len, &r->size);
	case F_DURATION:
		return parse_nonneg_double(v, len, &r->duration_s);
	case F_RATE:
		return parse_nonneg_double(v, len, &r->mib_per_s);
	default:
		return -EINVAL;
	}
}

/* Marks F seen in *SEEN; a key given twice makes the line malformed, since
 * which one was meant cannot be known. */
static int mark_seen(unsigned *seen, enum field f)
{
	if (*seen & (1u << f))
		return -EINVAL;
	*seen |= 1u << f;
	return 0;
}

/* -- the text format ------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Sets string field F from its percent-encoded value. */
static int set_encoded(struct stats_record *r, enum field f, const char *v,
		       size_t len)
{
	char stack[256];
	char *buf = stack;
	ssize_t n;
	int rc;

	/* Decoding never lengthens; the heap is for long paths only. */
	if (len + 1 > sizeof(stack)) {
		buf = malloc(len + 1);
		if (buf == NULL)
			return -ENOMEM;
	}
	n = proto_decode(v, len, buf);
	rc = n < 0 ? -EINVAL : set_string(r, f, buf, (size_t)n);
	if (buf != stack)
		free(buf);
	return rc;
}

static int parse_text(const char *s, size_t len, struct stats_record *r)
{
	unsigned seen = 0;
	size_t i = 0, start;
	int rc;

	/* The time stamp comes first, without a key. */
	while (i < len && !is_blank(s[i]))
		i++;
	if (parse_iso(s, i, false, &r->time_ms) < 0)
		return -EINVAL;
	seen |= 1u << F_TIME;

	while (i < len) {
		const char *eq;
		enum field f;

		while (i < len && is_blank(s[i]))
			i++;
		if (i == len)
			break;
		for (start = i; i < len && !is_blank(s[i]); i++)
			;
		eq = memchr(s + start, '=', i - start);
		if (eq == NULL || eq == s + start)
			return -EINVAL;
		f = field_lookup(s + start, (size_t)(eq - (s + start)));
		/* "time" is positional in text, so a time= pair is just an
		 * extra key. */
		if (f == F_COUNT || f == F_TIME)
			continue;
		if (mark_seen(&seen, f) < 0)
			return -EINVAL;
		eq++;
		if (field_is_string(f))
			rc = set_encoded(r, f, eq, (size_t)(s + i - eq));
		else
			rc = set_number(r, f, eq, (size_t)(s + i - eq));
		if (rc < 0)
			return rc;
	}
	return seen == ALL_FIELDS ? 0 : -EINVAL;
}

/* -- the JSON format --------------------------------------------------------
 *
 * jansson parses the line: one object, a key given twice refused
 * (JSON_REJECT_DUPLICATES), as in text. The values of keys that stats does
 * not know may be any JSON value and are not looked at.
 *
 * jansson decodes every \uXXXX to UTF-8, so "\u00ff" and a raw "ÿ" would
 * come out alike, and stats.h's rule is that \u0080..\u00ff stand for the
 * raw byte (translog.c writes bytes that are not UTF-8 that way). The line
 * is therefore copied first with a \u0000 before each such escape in a
 * string value, and before each \u0000 too. In the decoded value a NUL then
 * says what follows: U+0080..U+00FF is that one byte, another NUL is a
 * \u0000 of the line (which no string field may hold). */

/* Reads the 4 hex digits at S (END bounds them). */
static int read_hex4(const char *s, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	if (end - s < 4)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'	 ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

/* The end of the string whose opening quote is at S: its closing quote, or
 * END when there is none. */
static const char *string_end(const char *s, const char *end)
{
	for (s++; s < end && *s != '"'; s++)
		if (*s == '\\' && s + 1 < end)
			s++;
	return s;
}

/* Copies the LEN bytes at S to OUT (2 * LEN bytes) with the marks described
 * above; returns the length of the copy. Keys are copied as they are:
 * jansson refuses a NUL in a key, and stats knows no key above ASCII. What
 * is not JSON is copied too, for jansson to refuse. */
static size_t mark_byte_escapes(const char *s, size_t len, char *out)
{
	const char *p = s, *end = s + len;
	char *o = out;

	while (p < end) {
		const char *close, *after;
		bool key;

		if (*p != '"') {
			*o++ = *p++;
			continue;
		}
		close = string_end(p, end);
		for (after = close + (close < end); after < end &&
			strchr(" \t\r\n", *after) != NULL && *after != '\0';
		     after++)
			;
		key = after < end && *after == ':';
		for (*o++ = *p++; p < close; p++) {
			uint32_t cp;

			if (*p == '\\' && p + 1 < close) {
				if (!key && p[1] == 'u' &&
				    read_hex4(p + 2, close, &cp) == 0 &&
				    (cp == 0 || (cp >= 0x80 && cp <= 0xff))) {
					memcpy(o, "\\u0000", 6);
					o += 6;
				}
				/* The escaped character goes with its
				 * backslash, so \" does not end the string. */
				*o++ = *p++;
			}
			*o++ = *p;
		}
	}
	return (size_t)(o - out);
}

/* Copies the decoded string V (LEN bytes) into OUT with the marks undone;
 * *OUT_LEN gets the length, never more than LEN. -EINVAL for a \u0000. */
static int unmark(const char *v, size_t len, char *out, size_t *out_len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c1, c2;

		if (v[i] != '\0') {
			out[n++] = v[i];
			continue;
		}
		if (len - i < 3)
			return -EINVAL;
		c1 = (unsigned char)v[i + 1];
		c2 = (unsigned char)v[i + 2];
		/* U+0080..U+00FF is 0xc2 or 0xc3 and a continuation byte. */
		if (c1 != 0xc2 && c1 != 0xc3)
			return -EINVAL;
		out[n++] = (char)((c1 & 0x1f) << 6 | (c2 & 0x3f));
		i += 2;
	}
	*out_len = n;
	return 0;
}

/* Sets known field F from its JSON value V. */
static int json_field(json_t *v, struct stats_record *r, enum field f)
{
	json_int_t i;
	double d;

	if (field_is_string(f)) {
		size_t len = json_string_length(v), n;
		char stack[256];
		char *buf = stack;
		int rc;

		if (!json_is_string(v))
			return -EINVAL;
		if (len + 1 > sizeof(stack)) {
			buf = malloc(len + 1);
			if (buf == NULL)
				return -ENOMEM;
		}
		rc = unmark(json_string_value(v), len, buf, &n);
		if (rc == 0)
			rc = set_string(r, f, buf, n);
		if (buf != stack)
			free(buf);
		return rc;
	}
	if (f == F_DURATION || f == F_RATE) {
		/* An integer is a number too ("duration_s":0); "-0.0" is
		 * refused as the text format refuses it. */
		d = json_number_value(v);
		if (!json_is_number(v) || !isfinite(d) || signbit(d))
			return -EINVAL;
		*(f == F_DURATION ? &r->duration_s : &r->mib_per_s) = d;
		return 0;
	}
	/* status, offset, bytes, size: integers, never reals ("1.0"). */
	i = json_integer_value(v);
	if (!json_is_integer(v) || i < 0)
		return -EINVAL;
	switch (f) {
	case F_STATUS:
		if (i < 100 || i > STATS_STATUS_MAX)
			return -EINVAL;
		r->status = (int)i;
		return 0;
	case F_OFFSET:
		r->offset = (uint64_t)i;
		return 0;
	case F_BYTES:
		r->bytes = (uint64_t)i;
		return 0;
	case F_SIZE:
		r->size = (uint64_t)i;
		return 0;
	default:
		return -EINVAL;
	}
}

static int parse_json(const char *s, size_t len, struct stats_record *r)
{
	char stack[1024] = ""; /* zeroed: gcc cannot see the copy fill it */
	char *marked = stack;
	unsigned seen = 0;
	size_t n;
	const char *key;
	json_t *root, *v;
	int rc = 0;

	if (2 * len > sizeof(stack)) {
		marked = calloc(2, len);
		if (marked == NULL)
			return -ENOMEM;
	}
	n = mark_byte_escapes(s, len, marked);
	root = json_loadb(marked, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  NULL);
	if (marked != stack)
		free(marked);
	if (!json_is_object(root)) {
		json_decref(root);
		return -EINVAL;
	}
	json_object_foreach(root, key, v) {
		enum field f = field_lookup(key, strlen(key));

		if (f == F_COUNT)
			continue;
		seen |= 1u << f;
		rc = json_field(v, r, f);
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc == 0 && seen != ALL_FIELDS)
		rc = -EINVAL;
	return rc;
}

int stats_parse_line(const char *line, size_t len, struct stats_record *out)
{
	size_t i = 0;
	int rc;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	while (i < len && is_blank(line[i]))
		i++;
	memset(out, 0, sizeof(*out));
	if (i < len && line[i] == '{')
		rc = parse_json(line + i, len - i, out);
	else
		rc = parse_text(line + i, len - i, out);
	/* Running out of memory for a long path is not the line's fault, but
	 * the line is skipped all the same; the reader must not stop. */
	return rc < 0 ? -EINVAL : 0;
}


/* -- reading a log --------------------------------------------------------- */

static bool blank_line(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_blank(s[i]) && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

int stats_read(struct stats *s, FILE *in, const char *name)
{
	struct stats_record *rec = malloc(sizeof(*rec));
	char *line = NULL;
	size_t cap = 0;
	uint64_t lineno = 0;
	ssize_t n;
	int rc = 0;

	if (rec == NULL)
		return -ENOMEM;
	for (;;) {
		errno = 0;
		n = getline(&line, &cap, in);
		if (n < 0)
			break;
		lineno++;
		if (blank_line(line, (size_t)n))
			continue;
		if (stats_parse_line(line, (size_t)n, rec) < 0) {
			if (s->malformed < STATS_MALFORMED_SHOWN) {
				s->malformed_at[s->malformed].name = name;
				s->malformed_at[s->malformed].line = lineno;
			}
			s->malformed++;
			continue;
		}
		if (stats_add(s, rec) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (ferror(in))
		rc = errno != 0 ? -errno : -EIO;
out:
	free(line);
	free(rec);
	return rc;
}
