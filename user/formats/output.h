/* output.h - writes a profile to a file in any output format, and reads a
 * profile file of any readable format (folded or pprof, detected by content).
 *
 * Files are written with util/outfile.h: only to a regular file (devices,
 * FIFOs, sockets, directories and links others could have planted are
 * refused), through a fresh temporary file renamed over PATH, so a reader (or
 * a crash) never sees a half-written profile. "-" is standard output.
 */
#ifndef DYNOPROF_OUTPUT_H
#define DYNOPROF_OUTPUT_H

#include <stddef.h>

#include "formats/format.h"
#include "profile/profile.h"

struct output_opts {
	const char *title;      /* SVG title; NULL: "dynoprof" */
	const char *subtitle;   /* SVG subtitle (capture summary); NULL: none */
	size_t value_index;     /* value that sizes frames / counts lines (0: samples) */
	int label_frames;       /* folded: prefix `[key=value]` tag frames */
	const char *const *group_keys; /* folded/SVG: lead each stack with these tags,
					* in order (`--group-by`); NULL: none */
	size_t ngroup_keys;
};

/* Finds the value index for a --weight name: "samples", "cpu",
 * "instructions", "cycles" (any value type of p). Returns 0 with *index set,
 * or -ENOENT with a message naming the value types p has. */
int output__weight_index(const struct profile *p, const char *name, size_t *index, char *err,
			 size_t errlen);

/* Checks, before a capture starts, that path can be created and written
 * under the util/outfile.h policy.
 * Returns 0 or -errno with a message in err. */
int output__check_writable(const char *path, char *err, size_t errlen);

/* Writes p to path in format f. Returns 0 or -errno with a message in err. */
int output__write(const struct profile *p, const char *path, enum output_format f,
		  const struct output_opts *opts, char *err, size_t errlen);

/* Reads path (pprof, gzipped or not, or folded text) into p, which must be
 * empty. "-" reads standard input. Returns 0 or -errno with a message in err. */
int output__read(struct profile *p, const char *path, char *err, size_t errlen);

#endif
