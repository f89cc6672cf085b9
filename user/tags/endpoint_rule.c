// SPDX-License-Identifier: MIT
#include "tags/endpoint_rule.h"

#include <errno.h>
#include <string.h>

/* Presets. Python frames are named "module:qualname"; before 3.11 the
 * qualname is only the function name, hence two spellings each. */
static const struct endpoint_rule presets[] = {
	/* Async views under WSGI run in asgiref's event loop thread, where
	 * AsyncToSync.main_wrap awaits them. */
	{ "django", { "django.core.handlers.base:BaseHandler._get_response",
		      "django.core.handlers.base:_get_response",
		      "asgiref.sync:AsyncToSync.main_wrap", "asgiref.sync:main_wrap", NULL },
	  { "django.views.generic.base:", "django.views.decorators.",
	    "django.utils.decorators:", "django.contrib.auth.decorators:",
	    "django.contrib.admin.views.decorators:", "functools:", "contextlib:", NULL },
	  { "django.", "asyncio.", "asgiref.", "concurrent.", "threading:", "inspect:",
	    "dynotag.", NULL },
	  { ".process_view", ".process_exception", ".process_template_response",
	    ":process_view", ":process_exception", ":process_template_response", NULL } },
	{ "flask", { "flask.app:Flask.dispatch_request", "flask.app:dispatch_request",
		     "asgiref.sync:AsyncToSync.main_wrap", "asgiref.sync:main_wrap", NULL },
	  { "flask.views:", "functools:", "contextlib:", NULL },
	  { "flask.", "werkzeug.", "asyncio.", "asgiref.", "concurrent.", "threading:",
	    "dynotag.", NULL },
	  { NULL } },
	{ "wsgi", { "gunicorn.workers.sync:SyncWorker.handle_request",
		    "gunicorn.workers.gthread:ThreadWorker.handle_request",
		    "gunicorn.workers.sync:handle_request",
		    "gunicorn.workers.gthread:handle_request",
		    "wsgiref.handlers:BaseHandler.run", "wsgiref.handlers:run", NULL },
	  { "dynotag.wsgi:DynotagMiddleware.", "dynotag.wsgi:__call__", "functools:", NULL },
	  { "gunicorn.", "wsgiref.", "dynotag.", "socket:", "selectors:", "ssl:",
	    "email.", "io:", NULL },
	  { ".__iter__", ".__next__", ".close", ":__iter__", ":__next__", ":close", NULL } },
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

/* name starts with one of the NULL-terminated prefixes. */
static int starts_with_any(const char *name, const char *const *prefixes)
{
	for (size_t k = 0; k < ENDPOINT_RULE_MAX_PREFIXES && prefixes[k]; k++)
		if (strncmp(name, prefixes[k], strlen(prefixes[k])) == 0)
			return 1;
	return 0;
}

/* name ends with one of the NULL-terminated suffixes. */
static int ends_with_any(const char *name, const char *const *suffixes)
{
	size_t ln = strlen(name);
	for (size_t k = 0; k < ENDPOINT_RULE_MAX_PREFIXES && suffixes[k]; k++) {
		size_t ls = strlen(suffixes[k]);
		if (ln >= ls && strcmp(name + ln - ls, suffixes[k]) == 0)
			return 1;
	}
	return 0;
}

/* The endpoint under the dispatcher at frames[i]: the first Python frame
 * leafward past the wrappers, when it is the application's. */
static const char *view_under(const struct endpoint_rule *rule, const struct profile *p,
			      const uint32_t *frames, uint32_t nframes, uint32_t i)
{
	for (uint32_t j = i + 1; j < nframes; j++) {
		const struct profile_frame *g = profile__frame(p, frames[j]);
		if (!g || g->kind != FRAME_PYTHON)
			continue;
		const char *name = profile__str(p, g->name);
		if (starts_with_any(name, rule->wrappers))
			continue;
		if (starts_with_any(name, rule->framework) || ends_with_any(name, rule->not_views))
			return NULL;
		return name;
	}
	return NULL;
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
			/* The dispatcher: the view it calls, if the sample is in one. */
			return view_under(rule, p, frames, nframes, i);
		}
	}
	return NULL;
}
