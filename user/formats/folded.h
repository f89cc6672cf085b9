/* folded.h - Brendan Gregg's folded ("collapsed") stack text.
 *
 * One line per distinct stack: `comm;root;...;leaf COUNT`. flamegraph.pl,
 * speedscope, inferno and most flame graph tools read it. Frame text is
 * frame__display() (format.h) with ';' replaced by ':' and line breaks by ' ',
 * so every line stays parseable; samples whose lines would read the same are
 * merged. Lines are sorted (byte order), so output is deterministic and a
 * write -> read -> write round trip reproduces the text exactly.
 *
 * Tags: a sample's labels can be written as `[key=value]` frames at the start
 * of the line (before the comm); the reader turns such frames, before or right
 * after the comm, back into labels.
 */
#ifndef DYNOPROF_FOLDED_H
#define DYNOPROF_FOLDED_H

#include <stddef.h>
#include <stdio.h>

#include "profile/profile.h"

/* Writer options; FOLDED_OPTS_INIT gives the defaults. */
struct folded_opts {
	size_t value_index; /* which profile value is the line's count (0: samples) */
	int comm_prefix;    /* nonzero: first frame is the thread's comm (default on) */
	int label_frames;   /* nonzero: emit each label as a leading `[key=value]`
			       frame, sorted by key (default off) */
	const char *const *group_keys; /* non-NULL: instead of label_frames, lead with
					  `[key=value]` for exactly these keys, in this
					  order (`[key=-]` when a sample lacks one) */
	size_t ngroup_keys; /* entries in group_keys */
};

#define FOLDED_OPTS_INIT { .value_index = 0, .comm_prefix = 1, .label_frames = 0, \
			   .group_keys = NULL, .ngroup_keys = 0 }

/* Writes p to out as folded text. opts may be NULL (defaults). Samples whose
 * chosen value is 0 are skipped; a sample with no frame (and no comm prefix)
 * is written as `[unknown]`. Returns 0, -EINVAL for a value_index beyond the
 * profile's value types, -ENOMEM, or -EIO when writing to out failed. */
int folded__write(const struct profile *p, FILE *out, const struct folded_opts *opts);

/* Reader options; FOLDED_READ_OPTS_INIT gives the defaults. */
struct folded_read_opts {
	int comm_prefix; /* nonzero: the first non-tag frame of each line is the
			    comm, not a stack frame (default on, like the writer) */
};

#define FOLDED_READ_OPTS_INIT { .comm_prefix = 1 }

/* Maximum length of one folded line the reader accepts (bounds memory). */
#define FOLDED_MAX_LINE (4u << 20)

/* Reads folded text from in and adds its samples to p. opts may be NULL.
 * When p has no value types yet, "samples"/"count" is added; the count of each
 * line goes to the "samples" value if p has one, else to value 0 (other values
 * are 0). Frames are classified by their text: a `_[k]` suffix makes a kernel
 * frame (`name [module]_[k]` sets the module), a ` (file:line)` or ` (file)`
 * suffix a Python frame, a whole `[...]` name a special frame, anything else a
 * native frame. Blank lines and lines starting with '#' are skipped.
 * Returns 0; -EINVAL for a malformed line (no count, a count that is not a
 * decimal integer, an empty frame, a line longer than FOLDED_MAX_LINE), with
 * "line N: reason" written to err (if err and errlen are nonzero; NUL
 * terminated, truncated to errlen); -ENOMEM; -EIO for a read error. On error
 * p holds the samples of the lines before the bad one. */
int folded__read(struct profile *p, FILE *in, const struct folded_read_opts *opts,
		 char *err, size_t errlen);

#endif
