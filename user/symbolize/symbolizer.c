// SPDX-License-Identifier: MIT
#include "symbolize/symbolizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "util/privileges.h"
#include "symbolize/ksyms.h"
#include "symbolize/map_path.h"
#include "symbolize/proc_maps.h"
#include "symbolize/symcache.h"
#include "util/hashmap.h"
#include "util/process_table.h"
#include "util/remote.h"
#include "util/clock.h"

#define DEFAULT_MAX_PROCESSES 16384
#define DEFAULT_SYMCACHE_ENTRIES 2048
/* A process whose address missed every mapping is read again: at once the
 * first time (a process first read while the dynamic loader was still mapping
 * its libraries, or a dlopen() since), then, while re-reads in a row do not
 * find their address (a wild address, JIT code), at most this often, the
 * interval doubling each time up to MAPS_REFRESH_MAX_DOUBLINGS times (6.4 s):
 * a busy process whose stack walks end in garbage must not cost a maps read
 * five times a second. */
#define MAPS_REFRESH_INTERVAL_NS 200000000ull
#define MAPS_REFRESH_MAX_DOUBLINGS 5

/* What we know of one process. */
struct proc_entry {
	struct process_slot slot; /* pid, exited, LRU tick (first: see process_table.h) */
	struct proc_maps *maps;   /* executable mappings; NULL until read or after exec */
	int maps_failed;          /* the last read failed (process gone): do not retry */
	uint64_t last_read_ns;    /* CLOCK_MONOTONIC time of the last maps read */
	unsigned futile_refreshes;/* re-reads in a row that did not find their address */
};

struct symbolizer {
	struct hashmap *procs;        /* pid -> struct proc_entry* */
	size_t max_processes;         /* bound on procs */
	struct symcache *symcache;    /* per-binary symbol tables */
	struct ksyms *ksyms;          /* kernel symbols, loaded at the first kernel frame */
	struct elf_symtab *vdso;      /* the kernel's vDSO image (same in every process) */
	int vdso_failed;              /* loading it failed: do not retry */
	int ksyms_failed;             /* loading kallsyms failed: do not retry */
	uint64_t tick;                /* lookup counter for LRU */
	char *debug_dir;              /* DYNOPROF_DEBUG_DIR: global debug directory, NULL default */
	struct symbolizer_stats stats;/* counters */
};

struct symbolizer *symbolizer__new(size_t max_processes)
{
	struct symbolizer *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max_processes = max_processes ? max_processes : DEFAULT_MAX_PROCESSES;
	s->procs = hashmap__new();
	s->symcache = symcache__new(DEFAULT_SYMCACHE_ENTRIES);
	/* Read once: where separate debug files live instead of /usr/lib/debug
	 * (inside each process's root, then on the host). */
	const char *debug_dir = getenv("DYNOPROF_DEBUG_DIR");
	if (debug_dir && debug_dir[0])
		s->debug_dir = strdup(debug_dir);
	if (!s->procs || !s->symcache || (debug_dir && debug_dir[0] && !s->debug_dir)) {
		symbolizer__free(s);
		errno = ENOMEM;
		return NULL;
	}
	return s;
}

static void proc_entry_free(struct proc_entry *pe)
{
	if (!pe)
		return;
	proc_maps__free(pe->maps);
	free(pe);
}

void symbolizer__free(struct symbolizer *s)
{
	if (!s)
		return;
	if (s->procs) {
		size_t cur = 0;
		void *v;
		while (hashmap__next(s->procs, &cur, NULL, NULL, &v))
			proc_entry_free(v);
		hashmap__free(s->procs);
	}
	symcache__free(s->symcache);
	ksyms__free(s->ksyms);
	elf_symtab__put(s->vdso);
	free(s->debug_dir);
	free(s);
}

static void evict_entry(void *ctx, void *value)
{
	(void)ctx;
	proc_entry_free(value);
}

/* Returns 0, or -errno when the read failed (the old mappings stay). */
static int read_maps(struct symbolizer *s, struct proc_entry *pe)
{
	struct proc_maps *m = proc_maps__read(pe->slot.pid);
	pe->last_read_ns = mono_ns();
	s->stats.maps_reads++;
	if (!m) {
		int err = -errno;
		if (!pe->maps) {
			pe->maps_failed = 1;
			s->stats.maps_failures++;
			if (errno == EACCES || errno == EPERM)
				s->stats.maps_denied++;
		}
		return err; /* keep the old maps if we had some */
	}
	proc_maps__free(pe->maps);
	pe->maps = m;
	pe->maps_failed = 0;
	return 0;
}

static struct proc_entry *get_proc(struct symbolizer *s, pid_t pid)
{
	struct proc_entry *pe = process_table__get(s->procs, pid, s->max_processes, sizeof(*pe),
						   &s->tick, evict_entry, NULL, NULL);
	if (!pe)
		return NULL;
	if (!pe->maps && !pe->maps_failed)
		read_maps(s, pe);
	return pe;
}

void symbolizer__note_exec(struct symbolizer *s, pid_t pid)
{
	struct proc_entry *pe = hashmap__get(s->procs, &pid, sizeof(pid));
	if (!pe)
		return;
	proc_maps__free(pe->maps);
	pe->maps = NULL;
	pe->maps_failed = 0;
	pe->futile_refreshes = 0;
	pe->slot.exited = 0;
}

void symbolizer__note_exit(struct symbolizer *s, pid_t pid)
{
	struct proc_entry *pe = hashmap__get(s->procs, &pid, sizeof(pid));
	if (pe)
		pe->slot.exited = 1;
}

const struct proc_maps *symbolizer__fresh_maps(void *ctx, pid_t pid)
{
	struct symbolizer *s = ctx;
	struct proc_entry *pe = process_table__get(s->procs, pid, s->max_processes, sizeof(*pe),
						   &s->tick, evict_entry, NULL, NULL);
	if (!pe) {
		errno = ENOMEM;
		return NULL;
	}
	if (pe->maps && mono_ns() - pe->last_read_ns < PROC_MAPS_FRESH_NS)
		return pe->maps;
	int err = read_maps(s, pe);
	if (err) {
		errno = -err;
		return NULL;
	}
	return pe->maps;
}

void symbolizer__set_symcache_bytes(struct symbolizer *s, size_t max_bytes)
{
	symcache__set_max_bytes(s->symcache, max_bytes);
}

size_t symbolizer__sweep_exited(struct symbolizer *s)
{
	return s ? process_table__sweep_exited(s->procs, evict_entry, NULL) : 0;
}

int symbolizer__touch(struct symbolizer *s, pid_t pid)
{
	return get_proc(s, pid) ? 0 : -ENOMEM;
}

static int special_frame(struct profile *p, enum frame_kind kind, const char *name,
			 const char *module, uint32_t *id)
{
	struct frame_desc d = { .kind = kind, .name = name, .module = module };
	return profile__add_frame(p, &d, id);
}

/* Looks addr up in the binary behind mapping m of process pid. Returns 0 with
 * name and table set (the caller puts the table), or -ENOENT. */
static int lookup_in_binary(struct symbolizer *s, pid_t pid, const struct proc_map *m,
			    uint64_t addr, const char **name, struct elf_symtab **table_out)
{
	char open_path[4200], inside[4096];
	dev_t dev = makedev(m->dev_major, m->dev_minor);
	struct elf_symtab *t = NULL;
	/* The path as the process sees it (a chrooted process's maps show our
	 * path of its root: symbolize/map_path.h), for its own debug files too. */
	struct elf_symtab_opts o = {
		.logical_path = map_path__in_root(pid, m->path, inside, sizeof(inside)),
		.debug_dir = s->debug_dir };
	char root[64];

	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	if (m->deleted) {
		snprintf(open_path, sizeof(open_path), "/proc/%d/map_files/%llx-%llx", (int)pid,
			 (unsigned long long)m->start, (unsigned long long)m->end);
		t = symcache__get_opts(s->symcache, open_path, dev, (ino_t)m->inode, &o);
	}
	struct stat st;
	if (!t) {
		o.root = root;
		snprintf(open_path, sizeof(open_path), "%s%s", root, inside);
		/* A deleted mapping's path holds another file now, if any (a new
		 * build renamed over it), and map_files needs CAP_SYS_ADMIN or
		 * CAP_CHECKPOINT_RESTORE: only the same inode may name it. */
		if (!m->deleted || (stat(open_path, &st) == 0 && st.st_ino == m->inode))
			t = symcache__get_opts(s->symcache, open_path, dev, (ino_t)m->inode, &o);
	}
	if (!t && errno != ENOEXEC && stat(m->path, &st) == 0 && st.st_ino == m->inode) {
		/* The process is gone (so is its root link): the host path serves
		 * only when it is the same file (same inode), never a namesake. */
		o.root = NULL;
		o.logical_path = m->path;
		t = symcache__get_opts(s->symcache, m->path, dev, (ino_t)m->inode, &o);
	}
	if (!t)
		return -ENOENT;
	uint64_t vaddr, off;
	if (elf_symtab__addr_to_vaddr(t, addr, m->start, m->offset, &vaddr) ||
	    elf_symtab__lookup(t, vaddr, name, &off)) {
		*table_out = t; /* still useful for the build-id */
		return -ENOENT;
	}
	*table_out = t;
	return 0;
}

/* The vDSO is one image per kernel: resolve it from our own copy. */
static int vdso_frame(struct symbolizer *s, const struct proc_map *m, uint64_t lookup,
		      uint64_t addr, struct profile *p, uint32_t *frame_id)
{
	if (!s->vdso && !s->vdso_failed) {
		const void *image = (const void *)getauxval(AT_SYSINFO_EHDR);
		/* The vDSO is at most a few pages; its ELF header tells its size, but
		 * two pages cover every x86_64 kernel's. */
		s->vdso = image ? elf_symtab__open_image(image, 8192) : NULL;
		s->vdso_failed = !s->vdso;
	}
	const char *name = "[vdso]";
	uint64_t vaddr, off;
	if (s->vdso && (elf_symtab__addr_to_vaddr(s->vdso, lookup, m->start, m->offset, &vaddr) ||
			elf_symtab__lookup(s->vdso, vaddr, &name, &off)))
		name = "[vdso]";
	struct frame_desc d = { .kind = FRAME_NATIVE, .name = name, .module = "[vdso]",
				.address = addr };
	return profile__add_frame(p, &d, frame_id);
}

/* The address to look up for a frame: a return address points past its call
 * instruction, so addr - 1 lands inside the call. */
static uint64_t lookup_address(uint64_t addr, int is_return_address)
{
	return is_return_address && addr ? addr - 1 : addr;
}

int symbolizer__user_frame(struct symbolizer *s, pid_t pid, uint64_t addr,
			   int is_return_address, struct profile *p, uint32_t *frame_id)
{
	uint64_t lookup = lookup_address(addr, is_return_address);
	struct proc_entry *pe = get_proc(s, pid);
	if (!pe)
		return -ENOMEM;
	const struct proc_map *m = pe->maps ? proc_maps__find(pe->maps, lookup) : NULL;
	unsigned doublings = pe->futile_refreshes <= MAPS_REFRESH_MAX_DOUBLINGS ?
			     pe->futile_refreshes - 1 : MAPS_REFRESH_MAX_DOUBLINGS;
	uint64_t wait_ns = pe->futile_refreshes ? MAPS_REFRESH_INTERVAL_NS << doublings : 0;
	if (!m && !pe->slot.exited && !pe->maps_failed &&
	    mono_ns() - pe->last_read_ns >= wait_ns) {
		read_maps(s, pe);
		m = pe->maps ? proc_maps__find(pe->maps, lookup) : NULL;
		pe->futile_refreshes = m ? 0 : pe->futile_refreshes + 1;
	}
	if (!m) {
		s->stats.unknown_frames++;
		return special_frame(p, FRAME_NATIVE, "[unknown]", NULL, frame_id);
	}
	if (strcmp(m->path, "[vdso]") == 0)
		return vdso_frame(s, m, lookup, addr, p, frame_id);
	if (m->path[0] == '[' || m->path[0] == '\0') {
		/* [vdso], [vsyscall], or anonymous executable memory (JIT). */
		s->stats.unknown_frames += m->path[0] == '\0';
		return special_frame(p, FRAME_NATIVE, m->path[0] ? m->path : "[anon]",
				     m->path, frame_id);
	}

	const char *name = NULL;
	struct elf_symtab *table = NULL;
	char fallback[512];
	int found = lookup_in_binary(s, pid, m, lookup, &name, &table) == 0;
	if (!found) {
		/* No symbol: the file offset of the function's start when an FDE of
		 * .eh_frame covers the address (one frame per function, not per
		 * address), else of the address itself. */
		uint64_t file_offset = lookup - m->start + m->offset, vaddr, start;
		if (table && !elf_symtab__addr_to_vaddr(table, lookup, m->start, m->offset, &vaddr) &&
		    !elf_symtab__function_start(table, vaddr, &start))
			file_offset -= vaddr - start;
		s->stats.unknown_frames++;
		snprintf(fallback, sizeof(fallback), "%s+0x%llx", path_basename(m->path),
			 (unsigned long long)file_offset);
		name = fallback;
	}
	uint32_t mapping = 0;
	int err = profile__add_mapping(p, m->start, m->end, m->offset, m->path,
				       table ? elf_symtab__build_id(table) : NULL, &mapping);
	if (!err) {
		struct frame_desc d = { .kind = FRAME_NATIVE, .name = name, .module = m->path,
					.mapping = mapping, .address = addr };
		err = profile__add_frame(p, &d, frame_id);
	}
	elf_symtab__put(table);
	return err;
}

/* Loads kernel symbols on first use; warns once if they cannot be read. */
static void load_ksyms(struct symbolizer *s)
{
	if (!s->ksyms && !s->ksyms_failed) {
		s->ksyms = ksyms__load(NULL);
		uint64_t cap;
		if (!s->ksyms) {
			s->ksyms_failed = 1;
			/* Hidden addresses without CAP_SYSLOG: privileges__warn() named
			 * that capability and this cost at start already. */
			if (errno == EPERM && !privileges__effective(&cap) &&
			    !(cap & CAPMASK(CAPBIT_SYSLOG)))
				return;
			fprintf(stderr, "dynoprof: warning: cannot read kernel symbols from "
				"/proc/kallsyms (%s): kernel frames show as [kernel]\n",
				strerror(errno));
		}
	}
}

/* The entry of the local APIC timer interrupt on x86-64: the first frame of
 * an interrupted context's stack below it is the interrupted code. */
#define TIMER_INTERRUPT_ENTRY "asm_sysvec_apic_timer_interrupt"

bool symbolizer__is_interrupt_entry(struct symbolizer *s, uint64_t addr, int is_return_address)
{
	const char *name;
	load_ksyms(s);
	return s->ksyms &&
	       !ksyms__lookup(s->ksyms, lookup_address(addr, is_return_address), &name, NULL,
			      NULL) &&
	       !strcmp(name, TIMER_INTERRUPT_ENTRY);
}

int symbolizer__kernel_frame(struct symbolizer *s, uint64_t addr, int is_return_address,
			     struct profile *p, uint32_t *frame_id)
{
	uint64_t lookup = lookup_address(addr, is_return_address);
	load_ksyms(s);
	const char *name, *module;
	uint64_t off;
	if (!s->ksyms || ksyms__lookup(s->ksyms, lookup, &name, &module, &off)) {
		s->stats.unknown_frames++;
		return special_frame(p, FRAME_KERNEL, "[kernel]", "[kernel.kallsyms]", frame_id);
	}
	struct frame_desc d = { .kind = FRAME_KERNEL, .name = name,
				.module = module[0] ? module : "[kernel.kallsyms]",
				.address = addr };
	return profile__add_frame(p, &d, frame_id);
}

void symbolizer__stats(const struct symbolizer *s, struct symbolizer_stats *out)
{
	struct symcache_stats cs;
	*out = s->stats;
	out->processes = hashmap__size(s->procs);
	symcache__stats(s->symcache, &cs);
	out->symcache_hits = cs.hits;
	out->symcache_misses = cs.misses;
	out->symcache_evictions = cs.evictions;
	out->symcache_bytes = cs.bytes;
	out->symcache_truncated = cs.truncated_loads;
}
