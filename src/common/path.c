/* Path resolution beneath the served root: the lexical clean-up of request
 * paths, and opening them with the kernel's help (openat2 RESOLVE_BENEATH)
 * or, on kernels without openat2, by a walk that refuses every symlink. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif

#include "common/path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* configure checks for the header too, but its config.h is shadowed here by
 * src/daemon/config.h, so ask the compiler directly. */
#if defined(__has_include) && defined(SYS_openat2)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

/* openat2 fails with EAGAIN when a rename raced with the lookup; a few
 * retries get past an unlucky moment without letting a busy renamer stall
 * us forever. */
#define OPENAT2_RETRIES 8

/* Set once the kernel said ENOSYS, so later opens skip the failing call;
 * set by tests to exercise the walk. Atomic because server threads share it. */
static atomic_bool openat2_missing;
static atomic_bool fallback_forced;

void path_force_fallback(int on)
{
	atomic_store(&fallback_forced, on != 0);
}

int path_normalize(const char *in, size_t len, char *out, size_t cap)
{
	size_t i = 0, n = 0;

	if (memchr(in, '\0', len) != NULL || cap == 0)
		return -EINVAL;

	while (i < len) {
		size_t start, comp_len;

		while (i < len && in[i] == '/')
			i++;
		start = i;
		while (i < len && in[i] != '/')
			i++;
		comp_len = i - start;
		if (comp_len == 0 || (comp_len == 1 && in[start] == '.'))
			continue;
		/* ".." and hidden names alike: neither is ever served. */
		if (in[start] == '.')
			return -EACCES;
		if (n + (n > 0) + comp_len >= cap)
			return -EINVAL;
		if (n > 0)
			out[n++] = '/';
		memcpy(out + n, in + start, comp_len);
		n += comp_len;
	}
	out[n] = '\0';
	return 0;
}

/* O_NOCTTY is meaningless with O_PATH, and openat2 rejects the pair. */
static int open_flags(int flags)
{
	flags |= O_CLOEXEC;
	if (!(flags & O_PATH))
		flags |= O_NOCTTY;
	return flags;
}

#ifdef HAVE_OPENAT2
/* Opens REL with the kernel confining the whole resolution beneath ROOT_FD.
 * Returns the fd, a negative errno, or -ENOSYS on kernels before 5.6. */
static int open_beneath(int root_fd, const char *rel, int flags)
{
	struct open_how how;
	int tries;
	long fd = -1;

	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)open_flags(flags);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	for (tries = 0; tries < OPENAT2_RETRIES; tries++) {
		fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd < 0 ? -errno : (int)fd;
}
#else
static int open_beneath(int root_fd, const char *rel, int flags)
{
	(void)root_fd;
	(void)rel;
	(void)flags;
	return -ENOSYS;
}
#endif

/* Skips separators and "." components. */
static const char *skip_empty(const char *p)
{
	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && (p[1] == '/' || p[1] == '\0'))
			p++;
		else
			return p;
	}
}

/* Tells whether NAME in DIR_FD is itself a symbolic link, to report a link
 * refused by O_NOFOLLOW as ELOOP even where the kernel said ENOTDIR. */
static bool is_symlink_at(int dir_fd, const char *name)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISLNK(st.st_mode);
}

/* Opens REL one component at a time without following any symbolic link,
 * for kernels that lack openat2. Safe against links planted anywhere on the
 * path, at the price of refusing links that stay inside the root too. */
static int open_walk(int root_fd, const char *rel, int flags)
{
	char name[NAME_MAX + 1];
	const char *p;
	int dir_fd = root_fd, fd = -1, rc;
	struct stat st;

	if (rel[0] == '/')
		return -EXDEV;
	p = skip_empty(rel);
	if (*p == '\0') {
		fd = openat(root_fd, ".", open_flags(flags));
		return fd < 0 ? -errno : fd;
	}

	for (;;) {
		size_t n = strcspn(p, "/");
		bool last;

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			rc = -EXDEV;
			goto fail;
		}
		if (n > NAME_MAX) {
			rc = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		p = skip_empty(p + n);
		last = *p == '\0';

		if (last)
			break;
		fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			goto fail;
		}
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto fail;
		}
		if (!S_ISDIR(st.st_mode)) {
			rc = S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
			goto fail;
		}
		if (dir_fd != root_fd)
			close(dir_fd);
		dir_fd = fd;
		fd = -1;
	}

	fd = openat(dir_fd, name, open_flags(flags) | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOTDIR && is_symlink_at(dir_fd, name))
			rc = -ELOOP;
		goto fail;
	}
	/* With O_PATH, O_NOFOLLOW hands back the link itself. */
	if (flags & O_PATH) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			rc = -ELOOP;
			goto fail;
		}
	}
	if (dir_fd != root_fd)
		close(dir_fd);
	return fd;

fail:
	if (fd >= 0)
		close(fd);
	if (dir_fd != root_fd)
		close(dir_fd);
	return rc;
}

int path_open(int root_fd, const char *rel, int flags)
{
	int fd;

	if (rel[0] == '\0') {
		fd = openat(root_fd, ".", open_flags(flags));
		return fd < 0 ? -errno : fd;
	}
	if (!atomic_load(&fallback_forced) && !atomic_load(&openat2_missing)) {
		fd = open_beneath(root_fd, rel, flags);
		if (fd != -ENOSYS)
			return fd;
		atomic_store(&openat2_missing, true);
	}
	return open_walk(root_fd, rel, flags);
}

/* Checks that the open FD is a regular file, filling ST; closes it if not.
 * Returns FD or a negative errno. */
static int regular_only(int fd, struct stat *st)
{
	int rc;

	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = S_ISDIR(st->st_mode) ? -EISDIR : -EPERM;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

int path_open_file_cached(int root_fd, const char *rel, struct stat *st)
{
#if defined(HAVE_OPENAT2) && defined(RESOLVE_CACHED)
	static atomic_bool unsupported;
	struct open_how how;
	long fd;

	if (rel[0] == '\0' || atomic_load(&unsupported) ||
	    atomic_load(&fallback_forced) || atomic_load(&openat2_missing))
		return -EAGAIN;
	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)open_flags(O_RDONLY | O_NONBLOCK);
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_CACHED;
	fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof(how));
	if (fd < 0) {
		/* Kernels before 5.12 do not know RESOLVE_CACHED. */
		if (errno == EINVAL || errno == ENOSYS) {
			atomic_store(&unsupported, true);
			return -EAGAIN;
		}
		return -errno;
	}
	return regular_only((int)fd, st);
#else
	(void)root_fd;
	(void)rel;
	(void)st;
	return -EAGAIN;
#endif
}

int path_open_file(int root_fd, const char *rel, struct stat *st)
{
	struct stat local;
	int fd;

	if (st == NULL)
		st = &local;
	/* O_NONBLOCK so that a FIFO opens at once instead of waiting for a
	 * writer; it is then refused below like any other non-regular file. */
	fd = path_open(root_fd, rel, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	return regular_only(fd, st);
}

int path_error_code(int neg_errno)
{
	switch (-neg_errno) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
		return 404;
	case EACCES:
	case EPERM:
	case EISDIR:
	case EXDEV:
	case ELOOP:
	case ENXIO:
	case ENODEV:
		return 403;
	default:
		return 500;
	}
}
