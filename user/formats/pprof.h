/* pprof.h - Google pprof profile.proto, the format `go tool pprof`, pprof's web
 * UI, Pyroscope, Parca and Cloud Profiler read.
 *
 * Written by hand on formats/protobuf.h (no protoc, no libprotobuf); gzip via
 * zlib. Mapping between the profile model (profile.h) and profile.proto:
 *
 *   value types      -> sample_type (default_sample_type "cpu" when present)
 *   frame            -> one Location (id = frame id + 1) with one Line whose
 *                       Function is shared by frames of equal (name, file, kind);
 *                       system_name = name. Function.filename is the source file,
 *                       or for native/kernel/special frames without one, the module
 *   mapping          -> Mapping (id = index + 1, build_id); kernel frames without
 *                       a mapping share one extra "[kernel.kallsyms]" Mapping.
 *                       Mappings are marked has_functions/has_filenames/
 *                       has_line_numbers so pprof does not try to re-symbolize
 *   sample stack     -> location_id, LEAF FIRST (the model stores root first)
 *   pid, tid         -> numeric labels "pid", "tid" (omitted when 0)
 *   comm             -> string label "comm" (omitted when empty)
 *   labels           -> string labels
 *   start, duration, period, comments -> time_nanos, duration_nanos,
 *                       period_type/period, comment
 *
 * Native addresses: Location.address is the process address inside the
 * Mapping; the writer accepts frames holding either that or a file-relative
 * address (moved into the Mapping), the reader returns file-relative ones
 * (address - memory_start + file_offset), as profile.h specifies.
 *
 * Reading maps back: Location -> Line -> Function gives the frames (a Location
 * with several Lines, i.e. inlined calls, gives several frames, innermost
 * leaf-most). Frame kinds are inferred, as pprof has no field for them: a
 * Location in a "[kernel.kallsyms]" Mapping is a kernel frame; a Function file
 * ending in ".py", or outside any Mapping a file starting with '<' (e.g.
 * "<frozen importlib._bootstrap>") or a nonzero line (scripts without .py), is
 * a Python frame; a "[...]" name outside any Mapping is a special frame; all
 * else is native, with module = the Mapping's file (or the Function's file
 * when there is no Mapping). A Location without Lines becomes
 * "binary+0xOFFSET" (or "0xADDRESS", "[unknown]"). Numeric labels other than
 * pid/tid become string labels ("4096", or "4096 bytes" with a num_unit).
 * The kind is thus lossy only for frames that break these conventions (e.g. a
 * native "[vdso]" frame without a Mapping reads back as a special frame).
 */
#ifndef DYNOPROF_PPROF_H
#define DYNOPROF_PPROF_H

#include <stddef.h>
#include <stdio.h>

#include "profile/profile.h"
#include "util/strbuf.h"

/* Largest input pprof__read() accepts, compressed or not, and the largest
 * decompressed message: bounds the memory a hostile file can make it use. */
#define PPROF_MAX_INPUT (256u << 20)
#define PPROF_MAX_DECODED (1024u << 20)

/* Appends p as an uncompressed profile.proto message to out. Returns 0,
 * -EINVAL when p or out is NULL, or -ENOMEM (out then holds a partial message
 * the caller should discard). */
int pprof__encode(const struct profile *p, struct strbuf *out);

/* Writes p to out as gzipped profile.proto (what `go tool pprof` and gunzip
 * read). Does not close or rewind out. Returns 0, -EINVAL, -ENOMEM, or -EIO
 * when compression or writing failed. */
int pprof__write(const struct profile *p, FILE *out);

/* Decodes the profile.proto message data[0..len) (uncompressed) into p, which
 * should be empty (it must not have value types yet). Returns 0; -EINVAL for a
 * malformed, truncated or inconsistent message (bad index, unknown id, value
 * count not matching sample_type, more than PROFILE_MAX_VALUES sample types),
 * with a reason written to err (if err and errlen are nonzero; NUL terminated,
 * truncated to errlen); -ENOMEM. On error p may hold part of the profile. */
int pprof__decode(struct profile *p, const void *data, size_t len, char *err, size_t errlen);

/* Reads a gzipped or raw pprof profile from in (until EOF) into p, as
 * pprof__decode(). Returns 0; -EINVAL (bad gzip or message); -EFBIG for input
 * beyond PPROF_MAX_INPUT / PPROF_MAX_DECODED; -EIO for a read error; -ENOMEM.
 * err as for pprof__decode(). */
int pprof__read(struct profile *p, FILE *in, char *err, size_t errlen);

/* Reads a gzipped (told by its magic bytes) or raw pprof profile held in
 * data[0..len) into p, as pprof__read() — for bodies fetched over HTTP.
 * Returns 0; -EINVAL (bad gzip or message, NULL data with len); -EFBIG
 * beyond PPROF_MAX_INPUT / PPROF_MAX_DECODED; -ENOMEM. err as for
 * pprof__decode(). */
int pprof__read_buffer(struct profile *p, const void *data, size_t len, char *err,
		       size_t errlen);

#endif
