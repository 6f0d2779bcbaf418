/* The PROXY protocol header, versions 1 and 2: see proxy.h. */
#include "daemon/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN (sizeof V1_PREFIX - 1)

static const unsigned char v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};
#define V2_FIXED 16 /* signature, version/command, family, length */

/* Whether the LEN bytes of BUF agree with the first LEN bytes of SIG
 * (SIG_LEN long): a prefix that may still become the signature. */
static bool prefix_of(const unsigned char *buf, size_t len, const void *sig,
		      size_t sig_len)
{
	return memcmp(buf, sig, len < sig_len ? len : sig_len) == 0;
}

/* ---- version 1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" ---- */

/* A port: 1 to 5 digits, at most 65535, no leading zero. */
static int parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned v = 0;
	size_t i;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* An address of FAMILY as inet_pton takes it, from LEN bytes of S. */
static int parse_addr(int family, const char *s, size_t len, void *addr)
{
	char text[INET6_ADDRSTRLEN];

	if (len == 0 || len >= sizeof text)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(family, text, addr) == 1 ? 0 : -1;
}

/* Parses the fields of a complete line (LINE, LEN bytes before the CRLF,
 * after "PROXY "). 0 or -1. */
static int parse_v1_fields(const char *line, size_t len,
			   struct proxy_header *out)
{
	const char *field[5];
	size_t field_len[5];
	size_t n = 0, i, start = 0;
	uint16_t sport, dport;
	int family;

	if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
	    (len == 7 || line[7] == ' ')) {
		/* Whatever follows UNKNOWN is to be ignored. */
		out->local = true;
		return 0;
	}
	if (len < 5 || memcmp(line, "TCP4 ", 5) != 0) {
		if (len < 5 || memcmp(line, "TCP6 ", 5) != 0)
			return -1;
		family = AF_INET6;
	} else {
		family = AF_INET;
	}
	/* Exactly four fields, one space apart. */
	for (i = 5, start = 5; i <= len; i++) {
		if (i < len && line[i] != ' ')
			continue;
		if (n == 4 || i == start)
			return -1;
		field[n] = line + start;
		field_len[n++] = i - start;
		start = i + 1;
	}
	if (n != 4 || parse_port(field[2], field_len[2], &sport) < 0 ||
	    parse_port(field[3], field_len[3], &dport) < 0)
		return -1;
	memset(&out->src, 0, sizeof out->src);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&out->src;
		struct in_addr dst;

		if (parse_addr(AF_INET, field[0], field_len[0],
			       &in->sin_addr) < 0 ||
		    parse_addr(AF_INET, field[1], field_len[1], &dst) < 0)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(sport);
		out->src_len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->src;
		struct in6_addr dst;

		if (parse_addr(AF_INET6, field[0], field_len[0],
			       &in6->sin6_addr) < 0 ||
		    parse_addr(AF_INET6, field[1], field_len[1], &dst) < 0)
			return -1;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(sport);
		out->src_len = sizeof *in6;
	}
	out->local = false;
	return 0;
}

static ssize_t parse_v1(const unsigned char *buf, size_t len,
			struct proxy_header *out)
{
	size_t i;

	if (!prefix_of(buf, len, V1_PREFIX, V1_PREFIX_LEN))
		return -1;
	for (i = 0; i < len && i < FERRY_PROXY_V1_MAX; i++) {
		/* Only printable ASCII before the CRLF. */
		if (buf[i] == '\r')
			break;
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -1;
	}
	/* The CRLF must end within FERRY_PROXY_V1_MAX bytes. */
	if (i == FERRY_PROXY_V1_MAX || i > FERRY_PROXY_V1_MAX - 2)
		return -1;
	if (i == len || i + 1 == len)
		return 0;
	if (buf[i + 1] != '\n')
		return -1;
	if (parse_v1_fields((const char *)buf + V1_PREFIX_LEN,
			    i - V1_PREFIX_LEN, out) < 0)
		return -1;
	return (ssize_t)(i + 2);
}

/* ---- version 2: the binary header ---- */

static ssize_t parse_v2(const unsigned char *buf, size_t len,
			struct proxy_header *out)
{
	size_t body, total;
	unsigned command;

	if (!prefix_of(buf, len, v2_sig, sizeof v2_sig))
		return -1;
	if (len < sizeof v2_sig + 1)
		return 0;
	/* Version 2; command LOCAL (0) or PROXY (1). */
	if ((buf[12] >> 4) != 2 || (buf[12] & 0x0f) > 1)
		return -1;
	command = buf[12] & 0x0f;
	if (len < 14)
		return 0;
	/* Family UNSPEC, INET, INET6 or UNIX; protocol UNSPEC, STREAM or
	 * DGRAM. */
	if ((buf[13] >> 4) > 3 || (buf[13] & 0x0f) > 2)
		return -1;
	if (len < V2_FIXED)
		return 0;
	body = (size_t)buf[14] << 8 | buf[15];
	total = V2_FIXED + body;
	if (total > FERRY_PROXY_V2_MAX)
		return -1;
	if (len < total)
		return 0;

	memset(&out->src, 0, sizeof out->src);
	out->src_len = 0;
	out->local = true;
	if (command == 0)
		return (ssize_t)total;
	if (buf[13] == 0x11) { /* TCP over IPv4 */
		struct sockaddr_in *in = (struct sockaddr_in *)&out->src;

		if (body < 12)
			return -1;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, buf + 16, 4);
		memcpy(&in->sin_port, buf + 24, 2);
		out->src_len = sizeof *in;
		out->local = false;
	} else if (buf[13] == 0x21) { /* TCP over IPv6 */
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->src;

		if (body < 36)
			return -1;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, buf + 16, 16);
		memcpy(&in6->sin6_port, buf + 48, 2);
		out->src_len = sizeof *in6;
		out->local = false;
	}
	/* The addresses' block is followed by TLVs, which are skipped. */
	return (ssize_t)total;
}

ssize_t proxy_parse(const void *buf, size_t len, struct proxy_header *out)
{
	const unsigned char *b = buf;

	if (len == 0)
		return 0;
	if (b[0] == 'P')
		return parse_v1(b, len, out);
	if (b[0] == v2_sig[0])
		return parse_v2(b, len, out);
	return -1;
}
