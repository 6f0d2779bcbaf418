/* The served directory: its fd, refcounted.
 *
 * Who calls it: server.c opens a root at start and at every reload, holds
 * one reference and drops it when a reload replaces the root; conn.c only
 * passes the server's root on to a new transfer; transfer.c opens files
 * beneath it and takes a reference for each open job, so a reload that
 * changes the root never closes an fd a job is still using. It calls
 * nothing of ferryd's in turn. The struct is opaque: only root.c touches
 * its fields. Loop thread only, except root_fd, which a job may call on the
 * reference it holds. */
#ifndef FERRY_ROOT_H
#define FERRY_ROOT_H

struct root_ref;

/* ---- for server.c ---- */

/* Opens the directory PATH as a root holding one reference (the caller's).
 * 0 or -errno. */
int root_open(const char *path, struct root_ref **out);

/* ---- for server.c and transfer.c ---- */

/* Drops one reference; the last one closes the fd. ROOT may be NULL. */
void root_ref_put(struct root_ref *root);

/* ---- for transfer.c ---- */

/* Takes one more reference to ROOT, and returns it. */
struct root_ref *root_ref_get(struct root_ref *root);

/* The directory's fd, valid while a reference is held. */
int root_fd(const struct root_ref *root);

#endif
