/* The metrics listener: a minimal HTTP/1.x server that answers GET (and
 * HEAD) /metrics with metrics_format's text, one request per connection.
 * See metrics.h.
 *
 * Everything is bounded, so a hostile scraper costs little and the file
 * listeners never notice it: at most FERRY_METRICS_CONNS connections (more
 * are closed as soon as accepted), FERRY_METRICS_REQUEST_MAX bytes of
 * request (more is answered 431), and FERRY_METRICS_TIMEOUT_MS for a
 * connection's whole life, reading, writing and lingering included. One
 * answer is at most FERRY_METRICS_ANSWER_MAX bytes, written once.
 *
 * Ownership. A struct scrape is allocated when a connection is accepted
 * and freed in the close callback of its last handle (its tcp handle and its
 * timer); metrics_stop closes them all at shutdown.
 */
#include "daemon/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"

#define FERRY_METRICS_CONNS 4
#define FERRY_METRICS_REQUEST_MAX (8 * 1024)
#define FERRY_METRICS_TIMEOUT_MS 5000
#define FERRY_METRICS_ANSWER_MAX (32 * 1024)
#define FERRY_METRICS_HEAD_MAX 256

struct scrape {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct scrape *prev, *next;
	unsigned handles;        /* not yet closed */
	bool closing;
	bool answered;           /* the answer is written or being written */
	bool written;            /* the answer's write has completed */
	bool read_eof;           /* the client has shut down its side */
	size_t in_len;
	char in[FERRY_METRICS_REQUEST_MAX];
	char head[FERRY_METRICS_HEAD_MAX];
	char *body;              /* FERRY_METRICS_ANSWER_MAX, when answering */
	size_t body_len;
};

static uv_poll_t listener;
static bool listening;
static struct scrape *scrapes;
static unsigned scrape_count;
/* Bytes of a request after it has been answered, and of a linger, are
 * read into this and dropped. */
static char discard[4096];

static void scrape_close_cb(uv_handle_t *handle)
{
	struct scrape *s = handle->data;

	if (--s->handles > 0)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		scrapes = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	scrape_count--;
	free(s->body);
	free(s);
}

static void scrape_close(struct scrape *s)
{
	if (s->closing)
		return;
	s->closing = true;
	uv_close((uv_handle_t *)&s->timer, scrape_close_cb);
	uv_close((uv_handle_t *)&s->tcp, scrape_close_cb);
}

static void timeout_cb(uv_timer_t *timer)
{
	struct scrape *s = timer->data;

	log_debug("metrics: a scrape connection timed out");
	scrape_close(s);
}

/* The answer is out and our FIN sent: what the client sends now is read
 * and dropped until its EOF (or the timeout), so unread bytes never turn
 * our close into a reset that could destroy the answer. */
static void shutdown_cb(uv_shutdown_t *req, int status)
{
	struct scrape *s = req->data;

	if (status < 0)
		scrape_close(s);
}

static void write_cb(uv_write_t *req, int status)
{
	struct scrape *s = req->data;

	if (s->closing)
		return;
	s->written = true;
	if (status < 0 || s->read_eof ||
	    uv_shutdown(&s->sreq, (uv_stream_t *)&s->tcp, shutdown_cb) < 0)
		scrape_close(s);
}

/* What the request in S->in asks for: 200 (and *HEAD for HEAD), or the
 * HTTP status of the refusal. The request line only; headers are skipped. */
static int parse_request(const struct scrape *s, bool *head)
{
	const char *line = s->in;
	const char *eol = memchr(line, '\n', s->in_len);
	const char *sp1, *sp2;
	size_t method_len, target_len, version_len;

	if (eol == NULL)
		return 400;
	sp1 = memchr(line, ' ', (size_t)(eol - line));
	if (sp1 == NULL)
		return 400;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (sp2 == NULL)
		return 400;
	method_len = (size_t)(sp1 - line);
	target_len = (size_t)(sp2 - sp1 - 1);
	version_len = (size_t)(eol - sp2 - 1);
	if (version_len > 0 && sp2[version_len] == '\r')
		version_len--;
	if (version_len != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return 400;
	if (target_len == 0 || sp1[1] != '/')
		return 400;
	*head = method_len == 4 && memcmp(line, "HEAD", 4) == 0;
	if (!*head && !(method_len == 3 && memcmp(line, "GET", 3) == 0))
		return 405;
	/* A query string is ignored, as Prometheus's own exporters do. */
	if ((target_len == 8 || (target_len > 8 && sp1[9] == '?')) &&
	    memcmp(sp1 + 1, "/metrics", 8) == 0)
		return 200;
	return 404;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	default: return "Internal Server Error";
	}
}

/* Writes the answer for STATUS (the metrics themselves for 200), then shuts
 * down our side. */
static void answer(struct scrape *s, int status, bool head_only)
{
	uv_buf_t b[2];
	unsigned n = 0;
	int len;

	s->answered = true;
	if (status == 200) {
		s->body = malloc(FERRY_METRICS_ANSWER_MAX);
		if (s->body == NULL) {
			status = 500;
		} else {
			s->body_len = metrics_format(s->body,
						     FERRY_METRICS_ANSWER_MAX);
			if (s->body_len >= FERRY_METRICS_ANSWER_MAX) {
				log_error("metrics: the answer needs %zu "
					  "bytes, more than %d",
					  s->body_len, FERRY_METRICS_ANSWER_MAX);
				status = 500;
			}
		}
	}
	if (status != 200) {
		free(s->body);
		s->body = NULL;
		s->body_len = 0;
	}
	len = snprintf(s->head, sizeof s->head,
		       "HTTP/1.1 %d %s\r\n"
		       "Content-Type: %s\r\n"
		       "Content-Length: %zu\r\n"
		       "%s"
		       "Connection: close\r\n\r\n",
		       status, reason(status),
		       status == 200 ? "text/plain; version=0.0.4; charset=utf-8" :
				       "text/plain",
		       s->body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	b[n++] = uv_buf_init(s->head, (unsigned)len);
	if (s->body_len > 0 && !head_only)
		b[n++] = uv_buf_init(s->body, (unsigned)s->body_len);
	s->wreq.data = s;
	if (uv_write(&s->wreq, (uv_stream_t *)&s->tcp, b, n, write_cb) < 0)
		scrape_close(s);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct scrape *s = handle->data;

	(void)suggested;
	if (s->answered)
		*buf = uv_buf_init(discard, sizeof discard);
	else
		*buf = uv_buf_init(s->in + s->in_len,
				   (unsigned)(sizeof s->in - s->in_len));
}

/* Whether S->in holds a whole request head: a blank line ends it. */
static bool head_complete(const struct scrape *s)
{
	size_t i;

	for (i = 0; i + 1 < s->in_len; i++) {
		if (s->in[i] != '\n')
			continue;
		if (s->in[i + 1] == '\n' ||
		    (s->in[i + 1] == '\r' && i + 2 < s->in_len &&
		     s->in[i + 2] == '\n'))
			return true;
	}
	return false;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct scrape *s = stream->data;
	bool head_only = false;
	int status;

	(void)buf;
	if (nread < 0) {
		/* EOF or an error: a request cut short gets no answer, and
		 * an answer being written is let finish (write_cb closes). */
		if (nread == UV_EOF && s->answered && !s->written) {
			s->read_eof = true;
			uv_read_stop(stream);
			return;
		}
		scrape_close(s);
		return;
	}
	if (s->answered || nread == 0)
		return;
	s->in_len += (size_t)nread;
	if (head_complete(s)) {
		status = parse_request(s, &head_only);
		answer(s, status, head_only);
	} else if (s->in_len == sizeof s->in) {
		answer(s, 431, false);
	}
}

/* Takes one accepted socket FD into a new scrape connection. */
static void scrape_start(uv_loop_t *loop, int fd)
{
	struct scrape *s = calloc(1, sizeof *s);

	if (s == NULL) {
		close(fd);
		return;
	}
	uv_tcp_init(loop, &s->tcp);
	uv_timer_init(loop, &s->timer);
	s->tcp.data = s;
	s->timer.data = s;
	s->handles = 2;
	s->next = scrapes;
	if (scrapes != NULL)
		scrapes->prev = s;
	scrapes = s;
	scrape_count++;
	if (uv_tcp_open(&s->tcp, fd) < 0) {
		close(fd);
		scrape_close(s);
		return;
	}
	uv_timer_start(&s->timer, timeout_cb, FERRY_METRICS_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&s->tcp, alloc_cb, read_cb) < 0)
		scrape_close(s);
}

static void accept_cb(uv_poll_t *handle, int status, int events)
{
	int i;

	(void)events;
	if (status < 0)
		return;
	/* A bounded batch, as the file listeners take theirs. */
	for (i = 0; i < 16; i++) {
		int fd = accept4(metrics_listen_fd(), NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		/* Over the cap: closed at once, so the backlog never fills
		 * with scrapers that would wait there. */
		if (scrape_count >= FERRY_METRICS_CONNS) {
			log_debug("metrics: %d scrape connections open; "
				  "closing another", FERRY_METRICS_CONNS);
			close(fd);
			continue;
		}
		scrape_start(handle->loop, fd);
	}
}

int metrics_serve(uv_loop_t *loop)
{
	int fd = metrics_listen_fd();
	int rc;

	if (fd < 0)
		return 0;
	rc = uv_poll_init_socket(loop, &listener, fd);
	if (rc < 0)
		return rc;
	listening = true;
	return uv_poll_start(&listener, UV_READABLE, accept_cb);
}

void metrics_stop(void)
{
	struct scrape *s;

	if (listening) {
		listening = false;
		uv_close((uv_handle_t *)&listener, NULL);
	}
	for (s = scrapes; s != NULL; s = s->next)
		scrape_close(s);
}
