/* loadgen: the benchmark's load client. Single-threaded, one epoll set.
 *
 * Fetch mode keeps CONC connections busy until TOTAL fetches are done: each
 * connects, sends REQUEST, reads until the server closes, and is replaced by
 * a new connection. It prints one line of figures:
 *
 *   fetches=N conc=C bytes=B wall=S MBps=X reqps=Y p50ms=.. p99ms=.. failed=F short=S
 *
 * (MBps is bytes / wall / 1048576) and exits 1 when a fetch failed or, with
 * -e, returned another byte count than expected.
 *
 * Idle mode opens N connections that send nothing, holds them for SECONDS,
 * prints "idle=N opened=K" and closes them: the cost of a quiet connection
 * to the server, measured from outside. With -s they send REQUEST once
 * connected and then read nothing: stalled readers, whose sockets the
 * server fills and then must leave alone.
 *
 * Built by bench/run with "gcc -O2"; it needs nothing but Linux and libc. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 8192
#define RECV_BUFFER_BYTES (256 * 1024)
/* recv() calls one readable connection gets per wakeup, so that one fast
 * transfer cannot starve the other connections of the client's attention. */
#define RECV_ROUNDS 8
/* With no event at all for this long, the run is abandoned as failed. */
#define STALL_TIMEOUT_MS 30000
/* Idle mode: connects in progress at once, so that the server's listen
 * backlog is never flooded, and the longest the opening may take. */
#define IDLE_PENDING_MAX 256
#define IDLE_OPEN_TIMEOUT_MS 30000

struct options {
	const char *host;
	int port;
	char request[REQUEST_MAX];
	size_t request_len;
	int concurrency;
	long total;
	long long expected_bytes; /* -1: not checked */
	long idle_count;          /* 0: fetch mode */
	double idle_seconds;
	int stall;                /* -s: idle connections send REQUEST */
};

/* One connection of fetch mode; its slot is reused for the next fetch. */
struct fetch {
	int fd;
	size_t sent;         /* bytes of the request sent so far */
	long long received;  /* bytes of the answer received so far */
	double started_s;    /* when connect() was called */
};

/* Totals of one fetch-mode run. */
struct run {
	struct sockaddr_in addr;
	int epoll_fd;
	long started;
	long done;
	long failed;
	long short_count;
	long long bytes;
	double *latency_s; /* one per finished fetch */
};

static char recv_buffer[RECV_BUFFER_BYTES];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loadgen -p PORT [-h HOST] [-r 'REQUEST\\n'] -c CONC -n TOTAL [-e EXPECTED_BYTES]\n"
		"       loadgen -p PORT [-h HOST] [-s -r 'REQUEST\n'] -i COUNT -t SECONDS\n");
}

/* Copies TEXT into the request, turning the two-character escapes \n and
 * \r into LF and CR. Returns -1 when it does not fit. */
static int set_request(struct options *opt, const char *text)
{
	size_t len = 0;

	for (; *text != '\0'; text++) {
		char ch = *text;

		if (ch == '\\' && (text[1] == 'n' || text[1] == 'r')) {
			ch = text[1] == 'n' ? '\n' : '\r';
			text++;
		}
		if (len == sizeof(opt->request))
			return -1;
		opt->request[len++] = ch;
	}
	opt->request_len = len;
	return 0;
}

/* Parses a whole decimal number in [MIN, MAX]; returns -1 otherwise. */
static int parse_long(const char *text, long min, long max, long *out)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < min ||
	    value > max)
		return -1;
	*out = value;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	long value;
	char *end;
	int ch;

	opt->host = "127.0.0.1";
	opt->port = 0;
	opt->concurrency = 1;
	opt->total = 1;
	opt->expected_bytes = -1;
	opt->idle_count = 0;
	opt->idle_seconds = 0;
	opt->stall = 0;
	set_request(opt, "/\n");
	while ((ch = getopt(argc, argv, "h:p:r:c:n:e:i:t:s")) != -1) {
		switch (ch) {
		case 'h':
			opt->host = optarg;
			break;
		case 'p':
			if (parse_long(optarg, 1, 65535, &value) < 0)
				goto bad;
			opt->port = (int)value;
			break;
		case 'r':
			if (set_request(opt, optarg) < 0)
				goto bad;
			break;
		case 'c':
			if (parse_long(optarg, 1, 1000000, &value) < 0)
				goto bad;
			opt->concurrency = (int)value;
			break;
		case 'n':
			if (parse_long(optarg, 1, 100000000, &value) < 0)
				goto bad;
			opt->total = value;
			break;
		case 'e':
			if (parse_long(optarg, 0, LONG_MAX, &value) < 0)
				goto bad;
			opt->expected_bytes = value;
			break;
		case 'i':
			if (parse_long(optarg, 1, 10000000, &value) < 0)
				goto bad;
			opt->idle_count = value;
			break;
		case 's':
			opt->stall = 1;
			break;
		case 't':
			errno = 0;
			opt->idle_seconds = strtod(optarg, &end);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    opt->idle_seconds < 0 || opt->idle_seconds > 86400)
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind < argc || opt->port == 0)
		goto bad;
	if (opt->request_len == 0)
		goto bad;
	return 0;
bad:
	usage(stderr);
	return -1;
}

/* Starts a non-blocking connect to ADDR; returns the socket or -1. */
static int start_connect(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Starts the next fetch in slot F. A connect that fails at once is a
 * finished, failed fetch, and the next one is tried in the same slot, until
 * none is left to start (then F->fd stays -1). */
static void start_fetch(struct run *run, const struct options *opt,
			struct fetch *f)
{
	while (run->started < opt->total) {
		struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = f };

		run->started++;
		f->sent = 0;
		f->received = 0;
		f->started_s = now_s();
		f->fd = start_connect(&run->addr);
		if (f->fd >= 0 &&
		    epoll_ctl(run->epoll_fd, EPOLL_CTL_ADD, f->fd, &ev) == 0)
			return;
		perror("loadgen: connect");
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
		run->latency_s[run->done++] = now_s() - f->started_s;
		run->failed++;
	}
}

/* Records the end of F's fetch and starts the next one in its slot. */
static void finish_fetch(struct run *run, const struct options *opt,
			 struct fetch *f, bool failed)
{
	run->latency_s[run->done++] = now_s() - f->started_s;
	if (failed)
		run->failed++;
	else if (opt->expected_bytes >= 0 &&
		 f->received != opt->expected_bytes)
		run->short_count++;
	close(f->fd); /* which also takes it out of the epoll set */
	f->fd = -1;
	start_fetch(run, opt, f);
}

/* Sends what is left of the request; once it is all out, waits for the
 * answer instead. Returns -1 when the connection failed. */
static int send_request(struct run *run, const struct options *opt,
			struct fetch *f)
{
	while (f->sent < opt->request_len) {
		ssize_t n = send(f->fd, opt->request + f->sent,
				 opt->request_len - f->sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -1;
		f->sent += (size_t)n;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = f };

	return epoll_ctl(run->epoll_fd, EPOLL_CTL_MOD, f->fd, &ev);
}

/* Reads what has arrived. Returns 1 at the server's EOF, 0 when more is to
 * come, -1 on an error (a reset, typically). */
static int receive_answer(struct run *run, struct fetch *f)
{
	for (int round = 0; round < RECV_ROUNDS; round++) {
		ssize_t n = recv(f->fd, recv_buffer, sizeof(recv_buffer), 0);

		if (n > 0) {
			f->received += n;
			run->bytes += n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return -1;
	}
	return 0;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The nearest-rank percentile P (0..100) of the N sorted values. */
static double percentile(const double *sorted, long n, double p)
{
	long rank;

	if (n == 0)
		return 0;
	rank = (long)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int run_fetches(const struct options *opt, const struct sockaddr_in *addr)
{
	struct epoll_event events[256];
	struct run run = { .addr = *addr };
	struct fetch *fetches;
	int concurrency = opt->concurrency;
	double start_s;
	double wall_s;

	if (concurrency > opt->total)
		concurrency = (int)opt->total;
	run.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	run.latency_s = calloc((size_t)opt->total, sizeof(*run.latency_s));
	fetches = calloc((size_t)concurrency, sizeof(*fetches));
	if (run.epoll_fd < 0 || run.latency_s == NULL || fetches == NULL) {
		perror("loadgen");
		return 2;
	}
	start_s = now_s();
	for (int i = 0; i < concurrency; i++)
		start_fetch(&run, opt, &fetches[i]);
	while (run.done < opt->total) {
		int n = epoll_wait(run.epoll_fd, events, 256, STALL_TIMEOUT_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "loadgen: nothing happened for %d s; "
				"%ld of %ld fetches done\n",
				STALL_TIMEOUT_MS / 1000, run.done, opt->total);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct fetch *f = events[i].data.ptr;
			int rc = 0;

			if (f->sent < opt->request_len) {
				if (events[i].events & (EPOLLERR | EPOLLHUP))
					rc = -1;
				else
					rc = send_request(&run, opt, f);
			} else {
				rc = receive_answer(&run, f);
			}
			if (rc != 0)
				finish_fetch(&run, opt, f, rc < 0);
		}
	}
	wall_s = now_s() - start_s;
	/* Fetches never finished count as failed. */
	run.failed += opt->total - run.done;

	qsort(run.latency_s, (size_t)run.done, sizeof(double), compare_double);
	printf("fetches=%ld conc=%d bytes=%lld wall=%.4f MBps=%.1f reqps=%.1f "
	       "p50ms=%.3f p99ms=%.3f failed=%ld short=%ld\n",
	       run.done, concurrency, run.bytes, wall_s,
	       (double)run.bytes / wall_s / 1048576.0,
	       (double)run.done / wall_s,
	       percentile(run.latency_s, run.done, 50) * 1e3,
	       percentile(run.latency_s, run.done, 99) * 1e3,
	       run.failed, run.short_count);
	for (int i = 0; i < concurrency; i++)
		if (fetches[i].fd >= 0)
			close(fetches[i].fd);
	free(fetches);
	free(run.latency_s);
	close(run.epoll_fd);
	return run.failed > 0 || run.short_count > 0 ? 1 : 0;
}

/* Raises the soft open-file limit to the hard one: idle mode holds one
 * descriptor per connection. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Idle mode: one connection's state. */
enum idle_state { IDLE_UNUSED, IDLE_CONNECTING, IDLE_OPEN, IDLE_GONE };

struct idle {
	const struct options *opt;
	int epoll_fd;
	int *fds;
	enum idle_state *state;
	long connecting; /* connects in progress */
	long opened;     /* connects that succeeded */
	long refused;    /* connects that failed */
	long ended;      /* open connections the server ended */
};

/* Handles one event on connection IDX: a connect completing, or, once
 * open, the server ending the connection (an ERR line, a timeout), which
 * is counted and taken out of the set. */
static void idle_event(struct idle *idle, long idx, uint32_t events)
{
	int fd = idle->fds[idx];

	if (idle->state[idx] == IDLE_CONNECTING) {
		/* A stalled reader is sent bytes it never reads: it waits
		 * for the server's end only (EPOLLIN would never go quiet). */
		struct epoll_event ev = { .events = idle->opt->stall
							    ? EPOLLRDHUP
							    : EPOLLIN | EPOLLRDHUP,
					  .data.u64 = (uint64_t)idx };
		int err = 0;
		socklen_t len = sizeof(err);

		idle->connecting--;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
		    err == 0 && !(events & (EPOLLERR | EPOLLHUP))) {
			if (idle->opt->stall &&
			    send(fd, idle->opt->request, idle->opt->request_len,
				 MSG_NOSIGNAL) != (ssize_t)idle->opt->request_len) {
				idle->refused++;
				goto gone;
			}
			idle->state[idx] = IDLE_OPEN;
			idle->opened++;
			epoll_ctl(idle->epoll_fd, EPOLL_CTL_MOD, fd, &ev);
			return;
		}
		idle->refused++;
	} else if (idle->state[idx] == IDLE_OPEN) {
		idle->ended++;
	} else {
		return;
	}
gone:
	idle->state[idx] = IDLE_GONE;
	close(fd);
	idle->fds[idx] = -1;
}

/* Waits up to TIMEOUT_MS for events and handles them. */
static void idle_poll(struct idle *idle, int timeout_ms)
{
	struct epoll_event events[256];
	int n = epoll_wait(idle->epoll_fd, events, 256, timeout_ms);

	for (int i = 0; i < n; i++)
		idle_event(idle, (long)events[i].data.u64, events[i].events);
}

static int run_idle(const struct options *opt, const struct sockaddr_in *addr)
{
	long count = opt->idle_count;
	struct idle idle = { .opt = opt, .epoll_fd = -1 };
	long started = 0;
	double deadline_s;
	int rc = 2;

	raise_fd_limit();
	idle.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	idle.fds = malloc((size_t)count * sizeof(*idle.fds));
	idle.state = calloc((size_t)count, sizeof(*idle.state));
	if (idle.epoll_fd < 0 || idle.fds == NULL || idle.state == NULL) {
		perror("loadgen");
		goto out;
	}
	for (long i = 0; i < count; i++)
		idle.fds[i] = -1;

	/* Open, at most IDLE_PENDING_MAX connects at a time so that the
	 * server's listen backlog never overflows, within a bounded time. */
	deadline_s = now_s() + IDLE_OPEN_TIMEOUT_MS / 1000.0;
	while (started < count || idle.connecting > 0) {
		if (now_s() > deadline_s) {
			fprintf(stderr, "loadgen: %ld connects still pending "
				"after %d s\n", idle.connecting,
				IDLE_OPEN_TIMEOUT_MS / 1000);
			break;
		}
		while (started < count && idle.connecting < IDLE_PENDING_MAX) {
			struct epoll_event ev = { .events = EPOLLOUT,
						  .data.u64 = (uint64_t)started };
			int fd = start_connect(addr);

			if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
				fprintf(stderr, "loadgen: out of file "
					"descriptors after %ld connections\n",
					started);
				count = started;
				break;
			}
			if (fd < 0 ||
			    epoll_ctl(idle.epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
				if (fd >= 0)
					close(fd);
				idle.state[started++] = IDLE_GONE;
				idle.refused++;
				continue;
			}
			idle.fds[started] = fd;
			idle.state[started++] = IDLE_CONNECTING;
			idle.connecting++;
		}
		idle_poll(&idle, 100);
	}

	/* Hold. */
	deadline_s = now_s() + opt->idle_seconds;
	for (;;) {
		double left_ms = (deadline_s - now_s()) * 1e3;

		if (left_ms <= 0)
			break;
		idle_poll(&idle, left_ms > 1000 ? 1000 : (int)left_ms + 1);
	}

	printf("idle=%ld opened=%ld\n", opt->idle_count, idle.opened);
	fflush(stdout);
	if (idle.refused > 0 || idle.ended > 0)
		fprintf(stderr, "loadgen: %ld connects failed; the server "
			"ended %ld connections while they were held\n",
			idle.refused, idle.ended);
	rc = idle.opened == opt->idle_count && idle.ended == 0 ? 0 : 1;
out:
	if (idle.fds != NULL)
		for (long i = 0; i < started; i++)
			if (idle.fds[i] >= 0)
				close(idle.fds[i]);
	free(idle.fds);
	free(idle.state);
	if (idle.epoll_fd >= 0)
		close(idle.epoll_fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct sockaddr_in addr = { .sin_family = AF_INET };

	if (parse_options(argc, argv, &opt) < 0)
		return 2;
	addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) {
		fprintf(stderr, "loadgen: %s is not an IPv4 address\n", opt.host);
		return 2;
	}
	if (opt.idle_count > 0)
		return run_idle(&opt, &addr);
	return run_fetches(&opt, &addr);
}
