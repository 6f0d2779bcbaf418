/* libFuzzer target for the wire protocol (protocol.c). The input is what a
 * peer sends: it is cut into lines the way conn.c cuts them, and each line is
 * parsed as a request (the server's side) and as a reply and a listing entry
 * (the client's side). Whatever parses must survive a round trip through the
 * encoder and the formatters, and the percent-coding must invert itself on
 * any bytes. */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "common/protocol.h"

/* Each holds a request line or more; static, as one input is checked at a
 * time. */
static struct proto_request req, again;
static struct proto_entry ent, ent_again;
static char canon[FERRY_LINE_MAX * 4];

/* Calls proto_line_length and checks it against a plain scan. */
static ssize_t line_length(const char *buf, size_t len)
{
	ssize_t n = proto_line_length(buf, len);
	size_t scan = len < FERRY_LINE_MAX ? len : FERRY_LINE_MAX;
	const char *lf = memchr(buf, '\n', scan);

	if (lf != NULL)
		FUZZ_CHECK(n == lf - buf + 1);
	else if (len >= FERRY_LINE_MAX)
		FUZZ_CHECK(n == -414);
	else
		FUZZ_CHECK(n == 0);
	return n;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/* Writes the canonical request line for R (LF excluded) into canon, and
 * returns its length: the shortest spelling that means the same. */
static size_t canonical_request(const struct proto_request *r)
{
	size_t n = 0, cap = sizeof(canon);

	if (r->kind == PROTO_LIST) {
		memcpy(canon, "LIST", 4);
		n = 4;
		if (r->path_len == 0)
			return n;
	} else if (r->kind == PROTO_SUM) {
		memcpy(canon, "SUM", 3);
		n = 3;
	} else {
		memcpy(canon, "GET", 3);
		n = 3;
	}
	canon[n++] = ' ';
	n += proto_encode(r->path, r->path_len, canon + n, cap - n);
	FUZZ_CHECK(n < cap - 64);
	if (r->kind == PROTO_GET && r->has_length)
		n += (size_t)snprintf(canon + n, cap - n,
				      " %" PRIu64 " %" PRIu64, r->offset,
				      r->length);
	else if (r->kind == PROTO_GET && r->offset != 0)
		n += (size_t)snprintf(canon + n, cap - n, " %" PRIu64,
				      r->offset);
	return n;
}

/* The request parser: its result is well formed, PING is the line PING
 * alone, and the canonical spelling of a GET, LIST or SUM parses back to
 * the same request. */
static void check_request(const char *line, size_t len)
{
	size_t n;
	int rc;

	rc = proto_parse_line(line, len, &req);
	if (rc != 0) {
		FUZZ_CHECK(rc == 400);
		return;
	}
	FUZZ_CHECK(req.path_len < sizeof(req.path));
	FUZZ_CHECK(strlen(req.path) == req.path_len);
	FUZZ_CHECK(req.offset <= FERRY_NUMBER_MAX);
	FUZZ_CHECK(req.length <= FERRY_NUMBER_MAX);
	FUZZ_CHECK(req.has_length || req.length == 0);
	FUZZ_CHECK(req.kind == PROTO_GET || req.offset == 0);
	FUZZ_CHECK(req.kind == PROTO_GET || !req.has_length);

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (req.kind == PROTO_RAW) {
		/* The raw form is the line itself, and never one that
		 * names a method. */
		FUZZ_CHECK(req.path_len == len && req.path_len > 0);
		FUZZ_CHECK(memcmp(req.path, line, len) == 0);
		FUZZ_CHECK(!starts_with(line, len, "GET "));
		FUZZ_CHECK(!starts_with(line, len, "LIST "));
		FUZZ_CHECK(!starts_with(line, len, "SUM "));
		FUZZ_CHECK(!(len == 4 && starts_with(line, len, "LIST")));
		FUZZ_CHECK(!(len == 4 && starts_with(line, len, "PING")));
		return;
	}
	if (req.kind == PROTO_PING) {
		/* The exact line PING, nothing else: no path, no range. */
		FUZZ_CHECK(len == 4 && memcmp(line, "PING", 4) == 0);
		FUZZ_CHECK(req.path_len == 0);
		return;
	}
	FUZZ_CHECK(req.kind == PROTO_LIST || req.path_len > 0);

	n = canonical_request(&req);
	/* A canonical line longer than a request may be is no request. */
	if (n >= FERRY_LINE_MAX)
		return;
	rc = proto_parse_line(canon, n, &again);
	if (rc != 0)
		FUZZ_FAIL("canonical line \"%.*s\" does not parse: %d", (int)n,
			  canon, rc);
	FUZZ_CHECK(again.kind == req.kind);
	FUZZ_CHECK(again.path_len == req.path_len);
	FUZZ_CHECK(memcmp(again.path, req.path, req.path_len + 1) == 0);
	FUZZ_CHECK(again.offset == req.offset);
	FUZZ_CHECK(again.length == req.length);
	FUZZ_CHECK(again.has_length == req.has_length);
}

/* The client's reply parser: an OK line formats back to itself. */
static void check_reply(const char *line, size_t len)
{
	struct proto_reply rep, rep_again;
	char buf[128];
	int n;

	if (proto_parse_reply(line, len, &rep) != 0)
		return;
	if (!rep.ok) {
		FUZZ_CHECK(rep.code >= 0 && rep.code <= 999);
		FUZZ_CHECK(strlen(rep.reason) < sizeof(rep.reason));
		return;
	}
	FUZZ_CHECK(rep.fields == 1 || rep.fields == 3);
	FUZZ_CHECK(rep.length <= FERRY_NUMBER_MAX);
	if (rep.fields == 3)
		n = proto_format_ok(buf, sizeof(buf), rep.length, rep.size,
				    rep.mtime);
	else
		n = proto_format_ok_list(buf, sizeof(buf), rep.length);
	FUZZ_CHECK(n > 1 && (size_t)n < sizeof(buf) && buf[n - 1] == '\n');
	FUZZ_CHECK(proto_parse_reply(buf, (size_t)n - 1, &rep_again) == 0);
	FUZZ_CHECK(rep_again.ok && rep_again.fields == rep.fields);
	FUZZ_CHECK(rep_again.length == rep.length);
	FUZZ_CHECK(rep_again.size == rep.size);
	FUZZ_CHECK(rep_again.mtime == rep.mtime);
}

/* The client's listing parser: an entry formats back to an equal one. */
static void check_entry(const char *line, size_t len)
{
	size_t name_len, n;

	if (proto_parse_entry(line, len, &ent) != 0)
		return;
	FUZZ_CHECK(ent.type == 'f' || ent.type == 'd');
	FUZZ_CHECK(ent.size <= FERRY_NUMBER_MAX);
	name_len = strlen(ent.name);
	FUZZ_CHECK(name_len > 0 && name_len < sizeof(ent.name));

	n = (size_t)snprintf(canon, sizeof(canon), "%c %" PRIu64 " %" PRId64 " ",
			     ent.type, ent.size, ent.mtime);
	n += proto_encode(ent.name, name_len, canon + n, sizeof(canon) - n);
	FUZZ_CHECK(n <= sizeof(canon));
	FUZZ_CHECK(proto_parse_entry(canon, n, &ent_again) == 0);
	FUZZ_CHECK(ent_again.type == ent.type);
	FUZZ_CHECK(ent_again.size == ent.size);
	FUZZ_CHECK(ent_again.mtime == ent.mtime);
	FUZZ_CHECK(strcmp(ent_again.name, ent.name) == 0);
}

/* Percent-coding: encoding any bytes without NUL decodes back to them,
 * decoding what decodes re-encodes to a fixed point, and a short output
 * buffer gets a prefix of the full encoding. */
static void check_coding(const char *in, size_t len)
{
	size_t enc_len, cut;
	char *enc, *dec, *part;
	ssize_t dec_len;

	enc_len = proto_encode(in, len, NULL, 0);
	FUZZ_CHECK(enc_len >= len && enc_len <= 3 * len);
	enc = malloc(enc_len + 1);
	dec = malloc(enc_len + 1);
	FUZZ_CHECK(enc != NULL && dec != NULL);
	FUZZ_CHECK(proto_encode(in, len, enc, enc_len) == enc_len);

	dec_len = proto_decode(enc, enc_len, dec);
	if (memchr(in, '\0', len) != NULL) {
		FUZZ_CHECK(dec_len == -1);
	} else {
		FUZZ_CHECK(dec_len == (ssize_t)len);
		FUZZ_CHECK(memcmp(dec, in, len) == 0 && dec[len] == '\0');
	}

	cut = enc_len / 2;
	part = malloc(cut + 1);
	FUZZ_CHECK(part != NULL);
	FUZZ_CHECK(proto_encode(in, len, part, cut) == enc_len);
	FUZZ_CHECK(memcmp(part, enc, cut) == 0);
	free(part);

	/* The input itself as percent-encoded text. */
	dec_len = proto_decode(in, len, dec);
	if (dec_len >= 0) {
		size_t again_len;

		FUZZ_CHECK((size_t)dec_len <= len);
		FUZZ_CHECK(strlen(dec) == (size_t)dec_len);
		again_len = proto_encode(dec, (size_t)dec_len, enc, enc_len);
		FUZZ_CHECK(again_len <= enc_len);
		FUZZ_CHECK(proto_decode(enc, again_len, dec) == dec_len);
		FUZZ_CHECK(proto_encode(dec, (size_t)dec_len, NULL, 0) ==
			   again_len);
	}
	free(dec);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t used = 0;
	ssize_t n;

	check_coding(buf, size);

	/* The lines one connection would send, as conn.c takes them. */
	while (used < size) {
		n = line_length(buf + used, size - used);
		if (n == -414)
			break;
		if (n == 0) {
			/* The rest has no LF: the parsers take any length
			 * below FERRY_LINE_MAX, so they get it all the same. */
			n = (ssize_t)(size - used) + 1;
		}
		check_request(buf + used, (size_t)n - 1);
		check_reply(buf + used, (size_t)n - 1);
		check_entry(buf + used, (size_t)n - 1);
		used += (size_t)n;
	}
	return 0;
}
