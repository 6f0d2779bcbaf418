/* Answering one request: see transfer.h. */
#include "transfer.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "listing.h"
#include "log.h"
#include "path.h"
#include "server.h"
#include "translog.h"

/* Linux moves at most this many bytes in one sendfile(2) call. */
#define FERRY_SENDFILE_MAX 0x7ffff000ULL

static void sendfile_queue(struct conn *c, struct transfer *t);
static void buffered_pump(struct conn *c, struct transfer *t);

static const char *mode_name(const struct transfer *t)
{
	if (t->req.kind == PROTO_LIST)
		return "list";
	return t->mode == FERRY_MODE_SENDFILE ? "sendfile" : "buffered";
}

void transfer_log(struct conn *c, struct transfer *t, int status,
		  const char *error)
{
	struct transfer_record r;

	if (t->logged)
		return;
	t->logged = true;
	/* A buffer cut mid-write is partly in the kernel already: count what
	 * left the write queue, so bytes= matches what the client got. */
	if (t->buf_state[t->next_write] == BUF_WRITING && !t->header_writing) {
		size_t fill = t->buf_fill[t->next_write];
		size_t queued =
			uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);

		t->sent += fill - (queued < fill ? queued : fill);
		t->buf_state[t->next_write] = BUF_FREE;
	}
	memset(&r, 0, sizeof r);
	clock_gettime(CLOCK_REALTIME, &r.end);
	r.client = c->peer_text;
	r.path = t->req.path_len > 0 || t->req.kind == PROTO_LIST ?
			 t->req.path : "-";
	if (t->req.kind == PROTO_LIST && t->req.path_len == 0)
		r.path = "/";
	r.mode = mode_name(t);
	r.status = status;
	r.offset = t->offset;
	r.bytes = t->sent;
	r.size = t->req.kind == PROTO_LIST ? t->listing_len :
					     (uint64_t)t->st.st_size;
	r.duration_s = (double)(uv_hrtime() - t->start_ns) / 1e9;
	r.error = error;
	if (translog_write(&r) < 0)
		log_debug("cannot write the transfer log: %s", strerror(errno));
}

void transfer_fail(struct conn *c, struct transfer *t, int status,
		   const char *error)
{
	transfer_log(c, t, status, error);
	conn_close(c);
}

/* Corks the socket while a file is sent, so the OK line and the file's first
 * bytes share segments and no partial segment leaves between sendfile calls
 * (nginx's tcp_nopush); uncorking at the end flushes the tail at once. */
static void set_cork(struct conn *c, struct transfer *t, bool on)
{
	int v = on;

	if (t->corked == on)
		return;
	if (setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0)
		t->corked = on;
}

/* The whole range has been handed to the kernel. */
static void transfer_complete(struct conn *c, struct transfer *t)
{
	set_cork(c, t, false);
	transfer_log(c, t, 200, NULL);
	conn_request_done(c, false);
}

/* Socket errors mean the client went away; anything else is ours. */
static void fail_errno(struct conn *c, struct transfer *t, int err)
{
	switch (err) {
	case -EPIPE:
	case -ECONNRESET:
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ECONNABORTED:
		transfer_fail(c, t, 499, "client-gone");
		break;
	default:
		log_warn("%s: reading /%s failed: %s", c->peer_text, t->rel,
			 strerror(-err));
		transfer_fail(c, t, 500, "read-failed");
	}
}

/* ---- the sendfile engine ----
 * Each job runs on the threadpool: it sends what is left of the OK line, then
 * calls sendfile(2) on the non-blocking socket until it has moved chunk_bytes,
 * the range is done, or the socket is full (EAGAIN). A full socket never holds
 * a thread: the loop waits for writability with a uv_poll_t and queues the
 * next job then. A file that is not in the page cache blocks a pool thread in
 * the disk read, never the loop. */

static void sendfile_work_cb(uv_work_t *req)
{
	struct transfer *t = req->data;
	int sock = t->conn->fd;
	uint64_t moved = 0;
	uint64_t budget = t->chunk_bytes;

	t->job_err = 0;
	t->job_eof = false;
	while (t->header_sent < t->header_len) {
		ssize_t n = send(sock, t->header + t->header_sent,
				 t->header_len - t->header_sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			t->job_err = -errno;
			goto out;
		}
		t->header_sent += (size_t)n;
	}
	while (moved < budget && t->sent + moved < t->length) {
		uint64_t want = t->length - t->sent - moved;
		off_t off = (off_t)(t->offset + t->sent + moved);
		ssize_t n;

		if (want > budget - moved)
			want = budget - moved;
		if (want > FERRY_SENDFILE_MAX)
			want = FERRY_SENDFILE_MAX;
		n = sendfile(sock, t->file_fd, &off, want);
		if (n > 0) {
			moved += (uint64_t)n;
			continue;
		}
		if (n == 0) {
			/* End of file before the range's end: it shrank. */
			t->job_eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		t->job_err = -errno;
		break;
	}
out:
	t->job_bytes = moved;
}

static void sendfile_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct conn *c = handle->data;
	struct transfer *t = c->xfer;

	(void)status; /* a socket error shows up in the next sendfile */
	(void)events;
	uv_poll_stop(handle);
	c->poll_active = false;
	sendfile_queue(c, t);
}

static void sendfile_after_cb(uv_work_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;

	(void)status;
	c->jobs--;
	t->sent += t->job_bytes;
	if (t->job_bytes > 0)
		c->progress_ms = uv_now(c->tcp.loop);
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (t->header_sent == t->header_len && t->sent == t->length) {
		transfer_complete(c, t);
		return;
	}
	if (t->job_eof) {
		log_warn("%s: /%s shrank while being sent (%llu of %llu bytes)",
			 c->peer_text, t->rel,
			 (unsigned long long)(t->offset + t->sent),
			 (unsigned long long)(t->offset + t->length));
		transfer_fail(c, t, 500, "truncated");
		return;
	}
	if (t->job_err == -EAGAIN || t->job_err == -EWOULDBLOCK) {
		int rc;

		if (!c->poll_init) {
			rc = uv_poll_init_socket(c->tcp.loop, &c->poll, c->fd);
			if (rc < 0) {
				log_error("%s: cannot watch the socket: %s",
					  c->peer_text, uv_strerror(rc));
				transfer_fail(c, t, 500, "poll-failed");
				return;
			}
			c->poll.data = c;
			c->poll_init = true;
			c->handles++;
		}
		rc = uv_poll_start(&c->poll, UV_WRITABLE, sendfile_poll_cb);
		if (rc < 0) {
			log_error("%s: cannot watch the socket: %s",
				  c->peer_text, uv_strerror(rc));
			transfer_fail(c, t, 500, "poll-failed");
			return;
		}
		c->poll_active = true;
		return;
	}
	if (t->job_err < 0) {
		fail_errno(c, t, t->job_err);
		return;
	}
	sendfile_queue(c, t);
}

static void sendfile_queue(struct conn *c, struct transfer *t)
{
	int rc;

	t->work.data = t;
	rc = uv_queue_work(c->tcp.loop, &t->work, sendfile_work_cb,
			   sendfile_after_cb);
	if (rc < 0) {
		log_error("%s: cannot queue a sendfile job: %s", c->peer_text,
			  uv_strerror(rc));
		transfer_fail(c, t, 500, "queue-failed");
		return;
	}
	c->jobs++;
}

/* ---- the buffered engine ----
 * uv_fs_read fills one buffer while uv_write sends the other; at most two
 * buffers of buffer_bytes exist per transfer, whatever the file's size. */

static void buffered_read_cb(uv_fs_t *req)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;
	int i = t->next_read;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	c->jobs--;
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (n < 0) {
		t->buf_state[i] = BUF_FREE;
		fail_errno(c, t, (int)n == UV_EPIPE ? UV_EIO : (int)n);
		return;
	}
	if (n == 0) {
		t->buf_state[i] = BUF_FREE;
		t->file_eof = true;
	} else {
		t->buf_fill[i] = (size_t)n;
		t->buf_state[i] = BUF_FULL;
		t->read_pos += (uint64_t)n;
		t->next_read ^= 1;
	}
	buffered_pump(c, t);
}

static void buffered_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;
	int i = t->next_write;

	if (c->closing)
		return;
	if (status < 0) {
		fail_errno(c, t, status);
		return;
	}
	t->sent += t->buf_fill[i];
	t->buf_state[i] = BUF_FREE;
	t->next_write ^= 1;
	c->progress_ms = uv_now(c->tcp.loop);
	buffered_pump(c, t);
}

static void header_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;

	if (c->closing)
		return;
	t->header_writing = false;
	if (status < 0) {
		fail_errno(c, t, status);
		return;
	}
	t->header_sent = t->header_len;
	buffered_pump(c, t);
}

/* Starts the next read and the next write, if their buffers are ready, and
 * ends the transfer when everything has been written. */
static void buffered_pump(struct conn *c, struct transfer *t)
{
	uint64_t end = t->offset + t->length;
	int i = t->next_read;
	int j = t->next_write;
	int rc;

	if (!t->file_eof && t->read_pos < end && t->buf_state[i] == BUF_FREE) {
		uint64_t want = end - t->read_pos;
		uv_buf_t b;

		if (want > t->buffer_bytes)
			want = t->buffer_bytes;
		if (t->buf[i] == NULL) {
			t->buf[i] = malloc(t->buffer_bytes);
			if (t->buf[i] == NULL) {
				transfer_fail(c, t, 500, "out-of-memory");
				return;
			}
		}
		b = uv_buf_init(t->buf[i], (unsigned)want);
		t->read_req.data = t;
		rc = uv_fs_read(c->tcp.loop, &t->read_req, t->file_fd, &b, 1,
				(int64_t)t->read_pos, buffered_read_cb);
		if (rc < 0) {
			transfer_fail(c, t, 500, "read-failed");
			return;
		}
		c->jobs++;
		t->buf_state[i] = BUF_READING;
	}
	if (t->buf_state[j] == BUF_FULL) {
		uv_buf_t b = uv_buf_init(t->buf[j], (unsigned)t->buf_fill[j]);

		t->write_req.data = t;
		rc = uv_write(&t->write_req, (uv_stream_t *)&c->tcp, &b, 1,
			      buffered_write_cb);
		if (rc < 0) {
			fail_errno(c, t, rc);
			return;
		}
		t->buf_state[j] = BUF_WRITING;
	}
	if (t->header_writing || t->buf_state[0] != BUF_FREE ||
	    t->buf_state[1] != BUF_FREE)
		return;
	if (t->sent == t->length) {
		transfer_complete(c, t);
	} else if (t->file_eof) {
		log_warn("%s: /%s shrank while being sent (%llu of %llu bytes)",
			 c->peer_text, t->rel,
			 (unsigned long long)(t->offset + t->sent),
			 (unsigned long long)end);
		transfer_fail(c, t, 500, "truncated");
	}
}

static void buffered_start(struct conn *c, struct transfer *t)
{
	t->read_pos = t->offset;
	if (t->header_len > 0) {
		uv_buf_t b = uv_buf_init(t->header, (unsigned)t->header_len);
		int rc;

		t->header_req.data = t;
		rc = uv_write(&t->header_req, (uv_stream_t *)&c->tcp, &b, 1,
			      header_write_cb);
		if (rc < 0) {
			fail_errno(c, t, rc);
			return;
		}
		t->header_writing = true;
	}
	buffered_pump(c, t);
}

/* ---- LIST ---- */

static void listing_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;

	if (c->closing)
		return;
	if (status < 0) {
		fail_errno(c, t, status);
		return;
	}
	t->sent = t->listing_len;
	transfer_log(c, t, 200, NULL);
	conn_request_done(c, false);
}

static void listing_send(struct conn *c, struct transfer *t)
{
	uv_buf_t b[2];
	int rc;

	t->header_len = (size_t)proto_format_ok_list(t->header, sizeof t->header,
						     t->listing_len);
	b[0] = uv_buf_init(t->header, (unsigned)t->header_len);
	b[1] = uv_buf_init(t->listing, (unsigned)t->listing_len);
	t->write_req.data = t;
	rc = uv_write(&t->write_req, (uv_stream_t *)&c->tcp, b,
		      t->listing_len > 0 ? 2 : 1, listing_write_cb);
	if (rc < 0)
		fail_errno(c, t, rc);
}

/* ---- opening ---- */

/* Runs on the threadpool: opening may wait on the disk, and O_NONBLOCK keeps
 * a FIFO from blocking even here. */
static void open_work_cb(uv_work_t *req)
{
	struct transfer *t = req->data;
	int fd;

	if (t->req.kind == PROTO_LIST) {
		t->job_err = listing_build(t->root->fd, t->rel, &t->listing,
					   &t->listing_len);
		return;
	}
	fd = path_open_file(t->root->fd, t->rel, &t->st);
	if (fd < 0) {
		t->job_err = fd;
		return;
	}
	t->file_fd = fd;
	t->job_err = 0;
}

static const char *error_token(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
		return "not-found";
	case -EXDEV:
	case -ELOOP:
		return "outside-root";
	case -EISDIR:
	case -EPERM:
		return "not-regular";
	case -EACCES:
		return "denied";
	default:
		return "open-failed";
	}
}

static void open_after_cb(uv_work_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;
	uint64_t size;

	(void)status;
	c->jobs--;
	root_ref_put(t->root);
	t->root = NULL;
	if (c->closing) {
		conn_close(c);
		return;
	}
	if (t->job_err < 0) {
		int code = path_error_code(t->job_err);

		/* LIST of a file: it exists, but is no directory. */
		if (t->req.kind == PROTO_LIST && t->job_err == -ENOTDIR)
			code = 403;
		if (code == 500)
			log_warn("%s: cannot open /%s: %s", c->peer_text,
				 t->rel, strerror(-t->job_err));
		conn_reply_error(c, code, error_token(t->job_err));
		return;
	}
	if (t->req.kind == PROTO_LIST) {
		listing_send(c, t);
		return;
	}
	size = (uint64_t)t->st.st_size;
	if (t->req.offset > size) {
		conn_reply_error(c, 416, "offset-beyond-end");
		return;
	}
	t->offset = t->req.offset;
	t->length = size - t->offset;
	if (t->req.has_length && t->req.length < t->length)
		t->length = t->req.length;
	if (t->req.kind == PROTO_GET)
		t->header_len = (size_t)proto_format_ok(
			t->header, sizeof t->header, t->length, size,
			(int64_t)t->st.st_mtime);
	if (t->mode == FERRY_MODE_SENDFILE) {
		if (t->length > 0)
			set_cork(c, t, true);
		sendfile_queue(c, t);
	} else {
		buffered_start(c, t);
	}
}

void transfer_begin(struct conn *c, struct transfer *t)
{
	const struct config *cfg = c->srv->cfg;
	int rc;

	t->conn = c;
	t->file_fd = -1;
	t->start_ns = uv_hrtime();
	t->mode = cfg->mode;
	t->chunk_bytes = cfg->chunk_bytes;
	t->buffer_bytes = cfg->buffer_bytes;
	rc = path_normalize(t->req.path, t->req.path_len, t->rel,
			    sizeof t->rel);
	if (rc < 0) {
		conn_reply_error(c, rc == -EACCES ? 403 : 400,
				 rc == -EACCES ? "hidden-or-outside" :
						 "bad-path");
		return;
	}
	if (t->req.kind == PROTO_RAW && t->rel[0] == '\0') {
		conn_reply_error(c, 403, "not-regular");
		return;
	}
	t->root = root_ref_get(c->srv->root);
	t->work.data = t;
	rc = uv_queue_work(c->tcp.loop, &t->work, open_work_cb, open_after_cb);
	if (rc < 0) {
		root_ref_put(t->root);
		t->root = NULL;
		conn_reply_error(c, 500, "queue-failed");
		return;
	}
	c->jobs++;
}

void transfer_stop(struct conn *c, struct transfer *t)
{
	(void)t;
	if (c->poll_active) {
		uv_poll_stop(&c->poll);
		c->poll_active = false;
	}
}

void transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->file_fd >= 0)
		close(t->file_fd);
	free(t->buf[0]);
	free(t->buf[1]);
	free(t->listing);
	free(t);
}
