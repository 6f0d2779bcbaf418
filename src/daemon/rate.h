/* Bandwidth limits: token buckets for limits.rate (one per transfer) and
 * limits.rate_total (one per worker process, shared by its transfers).
 *
 * Who calls it: server.c makes the shared bucket, changes its rate on a
 * reload and frees it (the section "for server.c"); transfer.c asks how many
 * bytes a transfer may send now and says what it sent (the section "for
 * transfer.c"). Pure arithmetic on the times it is given: no loop, no
 * timer, no I/O; the timer that waits for tokens is the connection's
 * (conn_wait_tokens in conn.h).
 *
 * The buckets. A bucket fills at its rate up to a depth of max(64 KiB,
 * rate / 10), so no transfer bursts more than 100 ms worth above its rate.
 * A transfer may send min(its own tokens, the shared tokens). Fairness under
 * rate_total: the shared bucket's members (the transfers in flight that
 * joined it) each fill their own bucket at rate_total / members (or their
 * own limits.rate when that is lower), so N transfers each get 1/N of
 * rate_total whatever their timers do; the shared bucket still bounds the
 * sum while the member count changes. A transfer waits until it has a
 * quantum of tokens, max(4 KiB, rate / 50) (20 ms worth), capped by the
 * depth; once short, it sleeps until it has five, or the depth (100 ms
 * worth at most), so a throttled transfer makes few, large sends.
 *
 * Ownership. struct rate_shared is the server's: rate_shared_new in
 * server_start, rate_shared_free in server_free, after every connection
 * (and so every member) is gone. struct rate_limit lives inside struct
 * transfer; rate_leave must be called before the transfer is freed.
 */
#ifndef FERRY_DAEMON_RATE_H
#define FERRY_DAEMON_RATE_H

#include <stdbool.h>
#include <stdint.h>

struct rate_shared;

/* One transfer's limits and its bucket. Zeroed means unlimited. */
struct rate_limit {
	uint64_t rate_bps;          /* limits.rate when it began; 0: none */
	struct rate_shared *shared; /* the worker's bucket, or NULL */
	bool joined;                /* counted in shared's members */
	uint64_t tokens;
	uint64_t last_ns;
};

/* ---- for server.c ---- */

/* The worker's shared bucket, filling at RATE_BPS (0: no limit). NULL when
 * out of memory. */
struct rate_shared *rate_shared_new(uint64_t rate_bps);

/* A reload: the shared bucket fills at RATE_BPS from now on, for the
 * transfers in flight that joined it as for new ones. */
void rate_shared_set(struct rate_shared *s, uint64_t rate_bps);

/* Frees S (NULL is fine); no transfer may still be a member. */
void rate_shared_free(struct rate_shared *s);

/* ---- for transfer.c ---- */

/* Sets up R for a transfer with limits.rate RATE_BPS (0: none) under the
 * shared bucket S (NULL when limits.rate_total is 0). */
void rate_init(struct rate_limit *r, uint64_t rate_bps,
	       struct rate_shared *s);

/* Whether R limits anything at all: when false, the caller skips every
 * other call here. */
bool rate_limited(const struct rate_limit *r);

/* How many of WANT bytes R lets the transfer send at NOW_NS (0 < WANT <=
 * LEFT, LEFT: what the transfer still has to send): WANT or fewer, taken
 * from R's bucket and the shared one at once (so no other transfer is
 * granted the same tokens while this one's send is in flight), or 0, when
 * the transfer must wait; then *WAIT_MS says how long (at least 1). The
 * first call joins the shared bucket. */
uint64_t rate_allow(struct rate_limit *r, uint64_t want, uint64_t left,
		    uint64_t now_ns, uint64_t *wait_ms);

/* BYTES of a grant were not sent after all: they go back to R's bucket and
 * the shared one. */
void rate_refund(struct rate_limit *r, uint64_t bytes);

/* The transfer ends: it leaves the shared bucket. Idempotent. */
void rate_leave(struct rate_limit *r);

#endif
