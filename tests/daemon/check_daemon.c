/* Integration tests: the real ferryd, on port 0, over loopback.
 *
 * Every daemon test runs twice, once per transfer mode; each (test, mode)
 * pair is its own TCase named "<test>_<mode>", so one can be run alone:
 *
 *   CK_RUN_CASE=get_ranges_buffered ./tests/daemon/check_daemon
 *   CK_INCLUDE_TAGS=sendfile ./tests/daemon/check_daemon
 *
 * The checked fixture starts a daemon with the standard root (harness.c)
 * and, after the test, asserts that it is still alive, that its fd count is
 * back to where it was after startup, that it stops cleanly on SIGTERM, and
 * that its diagnostic log holds no error line the test did not expect. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000      /* a reply line */
#define BIG_MS 60000      /* 100 MiB */
#define STOP_MS 15000     /* SIGTERM to exit, idle daemon */
#define GIB (1024ULL * 1024 * 1024)

static struct h_daemon d;

/* ---- fixture ----------------------------------------------------------- */

static void setup_cli(void)
{
	int rc = h_setup(&d, "sendfile");

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
}

static void teardown_cli(void)
{
	h_teardown(&d);
}

/* Stops the fixture's daemon and starts a new one with OVERRIDES. */
static void restart(const char *overrides)
{
	char msg[4096];
	int rc, status = 0;

	rc = h_stop(&d, STOP_MS, &status);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "stopping for a restart: %s, status 0x%x",
		      h_strerror(rc), status);
	rc = h_write_config(&d, overrides);
	ck_assert_msg(rc == 0, "config: %s", h_strerror(rc));
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "restarting with %s: %s", overrides, msg);
}

/* ---- client helpers ---------------------------------------------------- */

static int connect_ok(void)
{
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", d.port,
		      h_strerror(fd));
	return fd;
}

/* A connection whose receive buffer is BYTES (the kernel doubles it): a
 * client that reads slowly, or not at all. */
static int connect_rcvbuf(int bytes)
{
	int fd = connect_ok();

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes,
				    sizeof bytes),
			 0);
	return fd;
}

static void send_ok(int fd, const char *s)
{
	int rc = h_send_str(fd, s, LINE_MS);

	ck_assert_msg(rc == 0, "sending '%.60s': %s", s, h_strerror(rc));
}

static void recv_line_ok(int fd, char *line, size_t cap, const char *what)
{
	ssize_t n = h_recv_line(fd, line, cap, LINE_MS);

	ck_assert_msg(n > 0, "%s: no reply line: %s", what,
		      n == 0 ? "connection closed" : h_strerror((int)n));
}

static void expect_line(int fd, const char *want, const char *what)
{
	char line[8192];

	recv_line_ok(fd, line, sizeof(line), what);
	ck_assert_msg(strcmp(line, want) == 0, "%s: got '%s', want '%s'", what,
		      line, want);
}

/* An "OK LENGTH SIZE MTIME" line for a file of the test root. */
static void expect_ok(int fd, uint64_t length, uint64_t size, const char *what)
{
	char want[128];

	snprintf(want, sizeof(want), "OK %llu %llu %d",
		 (unsigned long long)length, (unsigned long long)size, H_MTIME);
	expect_line(fd, want, what);
}

/* "ERR CODE REASON", REASON not empty. */
static void expect_err(int fd, int code, const char *what)
{
	char line[8192], prefix[32];
	size_t plen;

	recv_line_ok(fd, line, sizeof(line), what);
	plen = (size_t)snprintf(prefix, sizeof(prefix), "ERR %d ", code);
	ck_assert_msg(strncmp(line, prefix, plen) == 0 && line[plen] != '\0',
		      "%s: got '%s', want 'ERR %d <reason>'", what, line, code);
}

static void expect_eof(int fd, const char *what)
{
	int rc = h_expect_eof(fd, LINE_MS);

	ck_assert_msg(rc == 0, "%s: want the server to close: %s", what,
		      h_strerror(rc));
}

/* Receives LENGTH bytes that must equal REL's bytes from OFFSET. */
static void expect_bytes(int fd, const char *rel, uint64_t offset,
			 uint64_t length, const char *what)
{
	uint64_t got = 0;
	int rc = h_recv_compare(fd, h_root_path(&d, rel), offset, length, 0,
				&got, BIG_MS);

	ck_assert_msg(rc == 0, "%s: %s after %llu of %llu bytes", what,
		      h_strerror(rc), (unsigned long long)got,
		      (unsigned long long)length);
}

/* Sends REQ and expects REL's bytes [OFFSET, OFFSET + LENGTH) under an OK
 * line that gives SIZE. */
static void get_ok(int fd, const char *req, const char *rel, uint64_t offset,
		   uint64_t length, uint64_t size)
{
	send_ok(fd, req);
	expect_ok(fd, length, size, req);
	expect_bytes(fd, rel, offset, length, req);
}

/* Sends REQ on a fresh connection and expects the error CODE, then the
 * server closing. */
static void expect_closing_error(const char *req, int code)
{
	int fd = connect_ok();

	send_ok(fd, req);
	expect_err(fd, code, req);
	expect_eof(fd, req);
	close(fd);
}

/* A raw request on a fresh connection: REL's whole content, then EOF. */
static void raw_ok(const char *req, const char *rel, uint64_t size)
{
	int fd = connect_ok();

	send_ok(fd, req);
	expect_bytes(fd, rel, 0, size, req);
	expect_eof(fd, req);
	close(fd);
}

/* Waits for the transfer log line holding every needle. */
static void translog_line(char *line, size_t cap, const char *const needles[])
{
	char *text = NULL;
	size_t len;
	int rc = h_wait_line(d.transfer_log, LINE_MS, line, cap, needles);

	if (rc != 0)
		h_read_file(d.transfer_log, &text, &len);
	ck_assert_msg(rc == 0, "no transfer log line with '%s' '%s'; the log:\n%s",
		      needles[0], needles[1] != NULL ? needles[1] : "",
		      text != NULL ? text : "(none)");
	free(text);
}

static void expect_field(const char *line, const char *key, const char *want)
{
	char value[512];

	ck_assert_msg(h_field(line, key, value, sizeof(value)) == 0,
		      "no %s= in '%s'", key, line);
	ck_assert_msg(strcmp(value, want) == 0, "%s=%s, want %s, in '%s'", key,
		      value, want, line);
}

static uint64_t field_u64(const char *line, const char *key)
{
	char value[64], *end;
	unsigned long long v;

	ck_assert_msg(h_field(line, key, value, sizeof(value)) == 0,
		      "no %s= in '%s'", key, line);
	v = strtoull(value, &end, 10);
	ck_assert_msg(end != value && *end == '\0', "%s=%s is not a number",
		      key, value);
	return v;
}

/* ---- raw form ---------------------------------------------------------- */

START_TEST(raw_fetch)
{
	raw_ok("/empty.bin\n", "empty.bin", 0);
	raw_ok("/one.bin\n", "one.bin", 1);
	raw_ok("/small.bin\n", "small.bin", H_SMALL_BYTES);
	/* The same file by other names, and a CR before the LF. */
	raw_ok("small.bin\n", "small.bin", H_SMALL_BYTES);
	raw_ok("/./small.bin\n", "small.bin", H_SMALL_BYTES);
	raw_ok("//small.bin\n", "small.bin", H_SMALL_BYTES);
	raw_ok("/one.bin\r\n", "one.bin", 1);
	/* The whole line is the path, taken literally. */
	raw_ok("/with space.txt\n", "with space.txt", 19);
	raw_ok("/GET x\n", "GET x", 28);
}
END_TEST

START_TEST(raw_big)
{
	raw_ok("/big.bin\n", "big.bin", H_BIG_BYTES);
}
END_TEST

START_TEST(raw_half_close)
{
	int fd = connect_ok();

	/* nc -N: the request, then our side shut; the file still comes. */
	send_ok(fd, "/small.bin\n");
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	expect_bytes(fd, "small.bin", 0, H_SMALL_BYTES, "raw after SHUT_WR");
	expect_eof(fd, "raw after SHUT_WR");
	close(fd);
}
END_TEST

/* ---- GET --------------------------------------------------------------- */

START_TEST(get_full)
{
	int fd = connect_ok();

	/* One connection for all of them: it stays open after each. */
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	get_ok(fd, "GET /empty.bin\n", "empty.bin", 0, 0, 0);
	get_ok(fd, "GET small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /./sub//a.txt\r\n", "sub/a.txt", 0, 6, 6);
	get_ok(fd, "GET /with%20space.txt\n", "with space.txt", 0, 19, 19);
	get_ok(fd, "GET /GET%20x\n", "GET x", 0, 28, 28);
	get_ok(fd, "GET /%73mall.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
}
END_TEST

START_TEST(get_big)
{
	int fd = connect_ok();

	get_ok(fd, "GET /big.bin\n", "big.bin", 0, H_BIG_BYTES, H_BIG_BYTES);
	get_ok(fd, "GET /big.bin 1\n", "big.bin", 1, H_BIG_BYTES - 1,
	       H_BIG_BYTES);
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);
}
END_TEST

/* A file partly out of the page cache: the buffered engine reads what is
 * cached on the loop (RWF_NOWAIT) and the rest in the threadpool; the
 * bytes must come out the same, whole and from an offset in each part. */
START_TEST(get_evicted)
{
	const uint64_t size = 8ULL << 20;
	const char *path = h_root_path(&d, "cold.bin");
	struct timespec ts[2] = { { H_MTIME, 0 }, { H_MTIME, 0 } };
	int fd, file;

	ck_assert_int_eq(h_write_random(path, size, 77), 0);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	file = open(path, O_RDONLY);
	ck_assert_int_ge(file, 0);
	ck_assert_int_eq(fdatasync(file), 0);
	/* Evict the second half, and a hole in the first. */
	ck_assert_int_eq(posix_fadvise(file, (off_t)(size / 2), 0,
				       POSIX_FADV_DONTNEED),
			 0);
	ck_assert_int_eq(posix_fadvise(file, 1 << 20, 1 << 20,
				       POSIX_FADV_DONTNEED),
			 0);
	close(file);
	fd = connect_ok();
	get_ok(fd, "GET /cold.bin\n", "cold.bin", 0, size, size);
	file = open(path, O_RDONLY);
	ck_assert_int_ge(file, 0);
	ck_assert_int_eq(posix_fadvise(file, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(file);
	get_ok(fd, "GET /cold.bin 3000000\n", "cold.bin", 3000000,
	       size - 3000000, size);
	close(fd);
	unlink(path);
}
END_TEST

/* A reader of SIZE bytes with a receive buffer of RCVBUF that starts late:
 * the socket fills under the server's writes, and every byte still
 * arrives, in order, and the next request on the connection is answered
 * after it. */
static void slow_reader(uint64_t size, int rcvbuf)
{
	const char *path = h_root_path(&d, "slow.bin");
	struct timespec ts[2] = { { H_MTIME, 0 }, { H_MTIME, 0 } };
	int fd;

	ck_assert_int_eq(h_write_random(path, size, 91), 0);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	fd = connect_rcvbuf(rcvbuf);
	send_ok(fd, "GET /slow.bin\nGET /slow.bin 1000\n");
	/* Long enough for the server to meet the full socket. */
	usleep(200 * 1000);
	expect_ok(fd, size, size, "the slow reader's first GET");
	expect_bytes(fd, "slow.bin", 0, size, "the slow reader's first GET");
	expect_ok(fd, size - 1000, size, "the slow reader's second GET");
	expect_bytes(fd, "slow.bin", 1000, size - 1000,
		     "the slow reader's second GET");
	close(fd);
	unlink(path);
}

/* A file sent in one turn (at most four buffers): the buffered engine's
 * whole-buffer writes are cut short and finished by uv_write. */
START_TEST(get_slow_reader)
{
	slow_reader(800 * 1024, 4096);
}
END_TEST

/* A file long enough to be probed (engine.h, FERRY_PROBE_BYTES): its
 * first MiB goes out under the probe's limits (in buffered mode 64 KiB
 * reads, all into one buffer, whose write the full socket cuts short),
 * the rest with both buffers, and the hand-over between them loses and
 * repeats nothing. (A 4 KiB receive buffer would take a minute for 6 MiB:
 * its window opens a delayed ACK at a time.) */
START_TEST(get_slow_reader_probed)
{
	slow_reader(3 * 1024 * 1024 + 12345, 64 * 1024);
}
END_TEST

/* A client that asks for a big file and reads nothing: the transfer
 * probes (engine.h, FERRY_PROBE_BYTES) and gives the kernel little, so its
 * log line says little was sent: the socket's receive buffer (128 KiB
 * here) and what the probe leaves unsent (at most 128 KiB, in buffered
 * mode no more than one 64 KiB read): 250 KiB in sendfile mode and 256 KiB
 * in buffered mode, where it was 4 MiB and 768 KiB before the probe. The
 * big file still arrives whole for a client that reads. */
START_TEST(stalled_reader_parks_little)
{
	static const char *const needles[] = { "path=/big.bin ", "status=499",
					       NULL };
	char line[1024];
	uint64_t bytes;
	int fd;

	fd = connect_rcvbuf(64 * 1024);
	send_ok(fd, "/big.bin\n");
	usleep(500 * 1000);
	close(fd);
	translog_line(line, sizeof(line), needles);
	bytes = field_u64(line, "bytes");
	ck_assert_msg(bytes > 0 && bytes < 512 * 1024,
		      "a stalled reader was given %llu bytes",
		      (unsigned long long)bytes);
	raw_ok("/big.bin\n", "big.bin", H_BIG_BYTES);
}
END_TEST

/* Sockets in TIME_WAIT (state 06 of /proc/net/tcp) whose local port is
 * PORT: the server's side of connections it closed. */
static int time_wait_count(int port)
{
	char line[512];
	unsigned local_port, state;
	int n = 0;
	FILE *f = fopen("/proc/net/tcp", "r");

	ck_assert_msg(f != NULL, "/proc/net/tcp: %s", strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, " %*d: %*8x:%x %*8x:%*x %x", &local_port,
			   &state) == 2 &&
		    (int)local_port == port && state == 0x06)
			n++;
	fclose(f);
	return n;
}

/* A connection ferryd closes itself (the raw form) leaves no TIME_WAIT
 * behind (the listener's TCP_LINGER2 -1): the client still gets every
 * byte and the EOF, and its own FIN is answered by a reset. */
START_TEST(raw_no_time_wait)
{
	int before = time_wait_count(d.port), i;

	for (i = 0; i < 5; i++)
		raw_ok("/one.bin\n", "one.bin", 1);
	raw_ok("/big.bin\n", "big.bin", H_BIG_BYTES);
	/* (BEFORE: another process's old connections may have used the
	 * port; they only go away.) */
	ck_assert_msg(time_wait_count(d.port) <= before,
		      "%d sockets of port %d in TIME_WAIT after 6 raw fetches, "
		      "%d before", time_wait_count(d.port), d.port, before);
}
END_TEST

START_TEST(get_ranges)
{
	int fd = connect_ok();

	get_ok(fd, "GET /small.bin 1000\n", "small.bin", 1000,
	       H_SMALL_BYTES - 1000, H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 1000 500\n", "small.bin", 1000, 500,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 0 1\n", "small.bin", 0, 1, H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 7 0\n", "small.bin", 7, 0, H_SMALL_BYTES);
	/* A length past the end is cut, and the OK line says so. */
	get_ok(fd, "GET /small.bin 102000 1000\n", "small.bin", 102000, 400,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 0 9223372036854775807\n", "small.bin", 0,
	       H_SMALL_BYTES, H_SMALL_BYTES);
	/* OFFSET == SIZE is valid and sends nothing. */
	get_ok(fd, "GET /small.bin 102400\n", "small.bin", H_SMALL_BYTES, 0,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /empty.bin 0\n", "empty.bin", 0, 0, 0);
	get_ok(fd, "GET /one.bin 1 5\n", "one.bin", 1, 0, 1);
	/* Beyond SIZE: 416, and the connection is still good. */
	send_ok(fd, "GET /small.bin 102401\n");
	expect_err(fd, 416, "offset one past the end");
	send_ok(fd, "GET /empty.bin 1\n");
	expect_err(fd, 416, "offset 1 of an empty file");
	send_ok(fd, "GET /small.bin 9223372036854775807 1\n");
	expect_err(fd, 416, "largest offset");
	get_ok(fd, "GET /small.bin 5 10\n", "small.bin", 5, 10, H_SMALL_BYTES);
	close(fd);
}
END_TEST

START_TEST(get_pipelined)
{
	static const char reqs[] = "GET /one.bin\n"
				   "GET /small.bin 10 20\n"
				   "GET /empty.bin\n"
				   "GET /nope\n"
				   "GET /big.bin 50000000 3000000\n"
				   "GET /small.bin 102401\n"
				   "LIST /sub\n"
				   "GET /small.bin 102400\n"
				   "GET /small.bin\n";
	char *listing = NULL;
	size_t len;
	int fd = connect_ok();

	/* Everything in one write, then our side shut: every answer, in
	 * order, then the close. */
	send_ok(fd, reqs);
	ck_assert_int_eq(shutdown(fd, SHUT_WR), 0);
	expect_ok(fd, 1, 1, "pipelined 1");
	expect_bytes(fd, "one.bin", 0, 1, "pipelined 1");
	expect_ok(fd, 20, H_SMALL_BYTES, "pipelined 2");
	expect_bytes(fd, "small.bin", 10, 20, "pipelined 2");
	expect_ok(fd, 0, 0, "pipelined 3");
	expect_err(fd, 404, "pipelined 4");
	expect_ok(fd, 3000000, H_BIG_BYTES, "pipelined 5");
	expect_bytes(fd, "big.bin", 50000000, 3000000, "pipelined 5");
	expect_err(fd, 416, "pipelined 6");

	/* The listing's bytes are checked in list_sub; here only its
	 * length, so the next answer is found where it should be. */
	{
		char line[256], *end;
		unsigned long long n;
		int rc;

		recv_line_ok(fd, line, sizeof(line), "pipelined 7");
		ck_assert_msg(strncmp(line, "OK ", 3) == 0,
			      "pipelined 7: got '%s'", line);
		n = strtoull(line + 3, &end, 10);
		ck_assert_msg(*end == '\0', "pipelined 7: got '%s'", line);
		listing = malloc(n + 1);
		rc = h_recv_n(fd, listing, n, &len, LINE_MS);
		ck_assert_msg(rc == 0, "pipelined 7: %s", h_strerror(rc));
		listing[n] = '\0';
		ck_assert_ptr_nonnull(strstr(listing, " a.txt\n"));
		free(listing);
	}
	expect_ok(fd, 0, H_SMALL_BYTES, "pipelined 8");
	expect_ok(fd, H_SMALL_BYTES, H_SMALL_BYTES, "pipelined 9");
	expect_bytes(fd, "small.bin", 0, H_SMALL_BYTES, "pipelined 9");
	expect_eof(fd, "after the pipelined answers");
	close(fd);
}
END_TEST

/* ---- LIST -------------------------------------------------------------- */

struct entry {
	const char *rel;     /* beneath the root */
	const char *encoded; /* the NAME field */
};

/* The listing the protocol calls for: "TYPE SIZE MTIME NAME\n" per entry,
 * from stat(2) of each (the entries are given in NAME order). */
static char *expected_listing(const struct entry *e, size_t n, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	size_t i;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < n; i++) {
		struct stat st;

		ck_assert_int_eq(stat(h_root_path(&d, e[i].rel), &st), 0);
		fprintf(f, "%c %llu %lld %s\n", S_ISDIR(st.st_mode) ? 'd' : 'f',
			(unsigned long long)st.st_size,
			(long long)st.st_mtime, e[i].encoded);
	}
	fclose(f);
	return buf;
}

/* Sends REQ and expects exactly the listing of the N entries. */
static void expect_listing(int fd, const char *req, const struct entry *e,
			   size_t n)
{
	size_t want_len, got_len = 0;
	char *want = expected_listing(e, n, &want_len), *got, line[128];
	int rc;

	send_ok(fd, req);
	snprintf(line, sizeof(line), "OK %zu", want_len);
	expect_line(fd, line, req);
	got = calloc(1, want_len + 1);
	rc = h_recv_n(fd, got, want_len, &got_len, LINE_MS);
	ck_assert_msg(rc == 0, "%s: %s", req, h_strerror(rc));
	ck_assert_msg(memcmp(got, want, want_len) == 0,
		      "%s: got\n%s\nwant\n%s", req, got, want);
	free(got);
	free(want);
}

static const struct entry root_entries[] = {
	{ "GET x", "GET%20x" },
	{ "big.bin", "big.bin" },
	{ "empty.bin", "empty.bin" },
	{ "one.bin", "one.bin" },
	{ "small.bin", "small.bin" },
	{ "sub", "sub" },
	{ "with space.txt", "with%20space.txt" },
};

static const struct entry sub_entries[] = {
	{ "sub/a.txt", "a.txt" },
	{ "sub/b.bin", "b.bin" },
	{ "sub/deeper", "deeper" },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(list_root)
{
	int fd = connect_ok();

	expect_listing(fd, "LIST\n", root_entries, COUNT(root_entries));
	expect_listing(fd, "LIST /\n", root_entries, COUNT(root_entries));
	expect_listing(fd, "LIST /.\r\n", root_entries, COUNT(root_entries));
	close(fd);
}
END_TEST

START_TEST(list_sub)
{
	int fd = connect_ok();

	expect_listing(fd, "LIST /sub\n", sub_entries, COUNT(sub_entries));
	expect_listing(fd, "LIST sub/\n", sub_entries, COUNT(sub_entries));
	expect_listing(fd, "LIST /%73ub\n", sub_entries, COUNT(sub_entries));
	send_ok(fd, "LIST /sub/deeper\n");
	expect_line(fd, "OK 0", "LIST of an empty dir");
	close(fd);
}
END_TEST

START_TEST(list_errors)
{
	int fd = connect_ok();

	send_ok(fd, "LIST /.hiddendir\n");
	expect_err(fd, 403, "LIST of a hidden dir");
	send_ok(fd, "LIST /sub/.hid\n");
	expect_err(fd, 403, "LIST of a hidden file");
	send_ok(fd, "LIST /..\n");
	expect_err(fd, 403, "LIST ..");
	send_ok(fd, "LIST /nope\n");
	expect_err(fd, 404, "LIST of nothing");
	/* Still open after each of them. */
	expect_listing(fd, "LIST /sub\n", sub_entries, COUNT(sub_entries));
	close(fd);
}
END_TEST

/* ---- errors ------------------------------------------------------------ */

START_TEST(err_400)
{
	static const char *const bad[] = {
		"GET /a%zz\n",		/* not hex */
		"GET /a%4\n",		/* cut short */
		"GET /a%00b\n",		/* NUL */
		"GET /small.bin x\n",	/* not a number */
		"GET /small.bin -1\n",
		"GET /small.bin 1x\n",
		"GET /small.bin 1 2 3\n", /* one field too many */
		"GET /small.bin 9223372036854775808\n", /* 2^63 */
		"GET /small.bin 123456789012345678901\n", /* 21 digits */
		"GET /small.bin 0 99999999999999999999\n",
		"LIST /a%zz\n",
	};
	static const char *const needles[] = { "status=400", NULL };
	char line[512];
	size_t i;

	for (i = 0; i < COUNT(bad); i++)
		expect_closing_error(bad[i], 400);
	translog_line(line, sizeof(line), needles);
}
END_TEST

START_TEST(err_403)
{
	static const char *const refused[] = {
		"GET /sub\n",			/* a directory */
		"GET /\n",			/* the root itself */
		"GET /sub/deeper\n",
		"GET /.hidden\n",		/* hidden */
		"GET /sub/.hid\n",
		"GET /.hiddendir/inside.txt\n",
		"GET /%2ehidden\n",
	};
	size_t i;
	int fd = connect_ok();

	for (i = 0; i < COUNT(refused); i++) {
		send_ok(fd, refused[i]);
		expect_err(fd, 403, refused[i]);
	}
	/* A 403 leaves the connection open. */
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);

	/* In the raw form the error line ends the connection. */
	expect_closing_error("/sub\n", 403);
	expect_closing_error("/.hidden\n", 403);
}
END_TEST

START_TEST(err_404)
{
	char line[512];
	int fd = connect_ok();

	send_ok(fd, "GET /nope\n");
	expect_err(fd, 404, "GET /nope");
	send_ok(fd, "GET /sub/nope.txt\n");
	expect_err(fd, 404, "GET /sub/nope.txt");
	/* An absolute path is taken beneath the root. */
	send_ok(fd, "GET /etc/passwd\n");
	expect_err(fd, 404, "GET /etc/passwd");
	send_ok(fd, "GET /one.bin/x\n");
	ck_assert(h_recv_line(fd, line, sizeof(line), LINE_MS) > 0);
	ck_assert_msg(strncmp(line, "ERR 404 ", 8) == 0 ||
			      strncmp(line, "ERR 403 ", 8) == 0,
		      "GET /one.bin/x: got '%s'", line);
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);

	expect_closing_error("/nope\n", 404);
	expect_closing_error("/etc/passwd\n", 404);
}
END_TEST

START_TEST(err_408)
{
	static const char *const needles[] = { "status=408", NULL };
	char line[512];
	int64_t start;
	int fd;

	restart("limits.request_timeout=200ms");
	/* The timeout runs from the accept, which comes after this. */
	start = h_now_ms();
	fd = connect_ok();
	send_ok(fd, "GET /one.bin");
	expect_err(fd, 408, "half a request line");
	ck_assert_msg(h_now_ms() - start >= 150,
		      "408 after %lld ms, before the 200 ms timeout",
		      (long long)(h_now_ms() - start));
	expect_eof(fd, "after 408");
	close(fd);

	/* A line that completes in time is served as usual. */
	fd = connect_ok();
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);

	translog_line(line, sizeof(line), needles);
	expect_field(line, "path", "-");
}
END_TEST

START_TEST(err_414)
{
	static const char *const needles[] = { "status=414", NULL };
	char line[8192];
	size_t n;
	int fd;

	/* 4096 bytes, LF included: the longest line there may be. */
	n = (size_t)snprintf(line, sizeof(line), "GET /");
	while (n < 4096 - strlen("/one.bin\n"))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "./");
	n += (size_t)snprintf(line + n, sizeof(line) - n, "/one.bin\n");
	ck_assert_uint_eq(n, 4096);
	ck_assert_uint_eq(strlen(line), 4096);
	fd = connect_ok();
	get_ok(fd, line, "one.bin", 0, 1, 1);
	close(fd);

	/* One byte more. */
	memmove(line + 6, line + 5, n - 5 + 1);
	line[5] = '/';
	ck_assert_uint_eq(strlen(line), 4097);
	expect_closing_error(line, 414);

	/* 4096 bytes and no LF yet: no need to wait for more. */
	memset(line, 'a', 4096);
	line[4096] = '\0';
	expect_closing_error(line, 414);

	translog_line(line, sizeof(line), needles);
	expect_field(line, "path", "-");
}
END_TEST

/* Opens LIMIT admitted connections, then expects CODE on one more; frees a
 * slot and expects a new connection to be served again. */
static void over_limit(int limit, int code)
{
	static const char *const needles_429[] = { "status=429", NULL };
	static const char *const needles_503[] = { "status=503", NULL };
	char line[512];
	int fds[8], fd, i;
	int64_t deadline;

	for (i = 0; i < limit; i++) {
		/* A reply proves the server has admitted it. */
		fds[i] = connect_ok();
		get_ok(fds[i], "GET /one.bin\n", "one.bin", 0, 1, 1);
	}
	fd = connect_ok();
	expect_err(fd, code, "one connection over the limit");
	expect_eof(fd, "over the limit");
	close(fd);

	close(fds[0]);
	/* The server learns of the close when it reads it; until then the
	 * slot may still be taken. */
	deadline = h_now_ms() + 5000;
	for (;;) {
		fd = connect_ok();
		send_ok(fd, "GET /one.bin\n");
		recv_line_ok(fd, line, sizeof(line), "after a slot was freed");
		if (strncmp(line, "OK ", 3) == 0)
			break;
		close(fd);
		ck_assert_msg(h_now_ms() < deadline,
			      "still '%s' 5 s after a slot was freed", line);
	}
	expect_bytes(fd, "one.bin", 0, 1, "after a slot was freed");
	close(fd);
	for (i = 1; i < limit; i++)
		close(fds[i]);

	translog_line(line, sizeof(line),
		      code == 429 ? needles_429 : needles_503);
	expect_field(line, "path", "-");
}

START_TEST(err_429)
{
	restart("limits.per_client=2");
	over_limit(2, 429);
}
END_TEST

START_TEST(err_503)
{
	restart("limits.connections=2");
	over_limit(2, 503);
}
END_TEST

/* Listeners defer the accept until the request arrives (TCP_DEFER_ACCEPT):
 * a connection that has sent nothing holds no slot of limits.connections,
 * so the next client is served beside it, and it is still accepted (at the
 * SYN-ACK's retransmission, 1 s) and meets the request timeout. With
 * "deferred: false" it is accepted at once and holds its slot. */
START_TEST(deferred_accept)
{
	int idle, fd;

	restart("limits.connections=1;limits.request_timeout=300ms");
	idle = connect_ok();
	fd = connect_ok();
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);
	expect_err(idle, 408, "the idle connection, accepted late");
	expect_eof(idle, "after 408");
	close(idle);

	restart("listen=[{address: \"127.0.0.1:0\", deferred: false}];"
		"limits.connections=1");
	idle = connect_ok();
	fd = connect_ok();
	expect_err(fd, 503, "one over the limit beside an idle connection");
	expect_eof(fd, "over the limit");
	close(fd);
	get_ok(idle, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(idle);
}
END_TEST

/* ---- the root's walls -------------------------------------------------- */

START_TEST(traversal)
{
	static const char *const get_403[] = {
		"GET /../etc/passwd\n",
		"GET ../../../../etc/passwd\n",
		"GET /sub/../../etc/passwd\n",
		"GET /%2e%2e/etc/passwd\n",
		"GET /%2E%2E/%2E%2E/etc/passwd\n",
		"GET /..%2fetc%2fpasswd\n",
		"GET /sub/%2e%2e%2f%2e%2e%2fetc/passwd\n",
		"GET /./../ferryd.yaml\n",
		"LIST /..\n",
		"LIST /sub/../..\n",
	};
	static const char *const raw[] = {
		"../etc/passwd\n",
		"/../../../../etc/passwd\n",
		"/sub/../../ferryd.yaml\n",
		"/%2e%2e/ferryd.yaml\n", /* literal in the raw form */
		"..\n",
	};
	size_t i, len;
	char *resp;
	int fd = connect_ok();

	for (i = 0; i < COUNT(get_403); i++) {
		send_ok(fd, get_403[i]);
		expect_err(fd, 403, get_403[i]);
	}
	close(fd);

	for (i = 0; i < COUNT(raw); i++) {
		int rc = h_request(d.port, raw[i], &resp, &len, LINE_MS);

		ck_assert_msg(rc == 0, "%s: %s", raw[i], h_strerror(rc));
		ck_assert_msg(strncmp(resp, "ERR 403 ", 8) == 0 ||
				      strncmp(resp, "ERR 404 ", 8) == 0,
			      "%s: got '%.80s'", raw[i], resp);
		ck_assert_msg(strchr(resp, '\n') == resp + len - 1,
			      "%s: more than the error line: '%.200s'", raw[i],
			      resp);
		free(resp);
	}
}
END_TEST

START_TEST(symlinks_out)
{
	int fd;

	ck_assert_int_eq(symlink("/etc/passwd", h_root_path(&d, "link_out")), 0);
	ck_assert_int_eq(symlink("/etc", h_root_path(&d, "etc_link")), 0);
	/* Relative, to the test dir above the root. */
	ck_assert_int_eq(symlink("../..", h_root_path(&d, "sub/up")), 0);

	fd = connect_ok();
	send_ok(fd, "GET /link_out\n");
	expect_err(fd, 403, "symlink to /etc/passwd");
	send_ok(fd, "GET /etc_link/passwd\n");
	expect_err(fd, 403, "through a symlink to /etc");
	send_ok(fd, "GET /sub/up/ferryd.yaml\n");
	expect_err(fd, 403, "through a symlink to ../..");
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);
	expect_closing_error("/link_out\n", 403);
}
END_TEST

START_TEST(fifo)
{
	int64_t start;
	int fd, other;

	ck_assert_int_eq(mkfifo(h_root_path(&d, "fifo"), 0644), 0);

	fd = connect_ok();
	start = h_now_ms();
	send_ok(fd, "GET /fifo\n");
	expect_err(fd, 403, "GET of a FIFO");
	ck_assert_msg(h_now_ms() - start < 2000, "403 for a FIFO took %lld ms",
		      (long long)(h_now_ms() - start));
	/* Nothing is stuck: this connection and another are served. */
	other = connect_ok();
	get_ok(other, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(other);
	close(fd);

	expect_closing_error("/fifo\n", 403);
	raw_ok("/one.bin\n", "one.bin", 1);
}
END_TEST

START_TEST(sparse_5g)
{
	static char block[1 << 20];
	const uint64_t size = 5 * GIB;
	char req[128], *path;
	size_t i;
	int fd, rc;

	/* A 5 GiB hole with random bytes in the last MiB and across the
	 * 4 GiB line. */
	path = strdup(h_root_path(&d, "huge.bin"));
	ck_assert_int_eq(h_write_text(path, ""), 0);
	ck_assert_int_eq(truncate(path, (off_t)size), 0);
	for (i = 0; i < sizeof(block); i++)
		block[i] = (char)(random() & 0xff);
	rc = h_write_at(path, size - sizeof(block), block, sizeof(block));
	ck_assert_int_eq(rc, 0);
	for (i = 0; i < sizeof(block); i++)
		block[i] = (char)(random() & 0xff);
	rc = h_write_at(path, 4 * GIB - sizeof(block) / 2, block,
			sizeof(block));
	ck_assert_int_eq(rc, 0);
	{
		struct timespec ts[2] = { { H_MTIME, 0 }, { H_MTIME, 0 } };

		ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	free(path);

	fd = connect_ok();
	snprintf(req, sizeof(req), "GET /huge.bin %llu\n",
		 (unsigned long long)(size - sizeof(block)));
	get_ok(fd, req, "huge.bin", size - sizeof(block), sizeof(block), size);
	snprintf(req, sizeof(req), "GET /huge.bin %llu %zu\n",
		 (unsigned long long)(4 * GIB - sizeof(block) / 2),
		 sizeof(block));
	get_ok(fd, req, "huge.bin", 4 * GIB - sizeof(block) / 2, sizeof(block),
	       size);
	snprintf(req, sizeof(req), "GET /huge.bin %llu 1000\n",
		 (unsigned long long)(size - 120));
	get_ok(fd, req, "huge.bin", size - 120, 120, size);
	get_ok(fd, "GET /huge.bin 0 65536\n", "huge.bin", 0, 65536, size);
	snprintf(req, sizeof(req), "GET /huge.bin %llu\n",
		 (unsigned long long)size);
	get_ok(fd, req, "huge.bin", size, 0, size);
	snprintf(req, sizeof(req), "GET /huge.bin %llu\n",
		 (unsigned long long)size + 1);
	send_ok(fd, req);
	expect_err(fd, 416, req);
	close(fd);

	/* The raw form starts at 0: its first MiB, then we hang up. */
	fd = connect_ok();
	send_ok(fd, "/huge.bin\n");
	expect_bytes(fd, "huge.bin", 0, sizeof(block), "raw head of huge.bin");
	close(fd);
}
END_TEST

/* ---- the transfer log -------------------------------------------------- */

START_TEST(translog_lines)
{
	static const char *const ok_needles[] = { "path=/small.bin ",
						  "status=200", NULL };
	static const char *const range_needles[] = { "path=/sub/b.bin ",
						     "status=200", NULL };
	static const char *const nf_needles[] = { "path=/nope ", NULL };
	static const char *const list_needles[] = { "path=/sub ", NULL };
	static const char *const gone_needles[] = { "path=/big.bin ", NULL };
	char line[1024], client[64];
	uint64_t bytes;
	int fd, port;

	fd = connect_ok();
	port = h_local_port(fd);
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	get_ok(fd, "GET /sub/b.bin 100 200\n", "sub/b.bin", 100, 200, 3000);
	send_ok(fd, "GET /nope\n");
	expect_err(fd, 404, "GET /nope");
	expect_listing(fd, "LIST /sub\n", sub_entries, COUNT(sub_entries));
	close(fd);

	snprintf(client, sizeof(client), "127.0.0.1:%d", port);
	translog_line(line, sizeof(line), ok_needles);
	ck_assert_msg(strncmp(line, "20", 2) == 0 && line[23] == 'Z' &&
			      line[24] == ' ',
		      "no UTC timestamp first: '%s'", line);
	expect_field(line, "client", client);
	expect_field(line, "mode", d.mode);
	expect_field(line, "offset", "0");
	expect_field(line, "bytes", "102400");
	expect_field(line, "size", "102400");
	ck_assert_msg(strstr(line, " duration_s=") != NULL &&
			      strstr(line, " mib_per_s=") != NULL,
		      "no duration_s or mib_per_s in '%s'", line);
	ck_assert_msg(strstr(line, " error=") == NULL, "error= in '%s'", line);

	translog_line(line, sizeof(line), range_needles);
	expect_field(line, "offset", "100");
	expect_field(line, "bytes", "200");
	expect_field(line, "size", "3000");
	expect_field(line, "mode", d.mode);

	translog_line(line, sizeof(line), nf_needles);
	expect_field(line, "status", "404");
	expect_field(line, "mode", d.mode);
	expect_field(line, "bytes", "0");
	expect_field(line, "client", client);

	translog_line(line, sizeof(line), list_needles);
	expect_field(line, "mode", "list");
	expect_field(line, "status", "200");

	/* 499: the client goes away after a little of the big file. */
	fd = connect_ok();
	send_ok(fd, "/big.bin\n");
	expect_bytes(fd, "big.bin", 0, 256 * 1024, "raw big.bin, head");
	close(fd);
	translog_line(line, sizeof(line), gone_needles);
	expect_field(line, "status", "499");
	expect_field(line, "mode", d.mode);
	expect_field(line, "size", "104857600");
	bytes = field_u64(line, "bytes");
	ck_assert_msg(bytes >= 256 * 1024 && bytes < H_BIG_BYTES,
		      "bytes=%llu for a client gone after 256 KiB",
		      (unsigned long long)bytes);
}
END_TEST

START_TEST(translog_json)
{
	char want_mode[64], line[1024];
	const char *needles[] = { "\"path\":\"/with space.txt\"", want_mode,
				  NULL };
	int fd;

	restart("log.format=json");
	fd = connect_ok();
	get_ok(fd, "GET /with%20space.txt\n", "with space.txt", 0, 19, 19);
	close(fd);

	/* The path decoded, strings quoted, numbers bare. */
	snprintf(want_mode, sizeof(want_mode), "\"mode\":\"%s\"", d.mode);
	translog_line(line, sizeof(line), needles);
	ck_assert_msg(line[0] == '{' && line[strlen(line) - 1] == '}',
		      "not one JSON object: '%s'", line);
	ck_assert_msg(strncmp(line, "{\"time\":\"20", 11) == 0,
		      "no time first: '%s'", line);
	ck_assert_msg(strstr(line, ",\"status\":200,") != NULL &&
			      strstr(line, ",\"offset\":0,") != NULL &&
			      strstr(line, ",\"bytes\":19,") != NULL &&
			      strstr(line, ",\"size\":19,") != NULL &&
			      strstr(line, ",\"duration_s\":") != NULL &&
			      strstr(line, ",\"mib_per_s\":") != NULL &&
			      strstr(line, "\"error\"") == NULL,
		      "fields missing or wrong in '%s'", line);
}
END_TEST

/* ---- signals ----------------------------------------------------------- */

/* Reads the raw stream of big.bin on FD from *GOT on, RATE_BPS at a time,
 * until EOF, all of it, or TIMEOUT_MS; reaps the daemon when it exits,
 * noting when in *EXIT_AT. Returns h_recv_compare's last code. */
static int read_big_paced(int fd, uint64_t *got, uint64_t rate_bps,
			  int64_t *exit_at, int *status, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int rc = 0;

	while (*got < H_BIG_BYTES) {
		uint64_t n = H_BIG_BYTES - *got, g = 0;
		int left = (int)(deadline - h_now_ms());

		if (n > 256 * 1024)
			n = 256 * 1024;
		if (left <= 0)
			return -ETIMEDOUT;
		rc = h_recv_compare(fd, h_root_path(&d, "big.bin"), *got, n,
				    rate_bps, &g, left);
		*got += g;
		if (*exit_at == 0 && h_wait_exit(&d, 0, status) == 0)
			*exit_at = h_now_ms();
		if (rc != 0)
			break;
	}
	return rc;
}

/* Starts a raw fetch of big.bin and reads its first MiB. */
static int start_big_fetch(uint64_t *got)
{
	int fd = connect_ok();

	send_ok(fd, "/big.bin\n");
	expect_bytes(fd, "big.bin", 0, 1024 * 1024, "raw big.bin, head");
	*got = 1024 * 1024;
	return fd;
}

START_TEST(sigterm_finishes)
{
	static const char *const needles[] = { "path=/big.bin ", NULL };
	char line[1024];
	uint64_t got;
	int64_t sent, exit_at = 0;
	int fd, rc, status = 0;

	fd = start_big_fetch(&got);
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();

	/* No new connection is served once the signal is in: it is refused,
	 * or gets 503, or is closed. The signal takes a moment to land. */
	for (;;) {
		int c = h_connect(d.port, LINE_MS);
		ssize_t n = 0;

		if (c < 0)
			break;
		if (h_send_str(c, "GET /one.bin\n", LINE_MS) == 0)
			n = h_recv_line(c, line, sizeof(line), LINE_MS);
		close(c);
		if (n <= 0 || strncmp(line, "ERR 503 ", 8) == 0)
			break;
		ck_assert_msg(h_now_ms() - sent < 5000,
			      "still serving new connections 5 s after "
			      "SIGTERM: '%s'",
			      line);
	}

	/* 40 MiB/s: about 2.5 s, well inside shutdown_timeout (10 s). */
	rc = read_big_paced(fd, &got, 40 * 1024 * 1024, &exit_at, &status,
			    BIG_MS);
	ck_assert_msg(rc == 0, "transfer cut by SIGTERM: %s after %llu bytes",
		      h_strerror(rc), (unsigned long long)got);
	expect_eof(fd, "after the whole file");
	close(fd);

	if (exit_at == 0) {
		rc = h_wait_exit(&d, (int)(sent + 15000 - h_now_ms()), &status);
		ck_assert_msg(rc == 0, "ferryd still up 15 s after SIGTERM");
		exit_at = h_now_ms();
	}
	ck_assert_msg(exit_at - sent <= 15000, "exit %lld ms after SIGTERM",
		      (long long)(exit_at - sent));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x after SIGTERM: %s", status,
		      h_diag_tail(&d));

	translog_line(line, sizeof(line), needles);
	expect_field(line, "status", "200");
	expect_field(line, "bytes", "104857600");
}
END_TEST

START_TEST(sigterm_cuts)
{
	static const char *const needles[] = { "path=/big.bin ", NULL };
	char line[1024];
	uint64_t got, bytes;
	int64_t sent, exit_at = 0;
	int fd, rc, status = 0;

	restart("limits.shutdown_timeout=1s");
	fd = start_big_fetch(&got);
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();

	/* 2 MiB/s would need 50 s: the 1 s shutdown_timeout cuts it. What
	 * did arrive must still be the file's bytes. */
	rc = read_big_paced(fd, &got, 2 * 1024 * 1024, &exit_at, &status,
			    BIG_MS);
	ck_assert_msg(rc == H_EOF, "want the transfer cut, got: %s after %llu "
				   "bytes",
		      h_strerror(rc), (unsigned long long)got);
	ck_assert_msg(got < H_BIG_BYTES, "the whole file arrived");
	close(fd);

	if (exit_at == 0) {
		rc = h_wait_exit(&d, (int)(sent + 6000 - h_now_ms()), &status);
		ck_assert_msg(rc == 0, "ferryd still up 6 s after SIGTERM");
		exit_at = h_now_ms();
	}
	ck_assert_msg(exit_at - sent <= 6000,
		      "exit %lld ms after SIGTERM, shutdown_timeout 1 s",
		      (long long)(exit_at - sent));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x after SIGTERM: %s", status,
		      h_diag_tail(&d));

	translog_line(line, sizeof(line), needles);
	ck_assert_msg(field_u64(line, "status") != 200,
		      "a cut transfer logged as complete: '%s'", line);
	bytes = field_u64(line, "bytes");
	ck_assert_msg(bytes < H_BIG_BYTES && bytes >= got,
		      "bytes=%llu, the client got %llu: '%s'",
		      (unsigned long long)bytes, (unsigned long long)got, line);
}
END_TEST

START_TEST(sighup_broken_config)
{
	const char *needles[] = { "]: error: ", d.config, NULL };
	char line[1024], *p;
	int fd;

	d.allowed_error = "reload";
	ck_assert_int_eq(h_write_text(d.config, "listen: [\"127.0.0.1:0\"\n"
						"root: {{{\n"),
			 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  needles) == 0,
		      "no error line naming %s after SIGHUP: %s", d.config,
		      h_diag_tail(&d));
	/* FILE:LINE:COL: */
	p = strstr(line, d.config) + strlen(d.config);
	ck_assert_msg(p[0] == ':' && p[1] >= '1' && p[1] <= '9' &&
			      strchr(p + 1, ':') != NULL,
		      "no FILE:LINE:COL in '%s'", line);

	/* Still serving, from the old root. */
	fd = connect_ok();
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
}
END_TEST

START_TEST(sighup_new_config)
{
	static const char *const needles[] = { "path=/only2.txt ",
					       "status=200", NULL };
	const char *other = strcmp(d.mode, "sendfile") == 0 ? "buffered"
							    : "sendfile";
	char root2[400], overrides[600], line[1024];
	int64_t deadline;
	int fd;

	snprintf(root2, sizeof(root2), "%s/root2", d.dir);
	ck_assert_int_eq(mkdir(root2, 0755), 0);
	snprintf(line, sizeof(line), "%s/only2.txt", root2);
	ck_assert_int_eq(h_write_text(line, "in the second root\n"), 0);
	snprintf(overrides, sizeof(overrides), "root=\"%s\";transfer.mode=%s",
		 root2, other);
	ck_assert_int_eq(h_write_config(&d, overrides), 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);

	/* The reload has happened once the new root answers. */
	deadline = h_now_ms() + LINE_MS;
	for (;;) {
		fd = connect_ok();
		send_ok(fd, "GET /only2.txt\n");
		recv_line_ok(fd, line, sizeof(line), "GET /only2.txt");
		if (strncmp(line, "OK ", 3) == 0)
			break;
		close(fd);
		ck_assert_msg(h_now_ms() < deadline,
			      "new root not served 5 s after SIGHUP: '%s': %s",
			      line, h_diag_tail(&d));
	}
	/* Its mtime is now, not H_MTIME. */
	ck_assert_msg(strncmp(line, "OK 19 19 ", 9) == 0, "got '%s'", line);
	expect_bytes(fd, "../root2/only2.txt", 0, 19, "GET /only2.txt");
	close(fd);
	/* The old root is gone, and the new mode is in use. */
	fd = connect_ok();
	send_ok(fd, "GET /one.bin\n");
	expect_err(fd, 404, "GET /one.bin from the old root");
	close(fd);
	translog_line(line, sizeof(line), needles);
	expect_field(line, "mode", other);
}
END_TEST

START_TEST(sighup_reopens_translog)
{
	static const char *const first[] = { "path=/one.bin ", NULL };
	static const char *const second[] = { "path=/small.bin ", NULL };
	char rotated[400], line[1024];
	int fd;

	fd = connect_ok();
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);
	translog_line(line, sizeof(line), first);

	snprintf(rotated, sizeof(rotated), "%s.1", d.transfer_log);
	ck_assert_int_eq(rename(d.transfer_log, rotated), 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	/* The reopen creates the file anew. */
	ck_assert_msg(h_wait_exists(d.transfer_log, LINE_MS) == 0,
		      "no new transfer log 5 s after SIGHUP: %s",
		      h_diag_tail(&d));

	fd = connect_ok();
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
	translog_line(line, sizeof(line), second);
	ck_assert_int_eq(h_count_lines(d.transfer_log, "path=/one.bin "), 0);
	ck_assert_int_eq(h_count_lines(rotated, "path=/one.bin "), 1);
	ck_assert_int_eq(h_count_lines(rotated, "path=/small.bin "), 0);
}
END_TEST

/* ---- ferryd -t, -h ----------------------------------------------------- */

/* Runs ferryd with ARGV; returns its exit code, output in OUT and ERR. */
static int run_cli(const char *const argv[], char **out, char **err)
{
	int rc, status = 0;

	rc = h_run_ferryd(&d, argv, 10000, &status, out, err);
	ck_assert_msg(rc == 0, "running %s: %s", h_ferryd_path(),
		      h_strerror(rc));
	ck_assert_msg(WIFEXITED(status), "%s: status 0x%x", h_ferryd_path(),
		      status);
	return WEXITSTATUS(status);
}

/* Lines of TEXT that start "FILE:LINE:COL: " for D's config. */
static int diag_lines(const char *text, int want_line)
{
	size_t flen = strlen(d.config);
	const char *p = text;
	int n = 0;

	while (*p != '\0') {
		const char *end = strchr(p, '\n');
		char *q;
		long l, c;

		if (strncmp(p, d.config, flen) == 0 && p[flen] == ':') {
			l = strtol(p + flen + 1, &q, 10);
			if (*q == ':') {
				c = strtol(q + 1, &q, 10);
				if (l > 0 && c > 0 && q[0] == ':' &&
				    q[1] == ' ' && (want_line == 0 ||
						    l == want_line))
					n++;
			}
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	return n;
}

START_TEST(cli_check_good)
{
	const char *argv[] = { "ferryd", "-t", "-c", d.config, NULL };
	char *out, *err;

	ck_assert_int_eq(run_cli(argv, &out, &err), 0);
	ck_assert_msg(strstr(out, "configuration OK") != NULL ||
			      strstr(err, "configuration OK") != NULL,
		      "no 'configuration OK': out '%s' err '%s'", out, err);
	free(out);
	free(err);
}
END_TEST

START_TEST(cli_check_bad_values)
{
	const char *argv[] = { "ferryd", "-t", "-c", d.config, NULL };
	char text[1024], *out, *err;

	snprintf(text, sizeof(text),
		 "listen: [\"127.0.0.1:0\"]\n"
		 "root: \"%s\"\n"
		 "transfer:\n"
		 "  mode: warp\n"
		 "limits:\n"
		 "  connections: lots\n"
		 "threads: 4\n",
		 d.root);
	ck_assert_int_eq(h_write_text(d.config, text), 0);
	ck_assert_int_eq(run_cli(argv, &out, &err), 1);
	/* Every error, each at its place. */
	ck_assert_msg(diag_lines(err, 4) >= 1 && diag_lines(err, 6) >= 1,
		      "want FILE:4:COL: and FILE:6:COL: lines, got:\n%s", err);
	ck_assert_msg(strstr(out, "configuration OK") == NULL &&
			      strstr(err, "configuration OK") == NULL,
		      "'configuration OK' for a bad config");
	free(out);
	free(err);
}
END_TEST

START_TEST(cli_check_syntax_error)
{
	const char *argv[] = { "ferryd", "-t", "-c", d.config, NULL };
	char *out, *err;

	ck_assert_int_eq(h_write_text(d.config, "listen: [\"127.0.0.1:0\"\n"
						"root: {{{\n"),
			 0);
	ck_assert_int_eq(run_cli(argv, &out, &err), 1);
	ck_assert_msg(diag_lines(err, 0) >= 1, "want FILE:LINE:COL:, got:\n%s",
		      err);
	free(out);
	free(err);
}
END_TEST

START_TEST(cli_check_missing)
{
	char missing[400], *out, *err;
	const char *argv[] = { "ferryd", "-t", "-c", missing, NULL };

	snprintf(missing, sizeof(missing), "%s/nope.yaml", d.dir);
	ck_assert_int_eq(run_cli(argv, &out, &err), 1);
	ck_assert_msg(strstr(err, missing) != NULL,
		      "the error does not name the file: '%s'", err);
	free(out);
	free(err);
}
END_TEST

START_TEST(cli_usage)
{
	const char *help[] = { "ferryd", "-h", NULL };
	const char *bad[] = { "ferryd", "-Z", NULL };
	char *out, *err;

	ck_assert_int_eq(run_cli(help, &out, &err), 0);
	ck_assert_msg(strstr(out, "usage") != NULL, "-h: '%s'", out);
	free(out);
	free(err);
	ck_assert_int_eq(run_cli(bad, &out, &err), 2);
	ck_assert_msg(strstr(err, "usage") != NULL, "-Z: '%s'", err);
	free(out);
	free(err);
}
END_TEST

/* ---- PING and the drain ------------------------------------------------ */

START_TEST(ping)
{
	static const char *const needles[] = { "mode=ping", "status=200", NULL };
	char line[512];
	int fd = connect_ok();

	send_ok(fd, "PING\n");
	expect_line(fd, "OK", "PING");
	/* Kept open, pipelined with a GET and CRLF. */
	send_ok(fd, "PING\r\nGET /one.bin\nPING\n");
	expect_line(fd, "OK", "PING with CRLF");
	expect_ok(fd, 1, 1, "GET after PING");
	expect_bytes(fd, "one.bin", 0, 1, "GET after PING");
	expect_line(fd, "OK", "PING after GET");
	close(fd);
	translog_line(line, sizeof(line), needles);
	expect_field(line, "path", "-");
}
END_TEST

/* SIGTERM with limits.drain: PING answers 503 while a GET is still served,
 * and the daemon exits once the drain and the transfers are over. */
START_TEST(drain)
{
	static const char *const needles[] = { "mode=ping", "status=503",
					       "error=draining", NULL };
	char line[512];
	int64_t sent, exit_at;
	int fd, rc, status = 0;

	restart("limits.drain=2s");
	fd = connect_ok();
	send_ok(fd, "PING\n");
	expect_line(fd, "OK", "PING before the drain");
	close(fd);

	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();
	/* The signal takes a moment to land. */
	for (;;) {
		fd = connect_ok();
		send_ok(fd, "PING\n");
		recv_line_ok(fd, line, sizeof(line), "PING while draining");
		if (strcmp(line, "ERR 503 draining") == 0)
			break;
		ck_assert_msg(strcmp(line, "OK") == 0, "PING: '%s'", line);
		ck_assert_msg(h_now_ms() - sent < 1500,
			      "no ERR 503 draining 1.5 s after SIGTERM");
		close(fd);
	}
	expect_eof(fd, "after ERR 503 draining");
	close(fd);

	/* A new connection is served whole during the drain. */
	fd = connect_ok();
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
	ck_assert_msg(h_alive(&d), "ferryd exited during the drain");

	rc = h_wait_exit(&d, 8000, &status);
	ck_assert_msg(rc == 0, "ferryd still up 8 s after SIGTERM");
	exit_at = h_now_ms();
	ck_assert_msg(exit_at - sent >= 1900, "exit %lld ms after SIGTERM, "
		      "drain 2 s", (long long)(exit_at - sent));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x: %s", status, h_diag_tail(&d));
	translog_line(line, sizeof(line), needles);
}
END_TEST

/* A second SIGTERM cuts the drain short. */
START_TEST(drain_second_signal)
{
	int64_t sent;
	int rc, status = 0;

	restart("limits.drain=30s;limits.shutdown_timeout=1s");
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();
	for (;;) {
		char line[256];
		int fd = connect_ok();

		send_ok(fd, "PING\n");
		recv_line_ok(fd, line, sizeof(line), "PING while draining");
		close(fd);
		if (strcmp(line, "ERR 503 draining") == 0)
			break;
		ck_assert_msg(h_now_ms() - sent < 1500,
			      "no ERR 503 draining 1.5 s after SIGTERM");
	}
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	rc = h_wait_exit(&d, 5000, &status);
	ck_assert_msg(rc == 0, "ferryd still up 5 s after a second SIGTERM");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x: %s", status, h_diag_tail(&d));
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static const struct fixture_test daemon_tests[] = {
	{ "raw_fetch", &raw_fetch, 30 },
	{ "raw_big", &raw_big, 120 },
	{ "raw_half_close", &raw_half_close, 30 },
	{ "get_full", &get_full, 30 },
	{ "get_big", &get_big, 120 },
	{ "get_evicted", &get_evicted, 60 },
	{ "get_slow_reader", &get_slow_reader, 60 },
	{ "get_slow_reader_probed", &get_slow_reader_probed, 60 },
	{ "stalled_reader_parks_little", &stalled_reader_parks_little, 60 },
	{ "raw_no_time_wait", &raw_no_time_wait, 60 },
	{ "get_ranges", &get_ranges, 30 },
	{ "get_pipelined", &get_pipelined, 60 },
	{ "list_root", &list_root, 30 },
	{ "list_sub", &list_sub, 30 },
	{ "list_errors", &list_errors, 30 },
	{ "err_400", &err_400, 30 },
	{ "err_403", &err_403, 30 },
	{ "err_404", &err_404, 30 },
	{ "err_408", &err_408, 30 },
	{ "err_414", &err_414, 30 },
	{ "err_429", &err_429, 30 },
	{ "err_503", &err_503, 30 },
	{ "deferred_accept", &deferred_accept, 30 },
	{ "traversal", &traversal, 30 },
	{ "symlinks_out", &symlinks_out, 30 },
	{ "fifo", &fifo, 30 },
	{ "sparse_5g", &sparse_5g, 60 },
	{ "translog_lines", &translog_lines, 60 },
	{ "translog_json", &translog_json, 30 },
	{ "sigterm_finishes", &sigterm_finishes, 120 },
	{ "sigterm_cuts", &sigterm_cuts, 120 },
	{ "sighup_broken_config", &sighup_broken_config, 30 },
	{ "sighup_new_config", &sighup_new_config, 30 },
	{ "sighup_reopens_translog", &sighup_reopens_translog, 30 },
	{ "ping", &ping, 30 },
	{ "drain", &drain, 30 },
	{ "drain_second_signal", &drain_second_signal, 30 },
};

static const struct fixture_test cli_tests[] = {
	{ "cli_check_good", &cli_check_good, 30 },
	{ "cli_check_bad_values", &cli_check_bad_values, 30 },
	{ "cli_check_syntax_error", &cli_check_syntax_error, 30 },
	{ "cli_check_missing", &cli_check_missing, 30 },
	{ "cli_usage", &cli_usage, 30 },
};

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");
	size_t i;

	fixture_add_mode_tests(s, &d, STOP_MS, daemon_tests,
			       COUNT(daemon_tests));
	for (i = 0; i < COUNT(cli_tests); i++) {
		TCase *tc = tcase_create(cli_tests[i].name);

		tcase_set_tags(tc, "cli");
		tcase_add_checked_fixture(tc, setup_cli, teardown_cli);
		tcase_set_timeout(tc, cli_tests[i].timeout_s);
		tcase_add_test(tc, *cli_tests[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	return fixture_run("check_daemon", daemon_suite());
}
