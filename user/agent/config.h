/* config.h - `dynoprof agent` settings: defaults, a config file, and flags.
 *
 * File format: one `key = value` per line; `#` starts a comment; blank lines
 * ignored; unknown keys, bad values (a value is taken whole or refused) and a
 * key given twice are errors (with the line number), so a typo never silently
 * keeps a default. The file is read whole (util/textfile.h): lines of any
 * length up to AGENT_CONFIG_MAX_LINE, never split; NUL bytes, control
 * characters, a byte-order mark, a file that is not regular or is writable by
 * every user are refused. Flags given on the command line win
 * over the file, also after a SIGHUP reload. Every key is listed, with its
 * default, by agent_config__describe() (used by --help and README).
 */
#ifndef DYNOPROF_AGENT_CONFIG_H
#define DYNOPROF_AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Limits of a config file: far above any real one, refused when exceeded. */
#define AGENT_CONFIG_MAX_BYTES (1 << 20)
#define AGENT_CONFIG_MAX_LINE 65536

struct agent_config {
	char listen_address[64];   /* listen: address part (default 127.0.0.1) */
	uint16_t listen_port;      /* listen: port part (default 9464) */
	bool listen_remote;        /* listen_remote: allow a non-loopback address */
	char token_file[256];      /* token_file: bearer token file; "" = no auth */
	unsigned frequency_hz;     /* frequency: samples per second per CPU (19) */
	bool sample_on_tick;       /* event: tick (true) or cpu-clock (false, default) */
	double window_s;           /* window: seconds per history window (10) */
	char database[256];        /* database: SQLite path (/var/lib/dynoprof/history.db) */
	int64_t retention_age_s;   /* retention_age: e.g. 7d (default 7 days) */
	int64_t retention_bytes;   /* retention_size: e.g. 1GiB (default 1 GiB) */
	bool python;               /* python: walk CPython frames (true) */
	bool tags;                 /* tags: read thread tags and environment tags (true) */
	bool kernel;               /* kernel: include kernel frames (true) */
	unsigned unwind_table_mb;  /* unwind_table_mb: native unwind tables' kernel memory,
				    * MiB (32); 0: frame pointers only */
	char endpoint_from[128];   /* endpoint_from: stack rule (django, flask, wsgi,
				    * frame=...), "" = none */
	unsigned max_series;       /* max_series: per metric family (1000) */
	double max_query_s;        /* max_query_seconds: longest ?seconds= (300) */
	int64_t max_range_s;       /* max_query_range: longest from..to (7d) */
	double deploy_check_s;     /* deploy_check_window: seconds compared after a commit
				    * switch (300) */
	double deploy_min_effect;  /* deploy_check_min_effect: verdict threshold (0.02) */
	double deploy_confidence;  /* deploy_check_confidence: interval level (0.95) */
	char host[65];             /* host: this host's name in API answers and fleet
				    * diffs; "" = gethostname() */
	char cgroup[256];          /* cgroup: profile only tasks in this cgroup v2 (or
				    * below it); "" = every task (restart to change) */
};

/* Fills c with the defaults. */
void agent_config__defaults(struct agent_config *c);

/* Applies one `key = value` setting. Returns 0, or -EINVAL / -ENOENT (unknown
 * key) with a message in err. */
int agent_config__set(struct agent_config *c, const char *key, const char *value, char *err,
		      size_t errlen);

/* Reads a config file over c: keys it sets change, the others keep their
 * values; on any error c is left exactly as it was. Returns 0 or -errno with
 * "FILE:LINE: message" (or "FILE: message"). */
int agent_config__load(struct agent_config *c, const char *path, char *err, size_t errlen);

/* The same for len bytes of config text at data, named name in messages
 * (for fuzzing and tests: no file checks). */
int agent_config__parse(struct agent_config *c, const char *name, const void *data, size_t len,
			char *err, size_t errlen);

/* Prints every key with its default and meaning. */
void agent_config__describe(FILE *out);

/* key's meaning (NULL for an unknown key); *def gets its default (NULL: none). */
const char *agent_config__key_help(const char *key, const char **def);

/* Parses a duration (util/duration.h: "7d", "12h", "30m", "45s", "3600")
 * into whole seconds (a fraction is dropped). */
int parse_duration_s(const char *text, int64_t *seconds);
/* Parses "1GiB", "512MiB", "100MB", "4096" into bytes. */
int parse_bytes(const char *text, int64_t *bytes);

#endif
