// SPDX-License-Identifier: MIT
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct hashmap_slot {
	void *key;       /* owned copy of the key; NULL marks an empty slot */
	size_t key_len;  /* length of key in bytes */
	uint64_t hash;   /* hash_bytes(key) cached to avoid rehashing on growth */
	void *value;     /* caller's value */
};

struct hashmap {
	struct hashmap_slot *slots; /* capacity entries, power of two */
	size_t capacity;            /* number of slots; 0 until the first put */
	size_t size;                /* live entries */
};

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed)
{
	/* FNV-1a with a final avalanche (splitmix64) so linear probing spreads well. */
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

struct hashmap *hashmap__new(void)
{
	return calloc(1, sizeof(struct hashmap));
}

void hashmap__free(struct hashmap *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->capacity; i++)
		free(map->slots[i].key);
	free(map->slots);
	free(map);
}

size_t hashmap__size(const struct hashmap *map)
{
	return map->size;
}

static size_t find_slot(const struct hashmap *map, const void *key, size_t key_len,
			uint64_t hash)
{
	size_t mask = map->capacity - 1;
	size_t i = hash & mask;
	for (;;) {
		const struct hashmap_slot *s = &map->slots[i];
		if (!s->key)
			return i;
		if (s->hash == hash && s->key_len == key_len &&
		    memcmp(s->key, key, key_len) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

static int grow(struct hashmap *map)
{
	size_t new_cap = map->capacity ? map->capacity * 2 : 16;
	struct hashmap_slot *new_slots = calloc(new_cap, sizeof(*new_slots));
	if (!new_slots)
		return -ENOMEM;
	struct hashmap old = *map;
	map->slots = new_slots;
	map->capacity = new_cap;
	for (size_t i = 0; i < old.capacity; i++) {
		struct hashmap_slot *s = &old.slots[i];
		if (!s->key)
			continue;
		map->slots[find_slot(map, s->key, s->key_len, s->hash)] = *s;
	}
	free(old.slots);
	return 0;
}

void *hashmap__get(const struct hashmap *map, const void *key, size_t key_len)
{
	if (!map->capacity)
		return NULL;
	uint64_t h = hash_bytes(key, key_len, 0);
	const struct hashmap_slot *s = &map->slots[find_slot(map, key, key_len, h)];
	return s->key ? s->value : NULL;
}

int hashmap__put(struct hashmap *map, const void *key, size_t key_len, void *value,
		 void **old_value)
{
	if (old_value)
		*old_value = NULL;
	/* Keep load factor <= 1/2 so probes stay short. */
	if ((map->size + 1) * 2 > map->capacity) {
		int err = grow(map);
		if (err)
			return err;
	}
	uint64_t h = hash_bytes(key, key_len, 0);
	struct hashmap_slot *s = &map->slots[find_slot(map, key, key_len, h)];
	if (s->key) {
		if (old_value)
			*old_value = s->value;
		s->value = value;
		return 0;
	}
	/* key_len 0 still needs a non-NULL marker allocation. */
	void *copy = malloc(key_len ? key_len : 1);
	if (!copy)
		return -ENOMEM;
	if (key_len) /* key may be NULL when key_len is 0 */
		memcpy(copy, key, key_len);
	s->key = copy;
	s->key_len = key_len;
	s->hash = h;
	s->value = value;
	map->size++;
	return 0;
}

void *hashmap__remove(struct hashmap *map, const void *key, size_t key_len)
{
	if (!map->capacity)
		return NULL;
	uint64_t h = hash_bytes(key, key_len, 0);
	size_t mask = map->capacity - 1;
	size_t i = find_slot(map, key, key_len, h);
	struct hashmap_slot *s = &map->slots[i];
	if (!s->key)
		return NULL;
	void *value = s->value;
	free(s->key);
	s->key = NULL;
	map->size--;
	/* Backward-shift deletion: move later entries of the probe run into the hole
	 * so lookups never stop early at it (no tombstones). */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; map->slots[j].key; j = (j + 1) & mask) {
		size_t home = map->slots[j].hash & mask;
		/* Entry j may move into hole when its home is not cyclically in (hole, j]. */
		int in_range = hole <= j ? (home > hole && home <= j)
					 : (home > hole || home <= j);
		if (!in_range) {
			map->slots[hole] = map->slots[j];
			map->slots[j].key = NULL;
			hole = j;
		}
	}
	return value;
}

int hashmap__next(const struct hashmap *map, size_t *cursor, const void **key,
		  size_t *key_len, void **value)
{
	while (*cursor < map->capacity) {
		const struct hashmap_slot *s = &map->slots[(*cursor)++];
		if (!s->key)
			continue;
		if (key)
			*key = s->key;
		if (key_len)
			*key_len = s->key_len;
		if (value)
			*value = s->value;
		return 1;
	}
	return 0;
}
