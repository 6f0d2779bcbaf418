/* The buffered engine: a read fills one buffer while uv_write sends the
 * other; at most two buffers of buffer_bytes exist per transfer, whatever
 * the file's size. See engine.h.
 *
 * The read: first preadv2(RWF_NOWAIT) on the loop, which copies what the
 * page cache holds and never waits for the disk (EAGAIN instead); only
 * what is not cached goes to the threadpool (uv_fs_read). A cached file
 * thus costs no thread hand-off per buffer, the context switches that
 * dominated a throttled transfer's CPU. */
#include "daemon/engine.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "daemon/conn.h"
#include "daemon/transfer.h"

static void buffered_pump(struct transfer *t);

/* Buffers of freed transfers, kept for the next ones: a fresh 256 KiB
 * malloc is an mmap (above glibc's threshold) whose pages fault in one by
 * one, 79 faults per 1 MiB fetch at 100 connections, and a recycled buffer
 * is still in the cache. At most FERRY_BUFFER_POOL are kept (8 MiB at the
 * default size), of one size: a reload that changes transfer.buffer
 * empties it. The loop's alone, as everything here. */
#define FERRY_BUFFER_POOL 32

static struct {
	char *free[FERRY_BUFFER_POOL];
	unsigned count;
	size_t bytes;
} pool;

static char *buffer_get(size_t bytes)
{
	if (pool.count > 0 && pool.bytes == bytes)
		return pool.free[--pool.count];
	return malloc(bytes);
}

static void buffer_put(char *buf, size_t bytes)
{
	if (buf == NULL)
		return;
	if (pool.bytes != bytes) {
		while (pool.count > 0)
			free(pool.free[--pool.count]);
		pool.bytes = bytes;
	}
	if (pool.count < FERRY_BUFFER_POOL)
		pool.free[pool.count++] = buf;
	else
		free(buf);
}

void buffered_free(struct transfer *t)
{
	buffer_put(t->buf[0], t->buffer_bytes);
	buffer_put(t->buf[1], t->buffer_bytes);
	t->buf[0] = t->buf[1] = NULL;
}

/* Buffer I holds N more bytes (or the file ended: N == 0). */
static void filled(struct transfer *t, int i, size_t n)
{
	if (n == 0) {
		t->buf_state[i] = BUF_FREE;
		t->file_eof = true;
	} else {
		t->buf_fill[i] = n;
		t->buf_state[i] = BUF_FULL;
		t->read_pos += (uint64_t)n;
		/* A probe reads nothing ahead: one buffer does. */
		if (!t->probing)
			t->next_read ^= 1;
	}
}

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
		transfer_fail_errno(t, (int)n == UV_EPIPE ? UV_EIO : (int)n);
		return;
	}
	filled(t, i, (size_t)n);
	buffered_pump(t);
}

/* Copies into buffer I what the page cache holds of the WANT bytes at
 * read_pos, without waiting for the disk: true when some arrived. False
 * (nothing read) when they must come from the threadpool: not cached,
 * RWF_NOWAIT not supported here (then never tried again for T), or the end
 * of the file, which the threadpool's read confirms. */
static bool read_cached(struct transfer *t, int i, size_t want)
{
	struct iovec v = { t->buf[i], want };
	ssize_t n;

	if (t->no_nowait)
		return false;
	do
		n = preadv2(t->file_fd, &v, 1, (off_t)t->read_pos, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		filled(t, i, (size_t)n);
		return true;
	}
	if (n < 0 && errno != EAGAIN)
		t->no_nowait = true;
	return false;
}

/* What a transfer may leave unsent in its socket, in buffers: TCP's own
 * autotuning lets a send buffer grow to 4 MiB, which a client that reads
 * nothing fills at once; 200 of them took 820 MB of copies through our
 * buffers (and about 2 s of a 2-core machine) before the daemon had time
 * for anyone else. TCP_NOTSENT_LOWAT bounds only the bytes not yet sent:
 * what is in flight to a fast client, however far away, is not limited,
 * so its rate is not. Only for a transfer longer than one pump's turn:
 * on 1 MiB files at 100 connections it made the kernel push the queued
 * bytes from our thread as the ACKs came in (tcp_rcv_established under
 * release_sock), 55 against 31 CPU ticks per 4 GiB, and a file that short
 * cannot park more than its own length anyway. */
#define FERRY_NOTSENT_LOWAT_BUFFERS 2

/* While probing (engine.h), a buffered transfer reads at most this much at
 * a time, nothing ahead while a write waits, and always into its first
 * buffer: a stalled reader holds one small read of one buffer and about
 * 250 KiB of socket. 200 of them cost the daemon 53 CPU ticks before
 * (mostly faulting in two fresh 256 KiB buffers each) and the first fetch
 * beside them ran at a tenth of its rate; reading in turn into both
 * buffers, it faulted in 64 KiB of each (4,700 page faults and 90 ms of
 * the loop for 200). */
#define FERRY_PROBE_READ (64 * 1024)

/* Buffer I, the next to write, is in the kernel: free for the next read. */
static void written(struct transfer *t, int i)
{
	t->sent += t->buf_fill[i];
	t->buf_state[i] = BUF_FREE;
	if (!t->probing)
		t->next_write ^= 1;
	conn_progress(t->conn);
	if (t->probing && t->sent >= FERRY_PROBE_BYTES) {
		/* The client reads: full buffers, read ahead, and room for
		 * two of them unsent. */
		t->probing = false;
		transfer_notsent_lowat(t, (int)(FERRY_NOTSENT_LOWAT_BUFFERS *
					   t->buffer_bytes));
	}
}

static void buffered_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;

	if (conn_closing(t->conn))
		return;
	if (status < 0) {
		transfer_fail_errno(t, status);
		return;
	}
	written(t, t->next_write);
	buffered_pump(t);
}

static void header_write_cb(uv_write_t *req, int status)
{
	struct transfer *t = req->data;

	if (conn_closing(t->conn))
		return;
	t->header_writing = false;
	if (status < 0) {
		transfer_fail_errno(t, status);
		return;
	}
	t->header_sent = t->header_len;
	buffered_pump(t);
}

/* Starts reading into the next buffer, when it is free and bytes are left;
 * a throttled transfer reads only what its tokens allow, taken as it reads
 * (the bytes are written as soon as they are in), or waits for
 * them on the conn's timer, which calls buffered_pump again. False when the
 * transfer failed. */
static bool start_read(struct transfer *t)
{
	struct conn *c = t->conn;
	uint64_t end = t->offset + t->length;
	uint64_t want = end - t->read_pos;
	int i = t->next_read;
	uv_buf_t b;
	int rc;

	if (t->file_eof || t->read_pos >= end || t->buf_state[i] != BUF_FREE)
		return true;
	if (want > t->buffer_bytes)
		want = t->buffer_bytes;
	if (t->probing && want > FERRY_PROBE_READ)
		want = FERRY_PROBE_READ;
	if (t->throttled) {
		want = transfer_allowance(t, want, buffered_pump);
		if (want == 0)
			return !conn_closing(c);
	}
	if (t->buf[i] == NULL) {
		t->buf[i] = buffer_get(t->buffer_bytes);
		if (t->buf[i] == NULL) {
			transfer_fail(t, 500, "out-of-memory");
			return false;
		}
	}
	if (read_cached(t, i, (size_t)want)) {
		if (t->throttled && t->buf_fill[i] < want)
			transfer_refund(t, want - t->buf_fill[i]);
		return true;
	}
	b = uv_buf_init(t->buf[i], (unsigned)want);
	t->read_req.data = t;
	rc = uv_fs_read(conn_loop(c), &t->read_req, t->file_fd, &b, 1,
			(int64_t)t->read_pos, buffered_read_cb);
	if (rc < 0) {
		transfer_fail(t, 500, "read-failed");
		return false;
	}
	conn_job_begin(c);
	t->buf_state[i] = BUF_READING;
	return true;
}

/* Buffers one pump writes with uv_try_write, each read again at once into
 * the buffer just written (still in the cache), before the other clients
 * get a turn: 1 MiB at the default size. */
#define FERRY_PUMP_BUFFERS 4

/* Whether T is written in one pump's turn. */
static bool one_turn(const struct transfer *t)
{
	return t->length <= FERRY_PUMP_BUFFERS * t->buffer_bytes;
}

/* Starts the next reads and writes, as their buffers are ready, and ends the
 * transfer when everything has been written. A transfer of at most
 * FERRY_PUMP_BUFFERS buffers is written on while the socket takes each
 * whole buffer at once (uv_try_write), reading the next into the buffer
 * just written, as nginx does: a 1 MiB file in one turn. What the socket
 * does not take goes to uv_write, whose callback pumps again. */
static void buffered_pump(struct transfer *t)
{
	struct conn *c = t->conn;
	/* Only a transfer that fits in one turn: a longer one writing on
	 * this way measured slower (big files, 20 clients: 2.7 GB/s against
	 * 4.5 GB/s), as it fills its socket up to TCP_NOTSENT_LOWAT in
	 * bursts instead of keeping a buffer read ahead. */
	bool whole_turn = one_turn(t);
	unsigned turns = 0;
	uv_buf_t b;
	int j, rc;

	for (;;) {
		if (!start_read(t))
			return;
		j = t->next_write;
		if (t->buf_state[j] != BUF_FULL)
			break;
		b = uv_buf_init(t->buf[j], (unsigned)t->buf_fill[j]);
		if (whole_turn && turns < FERRY_PUMP_BUFFERS &&
		    !t->header_writing) {
			rc = uv_try_write(conn_stream(c), &b, 1);
			if (rc == (int)b.len) {
				written(t, j);
				turns++;
				continue;
			}
			if (rc > 0) {
				/* The rest goes by uv_write; buf_fill is
				 * what it holds, as write_cb and
				 * buffered_count_cut expect. */
				t->sent += (uint64_t)rc;
				b = uv_buf_init(t->buf[j] + rc, b.len - (unsigned)rc);
				t->buf_fill[j] = b.len;
				conn_progress(c);
			} else if (rc != UV_EAGAIN) {
				transfer_fail_errno(t, rc);
				return;
			}
		}
		t->write_req.data = t;
		rc = uv_write(&t->write_req, conn_stream(c), &b, 1,
			      buffered_write_cb);
		if (rc < 0) {
			transfer_fail_errno(t, rc);
			return;
		}
		t->buf_state[j] = BUF_WRITING;
		/* The other buffer may fill now, from the page cache; not
		 * for a client not yet seen reading, which may never take
		 * this one. */
		if (!t->probing && !start_read(t))
			return;
		break;
	}
	if (t->header_writing || t->buf_state[0] != BUF_FREE ||
	    t->buf_state[1] != BUF_FREE)
		return;
	if (t->sent == t->length)
		transfer_done(t);
	else if (t->file_eof)
		transfer_shrank(t);
}

void buffered_start(struct transfer *t)
{
	t->read_pos = t->offset;
	if (!one_turn(t)) {
		t->probing = t->length > FERRY_PROBE_BYTES;
		transfer_notsent_lowat(t, t->probing ?
				  FERRY_PROBE_LOWAT :
				  (int)(FERRY_NOTSENT_LOWAT_BUFFERS *
					t->buffer_bytes));
	} else if (t->req.kind == PROTO_RAW && t->length > 0) {
		/* The raw form ends with the close: corked, its last bytes
		 * and the FIN share a segment, as in sendfile mode. Only in
		 * one turn: a longer transfer waits for writability, which a
		 * corked partial segment held back under TCP_NOTSENT_LOWAT
		 * can withhold for the cork's 200 ms (100 MiB fetches fell to
		 * 400 MB/s). */
		transfer_cork(t, true);
	}
	if (t->header_len > 0) {
		uv_buf_t b = uv_buf_init(t->header, (unsigned)t->header_len);
		int rc;

		t->first_byte_ns = uv_hrtime();
		rc = uv_try_write(conn_stream(t->conn), &b, 1);
		if (rc == (int)b.len) {
			t->header_sent = t->header_len;
			buffered_pump(t);
			return;
		}
		if (rc > 0)
			b = uv_buf_init(t->header + rc, b.len - (unsigned)rc);
		else if (rc != UV_EAGAIN) {
			transfer_fail_errno(t, rc);
			return;
		}
		t->header_req.data = t;
		rc = uv_write(&t->header_req, conn_stream(t->conn), &b, 1,
			      header_write_cb);
		if (rc < 0) {
			transfer_fail_errno(t, rc);
			return;
		}
		t->header_writing = true;
	}
	buffered_pump(t);
}

void buffered_count_cut(struct transfer *t)
{
	if (t->buf_state[t->next_write] == BUF_WRITING && !t->header_writing) {
		size_t fill = t->buf_fill[t->next_write];
		size_t queued =
			uv_stream_get_write_queue_size(conn_stream(t->conn));

		t->sent += fill - (queued < fill ? queued : fill);
		t->buf_state[t->next_write] = BUF_FREE;
	}
}
