/* Unit tests for the transfer log: exact text and JSON lines for fixed
 * records, the JSON lines against those the hand-written writer made, and the file handling (reopen for logrotate, failed reopen). */
#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "daemon/translog.h"

/* 2026-11-24T10:00:00.123Z */
#define T_SEC 1795514400
#define T_NSEC 123456789L

static struct transfer_record sample(void)
{
	struct transfer_record r = {
		.end = { T_SEC, T_NSEC },
		.client = "127.0.0.1:53422",
		.path = "/big.iso",
		.mode = "sendfile",
		.status = 200,
		.offset = 0,
		.bytes = 104857600,
		.size = 104857600,
		.duration_s = 0.143813,
		.error = NULL,
	};
	return r;
}

static char line[16384];

static const char *fmt(const struct transfer_record *r, enum log_format f)
{
	int n = translog_format(r, f, line, sizeof(line));

	ck_assert_int_eq(n, (int)strlen(line));
	return line;
}

/* -- text ------------------------------------------------------------- */

START_TEST(test_text_complete)
{
	struct transfer_record r = sample();

	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/big.iso mode=sendfile status=200 offset=0 "
			 "bytes=104857600 size=104857600 duration_s=0.1438 "
			 "mib_per_s=695.35\n");
}
END_TEST

START_TEST(test_text_error)
{
	struct transfer_record r = sample();

	r.status = 499;
	r.offset = 1048576;
	r.bytes = 1000;
	r.duration_s = 2.5;
	r.mode = "buffered";
	r.error = "client-gone";
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/big.iso mode=buffered status=499 "
			 "offset=1048576 bytes=1000 size=104857600 "
			 "duration_s=2.5000 mib_per_s=0.00 error=client-gone\n");
}
END_TEST

START_TEST(test_text_refused)
{
	struct transfer_record r = sample();

	r.client = "[::1]:40000";
	r.path = "-";
	r.mode = "-";
	r.status = 408;
	r.bytes = 0;
	r.size = 0;
	r.duration_s = 0.2001;
	r.error = "timeout";
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=[::1]:40000 path=- "
			 "mode=- status=408 offset=0 bytes=0 size=0 "
			 "duration_s=0.2001 mib_per_s=0.00 error=timeout\n");
}
END_TEST

START_TEST(test_text_path_encoded)
{
	struct transfer_record r = sample();

	r.path = "/a b\"c\nd%e\tf\xc3\xa9";
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/a%20b\"c%0Ad%25e%09f%C3%A9 mode=sendfile "
			 "status=200 offset=0 bytes=104857600 size=104857600 "
			 "duration_s=0.1438 mib_per_s=695.35\n");
}
END_TEST

START_TEST(test_text_zero_duration)
{
	struct transfer_record r = sample();

	r.duration_s = 0.0;
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/big.iso mode=sendfile status=200 offset=0 "
			 "bytes=104857600 size=104857600 duration_s=0.0000 "
			 "mib_per_s=0.00\n");
	/* A clock step backwards must not print a negative rate. */
	r.duration_s = -1.0;
	ck_assert_ptr_nonnull(strstr(fmt(&r, FERRY_LOG_TEXT),
				     " duration_s=0.0000 mib_per_s=0.00\n"));
}
END_TEST

START_TEST(test_text_zero_bytes)
{
	struct transfer_record r = sample();

	r.path = "/empty";
	r.bytes = 0;
	r.size = 0;
	r.duration_s = 0.0003;
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/empty mode=sendfile status=200 offset=0 "
			 "bytes=0 size=0 duration_s=0.0003 mib_per_s=0.00\n");
}
END_TEST

START_TEST(test_text_large_numbers)
{
	struct transfer_record r = sample();

	r.offset = 5368709120ULL - 1048576;
	r.bytes = 1048576;
	r.size = 5368709120ULL;
	r.duration_s = 0.5;
	r.end.tv_nsec = 0;
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.000Z client=127.0.0.1:53422 "
			 "path=/big.iso mode=sendfile status=200 "
			 "offset=5367660544 bytes=1048576 size=5368709120 "
			 "duration_s=0.5000 mib_per_s=2.00\n");
}
END_TEST

START_TEST(test_text_huge_numbers)
{
	struct transfer_record r = sample();

	/* The numbers' part is longer than the 128 bytes the writer once
	 * formatted it in, which cut the line at "mib_p". */
	r.offset = INT64_MAX;
	r.bytes = INT64_MAX;
	r.size = INT64_MAX;
	r.duration_s = 1234.5678;
	ck_assert_str_eq(fmt(&r, FERRY_LOG_TEXT),
			 "2026-11-24T10:00:00.123Z client=127.0.0.1:53422 "
			 "path=/big.iso mode=sendfile status=200 "
			 "offset=9223372036854775807 "
			 "bytes=9223372036854775807 "
			 "size=9223372036854775807 duration_s=1234.5678 "
			 "mib_per_s=7124835932.23\n");
}
END_TEST

/* -- JSON ------------------------------------------------------------- */

START_TEST(test_json_complete)
{
	struct transfer_record r = sample();

	ck_assert_str_eq(fmt(&r, FERRY_LOG_JSON),
			 "{\"time\":\"2026-11-24T10:00:00.123Z\","
			 "\"client\":\"127.0.0.1:53422\",\"path\":\"/big.iso\","
			 "\"mode\":\"sendfile\",\"status\":200,\"offset\":0,"
			 "\"bytes\":104857600,\"size\":104857600,"
			 "\"duration_s\":0.1438,\"mib_per_s\":695.35}\n");
}
END_TEST

/* The golden lines: what translog.c wrote, byte for byte, before JSON
 * went through jansson (captured from the hand-written writer). Where
 * jansson writes the same bytes the test says so and compares bytes; where
 * it cannot, it compares field for field (both lines parsed with jansson,
 * strings and integers equal, reals equal once rounded to the decimals the
 * log has: duration_s 4, mib_per_s 2). The fields that differ in bytes:
 *  - duration_s and mib_per_s when the old decimals end in zeros: jansson
 *    prints reals with %.15g, so 2.5000 is 2.5 and 0.00 is 0.0;
 *  - path with control bytes: jansson writes \n \t \b \f \r and uppercase
 *    \u001F where the old writer wrote \u000a and \u001f, and DEL as the
 *    byte itself, not \u007f (RFC 8259 does not ask for it escaped);
 *  - path with bytes that are not UTF-8: \u00E9, uppercase (the same
 *    escape). A path holding both valid UTF-8 above 0x7f and such bytes
 *    ("mixed") has every byte from 0x80 up escaped now (\u00C3\u00A9 for
 *    the valid "é" too): jansson cannot mix escaped and raw non-ASCII in one
 *    line, and ferry stats reads \u0080..\u00ff as the byte, so it reads the
 *    very same bytes; that case is checked through stats_parse_line in
 *    tests/client/check_stats.c (test_parse_translog_roundtrip), and here
 *    only that the line is what the new writer means it to be;
 *  - "huge": the old writer cut the numbers' part at 128 bytes and wrote a
 *    line that was not JSON at all ("mib_p}"); the new one is whole. */
struct golden {
	const char *name;
	struct transfer_record r;
	const char *old;   /* the old writer's line */
	bool same_bytes;   /* the new writer reproduces it byte for byte */
};

#define G_TIME "{\"time\":\"2026-11-24T10:00:00.123Z\","
#define G_CLIENT "\"client\":\"127.0.0.1:53422\","
#define G_REST_200                                                        \
	"\"mode\":\"sendfile\",\"status\":200,\"offset\":0,"               \
	"\"bytes\":104857600,\"size\":104857600,\"duration_s\":0.1438,"     \
	"\"mib_per_s\":695.35}\n"
/* A record ending at T_SEC.T_NSEC. */
#define G_RECORD(client_, path_, mode_, status_, offset_, bytes_, size_,   \
		 duration_s_, error_)                                      \
	{                                                                 \
		.end = { T_SEC, T_NSEC }, .client = client_, .path = path_, \
		.mode = mode_, .status = status_, .offset = offset_,       \
		.bytes = bytes_, .size = size_, .duration_s = duration_s_, \
		.error = error_                                            \
	}
/* The sample record with another path, or another size and duration. */
#define G_PATH(path_)                                                     \
	G_RECORD("127.0.0.1:53422", path_, "sendfile", 200, 0, 104857600, \
		 104857600, 0.143813, NULL)
#define G_SIZE(offset_, bytes_, size_, duration_s_)                       \
	G_RECORD("127.0.0.1:53422", "/big.iso", "sendfile", 200, offset_,  \
		 bytes_, size_, duration_s_, NULL)

static const struct golden goldens[] = {
	{ "plain", G_PATH("/big.iso"),
	  G_TIME G_CLIENT "\"path\":\"/big.iso\"," G_REST_200, true },
	{ "error",
	  G_RECORD("127.0.0.1:53422", "/big.iso", "buffered", 499, 1048576,
		   1000, 104857600, 2.5, "client-gone"),
	  G_TIME G_CLIENT "\"path\":\"/big.iso\",\"mode\":\"buffered\","
	  "\"status\":499,\"offset\":1048576,\"bytes\":1000,"
	  "\"size\":104857600,\"duration_s\":2.5000,\"mib_per_s\":0.00,"
	  "\"error\":\"client-gone\"}\n",
	  false },
	{ "spaces, quotes, backslash, percent",
	  G_PATH("/a b\"c\\d%20e"),
	  G_TIME G_CLIENT "\"path\":\"/a b\\\"c\\\\d%20e\"," G_REST_200, true },
	{ "control bytes", G_PATH("/c\x01\x1f\n\t\b\f\r\x7f"),
	  G_TIME G_CLIENT "\"path\":\"/c\\u0001\\u001f\\u000a\\u0009\\u0008"
	  "\\u000c\\u000d\\u007f\"," G_REST_200,
	  false },
	{ "not UTF-8", G_PATH("/lat\xe9\xff"),
	  G_TIME G_CLIENT "\"path\":\"/lat\\u00e9\\u00ff\"," G_REST_200, false },
	{ "UTF-8", G_PATH("/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
	  G_TIME G_CLIENT "\"path\":\"/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
	  G_REST_200, true },
	{ "huge",
	  G_SIZE(INT64_MAX, INT64_MAX, INT64_MAX, 1234.5678),
	  G_TIME G_CLIENT "\"path\":\"/big.iso\",\"mode\":\"sendfile\","
	  "\"status\":200,\"offset\":9223372036854775807,"
	  "\"bytes\":9223372036854775807,\"size\":9223372036854775807,"
	  "\"duration_s\":1234.5678,\"mib_p}\n",
	  false },
	{ "zero", G_SIZE(0, 0, 0, 0.0004),
	  G_TIME G_CLIENT "\"path\":\"/big.iso\",\"mode\":\"sendfile\","
	  "\"status\":200,\"offset\":0,\"bytes\":0,\"size\":0,"
	  "\"duration_s\":0.0004,\"mib_per_s\":0.00}\n",
	  false },
	{ "IPv6, refused",
	  G_RECORD("[2001:db8::1]:40000", "-", "-", 408, 0, 0, 0, 0.2001,
		   "timeout"),
	  G_TIME "\"client\":\"[2001:db8::1]:40000\",\"path\":\"-\","
	  "\"mode\":\"-\",\"status\":408,\"offset\":0,\"bytes\":0,\"size\":0,"
	  "\"duration_s\":0.2001,\"mib_per_s\":0.00,\"error\":\"timeout\"}\n",
	  false },
	{ "zero duration", G_SIZE(0, 104857600, 104857600, 0.0),
	  G_TIME G_CLIENT "\"path\":\"/big.iso\",\"mode\":\"sendfile\","
	  "\"status\":200,\"offset\":0,\"bytes\":104857600,"
	  "\"size\":104857600,\"duration_s\":0.0000,\"mib_per_s\":0.00}\n",
	  false },
};

/* Parses LINE with jansson; the test fails when it is not an object. */
static json_t *load(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(json_is_object(j), "not JSON (%s): %s", err.text, text);
	return j;
}

static double rounded(double v, int decimals)
{
	char text[400];

	snprintf(text, sizeof(text), "%.*f", decimals, v);
	return strtod(text, NULL);
}

/* OLD and NEW hold the same members in the same order, with equal values
 * (reals once rounded to the log's decimals). */
static void assert_same_fields(const char *name, const char *old,
			       const char *new)
{
	json_t *a = load(old), *b = load(new);
	void *ia = json_object_iter(a), *ib = json_object_iter(b);

	for (; ia != NULL && ib != NULL; ia = json_object_iter_next(a, ia),
					 ib = json_object_iter_next(b, ib)) {
		const char *key = json_object_iter_key(ia);
		json_t *va = json_object_iter_value(ia);
		json_t *vb = json_object_iter_value(ib);
		int decimals = strcmp(key, "duration_s") == 0 ? 4 : 2;

		ck_assert_str_eq(key, json_object_iter_key(ib));
		if (json_is_real(va) && json_is_real(vb))
			ck_assert_msg(rounded(json_real_value(va), decimals) ==
					      rounded(json_real_value(vb),
						      decimals),
				      "%s: %s differs", name, key);
		else
			ck_assert_msg(json_equal(va, vb), "%s: %s differs", name,
				      key);
	}
	ck_assert_msg(ia == NULL && ib == NULL, "%s: members differ", name);
	json_decref(a);
	json_decref(b);
}

START_TEST(test_json_golden)
{
	size_t i;

	for (i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		const struct golden *g = &goldens[i];
		const char *got = fmt(&g->r, FERRY_LOG_JSON);

		if (g->same_bytes) {
			ck_assert_str_eq(got, g->old);
		} else if (strcmp(g->name, "huge") == 0) {
			/* The old line was broken (see above); the new one
			 * is whole, and only the rate is new. */
			ck_assert_str_eq(got,
					 G_TIME G_CLIENT
					 "\"path\":\"/big.iso\","
					 "\"mode\":\"sendfile\",\"status\":200,"
					 "\"offset\":9223372036854775807,"
					 "\"bytes\":9223372036854775807,"
					 "\"size\":9223372036854775807,"
					 "\"duration_s\":1234.5678,"
					 "\"mib_per_s\":7124835932.23}\n");
		} else {
			ck_assert_str_ne(got, g->old);
			assert_same_fields(g->name, g->old, got);
		}
	}
}
END_TEST

START_TEST(test_json_not_utf8_mixed)
{
	struct transfer_record r = sample();
	const char *p;

	/* Valid "é" and a lone 0xff in one path: every byte from 0x80 up is
	 * \u00XX of the byte (the old writer kept the "é" raw), so a reader
	 * that takes \u0080..\u00ff as bytes, as ferry stats does, gets the
	 * path's bytes back. The other strings are ASCII and unchanged. */
	r.path = "/mix\xc3\xa9\xff";
	p = fmt(&r, FERRY_LOG_JSON);
	ck_assert_str_eq(p, G_TIME G_CLIENT
			 "\"path\":\"/mix\\u00C3\\u00A9\\u00FF\"," G_REST_200);
}
END_TEST

START_TEST(test_json_utf8)
{
	struct transfer_record r = sample();
	const char *p;

	/* Bytes outside a valid sequence become \u00XX of the byte: a stray
	 * continuation, a truncated sequence, an overlong '/', a surrogate,
	 * a lone 0xff. */
	r.path = "\x80|\xc3|\xc0\xaf|\xed\xa0\x80|\xff";
	p = strstr(fmt(&r, FERRY_LOG_JSON), "\"path\":");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(strncmp(p, "\"path\":\"\\u0080|\\u00C3|\\u00C0\\u00AF|"
				    "\\u00ED\\u00A0\\u0080|\\u00FF\",",
				 strlen("\"path\":\"\\u0080|\\u00C3|\\u00C0\\u00AF|"
					"\\u00ED\\u00A0\\u0080|\\u00FF\",")),
			 0);
}
END_TEST

/* -- buffer limits ---------------------------------------------------- */

/* The JSON reals are the text line's decimals: for durations and rates
 * all over the range, including ties at the last decimal (x.xxxx5), each
 * JSON value printed with the text's "%.4f"/"%.2f" gives the text's
 * digits. Both lines come from one record; the JSON one is read back by
 * jansson. */
START_TEST(test_json_reals_match_text)
{
	static const double fixed[] = {
		0.0, 0.00005, 0.00015, 0.00025, 0.12345, 0.99995, 1.00005,
		2.5, 1234.5678, 1234.56785, 0.1438, 86399.99995, 1e6 + 0.00005,
		5e9, 1e12 + 0.00005,
	};
	struct transfer_record r = {
		.client = "127.0.0.1:1", .path = "/f", .mode = "sendfile",
		.status = 200, .end = { 1764000000, 0 },
	};
	char text[1024], json[1024], want[64], got[64];
	unsigned seed = 12345;
	size_t i, n = sizeof(fixed) / sizeof(fixed[0]);

	for (i = 0; i < n + 20000; i++) {
		json_t *obj;
		json_error_t err;
		const char *d;

		if (i < n) {
			r.duration_s = fixed[i];
			r.bytes = 1048576;
		} else {
			seed = seed * 1103515245u + 12345u;
			r.duration_s = (double)(seed % 100000000u) / 1e4 /
				       (double)(1u << (seed >> 28));
			r.bytes = (uint64_t)seed * 37u;
		}
		translog_format(&r, FERRY_LOG_TEXT, text, sizeof(text));
		ck_assert_int_gt(translog_format(&r, FERRY_LOG_JSON, json,
						 sizeof(json)), 0);
		obj = json_loads(json, 0, &err);
		ck_assert_msg(obj != NULL, "%s: %s", json, err.text);
		d = strstr(text, "duration_s=");
		ck_assert_ptr_nonnull(d);
		ck_assert_int_eq(sscanf(d, "duration_s=%63s", want), 1);
		snprintf(got, sizeof(got), "%.4f",
			 json_number_value(json_object_get(obj, "duration_s")));
		ck_assert_msg(strcmp(want, got) == 0, "duration %.17g: text %s, json %s",
			      r.duration_s, want, got);
		d = strstr(text, "mib_per_s=");
		ck_assert_ptr_nonnull(d);
		ck_assert_int_eq(sscanf(d, "mib_per_s=%63s", want), 1);
		snprintf(got, sizeof(got), "%.2f",
			 json_number_value(json_object_get(obj, "mib_per_s")));
		ck_assert_msg(strcmp(want, got) == 0, "rate: text %s, json %s (%s)",
			      want, got, json);
		json_decref(obj);
	}
}
END_TEST

START_TEST(test_format_truncates_like_snprintf)
{
	static const enum log_format formats[] = { FERRY_LOG_TEXT,
						   FERRY_LOG_JSON };
	static const size_t caps[] = { 1, 20, 100 };
	struct transfer_record r = sample();
	char full[512], small[100];
	size_t i, k;
	int n;

	/* jansson writes the JSON line in pieces; what fits is still the
	 * line's prefix. */
	for (i = 0; i < 2; i++) {
		n = translog_format(&r, formats[i], full, sizeof(full));
		ck_assert_int_eq(translog_format(&r, formats[i], NULL, 0), n);
		for (k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
			ck_assert_int_eq(translog_format(&r, formats[i], small,
							 caps[k]),
					 n);
			ck_assert_uint_eq(strlen(small), caps[k] - 1);
			ck_assert_int_eq(strncmp(full, small, caps[k] - 1), 0);
		}
	}
}
END_TEST

/* -- the file --------------------------------------------------------- */

static char dir[64];
static char path_a[128];
static char path_b[128];

static void file_setup(void)
{
	strcpy(dir, "/tmp/check_translog.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path_a, sizeof(path_a), "%s/transfers.log", dir);
	snprintf(path_b, sizeof(path_b), "%s/transfers.log.1", dir);
}

static void file_teardown(void)
{
	translog_close();
	unlink(path_a);
	unlink(path_b);
	rmdir(dir);
}

/* Reads the whole file at PATH into a malloc'd string. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static struct transfer_record numbered(uint64_t n)
{
	struct transfer_record r = sample();

	r.bytes = n;
	return r;
}

static const char *expected(uint64_t n, enum log_format f)
{
	static char buf[2][1024];
	static int which;
	struct transfer_record r = numbered(n);

	which ^= 1;
	translog_format(&r, f, buf[which], sizeof(buf[which]));
	return buf[which];
}

START_TEST(test_open_write)
{
	struct transfer_record r1 = numbered(1), r2 = numbered(2);
	struct stat st;
	char *got, want[2048];

	umask(022);
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_JSON), 0);
	ck_assert_int_eq(translog_write(&r1), 0);
	ck_assert_int_eq(translog_write(&r2), 0);
	ck_assert_int_eq(stat(path_a, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);

	snprintf(want, sizeof(want), "%s%s", expected(1, FERRY_LOG_JSON),
		 expected(2, FERRY_LOG_JSON));
	got = slurp(path_a);
	ck_assert_str_eq(got, want);
	free(got);
}
END_TEST

START_TEST(test_open_appends)
{
	struct transfer_record r2 = numbered(2);
	char *got, want[2048];
	int fd;

	fd = open(path_a, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "old line\n", 9), 9);
	close(fd);

	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r2), 0);
	snprintf(want, sizeof(want), "old line\n%s",
		 expected(2, FERRY_LOG_TEXT));
	got = slurp(path_a);
	ck_assert_str_eq(got, want);
	free(got);
}
END_TEST

START_TEST(test_reopen_after_rename)
{
	struct transfer_record r1 = numbered(1), r2 = numbered(2);
	char *got;

	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r1), 0);
	/* What logrotate does: move the file away, then ask for a reopen. */
	ck_assert_int_eq(rename(path_a, path_b), 0);
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r2), 0);

	got = slurp(path_b);
	ck_assert_str_eq(got, expected(1, FERRY_LOG_TEXT));
	free(got);
	got = slurp(path_a);
	ck_assert_str_eq(got, expected(2, FERRY_LOG_TEXT));
	free(got);
}
END_TEST

START_TEST(test_reopen_switches_format)
{
	struct transfer_record r1 = numbered(1), r2 = numbered(2);
	char *got, want[2048];

	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r1), 0);
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_JSON), 0);
	ck_assert_int_eq(translog_write(&r2), 0);
	snprintf(want, sizeof(want), "%s%s", expected(1, FERRY_LOG_TEXT),
		 expected(2, FERRY_LOG_JSON));
	got = slurp(path_a);
	ck_assert_str_eq(got, want);
	free(got);
}
END_TEST

START_TEST(test_failed_open_keeps_old)
{
	struct transfer_record r1 = numbered(1), r2 = numbered(2);
	char *got, want[2048], bad[192];

	snprintf(bad, sizeof(bad), "%s/no/such/dir/transfers.log", dir);
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r1), 0);
	ck_assert_int_eq(translog_open(bad, FERRY_LOG_JSON), -ENOENT);
	/* The old file, in the old format, is still in use. */
	ck_assert_int_eq(translog_write(&r2), 0);
	snprintf(want, sizeof(want), "%s%s", expected(1, FERRY_LOG_TEXT),
		 expected(2, FERRY_LOG_TEXT));
	got = slurp(path_a);
	ck_assert_str_eq(got, want);
	free(got);
}
END_TEST

START_TEST(test_write_without_open)
{
	struct transfer_record r = sample();

	ck_assert_int_eq(translog_write(&r), -EBADF);
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	translog_close();
	ck_assert_int_eq(translog_write(&r), -EBADF);
}
END_TEST

START_TEST(test_stderr_is_never_closed)
{
	struct transfer_record r = sample();
	char buf[1024];
	int pipefd[2], saved;
	ssize_t n;

	/* Point fd 2 at a pipe so the line can be read back. */
	ck_assert_int_eq(pipe(pipefd), 0);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(pipefd[1], STDERR_FILENO), STDERR_FILENO);

	ck_assert_int_eq(translog_open("-", FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r), 0);
	n = read(pipefd[0], buf, sizeof(buf) - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, fmt(&r, FERRY_LOG_TEXT));

	/* Switching to a file, and closing, leave stderr open. */
	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_ne(fcntl(STDERR_FILENO, F_GETFD), -1);
	ck_assert_int_eq(translog_open("-", FERRY_LOG_TEXT), 0);
	translog_close();
	ck_assert_int_ne(fcntl(STDERR_FILENO, F_GETFD), -1);

	dup2(saved, STDERR_FILENO);
	close(saved);
	close(pipefd[0]);
	close(pipefd[1]);
}
END_TEST

START_TEST(test_long_line_written_whole)
{
	struct transfer_record r = sample();
	char *path, *want, *got;
	int n;

	/* 5000 spaces encode to 15000 bytes: past the stack buffer. */
	path = malloc(5002);
	ck_assert_ptr_nonnull(path);
	path[0] = '/';
	memset(path + 1, ' ', 5000);
	path[5001] = '\0';
	r.path = path;

	n = translog_format(&r, FERRY_LOG_TEXT, NULL, 0);
	ck_assert_int_gt(n, 15000);
	want = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(translog_format(&r, FERRY_LOG_TEXT, want,
					 (size_t)n + 1), n);

	ck_assert_int_eq(translog_open(path_a, FERRY_LOG_TEXT), 0);
	ck_assert_int_eq(translog_write(&r), 0);
	got = slurp(path_a);
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(strlen(got), (size_t)n);
	free(got);
	free(want);
	free(path);
}
END_TEST

static Suite *translog_suite(void)
{
	Suite *s = suite_create("translog");
	TCase *tc;

	tc = tcase_create("text");
	tcase_add_test(tc, test_text_complete);
	tcase_add_test(tc, test_text_error);
	tcase_add_test(tc, test_text_refused);
	tcase_add_test(tc, test_text_path_encoded);
	tcase_add_test(tc, test_text_zero_duration);
	tcase_add_test(tc, test_text_zero_bytes);
	tcase_add_test(tc, test_text_large_numbers);
	tcase_add_test(tc, test_text_huge_numbers);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, test_json_complete);
	tcase_add_test(tc, test_json_golden);
	tcase_add_test(tc, test_json_not_utf8_mixed);
	tcase_add_test(tc, test_json_utf8);
	tcase_add_test(tc, test_json_reals_match_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_format_truncates_like_snprintf);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, file_setup, file_teardown);
	tcase_add_test(tc, test_open_write);
	tcase_add_test(tc, test_open_appends);
	tcase_add_test(tc, test_reopen_after_rename);
	tcase_add_test(tc, test_reopen_switches_format);
	tcase_add_test(tc, test_failed_open_keeps_old);
	tcase_add_test(tc, test_write_without_open);
	tcase_add_test(tc, test_stderr_is_never_closed);
	tcase_add_test(tc, test_long_line_written_whole);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(translog_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
