/* dynotag_abi.h - the memory layout libdynotag (libdynotag/) shares with the
 * tag reader (bpf/tags.bpf.h) and with dynoprof's userspace.
 *
 * An application sets tags with plain memory writes into these structures; BPF
 * reads them at sample time. Nothing here is a syscall or a trap.
 *
 * - libdynotag.so exports one object, `dynotag_runtime` (struct
 *   dynotag_runtime). dynoprof finds it by ELF symbol in the process's mapped
 *   files, like CPython's _PyRuntime.
 * - Strings (tag keys and values) are interned once into an append-only table:
 *   id N (1-based) names strings[N - 1], whose bytes live in the arena. A
 *   published entry never changes, so userspace may read it later with
 *   process_vm_readv. Id 0 means "no string". When the table or the arena is
 *   full, new strings get DYNOTAG_ID_OVERFLOW (shown as "__overflow__").
 * - Each thread that sets a tag owns one struct dynotag_thread, reached through
 *   the pthread key runtime.tss_key (same glibc TSS layout as CPython's). Only
 *   its thread writes it, under a sequence counter: seq is odd while the thread
 *   writes; a reader that sees an odd seq, or a seq that changed across its
 *   copy, drops the tags of that sample (counted), never mislabels it.
 * - Process-wide tags (commit, service, ...) live in runtime.process, same
 *   format and protocol.
 * - requests[id] counts requests ended for endpoint string id (one increment
 *   per request, no syscall), so CPU per request can be computed; requests
 *   that end without an endpoint count under DYNOTAG_ID_UNRESOLVED.
 * - Whole requests (ABI 2): a thread that opens a request gets a process-wide
 *   request number (never 0) in record.request, before its endpoint is known;
 *   samples carry it. When the endpoint is set and when the request ends, the
 *   library stores (number << 32 | endpoint id) in request_log[number %
 *   request_log_size] with one aligned 8-byte store (endpoint id
 *   DYNOTAG_ID_UNRESOLVED: ended without one; DYNOTAG_ID_NONE: abandoned, no
 *   request after all), so dynoprof can give every sample of the request the
 *   endpoint the request finally got. Several threads of a process may carry
 *   the same number, at once or in turn (a request handed to or shared with
 *   another thread: dynotag_request_join); a request is (pid, number).
 *
 * Fixed-width types and explicit padding only; the _Static_asserts pin it.
 */
#ifndef DYNOPROF_DYNOTAG_ABI_H
#define DYNOPROF_DYNOTAG_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DYNOTAG_MAGIC 0x316761746f6e7964ULL /* the bytes "dynotag1" on x86_64 */
#define DYNOTAG_ABI_VERSION 2
/* The first version whose records carry `request` and whose runtime has the log. */
#define DYNOTAG_ABI_WHOLE_REQUESTS 2

/* Tags per thread record: the endpoint plus 8 custom ones. */
#define DYNOTAG_MAX_TAGS 9
/* Longest key and value, in bytes (longer ones are cut and end in "…"). */
#define DYNOTAG_MAX_KEY_LEN 64
#define DYNOTAG_MAX_VALUE_LEN 256

/* Reserved string ids. */
#define DYNOTAG_ID_NONE 0
#define DYNOTAG_ID_ENDPOINT 1       /* the key "endpoint", interned first */
#define DYNOTAG_ID_OVERFLOW 2       /* "__overflow__": table full */
#define DYNOTAG_ID_UNRESOLVED 3     /* "unresolved": a request that ended with no
				     * endpoint (ABI 2) */

/* Entries of the request log (a power of two). */
#define DYNOTAG_REQUEST_LOG_SIZE 8192

/* One key=value pair, as string ids. */
struct dynotag_pair {
	__u32 key;     /* string id of the key; 0 = empty slot */
	__u32 value;   /* string id of the value */
};

/* A thread's (or the process's) tags. */
struct dynotag_record {
	__u32 seq;     /* odd while being written; changes on every write */
	__u32 count;   /* pairs used in tags[], <= DYNOTAG_MAX_TAGS */
	struct dynotag_pair tags[DYNOTAG_MAX_TAGS]; /* slot 0 is always the endpoint */
	__u32 request; /* threads (ABI 2): the open request's number, 0 when none */
	__u32 pad;     /* zero */
};
_Static_assert(sizeof(struct dynotag_record) == 88, "dynotag_record layout");

/* Where string id N's bytes are: arena + offset, length bytes, no NUL needed. */
struct dynotag_string {
	__u32 offset;  /* byte offset into the arena */
	__u32 length;  /* bytes */
};
_Static_assert(sizeof(struct dynotag_string) == 8, "dynotag_string layout");

/* The exported `dynotag_runtime` object. */
struct dynotag_runtime {
	__u64 magic;            /* DYNOTAG_MAGIC once initialised */
	__u32 abi_version;      /* DYNOTAG_ABI_VERSION */
	__s32 tss_key;          /* pthread key holding the thread's struct
				 * dynotag_record *; -1 until created */
	__u64 strings;          /* address of struct dynotag_string[string_capacity] */
	__u64 arena;            /* address of the string bytes */
	__u64 requests;         /* address of __u64[string_capacity + 1], by endpoint id */
	__u32 string_count;     /* ids 1..string_count are published (store-release) */
	__u32 string_capacity;  /* entries in strings[] */
	__u32 arena_size;       /* bytes in the arena */
	__u32 arena_used;       /* bytes used */
	struct dynotag_record process; /* process-wide tags */
	__u64 request_log;      /* ABI 2: address of __u64[request_log_size], each
				 * (request number << 32 | endpoint id), 0 = empty */
	__u32 request_log_size; /* ABI 2: entries in the log (a power of two) */
	__u32 pad;              /* zero */
};
_Static_assert(sizeof(struct dynotag_runtime) == 160, "dynotag_runtime layout");

#endif
