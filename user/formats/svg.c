// SPDX-License-Identifier: MIT
/* svg.c - interactive flame graph writer (see svg.h for what the file offers).
 *
 * Two steps: merge the samples into a call tree (one node per distinct path,
 * totals summed), then lay it out: a node's x is the sum of the values of the
 * siblings before it, its width its value scaled to the image. Every drawn
 * frame carries its position in value units (data-o offset, data-v value,
 * data-d depth), so the script can zoom exactly, without re-deriving values
 * from rounded pixel coordinates.
 */
#include "formats/svg.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

#define SVG_DEFAULT_TITLE "dynoprof"
#define SVG_DEFAULT_WIDTH 1200
#define SVG_DEFAULT_MIN_FRAME_PX 0.1
#define SVG_FONT_SIZE 12
/* Average glyph width of the 12px sans-serif font, as a fraction of its size;
 * the script uses the same figure, so labels fit alike before and after zoom. */
#define SVG_FONT_WIDTH 0.59
#define SVG_FRAME_HEIGHT 16
#define SVG_X_PAD 10
#define SVG_TOP_PAD 42          /* title line and buttons */
#define SVG_SUBTITLE_PAD 18     /* extra top room when there is a subtitle */
#define SVG_BOTTOM_PAD 34       /* details line and "Matched" */
#define SVG_MIN_LABEL_CHARS 3   /* fewer fitting characters: no label */
#define SVG_TITLE_MAX_CHARS 2000 /* longer names are cut in the tooltip too */
#define SVG_NO_NODE UINT32_MAX

/* One node of the merged call tree. */
struct tree_node {
	uint64_t total;        /* summed value of the samples passing through this node */
	uint32_t parent;       /* parent node index; SVG_NO_NODE for the root */
	uint32_t first_child;  /* first child's index, SVG_NO_NODE for a leaf */
	uint32_t next_sibling; /* next child of the same parent, SVG_NO_NODE at the end */
	uint32_t label;        /* frame id, or the comm's string id when is_comm */
	uint8_t is_comm;       /* nonzero: a synthetic per-comm frame */
};

/* Hash key of a child: who the parent is and what the child stands for. */
struct child_key {
	uint32_t parent;  /* parent node index */
	uint32_t label;   /* as tree_node.label */
	uint32_t is_comm; /* as tree_node.is_comm, widened so the key has no padding */
};

/* The merged call tree of one profile value; node 0 is the root "all". */
struct call_tree {
	const struct profile *profile; /* the profile the labels refer to (not owned) */
	struct tree_node *nodes;       /* all nodes, root first */
	size_t nnodes;                 /* nodes in use */
	size_t cap;                    /* nodes allocated */
	struct hashmap *children;      /* struct child_key -> node index + 1 */
	struct strbuf names;           /* display texts of all frames, each NUL-terminated */
	size_t *name_offsets;          /* per frame id: offset of its text in names */
};

/* Pixel geometry shared by the measuring and the drawing pass. */
struct layout {
	double scale;      /* pixels per value unit */
	double min_px;     /* frames narrower than this are not drawn */
	int width;         /* image width */
	int height;        /* image height */
	int reverse;       /* icicle: depth grows downwards */
	int frames_top;    /* y of the topmost frame row's upper edge (icicle) */
	int frames_bottom; /* y of the lowest frame row's lower edge (flame) */
	uint32_t max_depth; /* deepest drawn frame */
};

/* One entry of the depth-first walk's explicit stack (stacks can be deep). */
struct walk_item {
	uint64_t offset; /* value units before this node at its depth */
	uint32_t node;   /* node index */
	uint32_t depth;  /* 0 for the root */
};

static void call_tree__release(struct call_tree *t)
{
	free(t->nodes);
	free(t->name_offsets);
	hashmap__free(t->children);
	strbuf__release(&t->names);
}

/* Appends a node; returns its index or SVG_NO_NODE when out of memory. */
static uint32_t call_tree__add_node(struct call_tree *t, uint32_t parent, uint32_t label,
				    int is_comm)
{
	if (t->nnodes == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		if (cap >= SVG_NO_NODE)
			return SVG_NO_NODE;
		struct tree_node *nodes = realloc(t->nodes, cap * sizeof(*nodes));
		if (!nodes)
			return SVG_NO_NODE;
		t->nodes = nodes;
		t->cap = cap;
	}
	uint32_t idx = (uint32_t)t->nnodes++;
	t->nodes[idx] = (struct tree_node){
		.parent = parent,
		.first_child = SVG_NO_NODE,
		.next_sibling = SVG_NO_NODE,
		.label = label,
		.is_comm = (uint8_t)(is_comm != 0),
	};
	if (parent != SVG_NO_NODE) {
		t->nodes[idx].next_sibling = t->nodes[parent].first_child;
		t->nodes[parent].first_child = idx;
	}
	return idx;
}

/* Returns the child of parent standing for (label, is_comm), creating it, or
 * SVG_NO_NODE when out of memory. */
static uint32_t call_tree__child(struct call_tree *t, uint32_t parent, uint32_t label,
				 int is_comm)
{
	struct child_key key = { .parent = parent, .label = label, .is_comm = is_comm != 0 };
	void *found = hashmap__get(t->children, &key, sizeof(key));
	if (found)
		return (uint32_t)((uintptr_t)found - 1);
	uint32_t idx = call_tree__add_node(t, parent, label, is_comm);
	if (idx == SVG_NO_NODE)
		return SVG_NO_NODE;
	if (hashmap__put(t->children, &key, sizeof(key), (void *)((uintptr_t)idx + 1), NULL)) {
		t->nnodes--; /* unlink the node again so the tree stays consistent */
		t->nodes[parent].first_child = t->nodes[idx].next_sibling;
		return SVG_NO_NODE;
	}
	return idx;
}

/* The text a node is drawn with. Valid until the tree is released. */
static const char *call_tree__name(const struct call_tree *t, uint32_t node)
{
	const struct tree_node *n = &t->nodes[node];
	if (node == 0)
		return "all";
	if (n->is_comm)
		return profile__str(t->profile, n->label);
	if (n->label >= profile__frame_count(t->profile))
		return "[unknown]";
	return strbuf__str(&t->names) + t->name_offsets[n->label];
}

/* Renders every frame's display text once (frames recur in many paths). */
static int call_tree__name_frames(struct call_tree *t)
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
	const struct tree_node *na = &t->nodes[ia], *nb = &t->nodes[ib];
	if (na->is_comm != nb->is_comm)
		return na->is_comm < nb->is_comm ? -1 : 1;
	return na->label < nb->label ? -1 : na->label > nb->label;
}

static int call_tree__sort(struct call_tree *t)
{
	uint32_t *kids = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	for (size_t i = 0; i < t->nnodes; i++) {
		size_t n = 0;
		for (uint32_t c = t->nodes[i].first_child; c != SVG_NO_NODE; c = t->nodes[c].next_sibling)
			kids[n++] = c;
		if (n < 2)
			continue;
		qsort_r(kids, n, sizeof(*kids), compare_children, t);
		t->nodes[i].first_child = kids[0];
		for (size_t k = 0; k < n; k++)
			t->nodes[kids[k]].next_sibling = k + 1 < n ? kids[k + 1] : SVG_NO_NODE;
	}
	free(kids);
	return 0;
}

/* Merges p's samples (value v) into t; the caller zeroed t. */
static int call_tree__build(struct call_tree *t, const struct profile *p, size_t v)
{
	t->profile = p;
	t->children = hashmap__new();
	if (!t->children)
		return -ENOMEM;
	int err = call_tree__name_frames(t);
	if (err)
		return err;
	if (call_tree__add_node(t, SVG_NO_NODE, 0, 0) == SVG_NO_NODE)
		return -ENOMEM;

	size_t nsamples = profile__sample_count(p);
	for (size_t i = 0; i < nsamples; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		uint64_t value = s->values[v];
		if (!value)
			continue;
		uint32_t cur = 0;
		t->nodes[0].total += value;
		if (*profile__str(p, s->comm)) {
			cur = call_tree__child(t, cur, s->comm, 1);
			if (cur == SVG_NO_NODE)
				return -ENOMEM;
			t->nodes[cur].total += value;
		}
		for (uint32_t f = 0; f < s->nframes; f++) {
			cur = call_tree__child(t, cur, s->frames[f], 0);
			if (cur == SVG_NO_NODE)
				return -ENOMEM;
			t->nodes[cur].total += value;
		}
	}
	/* The index is only needed while merging; free it before drawing. */
	hashmap__free(t->children);
	t->children = NULL;
	return call_tree__sort(t);
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one (bad lead,
 * missing continuation, overlong form, surrogate, beyond U+10FFFF). */
static size_t utf8_sequence_len(const unsigned char *s)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

/* Number of characters of s as put_xml_text() writes them (a bad byte is one). */
static size_t text_chars(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
		size_t len = utf8_sequence_len(p);
		p += len ? len : 1;
	}
	return n;
}

/* Appends s as XML character data: markup characters escaped, bytes that are
 * not valid UTF-8 (or not allowed in XML) as '?'. When s has more than
 * max_chars characters, the first max_chars - 2 are written followed by "..". */
static void put_xml_text(struct strbuf *sb, const char *s, size_t max_chars)
{
	size_t keep = SIZE_MAX;
	if (text_chars(s) > max_chars)
		keep = max_chars >= 2 ? max_chars - 2 : 0;
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && n < keep; n++) {
		size_t len = utf8_sequence_len(p);
		if (len > 1) {
			strbuf__append(sb, p, len);
			p += len;
			continue;
		}
		unsigned char c = *p++;
		switch (c) {
		case '&': strbuf__puts(sb, "&amp;"); break;
		case '<': strbuf__puts(sb, "&lt;"); break;
		case '>': strbuf__puts(sb, "&gt;"); break;
		case '"': strbuf__puts(sb, "&quot;"); break;
		case '\'': strbuf__puts(sb, "&#39;"); break;
		default:
			strbuf__putc(sb, (len == 0 || (c < 0x20 && c != '\t')) ? '?' : (char)c);
		}
	}
	if (keep != SIZE_MAX)
		strbuf__puts(sb, "..");
}

/* Appends v with thousands separators ("1,234,567"). */
static void put_count(struct strbuf *sb, uint64_t v)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			strbuf__putc(sb, ',');
		strbuf__putc(sb, digits[i]);
	}
}

/* Maps 16 bits of h to [0, 1]. */
static double hash_share(uint64_t h, int shift)
{
	return (double)((h >> shift) & 0xffff) / 65535.0;
}

/* The CSS class and fill colour of a frame: the kind picks the palette, the
 * name's hash the shade, so a function looks the same in every graph. */
static const char *frame_colour(enum frame_kind kind, const char *name, int rgb[3])
{
	uint64_t h = hash_bytes(name, strlen(name), 0);
	double a = hash_share(h, 0), b = hash_share(h, 16), c = hash_share(h, 32);
	switch (kind) {
	case FRAME_KERNEL: /* orange: the green band native frames leave free */
		rgb[0] = 225 + (int)(30 * a);
		rgb[1] = 110 + (int)(45 * b);
		rgb[2] = (int)(35 * c);
		return "kernel";
	case FRAME_PYTHON: /* green, shading into teal */
		rgb[0] = 50 + (int)(60 * a);
		rgb[1] = 185 + (int)(70 * b);
		rgb[2] = 60 + (int)(110 * c);
		return "python";
	case FRAME_SPECIAL: /* grey */
		rgb[0] = rgb[1] = rgb[2] = 165 + (int)(50 * a);
		rgb[2] += 10;
		return "special";
	case FRAME_NATIVE:
	default: /* flamegraph.pl's "hot", less its orange middle (kernel's): red or yellow */
		rgb[0] = 205 + (int)(50 * c);
		rgb[1] = (h >> 48) & 1 ? 180 + (int)(50 * a) : (int)(90 * a);
		rgb[2] = (int)(55 * b);
		return "native";
	}
}

static enum frame_kind node_kind(const struct call_tree *t, uint32_t node)
{
	const struct tree_node *n = &t->nodes[node];
	if (node == 0 || n->is_comm)
		return FRAME_SPECIAL;
	const struct profile_frame *f = profile__frame(t->profile, n->label);
	return f ? (enum frame_kind)f->kind : FRAME_SPECIAL;
}

/* The word after a count in tooltips: "samples" for sample counts, else the
 * value's unit ("nanoseconds"). */
static const char *value_word(const struct profile *p, size_t v)
{
	const char *type = profile__value_type(p, v);
	const char *unit = profile__value_unit(p, v);
	if (!*unit || strcmp(unit, "count") == 0)
		return *type ? type : "samples";
	return unit;
}

/* Appends "COUNT WORD, PCT%" (the singular word for a count of 1). */
static void put_amount(struct strbuf *sb, uint64_t v, uint64_t total, const char *word)
{
	put_count(sb, v);
	strbuf__putc(sb, ' ');
	size_t len = strlen(word);
	if (v == 1 && len > 1 && word[len - 1] == 's')
		len--;
	strbuf__append(sb, word, len);
	strbuf__printf(sb, ", %.2f%%", total ? 100.0 * (double)v / (double)total : 0.0);
}

/* Walks the drawn nodes depth-first, children in order, calling visit for
 * each. A node narrower than the layout's minimum is skipped with its subtree
 * (descendants are never wider). */
typedef void (*visit_fn)(const struct call_tree *t, const struct layout *l,
			 const struct walk_item *item, void *ctx);

static int walk_drawn(const struct call_tree *t, const struct layout *l, visit_fn visit,
		      void *ctx)
{
	struct walk_item *stack = malloc(t->nnodes * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	size_t top = 0;
	stack[top++] = (struct walk_item){ .offset = 0, .node = 0, .depth = 0 };
	while (top) {
		struct walk_item item = stack[--top];
		visit(t, l, &item, ctx);
		/* Push in reverse so children come out in name order. */
		size_t first = top;
		uint64_t offset = item.offset;
		for (uint32_t c = t->nodes[item.node].first_child; c != SVG_NO_NODE;
		     c = t->nodes[c].next_sibling) {
			if ((double)t->nodes[c].total * l->scale >= l->min_px)
				stack[top++] = (struct walk_item){ offset, c, item.depth + 1 };
			offset += t->nodes[c].total;
		}
		for (size_t i = first, j = top; i + 1 < j; i++, j--) {
			struct walk_item tmp = stack[i];
			stack[i] = stack[j - 1];
			stack[j - 1] = tmp;
		}
	}
	free(stack);
	return 0;
}

static void measure_depth(const struct call_tree *t, const struct layout *l,
			  const struct walk_item *item, void *ctx)
{
	(void)t;
	(void)l;
	uint32_t *max_depth = ctx;
	if (item->depth > *max_depth)
		*max_depth = item->depth;
}

/* State of the drawing pass. */
struct draw_ctx {
	FILE *out;          /* destination */
	struct strbuf line; /* one frame's markup, reused */
	const char *word;   /* value_word() */
	int error;          /* first -errno met */
	const struct svg_opts *opts; /* for the fill override */
};

static void draw_frame(const struct call_tree *t, const struct layout *l,
		       const struct walk_item *item, void *ctx)
{
	struct draw_ctx *d = ctx;
	const struct tree_node *n = &t->nodes[item->node];
	const char *name = call_tree__name(t, item->node);
	int rgb[3];
	const char *cls = frame_colour(node_kind(t, item->node), name, rgb);
	if (d->opts && d->opts->fill) {
		const struct tree_node *fn = &t->nodes[item->node];
		const struct profile_frame *f = item->node == 0 || fn->is_comm ? NULL :
			profile__frame(t->profile, fn->label);
		if (d->opts->fill(d->opts->fill_ctx, t->profile, f, rgb))
			cls = "diff";
	}
	double x = SVG_X_PAD + (double)item->offset * l->scale;
	double w = (double)n->total * l->scale;
	int y = l->reverse ? l->frames_top + (int)item->depth * SVG_FRAME_HEIGHT
			   : l->frames_bottom - ((int)item->depth + 1) * SVG_FRAME_HEIGHT;

	struct strbuf *sb = &d->line;
	strbuf__reset(sb);
	strbuf__printf(sb, "<g class=\"frame %s\" data-o=\"%llu\" data-v=\"%llu\" data-d=\"%u\"><title>",
		       cls, (unsigned long long)item->offset, (unsigned long long)n->total,
		       item->depth);
	put_xml_text(sb, name, SVG_TITLE_MAX_CHARS);
	strbuf__puts(sb, " (");
	put_amount(sb, n->total, t->nodes[0].total, d->word);
	strbuf__printf(sb, ")</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
		       "fill=\"rgb(%d,%d,%d)\" rx=\"2\" ry=\"2\"/>",
		       x, y, w, SVG_FRAME_HEIGHT - 1, rgb[0], rgb[1], rgb[2]);
	double fit = floor((w - 6) / (SVG_FONT_SIZE * SVG_FONT_WIDTH));
	if (fit >= SVG_MIN_LABEL_CHARS) {
		strbuf__printf(sb, "<text x=\"%.2f\" y=\"%d\">", x + 3, y + SVG_FRAME_HEIGHT - 4);
		put_xml_text(sb, name, (size_t)fit);
		strbuf__puts(sb, "</text>");
	}
	strbuf__puts(sb, "</g>\n");
	if (strbuf__error(sb)) {
		if (!d->error)
			d->error = -ENOMEM;
		return;
	}
	if (fwrite(sb->data, 1, sb->len, d->out) != sb->len && !d->error)
		d->error = -EIO;
}

/* The script and style: user/formats/assets/flamegraph.{js,css}, built in as
 * flamegraph_js[] and flamegraph_css[] (scripts/embed.sh). The script sits in
 * a CDATA section, so it never contains "]]>". */
#include "flamegraph.js.inc"
#include "flamegraph.css.inc"

/* Writes everything before the frames. */
static void put_header(struct strbuf *sb, const struct layout *l, const char *title,
		       const char *subtitle, uint64_t total)
{
	int w = l->width, h = l->height;
	strbuf__puts(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
	strbuf__printf(sb, "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" "
		       "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", w, h, w, h);
	strbuf__puts(sb, "<!-- Flame graph written by dynoprof. Each box is a function; its width "
			 "is its share of the samples. Hover for details, click to zoom. -->\n");
	strbuf__puts(sb, "<defs><linearGradient id=\"background\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
			 "<stop stop-color=\"#eeeeee\" offset=\"5%\"/>"
			 "<stop stop-color=\"#eeeeb0\" offset=\"95%\"/></linearGradient></defs>\n");
	strbuf__printf(sb, "<style type=\"text/css\">\n%s</style>\n", flamegraph_css);
	strbuf__printf(sb, "<script type=\"text/ecmascript\"><![CDATA[\n"
		       "var fg = { xpad: %d, width: %d, total: %llu, fontw: %.4f, minchars: %d, "
		       "texty: %d };\n%s]]></script>\n",
		       SVG_X_PAD, w - 2 * SVG_X_PAD, (unsigned long long)total,
		       SVG_FONT_SIZE * SVG_FONT_WIDTH, SVG_MIN_LABEL_CHARS, SVG_FRAME_HEIGHT - 4,
		       flamegraph_js);
	strbuf__printf(sb, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
		       "fill=\"url(#background)\"/>\n", w, h);
	strbuf__printf(sb, "<text id=\"title\" x=\"%d\" y=\"24\">", w / 2);
	put_xml_text(sb, title, SIZE_MAX);
	strbuf__puts(sb, "</text>\n");
	if (*subtitle) {
		strbuf__printf(sb, "<text id=\"subtitle\" x=\"%d\" y=\"%d\">", w / 2,
			       24 + SVG_SUBTITLE_PAD);
		put_xml_text(sb, subtitle, SIZE_MAX);
		strbuf__puts(sb, "</text>\n");
	}
	strbuf__printf(sb, "<text id=\"unzoom\" class=\"hide\" x=\"%d\" y=\"24\">Reset Zoom</text>\n",
		       SVG_X_PAD);
	strbuf__printf(sb, "<text id=\"search\" x=\"%d\" y=\"24\">Search</text>\n",
		       w - SVG_X_PAD);
	strbuf__printf(sb, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", SVG_X_PAD, h - 14);
	strbuf__printf(sb, "<text id=\"matched\" x=\"%d\" y=\"%d\"> </text>\n", w - SVG_X_PAD,
		       h - 14);
	strbuf__printf(sb, "<text id=\"selftest\" x=\"%d\" y=\"%d\" class=\"hide\"></text>\n",
		       SVG_X_PAD, h - 2);
	if (!total)
		strbuf__printf(sb, "<text id=\"nosamples\" x=\"%d\" y=\"%d\">no samples</text>\n",
			       w / 2, (l->frames_top + l->frames_bottom) / 2);
}

int svg__write(const struct profile *p, FILE *out, const struct svg_opts *opts)
{
	static const struct svg_opts defaults = { 0 };
	if (!p || !out)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	size_t v = opts->value_index;
	if (v >= profile__value_count(p)) {
		/* A profile with no value types has no samples: draw it empty. */
		if (profile__value_count(p) || v)
			return -EINVAL;
	}
	const char *title = opts->title && *opts->title ? opts->title : SVG_DEFAULT_TITLE;
	const char *subtitle = opts->subtitle ? opts->subtitle : "";

	struct call_tree tree = { 0 };
	int err = call_tree__build(&tree, p, v);
	if (err)
		goto out;
	uint64_t total = tree.nodes[0].total;

	struct layout l = {
		.width = opts->width > 2 * SVG_X_PAD ? opts->width : SVG_DEFAULT_WIDTH,
		.min_px = opts->min_frame_px > 0 ? opts->min_frame_px : SVG_DEFAULT_MIN_FRAME_PX,
		.reverse = opts->reverse != 0,
	};
	l.scale = total ? (double)(l.width - 2 * SVG_X_PAD) / (double)total : 0;
	if (total) {
		err = walk_drawn(&tree, &l, measure_depth, &l.max_depth);
		if (err)
			goto out;
	}
	/* An empty graph keeps room for a few rows, where "no samples" goes. */
	int rows = total ? (int)l.max_depth + 1 : 3;
	l.frames_top = SVG_TOP_PAD + (*subtitle ? SVG_SUBTITLE_PAD : 0);
	l.frames_bottom = l.frames_top + rows * SVG_FRAME_HEIGHT;
	l.height = l.frames_bottom + SVG_BOTTOM_PAD;

	struct draw_ctx draw = { .out = out, .line = STRBUF_INIT, .word = value_word(p, v),
				 .opts = opts };
	put_header(&draw.line, &l, title, subtitle, total);
	strbuf__puts(&draw.line, "<g id=\"frames\">\n");
	err = strbuf__error(&draw.line);
	if (!err && fwrite(draw.line.data, 1, draw.line.len, out) != draw.line.len)
		err = -EIO;
	if (!err && total) {
		err = walk_drawn(&tree, &l, draw_frame, &draw);
		if (!err)
			err = draw.error;
	}
	strbuf__release(&draw.line);
	if (!err && (fputs("</g>\n</svg>\n", out) == EOF || fflush(out) == EOF || ferror(out)))
		err = -EIO;
out:
	call_tree__release(&tree);
	return err;
}
