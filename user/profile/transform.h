/* transform.h - derived profiles: the samples of a profile that match tag
 * filters (`--tag endpoint=/checkout`), as a new, independent profile. */
#ifndef DYNOPROF_TRANSFORM_H
#define DYNOPROF_TRANSFORM_H

#include <stddef.h>

#include "profile/profile.h"

/* A label filter: the sample's label `key` must equal `value` ("-" matches a
 * sample without that label). */
struct label_filter {
	const char *key;
	const char *value;
};

/* Parses "KEY=VALUE" into f (pointers into text, which is modified).
 * Returns 0 or -EINVAL. */
int label_filter__parse(char *text, struct label_filter *f);

/* Returns 1 when sample s of p matches every filter. */
int label_filter__match(const struct profile *p, const struct profile_sample *s,
			const struct label_filter *filters, size_t nfilters);

/* Returns 1 when a sample whose labels are keys[i] = values[i] (n of them: a
 * struct sample_desc's) matches every filter. The same rule as
 * label_filter__match, for samples not yet in a profile. */
int label_filter__match_labels(const struct label_filter *filters, size_t nfilters,
			       const char *const *keys, const char *const *values, uint32_t n);

/* Returns a new profile holding src's value types, metadata, and the samples
 * matching every filter (all of them when nfilters is 0). NULL + errno. */
struct profile *profile__filtered_copy(const struct profile *src,
				       const struct label_filter *filters, size_t nfilters);

/* Returns a copy of src whose stacks lead with SPECIAL frames "[key=value]"
 * for each key in order ("[key=-]" when absent), then a SPECIAL frame holding
 * the comm; the samples' comm is emptied. Formats that draw one tree (SVG)
 * then show the groups at the top. NULL + errno. */
struct profile *profile__grouped_copy(const struct profile *src, const char *const *keys,
				      size_t nkeys);

/* Adds the samples of src matching every filter (and of process pid when
 * non-zero) to dst; values are matched by type name (a type dst lacks is
 * dropped; when dst has no value types yet it takes src's). extra (may be
 * NULL) is a label set on every added sample (replacing one of that key).
 * Metadata of dst is untouched. Returns 0 or -errno. */
int profile__merge(struct profile *dst, const struct profile *src,
		   const struct label_filter *filters, size_t nfilters, uint32_t pid,
		   const struct label_filter *extra);

/* Adds one sample described against src (frame ids of src) to dst, copying
 * its frames. Values are matched by type name. Returns 0 or -errno. */
int profile__add_foreign_sample(struct profile *dst, const struct profile *src,
				const struct sample_desc *s);

#endif
