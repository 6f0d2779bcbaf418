/* Unit tests for protocol.c: every line of PROTOCOL.md's request grammar,
 * the line length limit, percent-encoding, and the reply formats. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/protocol.h"

static struct proto_request req;

static int parse(const char *line)
{
	return proto_parse_line(line, strlen(line), &req);
}

static void assert_path(const char *path)
{
	ck_assert_uint_eq(req.path_len, strlen(path));
	ck_assert_mem_eq(req.path, path, req.path_len);
	ck_assert_int_eq(req.path[req.path_len], '\0');
}

/* Common path: the three request forms. */

START_TEST(raw_with_spaces)
{
	ck_assert_int_eq(parse("my file.txt"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("my file.txt");
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(!req.has_length);
}
END_TEST

START_TEST(raw_taken_literally)
{
	/* No decoding in the raw form: "%20" is three bytes of the name. */
	ck_assert_int_eq(parse("/a%20b"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("/a%20b");

	ck_assert_int_eq(parse("caf\xc3\xa9 \x01"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("caf\xc3\xa9 \x01");
}
END_TEST

START_TEST(raw_get_lookalikes)
{
	ck_assert_int_eq(parse("/GET x"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("/GET x");

	ck_assert_int_eq(parse("GET"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("GET");

	ck_assert_int_eq(parse("GETx"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("GETx");

	ck_assert_int_eq(parse("get /a"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("get /a");

	ck_assert_int_eq(parse("LISTx"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("LISTx");

	ck_assert_int_eq(parse("/LIST"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("/LIST");
}
END_TEST

START_TEST(get_forms)
{
	ck_assert_int_eq(parse("GET /big.iso"), 0);
	ck_assert_int_eq(req.kind, PROTO_GET);
	assert_path("/big.iso");
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(!req.has_length);

	ck_assert_int_eq(parse("GET big.iso 1048576"), 0);
	ck_assert_int_eq(req.kind, PROTO_GET);
	assert_path("big.iso");
	ck_assert_uint_eq(req.offset, 1048576);
	ck_assert(!req.has_length);

	ck_assert_int_eq(parse("GET /big.iso 1048576 16"), 0);
	ck_assert_int_eq(req.kind, PROTO_GET);
	assert_path("/big.iso");
	ck_assert_uint_eq(req.offset, 1048576);
	ck_assert(req.has_length);
	ck_assert_uint_eq(req.length, 16);
}
END_TEST

START_TEST(get_resets_previous)
{
	ck_assert_int_eq(parse("GET /a 5 6"), 0);
	ck_assert_int_eq(parse("GET /b"), 0);
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(!req.has_length);
	ck_assert_int_eq(parse("LIST"), 0);
	assert_path("");
}
END_TEST

START_TEST(list_forms)
{
	ck_assert_int_eq(parse("LIST"), 0);
	ck_assert_int_eq(req.kind, PROTO_LIST);
	assert_path("");

	ck_assert_int_eq(parse("LIST dir"), 0);
	ck_assert_int_eq(req.kind, PROTO_LIST);
	assert_path("dir");

	ck_assert_int_eq(parse("LIST /a/b%20c"), 0);
	ck_assert_int_eq(req.kind, PROTO_LIST);
	assert_path("/a/b c");

	ck_assert_int_eq(parse("LIST\r"), 0);
	ck_assert_int_eq(req.kind, PROTO_LIST);
	assert_path("");
}
END_TEST

START_TEST(sum_forms)
{
	ck_assert_int_eq(parse("SUM /big.iso"), 0);
	ck_assert_int_eq(req.kind, PROTO_SUM);
	assert_path("/big.iso");
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(!req.has_length);

	ck_assert_int_eq(parse("SUM a/b%20c%25"), 0);
	ck_assert_int_eq(req.kind, PROTO_SUM);
	assert_path("a/b c%");

	ck_assert_int_eq(parse("SUM /x\r"), 0);
	ck_assert_int_eq(req.kind, PROTO_SUM);
	assert_path("/x");

	/* Offsets left by an earlier GET do not leak into a SUM. */
	ck_assert_int_eq(parse("GET /a 5 6"), 0);
	ck_assert_int_eq(parse("SUM /a"), 0);
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(!req.has_length);
}
END_TEST

START_TEST(raw_sum_lookalikes)
{
	/* Only "SUM " starts a SUM: the rest is the raw form, as with GET. */
	static const char *const raw[] = { "SUM", "SUMx", "sum /a", "/SUM x",
					   "SUM\t/a" };
	size_t i;

	for (i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		ck_assert_int_eq(parse(raw[i]), 0);
		ck_assert_int_eq(req.kind, PROTO_RAW);
		assert_path(raw[i]);
	}
}
END_TEST

START_TEST(crlf)
{
	ck_assert_int_eq(parse("GET /a\r"), 0);
	ck_assert_int_eq(req.kind, PROTO_GET);
	assert_path("/a");

	ck_assert_int_eq(parse("GET /a 1 2\r"), 0);
	ck_assert_uint_eq(req.length, 2);

	ck_assert_int_eq(parse("a b\r"), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	assert_path("a b");

	/* Only the CR right before the LF is dropped. */
	ck_assert_int_eq(parse("a\rb"), 0);
	assert_path("a\rb");
	ck_assert_int_eq(parse("a\r\r"), 0);
	assert_path("a\r");
}
END_TEST

START_TEST(nul_refused)
{
	ck_assert_int_eq(proto_parse_line("GET /a\0b", 8, &req), 400);
	ck_assert_int_eq(proto_parse_line("a\0b", 3, &req), 400);
	ck_assert_int_eq(proto_parse_line("\0", 1, &req), 400);
	ck_assert_int_eq(proto_parse_line("LIST \0", 6, &req), 400);
	ck_assert_int_eq(proto_parse_line("GET /a 1\0", 9, &req), 400);
	ck_assert_int_eq(proto_parse_line("a\0\r", 3, &req), 400);
}
END_TEST

START_TEST(escapes_decoded)
{
	ck_assert_int_eq(parse("GET /a%20b"), 0);
	assert_path("/a b");
	ck_assert_int_eq(parse("GET /100%25"), 0);
	assert_path("/100%");
	/* The parser only decodes; path_normalize refuses "..". */
	ck_assert_int_eq(parse("GET %2e%2e/etc"), 0);
	assert_path("../etc");
	ck_assert_int_eq(parse("GET a%2Fb%2fc"), 0);
	assert_path("a/b/c");
	ck_assert_int_eq(parse("GET %C3%a9%0A%7F%FF"), 0);
	assert_path("\xc3\xa9\n\x7f\xff");
	ck_assert_int_eq(parse("LIST %2e"), 0);
	assert_path(".");
}
END_TEST

/* Limits: every malformed line answers 400. */

static const char *const bad_lines[] = {
	"",
	"\r",
	"LIST ",
	"LIST a b",
	"LIST  a",
	"LIST a ",
	"LIST %",
	"LIST a%2",
	"GET ",
	"GET  ",
	"GET  /a",
	"GET /a ",
	"GET /a  1",
	"GET /a 1 ",
	"GET /a 1  2",
	"GET /a 1 2 ",
	"GET /a 1 2 3",
	"GET /a 1 2 3 4",
	"GET /%",
	"GET /%2",
	"GET /%zz",
	"GET /%2z",
	"GET /%g0",
	"GET /%00",
	"GET /a%00b",
	"GET /%%",
	"GET /caf\xc3\xa9",
	"GET /\x7f",
	"GET /a\tb",
	"GET /a\x01",
	"GET /a +1",
	"GET /a -1",
	"GET /a 0x10",
	"GET /a 1e3",
	"GET /a 1.0",
	"GET /a 1a",
	"GET /a a",
	"GET /a 000000000000000000001",
	"GET /a 9223372036854775808",
	"GET /a 18446744073709551615",
	"GET /a 18446744073709551616",
	"GET /a 99999999999999999999",
	"GET /a 0 +1",
	"GET /a 0 -1",
	"GET /a 0 0x10",
	"GET /a 0 1e3",
	"GET /a 0 9223372036854775808",
	"GET /a 0 000000000000000000001",
	"GET /a 1\t2",
	"SUM ",			/* no path */
	"SUM /a 0",		/* an OFFSET: SUM takes the path only */
	"SUM /a 0 1",
	"SUM  /a",		/* two spaces */
	"SUM /a ",
	"SUM /a%zz",
	"SUM /a%00",
	"SUM /a\tb",
};

START_TEST(bad_line)
{
	ck_assert_msg(parse(bad_lines[_i]) == 400, "line %d \"%s\" not 400",
		      _i, bad_lines[_i]);
}
END_TEST

START_TEST(numbers_in_range)
{
	ck_assert_int_eq(parse("GET /a 0"), 0);
	ck_assert_uint_eq(req.offset, 0);

	ck_assert_int_eq(parse("GET /a 0 0"), 0);
	ck_assert_uint_eq(req.offset, 0);
	ck_assert(req.has_length);
	ck_assert_uint_eq(req.length, 0);

	ck_assert_int_eq(parse("GET /a 9223372036854775807"), 0);
	ck_assert_uint_eq(req.offset, (uint64_t)INT64_MAX);

	ck_assert_int_eq(parse("GET /a 0 9223372036854775807"), 0);
	ck_assert_uint_eq(req.length, (uint64_t)INT64_MAX);

	/* 20 digits with leading zeros. */
	ck_assert_int_eq(parse("GET /a 00000000000000000001 "
			       "09223372036854775807"), 0);
	ck_assert_uint_eq(req.offset, 1);
	ck_assert_uint_eq(req.length, (uint64_t)INT64_MAX);

	ck_assert_int_eq(parse("GET /a 007"), 0);
	ck_assert_uint_eq(req.offset, 7);
}
END_TEST

START_TEST(longest_line)
{
	/* 4096 bytes with the LF: the longest line there is. */
	char line[FERRY_LINE_MAX];

	memset(line, 'a', sizeof(line));
	ck_assert_int_eq(proto_parse_line(line, FERRY_LINE_MAX - 1, &req), 0);
	ck_assert_int_eq(req.kind, PROTO_RAW);
	ck_assert_uint_eq(req.path_len, FERRY_LINE_MAX - 1);

	memcpy(line, "GET ", 4);
	ck_assert_int_eq(proto_parse_line(line, FERRY_LINE_MAX - 1, &req), 0);
	ck_assert_int_eq(req.kind, PROTO_GET);
	ck_assert_uint_eq(req.path_len, FERRY_LINE_MAX - 5);
}
END_TEST

START_TEST(line_length_common)
{
	ck_assert_int_eq(proto_line_length("GET /a\nGET /b\n", 14), 7);
	ck_assert_int_eq(proto_line_length("\n", 1), 1);
	ck_assert_int_eq(proto_line_length("abc", 3), 0);
	ck_assert_int_eq(proto_line_length("", 0), 0);
	ck_assert_int_eq(proto_line_length("a\r\n", 3), 3);
}
END_TEST

START_TEST(line_length_limits)
{
	static char buf[2 * FERRY_LINE_MAX];

	memset(buf, 'a', sizeof(buf));

	/* 4095 bytes + LF = 4096: fine. */
	buf[FERRY_LINE_MAX - 1] = '\n';
	ck_assert_int_eq(proto_line_length(buf, FERRY_LINE_MAX),
			 FERRY_LINE_MAX);
	ck_assert_int_eq(proto_line_length(buf, sizeof(buf)), FERRY_LINE_MAX);

	/* 4096 bytes + LF = 4097: too long, whether the LF is there yet
	 * or not. */
	buf[FERRY_LINE_MAX - 1] = 'a';
	buf[FERRY_LINE_MAX] = '\n';
	ck_assert_int_eq(proto_line_length(buf, FERRY_LINE_MAX + 1), -414);
	ck_assert_int_eq(proto_line_length(buf, sizeof(buf)), -414);

	/* No LF: more may come below the limit, not at it. */
	ck_assert_int_eq(proto_line_length(buf, FERRY_LINE_MAX - 1), 0);
	ck_assert_int_eq(proto_line_length(buf, FERRY_LINE_MAX), -414);
}
END_TEST

/* Percent-encoding. */

START_TEST(encode_each_byte)
{
	char in[1], out[4];
	int c;

	for (c = 1; c < 256; c++) {
		size_t n;

		in[0] = (char)c;
		memset(out, 0, sizeof(out));
		n = proto_encode(in, 1, out, sizeof(out));
		if (c == '%' || c < 0x21 || c > 0x7e) {
			char want[4];

			snprintf(want, sizeof(want), "%%%02X", c);
			ck_assert_uint_eq(n, 3);
			ck_assert_str_eq(out, want);
		} else {
			ck_assert_uint_eq(n, 1);
			ck_assert_int_eq(out[0], c);
		}
	}
}
END_TEST

START_TEST(encode_decode_round_trip)
{
	char in[255], enc[3 * 255], dec[3 * 255 + 1];
	size_t n, i;
	int c;

	for (c = 1; c < 256; c++)
		in[c - 1] = (char)c;
	n = proto_encode(in, sizeof(in), enc, sizeof(enc));
	ck_assert_uint_le(n, sizeof(enc));
	for (i = 0; i < n; i++) {
		unsigned char b = (unsigned char)enc[i];

		ck_assert(b >= 0x21 && b <= 0x7e);
	}
	ck_assert_int_eq(proto_decode(enc, n, dec), (ssize_t)sizeof(in));
	ck_assert_mem_eq(dec, in, sizeof(in));
	ck_assert_int_eq(dec[sizeof(in)], '\0');
}
END_TEST

START_TEST(encode_short_buffer)
{
	char out[8];

	memset(out, '#', sizeof(out));
	/* "a b" needs 5 bytes; only 4 may be written. */
	ck_assert_uint_eq(proto_encode("a b", 3, out, 4), 5);
	ck_assert_mem_eq(out, "a%20#", 5);

	ck_assert_uint_eq(proto_encode("% %", 3, NULL, 0), 9);
	ck_assert_uint_eq(proto_encode("", 0, out, sizeof(out)), 0);
}
END_TEST

START_TEST(decode_cases)
{
	char out[16];

	ck_assert_int_eq(proto_decode("", 0, out), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(proto_decode("%2f%2F", 6, out), 2);
	ck_assert_str_eq(out, "//");
	ck_assert_int_eq(proto_decode("%41bc", 5, out), 3);
	ck_assert_str_eq(out, "Abc");
	ck_assert_int_eq(proto_decode("%", 1, out), -1);
	ck_assert_int_eq(proto_decode("%4", 2, out), -1);
	ck_assert_int_eq(proto_decode("%4g", 3, out), -1);
	ck_assert_int_eq(proto_decode("%00", 3, out), -1);
	ck_assert_int_eq(proto_decode("a b", 3, out), -1);
	ck_assert_int_eq(proto_decode("\x80", 1, out), -1);
	/* Only LEN bytes are read: an escape cut by LEN is incomplete. */
	ck_assert_int_eq(proto_decode("%41", 2, out), -1);
}
END_TEST

/* Replies. */

START_TEST(format_ok)
{
	char buf[128];

	ck_assert_int_eq(proto_format_ok(buf, sizeof(buf), 16, 734003200,
					 1764000000), 27);
	ck_assert_str_eq(buf, "OK 16 734003200 1764000000\n");

	ck_assert_int_eq(proto_format_ok(buf, sizeof(buf), 0, 0, -1), 10);
	ck_assert_str_eq(buf, "OK 0 0 -1\n");

	proto_format_ok(buf, sizeof(buf), (uint64_t)INT64_MAX,
			UINT64_MAX, INT64_MIN);
	ck_assert_str_eq(buf, "OK 9223372036854775807 18446744073709551615 "
			      "-9223372036854775808\n");

	ck_assert_int_eq(proto_format_ok_list(buf, sizeof(buf), 42), 6);
	ck_assert_str_eq(buf, "OK 42\n");

	/* snprintf semantics: the full length, a truncated string. */
	ck_assert_int_eq(proto_format_ok_list(buf, 4, 12345), 9);
	ck_assert_str_eq(buf, "OK ");
}
END_TEST

START_TEST(format_ok_sum)
{
	unsigned char digest[FERRY_SHA256_BYTES];
	char buf[160], small[8];
	size_t i;

	for (i = 0; i < sizeof(digest); i++)
		digest[i] = (unsigned char)(i * 0x11 + 0x0f);
	ck_assert_int_eq(proto_format_ok_sum(buf, sizeof(buf), digest, 3000,
					     1764000000), 91);
	ck_assert_str_eq(buf, "OK sha256 "
			      "0f20314253647586"
			      "97a8b9cadbecfd0e"
			      "1f30415263748596"
			      "a7b8c9daebfc0d1e"
			      " 3000 1764000000\n");

	memset(digest, 0, sizeof(digest));
	proto_format_ok_sum(buf, sizeof(buf), digest, 0, -1);
	ck_assert_str_eq(buf, "OK sha256 "
			      "0000000000000000000000000000000000000000000000000000000000000000"
			      " 0 -1\n");

	/* snprintf semantics. */
	ck_assert_int_eq(proto_format_ok_sum(small, sizeof(small), digest, 0, 0),
			 79);
	ck_assert_str_eq(small, "OK sha2");
}
END_TEST

START_TEST(format_err)
{
	char buf[128];

	ck_assert_int_eq(proto_format_err(buf, sizeof(buf), 404, NULL), 18);
	ck_assert_str_eq(buf, "ERR 404 not found\n");
	proto_format_err(buf, sizeof(buf), 416, "offset 9 beyond 8");
	ck_assert_str_eq(buf, "ERR 416 offset 9 beyond 8\n");
	proto_format_err(buf, sizeof(buf), 503, NULL);
	ck_assert_str_eq(buf, "ERR 503 server busy\n");
}
END_TEST

static const struct {
	int code;
	bool closes;
} error_table[] = {
	{ 400, true },  { 403, false }, { 404, false },
	{ 408, true },  { 414, true },  { 416, false },
	{ 429, true },  { 500, true },  { 503, true },
};

START_TEST(error_codes)
{
	const char *reason = proto_reason(error_table[_i].code);
	const char *p;

	ck_assert_ptr_nonnull(reason);
	ck_assert_uint_gt(strlen(reason), 0);
	for (p = reason; *p; p++)
		ck_assert(*p == ' ' || (*p >= 'a' && *p <= 'z'));
	ck_assert_int_eq(proto_error_closes(error_table[_i].code),
			 error_table[_i].closes);
}
END_TEST

START_TEST(reasons)
{
	ck_assert_str_eq(proto_reason(400), "bad request");
	ck_assert_str_eq(proto_reason(403), "forbidden");
	ck_assert_str_eq(proto_reason(404), "not found");
	ck_assert_str_eq(proto_reason(414), "request line too long");
	ck_assert_ptr_nonnull(proto_reason(999));
}
END_TEST

static int reply(const char *line, struct proto_reply *rep)
{
	return proto_parse_reply(line, strlen(line), rep);
}

START_TEST(parse_reply_ok)
{
	struct proto_reply rep;

	ck_assert_int_eq(reply("OK 16 734003200 1764000000", &rep), 0);
	ck_assert(rep.ok);
	ck_assert_int_eq(rep.fields, 3);
	ck_assert_uint_eq(rep.length, 16);
	ck_assert_uint_eq(rep.size, 734003200);
	ck_assert_int_eq(rep.mtime, 1764000000);

	ck_assert_int_eq(reply("OK 0 0 -5", &rep), 0);
	ck_assert_int_eq(rep.mtime, -5);

	ck_assert_int_eq(reply("OK 42", &rep), 0);
	ck_assert(rep.ok);
	ck_assert_int_eq(rep.fields, 1);
	ck_assert_uint_eq(rep.length, 42);

	ck_assert_int_eq(reply("ERR 404 not found", &rep), 0);
	ck_assert(!rep.ok);
	ck_assert_int_eq(rep.code, 404);
	ck_assert_str_eq(rep.reason, "not found");

	ck_assert_int_eq(reply("ERR 429 too many connections from this client",
			       &rep), 0);
	ck_assert_int_eq(rep.code, 429);
	ck_assert_str_eq(rep.reason, "too many connections from this client");
}
END_TEST

START_TEST(parse_reply_round_trip)
{
	struct proto_reply rep;
	char buf[128];
	int n;

	n = proto_format_ok(buf, sizeof(buf), 1, 2, 3);
	ck_assert_int_eq(proto_parse_reply(buf, (size_t)n - 1, &rep), 0);
	ck_assert_uint_eq(rep.length, 1);
	ck_assert_uint_eq(rep.size, 2);
	ck_assert_int_eq(rep.mtime, 3);

	n = proto_format_err(buf, sizeof(buf), 500, NULL);
	ck_assert_int_eq(proto_parse_reply(buf, (size_t)n - 1, &rep), 0);
	ck_assert_int_eq(rep.code, 500);
	ck_assert_str_eq(rep.reason, proto_reason(500));
}
END_TEST

static const char *const bad_replies[] = {
	"", "OK", "OK ", "OK 1 2", "OK 1 2 3 4", "OK -1", "OK 1  2 3",
	"OK 1 2 3 ", "OK x", "ok 1", "ERR", "ERR ", "ERR 40 x", "ERR 4000 x",
	"ERR abc x", "ERRX 404 x", "ERR 404x", "HELLO", "OK 1 -2 3",
	"OK 9223372036854775808",
};

START_TEST(parse_reply_bad)
{
	struct proto_reply rep;

	ck_assert_msg(reply(bad_replies[_i], &rep) == -1, "reply \"%s\"",
		      bad_replies[_i]);
}
END_TEST

static int entry(const char *line, struct proto_entry *ent)
{
	return proto_parse_entry(line, strlen(line), ent);
}

START_TEST(parse_entry_ok)
{
	struct proto_entry ent;

	ck_assert_int_eq(entry("f 10 1700000000 a%20b%25", &ent), 0);
	ck_assert_int_eq(ent.type, 'f');
	ck_assert_uint_eq(ent.size, 10);
	ck_assert_int_eq(ent.mtime, 1700000000);
	ck_assert_str_eq(ent.name, "a b%");

	ck_assert_int_eq(entry("d 4096 -1 sub", &ent), 0);
	ck_assert_int_eq(ent.type, 'd');
	ck_assert_uint_eq(ent.size, 4096);
	ck_assert_int_eq(ent.mtime, -1);
	ck_assert_str_eq(ent.name, "sub");
}
END_TEST

static const char *const bad_entries[] = {
	"", "f", "f 1 1", "f 1 1 ", "x 1 1 a", "ff 1 1 a", "f 1 1 a b",
	"f a 1 n", "f 1 a n", "f -1 1 n", "f 1 1 %00", "f 1 1 %zz",
	"f  1 1 a", "F 1 1 a",
};

START_TEST(parse_entry_bad)
{
	struct proto_entry ent;

	ck_assert_msg(entry(bad_entries[_i], &ent) == -1, "entry \"%s\"",
		      bad_entries[_i]);
}
END_TEST

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The one strict number parser every caller shares: digits only, 63 bits. */
START_TEST(number_parser)
{
	static const char *const bad[] = {
		"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "12a",
		"9223372036854775808", "000000000000000000001",
	};
	uint64_t v = 42;
	int64_t sv = 0;
	size_t i;

	ck_assert_int_eq(proto_parse_number("0", 1, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(proto_parse_number("9223372036854775807", 19, &v), 0);
	ck_assert(v == (uint64_t)INT64_MAX);
	ck_assert_int_eq(proto_parse_number("00000000000000000001", 20, &v), 0);
	ck_assert_uint_eq(v, 1);
	/* LEN bounds the number: "12" of "123". */
	ck_assert_int_eq(proto_parse_number("123", 2, &v), 0);
	ck_assert_uint_eq(v, 12);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		ck_assert_msg(proto_parse_number(bad[i], strlen(bad[i]), &v) == -1,
			      "\"%s\" accepted", bad[i]);
		ck_assert_uint_eq(v, 42);
	}
	ck_assert_int_eq(proto_parse_signed("-5", 2, &sv), 0);
	ck_assert(sv == -5);
	ck_assert_int_eq(proto_parse_signed("-9223372036854775807", 20, &sv), 0);
	ck_assert(sv == -INT64_MAX);
	ck_assert_int_eq(proto_parse_signed("--5", 3, &sv), -1);
	ck_assert_int_eq(proto_parse_signed("-", 1, &sv), -1);
}
END_TEST

/* SUM's answer, as the client reads it. */
START_TEST(parse_sum_reply)
{
	static const char hex[] = "e3b0c44298fc1c149afbf4c8996fb924"
				  "27ae41e4649b934ca495991b7852b855";
	struct proto_sum_reply r;
	char line[256];
	size_t i;

	snprintf(line, sizeof(line), "OK sha256 %s 0 1764000000", hex);
	ck_assert_int_eq(proto_parse_sum_reply(line, strlen(line), &r), 0);
	ck_assert(r.ok);
	ck_assert_uint_eq(r.sha256[0], 0xe3);
	ck_assert_uint_eq(r.sha256[31], 0x55);
	ck_assert_uint_eq(r.size, 0);
	ck_assert_int_eq(r.mtime, 1764000000);

	ck_assert_int_eq(proto_parse_sum_reply("ERR 404 not found", 17, &r), 0);
	ck_assert(!r.ok);
	ck_assert_int_eq(r.code, 404);
	ck_assert_str_eq(r.reason, "not found");

	{
		static const char *const bad[] = {
			"OK sha1 %s 0 1",      "OK sha256 %s 0",
			"OK sha256 %s 0 1 2",  "OK sha256 %s  0 1",
			"OK sha256 %s x 1",    "OK %s 0 1",
			"OK sha256 %sa 0 1",   "OK sha256 %s 0 1 ",
			"OK sha256 %s 123456789012345678901 1",
			"ok sha256 %s 0 1",
		};
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			/* Each template's %s stands for the digest. */
			const char *at = strstr(bad[i], "%s");

			ck_assert_ptr_nonnull(at);
			snprintf(line, sizeof(line), "%.*s%s%s",
				 (int)(at - bad[i]), bad[i], hex, at + 2);
			ck_assert_msg(proto_parse_sum_reply(line, strlen(line),
							    &r) < 0,
				      "'%s' parsed", line);
		}
	}
	/* Uppercase and short hex. */
	snprintf(line, sizeof(line), "OK sha256 %.63s 0 1", hex);
	ck_assert_int_lt(proto_parse_sum_reply(line, strlen(line), &r), 0);
	snprintf(line, sizeof(line), "OK sha256 E%s 0 1", hex + 1);
	ck_assert_int_lt(proto_parse_sum_reply(line, strlen(line), &r), 0);
	snprintf(line, sizeof(line), "OK sha256 g%s 0 1", hex + 1);
	ck_assert_int_lt(proto_parse_sum_reply(line, strlen(line), &r), 0);
}
END_TEST

static Suite *protocol_suite(void)
{
	Suite *s = suite_create("protocol");
	TCase *tc;

	tc = tcase_create("requests");
	tcase_add_test(tc, raw_with_spaces);
	tcase_add_test(tc, raw_taken_literally);
	tcase_add_test(tc, raw_get_lookalikes);
	tcase_add_test(tc, get_forms);
	tcase_add_test(tc, get_resets_previous);
	tcase_add_test(tc, list_forms);
	tcase_add_test(tc, sum_forms);
	tcase_add_test(tc, raw_sum_lookalikes);
	tcase_add_test(tc, crlf);
	tcase_add_test(tc, escapes_decoded);
	suite_add_tcase(s, tc);

	tc = tcase_create("request limits");
	tcase_add_test(tc, nul_refused);
	tcase_add_loop_test(tc, bad_line, 0, COUNT(bad_lines));
	tcase_add_test(tc, numbers_in_range);
	tcase_add_test(tc, number_parser);
	tcase_add_test(tc, longest_line);
	tcase_add_test(tc, line_length_common);
	tcase_add_test(tc, line_length_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("percent-encoding");
	tcase_add_test(tc, encode_each_byte);
	tcase_add_test(tc, encode_decode_round_trip);
	tcase_add_test(tc, encode_short_buffer);
	tcase_add_test(tc, decode_cases);
	suite_add_tcase(s, tc);

	tc = tcase_create("replies");
	tcase_add_test(tc, format_ok);
	tcase_add_test(tc, format_ok_sum);
	tcase_add_test(tc, format_err);
	tcase_add_loop_test(tc, error_codes, 0, COUNT(error_table));
	tcase_add_test(tc, reasons);
	tcase_add_test(tc, parse_reply_ok);
	tcase_add_test(tc, parse_reply_round_trip);
	tcase_add_loop_test(tc, parse_reply_bad, 0, COUNT(bad_replies));
	tcase_add_test(tc, parse_entry_ok);
	tcase_add_test(tc, parse_sum_reply);
	tcase_add_loop_test(tc, parse_entry_bad, 0, COUNT(bad_entries));
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(protocol_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
