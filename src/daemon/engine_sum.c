/* The SUM engine: the SHA-256 of an open file, computed in threadpool jobs
 * (never on the loop), and the digest cache, which lives on the loop
 * thread. See engine.h.
 *
 * A job hashes at most FERRY_SUM_JOB_BYTES and then goes to the back of
 * the pool's queue, so that SUMs of large files share the pool with the
 * opens and reads of other requests instead of holding its threads. The
 * file is hashed up to the size its fstat gave when it was opened, and
 * fstat'd again at the end: if size, mtime or ctime moved, the file
 * changed under the hash, which then starts over once from the new state;
 * a second change is answered ERR 503 (changed-while-hashing). A digest
 * is cached only when the file had not changed for FERRY_SUM_SETTLE_S
 * before its hash began: a write within the file system's timestamp
 * granularity of the last one might not move mtime or ctime, and the
 * cache must never answer for bytes it did not hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <uv.h>

#include "common/log.h"
#include "common/protocol.h"
#include "daemon/conn.h"
#include "daemon/digest_cache.h"
#include "daemon/engine.h"

#define FERRY_SUM_READ_BYTES (1024 * 1024)          /* one pread */
#define FERRY_SUM_JOB_BYTES (16ULL * 1024 * 1024)   /* one job */
#define FERRY_SUM_CACHE_ENTRIES 4096
#define FERRY_SUM_SETTLE_S 1
#define FERRY_SUM_ATTEMPTS 2

struct sum_state {
	EVP_MD_CTX *ctx;
	unsigned char *buf;        /* FERRY_SUM_READ_BYTES, this SUM's own */
	uint64_t pos;              /* bytes hashed in this attempt */
	uint64_t job_bytes;        /* by the last job */
	int attempts;
	int err;                   /* negative errno from the last job */
	bool finished;             /* digest holds the answer */
	bool changed;              /* the file moved under this attempt */
	bool cacheable;
	struct timespec began;     /* CLOCK_REALTIME, this attempt */
	struct stat after;         /* fstat at the end of the attempt */
	unsigned char digest[FERRY_SHA256_BYTES];
};

/* The process's digests. Touched only on the loop thread (one loop per
 * process); made on the first SUM, kept across reloads (keys hold device
 * and inode, so a new root cannot alias an old file), freed at exit by
 * the process's end. NULL when it could not be made: SUMs then hash every
 * time. */
static struct digest_cache *cache;

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether ST's last change lies FERRY_SUM_SETTLE_S before SINCE. */
static bool settled(const struct stat *st, const struct timespec *since)
{
	return st->st_ctim.tv_sec + FERRY_SUM_SETTLE_S < since->tv_sec ||
	       (st->st_ctim.tv_sec + FERRY_SUM_SETTLE_S == since->tv_sec &&
		st->st_ctim.tv_nsec < since->tv_nsec);
}

/* The attempt's end, in the job: the file's state again, and the digest. */
static void finish_attempt(struct transfer *t, struct sum_state *s)
{
	unsigned int len = 0;

	if (fstat(t->file_fd, &s->after) < 0) {
		s->err = -errno;
		return;
	}
	if (!same_file_state(&t->st, &s->after))
		s->changed = true;
	if (s->changed)
		return;
	if (EVP_DigestFinal_ex(s->ctx, s->digest, &len) != 1 ||
	    len != FERRY_SHA256_BYTES) {
		s->err = -EIO;
		return;
	}
	s->finished = true;
	s->cacheable = settled(&s->after, &s->began);
}

/* Runs on the threadpool: hashes the next FERRY_SUM_JOB_BYTES at most. */
static void sum_work_cb(uv_work_t *req)
{
	struct transfer *t = req->data;
	struct sum_state *s = t->sum;
	uint64_t size = (uint64_t)t->st.st_size;

	engine_jobs_queued(-1);
	s->job_bytes = 0;
	if (s->pos == 0)
		(void)posix_fadvise(t->file_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (s->pos < size && s->job_bytes < FERRY_SUM_JOB_BYTES) {
		uint64_t want = size - s->pos;
		ssize_t n;

		if (want > FERRY_SUM_READ_BYTES)
			want = FERRY_SUM_READ_BYTES;
		n = pread(t->file_fd, s->buf, (size_t)want, (off_t)s->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			s->err = -errno;
			return;
		}
		if (n == 0) {
			/* Shorter than its fstat said: it shrank. */
			s->changed = true;
			break;
		}
		if (EVP_DigestUpdate(s->ctx, s->buf, (size_t)n) != 1) {
			s->err = -EIO;
			return;
		}
		s->pos += (uint64_t)n;
		s->job_bytes += (uint64_t)n;
	}
	if (s->pos == size || s->changed)
		finish_attempt(t, s);
}

static void sum_after_cb(uv_work_t *req, int status);

/* Starts an attempt from the file's first byte. 0 or -ENOMEM. */
static int attempt_begin(struct sum_state *s)
{
	s->pos = 0;
	s->changed = false;
	s->attempts++;
	clock_gettime(CLOCK_REALTIME, &s->began);
	return EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
}

static void queue_job(struct transfer *t)
{
	struct conn *c = t->conn;
	int rc;

	t->work.data = t;
	engine_jobs_queued(1);
	rc = uv_queue_work(conn_loop(c), &t->work, sum_work_cb,
			   sum_after_cb);
	if (rc < 0) {
		engine_jobs_queued(-1);
		conn_reply_error(c, 500, "queue-failed");
		return;
	}
	conn_job_begin(c);
}

static void answer(struct transfer *t, const unsigned char *digest)
{
	t->header_len = (size_t)proto_format_ok_sum(
		t->header, sizeof t->header, digest, (uint64_t)t->st.st_size,
		(int64_t)t->st.st_mtime);
	transfer_write_answer(t);
}

static void sum_after_cb(uv_work_t *req, int status)
{
	struct transfer *t = req->data;
	struct sum_state *s = t->sum;
	struct digest_key key;

	(void)status;
	t->sent += s->job_bytes;
	if (!conn_job_end(t->conn))
		return;
	/* Hashing is the answer being made: the send timeout waits. */
	conn_progress(t->conn);
	if (s->err < 0) {
		log_warn("%s: hashing /%s failed: %s", conn_peer(t->conn),
			 t->rel, strerror(-s->err));
		conn_reply_error(t->conn, 500, "read-failed");
		return;
	}
	if (s->changed) {
		if (s->attempts >= FERRY_SUM_ATTEMPTS) {
			conn_reply_error(t->conn, 503, "changed-while-hashing");
			return;
		}
		/* The answer's SIZE and MTIME are those of what is hashed. */
		t->st = s->after;
		if (attempt_begin(s) < 0) {
			conn_reply_error(t->conn, 500, "out-of-memory");
			return;
		}
		queue_job(t);
		return;
	}
	if (!s->finished) {
		queue_job(t);
		return;
	}
	if (s->cacheable && cache != NULL) {
		digest_key_of(&t->st, &key);
		digest_cache_put(cache, &key, s->digest);
	}
	answer(t, s->digest);
}

void sum_start(struct transfer *t)
{
	unsigned char digest[FERRY_SHA256_BYTES];
	struct digest_key key;
	struct sum_state *s;

	if (cache == NULL)
		cache = digest_cache_new(FERRY_SUM_CACHE_ENTRIES);
	digest_key_of(&t->st, &key);
	if (cache != NULL && digest_cache_get(cache, &key, digest)) {
		answer(t, digest);
		return;
	}
	s = calloc(1, sizeof *s);
	t->sum = s;
	if (s == NULL || (s->ctx = EVP_MD_CTX_new()) == NULL ||
	    (s->buf = malloc(FERRY_SUM_READ_BYTES)) == NULL ||
	    attempt_begin(s) < 0) {
		conn_reply_error(t->conn, 500, "out-of-memory");
		return;
	}
	queue_job(t);
}

void sum_free(struct transfer *t)
{
	if (t->sum == NULL)
		return;
	EVP_MD_CTX_free(t->sum->ctx);
	free(t->sum->buf);
	free(t->sum);
	t->sum = NULL;
}
