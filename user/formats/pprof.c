// SPDX-License-Identifier: MIT
#include "formats/pprof.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/protobuf.h"
#include "util/hashmap.h"

/* Field numbers of profile.proto (github.com/google/pprof/proto/profile.proto). */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_DROP_FRAMES = 7,
	PROFILE_KEEP_FRAMES = 8,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,

	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,

	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,

	LABEL_KEY = 1,
	LABEL_STR = 2,
	LABEL_NUM = 3,
	LABEL_NUM_UNIT = 4,

	MAPPING_ID = 1,
	MAPPING_MEMORY_START = 2,
	MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4,
	MAPPING_FILENAME = 5,
	MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,

	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_ADDRESS = 3,
	LOCATION_LINE = 4,

	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,

	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
	FUNCTION_START_LINE = 5,
};

/* The Mapping kernel frames share when they carry none of their own. */
static const char kernel_mapping_file[] = "[kernel.kallsyms]";

/* Grows *array (elements of elem_size) so that it holds at least need
 * elements. Returns 0 or -ENOMEM (the old array is kept). */
static int grow_array(void **array, size_t *cap, size_t need, size_t elem_size)
{
	if (need <= *cap)
		return 0;
	size_t new_cap = *cap ? *cap : 16;
	while (new_cap < need)
		new_cap *= 2;
	if (new_cap > SIZE_MAX / elem_size)
		return -ENOMEM;
	void *p = realloc(*array, new_cap * elem_size);
	if (!p)
		return -ENOMEM;
	*array = p;
	*cap = new_cap;
	return 0;
}

/* ---------------------------------------------------------------- encoding */

/* State of one pprof__encode() call. */
struct pprof_encoder {
	const struct profile *profile; /* what is being encoded */
	struct strbuf *out;            /* the message being built */
	struct hashmap *string_ids;    /* string bytes -> string_table index (+1 as value) */
	const char **strings;          /* string_table, borrowed from profile or literals */
	size_t nstrings;               /* entries in strings */
	size_t strings_cap;            /* allocated entries in strings */
	struct hashmap *function_ids;  /* struct function_key -> Function id */
	uint64_t nfunctions;           /* Functions written so far (ids are 1..n) */
	uint64_t kernel_mapping_id;    /* id of the shared kernel Mapping; 0 when none */
	uint64_t *scratch;             /* location ids / values of the sample being written */
	size_t scratch_cap;            /* allocated entries in scratch */
};

/* Identity of a pprof Function: one per distinct (name, file, kind). */
struct function_key {
	uint64_t name;     /* string_table index */
	uint64_t filename; /* string_table index */
	uint64_t kind;     /* enum frame_kind */
};

/* Stores the string_table index of s (NULL means "") in *index, adding s to
 * the table on first use. s must stay valid until encoding ends. */
static int encode_string(struct pprof_encoder *e, const char *s, uint64_t *index)
{
	if (!s || !*s) {
		*index = 0;
		return 0;
	}
	size_t len = strlen(s);
	uintptr_t found = (uintptr_t)hashmap__get(e->string_ids, s, len);
	if (found) {
		*index = found - 1;
		return 0;
	}
	int err = grow_array((void **)&e->strings, &e->strings_cap, e->nstrings + 1,
			     sizeof(*e->strings));
	if (err)
		return err;
	err = hashmap__put(e->string_ids, s, len, (void *)(uintptr_t)(e->nstrings + 1), NULL);
	if (err)
		return err;
	e->strings[e->nstrings] = s;
	*index = e->nstrings++;
	return 0;
}

/* Writes a ValueType message {type, unit} in field `field`. */
static int encode_value_type(struct pprof_encoder *e, uint32_t field, const char *type,
			     const char *unit)
{
	uint64_t type_index, unit_index;
	int err = encode_string(e, type, &type_index);
	if (!err)
		err = encode_string(e, unit, &unit_index);
	if (err)
		return err;
	size_t mark = pb__begin_message(e->out, field);
	pb__put_varint_field(e->out, VALUE_TYPE_TYPE, type_index);
	pb__put_varint_field(e->out, VALUE_TYPE_UNIT, unit_index);
	pb__end_message(e->out, mark);
	return 0;
}

/* Writes one Mapping message. */
static int encode_mapping(struct pprof_encoder *e, uint64_t id, uint64_t start, uint64_t limit,
			  uint64_t offset, const char *file, const char *build_id)
{
	uint64_t file_index, build_id_index;
	int err = encode_string(e, file, &file_index);
	if (!err)
		err = encode_string(e, build_id, &build_id_index);
	if (err)
		return err;
	struct strbuf *out = e->out;
	size_t mark = pb__begin_message(out, PROFILE_MAPPING);
	pb__put_varint_field(out, MAPPING_ID, id);
	if (start)
		pb__put_varint_field(out, MAPPING_MEMORY_START, start);
	if (limit)
		pb__put_varint_field(out, MAPPING_MEMORY_LIMIT, limit);
	if (offset)
		pb__put_varint_field(out, MAPPING_FILE_OFFSET, offset);
	if (file_index)
		pb__put_varint_field(out, MAPPING_FILENAME, file_index);
	if (build_id_index)
		pb__put_varint_field(out, MAPPING_BUILD_ID, build_id_index);
	/* Frames arrive symbolized: stop pprof from re-symbolizing (and from
	 * looking for the binaries on the machine that opens the profile). */
	pb__put_varint_field(out, MAPPING_HAS_FUNCTIONS, 1);
	pb__put_varint_field(out, MAPPING_HAS_FILENAMES, 1);
	pb__put_varint_field(out, MAPPING_HAS_LINE_NUMBERS, 1);
	pb__end_message(out, mark);
	return 0;
}

/* Writes the profile's Mappings, plus the shared kernel Mapping when some
 * kernel frame has no Mapping of its own (its range covers those frames). */
static int encode_mappings(struct pprof_encoder *e)
{
	const struct profile *p = e->profile;
	size_t nmappings = profile__mapping_count(p);
	for (size_t i = 0; i < nmappings; i++) {
		const struct profile_mapping *m = profile__mapping(p, i);
		int err = encode_mapping(e, i + 1, m->start, m->limit, m->offset,
					 profile__str(p, m->file), profile__str(p, m->build_id));
		if (err)
			return err;
	}

	int need_kernel = 0;
	uint64_t lowest = UINT64_MAX, highest = 0;
	size_t nframes = profile__frame_count(p);
	for (uint32_t id = 0; id < nframes; id++) {
		const struct profile_frame *f = profile__frame(p, id);
		if (f->kind != FRAME_KERNEL || f->mapping)
			continue;
		need_kernel = 1;
		if (f->address && f->address < lowest)
			lowest = f->address;
		if (f->address > highest)
			highest = f->address;
	}
	if (!need_kernel)
		return 0;
	e->kernel_mapping_id = nmappings + 1;
	if (!highest)
		lowest = 0;
	return encode_mapping(e, e->kernel_mapping_id, lowest,
			      highest && highest < UINT64_MAX ? highest + 1 : highest, 0,
			      kernel_mapping_file, NULL);
}

/* Stores the id of the Function for frame f, writing the Function first when
 * it is new. */
static int encode_function(struct pprof_encoder *e, const struct profile_frame *f,
			   uint64_t *function_id)
{
	const struct profile *p = e->profile;
	/* Python frames name their source file; native and kernel frames name it
	 * when debug info gave one, else the binary or module they live in. */
	uint32_t file = f->file;
	if (!file && f->kind != FRAME_PYTHON)
		file = f->module;
	struct function_key key = { .kind = f->kind };
	int err = encode_string(e, profile__str(p, f->name), &key.name);
	if (!err)
		err = encode_string(e, profile__str(p, file), &key.filename);
	if (err)
		return err;
	uintptr_t found = (uintptr_t)hashmap__get(e->function_ids, &key, sizeof(key));
	if (found) {
		*function_id = found;
		return 0;
	}
	uint64_t id = e->nfunctions + 1;
	err = hashmap__put(e->function_ids, &key, sizeof(key), (void *)(uintptr_t)id, NULL);
	if (err)
		return err;
	e->nfunctions = id;

	struct strbuf *out = e->out;
	size_t mark = pb__begin_message(out, PROFILE_FUNCTION);
	pb__put_varint_field(out, FUNCTION_ID, id);
	pb__put_varint_field(out, FUNCTION_NAME, key.name);
	pb__put_varint_field(out, FUNCTION_SYSTEM_NAME, key.name);
	if (key.filename)
		pb__put_varint_field(out, FUNCTION_FILENAME, key.filename);
	pb__end_message(out, mark);
	*function_id = id;
	return 0;
}

/* Writes one Location per frame (id = frame id + 1) and the Functions they use. */
static int encode_locations(struct pprof_encoder *e)
{
	const struct profile *p = e->profile;
	size_t nframes = profile__frame_count(p);
	size_t nmappings = profile__mapping_count(p);
	for (uint32_t id = 0; id < nframes; id++) {
		const struct profile_frame *f = profile__frame(p, id);
		uint64_t function_id;
		int err = encode_function(e, f, &function_id);
		if (err)
			return err;
		uint64_t mapping_id = f->mapping <= nmappings ? f->mapping : 0;
		uint64_t address = f->address;
		if (mapping_id && f->kind != FRAME_KERNEL && address) {
			/* pprof wants the process address, inside [memory_start,
			 * memory_limit); a file-relative one is moved there. */
			const struct profile_mapping *m = profile__mapping(p, mapping_id - 1);
			uint64_t in_process = address - m->offset + m->start;
			int inside = address >= m->start && address < m->limit;
			if (!inside && address >= m->offset && in_process >= m->start &&
			    in_process < m->limit)
				address = in_process;
		}
		if (!mapping_id && f->kind == FRAME_KERNEL)
			mapping_id = e->kernel_mapping_id;

		struct strbuf *out = e->out;
		size_t mark = pb__begin_message(out, PROFILE_LOCATION);
		pb__put_varint_field(out, LOCATION_ID, (uint64_t)id + 1);
		if (mapping_id)
			pb__put_varint_field(out, LOCATION_MAPPING_ID, mapping_id);
		if (address)
			pb__put_varint_field(out, LOCATION_ADDRESS, address);
		size_t line_mark = pb__begin_message(out, LOCATION_LINE);
		pb__put_varint_field(out, LINE_FUNCTION_ID, function_id);
		if (f->line)
			pb__put_varint_field(out, LINE_LINE, f->line);
		pb__end_message(out, line_mark);
		pb__end_message(out, mark);
		if (strbuf__error(out))
			return -ENOMEM;
	}
	return 0;
}

/* Writes a Label: a string one when str is non-NULL, else a numeric one. */
static int encode_label(struct pprof_encoder *e, const char *key, const char *str, uint64_t num)
{
	uint64_t key_index, str_index = 0;
	int err = encode_string(e, key, &key_index);
	if (!err && str)
		err = encode_string(e, str, &str_index);
	if (err)
		return err;
	size_t mark = pb__begin_message(e->out, SAMPLE_LABEL);
	pb__put_varint_field(e->out, LABEL_KEY, key_index);
	if (str)
		pb__put_varint_field(e->out, LABEL_STR, str_index);
	else
		pb__put_varint_field(e->out, LABEL_NUM, num);
	pb__end_message(e->out, mark);
	return 0;
}

/* Writes one Sample: leaf-first location ids, all values, labels. */
static int encode_sample(struct pprof_encoder *e, const struct profile_sample *s)
{
	const struct profile *p = e->profile;
	size_t nvalues = profile__value_count(p);
	size_t need = s->nframes > nvalues ? s->nframes : nvalues;
	int err = grow_array((void **)&e->scratch, &e->scratch_cap, need ? need : 1,
			     sizeof(*e->scratch));
	if (err)
		return err;

	struct strbuf *out = e->out;
	size_t mark = pb__begin_message(out, PROFILE_SAMPLE);
	for (uint32_t i = 0; i < s->nframes; i++)
		e->scratch[i] = (uint64_t)s->frames[s->nframes - 1 - i] + 1;
	pb__put_packed_varints(out, SAMPLE_LOCATION_ID, e->scratch, s->nframes);
	for (size_t v = 0; v < nvalues; v++)
		e->scratch[v] = s->values[v];
	pb__put_packed_varints(out, SAMPLE_VALUE, e->scratch, nvalues);

	if (s->pid)
		err = encode_label(e, "pid", NULL, s->pid);
	if (!err && s->tid)
		err = encode_label(e, "tid", NULL, s->tid);
	if (!err && s->comm)
		err = encode_label(e, "comm", profile__str(p, s->comm), 0);
	for (uint32_t i = 0; !err && i < s->nlabels; i++)
		err = encode_label(e, profile__str(p, s->labels[i].key),
				   profile__str(p, s->labels[i].value), 0);
	if (err)
		return err;
	pb__end_message(out, mark);
	return strbuf__error(out);
}

/* Writes time, period, comments and default_sample_type. */
static int encode_metadata(struct pprof_encoder *e)
{
	const struct profile *p = e->profile;
	struct strbuf *out = e->out;
	int64_t start = profile__start_ns(p), duration = profile__duration_ns(p);
	if (start)
		pb__put_varint_field(out, PROFILE_TIME_NANOS, (uint64_t)start);
	if (duration)
		pb__put_varint_field(out, PROFILE_DURATION_NANOS, (uint64_t)duration);

	const char *period_type = profile__period_type(p);
	const char *period_unit = profile__period_unit(p);
	if ((period_type && *period_type) || (period_unit && *period_unit)) {
		int err = encode_value_type(e, PROFILE_PERIOD_TYPE, period_type, period_unit);
		if (err)
			return err;
	}
	if (profile__period(p))
		pb__put_varint_field(out, PROFILE_PERIOD, (uint64_t)profile__period(p));

	size_t ncomments = profile__comment_count(p);
	for (size_t i = 0; i < ncomments; i++) {
		uint64_t index;
		int err = encode_string(e, profile__comment(p, i), &index);
		if (err)
			return err;
		pb__put_varint_field(out, PROFILE_COMMENT, index);
	}

	if (profile__find_value(p, "cpu") >= 0) {
		uint64_t index;
		int err = encode_string(e, "cpu", &index);
		if (err)
			return err;
		pb__put_varint_field(out, PROFILE_DEFAULT_SAMPLE_TYPE, index);
	}
	return 0;
}

static int encode_profile(struct pprof_encoder *e)
{
	const struct profile *p = e->profile;
	size_t nvalues = profile__value_count(p);
	for (size_t v = 0; v < nvalues; v++) {
		int err = encode_value_type(e, PROFILE_SAMPLE_TYPE, profile__value_type(p, v),
					    profile__value_unit(p, v));
		if (err)
			return err;
	}
	int err = encode_mappings(e);
	if (!err)
		err = encode_locations(e);
	size_t nsamples = profile__sample_count(p);
	for (size_t i = 0; !err && i < nsamples; i++)
		err = encode_sample(e, profile__sample(p, i));
	if (!err)
		err = encode_metadata(e);
	if (err)
		return err;
	/* Fields may come in any order, so the string table goes last, once
	 * every record has interned its strings. */
	for (size_t i = 0; i < e->nstrings; i++)
		pb__put_bytes_field(e->out, PROFILE_STRING_TABLE, e->strings[i],
				    strlen(e->strings[i]));
	return strbuf__error(e->out);
}

int pprof__encode(const struct profile *p, struct strbuf *out)
{
	if (!p || !out)
		return -EINVAL;
	struct pprof_encoder e = { .profile = p, .out = out };
	int err = -ENOMEM;
	e.string_ids = hashmap__new();
	e.function_ids = hashmap__new();
	if (!e.string_ids || !e.function_ids)
		goto out;
	/* string_table[0] must be "". */
	err = grow_array((void **)&e.strings, &e.strings_cap, 1, sizeof(*e.strings));
	if (err)
		goto out;
	e.strings[e.nstrings++] = "";
	err = encode_profile(&e);
out:
	hashmap__free(e.string_ids);
	hashmap__free(e.function_ids);
	free(e.strings);
	free(e.scratch);
	return err;
}

int pprof__write(const struct profile *p, FILE *out)
{
	if (!p || !out)
		return -EINVAL;
	struct strbuf message = STRBUF_INIT;
	int err = pprof__encode(p, &message);
	if (err) {
		strbuf__release(&message);
		return err;
	}

	z_stream zs = { 0 };
	/* windowBits 15 + 16: a gzip header and trailer, not a zlib one. */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		strbuf__release(&message);
		return -ENOMEM;
	}
	unsigned char chunk[1 << 16];
	const unsigned char *in = (const unsigned char *)message.data;
	size_t remaining = message.len;
	int flush;
	do {
		/* avail_in is 32-bit: feed huge messages in slices. */
		uInt slice = remaining > (1u << 30) ? (1u << 30) : (uInt)remaining;
		zs.next_in = (Bytef *)in;
		zs.avail_in = slice;
		in += slice;
		remaining -= slice;
		flush = remaining ? Z_NO_FLUSH : Z_FINISH;
		do {
			zs.next_out = chunk;
			zs.avail_out = sizeof(chunk);
			int rc = deflate(&zs, flush);
			if (rc == Z_STREAM_ERROR) {
				err = -EIO;
				goto out;
			}
			size_t have = sizeof(chunk) - zs.avail_out;
			if (have && fwrite(chunk, 1, have, out) != have) {
				err = -EIO;
				goto out;
			}
		} while (zs.avail_out == 0);
	} while (flush != Z_FINISH);
	if (fflush(out) || ferror(out))
		err = -EIO;
out:
	deflateEnd(&zs);
	strbuf__release(&message);
	return err;
}

/* ---------------------------------------------------------------- decoding */

/* A Mapping as read. */
struct dec_mapping {
	uint64_t id;              /* pprof id */
	uint64_t start;           /* memory_start */
	uint64_t limit;           /* memory_limit */
	uint64_t offset;          /* file_offset */
	uint64_t filename;        /* string index */
	uint64_t build_id;        /* string index */
	uint32_t index_plus_one;  /* the profile's mapping, as profile_frame.mapping */
};

/* A Function as read. */
struct dec_function {
	uint64_t id;       /* pprof id */
	uint64_t name;     /* string index */
	uint64_t filename; /* string index */
};

/* A Location as read, with its frames resolved. */
struct dec_location {
	uint64_t id;          /* pprof id */
	uint32_t first_frame; /* index into decoder.location_frames */
	uint32_t nframes;     /* frames (inline depth), leaf first */
};

/* A label of the sample being read. */
struct dec_label {
	uint64_t key;      /* string index */
	uint64_t str;      /* string index; 0 for a numeric label */
	int64_t num;       /* numeric value */
	uint64_t num_unit; /* string index */
};

/* State of one pprof__decode() call. Everything points into the message or
 * into the arrays it owns. */
struct pprof_decoder {
	struct profile *profile;          /* destination */
	char *err;                        /* caller's error text buffer, may be NULL */
	size_t errlen;                    /* its size */
	const char **strings;             /* string_table, NUL-terminated copies */
	size_t nstrings;                  /* entries in strings */
	char *string_arena;               /* storage of those copies */
	struct dec_mapping *mappings;     /* all Mappings */
	size_t nmappings;                 /* entries in mappings */
	struct dec_function *functions;   /* all Functions */
	size_t nfunctions;                /* entries in functions */
	struct dec_location *locations;   /* all Locations */
	size_t nlocations;                /* entries in locations */
	struct hashmap *mapping_index;    /* id -> index in mappings + 1 */
	struct hashmap *function_index;   /* id -> index in functions + 1 */
	struct hashmap *location_index;   /* id -> index in locations + 1 */
	uint32_t *location_frames;        /* frame ids of all Locations, leaf first */
	size_t nlocation_frames;          /* entries used */
	size_t location_frames_cap;       /* entries allocated */
	uint32_t *stack;                  /* scratch: the sample's frames */
	size_t stack_cap;                 /* entries allocated in stack */
	struct dec_label *labels;         /* scratch: the sample's labels */
	size_t labels_cap;                /* entries allocated in labels */
	const char **label_keys;          /* scratch: keys handed to the profile */
	size_t label_keys_cap;            /* entries allocated in label_keys */
	const char **label_values;        /* scratch: values handed to the profile */
	size_t label_values_cap;          /* entries allocated in label_values */
	struct strbuf numbers;            /* scratch: text of numeric labels */
	size_t *number_offsets;           /* scratch: where each label's text starts */
	size_t number_offsets_cap;        /* entries allocated */
};

/* Writes the reason for a failure into the caller's buffer; returns -EINVAL. */
__attribute__((format(printf, 2, 3)))
static int fail(struct pprof_decoder *d, const char *fmt, ...)
{
	if (d->err && d->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Checks a string index and returns its string. */
static int string_at(struct pprof_decoder *d, uint64_t index, const char *what,
		     const char **s)
{
	if (index >= d->nstrings)
		return fail(d, "%s: string index %" PRIu64 " out of range (table has %zu)", what,
			    index, d->nstrings);
	*s = d->strings[index];
	return 0;
}

/* Checks that field f has wire type `wire`. */
static int expect_wire(struct pprof_decoder *d, const struct pb_field *f,
		       enum pb_wire_type wire, const char *message)
{
	if (f->wire != wire)
		return fail(d, "%s field %u: wire type %d, expected %d", message, f->number,
			    (int)f->wire, (int)wire);
	return 0;
}

/* Records id -> index + 1 in map, rejecting id 0 and duplicates. */
static int index_id(struct pprof_decoder *d, struct hashmap *map, uint64_t id, size_t index,
		    const char *what)
{
	if (!id)
		return fail(d, "%s with reserved id 0", what);
	if (hashmap__get(map, &id, sizeof(id)))
		return fail(d, "duplicate %s id %" PRIu64, what, id);
	return hashmap__put(map, &id, sizeof(id), (void *)(uintptr_t)(index + 1), NULL);
}

/* Looks id up in map; *index gets the index or the call fails. */
static int lookup_id(struct pprof_decoder *d, const struct hashmap *map, uint64_t id,
		     const char *what, size_t *index)
{
	uintptr_t found = id ? (uintptr_t)hashmap__get(map, &id, sizeof(id)) : 0;
	if (!found)
		return fail(d, "unknown %s id %" PRIu64, what, id);
	*index = found - 1;
	return 0;
}

/* Reads the scalar varint fields of a small message into values[field],
 * for field numbers below nvalues; others are skipped. */
static int read_scalars(struct pprof_decoder *d, const struct pb_field *msg, const char *what,
			uint64_t *values, uint32_t nvalues)
{
	struct pb_reader r;
	struct pb_field f;
	int rc;
	pb__reader_init(&r, msg->data, msg->len);
	while ((rc = pb__next_field(&r, &f)) > 0) {
		if (f.number >= nvalues)
			continue;
		if (expect_wire(d, &f, PB_WIRE_VARINT, what))
			return -EINVAL;
		values[f.number] = f.value;
	}
	return rc ? fail(d, "malformed %s", what) : 0;
}

/* First pass: check the top-level framing and wire types, count records. */
static int count_records(struct pprof_decoder *d, const void *data, size_t len,
			 size_t *string_bytes)
{
	struct pb_reader r;
	struct pb_field f;
	int rc;
	pb__reader_init(&r, data, len);
	*string_bytes = 0;
	while ((rc = pb__next_field(&r, &f)) > 0) {
		switch (f.number) {
		case PROFILE_SAMPLE_TYPE:
		case PROFILE_SAMPLE:
		case PROFILE_PERIOD_TYPE:
			if (expect_wire(d, &f, PB_WIRE_LEN, "Profile"))
				return -EINVAL;
			break;
		case PROFILE_MAPPING:
		case PROFILE_LOCATION:
		case PROFILE_FUNCTION:
		case PROFILE_STRING_TABLE:
			if (expect_wire(d, &f, PB_WIRE_LEN, "Profile"))
				return -EINVAL;
			if (f.number == PROFILE_MAPPING)
				d->nmappings++;
			else if (f.number == PROFILE_LOCATION)
				d->nlocations++;
			else if (f.number == PROFILE_FUNCTION)
				d->nfunctions++;
			else {
				d->nstrings++;
				*string_bytes += f.len + 1;
			}
			break;
		case PROFILE_DROP_FRAMES:
		case PROFILE_KEEP_FRAMES:
		case PROFILE_TIME_NANOS:
		case PROFILE_DURATION_NANOS:
		case PROFILE_PERIOD:
		case PROFILE_DEFAULT_SAMPLE_TYPE:
			if (expect_wire(d, &f, PB_WIRE_VARINT, "Profile"))
				return -EINVAL;
			break;
		case PROFILE_COMMENT: {
			struct pb_reader values;
			if (pb__field_varints(&f, &values))
				return fail(d, "Profile.comment: bad wire type %d", (int)f.wire);
			break;
		}
		default:
			break; /* unknown field: skip (e.g. doc_url) */
		}
	}
	if (rc)
		return fail(d, "malformed or truncated Profile message");
	return 0;
}

/* Copies the string table into NUL-terminated strings. */
static int read_strings(struct pprof_decoder *d, const void *data, size_t len,
			size_t string_bytes)
{
	if (!d->nstrings)
		return fail(d, "empty string_table (string_table[0] must be \"\")");
	d->strings = calloc(d->nstrings, sizeof(*d->strings));
	d->string_arena = malloc(string_bytes);
	if (!d->strings || !d->string_arena)
		return -ENOMEM;
	struct pb_reader r;
	struct pb_field f;
	size_t n = 0, used = 0;
	pb__reader_init(&r, data, len);
	while (pb__next_field(&r, &f) > 0) {
		if (f.number != PROFILE_STRING_TABLE)
			continue;
		char *s = d->string_arena + used;
		if (f.len)
			memcpy(s, f.data, f.len);
		s[f.len] = '\0';
		used += f.len + 1;
		d->strings[n++] = s;
	}
	if (d->strings[0][0])
		return fail(d, "string_table[0] is not \"\"");
	return 0;
}

/* Reads a ValueType message into type and unit strings. */
static int read_value_type(struct pprof_decoder *d, const struct pb_field *msg,
			   const char **type, const char **unit)
{
	uint64_t v[3] = { 0 };
	if (read_scalars(d, msg, "ValueType", v, 3))
		return -EINVAL;
	if (string_at(d, v[VALUE_TYPE_TYPE], "ValueType.type", type) ||
	    string_at(d, v[VALUE_TYPE_UNIT], "ValueType.unit", unit))
		return -EINVAL;
	return 0;
}

/* Second pass: value types, Mappings, Functions, Locations (unresolved), metadata. */
static int read_tables(struct pprof_decoder *d, const void *data, size_t len)
{
	struct profile *p = d->profile;
	d->mappings = calloc(d->nmappings ? d->nmappings : 1, sizeof(*d->mappings));
	d->functions = calloc(d->nfunctions ? d->nfunctions : 1, sizeof(*d->functions));
	d->locations = calloc(d->nlocations ? d->nlocations : 1, sizeof(*d->locations));
	d->mapping_index = hashmap__new();
	d->function_index = hashmap__new();
	d->location_index = hashmap__new();
	if (!d->mappings || !d->functions || !d->locations || !d->mapping_index ||
	    !d->function_index || !d->location_index)
		return -ENOMEM;

	size_t nmappings = 0, nfunctions = 0, nlocations = 0;
	int64_t time_nanos = 0, duration_nanos = 0, period = 0;
	const char *period_type = NULL, *period_unit = NULL;
	struct pb_reader r;
	struct pb_field f;
	int err = 0;
	pb__reader_init(&r, data, len);
	while (!err && pb__next_field(&r, &f) > 0) {
		switch (f.number) {
		case PROFILE_SAMPLE_TYPE: {
			const char *type = "", *unit = "";
			err = read_value_type(d, &f, &type, &unit);
			if (err)
				break;
			err = profile__add_value_type(p, type, unit);
			if (err == -E2BIG)
				err = fail(d, "more than %d sample types", PROFILE_MAX_VALUES);
			else if (err == -EBUSY)
				err = fail(d, "profile already has samples");
			else if (err > 0)
				err = 0;
			break;
		}
		case PROFILE_MAPPING: {
			uint64_t v[MAPPING_BUILD_ID + 1] = { 0 };
			err = read_scalars(d, &f, "Mapping", v, MAPPING_BUILD_ID + 1);
			if (err)
				break;
			struct dec_mapping *m = &d->mappings[nmappings];
			*m = (struct dec_mapping){ .id = v[MAPPING_ID],
						   .start = v[MAPPING_MEMORY_START],
						   .limit = v[MAPPING_MEMORY_LIMIT],
						   .offset = v[MAPPING_FILE_OFFSET],
						   .filename = v[MAPPING_FILENAME],
						   .build_id = v[MAPPING_BUILD_ID] };
			const char *file = "", *build_id = "";
			err = string_at(d, m->filename, "Mapping.filename", &file);
			if (!err)
				err = string_at(d, m->build_id, "Mapping.build_id", &build_id);
			if (!err)
				err = index_id(d, d->mapping_index, m->id, nmappings, "Mapping");
			if (!err)
				err = profile__add_mapping(p, m->start, m->limit, m->offset, file,
							   build_id, &m->index_plus_one);
			nmappings++;
			break;
		}
		case PROFILE_FUNCTION: {
			uint64_t v[FUNCTION_START_LINE + 1] = { 0 };
			err = read_scalars(d, &f, "Function", v, FUNCTION_START_LINE + 1);
			if (err)
				break;
			struct dec_function *fn = &d->functions[nfunctions];
			*fn = (struct dec_function){ .id = v[FUNCTION_ID],
						     .name = v[FUNCTION_NAME],
						     .filename = v[FUNCTION_FILENAME] };
			const char *s;
			err = string_at(d, fn->name, "Function.name", &s);
			if (!err)
				err = string_at(d, v[FUNCTION_SYSTEM_NAME], "Function.system_name", &s);
			if (!err)
				err = string_at(d, fn->filename, "Function.filename", &s);
			if (!err)
				err = index_id(d, d->function_index, fn->id, nfunctions, "Function");
			nfunctions++;
			break;
		}
		case PROFILE_LOCATION: {
			/* Only the id now; Lines are resolved once all Functions are known. */
			struct pb_reader lr;
			struct pb_field lf;
			int rc;
			uint64_t id = 0;
			pb__reader_init(&lr, f.data, f.len);
			while ((rc = pb__next_field(&lr, &lf)) > 0) {
				if (lf.number == LOCATION_ID) {
					if (expect_wire(d, &lf, PB_WIRE_VARINT, "Location"))
						return -EINVAL;
					id = lf.value;
				}
			}
			if (rc)
				return fail(d, "malformed Location");
			d->locations[nlocations].id = id;
			err = index_id(d, d->location_index, id, nlocations, "Location");
			nlocations++;
			break;
		}
		case PROFILE_TIME_NANOS:
			time_nanos = (int64_t)f.value;
			break;
		case PROFILE_DURATION_NANOS:
			duration_nanos = (int64_t)f.value;
			break;
		case PROFILE_PERIOD:
			period = (int64_t)f.value;
			break;
		case PROFILE_PERIOD_TYPE:
			err = read_value_type(d, &f, &period_type, &period_unit);
			break;
		case PROFILE_COMMENT: {
			struct pb_reader values;
			uint64_t index;
			const char *comment = "";
			pb__field_varints(&f, &values);
			while (!err && pb__reader_more(&values)) {
				if (pb__read_varint(&values, &index))
					err = fail(d, "malformed Profile.comment");
				else
					err = string_at(d, index, "Profile.comment", &comment);
				if (!err)
					err = profile__add_comment(p, comment);
			}
			break;
		}
		default:
			break;
		}
	}
	if (err)
		return err;
	if (time_nanos || duration_nanos)
		profile__set_time(p, time_nanos, duration_nanos);
	if (period_type || period)
		return profile__set_period(p, period_type, period_unit, period);
	return 0;
}

/* True when s ends with suffix. */
static int ends_with(const char *s, const char *suffix)
{
	size_t len = strlen(s), suffix_len = strlen(suffix);
	return len >= suffix_len && strcmp(s + len - suffix_len, suffix) == 0;
}

/* Interns the frame of one Line of a Location; see pprof.h for how the kind
 * and module are inferred. fn may be NULL (a Location without Lines). */
static int add_frame(struct pprof_decoder *d, const struct dec_mapping *m,
		     const struct dec_function *fn, uint64_t line, uint64_t address,
		     uint32_t *frame_id)
{
	const char *mapping_file = m ? d->strings[m->filename] : "";
	const char *name = fn ? d->strings[fn->name] : "";
	const char *file = fn ? d->strings[fn->filename] : "";
	struct frame_desc desc = {
		.kind = FRAME_NATIVE,
		.name = name,
		.line = line > UINT32_MAX ? 0 : (uint32_t)line,
		.mapping = m ? m->index_plus_one : 0,
		.address = address,
	};
	char fallback[64];
	if (!*name) {
		/* Unsymbolized: "binary+0xoffset", the model's name for such frames. */
		if (m && *mapping_file) {
			const char *base = strrchr(mapping_file, '/');
			base = base ? base + 1 : mapping_file;
			uint64_t offset = address;
			if (address >= m->start && address < m->limit)
				offset = address - m->start + m->offset;
			snprintf(fallback, sizeof(fallback), "%.40s+0x%" PRIx64, base, offset);
		} else if (address) {
			snprintf(fallback, sizeof(fallback), "0x%" PRIx64, address);
		} else {
			snprintf(fallback, sizeof(fallback), "[unknown]");
		}
		desc.name = fallback;
	}

	if (m && strcmp(mapping_file, kernel_mapping_file) == 0) {
		desc.kind = FRAME_KERNEL;
		/* Without a line the writer put the module in the file slot. */
		if (!desc.line && *file)
			desc.module = file;
		else {
			desc.module = mapping_file;
			desc.file = file;
		}
	} else if (ends_with(file, ".py") || (!m && (file[0] == '<' || desc.line))) {
		desc.kind = FRAME_PYTHON;
		desc.file = file;
		desc.module = mapping_file;
	} else if (!m && desc.name[0] == '[' && ends_with(desc.name, "]")) {
		desc.kind = FRAME_SPECIAL;
		desc.module = file;
	} else if (m) {
		desc.module = mapping_file;
		desc.file = strcmp(file, mapping_file) ? file : NULL;
	} else {
		desc.module = file;
	}
	/* Back to the model's file-relative addresses (kernel ones are absolute). */
	if (m && desc.kind != FRAME_KERNEL && address >= m->start && address < m->limit)
		desc.address = address - m->start + m->offset;
	return profile__add_frame(d->profile, &desc, frame_id);
}

/* Appends a frame id to the flat Location frame array. */
static int push_location_frame(struct pprof_decoder *d, uint32_t frame_id)
{
	int err = grow_array((void **)&d->location_frames, &d->location_frames_cap,
			     d->nlocation_frames + 1, sizeof(*d->location_frames));
	if (err)
		return err;
	d->location_frames[d->nlocation_frames++] = frame_id;
	return 0;
}

/* Third pass: turns each Location's Lines into frames. */
static int resolve_locations(struct pprof_decoder *d, const void *data, size_t len)
{
	struct pb_reader r;
	struct pb_field f;
	size_t nlocations = 0;
	pb__reader_init(&r, data, len);
	while (pb__next_field(&r, &f) > 0) {
		if (f.number != PROFILE_LOCATION)
			continue;
		struct dec_location *loc = &d->locations[nlocations++];
		uint64_t mapping_id = 0, address = 0;
		struct pb_reader lr;
		struct pb_field lf;
		int rc;
		/* Scalars first: Lines may precede mapping_id and address. */
		pb__reader_init(&lr, f.data, f.len);
		while ((rc = pb__next_field(&lr, &lf)) > 0) {
			if (lf.number == LOCATION_MAPPING_ID || lf.number == LOCATION_ADDRESS) {
				if (expect_wire(d, &lf, PB_WIRE_VARINT, "Location"))
					return -EINVAL;
				if (lf.number == LOCATION_MAPPING_ID)
					mapping_id = lf.value;
				else
					address = lf.value;
			} else if (lf.number == LOCATION_LINE &&
				   expect_wire(d, &lf, PB_WIRE_LEN, "Location")) {
				return -EINVAL;
			}
		}
		if (rc)
			return fail(d, "malformed Location %" PRIu64, loc->id);
		const struct dec_mapping *m = NULL;
		if (mapping_id) {
			size_t index = 0;
			if (lookup_id(d, d->mapping_index, mapping_id, "Mapping", &index))
				return -EINVAL;
			m = &d->mappings[index];
		}

		if (d->nlocation_frames > UINT32_MAX)
			return fail(d, "too many frames");
		loc->first_frame = (uint32_t)d->nlocation_frames;
		pb__reader_init(&lr, f.data, f.len);
		while (pb__next_field(&lr, &lf) > 0) {
			if (lf.number != LOCATION_LINE)
				continue;
			uint64_t v[LINE_LINE + 1] = { 0 };
			if (read_scalars(d, &lf, "Line", v, LINE_LINE + 1))
				return -EINVAL;
			size_t index = 0;
			if (lookup_id(d, d->function_index, v[LINE_FUNCTION_ID], "Function", &index))
				return -EINVAL;
			uint32_t frame_id;
			int err = add_frame(d, m, &d->functions[index], v[LINE_LINE], address,
					    &frame_id);
			if (!err)
				err = push_location_frame(d, frame_id);
			if (err)
				return err;
		}
		if (d->nlocation_frames == loc->first_frame) {
			uint32_t frame_id;
			int err = add_frame(d, m, NULL, 0, address, &frame_id);
			if (!err)
				err = push_location_frame(d, frame_id);
			if (err)
				return err;
		}
		loc->nframes = (uint32_t)(d->nlocation_frames - loc->first_frame);
	}
	return 0;
}

/* Reads the Labels of one Sample into d->labels; *nlabels gets the count. */
static int read_labels(struct pprof_decoder *d, const struct pb_field *sample, size_t *nlabels)
{
	struct pb_reader r;
	struct pb_field f;
	size_t n = 0;
	pb__reader_init(&r, sample->data, sample->len);
	while (pb__next_field(&r, &f) > 0) {
		if (f.number != SAMPLE_LABEL)
			continue;
		if (expect_wire(d, &f, PB_WIRE_LEN, "Sample"))
			return -EINVAL;
		uint64_t v[LABEL_NUM_UNIT + 1] = { 0 };
		if (read_scalars(d, &f, "Label", v, LABEL_NUM_UNIT + 1))
			return -EINVAL;
		const char *s;
		if (string_at(d, v[LABEL_KEY], "Label.key", &s) ||
		    string_at(d, v[LABEL_STR], "Label.str", &s) ||
		    string_at(d, v[LABEL_NUM_UNIT], "Label.num_unit", &s))
			return -EINVAL;
		int err = grow_array((void **)&d->labels, &d->labels_cap, n + 1, sizeof(*d->labels));
		if (err)
			return err;
		d->labels[n++] = (struct dec_label){ .key = v[LABEL_KEY],
						     .str = v[LABEL_STR],
						     .num = (int64_t)v[LABEL_NUM],
						     .num_unit = v[LABEL_NUM_UNIT] };
	}
	*nlabels = n;
	return 0;
}

/* Adds one Sample to the profile. */
static int read_sample(struct pprof_decoder *d, const struct pb_field *sample)
{
	struct profile *p = d->profile;
	size_t nvalues = profile__value_count(p);
	uint64_t values[PROFILE_MAX_VALUES] = { 0 };
	size_t nvalues_seen = 0, nframes = 0;
	struct pb_reader r, items;
	struct pb_field f;
	int rc, err;

	pb__reader_init(&r, sample->data, sample->len);
	while ((rc = pb__next_field(&r, &f)) > 0) {
		if (f.number != SAMPLE_LOCATION_ID && f.number != SAMPLE_VALUE)
			continue;
		if (pb__field_varints(&f, &items))
			return fail(d, "Sample field %u: bad wire type %d", f.number, (int)f.wire);
		while (pb__reader_more(&items)) {
			uint64_t item;
			if (pb__read_varint(&items, &item))
				return fail(d, "malformed Sample field %u", f.number);
			if (f.number == SAMPLE_VALUE) {
				if (nvalues_seen >= nvalues)
					return fail(d, "Sample has more values than the %zu sample types",
						    nvalues);
				/* int64 on the wire: a negative value (a diff_base
				 * profile) is no count dynoprof can sum. */
				if (item > INT64_MAX)
					return fail(d, "Sample value %" PRId64 " is negative: "
						    "only counts are supported", (int64_t)item);
				values[nvalues_seen++] = item;
				continue;
			}
			size_t index = 0;
			if (lookup_id(d, d->location_index, item, "Location", &index))
				return -EINVAL;
			const struct dec_location *loc = &d->locations[index];
			err = grow_array((void **)&d->stack, &d->stack_cap, nframes + loc->nframes,
					 sizeof(*d->stack));
			if (err)
				return err;
			if (loc->nframes) /* a frameless location: arrays may be NULL */
				memcpy(d->stack + nframes, d->location_frames + loc->first_frame,
				       loc->nframes * sizeof(*d->stack));
			nframes += loc->nframes;
		}
	}
	if (rc)
		return fail(d, "malformed Sample");
	if (nvalues_seen != nvalues)
		return fail(d, "Sample has %zu values, expected %zu", nvalues_seen, nvalues);
	if (nframes > UINT32_MAX)
		return fail(d, "Sample stack too deep");
	/* pprof lists the leaf first; the model wants the root first. */
	for (size_t i = 0; i < nframes / 2; i++) {
		uint32_t t = d->stack[i];
		d->stack[i] = d->stack[nframes - 1 - i];
		d->stack[nframes - 1 - i] = t;
	}

	size_t nlabels;
	err = read_labels(d, sample, &nlabels);
	if (err)
		return err;
	size_t slots = nlabels ? nlabels : 1;
	err = grow_array((void **)&d->label_keys, &d->label_keys_cap, slots,
			 sizeof(*d->label_keys));
	if (!err)
		err = grow_array((void **)&d->label_values, &d->label_values_cap, slots,
				 sizeof(*d->label_values));
	if (!err)
		err = grow_array((void **)&d->number_offsets, &d->number_offsets_cap,
				 slots, sizeof(*d->number_offsets));
	if (err)
		return err;

	struct sample_desc desc = { .values = values };
	size_t n = 0;
	strbuf__reset(&d->numbers);
	for (size_t i = 0; i < nlabels; i++) {
		const struct dec_label *l = &d->labels[i];
		const char *key = d->strings[l->key];
		if (l->str) {
			if (strcmp(key, "comm") == 0 && !desc.comm) {
				desc.comm = d->strings[l->str];
				continue;
			}
			d->label_keys[n] = key;
			d->label_values[n] = d->strings[l->str];
			d->number_offsets[n++] = SIZE_MAX;
			continue;
		}
		if (strcmp(key, "pid") == 0 && !desc.pid) {
			desc.pid = (uint32_t)l->num;
			continue;
		}
		if (strcmp(key, "tid") == 0 && !desc.tid) {
			desc.tid = (uint32_t)l->num;
			continue;
		}
		/* Other numbers (e.g. Go's "bytes") keep their value as text. */
		d->label_keys[n] = key;
		d->number_offsets[n++] = d->numbers.len;
		strbuf__printf(&d->numbers, "%" PRId64, l->num);
		if (l->num_unit)
			strbuf__printf(&d->numbers, " %s", d->strings[l->num_unit]);
		strbuf__putc(&d->numbers, '\0');
	}
	if (strbuf__error(&d->numbers))
		return -ENOMEM;
	/* The text buffer no longer moves: point at it now. */
	for (size_t i = 0; i < n; i++)
		if (d->number_offsets[i] != SIZE_MAX)
			d->label_values[i] = d->numbers.data + d->number_offsets[i];

	desc.frames = d->stack;
	desc.nframes = (uint32_t)nframes;
	desc.label_keys = d->label_keys;
	desc.label_values = d->label_values;
	desc.nlabels = (uint32_t)n;
	return profile__add_sample(p, &desc);
}

/* Fourth pass: the Samples. */
static int read_samples(struct pprof_decoder *d, const void *data, size_t len)
{
	struct pb_reader r;
	struct pb_field f;
	pb__reader_init(&r, data, len);
	while (pb__next_field(&r, &f) > 0) {
		if (f.number != PROFILE_SAMPLE)
			continue;
		int err = read_sample(d, &f);
		if (err)
			return err;
	}
	return 0;
}

int pprof__decode(struct profile *p, const void *data, size_t len, char *err, size_t errlen)
{
	struct pprof_decoder d = { .profile = p, .err = err, .errlen = errlen };
	if (err && errlen)
		err[0] = '\0';
	if (!p || (!data && len))
		return fail(&d, "invalid arguments");
	if (profile__value_count(p))
		return fail(&d, "destination profile is not empty");

	size_t string_bytes;
	int rc = count_records(&d, data, len, &string_bytes);
	if (!rc)
		rc = read_strings(&d, data, len, string_bytes);
	if (!rc)
		rc = read_tables(&d, data, len);
	if (!rc)
		rc = resolve_locations(&d, data, len);
	if (!rc)
		rc = read_samples(&d, data, len);

	free(d.strings);
	free(d.string_arena);
	free(d.mappings);
	free(d.functions);
	free(d.locations);
	hashmap__free(d.mapping_index);
	hashmap__free(d.function_index);
	hashmap__free(d.location_index);
	free(d.location_frames);
	free(d.stack);
	free(d.labels);
	free(d.label_keys);
	free(d.label_values);
	free(d.number_offsets);
	strbuf__release(&d.numbers);
	if (rc == -ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* Reads all of in into *data (at most PPROF_MAX_INPUT bytes). */
static int read_all(FILE *in, unsigned char **data, size_t *len)
{
	/* One byte past the limit tells "exactly at the limit" from "beyond". */
	const size_t limit = (size_t)PPROF_MAX_INPUT + 1;
	size_t cap = 0, used = 0;
	unsigned char *buf = NULL;
	int err = 0;
	for (;;) {
		if (used == cap) {
			if (cap >= limit) {
				err = -EFBIG;
				break;
			}
			size_t want = cap ? cap * 2 : 1 << 16;
			unsigned char *p = realloc(buf, want < limit ? want : limit);
			if (!p) {
				err = -ENOMEM;
				break;
			}
			buf = p;
			cap = want < limit ? want : limit;
		}
		size_t n = fread(buf + used, 1, cap - used, in);
		used += n;
		if (n == 0)
			break;
	}
	if (!err && ferror(in))
		err = -EIO;
	if (err) {
		free(buf);
		return err;
	}
	*data = buf;
	*len = used;
	return 0;
}

/* Inflates a gzip stream (several members allowed) into *out. */
static int gunzip(const unsigned char *data, size_t len, unsigned char **out, size_t *out_len,
		  char *err, size_t errlen)
{
	z_stream zs = { 0 };
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	unsigned char *buf = NULL;
	size_t cap = 0, used = 0;
	int rc = 0;
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len; /* len <= PPROF_MAX_INPUT fits */
	for (;;) {
		if (used == cap) {
			if (cap >= PPROF_MAX_DECODED) {
				snprintf(err, errlen, "decompressed profile exceeds %u bytes",
					 PPROF_MAX_DECODED);
				rc = -EFBIG;
				break;
			}
			rc = grow_array((void **)&buf, &cap, cap ? cap * 2 : 4 * len + 4096, 1);
			if (rc)
				break;
			if (cap > PPROF_MAX_DECODED)
				cap = PPROF_MAX_DECODED;
		}
		zs.next_out = buf + used;
		zs.avail_out = (uInt)(cap - used);
		int z = inflate(&zs, Z_NO_FLUSH);
		used = cap - zs.avail_out;
		if (z == Z_STREAM_END) {
			if (!zs.avail_in)
				break;
			/* Another gzip member follows (as `cat a.gz b.gz` makes). */
			if (inflateReset(&zs) != Z_OK) {
				rc = -EINVAL;
				break;
			}
			continue;
		}
		if (z == Z_BUF_ERROR && zs.avail_out) {
			snprintf(err, errlen, "truncated gzip stream");
			rc = -EINVAL;
			break;
		}
		if (z != Z_OK && z != Z_BUF_ERROR) {
			snprintf(err, errlen, "bad gzip data: %s", zs.msg ? zs.msg : "inflate failed");
			rc = z == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
	}
	inflateEnd(&zs);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*out_len = used;
	return 0;
}

int pprof__read_buffer(struct profile *p, const void *data, size_t len, char *err,
		       size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!p || (!data && len)) {
		snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	if (len > PPROF_MAX_INPUT) {
		snprintf(err, errlen, "input exceeds %u bytes", PPROF_MAX_INPUT);
		return -EFBIG;
	}
	const unsigned char *bytes = data;
	if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) {
		unsigned char *raw = NULL;
		size_t raw_len = 0;
		int rc = gunzip(bytes, len, &raw, &raw_len, err, errlen);
		if (rc)
			return rc;
		rc = pprof__decode(p, raw, raw_len, err, errlen);
		free(raw);
		return rc;
	}
	return pprof__decode(p, data, len, err, errlen);
}

int pprof__read(struct profile *p, FILE *in, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!p || !in) {
		snprintf(err, errlen, "invalid arguments");
		return -EINVAL;
	}
	unsigned char *data = NULL;
	size_t len = 0;
	int rc = read_all(in, &data, &len);
	if (rc) {
		if (rc == -EFBIG)
			snprintf(err, errlen, "input exceeds %u bytes", PPROF_MAX_INPUT);
		else
			snprintf(err, errlen, "read error: %s", strerror(-rc));
		return rc;
	}
	rc = pprof__read_buffer(p, data, len, err, errlen);
	free(data);
	return rc;
}
