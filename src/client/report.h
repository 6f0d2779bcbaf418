/* The messages of ferry get and ferry sync about single files, and the
 * exit codes they map to; the one place besides the commands' own option
 * parsing where the client prints (STYLE.md: functions never print). */
#ifndef FERRY_REPORT_H
#define FERRY_REPORT_H

#include <stdbool.h>

#include "client/client.h"

/* Exit codes, as man/ferry.1 documents them. */
#define FERRY_EXIT_DONE 0
#define FERRY_EXIT_REFUSED 1 /* the server answered ERR */
#define FERRY_EXIT_USAGE 2
#define FERRY_EXIT_FAILED 3 /* network or I/O */
#define FERRY_EXIT_VERIFY 4 /* --verify: a digest or version mismatch */

/* Says on stderr what became of job J (nothing for a plain success; with
 * RESUME, a restart is mentioned unless QUIET) and returns its exit code.
 * RETRY says how to finish a cut-off part ("resume with -c"). */
int report_job(const struct client_job *j, bool resume, bool quiet,
	       const char *retry);

/* Says on stderr why connecting to T failed (RC from client_connect, C
 * the conn it filled); returns FERRY_EXIT_FAILED. */
int report_connect(const struct client_target *t, const struct client_conn *c,
		   int rc);

/* Draws LINE as the progress line on stderr (over the last one). */
void report_progress(const char *line);
/* Clears the progress line. */
void report_progress_clear(void);

#endif
