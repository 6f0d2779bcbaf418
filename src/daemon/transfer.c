/* Answering one request: the open job, the range, the OK line, LIST, the
 * transfer log line, freeing. The engines that move a file's bytes are
 * engine_sendfile.c and engine_buffered.c; engine_sum.c answers SUM. See
 * transfer.h and engine.h. */
#include "daemon/transfer.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/budget.h"
#include "daemon/conn.h"
#include "daemon/engine.h"
#include "daemon/listing.h"
#include "daemon/metrics.h"
#include "common/log.h"
#include "common/path.h"
#include "common/protocol.h"
#include "daemon/rate.h"
#include "daemon/root.h"
#include "daemon/translog.h"

/* Descriptors an open job may hold at once: the file or directory, and one
 * more while the fallback walk resolves a path. */
#define FERRY_OPEN_FDS 2

static void opened(struct transfer *t);

static const char *mode_name(const struct transfer *t)
{
	if (t->req.kind == PROTO_LIST)
		return "list";
	if (t->req.kind == PROTO_SUM)
		return "sum";
	if (t->req.kind == PROTO_PING)
		return "ping";
	return t->mode == FERRY_MODE_SENDFILE ? "sendfile" : "buffered";
}

/* mode_name's mode, as the metrics count it. */
static enum metrics_mode metrics_mode_of(const struct transfer *t)
{
	if (t->req.kind == PROTO_LIST)
		return METRICS_MODE_LIST;
	if (t->req.kind == PROTO_SUM)
		return METRICS_MODE_SUM;
	if (t->req.kind == PROTO_PING)
		return METRICS_MODE_PING;
	return t->mode == FERRY_MODE_SENDFILE ? METRICS_MODE_SENDFILE :
						METRICS_MODE_BUFFERED;
}

void transfer_log(struct transfer *t, int status, const char *error)
{
	struct transfer_record r;

	if (t->logged)
		return;
	t->logged = true;
	buffered_count_cut(t);
	memset(&r, 0, sizeof r);
	clock_gettime(CLOCK_REALTIME, &r.end);
	r.client = conn_peer(t->conn);
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
	metrics_request(status, metrics_mode_of(t), t->sent);
	/* A health check is not a transfer: it would crowd the histograms. */
	if (t->req.kind != PROTO_PING)
		metrics_transfer_time(uv_hrtime() - t->start_ns,
				      t->first_byte_ns > 0 ?
					      t->first_byte_ns - t->start_ns :
					      0);
	if (translog_write(&r) < 0)
		log_debug("cannot write the transfer log: %s", strerror(errno));
}

void transfer_fail(struct transfer *t, int status, const char *error)
{
	transfer_log(t, status, error);
	conn_close(t->conn);
}

void transfer_done(struct transfer *t)
{
	transfer_log(t, 200, NULL);
	conn_request_done(t->conn, false);
}

void transfer_shrank(struct transfer *t)
{
	log_warn("%s: /%s shrank while being sent (%llu of %llu bytes)",
		 conn_peer(t->conn), t->rel,
		 (unsigned long long)(t->offset + t->sent),
		 (unsigned long long)(t->offset + t->length));
	transfer_fail(t, 500, "truncated");
}

void transfer_fail_errno(struct transfer *t, int err)
{
	switch (err) {
	case -EPIPE:
	case -ECONNRESET:
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ECONNABORTED:
		transfer_fail(t, 499, "client-gone");
		break;
	default:
		log_warn("%s: reading /%s failed: %s", conn_peer(t->conn),
			 t->rel, strerror(-err));
		transfer_fail(t, 500, "read-failed");
	}
}

uint64_t transfer_allowance(struct transfer *t, uint64_t want,
			    void (*resume)(struct transfer *))
{
	uint64_t left = t->mode == FERRY_MODE_SENDFILE ?
				t->length - t->sent :
				t->offset + t->length - t->read_pos;
	uint64_t wait_ms = 0;
	uint64_t n = rate_allow(&t->rate, want, left, uv_hrtime(), &wait_ms);
	int rc;

	if (n > 0)
		return n;
	rc = conn_wait_tokens(t->conn, wait_ms, resume);
	if (rc < 0) {
		log_error("%s: cannot wait for the rate limit: %s",
			  conn_peer(t->conn), uv_strerror(rc));
		transfer_fail(t, 500, "timer-failed");
	}
	return 0;
}

void transfer_refund(struct transfer *t, uint64_t bytes)
{
	rate_refund(&t->rate, bytes);
}

void transfer_notsent_lowat(struct transfer *t, int bytes)
{
	/* Not fatal: without it the transfer is only greedier. */
	(void)setsockopt(conn_fd(t->conn), IPPROTO_TCP, TCP_NOTSENT_LOWAT,
			 &bytes, sizeof bytes);
}

void transfer_cork(struct transfer *t, bool on)
{
	int v = on;

	if (t->corked == on)
		return;
	if (setsockopt(conn_fd(t->conn), IPPROTO_TCP, TCP_CORK, &v,
		       sizeof v) == 0)
		t->corked = on;
}

/* ---- answers written whole: LIST, SUM ---- */

/* A LIST answer is written in chunks of this many bytes, each formatted
 * when the last has been written, so a large directory's text is never
 * held whole. */
#define LIST_CHUNK (64 * 1024)

static void answer_write(struct transfer *t, bool with_header);

static void answer_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;

	if (conn_closing(t->conn))
		return;
	if (status < 0) {
		transfer_fail_errno(t, status);
		return;
	}
	t->sent += t->chunk_len;
	if (t->listing != NULL && t->sent < t->listing_len) {
		answer_write(t, false);
		return;
	}
	transfer_done(t);
}

/* Writes T->header (WITH_HEADER: the first write) and the listing's next
 * chunk, if any. */
static void answer_write(struct transfer *t, bool with_header)
{
	uv_buf_t b[2];
	unsigned n = 0;
	int rc;

	if (with_header) {
		b[n++] = uv_buf_init(t->header, (unsigned)t->header_len);
		t->first_byte_ns = uv_hrtime();
	}
	t->chunk_len = 0;
	if (t->listing != NULL && t->list_buf != NULL) {
		t->chunk_len = listing_read(t->listing, t->list_buf, LIST_CHUNK);
		if (t->chunk_len > 0)
			b[n++] = uv_buf_init(t->list_buf, (unsigned)t->chunk_len);
	}
	if (n == 0) {
		/* The entries made fewer bytes than the OK line promised,
		 * which listing_open's count rules out. */
		transfer_fail_errno(t, UV_EIO);
		return;
	}
	t->write_req.data = t;
	rc = uv_write(&t->write_req, conn_stream(t->conn), b, n,
		      answer_write_cb);
	if (rc < 0)
		transfer_fail_errno(t, rc);
}

void transfer_write_answer(struct transfer *t)
{
	answer_write(t, true);
}

static void listing_send(struct transfer *t)
{
	t->header_len = (size_t)proto_format_ok_list(t->header, sizeof t->header,
						     t->listing_len);
	if (t->listing_len > 0) {
		t->list_buf = malloc(LIST_CHUNK);
		if (t->list_buf == NULL) {
			transfer_fail_errno(t, UV_ENOMEM);
			return;
		}
	}
	transfer_write_answer(t);
}

/* ---- opening ---- */

/* The range the request asks for, cut to the file, and the OK line.
 * -1 when OFFSET is beyond the end (416). Pure: runs in the open job. */
static int range_set(struct transfer *t)
{
	uint64_t size = (uint64_t)t->st.st_size;

	if (t->req.offset > size) {
		t->offset = t->req.offset; /* logged as asked */
		t->range_beyond = true;
		return -1;
	}
	t->offset = t->req.offset;
	t->length = size - t->offset;
	if (t->req.has_length && t->req.length < t->length)
		t->length = t->req.length;
	if (t->req.kind == PROTO_GET)
		t->header_len = (size_t)proto_format_ok(
			t->header, sizeof t->header, t->length, size,
			(int64_t)t->st.st_mtime);
	return 0;
}

/* Runs on the threadpool: opening may wait on the disk, and O_NONBLOCK keeps
 * a FIFO from blocking even here. */
static void open_work_cb(uv_work_t *req)
{
	struct transfer *t = req->data;
	int fd;

	engine_jobs_queued(-1);
	if (t->req.kind == PROTO_LIST) {
		t->open_err = listing_open(root_fd(t->root), t->rel,
					   &t->listing);
		if (t->open_err == 0)
			t->listing_len = listing_length(t->listing);
		return;
	}
	fd = path_open_file(root_fd(t->root), t->rel, &t->st);
	if (fd < 0) {
		t->open_err = fd;
		return;
	}
	t->file_fd = fd;
	t->open_err = 0;
	if (t->req.kind == PROTO_SUM)
		return;
	if (range_set(t) < 0)
		return;
	/* Small files end here: one trip through the pool per request. */
	if (t->mode == FERRY_MODE_SENDFILE)
		sendfile_send(t, true);
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

	(void)status;
	root_ref_put(t->root);
	t->root = NULL;
	/* The job's reservation becomes the file it kept open, if any. */
	budget_put(t->budget, FERRY_OPEN_FDS - (t->file_fd >= 0 ? 1 : 0));
	if (!conn_job_end(t->conn))
		return;
	opened(t);
}

/* The file is open (or could not be): answer the error, the listing, the
 * 416, or go on sending. After an open job the first send already happened
 * in the job; after an open on the loop, nothing has been sent yet. */
static void opened(struct transfer *t)
{
	struct conn *c = t->conn;

	if (t->open_err < 0) {
		int code = path_error_code(t->open_err);

		/* LIST of a file: it exists, but is no directory. */
		if (t->req.kind == PROTO_LIST && t->open_err == -ENOTDIR)
			code = 403;
		if (code == 500)
			log_warn("%s: cannot open /%s: %s", conn_peer(c),
				 t->rel, strerror(-t->open_err));
		conn_reply_error(c, code, error_token(t->open_err));
		return;
	}
	if (t->req.kind == PROTO_LIST) {
		listing_send(t);
		return;
	}
	if (t->req.kind == PROTO_SUM) {
		sum_start(t);
		return;
	}
	if (t->range_beyond) {
		conn_reply_error(c, 416, "offset-beyond-end");
		return;
	}
	if (t->mode == FERRY_MODE_SENDFILE)
		sendfile_progress(t);
	else
		buffered_start(t);
}

/* The fast path for a hot file: opened on the loop from the kernel's caches
 * (RESOLVE_CACHED) and, in sendfile mode when cachestat finds its first
 * window cached, sent from the loop too (the buffered engine reads what is
 * cached on the loop itself), with no trip through the pool. Anything that
 * would wait for the disk goes to the pool instead. A SUM takes it too: a
 * cached digest is then answered with no trip through the pool either.
 * Returns false when the open job must do it. */
static bool open_on_loop(struct transfer *t)
{
	int fd;

	if (t->req.kind == PROTO_LIST)
		return false;
	fd = path_open_file_cached(root_fd(t->root), t->rel, &t->st);
	if (fd == -EAGAIN)
		return false;
	if (fd >= 0) {
		t->file_fd = fd;
		budget_take(t->budget, 1);
		if (t->req.kind != PROTO_SUM && range_set(t) == 0 &&
		    t->mode == FERRY_MODE_SENDFILE)
			sendfile_first_on_loop(t);
	}
	t->open_err = fd < 0 ? fd : 0;
	opened(t);
	return true;
}

struct transfer *transfer_new(struct conn *c, const char *line, size_t len,
			      const struct transfer_settings *s, int *status)
{
	struct transfer *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->conn = c;
	t->file_fd = -1;
	t->start_ns = uv_hrtime();
	metrics_transfer_begin();
	t->mode = s->mode;
	t->chunk_bytes = s->chunk_bytes;
	t->buffer_bytes = s->buffer_bytes;
	t->root = s->root;
	t->budget = s->budget;
	rate_init(&t->rate, s->rate_bps, s->rate_shared);
	t->throttled = rate_limited(&t->rate);
	/* A throttled transfer's first send (in the open job, or on the loop
	 * for a cached file) moves only the OK line; the loop then asks for
	 * tokens (sendfile_progress). */
	t->send_allow = t->throttled ? 0 : UINT64_MAX;
	t->draining = s->draining;
	*status = proto_parse_line(line, len, &t->req);
	if (*status != 0) {
		/* Logged with path "-". */
		t->req.path_len = 0;
		t->req.path[0] = '\0';
	}
	return t;
}

bool transfer_is_raw(const struct transfer *t)
{
	return t->req.kind == PROTO_RAW;
}

/* PING: "OK" while serving; while the server drains before a shutdown,
 * "ERR 503 draining", so a load balancer's health check takes it out of
 * rotation while every other request is still answered. */
static void ping_answer(struct transfer *t)
{
	if (t->draining) {
		conn_reply_error_reason(t->conn, 503, "draining", "draining");
		return;
	}
	memcpy(t->header, "OK\n", 3);
	t->header_len = 3;
	transfer_write_answer(t);
}

void transfer_begin(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

	if (t->req.kind == PROTO_PING) {
		ping_answer(t);
		return;
	}
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
	if (open_on_loop(t))
		return;
	t->root = root_ref_get(t->root);
	t->work.data = t;
	budget_take(t->budget, FERRY_OPEN_FDS);
	engine_jobs_queued(1);
	rc = uv_queue_work(conn_loop(c), &t->work, open_work_cb,
			   open_after_cb);
	if (rc < 0) {
		engine_jobs_queued(-1);
		budget_put(t->budget, FERRY_OPEN_FDS);
		root_ref_put(t->root);
		t->root = NULL;
		conn_reply_error(c, 500, "queue-failed");
		return;
	}
	conn_job_begin(c);
}

void transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->throttled)
		rate_leave(&t->rate);
	if (t->file_fd >= 0) {
		close(t->file_fd);
		budget_release(t->budget, 1);
	}
	buffered_free(t);
	listing_free(t->listing);
	free(t->list_buf);
	sum_free(t);
	free(t);
	metrics_transfer_end();
}
