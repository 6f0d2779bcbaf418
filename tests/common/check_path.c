/* Unit tests for path.c and listing.c: the lexical clean-up, opening files
 * beneath a root built in a temporary directory (with openat2 and with the
 * forced symlink-refusing walk), and LIST output byte for byte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/listing.h"
#include "common/path.h"

/* The loop index of the filesystem tests: 0 uses openat2, 1 the walk. */
#define MODE_OPENAT2 0
#define MODE_FALLBACK 1

static char tmp_dir[64];
static int root_fd = -1;
static int unix_sock = -1;
static int fds_at_setup;

/* Lexical normalization. */

static const struct {
	const char *in;
	int rc;
	const char *out;
} normalize_cases[] = {
	{ "/a", 0, "a" },
	{ "a", 0, "a" },
	{ "/./a", 0, "a" },
	{ "a//b", 0, "a/b" },
	{ "//a///b//", 0, "a/b" },
	{ "./a/./b/.", 0, "a/b" },
	{ "/", 0, "" },
	{ "", 0, "" },
	{ ".", 0, "" },
	{ "/././/", 0, "" },
	{ "a b/c%d", 0, "a b/c%d" },
	{ "x.", 0, "x." },
	{ "a/b.c/d..", 0, "a/b.c/d.." },
	{ "..", -EACCES, NULL },
	{ "/..", -EACCES, NULL },
	{ "/../etc/passwd", -EACCES, NULL },
	{ "a/../b", -EACCES, NULL },
	{ "a/..", -EACCES, NULL },
	{ "a/.hidden", -EACCES, NULL },
	{ ".git/config", -EACCES, NULL },
	{ "...", -EACCES, NULL },
	{ "/.", 0, "" },
	{ "a/./.b", -EACCES, NULL },
};

START_TEST(normalize_case)
{
	char out[64];
	const char *in = normalize_cases[_i].in;
	int rc = path_normalize(in, strlen(in), out, sizeof(out));

	ck_assert_msg(rc == normalize_cases[_i].rc, "\"%s\": %d", in, rc);
	if (rc == 0)
		ck_assert_str_eq(out, normalize_cases[_i].out);
}
END_TEST

START_TEST(normalize_nul)
{
	char out[16];

	ck_assert_int_eq(path_normalize("a\0b", 3, out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(path_normalize("\0", 1, out, sizeof(out)), -EINVAL);
	/* A NUL beats the hidden-name rule: it is malformed, not hidden. */
	ck_assert_int_eq(path_normalize("..\0", 3, out, sizeof(out)), -EINVAL);
}
END_TEST

START_TEST(normalize_capacity)
{
	char out[8];

	ck_assert_int_eq(path_normalize("/abc", 4, out, 4), 0);
	ck_assert_str_eq(out, "abc");
	ck_assert_int_eq(path_normalize("/abcd", 5, out, 4), -EINVAL);
	ck_assert_int_eq(path_normalize("a/b", 3, out, 4), 0);
	ck_assert_str_eq(out, "a/b");
	ck_assert_int_eq(path_normalize("a/bc", 4, out, 4), -EINVAL);
	ck_assert_int_eq(path_normalize("/", 1, out, 1), 0);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(path_normalize("", 0, out, 0), -EINVAL);
}
END_TEST

/* Only the length is used: the bytes after it are not part of the path. */
START_TEST(normalize_uses_len)
{
	char out[16];

	ck_assert_int_eq(path_normalize("/a/..", 2, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "a");
}
END_TEST

static const struct {
	int err;
	int code;
} error_cases[] = {
	{ ENOENT, 404 }, { ENOTDIR, 404 }, { ENAMETOOLONG, 404 },
	{ EACCES, 403 }, { EPERM, 403 },   { EISDIR, 403 },
	{ EXDEV, 403 },  { ELOOP, 403 },   { ENXIO, 403 },
	{ EIO, 500 },    { ENOMEM, 500 },  { EMFILE, 500 },
};

START_TEST(error_code)
{
	ck_assert_int_eq(path_error_code(-error_cases[_i].err),
			 error_cases[_i].code);
}
END_TEST

/* The filesystem fixture. */

static void make_path(char *buf, size_t cap, const char *rel)
{
	int n = snprintf(buf, cap, "%s/%s", tmp_dir, rel);

	ck_assert(n > 0 && (size_t)n < cap);
}

static void put_file(const char *rel, const char *content, time_t mtime)
{
	char path[256];
	struct timespec times[2];
	FILE *f;

	make_path(path, sizeof(path), rel);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	if (content[0] != '\0')
		ck_assert_int_ge(fputs(content, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	times[0].tv_sec = times[1].tv_sec = mtime;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void put_dir(const char *rel)
{
	char path[256];

	make_path(path, sizeof(path), rel);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void set_mtime(const char *rel, time_t mtime)
{
	char path[256];
	struct timespec times[2];

	make_path(path, sizeof(path), rel);
	times[0].tv_sec = times[1].tv_sec = mtime;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
}

static void set_mode(const char *rel, mode_t mode)
{
	char path[256];

	make_path(path, sizeof(path), rel);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void put_link(const char *target, const char *rel)
{
	char path[256];

	make_path(path, sizeof(path), rel);
	ck_assert_int_eq(symlink(target, path), 0);
}

static void put_fifo(const char *rel)
{
	char path[256];

	make_path(path, sizeof(path), rel);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
}

static void put_socket(const char *rel)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	make_path(sun.sun_path, sizeof(sun.sun_path), rel);
	unix_sock = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(unix_sock, 0);
	ck_assert_int_eq(bind(unix_sock, (struct sockaddr *)&sun, sizeof(sun)),
			 0);
}

/* Open descriptors, to catch a leak on any path of the code under test. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void open_root(void)
{
	char path[256];

	make_path(path, sizeof(path), "root");
	root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);
	fds_at_setup = fd_count();
}

static void make_tmp(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ferry-check-path-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

/* The tree the open tests use: TMP/secret and TMP/outdir lie outside the
 * root TMP/root, and links inside try to reach them. */
static void open_setup(void)
{
	make_tmp();
	put_file("secret", "secret", 100);
	put_dir("outdir");
	put_file("outdir/x", "outside", 100);
	put_dir("root");
	put_file("root/file.txt", "hello", 100);
	put_file("root/mode000", "locked", 100);
	set_mode("root/mode000", 0);
	put_dir("root/sub");
	put_file("root/sub/inner.txt", "inner", 100);
	put_fifo("root/fifo");
	put_socket("root/sock");
	put_link("file.txt", "root/link_in");
	put_link("sub", "root/link_sub");
	put_link("../file.txt", "root/sub/link_up_in");
	put_link("/etc/passwd", "root/link_abs");
	put_link("/etc", "root/dir_abs");
	put_link("../secret", "root/link_out");
	put_link("../../secret", "root/sub/link_up_out");
	put_link("../outdir", "root/dir_out");
	put_link("../../outdir", "root/sub/dir_up_out");
	put_link("missing", "root/dangling");
	open_root();
}

static int remove_cb(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void teardown(void)
{
	ck_assert_int_eq(fd_count(), fds_at_setup);
	path_force_fallback(0);
	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
	if (unix_sock >= 0)
		close(unix_sock);
	unix_sock = -1;
	nftw(tmp_dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens REL as the server would, in the loop's mode, and returns the fd or
 * negative errno; the FIFO case is bounded by an alarm so a blocking open
 * fails the test instead of hanging it. */
static int open_file(int mode, const char *rel, struct stat *st)
{
	int fd;

	path_force_fallback(mode == MODE_FALLBACK);
	alarm(5);
	fd = path_open_file(root_fd, rel, st);
	alarm(0);
	return fd;
}

static void assert_content(int fd, const char *want)
{
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_mem_eq(buf, want, (size_t)n);
	close(fd);
}

/* The refusal of REL: an escape, so 403 and never the outside file. */
static void assert_refused(int mode, const char *rel)
{
	struct stat st;
	int fd = open_file(mode, rel, &st);

	if (fd >= 0)
		close(fd);
	ck_assert_msg(fd < 0, "%s opened in mode %d", rel, mode);
	ck_assert_msg(path_error_code(fd) == 403, "%s: %s", rel,
		      strerror(-fd));
	if (mode == MODE_FALLBACK)
		ck_assert_msg(fd == -ELOOP, "%s: %s", rel, strerror(-fd));
	else
		ck_assert_msg(fd == -EXDEV || fd == -ELOOP, "%s: %s", rel,
			      strerror(-fd));
}

START_TEST(regular_file)
{
	struct stat st;
	int fd = open_file(_i, "file.txt", &st);

	ck_assert_int_ge(fd, 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(st.st_mtime, 100);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_content(fd, "hello");

	fd = open_file(_i, "sub/inner.txt", &st);
	ck_assert_int_ge(fd, 0);
	assert_content(fd, "inner");

	/* ST is optional. */
	fd = open_file(_i, "file.txt", NULL);
	ck_assert_int_ge(fd, 0);
	close(fd);
}
END_TEST

START_TEST(directory_refused)
{
	struct stat st;

	ck_assert_int_eq(open_file(_i, "sub", &st), -EISDIR);
	ck_assert_int_eq(path_error_code(-EISDIR), 403);
	ck_assert_int_eq(open_file(_i, "", &st), -EISDIR);
}
END_TEST

START_TEST(fifo_refused)
{
	struct stat st;
	int fd = open_file(_i, "fifo", &st);

	ck_assert_int_eq(fd, -EPERM);
	ck_assert_int_eq(path_error_code(fd), 403);
}
END_TEST

START_TEST(socket_refused)
{
	struct stat st;
	int fd = open_file(_i, "sock", &st);

	ck_assert_int_lt(fd, 0);
	ck_assert_int_eq(path_error_code(fd), 403);
}
END_TEST

START_TEST(missing)
{
	struct stat st;
	int fd;

	fd = open_file(_i, "nope", &st);
	ck_assert_int_eq(fd, -ENOENT);
	ck_assert_int_eq(path_error_code(fd), 404);
	fd = open_file(_i, "nodir/nope", &st);
	ck_assert_int_eq(fd, -ENOENT);
	ck_assert_int_eq(path_error_code(fd), 404);
	fd = open_file(_i, "file.txt/nope", &st);
	ck_assert_int_eq(fd, -ENOTDIR);
	ck_assert_int_eq(path_error_code(fd), 404);
}
END_TEST

static bool kernel_has_openat2(void)
{
#ifdef SYS_openat2
	/* struct open_how is three u64s: flags, mode, resolve. */
	unsigned long long how[3] = { O_PATH | O_CLOEXEC, 0, 0 };
	long fd = syscall(SYS_openat2, AT_FDCWD, "/", how, sizeof(how));

	if (fd >= 0)
		close((int)fd);
	return fd >= 0 || errno != ENOSYS;
#else
	return false;
#endif
}

START_TEST(link_inside)
{
	struct stat st;
	int fd;

	if (_i == MODE_FALLBACK || !kernel_has_openat2()) {
		/* The walk refuses every link, even a harmless one. */
		assert_refused(_i, "link_in");
		assert_refused(_i, "link_sub/inner.txt");
		assert_refused(_i, "sub/link_up_in");
		return;
	}
	fd = open_file(_i, "link_in", &st);
	ck_assert_int_ge(fd, 0);
	assert_content(fd, "hello");
	fd = open_file(_i, "link_sub/inner.txt", &st);
	ck_assert_int_ge(fd, 0);
	assert_content(fd, "inner");
	fd = open_file(_i, "sub/link_up_in", &st);
	ck_assert_int_ge(fd, 0);
	assert_content(fd, "hello");
}
END_TEST

START_TEST(link_outside)
{
	/* As the final component. */
	assert_refused(_i, "link_abs");
	assert_refused(_i, "link_out");
	assert_refused(_i, "sub/link_up_out");
	/* As a directory on the way. */
	assert_refused(_i, "dir_abs/passwd");
	assert_refused(_i, "dir_out/x");
	assert_refused(_i, "sub/dir_up_out/x");
}
END_TEST

START_TEST(link_dangling)
{
	struct stat st;
	int fd = open_file(_i, "dangling", &st);

	ck_assert_int_lt(fd, 0);
	ck_assert_int_ne(path_error_code(fd), 500);
}
END_TEST

/* The loop's open: what the kernel has cached opens as path_open_file
 * does; nothing ever escapes; anything else may say -EAGAIN, never block. */
START_TEST(cached_open)
{
	static const char *const refused[] = { "link_abs", "link_out",
					       "dir_abs/passwd", "dir_out/x",
					       "sub/dir_up_out/x", "sub",
					       "fifo" };
	struct stat st;
	size_t i;
	int fd;

	/* Warm the dentries with a normal open first. */
	fd = path_open_file(root_fd, "file.txt", NULL);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = path_open_file_cached(root_fd, "file.txt", &st);
	if (fd == -EAGAIN) {
		/* A kernel without RESOLVE_CACHED (before 5.12). */
		fprintf(stderr, "check_path: cached_open: -EAGAIN even for a "
				"cached path; RESOLVE_CACHED unsupported?\n");
	} else {
		ck_assert_int_ge(fd, 0);
		ck_assert(S_ISREG(st.st_mode));
		ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		assert_content(fd, "hello");
	}
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		fd = path_open_file_cached(root_fd, refused[i], &st);
		ck_assert_msg(fd < 0, "%s opened through the cached path",
			      refused[i]);
		if (fd != -EAGAIN)
			ck_assert_int_eq(path_error_code(fd), 403);
	}
	fd = path_open_file_cached(root_fd, "no/such", &st);
	ck_assert_msg(fd == -ENOENT || fd == -EAGAIN, "no/such: %d", fd);
	/* The root itself is left to the open job. */
	ck_assert_int_eq(path_open_file_cached(root_fd, "", &st), -EAGAIN);
}
END_TEST

START_TEST(unnormalized_refused)
{
	struct stat st;
	int fd;

	/* path_normalize never produces these, but path_open must hold on
	 * its own too. */
	fd = open_file(_i, "../secret", &st);
	ck_assert_int_lt(fd, 0);
	ck_assert_int_eq(path_error_code(fd), 403);
	fd = open_file(_i, "sub/../../secret", &st);
	ck_assert_int_lt(fd, 0);
	ck_assert_int_eq(path_error_code(fd), 403);
	fd = open_file(_i, "/etc/passwd", &st);
	ck_assert_int_lt(fd, 0);
	ck_assert_int_eq(path_error_code(fd), 403);
}
END_TEST

START_TEST(mode_000)
{
	struct stat st;
	int fd = open_file(_i, "mode000", &st);

	/* Root reads anything; everyone else is denied. */
	if (geteuid() == 0) {
		ck_assert_int_ge(fd, 0);
		assert_content(fd, "locked");
	} else {
		ck_assert_int_eq(fd, -EACCES);
		ck_assert_int_eq(path_error_code(fd), 403);
	}
}
END_TEST

START_TEST(open_root_itself)
{
	struct stat st, root_st;
	int fd;

	path_force_fallback(_i == MODE_FALLBACK);
	fd = path_open(root_fd, "", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ne(fd, root_fd);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(fstat(root_fd, &root_st), 0);
	ck_assert(st.st_ino == root_st.st_ino && st.st_dev == root_st.st_dev);
	close(fd);

	fd = path_open(root_fd, "sub", O_PATH);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	close(fd);
}
END_TEST

/* Listings. */

static char *listing;
static size_t listing_len;

/* Builds the listing tree: mixed names, types, links, and fixed mtimes. */
static void list_setup(void)
{
	make_tmp();
	put_dir("outdir");
	put_file("secret", "secret", 100);
	put_dir("root");
	put_file("root/b.txt", "abc", 1000);
	put_file("root/100%", "", 3000);
	put_file("root/Z", "", 0);
	put_file("root/\xc3\xa9", "e", 4000);
	put_file("root/.hidden", "h", 5000);
	put_dir("root/.git");
	put_fifo("root/fifo");
	put_socket("root/sock");
	put_link("b.txt", "root/link_in");
	put_link("/etc/passwd", "root/link_abs");
	put_link("../secret", "root/link_out");
	put_link("../outdir", "root/dir_out");
	put_link("missing", "root/dangling");
	put_dir("root/a dir");
	put_file("root/a dir/x y", "12", 6000);
	put_link("../b.txt", "root/a dir/up_in");
	put_link("../../secret", "root/a dir/up_out");
	put_link(".", "root/a dir/self");
	set_mtime("root/a dir", 2000);
	put_dir("root/empty");
	set_mtime("root/empty", 7000);
	open_root();
	listing = NULL;
	listing_len = 0;
}

static void list_teardown(void)
{
	free(listing);
	listing = NULL;
	teardown();
}

static int list(int mode, const char *rel)
{
	int rc;

	free(listing);
	listing = NULL;
	path_force_fallback(mode == MODE_FALLBACK);
	alarm(5);
	rc = listing_build(root_fd, rel, &listing, &listing_len);
	alarm(0);
	return rc;
}

static long long dir_size(const char *rel)
{
	char path[256];
	struct stat st;

	make_path(path, sizeof(path), rel);
	ck_assert_int_eq(stat(path, &st), 0);
	return (long long)st.st_size;
}

static void assert_listing(const char *want)
{
	ck_assert_uint_eq(listing_len, strlen(want));
	ck_assert_mem_eq(listing, want, listing_len);
}

START_TEST(list_root_bytes)
{
	char want[512];
	bool links = _i == MODE_OPENAT2 && kernel_has_openat2();

	ck_assert_int_eq(list(_i, ""), 0);
	/* Bytewise order: digits, upper case, lower case, then UTF-8. */
	snprintf(want, sizeof(want),
		 "f 0 3000 100%%25\n"
		 "f 0 0 Z\n"
		 "d %lld 2000 a%%20dir\n"
		 "f 3 1000 b.txt\n"
		 "d %lld 7000 empty\n"
		 "%s"
		 "f 1 4000 %%C3%%A9\n",
		 dir_size("root/a dir"), dir_size("root/empty"),
		 links ? "f 3 1000 link_in\n" : "");
	assert_listing(want);
}
END_TEST

START_TEST(list_subdir)
{
	bool links = _i == MODE_OPENAT2 && kernel_has_openat2();
	char want[512];

	ck_assert_int_eq(list(_i, "a dir"), 0);
	/* "self" points at its own directory, which is inside. */
	if (links)
		snprintf(want, sizeof(want),
			 "d %lld 2000 self\n"
			 "f 3 1000 up_in\n"
			 "f 2 6000 x%%20y\n",
			 dir_size("root/a dir"));
	else
		snprintf(want, sizeof(want), "f 2 6000 x%%20y\n");
	assert_listing(want);

	/* The directory through a link to it that stays inside. */
	if (links) {
		ck_assert_int_eq(list(_i, "a dir/self"), 0);
		assert_listing(want);
	} else {
		ck_assert_int_eq(list(_i, "a dir/self"), -ELOOP);
	}
}
END_TEST

START_TEST(list_empty)
{
	ck_assert_int_eq(list(_i, "empty"), 0);
	ck_assert_ptr_nonnull(listing);
	ck_assert_uint_eq(listing_len, 0);
}
END_TEST

START_TEST(list_refused)
{
	ck_assert_int_eq(list(_i, "b.txt"), -ENOTDIR);
	ck_assert_int_eq(list(_i, "fifo"), -ENOTDIR);
	ck_assert_int_eq(list(_i, "nope"), -ENOENT);
	ck_assert_int_eq(path_error_code(list(_i, "dir_out")), 403);
	ck_assert_int_eq(path_error_code(list(_i, "link_abs")), 403);
	ck_assert_ptr_null(listing);
}
END_TEST

START_TEST(list_many)
{
	char name[32], line[64], *p;
	int k;

	/* Created in reverse so that the order is the sort's work. */
	for (k = 499; k >= 0; k--) {
		snprintf(name, sizeof(name), "root/empty/n%03d", k);
		put_file(name, "", k);
	}
	ck_assert_int_eq(list(_i, "empty"), 0);
	p = listing;
	for (k = 0; k < 500; k++) {
		int n = snprintf(line, sizeof(line), "f 0 %d n%03d\n", k, k);

		ck_assert_uint_le((size_t)(p - listing) + (size_t)n,
				  listing_len);
		ck_assert_mem_eq(p, line, (size_t)n);
		p += n;
	}
	ck_assert_uint_eq((size_t)(p - listing), listing_len);
}
END_TEST

/* listing_read in small chunks (48 bytes: this tree's lines are shorter,
 * so each chunk holds one or two) gives the same bytes as the whole
 * listing, whole lines each, and then 0. */
START_TEST(list_in_chunks)
{
	struct listing *l = NULL;
	char *joined, chunk[48];
	size_t n, total = 0, chunks = 0;

	ck_assert_int_eq(list(_i, ""), 0);
	path_force_fallback(_i == MODE_FALLBACK);
	ck_assert_int_eq(listing_open(root_fd, "", &l), 0);
	ck_assert_uint_eq(listing_length(l), listing_len);
	joined = malloc(listing_len + 1);
	ck_assert_ptr_nonnull(joined);
	while ((n = listing_read(l, chunk, sizeof(chunk))) > 0) {
		ck_assert_msg(chunk[n - 1] == '\n', "a chunk ends mid-line");
		ck_assert_uint_le(total + n, listing_len);
		memcpy(joined + total, chunk, n);
		total += n;
		chunks++;
	}
	ck_assert_uint_eq(total, listing_len);
	ck_assert_uint_gt(chunks, 2);
	ck_assert_mem_eq(joined, listing, listing_len);
	ck_assert_uint_eq(listing_read(l, chunk, sizeof(chunk)), 0);
	listing_free(l);
	free(joined);
	ck_assert_int_eq(listing_open(root_fd, "b.txt", &l), -ENOTDIR);
	ck_assert_ptr_null(l);
}
END_TEST

static Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *tc;

	tc = tcase_create("normalize");
	tcase_add_loop_test(tc, normalize_case, 0,
			    (int)(sizeof(normalize_cases) /
				  sizeof(normalize_cases[0])));
	tcase_add_test(tc, normalize_nul);
	tcase_add_test(tc, normalize_capacity);
	tcase_add_test(tc, normalize_uses_len);
	tcase_add_loop_test(tc, error_code, 0,
			    (int)(sizeof(error_cases) /
				  sizeof(error_cases[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, open_setup, teardown);
	tcase_add_loop_test(tc, regular_file, 0, 2);
	tcase_add_loop_test(tc, directory_refused, 0, 2);
	tcase_add_loop_test(tc, fifo_refused, 0, 2);
	tcase_add_loop_test(tc, socket_refused, 0, 2);
	tcase_add_loop_test(tc, missing, 0, 2);
	tcase_add_loop_test(tc, mode_000, 0, 2);
	tcase_add_loop_test(tc, open_root_itself, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("symlinks");
	tcase_add_checked_fixture(tc, open_setup, teardown);
	tcase_add_loop_test(tc, link_inside, 0, 2);
	tcase_add_loop_test(tc, link_outside, 0, 2);
	tcase_add_loop_test(tc, link_dangling, 0, 2);
	tcase_add_loop_test(tc, unnormalized_refused, 0, 2);
	tcase_add_test(tc, cached_open);
	suite_add_tcase(s, tc);

	tc = tcase_create("listing");
	tcase_add_checked_fixture(tc, list_setup, list_teardown);
	tcase_add_loop_test(tc, list_root_bytes, 0, 2);
	tcase_add_loop_test(tc, list_subdir, 0, 2);
	tcase_add_loop_test(tc, list_empty, 0, 2);
	tcase_add_loop_test(tc, list_refused, 0, 2);
	tcase_add_loop_test(tc, list_many, 0, 2);
	tcase_add_loop_test(tc, list_in_chunks, 0, 2);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(path_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
