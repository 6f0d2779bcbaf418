/* ferry sync: make a local directory a copy of a tree the server lists.
 *
 * The flow, in sync_run: walk (LIST every directory, breadth first, over
 * one connection; every name checked), plan (compare each file with the
 * local one by size and mtime, or by SHA-256 with --checksum; make the
 * directories), fetch (N worker threads, each with its own connection,
 * taking batches of files and fetching them with client_get: pipelined
 * GETs, NAME.part, resume, --verify), delete (with --delete: what the
 * server does not list), and the summary. */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"

/* -j: how many connections fetch at once. */
#define FERRY_SYNC_JOBS_DEFAULT 4
#define FERRY_SYNC_JOBS_MAX 64

struct sync_opts {
	struct client_target target;
	const char *remote_dir; /* the server's directory ("/" for the root) */
	const char *local_dir;  /* made if missing */
	unsigned jobs;          /* 1 .. FERRY_SYNC_JOBS_MAX */
	bool checksum;          /* compare SUM with the local SHA-256 */
	bool delete_extra;      /* --delete */
	bool dry_run;
	bool verify;            /* --verify for every fetch */
	bool quiet;             /* no progress line, no summary */
	bool fsync;             /* --fsync: each batch on disk before its renames */
	uint64_t rate_bps;      /* --limit-rate for the whole run; 0: none */
};

/* Runs a sync. Prints its messages, the progress line (on a terminal) and
 * the summary on stderr, and with --dry-run the plan on stdout; returns the
 * exit code (report.h's FERRY_EXIT_*). */
int sync_run(const struct sync_opts *o);

#endif
