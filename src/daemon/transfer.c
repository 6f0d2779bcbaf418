/* Answering one request: see transfer.h. */
#include "daemon/transfer.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon/budget.h"
#include "daemon/conn.h"
#include "daemon/listing.h"
#include "common/log.h"
#include "common/path.h"
#include "daemon/root.h"
#include "daemon/server.h"
#include "daemon/translog.h"

/* Linux moves at most this many bytes in one sendfile(2) call. */
#define FERRY_SENDFILE_MAX 0x7ffff000ULL
/* One sendfile job moves at most this many chunks, and waits for a full
 * socket at most this long in all, before other jobs get the thread. */
#define FERRY_JOB_CHUNKS 2
/* Descriptors an open job may hold at once: the file or directory, and one
 * more while the fallback walk resolves a path. */
#define FERRY_OPEN_FDS 2
/* How far ahead one cachestat(2) looks. */
#define FERRY_CACHE_LOOKAHEAD (64ULL << 20)
#define FERRY_JOB_WAIT_NS (2 * 1000 * 1000ULL)
#ifndef __NR_cachestat
#define FERRY_SYS_CACHESTAT 451 /* the same number on every architecture */
#else
#define FERRY_SYS_CACHESTAT __NR_cachestat
#endif

/* Jobs queued on the threadpool and not yet started, across all loops. */
static atomic_int jobs_queued;

static void sendfile_queue(struct conn *c, struct transfer *t);
static void sendfile_progress(struct conn *c, struct transfer *t);
static void opened(struct conn *c, struct transfer *t);
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
	if (c->poll_active) {
		uv_poll_stop(&c->poll);
		c->poll_active = false;
	}
	/* A kept-alive answer is pushed now; the raw form's close pushes it. */
	if (t->req.kind != PROTO_RAW)
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

/* Whether SOCK became writable before DEADLINE_NS: a job may wait for a
 * fast client briefly instead of handing the socket back to the loop, but
 * never long enough for a slow one to hold the thread. */
static bool wait_writable(int sock, uint64_t deadline_ns)
{
	uint64_t now = uv_hrtime();
	struct pollfd p = { .fd = sock, .events = POLLOUT };

	/* Other jobs are waiting for a thread: give this one back. */
	if (now >= deadline_ns || atomic_load(&jobs_queued) > 0)
		return false;
	return poll(&p, 1, (int)((deadline_ns - now + 999999) / 1000000)) > 0;
}

/* Sends what is left of the OK line and then file bytes, sendfile(2) calls
 * of at most chunk_bytes each, until the range is done, the job's budget is
 * spent, the file ended early, or the socket stays full. Runs on the
 * threadpool; the loop reads the results after the job. */
static void sendfile_send(struct transfer *t, bool may_wait)
{
	int sock = t->conn->fd;
	uint64_t moved = 0;
	uint64_t budget = t->chunk_bytes * FERRY_JOB_CHUNKS;
	uint64_t deadline_ns = may_wait ? uv_hrtime() + FERRY_JOB_WAIT_NS : 0;

	t->job_err = 0;
	t->job_eof = false;
	/* Many windows to go: cork, so no partial segment leaves between
	 * them. The raw form too: its close then sends the last bytes and the
	 * FIN in one segment. */
	if (!t->corked && (t->length - t->sent > budget ||
			   (t->req.kind == PROTO_RAW && t->length > 0))) {
		int on = 1;
		if (setsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, sizeof on) == 0)
			t->corked = true;
	}
	while (t->header_sent < t->header_len) {
		/* MSG_MORE: the OK line shares its segment with the file. */
		ssize_t n = send(sock, t->header + t->header_sent,
				 t->header_len - t->header_sent,
				 MSG_NOSIGNAL | (t->length > 0 ? MSG_MORE : 0));
		if (n >= 0) {
			t->header_sent += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN && wait_writable(sock, deadline_ns))
			continue;
		t->job_err = -errno;
		goto out;
	}
	while (moved < budget && t->sent + moved < t->length) {
		uint64_t want = t->length - t->sent - moved;
		off_t off = (off_t)(t->offset + t->sent + moved);
		ssize_t n;

		if (want > t->chunk_bytes)
			want = t->chunk_bytes;
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
		if (errno == EAGAIN && wait_writable(sock, deadline_ns))
			continue;
		t->job_err = -errno;
		break;
	}
out:
	t->job_bytes = moved;
}

static void sendfile_work_cb(uv_work_t *req)
{
	atomic_fetch_sub(&jobs_queued, 1);
	sendfile_send(req->data, true);
}

/* Whether the file's next window (what one job would send) is in the page
 * cache, by cachestat(2) (Linux 6.5). Then the loop sends it itself, as
 * nginx does, with no trip through the pool; a file that is not cached, or a
 * kernel without cachestat, goes to a job, so a disk read never stalls the
 * loop. (Pages evicted between the check and the call would block the loop
 * for that read: rare, and bounded by one window.) */
static bool window_cached(struct transfer *t)
{
	static bool unsupported;
	struct { uint64_t off, len; } range;
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
			nr_recently_evicted;
	} cs;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t left = t->length - t->sent;
	uint64_t first, last;

	if (unsupported || left == 0)
		return !unsupported;
	range.off = t->offset + t->sent;
	if (range.off + t->chunk_bytes * FERRY_JOB_CHUNKS <= t->cached_until &&
	    range.off < t->cached_until)
		return true;
	/* One look ahead serves many windows. */
	range.len = FERRY_CACHE_LOOKAHEAD;
	if (range.len > left)
		range.len = left;
	if (syscall(FERRY_SYS_CACHESTAT, t->file_fd, &range, &cs, 0) < 0) {
		if (errno == ENOSYS || errno == EPERM)
			unsupported = true;
		return false;
	}
	first = range.off / page;
	last = (range.off + range.len - 1) / page;
	if (cs.nr_cache < last - first + 1)
		return false;
	t->cached_until = range.off + range.len;
	return true;
}

static int watch_writable(struct conn *c);

static void sendfile_poll_cb(uv_poll_t *handle, int status, int events)
{
	struct conn *c = handle->data;
	struct transfer *t = c->xfer;

	(void)status; /* a socket error shows up in the next sendfile */
	(void)events;
	if (window_cached(t)) {
		sendfile_send(t, false);
		sendfile_progress(c, t);
		return;
	}
	uv_poll_stop(handle);
	c->poll_active = false;
	sendfile_queue(c, t);
}

/* Takes in what a sendfile job or a send on the loop did: done, failed, or
 * more to send once the socket is writable (at once, when the budget ran out
 * rather than the socket's space: the poll is level-triggered). */
static void sendfile_progress(struct conn *c, struct transfer *t)
{
	t->sent += t->job_bytes;
	t->job_bytes = 0;
	if (t->sent > 0)
		c->progress_ms = uv_now(c->tcp.loop);
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
	if (t->job_err < 0 && t->job_err != -EAGAIN &&
	    t->job_err != -EWOULDBLOCK) {
		fail_errno(c, t, t->job_err);
		return;
	}
	if (!c->poll_active && watch_writable(c) < 0)
		transfer_fail(c, t, 500, "poll-failed");
}

/* Starts the uv_poll_t on the socket (the tcp handle neither reads nor
 * writes while a file is sent: LIBUV-NOTES' rules). */
static int watch_writable(struct conn *c)
{
	int rc;

	if (!c->poll_init) {
		rc = uv_poll_init_socket(c->tcp.loop, &c->poll, c->fd);
		if (rc < 0)
			goto fail;
		c->poll.data = c;
		c->poll_init = true;
		c->handles++;
	}
	rc = uv_poll_start(&c->poll, UV_WRITABLE, sendfile_poll_cb);
	if (rc < 0)
		goto fail;
	c->poll_active = true;
	return 0;
fail:
	log_error("%s: cannot watch the socket: %s", c->peer_text,
		  uv_strerror(rc));
	return rc;
}

static void sendfile_after_cb(uv_work_t *req, int status)
{
	struct transfer *t = req->data;
	struct conn *c = t->conn;

	(void)status;
	c->jobs--;
	if (c->closing) {
		t->sent += t->job_bytes;
		conn_close(c);
		return;
	}
	sendfile_progress(c, t);
}

static void sendfile_queue(struct conn *c, struct transfer *t)
{
	int rc;

	t->work.data = t;
	atomic_fetch_add(&jobs_queued, 1);
	rc = uv_queue_work(c->tcp.loop, &t->work, sendfile_work_cb,
			   sendfile_after_cb);
	if (rc < 0) {
		atomic_fetch_sub(&jobs_queued, 1);
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

	atomic_fetch_sub(&jobs_queued, 1);
	if (t->req.kind == PROTO_LIST) {
		t->open_err = listing_build(root_fd(t->root), t->rel, &t->listing,
					   &t->listing_len);
		return;
	}
	fd = path_open_file(root_fd(t->root), t->rel, &t->st);
	if (fd < 0) {
		t->open_err = fd;
		return;
	}
	t->file_fd = fd;
	t->open_err = 0;
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
	struct conn *c = t->conn;

	(void)status;
	c->jobs--;
	root_ref_put(t->root);
	t->root = NULL;
	/* The job's reservation becomes the file it kept open, if any. */
	budget_put(c->srv->budget, FERRY_OPEN_FDS - (t->file_fd >= 0 ? 1 : 0));
	if (c->closing) {
		conn_close(c);
		return;
	}
	opened(c, t);
}

/* The file is open (or could not be): answer the error, the listing, the
 * 416, or go on sending. After an open job the first send already happened
 * in the job; after an open on the loop, nothing has been sent yet. */
static void opened(struct conn *c, struct transfer *t)
{
	if (t->open_err < 0) {
		int code = path_error_code(t->open_err);

		/* LIST of a file: it exists, but is no directory. */
		if (t->req.kind == PROTO_LIST && t->open_err == -ENOTDIR)
			code = 403;
		if (code == 500)
			log_warn("%s: cannot open /%s: %s", c->peer_text,
				 t->rel, strerror(-t->open_err));
		conn_reply_error(c, code, error_token(t->open_err));
		return;
	}
	if (t->req.kind == PROTO_LIST) {
		listing_send(c, t);
		return;
	}
	if (t->range_beyond) {
		conn_reply_error(c, 416, "offset-beyond-end");
		return;
	}
	if (t->mode == FERRY_MODE_SENDFILE)
		sendfile_progress(c, t);
	else
		buffered_start(c, t);
}

/* The fast path for a hot file: opened on the loop from the kernel's caches
 * (RESOLVE_CACHED) and, when cachestat finds its first window cached, sent
 * from the loop too, with no trip through the pool. Anything that would
 * wait for the disk goes to the pool instead. Returns false when the open
 * job must do it. */
static bool open_on_loop(struct conn *c, struct transfer *t)
{
	int fd;

	if (t->req.kind == PROTO_LIST || t->mode != FERRY_MODE_SENDFILE)
		return false;
	fd = path_open_file_cached(root_fd(c->srv->root), t->rel, &t->st);
	if (fd == -EAGAIN)
		return false;
	if (fd >= 0) {
		t->file_fd = fd;
		budget_take(c->srv->budget, 1);
		if (range_set(t) == 0) {
			if (window_cached(t))
				sendfile_send(t, false);
			else
				t->job_err = -EAGAIN; /* a job, once writable */
		}
	}
	t->open_err = fd < 0 ? fd : 0;
	opened(c, t);
	return true;
}

void transfer_begin(struct conn *c, struct transfer *t)
{
	const struct config *cfg = c->srv->cfg;
	int rc;

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
	if (open_on_loop(c, t))
		return;
	t->root = root_ref_get(c->srv->root);
	t->work.data = t;
	budget_take(c->srv->budget, FERRY_OPEN_FDS);
	atomic_fetch_add(&jobs_queued, 1);
	rc = uv_queue_work(c->tcp.loop, &t->work, open_work_cb, open_after_cb);
	if (rc < 0) {
		atomic_fetch_sub(&jobs_queued, 1);
		budget_put(c->srv->budget, FERRY_OPEN_FDS);
		root_ref_put(t->root);
		t->root = NULL;
		conn_reply_error(c, 500, "queue-failed");
		return;
	}
	c->jobs++;
}

void transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->file_fd >= 0) {
		close(t->file_fd);
		budget_release(t->conn->srv->budget, 1);
	}
	free(t->buf[0]);
	free(t->buf[1]);
	free(t->listing);
	free(t);
}
