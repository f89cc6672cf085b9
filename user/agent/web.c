// SPDX-License-Identifier: MIT
/* web.c - serves the web page and its script and style (see web.h).
 *
 * The HTML names its assets with a version (a hash of their text):
 * /ui/web.js?v=HASH. An asset asked for with the current version is cached
 * for a year (immutable: a new build has a new hash), anything else is
 * revalidated; the HTML itself is always revalidated.
 */
#include "agent/web.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "web.html.inc"
#include "web.js.inc"
#include "web.css.inc"

/* Only this origin: no CDN, no external fonts, no inline code. */
#define WEB_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
		"connect-src 'self'; img-src 'self' data: blob:; font-src 'none'; " \
		"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#define WEB_VERSION_PLACEHOLDER "@VERSION@"

const char *const web_public_paths[] = { "/", WEB_SCRIPT_PATH, WEB_STYLE_PATH, NULL };

/* The assets' version: FNV-1a of the script and style, in hex. */
static void web_version(char out[17])
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = web_js; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	for (const char *s = web_css; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	snprintf(out, 17, "%016" PRIx64, h);
}

void web__handle_page(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	if (http_query__count(q)) {
		http_response__error(r, 400, "/ takes no parameters: the page keeps its view "
				     "after '#'");
		return;
	}
	char version[17];
	web_version(version);
	/* The HTML with every @VERSION@ replaced. */
	const char *s = web_html, *hit;
	size_t plen = strlen(WEB_VERSION_PLACEHOLDER);
	while ((hit = strstr(s, WEB_VERSION_PLACEHOLDER))) {
		strbuf__append(&r->body, s, (size_t)(hit - s));
		strbuf__puts(&r->body, version);
		s = hit + plen;
	}
	strbuf__puts(&r->body, s);
	r->content_type = "text/html; charset=utf-8";
	r->cache_control = "no-cache";
	r->csp = WEB_CSP;
}

/* An asset: ?v=VERSION (optional) is the only parameter. */
static void serve_asset(const struct http_query *q, struct http_response *r, const char *text,
			const char *type)
{
	char version[17];
	web_version(version);
	const char *v = http_query__get(q, "v");
	if (http_query__count(q) > (v ? 1u : 0u)) {
		http_response__error(r, 400, "unknown parameter: an asset takes only v=VERSION");
		return;
	}
	strbuf__puts(&r->body, text);
	r->content_type = type;
	r->cache_control = v && !strcmp(v, version) ? "public, max-age=31536000, immutable"
						    : "no-cache";
	r->csp = WEB_CSP;
}

void web__handle_script(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	serve_asset(q, r, web_js, "text/javascript; charset=utf-8");
}

void web__handle_style(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	serve_asset(q, r, web_css, "text/css; charset=utf-8");
}
