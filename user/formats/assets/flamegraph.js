/* flamegraph.js - the script of the SVG flame graph (user/formats/svg.c embeds it
 * in a CDATA section at build time: it must never hold the CDATA end marker,
 * two closing brackets and a greater-than sign). Reads the
 * globals svg.c writes before it: fg = { xpad, width, total, fontw, minchars,
 * texty }. */
"use strict";
var svgns = "http://www.w3.org/2000/svg";
var details, matchedtxt, unzoombtn, searchbtn, frames = [], searching = false;
function set_text(el, s) { el.textContent = s; }
function num(g, a) { return Number(g.getAttribute(a)); }
function info(g) { return g.querySelector("title").textContent; }
/* The tooltip reads "NAME (COUNT WORD, PCT%)"; the name is all before the last group. */
function frame_name(g) {
	if (g._name === undefined) {
		var t = info(g), m = /^([\s\S]*) \([^()]*\)$/.exec(t);
		g._name = m ? m[1] : t;
	}
	return g._name;
}
function label(g, x, w) {
	var t = g.querySelector("text"), r = g.querySelector("rect");
	var fit = Math.floor((w - 6) / fg.fontw), s = "";
	if (fit >= fg.minchars) {
		s = frame_name(g);
		if (s.length > fit) s = s.slice(0, fit - 2) + "..";
	}
	if (!t) {
		if (!s) return;
		t = document.createElementNS(svgns, "text");
		t.setAttribute("y", num(r, "y") + fg.texty);
		g.appendChild(t);
	}
	t.setAttribute("x", (x + 3).toFixed(2));
	set_text(t, s);
}
function place(g, x, w) {
	var r = g.querySelector("rect");
	r.setAttribute("x", x.toFixed(2));
	r.setAttribute("width", w.toFixed(2));
	label(g, x, w);
}
function zoom(g) {
	var o0 = num(g, "data-o"), v0 = num(g, "data-v"), d0 = num(g, "data-d");
	frames.forEach(function (f) {
		var o = num(f, "data-o"), v = num(f, "data-v"), d = num(f, "data-d");
		if (d < d0 && o <= o0 && o0 + v0 <= o + v) {
			f.classList.remove("hide");
			f.classList.add("parent");
			place(f, fg.xpad, fg.width);
		} else if (d >= d0 && o0 <= o && o + v <= o0 + v0) {
			f.classList.remove("hide", "parent");
			place(f, fg.xpad + (o - o0) / v0 * fg.width, v / v0 * fg.width);
		} else {
			f.classList.add("hide");
		}
	});
	unzoombtn.classList.remove("hide");
}
function unzoom() {
	frames.forEach(function (f) {
		f.classList.remove("hide", "parent");
		place(f, fg.xpad + num(f, "data-o") / fg.total * fg.width,
		      num(f, "data-v") / fg.total * fg.width);
	});
	unzoombtn.classList.add("hide");
}
function reset_search() {
	frames.forEach(function (f) {
		if (!f.classList.contains("match")) return;
		f.classList.remove("match");
		f.querySelector("rect").setAttribute("fill", f._fill);
	});
	searching = false;
	set_text(matchedtxt, " ");
	set_text(searchbtn, "Search");
}
/* Highlights frames whose name matches the regular expression term and shows
 * the share of all samples under them (nested matches counted once).
 * Returns that share in percent, or -1 for an invalid expression. */
function search(term) {
	var re;
	try { re = new RegExp(term); } catch (e) {
		set_text(matchedtxt, "Invalid regex: " + e.message);
		return -1;
	}
	reset_search();
	var spans = [];
	frames.forEach(function (f) {
		if (!re.test(frame_name(f))) return;
		var r = f.querySelector("rect");
		f._fill = r.getAttribute("fill");
		r.setAttribute("fill", "rgb(230,0,230)");
		f.classList.add("match");
		spans.push([num(f, "data-o"), num(f, "data-v")]);
	});
	spans.sort(function (a, b) { return a[0] - b[0]; });
	var covered = 0, end = -Infinity;
	spans.forEach(function (s) {
		var e = s[0] + s[1];
		if (e <= end) return;
		covered += e - Math.max(s[0], end);
		end = e;
	});
	var pct = fg.total ? 100 * covered / fg.total : 0;
	searching = true;
	set_text(searchbtn, "Reset Search");
	set_text(matchedtxt, "Matched: " + pct.toFixed(2) + "%");
	return pct;
}
function search_prompt() {
	if (searching) { reset_search(); return; }
	var term = window.prompt("Search for (regular expression):", "");
	if (term) search(term);
}
function count(cls) {
	return frames.filter(function (f) { return f.classList.contains(cls); }).length;
}
/* Drives the real handlers on the widest frame called name and reports what
 * a user would see, as JSON in <text id="selftest">. */
function widest(name) {
	var target = null;
	frames.forEach(function (f) {
		if (frame_name(f) === name && (!target || num(f, "data-v") > num(target, "data-v")))
			target = f;
	});
	return target;
}
function selftest(name) {
	var res = { frames: frames.length }, target = widest(name);
	if (!target) {
		res.error = "no frame named " + name;
	} else {
		target.dispatchEvent(new MouseEvent("mouseover"));
		res.details = details.textContent;
		target.dispatchEvent(new MouseEvent("mouseout"));
		res.details_after_out = details.textContent;
		target.dispatchEvent(new MouseEvent("click"));
		var r = target.querySelector("rect"), t = target.querySelector("text");
		res.zoom_x = Number(r.getAttribute("x"));
		res.zoom_width = Number(r.getAttribute("width"));
		res.zoom_label = t ? t.textContent : "";
		res.zoom_hidden = count("hide");
		res.zoom_parents = count("parent");
		res.zoom_depth = num(target, "data-d");
		res.unzoom_shown = !unzoombtn.classList.contains("hide");
		var exact = "^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$";
		res.search_pct = search(exact);
		res.matched = matchedtxt.textContent;
		res.highlighted = count("match");
		res.search_button = searchbtn.textContent;
		reset_search();
		unzoombtn.dispatchEvent(new MouseEvent("click"));
		res.reset_hidden = count("hide");
		res.reset_width = Number(r.getAttribute("width"));
		res.unzoom_shown_after_reset = !unzoombtn.classList.contains("hide");
	}
	set_text(document.getElementById("selftest"), JSON.stringify(res));
}
function init() {
	details = document.getElementById("details");
	matchedtxt = document.getElementById("matched");
	unzoombtn = document.getElementById("unzoom");
	searchbtn = document.getElementById("search");
	frames = Array.prototype.slice.call(document.querySelectorAll("g.frame"));
	frames.forEach(function (g) {
		g.addEventListener("mouseover", function () { set_text(details, info(g)); });
		g.addEventListener("mouseout", function () { set_text(details, " "); });
		g.addEventListener("click", function () { zoom(g); });
	});
	unzoombtn.addEventListener("click", unzoom);
	searchbtn.addEventListener("click", search_prompt);
	window.addEventListener("keydown", function (e) {
		if ((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F")) {
			e.preventDefault();
			search_prompt();
		} else if (e.key === "Escape") {
			reset_search();
			unzoom();
		}
	});
	/* "#zoom=NAME&search=REGEX" opens a view a link can share. */
	var params = {};
	window.location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
		var i = kv.indexOf("=");
		if (i <= 0) return;
		try { params[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { }
	});
	if (params.selftest !== undefined) {
		selftest(params.selftest);
		return;
	}
	var z = params.zoom !== undefined ? widest(params.zoom) : null;
	if (z) zoom(z);
	if (params.search) search(params.search);
}
window.addEventListener("load", init);
