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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/budget.h"
#include "daemon/conn.h"
#include "daemon/listing.h"
#include "common/log.h"
#include "common/path.h"
#include "common/protocol.h"
#include "daemon/root.h"
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

enum buf_state { BUF_FREE, BUF_READING, BUF_FULL, BUF_WRITING };

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
	bool logged;

	uv_work_t work;             /* open/list job, then sendfile jobs */
	int file_fd;                /* -1 when none */
	struct stat st;
	int open_err;               /* negative errno from opening */
	int job_err;                /* negative errno from the last send */
	char *listing;
	size_t listing_len;

	uint64_t offset;            /* range being sent */
	uint64_t length;
	uint64_t sent;              /* file bytes handed to the kernel */
	char header[96];            /* "OK LENGTH SIZE MTIME\n" */
	size_t header_len;
	size_t header_sent;
	bool corked;
	bool range_beyond;          /* OFFSET > SIZE: 416 */
	uint64_t cached_until;      /* file bytes known in the page cache */

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
	bool header_writing;
};

/* Jobs queued on the threadpool and not yet started, across all loops. */
static atomic_int jobs_queued;

static void sendfile_queue(struct transfer *t);
static void sendfile_progress(struct transfer *t);
static void opened(struct transfer *t);
static void buffered_pump(struct transfer *t);

static const char *mode_name(const struct transfer *t)
{
	if (t->req.kind == PROTO_LIST)
		return "list";
	return t->mode == FERRY_MODE_SENDFILE ? "sendfile" : "buffered";
}

void transfer_log(struct transfer *t, int status, const char *error)
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
			uv_stream_get_write_queue_size(conn_stream(t->conn));

		t->sent += fill - (queued < fill ? queued : fill);
		t->buf_state[t->next_write] = BUF_FREE;
	}
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
	if (translog_write(&r) < 0)
		log_debug("cannot write the transfer log: %s", strerror(errno));
}

void transfer_fail(struct transfer *t, int status, const char *error)
{
	transfer_log(t, status, error);
	conn_close(t->conn);
}

/* Corks the socket while a file is sent, so the OK line and the file's first
 * bytes share segments and no partial segment leaves between sendfile calls
 * (nginx's tcp_nopush); uncorking at the end flushes the tail at once. */
static void set_cork(struct transfer *t, bool on)
{
	int v = on;

	if (t->corked == on)
		return;
	if (setsockopt(conn_fd(t->conn), IPPROTO_TCP, TCP_CORK, &v,
		       sizeof v) == 0)
		t->corked = on;
}

/* The whole range has been handed to the kernel. */
static void transfer_complete(struct transfer *t)
{
	conn_unwatch(t->conn);
	/* A kept-alive answer is pushed now; the raw form's close pushes it. */
	if (t->req.kind != PROTO_RAW)
		set_cork(t, false);
	transfer_log(t, 200, NULL);
	conn_request_done(t->conn, false);
}

/* The file ended before the range did: it shrank while being sent. */
static void transfer_shrank(struct transfer *t)
{
	log_warn("%s: /%s shrank while being sent (%llu of %llu bytes)",
		 conn_peer(t->conn), t->rel,
		 (unsigned long long)(t->offset + t->sent),
		 (unsigned long long)(t->offset + t->length));
	transfer_fail(t, 500, "truncated");
}

/* Socket errors mean the client went away; anything else is ours. */
static void fail_errno(struct transfer *t, int err)
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
	int sock = conn_fd(t->conn);
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

/* The socket is writable (or failed: that shows up in the next sendfile). */
static void sendfile_writable(struct transfer *t)
{
	if (window_cached(t)) {
		sendfile_send(t, false);
		sendfile_progress(t);
		return;
	}
	conn_unwatch(t->conn);
	sendfile_queue(t);
}

/* Takes in what a sendfile job or a send on the loop did: done, failed, or
 * more to send once the socket is writable (at once, when the budget ran out
 * rather than the socket's space: the poll is level-triggered). */
static void sendfile_progress(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

	t->sent += t->job_bytes;
	t->job_bytes = 0;
	if (t->sent > 0)
		conn_progress(c);
	if (t->header_sent == t->header_len && t->sent == t->length) {
		transfer_complete(t);
		return;
	}
	if (t->job_eof) {
		transfer_shrank(t);
		return;
	}
	if (t->job_err < 0 && t->job_err != -EAGAIN &&
	    t->job_err != -EWOULDBLOCK) {
		fail_errno(t, t->job_err);
		return;
	}
	/* The tcp handle neither reads nor writes while a file is sent:
	 * LIBUV-NOTES' rules for the poll. */
	rc = conn_watch_writable(c, sendfile_writable);
	if (rc < 0) {
		log_error("%s: cannot watch the socket: %s", conn_peer(c),
			  uv_strerror(rc));
		transfer_fail(t, 500, "poll-failed");
	}
}

static void sendfile_after_cb(uv_work_t *req, int status)
{
	struct transfer *t = req->data;

	(void)status;
	if (!conn_job_end(t->conn)) {
		t->sent += t->job_bytes;
		return;
	}
	sendfile_progress(t);
}

static void sendfile_queue(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

	t->work.data = t;
	atomic_fetch_add(&jobs_queued, 1);
	rc = uv_queue_work(conn_stream(c)->loop, &t->work, sendfile_work_cb,
			   sendfile_after_cb);
	if (rc < 0) {
		atomic_fetch_sub(&jobs_queued, 1);
		log_error("%s: cannot queue a sendfile job: %s", conn_peer(c),
			  uv_strerror(rc));
		transfer_fail(t, 500, "queue-failed");
		return;
	}
	conn_job_begin(c);
}

/* ---- the buffered engine ----
 * uv_fs_read fills one buffer while uv_write sends the other; at most two
 * buffers of buffer_bytes exist per transfer, whatever the file's size. */

static void buffered_read_cb(uv_fs_t *req)
{
	struct transfer *t = req->data;
	int i = t->next_read;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	if (!conn_job_end(t->conn))
		return;
	if (n < 0) {
		t->buf_state[i] = BUF_FREE;
		fail_errno(t, (int)n == UV_EPIPE ? UV_EIO : (int)n);
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
	buffered_pump(t);
}

static void buffered_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;
	int i = t->next_write;

	if (conn_closing(t->conn))
		return;
	if (status < 0) {
		fail_errno(t, status);
		return;
	}
	t->sent += t->buf_fill[i];
	t->buf_state[i] = BUF_FREE;
	t->next_write ^= 1;
	conn_progress(t->conn);
	buffered_pump(t);
}

static void header_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;

	if (conn_closing(t->conn))
		return;
	t->header_writing = false;
	if (status < 0) {
		fail_errno(t, status);
		return;
	}
	t->header_sent = t->header_len;
	buffered_pump(t);
}

/* Starts the next read and the next write, if their buffers are ready, and
 * ends the transfer when everything has been written. */
static void buffered_pump(struct transfer *t)
{
	struct conn *c = t->conn;
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
				transfer_fail(t, 500, "out-of-memory");
				return;
			}
		}
		b = uv_buf_init(t->buf[i], (unsigned)want);
		t->read_req.data = t;
		rc = uv_fs_read(conn_stream(c)->loop, &t->read_req, t->file_fd,
				&b, 1, (int64_t)t->read_pos, buffered_read_cb);
		if (rc < 0) {
			transfer_fail(t, 500, "read-failed");
			return;
		}
		conn_job_begin(c);
		t->buf_state[i] = BUF_READING;
	}
	if (t->buf_state[j] == BUF_FULL) {
		uv_buf_t b = uv_buf_init(t->buf[j], (unsigned)t->buf_fill[j]);

		t->write_req.data = t;
		rc = uv_write(&t->write_req, conn_stream(c), &b, 1,
			      buffered_write_cb);
		if (rc < 0) {
			fail_errno(t, rc);
			return;
		}
		t->buf_state[j] = BUF_WRITING;
	}
	if (t->header_writing || t->buf_state[0] != BUF_FREE ||
	    t->buf_state[1] != BUF_FREE)
		return;
	if (t->sent == t->length)
		transfer_complete(t);
	else if (t->file_eof)
		transfer_shrank(t);
}

static void buffered_start(struct transfer *t)
{
	t->read_pos = t->offset;
	if (t->header_len > 0) {
		uv_buf_t b = uv_buf_init(t->header, (unsigned)t->header_len);
		int rc;

		t->header_req.data = t;
		rc = uv_write(&t->header_req, conn_stream(t->conn), &b, 1,
			      header_write_cb);
		if (rc < 0) {
			fail_errno(t, rc);
			return;
		}
		t->header_writing = true;
	}
	buffered_pump(t);
}

/* ---- LIST ---- */

static void listing_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;

	if (conn_closing(t->conn))
		return;
	if (status < 0) {
		fail_errno(t, status);
		return;
	}
	t->sent = t->listing_len;
	transfer_log(t, 200, NULL);
	conn_request_done(t->conn, false);
}

static void listing_send(struct transfer *t)
{
	uv_buf_t b[2];
	int rc;

	t->header_len = (size_t)proto_format_ok_list(t->header, sizeof t->header,
						     t->listing_len);
	b[0] = uv_buf_init(t->header, (unsigned)t->header_len);
	b[1] = uv_buf_init(t->listing, (unsigned)t->listing_len);
	t->write_req.data = t;
	rc = uv_write(&t->write_req, conn_stream(t->conn), b,
		      t->listing_len > 0 ? 2 : 1, listing_write_cb);
	if (rc < 0)
		fail_errno(t, rc);
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
		t->open_err = listing_build(root_fd(t->root), t->rel,
					   &t->listing, &t->listing_len);
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
 * (RESOLVE_CACHED) and, when cachestat finds its first window cached, sent
 * from the loop too, with no trip through the pool. Anything that would
 * wait for the disk goes to the pool instead. Returns false when the open
 * job must do it. */
static bool open_on_loop(struct transfer *t)
{
	int fd;

	if (t->req.kind == PROTO_LIST || t->mode != FERRY_MODE_SENDFILE)
		return false;
	fd = path_open_file_cached(root_fd(t->root), t->rel, &t->st);
	if (fd == -EAGAIN)
		return false;
	if (fd >= 0) {
		t->file_fd = fd;
		budget_take(t->budget, 1);
		if (range_set(t) == 0) {
			if (window_cached(t))
				sendfile_send(t, false);
			else
				t->job_err = -EAGAIN; /* a job, once writable */
		}
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
	t->mode = s->mode;
	t->chunk_bytes = s->chunk_bytes;
	t->buffer_bytes = s->buffer_bytes;
	t->root = s->root;
	t->budget = s->budget;
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

void transfer_begin(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

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
	atomic_fetch_add(&jobs_queued, 1);
	rc = uv_queue_work(conn_stream(c)->loop, &t->work, open_work_cb,
			   open_after_cb);
	if (rc < 0) {
		atomic_fetch_sub(&jobs_queued, 1);
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
	if (t->file_fd >= 0) {
		close(t->file_fd);
		budget_release(t->budget, 1);
	}
	free(t->buf[0]);
	free(t->buf[1]);
	free(t->listing);
	free(t);
}
