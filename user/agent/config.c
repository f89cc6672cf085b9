// SPDX-License-Identifier: MIT
#include "agent/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/duration.h"
#include "util/textfile.h"

/* The keys, their defaults and meanings: the one list --help and the parser share. */
static const struct {
	const char *key;
	const char *def;
	const char *help;
} keys[] = {
	{ "listen", "127.0.0.1:9464", "HTTP address:port ([::1]:9464 for IPv6)" },
	{ "listen_remote", "false", "allow a non-loopback listen address" },
	{ "token_file", "", "file holding a bearer token required on every request" },
	{ "frequency", "19", "samples per second per CPU (1..1000)" },
	{ "event", "cpu-clock", "what takes samples: cpu-clock (a timer per CPU) or tick (the "
				"scheduler tick: no interrupts of its own; frequency <= HZ)" },
	{ "window", "10", "length of a history window (1..3600 s; s, m)" },
	{ "database", "/var/lib/dynoprof/history.db", "SQLite history (WAL)" },
	{ "retention_age", "7d", "drop windows older than this (s, m, h, d)" },
	{ "retention_size", "1GiB", "keep the database under this size (KiB, MiB, GiB)" },
	{ "python", "true", "walk CPython 3.8-3.13 frames" },
	{ "tags", "true", "read libdynotag thread tags and environment tags" },
	{ "kernel", "true", "include kernel frames" },
	{ "unwind_table_mb", "32", "kernel memory for native unwind tables from .eh_frame CFI "
				  "(0..4096 MiB; 0: frame pointers only)" },
	{ "endpoint_from", "", "infer endpoints from stacks: django, flask, wsgi, frame=SUFFIX" },
	{ "max_series", "1000", "series per metric family before folding into __other__" },
	{ "max_query_seconds", "300", "longest /debug/pprof/profile?seconds= (1..3600 s; s, m)" },
	{ "max_query_range", "7d", "longest from..to range of a history query" },
	{ "deploy_check_window", "5m", "after a commit switch, compare this long of each "
					"commit (s, m, h)" },
	{ "deploy_check_min_effect", "0.02", "smallest CPU change a deploy check reports" },
	{ "deploy_check_confidence", "0.95", "confidence of a deploy check's interval (0.5-0.9999;"
					     " higher: fewer false alarms, fewer finds)" },
	{ "host", "", "this host's name in pprof answers, /healthz and fleet diffs "
		      "(default: the hostname)" },
	{ "cgroup", "", "profile only tasks in this cgroup v2 or below it (a path, or a name "
			"under /sys/fs/cgroup)" },
};

void agent_config__describe(FILE *out)
{
	int width = 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((int)strlen(keys[i].key) > width)
			width = (int)strlen(keys[i].key);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		fprintf(out, "  %-*s %-28s %s\n", width, keys[i].key,
			keys[i].def[0] ? keys[i].def : "(none)", keys[i].help);
}

const char *agent_config__key_help(const char *key, const char **def)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].key, key)) {
			*def = keys[i].def[0] ? keys[i].def : NULL;
			return keys[i].help;
		}
	*def = NULL;
	return NULL;
}

void agent_config__defaults(struct agent_config *c)
{
	char err[128];
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		agent_config__set(c, keys[i].key, keys[i].def, err, sizeof(err));
}

/* Parses a plain decimal number ("12", "0.5") at the start of text: no sign,
 * space, exponent, hex, inf or nan, so that what a value means is what it
 * looks like. *end gets the first byte after it. */
static int parse_decimal(const char *text, double *v, const char **end)
{
	size_t n = strspn(text, "0123456789.");
	char *e;
	if (!n)
		return -EINVAL;
	errno = 0;
	*v = strtod(text, &e);
	if (errno || e != text + n || !isfinite(*v))
		return -EINVAL;
	*end = e;
	return 0;
}

int parse_duration_s(const char *text, int64_t *seconds)
{
	double v;
	if (duration__parse(text, &v))
		return -EINVAL;
	*seconds = (int64_t)v;
	return 0;
}

/* A duration (util/duration.h) of whole seconds from lo to hi: "10", "10s", "1m". */
static int parse_whole_seconds(const char *text, unsigned lo, unsigned hi, unsigned *out)
{
	double v;
	if (duration__parse(text, &v) || v != floor(v) || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int parse_bytes(const char *text, int64_t *bytes)
{
	const char *end;
	double v;
	if (parse_decimal(text, &v, &end))
		return -EINVAL;
	static const struct { const char *suffix; double mult; } units[] = {
		{ "", 1 }, { "B", 1 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 },
		{ "GiB", 1073741824.0 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].suffix)) {
			if (v * units[i].mult > 1e15)
				return -EINVAL;
			*bytes = (int64_t)(v * units[i].mult);
			return 0;
		}
	return -EINVAL;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* Digits only: strtoul alone would take a sign, leading space or "0x". */
static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	if (!*v || v[strspn(v, "0123456789")])
		return -EINVAL;
	errno = 0;
	unsigned long n = strtoul(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int parse_listen(const char *v, struct agent_config *c)
{
	const char *colon;
	char addr[64];
	if (v[0] == '[') { /* [::1]:9464 */
		const char *close = strchr(v, ']');
		if (!close || close[1] != ':' || (size_t)(close - v - 1) >= sizeof(addr))
			return -EINVAL;
		memcpy(addr, v + 1, (size_t)(close - v - 1));
		addr[close - v - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(v, ':');
		if (!colon || (size_t)(colon - v) >= sizeof(addr) || colon == v)
			return -EINVAL;
		memcpy(addr, v, (size_t)(colon - v));
		addr[colon - v] = '\0';
	}
	unsigned port;
	if (parse_uint(colon + 1, 0, 65535, &port))
		return -EINVAL;
	snprintf(c->listen_address, sizeof(c->listen_address), "%s", addr);
	c->listen_port = (uint16_t)port;
	return 0;
}

/* Copies value into a string setting of size bytes; a value that does not
 * fit (or is empty when that is not allowed) is refused, leaving dst as it was. */
static int set_string(char *dst, size_t size, const char *value, bool allow_empty)
{
	size_t len = strlen(value);
	if (len >= size || (!len && !allow_empty))
		return -EINVAL;
	memcpy(dst, value, len + 1);
	return 0;
}

int agent_config__set(struct agent_config *c, const char *key, const char *value, char *err,
		      size_t errlen)
{
	int e = 0;
	unsigned u;
	int64_t n;
	if (!strcmp(key, "listen"))
		e = parse_listen(value, c);
	else if (!strcmp(key, "listen_remote"))
		e = parse_bool(value, &c->listen_remote);
	else if (!strcmp(key, "token_file"))
		e = set_string(c->token_file, sizeof(c->token_file), value, true);
	else if (!strcmp(key, "host"))
		e = strpbrk(value, " \t\"'\\=&") ? -EINVAL
						  : set_string(c->host, sizeof(c->host), value, true);
	else if (!strcmp(key, "cgroup"))
		e = set_string(c->cgroup, sizeof(c->cgroup), value, true);
	else if (!strcmp(key, "frequency"))
		e = parse_uint(value, 1, 1000, &c->frequency_hz);
	else if (!strcmp(key, "event")) {
		if (!strcmp(value, "tick") || !strcmp(value, "cpu-clock"))
			c->sample_on_tick = !strcmp(value, "tick");
		else
			e = -EINVAL;
	}
	else if (!strcmp(key, "window")) {
		e = parse_whole_seconds(value, 1, 3600, &u);
		if (!e)
			c->window_s = u;
	} else if (!strcmp(key, "database"))
		e = set_string(c->database, sizeof(c->database), value, false);
	else if (!strcmp(key, "retention_age")) {
		e = parse_duration_s(value, &n);
		if (!e && n < 60)
			e = -EINVAL;
		if (!e)
			c->retention_age_s = n;
	} else if (!strcmp(key, "retention_size")) {
		e = parse_bytes(value, &n);
		if (!e && n < (1 << 20))
			e = -EINVAL;
		if (!e)
			c->retention_bytes = n;
	} else if (!strcmp(key, "python"))
		e = parse_bool(value, &c->python);
	else if (!strcmp(key, "tags"))
		e = parse_bool(value, &c->tags);
	else if (!strcmp(key, "kernel"))
		e = parse_bool(value, &c->kernel);
	else if (!strcmp(key, "unwind_table_mb"))
		e = parse_uint(value, 0, 4096, &c->unwind_table_mb);
	else if (!strcmp(key, "endpoint_from"))
		e = set_string(c->endpoint_from, sizeof(c->endpoint_from), value, true);
	else if (!strcmp(key, "max_series"))
		e = parse_uint(value, 10, 1000000, &c->max_series);
	else if (!strcmp(key, "max_query_seconds")) {
		e = parse_whole_seconds(value, 1, 3600, &u);
		if (!e)
			c->max_query_s = u;
	} else if (!strcmp(key, "max_query_range")) {
		e = parse_duration_s(value, &n);
		if (!e && n < 1)
			e = -EINVAL;
		if (!e)
			c->max_range_s = n;
	} else if (!strcmp(key, "deploy_check_window")) {
		e = parse_duration_s(value, &n);
		if (!e && (n < 5 || n > 86400))
			e = -EINVAL;
		if (!e)
			c->deploy_check_s = (double)n;
	} else if (!strcmp(key, "deploy_check_min_effect")) {
		const char *end = value;
		double v = 0;
		e = parse_decimal(value, &v, &end) || *end || !(v > 0 && v < 10) ? -EINVAL : 0;
		if (!e)
			c->deploy_min_effect = v;
	} else if (!strcmp(key, "deploy_check_confidence")) {
		const char *end = value;
		double v = 0;
		e = parse_decimal(value, &v, &end) || *end || !(v >= 0.5 && v <= 0.9999) ? -EINVAL
											  : 0;
		if (!e)
			c->deploy_confidence = v;
	} else {
		char shown[160];
		snprintf(err, errlen, "unknown key '%s' (see `dynoprof agent --help`)",
			 textfile__escape(key, shown, sizeof(shown)));
		return -ENOENT;
	}
	if (e) {
		char shown[160];
		snprintf(err, errlen, "bad value '%s' for %s",
			 textfile__escape(value, shown, sizeof(shown)), key);
	}
	return e ? -EINVAL : 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Index of key in keys[], or -1. */
static int key_index(const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].key, key))
			return (int)i;
	return -1;
}

/* Applies t's lines over c; c changes only if every line is good. */
static int parse_lines(struct agent_config *c, struct textfile *t, const char *name, char *err,
		       size_t errlen)
{
	struct agent_config next = *c;
	int seen_on[sizeof(keys) / sizeof(keys[0])] = { 0 };
	char msg[256];
	char *line;
	int e;

	while ((line = textfile__next_line(t))) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected `key = value`", name, t->lineno);
			return -EINVAL;
		}
		*eq = '\0';
		const char *key = trim(s);
		int k = key_index(key);
		if (k >= 0 && seen_on[k]) {
			snprintf(err, errlen, "%s:%d: %s is already set on line %d (say it once)",
				 name, t->lineno, key, seen_on[k]);
			return -EINVAL;
		}
		e = agent_config__set(&next, key, trim(eq + 1), msg, sizeof(msg));
		if (e) {
			snprintf(err, errlen, "%s:%d: %s", name, t->lineno, msg);
			return e;
		}
		if (k >= 0)
			seen_on[k] = t->lineno;
	}
	*c = next;
	return 0;
}

int agent_config__parse(struct agent_config *c, const char *name, const void *data, size_t len,
			char *err, size_t errlen)
{
	struct textfile t;
	int e = textfile__from_buffer(&t, name, data, len, AGENT_CONFIG_MAX_BYTES,
				      AGENT_CONFIG_MAX_LINE, err, errlen);
	if (e)
		return e;
	e = parse_lines(c, &t, name, err, errlen);
	textfile__free(&t);
	return e;
}

int agent_config__load(struct agent_config *c, const char *path, char *err, size_t errlen)
{
	struct textfile t;
	struct stat st;
	int e;

	e = textfile__read(&t, path, AGENT_CONFIG_MAX_BYTES, AGENT_CONFIG_MAX_LINE, err, errlen);
	if (e)
		return e;
	/* Whoever can write the file can make the agent listen anywhere. */
	if (!stat(path, &st) && (st.st_mode & S_IWOTH)) {
		snprintf(err, errlen, "%s: writable by every user: refused (chmod o-w %s)", path,
			 path);
		e = -EPERM;
	} else {
		e = parse_lines(c, &t, path, err, errlen);
	}
	textfile__free(&t);
	return e;
}
