/* `ferry stats`, reading: the times (--since/--until and the log's own),
 * the two line formats (the text one and the JSON object), and the loop
 * that feeds a log's lines to the accumulator (see stats.h for the rules a
 * well-formed line follows).
 *
 * Everything a log line holds is untrusted: strings are decoded into fixed
 * buffers with their lengths checked. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Days from 1970-01-01 to Y-M-D (proleptic Gregorian, Y >= 1). Counting the
 * year from March puts the leap day at its end, so the days before a month
 * follow one formula, and whole 400-year cycles have a fixed length. */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t yy = m <= 2 ? y - 1 : y;
	int64_t cycle = yy / 400;
	int64_t year_of_cycle = yy - cycle * 400;
	int64_t month_from_march = m > 2 ? m - 3 : m + 9;
	int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
	int64_t day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 -
			       year_of_cycle / 100 + day_of_year;

	/* 719468 is the day of 1970-01-01 counted from 0000-03-01. */
	return cycle * 146097 + day_of_cycle - 719468;
}

/* Parses "YYYY-MM-DD" (when DATE_OK) or "YYYY-MM-DDTHH:MM:SS[.frac]Z", the
 * whole of the LEN bytes at S. */
static int parse_iso(const char *s, size_t len, bool date_ok, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
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
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * STATS_MS_PER_S +
	      (int64_t)sec * STATS_MS_PER_S + frac_ms;
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

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
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
 * A small scanner for the one flat object per line ferryd writes. Strings
 * and numbers are found and checked by their grammar; the values of keys that
 * stats does not know may be any JSON value, nested ones included, and are
 * skipped. */

struct cursor {
	const char *p;
	const char *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits at S. */
static int read_hex4(const char *s, const char *end, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	if (end - s < 4)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		int d = hex_digit(s[i]);

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

/* Scans a string whose opening quote is at the cursor; *RAW and *LEN get its
 * contents, escapes still in. Only the escape grammar is checked here. */
static int scan_string(struct cursor *c, const char **raw, size_t *len)
{
	const char *p = c->p + 1;
	uint32_t cp;

	*raw = p;
	while (p < c->end && *p != '"') {
		if ((unsigned char)*p < 0x20)
			return -EINVAL;
		if (*p != '\\') {
			p++;
			continue;
		}
		if (++p == c->end)
			return -EINVAL;
		if (*p == 'u') {
			if (read_hex4(p + 1, c->end, &cp) < 0)
				return -EINVAL;
			p += 5;
		} else if (strchr("\"\\/bfnrt", *p) != NULL && *p != '\0') {
			p++;
		} else {
			return -EINVAL;
		}
	}
	if (p == c->end)
		return -EINVAL;
	*len = (size_t)(p - *raw);
	c->p = p + 1;
	return 0;
}

/* Appends code point CP as UTF-8. */
static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Undoes the escapes of a string scanned by scan_string into OUT (CAP
 * bytes); *OUT_LEN gets the length. \u0000 and lone surrogates are refused;
 * \u0080..\u00ff are the raw byte, as translog.c writes invalid UTF-8. */
static int json_unescape(const char *raw, size_t len, char *out, size_t cap,
			 size_t *out_len)
{
	const char *p = raw, *end = raw + len;
	size_t n = 0;

	while (p < end) {
		char tmp[4];
		size_t k = 1;
		uint32_t cp, lo;

		if (*p != '\\') {
			tmp[0] = *p++;
		} else if (p[1] != 'u') {
			static const char from[] = "\"\\/bfnrt";
			static const char to[] = "\"\\/\b\f\n\r\t";

			tmp[0] = to[strchr(from, p[1]) - from];
			p += 2;
		} else {
			read_hex4(p + 2, end, &cp);
			p += 6;
			if (cp == 0)
				return -EINVAL;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' ||
				    p[1] != 'u' ||
				    read_hex4(p + 2, end, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -EINVAL;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
				k = put_utf8(tmp, cp);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return -EINVAL;
			} else if (cp <= 0xff) {
				tmp[0] = (char)cp;
			} else {
				k = put_utf8(tmp, cp);
			}
		}
		if (n + k >= cap)
			return -EINVAL;
		memcpy(out + n, tmp, k);
		n += k;
	}
	out[n] = '\0';
	*out_len = n;
	return 0;
}

/* Scans a number's characters; set_number checks their grammar for the
 * fields stats reads. */
static int scan_number(struct cursor *c, const char **raw, size_t *len)
{
	const char *p = c->p;

	while (p < c->end && (strchr("0123456789+-.eE", *p) != NULL) &&
	       *p != '\0')
		p++;
	if (p == c->p)
		return -EINVAL;
	*raw = c->p;
	*len = (size_t)(p - c->p);
	c->p = p;
	return 0;
}

/* Skips one JSON value of any kind. Nesting is tracked with a stack of the
 * closing brackets expected, so a truncated or mismatched value is refused;
 * commas and colons inside it are not checked. */
static int skip_value(struct cursor *c)
{
	char closers[32];
	size_t depth = 0;
	const char *raw;
	size_t len;

	do {
		skip_ws(c);
		if (c->p == c->end)
			return -EINVAL;
		switch (*c->p) {
		case '"':
			if (scan_string(c, &raw, &len) < 0)
				return -EINVAL;
			break;
		case '{':
		case '[':
			if (depth == sizeof(closers))
				return -EINVAL;
			closers[depth++] = *c->p == '{' ? '}' : ']';
			c->p++;
			break;
		case '}':
		case ']':
			if (depth == 0 || closers[depth - 1] != *c->p)
				return -EINVAL;
			depth--;
			c->p++;
			break;
		case ',':
		case ':':
			if (depth == 0)
				return -EINVAL;
			c->p++;
			break;
		default:
			if ((size_t)(c->end - c->p) >= 4 &&
			    (memcmp(c->p, "true", 4) == 0 ||
			     memcmp(c->p, "null", 4) == 0)) {
				c->p += 4;
			} else if ((size_t)(c->end - c->p) >= 5 &&
				   memcmp(c->p, "false", 5) == 0) {
				c->p += 5;
			} else if (scan_number(c, &raw, &len) < 0) {
				return -EINVAL;
			}
			break;
		}
	} while (depth > 0);
	return 0;
}

/* Reads one member's value for known field F. */
static int json_field(struct cursor *c, struct stats_record *r, enum field f)
{
	const char *raw;
	size_t len;

	if (field_is_string(f)) {
		char stack[256];
		char *buf = stack;
		size_t n;
		int rc;

		if (*c->p != '"' || scan_string(c, &raw, &len) < 0)
			return -EINVAL;
		if (len + 1 > sizeof(stack)) {
			buf = malloc(len + 1);
			if (buf == NULL)
				return -ENOMEM;
		}
		/* Unescaping never lengthens a string. */
		rc = json_unescape(raw, len, buf, len + 1, &n);
		if (rc == 0)
			rc = set_string(r, f, buf, n);
		if (buf != stack)
			free(buf);
		return rc;
	}
	if (scan_number(c, &raw, &len) < 0)
		return -EINVAL;
	return set_number(r, f, raw, len);
}

static int parse_json(const char *s, size_t len, struct stats_record *r)
{
	struct cursor c = { s, s + len };
	unsigned seen = 0;
	int rc;

	skip_ws(&c);
	if (c.p == c.end || *c.p != '{')
		return -EINVAL;
	c.p++;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
		goto end;
	}
	for (;;) {
		char key[32];
		const char *raw;
		size_t raw_len, key_len;
		enum field f = F_COUNT;

		skip_ws(&c);
		if (c.p == c.end || *c.p != '"' ||
		    scan_string(&c, &raw, &raw_len) < 0)
			return -EINVAL;
		/* A key longer than any stats knows is simply unknown. */
		if (json_unescape(raw, raw_len, key, sizeof(key), &key_len) ==
		    0)
			f = field_lookup(key, key_len);
		skip_ws(&c);
		if (c.p == c.end || *c.p != ':')
			return -EINVAL;
		c.p++;
		skip_ws(&c);
		if (c.p == c.end)
			return -EINVAL;
		if (f == F_COUNT) {
			rc = skip_value(&c);
		} else {
			rc = mark_seen(&seen, f);
			if (rc == 0)
				rc = json_field(&c, r, f);
		}
		if (rc < 0)
			return rc;
		skip_ws(&c);
		if (c.p == c.end)
			return -EINVAL;
		if (*c.p == '}') {
			c.p++;
			break;
		}
		if (*c.p != ',')
			return -EINVAL;
		c.p++;
	}
end:
	skip_ws(&c);
	if (c.p != c.end)
		return -EINVAL;
	return seen == ALL_FIELDS ? 0 : -EINVAL;
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
