/* The wire protocol of PROTOCOL.md as pure functions: request lines in,
 * struct proto_request out; reply and listing lines both ways. No I/O. */
#include "common/protocol.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIGITS 20

ssize_t proto_line_length(const char *buf, size_t len)
{
	size_t scan = len < FERRY_LINE_MAX ? len : FERRY_LINE_MAX;
	const char *lf = memchr(buf, '\n', scan);

	if (lf != NULL)
		return lf - buf + 1;
	/* An LF past the first FERRY_LINE_MAX bytes would make the line too
	 * long as well, so there is no need to look further. */
	if (len >= FERRY_LINE_MAX)
		return -414;
	return 0;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool needs_escape(unsigned char c)
{
	return c == '%' || c < 0x21 || c > 0x7e;
}

ssize_t proto_decode(const char *in, size_t len, char *out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hex_value((unsigned char)in[i + 1]);
			lo = hex_value((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			out[n++] = (char)(hi << 4 | lo);
			i += 3;
		} else if (c < 0x21 || c > 0x7e) {
			return -1;
		} else {
			out[n++] = (char)c;
			i++;
		}
	}
	out[n] = '\0';
	return (ssize_t)n;
}

size_t proto_encode(const char *in, size_t len, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc[3];
		size_t k, w = 1;

		esc[0] = (char)c;
		if (needs_escape(c)) {
			esc[0] = '%';
			esc[1] = hex[c >> 4];
			esc[2] = hex[c & 0xf];
			w = 3;
		}
		for (k = 0; k < w; k++, n++)
			if (n < cap)
				out[n] = esc[k];
	}
	return n;
}

int proto_parse_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > MAX_DIGITS)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > ((uint64_t)FERRY_NUMBER_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int proto_parse_signed(const char *s, size_t len, int64_t *out)
{
	uint64_t v;

	if (len > 0 && s[0] == '-') {
		if (proto_parse_number(s + 1, len - 1, &v) < 0)
			return -1;
		*out = -(int64_t)v;
		return 0;
	}
	if (proto_parse_number(s, len, &v) < 0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Splits LEN bytes at single spaces into at most MAX fields. Returns the
 * number of fields, or -1 when there are more, or any is empty. */
static int split_fields(const char *s, size_t len, const char **field,
			size_t *field_len, int max)
{
	int n = 0;
	size_t start = 0, i;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (i == start || n == max)
			return -1;
		field[n] = s + start;
		field_len[n] = i - start;
		n++;
		start = i + 1;
	}
	return n;
}

static int decode_path(const char *s, size_t len, struct proto_request *req)
{
	ssize_t n;

	if (len >= sizeof(req->path))
		return 400;
	n = proto_decode(s, len, req->path);
	if (n < 0)
		return 400;
	req->path_len = (size_t)n;
	return 0;
}

static int parse_get(const char *args, size_t len, struct proto_request *req)
{
	const char *field[3];
	size_t field_len[3];
	int n = split_fields(args, len, field, field_len, 3);

	if (n < 1)
		return 400;
	if (decode_path(field[0], field_len[0], req) != 0)
		return 400;
	if (n >= 2 && proto_parse_number(field[1], field_len[1], &req->offset) < 0)
		return 400;
	if (n == 3) {
		if (proto_parse_number(field[2], field_len[2], &req->length) < 0)
			return 400;
		req->has_length = true;
	}
	return 0;
}

/* The arguments of "LIST DIR" and "SUM PATH": exactly one field, so an
 * OFFSET after a SUM's path is a bad request. */
static int parse_one_path(const char *args, size_t len,
			  struct proto_request *req)
{
	const char *field[1];
	size_t field_len[1];

	if (split_fields(args, len, field, field_len, 1) != 1)
		return 400;
	return decode_path(field[0], field_len[0], req);
}

int proto_parse_line(const char *line, size_t len, struct proto_request *req)
{
	req->kind = PROTO_RAW;
	req->path[0] = '\0';
	req->path_len = 0;
	req->offset = 0;
	req->length = 0;
	req->has_length = false;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\0', len) != NULL)
		return 400;

	if (len >= 4 && memcmp(line, "GET ", 4) == 0) {
		req->kind = PROTO_GET;
		return parse_get(line + 4, len - 4, req);
	}
	if (len == 4 && memcmp(line, "LIST", 4) == 0) {
		req->kind = PROTO_LIST;
		return 0;
	}
	if (len >= 5 && memcmp(line, "LIST ", 5) == 0) {
		req->kind = PROTO_LIST;
		return parse_one_path(line + 5, len - 5, req);
	}
	if (len == 4 && memcmp(line, "PING", 4) == 0) {
		req->kind = PROTO_PING;
		return 0;
	}
	if (len >= 4 && memcmp(line, "SUM ", 4) == 0) {
		req->kind = PROTO_SUM;
		return parse_one_path(line + 4, len - 4, req);
	}

	req->kind = PROTO_RAW;
	if (len == 0 || len >= sizeof(req->path))
		return 400;
	memcpy(req->path, line, len);
	req->path[len] = '\0';
	req->path_len = len;
	return 0;
}

const char *proto_reason(int code)
{
	switch (code) {
	case 400: return "bad request";
	case 403: return "forbidden";
	case 404: return "not found";
	case 408: return "request timeout";
	case 414: return "request line too long";
	case 416: return "offset beyond end of file";
	case 429: return "too many connections from this client";
	case 500: return "cannot read file";
	case 503: return "server busy";
	default: return "error";
	}
}

bool proto_error_closes(int code)
{
	switch (code) {
	case 403:
	case 404:
	case 416:
		return false;
	default:
		/* Unknown codes close too: when in doubt, do not guess where
		 * the next request starts. */
		return true;
	}
}

int proto_format_ok(char *buf, size_t cap, uint64_t length, uint64_t size,
		    int64_t mtime)
{
	return snprintf(buf, cap, "OK %" PRIu64 " %" PRIu64 " %" PRId64 "\n",
			length, size, mtime);
}

int proto_format_ok_list(char *buf, size_t cap, uint64_t length)
{
	return snprintf(buf, cap, "OK %" PRIu64 "\n", length);
}

int proto_format_err(char *buf, size_t cap, int code, const char *reason)
{
	if (reason == NULL)
		reason = proto_reason(code);
	return snprintf(buf, cap, "ERR %d %s\n", code, reason);
}

void proto_format_sha256(char out[2 * FERRY_SHA256_BYTES + 1],
			 const unsigned char digest[FERRY_SHA256_BYTES])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < FERRY_SHA256_BYTES; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[2 * FERRY_SHA256_BYTES] = '\0';
}

int proto_format_ok_sum(char *buf, size_t cap,
			const unsigned char digest[FERRY_SHA256_BYTES],
			uint64_t size, int64_t mtime)
{
	char text[2 * FERRY_SHA256_BYTES + 1];

	proto_format_sha256(text, digest);
	return snprintf(buf, cap, "OK sha256 %s %" PRIu64 " %" PRId64 "\n",
			text, size, mtime);
}

static int parse_err_reply(const char *s, size_t len, struct proto_reply *rep)
{
	size_t i, reason_len;

	if (len < 3)
		return -1;
	for (i = 0; i < 3; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	rep->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (len == 3)
		return 0;
	if (s[3] != ' ')
		return -1;
	reason_len = len - 4;
	if (reason_len >= sizeof(rep->reason))
		reason_len = sizeof(rep->reason) - 1;
	memcpy(rep->reason, s + 4, reason_len);
	rep->reason[reason_len] = '\0';
	return 0;
}

int proto_parse_reply(const char *line, size_t len, struct proto_reply *rep)
{
	const char *field[3];
	size_t field_len[3];
	int n;

	memset(rep, 0, sizeof(*rep));
	if (len >= 4 && memcmp(line, "ERR ", 4) == 0)
		return parse_err_reply(line + 4, len - 4, rep);
	if (len < 3 || memcmp(line, "OK ", 3) != 0)
		return -1;

	n = split_fields(line + 3, len - 3, field, field_len, 3);
	if (n != 1 && n != 3)
		return -1;
	if (proto_parse_number(field[0], field_len[0], &rep->length) < 0)
		return -1;
	if (n == 3 && (proto_parse_number(field[1], field_len[1], &rep->size) < 0 ||
		       proto_parse_signed(field[2], field_len[2], &rep->mtime) < 0))
		return -1;
	rep->ok = true;
	rep->fields = n;
	return 0;
}

int proto_parse_entry(const char *line, size_t len, struct proto_entry *ent)
{
	const char *field[4];
	size_t field_len[4];

	ent->type = 0;
	ent->size = 0;
	ent->mtime = 0;
	ent->name[0] = '\0';
	if (split_fields(line, len, field, field_len, 4) != 4)
		return -1;
	if (field_len[0] != 1 || (field[0][0] != 'f' && field[0][0] != 'd'))
		return -1;
	ent->type = field[0][0];
	if (proto_parse_number(field[1], field_len[1], &ent->size) < 0 ||
	    proto_parse_signed(field[2], field_len[2], &ent->mtime) < 0)
		return -1;
	if (field_len[3] >= sizeof(ent->name) ||
	    proto_decode(field[3], field_len[3], ent->name) < 0)
		return -1;
	return 0;
}

int proto_parse_sum_reply(const char *line, size_t len,
			  struct proto_sum_reply *rep)
{
	struct proto_reply err;
	const char *field[4];
	size_t field_len[4], i;

	memset(rep, 0, sizeof(*rep));
	if (len >= 4 && memcmp(line, "ERR ", 4) == 0) {
		if (proto_parse_reply(line, len, &err) < 0)
			return -1;
		rep->code = err.code;
		memcpy(rep->reason, err.reason, sizeof(rep->reason));
		return 0;
	}
	if (len < 3 || memcmp(line, "OK ", 3) != 0)
		return -1;
	if (split_fields(line + 3, len - 3, field, field_len, 4) != 4)
		return -1;
	if (field_len[0] != 6 || memcmp(field[0], "sha256", 6) != 0 ||
	    field_len[1] != 2 * FERRY_SHA256_BYTES)
		return -1;
	for (i = 0; i < 2 * FERRY_SHA256_BYTES; i++)
		if (field[1][i] >= 'A' && field[1][i] <= 'F')
			return -1; /* lowercase only, as sha256sum prints */
	for (i = 0; i < FERRY_SHA256_BYTES; i++) {
		int hi = hex_value((unsigned char)field[1][2 * i]);
		int lo = hex_value((unsigned char)field[1][2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		rep->sha256[i] = (unsigned char)(hi << 4 | lo);
	}
	if (proto_parse_number(field[2], field_len[2], &rep->size) < 0 ||
	    proto_parse_signed(field[3], field_len[3], &rep->mtime) < 0)
		return -1;
	rep->ok = true;
	return 0;
}
