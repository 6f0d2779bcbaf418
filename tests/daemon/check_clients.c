/* Unit tests for clients.c: per-address connection counts, the limit, the
 * address forms that count as one client, and a table that grows to 100k
 * addresses and shrinks back. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "daemon/clients.h"

static struct client_table *table;

static void setup(void)
{
	table = clients_new();
	ck_assert_ptr_nonnull(table);
}

static void teardown(void)
{
	clients_free(table);
	table = NULL;
}

static struct sockaddr_in v4(const char *ip, unsigned short port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	return a;
}

static struct sockaddr_in6 v6(const char *ip, unsigned short port)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	return a;
}

#define SA(a) ((const struct sockaddr *)&(a))

START_TEST(acquire_up_to_max)
{
	struct sockaddr_in a = v4("192.0.2.1", 1000);
	int k;

	for (k = 0; k < 3; k++)
		ck_assert_int_eq(clients_acquire(table, SA(a), 3), 0);
	ck_assert_uint_eq(clients_count(table, SA(a)), 3);
	/* The refused one is not counted. */
	ck_assert_int_eq(clients_acquire(table, SA(a), 3), -1);
	ck_assert_uint_eq(clients_count(table, SA(a)), 3);

	clients_release(table, SA(a));
	ck_assert_uint_eq(clients_count(table, SA(a)), 2);
	ck_assert_int_eq(clients_acquire(table, SA(a), 3), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 3), -1);

	/* A higher limit (after a reload) lets more in. */
	ck_assert_int_eq(clients_acquire(table, SA(a), 4), 0);
	ck_assert_uint_eq(clients_count(table, SA(a)), 4);
}
END_TEST

START_TEST(release_to_zero)
{
	struct sockaddr_in a = v4("192.0.2.1", 1000);
	struct sockaddr_in b = v4("192.0.2.2", 1000);
	struct sockaddr_in never = v4("192.0.2.3", 1);

	ck_assert_uint_eq(clients_count(table, SA(a)), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(b), 2), 0);
	clients_release(table, SA(a));
	ck_assert_uint_eq(clients_count(table, SA(a)), 0);
	ck_assert_uint_eq(clients_count(table, SA(b)), 1);
	/* A forgotten address starts again from zero. */
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), -1);
	/* Releasing an address never acquired changes nothing. */
	clients_release(table, SA(never));
	ck_assert_uint_eq(clients_count(table, SA(a)), 2);
	ck_assert_uint_eq(clients_count(table, SA(b)), 1);
}
END_TEST

START_TEST(port_ignored)
{
	struct sockaddr_in a = v4("198.51.100.7", 1);
	struct sockaddr_in b = v4("198.51.100.7", 65535);
	struct sockaddr_in6 c = v6("2001:db8::7", 1);
	struct sockaddr_in6 d = v6("2001:db8::7", 2);

	ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(b), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), -1);
	ck_assert_uint_eq(clients_count(table, SA(b)), 2);

	ck_assert_int_eq(clients_acquire(table, SA(c), 1), 0);
	ck_assert_int_eq(clients_acquire(table, SA(d), 1), -1);
	clients_release(table, SA(d));
	ck_assert_uint_eq(clients_count(table, SA(c)), 0);
}
END_TEST

START_TEST(v4_v6_separate)
{
	/* The same sixteen bytes as v4 127.0.0.1 would be, at v6's start,
	 * and :: versus 0.0.0.0: different clients. */
	struct sockaddr_in a = v4("127.0.0.1", 1);
	struct sockaddr_in6 b = v6("7f00:1::", 1);
	struct sockaddr_in zero4 = v4("0.0.0.0", 1);
	struct sockaddr_in6 zero6 = v6("::", 1);

	ck_assert_int_eq(clients_acquire(table, SA(a), 1), 0);
	ck_assert_int_eq(clients_acquire(table, SA(b), 1), 0);
	ck_assert_int_eq(clients_acquire(table, SA(zero4), 1), 0);
	ck_assert_int_eq(clients_acquire(table, SA(zero6), 1), 0);
	ck_assert_uint_eq(clients_count(table, SA(a)), 1);
	ck_assert_uint_eq(clients_count(table, SA(b)), 1);
	ck_assert_uint_eq(clients_count(table, SA(zero4)), 1);
	ck_assert_uint_eq(clients_count(table, SA(zero6)), 1);
}
END_TEST

START_TEST(v4_mapped_is_v4)
{
	struct sockaddr_in a = v4("203.0.113.9", 1);
	struct sockaddr_in6 m = v6("::ffff:203.0.113.9", 2);
	struct sockaddr_in6 compat = v6("::203.0.113.9", 3);

	ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(m), 2), 0);
	ck_assert_int_eq(clients_acquire(table, SA(a), 2), -1);
	ck_assert_int_eq(clients_acquire(table, SA(m), 2), -1);
	ck_assert_uint_eq(clients_count(table, SA(a)), 2);
	ck_assert_uint_eq(clients_count(table, SA(m)), 2);
	/* Only the mapped form: the old compatible form is a v6 address. */
	ck_assert_uint_eq(clients_count(table, SA(compat)), 0);

	clients_release(table, SA(a));
	clients_release(table, SA(m));
	ck_assert_uint_eq(clients_count(table, SA(a)), 0);
}
END_TEST

START_TEST(unix_socket_one_client)
{
	struct sockaddr_un u;

	memset(&u, 0, sizeof(u));
	u.sun_family = AF_UNIX;
	ck_assert_int_eq(clients_acquire(table, SA(u), 1), 0);
	ck_assert_int_eq(clients_acquire(table, SA(u), 1), -1);
	clients_release(table, SA(u));
	ck_assert_uint_eq(clients_count(table, SA(u)), 0);
}
END_TEST

START_TEST(max_zero)
{
	struct sockaddr_in a = v4("192.0.2.1", 1);

	ck_assert_int_eq(clients_acquire(table, SA(a), 0), -1);
	ck_assert_uint_eq(clients_count(table, SA(a)), 0);
}
END_TEST

#define MANY 100000

static struct sockaddr_in many_v4(int k)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(0x0a000000u + (unsigned)k);
	return a;
}

static struct sockaddr_in6 many_v6(int k)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_addr.s6_addr[0] = 0x20;
	a.sin6_addr.s6_addr[1] = 0x01;
	a.sin6_addr.s6_addr[13] = (unsigned char)(k >> 16);
	a.sin6_addr.s6_addr[14] = (unsigned char)(k >> 8);
	a.sin6_addr.s6_addr[15] = (unsigned char)k;
	return a;
}

START_TEST(many_grow_and_shrink)
{
	int k, round;

	/* Twice, so the second round runs on a table that shrank. */
	for (round = 0; round < 2; round++) {
		for (k = 0; k < MANY; k++) {
			struct sockaddr_in a = many_v4(k);
			struct sockaddr_in6 b = many_v6(k);

			ck_assert_int_eq(clients_acquire(table, SA(a), 2), 0);
			ck_assert_int_eq(clients_acquire(table, SA(b), 2), 0);
		}
		for (k = 0; k < MANY; k += 1000) {
			struct sockaddr_in a = many_v4(k);
			struct sockaddr_in6 b = many_v6(k);

			ck_assert_uint_eq(clients_count(table, SA(a)), 1);
			ck_assert_uint_eq(clients_count(table, SA(b)), 1);
		}
		/* Release the even ones and check the odd are intact. */
		for (k = 0; k < MANY; k += 2) {
			struct sockaddr_in a = many_v4(k);
			struct sockaddr_in6 b = many_v6(k);

			clients_release(table, SA(a));
			clients_release(table, SA(b));
		}
		for (k = 0; k < MANY; k++) {
			struct sockaddr_in a = many_v4(k);
			struct sockaddr_in6 b = many_v6(k);
			size_t want = (size_t)(k & 1);

			ck_assert_uint_eq(clients_count(table, SA(a)), want);
			ck_assert_uint_eq(clients_count(table, SA(b)), want);
		}
		for (k = 1; k < MANY; k += 2) {
			struct sockaddr_in a = many_v4(k);
			struct sockaddr_in6 b = many_v6(k);

			clients_release(table, SA(a));
			clients_release(table, SA(b));
		}
		for (k = 0; k < MANY; k += 999) {
			struct sockaddr_in a = many_v4(k);

			ck_assert_uint_eq(clients_count(table, SA(a)), 0);
		}
	}
}
END_TEST

START_TEST(free_with_entries)
{
	int k;

	/* clients_free must release what is still counted (valgrind). */
	for (k = 0; k < 1000; k++) {
		struct sockaddr_in a = many_v4(k);

		ck_assert_int_eq(clients_acquire(table, SA(a), 5), 0);
	}
	clients_free(NULL);
}
END_TEST

static Suite *clients_suite(void)
{
	Suite *s = suite_create("clients");
	TCase *tc;

	tc = tcase_create("counting");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, acquire_up_to_max);
	tcase_add_test(tc, release_to_zero);
	tcase_add_test(tc, port_ignored);
	tcase_add_test(tc, v4_v6_separate);
	tcase_add_test(tc, v4_mapped_is_v4);
	tcase_add_test(tc, unix_socket_one_client);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, max_zero);
	tcase_add_test(tc, many_grow_and_shrink);
	tcase_add_test(tc, free_with_entries);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(clients_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
