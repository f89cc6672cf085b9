// SPDX-License-Identifier: MIT
/* store.c - the agent's history in SQLite: windows, their tag groups, retention.
 *
 * Schema (version STORE_SCHEMA_VERSION, application_id "DYNP"):
 *   windows(id, start_ns, end_ns, samples, pprof)   one row per closed window
 *   tags(id, service, commit, endpoint, extra)      each distinct group once
 *   groups(window_id, tag_id, samples, cpu_ns, instructions, requests)
 * extra is the group's other tags (feature flags, env...: agent/tagset.h), a
 * JSON object with sorted keys, "{}" when none; queries filter on it with
 * json_each, so a filter on any tag reads the tags rows, never the profiles.
 * Version 1 had no extra: opening one rebuilds its tags table (small: one row
 * per distinct group) with extra "{}", keeping the ids groups refers to.
 * Tag groups are interned because a week of 10-second windows repeats the same
 * few hundred triples millions of times; a groups row is then a few integers.
 * groups is WITHOUT ROWID keyed (window_id, tag_id): a window's rows are
 * clustered, which is what the range queries and the cascade delete read.
 *
 * Range queries: a window [start, end) overlaps [from, to) when start < to and
 * end > from. With the index on (start_ns, end_ns) alone, "end > from" cannot
 * bound the scan, so the store remembers the longest window it holds
 * (max_span_ns) and adds start >= from - max_span_ns, which every overlapping
 * window satisfies: queries seek straight to the range instead of scanning the
 * whole history.
 *
 * Durability: WAL with synchronous=NORMAL. A commit appends to the WAL with
 * write(); the WAL is fsync'ed only at checkpoints. A killed process (kill -9,
 * crash) therefore loses nothing it committed: the data is in the OS page
 * cache and the next open replays the WAL. An OS crash or power loss may lose
 * the windows committed since the last checkpoint (a few minutes of history
 * at most), but never corrupts the database: the WAL's checksummed frames are
 * replayed only up to the last complete commit. synchronous=FULL would fsync
 * every 10-second window on every fleet host to save those minutes of a
 * profile history, which is not worth the I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent/store.h"
#include "util/errmsg.h"
#include "util/outfile.h"
#include "util/clock.h"

#define STORE_SCHEMA_VERSION 2
#define STORE_APPLICATION_ID 0x44594e50 /* "DYNP": tells our files from other SQLite files */
#define STORE_DEFAULT_MAX_AGE_S (7LL * 24 * 3600)
#define STORE_DEFAULT_MAX_BYTES (1LL << 30)
/* Long enough to ride out another process's checkpoint, short enough that a
 * wedged peer surfaces as -EBUSY instead of a hung agent loop. */
#define STORE_BUSY_TIMEOUT_MS 5000
/* Windows deleted per retention transaction: bounds the WAL growth and the
 * time readers wait for the mutex when a lot of history expires at once. */
#define STORE_RETENTION_BATCH 256
/* The WAL is truncated back to this after a checkpoint (it would otherwise
 * keep the size of the largest transaction it ever held). */
#define STORE_WAL_SIZE_LIMIT (16LL << 20)
/* The part of max_bytes kept for the WAL: a quarter, within these bounds.
 * Retention keeps the pages in use within max_bytes minus this reserve (or
 * minus the WAL's actual size when larger), and each put that deleted
 * windows or left the WAL past half the reserve checkpoints it and truncates
 * the file to 0 (wal_checkpoint(TRUNCATE)): database file plus WAL stay
 * within about max_bytes. */
#define STORE_WAL_RESERVE_MIN (64LL << 10)
#define STORE_WAL_RESERVE_MAX STORE_WAL_SIZE_LIMIT
/* foreach_window copies windows out in chunks of at most this many windows
 * and bytes (or one larger window), and calls back without the lock. */
#define FOREACH_CHUNK_WINDOWS 64
#define FOREACH_CHUNK_BYTES (8 << 20)
#define NS_PER_S 1000000000LL

/* The tags table's columns, for the schema and for the version 1 upgrade,
 * which rebuilds the table with them. */
#define TAGS_COLUMNS                                                                   \
	"("                                                                            \
	"  id INTEGER PRIMARY KEY,"                                                    \
	"  service TEXT NOT NULL,"                                                     \
	"  \"commit\" TEXT NOT NULL,"                                                  \
	"  endpoint TEXT NOT NULL,"                                                    \
	"  extra TEXT NOT NULL DEFAULT '{}',"                                          \
	"  UNIQUE (service, \"commit\", endpoint, extra)"                              \
	")"

static const char SCHEMA_SQL[] =
	"CREATE TABLE windows ("
	"  id INTEGER PRIMARY KEY,"
	"  start_ns INTEGER NOT NULL,"
	"  end_ns INTEGER NOT NULL,"
	"  samples INTEGER NOT NULL,"
	"  pprof BLOB NOT NULL"
	");"
	"CREATE INDEX windows_time ON windows(start_ns, end_ns);"
	"CREATE TABLE tags " TAGS_COLUMNS ";"
	"CREATE TABLE groups ("
	"  window_id INTEGER NOT NULL REFERENCES windows(id) ON DELETE CASCADE,"
	"  tag_id INTEGER NOT NULL REFERENCES tags(id),"
	"  samples INTEGER NOT NULL,"
	"  cpu_ns INTEGER NOT NULL,"
	"  instructions INTEGER NOT NULL,"
	"  requests INTEGER NOT NULL,"
	"  PRIMARY KEY (window_id, tag_id)"
	") WITHOUT ROWID;"
	"CREATE INDEX groups_tag ON groups(tag_id, window_id);";

/* Deploy-check results. Created at every open (also in histories written
 * before the table existed), so readers always find it: /api/v1/regressions
 * answers an empty list, never an error, before the first check. One page
 * while empty; no index (a few thousand rows at most, read newest first),
 * which keeps an empty history's schema as small as before. */
static const char CHECKS_SQL[] =
	"CREATE TABLE IF NOT EXISTS checks ("
	"  id INTEGER PRIMARY KEY,"
	"  checked_ns INTEGER NOT NULL,"
	"  json TEXT NOT NULL);";

/* The overlap condition, with the max_span bound (see the file comment):
 * ?1 = from - max_span, ?2 = to, ?3 = from. */
#define OVERLAPS(w) w "start_ns >= ?1 AND " w "start_ns < ?2 AND " w "end_ns > ?3"
/* Tag filters: ?4 service, ?5 commit, ?6 endpoint; NULL matches any. ?8 the
 * other tags' filter, a JSON object (NULL: any): a group matches when no
 * filter fails it, a string value failing when the group's extra lacks that
 * key = value, a null when the group's extra has the key. */
#define TAG_FILTER(t)                                                                  \
	"(?4 IS NULL OR " t "service = ?4) AND (?5 IS NULL OR " t "\"commit\" = ?5) AND " \
	"(?6 IS NULL OR " t "endpoint = ?6) AND (?8 IS NULL OR NOT EXISTS ("              \
	"SELECT 1 FROM json_each(?8) f WHERE (f.type = 'null') = EXISTS ("                 \
	"SELECT 1 FROM json_each(" t "extra) e WHERE e.key = f.key AND "                   \
	"(f.type = 'null' OR e.value = f.value))))"

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_WINDOW,
	ST_FIND_TAG,
	ST_INSERT_TAG,
	ST_INSERT_GROUP,
	ST_DELETE_AGED,
	ST_DELETE_OLDEST,
	ST_DELETE_UNUSED_TAGS,
	ST_USED_PAGES,
	ST_COUNT_WINDOWS,
	ST_FOREACH,
	ST_GROUPS,
	ST_SERIES,
	ST_COUNT_RANGE,
	ST_BUCKETS,
	ST__COUNT,
};

static const char *const STMT_SQL[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT_WINDOW] =
		"INSERT INTO windows (start_ns, end_ns, samples, pprof) VALUES (?1, ?2, ?3, ?4)",
	[ST_FIND_TAG] = "SELECT id FROM tags WHERE service = ?1 AND \"commit\" = ?2 AND"
			" endpoint = ?3 AND extra = ?4",
	/* extra must be a JSON object (a query's json_each would fail on
	 * anything else): no row is inserted otherwise (-EINVAL). */
	[ST_INSERT_TAG] = "INSERT INTO tags (service, \"commit\", endpoint, extra)"
			  " SELECT ?1, ?2, ?3, ?4 WHERE CASE WHEN json_valid(?4)"
			  " THEN json_type(?4) = 'object' ELSE 0 END",
	/* The same triple twice in one window is summed, not refused. */
	[ST_INSERT_GROUP] =
		"INSERT INTO groups (window_id, tag_id, samples, cpu_ns, instructions, requests)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (window_id, tag_id) DO UPDATE SET"
		" samples = samples + excluded.samples, cpu_ns = cpu_ns + excluded.cpu_ns,"
		" instructions = instructions + excluded.instructions,"
		" requests = requests + excluded.requests",
	/* end_ns < cutoff implies start_ns < cutoff: the latter bounds the scan. */
	[ST_DELETE_AGED] =
		"DELETE FROM windows WHERE id IN (SELECT id FROM windows"
		" WHERE start_ns < ?1 AND end_ns < ?1 AND id != ?2"
		" ORDER BY start_ns, end_ns, id LIMIT ?3)",
	[ST_DELETE_OLDEST] =
		"DELETE FROM windows WHERE id IN (SELECT id FROM windows WHERE id != ?1"
		" ORDER BY start_ns, end_ns, id LIMIT ?2)",
	[ST_DELETE_UNUSED_TAGS] =
		"DELETE FROM tags WHERE NOT EXISTS (SELECT 1 FROM groups WHERE tag_id = tags.id)",
	[ST_USED_PAGES] = "SELECT p.page_count - f.freelist_count"
			  " FROM pragma_page_count() p, pragma_freelist_count() f",
	[ST_COUNT_WINDOWS] = "SELECT count(*), coalesce(min(start_ns), 0) FROM windows",
	/* Keyset pagination: ?5..?7 is the last row of the previous chunk. */
	[ST_FOREACH] = "SELECT start_ns, end_ns, id, pprof FROM windows WHERE " OVERLAPS("")
		       " AND (start_ns, end_ns, id) > (?5, ?6, ?7)"
		       " ORDER BY start_ns, end_ns, id LIMIT ?4",
	/* Sums the rows of the windows in range, then names them. Both range
	 * queries read the group rows of the windows in range (cost linear in
	 * them, whatever the filters and however many tags exist); "+g.tag_id"
	 * keeps the planner from probing every (window, matching tag) pair
	 * instead, which explodes with many sparse tags. */
	[ST_GROUPS] =
		"SELECT t.service, t.\"commit\", t.endpoint, a.samples, a.cpu_ns,"
		" a.instructions, a.requests, t.extra"
		" FROM (SELECT g.tag_id AS tag_id, sum(g.samples) AS samples,"
		" sum(g.cpu_ns) AS cpu_ns, sum(g.instructions) AS instructions,"
		" sum(g.requests) AS requests"
		" FROM windows w JOIN groups g ON g.window_id = w.id"
		" WHERE " OVERLAPS("w.")
		" AND +g.tag_id IN (SELECT id FROM tags WHERE " TAG_FILTER("") ")"
		" GROUP BY g.tag_id) a JOIN tags t ON t.id = a.tag_id"
		" ORDER BY t.service, t.\"commit\", t.endpoint, t.extra",
	/* Every overlapping window yields a row (zeros when the group is absent):
	 * a resampling over windows must see the windows where it did nothing.
	 * "+g.tag_id": as above. */
	[ST_SERIES] =
		"SELECT w.start_ns, coalesce(sum(g.samples), 0), coalesce(sum(g.cpu_ns), 0),"
		" coalesce(sum(g.instructions), 0), coalesce(sum(g.requests), 0)"
		" FROM windows w LEFT JOIN groups g ON g.window_id = w.id"
		" AND +g.tag_id IN (SELECT id FROM tags WHERE " TAG_FILTER("") ")"
		" WHERE " OVERLAPS("w.")
		" GROUP BY w.start_ns, w.end_ns, w.id ORDER BY w.start_ns, w.end_ns, w.id",
	/* Windows overlapping a range (a query's cost, checked before it runs). */
	[ST_COUNT_RANGE] = "SELECT count(*) FROM windows WHERE " OVERLAPS(""),
	/* ST_GROUPS per time bucket: ?7 the bucket length in ns, a window in the
	 * bucket its start falls in (one starting before from: bucket 0). */
	[ST_BUCKETS] =
		"SELECT t.service, t.\"commit\", t.endpoint, a.samples, a.cpu_ns,"
		" a.instructions, a.requests, t.extra, a.b"
		" FROM (SELECT g.tag_id AS tag_id, max((w.start_ns - ?3) / ?7, 0) AS b,"
		" sum(g.samples) AS samples, sum(g.cpu_ns) AS cpu_ns,"
		" sum(g.instructions) AS instructions, sum(g.requests) AS requests"
		" FROM windows w JOIN groups g ON g.window_id = w.id"
		" WHERE " OVERLAPS("w.")
		" AND +g.tag_id IN (SELECT id FROM tags WHERE " TAG_FILTER("") ")"
		" GROUP BY g.tag_id, b) a JOIN tags t ON t.id = a.tag_id"
		" ORDER BY t.service, t.\"commit\", t.endpoint, t.extra, a.b",
};

struct store {
	sqlite3 *db;                     /* the one connection, used under lock */
	pthread_mutex_t lock;            /* serialises every use of db and stmts */
	sqlite3_stmt *stmts[ST__COUNT];  /* prepared once at open (STMT_SQL) */
	int64_t max_age_s;               /* retention by age (> 0) */
	int64_t max_bytes;               /* retention by size (> 0) */
	int64_t page_size;               /* bytes per page (fixed once created) */
	int64_t max_span_ns;             /* longest end - start of any window held
					  * (an upper bound: not lowered on delete) */
	char *wal_path;                  /* "<path>-wal", whose size retention counts */
	int64_t wal_reserve;             /* bytes of max_bytes kept for the WAL */
};

/* Maps an SQLite result code to a negative errno. */
static int sqlite_to_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_NOTADB:
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_MISUSE:
		return -EINVAL;
	default: /* SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_ERROR, ... */
		return -EIO;
	}
}

static int64_t clamp_u64(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static uint64_t column_u64(sqlite3_stmt *st, int col)
{
	int64_t v = sqlite3_column_int64(st, col);

	return v < 0 ? 0 : (uint64_t)v;
}

static int64_t sub_saturating(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b > 0 ? INT64_MIN : INT64_MAX;
	return r;
}

/* Locks the store. A callback that calls back into the store (which would
 * deadlock) gets -EDEADLK instead: the mutex is error-checking. */
static int store_lock(struct store *s)
{
	return -pthread_mutex_lock(&s->lock);
}

static void store_unlock(struct store *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* Steps a statement that returns no rows, resets it. 0 or -errno. */
static int step_done(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : (sqlite_to_errno(rc) ?: -EIO);
}

/* Steps a query for its first row of integers into out[0..n), resets it.
 * 1 when there was a row, 0 when none, or -errno. */
static int step_row(struct store *s, enum stmt_id id, int64_t *out, int n)
{
	sqlite3_stmt *st = s->stmts[id];
	int rc = sqlite3_step(st);
	int ret = 0;

	if (rc == SQLITE_ROW) {
		for (int i = 0; i < n; i++)
			out[i] = sqlite3_column_int64(st, i);
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = sqlite_to_errno(rc) ?: -EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* step_row for queries that always return a row (aggregates). 0 or -errno. */
static int step_ints(struct store *s, enum stmt_id id, int64_t *out, int n)
{
	int ret = step_row(s, id, out, n);

	return ret == 1 ? 0 : (ret ?: -EIO);
}

/* Runs SQL that needs no caching (open, pragmas). 0 or -errno. */
static int exec_sql(struct store *s, const char *sql)
{
	return sqlite_to_errno(sqlite3_exec(s->db, sql, NULL, NULL, NULL));
}

/* Runs a single-value query (pragmas at open); *out gets the integer. */
static int query_int(struct store *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : (sqlite_to_errno(rc) ?: -EIO);
}

static int used_bytes(struct store *s, int64_t *bytes)
{
	int64_t pages = 0;
	int err = step_ints(s, ST_USED_PAGES, &pages, 1);

	if (!err)
		*bytes = pages * s->page_size;
	return err;
}

/* Rolls back the open transaction, if any, after a failure. */
static void rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		step_done(s, ST_ROLLBACK);
}

/* Version 1 -> 2: the tags table gains extra ("{}" for the groups stored
 * before). SQLite cannot change a UNIQUE constraint in place, so the table
 * is rebuilt (its ids kept, so groups rows still point at their tags) with
 * foreign keys off, as SQLite's documented procedure does; the table holds
 * one row per distinct group, so this is quick even under a large history.
 * In one transaction: another process opening the file at once either sees
 * version 1 and waits for the lock, or version 2. */
static int migrate_v1(struct store *s, const char *path, char *err, size_t errlen)
{
	int64_t version = 0;
	int ret = exec_sql(s, "PRAGMA foreign_keys = OFF");

	if (!ret)
		ret = exec_sql(s, "BEGIN IMMEDIATE");
	if (!ret)
		ret = query_int(s, "PRAGMA user_version", &version);
	if (!ret && version == 1)
		ret = exec_sql(s,
			"CREATE TABLE tags_v2 " TAGS_COLUMNS ";"
			"INSERT INTO tags_v2 (id, service, \"commit\", endpoint)"
			"  SELECT id, service, \"commit\", endpoint FROM tags;"
			"DROP TABLE tags;"
			"ALTER TABLE tags_v2 RENAME TO tags;"
			"PRAGMA user_version = 2");
	if (!ret)
		ret = exec_sql(s, "COMMIT");
	if (ret) {
		errmsg__set(err, errlen, "%s: cannot upgrade the history from schema version 1: %s",
			    path, sqlite3_errmsg(s->db));
		exec_sql(s, "ROLLBACK");
	}
	int on = exec_sql(s, "PRAGMA foreign_keys = ON");
	return ret ? ret : on;
}

/* Creates the schema in an empty database, or checks an existing one is ours
 * and not newer. In one transaction, so two processes opening a fresh file
 * at once create it once. */
static int init_schema(struct store *s, const char *path, char *err, size_t errlen)
{
	int64_t version = 0, app_id = 0, objects = 0;
	int ret;

	ret = exec_sql(s, "BEGIN IMMEDIATE");
	if (ret) {
		errmsg__set(err, errlen, "%s: cannot lock the database: %s", path,
			sqlite3_errmsg(s->db));
		return ret;
	}
	if ((ret = query_int(s, "PRAGMA user_version", &version)) ||
	    (ret = query_int(s, "PRAGMA application_id", &app_id)) ||
	    (ret = query_int(s, "SELECT count(*) FROM sqlite_schema", &objects))) {
		errmsg__set(err, errlen, "%s: cannot read the schema: %s", path,
			sqlite3_errmsg(s->db));
		goto fail;
	}
	if (objects == 0 && version == 0 && app_id == 0) {
		char pragmas[128];

		snprintf(pragmas, sizeof(pragmas), "PRAGMA application_id = %d; PRAGMA user_version = %d",
			 STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
		if ((ret = exec_sql(s, SCHEMA_SQL)) || (ret = exec_sql(s, pragmas))) {
			errmsg__set(err, errlen, "%s: cannot create the schema: %s", path,
				sqlite3_errmsg(s->db));
			goto fail;
		}
	} else if (app_id != STORE_APPLICATION_ID) {
		errmsg__set(err, errlen,
			"%s is an SQLite database but not a dynoprof history (application_id %#llx)",
			path, (unsigned long long)app_id);
		ret = -EINVAL;
		goto fail;
	} else if (version > STORE_SCHEMA_VERSION) {
		errmsg__set(err, errlen,
			"%s has history schema version %lld, newer than this dynoprof supports (%d): "
			"upgrade dynoprof or use another path",
			path, (long long)version, STORE_SCHEMA_VERSION);
		ret = -ENOTSUP;
		goto fail;
	} else if (version < 1) {
		errmsg__set(err, errlen, "%s: invalid history schema version %lld", path,
			(long long)version);
		ret = -EINVAL;
		goto fail;
	} else if (version < STORE_SCHEMA_VERSION) {
		exec_sql(s, "ROLLBACK"); /* nothing written: migrate_v1 locks on its own */
		ret = migrate_v1(s, path, err, errlen);
		return ret ? ret : init_schema(s, path, err, errlen);
	}
	if ((ret = exec_sql(s, CHECKS_SQL))) {
		errmsg__set(err, errlen, "%s: cannot create the checks table: %s", path,
			sqlite3_errmsg(s->db));
		goto fail;
	}
	ret = exec_sql(s, "COMMIT");
	if (ret) {
		errmsg__set(err, errlen, "%s: cannot commit the schema: %s", path,
			sqlite3_errmsg(s->db));
		goto fail;
	}
	return 0;
fail:
	exec_sql(s, "ROLLBACK");
	return ret;
}

/* Sets the connection's pragmas; auto_vacuum must precede the first table. */
static int configure(struct store *s, const char *path, char *err, size_t errlen)
{
	char pragmas[256];
	sqlite3_stmt *st;
	const char *mode;
	int ret, rc;

	/* The first read of the file: an SQLite header is checked here. */
	ret = exec_sql(s, "SELECT count(*) FROM sqlite_schema");
	if (ret) {
		int code = sqlite3_errcode(s->db);

		if (code == SQLITE_NOTADB)
			errmsg__set(err, errlen, "%s is not an SQLite database (not a dynoprof history)",
				path);
		else
			errmsg__set(err, errlen, "%s: cannot read: %s", path, sqlite3_errmsg(s->db));
		return ret;
	}
	ret = exec_sql(s, "PRAGMA auto_vacuum = INCREMENTAL");
	if (ret)
		goto fail;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		ret = sqlite_to_errno(rc);
		goto fail;
	}
	rc = sqlite3_step(st);
	mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	if (!mode || strcmp(mode, "wal") != 0) {
		errmsg__set(err, errlen, "%s: cannot use WAL journaling (%s)", path,
			mode ? mode : sqlite3_errmsg(s->db));
		ret = rc == SQLITE_ROW ? -ENOTSUP : (sqlite_to_errno(rc) ?: -EIO);
		sqlite3_finalize(st);
		return ret;
	}
	sqlite3_finalize(st);
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
		 " PRAGMA journal_size_limit = %lld",
		 (long long)STORE_WAL_SIZE_LIMIT);
	ret = exec_sql(s, pragmas);
	if (ret)
		goto fail;
	return 0;
fail:
	errmsg__set(err, errlen, "%s: cannot configure the database: %s", path, sqlite3_errmsg(s->db));
	return ret;
}

/* Sizes the WAL's part of max_bytes: its reserve, the size it is truncated
 * to, and the auto-checkpoint point (both of which default to far more than
 * a small max_bytes). */
static int wal_setup(struct store *s, const char *path)
{
	char sql[160];
	int64_t reserve = s->max_bytes / 4;

	if (reserve < STORE_WAL_RESERVE_MIN)
		reserve = STORE_WAL_RESERVE_MIN;
	if (reserve > STORE_WAL_RESERVE_MAX)
		reserve = STORE_WAL_RESERVE_MAX;
	s->wal_reserve = reserve;
	if (asprintf(&s->wal_path, "%s-wal", path) < 0) {
		s->wal_path = NULL;
		return -ENOMEM;
	}
	snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %lld; PRAGMA wal_autocheckpoint = %lld",
		 (long long)reserve, (long long)(reserve / 2 / (s->page_size > 0 ? s->page_size : 4096) ?: 1));
	return exec_sql(s, sql);
}

/* Bytes of the WAL file now (0 when absent or unreadable). */
static int64_t wal_bytes(const struct store *s)
{
	struct stat st;

	return s->wal_path && !stat(s->wal_path, &st) ? (int64_t)st.st_size : 0;
}

/* Copies the WAL into the database and truncates it to 0 bytes; the
 * database file shrinks to its pages in use (incremental_vacuum's freeing
 * takes effect here). Fails with -EBUSY while another process reads. */
static int wal_truncate(struct store *s)
{
	int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	return sqlite_to_errno(rc);
}

static void store_free(struct store *s)
{
	free(s->wal_path);
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

struct store *store__open(const char *path, const struct store_opts *opts, char *err,
			  size_t errlen)
{
	pthread_mutexattr_t attr;
	struct store *s;
	int ret, rc;

	errmsg__set(err, errlen, "%s", "");
	if (!path || !*path || (opts && (opts->max_age_s < 0 || opts->max_bytes < 0))) {
		errmsg__set(err, errlen, "invalid history store path or options");
		errno = EINVAL;
		return NULL;
	}
	/* Profiles name the host's code: the file (and SQLite's -wal and -shm,
	 * which copy its mode) is private to the owner. Opening it here also
	 * gives plain messages for the usual failures (EACCES, ENOENT, EISDIR). */
	{
		/* Only a regular file (never /dev/null: SQLite would create
		 * /dev/null-journal), reached through no link another user could
		 * have planted, in a directory only root or we can change (SQLite
		 * creates PATH-wal, -shm and -journal there by name). */
		ret = outfile__check(path, OUTFILE_PRIVATE_DIR, err, errlen);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);

		if (fd < 0) {
			ret = errno;
			errmsg__set(err, errlen, "cannot open %s: %s", path, strerror(ret));
			errno = ret;
			return NULL;
		}
		close(fd);
	}

	s = calloc(1, sizeof(*s));
	if (!s) {
		errmsg__set(err, errlen, "%s: out of memory", path);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&s->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	s->max_age_s = opts && opts->max_age_s ? opts->max_age_s : STORE_DEFAULT_MAX_AGE_S;
	s->max_bytes = opts && opts->max_bytes ? opts->max_bytes : STORE_DEFAULT_MAX_BYTES;

	/* NOMUTEX: s->lock already serialises every call on the connection. */
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int sys = s->db ? sqlite3_system_errno(s->db) : 0;

		ret = sys ? -sys : (sqlite_to_errno(rc) ?: -EIO);
		errmsg__set(err, errlen, "cannot open %s: %s", path,
			s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	ret = configure(s, path, err, errlen);
	if (ret)
		goto fail;
	ret = init_schema(s, path, err, errlen);
	if (ret)
		goto fail;
	for (int i = 0; i < ST__COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
					&s->stmts[i], NULL);
		if (rc != SQLITE_OK) {
			errmsg__set(err, errlen, "%s: cannot prepare a query: %s", path,
				sqlite3_errmsg(s->db));
			ret = sqlite_to_errno(rc) ?: -EIO;
			goto fail;
		}
	}
	if ((ret = query_int(s, "PRAGMA page_size", &s->page_size)) ||
	    (ret = query_int(s, "SELECT coalesce(max(end_ns - start_ns), 0) FROM windows",
			     &s->max_span_ns))) {
		errmsg__set(err, errlen, "%s: cannot read: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if ((ret = wal_setup(s, path))) {
		errmsg__set(err, errlen, "%s: cannot configure the WAL: %s", path,
			    ret == -ENOMEM ? "out of memory" : sqlite3_errmsg(s->db));
		goto fail;
	}
	return s;
fail:
	store_free(s);
	errno = -ret;
	return NULL;
}

void store__close(struct store *s)
{
	if (!s)
		return;
	/* Keeps the planner's statistics current; analysis_limit bounds the
	 * work to a few pages per index, so closing a 1 GiB history stays fast. */
	exec_sql(s, "PRAGMA analysis_limit = 400; PRAGMA optimize");
	store_free(s);
}

/* Finds or adds the tag triple; *tag_id gets its id. Inside the put's
 * transaction. */
static int intern_tag(struct store *s, const struct store_group *g, int64_t *tag_id)
{
	const char *fields[4] = { g->service, g->commit, g->endpoint, g->tags };
	const char *none[4] = { "", "", "", "{}" };
	sqlite3_stmt *find = s->stmts[ST_FIND_TAG], *insert = s->stmts[ST_INSERT_TAG];
	int ret;

	/* An empty extra is the empty set: one spelling per group. */
	if (fields[3] && !*fields[3])
		fields[3] = NULL;
	for (int i = 0; i < 4; i++)
		sqlite3_bind_text(find, i + 1, fields[i] ? fields[i] : none[i], -1, SQLITE_STATIC);
	ret = step_row(s, ST_FIND_TAG, tag_id, 1);
	if (ret)
		return ret < 0 ? ret : 0;
	for (int i = 0; i < 4; i++)
		sqlite3_bind_text(insert, i + 1, fields[i] ? fields[i] : none[i], -1, SQLITE_STATIC);
	ret = step_done(s, ST_INSERT_TAG);
	if (!ret && sqlite3_changes(s->db) != 1)
		ret = -EINVAL; /* extra is not a JSON object */
	if (!ret)
		*tag_id = sqlite3_last_insert_rowid(s->db);
	return ret;
}

static int insert_window(struct store *s, const struct store_window *w, int64_t *window_id)
{
	sqlite3_stmt *st = s->stmts[ST_INSERT_WINDOW];
	int ret;

	ret = step_done(s, ST_BEGIN);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, w->start_ns);
	sqlite3_bind_int64(st, 2, w->end_ns);
	sqlite3_bind_int64(st, 3, clamp_u64(w->samples));
	if (w->pprof_len)
		sqlite3_bind_blob64(st, 4, w->pprof_gz, w->pprof_len, SQLITE_STATIC);
	else
		sqlite3_bind_zeroblob(st, 4, 0);
	ret = step_done(s, ST_INSERT_WINDOW);
	if (ret)
		goto fail;
	*window_id = sqlite3_last_insert_rowid(s->db);

	for (size_t i = 0; i < w->ngroups; i++) {
		const struct store_group *g = &w->groups[i];
		sqlite3_stmt *gst = s->stmts[ST_INSERT_GROUP];
		int64_t tag_id = 0;

		ret = intern_tag(s, g, &tag_id);
		if (ret)
			goto fail;
		sqlite3_bind_int64(gst, 1, *window_id);
		sqlite3_bind_int64(gst, 2, tag_id);
		sqlite3_bind_int64(gst, 3, clamp_u64(g->samples));
		sqlite3_bind_int64(gst, 4, clamp_u64(g->cpu_ns));
		sqlite3_bind_int64(gst, 5, clamp_u64(g->instructions));
		sqlite3_bind_int64(gst, 6, clamp_u64(g->requests));
		ret = step_done(s, ST_INSERT_GROUP);
		if (ret)
			goto fail;
	}
	ret = step_done(s, ST_COMMIT);
	if (ret)
		goto fail;
	return 0;
fail:
	rollback(s);
	return ret;
}

/* Deletes windows by age, then oldest-first while the pages in use exceed
 * max_bytes less the WAL's part (its reserve, or its size when larger);
 * keep_id (the window just written) is never deleted, so a window
 * that alone exceeds max_bytes stays until the next one replaces it. Each
 * batch is its own transaction. Freed pages go back to the file system via
 * incremental_vacuum (the file shrinks at the next checkpoint). */
static int apply_retention(struct store *s, int64_t keep_id)
{
	bool deleted = false;
	int ret = 0;
	int64_t wal = wal_bytes(s), budget;

	budget = s->max_bytes - (wal > s->wal_reserve ? wal : s->wal_reserve);
	if (budget < s->max_bytes / 2) /* a WAL another process pins must not eat it all */
		budget = s->max_bytes / 2;

	if (s->max_age_s <= INT64_MAX / NS_PER_S) {
		int64_t cutoff = sub_saturating(clock_ns(CLOCK_REALTIME), s->max_age_s * NS_PER_S);
		int n;

		do {
			sqlite3_stmt *st = s->stmts[ST_DELETE_AGED];

			sqlite3_bind_int64(st, 1, cutoff);
			sqlite3_bind_int64(st, 2, keep_id);
			sqlite3_bind_int64(st, 3, STORE_RETENTION_BATCH);
			ret = step_done(s, ST_DELETE_AGED);
			n = ret ? 0 : sqlite3_changes(s->db);
			deleted |= n > 0;
		} while (n == STORE_RETENTION_BATCH);
	}

	while (!ret) {
		int64_t used = 0, counts[2] = { 0, 0 }, count, avg, batch;
		sqlite3_stmt *st = s->stmts[ST_DELETE_OLDEST];

		ret = used_bytes(s, &used);
		if (ret || used <= budget)
			break;
		ret = step_ints(s, ST_COUNT_WINDOWS, counts, 2);
		count = counts[0];
		if (ret || count <= 1)
			break;
		/* Delete about as many windows as the excess holds, on average. */
		avg = used / count ?: 1;
		batch = (used - budget) / avg + 1;
		if (batch > STORE_RETENTION_BATCH)
			batch = STORE_RETENTION_BATCH;
		if (batch > count - 1)
			batch = count - 1;
		sqlite3_bind_int64(st, 1, keep_id);
		sqlite3_bind_int64(st, 2, batch);
		ret = step_done(s, ST_DELETE_OLDEST);
		if (ret || sqlite3_changes(s->db) == 0)
			break;
		deleted = true;
	}

	if (deleted) {
		int err = step_done(s, ST_DELETE_UNUSED_TAGS);

		ret = ret ?: err;
		err = exec_sql(s, "PRAGMA incremental_vacuum");
		ret = ret ?: err;
	}
	if (deleted || wal_bytes(s) > s->wal_reserve / 2) {
		int err = wal_truncate(s);

		ret = ret ?: err;
	}
	return ret;
}

int store__put_window(struct store *s, const struct store_window *w)
{
	int64_t window_id = 0, span;
	int ret;

	if (!s || !w || w->end_ns <= w->start_ns || (w->pprof_len && !w->pprof_gz) ||
	    (w->ngroups && !w->groups))
		return -EINVAL;
	if (__builtin_sub_overflow(w->end_ns, w->start_ns, &span))
		return -ERANGE;
	ret = store_lock(s);
	if (ret)
		return ret;
	ret = insert_window(s, w, &window_id);
	if (!ret) {
		if (span > s->max_span_ns)
			s->max_span_ns = span;
		/* The window is committed: a retention failure (e.g. -EBUSY from
		 * another process) does not fail the put; the next put retries. */
		apply_retention(s, window_id);
	}
	store_unlock(s);
	return ret;
}

/* Binds the overlap parameters ?1..?3 of a range query. */
static void bind_range(struct store *s, sqlite3_stmt *st, int64_t from_ns, int64_t to_ns)
{
	sqlite3_bind_int64(st, 1, sub_saturating(from_ns, s->max_span_ns));
	sqlite3_bind_int64(st, 2, to_ns);
	sqlite3_bind_int64(st, 3, from_ns);
}

/* Binds the tag filters ?4..?6 and the other tags' ?8 (NULL or "" binds
 * NULL: any). */
static void bind_filters(sqlite3_stmt *st, const char *service, const char *commit,
			 const char *endpoint, const char *tags)
{
	const char *filters[3] = { service, commit, endpoint };

	for (int i = 0; i < 3; i++) {
		if (filters[i])
			sqlite3_bind_text(st, 4 + i, filters[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 4 + i);
	}
	if (tags && *tags)
		sqlite3_bind_text(st, 8, tags, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 8);
}

/* Steps a bound row query to the end or until visit returns non-zero;
 * resets it. Returns visit's value, 0, or -errno. */
static int run_rows(sqlite3_stmt *st, int (*visit)(sqlite3_stmt *st, void *arg), void *arg)
{
	int rc, ret = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ret = visit(st, arg);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE) {
		/* sum() refuses to wrap: a figure too large for int64 */
		if (rc == SQLITE_ERROR &&
		    strstr(sqlite3_errmsg(sqlite3_db_handle(st)), "integer overflow"))
			ret = -ERANGE;
		else
			ret = sqlite_to_errno(rc) ?: -EIO;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

/* A window copied out of the database, to call back without the lock. */
struct window_copy {
	int64_t start_ns;  /* its start */
	int64_t end_ns;    /* its end */
	void *pprof;       /* its blob (malloc'ed; NULL when empty) */
	size_t len;        /* the blob's bytes */
};

/* Copies the next chunk of windows of a foreach (after the cursor) into
 * chunk[]; *n gets how many, the cursor moves to the last. 0 or -errno. */
static int read_window_chunk(struct store *s, int64_t from_ns, int64_t to_ns, size_t limit,
			     int64_t cursor[3], struct window_copy *chunk, size_t *n)
{
	sqlite3_stmt *st = s->stmts[ST_FOREACH];
	int64_t lo = sub_saturating(from_ns, s->max_span_ns);
	size_t bytes = 0;
	int rc = SQLITE_DONE, ret = 0;

	*n = 0;
	/* Seek to the cursor, not just the range's start: no rescans. */
	sqlite3_bind_int64(st, 1, lo > cursor[0] ? lo : cursor[0]);
	sqlite3_bind_int64(st, 2, to_ns);
	sqlite3_bind_int64(st, 3, from_ns);
	sqlite3_bind_int64(st, 4, (int64_t)limit);
	for (int i = 0; i < 3; i++)
		sqlite3_bind_int64(st, 5 + i, cursor[i]);
	while (bytes < FOREACH_CHUNK_BYTES && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct window_copy *c = &chunk[*n];
		const void *blob = sqlite3_column_blob(st, 3);

		c->len = (size_t)sqlite3_column_bytes(st, 3);
		c->pprof = NULL;
		if (c->len) {
			c->pprof = malloc(c->len);
			if (!c->pprof) {
				ret = -ENOMEM;
				break;
			}
			memcpy(c->pprof, blob, c->len);
		}
		c->start_ns = cursor[0] = sqlite3_column_int64(st, 0);
		c->end_ns = cursor[1] = sqlite3_column_int64(st, 1);
		cursor[2] = sqlite3_column_int64(st, 2);
		bytes += c->len;
		(*n)++;
	}
	if (!ret && bytes < FOREACH_CHUNK_BYTES && rc != SQLITE_DONE)
		ret = sqlite_to_errno(rc) ?: -EIO;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return ret;
}

int store__count_range(struct store *s, int64_t from_ns, int64_t to_ns, int64_t *windows)
{
	if (!s || !windows)
		return -EINVAL;
	*windows = 0;
	if (from_ns >= to_ns)
		return 0;
	int ret = store_lock(s);
	if (ret)
		return ret;
	bind_range(s, s->stmts[ST_COUNT_RANGE], from_ns, to_ns);
	ret = step_ints(s, ST_COUNT_RANGE, windows, 1);
	store_unlock(s);
	return ret;
}

int store__foreach_window(struct store *s, int64_t from_ns, int64_t to_ns, size_t max_windows,
			  int (*fn)(void *ctx, int64_t start_ns, int64_t end_ns,
				    const void *pprof_gz, size_t len),
			  void *ctx)
{
	struct window_copy chunk[FOREACH_CHUNK_WINDOWS];
	int64_t cursor[3] = { INT64_MIN, INT64_MIN, INT64_MIN };
	size_t visited = 0;
	int64_t in_range = 0;
	int ret = 0;

	if (!s || !fn)
		return -EINVAL;
	if (from_ns >= to_ns)
		return 0;
	/* All of the range or nothing: never a silently partial answer. */
	ret = store__count_range(s, from_ns, to_ns, &in_range);
	if (ret)
		return ret;
	if ((uint64_t)in_range > max_windows)
		return -E2BIG;
	/* Copy a chunk under the lock, call back without it: a slow reader
	 * (decoding thousands of profiles) never holds up the writer for long,
	 * and fn may call the store. Windows are immutable, so the only effect
	 * of a writer between chunks is retention removing a window not yet
	 * visited (skipped) or a new window in range (visited). */
	while (!ret && visited < max_windows) {
		size_t limit = max_windows - visited, n = 0, i;

		if (limit > FOREACH_CHUNK_WINDOWS)
			limit = FOREACH_CHUNK_WINDOWS;
		ret = store_lock(s);
		if (ret)
			return ret;
		ret = read_window_chunk(s, from_ns, to_ns, limit, cursor, chunk, &n);
		store_unlock(s);
		if (!ret && n == 0)
			break;
		for (i = 0; i < n && !ret; i++)
			ret = fn(ctx, chunk[i].start_ns, chunk[i].end_ns, chunk[i].pprof, chunk[i].len);
		for (i = 0; i < n; i++)
			free(chunk[i].pprof);
		visited += n;
	}
	return ret;
}

struct group_visit {
	int (*fn)(void *ctx, const struct store_group *g);  /* store__groups' callback */
	int (*series_fn)(void *ctx, int64_t start_ns,
			 const struct store_group *g);       /* or store__group_series' */
	int (*bucket_fn)(void *ctx, int64_t bucket,
			 const struct store_group *g);       /* or store__group_buckets' */
	void *ctx;                                           /* the callback's context */
	const char *service;   /* series: the filters, reported as the group's names */
	const char *commit;    /* ditto */
	const char *endpoint;  /* ditto */
	const char *tags;      /* ditto: the other tags' filter */
};

/* A grouped row's first eight columns: service, commit, endpoint, the sums,
 * extra. 0 or -ENOMEM. */
static int read_group_row(sqlite3_stmt *st, struct store_group *g)
{
	*g = (struct store_group){
		.service = (const char *)sqlite3_column_text(st, 0),
		.commit = (const char *)sqlite3_column_text(st, 1),
		.endpoint = (const char *)sqlite3_column_text(st, 2),
		.samples = column_u64(st, 3),
		.cpu_ns = column_u64(st, 4),
		.instructions = column_u64(st, 5),
		.requests = column_u64(st, 6),
		.tags = (const char *)sqlite3_column_text(st, 7),
	};
	if (!g->service || !g->commit || !g->endpoint || !g->tags)
		return -ENOMEM; /* the only way a NOT NULL text column reads NULL */
	return 0;
}

static int visit_group(sqlite3_stmt *st, void *arg)
{
	struct group_visit *v = arg;
	struct store_group g;
	int ret = read_group_row(st, &g);

	return ret ? ret : v->fn(v->ctx, &g);
}

static int visit_series(sqlite3_stmt *st, void *arg)
{
	struct group_visit *v = arg;
	struct store_group g = {
		.service = v->service,
		.commit = v->commit,
		.endpoint = v->endpoint,
		.tags = v->tags,
		.samples = column_u64(st, 1),
		.cpu_ns = column_u64(st, 2),
		.instructions = column_u64(st, 3),
		.requests = column_u64(st, 4),
	};

	return v->series_fn(v->ctx, sqlite3_column_int64(st, 0), &g);
}

/* store__group_buckets' row: visit_group's columns plus the bucket. */
static int visit_bucket(sqlite3_stmt *st, void *arg)
{
	struct group_visit *v = arg;
	struct store_group g;
	int ret = read_group_row(st, &g);

	return ret ? ret : v->bucket_fn(v->ctx, sqlite3_column_int64(st, 8), &g);
}

/* Runs a group query (ST_GROUPS, ST_SERIES, or ST_BUCKETS with step_ns > 0)
 * over [from_ns, to_ns) with the tag filters, visiting each row with visit
 * under the lock. */
static int group_query(struct store *s, enum stmt_id id, int64_t from_ns, int64_t to_ns,
		       int64_t step_ns, const char *service, const char *commit,
		       const char *endpoint, const char *tags,
		       int (*visit)(sqlite3_stmt *st, void *ctx), struct group_visit *v)
{
	if (from_ns >= to_ns)
		return 0;
	int ret = store_lock(s);
	if (ret)
		return ret;
	sqlite3_stmt *st = s->stmts[id];
	bind_range(s, st, from_ns, to_ns);
	bind_filters(st, service, commit, endpoint, tags);
	if (step_ns > 0)
		sqlite3_bind_int64(st, 7, step_ns);
	ret = run_rows(st, visit, v);
	store_unlock(s);
	return ret;
}

int store__groups(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
		  const char *commit, const char *endpoint, const char *tags,
		  int (*fn)(void *ctx, const struct store_group *g), void *ctx)
{
	struct group_visit v = { .fn = fn, .ctx = ctx };

	if (!s || !fn)
		return -EINVAL;
	return group_query(s, ST_GROUPS, from_ns, to_ns, 0, service, commit, endpoint, tags,
			   visit_group, &v);
}

int store__group_series(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
			const char *commit, const char *endpoint, const char *tags,
			int (*fn)(void *ctx, int64_t start_ns, const struct store_group *g),
			void *ctx)
{
	struct group_visit v = {
		.series_fn = fn, .ctx = ctx,
		.service = service, .commit = commit, .endpoint = endpoint, .tags = tags,
	};

	if (!s || !fn)
		return -EINVAL;
	return group_query(s, ST_SERIES, from_ns, to_ns, 0, service, commit, endpoint, tags,
			   visit_series, &v);
}

int store__group_buckets(struct store *s, int64_t from_ns, int64_t to_ns, int64_t step_ns,
			 const char *service, const char *commit, const char *endpoint,
			 const char *tags,
			 int (*fn)(void *ctx, int64_t bucket, const struct store_group *g),
			 void *ctx)
{
	struct group_visit v = { .bucket_fn = fn, .ctx = ctx };

	if (!s || !fn || step_ns <= 0)
		return -EINVAL;
	return group_query(s, ST_BUCKETS, from_ns, to_ns, step_ns, service, commit, endpoint,
			   tags, visit_bucket, &v);
}

int store__stats(struct store *s, int64_t *bytes, int64_t *windows, int64_t *oldest_ns)
{
	int64_t used = 0, counts[2] = { 0, 0 };
	int ret;

	if (!s)
		return -EINVAL;
	ret = store_lock(s);
	if (ret)
		return ret;
	ret = used_bytes(s, &used);
	if (!ret)
		ret = step_ints(s, ST_COUNT_WINDOWS, counts, 2);
	store_unlock(s);
	if (ret)
		return ret;
	if (bytes)
		*bytes = used;
	if (windows)
		*windows = counts[0];
	if (oldest_ns)
		*oldest_ns = counts[1];
	return 0;
}

static int check_rows(void *arg, int ncols, char **values, char **names)
{
	int *bad = arg;

	(void)names;
	/* integrity_check's single "ok", or any row of foreign_key_check */
	if (ncols != 1 || !values[0] || strcmp(values[0], "ok") != 0)
		*bad = 1;
	return 0;
}

int store__check(struct store *s)
{
	int bad = 0, rc, ret;

	if (!s)
		return -EINVAL;
	ret = store_lock(s);
	if (ret)
		return ret;
	rc = sqlite3_exec(s->db, "PRAGMA integrity_check; PRAGMA foreign_key_check", check_rows,
			  &bad, NULL);
	store_unlock(s);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc) ?: -EIO;
	return bad ? -EIO : 0;
}

int store__put_check(struct store *s, int64_t checked_ns, const char *json)
{
	sqlite3_stmt *st = NULL;
	int ret = store_lock(s);
	if (ret)
		return ret;
	int rc = sqlite3_prepare_v2(s->db, "INSERT INTO checks (checked_ns, json) "
				    "VALUES (?1, ?2)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, checked_ns);
		sqlite3_bind_text(st, 2, json, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	/* Same retention by age as windows; checks are small, so no size rule. */
	if (rc == SQLITE_OK && sqlite3_prepare_v2(s->db, "DELETE FROM checks WHERE checked_ns < ?1",
						  -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, checked_ns - s->max_age_s * NS_PER_S);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	store_unlock(s);
	return rc == SQLITE_OK ? 0 : (sqlite_to_errno(rc) ?: -EIO);
}

int store__foreach_check(struct store *s, size_t limit,
			 int (*fn)(void *ctx, int64_t checked_ns, const char *json), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int ret = store_lock(s);
	if (ret)
		return ret;
	int rc = sqlite3_prepare_v2(s->db, "SELECT checked_ns, json FROM checks "
				    "ORDER BY checked_ns DESC, id DESC LIMIT ?1", -1, &st, NULL);
	if (rc == SQLITE_OK && st) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && !ret)
			ret = fn(ctx, sqlite3_column_int64(st, 0),
				 (const char *)sqlite3_column_text(st, 1));
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	store_unlock(s);
	if (ret)
		return ret;
	return rc == SQLITE_OK ? 0 : (sqlite_to_errno(rc) ?: -EIO);
}

int store__commit_spans(struct store *s, int64_t from_ns,
			int (*fn)(void *ctx, const char *service, const char *commit,
				  int64_t first_ns, int64_t last_ns),
			void *ctx)
{
	sqlite3_stmt *st = NULL;
	if (!s || !fn)
		return -EINVAL;
	int ret = store_lock(s);
	if (ret)
		return ret;
	int rc = sqlite3_prepare_v2(s->db,
		"SELECT t.service, t.\"commit\", min(w.start_ns), max(w.end_ns)"
		" FROM windows w JOIN groups g ON g.window_id = w.id JOIN tags t ON t.id = g.tag_id"
		" WHERE w.end_ns > ?1 AND g.samples > 0 AND t.service != '' AND t.\"commit\" != ''"
		" GROUP BY t.service, t.\"commit\" ORDER BY t.service, min(w.start_ns)",
		-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, from_ns);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && !ret) {
			const char *service = (const char *)sqlite3_column_text(st, 0);
			const char *commit = (const char *)sqlite3_column_text(st, 1);
			ret = service && commit ? fn(ctx, service, commit, sqlite3_column_int64(st, 2),
						     sqlite3_column_int64(st, 3)) : -ENOMEM;
		}
		if (rc == SQLITE_DONE || rc == SQLITE_ROW)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	store_unlock(s);
	if (ret)
		return ret;
	return rc == SQLITE_OK ? 0 : (sqlite_to_errno(rc) ?: -EIO);
}
