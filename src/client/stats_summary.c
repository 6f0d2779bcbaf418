/* `ferry stats`, the summary: the accumulator (per mode, per status, per
 * path), the percentiles, the order of the report, and the text report
 * itself (see stats.h for the definitions behind each number).
 *
 * Whatever is printed back from a log (paths, mode names) is printed
 * percent-encoded as in the text log, so no byte of a log can reach a
 * terminal as a control character. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/protocol.h"
#include "common/units.h"
#include "client/stats.h"

/* -- the string index ------------------------------------------------------ */

/* FNV-1a, 64 bits. */
static uint64_t hash_string(const char *s)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static struct stats_slot *index_slot(const struct stats_index *ix,
				     const char *key)
{
	size_t i = (size_t)hash_string(key) & (ix->cap - 1);

	while (ix->slots[i].key != NULL && strcmp(ix->slots[i].key, key) != 0)
		i = (i + 1) & (ix->cap - 1);
	return &ix->slots[i];
}

static int index_grow(struct stats_index *ix)
{
	size_t cap = ix->cap == 0 ? 64 : ix->cap * 2;
	struct stats_index bigger = { calloc(cap, sizeof(struct stats_slot)),
				      cap, ix->used };
	size_t i;

	if (bigger.slots == NULL)
		return -ENOMEM;
	for (i = 0; i < ix->cap; i++)
		if (ix->slots[i].key != NULL)
			*index_slot(&bigger, ix->slots[i].key) = ix->slots[i];
	free(ix->slots);
	*ix = bigger;
	return 0;
}

/* Finds KEY, or adds it with value NEXT. *SLOT gets its slot (valid until
 * the next insertion). Returns 0 found, 1 added, -ENOMEM. */
static int index_get(struct stats_index *ix, const char *key, size_t next,
		     struct stats_slot **slot)
{
	struct stats_slot *sl;

	/* At most half full keeps the probes short. */
	if ((ix->used + 1) * 2 > ix->cap && index_grow(ix) < 0)
		return -ENOMEM;
	sl = index_slot(ix, key);
	*slot = sl;
	if (sl->key != NULL)
		return 0;
	sl->key = strdup(key);
	if (sl->key == NULL)
		return -ENOMEM;
	sl->value = next;
	ix->used++;
	return 1;
}

static void index_free(struct stats_index *ix)
{
	size_t i;

	for (i = 0; i < ix->cap; i++)
		free(ix->slots[i].key);
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

/* -- the accumulator ------------------------------------------------------ */

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->since_ms = INT64_MIN;
	s->until_ms = INT64_MAX;
}

void stats_free(struct stats *s)
{
	size_t i;

	for (i = 0; i < s->nmodes; i++) {
		free(s->modes[i].rates);
		free(s->modes[i].points);
	}
	free(s->modes);
	free(s->paths);
	index_free(&s->mode_index);
	index_free(&s->path_index);
	stats_init(s);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static struct stats_mode *mode_get(struct stats *s, const char *name)
{
	struct stats_slot *slot;
	struct stats_mode *m;
	void *arr = s->modes;
	int rc;

	/* Through a void * of its own, as a struct stats_mode ** is not one. */
	if (array_reserve(&arr, &s->modes_cap, s->nmodes, sizeof(*s->modes)) < 0)
		return NULL;
	s->modes = arr;
	rc = index_get(&s->mode_index, name, s->nmodes, &slot);
	if (rc < 0)
		return NULL;
	if (rc == 0)
		return &s->modes[slot->value];
	m = &s->modes[s->nmodes++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	return m;
}

static int add_sample(struct stats_mode *m, int64_t time_ms, double rate)
{
	if (m->samples == m->cap) {
		size_t n = m->cap == 0 ? 16 : m->cap * 2;
		double *rates = realloc(m->rates, n * sizeof(*rates));
		struct stats_point *points;

		if (rates == NULL)
			return -ENOMEM;
		m->rates = rates;
		points = realloc(m->points, n * sizeof(*points));
		if (points == NULL)
			return -ENOMEM;
		m->points = points;
		m->cap = n;
	}
	m->rates[m->samples] = rate;
	m->points[m->samples].time_ms = time_ms;
	m->points[m->samples].mib_per_s = rate;
	m->samples++;
	return 0;
}

int stats_add(struct stats *s, const struct stats_record *r)
{
	struct stats_mode *m;

	if (r->time_ms < s->since_ms || r->time_ms >= s->until_ms) {
		s->outside++;
		return 0;
	}
	m = mode_get(s, r->mode);
	if (m == NULL)
		return -ENOMEM;
	if (r->status == 200 && r->bytes > 0 &&
	    add_sample(m, r->time_ms, r->mib_per_s) < 0)
		return -ENOMEM;
	/* Paths that never sent a byte cannot be among the top paths; leaving
	 * them out keeps a log full of 404 probes from filling memory. */
	if (r->bytes > 0) {
		struct stats_slot *slot;
		void *arr = s->paths;
		int rc;

		if (array_reserve(&arr, &s->paths_cap, s->npaths,
			    sizeof(*s->paths)) < 0)
			return -ENOMEM;
		s->paths = arr;
		rc = index_get(&s->path_index, r->path, s->npaths, &slot);
		if (rc < 0)
			return -ENOMEM;
		if (rc == 1) {
			s->paths[s->npaths].path = slot->key;
			s->paths[s->npaths].bytes = 0;
			s->npaths++;
		}
		s->paths[slot->value].bytes =
			add_sat(s->paths[slot->value].bytes, r->bytes);
	}

	m->transfers++;
	m->bytes = add_sat(m->bytes, r->bytes);
	if (r->status >= 0 && r->status <= STATS_STATUS_MAX)
		s->status_count[r->status]++;
	if (s->transfers == 0 || r->time_ms < s->first_ms)
		s->first_ms = r->time_ms;
	if (s->transfers == 0 || r->time_ms > s->last_ms)
		s->last_ms = r->time_ms;
	s->transfers++;
	s->finished = false;
	return 1;
}

/* -- report order --------------------------------------------------------- */

/* Report order: the daemon's modes as the README lists them, then any
 * others by name, and "-" (no request read) last. */
static int mode_rank(const char *name)
{
	if (strcmp(name, "sendfile") == 0)
		return 0;
	if (strcmp(name, "buffered") == 0)
		return 1;
	if (strcmp(name, "list") == 0)
		return 2;
	if (strcmp(name, "sum") == 0)
		return 3;
	if (strcmp(name, "-") == 0)
		return 5;
	return 4;
}

static int cmp_mode(const void *a, const void *b)
{
	const struct stats_mode *x = a, *y = b;
	int rx = mode_rank(x->name), ry = mode_rank(y->name);

	if (rx != ry)
		return rx < ry ? -1 : 1;
	return strcmp(x->name, y->name);
}

int stats_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_point(const void *a, const void *b)
{
	const struct stats_point *x = a, *y = b;

	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? -1 : 1;
	return stats_cmp_double(&x->mib_per_s, &y->mib_per_s);
}

void stats_finish(struct stats *s)
{
	size_t i;

	if (s->finished)
		return;
	if (s->nmodes > 0)
		qsort(s->modes, s->nmodes, sizeof(*s->modes), cmp_mode);
	for (i = 0; i < s->nmodes; i++) {
		struct stats_mode *m = &s->modes[i];

		/* The index still points at the old places. */
		index_slot(&s->mode_index, m->name)->value = i;
		if (m->samples > 0) {
			qsort(m->rates, m->samples, sizeof(*m->rates),
			      stats_cmp_double);
			qsort(m->points, m->samples, sizeof(*m->points),
			      cmp_point);
		}
	}
	s->finished = true;
}

struct stats_mode *stats_mode_find(const struct stats *s, const char *name)
{
	struct stats_slot *slot;

	if (s->mode_index.cap == 0)
		return NULL;
	slot = index_slot(&s->mode_index, name);
	return slot->key != NULL ? &s->modes[slot->value] : NULL;
}

double stats_percentile(const double *sorted, size_t n, double p)
{
	double exact;
	size_t rank;

	if (n == 0)
		return 0.0;
	/* rank = ceil(p / 100 * n), computed without libm; the 1e-9 keeps
	 * p95 of 20 samples at rank 19 despite 0.95 * 20 = 19.000000000000004.
	 */
	exact = p / 100.0 * (double)n - 1e-9;
	rank = exact <= 0 ? 1 : (size_t)exact + 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int cmp_path_total(const void *a, const void *b)
{
	const struct stats_path_total *x = a, *y = b;

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return strcmp(x->path, y->path);
}

int stats_top_paths(const struct stats *s, struct stats_path_total *top,
		    size_t max)
{
	struct stats_path_total *all;
	size_t n;

	if (s->npaths == 0 || max == 0)
		return 0;
	all = malloc(s->npaths * sizeof(*all));
	if (all == NULL)
		return -ENOMEM;
	memcpy(all, s->paths, s->npaths * sizeof(*all));
	qsort(all, s->npaths, sizeof(*all), cmp_path_total);
	n = s->npaths < max ? s->npaths : max;
	memcpy(top, all, n * sizeof(*top));
	free(all);
	return (int)n;
}

/* -- the report ----------------------------------------------------------- */

char *stats_encode(const char *s, char *stack, size_t cap)
{
	size_t len = strlen(s), need = proto_encode(s, len, NULL, 0);
	char *buf = need + 1 <= cap ? stack : malloc(need + 1);

	if (buf == NULL)
		return NULL;
	proto_encode(s, len, buf, need);
	buf[need] = '\0';
	return buf;
}

/* Writes S percent-encoded, as the text log would. */
static void put_encoded(FILE *out, const char *s)
{
	char stack[256];
	char *buf = stats_encode(s, stack, sizeof(stack));

	fputs(buf != NULL ? buf : "?", out);
	if (buf != stack)
		free(buf);
}

/* Encodes S for a fixed-width column. */
static void encode_short(const char *s, char *buf, size_t cap)
{
	size_t n = proto_encode(s, strlen(s), buf, cap - 1);

	buf[n < cap ? n : cap - 1] = '\0';
}

static void put_rate(FILE *out, const struct stats_mode *m, double p)
{
	if (m->samples == 0)
		fprintf(out, " %11s", "-");
	else
		fprintf(out, " %11.2f",
			stats_percentile(m->rates, m->samples, p));
}

int stats_report(struct stats *s, FILE *out)
{
	struct stats_path_total top[STATS_TOP_PATHS];
	bool any = false;
	char buf[64];
	size_t i;
	int n;

	stats_finish(s);
	fprintf(out, "transfers: %" PRIu64 " (malformed lines: %" PRIu64,
		s->transfers, s->malformed);
	if (s->since_ms != INT64_MIN || s->until_ms != INT64_MAX)
		fprintf(out, ", outside the time range: %" PRIu64, s->outside);
	fputs(")\n", out);
	if (s->transfers > 0) {
		char last[32];

		stats_format_time(s->first_ms, buf, sizeof(buf));
		stats_format_time(s->last_ms, last, sizeof(last));
		fprintf(out, "period: %s .. %s\n", buf, last);
	}

	fprintf(out, "%-11s %9s %12s %11s %11s %11s\n", "mode", "transfers",
		"bytes", "p50_MiB/s", "p95_MiB/s", "max_MiB/s");
	for (i = 0; i < s->nmodes; i++) {
		const struct stats_mode *m = &s->modes[i];
		char name[3 * STATS_MODE_MAX];

		encode_short(m->name, name, sizeof(name));
		units_format_bytes(buf, sizeof(buf), m->bytes);
		fprintf(out, "%-11s %9" PRIu64 " %12s", name, m->transfers,
			buf);
		put_rate(out, m, 50);
		put_rate(out, m, 95);
		put_rate(out, m, 100);
		fputc('\n', out);
	}

	fputs("errors by status:", out);
	for (i = 0; i <= STATS_STATUS_MAX; i++) {
		if (i == 200 || s->status_count[i] == 0)
			continue;
		fprintf(out, "\n  %3zu %8" PRIu64, i, s->status_count[i]);
		any = true;
	}
	fputs(any ? "\n" : " none\n", out);

	n = stats_top_paths(s, top, STATS_TOP_PATHS);
	if (n < 0)
		return n;
	fputs(n == 0 ? "top paths by bytes: none\n" : "top paths by bytes:\n",
	      out);
	for (i = 0; i < (size_t)n; i++) {
		units_format_bytes(buf, sizeof(buf), top[i].bytes);
		fprintf(out, "  %10s  ", buf);
		put_encoded(out, top[i].path);
		fputc('\n', out);
	}
	return ferror(out) ? -EIO : 0;
}

void stats_report_malformed(const struct stats *s, FILE *out,
			    const char *prefix)
{
	size_t i;

	for (i = 0; i < s->malformed && i < STATS_MALFORMED_SHOWN; i++)
		fprintf(out, "%s%s:%" PRIu64 ": malformed line\n", prefix,
			s->malformed_at[i].name, s->malformed_at[i].line);
	if (s->malformed > STATS_MALFORMED_SHOWN)
		fprintf(out, "%s%" PRIu64 " more malformed lines\n", prefix,
			s->malformed - STATS_MALFORMED_SHOWN);
}
