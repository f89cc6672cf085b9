// SPDX-License-Identifier: MIT
#include "tags/endpoint_rule.h"

#include <errno.h>
#include <string.h>

/* Presets. Python frames are named "module:qualname"; before 3.11 the
 * qualname is only the function name, hence two spellings each. */
static const struct endpoint_rule presets[] = {
	{ "django", { "django.core.handlers.base:BaseHandler._get_response",
		      "django.core.handlers.base:_get_response", NULL } },
	{ "flask", { "flask.app:Flask.dispatch_request", "flask.app:dispatch_request", NULL } },
	{ "wsgi", { "gunicorn.workers.sync:SyncWorker.handle_request",
		    "gunicorn.workers.gthread:ThreadWorker.handle_request",
		    "gunicorn.workers.sync:handle_request",
		    "gunicorn.workers.gthread:handle_request",
		    "wsgiref.handlers:BaseHandler.run", "wsgiref.handlers:run", NULL } },
};

int endpoint_rule__parse(char *spec, struct endpoint_rule *rule)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (strcmp(spec, presets[i].name) == 0) {
			*rule = presets[i];
			return 0;
		}
	if (strncmp(spec, "frame=", 6) != 0 || !spec[6])
		return -EINVAL;
	memset(rule, 0, sizeof(*rule));
	rule->name = "custom";
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(spec + 6, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n + 1 >= ENDPOINT_RULE_MAX_PATTERNS)
			return -EINVAL;
		rule->patterns[n++] = tok;
	}
	return n ? 0 : -EINVAL;
}

/* name equals suffix, or ends with it right after a '.' or ':' boundary. */
static int ends_with(const char *name, const char *suffix)
{
	size_t ln = strlen(name), ls = strlen(suffix);
	if (ln < ls || strcmp(name + ln - ls, suffix) != 0)
		return 0;
	return ln == ls || name[ln - ls - 1] == '.' || name[ln - ls - 1] == ':';
}

const char *endpoint_rule__apply(const struct endpoint_rule *rule, const struct profile *p,
				 const uint32_t *frames, uint32_t nframes)
{
	for (uint32_t i = nframes; i-- > 0;) {
		const struct profile_frame *f = profile__frame(p, frames[i]);
		if (!f || f->kind != FRAME_PYTHON)
			continue;
		const char *name = profile__str(p, f->name);
		for (size_t k = 0; k < ENDPOINT_RULE_MAX_PATTERNS && rule->patterns[k]; k++) {
			if (!ends_with(name, rule->patterns[k]))
				continue;
			/* The dispatcher: the endpoint is the next Python frame. */
			for (uint32_t j = i + 1; j < nframes; j++) {
				const struct profile_frame *g = profile__frame(p, frames[j]);
				if (g && g->kind == FRAME_PYTHON)
					return profile__str(p, g->name);
			}
			return NULL;
		}
	}
	return NULL;
}
