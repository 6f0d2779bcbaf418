/* Unit tests for `ferry stats`: the line parser (text and JSON, against
 * lines translog_format writes), times and the --since/--until window, the
 * accumulator's numbers, the exact report, the SVG (well-formed XML, one
 * series per mode with its points), and stats_main end to end on files and
 * stdin. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/stats.h"
#include "daemon/translog.h"

/* 2026-11-24T10:00:00Z */
#define T_SEC 1795514400LL
#define T_MS (T_SEC * 1000)

#define README_LINE                                                           \
	"2026-11-24T10:00:00.123Z client=127.0.0.1:53422 path=/big.iso "      \
	"mode=sendfile status=200 offset=0 bytes=104857600 size=104857600 "   \
	"duration_s=0.1438 mib_per_s=695.33"

#define README_JSON "{" README_JSON_MEMBERS
#define README_JSON_MEMBERS                                                   \
	"\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"127.0.0.1:53422\"," \
	"\"path\":\"/big.iso\",\"mode\":\"sendfile\",\"status\":200,"            \
	"\"offset\":0,\"bytes\":104857600,\"size\":104857600,"                 \
	"\"duration_s\":0.1438,\"mib_per_s\":695.33}"

static struct stats_record rec;

static int parse(const char *line)
{
	return stats_parse_line(line, strlen(line), &rec);
}

static void assert_readme_record(void)
{
	ck_assert_int_eq(rec.time_ms, T_MS + 123);
	ck_assert_str_eq(rec.client, "127.0.0.1:53422");
	ck_assert_str_eq(rec.path, "/big.iso");
	ck_assert_str_eq(rec.mode, "sendfile");
	ck_assert_int_eq(rec.status, 200);
	ck_assert_uint_eq(rec.offset, 0);
	ck_assert_uint_eq(rec.bytes, 104857600);
	ck_assert_uint_eq(rec.size, 104857600);
	ck_assert_double_eq_tol(rec.duration_s, 0.1438, 1e-12);
	ck_assert_double_eq_tol(rec.mib_per_s, 695.33, 1e-9);
}

/* -- parse ---------------------------------------------------------------- */

START_TEST(test_parse_text)
{
	ck_assert_int_eq(parse(README_LINE), 0);
	assert_readme_record();
	ck_assert_int_eq(parse(README_LINE "\n"), 0);
	assert_readme_record();
	ck_assert_int_eq(parse(README_LINE "\r\n"), 0);
	assert_readme_record();
	/* An error token, and a key stats does not know, are ignored. */
	ck_assert_int_eq(parse(README_LINE " error=truncated later=1\n"), 0);
	assert_readme_record();
}
END_TEST

START_TEST(test_parse_text_encoded)
{
	ck_assert_int_eq(
		parse("2026-11-24T10:00:00.000Z client=%5B::1%5D:4000 "
		      "path=/a%20b%25c%0A%FF mode=buffered status=499 offset=7 "
		      "bytes=3 size=10 duration_s=1.5 mib_per_s=0.00 "
		      "error=client-gone"),
		0);
	ck_assert_str_eq(rec.client, "[::1]:4000");
	ck_assert_str_eq(rec.path, "/a b%c\n\xff");
	ck_assert_str_eq(rec.mode, "buffered");
	ck_assert_int_eq(rec.status, 499);
	ck_assert_uint_eq(rec.offset, 7);
	/* Bad escapes, and the NUL no path can hold. */
	ck_assert_int_eq(parse("2026-11-24T10:00:00.000Z client=x path=/a%zz "
			       "mode=list status=200 offset=0 bytes=0 size=0 "
			       "duration_s=0 mib_per_s=0"),
			 -EINVAL);
	ck_assert_int_eq(parse("2026-11-24T10:00:00.000Z client=x path=/a%00 "
			       "mode=list status=200 offset=0 bytes=0 size=0 "
			       "duration_s=0 mib_per_s=0"),
			 -EINVAL);
	ck_assert_int_eq(parse("2026-11-24T10:00:00.000Z client=x path=/a%4 "
			       "mode=list status=200 offset=0 bytes=0 size=0 "
			       "duration_s=0 mib_per_s=0"),
			 -EINVAL);
}
END_TEST

START_TEST(test_parse_json)
{
	ck_assert_int_eq(parse(README_JSON), 0);
	assert_readme_record();
	ck_assert_int_eq(parse("  " README_JSON " \r\n"), 0);
	assert_readme_record();

	/* Escapes: \u00XX above 0x7f is the raw byte (translog.c's way of
	 * writing bytes that are not UTF-8); other code points are UTF-8. */
	ck_assert_int_eq(
		parse("{\"time\":\"2026-11-24T10:00:00.000Z\",\"client\":\"c\","
		      "\"path\":\"\\/d\\\\x \\\"q\\\"\\t\\u00ff\\u00e9\\u20ac"
		      "\\ud83d\\ude00\",\"mode\":\"list\",\"status\":200,"
		      "\"offset\":0,\"bytes\":1,\"size\":1,\"duration_s\":1e-3,"
		      "\"mib_per_s\":0.5E1}"),
		0);
	ck_assert_str_eq(rec.path, "/d\\x \"q\"\t\xff\xe9\xe2\x82\xac"
				   "\xf0\x9f\x98\x80");
	ck_assert_double_eq_tol(rec.duration_s, 0.001, 1e-15);
	ck_assert_double_eq_tol(rec.mib_per_s, 5.0, 1e-15);
}
END_TEST

START_TEST(test_parse_json_extra_keys)
{
	/* Keys in any order, unknown keys with any value, spaces. */
	ck_assert_int_eq(
		parse("{ \"extra\" : {\"a\":[1,2,{\"b\":null}],\"c\":\"}\"} ,"
		      "\"mib_per_s\":695.33,\"duration_s\":0.1438,"
		      "\"size\":104857600,\"bytes\":104857600,\"offset\":0,"
		      "\"status\":200,\"flag\":true,\"off\":false,\"n\":null,"
		      "\"mode\":\"sendfile\",\"path\":\"/big.iso\","
		      "\"client\":\"127.0.0.1:53422\",\"list\":[],"
		      "\"time\":\"2026-11-24T10:00:00.123Z\","
		      "\"error\":\"not-found\",\"neg\":-1.5e3 }"),
		0);
	assert_readme_record();
	/* A key spelled with escapes is still the key. */
	ck_assert_int_eq(
		parse("{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":"
		      "\"127.0.0.1:53422\",\"p\\u0061th\":\"/big.iso\","
		      "\"mode\":\"sendfile\",\"status\":200,\"offset\":0,"
		      "\"bytes\":104857600,\"size\":104857600,"
		      "\"duration_s\":0.1438,\"mib_per_s\":695.33}"),
		0);
	assert_readme_record();
}
END_TEST

/* The README line's members with MORE (", ..." or "") added before the
 * closing brace, or its path replaced by PATH (a JSON string, quotes
 * included) when PATH is not NULL. */
static int parse_readme_json(const char *path, const char *more)
{
	char line[4096];

	snprintf(line, sizeof(line),
		 "{\"time\":\"2026-11-24T10:00:00.123Z\","
		 "\"client\":\"127.0.0.1:53422\",\"path\":%s,"
		 "\"mode\":\"sendfile\",\"status\":200,\"offset\":0,"
		 "\"bytes\":104857600,\"size\":104857600,\"duration_s\":0.1438,"
		 "\"mib_per_s\":695.33%s}",
		 path != NULL ? path : "\"/big.iso\"", more);
	return parse(line);
}

/* Since jansson reads the JSON lines, a line must be JSON through and
 * through; the hand-written reader before it checked only what it read.
 * These lines were accepted and are malformed now. */
START_TEST(test_parse_json_strict)
{
	static const char *const more[] = {
		/* An unknown key given twice (a known one always was
		 * refused). */
		",\"error\":\"a\",\"error\":\"b\"",
		/* Unknown values that are not JSON, which were skipped by
		 * their brackets only. */
		",\"x\":[1 2]",
		",\"x\":1-2",
		",\"x\":\"\\ud800\"",
		/* A key holding \u0000 (jansson takes no NUL in a key). */
		",\"k\\u0000\":1",
	};
	char deep[256];
	size_t i;

	for (i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		ck_assert_msg(parse_readme_json(NULL, more[i]) == -EINVAL,
			      "accepted: %s", more[i]);
	/* Raw bytes that are not UTF-8 (RFC 8259 asks for UTF-8; ferryd
	 * writes such bytes as \u00XX). */
	ck_assert_int_eq(parse_readme_json("\"/\xff\"", ""), -EINVAL);
	/* Integers past INT64_MAX (jansson's json_int_t; ferryd never writes
	 * them, sizes are off_t), and with leading zeros, which JSON has
	 * not. */
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\",\"path\":\"/\","
			       "\"mode\":\"list\",\"status\":200,\"offset\":0,"
			       "\"bytes\":18446744073709551615,\"size\":0,"
			       "\"duration_s\":0,\"mib_per_s\":0}"),
			 -EINVAL);
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\",\"path\":\"/\","
			       "\"mode\":\"list\",\"status\":200,\"offset\":0,"
			       "\"bytes\":007,\"size\":0,\"duration_s\":0,"
			       "\"mib_per_s\":0}"),
			 -EINVAL);
	/* An integer duration too large for json_int_t. */
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\",\"path\":\"/\","
			       "\"mode\":\"list\",\"status\":200,\"offset\":0,"
			       "\"bytes\":0,\"size\":0,"
			       "\"duration_s\":100000000000000000000,"
			       "\"mib_per_s\":0}"),
			 -EINVAL);

	/* And these were refused and are accepted now: unknown values nested
	 * deeper than 32 (jansson allows 2048), and a negative zero integer,
	 * which jansson reads as 0 ("-0.0" is still refused). */
	strcpy(deep, ",\"x\":");
	for (i = 0; i < 40; i++)
		strcat(deep, "[");
	for (i = 0; i < 40; i++)
		strcat(deep, "]");
	ck_assert_int_eq(parse_readme_json(NULL, deep), 0);
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\",\"path\":\"/\","
			       "\"mode\":\"list\",\"status\":200,\"offset\":-0,"
			       "\"bytes\":0,\"size\":0,\"duration_s\":-0,"
			       "\"mib_per_s\":0}"),
			 0);
	ck_assert_uint_eq(rec.offset, 0);
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\",\"path\":\"/\","
			       "\"mode\":\"list\",\"status\":200,\"offset\":0,"
			       "\"bytes\":0,\"size\":0,\"duration_s\":-0.0,"
			       "\"mib_per_s\":0}"),
			 -EINVAL);
}
END_TEST

/* \u0080..\u00ff are bytes wherever a string value holds them, and only
 * there: jansson decodes every escape, so the reader marks these before it
 * parses (stats_read.c); the marks must not leak. */
START_TEST(test_parse_json_byte_escapes)
{
	/* Raw "é" stays UTF-8 next to an escaped byte. */
	ck_assert_int_eq(parse_readme_json("\"/\xc3\xa9\\u00e9\\u00FF\"", ""), 0);
	ck_assert_str_eq(rec.path, "/\xc3\xa9\xe9\xff");
	/* An escaped backslash followed by "u00e9" is text, not an escape. */
	ck_assert_int_eq(parse_readme_json("\"/\\\\u00e9\"", ""), 0);
	ck_assert_str_eq(rec.path, "/\\u00e9");
	/* \u0100 and up are UTF-8 as before; \u007f is the byte 0x7f. */
	ck_assert_int_eq(parse_readme_json("\"/\\u0100\\u007f\"", ""), 0);
	ck_assert_str_eq(rec.path, "/\xc4\x80\x7f");
	/* \u0000 is refused after a byte escape as well. */
	ck_assert_int_eq(parse_readme_json("\"/\\u00e9\\u0000\"", ""), -EINVAL);
	/* In keys and in unknown values the escapes change nothing. */
	ck_assert_int_eq(parse_readme_json(NULL, ",\"\\u00e9\":\"\\u00e9\","
					   "\"y\":{\"\\u00ff\":[\"\\u0000\"]}"),
			 0);
	ck_assert_str_eq(rec.path, "/big.iso");
	/* Every string field follows the rule, not the path alone. */
	ck_assert_int_eq(parse("{\"time\":\"2026-11-24T10:00:00.123Z\","
			       "\"client\":\"c\\u00e9\",\"path\":\"/\","
			       "\"mode\":\"m\\u00ff\",\"status\":200,"
			       "\"offset\":0,\"bytes\":0,\"size\":0,"
			       "\"duration_s\":0,\"mib_per_s\":0}"),
			 0);
	ck_assert_str_eq(rec.client, "c\xe9");
	ck_assert_str_eq(rec.mode, "m\xff");
}
END_TEST

/* The README line without field F, in text and in JSON. */
static void without_field(int f, char *text, char *json)
{
	static const char *const text_fields[] = {
		"2026-11-24T10:00:00.123Z", "client=127.0.0.1:53422",
		"path=/big.iso",	    "mode=sendfile",
		"status=200",		    "offset=0",
		"bytes=104857600",	    "size=104857600",
		"duration_s=0.1438",	    "mib_per_s=695.33",
	};
	static const char *const json_fields[] = {
		"\"time\":\"2026-11-24T10:00:00.123Z\"",
		"\"client\":\"127.0.0.1:53422\"",
		"\"path\":\"/big.iso\"",
		"\"mode\":\"sendfile\"",
		"\"status\":200",
		"\"offset\":0",
		"\"bytes\":104857600",
		"\"size\":104857600",
		"\"duration_s\":0.1438",
		"\"mib_per_s\":695.33",
	};
	int i;

	text[0] = '\0';
	strcpy(json, "{");
	for (i = 0; i < 10; i++) {
		if (i == f)
			continue;
		if (text[0] != '\0')
			strcat(text, " ");
		strcat(text, text_fields[i]);
		if (json[1] != '\0')
			strcat(json, ",");
		strcat(json, json_fields[i]);
	}
	strcat(json, "}");
}

START_TEST(test_parse_missing_keys)
{
	char text[512], json[512];
	int f;

	without_field(-1, text, json);
	ck_assert_int_eq(parse(text), 0);
	ck_assert_int_eq(parse(json), 0);
	for (f = 0; f < 10; f++) {
		without_field(f, text, json);
		ck_assert_msg(parse(text) == -EINVAL, "text without %d", f);
		ck_assert_msg(parse(json) == -EINVAL, "JSON without %d", f);
	}
}
END_TEST

START_TEST(test_parse_duplicate_keys)
{
	ck_assert_int_eq(parse(README_LINE " status=404"), -EINVAL);
	ck_assert_int_eq(parse("{\"status\":404," README_JSON_MEMBERS),
			 -EINVAL);
	/* The same line without the duplicate is fine. */
	ck_assert_int_eq(parse("{\"other\":404," README_JSON_MEMBERS), 0);
}
END_TEST

START_TEST(test_parse_garbage)
{
	static const char *const bad[] = {
		"",
		"   ",
		"garbage",
		"{",
		"}",
		"[]",
		"{}",
		"null",
		"\"string\"",
		"2026-11-24T10:00:00.123Z",
		"ferryd[123]: listening on 127.0.0.1:7070",
		/* Wrong values. */
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=abc "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=99 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=1000 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=-1 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=18446744073709551616 size=0 duration_s=0 "
		"mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=nan mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=inf",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=1e999",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=-1",
		"2026-11-24T10:00:00.123Z client=c path= mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0 =x",
		"2026-11-24T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0 loose",
		"2026-02-30T10:00:00.123Z client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		"2026-11-24 client=c path=/ mode=list status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		/* A mode longer than any. */
		"2026-11-24T10:00:00.123Z client=c path=/ "
		"mode=abcdefghijklmnopqrstuvwxyz0123456789 status=200 "
		"offset=0 bytes=0 size=0 duration_s=0 mib_per_s=0",
		/* JSON with values of the wrong type. */
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":\"200\",\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0}",
		"{\"time\":1795514400,\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0}",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":1.5,\"size\":0,\"duration_s\":0,\"mib_per_s\":0}",
		/* Bad escapes, NUL, lone surrogate, trailing garbage. */
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\\x\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0}",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\\u0000\",\"mode\":\"list\",\"status\":200,"
		"\"offset\":0,\"bytes\":0,\"size\":0,\"duration_s\":0,"
		"\"mib_per_s\":0}",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\\ud800\",\"mode\":\"list\",\"status\":200,"
		"\"offset\":0,\"bytes\":0,\"size\":0,\"duration_s\":0,"
		"\"mib_per_s\":0}",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0} x",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0,}",
		"{\"time\":\"2026-11-24T10:00:00.123Z\",\"client\":\"c\","
		"\"path\":\"/\",\"mode\":\"list\",\"status\":200,\"offset\":0,"
		"\"bytes\":0,\"size\":0,\"duration_s\":0,\"mib_per_s\":0,"
		"\"x\":[1,2}}",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i]) == -EINVAL, "accepted: %s", bad[i]);
	/* Bytes after a NUL are not dropped. */
	ck_assert_int_eq(stats_parse_line(README_LINE "\0x",
					  sizeof(README_LINE) + 1, &rec),
			 -EINVAL);
}
END_TEST

START_TEST(test_parse_truncated_json)
{
	const char *line = README_JSON;
	size_t len = strlen(line), n;

	for (n = 0; n < len; n++)
		ck_assert_msg(stats_parse_line(line, n, &rec) == -EINVAL,
			      "accepted %zu bytes", n);
	ck_assert_int_eq(stats_parse_line(line, len, &rec), 0);
}
END_TEST

START_TEST(test_parse_long_path)
{
	size_t max = STATS_PATH_MAX - 1;
	char *line = malloc(max + 256);
	char *p;

	ck_assert_ptr_nonnull(line);
	strcpy(line, "2026-11-24T10:00:00.123Z client=c path=/");
	p = line + strlen(line);
	memset(p, 'a', max - 1);
	strcpy(p + max - 1, " mode=list status=200 offset=0 bytes=0 size=0 "
			    "duration_s=0 mib_per_s=0");
	ck_assert_int_eq(parse(line), 0);
	ck_assert_uint_eq(strlen(rec.path), max);

	memmove(p + 1, p, strlen(p) + 1);
	*p = 'b';
	ck_assert_int_eq(parse(line), -EINVAL);
	free(line);
}
END_TEST

/* Whatever translog_format writes, in either format, parses back. */
START_TEST(test_parse_translog_roundtrip)
{
	static const char *const paths[] = {
		"/big.iso", "/a b", "/tab\there", "/nl\nx", "/q\"b\\s",
		"/\xc3\xa9t\xc3\xa9", "/bad\xff\xc3", "/mix\xc3\xa9\xff", "-",
	};
	enum log_format formats[] = { FERRY_LOG_TEXT, FERRY_LOG_JSON };
	char line[8192];
	size_t i, k;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		for (k = 0; k < 2; k++) {
			struct transfer_record r = {
				.end = { T_SEC, 5000000L },
				.client = "[::1]:40000",
				.path = paths[i],
				.mode = "buffered",
				.status = 500,
				.offset = 12,
				.bytes = 1000,
				.size = 2000,
				.duration_s = 0.25,
				.error = "truncated",
			};

			translog_format(&r, formats[k], line, sizeof(line));
			ck_assert_msg(parse(line) == 0, "refused: %s", line);
			ck_assert_str_eq(rec.path, paths[i]);
			ck_assert_str_eq(rec.client, "[::1]:40000");
			ck_assert_str_eq(rec.mode, "buffered");
			ck_assert_int_eq(rec.time_ms, T_MS + 5);
			ck_assert_int_eq(rec.status, 500);
			ck_assert_uint_eq(rec.offset, 12);
			ck_assert_uint_eq(rec.bytes, 1000);
			ck_assert_uint_eq(rec.size, 2000);
			ck_assert_double_eq_tol(rec.duration_s, 0.25, 1e-12);
			ck_assert_double_eq_tol(rec.mib_per_s, 0.0, 1e-12);
		}
	}
}
END_TEST

/* -- since/until ---------------------------------------------------------- */

static int64_t time_of(const char *s)
{
	int64_t ms = -1;

	ck_assert_msg(stats_parse_time(s, &ms) == 0, "refused %s", s);
	return ms;
}

START_TEST(test_time_forms)
{
	ck_assert_int_eq(time_of("2026-11-24T10:00:00Z"), T_MS);
	ck_assert_int_eq(time_of("2026-11-24T10:00:00.123Z"), T_MS + 123);
	ck_assert_int_eq(time_of("2026-11-24T10:00:00.1Z"), T_MS + 100);
	ck_assert_int_eq(time_of("2026-11-24T10:00:00.123999Z"), T_MS + 123);
	ck_assert_int_eq(time_of("2026-11-24"), T_MS - 10 * 3600 * 1000);
	ck_assert_int_eq(time_of("1795514400"), T_MS);
	ck_assert_int_eq(time_of("1795514400.5"), T_MS + 500);
	ck_assert_int_eq(time_of("0"), 0);
	ck_assert_int_eq(time_of("1970-01-01"), 0);
	ck_assert_int_eq(time_of("2000-03-01T00:00:00Z"), 951868800000LL);
	ck_assert_int_eq(time_of("2024-02-29T23:59:59.999Z"),
			 1709251199999LL);
	ck_assert_int_eq(time_of("1969-12-31T23:59:59Z"), -1000);
}
END_TEST

START_TEST(test_time_bad)
{
	static const char *const bad[] = {
		"",
		"now",
		"2026-11-24T10:00:00",
		"2026-11-24T10:00Z",
		"2026-11-24T10:00:00.Z",
		"2026-11-24T10:00:00+01:00",
		"2026-11-24T24:00:00Z",
		"2026-11-24T10:60:00Z",
		"2026-11-24T10:00:60Z",
		"2026-13-01",
		"2026-00-01",
		"2026-11-31",
		"2023-02-29",
		"2026-11-24 10:00:00",
		"2026-11-24x",
		"26-11-24",
		"-5",
		"12x",
		"1.",
		"1e9",
		"99999999999999999",
	};
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(stats_parse_time(bad[i], &ms) == -EINVAL,
			      "accepted %s", bad[i]);
}
END_TEST

/* Every few days from 1970 to 2200 agree with gmtime. */
START_TEST(test_time_calendar)
{
	time_t t;

	for (t = 0; t < 7258118400; t += 3 * 86400 + 3661) {
		struct tm tm;
		char buf[64];

		gmtime_r(&t, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
		ck_assert_int_eq(time_of(buf), (int64_t)t * 1000);
	}
}
END_TEST

static struct stats_record make(int64_t time_ms, const char *path,
				const char *mode, int status, uint64_t bytes,
				double rate)
{
	struct stats_record r;

	memset(&r, 0, sizeof(r));
	r.time_ms = time_ms;
	snprintf(r.client, sizeof(r.client), "127.0.0.1:4000");
	snprintf(r.path, sizeof(r.path), "%s", path);
	snprintf(r.mode, sizeof(r.mode), "%s", mode);
	r.status = status;
	r.bytes = bytes;
	r.size = bytes;
	r.mib_per_s = rate;
	r.duration_s = 1.0;
	return r;
}

static void add(struct stats *s, int64_t time_ms, const char *path,
		const char *mode, int status, uint64_t bytes, double rate)
{
	struct stats_record r = make(time_ms, path, mode, status, bytes, rate);

	ck_assert_int_ge(stats_add(s, &r), 0);
}

START_TEST(test_window)
{
	struct stats s;
	struct stats_record r;

	stats_init(&s);
	s.since_ms = time_of("2026-11-24");
	s.until_ms = time_of("2026-11-25");
	r = make(s.since_ms - 1, "/a", "sendfile", 200, 1, 1.0);
	ck_assert_int_eq(stats_add(&s, &r), 0);
	r.time_ms = s.since_ms;
	ck_assert_int_eq(stats_add(&s, &r), 1);
	r.time_ms = s.until_ms - 1;
	ck_assert_int_eq(stats_add(&s, &r), 1);
	r.time_ms = s.until_ms;
	ck_assert_int_eq(stats_add(&s, &r), 0);
	ck_assert_uint_eq(s.transfers, 2);
	ck_assert_uint_eq(s.outside, 2);
	ck_assert_int_eq(s.first_ms, s.since_ms);
	ck_assert_int_eq(s.last_ms, s.until_ms - 1);
	stats_free(&s);
}
END_TEST

/* -- accumulate ----------------------------------------------------------- */

START_TEST(test_percentile)
{
	double four[] = { 1, 2, 3, 4 };
	double twenty[20];
	int i;

	for (i = 0; i < 20; i++)
		twenty[i] = i + 1;
	ck_assert_double_eq(stats_percentile(four, 0, 50), 0.0);
	ck_assert_double_eq(stats_percentile(four, 4, 50), 2.0);
	ck_assert_double_eq(stats_percentile(four, 4, 51), 3.0);
	ck_assert_double_eq(stats_percentile(four, 4, 95), 4.0);
	ck_assert_double_eq(stats_percentile(four, 4, 100), 4.0);
	ck_assert_double_eq(stats_percentile(four, 4, 0.1), 1.0);
	ck_assert_double_eq(stats_percentile(four, 1, 50), 1.0);
	ck_assert_double_eq(stats_percentile(twenty, 20, 50), 10.0);
	ck_assert_double_eq(stats_percentile(twenty, 20, 95), 19.0);
	ck_assert_double_eq(stats_percentile(twenty, 20, 100), 20.0);
}
END_TEST

START_TEST(test_accumulate_modes)
{
	struct stats s;
	struct stats_mode *m;
	int i;

	stats_init(&s);
	/* Rates 20, 19, ..., 1 for sendfile, in reverse to need sorting. */
	for (i = 20; i >= 1; i--)
		add(&s, T_MS + i, "/f", "sendfile", 200, 1000, i);
	/* Not throughput samples: errors, and 200 without bytes. */
	add(&s, T_MS, "/f", "sendfile", 499, 500, 9999);
	add(&s, T_MS, "/g", "sendfile", 200, 0, 0);
	add(&s, T_MS, "/h", "buffered", 404, 0, 0);
	add(&s, T_MS, "/h", "buffered", 200, 7, 0.5);
	add(&s, T_MS, "-", "-", 400, 0, 0);
	add(&s, T_MS, "/", "list", 200, 300, 0.01);
	add(&s, T_MS, "/z", "zeta", 200, 1, 1);
	add(&s, T_MS, "/a", "alpha", 200, 1, 1);
	stats_finish(&s);

	ck_assert_uint_eq(s.transfers, 28);
	ck_assert_uint_eq(s.nmodes, 6);
	ck_assert_str_eq(s.modes[0].name, "sendfile");
	ck_assert_str_eq(s.modes[1].name, "buffered");
	ck_assert_str_eq(s.modes[2].name, "list");
	ck_assert_str_eq(s.modes[3].name, "alpha");
	ck_assert_str_eq(s.modes[4].name, "zeta");
	ck_assert_str_eq(s.modes[5].name, "-");

	m = stats_mode_find(&s, "sendfile");
	ck_assert_ptr_eq(m, &s.modes[0]);
	ck_assert_uint_eq(m->transfers, 22);
	ck_assert_uint_eq(m->bytes, 20 * 1000 + 500);
	ck_assert_uint_eq(m->samples, 20);
	ck_assert_double_eq(stats_percentile(m->rates, m->samples, 50), 10.0);
	ck_assert_double_eq(stats_percentile(m->rates, m->samples, 95), 19.0);
	ck_assert_double_eq(stats_percentile(m->rates, m->samples, 100), 20.0);
	/* The points are in time order. */
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(m->points[i].time_ms, T_MS + i + 1);

	m = stats_mode_find(&s, "buffered");
	ck_assert_uint_eq(m->transfers, 2);
	ck_assert_uint_eq(m->bytes, 7);
	ck_assert_uint_eq(m->samples, 1);
	m = stats_mode_find(&s, "-");
	ck_assert_uint_eq(m->transfers, 1);
	ck_assert_uint_eq(m->samples, 0);
	ck_assert_ptr_null(stats_mode_find(&s, "nope"));

	/* Errors by status. */
	ck_assert_uint_eq(s.status_count[200], 25);
	ck_assert_uint_eq(s.status_count[400], 1);
	ck_assert_uint_eq(s.status_count[404], 1);
	ck_assert_uint_eq(s.status_count[499], 1);

	/* Adding after finish, and finishing again, keeps it consistent. */
	add(&s, T_MS, "/x", "buffered", 200, 1, 100);
	stats_finish(&s);
	ck_assert_uint_eq(stats_mode_find(&s, "buffered")->samples, 2);
	ck_assert_str_eq(s.modes[1].name, "buffered");
	stats_free(&s);
}
END_TEST

START_TEST(test_top_paths)
{
	struct stats_path_total top[STATS_TOP_PATHS + 5];
	struct stats s;
	char path[32];
	int i, n;

	stats_init(&s);
	/* /p00 .. /p11 with 100 .. 1200 bytes, each sent in two parts. */
	for (i = 0; i < 12; i++) {
		snprintf(path, sizeof(path), "/p%02d", i);
		add(&s, T_MS, path, "sendfile", 200, 50 * (i + 1), 1);
		add(&s, T_MS, path, "buffered", 499, 50 * (i + 1), 0);
	}
	/* Ties with /p08 (900 bytes) go by path. */
	add(&s, T_MS, "/tie-b", "sendfile", 200, 900, 1);
	add(&s, T_MS, "/tie-a", "sendfile", 200, 900, 1);
	/* Paths that sent nothing are not ranked. */
	add(&s, T_MS, "/missing", "sendfile", 404, 0, 0);

	n = stats_top_paths(&s, top, STATS_TOP_PATHS);
	ck_assert_int_eq(n, 10);
	ck_assert_str_eq(top[0].path, "/p11");
	ck_assert_uint_eq(top[0].bytes, 1200);
	ck_assert_str_eq(top[1].path, "/p10");
	ck_assert_str_eq(top[2].path, "/p09");
	ck_assert_str_eq(top[3].path, "/p08");
	ck_assert_uint_eq(top[3].bytes, 900);
	ck_assert_str_eq(top[4].path, "/tie-a");
	ck_assert_str_eq(top[5].path, "/tie-b");
	ck_assert_str_eq(top[6].path, "/p07");
	ck_assert_str_eq(top[9].path, "/p04");
	ck_assert_uint_eq(top[9].bytes, 500);

	n = stats_top_paths(&s, top, STATS_TOP_PATHS + 5);
	ck_assert_int_eq(n, 14);
	ck_assert_str_eq(top[13].path, "/p00");
	stats_free(&s);
}
END_TEST

/* Enough distinct paths and modes to make both indexes grow. */
START_TEST(test_many_paths)
{
	struct stats_path_total top[3];
	struct stats s;
	char path[32], mode[16];
	int i;

	stats_init(&s);
	for (i = 0; i < 5000; i++) {
		snprintf(path, sizeof(path), "/file/%d", i);
		snprintf(mode, sizeof(mode), "m%d", i % 100);
		add(&s, T_MS + i, path, mode, 200, (uint64_t)i + 1, 1);
		add(&s, T_MS + i, path, mode, 200, 1, 1);
	}
	ck_assert_uint_eq(s.npaths, 5000);
	ck_assert_uint_eq(s.nmodes, 100);
	ck_assert_int_eq(stats_top_paths(&s, top, 3), 3);
	ck_assert_str_eq(top[0].path, "/file/4999");
	ck_assert_uint_eq(top[0].bytes, 5001);
	ck_assert_str_eq(top[2].path, "/file/4997");
	stats_finish(&s);
	ck_assert_uint_eq(stats_mode_find(&s, "m7")->transfers, 100);
	ck_assert_str_eq(s.modes[0].name, "m0");
	ck_assert_str_eq(s.modes[1].name, "m1");
	ck_assert_str_eq(s.modes[2].name, "m10");
	stats_free(&s);
}
END_TEST

/* -- report --------------------------------------------------------------- */

/* The fixed input of the report and SVG tests: sendfile 4 transfers (3
 * complete), buffered 2 (1 complete), list 1, and one bad request. */
static void fill(struct stats *s)
{
	add(s, T_MS + 1000, "/big.iso", "sendfile", 200, 104857600, 695.33);
	add(s, T_MS + 2000, "/small", "buffered", 200, 102400, 20.0);
	add(s, T_MS + 3000, "/big.iso", "sendfile", 200, 104857600, 800.5);
	add(s, T_MS + 4000, "/nope", "buffered", 404, 0, 0);
	add(s, T_MS + 5000, "/small", "sendfile", 200, 102400, 50.25);
	add(s, T_MS + 6000, "/", "list", 200, 300, 0.01);
	add(s, T_MS + 7000, "-", "-", 400, 0, 0);
	add(s, T_MS + 8000, "/big.iso", "sendfile", 499, 52428800, 10.0);
}

static const char expected_report[] =
	"transfers: 8 (malformed lines: 0)\n"
	"period: 2026-11-24T10:00:01.000Z .. 2026-11-24T10:00:08.000Z\n"
	"mode        transfers        bytes   p50_MiB/s   p95_MiB/s   max_MiB/s\n"
	"sendfile            4    250.1 MiB      695.33      800.50      800.50\n"
	"buffered            2    100.0 KiB       20.00       20.00       20.00\n"
	"list                1        300 B        0.01        0.01        0.01\n"
	"-                   1          0 B           -           -           -\n"
	"errors by status:\n"
	"  400        1\n"
	"  404        1\n"
	"  499        1\n"
	"top paths by bytes:\n"
	"   250.0 MiB  /big.iso\n"
	"   200.0 KiB  /small\n"
	"       300 B  /\n";

static char *report_of(struct stats *s)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(stats_report(s, f), 0);
	fclose(f);
	return text;
}

START_TEST(test_report_exact)
{
	struct stats s;
	char *text;

	stats_init(&s);
	fill(&s);
	text = report_of(&s);
	ck_assert_str_eq(text, expected_report);
	free(text);
	stats_free(&s);
}
END_TEST

START_TEST(test_report_empty)
{
	struct stats s;
	char *text;

	stats_init(&s);
	s.malformed = 3;
	s.since_ms = T_MS;
	text = report_of(&s);
	ck_assert_str_eq(text,
			 "transfers: 0 (malformed lines: 3, outside the time "
			 "range: 0)\n"
			 "mode        transfers        bytes   p50_MiB/s   "
			 "p95_MiB/s   max_MiB/s\n"
			 "errors by status: none\n"
			 "top paths by bytes: none\n");
	free(text);
	stats_free(&s);
}
END_TEST

/* Paths and modes come out percent-encoded, so nothing in a log reaches the
 * terminal as a control character or breaks the columns. */
START_TEST(test_report_encodes)
{
	struct stats s;
	char *text;

	stats_init(&s);
	add(&s, T_MS, "/a b\n\x1b[2J", "we ird", 200, 10, 1.0);
	text = report_of(&s);
	ck_assert_ptr_nonnull(strstr(text, "\nwe%20ird            1"));
	ck_assert_ptr_nonnull(strstr(text, "  /a%20b%0A%1B[2J\n"));
	ck_assert_ptr_null(strchr(text, '\x1b'));
	free(text);
	stats_free(&s);
}
END_TEST

START_TEST(test_report_malformed)
{
	struct stats s;
	char *text = NULL, *log = NULL;
	size_t len = 0, log_len = 0;
	FILE *in, *out;
	int i;

	/* Line 1 good, then 12 bad lines with a blank one among them. */
	in = open_memstream(&log, &log_len);
	fprintf(in, "%s\n", README_LINE);
	for (i = 0; i < 12; i++)
		fprintf(in, "%sbad %d\n", i == 5 ? "\n" : "", i);
	fclose(in);

	stats_init(&s);
	in = fmemopen(log, log_len, "r");
	ck_assert_int_eq(stats_read(&s, in, "x.log"), 0);
	fclose(in);
	ck_assert_uint_eq(s.transfers, 1);
	ck_assert_uint_eq(s.malformed, 12);

	out = open_memstream(&text, &len);
	stats_report_malformed(&s, out, "P: ");
	fclose(out);
	ck_assert_str_eq(text, "P: x.log:2: malformed line\n"
			       "P: x.log:3: malformed line\n"
			       "P: x.log:4: malformed line\n"
			       "P: x.log:5: malformed line\n"
			       "P: x.log:6: malformed line\n"
			       "P: x.log:8: malformed line\n"
			       "P: x.log:9: malformed line\n"
			       "P: x.log:10: malformed line\n"
			       "P: x.log:11: malformed line\n"
			       "P: x.log:12: malformed line\n"
			       "P: 2 more malformed lines\n");
	free(text);
	free(log);
	stats_free(&s);
}
END_TEST

/* -- svg ------------------------------------------------------------------ */

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_stats.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* A small well-formedness check, for when xmllint is missing: tags nest and
 * close, attribute values are quoted, and every '&' starts an entity. Returns
 * NULL or what is wrong. */
static const char *xml_check(const char *s)
{
	const char *stack[64];
	size_t stack_len[64];
	int depth = 0, roots = 0;
	const char *p = s;

	while (*p != '\0') {
		if (*p == '&') {
			static const char *const ents[] = { "&amp;", "&lt;",
							    "&gt;", "&quot;",
							    "&apos;" };
			size_t i;

			for (i = 0; i < 5; i++)
				if (strncmp(p, ents[i], strlen(ents[i])) == 0)
					break;
			if (i == 5)
				return "bare &";
			p++;
			continue;
		}
		if (*p == '>')
			return "bare >";
		if (*p != '<') {
			if (depth == 0 && *p != '\n' && *p != ' ')
				return "text outside the root";
			p++;
			continue;
		}
		if (strncmp(p, "<?", 2) == 0) {
			p = strstr(p, "?>");
			if (p == NULL)
				return "unclosed <?";
			p += 2;
		} else if (strncmp(p, "<!--", 4) == 0) {
			p = strstr(p, "-->");
			if (p == NULL)
				return "unclosed comment";
			p += 3;
		} else if (p[1] == '/') {
			const char *name = p + 2;
			size_t n = strcspn(name, " >");

			if (depth == 0 || n != stack_len[depth - 1] ||
			    strncmp(name, stack[depth - 1], n) != 0)
				return "mismatched end tag";
			depth--;
			p = strchr(p, '>');
			if (p == NULL)
				return "unclosed end tag";
			p++;
		} else {
			const char *name = p + 1;
			size_t n = strcspn(name, " />\n");

			if (n == 0)
				return "empty tag name";
			p = name + n;
			/* Attributes: name="value" with no '<' inside. */
			for (;;) {
				while (*p == ' ' || *p == '\n')
					p++;
				if (*p == '>' || strncmp(p, "/>", 2) == 0)
					break;
				p += strcspn(p, "= >");
				if (*p != '=' || p[1] != '"')
					return "unquoted attribute";
				p += 2;
				while (*p != '"' && *p != '\0') {
					if (*p == '<')
						return "< in attribute";
					if (*p == '&' &&
					    strncmp(p, "&amp;", 5) != 0 &&
					    strncmp(p, "&lt;", 4) != 0 &&
					    strncmp(p, "&gt;", 4) != 0 &&
					    strncmp(p, "&quot;", 6) != 0 &&
					    strncmp(p, "&apos;", 6) != 0)
						return "bare & in attribute";
					p++;
				}
				if (*p != '"')
					return "unclosed attribute";
				p++;
			}
			if (depth == 0)
				roots++;
			if (*p == '>') {
				if (depth == 64)
					return "too deep";
				stack[depth] = name;
				stack_len[depth] = n;
				depth++;
				p++;
			} else {
				p += 2;
			}
		}
	}
	if (depth != 0)
		return "unclosed element";
	if (roots != 1)
		return "not one root element";
	return NULL;
}

/* The fallback checker itself catches what it is there for. */
START_TEST(test_xml_check)
{
	ck_assert_ptr_null(xml_check("<?xml version=\"1.0\"?>\n<a x=\"&lt;\">"
				     "<b/><c>t &amp; u</c></a>\n"));
	ck_assert_ptr_nonnull(xml_check("<a><b></a></b>"));
	ck_assert_ptr_nonnull(xml_check("<a><b></b>"));
	ck_assert_ptr_nonnull(xml_check("<a>&</a>"));
	ck_assert_ptr_nonnull(xml_check("<a x=\"<\"/>"));
	ck_assert_ptr_nonnull(xml_check("<a x=y/>"));
	ck_assert_ptr_nonnull(xml_check("<a/><b/>"));
	ck_assert_ptr_nonnull(xml_check("<a>1 > 0</a>"));
}
END_TEST

static void assert_well_formed(const char *path)
{
	char *svg = slurp(path);
	const char *why = xml_check(svg);
	char cmd[512];

	ck_assert_msg(why == NULL, "%s: %s", path, why);
	if (system("command -v xmllint >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
		ck_assert_msg(system(cmd) == 0, "xmllint refused %s", path);
	}
	ck_assert_ptr_nonnull(
		strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	ck_assert_ptr_nonnull(strstr(svg, " width=\"800\""));
	ck_assert_ptr_nonnull(strstr(svg, " viewBox=\"0 0 800 440\""));
	ck_assert_ptr_nonnull(strstr(svg, "<title>"));
	free(svg);
}

static int count(const char *s, const char *end, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what)) != NULL && (end == NULL || s < end)) {
		n++;
		s += strlen(what);
	}
	return n;
}

/* The number of series groups for MODE (asserted to be 1 when CIRCLES >= 0)
 * and that the group holds CIRCLES points. */
static void assert_series(const char *svg, const char *mode_attr,
			  int circles)
{
	char tag[128];
	const char *g, *end;

	snprintf(tag, sizeof(tag), "<g class=\"series\" data-mode=\"%s\"",
		 mode_attr);
	ck_assert_int_eq(count(svg, NULL, tag), 1);
	g = strstr(svg, tag);
	end = strstr(g, "</g>");
	ck_assert_ptr_nonnull(end);
	ck_assert_int_eq(count(g, end, "<circle "), circles);
	ck_assert_int_eq(count(g, end, "<polyline "), circles > 1 ? 1 : 0);
}

static char *svg_of(struct stats *s)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plot.svg", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(stats_svg(s, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	assert_well_formed(path);
	return slurp(path);
}

START_TEST(test_svg_series)
{
	struct stats s;
	char *svg;

	stats_init(&s);
	fill(&s);
	svg = svg_of(&s);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 3);
	assert_series(svg, "sendfile", 3);
	assert_series(svg, "buffered", 1);
	assert_series(svg, "list", 1);
	/* The legend names each mode, in its colour. */
	ck_assert_ptr_nonnull(strstr(svg, ">sendfile (3)</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">buffered (1)</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">list (1)</text>"));
	ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#1f77b4\""));
	ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#ff7f0e\""));
	ck_assert_ptr_nonnull(strstr(svg, "stroke=\"#2ca02c\""));
	/* Axes: 0 .. 1000 MiB/s by 200, times within one minute. */
	ck_assert_ptr_nonnull(strstr(svg, ">0</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">1000</text>"));
	ck_assert_ptr_nonnull(strstr(svg, ">10:00:05</text>"));
	ck_assert_ptr_nonnull(
		strstr(svg, "time (UTC) from 2026-11-24T10:00:00.899Z"));
	ck_assert_ptr_nonnull(strstr(svg, ">MiB/s</text>"));
	free(svg);
	stats_free(&s);
}
END_TEST

START_TEST(test_svg_empty)
{
	struct stats s;
	char *svg;

	stats_init(&s);
	add(&s, T_MS, "/nope", "sendfile", 404, 0, 0);
	svg = svg_of(&s);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 0);
	ck_assert_ptr_nonnull(strstr(svg, "no completed transfers"));
	free(svg);
	stats_free(&s);

	stats_init(&s);
	svg = svg_of(&s);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 0);
	free(svg);
	stats_free(&s);
}
END_TEST

START_TEST(test_svg_one_point)
{
	struct stats s;
	char *svg;

	stats_init(&s);
	add(&s, T_MS, "/a", "buffered", 200, 10, 0.004);
	svg = svg_of(&s);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 1);
	assert_series(svg, "buffered", 1);
	/* The point is in the middle of the time axis. */
	ck_assert_ptr_nonnull(strstr(svg, "<circle cx=\"345.0\""));
	ck_assert_ptr_nonnull(strstr(svg, ">0.005</text>"));
	free(svg);
	stats_free(&s);
}
END_TEST

/* Past 1000 points a series holds one median per pixel column, and says
 * how many transfers it stands for. */
START_TEST(test_svg_many_points)
{
	struct stats s;
	char *svg;
	const char *g, *end;
	int i, circles;

	stats_init(&s);
	for (i = 0; i < 20000; i++)
		add(&s, T_MS + i * 100LL, "/a", "sendfile", 200, 10,
		    i % 2 ? 100 : 300);
	for (i = 0; i < 1000; i++)
		add(&s, T_MS + i * 2000LL, "/b", "buffered", 200, 10, 50);
	svg = svg_of(&s);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 2);
	assert_series(svg, "buffered", 1000);
	g = strstr(svg, "<g class=\"series\" data-mode=\"sendfile\" "
			"data-transfers=\"20000\"");
	ck_assert_ptr_nonnull(g);
	end = strstr(g, "</g>");
	circles = count(g, end, "<circle ");
	ck_assert_int_ge(circles, 500);
	ck_assert_int_le(circles, 551);
	ck_assert_ptr_nonnull(strstr(svg, "median of each pixel column"));
	ck_assert_uint_lt(strlen(svg), 200000);
	free(svg);
	stats_free(&s);
}
END_TEST

/* A mode name full of markup stays text. */
START_TEST(test_svg_escapes)
{
	struct stats s;
	char *svg;

	stats_init(&s);
	add(&s, T_MS, "/a", "a<b&\"c'>", 200, 10, 1);
	add(&s, T_MS + 86400000LL * 3, "/a", "a<b&\"c'>", 200, 10, 2);
	add(&s, T_MS, "/a", "x y\n", 200, 10, 1);
	svg = svg_of(&s);
	assert_series(svg, "a&lt;b&amp;&quot;c&apos;&gt;", 2);
	assert_series(svg, "x%20y%0A", 1);
	/* Several days: ticks are dates. */
	ck_assert_ptr_nonnull(strstr(svg, ">2026-11-25</text>"));
	free(svg);
	stats_free(&s);
}
END_TEST

/* -- stats_main ------------------------------------------------------------ */

struct run {
	int rc;
	char *out;
	char *err;
};

/* Runs stats_main on ARGS (NULL-terminated, "stats" first) with stdin from
 * STDIN_PATH (NULL: /dev/null), catching stdout and stderr. */
static struct run run_stats(const char *stdin_path, ...)
{
	char *argv[16];
	char out_path[128], err_path[128];
	int argc = 0, saved[3], fd;
	struct run r;
	va_list ap;

	va_start(ap, stdin_path);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);

	snprintf(out_path, sizeof(out_path), "%s/stdout", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", tmpdir);
	fflush(stdout);
	fflush(stderr);
	saved[0] = dup(0);
	saved[1] = dup(1);
	saved[2] = dup(2);
	fd = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 0);
	close(fd);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	close(fd);
	fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	close(fd);
	clearerr(stdin);

	r.rc = stats_main(argc, argv);

	fflush(stdout);
	fflush(stderr);
	clearerr(stdin);
	dup2(saved[0], 0);
	dup2(saved[1], 1);
	dup2(saved[2], 2);
	close(saved[0]);
	close(saved[1]);
	close(saved[2]);
	r.out = slurp(out_path);
	r.err = slurp(err_path);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static char log_a[128], log_b[128], svg_path[128];

/* log_a: the fixed transfers of fill(), in text and JSON, with two malformed
 * lines and a blank one; log_b: one more transfer a day later. */
static void main_setup(void)
{
	make_tmpdir();
	snprintf(log_a, sizeof(log_a), "%s/a.log", tmpdir);
	snprintf(log_b, sizeof(log_b), "%s/b.log", tmpdir);
	snprintf(svg_path, sizeof(svg_path), "%s/out.svg", tmpdir);
	write_file(log_a,
		   "2026-11-24T10:00:01.000Z client=127.0.0.1:1 path=/big.iso "
		   "mode=sendfile status=200 offset=0 bytes=104857600 "
		   "size=104857600 duration_s=0.1438 mib_per_s=695.33\n"
		   "{\"time\":\"2026-11-24T10:00:02.000Z\",\"client\":\"[::1]:2\","
		   "\"path\":\"/small\",\"mode\":\"buffered\",\"status\":200,"
		   "\"offset\":0,\"bytes\":102400,\"size\":102400,"
		   "\"duration_s\":0.0049,\"mib_per_s\":20.00}\n"
		   "2026-11-24T10:00:03.000Z client=127.0.0.1:1 path=/big.iso "
		   "mode=sendfile status=200 offset=0 bytes=104857600 "
		   "size=104857600 duration_s=0.1249 mib_per_s=800.50\n"
		   "ferryd: this is not a transfer\n"
		   "\n"
		   "2026-11-24T10:00:04.000Z client=127.0.0.1:1 path=/nope "
		   "mode=buffered status=404 offset=0 bytes=0 size=0 "
		   "duration_s=0.0000 mib_per_s=0.00 error=not-found\n"
		   "{\"time\":\"2026-11-24T10:00:05.000Z\",\"client\":\"c\","
		   "\"path\":\"/small\",\"mode\":\"sendfile\",\"status\":200,"
		   "\"offset\":0,\"bytes\":102400,\"size\":102400,"
		   "\"duration_s\":0.0019,\"mib_per_s\":50.25}\n"
		   "2026-11-24T10:00:06.000Z client=c path=/ mode=list "
		   "status=200 offset=0 bytes=300 size=0 duration_s=0.0286 "
		   "mib_per_s=0.01\n"
		   "2026-11-24T10:00:07.000Z client=c path=- mode=- status=400 "
		   "offset=0 bytes=0 size=0 duration_s=0.0000 mib_per_s=0.00 "
		   "error=bad-request\n"
		   "{\"time\":\"2026-11-24T10:00:08.000Z\",\"client\":\"c\","
		   "\"path\":\"/big.iso\",\"mode\":\"sendfile\",\"status\":499,"
		   "\"offset\":0,\"bytes\":52428800,\"size\":104857600,"
		   "\"duration_s\":5.0,\"mib_per_s\":10.00,"
		   "\"error\":\"client-gone\"}\n"
		   "{\"time\":\"2026-11-24T10:00:09.000Z\",\"client\"\n");
	write_file(log_b,
		   "2026-11-25T10:00:00.000Z client=c path=/late mode=sendfile "
		   "status=200 offset=0 bytes=1048576 size=1048576 "
		   "duration_s=0.0010 mib_per_s=1000.00\n");
}

static void main_teardown(void)
{
	remove_tmpdir();
}

static const char report_a_tail[] =
	"mode        transfers        bytes   p50_MiB/s   p95_MiB/s   max_MiB/s\n"
	"sendfile            4    250.1 MiB      695.33      800.50      800.50\n"
	"buffered            2    100.0 KiB       20.00       20.00       20.00\n"
	"list                1        300 B        0.01        0.01        0.01\n"
	"-                   1          0 B           -           -           -\n"
	"errors by status:\n"
	"  400        1\n"
	"  404        1\n"
	"  499        1\n"
	"top paths by bytes:\n"
	"   250.0 MiB  /big.iso\n"
	"   200.0 KiB  /small\n"
	"       300 B  /\n";

static void assert_report_a(const char *out, const char *head)
{
	char want[2048];

	snprintf(want, sizeof(want), "%s%s", head, report_a_tail);
	ck_assert_str_eq(out, want);
}

START_TEST(test_main_file)
{
	struct run r = run_stats(NULL, "stats", log_a, (char *)NULL);
	char want[512];

	ck_assert_int_eq(r.rc, 0);
	assert_report_a(r.out, "transfers: 8 (malformed lines: 2)\n"
			       "period: 2026-11-24T10:00:01.000Z .. "
			       "2026-11-24T10:00:08.000Z\n");
	snprintf(want, sizeof(want),
		 "ferry stats: %s:4: malformed line\n"
		 "ferry stats: %s:11: malformed line\n",
		 log_a, log_a);
	ck_assert_str_eq(r.err, want);
	run_free(&r);
}
END_TEST

START_TEST(test_main_stdin)
{
	struct run r = run_stats(log_a, "stats", (char *)NULL);

	ck_assert_int_eq(r.rc, 0);
	assert_report_a(r.out, "transfers: 8 (malformed lines: 2)\n"
			       "period: 2026-11-24T10:00:01.000Z .. "
			       "2026-11-24T10:00:08.000Z\n");
	ck_assert_str_eq(r.err, "ferry stats: <stdin>:4: malformed line\n"
				"ferry stats: <stdin>:11: malformed line\n");
	run_free(&r);

	/* "-" is stdin too, beside a file. */
	r = run_stats(log_b, "stats", log_a, "-", (char *)NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_ptr_nonnull(
		strstr(r.out, "transfers: 9 (malformed lines: 2)"));
	ck_assert_ptr_nonnull(strstr(r.out, "     1.0 MiB  /late\n"));
	run_free(&r);
}
END_TEST

START_TEST(test_main_window)
{
	struct run r = run_stats(NULL, "stats", log_a, log_b, "--since",
				 "2026-11-24", "--until=2026-11-25", (char *)NULL);

	ck_assert_int_eq(r.rc, 0);
	assert_report_a(r.out, "transfers: 8 (malformed lines: 2, outside "
			       "the time range: 1)\n"
			       "period: 2026-11-24T10:00:01.000Z .. "
			       "2026-11-24T10:00:08.000Z\n");
	run_free(&r);

	r = run_stats(NULL, "stats", "--since=2026-11-25T00:00:00Z", log_a,
		      log_b, (char *)NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_str_eq(r.out,
			 "transfers: 1 (malformed lines: 2, outside the time "
			 "range: 8)\n"
			 "period: 2026-11-25T10:00:00.000Z .. "
			 "2026-11-25T10:00:00.000Z\n"
			 "mode        transfers        bytes   p50_MiB/s   "
			 "p95_MiB/s   max_MiB/s\n"
			 "sendfile            1      1.0 MiB     1000.00     "
			 "1000.00     1000.00\n"
			 "errors by status: none\n"
			 "top paths by bytes:\n"
			 "     1.0 MiB  /late\n");
	run_free(&r);

	r = run_stats(NULL, "stats", "--until", "1795514403", log_a,
		      (char *)NULL);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "transfers: 2 "));
	run_free(&r);
}
END_TEST

START_TEST(test_main_usage)
{
	static const char *const bad[][3] = {
		{ "--bogus", NULL, NULL },
		{ "-x", NULL, NULL },
		{ "--since", NULL, NULL },
		{ "--since", "yesterday", NULL },
		{ "--until=2026-11-24T10:00", NULL, NULL },
		{ "--since=2026-11-25", "--until=2026-11-24", NULL },
		{ "--since=2026-11-24", "--until=2026-11-24", NULL },
		{ "--svg=", NULL, NULL },
		{ "--svg", NULL, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct run r = run_stats(NULL, "stats", bad[i][0], bad[i][1],
					 bad[i][2], (char *)NULL);

		ck_assert_msg(r.rc == 2, "%s: rc %d", bad[i][0], r.rc);
		ck_assert_str_eq(r.out, "");
		ck_assert_msg(strncmp(r.err, "ferry stats: ", 13) == 0,
			      "stderr: %s", r.err);
		run_free(&r);
	}
}
END_TEST

START_TEST(test_main_help)
{
	struct run r = run_stats(NULL, "stats", "--help", (char *)NULL);

	ck_assert_int_eq(r.rc, 0);
	ck_assert_int_eq(strncmp(r.out, "usage: ferry stats ", 19), 0);
	ck_assert_str_eq(r.err, "");
	run_free(&r);
}
END_TEST

START_TEST(test_main_unreadable)
{
	char missing[160], want[256];
	struct run r;

	snprintf(missing, sizeof(missing), "%s/missing.log", tmpdir);
	r = run_stats(NULL, "stats", missing, log_b, (char *)NULL);
	ck_assert_int_eq(r.rc, 3);
	snprintf(want, sizeof(want), "ferry stats: %s: %s\n", missing,
		 strerror(ENOENT));
	ck_assert_str_eq(r.err, want);
	/* The readable log is still reported. */
	ck_assert_ptr_nonnull(strstr(r.out, "transfers: 1 (malformed lines: 0)"));
	run_free(&r);

	/* A directory opens but does not read. */
	r = run_stats(NULL, "stats", tmpdir, (char *)NULL);
	ck_assert_int_eq(r.rc, 3);
	snprintf(want, sizeof(want), "ferry stats: %s: %s\n", tmpdir,
		 strerror(EISDIR));
	ck_assert_str_eq(r.err, want);
	run_free(&r);
}
END_TEST

START_TEST(test_main_svg)
{
	struct run r = run_stats(NULL, "stats", "--svg", svg_path, log_a,
				 (char *)NULL);
	char *svg;

	ck_assert_int_eq(r.rc, 0);
	run_free(&r);
	assert_well_formed(svg_path);
	svg = slurp(svg_path);
	ck_assert_int_eq(count(svg, NULL, "<g class=\"series\""), 3);
	assert_series(svg, "sendfile", 3);
	assert_series(svg, "buffered", 1);
	assert_series(svg, "list", 1);
	free(svg);

	/* A plot that cannot be written fails the run, after the report. */
	r = run_stats(NULL, "stats", "--svg", "/nonexistent/dir/x.svg", log_a,
		      (char *)NULL);
	ck_assert_int_eq(r.rc, 1);
	ck_assert_ptr_nonnull(strstr(r.out, "transfers: 8 "));
	ck_assert_ptr_nonnull(
		strstr(r.err, "ferry stats: /nonexistent/dir/x.svg: "));
	run_free(&r);
}
END_TEST

/* Options after "--" are LOG names. */
START_TEST(test_main_dashdash)
{
	struct run r = run_stats(NULL, "stats", "--", "--since", (char *)NULL);

	ck_assert_int_eq(r.rc, 3);
	ck_assert_ptr_nonnull(strstr(r.err, "ferry stats: --since: "));
	run_free(&r);
}
END_TEST

static Suite *stats_suite(void)
{
	Suite *s = suite_create("stats");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse_text);
	tcase_add_test(tc, test_parse_text_encoded);
	tcase_add_test(tc, test_parse_json);
	tcase_add_test(tc, test_parse_json_extra_keys);
	tcase_add_test(tc, test_parse_json_strict);
	tcase_add_test(tc, test_parse_json_byte_escapes);
	tcase_add_test(tc, test_parse_missing_keys);
	tcase_add_test(tc, test_parse_duplicate_keys);
	tcase_add_test(tc, test_parse_garbage);
	tcase_add_test(tc, test_parse_truncated_json);
	tcase_add_test(tc, test_parse_long_path);
	tcase_add_test(tc, test_parse_translog_roundtrip);
	suite_add_tcase(s, tc);

	tc = tcase_create("since_until");
	tcase_add_test(tc, test_time_forms);
	tcase_add_test(tc, test_time_bad);
	tcase_add_test(tc, test_time_calendar);
	tcase_add_test(tc, test_window);
	suite_add_tcase(s, tc);

	tc = tcase_create("accumulate");
	tcase_add_test(tc, test_percentile);
	tcase_add_test(tc, test_accumulate_modes);
	tcase_add_test(tc, test_top_paths);
	tcase_add_test(tc, test_many_paths);
	suite_add_tcase(s, tc);

	tc = tcase_create("report");
	tcase_add_test(tc, test_report_exact);
	tcase_add_test(tc, test_report_empty);
	tcase_add_test(tc, test_report_encodes);
	tcase_add_test(tc, test_report_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("svg");
	tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
	tcase_add_test(tc, test_xml_check);
	tcase_add_test(tc, test_svg_series);
	tcase_add_test(tc, test_svg_empty);
	tcase_add_test(tc, test_svg_one_point);
	tcase_add_test(tc, test_svg_many_points);
	tcase_add_test(tc, test_svg_escapes);
	suite_add_tcase(s, tc);

	tc = tcase_create("main");
	tcase_add_checked_fixture(tc, main_setup, main_teardown);
	tcase_add_test(tc, test_main_file);
	tcase_add_test(tc, test_main_stdin);
	tcase_add_test(tc, test_main_window);
	tcase_add_test(tc, test_main_usage);
	tcase_add_test(tc, test_main_help);
	tcase_add_test(tc, test_main_unreadable);
	tcase_add_test(tc, test_main_svg);
	tcase_add_test(tc, test_main_dashdash);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(stats_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
