/* Answering one request: opening the file (or building a listing) on the
 * threadpool, the range, the OK line, and the two engines that move the
 * bytes: sendfile(2) jobs on the threadpool, or uv_fs_read + uv_write through
 * two bounded buffers; for SUM, engine_sum.c hashes the file instead.
 *
 * Who calls it: conn.c (the section "for conn.c"), for each request line
 * it reads; the engines call transfer_fail too. transfer.c and its engines
 * call in turn conn.h's section "for transfer.c, the engines and
 * engine_sum.c" (the socket, jobs, progress, and answer/finish/fail),
 * engine.h, budget.h, root.h, rate.h, path.h, listing.h and translog.h;
 * never server.c. The
 * settings a transfer needs from the configuration, the root and the
 * budget come from conn.c in struct transfer_settings. struct transfer is
 * opaque: only transfer.c and the engines (engine.h) touch its fields.
 *
 * Ownership. A transfer is allocated by transfer_new when conn.c has cut a
 * request line, and freed by conn.c (transfer_free) when the request ends
 * or the connection is freed; every callback that can still arrive for it
 * (jobs, reads, writes) arrives before that, because conn.c frees it only
 * after its jobs are done and its handles are closed.
 */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"

struct budget;
struct conn;
struct rate_shared;
struct root_ref;
struct transfer;

/* What a transfer takes when it starts, so that a reload changes nothing
 * in flight. */
struct transfer_settings {
	enum transfer_mode mode;
	uint64_t chunk_bytes;
	uint64_t buffer_bytes;
	struct root_ref *root;    /* the server's; open jobs take a reference */
	struct budget *budget;    /* the server's */
	uint64_t rate_bps;        /* limits.rate; 0: none */
	struct rate_shared *rate_shared; /* the server's bucket for
					  * limits.rate_total, or NULL when
					  * it is 0 */
	bool draining;            /* PING answers ERR 503 draining */
};

/* ---- for conn.c ---- */

/* A new transfer on C for the request LINE (LEN bytes, the LF excluded),
 * with settings S; its clock starts now. *STATUS is 0, or the protocol
 * error code (400) for a malformed line, which conn.c answers (it is logged
 * with path "-"). NULL when out of memory. */
struct transfer *transfer_new(struct conn *c, const char *line, size_t len,
			      const struct transfer_settings *s, int *status);

/* Whether T is the raw form ("/path"): answered without an OK line, and the
 * connection closes after it. */
bool transfer_is_raw(const struct transfer *t);

/* Starts answering T, the connection's current request. Ends by calling
 * conn_request_done or conn_reply_error, or transfer_fail. */
void transfer_begin(struct transfer *t);

/* Logs T as ended with STATUS (a 200, an ERR code, 499) once. */
void transfer_log(struct transfer *t, int status, const char *error);

/* Frees T and closes its file. Only once nothing can call back for it. */
void transfer_free(struct transfer *t);

/* ---- for conn.c and the engines ---- */

/* Logs T as failed and closes the connection. */
void transfer_fail(struct transfer *t, int status, const char *error);

#endif
