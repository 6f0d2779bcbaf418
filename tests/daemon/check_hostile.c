/* Integration tests: hostile clients and hostile files, against the real
 * ferryd on port 0 over loopback.
 *
 * Each case does what a client or the served tree should not, and asserts
 * what the protocol promises: the offender gets its ERR line (or the
 * close), everyone else is still served byte for byte, and the transfer log
 * says what happened. The checked fixture adds the rest after every test:
 * the daemon is alive, its fd count is back at its baseline, it stops
 * cleanly on SIGTERM, and its diagnostic log holds no unexpected error.
 *
 * Cases that send file bytes run once per transfer mode, as TCases named
 * "<test>_<mode>"; the cases about request lines alone run in sendfile mode
 * only:
 *
 *   CK_RUN_CASE=truncated_buffered ./tests/daemon/check_hostile
 *   CK_INCLUDE_TAGS=buffered ./tests/daemon/check_hostile
 *
 * A case this machine cannot run (too few descriptors, mknod without root)
 * passes after saying "SKIP" on stderr. Figures worth a look (throughput
 * under load, the daemon's memory and CPU time) go to stderr as well; only
 * generous bounds on them are asserted. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000  /* a reply line, a log line */
#define BIG_MS 20000  /* 100 MiB, however loaded the machine */
#define STOP_MS 15000 /* SIGTERM to exit, idle daemon */
#define MIB (1024ULL * 1024)
#define LARGEST "9223372036854775807" /* 2^63 - 1, the largest number */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct h_daemon d;
/* Written into every file outside the root by make_outside(): no reply may
 * ever hold it. Empty while a test has no such file. */
static char marker[80];

/* ---- fixture ----------------------------------------------------------- */

static void setup_mode(const char *mode)
{
	int rc = h_setup(&d, mode);

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	marker[0] = '\0';
}

static void setup_sendfile(void)
{
	setup_mode("sendfile");
}

static void setup_buffered(void)
{
	setup_mode("buffered");
}

static void teardown_daemon(void)
{
	fixture_teardown(&d, STOP_MS);
}

/* Starts the test's daemon with the harness's config and OVERRIDES (NULL
 * for none). Tests start it themselves, after preparing the root. */
static void start_daemon(const char *overrides)
{
	char msg[4096];
	int rc = h_write_config(&d, overrides);

	ck_assert_msg(rc == 0, "config '%s': %s",
		      overrides != NULL ? overrides : "", h_strerror(rc));
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "starting %s: %s", h_ferryd_path(), msg);
}

/* One line on stderr: a figure of TEST, or why it was skipped. */
__attribute__((format(printf, 2, 3))) static void
report(const char *test, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "check_hostile: %s_%s: ", test, d.mode);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Pauses between two looks at something that has no event to wait on (a
 * log file growing), and for a measuring window. Never to synchronise. */
static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A small PRNG with a seed the failure messages quote. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

static uint64_t fresh_seed(void)
{
	return ((uint64_t)h_now_ms() << 16) ^ (uint64_t)getpid() ^
	       0x9e3779b97f4a7c15ULL;
}

/* ---- client helpers ---------------------------------------------------- */

static bool has_marker(const void *buf, size_t len)
{
	return marker[0] != '\0' &&
	       memmem(buf, len, marker, strlen(marker)) != NULL;
}

static int connect_ok(void)
{
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", d.port,
		      h_strerror(fd));
	return fd;
}

static void send_bytes_ok(int fd, const void *buf, size_t len,
			  const char *what)
{
	int rc = h_send(fd, buf, len, LINE_MS);

	ck_assert_msg(rc == 0, "sending %s: %s", what, h_strerror(rc));
}

static void send_ok(int fd, const char *s)
{
	send_bytes_ok(fd, s, strlen(s), s);
}

/* Receives one reply line, which must not hold the outside marker. */
static void recv_line_ok(int fd, char *line, size_t cap, const char *what)
{
	ssize_t n = h_recv_line(fd, line, cap, LINE_MS);

	ck_assert_msg(n > 0, "%s: no reply line: %s", what,
		      n == 0 ? "connection closed" : h_strerror((int)n));
	ck_assert_msg(!has_marker(line, strlen(line)),
		      "%s: a byte of the file outside the root arrived: '%s'",
		      what, line);
}

/* "ERR CODE REASON", REASON not empty. */
static void expect_err(int fd, int code, const char *what)
{
	char line[8192], prefix[32];
	size_t plen;

	recv_line_ok(fd, line, sizeof(line), what);
	plen = (size_t)snprintf(prefix, sizeof(prefix), "ERR %d ", code);
	ck_assert_msg(strncmp(line, prefix, plen) == 0 && line[plen] != '\0',
		      "%s: got '%.200s', want 'ERR %d <reason>'", what, line,
		      code);
}

static void expect_eof(int fd, const char *what)
{
	int rc = h_expect_eof(fd, LINE_MS);

	ck_assert_msg(rc == 0, "%s: want the server to close: %s", what,
		      h_strerror(rc));
}

/* "OK LENGTH SIZE MTIME" with these numbers exactly. */
static void expect_ok(int fd, uint64_t length, uint64_t size, const char *what)
{
	char line[512], want[128];

	recv_line_ok(fd, line, sizeof(line), what);
	snprintf(want, sizeof(want), "OK %llu %llu %d",
		 (unsigned long long)length, (unsigned long long)size, H_MTIME);
	ck_assert_msg(strcmp(line, want) == 0, "%s: got '%.200s', want '%s'",
		      what, line, want);
}

/* Receives LENGTH bytes that must equal PATH's bytes from OFFSET. */
static void expect_bytes(int fd, const char *path, uint64_t offset,
			 uint64_t length, const char *what)
{
	uint64_t got = 0;
	int rc = h_recv_compare(fd, path, offset, length, 0, &got, BIG_MS);

	ck_assert_msg(rc == 0, "%s: %s after %llu of %llu bytes", what,
		      h_strerror(rc), (unsigned long long)got,
		      (unsigned long long)length);
}

/* Sends REQ and expects REL's bytes [OFFSET, OFFSET + LENGTH) under an OK
 * line that gives SIZE (and the test root's mtime). */
static void get_ok(int fd, const char *req, const char *rel, uint64_t offset,
		   uint64_t length, uint64_t size)
{
	send_ok(fd, req);
	expect_ok(fd, length, size, req);
	expect_bytes(fd, h_root_path(&d, rel), offset, length, req);
}

/* Sends LEN bytes of REQ on a fresh connection and expects the error CODE,
 * then the server closing (with nothing more). */
static void closing_error(const void *req, size_t len, int code,
			  const char *what)
{
	int fd = connect_ok();

	send_bytes_ok(fd, req, len, what);
	expect_err(fd, code, what);
	expect_eof(fd, what);
	close(fd);
}

static void closing_error_str(const char *req, int code)
{
	closing_error(req, strlen(req), code, req);
}

/* Everyone else is still served: a fresh connection fetches small.bin
 * byte for byte. */
static void fetch_small(void)
{
	int fd = connect_ok();

	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
}

/* ---- the transfer log and /proc ---------------------------------------- */

/* Lines of the transfer log that hold every one of NEEDLES. */
static int log_lines(const char *const needles[])
{
	char *text = NULL, *line, *end;
	size_t len;
	int n = 0;

	if (h_read_file(d.transfer_log, &text, &len) < 0)
		return 0;
	for (line = text; (end = strchr(line, '\n')) != NULL; line = end + 1) {
		size_t i;
		bool all = true;

		*end = '\0';
		for (i = 0; needles[i] != NULL && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
	}
	free(text);
	return n;
}

/* The last lines of the transfer log, for failure messages. A static
 * buffer. */
static const char *translog_tail(void)
{
	static char tail[1200];
	char *text = NULL;
	size_t len;

	if (h_read_file(d.transfer_log, &text, &len) < 0)
		return "(no transfer log)";
	snprintf(tail, sizeof(tail), "%s",
		 len < sizeof(tail) ? text : text + len - (sizeof(tail) - 1));
	free(text);
	return tail;
}

/* Expects WANT lines with every one of NEEDLES. A line is written when its
 * transfer ends, which may be a moment after the client has its last byte:
 * so the count may wait (bounded) to reach WANT, but never pass it. */
static void expect_log_lines(const char *const needles[], int want,
			     const char *what)
{
	int64_t deadline = h_now_ms() + LINE_MS;
	int n;

	while ((n = log_lines(needles)) < want && h_now_ms() < deadline)
		pause_ms(10);
	ck_assert_msg(n == want,
		      "%s: %d transfer log line(s) with '%s'%s%s, want %d; "
		      "the log ends:\n%s",
		      what, n, needles[0], needles[1] != NULL ? " and " : "",
		      needles[1] != NULL ? needles[1] : "", want,
		      translog_tail());
}

/* Waits for the transfer log line holding every needle, into LINE. */
static void log_line(char *line, size_t cap, const char *const needles[])
{
	int rc = h_wait_line(d.transfer_log, LINE_MS, line, cap, needles);

	ck_assert_msg(rc == 0, "no transfer log line with '%s' '%s'",
		      needles[0], needles[1] != NULL ? needles[1] : "");
}

static void expect_field(const char *line, const char *key, const char *want)
{
	char value[512];

	ck_assert_msg(h_field(line, key, value, sizeof(value)) == 0,
		      "no %s= in '%s'", key, line);
	ck_assert_msg(strcmp(value, want) == 0, "%s=%s, want %s, in '%s'", key,
		      value, want, line);
}

/* The daemon's resident memory, from VmRSS in /proc/PID/status. */
static long rss_kib(void)
{
	char path[64], *text = NULL, *p;
	size_t len;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d.pid);
	ck_assert_int_eq(h_read_file(path, &text, &len), 0);
	p = strstr(text, "\nVmRSS:");
	ck_assert_msg(p != NULL && sscanf(p + 7, "%ld", &kib) == 1,
		      "no VmRSS in %s", path);
	free(text);
	return kib;
}

/* The daemon's CPU time, user and system, all threads, in clock ticks
 * (fields 14 and 15 of /proc/PID/stat). */
static long long cpu_ticks(void)
{
	char path[64], *text = NULL, *p;
	unsigned long long user = 0, sys = 0;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d.pid);
	ck_assert_int_eq(h_read_file(path, &text, &len), 0);
	/* The command may hold spaces and parentheses; the last ')' ends
	 * it. */
	p = strrchr(text, ')');
	ck_assert_msg(p != NULL &&
			      sscanf(p + 2,
				     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
				     "%*u %llu %llu",
				     &user, &sys) == 2,
		      "cannot read utime and stime from %s", path);
	free(text);
	return (long long)(user + sys);
}

/* ---- files outside the root -------------------------------------------- */

/* Makes TESTDIR/outside, beside the root, with secret.txt holding the
 * marker: the file every escape aims at. Returns the directory. */
static const char *make_outside(void)
{
	static char dir[300];
	char path[400], text[256];

	snprintf(marker, sizeof(marker), "OUTSIDE-THE-ROOT-%d-%lld",
		 (int)getpid(), (long long)h_now_ms());
	snprintf(dir, sizeof(dir), "%s/outside", d.dir);
	ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir,
		      strerror(errno));
	snprintf(path, sizeof(path), "%s/secret.txt", dir);
	snprintf(text, sizeof(text), "%s\nnot for clients\n%s\n", marker,
		 marker);
	ck_assert_int_eq(h_write_text(path, text), 0);
	return dir;
}

/* A symbolic link NAME (beneath the root) to TARGET. */
static void link_ok(const char *target, const char *name)
{
	const char *path = h_root_path(&d, name);

	ck_assert_msg(symlink(target, path) == 0, "symlink %s -> %s: %s", path,
		      target, strerror(errno));
}

/* ---- paths that try to leave the root ---------------------------------- */

START_TEST(escapes)
{
	/* ".." anywhere, spelt out or percent-encoded, is refused before
	 * anything is opened. Most aim at the marker file beside the root. */
	static const char *const get_403[] = {
		"GET ..\n",
		"GET /..\n",
		"GET ../\n",
		"GET ../outside/secret.txt\n",
		"GET /../outside/secret.txt\n",
		"GET /sub/../../outside/secret.txt\n",
		"GET /sub/deeper/../../../outside/secret.txt\n",
		"GET sub/../..\n",
		"GET sub/../../outside/secret.txt\n",
		"GET /sub/..\n",
		"GET /sub/../\n",
		"GET /sub/../small.bin\n", /* even one that stays inside */
		"GET ./../outside/secret.txt\n",
		"GET /./../outside/secret.txt\n",
		"GET ../../../../../../../../etc/passwd\n",
		"GET /%2e%2e/outside/secret.txt\n",
		"GET /%2E%2E%2foutside%2fsecret.txt\n",
		"GET %2e%2e\n",
		"GET /.%2e/outside/secret.txt\n",
		"GET /sub/%2e%2e/%2e%2e/outside/secret.txt\n",
		"GET /../outside/secret.txt 0 10\n",
		"LIST ..\n",
		"LIST /sub/../..\n",
		"LIST %2e%2e\n",
	};
	/* An absolute path is taken beneath the root. */
	static const char *const get_404[] = {
		"GET /etc/passwd\n",
		"GET //etc/passwd\n",
		"GET /outside/secret.txt\n",
		"GET /proc/self/environ\n",
	};
	static const char *const raw_403[] = {
		"..\n",
		"/..\n",
		"../outside/secret.txt\n",
		"/sub/../../outside/secret.txt\n",
		"sub/../..\n",
		"./../outside/secret.txt\n",
		"/sub/..\n",
	};
	/* The raw form takes the line literally: no file has these names. */
	static const char *const raw_404[] = {
		"/%2e%2e/outside/secret.txt\n",
		"%2e%2e\n",
		"%2E%2E%2foutside%2fsecret.txt\n",
		"/etc/passwd\n",
	};
	char req[512];
	const char *outside;
	size_t i;
	int fd, n403 = 0, n404 = 0;

	outside = make_outside();
	start_daemon(NULL);

	fd = connect_ok();
	for (i = 0; i < COUNT(get_403); i++, n403++) {
		send_ok(fd, get_403[i]);
		expect_err(fd, 403, get_403[i]);
	}
	for (i = 0; i < COUNT(get_404); i++, n404++) {
		send_ok(fd, get_404[i]);
		expect_err(fd, 404, get_404[i]);
	}
	/* The marker file's own absolute path. */
	snprintf(req, sizeof(req), "GET %s/secret.txt\n", outside);
	send_ok(fd, req);
	expect_err(fd, 404, req);
	n404++;
	/* None of it closed the connection. */
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);

	for (i = 0; i < COUNT(raw_403); i++, n403++)
		closing_error_str(raw_403[i], 403);
	for (i = 0; i < COUNT(raw_404); i++, n404++)
		closing_error_str(raw_404[i], 404);
	snprintf(req, sizeof(req), "%s/secret.txt\n", outside);
	closing_error_str(req, 404);
	n404++;

	fetch_small();
	expect_log_lines((const char *const[]){ "status=403", NULL }, n403,
			 "the 403s");
	expect_log_lines((const char *const[]){ "status=404", NULL }, n404,
			 "the 404s");
}
END_TEST

START_TEST(symlinks_out)
{
	static const char *const get_403[] = {
		"GET /final_abs\n",
		"GET /final_rel\n",
		"GET /sub/final\n",
		"GET /chain\n",
		"GET /loop\n",
		"GET /dir_abs/secret.txt\n",
		"GET /dir_rel/secret.txt\n",
		"GET /sub/up/outside/secret.txt\n",
		"GET /dir_abs\n",
		"GET /final_abs 0 5\n",
		"LIST /dir_abs\n",
		"LIST /dir_rel\n",
		"LIST /sub/up\n",
	};
	static const char *const raw_403[] = {
		"/final_abs\n",
		"/final_rel\n",
		"/dir_rel/secret.txt\n",
		"/sub/up/outside/secret.txt\n",
	};
	static const char *const leaving[] = {
		"final_abs", "final_rel", "chain", "loop", "dir_abs", "dir_rel",
	};
	char secret[400], line[256], *listing;
	const char *outside;
	unsigned long long n;
	size_t i, got;
	int fd, rc;

	outside = make_outside();
	snprintf(secret, sizeof(secret), "%s/secret.txt", outside);
	/* The last component leaves the root, ... */
	link_ok(secret, "final_abs");
	link_ok("../outside/secret.txt", "final_rel");
	link_ok("../../outside/secret.txt", "sub/final");
	link_ok("final_abs", "chain"); /* through a link that stays inside */
	link_ok("loop", "loop");
	/* ... or a directory on the way does. */
	link_ok(outside, "dir_abs");
	link_ok("../outside", "dir_rel");
	link_ok("../..", "sub/up");
	start_daemon(NULL);

	fd = connect_ok();
	for (i = 0; i < COUNT(get_403); i++) {
		send_ok(fd, get_403[i]);
		expect_err(fd, 403, get_403[i]);
	}
	/* A listing does not show what the links lead to either: an entry
	 * would tell the outside file's size and time. */
	send_ok(fd, "LIST /\n");
	recv_line_ok(fd, line, sizeof(line), "LIST /");
	ck_assert_msg(sscanf(line, "OK %llu", &n) == 1 && n < 65536,
		      "LIST /: got '%s'", line);
	listing = calloc(1, n + 1);
	rc = h_recv_n(fd, listing, n, &got, LINE_MS);
	ck_assert_msg(rc == 0, "LIST /: %s", h_strerror(rc));
	for (i = 0; i < COUNT(leaving); i++) {
		char entry[64];

		snprintf(entry, sizeof(entry), " %s\n", leaving[i]);
		ck_assert_msg(strstr(listing, entry) == NULL,
			      "LIST / shows the link '%s', which leaves the "
			      "root:\n%s",
			      leaving[i], listing);
	}
	free(listing);
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);

	for (i = 0; i < COUNT(raw_403); i++)
		closing_error_str(raw_403[i], 403);

	fetch_small();
	expect_log_lines((const char *const[]){ "status=403", NULL },
			 (int)(COUNT(get_403) + COUNT(raw_403)), "the 403s");
}
END_TEST

/* ---- a symlink swapped between inside and outside, under load ---------- */

#define RACE_CLIENTS 8
#define RACE_REQUESTS 1250 /* per client: 10,000 in all */
#define RACE_MS 30000

/* Keeps replacing the links "swap" and "swapdir" in the root, by rename(2)
 * of freshly made links over them, in turn to a target inside the root and
 * to one outside, until told to stop. */
struct swapper {
	int root_fd;
	const char *file_target[4];
	const char *dir_target[4];
	atomic_bool stop;
	unsigned long swaps;
	int err; /* errno of the first failure, 0 if none */
};

static void *swap_links(void *arg)
{
	struct swapper *s = arg;
	unsigned long i = 0;

	while (!atomic_load(&s->stop)) {
		int k = (int)(i % 4);

		if (symlinkat(s->file_target[k], s->root_fd, ".swap.new") < 0 ||
		    renameat(s->root_fd, ".swap.new", s->root_fd, "swap") < 0 ||
		    symlinkat(s->dir_target[k], s->root_fd, ".swapdir.new") <
			    0 ||
		    renameat(s->root_fd, ".swapdir.new", s->root_fd,
			     "swapdir") < 0) {
			s->err = errno;
			break;
		}
		i++;
	}
	s->swaps = i;
	return NULL;
}

/* One client of the race: pipelines its requests in one write, then reads
 * every answer. It cannot assert (Check's assertions belong to the test's
 * main thread), so it counts, and describes the first wrong answer. */
struct racer {
	int port;
	const char *inside; /* what the inside targets hold */
	int ok, e403, e404;
	char failure[600];
};

static void *race_client(void *arg)
{
	static const char swapdir[] = "GET /swapdir/inside.txt\n";
	struct racer *r = arg;
	int64_t deadline = h_now_ms() + RACE_MS;
	size_t inside_len = strlen(r->inside), used = 0;
	char *reqs = malloc(RACE_REQUESTS * 32), line[512], body[4096];
	int fd, k, rc;

	fd = h_connect(r->port, LINE_MS);
	if (fd < 0 || reqs == NULL) {
		snprintf(r->failure, sizeof(r->failure), "connect: %s",
			 fd < 0 ? h_strerror(fd) : "out of memory");
		goto out;
	}
	/* Both names: the link itself, and a directory link on the way. */
	for (k = 0; k < RACE_REQUESTS; k++)
		used += (size_t)sprintf(reqs + used, "%s",
					k % 2 == 0 ? "GET /swap\n" : swapdir);
	rc = h_send(fd, reqs, used, RACE_MS);
	if (rc < 0) {
		snprintf(r->failure, sizeof(r->failure), "sending: %s",
			 h_strerror(rc));
		goto out;
	}
	for (k = 0; k < RACE_REQUESTS; k++) {
		int left = (int)(deadline - h_now_ms());
		unsigned long long length, size;
		long long mtime;
		ssize_t n;

		n = h_recv_line(fd, line, sizeof(line), left > 0 ? left : 0);
		if (n <= 0) {
			snprintf(r->failure, sizeof(r->failure),
				 "answer %d: no line: %s", k,
				 n == 0 ? "connection closed"
					: h_strerror((int)n));
			goto out;
		}
		if (has_marker(line, strlen(line))) {
			snprintf(r->failure, sizeof(r->failure),
				 "answer %d: the outside file: '%s'", k, line);
			goto out;
		}
		if (strncmp(line, "ERR 403 ", 8) == 0) {
			r->e403++;
			continue;
		}
		if (strncmp(line, "ERR 404 ", 8) == 0) {
			r->e404++;
			continue;
		}
		if (sscanf(line, "OK %llu %llu %lld", &length, &size,
			   &mtime) != 3 ||
		    length > sizeof(body)) {
			snprintf(r->failure, sizeof(r->failure),
				 "answer %d: '%s'", k, line);
			goto out;
		}
		rc = h_recv_n(fd, body, (size_t)length, NULL,
			      left > 0 ? left : 0);
		if (rc != 0 || has_marker(body, (size_t)length) ||
		    length != inside_len || size != inside_len ||
		    memcmp(body, r->inside, inside_len) != 0) {
			snprintf(r->failure, sizeof(r->failure),
				 "answer %d: '%s' then %s '%.*s'%s", k, line,
				 rc != 0 ? h_strerror(rc) : "the bytes",
				 (int)length, body,
				 has_marker(body, (size_t)length)
					 ? " (the outside file!)"
					 : "");
			goto out;
		}
		r->ok++;
	}
out:
	if (fd >= 0)
		close(fd);
	free(reqs);
	return NULL;
}

START_TEST(swap_race)
{
	static const char inside[] = "inside the root: the only bytes ferryd "
				     "may send for /swap\n";
	struct swapper s;
	struct racer r[RACE_CLIENTS];
	pthread_t swapper_thread, client[RACE_CLIENTS];
	char secret[400], inside_path[400];
	const char *outside;
	int64_t start;
	int i, ok = 0, e403 = 0, e404 = 0;

	outside = make_outside();
	snprintf(secret, sizeof(secret), "%s/secret.txt", outside);
	/* The same name inside and outside, so "swapdir/inside.txt" names a
	 * file wherever the link points; outside it holds the marker. */
	snprintf(inside_path, sizeof(inside_path), "%s/inside.txt", outside);
	ck_assert_int_eq(link(secret, inside_path), 0);
	ck_assert_int_eq(h_write_text(h_root_path(&d, "inside.txt"), inside),
			 0);
	ck_assert_int_eq(mkdir(h_root_path(&d, "indir"), 0755), 0);
	ck_assert_int_eq(
		h_write_text(h_root_path(&d, "indir/inside.txt"), inside), 0);
	link_ok("inside.txt", "swap");
	link_ok("indir", "swapdir");

	memset(&s, 0, sizeof(s));
	s.root_fd = open(d.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_msg(s.root_fd >= 0, "open %s: %s", d.root, strerror(errno));
	s.file_target[0] = "inside.txt";
	s.file_target[1] = secret;
	s.file_target[2] = "inside.txt";
	s.file_target[3] = "../outside/secret.txt";
	s.dir_target[0] = "indir";
	s.dir_target[1] = outside;
	s.dir_target[2] = "indir";
	s.dir_target[3] = "../outside";
	atomic_init(&s.stop, false);
	start_daemon(NULL);

	start = h_now_ms();
	ck_assert_int_eq(pthread_create(&swapper_thread, NULL, swap_links, &s),
			 0);
	for (i = 0; i < RACE_CLIENTS; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].port = d.port;
		r[i].inside = inside;
		ck_assert_int_eq(
			pthread_create(&client[i], NULL, race_client, &r[i]),
			0);
	}
	/* Each client gives up by RACE_MS, so these joins end. */
	for (i = 0; i < RACE_CLIENTS; i++)
		pthread_join(client[i], NULL);
	atomic_store(&s.stop, true);
	pthread_join(swapper_thread, NULL);
	close(s.root_fd);

	for (i = 0; i < RACE_CLIENTS; i++) {
		ck_assert_msg(r[i].failure[0] == '\0', "client %d: %s", i,
			      r[i].failure);
		ok += r[i].ok;
		e403 += r[i].e403;
		e404 += r[i].e404;
	}
	report("swap_race",
	       "%d requests in %lld ms during %lu swaps: %d OK (inside "
	       "bytes), %d ERR 403, %d ERR 404, none with the outside marker",
	       RACE_CLIENTS * RACE_REQUESTS, (long long)(h_now_ms() - start),
	       s.swaps, ok, e403, e404);
	ck_assert_msg(s.err == 0, "swapping the links: %s", strerror(s.err));
	ck_assert_int_eq(ok + e403 + e404, RACE_CLIENTS * RACE_REQUESTS);
	/* Both sides of the race were met, or it tested nothing. */
	ck_assert_msg(ok > 0 && e403 > 0,
		      "%d OK and %d 403 in %lu swaps: the race never happened",
		      ok, e403, s.swaps);

	fetch_small();
	expect_log_lines((const char *const[]){ "path=/swap", "status=200",
						NULL },
			 ok, "OKs for /swap*");
	expect_log_lines((const char *const[]){ "path=/swap", "status=403",
						NULL },
			 e403, "403s for /swap*");
	expect_log_lines((const char *const[]){ "path=/swap", "status=404",
						NULL },
			 e404, "404s for /swap*");
}
END_TEST

/* ---- malformed request lines ------------------------------------------- */

struct blob {
	const char *bytes;
	size_t len; /* with the NULs */
	const char *what;
};

#define BLOB(s, what) { s, sizeof(s) - 1, what }

START_TEST(nul_bytes)
{
	static const struct blob bad[] = {
		BLOB("GET /one\0.bin\n", "NUL inside a GET path"),
		BLOB("GET /one.bin\0\n", "NUL at the end of a GET line"),
		BLOB("GET \0/one.bin\n", "NUL first in a GET path"),
		BLOB("GET /small.bin 1\0\n", "NUL in a number"),
		BLOB("LIST /sub\0\n", "NUL in a LIST line"),
		BLOB("/one\0.bin\n", "NUL inside a raw path"),
		BLOB("\0\n", "a lone NUL"),
		BLOB("\0GET /one.bin\n", "NUL before GET"),
	};
	size_t i;

	start_daemon(NULL);
	for (i = 0; i < COUNT(bad); i++)
		closing_error(bad[i].bytes, bad[i].len, 400, bad[i].what);
	fetch_small();
	expect_log_lines((const char *const[]){ "status=400", NULL },
			 (int)COUNT(bad), "the 400s");
}
END_TEST

START_TEST(bad_escapes)
{
	static const char *const bad[] = {
		"GET /a%\n",	  "GET /a%2\n",	   "GET /a%zz\n",
		"GET /a%g0\n",	  "GET /a%0g\n",   "GET /%%41\n",
		"GET /a%00b\n",	  "GET /a%-1\n",   "GET /a%+1\n",
		"GET /a% 1\n",	  "GET /%\n",	   "GET /small.bin%\n",
		"LIST /%z1\n",	  "LIST /sub%2\n",
	};
	size_t i;

	start_daemon(NULL);
	for (i = 0; i < COUNT(bad); i++)
		closing_error_str(bad[i], 400);
	fetch_small();
	expect_log_lines((const char *const[]){ "status=400", NULL },
			 (int)COUNT(bad), "the 400s");
}
END_TEST

START_TEST(bare_cr)
{
	static const char *const bad[] = {
		"GET /one\r.bin\n",
		"GET /one.bin\r\r\n", /* only the CR before the LF goes */
		"GET \r/one.bin\n",
		"GET /one.bin\r 0\n",
		"GET /small.bin 0\r1\n",
		"LIST /sub\r/\n",
	};
	size_t i;
	int fd;

	start_daemon(NULL);
	for (i = 0; i < COUNT(bad); i++)
		closing_error_str(bad[i], 400);
	/* The CR just before the LF is dropped: served. */
	fd = connect_ok();
	get_ok(fd, "GET /one.bin\r\n", "one.bin", 0, 1, 1);
	close(fd);
	fetch_small();
	expect_log_lines((const char *const[]){ "status=400", NULL },
			 (int)COUNT(bad), "the 400s");
}
END_TEST

#define GARBAGE_LINES 40

START_TEST(garbage)
{
	uint64_t seed = fresh_seed(), state = seed;
	char buf[2048], what[96];
	int i;

	start_daemon(NULL);
	for (i = 0; i < GARBAGE_LINES; i++) {
		size_t len = 1 + (size_t)(next_random(&state) % 1500), k;
		int fd;

		for (k = 0; k < len; k++)
			buf[k] = (char)next_random(&state);
		if (i % 4 == 3) {
			/* "GET " and binary bytes, none of them an LF, and
			 * one that a path may never hold: a 400. */
			len += 4;
			memmove(buf + 4, buf, len - 4);
			memcpy(buf, "GET ", 4);
			for (k = 4; k < len; k++)
				if (buf[k] == '\n')
					buf[k] = '\xff';
			buf[4 + (len - 4) / 2] = '\xff';
		} else if (buf[0] == 'G' || buf[0] == 'L') {
			/* A raw-form line, so the answer is one line and a
			 * close whatever follows its first LF. */
			buf[0] = '\x01';
		}
		buf[len] = '\n';
		snprintf(what, sizeof(what),
			 "garbage line %d (%zu bytes, seed %llu)", i, len + 1,
			 (unsigned long long)seed);
		fd = connect_ok();
		send_bytes_ok(fd, buf, len + 1, what);
		/* Which error depends on the bytes: 400 (a NUL, a byte a
		 * GET path may not hold), 403 (a leading dot), 404. */
		recv_line_ok(fd, buf, sizeof(buf), what);
		ck_assert_msg(strncmp(buf, i % 4 == 3 ? "ERR 400" : "ERR 4",
				      i % 4 == 3 ? 7 : 5) == 0 &&
				      strlen(buf) > 8 && buf[7] == ' ',
			      "%s: got '%.100s', want 'ERR %s <reason>'", what,
			      buf, i % 4 == 3 ? "400" : "4xx");
		expect_eof(fd, what);
		close(fd);
	}
	fetch_small();
	expect_log_lines((const char *const[]){ " status=4", NULL },
			 GARBAGE_LINES, "the garbage lines");
}
END_TEST

/* Fills LINE with PREFIX, then FILL bytes up to TOTAL - strlen(SUFFIX),
 * then SUFFIX: a request line of exactly TOTAL bytes. */
static size_t make_line(char *line, const char *prefix, char fill,
			const char *suffix, size_t total)
{
	size_t p = strlen(prefix), s = strlen(suffix);

	ck_assert(p + s <= total);
	memcpy(line, prefix, p);
	memset(line + p, fill, total - p - s);
	memcpy(line + total - s, suffix, s);
	line[total] = '\0';
	return total;
}

START_TEST(line_limits)
{
	char line[4200];
	size_t n, k;
	int fd;

	start_daemon(NULL);
	fd = connect_ok();

	/* 4096 bytes, LF included, is a line: answered for what it names
	 * (here nothing: one component far longer than NAME_MAX), and the
	 * connection stays open. Never 414. */
	n = make_line(line, "GET /", 'a', "\n", 4096);
	send_bytes_ok(fd, line, n, "a 4096-byte GET line");
	expect_err(fd, 404, "a 4096-byte GET line");
	n = make_line(line, "GET /", 'a', "\r\n", 4096);
	send_bytes_ok(fd, line, n, "a 4096-byte GET line ending in CRLF");
	expect_err(fd, 404, "a 4096-byte GET line ending in CRLF");
	/* Many short components. */
	n = make_line(line, "GET /", 'b', "\n", 4096);
	for (k = 100; k < 4090; k += 100)
		line[k] = '/';
	send_bytes_ok(fd, line, n, "a 4096-byte GET line of components");
	expect_err(fd, 404, "a 4096-byte GET line of components");
	/* Percent-encoded: 4096 on the wire, 1364 bytes decoded. */
	n = make_line(line, "GET /", 'a', "\n", 4096);
	for (k = 5; k + 3 <= 4094; k += 3)
		memcpy(line + k, "%61", 3);
	send_bytes_ok(fd, line, n, "a 4096-byte percent-encoded line");
	expect_err(fd, 404, "a 4096-byte percent-encoded line");
	/* And a ".." in one: 403. */
	n = make_line(line, "GET /sub/../", 'c', "\n", 4096);
	send_bytes_ok(fd, line, n, "a 4096-byte GET line with ..");
	expect_err(fd, 403, "a 4096-byte GET line with ..");
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);

	n = make_line(line, "/", 'e', "\n", 4096);
	closing_error(line, n, 404, "a 4096-byte raw line");
	/* One byte more: 414, and the close. */
	n = make_line(line, "GET /", 'a', "\n", 4097);
	closing_error(line, n, 414, "a 4097-byte GET line");
	n = make_line(line, "/", 'e', "\n", 4097);
	closing_error(line, n, 414, "a 4097-byte raw line");

	fetch_small();
	expect_log_lines((const char *const[]){ "status=404", NULL }, 5,
			 "the 404s");
	expect_log_lines((const char *const[]){ "status=403", NULL }, 1,
			 "the 403");
	expect_log_lines((const char *const[]){ "status=414", "path=-", NULL },
			 2, "the 414s");
}
END_TEST

#define HUGE_CLIENTS 8

START_TEST(huge_line)
{
	const size_t n = MIB;
	char *junk = malloc(n + 1), what[64];
	long before, during, after;
	int fds[HUGE_CLIENTS], i, rc;

	ck_assert_ptr_nonnull(junk);
	make_line(junk, "GET /", 'x', "", n);
	start_daemon(NULL);
	fetch_small(); /* the usual allocations, before the baseline */
	before = rss_kib();

	/* Each connection sends 1 MiB with no LF, all of them open at once:
	 * a daemon that kept what it reads would grow by 8 MiB. */
	for (i = 0; i < HUGE_CLIENTS; i++) {
		fds[i] = connect_ok();
		snprintf(what, sizeof(what), "1 MiB without LF, client %d", i);
		rc = h_send(fds[i], junk, n, LINE_MS);
		ck_assert_msg(rc == 0, "%s: %s", what, h_strerror(rc));
	}
	during = rss_kib();
	for (i = 0; i < HUGE_CLIENTS; i++) {
		snprintf(what, sizeof(what), "1 MiB without LF, client %d", i);
		expect_err(fds[i], 414, what);
		expect_eof(fds[i], what);
		close(fds[i]);
	}
	fetch_small();
	after = rss_kib();
	free(junk);
	report("huge_line",
	       "ferryd VmRSS %ld KiB before, %ld KiB with %d x 1 MiB lines "
	       "sent, %ld KiB after",
	       before, during, HUGE_CLIENTS, after);
	ck_assert_msg(during - before <= 4096 && after - before <= 4096,
		      "ferryd grew from %ld KiB to %ld KiB (%ld after) for "
		      "lines it refuses",
		      before, during, after);
	expect_log_lines((const char *const[]){ "status=414", "path=-", NULL },
			 HUGE_CLIENTS, "the 414s");
}
END_TEST

START_TEST(numbers)
{
	static const char *const bad[] = {
		"GET /small.bin +1\n",
		"GET /small.bin -1\n",
		"GET /small.bin 0x10\n",
		"GET /small.bin 1e3\n",
		"GET /small.bin 1.5\n",
		"GET /small.bin 1_000\n",
		"GET /small.bin \xd9\xa1\n", /* ARABIC-INDIC DIGIT ONE */
		"GET /small.bin 123456789012345678901\n",   /* 21 digits */
		"GET /small.bin 000000000000000000001\n",   /* 21, zeros */
		"GET /small.bin 9223372036854775808\n",	    /* 2^63 */
		"GET /small.bin 18446744073709551615\n",    /* 2^64 - 1 */
		"GET /small.bin 18446744073709551616\n",    /* 2^64 */
		"GET /small.bin 0 +1\n",
		"GET /small.bin 0 -1\n",
		"GET /small.bin 0 0x10\n",
		"GET /small.bin 0 1e3\n",
		"GET /small.bin 0 123456789012345678901\n",
		"GET /small.bin 0 9223372036854775808\n",
		"GET /small.bin 0 18446744073709551616\n",
		"GET /small.bin  1\n", /* two spaces */
		"GET /small.bin 1 \n", /* an empty last field */
		"GET /small.bin \n",
		"GET /small.bin 1 2 3\n",
	};
	size_t i;
	int fd;

	start_daemon(NULL);
	for (i = 0; i < COUNT(bad); i++)
		closing_error_str(bad[i], 400);
	/* Twenty digits are allowed, leading zeros and all. */
	fd = connect_ok();
	get_ok(fd, "GET /small.bin 00000000000000000001 00000000000000000002\n",
	       "small.bin", 1, 2, H_SMALL_BYTES);
	close(fd);
	fetch_small();
	expect_log_lines((const char *const[]){ "status=400", NULL },
			 (int)COUNT(bad), "the 400s");
}
END_TEST

START_TEST(overflow)
{
	static const char *const needles[] = { "status=416", "path=/small.bin ",
					       NULL };
	char line[1024];
	int fd;

	start_daemon(NULL);
	fd = connect_ok();
	/* OFFSET + LENGTH overflows 63 bits: OFFSET alone is past the end. */
	send_ok(fd, "GET /small.bin " LARGEST " " LARGEST "\n");
	expect_err(fd, 416, "largest offset and length");
	/* A LENGTH that would overflow with OFFSET is cut to the file. */
	get_ok(fd, "GET /small.bin 1 " LARGEST "\n", "small.bin", 1,
	       H_SMALL_BYTES - 1, H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 102399 " LARGEST "\n", "small.bin", 102399,
	       1, H_SMALL_BYTES);
	get_ok(fd, "GET /small.bin 102400 " LARGEST "\n", "small.bin",
	       H_SMALL_BYTES, 0, H_SMALL_BYTES);
	get_ok(fd, "GET /big.bin 104857000 " LARGEST "\n", "big.bin",
	       104857000, H_BIG_BYTES - 104857000, H_BIG_BYTES);
	send_ok(fd, "GET /empty.bin 1 " LARGEST "\n");
	expect_err(fd, 416, "offset 1 of an empty file, largest length");
	get_ok(fd, "GET /one.bin 0 " LARGEST "\n", "one.bin", 0, 1, 1);
	close(fd);
	fetch_small();
	expect_log_lines((const char *const[]){ "status=416", NULL }, 2,
			 "the 416s");
	log_line(line, sizeof(line), needles);
	expect_field(line, "offset", LARGEST);
}
END_TEST

/* ---- 1,000 slow clients ------------------------------------------------ */

#define SLOW_CLIENTS 1000
#define SLOW_CLOSE_MS 10000 /* all of them answered and closed by then */

/* The slow clients' side: waits on all their sockets at once for the 408
 * and the close. Runs in a thread while the test fetches. */
struct sleeper {
	int fd;
	char got[64];
	size_t len; /* may exceed sizeof(got): the excess is not kept */
	int64_t closed_at; /* 0 while open */
};

struct sleepers {
	struct sleeper *s;
	int n;
	int64_t deadline;
	atomic_bool done;
	int open_left;
};

static void *watch_sleepers(void *arg)
{
	struct sleepers *all = arg;
	struct pollfd *p = calloc((size_t)all->n, sizeof(*p));
	int i, left = all->n;

	if (p == NULL)
		goto out;
	for (i = 0; i < all->n; i++) {
		p[i].fd = all->s[i].fd;
		p[i].events = POLLIN;
	}
	while (left > 0) {
		int64_t now = h_now_ms();
		int r;

		if (now >= all->deadline)
			break;
		r = poll(p, (nfds_t)all->n, (int)(all->deadline - now));
		if (r < 0 && errno != EINTR)
			break;
		for (i = 0; i < all->n && r > 0; i++) {
			struct sleeper *s = &all->s[i];
			char buf[256];
			ssize_t m;

			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			m = recv(p[i].fd, buf, sizeof(buf), 0);
			if (m > 0) {
				size_t keep = sizeof(s->got) - 1 - s->len;

				if (s->len < sizeof(s->got) - 1)
					memcpy(s->got + s->len, buf,
					       (size_t)m < keep ? (size_t)m
								: keep);
				s->len += (size_t)m;
				continue;
			}
			if (m < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			/* EOF, or a reset: the server closed it. */
			s->closed_at = h_now_ms();
			p[i].fd = -1;
			left--;
		}
	}
out:
	free(p);
	all->open_left = left;
	atomic_store(&all->done, true);
	return NULL;
}

START_TEST(slow_clients)
{
	static const char *const needles[] = { "status=408", "path=-", NULL };
	struct sleeper *s = calloc(SLOW_CLIENTS, sizeof(*s));
	struct sleepers all;
	struct rlimit rl;
	pthread_t watcher;
	int64_t sent_at, first = INT64_MAX, last = 0, fetch_ms, all_ms = 0;
	double rate, slowest_rate = 1e9, fastest_rate = 0;
	int i, fetches = 0, during = 0;

	ck_assert_ptr_nonnull(s);
	/* A socket each on both sides, and the daemon inherits the limit. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 2200) {
		report("slow_clients",
		       "SKIP: RLIMIT_NOFILE is %llu, under the 2200 this needs",
		       (unsigned long long)rl.rlim_cur);
		free(s);
		return;
	}
	start_daemon("limits.request_timeout=1s;limits.per_client=1100;"
		     "limits.connections=1200");

	for (i = 0; i < SLOW_CLIENTS; i++) {
		s[i].fd = connect_ok();
		send_ok(s[i].fd, "GET /sm");
	}
	sent_at = h_now_ms();
	memset(&all, 0, sizeof(all));
	all.s = s;
	all.n = SLOW_CLIENTS;
	all.deadline = sent_at + SLOW_CLOSE_MS;
	atomic_init(&all.done, false);
	ck_assert_int_eq(pthread_create(&watcher, NULL, watch_sleepers, &all),
			 0);

	/* Meanwhile a normal client fetches 100 MiB, again and again until
	 * the slow ones are gone, so the fetches overlap their timeouts.
	 * The watcher is done by its deadline, and each fetch is bounded. */
	do {
		int64_t start = h_now_ms();
		int fd = connect_ok();

		get_ok(fd, "GET /big.bin\n", "big.bin", 0, H_BIG_BYTES,
		       H_BIG_BYTES);
		close(fd);
		fetch_ms = h_now_ms() - start;
		all_ms += fetch_ms;
		rate = 100.0 * 1000 / (double)(fetch_ms > 0 ? fetch_ms : 1);
		if (rate < slowest_rate)
			slowest_rate = rate;
		if (rate > fastest_rate)
			fastest_rate = rate;
		fetches++;
		/* A fetch that ended while 408s were still due. */
		during += !atomic_load(&all.done);
	} while (!atomic_load(&all.done));
	pthread_join(watcher, NULL);

	for (i = 0; i < SLOW_CLIENTS; i++) {
		ck_assert_msg(s[i].closed_at > 0,
			      "slow client %d still open %d ms after its "
			      "half line (%d of %d open), got '%.*s'",
			      i, SLOW_CLOSE_MS, all.open_left, SLOW_CLIENTS,
			      (int)s[i].len, s[i].got);
		ck_assert_msg(s[i].len == strlen(s[i].got) &&
				      strncmp(s[i].got, "ERR 408 ", 8) == 0 &&
				      strchr(s[i].got, '\n') ==
					      s[i].got + s[i].len - 1,
			      "slow client %d got '%.*s' (%zu bytes), want "
			      "one 'ERR 408 <reason>' line",
			      i, (int)s[i].len, s[i].got, s[i].len);
		if (s[i].closed_at < first)
			first = s[i].closed_at;
		if (s[i].closed_at > last)
			last = s[i].closed_at;
		close(s[i].fd);
	}
	report("slow_clients",
	       "%d half lines got ERR 408 and were closed %lld to %lld ms "
	       "after the last was sent; meanwhile %d fetches of 100 MiB "
	       "(%d while they were open), %.0f MiB/s overall, %.0f to "
	       "%.0f MiB/s each",
	       SLOW_CLIENTS, (long long)(first - sent_at),
	       (long long)(last - sent_at), fetches, during,
	       100.0 * fetches * 1000 / (double)(all_ms > 0 ? all_ms : 1),
	       slowest_rate, fastest_rate);
	free(s);
	fetch_small();
	expect_log_lines(needles, SLOW_CLIENTS, "the 408s");
}
END_TEST

/* ---- pipelining -------------------------------------------------------- */

#define PIPE_FILES 40
#define PIPE_REQUESTS 1000

struct piped {
	char rel[32];
	int code; /* 200, 404 or 416 */
	uint64_t offset, length, size;
};

START_TEST(pipelined)
{
	static struct piped req[PIPE_REQUESTS];
	struct timespec stamp[2] = { { H_MTIME, 0 }, { H_MTIME, 0 } };
	uint64_t seed = fresh_seed(), state = seed, size[PIPE_FILES];
	char *wire = malloc(PIPE_REQUESTS * 80), what[160];
	size_t used = 0;
	int i, fd, in_p = 0, n404 = 0, n416 = 0, cut = 0;
	int64_t start;

	ck_assert_ptr_nonnull(wire);
	ck_assert_int_eq(mkdir(h_root_path(&d, "p"), 0755), 0);
	for (i = 0; i < PIPE_FILES; i++) {
		const char *path;
		char rel[16];

		/* 0 bytes to about 12 KiB, some a page and a bit. */
		size[i] = i == 0 ? 0 : (uint64_t)(i * 311 + (i % 3) * 4096);
		snprintf(rel, sizeof(rel), "p/f%02d", i);
		path = h_root_path(&d, rel);
		ck_assert_int_eq(
			h_write_random(path, size[i], seed + (uint64_t)i), 0);
		ck_assert_int_eq(utimensat(AT_FDCWD, path, stamp, 0), 0);
	}

	for (i = 0; i < PIPE_REQUESTS; i++) {
		struct piped *r = &req[i];
		uint64_t f = next_random(&state) % (PIPE_FILES + 2);
		uint64_t kind = next_random(&state) % 10;
		uint64_t a = next_random(&state), b = next_random(&state);
		int fields = 1; /* PATH, then OFFSET, then LENGTH */

		r->code = 200;
		if (f == PIPE_FILES) {
			snprintf(r->rel, sizeof(r->rel), "p/none%d", i);
			r->code = 404;
			r->size = 0;
		} else if (f == PIPE_FILES + 1) {
			snprintf(r->rel, sizeof(r->rel), "small.bin");
			r->size = H_SMALL_BYTES;
		} else {
			snprintf(r->rel, sizeof(r->rel), "p/f%02d", (int)f);
			r->size = size[f];
		}
		r->offset = a % (r->size + 1);
		r->length = b % (r->size + 2);
		if (r->code == 404 || kind == 0) { /* the whole file */
			r->offset = 0;
			r->length = r->size;
		} else if (kind == 1) { /* from OFFSET on */
			r->length = r->size - r->offset;
			fields = 2;
		} else if (kind == 2) { /* past the end: 416 */
			r->offset = r->size + 1 + a % 100;
			r->code = 416;
			fields = 2;
		} else {
			fields = 3;
		}
		used += (size_t)snprintf(wire + used, 80, "GET /%s", r->rel);
		if (fields >= 2)
			used += (size_t)snprintf(wire + used, 80, " %llu",
						 (unsigned long long)r->offset);
		if (fields == 3)
			used += (size_t)snprintf(wire + used, 80, " %llu",
						 (unsigned long long)r->length);
		wire[used++] = '\n';
		/* A LENGTH past the end is cut. */
		if (r->code == 200 && r->length > r->size - r->offset) {
			r->length = r->size - r->offset;
			cut++;
		}
		in_p += strncmp(r->rel, "p/", 2) == 0;
		n404 += r->code == 404;
		n416 += r->code == 416;
	}
	start_daemon(NULL);

	fd = connect_ok();
	start = h_now_ms();
	/* All 1,000 in one write. */
	send_bytes_ok(fd, wire, used, "1,000 pipelined GETs");
	for (i = 0; i < PIPE_REQUESTS; i++) {
		struct piped *r = &req[i];

		snprintf(what, sizeof(what),
			 "pipelined answer %d (/%.31s %llu %llu, seed %llu)", i,
			 r->rel, (unsigned long long)r->offset,
			 (unsigned long long)r->length,
			 (unsigned long long)seed);
		if (r->code != 200) {
			expect_err(fd, r->code, what);
			continue;
		}
		expect_ok(fd, r->length, r->size, what);
		expect_bytes(fd, h_root_path(&d, r->rel), r->offset, r->length,
			     what);
	}
	/* Still open, and in step. */
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);
	free(wire);
	report("pipelined",
	       "%d GETs in one write (%zu bytes) answered in order in %lld "
	       "ms: %d OK (%d with LENGTH cut), %d ERR 404, %d ERR 416",
	       PIPE_REQUESTS, used, (long long)(h_now_ms() - start),
	       PIPE_REQUESTS - n404 - n416, cut, n404, n416);
	fetch_small();
	expect_log_lines((const char *const[]){ "path=/p/", NULL }, in_p,
			 "lines for /p/*");
}
END_TEST

/* ---- what is not a regular file ---------------------------------------- */

START_TEST(special_files)
{
	static const char *const names[] = {
		"fifo", "socket", "sub", "locked.bin", "null",
	};
	struct sockaddr_un sa;
	char req[64], what[128], line[256], *listing;
	bool as_root = geteuid() == 0, have_dev = false;
	unsigned long long n;
	size_t i, count, got;
	int fd, us, rc;

	ck_assert_int_eq(mkfifo(h_root_path(&d, "fifo"), 0644), 0);
	us = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(us, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	ck_assert(strlen(h_root_path(&d, "socket")) < sizeof(sa.sun_path));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
		 h_root_path(&d, "socket"));
	ck_assert_msg(bind(us, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "bind %s: %s", sa.sun_path, strerror(errno));
	ck_assert_int_eq(listen(us, 1), 0);
	ck_assert_int_eq(h_write_text(h_root_path(&d, "locked.bin"),
				      "mode 000\n"),
			 0);
	ck_assert_int_eq(chmod(h_root_path(&d, "locked.bin"), 0), 0);
	/* /dev/null's numbers, readable by anyone: the open succeeds, so it
	 * is the type check that must refuse it. */
	if (as_root)
		have_dev = mknod(h_root_path(&d, "null"), S_IFCHR | 0666,
				 makedev(1, 3)) == 0;
	if (!have_dev)
		report("special_files", "SKIP the device node: %s",
		       as_root ? strerror(errno) : "not root");
	count = have_dev ? COUNT(names) : COUNT(names) - 1;

	/* Root reads a mode-000 file regardless (CAP_DAC_OVERRIDE), so as
	 * root the daemon serves as nobody; it opens the root before it
	 * switches, and the standard tree is world-readable (0755 dirs,
	 * 0644 files). */
	start_daemon(as_root ? "user=nobody" : NULL);

	fd = connect_ok();
	for (i = 0; i < count; i++) {
		snprintf(req, sizeof(req), "GET /%s\n", names[i]);
		send_ok(fd, req);
		expect_err(fd, 403, req);
	}
	send_ok(fd, "GET /\n");
	expect_err(fd, 403, "GET / (the root itself)");
	/* Listed are files and directories only. */
	send_ok(fd, "LIST /\n");
	recv_line_ok(fd, line, sizeof(line), "LIST /");
	ck_assert_msg(sscanf(line, "OK %llu", &n) == 1 && n < 65536,
		      "LIST /: got '%s'", line);
	listing = calloc(1, n + 1);
	rc = h_recv_n(fd, listing, n, &got, LINE_MS);
	ck_assert_msg(rc == 0, "LIST /: %s", h_strerror(rc));
	ck_assert_msg(strstr(listing, " fifo\n") == NULL &&
			      strstr(listing, " socket\n") == NULL &&
			      strstr(listing, " null\n") == NULL,
		      "LIST / shows what is neither file nor directory:\n%s",
		      listing);
	free(listing);
	/* The connection is still good. */
	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);

	for (i = 0; i < count; i++) {
		snprintf(req, sizeof(req), "/%s\n", names[i]);
		closing_error_str(req, 403);
	}
	fetch_small();
	for (i = 0; i < count; i++) {
		snprintf(req, sizeof(req), "path=/%s ", names[i]);
		snprintf(what, sizeof(what), "the 403s for /%s", names[i]);
		expect_log_lines((const char *const[]){ req, "status=403",
							NULL },
				 2, what);
	}
	close(us);
}
END_TEST

#define FIFO_CLIENTS 16 /* four times the threadpool */

START_TEST(fifo_flood)
{
	int fds[FIFO_CLIENTS], other, i;
	int64_t start, get_ms, raw_ms;

	ck_assert_int_eq(mkfifo(h_root_path(&d, "fifo"), 0644), 0);
	start_daemon("threads=4");
	for (i = 0; i < FIFO_CLIENTS; i++)
		fds[i] = connect_ok();
	other = connect_ok();

	/* Opening a FIFO does not wait for a writer, so no thread of the
	 * pool is held and the fetch goes through at once. */
	start = h_now_ms();
	for (i = 0; i < FIFO_CLIENTS; i++)
		send_ok(fds[i], "GET /fifo\n");
	get_ok(other, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	get_ms = h_now_ms() - start;
	for (i = 0; i < FIFO_CLIENTS; i++) {
		expect_err(fds[i], 403, "GET /fifo");
		/* Each of them still open. */
		get_ok(fds[i], "GET /one.bin\n", "one.bin", 0, 1, 1);
		close(fds[i]);
	}

	/* The raw form, 16 at once: 403 and the close. */
	for (i = 0; i < FIFO_CLIENTS; i++)
		fds[i] = connect_ok();
	start = h_now_ms();
	for (i = 0; i < FIFO_CLIENTS; i++)
		send_ok(fds[i], "/fifo\n");
	get_ok(other, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	raw_ms = h_now_ms() - start;
	for (i = 0; i < FIFO_CLIENTS; i++) {
		expect_err(fds[i], 403, "/fifo");
		expect_eof(fds[i], "/fifo");
		close(fds[i]);
	}
	close(other);

	report("fifo_flood",
	       "%d FIFO GETs then a 100 KiB fetch: %lld ms; %d raw: %lld ms",
	       FIFO_CLIENTS, (long long)get_ms, FIFO_CLIENTS,
	       (long long)raw_ms);
	ck_assert_msg(get_ms < 1000 && raw_ms < 1000,
		      "a fetch behind %d FIFO requests took %lld ms (GET) and "
		      "%lld ms (raw)",
		      FIFO_CLIENTS, (long long)get_ms, (long long)raw_ms);
	expect_log_lines((const char *const[]){ "path=/fifo ", "status=403",
						NULL },
			 2 * FIFO_CLIENTS, "the 403s for /fifo");
}
END_TEST

/* ---- a file that changes while it is sent ------------------------------ */

#define VICTIM "victim.bin"
#define HEAD_BYTES (4 * MIB) /* read before the file changes */
#define CUT_BYTES (10 * MIB)

/* Copies the shared 100 MiB file to root/victim.bin: the test's own file
 * to change (big.bin is a hard link every test shares), whose original
 * bytes stay in the shared file to compare with. */
static void make_victim(void)
{
	static char buf[1 << 20];
	const char *path = h_root_path(&d, VICTIM);
	int in, out;
	ssize_t n;

	in = open(h_big_path(), O_RDONLY | O_CLOEXEC);
	ck_assert_msg(in >= 0, "open %s: %s", h_big_path(), strerror(errno));
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(out >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

/* Starts GET /victim.bin on a connection with a small receive buffer, so
 * the daemon cannot run far ahead of the reader, and reads the first
 * HEAD_BYTES. The change the test makes next then lands mid-transfer. */
static int victim_fetch_start(void)
{
	char line[256], want[64];
	int fd = connect_ok(), small = 64 * 1024;

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
				    sizeof(small)),
			 0);
	send_ok(fd, "GET /" VICTIM "\n");
	recv_line_ok(fd, line, sizeof(line), "GET /" VICTIM);
	snprintf(want, sizeof(want), "OK %llu %llu ",
		 (unsigned long long)H_BIG_BYTES,
		 (unsigned long long)H_BIG_BYTES);
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0,
		      "GET /" VICTIM ": got '%s', want '%s<mtime>'", line,
		      want);
	expect_bytes(fd, h_big_path(), 0, HEAD_BYTES, "the head of " VICTIM);
	return fd;
}

START_TEST(truncated)
{
	static const char *const needles[] = { "path=/" VICTIM " ",
					       "status=500", NULL };
	char line[1024], want[32];
	uint64_t got = 0, total;
	long long ticks_before, ticks_after;
	int fd, rc;

	make_victim();
	start_daemon(NULL);
	fd = victim_fetch_start();
	ck_assert_int_eq(truncate(h_root_path(&d, VICTIM), CUT_BYTES), 0);
	/* The rest: what the file still holds, then the close. */
	rc = h_recv_compare(fd, h_big_path(), HEAD_BYTES,
			    H_BIG_BYTES - HEAD_BYTES, 0, &got, BIG_MS);
	total = HEAD_BYTES + got;
	ck_assert_msg(rc == H_EOF,
		      "after the cut to %llu bytes: %s, %llu of the announced "
		      "%llu bytes in",
		      (unsigned long long)CUT_BYTES,
		      rc == 0 ? "every announced byte arrived"
			      : h_strerror(rc),
		      (unsigned long long)total,
		      (unsigned long long)H_BIG_BYTES);
	/* Fewer than announced, none past what the file held when it was
	 * read, and not short of the new end either. */
	ck_assert_msg(total >= CUT_BYTES && total < H_BIG_BYTES,
		      "%llu bytes arrived of a file cut to %llu",
		      (unsigned long long)total, (unsigned long long)CUT_BYTES);
	close(fd);

	/* The daemon does not spin on the dead transfer. */
	ticks_before = cpu_ticks();
	pause_ms(1000);
	ticks_after = cpu_ticks();
	report("truncated",
	       "%llu of %llu bytes arrived (cut to %llu); ferryd used %lld "
	       "CPU ticks in the next second",
	       (unsigned long long)total, (unsigned long long)H_BIG_BYTES,
	       (unsigned long long)CUT_BYTES, ticks_after - ticks_before);
	ck_assert_msg(ticks_after - ticks_before < 20,
		      "ferryd used %lld CPU ticks in the second after a "
		      "truncated transfer",
		      ticks_after - ticks_before);

	log_line(line, sizeof(line), needles);
	expect_field(line, "error", "truncated");
	snprintf(want, sizeof(want), "%llu", (unsigned long long)total);
	expect_field(line, "bytes", want);

	/* What is left of the file is served, and so is everyone else. */
	fd = connect_ok();
	send_ok(fd, "GET /" VICTIM "\n");
	recv_line_ok(fd, line, sizeof(line), "GET /" VICTIM " after the cut");
	snprintf(want, sizeof(want), "OK %llu %llu ",
		 (unsigned long long)CUT_BYTES, (unsigned long long)CUT_BYTES);
	ck_assert_msg(strncmp(line, want, strlen(want)) == 0,
		      "after the cut: got '%s', want '%s<mtime>'", line, want);
	expect_bytes(fd, h_big_path(), 0, CUT_BYTES, VICTIM " after the cut");
	close(fd);
	fetch_small();
}
END_TEST

START_TEST(grown)
{
	static const char *const needles[] = { "path=/" VICTIM " ",
					       "status=200", NULL };
	char *tail = malloc(CUT_BYTES), line[1024];
	int fd;

	ck_assert_ptr_nonnull(tail);
	memset(tail, 'Z', CUT_BYTES);
	make_victim();
	start_daemon(NULL);
	fd = victim_fetch_start();
	ck_assert_int_eq(h_write_at(h_root_path(&d, VICTIM), H_BIG_BYTES, tail,
				    CUT_BYTES),
			 0);
	free(tail);
	/* Exactly the announced bytes, the original ones ... */
	expect_bytes(fd, h_big_path(), HEAD_BYTES, H_BIG_BYTES - HEAD_BYTES,
		     "the rest of " VICTIM " after it grew");
	/* ... and not one more: the next answer's line comes next. */
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	close(fd);

	log_line(line, sizeof(line), needles);
	expect_field(line, "bytes", "104857600");
	expect_field(line, "size", "104857600");
	fetch_small();
}
END_TEST

START_TEST(deleted)
{
	static const char *const needles[] = { "path=/" VICTIM " ",
					       "status=200", NULL };
	char line[1024];
	int fd;

	make_victim();
	start_daemon(NULL);
	fd = victim_fetch_start();
	ck_assert_int_eq(unlink(h_root_path(&d, VICTIM)), 0);
	/* The open file outlives its name: all of it arrives. */
	expect_bytes(fd, h_big_path(), HEAD_BYTES, H_BIG_BYTES - HEAD_BYTES,
		     "the rest of " VICTIM " after its unlink");
	get_ok(fd, "GET /one.bin\n", "one.bin", 0, 1, 1);
	send_ok(fd, "GET /" VICTIM "\n");
	expect_err(fd, 404, "GET /" VICTIM " after its unlink");
	close(fd);

	log_line(line, sizeof(line), needles);
	expect_field(line, "bytes", "104857600");
	fetch_small();
}
END_TEST


/* ---- the PROXY protocol ------------------------------------------------ */

#define PROXY_LISTEN                                                          \
	"listen=[{address: \"127.0.0.1:0\", proxy_protocol: true}]"

/* A version 2 header for IP:PORT over TCP/IPv4 into BUF; BODY_LEN is what
 * its length field says (12 or more). Returns the bytes written: 28. */
static size_t proxy_v2(unsigned char *buf, const char *ip, unsigned port,
		       unsigned body_len)
{
	static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a,
					       0x00, 0x0d, 0x0a, 0x51,
					       0x55, 0x49, 0x54, 0x0a };

	memcpy(buf, sig, sizeof sig);
	buf[12] = 0x21;
	buf[13] = 0x11;
	buf[14] = (unsigned char)(body_len >> 8);
	buf[15] = (unsigned char)body_len;
	ck_assert_int_eq(inet_pton(AF_INET, ip, buf + 16), 1);
	ck_assert_int_eq(inet_pton(AF_INET, "127.0.0.1", buf + 20), 1);
	buf[24] = (unsigned char)(port >> 8);
	buf[25] = (unsigned char)port;
	buf[26] = 0;
	buf[27] = 80;
	return 28;
}

/* A fresh connection to the proxy listener that has sent a version 1
 * header for IP:PORT. */
static int proxy_connect(const char *ip, unsigned port)
{
	char hdr[128];
	int fd = connect_ok();

	snprintf(hdr, sizeof hdr, "PROXY TCP4 %s 127.0.0.1 %u 7070\r\n", ip,
		 port);
	send_ok(fd, hdr);
	return fd;
}

/* Everyone else is still served through the proxy listener. */
static void proxy_fetch_small(void)
{
	int fd = proxy_connect("192.0.2.200", 4000);

	get_ok(fd, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	close(fd);
}

/* LEN bytes of REQ, then the end of what this client sends: refused. */
static void proxy_refused(const void *req, size_t len, const char *what)
{
	int fd = connect_ok();

	send_bytes_ok(fd, req, len, what);
	shutdown(fd, SHUT_WR);
	expect_err(fd, 400, what);
	expect_eof(fd, what);
	close(fd);
	proxy_fetch_small();
}

START_TEST(proxy_hostile)
{
	static const char *const bad_v1[] = {
		"GET /small.bin\n", /* no header at all */
		"/small.bin\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 1\r\nGET /small.bin\n",
		"PROXY TCP4 192.0.2.1.5 127.0.0.1 1 2\r\nGET /small.bin\n",
		"PROXY TCP4 ::1 127.0.0.1 1 2\r\nGET /small.bin\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 65536 2\r\nGET /small.bin\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 x 2\r\nGET /small.bin\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\nGET /small.bin\n",
		"PROXY TCP9 192.0.2.1 127.0.0.1 1 2\r\nGET /small.bin\n",
		"PROXY TCP4 192.0.2.1", /* truncated, then EOF */
	};
	static const char *const needles[] = { "status=400",
					       "error=bad-proxy-header", NULL };
	unsigned char v2[64];
	char line[512], long_v1[200];
	const char *ok_hdr = "PROXY TCP4 198.51.100.7 127.0.0.1 5555 7070\r\n"
			     "GET /small.bin\n";
	size_t i, len;
	int64_t t0;
	int fd;

	start_daemon(PROXY_LISTEN ";limits.request_timeout=1s");
	for (i = 0; i < COUNT(bad_v1); i++)
		proxy_refused(bad_v1[i], strlen(bad_v1[i]), bad_v1[i]);

	/* v1 over 107 bytes. */
	snprintf(long_v1, sizeof long_v1, "PROXY UNKNOWN %0*d\r\n", 100, 0);
	proxy_refused(long_v1, strlen(long_v1), "v1 over 107 bytes");

	/* v2: a wrong signature, a length beyond 536, a truncated header. */
	len = proxy_v2(v2, "192.0.2.9", 1234, 12);
	v2[7] ^= 0x20;
	proxy_refused(v2, len, "v2 with a wrong signature");
	len = proxy_v2(v2, "192.0.2.9", 1234, 0xffff);
	proxy_refused(v2, len, "v2 with length 65535");
	len = proxy_v2(v2, "192.0.2.9", 1234, 600);
	proxy_refused(v2, len, "v2 with length 600");
	len = proxy_v2(v2, "192.0.2.9", 1234, 12);
	proxy_refused(v2, 14, "v2 cut after 14 bytes");

	/* A length longer than what arrives, and a header never finished:
	 * closed at request_timeout (1 s). */
	len = proxy_v2(v2, "192.0.2.9", 1234, 100);
	fd = connect_ok();
	t0 = h_now_ms();
	send_bytes_ok(fd, v2, len, "v2 promising 100 bytes");
	expect_err(fd, 408, "v2 promising 100 bytes");
	expect_eof(fd, "v2 promising 100 bytes");
	close(fd);
	ck_assert_msg(h_now_ms() - t0 >= 900, "closed after %lld ms",
		      (long long)(h_now_ms() - t0));
	fd = connect_ok();
	send_ok(fd, "PROXY TCP4 192.0.2.1 127.0.0.1");
	expect_err(fd, 408, "v1 never finished");
	expect_eof(fd, "v1 never finished");
	close(fd);

	/* Byte by byte, header and request: served. */
	fd = connect_ok();
	for (i = 0; ok_hdr[i] != '\0'; i++) {
		send_bytes_ok(fd, ok_hdr + i, 1, "one byte");
		pause_ms(2);
	}
	expect_ok(fd, H_SMALL_BYTES, H_SMALL_BYTES, "sent byte by byte");
	expect_bytes(fd, h_root_path(&d, "small.bin"), 0, H_SMALL_BYTES,
		     "sent byte by byte");
	close(fd);

	/* v2 with the request in the same segment, byte by byte too. */
	len = proxy_v2(v2, "192.0.2.10", 2345, 12);
	memcpy(v2 + len, "PING\n", 5);
	fd = connect_ok();
	for (i = 0; i < len + 5; i++)
		send_bytes_ok(fd, v2 + i, 1, "v2 byte by byte");
	recv_line_ok(fd, line, sizeof line, "PING after v2");
	ck_assert_str_eq(line, "OK");
	close(fd);

	log_line(line, sizeof line, needles);
	expect_field(line, "path", "-");
	proxy_fetch_small();
}
END_TEST

/* On a listener without proxy_protocol a PROXY line is what it always
 * was: a raw-form path, here of no file (404, closed). */
START_TEST(proxy_plain_listener)
{
	start_daemon(NULL);
	closing_error_str("PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n", 404);
	fetch_small();
}
END_TEST

/* The header's address is the client: in the transfer log and for
 * limits.per_client. */
START_TEST(proxy_client_address)
{
	static const char *const needles[] = { "client=203.0.113.5:4001",
					       "path=/small.bin", NULL };
	static const char *const refused[] = { "client=203.0.113.5:4002",
					       "status=429", NULL };
	char line[512];
	int a, b, c;

	start_daemon(PROXY_LISTEN ";limits.per_client=1");
	a = proxy_connect("203.0.113.5", 4001);
	get_ok(a, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	/* Another address: served while A is open. */
	b = proxy_connect("203.0.113.6", 4001);
	get_ok(b, "GET /small.bin\n", "small.bin", 0, H_SMALL_BYTES,
	       H_SMALL_BYTES);
	/* A's address again: over per_client. */
	c = proxy_connect("203.0.113.5", 4002);
	expect_err(c, 429, "the same PROXY address twice");
	expect_eof(c, "the same PROXY address twice");
	close(c);
	close(a);
	close(b);
	log_line(line, sizeof line, needles);
	log_line(line, sizeof line, refused);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

struct test {
	const char *name;
	const TTest *const *fn; /* START_TEST makes a pointer variable */
	int timeout_s;
	bool both_modes; /* sends file bytes: once per transfer mode */
};

static const struct test tests[] = {
	{ "escapes", &escapes, 30, true },
	{ "symlinks_out", &symlinks_out, 30, true },
	{ "swap_race", &swap_race, 60, true },
	{ "nul_bytes", &nul_bytes, 30, false },
	{ "bad_escapes", &bad_escapes, 30, false },
	{ "bare_cr", &bare_cr, 30, false },
	{ "garbage", &garbage, 30, false },
	{ "line_limits", &line_limits, 30, false },
	{ "huge_line", &huge_line, 30, false },
	{ "numbers", &numbers, 30, false },
	{ "overflow", &overflow, 30, true },
	{ "slow_clients", &slow_clients, 90, true },
	{ "pipelined", &pipelined, 60, true },
	{ "special_files", &special_files, 30, true },
	{ "fifo_flood", &fifo_flood, 30, true },
	{ "truncated", &truncated, 60, true },
	{ "grown", &grown, 60, true },
	{ "deleted", &deleted, 60, true },
	{ "proxy_hostile", &proxy_hostile, 60, true },
	{ "proxy_plain_listener", &proxy_plain_listener, 30, false },
	{ "proxy_client_address", &proxy_client_address, 30, true },
};

/* Names must outlive the runner; they are freed with it. */
static char *names[2 * COUNT(tests)];
static size_t names_used;

static Suite *hostile_suite(void)
{
	static const char *const modes[] = { "sendfile", "buffered" };
	Suite *s = suite_create("hostile");
	size_t m, i;

	for (m = 0; m < COUNT(modes); m++) {
		for (i = 0; i < COUNT(tests); i++) {
			TCase *tc;
			char *name;

			if (m > 0 && !tests[i].both_modes)
				continue;
			if (asprintf(&name, "%s_%s", tests[i].name,
				     modes[m]) < 0)
				abort();
			names[names_used++] = name;
			tc = tcase_create(name);
			tcase_set_tags(tc, modes[m]);
			tcase_add_checked_fixture(tc,
						  m == 0 ? setup_sendfile
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

	status = fixture_run("check_hostile", hostile_suite());
	for (i = 0; i < names_used; i++)
		free(names[i]);
	return status;
}
