/* LIST answers: a directory's visible entries, each resolved to a regular
 * file or a directory beneath the root, sorted and percent-encoded. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif

#include "daemon/listing.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/path.h"
#include "common/protocol.h"

struct entry {
	char *name;
	char type; /* 'f' or 'd' */
	uint64_t size;
	int64_t mtime;
};

struct entries {
	struct entry *v;
	size_t count;
	size_t cap;
};

static void entries_free(struct entries *e)
{
	size_t i;

	for (i = 0; i < e->count; i++)
		free(e->v[i].name);
	free(e->v);
}

static int entries_add(struct entries *e, const char *name,
		       const struct stat *st)
{
	struct entry *ent;

	if (e->count == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		struct entry *v = realloc(e->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	ent = &e->v[e->count];
	ent->name = strdup(name);
	if (ent->name == NULL)
		return -ENOMEM;
	ent->type = S_ISDIR(st->st_mode) ? 'd' : 'f';
	ent->size = (uint64_t)st->st_size;
	ent->mtime = (int64_t)st->st_mtim.tv_sec;
	e->count++;
	return 0;
}

/* Stats the target of the link NAME in REL, resolving it beneath the root
 * exactly as a GET for it would. Returns 0, or a negative errno when the
 * link dangles or leads out of the root. */
static int stat_link_target(int root_fd, const char *rel, const char *name,
			    struct stat *st)
{
	size_t rel_len = strlen(rel), name_len = strlen(name);
	char *full = malloc(rel_len + name_len + 2);
	int fd, rc = 0;

	if (full == NULL)
		return -ENOMEM;
	if (rel_len > 0) {
		memcpy(full, rel, rel_len);
		full[rel_len++] = '/';
	}
	memcpy(full + rel_len, name, name_len + 1);

	fd = path_open(root_fd, full, O_PATH);
	free(full);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Decides how NAME in DIR_FD shows in the listing: fills ST and returns 1
 * to list it, 0 to leave it out, or -ENOMEM. */
static int classify(int root_fd, const char *rel, int dir_fd,
		    const char *name, struct stat *st)
{
	int rc;

	/* An entry that vanished or cannot be examined since readdir is left
	 * out rather than failing the whole listing. */
	if (fstatat(dir_fd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOMEM ? -ENOMEM : 0;
	if (S_ISLNK(st->st_mode)) {
		rc = stat_link_target(root_fd, rel, name, st);
		if (rc < 0)
			return rc == -ENOMEM ? -ENOMEM : 0;
	}
	return S_ISREG(st->st_mode) || S_ISDIR(st->st_mode);
}

static int by_name(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Reads every visible, listable entry of DIR into E. */
static int collect(int root_fd, const char *rel, DIR *dir, struct entries *e)
{
	struct dirent *de;
	struct stat st;
	int rc;

	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (de == NULL)
			return errno ? -errno : 0;
		if (de->d_name[0] == '.')
			continue;
		rc = classify(root_fd, rel, dirfd(dir), de->d_name, &st);
		if (rc < 0)
			return rc;
		if (rc == 0)
			continue;
		rc = entries_add(e, de->d_name, &st);
		if (rc < 0)
			return rc;
	}
}

/* Formats the sorted entries: one pass to size the buffer, one to fill. */
static int format_entries(const struct entries *e, char **out, size_t *len)
{
	size_t i, total = 0, n = 0;
	char *buf;

	for (i = 0; i < e->count; i++) {
		const struct entry *ent = &e->v[i];
		int head = snprintf(NULL, 0, "%c %" PRIu64 " %" PRId64 " ",
				    ent->type, ent->size, ent->mtime);

		if (head < 0)
			return -EINVAL;
		total += (size_t)head +
			 proto_encode(ent->name, strlen(ent->name), NULL, 0) + 1;
	}
	/* One spare byte for the NUL snprintf writes after the last header. */
	buf = malloc(total + 1);
	if (buf == NULL)
		return -ENOMEM;
	for (i = 0; i < e->count; i++) {
		const struct entry *ent = &e->v[i];

		n += (size_t)snprintf(buf + n, total + 1 - n,
				      "%c %" PRIu64 " %" PRId64 " ", ent->type,
				      ent->size, ent->mtime);
		n += proto_encode(ent->name, strlen(ent->name), buf + n,
				  total - n);
		buf[n++] = '\n';
	}
	*out = buf;
	*len = n;
	return 0;
}

int listing_build(int root_fd, const char *rel, char **out, size_t *len)
{
	struct entries e = { NULL, 0, 0 };
	DIR *dir = NULL;
	int fd, rc;

	fd = path_open(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	dir = fdopendir(fd);
	if (dir == NULL) {
		rc = -errno;
		close(fd);
		return rc;
	}

	rc = collect(root_fd, rel, dir, &e);
	if (rc < 0)
		goto fail;
	if (e.count > 1)
		qsort(e.v, e.count, sizeof(*e.v), by_name);
	rc = format_entries(&e, out, len);

fail:
	entries_free(&e);
	closedir(dir);
	return rc;
}
