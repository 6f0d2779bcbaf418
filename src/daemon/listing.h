/* Directory listings for LIST: "TYPE SIZE MTIME NAME\n" per entry, sorted by
 * name, hidden entries left out, names percent-encoded. */
#ifndef FERRY_LISTING_H
#define FERRY_LISTING_H

#include <stddef.h>

/* Builds the listing of REL (from path_normalize) beneath ROOT_FD into a
 * malloc'd buffer (*OUT, *LEN; caller frees). Symbolic links are listed as
 * what they point to when that stays beneath the root, and left out
 * otherwise. Returns 0 or a negative errno (-ENOTDIR when REL is a file). */
int listing_build(int root_fd, const char *rel, char **out, size_t *len);

#endif
