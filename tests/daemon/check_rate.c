/* Integration tests for the bandwidth limits, limits.rate and
 * limits.rate_total, in both transfer modes.
 *
 * A limit is a correctness property: a throttled fetch must not finish
 * sooner than its bytes allow at the rate, less one bucket's burst. Only
 * that lower bound is asserted here, with the bytes compared; how close to
 * the rate a fetch comes, and how fairly rate_total is shared, depends on
 * the machine and is measured by bench/run ("rate limits"). The measured
 * times are printed.
 *
 *   CK_RUN_CASE=rate_single_sendfile ./tests/daemon/check_rate */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000
#define FETCH_MS 60000
#define STOP_MS 15000
#define MIB (1024ULL * 1024)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct h_daemon d;

static void setup_sendfile(void)
{
	fixture_start(&d, "sendfile");
}

static void setup_buffered(void)
{
	fixture_start(&d, "buffered");
}

static void teardown_daemon(void)
{
	fixture_teardown(&d, STOP_MS);
}

/* Restarts the fixture's daemon with OVERRIDES (h_write_config's form). */
static void restart(const char *overrides)
{
	fixture_restart(&d, overrides, STOP_MS);
}

/* Rewrites the config with OVERRIDES, sends SIGHUP and waits for the
 * reload's line (the Nth since the start). */
static void reload(const char *overrides, int nth)
{
	static const char *const needles[] = { "configuration reloaded", NULL };
	int64_t deadline = h_now_ms() + LINE_MS;

	ck_assert_int_eq(h_write_config(&d, overrides), 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	while (h_count_lines(d.diag_log, needles[0]) < nth) {
		ck_assert_msg(h_now_ms() < deadline, "no reload 5 s after "
						     "SIGHUP: %s",
			      h_diag_tail(&d));
		usleep(10000);
	}
}

/* Connects and asks for big.bin's LENGTH bytes from 0, reading the OK
 * line. */
static int start_get(uint64_t length)
{
	char req[64], line[128], want[128];
	int fd = h_connect(d.port, LINE_MS);
	ssize_t n;

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	snprintf(req, sizeof(req), "GET /big.bin 0 %llu\n",
		 (unsigned long long)length);
	ck_assert_int_eq(h_send_str(fd, req, LINE_MS), 0);
	n = h_recv_line(fd, line, sizeof(line), LINE_MS);
	snprintf(want, sizeof(want), "OK %llu %llu %d",
		 (unsigned long long)length, (unsigned long long)H_BIG_BYTES,
		 H_MTIME);
	ck_assert_msg(n > 0 && strcmp(line, want) == 0,
		      "%s: got '%s', want '%s'", req, n > 0 ? line : "",
		      want);
	return fd;
}

/* Receives big.bin's bytes [FROM, TO) on FD, all of them compared. */
static void recv_range(int fd, uint64_t from, uint64_t to, const char *what)
{
	uint64_t got = 0;
	int rc = h_recv_compare(fd, h_root_path(&d, "big.bin"), from, to - from,
				0, &got, FETCH_MS);

	ck_assert_msg(rc == 0, "%s: %s after %llu of %llu bytes", what,
		      h_strerror(rc), (unsigned long long)(from + got),
		      (unsigned long long)to);
}

/* Fetches LENGTH bytes of big.bin on a new connection; the seconds it
 * took, printed with the rate under WHAT. */
static double timed_get(uint64_t length, const char *what)
{
	int64_t start = h_now_ms();
	int fd = start_get(length);
	double s;

	recv_range(fd, 0, length, what);
	s = (double)(h_now_ms() - start) / 1000;
	close(fd);
	fprintf(stderr, "check_rate: %s (%s): %llu bytes in %.2f s, %.2f "
			"MiB/s\n",
		what, d.mode, (unsigned long long)length, s,
		(double)length / MIB / s);
	return s;
}

/* The least time LENGTH bytes may take at RATE_BPS when a bucket of
 * BURST_BYTES went at once, less 20 ms for the clocks' granularity (the
 * limiter can meet this bound to the millisecond). */
static double least_s(uint64_t length, uint64_t rate_bps, uint64_t burst)
{
	return (double)(length - burst) / (double)rate_bps - 0.02;
}

/* The depth of a bucket at RATE_BPS (rate.c): max(64 KiB, rate / 10). */
static uint64_t burst_of(uint64_t rate_bps)
{
	return rate_bps / 10 > 64 * 1024 ? rate_bps / 10 : 64 * 1024;
}

/* Waits for the transfer log line of a big.bin fetch holding NEEDLE. */
static void expect_logged(const char *needle, char *line, size_t cap)
{
	const char *const needles[] = { "path=/big.bin ", needle, NULL };
	int rc = h_wait_line(d.transfer_log, LINE_MS, line, cap, needles);

	ck_assert_msg(rc == 0, "no transfer log line with %s: %s", needle,
		      h_strerror(rc));
}

/* ---- limits.rate ------------------------------------------------------- */

START_TEST(rate_single)
{
	uint64_t rate = 20 * MIB;
	double s;

	restart("limits.rate=20MiB");
	s = timed_get(H_BIG_BYTES, "100 MiB at rate 20MiB");
	ck_assert_msg(s >= least_s(H_BIG_BYTES, rate, burst_of(rate)),
		      "100 MiB at 20 MiB/s took %.2f s", s);
}
END_TEST

/* A fetch that lasts longer than send_timeout, and waits longer than it
 * for each quantum of tokens (4 KiB at 4 KiB/s), is not cut: the wait is
 * the server's, not the client's. */
START_TEST(rate_outlasts_send_timeout)
{
	uint64_t length = 64 * 1024 + 8 * 1024;
	double s;

	restart("limits.rate=4KiB;limits.send_timeout=300ms");
	s = timed_get(length, "72 KiB at rate 4KiB, send_timeout 300ms");
	ck_assert_msg(s >= least_s(length, 4096, 64 * 1024),
		      "72 KiB at 4 KiB/s took %.2f s", s);
}
END_TEST

/* A throttled transfer whose client hangs up is logged 499; the
 * connection, its timer and its file are gone (the teardown checks the fd
 * count and the clean exit, which waits for every handle). */
START_TEST(rate_client_gone)
{
	char line[1024];
	int fd;

	restart("limits.rate=1MiB");
	fd = start_get(H_BIG_BYTES);
	recv_range(fd, 0, 256 * 1024, "the first 256 KiB");
	close(fd);
	expect_logged("status=499", line, sizeof(line));
}
END_TEST

/* SIGTERM while a throttled transfer runs: it finishes within
 * shutdown_timeout, at its rate, and the daemon exits 0. */
START_TEST(rate_sigterm_drains)
{
	uint64_t length = 20 * MIB;
	char line[1024];
	int status = 0, fd, rc;

	restart("limits.rate=10MiB");
	fd = start_get(length);
	recv_range(fd, 0, MIB, "the first MiB");
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	recv_range(fd, MIB, length, "the rest, after SIGTERM");
	close(fd);
	rc = h_wait_exit(&d, STOP_MS, &status);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit after SIGTERM: %s, status 0x%x", h_strerror(rc),
		      status);
	expect_logged("status=200", line, sizeof(line));
}
END_TEST

/* SIGTERM while a throttled transfer waits for tokens: the shutdown
 * deadline cuts it (503), and the daemon exits 0. */
START_TEST(rate_sigterm_cuts)
{
	char line[1024];
	uint64_t got = 0;
	int status = 0, fd, rc;
	int64_t sent;

	restart("limits.rate=1MiB;limits.shutdown_timeout=1s");
	fd = start_get(H_BIG_BYTES);
	recv_range(fd, 0, 256 * 1024, "the first 256 KiB");
	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();
	rc = h_recv_compare(fd, h_root_path(&d, "big.bin"), 256 * 1024,
			    H_BIG_BYTES - 256 * 1024, 0, &got, FETCH_MS);
	ck_assert_msg(rc == H_EOF, "want the transfer cut, got %s after %llu "
				   "bytes",
		      h_strerror(rc), (unsigned long long)got);
	close(fd);
	rc = h_wait_exit(&d, 6000, &status);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit after SIGTERM: %s, status 0x%x", h_strerror(rc),
		      status);
	ck_assert_msg(h_now_ms() - sent <= 6000, "exit %lld ms after SIGTERM",
		      (long long)(h_now_ms() - sent));
	expect_logged("status=503", line, sizeof(line));
}
END_TEST

/* A reload: a transfer in flight keeps the rate it began with; the next
 * one takes the new rate. */
START_TEST(rate_reload)
{
	uint64_t length = 10 * MIB;
	int64_t start;
	double s;
	int fd;

	restart("limits.rate=10MiB");
	start = h_now_ms();
	fd = start_get(length);
	recv_range(fd, 0, MIB, "the first MiB");
	reload("limits.rate=0", 1);
	recv_range(fd, MIB, length, "the rest, after the reload");
	close(fd);
	s = (double)(h_now_ms() - start) / 1000;
	fprintf(stderr, "check_rate: in flight across a reload to 0 (%s): "
			"%.2f s\n", d.mode, s);
	ck_assert_msg(s >= least_s(length, 10 * MIB, burst_of(10 * MIB)),
		      "the transfer in flight took the new rate: %.2f s", s);
	reload("limits.rate=5MiB", 2);
	s = timed_get(length, "10 MiB after a reload to rate 5MiB");
	ck_assert_msg(s >= least_s(length, 5 * MIB, burst_of(5 * MIB)),
		      "the next transfer kept the old rate: %.2f s", s);
}
END_TEST

/* ---- limits.rate_total -------------------------------------------------- */

/* Four clients at once, each in a child process: together they take no
 * less than their bytes at rate_total allow, less the shared bucket's
 * burst. */
START_TEST(rate_total_four)
{
	enum { CLIENTS = 4 };
	uint64_t each = 25 * MIB, rate_total = 50 * MIB;
	pid_t pid[CLIENTS];
	int64_t start;
	double s;
	int i;

	restart("limits.rate_total=50MiB");
	start = h_now_ms();
	for (i = 0; i < CLIENTS; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			uint64_t got = 0;
			int fd = start_get(each);
			int rc = h_recv_compare(fd, h_root_path(&d, "big.bin"),
						0, each, 0, &got, FETCH_MS);

			fprintf(stderr, "check_rate: client %d (%s): %.1f "
					"MiB/s\n",
				i, d.mode,
				(double)got / MIB /
					((double)(h_now_ms() - start) / 1000));
			_exit(rc == 0 ? 0 : 1);
		}
	}
	for (i = 0; i < CLIENTS; i++) {
		int status = 0;

		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "client %d failed (status 0x%x)", i, status);
	}
	s = (double)(h_now_ms() - start) / 1000;
	fprintf(stderr, "check_rate: 4 x 25 MiB under rate_total 50MiB (%s): "
			"%.2f s\n", d.mode, s);
	ck_assert_msg(s >= least_s(CLIENTS * each, rate_total,
				   burst_of(rate_total)),
		      "4 x 25 MiB under 50 MiB/s took %.2f s", s);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

static const struct fixture_test tests[] = {
	{ "rate_single", &rate_single, 60 },
	{ "rate_outlasts_send_timeout", &rate_outlasts_send_timeout, 30 },
	{ "rate_client_gone", &rate_client_gone, 30 },
	{ "rate_sigterm_drains", &rate_sigterm_drains, 60 },
	{ "rate_sigterm_cuts", &rate_sigterm_cuts, 30 },
	{ "rate_reload", &rate_reload, 60 },
	{ "rate_total_four", &rate_total_four, 60 },
};

int main(void)
{
	return fixture_run("check_rate",
			   fixture_mode_suite("rate", tests, COUNT(tests),
					      setup_sendfile, setup_buffered,
					      teardown_daemon));
}
