/* ferry: the command line. Options, dispatch to get, sync, ls and stats,
 * and the messages; what happens on the wire and on disk is in client.c
 * (and sync.c for a tree). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/client.h"
#include "client/rate.h"
#include "client/report.h"
#include "client/stats.h"
#include "client/sync.h"
#include "common/protocol.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The progress line is redrawn at most this often. */
#define PROGRESS_INTERVAL_MS 100

enum {
	OPT_OFFSET = 256,
	OPT_LENGTH,
	OPT_VERIFY,
	OPT_LIMIT_RATE,
	OPT_CHECKSUM,
	OPT_DELETE,
	OPT_DRY_RUN,
	OPT_FSYNC,
};

static const char usage_text[] =
	"usage: ferry get [-o FILE | -d DIR] [-c] [-q] [--verify] "
	"[--limit-rate RATE]\n"
	"                 [--offset N] [--length N] HOST[:PORT] PATH...\n"
	"       ferry sync [-j N] [--checksum] [--delete] [--dry-run] "
	"[--fsync]\n"
	"                  [--verify] [--limit-rate RATE] [-q]\n"
	"                  HOST[:PORT] REMOTE_DIR LOCAL_DIR\n"
	"       ferry ls HOST[:PORT] [DIR]\n"
	"       ferry stats [--since T] [--until T] [--svg FILE] [LOG...]\n"
	"       ferry --help | --version\n";

static const char help_text[] =
	"\n"
	"Fetch files from a ferryd server (default port 7070).\n"
	"\n"
	"get options:\n"
	"  -o FILE       write the one PATH to FILE ('-': standard output)\n"
	"  -d DIR        write each PATH into DIR (default: .)\n"
	"  -c            resume from NAME.part if the file is unchanged\n"
	"  -q            no progress line, no summary\n"
	"  --offset N    start at byte N of the file\n"
	"  --length N    fetch at most N bytes\n"
	"  --verify      compare the SHA-256 of what arrived with the server's\n"
	"  --limit-rate RATE  receive at most RATE bytes/s (K, M, G: 1024-based)\n"
	"\n"
	"sync options (and -q, --verify, --limit-rate as for get):\n"
	"  -j N          fetch over N connections (1 to 64, default 4)\n"
	"  --checksum    compare SHA-256 digests instead of size and mtime\n"
	"  --delete      remove local files the server does not list\n"
	"  --dry-run     print what would be done, change nothing\n"
	"  --fsync       put each batch of files on disk before they get their names\n"
	"\n"
	"HOST is a name, an IPv4 address or an IPv6 address in brackets.\n"
	"Exit status: 0 done, 1 refused by the server, 2 usage, 3 network or\n"
	"I/O failure, 4 verification failed. See ferry(1).\n";

/* "ferry: MESSAGE", then the usage, on stderr. */
static void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ferry: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A decimal number for --offset and --length: at most 63 bits. */
static int parse_count(const char *s, uint64_t *out)
{
	return proto_parse_number(s, strlen(s), out) < 0 ? -EINVAL : 0;
}

/* The options get and sync share, which the table of each ends with. */
#define FETCH_LONGOPTS                                                      \
	{ "quiet", no_argument, NULL, 'q' },                                \
	{ "verify", no_argument, NULL, OPT_VERIFY },                        \
	{ "limit-rate", required_argument, NULL, OPT_LIMIT_RATE },          \
	{ "help", no_argument, NULL, 'h' },                                 \
	{ NULL, 0, NULL, 0 }

/* --limit-rate's value into *RATE_BPS, or a usage error. */
static int parse_rate_option(const char *arg, uint64_t *rate_bps)
{
	if (rate_parse(arg, rate_bps) == 0)
		return 0;
	usage_error("not a rate: '%s' (bytes per second, or with K, M or G)",
		    arg);
	return -EINVAL;
}

/* The unknown option getopt just met, for the message. */
static const char *bad_option(char **argv)
{
	static char opt[3];

	if (optopt > 0 && optopt < 128) {
		opt[0] = '-';
		opt[1] = (char)optopt;
		opt[2] = '\0';
		return opt;
	}
	return argv[optind - 1];
}

/* Handles an option get and sync share (FETCH_LONGOPTS), or getopt's
 * complaint. -1 when parsing goes on, else the exit code to return. */
static int fetch_option(int opt, char **argv, bool *quiet, bool *verify,
			uint64_t *rate_bps)
{
	switch (opt) {
	case 'q':
		*quiet = true;
		return -1;
	case OPT_VERIFY:
		*verify = true;
		return -1;
	case OPT_LIMIT_RATE:
		return parse_rate_option(optarg, rate_bps) < 0
			       ? FERRY_EXIT_USAGE
			       : -1;
	case 'h':
		printf("%s%s", usage_text, help_text);
		return FERRY_EXIT_DONE;
	case ':':
		usage_error("%s needs a value", bad_option(argv));
		return FERRY_EXIT_USAGE;
	default:
		usage_error("unknown option '%s'", bad_option(argv));
		return FERRY_EXIT_USAGE;
	}
}

/* Connects to TARGET, or says why not. */
static int connect_or_say(struct client_conn *c, const struct client_target *t)
{
	int rc = client_connect(c, t, FERRY_CONNECT_TIMEOUT_MS);

	if (rc < 0)
		report_connect(t, c, rc);
	return rc;
}

/* ---- get ---------------------------------------------------------------- */

/* The progress line's state: drawn on stderr only when it is a terminal. */
struct progress {
	int64_t start_ms, drawn_ms;
	bool drawn;
	const struct client_job *job;
	uint64_t earlier_bytes; /* received for the files before JOB */
};

static const char *job_label(const struct client_job *j)
{
	return j->dest != NULL ? j->dest : j->path;
}

static void draw_progress(void *arg, const struct client_job *job,
			  uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	int64_t now = now_ms();
	char line[512];

	if (p->job != job) {
		if (p->job != NULL)
			p->earlier_bytes += p->job->received;
		p->job = job;
	}
	if (p->drawn && now - p->drawn_ms < PROGRESS_INTERVAL_MS)
		return;
	client_format_progress(line, sizeof(line), job_label(job), done, total,
			       p->earlier_bytes + (done - job->resumed),
			       (double)(now - p->start_ms) / 1000.0);
	report_progress(line);
	p->drawn = true;
	p->drawn_ms = now;
}

static void clear_progress(struct progress *p)
{
	if (p->drawn)
		report_progress_clear();
	p->drawn = false;
}

/* Fills JOBS[i].dest for each PATH: -o FILE, or DIR/basename. Names the
 * files in NAMES (one malloc'd string each). 0, or a usage error. */
static int name_outputs(struct client_job *jobs, char **names, size_t n,
			const char *output, const char *dir)
{
	char base[FERRY_LINE_MAX];
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (output != NULL) {
			jobs[i].dest = strcmp(output, "-") == 0 ? NULL : output;
			continue;
		}
		if (client_output_name(jobs[i].path, base, sizeof(base)) < 0) {
			usage_error("cannot name a local file after '%s'; "
				    "use -o FILE",
				    jobs[i].path);
			return -EINVAL;
		}
		if (dir == NULL)
			names[i] = strdup(base);
		else if (asprintf(&names[i], "%s/%s", dir, base) < 0)
			names[i] = NULL;
		if (names[i] == NULL) {
			fprintf(stderr, "ferry: out of memory\n");
			return -ENOMEM;
		}
		jobs[i].dest = names[i];
		for (k = 0; k < i; k++) {
			if (strcmp(jobs[k].dest, names[i]) == 0) {
				usage_error("two PATHs would both be written "
					    "to '%s'",
					    names[i]);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int get_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "directory", required_argument, NULL, 'd' },
		{ "continue", no_argument, NULL, 'c' },
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		FETCH_LONGOPTS,
	};
	struct client_get_opts opts;
	struct client_target target;
	struct client_conn conn;
	struct client_job *jobs = NULL;
	struct progress prog;
	struct rate_limit rate;
	uint64_t rate_bps = 0;
	const char *output = NULL, *dir = NULL;
	char **names = NULL, line[512], label[64];
	bool quiet = false, ranged = false;
	uint64_t bytes = 0;
	size_t n, i, done = 0;
	int opt, rc, code = FERRY_EXIT_DONE;

	memset(&opts, 0, sizeof(opts));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":o:d:cqh", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'o':
			output = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'c':
			opts.resume = true;
			break;

		case OPT_OFFSET:
		case OPT_LENGTH:
			if (parse_count(optarg, opt == OPT_OFFSET
							? &opts.offset
							: &opts.length) < 0) {
				usage_error("not a byte count: '%s'", optarg);
				return FERRY_EXIT_USAGE;
			}
			opts.has_length |= opt == OPT_LENGTH;
			ranged = true;
			break;
		default:
			rc = fetch_option(opt, argv, &quiet, &opts.verify,
					  &rate_bps);
			if (rc >= 0)
				return rc;
			break;
		}
	}
	if (argc - optind < 2) {
		usage_error("get needs HOST[:PORT] and at least one PATH");
		return FERRY_EXIT_USAGE;
	}
	if (client_parse_target(argv[optind], &target) < 0) {
		usage_error("not HOST[:PORT]: '%s'", argv[optind]);
		return FERRY_EXIT_USAGE;
	}
	n = (size_t)(argc - optind - 1);
	if (output != NULL && dir != NULL) {
		usage_error("-o and -d exclude each other");
		return FERRY_EXIT_USAGE;
	}
	if (output != NULL && n > 1) {
		usage_error("-o takes one PATH; use -d DIR for several");
		return FERRY_EXIT_USAGE;
	}
	if (output != NULL && strcmp(output, "-") == 0 && opts.resume) {
		usage_error("-c cannot resume standard output");
		return FERRY_EXIT_USAGE;
	}
	if (opts.verify && ranged) {
		usage_error("--verify checks whole files; it excludes --offset "
			    "and --length");
		return FERRY_EXIT_USAGE;
	}
	if (rate_init(&rate, rate_bps) < 0) {
		fprintf(stderr, "ferry: cannot set up --limit-rate\n");
		return FERRY_EXIT_FAILED;
	}

	jobs = calloc(n, sizeof(*jobs));
	names = calloc(n, sizeof(*names));
	if (jobs == NULL || names == NULL) {
		fprintf(stderr, "ferry: out of memory\n");
		code = FERRY_EXIT_FAILED;
		goto out;
	}
	for (i = 0; i < n; i++) {
		jobs[i].path = argv[optind + 1 + (int)i];
		if (jobs[i].path[0] == '\0') {
			usage_error("an empty PATH");
			code = FERRY_EXIT_USAGE;
			goto out;
		}
	}
	rc = name_outputs(jobs, names, n, output, dir);
	if (rc < 0) {
		code = rc == -EINVAL ? FERRY_EXIT_USAGE : FERRY_EXIT_FAILED;
		goto out;
	}

	memset(&prog, 0, sizeof(prog));
	prog.start_ms = now_ms();
	if (!quiet && isatty(STDERR_FILENO)) {
		opts.progress = draw_progress;
		opts.arg = &prog;
	}
	if (connect_or_say(&conn, &target) < 0) {
		code = FERRY_EXIT_FAILED;
		goto out;
	}
	conn.rate = &rate;
	rc = client_get(&conn, jobs, n, &opts);
	client_close(&conn);
	clear_progress(&prog);
	if (rc < 0) {
		fprintf(stderr, "ferry: %s\n", strerror(-rc));
		code = FERRY_EXIT_FAILED;
		goto out;
	}
	for (i = 0; i < n; i++) {
		int c = report_job(&jobs[i], opts.resume, quiet, "resume with -c");

		/* A failure outweighs a refusal. */
		if (c > code)
			code = c;
		bytes += jobs[i].received;
		done += jobs[i].status == CLIENT_DONE;
	}
	if (!quiet && done > 0) {
		if (n == 1)
			snprintf(label, sizeof(label), "%.60s",
				 job_label(&jobs[0]));
		else if (done == n)
			snprintf(label, sizeof(label), "%zu files", n);
		else
			snprintf(label, sizeof(label), "%zu of %zu files", done,
				 n);
		client_format_summary(line, sizeof(line), label, bytes,
				      (double)(now_ms() - prog.start_ms) /
					      1000.0);
		if (n == 1 && jobs[0].resumed > 0)
			fprintf(stderr, "%s (resumed after %" PRIu64
					" bytes)\n",
				line, jobs[0].resumed);
		else
			fprintf(stderr, "%s\n", line);
	}
out:
	for (i = 0; names != NULL && i < n; i++)
		free(names[i]);
	free(names);
	free(jobs);
	rate_destroy(&rate);
	return code;
}

/* ---- sync --------------------------------------------------------------- */

static int sync_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "jobs", required_argument, NULL, 'j' },
		{ "checksum", no_argument, NULL, OPT_CHECKSUM },
		{ "delete", no_argument, NULL, OPT_DELETE },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "fsync", no_argument, NULL, OPT_FSYNC },
		FETCH_LONGOPTS,
	};
	struct sync_opts o;
	uint64_t jobs;
	int opt, rc;

	memset(&o, 0, sizeof(o));
	o.jobs = FERRY_SYNC_JOBS_DEFAULT;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			if (parse_count(optarg, &jobs) < 0 || jobs < 1 ||
			    jobs > FERRY_SYNC_JOBS_MAX) {
				usage_error("-j takes 1 to %d, not '%s'",
					    FERRY_SYNC_JOBS_MAX, optarg);
				return FERRY_EXIT_USAGE;
			}
			o.jobs = (unsigned)jobs;
			break;
		case OPT_CHECKSUM:
			o.checksum = true;
			break;
		case OPT_DELETE:
			o.delete_extra = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_FSYNC:
			o.fsync = true;
			break;
		default:
			rc = fetch_option(opt, argv, &o.quiet, &o.verify,
					  &o.rate_bps);
			if (rc >= 0)
				return rc;
			break;
		}
	}
	if (argc - optind != 3) {
		usage_error("sync needs HOST[:PORT], REMOTE_DIR and LOCAL_DIR");
		return FERRY_EXIT_USAGE;
	}
	if (client_parse_target(argv[optind], &o.target) < 0) {
		usage_error("not HOST[:PORT]: '%s'", argv[optind]);
		return FERRY_EXIT_USAGE;
	}
	o.remote_dir = argv[optind + 1];
	o.local_dir = argv[optind + 2];
	if (o.remote_dir[0] == '\0' || o.local_dir[0] == '\0') {
		usage_error("an empty REMOTE_DIR or LOCAL_DIR");
		return FERRY_EXIT_USAGE;
	}
	return sync_run(&o);
}

/* ---- ls ----------------------------------------------------------------- */

static int ls_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_target target;
	struct client_conn conn;
	struct proto_reply rep;
	struct proto_entry *ent = NULL;
	const char *dir;
	char *body = NULL, *line, *end, out[3 * FERRY_LINE_MAX + 64];
	size_t len;
	int opt, rc, code = FERRY_EXIT_DONE;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'h') {
			printf("%s%s", usage_text, help_text);
			return FERRY_EXIT_DONE;
		}
		usage_error("unknown option '%s'", bad_option(argv));
		return FERRY_EXIT_USAGE;
	}
	if (argc - optind < 1 || argc - optind > 2) {
		usage_error("ls needs HOST[:PORT] and at most one DIR");
		return FERRY_EXIT_USAGE;
	}
	if (client_parse_target(argv[optind], &target) < 0) {
		usage_error("not HOST[:PORT]: '%s'", argv[optind]);
		return FERRY_EXIT_USAGE;
	}
	dir = argc - optind == 2 ? argv[optind + 1] : NULL;

	if (connect_or_say(&conn, &target) < 0)
		return FERRY_EXIT_FAILED;
	rc = client_list(&conn, dir, &rep, &body, &len);
	client_close(&conn);
	if (rc < 0) {
		fprintf(stderr, "ferry: listing %s: %s\n", dir ? dir : "/",
			rc == -ECONNRESET ? "the server closed the connection"
			: rc == -EPROTO	  ? "the reply is not in the ferry "
					    "protocol"
					  : strerror(-rc));
		return FERRY_EXIT_FAILED;
	}
	if (!rep.ok) {
		fprintf(stderr, "ferry: %s: the server refused: %d %s\n",
			dir ? dir : "/", rep.code, rep.reason);
		return FERRY_EXIT_REFUSED;
	}
	ent = malloc(sizeof(*ent));
	if (ent == NULL) {
		fprintf(stderr, "ferry: out of memory\n");
		code = FERRY_EXIT_FAILED;
		goto out;
	}
	for (line = body; line < body + len; line = end + 1) {
		end = memchr(line, '\n', (size_t)(body + len - line));
		if (end == NULL ||
		    proto_parse_entry(line, (size_t)(end - line), ent) < 0) {
			fprintf(stderr, "ferry: listing %s: a line that is "
					"not an entry\n",
				dir ? dir : "/");
			code = FERRY_EXIT_FAILED;
			goto out;
		}
		client_format_entry(out, sizeof(out), ent);
		printf("%s\n", out);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "ferry: writing the listing: %s\n",
			strerror(errno));
		code = FERRY_EXIT_FAILED;
	}
out:
	free(ent);
	free(body);
	return code;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		fprintf(stderr, "%s", usage_text);
		return FERRY_EXIT_USAGE;
	}
	if (strcmp(cmd, "get") == 0)
		return get_main(argc - 1, argv + 1);
	if (strcmp(cmd, "sync") == 0)
		return sync_main(argc - 1, argv + 1);
	if (strcmp(cmd, "ls") == 0)
		return ls_main(argc - 1, argv + 1);
	if (strcmp(cmd, "stats") == 0)
		return stats_main(argc - 1, argv + 1);
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		printf("%s%s", usage_text, help_text);
		return FERRY_EXIT_DONE;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("ferry %s\n", PACKAGE_VERSION);
		return FERRY_EXIT_DONE;
	}
	usage_error("unknown command '%s'", cmd);
	return FERRY_EXIT_USAGE;
}
