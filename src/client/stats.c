/* `ferry stats`: the command (options, the files, the exit code). The
 * work is done by stats_read.c (parsing logs), stats_summary.c (the
 * accumulator and the report) and stats_svg.c (the plot); stats.h says what
 * each number means. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/stats.h"

/* -- the command ----------------------------------------------------------- */

#define STDIN_NAME "<stdin>"

static void usage(FILE *out)
{
	fputs("usage: ferry stats [--since TIME] [--until TIME] [--svg FILE] "
	      "[LOG...]\n"
	      "  TIME: 2026-11-24T10:00:00Z, 2026-11-24T10:00:00.123Z, "
	      "2026-11-24 or epoch seconds (UTC)\n",
	      out);
}

static void complain(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void complain(const char *fmt, ...)
{
	va_list ap;

	fputs("ferry stats: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Matches option NAME at ARGV[*I], as "--name VALUE" or "--name=VALUE".
 * Returns 1 with *VALUE set, 0 when ARGV[*I] is another option, -1 when the
 * value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name,
			const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*value = argv[++*i];
	return 1;
}

/* Reads one LOG ("-" for stdin). Returns 0, or the exit code. */
static int read_log(struct stats *s, const char *path)
{
	FILE *in = stdin;
	const char *name = STDIN_NAME;
	int rc;

	if (strcmp(path, "-") != 0) {
		in = fopen(path, "r");
		if (in == NULL) {
			complain("%s: %s", path, strerror(errno));
			return 3;
		}
		name = path;
	}
	rc = stats_read(s, in, name);
	if (in != stdin)
		fclose(in);
	if (rc == -ENOMEM) {
		complain("out of memory");
		return 1;
	}
	if (rc < 0) {
		complain("%s: %s", path, strerror(-rc));
		return 3;
	}
	return 0;
}

static int write_svg(struct stats *s, const char *path)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL) {
		complain("%s: %s", path, strerror(errno));
		return 1;
	}
	rc = stats_svg(s, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		complain("%s: %s", path, strerror(-rc));
		return 1;
	}
	return 0;
}

int stats_main(int argc, char **argv)
{
	const char *since = NULL, *until = NULL, *svg = NULL, *value;
	const char **logs;
	struct stats s;
	int i, nlogs = 0, rc = 2, read_rc;
	bool unread = false, options_done = false;

	logs = calloc((size_t)argc + 1, sizeof(*logs));
	if (logs == NULL) {
		complain("out of memory");
		return 1;
	}
	stats_init(&s);

	/* Options may come before or after the LOGs, until "--". */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int m;

		if (options_done || a[0] != '-' || a[1] == '\0') {
			logs[nlogs++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			rc = 0;
			goto out;
		}
		if ((m = option_value(argc, argv, &i, "--since", &value)) > 0)
			since = value;
		else if (m == 0 && (m = option_value(argc, argv, &i, "--until",
						     &value)) > 0)
			until = value;
		else if (m == 0 && (m = option_value(argc, argv, &i, "--svg",
						     &value)) > 0)
			svg = value;
		if (m != 1) {
			if (m < 0)
				complain("%s needs a value", a);
			else
				complain("unknown option %s", a);
			goto usage_error;
		}
	}

	if (since != NULL && stats_parse_time(since, &s.since_ms) < 0) {
		complain("--since %s: not a time", since);
		goto usage_error;
	}
	if (until != NULL && stats_parse_time(until, &s.until_ms) < 0) {
		complain("--until %s: not a time", until);
		goto usage_error;
	}
	if (s.since_ms >= s.until_ms) {
		complain("--since must be before --until");
		goto usage_error;
	}
	if (svg != NULL && svg[0] == '\0') {
		complain("--svg needs a file name");
		goto usage_error;
	}

	/* A LOG that cannot be read is reported and the others still are,
	 * as cat and wc do; the exit code says the report is incomplete. */
	if (nlogs == 0)
		logs[nlogs++] = "-";
	for (i = 0; i < nlogs; i++) {
		read_rc = read_log(&s, logs[i]);
		if (read_rc == 1) {
			rc = 1;
			goto out;
		}
		if (read_rc == 3)
			unread = true;
	}

	rc = 0;
	stats_report_malformed(&s, stderr, "ferry stats: ");
	if (stats_report(&s, stdout) < 0 || fflush(stdout) != 0) {
		complain("writing the report: %s", strerror(errno));
		rc = 1;
	}
	if (svg != NULL && write_svg(&s, svg) != 0)
		rc = 1;
	if (unread)
		rc = 3;
	goto out;

usage_error:
	usage(stderr);
	rc = 2;
out:
	stats_free(&s);
	free(logs);
	return rc;
}
