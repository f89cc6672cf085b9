/* Layer util: plumbing every layer may use (error messages, hash maps, buffers,
 * files, reads of other processes' memory, clocks, capabilities); it knows
 * nothing of profiles, BPF or Python.
 * (Layers and their order: scripts/check-layers.sh.) */
/* errmsg.h - the one-line messages that go with -errno returns: functions
 * that fail take a caller's (buf, len) and write what to do into it. */
#ifndef DYNOPROF_ERRMSG_H
#define DYNOPROF_ERRMSG_H

#include <stddef.h>
#include <sys/types.h>

/* Formats into buf (len bytes, truncated, NUL-terminated); a NULL buf or a
 * zero len writes nothing. */
__attribute__((format(printf, 3, 4)))
void errmsg__set(char *buf, size_t len, const char *fmt, ...);

/* What a file of this type is, for messages that refuse it: "a directory",
 * "a FIFO", ... ("not a regular file" for anything else). */
const char *errmsg__file_kind(mode_t mode);

#endif
