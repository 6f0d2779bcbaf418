/* Unit tests for digest_cache.c: hits, what makes a key differ, the bound
 * on entries and CLOCK eviction. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/digest_cache.h"

static struct digest_key key(uint64_t ino)
{
	struct digest_key k;

	memset(&k, 0, sizeof k);
	k.dev = 8;
	k.ino = ino;
	k.size = 100;
	k.mtime_s = 1764000000;
	k.mtime_ns = 5;
	k.ctime_s = 1764000001;
	k.ctime_ns = 6;
	return k;
}

static void digest_of(uint64_t v, unsigned char d[FERRY_SHA256_BYTES])
{
	memset(d, (int)(v & 0xff), FERRY_SHA256_BYTES);
	d[0] = (unsigned char)(v >> 8);
}

static bool has(struct digest_cache *c, uint64_t ino)
{
	unsigned char got[FERRY_SHA256_BYTES], want[FERRY_SHA256_BYTES];
	struct digest_key k = key(ino);

	if (!digest_cache_get(c, &k, got))
		return false;
	digest_of(ino, want);
	ck_assert_mem_eq(got, want, FERRY_SHA256_BYTES);
	return true;
}

static void put(struct digest_cache *c, uint64_t ino)
{
	unsigned char d[FERRY_SHA256_BYTES];
	struct digest_key k = key(ino);

	digest_of(ino, d);
	digest_cache_put(c, &k, d);
}

START_TEST(hit_and_miss)
{
	struct digest_cache *c = digest_cache_new(16);

	ck_assert_ptr_nonnull(c);
	ck_assert(!has(c, 1));
	put(c, 1);
	ck_assert(has(c, 1));
	ck_assert(!has(c, 2));
	/* Putting the same key again replaces, does not add. */
	put(c, 1);
	ck_assert_uint_eq(digest_cache_count(c), 1);
	digest_cache_free(c);
}
END_TEST

START_TEST(every_field_counts)
{
	struct digest_cache *c = digest_cache_new(16);
	unsigned char d[FERRY_SHA256_BYTES], got[FERRY_SHA256_BYTES];
	struct digest_key k = key(1), other;
	int i;

	digest_of(1, d);
	digest_cache_put(c, &k, d);
	for (i = 0; i < 7; i++) {
		other = k;
		switch (i) {
		case 0: other.dev++; break;
		case 1: other.ino++; break;
		case 2: other.size++; break;
		case 3: other.mtime_s++; break;
		case 4: other.mtime_ns++; break;
		case 5: other.ctime_s++; break;
		default: other.ctime_ns++; break;
		}
		ck_assert_msg(!digest_cache_get(c, &other, got),
			      "field %d changed, still a hit", i);
	}
	digest_cache_free(c);
}
END_TEST

START_TEST(key_from_stat)
{
	struct stat st;
	struct digest_key k;

	memset(&st, 0, sizeof st);
	st.st_dev = 3;
	st.st_ino = 4;
	st.st_size = 5;
	st.st_mtim.tv_sec = 6;
	st.st_mtim.tv_nsec = 7;
	st.st_ctim.tv_sec = 8;
	st.st_ctim.tv_nsec = 9;
	digest_key_of(&st, &k);
	ck_assert(k.dev == 3 && k.ino == 4 && k.size == 5 && k.mtime_s == 6 &&
		  k.mtime_ns == 7 && k.ctime_s == 8 && k.ctime_ns == 9);
}
END_TEST

START_TEST(bounded)
{
	struct digest_cache *c = digest_cache_new(64);
	uint64_t i, held = 0;

	for (i = 0; i < 10000; i++)
		put(c, i);
	ck_assert_uint_eq(digest_cache_count(c), 64);
	for (i = 0; i < 10000; i++)
		held += has(c, i);
	ck_assert_uint_eq(held, 64);
	/* The newest is there. */
	ck_assert(has(c, 9999));
	digest_cache_free(c);
}
END_TEST

START_TEST(clock_keeps_used)
{
	struct digest_cache *c = digest_cache_new(4);

	put(c, 1);
	put(c, 2);
	put(c, 3);
	put(c, 4);
	/* 1 and 3 asked for since: 2 goes, then 4. */
	ck_assert(has(c, 1));
	ck_assert(has(c, 3));
	put(c, 5);
	ck_assert(!has(c, 2));
	put(c, 6);
	ck_assert(!has(c, 4));
	ck_assert(has(c, 1) && has(c, 3) && has(c, 5) && has(c, 6));
	digest_cache_free(c);
}
END_TEST

START_TEST(one_entry)
{
	struct digest_cache *c = digest_cache_new(0);

	put(c, 1);
	put(c, 2);
	ck_assert(!has(c, 1));
	ck_assert(has(c, 2));
	ck_assert_uint_eq(digest_cache_count(c), 1);
	digest_cache_free(c);
	digest_cache_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("digest_cache");
	TCase *tc = tcase_create("cache");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, hit_and_miss);
	tcase_add_test(tc, every_field_counts);
	tcase_add_test(tc, key_from_stat);
	tcase_add_test(tc, bounded);
	tcase_add_test(tc, clock_keeps_used);
	tcase_add_test(tc, one_entry);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
