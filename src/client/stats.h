/* `ferry stats`: reads transfer logs (translog.h, text or JSON, mixed freely)
 * and summarises them: per mode the transfers, bytes and throughput
 * percentiles, errors by status, the top paths by bytes, and optionally an
 * SVG plot of throughput over time.
 *
 * The parts are pure and reached by the unit tests directly, one file each:
 * stats_read.c the line parser (stats_parse_line), the time parser for
 * --since/--until (stats_parse_time) and stats_read; stats_summary.c the
 * accumulator (stats_add and friends) and the report; stats_svg.c the SVG
 * writer (both write to any FILE *). stats.c holds stats_main, the thin
 * layer that reads files and sets the exit code. One header serves the four:
 * they share struct stats and struct stats_record, and the definitions
 * below are what every one of them implements.
 *
 * Definitions the report relies on:
 *  - A transfer is one well-formed log line whose time is within
 *    [since, until): --since is inclusive, --until exclusive, so
 *    "--since 2026-11-24 --until 2026-11-25" is exactly that UTC day.
 *  - Bytes are the bytes= field summed over every transfer, whatever its
 *    status (a 499 still sent what it sent).
 *  - Throughput samples are the logged mib_per_s of the transfers with status
 *    200 and bytes > 0 ("completed transfers"); only they enter the
 *    percentiles and the SVG plot.
 *  - Percentiles are nearest-rank: of N sorted samples, pP is the sample at
 *    rank ceil(P / 100 * N) (1-based), so p50 of {1, 2, 3, 4} is 2, and p100
 *    is the maximum. Every reported value is one that was logged.
 *  - Errors are the transfers with a status other than 200, counted per
 *    status.
 *  - Top paths: bytes summed per path over all transfers, paths with 0 bytes
 *    left out, largest first, ties by path in byte order, at most 10. */
#ifndef FERRY_STATS_H
#define FERRY_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/protocol.h"

#define STATS_CLIENT_MAX 128          /* bytes, NUL included */
#define STATS_PATH_MAX FERRY_LINE_MAX /* bytes, NUL included */
#define STATS_MODE_MAX 32             /* bytes, NUL included */
#define STATS_STATUS_MAX 999          /* statuses are 100..999 */
#define STATS_TOP_PATHS 10
#define STATS_MALFORMED_SHOWN 10      /* malformed lines reported by place */
#define STATS_MS_PER_S INT64_C(1000)
#define STATS_MS_PER_DAY (INT64_C(86400) * STATS_MS_PER_S)

/* One transfer log line. Strings are decoded (the text format's percent
 * encoding and JSON's escapes undone) and NUL-terminated. */
struct stats_record {
	int64_t time_ms; /* Unix epoch, milliseconds, UTC */
	char client[STATS_CLIENT_MAX];
	char path[STATS_PATH_MAX];
	char mode[STATS_MODE_MAX];
	int status;
	uint64_t offset;
	uint64_t bytes;
	uint64_t size;
	double duration_s;
	double mib_per_s;
};

/* Parses one log line of LEN bytes (a trailing LF or CRLF is allowed), in
 * either format:
 *   text: TIME key=value ... (TIME first, pairs separated by spaces, values
 *         percent-encoded as in the protocol);
 *   JSON: one flat object, "time" holding TIME.
 * TIME is YYYY-MM-DDTHH:MM:SS[.fraction]Z. A line is well-formed when it has
 * each of time, client, path, mode, status, offset, bytes, size, duration_s
 * and mib_per_s exactly once, with values of the right type and range
 * (status 100..999; offset, bytes, size unsigned integers; duration_s,
 * mib_per_s finite and >= 0). Other keys ("error", or any added later) are
 * ignored; in JSON they may hold any value. In JSON, \u0080..\u00ff stand for
 * the raw byte, as translog.c writes bytes that are not UTF-8.
 * Returns 0, or -EINVAL for a malformed line (OUT is then unspecified). */
int stats_parse_line(const char *line, size_t len, struct stats_record *out);

/* Parses a --since/--until argument into epoch milliseconds: an ISO-8601 UTC
 * time "2026-11-24T10:00:00Z" (seconds may carry a fraction,
 * "2026-11-24T10:00:00.123Z", of which milliseconds are kept), a date
 * "2026-11-24" (its midnight UTC), or Unix epoch seconds "1795514400"
 * (a fraction is allowed, "1795514400.5"). 0, or -EINVAL. */
int stats_parse_time(const char *s, int64_t *ms);

/* Times as the report and the plot show them (stats_read.c): A / B rounded
 * down; epoch milliseconds broken into UTC fields (*MSEC the milliseconds);
 * "2026-11-24T10:00:00.123Z", as the log writes it. */
int64_t stats_floor_div(int64_t a, int64_t b);
struct tm;
void stats_utc_fields(int64_t ms, struct tm *tm, int *msec);
void stats_format_time(int64_t ms, char *buf, size_t cap);

/* A completed transfer, as plotted. */
struct stats_point {
	int64_t time_ms;
	double mib_per_s;
};

/* Totals for one mode. RATES holds the throughput samples (see above),
 * POINTS the same samples with their times. */
struct stats_mode {
	char name[STATS_MODE_MAX];
	uint64_t transfers;
	uint64_t bytes;
	double *rates;
	struct stats_point *points;
	size_t samples;
	size_t cap;
};

struct stats_path_total {
	const char *path; /* owned by the path index */
	uint64_t bytes;
};

/* Where a malformed line was. NAME is the caller's string given to
 * stats_read, not a copy. */
struct stats_place {
	const char *name;
	uint64_t line;
};

/* A string -> array index hash table (open addressing, linear probing). It
 * owns copies of its keys, which never move once made, so the path totals
 * point at them. */
struct stats_slot {
	char *key; /* NULL for an empty slot */
	size_t value;
};

struct stats_index {
	struct stats_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t used;
};

/* The accumulator. Set SINCE_MS/UNTIL_MS after stats_init to filter.
 * Everything it holds is freed by stats_free. */
struct stats {
	int64_t since_ms; /* inclusive; INT64_MIN when not bounded */
	int64_t until_ms; /* exclusive; INT64_MAX when not bounded */

	uint64_t transfers;  /* in range */
	uint64_t outside;    /* well-formed but outside the time range */
	uint64_t malformed;  /* lines that stats_parse_line refused */
	struct stats_place malformed_at[STATS_MALFORMED_SHOWN];
	int64_t first_ms;    /* earliest and latest transfer in range */
	int64_t last_ms;

	struct stats_mode *modes; /* in order of first appearance until
				   * stats_finish puts them in report order */
	size_t nmodes;
	size_t modes_cap;
	struct stats_index mode_index;

	uint64_t status_count[STATS_STATUS_MAX + 1];

	struct stats_path_total *paths;
	size_t npaths;
	size_t paths_cap;
	struct stats_index path_index;

	bool finished;
};

void stats_init(struct stats *s);
void stats_free(struct stats *s);

/* Adds one record. Returns 1 when counted, 0 when outside the time range,
 * -ENOMEM. */
int stats_add(struct stats *s, const struct stats_record *r);

/* Reads IN line by line, adding every well-formed line and counting the
 * others (blank lines are skipped, not counted) under NAME, which must
 * outlive S. Returns 0, -ENOMEM, or -errno for a read error. */
int stats_read(struct stats *s, FILE *in, const char *name);

/* Sorts what the report needs: modes in report order (sendfile, buffered,
 * list, then others by name, "-" last), each mode's rates ascending and its
 * points by time. Idempotent; stats_add after it is allowed (call it again).
 */
void stats_finish(struct stats *s);

/* The mode called NAME, or NULL. */
struct stats_mode *stats_mode_find(const struct stats *s, const char *name);

/* The nearest-rank percentile P (0 < P <= 100) of N ascending values; 0 when
 * N is 0. */
double stats_percentile(const double *sorted, size_t n, double p);

/* S percent-encoded as the text log writes it (so only printable ASCII is
 * left), NUL-terminated, in STACK when it fits in CAP bytes, else in memory
 * the caller frees (when the result is not STACK); NULL when out of memory.
 * The report and the plot print every string of a log through it. */
char *stats_encode(const char *s, char *stack, size_t cap);

/* qsort's comparison of two doubles, ascending. */
int stats_cmp_double(const void *a, const void *b);

/* Fills TOP with at most MAX path totals, largest first (see above); the
 * strings stay owned by S. Returns how many. -ENOMEM. */
int stats_top_paths(const struct stats *s, struct stats_path_total *top,
		    size_t max);

/* Writes the report (stats_finish first). Returns 0, -ENOMEM or -EIO. */
int stats_report(struct stats *s, FILE *out);

/* Writes "FILE:LINE: malformed line" for the first malformed lines, then
 * how many more there were, each line prefixed with PREFIX. */
void stats_report_malformed(const struct stats *s, FILE *out,
			    const char *prefix);

/* Writes a standalone SVG 1.1 plot of throughput over time (stats_finish
 * first): one <g class="series" data-mode="MODE" data-transfers="N"> per mode
 * with completed transfers, one circle per transfer (past 1000 transfers in a
 * series, one per pixel column, at the column's median), a legend, axes with
 * ticks. With nothing to plot it is an empty frame with a note. Returns 0,
 * -ENOMEM or -EIO. */
int stats_svg(struct stats *s, FILE *out);

/* `ferry stats [--since TIME] [--until TIME] [--svg FILE] [LOG...]`, with
 * ARGV[0] "stats". Returns the exit code: 0, 1 the SVG cannot be written,
 * 2 usage, 3 a LOG cannot be read (the others are still reported). */
int stats_main(int argc, char **argv);

#endif
