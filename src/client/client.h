/* The ferry client as library code: addresses, a blocking connection with
 * bounded timeouts, GET and LIST over it, the NAME.part / NAME.part.meta
 * files that make a fetch safe to cut and resume, and the text the ferry
 * command shows (progress, sizes, listing lines), as pure functions.
 *
 * Functions return 0 or a negative errno and never print; src/client/ferry.c
 * prints, with the context. */
#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/rate.h"
#include "common/protocol.h"

/* Connecting to one address may take this long before the next is tried. */
#define FERRY_CONNECT_TIMEOUT_MS 10000
/* A send or receive that makes no progress for this long fails. */
#define FERRY_IO_TIMEOUT_MS 30000
/* Most bytes of request lines sent ahead of the answers. The daemon reads
 * nothing while it answers, so unread requests sit in socket buffers; this
 * keeps them well below any buffer size, so a send never waits for a
 * server that is itself waiting for us to read. */
#define FERRY_PIPELINE_BYTES 16384
/* The receive buffer, also the largest write to the output file. */
#define FERRY_CLIENT_BUFFER_BYTES (256 * 1024)
/* The largest listing ferry ls accepts. */
#define FERRY_LISTING_MAX (256ULL * 1024 * 1024)

/* ---- addresses ---------------------------------------------------------- */

/* HOST[:PORT] from the command line: a name, an IPv4 address, or an IPv6
 * address in brackets (a bare IPv6 address without a port is accepted). */
struct client_target {
	char host[256]; /* without brackets */
	char port[8];   /* decimal, 1 to 65535 */
};

/* Parses ARG into T. 0, or -EINVAL (empty host, bad brackets, a port that is
 * not a number from 1 to 65535), -ENAMETOOLONG. */
int client_parse_target(const char *arg, struct client_target *t);

/* ---- the connection ----------------------------------------------------- */

/* One blocking TCP connection and the bytes received but not yet consumed.
 * Owned by the caller; client_connect fills it, client_close frees it. */
struct client_conn {
	int fd;
	char *buf;        /* FERRY_CLIENT_BUFFER_BYTES, malloc'd */
	size_t pos, len;  /* unconsumed bytes are buf[pos, len) */
	int gai_error;    /* getaddrinfo's code when resolving failed */
	char peer[64];    /* the address connected to, "[::1]:7070" */
	bool eof;         /* the server closed its side */
	/* --limit-rate: every recv waits for this bucket (NULL: none). Set
	 * by the caller after client_connect; not owned. */
	struct rate_limit *rate;
};

/* Resolves T and connects to the first address that answers, each attempt
 * bounded by CONNECT_MS; sets FERRY_IO_TIMEOUT_MS as the socket's send and
 * receive timeouts. On a resolver failure returns -EHOSTUNREACH with
 * C->gai_error set (for gai_strerror). */
int client_connect(struct client_conn *c, const struct client_target *t,
		   int connect_ms);
/* Closes the socket and frees the buffer. Safe on a closed conn. */
void client_close(struct client_conn *c);

/* Formats "GET PATH OFFSET [LENGTH]\n" (PATH percent-encoded) into BUF.
 * Returns its length, or -ENAMETOOLONG when it exceeds FERRY_LINE_MAX. */
int client_format_get(char *buf, size_t cap, const char *path,
		      uint64_t offset, bool has_length, uint64_t length);
/* Formats "LIST [DIR]\n" likewise; DIR may be NULL. */
int client_format_list(char *buf, size_t cap, const char *dir);
/* Formats "SUM PATH\n" likewise. */
int client_format_sum(char *buf, size_t cap, const char *path);

/* Sends all LEN bytes. 0, -ETIMEDOUT or -errno. */
int client_send(struct client_conn *c, const char *buf, size_t len);
/* Receives one reply line and parses it. 0; -ECONNRESET when the server
 * closed first; -EPROTO for a line that is not a reply; -ETIMEDOUT. */
int client_read_reply(struct client_conn *c, struct proto_reply *rep);

/* Receives the answer to a SUM. 0 (an ERR is 0 with REP->ok false), or as
 * client_read_reply. */
int client_read_sum(struct client_conn *c, struct proto_sum_reply *rep);

/* Progress of a body being received: called after each chunk with the
 * bytes received so far. */
typedef void (*client_progress_fn)(void *arg, uint64_t received);

/* Receives exactly LENGTH bytes and writes them to FD (-1: drop them).
 * 0; -ECONNRESET when the server closed early, -ETIMEDOUT, or -errno. A
 * failed write sets *WRITE_FAILED, so the caller can tell the disk from the
 * network. *RECEIVED counts the bytes that arrived (and were written). */
int client_recv_body(struct client_conn *c, int fd, uint64_t length,
		     uint64_t *received, bool *write_failed,
		     client_progress_fn progress, void *arg);

/* Sends LIST [DIR] and receives the answer: on OK the listing's bytes in a
 * malloc'd, NUL-terminated *BODY. An ERR reply is 0 with REP->ok false. */
int client_list(struct client_conn *c, const char *dir,
		struct proto_reply *rep, char **body, size_t *len);

/* ---- digests ------------------------------------------------------------ */

/* The SHA-256 of the whole of the regular file PATH (opened without
 * following a final symlink). 0 or -errno. */
int client_sha256_file(const char *path,
		       unsigned char digest[FERRY_SHA256_BYTES]);

/* ---- fetching files: GET with NAME.part and resume ---------------------- */

/* The record kept beside NAME.part in NAME.part.meta, one line
 * "SIZE MTIME OFFSET": the version of the file the part was started from,
 * and where in the file its first byte is (the start of --offset). */
struct client_meta {
	uint64_t size;
	int64_t mtime;
	uint64_t offset;
};

/* "SIZE MTIME OFFSET\n". Returns the length (snprintf semantics). */
int client_meta_format(char *buf, size_t cap, const struct client_meta *m);
/* Parses what client_meta_format wrote (LEN bytes). 0 or -EINVAL. */
int client_meta_parse(const char *buf, size_t len, struct client_meta *m);

/* How a file ended. */
enum client_status {
	CLIENT_PENDING,  /* not answered yet */
	CLIENT_DONE,     /* NAME is complete */
	CLIENT_REFUSED,  /* the server answered ERR (code, reason) */
	CLIENT_FAILED,   /* network or disk: err, stage */
	CLIENT_MISMATCH, /* --verify: the bytes or the version differ from
			  * SUM's (stage CLIENT_STAGE_VERIFY or _CHANGED);
			  * nothing is kept */
};

/* Where a failed file failed, for the message. */
enum client_stage {
	CLIENT_STAGE_NET,      /* sending or receiving */
	CLIENT_STAGE_SHORT,    /* closed before LENGTH bytes arrived */
	CLIENT_STAGE_PROTOCOL, /* a reply that is not a reply */
	CLIENT_STAGE_PART,     /* opening or writing NAME.part */
	CLIENT_STAGE_META,     /* writing NAME.part.meta */
	CLIENT_STAGE_FINISH,   /* fsync, mtime or rename to NAME */
	CLIENT_STAGE_CHANGED,  /* changed on the server between two replies */
	CLIENT_STAGE_ABORTED,  /* not fetched: an earlier file failed */
	CLIENT_STAGE_VERIFY,   /* the SHA-256 received differs from SUM's */
};

/* One PATH of ferry get. The caller fills the first block; client_get the
 * rest. */
struct client_job {
	const char *path;  /* the server's path, as typed */
	const char *dest;  /* the local NAME, or NULL for standard output */
	/* The caller knows that neither NAME nor NAME.part nor its record
	 * exists (ferry sync, in a directory it has just made): no probes. */
	bool fresh;

	enum client_status status;
	int err;                /* CLIENT_FAILED: negative errno */
	enum client_stage stage;
	int code;               /* CLIENT_REFUSED: the server's code */
	char reason[256];       /* and its reason */
	uint64_t size;          /* the server's SIZE and MTIME */
	int64_t mtime;
	uint64_t length;        /* LENGTH of the GET that fetched the bytes */
	uint64_t resumed;       /* bytes that were already in NAME.part */
	uint64_t received;      /* bytes received by this run */
	bool restarted;         /* a NAME.part was there but not resumed */
	/* --verify: the digest of the bytes (whole file), and SUM's. */
	unsigned char sha256[FERRY_SHA256_BYTES];
	unsigned char server_sha256[FERRY_SHA256_BYTES];

	/* Internal. */
	char part[4200];
	char meta[4200];
	struct client_meta rec; /* the .meta of the part being resumed */
	bool resuming;
	bool no_record;         /* no NAME.part.meta exists to remove */
	bool direct;            /* dest is a device or FIFO: written as is */
	bool received_all;      /* sealed; NAME waits for SUM or the sync */
	bool verified;          /* SUM agreed (or no --verify) */
};

/* Progress over all files: which one, and its bytes so far out of TOTAL
 * (both counting what a resumed part already held). */
typedef void (*client_get_progress_fn)(void *arg, const struct client_job *job,
				       uint64_t done, uint64_t total);

struct client_get_opts {
	uint64_t offset;    /* --offset */
	bool has_length;    /* --length given */
	uint64_t length;
	bool resume;        /* -c */
	/* --verify: hash the bytes as they arrive (and what a resumed part
	 * held), pipeline "SUM PATH" after the file's GET, and make NAME only
	 * when digest, SIZE and MTIME agree; otherwise CLIENT_MISMATCH and
	 * neither NAME nor the part is left. Whole files only. */
	bool verify;
	/* Parts of files smaller than this get no NAME.part.meta: cut off,
	 * they are fetched again whole (0: every part has its record). */
	uint64_t record_min_bytes;
	/* Instead of an fsync per file, one syncfs(2) when the batch's
	 * answers are in, then the renames: as safe (no NAME before its
	 * bytes are on disk), far fewer flushes for many small files. */
	bool batch_sync;
	/* No flush at all (ferry sync without --fsync, like rsync and cp):
	 * NAME as soon as its bytes are written; a crash of the machine may
	 * leave a NAME whose data never reached the disk. */
	bool no_flush;
	client_get_progress_fn progress; /* may be NULL */
	/* Called once per job when it has its final status (may be NULL). */
	void (*finished)(void *arg, const struct client_job *job);
	void *arg;
};

/* Fetches every job over C, pipelining the GETs (at most
 * FERRY_PIPELINE_BYTES of them ahead). Each file goes to NAME.part with a
 * NAME.part.meta beside it, and becomes NAME (mtime set to MTIME, meta
 * removed) only once exactly LENGTH bytes arrived. With OPTS->resume a
 * NAME.part is continued after a "GET PATH OFFSET 0" showed SIZE and MTIME
 * unchanged; else it is started over. A refusal affects one job; a network
 * failure ends the others too (CLIENT_STAGE_ABORTED). A part is opened
 * without following a symlink. Returns 0 when every
 * job got a status; each job says how it ended. */
int client_get(struct client_conn *c, struct client_job *jobs, size_t n,
	       const struct client_get_opts *opts);

/* The name a file fetched as PATH gets: its last component. -EINVAL when
 * PATH ends in '/', or its last component is empty, "." or "..". */
int client_output_name(const char *path, char *out, size_t cap);

/* ---- text --------------------------------------------------------------- */

/* "h:mm:ss" or "m:ss"; "--:--" when SECONDS is negative (unknown). */
int client_format_duration(char *buf, size_t cap, double seconds);
/* The progress line: NAME, bytes done of TOTAL, percent, the rate of this
 * run (RUN_BYTES in ELAPSED_S) in MiB/s and the ETA at that rate:
 * "big.iso  52.4 MiB / 100.0 MiB  52%  210.3 MiB/s  ETA 0:01". */
int client_format_progress(char *buf, size_t cap, const char *name,
			   uint64_t done, uint64_t total, uint64_t run_bytes,
			   double elapsed_s);
/* The summary: "LABEL: BYTES bytes in 0.42 s, 238.10 MiB/s". */
int client_format_summary(char *buf, size_t cap, const char *label,
			  uint64_t bytes, double elapsed_s);
/* NAME for a terminal: bytes below 0x20 and 0x7f as %XX, cut to fit CAP
 * (3 x strlen + 1 always fits). */
void client_format_name(char *buf, size_t cap, const char *name);
/* One ls line: type, size in human units ("-" for a directory), local
 * date, name (bytes below 0x20 and 0x7f shown as %XX):
 * "f   100.0 KiB  2025-11-24 16:00  small.bin". */
int client_format_entry(char *buf, size_t cap, const struct proto_entry *e);

#endif
