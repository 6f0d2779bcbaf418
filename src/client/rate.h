/* ferry --limit-rate: a token bucket on the receive side, shared by every
 * connection of one run (ferry sync's workers each hold a pointer to the
 * same bucket), and the parser of RATE ("500K", "20M", "1G", bytes/s).
 *
 * A receiver asks rate_wait before each recv, which returns at once while
 * the bucket holds tokens and otherwise sleeps in poll(2) timeouts until it
 * does; rate_spend then charges what the recv brought. A recv may overdraw
 * the bucket by at most its size (rate_chunk), which the next waits pay
 * back, so over any span the average stays at the rate. */ 
#ifndef FERRY_CLIENT_RATE_H
#define FERRY_CLIENT_RATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct rate_limit {
	pthread_mutex_t lock;
	uint64_t rate_bps;  /* 0: unlimited */
	double tokens;      /* bytes that may be received now; may go below 0 */
	double burst;       /* the most tokens the bucket holds */
	int64_t last_ns;    /* when tokens were last added */
};

/* Parses RATE: decimal bytes per second, optionally followed by K, M or G
 * (1024-based, either case). 0 means unlimited. 0 or -EINVAL. */
int rate_parse(const char *s, uint64_t *rate_bps);

/* Starts an unlimited bucket when RATE_BPS is 0. 0 or -errno. */
int rate_init(struct rate_limit *r, uint64_t rate_bps);
void rate_destroy(struct rate_limit *r);

/* The largest recv worth making under R (WANT when unlimited). */
size_t rate_chunk(struct rate_limit *r, size_t want);
/* Waits until R holds tokens (at once when R is NULL or unlimited). */
void rate_wait(struct rate_limit *r);
/* Charges BYTES received against R. */
void rate_spend(struct rate_limit *r, size_t bytes);

#endif
