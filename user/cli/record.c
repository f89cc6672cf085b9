// SPDX-License-Identifier: MIT
/* dynoprof record: capture stacks into a profile file. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggregate/aggregate.h"
#include "aggregate/counts.h"
#include "capture/launch.h"
#include "capture/sampler.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "cli/pid_watch.h"
#include "formats/groups.h"
#include "formats/output.h"
#include "pipeline/pipeline.h"
#include "profile/profile.h"
#include "profile/transform.h"
#include "python/py_registry.h"
#include "python/py_resolver.h"
#include "symbolize/fde_ranges.h"
#include "symbolize/minidebug.h"
#include "symbolize/symbolizer.h"
#include "tags/endpoint_rule.h"
#include "tags/tag_registry.h"
#include "unwind/unwind_registry.h"
#include "util/duration.h"
#include "util/outfile.h"
#include "util/privileges.h"
#include "util/clock.h"
#include "util/cgroup.h"

#define DEFAULT_FREQ_HZ 99
#define MAX_GROUP_KEYS 8
#define MAX_FILTERS 16
#define MAX_ENV_RULES 32
#define DEFAULT_OUTPUT "profile.svg"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

struct record_args {
	unsigned freq_hz;          /* -F */
	double duration_s;         /* -d; 0 = until stopped */
	const char *output;        /* -o */
	const char *format_name;   /* --format; NULL = from the extension */
	enum sample_event event;   /* -e */
	uint32_t *pids;            /* -p list (owned); with --children, their descendants
				    * follow the given ones once the capture starts */
	size_t npids;
	bool children;             /* --children: -p processes' descendants too */
	uint32_t *tids;            /* --tid list (owned) */
	size_t ntids;
	char **command;            /* -- CMD ARGS... (points into argv) */
	uint64_t period;           /* -c: events per sample; 0 = frequency mode */
	bool no_kernel;            /* --no-kernel */
	bool no_python;            /* --no-python */
	bool no_eh_frame;          /* --no-eh-frame: frame pointers only */
	unsigned unwind_table_mb;  /* --unwind-table-mb */
	bool python_lines;         /* --python-lines=on (default) */
	bool no_tags;              /* --no-tags */
	bool no_counts;            /* --no-counts */
	double window_s;           /* --window: seconds per `window` label (0 = none) */
	const char *counts_path;   /* --counts FILE */
	const char *weight;        /* --weight: value that sizes frames (samples) */
	bool counter_standin;      /* --counter-standin */
	const char *group_keys[MAX_GROUP_KEYS]; /* --group-by (point into argv) */
	size_t ngroup_keys;
	struct label_filter filters[MAX_FILTERS]; /* --tag KEY=VALUE */
	size_t nfilters;
	struct endpoint_rule endpoint_rule; /* --endpoint-from */
	bool infer_endpoint;
	struct env_tag_rule env_rules[MAX_ENV_RULES]; /* defaults + --env-tag */
	size_t nenv_rules;
	bool quiet;                /* -q */
	const char *cgroup;        /* --cgroup: only tasks in this cgroup v2 or below */
	struct cgroup_ref cgroup_ref; /* its id and depth, resolved before the capture */
};

enum { OPT_TID = CLI_LONG_ONLY, OPT_FORMAT, OPT_NO_KERNEL, OPT_NO_PYTHON, OPT_PYTHON_LINES,
       OPT_GROUP_BY, OPT_TAG, OPT_ENDPOINT_FROM, OPT_ENV_TAG, OPT_NO_TAGS,
       OPT_COUNTS, OPT_NO_COUNTS, OPT_WINDOW, OPT_WEIGHT, OPT_STANDIN, OPT_CHILDREN,
       OPT_CGROUP, OPT_NO_EH_FRAME, OPT_UNWIND_TABLE_MB };

/* The options, their help and defaults: what parse_args takes and --help shows. */
static const struct cli_option record_options[] = {
	{ .header = "what to profile (default: the whole machine):" },
	CLI_OPTION('a', "all-cpus", NULL, "every process on every CPU (the default)"),
	CLI_OPTION('p', "pid", "PID[,PID...]", "only these processes (and their threads)"),
	CLI_OPTION(OPT_CHILDREN, "children", NULL,
		   "with -p: their descendants too, those alive at the start and those forked "
		   "during the capture (e.g. -p <gunicorn master> --children profiles its "
		   "workers)"),
	CLI_OPTION(OPT_TID, "tid", "TID[,TID...]", "only these threads"),
	CLI_OPTION(OPT_CGROUP, "cgroup", "PATH", "only tasks in this cgroup v2 or below it (a "
		   "path, or a name under /sys/fs/cgroup: a container's, a systemd unit's); "
		   "with -p: both"),
	{ .operand = "-- COMMAND [ARGS...]",
	  .help = "run COMMAND and profile it and its children from its first instruction "
		  "until it exits; dynoprof exits with its exit code" },
	{ .header = "how:" },
	CLI_OPTION_DEF('F', "freq", "HZ",
		       "samples per second per CPU, 1.." CLI_STR(SAMPLER_MAX_FREQ_HZ) "; a prime "
		       "avoids lockstep with periodic timers", CLI_STR(DEFAULT_FREQ_HZ)),
	CLI_OPTION_DEF('d', "duration", "DURATION",
		       "stop after this long: seconds (10, 0.5) or with a unit (" DURATION_UNITS
		       "): 500ms, 5s, 2m, 1h",
		       "until Ctrl-C or SIGTERM, or until COMMAND exits"),
	CLI_OPTION_DEF('e', "event", "EVENT",
		       "auto: hardware cycles when the CPU exposes them, else cpu-clock; "
		       "cpu-clock; cycles; instructions (profiles weighted by instructions "
		       "retired); tick: sample inside the scheduler tick that interrupts busy CPUs "
		       "anyway (no interrupts of its own: the lowest overhead where interrupts are "
		       "dear, as in VMs; -F at most the kernel's HZ, often 250, at tick "
		       "granularity; a sample weighs its thread's CPU time since its previous "
		       "sample, so threads running between ticks count too; needs counting)",
		       "auto"),
	CLI_OPTION('c', "count", "PERIOD",
		   "sample every PERIOD events (1000..2^40) instead of -F HZ"),
	CLI_OPTION(OPT_NO_KERNEL, "no-kernel", NULL, "leave out kernel frames"),
	CLI_OPTION(OPT_COUNTS, "counts", "FILE",
		   "write exact per-process and per-thread CPU time and instructions/cycles "
		   "(null where the CPU hides its counters), with per-tag shares, as JSON; the "
		   "top processes are printed"),
	CLI_OPTION(OPT_NO_COUNTS, "no-counts", NULL,
		   "no exact per-thread accounting (samples weigh their sampling period, not "
		   "rescaled to each process's exact CPU time)"),
	CLI_OPTION(OPT_STANDIN, "counter-standin", NULL,
		   "where the CPU hides its instructions counter, count the software cpu-clock "
		   "in its place (reported as counter_value, never as instructions): checks the "
		   "counter path on such machines; costs a program run and a counter read at "
		   "every context switch"),
	CLI_OPTION(OPT_NO_PYTHON, "no-python", NULL,
		   "do not walk CPython frames (native frames only)"),
	CLI_OPTION(OPT_NO_EH_FRAME, "no-eh-frame", NULL,
		   "walk native stacks by frame pointers only, not through the files' "
		   ".eh_frame CFI (code built without frame pointers then shows its leaf "
		   "and little more)"),
	CLI_OPTION_DEF(OPT_UNWIND_TABLE_MB, "unwind-table-mb", "MB",
		       "kernel memory for the native unwind tables (1..4096); files that do "
		       "not fit are walked by frame pointers, counted in the summary",
		       CLI_STR(UNWIND_TABLE_DEFAULT_MB)),
	CLI_OPTION_DEF(OPT_PYTHON_LINES, "python-lines", "on|off",
		       "on: Python frames show file:line; off: fold them to function level",
		       "on"),
	{ .header = "tags (endpoint, commit, feature flags, ...):" },
	CLI_OPTION(OPT_GROUP_BY, "group-by", "KEYS",
		   "lead each stack with [key=value] frames for these tags (folded and SVG), "
		   "e.g. --group-by endpoint,commit"),
	CLI_OPTION(OPT_TAG, "tag", "KEY=VALUE",
		   "keep only samples with this tag (repeatable; VALUE - means \"without that "
		   "tag\"), e.g. --tag endpoint=/checkout"),
	CLI_OPTION(OPT_ENDPOINT_FROM, "endpoint-from", "RULE",
		   "infer `endpoint` from the stack where the app set none: django, flask, "
		   "wsgi, or frame=SUFFIX (the Python function that frame calls is the "
		   "endpoint)"),
	CLI_OPTION(OPT_ENV_TAG, "env-tag", "VAR=KEY",
		   "also read process tag KEY from environment variable VAR (repeatable; "
		   "defaults: DYNOPROF_COMMIT, GIT_COMMIT, SOURCE_VERSION -> commit; "
		   "DYNOPROF_SERVICE -> service; DYNOPROF_ENV -> env; DYNOPROF_TAGS=k=v,k=v)"),
	CLI_OPTION(OPT_NO_TAGS, "no-tags", NULL, "no tags at all"),
	CLI_OPTION_DEF(OPT_WINDOW, "window", "DURATION",
		       "label samples with `window` = their time slot of this length (0 to "
		       "3600 s; 0: none): the clusters `dynoprof diff` resamples for its "
		       "confidence intervals", "1s"),
	{ .header = "output:" },
	CLI_OPTION_DEF('o', "output", "FILE",
		       "where to write (- for stdout): a regular file, replaced whole (devices, "
		       "FIFOs and links other users could have planted are refused)",
		       DEFAULT_OUTPUT),
	CLI_OPTION_DEF(OPT_FORMAT, "format", "FORMAT", "svg | folded | pprof | speedscope",
		       "from the extension: .svg .folded/.collapsed/.txt .pb.gz/.pprof .json"),
	CLI_OPTION_DEF(OPT_WEIGHT, "weight", "VALUE",
		       "what sizes frames and counts lines in folded, SVG and speedscope: "
		       "samples, cpu (ns; per process the exact total, split by the samples), "
		       "instructions, cycles (pprof always has them all)", "samples"),
	CLI_OPTION('q', "quiet", NULL, "no summary on stderr"),
	{ 0 },
};

const struct cli_command record_command = {
	.name = "record",
	.synopsis = "[OPTIONS] [-- COMMAND [ARGS...]]",
	.doc =
"Samples the stacks (kernel and user) of every CPU with a BPF program on a perf\n"
"event, symbolizes them as they arrive, and writes one profile when the capture\n"
"ends: after -d DURATION, on Ctrl-C or SIGTERM, or when COMMAND exits.\n"
"Needs root, or at least CAP_BPF + CAP_PERFMON (README, \"Without root\", lists\n"
"the capabilities that give root's result).\n",
	.options = record_options,
	.epilog =
"Threads tag themselves through libdynotag (a memory write per tag, read by BPF\n"
"at sample time); pprof output carries every tag as a sample label.\n"
"\n"
"Python: processes running CPython 3.8-3.13 are detected automatically (no\n"
"change to them) and show `module:qualname (file:line)` frames, merged with\n"
"the native frames of C extensions they call and the kernel's.\n"
"\n"
"examples:\n"
"  sudo dynoprof record -a -d 10 -o profile.svg\n"
"  sudo dynoprof record -p $(pgrep -d, gunicorn) -d 30s -o web.pb.gz\n"
"  sudo dynoprof record -F 999 -o run.folded -- python3 bench.py\n"
"  go tool pprof -top web.pb.gz\n",
	.operands_end_options = true,
};

/* Returns 0 to go on, or an exit code + 1000 to stop (0 for --help). */
static int parse_args(int argc, char **argv, struct record_args *a)
{
	struct cli_parser p = CLI_PARSER_INIT(&record_command, argc, argv);
	int c;
	char *end;

	a->freq_hz = DEFAULT_FREQ_HZ;
	a->python_lines = true;
	a->unwind_table_mb = UNWIND_TABLE_DEFAULT_MB;
	a->window_s = 1;
	memcpy(a->env_rules, tag_default_env_rules,
	       tag_default_env_rule_count * sizeof(a->env_rules[0]));
	a->nenv_rules = tag_default_env_rule_count;
	a->output = DEFAULT_OUTPUT;
	while ((c = cli_parser__next(&p)) > 0) {
		char *arg = p.arg;
		switch (c) {
		case 'a':
			break;
		case 'p':
			if (parse_id_list(arg, &a->pids, &a->npids)) {
				cli_error("bad PID list '%s': expected PID[,PID...], e.g. -p 1234,5678",
					  arg);
				return 1002;
			}
			break;
		case OPT_TID:
			if (parse_id_list(arg, &a->tids, &a->ntids)) {
				cli_error("bad TID list '%s': expected TID[,TID...]", arg);
				return 1002;
			}
			break;
		case 'F': {
			errno = 0;
			long v = strtol(arg, &end, 10);
			if (errno || *end || end == arg || v < 1 || v > SAMPLER_MAX_FREQ_HZ) {
				cli_error("bad frequency '%s': -F takes 1..%d samples per second "
					  "(default %d)", arg, SAMPLER_MAX_FREQ_HZ, DEFAULT_FREQ_HZ);
				return 1002;
			}
			a->freq_hz = (unsigned)v;
			break;
		}
		case 'd':
			if (duration__parse(arg, &a->duration_s) || !(a->duration_s > 0) ||
			    a->duration_s > 365.0 * 86400) {
				cli_error("bad duration '%s': -d takes seconds > 0 up to a year, plain "
					  "or with a unit (%s), e.g. -d 10, -d 0.5, -d 5s or -d 2m",
					  arg, DURATION_UNITS);
				return 1002;
			}
			break;
		case 'e':
			if (!strcmp(arg, "auto"))
				a->event = SAMPLE_EVENT_AUTO;
			else if (!strcmp(arg, "cpu-clock"))
				a->event = SAMPLE_EVENT_CPU_CLOCK;
			else if (!strcmp(arg, "cycles"))
				a->event = SAMPLE_EVENT_CYCLES;
			else if (!strcmp(arg, "instructions"))
				a->event = SAMPLE_EVENT_INSTRUCTIONS;
			else if (!strcmp(arg, "tick"))
				a->event = SAMPLE_EVENT_TICK;
			else {
				cli_error("unknown event '%s': use auto, cpu-clock, tick, cycles or "
					  "instructions", arg);
				return 1002;
			}
			break;
		case 'o':
			a->output = arg;
			break;
		case OPT_FORMAT:
			a->format_name = arg;
			break;
		case OPT_NO_KERNEL:
			a->no_kernel = true;
			break;
		case OPT_NO_PYTHON:
			a->no_python = true;
			break;
		case OPT_NO_EH_FRAME:
			a->no_eh_frame = true;
			break;
		case OPT_UNWIND_TABLE_MB: {
			char *end = NULL;
			errno = 0;
			unsigned long mb = strtoul(arg, &end, 10);
			if (errno || end == arg || *end || mb < 1 || mb > 4096) {
				cli_error("bad --unwind-table-mb '%s': expected 1..4096", arg);
				return 1002;
			}
			a->unwind_table_mb = (unsigned)mb;
			break;
		}
		case OPT_GROUP_BY: {
			int n = groups__parse_keys(arg, a->group_keys, MAX_GROUP_KEYS);
			if (n < 0) {
				cli_error("bad --group-by: expected KEY[,KEY...] (at most %d), e.g. "
					  "endpoint,commit", MAX_GROUP_KEYS);
				return 1002;
			}
			a->ngroup_keys = (size_t)n;
			break;
		}
		case OPT_TAG:
			if (a->nfilters >= MAX_FILTERS ||
			    label_filter__parse(arg, &a->filters[a->nfilters])) {
				cli_error("bad --tag '%s': expected KEY=VALUE (at most %d), e.g. "
					  "--tag endpoint=/checkout", arg, MAX_FILTERS);
				return 1002;
			}
			a->nfilters++;
			break;
		case OPT_ENDPOINT_FROM:
			if (endpoint_rule__parse(arg, &a->endpoint_rule)) {
				cli_error("bad --endpoint-from '%s': use django, flask, wsgi or "
					  "frame=SUFFIX[,SUFFIX...]", arg);
				return 1002;
			}
			a->infer_endpoint = true;
			break;
		case OPT_ENV_TAG: {
			char *eq = strchr(arg, '=');
			if (!eq || eq == arg || !eq[1] || a->nenv_rules >= MAX_ENV_RULES) {
				cli_error("bad --env-tag '%s': expected VARIABLE=KEY, e.g. "
					  "--env-tag RELEASE=commit", arg);
				return 1002;
			}
			*eq = '\0';
			/* Explicit rules go first: they win over the defaults. */
			memmove(&a->env_rules[1], &a->env_rules[0],
				a->nenv_rules * sizeof(a->env_rules[0]));
			a->env_rules[0].variable = arg;
			a->env_rules[0].key = eq + 1;
			a->nenv_rules++;
			break;
		}
		case OPT_NO_TAGS:
			a->no_tags = true;
			break;
		case OPT_COUNTS:
			a->counts_path = arg;
			break;
		case OPT_NO_COUNTS:
			a->no_counts = true;
			break;
		case OPT_WEIGHT:
			a->weight = arg;
			break;
		case OPT_STANDIN:
			a->counter_standin = true;
			break;
		case OPT_CGROUP:
			a->cgroup = arg;
			break;
		case OPT_CHILDREN:
			a->children = true;
			break;
		case OPT_WINDOW:
			if (duration__parse(arg, &a->window_s) || a->window_s > 3600) {
				cli_error("bad --window '%s': a duration from 0 (off) to 3600 s, e.g. "
					  "--window 1, --window 500ms or --window 1m", arg);
				return 1002;
			}
			break;
		case 'c': {
			errno = 0;
			unsigned long long v = strtoull(arg, &end, 10);
			if (errno || *end || end == arg || v < 1000 || v > (1ull << 40)) {
				cli_error("bad period '%s': -c takes 1000..2^40 events per sample",
					  arg);
				return 1002;
			}
			a->period = v;
			break;
		}
		case OPT_PYTHON_LINES:
			if (!strcmp(arg, "on"))
				a->python_lines = true;
			else if (!strcmp(arg, "off"))
				a->python_lines = false;
			else {
				cli_error("bad --python-lines '%s': use on or off", arg);
				return 1002;
			}
			break;
		case 'q':
			a->quiet = true;
			break;
		}
	}
	if (c == CLI_STOP)
		return 1000 + p.exit_code;
	if (p.operand < argc)
		a->command = argv + p.operand;
	if (a->counts_path && a->no_counts) {
		cli_error("--counts and --no-counts exclude each other");
		return 1002;
	}
	if (a->command && (a->npids || a->ntids)) {
		cli_error("-p/--tid and a COMMAND exclude each other: profile one or the other");
		return 1002;
	}
	if (a->event == SAMPLE_EVENT_TICK && a->no_counts) {
		cli_error("-e tick weighs each sample by its thread's CPU time since its previous "
			  "sample, which needs CPU-time counting: drop --no-counts");
		return 1002;
	}
	if (a->children && !a->npids) {
		cli_error("--children goes with -p PID: it adds that process's descendants "
			  "(a COMMAND's children are always profiled)");
		return 1002;
	}
	if (a->cgroup) {
		char err[512];
		if (cgroup__resolve(a->cgroup, &a->cgroup_ref, err, sizeof(err))) {
			cli_error("--cgroup: %s", err);
			return 1002;
		}
	}
	return 0;
}

static int pid_exists(uint32_t pid)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%u", pid);
	return access(path, F_OK) == 0;
}

static int tid_exists(uint32_t tid)
{
	/* /proc/TID resolves for thread ids too (hidden from readdir). */
	return pid_exists(tid);
}

/* clk's time in seconds. */
static double now_s(clockid_t clk)
{
	return clock_ns(clk) / 1e9;
}

static void print_summary(const struct record_args *a, struct sampler *s,
			  const struct aggregator *agg, const struct symbolizer *sym,
			  const struct py_registry *pyreg, const struct tag_registry *tagreg,
			  const struct profile *p, double elapsed, enum output_format fmt)
{
	uint64_t drops[DROP_REASON_COUNT] = { 0 };
	struct aggregate_stats st;
	struct symbolizer_stats ss;

	sampler__drops(s, drops);
	aggregator__stats(agg, &st);
	symbolizer__stats(sym, &ss);
	uint64_t lost = drops[DROP_RINGBUF_FULL];
	fprintf(stderr, "dynoprof: %" PRIu64 " samples in %.1f s on %d CPUs (%s at %u Hz), "
		"%" PRIu64 " lost, %zu distinct stacks, %" PRIu64 " processes\n",
		st.samples, elapsed, sampler__cpu_count(s), sampler__event_name(s), a->freq_hz,
		lost, profile__sample_count(p), ss.processes);
	for (int r = 0; r < DROP_REASON_COUNT; r++)
		if (drops[r])
			fprintf(stderr, "dynoprof:   %" PRIu64 " x %s\n", drops[r],
				sampler__drop_reason_name(r));
	if (ss.symcache_truncated)
		fprintf(stderr, "dynoprof:   %" PRIu64 " binaries' symbols cut by a bound (over "
			"%u function ranges in .eh_frame, or MiniDebugInfo over %u MiB): some "
			"of their functions show as FILE+0xOFFSET\n", ss.symcache_truncated,
			FDE_RANGES_MAX, MINIDEBUG_MAX_BYTES >> 20);
	if (pyreg) {
		struct py_registry_stats ps;
		py_registry__stats(pyreg, &ps);
		if (ps.python_processes || ps.unsupported)
			fprintf(stderr, "dynoprof: %" PRIu64 " Python processes walked, %" PRIu64
				" unsupported; %" PRIu64 " samples with Python frames\n",
				ps.python_processes, ps.unsupported, st.python_samples);
	}
	if (tagreg) {
		struct tag_registry_stats ts;
		tag_registry__stats(tagreg, &ts);
		if (ts.string_failures)
			fprintf(stderr, "dynoprof:   %" PRIu64 " tag values unreadable (their process "
				"exited before dynoprof read them, or more than 4096 strings): those labels "
				"are missing\n",
				ts.string_failures);
		if (ts.string_denied)
			fprintf(stderr, "dynoprof:   %" PRIu64 " tag values unreadable (reading "
				"their process's memory was refused: see the capability "
				"warning): those labels are missing\n", ts.string_denied);
		if (ts.env_dropped)
			fprintf(stderr, "dynoprof:   %" PRIu64 " environment tags dropped (more "
				"than %d per process)\n", ts.env_dropped, TAG_MAX_ENV_LABELS);
		if (ts.process_dropped)
			fprintf(stderr, "dynoprof:   %" PRIu64 " libdynotag process tags dropped "
				"(more than %d per process)\n", ts.process_dropped,
				TAG_MAX_PROCESS_LABELS);
		if (ts.thread_dropped)
			fprintf(stderr, "dynoprof:   %" PRIu64 " thread tags dropped (more than %d "
				"per thread)\n", ts.thread_dropped, TAG_MAX_THREAD_LABELS);
		if (ts.truncated)
			fprintf(stderr, "dynoprof:   %" PRIu64 " tag keys/values cut to %d bytes "
				"(or environments past 256 KiB)\n", ts.truncated, TAG_TEXT_MAX);
		if (st.window_tags_replaced)
			fprintf(stderr, "dynoprof:   %" PRIu64 " samples' own `window` tag replaced "
				"by the time slot\n", st.window_tags_replaced);
		if (st.relabel_held || st.relabel_overflow)
			fprintf(stderr, "dynoprof: %" PRIu64 " samples taken before their request's "
				"endpoint was known: %" PRIu64 " given it, %" PRIu64 " `unresolved` "
				"(requests that ended with none), %" PRIu64 " `unresolved` unknowing "
				"(open at the end, or out of the request log), %" PRIu64 " in no "
				"request (abandoned), %" PRIu64 " not held (over %d at once)\n",
				st.relabel_held + st.relabel_overflow, st.relabel_resolved,
				st.relabel_unresolved, st.relabel_lost, st.relabel_abandoned,
				st.relabel_overflow, RELABEL_MAX_SAMPLES);
	}
	if (st.kernel_truncated || st.native_truncated)
		fprintf(stderr, "dynoprof:   %" PRIu64 " kernel and %" PRIu64 " native stacks "
			"deeper than kept (marked [truncated])\n", st.kernel_truncated,
			st.native_truncated);
	if (st.bad_records)
		fprintf(stderr, "dynoprof:   %" PRIu64 " malformed records ignored\n",
			st.bad_records);
	if (ss.maps_failures > ss.maps_denied)
		fprintf(stderr, "dynoprof:   %" PRIu64 " processes exited before their "
			"mappings could be read (their user frames show as [unknown])\n",
			ss.maps_failures - ss.maps_denied);
	if (ss.maps_denied)
		fprintf(stderr, "dynoprof:   %" PRIu64 " processes' mappings were not readable "
			"(permission denied, see the capability warning; their user frames show as "
			"[unknown])\n", ss.maps_denied);
	fprintf(stderr, "dynoprof: wrote %s (%s)\n", a->output, format__name(fmt));
}

static void add_live_counts(void *ctx, uint32_t tid, const struct task_counts *tc)
{
	counts_table__add(ctx, tid, tc);
}

static void add_metadata(struct profile *p, struct sampler *s, const struct record_args *a,
			 double start_unix, double elapsed)
{
	uint64_t drops[DROP_REASON_COUNT] = { 0 };
	char line[256];

	profile__set_time(p, (int64_t)(start_unix * 1e9), (int64_t)(elapsed * 1e9));
	profile__set_period(p, "cpu", "nanoseconds", (int64_t)(1e9 / a->freq_hz));
	snprintf(line, sizeof(line), "event: %s at %u Hz%s%s", sampler__event_name(s),
		 a->freq_hz, sampler__event_reason(s)[0] ? "; " : "", sampler__event_reason(s));
	profile__add_comment(p, line);
	sampler__drops(s, drops);
	for (int r = 0; r < DROP_REASON_COUNT; r++)
		if (drops[r]) {
			snprintf(line, sizeof(line), "dropped %" PRIu64 ": %s", drops[r],
				 sampler__drop_reason_name(r));
			profile__add_comment(p, line);
		}
}

int cmd_record(int argc, char **argv)
{
	struct record_args a = { 0 };
	struct launch child = { .gate_fd = -1 };
	struct pipeline *pipe = NULL;
	/* The pipeline's stages (borrowed from pipe), for the summary. */
	struct sampler *sampler = NULL;
	struct symbolizer *sym = NULL;
	struct aggregator *agg = NULL;
	struct py_registry *pyreg = NULL;
	struct py_resolver *pyres = NULL;
	struct tag_registry *tagreg = NULL;
	struct counts_table *counts = NULL;
	struct profile *profile = NULL;
	struct profile *filtered = NULL;
	struct pid_watch watch = { 0 };
	enum output_format fmt;
	char err[512] = "";
	int rc = 1;
	int e;

	e = parse_args(argc, argv, &a);
	if (e) {
		rc = e - 1000;
		goto out;
	}
	/* Privileges first: a user who cannot profile at all should hear that,
	 * not about the output path. */
	if (privileges__check(err, sizeof(err))) {
		cli_error("%s", err);
		rc = 1;
		goto out;
	}
	privileges__warn("dynoprof:");
	if (a.format_name ? format__from_name(a.format_name, &fmt)
			  : format__from_path(a.output, &fmt)) {
		if (a.format_name)
			cli_error("unknown format '%s': use svg, folded, pprof or speedscope",
				  a.format_name);
		else
			cli_error("cannot tell the format of '%s' from its extension: use .svg, "
				  ".folded, .pb.gz or .json, or --format", a.output);
		rc = 2;
		goto out;
	}
	for (size_t i = 0; i < a.npids; i++)
		if (!pid_exists(a.pids[i])) {
			cli_error("no process with PID %u (check `ps -p %u`)", a.pids[i], a.pids[i]);
			rc = 2;
			goto out;
		}
	for (size_t i = 0; i < a.ntids; i++)
		if (!tid_exists(a.tids[i])) {
			cli_error("no thread with TID %u", a.tids[i]);
			rc = 2;
			goto out;
		}
	if (strcmp(a.output, "-") && output__check_writable(a.output, err, sizeof(err))) {
		cli_error("%s", err);
		rc = 2;
		goto out;
	}
	if (a.counts_path && strcmp(a.counts_path, "-") &&
	    outfile__check(a.counts_path, 0, err, sizeof(err))) {
		cli_error("%s", err);
		rc = 2;
		goto out;
	}

	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* The given processes' descendants now: the targets with --children (forks
	 * after the BPF program attached are followed there), else what the
	 * start note and the 0-sample hint name. */
	if (a.npids) {
		e = pid_watch__start(&watch, a.pids, a.npids);
		if (e) {
			cli_error("cannot list the processes' children: %s", strerror(-e));
			goto out;
		}
		if (a.children && watch.walk_cut)
			fprintf(stderr, "dynoprof: warning: more than %d descendant processes: "
				"only the first %d are profiled (and what they fork)\n",
				DESCENDANTS_MAX, DESCENDANTS_MAX);
		if (a.children) {
			uint32_t *all = malloc(watch.procs.count * sizeof(*all));
			if (!all) {
				cli_error("out of memory");
				goto out;
			}
			memcpy(all, watch.procs.pids, watch.procs.count * sizeof(*all));
			free(a.pids);
			a.pids = all;
			a.npids = watch.procs.count;
		}
	}

	uint32_t child_pid = 0;
	if (a.command) {
		e = launch__start(&child, a.command);
		if (e) {
			cli_error("cannot start %s: %s", a.command[0], strerror(-e));
			goto out;
		}
		child_pid = (uint32_t)child.pid;
	}

	profile = profile__new();
	if (!profile) {
		cli_error("out of memory");
		goto out;
	}
	struct pipeline_opts po = {
		.freq_hz = a.freq_hz,
		.event = a.event,
		.period = a.period,
		.pids = a.command ? &child_pid : a.pids,
		.npids = a.command ? 1 : a.npids,
		.tids = a.tids,
		.ntids = a.ntids,
		.follow_children = a.command != NULL || a.children,
		.cgroup_id = a.cgroup ? a.cgroup_ref.id : 0,
		.cgroup_level = a.cgroup_ref.level,
		.counting = !a.no_counts,
		.counter_standin = a.counter_standin,
		.kernel = !a.no_kernel,
		.python = !a.no_python,
		.unwind_table_bytes = a.no_eh_frame ? 0 : (size_t)a.unwind_table_mb << 20,
		.python_lines = a.python_lines,
		.tags = !a.no_tags,
		.env_rules = a.env_rules,
		.n_env_rules = a.nenv_rules,
		.endpoint_rule = a.infer_endpoint ? &a.endpoint_rule : NULL,
		.counts_table = true,
		.window_ns = (uint64_t)(a.window_s * 1e9),
		.window_origin_ns = (uint64_t)(now_s(CLOCK_MONOTONIC) * 1e9),
		.warnings = a.quiet ? NULL : stderr,
		.log_prefix = "dynoprof",
	};
	pipe = pipeline__open(&po, profile, err, sizeof(err));
	if (!pipe) {
		cli_error("%s", err);
		goto out;
	}
	sampler = pipeline__sampler(pipe);
	agg = pipeline__aggregator(pipe);
	sym = pipeline__symbolizer(pipe);
	pyreg = pipeline__python(pipe);
	pyres = pipeline__python_resolver(pipe);
	tagreg = pipeline__tags(pipe);
	counts = pipeline__counts(pipe);
	const struct counter_choice *cc = pipeline__counting(pipe);
	if (a.children) {
		/* Forked between the walk and the attach: a target from now on. */
		struct pid_set late = { 0 };
		e = descendants__collect(&late, watch.procs.pids, watch.nroots);
		for (size_t i = 0; (!e || e == -E2BIG) && i < late.count; i++)
			if (!pid_set__has(&watch.procs, late.pids[i]))
				sampler__add_pid(sampler, late.pids[i]);
		pid_set__free(&late);
	}
	if (!a.quiet) {
		const char *reason = sampler__event_reason(sampler);
		if (a.npids && !a.children)
			pid_watch__note_children(&watch, stderr);
		fprintf(stderr, "dynoprof: sampling %s at %u Hz on %d CPUs (event %s%s%s)%s\n",
			a.command ? a.command[0] : a.children ? "the given processes and their "
			"descendants" : a.npids ? "the given processes" :
			a.ntids ? "the given threads" : "all processes",
			a.freq_hz, sampler__cpu_count(sampler), sampler__event_name(sampler),
			reason[0] ? ": " : "", reason,
			a.duration_s > 0 || a.command ? "" : "; Ctrl-C to stop");
		if (cc)
			fprintf(stderr, "dynoprof: %s\n", cc->reason);
		if (a.cgroup)
			fprintf(stderr, "dynoprof: cgroup filter on: only tasks in %s (and the "
				"cgroups below it)\n", a.cgroup_ref.path);
	}
	/* The command is primed at its first sample: it has not exec'd yet. */
	if (!a.command)
		pipeline__prime(pipe, !a.ntids);

	double start_mono = now_s(CLOCK_MONOTONIC), start_unix = now_s(CLOCK_REALTIME);
	if (a.command && (e = launch__release(&child))) {
		cli_error("cannot start %s: %s", a.command[0], strerror(-e));
		goto out;
	}
	int poll_error = 0;
	while (!stop_requested) {
		e = pipeline__poll(pipe, 100);
		if (e < 0 && e != -EINTR) {
			/* The sampler's own failure, or a record that failed to
			 * aggregate (the pipeline stops on the first). */
			cli_error("reading or aggregating samples failed: %s", strerror(-e));
			poll_error = e;
			break;
		}
		if (a.duration_s > 0 && now_s(CLOCK_MONOTONIC) - start_mono >= a.duration_s)
			break;
		if (a.command && launch__poll(&child))
			break;
	}
	double elapsed = now_s(CLOCK_MONOTONIC) - start_mono;
	sampler__drain(sampler);
	pipeline__read_requests(pipe, 0);
	if (poll_error)
		goto out;
	/* Samples held until their request's endpoint is known go in now. */
	e = aggregator__flush_requests(agg);
	if (e) {
		cli_error("re-labelling whole requests failed: %s", strerror(-e));
		goto out;
	}

	if (counts) {
		sampler__foreach_task_counts(sampler, add_live_counts, counts);
		/* Samples split each process's time; the scheduler says how much. */
		e = counts_table__apportion(counts, profile);
		if (e) {
			cli_error("apportioning exact CPU time failed: %s", strerror(-e));
			goto out;
		}
	}
	add_metadata(profile, sampler, &a, start_unix, elapsed);
	char subtitle[256];
	snprintf(subtitle, sizeof(subtitle), "%s at %u Hz for %.1f s on %d CPUs",
		 sampler__event_name(sampler), a.freq_hz, elapsed, sampler__cpu_count(sampler));
	struct output_opts oo = { .title = "dynoprof", .subtitle = subtitle,
				  .group_keys = a.ngroup_keys ? a.group_keys : NULL,
				  .ngroup_keys = a.ngroup_keys };
	if (a.weight && output__weight_index(profile, a.weight, &oo.value_index, err,
					     sizeof(err))) {
		cli_error("--weight: %s", err);
		goto out;
	}
	const struct profile *result = profile;
	if (a.nfilters) {
		filtered = profile__filtered_copy(profile, a.filters, a.nfilters);
		if (!filtered) {
			cli_error("filtering samples failed: %s", strerror(errno));
			goto out;
		}
		result = filtered;
	}
	e = output__write(result, a.output, fmt, &oo, err, sizeof(err));
	if (e) {
		cli_error("%s", err);
		goto out;
	}
	struct counts_units units = { 0 };
	if (cc) {
		units.instructions = cc->primary == COUNTER_PRIMARY_INSTRUCTIONS;
		units.cycles = cc->cycles;
		units.primary_event = counters__primary_name(cc->primary);
		units.reason = cc->reason;
	}
	if (counts && a.counts_path) {
		struct outfile *cf = outfile__open(a.counts_path, err, sizeof(err));
		e = cf ? counts_table__write_json(counts, result, &units, outfile__stream(cf))
		       : -errno;
		if (cf && e) {
			outfile__abort(cf);
			snprintf(err, sizeof(err), "cannot write counts to %s: %s", a.counts_path,
				 strerror(-e));
		} else if (cf) {
			e = outfile__commit(cf, err, sizeof(err));
		}
		if (e) {
			cli_error("%s", err);
			goto out;
		}
	}
	unsigned tick_hz = sampler__tick_hz(sampler);
	if (tick_hz && a.freq_hz > tick_hz)
		fprintf(stderr, "dynoprof: warning: -e tick: this kernel ticks %u times a second, "
			"so a CPU gave at most %u samples a second, not %u (-e cpu-clock takes "
			"more)\n", tick_hz, tick_hz, a.freq_hz);
	/* Warnings said for the first few processes only: how many more. */
	unwind_registry__summary(pipeline__unwind(pipe), stderr, "dynoprof");
	py_registry__summary(pyreg, "dynoprof", "not named above", 1);
	py_resolver__summary(pyres, "dynoprof", "not named above", 1);
	if (!a.quiet) {
		print_summary(&a, sampler, agg, sym, pyreg, tagreg, profile, elapsed, fmt);
		struct aggregate_stats st;
		aggregator__stats(agg, &st);
		if (!st.samples && a.npids)
			pid_watch__explain_no_samples(&watch, a.children, a.freq_hz, elapsed,
						      stderr);
		if (counts) {
			fprintf(stderr, "dynoprof: top processes by exact CPU time%s:\n",
				units.instructions ? "" : " (instructions: not available here)");
			counts_table__print_top(counts, stderr, 5, &units);
		}
	}
	rc = 0;
	if (a.command) {
		if (!child.exited && stop_requested) {
			launch__kill(&child, SIGTERM);
		}
		if (child.exited)
			rc = launch__exit_code(&child);
	}
out:
	if (a.command && child.pid && !child.exited)
		launch__kill(&child, SIGTERM);
	pipeline__free(pipe);
	profile__free(filtered);
	profile__free(profile);
	pid_watch__free(&watch);
	free(a.pids);
	free(a.tids);
	return rc;
}
