// SPDX-License-Identifier: MIT
/* call_tree.c - a profile's samples merged into a call tree (see call_tree.h). */
#include "formats/call_tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"

/* Hash key of a child: who the parent is and what the child stands for. */
struct child_key {
	uint32_t parent;  /* parent node index */
	uint32_t label;   /* as call_tree_node.label */
	uint32_t is_comm; /* as call_tree_node.is_comm */
};

void call_tree__release(struct call_tree *t)
{
	free(t->nodes);
	free(t->values);
	free(t->name_offsets);
	hashmap__free(t->children);
	strbuf__release(&t->names);
}

/* Appends a node; returns its index or CALL_TREE_NO_NODE when out of memory. */
static uint32_t add_node(struct call_tree *t, uint32_t parent, uint32_t label, int is_comm)
{
	if (t->nnodes == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		if (cap >= CALL_TREE_NO_NODE)
			return CALL_TREE_NO_NODE;
		struct call_tree_node *nodes = realloc(t->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return CALL_TREE_NO_NODE;
		t->nodes = nodes;
		uint64_t *values = realloc(t->values,
					   cap * (t->nvalues ? t->nvalues : 1) * sizeof(*values));
		if (!values)
			return CALL_TREE_NO_NODE;
		t->values = values;
		t->cap = cap;
	}
	uint32_t idx = (uint32_t)t->nnodes++;
	t->nodes[idx] = (struct call_tree_node){
		.parent = parent,
		.first_child = CALL_TREE_NO_NODE,
		.next_sibling = CALL_TREE_NO_NODE,
		.label = label,
		.is_comm = is_comm != 0,
	};
	memset(call_tree__values(t, idx), 0, t->nvalues * sizeof(*t->values));
	if (parent != CALL_TREE_NO_NODE) {
		t->nodes[idx].next_sibling = t->nodes[parent].first_child;
		t->nodes[parent].first_child = idx;
	}
	return idx;
}

/* Returns the child of parent standing for (label, is_comm), creating it, or
 * CALL_TREE_NO_NODE when out of memory. */
static uint32_t child(struct call_tree *t, uint32_t parent, uint32_t label, int is_comm)
{
	struct child_key key = { .parent = parent, .label = label, .is_comm = is_comm != 0 };
	void *found = hashmap__get(t->children, &key, sizeof(key));
	if (found)
		return (uint32_t)((uintptr_t)found - 1);
	uint32_t idx = add_node(t, parent, label, is_comm);
	if (idx == CALL_TREE_NO_NODE)
		return CALL_TREE_NO_NODE;
	if (hashmap__put(t->children, &key, sizeof(key), (void *)((uintptr_t)idx + 1), NULL)) {
		t->nnodes--; /* unlink the node again so the tree stays consistent */
		t->nodes[parent].first_child = t->nodes[idx].next_sibling;
		return CALL_TREE_NO_NODE;
	}
	return idx;
}

const char *call_tree__name(const struct call_tree *t, uint32_t node)
{
	const struct call_tree_node *n = &t->nodes[node];
	if (node == 0)
		return "all";
	if (n->is_comm)
		return profile__str(t->profile, n->label);
	if (n->label >= profile__frame_count(t->profile))
		return "[unknown]";
	return strbuf__str(&t->names) + t->name_offsets[n->label];
}

/* Renders every frame's display text once (frames recur in many paths). */
static int name_frames(struct call_tree *t)
{
	size_t nframes = profile__frame_count(t->profile);
	t->name_offsets = calloc(nframes ? nframes : 1, sizeof(*t->name_offsets));
	if (!t->name_offsets)
		return -ENOMEM;
	for (size_t i = 0; i < nframes; i++) {
		t->name_offsets[i] = t->names.len;
		/* The kind shows as colour, so the folded "_[k]" marker would be noise. */
		int err = frame__display_flags(t->profile, profile__frame(t->profile, (uint32_t)i),
					       FRAME_DISPLAY_NO_KERNEL_SUFFIX, &t->names);
		strbuf__putc(&t->names, '\0');
		if (err)
			return err;
	}
	return strbuf__error(&t->names);
}

/* Orders children by name (then kind and id), so output is deterministic. */
static int compare_children(const void *a, const void *b, void *ctx)
{
	const struct call_tree *t = ctx;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	int c = strcmp(call_tree__name(t, ia), call_tree__name(t, ib));
	if (c)
		return c;
	const struct call_tree_node *na = &t->nodes[ia], *nb = &t->nodes[ib];
	if (na->is_comm != nb->is_comm)
		return na->is_comm < nb->is_comm ? -1 : 1;
	return na->label < nb->label ? -1 : na->label > nb->label;
}

static int sort_children(struct call_tree *t)
{
	uint32_t *kids = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (size_t i = 0; i < t->nnodes; i++) {
		size_t n = 0;
		for (uint32_t c = t->nodes[i].first_child; c != CALL_TREE_NO_NODE;
		     c = t->nodes[c].next_sibling)
			kids[n++] = c;
		if (n < 2)
			continue;
		qsort_r(kids, n, sizeof(*kids), compare_children, t);
		t->nodes[i].first_child = kids[0];
		for (size_t k = 0; k < n; k++)
			t->nodes[kids[k]].next_sibling = k + 1 < n ? kids[k + 1] : CALL_TREE_NO_NODE;
	}
	free(kids);
	return 0;
}

/* Adds sample s's summed values to node n. */
static void add_values(struct call_tree *t, uint32_t n, const struct profile_sample *s)
{
	uint64_t *v = call_tree__values(t, n);
	for (size_t i = 0; i < t->nvalues; i++)
		v[i] += s->values[t->first_value + i];
}

int call_tree__build(struct call_tree *t, const struct profile *p, size_t first_value,
		     size_t nvalues, bool skip_unknown)
{
	t->profile = p;
	t->first_value = first_value;
	t->nvalues = nvalues;
	t->children = hashmap__new();
	if (!t->children)
		return -ENOMEM;
	int err = name_frames(t);
	if (err)
		return err;
	if (add_node(t, CALL_TREE_NO_NODE, 0, 0) == CALL_TREE_NO_NODE)
		return -ENOMEM;

	size_t nsamples = profile__sample_count(p), nframes = profile__frame_count(p);
	for (size_t i = 0; i < nsamples; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		int any = 0;
		for (size_t v = 0; v < nvalues; v++)
			any |= s->values[first_value + v] != 0;
		if (!any)
			continue;
		uint32_t cur = 0;
		add_values(t, 0, s);
		if (*profile__str(p, s->comm)) {
			cur = child(t, cur, s->comm, 1);
			if (cur == CALL_TREE_NO_NODE)
				return -ENOMEM;
			add_values(t, cur, s);
		}
		for (uint32_t f = 0; f < s->nframes; f++) {
			if (skip_unknown && s->frames[f] >= nframes)
				continue;
			cur = child(t, cur, s->frames[f], 0);
			if (cur == CALL_TREE_NO_NODE)
				return -ENOMEM;
			add_values(t, cur, s);
		}
	}
	/* The index is only needed while merging; free it before writing. */
	hashmap__free(t->children);
	t->children = NULL;
	return sort_children(t);
}
