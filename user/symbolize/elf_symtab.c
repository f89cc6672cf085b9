/* elf_symtab.c - load ELF function symbols with libelf and resolve addresses. */
#include "symbolize/elf_symtab.h"

#include "symbolize/demangle.h"
#include "symbolize/fde_ranges.h"
#include "symbolize/minidebug.h"
#include "util/strbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define DEFAULT_DEBUG_DIR "/usr/lib/debug"

/* How far lookup walks back past a non-containing candidate to find an
 * enclosing (overlapping) symbol; overlaps are rare and shallow. */
#define LOOKUP_MAX_WALK_BACK 16

/* One function: the half-open vaddr range [start, end). */
struct elf_func {
	uint64_t start; /* first ELF vaddr of the function */
	uint64_t end;   /* one past its last byte (size, or extent of a zero-size symbol) */
	uint32_t name;  /* offset of the demangled name in elf_symtab.names */
};

/* The file-offset to vaddr translation of one PT_LOAD program header. */
struct elf_load_segment {
	uint64_t file_offset; /* p_offset */
	uint64_t file_size;   /* p_filesz: bytes backed by the file */
	uint64_t vaddr;       /* p_vaddr */
};

struct elf_symtab {
	unsigned int refcount;              /* holders; the last put frees (atomic) */
	struct elf_func *funcs;             /* sorted by start, one entry per start */
	size_t nfuncs;                      /* entries in funcs */
	char *names;                        /* NUL-separated demangled names */
	struct elf_load_segment *segments;  /* PT_LOAD segments of the binary */
	size_t nsegments;                   /* entries in segments */
	char build_id[ELF_SYMTAB_BUILD_ID_MAX]; /* hex build-id, "" when none */
	char *debug_path;                   /* separate debug file used, or NULL */
	size_t names_bytes;                 /* bytes allocated for names (for bytes()) */
	struct fde_ranges fdes;             /* function ranges of .eh_frame, for unnamed code */
	bool minidebug;                     /* .symtab came from .gnu_debugdata (MiniDebugInfo) */
	bool minidebug_too_large;           /* .gnu_debugdata decompressed past its bound: unused */
};

/* A symbol seen while loading, before aliases are collapsed. */
struct sym_candidate {
	uint64_t start;       /* st_value */
	uint64_t size;        /* st_size, 0 for assembly without .size */
	uint64_t section_end; /* end vaddr of its section; 0 when unknown */
	const char *raw_name; /* mangled name inside a still-open Elf's data */
	uint8_t bind_rank;    /* alias preference by binding: 0 global, 1 weak, 2 other */
};

/* A growable array of candidates. */
struct candidate_vec {
	struct sym_candidate *items; /* malloc'd array */
	size_t len;                  /* used entries */
	size_t cap;                  /* allocated entries */
};

/* An opened ELF file: its descriptor and libelf handle. */
struct elf_file {
	int fd;   /* open descriptor, -1 when closed */
	Elf *elf; /* libelf handle over fd, NULL when closed */
};

/* libelf must be told the ELF version once per process before any use. */
static pthread_once_t libelf_init_once = PTHREAD_ONCE_INIT;
static bool libelf_ready; /* set by init_libelf: elf_version() accepted EV_CURRENT */

static void init_libelf(void)
{
	libelf_ready = elf_version(EV_CURRENT) != EV_NONE;
}

static int elf_file__open(struct elf_file *file, const char *path)
{
	file->fd = -1;
	file->elf = NULL;
	pthread_once(&libelf_init_once, init_libelf);
	if (!libelf_ready)
		return -ENOEXEC;
	file->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (file->fd < 0)
		return -errno;
	file->elf = elf_begin(file->fd, ELF_C_READ_MMAP, NULL);
	if (!file->elf || elf_kind(file->elf) != ELF_K_ELF) {
		elf_end(file->elf);
		close(file->fd);
		file->fd = -1;
		file->elf = NULL;
		return -ENOEXEC;
	}
	GElf_Ehdr ehdr;

	if (!gelf_getehdr(file->elf, &ehdr)) {
		elf_end(file->elf);
		close(file->fd);
		file->fd = -1;
		file->elf = NULL;
		return -ENOEXEC;
	}
	return 0;
}

static void elf_file__close(struct elf_file *file)
{
	if (file->elf)
		elf_end(file->elf);
	if (file->fd >= 0)
		close(file->fd);
	file->elf = NULL;
	file->fd = -1;
}

/* Scans one note block for NT_GNU_BUILD_ID. Returns 0 (out filled), -ENODATA,
 * or -ENOSPC. */
static int build_id_from_notes(Elf_Data *data, char *out, size_t out_len)
{
	static const char hex[] = "0123456789abcdef";
	size_t offset = 0, next, name_offset, desc_offset;
	GElf_Nhdr nhdr;

	if (!data || !data->d_buf)
		return -ENODATA;
	while ((next = gelf_getnote(data, offset, &nhdr, &name_offset, &desc_offset)) > 0) {
		const unsigned char *buf = data->d_buf;

		if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == sizeof(ELF_NOTE_GNU) &&
		    memcmp(buf + name_offset, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) == 0 &&
		    nhdr.n_descsz > 0) {
			if (out_len < 2 * (size_t)nhdr.n_descsz + 1)
				return -ENOSPC;
			for (size_t i = 0; i < nhdr.n_descsz; i++) {
				out[2 * i] = hex[buf[desc_offset + i] >> 4];
				out[2 * i + 1] = hex[buf[desc_offset + i] & 0xf];
			}
			out[2 * nhdr.n_descsz] = '\0';
			return 0;
		}
		offset = next;
	}
	return -ENODATA;
}

/* Finds the build-id in SHT_NOTE sections, else in PT_NOTE segments (files
 * whose section headers were stripped). Returns as build_id_from_notes(). */
static int elf_read_build_id(Elf *elf, char *out, size_t out_len)
{
	Elf_Scn *scn = NULL;
	int err;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;

		if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE)
			continue;
		err = build_id_from_notes(elf_getdata(scn, NULL), out, out_len);
		if (err != -ENODATA)
			return err;
	}
	size_t phnum = 0;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return -ENODATA;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != PT_NOTE)
			continue;
		Elf_Data *data = elf_getdata_rawchunk(elf, (int64_t)phdr.p_offset, phdr.p_filesz,
						      phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);

		err = build_id_from_notes(data, out, out_len);
		if (err != -ENODATA)
			return err;
	}
	return -ENODATA;
}

int elf_symtab__read_build_id(const char *path, char *out, size_t out_len)
{
	struct elf_file file;
	int err;

	if (!path || !out || out_len == 0)
		return -EINVAL;
	err = elf_file__open(&file, path);
	if (err)
		return err;
	err = elf_read_build_id(file.elf, out, out_len);
	elf_file__close(&file);
	return err;
}

/* Returns the first section of the given type with entries, or NULL. */
static Elf_Scn *find_section_by_type(Elf *elf, Elf64_Word type, GElf_Shdr *shdr_out)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, shdr_out))
			continue;
		if (shdr_out->sh_type == type && shdr_out->sh_size > 0 && shdr_out->sh_entsize > 0)
			return scn;
	}
	return NULL;
}

static Elf_Scn *find_section_by_name(Elf *elf, const char *name)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		const char *scn_name;

		if (!gelf_getshdr(scn, &shdr))
			continue;
		scn_name = elf_strptr(elf, shstrndx, shdr.sh_name);
		if (scn_name && strcmp(scn_name, name) == 0)
			return scn;
	}
	return NULL;
}

static int candidate_vec__push(struct candidate_vec *vec, const struct sym_candidate *cand)
{
	if (vec->len == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 256;
		struct sym_candidate *items = realloc(vec->items, cap * sizeof(*items));

		if (!items)
			return -ENOMEM;
		vec->items = items;
		vec->cap = cap;
	}
	vec->items[vec->len++] = *cand;
	return 0;
}

/* Appends the function symbols of one SHT_SYMTAB/SHT_DYNSYM section. */
static int collect_symbols(Elf *elf, Elf_Scn *scn, const GElf_Shdr *shdr, struct candidate_vec *vec)
{
	Elf_Data *data = elf_getdata(scn, NULL);
	size_t count = shdr->sh_size / shdr->sh_entsize;

	if (!data)
		return 0;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym sym;
		struct sym_candidate cand = { 0 };
		int type;

		if (!gelf_getsym(data, (int)i, &sym))
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
			continue;
		cand.raw_name = elf_strptr(elf, shdr->sh_link, sym.st_name);
		if (!cand.raw_name || !cand.raw_name[0])
			continue;
		cand.start = sym.st_value;
		cand.size = sym.st_size;
		if (sym.st_shndx < SHN_LORESERVE) {
			GElf_Shdr sec;
			Elf_Scn *sec_scn = elf_getscn(elf, sym.st_shndx);

			if (sec_scn && gelf_getshdr(sec_scn, &sec) && (sec.sh_flags & SHF_ALLOC))
				cand.section_end = sec.sh_addr + sec.sh_size;
		}
		/* A zero-size symbol with no known section could extend anywhere. */
		if (cand.size == 0 && cand.section_end <= cand.start)
			continue;
		switch (GELF_ST_BIND(sym.st_info)) {
		case STB_GLOBAL:
			cand.bind_rank = 0;
			break;
		case STB_WEAK:
			cand.bind_rank = 1;
			break;
		default:
			cand.bind_rank = 2;
			break;
		}
		if (candidate_vec__push(vec, &cand))
			return -ENOMEM;
	}
	return 0;
}

static size_t leading_underscores(const char *s)
{
	size_t n = 0;

	while (s[n] == '_')
		n++;
	return n;
}

/* Orders by start, then puts the alias to display first: a sized symbol, a
 * global one, the one with fewest leading underscores ("malloc" over
 * "__libc_malloc"), the shortest, then alphabetical for determinism. */
static int candidate_cmp(const void *a, const void *b)
{
	const struct sym_candidate *x = a, *y = b;
	size_t ux, uy, lx, ly;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if ((x->size == 0) != (y->size == 0))
		return x->size == 0 ? 1 : -1;
	if (x->bind_rank != y->bind_rank)
		return x->bind_rank < y->bind_rank ? -1 : 1;
	ux = leading_underscores(x->raw_name);
	uy = leading_underscores(y->raw_name);
	if (ux != uy)
		return ux < uy ? -1 : 1;
	lx = strlen(x->raw_name);
	ly = strlen(y->raw_name);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->raw_name, y->raw_name);
}

/* Turns candidates into the table's sorted function array and name pool. */
static int build_functions(struct elf_symtab *table, struct candidate_vec *vec)
{
	struct strbuf names = STRBUF_INIT;
	size_t unique = 0;

	if (vec->len == 0)
		return 0;
	qsort(vec->items, vec->len, sizeof(*vec->items), candidate_cmp);
	/* Collapse aliases: keep the preferred (first) candidate of each start. */
	for (size_t i = 0; i < vec->len; i++) {
		if (unique > 0 && vec->items[unique - 1].start == vec->items[i].start)
			continue;
		vec->items[unique++] = vec->items[i];
	}
	table->funcs = calloc(unique, sizeof(*table->funcs));
	if (!table->funcs)
		return -ENOMEM;
	for (size_t i = 0; i < unique; i++) {
		const struct sym_candidate *cand = &vec->items[i];
		uint64_t end;
		char *display;

		if (cand->size) {
			end = cand->start + cand->size;
		} else {
			end = cand->section_end;
			if (i + 1 < unique && vec->items[i + 1].start < end)
				end = vec->items[i + 1].start;
		}
		if (end <= cand->start)
			continue;
		display = demangle__symbol(cand->raw_name);
		if (!display) {
			strbuf__release(&names);
			return -ENOMEM;
		}
		if (names.len > UINT32_MAX - strlen(display) - 1) {
			free(display);
			strbuf__release(&names);
			return -EFBIG;
		}
		table->funcs[table->nfuncs].start = cand->start;
		table->funcs[table->nfuncs].end = end;
		table->funcs[table->nfuncs].name = (uint32_t)names.len;
		table->nfuncs++;
		strbuf__append(&names, display, strlen(display) + 1);
		free(display);
	}
	if (strbuf__error(&names)) {
		strbuf__release(&names);
		return -ENOMEM;
	}
	table->names = names.data; /* ownership moves to the table */
	table->names_bytes = names.cap;
	return 0;
}

static int load_segments(struct elf_symtab *table, Elf *elf)
{
	size_t phnum = 0;

	if (elf_getphdrnum(elf, &phnum) != 0 || phnum == 0)
		return 0;
	table->segments = calloc(phnum, sizeof(*table->segments));
	if (!table->segments)
		return -ENOMEM;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != PT_LOAD || phdr.p_filesz == 0)
			continue;
		table->segments[table->nsegments].file_offset = phdr.p_offset;
		table->segments[table->nsegments].file_size = phdr.p_filesz;
		table->segments[table->nsegments].vaddr = phdr.p_vaddr;
		table->nsegments++;
	}
	return 0;
}

/* Reads the .gnu_debuglink section: the debug file's base name and the CRC32
 * of its contents. Returns 0 or -ENODATA. */
static int read_debuglink(Elf *elf, char *name, size_t name_len, uint32_t *crc)
{
	Elf_Scn *scn = find_section_by_name(elf, ".gnu_debuglink");
	Elf_Data *data = scn ? elf_getdata(scn, NULL) : NULL;
	GElf_Ehdr ehdr;
	const unsigned char *buf;
	size_t len, crc_offset;

	if (!data || !data->d_buf || !gelf_getehdr(elf, &ehdr))
		return -ENODATA;
	buf = data->d_buf;
	len = strnlen((const char *)buf, data->d_size);
	if (len == 0 || len == data->d_size || len >= name_len)
		return -ENODATA;
	crc_offset = (len + 1 + 3) & ~(size_t)3;
	if (crc_offset + 4 > data->d_size)
		return -ENODATA;
	memcpy(name, buf, len + 1);
	if (strchr(name, '/'))
		return -ENODATA; /* a base name by definition; never follow paths */
	const unsigned char *c = buf + crc_offset;

	if (ehdr.e_ident[EI_DATA] == ELFDATA2MSB)
		*crc = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 | (uint32_t)c[2] << 8 | c[3];
	else
		*crc = (uint32_t)c[3] << 24 | (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
	return 0;
}

/* CRC32 (the zlib/gnu_debuglink polynomial) of a whole file. */
static int file_crc32(const char *path, uint32_t *crc_out)
{
	const size_t chunk = 64 * 1024;
	unsigned char *buf;
	uLong crc = crc32(0L, Z_NULL, 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(chunk);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf, chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		crc = crc32(crc, buf, (uInt)n);
	}
	free(buf);
	close(fd);
	*crc_out = (uint32_t)crc;
	return err;
}

/* Opens candidate as a debug file when it has a .symtab (and, when expected_id
 * is given and the candidate carries a build-id, the same build-id). */
static int open_debug_candidate(const char *candidate, const char *expected_id,
				struct elf_file *out)
{
	GElf_Shdr shdr;
	int err = elf_file__open(out, candidate);

	if (err)
		return err;
	if (!find_section_by_type(out->elf, SHT_SYMTAB, &shdr)) {
		elf_file__close(out);
		return -ENODATA;
	}
	if (expected_id && expected_id[0]) {
		char id[ELF_SYMTAB_BUILD_ID_MAX];

		if (elf_read_build_id(out->elf, id, sizeof(id)) == 0 && strcmp(id, expected_id) != 0) {
			elf_file__close(out);
			return -ENODATA;
		}
	}
	return 0;
}

static bool same_file(const char *path, const struct stat *st)
{
	struct stat other;

	return stat(path, &other) == 0 && other.st_dev == st->st_dev && other.st_ino == st->st_ino;
}

/* Looks for the separate debug file of a binary without .symtab: first by
 * build-id under <root><debug_dir>/.build-id/, then by .gnu_debuglink next to
 * the binary, in its .debug/ subdirectory and under <root><debug_dir><dir>/,
 * each CRC-checked. With a root, the host's debug_dir is tried as well.
 * Returns 0 with *out open and path_out filled, or -ENODATA. */
static int find_debug_file(struct elf_symtab *table, Elf *elf, const struct stat *bin_st,
			   const char *path, const struct elf_symtab_opts *opts,
			   struct elf_file *out, char *path_out, size_t path_out_len)
{
	const char *root = opts && opts->root ? opts->root : "";
	const char *debug_dir = opts && opts->debug_dir ? opts->debug_dir : DEFAULT_DEBUG_DIR;
	const char *logical = opts && opts->logical_path ? opts->logical_path : path;
	size_t root_len = strlen(root);
	const char *roots[2] = { root, "" };
	size_t nroots = root[0] ? 2 : 1;
	char candidate[PATH_MAX];

	/* "/proc/PID/root/usr/lib/x.so" opened without logical_path: the process
	 * sees "/usr/lib/x.so". */
	if (logical == path && root_len && strncmp(path, root, root_len) == 0 &&
	    path[root_len] == '/')
		logical = path + root_len;
	if (strlen(table->build_id) > 2) {
		for (size_t r = 0; r < nroots; r++) {
			int n = snprintf(candidate, sizeof(candidate), "%s%s/.build-id/%.2s/%s.debug",
					 roots[r], debug_dir, table->build_id, table->build_id + 2);

			if (n < 0 || (size_t)n >= sizeof(candidate))
				continue;
			if (open_debug_candidate(candidate, table->build_id, out) == 0) {
				snprintf(path_out, path_out_len, "%s", candidate);
				return 0;
			}
		}
	}

	char link_name[NAME_MAX + 1];
	uint32_t link_crc;

	if (read_debuglink(elf, link_name, sizeof(link_name), &link_crc))
		return -ENODATA;

	/* The binary's directory as the process sees it: "" for "/prog", "." for a
	 * bare relative name. */
	char dir[PATH_MAX];
	const char *slash = strrchr(logical, '/');
	size_t dir_len = slash ? (size_t)(slash - logical) : 0;

	if (dir_len >= sizeof(dir))
		return -ENODATA;
	memcpy(dir, logical, dir_len);
	dir[dir_len] = '\0';
	if (!slash)
		strcpy(dir, ".");
	/* The global debug directory mirrors absolute paths only. */
	int nvariants = logical[0] == '/' ? 2 + (int)nroots : 2;

	for (int variant = 0; variant < nvariants; variant++) {
		int n;

		if (variant == 0)
			n = snprintf(candidate, sizeof(candidate), "%s%s/%s", root, dir, link_name);
		else if (variant == 1)
			n = snprintf(candidate, sizeof(candidate), "%s%s/.debug/%s", root, dir,
				     link_name);
		else
			n = snprintf(candidate, sizeof(candidate), "%s%s%s/%s", roots[variant - 2],
				     debug_dir, dir, link_name);
		if (n < 0 || (size_t)n >= sizeof(candidate))
			continue;
		if (same_file(candidate, bin_st))
			continue;
		uint32_t crc = 0;

		if (file_crc32(candidate, &crc) || crc != link_crc)
			continue;
		if (open_debug_candidate(candidate, NULL, out) == 0) {
			snprintf(path_out, path_out_len, "%s", candidate);
			return 0;
		}
	}
	return -ENODATA;
}

/* The bytes of the named section as the file holds them, with its vaddr.
 * Returns 0 or -ENODATA (absent, NOBITS, empty). */
static int section_bytes(Elf *elf, const char *name, const uint8_t **buf, size_t *size,
			 uint64_t *vaddr)
{
	Elf_Scn *scn = find_section_by_name(elf, name);
	GElf_Shdr shdr;
	Elf_Data *data;

	if (!scn || !gelf_getshdr(scn, &shdr) || shdr.sh_type == SHT_NOBITS)
		return -ENODATA;
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || data->d_size == 0)
		return -ENODATA;
	*buf = data->d_buf;
	*size = data->d_size;
	*vaddr = shdr.sh_addr;
	return 0;
}

/* The file bytes of the program header of type type containing vaddr (any
 * vaddr when want_vaddr is false). Returns 0 or -ENODATA. */
static int segment_bytes(Elf *elf, uint32_t type, bool want_vaddr, uint64_t vaddr,
			 const uint8_t **buf, size_t *size, uint64_t *seg_vaddr)
{
	size_t phnum = 0;

	if (elf_getphdrnum(elf, &phnum) != 0)
		return -ENODATA;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr phdr;

		if (!gelf_getphdr(elf, (int)i, &phdr) || phdr.p_type != type || phdr.p_filesz == 0)
			continue;
		if (want_vaddr && (vaddr < phdr.p_vaddr || vaddr - phdr.p_vaddr >= phdr.p_filesz))
			continue;
		Elf_Data *data = elf_getdata_rawchunk(elf, (int64_t)phdr.p_offset, phdr.p_filesz,
						      ELF_T_BYTE);

		if (!data || !data->d_buf)
			return -ENODATA;
		*buf = data->d_buf;
		*size = data->d_size;
		*seg_vaddr = phdr.p_vaddr;
		return 0;
	}
	return -ENODATA;
}

/* Reads the function ranges of the binary's .eh_frame (through .eh_frame_hdr,
 * or the program headers when section headers are gone). A binary without
 * them has none; only -ENOMEM fails. */
static int load_fde_ranges(struct elf_symtab *table, Elf *elf)
{
	struct fde_input in = { .addr_size = 8 };
	GElf_Ehdr ehdr;

	if (!gelf_getehdr(elf, &ehdr))
		return 0;
	in.addr_size = ehdr.e_ident[EI_CLASS] == ELFCLASS32 ? 4 : 8;
	in.big_endian = ehdr.e_ident[EI_DATA] == ELFDATA2MSB;
	if (section_bytes(elf, ".eh_frame_hdr", &in.hdr, &in.hdr_size, &in.hdr_vaddr) &&
	    segment_bytes(elf, PT_GNU_EH_FRAME, false, 0, &in.hdr, &in.hdr_size, &in.hdr_vaddr)) {
		in.hdr = NULL;
		in.hdr_size = 0;
	}
	/* Without section headers, .eh_frame lies in the loaded segment that
	 * holds the header (the parser starts where the header points). */
	if (section_bytes(elf, ".eh_frame", &in.frame, &in.frame_size, &in.frame_vaddr) &&
	    (!in.hdr || segment_bytes(elf, PT_LOAD, true, in.hdr_vaddr, &in.frame, &in.frame_size,
				      &in.frame_vaddr)))
		return 0;
	return fde_ranges__parse(&in, &table->fdes) == -ENOMEM ? -ENOMEM : 0;
}

/* MiniDebugInfo opened from .gnu_debugdata: the decompressed ELF image and
 * libelf's handle on it (the symbol names point into buf). */
struct mini_elf {
	void *buf; /* malloc'd decompressed image, NULL when none */
	Elf *elf;  /* libelf over buf, NULL when none */
};

static void mini_elf__close(struct mini_elf *m)
{
	elf_end(m->elf);
	free(m->buf);
	m->elf = NULL;
	m->buf = NULL;
}

/* Opens the binary's .gnu_debugdata as an ELF image with a .symtab. Returns 0,
 * -EFBIG (larger than MINIDEBUG_MAX_BYTES), -ENODATA (none, or unusable), or
 * -ENOMEM. */
static int open_minidebug(Elf *elf, struct mini_elf *out)
{
	const uint8_t *xz;
	size_t xz_size, size;
	uint64_t vaddr;
	GElf_Ehdr ehdr;
	GElf_Shdr shdr;

	if (section_bytes(elf, ".gnu_debugdata", &xz, &xz_size, &vaddr))
		return -ENODATA;
	int err = minidebug__decompress(xz, xz_size, 0, &out->buf, &size);

	if (err)
		return err == -ENOMEM || err == -EFBIG ? err : -ENODATA;
	out->elf = elf_memory(out->buf, size);
	if (!out->elf || elf_kind(out->elf) != ELF_K_ELF || !gelf_getehdr(out->elf, &ehdr) ||
	    !find_section_by_type(out->elf, SHT_SYMTAB, &shdr)) {
		mini_elf__close(out);
		return -ENODATA;
	}
	return 0;
}

/* Builds a table from an opened binary. path is NULL for an in-memory image
 * (then no debug file is searched). Closes bin in all cases. Returns a table
 * with one reference, or NULL with errno. */
static struct elf_symtab *load_table(struct elf_file *bin, const char *path,
				     const struct elf_symtab_opts *opts)
{
	struct elf_file debug = { .fd = -1, .elf = NULL };
	struct mini_elf mini = { 0 };
	struct candidate_vec vec = { 0 };
	struct elf_symtab *table = NULL;
	GElf_Shdr symtab_shdr, dynsym_shdr;
	Elf_Scn *symtab_scn, *dynsym_scn;
	struct stat st;
	int err;

	table = calloc(1, sizeof(*table));
	if (!table) {
		err = -ENOMEM;
		goto out;
	}
	table->refcount = 1;
	err = elf_read_build_id(bin->elf, table->build_id, sizeof(table->build_id));
	if (err)
		table->build_id[0] = '\0';
	err = load_segments(table, bin->elf);
	if (err)
		goto out;
	err = load_fde_ranges(table, bin->elf);
	if (err)
		goto out;

	symtab_scn = find_section_by_type(bin->elf, SHT_SYMTAB, &symtab_shdr);
	if (!symtab_scn && path && !(opts && opts->no_debug_file) && fstat(bin->fd, &st) == 0) {
		char debug_path[PATH_MAX];

		if (find_debug_file(table, bin->elf, &st, path, opts, &debug, debug_path,
				    sizeof(debug_path)) == 0) {
			table->debug_path = strdup(debug_path);
			if (!table->debug_path) {
				err = -ENOMEM;
				goto out;
			}
		}
	}
	/* No .symtab and no debug file: MiniDebugInfo, when the binary has it. */
	if (!symtab_scn && !debug.elf) {
		err = open_minidebug(bin->elf, &mini);
		if (err == -ENOMEM)
			goto out;
		table->minidebug = mini.elf != NULL;
		table->minidebug_too_large = err == -EFBIG;
		err = 0;
	}
	if (symtab_scn) {
		err = collect_symbols(bin->elf, symtab_scn, &symtab_shdr, &vec);
	} else if (debug.elf) {
		symtab_scn = find_section_by_type(debug.elf, SHT_SYMTAB, &symtab_shdr);
		err = symtab_scn ? collect_symbols(debug.elf, symtab_scn, &symtab_shdr, &vec) : 0;
	} else if (mini.elf) {
		symtab_scn = find_section_by_type(mini.elf, SHT_SYMTAB, &symtab_shdr);
		err = symtab_scn ? collect_symbols(mini.elf, symtab_scn, &symtab_shdr, &vec) : 0;
	}
	if (err)
		goto out;
	dynsym_scn = find_section_by_type(bin->elf, SHT_DYNSYM, &dynsym_shdr);
	if (dynsym_scn) {
		err = collect_symbols(bin->elf, dynsym_scn, &dynsym_shdr, &vec);
		if (err)
			goto out;
	}
	err = build_functions(table, &vec);
out:
	free(vec.items);
	elf_file__close(&debug);
	mini_elf__close(&mini);
	elf_file__close(bin);
	if (err) {
		elf_symtab__put(table);
		errno = -err;
		return NULL;
	}
	return table;
}

struct elf_symtab *elf_symtab__open_opts(const char *path, const struct elf_symtab_opts *opts)
{
	struct elf_file bin;
	int err;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	err = elf_file__open(&bin, path);
	if (err) {
		errno = -err;
		return NULL;
	}
	return load_table(&bin, path, opts);
}

struct elf_symtab *elf_symtab__open(const char *path)
{
	return elf_symtab__open_opts(path, NULL);
}

struct elf_symtab *elf_symtab__open_image(const void *image, size_t size)
{
	struct elf_file bin = { .fd = -1, .elf = NULL };
	struct elf_symtab *table;
	char *copy;
	int err;

	if (!image || size == 0) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&libelf_init_once, init_libelf);
	if (!libelf_ready) {
		errno = ENOEXEC;
		return NULL;
	}
	/* libelf wants a writable buffer; a private copy also lets the caller
	 * reuse theirs at once. Freed after loading: the table copies names. */
	copy = malloc(size);
	if (!copy) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(copy, image, size);
	bin.elf = elf_memory(copy, size);
	GElf_Ehdr ehdr;

	if (!bin.elf || elf_kind(bin.elf) != ELF_K_ELF || !gelf_getehdr(bin.elf, &ehdr)) {
		elf_end(bin.elf);
		free(copy);
		errno = ENOEXEC;
		return NULL;
	}
	table = load_table(&bin, NULL, NULL);
	err = errno;
	free(copy);
	errno = err;
	return table;
}

struct elf_symtab *elf_symtab__get(struct elf_symtab *table)
{
	if (table)
		__atomic_add_fetch(&table->refcount, 1, __ATOMIC_RELAXED);
	return table;
}

void elf_symtab__put(struct elf_symtab *table)
{
	if (!table || __atomic_sub_fetch(&table->refcount, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(table->funcs);
	free(table->names);
	free(table->segments);
	free(table->debug_path);
	fde_ranges__release(&table->fdes);
	free(table);
}

unsigned int elf_symtab__refcount(const struct elf_symtab *table)
{
	return table ? __atomic_load_n(&table->refcount, __ATOMIC_RELAXED) : 0;
}

int elf_symtab__lookup(const struct elf_symtab *table, uint64_t vaddr, const char **name,
		       uint64_t *offset)
{
	size_t lo = 0, hi;

	if (!table)
		return -EINVAL;
	hi = table->nfuncs;
	/* Find the first function starting after vaddr; the candidate precedes it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (table->funcs[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t walked = 0; lo > 0 && walked < LOOKUP_MAX_WALK_BACK; walked++, lo--) {
		const struct elf_func *func = &table->funcs[lo - 1];

		if (vaddr < func->end) {
			if (name)
				*name = table->names + func->name;
			if (offset)
				*offset = vaddr - func->start;
			return 0;
		}
	}
	return -ENOENT;
}

int elf_symtab__file_to_vaddr(const struct elf_symtab *table, uint64_t file_offset,
			      uint64_t *vaddr)
{
	if (!table || !vaddr)
		return -EINVAL;
	for (size_t i = 0; i < table->nsegments; i++) {
		const struct elf_load_segment *seg = &table->segments[i];

		if (file_offset >= seg->file_offset && file_offset - seg->file_offset < seg->file_size) {
			*vaddr = file_offset - seg->file_offset + seg->vaddr;
			return 0;
		}
	}
	return -ENOENT;
}

int elf_symtab__addr_to_vaddr(const struct elf_symtab *table, uint64_t addr, uint64_t map_start,
			      uint64_t map_offset, uint64_t *vaddr)
{
	if (addr < map_start)
		return -ERANGE;
	return elf_symtab__file_to_vaddr(table, addr - map_start + map_offset, vaddr);
}

const char *elf_symtab__build_id(const struct elf_symtab *table)
{
	return table && table->build_id[0] ? table->build_id : NULL;
}

const char *elf_symtab__debug_path(const struct elf_symtab *table)
{
	return table ? table->debug_path : NULL;
}

size_t elf_symtab__bytes(const struct elf_symtab *table)
{
	if (!table)
		return 0;
	return sizeof(*table) + table->nfuncs * sizeof(struct elf_func) + table->names_bytes +
	       table->nsegments * sizeof(struct elf_load_segment) +
	       table->fdes.nranges * sizeof(struct fde_range);
}

int elf_symtab__function_start(const struct elf_symtab *table, uint64_t vaddr, uint64_t *start)
{
	return table ? fde_ranges__find(&table->fdes, vaddr, start) : -EINVAL;
}

size_t elf_symtab__fde_count(const struct elf_symtab *table)
{
	return table ? table->fdes.nranges : 0;
}

bool elf_symtab__truncated(const struct elf_symtab *table)
{
	return table && (table->fdes.truncated || table->minidebug_too_large);
}

bool elf_symtab__used_minidebuginfo(const struct elf_symtab *table)
{
	return table && table->minidebug;
}

size_t elf_symtab__count(const struct elf_symtab *table)
{
	return table ? table->nfuncs : 0;
}
