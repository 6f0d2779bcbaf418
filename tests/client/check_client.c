/* Integration tests of the ferry client: the built src/ferry (or $FERRY)
 * against the real ferryd on port 0, over loopback.
 *
 * Every test that talks to ferryd runs once per transfer mode, as its own
 * TCase "<test>_<mode>" (CK_RUN_CASE=get_sizes_buffered). The checked
 * fixture starts a daemon with the standard root (harness.c) and an empty
 * out/ dir, where ferry runs; after the test it asserts that the daemon is
 * alive, its fd count is back to its baseline, it stops cleanly on SIGTERM
 * and its diagnostic log holds no unexpected error.
 *
 * Two tests stand a server of their own in for ferryd ("fake"): it answers
 * the client's GET with the OK line of big.bin and its first half, then
 * either stops (closes) or stalls while the test kills the client, so a
 * fetch is cut at exactly the half, with no race against a fast transfer.
 * The resume that follows is against the real ferryd.
 *
 * ferry runs in its own process group with PR_SET_PDEATHSIG(SIGKILL), like
 * the daemon, so no client outlives a failed test; every wait is bounded. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "lib/cli.h"
#include "lib/fixture.h"
#include "lib/harness.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define RUN_MS 60000  /* one ferry run, 100 MiB included */
#define WAIT_MS 10000 /* a file to grow, a client to connect */
#define STOP_MS 15000 /* SIGTERM to exit, idle daemon */
#define HALF (H_BIG_BYTES / 2)
#define MIB (1024 * 1024)

static struct h_daemon d;

/* ---- paths ------------------------------------------------------------- */

/* "127.0.0.1:PORT" of the fixture's daemon. */
static const char *target(void)
{
	static char t[32];

	snprintf(t, sizeof(t), "127.0.0.1:%d", d.port);
	return t;
}

/* ---- files ------------------------------------------------------------- */

/* A whole file of the root, fetched to OUT_DIR/NAME, with its mtime. */
static void expect_fetched(const char *name, const char *rel, time_t mtime)
{
	struct stat st;

	ck_assert_int_eq(stat(h_root_path(&d, rel), &st), 0);
	cli_expect_same(cli_out_path(name), h_root_path(&d, rel), 0,
		    (uint64_t)st.st_size, name);
	ck_assert_int_eq(stat(cli_out_path(name), &st), 0);
	ck_assert_msg(st.st_mtime == mtime, "%s: mtime %lld, want %lld", name,
		      (long long)st.st_mtime, (long long)mtime);
}

/* Neither NAME.part nor NAME.part.meta is left in OUT_DIR. */
static void expect_no_part(const char *name)
{
	char rel[400];

	snprintf(rel, sizeof(rel), "%s.part", name);
	cli_expect_absent(cli_out_path(rel), name);
	snprintf(rel, sizeof(rel), "%s.part.meta", name);
	cli_expect_absent(cli_out_path(rel), name);
}

/* Copies LENGTH bytes of SRC from 0 to DST (created), or zeros when SRC is
 * NULL. */
static void make_part(const char *dst, const char *src, uint64_t length)
{
	static char buf[MIB];
	uint64_t at = 0;
	int in = -1, out;

	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(out >= 0, "%s: %s", dst, strerror(errno));
	if (src != NULL) {
		in = open(src, O_RDONLY | O_CLOEXEC);
		ck_assert_msg(in >= 0, "%s: %s", src, strerror(errno));
	} else {
		memset(buf, 0, sizeof(buf));
	}
	while (at < length) {
		size_t n = length - at < sizeof(buf) ? (size_t)(length - at)
						     : sizeof(buf);

		if (in >= 0)
			ck_assert(pread(in, buf, n, (off_t)at) == (ssize_t)n);
		ck_assert(write(out, buf, n) == (ssize_t)n);
		at += n;
	}
	if (in >= 0)
		close(in);
	close(out);
}

static void write_meta(const char *name, uint64_t size, int64_t mtime,
		       uint64_t offset)
{
	char rel[400], text[128];

	snprintf(rel, sizeof(rel), "%s.part.meta", name);
	snprintf(text, sizeof(text), "%llu %lld %llu\n",
		 (unsigned long long)size, (long long)mtime,
		 (unsigned long long)offset);
	ck_assert_int_eq(h_write_text(cli_out_path(rel), text), 0);
}

/* Writes SIZE random bytes to REL in the root, with mtime MTIME. */
static void root_file(const char *rel, uint64_t size, time_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	int rc = h_write_random(h_root_path(&d, rel), size,
				(uint64_t)random() << 16 ^ size);

	ck_assert_msg(rc == 0, "%s: %s", rel, h_strerror(rc));
	ck_assert_int_eq(utimensat(AT_FDCWD, h_root_path(&d, rel), ts, 0), 0);
}

/* ---- the transfer log -------------------------------------------------- */

static void translog_line(char *line, size_t cap, const char *const needles[])
{
	char *text = NULL;
	size_t len;
	int rc = h_wait_line(d.transfer_log, 5000, line, cap, needles);

	if (rc != 0)
		h_read_file(d.transfer_log, &text, &len);
	ck_assert_msg(rc == 0, "no transfer log line with '%s' '%s'; the log:\n%s",
		      needles[0], needles[1] != NULL ? needles[1] : "",
		      text != NULL ? text : "(none)");
	free(text);
}

/* The transfer of PATH from OFFSET, BYTES long, is in the log. */
static void expect_logged(const char *path, uint64_t offset, uint64_t bytes)
{
	char p[300], o[64], b[64], line[1024];
	const char *const needles[] = { p, o, b, NULL };

	snprintf(p, sizeof(p), " path=%s ", path);
	snprintf(o, sizeof(o), " offset=%llu ", (unsigned long long)offset);
	snprintf(b, sizeof(b), " bytes=%llu ", (unsigned long long)bytes);
	translog_line(line, sizeof(line), needles);
}

/* ---- fixture ----------------------------------------------------------- */

static void make_out_dir(void)
{
	cli_make_dirs(d.dir);
}

static void setup_mode(const char *mode)
{
	char msg[4096];
	int rc;

	rc = h_setup(&d, mode);
	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	make_out_dir();
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "starting %s: %s", h_ferryd_path(), msg);
}

static void setup_sendfile(void)
{
	setup_mode("sendfile");
}

static void setup_buffered(void)
{
	setup_mode("buffered");
}

/* No daemon: usage, connection failures, the pure functions. */
static void setup_cli(void)
{
	int rc = h_setup(&d, "sendfile");

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	make_out_dir();
}

static void teardown_daemon(void)
{
	cli_run_free(&cli_last);
	fixture_teardown(&d, STOP_MS);
}

static void teardown_cli(void)
{
	cli_run_free(&cli_last);
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

/* ---- a server that stops halfway --------------------------------------- */

/* Accepts the client, reads its "GET /big.bin", and sends the OK line of
 * the whole of big.bin with its first HALF bytes. The connection's fd. */
static int fake_send_half(int lfd)
{
	static char buf[MIB];
	struct pollfd p = { lfd, POLLIN, 0 };
	char line[256];
	uint64_t at = 0;
	ssize_t n;
	int fd, file, rc;

	ck_assert_msg(poll(&p, 1, WAIT_MS) == 1, "the client did not connect");
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_msg(fd >= 0, "accept: %s", strerror(errno));
	n = h_recv_line(fd, line, sizeof(line), WAIT_MS);
	ck_assert_msg(n > 0 && strcmp(line, "GET /big.bin") == 0,
		      "the client sent '%s', want 'GET /big.bin'",
		      n > 0 ? line : h_strerror((int)n));
	snprintf(line, sizeof(line), "OK %llu %llu %d\n",
		 (unsigned long long)H_BIG_BYTES,
		 (unsigned long long)H_BIG_BYTES, H_MTIME);
	ck_assert_int_eq(h_send_str(fd, line, WAIT_MS), 0);
	file = open(h_root_path(&d, "big.bin"), O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(file, 0);
	while (at < HALF) {
		ck_assert(pread(file, buf, sizeof(buf), (off_t)at) ==
			  (ssize_t)sizeof(buf));
		rc = h_send(fd, buf, sizeof(buf), RUN_MS);
		ck_assert_msg(rc == 0, "sending half of big.bin: %s",
			      h_strerror(rc));
		at += sizeof(buf);
	}
	close(file);
	return fd;
}

/* Waits up to WAIT_MS for PATH to hold SIZE bytes. */
static void wait_size(const char *path, uint64_t size)
{
	int64_t deadline = h_now_ms() + WAIT_MS;
	struct stat st;

	while (stat(path, &st) < 0 || (uint64_t)st.st_size != size) {
		ck_assert_msg(h_now_ms() < deadline,
			      "%s did not reach %llu bytes within %d ms", path,
			      (unsigned long long)size, WAIT_MS);
		cli_pause_ms(5);
	}
}

/* Starts "ferry get -q 127.0.0.1:PORT /big.bin" against the fake server on
 * LFD and feeds it the first half: big.bin.part then holds HALF bytes. */
static pid_t start_half_fetch(int lfd, int port, int *conn)
{
	char t[32];
	const char *args[] = { "get", "-q", t, "/big.bin", NULL };
	pid_t pid;

	snprintf(t, sizeof(t), "127.0.0.1:%d", port);
	pid = cli_start(args, NULL);
	*conn = fake_send_half(lfd);
	wait_size(cli_out_path("big.bin.part"), HALF);
	return pid;
}

/* After a cut at HALF: no big.bin, the part and its record; then -c
 * against the real ferryd completes it, fetching only the second half. */
static void expect_resumable_then_resume(void)
{
	char *meta = NULL, want[128];
	size_t len;
	const char *args[] = { "get", "-c", "-q", target(), "/big.bin", NULL };

	cli_expect_absent(cli_out_path("big.bin"), "after the cut");
	ck_assert_uint_eq(cli_file_bytes(cli_out_path("big.bin.part")), HALF);
	ck_assert_int_eq(h_read_file(cli_out_path("big.bin.part.meta"), &meta, &len),
			 0);
	snprintf(want, sizeof(want), "%llu %d 0\n",
		 (unsigned long long)H_BIG_BYTES, H_MTIME);
	ck_assert_msg(strcmp(meta, want) == 0, "big.bin.part.meta is '%s'",
		      meta);
	free(meta);

	cli_run_ok(args, "get -c after the cut");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_no_part("big.bin");
	expect_logged("/big.bin", HALF, HALF);
}

/* ---- get --------------------------------------------------------------- */

START_TEST(get_sizes)
{
	/* The fixed edges, then random sizes up to 8 MiB. */
	uint64_t sizes[12] = { 0, 1, 4095, 4096, 4097, 65536, 1048577 };
	size_t i;

	for (i = 7; i < 12; i++)
		sizes[i] = (uint64_t)random() % (8 * MIB);
	for (i = 0; i < 12; i++) {
		char name[64];
		const char *args[] = { "get", "-q", target(), name, NULL };

		snprintf(name, sizeof(name), "r%zu.bin", i);
		root_file(name, sizes[i], H_MTIME + (time_t)i);
		cli_run_ok(args, name);
		expect_fetched(name, name, H_MTIME + (time_t)i);
		expect_no_part(name);
	}
}
END_TEST

START_TEST(get_big)
{
	const char *args[] = { "get", "-q", target(), "/big.bin", NULL };

	cli_run_ok(args, "get big.bin");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_no_part("big.bin");
}
END_TEST

START_TEST(get_names)
{
	const char *sub[] = { "get", "-q", target(), "/sub/a.txt", NULL };
	const char *rel[] = { "get", "-q", target(), "sub/b.bin", NULL };
	const char *space[] = { "get", "-q", target(), "/with space.txt", NULL };
	const char *getx[] = { "get", "-q", target(), "/GET x", NULL };
	const char *out[] = { "get", "-q", "-o", "copy", target(), "/small.bin",
			      NULL };
	const char *dir[] = { "get", "-q", "-d", "dl", target(), "/one.bin",
			      NULL };
	const char *loud[] = { "get", target(), "/small.bin", NULL };
	struct cli_run *r;

	cli_run_ok(sub, "basename of /sub/a.txt");
	expect_fetched("a.txt", "sub/a.txt", H_MTIME);
	cli_run_ok(rel, "no leading slash");
	expect_fetched("b.bin", "sub/b.bin", H_MTIME);
	cli_run_ok(space, "a space in the name");
	expect_fetched("with space.txt", "with space.txt", H_MTIME);
	cli_run_ok(getx, "a name like a request");
	expect_fetched("GET x", "GET x", H_MTIME);
	cli_run_ok(out, "-o copy");
	expect_fetched("copy", "small.bin", H_MTIME);
	cli_expect_absent(cli_out_path("small.bin"), "-o copy");
	expect_no_part("copy");
	ck_assert_int_eq(mkdir(cli_out_path("dl"), 0755), 0);
	cli_run_ok(dir, "-d dl, one PATH");
	expect_fetched("dl/one.bin", "one.bin", H_MTIME);

	/* Not a terminal: no progress line, one summary line. */
	r = cli_run(loud);
	cli_expect_exit(r, 0, "without -q");
	ck_assert_msg(strchr(r->err, '\r') == NULL, "progress on a non-terminal: %s",
		      r->err);
	ck_assert_msg(strncmp(r->err, "small.bin: 102400 bytes in ", 27) == 0 &&
			      strstr(r->err, " MiB/s\n") != NULL &&
			      strchr(r->err, '\n') == r->err + r->err_len - 1,
		      "summary: '%s'", r->err);
	expect_fetched("small.bin", "small.bin", H_MTIME);
}
END_TEST

START_TEST(get_several)
{
	const char *args[] = { "get", "-q", "-d", "dl", target(), "/one.bin",
			       "/small.bin", "/sub/b.bin", "/big.bin",
			       "/empty.bin", "/GET x", NULL };
	static const char *const names[] = { "one.bin", "small.bin", "b.bin",
					     "big.bin", "empty.bin", "GET x" };
	static const char *const rels[] = { "one.bin", "small.bin", "sub/b.bin",
					    "big.bin", "empty.bin", "GET x" };
	/* As the transfer log writes them. */
	static const char *const logged[] = { "one.bin", "small.bin",
					      "sub/b.bin", "big.bin",
					      "empty.bin", "GET%20x" };
	char first[64] = "", client[64], line[1024], p[300];
	size_t i;

	ck_assert_int_eq(mkdir(cli_out_path("dl"), 0755), 0);
	cli_run_ok(args, "six PATHs");
	for (i = 0; i < 6; i++) {
		char name[300];
		const char *const needles[] = { p, NULL };

		snprintf(name, sizeof(name), "dl/%s", names[i]);
		expect_fetched(name, rels[i], H_MTIME);
		expect_no_part(name);
		/* Every GET came over the same connection. */
		snprintf(p, sizeof(p), " path=/%s ", logged[i]);
		translog_line(line, sizeof(line), needles);
		ck_assert_int_eq(h_field(line, "client", client, sizeof(client)),
				 0);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", client);
		ck_assert_msg(strcmp(client, first) == 0,
			      "/%s came from %s, /one.bin from %s", rels[i],
			      client, first);
	}
}
END_TEST

START_TEST(get_several_refused)
{
	const char *args[] = { "get", "-d", "dl", target(), "/one.bin",
			       "/nope", "/sub", "/small.bin", NULL };
	struct cli_run *r;

	ck_assert_int_eq(mkdir(cli_out_path("dl"), 0755), 0);
	r = cli_run(args);
	cli_expect_exit(r, 1, "one missing, one a directory");
	cli_expect_stderr_has(r, "/nope: the server refused: 404 not found",
			  "404");
	cli_expect_stderr_has(r, "/sub: the server refused: 403", "403");
	cli_expect_stderr_has(r, "2 of 4 files: ", "summary");
	expect_fetched("dl/one.bin", "one.bin", H_MTIME);
	expect_fetched("dl/small.bin", "small.bin", H_MTIME);
	cli_expect_absent(cli_out_path("dl/nope"), "404");
	expect_no_part("dl/nope");
	cli_expect_absent(cli_out_path("dl/sub"), "403");
	expect_no_part("dl/sub");
}
END_TEST

START_TEST(get_stdout)
{
	const char *small[] = { "get", "-q", "-o", "-", target(), "/small.bin",
				NULL };
	const char *big[] = { "get", "-q", "-o", "-", target(), "big.bin",
			      NULL };
	const char *empty[] = { "get", "-q", "-o", "-", target(), "/empty.bin",
				NULL };
	char path[400];

	snprintf(path, sizeof(path), "%s/ferry.out", d.dir);
	cli_run_ok(small, "-o - small.bin");
	cli_expect_same(path, h_root_path(&d, "small.bin"), 0, H_SMALL_BYTES,
		    "stdout");
	cli_run_ok(big, "-o - big.bin");
	cli_expect_same(path, h_root_path(&d, "big.bin"), 0, H_BIG_BYTES, "stdout");
	cli_run_ok(empty, "-o - empty.bin");
	ck_assert_uint_eq(cli_last.out_len, 0);
	/* Nothing but standard output was written. */
	cli_expect_absent(cli_out_path("small.bin"), "-o -");
	cli_expect_absent(cli_out_path("-"), "-o -");
	expect_no_part("-");
}
END_TEST

/* -o naming a device or a FIFO writes into it: a .part renamed over
 * /dev/null would replace the device with a file. */
START_TEST(get_to_device)
{
	char dev[400], fifo[400], cmd[900];
	const char *null[] = { "get", "-q", "-o", dev, target(), "/small.bin",
			       NULL };
	const char *into_fifo[] = { "get", "-q", "-o", fifo, target(),
				    "/small.bin", NULL };
	struct stat st;
	char copy[400];

	/* A null device of our own (not the system's /dev/null, which a
	 * regression would replace): only root may make one. */
	snprintf(dev, sizeof(dev), "%s/null", d.dir);
	if (mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		char part[420];

		cli_run_ok(null, "-o DEVICE");
		ck_assert_int_eq(stat(dev, &st), 0);
		ck_assert_msg(S_ISCHR(st.st_mode), "%s is no longer a device",
			      dev);
		snprintf(part, sizeof(part), "%s.part", dev);
		ck_assert_msg(access(part, F_OK) != 0, "%s was left behind",
			      part);
	} else {
		fprintf(stderr, "check_client: get_to_device: no device node "
				"(%s); testing the FIFO only\n",
			strerror(errno));
	}

	/* A reader drains the FIFO into a file, bounded by timeout(1). */
	snprintf(fifo, sizeof(fifo), "%s/fifo", d.dir);
	snprintf(copy, sizeof(copy), "%s/fifo.copy", d.dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	snprintf(cmd, sizeof(cmd), "timeout 20 cat '%s' > '%s' &", fifo, copy);
	ck_assert_int_eq(system(cmd), 0);
	cli_run_ok(into_fifo, "-o FIFO");
	ck_assert_int_eq(h_wait_exists(copy, WAIT_MS), 0);
	for (int i = 0; i < 200; i++) {
		if (stat(copy, &st) == 0 && st.st_size == H_SMALL_BYTES)
			break;
		usleep(25 * 1000);
	}
	cli_expect_same(copy, h_root_path(&d, "small.bin"), 0, H_SMALL_BYTES,
		    "the FIFO's reader");
	ck_assert_int_eq(stat(fifo, &st), 0);
	ck_assert_msg(S_ISFIFO(st.st_mode), "the FIFO was replaced");
}
END_TEST

START_TEST(get_ranges)
{
	const char *mid[] = { "get", "-q", "--offset", "1000", "--length",
			      "500", "-o", "mid", target(), "/small.bin", NULL };
	const char *tail[] = { "get", "-q", "--offset", "102000", "--length",
			       "1000", "-o", "tail", target(), "/small.bin",
			       NULL };
	const char *from[] = { "get", "-q", "--offset", "100000", "-o", "from",
			       target(), "/small.bin", NULL };
	const char *end[] = { "get", "-q", "--offset", "102400", "-o", "end",
			      target(), "/small.bin", NULL };
	const char *none[] = { "get", "-q", "--length", "0", "-o", "none",
			       target(), "/small.bin", NULL };
	const char *head[] = { "get", "-q", "--length", "7", "-o", "-",
			       target(), "/small.bin", NULL };
	const char *big[] = { "get", "-q", "--offset", "50000000", "--length",
			      "3000000", "-o", "bigpart", target(), "/big.bin",
			      NULL };
	const char *beyond[] = { "get", "--offset", "102401", "-o", "beyond",
				 target(), "/small.bin", NULL };
	const char *small = h_root_path(&d, "small.bin");
	char path[400];
	struct cli_run *r;

	cli_run_ok(mid, "1000+500");
	cli_expect_same(cli_out_path("mid"), small, 1000, 500, "1000+500");
	expect_no_part("mid");
	/* A length past the end is cut to what the file holds. */
	cli_run_ok(tail, "102000+1000");
	cli_expect_same(cli_out_path("tail"), small, 102000, 400, "102000+1000");
	cli_run_ok(from, "100000-");
	cli_expect_same(cli_out_path("from"), small, 100000, 2400, "100000-");
	cli_run_ok(end, "offset = size");
	cli_expect_same(cli_out_path("end"), small, 0, 0, "offset = size");
	cli_run_ok(none, "length 0");
	cli_expect_same(cli_out_path("none"), small, 0, 0, "length 0");
	cli_run_ok(head, "first 7 to stdout");
	snprintf(path, sizeof(path), "%s/ferry.out", d.dir);
	cli_expect_same(path, small, 0, 7, "first 7");
	cli_run_ok(big, "3 MB of big.bin");
	cli_expect_same(cli_out_path("bigpart"), h_root_path(&d, "big.bin"), 50000000,
		    3000000, "3 MB of big.bin");
	expect_logged("/big.bin", 50000000, 3000000);

	r = cli_run(beyond);
	cli_expect_exit(r, 1, "offset beyond the end");
	cli_expect_stderr_has(r, "/small.bin: the server refused: 416 ", "416");
	cli_expect_absent(cli_out_path("beyond"), "416");
	expect_no_part("beyond");
}
END_TEST

/* ---- resume ------------------------------------------------------------ */

START_TEST(resume_prepared)
{
	const char *big[] = { "get", "-c", "-q", target(), "/big.bin", NULL };
	const char *small[] = { "get", "-c", "-q", target(), "/small.bin",
				NULL };
	const char *range[] = { "get", "-c", "-q", "--offset", "1000",
				"--length", "5000", "-o", "range", target(),
				"/small.bin", NULL };

	/* A part with the first half and a record of the same version. */
	make_part(cli_out_path("big.bin.part"), h_root_path(&d, "big.bin"), HALF);
	write_meta("big.bin", H_BIG_BYTES, H_MTIME, 0);
	cli_run_ok(big, "-c big.bin from the half");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_no_part("big.bin");
	expect_logged("/big.bin", HALF, HALF);
	ck_assert_msg(h_count_lines(d.transfer_log, " path=/big.bin ") == 2,
		      "want the probe and one GET of the second half");

	make_part(cli_out_path("small.bin.part"), h_root_path(&d, "small.bin"),
		  12345);
	write_meta("small.bin", H_SMALL_BYTES, H_MTIME, 0);
	cli_run_ok(small, "-c small.bin");
	expect_fetched("small.bin", "small.bin", H_MTIME);
	expect_logged("/small.bin", 12345, H_SMALL_BYTES - 12345);

	/* A range: the part holds bytes from --offset on. */
	{
		int fd = open(h_root_path(&d, "small.bin"), O_RDONLY);
		char buf[2000];

		ck_assert(pread(fd, buf, sizeof(buf), 1000) ==
			  (ssize_t)sizeof(buf));
		close(fd);
		fd = open(cli_out_path("range.part"),
			  O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert(write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
		close(fd);
	}
	write_meta("range", H_SMALL_BYTES, H_MTIME, 1000);
	cli_run_ok(range, "-c a range");
	cli_expect_same(cli_out_path("range"), h_root_path(&d, "small.bin"), 1000, 5000,
		    "resumed range");
	expect_logged("/small.bin", 3000, 3000);
	expect_no_part("range");

	/* -c with nothing to resume is a plain fetch. */
	cli_run_ok(small, "-c, no part");
	expect_fetched("small.bin", "small.bin", H_MTIME);
}
END_TEST

START_TEST(resume_after_client_killed)
{
	int port, lfd = cli_fake_listen(&port), conn, status;
	pid_t pid = start_half_fetch(lfd, port, &conn);

	/* Half is on disk and the client waits for more: kill it. */
	kill(pid, SIGKILL);
	status = cli_wait_child(pid, WAIT_MS, -1, NULL, NULL);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "the client: %s", cli_describe_status(status));
	close(conn);
	close(lfd);
	expect_resumable_then_resume();
}
END_TEST

START_TEST(resume_after_server_stopped)
{
	int port, lfd = cli_fake_listen(&port), conn, status;
	pid_t pid = start_half_fetch(lfd, port, &conn);
	char *err = NULL, path[400];
	size_t len;

	/* The server stops halfway: the client must fail, keeping the
	 * part. */
	close(conn);
	close(lfd);
	status = cli_wait_child(pid, WAIT_MS, -1, NULL, NULL);
	snprintf(path, sizeof(path), "%s/ferry.err", d.dir);
	h_read_file(path, &err, &len);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
		      "the client: %s; stderr: %s", cli_describe_status(status),
		      err);
	ck_assert_msg(strstr(err, "/big.bin: the server closed the connection "
				  "after 52428800 of 104857600 bytes; "
				  "big.bin.part is kept") != NULL,
		      "stderr: %s", err);
	free(err);
	expect_resumable_then_resume();
}
END_TEST

START_TEST(resume_refused_when_changed)
{
	const char *big[] = { "get", "-c", target(), "/big.bin", NULL };
	const char *small[] = { "get", "-c", "-q", target(), "/small.bin",
				NULL };
	const char *one[] = { "get", "-c", "-q", target(), "/one.bin", NULL };
	const char *plain[] = { "get", "-q", target(), "/one.bin", NULL };
	struct cli_run *r;

	/* The record says another mtime, and the part holds zeros: a
	 * splice would show. */
	make_part(cli_out_path("big.bin.part"), NULL, HALF);
	write_meta("big.bin", H_BIG_BYTES, H_MTIME - 1, 0);
	r = cli_run(big);
	cli_expect_exit(r, 0, "-c with another mtime");
	cli_expect_stderr_has(r, "fetched it from the start", "start over");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_no_part("big.bin");
	expect_logged("/big.bin", 0, H_BIG_BYTES);

	/* The file really changed on the server after the part was
	 * started: another size and mtime. */
	make_part(cli_out_path("small.bin.part"), h_root_path(&d, "small.bin"),
		  50000);
	write_meta("small.bin", H_SMALL_BYTES, H_MTIME, 0);
	root_file("small.bin", H_SMALL_BYTES + 10, H_MTIME + 60);
	cli_run_ok(small, "-c after the file changed");
	expect_fetched("small.bin", "small.bin", H_MTIME + 60);
	expect_no_part("small.bin");

	/* Same size, new content and mtime. */
	make_part(cli_out_path("small.bin.part"), h_root_path(&d, "small.bin"),
		  50000);
	write_meta("small.bin", H_SMALL_BYTES + 10, H_MTIME + 60, 0);
	root_file("small.bin", H_SMALL_BYTES + 10, H_MTIME + 120);
	cli_run_ok(small, "-c after the content changed");
	expect_fetched("small.bin", "small.bin", H_MTIME + 120);

	/* A part longer than the file (the probe gets 416). */
	make_part(cli_out_path("one.bin.part"), NULL, 5);
	write_meta("one.bin", 1, H_MTIME, 0);
	cli_run_ok(one, "-c, the part is longer than the file");
	expect_fetched("one.bin", "one.bin", H_MTIME);

	/* A part without a record, and a garbled record. */
	make_part(cli_out_path("one.bin.part"), NULL, 1);
	cli_run_ok(one, "-c, no record");
	expect_fetched("one.bin", "one.bin", H_MTIME);
	make_part(cli_out_path("one.bin.part"), NULL, 1);
	ck_assert_int_eq(h_write_text(cli_out_path("one.bin.part.meta"), "1 x 0\n"),
			 0);
	cli_run_ok(one, "-c, a garbled record");
	expect_fetched("one.bin", "one.bin", H_MTIME);
	expect_no_part("one.bin");

	/* Without -c a part is never continued. */
	make_part(cli_out_path("one.bin.part"), NULL, 1);
	write_meta("one.bin", 1, H_MTIME, 0);
	cli_run_ok(plain, "no -c, a valid part");
	expect_fetched("one.bin", "one.bin", H_MTIME);
	expect_no_part("one.bin");
}
END_TEST

/* ---- failures ---------------------------------------------------------- */

START_TEST(exit_refused)
{
	const char *nope[] = { "get", target(), "/nope", NULL };
	const char *dir[] = { "get", target(), "/sub", NULL };
	const char *hidden[] = { "get", target(), "/.hidden", NULL };
	const char *out[] = { "get", "-o", "x", target(), "/nope", NULL };
	struct cli_run *r;

	r = cli_run(nope);
	cli_expect_exit(r, 1, "404");
	ck_assert_str_eq(r->err, "ferry: /nope: the server refused: 404 not "
				 "found\n");
	cli_expect_absent(cli_out_path("nope"), "404");
	expect_no_part("nope");
	r = cli_run(dir);
	cli_expect_exit(r, 1, "403 directory");
	cli_expect_stderr_has(r, "refused: 403 ", "403");
	cli_expect_absent(cli_out_path("sub"), "403");
	expect_no_part("sub");
	r = cli_run(hidden);
	cli_expect_exit(r, 1, "403 hidden");
	cli_expect_absent(cli_out_path(".hidden"), "403");
	expect_no_part(".hidden");
	r = cli_run(out);
	cli_expect_exit(r, 1, "-o, 404");
	cli_expect_absent(cli_out_path("x"), "-o, 404");
	expect_no_part("x");
}
END_TEST

START_TEST(exit_refused_closing)
{
	char t[32], line[64];
	const char *args[] = { "get", "-d", "dl", t, "/one.bin", "/small.bin",
			       NULL };
	int held[2], i;
	struct cli_run *r;

	/* Two connections held open: the client's is one too many. */
	restart("limits.per_client=2");
	snprintf(t, sizeof(t), "%s", target());
	d.allowed_error = "429";
	for (i = 0; i < 2; i++) {
		held[i] = h_connect(d.port, WAIT_MS);
		ck_assert_int_ge(held[i], 0);
		ck_assert_int_eq(h_send_str(held[i], "LIST /sub/deeper\n",
					    WAIT_MS),
				 0);
		ck_assert_int_gt(h_recv_line(held[i], line, sizeof(line),
					     WAIT_MS),
				 0);
		ck_assert_str_eq(line, "OK 0");
	}
	ck_assert_int_eq(mkdir(cli_out_path("dl"), 0755), 0);
	r = cli_run(args);
	for (i = 0; i < 2; i++)
		close(held[i]);
	cli_expect_exit(r, 1, "429");
	cli_expect_stderr_has(r, "/one.bin: the server refused: 429 ", "first");
	cli_expect_stderr_has(r, "/small.bin: the server refused: 429 ",
			  "the rest");
	cli_expect_absent(cli_out_path("dl/one.bin"), "429");
	expect_no_part("dl/one.bin");
	cli_expect_absent(cli_out_path("dl/small.bin"), "429");
}
END_TEST

START_TEST(exit_io)
{
	const char *big[] = { "get", target(), "/big.bin", NULL };
	const char *nodir[] = { "get", "-d", "nodir", target(), "/one.bin",
				NULL };
	const char *resume[] = { "get", "-c", "-q", target(), "/big.bin",
				 NULL };
	struct cli_spawn sp = { -1, -1, 8 * MIB, true, 0, 0 };
	struct cli_run *r;

	/* The disk fills up (a file size limit: writes fail with EFBIG). */
	r = cli_run_with(big, &sp);
	cli_expect_exit(r, 3, "EFBIG");
	cli_expect_stderr_has(r, "/big.bin: writing big.bin.part: File too large",
			  "EFBIG");
	cli_expect_absent(cli_out_path("big.bin"), "EFBIG");
	ck_assert_uint_eq(cli_file_bytes(cli_out_path("big.bin.part")), 8 * MIB);
	/* What was written is good to resume from. */
	cli_run_ok(resume, "-c after EFBIG");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_logged("/big.bin", 8 * MIB, H_BIG_BYTES - 8 * MIB);

	r = cli_run(nodir);
	cli_expect_exit(r, 3, "no such -d");
	cli_expect_stderr_has(r, "writing nodir/one.bin.part: No such file", "-d");
}
END_TEST

START_TEST(server_stops_stdout)
{
	const char *args[] = { "get", target(), "/big.bin", "-o", "-", NULL };
	struct cli_spawn sp = { -1, -1, 0, false, 0, 0 };
	uint64_t got = 0;
	int sv[2], rc, status;
	char *err = NULL, path[400];
	size_t len;
	pid_t pid;

	/* Standard output is a socket we read: the client cannot run ahead
	 * of us, so the daemon is killed mid-transfer for sure. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	sp.out_fd = sv[1];
	sp.err_fd = cli_open_capture("ferry.err");
	pid = cli_spawn(args, &sp);
	close(sv[1]);
	close(sp.err_fd);
	rc = h_recv_compare(sv[0], h_root_path(&d, "big.bin"), 0, MIB, 0, &got,
			    WAIT_MS);
	ck_assert_msg(rc == 0, "the first MiB: %s", h_strerror(rc));
	h_kill(&d);
	rc = h_recv_compare(sv[0], h_root_path(&d, "big.bin"), MIB,
			    H_BIG_BYTES - MIB, 0, &got, RUN_MS);
	ck_assert_msg(rc == H_EOF, "after the daemon died: %s after %llu bytes",
		      h_strerror(rc), (unsigned long long)got);
	close(sv[0]);
	status = cli_wait_child(pid, WAIT_MS, -1, NULL, NULL);
	snprintf(path, sizeof(path), "%s/ferry.err", d.dir);
	h_read_file(path, &err, &len);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 3,
		      "the client: %s; stderr: %s", cli_describe_status(status),
		      err);
	ck_assert_msg(strstr(err, "/big.bin: the server closed the connection "
				  "after ") != NULL &&
			      strstr(err, "the output is incomplete") != NULL,
		      "stderr: %s", err);
	free(err);
}
END_TEST

/* ---- ls ---------------------------------------------------------------- */

START_TEST(ls_dirs)
{
	const char *sub[] = { "ls", target(), "/sub", NULL };
	const char *root[] = { "ls", target(), NULL };
	const char *nope[] = { "ls", target(), "/nope", NULL };
	const char *file[] = { "ls", target(), "/small.bin", NULL };
	struct cli_run *r;

	r = cli_run(sub);
	cli_expect_exit(r, 0, "ls /sub");
	ck_assert_str_eq(r->out, "f        6 B  2025-11-24 16:00  a.txt\n"
				 "f    2.9 KiB  2025-11-24 16:00  b.bin\n"
				 "d          -  2025-11-24 16:00  deeper\n");
	ck_assert_uint_eq(r->err_len, 0);

	r = cli_run(root);
	cli_expect_exit(r, 0, "ls");
	ck_assert_msg(strstr(r->out, "f  100.0 KiB  2025-11-24 16:00  "
				     "small.bin\n") != NULL &&
			      strstr(r->out, "  GET x\n") != NULL &&
			      strstr(r->out, "  with space.txt\n") != NULL &&
			      strstr(r->out, "f  100.0 MiB  2025-11-24 16:00  "
					     "big.bin\n") != NULL &&
			      strstr(r->out, "hidden") == NULL,
		      "ls: %s", r->out);

	r = cli_run(nope);
	cli_expect_exit(r, 1, "ls /nope");
	cli_expect_stderr_has(r, "/nope: the server refused: 404 not found",
			  "ls 404");
	r = cli_run(file);
	cli_expect_exit(r, 1, "ls of a file");
	cli_expect_stderr_has(r, "refused: 403", "ls 403");
}
END_TEST

/* ---- IPv6 -------------------------------------------------------------- */

/* Whether this host can listen on ::1 at all. */
static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa;
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* The port of the daemon's last "listening on [::1]:PORT" line. */
static int ipv6_port(void)
{
	static const char needle[] = "listening on [::1]:";
	char *text = NULL, *p, *at = NULL;
	size_t len;
	int port = 0;

	ck_assert_int_eq(h_read_file(d.diag_log, &text, &len), 0);
	for (p = text; (p = strstr(p, needle)) != NULL; p++)
		at = p;
	if (at != NULL)
		port = atoi(at + sizeof(needle) - 1);
	free(text);
	ck_assert_msg(port > 0, "no '%s' in the log: %s", needle,
		      h_diag_tail(&d));
	return port;
}

START_TEST(ipv6)
{
	char t6[64], line[1024];
	const char *get[] = { "get", "-q", t6, "/small.bin", "/sub/a.txt",
			      NULL };
	const char *ls[] = { "ls", t6, "/sub", NULL };
	const char *const needles[] = { "client=[::1]:", " path=/small.bin ",
					NULL };
	struct cli_run *r;

	if (!have_ipv6_loopback()) {
		fprintf(stderr, "check_client: ipv6 skipped: cannot bind ::1 "
				"on this host\n");
		return;
	}
	restart("listen=[\"127.0.0.1:0\", \"[::1]:0\"]");
	snprintf(t6, sizeof(t6), "[::1]:%d", ipv6_port());
	cli_run_ok(get, "get over IPv6");
	expect_fetched("small.bin", "small.bin", H_MTIME);
	expect_fetched("a.txt", "sub/a.txt", H_MTIME);
	translog_line(line, sizeof(line), needles);
	r = cli_run(ls);
	cli_expect_exit(r, 0, "ls over IPv6");
	ck_assert_msg(strstr(r->out, "  a.txt\n") != NULL, "ls: %s", r->out);
}
END_TEST

/* ---- progress ---------------------------------------------------------- */

START_TEST(progress_on_tty)
{
	const char *loud[] = { "get", target(), "/big.bin", NULL };
	const char *quiet[] = { "get", "-q", target(), "/small.bin", NULL };
	char *text, *summary;
	int status;

	text = cli_run_on_tty(loud, &status);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "%s; tty: %s", cli_describe_status(status), text);
	ck_assert_msg(strstr(text, "\rbig.bin  ") != NULL &&
			      strstr(text, " / 100.0 MiB  ") != NULL &&
			      strstr(text, "% ") != NULL &&
			      strstr(text, " MiB/s  ETA ") != NULL,
		      "no progress line on the tty: %s", text);
	/* The progress line is cleared, then one summary line. */
	summary = strstr(text, "\r\033[Kbig.bin: 104857600 bytes in ");
	ck_assert_msg(summary != NULL && strstr(summary, " MiB/s\r\n") != NULL,
		      "no summary on the tty: %s", text);
	free(text);
	expect_fetched("big.bin", "big.bin", H_MTIME);

	text = cli_run_on_tty(quiet, &status);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s",
		      cli_describe_status(status));
	ck_assert_msg(text[0] == '\0', "-q on a tty wrote: %s", text);
	free(text);
}
END_TEST

/* ---- --verify and --limit-rate ----------------------------------------- */

/* Serves one "ferry get --verify" of small.bin as ferryd would, but
 * answers the SUM with SUM_LINE. */
static void fake_verify(int lfd, const char *sum_line)
{
	static char body[H_SMALL_BYTES];
	char line[512];
	struct pollfd p = { lfd, POLLIN, 0 };
	const char *path = h_root_path(&d, "small.bin");
	char *rest = NULL;
	size_t len;
	int fd, file;

	file = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(file, 0);
	ck_assert(read(file, body, sizeof(body)) == (ssize_t)sizeof(body));
	close(file);

	ck_assert_msg(poll(&p, 1, WAIT_MS) == 1, "the client did not connect");
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(h_recv_line(fd, line, sizeof(line), WAIT_MS), 0);
	ck_assert_str_eq(line, "GET /small.bin");
	/* Pipelined: the SUM comes before the answer to the GET. */
	ck_assert_int_gt(h_recv_line(fd, line, sizeof(line), WAIT_MS), 0);
	ck_assert_str_eq(line, "SUM /small.bin");
	snprintf(line, sizeof(line), "OK %d %d %d\n", H_SMALL_BYTES,
		 H_SMALL_BYTES, H_MTIME);
	ck_assert_int_eq(h_send_str(fd, line, WAIT_MS), 0);
	ck_assert_int_eq(h_send(fd, body, sizeof(body), WAIT_MS), 0);
	ck_assert_int_eq(h_send_str(fd, sum_line, WAIT_MS), 0);
	h_recv_all(fd, &rest, &len, 1 << 20, WAIT_MS);
	free(rest);
	close(fd);
}

/* "ferry get --verify -q" of small.bin against fake_verify(SUM_LINE). */
static struct cli_run *verify_against(const char *sum_line)
{
	char t[32];
	const char *args[] = { "get", "--verify", "-q", t, "/small.bin", NULL };
	int port, lfd = cli_fake_listen(&port);
	pid_t pid;

	snprintf(t, sizeof(t), "127.0.0.1:%d", port);
	pid = cli_start(args, NULL);
	fake_verify(lfd, sum_line);
	close(lfd);
	return cli_finish(pid);
}

START_TEST(verify_fake_server)
{
	unsigned char digest[FERRY_SHA256_BYTES];
	char hex[2 * FERRY_SHA256_BYTES + 1], line[256];
	struct cli_run *r;

	ck_assert_int_eq(client_sha256_file(h_root_path(&d, "small.bin"),
					    digest), 0);
	proto_format_sha256(hex, digest);

	/* The right digest: small.bin, and nothing else. */
	snprintf(line, sizeof(line), "OK sha256 %s %d %d\n", hex,
		 H_SMALL_BYTES, H_MTIME);
	r = verify_against(line);
	cli_expect_exit(r, 0, "right digest");
	expect_fetched("small.bin", "small.bin", H_MTIME);
	expect_no_part("small.bin");
	ck_assert_int_eq(unlink(cli_out_path("small.bin")), 0);

	/* A wrong digest: exit 4, no NAME, no part, no record. */
	snprintf(line, sizeof(line), "OK sha256 %s %d %d\n",
		 strcmp(hex, "00000000") > 0 ? "0000000000000000000000000000000"
					       "000000000000000000000000000000000"
				   : "f000000000000000000000000000000000000"
				     "000000000000000000000000000",
		 H_SMALL_BYTES, H_MTIME);
	r = verify_against(line);
	cli_expect_exit(r, 4, "wrong digest");
	cli_expect_stderr_has(r, "/small.bin: verification failed: received "
				 "SHA-256 ",
			      "wrong digest");
	cli_expect_absent(cli_out_path("small.bin"), "wrong digest");
	expect_no_part("small.bin");

	/* The right bytes, but SUM saw another version: a mismatch too. */
	snprintf(line, sizeof(line), "OK sha256 %s %d %d\n", hex,
		 H_SMALL_BYTES, H_MTIME + 1);
	r = verify_against(line);
	cli_expect_exit(r, 4, "changed");
	cli_expect_stderr_has(r, "changed on the server during the fetch",
			      "changed");
	cli_expect_absent(cli_out_path("small.bin"), "changed");
	expect_no_part("small.bin");

	/* SUM refused: no NAME; the part stays for a later -c. */
	r = verify_against("ERR 403 denied\n");
	cli_expect_exit(r, 1, "SUM refused");
	cli_expect_stderr_has(r, "refused: 403 SUM: denied", "SUM refused");
	cli_expect_absent(cli_out_path("small.bin"), "SUM refused");
}
END_TEST

/* --verify against ferryd: whole files, and a resumed part (whose bytes
 * on disk are hashed, the one read). */
START_TEST(get_verify)
{
	const char *args[] = { "get", "--verify", "-q", "-d", ".", target(),
			       "/small.bin", "/sub/b.bin", "/empty.bin", NULL };
	const char *resume[] = { "get", "--verify", "-c", "-q", target(),
				 "/big.bin", NULL };

	cli_run_ok(args, "get --verify");
	expect_fetched("small.bin", "small.bin", H_MTIME);
	expect_fetched("b.bin", "sub/b.bin", H_MTIME);
	expect_fetched("empty.bin", "empty.bin", H_MTIME);
	make_part(cli_out_path("big.bin.part"), h_root_path(&d, "big.bin"),
		  HALF);
	write_meta("big.bin", H_BIG_BYTES, H_MTIME, 0);
	cli_run_ok(resume, "get --verify -c");
	expect_fetched("big.bin", "big.bin", H_MTIME);
	expect_no_part("big.bin");
	expect_logged("/big.bin", HALF, HALF);
}
END_TEST

START_TEST(get_limit_rate)
{
	const char *args[] = { "get", "-q", "--limit-rate", "2M", target(),
			       "/four.bin", NULL };
	int64_t start;

	root_file("four.bin", 4 * MIB, H_MTIME);
	start = h_now_ms();
	cli_run_ok(args, "--limit-rate 2M");
	/* A lower bound only: a limit must not be beaten. */
	ck_assert_msg(h_now_ms() - start >= 1500,
		      "4 MiB at 2 MiB/s took %lld ms",
		      (long long)(h_now_ms() - start));
	expect_fetched("four.bin", "four.bin", H_MTIME);
}
END_TEST

/* ---- without a daemon -------------------------------------------------- */

START_TEST(exit_usage)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "fetch", NULL },
		{ "get", NULL },
		{ "get", "localhost", NULL },
		{ "get", "-x", "localhost", "/a", NULL },
		{ "get", "localhost:0", "/a", NULL },
		{ "get", "localhost:65536", "/a", NULL },
		{ "get", "localhost:7x", "/a", NULL },
		{ "get", "[::1", "/a", NULL },
		{ "get", "-o", "x", "-d", "y", "localhost", "/a", NULL },
		{ "get", "-o", "x", "localhost", "/a", "/b", NULL },
		{ "get", "-c", "-o", "-", "localhost", "/a", NULL },
		{ "get", "--offset", "12a", "localhost", "/a", NULL },
		{ "get", "--length", "-1", "localhost", "/a", NULL },
		{ "get", "localhost", "/", NULL },
		{ "get", "localhost", "/sub/", NULL },
		{ "get", "localhost", "/sub/..", NULL },
		{ "get", "-d", "x", "localhost", "/a/f", "/b/f", NULL },
		{ "get", "--offset", NULL },
		{ "get", "--verify", "--offset", "1", "localhost", "/a", NULL },
		{ "get", "--verify", "--length", "1", "localhost", "/a", NULL },
		{ "get", "--limit-rate", "2X", "localhost", "/a", NULL },
		{ "get", "--limit-rate", "", "localhost", "/a", NULL },
		{ "ls", NULL },
		{ "ls", "localhost", "/a", "/b", NULL },
		{ "ls", "-z", "localhost", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_run *r = cli_run(cases[i]);
		char what[200];

		snprintf(what, sizeof(what), "ferry %s %s %s %s",
			 cases[i][0] ? cases[i][0] : "",
			 cases[i][0] && cases[i][1] ? cases[i][1] : "",
			 cases[i][0] && cases[i][1] && cases[i][2] ? cases[i][2]
								   : "",
			 cases[i][0] && cases[i][1] && cases[i][2] &&
					 cases[i][3]
				 ? cases[i][3]
				 : "");
		cli_expect_exit(r, 2, what);
		cli_expect_stderr_has(r, "usage: ferry get ", what);
		ck_assert_msg(r->out_len == 0, "%s: stdout: %s", what, r->out);
	}
}
END_TEST

START_TEST(exit_unreachable)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char t[32];
	const char *get[] = { "get", t, "/small.bin", NULL };
	const char *ls[] = { "ls", t, NULL };
	struct cli_run *r;
	int fd;

	/* A port bound but not listening refuses connections, and nobody
	 * else can take it while the test holds it. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(t, sizeof(t), "127.0.0.1:%d", ntohs(sa.sin_port));

	r = cli_run(get);
	cli_expect_exit(r, 3, "connection refused");
	cli_expect_stderr_has(r, "cannot connect to 127.0.0.1 port ", "refused");
	cli_expect_stderr_has(r, "Connection refused", "refused");
	cli_expect_absent(cli_out_path("small.bin"), "refused");
	expect_no_part("small.bin");
	r = cli_run(ls);
	cli_expect_exit(r, 3, "ls, connection refused");
	close(fd);
}
END_TEST

START_TEST(cli_help_version)
{
	const char *help[] = { "--help", NULL };
	const char *get_help[] = { "get", "--help", NULL };
	const char *version[] = { "--version", NULL };
	struct cli_run *r;

	r = cli_run(help);
	cli_expect_exit(r, 0, "--help");
	ck_assert_msg(strstr(r->out, "usage: ferry get [-o FILE | -d DIR] [-c] "
				     "[-q] [--verify] [--limit-rate RATE]\n"
				     "                 [--offset N] [--length N] "
				     "HOST[:PORT] PATH...\n") != NULL &&
			      strstr(r->out, "ferry sync [-j N] [--checksum] "
					     "[--delete] [--dry-run]") &&
			      strstr(r->out, "ferry ls HOST[:PORT] [DIR]\n") &&
			      strstr(r->out, "ferry stats [--since T] "
					     "[--until T] [--svg FILE] "
					     "[LOG...]\n"),
		      "--help: %s", r->out);
	r = cli_run(get_help);
	cli_expect_exit(r, 0, "get --help");
	r = cli_run(version);
	cli_expect_exit(r, 0, "--version");
	ck_assert_str_eq(r->out, "ferry " PACKAGE_VERSION "\n");
}
END_TEST

/* The pure parts of client.c, called directly. */
START_TEST(pure_functions)
{
	struct client_target t;
	struct client_meta m;
	struct proto_entry e;
	char buf[256];

	ck_assert_int_eq(client_parse_target("example.org", &t), 0);
	ck_assert_str_eq(t.host, "example.org");
	ck_assert_str_eq(t.port, "7070");
	ck_assert_int_eq(client_parse_target("127.0.0.1:8080", &t), 0);
	ck_assert_str_eq(t.host, "127.0.0.1");
	ck_assert_str_eq(t.port, "8080");
	ck_assert_int_eq(client_parse_target("[::1]:65535", &t), 0);
	ck_assert_str_eq(t.host, "::1");
	ck_assert_str_eq(t.port, "65535");
	ck_assert_int_eq(client_parse_target("[fe80::1]", &t), 0);
	ck_assert_str_eq(t.host, "fe80::1");
	ck_assert_str_eq(t.port, "7070");
	ck_assert_int_eq(client_parse_target("::1", &t), 0);
	ck_assert_str_eq(t.host, "::1");
	ck_assert_int_eq(client_parse_target("h:007", &t), 0);
	ck_assert_str_eq(t.port, "7");
	ck_assert_int_eq(client_parse_target("", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target(":80", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("h:", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("h:0", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("h:65536", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("h:123456", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("h:+80", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("[::1", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("[::1]80", &t), -EINVAL);
	ck_assert_int_eq(client_parse_target("[]:80", &t), -EINVAL);

	client_format_duration(buf, sizeof(buf), 0);
	ck_assert_str_eq(buf, "0:00");
	client_format_duration(buf, sizeof(buf), 61.2);
	ck_assert_str_eq(buf, "1:01");
	client_format_duration(buf, sizeof(buf), 3661);
	ck_assert_str_eq(buf, "1:01:01");
	client_format_duration(buf, sizeof(buf), -1);
	ck_assert_str_eq(buf, "--:--");

	client_format_progress(buf, sizeof(buf), "big.iso", 50 * MIB, 100 * MIB,
			       25 * MIB, 1.0);
	ck_assert_str_eq(buf, "big.iso  50.0 MiB / 100.0 MiB   50%  25.0 MiB/s"
			      "  ETA 0:02");
	client_format_progress(buf, sizeof(buf), "x", 0, 0, 0, 0);
	ck_assert_str_eq(buf, "x  0 B / 0 B  100%  0.0 MiB/s  ETA --:--");
	client_format_summary(buf, sizeof(buf), "x", 2 * MIB, 0.5);
	ck_assert_str_eq(buf, "x: 2097152 bytes in 0.50 s, 4.00 MiB/s");

	ck_assert_int_eq(client_output_name("/a/b.txt", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "b.txt");
	ck_assert_int_eq(client_output_name("GET x", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "GET x");
	ck_assert_int_eq(client_output_name("/", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(client_output_name("/sub/", buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(client_output_name("/a/..", buf, sizeof(buf)),
			 -EINVAL);
	ck_assert_int_eq(client_output_name(".", buf, sizeof(buf)), -EINVAL);

	m.size = 104857600;
	m.mtime = -5;
	m.offset = 7;
	ck_assert_int_eq(client_meta_format(buf, sizeof(buf), &m), 15);
	ck_assert_str_eq(buf, "104857600 -5 7\n");
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(client_meta_parse(buf, strlen(buf), &m), 0);
	ck_assert(m.size == 104857600 && m.mtime == -5 && m.offset == 7);
	ck_assert_int_eq(client_meta_parse("1 2 3", 5, &m), 0);
	ck_assert_int_eq(client_meta_parse("1 2", 3, &m), -EINVAL);
	ck_assert_int_eq(client_meta_parse("1 2 3 4", 7, &m), -EINVAL);
	ck_assert_int_eq(client_meta_parse("1  2 3", 6, &m), -EINVAL);
	ck_assert_int_eq(client_meta_parse("-1 2 3", 6, &m), -EINVAL);
	ck_assert_int_eq(client_meta_parse("", 0, &m), -EINVAL);
	ck_assert_int_eq(client_meta_parse("9223372036854775808 0 0", 23, &m),
			 -EINVAL);

	ck_assert_int_eq(client_format_get(buf, sizeof(buf), "/with space.txt",
					   0, false, 0),
			 22);
	ck_assert_str_eq(buf, "GET /with%20space.txt\n");
	client_format_get(buf, sizeof(buf), "/a", 5, false, 0);
	ck_assert_str_eq(buf, "GET /a 5\n");
	client_format_get(buf, sizeof(buf), "/a", 0, true, 9);
	ck_assert_str_eq(buf, "GET /a 0 9\n");
	client_format_list(buf, sizeof(buf), NULL);
	ck_assert_str_eq(buf, "LIST\n");
	client_format_list(buf, sizeof(buf), "/50%");
	ck_assert_str_eq(buf, "LIST /50%25\n");
	{
		static char longpath[FERRY_LINE_MAX], line[2 * FERRY_LINE_MAX];

		memset(longpath, 'a', sizeof(longpath) - 1);
		ck_assert_int_eq(client_format_get(line, sizeof(line), longpath,
						   0, false, 0),
				 -ENAMETOOLONG);
	}

	setenv("TZ", "UTC", 1);
	tzset();
	e.type = 'f';
	e.size = 3000;
	e.mtime = H_MTIME;
	snprintf(e.name, sizeof(e.name), "b\nx.bin");
	client_format_entry(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "f    2.9 KiB  2025-11-24 16:00  b%0Ax.bin");
	e.type = 'd';
	snprintf(e.name, sizeof(e.name), "deeper");
	client_format_entry(buf, sizeof(buf), &e);
	ck_assert_str_eq(buf, "d          -  2025-11-24 16:00  deeper");
}
END_TEST

/* ---- the suite --------------------------------------------------------- */

struct test {
	const char *name;
	const TTest *const *fn; /* START_TEST makes a pointer variable */
	int timeout_s;
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct test daemon_tests[] = {
	{ "get_sizes", &get_sizes, 60 },
	{ "get_big", &get_big, 120 },
	{ "get_names", &get_names, 60 },
	{ "get_several", &get_several, 120 },
	{ "get_several_refused", &get_several_refused, 60 },
	{ "get_stdout", &get_stdout, 120 },
	{ "get_to_device", &get_to_device, 60 },
	{ "get_ranges", &get_ranges, 60 },
	{ "resume_prepared", &resume_prepared, 120 },
	{ "resume_after_client_killed", &resume_after_client_killed, 120 },
	{ "resume_after_server_stopped", &resume_after_server_stopped, 120 },
	{ "resume_refused_when_changed", &resume_refused_when_changed, 120 },
	{ "exit_refused", &exit_refused, 60 },
	{ "exit_refused_closing", &exit_refused_closing, 60 },
	{ "exit_io", &exit_io, 120 },
	{ "server_stops_stdout", &server_stops_stdout, 120 },
	{ "ls_dirs", &ls_dirs, 60 },
	{ "ipv6", &ipv6, 60 },
	{ "progress_on_tty", &progress_on_tty, 120 },
	{ "get_verify", &get_verify, 120 },
	{ "get_limit_rate", &get_limit_rate, 60 },
};

static const struct fixture_test cli_tests[] = {
	{ "exit_usage", &exit_usage, 60 },
	{ "exit_unreachable", &exit_unreachable, 60 },
	{ "cli_help_version", &cli_help_version, 30 },
	{ "pure_functions", &pure_functions, 30 },
	{ "verify_fake_server", &verify_fake_server, 60 },
};

/* Names must outlive the runner; they are freed with it. */
static char *names[2 * COUNT(daemon_tests)];
static size_t names_used;

static Suite *client_suite(void)
{
	static const char *const modes[] = { "sendfile", "buffered" };
	Suite *s = suite_create("client");
	size_t m, i;

	for (m = 0; m < COUNT(modes); m++) {
		for (i = 0; i < COUNT(daemon_tests); i++) {
			TCase *tc;
			char *name;

			if (asprintf(&name, "%s_%s", daemon_tests[i].name,
				     modes[m]) < 0)
				abort();
			names[names_used++] = name;
			tc = tcase_create(name);
			tcase_set_tags(tc, modes[m]);
			tcase_add_checked_fixture(tc,
						  m == 0 ? setup_sendfile
							 : setup_buffered,
						  teardown_daemon);
			tcase_set_timeout(tc, daemon_tests[i].timeout_s);
			tcase_add_test(tc, *daemon_tests[i].fn);
			suite_add_tcase(s, tc);
		}
	}
	fixture_add_tests(s, "cli", setup_cli, teardown_cli, cli_tests,
			  COUNT(cli_tests));
	return s;
}

int main(void)
{
	size_t i;
	int status;

	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	fprintf(stderr, "check_client: ferry is %s\n", cli_ferry_path());
	status = fixture_run("check_client", client_suite());
	for (i = 0; i < names_used; i++)
		free(names[i]);
	return status;
}
