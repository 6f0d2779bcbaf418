/* Unit tests for src/daemon/config.c: defaults, values, sizes, durations, listen
 * addresses and the exact text and location of every error. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

/* By path, because "config.h" alone finds autoconf's header in the build
 * directory before -I src is searched. */
#include "daemon/config.h"

#define BASE_DIR "/etc/ferryd"

/* Parses TEXT as "test.yaml", which must succeed without messages. */
static struct config *parse_ok(const char *text)
{
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	int rc;

	rc = config_parse("test.yaml", text, strlen(text), BASE_DIR, &cfg,
			  &diag);
	ck_assert_msg(rc == 0, "rc %d, first message: %s", rc,
		      diag.count ? diag.lines[0] : "(none)");
	ck_assert_uint_eq(diag.count, 0);
	ck_assert_ptr_nonnull(cfg);
	config_diag_free(&diag);
	return cfg;
}

/* Parses TEXT, which must fail with exactly the NULL-terminated EXPECTED
 * messages, in order, and leave the output pointer alone. */
static void expect_errors(const char *text, const char *const *expected)
{
	static struct config untouched;
	struct config_diag diag = { 0 };
	struct config *cfg = &untouched;
	size_t i, n = 0;
	int rc;

	while (expected[n])
		n++;
	rc = config_parse("test.yaml", text, strlen(text), BASE_DIR, &cfg,
			  &diag);
	for (i = 0; i < diag.count && i < n; i++)
		ck_assert_str_eq(diag.lines[i], expected[i]);
	ck_assert_msg(diag.count == n, "%zu messages, expected %zu; extra: %s",
		      diag.count, n, diag.count > n ? diag.lines[n] : "(none)");
	ck_assert_int_eq(rc, (int)n);
	ck_assert_ptr_eq(cfg, &untouched);
	config_diag_free(&diag);
	ck_assert_ptr_null(diag.lines);
	ck_assert_uint_eq(diag.count, 0);
}

#define EXPECT_ERRORS(text, ...)                                              \
	expect_errors(text, (const char *const[]){ __VA_ARGS__, NULL })

static void check_v4(const struct listen_addr *la, const char *ip,
		     uint16_t port, const char *text)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&la->addr;
	struct in_addr want;

	ck_assert_int_eq(inet_pton(AF_INET, ip, &want), 1);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), port);
	ck_assert_uint_eq(sin->sin_addr.s_addr, want.s_addr);
	ck_assert_uint_eq(la->addr_len, sizeof(struct sockaddr_in));
	ck_assert_str_eq(la->text, text);
}

static void check_v6(const struct listen_addr *la, const char *ip,
		     uint16_t port, const char *text)
{
	const struct sockaddr_in6 *sin6 =
		(const struct sockaddr_in6 *)&la->addr;
	struct in6_addr want;

	ck_assert_int_eq(inet_pton(AF_INET6, ip, &want), 1);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), port);
	ck_assert_mem_eq(&sin6->sin6_addr, &want, sizeof want);
	ck_assert_uint_eq(la->addr_len, sizeof(struct sockaddr_in6));
	ck_assert_str_eq(la->text, text);
}

/* Writes TEXT to a new file under /tmp and its name into PATH. */
static void write_temp(char path[64], const char *text, size_t len)
{
	int fd;

	snprintf(path, 64, "/tmp/ferry-check-config-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* defaults */

static void check_defaults(const struct config *cfg)
{
	ck_assert_uint_eq(cfg->listen_count, 1);
	check_v4(&cfg->listen[0], "127.0.0.1", 7070, "127.0.0.1:7070");
	ck_assert_int_eq(cfg->mode, FERRY_MODE_SENDFILE);
	ck_assert_uint_eq(cfg->chunk_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg->buffer_bytes, 256 * 1024);
	ck_assert_uint_eq(cfg->max_connections, 10000);
	ck_assert_uint_eq(cfg->max_per_client, 64);
	ck_assert_uint_eq(cfg->request_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->send_timeout_ms, 60000);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 10000);
	ck_assert_uint_eq(cfg->drain_ms, 0);
	ck_assert(!cfg->listen[0].proxy_protocol);
	ck_assert(cfg->listen[0].deferred);
	ck_assert_uint_eq(cfg->rate_bps, 0);
	ck_assert_uint_eq(cfg->rate_total_bps, 0);
	ck_assert_str_eq(cfg->transfer_log, "-");
	ck_assert_int_eq(cfg->log_format, FERRY_LOG_TEXT);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_INFO);
	ck_assert_uint_eq(cfg->threads, 4);
}

START_TEST(test_defaults)
{
	struct config *cfg = parse_ok("root: /srv/ferry\n");

	ck_assert_str_eq(cfg->file, "test.yaml");
	ck_assert_str_eq(cfg->root, "/srv/ferry");
	check_defaults(cfg);
	config_free(cfg);
}
END_TEST

START_TEST(test_defaults_empty_sections)
{
	/* A section left empty, or null, keeps its defaults. */
	struct config *cfg = parse_ok("transfer:\nlimits: ~\nlog: null\n"
				      "root: /srv\n# the end\n");

	ck_assert_str_eq(cfg->root, "/srv");
	check_defaults(cfg);
	config_free(cfg);
}
END_TEST

/* values */

START_TEST(test_all_keys)
{
	struct config *cfg = parse_ok(
		"listen: [\"10.1.2.3:8080\", \"[2001:db8::5]:0\", \"*:9\"]\n"
		"root: /data/files\n"
		"transfer:\n"
		"  mode: buffered\n"
		"  chunk: 64KiB\n"
		"  buffer: 1MiB\n"
		"limits:\n"
		"  connections: 500\n"
		"  per_client: 3\n"
		"  request_timeout: 500ms\n"
		"  idle_timeout: 2m\n"
		"  send_timeout: 1h\n"
		"  shutdown_timeout: 0ms\n"
		"  rate: 20MiB\n"
		"  rate_total: 1GiB\n"
		"log:\n"
		"  transfers: /var/log/ferryd/t.log\n"
		"  format: json\n"
		"  level: debug\n"
		"threads: 16\n");

	ck_assert_uint_eq(cfg->listen_count, 3);
	check_v4(&cfg->listen[0], "10.1.2.3", 8080, "10.1.2.3:8080");
	check_v6(&cfg->listen[1], "2001:db8::5", 0, "[2001:db8::5]:0");
	check_v4(&cfg->listen[2], "0.0.0.0", 9, "*:9");
	ck_assert_str_eq(cfg->root, "/data/files");
	ck_assert_int_eq(cfg->mode, FERRY_MODE_BUFFERED);
	ck_assert_uint_eq(cfg->chunk_bytes, 64 * 1024);
	ck_assert_uint_eq(cfg->buffer_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg->max_connections, 500);
	ck_assert_uint_eq(cfg->max_per_client, 3);
	ck_assert_uint_eq(cfg->request_timeout_ms, 500);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 120000);
	ck_assert_uint_eq(cfg->send_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 0);
	ck_assert_uint_eq(cfg->rate_bps, 20 * 1024 * 1024);
	ck_assert_uint_eq(cfg->rate_total_bps, 1024 * 1024 * 1024);
	ck_assert_str_eq(cfg->transfer_log, "/var/log/ferryd/t.log");
	ck_assert_int_eq(cfg->log_format, FERRY_LOG_JSON);
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_uint_eq(cfg->threads, 16);
	config_free(cfg);
}
END_TEST

START_TEST(test_quoted_values)
{
	struct config *cfg = parse_ok("root: '/srv/with space'\n"
				      "transfer: {mode: \"buffered\", "
				      "chunk: \"8KiB\"}\n"
				      "threads: '2'\n"
				      "listen: '[::1]:7070'\n"
				      "log: {transfers: \"-\"}\n");

	ck_assert_str_eq(cfg->root, "/srv/with space");
	ck_assert_int_eq(cfg->mode, FERRY_MODE_BUFFERED);
	ck_assert_uint_eq(cfg->chunk_bytes, 8192);
	ck_assert_uint_eq(cfg->threads, 2);
	ck_assert_uint_eq(cfg->listen_count, 1);
	check_v6(&cfg->listen[0], "::1", 7070, "[::1]:7070");
	ck_assert_str_eq(cfg->transfer_log, "-");
	config_free(cfg);
}
END_TEST

START_TEST(test_root_resolved)
{
	static const struct {
		const char *yaml, *root;
	} cases[] = {
		{ "root: files\n", "/etc/ferryd/files" },
		{ "root: data/../files/./x/\n", "/etc/ferryd/files/x" },
		{ "root: ..\n", "/etc" },
		{ "root: ../../../..\n", "/" },
		{ "root: .\n", "/etc/ferryd" },
		{ "root: /srv//a/../b/\n", "/srv/b" },
		{ "root: /..\n", "/" },
	};
	struct config *cfg;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg = parse_ok(cases[i].yaml);
		ck_assert_str_eq(cfg->root, cases[i].root);
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_root_relative_without_base)
{
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	const char *text = "root: files\n";

	ck_assert_int_eq(config_parse("t.yaml", text, strlen(text), NULL, &cfg,
				      &diag),
			 1);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 1);
	ck_assert_str_eq(diag.lines[0], "t.yaml:1:7: root: expected an "
					"absolute path, got \"files\"");
	config_diag_free(&diag);

	text = "root: /srv/../files\n";
	ck_assert_int_eq(config_parse("t.yaml", text, strlen(text), NULL, &cfg,
				      &diag),
			 0);
	ck_assert_str_eq(cfg->root, "/files");
	config_free(cfg);
}
END_TEST

START_TEST(test_log_levels)
{
	static const struct {
		const char *yaml;
		enum log_level level;
	} cases[] = {
		{ "root: /r\nlog: {level: error}\n", LOG_LEVEL_ERROR },
		{ "root: /r\nlog: {level: warn}\n", LOG_LEVEL_WARN },
		{ "root: /r\nlog: {level: info}\n", LOG_LEVEL_INFO },
		{ "root: /r\nlog: {level: debug}\n", LOG_LEVEL_DEBUG },
	};
	struct config *cfg;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg = parse_ok(cases[i].yaml);
		ck_assert_int_eq(cfg->log_level, cases[i].level);
		config_free(cfg);
	}
}
END_TEST

START_TEST(test_bounds_inclusive)
{
	struct config *cfg = parse_ok("root: /r\n"
				      "transfer:\n"
				      "  chunk: 2147479552B\n"
				      "  buffer: 64MiB\n"
				      "limits:\n"
				      "  connections: 1000000\n"
				      "  per_client: 1\n"
				      "  request_timeout: 1h\n"
				      "  idle_timeout: 24h\n"
				      "  send_timeout: 1ms\n"
				      "  shutdown_timeout: 60m\n"
				      "  rate: 64GiB\n"
				      "  rate_total: 1\n"
				      "threads: 1024\n");

	ck_assert_uint_eq(cfg->chunk_bytes, 0x7ffff000);
	ck_assert_uint_eq(cfg->buffer_bytes, 64 * 1024 * 1024);
	ck_assert_uint_eq(cfg->max_connections, 1000000);
	ck_assert_uint_eq(cfg->max_per_client, 1);
	ck_assert_uint_eq(cfg->request_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->idle_timeout_ms, 86400000);
	ck_assert_uint_eq(cfg->send_timeout_ms, 1);
	ck_assert_uint_eq(cfg->shutdown_timeout_ms, 3600000);
	ck_assert_uint_eq(cfg->rate_bps, 64ULL << 30);
	ck_assert_uint_eq(cfg->rate_total_bps, 1);
	ck_assert_uint_eq(cfg->threads, 1024);
	config_free(cfg);

	cfg = parse_ok("root: /r\n"
		       "transfer: {chunk: 4KiB, buffer: 4096}\n"
		       "threads: 1\n");
	ck_assert_uint_eq(cfg->chunk_bytes, 4096);
	ck_assert_uint_eq(cfg->buffer_bytes, 4096);
	ck_assert_uint_eq(cfg->threads, 1);
	config_free(cfg);
}
END_TEST

START_TEST(test_listen_max)
{
	char yaml[1024];
	struct config *cfg;
	size_t n, i;

	n = (size_t)snprintf(yaml, sizeof yaml, "root: /r\nlisten:\n");
	for (i = 0; i < FERRY_MAX_LISTEN; i++)
		n += (size_t)snprintf(yaml + n, sizeof yaml - n,
				      "  - 127.0.0.%zu:80\n", i + 1);
	cfg = parse_ok(yaml);
	ck_assert_uint_eq(cfg->listen_count, FERRY_MAX_LISTEN);
	check_v4(&cfg->listen[FERRY_MAX_LISTEN - 1], "127.0.0.16", 80,
		 "127.0.0.16:80");
	config_free(cfg);
}
END_TEST

/* sizes */

START_TEST(test_size_valid)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} cases[] = {
		{ "0", 0 },
		{ "0B", 0 },
		{ "4096", 4096 },
		{ "4096B", 4096 },
		{ "1KiB", 1024 },
		{ "256KiB", 256 * 1024 },
		{ "1MiB", 1024 * 1024 },
		{ "3GiB", 3ULL << 30 },
		{ "007KiB", 7 * 1024 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183GiB", UINT64_MAX - (1ULL << 30) + 1 },
	};
	uint64_t bytes;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		bytes = 12345;
		ck_assert_msg(config_parse_size(cases[i].text, &bytes) == 0,
			      "%s", cases[i].text);
		ck_assert_uint_eq(bytes, cases[i].bytes);
	}
}
END_TEST

START_TEST(test_size_invalid)
{
	static const char *const bad[] = {
		"",	 "1.5MiB", "-1",  "+1",	     "0x10", " 1",    "1 ",
		"1 KiB", "KiB",	   "B",	  "1kib",    "1KB",  "1K",    "1MiBx",
		"1TiB",	 "1e3",	   "1,000", "1_000", "10s",
	};
	uint64_t bytes;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(config_parse_size(bad[i], &bytes) == -EINVAL,
			      "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_size_overflow)
{
	uint64_t bytes;

	ck_assert_int_eq(config_parse_size("18446744073709551616", &bytes),
			 -ERANGE);
	ck_assert_int_eq(config_parse_size("17179869184GiB", &bytes), -ERANGE);
	ck_assert_int_eq(config_parse_size("18014398509481984KiB", &bytes),
			 -ERANGE);
	ck_assert_int_eq(
		config_parse_size("99999999999999999999999999999MiB", &bytes),
		-ERANGE);
	/* Bad syntax wins over a number too large. */
	ck_assert_int_eq(config_parse_size("99999999999999999999999.5", &bytes),
			 -EINVAL);
}
END_TEST

/* durations */

START_TEST(test_duration_valid)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} cases[] = {
		{ "0ms", 0 },
		{ "0s", 0 },
		{ "1ms", 1 },
		{ "500ms", 500 },
		{ "10s", 10000 },
		{ "1m", 60000 },
		{ "2h", 7200000 },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "18446744073709551s", 18446744073709551000ULL },
	};
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ms = 12345;
		ck_assert_msg(config_parse_duration(cases[i].text, &ms) == 0,
			      "%s", cases[i].text);
		ck_assert_uint_eq(ms, cases[i].ms);
	}
}
END_TEST

START_TEST(test_duration_invalid)
{
	static const char *const bad[] = {
		"",	"10",  "0",   "10 s", "1.5s", "-1s", "+1s", "0x10s",
		"s",	"ms",  "10S", "10sec", "10min", "1d", " 1s", "1s ",
		"1m1s", "1KiB",
	};
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(config_parse_duration(bad[i], &ms) == -EINVAL,
			      "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_duration_overflow)
{
	uint64_t ms;

	ck_assert_int_eq(config_parse_duration("18446744073709551616ms", &ms),
			 -ERANGE);
	ck_assert_int_eq(config_parse_duration("18446744073709552s", &ms),
			 -ERANGE);
	ck_assert_int_eq(config_parse_duration("5124095576031h", &ms),
			 -ERANGE);
	ck_assert_int_eq(config_parse_duration("5124095576030h", &ms), 0);
	ck_assert_uint_eq(ms, 5124095576030ULL * 3600000);
}
END_TEST

/* listen */

START_TEST(test_listen_valid)
{
	struct listen_addr la;

	ck_assert_int_eq(config_parse_listen("127.0.0.1:7070", &la), 0);
	check_v4(&la, "127.0.0.1", 7070, "127.0.0.1:7070");
	ck_assert_int_eq(config_parse_listen("0.0.0.0:65535", &la), 0);
	check_v4(&la, "0.0.0.0", 65535, "0.0.0.0:65535");
	ck_assert_int_eq(config_parse_listen("*:80", &la), 0);
	check_v4(&la, "0.0.0.0", 80, "*:80");
	ck_assert_int_eq(config_parse_listen("192.168.10.200:0", &la), 0);
	check_v4(&la, "192.168.10.200", 0, "192.168.10.200:0");
	ck_assert_int_eq(config_parse_listen("[::1]:7070", &la), 0);
	check_v6(&la, "::1", 7070, "[::1]:7070");
	ck_assert_int_eq(config_parse_listen("[::]:0", &la), 0);
	check_v6(&la, "::", 0, "[::]:0");
	ck_assert_int_eq(config_parse_listen("[fe80::1:2:3:4]:443", &la), 0);
	check_v6(&la, "fe80::1:2:3:4", 443, "[fe80::1:2:3:4]:443");
	ck_assert_int_eq(config_parse_listen("[::ffff:10.0.0.1]:8", &la), 0);
	check_v6(&la, "::ffff:10.0.0.1", 8, "[::ffff:10.0.0.1]:8");
}
END_TEST

START_TEST(test_listen_invalid)
{
	static const char *const bad[] = {
		"",
		"7070",
		":80",
		"localhost:7070",
		"example.com:80",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:65536",
		"127.0.0.1:99999999999999999999999",
		"127.0.0.1:-1",
		"127.0.0.1:+80",
		"127.0.0.1:80x",
		"127.0.0.1: 80",
		"1.2.3:80",
		"1.2.3.256:80",
		"::1:7070",
		"[::1]7070",
		"[::1]",
		"[::1",
		"[]:80",
		"[*]:80",
		"[127.0.0.1]:80",
		"[fe80::1%eth0]:80",
		"*",
		"[::1]:70000",
		"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:80",
	};
	struct listen_addr la;
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(config_parse_listen(bad[i], &la) == -EINVAL,
			      "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_listen_errors)
{
	EXPECT_ERRORS("root: /r\n"
		      "listen:\n"
		      "  - localhost:7070\n"
		      "  - 7070\n"
		      "  - ::1:7070\n"
		      "  - 127.0.0.1:65536\n"
		      "  - \"[::1\"\n"
		      "  - {a: b}\n"
		      "  - 127.0.0.1:80\n"
		      "  - 127.0.0.1:80\n",
		      "test.yaml:3:5: listen: HOST must be an IP address, got "
		      "\"localhost:7070\"",
		      "test.yaml:4:5: listen: expected HOST:PORT, got \"7070\"",
		      "test.yaml:5:5: listen: an IPv6 HOST goes in brackets, "
		      "as in [::1]:7070, got \"::1:7070\"",
		      "test.yaml:6:5: listen: PORT must be a number from 0 to "
		      "65535, got \"127.0.0.1:65536\"",
		      "test.yaml:7:5: listen: expected [IPv6]:PORT, got \"[::1\"",
		      "test.yaml:8:6: listen: unknown key \"a\" (expected "
		      "address, proxy_protocol or deferred)",
		      "test.yaml:8:5: listen: the mapping has no address",
		      "test.yaml:10:5: listen: \"127.0.0.1:80\" is given twice");
	EXPECT_ERRORS("root: /r\nlisten: []\n",
		      "test.yaml:2:9: listen: needs at least one address");
	EXPECT_ERRORS("root: /r\nlisten: [[a]]\n",
		      "test.yaml:2:10: listen: expected a single value, got a "
		      "sequence");
	EXPECT_ERRORS("root: /r\nlisten:\n",
		      "test.yaml:2:8: listen: missing value");
}
END_TEST

START_TEST(test_listen_proxy)
{
	struct config *cfg = parse_ok("root: /r\n"
				      "limits:\n"
				      "  drain: 5s\n"
				      "listen:\n"
				      "  - 127.0.0.1:7070\n"
				      "  - {address: \"[::1]:7071\", "
				      "proxy_protocol: true}\n"
				      "  - address: 127.0.0.1:7072\n"
				      "    proxy_protocol: false\n"
				      "  - {address: 127.0.0.1:7073}\n");

	ck_assert_uint_eq(cfg->drain_ms, 5000);
	ck_assert_uint_eq(cfg->listen_count, 4);
	check_v4(&cfg->listen[0], "127.0.0.1", 7070, "127.0.0.1:7070");
	ck_assert(!cfg->listen[0].proxy_protocol);
	check_v6(&cfg->listen[1], "::1", 7071, "[::1]:7071");
	ck_assert(cfg->listen[1].proxy_protocol);
	check_v4(&cfg->listen[2], "127.0.0.1", 7072, "127.0.0.1:7072");
	ck_assert(!cfg->listen[2].proxy_protocol);
	ck_assert(!cfg->listen[3].proxy_protocol);
	/* deferred is on unless an entry turns it off */
	for (size_t i = 0; i < cfg->listen_count; i++)
		ck_assert(cfg->listen[i].deferred);
	config_free(cfg);

	cfg = parse_ok("root: /r\n"
		       "listen:\n"
		       "  - {address: 127.0.0.1:7070, deferred: false}\n"
		       "  - {address: 127.0.0.1:7071, deferred: true, "
		       "proxy_protocol: true}\n");
	ck_assert(!cfg->listen[0].deferred);
	ck_assert(!cfg->listen[0].proxy_protocol);
	ck_assert(cfg->listen[1].deferred);
	ck_assert(cfg->listen[1].proxy_protocol);
	config_free(cfg);

	cfg = parse_ok("root: /r\n"
		       "listen: {address: 127.0.0.1:7070, proxy_protocol: true}\n");
	ck_assert_uint_eq(cfg->listen_count, 1);
	ck_assert(cfg->listen[0].proxy_protocol);
	config_free(cfg);
}
END_TEST

START_TEST(test_listen_proxy_errors)
{
	EXPECT_ERRORS("root: /r\n"
		      "listen:\n"
		      "  - {address: 127.0.0.1:1, proxy: true}\n"
		      "  - {proxy_protocol: true}\n"
		      "  - {address: 127.0.0.1:3, proxy_protocol: yes}\n"
		      "  - {address: 127.0.0.1:4, proxy_protocol: [true]}\n"
		      "  - {address: [127.0.0.1:5]}\n"
		      "  - {address: 127.0.0.1:99999}\n"
		      "  - {address: 127.0.0.1:7, deferred: 1}\n",
		      "test.yaml:3:28: listen: unknown key \"proxy\" (expected "
		      "address, proxy_protocol or deferred)",
		      "test.yaml:4:5: listen: the mapping has no address",
		      "test.yaml:5:44: listen.proxy_protocol: expected true or "
		      "false, got \"yes\"",
		      "test.yaml:6:44: listen.proxy_protocol: expected a single "
		      "value, got a sequence",
		      "test.yaml:7:15: listen: expected a single value, got a "
		      "sequence",
		      "test.yaml:8:15: listen: PORT must be a number from 0 to "
		      "65535, got \"127.0.0.1:99999\"",
		      "test.yaml:9:38: listen.deferred: expected true or "
		      "false, got \"1\"");
}
END_TEST

/* metrics.listen: off by default, one address, never a file port. */
START_TEST(test_metrics_listen)
{
	struct config *cfg = parse_ok("root: /r\n");

	ck_assert_uint_eq(cfg->metrics_listen.addr_len, 0);
	config_free(cfg);
	cfg = parse_ok("root: /r\nmetrics:\n  listen: 127.0.0.1:9470\n");
	check_v4(&cfg->metrics_listen, "127.0.0.1", 9470, "127.0.0.1:9470");
	config_free(cfg);
	/* Port 0 twice is two ports the kernel picks. */
	cfg = parse_ok("root: /r\nlisten: 127.0.0.1:0\n"
		       "metrics: {listen: 127.0.0.1:0}\n");
	config_free(cfg);
	EXPECT_ERRORS("root: /r\nlisten: 127.0.0.1:7070\n"
		      "metrics:\n  listen: 127.0.0.1:7070\n",
		      "test.yaml:4:11: metrics.listen: \"127.0.0.1:7070\" is "
		      "the file listener \"127.0.0.1:7070\"; the metrics need "
		      "a port of their own");
	/* The default listen address counts, and so does the wildcard,
	 * whichever key comes first. */
	EXPECT_ERRORS("metrics: {listen: \"*:7070\"}\nroot: /r\n",
		      "test.yaml:1:19: metrics.listen: \"*:7070\" is the "
		      "file listener \"127.0.0.1:7070\"; the metrics need a "
		      "port of their own");
	EXPECT_ERRORS("root: /r\nmetrics:\n  listen: 9470\n",
		      "test.yaml:3:11: metrics.listen: expected HOST:PORT, got "
		      "\"9470\"");
	EXPECT_ERRORS("root: /r\nmetrics: {listen: [a, b]}\n",
		      "test.yaml:2:19: metrics.listen: expected a single "
		      "value, got a sequence");
}
END_TEST

START_TEST(test_listen_too_many)
{
	char yaml[1024];
	size_t n, i;

	n = (size_t)snprintf(yaml, sizeof yaml, "root: /r\nlisten:\n");
	for (i = 0; i <= FERRY_MAX_LISTEN; i++)
		n += (size_t)snprintf(yaml + n, sizeof yaml - n,
				      "  - 127.0.0.%zu:80\n", i + 1);
	EXPECT_ERRORS(yaml,
		      "test.yaml:19:5: listen: at most 16 addresses are allowed");
}
END_TEST

/* errors */

START_TEST(test_unknown_key)
{
	EXPECT_ERRORS("root: /r\n"
		      "transfer:\n"
		      "  chnk: 1MiB\n",
		      "test.yaml:3:3: unknown key \"transfer.chnk\"");
	EXPECT_ERRORS("roots: /r\nroot: /r\n",
		      "test.yaml:1:1: unknown key \"roots\"");
	/* Dotted names are not a shorthand for sections. */
	EXPECT_ERRORS("root: /r\ntransfer.chunk: 1MiB\n",
		      "test.yaml:2:1: unknown key \"transfer.chunk\"");
	EXPECT_ERRORS("root: /r\nlimits:\n  transfer:\n    chunk: 1MiB\n",
		      "test.yaml:3:3: unknown key \"limits.transfer\"");
	/* Control characters and long names are not copied as they are. */
	EXPECT_ERRORS("root: /r\n\"a\\tb\": 1\n",
		      "test.yaml:2:1: unknown key \"a?b\"");
	EXPECT_ERRORS("root: /r\n"
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		      "aaaaaaaaaa: 1\n",
		      "test.yaml:2:1: unknown key \""
		      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		      "aa...\"");
	EXPECT_ERRORS("root: /r\n\"root\\0x\": /s\n",
		      "test.yaml:2:1: unknown key \"root\"");
}
END_TEST

START_TEST(test_many_errors)
{
	/* Every error is reported, in document order, and the missing root
	 * last, at the start of the top-level mapping. */
	EXPECT_ERRORS("# a comment\n"
		      "\n"
		      "transfer:\n"
		      "  mode: zerocopy\n"
		      "  chnk: 1\n"
		      "  chunk: 1KiB\n"
		      "  buffer: 1.5MiB\n"
		      "limits:\n"
		      "  idle_timeout: 10\n"
		      "  request_timeout: 2h\n"
		      "  send_timeout: 10 s\n"
		      "  connections: -1\n"
		      "  per_client: 0x10\n"
		      "threads: 0\n"
		      "listen: localhost:80\n"
		      "log: x\n",
		      "test.yaml:4:9: transfer.mode: expected sendfile or "
		      "buffered, got \"zerocopy\"",
		      "test.yaml:5:3: unknown key \"transfer.chnk\"",
		      "test.yaml:6:10: transfer.chunk: 1KiB is below the minimum "
		      "4KiB",
		      "test.yaml:7:11: transfer.buffer: expected a whole number of "
		      "B, KiB, MiB or GiB, got \"1.5MiB\"",
		      "test.yaml:9:17: limits.idle_timeout: 10 needs a unit: ms, "
		      "s, m or h",
		      "test.yaml:10:20: limits.request_timeout: 2h is above the "
		      "maximum 1h",
		      "test.yaml:11:17: limits.send_timeout: expected a whole "
		      "number of ms, s, m or h, got \"10 s\"",
		      "test.yaml:12:16: limits.connections: expected a whole "
		      "number, got \"-1\"",
		      "test.yaml:13:15: limits.per_client: expected a whole "
		      "number, got \"0x10\"",
		      "test.yaml:14:10: threads: 0 is below the minimum 1",
		      "test.yaml:15:9: listen: HOST must be an IP address, got "
		      "\"localhost:80\"",
		      "test.yaml:16:6: log: expected a mapping, got a scalar",
		      "test.yaml:3:1: missing required key \"root\"");
}
END_TEST

START_TEST(test_range_errors)
{
	EXPECT_ERRORS("root: /r\n"
		      "transfer:\n"
		      "  chunk: 4GiB\n"
		      "  buffer: 99999999999999999999999\n"
		      "limits:\n"
		      "  connections: 1000001\n"
		      "  per_client: 0\n"
		      "  request_timeout: 0ms\n"
		      "  idle_timeout: 25h\n"
		      "  send_timeout: 99999999999999999999h\n"
		      "  shutdown_timeout: 3601s\n"
		      "  rate: 65GiB\n"
		      "  rate_total: 20MiB/s\n"
		      "threads: 1025\n",
		      "test.yaml:3:10: transfer.chunk: 4GiB is above the maximum "
		      "2097148KiB",
		      "test.yaml:4:11: transfer.buffer: 99999999999999999999999 "
		      "is above the maximum 64MiB",
		      "test.yaml:6:16: limits.connections: 1000001 is above the "
		      "maximum 1000000",
		      "test.yaml:7:15: limits.per_client: 0 is below the minimum 1",
		      "test.yaml:8:20: limits.request_timeout: 0ms is below the "
		      "minimum 1ms",
		      "test.yaml:9:17: limits.idle_timeout: 25h is above the "
		      "maximum 24h",
		      "test.yaml:10:17: limits.send_timeout: "
		      "99999999999999999999h is above the maximum 24h",
		      "test.yaml:11:21: limits.shutdown_timeout: 3601s is above "
		      "the maximum 1h",
		      "test.yaml:12:9: limits.rate: 65GiB is above the maximum "
		      "64GiB",
		      /* The unit is per second already: no "/s". */
		      "test.yaml:13:15: limits.rate_total: expected a whole "
		      "number of B, KiB, MiB or GiB, got \"20MiB/s\"",
		      "test.yaml:14:10: threads: 1025 is above the maximum 1024");
}
END_TEST

START_TEST(test_bad_values)
{
	EXPECT_ERRORS("root: /r\n"
		      "log:\n"
		      "  format: xml\n"
		      "  level: verbose\n"
		      "  transfers: ''\n"
		      "threads: 4.0\n"
		      "transfer: {mode: SENDFILE}\n",
		      "test.yaml:3:11: log.format: expected text or json, got "
		      "\"xml\"",
		      "test.yaml:4:10: log.level: expected error, warn, info or "
		      "debug, got \"verbose\"",
		      "test.yaml:5:14: log.transfers: must not be empty",
		      "test.yaml:6:10: threads: expected a whole number, got "
		      "\"4.0\"",
		      "test.yaml:7:18: transfer.mode: expected sendfile or "
		      "buffered, got \"SENDFILE\"");
	EXPECT_ERRORS("root:\n", "test.yaml:1:6: root: missing value");
	EXPECT_ERRORS("root: \"\"\n", "test.yaml:1:7: root: must not be empty");
	EXPECT_ERRORS("root: \"/a\\0b\"\n",
		      "test.yaml:1:7: root: contains a NUL character");
}
END_TEST

START_TEST(test_wrong_node_types)
{
	EXPECT_ERRORS("root: [a, b]\n"
		      "transfer: fast\n"
		      "limits:\n"
		      "  - connections: 1\n"
		      "threads: {n: 1}\n"
		      "log:\n"
		      "  level:\n"
		      "    - info\n"
		      "[a]: b\n",
		      "test.yaml:1:7: root: expected a single value, got a "
		      "sequence",
		      "test.yaml:2:11: transfer: expected a mapping, got a scalar",
		      "test.yaml:4:3: limits: expected a mapping, got a sequence",
		      "test.yaml:5:10: threads: expected a single value, got a "
		      "mapping",
		      "test.yaml:8:5: log.level: expected a single value, got a "
		      "sequence",
		      "test.yaml:9:1: expected a key name, got a sequence");
}
END_TEST

START_TEST(test_duplicate_keys)
{
	EXPECT_ERRORS("root: /a\n"
		      "transfer:\n"
		      "  chunk: 8KiB\n"
		      "  chunk: 16KiB\n"
		      "root: /b\n"
		      "transfer:\n"
		      "  mode: buffered\n",
		      "test.yaml:4:3: duplicate key \"transfer.chunk\" (first at "
		      "3:3)",
		      "test.yaml:5:1: duplicate key \"root\" (first at 1:1)",
		      "test.yaml:6:1: duplicate key \"transfer\" (first at 2:1)");
}
END_TEST

START_TEST(test_syntax_errors)
{
	EXPECT_ERRORS("root: /r\nthreads: 4: 5\n",
		      "test.yaml:2:11: mapping values are not allowed in this "
		      "context");
	EXPECT_ERRORS("root: /r\nlisten: [\"127.0.0.1:1\"\nthreads: 4\n",
		      "test.yaml:3:1: did not find expected ',' or ']' (while "
		      "parsing a flow sequence at 2:9)");
	EXPECT_ERRORS("root: \"/r\n",
		      "test.yaml:2:1: found unexpected end of stream (while "
		      "scanning a quoted scalar at 1:7)");
	EXPECT_ERRORS("root: *nowhere\n", "test.yaml:1:7: found undefined alias");
	/* A control character is found by libyaml's reader, which gives a byte
	 * offset rather than a line and column. */
	EXPECT_ERRORS("root: /r\nthreads: \001\n",
		      "test.yaml:2:10: control characters are not allowed");
	EXPECT_ERRORS("root: /r\nlog: {level: \"d\xc3\xa9\xff\"}\n",
		      "test.yaml:2:17: invalid leading UTF-8 octet");
}
END_TEST

START_TEST(test_missing_root)
{
	EXPECT_ERRORS("", "test.yaml:1:1: missing required key \"root\"");
	EXPECT_ERRORS("# only a comment\n\n",
		      "test.yaml:1:1: missing required key \"root\"");
	EXPECT_ERRORS("---\n", "test.yaml:1:1: missing required key \"root\"");
	EXPECT_ERRORS("# settings\n\n  threads: 2\n",
		      "test.yaml:3:3: missing required key \"root\"");
}
END_TEST

START_TEST(test_top_level_not_mapping)
{
	EXPECT_ERRORS("- root: /r\n",
		      "test.yaml:1:1: expected a mapping of keys at the top "
		      "level, got a sequence");
	EXPECT_ERRORS("\nhello\n",
		      "test.yaml:2:1: expected a mapping of keys at the top "
		      "level, got a scalar");
}
END_TEST

START_TEST(test_two_documents)
{
	EXPECT_ERRORS("root: /a\n---\nroot: /b\n",
		      "test.yaml:2:1: only one YAML document is allowed");
	/* An error in the second document is still found. */
	EXPECT_ERRORS("root: /a\n---\nroot: [\n",
		      "test.yaml:4:1: did not find expected node content (while "
		      "parsing a flow node at 4:1)");
}
END_TEST

/* loading files */

START_TEST(test_load_file)
{
	static const char text[] = "root: files\nthreads: 7\n";
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	char path[64];
	int rc;

	write_temp(path, text, sizeof text - 1);
	rc = config_load(path, &cfg, &diag);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(diag.count, 0);
	ck_assert_str_eq(cfg->file, path);
	ck_assert_str_eq(cfg->root, "/tmp/files");
	ck_assert_uint_eq(cfg->threads, 7);
	config_free(cfg);
}
END_TEST

START_TEST(test_load_relative_path)
{
	static const char text[] = "root: ../srv\n";
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	char path[64], old_cwd[PATH_MAX], tmp_cwd[PATH_MAX], want[PATH_MAX];
	const char *name;
	int rc;

	write_temp(path, text, sizeof text - 1);
	name = strrchr(path, '/') + 1;
	ck_assert_ptr_nonnull(getcwd(old_cwd, sizeof old_cwd));
	ck_assert_int_eq(chdir("/tmp"), 0);
	ck_assert_ptr_nonnull(getcwd(tmp_cwd, sizeof tmp_cwd));
	rc = config_load(name, &cfg, &diag);
	ck_assert_int_eq(chdir(old_cwd), 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rc, 0);
	/* The file's directory is absolute, so root is too. */
	snprintf(want, sizeof want, "%s", tmp_cwd);
	*strrchr(want, '/') = '\0';
	strcat(want, "/srv");
	ck_assert_str_eq(cfg->root, want);
	ck_assert_str_eq(cfg->file, name);
	config_free(cfg);
}
END_TEST

START_TEST(test_load_errors)
{
	static const char text[] = "root: /r\ntransfer:\n  mode: fast\n"
				   "  chunk: 1B\n";
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	char path[64], want[128];
	int rc;

	write_temp(path, text, sizeof text - 1);
	rc = config_load(path, &cfg, &diag);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rc, 2);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 2);
	snprintf(want, sizeof want,
		 "%s:3:9: transfer.mode: expected sendfile or buffered, got "
		 "\"fast\"",
		 path);
	ck_assert_str_eq(diag.lines[0], want);
	snprintf(want, sizeof want,
		 "%s:4:10: transfer.chunk: 1B is below the minimum 4KiB", path);
	ck_assert_str_eq(diag.lines[1], want);
	config_diag_free(&diag);
	ck_assert_ptr_null(diag.lines);
	ck_assert_uint_eq(diag.count, 0);
}
END_TEST

START_TEST(test_load_missing_file)
{
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	char path[64];

	/* A name that existed a moment ago is surely missing now. */
	write_temp(path, "", 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(config_load(path, &cfg, &diag), -ENOENT);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 1);
	ck_assert_str_eq(strchr(diag.lines[0], ':'),
			 ": cannot open: No such file or directory");
	ck_assert_int_eq(strncmp(diag.lines[0], path, strlen(path)), 0);
	config_diag_free(&diag);
}
END_TEST

START_TEST(test_load_unreadable)
{
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;
	char path[64], *big;
	size_t big_len = 1024 * 1024 + 1;

	ck_assert_int_eq(config_load("/tmp", &cfg, &diag), -EISDIR);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 1);
	ck_assert_str_eq(diag.lines[0], "/tmp: cannot read: Is a directory");
	config_diag_free(&diag);

	big = malloc(big_len);
	ck_assert_ptr_nonnull(big);
	memset(big, '#', big_len);
	write_temp(path, big, big_len);
	free(big);
	ck_assert_int_eq(config_load(path, &cfg, &diag), -EFBIG);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 1);
	ck_assert_str_eq(strchr(diag.lines[0], ':'),
			 ": cannot read: File too large");
	config_diag_free(&diag);
}
END_TEST

START_TEST(test_diag_appends)
{
	/* Messages from a second load follow those already in DIAG. */
	struct config_diag diag = { 0 };
	struct config *cfg = NULL;

	ck_assert_int_eq(config_parse("a.yaml", "threads: x\n", 11, BASE_DIR,
				      &cfg, &diag),
			 2);
	ck_assert_int_eq(config_parse("b.yaml", "x: 1\n", 5, BASE_DIR, &cfg,
				      &diag),
			 2);
	ck_assert_ptr_null(cfg);
	ck_assert_uint_eq(diag.count, 4);
	ck_assert_str_eq(diag.lines[0], "a.yaml:1:10: threads: expected a "
					"whole number, got \"x\"");
	ck_assert_str_eq(diag.lines[1],
			 "a.yaml:1:1: missing required key \"root\"");
	ck_assert_str_eq(diag.lines[2], "b.yaml:1:1: unknown key \"x\"");
	ck_assert_str_eq(diag.lines[3],
			 "b.yaml:1:1: missing required key \"root\"");
	config_diag_free(&diag);
	ck_assert_uint_eq(diag.count, 0);
	/* Both are safe on nothing. */
	config_diag_free(&diag);
	config_free(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("defaults");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_defaults_empty_sections);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_test(tc, test_all_keys);
	tcase_add_test(tc, test_quoted_values);
	tcase_add_test(tc, test_root_resolved);
	tcase_add_test(tc, test_root_relative_without_base);
	tcase_add_test(tc, test_log_levels);
	tcase_add_test(tc, test_bounds_inclusive);
	tcase_add_test(tc, test_listen_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("sizes");
	tcase_add_test(tc, test_size_valid);
	tcase_add_test(tc, test_size_invalid);
	tcase_add_test(tc, test_size_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("durations");
	tcase_add_test(tc, test_duration_valid);
	tcase_add_test(tc, test_duration_invalid);
	tcase_add_test(tc, test_duration_overflow);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen");
	tcase_add_test(tc, test_listen_valid);
	tcase_add_test(tc, test_listen_invalid);
	tcase_add_test(tc, test_listen_errors);
	tcase_add_test(tc, test_listen_proxy);
	tcase_add_test(tc, test_listen_proxy_errors);
	tcase_add_test(tc, test_metrics_listen);
	tcase_add_test(tc, test_listen_too_many);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_many_errors);
	tcase_add_test(tc, test_range_errors);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_wrong_node_types);
	tcase_add_test(tc, test_duplicate_keys);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_missing_root);
	tcase_add_test(tc, test_top_level_not_mapping);
	tcase_add_test(tc, test_two_documents);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_relative_path);
	tcase_add_test(tc, test_load_errors);
	tcase_add_test(tc, test_load_missing_file);
	tcase_add_test(tc, test_load_unreadable);
	tcase_add_test(tc, test_diag_appends);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
