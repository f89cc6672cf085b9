// SPDX-License-Identifier: MIT
#include "python/py_static_tls.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "symbolize/elf_dynsym.h"
#include "symbolize/map_path.h"
#include "util/errmsg.h"
#include "util/remote.h"

/* link_maps walked from r_map before giving up (a process maps far fewer
 * objects; bounds a corrupt or cyclic list). */
#define MAX_LINK_MAPS 4096
/* The largest TLS block and alignment believed. */
#define MAX_TLS_BLOCK (16u << 20)
#define MAX_TLS_ALIGN 4096u

int py_static_tls__scan(const uint64_t *words, size_t count, uint64_t lib_bias, uint64_t modid,
			int64_t *tls_offset)
{
	int dynamic = 0;

	if (!words || !modid)
		return -ENOENT;
	for (size_t i = 0; i + 7 <= count; i++) {
		const uint64_t *w = words + i;
		uint64_t image = w[0], image_size = w[1], block = w[2], align = w[3];
		uint64_t first = w[4], mod = w[6];
		int64_t off = (int64_t)w[5];
		if (mod != modid || image < lib_bias || image - lib_bias >= (1ull << 32) ||
		    !block || block > MAX_TLS_BLOCK || image_size > block || !align ||
		    align > MAX_TLS_ALIGN || (align & (align - 1)) || first >= align)
			continue;
		if (off == 0 || off == -1) {
			dynamic = 1; /* NO_TLS_OFFSET / FORCED_DYNAMIC_TLS_OFFSET */
			continue;
		}
		/* Variant II: the block lies wholly below the thread pointer. */
		if (off < (int64_t)block || off > (int64_t)MAX_TLS_BLOCK * 4)
			continue;
		*tls_offset = off;
		return 0;
	}
	return dynamic ? -EOPNOTSUPP : -ENOENT;
}

/* The address of ld.so's r_debug in pid. Returns 0 or -ENOENT / -errno. */
static int find_r_debug(pid_t pid, const struct proc_maps *maps, uint64_t *addr)
{
	char path[PATH_MAX + 64];
	struct stat st;

	for (size_t i = 0; i < proc_maps__count(maps); i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		if (strncmp(path_basename(m->path), "ld-linux", 8) != 0)
			continue;
		if (map_path__open_path(pid, m, path, sizeof(path), &st))
			continue;
		struct elf_dynsym *file = elf_dynsym__open(path);
		if (!file)
			continue;
		struct elf_sym_value sym;
		uint64_t bias;
		int err = elf_dynsym__find(file, "_r_debug", ELF_DYNSYM_DYNAMIC, &sym);
		if (!err)
			err = elf_dynsym__load_bias(file, m->start, m->offset, &bias);
		elf_dynsym__free(file);
		if (!err) {
			*addr = bias + sym.value;
			return 0;
		}
	}
	return -ENOENT;
}

int py_static_tls__offset(pid_t pid, const struct proc_maps *maps, uint64_t lib_bias,
			  uint64_t modid, int64_t *tls_offset, char *reason, size_t reasonlen)
{
	uint64_t r_debug, lm, link[5], words[PY_STATIC_TLS_LINK_MAP_BYTES / 8];
	int err = find_r_debug(pid, maps, &r_debug);

	if (err) {
		errmsg__set(reason, reasonlen, "the dynamic linker's _r_debug was not found");
		return err;
	}
	/* struct r_debug { int r_version; struct link_map *r_map; ... } */
	err = remote_read(pid, r_debug + 8, &lm, sizeof(lm));
	for (unsigned n = 0; !err && lm && n < MAX_LINK_MAPS; n++) {
		err = remote_read(pid, lm, link, sizeof(link));
		if (err)
			break;
		if (link[0] == lib_bias) { /* l_addr */
			size_t count = sizeof(words) / 8;
			err = remote_read(pid, lm, words, sizeof(words));
			if (err == -EFAULT) { /* the link_map near a mapping's end */
				count = 1024 / 8;
				err = remote_read(pid, lm, words, count * 8);
			}
			if (err)
				break;
			err = py_static_tls__scan(words, count, lib_bias, modid, tls_offset);
			if (err == -EOPNOTSUPP)
				errmsg__set(reason, reasonlen, "its thread-locals are not in static "
					    "TLS (loaded with dlopen?)");
			else if (err)
				errmsg__set(reason, reasonlen, "the dynamic linker's TLS fields for "
					    "module %" PRIu64 " were not recognised", modid);
			return err;
		}
		lm = link[3]; /* l_next */
	}
	if (err) {
		errmsg__set(reason, reasonlen, "reading the dynamic linker's list: %s",
			    strerror(-err));
		return err;
	}
	errmsg__set(reason, reasonlen, "no link_map at load bias 0x%" PRIx64, lib_bias);
	return -EAGAIN;
}
