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

#include "formats/call_tree.h"
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
	const struct call_tree_node *n = &t->nodes[node];
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
		for (uint32_t c = t->nodes[item.node].first_child; c != CALL_TREE_NO_NODE;
		     c = t->nodes[c].next_sibling) {
			if ((double)call_tree__values(t, c)[0] * l->scale >= l->min_px)
				stack[top++] = (struct walk_item){ offset, c, item.depth + 1 };
			offset += call_tree__values(t, c)[0];
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
	const char *name = call_tree__name(t, item->node);
	int rgb[3];
	const char *cls = frame_colour(node_kind(t, item->node), name, rgb);
	if (d->opts && d->opts->fill) {
		const struct call_tree_node *fn = &t->nodes[item->node];
		const struct profile_frame *f = item->node == 0 || fn->is_comm ? NULL :
			profile__frame(t->profile, fn->label);
		if (d->opts->fill(d->opts->fill_ctx, t->profile, f, rgb))
			cls = "diff";
	}
	double x = SVG_X_PAD + (double)item->offset * l->scale;
	uint64_t value = call_tree__values(t, item->node)[0];
	double w = (double)value * l->scale;
	int y = l->reverse ? l->frames_top + (int)item->depth * SVG_FRAME_HEIGHT
			   : l->frames_bottom - ((int)item->depth + 1) * SVG_FRAME_HEIGHT;

	struct strbuf *sb = &d->line;
	strbuf__reset(sb);
	strbuf__printf(sb, "<g class=\"frame %s\" data-o=\"%llu\" data-v=\"%llu\" data-d=\"%u\"><title>",
		       cls, (unsigned long long)item->offset, (unsigned long long)value,
		       item->depth);
	put_xml_text(sb, name, SVG_TITLE_MAX_CHARS);
	strbuf__puts(sb, " (");
	put_amount(sb, value, call_tree__values(t, 0)[0], d->word);
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
	int err = call_tree__build(&tree, p, v, 1, false);
	if (err)
		goto out;
	uint64_t total = call_tree__values(&tree, 0)[0];

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
