/* The descriptor budget: see budget.h. */
#include "daemon/budget.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>

/* Descriptors kept free: each admitted connection may still open a file
 * (and, resolving it, two directories); the headroom covers that, libuv's
 * own and the logs' reopening. */
#define FERRY_FD_RESERVE 16

struct budget {
	uint64_t fd_limit;       /* RLIMIT_NOFILE */
	uint64_t fd_base;        /* open before any client */
	uint64_t fds_used;       /* client sockets, and files jobs may open */
	void (*released)(void *arg);
	void *arg;
};

struct budget *budget_new(void (*released)(void *arg), void *arg)
{
	struct budget *b = calloc(1, sizeof *b);
	struct rlimit rl;
	DIR *d;

	if (b == NULL)
		return NULL;
	b->released = released;
	b->arg = arg;
	b->fd_limit = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		b->fd_limit = rl.rlim_cur;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		b->fd_limit = 1 << 20;
	/* Listeners, the root, the logs, libuv's epoll, eventfd and signal
	 * pipe, and a margin for the threadpool's own. */
	b->fd_base = 16;
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		uint64_t n = 0;
		while (readdir(d) != NULL)
			n++;
		closedir(d);
		b->fd_base = n + 8;
	}
	return b;
}

void budget_free(struct budget *b)
{
	free(b);
}

/* Whether accepting one more client could leave too few descriptors for
 * the files, directories and sockets of those already admitted, keeping
 * RESERVES times the reserve free. */
static bool fds_short(const struct budget *b, unsigned reserves)
{
	uint64_t spare = b->fd_limit > b->fd_base ?
				 b->fd_limit - b->fd_base : 0;
	/* A small limit gets a proportionally small reserve, so that it can
	 * still serve a few clients. */
	uint64_t reserve = spare / 8;

	if (reserve > FERRY_FD_RESERVE)
		reserve = FERRY_FD_RESERVE;
	if (reserve < 2)
		reserve = 2;
	return b->fds_used + reserve * reserves >= spare;
}

bool budget_exhausted(const struct budget *b)
{
	return fds_short(b, 1);
}

bool budget_tight(const struct budget *b)
{
	return fds_short(b, 2);
}

uint64_t budget_in_use(const struct budget *b)
{
	return b->fd_base + b->fds_used;
}

uint64_t budget_limit(const struct budget *b)
{
	return b->fd_limit;
}

void budget_take(struct budget *b, uint64_t n)
{
	b->fds_used += n;
}

void budget_put(struct budget *b, uint64_t n)
{
	b->fds_used -= n;
}

void budget_release(struct budget *b, uint64_t n)
{
	b->fds_used -= n;
	b->released(b->arg);
}
