/* The SUM digest cache: SHA-256 digests of files, keyed by what changes
 * when a file does (device, inode, size, mtime and ctime to the
 * nanosecond), bounded in entries, CLOCK eviction. Pure: no I/O, no loop.
 * Used by engine_sum.c on the loop thread only, so it has no lock. */
#ifndef FERRY_DIGEST_CACHE_H
#define FERRY_DIGEST_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/protocol.h"

struct digest_cache;

struct digest_key {
	uint64_t dev, ino, size;
	int64_t mtime_s, ctime_s;
	int64_t mtime_ns, ctime_ns;
};

/* The key of the file ST describes. */
void digest_key_of(const struct stat *st, struct digest_key *key);

/* A cache of at most ENTRIES digests (at least 1). NULL when out of
 * memory. */
struct digest_cache *digest_cache_new(size_t entries);
void digest_cache_free(struct digest_cache *c);

/* Copies KEY's digest into OUT and marks it used: true. False when KEY is
 * not cached. */
bool digest_cache_get(struct digest_cache *c, const struct digest_key *key,
		      unsigned char out[FERRY_SHA256_BYTES]);

/* Caches DIGEST for KEY, replacing the entry the clock hand finds unused
 * since it last passed when the cache is full. */
void digest_cache_put(struct digest_cache *c, const struct digest_key *key,
		      const unsigned char digest[FERRY_SHA256_BYTES]);

/* Digests held now. */
size_t digest_cache_count(const struct digest_cache *c);

#endif
