/* Several worker processes sharing the listen addresses: see workers.h. */
#include "daemon/workers.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/metrics.h"
#include "daemon/server.h"
#include "daemon/service.h"

/* A worker that dies sooner than this after its start is restarted only
 * after this long, so a crash loop does not spin. */
#define FERRY_RESPAWN_MS 1000

/* systemd passed the sockets: every worker uses the same ones. */
static bool shared_fds;

struct worker {
	pid_t pid;
	int fds[FERRY_MAX_LISTEN];
	size_t fd_count;
	struct timespec started;
};

/* Gives every worker its listening sockets: systemd's, shared by all, or
 * one per worker and address. The first worker's bind fixes the port when
 * the config says 0, and the others bind that port. */
static int open_listeners(const struct config *cfg, struct worker *w,
			  unsigned count)
{
	int passed = service_listen_fds();
	unsigned i;
	size_t a;

	if (passed < 0)
		return passed;
	if (passed > FERRY_MAX_LISTEN)
		return -EINVAL;
	shared_fds = passed > 0;
	for (i = 0; i < count; i++) {
		if (passed > 0) {
			for (a = 0; a < (size_t)passed; a++)
				w[i].fds[a] = FERRY_LISTEN_FDS_START + (int)a;
			w[i].fd_count = (size_t)passed;
			continue;
		}
		for (a = 0; a < cfg->listen_count; a++) {
			struct sockaddr_storage ss = cfg->listen[a].addr;
			socklen_t len = cfg->listen[a].addr_len;
			int fd;

			if (i > 0) {
				socklen_t got = sizeof ss;
				getsockname(w[0].fds[a], (struct sockaddr *)&ss,
					    &got);
			}
			fd = server_listen_socket((struct sockaddr *)&ss, len,
						  true);
			if (fd < 0) {
				log_error("cannot listen on %s: %s",
					  cfg->listen[a].text, strerror(-fd));
				return fd;
			}
			w[i].fds[a] = fd;
			w[i].fd_count = a + 1;
		}
	}
	return 0;
}

static pid_t spawn(struct config *cfg, struct worker *all, unsigned count,
		   unsigned index, workers_serve_fn serve)
{
	sigset_t none;
	pid_t pid = fork();
	unsigned i;
	size_t a;

	if (pid != 0) {
		if (pid > 0) {
			all[index].pid = pid;
			clock_gettime(CLOCK_MONOTONIC, &all[index].started);
		}
		return pid;
	}
	/* The worker keeps its own sockets only (shared ones are the same
	 * numbers in every worker), and leaves readiness to the parent. */
	for (i = 0; i < count && !shared_fds; i++) {
		if (i == index)
			continue;
		for (a = 0; a < all[i].fd_count; a++)
			close(all[i].fds[a]);
	}
	metrics_worker(index);
	unsetenv("NOTIFY_SOCKET");
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* exit, not _exit: libuv's destructor releases its signal pipe and joins
	 * the idle pool threads. */
	exit(serve(cfg, all[index].fds, all[index].fd_count));
}

static void signal_all(const struct worker *w, unsigned count, int sig)
{
	unsigned i;

	for (i = 0; i < count; i++)
		if (w[i].pid > 0)
			kill(w[i].pid, sig);
}

static uint64_t ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - t->tv_nsec) / 1000000);
}

int workers_run(struct config *cfg, unsigned count, workers_serve_fn serve,
		int (*after_bind)(struct config *cfg))
{
	struct worker *w = calloc(count, sizeof *w);
	unsigned running = 0, i;
	bool stopping = false;
	int status = 0;
	sigset_t set;
	int rc;

	if (w == NULL)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);

	rc = open_listeners(cfg, w, count);
	if (rc == 0)
		rc = after_bind(cfg);
	if (rc < 0) {
		free(w);
		return 1;
	}
	for (i = 0; i < count; i++) {
		if (spawn(cfg, w, count, i, serve) < 0) {
			log_error("cannot start worker %u: %s", i,
				  strerror(errno));
			signal_all(w, count, SIGTERM);
			stopping = true;
			status = 1;
			break;
		}
		running++;
	}
	if (!stopping) {
		log_info("started %u workers", count);
		service_notify("READY=1");
	}

	while (running > 0) {
		siginfo_t info;
		struct timespec wait = { .tv_sec = 1 };
		int sig = sigtimedwait(&set, &info, &wait);
		pid_t pid;
		int wstatus;

		if (sig == SIGTERM || sig == SIGINT) {
			if (!stopping)
				service_notify("STOPPING=1");
			stopping = true;
			/* As received: a worker drains on SIGTERM only, and a
			 * second one cuts its drain short. */
			signal_all(w, count, sig);
		} else if (sig == SIGHUP) {
			service_notify("RELOADING=1");
			signal_all(w, count, SIGHUP);
			service_notify("READY=1");
		}
		while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
			for (i = 0; i < count && w[i].pid != pid; i++)
				;
			if (i == count)
				continue;
			w[i].pid = 0;
			running--;
			if (stopping)
				continue;
			log_warn("worker %u (pid %d) %s %d; restarting it", i,
				  (int)pid,
				  WIFSIGNALED(wstatus) ? "killed by signal" :
							 "exited with",
				  WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) :
							 WEXITSTATUS(wstatus));
			if (ms_since(&w[i].started) < FERRY_RESPAWN_MS)
				usleep(FERRY_RESPAWN_MS * 1000);
			if (spawn(cfg, w, count, i, serve) > 0)
				running++;
		}
	}
	for (i = 0; i < count && (i == 0 || !shared_fds); i++)
		for (size_t a = 0; a < w[i].fd_count; a++)
			close(w[i].fds[a]);
	free(w);
	log_info("stopped");
	return status;
}
