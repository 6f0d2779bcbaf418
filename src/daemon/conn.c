/* One client connection: see conn.h. */
#include "daemon/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/budget.h"
#include "daemon/clients.h"
#include "daemon/metrics.h"
#include "common/log.h"
#include "common/protocol.h"
#include "daemon/proxy.h"
#include "daemon/server.h"
#include "daemon/transfer.h"
#include "daemon/translog.h"

/* How long a closing connection may keep sending us bytes after our FIN
 * before we close it hard. Reading them until the client's EOF keeps the
 * kernel from answering unread input with a reset that could destroy the
 * last bytes of the answer in the client's receive queue. */
#define FERRY_LINGER_MS 2000

/* A client connection. Who frees it, and when: see conn.h. */
struct conn {
	uv_tcp_t tcp;            /* made when first needed: see stream() */
	uv_timer_t timer;
	uv_poll_t poll;          /* writability for the sendfile engine */
	uv_timer_t tokens;       /* a throttled transfer waits for tokens */
	struct server *srv;
	struct conn **list;      /* the server's list of connections */
	struct conn *prev, *next;
	int fd;                  /* the client's socket, ours until tcp_open */
	struct sockaddr_storage peer;
	char peer_text[64];      /* "127.0.0.1:53422" */

	char *in;                /* request bytes read, FERRY_LINE_MAX; lazily */
	size_t in_len;

	struct transfer *xfer;   /* the request being answered, or NULL */
	void (*on_writable)(struct transfer *t); /* while poll_active */
	void (*on_tokens)(struct transfer *t);   /* while tokens is active */
	unsigned jobs;           /* threadpool work using fd or xfer */
	unsigned handles;        /* handles not yet closed */
	unsigned requests;       /* answered so far */
	uint64_t progress_ms;    /* loop time bytes last moved */

	bool tcp_open;           /* tcp was made: it owns fd (unless tcp_failed) */
	bool tcp_failed;         /* uv_tcp_open refused fd */
	bool released;           /* the handles are closing */
	bool admitted;           /* counted in the server's limits */
	bool client_counted;     /* counted in limits.per_client (clients.c) */
	bool awaiting_proxy;     /* the PROXY header has not been read yet */
	bool reading;
	bool read_eof;           /* the client shut down its sending side */
	bool poll_init;
	bool poll_active;
	bool tokens_init;        /* the tokens timer was made (first use) */
	bool closing;            /* conn_close called */
	bool lingering;          /* FIN sent; discarding input until EOF */
	bool close_after;        /* raw form, fatal error or shutdown */
	bool nodelay;            /* TCP_NODELAY set */
	char errline[160];       /* an ERR line being written */
	uv_write_t ereq;
	uv_shutdown_t sreq;
};

static void process(struct conn *c);
static void start_reading(struct conn *c);

/* The connection's stream handle, made on first use: a request answered
 * at once (read by recv, sent by sendfile, closed) never needs it, and
 * skips its FIONBIO ioctl and the EPOLL_CTL_DEL of its close. NULL when
 * libuv refused the socket (then conn_close closes it). */
static uv_stream_t *stream(struct conn *c)
{
	int rc;

	if (!c->tcp_open) {
		uv_tcp_init(c->timer.loop, &c->tcp);
		c->tcp.data = c;
		c->handles++;
		c->tcp_open = true;
		rc = uv_tcp_open(&c->tcp, c->fd);
		if (rc < 0) {
			log_warn("%s: cannot watch the socket: %s",
				 c->peer_text, uv_strerror(rc));
			c->tcp_failed = true;
		}
	}
	return c->tcp_failed ? NULL : (uv_stream_t *)&c->tcp;
}
static void conn_start(struct conn *c);
static bool take_proxy_header(struct conn *c);

void conn_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(out, cap, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(out, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, cap, "unknown");
	}
}

/* ---- closing ---- */

static void close_cb(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	if (--c->handles > 0)
		return;
	transfer_free(c->xfer);
	c->xfer = NULL;
	free(c->in);
	if (c->client_counted)
		clients_release(server_clients(c->srv),
				(struct sockaddr *)&c->peer);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*c->list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	server_conn_closed(c->srv, c->admitted);
	free(c);
}

void conn_close(struct conn *c)
{
	if (!c->closing) {
		c->closing = true;
		conn_unwatch(c);
		uv_timer_stop(&c->timer);
		if (c->tokens_init)
			uv_timer_stop(&c->tokens);
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
	}
	/* A job still uses the socket's fd: closing it now would let the next
	 * accept reuse the number under the job. Its callback calls us again. */
	if (c->jobs > 0)
		return;
	if (c->released)
		return;
	c->released = true;
	if (c->poll_init)
		uv_close((uv_handle_t *)&c->poll, close_cb);
	if (c->tokens_init)
		uv_close((uv_handle_t *)&c->tokens, close_cb);
	uv_close((uv_handle_t *)&c->timer, close_cb);
	if (c->tcp_open)
		uv_close((uv_handle_t *)&c->tcp, close_cb);
	/* Without the handle (or when it refused the socket) the socket is
	 * ours to close: no libuv watcher ever had it, so nothing else to
	 * undo (no EPOLL_CTL_DEL). */
	if (!c->tcp_open || c->tcp_failed)
		close(c->fd);
}

static void linger_timer_cb(uv_timer_t *timer)
{
	conn_close(timer->data);
}

static void discard_alloc_cb(uv_handle_t *handle, size_t suggested,
			     uv_buf_t *buf)
{
	static char sink[16384];

	(void)handle;
	(void)suggested;
	*buf = uv_buf_init(sink, sizeof sink);
}

static void discard_read_cb(uv_stream_t *stream, ssize_t nread,
			    const uv_buf_t *buf)
{
	(void)buf;
	if (nread < 0)
		conn_close(stream->data);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (c->closing)
		return;
	if (status < 0 || c->read_eof) {
		conn_close(c);
		return;
	}
	c->lingering = true;
	if (stream(c) == NULL ||
	    uv_read_start(stream(c), discard_alloc_cb, discard_read_cb) < 0) {
		conn_close(c);
		return;
	}
	c->reading = true;
	uv_timer_start(&c->timer, linger_timer_cb, FERRY_LINGER_MS, 0);
}

/* Closes after everything queued has been written: FIN first, then read
 * (and drop) what the client still sends until its EOF, bounded in time. */
static void close_gracefully(struct conn *c)
{
	int unread = 0, zero = 0;

	if (c->closing || c->lingering)
		return;
	/* Nothing unread: a plain close sends what is queued, then FIN, and
	 * no reset can follow. */
	if (c->in_len == 0 &&
	    (c->read_eof ||
	     (ioctl(c->fd, FIONREAD, &unread) == 0 && unread == 0))) {
		conn_close(c);
		return;
	}
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	uv_timer_stop(&c->timer);
	/* The listener's TCP_LINGER2 -1 would make a close in FIN_WAIT2,
	 * after the wait below ran out, a reset: TCP's default again. */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_LINGER2, &zero, sizeof zero);
	c->lingering = true;
	c->sreq.data = c;
	if (stream(c) == NULL || uv_shutdown(&c->sreq, stream(c), shutdown_cb) < 0)
		conn_close(c);
}

/* ---- errors ---- */

static void error_write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	conn_request_done(c, false);
}

/* Logs a refusal that has no request behind it (a limit, a timeout, a line
 * too long): path and mode are "-". */
static void log_refusal(struct conn *c, int status, const char *error)
{
	struct transfer_record r;

	memset(&r, 0, sizeof r);
	clock_gettime(CLOCK_REALTIME, &r.end);
	r.client = c->peer_text;
	r.path = "-";
	r.mode = "-";
	r.status = status;
	r.error = error;
	translog_write(&r);
	metrics_request(status, METRICS_MODE_NONE, 0);
}

void conn_reply_error(struct conn *c, int code, const char *error)
{
	conn_reply_error_reason(c, code, error, NULL);
}

void conn_reply_error_reason(struct conn *c, int code, const char *error,
			     const char *reason)
{
	uv_buf_t b;
	int len;
	int rc;

	if (c->xfer != NULL)
		transfer_log(c->xfer, code, error);
	else
		log_refusal(c, code, error);
	if (proto_error_closes(code) ||
	    (c->xfer != NULL && transfer_is_raw(c->xfer)))
		c->close_after = true;
	len = proto_format_err(c->errline, sizeof c->errline, code, reason);
	b = uv_buf_init(c->errline, (unsigned)len);
	c->ereq.data = c;
	rc = uv_write(&c->ereq, conn_stream(c), &b, 1, error_write_cb);
	if (rc < 0)
		conn_close(c);
}

/* ---- timers ---- */

static void request_timeout_cb(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	conn_reply_error(c, 408, "request-timeout");
}

static void idle_timeout_cb(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	log_debug("%s: idle for too long, closing", c->peer_text);
	close_gracefully(c);
}

/* Whether the transfer waits for rate-limit tokens: then the client is not
 * the one holding it up. */
static bool waiting_for_tokens(const struct conn *c)
{
	return c->tokens_init && uv_is_active((const uv_handle_t *)&c->tokens);
}

/* While a request is answered: closes a client that has taken no bytes for
 * send_timeout. Progress is a timestamp, so moving bytes costs no timer
 * operation; the timer re-arms itself for the time that is left. A wait
 * for rate-limit tokens counts as progress: the delay is ours. */
static void send_timeout_cb(uv_timer_t *timer)
{
	struct conn *c = timer->data;
	uint64_t limit = server_config(c->srv)->send_timeout_ms;
	uint64_t idle;

	if (c->xfer == NULL)
		return;
	if (waiting_for_tokens(c))
		c->progress_ms = uv_now(c->timer.loop);
	idle = uv_now(c->timer.loop) - c->progress_ms;
	if (idle >= limit) {
		log_info("%s: took no bytes for %llu ms, closing",
			 c->peer_text, (unsigned long long)idle);
		metrics_send_timeout();
		transfer_fail(c->xfer, 408, "send-timeout");
		return;
	}
	uv_timer_start(timer, send_timeout_cb, limit - idle, 0);
}

/* ---- reading requests ---- */

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = handle->data;

	(void)suggested;
	if (c->in == NULL)
		c->in = malloc(FERRY_LINE_MAX);
	if (c->in == NULL) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	*buf = uv_buf_init(c->in + c->in_len,
			   (unsigned)(FERRY_LINE_MAX - c->in_len));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	bool was_empty = c->in_len == 0;

	(void)buf;
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		c->read_eof = true;
		uv_read_stop(stream);
		c->reading = false;
		process(c);
		return;
	}
	if (nread < 0) {
		log_debug("%s: read: %s", c->peer_text, uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	c->in_len += (size_t)nread;
	/* The first byte of a new line starts the request timeout. */
	if (was_empty && c->requests > 0)
		uv_timer_start(&c->timer, request_timeout_cb,
			       server_config(c->srv)->request_timeout_ms, 0);
	process(c);
}

static void start_reading(struct conn *c)
{
	int rc;

	if (c->reading || c->read_eof)
		return;
	if (stream(c) == NULL) {
		conn_close(c);
		return;
	}
	rc = uv_read_start(stream(c), alloc_cb, read_cb);
	if (rc < 0) {
		log_debug("%s: read_start: %s", c->peer_text, uv_strerror(rc));
		conn_close(c);
		return;
	}
	c->reading = true;
}

/* Most clients send their request right after connecting, so it is often
 * there by the time the connection is accepted: read it at once, and wait
 * for the socket (start_reading) only when it is not. */
static void read_first(struct conn *c)
{
	ssize_t n;

	c->in = malloc(FERRY_LINE_MAX);
	if (c->in == NULL) {
		conn_close(c);
		return;
	}
	do
		n = recv(c->fd, c->in, FERRY_LINE_MAX, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->in_len = (size_t)n;
		process(c);
	} else if (n == 0) {
		c->read_eof = true;
		process(c);
	} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
		/* An idle connection holds no buffer (see alloc_cb). */
		free(c->in);
		c->in = NULL;
		start_reading(c);
	} else {
		log_debug("%s: read: %s", c->peer_text, strerror(errno));
		conn_close(c);
	}
}

/* Refuses a client over a limit: the ERR line, then a graceful close. */
static void refuse(struct conn *c, int code, const char *error)
{
	c->close_after = true;
	if (code == 429 || code == 503)
		metrics_refused(code);
	conn_reply_error(c, code, error);
}

/* Applies limits.per_client to the peer (the socket's, or the PROXY
 * header's). False when the client was refused. */
static bool admit_client(struct conn *c)
{
	int rc = clients_acquire(server_clients(c->srv),
				 (struct sockaddr *)&c->peer,
				 server_config(c->srv)->max_per_client);

	if (rc < 0) {
		log_debug("%s: refused, at limits.per_client", c->peer_text);
		refuse(c, rc == -1 ? 429 : 503,
		       rc == -1 ? "per-client-limit" : "out-of-memory");
		return false;
	}
	c->client_counted = true;
	return true;
}

/* On a proxy_protocol listener: takes the PROXY header from the start of
 * c->in, makes its address the peer and applies limits.per_client to it.
 * What follows the header in c->in is the first request line. False while
 * the header is incomplete (reading goes on, within the request timeout
 * armed at the start) and when the connection was refused. */
static bool take_proxy_header(struct conn *c)
{
	struct proxy_header hdr;
	char from[sizeof c->peer_text];
	ssize_t n = proxy_parse(c->in, c->in_len, &hdr);

	if (n == 0 && !c->read_eof) {
		if (c->in_len == 0) {
			free(c->in);
			c->in = NULL;
		}
		start_reading(c);
		return false;
	}
	if (n == 0 && c->in_len == 0) {
		/* Connected and closed, as a port probe does: nothing to say. */
		close_gracefully(c);
		return false;
	}
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	if (n <= 0) {
		log_info("%s: refused, no valid PROXY header (%zu bytes)",
			 c->peer_text, c->in_len);
		uv_timer_stop(&c->timer);
		c->in_len = 0;
		refuse(c, 400, "bad-proxy-header");
		return false;
	}
	c->awaiting_proxy = false;
	c->in_len -= (size_t)n;
	memmove(c->in, c->in + n, c->in_len);
	if (!hdr.local) {
		memcpy(from, c->peer_text, sizeof from);
		memcpy(&c->peer, &hdr.src, hdr.src_len);
		conn_format_addr((struct sockaddr *)&c->peer, c->peer_text,
				 sizeof c->peer_text);
		log_debug("%s: via the proxy %s", c->peer_text, from);
	}
	return admit_client(c);
}

/* Answers the next complete request line, or waits for one. Called whenever
 * no request is being answered. */
static void process(struct conn *c)
{
	struct transfer_settings settings;
	const struct config *cfg;
	struct transfer *t;
	ssize_t n;
	size_t line_len;
	int status;

	if (c->closing || c->lingering || c->xfer != NULL)
		return;
	if (server_stopping(c->srv))
		c->close_after = true;
	if (c->close_after) {
		close_gracefully(c);
		return;
	}
	if (c->awaiting_proxy && !take_proxy_header(c))
		return;
	if (c->in_len == 0) {
		free(c->in);
		c->in = NULL;
		if (c->read_eof) {
			close_gracefully(c);
			return;
		}
		if (c->requests > 0)
			uv_timer_start(&c->timer, idle_timeout_cb,
				       server_config(c->srv)->idle_timeout_ms, 0);
		start_reading(c);
		return;
	}
	n = proto_line_length(c->in, c->in_len);
	if (n < 0) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
		uv_timer_stop(&c->timer);
		c->in_len = 0;
		conn_reply_error(c, 414, "line-too-long");
		return;
	}
	if (n == 0) {
		if (!c->read_eof) {
			/* Part of a line is here: it must be whole in time. */
			if (!uv_is_active((uv_handle_t *)&c->timer))
				uv_timer_start(&c->timer, request_timeout_cb,
					       server_config(c->srv)->request_timeout_ms,
					       0);
			start_reading(c);
			return;
		}
		/* The client ended its last line with EOF instead of LF, as
		 * `printf /file | nc -N` does: take it as a line. */
		n = (ssize_t)c->in_len;
		line_len = c->in_len;
	} else {
		line_len = (size_t)n - 1;
	}

	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
	cfg = server_config(c->srv);
	settings.mode = cfg->mode;
	settings.chunk_bytes = cfg->chunk_bytes;
	settings.buffer_bytes = cfg->buffer_bytes;
	settings.root = server_root(c->srv);
	settings.budget = server_budget(c->srv);
	settings.rate_bps = cfg->rate_bps;
	settings.draining = server_draining(c->srv);
	settings.rate_shared = cfg->rate_total_bps > 0 ?
				       server_rate_shared(c->srv) : NULL;
	t = transfer_new(c, c->in, line_len, &settings, &status);
	if (t == NULL) {
		conn_close(c);
		return;
	}
	c->xfer = t;
	c->in_len -= (size_t)n;
	memmove(c->in, c->in + n, c->in_len);
	c->progress_ms = uv_now(c->timer.loop);
	uv_timer_start(&c->timer, send_timeout_cb, cfg->send_timeout_ms, 0);
	if (status != 0) {
		conn_reply_error(c, status, "bad-request");
		return;
	}
	if (transfer_is_raw(t)) {
		c->close_after = true;
	} else if (!c->nodelay) {
		/* A kept-alive answer's last segment must not wait for the
		 * client's delayed ACK (Nagle); the raw form's close flushes
		 * it anyway, so only GET and LIST pay for this. */
		int on = 1;

		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
		c->nodelay = true;
	}
	transfer_begin(t);
}

void conn_request_done(struct conn *c, bool close_now)
{
	if (c->closing)
		return;
	transfer_free(c->xfer);
	c->xfer = NULL;
	c->requests++;
	uv_timer_stop(&c->timer);
	if (c->tokens_init)
		uv_timer_stop(&c->tokens);
	if (close_now)
		c->close_after = true;
	process(c);
}

void conn_drain(struct conn *c)
{
	if (c->closing)
		return;
	if (c->lingering) {
		conn_close(c);
		return;
	}
	c->close_after = true;
	if (c->xfer == NULL)
		conn_close(c);
}


/* Starts serving an accepted connection (its tcp handle is initialised and
 * open): reads the peer address, applies the limits, arms the timer. */
static void conn_start(struct conn *c)
{
	struct server *srv = c->srv;
	const struct config *cfg = server_config(srv);

	c->timer.data = c;
	/* c->peer came with accept4. */
	conn_format_addr((struct sockaddr *)&c->peer, c->peer_text,
			 sizeof c->peer_text);

	if (server_stopping(srv)) {
		refuse(c, 503, "shutting-down");
		return;
	}
	if (budget_tight(server_budget(srv))) {
		log_debug("%s: refused, file descriptors short", c->peer_text);
		refuse(c, 503, "fd-limit");
		return;
	}
	if (server_conn_limit_reached(srv)) {
		log_debug("%s: refused, at limits.connections", c->peer_text);
		refuse(c, 503, "connection-limit");
		return;
	}
	c->admitted = true;
	server_conn_admitted(srv);
	/* Behind a proxy the client is known only from the header. */
	if (!c->awaiting_proxy && !admit_client(c))
		return;
	uv_timer_start(&c->timer, request_timeout_cb,
		       cfg->request_timeout_ms, 0);
	read_first(c);
}

/* ---- for server.c ---- */

int conn_new(struct server *srv, uv_loop_t *loop, struct conn **list, int fd,
	     const struct sockaddr_storage *peer, bool proxy)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return -ENOMEM;
	c->srv = srv;
	c->peer = *peer;
	c->awaiting_proxy = proxy;
	c->fd = fd;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles = 1;
	c->list = list;
	c->next = *list;
	if (*list != NULL)
		(*list)->prev = c;
	*list = c;
	conn_start(c);
	return 0;
}

struct conn *conn_next(const struct conn *c)
{
	return c->next;
}

bool conn_busy(const struct conn *c)
{
	return c->xfer != NULL && !c->closing;
}

bool conn_cut(struct conn *c)
{
	if (c->closing)
		return false;
	if (c->xfer != NULL) {
		transfer_fail(c->xfer, 503, "shutdown");
		return true;
	}
	conn_close(c);
	return false;
}

/* ---- for transfer.c ---- */

uv_stream_t *conn_stream(struct conn *c)
{
	uv_stream_t *s = stream(c);

	/* A handle without its socket: uv_write answers UV_EBADF. */
	return s != NULL ? s : (uv_stream_t *)&c->tcp;
}

uv_loop_t *conn_loop(const struct conn *c)
{
	return c->timer.loop;
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

const char *conn_peer(const struct conn *c)
{
	return c->peer_text;
}

bool conn_closing(const struct conn *c)
{
	return c->closing;
}

void conn_job_begin(struct conn *c)
{
	c->jobs++;
}

bool conn_job_end(struct conn *c)
{
	c->jobs--;
	if (c->closing) {
		conn_close(c);
		return false;
	}
	return true;
}

void conn_progress(struct conn *c)
{
	c->progress_ms = uv_now(c->timer.loop);
}

static void writable_cb(uv_poll_t *handle, int status, int events)
{
	struct conn *c = handle->data;

	/* A socket error shows up in the transfer's next send. */
	(void)status;
	(void)events;
	c->on_writable(c->xfer);
}

int conn_watch_writable(struct conn *c, void (*on_writable)(struct transfer *))
{
	int rc;

	if (c->poll_active)
		return 0;
	if (!c->poll_init) {
		rc = uv_poll_init_socket(c->timer.loop, &c->poll, c->fd);
		if (rc < 0)
			return rc;
		c->poll.data = c;
		c->poll_init = true;
		c->handles++;
	}
	c->on_writable = on_writable;
	rc = uv_poll_start(&c->poll, UV_WRITABLE, writable_cb);
	if (rc < 0)
		return rc;
	c->poll_active = true;
	return 0;
}

void conn_unwatch(struct conn *c)
{
	if (c->poll_active) {
		uv_poll_stop(&c->poll);
		c->poll_active = false;
	}
}

static void tokens_cb(uv_timer_t *timer)
{
	struct conn *c = timer->data;

	if (c->closing || c->xfer == NULL)
		return;
	/* The wait was ours: send_timeout counts from its end. */
	c->progress_ms = uv_now(c->timer.loop);
	c->on_tokens(c->xfer);
}

int conn_wait_tokens(struct conn *c, uint64_t delay_ms,
		     void (*on_ready)(struct transfer *))
{
	int rc;

	if (c->closing)
		return UV_EINVAL;
	if (!c->tokens_init) {
		rc = uv_timer_init(c->timer.loop, &c->tokens);
		if (rc < 0)
			return rc;
		c->tokens.data = c;
		c->tokens_init = true;
		c->handles++;
	}
	c->on_tokens = on_ready;
	return uv_timer_start(&c->tokens, tokens_cb, delay_ms, 0);
}
