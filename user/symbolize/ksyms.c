/* ksyms.c - /proc/kallsyms parsing and address lookup. */
#include "symbolize/ksyms.h"

#include "util/hashmap.h"
#include "util/strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Name offset of an entry that is not a function: it only ends the one before. */
#define KSYM_BOUNDARY UINT32_MAX

/* One kallsyms entry kept for lookup. */
struct ksym {
	uint64_t addr;   /* start address */
	uint32_t name;   /* offset of the name in ksyms.names, or KSYM_BOUNDARY */
	uint32_t module; /* offset of the module name in ksyms.names; 0 is "" (core kernel) */
	uint32_t rank;   /* alias preference while loading, lower wins; then file order */
	uint32_t order;  /* line number, for a stable sort */
};

struct ksyms {
	struct ksym *syms; /* sorted by addr, one entry per address, no two boundaries in a row */
	size_t nsyms;      /* entries in syms */
	size_t ntext;      /* entries that are functions (not boundaries) */
	char *names;       /* NUL-separated names; starts with "" at offset 0 */
};

static bool is_text_type(char type)
{
	return type == 't' || type == 'T' || type == 'w' || type == 'W';
}

/* Global (upper-case) symbols win aliases, then fewer leading underscores. */
static uint32_t alias_rank(char type, const char *name)
{
	uint32_t underscores = 0;

	while (name[underscores] == '_' && underscores < 255)
		underscores++;
	return (isupper((unsigned char)type) ? 0 : 256) + underscores;
}

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	bool x_text = x->name != KSYM_BOUNDARY, y_text = y->name != KSYM_BOUNDARY;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x_text != y_text)
		return x_text ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Parser state while reading lines. */
struct ksyms_loader {
	struct ksym *syms;        /* every parsed entry, unsorted */
	size_t nsyms;             /* used entries */
	size_t cap;               /* allocated entries */
	struct strbuf names;      /* name pool under construction */
	struct hashmap *modules;  /* module name -> pool offset + 1 */
	bool any_nonzero;         /* some address was not zero (kptr_restrict check) */
	size_t lines;             /* well-formed lines seen */
};

/* Returns the pool offset of module (interned), or UINT32_MAX on overflow/ENOMEM. */
static uint32_t intern_module(struct ksyms_loader *loader, const char *module, size_t len)
{
	void *found = hashmap__get(loader->modules, module, len);
	uint32_t offset;

	if (found)
		return (uint32_t)((uintptr_t)found - 1);
	if (loader->names.len >= UINT32_MAX - len - 1)
		return UINT32_MAX;
	offset = (uint32_t)loader->names.len;
	strbuf__append(&loader->names, module, len);
	strbuf__putc(&loader->names, '\0');
	if (hashmap__put(loader->modules, module, len, (void *)((uintptr_t)offset + 1), NULL))
		return UINT32_MAX;
	return offset;
}

/* Parses one line; malformed lines are ignored. Returns 0 or -ENOMEM. */
static int parse_line(struct ksyms_loader *loader, char *line)
{
	char *end, *name, *module = NULL;
	size_t name_len, module_len = 0;
	uint64_t addr;
	char type;
	struct ksym sym = { 0 };

	addr = strtoull(line, &end, 16);
	if (end == line || *end != ' ')
		return 0;
	type = end[1];
	if (!type || end[2] != ' ')
		return 0;
	name = end + 3;
	name_len = strcspn(name, " \t\r\n");
	if (name_len == 0)
		return 0;
	char *rest = name + name_len;

	rest += strspn(rest, " \t");
	if (*rest == '[') {
		module = rest + 1;
		module_len = strcspn(module, "]\r\n");
		if (module[module_len] != ']')
			module_len = 0;
	}
	loader->lines++;
	if (addr)
		loader->any_nonzero = true;

	sym.addr = addr;
	sym.order = (uint32_t)loader->nsyms;
	/* Boundaries carry their module too: a function followed by another
	 * module's symbol has an unknown end. */
	sym.module = module_len ? intern_module(loader, module, module_len) : 0;
	if (sym.module == UINT32_MAX)
		return -ENOMEM;
	if (is_text_type(type)) {
		if (loader->names.len >= UINT32_MAX - name_len - 1)
			return -ENOMEM;
		name[name_len] = '\0';
		sym.rank = alias_rank(type, name);
		sym.name = (uint32_t)loader->names.len;
		strbuf__append(&loader->names, name, name_len + 1);
	} else {
		sym.name = KSYM_BOUNDARY;
	}
	if (loader->nsyms == loader->cap) {
		size_t cap = loader->cap ? loader->cap * 2 : 4096;
		struct ksym *syms = realloc(loader->syms, cap * sizeof(*syms));

		if (!syms)
			return -ENOMEM;
		loader->syms = syms;
		loader->cap = cap;
	}
	loader->syms[loader->nsyms++] = sym;
	return strbuf__error(&loader->names);
}

/* Sorts and compacts the loader's entries into ksyms (taking the memory). */
static void build_table(struct ksyms *ksyms, struct ksyms_loader *loader)
{
	size_t kept = 0;

	if (loader->nsyms > 1)
		qsort(loader->syms, loader->nsyms, sizeof(*loader->syms), ksym_cmp);
	for (size_t i = 0; i < loader->nsyms; i++) {
		const struct ksym *sym = &loader->syms[i];
		bool text = sym->name != KSYM_BOUNDARY;

		if (kept > 0 && loader->syms[kept - 1].addr == sym->addr)
			continue; /* an alias or a data symbol at a function's address */
		if (!text && (kept == 0 || loader->syms[kept - 1].name == KSYM_BOUNDARY))
			continue; /* a boundary only matters right after a function */
		loader->syms[kept++] = *sym;
		if (text)
			ksyms->ntext++;
	}
	ksyms->nsyms = kept;
	ksyms->syms = loader->syms;
	if (kept > 0) {
		struct ksym *shrunk = realloc(loader->syms, kept * sizeof(*shrunk));

		if (shrunk)
			ksyms->syms = shrunk;
	}
	loader->syms = NULL;
	ksyms->names = loader->names.data;
	loader->names = (struct strbuf)STRBUF_INIT;
}

struct ksyms *ksyms__parse(FILE *f)
{
	struct ksyms_loader loader = { .names = STRBUF_INIT };
	struct ksyms *ksyms = NULL;
	char *line = NULL;
	size_t line_cap = 0;
	int err = 0;

	if (!f) {
		errno = EINVAL;
		return NULL;
	}
	loader.modules = hashmap__new();
	strbuf__putc(&loader.names, '\0'); /* offset 0: the core kernel's module "" */
	if (!loader.modules || strbuf__error(&loader.names)) {
		err = ENOMEM;
		goto out;
	}
	errno = 0;
	while (getline(&line, &line_cap, f) >= 0) {
		if (parse_line(&loader, line)) {
			err = ENOMEM;
			goto out;
		}
	}
	if (ferror(f)) {
		err = errno ? errno : EIO;
		goto out;
	}
	if (loader.lines > 0 && !loader.any_nonzero) {
		err = EPERM;
		goto out;
	}
	ksyms = calloc(1, sizeof(*ksyms));
	if (!ksyms) {
		err = ENOMEM;
		goto out;
	}
	build_table(ksyms, &loader);
	if (ksyms->ntext == 0) {
		ksyms__free(ksyms);
		ksyms = NULL;
		err = ENODATA;
	}
out:
	free(line);
	free(loader.syms);
	strbuf__release(&loader.names);
	hashmap__free(loader.modules);
	if (!ksyms)
		errno = err;
	return ksyms;
}

struct ksyms *ksyms__load(const char *path)
{
	FILE *f = fopen(path ? path : "/proc/kallsyms", "re");
	struct ksyms *ksyms;
	int err;

	if (!f)
		return NULL;
	ksyms = ksyms__parse(f);
	err = errno;
	fclose(f);
	if (!ksyms)
		errno = err;
	return ksyms;
}

void ksyms__free(struct ksyms *ksyms)
{
	if (!ksyms)
		return;
	free(ksyms->syms);
	free(ksyms->names);
	free(ksyms);
}

int ksyms__lookup(const struct ksyms *ksyms, uint64_t addr, const char **name,
		  const char **module, uint64_t *offset)
{
	size_t lo = 0, hi;
	const struct ksym *sym;

	if (!ksyms)
		return -EINVAL;
	hi = ksyms->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ksyms->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	sym = &ksyms->syms[lo - 1];
	if (sym->name == KSYM_BOUNDARY)
		return -ENOENT;
	/* The next symbol ends this one only within the same module (or core). */
	if ((lo == ksyms->nsyms || ksyms->syms[lo].module != sym->module) &&
	    addr - sym->addr >= KSYMS_LAST_SYMBOL_SPAN)
		return -ENOENT;
	if (name)
		*name = ksyms->names + sym->name;
	if (module)
		*module = ksyms->names + sym->module;
	if (offset)
		*offset = addr - sym->addr;
	return 0;
}

int ksyms__find(const struct ksyms *ksyms, const char *name, uint64_t *addr)
{
	if (!ksyms || !name)
		return -EINVAL;
	for (size_t i = 0; i < ksyms->nsyms; i++) {
		const struct ksym *sym = &ksyms->syms[i];

		if (sym->name != KSYM_BOUNDARY && strcmp(ksyms->names + sym->name, name) == 0) {
			if (addr)
				*addr = sym->addr;
			return 0;
		}
	}
	return -ENOENT;
}

size_t ksyms__count(const struct ksyms *ksyms)
{
	return ksyms ? ksyms->ntext : 0;
}
