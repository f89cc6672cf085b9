// SPDX-License-Identifier: MIT
/* The agent's history store: windows and groups round trip, overlap queries,
 * group sums and series, retention by age and size, reopen, refusals of
 * files that are not ours or damaged, a locked file, a full disk, corrupt
 * pages, and concurrent readers with a writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "agent/store.h"

#define S_NS 1000000000LL
#define MAX_SEEN 256

struct fixture {
	char dir[64];   /* a fresh temporary directory */
	char path[96];  /* dir/history.db */
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * S_NS + ts.tv_nsec;
}

/* An hour ago, on a whole second: recent enough for the default retention. */
static int64_t base_ns(void)
{
	return (now_ns() / S_NS - 3600) * S_NS;
}

/* Deterministic incompressible bytes for a window's "pprof". */
static void fill_blob(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *suffixes[] = { "", "-wal", "-shm", ".other" };
	char p[128];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/subdir", f->dir);
	rmdir(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store *open_store(const char *path, int64_t max_age_s, int64_t max_bytes)
{
	struct store_opts opts = { .max_age_s = max_age_s, .max_bytes = max_bytes };
	char err[256] = "";
	struct store *s = store__open(path, &opts, err, sizeof(err));

	if (!s)
		fail_msg("store__open: %s", err);
	return s;
}

/* Stores a window [start, start + len_s) with a blob of blob_len seeded by
 * start, and the given groups. */
static int put(struct store *s, int64_t start, int64_t len_s, size_t blob_len,
	       const struct store_group *groups, size_t ngroups)
{
	uint8_t *blob = blob_len ? malloc(blob_len) : NULL;
	struct store_window w = {
		.start_ns = start, .end_ns = start + len_s * S_NS, .samples = 100,
		.pprof_gz = blob, .pprof_len = blob_len, .groups = groups, .ngroups = ngroups,
	};
	int ret;

	if (blob_len) {
		assert_non_null(blob);
		fill_blob(blob, blob_len, (uint64_t)start);
	}
	ret = store__put_window(s, &w);
	free(blob);
	return ret;
}

struct seen_window {
	int64_t start;  /* start_ns */
	int64_t end;    /* end_ns */
	size_t len;     /* blob bytes */
	int intact;     /* the blob is the one put() stored for this start */
};

struct seen {
	struct seen_window w[MAX_SEEN];  /* windows in visit order */
	size_t n;                        /* visited */
	int stop_after;                  /* return 7 after this many (0: never) */
};

static int blob_intact(int64_t start, const void *blob, size_t len)
{
	uint8_t *expect;
	int ok;

	if (!len)
		return blob == NULL;
	expect = malloc(len);
	if (!expect)
		return 0;
	fill_blob(expect, len, (uint64_t)start);
	ok = memcmp(expect, blob, len) == 0;
	free(expect);
	return ok;
}

static int collect_window(void *ctx, int64_t start_ns, int64_t end_ns, const void *pprof_gz,
			  size_t len)
{
	struct seen *seen = ctx;

	if (seen->n < MAX_SEEN) {
		seen->w[seen->n] = (struct seen_window){
			.start = start_ns, .end = end_ns, .len = len,
			.intact = blob_intact(start_ns, pprof_gz, len),
		};
	}
	seen->n++;
	return seen->stop_after && (int)seen->n >= seen->stop_after ? 7 : 0;
}

static struct seen *query(struct store *s, int64_t from, int64_t to, size_t max)
{
	static __thread struct seen seen;

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store__foreach_window(s, from, to, max, collect_window, &seen), 0);
	return &seen;
}

struct seen_group {
	char key[96];  /* "service|commit|endpoint" */
	char tags[96]; /* the group's other tags (series: the filter, "(any)") */
	uint64_t samples, cpu_ns, instructions, requests;  /* the figures */
	int64_t start;  /* series: the window's start */
};

struct seen_groups {
	struct seen_group g[64];  /* rows in visit order */
	size_t n;                 /* rows */
};

static void record_group(struct seen_groups *sg, int64_t start, const struct store_group *g)
{
	struct seen_group *r;

	if (sg->n >= 64)
		return;
	r = &sg->g[sg->n++];
	snprintf(r->key, sizeof(r->key), "%s|%s|%s", g->service ? g->service : "(any)",
		 g->commit ? g->commit : "(any)", g->endpoint ? g->endpoint : "(any)");
	snprintf(r->tags, sizeof(r->tags), "%s", g->tags ? g->tags : "(any)");
	r->samples = g->samples;
	r->cpu_ns = g->cpu_ns;
	r->instructions = g->instructions;
	r->requests = g->requests;
	r->start = start;
}

static int collect_group(void *ctx, const struct store_group *g)
{
	record_group(ctx, 0, g);
	return 0;
}

static int collect_series(void *ctx, int64_t start_ns, const struct store_group *g)
{
	record_group(ctx, start_ns, g);
	return 0;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns(), bytes, windows, oldest;
	struct store_group g1[] = {
		{ "api", "abc123", "/users", 10, 1000, 5000, 3, NULL },
		{ NULL, NULL, NULL, 2, 200, 0, 0, NULL }, /* untagged */
	};
	struct store_group g2[] = {
		{ "api", "abc123", "/users", 5, 500, 2500, 1, NULL },
	};
	struct seen_groups sg = { 0 };
	struct seen *seen;

	assert_int_equal(put(s, b, 10, 3000, g1, 2), 0);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 70000, g2, 1), 0);
	assert_int_equal(put(s, b + 20 * S_NS, 10, 0, NULL, 0), 0); /* empty profile */

	seen = query(s, b, b + 3600 * S_NS, 100);
	assert_int_equal(seen->n, 3);
	assert_true(seen->w[0].start == b && seen->w[0].end == b + 10 * S_NS);
	assert_int_equal(seen->w[0].len, 3000);
	assert_int_equal(seen->w[1].len, 70000);
	assert_int_equal(seen->w[2].len, 0);
	for (int i = 0; i < 3; i++)
		assert_true(seen->w[i].intact);

	assert_int_equal(store__groups(s, b, b + 3600 * S_NS, NULL, NULL, NULL, NULL, collect_group, &sg),
			 0);
	assert_int_equal(sg.n, 2);
	/* sorted by (service, commit, endpoint): untagged "" first */
	assert_string_equal(sg.g[0].key, "||");
	assert_int_equal(sg.g[0].samples, 2);
	assert_string_equal(sg.g[1].key, "api|abc123|/users");
	assert_int_equal(sg.g[1].samples, 15);
	assert_int_equal(sg.g[1].cpu_ns, 1500);
	assert_int_equal(sg.g[1].instructions, 7500);
	assert_int_equal(sg.g[1].requests, 4);

	assert_int_equal(store__stats(s, &bytes, &windows, &oldest), 0);
	assert_int_equal(windows, 3);
	assert_true(oldest == b);
	assert_true(bytes > 73000 && bytes < 1000000);
	assert_int_equal(store__stats(s, NULL, NULL, NULL), 0);
	assert_int_equal(store__check(s), 0);
	store__close(s);
}

static void test_overlap(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct seen *seen;

	for (int i = 0; i < 3; i++) /* [b, b+10), [b+10, b+20), [b+20, b+30) */
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 100, NULL, 0), 0);

	seen = query(s, b + 10 * S_NS, b + 20 * S_NS, 100); /* exactly the middle one */
	assert_int_equal(seen->n, 1);
	assert_true(seen->w[0].start == b + 10 * S_NS);
	seen = query(s, b + 5 * S_NS, b + 15 * S_NS, 100);
	assert_int_equal(seen->n, 2);
	assert_true(seen->w[0].start == b && seen->w[1].start == b + 10 * S_NS);
	seen = query(s, b + 20 * S_NS - 1, b + 20 * S_NS + 1, 100); /* straddles a boundary */
	assert_int_equal(seen->n, 2);
	seen = query(s, b + 30 * S_NS, b + 40 * S_NS, 100); /* end is exclusive */
	assert_int_equal(seen->n, 0);
	seen = query(s, b - 10 * S_NS, b, 100);
	assert_int_equal(seen->n, 0);
	seen = query(s, b + 20 * S_NS, b + 10 * S_NS, 100); /* empty range */
	assert_int_equal(seen->n, 0);

	/* more windows than max_windows: refused whole, nothing visited */
	{
		struct seen none = { 0 };

		assert_int_equal(store__foreach_window(s, INT64_MIN, INT64_MAX, 2, collect_window,
						       &none),
				 -E2BIG);
		assert_int_equal(none.n, 0);
	}

	/* fn's non-zero value stops the visit and is returned */
	{
		struct seen stop = { .stop_after = 1 };

		assert_int_equal(store__foreach_window(s, b, b + 30 * S_NS, 100, collect_window,
						       &stop),
				 7);
		assert_int_equal(stop.n, 1);
	}

	/* a long window that began well before: found by a query near its end */
	assert_int_equal(put(s, b - 100 * S_NS, 200, 100, NULL, 0), 0);
	seen = query(s, b + 25 * S_NS, b + 26 * S_NS, 100);
	assert_int_equal(seen->n, 2);
	assert_true(seen->w[0].start == b - 100 * S_NS);
	assert_true(seen->w[1].start == b + 20 * S_NS);
	store__close(s);
}

static void test_foreach_in_chunks(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct seen *seen;

	/* more windows than one chunk holds: all visited, in order, once */
	for (int i = 0; i < 150; i++)
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 100 + i, NULL, 0), 0);
	seen = query(s, INT64_MIN, INT64_MAX, 1000);
	assert_int_equal(seen->n, 150);
	for (size_t i = 0; i < seen->n; i++)
		assert_true(seen->w[i].start == b + (int64_t)i * 10 * S_NS && seen->w[i].intact);
	seen = query(s, b + 5 * S_NS, INT64_MAX, 150);
	assert_int_equal(seen->n, 150);
	assert_true(seen->w[149].start == b + 149 * 10 * S_NS);

	/* windows of several MiB: chunks cut by bytes, every blob intact */
	for (int i = 0; i < 3; i++)
		assert_int_equal(put(s, b + (200 + i) * 10 * S_NS, 10, 5 << 20, NULL, 0), 0);
	seen = query(s, b + 1995 * S_NS, INT64_MAX, 1000);
	assert_int_equal(seen->n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_true(seen->w[i].intact && seen->w[i].len == 5 << 20);
	store__close(s);
}

static void test_group_filters(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct store_group w0[] = {
		{ "api", "c1", "/a", 10, 100, 0, 1, NULL },
		{ "api", "c1", "/b", 20, 200, 0, 2, NULL },
		{ "api", "c2", "/a", 30, 300, 0, 3, NULL },
		{ "worker", "c1", "", 40, 400, 0, 0, NULL },
	};
	struct store_group w1[] = {
		{ "api", "c1", "/a", 1, 10, 0, 1, NULL },
		{ "api", "c1", "/a", 2, 20, 0, 1, NULL }, /* the same triple twice: summed */
		{ "worker", "c1", "", 4, 40, 0, 0, NULL },
	};
	struct seen_groups sg;
	int64_t end = b + 20 * S_NS;

	assert_int_equal(put(s, b, 10, 10, w0, 4), 0);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 10, w1, 3), 0);

	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, "api", NULL, NULL, NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 3);
	assert_string_equal(sg.g[0].key, "api|c1|/a");
	assert_int_equal(sg.g[0].samples, 13);
	assert_int_equal(sg.g[0].cpu_ns, 130);
	assert_int_equal(sg.g[0].requests, 3);
	assert_string_equal(sg.g[1].key, "api|c1|/b");
	assert_string_equal(sg.g[2].key, "api|c2|/a");

	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, NULL, "c1", NULL, NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 3);
	assert_string_equal(sg.g[2].key, "worker|c1|");
	assert_int_equal(sg.g[2].samples, 44);

	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, NULL, NULL, "", NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 1);
	assert_string_equal(sg.g[0].key, "worker|c1|");

	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, "api", NULL, "/a", NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 2);

	/* the second window alone */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b + 10 * S_NS, end, "api", "c1", "/a", NULL, collect_group,
				       &sg),
			 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.g[0].samples, 3);

	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, "nobody", NULL, NULL, NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 0);
	store__close(s);
}

static void exec_raw(const char *path, const char *sql);

static int count_bucket(void *ctx, int64_t bucket, const struct store_group *g)
{
	(void)bucket;
	(void)g;
	++*(int64_t *)ctx;
	return 0;
}

/* Groups keep their other tags: a group is (service, commit, endpoint,
 * tags), and a tags filter (a JSON object) selects the groups holding every
 * key = value (null: without the key) — CPU and requests alike. */
static void test_tag_filters(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns(), end = b + 20 * S_NS;
	struct store_group w0[] = {
		{ "api", "c1", "/a", 4, 400, 0, 4, "{\"env\":\"prod\",\"flag\":\"on\"}" },
		{ "api", "c1", "/a", 6, 600, 0, 3, "{\"env\":\"prod\",\"flag\":\"off\"}" },
		{ "api", "c1", "/a", 1, 100, 0, 1, NULL },
	};
	struct store_group w1[] = {
		{ "api", "c1", "/a", 2, 200, 0, 2, "{\"env\":\"prod\",\"flag\":\"on\"}" },
		{ "api", "c1", "/a", 1, 100, 0, 1, "" },  /* "" is the empty set too */
	};
	struct seen_groups sg = { 0 };

	assert_int_equal(put(s, b, 10, 10, w0, 3), 0);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 10, w1, 2), 0);

	/* No filter: one row per tag set, sorted by it, summed over windows. */
	assert_int_equal(store__groups(s, b, end, NULL, NULL, NULL, NULL, collect_group, &sg), 0);
	assert_int_equal(sg.n, 3);
	assert_string_equal(sg.g[0].tags, "{\"env\":\"prod\",\"flag\":\"off\"}");
	assert_int_equal(sg.g[0].samples, 6);
	assert_string_equal(sg.g[1].tags, "{\"env\":\"prod\",\"flag\":\"on\"}");
	assert_int_equal(sg.g[1].cpu_ns, 600);
	assert_int_equal(sg.g[1].requests, 6);
	assert_string_equal(sg.g[2].tags, "{}");
	assert_int_equal(sg.g[2].samples, 2);

	/* flag=on: its CPU and its requests. */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, "api", NULL, NULL, "{\"flag\":\"on\"}",
				       collect_group, &sg), 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.g[0].cpu_ns, 600);
	assert_int_equal(sg.g[0].requests, 6);
	/* Two filters: both must hold. */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, NULL, NULL, NULL,
				       "{\"flag\":\"on\",\"env\":\"dev\"}", collect_group, &sg),
			 0);
	assert_int_equal(sg.n, 0);
	/* null: the groups without the key. */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, NULL, NULL, NULL, "{\"flag\":null}",
				       collect_group, &sg), 0);
	assert_int_equal(sg.n, 1);
	assert_string_equal(sg.g[0].tags, "{}");
	/* "" is no filter. */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, end, NULL, NULL, NULL, "", collect_group, &sg), 0);
	assert_int_equal(sg.n, 3);

	/* Series and buckets take the same filter. */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__group_series(s, b, end, "api", NULL, NULL, "{\"flag\":\"on\"}",
					     collect_series, &sg), 0);
	assert_int_equal(sg.n, 2);
	assert_int_equal(sg.g[0].cpu_ns, 400);
	assert_int_equal(sg.g[1].cpu_ns, 200);
	assert_string_equal(sg.g[1].tags, "{\"flag\":\"on\"}");
	int64_t buckets = 0;
	assert_int_equal(store__group_buckets(s, b, end, 10 * S_NS, NULL, NULL, NULL,
					      "{\"flag\":\"off\"}", count_bucket, &buckets), 0);
	assert_int_equal(buckets, 1);

	/* A malformed filter fails; a group whose tags are no JSON object is
	 * refused, and its window is not stored. */
	assert_int_equal(store__groups(s, b, end, NULL, NULL, NULL, "{flag", collect_group, &sg),
			 -EIO);
	struct store_group bad[] = { { "api", "c1", "/a", 1, 1, 0, 0, "[\"x\"]" } };
	struct store_group junk[] = { { "api", "c1", "/a", 1, 1, 0, 0, "flag=on" } };
	int64_t windows = 0;
	assert_int_equal(put(s, end, 10, 10, bad, 1), -EINVAL);
	assert_int_equal(put(s, end, 10, 10, junk, 1), -EINVAL);
	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 2);
	assert_int_equal(store__check(s), 0);
	store__close(s);
}

/* A history of schema version 1 (tags without extra) is upgraded when
 * opened: its groups read with no other tags, new groups keep theirs, and
 * the file is consistent (foreign keys intact). */
static void test_upgrades_version_1(void **state)
{
	struct fixture *f = *state;
	int64_t b = base_ns();
	char sql[2048];

	snprintf(sql, sizeof(sql),
		 "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;"
		 "CREATE TABLE windows (id INTEGER PRIMARY KEY, start_ns INTEGER NOT NULL,"
		 "  end_ns INTEGER NOT NULL, samples INTEGER NOT NULL, pprof BLOB NOT NULL);"
		 "CREATE INDEX windows_time ON windows(start_ns, end_ns);"
		 "CREATE TABLE tags (id INTEGER PRIMARY KEY, service TEXT NOT NULL,"
		 "  \"commit\" TEXT NOT NULL, endpoint TEXT NOT NULL,"
		 "  UNIQUE (service, \"commit\", endpoint));"
		 "CREATE TABLE groups (window_id INTEGER NOT NULL REFERENCES windows(id)"
		 "  ON DELETE CASCADE, tag_id INTEGER NOT NULL REFERENCES tags(id),"
		 "  samples INTEGER NOT NULL, cpu_ns INTEGER NOT NULL,"
		 "  instructions INTEGER NOT NULL, requests INTEGER NOT NULL,"
		 "  PRIMARY KEY (window_id, tag_id)) WITHOUT ROWID;"
		 "CREATE INDEX groups_tag ON groups(tag_id, window_id);"
		 "INSERT INTO windows VALUES (1, %lld, %lld, 5, x'');"
		 "INSERT INTO tags VALUES (7, 'api', 'c0', '/old');"
		 "INSERT INTO groups VALUES (1, 7, 5, 500, 0, 2);"
		 "PRAGMA application_id = %d; PRAGMA user_version = 1;",
		 (long long)b, (long long)(b + 10 * S_NS), 0x44594e50);
	exec_raw(f->path, sql);

	struct store *s = open_store(f->path, 0, 0);
	struct store_group g[] = { { "api", "c0", "/old", 1, 100, 0, 1, "{\"flag\":\"on\"}" } };
	struct seen_groups sg = { 0 };
	assert_int_equal(put(s, b + 10 * S_NS, 10, 10, g, 1), 0);
	assert_int_equal(store__groups(s, b, b + 20 * S_NS, NULL, NULL, NULL, NULL, collect_group,
				       &sg), 0);
	assert_int_equal(sg.n, 2);
	assert_string_equal(sg.g[0].key, "api|c0|/old");
	assert_string_equal(sg.g[0].tags, "{\"flag\":\"on\"}");
	assert_string_equal(sg.g[1].tags, "{}");
	assert_int_equal(sg.g[1].cpu_ns, 500);
	assert_int_equal(sg.g[1].requests, 2);
	assert_int_equal(store__check(s), 0);
	store__close(s);
	/* Opened again: version 2 now, nothing to do. */
	s = open_store(f->path, 0, 0);
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__groups(s, b, b + 20 * S_NS, NULL, NULL, NULL, "{\"flag\":null}",
				       collect_group, &sg), 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.g[0].cpu_ns, 500);
	store__close(s);
}

static void test_series(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct store_group with[] = {
		{ "api", "c1", "/a", 10, 100, 1000, 2, NULL },
		{ "api", "c1", "/b", 5, 50, 500, 1, NULL },
	};
	struct store_group without[] = {
		{ "worker", "c1", "", 7, 70, 0, 0, NULL },
	};
	struct seen_groups sg;

	assert_int_equal(put(s, b, 10, 10, with, 2), 0);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 10, without, 1), 0);
	assert_int_equal(put(s, b + 20 * S_NS, 10, 10, with, 2), 0);

	/* one group: every window, zeros where it was absent */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__group_series(s, b, b + 30 * S_NS, "api", "c1", "/a", NULL,
					     collect_series, &sg),
			 0);
	assert_int_equal(sg.n, 3);
	assert_true(sg.g[0].start == b && sg.g[1].start == b + 10 * S_NS &&
		    sg.g[2].start == b + 20 * S_NS);
	assert_string_equal(sg.g[0].key, "api|c1|/a");
	assert_int_equal(sg.g[0].samples, 10);
	assert_int_equal(sg.g[0].instructions, 1000);
	assert_int_equal(sg.g[1].samples, 0);
	assert_int_equal(sg.g[1].cpu_ns, 0);
	assert_int_equal(sg.g[2].requests, 2);

	/* a service: its endpoints summed per window; "any" reported as NULL */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__group_series(s, b, b + 30 * S_NS, "api", NULL, NULL, NULL,
					     collect_series, &sg),
			 0);
	assert_int_equal(sg.n, 3);
	assert_string_equal(sg.g[0].key, "api|(any)|(any)");
	assert_int_equal(sg.g[0].samples, 15);
	assert_int_equal(sg.g[0].cpu_ns, 150);
	assert_int_equal(sg.g[1].samples, 0);

	/* the range bounds the windows */
	memset(&sg, 0, sizeof(sg));
	assert_int_equal(store__group_series(s, b + 15 * S_NS, b + 16 * S_NS, NULL, NULL, NULL, NULL,
					     collect_series, &sg),
			 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.g[0].samples, 7);
	store__close(s);
}

static void test_retention_by_age(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 3600, 0);
	int64_t now = now_ns() / S_NS * S_NS, windows, oldest;
	struct store_group old_group[] = { { "old", "c0", "/gone", 1, 1, 0, 0, NULL } };
	struct seen_groups sg = { 0 };

	/* a window that ended two hours ago is kept by its own put ... */
	assert_int_equal(put(s, now - 7200 * S_NS, 10, 100, old_group, 1), 0);
	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 1);
	/* ... and removed by the next */
	assert_int_equal(put(s, now - 20 * S_NS, 10, 100, NULL, 0), 0);
	assert_int_equal(store__stats(s, NULL, &windows, &oldest), 0);
	assert_int_equal(windows, 1);
	assert_true(oldest == now - 20 * S_NS);
	assert_int_equal(store__groups(s, INT64_MIN, INT64_MAX, NULL, NULL, NULL, NULL, collect_group,
				       &sg),
			 0);
	assert_int_equal(sg.n, 0);

	/* a window inside max_age stays */
	assert_int_equal(put(s, now - 3000 * S_NS, 10, 100, NULL, 0), 0);
	assert_int_equal(put(s, now - 10 * S_NS, 10, 100, NULL, 0), 0);
	assert_int_equal(store__stats(s, NULL, &windows, &oldest), 0);
	assert_int_equal(windows, 3);
	assert_true(oldest == now - 3000 * S_NS);
	assert_int_equal(store__check(s), 0);
	store__close(s);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Asserts the windows held are the newest ones, contiguous, ending with
 * last_start, and returns how many there are. */
static size_t assert_newest_kept(struct store *s, int64_t b, int64_t last_start)
{
	struct seen *seen = query(s, INT64_MIN, INT64_MAX, MAX_SEEN);

	assert_true(seen->n > 0 && seen->n < MAX_SEEN);
	assert_true(seen->w[seen->n - 1].start == last_start);
	for (size_t i = 1; i < seen->n; i++)
		assert_true(seen->w[i].start == seen->w[i - 1].start + 10 * S_NS);
	for (size_t i = 0; i < seen->n; i++)
		assert_true(seen->w[i].intact && seen->w[i].start >= b);
	return seen->n;
}

static void test_retention_by_size(void **state)
{
	struct fixture *f = *state;
	const int64_t max_bytes = 256 << 10;
	struct store *s = open_store(f->path, 0, max_bytes);
	int64_t b = base_ns(), bytes, windows;
	struct store_group g[] = { { "api", "c1", "/a", 1, 1, 0, 0, NULL } };
	size_t kept;

	for (int i = 0; i < 64; i++) {
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 16 << 10, g, 1), 0);
		assert_int_equal(store__stats(s, &bytes, &windows, NULL), 0);
		assert_true(bytes <= max_bytes);
	}
	kept = assert_newest_kept(s, b, b + 63 * 10 * S_NS);
	assert_true(kept >= 8 && kept <= 16);
	assert_int_equal(store__check(s), 0);
	store__close(s);
	assert_true(file_size(f->path) <= max_bytes);
}

/* max_bytes holds the database file and its WAL together, at every put:
 * the WAL is checkpointed and truncated, not left to grow to its default
 * auto-checkpoint of 4 MiB. */
static void test_retention_counts_wal(void **state)
{
	struct fixture *f = *state;
	const int64_t max_bytes = 256 << 10;
	struct store *s = open_store(f->path, 0, max_bytes);
	int64_t b = base_ns();
	char wal[PATH_MAX];
	off_t peak = 0;

	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 16 << 10, NULL, 0), 0);
		off_t total = file_size(f->path) + file_size(wal);
		if (total > peak)
			peak = total;
	}
	/* One window (16 KiB of blob) and a few pages of slack. */
	if (peak > max_bytes + (32 << 10))
		fail_msg("database + WAL reached %lld bytes, limit %lld", (long long)peak,
			 (long long)max_bytes);
	assert_true(assert_newest_kept(s, b, b + 99 * 10 * S_NS) >= 6);
	store__close(s);
}

static void test_retention_shrinks_file(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 64 << 20);
	int64_t b = base_ns(), bytes;
	off_t big;

	for (int i = 0; i < 64; i++)
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 16 << 10, NULL, 0), 0);
	store__close(s);
	big = file_size(f->path);
	assert_true(big > 1 << 20);

	/* a smaller limit on the next open: the next put trims and shrinks */
	s = open_store(f->path, 0, 128 << 10);
	assert_int_equal(put(s, b + 64 * 10 * S_NS, 10, 16 << 10, NULL, 0), 0);
	assert_int_equal(store__stats(s, &bytes, NULL, NULL), 0);
	assert_true(bytes <= 128 << 10);
	assert_newest_kept(s, b, b + 64 * 10 * S_NS);
	store__close(s);
	assert_true(file_size(f->path) <= 128 << 10);
}

static void test_oversized_window_is_kept(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 64 << 10);
	int64_t b = base_ns(), windows, oldest;
	struct seen *seen;

	assert_int_equal(put(s, b, 10, 200 << 10, NULL, 0), 0);
	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 1);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 200 << 10, NULL, 0), 0);
	assert_int_equal(store__stats(s, NULL, &windows, &oldest), 0);
	assert_int_equal(windows, 1);
	assert_true(oldest == b + 10 * S_NS);
	seen = query(s, INT64_MIN, INT64_MAX, 10);
	assert_int_equal(seen->n, 1);
	assert_true(seen->w[0].intact && seen->w[0].len == 200 << 10);
	store__close(s);
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct store_group g[] = { { "api", "c1", "/a", 3, 30, 0, 1, NULL } };
	struct seen_groups sg = { 0 };
	struct seen *seen;

	for (int i = 0; i < 5; i++)
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 1000 + i, g, 1), 0);
	assert_int_equal(put(s, b - 100 * S_NS, 200, 10, NULL, 0), 0); /* a long one */
	store__close(s);

	s = open_store(f->path, 0, 0);
	assert_int_equal(store__check(s), 0);
	seen = query(s, INT64_MIN, INT64_MAX, 100);
	assert_int_equal(seen->n, 6);
	for (size_t i = 0; i < seen->n; i++)
		assert_true(seen->w[i].intact);
	/* the longest window is remembered across opens */
	seen = query(s, b + 45 * S_NS, b + 46 * S_NS, 100);
	assert_int_equal(seen->n, 2);
	assert_true(seen->w[0].start == b - 100 * S_NS);
	assert_int_equal(store__groups(s, b, b + 50 * S_NS, "api", NULL, NULL, NULL, collect_group, &sg),
			 0);
	assert_int_equal(sg.n, 1);
	assert_int_equal(sg.g[0].samples, 15);
	/* and it still takes writes */
	assert_int_equal(put(s, b + 50 * S_NS, 10, 10, g, 1), 0);
	store__close(s);
}

static void test_refuses_non_database(void **state)
{
	struct fixture *f = *state;
	char text[8192], back[8192], err[256];
	FILE *fp;

	memset(text, 'x', sizeof(text));
	memcpy(text, "this is a text file, not a database\n", 36);
	fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, sizeof(text), fp), sizeof(text));
	fclose(fp);

	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "not an SQLite database"));

	/* the file is left alone */
	fp = fopen(f->path, "r");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof(back), fp), sizeof(back));
	fclose(fp);
	assert_memory_equal(text, back, sizeof(text));
}

static void exec_raw(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_refuses_other_sqlite_database(void **state)
{
	struct fixture *f = *state;
	char err[256];

	exec_raw(f->path, "CREATE TABLE windows (x); INSERT INTO windows VALUES (1)");
	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "not a dynoprof history"));
}

static void test_refuses_newer_schema(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	char err[256];

	assert_int_equal(put(s, base_ns(), 10, 10, NULL, 0), 0);
	store__close(s);
	exec_raw(f->path, "PRAGMA user_version = 99");
	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "99"));
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	char err[256], sub[128];
	struct store_opts bad = { .max_age_s = -1 };

	snprintf(sub, sizeof(sub), "%s/subdir", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	errno = 0;
	assert_null(store__open(sub, NULL, err, sizeof(err)));
	assert_int_equal(errno, EISDIR);
	assert_non_null(strstr(err, sub));

	snprintf(sub, sizeof(sub), "%s/missing/history.db", f->dir);
	errno = 0;
	assert_null(store__open(sub, NULL, err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "No such file"));

	errno = 0;
	assert_null(store__open(f->path, &bad, NULL, 0));
	assert_int_equal(errno, EINVAL);
}

/* A history whose schema was damaged by hand (a table dropped, a version
 * zeroed) is refused with the file's name and what is wrong, not used. */
static void test_refuses_damaged_schema(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	char err[256];

	assert_int_equal(put(s, base_ns(), 10, 10, NULL, 0), 0);
	store__close(s);
	exec_raw(f->path, "PRAGMA user_version = 0");
	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "invalid history schema version 0"));

	exec_raw(f->path, "PRAGMA user_version = 1; DROP TABLE groups");
	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EIO);
	assert_non_null(strstr(err, "cannot prepare a query"));
	assert_non_null(strstr(err, "no such table"));
}

/* Another program holding the history's write lock (an sqlite3 shell in a
 * transaction) makes opening and storing fail with EBUSY once the busy
 * timeout passed, saying so; nothing is half written, and once the lock is
 * released the store works. */
static void test_locked_by_another_writer(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns(), windows = -1;
	sqlite3 *other;
	char err[256];

	assert_int_equal(put(s, b, 10, 100, NULL, 0), 0);
	assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EBUSY);
	if (!strstr(err, "database is locked"))
		fail_msg("open of a locked history: %s", err);
	printf("    %s\n", err);
	assert_non_null(strstr(err, f->path));

	assert_int_equal(put(s, b + 10 * S_NS, 10, 100, NULL, 0), -EBUSY);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(other), SQLITE_OK);

	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 1);
	assert_int_equal(put(s, b + 10 * S_NS, 10, 100, NULL, 0), 0);
	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 2);
	store__close(s);
}

/* The disk fills up (the process's file size limit, RLIMIT_FSIZE, stands in
 * for a full file system: writes past it fail like ENOSPC): storing a window
 * fails with ENOSPC or EIO, the failed window is not half there, and the
 * store keeps working once there is room again. */
static void test_disk_full(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns(), windows = -1;
	struct rlimit old, small;
	struct stat st;
	struct seen *seen;
	int ret;

	assert_int_equal(put(s, b, 10, 1000, NULL, 0), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead of killing us */
	small = old;
	small.rlim_cur = (rlim_t)st.st_size + (64 << 10);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	ret = put(s, b + 10 * S_NS, 10, 1 << 20, NULL, 0);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	if (ret != -ENOSPC && ret != -EIO)
		fail_msg("a put on a full disk returned %d (%s)", ret, strerror(-ret));

	assert_int_equal(store__stats(s, NULL, &windows, NULL), 0);
	assert_int_equal(windows, 1);
	assert_int_equal(put(s, b + 20 * S_NS, 10, 1000, NULL, 0), 0);
	seen = query(s, b, b + 30 * S_NS, 10);
	assert_int_equal(seen->n, 2);
	assert_true(seen->w[0].intact && seen->w[1].intact);
	assert_int_equal(seen->w[1].start, b + 20 * S_NS);
	assert_int_equal(store__check(s), 0);
	store__close(s);
}

/* Overwrites the file with junk from byte `from` (a page boundary) on;
 * from < 0: from its middle (well past the first pages, which hold the
 * header, the schema and the tables' roots). */
static void corrupt_from(const char *path, long from)
{
	struct stat st;
	char junk[4096];
	FILE *fp;

	assert_int_equal(stat(path, &st), 0);
	if (from < 0)
		from = st.st_size / 2 / 4096 * 4096;
	assert_true(st.st_size > from + 4096);
	memset(junk, 0xa5, sizeof(junk));
	fp = fopen(path, "r+");
	assert_non_null(fp);
	for (long off = from; off < st.st_size; off += sizeof(junk)) {
		assert_int_equal(fseek(fp, off, SEEK_SET), 0);
		assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
	}
	assert_int_equal(fclose(fp), 0);
}

/* Pages of the history overwritten with garbage (a disk fault, a stray
 * write): store__open fails with EIO naming the file and saying it is
 * malformed, rather than serving wrong profiles. */
static void test_corrupt_pages(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	char err[256];

	for (int i = 0; i < 20; i++)
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 3000, NULL, 0), 0);
	store__close(s);
	corrupt_from(f->path, 4096); /* every page but the first (header, schema) */

	errno = 0;
	assert_null(store__open(f->path, NULL, err, sizeof(err)));
	assert_int_equal(errno, EIO);
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "malformed"));
}

/* Damage only in the profiles' bytes (the later windows' blob pages): the
 * history opens and counts its windows, but reading them fails with EIO, not
 * with wrong profiles, and store__check says the file is damaged. */
static void test_corrupt_profile_pages(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns(), windows = 0;
	struct seen seen = { 0 };

	for (int i = 0; i < 6; i++)
		assert_int_equal(put(s, b + i * 10 * S_NS, 10, 200 << 10, NULL, 0), 0);
	store__close(s);
	corrupt_from(f->path, -1);

	s = open_store(f->path, 0, 0);
	assert_int_equal(store__count_range(s, b, b + 60 * S_NS, &windows), 0);
	assert_int_equal(windows, 6);
	assert_int_equal(store__foreach_window(s, b, b + 60 * S_NS, 10, collect_window, &seen),
			 -EIO);
	assert_int_equal(store__check(s), -EIO);
	store__close(s);
}

struct reentry {
	struct store *s;  /* the store being read */
	int ret;          /* what the nested call returned */
};

static int reenter_window(void *ctx, int64_t start_ns, int64_t end_ns, const void *blob,
			  size_t len)
{
	struct reentry *r = ctx;

	(void)start_ns, (void)end_ns, (void)blob, (void)len;
	r->ret = store__stats(r->s, NULL, NULL, NULL);
	return 0;
}

static int reenter_group(void *ctx, const struct store_group *g)
{
	struct reentry *r = ctx;

	(void)g;
	r->ret = store__stats(r->s, NULL, NULL, NULL);
	return r->ret;
}

static void test_invalid_calls(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f->path, 0, 0);
	int64_t b = base_ns();
	struct store_window backwards = { .start_ns = b, .end_ns = b };
	struct store_window no_groups = { .start_ns = b, .end_ns = b + 1, .ngroups = 2 };
	struct store_group g[] = { { "api", "c1", "/a", 1, 1, 0, 0, NULL } };
	struct reentry r = { .s = s, .ret = 1 };

	assert_int_equal(store__put_window(s, &backwards), -EINVAL);
	assert_int_equal(store__put_window(s, &no_groups), -EINVAL);
	assert_int_equal(store__put_window(s, NULL), -EINVAL);
	assert_int_equal(store__put_window(NULL, &backwards), -EINVAL);
	assert_int_equal(store__check(NULL), -EINVAL);
	assert_int_equal(store__stats(NULL, NULL, NULL, NULL), -EINVAL);
	store__close(NULL);

	/* foreach_window calls back unlocked: the callback may use the store */
	assert_int_equal(put(s, b, 10, 10, g, 1), 0);
	assert_int_equal(store__foreach_window(s, b, b + 10 * S_NS, 10, reenter_window, &r), 0);
	assert_int_equal(r.ret, 0);
	/* a locked callback calling back into the store gets an error, not a deadlock */
	assert_int_equal(store__groups(s, b, b + 10 * S_NS, NULL, NULL, NULL, NULL, reenter_group, &r),
			 -EDEADLK);
	assert_int_equal(store__stats(s, NULL, NULL, NULL), 0);
	store__close(s);
}

struct concurrency {
	struct store *s;           /* shared store */
	int64_t base;              /* first window's start */
	atomic_int writer_done;    /* the writer finished */
	atomic_int errors;         /* calls that failed */
	atomic_int corrupt;        /* windows whose blob did not match */
	atomic_long reads;         /* reader calls made */
};

static int check_blob(void *ctx, int64_t start_ns, int64_t end_ns, const void *blob, size_t len)
{
	struct concurrency *c = ctx;

	(void)end_ns;
	if (!blob_intact(start_ns, blob, len))
		atomic_fetch_add(&c->corrupt, 1);
	return 0;
}

static int count_group(void *ctx, const struct store_group *g)
{
	(void)g;
	(*(int *)ctx)++;
	return 0;
}

static int count_series(void *ctx, int64_t start, const struct store_group *g)
{
	(void)start, (void)g;
	(*(int *)ctx)++;
	return 0;
}

static void *writer_thread(void *arg)
{
	struct concurrency *c = arg;

	for (int i = 0; i < 150; i++) {
		struct store_group g[] = {
			{ "api", i % 2 ? "c1" : "c2", "/a", (uint64_t)i, 10, 0, 1, NULL },
			{ "worker", "c1", "", 1, 1, 0, 0, NULL },
		};

		if (put(c->s, c->base + i * 10 * S_NS, 10, 2000 + (size_t)(i % 7) * 1000, g, 2))
			atomic_fetch_add(&c->errors, 1);
	}
	atomic_store(&c->writer_done, 1);
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct concurrency *c = arg;
	int64_t from = c->base, to = c->base + 1500 * S_NS;

	while (!atomic_load(&c->writer_done)) {
		int n = 0;
		int64_t bytes, windows;

		if (store__foreach_window(c->s, from, to, 50, check_blob, c) < 0 ||
		    store__groups(c->s, from, to, "api", NULL, NULL, NULL, count_group, &n) < 0 ||
		    store__group_series(c->s, from, to, NULL, "c1", NULL, NULL, count_series, &n) < 0 ||
		    store__stats(c->s, &bytes, &windows, NULL) < 0)
			atomic_fetch_add(&c->errors, 1);
		atomic_fetch_add(&c->reads, 1);
	}
	return NULL;
}

static void test_concurrent_readers_and_writer(void **state)
{
	struct fixture *f = *state;
	struct concurrency c = { .base = base_ns() };
	pthread_t writer, readers[4];
	int64_t windows;

	/* small enough that retention runs while readers read */
	c.s = open_store(f->path, 0, 200 << 10);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&readers[i], NULL, reader_thread, &c), 0);
	assert_int_equal(pthread_create(&writer, NULL, writer_thread, &c), 0);
	pthread_join(writer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(readers[i], NULL);
	assert_int_equal(atomic_load(&c.errors), 0);
	assert_int_equal(atomic_load(&c.corrupt), 0);
	assert_true(atomic_load(&c.reads) > 0);
	assert_int_equal(store__stats(c.s, NULL, &windows, NULL), 0);
	assert_true(windows > 0 && windows < 150);
	assert_newest_kept(c.s, c.base, c.base + 149 * 10 * S_NS);
	assert_int_equal(store__check(c.s), 0);
	store__close(c.s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_in_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_series, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tag_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrades_version_1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_by_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_counts_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_shrinks_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_window_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_non_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_other_sqlite_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_damaged_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_by_another_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_profile_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers_and_writer, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
