// SPDX-License-Identifier: MIT
#include "symbolize/elf_dynsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Upper bound on PT_LOAD segments kept (real files have 2-5). */
#define MAX_LOAD_SEGMENTS 32

struct elf_dynsym {
	int fd;                          /* the open file, owned */
	Elf *elf;                        /* libelf handle over fd, owned */
	int type;                        /* e_type */
	int elf_class;                   /* ELFCLASS32 / ELFCLASS64 */
	size_t segment_count;            /* entries in segments */
	struct elf_load_segment *segments; /* PT_LOAD headers, owned */
	int sections_scanned;            /* section headers looked at (lazy) */
	Elf_Scn *dynsym;                 /* .dynsym (SHT_DYNSYM), or NULL */
	Elf_Scn *symtab;                 /* .symtab (SHT_SYMTAB), or NULL */
	Elf_Scn *gnu_hash;               /* SHT_GNU_HASH over .dynsym, or NULL */
};

static pthread_once_t libelf_once = PTHREAD_ONCE_INIT;
static int libelf_ok;

static void libelf_init(void)
{
	libelf_ok = elf_version(EV_CURRENT) != EV_NONE;
}

void elf_dynsym__free(struct elf_dynsym *file)
{
	if (!file)
		return;
	if (file->elf)
		elf_end(file->elf);
	if (file->fd >= 0)
		close(file->fd);
	free(file->segments);
	free(file);
}

static int read_segments(struct elf_dynsym *file)
{
	size_t phnum;

	if (elf_getphdrnum(file->elf, &phnum) != 0)
		return -ENOEXEC;
	file->segments = calloc(MAX_LOAD_SEGMENTS, sizeof(*file->segments));
	if (!file->segments)
		return -ENOMEM;
	for (size_t i = 0; i < phnum && file->segment_count < MAX_LOAD_SEGMENTS; i++) {
		GElf_Phdr phdr;
		if (!gelf_getphdr(file->elf, (int)i, &phdr))
			return -ENOEXEC;
		if (phdr.p_type != PT_LOAD)
			continue;
		struct elf_load_segment *seg = &file->segments[file->segment_count++];
		seg->vaddr = phdr.p_vaddr;
		seg->offset = phdr.p_offset;
		seg->filesz = phdr.p_filesz;
		seg->memsz = phdr.p_memsz;
		seg->flags = phdr.p_flags;
	}
	return file->segment_count ? 0 : -ENOEXEC;
}

struct elf_dynsym *elf_dynsym__open(const char *path)
{
	struct elf_dynsym *file;
	GElf_Ehdr ehdr;
	int err;

	pthread_once(&libelf_once, libelf_init);
	if (!libelf_ok) {
		errno = ENOEXEC;
		return NULL;
	}
	file = calloc(1, sizeof(*file));
	if (!file)
		return NULL;
	file->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (file->fd < 0) {
		err = errno;
		free(file);
		errno = err;
		return NULL;
	}
	/* ELF_C_READ, not ..._MMAP: a library rewritten in place while we read
	 * it must not SIGBUS the profiler; sections are read lazily (pread). */
	file->elf = elf_begin(file->fd, ELF_C_READ, NULL);
	if (!file->elf || elf_kind(file->elf) != ELF_K_ELF || !gelf_getehdr(file->elf, &ehdr)) {
		err = ENOEXEC;
		goto fail;
	}
	file->type = ehdr.e_type;
	file->elf_class = gelf_getclass(file->elf);
	err = -read_segments(file);
	if (err)
		goto fail;
	return file;
fail:
	elf_dynsym__free(file);
	errno = err;
	return NULL;
}

int elf_dynsym__type(const struct elf_dynsym *file)
{
	return file->type;
}

int elf_dynsym__class(const struct elf_dynsym *file)
{
	return file->elf_class;
}

size_t elf_dynsym__segment_count(const struct elf_dynsym *file)
{
	return file->segment_count;
}

const struct elf_load_segment *elf_dynsym__segment(const struct elf_dynsym *file, size_t index)
{
	return index < file->segment_count ? &file->segments[index] : NULL;
}

static void scan_sections(struct elf_dynsym *file)
{
	Elf_Scn *scn = NULL;
	size_t dynsym_index = 0;

	if (file->sections_scanned)
		return;
	file->sections_scanned = 1;
	while ((scn = elf_nextscn(file->elf, scn))) {
		GElf_Shdr shdr;
		if (!gelf_getshdr(scn, &shdr))
			continue;
		if (shdr.sh_type == SHT_DYNSYM && !file->dynsym) {
			file->dynsym = scn;
			dynsym_index = elf_ndxscn(scn);
		} else if (shdr.sh_type == SHT_SYMTAB && !file->symtab) {
			file->symtab = scn;
		}
	}
	if (!file->dynsym)
		return;
	scn = NULL;
	while ((scn = elf_nextscn(file->elf, scn))) {
		GElf_Shdr shdr;
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_GNU_HASH &&
		    shdr.sh_link == dynsym_index) {
			file->gnu_hash = scn;
			break;
		}
	}
}

static uint32_t gnu_hash_of(const char *name)
{
	uint32_t h = 5381;
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = h * 33 + *c;
	return h;
}

static void record(struct elf_sym_value *out, const GElf_Sym *sym)
{
	out->value = sym->st_value;
	out->size = sym->st_size;
	out->found = 1;
}

/* Looks name up in .dynsym through the GNU hash table (ELFCLASS64 layout).
 * Returns 1 found, 0 absent, -ENOEXEC on a malformed table. */
static int gnu_hash_lookup(struct elf_dynsym *file, Elf_Data *syms, size_t sym_count,
			   size_t strtab, const Elf_Data *hash, const char *name,
			   struct elf_sym_value *out)
{
	const uint32_t *words = hash->d_buf;
	size_t word_count = hash->d_size / 4;

	if (word_count < 4)
		return -ENOEXEC;
	uint32_t nbuckets = words[0], symoffset = words[1], bloom_size = words[2],
		 bloom_shift = words[3];
	size_t buckets_at = 4 + (size_t)bloom_size * 2; /* 64-bit bloom words */
	size_t chain_at = buckets_at + nbuckets;
	/* A shift of 32 or more is no hash table ld.so could use (and undefined
	 * in C): malformed, as a hostile binary may make it. */
	if (!nbuckets || !bloom_size || bloom_shift >= 32 || chain_at > word_count)
		return -ENOEXEC;

	uint32_t h = gnu_hash_of(name);
	uint64_t bloom;
	memcpy(&bloom, &words[4 + (size_t)((h / 64) % bloom_size) * 2], sizeof(bloom));
	uint64_t mask = (1ULL << (h % 64)) | (1ULL << ((h >> bloom_shift) % 64));
	if ((bloom & mask) != mask)
		return 0;
	uint32_t index = words[buckets_at + h % nbuckets];
	if (index < symoffset)
		return 0;
	for (;; index++) {
		size_t chain_index = chain_at + (index - symoffset);
		if (chain_index >= word_count || index >= sym_count)
			return -ENOEXEC;
		uint32_t chain_hash = words[chain_index];
		if ((chain_hash | 1) == (h | 1)) {
			GElf_Sym sym;
			const char *sym_name;
			if (gelf_getsym(syms, (int)index, &sym) && sym.st_shndx != SHN_UNDEF &&
			    (sym_name = elf_strptr(file->elf, strtab, sym.st_name)) &&
			    strcmp(sym_name, name) == 0) {
				record(out, &sym);
				return 1;
			}
		}
		if (chain_hash & 1)
			return 0;
	}
}

/* Scans a whole symbol table for the names not found yet. Returns the number
 * newly found or -ENOEXEC. */
static int linear_lookup(struct elf_dynsym *file, Elf_Scn *scn, const char *const *names,
			 size_t count, struct elf_sym_value *out)
{
	GElf_Shdr shdr;
	Elf_Data *data;
	size_t missing = 0;
	int found = 0;

	for (size_t i = 0; i < count; i++)
		missing += !out[i].found;
	if (!gelf_getshdr(scn, &shdr) || !shdr.sh_entsize || !(data = elf_getdata(scn, NULL)))
		return -ENOEXEC;
	size_t sym_count = shdr.sh_size / shdr.sh_entsize;
	for (size_t s = 1; s < sym_count && missing; s++) {
		GElf_Sym sym;
		if (!gelf_getsym(data, (int)s, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_name)
			continue;
		const char *sym_name = elf_strptr(file->elf, shdr.sh_link, sym.st_name);
		if (!sym_name)
			continue;
		for (size_t i = 0; i < count; i++) {
			if (out[i].found || sym_name[0] != names[i][0] || strcmp(sym_name, names[i]))
				continue;
			record(&out[i], &sym);
			missing--;
			found++;
		}
	}
	return found;
}

static int dynamic_lookup(struct elf_dynsym *file, const char *const *names, size_t count,
			  struct elf_sym_value *out)
{
	GElf_Shdr shdr;
	Elf_Data *syms, *hash;
	int found = 0;

	if (!file->dynsym)
		return 0;
	if (!file->gnu_hash || file->elf_class != ELFCLASS64)
		return linear_lookup(file, file->dynsym, names, count, out);
	if (!gelf_getshdr(file->dynsym, &shdr) || !shdr.sh_entsize ||
	    !(syms = elf_getdata(file->dynsym, NULL)) || !(hash = elf_getdata(file->gnu_hash, NULL)))
		return -ENOEXEC;
	for (size_t i = 0; i < count; i++) {
		if (out[i].found)
			continue;
		int r = gnu_hash_lookup(file, syms, shdr.sh_size / shdr.sh_entsize, shdr.sh_link,
					hash, names[i], &out[i]);
		if (r < 0)
			return r;
		found += r;
	}
	return found;
}

int elf_dynsym__find_many(struct elf_dynsym *file, const char *const *names, size_t count,
			  unsigned int tables, struct elf_sym_value *out)
{
	int found = 0, r;
	size_t i;

	if (!file || (count && (!names || !out)))
		return -EINVAL;
	for (i = 0; i < count; i++) {
		if (!names[i] || !names[i][0])
			return -EINVAL;
		memset(&out[i], 0, sizeof(out[i]));
	}
	scan_sections(file);
	if (tables & ELF_DYNSYM_DYNAMIC) {
		r = dynamic_lookup(file, names, count, out);
		if (r < 0)
			return r;
		found += r;
	}
	if ((tables & ELF_DYNSYM_STATIC) && file->symtab && (size_t)found < count) {
		r = linear_lookup(file, file->symtab, names, count, out);
		if (r < 0)
			return r;
		found += r;
	}
	return found;
}

int elf_dynsym__find(struct elf_dynsym *file, const char *name, unsigned int tables,
		     struct elf_sym_value *out)
{
	int r = elf_dynsym__find_many(file, &name, 1, tables, out);
	if (r < 0)
		return r;
	return r ? 0 : -ENOENT;
}

int elf_load_segments__bias(const struct elf_load_segment *segments, size_t count,
			    uint64_t map_start, uint64_t map_offset, uint64_t *bias)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t page_mask = ~((uint64_t)(page > 0 ? page : 4096) - 1);

	/* The kernel maps a segment from its page-aligned file offset, so a
	 * mapping may start up to a page before p_offset. Within a segment,
	 * vaddr - offset is constant. */
	for (size_t i = 0; i < count; i++) {
		const struct elf_load_segment *seg = &segments[i];
		if (map_offset < (seg->offset & page_mask) || map_offset >= seg->offset + seg->filesz)
			continue;
		*bias = map_start - (map_offset + seg->vaddr - seg->offset);
		return 0;
	}
	return -ENOENT;
}

int elf_dynsym__load_bias(const struct elf_dynsym *file, uint64_t map_start, uint64_t map_offset,
			  uint64_t *bias)
{
	return elf_load_segments__bias(file->segments, file->segment_count, map_start, map_offset,
				       bias);
}

int elf_dynsym__read(const struct elf_dynsym *file, uint64_t vaddr, void *buf, size_t len)
{
	for (size_t i = 0; i < file->segment_count; i++) {
		const struct elf_load_segment *seg = &file->segments[i];
		if (vaddr < seg->vaddr || vaddr - seg->vaddr > seg->filesz ||
		    len > seg->filesz - (vaddr - seg->vaddr))
			continue;
		ssize_t n = pread(file->fd, buf, len, (off_t)(seg->offset + (vaddr - seg->vaddr)));
		if (n < 0)
			return -errno;
		return (size_t)n == len ? 0 : -EIO;
	}
	return -ENOENT;
}
