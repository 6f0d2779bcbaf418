/* Running the ferry client in tests: see cli.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define MIB (1024 * 1024)

char cli_out_dir[320];
char cli_capture_dir[300];
struct cli_run cli_last;

void cli_make_dirs(const char *dir)
{
	snprintf(cli_out_dir, sizeof(cli_out_dir), "%s/out", dir);
	snprintf(cli_capture_dir, sizeof(cli_capture_dir), "%s", dir);
	ck_assert_msg(mkdir(cli_out_dir, 0755) == 0, "%s: %s", cli_out_dir,
		      strerror(errno));
}

/* The client: $FERRY, else ../../src/ferry beside this binary, else
 * ./src/ferry (as the harness finds ferryd). */
const char *cli_ferry_path(void)
{
	static char path[PATH_MAX + 32];
	const char *env = getenv("FERRY");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return env;
	if (path[0] != '\0')
		return path;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/../../src/ferry", exe);
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	path[0] = '\0';
	return "./src/ferry";
}

/* OUT_DIR/REL, in one of a few buffers used in turn. */
const char *cli_out_path(const char *rel)
{
	static char bufs[4][800];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/%s", cli_out_dir, rel);
	return b;
}

void cli_pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}


/* Starts ferry ARGS (without argv[0]) in OUT_DIR with TZ=UTC. */
pid_t cli_spawn(const char *const args[], const struct cli_spawn *sp)
{
	const char *argv[40];
	pid_t parent = getpid(), pid;
	size_t i;

	argv[0] = "ferry";
	for (i = 0; args[i] != NULL && i < 38; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Between fork and exec: async-signal-safe calls only. */
		int fd;

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGXFSZ, sp->ignore_xfsz ? SIG_IGN : SIG_DFL);
		if (sp->fsize_limit > 0) {
			struct rlimit rl = { sp->fsize_limit, sp->fsize_limit };
			struct rlimit none = { 0, 0 };

			setrlimit(RLIMIT_FSIZE, &rl);
			setrlimit(RLIMIT_CORE, &none);
		}
		fd = open("/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(sp->out_fd, 1) < 0 ||
		    dup2(sp->err_fd, 2) < 0 || chdir(cli_out_dir) < 0)
			_exit(127);
		if (sp->uid != 0 &&
		    (setgroups(0, NULL) < 0 || setgid(sp->gid) < 0 ||
		     setuid(sp->uid) < 0))
			_exit(126);
		setenv("TZ", "UTC", 1);
		execv(cli_ferry_path(), (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	return pid;
}

/* Appends what is readable on the non-blocking FD to *BUF. */
void cli_drain_fd(int fd, char **buf, size_t *len)
{
	char chunk[4096];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		char *nb = realloc(*buf, *len + (size_t)n + 1);

		ck_assert_ptr_nonnull(nb);
		memcpy(nb + *len, chunk, (size_t)n);
		*len += (size_t)n;
		nb[*len] = '\0';
		*buf = nb;
	}
}

/* Waits up to TIMEOUT_MS for PID to exit, reading DRAIN_FD (a pty master,
 * or -1) meanwhile so the child never blocks writing to it. A child still
 * running at the deadline is killed and the test fails. */
int cli_wait_child(pid_t pid, int timeout_ms, int drain, char **buf,
		      size_t *len)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (drain >= 0)
			cli_drain_fd(drain, buf, len);
		if (r == pid)
			return status;
		ck_assert_msg(r == 0, "waitpid: %s", strerror(errno));
		if (h_now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			ck_abort_msg("ferry did not exit within %d ms", timeout_ms);
		}
		if (drain >= 0) {
			struct pollfd p = { drain, POLLIN, 0 };

			poll(&p, 1, 10);
		} else {
			cli_pause_ms(5);
		}
	}
}


void cli_run_free(struct cli_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

int cli_open_capture(const char *name)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cli_capture_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	return fd;
}

void cli_read_capture(const char *name, char **buf, size_t *len)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s", cli_capture_dir, name);
	if (h_read_file(path, buf, len) < 0) {
		*buf = strdup("");
		*len = 0;
	}
}

/* Runs ferry ARGS to the end (at most CLI_RUN_MS), with SP's limits; stdout
 * and stderr are captured into LAST. */
pid_t cli_start(const char *const args[], struct cli_spawn *sp)
{
	static struct cli_spawn plain;
	pid_t pid;

	if (sp == NULL)
		sp = &plain;
	sp->out_fd = cli_open_capture("ferry.out");
	sp->err_fd = cli_open_capture("ferry.err");
	pid = cli_spawn(args, sp);
	close(sp->out_fd);
	close(sp->err_fd);
	return pid;
}

struct cli_run *cli_finish(pid_t pid)
{
	cli_run_free(&cli_last);
	cli_last.status = cli_wait_child(pid, CLI_RUN_MS, -1, NULL, NULL);
	cli_read_capture("ferry.out", &cli_last.out, &cli_last.out_len);
	cli_read_capture("ferry.err", &cli_last.err, &cli_last.err_len);
	return &cli_last;
}

struct cli_run *cli_run_with(const char *const args[], struct cli_spawn *sp)
{
	return cli_finish(cli_start(args, sp));
}

struct cli_run *cli_run(const char *const args[])
{
	struct cli_spawn sp = { -1, -1, 0, false, 0, 0 };

	return cli_run_with(args, &sp);
}

const char *cli_describe_status(int status)
{
	static char s[64];

	if (WIFEXITED(status))
		snprintf(s, sizeof(s), "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(s, sizeof(s), "signal %d", WTERMSIG(status));
	else
		snprintf(s, sizeof(s), "status 0x%x", status);
	return s;
}

void cli_expect_exit(const struct cli_run *r, int code, const char *what)
{
	ck_assert_msg(WIFEXITED(r->status) && WEXITSTATUS(r->status) == code,
		      "%s: %s, want exit %d; stderr: %s", what,
		      cli_describe_status(r->status), code, r->err);
}

void cli_expect_stderr_has(const struct cli_run *r, const char *needle,
			      const char *what)
{
	ck_assert_msg(strstr(r->err, needle) != NULL,
		      "%s: stderr lacks '%s': %s", what, needle, r->err);
}

/* ferry ARGS must exit 0 with nothing on stderr (ARGS hold -q). */
void cli_run_ok(const char *const args[], const char *what)
{
	struct cli_run *r = cli_run(args);

	cli_expect_exit(r, 0, what);
	ck_assert_msg(r->err_len == 0, "%s: stderr: %s", what, r->err);
}

/* LOCAL must hold exactly the LENGTH bytes of REMOTE from OFFSET. */
void cli_expect_same(const char *local, const char *remote,
			uint64_t offset, uint64_t length, const char *what)
{
	static char a[MIB], b[MIB];
	struct stat st;
	uint64_t at = 0;
	int fa, fb;

	ck_assert_msg(stat(local, &st) == 0, "%s: %s: %s", what, local,
		      strerror(errno));
	ck_assert_msg((uint64_t)st.st_size == length,
		      "%s: %s holds %lld bytes, want %llu", what, local,
		      (long long)st.st_size, (unsigned long long)length);
	fa = open(local, O_RDONLY | O_CLOEXEC);
	fb = open(remote, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fa >= 0 && fb >= 0, "%s: opening: %s", what,
		      strerror(errno));
	while (at < length) {
		size_t want = length - at < sizeof(a) ? (size_t)(length - at)
						      : sizeof(a);
		ssize_t na = pread(fa, a, want, (off_t)at);
		ssize_t nb = pread(fb, b, want, (off_t)(offset + at));
		size_t i;

		ck_assert_msg(na == (ssize_t)want && nb == (ssize_t)want,
			      "%s: short read at %llu", what,
			      (unsigned long long)at);
		if (memcmp(a, b, want) != 0) {
			for (i = 0; a[i] == b[i]; i++)
				;
			ck_abort_msg("%s: %s differs from %s at byte %llu",
				     what, local, remote,
				     (unsigned long long)(at + i));
		}
		at += want;
	}
	close(fa);
	close(fb);
}

void cli_expect_absent(const char *path, const char *what)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) < 0 && errno == ENOENT,
		      "%s: %s should not exist", what, path);
}

uint64_t cli_file_bytes(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

/* A listening socket on 127.0.0.1, port in *PORT. */
int cli_fake_listen(int *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

char *cli_run_on_tty(const char *const args[], int *status)
{
	struct cli_spawn sp = { -1, -1, 0, false, 0, 0 };
	char *text = NULL;
	size_t len = 0;
	int master, slave;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_msg(master >= 0, "posix_openpt: %s", strerror(errno));
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_msg(slave >= 0, "%s: %s", ptsname(master), strerror(errno));
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	sp.out_fd = cli_open_capture("ferry.out");
	sp.err_fd = slave;
	text = strdup("");
	*status = cli_wait_child(cli_spawn(args, &sp), CLI_RUN_MS, master, &text,
			     &len);
	close(sp.out_fd);
	close(slave);
	cli_drain_fd(master, &text, &len);
	close(master);
	return text;
}
