/* Unit tests for proxy.c: PROXY protocol headers, versions 1 and 2, whole,
 * cut short at every byte, and refused (wrong signature, bad fields, too
 * long). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/proxy.h"

static const unsigned char sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

/* A version 2 header in BUF: COMMAND, FAMILY, BODY_LEN bytes of body
 * (BODY, or zeros); returns its length. */
static size_t v2(unsigned char *buf, unsigned command, unsigned family,
		 const void *body, size_t body_len)
{
	memcpy(buf, sig, sizeof sig);
	buf[12] = (unsigned char)(0x20 | command);
	buf[13] = (unsigned char)family;
	buf[14] = (unsigned char)(body_len >> 8);
	buf[15] = (unsigned char)body_len;
	if (body != NULL)
		memcpy(buf + 16, body, body_len);
	else
		memset(buf + 16, 0, body_len);
	return 16 + body_len;
}

/* Every proper prefix of a valid header is "more must come". */
static void assert_prefixes_wait(const void *buf, size_t len)
{
	struct proxy_header h;
	size_t i;

	for (i = 0; i < len; i++)
		ck_assert_msg(proxy_parse(buf, i, &h) == 0,
			      "prefix of %zu bytes of %zu", i, len);
}

static void assert_v4(const struct proxy_header *h, const char *ip,
		      unsigned port)
{
	const struct sockaddr_in *in = (const void *)&h->src;
	char text[INET_ADDRSTRLEN];

	ck_assert(!h->local);
	ck_assert_int_eq(in->sin_family, AF_INET);
	ck_assert_uint_eq(h->src_len, sizeof *in);
	inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
	ck_assert_str_eq(text, ip);
	ck_assert_uint_eq(ntohs(in->sin_port), port);
}

START_TEST(v1_tcp4)
{
	const char *s = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 7070\r\nGET /x\n";
	size_t hdr = strlen(s) - strlen("GET /x\n");
	struct proxy_header h;

	ck_assert_int_eq(proxy_parse(s, strlen(s), &h), (ssize_t)hdr);
	assert_v4(&h, "192.0.2.1", 56324);
	ck_assert_int_eq(proxy_parse(s, hdr, &h), (ssize_t)hdr);
	assert_prefixes_wait(s, hdr);
}
END_TEST

START_TEST(v1_tcp6)
{
	const char *s = "PROXY TCP6 2001:db8::1 ::1 65535 7070\r\n";
	const struct sockaddr_in6 *in6;
	struct proxy_header h;
	char text[INET6_ADDRSTRLEN];

	ck_assert_int_eq(proxy_parse(s, strlen(s), &h), (ssize_t)strlen(s));
	in6 = (const void *)&h.src;
	ck_assert(!h.local);
	ck_assert_int_eq(in6->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
	ck_assert_str_eq(text, "2001:db8::1");
	ck_assert_uint_eq(ntohs(in6->sin6_port), 65535);
}
END_TEST

START_TEST(v1_unknown)
{
	static const char *const ok[] = {
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
	};
	struct proxy_header h;
	size_t i;

	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(proxy_parse(ok[i], strlen(ok[i]), &h),
				 (ssize_t)strlen(ok[i]));
		ck_assert(h.local);
	}
}
END_TEST

START_TEST(v1_longest)
{
	/* 107 bytes exactly: the longest the specification allows. */
	char s[200];
	struct proxy_header h;

	snprintf(s, sizeof s, "PROXY UNKNOWN %0*d\r\n", 107 - 16, 0);
	ck_assert_uint_eq(strlen(s), 107);
	ck_assert_int_eq(proxy_parse(s, 107, &h), 107);
	/* One more and the CRLF ends past byte 107. */
	snprintf(s, sizeof s, "PROXY UNKNOWN %0*d\r\n", 108 - 16, 0);
	ck_assert_int_eq(proxy_parse(s, strlen(s), &h), -1);
	/* No CR in the first 106 bytes: the CRLF cannot end by byte 107,
	 * so there is no need to wait for more. */
	memset(s, 'x', sizeof s);
	memcpy(s, "PROXY ", 6);
	ck_assert_int_eq(proxy_parse(s, 106, &h), -1);
	ck_assert_int_eq(proxy_parse(s, 105, &h), 0);
}
END_TEST

START_TEST(v1_refused)
{
	static const char *const bad[] = {
		"GET /x\n",
		"PROXY\r\n",
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",       /* LF without CR */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8.9 1 2\r\n",
		"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",          /* v6 in TCP4 */
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",          /* v4 in TCP6 */
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 x\r\n",
		"PROXY UNKNOWNX\r\n",
		"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
	};
	struct proxy_header h;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(proxy_parse(bad[i], strlen(bad[i]), &h) == -1,
			      "taken: '%s'", bad[i]);
	/* A NUL in the line. */
	ck_assert_int_eq(proxy_parse("PROXY \0NKNOWN\r\n", 15, &h), -1);
}
END_TEST

START_TEST(v2_tcp4_tlvs)
{
	unsigned char buf[600], body[12 + 7];
	struct proxy_header h;
	size_t len;

	memset(body, 0, sizeof body);
	inet_pton(AF_INET, "203.0.113.9", body);
	inet_pton(AF_INET, "10.0.0.1", body + 4);
	body[8] = 0x12; /* 4660 */
	body[9] = 0x34;
	/* A TLV, skipped: type 1 (ALPN), length 4. */
	memcpy(body + 12, "\x01\x00\x04http", 7);
	len = v2(buf, 1, 0x11, body, sizeof body);
	memcpy(buf + len, "PING\n", 5);
	ck_assert_int_eq(proxy_parse(buf, len + 5, &h), (ssize_t)len);
	assert_v4(&h, "203.0.113.9", 4660);
	assert_prefixes_wait(buf, len);
}
END_TEST

START_TEST(v2_tcp6)
{
	unsigned char buf[100], body[36];
	const struct sockaddr_in6 *in6;
	struct proxy_header h;
	char text[INET6_ADDRSTRLEN];
	size_t len;

	memset(body, 0, sizeof body);
	inet_pton(AF_INET6, "2001:db8::7", body);
	body[32] = 0x00;
	body[33] = 0x50;
	len = v2(buf, 1, 0x21, body, sizeof body);
	ck_assert_int_eq(proxy_parse(buf, len, &h), (ssize_t)len);
	in6 = (const void *)&h.src;
	ck_assert(!h.local);
	inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
	ck_assert_str_eq(text, "2001:db8::7");
	ck_assert_uint_eq(ntohs(in6->sin6_port), 80);
}
END_TEST

START_TEST(v2_local_and_unspec)
{
	unsigned char buf[700];
	struct proxy_header h;
	size_t len;

	/* LOCAL: the proxy's own connection, whatever the family says. */
	len = v2(buf, 0, 0x11, NULL, 12);
	ck_assert_int_eq(proxy_parse(buf, len, &h), (ssize_t)len);
	ck_assert(h.local);
	len = v2(buf, 0, 0x00, NULL, 0);
	ck_assert_int_eq(proxy_parse(buf, len, &h), 16);
	ck_assert(h.local);
	/* PROXY over UNSPEC or UNIX: the socket's peer stays. */
	len = v2(buf, 1, 0x00, NULL, 0);
	ck_assert_int_eq(proxy_parse(buf, len, &h), 16);
	ck_assert(h.local);
	len = v2(buf, 1, 0x31, NULL, 216);
	ck_assert_int_eq(proxy_parse(buf, len, &h), (ssize_t)len);
	ck_assert(h.local);
	/* The largest taken: 536 bytes in all. */
	len = v2(buf, 1, 0x11, NULL, 536 - 16);
	ck_assert_int_eq(proxy_parse(buf, len, &h), 536);
}
END_TEST

START_TEST(v2_refused)
{
	unsigned char buf[700];
	struct proxy_header h;
	size_t len;

	/* Wrong signature, at every byte of it. */
	for (size_t i = 0; i < sizeof sig; i++) {
		len = v2(buf, 1, 0x11, NULL, 12);
		buf[i] ^= 0x40;
		ck_assert_msg(proxy_parse(buf, len, &h) == -1, "byte %zu", i);
		ck_assert_int_eq(proxy_parse(buf, i + 1, &h), -1);
	}
	/* Version 1 or 3 in the binary form; command 2. */
	len = v2(buf, 1, 0x11, NULL, 12);
	buf[12] = 0x11;
	ck_assert_int_eq(proxy_parse(buf, len, &h), -1);
	buf[12] = 0x31;
	ck_assert_int_eq(proxy_parse(buf, 13, &h), -1);
	buf[12] = 0x22;
	ck_assert_int_eq(proxy_parse(buf, len, &h), -1);
	/* Family 4, protocol 3. */
	len = v2(buf, 1, 0x41, NULL, 12);
	ck_assert_int_eq(proxy_parse(buf, len, &h), -1);
	len = v2(buf, 1, 0x13, NULL, 12);
	ck_assert_int_eq(proxy_parse(buf, 14, &h), -1);
	/* Longer than 536 in all: refused from the length field on. */
	len = v2(buf, 1, 0x11, NULL, 536 - 16 + 1);
	ck_assert_int_eq(proxy_parse(buf, 16, &h), -1);
	buf[14] = 0xff;
	buf[15] = 0xff;
	ck_assert_int_eq(proxy_parse(buf, 16, &h), -1);
	/* Shorter than the family's addresses. */
	len = v2(buf, 1, 0x11, NULL, 11);
	ck_assert_int_eq(proxy_parse(buf, len, &h), -1);
	len = v2(buf, 1, 0x21, NULL, 35);
	ck_assert_int_eq(proxy_parse(buf, len, &h), -1);
	/* A length larger than what arrived: wait (the caller times out). */
	len = v2(buf, 1, 0x11, NULL, 100);
	ck_assert_int_eq(proxy_parse(buf, 16 + 12, &h), 0);
}
END_TEST

START_TEST(empty_waits)
{
	struct proxy_header h;

	ck_assert_int_eq(proxy_parse("", 0, &h), 0);
	ck_assert_int_eq(proxy_parse("PRO", 3, &h), 0);
	ck_assert_int_eq(proxy_parse("\r\n\r", 3, &h), 0);
	ck_assert_int_eq(proxy_parse("PRX", 3, &h), -1);
	ck_assert_int_eq(proxy_parse("\n", 1, &h), -1);
}
END_TEST

static Suite *proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("v1");

	tcase_add_test(tc, v1_tcp4);
	tcase_add_test(tc, v1_tcp6);
	tcase_add_test(tc, v1_unknown);
	tcase_add_test(tc, v1_longest);
	tcase_add_test(tc, v1_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, v2_tcp4_tlvs);
	tcase_add_test(tc, v2_tcp6);
	tcase_add_test(tc, v2_local_and_unspec);
	tcase_add_test(tc, v2_refused);
	tcase_add_test(tc, empty_waits);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proxy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
