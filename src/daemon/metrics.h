/* Prometheus metrics: what ferryd counts, kept in one shared mapping with a
 * slot per worker, and the text exposition (format 0.0.4) of their sum.
 *
 * Who calls it: ferryd.c makes the mapping before any worker is forked
 * (metrics_open) and serves the scrapes on its loop (metrics_serve, in
 * metrics_http.c, which formats them with metrics_format); workers.c tells
 * each worker its slot (metrics_worker); server.c, conn.c, transfer.c and
 * engine_sendfile.c count. metrics.c and metrics_http.c call nothing of
 * ferryd's in turn.
 *
 * Ownership. The mapping is MAP_SHARED and anonymous, made once by the
 * process that reads the config first (the parent, with workers) and never
 * freed before exit: a reload swaps the server and its config but not this,
 * and a restarted worker takes the slot of the one it replaces, so counters
 * only go up. Each process writes only its own slot; a scrape reads every
 * slot and sums them. Gauges (connections, transfers, jobs) are zeroed when
 * a worker (re)starts: what its predecessor held died with it.
 *
 * Cost. Counting takes no lock and allocates nothing: each call is one or a
 * few relaxed atomic additions to the calling process's slot (atomic
 * because the threadpool counts queued jobs too). With metrics off the
 * slot is a static one nobody reads.
 */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The modes a request is counted by, as the transfer log names them. */
enum metrics_mode {
	METRICS_MODE_SENDFILE,
	METRICS_MODE_BUFFERED,
	METRICS_MODE_LIST,
	METRICS_MODE_SUM,
	METRICS_MODE_PING,
	METRICS_MODE_NONE, /* "-": refused before a request was read */
	METRICS_MODE_COUNT,
};

/* ---- for ferryd.c ---- */

/* Makes the shared counters, SLOTS of them (one per worker), and keeps
 * LISTEN_FD, a listening socket for the scrapes (or -1: metrics off, and
 * nothing is mapped). 0 or a negative errno. */
int metrics_open(unsigned slots, int listen_fd);

/* Serves GET /metrics on LOOP when this process holds the metrics socket
 * (the single process, or worker 0). 0 or a UV_E* code. */
int metrics_serve(uv_loop_t *loop);

/* Closes the metrics listener and every scrape connection (shutdown). */
void metrics_stop(void);


/* ---- for metrics_http.c ---- */

/* The socket metrics_open kept, or -1 (off, or not this worker's). */
int metrics_listen_fd(void);

/* Writes the exposition of every slot's sum into BUF, NUL-terminated. Its
 * length (snprintf semantics: CAP or more when it did not fit). */
size_t metrics_format(char *buf, size_t cap);

/* ---- for workers.c ---- */

/* In a worker just forked: counts into slot INDEX from now on, and lets
 * only worker 0 keep the metrics socket. */
void metrics_worker(unsigned index);

/* ---- for transfer.c and conn.c ---- */

/* One request answered (or refused) with STATUS, and the file or listing
 * bytes it sent. */
void metrics_request(int status, enum metrics_mode mode, uint64_t bytes);

/* ---- for transfer.c ---- */

/* A transfer began / was freed (the in-flight gauge). */
void metrics_transfer_begin(void);
void metrics_transfer_end(void);

/* A logged transfer took DURATION_NS; its answer's first byte left
 * FIRST_BYTE_NS after the request line came (0: no OK line was sent). */
void metrics_transfer_time(uint64_t duration_ns, uint64_t first_byte_ns);

/* ---- for conn.c ---- */

/* A client refused over a limit with CODE (503 or 429). */
void metrics_refused(int code);

/* A transfer closed for taking no bytes for limits.send_timeout. */
void metrics_send_timeout(void);

/* ---- for server.c ---- */

/* Accepting paused for want of descriptors (or on EMFILE and the like). */
void metrics_accept_paused(void);

/* A client connection was made / was freed. */
void metrics_conn_opened(void);
void metrics_conn_closed(void);

/* ---- for engine_sendfile.c ---- */

/* Threadpool jobs queued and not yet started: see engine_jobs_queued. */
void metrics_jobs_queued(int delta);

#endif
