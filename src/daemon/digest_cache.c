/* The SUM digest cache: see digest_cache.h. A fixed array of entries, each
 * in one chain of a hash table (indexes, -1 ending a chain), and a clock
 * hand over the array: an entry is replaced only when the hand finds it
 * not used since it last passed. */
#include "daemon/digest_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct digest_key key;
	unsigned char digest[FERRY_SHA256_BYTES];
	int32_t next;     /* in its bucket's chain, or -1 */
	bool referenced;  /* looked up since the hand last passed */
};

struct digest_cache {
	struct entry *entries;
	size_t cap;
	size_t count;
	size_t hand;
	int32_t *buckets; /* nbuckets heads, -1 when empty */
	size_t nbuckets;  /* a power of two, at least cap */
};

void digest_key_of(const struct stat *st, struct digest_key *key)
{
	memset(key, 0, sizeof *key);
	key->dev = (uint64_t)st->st_dev;
	key->ino = (uint64_t)st->st_ino;
	key->size = (uint64_t)st->st_size;
	key->mtime_s = (int64_t)st->st_mtim.tv_sec;
	key->mtime_ns = (int64_t)st->st_mtim.tv_nsec;
	key->ctime_s = (int64_t)st->st_ctim.tv_sec;
	key->ctime_ns = (int64_t)st->st_ctim.tv_nsec;
}

static bool key_eq(const struct digest_key *a, const struct digest_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
	       a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* FNV-1a over the key's fields. */
static size_t bucket_of(const struct digest_cache *c,
			const struct digest_key *k)
{
	const uint64_t v[7] = { k->dev, k->ino, k->size, (uint64_t)k->mtime_s,
				(uint64_t)k->mtime_ns, (uint64_t)k->ctime_s,
				(uint64_t)k->ctime_ns };
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < 7; i++) {
		h ^= v[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 29;
	return (size_t)h & (c->nbuckets - 1);
}

struct digest_cache *digest_cache_new(size_t entries)
{
	struct digest_cache *c = calloc(1, sizeof *c);
	size_t i;

	if (c == NULL)
		return NULL;
	if (entries == 0)
		entries = 1;
	if (entries > INT32_MAX / 2)
		entries = INT32_MAX / 2;
	c->cap = entries;
	c->nbuckets = 1;
	while (c->nbuckets < entries)
		c->nbuckets <<= 1;
	c->entries = calloc(c->cap, sizeof *c->entries);
	c->buckets = malloc(c->nbuckets * sizeof *c->buckets);
	if (c->entries == NULL || c->buckets == NULL) {
		digest_cache_free(c);
		return NULL;
	}
	for (i = 0; i < c->nbuckets; i++)
		c->buckets[i] = -1;
	return c;
}

void digest_cache_free(struct digest_cache *c)
{
	if (c == NULL)
		return;
	free(c->entries);
	free(c->buckets);
	free(c);
}

static struct entry *find(struct digest_cache *c, const struct digest_key *key)
{
	int32_t i = c->buckets[bucket_of(c, key)];

	while (i >= 0) {
		if (key_eq(&c->entries[i].key, key))
			return &c->entries[i];
		i = c->entries[i].next;
	}
	return NULL;
}

bool digest_cache_get(struct digest_cache *c, const struct digest_key *key,
		      unsigned char out[FERRY_SHA256_BYTES])
{
	struct entry *e = find(c, key);

	if (e == NULL)
		return false;
	e->referenced = true;
	memcpy(out, e->digest, FERRY_SHA256_BYTES);
	return true;
}

static void unlink_entry(struct digest_cache *c, int32_t victim)
{
	int32_t *link = &c->buckets[bucket_of(c, &c->entries[victim].key)];

	while (*link != victim)
		link = &c->entries[*link].next;
	*link = c->entries[victim].next;
}

/* The slot for a new entry: a free one while the cache fills, then the
 * first the hand finds unreferenced (clearing the marks it passes, so it
 * stops within two turns). */
static int32_t take_slot(struct digest_cache *c)
{
	int32_t victim;

	if (c->count < c->cap)
		return (int32_t)c->count++;
	while (c->entries[c->hand].referenced) {
		c->entries[c->hand].referenced = false;
		c->hand = (c->hand + 1) % c->cap;
	}
	victim = (int32_t)c->hand;
	c->hand = (c->hand + 1) % c->cap;
	unlink_entry(c, victim);
	return victim;
}

void digest_cache_put(struct digest_cache *c, const struct digest_key *key,
		      const unsigned char digest[FERRY_SHA256_BYTES])
{
	struct entry *e = find(c, key);
	size_t b;
	int32_t i;

	if (e != NULL) {
		memcpy(e->digest, digest, FERRY_SHA256_BYTES);
		return;
	}
	i = take_slot(c);
	e = &c->entries[i];
	e->key = *key;
	memcpy(e->digest, digest, FERRY_SHA256_BYTES);
	/* Not marked: a digest asked for once goes before one asked for
	 * again. */
	e->referenced = false;
	b = bucket_of(c, key);
	e->next = c->buckets[b];
	c->buckets[b] = i;
}

size_t digest_cache_count(const struct digest_cache *c)
{
	return c->count;
}
