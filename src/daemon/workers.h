/* workers: N. The parent binds every listen address once per worker with
 * SO_REUSEPORT (the kernel spreads new connections across the workers'
 * sockets) or takes systemd's sockets for all, drops privileges, forks the
 * workers and supervises them: it forwards SIGTERM, SIGINT and SIGHUP,
 * restarts a worker that dies, tells systemd when it is ready, and exits
 * when every worker has stopped. Limits are counted per worker. */
#ifndef FERRY_WORKERS_H
#define FERRY_WORKERS_H

#include <stddef.h>

#include "daemon/config.h"

/* Serves CFG on the listening sockets FDS in the calling (worker) process;
 * returns its exit status. */
typedef int (*workers_serve_fn)(struct config *cfg, const int *fds,
				size_t fd_count);

/* Runs COUNT workers; AFTER_BIND runs in the parent once the sockets are
 * bound (privileges are dropped there). Returns the exit status. */
int workers_run(struct config *cfg, unsigned count, workers_serve_fn serve,
		int (*after_bind)(struct config *cfg));

#endif
