/* The server: listeners, the served root, the connection limits, the
 * current configuration, and the shutdown/reload lifecycle. */
#ifndef FERRY_SERVER_H
#define FERRY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"

struct conn;
struct budget;
struct client_table;
struct root_ref;

struct listener {
	uv_poll_t poll;  /* readable: clients waiting to be accepted */
	int fd;
	struct server *srv;
	char name[64]; /* "127.0.0.1:7070", with the bound port */
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
	uv_timer_t deadline;     /* shutdown: then in-flight transfers are cut */
	bool deadline_open;
	void (*on_stopped)(struct server *srv); /* every connection is gone */
};

/* Opens the root and listens: on FDS (FD_COUNT sockets bound by the
 * parent of workers), else on the sockets systemd passed, else on every
 * listen address of CFG. Takes ownership of CFG on success. Logs "listening
 * on ADDR" per listener. 0 or -errno; on failure nothing stays bound and CFG
 * is still the caller's. */
int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg,
		 const int *fds, size_t fd_count);

/* A listening TCP socket bound to ADDR (IPv6 sockets IPv6 only), with
 * SO_REUSEPORT when REUSEPORT (workers each bind their own). The fd, or a
 * negative errno. */
int server_listen_socket(const struct sockaddr *addr, socklen_t len,
			 bool reuseport);

/* Swaps in NEW_CFG (taking ownership): new root, limits, timeouts, transfer
 * settings and logs. Transfers in flight keep the settings they began with.
 * 0, or -errno with the old configuration kept (NEW_CFG freed). */
int server_reload(struct server *srv, struct config *new_cfg);

/* Stops accepting, closes idle connections, lets transfers in flight run for
 * up to the configured shutdown_timeout, then cuts the rest. Calls
 * ON_STOPPED once no connection is left. */
void server_shutdown(struct server *srv, void (*on_stopped)(struct server *));

/* Frees what server_start made, once the loop has closed every handle. */
void server_free(struct server *srv);

/* Called by conn.c when a connection is gone. */
void server_conn_closed(struct server *srv, struct conn *c);

#endif
