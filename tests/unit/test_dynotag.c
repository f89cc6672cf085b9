/* test_dynotag.c - libdynotag: tag semantics, limits, string normalisation,
 * overflow, thread records coming and going, the seqlock protocol as a sampler
 * sees it, request counters.
 *
 * The library is compiled into this test (it is not part of user/): reads go
 * through dynotag_runtime exactly as dynoprof's readers do (string table and
 * arena by address, the thread record through the pthread key).
 */
#define DYNOTAG_TESTING 1
#include "../../libdynotag/dynotag.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- readers (what dynoprof does) ------------------------------------------- */

/* Copies string id's bytes into out (NUL-terminated; out has room for
 * DYNOTAG_MAX_VALUE_LEN + 1 bytes). Returns out, or "" for an unpublished id. */
static const char *string_of(uint32_t id, char *out)
{
	const struct dynotag_runtime *rt = &dynotag_runtime;
	const struct dynotag_string *strings = (const void *)(uintptr_t)rt->strings;
	const char *arena = (const void *)(uintptr_t)rt->arena;

	out[0] = '\0';
	if (id == 0 || id > __atomic_load_n(&rt->string_count, __ATOMIC_ACQUIRE))
		return out;
	uint32_t len = strings[id - 1].length;
	if (len > DYNOTAG_MAX_VALUE_LEN)
		len = DYNOTAG_MAX_VALUE_LEN;
	memcpy(out, arena + strings[id - 1].offset, len);
	out[len] = '\0';
	return out;
}

/* The calling thread's record as the sampler finds it (via the TSS key). */
static const struct dynotag_record *my_record(void)
{
	return pthread_getspecific((pthread_key_t)dynotag_runtime.tss_key);
}

/* Copies r with the seqlock protocol. Returns true for a consistent copy,
 * false when a write was in progress or happened meanwhile. */
static bool snapshot(const struct dynotag_record *r, struct dynotag_record *copy)
{
	uint32_t seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);

	if (seq & 1)
		return false;
	copy->count = __atomic_load_n(&r->count, __ATOMIC_RELAXED);
	for (int i = 0; i < DYNOTAG_MAX_TAGS; i++) {
		copy->tags[i].key = __atomic_load_n(&r->tags[i].key, __ATOMIC_RELAXED);
		copy->tags[i].value = __atomic_load_n(&r->tags[i].value, __ATOMIC_RELAXED);
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	copy->seq = seq;
	return __atomic_load_n(&r->seq, __ATOMIC_RELAXED) == seq;
}

/* Renders a record as "k=v,k=v" (slot order, empty slots skipped) into out. */
static const char *render(const struct dynotag_record *r, char *out, size_t size)
{
	char k[DYNOTAG_MAX_VALUE_LEN + 1], v[DYNOTAG_MAX_VALUE_LEN + 1];
	size_t used = 0;

	out[0] = '\0';
	if (!r)
		return out;
	for (uint32_t i = 0; i < r->count && i < DYNOTAG_MAX_TAGS; i++) {
		if (!r->tags[i].key)
			continue;
		used += snprintf(out + used, size - used, "%s%s=%s", used ? "," : "",
				 string_of(r->tags[i].key, k), string_of(r->tags[i].value, v));
		if (used >= size)
			break;
	}
	return out;
}

/* The calling thread's tags rendered (a stable buffer per call site). */
#define MY_TAGS(buf) render(my_record(), buf, sizeof(buf))

static uint32_t id_of(const char *s)
{
	uint32_t id = 0;
	assert_int_equal(dynotag_intern(s, &id), 0);
	return id;
}

/* ---- semantics ------------------------------------------------------------------ */

static void test_runtime_header(void **state)
{
	(void)state;
	char s[DYNOTAG_MAX_VALUE_LEN + 1];

	assert_true(dynotag_runtime.magic == DYNOTAG_MAGIC);
	assert_int_equal(dynotag_runtime.abi_version, DYNOTAG_ABI_VERSION);
	assert_true(dynotag_runtime.tss_key >= 0);
	assert_true(dynotag_runtime.tss_key < 32); /* the BPF reader's limit */
	assert_int_equal(dynotag_runtime.string_capacity, 16384);
	assert_int_equal(dynotag_runtime.arena_size, 1 << 20);
	assert_string_equal(string_of(DYNOTAG_ID_ENDPOINT, s), "endpoint");
	assert_string_equal(string_of(DYNOTAG_ID_OVERFLOW, s), "__overflow__");
	assert_string_equal(string_of(DYNOTAG_ID_UNRESOLVED, s), "unresolved");
	assert_int_equal(dynotag_runtime.request_log_size, DYNOTAG_REQUEST_LOG_SIZE);
	assert_true(dynotag_runtime.request_log == (uint64_t)(uintptr_t)request_log);
	assert_int_equal(dynotag_version(), 10200);
}

static void test_set_and_clear(void **state)
{
	(void)state;
	char buf[1024];
	uint32_t value = 0;

	assert_int_equal(dynotag_set_endpoint("GET /orders/<id>"), 0);
	assert_int_equal(dynotag_set("tenant", "acme"), 0);
	assert_int_equal(dynotag_set("region", "eu"), 0);
	assert_string_equal(MY_TAGS(buf), "endpoint=GET /orders/<id>,tenant=acme,region=eu");

	assert_int_equal(dynotag_set("tenant", "globex"), 0);
	assert_string_equal(MY_TAGS(buf), "endpoint=GET /orders/<id>,tenant=globex,region=eu");
	assert_int_equal(dynotag_get_ids(id_of("tenant"), &value), 0);
	assert_int_equal(value, id_of("globex"));

	assert_int_equal(dynotag_clear("tenant"), 0);
	assert_string_equal(MY_TAGS(buf), "endpoint=GET /orders/<id>,region=eu");
	assert_int_equal(dynotag_get_ids(id_of("tenant"), &value), -ENOENT);
	assert_int_equal(dynotag_clear("never-set"), 0);

	assert_int_equal(dynotag_request_end(), 0);
	assert_string_equal(MY_TAGS(buf), "region=eu");
	assert_int_equal(dynotag_set("endpoint", "via set"), 0);
	assert_string_equal(MY_TAGS(buf), "endpoint=via set,region=eu");

	assert_int_equal(dynotag_clear_all(), 0);
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(my_record()->count, 0);
	assert_int_equal(my_record()->seq % 2, 0);

	/* Empty values are values; empty or NULL keys are errors. */
	assert_int_equal(dynotag_set("empty", ""), 0);
	assert_string_equal(MY_TAGS(buf), "empty=");
	assert_int_equal(dynotag_set("", "x"), -EINVAL);
	assert_int_equal(dynotag_set(NULL, "x"), -EINVAL);
	assert_int_equal(dynotag_set("k", NULL), -EINVAL);
	assert_int_equal(dynotag_clear(""), -EINVAL);
	assert_int_equal(dynotag_set_endpoint(NULL), -EINVAL);
	assert_int_equal(dynotag_set_ids(0, 1), -EINVAL);
	assert_int_equal(dynotag_set_ids(1, dynotag_runtime.string_count + 1), -EINVAL);
	assert_int_equal(dynotag_clear_all(), 0);
}

/* Scoped tags: exchange on entry, exchange the previous value back on exit. */
static void test_exchange_ids(void **state)
{
	(void)state;
	char buf[1024];
	uint32_t key = id_of("scope"), outer = id_of("outer"), inner = id_of("inner");

	assert_int_equal(dynotag_exchange_ids(key, outer), 0);
	int previous = dynotag_exchange_ids(key, inner);
	assert_int_equal(previous, outer);
	assert_string_equal(MY_TAGS(buf), "scope=inner");
	assert_int_equal(dynotag_exchange_ids(key, (uint32_t)previous), inner);
	assert_string_equal(MY_TAGS(buf), "scope=outer");
	assert_int_equal(dynotag_exchange_ids(key, 0), outer);
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(dynotag_exchange_ids(key, 0), 0);
	assert_int_equal(dynotag_exchange_ids(DYNOTAG_ID_ENDPOINT, inner), 0);
	assert_int_equal(dynotag_exchange_ids(DYNOTAG_ID_ENDPOINT, 0), inner);
	assert_int_equal(dynotag_exchange_ids(0, inner), -EINVAL);
	assert_int_equal(dynotag_exchange_ids(key, 999999), -EINVAL);
}

static void test_slot_limit(void **state)
{
	(void)state;
	char key[16], buf[1024];

	for (int i = 1; i <= DYNOTAG_MAX_CUSTOM_TAGS; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(dynotag_set(key, "v"), 0);
	}
	assert_int_equal(dynotag_set("k9", "v"), -ENOSPC);
	assert_int_equal(dynotag_exchange_ids(id_of("k9"), id_of("v")), -ENOSPC);
	/* Replacing a value and the endpoint still work when full. */
	assert_int_equal(dynotag_set("k8", "w"), 0);
	assert_int_equal(dynotag_set_endpoint("/full"), 0);
	assert_string_equal(MY_TAGS(buf),
			    "endpoint=/full,k1=v,k2=v,k3=v,k4=v,k5=v,k6=v,k7=v,k8=w");
	/* A freed slot is reusable. */
	assert_int_equal(dynotag_clear("k2"), 0);
	assert_int_equal(dynotag_set("k9", "v"), 0);
	assert_string_equal(MY_TAGS(buf),
			    "endpoint=/full,k1=v,k8=w,k3=v,k4=v,k5=v,k6=v,k7=v,k9=v");
	assert_int_equal(dynotag_clear_all(), 0);
}

static void test_process_tags(void **state)
{
	(void)state;
	char buf[1024];

	assert_int_equal(dynotag_set_process("service", "checkout"), 0);
	assert_int_equal(dynotag_set_process("commit", "0123abcd"), 0);
	assert_string_equal(render(&dynotag_runtime.process, buf, sizeof(buf)),
			    "service=checkout,commit=0123abcd");
	assert_int_equal(dynotag_clear_process("service"), 0);
	assert_string_equal(render(&dynotag_runtime.process, buf, sizeof(buf)),
			    "commit=0123abcd");
	assert_int_equal(dynotag_set_process("", "x"), -EINVAL);
	/* Process tags are not the thread's. */
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(dynotag_clear_process("commit"), 0);
	assert_int_equal(dynotag_runtime.process.count, 0);
}

/* ---- strings ------------------------------------------------------------------- */

static void test_long_strings_are_cut(void **state)
{
	(void)state;
	char key[200], value[600], expect[600], buf[2048];

	/* Key: 100 x 'a' -> 61 x 'a' + "…" = 64 bytes. */
	memset(key, 'a', 100);
	key[100] = '\0';
	assert_int_equal(dynotag_set(key, "v"), 0);
	memset(expect, 'a', 61);
	strcpy(expect + 61, "\xe2\x80\xa6=v");
	assert_string_equal(MY_TAGS(buf), expect);
	assert_int_equal(dynotag_clear(key), 0);

	/* Value: 200 x "é" (400 bytes) -> 126 x "é" (252) + "…" = 255 bytes, no
	 * character split. */
	value[0] = '\0';
	for (int i = 0; i < 200; i++)
		strcat(value, "\xc3\xa9");
	assert_int_equal(dynotag_set("v", value), 0);
	strcpy(expect, "v=");
	for (int i = 0; i < 126; i++)
		strcat(expect, "\xc3\xa9");
	strcat(expect, "\xe2\x80\xa6");
	assert_string_equal(MY_TAGS(buf), expect);

	/* Exactly at the limit: kept whole. */
	memset(value, 'x', DYNOTAG_MAX_VALUE_LEN);
	value[DYNOTAG_MAX_VALUE_LEN] = '\0';
	assert_int_equal(dynotag_set("v", value), 0);
	strcpy(expect, "v=");
	strcat(expect, value);
	assert_string_equal(MY_TAGS(buf), expect);
	/* One over: 253 x 'x' + "…". */
	strcat(value, "y");
	assert_int_equal(dynotag_set("v", value), 0);
	memset(expect + 2, 'x', 253);
	strcpy(expect + 2 + 253, "\xe2\x80\xa6");
	assert_string_equal(MY_TAGS(buf), expect);
	assert_int_equal(dynotag_clear_all(), 0);
}

static void test_invalid_utf8_is_escaped(void **state)
{
	(void)state;
	char buf[1024];
	uint32_t a, b;

	assert_int_equal(dynotag_set("bytes", "ab\xff\xc3("), 0);
	assert_string_equal(MY_TAGS(buf), "bytes=ab\\xff\\xc3(");
	/* Overlong "/", a UTF-16 surrogate, beyond U+10FFFF: escaped byte by byte. */
	assert_int_equal(dynotag_set("bytes", "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80"), 0);
	assert_string_equal(MY_TAGS(buf),
			    "bytes=\\xc0\\xaf|\\xed\\xa0\\x80|\\xf4\\x90\\x80\\x80");
	/* Valid multi-byte characters are kept. */
	assert_int_equal(dynotag_set("bytes", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80"), 0);
	assert_string_equal(MY_TAGS(buf), "bytes=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80");
	/* The same bytes intern to the same id; a NUL inside a counted string is
	 * escaped. */
	assert_int_equal(dynotag_intern_len("a\0b", 3, &a), 0);
	assert_int_equal(dynotag_intern("a\\x00b", &b), 0);
	assert_int_equal(a, b);
	/* Escapes count toward the limit and are never split. */
	char value[300];
	memset(value, '\xff', 100);
	value[100] = '\0';
	assert_int_equal(dynotag_set("bytes", value), 0);
	char expect[300] = "bytes=";
	for (int i = 0; i < 63; i++) /* 63 * 4 = 252 bytes + "…" */
		strcat(expect, "\\xff");
	strcat(expect, "\xe2\x80\xa6");
	assert_string_equal(MY_TAGS(buf), expect);
	assert_int_equal(dynotag_clear_all(), 0);
}

static void test_interning_is_stable(void **state)
{
	(void)state;
	uint32_t id = id_of("stable-string");

	for (int i = 0; i < 1000; i++)
		assert_int_equal(id_of("stable-string"), id);
	assert_int_equal(id_of("endpoint"), DYNOTAG_ID_ENDPOINT);
	assert_int_not_equal(id_of("stable-string2"), id);
}

/* Threads interning the same new strings at once agree on every id. */
enum { RACE_THREADS = 4, RACE_STRINGS = 2000 };

struct intern_race {
	int index;                     /* thread number: sets the order of interning */
	uint32_t ids[RACE_STRINGS];    /* id per string number */
};

static void *intern_race_thread(void *arg)
{
	struct intern_race *t = arg;
	char s[32];

	for (int i = 0; i < RACE_STRINGS; i++) {
		int n = t->index % 2 ? RACE_STRINGS - 1 - i : i;
		snprintf(s, sizeof(s), "race-%d", n);
		if (dynotag_intern(s, &t->ids[n]))
			t->ids[n] = 0;
	}
	return NULL;
}

static void test_concurrent_interning_agrees(void **state)
{
	(void)state;
	static struct intern_race threads[RACE_THREADS];
	pthread_t ids[RACE_THREADS];
	char s[32], got[DYNOTAG_MAX_VALUE_LEN + 1];
	uint32_t before = dynotag_runtime.string_count;

	for (int i = 0; i < RACE_THREADS; i++) {
		threads[i].index = i;
		assert_int_equal(pthread_create(&ids[i], NULL, intern_race_thread, &threads[i]), 0);
	}
	for (int i = 0; i < RACE_THREADS; i++)
		assert_int_equal(pthread_join(ids[i], NULL), 0);
	for (int n = 0; n < RACE_STRINGS; n++) {
		snprintf(s, sizeof(s), "race-%d", n);
		for (int i = 1; i < RACE_THREADS; i++)
			assert_int_equal(threads[i].ids[n], threads[0].ids[n]);
		assert_string_equal(string_of(threads[0].ids[n], got), s);
	}
	/* Each string interned once. */
	assert_int_equal(dynotag_runtime.string_count - before, RACE_STRINGS);
}

/* ---- threads ------------------------------------------------------------------- */

struct come_and_go {
	int index;       /* thread number */
	int failures;    /* checks that failed in the thread */
};

static void *come_and_go_thread(void *arg)
{
	struct come_and_go *t = arg;
	char value[32], expect[128], buf[1024];

	snprintf(value, sizeof(value), "t%d", t->index % 7);
	for (int i = 0; i < 200; i++) {
		if (dynotag_request_begin(i % 2 ? "/a" : "/b") || dynotag_set("worker", value) ||
		    dynotag_set("iteration", i % 3 ? "odd" : "even"))
			t->failures++;
		snprintf(expect, sizeof(expect), "endpoint=%s,worker=%s,iteration=%s",
			 i % 2 ? "/a" : "/b", value, i % 3 ? "odd" : "even");
		if (strcmp(MY_TAGS(buf), expect) != 0)
			t->failures++;
		dynotag_request_end();
	}
	return NULL;
}

static void test_threads_come_and_go(void **state)
{
	(void)state;
	enum { WAVES = 4, PER_WAVE = 25 };
	struct come_and_go threads[WAVES * PER_WAVE] = { 0 };
	pthread_t ids[PER_WAVE];
	unsigned long allocated_before = record_pool.allocated;
	unsigned long in_use_before = record_pool.in_use;

	for (int wave = 0; wave < WAVES; wave++) {
		for (int i = 0; i < PER_WAVE; i++) {
			threads[wave * PER_WAVE + i].index = wave * PER_WAVE + i;
			assert_int_equal(pthread_create(&ids[i], NULL, come_and_go_thread,
							&threads[wave * PER_WAVE + i]), 0);
		}
		for (int i = 0; i < PER_WAVE; i++)
			assert_int_equal(pthread_join(ids[i], NULL), 0);
		/* Every exited thread gave its record back. */
		assert_int_equal(record_pool.in_use, in_use_before);
	}
	for (int i = 0; i < WAVES * PER_WAVE; i++)
		assert_int_equal(threads[i].failures, 0);
	/* 100 threads, at most PER_WAVE records: they were recycled. */
	assert_true(record_pool.allocated - allocated_before <= PER_WAVE);
	/* Recycled records come back empty. */
	for (struct record_slot *slot = record_pool.free_list; slot; slot = slot->next_free) {
		assert_int_equal(slot->record.count, 0);
		assert_int_equal(slot->record.seq % 2, 0);
	}
}

struct request_counting {
	uint32_t endpoints[3];  /* ids of the endpoints */
	int requests;           /* per thread */
};

static void *request_counting_thread(void *arg)
{
	struct request_counting *rc = arg;

	for (int i = 0; i < rc->requests; i++) {
		dynotag_request_begin_id(rc->endpoints[i % 3]);
		dynotag_request_end();
	}
	return NULL;
}

static void test_request_counters_are_exact(void **state)
{
	(void)state;
	enum { THREADS = 8, REQUESTS = 30000 };
	struct request_counting rc = { .requests = REQUESTS };
	const uint64_t *requests = (const void *)(uintptr_t)dynotag_runtime.requests;
	pthread_t ids[THREADS];

	rc.endpoints[0] = id_of("/count/a");
	rc.endpoints[1] = id_of("/count/b");
	rc.endpoints[2] = id_of("/count/c");
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&ids[i], NULL, request_counting_thread, &rc), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(ids[i], NULL), 0);
	for (int e = 0; e < 3; e++)
		assert_int_equal(requests[rc.endpoints[e]], THREADS * REQUESTS / 3);
	/* A request counts when it ends, for the endpoint it ends with. */
	assert_int_equal(dynotag_request_begin("/count/a"), 0);
	assert_int_equal(requests[rc.endpoints[0]], THREADS * REQUESTS / 3);
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(requests[rc.endpoints[0]], THREADS * REQUESTS / 3 + 1);
}

/* The log entry of request number n: its endpoint id, or 0 when the log holds
 * another request there. */
static uint32_t logged(uint32_t n)
{
	uint64_t entry = __atomic_load_n(&request_log[n & (DYNOTAG_REQUEST_LOG_SIZE - 1)],
					 __ATOMIC_ACQUIRE);
	return (uint32_t)(entry >> 32) == n ? (uint32_t)entry : 0;
}

/* Whole requests: open gives a number before the endpoint is known, the
 * endpoint set later is logged for that number, end counts the request for
 * its final endpoint (unresolved without one) and clears the number; a nested
 * open leaves the outer request alone; a request opened by request_begin is
 * ended by the next request_begin. */
static void test_whole_requests(void **state)
{
	(void)state;
	const uint64_t *requests = (const void *)(uintptr_t)dynotag_runtime.requests;
	uint32_t a = id_of("/whole/a"), b = id_of("/whole/b");
	uint64_t count_a = requests[a], count_b = requests[b];
	uint64_t unresolved = requests[DYNOTAG_ID_UNRESOLVED];
	char buf[256];

	assert_int_equal(dynotag_request_open(), 1);
	const struct dynotag_record *r = my_record();
	uint32_t n = r->request;
	assert_int_not_equal(n, 0);
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(dynotag_request_open(), 0); /* nested: the outer one stays */
	assert_int_equal(r->request, n);
	assert_int_equal(logged(n), 0);
	assert_int_equal(dynotag_request_begin_id(a), 0);
	assert_int_equal(r->request, n);
	assert_int_equal(logged(n), a);
	assert_int_equal(dynotag_request_begin_id(b), 0); /* renamed: the last one counts */
	assert_int_equal(logged(n), b);
	assert_string_equal(MY_TAGS(buf), "endpoint=/whole/b");
	assert_int_equal(requests[b], count_b);
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(r->request, 0);
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(requests[b], count_b + 1);
	assert_int_equal(requests[a], count_a);

	/* No endpoint: unresolved. */
	assert_int_equal(dynotag_request_open(), 1);
	uint32_t m = r->request;
	assert_true(m != n);
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(logged(m), DYNOTAG_ID_UNRESOLVED);
	assert_int_equal(requests[DYNOTAG_ID_UNRESOLVED], unresolved + 1);

	/* request_begin without open: each begin is a request of its own. */
	assert_int_equal(dynotag_request_begin_id(a), 0);
	uint32_t first = r->request;
	assert_int_equal(dynotag_request_begin_id(a), 0);
	assert_true(r->request != first);
	assert_int_equal(logged(first), a);
	assert_int_equal(requests[a], count_a + 1);
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(requests[a], count_a + 2);
	/* Abandoned: nothing counted, logged with no endpoint, number cleared. */
	assert_int_equal(dynotag_request_open(), 1);
	uint32_t gone = r->request;
	assert_int_equal(dynotag_request_begin_id(b), 0);
	assert_int_equal(dynotag_request_abandon(), 0);
	assert_int_equal(r->request, 0);
	assert_string_equal(MY_TAGS(buf), "");
	assert_int_equal(requests[b], count_b + 1);
	assert_true(__atomic_load_n(&request_log[gone & (DYNOTAG_REQUEST_LOG_SIZE - 1)],
				    __ATOMIC_ACQUIRE) == (uint64_t)gone << 32);
	assert_int_equal(dynotag_request_abandon(), 0); /* nothing open: nothing */
	/* Ending with nothing open changes nothing. */
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(requests[a], count_a + 2);
	assert_int_equal(requests[DYNOTAG_ID_UNRESOLVED], unresolved + 1);
}

/* A request shared with another thread: what the joining thread does there. */
struct joiner {
	uint32_t number;      /* the request to join */
	uint32_t endpoint;    /* an endpoint to name it with, 0: none */
	bool end;             /* end it (count it) rather than leave it */
	int joined;           /* dynotag_request_join's result */
	uint32_t carried;     /* the joiner's record's request number once joined */
	uint32_t endpoint_seen; /* the joiner's endpoint id once joined (0: none) */
	uint32_t after;       /* its request number once it ended or left */
};

static void *joiner_thread(void *arg)
{
	struct joiner *j = arg;

	j->joined = dynotag_request_join(j->number);
	const struct dynotag_record *r = my_record();
	j->carried = r->request;
	j->endpoint_seen = record_get(r, DYNOTAG_ID_ENDPOINT);
	if (j->endpoint)
		dynotag_request_begin_id(j->endpoint);
	if (j->end)
		dynotag_request_end();
	else
		dynotag_request_leave();
	j->after = r->request;
	return NULL;
}

static void join_on_thread(struct joiner *j)
{
	pthread_t id;

	assert_int_equal(pthread_create(&id, NULL, joiner_thread, j), 0);
	assert_int_equal(pthread_join(id, NULL), 0);
}

/* Handing a request to another thread (gthread's event loop to a pool thread)
 * and sharing one with a helper thread (an async view's event loop): the
 * joiner carries the opener's number, with its endpoint when the log has it;
 * leaving counts and logs nothing; one end counts it once. */
static void test_requests_shared_across_threads(void **state)
{
	(void)state;
	const uint64_t *requests = (const void *)(uintptr_t)dynotag_runtime.requests;
	uint32_t a = id_of("/shared/a"), b = id_of("/shared/b");
	uint64_t count_a = requests[a], count_b = requests[b];

	assert_int_equal(dynotag_request_number(), 0);
	assert_int_equal(dynotag_request_join(0), -EINVAL);
	/* Handed off: the pool thread joins, names and ends it; the opener leaves. */
	assert_int_equal(dynotag_request_open(), 1);
	uint32_t n = dynotag_request_number();
	assert_int_not_equal(n, 0);
	struct joiner pool = { .number = n, .endpoint = a, .end = true };
	join_on_thread(&pool);
	assert_int_equal(pool.joined, 1);
	assert_int_equal(pool.carried, n);
	assert_int_equal(pool.endpoint_seen, 0);
	assert_int_equal(pool.after, 0);
	assert_int_equal(logged(n), a);
	assert_int_equal(requests[a], count_a + 1);
	assert_int_equal(dynotag_request_leave(), 0);
	assert_int_equal(dynotag_request_number(), 0);
	assert_int_equal(logged(n), a);               /* leaving logs nothing */
	assert_int_equal(requests[a], count_a + 1);   /* nor counts */
	assert_int_equal(dynotag_request_leave(), 0); /* nothing open: nothing */

	/* Shared: the helper joins a named request (and sees its endpoint), leaves;
	 * the opener ends it. */
	assert_int_equal(dynotag_request_open(), 1);
	uint32_t m = dynotag_request_number();
	assert_int_equal(dynotag_request_begin_id(b), 0);
	struct joiner helper = { .number = m };
	join_on_thread(&helper);
	assert_int_equal(helper.joined, 1);
	assert_int_equal(helper.carried, m);
	assert_int_equal(helper.endpoint_seen, b);
	assert_int_equal(helper.after, 0);
	assert_int_equal(requests[b], count_b);
	assert_int_equal(dynotag_request_number(), m);
	/* A thread with a request open joins nothing. */
	assert_int_equal(dynotag_request_join(m + 1000), 0);
	assert_int_equal(dynotag_request_number(), m);
	assert_int_equal(dynotag_request_end(), 0);
	assert_int_equal(requests[b], count_b + 1);
	assert_int_equal(logged(m), b);
}

/* The writer flips between two generations of tags, one call at a time; every
 * state it ever publishes satisfies torn_reason() == NULL. */
struct flipper {
	uint32_t endpoint[2];                          /* endpoint id per generation */
	uint32_t key[DYNOTAG_MAX_CUSTOM_TAGS];         /* custom key ids */
	uint32_t value[2][DYNOTAG_MAX_CUSTOM_TAGS];    /* value ids per generation */
	const struct dynotag_record *record;           /* the writer's record, once it has one */
	int stop;                                      /* set by the reader when done */
	unsigned long writes;                          /* loop iterations done */
};

static void *flipper_thread(void *arg)
{
	struct flipper *f = arg;

	for (unsigned long n = 0; !__atomic_load_n(&f->stop, __ATOMIC_RELAXED); n++) {
		int g = n & 1;
		dynotag_clear_all();
		dynotag_set_ids(DYNOTAG_ID_ENDPOINT, f->endpoint[g]);
		if (!f->record)
			__atomic_store_n(&f->record, my_record(), __ATOMIC_RELEASE);
		for (int k = 0; k < DYNOTAG_MAX_CUSTOM_TAGS; k++)
			dynotag_set_ids(f->key[k], f->value[g][k]);
		dynotag_clear_id(f->key[2]);               /* compacts: the last pair moves */
		dynotag_set_ids(f->key[2], f->value[g][2]);
		__atomic_store_n(&f->writes, n + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* NULL when snap is a state the writer published, else why not. */
static const char *torn_reason(const struct flipper *f, const struct dynotag_record *snap)
{
	uint32_t seen = 0;
	int g;

	if (snap->count == 0) {
		for (int i = 0; i < DYNOTAG_MAX_TAGS; i++)
			if (snap->tags[i].key)
				return "count 0 with pairs left";
		return NULL;
	}
	if (snap->count > DYNOTAG_MAX_TAGS)
		return "count out of range";
	if (snap->tags[0].key != DYNOTAG_ID_ENDPOINT)
		return "custom tags without the endpoint";
	if (snap->tags[0].value == f->endpoint[0])
		g = 0;
	else if (snap->tags[0].value == f->endpoint[1])
		g = 1;
	else
		return "unknown endpoint";
	for (uint32_t i = 1; i < DYNOTAG_MAX_TAGS; i++) {
		if (i >= snap->count) {
			if (snap->tags[i].key)
				return "pair beyond count";
			continue;
		}
		int k = -1;
		for (int j = 0; j < DYNOTAG_MAX_CUSTOM_TAGS; j++)
			if (snap->tags[i].key == f->key[j])
				k = j;
		if (k < 0)
			return "unknown or empty key inside count";
		if (seen & (1u << k))
			return "duplicate key";
		seen |= 1u << k;
		if (snap->tags[i].value != f->value[g][k])
			return "value from another generation";
	}
	/* Keys set so far are a prefix k0..kj, or all but key[2]. */
	uint32_t all = (1u << DYNOTAG_MAX_CUSTOM_TAGS) - 1;
	if ((seen & (seen + 1)) != 0 && seen != (all & ~(1u << 2)))
		return "keys that were never set together";
	return NULL;
}

static void test_seqlock_reader_never_sees_torn_record(void **state)
{
	(void)state;
	struct flipper f = { 0 };
	char name[64];
	pthread_t writer;
	unsigned long consistent = 0, dropped = 0, torn_without_seq = 0;
	struct timespec start, now;

	f.endpoint[0] = id_of("/flip/0");
	f.endpoint[1] = id_of("/flip/1");
	for (int k = 0; k < DYNOTAG_MAX_CUSTOM_TAGS; k++) {
		snprintf(name, sizeof(name), "flip-key-%d", k);
		f.key[k] = id_of(name);
		for (int g = 0; g < 2; g++) {
			snprintf(name, sizeof(name), "flip-value-%d-%d", g, k);
			f.value[g][k] = id_of(name);
		}
	}
	assert_int_equal(pthread_create(&writer, NULL, flipper_thread, &f), 0);
	while (!__atomic_load_n(&f.record, __ATOMIC_ACQUIRE))
		sched_yield();
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 1000; i++) {
			struct dynotag_record snap;
			if (!snapshot(f.record, &snap)) {
				dropped++;
				/* What a reader ignoring seq would have used. */
				if (torn_reason(&f, &snap))
					torn_without_seq++;
				continue;
			}
			const char *why = torn_reason(&f, &snap);
			if (why)
				fail_msg("torn record accepted (%s), count %u seq %u", why,
					 snap.count, snap.seq);
			consistent++;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
		 700000000L);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_join(writer, NULL), 0);
	print_message("seqlock: %lu consistent snapshots, %lu dropped (%lu of them torn), "
		      "%lu writer loops\n", consistent, dropped, torn_without_seq, f.writes);
	assert_true(consistent > 1000);
	assert_true(f.writes > 1000);
}

/* Records owned by live threads (the pool's count, read under its mutex). */
static unsigned long records_in_use(void)
{
	pthread_mutex_lock(&record_pool.mutex);
	unsigned long n = record_pool.in_use;
	pthread_mutex_unlock(&record_pool.mutex);
	return n;
}

/* fork() while another thread owns a record: the child is not deadlocked and
 * only the forking thread's record stays in use. */
static void *holder_thread(void *arg)
{
	int *go = arg;
	dynotag_set("holder", "yes");
	while (!__atomic_load_n(go, __ATOMIC_ACQUIRE))
		dynotag_set("holder", "busy");
	return NULL;
}

static void test_fork_child_reclaims_records(void **state)
{
	(void)state;
	int go = 0, status = 0;
	pthread_t holder;

	assert_int_equal(dynotag_set("parent", "1"), 0);
	assert_int_equal(pthread_create(&holder, NULL, holder_thread, &go), 0);
	while (records_in_use() < 2)
		sched_yield();
	unsigned long in_use_parent = records_in_use();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char buf[256];
		int ok = record_pool.in_use == 1 && dynotag_set("child", "new-string-in-child") == 0 &&
			 strcmp(MY_TAGS(buf), "parent=1,child=new-string-in-child") == 0;
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(records_in_use(), in_use_parent);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(holder, NULL), 0);
	assert_int_equal(dynotag_clear_all(), 0);
}

/* ---- overflow (runs last: it fills the table, then resets it) -------------------- */

static void test_string_table_overflow(void **state)
{
	(void)state;
	char s[DYNOTAG_MAX_VALUE_LEN + 1], buf[1024];
	uint32_t id, first = id_of("overflow-0");

	/* Table full: short strings until every id is used. */
	for (uint32_t i = 1; dynotag_runtime.string_count < DYNOTAG_STRING_CAPACITY; i++) {
		snprintf(s, sizeof(s), "overflow-%u", i);
		assert_int_not_equal(id_of(s), DYNOTAG_ID_OVERFLOW);
	}
	assert_int_equal(dynotag_intern("one-too-many", &id), 0);
	assert_int_equal(id, DYNOTAG_ID_OVERFLOW);
	/* Known strings still resolve. */
	assert_int_equal(id_of("overflow-0"), first);
	assert_int_equal(dynotag_set("fresh-key", "fresh-value"), 0);
	assert_string_equal(MY_TAGS(buf), "__overflow__=__overflow__");
	assert_int_equal(dynotag_clear_all(), 0);

	/* Arena full: long strings until the arena has no room. */
	strings_reset_for_testing();
	memset(s, 'L', DYNOTAG_MAX_VALUE_LEN);
	s[DYNOTAG_MAX_VALUE_LEN] = '\0';
	uint32_t interned = 0;
	for (;; interned++) {
		snprintf(s, 12, "%011u", interned);
		s[11] = 'L';
		if (id_of(s) == DYNOTAG_ID_OVERFLOW)
			break;
	}
	assert_int_equal(interned, (DYNOTAG_ARENA_SIZE - 8 - 12) / DYNOTAG_MAX_VALUE_LEN);
	assert_true(dynotag_runtime.string_count < DYNOTAG_STRING_CAPACITY);
	assert_true(dynotag_runtime.arena_used <= DYNOTAG_ARENA_SIZE);
	/* A string that still fits is interned. */
	assert_int_not_equal(id_of("tiny"), DYNOTAG_ID_OVERFLOW);
	strings_reset_for_testing();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_header),
		cmocka_unit_test(test_set_and_clear),
		cmocka_unit_test(test_exchange_ids),
		cmocka_unit_test(test_slot_limit),
		cmocka_unit_test(test_process_tags),
		cmocka_unit_test(test_long_strings_are_cut),
		cmocka_unit_test(test_invalid_utf8_is_escaped),
		cmocka_unit_test(test_interning_is_stable),
		cmocka_unit_test(test_concurrent_interning_agrees),
		cmocka_unit_test(test_threads_come_and_go),
		cmocka_unit_test(test_request_counters_are_exact),
		cmocka_unit_test(test_whole_requests),
		cmocka_unit_test(test_requests_shared_across_threads),
		cmocka_unit_test(test_seqlock_reader_never_sees_torn_record),
		cmocka_unit_test(test_fork_child_reclaims_records),
		cmocka_unit_test(test_string_table_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
