// SPDX-License-Identifier: MIT
#include "formats/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "formats/folded.h"
#include "formats/pprof.h"
#include "formats/speedscope.h"
#include "formats/svg.h"
#include "profile/transform.h"
#include "util/outfile.h"

int output__weight_index(const struct profile *p, const char *name, size_t *index, char *err,
			 size_t errlen)
{
	int v = profile__find_value(p, name);
	if (v >= 0) {
		*index = (size_t)v;
		return 0;
	}
	char have[256] = "";
	size_t o = 0;
	for (size_t i = 0; i < profile__value_count(p) && o < sizeof(have); i++)
		o += (size_t)snprintf(have + o, sizeof(have) - o, "%s%s", i ? ", " : "",
				      profile__value_type(p, i));
	snprintf(err, errlen, "this profile has no '%s' values (it has: %s)", name, have);
	return -ENOENT;
}

int output__check_writable(const char *path, char *err, size_t errlen)
{
	return outfile__check(path, 0, err, errlen);
}

static int write_format(const struct profile *p, FILE *f, enum output_format fmt,
			const struct output_opts *o)
{
	switch (fmt) {
	case FORMAT_FOLDED: {
		struct folded_opts fo = FOLDED_OPTS_INIT;
		fo.value_index = o->value_index;
		fo.label_frames = o->label_frames;
		fo.group_keys = o->group_keys;
		fo.ngroup_keys = o->ngroup_keys;
		return folded__write(p, f, &fo);
	}
	case FORMAT_SVG: {
		struct svg_opts so = { .title = o->title, .subtitle = o->subtitle,
				       .value_index = o->value_index };
		if (!o->group_keys)
			return svg__write(p, f, &so);
		/* Groups become the top frames of the one tree an SVG draws. */
		struct profile *grouped = profile__grouped_copy(p, o->group_keys, o->ngroup_keys);
		if (!grouped)
			return -errno;
		int err = svg__write(grouped, f, &so);
		profile__free(grouped);
		return err;
	}
	case FORMAT_PPROF:
		return pprof__write(p, f);
	case FORMAT_SPEEDSCOPE:
		return speedscope__write(p, f, o->value_index);
	}
	return -EINVAL;
}

int output__write(const struct profile *p, const char *path, enum output_format fmt,
		  const struct output_opts *opts, char *err, size_t errlen)
{
	struct output_opts defaults = { 0 };
	struct outfile *out;
	int e;

	if (!opts)
		opts = &defaults;
	out = outfile__open(path, err, errlen);
	if (!out)
		return -errno;
	e = write_format(p, outfile__stream(out), fmt, opts);
	if (e) {
		outfile__abort(out);
		snprintf(err, errlen, "writing %s (%s) failed: %s",
			 strcmp(path, "-") ? path : "standard output", format__name(fmt),
			 strerror(-e));
		return e;
	}
	return outfile__commit(out, err, errlen);
}

/* Peeks at the start of f (restored for the reader): folded text is UTF-8
 * without control characters other than tab and line ends. */
static int looks_binary(FILE *f)
{
	unsigned char buf[512];
	long at = ftell(f);
	if (at < 0)
		return 0; /* a pipe: cannot peek; let the folded reader judge */
	size_t n = fread(buf, 1, sizeof(buf), f);
	if (fseek(f, at, SEEK_SET))
		return 0;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = buf[i];
		if (b == 0 || (b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7f)
			return 1;
		if (b >= 0x80) {
			/* Count bytes that cannot start or continue valid UTF-8. */
			size_t len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
			size_t k = 1;
			while (len && k < len && i + k < n && (buf[i + k] & 0xc0) == 0x80)
				k++;
			if (!len || (k < len && i + k < n))
				bad++;
			else
				i += len - 1;
		}
	}
	return bad > 0;
}

int output__read(struct profile *p, const char *path, char *err, size_t errlen)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
		return -e;
	}
	/* Sniff: gzip magic or a protobuf-looking first byte means pprof. Folded
	 * text starts with a printable character. */
	int c = fgetc(f);
	int e;
	if (c == EOF) {
		snprintf(err, errlen, "%s is empty: not a profile", path);
		e = -EINVAL;
	} else {
		ungetc(c, f);
		char inner[512] = "";
		if (c >= 0x20 && looks_binary(f)) {
			snprintf(err, errlen, "%s is not a profile: binary data that is neither "
				 "pprof (gzipped or raw) nor folded text", path);
			e = -EINVAL;
		} else if (c == 0x1f || c < 0x20) {
			e = pprof__read(p, f, inner, sizeof(inner));
			if (e)
				snprintf(err, errlen, "%s: not a valid pprof profile: %s", path, inner);
		} else {
			struct folded_read_opts ro = FOLDED_READ_OPTS_INIT;
			e = folded__read(p, f, &ro, inner, sizeof(inner));
			if (e) {
				/* The input may be binary: never echo raw bytes. */
				char clean[512];
				size_t o = 0;
				for (const unsigned char *q = (const unsigned char *)inner;
				     *q && o + 5 < sizeof(clean) && o < 200; q++) {
					if (*q >= 0x20 && *q < 0x7f)
						clean[o++] = (char)*q;
					else
						o += (size_t)snprintf(clean + o, sizeof(clean) - o,
								      "\\x%02x", *q);
				}
				clean[o] = '\0';
				snprintf(err, errlen, "%s: not a valid folded profile: %s", path, clean);
			}
		}
	}
	if (f != stdin)
		fclose(f);
	return e;
}
