// SPDX-License-Identifier: MIT
#include "util/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"

/* Links followed in one path before giving up, as the kernel's ELOOP. */
#define MAX_LINKS 40
/* Tries at a fresh temporary name before giving up. */
#define TEMP_TRIES 100

/* Where a path leads: the directory the file is (or will be) in, and its name. */
struct target {
	int dirfd;                /* O_PATH descriptor of that directory */
	char name[NAME_MAX + 1];  /* the file's name in it */
	bool exists;              /* a regular file of that name is there now */
};

struct outfile {
	FILE *f;                  /* the stream written to */
	struct target t;          /* where it goes (dirfd -1 for stdout) */
	char tmp[NAME_MAX + 1];   /* temporary file's name in t.dirfd */
	char path[PATH_MAX];      /* the path as given, for messages */
};

/* The path of directory fd, for messages (or "?"). */
static const char *dir_name(int fd, char *buf, size_t len)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, buf, len - 1);
	if (n <= 0)
		return "?";
	buf[n] = '\0';
	return buf;
}

static bool owner_trusted(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* Nobody but root and us can add, remove or rename entries in directory d. */
static bool dir_private(const struct stat *d)
{
	return owner_trusted(d->st_uid) && !(d->st_mode & (S_IWGRP | S_IWOTH));
}

/* A link l in directory d was put there by root or us and cannot be swapped:
 * d is private, or d is sticky (others cannot rename or remove our entries)
 * and owned by root or us, and l is owned by root or us. */
static bool link_trusted(const struct stat *d, const struct stat *l)
{
	if (dir_private(d))
		return true;
	return (d->st_mode & S_ISVTX) && owner_trusted(d->st_uid) && owner_trusted(l->st_uid);
}

static int open_dir(int at, const char *name)
{
	int fd = openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Walks path to its target. Returns 0 with t filled (t->dirfd to close), or
 * -errno with a message. */
static int resolve(const char *path, struct target *t, char *err, size_t errlen)
{
	char rest[2 * PATH_MAX], link[PATH_MAX], where[PATH_MAX];
	int links = 0, e;

	t->dirfd = -1;
	t->exists = false;
	if (!*path) {
		errmsg__set(err, errlen, "an empty output path");
		return -EINVAL;
	}
	if (strlen(path) >= PATH_MAX) {
		errmsg__set(err, errlen, "cannot write %.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(rest, sizeof(rest), "%s", path);
	t->dirfd = open_dir(AT_FDCWD, path[0] == '/' ? "/" : ".");
	if (t->dirfd < 0) {
		e = t->dirfd;
		errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
		return e;
	}
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p) { /* "/", "dir/": names a directory */
			errmsg__set(err, errlen, "refusing to write %s: it is a directory, not a "
				    "regular file", path);
			e = -EISDIR;
			goto fail;
		}
		char *slash = strchr(p, '/');
		char comp[NAME_MAX + 1];
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n > NAME_MAX) {
			errmsg__set(err, errlen, "cannot write %s: a name longer than %d bytes",
				    path, NAME_MAX);
			e = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		bool last = !slash;
		struct stat st, dst;

		if (slash && !slash[strspn(slash, "/")]) {
			errmsg__set(err, errlen, "refusing to write %s: it names a directory, not "
				    "a regular file", path);
			e = -EISDIR;
			goto fail;
		}

		if (fstatat(t->dirfd, comp, &st, AT_SYMLINK_NOFOLLOW)) {
			e = -errno;
			if (e == -ENOENT && last) {
				snprintf(t->name, sizeof(t->name), "%s", comp);
				return 0;
			}
			errmsg__set(err, errlen, "cannot write %s: %s%s", path, strerror(-e),
				    e == -ENOENT ? " (a directory in the path does not exist)" : "");
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			if (fstat(t->dirfd, &dst)) {
				e = -errno;
				errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
				goto fail;
			}
			if (!link_trusted(&dst, &st)) {
				errmsg__set(err, errlen, "refusing to write %s: %s is a symbolic link "
					    "in %s, a directory other users can change, so it may "
					    "have been planted; give the real path", path, comp,
					    dir_name(t->dirfd, where, sizeof(where)));
				e = -EPERM;
				goto fail;
			}
			ssize_t ln = readlinkat(t->dirfd, comp, link, sizeof(link));
			if (ln < 0 || ln >= (ssize_t)sizeof(link) || ++links > MAX_LINKS) {
				e = ln < 0 ? -errno : ln >= (ssize_t)sizeof(link) ? -ENAMETOOLONG
										   : -ELOOP;
				errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
				goto fail;
			}
			link[ln] = '\0';
			/* Continue with the link's text in place of the link. */
			size_t tail = strlen(p);
			if ((size_t)ln + tail >= sizeof(rest)) {
				e = -ENAMETOOLONG;
				errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
				goto fail;
			}
			memmove(rest + ln, p, tail + 1);
			memcpy(rest, link, (size_t)ln);
			p = rest;
			if (link[0] == '/') {
				int fd = open_dir(AT_FDCWD, "/");
				if (fd < 0) {
					e = fd;
					errmsg__set(err, errlen, "cannot write %s: %s", path,
						    strerror(-e));
					goto fail;
				}
				close(t->dirfd);
				t->dirfd = fd;
			}
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (last) {
				errmsg__set(err, errlen, "refusing to write %s: it is a directory, not "
					    "a regular file", path);
				e = -EISDIR;
				goto fail;
			}
			int fd = open_dir(t->dirfd, comp);
			if (fd < 0) { /* swapped for a link since fstatat: ELOOP */
				e = fd;
				errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
				goto fail;
			}
			close(t->dirfd);
			t->dirfd = fd;
			continue;
		}
		if (!last) {
			e = -ENOTDIR;
			errmsg__set(err, errlen, "cannot write %s: %s is not a directory", path, comp);
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			errmsg__set(err, errlen, "refusing to write %s: it is %s, not a regular file",
				    path, errmsg__file_kind(st.st_mode));
			e = -EINVAL;
			goto fail;
		}
		snprintf(t->name, sizeof(t->name), "%s", comp);
		t->exists = true;
		return 0;
	}
fail:
	if (t->dirfd >= 0)
		close(t->dirfd);
	t->dirfd = -1;
	return e;
}

/* Creates a fresh file in dirfd under a random name (into name). Returns the
 * fd or -errno. */
static int create_temp(int dirfd, const char *base, char *name, size_t len)
{
	for (int i = 0; i < TEMP_TRIES; i++) {
		unsigned long long r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r ^= (unsigned long long)getpid() << 32 | (unsigned)i;
		snprintf(name, len, ".%.200s.%016llx.tmp", base, r);
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				0666);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int outfile__check(const char *path, unsigned flags, char *err, size_t errlen)
{
	struct target t;
	char where[PATH_MAX], tmp[NAME_MAX + 1];
	struct stat d;
	int e = resolve(path, &t, err, errlen);
	if (e)
		return e;
	if (flags & OUTFILE_PRIVATE_DIR) {
		if (fstat(t.dirfd, &d)) {
			e = -errno;
			errmsg__set(err, errlen, "cannot use %s: %s", path, strerror(-e));
		} else if (!dir_private(&d)) {
			errmsg__set(err, errlen, "refusing %s: its directory %s can be changed by "
				    "other users (mode %04o, owner %u); use a private directory "
				    "such as /var/lib/dynoprof", path,
				    dir_name(t.dirfd, where, sizeof(where)),
				    (unsigned)(d.st_mode & 07777), (unsigned)d.st_uid);
			e = -EPERM;
		}
		close(t.dirfd);
		return e;
	}
	int fd = create_temp(t.dirfd, t.name, tmp, sizeof(tmp));
	if (fd < 0) {
		e = fd;
		errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
	} else {
		close(fd);
		unlinkat(t.dirfd, tmp, 0);
	}
	close(t.dirfd);
	return e;
}

struct outfile *outfile__open(const char *path, char *err, size_t errlen)
{
	struct outfile *o = calloc(1, sizeof(*o));
	int e;
	if (!o) {
		errmsg__set(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	snprintf(o->path, sizeof(o->path), "%s", path);
	o->t.dirfd = -1;
	if (!strcmp(path, "-")) {
		o->f = stdout;
		return o;
	}
	e = resolve(path, &o->t, err, errlen);
	if (e)
		goto fail;
	int fd = create_temp(o->t.dirfd, o->t.name, o->tmp, sizeof(o->tmp));
	if (fd < 0) {
		e = fd;
		o->tmp[0] = '\0';
		errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
		goto fail;
	}
	o->f = fdopen(fd, "w");
	if (!o->f) {
		e = -errno;
		close(fd);
		errmsg__set(err, errlen, "cannot write %s: %s", path, strerror(-e));
		goto fail;
	}
	return o;
fail:
	outfile__abort(o);
	errno = -e;
	return NULL;
}

FILE *outfile__stream(struct outfile *o)
{
	return o->f;
}

int outfile__commit(struct outfile *o, char *err, size_t errlen)
{
	int e = 0;
	if (o->f == stdout) {
		if (fflush(stdout))
			e = -errno;
		if (e)
			errmsg__set(err, errlen, "writing to standard output failed: %s",
				    strerror(-e));
		free(o);
		return e;
	}
	if (fflush(o->f) || fsync(fileno(o->f)))
		e = -errno;
	if (fclose(o->f) && !e)
		e = -errno;
	o->f = NULL;
	if (!e && renameat(o->t.dirfd, o->tmp, o->t.dirfd, o->t.name))
		e = -errno;
	if (e) {
		errmsg__set(err, errlen, "writing %s failed: %s", o->path, strerror(-e));
		outfile__abort(o);
		return e;
	}
	o->tmp[0] = '\0';
	outfile__abort(o);
	return 0;
}

void outfile__abort(struct outfile *o)
{
	if (!o)
		return;
	if (o->f && o->f != stdout)
		fclose(o->f);
	if (o->t.dirfd >= 0) {
		if (o->tmp[0])
			unlinkat(o->t.dirfd, o->tmp, 0);
		close(o->t.dirfd);
	}
	free(o);
}
