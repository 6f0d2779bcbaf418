/* The descriptor budget: how many file descriptors the process may use
 * (RLIMIT_NOFILE), how many were open before any client, and how many the
 * clients use now (their sockets, plus two for each open job and one for
 * each open file).
 *
 * Who calls it: server.c makes it at start, counts each client's socket and
 * decides from it when to refuse new clients and when to pause accepting;
 * conn.c asks whether a new client must be refused; transfer.c counts what
 * its open jobs reserve and the files it keeps open. It calls nothing of
 * ferryd's in turn, except the RELEASED callback its owner (the server)
 * gave budget_new. The struct is opaque: only budget.c touches its fields.
 * Loop thread only. */
#ifndef FERRY_BUDGET_H
#define FERRY_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct budget;

/* ---- for server.c ---- */

/* Measures the limit and what is open now. RELEASED(ARG) is called by
 * budget_release, once descriptors have been closed. NULL when out of
 * memory. */
struct budget *budget_new(void (*released)(void *arg), void *arg);

void budget_free(struct budget *b);

/* Whether one more client could leave too few descriptors for the files,
 * directories and sockets of those already admitted: accepting pauses. */
bool budget_exhausted(const struct budget *b);

/* Descriptors in use (those open before any client, and the clients'), and
 * the limit, for the log. */
uint64_t budget_in_use(const struct budget *b);
uint64_t budget_limit(const struct budget *b);

/* ---- for server.c and conn.c ---- */

/* Whether descriptors are short enough that a new client is refused (and
 * a paused accept does not resume yet). */
bool budget_tight(const struct budget *b);

/* ---- for server.c and transfer.c ---- */

/* Counts N descriptors that may be opened (a socket, a job's files). */
void budget_take(struct budget *b, uint64_t n);

/* Gives back N counted descriptors that were never opened. */
void budget_put(struct budget *b, uint64_t n);

/* Gives back N counted descriptors that have been closed, and tells the
 * owner (which may accept again). */
void budget_release(struct budget *b, uint64_t n);

#endif
