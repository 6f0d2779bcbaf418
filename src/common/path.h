/* Path resolution beneath the served root. The lexical part is pure; the
 * opening part uses openat2(RESOLVE_BENEATH) where the kernel has it, and a
 * component-by-component walk that refuses every symbolic link otherwise. */
#ifndef FERRY_PATH_H
#define FERRY_PATH_H

#include <stddef.h>
#include <sys/stat.h>

/* Turns a request path (already percent-decoded, LEN bytes) into a path
 * relative to the root: leading '/', empty and "." components dropped,
 * "a//b/./c" -> "a/b/c", the root itself -> "". Returns 0, -EACCES for a
 * component starting with '.' (hidden, or ".."), -EINVAL for a NUL byte or
 * when OUT (CAP bytes) is too small. */
int path_normalize(const char *in, size_t len, char *out, size_t cap);

/* Opens REL (from path_normalize) beneath ROOT_FD with FLAGS (O_CLOEXEC and
 * O_NOCTTY added). Never follows a link out of the root, never blocks on a
 * FIFO when FLAGS has O_NONBLOCK. Returns the fd, or a negative errno
 * (-EXDEV or -ELOOP for an escape). */
int path_open(int root_fd, const char *rel, int flags);

/* Opens REL as a regular file for reading and fstats it into ST. Returns the
 * fd, or a negative errno: -EISDIR/-EPERM for a non-regular file. */
int path_open_file(int root_fd, const char *rel, struct stat *st);

/* Like path_open_file, but only from what the kernel has cached: a path
 * whose resolution would wait for the disk gives -EAGAIN at once (openat2's
 * RESOLVE_CACHED), as does a kernel without it. For the event loop, which
 * must never block. */
int path_open_file_cached(int root_fd, const char *rel, struct stat *st);

/* The protocol code for a negative errno from the functions above:
 * 404 no such file, 403 outside the root / not regular / denied, 500 else. */
int path_error_code(int neg_errno);

/* For tests: ON forces the symlink-refusing walk that path_open uses on
 * kernels without openat2; 0 goes back to openat2 where available. */
void path_force_fallback(int on);

#endif
