/* Integration tests for metrics.listen: ferryd started with the metrics
 * on, known requests made, the scrape's counters and buckets asserted
 * exactly, its text checked by `promtool check metrics` (skipped, saying
 * so, where promtool is missing) and by the format checker below; reloads,
 * workers, and hostile scrapers.
 *
 *   CK_RUN_CASE=metrics_counts ./tests/daemon/check_metrics */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000
#define STOP_MS 15000
/* ferryd closes a scrape connection after 5 s, whatever it does. */
#define SCRAPE_LIFE_MS 5000
#define SCRAPE_MAX (256 * 1024)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct h_daemon d;
static int metrics_port;
/* limits.per_client is 1: each test connection must be gone before the
 * next. */
static bool one_per_client;
/* workers is 2: a client has its bytes before the worker that sent them
 * has counted the request, and the scrape may be answered by the other.
 * Only setup_workers sets it, and teardown clears it. */
static bool two_workers;

/* ---- the daemon ---------------------------------------------------------- */

/* The port of the "metrics on http://127.0.0.1:PORT/metrics" line. */
static int read_metrics_port(void)
{
	static const char *const needles[] = { "metrics on http://127.0.0.1:",
					       NULL };
	char line[512];
	const char *p;
	int rc = h_wait_line(d.diag_log, LINE_MS, line, sizeof line, needles);

	ck_assert_msg(rc == 0, "no metrics line: %s", h_diag_tail(&d));
	p = strstr(line, needles[0]) + strlen(needles[0]);
	return atoi(p);
}

static void start_with(const char *overrides)
{
	char msg[4096];
	int rc;

	rc = h_setup(&d, "sendfile");
	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	rc = h_write_config(&d, overrides);
	ck_assert_msg(rc == 0, "config: %s", h_strerror(rc));
	rc = h_start(&d, msg, sizeof msg);
	ck_assert_msg(rc == 0, "starting ferryd: %s", msg);
	metrics_port = read_metrics_port();
}

static void setup(void)
{
	one_per_client = true;
	start_with("metrics.listen=127.0.0.1:0;limits.per_client=1");
}

static void setup_hostile(void)
{
	one_per_client = false;
	start_with("metrics.listen=127.0.0.1:0");
}

static void setup_workers(void)
{
	one_per_client = false;
	two_workers = true;
	start_with("metrics.listen=127.0.0.1:0;workers=2");
}

static void teardown(void)
{
	two_workers = false;
	fixture_teardown(&d, STOP_MS);
}

/* Waits up to TIMEOUT_MS for the daemon's fd count to drop to TARGET. */
static void await_fds(int target, int timeout_ms)
{
	int n = h_wait_fd_count(d.pid, target, timeout_ms);

	ck_assert_msg(n == target, "ferryd holds %d fds, want %d: %s", n, target,
		      h_fd_list(d.pid));
}

static char *scrape(void);

/* After a client closed: the daemon has closed its side and forgotten the
 * connection (its descriptor goes first; the per_client count and the
 * connections gauge a loop turn later), so the next connection is not
 * refused by limits.per_client (1 in most tests), and the request it
 * served is counted (a transfer is logged and counted before its
 * connection can close), whichever worker served it. */
static void settle(void)
{
	int64_t deadline = h_now_ms() + LINE_MS;
	bool gone = false;
	char *text;

	if (!one_per_client && !two_workers)
		return;
	if (one_per_client)
		await_fds(d.fd_baseline, LINE_MS);
	while (!gone && h_now_ms() < deadline) {
		text = scrape();
		gone = strstr(text, "\nferry_connections_open 0\n") != NULL;
		free(text);
		if (!gone)
			usleep(2000);
	}
	ck_assert_msg(gone, "a closed connection is still counted");
}

/* GET /REL of SIZE bytes on a connection of its own, bytes compared. */
static void fetch_ok(const char *rel, uint64_t size)
{
	char req[300], want[128], line[512];
	uint64_t got = 0;
	ssize_t n;
	int fd, rc;

	fd = h_connect(d.port, LINE_MS);
	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	snprintf(req, sizeof req, "GET /%s\n", rel);
	ck_assert_int_eq(h_send_str(fd, req, LINE_MS), 0);
	n = h_recv_line(fd, line, sizeof line, LINE_MS);
	ck_assert_msg(n > 0, "GET /%s: no reply line", rel);
	snprintf(want, sizeof want, "OK %llu %llu %d",
		 (unsigned long long)size, (unsigned long long)size, H_MTIME);
	ck_assert_str_eq(line, want);
	rc = h_recv_compare(fd, h_root_path(&d, rel), 0, size, 0, &got,
			    LINE_MS);
	ck_assert_msg(rc == 0, "GET /%s: %s after %llu bytes", rel,
		      h_strerror(rc), (unsigned long long)got);
	close(fd);
	settle();
}

/* Sends REQ on a connection of its own and expects the one line WANT. */
static void request_line(const char *req, const char *want)
{
	char line[512];
	ssize_t n;
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	ck_assert_int_eq(h_send_str(fd, req, LINE_MS), 0);
	n = h_recv_line(fd, line, sizeof line, LINE_MS);
	ck_assert_msg(n > 0, "%s: no reply line", req);
	ck_assert_str_eq(line, want);
	close(fd);
	settle();
}

/* LIST / on a connection of its own, the whole listing read. */
static void list_root(void)
{
	char line[512], *text;
	unsigned long long length;
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	ck_assert_int_eq(h_send_str(fd, "LIST /\n", LINE_MS), 0);
	ck_assert_int_gt(h_recv_line(fd, line, sizeof line, LINE_MS), 0);
	ck_assert_msg(sscanf(line, "OK %llu", &length) == 1, "%s", line);
	text = malloc(length + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(h_recv_n(fd, text, length, NULL, LINE_MS), 0);
	free(text);
	close(fd);
	settle();
}

/* Sends the HTTP request REQ to the metrics port; the whole answer. */
static char *http(const char *req)
{
	char *resp = NULL;
	size_t len = 0;
	int rc = h_request(metrics_port, req, &resp, &len, LINE_MS);

	ck_assert_msg(rc == 0, "%s: %s", req, h_strerror(rc));
	return resp;
}

/* GET /metrics: the body, after the status and Content-Type are checked. */
static char *scrape(void)
{
	char *resp = http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	char *body = strstr(resp, "\r\n\r\n");
	char *copy;

	ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
	ck_assert_msg(strstr(resp, "\r\nContent-Type: text/plain; "
				   "version=0.0.4") != NULL, "%s", resp);
	ck_assert_ptr_nonnull(body);
	copy = strdup(body + 4);
	ck_assert_ptr_nonnull(copy);
	free(resp);
	return copy;
}

/* ---- the format checker ---------------------------------------------------- */

/* One sample of a scrape: "name{labels}" as written, and its value. */
struct sample {
	char key[256];
	char family[128];
	char type[16];
	double value;
};

struct exposition {
	struct sample s[512];
	size_t n;
};

static bool name_ok(const char *p, size_t len, bool metric)
{
	size_t i;

	if (len == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' ||
			  (metric && p[0] == ':')))
		return false;
	for (i = 1; i < len; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '_' ||
		      (metric && p[i] == ':')))
			return false;
	return true;
}

static size_t name_len(const char *p)
{
	size_t n = 0;

	while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == ':')
		n++;
	return n;
}

/* Checks a label set at P ("{a="x",b="y"}"); the length, or 0 if bad. On
 * return *LE holds the value of label "le", if any. */
static size_t labels_ok(const char *p, char *le, size_t le_cap)
{
	const char *start = p;

	le[0] = '\0';
	if (*p != '{')
		return 0;
	p++;
	while (*p != '}') {
		size_t n = name_len(p), v = 0;
		bool is_le = n == 2 && strncmp(p, "le", 2) == 0;

		if (!name_ok(p, n, false) || p[n] != '=' || p[n + 1] != '"')
			return 0;
		p += n + 2;
		while (*p != '"') {
			if (*p == '\0' || *p == '\n')
				return 0;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return 0;
				p++;
			}
			if (is_le && v + 1 < le_cap)
				le[v++] = *p;
			p++;
		}
		if (is_le)
			le[v] = '\0';
		p++;
		if (*p == ',')
			p++;
		else if (*p != '}')
			return 0;
	}
	return (size_t)(p + 1 - start);
}

static double parse_value(const char *text)
{
	char *end;
	double v;

	if (strcmp(text, "+Inf") == 0)
		return INFINITY;
	v = strtod(text, &end);
	ck_assert_msg(end != text && *end == '\0', "bad value '%s'", text);
	return v;
}

/* Parses TEXT by the rules of the text format 0.0.4, failing the test at the
 * first one broken: HELP then TYPE before a family's samples, metric and
 * label names, label quoting, histograms' buckets (le ascending, ending
 * with +Inf, cumulative) with _sum and _count, _count equal to +Inf. */
static void parse_exposition(const char *text, struct exposition *e)
{
	char family[128] = "", type[16] = "", helped[128] = "";
	double last_le = -INFINITY, last_bucket = 0, inf_bucket = -1;
	bool saw_sum = false;
	const char *line = text;

	e->n = 0;
	ck_assert_msg(text[0] != '\0' && text[strlen(text) - 1] == '\n',
		      "the exposition must end with a newline");
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		size_t len = (size_t)(eol - line), n;
		char buf[512], le[64];

		ck_assert_msg(len < sizeof buf, "line too long");
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = eol + 1;
		if (strncmp(buf, "# HELP ", 7) == 0) {
			n = name_len(buf + 7);
			ck_assert_msg(name_ok(buf + 7, n, true) &&
					      buf[7 + n] == ' ',
				      "bad HELP: %s", buf);
			snprintf(helped, sizeof helped, "%.*s", (int)n, buf + 7);
			continue;
		}
		if (strncmp(buf, "# TYPE ", 7) == 0) {
			/* The previous histogram must have been whole. */
			if (strcmp(type, "histogram") == 0)
				ck_assert_msg(saw_sum && inf_bucket >= 0,
					      "%s: no _sum or +Inf", family);
			n = name_len(buf + 7);
			snprintf(family, sizeof family, "%.*s", (int)n, buf + 7);
			ck_assert_msg(strcmp(family, helped) == 0,
				      "TYPE %s without its HELP first", family);
			snprintf(type, sizeof type, "%s", buf + 8 + n);
			ck_assert_msg(strcmp(type, "counter") == 0 ||
					      strcmp(type, "gauge") == 0 ||
					      strcmp(type, "histogram") == 0,
				      "bad TYPE: %s", buf);
			last_le = -INFINITY;
			last_bucket = 0;
			inf_bucket = -1;
			saw_sum = false;
			continue;
		}
		ck_assert_msg(buf[0] != '#' && buf[0] != '\0',
			      "stray line: '%s'", buf);
		n = name_len(buf);
		ck_assert_msg(name_ok(buf, n, true), "bad name: %s", buf);
		ck_assert_msg(family[0] != '\0' &&
				      strncmp(buf, family, strlen(family)) == 0,
			      "sample before its TYPE: %s", buf);
		{
			const char *suffix = buf + strlen(family);
			size_t l = 0;
			struct sample *s = &e->s[e->n];

			le[0] = '\0';
			if (buf[n] == '{') {
				l = labels_ok(buf + n, le, sizeof le);
				ck_assert_msg(l > 0, "bad labels: %s", buf);
			}
			ck_assert_msg(buf[n + l] == ' ', "no value: %s", buf);
			ck_assert_uint_lt(e->n, COUNT(e->s));
			snprintf(s->key, sizeof s->key, "%.*s", (int)(n + l), buf);
			snprintf(s->family, sizeof s->family, "%s", family);
			snprintf(s->type, sizeof s->type, "%s", type);
			s->value = parse_value(buf + n + l + 1);
			e->n++;
			if (strcmp(type, "histogram") != 0) {
				ck_assert_msg((size_t)(suffix - buf) == n,
					      "%s is not %s", buf, family);
				continue;
			}
			if (strncmp(suffix, "_bucket{", 8) == 0) {
				double bound = parse_value(le);

				ck_assert_msg(le[0] != '\0', "no le: %s", buf);
				ck_assert_msg(bound > last_le,
					      "le not ascending: %s", buf);
				ck_assert_msg(s->value >= last_bucket,
					      "buckets not cumulative: %s", buf);
				last_le = bound;
				last_bucket = s->value;
				if (isinf(bound))
					inf_bucket = s->value;
			} else if (strncmp(suffix, "_sum ", 5) == 0) {
				saw_sum = true;
			} else if (strncmp(suffix, "_count ", 7) == 0) {
				ck_assert_msg(inf_bucket >= 0,
					      "%s: _count before +Inf", family);
				ck_assert_msg(s->value == inf_bucket,
					      "%s: _count %g, +Inf bucket %g",
					      family, s->value, inf_bucket);
			} else {
				ck_abort_msg("not of histogram %s: %s", family,
					     buf);
			}
		}
	}
}

/* The value of the sample KEY ("name{labels}"), or -1 when absent. */
static double value_of(const struct exposition *e, const char *key)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->s[i].key, key) == 0)
			return e->s[i].value;
	return -1;
}

/* How much the sample KEY grew from BASE to E (absent counts as 0). */
static double delta(const struct exposition *base, const struct exposition *e,
		    const char *key)
{
	double before = value_of(base, key);

	return value_of(e, key) - (before < 0 ? 0 : before);
}

/* Every counter and histogram sample of A is in B, and not smaller. */
static void non_decreasing(const struct exposition *a,
			   const struct exposition *b)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (strcmp(a->s[i].type, "gauge") == 0)
			continue;
		ck_assert_msg(value_of(b, a->s[i].key) >= a->s[i].value,
			      "%s went from %g to %g", a->s[i].key,
			      a->s[i].value, value_of(b, a->s[i].key));
	}
}

/* `promtool check metrics` with TEXT on its stdin must exit 0. */
static void promtool_check(const char *text)
{
	FILE *p;
	int status;

	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("check_metrics: promtool not found: skipping its "
		       "check (the format checker still runs)\n");
		return;
	}
	p = popen("exec timeout 20 promtool check metrics", "w");
	ck_assert_ptr_nonnull(p);
	fputs(text, p);
	status = pclose(p);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "promtool check metrics failed (status 0x%x) on:\n%s",
		      status, text);
}

/* Scrapes, checks the text both ways, and parses it into E. */
static void scrape_checked(struct exposition *e)
{
	char *text = scrape();

	parse_exposition(text, e);
	if (getenv("METRICS_DUMP") != NULL)
		fputs(text, stderr);
	promtool_check(text);
	free(text);
}

/* ---- tests --------------------------------------------------------------- */

/* Known requests, exact counters and buckets. */
START_TEST(metrics_counts)
{
	static struct exposition base, a, b, c;
	char line[512];
	int held, fd, i;
	ssize_t n;

	/* h_start's own probe may have been counted: from here on. */
	scrape_checked(&base);
	for (i = 0; i < 3; i++)
		fetch_ok("small.bin", H_SMALL_BYTES);
	fetch_ok("one.bin", 1);
	request_line("GET /missing.bin\n", "ERR 404 not found");
	/* limits.per_client is 1: a second connection is refused 429. */
	held = h_connect(d.port, LINE_MS);
	ck_assert_int_ge(held, 0);
	ck_assert_int_eq(h_send_str(held, "GET /one.bin\n", LINE_MS), 0);
	n = h_recv_line(held, line, sizeof line, LINE_MS);
	ck_assert_msg(n > 0, "no answer on the held connection");
	fd = h_connect(d.port, LINE_MS);
	ck_assert_int_ge(fd, 0);
	n = h_recv_line(fd, line, sizeof line, LINE_MS);
	ck_assert_msg(n > 0, "no ERR line for the second connection");
	ck_assert_str_eq(line, "ERR 429 too many connections from this client");
	close(fd);

	scrape_checked(&a);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"200\",mode=\"sendfile\"}"),
			    5);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"404\",mode=\"sendfile\"}"),
			    1);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"429\",mode=\"-\"}"),
			    1);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"429\"}"), 1);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"503\"}"), 0);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_sent_bytes_total{mode=\"sendfile\"}"),
			    3 * H_SMALL_BYTES + 2);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_sent_bytes_total{mode=\"buffered\"}"),
			    0);
	ck_assert_double_eq(delta(&base, &a, "ferry_transfers_in_flight"), 0);
	ck_assert_double_eq(delta(&base, &a, "ferry_send_timeouts_total"), 0);
	ck_assert_double_eq(delta(&base, &a, "ferry_accept_pauses_total"), 0);
	/* Six transfers logged; five sent an OK line. On loopback each
	 * takes well under the top bucket. */
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_transfer_duration_seconds_count"),
			    6);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_transfer_duration_seconds_bucket{le=\"300\"}"),
			    6);
	ck_assert_double_eq(delta(&base, &a, "ferry_first_byte_seconds_count"), 5);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_first_byte_seconds_bucket{le=\"5\"}"),
			    5);
	ck_assert_double_eq(value_of(&a, "ferry_build_info{version=\""
				     PACKAGE_VERSION "\"}"),
			    1);
	ck_assert_msg(value_of(&a, "ferry_start_time_seconds") > 1.5e9,
		      "start time %g", value_of(&a, "ferry_start_time_seconds"));
	/* The held connection is open (the refused one may be closing). */
	ck_assert_double_ge(value_of(&a, "ferry_connections_open"), 1);
	close(held);
	settle();

	list_root();
	scrape_checked(&b);
	non_decreasing(&a, &b);
	ck_assert_double_eq(delta(&base, &b,
				  "ferry_requests_total{status=\"200\",mode=\"list\"}"),
			    1);
	ck_assert_double_gt(
		value_of(&b, "ferry_sent_bytes_total{mode=\"list\"}"), 0);

	/* A health check is counted as one, and left out of the
	 * histograms. */
	request_line("PING\n", "OK");
	scrape_checked(&c);
	ck_assert_double_eq(delta(&b, &c,
				  "ferry_requests_total{status=\"200\",mode=\"ping\"}"),
			    1);
	ck_assert_double_eq(delta(&b, &c,
				  "ferry_transfer_duration_seconds_count"),
			    0);
	ck_assert_double_eq(delta(&b, &c, "ferry_first_byte_seconds_count"), 0);
}
END_TEST

/* Other paths, other methods, HEAD, a bad request line. */
START_TEST(metrics_http)
{
	char *r;

	r = http("GET / HTTP/1.1\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.1 404 ", 13) == 0, "%s", r);
	free(r);
	r = http("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.1 405 ", 13) == 0, "%s", r);
	ck_assert_msg(strstr(r, "\r\nAllow: GET, HEAD\r\n") != NULL, "%s", r);
	free(r);
	r = http("HEAD /metrics HTTP/1.0\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.1 200 ", 13) == 0, "%s", r);
	ck_assert_msg(strstr(r, "\r\n\r\n")[4] == '\0', "HEAD has a body");
	free(r);
	r = http("GET /metrics?x=1 HTTP/1.0\n\n");
	ck_assert_msg(strncmp(r, "HTTP/1.1 200 ", 13) == 0, "%s", r);
	free(r);
	r = http("hello\r\n\r\n");
	ck_assert_msg(strncmp(r, "HTTP/1.1 400 ", 13) == 0, "%s", r);
	free(r);
	/* The metrics are not on the file port. */
	request_line("GET /metrics HTTP/1.1\n", "ERR 400 bad request");
}
END_TEST

/* SIGHUP swaps the server's state; the counters stay. */
START_TEST(metrics_reload)
{
	static const char *const reloaded[] = { "configuration reloaded",
						NULL };
	static struct exposition a, b;
	char line[512];
	int i;

	for (i = 0; i < 4; i++)
		fetch_ok("small.bin", H_SMALL_BYTES);
	scrape_checked(&a);
	ck_assert_int_eq(h_write_config(&d, "metrics.listen=127.0.0.1:0;"
					    "limits.per_client=1;"
					    "transfer.mode=buffered"),
			 0);
	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	ck_assert_int_eq(h_wait_line(d.diag_log, LINE_MS, line, sizeof line,
				     reloaded),
			 0);
	fetch_ok("small.bin", H_SMALL_BYTES);
	scrape_checked(&b);
	non_decreasing(&a, &b);
	ck_assert_double_eq(
		value_of(&b, "ferry_requests_total{status=\"200\",mode=\"sendfile\"}"),
		4);
	ck_assert_double_eq(
		value_of(&b, "ferry_requests_total{status=\"200\",mode=\"buffered\"}"),
		1);
	ck_assert_double_eq(
		value_of(&b, "ferry_sent_bytes_total{mode=\"buffered\"}"),
		H_SMALL_BYTES);
}
END_TEST

/* The pid in a "ferryd[PID]: info: listening on" line of the log, the
 * NTH (from 0). */
static pid_t worker_pid(int nth)
{
	char *log = NULL, *p;
	size_t len;
	int seen = 0;

	ck_assert_int_eq(h_read_file(d.diag_log, &log, &len), 0);
	for (p = log; (p = strstr(p, "]: info: listening on ")) != NULL; p++) {
		char *open = p;

		while (open > log && *open != '[')
			open--;
		if (seen++ == nth) {
			pid_t pid = (pid_t)atoi(open + 1);

			free(log);
			return pid;
		}
	}
	free(log);
	return 0;
}

/* With two workers, one scrape adds up both; a killed worker's successor
 * goes on from its counts. */
START_TEST(metrics_workers)
{
	static struct exposition a, b;
	int64_t deadline = h_now_ms() + LINE_MS;
	pid_t victim;
	int i;

	for (i = 0; i < 40; i++)
		fetch_ok("one.bin", 1);
	scrape_checked(&a);
	ck_assert_double_eq(
		value_of(&a, "ferry_requests_total{status=\"200\",mode=\"sendfile\"}"),
		40);
	ck_assert_double_eq(
		value_of(&a, "ferry_sent_bytes_total{mode=\"sendfile\"}"), 40);

	/* Both workers logged their listener; kill the one that is not
	 * serving the metrics as well as worker 0: either way, counts stay. */
	victim = worker_pid(1);
	ck_assert_int_gt(victim, 0);
	ck_assert_int_eq(kill(victim, SIGKILL), 0);
	while (worker_pid(2) == 0) {
		ck_assert_msg(h_now_ms() < deadline, "no worker restarted: %s",
			      h_diag_tail(&d));
		usleep(20000);
	}
	d.allowed_error = "restarting it";
	for (i = 0; i < 10; i++)
		fetch_ok("one.bin", 1);
	scrape_checked(&b);
	non_decreasing(&a, &b);
	ck_assert_double_eq(
		value_of(&b, "ferry_requests_total{status=\"200\",mode=\"sendfile\"}"),
		50);
}
END_TEST

/* A scraper that asks and never reads, and one that never finishes
 * asking: each is closed after the connection's life, and the file port
 * serves meanwhile. */
START_TEST(metrics_stalled)
{
	int64_t start = h_now_ms();
	int quiet, slow, rc;

	quiet = h_connect(metrics_port, LINE_MS);
	ck_assert_int_ge(quiet, 0);
	ck_assert_int_eq(h_send_str(quiet, "GET /metrics HTTP/1.1\r\n\r\n",
				    LINE_MS),
			 0);
	slow = h_connect(metrics_port, LINE_MS);
	ck_assert_int_ge(slow, 0);
	fetch_ok("small.bin", H_SMALL_BYTES);
	free(scrape());
	/* Byte by byte, never reaching the blank line. */
	while (h_now_ms() - start < SCRAPE_LIFE_MS + 2000) {
		rc = h_send(slow, "X", 1, LINE_MS);
		if (rc != 0)
			break;
		fetch_ok("one.bin", 1);
		usleep(200000);
	}
	ck_assert_msg(h_now_ms() - start < SCRAPE_LIFE_MS + 2000,
		      "the byte-by-byte scraper was never cut off");
	ck_assert_int_eq(h_expect_eof(slow, LINE_MS), 0);
	/* The quiet one is gone too, though it never read. */
	await_fds(d.fd_baseline, LINE_MS);
	close(quiet);
	close(slow);
}
END_TEST

/* 1 MiB of headers: 431 (or a close), in bounded memory. */
START_TEST(metrics_huge_request)
{
	size_t size = 1024 * 1024, i;
	char *req = malloc(size + 64);
	char *resp = NULL;
	size_t len = 0;
	int fd, rc;

	ck_assert_ptr_nonnull(req);
	strcpy(req, "GET /metrics HTTP/1.1\r\n");
	for (i = strlen(req); i < size; i++)
		req[i] = (i % 64 == 63) ? '\n' : 'a';
	fd = h_connect(metrics_port, LINE_MS);
	ck_assert_int_ge(fd, 0);
	/* The daemon answers at 8 KiB and then drops what comes: the send
	 * goes through, or fails when it closes first. */
	rc = h_send(fd, req, size, SCRAPE_LIFE_MS + 2000);
	ck_assert_msg(rc == 0 || rc == -EPIPE || rc == -ECONNRESET,
		      "sending: %s", h_strerror(rc));
	shutdown(fd, SHUT_WR);
	rc = h_recv_all(fd, &resp, &len, SCRAPE_MAX, SCRAPE_LIFE_MS + 2000);
	ck_assert_msg(rc == 0 || rc == -ECONNRESET, "%s", h_strerror(rc));
	ck_assert_msg(len == 0 || strncmp(resp, "HTTP/1.1 431 ", 13) == 0,
		      "%s", resp);
	free(resp);
	free(req);
	close(fd);
	fetch_ok("small.bin", H_SMALL_BYTES);
	free(scrape());
	await_fds(d.fd_baseline, LINE_MS);
}
END_TEST

/* Many scrape connections: a few are kept, the rest closed at once; files
 * are served throughout. */
START_TEST(metrics_many)
{
	int fds[32], i, closed = 0;

	for (i = 0; i < (int)COUNT(fds); i++) {
		fds[i] = h_connect(metrics_port, LINE_MS);
		ck_assert_int_ge(fds[i], 0);
	}
	fetch_ok("small.bin", H_SMALL_BYTES);
	for (i = 0; i < (int)COUNT(fds); i++)
		if (h_expect_eof(fds[i], 200) == 0)
			closed++;
	/* Four are kept (those accepted first). */
	ck_assert_int_eq(closed, (int)COUNT(fds) - 4);
	ck_assert_int_le(h_fd_count(d.pid), d.fd_baseline + 4);
	for (i = 0; i < (int)COUNT(fds); i++)
		close(fds[i]);
	await_fds(d.fd_baseline, LINE_MS);
	free(scrape());
}
END_TEST

/* ---- refusals, send timeouts, accept pauses -------------------------------- */

/* The first line on FD, within LINE_MS. */
static void recv_line_ok(int fd, char *line, size_t cap, const char *what)
{
	ssize_t n = h_recv_line(fd, line, cap, LINE_MS);

	ck_assert_msg(n > 0, "%s: no reply line: %s", what,
		      n == 0 ? "connection closed" : h_strerror((int)n));
}

/* limits.connections is 1: with one connection held, the next is refused
 * with ERR 503, counted once as a refusal and once as a request. */
START_TEST(metrics_refused_503)
{
	static struct exposition base, a;
	char line[512];
	int held, fd, rc;

	/* h_start's probe must be forgotten, or it takes the one slot. */
	settle();
	scrape_checked(&base);
	held = h_connect(d.port, LINE_MS);
	ck_assert_msg(held >= 0, "connect: %s", h_strerror(held));
	ck_assert_int_eq(h_send_str(held, "PING\n", LINE_MS), 0);
	recv_line_ok(held, line, sizeof line, "PING on the held connection");
	ck_assert_str_eq(line, "OK");

	fd = h_connect(d.port, LINE_MS);
	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	recv_line_ok(fd, line, sizeof line, "the connection over the limit");
	ck_assert_msg(strncmp(line, "ERR 503 ", 8) == 0,
		      "over limits.connections: '%s', want ERR 503", line);
	rc = h_expect_eof(fd, LINE_MS);
	ck_assert_msg(rc == 0, "after ERR 503: %s", h_strerror(rc));
	close(fd);

	scrape_checked(&a);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"503\"}"), 1);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"429\"}"), 0);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"503\",mode=\"-\"}"),
			    1);
	/* The PING on the held connection, and nothing else served. */
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"200\",mode=\"ping\"}"),
			    1);
	ck_assert_double_eq(delta(&base, &a, "ferry_send_timeouts_total"), 0);
	close(held);
	settle();
	/* The slot is free again: served, and no more refusals counted. */
	fetch_ok("one.bin", 1);
	scrape_checked(&base);
	ck_assert_double_eq(delta(&a, &base, "ferry_refusals_total{code=\"503\"}"), 0);
}
END_TEST

/* A client asks for the 100 MiB file and never reads: closed after
 * limits.send_timeout (1 s), counted once. */
START_TEST(metrics_send_timeout)
{
	static const char *const needles[] = { "path=/big.bin", "status=408",
					       "error=send-timeout", NULL };
	static struct exposition base, a;
	char line[1024], *rest = NULL;
	size_t len = 0;
	int fd, rc;
	int64_t sent;

	scrape_checked(&base);
	fd = h_connect(d.port, LINE_MS);
	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	ck_assert_int_eq(h_send_str(fd, "GET /big.bin\n", LINE_MS), 0);
	sent = h_now_ms();
	/* 1 s without progress, then the check's own period: well within
	 * 10 s. */
	rc = h_wait_line(d.transfer_log, 10000, line, sizeof line, needles);
	ck_assert_msg(rc == 0, "no status=408 send-timeout line: %s",
		      h_diag_tail(&d));
	ck_assert_msg(h_now_ms() - sent >= 900,
		      "send timeout after %lld ms, limit 1 s",
		      (long long)(h_now_ms() - sent));
	/* The server let go of the socket while the client still held it
	 * (the default socket buffers hold far less than 100 MiB). */
	await_fds(d.fd_baseline, LINE_MS);
	/* What the kernel had queued, then the end (or a reset), never the
	 * whole file. */
	rc = h_recv_all(fd, &rest, &len, H_BIG_BYTES + 1024, 10000);
	ck_assert_msg(rc == 0 || rc == -ECONNRESET,
		      "reading after the send timeout: %s after %zu bytes; "
		      "ferryd holds %s", h_strerror(rc), len, h_fd_list(d.pid));
	ck_assert_msg(len < H_BIG_BYTES, "the stalled client got %zu bytes",
		      len);
	free(rest);
	close(fd);

	scrape_checked(&a);
	ck_assert_double_eq(delta(&base, &a, "ferry_send_timeouts_total"), 1);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"408\",mode=\"sendfile\"}"),
			    1);
	ck_assert_double_eq(delta(&base, &a, "ferry_transfers_in_flight"), 0);
	ck_assert_double_eq(value_of(&a, "ferry_transfers_in_flight"), 0);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"503\"}"), 0);
}
END_TEST

#define PAUSE_CLIENTS 100

/* What a new connection that sent PING hears within 1 s: 1 for "OK", 0
 * for ERR 503 (the connection closed), -1 for nothing (it waits in the
 * backlog; kept open in *WAITING). */
static int probe_client(int *waiting)
{
	char line[512];
	ssize_t got;
	int fd = h_connect(d.port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	ck_assert_int_eq(h_send_str(fd, "PING\n", LINE_MS), 0);
	got = h_recv_line(fd, line, sizeof line, 1000);
	if (got == -ETIMEDOUT) {
		*waiting = fd;
		return -1;
	}
	ck_assert_msg(got > 0, "PING: %s",
		      got == 0 ? "closed" : h_strerror((int)got));
	if (strcmp(line, "OK") == 0) {
		*waiting = fd;
		return 1;
	}
	ck_assert_msg(strncmp(line, "ERR 503 ", 8) == 0, "PING: '%s'", line);
	close(fd);
	return 0;
}

/* Under RLIMIT_NOFILE 64, idle clients are kept (PING answered) until the
 * descriptor budget is tight and the next one is refused; then each kept
 * client opens the 100 MiB file (a GET it does not read), one more
 * descriptor each, until a new client gets no answer: accepting paused.
 * Nothing is released meanwhile, so it pauses once, counted once. */
START_TEST(metrics_accept_pause)
{
	static struct exposition base, a, b;
	const struct rlimit nofile = { 64, 64 };
	const char *argv[] = { h_ferryd_path(), "-c", d.config, NULL };
	int fds[PAUSE_CLIENTS], n = 0, opened = 0, refused = 0, i, rc, r;
	int waiting = -1;
	char msg[4096], line[512], want[128];

	rc = h_spawn(&d, argv, &nofile);
	ck_assert_msg(rc == 0, "starting ferryd: %s", h_strerror(rc));
	rc = h_await_start(&d, msg, sizeof msg);
	ck_assert_msg(rc == 0, "ferryd under RLIMIT_NOFILE 64: %s", msg);
	metrics_port = read_metrics_port();
	one_per_client = true;
	settle();
	one_per_client = false;
	scrape_checked(&base);
	ck_assert_double_eq(value_of(&base, "ferry_accept_pauses_total"), 0);

	/* Idle clients until the first refusal. */
	for (;;) {
		ck_assert_msg(n < PAUSE_CLIENTS, "%d clients kept under "
						 "RLIMIT_NOFILE 64", n);
		r = probe_client(&fds[n]);
		if (r == 1) {
			n++;
			continue;
		}
		ck_assert_msg(r == 0, "accepting paused after %d idle clients, "
				      "before any refusal", n);
		refused++;
		break;
	}
	/* Then one more descriptor at a time, a refused probe after each. */
	snprintf(want, sizeof want, "OK %llu %llu %d",
		 (unsigned long long)H_BIG_BYTES,
		 (unsigned long long)H_BIG_BYTES, H_MTIME);
	for (;;) {
		ck_assert_msg(opened < n, "all %d kept clients hold a file and "
					  "accepting never paused",
			      n);
		ck_assert_int_eq(h_send_str(fds[opened], "GET /big.bin\n",
					    LINE_MS),
				 0);
		recv_line_ok(fds[opened], line, sizeof line, "GET /big.bin");
		ck_assert_str_eq(line, want);
		opened++;
		r = probe_client(&waiting);
		ck_assert_msg(r != 1, "a client was kept after a refusal");
		if (r < 0)
			break;
		refused++;
	}
	/* The waiting one goes before accepting resumes: whatever comes
	 * after cannot take the budget back to its end. */
	close(waiting);

	scrape_checked(&a);
	ck_assert_double_eq(delta(&base, &a, "ferry_accept_pauses_total"), 1);
	ck_assert_double_eq(delta(&base, &a, "ferry_refusals_total{code=\"503\"}"),
			    refused);
	ck_assert_double_eq(delta(&base, &a,
				  "ferry_requests_total{status=\"200\",mode=\"ping\"}"),
			    n);
	ck_assert_double_eq(value_of(&a, "ferry_transfers_in_flight"), opened);

	for (i = 0; i < n; i++)
		close(fds[i]);
	await_fds(d.fd_baseline, LINE_MS);
	/* Accepting again, and still one pause. */
	fetch_ok("small.bin", H_SMALL_BYTES);
	scrape_checked(&b);
	ck_assert_double_eq(delta(&base, &b, "ferry_accept_pauses_total"), 1);
	fprintf(stderr, "check_metrics: metrics_accept_pause: %d idle clients "
			"kept, %d refused, paused after %d opened a file\n",
		n, refused, opened);
}
END_TEST

static void setup_one_connection(void)
{
	one_per_client = true;
	start_with("metrics.listen=127.0.0.1:0;limits.connections=1");
}

static void setup_send_timeout(void)
{
	one_per_client = false;
	start_with("metrics.listen=127.0.0.1:0;limits.send_timeout=1s");
}

/* The test dir and config only: metrics_accept_pause starts ferryd itself,
 * under its own open file limit. */
static void setup_pause(void)
{
	int rc;

	one_per_client = false;
	rc = h_setup(&d, "sendfile");
	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	/* Limits far above what 64 descriptors allow: the budget decides. */
	rc = h_write_config(&d, "metrics.listen=127.0.0.1:0;"
				"limits.connections=1000;"
				"limits.per_client=1000;"
				"limits.request_timeout=60s");
	ck_assert_msg(rc == 0, "config: %s", h_strerror(rc));
}

static const struct fixture_test tests[] = {
	{ "metrics_counts", &metrics_counts, 60 },
	{ "metrics_http", &metrics_http, 30 },
	{ "metrics_reload", &metrics_reload, 30 },
};

static const struct fixture_test hostile_tests[] = {
	{ "metrics_stalled", &metrics_stalled, 30 },
	{ "metrics_huge_request", &metrics_huge_request, 30 },
	{ "metrics_many", &metrics_many, 30 },
};

static const struct fixture_test worker_tests[] = {
	{ "metrics_workers", &metrics_workers, 60 },
};

static const struct fixture_test refusal_tests[] = {
	{ "metrics_refused_503", &metrics_refused_503, 30 },
};

static const struct fixture_test timeout_tests[] = {
	{ "metrics_send_timeout", &metrics_send_timeout, 30 },
};

static const struct fixture_test pause_tests[] = {
	{ "metrics_accept_pause", &metrics_accept_pause, 30 },
};

int main(void)
{
	Suite *s = suite_create("metrics");

	fixture_add_tests(s, "sendfile", setup, teardown, tests, COUNT(tests));
	fixture_add_tests(s, "sendfile", setup_hostile, teardown, hostile_tests,
			  COUNT(hostile_tests));
	fixture_add_tests(s, "sendfile", setup_workers, teardown, worker_tests,
			  COUNT(worker_tests));
	fixture_add_tests(s, "sendfile", setup_one_connection, teardown,
			  refusal_tests, COUNT(refusal_tests));
	fixture_add_tests(s, "sendfile", setup_send_timeout, teardown,
			  timeout_tests, COUNT(timeout_tests));
	fixture_add_tests(s, "sendfile", setup_pause, teardown, pause_tests,
			  COUNT(pause_tests));
	return fixture_run("check_metrics", s);
}
