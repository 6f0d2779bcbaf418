/* Connections counted per client IP address, for limits.per_client: a hash
 * table with chaining, keyed by address family and address bytes. An entry
 * lives only while its count is above zero, so the table never holds more
 * entries than there are open connections, which also bounds the longest
 * chain a client could build by choosing its addresses. */
#include "daemon/clients.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 16

struct client_key {
	sa_family_t family;
	uint8_t len;
	uint8_t bytes[16];
	uint64_t hash;
};

struct client {
	struct client *next;
	struct client_key key;
	size_t count;
};

struct client_table {
	struct client **buckets;
	size_t bucket_count; /* a power of two */
	size_t entry_count;
};

/* FNV-1a over the family and the address bytes. */
static uint64_t hash_key(const struct client_key *k)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	h = (h ^ (uint8_t)k->family) * 1099511628211ULL;
	for (i = 0; i < k->len; i++)
		h = (h ^ k->bytes[i]) * 1099511628211ULL;
	/* FNV's low bits, which pick the bucket, mix poorly on their own. */
	return h ^ (h >> 32);
}

/* Builds ADDR's key. An IPv4-mapped IPv6 address is the IPv4 address: the
 * same client reaching a dual-stack socket must not get a second quota. */
static void make_key(const struct sockaddr *addr, struct client_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = addr->sa_family;
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)addr;

		k->len = 4;
		memcpy(k->bytes, &in4->sin_addr, 4);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			k->family = AF_INET;
			k->len = 4;
			memcpy(k->bytes, &in6->sin6_addr.s6_addr[12], 4);
		} else {
			k->len = 16;
			memcpy(k->bytes, &in6->sin6_addr, 16);
		}
	}
	/* Other families (a Unix socket) have no address to tell clients
	 * apart, so all their connections count as one client. */
	k->hash = hash_key(k);
}

static bool key_equal(const struct client_key *a, const struct client_key *b)
{
	return a->hash == b->hash && a->family == b->family &&
	       a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* Returns the link that points at KEY's entry, or at the NULL ending its
 * chain, so callers can both find and unlink. */
static struct client **find_link(const struct client_table *t,
				 const struct client_key *key)
{
	struct client **link = &t->buckets[key->hash & (t->bucket_count - 1)];

	while (*link != NULL && !key_equal(&(*link)->key, key))
		link = &(*link)->next;
	return link;
}

/* Moves every entry into a table of COUNT buckets. On allocation failure
 * the table stays as it was: longer chains, still correct. */
static void resize(struct client_table *t, size_t count)
{
	struct client **buckets = calloc(count, sizeof(*buckets));
	size_t i;

	if (buckets == NULL)
		return;
	for (i = 0; i < t->bucket_count; i++) {
		struct client *c = t->buckets[i], *next;

		for (; c != NULL; c = next) {
			struct client **head = &buckets[c->key.hash & (count - 1)];

			next = c->next;
			c->next = *head;
			*head = c;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->bucket_count = count;
}

struct client_table *clients_new(void)
{
	struct client_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->buckets = calloc(MIN_BUCKETS, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	t->bucket_count = MIN_BUCKETS;
	return t;
}

void clients_free(struct client_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->bucket_count; i++) {
		struct client *c = t->buckets[i], *next;

		for (; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	free(t->buckets);
	free(t);
}

int clients_acquire(struct client_table *t, const struct sockaddr *addr,
		    size_t max)
{
	struct client_key key;
	struct client **link, *c;

	make_key(addr, &key);
	link = find_link(t, &key);
	if (*link != NULL) {
		if ((*link)->count >= max)
			return -1;
		(*link)->count++;
		return 0;
	}
	if (max == 0)
		return -1;

	c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->key = key;
	c->count = 1;
	c->next = NULL;
	*link = c;
	t->entry_count++;
	if (t->entry_count > t->bucket_count)
		resize(t, t->bucket_count * 2);
	return 0;
}

void clients_release(struct client_table *t, const struct sockaddr *addr)
{
	struct client_key key;
	struct client **link, *c;

	make_key(addr, &key);
	link = find_link(t, &key);
	c = *link;
	if (c == NULL)
		return;
	if (--c->count > 0)
		return;
	*link = c->next;
	free(c);
	t->entry_count--;
	/* Shrinking only well below the growth point keeps a count hovering
	 * around a boundary from resizing on every connection. */
	if (t->bucket_count > MIN_BUCKETS &&
	    t->entry_count < t->bucket_count / 8)
		resize(t, t->bucket_count / 2);
}

size_t clients_count(const struct client_table *t, const struct sockaddr *addr)
{
	struct client_key key;
	struct client *c;

	make_key(addr, &key);
	c = *find_link(t, &key);
	return c != NULL ? c->count : 0;
}
