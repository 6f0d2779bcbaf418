/* Integration tests: ferryd keeps serving and loses nothing when clients
 * and the system misbehave. The real daemon, on port 0, over loopback:
 *
 *   - a thousand clients that hang up in the middle of the 100 MiB file;
 *   - two hundred clients that never read, beside one that does, and the
 *     send timeout that closes them;
 *   - running out of file descriptors (RLIMIT_NOFILE 64);
 *   - limits.connections and limits.per_client;
 *   - SIGTERM with fifty transfers in flight;
 *   - SIGHUP with a broken configuration, then a fixed one;
 *   - the transfer log deleted under the daemon, then SIGHUP.
 *
 * The transfer cases run once per transfer mode, each (test, mode) pair its
 * own TCase named "<test>_<mode>"; the others run once:
 *
 *   CK_RUN_CASE=stalled_readers_buffered ./tests/daemon/check_faults
 *
 * Each test prints what it measured (fd counts, memory, CPU ticks,
 * throughput, timings) on stderr, prefixed "check_faults:". Timings are
 * reported, and asserted only with bounds wide enough for a loaded machine.
 *
 * The checked fixture starts a daemon with the standard root (harness.c);
 * after the test a daemon still running must be alive, back at its fd count
 * after startup, and stop cleanly on SIGTERM, and its diagnostic log may
 * hold no error line the test did not expect. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000      /* a reply line, a log line */
#define BIG_MS 60000      /* 100 MiB */
#define STOP_MS 15000     /* SIGTERM to exit, idle daemon */
#define MIB (1024ULL * 1024)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct h_daemon d;

/* ---- fixture ----------------------------------------------------------- */

static void setup_mode(const char *mode)
{
	fixture_start(&d, mode);
}

static void setup_sendfile(void)
{
	setup_mode("sendfile");
}

static void setup_buffered(void)
{
	setup_mode("buffered");
}

/* For a test that starts its daemon its own way. */
static void setup_dir(void)
{
	int rc = h_setup(&d, "sendfile");

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
}

static void teardown_daemon(void)
{
	fixture_teardown(&d, STOP_MS);
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

/* ---- measuring the daemon ---------------------------------------------- */

/* Pauses between two looks at a condition that has no event to wait on (a
 * log growing, a process's counters); every such loop has a deadline. */
static void pause_briefly(void)
{
	poll(NULL, 0, 10);
}

/* VmRSS of PID in KiB, from /proc/PID/status; -1 when unreadable. */
static long rss_kib(pid_t pid)
{
	char path[64], *text = NULL, *p;
	size_t len;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (h_read_file(path, &text, &len) < 0)
		return -1;
	p = strstr(text, "\nVmRSS:");
	if (p != NULL && sscanf(p, "\nVmRSS: %ld kB", &kib) != 1)
		kib = -1;
	free(text);
	return kib;
}

/* utime + stime of PID (every thread) in clock ticks; -1 when unreadable. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], *text = NULL, *p;
	unsigned long long utime, stime;
	size_t len;
	long long ticks = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (h_read_file(path, &text, &len) < 0)
		return -1;
	/* "PID (COMM) STATE ...": COMM may hold anything, so the fields are
	 * counted from its closing paren; utime and stime are the 14th and
	 * 15th, the 12th and 13th after STATE. */
	p = strrchr(text, ')');
	if (p != NULL &&
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			  "%llu",
		   &utime, &stime) == 2)
		ticks = (long long)(utime + stime);
	free(text);
	return ticks;
}

/* Lines of TEXT that hold every one of the NULL-terminated NEEDLES. */
static int count_in_text(const char *text, const char *const needles[])
{
	const char *line = text;
	int n = 0;

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		bool all = true;
		size_t i;

		if (end == NULL)
			break; /* a line still being written */
		for (i = 0; needles[i] != NULL && all; i++) {
			const char *p = strstr(line, needles[i]);

			all = p != NULL && p < end;
		}
		if (all)
			n++;
		line = end + 1;
	}
	return n;
}

/* Lines of the file at PATH that hold every needle; 0 when it is missing. */
static int count_lines(const char *path, const char *const needles[])
{
	char *text = NULL;
	size_t len;
	int n;

	if (h_read_file(path, &text, &len) < 0)
		return 0;
	n = count_in_text(text, needles);
	free(text);
	return n;
}

/* Waits up to TIMEOUT_MS for PATH to hold at least WANT lines with every
 * needle. Returns the last count. */
static int wait_lines(const char *path, const char *const needles[], int want,
		      int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int n;

	for (;;) {
		n = count_lines(path, needles);
		if (n >= want || h_now_ms() >= deadline)
			return n;
		pause_briefly();
	}
}

/* Waits up to TIMEOUT_MS for the daemon's fd count to reach TARGET, and
 * fails the test with what it holds if it does not. */
static void expect_fd_count(int target, int timeout_ms, const char *what)
{
	int n = h_wait_fd_count(d.pid, target, timeout_ms);

	ck_assert_msg(n == target, "%s: ferryd holds %d fds, want %d: %s",
		      what, n, target, h_fd_list(d.pid));
}

/* ---- client helpers ---------------------------------------------------- */

static int connect_ok(void)
{
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", d.port,
		      h_strerror(fd));
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

/* Expects "OK LENGTH SIZE MTIME" for the whole of a file of SIZE bytes. */
static void expect_ok_whole(int fd, uint64_t size, const char *what)
{
	char line[256], want[128];

	recv_line_ok(fd, line, sizeof(line), what);
	snprintf(want, sizeof(want), "OK %llu %llu %d",
		 (unsigned long long)size, (unsigned long long)size, H_MTIME);
	ck_assert_msg(strcmp(line, want) == 0, "%s: got '%s', want '%s'", what,
		      line, want);
}

/* Expects "ERR CODE REASON" (REASON not empty) and then the server's close. */
static void expect_refusal(int fd, int code, const char *what)
{
	char line[256], prefix[32];
	size_t plen;
	int rc;

	recv_line_ok(fd, line, sizeof(line), what);
	plen = (size_t)snprintf(prefix, sizeof(prefix), "ERR %d ", code);
	ck_assert_msg(strncmp(line, prefix, plen) == 0 && line[plen] != '\0',
		      "%s: got '%s', want 'ERR %d <reason>'", what, line, code);
	rc = h_expect_eof(fd, LINE_MS);
	ck_assert_msg(rc == 0, "%s: want the server to close after '%s': %s",
		      what, line, h_strerror(rc));
}

/* GETs REL (SIZE bytes) on FD, comparing every byte with the file. */
static void get_whole_ok(int fd, const char *rel, uint64_t size,
			 const char *what)
{
	char req[300];
	uint64_t got = 0;
	int rc;

	snprintf(req, sizeof(req), "GET /%s\n", rel);
	send_ok(fd, req);
	expect_ok_whole(fd, size, what);
	rc = h_recv_compare(fd, h_root_path(&d, rel), 0, size, 0, &got,
			    BIG_MS);
	ck_assert_msg(rc == 0, "%s: %s after %llu of %llu bytes", what,
		      h_strerror(rc), (unsigned long long)got,
		      (unsigned long long)size);
}

/* Retries a GET of one.bin on new connections for up to TIMEOUT_MS until
 * one is served (a refusal may still come while the daemon takes in the
 * closes that free a slot). Returns the served connection, open. */
static int served_within(int timeout_ms, const char *what)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	char line[256];

	for (;;) {
		int fd = h_connect(d.port, LINE_MS);
		ssize_t n = 0;

		if (fd >= 0 && h_send_str(fd, "GET /one.bin\n", LINE_MS) == 0)
			n = h_recv_line(fd, line, sizeof(line), LINE_MS);
		if (n > 0 && strcmp(line, "OK 1 1 1764000000") == 0) {
			uint64_t got = 0;
			int rc = h_recv_compare(fd, h_root_path(&d, "one.bin"),
						0, 1, 0, &got, LINE_MS);

			ck_assert_msg(rc == 0, "%s: one.bin: %s", what,
				      h_strerror(rc));
			return fd;
		}
		if (fd >= 0)
			close(fd);
		ck_assert_msg(h_now_ms() < deadline,
			      "%s: not served within %d ms; the last answer: "
			      "'%s'",
			      what, timeout_ms,
			      n > 0 ? line : n == 0 ? "(closed)"
						    : h_strerror((int)n));
		pause_briefly();
	}
}

/* The test's big.bin, mapped, so many connections can be checked against it
 * without reading the file for each. */
static const unsigned char *big_map(void)
{
	const char *path = h_root_path(&d, "big.bin");
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	map = mmap(NULL, H_BIG_BYTES, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_msg(map != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	return map;
}

/* ---- many readers, one thread ------------------------------------------
 * The client side of the many-connection tests: each reader receives the
 * file's bytes from offset 0 on its socket, checks them against the mapped
 * file, and may pause after each slice it reads. One poll loop drives them
 * all, so a test holds hundreds of transfers without hundreds of threads. */

enum reader_state { READING, ENDED, FAILED };

struct reader {
	int fd;
	int port;              /* the local port: the log's client= */
	enum reader_state state;
	int err;               /* FAILED: -EILSEQ, -ETIMEDOUT or -errno */
	uint64_t got;          /* file bytes received, every one checked */
	uint64_t slice;        /* bytes of the current slice */
	int64_t due_ms;        /* paused until then */
};

struct pump {
	struct reader *r;
	size_t n;
	const unsigned char *file;
	uint64_t slice_bytes;  /* read this much ... */
	int pause_ms;          /* ... then pause this long (0: never) */
	uint64_t until_got;    /* stop once every reader has this much */
	/* When set, reaped the moment it exits; EXIT_AT and STATUS say when
	 * and how. */
	struct h_daemon *watch;
	int64_t exit_at;
	int status;
};

/* Receives what one reader's socket holds (at most its slice's rest). */
static void reader_recv(struct pump *p, struct reader *r)
{
	static unsigned char buf[256 * 1024];
	uint64_t want = p->slice_bytes - r->slice;
	ssize_t n;

	if (want > sizeof(buf))
		want = sizeof(buf);
	n = recv(r->fd, buf, (size_t)want, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* A reset ends the transfer as an EOF does: the server is gone. */
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		r->state = ENDED;
		return;
	}
	if (n < 0) {
		r->state = FAILED;
		r->err = -errno;
		return;
	}
	if (r->got + (uint64_t)n > H_BIG_BYTES ||
	    memcmp(buf, p->file + r->got, (size_t)n) != 0) {
		size_t i = 0;

		while (i < (size_t)n && r->got + i < H_BIG_BYTES &&
		       buf[i] == p->file[r->got + i])
			i++;
		r->got += i;
		r->state = FAILED;
		r->err = -EILSEQ;
		return;
	}
	r->got += (uint64_t)n;
	r->slice += (uint64_t)n;
	if (r->slice >= p->slice_bytes) {
		r->slice = 0;
		if (p->pause_ms > 0)
			r->due_ms = h_now_ms() + p->pause_ms;
	}
}

/* Whether the pump has nothing left to do. */
static bool pump_done(const struct pump *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct reader *r = &p->r[i];

		if (r->state == READING &&
		    (p->until_got == 0 || r->got < p->until_got))
			return false;
	}
	return true;
}

/* Runs the readers until each has ended (or failed), or, with UNTIL_GOT,
 * has that many bytes; at most TIMEOUT_MS. A reader short of that at the
 * deadline is marked FAILED with -ETIMEDOUT. */
static void pump_run(struct pump *p, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	struct pollfd *pfd = calloc(p->n, sizeof(*pfd));
	size_t *which = calloc(p->n, sizeof(*which));
	size_t i;

	ck_assert(pfd != NULL && which != NULL);
	while (!pump_done(p)) {
		int64_t now = h_now_ms(), next = deadline;
		size_t k = 0;
		int wait;

		if (p->watch != NULL && p->exit_at == 0 &&
		    h_wait_exit(p->watch, 0, &p->status) == 0)
			p->exit_at = now;
		if (now >= deadline)
			break;
		for (i = 0; i < p->n; i++) {
			struct reader *r = &p->r[i];

			if (r->state != READING)
				continue;
			if (r->due_ms > now) {
				if (r->due_ms < next)
					next = r->due_ms;
				continue;
			}
			pfd[k].fd = r->fd;
			pfd[k].events = POLLIN;
			pfd[k].revents = 0;
			which[k++] = i;
		}
		wait = (int)(next - now);
		/* The daemon's exit has no fd to poll: look now and then. */
		if (p->watch != NULL && wait > 20)
			wait = 20;
		if (poll(k > 0 ? pfd : NULL, k, wait) < 0 && errno != EINTR)
			ck_abort_msg("poll: %s", strerror(errno));
		for (i = 0; i < k; i++)
			if (pfd[i].revents != 0)
				reader_recv(p, &p->r[which[i]]);
	}
	for (i = 0; i < p->n; i++) {
		struct reader *r = &p->r[i];

		if (r->state == READING &&
		    (p->until_got == 0 || r->got < p->until_got)) {
			r->state = FAILED;
			r->err = -ETIMEDOUT;
		}
	}
	free(pfd);
	free(which);
}

/* Opens a connection and asks for big.bin: the GET form when GET (its OK
 * line is read here), else the raw form. */
static void reader_open(struct reader *r, bool get)
{
	memset(r, 0, sizeof(*r));
	r->fd = connect_ok();
	r->port = h_local_port(r->fd);
	r->state = READING;
	send_ok(r->fd, get ? "GET /big.bin\n" : "/big.bin\n");
	if (get)
		expect_ok_whole(r->fd, H_BIG_BYTES, "GET /big.bin");
}

/* Finds the reader whose local port is in the log line's client=. */
static struct reader *reader_of_line(struct reader *r, size_t n,
				     const char *line)
{
	char client[64];
	const char *colon;
	size_t i;

	if (h_field(line, "client", client, sizeof(client)) < 0)
		return NULL;
	colon = strrchr(client, ':');
	if (colon == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (r[i].port == atoi(colon + 1))
			return &r[i];
	return NULL;
}

static uint64_t field_u64(const char *line, const char *key)
{
	char v[32];

	ck_assert_msg(h_field(line, key, v, sizeof(v)) == 0,
		      "no %s= in '%s'", key, line);
	return strtoull(v, NULL, 10);
}

/* ---- a thousand clients hang up mid-transfer --------------------------- */

#define HANGUP_CLIENTS 1000
#define HANGUP_WAVE 100
#define HANGUP_READ (64 * 1024)
#define RSS_SLACK_KIB (8 * 1024)

START_TEST(hangups)
{
	static const char *const mine[] = { "path=/big.bin ", NULL };
	static const char *const gone[] = { "path=/big.bin ", "status=499",
					    "error=client-gone", NULL };
	static const char *const done[] = { "path=/big.bin ", "status=200",
					    NULL };
	static unsigned char buf[HANGUP_READ];
	const unsigned char *file;
	int fds[HANGUP_WAVE];
	long rss_before, rss_warm = 0, rss_after;
	int64_t start;
	int wave, i, n_mine, n_gone, n_done;

	/* Room for a wave and the stragglers of the one before. */
	restart("limits.connections=1000;limits.per_client=1000");
	file = big_map();
	rss_before = rss_kib(d.pid);
	ck_assert_msg(rss_before > 0, "cannot read ferryd's VmRSS");

	start = h_now_ms();
	for (wave = 0; wave < HANGUP_CLIENTS / HANGUP_WAVE; wave++) {
		for (i = 0; i < HANGUP_WAVE; i++) {
			fds[i] = connect_ok();
			send_ok(fds[i], i % 2 == 0 ? "GET /big.bin\n"
						   : "/big.bin\n");
		}
		for (i = 0; i < HANGUP_WAVE; i++) {
			size_t got = 0;
			int rc;

			if (i % 2 == 0)
				expect_ok_whole(fds[i], H_BIG_BYTES,
						"GET /big.bin");
			rc = h_recv_n(fds[i], buf, sizeof(buf), &got, BIG_MS);
			ck_assert_msg(rc == 0, "client %d: %s after %zu bytes",
				      wave * HANGUP_WAVE + i, h_strerror(rc),
				      got);
			ck_assert_msg(memcmp(buf, file, sizeof(buf)) == 0,
				      "client %d: the first %d bytes differ "
				      "from big.bin",
				      wave * HANGUP_WAVE + i, HANGUP_READ);
			/* With unread bytes queued, this is a reset. */
			close(fds[i]);
		}
		if (wave == 0) {
			/* The first wave warms the heap up: the allocator
			 * keeps some MiB of what it gave back (ferryd's
			 * mallopt), which is no leak. The baseline for the
			 * other 900 is taken here. */
			expect_fd_count(d.fd_baseline, 10000,
					"after the first wave");
			rss_warm = rss_kib(d.pid);
		}
	}

	n_mine = wait_lines(d.transfer_log, mine, HANGUP_CLIENTS, 10000);
	n_gone = count_lines(d.transfer_log, gone);
	n_done = count_lines(d.transfer_log, done);
	ck_assert_msg(n_mine == HANGUP_CLIENTS,
		      "%d transfer log lines for big.bin, want %d", n_mine,
		      HANGUP_CLIENTS);
	ck_assert_msg(n_gone + n_done == HANGUP_CLIENTS,
		      "%d lines status=499 error=client-gone and %d status=200 "
		      "of %d",
		      n_gone, n_done, HANGUP_CLIENTS);
	expect_fd_count(d.fd_baseline, 10000, "after 1000 hang-ups");

	/* What the transfers held is freed when they end: the heap may
	 * keep some slack, never a transfer's worth per client. */
	rss_after = rss_kib(d.pid);
	fprintf(stderr,
		"check_faults: hangups_%s: %d clients in %lld ms, log: %d "
		"status=499, %d status=200; fds %d (baseline %d); VmRSS "
		"%ld KiB at start, %ld KiB after the first %d, %ld KiB after "
		"all (%+ld KiB from the start, %+ld KiB from the first %d)\n",
		d.mode, HANGUP_CLIENTS, (long long)(h_now_ms() - start),
		n_gone, n_done, h_fd_count(d.pid), d.fd_baseline, rss_before,
		rss_warm, HANGUP_WAVE, rss_after, rss_after - rss_before,
		rss_after - rss_warm, HANGUP_WAVE);
	ck_assert_msg(n_done == 0, "%d transfers of 100 MiB completed though "
				   "their clients read 64 KiB",
		      n_done);
	ck_assert_msg(rss_warm > 0 && rss_after > 0 &&
			      rss_after <= rss_warm + RSS_SLACK_KIB,
		      "VmRSS %ld KiB after %d hang-ups, %ld KiB after the "
		      "first %d (%ld KiB at start)",
		      rss_after, HANGUP_CLIENTS, rss_warm, HANGUP_WAVE,
		      rss_before);
	munmap((void *)file, H_BIG_BYTES);
}
END_TEST

/* ---- readers that never read ------------------------------------------- */

#define STALLED 200

/* Fetches big.bin whole on a new connection, checking every byte, and
 * returns the rate in MB/s (10^6 bytes per second). */
static double timed_fetch(const char *what)
{
	int64_t start = h_now_ms(), ms;
	int fd = connect_ok();

	get_whole_ok(fd, "big.bin", H_BIG_BYTES, what);
	ms = h_now_ms() - start;
	close(fd);
	return (double)H_BIG_BYTES / 1e6 / ((double)(ms > 0 ? ms : 1) / 1e3);
}

/* The best of three fetches: on loopback one takes some tens of ms, which
 * one hiccup of the machine could double. */
static double best_fetch(const char *what)
{
	double best = 0.0;
	int i;

	for (i = 0; i < 3; i++) {
		double rate = timed_fetch(what);

		if (rate > best)
			best = rate;
	}
	return best;
}

/* Waits up to TIMEOUT_MS for the daemon to have used no CPU for QUIET_MS:
 * it has pushed all it can into the stalled sockets. Returns when it last
 * used some (h_now_ms), or -1. */
static int64_t wait_quiet(int quiet_ms, int timeout_ms)
{
	int64_t start = h_now_ms(), changed = start;
	long long last = cpu_ticks(d.pid);

	for (;;) {
		int64_t now = h_now_ms();
		long long ticks = cpu_ticks(d.pid);

		if (ticks != last) {
			last = ticks;
			changed = now;
		}
		if (now - changed >= quiet_ms)
			return changed;
		if (now - start >= timeout_ms)
			return -1;
		pause_briefly();
	}
}

/* Opens STALLED raw fetches of big.bin that are never read, and waits until
 * the daemon holds all of them (a socket and the file each). */
static void open_stalled(struct reader *r)
{
	int target, n;
	size_t i;

	for (i = 0; i < STALLED; i++)
		reader_open(&r[i], false);
	target = d.fd_baseline + 2 * STALLED;
	n = h_wait_fd_count(d.pid, target, 10000);
	ck_assert_msg(n == target,
		      "ferryd holds %d fds with %d stalled transfers, want "
		      "%d: %s",
		      n, STALLED, target, h_diag_tail(&d));
}

START_TEST(stalled_readers)
{
	static const char *const timed_out[] = { "path=/big.bin ",
						 "status=408",
						 "error=send-timeout", NULL };
	struct reader r[STALLED];
	struct pump p;
	double alone, burst, stalled, ratio;
	int64_t t0, logged_ms, fill_ms;
	int n, fds_stalled;
	long long ticks0, fill_ticks;
	size_t i;

	restart("limits.connections=400;limits.per_client=300");

	/* The same fetch alone and beside 200 clients that take nothing:
	 * a full socket must hold neither a pool thread nor the loop. The
	 * first fetch warms the page cache and the pool. */
	timed_fetch("warm-up fetch");
	alone = best_fetch("fetch alone");
	ticks0 = cpu_ticks(d.pid);
	t0 = h_now_ms();
	open_stalled(r);
	fds_stalled = h_fd_count(d.pid);
	/* Right away, while the daemon still fills the stalled sockets'
	 * buffers (some MiB each): reported, not asserted. */
	burst = timed_fetch("fetch while 200 stalled readers start");
	/* They are stalled once they take no more bytes: then the daemon,
	 * having filled every socket buffer it can, goes quiet. A full
	 * socket that held a pool thread or kept the loop busy would show
	 * here, or in the fetch that follows. */
	fill_ms = wait_quiet(300, 20000);
	ck_assert_msg(fill_ms >= 0, "ferryd still busy 20 s after %d "
				    "readers stalled: it spins",
		      STALLED);
	fill_ms -= t0;
	fill_ticks = cpu_ticks(d.pid) - ticks0;
	stalled = best_fetch("fetch beside 200 stalled readers");
	ratio = stalled / alone;
	fprintf(stderr,
		"check_faults: stalled_readers_%s: alone %.1f MB/s, beside %d "
		"stalled readers %.1f MB/s, ratio %.2f (best of 3 each); "
		"while they started %.1f MB/s (ratio %.2f); from their "
		"connecting to a quiet daemon %lld ms and %lld CPU ticks "
		"(that fetch included); fds %d with them, "
		"baseline %d\n",
		d.mode, alone, STALLED, stalled, ratio, burst, burst / alone,
		(long long)fill_ms, fill_ticks, fds_stalled, d.fd_baseline);
	/* The failure this guards against, pool threads or the loop held
	 * by full sockets, collapses the ratio to about 0. A fair daemon
	 * measured 0.8-2.2 alone on this 2-core machine, and 0.35-0.46 with
	 * other test programs or a benchmark running beside it; the bound
	 * sits below both, so only the collapse fails. The fairness figure
	 * itself belongs to make bench. */
	ck_assert_msg(ratio >= 0.25,
		      "%d stalled readers cut a fetch from %.1f MB/s to %.1f "
		      "MB/s (ratio %.2f)",
		      STALLED, alone, stalled, ratio);
	for (i = 0; i < STALLED; i++)
		close(r[i].fd);
	expect_fd_count(d.fd_baseline, 10000, "after closing the stalled");

	/* Now with a send timeout: the stalled ones are closed. */
	restart("limits.connections=400;limits.per_client=300;"
		"limits.send_timeout=2s");
	open_stalled(r);
	t0 = h_now_ms();
	n = wait_lines(d.transfer_log, timed_out, STALLED, 10000);
	logged_ms = h_now_ms() - t0;
	ck_assert_msg(n == STALLED,
		      "%d of %d stalled readers logged status=408 "
		      "error=send-timeout within 10 s of send_timeout=2s",
		      n, STALLED);

	/* Each socket, drained now, ends: cut short, every byte right. */
	memset(&p, 0, sizeof(p));
	p.r = r;
	p.n = STALLED;
	p.file = big_map();
	p.slice_bytes = H_BIG_BYTES;
	pump_run(&p, 10000);
	for (i = 0; i < STALLED; i++) {
		ck_assert_msg(r[i].state == ENDED,
			      "stalled reader %zu (port %d): %s after %llu "
			      "bytes, want the server's close",
			      i, r[i].port, h_strerror(r[i].err),
			      (unsigned long long)r[i].got);
		ck_assert_msg(r[i].got < H_BIG_BYTES,
			      "stalled reader %zu got the whole file", i);
		close(r[i].fd);
	}
	expect_fd_count(d.fd_baseline, 5000, "after the send timeouts");
	fprintf(stderr,
		"check_faults: stalled_readers_%s: send_timeout=2s: %d "
		"status=408 lines %lld ms after the %d stalled were in; "
		"every socket then ended; fds back to %d\n",
		d.mode, n, (long long)logged_ms, STALLED, d.fd_baseline);
	munmap((void *)p.file, H_BIG_BYTES);
}
END_TEST

/* ---- file descriptors run out ------------------------------------------ */

#define FD_CLIENTS 200
#define SPIN_TICKS 20

START_TEST(fd_exhaustion)
{
	static const char *const refused[] = { "path=-", "status=503", NULL };
	const struct rlimit nofile = { 64, 64 };
	const char *argv[] = { h_ferryd_path(), "-c", d.config, NULL };
	int fds[FD_CLIENTS], answered[FD_CLIENTS];
	char msg[4096];
	long long ticks0, ticks1;
	long hz = sysconf(_SC_CLK_TCK);
	int64_t window_end;
	int i, rc, refusals = 0, logged, held, fd;

	/* Limits far above what 64 descriptors allow: the budget decides.
	 * No request is sent, so the request timeout must not end it. */
	rc = h_write_config(&d, "limits.connections=1000;"
				"limits.per_client=1000;"
				"limits.request_timeout=60s");
	ck_assert_msg(rc == 0, "config: %s", h_strerror(rc));
	rc = h_spawn(&d, argv, &nofile);
	ck_assert_msg(rc == 0, "starting ferryd: %s", h_strerror(rc));
	rc = h_await_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "ferryd under RLIMIT_NOFILE 64: %s", msg);

	for (i = 0; i < FD_CLIENTS; i++) {
		/* Connected once in the backlog, accepted or not. */
		fds[i] = connect_ok();
		answered[i] = 0;
	}

	/* Two seconds with every descriptor spoken for: the daemon must not
	 * spin. Meanwhile the refused learn it. */
	ticks0 = cpu_ticks(d.pid);
	window_end = h_now_ms() + 2000;
	while (h_now_ms() < window_end) {
		struct pollfd pfd[FD_CLIENTS];
		int n = 0, map[FD_CLIENTS];

		for (i = 0; i < FD_CLIENTS; i++) {
			if (answered[i])
				continue;
			pfd[n].fd = fds[i];
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			map[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, (int)(window_end - h_now_ms())) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			expect_refusal(pfd[i].fd, 503, "a client over the "
						       "descriptor budget");
			answered[map[i]] = 1;
			refusals++;
		}
	}
	ticks1 = cpu_ticks(d.pid);
	ck_assert_msg(ticks0 >= 0 && ticks1 >= 0, "cannot read /proc/%d/stat",
		      (int)d.pid);
	ck_assert_msg(h_alive(&d), "ferryd died with %d clients under "
				   "RLIMIT_NOFILE 64: %s",
		      FD_CLIENTS, h_diag_tail(&d));
	held = h_fd_count(d.pid);
	logged = count_lines(d.transfer_log, refused);
	fprintf(stderr,
		"check_faults: fd_exhaustion: %d clients under RLIMIT_NOFILE "
		"64: %d got ERR 503 (%d logged), %d held; ferryd holds %d fds "
		"(baseline %d); CPU %lld ticks in 2 s (%ld per s)\n",
		FD_CLIENTS, refusals, logged, FD_CLIENTS - refusals, held,
		d.fd_baseline, ticks1 - ticks0, hz);
	ck_assert_msg(ticks1 - ticks0 < SPIN_TICKS,
		      "ferryd used %lld clock ticks in 2 s with its "
		      "descriptors spent: it spins",
		      ticks1 - ticks0);
	ck_assert_msg(refusals > 0, "no client got ERR 503 with %d connections "
				    "and 64 descriptors",
		      FD_CLIENTS);
	ck_assert_msg(logged == refusals,
		      "%d refusals logged status=503 path=-, %d received",
		      logged, refusals);

	/* A client it kept is served. */
	for (i = 0; i < FD_CLIENTS && answered[i]; i++)
		;
	if (i < FD_CLIENTS)
		get_whole_ok(fds[i], "one.bin", 1, "a client ferryd kept");

	for (i = 0; i < FD_CLIENTS; i++)
		close(fds[i]);
	fd = served_within(5000, "after the 200 closed");
	get_whole_ok(fd, "small.bin", H_SMALL_BYTES, "after the 200 closed");
	close(fd);
	expect_fd_count(d.fd_baseline, 5000, "after the 200 closed");
}
END_TEST

/* ---- limits.per_client and limits.connections -------------------------- */

/* Holds LIMIT served connections, expects the next one refused with CODE
 * (and logged so, path=-), frees one slot, and expects service again. */
static void hold_limit(int limit, int code)
{
	const char *status = code == 429 ? "status=429" : "status=503";
	const char *const refused[] = { "path=-", status, NULL };
	int fds[8], fd, i, before;

	ck_assert(limit < (int)COUNT(fds));
	before = count_lines(d.transfer_log, refused);
	for (i = 0; i < limit; i++) {
		/* A reply proves the server has admitted it. */
		fds[i] = connect_ok();
		get_whole_ok(fds[i], "one.bin", 1, "a connection within the "
						   "limit");
	}
	fd = connect_ok();
	expect_refusal(fd, code, "one connection over the limit");
	close(fd);
	ck_assert_msg(wait_lines(d.transfer_log, refused, before + 1,
				 LINE_MS) == before + 1,
		      "no transfer log line with %s path=- for the refusal",
		      status);

	close(fds[0]);
	fd = served_within(5000, "after a slot was freed");
	close(fd);
	for (i = 1; i < limit; i++)
		close(fds[i]);
	expect_fd_count(d.fd_baseline, 5000, "after the limit test");
}

START_TEST(limits)
{
	restart("limits.per_client=3");
	hold_limit(3, 429);
	restart("limits.connections=5;limits.per_client=100");
	hold_limit(5, 503);
}
END_TEST

/* ---- SIGTERM with fifty transfers in flight ---------------------------- */

#define INFLIGHT 50
#define SHUTDOWN_MS 2000

START_TEST(sigterm_inflight)
{
	static const char *const mine[] = { "path=/big.bin ", NULL };
	static const char *const cut_line[] = { "]: warn: shutdown: cut ",
						NULL };
	struct reader r[INFLIGHT];
	struct pump p;
	char *text = NULL, *line, *save, diag[512];
	uint64_t received = 0;
	size_t len, i;
	int64_t sent;
	int rc, complete = 0, cut = 0, lines = 0;
	unsigned said_cut = 0;

	restart("limits.shutdown_timeout=2s");
	memset(&p, 0, sizeof(p));
	p.r = r;
	p.n = INFLIGHT;
	p.file = big_map();
	/* Slowly but steadily: 256 KiB, then 20 ms off, about 12 MiB/s
	 * each, so the whole file would take some 8 s. */
	p.slice_bytes = 256 * 1024;
	p.pause_ms = 20;
	for (i = 0; i < INFLIGHT; i++)
		reader_open(&r[i], i % 2 == 1);
	/* Every transfer under way before the signal. */
	p.until_got = MIB;
	pump_run(&p, 20000);
	for (i = 0; i < INFLIGHT; i++)
		ck_assert_msg(r[i].state == READING,
			      "client %zu before SIGTERM: %s after %llu bytes",
			      i, h_strerror(r[i].err),
			      (unsigned long long)r[i].got);

	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();
	p.until_got = 0;
	p.watch = &d;
	pump_run(&p, SHUTDOWN_MS + 15000);
	if (p.exit_at == 0) {
		rc = h_wait_exit(&d, (int)(sent + SHUTDOWN_MS + 5000 -
					   h_now_ms()),
				 &p.status);
		ck_assert_msg(rc == 0, "ferryd still up %d ms after SIGTERM "
				       "with shutdown_timeout=2s: %s",
			      SHUTDOWN_MS + 5000, h_diag_tail(&d));
		p.exit_at = h_now_ms();
	}
	ck_assert_msg(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0,
		      "exit status 0x%x after SIGTERM: %s", p.status,
		      h_diag_tail(&d));
	ck_assert_msg(p.exit_at - sent <= SHUTDOWN_MS + 5000,
		      "exit %lld ms after SIGTERM, shutdown_timeout 2 s",
		      (long long)(p.exit_at - sent));
	for (i = 0; i < INFLIGHT; i++)
		ck_assert_msg(r[i].state == ENDED,
			      "client %zu after SIGTERM: %s after %llu bytes",
			      i, h_strerror(r[i].err),
			      (unsigned long long)r[i].got);

	/* One line per transfer: complete with every byte, or cut. */
	ck_assert_int_eq(h_read_file(d.transfer_log, &text, &len), 0);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		struct reader *who;
		uint64_t status, bytes;
		char error[64];

		if (strstr(line, "path=/big.bin ") == NULL)
			continue;
		lines++;
		who = reader_of_line(r, INFLIGHT, line);
		ck_assert_msg(who != NULL, "a line for no client: '%s'", line);
		status = field_u64(line, "status");
		bytes = field_u64(line, "bytes");
		if (status == 200) {
			ck_assert_msg(who->got == H_BIG_BYTES,
				      "logged complete, the client got %llu "
				      "bytes: '%s'",
				      (unsigned long long)who->got, line);
			complete++;
			continue;
		}
		h_field(line, "error", error, sizeof(error));
		ck_assert_msg(status == 503 && strcmp(error, "shutdown") == 0,
			      "want status=200 or status=503 error=shutdown: "
			      "'%s'",
			      line);
		ck_assert_msg(who->got < H_BIG_BYTES,
			      "logged cut, the client got the whole file: '%s'",
			      line);
		ck_assert_msg(bytes == who->got,
			      "logged bytes=%llu, the client got %llu: '%s'",
			      (unsigned long long)bytes,
			      (unsigned long long)who->got, line);
		cut++;
	}
	free(text);
	for (i = 0; i < INFLIGHT; i++)
		received += r[i].got;
	ck_assert_msg(lines == INFLIGHT && count_lines(d.transfer_log, mine) ==
						   INFLIGHT,
		      "%d transfer log lines for big.bin, want %d", lines,
		      INFLIGHT);
	if (cut > 0) {
		const char *p_cut;

		ck_assert_msg(h_wait_line(d.diag_log, 0, diag, sizeof(diag),
					  cut_line) == 0,
			      "%d transfers cut, and no 'shutdown: cut' line: "
			      "%s",
			      cut, h_diag_tail(&d));
		p_cut = strstr(diag, "shutdown: cut ");
		said_cut = (unsigned)strtoul(p_cut + strlen("shutdown: cut "),
					     NULL, 10);
		ck_assert_msg(said_cut == (unsigned)cut,
			      "%d transfers logged cut, the diagnostic log "
			      "says: '%s'",
			      cut, diag);
	}
	fprintf(stderr,
		"check_faults: sigterm_inflight_%s: exit 0 %lld ms after "
		"SIGTERM (shutdown_timeout 2 s); %d complete, %d cut (the "
		"diagnostic log says %u); the clients got %.1f MiB on "
		"average\n",
		d.mode, (long long)(p.exit_at - sent), complete, cut,
		said_cut, (double)received / INFLIGHT / MIB);
	for (i = 0; i < INFLIGHT; i++)
		close(r[i].fd);
	munmap((void *)p.file, H_BIG_BYTES);
}
END_TEST

/* ---- SIGHUP with a broken configuration -------------------------------- */

/* Expects LIMIT connections served and the next refused with 429, then
 * closes them all and waits for the daemon to let go of them. */
static void expect_per_client(int limit)
{
	int fds[8], fd, i;

	ck_assert(limit < (int)COUNT(fds));
	for (i = 0; i < limit; i++) {
		fds[i] = connect_ok();
		get_whole_ok(fds[i], "one.bin", 1, "a connection within "
						   "per_client");
	}
	fd = connect_ok();
	expect_refusal(fd, 429, "one connection over per_client");
	close(fd);
	for (i = 0; i < limit; i++)
		close(fds[i]);
	expect_fd_count(d.fd_baseline, 5000, "after the per_client check");
}

START_TEST(sighup_broken_config)
{
	const char *const broken[] = { "]: error: ", d.config, NULL };
	static const char *const reloaded[] = { "configuration reloaded",
						NULL };
	char line[1024], *p, colon = 0;
	unsigned at_line = 0, at_col = 0;
	int fd;

	restart("limits.per_client=2");
	d.allowed_error = "reload";
	/* Line 3 opens a flow mapping that never closes. */
	ck_assert_int_eq(h_write_text(d.config,
				      "listen: [\"127.0.0.1:0\"]\n"
				      "limits:\n"
				      "  per_client: {4\n"),
			 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  broken) == 0,
		      "no error line naming %s after SIGHUP: %s", d.config,
		      h_diag_tail(&d));
	p = strstr(line, d.config) + strlen(d.config);
	ck_assert_msg(sscanf(p, ":%u:%u%c", &at_line, &at_col, &colon) == 3 &&
			      colon == ':' && at_line >= 1 && at_col >= 1,
		      "no FILE:LINE:COL in '%s'", line);
	fprintf(stderr, "check_faults: sighup_broken_config: %s\n", line);

	/* Still serving, with the old settings. */
	fd = connect_ok();
	get_whole_ok(fd, "small.bin", H_SMALL_BYTES, "after the broken reload");
	close(fd);
	expect_fd_count(d.fd_baseline, 5000, "after the broken reload");
	expect_per_client(2);

	/* Fixed, with a new limit that applies at once. */
	ck_assert_int_eq(h_write_config(&d, "limits.per_client=4"), 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  reloaded) == 0,
		      "no 'configuration reloaded' after the fix: %s",
		      h_diag_tail(&d));
	expect_per_client(4);
}
END_TEST

/* ---- the transfer log deleted, then SIGHUP ----------------------------- */

/* What the fetching thread shares with the test. */
struct fetcher {
	int port;
	const char *path;    /* sub/b.bin in the test root */
	char expect[3000];   /* its bytes */
	atomic_int done;     /* requests answered and checked */
	atomic_bool stop;    /* set by the test: finish up */
	int min_requests;    /* do at least this many */
	char error[256];     /* empty when all went well */
	atomic_bool finished;
};

#define FETCH_CONNS 4

/* The fetching thread: GETs sub/b.bin round-robin over a few connections
 * and checks every reply, until told to stop (and at least MIN_REQUESTS
 * are done), a reply is wrong, or 60 s have passed. No assertions here:
 * they belong to the test's own thread. */
static void *fetch_loop(void *arg)
{
	struct fetcher *f = arg;
	int64_t deadline = h_now_ms() + 60000;
	int fds[FETCH_CONNS], i;

	for (i = 0; i < FETCH_CONNS; i++)
		fds[i] = -1;
	for (i = 0; i < FETCH_CONNS; i++) {
		fds[i] = h_connect(f->port, LINE_MS);
		if (fds[i] < 0) {
			snprintf(f->error, sizeof(f->error), "connect: %s",
				 h_strerror(fds[i]));
			goto out;
		}
	}
	for (i = 0;; i++) {
		char line[128], body[sizeof(f->expect)];
		int fd = fds[i % FETCH_CONNS], rc;
		size_t got = 0;
		ssize_t n;

		if ((atomic_load(&f->stop) && i >= f->min_requests) ||
		    h_now_ms() >= deadline)
			break;
		rc = h_send_str(fd, "GET /sub/b.bin\n", LINE_MS);
		n = rc == 0 ? h_recv_line(fd, line, sizeof(line), LINE_MS) : rc;
		if (n <= 0 || strcmp(line, "OK 3000 3000 1764000000") != 0) {
			snprintf(f->error, sizeof(f->error),
				 "request %d: reply '%s'", i,
				 n > 0 ? line : h_strerror((int)n));
			break;
		}
		rc = h_recv_n(fd, body, sizeof(body), &got, LINE_MS);
		if (rc != 0 || memcmp(body, f->expect, sizeof(body)) != 0) {
			snprintf(f->error, sizeof(f->error),
				 "request %d: %s after %zu bytes", i,
				 rc != 0 ? h_strerror(rc) : "bytes differ",
				 got);
			break;
		}
		atomic_fetch_add(&f->done, 1);
	}
out:
	for (i = 0; i < FETCH_CONNS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	atomic_store(&f->finished, true);
	return NULL;
}

/* Lines with every needle in what FD holds, read from its start. */
static int count_lines_fd(int fd, const char *const needles[])
{
	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap);
	int n;

	ck_assert(text != NULL);
	for (;;) {
		ssize_t r;

		if (cap - len < 2) {
			text = realloc(text, cap *= 2);
			ck_assert(text != NULL);
		}
		r = pread(fd, text + len, cap - len - 1, (off_t)len);
		ck_assert_msg(r >= 0, "reading the deleted log: %s",
			      strerror(errno));
		if (r == 0)
			break;
		len += (size_t)r;
	}
	text[len] = '\0';
	n = count_in_text(text, needles);
	free(text);
	return n;
}

/* Waits up to TIMEOUT_MS for the fetcher's count to reach WANT. */
static void wait_fetched(struct fetcher *f, int want, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;

	while (atomic_load(&f->done) < want && !atomic_load(&f->finished)) {
		ck_assert_msg(h_now_ms() < deadline,
			      "%d requests answered in %d ms, want %d",
			      atomic_load(&f->done), timeout_ms, want);
		pause_briefly();
	}
	ck_assert_msg(f->error[0] == '\0', "fetching: %s", f->error);
}

START_TEST(translog_deleted)
{
	static const char *const mine[] = { "path=/sub/b.bin ", "status=200",
					    NULL };
	struct fetcher *f = calloc(1, sizeof(*f));
	char *data = NULL;
	size_t len;
	pthread_t thread;
	struct timespec until;
	int old_fd, at_reopen, total, in_old, in_new;

	ck_assert(f != NULL);
	ck_assert_int_eq(h_read_file(h_root_path(&d, "sub/b.bin"), &data,
				     &len),
			 0);
	ck_assert_int_eq(len, sizeof(f->expect));
	memcpy(f->expect, data, len);
	free(data);
	f->port = d.port;
	f->min_requests = 200;
	ck_assert_int_eq(pthread_create(&thread, NULL, fetch_loop, f), 0);

	/* Mid-way: keep the old file open to count it later, delete it, and
	 * have the daemon reopen its path. */
	wait_fetched(f, 60, 10000);
	old_fd = open(d.transfer_log, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(old_fd >= 0, "%s: %s", d.transfer_log, strerror(errno));
	ck_assert_int_eq(unlink(d.transfer_log), 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	ck_assert_msg(h_wait_exists(d.transfer_log, LINE_MS) == 0,
		      "no new transfer log 5 s after SIGHUP: %s",
		      h_diag_tail(&d));
	at_reopen = atomic_load(&f->done);
	wait_fetched(f, at_reopen + 60, 10000);
	atomic_store(&f->stop, true);

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	ck_assert_msg(pthread_timedjoin_np(thread, NULL, &until) == 0,
		      "the fetching thread did not end within 30 s");
	ck_assert_msg(f->error[0] == '\0', "fetching: %s", f->error);
	total = atomic_load(&f->done);

	/* The last line may trail the last reply a little. */
	in_old = count_lines_fd(old_fd, mine);
	in_new = wait_lines(d.transfer_log, mine, total - in_old, LINE_MS);
	close(old_fd);
	fprintf(stderr,
		"check_faults: translog_deleted_%s: %d requests: %d lines in "
		"the deleted log, %d in the new one (%d done at the reopen)\n",
		d.mode, total, in_old, in_new, at_reopen);
	ck_assert_msg(in_old + in_new == total,
		      "%d requests, %d lines in the deleted log + %d in the "
		      "new one",
		      total, in_old, in_new);
	/* 60 were answered before the delete and 60 after the new file
	 * was there; a line may trail its reply, so allow some slack. */
	ck_assert_msg(in_old >= 50 && in_new >= 50,
		      "lines on both sides of the reopen: %d before, %d after",
		      in_old, in_new);
	free(f);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

/* VmHWM (peak resident) of PID in KiB; -1 when unreadable. */
static long hwm_kib(pid_t pid)
{
	char path[64], *text = NULL, *p;
	size_t len;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (h_read_file(path, &text, &len) < 0)
		return -1;
	p = strstr(text, "\nVmHWM:");
	if (p != NULL && sscanf(p, "\nVmHWM: %ld kB", &kib) != 1)
		kib = -1;
	free(text);
	return kib;
}

#define WIDE_DIR_ENTRIES 100000

/* LIST of a directory of 100,000 entries: every line arrives, in order,
 * and ferryd's peak memory grows by a few MiB at most (the listing is
 * formatted a chunk at a time as it is sent; its text, 3 MB, is never held
 * whole). */
START_TEST(list_wide_directory)
{
	char dir[4096], name[64], line[256], *body = NULL, want[64];
	long hwm_before, hwm_after;
	size_t len = 0, i, off;
	unsigned long long length;
	int fd, dir_fd, rc;

	snprintf(dir, sizeof(dir), "%s", h_root_path(&d, "wide"));
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dir_fd, 0);
	for (i = 0; i < WIDE_DIR_ENTRIES; i++) {
		int f;

		snprintf(name, sizeof(name), "entry-%06zu.bin", i);
		f = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		ck_assert_msg(f >= 0, "%s: %s", name, strerror(errno));
		close(f);
	}
	close(dir_fd);
	hwm_before = hwm_kib(d.pid);
	ck_assert_msg(hwm_before > 0, "cannot read ferryd's VmHWM");
	fd = h_connect(d.port, 2000);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(h_send_str(fd, "LIST /wide\n", 2000), 0);
	ck_assert_int_gt(h_recv_line(fd, line, sizeof(line), 30000), 0);
	ck_assert_msg(sscanf(line, "OK %llu", &length) == 1, "got %s", line);
	body = malloc((size_t)length + 1);
	ck_assert_ptr_nonnull(body);
	rc = h_recv_n(fd, body, (size_t)length, &len, 30000);
	ck_assert_msg(rc == 0, "receiving the listing: %s (%zu of %llu bytes)",
		      h_strerror(rc), len, length);
	close(fd);
	ck_assert_uint_eq(len, length);
	/* Every entry, sorted, as "f 0 MTIME entry-NNNNNN.bin". */
	for (i = 0, off = 0; i < WIDE_DIR_ENTRIES; i++) {
		const char *lf = memchr(body + off, '\n', len - off);
		const char *sp;

		ck_assert_msg(lf != NULL, "line %zu missing", i);
		sp = memrchr(body + off, ' ', (size_t)(lf - (body + off)));
		ck_assert_ptr_nonnull(sp);
		snprintf(want, sizeof(want), "entry-%06zu.bin", i);
		ck_assert_msg(strncmp(body + off, "f 0 ", 4) == 0 &&
				      (size_t)(lf - sp - 1) == strlen(want) &&
				      memcmp(sp + 1, want, strlen(want)) == 0,
			      "line %zu: %.*s", i, (int)(lf - (body + off)),
			      body + off);
		off = (size_t)(lf - body) + 1;
	}
	ck_assert_uint_eq(off, len);
	free(body);
	hwm_after = hwm_kib(d.pid);
	fprintf(stderr, "list_wide_directory: %d entries, %llu bytes; ferryd "
			"VmHWM %ld -> %ld KiB\n",
		WIDE_DIR_ENTRIES, length, hwm_before, hwm_after);
	/* Measured: +5.7 MiB (records and their index); the whole text held
	 * as well, as before, was +9.4 MiB. Sanitizers' redzones add more. */
	ck_assert_msg(hwm_after - hwm_before <= 8 * 1024,
		      "ferryd's peak grew by %ld KiB for a LIST of %d entries",
		      hwm_after - hwm_before, WIDE_DIR_ENTRIES);
	h_rm_rf(dir);
}
END_TEST

struct test {
	const char *name;
	const TTest *const *fn; /* START_TEST makes a pointer variable */
	int timeout_s;
	bool both_modes;        /* a transfer case: once per mode */
	bool own_daemon;        /* starts ferryd itself */
};

static const struct test tests[] = {
	{ "hangups", &hangups, 60, true, false },
	{ "stalled_readers", &stalled_readers, 90, true, false },
	{ "fd_exhaustion", &fd_exhaustion, 60, false, true },
	{ "limits", &limits, 60, false, false },
	{ "sigterm_inflight", &sigterm_inflight, 60, true, false },
	{ "sighup_broken_config", &sighup_broken_config, 30, false, false },
	{ "translog_deleted", &translog_deleted, 60, true, false },
	{ "list_wide_directory", &list_wide_directory, 120, false, false },
};

/* Names must outlive the runner; they are freed with it. */
static char *names[2 * COUNT(tests)];
static size_t names_used;

static Suite *faults_suite(void)
{
	static const char *const modes[] = { "sendfile", "buffered" };
	Suite *s = suite_create("faults");
	size_t m, i;

	for (i = 0; i < COUNT(tests); i++) {
		for (m = 0; m < (tests[i].both_modes ? COUNT(modes) : 1); m++) {
			TCase *tc;
			char *name;

			if (!tests[i].both_modes)
				name = strdup(tests[i].name);
			else if (asprintf(&name, "%s_%s", tests[i].name,
					  modes[m]) < 0)
				name = NULL;
			if (name == NULL)
				abort();
			names[names_used++] = name;
			tc = tcase_create(name);
			tcase_set_tags(tc, modes[m]);
			tcase_add_checked_fixture(tc,
						  tests[i].own_daemon ? setup_dir
						  : m == 0 ? setup_sendfile
							   : setup_buffered,
						  teardown_daemon);
			tcase_set_timeout(tc, tests[i].timeout_s);
			tcase_add_test(tc, *tests[i].fn);
			suite_add_tcase(s, tc);
		}
	}
	return s;
}

int main(void)
{
	size_t i;
	int status;

	status = fixture_run("check_faults", faults_suite());
	for (i = 0; i < names_used; i++)
		free(names[i]);
	return status;
}
