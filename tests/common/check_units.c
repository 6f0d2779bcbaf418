/* Unit tests for units.c: byte counts as ferry (progress, listings) and
 * ferry stats (the report) print them. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"

static const struct {
	uint64_t bytes;
	const char *text;
} cases[] = {
	{ 0, "0 B" },
	{ 1, "1 B" },
	{ 1023, "1023 B" },
	{ 1024, "1.0 KiB" },
	{ 1536, "1.5 KiB" },
	{ 102400, "100.0 KiB" },
	/* Rounding to 1024.0 steps up a unit. */
	{ 1048524, "1023.9 KiB" },
	{ 1048525, "1.0 MiB" },
	{ 1048575, "1.0 MiB" },
	{ 1048576, "1.0 MiB" },
	{ 104857600, "100.0 MiB" },
	{ 1536ULL * 1024 * 1024, "1.5 GiB" },
	{ 112640000000ULL, "104.9 GiB" },
	{ 1099511627776ULL, "1.0 TiB" },
	{ 1125899906842624ULL, "1.0 PiB" },
	{ INT64_MAX, "8.0 EiB" },
	/* EiB is the last unit. */
	{ UINT64_MAX, "16.0 EiB" },
};

START_TEST(test_format_bytes)
{
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = units_format_bytes(buf, sizeof(buf), cases[i].bytes);

		ck_assert_str_eq(buf, cases[i].text);
		ck_assert_int_eq(n, (int)strlen(cases[i].text));
	}
}
END_TEST

START_TEST(test_format_bytes_truncates)
{
	char buf[4];

	/* snprintf's contract: the full length, a NUL-terminated prefix. */
	ck_assert_int_eq(units_format_bytes(buf, sizeof(buf), 104857600), 9);
	ck_assert_str_eq(buf, "100");
	ck_assert_int_eq(units_format_bytes(NULL, 0, 1023), 6);
}
END_TEST

static Suite *units_suite(void)
{
	Suite *s = suite_create("units");
	TCase *tc = tcase_create("bytes");

	tcase_add_test(tc, test_format_bytes);
	tcase_add_test(tc, test_format_bytes_truncates);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(units_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
