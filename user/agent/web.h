/* web.h - the agent's web page (GET /) and the JSON APIs it reads
 * (/api/v1/flamegraph, /api/v1/timeseries, /api/v1/compare). Private to
 * user/agent/.
 *
 * The page's HTML, script and style (user/agent/assets/web.*) are built into
 * the binary; it loads nothing else (its Content-Security-Policy forbids
 * other origins, inline script and inline style). The page and its two
 * assets hold no data and are served without the bearer token, so a browser
 * can open them and then ask the user for the token, which the script sends
 * with every API request.
 */
#ifndef DYNOPROF_AGENT_WEB_H
#define DYNOPROF_AGENT_WEB_H

#include "agent/http_server.h"

#define WEB_SCRIPT_PATH "/ui/web.js"
#define WEB_STYLE_PATH "/ui/web.css"

/* The routes served without the token (the page and its assets), for
 * http_server_opts.public_paths: NULL-terminated. */
extern const char *const web_public_paths[];

/* Route handlers; ctx is the agent's struct agent_state. */
void web__handle_page(void *ctx, const struct http_query *q, struct http_response *r);
void web__handle_script(void *ctx, const struct http_query *q, struct http_response *r);
void web__handle_style(void *ctx, const struct http_query *q, struct http_response *r);
void web__handle_flamegraph(void *ctx, const struct http_query *q, struct http_response *r);
void web__handle_timeseries(void *ctx, const struct http_query *q, struct http_response *r);
void web__handle_compare(void *ctx, const struct http_query *q, struct http_response *r);

#endif
