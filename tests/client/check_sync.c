/* Integration tests of ferry sync: the built src/ferry against the real
 * ferryd on port 0, in both transfer modes (TCase "<test>_<mode>"), and
 * against servers the test stands in for ferryd (a hostile listing).
 *
 * Each test builds its tree below the daemon's root/tree (the standard
 * root's 100 MiB file stays out of it) and syncs into out/. A tree is
 * compared both ways, file by file and byte by byte, mtimes included. The
 * daemon's transfer log says what was fetched: GET lines carry the mode
 * ("mode=sendfile"), their path and bytes.
 *
 * sync --checksum and --verify use ferryd's SUM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/rate.h"
#include "lib/cli.h"
#include "lib/fixture.h"
#include "lib/harness.h"

#define STOP_MS 15000
#define WAIT_MS 20000
#define MIB (1024 * 1024)

static struct h_daemon d;
/* The size of make_tree's big files (begin() sets the default). */
static uint64_t big_bytes;

/* ---- helpers ------------------------------------------------------------ */

static const char *target(void)
{
	static char t[32];

	snprintf(t, sizeof(t), "127.0.0.1:%d", d.port);
	return t;
}

/* root/tree/REL. */
static const char *tree_path(const char *rel)
{
	static char bufs[4][1024];
	static int next;
	char *b = bufs[next++ % 4];

	snprintf(b, sizeof(bufs[0]), "%s/tree%s%s", d.root,
		 rel[0] != '\0' ? "/" : "", rel);
	return b;
}

static void set_mtime(const char *path, time_t mtime)
{
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };

	ck_assert_msg(utimensat(AT_FDCWD, path, ts, 0) == 0, "%s: %s", path,
		      strerror(errno));
}

/* A server file REL of SIZE random bytes with mtime MTIME. */
static void tree_file(const char *rel, uint64_t size, time_t mtime)
{
	const char *p = tree_path(rel);
	int rc = h_write_random(p, size, (uint64_t)random() << 20 ^ size);

	ck_assert_msg(rc == 0, "%s: %s", p, h_strerror(rc));
	set_mtime(p, mtime);
}

static void tree_dir(const char *rel)
{
	const char *p = tree_path(rel);

	ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "%s: %s", p,
		      strerror(errno));
}

/* root/tree: NDIRS x NSUB directories of NFILES small files each, plus
 * NBIG files of BIG_BYTES (and a little) in zz/deep, the deepest, so a
 * sync (breadth first) fetches them last. Returns the total bytes. */
static uint64_t make_tree(int ndirs, int nsub, int nfiles, int nbig)
{
	char rel[256];
	uint64_t total = 0;
	int i, k, f;

	tree_dir("");
	tree_dir("zz");
	tree_dir("zz/deep");
	for (i = 0; i < nbig; i++) {
		uint64_t size = big_bytes + (uint64_t)i * 100003;

		snprintf(rel, sizeof(rel), "zz/deep/big%d", i);
		tree_file(rel, size, H_MTIME - i);
		total += size;
	}
	for (i = 0; i < ndirs; i++) {
		snprintf(rel, sizeof(rel), "d%d", i);
		tree_dir(rel);
		for (k = 0; k < nsub; k++) {
			snprintf(rel, sizeof(rel), "d%d/s%d", i, k);
			tree_dir(rel);
			for (f = 0; f < nfiles; f++) {
				uint64_t size = (uint64_t)(i * 7919 + k * 104 +
							   f * 37) % 1500;

				snprintf(rel, sizeof(rel), "d%d/s%d/f%02d", i,
					 k, f);
				tree_file(rel, size, H_MTIME - f * 60);
				total += size;
			}
		}
	}
	return total;
}

/* ---- comparing trees ---------------------------------------------------- */

/* nftw has no argument for its callback: the other tree's root. */
static const char *other_root;
static size_t root_len;
static size_t walked;
static bool content;

/* Every entry below one tree has its twin below OTHER_ROOT: same type;
 * for a file the same bytes (when CONTENT) and mtime. */
static int twin_cb(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	char twin[2048];
	struct stat ost;

	(void)flag;
	if (ftw->level == 0)
		return 0;
	snprintf(twin, sizeof(twin), "%s%s", other_root, path + root_len);
	ck_assert_msg(lstat(twin, &ost) == 0, "%s has no twin %s", path, twin);
	ck_assert_msg((st->st_mode & S_IFMT) == (ost.st_mode & S_IFMT),
		      "%s and %s differ in type", path, twin);
	if (S_ISREG(st->st_mode)) {
		ck_assert_msg(st->st_mtime == ost.st_mtime,
			      "%s: mtime %lld, %s: %lld", path,
			      (long long)st->st_mtime, twin,
			      (long long)ost.st_mtime);
		if (content)
			cli_expect_same(twin, path, 0, (uint64_t)st->st_size,
					"tree");
		walked++;
	}
	return 0;
}

/* Walks A, finding each entry in B. The count of files. */
static size_t walk_twins(const char *a, const char *b, bool bytes)
{
	root_len = strlen(a);
	other_root = b;
	walked = 0;
	content = bytes;
	ck_assert_int_eq(nftw(a, twin_cb, 16, FTW_PHYS), 0);
	return walked;
}

/* LOCAL (below out/) is exactly root/tree: both ways, bytes and mtimes. */
static void expect_tree(const char *local)
{
	char server[600];
	const char *l = cli_out_path(local);
	size_t n;

	snprintf(server, sizeof(server), "%s", tree_path(""));
	n = walk_twins(server, l, true);
	ck_assert_uint_eq(walk_twins(l, server, false), n);
}

/* ---- the transfer log --------------------------------------------------- */

/* " mode=sendfile ": what every GET line of this daemon holds. */
static const char *get_needle(void)
{
	static char n[32];

	snprintf(n, sizeof(n), " mode=%s ", d.mode);
	return n;
}

/* GET lines in the log, once their count has stopped at WANT or more
 * (the daemon logs a transfer as it ends, maybe after the client left). */
static int gets_logged(int want)
{
	int64_t deadline = h_now_ms() + 2000;
	int n;

	while ((n = h_count_lines(d.transfer_log, get_needle())) < want &&
	       h_now_ms() < deadline)
		cli_pause_ms(10);
	return n;
}

/* Bytes of GET lines after the first SKIP lines of the log, and whether
 * any of them fetched bytes of one of the NAMES (paths below /tree). */
static uint64_t bytes_after(int skip, char **names, size_t nnames,
			    const char **refetched)
{
	char *text = NULL, *line, *end, value[1024], path[1100];
	uint64_t total = 0;
	size_t len, i;
	int at = 0;

	*refetched = NULL;
	ck_assert_int_eq(h_read_file(d.transfer_log, &text, &len), 0);
	for (line = text; *line != '\0'; line = end + 1, at++) {
		uint64_t bytes;

		end = strchr(line, '\n');
		if (end == NULL)
			break;
		*end = '\0';
		if (at < skip || strstr(line, get_needle()) == NULL ||
		    h_field(line, "bytes", value, sizeof(value)) < 0)
			continue;
		bytes = strtoull(value, NULL, 10);
		total += bytes;
		if (bytes == 0 || h_field(line, "path", value, sizeof(value)) < 0)
			continue;
		for (i = 0; i < nnames; i++) {
			snprintf(path, sizeof(path), "/tree/%s", names[i]);
			if (strcmp(value, path) == 0)
				*refetched = names[i];
		}
	}
	free(text);
	return total;
}

/* ---- fixture ------------------------------------------------------------ */

/* The start of every test with a daemon (which fixture_add_mode_tests
 * started): out/, where ferry runs. */
static void begin(void)
{
	cli_make_dirs(d.dir);
	big_bytes = 3 * MIB;
}

static void setup_cli(void)
{
	int rc = h_setup(&d, "sendfile");

	ck_assert_msg(rc == 0, "test dir: %s", h_strerror(rc));
	cli_make_dirs(d.dir);
}

static void teardown_cli(void)
{
	cli_run_free(&cli_last);
	h_teardown(&d);
}

/* "ferry sync -q [OPTS...] TARGET /tree LOCAL", run to its end. */
static struct cli_run *sync_run(const char *local, const char *o1,
				const char *o2, const char *o3)
{
	const char *args[12];
	size_t n = 0;

	args[n++] = "sync";
	args[n++] = "-q";
	if (o1 != NULL)
		args[n++] = o1;
	if (o2 != NULL)
		args[n++] = o2;
	if (o3 != NULL)
		args[n++] = o3;
	args[n++] = target();
	args[n++] = "/tree";
	args[n++] = local;
	args[n] = NULL;
	return cli_run(args);
}

static void sync_ok(const char *local, const char *o1, const char *o2,
		    const char *what)
{
	struct cli_run *r = sync_run(local, o1, o2, NULL);

	cli_expect_exit(r, 0, what);
	ck_assert_msg(r->err_len == 0, "%s: stderr: %s", what, r->err);
}

/* ---- the tree ----------------------------------------------------------- */

START_TEST(sync_tree)
{
	int before;

	begin();
	make_tree(10, 10, 30, 4); /* 3,000 small files, 4 of ~3 MiB */
	before = gets_logged(0);
	sync_ok("copy", NULL, NULL, "first sync");
	expect_tree("copy");
	ck_assert_int_eq(gets_logged(before + 3004), before + 3004);

	/* Nothing changed: nothing fetched. */
	sync_ok("copy", NULL, NULL, "second sync");
	ck_assert_int_eq(gets_logged(before + 3004), before + 3004);

	/* Same size, another mtime; another size. */
	tree_file("d3/s4/f05", 1000, H_MTIME + 77);
	tree_file("d3/s4/f06", 1000, H_MTIME);
	set_mtime(tree_path("d3/s4/f06"), H_MTIME - 6 * 60);
	sync_ok("copy", NULL, NULL, "after a change");
	expect_tree("copy");
	ck_assert_int_eq(gets_logged(before + 3006), before + 3006);

	/* Gone from the server: kept without --delete, removed with it. */
	ck_assert_int_eq(unlink(tree_path("d9/s9/f29")), 0);
	ck_assert_int_eq(h_rm_rf(tree_path("d8/s1")), 0);
	sync_ok("copy", NULL, NULL, "without --delete");
	ck_assert_int_eq(access(cli_out_path("copy/d9/s9/f29"), F_OK), 0);
	ck_assert_int_eq(access(cli_out_path("copy/d8/s1/f00"), F_OK), 0);
	sync_ok("copy", "--delete", NULL, "with --delete");
	cli_expect_absent(cli_out_path("copy/d9/s9/f29"), "--delete");
	cli_expect_absent(cli_out_path("copy/d8/s1"), "--delete");
	expect_tree("copy");
	ck_assert_int_eq(gets_logged(before + 3006), before + 3006);
}
END_TEST

START_TEST(sync_jobs_agree)
{
	uint64_t total;
	const char *loud[] = { "sync", target(), "/tree", "loud", NULL };
	char want[128];
	struct cli_run *r;

	begin();
	total = make_tree(4, 5, 20, 3);
	sync_ok("one", "-j", "1", "-j 1");
	sync_ok("eight", "-j", "8", "-j 8");
	sync_ok("flushed", "--fsync", NULL, "--fsync");
	expect_tree("one");
	expect_tree("eight");
	expect_tree("flushed");

	/* The summary counts every byte, over the default 4 connections. */
	r = cli_run(loud);
	cli_expect_exit(r, 0, "summary");
	snprintf(want, sizeof(want),
		 "sync: 403 fetched, 0 up to date, 0 deleted: %llu bytes in ",
		 (unsigned long long)total);
	cli_expect_stderr_has(r, want, "summary");
	expect_tree("loud");
}
END_TEST

/* Writes what out/ holds (names, sizes, mtimes, modes, digests) to the
 * test dir's NAME. */
static void snapshot(const char *name)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && { find . -printf '%%p %%s %%T@ %%m\\n' | sort; "
		 "find . -type f | sort | xargs md5sum; } > '%s/%s'",
		 cli_out_dir, d.dir, name);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(sync_dry_run)
{
	char *before = NULL, *after = NULL;
	struct cli_run *r;
	size_t len;
	int gets;

	begin();
	make_tree(2, 3, 10, 1);
	sync_ok("copy", NULL, NULL, "first sync");
	tree_file("d1/s2/f03", 5000, H_MTIME + 5);
	ck_assert_int_eq(unlink(tree_path("d0/s0/f00")), 0);
	tree_dir("newdir");
	tree_file("newdir/n", 10, H_MTIME);
	ck_assert_int_eq(h_write_text(cli_out_path("copy/extra"), "x"), 0);
	ck_assert_int_eq(mkdir(cli_out_path("copy/extradir"), 0755), 0);
	gets = gets_logged(0);

	/* A listing of out/ before and after, mtimes, sizes and digests
	 * included. */
	snapshot("before");
	r = sync_run("copy", "--dry-run", "--delete", NULL);
	cli_expect_exit(r, 0, "--dry-run");
	snapshot("after");
	ck_assert_msg(strstr(r->out, "fetch d1/s2/f03\n") != NULL &&
			      strstr(r->out, "mkdir newdir/\n") != NULL &&
			      strstr(r->out, "fetch newdir/n\n") != NULL &&
			      strstr(r->out, "delete d0/s0/f00\n") != NULL &&
			      strstr(r->out, "delete extra\n") != NULL &&
			      strstr(r->out, "delete extradir/\n") != NULL,
		      "--dry-run printed: %s", r->out);
	ck_assert_int_eq(h_read_file(cli_out_path("../before"), &before, &len),
			 0);
	ck_assert_int_eq(h_read_file(cli_out_path("../after"), &after, &len), 0);
	ck_assert_msg(strcmp(before, after) == 0, "--dry-run changed out/");
	free(before);
	free(after);
	ck_assert_int_eq(gets_logged(gets), gets);
}
END_TEST

/* Spaces, a newline, percent signs, bytes that are not UTF-8, names like
 * requests: each arrives under its own name. */
START_TEST(sync_odd_names)
{
	static const char *const files[] = {
		"with space", "new\nline", "per%cent%25", "\xff\xfe\x80 latin",
		"SUM x", "GET x", "tab\there", "dir with space/in\nside",
		"dir with space/%00",
	};
	size_t i;
	int before;

	begin();
	tree_dir("");
	tree_dir("dir with space");
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		tree_file(files[i], 100 + i, H_MTIME);
	before = gets_logged(0);
	sync_ok("copy", NULL, NULL, "odd names");
	expect_tree("copy");
	ck_assert_int_eq(gets_logged(before + (int)i), before + (int)i);
	sync_ok("copy", NULL, NULL, "odd names again");
	ck_assert_int_eq(gets_logged(before + (int)i), before + (int)i);
}
END_TEST

/* ---- interruptions ------------------------------------------------------ */

/* Starts "ferry sync -q -j 2 --limit-rate 4M TARGET /tree copy" and
 * waits until the first big file is on its way (the small ones, fetched
 * before, are then mostly done). */
static pid_t start_slow_sync(void)
{
	const char *args[] = { "sync", "-q", "-j", "2", "--limit-rate", "4M",
			       target(), "/tree", "copy", NULL };
	int64_t deadline = h_now_ms() + WAIT_MS;
	struct stat st;
	pid_t pid;

	pid = cli_start(args, NULL);
	while (stat(cli_out_path("copy/zz/deep/big0.part"), &st) < 0 ||
	       st.st_size < MIB) {
		ck_assert_msg(h_now_ms() < deadline,
			      "big0.part did not reach 1 MiB in %d ms",
			      WAIT_MS);
		ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0,
			      "ferry sync ended before big0.part reached "
			      "1 MiB");
		cli_pause_ms(5);
	}
	return pid;
}

/* Collects the files below out/LOCAL that are complete (their twin in
 * the tree has their size, mtime and bytes: a NAME is never anything
 * else) into NAMES, their bytes into *DONE, and the bytes the parts that
 * can be continued hold into *PARTS. Returns the count. */
static size_t complete_files(const char *local, char ***names, uint64_t *done,
			     uint64_t *parts)
{
	char cmd[800], line[1100], path[1200];
	size_t n = 0;
	FILE *f;

	*names = calloc(4096, sizeof(**names));
	ck_assert_ptr_nonnull(*names);
	*done = *parts = 0;
	/* The tree's names are plain: one a line. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && find . -type f",
		 cli_out_path(local));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct stat st, tst;
		char *rel = line + 2; /* after "./" */
		size_t len = strlen(rel);

		rel[len - 1] = '\0';
		len--;
		snprintf(path, sizeof(path), "%s/%s", cli_out_path(local), rel);
		ck_assert_int_eq(stat(path, &st), 0);
		if (len > 5 && strcmp(rel + len - 5, ".part") == 0) {
			/* Only a part with its record is continued; sync
			 * keeps none for files under 1 MiB. */
			snprintf(path + strlen(path), sizeof(path) - strlen(path),
				 ".meta");
			if (access(path, F_OK) == 0)
				*parts += (uint64_t)st.st_size;
			continue;
		}
		if (len > 10 && strcmp(rel + len - 10, ".part.meta") == 0)
			continue;
		ck_assert_int_eq(stat(tree_path(rel), &tst), 0);
		ck_assert_msg(st.st_size == tst.st_size &&
				      st.st_mtime == tst.st_mtime,
			      "%s is there but not complete", rel);
		cli_expect_same(path, tree_path(rel), 0, (uint64_t)tst.st_size,
				"a complete file");
		ck_assert_uint_lt(n, 4096);
		(*names)[n++] = strdup(rel);
		*done += (uint64_t)st.st_size;
	}
	pclose(f);
	return n;
}

static void free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

START_TEST(sync_interrupted)
{
	uint64_t total, done, parts, got;
	const char *refetched;
	char **names;
	size_t n;
	int status, skip;
	pid_t pid;

	begin();
	total = make_tree(3, 4, 30, 4);
	pid = start_slow_sync();
	kill(-pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_assert(WIFSIGNALED(status));
	n = complete_files("copy", &names, &done, &parts);
	ck_assert_uint_ge(n, 1);
	/* Every transfer of the killed run has ended and been logged. */
	ck_assert_int_eq(h_wait_fd_count(d.pid, d.fd_baseline, 5000),
			 d.fd_baseline);
	skip = h_count_lines(d.transfer_log, "");

	sync_ok("copy", NULL, NULL, "the second run");
	expect_tree("copy");
	gets_logged(0);
	got = bytes_after(skip, names, n, &refetched);
	ck_assert_msg(refetched == NULL, "%s was fetched again", refetched);
	ck_assert_msg(got == total - done - parts,
		      "the second run fetched %llu bytes; %llu were left "
		      "(%llu of %llu complete, %llu in parts)",
		      (unsigned long long)got,
		      (unsigned long long)(total - done - parts),
		      (unsigned long long)done, (unsigned long long)total,
		      (unsigned long long)parts);
	free_names(names, n);
}
END_TEST

START_TEST(sync_server_killed)
{
	uint64_t done, parts;
	char **names;
	struct cli_run *r;
	size_t n;
	pid_t pid;

	begin();
	/* More than the sockets' buffers hold: when ferryd dies, most of
	 * the tree has not left it. */
	big_bytes = 16 * MIB;
	make_tree(3, 4, 30, 4);
	pid = start_slow_sync();
	h_kill(&d);
	r = cli_finish(pid);
	cli_expect_exit(r, 3, "server killed");
	/* The message names the file that was cut. */
	cli_expect_stderr_has(r, "ferry: /tree/", "server killed");
	cli_expect_stderr_has(r, "run ferry sync again", "server killed");
	/* Every NAME there is complete and byte-exact; parts stay parts. */
	n = complete_files("copy", &names, &done, &parts);
	ck_assert_uint_ge(n, 1);
	free_names(names, n);
}
END_TEST

/* ---- faults ------------------------------------------------------------- */

START_TEST(sync_unwritable)
{
	struct passwd *pw = getpwnam("nobody");
	struct cli_spawn sp = { -1, -1, 0, false, 0, 0 };
	const char *args[] = { "sync", "-q", target(), "/tree", "ro", NULL };
	char parent[300], *slash;
	struct cli_run *r;
	DIR *dir;
	int entries = 0;

	begin();
	if (getuid() != 0 || pw == NULL) {
		fprintf(stderr, "sync_unwritable: not root or no nobody; "
				"skipped\n");
		return;
	}
	make_tree(1, 2, 3, 1);
	/* nobody must reach out/ to run there; out/ro stays root's. */
	snprintf(parent, sizeof(parent), "%s", d.dir);
	slash = strrchr(parent, '/');
	*slash = '\0';
	ck_assert_int_eq(chmod(parent, 0755), 0);
	ck_assert_int_eq(chmod(d.dir, 0755), 0);
	ck_assert_int_eq(mkdir(cli_out_path("ro"), 0755), 0);
	/* nobody must reach the binary too, and a build tree may sit below a
	 * directory only root can enter (CI's scratch directory is 0700):
	 * run a copy of ferry from PARENT. */
	{
		char copy[320], *bin = NULL;
		size_t bin_len = 0;
		int fd;

		ck_assert_int_eq(h_read_file(cli_ferry_path(), &bin, &bin_len), 0);
		snprintf(copy, sizeof(copy), "%s/ferry-as-nobody", parent);
		fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0755);
		ck_assert_int_ge(fd, 0);
		ck_assert(write(fd, bin, bin_len) == (ssize_t)bin_len);
		close(fd);
		free(bin);
		setenv("FERRY", copy, 1);
	}
	sp.uid = pw->pw_uid;
	sp.gid = pw->pw_gid;
	r = cli_run_with(args, &sp);
	cli_expect_exit(r, 3, "unwritable");
	cli_expect_stderr_has(r, "Permission denied", "unwritable");
	cli_expect_stderr_has(r, "ro/", "unwritable");
	dir = opendir(cli_out_path("ro"));
	ck_assert_ptr_nonnull(dir);
	while (readdir(dir) != NULL)
		entries++;
	closedir(dir);
	ck_assert_int_eq(entries, 2);
}
END_TEST

START_TEST(sync_disk_full)
{
	uint64_t done, parts;
	char **names;
	struct cli_run *r;
	size_t n;

	begin();
	make_tree(2, 3, 20, 2);
	ck_assert_int_eq(mkdir(cli_out_path("full"), 0755), 0);
	/* In a mount namespace of this test's own process (Check forks one
	 * per test), which ferry inherits: the tmpfs goes with them. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", cli_out_path("full"), "tmpfs", 0, "size=2m") < 0) {
		fprintf(stderr, "sync_disk_full: cannot mount a tmpfs (%s); "
				"skipped\n",
			strerror(errno));
		return;
	}
	ck_assert_int_eq(mkdir(cli_out_path("full/copy"), 0755), 0);
	r = sync_run("full/copy", "-j", "1", NULL);
	cli_expect_exit(r, 3, "disk full");
	cli_expect_stderr_has(r, "No space left on device", "disk full");
	cli_expect_stderr_has(r, "full/copy/", "disk full");
	/* What arrived whole is intact; nothing incomplete is a NAME. */
	n = complete_files("full/copy", &names, &done, &parts);
	free_names(names, n);
	ck_assert_int_eq(umount2(cli_out_path("full"), MNT_DETACH), 0);
}
END_TEST

/* On a terminal: one progress line for the whole tree (files and bytes of
 * the total, rate, ETA), cleared before the summary. */
START_TEST(sync_progress_on_tty)
{
	const char *args[] = { "sync", "--limit-rate", "8M", target(),
			       "/tree", "copy", NULL };
	char *text, *summary;
	int status;

	begin();
	make_tree(2, 2, 10, 2);
	text = cli_run_on_tty(args, &status);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "%s; tty: %s", cli_describe_status(status), text);
	ck_assert_msg(strstr(text, "/42 files  ") != NULL &&
			      strstr(text, " / 6.1 MiB  ") != NULL &&
			      strstr(text, " MiB/s  ETA ") != NULL,
		      "no progress line on the tty: %s", text);
	summary = strstr(text, "\r\033[Ksync: 42 fetched, 0 up to date, 0 "
			       "deleted: ");
	ck_assert_msg(summary != NULL && strstr(summary, " MiB/s\r\n") != NULL,
		      "no summary on the tty: %s", text);
	free(text);
	expect_tree("copy");
}
END_TEST

/* ---- --limit-rate ------------------------------------------------------- */

START_TEST(sync_limit_rate)
{
	int64_t start;

	begin();
	tree_dir("");
	tree_file("four", 4 * MIB, H_MTIME);
	start = h_now_ms();
	sync_ok("copy", "--limit-rate", "2M", "--limit-rate 2M");
	/* A lower bound only: a limit must not be beaten. */
	ck_assert_msg(h_now_ms() - start >= 1500,
		      "4 MiB at 2 MiB/s took %lld ms",
		      (long long)(h_now_ms() - start));
	expect_tree("copy");
}
END_TEST

/* ---- with SUM ----------------------------------------------------------- */

/* --checksum finds a local file whose bytes differ under the same size
 * and mtime, which a plain sync trusts. */
START_TEST(sync_checksum)
{
	char buf[1] = { 0 };
	int gets;

	begin();
	make_tree(2, 2, 5, 1);
	sync_ok("copy", NULL, NULL, "first sync");
	ck_assert_int_eq(h_write_at(cli_out_path("copy/d1/s1/f04"), 3, buf, 1),
			 0);
	set_mtime(cli_out_path("copy/d1/s1/f04"), H_MTIME - 4 * 60);
	gets = gets_logged(0);
	sync_ok("copy", NULL, NULL, "trusting size and mtime");
	ck_assert_int_eq(gets_logged(gets), gets);
	sync_ok("copy", "--checksum", NULL, "--checksum");
	ck_assert_int_eq(gets_logged(gets + 1), gets + 1);
	expect_tree("copy");
}
END_TEST

/* sync --verify: every file checked against SUM. */
START_TEST(sync_verify)
{
	begin();
	make_tree(2, 2, 5, 1);
	sync_ok("copy", "--verify", NULL, "--verify");
	expect_tree("copy");
	ck_assert_int_ge(h_count_lines(d.transfer_log, " mode=sum "), 21);
}
END_TEST

/* ---- a hostile server --------------------------------------------------- */

/* Serves one LIST with BODY to the sync the test started, then reads
 * until the client closes. */
static void serve_listing(int lfd, const char *body)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	char line[4200], head[64];
	char *rest = NULL;
	size_t len;
	int fd;

	ck_assert_msg(poll(&p, 1, WAIT_MS) == 1, "the client did not connect");
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(h_recv_line(fd, line, sizeof(line), WAIT_MS), 0);
	ck_assert_str_eq(line, "LIST /tree/");
	snprintf(head, sizeof(head), "OK %zu\n", strlen(body));
	ck_assert_int_eq(h_send_str(fd, head, WAIT_MS), 0);
	ck_assert_int_eq(h_send_str(fd, body, WAIT_MS), 0);
	h_recv_all(fd, &rest, &len, 1 << 20, WAIT_MS);
	free(rest);
	close(fd);
}

START_TEST(sync_hostile_names)
{
	static const char *const bodies[] = {
		"f 1 1764000000 ..%2Fevil\n",
		"d 0 1764000000 ..\nf 1 1764000000 evil\n",
		"d 0 1764000000 .\n",
		"f 1 1764000000 a%2F..%2F..%2Fevil\n",
		"f 1 1764000000 %2Ftmp%2Fevil\n",
		"f 1 1764000000 evil%00x\n",
		"f 1 1764000000 b\nf 1 1764000000 a\n",
		"f 1 1764000000 a\nd 0 1764000000 a\n",
	};
	size_t i;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char t[32];
		const char *args[] = { "sync", "-q", t, "/tree/", "dst", NULL };
		int port, lfd = cli_fake_listen(&port);
		struct cli_run *r;
		pid_t pid;

		snprintf(t, sizeof(t), "127.0.0.1:%d", port);
		pid = cli_start(args, NULL);
		serve_listing(lfd, bodies[i]);
		close(lfd);
		r = cli_finish(pid);
		cli_expect_exit(r, 3, bodies[i]);
		cli_expect_stderr_has(r, "listing /tree/", bodies[i]);
		cli_expect_absent(cli_out_path("dst"), bodies[i]);
		cli_expect_absent(cli_out_path("evil"), bodies[i]);
		cli_expect_absent(cli_out_path("../evil"), bodies[i]);
		cli_run_free(&cli_last);
	}
}
END_TEST

START_TEST(sync_usage)
{
	static const char *const cases[][8] = {
		{ "sync", "h", "/", NULL },
		{ "sync", "-j", "0", "h", "/", "x", NULL },
		{ "sync", "-j", "65", "h", "/", "x", NULL },
		{ "sync", "--limit-rate", "fast", "h", "/", "x", NULL },
		{ "sync", "--nope", "h", "/", "x", NULL },
		{ "sync", "h:0", "/", "x", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cli_run *r = cli_run(cases[i]);

		cli_expect_exit(r, 2, cases[i][1]);
		cli_expect_stderr_has(r, "usage: ferry get", cases[i][1]);
	}
}
END_TEST

START_TEST(rate_parser)
{
	uint64_t v;

	ck_assert_int_eq(rate_parse("500K", &v), 0);
	ck_assert_uint_eq(v, 500 * 1024);
	ck_assert_int_eq(rate_parse("20m", &v), 0);
	ck_assert_uint_eq(v, 20 * MIB);
	ck_assert_int_eq(rate_parse("1G", &v), 0);
	ck_assert_uint_eq(v, 1024ULL * MIB);
	ck_assert_int_eq(rate_parse("12345", &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(rate_parse("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(rate_parse("", &v), -EINVAL);
	ck_assert_int_eq(rate_parse("K", &v), -EINVAL);
	ck_assert_int_eq(rate_parse("1.5M", &v), -EINVAL);
	ck_assert_int_eq(rate_parse("-1", &v), -EINVAL);
	ck_assert_int_eq(rate_parse("2MB", &v), -EINVAL);
	ck_assert_int_eq(rate_parse("9999999999999G", &v), -EINVAL);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

#define T(f, timeout_s) { #f, &f, timeout_s }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct fixture_test daemon_tests[] = {
	T(sync_tree, 120),	    T(sync_jobs_agree, 120),
	T(sync_dry_run, 60),	    T(sync_odd_names, 60),
	T(sync_interrupted, 120),   T(sync_server_killed, 120),
	T(sync_unwritable, 60),	    T(sync_disk_full, 60),
	T(sync_limit_rate, 60),	    T(sync_checksum, 60),
	T(sync_verify, 60),	    T(sync_progress_on_tty, 60),
};
static const struct fixture_test cli_tests[] = {
	T(sync_hostile_names, 60),
	T(sync_usage, 30),
	T(rate_parser, 30),
};

static Suite *sync_suite(void)
{
	Suite *s = suite_create("sync");

	fixture_add_mode_tests(s, &d, STOP_MS, daemon_tests,
			       COUNT(daemon_tests));
	fixture_add_tests(s, "cli", setup_cli, teardown_cli, cli_tests,
			  COUNT(cli_tests));
	return s;
}

int main(void)
{
	return fixture_run("check_sync", sync_suite());
}
