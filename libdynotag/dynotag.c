/* dynotag.c - libdynotag: per-thread tags written with plain stores under a
 * sequence counter, in the layout of bpf/dynotag_abi.h.
 *
 * Memory (all static, fixed capacity, no allocation after a thread's first
 * call): the string table, its arena and the request counters the ABI
 * exports; a private lookup index from string bytes to id; one record per live
 * thread, recycled when threads exit.
 *
 * Concurrency:
 * - Strings are append-only. A writer (first use of a string) takes
 *   intern_mutex, copies the bytes into the arena, fills strings[id - 1] and
 *   its hash, publishes string_count with a store-release, then the index slot
 *   with a store-release. Readers probe the index with load-acquires and never
 *   lock: every id they can see names a fully written entry.
 * - A thread record is written only by its thread (the process record only
 *   under process_mutex): seq becomes odd, a release fence, the pairs and
 *   count change (relaxed atomic stores), then seq becomes even with a
 *   store-release. On x86 (TSO) these are plain moves kept in order by the
 *   compiler barriers; a sampler interrupting the thread sees either an odd
 *   seq or a complete record.
 * - Request counters are relaxed atomic increments.
 * - fork(): the mutexes are held across fork (pthread_atfork) so the child
 *   never inherits one locked; in the child, the records of the threads that
 *   did not survive the fork are recycled.
 */
#include "dynotag.h"
#include "../bpf/dynotag_abi.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(DYNOTAG_MAX_CUSTOM_TAGS + 1 == DYNOTAG_MAX_TAGS, "tag slots");
_Static_assert(DYNOTAG_KEY_MAX_BYTES == DYNOTAG_MAX_KEY_LEN, "key limit");
_Static_assert(DYNOTAG_VALUE_MAX_BYTES == DYNOTAG_MAX_VALUE_LEN, "value limit");
_Static_assert(DYNOTAG_STRING_ID_ENDPOINT == DYNOTAG_ID_ENDPOINT, "endpoint id");
_Static_assert(DYNOTAG_STRING_ID_OVERFLOW == DYNOTAG_ID_OVERFLOW, "overflow id");
_Static_assert(DYNOTAG_STRING_ID_UNRESOLVED == DYNOTAG_ID_UNRESOLVED, "unresolved id");
_Static_assert(DYNOTAG_ARENA_SIZE <= UINT32_MAX, "arena offsets are 32-bit");
_Static_assert(DYNOTAG_STRING_CAPACITY < INT32_MAX, "ids are returned as int");

#define LOCAL __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Lookup index slots: a power of two at least twice the string capacity, so
 * linear probing stays short and always finds an empty slot. */
#define INDEX_SLOTS 32768u
_Static_assert((INDEX_SLOTS & (INDEX_SLOTS - 1)) == 0, "index size is a power of two");
_Static_assert(INDEX_SLOTS >= 2 * DYNOTAG_STRING_CAPACITY, "index load factor <= 1/2");

/* The ellipsis that ends a cut string, U+2026 in UTF-8. */
static const char ELLIPSIS[] = "\xe2\x80\xa6";
#define ELLIPSIS_LEN 3u

/* The object dynoprof finds by symbol; filled by runtime_init(). */
DYNOTAG_API struct dynotag_runtime dynotag_runtime = { .tss_key = -1 };

/* Exported through dynotag_runtime.strings / .arena / .requests. */
static struct dynotag_string string_table[DYNOTAG_STRING_CAPACITY];
static char string_arena[DYNOTAG_ARENA_SIZE];
static uint64_t request_counts[DYNOTAG_STRING_CAPACITY + 1];
static uint64_t request_log[DYNOTAG_REQUEST_LOG_SIZE];
_Static_assert((DYNOTAG_REQUEST_LOG_SIZE & (DYNOTAG_REQUEST_LOG_SIZE - 1)) == 0,
	       "the request log's size is a power of two");

/* The last request number handed out (process-wide, relaxed atomic). */
static uint32_t request_numbers;

/* Private: the hash of each string (by id - 1) and the index from hash slot to
 * id (0 = empty). Written under intern_mutex, read lock-free. */
static uint32_t string_hashes[DYNOTAG_STRING_CAPACITY];
static uint32_t lookup_index[INDEX_SLOTS];

/* Serialises interning (the table, arena and index writers). */
static pthread_mutex_t intern_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Serialises writers of dynotag_runtime.process. */
static pthread_mutex_t process_mutex = PTHREAD_MUTEX_INITIALIZER;

/* A thread record and the pool bookkeeping around it. */
struct record_slot {
	struct dynotag_record record;  /* what the thread's TSS entry points to (first member) */
	struct record_slot *next_free; /* next slot of the free list, when free */
	struct record_slot *next_all;  /* next slot ever allocated (the fork handler walks them) */
	bool in_use;                   /* owned by a live thread */
	bool request_implicit;         /* the open request was opened by request_begin (not
					* request_open): the next request_begin ends it */
};

/* The record pool: slots are never returned to malloc, only recycled, so memory
 * is bounded by the peak number of threads that ever had tags at once. */
static struct {
	pthread_mutex_t mutex;          /* guards every field below */
	struct record_slot *free_list;  /* recycled slots */
	struct record_slot *all;        /* every slot allocated */
	unsigned long allocated;        /* slots allocated (== length of all) */
	unsigned long in_use;           /* slots owned by live threads */
} record_pool = { .mutex = PTHREAD_MUTEX_INITIALIZER };

/* The pthread key (copy of dynotag_runtime.tss_key) and whether it exists. */
static pthread_key_t record_key;
static bool record_key_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
/* Set (release) once runtime_init() has finished. */
static int initialized;

static void runtime_init(void);

static inline void ensure_init(void)
{
	if (unlikely(!__atomic_load_n(&initialized, __ATOMIC_ACQUIRE)))
		pthread_once(&init_once, runtime_init);
}

/* ---- strings ---------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available), 1..4, or 0
 * when s starts an ill-formed one (Unicode table 3-7: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL counts as ill-formed: consumers
 * treat strings as C strings. */
static uint32_t utf8_sequence_length(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	uint32_t len;

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (uint32_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* True when s[0..n) is already in stored form: at most limit bytes of
 * well-formed UTF-8 without NUL. The common case, checked without copying. */
static bool is_stored_form(const unsigned char *s, size_t n, uint32_t limit)
{
	if (n > limit)
		return false;
	for (size_t i = 0; i < n;) {
		if (likely(s[i] >= 0x01 && s[i] <= 0x7f)) {
			i++;
			continue;
		}
		uint32_t len = utf8_sequence_length(s + i, n - i);
		if (!len)
			return false;
		i += len;
	}
	return true;
}

/* Writes the stored form of s[0..n) into out (room for limit bytes) and
 * returns its length: each ill-formed byte becomes "\xNN"; if the result
 * would exceed limit bytes it is cut after the last whole character that
 * leaves room for "…", and "…" is appended. */
static uint32_t to_stored_form(const unsigned char *s, size_t n, uint32_t limit, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t used = 0, cut = 0;

	for (size_t i = 0; i < n;) {
		char unit[4];
		uint32_t unit_len = utf8_sequence_length(s + i, n - i);
		size_t consumed = unit_len;

		if (unit_len) {
			memcpy(unit, s + i, unit_len);
		} else {
			unit[0] = '\\';
			unit[1] = 'x';
			unit[2] = hex[s[i] >> 4];
			unit[3] = hex[s[i] & 0xf];
			unit_len = 4;
			consumed = 1;
		}
		if (used + unit_len > limit) {
			memcpy(out + cut, ELLIPSIS, ELLIPSIS_LEN);
			return cut + ELLIPSIS_LEN;
		}
		memcpy(out + used, unit, unit_len);
		used += unit_len;
		if (used + ELLIPSIS_LEN <= limit)
			cut = used;
		i += consumed;
	}
	return used;
}

/* 32-bit hash of bytes for the lookup index (8 bytes per step, murmur-style
 * finaliser; stored per string, so it only has to be fast and well mixed). */
static uint32_t string_hash(const char *s, uint32_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
		h = (h << 31) | (h >> 33);
	}
	if (i < len) {
		uint64_t w = 0;
		memcpy(&w, s + i, len - i);
		h = (h ^ (w * 0x87c37b91114253d5ULL)) * 0x4cf5ad432745937fULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

/* The id of the stored-form string s[0..len) with hash h, or 0 when it is
 * not interned. Lock-free. */
static uint32_t index_lookup(const char *s, uint32_t len, uint32_t h)
{
	uint32_t slot = h & (INDEX_SLOTS - 1);

	for (uint32_t probes = 0; probes < INDEX_SLOTS; probes++) {
		uint32_t id = __atomic_load_n(&lookup_index[slot], __ATOMIC_ACQUIRE);
		if (!id)
			return 0;
		const struct dynotag_string *str = &string_table[id - 1];
		if (string_hashes[id - 1] == h && str->length == len &&
		    memcmp(string_arena + str->offset, s, len) == 0)
			return id;
		slot = (slot + 1) & (INDEX_SLOTS - 1);
	}
	return 0;
}

/* Appends a new string; intern_mutex held, s not interned. Returns its id or
 * DYNOTAG_ID_OVERFLOW when the table or arena is full. */
static uint32_t string_append_locked(const char *s, uint32_t len, uint32_t h)
{
	uint32_t count = dynotag_runtime.string_count;
	uint32_t used = dynotag_runtime.arena_used;

	if (count >= DYNOTAG_STRING_CAPACITY || len > DYNOTAG_ARENA_SIZE - used)
		return DYNOTAG_ID_OVERFLOW;
	uint32_t id = count + 1;
	memcpy(string_arena + used, s, len);
	string_table[id - 1].offset = used;
	string_table[id - 1].length = len;
	string_hashes[id - 1] = h;
	__atomic_store_n(&dynotag_runtime.arena_used, used + len, __ATOMIC_RELEASE);
	__atomic_store_n(&dynotag_runtime.string_count, id, __ATOMIC_RELEASE);

	uint32_t slot = h & (INDEX_SLOTS - 1);
	while (lookup_index[slot])
		slot = (slot + 1) & (INDEX_SLOTS - 1);
	__atomic_store_n(&lookup_index[slot], id, __ATOMIC_RELEASE);
	return id;
}

/* The id of the stored-form string s[0..len), interning it on first use. */
static uint32_t intern_stored(const char *s, uint32_t len)
{
	uint32_t h = string_hash(s, len);
	uint32_t id = index_lookup(s, len, h);

	if (likely(id))
		return id;
	/* Full table: answer without the mutex (both values only grow). */
	if (__atomic_load_n(&dynotag_runtime.string_count, __ATOMIC_RELAXED) >=
		    DYNOTAG_STRING_CAPACITY ||
	    len > DYNOTAG_ARENA_SIZE - __atomic_load_n(&dynotag_runtime.arena_used, __ATOMIC_RELAXED))
		return DYNOTAG_ID_OVERFLOW;
	pthread_mutex_lock(&intern_mutex);
	id = index_lookup(s, len, h);
	if (!id)
		id = string_append_locked(s, len, h);
	pthread_mutex_unlock(&intern_mutex);
	return id;
}

/* The id of s[0..n) after cutting to limit bytes and escaping. */
static uint32_t intern_bytes(const char *s, size_t n, uint32_t limit)
{
	char stored[DYNOTAG_MAX_VALUE_LEN];

	if (likely(is_stored_form((const unsigned char *)s, n, limit)))
		return intern_stored(s, (uint32_t)n);
	return intern_stored(stored, to_stored_form((const unsigned char *)s, n, limit, stored));
}

/* The id of a non-empty NUL-terminated key; 0 for NULL or "". */
static uint32_t intern_key(const char *key)
{
	if (!key || !key[0])
		return 0;
	return intern_bytes(key, strlen(key), DYNOTAG_MAX_KEY_LEN);
}

/* True when id names a published string. */
static inline bool id_valid(uint32_t id)
{
	return id >= 1 && id <= __atomic_load_n(&dynotag_runtime.string_count, __ATOMIC_ACQUIRE);
}

/* ---- records ---------------------------------------------------------------- */

/* Opens a write: readers that see seq odd, or a seq that changed, drop their
 * copy. Only one writer per record (its thread, or process_mutex holder). */
static inline void record_write_begin(struct dynotag_record *r)
{
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static inline void record_write_end(struct dynotag_record *r)
{
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELEASE);
}

static inline void pair_store(struct dynotag_pair *pair, uint32_t key, uint32_t value)
{
	__atomic_store_n(&pair->key, key, __ATOMIC_RELAXED);
	__atomic_store_n(&pair->value, value, __ATOMIC_RELAXED);
}

/* Sets key=value in r (valid ids). Slot 0 holds the endpoint; custom tags are
 * kept packed in 1..count-1 (count is 0 when nothing is set). Returns 0 or
 * -ENOSPC. Writes nothing when the value is unchanged. */
static int record_set(struct dynotag_record *r, uint32_t key, uint32_t value)
{
	uint32_t count = r->count;

	if (key == DYNOTAG_ID_ENDPOINT) {
		if (r->tags[0].key == key && r->tags[0].value == value)
			return 0;
		record_write_begin(r);
		pair_store(&r->tags[0], key, value);
		if (!count)
			__atomic_store_n(&r->count, 1, __ATOMIC_RELAXED);
		record_write_end(r);
		return 0;
	}
	for (uint32_t i = 1; i < count; i++) {
		if (r->tags[i].key != key)
			continue;
		if (r->tags[i].value == value)
			return 0;
		record_write_begin(r);
		__atomic_store_n(&r->tags[i].value, value, __ATOMIC_RELAXED);
		record_write_end(r);
		return 0;
	}
	if (count >= DYNOTAG_MAX_TAGS)
		return -ENOSPC;
	uint32_t slot = count ? count : 1;
	record_write_begin(r);
	pair_store(&r->tags[slot], key, value);
	__atomic_store_n(&r->count, slot + 1, __ATOMIC_RELAXED);
	record_write_end(r);
	return 0;
}

/* Removes key from r; nothing to do when it is not set. */
static void record_clear(struct dynotag_record *r, uint32_t key)
{
	uint32_t count = r->count;

	if (key == DYNOTAG_ID_ENDPOINT) {
		if (r->tags[0].key != key)
			return;
		record_write_begin(r);
		pair_store(&r->tags[0], 0, 0);
		if (count == 1)
			__atomic_store_n(&r->count, 0, __ATOMIC_RELAXED);
		record_write_end(r);
		return;
	}
	for (uint32_t i = 1; i < count; i++) {
		if (r->tags[i].key != key)
			continue;
		uint32_t last = count - 1;
		record_write_begin(r);
		if (i != last)
			pair_store(&r->tags[i], r->tags[last].key, r->tags[last].value);
		pair_store(&r->tags[last], 0, 0);
		if (last == 1 && r->tags[0].key == 0)
			last = 0;
		__atomic_store_n(&r->count, last, __ATOMIC_RELAXED);
		record_write_end(r);
		return;
	}
}

static void record_clear_all(struct dynotag_record *r)
{
	uint32_t count = r->count;

	if (!count)
		return;
	record_write_begin(r);
	for (uint32_t i = 0; i < count && i < DYNOTAG_MAX_TAGS; i++)
		pair_store(&r->tags[i], 0, 0);
	__atomic_store_n(&r->count, 0, __ATOMIC_RELAXED);
	record_write_end(r);
}

/* The value id of key in r, or 0. */
static uint32_t record_get(const struct dynotag_record *r, uint32_t key)
{
	if (key == DYNOTAG_ID_ENDPOINT)
		return r->tags[0].key == key ? r->tags[0].value : 0;
	for (uint32_t i = 1; i < r->count; i++)
		if (r->tags[i].key == key)
			return r->tags[i].value;
	return 0;
}

/* pthread key destructor: the thread is exiting (its TSS entry is already
 * NULL). Empties the record, under the protocol since a sampler may still hold
 * its address, and recycles it. */
static void record_release(void *data)
{
	struct record_slot *slot = data;

	if (slot->record.request) {
		record_write_begin(&slot->record);
		__atomic_store_n(&slot->record.request, 0, __ATOMIC_RELAXED);
		record_write_end(&slot->record);
	}
	record_clear_all(&slot->record);
	pthread_mutex_lock(&record_pool.mutex);
	slot->in_use = false;
	slot->next_free = record_pool.free_list;
	record_pool.free_list = slot;
	record_pool.in_use--;
	pthread_mutex_unlock(&record_pool.mutex);
}

/* The calling thread's record, or NULL when it has none yet. */
static inline struct dynotag_record *current_record(void)
{
	return record_key_ok ? pthread_getspecific(record_key) : NULL;
}

/* The calling thread's record, allocated (or recycled) on first use. Returns
 * 0 and *out, -ENOMEM or -EAGAIN (no pthread key). */
static int current_record_or_create(struct dynotag_record **out)
{
	struct dynotag_record *r = current_record();

	if (likely(r)) {
		*out = r;
		return 0;
	}
	if (!record_key_ok)
		return -EAGAIN;
	pthread_mutex_lock(&record_pool.mutex);
	struct record_slot *slot = record_pool.free_list;
	if (slot) {
		record_pool.free_list = slot->next_free;
	} else {
		slot = aligned_alloc(64, (sizeof(*slot) + 63) & ~(size_t)63);
		if (!slot) {
			pthread_mutex_unlock(&record_pool.mutex);
			return -ENOMEM;
		}
		memset(slot, 0, sizeof(*slot));
		slot->next_all = record_pool.all;
		record_pool.all = slot;
		record_pool.allocated++;
	}
	slot->in_use = true;
	slot->next_free = NULL;
	record_pool.in_use++;
	pthread_mutex_unlock(&record_pool.mutex);
	if (pthread_setspecific(record_key, slot)) {
		record_release(slot);
		return -ENOMEM;
	}
	*out = &slot->record;
	return 0;
}

/* ---- whole requests ------------------------------------------------------------- */

/* A new request number: process-wide, never 0. */
static uint32_t next_request_number(void)
{
	uint32_t n = __atomic_add_fetch(&request_numbers, 1, __ATOMIC_RELAXED);

	return n ? n : __atomic_add_fetch(&request_numbers, 1, __ATOMIC_RELAXED);
}

/* Publishes that request `number` has endpoint id (DYNOTAG_ID_UNRESOLVED:
 * ended without one): one aligned 8-byte store, so a reader sees the old
 * entry or the new one. */
static inline void request_log_put(uint32_t number, uint32_t endpoint)
{
	__atomic_store_n(&request_log[number & (DYNOTAG_REQUEST_LOG_SIZE - 1)],
			 (uint64_t)number << 32 | endpoint, __ATOMIC_RELEASE);
}

/* Clears r's request number and its endpoint pair in one record write, so a
 * sample sees both or neither. */
static void record_clear_request(struct dynotag_record *r)
{
	record_write_begin(r);
	__atomic_store_n(&r->request, 0, __ATOMIC_RELAXED);
	if (r->tags[0].key == DYNOTAG_ID_ENDPOINT) {
		pair_store(&r->tags[0], 0, 0);
		if (r->count == 1)
			__atomic_store_n(&r->count, 0, __ATOMIC_RELAXED);
	}
	record_write_end(r);
}

/* Ends request `number` open on r: logs it under endpoint (DYNOTAG_ID_NONE:
 * abandoned), then clears the number and the endpoint pair in one record
 * write, so no sample sees the number without its endpoint's fate logged. */
static void request_log_and_clear(struct dynotag_record *r, uint32_t number,
				  uint32_t endpoint)
{
	request_log_put(number, endpoint);
	record_clear_request(r);
}

/* Publishes request `number` on r, with its endpoint (0: not known yet) in
 * the same write, so a sample never sees the number without the endpoint
 * that is already known. */
static void record_store_request(struct dynotag_record *r, uint32_t number, uint32_t endpoint)
{
	record_write_begin(r);
	__atomic_store_n(&r->request, number, __ATOMIC_RELAXED);
	if (endpoint) {
		pair_store(&r->tags[0], DYNOTAG_ID_ENDPOINT, endpoint);
		if (!r->count)
			__atomic_store_n(&r->count, 1, __ATOMIC_RELAXED);
	}
	record_write_end(r);
}

/* Opens a request on r (none open): a new number, the endpoint (0: not known
 * yet) in the same write. */
static void request_open_write(struct record_slot *slot, uint32_t endpoint, bool implicit)
{
	struct dynotag_record *r = &slot->record;
	uint32_t number = next_request_number();

	record_store_request(r, number, endpoint);
	slot->request_implicit = implicit;
	if (endpoint)
		request_log_put(number, endpoint);
}

/* Ends r's open request, if any: counts it for its endpoint (unresolved when
 * it has none), logs that, and clears the endpoint and the number in one
 * write. Without an open request, only clears the endpoint. */
static void request_close(struct dynotag_record *r)
{
	uint32_t number = r->request;

	if (number) {
		uint32_t endpoint = record_get(r, DYNOTAG_ID_ENDPOINT);
		if (!endpoint)
			endpoint = DYNOTAG_ID_UNRESOLVED;
		__atomic_fetch_add(&request_counts[endpoint], 1, __ATOMIC_RELAXED);
		request_log_and_clear(r, number, endpoint);
		return;
	}
	record_clear(r, DYNOTAG_ID_ENDPOINT);
}

/* ---- initialisation and fork ---------------------------------------------------- */

static void fork_prepare(void)
{
	pthread_mutex_lock(&intern_mutex);
	pthread_mutex_lock(&process_mutex);
	pthread_mutex_lock(&record_pool.mutex);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&record_pool.mutex);
	pthread_mutex_unlock(&process_mutex);
	pthread_mutex_unlock(&intern_mutex);
}

/* Only the forking thread exists in the child: recycle every other record. */
static void fork_child(void)
{
	struct dynotag_record *mine = current_record();

	for (struct record_slot *slot = record_pool.all; slot; slot = slot->next_all) {
		if (!slot->in_use || &slot->record == mine)
			continue;
		/* Its thread may have been mid-write: close the write. */
		if (slot->record.seq & 1)
			slot->record.seq++;
		slot->record.request = 0;
		record_clear_all(&slot->record);
		slot->in_use = false;
		slot->next_free = record_pool.free_list;
		record_pool.free_list = slot;
		record_pool.in_use--;
	}
	fork_parent();
}

static void runtime_init(void)
{
	struct dynotag_runtime *rt = &dynotag_runtime;

	rt->abi_version = DYNOTAG_ABI_VERSION;
	rt->strings = (uint64_t)(uintptr_t)string_table;
	rt->arena = (uint64_t)(uintptr_t)string_arena;
	rt->requests = (uint64_t)(uintptr_t)request_counts;
	rt->request_log = (uint64_t)(uintptr_t)request_log;
	rt->request_log_size = DYNOTAG_REQUEST_LOG_SIZE;
	rt->string_capacity = DYNOTAG_STRING_CAPACITY;
	rt->arena_size = DYNOTAG_ARENA_SIZE;
	/* Ids 1, 2 and 3 are fixed by the ABI. */
	intern_stored("endpoint", 8);
	intern_stored("__overflow__", 12);
	intern_stored("unresolved", 10);
	if (pthread_key_create(&record_key, record_release) == 0) {
		record_key_ok = true;
		rt->tss_key = (int32_t)record_key;
	}
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	__atomic_store_n(&rt->magic, DYNOTAG_MAGIC, __ATOMIC_RELEASE);
	__atomic_store_n(&initialized, 1, __ATOMIC_RELEASE);
}

/* Runs at load time so the pthread key is created early (a low key number:
 * dynoprof's BPF reads the first 32 keys only). */
__attribute__((constructor)) static void dynotag_constructor(void)
{
	ensure_init();
}

#ifdef DYNOTAG_TESTING
/* Tests only, with no other thread using the library: forgets every string
 * but the two reserved ones and zeroes the request counters. */
static void strings_reset_for_testing(void)
{
	pthread_mutex_lock(&intern_mutex);
	memset(lookup_index, 0, sizeof(lookup_index));
	memset(string_table, 0, sizeof(string_table));
	memset(string_hashes, 0, sizeof(string_hashes));
	memset(request_counts, 0, sizeof(request_counts));
	memset(request_log, 0, sizeof(request_log));
	dynotag_runtime.string_count = 0;
	dynotag_runtime.arena_used = 0;
	string_append_locked("endpoint", 8, string_hash("endpoint", 8));
	string_append_locked("__overflow__", 12, string_hash("__overflow__", 12));
	string_append_locked("unresolved", 10, string_hash("unresolved", 10));
	pthread_mutex_unlock(&intern_mutex);
}
#endif

/* ---- public API ------------------------------------------------------------------ */

unsigned int dynotag_version(void)
{
	return DYNOTAG_VERSION;
}

int dynotag_intern_len(const char *string, uint32_t length, uint32_t *id)
{
	if (!string || !id)
		return -EINVAL;
	ensure_init();
	*id = intern_bytes(string, length, DYNOTAG_MAX_VALUE_LEN);
	return 0;
}

int dynotag_intern_key_len(const char *string, uint32_t length, uint32_t *id)
{
	if (!string || !id || !length)
		return -EINVAL;
	ensure_init();
	*id = intern_bytes(string, length, DYNOTAG_MAX_KEY_LEN);
	return 0;
}

int dynotag_intern(const char *string, uint32_t *id)
{
	if (!string || !id)
		return -EINVAL;
	return dynotag_intern_len(string, (uint32_t)strnlen(string, UINT32_MAX), id);
}

int dynotag_set_ids(uint32_t key_id, uint32_t value_id)
{
	struct dynotag_record *r;
	int err;

	ensure_init();
	if (!id_valid(key_id) || !id_valid(value_id))
		return -EINVAL;
	err = current_record_or_create(&r);
	if (err)
		return err;
	return record_set(r, key_id, value_id);
}

int dynotag_set(const char *key, const char *value)
{
	ensure_init();
	uint32_t key_id = intern_key(key);
	if (!key_id || !value)
		return -EINVAL;
	return dynotag_set_ids(key_id, intern_bytes(value, strlen(value), DYNOTAG_MAX_VALUE_LEN));
}

int dynotag_clear_id(uint32_t key_id)
{
	ensure_init();
	if (!id_valid(key_id))
		return -EINVAL;
	struct dynotag_record *r = current_record();
	if (r)
		record_clear(r, key_id);
	return 0;
}

int dynotag_clear(const char *key)
{
	ensure_init();
	uint32_t key_id = intern_key(key);
	if (!key_id)
		return -EINVAL;
	return dynotag_clear_id(key_id);
}

int dynotag_clear_all(void)
{
	ensure_init();
	struct dynotag_record *r = current_record();
	if (r)
		record_clear_all(r);
	return 0;
}

int dynotag_get_ids(uint32_t key_id, uint32_t *value_id)
{
	ensure_init();
	if (!value_id || !id_valid(key_id))
		return -EINVAL;
	struct dynotag_record *r = current_record();
	uint32_t value = r ? record_get(r, key_id) : 0;
	if (!value)
		return -ENOENT;
	*value_id = value;
	return 0;
}

int dynotag_exchange_ids(uint32_t key_id, uint32_t value_id)
{
	struct dynotag_record *r;
	uint32_t previous;
	int err;

	ensure_init();
	if (!id_valid(key_id) || (value_id && !id_valid(value_id)))
		return -EINVAL;
	if (!value_id) {
		r = current_record();
		previous = r ? record_get(r, key_id) : 0;
		if (previous)
			record_clear(r, key_id);
		return (int)previous;
	}
	err = current_record_or_create(&r);
	if (err)
		return err;
	previous = record_get(r, key_id);
	err = record_set(r, key_id, value_id);
	return err ? err : (int)previous;
}

int dynotag_set_endpoint(const char *endpoint)
{
	ensure_init();
	if (!endpoint)
		return -EINVAL;
	return dynotag_set_ids(DYNOTAG_ID_ENDPOINT,
			       intern_bytes(endpoint, strlen(endpoint), DYNOTAG_MAX_VALUE_LEN));
}

int dynotag_request_begin_id(uint32_t endpoint_id)
{
	struct dynotag_record *r;
	int err;

	ensure_init();
	if (!id_valid(endpoint_id))
		return -EINVAL;
	err = current_record_or_create(&r);
	if (err)
		return err;
	struct record_slot *slot = (struct record_slot *)r;
	/* A request opened by an earlier request_begin (never ended) is over. */
	if (r->request && slot->request_implicit)
		request_close(r);
	if (!r->request) {
		request_open_write(slot, endpoint_id, true);
		return 0;
	}
	/* The open request's endpoint, known now (or renamed: the last one counts). */
	err = record_set(r, DYNOTAG_ID_ENDPOINT, endpoint_id);
	if (!err)
		request_log_put(r->request, endpoint_id);
	return err;
}

int dynotag_request_open(void)
{
	struct dynotag_record *r;
	int err;

	ensure_init();
	err = current_record_or_create(&r);
	if (err)
		return err;
	if (r->request)
		return 0;
	request_open_write((struct record_slot *)r, 0, false);
	return 1;
}

int dynotag_request_begin(const char *endpoint)
{
	ensure_init();
	if (!endpoint)
		return -EINVAL;
	return dynotag_request_begin_id(
		intern_bytes(endpoint, strlen(endpoint), DYNOTAG_MAX_VALUE_LEN));
}

int dynotag_request_abandon(void)
{
	ensure_init();
	struct dynotag_record *r = current_record();
	uint32_t number = r ? r->request : 0;

	if (!number)
		return 0;
	/* Logged with no endpoint: its samples are CPU outside any request. */
	request_log_and_clear(r, number, DYNOTAG_ID_NONE);
	return 0;
}

uint32_t dynotag_request_number(void)
{
	ensure_init();
	struct dynotag_record *r = current_record();

	return r ? r->request : 0;
}

int dynotag_request_join(uint32_t number)
{
	struct dynotag_record *r;
	int err;

	ensure_init();
	if (!number)
		return -EINVAL;
	err = current_record_or_create(&r);
	if (err)
		return err;
	if (r->request)
		return 0;
	/* Its endpoint, when the log has it already: the samples then carry it
	 * and need no re-labelling. */
	uint64_t entry = __atomic_load_n(&request_log[number & (DYNOTAG_REQUEST_LOG_SIZE - 1)],
					 __ATOMIC_ACQUIRE);
	uint32_t endpoint = (uint32_t)(entry >> 32) == number ? (uint32_t)entry : 0;
	if (endpoint == DYNOTAG_ID_UNRESOLVED)
		endpoint = 0;
	record_store_request(r, number, endpoint);
	((struct record_slot *)r)->request_implicit = false;
	return 1;
}

int dynotag_request_leave(void)
{
	ensure_init();
	struct dynotag_record *r = current_record();

	if (!r || !r->request)
		return 0;
	record_clear_request(r);
	return 0;
}

int dynotag_request_end(void)
{
	ensure_init();
	struct dynotag_record *r = current_record();
	if (r)
		request_close(r);
	return 0;
}

int dynotag_set_process_ids(uint32_t key_id, uint32_t value_id)
{
	int err;

	ensure_init();
	if (!id_valid(key_id) || !id_valid(value_id))
		return -EINVAL;
	pthread_mutex_lock(&process_mutex);
	err = record_set(&dynotag_runtime.process, key_id, value_id);
	pthread_mutex_unlock(&process_mutex);
	return err;
}

int dynotag_set_process(const char *key, const char *value)
{
	ensure_init();
	uint32_t key_id = intern_key(key);
	if (!key_id || !value)
		return -EINVAL;
	return dynotag_set_process_ids(key_id,
				       intern_bytes(value, strlen(value), DYNOTAG_MAX_VALUE_LEN));
}

int dynotag_clear_process(const char *key)
{
	ensure_init();
	uint32_t key_id = intern_key(key);
	if (!key_id)
		return -EINVAL;
	pthread_mutex_lock(&process_mutex);
	record_clear(&dynotag_runtime.process, key_id);
	pthread_mutex_unlock(&process_mutex);
	return 0;
}
