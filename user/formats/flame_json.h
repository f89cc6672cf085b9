/* flame_json.h - a profile's call tree as compact JSON, for the agent's web page
 * (GET /api/v1/flamegraph) to draw an interactive flame graph from.
 *
 * The tree is the SVG writer's (svg.h): under a root "all", each sample's comm
 * (a special frame), then its stack root first; children ordered by display
 * text. Frames are named by frame__display_flags(NO_KERNEL_SUFFIX), as in the
 * SVG, with their kind, file, line and module apart. Shape:
 *
 *   {"value_types": [["samples","count"], ["cpu","nanoseconds"]],
 *    "totals": [S, C], "stride": 4,
 *    "frames": [{"n": "all", "k": "special"}, {"n": "spin (app.py:40)",
 *               "k": "python", "fn": "spin", "f": "app.py", "l": 40}, ...],
 *    "nodes": [FRAME, DEPTH, V0, V1, FRAME, DEPTH, ...],
 *    "nodes_total": N, "nodes_omitted": K, "omitted": [S', C']}
 *
 * nodes is the tree in depth-first pre-order, stride numbers each: the index
 * into frames, the depth (root 0) and the node's total of every value type. A
 * node's self is its total less its listed children's. Output is bounded: past
 * max_nodes only the max_nodes heaviest nodes (by value_index) are listed, a
 * connected tree from the root; the rest are counted in nodes_omitted and their
 * values in omitted (and show as their listed ancestor's self).
 */
#ifndef DYNOPROF_FLAME_JSON_H
#define DYNOPROF_FLAME_JSON_H

#include <stddef.h>

#include "profile/profile.h"
#include "util/strbuf.h"

/* Default and largest max_nodes. */
#define FLAME_JSON_DEFAULT_NODES 200000
#define FLAME_JSON_MAX_NODES 1000000

/* Writer options; a zeroed struct (or NULL) means the defaults. */
struct flame_json_opts {
	size_t value_index;  /* value that ranks nodes when pruning (default 0) */
	size_t max_nodes;    /* nodes listed at most; 0: FLAME_JSON_DEFAULT_NODES */
	/* Appends extra members (each starting with ", ") to frame f's object,
	 * e.g. a differential verdict. NULL: none. Not called for synthetic
	 * frames ("all", comms). */
	void (*annotate)(void *ctx, const struct profile *p, const struct profile_frame *f,
			 struct strbuf *sb);
	void *annotate_ctx;  /* annotate's context */
};

/* Appends p's call tree to out as JSON (one object, no newline). Samples whose
 * values are all 0 are left out. Returns 0, -EINVAL (NULL p or out, a
 * value_index beyond p's value types), or -ENOMEM. */
int flame_json__write(const struct profile *p, struct strbuf *out,
		      const struct flame_json_opts *opts);

#endif
