// SPDX-License-Identifier: MIT
/* flame_json.c - a profile's call tree as JSON (see flame_json.h).
 *
 * Merges samples into a tree with svg.c's builder (call_tree.h: root, comm,
 * stack root first, children by display text), then walks it depth first writing each
 * listed node's frame, depth and totals; frames are written once each, in
 * the order the walk meets them.
 */
#include "formats/flame_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/call_tree.h"
#include "formats/format.h"
#include "util/hashmap.h"

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static const char *kind_name(unsigned kind)
{
	switch (kind) {
	case FRAME_KERNEL: return "kernel";
	case FRAME_PYTHON: return "python";
	case FRAME_NATIVE: return "native";
	default: return "special";
	}
}

/* Writes the frame object of node n to frames (once per frame or comm). */
static void put_frame(const struct call_tree *t, const struct flame_json_opts *o, uint32_t node,
		      struct strbuf *frames, size_t nframes_out)
{
	const struct call_tree_node *n = &t->nodes[node];
	strbuf__puts(frames, nframes_out ? ",\n  {\"n\": " : "\n  {\"n\": ");
	strbuf__json_string(frames, call_tree__name(t, node));
	if (node == 0 || n->is_comm) {
		strbuf__puts(frames, ", \"k\": \"special\"}");
		return;
	}
	const struct profile_frame *f = profile__frame(t->profile, n->label);
	strbuf__printf(frames, ", \"k\": \"%s\", \"fn\": ", kind_name(f->kind));
	strbuf__json_string(frames, profile__str(t->profile, f->name));
	if (f->file) {
		strbuf__puts(frames, ", \"f\": ");
		strbuf__json_string(frames, profile__str(t->profile, f->file));
	}
	if (f->line)
		strbuf__printf(frames, ", \"l\": %" PRIu32, f->line);
	if (f->module) {
		strbuf__puts(frames, ", \"m\": ");
		strbuf__json_string(frames, profile__str(t->profile, f->module));
	}
	if (o->annotate)
		o->annotate(o->annotate_ctx, t->profile, f, frames);
	strbuf__putc(frames, '}');
}

/* One entry of the walk's explicit stack. */
struct fj_walk {
	uint32_t node;  /* node index */
	uint32_t depth; /* root 0 */
};

int flame_json__write(const struct profile *p, struct strbuf *out,
		      const struct flame_json_opts *opts)
{
	static const struct flame_json_opts defaults;
	const struct flame_json_opts *o = opts ? opts : &defaults;
	struct call_tree t = { 0 };
	struct strbuf frames = STRBUF_INIT, nodes = STRBUF_INIT;
	uint32_t *frame_out = NULL;      /* per frame id: index in "frames" + 1 */
	struct hashmap *comm_out = NULL; /* comm string id -> index + 1 */
	struct fj_walk *stack = NULL;
	uint64_t *totals = NULL, omitted[PROFILE_MAX_VALUES] = { 0 };
	size_t nframes_out = 0, listed = 0, omitted_nodes = 0;
	int err;

	if (!p || !out)
		return -EINVAL;
	size_t nvalues = profile__value_count(p);
	if (nvalues && o->value_index >= nvalues)
		return -EINVAL;
	size_t max_nodes = o->max_nodes ? o->max_nodes : FLAME_JSON_DEFAULT_NODES;
	if (max_nodes > FLAME_JSON_MAX_NODES)
		max_nodes = FLAME_JSON_MAX_NODES;
	err = call_tree__build(&t, p, 0, nvalues, true);
	if (err)
		goto out;

	/* Past max_nodes: list the heaviest (a parent weighs at least its
	 * child, so they form a tree from the root; ties are taken in walk
	 * order while the budget lasts). */
	uint64_t thr = 0;
	size_t ties = SIZE_MAX;
	if (t.nnodes > max_nodes) {
		totals = malloc(t.nnodes * sizeof(*totals));
		if (!totals) {
			err = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < t.nnodes; i++)
			totals[i] = nvalues ? call_tree__values(&t, (uint32_t)i)[o->value_index] : 0;
		qsort(totals, t.nnodes, sizeof(*totals), cmp_desc);
		thr = totals[max_nodes - 1];
		ties = 0;
		for (size_t i = 0; i < max_nodes; i++)
			ties += totals[i] == thr;
	}
	frame_out = calloc(profile__frame_count(p) + 1, sizeof(*frame_out));
	comm_out = hashmap__new();
	stack = malloc(t.nnodes * sizeof(*stack));
	if (!frame_out || !comm_out || !stack) {
		err = -ENOMEM;
		goto out;
	}
	size_t sp = 0;
	stack[sp++] = (struct fj_walk){ 0, 0 };
	while (sp) {
		struct fj_walk w = stack[--sp];
		const struct call_tree_node *n = &t.nodes[w.node];
		const uint64_t *values = call_tree__values(&t, w.node);
		uint64_t rank = nvalues ? values[o->value_index] : 0;
		int keep = listed < max_nodes && (rank > thr || ties == SIZE_MAX ||
						  (rank == thr && ties > 0));
		if (!keep) {
			omitted_nodes++;
			for (size_t v = 0; v < nvalues; v++)
				omitted[v] += values[v];
			continue; /* its subtree is left out with it */
		}
		if (rank == thr && ties != SIZE_MAX)
			ties--;
		listed++;
		/* The frame's index in "frames", written when first met. */
		uint32_t idx;
		if (w.node != 0 && !n->is_comm) {
			if (!frame_out[n->label]) {
				put_frame(&t, o, w.node, &frames, nframes_out);
				frame_out[n->label] = (uint32_t)++nframes_out;
			}
			idx = frame_out[n->label] - 1;
		} else {
			uint32_t key = w.node == 0 ? UINT32_MAX : n->label;
			void *found = hashmap__get(comm_out, &key, sizeof(key));
			if (!found) {
				put_frame(&t, o, w.node, &frames, nframes_out);
				found = (void *)(uintptr_t)++nframes_out;
				if (hashmap__put(comm_out, &key, sizeof(key), found, NULL)) {
					err = -ENOMEM;
					goto out;
				}
			}
			idx = (uint32_t)((uintptr_t)found - 1);
		}
		strbuf__printf(&nodes, "%s%" PRIu32 ",%" PRIu32, listed > 1 ? ",\n" : "", idx,
			       w.depth);
		for (size_t v = 0; v < nvalues; v++)
			strbuf__printf(&nodes, ",%" PRIu64, values[v]);
		/* Children pushed last first, so they pop in order. */
		size_t first = sp;
		for (uint32_t c = n->first_child; c != CALL_TREE_NO_NODE; c = t.nodes[c].next_sibling)
			stack[sp++] = (struct fj_walk){ c, w.depth + 1 };
		for (size_t a = first, b = sp ? sp - 1 : 0; a < b; a++, b--) {
			struct fj_walk tmp = stack[a];
			stack[a] = stack[b];
			stack[b] = tmp;
		}
	}

	strbuf__puts(out, "{\"value_types\": [");
	for (size_t v = 0; v < nvalues; v++) {
		strbuf__puts(out, v ? ", [" : "[");
		strbuf__json_string(out, profile__value_type(p, v));
		strbuf__puts(out, ", ");
		strbuf__json_string(out, profile__value_unit(p, v));
		strbuf__putc(out, ']');
	}
	strbuf__puts(out, "], \"totals\": [");
	for (size_t v = 0; v < nvalues; v++)
		strbuf__printf(out, "%s%" PRIu64, v ? ", " : "", call_tree__values(&t, 0)[v]);
	strbuf__printf(out, "], \"stride\": %zu, \"frames\": [", 2 + nvalues);
	strbuf__append(out, frames.data, frames.len);
	strbuf__puts(out, "],\n\"nodes\": [");
	strbuf__append(out, nodes.data, nodes.len);
	strbuf__printf(out, "],\n\"nodes_total\": %zu, \"nodes_omitted\": %zu, \"omitted\": [",
		       t.nnodes, omitted_nodes);
	for (size_t v = 0; v < nvalues; v++)
		strbuf__printf(out, "%s%" PRIu64, v ? ", " : "", omitted[v]);
	strbuf__puts(out, "]}");
	err = strbuf__error(&frames) ? -ENOMEM : strbuf__error(&nodes) ? -ENOMEM
		: strbuf__error(out) ? -ENOMEM : 0;
out:
	call_tree__release(&t);
	strbuf__release(&frames);
	strbuf__release(&nodes);
	free(frame_out);
	hashmap__free(comm_out);
	free(stack);
	free(totals);
	return err;
}
