/* `ferry stats`: the transfer-log reader (see stats.h for what it reports
 * and the definitions behind each number).
 *
 * The file goes from the bytes up: times, numbers, the two line formats (the
 * text one and a small JSON object scanner), the accumulator, the report, the
 * SVG plot, and last the thin stats_main that opens files and picks the exit
 * code.
 *
 * Everything a log line holds is untrusted: strings are decoded into fixed
 * buffers with their lengths checked, and whatever is printed back (paths,
 * mode names) is printed percent-encoded as in the text log, so no byte of a
 * log can reach a terminal or the SVG as a control character or markup. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/protocol.h"
#include "client/stats.h"

#define MS_PER_S INT64_C(1000)
#define MS_PER_DAY (INT64_C(86400) * MS_PER_S)

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
	*ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * MS_PER_S +
	      (int64_t)sec * MS_PER_S + frac_ms;
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
	*ms = sec * MS_PER_S + frac_ms;
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

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Breaks epoch milliseconds into UTC fields. */
static void utc_fields(int64_t ms, struct tm *tm, int *msec)
{
	time_t sec = (time_t)floor_div(ms, MS_PER_S);

	*msec = (int)(ms - (int64_t)sec * MS_PER_S);
	if (gmtime_r(&sec, tm) == NULL)
		memset(tm, 0, sizeof(*tm));
}

/* "2026-11-24T10:00:00.123Z", as the log writes it. */
static void format_time(int64_t ms, char *buf, size_t cap)
{
	struct tm tm;
	int msec;

	utc_fields(ms, &tm, &msec);
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

/* -- the string index ------------------------------------------------------ */

/* FNV-1a, 64 bits. */
static uint64_t hash_string(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static struct stats_slot *index_slot(const struct stats_index *ix,
				     const char *key)
{
	size_t i = (size_t)hash_string(key) & (ix->cap - 1);

	while (ix->slots[i].key != NULL && strcmp(ix->slots[i].key, key) != 0)
		i = (i + 1) & (ix->cap - 1);
	return &ix->slots[i];
}

static int index_grow(struct stats_index *ix)
{
	size_t cap = ix->cap == 0 ? 64 : ix->cap * 2;
	struct stats_index bigger = { calloc(cap, sizeof(struct stats_slot)),
				      cap, ix->used };
	size_t i;

	if (bigger.slots == NULL)
		return -ENOMEM;
	for (i = 0; i < ix->cap; i++)
		if (ix->slots[i].key != NULL)
			*index_slot(&bigger, ix->slots[i].key) = ix->slots[i];
	free(ix->slots);
	*ix = bigger;
	return 0;
}

/* Finds KEY, or adds it with value NEXT. *SLOT gets its slot (valid until
 * the next insertion). Returns 0 found, 1 added, -ENOMEM. */
static int index_get(struct stats_index *ix, const char *key, size_t next,
		     struct stats_slot **slot)
{
	struct stats_slot *sl;

	/* At most half full keeps the probes short. */
	if ((ix->used + 1) * 2 > ix->cap && index_grow(ix) < 0)
		return -ENOMEM;
	sl = index_slot(ix, key);
	*slot = sl;
	if (sl->key != NULL)
		return 0;
	sl->key = strdup(key);
	if (sl->key == NULL)
		return -ENOMEM;
	sl->value = next;
	ix->used++;
	return 1;
}

static void index_free(struct stats_index *ix)
{
	size_t i;

	for (i = 0; i < ix->cap; i++)
		free(ix->slots[i].key);
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

/* -- the accumulator ------------------------------------------------------ */

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->since_ms = INT64_MIN;
	s->until_ms = INT64_MAX;
}

void stats_free(struct stats *s)
{
	size_t i;

	for (i = 0; i < s->nmodes; i++) {
		free(s->modes[i].rates);
		free(s->modes[i].points);
	}
	free(s->modes);
	free(s->paths);
	index_free(&s->mode_index);
	index_free(&s->path_index);
	stats_init(s);
}

/* Makes room for one more of ELEM bytes in *ARR of *CAP. */
static int reserve(void **arr, size_t *cap, size_t used, size_t elem)
{
	size_t n;
	void *p;

	if (used < *cap)
		return 0;
	n = *cap == 0 ? 16 : *cap * 2;
	p = realloc(*arr, n * elem);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static struct stats_mode *mode_get(struct stats *s, const char *name)
{
	struct stats_slot *slot;
	struct stats_mode *m;
	void *arr = s->modes;
	int rc;

	/* Through a void * of its own, as a struct stats_mode ** is not one. */
	if (reserve(&arr, &s->modes_cap, s->nmodes, sizeof(*s->modes)) < 0)
		return NULL;
	s->modes = arr;
	rc = index_get(&s->mode_index, name, s->nmodes, &slot);
	if (rc < 0)
		return NULL;
	if (rc == 0)
		return &s->modes[slot->value];
	m = &s->modes[s->nmodes++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	return m;
}

static int add_sample(struct stats_mode *m, int64_t time_ms, double rate)
{
	if (m->samples == m->cap) {
		size_t n = m->cap == 0 ? 16 : m->cap * 2;
		double *rates = realloc(m->rates, n * sizeof(*rates));
		struct stats_point *points;

		if (rates == NULL)
			return -ENOMEM;
		m->rates = rates;
		points = realloc(m->points, n * sizeof(*points));
		if (points == NULL)
			return -ENOMEM;
		m->points = points;
		m->cap = n;
	}
	m->rates[m->samples] = rate;
	m->points[m->samples].time_ms = time_ms;
	m->points[m->samples].mib_per_s = rate;
	m->samples++;
	return 0;
}

int stats_add(struct stats *s, const struct stats_record *r)
{
	struct stats_mode *m;

	if (r->time_ms < s->since_ms || r->time_ms >= s->until_ms) {
		s->outside++;
		return 0;
	}
	m = mode_get(s, r->mode);
	if (m == NULL)
		return -ENOMEM;
	if (r->status == 200 && r->bytes > 0 &&
	    add_sample(m, r->time_ms, r->mib_per_s) < 0)
		return -ENOMEM;
	/* Paths that never sent a byte cannot be among the top paths; leaving
	 * them out keeps a log full of 404 probes from filling memory. */
	if (r->bytes > 0) {
		struct stats_slot *slot;
		void *arr = s->paths;
		int rc;

		if (reserve(&arr, &s->paths_cap, s->npaths,
			    sizeof(*s->paths)) < 0)
			return -ENOMEM;
		s->paths = arr;
		rc = index_get(&s->path_index, r->path, s->npaths, &slot);
		if (rc < 0)
			return -ENOMEM;
		if (rc == 1) {
			s->paths[s->npaths].path = slot->key;
			s->paths[s->npaths].bytes = 0;
			s->npaths++;
		}
		s->paths[slot->value].bytes =
			add_sat(s->paths[slot->value].bytes, r->bytes);
	}

	m->transfers++;
	m->bytes = add_sat(m->bytes, r->bytes);
	if (r->status >= 0 && r->status <= STATS_STATUS_MAX)
		s->status_count[r->status]++;
	if (s->transfers == 0 || r->time_ms < s->first_ms)
		s->first_ms = r->time_ms;
	if (s->transfers == 0 || r->time_ms > s->last_ms)
		s->last_ms = r->time_ms;
	s->transfers++;
	s->finished = false;
	return 1;
}

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

/* Report order: the daemon's modes as the README lists them, then any
 * others by name, and "-" (no request read) last. */
static int mode_rank(const char *name)
{
	if (strcmp(name, "sendfile") == 0)
		return 0;
	if (strcmp(name, "buffered") == 0)
		return 1;
	if (strcmp(name, "list") == 0)
		return 2;
	if (strcmp(name, "-") == 0)
		return 4;
	return 3;
}

static int cmp_mode(const void *a, const void *b)
{
	const struct stats_mode *x = a, *y = b;
	int rx = mode_rank(x->name), ry = mode_rank(y->name);

	if (rx != ry)
		return rx < ry ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_point(const void *a, const void *b)
{
	const struct stats_point *x = a, *y = b;

	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? -1 : 1;
	return cmp_double(&x->mib_per_s, &y->mib_per_s);
}

void stats_finish(struct stats *s)
{
	size_t i;

	if (s->finished)
		return;
	if (s->nmodes > 0)
		qsort(s->modes, s->nmodes, sizeof(*s->modes), cmp_mode);
	for (i = 0; i < s->nmodes; i++) {
		struct stats_mode *m = &s->modes[i];

		/* The index still points at the old places. */
		index_slot(&s->mode_index, m->name)->value = i;
		if (m->samples > 0) {
			qsort(m->rates, m->samples, sizeof(*m->rates),
			      cmp_double);
			qsort(m->points, m->samples, sizeof(*m->points),
			      cmp_point);
		}
	}
	s->finished = true;
}

struct stats_mode *stats_mode_find(const struct stats *s, const char *name)
{
	struct stats_slot *slot;

	if (s->mode_index.cap == 0)
		return NULL;
	slot = index_slot(&s->mode_index, name);
	return slot->key != NULL ? &s->modes[slot->value] : NULL;
}

double stats_percentile(const double *sorted, size_t n, double p)
{
	double exact;
	size_t rank;

	if (n == 0)
		return 0.0;
	/* rank = ceil(p / 100 * n), computed without libm; the 1e-9 keeps
	 * p95 of 20 samples at rank 19 despite 0.95 * 20 = 19.000000000000004.
	 */
	exact = p / 100.0 * (double)n - 1e-9;
	rank = exact <= 0 ? 1 : (size_t)exact + 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int cmp_path_total(const void *a, const void *b)
{
	const struct stats_path_total *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->path, y->path);
}

int stats_top_paths(const struct stats *s, struct stats_path_total *top,
		    size_t max)
{
	struct stats_path_total *all;
	size_t n;

	if (s->npaths == 0 || max == 0)
		return 0;
	all = malloc(s->npaths * sizeof(*all));
	if (all == NULL)
		return -ENOMEM;
	memcpy(all, s->paths, s->npaths * sizeof(*all));
	qsort(all, s->npaths, sizeof(*all), cmp_path_total);
	n = s->npaths < max ? s->npaths : max;
	memcpy(top, all, n * sizeof(*top));
	free(all);
	return (int)n;
}

/* -- the report ----------------------------------------------------------- */

void stats_format_bytes(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = { "B",   "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
		return;
	}
	/* Stop at the unit whose value, printed with one decimal, is below
	 * 1024: 1048575 bytes are "1.0 MiB", not "1024.0 KiB". */
	while (u + 1 < sizeof(units) / sizeof(units[0]) && v >= 1023.95) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* Writes S percent-encoded, as the text log would. */
static void put_encoded(FILE *out, const char *s)
{
	size_t len = strlen(s), need = proto_encode(s, len, NULL, 0);
	char stack[256];
	char *buf = need + 1 <= sizeof(stack) ? stack : malloc(need + 1);

	if (buf == NULL) {
		fputs("?", out);
		return;
	}
	proto_encode(s, len, buf, need);
	buf[need] = '\0';
	fputs(buf, out);
	if (buf != stack)
		free(buf);
}

/* Encodes S for a fixed-width column. */
static void encode_short(const char *s, char *buf, size_t cap)
{
	size_t n = proto_encode(s, strlen(s), buf, cap - 1);

	buf[n < cap ? n : cap - 1] = '\0';
}

static void put_rate(FILE *out, const struct stats_mode *m, double p)
{
	if (m->samples == 0)
		fprintf(out, " %11s", "-");
	else
		fprintf(out, " %11.2f",
			stats_percentile(m->rates, m->samples, p));
}

int stats_report(struct stats *s, FILE *out)
{
	struct stats_path_total top[STATS_TOP_PATHS];
	bool any = false;
	char buf[64];
	size_t i;
	int n;

	stats_finish(s);
	fprintf(out, "transfers: %" PRIu64 " (malformed lines: %" PRIu64,
		s->transfers, s->malformed);
	if (s->since_ms != INT64_MIN || s->until_ms != INT64_MAX)
		fprintf(out, ", outside the time range: %" PRIu64, s->outside);
	fputs(")\n", out);
	if (s->transfers > 0) {
		char last[32];

		format_time(s->first_ms, buf, sizeof(buf));
		format_time(s->last_ms, last, sizeof(last));
		fprintf(out, "period: %s .. %s\n", buf, last);
	}

	fprintf(out, "%-11s %9s %12s %11s %11s %11s\n", "mode", "transfers",
		"bytes", "p50_MiB/s", "p95_MiB/s", "max_MiB/s");
	for (i = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];
		char name[3 * STATS_MODE_MAX];

		encode_short(m->name, name, sizeof(name));
		stats_format_bytes(m->bytes, buf, sizeof(buf));
		fprintf(out, "%-11s %9" PRIu64 " %12s", name, m->transfers,
			buf);
		put_rate(out, m, 50);
		put_rate(out, m, 95);
		put_rate(out, m, 100);
		fputc('\n', out);
	}

	fputs("errors by status:", out);
	for (i = 0; i <= STATS_STATUS_MAX; i++) {
		if (i == 200 || s->status_count[i] == 0)
			continue;
		fprintf(out, "\n  %3zu %8" PRIu64, i, s->status_count[i]);
		any = true;
	}
	fputs(any ? "\n" : " none\n", out);

	n = stats_top_paths(s, top, STATS_TOP_PATHS);
	if (n < 0)
		return n;
	fputs(n == 0 ? "top paths by bytes: none\n" : "top paths by bytes:\n",
	      out);
	for (i = 0; i < (size_t)n; i++) {
		stats_format_bytes(top[i].bytes, buf, sizeof(buf));
		fprintf(out, "  %10s  ", buf);
		put_encoded(out, top[i].path);
		fputc('\n', out);
	}
	return ferror(out) ? -EIO : 0;
}

void stats_report_malformed(const struct stats *s, FILE *out,
			    const char *prefix)
{
	size_t i;

	for (i = 0; i < s->malformed && i < STATS_MALFORMED_SHOWN; i++)
		fprintf(out, "%s%s:%" PRIu64 ": malformed line\n", prefix,
			s->malformed_at[i].name, s->malformed_at[i].line);
	if (s->malformed > STATS_MALFORMED_SHOWN)
		fprintf(out, "%s%" PRIu64 " more malformed lines\n", prefix,
			s->malformed - STATS_MALFORMED_SHOWN);
}

/* -- the SVG plot -----------------------------------------------------------
 *
 * A fixed 800x440 canvas: the plot area, the MiB/s axis on the left, time
 * (UTC) below, the legend on the right. Each mode with completed transfers
 * is one <g class="series" data-mode="..." data-transfers="N"> holding a
 * polyline through its points in time order (when it has two or more) and
 * one circle per point: one per transfer up to SVG_MAX_POINTS, beyond that
 * one per pixel column (see series_points). */

#define SVG_W 800
#define SVG_H 440
#define PLOT_X0 70.0
#define PLOT_X1 620.0
#define PLOT_Y0 40.0
#define PLOT_Y1 370.0
#define SVG_MAX_POINTS 1000 /* per series; see series_points */

/* Fixed colours for the daemon's modes, so a plot reads the same whichever
 * modes it holds; other modes take the rest in turn. */
static const char *mode_colour(const char *name, size_t *next_other)
{
	static const char *const others[] = { "#d62728", "#9467bd",
					      "#8c564b", "#e377c2",
					      "#7f7f7f", "#17becf" };

	if (strcmp(name, "sendfile") == 0)
		return "#1f77b4";
	if (strcmp(name, "buffered") == 0)
		return "#ff7f0e";
	if (strcmp(name, "list") == 0)
		return "#2ca02c";
	return others[(*next_other)++ % (sizeof(others) / sizeof(others[0]))];
}

/* Writes S for XML text or an attribute value: percent-encoded as in the
 * log (so only printable ASCII is left), then the markup characters as
 * entities. */
static void put_xml(FILE *out, const char *s)
{
	size_t len = strlen(s), need = proto_encode(s, len, NULL, 0), i;
	char stack[256];
	char *buf = need + 1 <= sizeof(stack) ? stack : malloc(need + 1);

	if (buf == NULL) {
		fputs("?", out);
		return;
	}
	proto_encode(s, len, buf, need);
	for (i = 0; i < need; i++) {
		switch (buf[i]) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&apos;", out); break;
		default: fputc(buf[i], out); break;
		}
	}
	if (buf != stack)
		free(buf);
}

/* The smallest of 1, 2, 5 times a power of ten that is >= RAW (> 0); *DEC
 * gets the decimals its multiples need. */
static double nice_step(double raw, int *dec)
{
	double p = 1.0;
	int d = 0;

	while (p > raw) {
		p /= 10.0;
		d++;
	}
	while (p * 10.0 <= raw) {
		p *= 10.0;
		if (d > 0)
			d--;
	}
	*dec = d;
	if (p >= raw)
		return p;
	if (2 * p >= raw)
		return 2 * p;
	if (5 * p >= raw)
		return 5 * p;
	*dec = d > 0 ? d - 1 : 0;
	return 10 * p;
}

/* A time step giving at most six ticks over SPAN_MS. */
static int64_t time_step(int64_t span_ms)
{
	static const int64_t steps_ms[] = {
		1,	  2,	    5,	      10,	20,	   50,
		100,	  200,	    500,      1000,	2000,	   5000,
		10000,	  15000,    30000,    60000,	120000,	   300000,
		600000,	  900000,   1800000,  3600000,	7200000,   10800000,
		21600000, 43200000, 86400000, 172800000, 604800000,
		1209600000, 2592000000, 7776000000, 15552000000, 31536000000,
	};
	size_t i;

	for (i = 0; i < sizeof(steps_ms) / sizeof(steps_ms[0]); i++)
		if (span_ms / steps_ms[i] <= 5)
			return steps_ms[i];
	return (span_ms / 5 / MS_PER_DAY + 1) * MS_PER_DAY;
}

static void format_tick(int64_t ms, int64_t step, int64_t span, char *buf,
			size_t cap)
{
	struct tm tm;
	int msec;

	utc_fields(ms, &tm, &msec);
	if (step >= MS_PER_DAY)
		snprintf(buf, cap, "%04d-%02d-%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday);
	else if (span > MS_PER_DAY)
		snprintf(buf, cap, "%02d-%02d %02d:%02d", tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_hour, tm.tm_min);
	else if (step >= 60 * MS_PER_S)
		snprintf(buf, cap, "%02d:%02d", tm.tm_hour, tm.tm_min);
	else if (step >= MS_PER_S)
		snprintf(buf, cap, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
	else
		snprintf(buf, cap, "%02d:%02d:%02d.%03d", tm.tm_hour,
			 tm.tm_min, tm.tm_sec, msec);
}

/* The scales of one plot: where times and rates go on the canvas. */
struct plot {
	int64_t t0;	/* the left edge */
	int64_t span;	/* ms, > 0 */
	double ytop;	/* MiB/s at the top edge, > 0 */
	double ystep;	/* MiB/s between grid lines */
	size_t yticks;	/* grid lines above 0 */
	int decimals;	/* of the MiB/s tick labels */
	size_t points;	/* completed transfers in all series */
	bool reduced;	/* some series is shown per pixel column */
};

static double px(const struct plot *pl, int64_t ms)
{
	return PLOT_X0 +
	       (PLOT_X1 - PLOT_X0) * (double)(ms - pl->t0) / (double)pl->span;
}

/* Rates above the top (only a crafted line has them) stay on the frame. */
static double py(const struct plot *pl, double v)
{
	return PLOT_Y1 - (PLOT_Y1 - PLOT_Y0) * (v < pl->ytop ? v : pl->ytop) /
				 pl->ytop;
}

/* Fits the scales to the completed transfers of S (finished). */
static void plot_fit(const struct stats *s, struct plot *pl)
{
	int64_t t0 = INT64_MAX, t1 = INT64_MIN;
	double ymax = 0.0;
	size_t i;

	memset(pl, 0, sizeof(*pl));
	for (i = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];

		if (m->samples == 0)
			continue;
		pl->points += m->samples;
		if (m->samples > SVG_MAX_POINTS)
			pl->reduced = true;
		if (m->points[0].time_ms < t0)
			t0 = m->points[0].time_ms;
		if (m->points[m->samples - 1].time_ms > t1)
			t1 = m->points[m->samples - 1].time_ms;
		if (m->rates[m->samples - 1] > ymax)
			ymax = m->rates[m->samples - 1];
	}
	if (pl->points == 0) {
		t0 = 0;
		t1 = 60 * MS_PER_S;
	} else if (t0 == t1) {
		/* One instant: centre it in a minute. */
		t0 -= 30 * MS_PER_S;
		t1 += 30 * MS_PER_S;
	} else {
		/* A margin of 2 % keeps the first and last points off the
		 * frame. */
		int64_t pad = (t1 - t0) / 50 + 1;

		t0 -= pad;
		t1 += pad;
	}
	pl->t0 = t0;
	pl->span = t1 - t0;

	/* Logged rates have two decimals; a scale outside these bounds can
	 * only come from a crafted line, and would not print. */
	if (!(ymax > 1e-9))
		ymax = 1.0;
	if (ymax > 1e15)
		ymax = 1e15;
	pl->ystep = nice_step(ymax / 5.0, &pl->decimals);
	/* Whole steps up to 5 % above the largest value, so that no point
	 * sits on the frame. */
	for (pl->yticks = 1; (double)pl->yticks * pl->ystep < ymax * 1.05;
	     pl->yticks++)
		;
	pl->ytop = (double)pl->yticks * pl->ystep;
}

/* The frame, grid, ticks, axis titles and notes. */
static void svg_axes(FILE *out, const struct plot *pl)
{
	int64_t step, t, t1 = pl->t0 + pl->span;
	char buf[64];
	size_t k;

	fputs("<g class=\"axes\">\n", out);
	for (k = 0; k <= pl->yticks; k++) {
		double v = (double)k * pl->ystep, y = py(pl, v);

		fprintf(out,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#ddd\"/>\n",
			PLOT_X0, y, PLOT_X1, y);
		fprintf(out,
			"<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"end\">%.*f</text>\n",
			PLOT_X0 - 6, y + 4, pl->decimals, v);
	}
	if (pl->points > 0) {
		step = time_step(pl->span);
		for (t = (floor_div(pl->t0, step) + 1) * step; t < t1;
		     t += step) {
			double x = px(pl, t);

			format_tick(t, step, pl->span, buf, sizeof(buf));
			fprintf(out,
				"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
				"y2=\"%.1f\" stroke=\"#000\"/>\n",
				x, PLOT_Y1, x, PLOT_Y1 + 5);
			fprintf(out,
				"<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" "
				"text-anchor=\"middle\">%s</text>\n",
				x, PLOT_Y1 + 18, buf);
		}
	}
	fprintf(out,
		"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
		"fill=\"none\" stroke=\"#000\"/>\n",
		PLOT_X0, PLOT_Y0, PLOT_X1 - PLOT_X0, PLOT_Y1 - PLOT_Y0);
	fprintf(out,
		"<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" "
		"transform=\"rotate(-90 18 %.1f)\">MiB/s</text>\n",
		(PLOT_Y0 + PLOT_Y1) / 2, (PLOT_Y0 + PLOT_Y1) / 2);
	if (pl->points > 0) {
		format_time(pl->t0, buf, sizeof(buf));
		fprintf(out,
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
			"time (UTC) from %s</text>\n",
			(PLOT_X0 + PLOT_X1) / 2, PLOT_Y1 + 42, buf);
	} else {
		fprintf(out,
			"<text class=\"note\" x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"middle\">no completed transfers to "
			"plot</text>\n",
			(PLOT_X0 + PLOT_X1) / 2, (PLOT_Y0 + PLOT_Y1) / 2);
	}
	if (pl->reduced)
		fprintf(out,
			"<text class=\"note\" x=\"%.1f\" y=\"%d\" "
			"font-size=\"10\">series of more than %d transfers "
			"show the median of each pixel column</text>\n",
			PLOT_X0, SVG_H - 8, SVG_MAX_POINTS);
	fputs("</g>\n", out);
}

struct xy {
	double x;
	double y;
};

/* The canvas points of M's series: one per transfer, or, past
 * SVG_MAX_POINTS, one per pixel column holding the median (nearest rank) of
 * that column's transfers, since more points than pixels show nothing more
 * and make a file a browser chokes on. *OUT is the caller's to free. */
static int series_points(const struct stats_mode *m, const struct plot *pl,
			 struct xy **out, size_t *n)
{
	struct xy *xy = malloc(m->samples * sizeof(*xy));
	double *run = NULL;
	size_t i, j, k = 0;

	if (xy == NULL)
		return -ENOMEM;
	if (m->samples <= SVG_MAX_POINTS) {
		for (i = 0; i < m->samples; i++) {
			xy[i].x = px(pl, m->points[i].time_ms);
			xy[i].y = py(pl, m->points[i].mib_per_s);
		}
		*out = xy;
		*n = m->samples;
		return 0;
	}
	run = malloc(m->samples * sizeof(*run));
	if (run == NULL) {
		free(xy);
		return -ENOMEM;
	}
	/* The points are in time order, so a column's points are one run. */
	for (i = 0; i < m->samples; i = j) {
		long column = (long)px(pl, m->points[i].time_ms);

		for (j = i; j < m->samples &&
			    (long)px(pl, m->points[j].time_ms) == column;
		     j++)
			run[j - i] = m->points[j].mib_per_s;
		qsort(run, j - i, sizeof(*run), cmp_double);
		xy[k].x = (double)column + 0.5;
		xy[k].y = py(pl, stats_percentile(run, j - i, 50));
		k++;
	}
	free(run);
	*out = xy;
	*n = k;
	return 0;
}

/* One mode's group: a polyline through its points and a circle on each. */
static int svg_series(FILE *out, const struct stats_mode *m,
		      const struct plot *pl, const char *colour)
{
	struct xy *xy;
	size_t i, n;
	int rc;

	rc = series_points(m, pl, &xy, &n);
	if (rc < 0)
		return rc;
	fputs("<g class=\"series\" data-mode=\"", out);
	put_xml(out, m->name);
	fprintf(out,
		"\" data-transfers=\"%zu\" fill=\"%s\" stroke=\"%s\">\n",
		m->samples, colour, colour);
	fputs("<title>", out);
	put_xml(out, m->name);
	fputs("</title>\n", out);
	if (n > 1) {
		fputs("<polyline fill=\"none\" stroke-width=\"1.5\" points=\"",
		      out);
		for (i = 0; i < n; i++)
			fprintf(out, "%s%.1f,%.1f", i > 0 ? " " : "", xy[i].x,
				xy[i].y);
		fputs("\"/>\n", out);
	}
	for (i = 0; i < n; i++)
		fprintf(out,
			"<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
			"stroke=\"none\"/>\n",
			xy[i].x, xy[i].y);
	fputs("</g>\n", out);
	free(xy);
	return 0;
}

int stats_svg(struct stats *s, FILE *out)
{
	struct plot pl;
	size_t i, row, next_other;
	int rc;

	stats_finish(s);
	plot_fit(s, &pl);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n",
	      out);
	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\" font-size=\"12\">\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fputs("<title>ferry transfer throughput</title>\n", out);
	fprintf(out,
		"<desc>Throughput in MiB/s of each completed transfer "
		"(status 200, bytes &gt; 0) over time (UTC), one series per "
		"mode: %zu transfers.</desc>\n",
		pl.points);
	fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n",
		SVG_W, SVG_H);
	fprintf(out,
		"<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" "
		"font-size=\"15\">ferry transfer throughput</text>\n",
		(PLOT_X0 + PLOT_X1) / 2);
	svg_axes(out, &pl);

	next_other = 0;
	for (i = 0; i < s->nmodes; i++) {
		if (s->modes[i].samples == 0)
			continue;
		rc = svg_series(out, &s->modes[i], &pl,
				mode_colour(s->modes[i].name, &next_other));
		if (rc < 0)
			return rc;
	}

	/* The legend, in the same order and colours. */
	fputs("<g class=\"legend\">\n", out);
	next_other = 0;
	for (i = 0, row = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];
		double y = PLOT_Y0 + 10 + 20.0 * (double)row;

		if (m->samples == 0)
			continue;
		row++;
		fprintf(out,
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" "
			"height=\"12\" fill=\"%s\"/>\n",
			PLOT_X1 + 20, y - 10,
			mode_colour(m->name, &next_other));
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", PLOT_X1 + 38, y);
		put_xml(out, m->name);
		fprintf(out, " (%zu)</text>\n", m->samples);
	}
	fputs("</g>\n</svg>\n", out);
	return ferror(out) ? -EIO : 0;
}

/* -- the command ----------------------------------------------------------- */

#define STDIN_NAME "<stdin>"

static void usage(FILE *out)
{
	fputs("usage: ferry stats [--since TIME] [--until TIME] [--svg FILE] "
	      "[LOG...]\n"
	      "  TIME: 2026-11-24T10:00:00Z, 2026-11-24T10:00:00.123Z, "
	      "2026-11-24 or epoch seconds (UTC)\n",
	      out);
}

static void complain(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void complain(const char *fmt, ...)
{
	va_list ap;

	fputs("ferry stats: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Matches option NAME at ARGV[*I], as "--name VALUE" or "--name=VALUE".
 * Returns 1 with *VALUE set, 0 when ARGV[*I] is another option, -1 when the
 * value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name,
			const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

/* Reads one LOG ("-" for stdin). Returns 0, or the exit code. */
static int read_log(struct stats *s, const char *path)
{
	FILE *in = stdin;
	const char *name = STDIN_NAME;
	int rc;

	if (strcmp(path, "-") != 0) {
		in = fopen(path, "r");
		if (in == NULL) {
			complain("%s: %s", path, strerror(errno));
			return 3;
		}
		name = path;
	}
	rc = stats_read(s, in, name);
	if (in != stdin)
		fclose(in);
	if (rc == -ENOMEM) {
		complain("out of memory");
		return 1;
	}
	if (rc < 0) {
		complain("%s: %s", path, strerror(-rc));
		return 3;
	}
	return 0;
}

static int write_svg(struct stats *s, const char *path)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL) {
		complain("%s: %s", path, strerror(errno));
		return 1;
	}
	rc = stats_svg(s, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		complain("%s: %s", path, strerror(-rc));
		return 1;
	}
	return 0;
}

int stats_main(int argc, char **argv)
{
	const char *since = NULL, *until = NULL, *svg = NULL, *value;
	const char **logs;
	struct stats s;
	int i, nlogs = 0, rc = 2, read_rc;
	bool unread = false, options_done = false;

	logs = calloc((size_t)argc + 1, sizeof(*logs));
	if (logs == NULL) {
		complain("out of memory");
		return 1;
	}
	stats_init(&s);

	/* Options may come before or after the LOGs, until "--". */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int m;

		if (options_done || a[0] != '-' || a[1] == '\0') {
			logs[nlogs++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if ((m = option_value(argc, argv, &i, "--since", &value)) > 0)
			since = value;
		else if (m == 0 && (m = option_value(argc, argv, &i, "--until",
						     &value)) > 0)
			until = value;
		else if (m == 0 && (m = option_value(argc, argv, &i, "--svg",
						     &value)) > 0)
			svg = value;
		if (m != 1) {
			if (m < 0)
				complain("%s needs a value", a);
			else
				complain("unknown option %s", a);
			goto usage_error;
		}
	}

	if (since != NULL && stats_parse_time(since, &s.since_ms) < 0) {
		complain("--since %s: not a time", since);
		goto usage_error;
	}
	if (until != NULL && stats_parse_time(until, &s.until_ms) < 0) {
		complain("--until %s: not a time", until);
		goto usage_error;
	}
	if (s.since_ms >= s.until_ms) {
		complain("--since must be before --until");
		goto usage_error;
	}
	if (svg != NULL && svg[0] == '\0') {
		complain("--svg needs a file name");
		goto usage_error;
	}

	/* A LOG that cannot be read is reported and the others still are,
	 * as cat and wc do; the exit code says the report is incomplete. */
	if (nlogs == 0)
		logs[nlogs++] = "-";
	for (i = 0; i < nlogs; i++) {
		read_rc = read_log(&s, logs[i]);
		if (read_rc == 1) {
			rc = 1;
			goto out;
		}
		if (read_rc == 3)
			unread = true;
	}

	rc = 0;
	stats_report_malformed(&s, stderr, "ferry stats: ");
	if (stats_report(&s, stdout) < 0 || fflush(stdout) != 0) {
		complain("writing the report: %s", strerror(errno));
		rc = 1;
	}
	if (svg != NULL && write_svg(&s, svg) != 0)
		rc = 1;
	if (unread)
		rc = 3;
	goto out;

usage_error:
	usage(stderr);
	rc = 2;
out:
	stats_free(&s);
	free(logs);
	return rc;
}
