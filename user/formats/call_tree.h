/* call_tree.h - a profile's samples merged into a call tree (root "all",
 * then the comm, then the stack root first; one node per distinct path, its
 * totals summed; children sorted by display text), the one tree builder of
 * the SVG flame graph (svg.c) and the web page's tree JSON (flame_json.c).
 * Private to user/formats/. */
#ifndef DYNOPROF_FORMATS_CALL_TREE_H
#define DYNOPROF_FORMATS_CALL_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

#define CALL_TREE_NO_NODE UINT32_MAX

/* One node of the tree. */
struct call_tree_node {
	uint32_t parent;       /* parent node index; CALL_TREE_NO_NODE for the root */
	uint32_t first_child;  /* first child's index, CALL_TREE_NO_NODE for a leaf */
	uint32_t next_sibling; /* next child of the same parent, CALL_TREE_NO_NODE at the end */
	uint32_t label;        /* frame id, or the comm's string id when is_comm */
	uint32_t is_comm;      /* nonzero: a synthetic per-comm frame */
};

/* The merged tree; node 0 is the root "all". Zero it before building. */
struct call_tree {
	const struct profile *profile; /* the profile the labels refer to (not owned) */
	struct call_tree_node *nodes;  /* all nodes, root first */
	uint64_t *values;              /* per node nvalues totals (see call_tree__values) */
	size_t nnodes;                 /* nodes in use */
	size_t cap;                    /* nodes allocated */
	size_t first_value, nvalues;   /* the profile values summed: first_value.. */
	struct hashmap *children;      /* while merging: child key -> node index + 1 */
	struct strbuf names;           /* display texts of all frames, each NUL-terminated */
	size_t *name_offsets;          /* per frame id: offset of its text in names */
};

/* Merges p's samples into t (zeroed by the caller), summing the nvalues
 * values from first_value (in range: the caller checks); a sample whose
 * summed values are all zero is left out. Frame ids past the profile's
 * frames become "[unknown]" nodes, or are passed over with skip_unknown.
 * 0, -ENOMEM, or a frame's display error; call_tree__release either way. */
int call_tree__build(struct call_tree *t, const struct profile *p, size_t first_value,
		     size_t nvalues, bool skip_unknown);
void call_tree__release(struct call_tree *t);

/* The text a node is drawn with ("all" for the root). Valid until release. */
const char *call_tree__name(const struct call_tree *t, uint32_t node);

/* A node's nvalues totals. */
static inline uint64_t *call_tree__values(const struct call_tree *t, uint32_t node)
{
	return &t->values[(size_t)node * t->nvalues];
}

#endif
