/* One client connection: reading request lines, answering them in order,
 * timeouts, and closing. File transfers themselves live in transfer.c. */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/protocol.h"

struct server;
struct transfer;

/*
 * Ownership. A struct conn is allocated by server.c when a client is
 * accepted and freed by conn.c in the close callback of its last handle
 * (conn_close), never earlier: libuv still holds pointers to the handles
 * until then. Threadpool work that touches the socket's fd (sendfile jobs,
 * file reads, opens) is counted in `jobs`; the tcp handle is not closed while
 * that count is above zero, because uv_close closes the fd at once and the
 * number could be reused by the next accept while a job still writes to it.
 * The current request's state (struct transfer) belongs to the conn and is
 * freed with it or when the request ends.
 */
struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_poll_t poll;          /* writability for the sendfile engine */
	struct server *srv;
	struct conn *prev, *next; /* srv->conns */
	int fd;                  /* the tcp handle's socket */
	struct sockaddr_storage peer;
	char peer_text[64];      /* "127.0.0.1:53422" */

	char *in;                /* request bytes read, FERRY_LINE_MAX; lazily */
	size_t in_len;

	struct transfer *xfer;   /* the request being answered, or NULL */
	unsigned jobs;           /* threadpool work using fd or xfer */
	unsigned handles;        /* handles not yet closed */
	unsigned requests;       /* answered so far */
	uint64_t progress_ms;    /* loop time bytes last moved */

	bool admitted;           /* counted in srv->conn_count / clients */
	bool reading;
	bool read_eof;           /* the client shut down its sending side */
	bool poll_init;
	bool poll_active;
	bool closing;            /* conn_close called */
	bool lingering;          /* FIN sent; discarding input until EOF */
	bool close_after;        /* raw form, fatal error or shutdown */
	bool nodelay;            /* TCP_NODELAY set */
	char errline[160];       /* an ERR line being written */
	uv_write_t ereq;
	uv_shutdown_t sreq;
};

/* Starts serving an accepted connection (its tcp handle is initialised and
 * accepted): reads the peer address, applies the limits, arms the timer. */
void conn_start(struct conn *c);

/* Ends the connection now: stops everything and closes its handles once no
 * job uses the socket; the conn is freed in the last close callback. */
void conn_close(struct conn *c);

/* Sends "ERR CODE REASON" for the current request, logs it, and goes on to
 * the next request or closes, as the protocol says for CODE. */
void conn_reply_error(struct conn *c, int code, const char *error);

/* The current transfer has ended (logged by the caller): go on with the next
 * request, or close when the request or the server says so. */
void conn_request_done(struct conn *c, bool close_now);

/* Shutdown: close now if no request is being answered, else close after. */
void conn_drain(struct conn *c);

/* "[::1]:7070" / "127.0.0.1:7070" for an address. */
void conn_format_addr(const struct sockaddr *sa, char *out, size_t cap);

#endif
