/* Directory listings for LIST: "TYPE SIZE MTIME NAME\n" per entry, sorted by
 * name, hidden entries left out, names percent-encoded. */
#ifndef FERRY_LISTING_H
#define FERRY_LISTING_H

#include <stddef.h>
#include <stdint.h>

/* The longest line a listing holds: type, two 20-digit numbers (one may
 * have a sign), three spaces, a name of 255 bytes percent-encoded, LF. */
#define LISTING_LINE_MAX (1 + 1 + 20 + 1 + 21 + 1 + 3 * 255 + 1)

struct listing;

/* Reads the entries of REL (from path_normalize) beneath ROOT_FD into
 * *OUT, sorted; the text is made later, a chunk at a time (listing_read).
 * Symbolic links are listed as what they point to when that stays beneath
 * the root, and left out otherwise. Returns 0 or a negative errno
 * (-ENOTDIR when REL is a file). The caller frees *OUT (listing_free). */
int listing_open(int root_fd, const char *rel, struct listing **out);

/* The bytes of L's whole text, for the OK line. */
uint64_t listing_length(const struct listing *l);

/* Formats the lines not yet read, as many whole lines as fit, into BUF
 * (CAP bytes, at least LISTING_LINE_MAX + 1). Returns the bytes written;
 * 0 once every line was read. */
size_t listing_read(struct listing *l, char *buf, size_t cap);

void listing_free(struct listing *l);

/* The whole listing in one malloc'd buffer (*OUT, *LEN; caller frees),
 * for tests and tools: listing_open, then listing_read of everything. */
int listing_build(int root_fd, const char *rel, char **out, size_t *len);

#endif
