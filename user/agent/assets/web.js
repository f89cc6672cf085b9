// dynoprof agent web page: overview, flame graph, compare, regressions.
// Built into the agent (user/agent/assets/web.js); loads nothing but the
// agent's own JSON APIs (README: "The web page"). Every view's state lives in
// the URL fragment, so a copied link opens the same view.
"use strict";

(function () {
  const TOKEN_KEY = "dynoprof.token";
  const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800 };
  const ROW_H = 16;
  const $ = (id) => document.getElementById(id);

  // ---- state in the URL fragment ----

  function readState() {
    const s = {};
    const h = location.hash.replace(/^#/, "");
    for (const part of h.split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      const k = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
      s[k] = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, " "));
    }
    if (!s.view) s.view = "overview";
    if (!s.range) s.range = "1h";
    return s;
  }

  function writeHash(s) {
    return "#" + Object.keys(s).filter((k) => s[k] !== undefined && s[k] !== null && s[k] !== "")
      .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(s[k])).join("&");
  }

  let state = readState();

  // Changes the state; push: a new history entry (navigation), else replace.
  function setState(changes, push) {
    const next = Object.assign({}, state, changes);
    for (const k of Object.keys(next)) if (next[k] === undefined || next[k] === "") delete next[k];
    const h = writeHash(next);
    if (h === location.hash) return;
    if (push) history.pushState(null, "", h); else history.replaceState(null, "", h);
    state = readState();
    render();
  }

  // ---- time range ----

  function rangeSeconds(s) {
    if (s.range === "custom" && s.from && s.to) return [Number(s.from), Number(s.to)];
    const now = Math.floor(Date.now() / 1000);
    return [now - (RANGES[s.range] || 3600), now];
  }

  function rangeParams(s) {
    const [from, to] = rangeSeconds(s);
    return { from: String(from), to: String(to) };
  }

  // ---- talking to the agent ----

  class ApiError extends Error {
    constructor(status, text) { super(text); this.status = status; }
  }

  function token() { try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }

  function query(params) {
    return Object.keys(params).filter((k) => params[k] !== undefined && params[k] !== "")
      .map((k) => encodeURIComponent(k) + "=" + encodeURIComponent(params[k])).join("&");
  }

  async function apiFetch(path, params) {
    const url = path + (params && query(params) ? "?" + query(params) : "");
    const headers = {};
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    let resp;
    try {
      resp = await fetch(url, { headers, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "The agent at " + location.host + " cannot be reached (" + e.message +
        "): is it running?");
    }
    if (!resp.ok) {
      const text = (await resp.text()).trim();
      throw new ApiError(resp.status, text || resp.statusText);
    }
    return resp;
  }

  async function apiJson(path, params) {
    const resp = await apiFetch(path, params);
    return resp.json();
  }

  // Shows an error in words; 401 asks for the token.
  function showError(err) {
    const box = $("message");
    box.hidden = false;
    box.className = "error";
    if (err instanceof ApiError && err.status === 401) {
      const had = token() !== "";
      box.textContent = had ? "The agent refused the token (401 unauthorized): enter the right one."
        : "This agent needs a bearer token (401 unauthorized): enter it below.";
      $("token-reason").textContent = "The agent's bearer token (kept in this browser's local storage for this agent):";
      $("token-form").hidden = false;
      $("token").focus();
    } else if (err instanceof ApiError && err.status) {
      box.textContent = "The agent answered " + err.status + ": " + err.message;
    } else {
      box.textContent = err.message || String(err);
    }
  }

  function clearMessage() {
    $("message").hidden = true;
    $("message").textContent = "";
  }

  function note(text) {
    const box = $("message");
    box.hidden = false;
    box.className = "note";
    box.textContent = text;
  }

  // ---- formatting ----

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));

  // One formatter per precision: toLocaleString() builds one per call, which
  // costs seconds over a thousand-row table.
  const numberFormats = [];
  function fmtNum(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    const f = numberFormats[digits] || (numberFormats[digits] = new Intl.NumberFormat("en-US",
      { maximumFractionDigits: digits, minimumFractionDigits: digits }));
    return f.format(v);
  }

  function fmtCpu(ns) {
    if (!isFinite(ns)) return "–";
    if (ns >= 1e9) return fmtNum(ns / 1e9, 2) + " s";
    if (ns >= 1e6) return fmtNum(ns / 1e6, 2) + " ms";
    return fmtNum(ns / 1e3, 1) + " µs";
  }

  function fmtPct(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    return (x * 100).toFixed(digits === undefined ? 1 : digits) + "%";
  }

  function fmtChange(x) {
    if (x === null || x === undefined || !isFinite(x)) return "n/a";
    return (x >= 0 ? "+" : "") + (x * 100).toFixed(1) + "%";
  }

  function fmtTime(unix) {
    const d = new Date(unix * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) +
      ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    for (const k of Object.keys(attrs || {})) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  // ---- colours: as the SVG flame graph (svg.c frame_colour) ----

  function hash32(s) {
    let h = 2166136261;
    for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619) >>> 0; }
    return h >>> 0;
  }

  function frameColour(kind, name) {
    const h = hash32(name);
    const a = (h & 0xff) / 255, b = ((h >>> 8) & 0xff) / 255, c = ((h >>> 16) & 0xff) / 255;
    switch (kind) {
      case "kernel": return "rgb(" + (225 + (30 * a | 0)) + "," + (110 + (45 * b | 0)) + "," + (35 * c | 0) + ")";
      case "python": return "rgb(" + (50 + (60 * a | 0)) + "," + (185 + (70 * b | 0)) + "," + (60 + (110 * c | 0)) + ")";
      case "special": { const g = 165 + (50 * a | 0); return "rgb(" + g + "," + g + "," + (g + 10) + ")"; }
      default: return "rgb(" + (205 + (50 * c | 0)) + "," + ((h >>> 24) & 1 ? 180 + (50 * a | 0) : (90 * a | 0)) + "," + (55 * b | 0) + ")";
    }
  }

  function diffColour(frame) {
    if (frame.k === "special" || !frame.dv) return "rgb(215,215,215)";
    const mag = Math.min(1, Math.abs(frame.dc || 0));
    const shade = Math.round(200 - 160 * mag);
    return frame.dv === "regression" ? "rgb(250," + shade + "," + shade + ")" : "rgb(" + shade + "," + shade + ",250)";
  }

  // ---- the flame graph model: the /api/v1/flamegraph tree ----

  // Turns the JSON tree into typed arrays: frame, depth, start (value units),
  // value (sizing), samples, cpu, parent, end (index after the subtree).
  function buildTree(data) {
    const stride = data.stride, nodes = data.nodes, n = nodes.length / stride | 0;
    const types = data.value_types.map((t) => t[0]);
    let vi = types.indexOf("cpu");
    if (vi < 0) vi = types.indexOf("instructions");
    const unit = vi >= 0 ? types[vi] : "samples";
    if (vi < 0) vi = 0;
    const si = Math.max(0, types.indexOf("samples")), ci = types.indexOf("cpu");
    const t = {
      n, frames: data.frames, unit, totals: data.totals, omitted: data.nodes_omitted || 0,
      frame: new Uint32Array(n), depth: new Uint16Array(n), start: new Float64Array(n),
      value: new Float64Array(n), samples: new Float64Array(n), cpu: new Float64Array(n),
      parent: new Int32Array(n), end: new Uint32Array(n), self: new Float64Array(n), maxDepth: 0,
    };
    const stack = [], next = [];
    for (let i = 0; i < n; i++) {
      const o = i * stride, d = nodes[o + 1];
      t.frame[i] = nodes[o];
      t.depth[i] = d;
      t.value[i] = nodes[o + 2 + vi];
      t.samples[i] = nodes[o + 2 + si];
      t.cpu[i] = ci >= 0 ? nodes[o + 2 + ci] : 0;
      while (stack.length > d) t.end[stack.pop()] = i;
      const p = d > 0 ? stack[d - 1] : -1;
      t.parent[i] = p;
      t.start[i] = d > 0 ? next[d - 1] : 0;
      if (d > 0) next[d - 1] += t.value[i];
      next[d] = t.start[i];
      stack.push(i);
      t.self[i] = t.value[i];
      if (p >= 0) t.self[p] -= t.value[i];
      if (d > t.maxDepth) t.maxDepth = d;
    }
    while (stack.length) t.end[stack.pop()] = n;
    return t;
  }

  // Self and total per function (display text); total once per stack, so
  // recursion does not count twice. Typed arrays per frame: 200,000 nodes in
  // a few milliseconds.
  function topFunctions(t) {
    const nf = t.frames.length;
    const self = new Float64Array(nf), total = new Float64Array(nf), onPath = new Int32Array(nf);
    const path = new Int32Array(t.maxDepth + 2);
    let depth = 0;
    for (let i = 0; i < t.n; i++) {
      const d = t.depth[i];
      while (depth > d) onPath[path[--depth]]--;
      const f = t.frame[i];
      path[depth++] = f;
      if (i > 0 && !(d === 1 && t.frames[f].k === "special")) {
        self[f] += t.self[i];
        if (onPath[f] === 0) total[f] += t.value[i];
      }
      onPath[f]++;
    }
    const byName = new Map();
    for (let f = 0; f < nf; f++) {
      if (!self[f] && !total[f]) continue;
      const name = t.frames[f].n;
      const r = byName.get(name);
      if (r) { r.self += self[f]; r.total += total[f]; } else byName.set(name, { name, frame: t.frames[f], self: self[f], total: total[f] });
    }
    return Array.from(byName.values());
  }

  // ---- the canvas flame graph ----

  class FlameGraph {
    constructor(container, tree, opts) {
      this.t = tree;
      this.opts = opts;
      this.zoom = 0;
      this.search = null;
      this.icicle = !!opts.icicle;
      this.wrap = el("div", { class: "flame-wrap" });
      this.canvas = el("canvas", { class: "flame", "data-nodes": String(tree.n) });
      this.tip = el("div", { class: "tooltip", hidden: "" });
      this.details = el("div", { class: "details", text: "Hover a frame for details; click to zoom." });
      this.wrap.append(this.canvas, this.tip);
      container.append(this.details, this.wrap);
      this.canvas.addEventListener("mousemove", (e) => this.hover(e));
      this.canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
      this.canvas.addEventListener("click", (e) => {
        const i = this.nodeAt(e);
        if (i >= 0 && this.opts.onZoom) this.opts.onZoom(i);
      });
      this.byDepth = [];
      for (let i = 0; i < tree.n; i++) (this.byDepth[tree.depth[i]] = this.byDepth[tree.depth[i]] || []).push(i);
      this.colours = tree.frames.map((f) => (opts.diff ? diffColour(f) : frameColour(f.k, f.n)));
      window.addEventListener("resize", this.onResize = () => this.draw());
    }

    destroy() {
      window.removeEventListener("resize", this.onResize);
      if (this.onKey) document.removeEventListener("keydown", this.onKey);
    }

    setZoom(i) { this.zoom = i >= 0 && i < this.t.n ? i : 0; this.draw(); }

    setSearch(re) {
      this.search = re;
      this.matched = null;
      if (re) {
        this.matched = new Uint8Array(this.t.frames.length);
        this.t.frames.forEach((f, k) => { if (re.test(f.n)) this.matched[k] = 1; });
      }
      this.draw();
      return this.matchSum();
    }

    // The value of matched frames, not counting a match inside another.
    matchSum() {
      if (!this.matched) return null;
      const t = this.t;
      let sum = 0, count = 0;
      for (let i = 0; i < t.n;) {
        if (this.matched[t.frame[i]] && i !== 0) { sum += t.value[i]; count++; i = t.end[i]; } else i++;
      }
      return { sum, count, share: t.value[0] ? sum / t.value[0] : 0 };
    }

    draw() {
      const t = this.t, c = this.canvas, ratio = window.devicePixelRatio || 1;
      const width = Math.max(300, this.wrap.clientWidth || 1000);
      const rows = t.maxDepth + 1, height = rows * ROW_H;
      c.width = Math.round(width * ratio);
      c.height = Math.round(height * ratio);
      c.style.width = width + "px";
      c.style.height = height + "px";
      const g = c.getContext("2d");
      g.setTransform(ratio, 0, 0, ratio, 0, 0);
      g.clearRect(0, 0, width, height);
      g.font = "12px sans-serif";
      g.textBaseline = "middle";
      const z = this.zoom, zs = t.start[z], zv = t.value[z] || 1, scale = width / zv;
      this.geom = { width, height, scale, zs, rows };
      const charW = 6.6;
      // Ancestors of the zoomed frame: full width.
      const anc = [];
      for (let p = z; p >= 0; p = t.parent[p]) anc.push(p);
      for (const i of anc) this.drawBox(g, i, 0, width, this.rowY(t.depth[i]), charW);
      // The zoomed subtree, skipping frames narrower than half a pixel.
      for (let i = z + 1; i < t.end[z];) {
        const w = t.value[i] * scale;
        if (w < 0.5) { i = t.end[i]; continue; }
        this.drawBox(g, i, (t.start[i] - zs) * scale, w, this.rowY(t.depth[i]), charW);
        i++;
      }
    }

    rowY(depth) { return this.icicle ? depth * ROW_H : (this.t.maxDepth - depth) * ROW_H; }

    drawBox(g, i, x, w, y, charW) {
      const f = this.t.frame[i];
      const hit = this.matched && this.matched[f];
      g.fillStyle = hit ? "rgb(230,0,230)" : this.colours[f];
      g.fillRect(x, y, Math.max(w - 0.5, 0.5), ROW_H - 1);
      if (w > 3 * charW) {
        const name = i === 0 ? "all" : this.t.frames[f].n;
        const fit = Math.floor((w - 6) / charW);
        g.fillStyle = "#000";
        g.fillText(name.length > fit ? name.slice(0, Math.max(fit - 2, 1)) + ".." : name, x + 3, y + ROW_H / 2);
      }
    }

    nodeAt(e) {
      if (!this.geom) return -1;
      const r = this.canvas.getBoundingClientRect();
      const x = e.clientX - r.left, y = e.clientY - r.top;
      const row = Math.floor(y / ROW_H);
      const depth = this.icicle ? row : this.t.maxDepth - row;
      const t = this.t, list = this.byDepth[depth];
      if (!list) return -1;
      // Ancestors of the zoom span the width.
      for (let p = this.zoom; p >= 0; p = t.parent[p]) if (t.depth[p] === depth) return p;
      const v = this.geom.zs + x / this.geom.scale;
      let lo = 0, hi = list.length - 1, found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (t.start[list[mid]] <= v) { found = list[mid]; lo = mid + 1; } else hi = mid - 1;
      }
      if (found < 0 || v >= t.start[found] + t.value[found]) return -1;
      if (found < this.zoom || found >= t.end[this.zoom]) return -1;
      return found;
    }

    describe(i) {
      const t = this.t, f = t.frames[t.frame[i]];
      const where = f.f ? f.f + (f.l ? ":" + f.l : "") : f.m || "";
      const parts = [i === 0 ? "all" : f.n];
      if (where) parts.push(where);
      parts.push(f.k);
      parts.push(fmtNum(t.samples[i], 0) + " samples");
      if (t.cpu[i]) parts.push(fmtCpu(t.cpu[i]) + " CPU");
      parts.push(fmtPct(t.value[0] ? t.value[i] / t.value[0] : 0, 2) + " of all");
      if (this.zoom) parts.push(fmtPct(t.value[this.zoom] ? t.value[i] / t.value[this.zoom] : 0, 2) + " of zoom");
      if (f.dv) parts.push(f.dv + " " + fmtChange(f.dc) + " [" + fmtChange(f.dl) + ", " + fmtChange(f.dh) + "]");
      return parts;
    }

    hover(e) {
      const i = this.nodeAt(e);
      if (i < 0) { this.tip.hidden = true; return; }
      const parts = this.describe(i);
      this.details.textContent = parts.join(" · ");
      this.tip.textContent = "";
      this.tip.append(el("b", { text: parts[0] }));
      for (const p of parts.slice(1)) this.tip.append(el("div", { text: p }));
      this.tip.hidden = false;
      const r = this.wrap.getBoundingClientRect();
      let x = e.clientX - r.left + 12, y = e.clientY - r.top + 12;
      if (x + 360 > r.width) x = Math.max(0, x - 380);
      this.tip.style.left = x + "px";
      this.tip.style.top = y + "px";
    }
  }

  // Path of frame names from the root to node i ("\n"-joined), for links.
  function nodePath(t, i) {
    const names = [];
    for (let p = i; p > 0; p = t.parent[p]) names.push(t.frames[t.frame[p]].n);
    return names.reverse().join("\n");
  }

  function findPath(t, path) {
    if (!path) return 0;
    let cur = 0;
    for (const name of path.split("\n")) {
      let found = -1;
      for (let c = cur + 1; c < t.end[cur]; c = t.end[c]) if (t.frames[t.frame[c]].n === name) { found = c; break; }
      if (found < 0) return cur;
      cur = found;
    }
    return cur;
  }

  function compileSearch(text) {
    if (!text) return null;
    try { return new RegExp(text); } catch (e) { return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")); }
  }

  // A flame graph with its controls and top table, in container.
  function mountFlame(container, data, opts) {
    const tm = [performance.now()];
    const t = buildTree(data);
    tm.push(performance.now());
    const bar = el("div", { class: "toolbar" });
    const search = el("input", { id: "search", type: "search", placeholder: "search (regex)", value: state.search || "" });
    const result = el("span", { id: "search-result", class: "muted" });
    // Icicle by default where the top matters most (the differential view).
    const icicle = state.orient ? state.orient === "icicle" : !!opts.diff;
    const orient = el("button", { id: "orient", type: "button", text: icicle ? "flame" : "icicle" });
    const reset = el("button", { id: "reset-zoom", type: "button", text: "reset zoom" });
    bar.append(search, result, reset, orient);
    if (opts.extraTools) bar.append(...opts.extraTools);
    const layout = el("div", { class: "flame-layout" });
    const left = el("div", { class: "flame-left" }), right = el("div", { class: "flame-right" });
    layout.append(left, right);
    container.append(bar, layout);
    if (t.n <= 1) {
      left.append(el("p", { class: "empty", text: "No samples in this selection and range: widen the range or change the filters." }));
      return;
    }
    if (t.omitted) left.append(el("p", { class: "muted", text: t.omitted.toLocaleString() + " small frames left out (their time shows in their parent's self)." }));
    const fg = new FlameGraph(left, t, {
      icicle, diff: opts.diff,
      onZoom: (i) => setState({ zoom: nodePath(t, i) || undefined }),
    });
    fg.zoom = findPath(t, state.zoom);
    tm.push(performance.now());
    const applySearch = () => {
      const re = compileSearch(search.value);
      const m = fg.setSearch(re);
      result.textContent = m ? "Matched: " + fmtPct(m.share, 2) + " (" + m.count + " frames, " +
        (t.unit === "cpu" ? fmtCpu(m.sum) + " CPU" : fmtNum(m.sum, 0) + " " + t.unit) + ")" : "";
    };
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { applySearch(); history.replaceState(null, "", writeHash(Object.assign({}, state, { search: search.value || undefined }))); state = readState(); }, 150);
    });
    reset.addEventListener("click", () => setState({ zoom: undefined }));
    // Escape resets the zoom, "/" goes to the search box (as in the SVG).
    fg.onKey = (e) => {
      if (e.key === "Escape" && state.zoom) setState({ zoom: undefined });
      else if (e.key === "/" && document.activeElement !== search) { e.preventDefault(); search.focus(); }
    };
    document.addEventListener("keydown", fg.onKey);
    orient.addEventListener("click", () => setState({ orient: icicle ? "flame" : "icicle" }));
    fg.draw();
    tm.push(performance.now());
    if (search.value) applySearch();

    // Top functions: self and total.
    const rows = topFunctions(t).sort((a, b) => b.self - a.self || b.total - a.total).slice(0, 100);
    const total = t.value[0] || 1;
    const table = el("table", { class: "top", id: "top-table" });
    table.innerHTML = "<thead><tr><th>self</th><th>total</th><th>function</th></tr></thead>";
    const body = el("tbody");
    let html = "";
    for (const r of rows) {
      html += "<tr data-name=\"" + esc(r.name) + "\"><td class=\"num\">" + fmtPct(r.self / total) + "</td><td class=\"num\">" +
        fmtPct(r.total / total) + "</td><td class=\"fn " + esc(r.frame.k) + "\" title=\"" + esc(r.name) + "\">" + esc(r.name) + "</td></tr>";
    }
    body.innerHTML = html;
    body.addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (!tr) return;
      search.value = "^" + tr.dataset.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$";
      search.dispatchEvent(new Event("input"));
    });
    table.append(body);
    right.append(el("h3", { text: "Top functions (" + (t.unit === "cpu" ? "CPU" : t.unit) + ")" }), table);
    tm.push(performance.now());
    fg.timings = { tree: tm[1] - tm[0], setup: tm[2] - tm[1], draw: tm[3] - tm[2], top: tm[4] - tm[3] };
    return fg;
  }

  // ---- views ----

  let liveTimer = 0, lastWindows = -1, current = null, renderSeq = 0;

  function selectionParams(s) {
    const p = {};
    for (const k of ["service", "endpoint", "commit"]) if (s[k]) p[k] = s[k];
    return Object.assign(p, tagParams(s));
  }

  // The tag filters of a state: { "tag.KEY": value } (the agent's parameters).
  function tagParams(s) {
    const p = {};
    for (const k of Object.keys(s)) if (k.startsWith("tag.") && k.length > 4) p[k] = s[k];
    return p;
  }

  // The tag filters as the user types them: "key=value,key=value".
  function tagsText(s) {
    return Object.keys(tagParams(s)).map((k) => k.slice(4) + "=" + s[k]).join(",");
  }

  // Parses "key=value,…" (a value "-": without that tag) into state changes
  // that replace every tag filter; service, endpoint or commit set their own
  // filter. Throws an Error naming a malformed item.
  function parseTags(text, s) {
    const ch = {};
    for (const k of Object.keys(s)) if (k.startsWith("tag.")) ch[k] = undefined;
    for (const item of text.split(",")) {
      if (!item.trim()) continue;
      const eq = item.indexOf("=");
      const key = eq > 0 ? item.slice(0, eq).trim() : "", value = eq > 0 ? item.slice(eq + 1).trim() : "";
      if (!key || !value) throw new Error("Tag filter '" + item.trim() + "' is not key=value (a value '-' selects the samples without that tag).");
      if (key === "service" || key === "endpoint" || key === "commit") ch[key] = value;
      else ch["tag." + key] = value;
    }
    return ch;
  }

  // The state's filters in words, for titles.
  function filterWords(s) {
    const f = ["service", "endpoint", "commit"].filter((k) => s[k]).map((k) => k + "=" + s[k]);
    for (const [k, v] of Object.entries(tagParams(s))) f.push(k.slice(4) + "=" + v);
    return f.join(" ");
  }

  async function viewOverview(main, seq) {
    const [from, to] = rangeSeconds(state);
    const params = rangeParams(state);
    const tags = tagParams(state);
    const [groups, series] = await Promise.all([
      apiJson("/api/v1/groups", Object.assign({ by: "service,endpoint,commit" }, params, tags)),
      apiJson("/api/v1/timeseries", Object.assign({ by: "service,endpoint,commit", buckets: "40" }, params, tags)),
    ]);
    if (seq !== renderSeq) return;
    renderOverview(main, groups, series, to - from);
  }

  function renderOverview(main, groups, series, seconds) {
    const spark = new Map();
    for (const s of series.series) spark.set(s.service + "\0" + s.endpoint + "\0" + s.commit, s.cpu_ns);
    const useInstr = state.metric === "instructions";
    const svcCpu = new Map();
    for (const g of groups.groups) svcCpu.set(g.service, (svcCpu.get(g.service) || 0) + (useInstr ? g.instructions : g.cpu_ns));
    const filter = (state.q || "").toLowerCase();
    let rows = groups.groups.filter((g) => (!state.service || g.service === state.service) &&
      (!filter || (g.service + " " + g.endpoint + " " + g.commit).toLowerCase().includes(filter)));
    rows = rows.map((g) => {
      const cost = useInstr ? g.instructions : g.cpu_ns;
      return {
        g, cost, perReq: g.requests ? cost / g.requests : NaN, rps: g.requests / seconds,
        share: svcCpu.get(g.service) ? cost / svcCpu.get(g.service) : 0,
      };
    });
    const sort = state.sort || "cost", dir = state.dir === "asc" ? 1 : -1;
    const key = { service: (r) => r.g.service, endpoint: (r) => r.g.endpoint, commit: (r) => r.g.commit,
      perReq: (r) => (isFinite(r.perReq) ? r.perReq : -1), rps: (r) => r.rps, share: (r) => r.share,
      cost: (r) => r.cost, samples: (r) => r.g.samples }[sort] || ((r) => r.cost);
    rows.sort((a, b) => {
      if (a.g.service !== b.g.service) return a.g.service < b.g.service ? -1 : 1;
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });

    const services = Array.from(svcCpu.keys()).sort();
    const bar = el("div", { class: "toolbar" });
    const svc = el("select", { id: "filter-service", title: "service" });
    svc.append(el("option", { value: "", text: "all services" }));
    for (const s of services) { const o = el("option", { value: s, text: s }); if (s === state.service) o.selected = true; svc.append(o); }
    const q = el("input", { id: "filter", type: "search", placeholder: "filter endpoint, commit…", value: state.q || "" });
    // Any tag (feature flags, env…): the agent sums only the groups holding them.
    const tagBox = el("form", { id: "tag-form", class: "inline" });
    const tagInput = el("input", { id: "filter-tags", type: "search", placeholder: "tags: key=value,…", value: tagsText(state), size: "22",
      title: "only samples with these tags (key=value, comma-separated; value - : without that tag); Enter applies" });
    tagBox.append(tagInput);
    tagBox.addEventListener("submit", (e) => {
      e.preventDefault();
      try { setState(parseTags(tagInput.value, state), true); } catch (err) { showError(err); }
    });
    const metric = el("select", { id: "metric" });
    metric.append(el("option", { value: "", text: "CPU" }), el("option", { value: "instructions", text: "instructions" }));
    metric.value = state.metric || "";
    svc.addEventListener("change", () => setState({ service: svc.value || undefined }));
    let timer = 0;
    q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => setState({ q: q.value || undefined }), 200); });
    metric.addEventListener("change", () => setState({ metric: metric.value || undefined }));
    const tagNote = tagsText(state) ? " · tags " + tagsText(state) : "";
    bar.append(svc, q, tagBox, metric, el("span", { class: "muted", id: "overview-note", text: rows.length + " rows · " + fmtTime(groups.from) + " – " + fmtTime(groups.to) + tagNote }));
    main.append(bar);
    if (!rows.length) {
      main.append(el("p", { class: "empty", text: groups.groups.length ? "No group matches the filter." :
        tagNote ? "No samples with tags " + tagsText(state) + " in this range (" + fmtTime(groups.from) + " – " + fmtTime(groups.to) + ")." :
        "No profiles in this range: the agent stored no windows between " + fmtTime(groups.from) + " and " + fmtTime(groups.to) + "." }));
      return;
    }
    const cols = [["service", "service"], ["endpoint", "endpoint"], ["commit", "commit"],
      ["perReq", useInstr ? "instr / req" : "CPU / req"], ["rps", "req/s"], ["share", "share of service"],
      ["cost", useInstr ? "instructions" : "CPU"], ["samples", "samples"], ["", "trend"]];
    let head = "<table class=\"overview\" id=\"overview-table\"><colgroup>";
    for (const w of [12, 20, 12, 9, 7, 9, 9, 8, 14]) head += "<col class=\"w" + w + "\">";
    head += "</colgroup><thead><tr>";
    for (const [k, label] of cols) {
      const arrow = k && k === sort ? (dir > 0 ? " ▲" : " ▼") : "";
      head += k ? "<th class=\"sortable\" data-sort=\"" + k + "\">" + esc(label) + arrow + "</th>" : "<th>" + label + "</th>";
    }
    head += "</tr></thead><tbody></tbody></table>";
    // The rows, service headers between them; only those in view are in the
    // document (a thousand rows would cost seconds of layout).
    const items = [];
    let lastSvc = null;
    for (const r of rows) {
      if (r.g.service !== lastSvc) { lastSvc = r.g.service; items.push({ svc: r.g.service }); }
      items.push({ r });
    }
    const rowHtml = (it) => {
      if (it.svc !== undefined) {
        const tot = svcCpu.get(it.svc) || 0;
        return "<tr class=\"service-row\"><td colspan=\"9\">" + esc(it.svc) + " <span class=\"muted\">" +
          (useInstr ? fmtNum(tot, 0) + " instructions" : fmtCpu(tot) + " CPU") + "</span></td></tr>";
      }
      const r = it.r, g = r.g;
      return "<tr class=\"group\" data-service=\"" + esc(g.service) + "\" data-endpoint=\"" + esc(g.endpoint) +
        "\" data-commit=\"" + esc(g.commit) + "\"><td title=\"" + esc(g.service) + "\">" + esc(g.service) + "</td><td class=\"ep\" title=\"" + esc(g.endpoint) + "\">" + esc(g.endpoint) +
        "</td><td title=\"" + esc(g.commit) + "\">" + esc(g.commit) + "</td><td class=\"num per-req\">" +
        (useInstr ? fmtNum(r.perReq, 0) : isFinite(r.perReq) ? fmtNum(r.perReq / 1e6, 3) + " ms" : "–") +
        "</td><td class=\"num rps\">" + fmtNum(r.rps, 2) + "</td><td class=\"num share\">" + fmtPct(r.share) +
        "</td><td class=\"num cost\">" + (useInstr ? fmtNum(r.cost, 0) : fmtCpu(r.cost)) + "</td><td class=\"num\">" +
        fmtNum(g.samples, 0) + "</td><td>" + sparkline(spark.get(g.service + "\0" + g.endpoint + "\0" + g.commit)) + "</td></tr>";
    };
    const wrap = el("div", { class: "table-wrap virtual", id: "overview-wrap", "data-rows": String(rows.length) });
    wrap.innerHTML = head;
    const tbody = wrap.querySelector("tbody");
    const SPARE = 15;
    let shown = "", ROW = 30;
    const paint = () => {
      // The wrapper grows with its rows up to its max-height: before the
      // first rows it is only the header, so fill at least the window.
      const top = wrap.scrollTop, h = Math.max(wrap.clientHeight, window.innerHeight);
      const first = Math.max(0, Math.floor(top / ROW) - SPARE);
      const last = Math.min(items.length, Math.ceil((top + h) / ROW) + SPARE);
      if (shown === first + ":" + last) return;
      shown = first + ":" + last;
      let html = "";
      for (let i = first; i < last; i++) html += rowHtml(items[i]);
      tbody.innerHTML = html;
      for (const [where, n] of [["afterbegin", first], ["beforeend", items.length - last]]) {
        if (!n) continue;
        const spacer = el("tr", { class: "spacer" }, [el("td", { colspan: "9" })]);
        spacer.style.height = n * ROW + "px";
        tbody.insertAdjacentElement(where, spacer);
      }
    };
    let frame = 0;
    wrap.addEventListener("scroll", () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; paint(); }); });
    wrap.addEventListener("click", (e) => {
      const th = e.target.closest("th.sortable");
      if (th) {
        const k = th.dataset.sort;
        setState({ sort: k, dir: k === sort && dir < 0 ? "asc" : undefined });
        return;
      }
      const tr = e.target.closest("tr.group");
      if (tr) openFlame({ service: tr.dataset.service, endpoint: tr.dataset.endpoint, commit: tr.dataset.commit });
    });
    main.append(wrap);
    paint();
    // The spacers' arithmetic needs the real row height (fonts differ).
    const tr = tbody.querySelector("tr.group");
    const pitch = tr ? tr.getBoundingClientRect().height : 0;
    if (pitch > 10 && Math.abs(pitch - ROW) > 0.5) { ROW = pitch; shown = ""; paint(); }
  }

  function sparkline(values) {
    if (!values || !values.length) return "";
    const w = 100, h = 18;
    let max = 0;
    for (const v of values) if (v > max) max = v;
    if (!max) return "<svg class=\"spark\" width=\"" + w + "\" height=\"" + h + "\"></svg>";
    const step = values.length > 1 ? w / (values.length - 1) : w;
    let pts = "";
    for (let i = 0; i < values.length; i++) pts += (i * step).toFixed(1) + "," + (h - 1 - (values[i] / max) * (h - 2)).toFixed(1) + " ";
    return "<svg class=\"spark\" width=\"" + w + "\" height=\"" + h + "\"><polyline points=\"" + pts + "\"/></svg>";
  }

  function openFlame(sel) {
    const keep = { view: "flame", range: state.range, from: state.from, to: state.to, live: state.live };
    const next = Object.assign(keep, tagParams(state), sel);
    history.pushState(null, "", writeHash(next));
    state = readState();
    render();
  }

  function filterBar(onApply) {
    const bar = el("form", { class: "toolbar", id: "selection" });
    const inputs = {};
    for (const k of ["service", "endpoint", "commit"]) {
      inputs[k] = el("input", { name: k, placeholder: k, value: state[k] || "", size: "14" });
      bar.append(inputs[k]);
    }
    const tagInput = el("input", { name: "tags", id: "flame-tags", placeholder: "tags: key=value,…", value: tagsText(state), size: "20" });
    bar.append(tagInput, el("button", { type: "submit", text: "show" }));
    bar.addEventListener("submit", (e) => {
      e.preventDefault();
      const ch = {};
      for (const k of Object.keys(inputs)) ch[k] = inputs[k].value.trim() || undefined;
      try { Object.assign(ch, parseTags(tagInput.value, state)); } catch (err) { showError(err); return; }
      ch.zoom = undefined;
      onApply(ch);
    });
    return bar;
  }

  async function viewFlame(main, seq) {
    main.append(filterBar((ch) => setState(ch, true)));
    const sel = Object.assign(selectionParams(state), rangeParams(state));
    const title = el("h2", { id: "flame-title", text: "Flame graph: " + (filterWords(state) || "everything") });
    main.append(title);
    const loading = el("p", { class: "muted", text: "Loading the profile…" });
    main.append(loading);
    const t0 = performance.now();
    const resp = await apiFetch("/api/v1/flamegraph", sel);
    const text = await resp.text();
    if (seq !== renderSeq) return;
    const data = JSON.parse(text);
    loading.remove();
    const dl = el("span", { class: "downloads" }, [el("span", { class: "muted", text: "download: " })]);
    for (const [label, path, extra, name] of [["pprof", "/debug/pprof/profile", {}, "profile.pb.gz"],
      ["folded", "/api/v1/flamegraph", { format: "folded" }, "profile.folded"],
      ["speedscope", "/api/v1/flamegraph", { format: "speedscope" }, "profile.speedscope.json"],
      ["SVG", "/flamegraph", {}, "flamegraph.svg"]]) {
      const a = el("a", { href: path + "?" + query(Object.assign({}, sel, extra)), class: "download", "data-format": label, text: label });
      a.addEventListener("click", (e) => { e.preventDefault(); download(path, Object.assign({}, sel, extra), name); });
      dl.append(a, " ");
    }
    current = mountFlame(main, data, { extraTools: [dl] });
    main.dataset.renderMs = String(Math.round(performance.now() - t0));
  }

  async function download(path, params, name) {
    try {
      const resp = await apiFetch(path, params);
      const blob = await resp.blob();
      const a = el("a", { href: URL.createObjectURL(blob), download: name });
      document.body.append(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { showError(e); }
  }

  // Commits of a service in range, oldest first seen first (from the series).
  async function commitsOf(service) {
    const s = await apiJson("/api/v1/timeseries", Object.assign({ by: "commit", service, buckets: "120" }, rangeParams(state)));
    const first = s.series.filter((x) => x.commit !== "-").map((x) => ({ commit: x.commit, first: x.samples.findIndex((v) => v > 0) }))
      .filter((x) => x.first >= 0);
    first.sort((a, b) => a.first - b.first || (a.commit < b.commit ? -1 : 1));
    return first.map((x) => x.commit);
  }

  async function viewCompare(main, seq) {
    const groups = await apiJson("/api/v1/groups", Object.assign({ by: "service" }, rangeParams(state)));
    if (seq !== renderSeq) return;
    const services = groups.groups.map((g) => g.service).filter((s) => s !== "-").sort();
    const service = state.service || services[0] || "";
    const commits = service ? await commitsOf(service) : [];
    if (seq !== renderSeq) return;
    const form = el("form", { class: "toolbar", id: "compare-form" });
    const svc = el("select", { name: "service", id: "compare-service" });
    for (const s of services.length ? services : [service]) { const o = el("option", { value: s, text: s }); if (s === service) o.selected = true; svc.append(o); }
    const mode = state["base.from"] ? "ranges" : "commits";
    const dflt = (v, i) => (v !== undefined ? v : mode === "ranges" ? "" : commits[commits.length - i] || "");
    const base = el("input", { name: "base", id: "base-commit", list: "commit-list", placeholder: "base commit", value: dflt(state.base, 2), size: "14" });
    const neu = el("input", { name: "new", id: "new-commit", list: "commit-list", placeholder: "new commit", value: dflt(state.new, 1), size: "14" });
    const list = el("datalist", { id: "commit-list" });
    for (const c of commits) list.append(el("option", { value: c }));
    const toLocal = (u) => (u ? new Date(u * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 19) : "");
    const fromLocal = (v) => (v ? String(Math.floor(new Date(v).getTime() / 1000)) : undefined);
    const bf = el("input", { type: "datetime-local", step: "1", id: "base-from", value: toLocal(state["base.from"]) });
    const bt = el("input", { type: "datetime-local", step: "1", id: "base-to", value: toLocal(state["base.to"]) });
    const nf = el("input", { type: "datetime-local", step: "1", id: "new-from", value: toLocal(state["new.from"]) });
    const nt = el("input", { type: "datetime-local", step: "1", id: "new-to", value: toLocal(state["new.to"]) });
    const modeSel = el("select", { id: "compare-mode" });
    modeSel.append(el("option", { value: "commits", text: "two commits" }), el("option", { value: "ranges", text: "two time ranges" }));
    modeSel.value = mode;
    const commitBox = el("span", {}, [base, " → ", neu, list]);
    const rangeBox = el("span", {}, ["base ", bf, "–", bt, " new ", nf, "–", nt]);
    rangeBox.hidden = mode !== "ranges";
    modeSel.addEventListener("change", () => { rangeBox.hidden = modeSel.value !== "ranges"; });
    form.append(el("label", { text: "service " }, [svc]), modeSel, commitBox, rangeBox, el("button", { type: "submit", text: "compare" }));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (modeSel.value === "commits") setState({ service: svc.value, base: base.value.trim(), new: neu.value.trim(), "base.from": undefined, "base.to": undefined, "new.from": undefined, "new.to": undefined, zoom: undefined }, true);
      else setState({ service: svc.value, base: base.value.trim() || undefined, new: neu.value.trim() || undefined, "base.from": fromLocal(bf.value), "base.to": fromLocal(bt.value), "new.from": fromLocal(nf.value), "new.to": fromLocal(nt.value), zoom: undefined }, true);
    });
    svc.addEventListener("change", () => setState({ service: svc.value, base: undefined, new: undefined }, true));
    main.append(form);
    const params = { service };
    if (mode === "ranges") {
      for (const k of ["base.from", "base.to", "new.from", "new.to"]) params[k] = state[k];
      if (state.base) params["base.commit"] = state.base;
      if (state.new) params["new.commit"] = state.new;
    } else {
      params["base.commit"] = base.value;
      params["new.commit"] = neu.value;
      Object.assign(params, rangeParams(state));
    }
    if (state.endpoint) params.endpoint = state.endpoint;
    Object.assign(params, tagParams(state));
    if (state.fe) params["flame.endpoint"] = state.fe;
    if (mode === "commits" && (!params["base.commit"] || !params["new.commit"])) {
      main.append(el("p", { class: "empty", text: service ? "Service " + service + " ran " + commits.length +
        " commit(s) in this range: pick a base and a new commit (or two time ranges)." : "No tagged service in this range." }));
      return;
    }
    main.append(el("p", { class: "muted", id: "compare-loading", text: "Comparing (bootstrap over windows)…" }));
    const res = await apiJson("/api/v1/compare", params);
    if (seq !== renderSeq) return;
    $("compare-loading").remove();
    const head = el("h2", { text: service + ": " + (mode === "commits" ? params["base.commit"] + " → " + params["new.commit"] : "two ranges") +
      " · " + res.regressions + " regression(s), " + res.improvements + " improvement(s) at " + fmtPct(res.confidence, 0) });
    main.append(head);
    let html = "<table class=\"compare\" id=\"compare-table\"><thead><tr><th>endpoint</th><th>metric</th><th>base</th><th>new</th><th>change</th><th>" +
      fmtPct(res.confidence, 0) + " CI</th><th>verdict</th><th>driven by</th></tr></thead><tbody>";
    const val = (r, v) => (r.metric === "share" ? fmtPct(v, 2) : r.metric === "instr/req" ? fmtNum(v, 0) : fmtNum(v / 1e6, 3) + " ms");
    for (const r of res.endpoints) {
      const cls = r.verdict === "regression" ? "regression" : r.verdict === "improvement" ? "improvement" : "neutral";
      const picked = (state.fe || "(all)") === r.endpoint ? " picked" : "";
      html += "<tr class=\"" + cls + picked + "\" data-endpoint=\"" + esc(r.endpoint) + "\" data-verdict=\"" + esc(r.verdict) + "\" title=\"show this endpoint's differential flame graph\"><td>" + esc(r.endpoint) + "</td><td>" + esc(r.metric) +
        "</td><td class=\"num\">" + val(r, r.base) + "</td><td class=\"num\">" + val(r, r.new) + "</td><td class=\"num\">" + fmtChange(r.change) +
        "</td><td class=\"num\">[" + fmtChange(r.ci_low) + ", " + fmtChange(r.ci_high) + "]</td><td class=\"verdict\">" + esc(r.verdict) + "</td><td>" +
        r.functions.slice(0, 5).map((f) => esc(f.name) + " " + fmtChange(f.change)).join("<br>") + "</td></tr>";
    }
    html += "</tbody></table>";
    const wrap = el("div", { class: "table-wrap" });
    wrap.innerHTML = html;
    wrap.addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-endpoint]");
      if (tr) setState({ fe: tr.dataset.endpoint === "(all)" ? undefined : tr.dataset.endpoint, zoom: undefined }, true);
    });
    main.append(wrap);
    main.append(el("h3", { id: "diff-title", text: "Differential flame graph of the new side, " + (res.flame_endpoint === "(all)" ? "all endpoints" : "endpoint " + res.flame_endpoint) +
      " (click a row for another): red significantly more per request, blue less, grey no significant change" }));
    current = mountFlame(main, res.flame, { diff: true });
  }

  async function viewRegressions(main, seq) {
    const data = await apiJson("/api/v1/regressions");
    if (seq !== renderSeq) return;
    const checks = data.checks.slice().sort((a, b) => (b.checked || 0) - (a.checked || 0));
    if (!checks.length) {
      main.append(el("p", { class: "empty", text: "No deploy checks yet: the agent checks each service " +
        "after a new commit has run for deploy_check_window." }));
      return;
    }
    let html = "<table class=\"regressions\" id=\"regressions-table\"><thead><tr><th>checked</th><th>service</th><th>endpoint</th><th>deploy</th><th>change</th><th>CI</th><th>verdict</th><th>reason</th><th></th></tr></thead><tbody>";
    for (const c of checks) {
      const cls = c.verdict === "regression" ? "regression" : c.verdict === "improvement" ? "improvement" : "neutral";
      const link = writeHash({ view: "compare", service: c.service, range: "custom", "base.from": Math.floor(c.base_range[0]), "base.to": Math.ceil(c.base_range[1]),
        "new.from": Math.floor(c.new_range[0]), "new.to": Math.ceil(c.new_range[1]), base: c.base, new: c.new, from: Math.floor(c.base_range[0]), to: Math.ceil(c.new_range[1]) });
      html += "<tr class=\"" + cls + "\" data-service=\"" + esc(c.service) + "\" data-endpoint=\"" + esc(c.endpoint) + "\"><td>" + fmtTime(c.checked) + "</td><td>" + esc(c.service) + "</td><td>" + esc(c.endpoint) + "</td><td>" + esc(c.base) + " → " + esc(c.new) +
        (c.canary ? " (canary)" : "") + "</td><td class=\"num\">" + fmtChange(c.change) + "</td><td class=\"num\">[" + fmtChange(c.ci_low) + ", " + fmtChange(c.ci_high) +
        "]</td><td class=\"verdict\">" + esc(c.verdict) + "</td><td>" + esc(c.reason || "") + "</td><td><a href=\"" + esc(link) + "\">compare</a></td></tr>";
    }
    html += "</tbody></table>";
    const wrap = el("div", { class: "table-wrap" });
    wrap.innerHTML = html;
    main.append(wrap);
  }

  const VIEWS = { overview: viewOverview, flame: viewFlame, compare: viewCompare, regressions: viewRegressions };

  let renderedHash = null;

  async function render() {
    const seq = ++renderSeq;
    renderedHash = location.hash;
    if (current && current.destroy) current.destroy();
    current = null;
    clearMessage();
    syncHeader();
    const main = $("main");
    main.textContent = "";
    main.dataset.view = state.view;
    main.dataset.state = "loading";
    main.dataset.renders = String(Number(main.dataset.renders || 0) + 1);
    const fn = VIEWS[state.view];
    if (!fn) {
      main.append(el("p", { class: "empty", text: "Unknown view '" + state.view + "': pick one above." }));
      main.dataset.state = "error";
      return;
    }
    try {
      await fn(main, seq);
      if (seq === renderSeq) main.dataset.state = "ready";
    } catch (e) {
      if (seq !== renderSeq) return;
      main.dataset.state = "error";
      showError(e);
      if (!main.querySelector(".empty")) main.append(el("p", { class: "empty", text: "Nothing to show: see the message above." }));
    }
  }

  function syncHeader() {
    for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
    $("range").value = state.range in RANGES || state.range === "custom" ? state.range : "1h";
    $("custom-range").hidden = state.range !== "custom";
    const toLocal = (u) => (u ? new Date(u * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 19) : "");
    if (state.range === "custom") { $("from").value = toLocal(Number(state.from)); $("to").value = toLocal(Number(state.to)); }
    $("live").checked = !!state.live;
    setupLive();
  }

  // Live: refresh whenever the agent has stored another window.
  function setupLive() {
    clearInterval(liveTimer);
    liveTimer = 0;
    if (!state.live) return;
    lastWindows = -1;
    liveTimer = setInterval(async () => {
      try {
        const h = await apiJson("/healthz");
        if (lastWindows >= 0 && h.windows !== lastWindows && document.visibilityState !== "hidden") {
          lastWindows = h.windows;
          const keepSearch = $("search") ? $("search").value : null;
          await render();
          if (keepSearch !== null && $("search")) $("search").value = keepSearch;
        }
        lastWindows = h.windows;
      } catch (e) { showError(e); }
    }, 2000);
  }

  // ---- synthetic data: the render-time check (tests, `bench`) ----

  function syntheticGroups(n) {
    const groups = [], series = [];
    for (let i = 0; i < n; i++) {
      const g = { service: "svc" + (i % 10), endpoint: "/endpoint/" + i, commit: i % 2 ? "c0ffee" : "deadbeef",
        samples: 1000 + i, cpu_ns: 1e9 + i * 1e6, instructions: 0, requests: 100 + i };
      g.cpu_ns_per_request = g.cpu_ns / g.requests;
      groups.push(g);
      const cpu = [];
      for (let b = 0; b < 40; b++) cpu.push(Math.round(g.cpu_ns / 40 * (1 + Math.sin(i + b) / 3)));
      series.push({ service: g.service, endpoint: g.endpoint, commit: g.commit, samples: [], cpu_ns: cpu, instructions: [], requests: [] });
    }
    return [{ from: 0, to: 3600, groups }, { series }];
  }

  // A tree of `stacks` distinct leaf stacks, as /api/v1/flamegraph writes it.
  function syntheticTree(stacks) {
    const frames = [{ n: "all", k: "special" }, { n: "python3", k: "special" }];
    const kinds = ["python", "native", "kernel"];
    for (let i = 0; i < 2000; i++) frames.push({ n: "function_" + i + " (module_" + (i % 50) + ".py:" + (i + 1) + ")", k: kinds[i % 3], fn: "function_" + i, f: "module_" + (i % 50) + ".py", l: i + 1 });
    const nodes = [];
    let seed = 1;
    const rnd = () => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 4294967296; };
    // A fan-out tree: depth up to 24, leaves = stacks.
    let leaves = 0;
    function walk(depth, budget) {
      const id = nodes.length / 5;
      nodes.push(2 + ((rnd() * 2000) | 0), depth, 0, 0, 0);
      let total = 0;
      if (depth >= 24 || budget <= 1) {
        // A leaf stack: a tail of its own (up to 4 more frames), as real stacks have.
        total = 1 + ((rnd() * 100) | 0);
        leaves++;
        for (let k = 1, tail = (rnd() * 5) | 0; k <= tail; k++) nodes.push(2 + ((rnd() * 2000) | 0), depth + k, total, total * 1e7, 0);
      } else {
        const kids = Math.min(budget, 2 + ((rnd() * 6) | 0));
        let left = budget;
        for (let k = 0; k < kids && left > 0; k++) {
          const share = k === kids - 1 ? left : Math.max(1, Math.round(left / (kids - k) * (0.5 + rnd())));
          total += walk(depth + 1, Math.min(share, left));
          left -= share;
        }
      }
      nodes[id * 5 + 2] = total; nodes[id * 5 + 3] = total * 1e7; nodes[id * 5 + 4] = 0;
      return total;
    }
    nodes.push(0, 0, 0, 0, 0, 1, 1, 0, 0, 0);
    let total = 0;
    for (let i = 0; leaves < stacks; i++) total += walk(2, Math.min(4000, stacks - leaves));
    nodes[2] = nodes[7] = total; nodes[3] = nodes[8] = total * 1e7;
    return { value_types: [["samples", "count"], ["cpu", "nanoseconds"], ["requests", "count"]], totals: [total, total * 1e7, 0], stride: 5,
      frames, nodes, nodes_total: nodes.length / 5, nodes_omitted: 0, omitted: [0, 0, 0] };
  }

  // Renders synthetic data of the given size through the real code paths
  // (JSON text parsed as the API's would be); returns the milliseconds.
  function bench(kind, n) {
    const main = $("main");
    main.textContent = "";
    state = { view: kind === "overview" ? "overview" : "flame", range: "1h" };
    if (kind === "overview") {
      const [g, s] = syntheticGroups(n);
      const text = [JSON.stringify(g), JSON.stringify(s)];
      const t0 = performance.now();
      renderOverview(main, JSON.parse(text[0]), JSON.parse(text[1]), 3600);
      main.offsetHeight; // force layout
      const wrap = $("overview-wrap");
      return { ms: performance.now() - t0, rows: Number(wrap.dataset.rows), drawn: main.querySelectorAll("tr.group").length };
    }
    const text = JSON.stringify(syntheticTree(n));
    const t0 = performance.now();
    const data = JSON.parse(text);
    const t1 = performance.now();
    const fg = mountFlame(main, data, {});
    main.offsetHeight;
    return { ms: performance.now() - t0, nodes: fg ? fg.t.n : 0, leaves: n, json_mb: text.length / 1e6,
      parse: t1 - t0, timings: fg ? fg.timings : null };
  }

  // ---- start ----

  function start() {
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      try { localStorage.setItem(TOKEN_KEY, $("token").value); } catch (err) { /* private mode */ }
      $("token-form").hidden = true;
      render();
    });
    $("range").addEventListener("change", () => {
      const v = $("range").value;
      if (v === "custom") {
        const [from, to] = rangeSeconds(state);
        setState({ range: "custom", from: String(from), to: String(to) }, true);
      } else setState({ range: v, from: undefined, to: undefined }, true);
    });
    $("apply-range").addEventListener("click", () => {
      const f = Math.floor(new Date($("from").value).getTime() / 1000), t = Math.floor(new Date($("to").value).getTime() / 1000);
      if (!(f < t)) { showError(new Error("The custom range needs a from before its to.")); return; }
      setState({ range: "custom", from: String(f), to: String(t) }, true);
    });
    $("live").addEventListener("change", () => setState({ live: $("live").checked ? "1" : undefined }));
    for (const a of document.querySelectorAll("#tabs a")) {
      a.addEventListener("click", (e) => {
        e.preventDefault();
        const keep = { view: a.dataset.view, range: state.range, from: state.from, to: state.to, live: state.live };
        if (a.dataset.view !== "regressions" && state.service) keep.service = state.service;
        if (a.dataset.view !== "regressions") Object.assign(keep, tagParams(state));
        history.pushState(null, "", writeHash(keep));
        state = readState();
        render();
      });
    }
    // Back, forward, a followed link or an edited URL: render what it says
    // (once, though both events may fire for one change).
    const follow = () => { if (location.hash !== renderedHash) { state = readState(); render(); } };
    window.addEventListener("popstate", follow);
    window.addEventListener("hashchange", follow);
    window.dynoprof = { bench, state: () => state };
    render();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
