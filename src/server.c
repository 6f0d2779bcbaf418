/* The server: listeners, root, limits, reload and shutdown. See server.h. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients.h"
#include "conn.h"
#include "log.h"
#include "service.h"
#include "transfer.h"
#include "translog.h"

#define FERRY_BACKLOG 4096

static void maybe_stopped(struct server *srv);

struct root_ref *root_ref_get(struct root_ref *root)
{
	root->refs++;
	return root;
}

void root_ref_put(struct root_ref *root)
{
	if (root == NULL || --root->refs > 0)
		return;
	close(root->fd);
	free(root);
}

/* Opens the served directory. 0 or -errno. */
static int root_open(const char *path, struct root_ref **out)
{
	struct root_ref *root;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	root = malloc(sizeof *root);
	if (root == NULL) {
		close(fd);
		return -ENOMEM;
	}
	root->fd = fd;
	root->refs = 1;
	*out = root;
	return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct listener *l = listener->data;
	struct server *srv = l->srv;
	struct conn *c;
	int rc;

	if (status < 0) {
		log_warn("accept on %s: %s", l->name, uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		log_error("accept on %s: out of memory", l->name);
		return;
	}
	c->srv = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	uv_timer_init(srv->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->handles = 2;
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
	if (rc < 0) {
		log_warn("accept on %s: %s", l->name, uv_strerror(rc));
		conn_close(c);
		return;
	}
	conn_start(c);
}

static void listener_close_cb(uv_handle_t *handle)
{
	struct listener *l = handle->data;
	struct server *srv = l->srv;

	srv->listeners_open--;
	maybe_stopped(srv);
}

static void close_listeners(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->listener_count; i++) {
		uv_handle_t *h = (uv_handle_t *)&srv->listeners[i].tcp;
		if (!uv_is_closing(h))
			uv_close(h, listener_close_cb);
	}
}

/* Binds and listens on one address; the bound name (with the real port when
 * the config said 0) goes into L->name. 0 or a UV_E* code. */
static int listen_one(struct server *srv, struct listener *l,
		      const struct listen_addr *addr)
{
	struct sockaddr_storage bound;
	int len = sizeof bound;
	unsigned flags = 0;
	int rc;

	l->srv = srv;
	rc = uv_tcp_init(srv->loop, &l->tcp);
	if (rc < 0)
		return rc;
	l->tcp.data = l;
	srv->listener_count++;
	srv->listeners_open++;
	/* "[::]:7070" and "0.0.0.0:7070" may both be listed. */
	if (addr->addr.ss_family == AF_INET6)
		flags |= UV_TCP_IPV6ONLY;
	rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr->addr, flags);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, FERRY_BACKLOG,
			       on_connection);
	if (rc < 0)
		return rc;
	if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len) == 0)
		conn_format_addr((struct sockaddr *)&bound, l->name,
				 sizeof l->name);
	else
		snprintf(l->name, sizeof l->name, "%s", addr->text);
	return 0;
}

/* Takes over a listening socket systemd passed (socket activation). */
static int listen_fd(struct server *srv, struct listener *l, int fd)
{
	struct sockaddr_storage bound;
	int len = sizeof bound;
	int rc;

	l->srv = srv;
	rc = uv_tcp_init(srv->loop, &l->tcp);
	if (rc < 0)
		return rc;
	l->tcp.data = l;
	srv->listener_count++;
	srv->listeners_open++;
	rc = uv_tcp_open(&l->tcp, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&l->tcp, FERRY_BACKLOG,
			       on_connection);
	if (rc < 0)
		return rc;
	if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len) == 0)
		conn_format_addr((struct sockaddr *)&bound, l->name,
				 sizeof l->name);
	else
		snprintf(l->name, sizeof l->name, "fd %d", fd);
	return 0;
}

/* Uses the sockets systemd passed, if any: 0 when there were none, the
 * number taken, or a negative errno. */
static int listen_activated(struct server *srv)
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
		rc = listen_fd(srv, &srv->listeners[i], fd);
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

int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg,
		 const int *fds, size_t fd_count)
{
	size_t i;
	int rc;

	memset(srv, 0, sizeof *srv);
	srv->loop = loop;
	rc = root_open(cfg->root, &srv->root);
	if (rc < 0) {
		log_error("cannot open root %s: %s", cfg->root, strerror(-rc));
		return rc;
	}
	srv->clients = clients_new();
	if (srv->clients == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < fd_count; i++) {
		rc = listen_fd(srv, &srv->listeners[i], fds[i]);
		if (rc < 0) {
			log_error("cannot listen on socket %d: %s", fds[i],
				  uv_strerror(rc));
			goto fail;
		}
	}
	rc = fd_count > 0 ? (int)fd_count : listen_activated(srv);
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
	for (i = 0; i < srv->listener_count; i++)
		log_info("listening on %s", srv->listeners[i].name);
	return 0;

fail:
	close_listeners(srv);
	root_ref_put(srv->root);
	srv->root = NULL;
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

void server_conn_closed(struct server *srv, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->admitted)
		srv->conn_count--;
	maybe_stopped(srv);
}

/* The shutdown deadline: transfers still running are cut and logged. */
static void deadline_cb(uv_timer_t *timer)
{
	struct server *srv = timer->data;
	struct conn *c, *next;
	unsigned cut = 0;

	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		if (c->xfer != NULL) {
			cut++;
			transfer_fail(c, c->xfer, 503, "shutdown");
		} else {
			conn_close(c);
		}
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
	srv->stopping = true;
	srv->on_stopped = on_stopped;
	close_listeners(srv);
	for (c = srv->conns; c != NULL; c = next) {
		next = c->next;
		if (c->xfer != NULL && !c->closing)
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

void server_free(struct server *srv)
{
	root_ref_put(srv->root);
	srv->root = NULL;
	clients_free(srv->clients);
	srv->clients = NULL;
	config_free(srv->cfg);
	srv->cfg = NULL;
}
