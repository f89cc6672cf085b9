/* map_path.h - opening the file behind another process's mapping, whatever
 * root the process runs in.
 *
 * /proc/PID/maps prints each path relative to the root of the process that
 * READS it. A process in another mount namespace whose root we cannot see (a
 * container after pivot_root) shows the paths of its own tree: they open
 * through /proc/PID/root. A process chrooted into a directory we can see
 * (`chroot DIR`, `unshare --root DIR`) shows our path of its files
 * (DIR/usr/lib/...): /proc/PID/root + that path would name DIR twice. Both
 * resolve to the same file through map_path__in_root().
 */
#ifndef DYNOPROF_MAP_PATH_H
#define DYNOPROF_MAP_PATH_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "symbolize/proc_maps.h"

/* Writes into out (len bytes) the path as pid sees it: path minus pid's root
 * directory (readlink /proc/PID/root) when that is not "/" and path lies
 * under it, else path unchanged. Returns out. */
const char *map_path__in_root(pid_t pid, const char *path, char *out, size_t len);

/* Finds a path through which the file of mapping m of pid opens, and checks
 * it is the mapped inode: /proc/PID/root/<path as pid sees it>, then (a
 * deleted or replaced file, or a path that does not resolve) the mapping
 * itself, /proc/PID/map_files/START-END (needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE). Fills buf (buflen bytes) and *st. Returns 0 or
 * -errno. */
int map_path__open_path(pid_t pid, const struct proc_map *m, char *buf, size_t buflen,
			struct stat *st);

#endif
