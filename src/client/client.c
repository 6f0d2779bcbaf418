/* The ferry client's logic (client.h): plain blocking sockets with send and
 * receive timeouts, the protocol through protocol.c's parsers, and the
 * NAME.part discipline that never leaves a wrong NAME behind. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "client/client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/units.h"

#define MIB (1024.0 * 1024.0)
/* The longest "SIZE MTIME OFFSET\n" record: three 20-digit numbers. */
#define META_MAX 80

/* ---- addresses ---------------------------------------------------------- */

int client_parse_target(const char *arg, struct client_target *t)
{
	const char *host = arg, *port = NULL, *colon;
	size_t host_len, i;
	unsigned long value = 0;

	memset(t, 0, sizeof(*t));
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (end == NULL)
			return -EINVAL;
		host = arg + 1;
		host_len = (size_t)(end - host);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -EINVAL;
	} else {
		colon = strchr(arg, ':');
		/* Two colons or more: a bare IPv6 address, which cannot
		 * carry a port without brackets. */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			host_len = (size_t)(colon - arg);
			port = colon + 1;
		} else {
			host_len = strlen(arg);
		}
	}
	if (host_len == 0)
		return -EINVAL;
	if (host_len >= sizeof(t->host))
		return -ENAMETOOLONG;
	memcpy(t->host, host, host_len);
	t->host[host_len] = '\0';

	if (port == NULL) {
		snprintf(t->port, sizeof(t->port), "%d", FERRY_DEFAULT_PORT);
		return 0;
	}
	for (i = 0; port[i] != '\0'; i++) {
		if (port[i] < '0' || port[i] > '9' || i >= 5)
			return -EINVAL;
		value = value * 10 + (unsigned long)(port[i] - '0');
	}
	if (i == 0 || value == 0 || value > 65535)
		return -EINVAL;
	snprintf(t->port, sizeof(t->port), "%lu", value);
	return 0;
}

/* ---- the connection ----------------------------------------------------- */

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, cap, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

/* Connects a non-blocking socket to AI within TIMEOUT_MS, then makes it
 * blocking with FERRY_IO_TIMEOUT_MS on every send and receive. The fd, or
 * a negative errno. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
	struct timeval tv = { FERRY_IO_TIMEOUT_MS / 1000,
			      (FERRY_IO_TIMEOUT_MS % 1000) * 1000 };
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, err = 0, one = 1, n, rc;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto fail;
		}
		p.fd = fd;
		p.events = POLLOUT;
		do
			n = poll(&p, 1, timeout_ms);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			rc = -errno;
			goto fail;
		}
		if (n == 0) {
			rc = -ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
			rc = -errno;
			goto fail;
		}
		if (err != 0) {
			rc = -err;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		rc = -errno;
		goto fail;
	}
	/* Request lines are small and pipelined: no waiting for ACKs. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
fail:
	close(fd);
	return rc;
}

int client_connect(struct client_conn *c, const struct client_target *t,
		   int connect_ms)
{
	struct addrinfo hints, *list = NULL, *ai;
	int rc = -EHOSTUNREACH, gai;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	gai = getaddrinfo(t->host, t->port, &hints, &list);
	if (gai != 0) {
		c->gai_error = gai;
		return -EHOSTUNREACH;
	}
	for (ai = list; ai != NULL; ai = ai->ai_next) {
		int fd = connect_one(ai, connect_ms);

		if (fd < 0) {
			rc = fd;
			continue;
		}
		c->fd = fd;
		format_peer(ai->ai_addr, c->peer, sizeof(c->peer));
		rc = 0;
		break;
	}
	freeaddrinfo(list);
	if (rc < 0)
		return rc;
	c->buf = malloc(FERRY_CLIENT_BUFFER_BYTES);
	if (c->buf == NULL) {
		client_close(c);
		return -ENOMEM;
	}
	return 0;
}

void client_close(struct client_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->pos = c->len = 0;
}

int client_format_get(char *buf, size_t cap, const char *path,
		      uint64_t offset, bool has_length, uint64_t length)
{
	char enc[FERRY_LINE_MAX];
	size_t enc_len = proto_encode(path, strlen(path), enc, sizeof(enc));
	int n;

	if (path[0] == '\0')
		return -EINVAL;
	if (enc_len >= sizeof(enc))
		return -ENAMETOOLONG;
	if (has_length)
		n = snprintf(buf, cap, "GET %.*s %" PRIu64 " %" PRIu64 "\n",
			     (int)enc_len, enc, offset, length);
	else if (offset > 0)
		n = snprintf(buf, cap, "GET %.*s %" PRIu64 "\n", (int)enc_len,
			     enc, offset);
	else
		n = snprintf(buf, cap, "GET %.*s\n", (int)enc_len, enc);
	if (n < 0 || (size_t)n >= cap || n > FERRY_LINE_MAX)
		return -ENAMETOOLONG;
	return n;
}

int client_format_list(char *buf, size_t cap, const char *dir)
{
	char enc[FERRY_LINE_MAX];
	size_t enc_len;
	int n;

	if (dir == NULL || dir[0] == '\0') {
		n = snprintf(buf, cap, "LIST\n");
	} else {
		enc_len = proto_encode(dir, strlen(dir), enc, sizeof(enc));
		if (enc_len >= sizeof(enc))
			return -ENAMETOOLONG;
		n = snprintf(buf, cap, "LIST %.*s\n", (int)enc_len, enc);
	}
	if (n < 0 || (size_t)n >= cap || n > FERRY_LINE_MAX)
		return -ENAMETOOLONG;
	return n;
}

int client_format_sum(char *buf, size_t cap, const char *path)
{
	/* "SUM PATH\n" is "GET PATH\n" with another verb of three letters. */
	int n = client_format_get(buf, cap, path, 0, false, 0);

	if (n > 0)
		memcpy(buf, "SUM", 3);
	return n;
}

int client_send(struct client_conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -ETIMEDOUT;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Moves the unconsumed bytes to the front and receives more after them.
 * The count received, 0 when the server closed, or a negative errno (a
 * timeout is -ETIMEDOUT, a reset counts as closed). */
static ssize_t fill(struct client_conn *c)
{
	ssize_t n;

	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (c->len == FERRY_CLIENT_BUFFER_BYTES)
		return -ENOBUFS;
	for (;;) {
		rate_wait(c->rate);
		n = recv(c->fd, c->buf + c->len,
			 rate_chunk(c->rate, FERRY_CLIENT_BUFFER_BYTES - c->len),
			 0);
		if (n > 0) {
			rate_spend(c->rate, (size_t)n);
			c->len += (size_t)n;
			return n;
		}
		if (n == 0 || errno == ECONNRESET) {
			c->eof = true;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -ETIMEDOUT;
		return -errno;
	}
}

/* Takes the next reply line from the buffer, receiving as needed: *LINE
 * and *LEN (LF and a CR before it excluded) stay valid until the next
 * receive. 0, -ECONNRESET, -EPROTO for an overlong line, -ETIMEDOUT. */
static int read_line(struct client_conn *c, const char **line, size_t *len)
{
	for (;;) {
		const char *start = c->buf + c->pos;
		size_t have = c->len - c->pos;
		const char *lf = memchr(start, '\n', have);
		ssize_t n;

		if (lf != NULL) {
			*line = start;
			*len = (size_t)(lf - start);
			c->pos += *len + 1;
			if (*len > 0 && start[*len - 1] == '\r')
				(*len)--;
			return 0;
		}
		if (have >= FERRY_LINE_MAX)
			return -EPROTO;
		n = fill(c);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return (int)n;
	}
}

/* The next reply line, parsed as SUM's answer into SUM when it is not
 * NULL, else into REP. */
static int read_reply(struct client_conn *c, struct proto_reply *rep,
		      struct proto_sum_reply *sum)
{
	const char *line = NULL;
	size_t len = 0;
	int rc = read_line(c, &line, &len);

	if (rc < 0)
		return rc;
	if (sum != NULL)
		rc = proto_parse_sum_reply(line, len, sum);
	else
		rc = proto_parse_reply(line, len, rep);
	return rc == 0 ? 0 : -EPROTO;
}

int client_read_reply(struct client_conn *c, struct proto_reply *rep)
{
	return read_reply(c, rep, NULL);
}

int client_read_sum(struct client_conn *c, struct proto_sum_reply *rep)
{
	return read_reply(c, NULL, rep);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Receives exactly LENGTH bytes into FD (or MEM, or nowhere when both are
 * absent), adding them to HASH unless it is NULL. What follows them stays
 * in the buffer for the next reply. */
static int recv_exact(struct client_conn *c, int fd, char *mem,
		      uint64_t length, uint64_t *received, bool *write_failed,
		      EVP_MD_CTX *hash, client_progress_fn progress, void *arg)
{
	uint64_t got = 0;
	int rc = 0;

	*write_failed = false;
	while (got < length) {
		size_t take;

		if (c->pos == c->len) {
			ssize_t n = fill(c);

			if (n <= 0) {
				rc = n == 0 ? -ECONNRESET : (int)n;
				break;
			}
		}
		take = c->len - c->pos;
		if (take > length - got)
			take = (size_t)(length - got);
		if (hash != NULL &&
		    EVP_DigestUpdate(hash, c->buf + c->pos, take) != 1) {
			rc = -ENOMEM;
			break;
		}
		if (mem != NULL) {
			memcpy(mem + got, c->buf + c->pos, take);
		} else if (fd >= 0) {
			rc = write_all(fd, c->buf + c->pos, take);
			if (rc < 0) {
				*write_failed = true;
				break;
			}
		}
		c->pos += take;
		got += take;
		if (progress != NULL)
			progress(arg, got);
	}
	*received = got;
	return rc;
}

int client_recv_body(struct client_conn *c, int fd, uint64_t length,
		     uint64_t *received, bool *write_failed,
		     client_progress_fn progress, void *arg)
{
	return recv_exact(c, fd, NULL, length, received, write_failed, NULL,
			  progress, arg);
}

int client_list(struct client_conn *c, const char *dir,
		struct proto_reply *rep, char **body, size_t *len)
{
	char line[FERRY_LINE_MAX + 1];
	uint64_t got = 0;
	bool write_failed;
	char *mem;
	int n, rc;

	*body = NULL;
	*len = 0;
	n = client_format_list(line, sizeof(line), dir);
	if (n < 0)
		return n;
	rc = client_send(c, line, (size_t)n);
	if (rc == 0)
		rc = client_read_reply(c, rep);
	if (rc < 0 || !rep->ok)
		return rc;
	if (rep->fields != 1)
		return -EPROTO;
	if (rep->length > FERRY_LISTING_MAX)
		return -EFBIG;
	mem = malloc((size_t)rep->length + 1);
	if (mem == NULL)
		return -ENOMEM;
	rc = recv_exact(c, -1, mem, rep->length, &got, &write_failed, NULL,
			NULL, NULL);
	if (rc < 0) {
		free(mem);
		return rc;
	}
	mem[rep->length] = '\0';
	*body = mem;
	*len = (size_t)rep->length;
	return 0;
}

/* ---- digests ------------------------------------------------------------ */

/* Adds the first LENGTH bytes of FD to HASH (all of it: UINT64_MAX). */
static int hash_fd(EVP_MD_CTX *hash, int fd, uint64_t length)
{
	char *buf = malloc(FERRY_CLIENT_BUFFER_BYTES);
	uint64_t at = 0;
	int rc = 0;

	if (buf == NULL)
		return -ENOMEM;
	while (at < length) {
		size_t want = length - at < FERRY_CLIENT_BUFFER_BYTES
				      ? (size_t)(length - at)
				      : FERRY_CLIENT_BUFFER_BYTES;
		ssize_t n = pread(fd, buf, want, (off_t)at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0) {
			/* Shorter than the caller knew it to be. */
			rc = length == UINT64_MAX ? 0 : -ESTALE;
			break;
		}
		if (EVP_DigestUpdate(hash, buf, (size_t)n) != 1) {
			rc = -ENOMEM;
			break;
		}
		at += (uint64_t)n;
	}
	free(buf);
	return rc;
}

static EVP_MD_CTX *hash_new(void)
{
	EVP_MD_CTX *hash = EVP_MD_CTX_new();

	if (hash != NULL && EVP_DigestInit_ex(hash, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(hash);
		hash = NULL;
	}
	return hash;
}

/* Finishes HASH into DIGEST and frees it. */
static int hash_end(EVP_MD_CTX *hash, unsigned char digest[FERRY_SHA256_BYTES])
{
	unsigned int n = 0;
	int ok = EVP_DigestFinal_ex(hash, digest, &n);

	EVP_MD_CTX_free(hash);
	return ok == 1 && n == FERRY_SHA256_BYTES ? 0 : -ENOMEM;
}

int client_sha256_file(const char *path,
		       unsigned char digest[FERRY_SHA256_BYTES])
{
	EVP_MD_CTX *hash;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	hash = hash_new();
	if (hash == NULL) {
		close(fd);
		return -ENOMEM;
	}
	rc = hash_fd(hash, fd, UINT64_MAX);
	close(fd);
	if (rc < 0) {
		EVP_MD_CTX_free(hash);
		return rc;
	}
	return hash_end(hash, digest);
}

/* ---- resume records ----------------------------------------------------- */

int client_meta_format(char *buf, size_t cap, const struct client_meta *m)
{
	return snprintf(buf, cap, "%" PRIu64 " %" PRId64 " %" PRIu64 "\n",
			m->size, m->mtime, m->offset);
}

int client_meta_parse(const char *buf, size_t len, struct client_meta *m)
{
	const char *field[3], *end = buf + len, *p = buf;
	size_t field_len[3];
	int64_t mtime;
	int i;

	if (len > 0 && end[-1] == '\n')
		end--;
	/* "SIZE MTIME OFFSET": three fields, single spaces. */
	for (i = 0; i < 3; i++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));

		field[i] = p;
		field_len[i] = (size_t)((sp != NULL ? sp : end) - p);
		if ((sp == NULL) != (i == 2))
			return -EINVAL;
		p = sp != NULL ? sp + 1 : end;
	}
	if (proto_parse_number(field[0], field_len[0], &m->size) < 0 ||
	    proto_parse_signed(field[1], field_len[1], &mtime) < 0 ||
	    proto_parse_number(field[2], field_len[2], &m->offset) < 0)
		return -EINVAL;
	m->mtime = mtime;
	return 0;
}

static int meta_read(const char *path, struct client_meta *m)
{
	char buf[META_MAX];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	return client_meta_parse(buf, (size_t)n, m);
}

static int meta_write(const char *path, const struct client_meta *m)
{
	char buf[META_MAX];
	int n = client_meta_format(buf, sizeof(buf), m);
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, buf, (size_t)n);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* ---- fetching ----------------------------------------------------------- */

/* One request in the pipeline: the GET that fetches a job's bytes; a probe
 * ("GET PATH OFFSET 0"), which only asks for SIZE and MTIME, to decide
 * whether a part can be continued; or, with --verify, the SUM that follows
 * the fetch. */
struct request {
	size_t job;
	bool probe;
	bool sum;
	uint64_t offset;
	bool has_length;
	uint64_t length;
	size_t line_len; /* once sent */
};

/* What client_get needs while answering. */
struct getter {
	struct client_conn *c;
	struct client_job *jobs;
	const struct client_get_opts *opts;
	struct request *queue; /* room for three requests per job */
	size_t tail;
	/* The body being received, for the progress callback. */
	const struct client_job *job;
	uint64_t base, total;
};

static void fail(struct client_job *j, int err, enum client_stage stage)
{
	j->status = CLIENT_FAILED;
	j->err = err;
	j->stage = stage;
}

static int set_path(char *out, size_t cap, const char *dest,
		    const char *suffix)
{
	int n = snprintf(out, cap, "%s%s", dest, suffix);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static struct request *queue_add(struct getter *g, size_t job)
{
	struct request *r = &g->queue[g->tail++];

	memset(r, 0, sizeof(*r));
	r->job = job;
	return r;
}

/* Queues the GET that fetches job J's bytes, from the start of the range
 * or after the HAVE bytes its part holds, and with --verify the SUM that
 * checks them. */
static void queue_fetch(struct getter *g, size_t job, uint64_t have)
{
	const struct client_get_opts *o = g->opts;
	struct request *r = queue_add(g, job);

	r->offset = o->offset + have;
	r->has_length = o->has_length;
	r->length = o->has_length ? o->length - have : 0;
	if (o->verify)
		queue_add(g, job)->sum = true;
}

/* Request R's line into LINE. Its length, or a negative errno. */
static int format_request(const struct getter *g, const struct request *r,
			  char *line, size_t cap)
{
	const char *path = g->jobs[r->job].path;

	if (r->sum)
		return client_format_sum(line, cap, path);
	return client_format_get(line, cap, path, r->offset, r->has_length,
				 r->length);
}

/* Gives up on resuming job J: its part will be truncated. */
static void start_over(struct client_job *j)
{
	j->resuming = false;
	j->restarted = true;
	j->resumed = 0;
}

/* Decides how job J starts and queues its first request, or fails it. */
static void prepare(struct getter *g, size_t index)
{
	const struct client_get_opts *o = g->opts;
	struct client_job *j = &g->jobs[index];
	char probe_line[FERRY_LINE_MAX + 1];
	struct stat st;
	struct request *r;

	j->status = CLIENT_PENDING;
	/* The longest line this job can need; if it fits, all do (a SUM
	 * line is shorter than this GET). */
	if (client_format_get(probe_line, sizeof(probe_line), j->path,
			      FERRY_NUMBER_MAX, true, FERRY_NUMBER_MAX) < 0) {
		fail(j, -ENAMETOOLONG, CLIENT_STAGE_NET);
		return;
	}
	/* "-o /dev/null" or a FIFO: nothing to rename into place (renaming
	 * over a device would replace it with a file). */
	if (j->dest != NULL && !j->fresh && stat(j->dest, &st) == 0 &&
	    !S_ISREG(st.st_mode) &&
	    !S_ISDIR(st.st_mode)) {
		j->direct = true;
		queue_fetch(g, index, 0);
		return;
	}
	if (j->dest != NULL &&
	    (set_path(j->part, sizeof(j->part), j->dest, ".part") < 0 ||
	     set_path(j->meta, sizeof(j->meta), j->dest, ".part.meta") < 0)) {
		fail(j, -ENAMETOOLONG, CLIENT_STAGE_PART);
		return;
	}
	if (j->dest != NULL && !j->fresh && lstat(j->part, &st) == 0) {
		j->restarted = true;
		/* Continue only what a record vouches for: the same range
		 * start, and no more bytes than the range holds. */
		if (o->resume && S_ISREG(st.st_mode) &&
		    meta_read(j->meta, &j->rec) == 0 &&
		    j->rec.offset == o->offset &&
		    (!o->has_length || (uint64_t)st.st_size <= o->length)) {
			j->restarted = false;
			j->resuming = true;
			j->resumed = (uint64_t)st.st_size;
		}
	}
	if (!j->resuming) {
		queue_fetch(g, index, 0);
		return;
	}
	r = queue_add(g, index);
	r->probe = true;
	r->offset = o->offset + j->resumed;
	r->has_length = true;
	r->length = 0;
}

static void progress_cb(void *arg, uint64_t received)
{
	struct getter *g = arg;

	g->opts->progress(g->opts->arg, g->job, g->base + received, g->total);
}

/* Opens where job J's bytes go, after its OK line: NAME.part, truncated and
 * with a new record when starting over, or continued after the bytes it
 * holds. The part is truncated before the record is written, so a part
 * never holds bytes of another version than its record names. A part that
 * is a symlink is not followed (ELOOP). */
static int open_output(struct client_job *j, const struct client_get_opts *o,
		       int *fd)
{
	struct client_meta m = { j->size, j->mtime, o->offset };
	int rc;

	if (j->dest == NULL) {
		*fd = STDOUT_FILENO;
		return 0;
	}
	if (j->direct) {
		*fd = open(j->dest, O_WRONLY | O_CLOEXEC);
		return *fd < 0 ? -errno : 0;
	}
	if (!j->resuming) {
		*fd = open(j->part,
			   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			   0666);
		if (*fd < 0)
			return -errno;
		/* A small file is fetched again whole: no record, and none
		 * left of another version (in a fresh directory none was
		 * ever there). */
		rc = 0;
		if (j->size >= o->record_min_bytes)
			rc = meta_write(j->meta, &m);
		else if (j->fresh)
			j->no_record = true;
		else if (unlink(j->meta) < 0 && errno != ENOENT)
			rc = -errno;
		if (rc < 0) {
			close(*fd);
			*fd = -1;
			j->stage = CLIENT_STAGE_META;
			return rc;
		}
		return 0;
	}
	*fd = open(j->part, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	if (ftruncate(*fd, (off_t)j->resumed) < 0 ||
	    lseek(*fd, (off_t)j->resumed, SEEK_SET) < 0) {
		rc = -errno;
		close(*fd);
		*fd = -1;
		return rc;
	}
	return 0;
}

/* Makes a complete NAME.part ready to become NAME: the server's MTIME, and
 * on disk unless O syncs the batch at once (batch_sync) or flushes nothing
 * (no_flush). Closes FD. */
static int seal(struct client_job *j, int fd, const struct client_get_opts *o)
{
	struct timespec ts[2] = { { 0, UTIME_NOW }, { (time_t)j->mtime, 0 } };
	int rc = 0;

	if (j->dest == NULL)
		return 0;
	if (j->direct)
		return close(fd) < 0 ? -errno : 0;
	if (futimens(fd, ts) < 0 || (!o->batch_sync && !o->no_flush && fsync(fd) < 0))
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Renames a sealed NAME.part to NAME and removes the record. */
static int install(struct client_job *j)
{
	if (j->dest == NULL || j->direct)
		return 0;
	if (rename(j->part, j->dest) < 0)
		return -errno;
	if (!j->no_record && unlink(j->meta) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Reads and drops LENGTH bytes, keeping the connection in step. */
static int drain(struct client_conn *c, uint64_t length)
{
	uint64_t got;
	bool write_failed;

	return recv_exact(c, -1, NULL, length, &got, &write_failed, NULL,
			  NULL, NULL);
}

/* Renames job J's part to NAME: CLIENT_DONE, or failed. */
static void finish_job(struct client_job *j)
{
	int rc = install(j);

	if (rc < 0)
		fail(j, rc, CLIENT_STAGE_FINISH);
	else
		j->status = CLIENT_DONE;
}

/* With OPTS->batch_sync: one syncfs(2) puts every complete part of the
 * batch on disk, then each becomes NAME. */
static void finish_batch(struct client_job *jobs, size_t n,
			 const struct client_get_opts *opts)
{
	size_t i;
	int rc = 0, fd = -1;

	for (i = 0; i < n; i++) {
		struct client_job *j = &jobs[i];

		if (j->status != CLIENT_PENDING || !j->received_all ||
		    !j->verified)
			continue;
		if (fd < 0 && rc == 0 && j->dest != NULL && !j->direct) {
			fd = open(j->part, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0 || syncfs(fd) < 0)
				rc = -errno;
		}
		if (rc < 0)
			fail(j, rc, CLIENT_STAGE_FINISH);
		else
			finish_job(j);
		if (opts->finished != NULL)
			opts->finished(opts->arg, j);
	}
	if (fd >= 0)
		close(fd);
}

/* The answer to the SUM after job J's fetch: NAME when SUM agrees with
 * what arrived, nothing at all when it does not. 0, 1 or a negative errno
 * as answer(). */
static int answer_sum(struct getter *g, struct client_job *j)
{
	struct proto_sum_reply rep;
	int rc = client_read_sum(g->c, &rep);

	if (rc < 0) {
		if (j->status == CLIENT_PENDING)
			fail(j, rc, rc == -EPROTO ? CLIENT_STAGE_PROTOCOL
						  : CLIENT_STAGE_NET);
		return rc;
	}
	/* The fetch failed or was refused: its SUM says nothing new. */
	if (j->status != CLIENT_PENDING || !j->received_all)
		return !rep.ok && proto_error_closes(rep.code) ? 1 : 0;
	if (!rep.ok) {
		/* The part stays: a later -c finishes it without a refetch. */
		j->status = CLIENT_REFUSED;
		j->code = rep.code;
		snprintf(j->reason, sizeof(j->reason), "SUM: %.250s",
			 rep.reason);
		return proto_error_closes(rep.code) ? 1 : 0;
	}
	memcpy(j->server_sha256, rep.sha256, sizeof(j->server_sha256));
	if (rep.size != j->size || rep.mtime != j->mtime ||
	    memcmp(rep.sha256, j->sha256, sizeof(j->sha256)) != 0) {
		j->status = CLIENT_MISMATCH;
		j->stage = rep.size != j->size || rep.mtime != j->mtime
				   ? CLIENT_STAGE_CHANGED
				   : CLIENT_STAGE_VERIFY;
		if (j->dest != NULL && !j->direct) {
			unlink(j->part);
			unlink(j->meta);
		}
		return 0;
	}
	if (g->opts->batch_sync) {
		j->verified = true;
		return 0;
	}
	finish_job(j);
	return 0;
}

/* With --verify, starts job J's digest: the bytes a resumed part already
 * holds are the one read of the file (FD, open for reading too). */
static int start_hash(struct client_job *j, int fd, EVP_MD_CTX **hash)
{
	int rc = 0;

	*hash = hash_new();
	if (*hash == NULL)
		return -ENOMEM;
	if (j->resumed > 0)
		rc = hash_fd(*hash, fd, j->resumed);
	if (rc < 0) {
		EVP_MD_CTX_free(*hash);
		*hash = NULL;
	}
	return rc;
}

/* Receives the answer to request R. 0 when the connection can go on, 1
 * when the server refused and closed (the rest are refused alike), or a
 * negative errno when the connection is lost or out of step. */
static int answer(struct getter *g, const struct request *r)
{
	struct client_job *j = &g->jobs[r->job];
	const struct client_get_opts *o = g->opts;
	struct proto_reply rep;
	EVP_MD_CTX *hash = NULL;
	bool write_failed = false;
	int fd = -1, rc;

	if (r->sum)
		return answer_sum(g, j);
	rc = client_read_reply(g->c, &rep);
	if (rc < 0) {
		fail(j, rc, rc == -EPROTO ? CLIENT_STAGE_PROTOCOL
					  : CLIENT_STAGE_NET);
		return rc;
	}
	if (!rep.ok) {
		if (r->probe && rep.code == 416) {
			/* The file is now shorter than the part. */
			start_over(j);
			queue_fetch(g, r->job, 0);
			return 0;
		}
		j->status = CLIENT_REFUSED;
		j->code = rep.code;
		snprintf(j->reason, sizeof(j->reason), "%s", rep.reason);
		return proto_error_closes(rep.code) ? 1 : 0;
	}
	if (rep.fields != 3 || (r->has_length && rep.length > r->length)) {
		fail(j, -EPROTO, CLIENT_STAGE_PROTOCOL);
		return -EPROTO;
	}
	if (r->probe) {
		if (rep.size == j->rec.size && rep.mtime == j->rec.mtime) {
			queue_fetch(g, r->job, j->resumed);
		} else {
			start_over(j);
			queue_fetch(g, r->job, 0);
		}
		return 0;
	}
	if (j->resuming && (rep.size != j->rec.size ||
			    rep.mtime != j->rec.mtime)) {
		/* Changed between the probe and now: splice nothing. */
		rc = drain(g->c, rep.length);
		fail(j, rc < 0 ? rc : -ESTALE,
		     rc < 0 ? CLIENT_STAGE_NET : CLIENT_STAGE_CHANGED);
		return rc;
	}
	j->size = rep.size;
	j->mtime = rep.mtime;
	j->length = rep.length;

	j->stage = CLIENT_STAGE_PART;
	rc = open_output(j, o, &fd);
	if (rc == 0 && o->verify) {
		rc = start_hash(j, fd, &hash);
		if (rc < 0 && j->dest != NULL)
			close(fd);
	}
	if (rc < 0) {
		fail(j, rc, j->stage);
		/* One file that cannot be written; the others still can. */
		rc = drain(g->c, rep.length);
		return rc;
	}
	g->job = j;
	g->base = j->resumed;
	g->total = j->resumed + rep.length;
	rc = recv_exact(g->c, fd, NULL, rep.length, &j->received,
			&write_failed, hash,
			o->progress != NULL ? progress_cb : NULL, g);
	if (rc < 0) {
		if (hash != NULL)
			EVP_MD_CTX_free(hash);
		if (j->dest != NULL)
			close(fd);
		if (write_failed)
			fail(j, rc, CLIENT_STAGE_PART);
		else
			fail(j, rc, rc == -ECONNRESET ? CLIENT_STAGE_SHORT
						      : CLIENT_STAGE_NET);
		return rc;
	}
	if (hash != NULL && hash_end(hash, j->sha256) < 0) {
		fail(j, -ENOMEM, CLIENT_STAGE_PART);
		seal(j, fd, o);
		return 0;
	}
	rc = seal(j, fd, o);
	if (rc == 0 && !o->verify && !o->batch_sync)
		rc = install(j);
	if (rc < 0) {
		fail(j, rc, CLIENT_STAGE_FINISH);
		return 0;
	}
	if (o->verify || o->batch_sync) {
		/* NAME waits for the SUM, or for the batch's sync. */
		j->received_all = true;
		j->verified = !o->verify;
	} else {
		j->status = CLIENT_DONE;
	}
	return 0;
}

int client_get(struct client_conn *c, struct client_job *jobs, size_t n,
	       const struct client_get_opts *opts)
{
	struct getter g;
	char line[FERRY_LINE_MAX + 1];
	size_t head = 0, sent = 0, ahead = 0, i;
	int rc = 0, send_rc = 0;

	memset(&g, 0, sizeof(g));
	g.c = c;
	g.jobs = jobs;
	g.opts = opts;
	g.queue = calloc(3 * n + 1, sizeof(*g.queue));
	if (g.queue == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		prepare(&g, i);

	while (head < g.tail) {
		struct request *r;
		struct client_job *j;
		bool was_pending;

		/* Send ahead what the window allows, and always the request
		 * whose answer comes next. */
		while (send_rc == 0 && sent < g.tail) {
			int len;

			r = &g.queue[sent];
			len = format_request(&g, r, line, sizeof(line));
			if (len < 0) { /* prepare() ruled this out */
				send_rc = len;
				break;
			}
			if (sent > head &&
			    ahead + (size_t)len > FERRY_PIPELINE_BYTES)
				break;
			send_rc = client_send(c, line, (size_t)len);
			if (send_rc < 0)
				break;
			r->line_len = (size_t)len;
			ahead += r->line_len;
			sent++;
		}
		/* A failed send does not lose the answers already owed: a
		 * server that refused and closed has said why. */
		if (head == sent) {
			rc = send_rc;
			j = &jobs[g.queue[head].job];
			if (j->status == CLIENT_PENDING) {
				fail(j, rc, CLIENT_STAGE_NET);
				if (opts->finished != NULL)
					opts->finished(opts->arg, j);
			}
			break;
		}
		r = &g.queue[head++];
		ahead -= r->line_len;
		j = &jobs[r->job];
		was_pending = j->status == CLIENT_PENDING;
		rc = answer(&g, r);
		if (was_pending && j->status != CLIENT_PENDING && opts->finished != NULL)
			opts->finished(opts->arg, j);
		if (rc != 0)
			break;
	}

	if (opts->batch_sync)
		finish_batch(jobs, n, opts);

	/* The connection ended early: what is left shares the cause. */
	for (i = head; i < g.tail && rc != 0; i++) {
		struct client_job *j = &jobs[g.queue[i].job];

		if (j->status != CLIENT_PENDING)
			continue;
		if (rc > 0) {
			const struct client_job *first =
				&jobs[g.queue[head - 1].job];

			j->status = CLIENT_REFUSED;
			j->code = first->code;
			/* FIRST is refused already, so never J. */
			memcpy(j->reason, first->reason, sizeof(j->reason));
		} else {
			fail(j, rc, CLIENT_STAGE_ABORTED);
		}
		if (opts->finished != NULL)
			opts->finished(opts->arg, j);
	}
	free(g.queue);
	return 0;
}

int client_output_name(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;

	if (name[0] == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	if (strlen(name) >= cap)
		return -ENAMETOOLONG;
	strcpy(out, name);
	return 0;
}

/* ---- text --------------------------------------------------------------- */

int client_format_duration(char *buf, size_t cap, double seconds)
{
	uint64_t s, h;

	if (!(seconds >= 0) || seconds > 1e9)
		return snprintf(buf, cap, "--:--");
	s = (uint64_t)(seconds + 0.5);
	h = s / 3600;
	if (h > 0)
		return snprintf(buf, cap, "%" PRIu64 ":%02u:%02u", h,
				(unsigned)(s / 60 % 60), (unsigned)(s % 60));
	return snprintf(buf, cap, "%u:%02u", (unsigned)(s / 60),
			(unsigned)(s % 60));
}

int client_format_progress(char *buf, size_t cap, const char *name,
			   uint64_t done, uint64_t total, uint64_t run_bytes,
			   double elapsed_s)
{
	char done_s[32], total_s[32], eta_s[32];
	double rate_bps = elapsed_s > 0 ? (double)run_bytes / elapsed_s : 0;
	unsigned percent;

	if (done > total)
		done = total;
	percent = total > 0 ? (unsigned)((double)done * 100.0 / (double)total)
			    : 100;
	units_format_bytes(done_s, sizeof(done_s), done);
	units_format_bytes(total_s, sizeof(total_s), total);
	client_format_duration(eta_s, sizeof(eta_s),
			       rate_bps > 0 ? (double)(total - done) / rate_bps
					    : -1);
	return snprintf(buf, cap, "%s  %s / %s  %3u%%  %.1f MiB/s  ETA %s",
			name, done_s, total_s, percent, rate_bps / MIB, eta_s);
}

int client_format_summary(char *buf, size_t cap, const char *label,
			  uint64_t bytes, double elapsed_s)
{
	/* A fetch faster than the clock resolution still gets a rate. */
	double rate_s = elapsed_s > 1e-6 ? elapsed_s : 1e-6;

	return snprintf(buf, cap, "%s: %" PRIu64 " bytes in %.2f s, %.2f MiB/s",
			label, bytes, elapsed_s, (double)bytes / rate_s / MIB);
}

void client_format_name(char *buf, size_t cap, const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t n = 0;

	/* A name must not move the cursor or ring the terminal's bell. */
	for (; *s != '\0' && n + 4 <= cap; s++) {
		if (*s < 0x20 || *s == 0x7f)
			n += (size_t)snprintf(buf + n, cap - n, "%%%02X", *s);
		else
			buf[n++] = (char)*s;
	}
	buf[n] = '\0';
}

int client_format_entry(char *buf, size_t cap, const struct proto_entry *e)
{
	char size[32], date[32], name[3 * FERRY_LINE_MAX + 1];
	time_t t = (time_t)e->mtime;
	struct tm tm;

	if (e->type == 'd')
		snprintf(size, sizeof(size), "-");
	else
		units_format_bytes(size, sizeof(size), e->size);
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(date, sizeof(date), "%" PRId64, e->mtime);
	client_format_name(name, sizeof(name), e->name);
	return snprintf(buf, cap, "%c %10s  %s  %s", e->type, size, date,
			name);
}
