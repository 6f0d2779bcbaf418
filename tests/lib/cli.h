/* Running the built ferry client in integration tests: spawning it in its
 * own process group (killed with the test), capturing its output, its exit
 * status; comparing files; a listening socket for servers the tests stand
 * in for ferryd. Shared by check_client.c and check_sync.c. Unlike the
 * harness, these assert (Check's ck_assert). */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One ferry run may take this long. */
#define CLI_RUN_MS 60000

/* Where ferry runs (its cwd) and where its output is captured; set by the
 * test's setup. */
extern char cli_out_dir[320];
extern char cli_capture_dir[300];

struct cli_spawn {
	int out_fd, err_fd;    /* the child's stdout and stderr */
	uint64_t fsize_limit;  /* RLIMIT_FSIZE in bytes, 0 for none */
	bool ignore_xfsz;      /* so a write past the limit fails: EFBIG */
	uid_t uid;             /* run as this user and GID (0: as we are) */
	gid_t gid;
};

/* The last run: its wait status, stdout and stderr. */
struct cli_run {
	int status;
	char *out, *err;
	size_t out_len, err_len;
};

/* Makes DIR/out, where ferry runs, and captures its output in DIR. */
void cli_make_dirs(const char *dir);

/* The last run of cli_run or cli_run_with. */
extern struct cli_run cli_last;

/* The client: $FERRY, else ../../src/ferry beside this binary, else
 * ./src/ferry (as the harness finds ferryd). */
const char *cli_ferry_path(void);
/* OUT_DIR/REL, in one of a few buffers used in turn. */
const char *cli_out_path(const char *rel);
void cli_pause_ms(int ms);
/* Starts ferry ARGS (without argv[0]) in OUT_DIR with TZ=UTC. */
pid_t cli_spawn(const char *const args[], const struct cli_spawn *sp);
/* Appends what is readable on the non-blocking FD to *BUF. */
void cli_drain_fd(int fd, char **buf, size_t *len);
/* Waits up to TIMEOUT_MS for PID to exit, reading DRAIN_FD (a pty master,
 * or -1) meanwhile so the child never blocks writing to it. A child still
 * running at the deadline is killed and the test fails. */
int cli_wait_child(pid_t pid, int timeout_ms, int drain, char **buf,
		      size_t *len);
void cli_run_free(struct cli_run *r);
int cli_open_capture(const char *name);
void cli_read_capture(const char *name, char **buf, size_t *len);
/* Starts ferry ARGS with SP's limits (NULL: none), its stdout and stderr
 * captured. */
pid_t cli_start(const char *const args[], struct cli_spawn *sp);
/* Waits for PID (at most CLI_RUN_MS) and reads its captures into
 * CLI_LAST. */
struct cli_run *cli_finish(pid_t pid);
/* Runs ferry ARGS to the end (at most CLI_RUN_MS), with SP's limits; stdout
 * and stderr are captured into LAST. */
struct cli_run *cli_run_with(const char *const args[], struct cli_spawn *sp);
struct cli_run *cli_run(const char *const args[]);
const char *cli_describe_status(int status);
void cli_expect_exit(const struct cli_run *r, int code, const char *what);
void cli_expect_stderr_has(const struct cli_run *r, const char *needle,
			      const char *what);
/* ferry ARGS must exit 0 with nothing on stderr (ARGS hold -q). */
void cli_run_ok(const char *const args[], const char *what);
/* LOCAL must hold exactly the LENGTH bytes of REMOTE from OFFSET. */
void cli_expect_same(const char *local, const char *remote,
			uint64_t offset, uint64_t length, const char *what);
void cli_expect_absent(const char *path, const char *what);
uint64_t cli_file_bytes(const char *path);
/* Runs ferry ARGS with stderr on a pseudo-terminal; returns what it
 * wrote there (malloc'd). */
char *cli_run_on_tty(const char *const args[], int *status);
/* A listening socket on 127.0.0.1, port in *PORT. */
int cli_fake_listen(int *port);

#endif
