/* relabel.h - holds the samples of whole requests whose endpoint is not known
 * yet (libdynotag ABI 2: a sample carries its thread's open request number,
 * bpf/dynotag_abi.h), until the request's endpoint is: then each is released
 * with `endpoint` set to it, so a request's CPU from its very start goes to
 * the endpoint it finally gets.
 *
 * A request is (pid, request number); samples keep their arrival order.
 * Memory is bounded by max_samples held at once: past it, relabel_buffer__hold
 * refuses (-ENOSPC) and the caller adds the sample as it is, counting it.
 * Frame ids are copied as they are: release into the profile they were
 * made in.
 */
#ifndef DYNOPROF_RELABEL_H
#define DYNOPROF_RELABEL_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* A request with held samples. */
struct relabel_key {
	uint32_t pid;      /* process (thread group id) */
	uint32_t request;  /* its libdynotag request number (never 0) */
};

/* Receives a released sample (labels with `endpoint` set) and the exact CPU
 * ns it carried; returns 0 or -errno (which stops the release). */
typedef int (*relabel_emit_fn)(void *ctx, const struct sample_desc *s, uint64_t exact_ns);

struct relabel_buffer;

/* NULL + errno (EINVAL for max_samples 0, ENOMEM). */
struct relabel_buffer *relabel_buffer__new(size_t max_samples);
void relabel_buffer__free(struct relabel_buffer *b);

/* Holds a copy of s (frames, nvalues values, labels, comm) as a sample of
 * request (s->pid, request). Returns 0, -EINVAL (request 0, nvalues too
 * many), -ENOSPC (max_samples held: nothing kept) or -ENOMEM. */
int relabel_buffer__hold(struct relabel_buffer *b, uint32_t request, const struct sample_desc *s,
			 size_t nvalues, uint64_t exact_ns);

/* Samples held, and requests they belong to. */
size_t relabel_buffer__samples(const struct relabel_buffer *b);
size_t relabel_buffer__requests(const struct relabel_buffer *b);

/* Lists up to cap held requests into out, ordered by pid then request
 * number; returns how many were written. */
size_t relabel_buffer__list(const struct relabel_buffer *b, struct relabel_key *out, size_t cap);

/* Releases the samples of request key with label endpoint=endpoint (added,
 * or replacing one; endpoint NULL: labels as they were), through fn, in
 * arrival order, and forgets them.
 * Returns the number released (0: none held), or fn's first error (the
 * request's samples are forgotten all the same). */
int relabel_buffer__release(struct relabel_buffer *b, struct relabel_key key, const char *endpoint,
			    relabel_emit_fn fn, void *ctx);

#endif
