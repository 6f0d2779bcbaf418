/* Answering one request: opening the file (or building a listing) on the
 * threadpool, the range, the OK line, and the two engines that move the
 * bytes: sendfile(2) jobs on the threadpool, or uv_fs_read + uv_write through
 * two bounded buffers. */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "daemon/config.h"
#include "common/protocol.h"

struct conn;
struct root_ref;

enum buf_state { BUF_FREE, BUF_READING, BUF_FULL, BUF_WRITING };

/* The state of one request. Allocated by conn.c when a line is parsed, freed
 * by conn.c (transfer_free) when the request ends or the connection is
 * freed; every callback that can still arrive for it (jobs, reads, writes)
 * arrives before that, because conn.c frees it only after its jobs are done
 * and its handles are closed. */
struct transfer {
	struct conn *conn;
	struct proto_request req;
	char rel[FERRY_LINE_MAX];   /* req.path beneath the root */
	enum transfer_mode mode;    /* copied at start: a reload changes */
	uint64_t chunk_bytes;       /* nothing in flight */
	uint64_t buffer_bytes;
	struct root_ref *root;      /* held while the open job runs */
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

/* Starts answering T->req on C (C->xfer == T, with T->conn, file_fd = -1
 * and start_ns set by conn.c). Ends by calling
 * conn_request_done or conn_reply_error, or transfer_fail. */
void transfer_begin(struct conn *c, struct transfer *t);

/* Logs T as ended with STATUS (a 200, an ERR code, 499) once. */
void transfer_log(struct conn *c, struct transfer *t, int status,
		  const char *error);

/* Logs T as failed and closes the connection. */
void transfer_fail(struct conn *c, struct transfer *t, int status,
		   const char *error);

/* Frees T and closes its file. Only once nothing can call back for it. */
void transfer_free(struct transfer *t);

#endif
