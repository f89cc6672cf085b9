// SPDX-License-Identifier: MIT
#include "formats/format.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* One accepted spelling of a format name. */
struct format_alias {
	const char *name;          /* as typed by the user, lower case */
	enum output_format format; /* what it selects */
};

static const struct format_alias format_aliases[] = {
	{ "folded", FORMAT_FOLDED },
	{ "collapsed", FORMAT_FOLDED },
	{ "svg", FORMAT_SVG },
	{ "flamegraph", FORMAT_SVG },
	{ "pprof", FORMAT_PPROF },
	{ "pb", FORMAT_PPROF },
	{ "speedscope", FORMAT_SPEEDSCOPE },
	{ "json", FORMAT_SPEEDSCOPE },
};

/* File name endings; longer endings that share a tail with a shorter one come
 * first (".pb.gz" before any ".gz" rule, ".speedscope.json" before ".json"). */
static const struct format_alias format_extensions[] = {
	{ ".folded", FORMAT_FOLDED },
	{ ".collapsed", FORMAT_FOLDED },
	{ ".txt", FORMAT_FOLDED },
	{ ".svg", FORMAT_SVG },
	{ ".pb.gz", FORMAT_PPROF },
	{ ".pprof", FORMAT_PPROF },
	{ ".pb", FORMAT_PPROF },
	{ ".speedscope.json", FORMAT_SPEEDSCOPE },
	{ ".json", FORMAT_SPEEDSCOPE },
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

int format__from_name(const char *name, enum output_format *out)
{
	if (!name || !out)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_LEN(format_aliases); i++) {
		if (strcasecmp(name, format_aliases[i].name) == 0) {
			*out = format_aliases[i].format;
			return 0;
		}
	}
	return -EINVAL;
}

int format__from_path(const char *path, enum output_format *out)
{
	if (!path || !out)
		return -EINVAL;
	size_t len = strlen(path);
	for (size_t i = 0; i < ARRAY_LEN(format_extensions); i++) {
		const char *ext = format_extensions[i].name;
		size_t ext_len = strlen(ext);
		/* The extension alone (a file named ".svg") names no format. */
		if (len > ext_len && strcasecmp(path + len - ext_len, ext) == 0 &&
		    path[len - ext_len - 1] != '/') {
			*out = format_extensions[i].format;
			return 0;
		}
	}
	return -EINVAL;
}

const char *format__name(enum output_format f)
{
	switch (f) {
	case FORMAT_FOLDED: return "folded";
	case FORMAT_SVG: return "svg";
	case FORMAT_PPROF: return "pprof";
	case FORMAT_SPEEDSCOPE: return "speedscope";
	}
	return "unknown";
}

/* True for the module names that mean "the kernel image itself". */
static int is_core_kernel_module(const char *module)
{
	return !*module || strcmp(module, "[kernel.kallsyms]") == 0 ||
	       strcmp(module, "vmlinux") == 0 || strcmp(module, "[kernel]") == 0;
}

/* Appends " [module]" for a kernel module given as "nf_tables", "[nf_tables]"
 * or a path such as "/lib/modules/.../nf_tables.ko.zst". */
static void append_kernel_module(struct strbuf *sb, const char *module)
{
	size_t len = strlen(module);
	if (module[0] == '[' && module[len - 1] == ']') {
		strbuf__putc(sb, ' ');
		strbuf__append(sb, module, len);
		return;
	}
	const char *base = strrchr(module, '/');
	base = base ? base + 1 : module;
	const char *ko = strstr(base, ".ko");
	size_t base_len = ko && ko != base ? (size_t)(ko - base) : strlen(base);
	strbuf__puts(sb, " [");
	strbuf__append(sb, base, base_len);
	strbuf__putc(sb, ']');
}

int frame__display_flags(const struct profile *p, const struct profile_frame *f,
			 unsigned int flags, struct strbuf *sb)
{
	const char *name = profile__str(p, f->name);
	if (!*name)
		name = "[unknown]";
	strbuf__puts(sb, name);

	switch ((enum frame_kind)f->kind) {
	case FRAME_KERNEL: {
		const char *module = profile__str(p, f->module);
		if (!is_core_kernel_module(module))
			append_kernel_module(sb, module);
		if (!(flags & FRAME_DISPLAY_NO_KERNEL_SUFFIX))
			strbuf__puts(sb, "_[k]");
		break;
	}
	case FRAME_PYTHON: {
		const char *file = profile__str(p, f->file);
		if (*file && !(flags & FRAME_DISPLAY_NO_LOCATION)) {
			if (f->line)
				strbuf__printf(sb, " (%s:%u)", file, f->line);
			else
				strbuf__printf(sb, " (%s)", file);
		}
		break;
	}
	case FRAME_NATIVE:
	case FRAME_SPECIAL:
		break;
	}
	return strbuf__error(sb);
}

int frame__display(const struct profile *p, const struct profile_frame *f, struct strbuf *sb)
{
	return frame__display_flags(p, f, 0, sb);
}
