/* endpoint_rule.h - infers a sample's endpoint from its stack, with no
 * instrumentation: the endpoint is the application's view a named framework
 * frame calls (the view under Django's request handler, Flask's dispatch, a
 * WSGI app under the server). Only the application's callable is ever named:
 * the framework's view plumbing (decorators, class-based views' as_view and
 * dispatch) is looked through, and a sample in anything else the dispatcher
 * runs (URL resolution, atomic wrapping, response checks, middleware hooks,
 * asyncio helpers) gets no endpoint. Applied after symbolization, only to
 * samples without an app-set endpoint.
 */
#ifndef DYNOPROF_ENDPOINT_RULE_H
#define DYNOPROF_ENDPOINT_RULE_H

#include <stdint.h>

#include "profile/profile.h"

/* Most patterns one rule holds. */
#define ENDPOINT_RULE_MAX_PATTERNS 8
/* Most wrapper, framework or not-a-view entries one rule holds. */
#define ENDPOINT_RULE_MAX_PREFIXES 16

/* A rule: a frame whose name ends with one of the patterns is the dispatcher;
 * leafward of it, past frames starting with a wrapper prefix, the first
 * Python frame names the endpoint, unless it starts with a framework prefix
 * or ends with a not-a-view suffix (then the sample has no endpoint). Names
 * are "module:qualname". Custom rules have no wrappers or framework: the
 * next Python frame names the endpoint. */
struct endpoint_rule {
	const char *name;                                /* preset name or "custom" */
	const char *patterns[ENDPOINT_RULE_MAX_PATTERNS];/* name suffixes, NULL-terminated */
	const char *wrappers[ENDPOINT_RULE_MAX_PREFIXES];/* name prefixes of view plumbing
							  * to look through, NULL-terminated */
	const char *framework[ENDPOINT_RULE_MAX_PREFIXES];/* name prefixes of the framework
							   * and the standard library:
							   * never an endpoint */
	const char *not_views[ENDPOINT_RULE_MAX_PREFIXES];/* name suffixes of hooks the
							   * dispatcher calls that are not
							   * views (middleware hooks) */
};

/* Resolves "django", "flask", "wsgi", or "frame=SUFFIX[,SUFFIX...]" (custom)
 * into *rule. Custom patterns point into spec, which must outlive the rule
 * (and is modified: commas become NULs). Returns 0 or -EINVAL. */
int endpoint_rule__parse(char *spec, struct endpoint_rule *rule);

/* Finds the endpoint of a stack (frame ids root first): the application
 * frame the innermost dispatcher frame calls (see struct endpoint_rule).
 * Returns the name (owned by p) or NULL. */
const char *endpoint_rule__apply(const struct endpoint_rule *rule, const struct profile *p,
				 const uint32_t *frames, uint32_t nframes);

#endif
