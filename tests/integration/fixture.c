/* The checks every integration test ends with: see fixture.h. */
#include "fixture.h"

#include <check.h>
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
