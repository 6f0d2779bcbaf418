/* Integration tests: ferryd as a service. The real daemon, on loopback,
 * under what a service manager does to it: readiness notification, socket
 * activation, starting as root, log rotation, a low open-file limit, and
 * the sample configurations.
 *
 *   CK_RUN_CASE=logrotate ./tests/daemon/check_service
 *
 * A test that needs what this machine lacks (root, systemd-socket-activate)
 * passes after saying "SKIP" on stderr. The checked fixture makes a test
 * dir with the standard root (harness.c); after the test, a daemon still
 * running must be alive, back at its fd count after startup, and stop
 * cleanly on SIGTERM, and no daemon's log may hold an unexpected error. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/fixture.h"
#include "lib/harness.h"

#define LINE_MS 5000  /* a reply line, a notification, a log line */
#define STOP_MS 15000 /* SIGTERM to exit, idle daemon */
#define SOCKET_ACTIVATE "/usr/bin/systemd-socket-activate"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static struct h_daemon d;

/* ---- fixture ----------------------------------------------------------- */

static void setup_dir(void)
{
	int rc = h_setup(&d, "sendfile");

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
}

static void teardown_service(void)
{
	fixture_teardown(&d, STOP_MS);
}

static void skip(const char *test, const char *why)
{
	fprintf(stderr, "check_service: SKIP %s: %s\n", test, why);
}

/* ---- helpers ----------------------------------------------------------- */

/* Starts ARGV through h_spawn and waits for it to serve. */
static void spawn_ok(const char *const argv[], const struct rlimit *nofile)
{
	char msg[4096];
	int rc = h_spawn(&d, argv, nofile);

	ck_assert_msg(rc == 0, "starting %s: %s", argv[0], h_strerror(rc));
	rc = h_await_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s: %s", argv[0], msg);
}

/* GETs REL, SIZE bytes, from the daemon on PORT over a new connection and
 * compares every byte with the file. */
/* Sends PREFIX (a PROXY header, or "") and "GET /REL" on FD, and expects
 * REL's SIZE bytes under their OK line. Leaves FD open. */
static void get_on(int fd, const char *prefix, const char *rel, uint64_t size)
{
	char req[400], want[128], line[512];
	uint64_t got = 0;
	ssize_t n;
	int rc;

	snprintf(req, sizeof(req), "%sGET /%s\n", prefix, rel);
	rc = h_send_str(fd, req, LINE_MS);
	ck_assert_msg(rc == 0, "sending GET /%s: %s", rel, h_strerror(rc));
	n = h_recv_line(fd, line, sizeof(line), LINE_MS);
	ck_assert_msg(n > 0, "GET /%s: no reply line: %s; %s", rel,
		      n == 0 ? "connection closed" : h_strerror((int)n),
		      h_diag_tail(&d));
	snprintf(want, sizeof(want), "OK %llu %llu %d",
		 (unsigned long long)size, (unsigned long long)size, H_MTIME);
	ck_assert_msg(strcmp(line, want) == 0, "GET /%s: got '%s', want '%s'",
		      rel, line, want);
	rc = h_recv_compare(fd, h_root_path(&d, rel), 0, size, 0, &got,
			    LINE_MS);
	ck_assert_msg(rc == 0, "GET /%s: %s after %llu of %llu bytes", rel,
		      h_strerror(rc), (unsigned long long)got,
		      (unsigned long long)size);
}

static void fetch_ok(int port, const char *rel, uint64_t size)
{
	int fd = h_connect(port, LINE_MS);

	ck_assert_msg(fd >= 0, "connect to 127.0.0.1:%d: %s", port,
		      h_strerror(fd));
	get_on(fd, "", rel, size);
	close(fd);
}

/* A port that was free a moment ago (for a listener the test does not
 * start itself). */
static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
			      getsockname(fd, (struct sockaddr *)&sa, &len) ==
				      0,
		      "binding 127.0.0.1:0: %s", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* The four ids of /proc/PID/status's KEY line ("Uid:", "Gid:"). */
static void proc_ids(pid_t pid, const char *key, unsigned long ids[4])
{
	char path[64], *text = NULL, *p;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	rc = h_read_file(path, &text, &len);
	ck_assert_msg(rc == 0, "reading %s: %s", path, h_strerror(rc));
	p = strstr(text, key);
	ck_assert_msg(p != NULL && (p == text || p[-1] == '\n') &&
			      sscanf(p + strlen(key), "%lu %lu %lu %lu",
				     &ids[0], &ids[1], &ids[2], &ids[3]) == 4,
		      "no '%s' line with four ids in %s", key, path);
	free(text);
}

/* Whether TEXT has a line equal to WANT. */
static bool has_line(const char *text, const char *want)
{
	size_t n = strlen(want);
	const char *p = text;

	for (;;) {
		if (strncmp(p, want, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p = strchr(p, '\n');
		if (p == NULL)
			return false;
		p++;
	}
}

/* Pauses between two checks of a condition that has no event to wait on
 * (lines arriving in a file). */
static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- the notification socket ------------------------------------------ */

/* Makes the datagram socket a service manager listens on, at PATH. The
 * kernel attaches each sender's credentials, so the test knows who sent. */
static int notify_open(const char *path)
{
	struct sockaddr_un sa;
	int fd, on = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	ck_assert_msg(strlen(path) < sizeof(sa.sun_path),
		      "notify socket path too long for AF_UNIX: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "socket(AF_UNIX): %s", strerror(errno));
	ck_assert_msg(setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on,
				 sizeof(on)) == 0,
		      "SO_PASSCRED: %s", strerror(errno));
	ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		      "binding %s: %s", path, strerror(errno));
	return fd;
}

/* Receives one datagram into BUF (NUL-terminated) within TIMEOUT_MS, and
 * the sender's pid into *SENDER (0 when the kernel gave none). Its length,
 * or a negative errno. */
static ssize_t notify_recv(int fd, char *buf, size_t cap, pid_t *sender,
			   int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;

	*sender = 0;
	for (;;) {
		union {
			struct cmsghdr align;
			char bytes[CMSG_SPACE(sizeof(struct ucred))];
		} control;
		struct iovec iov = { buf, cap - 1 };
		struct msghdr m;
		struct cmsghdr *c;
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline - h_now_ms();
		ssize_t r;
		int n;

		n = poll(&p, 1, left > 0 ? (int)left : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		memset(&m, 0, sizeof(m));
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = &control;
		m.msg_controllen = sizeof(control);
		r = recvmsg(fd, &m, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -errno;
		buf[r] = '\0';
		for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
			struct ucred cred;

			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_CREDENTIALS)
				continue;
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
			*sender = cred.pid;
		}
		return r;
	}
}

/* Expects the daemon's next state change to be WANT ("READY=1"): the next
 * datagram from it must hold that line. Datagrams that only say STATUS=
 * are passed over: they are not state changes. */
static void expect_notify(int fd, const char *want, const char *what)
{
	int64_t deadline = h_now_ms() + LINE_MS;
	char buf[4096];

	for (;;) {
		int64_t left = deadline - h_now_ms();
		pid_t sender;
		ssize_t n = notify_recv(fd, buf, sizeof(buf), &sender,
					left > 0 ? (int)left : 0);

		ck_assert_msg(n >= 0, "%s: no %s within %d ms: %s; log: %s",
			      what, want, LINE_MS, h_strerror((int)n),
			      h_diag_tail(&d));
		ck_assert_msg(sender == d.pid,
			      "%s: a notification from pid %d, ferryd is %d: "
			      "'%s'",
			      what, (int)sender, (int)d.pid, buf);
		if (strncmp(buf, "STATUS=", 7) == 0 &&
		    strchr(buf, '\n') == NULL)
			continue;
		ck_assert_msg(has_line(buf, want), "%s: got '%s', want '%s'",
			      what, buf, want);
		return;
	}
}

/* ---- sd_notify --------------------------------------------------------- */

START_TEST(notify)
{
	static const char *const reloaded[] = { "]: info: configuration "
						"reloaded",
						NULL };
	char sock_path[320], env_var[340], line[1024];
	const char *argv[] = { "/usr/bin/env", env_var, h_ferryd_path(), "-c",
			       d.config, NULL };
	int fd, n, rc, status = 0;

	snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", d.dir);
	snprintf(env_var, sizeof(env_var), "NOTIFY_SOCKET=%s", sock_path);
	fd = notify_open(sock_path);
	/* env(1) execs ferryd in its place: the pid stays the daemon's. */
	rc = h_spawn(&d, argv, NULL);
	ck_assert_msg(rc == 0, "starting ferryd: %s", h_strerror(rc));

	expect_notify(fd, "READY=1", "startup");
	/* ferryd writes that line before it notifies: it must be there. */
	n = h_count_lines(d.diag_log, "]: info: listening on 127.0.0.1:");
	ck_assert_msg(n == 1, "READY=1 came with %d 'listening on' lines in "
			      "the log: %s",
		      n, h_diag_tail(&d));
	rc = h_await_start(&d, line, sizeof(line));
	ck_assert_msg(rc == 0, "after READY=1: %s", line);

	ck_assert_int_eq(h_signal(&d, SIGHUP), 0);
	expect_notify(fd, "RELOADING=1", "SIGHUP");
	expect_notify(fd, "READY=1", "after the reload");
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  reloaded) == 0,
		      "READY=1 after SIGHUP, but no 'configuration reloaded': "
		      "%s",
		      h_diag_tail(&d));
	fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	n = h_wait_fd_count(d.pid, d.fd_baseline, 5000);
	ck_assert_msg(n == d.fd_baseline,
		      "ferryd holds %d fds, %d after startup: %s", n,
		      d.fd_baseline, h_fd_list(d.pid));

	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	expect_notify(fd, "STOPPING=1", "SIGTERM");
	rc = h_wait_exit(&d, STOP_MS, &status);
	ck_assert_msg(rc == 0, "ferryd still up %d ms after SIGTERM: %s",
		      STOP_MS, h_diag_tail(&d));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x after SIGTERM: %s", status,
		      h_diag_tail(&d));
	close(fd);
}
END_TEST

/* ---- socket activation ------------------------------------------------- */

START_TEST(socket_activation)
{
	char addr[64], line[1024];
	const char *listening[] = { "Listening on ", addr, NULL };
	const char *argv[] = { SOCKET_ACTIVATE, "-l", addr, h_ferryd_path(),
			       "-c", d.config, NULL };
	int port, fd, rc, n;

	if (access(SOCKET_ACTIVATE, X_OK) != 0) {
		skip("socket_activation", SOCKET_ACTIVATE " is missing");
		return;
	}
	port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	rc = h_spawn(&d, argv, NULL);
	ck_assert_msg(rc == 0, "starting %s: %s", SOCKET_ACTIVATE,
		      h_strerror(rc));
	/* It listens at once, and execs ferryd in its place on the first
	 * connection, which ferryd then accepts. */
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  listening) == 0,
		      "%s is not listening on %s: %s", SOCKET_ACTIVATE, addr,
		      h_diag_tail(&d));
	fd = h_connect(port, LINE_MS);
	ck_assert_msg(fd >= 0, "connect to %s: %s", addr, h_strerror(fd));

	/* ferryd names the socket it was given, not its listen: (port 0).
	 * The activating connection stays idle while the probe counts fds,
	 * so the baseline includes it until it is closed below. */
	rc = h_await_start(&d, line, sizeof(line));
	ck_assert_msg(rc == 0, "ferryd after activation: %s", line);
	ck_assert_msg(d.port == port, "ferryd listens on %d, the socket from "
				      "systemd-socket-activate is %d",
		      d.port, port);

	get_on(fd, "", "small.bin", H_SMALL_BYTES);
	close(fd);
	d.fd_baseline--;

	ck_assert_msg(h_count_lines(d.diag_log, "]: info: using 1 socket from "
						"systemd; listen: is "
						"ignored") == 1,
		      "no 'using 1 socket from systemd': %s", h_diag_tail(&d));
	n = h_count_lines(d.diag_log, "]: info: listening on ");
	ck_assert_msg(n == 1, "%d 'listening on' lines, want the one socket: "
			      "%s",
		      n, h_diag_tail(&d));
	fetch_ok(d.port, "sub/b.bin", 3000);
}
END_TEST

/* A systemd socket whose address is a listen entry with proxy_protocol
 * takes the entry's flag: a connection without the PROXY header gets ERR
 * 400 and is closed, one with it is served and logged as the header's
 * client. A socket whose entry has no flag, and one no entry names, serve
 * plain requests. */
START_TEST(socket_activation_proxy)
{
	static const char *const served[] = { "client=203.0.113.7:5555",
					      "path=/small.bin", "status=200",
					      NULL };
	char addr[3][64], overrides[512], line[1024], listening[160];
	const char *started[] = { "Listening on ", addr[2], NULL };
	const char *argv[] = { SOCKET_ACTIVATE, "-l", addr[0], "-l", addr[1],
			       "-l", addr[2], h_ferryd_path(), "-c", d.config,
			       NULL };
	int port[3], fd, rc, i;

	if (access(SOCKET_ACTIVATE, X_OK) != 0) {
		skip("socket_activation_proxy", SOCKET_ACTIVATE " is missing");
		return;
	}
	for (i = 0; i < 3; i++) {
		port[i] = free_port();
		snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", port[i]);
	}
	ck_assert_msg(port[0] != port[1] && port[1] != port[2] &&
			      port[0] != port[2],
		      "the same free port twice");
	/* The third socket is in no entry; the config's third entry is
	 * never bound (listen: is ignored). */
	snprintf(overrides, sizeof(overrides),
		 "listen=[{address: \"%s\", proxy_protocol: true}, \"%s\", "
		 "\"127.0.0.1:0\"]",
		 addr[0], addr[1]);
	ck_assert_int_eq(h_write_config(&d, overrides), 0);
	rc = h_spawn(&d, argv, NULL);
	ck_assert_msg(rc == 0, "starting %s: %s", SOCKET_ACTIVATE,
		      h_strerror(rc));
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  started) == 0,
		      "%s is not listening on %s: %s", SOCKET_ACTIVATE, addr[2],
		      h_diag_tail(&d));
	/* The activating connection, on the PROXY socket, sends nothing
	 * until ferryd is up (h_await_start's probe sends a header: its
	 * port is the first socket's). */
	fd = h_connect(port[0], LINE_MS);
	ck_assert_msg(fd >= 0, "connect to %s: %s", addr[0], h_strerror(fd));
	rc = h_await_start(&d, line, sizeof(line));
	ck_assert_msg(rc == 0, "ferryd after activation: %s", line);
	ck_assert_int_eq(d.port, port[0]);
	ck_assert_msg(h_count_lines(d.diag_log, "]: info: using 3 sockets "
						"from systemd") == 1,
		      "no 'using 3 sockets from systemd': %s", h_diag_tail(&d));
	snprintf(listening, sizeof(listening),
		 "]: info: listening on %s (PROXY protocol)\n", addr[0]);
	ck_assert_msg(h_count_lines(d.diag_log, listening) == 1,
		      "no '%s': %s", listening, h_diag_tail(&d));
	for (i = 1; i < 3; i++) {
		snprintf(listening, sizeof(listening),
			 "]: info: listening on %s\n", addr[i]);
		ck_assert_msg(h_count_lines(d.diag_log, listening) == 1,
			      "no '%s': %s", listening, h_diag_tail(&d));
	}

	/* No header on the PROXY socket: refused and closed. */
	rc = h_send_str(fd, "GET /small.bin\n", LINE_MS);
	ck_assert_msg(rc == 0, "sending: %s", h_strerror(rc));
	ck_assert_msg(h_recv_line(fd, line, sizeof(line), LINE_MS) > 0,
		      "no reply without a PROXY header: %s", h_diag_tail(&d));
	ck_assert_msg(strncmp(line, "ERR 400 ", 8) == 0,
		      "without a PROXY header: '%s', want ERR 400", line);
	rc = h_expect_eof(fd, LINE_MS);
	ck_assert_msg(rc == 0, "after ERR 400: %s", h_strerror(rc));
	close(fd);
	d.fd_baseline--;

	/* With the header: served, and logged as the header's client. */
	fd = h_connect(port[0], LINE_MS);
	ck_assert_msg(fd >= 0, "connect to %s: %s", addr[0], h_strerror(fd));
	get_on(fd, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 7070\r\n",
	       "small.bin", H_SMALL_BYTES);
	close(fd);
	ck_assert_msg(h_wait_line(d.transfer_log, LINE_MS, line, sizeof(line),
				  served) == 0,
		      "no transfer log line for client=203.0.113.7:5555");

	/* The entry without the flag, and the socket of no entry: plain. */
	fetch_ok(port[1], "small.bin", H_SMALL_BYTES);
	fetch_ok(port[2], "sub/b.bin", 3000);
}
END_TEST

/* limits.drain + limits.shutdown_timeout over systemd's TimeoutStopSec (30
 * s): ferryd -t warns, and still says the configuration is OK; at 30 s or
 * less it says nothing. */
START_TEST(stop_timeout_warning)
{
	static const struct {
		const char *overrides;
		const char *total; /* NULL: no warning */
	} cases[] = {
		{ "limits.drain=25s;limits.shutdown_timeout=10s", "35000 ms" },
		{ "limits.drain=0s;limits.shutdown_timeout=31s", "31000 ms" },
		{ "limits.drain=20s;limits.shutdown_timeout=10s", NULL },
		{ "limits.drain=5s;limits.shutdown_timeout=10s", NULL },
	};
	const char *argv[] = { "ferryd", "-t", "-c", d.config, NULL };
	size_t i;

	for (i = 0; i < COUNT(cases); i++) {
		char want[160], *out = NULL, *err = NULL;
		int rc, status = 0;

		ck_assert_int_eq(h_write_config(&d, cases[i].overrides), 0);
		rc = h_run_ferryd(&d, argv, 10000, &status, &out, &err);
		ck_assert_msg(rc == 0, "running ferryd -t: %s", h_strerror(rc));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "%s: ferryd -t status 0x%x: %s",
			      cases[i].overrides, status, err);
		ck_assert_msg(strcmp(out, "configuration OK\n") == 0,
			      "%s: ferryd -t printed '%s'", cases[i].overrides,
			      out);
		if (cases[i].total != NULL) {
			snprintf(want, sizeof(want),
				 "warn: limits.drain + limits.shutdown_timeout "
				 "is %s, more than the 30000 ms",
				 cases[i].total);
			ck_assert_msg(strstr(err, want) != NULL &&
					      strstr(err, "TimeoutStopSec") !=
						      NULL,
				      "%s: no '%s' on stderr: '%s'",
				      cases[i].overrides, want, err);
		} else {
			ck_assert_msg(strstr(err, "TimeoutStopSec") == NULL &&
					      strstr(err, "limits.drain") ==
						      NULL,
				      "%s: a warning at 30 s or less: '%s'",
				      cases[i].overrides, err);
		}
		free(out);
		free(err);
	}
}
END_TEST

/* ---- privileges -------------------------------------------------------- */

START_TEST(root_refused)
{
	static const char refusal[] =
		"ferryd: refusing to serve as root: set \"user:\" to an "
		"unprivileged account (or to root, to insist)\n";
	const char *argv[] = { "ferryd", "-c", d.config, NULL };
	char text[1200], *out = NULL, *err = NULL;
	int rc, status = 0;

	if (geteuid() != 0) {
		skip("root_refused", "not running as root");
		return;
	}
	/* The harness would add user: root; this config has no user:. */
	snprintf(text, sizeof(text),
		 "listen: [\"127.0.0.1:0\"]\n"
		 "root: \"%s\"\n"
		 "log:\n"
		 "  transfers: \"%s\"\n",
		 d.root, d.transfer_log);
	ck_assert_int_eq(h_write_text(d.config, text), 0);
	rc = h_run_ferryd(&d, argv, 10000, &status, &out, &err);
	ck_assert_msg(rc == 0, "running %s: %s", h_ferryd_path(),
		      h_strerror(rc));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1,
		      "exit status 0x%x, want exit 1; stderr: %s", status, err);
	ck_assert_msg(strcmp(err, refusal) == 0, "stderr '%s', want '%s'", err,
		      refusal);
	/* Refused before binding or opening anything. */
	ck_assert_msg(strstr(out, "listening on") == NULL &&
			      strstr(err, "listening on") == NULL,
		      "it listened: out '%s' err '%s'", out, err);
	ck_assert_msg(access(d.transfer_log, F_OK) != 0 && errno == ENOENT,
		      "it created the transfer log %s", d.transfer_log);
	free(out);
	free(err);
}
END_TEST

/* Whether an unprivileged user can reach PATH: every directory on the way
 * is searchable by others. */
static bool reachable_by_others(const char *path)
{
	char buf[400], *p;
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", path);
	while ((p = strrchr(buf, '/')) != NULL) {
		*p = '\0';
		if (stat(buf[0] != '\0' ? buf : "/", &st) < 0 ||
		    (st.st_mode & S_IXOTH) == 0)
			return false;
	}
	return true;
}

START_TEST(user_nobody)
{
	static const char *const fetched[] = { "path=/small.bin ",
					       "status=200", NULL };
	char sock_path[320], env_var[340], run_dir[300], line[1024];
	const char *argv[] = { "/usr/bin/env", env_var, h_ferryd_path(), "-c",
			       d.config, NULL };
	struct passwd *pw;
	struct stat st;
	unsigned long uid[4], gid[4];
	uid_t nobody_uid;
	gid_t nobody_gid;
	int fd = -1, i, rc;

	if (geteuid() != 0) {
		skip("user_nobody", "not running as root");
		return;
	}
	pw = getpwnam("nobody");
	if (pw == NULL) {
		skip("user_nobody", "no user \"nobody\" on this system");
		return;
	}
	nobody_uid = pw->pw_uid;
	nobody_gid = pw->pw_gid;
	ck_assert_msg(nobody_uid == 65534, "nobody is uid %u here, not 65534",
		      (unsigned)nobody_uid);

	/* The run dir and the test dir are 0700; nobody must reach the
	 * notification socket in the test dir (as anyone may reach systemd's),
	 * and files beneath the root it already holds open. */
	snprintf(run_dir, sizeof(run_dir), "%s", d.dir);
	ck_assert_int_eq(chmod(dirname(run_dir), 0755), 0);
	ck_assert_int_eq(chmod(d.dir, 0755), 0);
	ck_assert_int_eq(h_write_config(&d, "user=nobody"), 0);

	snprintf(sock_path, sizeof(sock_path), "%s/notify.sock", d.dir);
	snprintf(env_var, sizeof(env_var), "NOTIFY_SOCKET=%s", sock_path);
	if (reachable_by_others(sock_path)) {
		fd = notify_open(sock_path);
		ck_assert_int_eq(chmod(sock_path, 0666), 0);
	} else {
		/* ferryd could not reach it as nobody: no notification. */
		skip("user_nobody (READY after the switch)",
		     "a directory above the test dir is not searchable by "
		     "others");
		argv[0] = h_ferryd_path();
		argv[1] = "-c";
		argv[2] = d.config;
		argv[3] = NULL;
	}
	rc = h_spawn(&d, argv, NULL);
	ck_assert_msg(rc == 0, "starting ferryd: %s", h_strerror(rc));
	if (fd >= 0) {
		/* READY=1 comes only after the switch. */
		expect_notify(fd, "READY=1", "startup as nobody");
		proc_ids(d.pid, "Uid:", uid);
		ck_assert_msg(uid[0] == nobody_uid && uid[1] == nobody_uid &&
				      uid[2] == nobody_uid &&
				      uid[3] == nobody_uid,
			      "READY=1 with uids %lu %lu %lu %lu", uid[0],
			      uid[1], uid[2], uid[3]);
		close(fd);
	}
	rc = h_await_start(&d, line, sizeof(line));
	ck_assert_msg(rc == 0, "ferryd as nobody: %s", line);

	/* For good: real, effective, saved and file system ids alike. */
	proc_ids(d.pid, "Uid:", uid);
	proc_ids(d.pid, "Gid:", gid);
	for (i = 0; i < 4; i++) {
		ck_assert_msg(uid[i] == nobody_uid,
			      "Uid: %lu %lu %lu %lu, want %u in all four",
			      uid[0], uid[1], uid[2], uid[3],
			      (unsigned)nobody_uid);
		ck_assert_msg(gid[i] == nobody_gid,
			      "Gid: %lu %lu %lu %lu, want %u in all four",
			      gid[0], gid[1], gid[2], gid[3],
			      (unsigned)nobody_gid);
	}
	ck_assert_msg(h_count_lines(d.diag_log, "serving as root") == 0,
		      "it says it serves as root: %s", h_diag_tail(&d));

	fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	ck_assert_msg(stat(d.transfer_log, &st) == 0, "stat %s: %s",
		      d.transfer_log, strerror(errno));
	ck_assert_msg(st.st_uid == nobody_uid,
		      "the transfer log belongs to uid %u, not nobody (%u)",
		      (unsigned)st.st_uid, (unsigned)nobody_uid);
	/* nobody writes to it. */
	ck_assert_msg(h_wait_line(d.transfer_log, LINE_MS, line, sizeof(line),
				  fetched) == 0,
		      "no line for the fetch in %s", d.transfer_log);
}
END_TEST

/* ---- log rotation ------------------------------------------------------ */

/* Clients fetch sub/b.bin while the test rotates the transfer log: each
 * thread makes ROT_CONNS connections with ROT_PER_CONN requests on each.
 * After ROT_AT answers the test renames the log and sends SIGHUP; the last
 * connection of every thread waits until the new log exists, so both files
 * get lines. */
#define ROT_THREADS 4
#define ROT_CONNS 3
#define ROT_PER_CONN 25
#define ROT_TOTAL (ROT_THREADS * ROT_CONNS * ROT_PER_CONN)
#define ROT_AT 100
#define ROT_FILE "sub/b.bin"
#define ROT_BYTES 3000

struct rotation {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int answered;  /* requests fully answered, all threads */
	bool rotated;  /* the new log exists */
	bool given_up; /* the test thread stopped waiting */
};

struct rot_client {
	pthread_t thread;
	struct rotation *rot;
	int port;
	int answered;
	char error[512];
};

/* An absolute deadline TIMEOUT_MS from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* One request on FD: 0, or why not in C->error. */
static int rot_request(struct rot_client *c, int fd, const char *want)
{
	char line[256];
	uint64_t got = 0;
	ssize_t n;
	int rc;

	rc = h_send_str(fd, "GET /" ROT_FILE "\n", LINE_MS);
	if (rc < 0) {
		snprintf(c->error, sizeof(c->error), "send: %s",
			 h_strerror(rc));
		return rc;
	}
	n = h_recv_line(fd, line, sizeof(line), LINE_MS);
	if (n <= 0 || strcmp(line, want) != 0) {
		snprintf(c->error, sizeof(c->error),
			 "request %d: reply '%s' (%s), want '%s'",
			 c->answered + 1, n > 0 ? line : "",
			 n == 0 ? "closed" : h_strerror((int)n), want);
		return -EPROTO;
	}
	rc = h_recv_compare(fd, h_root_path(&d, ROT_FILE), 0, ROT_BYTES, 0,
			    &got, LINE_MS);
	if (rc != 0) {
		snprintf(c->error, sizeof(c->error),
			 "request %d: %s after %llu bytes", c->answered + 1,
			 h_strerror(rc), (unsigned long long)got);
		return rc < 0 ? rc : -EPROTO;
	}
	return 0;
}

static void *rot_client_main(void *arg)
{
	struct rot_client *c = arg;
	struct rotation *rot = c->rot;
	char want[128];
	int conn, i;

	snprintf(want, sizeof(want), "OK %d %d %d", ROT_BYTES, ROT_BYTES,
		 H_MTIME);
	for (conn = 0; conn < ROT_CONNS; conn++) {
		int fd;

		if (conn == ROT_CONNS - 1) {
			struct timespec until = deadline_in(10000);
			bool rotated;
			int rc = 0;

			pthread_mutex_lock(&rot->lock);
			while (!rot->rotated && !rot->given_up && rc == 0)
				rc = pthread_cond_timedwait(&rot->cond,
							    &rot->lock, &until);
			rotated = rot->rotated;
			pthread_mutex_unlock(&rot->lock);
			if (!rotated) {
				snprintf(c->error, sizeof(c->error),
					 "the log was not rotated");
				return NULL;
			}
		}
		fd = h_connect(c->port, LINE_MS);
		if (fd < 0) {
			snprintf(c->error, sizeof(c->error), "connect: %s",
				 h_strerror(fd));
			return NULL;
		}
		for (i = 0; i < ROT_PER_CONN; i++) {
			if (rot_request(c, fd, want) < 0) {
				close(fd);
				return NULL;
			}
			c->answered++;
			pthread_mutex_lock(&rot->lock);
			rot->answered++;
			pthread_cond_broadcast(&rot->cond);
			pthread_mutex_unlock(&rot->lock);
		}
		close(fd);
	}
	return NULL;
}

/* Checks that every line of the text transfer log TEXT (from FILE) is
 * well-formed, and counts the complete fetches of ROT_FILE. */
static int rot_check_lines(const char *file, const char *text)
{
	static const char *const keys[] = { "client", "path", "mode",
					    "status", "offset", "bytes",
					    "size", "duration_s", "mib_per_s" };
	const char *line = text;
	int fetches = 0, no = 0;

	ck_assert_msg(text[0] == '\0' || text[strlen(text) - 1] == '\n',
		      "%s ends inside a line", file);
	while (*line != '\0') {
		const char *end = strchr(line, '\n'), *p;
		char one[1024], value[512];
		size_t k;
		int y, mo, da, h, mi, s, ms, used = 0;

		no++;
		snprintf(one, sizeof(one), "%.*s", (int)(end - line), line);
		/* 2025-11-24T12:00:00.000Z client=... path=... */
		ck_assert_msg(sscanf(one, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &y,
				     &mo, &da, &h, &mi, &s, &ms, &used) == 7 &&
				      used == 25,
			      "%s:%d: no timestamp first: '%s'", file, no, one);
		p = one + 24;
		for (k = 0; k < COUNT(keys); k++) {
			size_t klen = strlen(keys[k]);

			ck_assert_msg(p[0] == ' ' &&
					      strncmp(p + 1, keys[k], klen) ==
						      0 &&
					      p[1 + klen] == '=' &&
					      p[2 + klen] != ' ' &&
					      p[2 + klen] != '\0',
				      "%s:%d: want '%s=' at column %d: '%s'",
				      file, no, keys[k], (int)(p - one) + 1,
				      one);
			p = strchr(p + 1, ' ');
			if (p == NULL)
				p = one + strlen(one);
		}
		ck_assert_msg(*p == '\0', "%s:%d: more after mib_per_s: '%s'",
			      file, no, one);
		h_field(one, "path", value, sizeof(value));
		if (strcmp(value, "/" ROT_FILE) == 0) {
			h_field(one, "status", value, sizeof(value));
			ck_assert_msg(strcmp(value, "200") == 0,
				      "%s:%d: status %s: '%s'", file, no, value,
				      one);
			ck_assert_msg(strstr(one, " offset=0 bytes=3000 "
						  "size=3000 ") != NULL,
				      "%s:%d: not the whole file: '%s'", file,
				      no, one);
			fetches++;
		}
		line = end + 1;
	}
	return fetches;
}

START_TEST(logrotate)
{
	struct rotation rot;
	struct rot_client clients[ROT_THREADS];
	pthread_condattr_t attr;
	struct timespec until;
	char rotated[400], msg[4096], *old_text = NULL, *new_text = NULL;
	int64_t deadline;
	size_t len, i;
	int answered = 0, rc, in_old, in_new, wait_rc = 0;

	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "starting %s: %s", h_ferryd_path(), msg);
	snprintf(rotated, sizeof(rotated), "%s.1", d.transfer_log);

	memset(&rot, 0, sizeof(rot));
	pthread_mutex_init(&rot.lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&rot.cond, &attr);
	pthread_condattr_destroy(&attr);
	memset(clients, 0, sizeof(clients));
	for (i = 0; i < ROT_THREADS; i++) {
		clients[i].rot = &rot;
		clients[i].port = d.port;
		rc = pthread_create(&clients[i].thread, NULL, rot_client_main,
				    &clients[i]);
		ck_assert_msg(rc == 0, "pthread_create: %s", strerror(rc));
	}

	/* Partway through, with requests in flight: what logrotate does. */
	until = deadline_in(20000);
	pthread_mutex_lock(&rot.lock);
	while (rot.answered < ROT_AT && wait_rc == 0)
		wait_rc = pthread_cond_timedwait(&rot.cond, &rot.lock, &until);
	answered = rot.answered;
	pthread_mutex_unlock(&rot.lock);
	if (answered >= ROT_AT) {
		rc = rename(d.transfer_log, rotated) < 0 ? -errno : 0;
		if (rc == 0)
			rc = h_signal(&d, SIGHUP);
		if (rc == 0)
			rc = h_wait_exists(d.transfer_log, LINE_MS);
	}
	pthread_mutex_lock(&rot.lock);
	if (answered >= ROT_AT && rc == 0)
		rot.rotated = true;
	else
		rot.given_up = true;
	pthread_cond_broadcast(&rot.cond);
	pthread_mutex_unlock(&rot.lock);

	/* Every client's waits are bounded, so these joins are too. */
	for (i = 0; i < ROT_THREADS; i++)
		pthread_join(clients[i].thread, NULL);
	ck_assert_msg(answered >= ROT_AT, "only %d of %d requests answered in "
					  "20 s: %s",
		      answered, ROT_AT, clients[0].error);
	ck_assert_msg(rc == 0, "rotating %s: %s; log: %s", d.transfer_log,
		      h_strerror(rc), h_diag_tail(&d));
	for (i = 0; i < ROT_THREADS; i++)
		ck_assert_msg(clients[i].error[0] == '\0',
			      "client %zu, after %d requests: %s", i,
			      clients[i].answered, clients[i].error);
	ck_assert_int_eq(rot.answered, ROT_TOTAL);
	pthread_cond_destroy(&rot.cond);
	pthread_mutex_destroy(&rot.lock);

	/* A line is written once its transfer is sent, which may be a moment
	 * after the client has the bytes. */
	deadline = h_now_ms() + LINE_MS;
	for (;;) {
		in_old = h_count_lines(rotated, "path=/" ROT_FILE " ");
		in_new = h_count_lines(d.transfer_log, "path=/" ROT_FILE " ");
		if (in_old + in_new >= ROT_TOTAL || h_now_ms() >= deadline)
			break;
		pause_ms(10);
	}
	ck_assert_msg(in_old + in_new == ROT_TOTAL,
		      "%d lines in %s and %d in %s for %d requests", in_old,
		      rotated, in_new, d.transfer_log, ROT_TOTAL);
	ck_assert_msg(in_new > 0, "no line in the new %s after the rotation",
		      d.transfer_log);

	ck_assert_int_eq(h_read_file(rotated, &old_text, &len), 0);
	ck_assert_int_eq(h_read_file(d.transfer_log, &new_text, &len), 0);
	ck_assert_int_eq(rot_check_lines(rotated, old_text) +
				 rot_check_lines(d.transfer_log, new_text),
			 ROT_TOTAL);
	free(old_text);
	free(new_text);
}
END_TEST

/* ---- the sample configurations ----------------------------------------- */

START_TEST(sample_configs)
{
	static const char *const samples[] = { "etc/ferryd.yaml",
					       "etc/quickstart.yaml" };
	const char *srcdir = getenv("FERRY_SRCDIR");
	size_t i;

	if (srcdir == NULL || srcdir[0] == '\0')
		srcdir = ".";
	for (i = 0; i < COUNT(samples); i++) {
		char path[600], *out = NULL, *err = NULL;
		const char *argv[] = { "ferryd", "-t", "-c", path, NULL };
		int rc, status = 0;

		snprintf(path, sizeof(path), "%s/%s", srcdir, samples[i]);
		ck_assert_msg(access(path, R_OK) == 0,
			      "%s: %s (is FERRY_SRCDIR set?)", path,
			      strerror(errno));
		rc = h_run_ferryd(&d, argv, 10000, &status, &out, &err);
		ck_assert_msg(rc == 0, "running ferryd -t: %s", h_strerror(rc));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "ferryd -t -c %s: status 0x%x: %s", path, status,
			      err);
		ck_assert_msg(strcmp(out, "configuration OK\n") == 0,
			      "ferryd -t -c %s printed '%s', stderr '%s'", path,
			      out, err);
		free(out);
		free(err);
	}
}
END_TEST

/* ---- the open file limit ----------------------------------------------- */

START_TEST(fd_limit)
{
	static const char *const warning[] = {
		"]: warn: the open file limit (256) is below what "
		"limits.connections (1000) needs (2064)",
		NULL
	};
	/* The soft limit below the hard one: ferryd raises it. */
	const struct rlimit nofile = { 100, 256 };
	const char *argv[] = { h_ferryd_path(), "-c", d.config, NULL };
	char line[1024], path[64], *text = NULL, *p;
	unsigned long soft = 0, hard = 0;
	size_t len;

	ck_assert_int_eq(h_write_config(&d, "limits.connections=1000"), 0);
	spawn_ok(argv, &nofile);
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  warning) == 0,
		      "no warning about the open file limit: %s",
		      h_diag_tail(&d));
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)d.pid);
	ck_assert_int_eq(h_read_file(path, &text, &len), 0);
	p = strstr(text, "\nMax open files ");
	ck_assert_msg(p != NULL && sscanf(p, " Max open files %lu %lu", &soft,
					  &hard) == 2,
		      "no 'Max open files' in %s: %s", path, text);
	ck_assert_msg(soft == 256 && hard == 256,
		      "open file limits %lu (soft) %lu (hard), want the soft "
		      "one raised to 256",
		      soft, hard);
	free(text);
	fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
}
END_TEST

/* ---- workers ------------------------------------------------------------ */

/* The processes whose parent is PPID, into KIDS (at most CAP); how many. */
static int children_of(pid_t ppid, pid_t *kids, int cap)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	int n = 0;

	ck_assert_msg(proc != NULL, "/proc: %s", strerror(errno));
	while ((e = readdir(proc)) != NULL) {
		char path[300], *text = NULL, *close_paren;
		size_t len;
		int parent = 0;
		long pid = strtol(e->d_name, NULL, 10);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
		if (h_read_file(path, &text, &len) != 0)
			continue;
		/* "PID (comm) STATE PPID ...": comm may hold spaces. */
		close_paren = strrchr(text, ')');
		if (close_paren != NULL &&
		    sscanf(close_paren + 1, " %*c %d", &parent) == 1 &&
		    parent == ppid && n < cap)
			kids[n++] = (pid_t)pid;
		free(text);
	}
	closedir(proc);
	return n;
}

/* Waits (bounded) until PPID has WANT children, none of them NOT. */
static int await_children(pid_t ppid, int want, pid_t not, pid_t *kids)
{
	int64_t end = h_now_ms() + LINE_MS;
	int n = 0, i;

	while (h_now_ms() < end) {
		bool stale = false;

		n = children_of(ppid, kids, 8);
		for (i = 0; i < n; i++)
			stale = stale || kids[i] == not;
		if (n == want && !stale)
			return n;
		pause_ms(20);
	}
	return n;
}

START_TEST(workers)
{
	char msg[4096], listening[64];
	pid_t kids[8], again[8];
	int n, i, rc;

	ck_assert_int_eq(h_write_config(&d, "workers=2"), 0);
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	n = await_children(d.pid, 2, 0, kids);
	ck_assert_msg(n == 2, "ferryd (pid %d) has %d worker processes, want 2",
		      (int)d.pid, n);
	/* Each worker has its own socket on the same port (SO_REUSEPORT). */
	snprintf(listening, sizeof(listening), "listening on 127.0.0.1:%d\n",
		 d.port);
	ck_assert_int_eq(h_count_lines(d.diag_log, listening), 2);
	for (i = 0; i < 20; i++)
		fetch_ok(d.port, "small.bin", H_SMALL_BYTES);

	/* A worker that dies is replaced, and serving goes on. */
	ck_assert_int_eq(kill(kids[0], SIGKILL), 0);
	n = await_children(d.pid, 2, kids[0], again);
	ck_assert_msg(n == 2, "after killing worker %d, ferryd has %d workers",
		      (int)kids[0], n);
	for (i = 0; i < 20; i++)
		fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	/* The teardown's SIGTERM must stop every worker, then the parent. */
}
END_TEST

/* PING on a new connection, its one reply line into LINE. */
static void ping(int port, char *line, size_t cap)
{
	int fd = h_connect(port, LINE_MS), rc;
	ssize_t n;

	ck_assert_msg(fd >= 0, "connect: %s", h_strerror(fd));
	rc = h_send_str(fd, "PING\n", LINE_MS);
	ck_assert_msg(rc == 0, "sending PING: %s", h_strerror(rc));
	n = h_recv_line(fd, line, cap, LINE_MS);
	ck_assert_msg(n > 0, "PING: no reply line: %s",
		      n == 0 ? "connection closed" : h_strerror((int)n));
	close(fd);
}

#define DRAIN_PINGS 20

/* SIGTERM to the parent of two workers with limits.drain: each worker
 * drains, so every PING on a new connection, whichever worker takes it,
 * answers ERR 503 draining while GETs are served whole; the parent exits 0
 * once the drain is over. */
START_TEST(workers_drain)
{
	static const char *const draining[] = { "]: info: draining for 2000 ms",
						NULL };
	char msg[4096], line[512];
	pid_t kids[8];
	int64_t sent, exited;
	int n, i, rc, status = 0;

	ck_assert_int_eq(h_write_config(&d, "workers=2;limits.drain=2s"), 0);
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	n = await_children(d.pid, 2, 0, kids);
	ck_assert_msg(n == 2, "ferryd (pid %d) has %d worker processes, want 2",
		      (int)d.pid, n);
	for (i = 0; i < DRAIN_PINGS; i++) {
		ping(d.port, line, sizeof(line));
		ck_assert_msg(strcmp(line, "OK") == 0,
			      "PING before the drain: '%s'", line);
	}

	ck_assert_int_eq(h_signal(&d, SIGTERM), 0);
	sent = h_now_ms();
	/* Both workers have begun draining (the parent forwards the signal,
	 * and says nothing of draining itself). */
	ck_assert_msg(h_wait_line(d.diag_log, LINE_MS, line, sizeof(line),
				  draining) == 0,
		      "no worker drains: %s", h_diag_tail(&d));
	while (h_count_lines(d.diag_log, draining[0]) < 2) {
		ck_assert_msg(h_now_ms() - sent < 1500,
			      "%d worker(s) draining 1.5 s after SIGTERM: %s",
			      h_count_lines(d.diag_log, draining[0]),
			      h_diag_tail(&d));
		pause_ms(10);
	}
	/* New connections spread over both workers (SO_REUSEPORT). */
	for (i = 0; i < DRAIN_PINGS; i++) {
		ping(d.port, line, sizeof(line));
		ck_assert_msg(strcmp(line, "ERR 503 draining") == 0,
			      "PING %d while draining: '%s'", i, line);
	}
	for (i = 0; i < 4; i++)
		fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	ck_assert_msg(h_now_ms() - sent < 1900,
		      "the drain's requests took %lld ms of its 2 s",
		      (long long)(h_now_ms() - sent));
	ck_assert_msg(h_alive(&d), "ferryd exited during the drain");
	ck_assert_int_eq(children_of(d.pid, kids, 8), 2);

	rc = h_wait_exit(&d, 10000, &status);
	ck_assert_msg(rc == 0, "ferryd still up 10 s after SIGTERM: %s",
		      h_diag_tail(&d));
	exited = h_now_ms();
	ck_assert_msg(exited - sent >= 1900,
		      "exit %lld ms after SIGTERM, drain 2 s",
		      (long long)(exited - sent));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exit status 0x%x: %s", status, h_diag_tail(&d));
	ck_assert_int_eq(h_count_lines(d.transfer_log, "error=draining"),
			 DRAIN_PINGS);
	ck_assert_int_eq(h_count_lines(d.diag_log, "]: info: drain over after "
						   "2000 ms"),
			 2);
}
END_TEST

/* ---- log.flush ------------------------------------------------------------ */

/* With log.flush, lines gather in memory and reach the file within the
 * interval, and SIGTERM writes every one that is left. */
START_TEST(log_flush)
{
	static const char *const ok_line[] = { " status=200 ", NULL };
	char msg[4096], line[1024];
	int i, rc, status = 0;

	ck_assert_int_eq(h_write_config(&d, "log.flush=300ms"), 0);
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	for (i = 0; i < 50; i++)
		fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	/* Within the interval (bounded wait), not at once. */
	ck_assert_msg(h_wait_line(d.transfer_log, LINE_MS, line, sizeof(line),
				  ok_line) == 0,
		      "no transfer line reached the log within %d ms", LINE_MS);
	for (i = 0; i < 50; i++)
		fetch_ok(d.port, "small.bin", H_SMALL_BYTES);
	rc = h_stop(&d, STOP_MS, &status);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "ferryd did not stop cleanly: %s", h_diag_tail(&d));
	/* The probe's LIST line, and all 100 fetches: none lost. */
	ck_assert_int_eq(h_count_lines(d.transfer_log,
				       " path=/small.bin mode=sendfile status=200 "),
			 100);
}
END_TEST

/* ---- idle connections' memory -------------------------------------------- */

/* ferryd's VmRSS in KiB, or -1. */
static long vm_rss_kib(pid_t pid)
{
	char path[64], *text = NULL, *p;
	size_t len;
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (h_read_file(path, &text, &len) != 0)
		return -1;
	p = strstr(text, "\nVmRSS:");
	if (p != NULL)
		kib = strtol(p + 7, NULL, 10);
	free(text);
	return kib;
}

/* Connections that send nothing cost the daemon no buffer: 1,000 of them
 * must not add more than 3 KiB each to its resident memory (about 1.3 KiB
 * each was measured; 10,000 stay far below 40 MiB). */
START_TEST(idle_memory)
{
	enum { IDLE = 1000 };
	static int fds[IDLE];
	char msg[4096];
	long before, during;
	int i, n, rc;

	/* AddressSanitizer's redzones and quarantine make memory figures
	 * meaningless; CI's sanitizer run sets ASAN_OPTIONS. */
	if (getenv("ASAN_OPTIONS") != NULL) {
		skip("idle_memory", "ASAN_OPTIONS is set: a sanitizer build");
		return;
	}
	ck_assert_int_eq(h_write_config(&d, "limits.per_client=2000;"
					   "limits.connections=2000"), 0);
	rc = h_start(&d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "%s", msg);
	before = vm_rss_kib(d.pid);
	ck_assert_int_gt(before, 0);
	for (i = 0; i < IDLE; i++) {
		fds[i] = h_connect(d.port, LINE_MS);
		ck_assert_msg(fds[i] >= 0, "connection %d: %s", i,
			      h_strerror(fds[i]));
	}
	n = h_wait_fd_count(d.pid, d.fd_baseline + IDLE, LINE_MS);
	ck_assert_msg(n == d.fd_baseline + IDLE,
		      "ferryd holds %d fds, want %d", n, d.fd_baseline + IDLE);
	during = vm_rss_kib(d.pid);
	fprintf(stderr, "check_service: idle_memory: VmRSS %ld KiB before, "
			"%ld KiB with %d idle connections (%ld bytes each)\n",
		before, during, IDLE, (during - before) * 1024 / IDLE);
	ck_assert_msg(during - before <= 3 * IDLE,
		      "%d idle connections added %ld KiB", IDLE,
		      during - before);
	for (i = 0; i < IDLE; i++)
		close(fds[i]);
}
END_TEST

/* ---- the suite --------------------------------------------------------- */

struct test {
	const char *name;
	const TTest *const *fn; /* START_TEST makes a pointer variable */
	int timeout_s;
};

static const struct test tests[] = {
	{ "notify", &notify, 30 },
	{ "socket_activation", &socket_activation, 30 },
	{ "socket_activation_proxy", &socket_activation_proxy, 30 },
	{ "stop_timeout_warning", &stop_timeout_warning, 30 },
	{ "root_refused", &root_refused, 30 },
	{ "user_nobody", &user_nobody, 30 },
	{ "logrotate", &logrotate, 60 },
	{ "sample_configs", &sample_configs, 30 },
	{ "fd_limit", &fd_limit, 30 },
	{ "workers", &workers, 30 },
	{ "workers_drain", &workers_drain, 30 },
	{ "log_flush", &log_flush, 30 },
	{ "idle_memory", &idle_memory, 60 },
};

static Suite *service_suite(void)
{
	Suite *s = suite_create("service");
	size_t i;

	for (i = 0; i < COUNT(tests); i++) {
		TCase *tc = tcase_create(tests[i].name);

		tcase_add_checked_fixture(tc, setup_dir, teardown_service);
		tcase_set_timeout(tc, tests[i].timeout_s);
		tcase_add_test(tc, *tests[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	int status;

	status = fixture_run("check_service", service_suite());
	return status;
}
