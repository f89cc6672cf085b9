// SPDX-License-Identifier: MIT
#include "tags/tag_registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>

#include "symbolize/elf_dynsym.h"
#include "symbolize/map_path.h"
#include "symbolize/proc_maps.h"
#include "util/hashmap.h"
#include "util/process_table.h"
#include "util/remote.h"
#include "util/clock.h"

#define DEFAULT_MAX_PROCESSES 8192
#define MAX_ENVIRON_BYTES (256 * 1024)
/* Library look-ups (a read of /proc/PID/maps each) while sampled, LIB_CHECKS
 * times: every LIB_RECHECK_NS for the first LIB_FAST_CHECKS (a Python app
 * loads libdynotag in its first seconds), then at doubling intervals up to
 * LIB_RECHECK_MAX_NS (about 90 s in all): a busy process that never loads it
 * costs 24 reads, not one every half second. */
#define LIB_CHECKS 24
#define LIB_FAST_CHECKS 10
#define LIB_RECHECK_NS 500000000ull
#define LIB_RECHECK_MAX_NS 8000000000ull
/* Bytes of a process's string arena read at once when an id is unknown. */
#define MAX_ARENA_PREFETCH (1u << 20)
/* The process record is re-read at most this often. */
#define PROCESS_TAGS_REFRESH_NS 1000000000ull
/* Strings cached per process (ids 1..this; a later id's label is dropped and
 * counted in string_failures). */
#define MAX_STRINGS_PER_PROCESS 4096

const struct env_tag_rule tag_default_env_rules[] = {
	{ "DYNOPROF_COMMIT", "commit" },
	{ "GIT_COMMIT", "commit" },
	{ "SOURCE_VERSION", "commit" },
	{ "DYNOPROF_SERVICE", "service" },
	{ "DYNOPROF_ENV", "env" },
	{ "DYNOPROF_TAGS", NULL },
};
const size_t tag_default_env_rule_count =
	sizeof(tag_default_env_rules) / sizeof(tag_default_env_rules[0]);

/* An owned key=value pair. */
struct owned_tag {
	char *key;   /* owned */
	char *value; /* owned */
};

struct tag_entry {
	struct process_slot slot;          /* pid, exited, LRU tick (first: process_table.h) */
	int env_read;                      /* environment tags read for this image */
	int env_unreadable;                /* its environment could not be read (it
					    * was gone): env[] came from its parent */
	uint64_t created_ns;               /* CLOCK_MONOTONIC when the entry was made:
					    * everything in it was read from /proc
					    * and memory after this */
	struct owned_tag env[TAG_MAX_ENV_LABELS];/* tags from the environment */
	unsigned n_env;
	uint64_t runtime_addr;             /* libdynotag's dynotag_runtime; 0 none found */
	uint32_t abi_version;              /* its abi_version (the log from 2 on) */
	unsigned lib_checks;               /* library look-ups done */
	uint64_t lib_checked_ns;           /* time of the last look-up */
	uint32_t proc_seq;                 /* seq of the process record last read */
	uint64_t proc_read_ns;             /* when it was read */
	struct owned_tag lib[DYNOTAG_MAX_TAGS]; /* the library's process tags */
	unsigned n_lib;
	struct hashmap *strings;           /* string id -> char* (owned) */
	uint32_t strings_read;             /* string_count at the last full read of
					    * the table into strings (0: none since
					    * the cache was emptied): an id at most
					    * this that is not cached is invalid, so
					    * garbage ids cost no re-read */
};

struct tag_registry {
	struct hashmap *procs;          /* pid -> struct tag_entry* */
	struct env_tag_rule *rules;     /* environment rules (array owned, strings not) */
	size_t n_rules;
	tag_publish_fn publish;         /* BPF map writer */
	void *publish_ctx;
	size_t max_processes;           /* bound on procs */
	uint64_t tick;                  /* LRU clock */
	struct tag_registry_stats stats;/* counters */
	proc_maps_source_fn maps;       /* mappings for library look-ups; NULL: read them */
	void *maps_ctx;                 /* its context */
};

bool tag_sanitize(const char *in, size_t in_len, char *out, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0, i = 0;
	if (!len)
		return in_len > 0 && p[0];
	while (i < in_len && p[i]) {
		/* Length of a valid UTF-8 sequence at i, or 0. */
		size_t n = 0;
		unsigned c = p[i];
		if (c >= 0x20 && c < 0x7f)
			n = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4;
		for (size_t k = 1; k < n; k++)
			if (i + k >= in_len || (p[i + k] & 0xc0) != 0x80)
				n = 0;
		/* The second byte's range (RFC 3629) excludes overlong forms,
		 * UTF-16 surrogates and code points above U+10FFFF; C2 80..9F
		 * are the C1 control characters. */
		if (n >= 2) {
			unsigned c1 = p[i + 1];
			if ((c == 0xc2 && c1 < 0xa0) || (c == 0xe0 && c1 < 0xa0) ||
			    (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
			    (c == 0xf4 && c1 > 0x8f))
				n = 0;
		}
		if (n) {
			if (o + n >= len)
				break;
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			if (o + 4 >= len)
				break;
			snprintf(out + o, len - o, "\\x%02x", c);
			o += 4;
			i++;
		}
	}
	out[o] = '\0';
	return i < in_len && p[i];
}

static void owned_tags_free(struct owned_tag *t, unsigned *n)
{
	for (unsigned i = 0; i < *n; i++) {
		free(t[i].key);
		free(t[i].value);
	}
	*n = 0;
}

static void free_strings(struct hashmap *m)
{
	size_t cur = 0;
	void *v;
	if (!m)
		return;
	while (hashmap__next(m, &cur, NULL, NULL, &v))
		free(v);
	hashmap__free(m);
}

static void entry_free(struct tag_entry *e)
{
	if (!e)
		return;
	owned_tags_free(e->env, &e->n_env);
	owned_tags_free(e->lib, &e->n_lib);
	free_strings(e->strings);
	free(e);
}

struct tag_registry *tag_registry__new(const struct tag_registry_opts *opts)
{
	struct tag_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	const struct env_tag_rule *rules = opts && opts->env_rules ? opts->env_rules
								   : tag_default_env_rules;
	size_t n = opts && opts->env_rules ? opts->n_env_rules : tag_default_env_rule_count;
	r->rules = calloc(n ? n : 1, sizeof(*r->rules));
	r->procs = hashmap__new();
	if (!r->rules || !r->procs) {
		tag_registry__free(r);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(r->rules, rules, n * sizeof(*rules));
	r->n_rules = n;
	r->publish = opts ? opts->publish : NULL;
	r->publish_ctx = opts ? opts->publish_ctx : NULL;
	r->maps = opts ? opts->maps : NULL;
	r->maps_ctx = opts ? opts->maps_ctx : NULL;
	r->max_processes = opts && opts->max_processes ? opts->max_processes
						       : DEFAULT_MAX_PROCESSES;
	return r;
}

void tag_registry__free(struct tag_registry *r)
{
	if (!r)
		return;
	if (r->procs) {
		size_t cur = 0;
		void *v;
		while (hashmap__next(r->procs, &cur, NULL, NULL, &v))
			entry_free(v);
		hashmap__free(r->procs);
	}
	free(r->rules);
	free(r);
}

/* Adds key=value to t unless the key is there (the first one wins). Past max
 * the tag is dropped and counted in *dropped; cut text in r's stats. */
static int add_owned(struct tag_registry *r, struct owned_tag *t, unsigned *n, unsigned max,
		     uint64_t *dropped, const char *key, const char *value)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(t[i].key, key) == 0)
			return 0; /* first one wins */
	if (*n >= max) {
		(*dropped)++;
		return 0;
	}
	char k[TAG_TEXT_MAX], v[TAG_TEXT_MAX];
	r->stats.truncated += tag_sanitize(key, strlen(key), k, sizeof(k));
	r->stats.truncated += tag_sanitize(value, strlen(value), v, sizeof(v));
	t[*n].key = strdup(k);
	t[*n].value = strdup(v);
	if (!t[*n].key || !t[*n].value) {
		free(t[*n].key);
		free(t[*n].value);
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

/* Parses "k=v,k=v" into env tags. */
static void add_pairs(struct tag_registry *r, struct tag_entry *e, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		return;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok)
			continue;
		*eq = '\0';
		add_owned(r, e->env, &e->n_env, TAG_MAX_ENV_LABELS, &r->stats.env_dropped, tok,
			  eq + 1);
	}
	free(copy);
}

static void read_environment(struct tag_registry *r, struct tag_entry *e)
{
	char path[64];
	e->env_read = 1;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)e->slot.pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		e->env_unreadable = 1;
		/* Gone (the CPU time of a process that exited unsampled): its
		 * mappings are gone too, so no library look-up. */
		if (errno == ENOENT || errno == ESRCH)
			e->lib_checks = LIB_CHECKS;
		return;
	}
	char *buf = malloc(MAX_ENVIRON_BYTES + 1);
	size_t n = buf ? fread(buf, 1, MAX_ENVIRON_BYTES, f) : 0;
	/* Variables past the bound are not seen: counted, never guessed at. */
	if (n == MAX_ENVIRON_BYTES && fgetc(f) != EOF) {
		r->stats.truncated++;
		/* Nor is the variable the bound cut: its value would be wrong. */
		while (n && buf[n - 1] != '\0')
			n--;
	}
	fclose(f);
	if (!buf)
		return;
	e->env_unreadable = n == 0; /* a zombie's reads empty */
	buf[n] = '\0';
	/* Rules in order, so the first variable present wins for its key. */
	for (size_t ri = 0; ri < r->n_rules; ri++) {
		size_t vlen = strlen(r->rules[ri].variable);
		for (size_t off = 0; off < n;) {
			const char *var = buf + off;
			size_t len = strnlen(var, n - off);
			if (len > vlen && strncmp(var, r->rules[ri].variable, vlen) == 0 &&
			    var[vlen] == '=' && var[vlen + 1]) {
				if (r->rules[ri].key)
					add_owned(r, e->env, &e->n_env, TAG_MAX_ENV_LABELS,
						  &r->stats.env_dropped, r->rules[ri].key,
						  var + vlen + 1);
				else
					add_pairs(r, e, var + vlen + 1);
			}
			off += len + 1;
		}
	}
	free(buf);
}

/* Looks for libdynotag's runtime object in pid's mappings. */
static uint64_t find_runtime(struct tag_registry *r, pid_t pid)
{
	struct proc_maps *owned = NULL;
	const struct proc_maps *maps = r->maps ? r->maps(r->maps_ctx, pid)
					       : (owned = proc_maps__read(pid));
	uint64_t found = 0;
	if (!maps)
		return 0;
	for (size_t i = 0; i < proc_maps__count(maps) && !found; i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		if (!strstr(path_basename(m->path), "libdynotag"))
			continue;
		char open_path[4200];
		struct stat st;
		/* the mapped file itself, in whatever root pid runs (map_path.h) */
		if (map_path__open_path(pid, m, open_path, sizeof(open_path), &st))
			continue;
		struct elf_dynsym *elf = elf_dynsym__open(open_path);
		if (!elf)
			continue;
		struct elf_sym_value sym;
		uint64_t bias;
		if (elf_dynsym__find(elf, "dynotag_runtime", ELF_DYNSYM_DYNAMIC, &sym) == 0 &&
		    sym.found && elf_dynsym__load_bias(elf, m->start, m->offset, &bias) == 0) {
			uint64_t magic = 0;
			uint64_t addr = bias + sym.value;
			if (remote_read(pid, addr, &magic, sizeof(magic)) == 0 &&
			    magic == DYNOTAG_MAGIC)
				found = addr;
		}
		elf_dynsym__free(elf);
	}
	proc_maps__free(owned);
	return found;
}

static int prefetch_strings(struct tag_registry *r, struct tag_entry *e);

static void check_library(struct tag_registry *r, struct tag_entry *e)
{
	e->lib_checks++;
	e->lib_checked_ns = mono_ns();
	uint64_t addr = find_runtime(r, e->slot.pid);
	if (!addr)
		return;
	uint32_t version = 0;
	if (remote_read(e->slot.pid, addr + offsetof(struct dynotag_runtime, abi_version),
			&version, sizeof(version)))
		return;
	struct tag_proc info = { .runtime_addr = addr, .abi_version = version };
	if (r->publish && r->publish(r->publish_ctx, (uint32_t)e->slot.pid, &info))
		return;
	e->runtime_addr = addr;
	e->abi_version = version;
	r->stats.tagged_processes++;
	prefetch_strings(r, e);
}

static void evict_entry(void *ctx, void *value)
{
	struct tag_registry *r = ctx;
	struct tag_entry *e = value;
	if (e->runtime_addr && r->publish)
		r->publish(r->publish_ctx, (uint32_t)e->slot.pid, NULL);
	entry_free(e);
}

/* Whether e's library look-up is due (see LIB_CHECKS). */
static int library_check_due(const struct tag_entry *e)
{
	if (e->runtime_addr || e->slot.exited || e->lib_checks >= LIB_CHECKS)
		return 0;
	if (!e->lib_checks)
		return 1;
	uint64_t interval = LIB_RECHECK_NS;
	for (unsigned i = LIB_FAST_CHECKS; i < e->lib_checks && interval < LIB_RECHECK_MAX_NS; i++)
		interval *= 2;
	return mono_ns() - e->lib_checked_ns >= interval;
}

/* pid's entry, its environment read; with_library: its library look-up
 * too when due (a maps read: not for a parent asked only for its
 * environment, whose own samples do it). gone: its leader exited (its memory
 * is gone): a new entry reads neither, both would read empty. */
static struct tag_entry *get_entry_opt(struct tag_registry *r, pid_t pid, int with_library,
				       int gone)
{
	int created;
	struct tag_entry *e = process_table__get(r->procs, pid, r->max_processes, sizeof(*e),
						 &r->tick, evict_entry, r, &created);
	if (!e)
		return NULL;
	if (created) {
		e->created_ns = mono_ns();
		e->strings = hashmap__new();
		if (!e->strings) {
			entry_free(hashmap__remove(r->procs, &pid, sizeof(pid)));
			return NULL;
		}
		r->stats.processes++;
		if (gone) {
			e->env_read = 1;
			e->env_unreadable = 1; /* its parent's, as for any gone process */
			e->lib_checks = LIB_CHECKS;
		}
	}
	if (!e->env_read)
		read_environment(r, e);
	if (with_library && library_check_due(e))
		check_library(r, e);
	return e;
}

static struct tag_entry *get_entry(struct tag_registry *r, pid_t pid)
{
	return get_entry_opt(r, pid, 1, 0);
}

/* Reads the process's dynotag_runtime (the table addresses and fill levels). */
static int read_runtime(const struct tag_entry *e, struct dynotag_runtime *rt)
{
	return remote_read(e->slot.pid, e->runtime_addr, rt, sizeof(*rt));
}

/* Reads every published string of e's process into its cache (strings are
 * immutable once published, so a later sample whose process has exited by
 * the time it is processed still finds them). Returns 0 or -errno. */
static int prefetch_strings(struct tag_registry *r, struct tag_entry *e)
{
	struct dynotag_runtime rt;
	int err = read_runtime(e, &rt);
	if (err)
		return err;
	uint32_t n = rt.string_count < rt.string_capacity ? rt.string_count : rt.string_capacity;
	if (n > MAX_STRINGS_PER_PROCESS)
		n = MAX_STRINGS_PER_PROCESS;
	if (n && n == e->strings_read)
		return 0; /* nothing new published since the last read */
	uint32_t arena = rt.arena_used < MAX_ARENA_PREFETCH ? rt.arena_used : MAX_ARENA_PREFETCH;
	struct dynotag_string *table = calloc(n ? n : 1, sizeof(*table));
	char *bytes = malloc(arena ? arena : 1);
	if (!table || !bytes) {
		free(table);
		free(bytes);
		return -ENOMEM;
	}
	err = (n ? remote_read(e->slot.pid, rt.strings, table, n * sizeof(*table)) : 0) ?:
	      (arena ? remote_read(e->slot.pid, rt.arena, bytes, arena) : 0);
	r->stats.string_reads += n;
	for (uint32_t i = 0; !err && i < n; i++) {
		uint32_t id = i + 1;
		if (hashmap__get(e->strings, &id, sizeof(id)) || table[i].length > TAG_TEXT_MAX ||
		    (uint64_t)table[i].offset + table[i].length > arena)
			continue;
		char clean[TAG_TEXT_MAX];
		r->stats.truncated += tag_sanitize(bytes + table[i].offset, table[i].length, clean,
						   sizeof(clean));
		char *copy = strdup(clean);
		if (!copy || hashmap__put(e->strings, &id, sizeof(id), copy, NULL)) {
			free(copy);
			err = -ENOMEM;
		}
	}
	if (!err)
		e->strings_read = n;
	free(table);
	free(bytes);
	return err;
}

/* Returns the string for id in e's process (cached), or NULL. */
static const char *string_of(struct tag_registry *r, struct tag_entry *e, uint32_t id)
{
	if (id == DYNOTAG_ID_NONE)
		return NULL;
	char *s = hashmap__get(e->strings, &id, sizeof(id));
	if (s)
		return s;
	/* Never emptied here: the strings returned for this sample's earlier
	 * labels are still in use (freeing them was a use-after-free whenever a
	 * process had more strings than the cache). The cache is bounded anyway:
	 * only ids 1..MAX_STRINGS_PER_PROCESS are ever read into it, and a later
	 * id is a counted failure. */
	if (id > MAX_STRINGS_PER_PROCESS) {
		r->stats.string_failures++;
		return NULL;
	}
	int err = prefetch_strings(r, e);
	s = hashmap__get(e->strings, &id, sizeof(id));
	if (!s && (err == -EPERM || err == -EACCES))
		r->stats.string_denied++;
	else if (!s)
		r->stats.string_failures++;
	return s;
}

/* Re-reads the library's process record when it is old. */
static void refresh_process_tags(struct tag_registry *r, struct tag_entry *e)
{
	uint64_t now = mono_ns();
	if (!e->runtime_addr || e->slot.exited || (e->proc_read_ns && now - e->proc_read_ns <
					      PROCESS_TAGS_REFRESH_NS))
		return;
	e->proc_read_ns = now;
	struct dynotag_record rec;
	uint32_t seq_after;
	uint64_t at = e->runtime_addr + offsetof(struct dynotag_runtime, process);
	if (remote_read(e->slot.pid, at, &rec, sizeof(rec)) ||
	    remote_read(e->slot.pid, at, &seq_after, sizeof(seq_after)) || (rec.seq & 1) ||
	    rec.seq != seq_after || rec.seq == e->proc_seq)
		return;
	owned_tags_free(e->lib, &e->n_lib);
	e->proc_seq = rec.seq;
	/* A record claiming more pairs than it holds: the rest are dropped. */
	if (rec.count > TAG_MAX_PROCESS_LABELS)
		r->stats.process_dropped += rec.count - TAG_MAX_PROCESS_LABELS;
	for (uint32_t i = 0; i < rec.count && i < TAG_MAX_PROCESS_LABELS; i++) {
		if (rec.tags[i].key == DYNOTAG_ID_NONE || rec.tags[i].value == DYNOTAG_ID_NONE)
			continue;
		const char *k = string_of(r, e, rec.tags[i].key);
		const char *v = string_of(r, e, rec.tags[i].value);
		if (k && v)
			add_owned(r, e->lib, &e->n_lib, TAG_MAX_PROCESS_LABELS,
				  &r->stats.process_dropped, k, v);
	}
}

static bool is_reserved_key(const char *key)
{
	return strcmp(key, "endpoint") == 0 || strcmp(key, "window") == 0;
}

int tag_labels__put(struct tag_labels *l, const char *key, const char *value)
{
	unsigned reserved_used = 0;
	for (unsigned i = 0; i < l->count; i++) {
		if (strcmp(l->keys[i], key) == 0) {
			l->values[i] = value; /* later sources win */
			return 0;
		}
		reserved_used += is_reserved_key(l->keys[i]);
	}
	/* Others may use every slot but the reserved ones still free. */
	unsigned limit = is_reserved_key(key) ? TAG_MAX_LABELS
					      : TAG_MAX_LABELS - (TAG_RESERVED_LABELS - reserved_used);
	if (l->count >= limit)
		return -ENOSPC;
	l->keys[l->count] = key;
	l->values[l->count++] = value;
	return 0;
}

/* e's process was gone before its environment was read: it gets its
 * parent's environment tags (a child inherits its parent's environment
 * unless it changes it). Once: the copy stays with e. */
static void inherit_environment(struct tag_registry *r, struct tag_entry *e, pid_t ppid)
{
	e->env_unreadable = 0;
	if (ppid <= 0 || ppid == e->slot.pid)
		return;
	/* e was just used, so making room for the parent never evicts it.
	 * Only the parent's environment is inherited: its library look-up
	 * (a maps read) waits for its own samples. */
	struct tag_entry *parent = get_entry_opt(r, ppid, 0, 0);
	for (unsigned i = 0; parent && i < parent->n_env; i++)
		add_owned(r, e->env, &e->n_env, TAG_MAX_ENV_LABELS, &r->stats.env_dropped,
			  parent->env[i].key,
			  parent->env[i].value);
}

int tag_registry__labels(struct tag_registry *r, pid_t pid, uint32_t status,
			 const struct dynotag_pair *pairs, uint32_t npairs,
			 struct tag_labels *out)
{
	return tag_registry__labels_inherit(r, pid, 0, status, pairs, npairs, out);
}

int tag_registry__labels_inherit(struct tag_registry *r, pid_t pid, pid_t ppid, uint32_t status,
				 const struct dynotag_pair *pairs, uint32_t npairs,
				 struct tag_labels *out)
{
	out->count = 0;
	if (pid <= 0)
		return 0;
	struct tag_entry *e = get_entry(r, pid);
	if (!e)
		return -ENOMEM;
	if (e->env_unreadable && ppid > 0)
		inherit_environment(r, e, ppid);
	/* Precedence: environment < library process tags < thread tags. */
	/* The sources' caps sum to the budget less the reserved slots, so these
	 * always fit (tag_labels__put cannot fail here). */
	for (unsigned i = 0; i < e->n_env; i++)
		tag_labels__put(out, e->env[i].key, e->env[i].value);
	refresh_process_tags(r, e);
	for (unsigned i = 0; i < e->n_lib; i++)
		tag_labels__put(out, e->lib[i].key, e->lib[i].value);
	if (status == TAG_READ_RACE)
		r->stats.races++;
	if (status != TAG_READ_OK || !e->runtime_addr)
		return 0;
	if (npairs > TAG_MAX_THREAD_LABELS)
		r->stats.thread_dropped += npairs - TAG_MAX_THREAD_LABELS;
	for (uint32_t i = 0; i < npairs && i < TAG_MAX_THREAD_LABELS; i++) {
		if (pairs[i].key == DYNOTAG_ID_NONE || pairs[i].value == DYNOTAG_ID_NONE)
			continue;
		const char *k = string_of(r, e, pairs[i].key);
		const char *v = string_of(r, e, pairs[i].value);
		if (k && v)
			tag_labels__put(out, k, v);
	}
	return 0;
}

int tag_registry__requests(struct tag_registry *r, pid_t pid,
			   void (*fn)(void *ctx, const char *endpoint, uint64_t requests),
			   void *ctx)
{
	struct tag_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	if (!e || !e->runtime_addr)
		return -ENOENT;
	struct dynotag_runtime rt;
	int err = read_runtime(e, &rt);
	if (err)
		return err;
	uint32_t n = rt.string_count < rt.string_capacity ? rt.string_count : rt.string_capacity;
	uint64_t *counts = calloc((size_t)n + 1, sizeof(uint64_t));
	if (!counts)
		return -ENOMEM;
	err = remote_read(pid, rt.requests, counts, ((size_t)n + 1) * sizeof(uint64_t));
	for (uint32_t id = 1; !err && id <= n; id++) {
		if (!counts[id])
			continue;
		const char *name = string_of(r, e, id);
		if (name)
			fn(ctx, name, counts[id]);
	}
	free(counts);
	return err;
}

const char tag_request_abandoned[] = "";

int tag_registry__request_endpoints(struct tag_registry *r, pid_t pid, const uint32_t *numbers,
				    size_t n, const char **endpoints)
{
	for (size_t i = 0; i < n; i++)
		endpoints[i] = NULL;
	struct tag_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	if (!e || !e->runtime_addr || e->abi_version < DYNOTAG_ABI_WHOLE_REQUESTS)
		return -ENOENT;
	struct dynotag_runtime rt;
	int err = read_runtime(e, &rt);
	if (err)
		return err;
	uint32_t size = rt.request_log_size;
	/* A power of two no larger than the library's own: anything else is not
	 * a log this reader understands. */
	if (!rt.request_log || !size || (size & (size - 1)) || size > DYNOTAG_REQUEST_LOG_SIZE)
		return -EINVAL;
	uint64_t *log = malloc((size_t)size * sizeof(*log));
	if (!log)
		return -ENOMEM;
	err = remote_read(pid, rt.request_log, log, (size_t)size * sizeof(*log));
	for (size_t i = 0; !err && i < n; i++) {
		uint64_t entry = log[numbers[i] & (size - 1)];
		if (!numbers[i] || (uint32_t)(entry >> 32) != numbers[i])
			continue; /* open, or overwritten by a later request */
		uint32_t id = (uint32_t)entry;
		endpoints[i] = id == DYNOTAG_ID_NONE ? tag_request_abandoned :
			       id == DYNOTAG_ID_UNRESOLVED ? TAG_ENDPOINT_UNRESOLVED :
			       string_of(r, e, id);
	}
	free(log);
	return err;
}

void tag_registry__note_exec(struct tag_registry *r, pid_t pid, uint64_t exec_ns)
{
	struct tag_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	/* Made after the exec (a sample of the new image came first): all it
	 * holds is the new image's already; reading it again would count its
	 * cuts twice. */
	if (!e || (exec_ns && e->created_ns > exec_ns))
		return;
	e = hashmap__remove(r->procs, &pid, sizeof(pid));
	if (e && e->runtime_addr && r->publish)
		r->publish(r->publish_ctx, (uint32_t)pid, NULL);
	entry_free(e);
}

int tag_registry__note_leader_exit(struct tag_registry *r, pid_t pid)
{
	if (pid <= 0 || hashmap__get(r->procs, &pid, sizeof(pid)))
		return 0;
	return get_entry_opt(r, pid, 0, 1) ? 0 : -ENOMEM;
}

void tag_registry__note_exit(struct tag_registry *r, pid_t pid)
{
	struct tag_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	if (!e)
		return;
	if (e->runtime_addr && r->publish)
		r->publish(r->publish_ctx, (uint32_t)pid, NULL);
	e->slot.exited = 1;
}

/* An exited process was withdrawn from BPF at its exit (note_exit). */
static void forget_entry(void *ctx, void *value)
{
	(void)ctx;
	entry_free(value);
}

size_t tag_registry__sweep_exited(struct tag_registry *r)
{
	return r ? process_table__sweep_exited(r->procs, forget_entry, NULL) : 0;
}

int tag_registry__tracks(const struct tag_registry *r, pid_t pid)
{
	return r && hashmap__get(r->procs, &pid, sizeof(pid)) != NULL;
}

void tag_registry__foreach(struct tag_registry *r, void (*fn)(void *ctx, pid_t pid), void *ctx)
{
	size_t cur = 0;
	void *v;
	while (hashmap__next(r->procs, &cur, NULL, NULL, &v))
		fn(ctx, ((struct tag_entry *)v)->slot.pid);
}

void tag_registry__foreach_tagged(struct tag_registry *r, void (*fn)(void *ctx, pid_t pid),
				  void *ctx)
{
	size_t cur = 0;
	void *v;
	while (hashmap__next(r->procs, &cur, NULL, NULL, &v))
		if (((struct tag_entry *)v)->runtime_addr)
			fn(ctx, ((struct tag_entry *)v)->slot.pid);
}

int tag_registry__scan(struct tag_registry *r)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		struct tag_entry *e = get_entry(r, (pid_t)atoi(de->d_name));
		found += e && e->runtime_addr;
	}
	closedir(d);
	return found;
}

int tag_registry__touch(struct tag_registry *r, pid_t pid)
{
	return get_entry(r, pid) ? 0 : -ENOMEM;
}

void tag_registry__stats(const struct tag_registry *r, struct tag_registry_stats *out)
{
	*out = r->stats;
}
