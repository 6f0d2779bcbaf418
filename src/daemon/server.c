/* The server: listeners, root, limits, reload and shutdown. See server.h. */
#include "daemon/server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/budget.h"
#include "daemon/clients.h"
#include "daemon/metrics.h"
#include "daemon/conn.h"
#include "common/log.h"
#include "daemon/rate.h"
#include "daemon/root.h"
#include "daemon/service.h"
#include "daemon/translog.h"

#define FERRY_BACKLOG 4096
/* Connections accepted per wakeup of a listener, before others' events. */
#define FERRY_ACCEPT_BATCH 8
#define FERRY_ACCEPT_RETRY_MS 250

struct listener {
	uv_poll_t poll;  /* readable: clients waiting to be accepted */
	int fd;
	struct server *srv;
	char name[64]; /* "127.0.0.1:7070", with the bound port */
	bool proxy;    /* connections start with a PROXY header */
};

struct server {
	uv_loop_t *loop;
	struct config *cfg; /* owned; replaced whole by a reload */
	struct root_ref *root;
	struct listener listeners[FERRY_MAX_LISTEN];
	size_t listener_count;
	size_t listeners_open; /* handles not yet closed */
	struct client_table *clients;
	struct conn *conns;      /* every open connection, for shutdown */
	uint64_t conn_count;     /* connections admitted (counted in limits) */
	bool stopping;
	bool accept_paused;      /* too few descriptors left */
	uv_timer_t resume;       /* looks again after an EMFILE */
	bool resume_open;
	uint64_t pause_logged_ms;
	uv_timer_t log_timer;    /* log.flush */
	struct budget *budget;   /* descriptors: owned */
	struct rate_shared *rate; /* limits.rate_total's bucket: owned */
	uv_timer_t deadline;     /* shutdown: then in-flight transfers are cut */
	bool deadline_open;
	uv_timer_t drain;        /* limits.drain: then the shutdown begins */
	bool draining;
	void (*on_stopped)(struct server *srv); /* every connection is gone */
};

static void maybe_stopped(struct server *srv);

static void pause_accepting(struct server *srv, uint64_t retry_ms);

static void fds_released(void *arg);

static void resume_timer_cb(uv_timer_t *timer)
{
	fds_released(timer->data);
}

/* Takes one accepted socket FD into a new connection. */
static void admit(struct server *srv, int fd,
		  const struct sockaddr_storage *peer, bool proxy)
{
	/* The socket counts from now on; server_conn_closed releases it. */
	budget_take(srv->budget, 1);
	if (conn_new(srv, srv->loop, &srv->conns, fd, peer, proxy) < 0) {
		budget_put(srv->budget, 1);
		log_error("accept: out of memory");
		close(fd);
		return;
	}
	metrics_conn_opened();
}

/* Accepts what is waiting, a bounded batch per wakeup. With descriptors
 * short, clients are still accepted but answered ERR 503 (each holds its fd
 * only for that line); closer still to the limit, accepting pauses until a
 * connection closes, so an EMFILE never makes the loop spin. */
static void accept_cb(uv_poll_t *handle, int status, int events)
{
	struct listener *l = handle->data;
	struct server *srv = l->srv;
	int i;

	(void)events;
	if (status < 0) {
		log_warn("accept on %s: %s", l->name, uv_strerror(status));
		return;
	}
	for (i = 0; i < FERRY_ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t peer_len;
		int fd;

		if (budget_exhausted(srv->budget)) {
			pause_accepting(srv, 0);
			return;
		}
		peer_len = sizeof peer;
		fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				log_warn("accept on %s: %s; pausing", l->name,
					 strerror(errno));
				pause_accepting(srv, FERRY_ACCEPT_RETRY_MS);
				return;
			}
			log_warn("accept on %s: %s", l->name, strerror(errno));
			return;
		}
		admit(srv, fd, &peer, l->proxy);
	}
}

static void pause_accepting(struct server *srv, uint64_t retry_ms)
{
	size_t i;

	if (!srv->accept_paused) {
		for (i = 0; i < srv->listener_count; i++)
			uv_poll_stop(&srv->listeners[i].poll);
		srv->accept_paused = true;
		metrics_accept_paused();
		/* Under a flood this flaps: say it once a second at most. */
		if (uv_now(srv->loop) - srv->pause_logged_ms >= 1000 ||
		    srv->pause_logged_ms == 0) {
			srv->pause_logged_ms = uv_now(srv->loop);
			log_warn("accepting paused: %llu of %llu file "
				 "descriptors in use",
				 (unsigned long long)budget_in_use(srv->budget),
				 (unsigned long long)budget_limit(srv->budget));
		}
	}
	/* Descriptors used outside our count (another thread, a library) come
	 * back without telling us: look again later. */
	if (retry_ms > 0)
		uv_timer_start(&srv->resume, resume_timer_cb, retry_ms, 0);
}

/* Descriptors were given back (a file or a socket closed): accept again if
 * paused. The budget's RELEASED callback. */
static void fds_released(void *arg)
{
	struct server *srv = arg;
	size_t i;

	if (!srv->accept_paused || srv->stopping ||
	    budget_tight(srv->budget))
		return;
	uv_timer_stop(&srv->resume);
	for (i = 0; i < srv->listener_count; i++)
		uv_poll_start(&srv->listeners[i].poll, UV_READABLE, accept_cb);
	srv->accept_paused = false;
	log_debug("accepting again: %llu of %llu file descriptors in use",
		  (unsigned long long)budget_in_use(srv->budget),
		  (unsigned long long)budget_limit(srv->budget));
}

static void listener_close_cb(uv_handle_t *handle)
{
	struct listener *l = handle->data;
	struct server *srv = l->srv;

	close(l->fd);
	srv->listeners_open--;
	maybe_stopped(srv);
}

static void close_listeners(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->listener_count; i++) {
		uv_handle_t *h = (uv_handle_t *)&srv->listeners[i].poll;
		if (!uv_is_closing(h))
			uv_close(h, listener_close_cb);
	}
	if (srv->resume_open && !uv_is_closing((uv_handle_t *)&srv->resume))
		uv_close((uv_handle_t *)&srv->resume, NULL);
}

/* How long, in seconds, a connection that has sent nothing stays in the
 * kernel before it is accepted anyway (TCP_DEFER_ACCEPT): one SYN-ACK
 * retransmission, after which an idle client is accepted and meets the
 * request timeout as before. */
#define FERRY_DEFER_ACCEPT_S 1

/* Socket options every accepted connection inherits. Not fatal: without
 * them the daemon only costs its clients more.
 * - TCP_QUICKACK off: the request is acknowledged by the answer's first
 *   segment instead of a pure ACK of its own (one packet of nine fewer
 *   for a small file, on both hosts' CPUs).
 * - TCP_LINGER2 -1: a connection ferryd closes (the raw form's end, a
 *   refusal) is gone once the client has acknowledged every byte and the
 *   FIN, instead of waiting in FIN_WAIT2 and then TIME_WAIT; the client's
 *   own FIN, after it has read everything, is answered by a reset.
 *   Nothing sent is lost (the socket ends only when all of it is
 *   acknowledged); what is saved is a TIME_WAIT socket per connection,
 *   made in the client's kernel context (4 KiB fetches: 31 -> 23 us of the
 *   client's CPU each, 1.3x the requests per second). close_gracefully
 *   puts TCP's default back before a half-close.
 * - TCP_DEFER_ACCEPT (listen entries' "deferred", on by default): a
 *   connection is accepted when its request has arrived, so the loop wakes
 *   once for it and reads it at once, instead of waking for the
 *   connection, finding nothing to read and waiting for the socket. */
static void tune_listener(int fd, bool deferred)
{
	int off = 0, secs = deferred ? FERRY_DEFER_ACCEPT_S : 0, no_linger = -1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &off, sizeof off);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_LINGER2, &no_linger,
			 sizeof no_linger);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
			 sizeof secs);
}

/* Serves a listening socket: ours, a worker parent's or systemd's, with
 * the options of its listen entry ENTRY (NULL: none names it, the
 * defaults). Its name (with the real port when the config said 0) goes
 * into L->name. 0 or a UV_E* code; FD is the listener's to close from then
 * on. */
static int listen_fd(struct server *srv, struct listener *l, int fd,
		     const struct listen_addr *entry)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof bound;
	int rc;

	l->srv = srv;
	l->fd = fd;
	l->proxy = entry != NULL && entry->proxy_protocol;
	tune_listener(fd, entry == NULL || entry->deferred);
	rc = uv_poll_init_socket(srv->loop, &l->poll, fd);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	l->poll.data = l;
	srv->listener_count++;
	srv->listeners_open++;
	rc = uv_poll_start(&l->poll, UV_READABLE, accept_cb);
	if (rc < 0)
		return rc;
	if (getsockname(fd, (struct sockaddr *)&bound, &len) == 0)
		conn_format_addr((struct sockaddr *)&bound, l->name,
				 sizeof l->name);
	else
		snprintf(l->name, sizeof l->name, "fd %d", fd);
	return 0;
}

int server_listen_socket(const struct sockaddr *addr, socklen_t len,
			 bool reuseport)
{
	int one = 1;
	int fd = socket(addr->sa_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		goto fail;
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		goto fail;
	/* "[::]:7070" and "0.0.0.0:7070" may both be listed. */
	if (addr->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
		goto fail;
	if (bind(fd, addr, len) < 0 || listen(fd, FERRY_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	return -err;
}

/* Binds and listens on one address of the config. 0 or a UV_E* code. */
static int listen_one(struct server *srv, struct listener *l,
		      const struct listen_addr *addr)
{
	int fd = server_listen_socket((const struct sockaddr *)&addr->addr,
				      addr->addr_len, false);

	return fd < 0 ? fd : listen_fd(srv, l, fd, addr);
}

/* Whether the socket bound to BOUND is the listen entry A: the same
 * address and port, or with ZERO_ANY any port when A's is 0 (the kernel
 * chose it). */
static bool is_entry(const struct listen_addr *a,
		     const struct sockaddr_storage *bound, bool zero_any)
{
	if (a->addr.ss_family != bound->ss_family)
		return false;
	if (bound->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->addr;
		const struct sockaddr_in *y = (const void *)bound;

		return x->sin_addr.s_addr == y->sin_addr.s_addr &&
		       (x->sin_port == y->sin_port ||
			(zero_any && x->sin_port == 0));
	}
	if (bound->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)&a->addr;
		const struct sockaddr_in6 *y = (const void *)bound;

		return memcmp(&x->sin6_addr, &y->sin6_addr,
			      sizeof x->sin6_addr) == 0 &&
		       (x->sin6_port == y->sin6_port ||
			(zero_any && x->sin6_port == 0));
	}
	return false;
}

/* The listen entry of the socket FD that came bound (from a workers
 * parent, the INDEX-th, or from systemd), whose options (proxy_protocol,
 * deferred) it takes; NULL when none names its address. The parent binds
 * the entries in order, so entry INDEX is tried first (its port may have
 * been 0); systemd's sockets are matched by address and port. */
static const struct listen_addr *socket_entry(const struct config *cfg,
					      int fd, size_t index)
{
	struct sockaddr_storage bound;
	socklen_t len = sizeof bound;
	size_t i;

	if (getsockname(fd, (struct sockaddr *)&bound, &len) < 0)
		return NULL;
	if (index < cfg->listen_count &&
	    is_entry(&cfg->listen[index], &bound, true))
		return &cfg->listen[index];
	for (i = 0; i < cfg->listen_count; i++)
		if (is_entry(&cfg->listen[i], &bound, false))
			return &cfg->listen[i];
	return NULL;
}

/* Uses the sockets systemd passed, if any: 0 when there were none, the
 * number taken, or a negative errno. */
static int listen_activated(struct server *srv, const struct config *cfg)
{
	int n = service_listen_fds();
	int i, rc;

	if (n <= 0)
		return n;
	if (n > FERRY_MAX_LISTEN) {
		log_error("systemd passed %d sockets; at most %d are used", n,
			  FERRY_MAX_LISTEN);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		int fd = FERRY_LISTEN_FDS_START + i;

		if (!service_is_tcp_listener(fd)) {
			log_error("socket %d from systemd is not a listening "
				  "TCP socket", fd);
			return -EINVAL;
		}
		rc = listen_fd(srv, &srv->listeners[i], fd,
			       socket_entry(cfg, fd, FERRY_MAX_LISTEN));
		if (rc < 0) {
			log_error("cannot listen on socket %d from systemd: %s",
				  fd, uv_strerror(rc));
			return rc;
		}
	}
	log_info("using %d socket%s from systemd; listen: is ignored", n,
		 n == 1 ? "" : "s");
	return n;
}

static void log_flush_cb(uv_timer_t *timer)
{
	(void)timer;
	translog_flush();
}

/* log.flush: buffered transfer-log lines are written every so often. The
 * timer does not keep the loop alive; translog_close writes the rest. */
static void log_flush_apply(struct server *srv, uint64_t flush_ms)
{
	if (flush_ms > 0 && translog_set_buffered(true) == 0) {
		uv_timer_start(&srv->log_timer, log_flush_cb, flush_ms,
			       flush_ms);
		return;
	}
	uv_timer_stop(&srv->log_timer);
	translog_set_buffered(false);
}

struct server *server_new(void)
{
	return calloc(1, sizeof(struct server));
}

int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg,
		 const int *fds, size_t fd_count)
{
	size_t i;
	int rc;

	srv->loop = loop;
	rc = root_open(cfg->root, &srv->root);
	if (rc < 0) {
		log_error("cannot open root %s: %s", cfg->root, strerror(-rc));
		return rc;
	}
	srv->budget = budget_new(fds_released, srv);
	if (srv->budget == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	uv_timer_init(loop, &srv->resume);
	srv->resume.data = srv;
	srv->resume_open = true;
	srv->clients = clients_new();
	srv->rate = rate_shared_new(cfg->rate_total_bps);
	if (srv->clients == NULL || srv->rate == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < fd_count; i++) {
		rc = listen_fd(srv, &srv->listeners[i], fds[i],
			       socket_entry(cfg, fds[i], i));
		if (rc < 0) {
			log_error("cannot listen on socket %d: %s", fds[i],
				  uv_strerror(rc));
			goto fail;
		}
	}
	rc = fd_count > 0 ? (int)fd_count : listen_activated(srv, cfg);
	if (rc < 0)
		goto fail;
	for (i = 0; rc == 0 && i < cfg->listen_count; i++) {
		rc = listen_one(srv, &srv->listeners[i], &cfg->listen[i]);
		if (rc < 0) {
			log_error("cannot listen on %s: %s",
				  cfg->listen[i].text, uv_strerror(rc));
			goto fail;
		}
		rc = 0;
	}
	srv->cfg = cfg;
	uv_timer_init(loop, &srv->log_timer);
	uv_unref((uv_handle_t *)&srv->log_timer);
	log_flush_apply(srv, cfg->log_flush_ms);
	for (i = 0; i < srv->listener_count; i++)
		log_info("listening on %s%s", srv->listeners[i].name,
			 srv->listeners[i].proxy ? " (PROXY protocol)" : "");
	return 0;

fail:
	close_listeners(srv);
	root_ref_put(srv->root);
	srv->root = NULL;
	budget_free(srv->budget);
	srv->budget = NULL;
	rate_shared_free(srv->rate);
	srv->rate = NULL;
	return rc;
}

static bool same_listen(const struct config *a, const struct config *b)
{
	size_t i;

	if (a->listen_count != b->listen_count)
		return false;
	for (i = 0; i < a->listen_count; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return false;
	return true;
}

int server_reload(struct server *srv, struct config *new_cfg)
{
	struct root_ref *root;
	int rc;

	rc = root_open(new_cfg->root, &root);
	if (rc < 0) {
		log_error("reload: cannot open root %s: %s; keeping the old "
			  "configuration", new_cfg->root, strerror(-rc));
		config_free(new_cfg);
		return rc;
	}
	rc = translog_open(new_cfg->transfer_log, new_cfg->log_format);
	if (rc < 0) {
		log_error("reload: cannot open transfer log %s: %s; keeping "
			  "the old configuration", new_cfg->transfer_log,
			  strerror(-rc));
		root_ref_put(root);
		config_free(new_cfg);
		return rc;
	}
	if (!same_listen(srv->cfg, new_cfg))
		log_warn("reload: listen addresses changed; they take effect "
			 "on restart");
	if (srv->cfg->threads != new_cfg->threads)
		log_warn("reload: threads changed; it takes effect on restart");
	root_ref_put(srv->root);
	srv->root = root;
	config_free(srv->cfg);
	srv->cfg = new_cfg;
	/* Transfers in flight keep their limits.rate; the shared bucket is
	 * the worker's, so its new rate holds for all of them from now on. */
	rate_shared_set(srv->rate, new_cfg->rate_total_bps);
	log_flush_apply(srv, new_cfg->log_flush_ms);
	log_set_level(new_cfg->log_level);
	log_info("configuration reloaded from %s", new_cfg->file);
	return 0;
}

static void maybe_stopped(struct server *srv)
{
	if (!srv->stopping || srv->conns != NULL || srv->listeners_open > 0)
		return;
	if (srv->deadline_open) {
		uv_timer_stop(&srv->deadline);
		uv_close((uv_handle_t *)&srv->deadline, NULL);
		srv->deadline_open = false;
	}
	if (srv->on_stopped != NULL) {
		void (*cb)(struct server *) = srv->on_stopped;
		srv->on_stopped = NULL;
		cb(srv);
	}
}

const struct config *server_config(const struct server *srv)
{
	return srv->cfg;
}

bool server_stopping(const struct server *srv)
{
	return srv->stopping;
}

bool server_draining(const struct server *srv)
{
	return srv->draining;
}

struct budget *server_budget(struct server *srv)
{
	return srv->budget;
}

struct root_ref *server_root(struct server *srv)
{
	return srv->root;
}

struct client_table *server_clients(struct server *srv)
{
	return srv->clients;
}

struct rate_shared *server_rate_shared(struct server *srv)
{
	return srv->rate;
}

bool server_conn_limit_reached(const struct server *srv)
{
	return srv->conn_count >= srv->cfg->max_connections;
}

void server_conn_admitted(struct server *srv)
{
	srv->conn_count++;
}

void server_conn_closed(struct server *srv, bool admitted)
{
	if (admitted)
		srv->conn_count--;
	metrics_conn_closed();
	budget_release(srv->budget, 1);
	maybe_stopped(srv);
}

/* The shutdown deadline: transfers still running are cut and logged. */
static void deadline_cb(uv_timer_t *timer)
{
	struct server *srv = timer->data;
	struct conn *c, *next;
	unsigned cut = 0;

	for (c = srv->conns; c != NULL; c = next) {
		next = conn_next(c);
		if (conn_cut(c))
			cut++;
	}
	if (cut > 0)
		log_warn("shutdown: cut %u transfer%s still running after "
			 "%llu ms", cut, cut == 1 ? "" : "s",
			 (unsigned long long)srv->cfg->shutdown_timeout_ms);
}

void server_shutdown(struct server *srv, void (*on_stopped)(struct server *))
{
	struct conn *c, *next;
	unsigned busy = 0;

	if (srv->stopping)
		return;
	if (srv->draining) {
		uv_close((uv_handle_t *)&srv->drain, NULL);
		srv->draining = false;
	}
	srv->stopping = true;
	srv->on_stopped = on_stopped;
	close_listeners(srv);
	for (c = srv->conns; c != NULL; c = next) {
		next = conn_next(c);
		if (conn_busy(c))
			busy++;
		conn_drain(c);
	}
	log_info("shutting down: %u transfer%s in flight", busy,
		 busy == 1 ? "" : "s");
	uv_timer_init(srv->loop, &srv->deadline);
	srv->deadline.data = srv;
	srv->deadline_open = true;
	uv_timer_start(&srv->deadline, deadline_cb, srv->cfg->shutdown_timeout_ms,
		       0);
	maybe_stopped(srv);
}

static void drain_done_cb(uv_timer_t *timer)
{
	struct server *srv = timer->data;

	log_info("drain over after %llu ms",
		 (unsigned long long)srv->cfg->drain_ms);
	server_shutdown(srv, srv->on_stopped);
}

void server_drain(struct server *srv, void (*on_stopped)(struct server *))
{
	uint64_t drain_ms = srv->cfg->drain_ms;

	if (srv->stopping)
		return;
	if (srv->draining || drain_ms == 0) {
		if (srv->draining)
			log_info("draining cut short");
		server_shutdown(srv, on_stopped);
		return;
	}
	srv->draining = true;
	srv->on_stopped = on_stopped;
	uv_timer_init(srv->loop, &srv->drain);
	srv->drain.data = srv;
	uv_timer_start(&srv->drain, drain_done_cb, drain_ms, 0);
	log_info("draining for %llu ms: PING answers 503, the rest is served",
		 (unsigned long long)drain_ms);
}

void server_free(struct server *srv)
{
	root_ref_put(srv->root);
	srv->root = NULL;
	clients_free(srv->clients);
	srv->clients = NULL;
	budget_free(srv->budget);
	srv->budget = NULL;
	rate_shared_free(srv->rate);
	config_free(srv->cfg);
	free(srv);
}
