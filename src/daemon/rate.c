/* Token buckets for limits.rate and limits.rate_total: see rate.h. */
#include "daemon/rate.h"

#include <stdlib.h>

#define KIB ((uint64_t)1024)
#define NS_PER_S 1000000000ULL
#define NS_PER_MS 1000000ULL
/* A bucket holds at least this much, and otherwise 1/10 s of its rate. */
#define FERRY_RATE_DEPTH_MIN (64 * KIB)
#define FERRY_RATE_DEPTH_DIV 10
/* A transfer waits for at least this much, and otherwise 1/50 s of its
 * rate, before it sends again. */
#define FERRY_RATE_QUANTUM_MIN (4 * KIB)
#define FERRY_RATE_QUANTUM_DIV 50
/* Once short, a transfer sleeps until it has this many quanta, up to the
 * depth (from about 1.3 MiB/s on, the full bucket: 100 ms of its rate): every
 * wakeup of an idle loop and pool costs CPU, so fewer, larger sends (and a
 * buffered transfer reads several buffers per wakeup). */
#define FERRY_RATE_WAKE_QUANTA 5

/* The worker's bucket. last_ns is 0 until the first transfer uses it. */
struct rate_shared {
	uint64_t rate_bps;
	uint64_t tokens;
	uint64_t last_ns;
	unsigned members;
};

static uint64_t depth_bytes(uint64_t rate_bps)
{
	uint64_t d = rate_bps / FERRY_RATE_DEPTH_DIV;

	return d > FERRY_RATE_DEPTH_MIN ? d : FERRY_RATE_DEPTH_MIN;
}

/* What a transfer at RATE_BPS waits for before it sends again. */
static uint64_t quantum_bytes(uint64_t rate_bps)
{
	uint64_t q = rate_bps / FERRY_RATE_QUANTUM_DIV;
	uint64_t d = depth_bytes(rate_bps);

	if (q < FERRY_RATE_QUANTUM_MIN)
		q = FERRY_RATE_QUANTUM_MIN;
	return q < d ? q : d;
}

/* Adds what RATE_BPS brought since *LAST_NS, up to the bucket's depth. The
 * product is taken in floating point: rate times nanoseconds overflows 64
 * bits after a few seconds at GiB/s. Less than a byte is lost per call. */
static void refill(uint64_t *tokens, uint64_t *last_ns, uint64_t rate_bps,
		   uint64_t now_ns)
{
	uint64_t depth = depth_bytes(rate_bps);
	double add;

	if (*tokens > depth)
		*tokens = depth;
	if (now_ns <= *last_ns)
		return;
	add = (double)rate_bps * (double)(now_ns - *last_ns) / (double)NS_PER_S;
	if (add >= (double)(depth - *tokens))
		*tokens = depth;
	else
		*tokens += (uint64_t)add;
	*last_ns = now_ns;
}

/* Nanoseconds until a bucket holding TOKENS at RATE_BPS holds NEED. */
static uint64_t wait_ns(uint64_t tokens, uint64_t need, uint64_t rate_bps)
{
	if (tokens >= need)
		return 0;
	return (uint64_t)((double)(need - tokens) * (double)NS_PER_S /
			  (double)rate_bps) + 1;
}

struct rate_shared *rate_shared_new(uint64_t rate_bps)
{
	struct rate_shared *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->rate_bps = rate_bps;
	s->tokens = depth_bytes(rate_bps);
	return s;
}

void rate_shared_set(struct rate_shared *s, uint64_t rate_bps)
{
	/* Tokens already there are kept, up to the new depth; the next
	 * refill adds at the new rate. */
	s->rate_bps = rate_bps;
	if (s->tokens > depth_bytes(rate_bps))
		s->tokens = depth_bytes(rate_bps);
}

void rate_shared_free(struct rate_shared *s)
{
	free(s);
}

void rate_init(struct rate_limit *r, uint64_t rate_bps,
	       struct rate_shared *s)
{
	r->rate_bps = rate_bps;
	r->shared = s;
	r->joined = false;
	r->tokens = 0;
	r->last_ns = 0;
}

bool rate_limited(const struct rate_limit *r)
{
	return r->rate_bps > 0 || r->shared != NULL;
}

/* Whether the shared bucket limits R now (a reload may have set it to 0). */
static bool shared_limits(const struct rate_limit *r)
{
	return r->shared != NULL && r->shared->rate_bps > 0;
}

/* R's own rate now: limits.rate, or its share of rate_total, whichever is
 * lower; 0 when neither limits it. */
static uint64_t own_rate(const struct rate_limit *r)
{
	uint64_t rate = r->rate_bps;

	if (shared_limits(r)) {
		uint64_t share = r->shared->rate_bps / r->shared->members;

		if (share == 0)
			share = 1;
		if (rate == 0 || share < rate)
			rate = share;
	}
	return rate;
}

uint64_t rate_allow(struct rate_limit *r, uint64_t want, uint64_t left,
		    uint64_t now_ns, uint64_t *wait_ms)
{
	struct rate_shared *s = r->shared;
	uint64_t rate, need, target, avail, wait;

	if (!r->joined) {
		r->joined = true;
		if (s != NULL) {
			s->members++;
			if (s->last_ns == 0)
				s->last_ns = now_ns;
		}
		rate = own_rate(r);
		r->tokens = depth_bytes(rate);
		r->last_ns = now_ns;
	}
	rate = own_rate(r);
	if (rate == 0)
		return want;
	refill(&r->tokens, &r->last_ns, rate, now_ns);
	avail = r->tokens;
	need = quantum_bytes(rate);
	if (need > want)
		need = want;
	/* What to wait for when short: a few quanta, no more than the depth
	 * or what is left to send, no less than what is needed now. */
	target = FERRY_RATE_WAKE_QUANTA * quantum_bytes(rate);
	if (target > depth_bytes(rate))
		target = depth_bytes(rate);
	if (target > left)
		target = left;
	if (target < need)
		target = need;
	wait = wait_ns(r->tokens, target, rate);
	if (shared_limits(r)) {
		uint64_t w;

		refill(&s->tokens, &s->last_ns, s->rate_bps, now_ns);
		if (s->tokens < avail)
			avail = s->tokens;
		w = wait_ns(s->tokens, target, s->rate_bps);
		if (w > wait)
			wait = w;
	}
	if (avail >= need) {
		uint64_t n = avail < want ? avail : want;

		r->tokens -= n;
		if (shared_limits(r))
			s->tokens -= n;
		return n;
	}
	*wait_ms = (wait + NS_PER_MS - 1) / NS_PER_MS;
	if (*wait_ms == 0)
		*wait_ms = 1;
	return 0;
}

void rate_refund(struct rate_limit *r, uint64_t bytes)
{
	/* The next refill caps them at the depth again. */
	r->tokens += bytes;
	if (shared_limits(r))
		r->shared->tokens += bytes;
}

void rate_leave(struct rate_limit *r)
{
	if (r->joined && r->shared != NULL)
		r->shared->members--;
	r->joined = false;
}
