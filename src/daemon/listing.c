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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/array.h"
#include "common/path.h"
#include "common/protocol.h"

/* A listing is held as compact records in blocks, and an array of pointers
 * to them for sorting, and formatted a chunk at a time as it is sent: a
 * directory of 100,000 entries costs about 4 MiB while it is listed, not
 * its records plus its whole text (LISTING_BLOCK bytes a block). */
#define LISTING_BLOCK (256 * 1024)

struct record {
	uint64_t size;
	int64_t mtime;
	uint32_t line_len; /* its line, LF included: set once sorted */
	uint16_t name_len;
	char type;     /* 'f' or 'd' */
	char name[];   /* name_len bytes, NUL-terminated */
};

struct block {
	struct block *next;
	size_t used;
	char data[LISTING_BLOCK];
};

struct listing {
	struct block *blocks;   /* newest first */
	struct record **v;      /* sorted by name once collected */
	size_t count, cap;
	size_t next;            /* the first record not yet formatted */
	uint64_t length;        /* the whole text's bytes */
};

void listing_free(struct listing *l)
{
	struct block *b, *next;

	if (l == NULL)
		return;
	for (b = l->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(l->v);
	free(l);
}

static int entries_add(struct listing *l, const char *name,
		       const struct stat *st)
{
	size_t name_len = strlen(name);
	size_t need = (offsetof(struct record, name) + name_len + 1 + 7) & ~(size_t)7;
	struct record *r;

	if (name_len > UINT16_MAX)
		return 0; /* no file system has such names; left out */
	if (array_reserve((void **)&l->v, &l->cap, l->count, sizeof(*l->v)) < 0)
		return -ENOMEM;
	if (l->blocks == NULL || LISTING_BLOCK - l->blocks->used < need) {
		struct block *b = malloc(sizeof(*b));

		if (b == NULL)
			return -ENOMEM;
		b->next = l->blocks;
		b->used = 0;
		l->blocks = b;
	}
	r = (struct record *)(void *)(l->blocks->data + l->blocks->used);
	l->blocks->used += need;
	r->type = S_ISDIR(st->st_mode) ? 'd' : 'f';
	r->size = (uint64_t)st->st_size;
	r->mtime = (int64_t)st->st_mtim.tv_sec;
	r->name_len = (uint16_t)name_len;
	memcpy(r->name, name, name_len + 1);
	l->v[l->count++] = r;
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
	const struct record *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Reads every visible, listable entry of DIR into E. */
static int collect(int root_fd, const char *rel, DIR *dir, struct listing *e)
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

/* The length of R's line, LF included. */
static size_t line_length(const struct record *r)
{
	char head[64];
	int n = snprintf(head, sizeof(head), "%c %" PRIu64 " %" PRId64 " ",
			 r->type, r->size, r->mtime);

	return (size_t)n + proto_encode(r->name, r->name_len, NULL, 0) + 1;
}

int listing_open(int root_fd, const char *rel, struct listing **out)
{
	struct listing *l;
	DIR *dir = NULL;
	size_t i;
	int fd, rc;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	fd = path_open(root_fd, rel, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
	if (fd < 0) {
		listing_free(l);
		return fd;
	}
	dir = fdopendir(fd);
	if (dir == NULL) {
		rc = -errno;
		close(fd);
		listing_free(l);
		return rc;
	}
	rc = collect(root_fd, rel, dir, l);
	closedir(dir);
	if (rc < 0) {
		listing_free(l);
		return rc;
	}
	if (l->count > 1)
		qsort(l->v, l->count, sizeof(*l->v), by_name);
	for (i = 0; i < l->count; i++) {
		l->v[i]->line_len = (uint32_t)line_length(l->v[i]);
		l->length += l->v[i]->line_len;
	}
	*out = l;
	return 0;
}

uint64_t listing_length(const struct listing *l)
{
	return l->length;
}

size_t listing_read(struct listing *l, char *buf, size_t cap)
{
	size_t n = 0;

	while (l->next < l->count) {
		const struct record *r = l->v[l->next];
		size_t len = r->line_len;
		int head;

		if (len > cap - n)
			break;
		/* snprintf's NUL lands on the name's first byte, which
		 * proto_encode then writes: len counts the whole line. */
		head = snprintf(buf + n, cap - n, "%c %" PRIu64 " %" PRId64 " ",
				r->type, r->size, r->mtime);
		n += (size_t)head;
		n += proto_encode(r->name, r->name_len, buf + n, cap - n);
		buf[n++] = '\n';
		l->next++;
	}
	return n;
}

int listing_build(int root_fd, const char *rel, char **out, size_t *len)
{
	struct listing *l;
	char *buf;
	size_t n;
	int rc;

	rc = listing_open(root_fd, rel, &l);
	if (rc < 0)
		return rc;
	/* One spare byte: snprintf's NUL after the last line's head. */
	buf = malloc(l->length + 1);
	if (buf == NULL) {
		listing_free(l);
		return -ENOMEM;
	}
	n = listing_read(l, buf, l->length + 1);
	listing_free(l);
	*out = buf;
	*len = n;
	return 0;
}
