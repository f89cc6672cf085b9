/* Layer formats: profiles written and read: pprof, folded, SVG, speedscope, top
 * tables, groups.
 * (Layers and their order: scripts/check-layers.sh.) */
/* format.h - output format names and the display text of a frame.
 *
 * Every output (folded, SVG, speedscope, top table) names frames the same way,
 * so a function looks identical whichever view a user opens; frame__display()
 * is that single definition.
 */
#ifndef DYNOPROF_FORMAT_H
#define DYNOPROF_FORMAT_H

#include <stddef.h>

#include "profile/profile.h"
#include "util/strbuf.h"

/* The file formats dynoprof can write. */
enum output_format {
	FORMAT_FOLDED = 0,     /* collapsed stacks text (flamegraph.pl, speedscope) */
	FORMAT_SVG = 1,        /* interactive flame graph */
	FORMAT_PPROF = 2,      /* gzipped pprof protobuf */
	FORMAT_SPEEDSCOPE = 3, /* speedscope JSON */
};

/* Parses a user-given format name, case-insensitively: folded|collapsed,
 * svg|flamegraph, pprof|pb, speedscope|json. Stores it in *out and returns 0,
 * or returns -EINVAL (leaving *out untouched) for an unknown or NULL name. */
int format__from_name(const char *name, enum output_format *out);

/* Guesses the format from a file name's extension, case-insensitively:
 * .folded .collapsed .txt -> folded, .svg -> svg, .pb.gz .pprof .pb -> pprof,
 * .json (.speedscope.json) -> speedscope. Returns 0 with *out set, or -EINVAL
 * (leaving *out untouched) for any other or a NULL path. */
int format__from_path(const char *path, enum output_format *out);

/* Returns the canonical name of f ("folded", "svg", "pprof", "speedscope"), or
 * "unknown" for a value outside the enum. The string is static and constant. */
const char *format__name(enum output_format f);

/* Flags for frame__display_flags(). */
enum frame_display_flags {
	/* Omit the flamegraph.pl "_[k]" kernel suffix (for formats that colour
	 * by other means, e.g. speedscope). */
	FRAME_DISPLAY_NO_KERNEL_SUFFIX = 1u << 0,
	/* Omit the " (file:line)" of Python frames (for formats that carry the
	 * location in fields of their own, e.g. speedscope). */
	FRAME_DISPLAY_NO_LOCATION = 1u << 1,
};

/* Appends the display text of frame f (a frame of profile p) to sb:
 *   native:  name (unknown symbols already arrive named "libc.so.6+0x1234")
 *   kernel:  "name_[k]", or "name [module]_[k]" for a loadable kernel module
 *   python:  "name (file:line)", "name (file)" when line is 0, "name" without file
 *   special: name as is ("[unknown]", "[truncated]", ...)
 * The text is raw: format-specific escaping (';' in folded, JSON, XML) is the
 * caller's. Returns 0, or -ENOMEM when sb has failed (now or earlier). */
int frame__display(const struct profile *p, const struct profile_frame *f, struct strbuf *sb);

/* As frame__display(), with enum frame_display_flags bits in flags. */
int frame__display_flags(const struct profile *p, const struct profile_frame *f,
			 unsigned int flags, struct strbuf *sb);

#endif
