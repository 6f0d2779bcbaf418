/* Unit tests for src/common/array.c: room for one more, by doubling. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/array.h"

START_TEST(grows_by_doubling)
{
	int *v = NULL;
	size_t cap = 0, used;

	for (used = 0; used < 1000; used++) {
		size_t before = cap;

		ck_assert_int_eq(array_reserve((void **)&v, &cap, used,
					       sizeof(*v)), 0);
		ck_assert_uint_gt(cap, used);
		if (used < before)
			ck_assert_uint_eq(cap, before); /* room already */
		else
			ck_assert_uint_eq(cap, before == 0 ? 16 : 2 * before);
		v[used] = (int)used;
	}
	for (used = 0; used < 1000; used++)
		ck_assert_int_eq(v[used], (int)used);
	free(v);
}
END_TEST

START_TEST(overflow_refused)
{
	char one = 0, *v = &one;
	size_t cap = SIZE_MAX / 2 + 1;

	/* Doubling would wrap: refused, nothing changed. */
	ck_assert_int_eq(array_reserve((void **)&v, &cap, cap, 1), -ENOMEM);
	ck_assert_ptr_eq(v, &one);
	ck_assert_uint_eq(cap, SIZE_MAX / 2 + 1);
	cap = SIZE_MAX / 64;
	ck_assert_int_eq(array_reserve((void **)&v, &cap, cap, 64), -ENOMEM);
	ck_assert_ptr_eq(v, &one);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("array");
	TCase *tc = tcase_create("reserve");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, grows_by_doubling);
	tcase_add_test(tc, overflow_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
