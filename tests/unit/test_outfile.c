// SPDX-License-Identifier: MIT
/* Output paths (util/outfile.h): only regular files are written, devices,
 * FIFOs, sockets and directories are refused and left as they were, a link
 * another user could have planted is never followed (at the end of the path
 * or in the middle), a trusted link is written through, and writing goes
 * through a temporary file that never stays behind, not even when the disk
 * is full (one line says which output failed). Runs as root: links are
 * given to another owner with lchown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cmocka.h>

#include "util/outfile.h"

/* A uid that is neither root nor us: "another user". */
#define OTHER_UID 65534

struct fixture {
	char dir[64];  /* a private temporary directory (0700) */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/test_outfile.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static void path_in(char *buf, size_t len, const struct fixture *f, const char *name)
{
	snprintf(buf, len, "%s/%s", f->dir, name);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void assert_file_is(const char *path, const char *text)
{
	char buf[256] = "";
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	assert_string_equal(buf, text);
}

/* Number of entries in dir (without . and ..): no temporary file stays. */
static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Writes text to path through outfile; returns outfile__open's or commit's error. */
static int write_out(const char *path, const char *text, char *err, size_t errlen)
{
	struct outfile *o = outfile__open(path, err, errlen);
	if (!o)
		return -errno;
	fputs(text, outfile__stream(o));
	return outfile__commit(o, err, errlen);
}

static void refused(const char *path, int want, const char *needle)
{
	char err[512] = "";
	struct stat before, after;
	int had = lstat(path, &before) == 0;
	int e = outfile__check(path, 0, err, sizeof(err));
	if (e != want)
		fail_msg("%s: expected %d, got %d (%s)", path, want, e, err);
	if (!strstr(err, needle))
		fail_msg("%s: message '%s' does not mention '%s'", path, err, needle);
	errno = 0;
	assert_null(outfile__open(path, err, sizeof(err)));
	assert_int_equal(errno, -want);
	if (had) { /* left as it was: same inode, same type */
		assert_int_equal(lstat(path, &after), 0);
		assert_int_equal(before.st_ino, after.st_ino);
		assert_int_equal(before.st_mode, after.st_mode);
	}
}

static void test_special_files_refused(void **state)
{
	struct fixture *f = *state;
	char p[128];
	refused("/dev/null", -EINVAL, "a character device");
	refused("/dev/full", -EINVAL, "a character device");
	refused("/tmp", -EISDIR, "a directory");
	refused(f->dir, -EISDIR, "a directory");
	path_in(p, sizeof(p), f, "");
	refused(p, -EISDIR, "directory");
	path_in(p, sizeof(p), f, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	refused(p, -EINVAL, "a FIFO");

	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	path_in(sa.sun_path, sizeof(sa.sun_path), f, "sock");
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	refused(sa.sun_path, -EINVAL, "a socket");
	close(s);

	path_in(p, sizeof(p), f, "missing/out.svg");
	refused(p, -ENOENT, "No such file");
	path_in(p, sizeof(p), f, "fifo/out.svg");
	refused(p, -ENOTDIR, "not a directory");
	assert_int_equal(entries(f->dir), 2); /* fifo, sock: nothing else made */
}

static void test_write_replaces_regular_file(void **state)
{
	struct fixture *f = *state;
	char p[128], err[512] = "";
	path_in(p, sizeof(p), f, "out.folded");
	assert_int_equal(outfile__check(p, 0, err, sizeof(err)), 0);
	assert_int_equal(entries(f->dir), 0); /* the check's probe is gone */
	assert_int_equal(write_out(p, "first\n", err, sizeof(err)), 0);
	assert_file_is(p, "first\n");
	assert_int_equal(write_out(p, "second\n", err, sizeof(err)), 0);
	assert_file_is(p, "second\n");
	assert_int_equal(entries(f->dir), 1);

	/* Aborting keeps the old file and leaves no temporary file. */
	struct outfile *o = outfile__open(p, err, sizeof(err));
	assert_non_null(o);
	fputs("half", outfile__stream(o));
	assert_int_equal(entries(f->dir), 2);
	outfile__abort(o);
	assert_file_is(p, "second\n");
	assert_int_equal(entries(f->dir), 1);
	outfile__abort(NULL);

	/* Relative paths and "." / ".." in the middle work. */
	char cwd[512];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(write_out("./rel.txt", "rel\n", err, sizeof(err)), 0);
	assert_int_equal(mkdir("sub", 0700), 0);
	assert_int_equal(write_out("sub/../sub/x.txt", "x\n", err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	path_in(p, sizeof(p), f, "sub/x.txt");
	assert_file_is(p, "x\n");

	/* "-" is standard output. */
	o = outfile__open("-", err, sizeof(err));
	assert_non_null(o);
	assert_ptr_equal(outfile__stream(o), stdout);
	assert_int_equal(outfile__commit(o, err, sizeof(err)), 0);
}

/* The disk fills up while writing (the file size limit, RLIMIT_FSIZE, stands
 * in for a full file system) and standard output is /dev/full: one line
 * saying which output failed and why; the old file is kept whole and no
 * temporary file stays behind. */
static void test_full_disk(void **state)
{
	struct fixture *f = *state;
	char p[128], err[512] = "";
	path_in(p, sizeof(p), f, "out.folded");
	assert_int_equal(write_out(p, "old\n", err, sizeof(err)), 0);

	struct outfile *o = outfile__open(p, err, sizeof(err));
	assert_non_null(o);
	struct rlimit old, small;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 16 << 10;
	signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	for (int i = 0; i < 4096; i++)
		fputs("main;handle_request;render_template 1\n", outfile__stream(o));
	int e = outfile__commit(o, err, sizeof(err));
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(e, -EFBIG);
	char want[256];
	snprintf(want, sizeof(want), "writing %s failed: File too large", p);
	assert_string_equal(err, want);
	assert_file_is(p, "old\n");
	assert_int_equal(entries(f->dir), 1);

	fflush(stdout);
	int saved = dup(STDOUT_FILENO), full = open("/dev/full", O_WRONLY);
	assert_true(saved >= 0 && full >= 0);
	assert_true(dup2(full, STDOUT_FILENO) >= 0);
	o = outfile__open("-", err, sizeof(err));
	assert_non_null(o);
	fputs("main;handle_request 1\n", outfile__stream(o));
	e = outfile__commit(o, err, sizeof(err));
	clearerr(stdout);
	assert_true(dup2(saved, STDOUT_FILENO) >= 0);
	close(saved);
	close(full);
	assert_int_equal(e, -ENOSPC);
	assert_string_equal(err, "writing to standard output failed: No space left on device");
}

/* A link another user made in a sticky world-writable directory (/tmp) is
 * never followed; the file it points at is untouched. */
static void test_planted_link_not_followed(void **state)
{
	struct fixture *f = *state;
	char sticky[128], victim[128], lnk[160], err[512];
	path_in(sticky, sizeof(sticky), f, "sticky");
	path_in(victim, sizeof(victim), f, "victim");
	assert_int_equal(mkdir(sticky, 0700), 0);
	assert_int_equal(chmod(sticky, 01777), 0);
	write_file(victim, "precious\n");
	snprintf(lnk, sizeof(lnk), "%s/out.svg", sticky);
	assert_int_equal(symlink(victim, lnk), 0);
	assert_int_equal(lchown(lnk, OTHER_UID, OTHER_UID), 0);

	refused(lnk, -EPERM, "symbolic link");
	assert_int_equal(outfile__check(lnk, 0, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, sticky));
	assert_file_is(victim, "precious\n");

	/* ... nor one in the middle of the path. */
	char dir[128], via[192];
	path_in(dir, sizeof(dir), f, "secret");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(lnk, sizeof(lnk), "%s/reports", sticky);
	assert_int_equal(symlink(dir, lnk), 0);
	assert_int_equal(lchown(lnk, OTHER_UID, OTHER_UID), 0);
	snprintf(via, sizeof(via), "%s/profile.svg", lnk);
	refused(via, -EPERM, "reports is a symbolic link");
	assert_int_equal(entries(dir), 0);

	/* Our own link there cannot be swapped by others: it is followed. */
	snprintf(lnk, sizeof(lnk), "%s/mine.svg", sticky);
	assert_int_equal(symlink(victim, lnk), 0);
	assert_int_equal(write_out(lnk, "new\n", err, sizeof(err)), 0);
	assert_file_is(victim, "new\n");
	struct stat st;
	assert_int_equal(lstat(lnk, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	/* In a sticky directory another user owns, even our link is not safe. */
	assert_int_equal(chown(sticky, OTHER_UID, OTHER_UID), 0);
	refused(lnk, -EPERM, "symbolic link");
	assert_int_equal(chown(sticky, 0, 0), 0);

	/* A group-writable directory without the sticky bit: anyone in the group
	 * can swap the link, so it is refused even though root owns it. */
	char shared[128];
	path_in(shared, sizeof(shared), f, "shared");
	assert_int_equal(mkdir(shared, 0700), 0);
	assert_int_equal(chmod(shared, 0775), 0);
	snprintf(lnk, sizeof(lnk), "%s/out.svg", shared);
	assert_int_equal(symlink(victim, lnk), 0);
	refused(lnk, -EPERM, "symbolic link");
	assert_file_is(victim, "new\n");

	/* A regular file another user made in the sticky directory is replaced
	 * by a new file (rename), never written into. */
	char theirs[160];
	snprintf(theirs, sizeof(theirs), "%s/theirs.svg", sticky);
	assert_int_equal(link(victim, theirs), 0); /* a hard link to the victim */
	assert_int_equal(write_out(theirs, "mine\n", err, sizeof(err)), 0);
	assert_file_is(theirs, "mine\n");
	assert_file_is(victim, "new\n");
}

/* The private-directory check for the agent's database. */
static void test_private_dir(void **state)
{
	struct fixture *f = *state;
	char p[128], err[512];
	path_in(p, sizeof(p), f, "history.db");
	assert_int_equal(outfile__check(p, OUTFILE_PRIVATE_DIR, err, sizeof(err)), 0);
	assert_int_equal(entries(f->dir), 0); /* nothing created */
	assert_int_equal(outfile__check("/tmp/h5_outfile_test.db", OUTFILE_PRIVATE_DIR, err,
					sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "other users"));
	assert_int_equal(outfile__check("/dev/null", OUTFILE_PRIVATE_DIR, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(outfile__check("", 0, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_outfile: needs root (links of another owner)\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_special_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_replaces_regular_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_link_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_dir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
