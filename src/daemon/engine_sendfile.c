/* The zero-copy engine. Each job runs on the threadpool: it sends what is
 * left of the OK line, then calls sendfile(2) on the non-blocking socket
 * until it has moved chunk_bytes, the range is done, or the socket is full
 * (EAGAIN). A full socket never holds a thread: the loop waits for
 * writability with a uv_poll_t and queues the next job then. A file that is
 * not in the page cache blocks a pool thread in the disk read, never the
 * loop; a window that cachestat(2) finds cached is sent from the loop
 * itself. See engine.h, and LIBUV-NOTES for the rules it keeps. */
#include "daemon/engine.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/conn.h"
#include "daemon/transfer.h"
#include "common/log.h"
#include "daemon/metrics.h"

/* Linux moves at most this many bytes in one sendfile(2) call. */
#define FERRY_SENDFILE_MAX 0x7ffff000ULL
/* One sendfile job moves at most this many chunks, and waits for a full
 * socket at most this long in all, before other jobs get the thread. */
#define FERRY_JOB_CHUNKS 2
/* While no other job waits for a thread, a job goes on up to this many
 * chunks: a file the kernel keeps only partly cached (this machine's DAMON
 * pages out scattered pages of even a hot file, and half of a 100 MiB
 * file's 2 MiB windows then lack a page or two) would otherwise pay a
 * thread hand-off and a loop wakeup for every window, where nginx reads
 * the missing pages in its loop. */
#define FERRY_JOB_CHUNKS_MOST 16
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

static void sendfile_queue(struct transfer *t);

void engine_jobs_queued(int delta)
{
	atomic_fetch_add(&jobs_queued, delta);
	metrics_jobs_queued(delta);
}

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
 * threadpool, or on the loop for a cached window; the loop reads the results
 * after the job. */
void sendfile_send(struct transfer *t, bool may_wait)
{
	int sock = conn_fd(t->conn);
	uint64_t moved = 0;
	uint64_t budget = t->chunk_bytes * FERRY_JOB_CHUNKS;
	uint64_t most = may_wait ? t->chunk_bytes * FERRY_JOB_CHUNKS_MOST
				 : budget;
	uint64_t deadline_ns = may_wait ? uv_hrtime() + FERRY_JOB_WAIT_NS : 0;

	/* A throttled transfer moves what its tokens allow (transfer.c
	 * asked on the loop); an unlimited one has UINT64_MAX. */
	if (budget > t->send_allow)
		budget = t->send_allow;
	if (most > t->send_allow)
		most = t->send_allow;
	t->job_err = 0;
	t->job_eof = false;
	if (!t->probe_checked) {
		t->probe_checked = true;
		t->probing = t->length > FERRY_PROBE_BYTES;
		if (t->probing)
			transfer_notsent_lowat(t, FERRY_PROBE_LOWAT);
	}
	/* Many windows to go: cork, so no partial segment leaves between
	 * them. The raw form too: its close then sends the last bytes and the
	 * FIN in one segment. */
	if (t->length - t->sent > budget ||
	    (t->req.kind == PROTO_RAW && t->length > 0))
		transfer_cork(t, true);
	while (t->header_sent < t->header_len) {
		/* MSG_MORE: the OK line shares its segment with the file. */
		ssize_t n = send(sock, t->header + t->header_sent,
				 t->header_len - t->header_sent,
				 MSG_NOSIGNAL | (t->length > 0 ? MSG_MORE : 0));
		if (n >= 0) {
			if (t->header_sent == 0 && n > 0)
				t->first_byte_ns = uv_hrtime();
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
	while (t->sent + moved < t->length) {
		uint64_t want = t->length - t->sent - moved;

		/* Past the budget, a job goes on only while no other job
		 * waits for a thread. */
		if (moved >= budget &&
		    (moved >= most || atomic_load(&jobs_queued) > 0))
			break;
		off_t off = (off_t)(t->offset + t->sent + moved);
		ssize_t n;

		if (want > t->chunk_bytes)
			want = t->chunk_bytes;
		/* Throttled: no more than the tokens (never for UINT64_MAX). */
		if (want > t->send_allow - moved)
			want = t->send_allow - moved;
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
	engine_jobs_queued(-1);
	sendfile_send(req->data, true);
}

/* Whether COUNT bytes of the file from OFF are all in the page cache, by
 * cachestat(2) (Linux 6.5); false on an error or a kernel without it. */
static bool range_cached(int fd, uint64_t off, uint64_t count)
{
	static bool unsupported;
	struct { uint64_t off, len; } range = { off, count };
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted,
			nr_recently_evicted;
	} cs;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	if (unsupported)
		return false;
	if (syscall(FERRY_SYS_CACHESTAT, fd, &range, &cs, 0) < 0) {
		if (errno == ENOSYS || errno == EPERM)
			unsupported = true;
		return false;
	}
	return cs.nr_cache >= (off + count - 1) / page - off / page + 1;
}

/* Whether the file's next window (what one job would send) is in the page
 * cache. Then the loop sends it itself, as nginx does, with no trip through
 * the pool; a window that is not all cached, or a kernel without
 * cachestat, goes to a job, so a disk read never stalls the loop. (Pages
 * evicted between the check and the call would block the loop for that
 * read: rare, and bounded by one window.) A look ahead serves many windows
 * of a cached file: the first covers one window, each that finds
 * everything cached doubles the next, up to 64 MiB. cachestat walks every
 * page it is asked about (about 1.5 ms for 64 MiB of small pages here), so
 * a transfer that ends early, a stalled reader, pays for what it sent,
 * not for 64 MiB: 200 stalled readers took 0.3 s of the loop with a first
 * look of 64 MiB. Where a look finds pages missing (a file read long ago,
 * or one the kernel reclaims piecemeal: this machine's DAMON pages out
 * scattered pages of even a hot file), the windows up to its end are
 * looked at one by one instead, so most still go from the loop. */
static bool window_cached(struct transfer *t)
{
	uint64_t left = t->length - t->sent;
	uint64_t off = t->offset + t->sent;
	uint64_t window = t->chunk_bytes * FERRY_JOB_CHUNKS;
	uint64_t ahead;

	if (left == 0)
		return true;
	if (window > left)
		window = left;
	if (off + window <= t->cached_until && off < t->cached_until)
		return true;
	if (t->lookahead < window)
		t->lookahead = window;
	ahead = t->lookahead < left ? t->lookahead : left;
	if (off >= t->partly_until && ahead > window) {
		if (range_cached(t->file_fd, off, ahead)) {
			t->cached_until = off + ahead;
			if (t->lookahead < FERRY_CACHE_LOOKAHEAD)
				t->lookahead *= 2;
			return true;
		}
		t->partly_until = off + ahead;
		t->lookahead = window;
	}
	if (!range_cached(t->file_fd, off, window))
		return false;
	t->cached_until = off + window;
	if (off >= t->partly_until && t->lookahead < FERRY_CACHE_LOOKAHEAD)
		t->lookahead *= 2;
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

/* A throttled transfer's tokens have accrued (the conn's timer): send at
 * once, as when the socket became writable; a full socket then shows up as
 * EAGAIN and the poll takes over. */
static void sendfile_tokens(struct transfer *t)
{
	t->send_allow = transfer_allowance(t, t->length - t->sent,
					   sendfile_tokens);
	if (t->send_allow > 0)
		sendfile_writable(t);
}

/* The whole range has been handed to the kernel. */
static void sendfile_complete(struct transfer *t)
{
	conn_unwatch(t->conn);
	/* A kept-alive answer is pushed now; the raw form's close pushes it. */
	if (t->req.kind != PROTO_RAW)
		transfer_cork(t, false);
	transfer_done(t);
}

void sendfile_first_on_loop(struct transfer *t)
{
	if (window_cached(t))
		sendfile_send(t, false);
	else
		t->job_err = -EAGAIN; /* a job, once writable */
}

/* Takes in what a sendfile job or a send on the loop did: done, failed, or
 * more to send once the socket is writable (at once, when the budget ran out
 * rather than the socket's space: the poll is level-triggered). */
void sendfile_progress(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

	t->sent += t->job_bytes;
	if (t->probing && t->sent >= FERRY_PROBE_BYTES) {
		/* The client reads: no limit but TCP's own. */
		t->probing = false;
		transfer_notsent_lowat(t, 0);
	}
	if (t->throttled) {
		/* The grant is used up; what the socket did not take goes
		 * back. */
		transfer_refund(t, t->send_allow - t->job_bytes);
		t->send_allow = 0;
	}
	t->job_bytes = 0;
	if (t->sent > 0)
		conn_progress(c);
	if (t->header_sent == t->header_len && t->sent == t->length) {
		sendfile_complete(t);
		return;
	}
	if (t->job_eof) {
		transfer_shrank(t);
		return;
	}
	if (t->job_err < 0 && t->job_err != -EAGAIN &&
	    t->job_err != -EWOULDBLOCK) {
		transfer_fail_errno(t, t->job_err);
		return;
	}
	if (t->throttled && t->sent < t->length) {
		/* No tokens: the conn's timer, not the socket, wakes us. */
		t->send_allow = transfer_allowance(t, t->length - t->sent,
						   sendfile_tokens);
		if (t->send_allow == 0) {
			conn_unwatch(c);
			return;
		}
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
	engine_jobs_queued(1);
	rc = uv_queue_work(conn_loop(c), &t->work, sendfile_work_cb,
			   sendfile_after_cb);
	if (rc < 0) {
		engine_jobs_queued(-1);
		log_error("%s: cannot queue a sendfile job: %s", conn_peer(c),
			  uv_strerror(rc));
		transfer_fail(t, 500, "queue-failed");
		return;
	}
	conn_job_begin(c);
}
