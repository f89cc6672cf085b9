/* outfile.h - writes a file dynoprof creates (a profile, a diff report, the
 * counts JSON) so that a path can only ever mean "this regular file", even as
 * root on a host with hostile local users.
 *
 * Policy, checked before anything is written:
 *  - "-" is standard output (outfile__open only; the caller decides).
 *  - The target must be a regular file or a name to create one: a directory,
 *    device (/dev/null, /dev/full), FIFO or socket is refused and left as it is.
 *  - The path is walked one component at a time, holding a descriptor on each
 *    directory. A symbolic link anywhere in it is followed only where no other
 *    user could have planted it: in a directory owned by root or by us and not
 *    writable by group or others, or in a sticky directory (/tmp) owned by
 *    root or us when the link itself is owned by root or us. Any other link is
 *    refused with a message naming it (stricter than the kernel's
 *    fs.protected_symlinks, which `sort -o` relies on; `install` instead
 *    replaces a link, which would be as surprising for `-o link`).
 *  - The data goes to a fresh temporary file in the target's directory, opened
 *    O_CREAT|O_EXCL|O_NOFOLLOW under a random name (nothing can be planted at
 *    it), then fsync'ed and renamed over the target name (rename never follows
 *    a link and never writes into an existing file), so a reader or a crash
 *    never sees half a file.
 */
#ifndef DYNOPROF_OUTFILE_H
#define DYNOPROF_OUTFILE_H

#include <stdio.h>

/* outfile__check() flag: the file's directory must be private (owned by root
 * or us, not writable by group or others) - for SQLite, which creates
 * PATH-wal, PATH-shm and PATH-journal there by name. */
#define OUTFILE_PRIVATE_DIR 1u

/* Checks that path can be written under the policy above (and, without
 * OUTFILE_PRIVATE_DIR, that a file can be created in its directory). Returns 0,
 * or -errno with a one-line message in err: -EISDIR, -EINVAL (a device, FIFO
 * or socket), -EPERM (an unsafe link or directory), -ENOENT, -EACCES, ... */
int outfile__check(const char *path, unsigned flags, char *err, size_t errlen);

struct outfile;

/* Starts writing path ("-": standard output). Returns NULL with errno set
 * and a message in err. */
struct outfile *outfile__open(const char *path, char *err, size_t errlen);

/* The stream to write to. */
FILE *outfile__stream(struct outfile *o);

/* Finishes: flushes, syncs and renames the file into place (stdout: flushes).
 * Frees o. Returns 0 or -errno with a message in err; on error the target is
 * as it was. */
int outfile__commit(struct outfile *o, char *err, size_t errlen);

/* Drops what was written (the target stays as it was) and frees o; NULL-safe. */
void outfile__abort(struct outfile *o);

#endif
