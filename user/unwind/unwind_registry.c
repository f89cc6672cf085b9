// SPDX-License-Identifier: MIT
#include "unwind/unwind_registry.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "symbolize/elf_symtab.h"
#include "symbolize/map_path.h"
#include "symbolize/proc_maps.h"
#include "unwind/cfi_table.h"
#include "util/hashmap.h"

/* Loadable segments kept per file (for a mapping's bias). */
#define FILE_SEGS 8
/* A process whose stacks miss a mapping (a library loaded since it was read)
 * is read again at once; while that finds nothing new (JIT code), the wait
 * doubles from RESCAN_MIN_NS up to RESCAN_MAX_NS. */
#define RESCAN_MIN_NS 50000000ull
#define RESCAN_MAX_NS 10000000000ull
/* A new process's mappings change while the dynamic loader maps its
 * libraries, often after its first scan: it is read again after
 * SETTLE_MIN_NS, then twice as long, until they stop changing (up to
 * SETTLE_MAX_NS). Else a stack reaching a library not read yet would wait
 * for the ring buffer's batching (up to 100 ms) to report the miss. */
#define SETTLE_MIN_NS 2000000ull
#define SETTLE_MAX_NS 64000000ull

/* One loadable segment of a file. */
struct load_seg {
	uint64_t offset; /* p_offset */
	uint64_t vaddr;  /* p_vaddr */
	uint64_t filesz; /* p_filesz */
};

/* A table in BPF: one file's rows, shared by every file with its build-id
 * (the worker's alone). */
struct unwind_table {
	uint32_t slot;         /* its slot in unwind_tables */
	uint32_t rows;         /* its rows (counted against the budget) */
	uint64_t last_used_ns; /* CLOCK_MONOTONIC a scan last published it (LRU) */
	uint64_t scan_gen;     /* the scan that last used it: never evicted by it */
	bool pinned;           /* never evicted (the vdso, in every process) */
	char id[ELF_SYMTAB_BUILD_ID_MAX + 72]; /* key in tables_by_id: build-id hex, else "f:dev:ino" */
};

/* A file as the unwinder knows it (the worker's alone). */
struct unwind_file {
	uint32_t kind;       /* enum unwind_map_kind */
	struct unwind_table *table; /* UNWIND_MAP_CFI: its table (an eviction of
				     * it drops this file from the cache) */
	uint64_t retry_exits;/* over the budget: tried again once the exits seen
			      * differ from this (room may be evictable); else ~0 */
	uint32_t nsegs;      /* entries in segs */
	struct load_seg segs[FILE_SEGS]; /* its PT_LOAD segments */
};

/* The tables a process's last publication uses (the worker's alone): what
 * eviction must spare while the process lives. */
struct holder {
	uint32_t n;                        /* entries in slots */
	uint16_t slots[UNWIND_MAX_MAPS];   /* tables' slots */
};
_Static_assert(UNWIND_MAX_TABLES <= 65536, "slots fit holder.slots");

/* A tracked process (under lock). */
struct proc_entry {
	uint64_t scanned_ns; /* CLOCK_MONOTONIC of its last scan; 0: never */
	uint64_t maps_hash;  /* digest of the mappings its last scan published */
	uint64_t backoff_ns; /* wait after a scan before a miss scans again */
	bool queued;         /* a request for it is in LANE_NEW or LANE_FIRST */
	bool parked;         /* its scan waits for a build: in a parked lane */
	bool fresh;          /* exec'd while tracked (a new command): its requests
			      * and its builds go first */
	char waits_for[64];  /* parked: the key of the file whose build it waits
			      * for ("": any, the builds' queue was full) */
	bool later;          /* in LANE_LATER, due at due_ns (CLOCK_MONOTONIC) */
	bool settled;        /* fresh: its mappings stopped changing */
	uint64_t due_ns;     /* see later */
	uint64_t settle_ns;  /* fresh: the last wait before reading it again */
	uint32_t gen;        /* unwind_proc.gen of its last publication (0: none) */
};

/* The worker's queues. It scans (reading /proc/PID/maps, never building a
 * table) LANE_NEW's processes first, then LANE_FIRST's. A scan that meets a
 * file without a table queues its build for the builder thread and is
 * parked until that build is placed; the builder builds a fresh process's
 * tables first. So a new process whose tables exist waits for no build, and
 * one that needs its own waits for them and at most the one build under
 * way, never for the host's backlog. */
enum lane {
	LANE_NEW,        /* processes exec'd while tracked (fresh), FIFO */
	LANE_FIRST,      /* other processes' first samples, and misses, FIFO */
	LANE_NEW_PARKED, /* fresh scans waiting for a build (not taken) */
	LANE_PARKED,     /* other scans waiting for a build (not taken) */
	LANE_LATER,      /* fresh processes read again once due (not taken) */
	LANE_COUNT,
};

/* Table builds queued for the builder thread at once (each holds its file
 * open); a scan that finds none free waits for any build. */
#define BUILD_JOBS 128

/* A table build: queued by the worker (JOB_QUEUED), built and placed by the
 * builder (JOB_BUILDING, then JOB_FREE). */
enum job_state { JOB_FREE, JOB_QUEUED, JOB_BUILDING };

struct build_job {
	enum job_state state;      /* under lock; the rest belongs to whoever
				    * the state says */
	bool fresh;                /* for a fresh process: built first */
	uint64_t seq;              /* order queued (the oldest built first) */
	int fd;                    /* the file (closed by the builder) */
	struct unwind_file *f;     /* its entry, segments read */
	char key[64];              /* f's key in files */
	char id[ELF_SYMTAB_BUILD_ID_MAX + 72]; /* the table's id */
};

/* A ring of pids. */
struct pid_ring {
	uint32_t pids[UNWIND_QUEUE]; /* the ring */
	size_t head, len;            /* its first entry and length */
};

struct unwind_registry {
	struct unwind_registry_ops ops; /* into BPF */
	void *ctx;                   /* theirs */
	pthread_t worker;            /* builds tables and publishes */
	bool worker_started;         /* worker is joinable */
	pthread_mutex_t state;       /* guards the tables and files (after the lock's
				      * part): held by the worker's scans and the
				      * builder's placements; taken before lock */
	pthread_mutex_t lock;        /* guards what follows up to the tables' */
	pthread_cond_t wake;         /* the worker: a request, or stop */
	pthread_cond_t idle;         /* drain: the queue emptied */
	struct pid_ring lanes[LANE_COUNT]; /* pids to (re)scan, by enum lane */
	bool busy;                   /* the worker is scanning a pid */
	pid_t scanning;              /* that pid (with busy) */
	bool scan_fresh;             /* that scan is a fresh process's */
	bool scan_gave_way;          /* that scan waits for a build (the worker's) */
	char scan_waits_for[64];     /* for that file's (the worker's) */
	pthread_t builder;           /* builds the queued tables, one at a time */
	bool builder_started;        /* builder is joinable */
	pthread_cond_t build_wake;   /* the builder: a job, or stop */
	struct build_job jobs[BUILD_JOBS]; /* table builds */
	uint64_t job_seq;            /* jobs queued so far */
	bool stop;                   /* the worker must end */
	struct hashmap *procs;       /* pid -> struct proc_entry */
	struct unwind_registry_stats stats; /* also updated by the worker, under lock */
	uint64_t exits;              /* processes gone (note_exit) */
	/* Under state. */
	struct hashmap *files;       /* "dev:ino" -> struct unwind_file */
	struct unwind_file vdso;     /* this kernel's vdso (kind 0: none) */
	struct hashmap *tables_by_id;/* unwind_table.id -> struct unwind_table */
	struct unwind_table *tables[UNWIND_MAX_TABLES]; /* by slot; NULL: free */
	struct hashmap *holders;     /* pid -> struct holder */
	size_t budget;               /* rows all tables may hold (--unwind-table-mb) */
	size_t rows_used;            /* rows all tables hold */
	uint64_t scan_gen;           /* the scan under way */
	uint32_t publish_gen;        /* the last unwind_proc.gen published */
};

/* Adds pid at the back (or the front) of q; false when q is full. */
static bool ring_push(struct pid_ring *q, uint32_t pid, bool front)
{
	if (q->len >= UNWIND_QUEUE)
		return false;
	if (front) {
		q->head = (q->head + UNWIND_QUEUE - 1) % UNWIND_QUEUE;
		q->pids[q->head] = pid;
	} else {
		q->pids[(q->head + q->len) % UNWIND_QUEUE] = pid;
	}
	q->len++;
	return true;
}

/* Takes q's first pid (q not empty). */
static uint32_t ring_pop(struct pid_ring *q)
{
	uint32_t pid = q->pids[q->head];
	q->head = (q->head + 1) % UNWIND_QUEUE;
	q->len--;
	return pid;
}

/* Queues pid (under lock): a fresh process in LANE_NEW, others in
 * LANE_FIRST. */
static void enqueue(struct unwind_registry *r, pid_t pid, struct proc_entry *p)
{
	if (p->queued)
		return;
	if (!ring_push(&r->lanes[p->fresh ? LANE_NEW : LANE_FIRST], (uint32_t)pid, false)) {
		r->stats.queue_full++;
		return;
	}
	p->queued = true;
	pthread_cond_signal(&r->wake);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Queues LANE_LATER's processes due by now (under lock); returns the
 * earliest due time left, or 0. */
static uint64_t queue_due(struct unwind_registry *r, uint64_t now)
{
	struct pid_ring *q = &r->lanes[LANE_LATER];
	uint64_t next = 0;
	for (size_t n = q->len; n; n--) {
		pid_t pid = (pid_t)ring_pop(q);
		struct proc_entry *p = hashmap__get(r->procs, &pid, sizeof(pid));
		if (!p || !p->later)
			continue;
		if (p->due_ns <= now) {
			p->later = false;
			enqueue(r, pid, p);
		} else {
			ring_push(q, (uint32_t)pid, false);
			if (!next || p->due_ns < next)
				next = p->due_ns;
		}
	}
	return next;
}

static void read_segments(Elf *elf, struct unwind_file *f)
{
	size_t n = 0;
	f->nsegs = 0;
	if (!elf || elf_getphdrnum(elf, &n))
		return;
	for (size_t i = 0; i < n && f->nsegs < FILE_SEGS; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		f->segs[f->nsegs++] = (struct load_seg){ ph.p_offset, ph.p_vaddr, ph.p_filesz };
	}
}

/* Marks in used[] the tables a live process's publication uses; forgets the
 * holders of processes gone. */
static void mark_used(struct unwind_registry *r, uint8_t *used)
{
	size_t cursor = 0, ngone = 0, cap = hashmap__size(r->holders);
	pid_t *gone = cap ? calloc(cap, sizeof(*gone)) : NULL;
	const void *key;
	void *value;
	memset(used, 0, UNWIND_MAX_TABLES);
	pthread_mutex_lock(&r->lock);
	while (hashmap__next(r->holders, &cursor, &key, NULL, &value)) {
		pid_t pid;
		memcpy(&pid, key, sizeof(pid));
		if (!hashmap__get(r->procs, &pid, sizeof(pid))) {
			if (gone && ngone < cap)
				gone[ngone++] = pid;
			continue;
		}
		const struct holder *h = value;
		for (uint32_t i = 0; i < h->n; i++)
			used[h->slots[i]] = 1;
	}
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < ngone; i++)
		free(hashmap__remove(r->holders, &gone[i], sizeof(gone[i])));
	free(gone);
}

/* Drops table t: out of BPF, and every cached file using it (read again and
 * rebuilt when a process maps it next). Returns 0, or -ENOMEM with t kept:
 * without the list of its files, a file would keep pointing at a freed t. */
static int evict(struct unwind_registry *r, struct unwind_table *t)
{
	size_t cursor = 0, n = 0, cap = hashmap__size(r->files);
	char (*keys)[64] = cap ? calloc(cap, sizeof(*keys)) : NULL;
	const void *key;
	size_t len;
	void *value;
	if (cap && !keys)
		return -ENOMEM;
	while (keys && hashmap__next(r->files, &cursor, &key, &len, &value)) {
		const struct unwind_file *f = value;
		if (f->table == t && len < sizeof(keys[0]) && n < cap) {
			memcpy(keys[n], key, len);
			keys[n++][len] = 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(hashmap__remove(r->files, keys[i], strlen(keys[i])));
	free(keys);
	hashmap__remove(r->tables_by_id, t->id, strlen(t->id));
	r->ops.table_drop(r->ctx, t->slot);
	r->tables[t->slot] = NULL;
	r->rows_used -= t->rows;
	pthread_mutex_lock(&r->lock);
	r->stats.evictions++;
	r->stats.rows_evicted += t->rows;
	r->stats.rows_used = r->rows_used;
	pthread_mutex_unlock(&r->lock);
	free(t);
	return 0;
}

/* Makes room for a table of n rows: evicts the least recently used tables no
 * live process's publication uses (nor the scan under way) until n rows and
 * a slot are free. Returns the free slot, or -1 when that cannot be had. */
static int make_room(struct unwind_registry *r, size_t n)
{
	uint8_t used[UNWIND_MAX_TABLES];
	bool marked = false;
	for (;;) {
		int slot = -1;
		for (int i = 0; i < UNWIND_MAX_TABLES && slot < 0; i++)
			if (!r->tables[i])
				slot = i;
		if (slot >= 0 && r->rows_used + n <= r->budget)
			return slot;
		if (!marked) {
			mark_used(r, used);
			marked = true;
		}
		struct unwind_table *lru = NULL;
		for (int i = 0; i < UNWIND_MAX_TABLES; i++) {
			struct unwind_table *t = r->tables[i];
			if (t && !t->pinned && !used[i] && t->scan_gen != r->scan_gen &&
			    (!lru || t->last_used_ns < lru->last_used_ns))
				lru = t;
		}
		if (!lru || evict(r, lru))
			return -1;
	}
}

/* Puts t's rows in a table of their own for f, under id; counts a miss. */
static void place_rows(struct unwind_registry *r, struct unwind_file *f,
		       const struct cfi_table *t, const char *id)
{
	size_t n = cfi_table__count(t);
	int slot = -1;
	struct unwind_table *tab = NULL;
	f->kind = UNWIND_MAP_FP;
	f->retry_exits = ~0ull;
	if (n && n <= r->budget && n < (1u << UNWIND_SEARCH_STEPS))
		slot = make_room(r, n);
	if (slot >= 0 && (tab = calloc(1, sizeof(*tab)))) {
		tab->slot = (uint32_t)slot;
		tab->rows = (uint32_t)n;
		tab->scan_gen = r->scan_gen;
		tab->last_used_ns = now_ns();
		tab->pinned = true; /* its slot and rows held, out of eviction's reach */
		snprintf(tab->id, sizeof(tab->id), "%s", id);
		r->tables[tab->slot] = tab;
		r->rows_used += n;
		/* Into BPF without state: a map-in-map update waits for an RCU
		 * grace period (tens of ms), during which scans go on. */
		pthread_mutex_unlock(&r->state);
		int err = r->ops.table_put(r->ctx, tab->slot, cfi_table__rows(t), n);
		pthread_mutex_lock(&r->state);
		tab->pinned = false;
		if (err || hashmap__put(r->tables_by_id, tab->id, strlen(tab->id), tab, NULL)) {
			r->ops.table_drop(r->ctx, tab->slot);
			r->tables[tab->slot] = NULL;
			r->rows_used -= n;
			free(tab);
			tab = NULL;
		}
	}
	if (!tab) {
		pthread_mutex_lock(&r->lock);
		if (n) {
			r->stats.files_over_budget++;
			f->retry_exits = r->exits;
		} else {
			r->stats.files_no_cfi++;
		}
		pthread_mutex_unlock(&r->lock);
		return;
	}
	f->kind = UNWIND_MAP_CFI;
	f->table = tab;
	pthread_mutex_lock(&r->lock);
	r->stats.files_cfi++;
	r->stats.rows_used = r->rows_used;
	pthread_mutex_unlock(&r->lock);
}

static void count(struct unwind_registry *r, uint64_t *counter)
{
	pthread_mutex_lock(&r->lock);
	(*counter)++;
	pthread_mutex_unlock(&r->lock);
}

/* This kernel's vdso, the same in every process: built once from ours. */
static void build_vdso(struct unwind_registry *r)
{
	const void *image = (const void *)getauxval(AT_SYSINFO_EHDR);
	struct proc_maps *maps = image ? proc_maps__read(getpid()) : NULL;
	const struct proc_map *m = maps ? proc_maps__find(maps, (uint64_t)(uintptr_t)image) : NULL;
	if (m && m->start == (uint64_t)(uintptr_t)image && m->end > m->start) {
		size_t size = m->end - m->start;
		void *copy = malloc(size);
		if (copy) {
			memcpy(copy, image, size);
			elf_version(EV_CURRENT);
			Elf *elf = elf_memory(copy, size);
			read_segments(elf, &r->vdso);
			elf_end(elf);
			struct cfi_table *t = cfi_table__from_memory(copy, size);
			if (t)
				place_rows(r, &r->vdso, t, "[vdso]");
			if (r->vdso.table)
				r->vdso.table->pinned = true;
			cfi_table__free(t);
			free(copy);
		}
	}
	proc_maps__free(maps);
}

/* Caches f (segments read) as file key, its table t (NULL: built by then
 * under id, or err) placed; takes f and t. f, or NULL (counted). */
static struct unwind_file *file_built(struct unwind_registry *r, const char *key,
				      const char *id, struct unwind_file *f,
				      struct cfi_table *t, int err, uint64_t ns)
{
	struct unwind_table *same = hashmap__get(r->tables_by_id, id, strlen(id));
	f->retry_exits = ~0ull;
	if (same) {
		f->kind = UNWIND_MAP_CFI;
		f->table = same;
		count(r, &r->stats.files_shared);
	} else if (t) {
		place_rows(r, f, t, id);
	} else {
		f->kind = UNWIND_MAP_FP;
		count(r, err == ENODATA ? &r->stats.files_no_cfi : &r->stats.files_unreadable);
	}
	cfi_table__free(t);
	pthread_mutex_lock(&r->lock);
	if (!same)
		r->stats.build_ns += ns;
	pthread_mutex_unlock(&r->lock);
	if (hashmap__put(r->files, key, strlen(key), f, NULL)) {
		free(f);
		return NULL;
	}
	return f;
}

/* The file behind mapping m of pid, its table built or shared; NULL when it
 * cannot be had (counted), or when the scan gives way. */
static struct unwind_file *file_for(struct unwind_registry *r, pid_t pid,
				    const struct proc_map *m)
{
	char key[64], path[4096], build_id[ELF_SYMTAB_BUILD_ID_MAX];
	snprintf(key, sizeof(key), "%u:%u:%llu", m->dev_major, m->dev_minor,
		 (unsigned long long)m->inode);
	struct unwind_file *f = hashmap__get(r->files, key, strlen(key));
	if (f && f->retry_exits != ~0ull) {
		/* Over the budget when last tried: again once processes have gone
		 * (their tables may be evictable now). */
		pthread_mutex_lock(&r->lock);
		bool retry = f->retry_exits != r->exits;
		pthread_mutex_unlock(&r->lock);
		if (retry) {
			free(hashmap__remove(r->files, key, strlen(key)));
			f = NULL;
		}
	}
	if (f)
		return f;
	if (hashmap__size(r->files) >= UNWIND_MAX_FILES) {
		count(r, &r->stats.queue_full);
		return NULL;
	}
	struct stat st;
	int fd = -1;
	if (map_path__open_path(pid, m, path, sizeof(path), &st) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		count(r, &r->stats.files_unreadable);
		return NULL;
	}
	if (!(f = calloc(1, sizeof(*f)))) {
		close(fd);
		return NULL;
	}
	elf_version(EV_CURRENT);
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	read_segments(elf, f);
	elf_end(elf);
	/* The table's id: the build-id (shared across files), else the file. */
	char id[ELF_SYMTAB_BUILD_ID_MAX + 72];
	if (!elf_symtab__read_build_id(path, build_id, sizeof(build_id)))
		snprintf(id, sizeof(id), "%s", build_id);
	else
		snprintf(id, sizeof(id), "f:%s", key);
	if (hashmap__get(r->tables_by_id, id, strlen(id))) {
		close(fd);
		return file_built(r, key, id, f, NULL, 0, 0);
	}
	/* A build can take seconds: the builder's, while this scan waits
	 * parked (the file read again when it resumes). */
	r->scan_gave_way = true;
	snprintf(r->scan_waits_for, sizeof(r->scan_waits_for), "%s", key);
	pthread_mutex_lock(&r->lock);
	struct build_job *j = NULL, *free_job = NULL;
	for (int i = 0; i < BUILD_JOBS && !j; i++) {
		if (r->jobs[i].state != JOB_FREE && !strcmp(r->jobs[i].key, key))
			j = &r->jobs[i];
		else if (r->jobs[i].state == JOB_FREE && !free_job)
			free_job = &r->jobs[i];
	}
	if (j) {
		j->fresh |= r->scan_fresh; /* already queued: first if fresh now */
	} else if (free_job) {
		j = free_job;
		*j = (struct build_job){ .state = JOB_QUEUED, .fresh = r->scan_fresh,
					 .seq = r->job_seq++, .fd = fd, .f = f };
		snprintf(j->key, sizeof(j->key), "%s", key);
		snprintf(j->id, sizeof(j->id), "%s", id);
		fd = -1;
		f = NULL;
		pthread_cond_signal(&r->build_wake);
	} else {
		r->scan_waits_for[0] = 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (fd >= 0)
		close(fd);
	free(f);
	return NULL;
}

/* Moves the parked scans waiting for key's build back to their lanes, and
 * of those waiting for any, as many as jobs are free (all once no build is
 * left) (under lock). */
static void unpark(struct unwind_registry *r, const char *key)
{
	size_t free_jobs = 0;
	for (int i = 0; i < BUILD_JOBS; i++)
		free_jobs += r->jobs[i].state == JOB_FREE;
	size_t any = free_jobs == BUILD_JOBS ? SIZE_MAX : free_jobs;
	for (int lane = LANE_NEW_PARKED; lane <= LANE_PARKED; lane++) {
		struct pid_ring *q = &r->lanes[lane];
		for (size_t n = q->len; n; n--) {
			pid_t pid = (pid_t)ring_pop(q);
			struct proc_entry *p = hashmap__get(r->procs, &pid, sizeof(pid));
			if (!p || !p->parked)
				continue; /* gone, or scanned since */
			if (p->waits_for[0] ? strcmp(p->waits_for, key) != 0 : !any) {
				ring_push(q, (uint32_t)pid, false);
				continue;
			}
			if (!p->waits_for[0])
				any--;
			p->parked = false;
			enqueue(r, pid, p);
		}
	}
}

static void *builder_main(void *arg)
{
	struct unwind_registry *r = arg;
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		/* A fresh process's first, else the oldest. */
		struct build_job *j = NULL;
		for (int i = 0; i < BUILD_JOBS; i++) {
			struct build_job *c = &r->jobs[i];
			if (c->state == JOB_QUEUED &&
			    (!j || c->fresh > j->fresh || (c->fresh == j->fresh && c->seq < j->seq)))
				j = c;
		}
		if (!j) {
			pthread_cond_wait(&r->build_wake, &r->lock);
			continue;
		}
		j->state = JOB_BUILDING;
		pthread_mutex_unlock(&r->lock);
		uint64_t t0 = now_ns();
		struct cfi_table *t = cfi_table__from_fd(j->fd);
		int err = errno;
		uint64_t ns = now_ns() - t0;
		close(j->fd);
		pthread_mutex_lock(&r->state);
		if (hashmap__get(r->files, j->key, strlen(j->key))) {
			cfi_table__free(t); /* read meanwhile */
			free(j->f);
		} else {
			file_built(r, j->key, j->id, j->f, t, err, ns);
		}
		pthread_mutex_unlock(&r->state);
		pthread_mutex_lock(&r->lock);
		j->state = JOB_FREE;
		j->f = NULL;
		unpark(r, j->key);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* pc - bias is the file's vaddr for mapping m of f; false when no segment
 * holds the mapping's offset. */
static bool bias_of(const struct unwind_file *f, const struct proc_map *m, uint64_t *bias)
{
	for (uint32_t i = 0; i < f->nsegs; i++) {
		const struct load_seg *s = &f->segs[i];
		uint64_t page_off = s->offset & ~(uint64_t)0xfff;
		if (m->offset >= page_off && m->offset < s->offset + s->filesz) {
			*bias = m->start - m->offset + s->offset - s->vaddr;
			return true;
		}
	}
	return false;
}

/* Reads pid's mappings and publishes them; *digest gets a digest of them. */
static void scan(struct unwind_registry *r, pid_t pid, uint64_t *digest)
{
	struct proc_maps *maps = proc_maps__read(pid);
	*digest = 0;
	if (!maps)
		return;
	struct unwind_proc *up = calloc(1, sizeof(*up));
	struct holder *h = calloc(1, sizeof(*h));
	if (!up || !h) {
		free(up);
		free(h);
		proc_maps__free(maps);
		return;
	}
	r->scan_gen++;
	uint64_t now = now_ns();
	for (size_t i = 0; i < proc_maps__count(maps); i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		const struct unwind_file *f;
		if (!strcmp(m->path, "[vdso]"))
			f = r->vdso.kind ? &r->vdso : NULL;
		else if (!m->inode || m->path[0] == '[' || !m->path[0])
			continue; /* anonymous: no CFI (the walk ends there, named) */
		else
			f = file_for(r, pid, m);
		if (r->scan_gave_way)
			break; /* nothing published: parked, scanned again */
		uint64_t bias = 0;
		struct unwind_map e = { .start = m->start, .end = m->end, .kind = UNWIND_MAP_FP };
		if (up->nmaps >= UNWIND_MAX_MAPS) {
			count(r, &r->stats.maps_over_limit);
			continue;
		}
		if (f && f->kind == UNWIND_MAP_CFI && bias_of(f, m, &bias)) {
			e.kind = UNWIND_MAP_CFI;
			e.bias = bias;
			e.table = f->table->slot;
			e.row_count = f->table->rows;
			f->table->last_used_ns = now;
			f->table->scan_gen = r->scan_gen;
			h->slots[h->n++] = (uint16_t)f->table->slot;
		}
		/* /proc/PID/maps lists mappings by address: the table stays sorted. */
		up->maps[up->nmaps++] = e;
	}
	*digest = hash_bytes(up->maps, up->nmaps * sizeof(up->maps[0]), up->nmaps);
	proc_maps__free(maps);
	pthread_mutex_lock(&r->lock);
	struct proc_entry *pe = r->scan_gave_way ? NULL : hashmap__get(r->procs, &pid, sizeof(pid));
	bool live = pe != NULL;
	/* A number of its own, so BPF's rule cache never mixes publications;
	 * the same mappings published again keep theirs (and their cached rules). */
	if (pe && pe->gen && pe->scanned_ns && pe->maps_hash == *digest) {
		up->gen = pe->gen;
	} else {
		if (!++r->publish_gen)
			r->publish_gen = 1;
		up->gen = r->publish_gen;
	}
	if (pe)
		pe->gen = up->gen;
	pthread_mutex_unlock(&r->lock);
	/* Its tables are spared by eviction while it lives (a failed
	 * publication too: an older one may stand). */
	void *old = NULL;
	if (live && !hashmap__put(r->holders, &pid, sizeof(pid), h, &old))
		h = NULL;
	free(old);
	free(h);
	if (live)
		count(r, r->ops.publish(r->ctx, (uint32_t)pid, up) ? &r->stats.publish_failed :
			 &r->stats.processes);
	free(up);
}

static void *worker_main(void *arg)
{
	struct unwind_registry *r = arg;
	pthread_mutex_lock(&r->state);
	build_vdso(r);
	pthread_mutex_unlock(&r->state);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		int lane = 0;
		while (!r->stop) {
			uint64_t next = queue_due(r, now_ns());
			for (lane = LANE_NEW; lane <= LANE_FIRST && !r->lanes[lane].len; lane++)
				;
			if (lane <= LANE_FIRST)
				break;
			pthread_cond_broadcast(&r->idle);
			if (next) {
				struct timespec ts = { (time_t)(next / 1000000000ull),
						       (long)(next % 1000000000ull) };
				pthread_cond_timedwait(&r->wake, &r->lock, &ts);
			} else {
				pthread_cond_wait(&r->wake, &r->lock);
			}
		}
		if (r->stop)
			break;
		pid_t pid = (pid_t)ring_pop(&r->lanes[lane]);
		struct proc_entry *p = hashmap__get(r->procs, &pid, sizeof(pid));
		if (!p)
			continue; /* gone (a short command): nothing to publish */
		r->busy = true;
		r->scanning = pid;
		r->scan_fresh = p->fresh;
		r->scan_gave_way = false;
		/* An exec while it is scanned queues it again. */
		p->queued = p->parked = false;
		pthread_mutex_unlock(&r->lock);
		uint64_t digest;
		pthread_mutex_lock(&r->state);
		scan(r, pid, &digest);
		/* Parked (below) before the builder can place the build it
		 * waits for (under state). */
		pthread_mutex_lock(&r->lock);
		pthread_mutex_unlock(&r->state);
		r->busy = false;
		p = hashmap__get(r->procs, &pid, sizeof(pid));
		if (r->scan_gave_way) {
			if (p) {
				snprintf(p->waits_for, sizeof(p->waits_for), "%s", r->scan_waits_for);
				if (!p->parked && ring_push(&r->lanes[r->scan_fresh ? LANE_NEW_PARKED :
								      LANE_PARKED], (uint32_t)pid, false))
					p->parked = true;
				else if (!p->parked)
					r->stats.queue_full++;
			}
			continue;
		}
		if (p) {
			bool changed = !p->scanned_ns || digest != p->maps_hash;
			if (p->fresh && !p->settled && changed && !p->later &&
			    (p->settle_ns = p->settle_ns ? p->settle_ns * 2 : SETTLE_MIN_NS) <=
			    SETTLE_MAX_NS) {
				p->due_ns = now_ns() + p->settle_ns;
				p->later = ring_push(&r->lanes[LANE_LATER], (uint32_t)pid, false);
			} else if (p->fresh && !changed) {
				p->settled = true;
			}
			/* Nothing new since the last scan: back off. */
			if (!changed)
				p->backoff_ns = p->backoff_ns ? p->backoff_ns * 2 : RESCAN_MIN_NS;
			else
				p->backoff_ns = 0;
			if (p->backoff_ns > RESCAN_MAX_NS)
				p->backoff_ns = RESCAN_MAX_NS;
			p->maps_hash = digest;
			p->scanned_ns = now_ns();
		}
	}
	pthread_cond_broadcast(&r->idle);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct unwind_registry *unwind_registry__new(const struct unwind_registry_ops *ops,
					     size_t budget_rows, void *ctx)
{
	struct unwind_registry *r = calloc(1, sizeof(*r));
	int err = -ENOMEM;
	if (!r)
		goto fail;
	pthread_mutex_init(&r->state, NULL);
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* (LANE_LATER's due times) */
	pthread_cond_init(&r->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&r->idle, NULL);
	pthread_cond_init(&r->build_wake, NULL);
	if (!ops || !ops->publish || !ops->table_put || !ops->table_drop || !budget_rows) {
		err = -EINVAL;
		goto fail;
	}
	r->ops = *ops;
	r->ctx = ctx;
	r->budget = budget_rows;
	r->stats.rows_capacity = budget_rows;
	if (!(r->procs = hashmap__new()) || !(r->files = hashmap__new()) ||
	    !(r->tables_by_id = hashmap__new()) || !(r->holders = hashmap__new()))
		goto fail;
	if ((err = -pthread_create(&r->builder, NULL, builder_main, r)))
		goto fail;
	r->builder_started = true;
	if ((err = -pthread_create(&r->worker, NULL, worker_main, r)))
		goto fail;
	r->worker_started = true;
	return r;
fail:
	unwind_registry__free(r);
	errno = -err;
	return NULL;
}

void unwind_registry__free(struct unwind_registry *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->wake);
	pthread_cond_signal(&r->build_wake);
	pthread_mutex_unlock(&r->lock);
	if (r->worker_started)
		pthread_join(r->worker, NULL);
	if (r->builder_started)
		pthread_join(r->builder, NULL);
	/* Jobs the builder did not start. */
	for (int i = 0; i < BUILD_JOBS; i++) {
		struct build_job *j = &r->jobs[i];
		if (j->state == JOB_QUEUED) {
			close(j->fd);
			free(j->f);
		}
	}
	size_t cursor = 0;
	void *value;
	while (r->procs && hashmap__next(r->procs, &cursor, NULL, NULL, &value))
		free(value);
	cursor = 0;
	while (r->files && hashmap__next(r->files, &cursor, NULL, NULL, &value))
		free(value);
	cursor = 0;
	while (r->holders && hashmap__next(r->holders, &cursor, NULL, NULL, &value))
		free(value);
	/* The tables stay in BPF: the sampler's maps go with it. */
	for (int i = 0; i < UNWIND_MAX_TABLES; i++)
		free(r->tables[i]);
	hashmap__free(r->procs);
	hashmap__free(r->files);
	hashmap__free(r->holders);
	hashmap__free(r->tables_by_id); /* its values are r->tables' */
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->idle);
	pthread_cond_destroy(&r->build_wake);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->state);
	free(r);
}

/* pid's entry, made when absent (under lock); NULL when the set is full
 * (counted). */
static struct proc_entry *track(struct unwind_registry *r, pid_t pid)
{
	struct proc_entry *p = hashmap__get(r->procs, &pid, sizeof(pid));
	if (p)
		return p;
	if (hashmap__size(r->procs) >= UNWIND_MAX_PROCESSES || !(p = calloc(1, sizeof(*p)))) {
		r->stats.queue_full++;
		return NULL;
	}
	if (hashmap__put(r->procs, &pid, sizeof(pid), p, NULL)) {
		free(p);
		r->stats.queue_full++;
		return NULL;
	}
	return p;
}

void unwind_registry__note_sample(struct unwind_registry *r, pid_t pid, int missed)
{
	if (!r || pid <= 0)
		return;
	pthread_mutex_lock(&r->lock);
	struct proc_entry *p = track(r, pid);
	if (!p)
		;
	else if (!p->scanned_ns && !p->queued && !p->parked && !(r->busy && r->scanning == pid))
		enqueue(r, pid, p); /* its first sample (or one lost to a full queue) */
	else if (missed && p->scanned_ns && now_ns() - p->scanned_ns >= p->backoff_ns)
		enqueue(r, pid, p);
	pthread_mutex_unlock(&r->lock);
}

void unwind_registry__note_exec(struct unwind_registry *r, pid_t pid)
{
	if (!r || pid <= 0)
		return;
	/* The old image's mappings must not unwind the new one: withdrawn now,
	 * read again at its next sample. A new command: its requests go first
	 * (tracked from now, queued at its first sample: a command never
	 * sampled costs no scan). */
	r->ops.publish(r->ctx, (uint32_t)pid, NULL);
	pthread_mutex_lock(&r->lock);
	bool known = hashmap__get(r->procs, &pid, sizeof(pid)) != NULL;
	struct proc_entry *p = track(r, pid);
	if (p) {
		p->fresh = true;
		p->settled = false; /* its new image's libraries: see SETTLE_MIN_NS */
		p->settle_ns = 0;
		/* Sampled before: its new image is read now, in LANE_NEW (a
		 * request already queued elsewhere runs again, harmlessly). */
		if (known) {
			p->queued = false;
			enqueue(r, pid, p);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

void unwind_registry__note_exit(struct unwind_registry *r, pid_t pid)
{
	if (!r || pid <= 0)
		return;
	pthread_mutex_lock(&r->lock);
	struct proc_entry *p = hashmap__remove(r->procs, &pid, sizeof(pid));
	if (p && p->scanned_ns) /* (only a scanned process can have held tables) */
		r->exits++;
	pthread_mutex_unlock(&r->lock);
	/* A queued request finds no entry and publishes nothing. */
	free(p);
	r->ops.publish(r->ctx, (uint32_t)pid, NULL);
}

void unwind_registry__drain(struct unwind_registry *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		bool jobs = false;
		for (int i = 0; i < BUILD_JOBS; i++)
			jobs |= r->jobs[i].state != JOB_FREE;
		/* (Parked scans wait for jobs.) */
		if (r->stop || !(jobs || r->busy || r->lanes[LANE_NEW].len ||
				 r->lanes[LANE_FIRST].len))
			break;
		pthread_cond_wait(&r->idle, &r->lock);
	}
	pthread_mutex_unlock(&r->lock);
}

void unwind_registry__stats(struct unwind_registry *r, struct unwind_registry_stats *out)
{
	if (!r) {
		memset(out, 0, sizeof(*out));
		return;
	}
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
}

void unwind_registry__summary(struct unwind_registry *r, FILE *out, const char *prefix)
{
	struct unwind_registry_stats s;
	if (!r)
		return;
	unwind_registry__stats(r, &s);
	if (s.evictions)
		fprintf(out, "%s: native unwinding: %" PRIu64 " table(s) (%" PRIu64 " rows) of "
			"files no running process maps evicted to make room "
			"(--unwind-table-mb: %" PRIu64 " rows)\n", prefix, s.evictions,
			s.rows_evicted, s.rows_capacity);
	if (!s.files_over_budget && !s.files_unreadable && !s.maps_over_limit && !s.queue_full &&
	    !s.publish_failed)
		return;
	fprintf(out, "%s: native unwinding: %" PRIu64 " file(s) over the table budget "
		"(%" PRIu64 " of %" PRIu64 " rows used; --unwind-table-mb), %" PRIu64
		" unreadable, %" PRIu64 " mapping(s) past %d per process, %" PRIu64
		" request(s) and %" PRIu64 " process(es) lost to full tables: their frames are "
		"walked by frame pointers\n", prefix, s.files_over_budget, s.rows_used,
		s.rows_capacity, s.files_unreadable, s.maps_over_limit, UNWIND_MAX_MAPS,
		s.queue_full, s.publish_failed);
}
