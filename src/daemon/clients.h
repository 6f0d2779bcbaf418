/* Connections per client address, for limits.per_client. */
#ifndef FERRY_CLIENTS_H
#define FERRY_CLIENTS_H

#include <stddef.h>
#include <sys/socket.h>

struct client_table;

struct client_table *clients_new(void);
void clients_free(struct client_table *t);
/* Counts one more connection from ADDR's IP (port ignored). Returns 0, or
 * -1 (nothing counted) when it already holds MAX, or -ENOMEM. */
int clients_acquire(struct client_table *t, const struct sockaddr *addr,
		    size_t max);
/* Forgets one connection from ADDR, taken with clients_acquire. */
void clients_release(struct client_table *t, const struct sockaddr *addr);
/* Connections now counted for ADDR's IP. */
size_t clients_count(const struct client_table *t, const struct sockaddr *addr);

#endif
