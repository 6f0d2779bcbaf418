/* Integration test harness (see harness.h).
 *
 * Layout of a run: h_run_init() makes /tmp/ferry-check.XXXXXX (or under
 * $TMPDIR) with shared/big.bin, the 100 MiB file, written once. Each test
 * gets its own dir t.XXXXXX inside it:
 *
 *   ferryd.yaml  ferryd.log  transfers.log
 *   root/empty.bin (0 B)  one.bin (1 B)  small.bin (100 KiB)
 *        big.bin (a hard link to shared/big.bin)
 *        "GET x"  "with space.txt"
 *        sub/a.txt  sub/b.bin  sub/deeper/  sub/.hid
 *        .hidden  .hiddendir/inside.txt
 *
 * Every file and directory in root/ gets the modification time H_MTIME, so
 * OK lines and listings can be compared byte for byte.
 *
 * Cleanup: in Check's fork mode a failed assertion ends the test's process
 * with _exit(), so neither the checked teardown nor atexit handlers run, and
 * a timeout ends it with SIGKILL. So each daemon runs in its own process
 * group with PR_SET_PDEATHSIG(SIGKILL): it dies with the test process that
 * started it. main() makes itself the child subreaper (h_adopt_orphans), so
 * such a daemon is reaped by the test binary rather than left to init, and
 * kills and reaps whatever is left at the end (h_reap_orphans), before
 * h_run_cleanup() removes the run dir with every test dir in it. When the
 * tests run without fork (CK_FORK=no), an atexit handler kills the daemons
 * and removes the dirs the process still holds. */
/* configure defines it on the command line; so does this file, alone. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static int h_child_count(pid_t ppid);

#define START_TIMEOUT_MS 5000
#define POLL_INTERVAL_MS 10

/* ---- time ------------------------------------------------------------ */

int64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until DEADLINE (never negative). */
static int left_ms(int64_t deadline)
{
	int64_t left = deadline - h_now_ms();

	return left > 0 ? (int)left : 0;
}

/* Pauses between two checks of a condition that has no event to wait on
 * (a file growing, a process exiting). */
static void pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *h_strerror(int rc)
{
	if (rc == 0)
		return "ok";
	if (rc == H_EOF)
		return "connection closed early";
	if (rc == -EILSEQ)
		return "bytes differ from the file";
	if (rc == -EBADMSG)
		return "unexpected bytes";
	if (rc == -EPROTO)
		return "connection closed inside a line";
	if (rc < 0)
		return strerror(-rc);
	return "unknown";
}

/* ---- cleanup registry -------------------------------------------------- */

#define MAX_TRACKED 16

struct tracked {
	pid_t owner; /* the process that started the daemon / made the dir */
	pid_t pid;   /* a daemon, or 0 */
	char dir[256];
};

static struct tracked tracked[MAX_TRACKED];
static pid_t atexit_owner;

static void cleanup_at_exit(void)
{
	size_t i;

	for (i = 0; i < MAX_TRACKED; i++) {
		struct tracked *t = &tracked[i];

		if (t->owner != getpid())
			continue;
		if (t->pid > 0) {
			kill(-t->pid, SIGKILL);
			kill(t->pid, SIGKILL);
			waitpid(t->pid, NULL, 0);
		}
		if (t->dir[0] != '\0')
			h_rm_rf(t->dir);
		memset(t, 0, sizeof(*t));
	}
}

static void track(pid_t pid, const char *dir)
{
	size_t i;

	if (atexit_owner != getpid()) {
		atexit(cleanup_at_exit);
		atexit_owner = getpid();
	}
	for (i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i].owner == 0 || tracked[i].owner != getpid()) {
			tracked[i].owner = getpid();
			tracked[i].pid = pid;
			snprintf(tracked[i].dir, sizeof(tracked[i].dir), "%s",
				 dir != NULL ? dir : "");
			return;
		}
	}
}

static void untrack_pid(pid_t pid)
{
	size_t i;

	for (i = 0; i < MAX_TRACKED; i++)
		if (tracked[i].owner == getpid() && tracked[i].pid == pid)
			memset(&tracked[i], 0, sizeof(tracked[i]));
}

static void untrack_dir(const char *dir)
{
	size_t i;

	for (i = 0; i < MAX_TRACKED; i++)
		if (tracked[i].owner == getpid() && tracked[i].pid == 0 &&
		    strcmp(tracked[i].dir, dir) == 0)
			memset(&tracked[i], 0, sizeof(tracked[i]));
}

/* ---- files ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int h_write_random(const char *path, uint64_t size, uint64_t seed)
{
	static uint64_t block[1 << 17]; /* 1 MiB */
	uint64_t state = seed;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (size > 0 && rc == 0) {
		size_t n = size < sizeof(block) ? (size_t)size : sizeof(block);
		size_t i;

		for (i = 0; i < (n + 7) / 8; i++)
			block[i] = splitmix64(&state);
		rc = write_full(fd, block, n);
		size -= n;
	}
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int h_write_at(const char *path, uint64_t offset, const void *buf, size_t len)
{
	const char *p = buf;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	close(fd);
	return rc;
}

int h_write_text(const char *path, const char *s)
{
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	rc = write_full(fd, s, strlen(s));
	close(fd);
	return rc;
}

int h_read_file(const char *path, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	b = malloc(cap);
	if (b == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r;

		if (cap - n < 2) {
			char *nb = realloc(b, cap * 2);

			if (nb == NULL) {
				free(b);
				close(fd);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		r = read(fd, b + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = -errno;

			free(b);
			close(fd);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	b[n] = '\0';
	*buf = b;
	*len = n;
	return 0;
}

const char *h_root_path(struct h_daemon *d, const char *rel)
{
	static char bufs[4][PATH_MAX];
	static unsigned which;
	char *b = bufs[which++ % 4];

	while (*rel == '/')
		rel++;
	snprintf(b, PATH_MAX, "%s/%s", d->root, rel);
	return b;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int h_rm_rf(const char *path)
{
	if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
		return -EINVAL;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return -errno;
	return 0;
}

/* ---- the run ----------------------------------------------------------- */

static char run_dir[256];
static char big_path[300];
static pid_t run_owner;

int h_run_init(void)
{
	const char *tmp = getenv("TMPDIR");
	char shared[300];
	int rc;

	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(run_dir, sizeof(run_dir), "%s/ferry-check.XXXXXX", tmp);
	if (mkdtemp(run_dir) == NULL)
		return -errno;
	run_owner = getpid();
	snprintf(shared, sizeof(shared), "%s/shared", run_dir);
	if (mkdir(shared, 0755) < 0)
		return -errno;
	if (snprintf(big_path, sizeof(big_path), "%s/big.bin", shared) >=
	    (int)sizeof(big_path))
		return -ENAMETOOLONG;
	rc = h_write_random(big_path, H_BIG_BYTES,
			    (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32);
	return rc;
}

void h_run_cleanup(void)
{
	if (run_owner == getpid() && run_dir[0] != '\0')
		h_rm_rf(run_dir);
}

void h_adopt_orphans(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

void h_reap_orphans(void)
{
	char path[64], *text = NULL;
	struct dirent *e;
	size_t len;
	DIR *proc;

	proc = opendir("/proc");
	if (proc != NULL) {
		while ((e = readdir(proc)) != NULL) {
			char *state;
			long pid = strtol(e->d_name, &state, 10);
			int ppid;

			if (pid <= 0 || *state != '\0')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
			if (h_read_file(path, &text, &len) < 0)
				continue;
			/* "PID (COMM) STATE PPID ...": COMM may hold
			 * anything, so parse from its closing paren. */
			state = strrchr(text, ')');
			if (state != NULL &&
			    sscanf(state + 1, " %*c %d", &ppid) == 1 &&
			    ppid == (int)getpid() &&
			    kill((pid_t)pid, SIGKILL) == 0)
				/* SIGKILL: this wait is short. */
				waitpid((pid_t)pid, NULL, 0);
			free(text);
			text = NULL;
		}
		closedir(proc);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

const char *h_big_path(void)
{
	return big_path;
}

const char *h_ferryd_path(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	const char *env = getenv("FERRYD");
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != '\0')
		return env;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			/* libtool may put the real binary in .libs/. */
			if (snprintf(path, sizeof(path), "%s/../../src/ferryd",
				     self) < (int)sizeof(path) &&
			    access(path, X_OK) == 0)
				return path;
			if (snprintf(path, sizeof(path),
				     "%s/../../../src/ferryd",
				     self) < (int)sizeof(path) &&
			    access(path, X_OK) == 0)
				return path;
		}
	}
	return "./src/ferryd";
}

/* ---- one test's root and config ------------------------------------ */

static int set_mtime(const char *path)
{
	struct timespec ts[2] = { { H_MTIME, 0 }, { H_MTIME, 0 } };

	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int populate_root(struct h_daemon *d)
{
	static const char *const dirs[] = { "sub", "sub/deeper", ".hiddendir" };
	static const char *const texts[][2] = {
		{ "GET x", "a file named like a request\n" },
		{ "with space.txt", "spaces in the name\n" },
		{ "sub/a.txt", "alpha\n" },
		{ "sub/.hid", "hidden in sub\n" },
		{ ".hidden", "hidden at the top\n" },
		{ ".hiddendir/inside.txt", "inside a hidden dir\n" },
	};
	/* Children before parents, so setting a child's time does not
	 * change its parent's afterwards. */
	static const char *const stamp[] = {
		"empty.bin", "one.bin", "small.bin", "big.bin", "GET x",
		"with space.txt", "sub/a.txt", "sub/b.bin", "sub/.hid",
		".hidden", ".hiddendir/inside.txt", "sub/deeper", "sub",
		".hiddendir", "",
	};
	uint64_t seed = (uint64_t)h_now_ms() ^ ((uint64_t)getpid() << 20);
	size_t i;
	int rc;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdir(h_root_path(d, dirs[i]), 0755) < 0)
			return -errno;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		rc = h_write_text(h_root_path(d, texts[i][0]), texts[i][1]);
		if (rc < 0)
			return rc;
	}
	if ((rc = h_write_random(h_root_path(d, "empty.bin"), 0, seed)) < 0 ||
	    (rc = h_write_random(h_root_path(d, "one.bin"), 1, seed + 1)) < 0 ||
	    (rc = h_write_random(h_root_path(d, "small.bin"), H_SMALL_BYTES,
				 seed + 2)) < 0 ||
	    (rc = h_write_random(h_root_path(d, "sub/b.bin"), 3000,
				 seed + 3)) < 0)
		return rc;
	if (big_path[0] == '\0' ||
	    link(big_path, h_root_path(d, "big.bin")) < 0) {
		/* No shared file, or another file system: a copy will do. */
		rc = h_write_random(h_root_path(d, "big.bin"), H_BIG_BYTES,
				    seed + 4);
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < sizeof(stamp) / sizeof(stamp[0]); i++) {
		rc = set_mtime(h_root_path(d, stamp[i]));
		if (rc < 0)
			return rc;
	}
	return 0;
}

int h_setup(struct h_daemon *d, const char *mode)
{
	const char *base = run_dir[0] != '\0' ? run_dir : "/tmp";
	int rc;

	memset(d, 0, sizeof(*d));
	if (snprintf(d->dir, sizeof(d->dir), "%s/t.XXXXXX", base) >=
	    (int)sizeof(d->dir))
		return -ENAMETOOLONG;
	if (mkdtemp(d->dir) == NULL)
		return -errno;
	track(0, d->dir);
	snprintf(d->root, sizeof(d->root), "%s/root", d->dir);
	snprintf(d->config, sizeof(d->config), "%s/ferryd.yaml", d->dir);
	snprintf(d->diag_log, sizeof(d->diag_log), "%s/ferryd.log", d->dir);
	snprintf(d->transfer_log, sizeof(d->transfer_log), "%s/transfers.log",
		 d->dir);
	snprintf(d->mode, sizeof(d->mode), "%s", mode);
	if (mkdir(d->root, 0755) < 0)
		return -errno;
	rc = populate_root(d);
	if (rc < 0)
		return rc;
	return h_write_config(d, NULL);
}

struct kv {
	char section[32]; /* "" for a top-level key */
	char key[32];
	char value[512];
};

#define MAX_KV 48

static int set_kv(struct kv *kv, size_t *n, const char *section,
		  const char *key, const char *value)
{
	size_t i, at;

	for (i = 0; i < *n; i++) {
		if (strcmp(kv[i].section, section) == 0 &&
		    strcmp(kv[i].key, key) == 0) {
			snprintf(kv[i].value, sizeof(kv[i].value), "%s", value);
			return 0;
		}
	}
	if (*n == MAX_KV)
		return -E2BIG;
	/* A new key goes after the last one of its section. */
	at = *n;
	for (i = 0; i < *n; i++)
		if (section[0] != '\0' && strcmp(kv[i].section, section) == 0)
			at = i + 1;
	memmove(&kv[at + 1], &kv[at], (*n - at) * sizeof(*kv));
	snprintf(kv[at].section, sizeof(kv[at].section), "%s", section);
	snprintf(kv[at].key, sizeof(kv[at].key), "%s", key);
	snprintf(kv[at].value, sizeof(kv[at].value), "%s", value);
	(*n)++;
	return 0;
}

int h_write_config(struct h_daemon *d, const char *overrides)
{
	struct kv kv[MAX_KV];
	size_t n = 0, i;
	char quoted[400], tmp[320], *text = NULL, *spec = NULL, *item, *save;
	size_t text_len = 0;
	FILE *f;
	int rc = 0;

	memset(kv, 0, sizeof(kv));
	set_kv(kv, &n, "", "listen", "[\"127.0.0.1:0\"]");
	snprintf(quoted, sizeof(quoted), "\"%s\"", d->root);
	set_kv(kv, &n, "", "root", quoted);
	set_kv(kv, &n, "transfer", "mode", d->mode);
	set_kv(kv, &n, "transfer", "chunk", "1MiB");
	set_kv(kv, &n, "transfer", "buffer", "256KiB");
	set_kv(kv, &n, "limits", "connections", "100");
	set_kv(kv, &n, "limits", "per_client", "64");
	set_kv(kv, &n, "limits", "request_timeout", "10s");
	set_kv(kv, &n, "limits", "idle_timeout", "60s");
	set_kv(kv, &n, "limits", "send_timeout", "60s");
	set_kv(kv, &n, "limits", "shutdown_timeout", "10s");
	snprintf(quoted, sizeof(quoted), "\"%s\"", d->transfer_log);
	set_kv(kv, &n, "log", "transfers", quoted);
	set_kv(kv, &n, "log", "format", "text");
	set_kv(kv, &n, "log", "level", "info");
	set_kv(kv, &n, "", "threads", "4");
	/* ferryd refuses to serve as root unless told so explicitly. */
	if (geteuid() == 0)
		set_kv(kv, &n, "", "user", "root");

	if (overrides != NULL) {
		spec = strdup(overrides);
		if (spec == NULL)
			return -ENOMEM;
		for (item = strtok_r(spec, ";", &save); item != NULL;
		     item = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(item, '='), *dot;

			if (eq == NULL) {
				rc = -EINVAL;
				goto out;
			}
			*eq = '\0';
			dot = strchr(item, '.');
			if (dot != NULL) {
				*dot = '\0';
				rc = set_kv(kv, &n, item, dot + 1, eq + 1);
			} else {
				rc = set_kv(kv, &n, "", item, eq + 1);
			}
			if (rc < 0)
				goto out;
		}
	}

	f = open_memstream(&text, &text_len);
	if (f == NULL) {
		rc = -errno;
		goto out;
	}
	fprintf(f, "# written by the ferry integration tests\n");
	for (i = 0; i < n; i++) {
		if (kv[i].section[0] == '\0') {
			fprintf(f, "%s: %s\n", kv[i].key, kv[i].value);
			continue;
		}
		if (i == 0 || strcmp(kv[i - 1].section, kv[i].section) != 0)
			fprintf(f, "%s:\n", kv[i].section);
		fprintf(f, "  %s: %s\n", kv[i].key, kv[i].value);
	}
	fclose(f);

	/* Written beside and renamed, so a reload never reads half a file. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", d->config);
	rc = h_write_text(tmp, text);
	if (rc == 0 && rename(tmp, d->config) < 0)
		rc = -errno;
out:
	free(text);
	free(spec);
	return rc;
}

/* ---- the daemon -------------------------------------------------------- */

/* In the child, between fork and exec: a clean environment for ferryd.
 * Only async-signal-safe calls, and _exit on failure. */
static void exec_child(pid_t parent, const char *prog, const char *out_path,
		       const char *err_path, const char *const argv[])
{
	sigset_t none;
	int fd;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(127);
	fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0 || dup2(fd, 1) < 0)
		_exit(127);
	if (err_path != NULL) {
		fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd < 0)
			_exit(127);
	}
	if (dup2(fd, 2) < 0)
		_exit(127);
	/* Nothing of the test's (sockets, the Check pipe) leaks into the
	 * daemon, so its fd count is its own. */
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
		for (fd = 3; fd < 4096; fd++)
			close(fd);
	unsetenv("JOURNAL_STREAM");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	execv(prog, (char *const *)argv);
	_exit(127);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Finds "listening on 127.0.0.1:PORT\n" (or with " (PROXY protocol)"
 * after PORT) in TEXT. 0 when not there yet. */
static int find_port(const char *text)
{
	static const char needle[] = "listening on 127.0.0.1:";
	const char *p = strstr(text, needle);
	char *end;
	long port;

	if (p == NULL)
		return 0;
	p += sizeof(needle) - 1;
	port = strtol(p, &end, 10);
	if (end == p || (*end != '\n' && *end != ' ') || port <= 0 ||
	    port > 65535)
		return 0;
	return (int)port;
}

/* Makes a round trip through the daemon's loop on a fresh connection, and
 * counts the daemon's fds while that connection is open: its socket is the
 * one fd above the idle count. Once the reply is in, the loop is running,
 * so the signal handlers are installed too. */
static int probe(struct h_daemon *d, char *msg, size_t cap)
{
	/* Text or JSON, the line names the path. */
	static const char *const needles[] = { "/sub/deeper", NULL };
	char line[256];
	int fd, rc, count;

	fd = h_connect(d->port, 2000);
	if (fd < 0) {
		snprintf(msg, cap, "probe: connect: %s", h_strerror(fd));
		return fd;
	}
	/* A listener with proxy_protocol takes nothing before a header;
	 * UNKNOWN keeps the socket's own address. */
	rc = 0;
	if (h_count_lines(d->config, "proxy_protocol: true") > 0)
		rc = h_send_str(fd, "PROXY UNKNOWN\r\n", 2000);
	if (rc == 0)
		rc = h_send_str(fd, "LIST /sub/deeper\n", 2000);
	if (rc == 0)
		rc = (int)h_recv_line(fd, line, sizeof(line), 5000);
	if (rc <= 0 || strcmp(line, "OK 0") != 0) {
		snprintf(msg, cap, "probe: no 'OK 0' to LIST /sub/deeper: %s",
			 rc <= 0 ? h_strerror(rc) : line);
		close(fd);
		return -EPROTO;
	}
	count = h_fd_count(d->pid);
	close(fd);
	if (count < 0) {
		snprintf(msg, cap, "probe: cannot count fds: %s",
			 h_strerror(count));
		return count;
	}
	d->fd_baseline = count - 1;

	/* The probe's own log line must be out before a test renames the
	 * transfer log (when the config sends it to D's file at all). */
	if (h_count_lines(d->config, d->transfer_log) > 0) {
		rc = h_wait_line(d->transfer_log, 5000, line, sizeof(line),
				 needles);
		if (rc < 0) {
			snprintf(msg, cap, "probe: no transfer log line");
			return rc;
		}
	}
	/* The parent of workers holds no client socket: its count does not
	 * move with the probe's connection. */
	if (h_fd_count(d->pid) == count && h_fd_count(d->pid) == count &&
	    h_child_count(d->pid) > 0)
		d->fd_baseline = count;
	if (h_wait_fd_count(d->pid, d->fd_baseline, 5000) != d->fd_baseline) {
		snprintf(msg, cap,
			 "probe: fd count did not settle at %d after the "
			 "probe connection closed",
			 d->fd_baseline);
		return -EPROTO;
	}
	return 0;
}

/* How many processes have PPID as their parent (workers of ferryd). */
static int h_child_count(pid_t ppid)
{
	char path[64], *text = NULL;
	size_t len;
	int n = 0;

	/* Linux lists a task's children in one file. */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)ppid,
		 (int)ppid);
	if (h_read_file(path, &text, &len) != 0)
		return 0;
	for (char *p = text; *p != '\0'; p++)
		if (*p == ' ')
			n++;
	free(text);
	return n;
}

int h_start(struct h_daemon *d, char *msg, size_t cap)
{
	const char *argv[] = { "ferryd", "-c", d->config, NULL };
	const char *prog = h_ferryd_path();
	pid_t parent = getpid(), pid;
	off_t from = file_size(d->diag_log);
	int64_t deadline;
	int status, rc;

	msg[0] = '\0';
	pid = fork();
	if (pid < 0) {
		snprintf(msg, cap, "fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0)
		exec_child(parent, prog, d->diag_log, NULL, argv);
	/* Also here, so a signal to the group cannot miss a child that has
	 * not run setpgid yet. */
	setpgid(pid, pid);
	d->pid = pid;
	track(pid, NULL);

	deadline = h_now_ms() + START_TIMEOUT_MS;
	for (;;) {
		char *text = NULL;
		size_t len = 0;

		if (h_read_file(d->diag_log, &text, &len) == 0 &&
		    (size_t)from <= len)
			d->port = find_port(text + from);
		free(text);
		if (d->port > 0)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			untrack_pid(pid);
			d->pid = 0;
			snprintf(msg, cap,
				 "%s exited (status 0x%x) before listening: %s",
				 prog, status, h_diag_tail(d));
			return -ECHILD;
		}
		if (h_now_ms() >= deadline) {
			snprintf(msg, cap,
				 "no 'listening on 127.0.0.1:PORT' within %d "
				 "ms: %s",
				 START_TIMEOUT_MS, h_diag_tail(d));
			h_kill(d);
			return -ETIMEDOUT;
		}
		pause_ms(POLL_INTERVAL_MS);
	}

	rc = probe(d, msg, cap);
	if (rc < 0) {
		size_t used = strlen(msg);

		snprintf(msg + used, cap - used, "; log: %s", h_diag_tail(d));
		h_kill(d);
		return rc;
	}
	return 0;
}

int h_signal(struct h_daemon *d, int sig)
{
	if (d->pid <= 0)
		return -ESRCH;
	if (kill(d->pid, sig) < 0)
		return -errno;
	return 0;
}

int h_wait_exit(struct h_daemon *d, int timeout_ms, int *status)
{
	int64_t deadline = h_now_ms() + timeout_ms;

	if (d->pid <= 0)
		return -ECHILD;
	for (;;) {
		pid_t r = waitpid(d->pid, status, WNOHANG);

		if (r == d->pid) {
			untrack_pid(d->pid);
			d->pid = 0;
			return 0;
		}
		if (r < 0)
			return -errno;
		if (h_now_ms() >= deadline)
			return -ETIMEDOUT;
		pause_ms(POLL_INTERVAL_MS);
	}
}

void h_kill(struct h_daemon *d)
{
	if (d->pid <= 0)
		return;
	kill(-d->pid, SIGKILL);
	kill(d->pid, SIGKILL);
	waitpid(d->pid, NULL, 0);
	untrack_pid(d->pid);
	d->pid = 0;
}

int h_stop(struct h_daemon *d, int timeout_ms, int *status)
{
	int rc = h_signal(d, SIGTERM);

	if (rc < 0)
		return rc;
	rc = h_wait_exit(d, timeout_ms, status);
	if (rc == -ETIMEDOUT) {
		h_kill(d);
		*status = 0;
	}
	return rc;
}

bool h_alive(struct h_daemon *d)
{
	char path[64], *text = NULL, *state;
	size_t len;
	bool alive;

	if (d->pid <= 0 || waitpid(d->pid, NULL, WNOHANG) != 0 ||
	    kill(d->pid, 0) < 0)
		return false;
	/* A zombie answers kill(0) too; /proc says what it really is. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)d->pid);
	if (h_read_file(path, &text, &len) < 0)
		return false;
	state = strrchr(text, ')');
	alive = state != NULL && state[1] == ' ' && state[2] != 'Z' &&
		state[2] != 'X';
	free(text);
	return alive;
}

void h_teardown(struct h_daemon *d)
{
	h_kill(d);
	if (d->dir[0] != '\0') {
		h_rm_rf(d->dir);
		untrack_dir(d->dir);
		d->dir[0] = '\0';
	}
}

int h_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (dir == NULL)
		return -errno;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

const char *h_fd_list(pid_t pid)
{
	static char list[2048];
	char path[64], link[PATH_MAX];
	struct dirent *e;
	size_t used = 0;
	DIR *dir;

	list[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (dir == NULL)
		return "(cannot read /proc)";
	while ((e = readdir(dir)) != NULL && used < sizeof(list) - 1) {
		char fdpath[128];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		if (snprintf(fdpath, sizeof(fdpath), "%s/%s", path,
			     e->d_name) >= (int)sizeof(fdpath))
			continue;
		n = readlink(fdpath, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%s -> %s", used > 0 ? ", " : "",
					 e->d_name, link);
	}
	closedir(dir);
	return list;
}

int h_wait_fd_count(pid_t pid, int target, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int n;

	for (;;) {
		n = h_fd_count(pid);
		if (n == target || n < 0 || h_now_ms() >= deadline)
			return n;
		pause_ms(POLL_INTERVAL_MS);
	}
}

int h_run_ferryd(struct h_daemon *d, const char *const argv[], int timeout_ms,
		 int *status, char **out, char **err)
{
	struct h_daemon child;
	char out_path[320], err_path[320];
	const char *args[16], *prog = h_ferryd_path();
	pid_t parent = getpid(), pid;
	size_t i, len;
	int rc;

	*out = NULL;
	*err = NULL;
	snprintf(out_path, sizeof(out_path), "%s/cli.out", d->dir);
	snprintf(err_path, sizeof(err_path), "%s/cli.err", d->dir);
	unlink(out_path);
	unlink(err_path);
	args[0] = "ferryd";
	for (i = 1; argv[i] != NULL && i < 15; i++)
		args[i] = argv[i];
	args[i] = NULL;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		exec_child(parent, prog, out_path, err_path, args);
	setpgid(pid, pid);
	memset(&child, 0, sizeof(child));
	child.pid = pid;
	track(pid, NULL);
	rc = h_wait_exit(&child, timeout_ms, status);
	if (rc < 0) {
		h_kill(&child);
		return rc;
	}
	h_read_file(out_path, out, &len);
	h_read_file(err_path, err, &len);
	if (*out == NULL)
		*out = strdup("");
	if (*err == NULL)
		*err = strdup("");
	return 0;
}

/* ---- client ------------------------------------------------------------ */

/* Waits until FD is ready for EVENTS or DEADLINE passes. 0 or -ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, left_ms(deadline));

		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int h_connect(int port, int timeout_ms)
{
	struct sockaddr_in sa;
	int64_t deadline = h_now_ms() + timeout_ms;
	int fd, err = 0, rc;
	socklen_t len = sizeof(err);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc < 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
		rc = -errno;
		goto fail;
	}
	if (err != 0) {
		rc = -err;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

int h_send(int fd, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int rc = wait_fd(fd, POLLOUT, deadline);

				if (rc < 0)
					return rc;
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int h_send_str(int fd, const char *s, int timeout_ms)
{
	return h_send(fd, s, strlen(s), timeout_ms);
}

/* One recv with a deadline: > 0 bytes, 0 on EOF, or a negative errno. A
 * reset counts as EOF: the peer is gone either way. */
static ssize_t recv_some(int fd, void *buf, size_t cap, int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(fd, buf, cap, 0);

		if (n >= 0)
			return n;
		if (errno == ECONNRESET)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			int rc = wait_fd(fd, POLLIN, deadline);

			if (rc < 0)
				return rc;
			continue;
		}
		return -errno;
	}
}

ssize_t h_recv_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r;

		if (n + 1 >= cap) {
			buf[n] = '\0';
			return -EMSGSIZE;
		}
		r = recv_some(fd, &c, 1, deadline);
		if (r < 0) {
			buf[n] = '\0';
			return r;
		}
		if (r == 0) {
			buf[n] = '\0';
			return n == 0 ? 0 : -EPROTO;
		}
		if (c == '\n') {
			buf[n] = '\0';
			return (ssize_t)n + 1;
		}
		buf[n++] = c;
	}
}

int h_recv_n(int fd, void *buf, size_t n, size_t *got, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	size_t have = 0;
	int rc = 0;

	while (have < n) {
		ssize_t r = recv_some(fd, (char *)buf + have, n - have,
				      deadline);

		if (r <= 0) {
			rc = r == 0 ? H_EOF : (int)r;
			break;
		}
		have += (size_t)r;
	}
	if (got != NULL)
		*got = have;
	return rc;
}

int h_recv_all(int fd, char **buf, size_t *len, size_t max, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	size_t cap = 65536, n = 0;
	char *b = malloc(cap + 1);
	int rc = 0;

	if (b == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb;

			if (cap >= max) {
				rc = -EMSGSIZE;
				break;
			}
			nb = realloc(b, cap * 2 + 1);
			if (nb == NULL) {
				rc = -ENOMEM;
				break;
			}
			b = nb;
			cap *= 2;
		}
		r = recv_some(fd, b + n, cap - n, deadline);
		if (r < 0) {
			rc = (int)r;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	return rc;
}

int h_recv_compare(int fd, const char *path, uint64_t offset, uint64_t length,
		   uint64_t rate_bps, uint64_t *got, int timeout_ms)
{
	static char net[256 * 1024], disk[256 * 1024];
	int64_t deadline = h_now_ms() + timeout_ms, start = h_now_ms();
	size_t chunk = rate_bps > 0 ? 16 * 1024 : sizeof(net);
	uint64_t have = 0;
	int file, rc = 0;

	file = open(path, O_RDONLY | O_CLOEXEC);
	if (file < 0)
		return -errno;
	while (have < length) {
		size_t want = length - have < chunk ? (size_t)(length - have)
						    : chunk;
		size_t i, k = 0;
		ssize_t r;

		if (rate_bps > 0) {
			/* Pacing: stay at RATE_BPS by not reading ahead of
			 * schedule. */
			int64_t due = start + (int64_t)(have * 1000 / rate_bps);

			if (due > h_now_ms())
				pause_ms((int)(due - h_now_ms()));
		}
		r = recv_some(fd, net, want, deadline);
		if (r <= 0) {
			rc = r == 0 ? H_EOF : (int)r;
			break;
		}
		while (k < (size_t)r) {
			ssize_t m = pread(file, disk + k, (size_t)r - k,
					  (off_t)(offset + have + k));

			if (m <= 0) {
				rc = m < 0 ? -errno : -EILSEQ;
				goto out;
			}
			k += (size_t)m;
		}
		if (memcmp(net, disk, (size_t)r) != 0) {
			for (i = 0; net[i] == disk[i]; i++)
				;
			have += i;
			rc = -EILSEQ;
			break;
		}
		have += (uint64_t)r;
	}
out:
	close(file);
	if (got != NULL)
		*got = have;
	return rc;
}

int h_expect_eof(int fd, int timeout_ms)
{
	char c;
	ssize_t r = recv_some(fd, &c, 1, h_now_ms() + timeout_ms);

	if (r < 0)
		return (int)r;
	return r == 0 ? 0 : -EBADMSG;
}

int h_request(int port, const char *req, char **resp, size_t *len,
	      int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int fd, rc;

	*resp = NULL;
	*len = 0;
	fd = h_connect(port, timeout_ms);
	if (fd < 0)
		return fd;
	rc = h_send_str(fd, req, left_ms(deadline));
	if (rc == 0 && shutdown(fd, SHUT_WR) < 0)
		rc = -errno;
	if (rc == 0)
		rc = h_recv_all(fd, resp, len, 256 * 1024 * 1024,
				left_ms(deadline));
	close(fd);
	return rc;
}

int h_local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -errno;
	return ntohs(sa.sin_port);
}

/* ---- logs -------------------------------------------------------------- */

/* Copies the line of TEXT around P (without its LF) into OUT. */
static void copy_line(const char *text, const char *p, char *out, size_t cap)
{
	const char *start = p, *end = strchr(p, '\n');

	while (start > text && start[-1] != '\n')
		start--;
	if (end == NULL)
		end = p + strlen(p);
	snprintf(out, cap, "%.*s", (int)(end - start), start);
}

/* The first complete line of TEXT holding every needle, or NULL. */
static const char *find_line(const char *text, const char *const needles[])
{
	const char *line = text;

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		size_t i;
		bool all = true;

		if (end == NULL)
			return NULL; /* not complete yet */
		for (i = 0; needles[i] != NULL && all; i++) {
			const char *p = strstr(line, needles[i]);

			all = p != NULL && p < end;
		}
		if (all)
			return line;
		line = end + 1;
	}
	return NULL;
}

int h_wait_line(const char *path, int timeout_ms, char *line, size_t cap,
		const char *const needles[])
{
	int64_t deadline = h_now_ms() + timeout_ms;

	for (;;) {
		char *text = NULL;
		size_t len;
		const char *p = NULL;

		if (h_read_file(path, &text, &len) == 0)
			p = find_line(text, needles);
		if (p != NULL) {
			copy_line(text, p, line, cap);
			free(text);
			return 0;
		}
		free(text);
		if (h_now_ms() >= deadline) {
			if (cap > 0)
				line[0] = '\0';
			return -ETIMEDOUT;
		}
		pause_ms(POLL_INTERVAL_MS);
	}
}

int h_wait_exists(const char *path, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	struct stat st;

	while (stat(path, &st) < 0) {
		if (h_now_ms() >= deadline)
			return -ETIMEDOUT;
		pause_ms(POLL_INTERVAL_MS);
	}
	return 0;
}

int h_count_lines(const char *path, const char *needle)
{
	char *text = NULL, *p;
	size_t len;
	int n = 0;

	if (h_read_file(path, &text, &len) < 0)
		return 0;
	for (p = text; (p = strstr(p, needle)) != NULL; n++) {
		char *end = strchr(p, '\n');

		if (end == NULL)
			break;
		p = end + 1;
	}
	free(text);
	return n;
}

int h_field(const char *line, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key);
	const char *p = line;

	while ((p = strstr(p, key)) != NULL) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, " \n");

			snprintf(out, cap, "%.*s", (int)n, v);
			return 0;
		}
		p += klen;
	}
	if (cap > 0)
		out[0] = '\0';
	return -ENOENT;
}

int h_diag_errors(struct h_daemon *d, char *first, size_t cap)
{
	char *text = NULL, *line, *save;
	size_t len;
	int n = 0;

	if (cap > 0)
		first[0] = '\0';
	if (h_read_file(d->diag_log, &text, &len) < 0)
		return 0;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strstr(line, "]: error: ") == NULL)
			continue;
		if (d->allowed_error != NULL &&
		    strstr(line, d->allowed_error) != NULL)
			continue;
		if (n++ == 0)
			snprintf(first, cap, "%s", line);
	}
	free(text);
	return n;
}

const char *h_diag_tail(struct h_daemon *d)
{
	static char tail[1500];
	char *text = NULL;
	size_t len;

	if (h_read_file(d->diag_log, &text, &len) < 0) {
		snprintf(tail, sizeof(tail), "(no log at %s)", d->diag_log);
		return tail;
	}
	snprintf(tail, sizeof(tail), "%s",
		 len < sizeof(tail) ? text : text + len - (sizeof(tail) - 1));
	free(text);
	return tail;
}

/* ---- daemons started another way (added for check_service.c) --------- */

int h_spawn(struct h_daemon *d, const char *const argv[],
	    const struct rlimit *nofile)
{
	pid_t parent = getpid(), pid;

	if (d->pid > 0)
		return -EBUSY;
	d->port = 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* Limits survive exec, so ferryd starts under this one. */
		if (nofile != NULL && setrlimit(RLIMIT_NOFILE, nofile) < 0)
			_exit(127);
		exec_child(parent, argv[0], d->diag_log, NULL, argv);
	}
	setpgid(pid, pid);
	d->pid = pid;
	track(pid, NULL);
	return 0;
}

int h_await_start(struct h_daemon *d, char *msg, size_t cap)
{
	int64_t deadline = h_now_ms() + START_TIMEOUT_MS;
	int status, rc;

	msg[0] = '\0';
	if (d->pid <= 0) {
		snprintf(msg, cap, "no daemon was started");
		return -ECHILD;
	}
	for (;;) {
		char *text = NULL;
		size_t len = 0;

		if (h_read_file(d->diag_log, &text, &len) == 0)
			d->port = find_port(text);
		free(text);
		if (d->port > 0)
			break;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			untrack_pid(d->pid);
			d->pid = 0;
			snprintf(msg, cap, "exited (status 0x%x) before "
					   "listening: %s",
				 status, h_diag_tail(d));
			return -ECHILD;
		}
		if (h_now_ms() >= deadline) {
			snprintf(msg, cap,
				 "no 'listening on 127.0.0.1:PORT' within %d "
				 "ms: %s",
				 START_TIMEOUT_MS, h_diag_tail(d));
			h_kill(d);
			return -ETIMEDOUT;
		}
		pause_ms(POLL_INTERVAL_MS);
	}
	rc = probe(d, msg, cap);
	if (rc < 0) {
		size_t used = strlen(msg);

		snprintf(msg + used, cap - used, "; log: %s", h_diag_tail(d));
		h_kill(d);
	}
	return rc;
}
