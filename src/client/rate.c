/* The receive-side token bucket of --limit-rate (rate.h). */
#include "client/rate.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "common/protocol.h"

/* The bucket holds a tenth of a second's bytes, and at least this many, so
 * a slow rate still receives in useful pieces. */
#define RATE_MIN_BURST 4096.0

int rate_parse(const char *s, uint64_t *rate_bps)
{
	size_t len = strlen(s);
	uint64_t value, scale = 1;

	if (len > 0) {
		switch (s[len - 1]) {
		case 'k': case 'K': scale = 1024; break;
		case 'm': case 'M': scale = 1024 * 1024; break;
		case 'g': case 'G': scale = 1024 * 1024 * 1024; break;
		default: break;
		}
	}
	if (scale > 1)
		len--;
	if (len == 0 || proto_parse_number(s, len, &value) < 0 ||
	    value > UINT64_MAX / 2 / scale)
		return -EINVAL;
	*rate_bps = value * scale;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rate_init(struct rate_limit *r, uint64_t rate_bps)
{
	int rc;

	memset(r, 0, sizeof(*r));
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc != 0)
		return -rc;
	r->rate_bps = rate_bps;
	r->burst = (double)rate_bps / 10.0;
	if (r->burst < RATE_MIN_BURST)
		r->burst = RATE_MIN_BURST;
	/* Empty at the start: a run gets no free burst. */
	r->tokens = 0;
	r->last_ns = now_ns();
	return 0;
}

void rate_destroy(struct rate_limit *r)
{
	pthread_mutex_destroy(&r->lock);
}

size_t rate_chunk(struct rate_limit *r, size_t want)
{
	if (r == NULL || r->rate_bps == 0 || (double)want <= r->burst)
		return want;
	return (size_t)r->burst;
}

/* Adds the tokens earned since the last refill. Called locked. */
static void refill(struct rate_limit *r)
{
	int64_t now = now_ns();

	r->tokens += (double)(now - r->last_ns) * (double)r->rate_bps / 1e9;
	if (r->tokens > r->burst)
		r->tokens = r->burst;
	r->last_ns = now;
}

void rate_wait(struct rate_limit *r)
{
	if (r == NULL || r->rate_bps == 0)
		return;
	for (;;) {
		double missing;
		int wait_ms;

		pthread_mutex_lock(&r->lock);
		refill(r);
		missing = r->tokens > 0 ? 0 : 1.0 - r->tokens;
		pthread_mutex_unlock(&r->lock);
		if (missing == 0)
			return;
		/* Sleep until the debt is paid, rounded up to a millisecond. */
		wait_ms = (int)(missing * 1000.0 / (double)r->rate_bps) + 1;
		poll(NULL, 0, wait_ms);
	}
}

void rate_spend(struct rate_limit *r, size_t bytes)
{
	if (r == NULL || r->rate_bps == 0)
		return;
	pthread_mutex_lock(&r->lock);
	r->tokens -= (double)bytes;
	pthread_mutex_unlock(&r->lock);
}
