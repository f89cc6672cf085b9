/* endpoint_rule.h - infers a sample's endpoint from its stack, with no
 * instrumentation: the endpoint is the function a named framework frame calls
 * (the view under Django's request handler, Flask's dispatch, a WSGI app).
 * Applied after symbolization, only to samples without an app-set endpoint.
 */
#ifndef DYNOPROF_ENDPOINT_RULE_H
#define DYNOPROF_ENDPOINT_RULE_H

#include <stdint.h>

#include "profile/profile.h"

/* Most patterns one rule holds. */
#define ENDPOINT_RULE_MAX_PATTERNS 8

/* A rule: a frame whose name ends with one of the patterns is the dispatcher;
 * the next frame leafward names the endpoint. */
struct endpoint_rule {
	const char *name;                                /* preset name or "custom" */
	const char *patterns[ENDPOINT_RULE_MAX_PATTERNS];/* name suffixes, NULL-terminated */
};

/* Resolves "django", "flask", "wsgi", or "frame=SUFFIX[,SUFFIX...]" (custom)
 * into *rule. Custom patterns point into spec, which must outlive the rule
 * (and is modified: commas become NULs). Returns 0 or -EINVAL. */
int endpoint_rule__parse(char *spec, struct endpoint_rule *rule);

/* Finds the endpoint of a stack (frame ids root first): the name of the
 * Python frame right after the innermost dispatcher frame. Returns the
 * name (owned by p) or NULL. */
const char *endpoint_rule__apply(const struct endpoint_rule *rule, const struct profile *p,
				 const uint32_t *frames, uint32_t nframes);

#endif
