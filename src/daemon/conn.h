/* One client connection: reading request lines, answering them in order,
 * timeouts, and closing. File transfers themselves live in transfer.c.
 *
 * Who calls it: server.c makes connections, walks them and drains or cuts
 * them at shutdown (the section "for server.c"); transfer.c and its engines
 * (engine_sum.c among them) write on the connection's socket and report
 * back (the section "for transfer.c, the engines and engine_sum.c").
 * Nothing else. conn.c calls in turn
 * server.h's section "for conn.c" (limits, settings, the root and the
 * budget), transfer.h's section "for conn.c" (a request's life), budget.h,
 * clients.h and translog.h.
 * struct conn is opaque: only conn.c touches its fields.
 *
 * Ownership. A struct conn is allocated by conn_new (called by server.c
 * when a client is accepted) and freed by conn.c in the close callback of
 * its last handle (conn_close), never earlier: libuv still holds pointers
 * to the handles until then. Threadpool work that touches the socket's fd
 * (sendfile jobs, file reads, opens) is counted with conn_job_begin and
 * conn_job_end; the tcp handle is not closed while that count is above
 * zero, because uv_close closes the fd at once and the number could be
 * reused by the next accept while a job still writes to it. The timer a
 * throttled transfer waits on (conn_wait_tokens) is the conn's too, closed
 * with the others. The current
 * request's state (struct transfer) belongs to the conn and is freed with
 * it or when the request ends.
 */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

struct conn;
struct server;
struct transfer;

/* ---- for server.c ---- */

/* Takes the accepted socket FD from PEER into a new connection of SRV on
 * LOOP, links it at the head of *LIST (it unlinks itself before it is
 * freed, then calls server_conn_closed) and starts serving it: reads the
 * peer address, applies the limits, arms the timer. With PROXY (the
 * listener's proxy_protocol) the connection must start with a PROXY
 * header (proxy.h), read within request_timeout; its address becomes the
 * peer, and limits.per_client is applied to it then. 0, or -ENOMEM with
 * nothing made and FD still the caller's. */
int conn_new(struct server *srv, uv_loop_t *loop, struct conn **list, int fd,
	     const struct sockaddr_storage *peer, bool proxy);

/* The connection after C in its list, or NULL. */
struct conn *conn_next(const struct conn *c);

/* Whether C is answering a request and not closing. */
bool conn_busy(const struct conn *c);

/* Shutdown: close now if no request is being answered, else close after. */
void conn_drain(struct conn *c);

/* The shutdown deadline: ends C now. A request still being answered is
 * logged as cut (503 shutdown); then true. False when C was idle or
 * already closing. */
bool conn_cut(struct conn *c);

/* ---- for server.c and ferryd.c ---- */

/* "[::1]:7070" / "127.0.0.1:7070" for an address. */
void conn_format_addr(const struct sockaddr *sa, char *out, size_t cap);

/* ---- for transfer.c, the engines and engine_sum.c ---- */

/* The stream to write answers on (the tcp handle, made on first use: a
 * request answered at once needs none); its loop is the
 * connection's. Not to be read or written while conn_watch_writable's poll
 * is active. */
uv_stream_t *conn_stream(struct conn *c);

/* The connection's loop, for threadpool work (no stream needed). */
uv_loop_t *conn_loop(const struct conn *c);

/* The socket's fd, for sendfile(2) and socket options; a job may use it
 * between conn_job_begin and conn_job_end. */
int conn_fd(const struct conn *c);

/* "127.0.0.1:53422": the client, for logs. */
const char *conn_peer(const struct conn *c);

/* Whether conn_close has been called: a callback that finds it so must
 * touch nothing more of the request. */
bool conn_closing(const struct conn *c);

/* Threadpool work that uses the socket or the request is queued. */
void conn_job_begin(struct conn *c);

/* That work's after-callback runs. False when the connection is closing:
 * then it has been closed (or will be, once no job is left) and the caller
 * must only return. True when the request goes on. */
bool conn_job_end(struct conn *c);

/* Bytes moved just now: the send timeout counts from here. */
void conn_progress(struct conn *c);

/* Calls ON_WRITABLE with the connection's transfer whenever the socket is
 * writable, on a uv_poll_t made on first use (the tcp handle must neither
 * read nor write meanwhile: LIBUV-NOTES). Nothing when already watching.
 * 0 or a UV_E* code. */
int conn_watch_writable(struct conn *c, void (*on_writable)(struct transfer *));

/* Stops watching, if watching. */
void conn_unwatch(struct conn *c);

/* A throttled transfer has no tokens: calls ON_READY with the connection's
 * transfer in DELAY_MS, on a timer the connection makes on first use and
 * closes with its other handles. Re-arming replaces a pending wait. Nothing
 * is called once the connection is closing or the request has ended, and
 * send_timeout does not count the wait against the client. 0 or a UV_E*
 * code. */
int conn_wait_tokens(struct conn *c, uint64_t delay_ms,
		     void (*on_ready)(struct transfer *));

/* Answers the current request with "ERR CODE REASON", logs it, and goes on
 * to the next request or closes, as the protocol says for CODE. */
void conn_reply_error(struct conn *c, int code, const char *error);

/* The same with REASON on the wire instead of the code's usual text
 * ("ERR 503 draining"). */
void conn_reply_error_reason(struct conn *c, int code, const char *error,
			     const char *reason);

/* The current transfer has ended (logged by the caller): go on with the next
 * request, or close when the request or the server says so. */
void conn_request_done(struct conn *c, bool close_now);

/* Ends the connection now (a failed transfer, logged by the caller): stops
 * everything and closes its handles once no job uses the socket; the conn
 * is freed in the last close callback. */
void conn_close(struct conn *c);

#endif
