/* Inside the transfer module: struct transfer, and what transfer.c and its
 * engines call of each other.
 *
 * Who includes it: transfer.c, engine_sendfile.c, engine_buffered.c and
 * engine_sum.c, and nothing else (conn.c and server.c see struct transfer
 * only through transfer.h). transfer.c opens the file, sets the range and
 * the OK line, and starts an engine (the section "for transfer.c"); an
 * engine moves the bytes (the sendfile and buffered engines, "the
 * engines" below) and ends the request through the section "for the
 * engines", or through transfer_fail (transfer.h); engine_sum.c hashes
 * them, for SUM, and ends the request through the section "for
 * engine_sum.c". The engines call in turn conn.h's
 * section "for transfer.c, the engines and engine_sum.c", and nothing of
 * server.c; the bandwidth limits reach them through transfer_allowance and
 * transfer_refund, which ask rate.c.
 */
#ifndef FERRY_ENGINE_H
#define FERRY_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "common/protocol.h"
#include "daemon/config.h"
#include "daemon/rate.h"

struct budget;
struct conn;
struct root_ref;
struct sum_state;

enum buf_state { BUF_FREE, BUF_READING, BUF_FULL, BUF_WRITING };

/* A transfer longer than FERRY_PROBE_BYTES starts by probing its client:
 * until that much has reached the kernel, which a client that reads
 * nothing never lets happen (its receive window and the unsent bytes are
 * all it takes), it may leave at most FERRY_PROBE_LOWAT unsent in its
 * socket (TCP_NOTSENT_LOWAT). Without it TCP's autotuning lets a socket
 * take 4 MiB, and 200 stalled readers had 820 MB parked (page references
 * in sendfile mode, copies in buffered mode) while the daemon's first
 * fetch beside them crawled; a client that reads is through the probe in
 * its first megabyte. */
#define FERRY_PROBE_BYTES (1ULL << 20)
/* Twice the largest segment (64 KiB on loopback): the socket is writable
 * again below half of it, and a corked partial segment (sendfile mode
 * corks) must not keep it from that. */
#define FERRY_PROBE_LOWAT (128 * 1024)

/* The state of one request: see transfer.h for who allocates and frees
 * it. */
struct transfer {
	struct conn *conn;
	struct proto_request req;
	char rel[FERRY_LINE_MAX];   /* req.path beneath the root */
	enum transfer_mode mode;    /* copied at start: a reload changes */
	uint64_t chunk_bytes;       /* nothing in flight */
	uint64_t buffer_bytes;
	struct root_ref *root;      /* the server's when the line came, used
				     * by transfer_begin; a reference held
				     * while the open job runs */
	struct budget *budget;
	uint64_t start_ns;
	uint64_t first_byte_ns;     /* the OK line's first byte left; 0 */
	bool logged;
	bool draining;              /* PING: the server drains (settings) */

	/* Bandwidth limits (rate.h), taken when the request came. When
	 * throttled is false nothing below is used: the unlimited path is
	 * the same as without limits. */
	bool throttled;
	struct rate_limit rate;
	uint64_t send_allow;        /* file bytes the next send may move */

	uv_work_t work;             /* open/list job, then sendfile jobs */
	int file_fd;                /* -1 when none */
	struct stat st;
	int open_err;               /* negative errno from opening */
	int job_err;                /* negative errno from the last send */
	struct listing *listing;    /* LIST: the entries, formatted as sent */
	uint64_t listing_len;       /* LIST: the whole text's bytes */
	char *list_buf;             /* LIST: the chunk being written */
	size_t chunk_len;           /* LIST: bytes of it in that write */

	uint64_t offset;            /* range being sent */
	uint64_t length;
	uint64_t sent;              /* file bytes handed to the kernel;
				     * for SUM, bytes hashed */
	char header[128];           /* "OK LENGTH SIZE MTIME\n", or
				     * "OK sha256 HEX SIZE MTIME\n" */
	size_t header_len;
	size_t header_sent;
	bool corked;
	bool range_beyond;          /* OFFSET > SIZE: 416 */
	uint64_t cached_until;      /* file bytes known in the page cache */
	uint64_t partly_until;      /* end of a look-ahead found partly cached */
	uint64_t lookahead;         /* bytes the next look-ahead covers */

	/* sendfile engine: what the last job did */
	uint64_t job_bytes;
	bool job_eof;

	/* buffered engine: two buffers, read in turn, written in turn */
	uv_fs_t read_req;
	uv_write_t write_req;
	uv_write_t header_req;
	char *buf[2];
	size_t buf_fill[2];
	enum buf_state buf_state[2];
	int next_read;
	int next_write;
	uint64_t read_pos;
	bool file_eof;
	bool no_nowait;             /* preadv2(RWF_NOWAIT) refused here */
	bool probing;               /* long, and the client not yet seen
				     * reading: FERRY_PROBE_BYTES */
	bool probe_checked;         /* sendfile: probing decided */
	bool header_writing;

	/* SUM: the hash in progress (engine_sum.c's), or NULL */
	struct sum_state *sum;
};

/* ---- for transfer.c and engine_sum.c ---- */

/* Counts jobs queued on the threadpool and not yet started, across all
 * loops: +1 when one is queued, -1 when it starts or could not be queued.
 * A sendfile job waits for a full socket only while no other job waits for
 * a thread. */
void engine_jobs_queued(int delta);

/* ---- for transfer.c ---- */

/* The sendfile engine. sendfile_send sends what is left of the OK line and
 * then file bytes, until the range is done, the job's budget is spent, the
 * file ended early, or the socket stays full (the open job calls it with
 * MAY_WAIT, on the threadpool, for a file's first send).
 * sendfile_first_on_loop makes the first send on the loop when cachestat(2)
 * finds the first window cached, else leaves it to a job once the socket is
 * writable. sendfile_progress takes in what the last send did and goes on:
 * done, failed, or more to send. */
void sendfile_send(struct transfer *t, bool may_wait);
void sendfile_first_on_loop(struct transfer *t);
void sendfile_progress(struct transfer *t);

/* The buffered engine: starts sending the range through two buffers. */
void buffered_start(struct transfer *t);

/* For the log: a buffer cut mid-write is partly in the kernel already;
 * counts into T->sent what left the write queue, so bytes= matches what the
 * client got. Nothing for a transfer that has no buffer being written. */
void buffered_count_cut(struct transfer *t);

/* The transfer is freed: its buffers go back to the engine's pool. */
void buffered_free(struct transfer *t);

/* The SUM engine (engine_sum.c), for a SUM whose file is open (T->file_fd,
 * T->st): answers "OK sha256 HEX SIZE MTIME" from the digest cache, or
 * hashes the file in threadpool jobs first (T->sent counts the bytes
 * hashed; 0 for a cached digest). An error is answered through
 * conn_reply_error. sum_free frees what the hash held; transfer_free calls
 * it. */
void sum_start(struct transfer *t);
void sum_free(struct transfer *t);

/* ---- for engine_sum.c ---- */

/* Writes T's answer, the line in T->header (and for LIST the listing, a
 * chunk at a time), then ends the request as transfer_done does; a failed
 * write ends it as transfer_fail_errno. */
void transfer_write_answer(struct transfer *t);

/* ---- for the engines ---- */

/* The whole range has been sent: logs 200 and goes on with the next
 * request. */
void transfer_done(struct transfer *t);

/* The file ended before the range did: it shrank while being sent. Logs,
 * 500 truncated, closes. */
void transfer_shrank(struct transfer *t);

/* A send or a read failed with ERR (a negative errno or UV_E* code): socket
 * errors mean the client went away (499), anything else is ours (500). */
void transfer_fail_errno(struct transfer *t, int err);

/* A throttled transfer (t->throttled) is about to send up to WANT (> 0)
 * file bytes: how many it may send now, granted (taken from its buckets)
 * until it gives back what it did not send (transfer_refund). 0 when it
 * must wait for tokens:
 * then the connection's timer calls RESUME with it once they have accrued
 * (and nothing watches the socket meanwhile), or, when the timer could not
 * be armed, the transfer has failed and the connection is closing. */
uint64_t transfer_allowance(struct transfer *t, uint64_t want,
			    void (*resume)(struct transfer *));

/* TCP_NOTSENT_LOWAT of T's socket: at most BYTES left unsent (0: the
 * system's default, no limit). */
void transfer_notsent_lowat(struct transfer *t, int bytes);

/* Corks (ON) or uncorks T's socket (TCP_CORK, nginx's tcp_nopush): while
 * corked only full segments leave, so the OK line and the file's first
 * bytes share one and none leaves half empty between sends; uncorking, or
 * the close, sends the tail at once. T->corked says which it is. */
void transfer_cork(struct transfer *t, bool on);

/* BYTES of a throttled transfer's last grant were not sent (the socket was
 * full, or it failed): they go back to its buckets. */
void transfer_refund(struct transfer *t, uint64_t bytes);

#endif
