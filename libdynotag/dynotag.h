/* dynotag.h - tag what a thread is doing (HTTP endpoint, key=value pairs) so
 * that dynoprof's samples carry the tags, at the cost of a few memory writes.
 *
 * Link with -ldynotag (libdynotag.so.1). Every call is thread-safe. A thread's
 * tags belong to that thread: they label the samples taken while it runs and
 * only it changes them. Process-wide tags (commit, service, env, ...) label
 * every thread of the process.
 *
 * Cost: after a thread's first call (which allocates its record) and after a
 * string's first use (which interns it under a mutex), no call makes a
 * syscall, takes a lock or allocates: a set is a lock-free hash lookup plus a
 * handful of stores under a sequence counter (dynoprof drops the tags of a
 * sample that races with a write; it never mislabels it).
 *
 * Strings: keys are at most DYNOTAG_MAX_KEY_LEN bytes and values at most
 * DYNOTAG_MAX_VALUE_LEN bytes; longer ones are cut at a UTF-8 character
 * boundary and end in "…" (U+2026). Bytes that are not valid UTF-8 are written
 * as the four characters \xNN. Every distinct string is kept for the life of
 * the process in a table of DYNOTAG_STRING_CAPACITY strings and a
 * DYNOTAG_ARENA_SIZE-byte arena; once either is full, new strings read as
 * "__overflow__" (existing ones keep working). Do not use unbounded values
 * (request ids, user ids, raw URLs with ids in them) as tags.
 *
 * Limits: one endpoint plus DYNOTAG_MAX_CUSTOM_TAGS custom tags per thread
 * (and per process); setting a further key fails with -ENOSPC and changes
 * nothing.
 *
 * Errors: functions returning int return 0 on success or a negative errno:
 * -EINVAL (NULL or empty key, NULL value, unknown string id), -ENOSPC (no
 * free tag slot), -ENOENT (tag not set, dynotag_get_ids only), -ENOMEM (the
 * thread's record could not be allocated), -EAGAIN (the library could not
 * create its pthread key at load time: tags are unavailable).
 *
 * The memory layout dynoprof reads lives in bpf/dynotag_abi.h (exported object
 * `dynotag_runtime`); this header is the programming interface only.
 */
#ifndef DYNOTAG_H
#define DYNOTAG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYNOTAG_VERSION_MAJOR 1
#define DYNOTAG_VERSION_MINOR 2
#define DYNOTAG_VERSION_PATCH 0
/* The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH. */
#define DYNOTAG_VERSION (DYNOTAG_VERSION_MAJOR * 10000 + DYNOTAG_VERSION_MINOR * 100 + \
			 DYNOTAG_VERSION_PATCH)

/* Limits (the same numbers as bpf/dynotag_abi.h, checked at build time). */
#define DYNOTAG_MAX_CUSTOM_TAGS 8      /* per thread and per process, besides the endpoint */
#define DYNOTAG_KEY_MAX_BYTES 64       /* longest stored key */
#define DYNOTAG_VALUE_MAX_BYTES 256    /* longest stored value */
#define DYNOTAG_STRING_CAPACITY 16384  /* distinct strings per process */
#define DYNOTAG_ARENA_SIZE (1u << 20)  /* bytes for all distinct strings */

/* String ids with a fixed meaning. */
#define DYNOTAG_STRING_ID_ENDPOINT 1u  /* the key "endpoint" */
#define DYNOTAG_STRING_ID_OVERFLOW 2u  /* "__overflow__": the table was full */
#define DYNOTAG_STRING_ID_UNRESOLVED 3u /* "unresolved": requests ended with no endpoint */

#if defined(__GNUC__)
#define DYNOTAG_API __attribute__((visibility("default")))
#else
#define DYNOTAG_API
#endif

/* The library's version, DYNOTAG_VERSION of the build that is loaded (compare
 * with the DYNOTAG_VERSION you compiled against). */
DYNOTAG_API unsigned int dynotag_version(void);

/* Sets the calling thread's tag key=value, replacing the key's previous value.
 * key "endpoint" is the endpoint (same as dynotag_set_endpoint). Both strings
 * are copied (interned); the caller keeps ownership. Returns 0, -EINVAL (key
 * NULL or "", value NULL), -ENOSPC (key new and DYNOTAG_MAX_CUSTOM_TAGS custom
 * tags already set) or -ENOMEM. */
DYNOTAG_API int dynotag_set(const char *key, const char *value);

/* Removes the calling thread's tag key. Returns 0 (also when it was not set)
 * or -EINVAL (key NULL or ""). */
DYNOTAG_API int dynotag_clear(const char *key);

/* Removes all the calling thread's tags, the endpoint included. Returns 0. */
DYNOTAG_API int dynotag_clear_all(void);

/* Sets the calling thread's endpoint (e.g. "GET /orders/<id>"; use the route
 * pattern, not the raw path). Returns 0, -EINVAL (NULL) or -ENOMEM. */
DYNOTAG_API int dynotag_set_endpoint(const char *endpoint);

/* Whole requests. A request runs from dynotag_request_open (or, when nothing
 * opened one, dynotag_request_begin) to dynotag_request_end, and all the CPU
 * the thread spends in between is credited to the endpoint the request has
 * when it ends, even when that is only known late (after URL resolution):
 * dynoprof re-labels the request's earlier samples. A request that ends with
 * no endpoint counts as "unresolved" (404s and the like). */

/* Opens a request on the calling thread, endpoint not known yet: call it
 * where the server starts handling the request (the outermost WSGI layer, a
 * gunicorn hook). Returns 1 when it opened one (the caller ends it), 0 when a
 * request is open already (an outer layer opened it and ends it), -ENOMEM or
 * -EAGAIN. No syscall, one atomic increment. */
DYNOTAG_API int dynotag_request_open(void);

/* Sets the endpoint of the calling thread's open request (e.g. after URL
 * resolution; called again, the last endpoint wins). With no request open,
 * opens one with that endpoint (a request opened so is ended by the next
 * dynotag_request_begin as well as by dynotag_request_end). Returns 0,
 * -EINVAL (NULL) or -ENOMEM. */
DYNOTAG_API int dynotag_request_begin(const char *endpoint);

/* Ends the calling thread's request: adds one to its endpoint's request
 * counter ("unresolved" when it has none; atomic, so dynoprof can compute CPU
 * per request) and clears the endpoint (custom tags stay). Returns 0. */
DYNOTAG_API int dynotag_request_end(void);

/* Abandons the calling thread's open request: it was no request after all
 * (e.g. a server loop that found no connection waiting). Nothing is counted,
 * the endpoint is cleared, and its CPU counts as outside any request.
 * Returns 0. */
DYNOTAG_API int dynotag_request_abandon(void);

/* Requests shared across threads: a server whose event loop thread accepts
 * and reads a connection before a pool thread handles its request, an async
 * view run on an event loop thread of its own. The thread that opened the
 * request passes dynotag_request_number() to the other thread, which calls
 * dynotag_request_join(number): from then on the CPU of both threads goes
 * to the request, until each either ends it (dynotag_request_end, once: the
 * thread that counts it) or leaves it (dynotag_request_leave). */

/* The number of the calling thread's open request, 0 when it has none. */
DYNOTAG_API uint32_t dynotag_request_number(void);

/* Makes the calling thread carry request `number` (opened by another thread
 * of this process), with its endpoint when it is known already. Returns 1
 * when it joined (the thread then ends or leaves it), 0 when the thread has
 * a request open already (nothing changed), -EINVAL (number 0), -ENOMEM or
 * -EAGAIN. No syscall. */
DYNOTAG_API int dynotag_request_join(uint32_t number);

/* The calling thread stops carrying its open request without ending it
 * (another thread ends it and counts it); its CPU from here on is outside
 * any request. Returns 0. */
DYNOTAG_API int dynotag_request_leave(void);

/* Sets a process-wide tag key=value (e.g. "commit", "service", "env"); samples
 * of every thread carry it. Serialised by a mutex: meant for start-up, not per
 * request. Returns 0, -EINVAL (key NULL or "", value NULL) or -ENOSPC. */
DYNOTAG_API int dynotag_set_process(const char *key, const char *value);

/* Removes a process-wide tag. Returns 0 (also when it was not set) or -EINVAL. */
DYNOTAG_API int dynotag_clear_process(const char *key);

/* Id-based variants for language bindings, which intern each distinct string
 * once, cache its id and then pass integers. */

/* Interns string (NUL-terminated, cut and escaped as described above) and
 * stores its id (>= 1) in *id: DYNOTAG_STRING_ID_OVERFLOW when the table or
 * arena is full. Ids are valid for the life of the process. Returns 0 or
 * -EINVAL (string or id NULL). An empty string is a valid value. */
DYNOTAG_API int dynotag_intern(const char *string, uint32_t *id);

/* Like dynotag_intern for length bytes at string (no NUL needed, NULs kept). */
DYNOTAG_API int dynotag_intern_len(const char *string, uint32_t length, uint32_t *id);

/* Like dynotag_intern_len for a key: cut to DYNOTAG_KEY_MAX_BYTES (values may
 * be longer, so intern keys with this). Returns 0 or -EINVAL (string or id
 * NULL, length 0). */
DYNOTAG_API int dynotag_intern_key_len(const char *string, uint32_t length, uint32_t *id);

/* dynotag_set with interned ids. Returns 0, -EINVAL (an id that
 * dynotag_intern did not return), -ENOSPC or -ENOMEM. */
DYNOTAG_API int dynotag_set_ids(uint32_t key_id, uint32_t value_id);

/* dynotag_clear with an interned key id. Returns 0 or -EINVAL. */
DYNOTAG_API int dynotag_clear_id(uint32_t key_id);

/* The calling thread's value id for key_id in *value_id. Returns 0, -ENOENT
 * (not set) or -EINVAL. */
DYNOTAG_API int dynotag_get_ids(uint32_t key_id, uint32_t *value_id);

/* Sets key_id to value_id on the calling thread (value_id 0 removes the key)
 * and returns the key's previous value id (0 when it was not set), or -EINVAL,
 * -ENOSPC (nothing changed) or -ENOMEM. For scoped tags: exchange on entry,
 * exchange the previous id back on exit. */
DYNOTAG_API int dynotag_exchange_ids(uint32_t key_id, uint32_t value_id);

/* dynotag_request_begin with an interned endpoint id. Returns 0, -EINVAL or
 * -ENOMEM. */
DYNOTAG_API int dynotag_request_begin_id(uint32_t endpoint_id);

/* dynotag_set_process with interned ids. Returns 0, -EINVAL or -ENOSPC. */
DYNOTAG_API int dynotag_set_process_ids(uint32_t key_id, uint32_t value_id);

#ifdef __cplusplus
}
#endif

#endif
