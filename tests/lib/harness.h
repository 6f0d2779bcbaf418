/* Integration test harness: runs the real ferryd on port 0 with a config
 * written for the test, and talks to it over loopback.
 *
 * Every wait here is bounded by a deadline, and nothing the harness starts
 * outlives the test process (see "Cleanup" in harness.c). Functions return
 * 0 or a negative errno, plus the H_* codes below; h_strerror() describes
 * both. They never assert: the tests do. */
#ifndef FERRY_HARNESS_H
#define FERRY_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The peer closed before the expected bytes had all arrived. */
#define H_EOF 1

/* Fixed sizes of the files every test root holds. */
#define H_SMALL_BYTES (100 * 1024)
#define H_BIG_BYTES (100ULL * 1024 * 1024)
/* Modification time given to every file in a test root. */
#define H_MTIME 1764000000

struct h_daemon {
	char dir[256];          /* the test's own temp dir */
	char root[300];         /* dir/root: what ferryd serves */
	char config[300];       /* dir/ferryd.yaml */
	char diag_log[300];     /* dir/ferryd.log: ferryd's stderr and stdout */
	char transfer_log[300]; /* dir/transfers.log */
	char mode[16];          /* "sendfile" or "buffered" */
	pid_t pid;              /* 0 when not running */
	int port;               /* the bound port, read from the log */
	int fd_baseline;        /* open fds right after startup */
	/* Error lines in the diagnostic log that contain this are expected. */
	const char *allowed_error;
};

/* -- the run: one temp dir and the 100 MiB file, shared by every test --- */

/* Creates the run dir and the 100 MiB random file. Call once, in main(). */
int h_run_init(void);
/* Makes this process the reaper of daemons whose test process died (Check
 * ends a failed test with _exit, so no teardown or atexit runs there). */
void h_adopt_orphans(void);
/* Kills and reaps every child this process has left. */
void h_reap_orphans(void);
/* Removes the run dir (only in the process that created it). */
void h_run_cleanup(void);
/* The shared 100 MiB file. */
const char *h_big_path(void);
/* The daemon binary: $FERRYD, else ../../src/ferryd beside the test
 * binary, else ./src/ferryd. */
const char *h_ferryd_path(void);

/* -- one test's daemon ---------------------------------------------------- */

/* Makes D's temp dir with root/ filled with the standard files (see
 * harness.c), and writes the config for MODE. Does not start ferryd. */
int h_setup(struct h_daemon *d, const char *mode);
/* Writes D's config: the defaults for D's mode, with OVERRIDES applied.
 * OVERRIDES is NULL or "section.key=value;key=value" ("limits.per_client=2",
 * "threads=2"); a key not among the defaults is added. */
int h_write_config(struct h_daemon *d, const char *overrides);
/* Starts ferryd -c D->config, waits up to 5 s for its "listening on" line,
 * and records the port and the fd baseline. On failure the daemon is killed
 * and the reason is in MSG. */
int h_start(struct h_daemon *d, char *msg, size_t cap);
/* Sends SIG to the daemon. */
int h_signal(struct h_daemon *d, int sig);
/* Waits up to TIMEOUT_MS for the daemon to exit; on success stores its wait
 * status in *STATUS and forgets the pid. -ETIMEDOUT when it is still up. */
int h_wait_exit(struct h_daemon *d, int timeout_ms, int *status);
/* SIGTERM, then waits up to TIMEOUT_MS; SIGKILL after that (returning
 * -ETIMEDOUT). *STATUS is the wait status. */
int h_stop(struct h_daemon *d, int timeout_ms, int *status);
/* Kills (SIGKILL, whole process group) and reaps the daemon, if running. */
void h_kill(struct h_daemon *d);
/* True when the daemon is running (not exited, not a zombie). */
bool h_alive(struct h_daemon *d);
/* Kills the daemon if needed and removes D's temp dir. */
void h_teardown(struct h_daemon *d);

/* Entries in /proc/PID/fd, or a negative errno. */
int h_fd_count(pid_t pid);
/* Waits up to TIMEOUT_MS for the daemon's fd count to equal TARGET. Returns
 * the last count seen. */
int h_wait_fd_count(pid_t pid, int target, int timeout_ms);
/* "0 -> /dev/null, 1 -> ..., 5 -> socket:[123]": what PID holds open, for
 * failure messages. A static buffer. */
const char *h_fd_list(pid_t pid);

/* Runs ferryd with ARGV (argv[0] ignored; NULL-terminated), stdout and
 * stderr into malloc'd *OUT and *ERR, waiting at most TIMEOUT_MS. Returns 0
 * and the wait status in *STATUS. */
int h_run_ferryd(struct h_daemon *d, const char *const argv[], int timeout_ms,
		 int *status, char **out, char **err);

/* -- files ---------------------------------------------------------------- */

/* Writes SIZE pseudo-random bytes to PATH (created or truncated). */
int h_write_random(const char *path, uint64_t size, uint64_t seed);
/* Writes LEN bytes at OFFSET of PATH, which must exist. */
int h_write_at(const char *path, uint64_t offset, const void *buf, size_t len);
/* Writes S to PATH (created or truncated). */
int h_write_text(const char *path, const char *s);
/* Reads the whole of PATH into a malloc'd, NUL-terminated *BUF. */
int h_read_file(const char *path, char **buf, size_t *len);
/* Joins D->root and REL. Returns a static buffer (one of a few in turn). */
const char *h_root_path(struct h_daemon *d, const char *rel);
/* Removes PATH and everything under it. */
int h_rm_rf(const char *path);

/* -- client --------------------------------------------------------------- */

/* Connects to 127.0.0.1:PORT (non-blocking fd, close-on-exec). fd or
 * -errno. */
int h_connect(int port, int timeout_ms);
/* Sends all LEN bytes. */
int h_send(int fd, const void *buf, size_t len, int timeout_ms);
int h_send_str(int fd, const char *s, int timeout_ms);
/* Receives one reply line into BUF (LF stripped, NUL-terminated). Returns
 * its length including the LF (> 0), 0 on EOF before any byte, -EPROTO on
 * EOF inside a line, -EMSGSIZE when longer than CAP - 1, -ETIMEDOUT. Reads
 * byte by byte, so what follows the line stays in the socket. */
ssize_t h_recv_line(int fd, char *buf, size_t cap, int timeout_ms);
/* Receives exactly N bytes into BUF. 0, H_EOF (with *GOT < N), -ETIMEDOUT
 * or -errno. GOT may be NULL. */
int h_recv_n(int fd, void *buf, size_t n, size_t *got, int timeout_ms);
/* Receives until EOF, at most MAX bytes, into a malloc'd *BUF (NUL
 * terminated). 0, -EMSGSIZE, -ETIMEDOUT or -errno; *BUF and *LEN hold what
 * arrived in every case. */
int h_recv_all(int fd, char **buf, size_t *len, size_t max, int timeout_ms);
/* Receives LENGTH bytes and compares them with PATH's bytes from OFFSET.
 * RATE_BPS paces the reading (0: as fast as possible). 0 when all matched,
 * H_EOF when the peer closed early (every byte before matched), -EILSEQ at
 * the first difference, -ETIMEDOUT; *GOT says how far it got. */
int h_recv_compare(int fd, const char *path, uint64_t offset, uint64_t length,
		   uint64_t rate_bps, uint64_t *got, int timeout_ms);
/* Waits for the peer to close: 0 on EOF (or a reset), -EBADMSG if bytes
 * arrive instead, -ETIMEDOUT. */
int h_expect_eof(int fd, int timeout_ms);
/* Connects, sends REQ, shuts down the write side, and reads until EOF. */
int h_request(int port, const char *req, char **resp, size_t *len,
	      int timeout_ms);
/* The local port of a connected socket. */
int h_local_port(int fd);

/* -- logs ----------------------------------------------------------------- */

/* Waits up to TIMEOUT_MS for a line of PATH that contains every one of the
 * NULL-terminated NEEDLES; copies the first such line (no LF) into LINE. */
int h_wait_line(const char *path, int timeout_ms, char *line, size_t cap,
		const char *const needles[]);
/* Waits up to TIMEOUT_MS for PATH to exist. */
int h_wait_exists(const char *path, int timeout_ms);
/* Lines of PATH containing NEEDLE (0 when PATH does not exist). */
int h_count_lines(const char *path, const char *needle);
/* Copies the value of KEY from a text transfer log line into OUT. */
int h_field(const char *line, const char *key, char *out, size_t cap);
/* Unexpected error lines in D's diagnostic log (those not containing
 * D->allowed_error); the first is copied into FIRST. */
int h_diag_errors(struct h_daemon *d, char *first, size_t cap);
/* The last CAP - 1 bytes of D's diagnostic log, for failure messages. */
const char *h_diag_tail(struct h_daemon *d);

/* Describes a return code of these functions. */
const char *h_strerror(int rc);
/* Milliseconds on the monotonic clock. */
int64_t h_now_ms(void);

/* -- daemons started another way (added for check_service.c) ------------ */

struct rlimit;

/* Starts ARGV[0] with ARGV (NULL-terminated) the way h_start starts
 * ferryd: its own process group, killed with the test process, a clean
 * environment and fd table, stdout and stderr into D's diagnostic log. For
 * ferryd behind a wrapper: env(1) to set NOTIFY_SOCKET (which the clean
 * environment drops), or systemd-socket-activate. NOFILE, unless NULL, is
 * set as RLIMIT_NOFILE before exec. Sets D->pid and returns at once;
 * h_await_start, h_wait_exit, h_stop and h_kill then work as usual. */
int h_spawn(struct h_daemon *d, const char *const argv[],
	    const struct rlimit *nofile);
/* The rest of h_start for a daemon h_spawn started: waits up to 5 s for the
 * first "listening on 127.0.0.1:PORT" line in D's log, then records the
 * port and the fd baseline. On failure the daemon is killed and the reason
 * is in MSG. */
int h_await_start(struct h_daemon *d, char *msg, size_t cap);

#endif
