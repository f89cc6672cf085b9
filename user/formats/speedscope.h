/* speedscope.h - speedscope JSON (https://www.speedscope.app/file-format-schema.json).
 *
 * One "sampled" profile per process, named "comm (pid N)" (processes of unknown
 * pid 0 are split by comm and named by it), heaviest process first so speedscope
 * opens on it. Frames are shared: name is the frame__display() text without the
 * "_[k]" suffix and, for Python, without " (file:line)", which goes into the
 * frame's own file/line fields instead (as py-spy writes them). Samples carry no
 * time, so they are ordered by stack text: speedscope's "time order" view then
 * reads like a flame graph.
 */
#ifndef DYNOPROF_SPEEDSCOPE_H
#define DYNOPROF_SPEEDSCOPE_H

#include <stddef.h>
#include <stdio.h>

#include "profile/profile.h"

/* Writes p to out as speedscope JSON, weighting samples by value value_index
 * (unit "nanoseconds"/"microseconds"/"milliseconds"/"seconds"/"bytes" when the
 * value's unit is one of those, else "none"). Samples whose value is 0 are
 * left out. Returns 0, -EINVAL for a value_index beyond the profile's value
 * types, -ENOMEM, or -EIO when writing to out failed. */
int speedscope__write(const struct profile *p, FILE *out, size_t value_index);

#endif
