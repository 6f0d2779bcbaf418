/* The checks every integration test ends with: see fixture.h. */
#include "fixture.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* The TCase names add_mode_tcases made: Check keeps the pointers, so
 * they live until the runner is done. */
static char **case_names;
static size_t case_names_used;

void fixture_teardown(struct h_daemon *d, int stop_ms)
{
	char first[1024];
	int n, rc, status = 0;

	if (d->pid > 0) {
		ck_assert_msg(h_alive(d), "ferryd is gone; its log: %s",
			      h_diag_tail(d));
		n = h_wait_fd_count(d->pid, d->fd_baseline, 5000);
		ck_assert_msg(n == d->fd_baseline,
			      "ferryd holds %d fds, %d after startup: %s", n,
			      d->fd_baseline, h_fd_list(d->pid));
		rc = h_stop(d, stop_ms, &status);
		ck_assert_msg(rc == 0, "ferryd did not exit within %d ms of "
				       "SIGTERM: %s",
			      stop_ms, h_diag_tail(d));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "ferryd exit status 0x%x after SIGTERM: %s",
			      status, h_diag_tail(d));
	}
	n = h_diag_errors(d, first, sizeof(first));
	ck_assert_msg(n == 0, "%d unexpected error line(s) in ferryd's log; "
			      "the first: %s",
		      n, first);
	h_teardown(d);
}

void fixture_start(struct h_daemon *d, const char *mode)
{
	char msg[4096];
	int rc;

	rc = h_setup(d, mode);
	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	rc = h_start(d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "starting %s: %s", h_ferryd_path(), msg);
}

/* The daemon and stop time of fixture_add_mode_tests' TCases (one program
 * adds them for one daemon). */
static struct h_daemon *mode_daemon;
static int mode_stop_ms;

static void mode_setup_sendfile(void)
{
	fixture_start(mode_daemon, "sendfile");
}

static void mode_setup_buffered(void)
{
	fixture_start(mode_daemon, "buffered");
}

static void mode_teardown(void)
{
	fixture_teardown(mode_daemon, mode_stop_ms);
}

/* Adds each of the N TESTS to SUITE once per transfer mode, as the TCases
 * "<test>_<mode>" tagged with the mode, with SETUP_SENDFILE or
 * SETUP_BUFFERED and TEARDOWN as their checked fixture. */
static void add_mode_tcases(Suite *suite, const struct fixture_test *tests,
			    size_t n, SFun setup_sendfile, SFun setup_buffered,
			    SFun teardown)
{
	static const char *const modes[] = { "sendfile", "buffered" };
	size_t m, i;

	case_names = realloc(case_names,
			     (case_names_used + 2 * n) * sizeof(*case_names));
	if (case_names == NULL)
		abort();
	for (m = 0; m < 2; m++) {
		for (i = 0; i < n; i++) {
			char **tc_name = &case_names[case_names_used];
			TCase *tc;

			if (asprintf(tc_name, "%s_%s", tests[i].name,
				     modes[m]) < 0)
				abort();
			case_names_used++;
			tc = tcase_create(*tc_name);
			tcase_set_tags(tc, modes[m]);
			tcase_add_checked_fixture(tc,
						  m == 0 ? setup_sendfile
							 : setup_buffered,
						  teardown);
			tcase_set_timeout(tc, tests[i].timeout_s);
			tcase_add_test(tc, *tests[i].fn);
			suite_add_tcase(suite, tc);
		}
	}
}

void fixture_add_mode_tests(Suite *suite, struct h_daemon *d, int stop_ms,
			    const struct fixture_test *tests, size_t n)
{
	mode_daemon = d;
	mode_stop_ms = stop_ms;
	add_mode_tcases(suite, tests, n, mode_setup_sendfile,
			mode_setup_buffered, mode_teardown);
}

Suite *fixture_mode_suite(const char *name, const struct fixture_test *tests,
			  size_t n, SFun setup_sendfile, SFun setup_buffered,
			  SFun teardown)
{
	Suite *s = suite_create(name);

	add_mode_tcases(s, tests, n, setup_sendfile, setup_buffered, teardown);
	return s;
}

void fixture_restart(struct h_daemon *d, const char *overrides, int stop_ms)
{
	char msg[4096];
	int rc, status = 0;

	rc = h_stop(d, stop_ms, &status);
	ck_assert_msg(rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "stopping for a restart: %s, status 0x%x",
		      h_strerror(rc), status);
	rc = h_write_config(d, overrides);
	ck_assert_msg(rc == 0, "config: %s", h_strerror(rc));
	rc = h_start(d, msg, sizeof(msg));
	ck_assert_msg(rc == 0, "restarting with %s: %s", overrides, msg);
}

void fixture_add_tests(Suite *suite, const char *tag, void (*setup)(void),
		       void (*teardown)(void), const struct fixture_test *tests,
		       size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		TCase *tc = tcase_create(tests[i].name);

		tcase_set_tags(tc, tag);
		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_set_timeout(tc, tests[i].timeout_s);
		tcase_add_test(tc, *tests[i].fn);
		suite_add_tcase(suite, tc);
	}
}

int fixture_run(const char *prog, Suite *suite)
{
	SRunner *sr = srunner_create(suite);
	int failed, rc;

	signal(SIGPIPE, SIG_IGN);
	h_adopt_orphans();
	rc = h_run_init();
	if (rc < 0) {
		fprintf(stderr, "%s: cannot make the test files: %s\n", prog,
			h_strerror(rc));
		srunner_free(sr);
		h_run_cleanup();
		return EXIT_FAILURE;
	}
	fprintf(stderr, "%s: ferryd is %s\n", prog, h_ferryd_path());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	h_reap_orphans();
	h_run_cleanup();
	while (case_names_used > 0)
		free(case_names[--case_names_used]);
	free(case_names);
	case_names = NULL;
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
