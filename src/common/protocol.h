/* The wire protocol (PROTOCOL.md), as pure code: buffers in, requests or
 * error codes out. Shared by ferryd and the ferry client. */
#ifndef FERRY_PROTOCOL_H
#define FERRY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FERRY_DEFAULT_PORT 7070
#define FERRY_LINE_MAX 4096         /* bytes in a request line, LF included */
#define FERRY_NUMBER_MAX INT64_MAX  /* numbers fit in 63 bits */

/* Parses LEN bytes of unsigned decimal: 1 to 20 digits, nothing else (no
 * sign, space or base prefix, unlike strtoull), at most FERRY_NUMBER_MAX.
 * Every number on the wire, in .part.meta files and on ferry's command line
 * is read by it. Returns 0, or -1 for anything else. */
int proto_parse_number(const char *s, size_t len, uint64_t *out);
/* Like proto_parse_number, with an optional '-': mtimes before 1970 exist. */
int proto_parse_signed(const char *s, size_t len, int64_t *out);

enum proto_kind {
	PROTO_RAW,  /* the whole line is a path; answer is the bare file */
	PROTO_GET,  /* GET PATH [OFFSET [LENGTH]] */
	PROTO_LIST, /* LIST [DIR] */
	PROTO_SUM,  /* SUM PATH: the file's SHA-256, no body */
	PROTO_PING, /* PING: "OK" while serving, for health checks */
};

struct proto_request {
	enum proto_kind kind;
	char path[FERRY_LINE_MAX]; /* decoded, NUL-terminated, never has NUL */
	size_t path_len;
	uint64_t offset;           /* 0 unless given */
	uint64_t length;           /* valid when has_length */
	bool has_length;
};

/* Finds the end of the first line in BUF. Returns its length including the
 * LF (> 0), 0 if no LF yet and more may come, or -414 when LEN already holds
 * FERRY_LINE_MAX bytes without an LF. */
ssize_t proto_line_length(const char *buf, size_t len);

/* Parses one line of LEN bytes, LF excluded (a CR before it is dropped
 * here). Returns 0, or the protocol error code (400) for a malformed line. */
int proto_parse_line(const char *line, size_t len, struct proto_request *req);

/* Percent-decodes IN (LEN bytes) into OUT (at least LEN + 1 bytes), NUL
 * terminated. Returns the decoded length, or -1 for a bad escape, %00, or a
 * literal byte below 0x21 or above 0x7e. */
ssize_t proto_decode(const char *in, size_t len, char *out);

/* Percent-encodes LEN bytes of IN: '%', and every byte below 0x21 or above
 * 0x7e. Writes at most CAP bytes (no NUL); returns the full encoded length,
 * so a result > CAP means OUT was too small. */
size_t proto_encode(const char *in, size_t len, char *out, size_t cap);

/* The human reason for an error code ("not found" for 404). */
const char *proto_reason(int code);
/* Whether the server closes the connection after sending this error. */
bool proto_error_closes(int code);

/* Format "OK LENGTH SIZE MTIME\n", "OK LENGTH\n" and "ERR CODE REASON\n".
 * Return the length written (snprintf semantics). */
int proto_format_ok(char *buf, size_t cap, uint64_t length, uint64_t size,
		    int64_t mtime);
int proto_format_ok_list(char *buf, size_t cap, uint64_t length);
int proto_format_err(char *buf, size_t cap, int code, const char *reason);

#define FERRY_SHA256_BYTES 32

/* DIGEST as 64 lowercase hex digits and a NUL, as sha256sum prints it. */
void proto_format_sha256(char out[2 * FERRY_SHA256_BYTES + 1],
			 const unsigned char digest[FERRY_SHA256_BYTES]);

/* Formats "OK sha256 HEX SIZE MTIME\n", HEX the 64 lowercase hex digits of
 * DIGEST. Returns the length written (snprintf semantics). */
int proto_format_ok_sum(char *buf, size_t cap,
			const unsigned char digest[FERRY_SHA256_BYTES],
			uint64_t size, int64_t mtime);

/* A server's reply line, for clients. */
struct proto_reply {
	bool ok;
	int code;            /* ERR: the code */
	char reason[256];    /* ERR: the reason text */
	uint64_t length;     /* OK */
	uint64_t size;       /* OK to GET */
	int64_t mtime;       /* OK to GET */
	int fields;          /* OK: how many numbers followed (1 or 3) */
};

/* Parses a reply line of LEN bytes, LF excluded. 0, or -1 if malformed. */
int proto_parse_reply(const char *line, size_t len, struct proto_reply *rep);

/* One listing entry "TYPE SIZE MTIME NAME", LF excluded. */
struct proto_entry {
	char type; /* 'f' or 'd' */
	uint64_t size;
	int64_t mtime;
	char name[FERRY_LINE_MAX]; /* decoded */
};
int proto_parse_entry(const char *line, size_t len, struct proto_entry *ent);

/* The answer to "SUM PATH", for clients: "OK sha256 HEX SIZE MTIME" (HEX
 * 64 lowercase hex digits, SIZE and MTIME as in GET's OK line) or "ERR CODE
 * REASON" (then only ok, code and reason are set). */
struct proto_sum_reply {
	bool ok;
	int code;
	char reason[256];
	unsigned char sha256[FERRY_SHA256_BYTES];
	uint64_t size;
	int64_t mtime;
};

/* Parses a SUM reply line of LEN bytes, LF excluded. 0, or -1 if malformed
 * (another algorithm than sha256, uppercase or short hex, a missing
 * field). */
int proto_parse_sum_reply(const char *line, size_t len,
			  struct proto_sum_reply *rep);

#endif
