/* The checks every integration test ends with, shared by the suites. */
#ifndef FERRY_FIXTURE_H
#define FERRY_FIXTURE_H

#include <check.h>

#include "harness.h"

/* Asserts that the daemon D started (if any) is alive, holds no more
 * descriptors than after startup, exits 0 within STOP_MS of SIGTERM, and
 * left no unexpected error line in its log; then removes D's directory. */
void fixture_teardown(struct h_daemon *d, int stop_ms);

/* Makes D's directory for MODE and starts ferryd there, or fails the test. */
void fixture_start(struct h_daemon *d, const char *mode);

/* Runs SUITE as every integration program does: SIGPIPE ignored (a write
 * to a socket the daemon closed must fail, not kill), orphans adopted and
 * reaped, the shared test files made and removed. PROG names the program in
 * messages. Returns main's exit status. */
int fixture_run(const char *prog, Suite *suite);

#endif
