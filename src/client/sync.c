/* ferry sync (sync.h): walk, plan, fetch workers, delete, summary.
 *
 * Names. Every name a listing holds is checked before it is used (no '/',
 * not "." or "..", not empty; a listing must be sorted and repeat no name,
 * as ferryd's is), so every local path is LOCAL_DIR, then names the server
 * gave that passed, joined by '/'. Each local directory on the way is
 * lstat'ed and must be a real directory (sync makes it, or refuses), so no
 * local symlink leads a write or a deletion out of LOCAL_DIR; a symlink
 * where the server has a file is replaced, never followed.
 *
 * Printing. Only the "report" functions at the end of this file print
 * (STYLE.md); the rest count and record, and call them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "client/sync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/array.h"
#include "client/rate.h"
#include "client/report.h"

/* A worker takes at most this many files, or this many bytes, at once: few
 * enough that the workers share big files fairly, enough to keep each
 * connection's pipeline full of small ones. */
#define BATCH_FILES 64
#define BATCH_BYTES (8ULL * 1024 * 1024)
/* A part of a smaller file has no record: cut off, it is fetched again
 * whole, which costs less than writing and removing a record for each. */
#define SYNC_RECORD_MIN_BYTES (1024 * 1024)
/* Failed files are listed one by one up to this many. */
#define REPORT_MAX 20
#define PROGRESS_INTERVAL_MS 100

/* One entry of a server's directory. */
struct entry {
	char *name;
	char type; /* 'f' or 'd' */
	uint64_t size;
	int64_t mtime;
};

/* A directory the server listed: REL is its path below REMOTE_DIR ("" for
 * REMOTE_DIR itself), V its entries in the server's (strcmp) order. */
struct dir {
	char *rel;
	struct entry *v;
	size_t n;
	bool listed; /* the server answered its LIST */
	bool usable; /* listed, and the local directory is a real one (or
		      * dry-run) */
	bool made;   /* this run made the local directory: it holds nothing */
};

/* A file to fetch. */
struct fetch {
	char *path; /* the server's path */
	char *dest; /* the local path */
	uint64_t size;
	bool fresh; /* in a directory this run made: no NAME, part or record */
};

/* One run. Workers share it; LOCK guards the counters below it. */
struct run {
	const struct sync_opts *o;
	char remote[FERRY_LINE_MAX];  /* REMOTE_DIR without trailing '/' */
	struct dir *dirs;
	size_t ndirs, cap_dirs;
	struct fetch *fetch;
	size_t nfetch, cap_fetch;
	uint64_t fetch_bytes;
	size_t up_to_date;
	int code; /* the worst exit code so far */
	struct rate_limit rate;
	bool tty;
	int64_t start_ms;

	pthread_mutex_t lock;
	size_t next;                 /* the first fetch no worker took */
	size_t fetched, deleted;
	uint64_t bytes_done;         /* of fetch_bytes, resumed parts too */
	uint64_t run_bytes;          /* received by this run */
	struct client_job *failed;   /* copies of the files that failed */
	size_t nfailed, cap_failed;
	int64_t drawn_ms;
	bool drawn;
};

struct worker {
	struct run *run;
	pthread_t thread;
	struct client_conn conn;
	const struct client_job *job; /* the one progress last saw */
	uint64_t job_done;
	int connect_rc;
};

static void report_error(struct run *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report_plan(struct run *r, const char *verb, const char *rel,
			const char *suffix);
static void report_progress_line(struct run *r, bool force);
static void report_failures(struct run *r);
static void report_summary(struct run *r);

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void worse(struct run *r, int code)
{
	if (code > r->code)
		r->code = code;
}

/* "A/B": A, then B when A is not empty (or B alone). malloc'd. */
static char *join(const char *a, const char *b)
{
	char *s;

	if (a[0] == '\0')
		return strdup(b);
	if (b[0] == '\0')
		return strdup(a);
	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

/* Whether a listing's NAME may become a local name. */
static bool name_ok(const char *name)
{
	return name[0] != '\0' && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0 && strchr(name, '/') == NULL;
}

/* ---- walk ---------------------------------------------------------------- */

/* Parses LIST's body into D's entries, checking every name. 0, -EPROTO
 * for a line that is not an entry, -EBADMSG for a name sync refuses or a
 * listing out of order. */
static int parse_listing(struct dir *d, char *body, size_t len)
{
	struct proto_entry *ent = malloc(sizeof(*ent));
	size_t cap = 0;
	char *line, *end;
	int rc = 0;

	if (ent == NULL)
		return -ENOMEM;
	for (line = body; line < body + len; line = end + 1) {
		struct entry *e;

		end = memchr(line, '\n', (size_t)(body + len - line));
		if (end == NULL ||
		    proto_parse_entry(line, (size_t)(end - line), ent) < 0) {
			rc = -EPROTO;
			break;
		}
		if (!name_ok(ent->name) ||
		    (d->n > 0 && strcmp(d->v[d->n - 1].name, ent->name) >= 0)) {
			rc = -EBADMSG;
			break;
		}
		rc = array_reserve((void **)&d->v, &cap, d->n, sizeof(*d->v));
		if (rc < 0)
			break;
		e = &d->v[d->n];
		e->name = strdup(ent->name);
		if (e->name == NULL) {
			rc = -ENOMEM;
			break;
		}
		e->type = ent->type;
		e->size = ent->size;
		e->mtime = ent->mtime;
		d->n++;
	}
	free(ent);
	return rc;
}

/* The server's path of REL ("" is REMOTE_DIR). malloc'd. */
static char *remote_path(const struct run *r, const char *rel)
{
	char *s;

	if (asprintf(&s, "%s/%s", r->remote, rel) < 0)
		return NULL;
	return s;
}

/* Lists every directory of the tree, breadth first, into R->dirs. An exit
 * code: 0, or what the failure calls for (reported). */
static int walk(struct run *r, struct client_conn *c)
{
	size_t i, k;

	if (array_reserve((void **)&r->dirs, &r->cap_dirs, 0, sizeof(*r->dirs)) < 0)
		return FERRY_EXIT_FAILED;
	memset(&r->dirs[0], 0, sizeof(r->dirs[0]));
	r->dirs[0].rel = strdup("");
	if (r->dirs[0].rel == NULL)
		return FERRY_EXIT_FAILED;
	r->ndirs = 1;
	for (i = 0; i < r->ndirs; i++) {
		struct proto_reply rep;
		char *path = remote_path(r, r->dirs[i].rel), *body = NULL;
		size_t len = 0;
		int rc;

		if (path == NULL)
			return FERRY_EXIT_FAILED;
		rc = client_list(c, path, &rep, &body, &len);
		if (rc == 0 && !rep.ok) {
			report_error(r, FERRY_EXIT_REFUSED,
				     "%s: the server refused the listing: %d %s",
				     path, rep.code, rep.reason);
			free(path);
			if (i == 0 || proto_error_closes(rep.code))
				return FERRY_EXIT_REFUSED;
			continue;
		}
		if (rc == 0)
			rc = parse_listing(&r->dirs[i], body, len);
		r->dirs[i].listed = rc == 0;
		free(body);
		if (rc < 0) {
			report_error(r, FERRY_EXIT_FAILED, "listing %s: %s", path,
				     rc == -ECONNRESET
					     ? "the server closed the connection"
				     : rc == -EPROTO
					     ? "the reply is not in the ferry "
					       "protocol"
				     : rc == -EBADMSG
					     ? "the listing holds a name sync "
					       "refuses ('/', '.', '..', or "
					       "out of order)"
					     : strerror(-rc));
			free(path);
			return FERRY_EXIT_FAILED;
		}
		free(path);
		for (k = 0; k < r->dirs[i].n; k++) {
			const struct entry *e = &r->dirs[i].v[k];
			struct dir *sub;

			if (e->type != 'd')
				continue;
			if (array_reserve((void **)&r->dirs, &r->cap_dirs, r->ndirs,
				 sizeof(*r->dirs)) < 0)
				return FERRY_EXIT_FAILED;
			sub = &r->dirs[r->ndirs];
			memset(sub, 0, sizeof(*sub));
			/* R->dirs may have moved: index again. */
			sub->rel = join(r->dirs[i].rel, r->dirs[i].v[k].name);
			if (sub->rel == NULL)
				return FERRY_EXIT_FAILED;
			r->ndirs++;
		}
	}
	return 0;
}

/* ---- plan ---------------------------------------------------------------- */

static char *local_path(const struct run *r, const char *rel)
{
	return join(r->o->local_dir, rel);
}

/* Removes what is below the directory NAME of DIRFD that is not hidden,
 * then NAME itself if that left it empty; symlinks are removed, never
 * followed. Counts files in *FILES. 0 or -errno. */
static int remove_tree(int dirfd, const char *name, size_t *files)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	struct dirent *de;
	DIR *dir;
	int rc = 0;

	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (dir == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		else if (S_ISDIR(st.st_mode))
			rc = remove_tree(fd, de->d_name, files);
		else if (unlinkat(fd, de->d_name, 0) < 0)
			rc = -errno;
		else
			(*files)++;
	}
	closedir(dir);
	if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 &&
	    errno != ENOTEMPTY && errno != EEXIST)
		rc = -errno;
	return rc;
}

/* Removes the local PATH (not a directory sync may keep) so the server's
 * entry can take its place. */
static int remove_path(const char *path, const struct stat *st, size_t *files)
{
	if (S_ISDIR(st->st_mode))
		return remove_tree(AT_FDCWD, path, files);
	if (unlink(path) < 0)
		return -errno;
	return 0;
}

/* Makes directory D locally (or says it would), or finds it there. */
static void plan_dir(struct run *r, struct dir *d, bool parent_usable)
{
	char *path;
	struct stat st;
	size_t removed = 0;
	int rc = 0;

	d->usable = false;
	if (!parent_usable || !d->listed)
		return;
	path = local_path(r, d->rel);
	if (path == NULL) {
		worse(r, FERRY_EXIT_FAILED);
		return;
	}
	rc = lstat(path, &st) < 0 ? -errno : 0;
	if (rc == 0 && S_ISDIR(st.st_mode)) {
		d->usable = true;
		goto out;
	}
	if (r->o->dry_run) {
		/* What a run would make, the plan shows; and in it. */
		report_plan(r, "mkdir", d->rel, "/");
		d->usable = true;
		goto out;
	}
	if (rc == 0) {
		/* A file or a symlink where the server has a directory. */
		if (!r->o->delete_extra) {
			report_error(r, FERRY_EXIT_FAILED,
				     "%s is not a directory but the server's "
				     "%s is one; not synced (--delete "
				     "replaces it)",
				     path, d->rel);
			goto out;
		}
		rc = remove_path(path, &st, &removed);
		r->deleted += removed;
	} else if (rc == -ENOENT) {
		rc = 0;
	}
	if (rc == 0 && mkdir(path, 0777) < 0)
		rc = -errno;
	if (rc < 0) {
		report_error(r, FERRY_EXIT_FAILED, "cannot create %s: %s", path,
			     strerror(-rc));
		goto out;
	}
	d->usable = true;
	d->made = true;
out:
	free(path);
}

/* Whether the local regular file at PATH has the server's SHA-256 for
 * REMOTE (asked over C). 1 yes, 0 no, or a negative errno (the connection
 * failed: -ECONNRESET and the like; a SUM refused: -EACCES, with the
 * answer in *REP). */
static int same_digest(struct client_conn *c, const char *remote,
		       const char *path, const struct entry *e,
		       struct proto_sum_reply *rep)
{
	unsigned char local[FERRY_SHA256_BYTES];
	char line[FERRY_LINE_MAX + 1];
	int n = client_format_sum(line, sizeof(line), remote), rc;

	if (n < 0)
		return n;
	rc = client_send(c, line, (size_t)n);
	if (rc == 0)
		rc = client_read_sum(c, rep);
	if (rc < 0)
		return rc;
	if (!rep->ok)
		return -EACCES;
	if (rep->size != e->size || rep->mtime != e->mtime)
		return 0; /* changed since the listing: fetch it */
	if (client_sha256_file(path, local) < 0)
		return 0;
	return memcmp(local, rep->sha256, sizeof(local)) == 0;
}

/* Adds file E of directory D to what the workers fetch. */
static int add_fetch(struct run *r, const struct dir *d, const char *rel,
		     const struct entry *e)
{
	struct fetch *f;
	int rc = array_reserve((void **)&r->fetch, &r->cap_fetch, r->nfetch,
		      sizeof(*r->fetch));

	if (rc < 0)
		return rc;
	f = &r->fetch[r->nfetch];
	f->path = remote_path(r, rel);
	f->dest = local_path(r, rel);
	f->size = e->size;
	f->fresh = d->made;
	if (f->path == NULL || f->dest == NULL) {
		free(f->path);
		free(f->dest);
		return -ENOMEM;
	}
	r->nfetch++;
	r->fetch_bytes += e->size;
	return 0;
}

/* Decides what becomes of file E of D. C serves --checksum's SUMs. */
static int plan_file(struct run *r, struct client_conn *c, const struct dir *d,
		     const struct entry *e)
{
	char *rel = join(d->rel, e->name), *path = NULL, *remote = NULL;
	struct proto_sum_reply sum;
	struct stat st;
	size_t removed = 0;
	bool fetch = true;
	int rc = 0;

	if (rel == NULL)
		return -ENOMEM;
	path = local_path(r, rel);
	if (path == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (d->made || lstat(path, &st) < 0) {
		fetch = true;
	} else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != e->size) {
		fetch = true;
	} else if (S_ISREG(st.st_mode) && r->o->checksum) {
		remote = remote_path(r, rel);
		rc = remote == NULL ? -ENOMEM
				    : same_digest(c, remote, path, e, &sum);
		if (rc == -EACCES) {
			report_error(r, FERRY_EXIT_REFUSED,
				     "%s: the server refused SUM: %d %s",
				     remote, sum.code, sum.reason);
			/* The rest would be refused alike. */
			rc = proto_error_closes(sum.code) ? -ECONNABORTED : 0;
			goto out;
		}
		if (rc < 0)
			goto out;
		fetch = rc == 0;
		rc = 0;
		if (!fetch && st.st_mtime != e->mtime && !r->o->dry_run) {
			/* Same bytes: only the time differs. */
			struct timespec ts[2] = { { 0, UTIME_OMIT },
						  { (time_t)e->mtime, 0 } };

			utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
		}
	} else if (S_ISREG(st.st_mode)) {
		fetch = st.st_mtime != e->mtime;
	} else if (S_ISDIR(st.st_mode) && !r->o->delete_extra) {
		report_error(r, FERRY_EXIT_FAILED,
			     "%s is a directory but the server's %s is a "
			     "file; not synced (--delete replaces it)",
			     path, rel);
		goto out;
	} else if (!r->o->dry_run) {
		/* A symlink, a FIFO, a device or (with --delete) a directory
		 * where the server has a file: removed, never written
		 * through. */
		rc = remove_path(path, &st, &removed);
		r->deleted += removed;
		if (rc < 0) {
			report_error(r, FERRY_EXIT_FAILED,
				     "cannot replace %s: %s", path,
				     strerror(-rc));
			rc = 0;
			goto out;
		}
	}
	if (!fetch) {
		r->up_to_date++;
		goto out;
	}
	if (r->o->dry_run)
		report_plan(r, "fetch", rel, "");
	rc = add_fetch(r, d, rel, e);
out:
	free(remote);
	free(path);
	free(rel);
	return rc;
}

/* Makes the directories and lists what to fetch. An exit code, as walk. */
static int plan(struct run *r, struct client_conn *c)
{
	size_t i, k, p = 0;

	for (i = 0; i < r->ndirs; i++) {
		struct dir *d = &r->dirs[i];
		bool parent = true;

		/* Breadth first: the parent is an earlier dir. */
		if (i > 0) {
			const char *slash = strrchr(d->rel, '/');
			size_t plen = slash != NULL ? (size_t)(slash - d->rel)
						    : 0;

			while (strlen(r->dirs[p].rel) != plen ||
			       strncmp(r->dirs[p].rel, d->rel, plen) != 0)
				p++;
			parent = r->dirs[p].usable;
		}
		plan_dir(r, d, parent);
		if (!d->usable)
			continue;
		for (k = 0; k < d->n; k++) {
			int rc;

			if (d->v[k].type != 'f')
				continue;
			rc = plan_file(r, c, d, &d->v[k]);
			if (rc == -ECONNABORTED)
				return FERRY_EXIT_REFUSED;
			if (rc < 0) {
				report_error(r, FERRY_EXIT_FAILED,
					     "planning %s/%s: %s", d->rel,
					     d->v[k].name,
					     rc == -ECONNRESET
						     ? "the server closed the "
						       "connection"
						     : strerror(-rc));
				return FERRY_EXIT_FAILED;
			}
		}
	}
	return 0;
}

/* ---- fetch workers ------------------------------------------------------ */

static void progress_cb(void *arg, const struct client_job *job,
			uint64_t done, uint64_t total)
{
	struct worker *w = arg;
	struct run *r = w->run;

	(void)total;
	pthread_mutex_lock(&r->lock);
	if (w->job != job) {
		/* A resumed part counts as done, not as received. */
		w->job = job;
		w->job_done = job->resumed;
		r->bytes_done += job->resumed;
	}
	r->bytes_done += done - w->job_done;
	r->run_bytes += done - w->job_done;
	w->job_done = done;
	report_progress_line(r, false);
	pthread_mutex_unlock(&r->lock);
}

static void finished_cb(void *arg, const struct client_job *job)
{
	struct worker *w = arg;
	struct run *r = w->run;

	pthread_mutex_lock(&r->lock);
	if (job->status == CLIENT_DONE) {
		r->fetched++;
	} else if (array_reserve((void **)&r->failed, &r->cap_failed, r->nfailed,
			sizeof(*r->failed)) == 0) {
		r->failed[r->nfailed++] = *job;
	}
	report_progress_line(r, false);
	pthread_mutex_unlock(&r->lock);
}

/* Whether job J's ending leaves its connection unusable. */
static bool conn_lost(const struct client_job *j)
{
	if (j->status == CLIENT_REFUSED)
		return proto_error_closes(j->code);
	return j->status == CLIENT_FAILED &&
	       (j->stage == CLIENT_STAGE_NET || j->stage == CLIENT_STAGE_SHORT ||
		j->stage == CLIENT_STAGE_PROTOCOL ||
		j->stage == CLIENT_STAGE_ABORTED);
}

/* Takes the next batch: [*FIRST, *FIRST + return). */
static size_t take_batch(struct run *r, size_t *first)
{
	uint64_t bytes = 0;
	size_t n = 0;

	pthread_mutex_lock(&r->lock);
	*first = r->next;
	while (r->next < r->nfetch && n < BATCH_FILES &&
	       (n == 0 || bytes + r->fetch[r->next].size <= BATCH_BYTES)) {
		bytes += r->fetch[r->next].size;
		r->next++;
		n++;
	}
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	struct client_get_opts opts;
	struct client_job *jobs;
	size_t first, n, i;
	bool lost = false;

	jobs = calloc(BATCH_FILES, sizeof(*jobs));
	if (jobs == NULL) {
		w->connect_rc = -ENOMEM;
		return NULL;
	}
	w->connect_rc = client_connect(&w->conn, &r->o->target,
				       FERRY_CONNECT_TIMEOUT_MS);
	if (w->connect_rc < 0) {
		free(jobs);
		return NULL;
	}
	w->conn.rate = &r->rate;
	memset(&opts, 0, sizeof(opts));
	opts.resume = true;
	opts.verify = r->o->verify;
	opts.record_min_bytes = SYNC_RECORD_MIN_BYTES;
	opts.batch_sync = r->o->fsync;
	opts.no_flush = !r->o->fsync;
	opts.progress = progress_cb;
	opts.finished = finished_cb;
	opts.arg = w;
	while (!lost && (n = take_batch(r, &first)) > 0) {
		memset(jobs, 0, n * sizeof(*jobs));
		/* The same slots hold new files: progress starts afresh. */
		w->job = NULL;
		for (i = 0; i < n; i++) {
			jobs[i].path = r->fetch[first + i].path;
			jobs[i].dest = r->fetch[first + i].dest;
			jobs[i].fresh = r->fetch[first + i].fresh;
		}
		if (client_get(&w->conn, jobs, n, &opts) < 0) {
			lost = true;
			break;
		}
		for (i = 0; i < n; i++)
			lost |= conn_lost(&jobs[i]);
	}
	client_close(&w->conn);
	free(jobs);
	return NULL;
}

/* Runs the workers until every file is fetched or every worker lost its
 * connection. */
static void fetch_all(struct run *r)
{
	unsigned n = r->o->jobs, i, started = 0;
	struct worker *w;

	if (r->nfetch == 0)
		return;
	if (n > r->nfetch)
		n = (unsigned)r->nfetch;
	w = calloc(n, sizeof(*w));
	if (w == NULL) {
		report_error(r, FERRY_EXIT_FAILED, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		w[i].run = r;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	for (i = 0; i < started; i++) {
		if (w[i].connect_rc < 0) {
			worse(r, report_connect(&r->o->target, &w[i].conn,
						w[i].connect_rc));
			break; /* once is enough */
		}
	}
	if (started == 0)
		report_error(r, FERRY_EXIT_FAILED, "cannot start a worker");
	free(w);
}

/* ---- delete ------------------------------------------------------------- */

static int by_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct entry *)elem)->name);
}

/* Whether local NAME in D is to be kept: the server lists it, or it is
 * the part or the record of a file the server lists. Hidden names are
 * never sync's (the server lists none). */
static bool keep(const struct dir *d, const char *name)
{
	static const char *const suffixes[] = { ".part", ".part.meta" };
	const struct entry *e;
	size_t i, len = strlen(name);

	if (name[0] == '.' ||
	    (d->n > 0 &&
	     bsearch(name, d->v, d->n, sizeof(*d->v), by_name) != NULL))
		return true;
	for (i = 0; i < 2; i++) {
		size_t sl = strlen(suffixes[i]);
		char *base;

		if (len <= sl || strcmp(name + len - sl, suffixes[i]) != 0)
			continue;
		base = strndup(name, len - sl);
		if (base == NULL)
			return true;
		e = d->n > 0 ? bsearch(base, d->v, d->n, sizeof(*d->v), by_name)
			     : NULL;
		free(base);
		if (e != NULL && e->type == 'f')
			return true;
	}
	return false;
}

/* Removes (or, dry, names) what local directory D holds that the server
 * does not list. */
static void delete_extra(struct run *r, const struct dir *d)
{
	char *path = local_path(r, d->rel), *rel;
	struct dirent *de;
	DIR *dir;
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		if (errno != ENOENT || !r->o->dry_run)
			report_error(r, FERRY_EXIT_FAILED, "reading %s: %s",
				     path, strerror(errno));
		free(path);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;
		size_t files = 0;
		int rc = 0;

		if (keep(d, de->d_name))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		rel = join(d->rel, de->d_name);
		if (r->o->dry_run) {
			report_plan(r, "delete", rel != NULL ? rel : de->d_name,
				    S_ISDIR(st.st_mode) ? "/" : "");
			files = 1;
		} else if (S_ISDIR(st.st_mode))
			rc = remove_tree(fd, de->d_name, &files);
		else if (unlinkat(fd, de->d_name, 0) < 0)
			rc = -errno;
		else
			files = 1;
		r->deleted += files;
		if (rc < 0)
			report_error(r, FERRY_EXIT_FAILED, "deleting %s/%s: %s",
				     path, de->d_name, strerror(-rc));
		free(rel);
	}
	closedir(dir);
	free(path);
}

/* ---- the run ------------------------------------------------------------ */

static void free_run(struct run *r)
{
	size_t i, k;

	for (i = 0; i < r->ndirs; i++) {
		for (k = 0; k < r->dirs[i].n; k++)
			free(r->dirs[i].v[k].name);
		free(r->dirs[i].v);
		free(r->dirs[i].rel);
	}
	free(r->dirs);
	for (i = 0; i < r->nfetch; i++) {
		free(r->fetch[i].path);
		free(r->fetch[i].dest);
	}
	free(r->fetch);
	free(r->failed);
	rate_destroy(&r->rate);
	pthread_mutex_destroy(&r->lock);
}

int sync_run(const struct sync_opts *o)
{
	struct client_conn c;
	struct run r;
	size_t len, i;
	int rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.start_ms = now_ms();
	r.tty = !o->quiet && !o->dry_run && isatty(STDERR_FILENO);
	pthread_mutex_init(&r.lock, NULL);
	if (rate_init(&r.rate, o->rate_bps) < 0) {
		pthread_mutex_destroy(&r.lock);
		return FERRY_EXIT_FAILED;
	}
	len = strlen(o->remote_dir);
	while (len > 0 && o->remote_dir[len - 1] == '/')
		len--;
	snprintf(r.remote, sizeof(r.remote), "%.*s", (int)len, o->remote_dir);

	rc = client_connect(&c, &o->target, FERRY_CONNECT_TIMEOUT_MS);
	if (rc < 0) {
		worse(&r, report_connect(&o->target, &c, rc));
		goto out;
	}
	c.rate = &r.rate;
	rc = walk(&r, &c);
	if (rc == 0)
		rc = plan(&r, &c);
	client_close(&c);
	worse(&r, rc);
	if (rc != 0)
		goto out;
	if (!o->dry_run)
		fetch_all(&r);
	/* Deleting needs the whole listing, which the walk got. */
	for (i = 0; o->delete_extra && i < r.ndirs; i++)
		if (r.dirs[i].usable)
			delete_extra(&r, &r.dirs[i]);
	report_failures(&r);
	report_summary(&r);
out:
	rc = r.code;
	free_run(&r);
	return rc;
}

/* ---- report: the only functions here that print -------------------------- */

static void report_error(struct run *r, int code, const char *fmt, ...)
{
	va_list ap;
	char name[3 * 4096 + 1];

	worse(r, code);
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	if (r->drawn)
		report_progress_clear();
	r->drawn = false;
	fprintf(stderr, "ferry: %s\n", name);
}

/* One line of --dry-run's plan on stdout: "fetch sub/a.bin". */
static void report_plan(struct run *r, const char *verb, const char *rel,
			const char *suffix)
{
	char name[3 * 4096 + 1];

	(void)r;
	client_format_name(name, sizeof(name), rel);
	printf("%s %s%s\n", verb, name, suffix);
}

/* Redraws the whole tree's progress line, at most every 100 ms unless
 * FORCE. Called locked. */
static void report_progress_line(struct run *r, bool force)
{
	int64_t now = now_ms();
	char label[64], line[256];

	if (!r->tty || (!force && r->drawn &&
			now - r->drawn_ms < PROGRESS_INTERVAL_MS))
		return;
	snprintf(label, sizeof(label), "%zu/%zu files", r->fetched,
		 r->nfetch);
	client_format_progress(line, sizeof(line), label, r->bytes_done,
			       r->fetch_bytes, r->run_bytes,
			       (double)(now - r->start_ms) / 1000.0);
	report_progress(line);
	r->drawn = true;
	r->drawn_ms = now;
}

static int by_dest(const void *a, const void *b)
{
	return strcmp(((const struct client_job *)a)->dest,
		      ((const struct client_job *)b)->dest);
}

/* Every file that did not arrive: the first REPORT_MAX by name, then how
 * many more; those a lost connection took along and those no worker
 * reached, as one line each. */
static void report_failures(struct run *r)
{
	size_t i, listed = 0, aborted = 0;
	size_t unreached = r->o->dry_run ? 0
					 : r->nfetch - r->fetched - r->nfailed;

	if (r->drawn)
		report_progress_clear();
	r->drawn = false;
	if (r->nfailed > 1) /* qsort's base must not be NULL, even for 0 */
		qsort(r->failed, r->nfailed, sizeof(*r->failed), by_dest);
	for (i = 0; i < r->nfailed; i++) {
		const struct client_job *j = &r->failed[i];

		if (j->status == CLIENT_FAILED &&
		    j->stage == CLIENT_STAGE_ABORTED) {
			aborted++;
			worse(r, FERRY_EXIT_FAILED);
		} else if (listed++ < REPORT_MAX) {
			worse(r, report_job(j, true, true, "run ferry sync again"));
		} else {
			worse(r, j->status == CLIENT_MISMATCH
					 ? FERRY_EXIT_VERIFY
				 : j->status == CLIENT_REFUSED
					 ? FERRY_EXIT_REFUSED
					 : FERRY_EXIT_FAILED);
		}
	}
	if (listed > REPORT_MAX)
		fprintf(stderr, "ferry: ... and %zu more files not synced\n",
			listed - REPORT_MAX);
	if (aborted + unreached > 0) {
		fprintf(stderr, "ferry: %zu files not fetched: their connection "
				"failed; run ferry sync again to finish\n",
			aborted + unreached);
		worse(r, FERRY_EXIT_FAILED);
	}
}

/* "sync: 3004 fetched, 0 up to date, 0 deleted: 8912 bytes in ..." */
static void report_summary(struct run *r)
{
	char label[160], line[320];

	if (r->o->quiet)
		return;
	snprintf(label, sizeof(label),
		 "sync: %zu %s, %zu up to date, %zu %s",
		 r->o->dry_run ? r->nfetch : r->fetched,
		 r->o->dry_run ? "to fetch" : "fetched", r->up_to_date,
		 r->deleted, r->o->dry_run ? "to delete" : "deleted");
	client_format_summary(line, sizeof(line), label, r->run_bytes,
			      (double)(now_ms() - r->start_ms) / 1000.0);
	fprintf(stderr, "%s\n", line);
}
