// SPDX-License-Identifier: MIT
/* flame_json.c - a profile's call tree as JSON (see flame_json.h).
 *
 * Merges samples into a tree as svg.c does (root, comm, stack root first),
 * sorts children by display text, then walks it depth first writing each
 * listed node's frame, depth and totals; frames are written once each, in
 * the order the walk meets them.
 */
#include "formats/flame_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"

#define NO_NODE UINT32_MAX

/* One node of the merged tree. */
struct fj_node {
	uint64_t values[PROFILE_MAX_VALUES]; /* totals of the samples through it */
	uint32_t first_child;  /* first child, NO_NODE for a leaf */
	uint32_t next_sibling; /* next child of the same parent, NO_NODE at the end */
	uint32_t label;        /* frame id, or the comm's string id when is_comm */
	uint32_t is_comm;      /* nonzero: a synthetic per-comm frame */
};

/* Hash key of a child: its parent and what it stands for (no padding). */
struct fj_key {
	uint32_t parent; /* parent node index */
	uint32_t label;  /* as fj_node.label */
	uint32_t is_comm; /* as fj_node.is_comm */
};

/* The tree being built and written. */
struct fj_tree {
	const struct profile *p;  /* the profile (not owned) */
	struct fj_node *nodes;    /* root first */
	size_t nnodes, cap;       /* used, allocated */
	struct hashmap *children; /* struct fj_key -> node index + 1 (while merging) */
	struct strbuf names;      /* display text of every frame, NUL-terminated */
	size_t *name_off;         /* per frame id: offset of its text in names */
	size_t nvalues;           /* value types of p */
};

static uint32_t fj_add(struct fj_tree *t, uint32_t parent, uint32_t label, uint32_t is_comm)
{
	if (t->nnodes == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct fj_node *n;
		if (cap >= NO_NODE || !(n = realloc(t->nodes, cap * sizeof(*n))))
			return NO_NODE;
		t->nodes = n;
		t->cap = cap;
	}
	uint32_t i = (uint32_t)t->nnodes++;
	memset(&t->nodes[i], 0, sizeof(t->nodes[i]));
	t->nodes[i].first_child = NO_NODE;
	t->nodes[i].next_sibling = NO_NODE;
	t->nodes[i].label = label;
	t->nodes[i].is_comm = is_comm;
	if (parent != NO_NODE) {
		t->nodes[i].next_sibling = t->nodes[parent].first_child;
		t->nodes[parent].first_child = i;
	}
	return i;
}

static uint32_t fj_child(struct fj_tree *t, uint32_t parent, uint32_t label, uint32_t is_comm)
{
	struct fj_key k = { parent, label, is_comm };
	void *found = hashmap__get(t->children, &k, sizeof(k));
	if (found)
		return (uint32_t)((uintptr_t)found - 1);
	uint32_t i = fj_add(t, parent, label, is_comm);
	if (i == NO_NODE)
		return NO_NODE;
	if (hashmap__put(t->children, &k, sizeof(k), (void *)((uintptr_t)i + 1), NULL)) {
		t->nnodes--;
		t->nodes[parent].first_child = t->nodes[i].next_sibling;
		return NO_NODE;
	}
	return i;
}

static const char *fj_name(const struct fj_tree *t, uint32_t node)
{
	const struct fj_node *n = &t->nodes[node];
	if (node == 0)
		return "all";
	if (n->is_comm)
		return profile__str(t->p, n->label);
	return strbuf__str(&t->names) + t->name_off[n->label];
}

static int fj_compare(const void *a, const void *b, void *ctx)
{
	const struct fj_tree *t = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	int c = strcmp(fj_name(t, ia), fj_name(t, ib));
	if (c)
		return c;
	if (t->nodes[ia].is_comm != t->nodes[ib].is_comm)
		return t->nodes[ia].is_comm < t->nodes[ib].is_comm ? -1 : 1;
	return t->nodes[ia].label < t->nodes[ib].label ? -1 : t->nodes[ia].label > t->nodes[ib].label;
}

static int fj_build(struct fj_tree *t)
{
	const struct profile *p = t->p;
	size_t nframes = profile__frame_count(p);
	t->name_off = calloc(nframes ? nframes : 1, sizeof(*t->name_off));
	t->children = hashmap__new();
	if (!t->name_off || !t->children)
		return -ENOMEM;
	for (size_t i = 0; i < nframes; i++) {
		t->name_off[i] = t->names.len;
		int e = frame__display_flags(p, profile__frame(p, (uint32_t)i),
					     FRAME_DISPLAY_NO_KERNEL_SUFFIX, &t->names);
		strbuf__putc(&t->names, '\0');
		if (e)
			return e;
	}
	if (strbuf__error(&t->names) || fj_add(t, NO_NODE, 0, 0) == NO_NODE)
		return -ENOMEM;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		int any = 0;
		for (size_t v = 0; v < t->nvalues; v++)
			any |= s->values[v] != 0;
		if (!any)
			continue;
		uint32_t cur = 0;
#define FJ_ADD_VALUES(n)                                                     \
		for (size_t v = 0; v < t->nvalues; v++)                          \
			t->nodes[n].values[v] += s->values[v];
		FJ_ADD_VALUES(0)
		if (*profile__str(p, s->comm)) {
			cur = fj_child(t, cur, s->comm, 1);
			if (cur == NO_NODE)
				return -ENOMEM;
			FJ_ADD_VALUES(cur)
		}
		for (uint32_t f = 0; f < s->nframes; f++) {
			if (s->frames[f] >= nframes)
				continue;
			cur = fj_child(t, cur, s->frames[f], 0);
			if (cur == NO_NODE)
				return -ENOMEM;
			FJ_ADD_VALUES(cur)
		}
#undef FJ_ADD_VALUES
	}
	hashmap__free(t->children);
	t->children = NULL;
	/* Children by display text: the same profile always lists alike. */
	uint32_t *kids = malloc(t->nnodes * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (size_t i = 0; i < t->nnodes; i++) {
		size_t n = 0;
		for (uint32_t c = t->nodes[i].first_child; c != NO_NODE; c = t->nodes[c].next_sibling)
			kids[n++] = c;
		if (n < 2)
			continue;
		qsort_r(kids, n, sizeof(*kids), fj_compare, t);
		t->nodes[i].first_child = kids[0];
		for (size_t k = 0; k < n; k++)
			t->nodes[kids[k]].next_sibling = k + 1 < n ? kids[k + 1] : NO_NODE;
	}
	free(kids);
	return 0;
}

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
static void put_frame(const struct fj_tree *t, const struct flame_json_opts *o, uint32_t node,
		      struct strbuf *frames, size_t nframes_out)
{
	const struct fj_node *n = &t->nodes[node];
	strbuf__puts(frames, nframes_out ? ",\n  {\"n\": " : "\n  {\"n\": ");
	strbuf__json_string(frames, fj_name(t, node));
	if (node == 0 || n->is_comm) {
		strbuf__puts(frames, ", \"k\": \"special\"}");
		return;
	}
	const struct profile_frame *f = profile__frame(t->p, n->label);
	strbuf__printf(frames, ", \"k\": \"%s\", \"fn\": ", kind_name(f->kind));
	strbuf__json_string(frames, profile__str(t->p, f->name));
	if (f->file) {
		strbuf__puts(frames, ", \"f\": ");
		strbuf__json_string(frames, profile__str(t->p, f->file));
	}
	if (f->line)
		strbuf__printf(frames, ", \"l\": %" PRIu32, f->line);
	if (f->module) {
		strbuf__puts(frames, ", \"m\": ");
		strbuf__json_string(frames, profile__str(t->p, f->module));
	}
	if (o->annotate)
		o->annotate(o->annotate_ctx, t->p, f, frames);
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
	struct fj_tree t = { .p = p };
	struct strbuf frames = STRBUF_INIT, nodes = STRBUF_INIT;
	uint32_t *frame_out = NULL;      /* per frame id: index in "frames" + 1 */
	struct hashmap *comm_out = NULL; /* comm string id -> index + 1 */
	struct fj_walk *stack = NULL;
	uint64_t *totals = NULL, omitted[PROFILE_MAX_VALUES] = { 0 };
	size_t nframes_out = 0, listed = 0, omitted_nodes = 0;
	int err;

	if (!p || !out)
		return -EINVAL;
	t.nvalues = profile__value_count(p);
	if (t.nvalues && o->value_index >= t.nvalues)
		return -EINVAL;
	size_t max_nodes = o->max_nodes ? o->max_nodes : FLAME_JSON_DEFAULT_NODES;
	if (max_nodes > FLAME_JSON_MAX_NODES)
		max_nodes = FLAME_JSON_MAX_NODES;
	err = fj_build(&t);
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
			totals[i] = t.nvalues ? t.nodes[i].values[o->value_index] : 0;
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
		const struct fj_node *n = &t.nodes[w.node];
		uint64_t rank = t.nvalues ? n->values[o->value_index] : 0;
		int keep = listed < max_nodes && (rank > thr || ties == SIZE_MAX ||
						  (rank == thr && ties > 0));
		if (!keep) {
			omitted_nodes++;
			for (size_t v = 0; v < t.nvalues; v++)
				omitted[v] += n->values[v];
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
		for (size_t v = 0; v < t.nvalues; v++)
			strbuf__printf(&nodes, ",%" PRIu64, n->values[v]);
		/* Children pushed last first, so they pop in order. */
		size_t first = sp;
		for (uint32_t c = n->first_child; c != NO_NODE; c = t.nodes[c].next_sibling)
			stack[sp++] = (struct fj_walk){ c, w.depth + 1 };
		for (size_t a = first, b = sp ? sp - 1 : 0; a < b; a++, b--) {
			struct fj_walk tmp = stack[a];
			stack[a] = stack[b];
			stack[b] = tmp;
		}
	}

	strbuf__puts(out, "{\"value_types\": [");
	for (size_t v = 0; v < t.nvalues; v++) {
		strbuf__puts(out, v ? ", [" : "[");
		strbuf__json_string(out, profile__value_type(p, v));
		strbuf__puts(out, ", ");
		strbuf__json_string(out, profile__value_unit(p, v));
		strbuf__putc(out, ']');
	}
	strbuf__puts(out, "], \"totals\": [");
	for (size_t v = 0; v < t.nvalues; v++)
		strbuf__printf(out, "%s%" PRIu64, v ? ", " : "", t.nodes[0].values[v]);
	strbuf__printf(out, "], \"stride\": %zu, \"frames\": [", 2 + t.nvalues);
	strbuf__append(out, frames.data, frames.len);
	strbuf__puts(out, "],\n\"nodes\": [");
	strbuf__append(out, nodes.data, nodes.len);
	strbuf__printf(out, "],\n\"nodes_total\": %zu, \"nodes_omitted\": %zu, \"omitted\": [",
		       t.nnodes, omitted_nodes);
	for (size_t v = 0; v < t.nvalues; v++)
		strbuf__printf(out, "%s%" PRIu64, v ? ", " : "", omitted[v]);
	strbuf__puts(out, "]}");
	err = strbuf__error(&frames) ? -ENOMEM : strbuf__error(&nodes) ? -ENOMEM
		: strbuf__error(out) ? -ENOMEM : 0;
out:
	free(t.nodes);
	free(t.name_off);
	hashmap__free(t.children);
	strbuf__release(&t.names);
	strbuf__release(&frames);
	strbuf__release(&nodes);
	free(frame_out);
	hashmap__free(comm_out);
	free(stack);
	free(totals);
	return err;
}
