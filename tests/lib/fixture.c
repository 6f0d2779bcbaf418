/* The checks every integration test ends with: see fixture.h. */
#include "fixture.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

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
 * adds them for one daemon), and the TCase names it made. */
static struct h_daemon *mode_daemon;
static int mode_stop_ms;
static char **mode_names;
static size_t mode_names_used;

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

void fixture_add_mode_tests(Suite *suite, struct h_daemon *d, int stop_ms,
			    const struct fixture_test *tests, size_t n)
{
	static const char *const modes[] = { "sendfile", "buffered" };
	char **names;
	size_t m, i;

	mode_daemon = d;
	mode_stop_ms = stop_ms;
	names = realloc(mode_names, (mode_names_used + 2 * n) * sizeof *names);
	if (names == NULL)
		abort();
	mode_names = names;
	for (m = 0; m < 2; m++) {
		for (i = 0; i < n; i++) {
			TCase *tc;
			char *name;

			if (asprintf(&name, "%s_%s", tests[i].name, modes[m]) < 0)
				abort();
			mode_names[mode_names_used++] = name;
			tc = tcase_create(name);
			tcase_set_tags(tc, modes[m]);
			tcase_add_checked_fixture(tc,
						  m == 0 ? mode_setup_sendfile
							 : mode_setup_buffered,
						  mode_teardown);
			tcase_set_timeout(tc, tests[i].timeout_s);
			tcase_add_test(tc, *tests[i].fn);
			suite_add_tcase(suite, tc);
		}
	}
}

static void free_mode_names(void)
{
	size_t i;

	for (i = 0; i < mode_names_used; i++)
		free(mode_names[i]);
	free(mode_names);
	mode_names = NULL;
	mode_names_used = 0;
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
		free_mode_names();
		h_run_cleanup();
		return EXIT_FAILURE;
	}
	fprintf(stderr, "%s: ferryd is %s\n", prog, h_ferryd_path());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free_mode_names();
	h_reap_orphans();
	h_run_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
