/* The counters behind GET /metrics and their text exposition: see
 * metrics.h. */
#include "daemon/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* The statuses counted by their own label; anything else is "other". */
static const int statuses[] = { 200, 400, 403, 404, 408, 414, 416, 429, 499,
				500, 503 };
#define STATUS_COUNT (sizeof statuses / sizeof statuses[0])
#define STATUS_OTHER STATUS_COUNT

static const char *const mode_names[METRICS_MODE_COUNT] = {
	"sendfile", "buffered", "list", "sum", "ping", "-",
};

/* Upper bounds of the histograms' buckets, in nanoseconds; one more bucket
 * past the last holds the rest (+Inf). */
static const uint64_t duration_bounds_ns[] = {
	1000000, 5000000, 10000000, 50000000, 100000000, 500000000,
	1000000000, 5000000000, 10000000000, 30000000000, 60000000000,
	300000000000,
};
static const uint64_t first_byte_bounds_ns[] = {
	100000, 500000, 1000000, 5000000, 10000000, 50000000, 100000000,
	500000000, 1000000000, 5000000000,
};
#define DURATION_BUCKETS \
	(sizeof duration_bounds_ns / sizeof duration_bounds_ns[0] + 1)
#define FIRST_BYTE_BUCKETS \
	(sizeof first_byte_bounds_ns / sizeof first_byte_bounds_ns[0] + 1)

/* A histogram's buckets are kept apart (not cumulative), so one
 * observation is one addition and the scrape's _count, their sum, always
 * equals its +Inf bucket. */
struct histogram_duration {
	uint64_t bucket[DURATION_BUCKETS];
	uint64_t sum_ns;
};

struct histogram_first_byte {
	uint64_t bucket[FIRST_BYTE_BUCKETS];
	uint64_t sum_ns;
};

/* One process's counters. Aligned so two workers never share a cache
 * line. */
struct metrics_slot {
	_Alignas(64) uint64_t requests[STATUS_COUNT + 1][METRICS_MODE_COUNT];
	uint64_t bytes[METRICS_MODE_COUNT];
	uint64_t refused_503;
	uint64_t refused_429;
	uint64_t send_timeouts;
	uint64_t accept_pauses;
	struct histogram_duration duration;
	struct histogram_first_byte first_byte;
	/* Gauges: zeroed when a worker (re)starts. */
	int64_t conns_open;
	int64_t transfers;
	int64_t jobs_queued;
};

struct metrics_shared {
	double start_time_s; /* when the first process started, Unix time */
	unsigned slot_count;
	struct metrics_slot slot[];
};

/* Counting goes here while metrics are off (or before metrics_open). */
static struct metrics_slot unused_slot;
static struct metrics_slot *own = &unused_slot;
static struct metrics_shared *shared;
static int listen_fd = -1;

#define ADD(field, n) __atomic_fetch_add(&(field), (n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

int metrics_open(unsigned slots, int fd)
{
	struct timespec now;
	size_t size;
	void *map;

	if (fd < 0)
		return 0;
	if (slots == 0)
		slots = 1;
	size = sizeof *shared + (size_t)slots * sizeof shared->slot[0];
	map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return -errno;
	shared = map;
	shared->slot_count = slots;
	clock_gettime(CLOCK_REALTIME, &now);
	shared->start_time_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	own = &shared->slot[0];
	listen_fd = fd;
	return 0;
}

int metrics_listen_fd(void)
{
	return listen_fd;
}

void metrics_worker(unsigned index)
{
	if (shared == NULL)
		return;
	if (index < shared->slot_count)
		own = &shared->slot[index];
	__atomic_store_n(&own->conns_open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&own->transfers, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&own->jobs_queued, 0, __ATOMIC_RELAXED);
	if (index != 0 && listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
	}
}

/* ---- counting ---- */

static size_t status_index(int status)
{
	size_t i;

	for (i = 0; i < STATUS_COUNT; i++)
		if (statuses[i] == status)
			return i;
	return STATUS_OTHER;
}

void metrics_request(int status, enum metrics_mode mode, uint64_t bytes)
{
	if ((unsigned)mode >= METRICS_MODE_COUNT)
		mode = METRICS_MODE_NONE;
	ADD(own->requests[status_index(status)][mode], 1);
	if (bytes > 0)
		ADD(own->bytes[mode], bytes);
}

void metrics_transfer_begin(void)
{
	ADD(own->transfers, 1);
}

void metrics_transfer_end(void)
{
	ADD(own->transfers, -1);
}

/* The bucket of VALUE among N - 1 upper BOUNDS (the last is +Inf). */
static size_t bucket_of(const uint64_t *bounds, size_t n, uint64_t value)
{
	size_t i;

	for (i = 0; i + 1 < n && value > bounds[i]; i++)
		;
	return i;
}

void metrics_transfer_time(uint64_t duration_ns, uint64_t first_byte_ns)
{
	ADD(own->duration.bucket[bucket_of(duration_bounds_ns,
					   DURATION_BUCKETS, duration_ns)],
	    1);
	ADD(own->duration.sum_ns, duration_ns);
	if (first_byte_ns == 0)
		return;
	ADD(own->first_byte.bucket[bucket_of(first_byte_bounds_ns,
					     FIRST_BYTE_BUCKETS,
					     first_byte_ns)],
	    1);
	ADD(own->first_byte.sum_ns, first_byte_ns);
}

void metrics_refused(int code)
{
	if (code == 429)
		ADD(own->refused_429, 1);
	else
		ADD(own->refused_503, 1);
}

void metrics_send_timeout(void)
{
	ADD(own->send_timeouts, 1);
}

void metrics_accept_paused(void)
{
	ADD(own->accept_pauses, 1);
}

void metrics_conn_opened(void)
{
	ADD(own->conns_open, 1);
}

void metrics_conn_closed(void)
{
	ADD(own->conns_open, -1);
}

void metrics_jobs_queued(int delta)
{
	ADD(own->jobs_queued, delta);
}

/* ---- the exposition ---- */

/* Appends to a fixed buffer, remembering the length it would need. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	size_t room = o->len < o->cap ? o->cap - o->len : 0;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? o->buf + o->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void head(struct out *o, const char *name, const char *type,
		 const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Prometheus writes a bucket bound as a float: "0.0001", "1", "300". */
static void put_seconds(struct out *o, uint64_t ns)
{
	put(o, "%.9g", (double)ns / 1e9);
}

static void histogram(struct out *o, const char *name, const char *help,
		      const uint64_t *bounds, size_t n, const uint64_t *bucket,
		      uint64_t sum_ns)
{
	uint64_t cumulative = 0;
	size_t i;

	head(o, name, "histogram", help);
	for (i = 0; i < n; i++) {
		cumulative += bucket[i];
		put(o, "%s_bucket{le=\"", name);
		if (i + 1 < n)
			put_seconds(o, bounds[i]);
		else
			put(o, "+Inf");
		put(o, "\"} %llu\n", (unsigned long long)cumulative);
	}
	put(o, "%s_sum ", name);
	put_seconds(o, sum_ns);
	put(o, "\n%s_count %llu\n", name, (unsigned long long)cumulative);
}

size_t metrics_format(char *buf, size_t cap)
{
	struct metrics_slot sum;
	struct out o = { buf, cap, 0 };
	unsigned count = shared != NULL ? shared->slot_count : 1;
	const struct metrics_slot *slots = shared != NULL ? shared->slot : own;
	size_t i, m, s;
	unsigned w;

	/* Summed in 64-bit words: every field of the slot is one. */
	_Static_assert(sizeof sum % sizeof(uint64_t) == 0, "slot of words");
	memset(&sum, 0, sizeof sum);
	for (w = 0; w < count; w++) {
		const uint64_t *from = (const uint64_t *)&slots[w];
		uint64_t *to = (uint64_t *)&sum;

		for (i = 0; i < sizeof sum / sizeof(uint64_t); i++)
			to[i] += GET(from[i]);
	}
	if (cap > 0)
		buf[0] = '\0';

	head(&o, "ferry_requests_total", "counter",
	     "Requests answered, by status and transfer mode.");
	for (s = 0; s <= STATUS_COUNT; s++) {
		for (m = 0; m < METRICS_MODE_COUNT; m++) {
			if (sum.requests[s][m] == 0)
				continue;
			if (s == STATUS_OTHER)
				put(&o, "ferry_requests_total{status=\"other\"");
			else
				put(&o, "ferry_requests_total{status=\"%d\"",
				    statuses[s]);
			put(&o, ",mode=\"%s\"} %llu\n", mode_names[m],
			    (unsigned long long)sum.requests[s][m]);
		}
	}
	head(&o, "ferry_sent_bytes_total", "counter",
	     "File and listing bytes sent, by transfer mode.");
	for (m = 0; m < METRICS_MODE_PING; m++)
		put(&o, "ferry_sent_bytes_total{mode=\"%s\"} %llu\n",
		    mode_names[m], (unsigned long long)sum.bytes[m]);
	head(&o, "ferry_transfers_in_flight", "gauge",
	     "Requests being answered now.");
	put(&o, "ferry_transfers_in_flight %lld\n", (long long)sum.transfers);
	head(&o, "ferry_connections_open", "gauge",
	     "Client connections open now.");
	put(&o, "ferry_connections_open %lld\n", (long long)sum.conns_open);
	head(&o, "ferry_accept_pauses_total", "counter",
	     "Times accepting paused for want of file descriptors.");
	put(&o, "ferry_accept_pauses_total %llu\n",
	    (unsigned long long)sum.accept_pauses);
	head(&o, "ferry_refusals_total", "counter",
	     "Clients refused over a limit, by ERR code.");
	put(&o, "ferry_refusals_total{code=\"429\"} %llu\n",
	    (unsigned long long)sum.refused_429);
	put(&o, "ferry_refusals_total{code=\"503\"} %llu\n",
	    (unsigned long long)sum.refused_503);
	head(&o, "ferry_send_timeouts_total", "counter",
	     "Transfers closed because the client took no bytes for "
	     "limits.send_timeout.");
	put(&o, "ferry_send_timeouts_total %llu\n",
	    (unsigned long long)sum.send_timeouts);
	head(&o, "ferry_threadpool_jobs_queued", "gauge",
	     "Threadpool jobs queued and not yet started.");
	put(&o, "ferry_threadpool_jobs_queued %lld\n",
	    (long long)sum.jobs_queued);
	histogram(&o, "ferry_transfer_duration_seconds",
		  "Time from the request line to the end of the transfer.",
		  duration_bounds_ns, DURATION_BUCKETS, sum.duration.bucket,
		  sum.duration.sum_ns);
	histogram(&o, "ferry_first_byte_seconds",
		  "Time from the request line to the first byte of an OK "
		  "answer.",
		  first_byte_bounds_ns, FIRST_BYTE_BUCKETS,
		  sum.first_byte.bucket, sum.first_byte.sum_ns);
	head(&o, "ferry_start_time_seconds", "gauge",
	     "When ferryd started, in seconds since the Unix epoch.");
	put(&o, "ferry_start_time_seconds %.3f\n",
	    shared != NULL ? shared->start_time_s : 0.0);
	head(&o, "ferry_build_info", "gauge",
	     "Always 1; the version is in the label.");
	put(&o, "ferry_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
	return o.len;
}
