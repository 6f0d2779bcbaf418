/* The checks every integration test ends with, shared by the suites. */
#ifndef FERRY_FIXTURE_H
#define FERRY_FIXTURE_H

#include <check.h>
#include <stddef.h>

#include "harness.h"

/* Asserts that the daemon D started (if any) is alive, holds no more
 * descriptors than after startup, exits 0 within STOP_MS of SIGTERM, and
 * left no unexpected error line in its log; then removes D's directory. */
void fixture_teardown(struct h_daemon *d, int stop_ms);

/* Makes D's directory for MODE and starts ferryd there, or fails the test. */
void fixture_start(struct h_daemon *d, const char *mode);

/* Stops D's daemon, which must exit 0 within STOP_MS of SIGTERM, writes its
 * config with OVERRIDES (as h_write_config takes them) and starts it again,
 * or fails the test. */
void fixture_restart(struct h_daemon *d, const char *overrides, int stop_ms);

/* One integration test, run once per transfer mode: its name, START_TEST's
 * pointer, its timeout. */
struct fixture_test {
	const char *name;
	const TTest *const *fn; /* START_TEST makes a pointer variable */
	int timeout_s;
};

/* Adds each of the N TESTS to SUITE twice, once per transfer mode, as the
 * TCases "<name>_sendfile" and "<name>_buffered" tagged with the mode: D
 * started in that mode before (fixture_start), fixture_teardown(D,
 * STOP_MS) after. The names are freed by fixture_run. */
void fixture_add_mode_tests(Suite *suite, struct h_daemon *d, int stop_ms,
			    const struct fixture_test *tests, size_t n);

/* A suite NAME holding each of the N TESTS once per transfer mode: a TCase
 * "<test>_<mode>" tagged with the mode, with SETUP_SENDFILE or
 * SETUP_BUFFERED and TEARDOWN as its checked fixture. The TCases' names
 * are freed when fixture_run returns. */
Suite *fixture_mode_suite(const char *name, const struct fixture_test *tests,
			  size_t n, SFun setup_sendfile, SFun setup_buffered,
			  SFun teardown);

/* Adds each of the N TESTS to SUITE as a TCase of its name, tagged TAG,
 * with SETUP and TEARDOWN around it (for tests that start no daemon, or
 * their own). */
void fixture_add_tests(Suite *suite, const char *tag, void (*setup)(void),
		       void (*teardown)(void), const struct fixture_test *tests,
		       size_t n);

/* Runs SUITE as every integration program does: SIGPIPE ignored (a write
 * to a socket the daemon closed must fail, not kill), orphans adopted and
 * reaped, the shared test files made and removed. PROG names the program in
 * messages. Returns main's exit status. */
int fixture_run(const char *prog, Suite *suite);

#endif
