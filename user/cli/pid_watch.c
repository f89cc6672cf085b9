// SPDX-License-Identifier: MIT
#include "cli/pid_watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int pid_watch__start(struct pid_watch *w, const uint32_t *roots, size_t nroots)
{
	memset(w, 0, sizeof(*w));
	int err = descendants__collect(&w->procs, roots, nroots);
	if (err == -E2BIG) {
		w->walk_cut = true;
		err = 0;
	}
	if (err)
		goto fail;
	w->nroots = nroots < w->procs.count ? nroots : w->procs.count;
	w->start_ns = calloc(w->procs.count ? w->procs.count : 1, sizeof(*w->start_ns));
	if (!w->start_ns) {
		err = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < w->procs.count; i++)
		if (proc__cpu_ns(w->procs.pids[i], &w->start_ns[i]))
			w->start_ns[i] = UINT64_MAX;
	return 0;
fail:
	pid_watch__free(w);
	return err;
}

void pid_watch__free(struct pid_watch *w)
{
	if (!w)
		return;
	pid_set__free(&w->procs);
	free(w->start_ns);
	w->start_ns = NULL;
}

/* "PID 12" or "PIDs 12,13" (at most a few named). */
static void name_roots(const struct pid_watch *w, char *buf, size_t len)
{
	size_t off = (size_t)snprintf(buf, len, "PID%s ", w->nroots > 1 ? "s" : "");
	for (size_t i = 0; i < w->nroots && off < len; i++) {
		if (i == 4) {
			snprintf(buf + off, len - off, ",...");
			break;
		}
		off += (size_t)snprintf(buf + off, len - off, "%s%" PRIu32, i ? "," : "",
					w->procs.pids[i]);
	}
}

void pid_watch__note_children(const struct pid_watch *w, FILE *out)
{
	size_t n = w->procs.count - w->nroots;
	if (!n)
		return;
	char roots[96];
	name_roots(w, roots, sizeof(roots));
	fprintf(out, "dynoprof: note: %s %s %s%zu descendant process%s (e.g. PID %" PRIu32
		"), not profiled: add --children to profile them too (a gunicorn master's "
		"workers, say)\n", roots, w->nroots > 1 ? "have" : "has",
		w->walk_cut ? "more than " : "", n, n > 1 ? "es" : "", w->procs.pids[w->nroots]);
}

/* CPU pid used since the start (all of it when it was born since, or its
 * start reading failed: then it was not there yet); 0 when it is gone. */
static uint64_t used_since_start(const struct pid_watch *w, uint32_t pid)
{
	uint64_t now;
	if (proc__cpu_ns(pid, &now))
		return 0;
	for (size_t i = 0; i < w->procs.count; i++)
		if (w->procs.pids[i] == pid)
			return w->start_ns[i] == UINT64_MAX ? now :
			       now > w->start_ns[i] ? now - w->start_ns[i] : 0;
	return now;
}

void pid_watch__explain_no_samples(const struct pid_watch *w, bool children, unsigned freq_hz,
				   double elapsed_s, FILE *out)
{
	char roots[96];
	name_roots(w, roots, sizeof(roots));
	uint64_t root_ns = 0, desc_ns = 0;
	size_t busy_children = 0, nchildren = 0;
	for (size_t i = 0; i < w->nroots; i++)
		root_ns += used_since_start(w, w->procs.pids[i]);
	/* The descendants now (some may be new), each against its start. */
	struct pid_set now = { 0 };
	int err = descendants__collect(&now, w->procs.pids, w->nroots);
	for (size_t i = w->nroots; !err && i < now.count; i++) {
		uint64_t ns = used_since_start(w, now.pids[i]);
		nchildren++;
		desc_ns += ns;
		busy_children += ns > 0;
	}
	pid_set__free(&now);
	if (err)
		nchildren = busy_children = desc_ns = 0;

	if (!children && desc_ns > 0) {
		char used[64] = "no CPU";
		if (root_ns)
			snprintf(used, sizeof(used), "only %.3f s of CPU", root_ns / 1e9);
		fprintf(out, "dynoprof: 0 samples: %s used %s during the capture; %s %zu child "
			"process%s used %.3f s — add --children to profile them\n", roots, used,
			w->nroots > 1 ? "their" : "its", busy_children,
			busy_children > 1 ? "es" : "", desc_ns / 1e9);
		return;
	}
	uint64_t total = root_ns + (children ? desc_ns : 0);
	if (total > 0) {
		fprintf(out, "dynoprof: 0 samples: the profiled processes used only %.3f s of CPU "
			"in %.1f s, too little to be sampled at %u Hz: raise -F or -d\n",
			total / 1e9, elapsed_s, freq_hz);
		return;
	}
	fprintf(out, "dynoprof: 0 samples: %s used no CPU during the capture (idle or "
		"blocked)%s\n", roots,
		nchildren ? (children ? ", nor did its descendants" :
			     "; its child processes used none either") :
		"; it has no child processes");
}
