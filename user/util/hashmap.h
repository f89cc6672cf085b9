/* hashmap.h - byte-string keyed hash map (open addressing, linear probing).
 *
 * Keys are copied into the map; values are opaque pointers owned by the caller.
 * Not thread-safe: one owner at a time. Memory is bounded by the number of live
 * entries (the table is at most 2x oversized; removal shrinks nothing but reuses).
 */
#ifndef DYNOPROF_HASHMAP_H
#define DYNOPROF_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct hashmap;

/* Returns a new empty map, or NULL with errno set. */
struct hashmap *hashmap__new(void);

/* Frees the map and its key copies; values are the caller's. Accepts NULL. */
void hashmap__free(struct hashmap *map);

/* Returns the number of live entries. */
size_t hashmap__size(const struct hashmap *map);

/* Returns the value stored under key, or NULL when absent (store no NULL values
 * if you need to tell "absent" from "NULL"). */
void *hashmap__get(const struct hashmap *map, const void *key, size_t key_len);

/* Stores value under key, replacing any old value (*old_value gets it when
 * old_value is non-NULL, else NULL). Returns 0 or -ENOMEM. */
int hashmap__put(struct hashmap *map, const void *key, size_t key_len, void *value,
		 void **old_value);

/* Removes key; returns its value, or NULL when absent. */
void *hashmap__remove(struct hashmap *map, const void *key, size_t key_len);

/* Iterates: start with *cursor = 0; returns 1 and fills the outputs (any may be
 * NULL) while entries remain, 0 at the end. The map must not change meanwhile
 * (collect keys first to remove several). */
int hashmap__next(const struct hashmap *map, size_t *cursor, const void **key,
		  size_t *key_len, void **value);

/* 64-bit hash of bytes (also used by callers that want a stable digest). */
uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);

#endif
