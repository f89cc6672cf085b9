/* svg.h - interactive flame graph as one self-contained SVG file.
 *
 * The profile's samples are merged into a call tree under a synthetic root
 * "all"; the first level below it is each sample's comm (a grey special frame,
 * so processes stay apart), then the stack root first. Children are ordered by
 * name, so the same profile always draws the same picture.
 *
 * The file embeds its own CSS and JavaScript and loads nothing: hovering a frame
 * shows "name (N samples, X%)" in the details line (and a <title> tooltip),
 * clicking zooms into it (ancestors stay, drawn full width), "Reset Zoom" and
 * Escape undo that, "Search" (or Ctrl-F) highlights frames whose name matches a
 * regular expression and shows the share they cover. The URL fragment
 * "#zoom=NAME&search=REGEX" (URI-encoded values, either optional) opens the file
 * zoomed into the widest frame named NAME and/or searched, so a view can be
 * shared as a link. "#selftest=NAME" instead runs a scripted hover/zoom/search on
 * the widest frame named NAME and writes the outcome as JSON into
 * <text id="selftest">, so a headless browser can check the interactivity (see
 * tests/integration/test_svg_browser.py).
 *
 * Colours follow the frame kind (kernel orange, native warm red/yellow, Python
 * green, special grey; each <g> frame has the class "frame kernel", "frame
 * native", "frame python" or "frame special") with a shade chosen from a hash of
 * the name, so a function keeps its colour across graphs.
 *
 * Output size is bounded: frames narrower than min_frame_px are not drawn (their
 * samples still count in every ancestor's total and percentage).
 */
#ifndef DYNOPROF_SVG_H
#define DYNOPROF_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "profile/profile.h"

/* Writer options. A zeroed struct (or a NULL pointer) means all defaults. */
struct svg_opts {
	const char *title;    /* heading; NULL or "": "dynoprof" */
	const char *subtitle; /* second heading line, e.g. a capture summary; NULL or "": none */
	size_t value_index;   /* profile value that sizes frames (0: the first, samples) */
	int width;            /* image width in px; <= 0: 1200 */
	double min_frame_px;  /* frames narrower than this are not drawn; <= 0: 0.1
				 (pass a tiny positive value such as 1e-9 to draw all) */
	int reverse;          /* nonzero: icicle graph, root on top, stacks grow down */
	/* Overrides a frame's colour (differential flame graphs): returns nonzero
	 * and sets rgb to use it, 0 for the default palette. NULL: none. f is NULL
	 * for synthetic frames ("all", comms). */
	int (*fill)(void *ctx, const struct profile *p, const struct profile_frame *f, int rgb[3]);
	void *fill_ctx;
};

/* Writes profile p as an SVG flame graph to out. opts may be NULL.
 * Samples whose chosen value is 0 are left out; a profile with no such samples
 * still yields a valid SVG that says "no samples". Names are XML-escaped and
 * cut with ".." to fit their frame. p and out stay the caller's.
 * Returns 0, -EINVAL (NULL p or out, value_index beyond p's value types),
 * -ENOMEM, or -EIO when writing to out failed. */
int svg__write(const struct profile *p, FILE *out, const struct svg_opts *opts);

#endif
