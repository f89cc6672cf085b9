/* Layer agent: the always-on daemon: windows, history store, metrics, HTTP API,
 * deploy checks.
 * (Layers and their order: scripts/check-layers.sh.) */
/* agent.h - `dynoprof agent`: profiles the whole host continuously, closes a
 * window every config.window_s seconds into the history store, keeps the
 * Prometheus metrics, and serves HTTP (see agent/handlers.c).
 */
#ifndef DYNOPROF_AGENT_H
#define DYNOPROF_AGENT_H

#include <stdio.h>

#include "agent/config.h"

/* Runs until SIGTERM/SIGINT (flushes the open window, returns 0) or a fatal
 * error (returns non-zero after printing it). config_path (may be NULL) is
 * re-read on SIGHUP; flags are applied over it again by apply_flags(ctx). */
int agent__run(const struct agent_config *initial, const char *config_path,
	       int (*apply_flags)(struct agent_config *c, void *ctx), void *flags_ctx);

/* Prints every HTTP route the agent serves, one "GET /path  what" entry each,
 * from the table that registers their handlers (agent/handlers.c): --help
 * cannot miss one. */
void agent__describe_routes(FILE *out);

#endif
