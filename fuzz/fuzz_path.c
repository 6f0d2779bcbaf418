/* libFuzzer target for path resolution (path.c) and listings (listing.c).
 *
 * LLVMFuzzerInitialize builds a small tree once, in a new directory under
 * $TMPDIR: BASE/root is served, BASE/outside is what an escape would reach,
 * and the root holds files, directories, a FIFO, and symbolic links that
 * stay inside, climb out, point to absolute paths, loop and dangle.
 *
 * Input: the first byte picks what is done, the rest is a request path as
 * it arrives after percent-decoding. In the first byte,
 *   bits 0-1  0 path_open_file, 1 path_open O_PATH, 2 listing_build,
 *             3 path_open O_RDONLY
 *   bit 2     use the symlink-refusing walk instead of openat2
 *   bit 3     skip path_normalize and hand the raw path (up to a NUL) to
 *             the opening functions: the kernel or the walk alone must keep
 *             it inside
 * so the digits '0' to '9' and ':' to '?' name all sixteen choices.
 *
 * Every descriptor these functions return is checked through /proc/self/fd
 * to name something inside the root; anything else aborts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "daemon/listing.h"
#include "common/path.h"
#include "common/protocol.h"

#define OP_MASK 3
#define OP_OPEN_FILE 0
#define OP_OPEN_PATH 1
#define OP_LISTING 2
#define OP_OPEN_READ 3
#define USE_WALK 4
#define RAW_PATH 8

static char base[PATH_MAX];  /* holds root/ and outside/ */
static char root[PATH_MAX];  /* BASE/root, with no symbolic link in it */
static size_t root_len;
static int root_fd = -1;

/* Request-path buffers, as large as struct transfer's; static, as one input
 * is checked at a time. */
static char rel[FERRY_LINE_MAX], rel_small[FERRY_LINE_MAX],
	rel_again[FERRY_LINE_MAX], raw[FERRY_LINE_MAX];

static void make_dir(const char *rel_path)
{
	char full[PATH_MAX];

	snprintf(full, sizeof(full), "%s/%s", base, rel_path);
	if (mkdir(full, 0755) < 0)
		FUZZ_FAIL("mkdir %s: %s", full, strerror(errno));
}

static void make_file(const char *rel_path, const char *text)
{
	char full[PATH_MAX];
	int fd;

	snprintf(full, sizeof(full), "%s/%s", base, rel_path);
	fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		FUZZ_FAIL("write %s: %s", full, strerror(errno));
	close(fd);
}

static void make_link(const char *target, const char *rel_path)
{
	char full[PATH_MAX];

	snprintf(full, sizeof(full), "%s/%s", base, rel_path);
	if (symlink(target, full) < 0)
		FUZZ_FAIL("symlink %s: %s", full, strerror(errno));
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(void)
{
	if (root_fd >= 0)
		close(root_fd);
	if (base[0] != '\0')
		nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char abs_out[PATH_MAX + 32];

	(void)argc;
	(void)argv;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/ferry-fuzz-path.XXXXXX", tmp);
	if (mkdtemp(base) == NULL)
		FUZZ_FAIL("mkdtemp %s: %s", base, strerror(errno));
	atexit(remove_tree);

	make_dir("outside");
	make_file("outside/secret", "outside the root\n");
	make_dir("root");
	make_file("root/a.txt", "alpha\n");
	make_file("root/.hidden", "hidden\n");
	make_file("root/%2e%2e", "a name that was encoded twice\n");
	make_file("root/with space", "spaces\n");
	make_dir("root/empty");
	make_dir("root/sub");
	make_file("root/sub/b.txt", "beta\n");
	make_dir("root/sub/deeper");
	make_file("root/sub/deeper/c.txt", "gamma\n");
	make_link("sub", "root/in_dir");
	make_link("sub/b.txt", "root/in_file");
	make_link("../a.txt", "root/sub/up");
	make_link(".", "root/dot");
	make_link("..", "root/dotdot");
	make_link("../outside", "root/out_dir");
	make_link("../../outside/secret", "root/sub/out_file");
	snprintf(abs_out, sizeof(abs_out), "%s/outside", base);
	make_link(abs_out, "root/abs_dir");
	make_link("/etc/passwd", "root/abs_file");
	make_link("/proc/self/root", "root/magic");
	make_link("loop", "root/loop");
	make_link("nowhere", "root/dangling");
	snprintf(abs_out, sizeof(abs_out), "%s/root/fifo", base);
	if (mkfifo(abs_out, 0644) < 0)
		FUZZ_FAIL("mkfifo %s: %s", abs_out, strerror(errno));

	snprintf(abs_out, sizeof(abs_out), "%s/root", base);
	if (realpath(abs_out, root) == NULL)
		FUZZ_FAIL("realpath %s: %s", abs_out, strerror(errno));
	root_len = strlen(root);
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		FUZZ_FAIL("open %s: %s", root, strerror(errno));
	return 0;
}

/* The lowest free descriptor, which moves when one leaks. */
static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	FUZZ_CHECK(fd >= 0);
	close(fd);
	return fd;
}

/* Aborts unless FD names the root or something beneath it. */
static void check_inside(int fd, const char *what)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		FUZZ_FAIL("readlink %s: %s", link, strerror(errno));
	target[n] = '\0';
	if (strncmp(target, root, root_len) != 0 ||
	    (target[root_len] != '\0' && target[root_len] != '/'))
		FUZZ_FAIL("\"%s\" opened %s, outside the root %s", what,
			  target, root);
}

/* path_normalize's result has no empty, "." or hidden component, no
 * leading or trailing '/', and normalizes to itself. */
static void check_normalized(const char *out)
{
	const char *p = out;
	size_t len = strlen(out);

	FUZZ_CHECK(len == 0 || (out[0] != '/' && out[len - 1] != '/'));
	while (*p != '\0') {
		FUZZ_CHECK(*p != '.' && *p != '/');
		p += strcspn(p, "/");
		if (*p == '/')
			p++;
	}
	FUZZ_CHECK(path_normalize(out, len, rel_again, sizeof(rel_again)) == 0);
	FUZZ_CHECK(strcmp(rel_again, out) == 0);
}

/* Every line of a listing parses, and the names are visible and sorted. */
static void check_listing(const char *text, size_t len)
{
	static struct proto_entry ent;
	static char prev[FERRY_LINE_MAX];
	size_t used = 0;
	const char *lf;

	prev[0] = '\0';
	while (used < len) {
		lf = memchr(text + used, '\n', len - used);
		FUZZ_CHECK(lf != NULL);
		FUZZ_CHECK(proto_parse_entry(text + used,
					     (size_t)(lf - text) - used,
					     &ent) == 0);
		FUZZ_CHECK(ent.name[0] != '.');
		FUZZ_CHECK(strcmp(prev, ent.name) < 0);
		snprintf(prev, sizeof(prev), "%s", ent.name);
		used = (size_t)(lf - text) + 1;
	}
}

static void resolve(int op, const char *path)
{
	struct stat st;
	char *listing = NULL;
	size_t listing_len = 0;
	int fd, rc;

	switch (op) {
	case OP_OPEN_FILE:
		fd = path_open_file(root_fd, path, &st);
		if (fd >= 0)
			FUZZ_CHECK(S_ISREG(st.st_mode));
		break;
	case OP_OPEN_PATH:
		fd = path_open(root_fd, path, O_PATH);
		break;
	case OP_OPEN_READ:
		/* O_NONBLOCK, as the daemon's opens: the FIFO has no
		 * writer, and a plain open of it would wait for one. */
		fd = path_open(root_fd, path, O_RDONLY | O_NONBLOCK);
		break;
	default:
		rc = listing_build(root_fd, path, &listing, &listing_len);
		if (rc == 0) {
			check_listing(listing, listing_len);
			free(listing);
		}
		return;
	}
	if (fd >= 0) {
		check_inside(fd, path);
		close(fd);
	} else {
		FUZZ_CHECK(fd > -4096);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	int flags, fds_before, rc, rc_small;

	if (size == 0)
		return 0;
	flags = data[0];
	fds_before = lowest_free_fd();

	/* Once with room for any request path, once with less room: a short
	 * buffer may refuse a path, but never change its result. */
	rc = path_normalize(in, len, rel, sizeof(rel));
	FUZZ_CHECK(rc == 0 || rc == -EACCES || rc == -EINVAL);
	if (rc == 0)
		check_normalized(rel);
	rc_small = path_normalize(in, len, rel_small, len / 2 + 1);
	if (rc_small == 0)
		FUZZ_CHECK(rc == 0 && strcmp(rel_small, rel) == 0);
	else if (rc_small == -EACCES)
		FUZZ_CHECK(rc == -EACCES);
	else
		FUZZ_CHECK(rc_small == -EINVAL);

	path_force_fallback((flags & USE_WALK) != 0);
	if (flags & RAW_PATH) {
		if (len >= sizeof(raw))
			len = sizeof(raw) - 1;
		memcpy(raw, in, len);
		raw[len] = '\0';
		resolve(flags & OP_MASK, raw);
	} else if (rc == 0) {
		resolve(flags & OP_MASK, rel);
	}

	if (lowest_free_fd() != fds_before)
		FUZZ_FAIL("a descriptor leaked: the lowest free one was %d, "
			  "now %d", fds_before, lowest_free_fd());
	return 0;
}
