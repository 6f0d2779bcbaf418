/* The server: listeners, the served root, the connection limits, the
 * current configuration, and the shutdown/reload lifecycle.
 *
 * Who calls it: ferryd.c runs one server per process and workers.c makes
 * its listening sockets (the section "for ferryd.c/workers.c"); conn.c asks
 * it for the limits, the settings, the root and the budget, and reports
 * admitted and closed connections (the section "for conn.c"). Nothing else:
 * transfer.c gets what it needs of the server from conn.c. server.c calls
 * in turn conn.h's section "for server.c" (making, walking, draining and
 * cutting connections), budget.h, root.h, rate.h, clients.h, translog.h
 * and service.h. struct server is opaque: only server.c touches its fields.
 */
#ifndef FERRY_SERVER_H
#define FERRY_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "daemon/config.h"

struct budget;
struct client_table;
struct rate_shared;
struct root_ref;
struct server;

/* ---- for ferryd.c/workers.c ---- */

/* A server that serves nothing yet; NULL when out of memory. */
struct server *server_new(void);

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

/* SIGTERM: with limits.drain > 0, drains first for that long (everything is
 * served, but PING answers ERR 503 draining), then server_shutdown. Without
 * a drain, or called again while draining, it is server_shutdown. */
void server_drain(struct server *srv, void (*on_stopped)(struct server *));

/* Frees SRV and what server_start made, once the loop has closed every
 * handle. */
void server_free(struct server *srv);

/* ---- for ferryd.c and conn.c ---- */

/* The configuration in force (replaced whole by a reload). */
const struct config *server_config(const struct server *srv);

/* ---- for conn.c ---- */

/* Whether a shutdown has begun: new requests are not answered. */
bool server_stopping(const struct server *srv);

/* Whether the server drains before a shutdown (server_drain). */
bool server_draining(const struct server *srv);

/* The descriptor budget, the root in force, the per-client table and the
 * shared bucket of limits.rate_total (rate.h), which the server owns. */
struct budget *server_budget(struct server *srv);
struct root_ref *server_root(struct server *srv);
struct client_table *server_clients(struct server *srv);
struct rate_shared *server_rate_shared(struct server *srv);

/* Whether limits.connections connections are admitted already. */
bool server_conn_limit_reached(const struct server *srv);

/* A connection passed the limits: it counts in them until it closes. */
void server_conn_admitted(struct server *srv);

/* A connection is gone (unlinked from the server's list, its socket
 * closed); ADMITTED: it counted in the limits. */
void server_conn_closed(struct server *srv, bool admitted);

#endif
