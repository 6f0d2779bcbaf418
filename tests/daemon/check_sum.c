/* Integration tests of SUM: the real ferryd, on port 0, over loopback.
 *
 * As in check_daemon.c, every test runs once per transfer mode, each
 * (test, mode) pair its own TCase "<test>_<mode>":
 *
 *   CK_RUN_CASE=sum_torn_buffered ./tests/daemon/check_sum
 *
 * Digests are checked against libcrypto's SHA-256 of the file's bytes as
 * the test reads them, the way sha256sum computes it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000      /* a reply line */
#define BIG_MS 60000      /* a SUM of 100 MiB, or several of 64 MiB */
#define STOP_MS 15000
#define MIB (1024ULL * 1024)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define HEX_LEN 64

static struct h_daemon d;

/* ---- helpers ----------------------------------------------------------- */

/* The lowercase hex SHA-256 of the file at PATH, into HEX (65 bytes). */
static void sha256_file(const char *path, char hex[HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	static unsigned char buf[1 << 20];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0 && ctx != NULL, "open %s: %s", path,
		      strerror(errno));
	ck_assert(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		ck_assert(EVP_DigestUpdate(ctx, buf, (size_t)n) == 1);
	ck_assert_msg(n == 0, "read %s: %s", path, strerror(errno));
	ck_assert(EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32);
	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 0xf];
	}
	hex[HEX_LEN] = '\0';
	EVP_MD_CTX_free(ctx);
	close(fd);
}

static int connect_ok(void)
{
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	return fd;
}

static void send_ok(int fd, const char *s)
{
	int rc = h_send_str(fd, s, LINE_MS);

	ck_assert_msg(rc == 0, "sending '%.60s': %s", s, h_strerror(rc));
}

static void recv_line_ok(int fd, char *line, size_t cap, int ms,
			 const char *what)
{
	ssize_t n = h_recv_line(fd, line, cap, ms);

	ck_assert_msg(n > 0, "%s: no reply line: %s", what,
		      n == 0 ? "connection closed" : h_strerror((int)n));
}

/* The OK line a SUM of REL must get, read from the file now. */
static void sum_want(const char *rel, char *want, size_t cap)
{
	char hex[HEX_LEN + 1];
	struct stat st;

	ck_assert_int_eq(stat(h_root_path(&d, rel), &st), 0);
	sha256_file(h_root_path(&d, rel), hex);
	snprintf(want, cap, "OK sha256 %s %lld %lld", hex,
		 (long long)st.st_size, (long long)st.st_mtime);
}

/* Sends "SUM /REQ" on FD (REQ percent-encoded) and expects the digest,
 * size and mtime of the file REL. */
static void sum_req_ok(int fd, const char *req_path, const char *rel)
{
	char req[512], want[256], line[512];

	snprintf(req, sizeof req, "SUM /%s\n", req_path);
	sum_want(rel, want, sizeof want);
	send_ok(fd, req);
	recv_line_ok(fd, line, sizeof line, BIG_MS, req);
	ck_assert_msg(strcmp(line, want) == 0, "%s: got '%s', want '%s'", rel,
		      line, want);
}

static void sum_ok(int fd, const char *rel)
{
	sum_req_ok(fd, rel, rel);
}

/* The transfer log line holding every needle. */
static void translog_line(char *line, size_t cap, const char *const needles[])
{
	int rc = h_wait_line(d.transfer_log, LINE_MS, line, cap, needles);

	ck_assert_msg(rc == 0, "no transfer log line with '%s' '%s'",
		      needles[0], needles[1] != NULL ? needles[1] : "");
}

/* Waits up to LINE_MS for WANT lines of the transfer log holding NEEDLE;
 * returns how many there are. */
static int wait_lines(const char *needle, int want)
{
	int64_t deadline = h_now_ms() + LINE_MS;
	int n;

	while ((n = h_count_lines(d.transfer_log, needle)) < want &&
	       h_now_ms() < deadline)
		usleep(20 * 1000);
	return n;
}

/* Waits until REL's last change lies more than 1 s back (ferryd caches
 * no digest of a file changed within the second before its hash began),
 * at most 3 s. */
static void wait_settled(const char *rel)
{
	struct stat st;
	struct timespec now;
	int64_t deadline = h_now_ms() + 3000;

	ck_assert_int_eq(stat(h_root_path(&d, rel), &st), 0);
	for (;;) {
		clock_gettime(CLOCK_REALTIME, &now);
		if (now.tv_sec > st.st_ctim.tv_sec + 1)
			return;
		ck_assert_msg(h_now_ms() < deadline, "clock not moving");
		usleep(50 * 1000);
	}
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(sum_sizes)
{
	static const char *const files[] = { "empty.bin", "one.bin",
					     "small.bin", "mib1.bin",
					     "sub/b.bin", "big.bin" };
	char line[512];
	const char *needles[] = { "path=/big.bin", "mode=sum", NULL };
	size_t i;
	int fd;

	ck_assert_int_eq(h_write_random(h_root_path(&d, "mib1.bin"), MIB + 1,
					7), 0);
	fd = connect_ok();
	for (i = 0; i < COUNT(files); i++)
		sum_ok(fd, files[i]);
	/* Percent-encoded as in GET. */
	sum_req_ok(fd, "with%20space.txt", "with space.txt");
	close(fd);

	translog_line(line, sizeof line, needles);
	ck_assert_msg(strstr(line, " status=200 ") != NULL &&
			      strstr(line, " bytes=104857600 ") != NULL &&
			      strstr(line, " size=104857600 ") != NULL,
		      "big.bin's SUM logged as '%s'", line);
}
END_TEST

START_TEST(sum_cache_hit)
{
	const char *hit[] = { "path=/small.bin", "mode=sum", "bytes=0 ",
			      NULL };
	const char *miss[] = { "path=/small.bin", "mode=sum",
			       "bytes=102400 ", NULL };
	char line[512];
	int fd;

	wait_settled("small.bin");
	fd = connect_ok();
	sum_ok(fd, "small.bin");
	sum_ok(fd, "small.bin");
	close(fd);
	translog_line(line, sizeof line, miss);
	translog_line(line, sizeof line, hit);
	ck_assert_int_eq(wait_lines("path=/small.bin", 2), 2);
}
END_TEST

START_TEST(sum_changed)
{
	static const char patch[] = "changed";
	char line[512], want[256];
	int fd;

	wait_settled("small.bin");
	fd = connect_ok();
	sum_ok(fd, "small.bin");
	/* Same size, new bytes: a new mtime and ctime, so a new key. */
	ck_assert_int_eq(h_write_at(h_root_path(&d, "small.bin"), 5000, patch,
				    sizeof patch - 1), 0);
	sum_want("small.bin", want, sizeof want);
	send_ok(fd, "SUM /small.bin\n");
	recv_line_ok(fd, line, sizeof line, LINE_MS, "after the change");
	ck_assert_msg(strcmp(line, want) == 0, "got '%s', want '%s'", line,
		      want);
	close(fd);
	/* Both hashed: the change made a new key. (The log line follows
	 * the answer.) */
	ck_assert_int_eq(wait_lines("bytes=102400 ", 2), 2);
}
END_TEST

/* A file rewritten while a SUM hashes it: the answer is a digest of one
 * state of the file or ERR 503, and the next SUM, once it has settled, is
 * sha256sum's digest of what is there, never a torn one from the cache. */
START_TEST(sum_torn)
{
	const char *path = h_root_path(&d, "torn.bin");
	const char *needles[] = { "path=/torn.bin", "mode=sum", NULL };
	char line[512];
	pid_t writer;
	int fd, status;

	ck_assert_int_eq(h_write_random(path, 64 * MIB, 11), 0);
	fd = connect_ok();
	send_ok(fd, "SUM /torn.bin\n");
	writer = fork();
	ck_assert(writer >= 0);
	if (writer == 0) {
		static char block[4096];
		uint64_t i;

		/* Rewrites blocks all over the file until killed. */
		for (i = 0;; i++) {
			memset(block, (int)(i & 0xff), sizeof block);
			if (h_write_at(path, (i * 7919 * 4096) % (64 * MIB),
				       block, sizeof block) < 0)
				_exit(1);
		}
	}
	recv_line_ok(fd, line, sizeof line, BIG_MS, "SUM while rewritten");
	kill(writer, SIGKILL);
	waitpid(writer, &status, 0);
	ck_assert_msg(strncmp(line, "ERR 503 ", 8) == 0 ||
			      (strncmp(line, "OK sha256 ", 10) == 0 &&
			       strlen(line) > 10 + HEX_LEN),
		      "SUM while rewritten: '%s'", line);
	close(fd);
	translog_line(line, sizeof line, needles);

	/* Settled: hashed again, from the file, and then cached. */
	wait_settled("torn.bin");
	fd = connect_ok();
	sum_ok(fd, "torn.bin");
	sum_ok(fd, "torn.bin");
	close(fd);
}
END_TEST

/* The answers of GET, for every path GET refuses. */
START_TEST(sum_errors)
{
	static const char *const paths[] = {
		"/sub", "/", "/sub/deeper", "/.hidden", "/sub/.hid",
		"/.hiddendir/inside.txt", "/%2ehidden", "/nope",
		"/sub/nope.txt", "/etc/passwd", "/one.bin/x", "/../one.bin",
		"/sub/../../one.bin", "/fifo", "/link_out", "/etc_link/passwd",
		"/sub/up/ferryd.yaml", "/null", "/dev",
	};
	char req[256], got_get[512], got_sum[512];
	int64_t start;
	size_t i;
	int fd;

	ck_assert_int_eq(mkfifo(h_root_path(&d, "fifo"), 0644), 0);
	ck_assert_int_eq(symlink("/etc/passwd", h_root_path(&d, "link_out")), 0);
	ck_assert_int_eq(symlink("/etc", h_root_path(&d, "etc_link")), 0);
	ck_assert_int_eq(symlink("../..", h_root_path(&d, "sub/up")), 0);
	/* A device beneath the root when we may make one (root), and
	 * through a symlink out of it in any case. */
	if (mknod(h_root_path(&d, "dev"), S_IFCHR | 0600, makedev(1, 3)) < 0)
		ck_assert_int_eq(symlink("/dev/zero", h_root_path(&d, "dev")),
				 0);
	ck_assert_int_eq(symlink("/dev/null", h_root_path(&d, "null")), 0);

	fd = connect_ok();
	for (i = 0; i < COUNT(paths); i++) {
		snprintf(req, sizeof req, "GET %s\n", paths[i]);
		send_ok(fd, req);
		recv_line_ok(fd, got_get, sizeof got_get, LINE_MS, req);
		ck_assert_msg(strncmp(got_get, "ERR ", 4) == 0, "%s: '%s'",
			      req, got_get);
		snprintf(req, sizeof req, "SUM %s\n", paths[i]);
		start = h_now_ms();
		send_ok(fd, req);
		recv_line_ok(fd, got_sum, sizeof got_sum, LINE_MS, req);
		ck_assert_msg(strcmp(got_get, got_sum) == 0,
			      "%s: '%s', but GET got '%s'", req, got_sum,
			      got_get);
		ck_assert_msg(h_now_ms() - start < 2000, "%s took %lld ms", req,
			      (long long)(h_now_ms() - start));
	}
	/* Still open after each of them. */
	sum_ok(fd, "one.bin");
	close(fd);
}
END_TEST

START_TEST(sum_bad_request)
{
	static const char *const bad[] = {
		"SUM /small.bin 0\n", "SUM /small.bin 0 10\n", "SUM \n",
		"SUM /a%zz\n", "SUM /a%00\n", "SUM  /small.bin\n",
	};
	char line[512];
	size_t i;
	int fd;

	for (i = 0; i < COUNT(bad); i++) {
		fd = connect_ok();
		send_ok(fd, bad[i]);
		recv_line_ok(fd, line, sizeof line, LINE_MS, bad[i]);
		ck_assert_msg(strncmp(line, "ERR 400 ", 8) == 0, "%s: '%s'",
			      bad[i], line);
		ck_assert_msg(h_expect_eof(fd, LINE_MS) == 0,
			      "%s: the server must close", bad[i]);
		close(fd);
	}
	/* "SUM" alone is the raw form: a file of that name. */
	ck_assert_int_eq(h_write_text(h_root_path(&d, "SUM"), "named SUM\n"), 0);
	fd = connect_ok();
	send_ok(fd, "SUM\n");
	recv_line_ok(fd, line, sizeof line, LINE_MS, "raw SUM");
	ck_assert_str_eq(line, "named SUM");
	ck_assert_int_eq(h_expect_eof(fd, LINE_MS), 0);
	close(fd);
}
END_TEST

START_TEST(sum_pipelined)
{
	char want_sum[256], want_get[64], line[512];
	uint64_t got = 0;
	int fd = connect_ok(), rc;

	sum_want("sub/b.bin", want_sum, sizeof want_sum);
	snprintf(want_get, sizeof want_get, "OK 1 1 %d", H_MTIME);
	send_ok(fd, "GET /one.bin\nSUM /sub/b.bin\nGET /small.bin 0 10\n"
		    "SUM /one.bin\n");
	recv_line_ok(fd, line, sizeof line, LINE_MS, "GET 1");
	ck_assert_str_eq(line, want_get);
	rc = h_recv_compare(fd, h_root_path(&d, "one.bin"), 0, 1, 0, &got,
			    LINE_MS);
	ck_assert_int_eq(rc, 0);
	recv_line_ok(fd, line, sizeof line, LINE_MS, "SUM 1");
	ck_assert_str_eq(line, want_sum);
	recv_line_ok(fd, line, sizeof line, LINE_MS, "GET 2");
	snprintf(want_get, sizeof want_get, "OK 10 %d %d", H_SMALL_BYTES,
		 H_MTIME);
	ck_assert_str_eq(line, want_get);
	rc = h_recv_compare(fd, h_root_path(&d, "small.bin"), 0, 10, 0, &got,
			    LINE_MS);
	ck_assert_int_eq(rc, 0);
	sum_want("one.bin", want_sum, sizeof want_sum);
	recv_line_ok(fd, line, sizeof line, LINE_MS, "SUM 2");
	ck_assert_str_eq(line, want_sum);
	close(fd);
}
END_TEST

/* Eight SUMs of a 64 MiB file in flight do not hold the daemon: a GET on
 * another connection is answered while they hash. */
START_TEST(sum_concurrent)
{
	enum { N = 8 };
	char want[256], line[512];
	struct pollfd pfd[N];
	int fds[N], i, other, pending = 0;
	uint64_t got = 0;

	ck_assert_int_eq(h_write_random(h_root_path(&d, "c64.bin"), 64 * MIB,
					5), 0);
	sum_want("c64.bin", want, sizeof want);
	for (i = 0; i < N; i++) {
		fds[i] = connect_ok();
		send_ok(fds[i], "SUM /c64.bin\n");
	}
	other = connect_ok();
	send_ok(other, "GET /small.bin\n");
	recv_line_ok(other, line, sizeof line, LINE_MS, "GET beside the SUMs");
	ck_assert_int_eq(h_recv_compare(other, h_root_path(&d, "small.bin"),
					0, H_SMALL_BYTES, 0, &got, LINE_MS),
			 0);
	/* 512 MiB to hash: some must still be at it. */
	for (i = 0; i < N; i++) {
		pfd[i].fd = fds[i];
		pfd[i].events = POLLIN;
	}
	ck_assert(poll(pfd, N, 0) >= 0);
	for (i = 0; i < N; i++)
		if (!(pfd[i].revents & POLLIN))
			pending++;
	ck_assert_msg(pending > 0,
		      "every SUM was answered before the GET: not concurrent");
	for (i = 0; i < N; i++) {
		recv_line_ok(fds[i], line, sizeof line, BIG_MS, "SUM of 64 MiB");
		ck_assert_str_eq(line, want);
		close(fds[i]);
	}
	close(other);
}
END_TEST

/* mode=sum in JSON lines too, and in ferry stats' modes. */
START_TEST(sum_logs)
{
	const char *needles[] = { "\"mode\":\"sum\"", "\"path\":\"/sub/b.bin\"",
				  NULL };
	const char *ferry = getenv("FERRY");
	char line[1024], cmd[1024];
	bool seen = false;
	FILE *p;
	int fd, rc, status = 0;

	rc = h_stop(&d, STOP_MS, &status);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(h_write_config(&d, "log.format=json"), 0);
	ck_assert_int_eq(h_start(&d, line, sizeof line), 0);
	fd = connect_ok();
	sum_ok(fd, "sub/b.bin");
	close(fd);
	translog_line(line, sizeof line, needles);
	ck_assert_msg(strstr(line, ",\"status\":200,") != NULL &&
			      strstr(line, ",\"bytes\":3000,") != NULL &&
			      strstr(line, ",\"size\":3000,") != NULL &&
			      strstr(line, ",\"mib_per_s\":") != NULL,
		      "fields missing or wrong in '%s'", line);

	if (ferry == NULL)
		ferry = "src/ferry";
	snprintf(cmd, sizeof cmd, "'%s' stats '%s'", ferry, d.transfer_log);
	p = popen(cmd, "r");
	ck_assert(p != NULL);
	while (fgets(line, sizeof line, p) != NULL)
		if (strncmp(line, "sum ", 4) == 0 && strstr(line, " 1 ") != NULL)
			seen = true;
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(seen, "ferry stats has no 'sum' row with 1 transfer");
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static const struct fixture_test sum_tests[] = {
	{ "sum_sizes", &sum_sizes, 60 },
	{ "sum_cache_hit", &sum_cache_hit, 30 },
	{ "sum_changed", &sum_changed, 30 },
	{ "sum_torn", &sum_torn, 120 },
	{ "sum_errors", &sum_errors, 30 },
	{ "sum_bad_request", &sum_bad_request, 30 },
	{ "sum_pipelined", &sum_pipelined, 30 },
	{ "sum_concurrent", &sum_concurrent, 120 },
	{ "sum_logs", &sum_logs, 30 },
};

int main(void)
{
	Suite *s = suite_create("sum");

	fixture_add_mode_tests(s, &d, STOP_MS, sum_tests, COUNT(sum_tests));
	return fixture_run("check_sum", s);
}
