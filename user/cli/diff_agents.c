// SPDX-License-Identifier: MIT
/* Fetching diff sides from many agents at once (see diff_agents.h). */
#include "cli/diff_agents.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/pprof.h"
#include "util/http_get.h"
#include "util/strbuf.h"

/* One job as the threads see it: copies in, results out. */
struct slot {
	char *url;                /* agent base URL (owned copy) */
	char *query;              /* selectors (owned copy) */
	char host[96];            /* result: the host it named */
	char error[400];          /* result: why there is no profile */
	int usage_error;          /* result: the query is malformed */
	struct profile *profile;  /* result (owned until handed to the caller) */
	int done;                 /* results are final */
	int abandoned;            /* the caller gave up: the thread frees the profile */
};

/* What the threads share. Reference-counted: the caller and every thread
 * hold it, the last one out frees it (threads may outlive the deadline). */
struct fetch_ctx {
	pthread_mutex_t lock;      /* guards the fields below and every slot's results */
	pthread_cond_t changed;    /* a job finished */
	struct slot *slots;        /* one per job (owned) */
	size_t n;                  /* jobs */
	size_t next;               /* next job to take */
	size_t ndone;              /* jobs finished */
	int refs;                  /* holders: the caller + running threads */
	int stop;                  /* deadline passed: take no more jobs */
	char token[256];           /* bearer token ("" none), copied */
	int timeout_s;             /* per socket wait */
	size_t max_bytes;          /* per answer */
};

static void ctx_put(struct fetch_ctx *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (!last)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->slots[i].url);
		free(c->slots[i].query);
		profile__free(c->slots[i].profile);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->changed);
	free(c->slots);
	free(c);
}

/* host:port of an http:// URL, for naming an agent that did not name itself. */
static void url_authority(const char *url, char *out, size_t len)
{
	const char *s = strstr(url, "://");
	s = s ? s + 3 : url;
	size_t n = strcspn(s, "/?#");
	snprintf(out, len, "%.*s", (int)n, s);
}

/* The host an answer names ("dynoprof.host=NAME" comment), if any. */
static void answer_host(const struct profile *p, char *out, size_t len)
{
	for (size_t i = 0; i < profile__comment_count(p); i++) {
		const char *c = profile__comment(p, i);
		if (!strncmp(c, "dynoprof.host=", 14) && c[14]) {
			snprintf(out, len, "%s", c + 14);
			return;
		}
	}
}

/* One agent's query into local results (the slot may be abandoned meanwhile). */
static struct profile *fetch_one(const struct fetch_ctx *c, const char *agent,
				 const char *query, char *host, size_t hostlen, char *error,
				 size_t errlen, int *usage_error)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct profile *p = NULL;
	char err[400], line[201];
	size_t alen = strlen(agent);
	while (alen && agent[alen - 1] == '/')
		alen--;
	url_authority(agent, host, hostlen);
	strbuf__printf(&url, "%.*s/debug/pprof/profile", (int)alen, agent);
	int e = http_get__append_query(&url, query, err, sizeof(err));
	if (e) {
		*usage_error = e == -EINVAL;
		snprintf(error, errlen, "%.390s", err);
		goto out;
	}
	/* Without a range: the last hour. */
	if (!strstr(query, "from=") && !strstr(query, "to=") && !strstr(query, "seconds="))
		strbuf__printf(&url, "%cfrom=%lld", strchr(strbuf__str(&url), '?') ? '&' : '?',
			       (long long)time(NULL) - 3600);
	if (strbuf__error(&url)) {
		snprintf(error, errlen, "out of memory");
		goto out;
	}
	/* A live query (`seconds=N`) answers only after N seconds. */
	int timeout_s = c->timeout_s;
	const char *live = strstr(query, "seconds=");
	if (live && (live == query || live[-1] == '&')) {
		long n = strtol(live + 8, NULL, 10);
		if (n > 0 && n <= 3600)
			timeout_s += (int)n;
	}
	int status = http_get(strbuf__str(&url), c->token[0] ? c->token : NULL, c->max_bytes,
			      timeout_s, &body, err, sizeof(err));
	if (status < 0) {
		snprintf(error, errlen, "%.390s", err);
		goto out;
	}
	if (status != 200) {
		snprintf(error, errlen, "agent answered %d for %.150s: %s", status, strbuf__str(&url),
			 http_get__body_line(&body, line, sizeof(line)));
		goto out;
	}
	if (body.len == 0) {
		snprintf(error, errlen, "agent's answer for %.200s is empty", query);
		goto out;
	}
	p = profile__new();
	if (!p) {
		snprintf(error, errlen, "out of memory");
		goto out;
	}
	if ((e = pprof__read_buffer(p, body.data, body.len, err, sizeof(err)))) {
		snprintf(error, errlen, "agent's answer for %.100s is not a profile: %.250s", query, err);
		profile__free(p);
		p = NULL;
		goto out;
	}
	answer_host(p, host, hostlen);
out:
	strbuf__release(&url);
	strbuf__release(&body);
	return p;
}

static void *worker(void *arg)
{
	struct fetch_ctx *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->stop || c->next >= c->n) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		struct slot *s = &c->slots[c->next++];
		pthread_mutex_unlock(&c->lock);

		char host[sizeof(s->host)], error[sizeof(s->error)] = "";
		int usage = 0;
		/* url and query are never written after the start: no lock needed. */
		struct profile *p = fetch_one(c, s->url, s->query, host, sizeof(host), error,
					      sizeof(error), &usage);

		pthread_mutex_lock(&c->lock);
		if (s->abandoned) {
			profile__free(p);
		} else {
			memcpy(s->host, host, sizeof(host));
			memcpy(s->error, error, sizeof(error));
			s->usage_error = usage;
			s->profile = p;
			s->done = 1;
		}
		c->ndone++;
		pthread_cond_broadcast(&c->changed);
		pthread_mutex_unlock(&c->lock);
	}
	ctx_put(c);
	return NULL;
}

int agent_jobs__run(struct agent_job *jobs, size_t n, const struct agent_fetch_opts *o)
{
	struct fetch_ctx *c = calloc(1, sizeof(*c));
	int err = 0;
	if (c)
		c->slots = calloc(n ? n : 1, sizeof(*c->slots));
	for (size_t i = 0; c && c->slots && i < n; i++) {
		c->slots[i].url = strdup(jobs[i].url);
		c->slots[i].query = strdup(jobs[i].query);
		if (!c->slots[i].url || !c->slots[i].query)
			err = -ENOMEM;
		c->n = i + 1;
	}
	if (!c || !c->slots || err) {
		if (c) {
			for (size_t i = 0; c->slots && i < c->n; i++) {
				free(c->slots[i].url);
				free(c->slots[i].query);
			}
			free(c->slots);
			free(c);
		}
		for (size_t i = 0; i < n; i++)
			snprintf(jobs[i].error, sizeof(jobs[i].error), "out of memory");
		return -ENOMEM;
	}
	c->refs = 1;
	c->timeout_s = o->timeout_s > 0 ? o->timeout_s : 1;
	c->max_bytes = o->max_bytes;
	snprintf(c->token, sizeof(c->token), "%s", o->token ? o->token : "");
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->changed, &ca);
	pthread_condattr_destroy(&ca);

	size_t nthreads = n < DIFF_AGENT_PARALLEL ? n : DIFF_AGENT_PARALLEL, started = 0;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (size_t i = 0; i < nthreads; i++) {
		pthread_t t;
		pthread_mutex_lock(&c->lock);
		c->refs++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&t, &attr, worker, c)) {
			pthread_mutex_lock(&c->lock);
			c->refs--;
			pthread_mutex_unlock(&c->lock);
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);

	/* Every round of `started` requests may take timeout_s (per wait), plus
	 * the longest live query's seconds. */
	size_t rounds = started ? (n + started - 1) / started : 0;
	long live_s = 0;
	for (size_t i = 0; i < n; i++) {
		const char *live = strstr(jobs[i].query, "seconds=");
		long v = live && (live == jobs[i].query || live[-1] == '&') ? strtol(live + 8, NULL, 10)
									    : 0;
		if (v > live_s && v <= 3600)
			live_s = v;
	}
	long wait_s = (long)rounds * (c->timeout_s + live_s) + 2;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_s;
	pthread_mutex_lock(&c->lock);
	while (started && c->ndone < n &&
	       pthread_cond_timedwait(&c->changed, &c->lock, &deadline) != ETIMEDOUT)
		;
	c->stop = 1;
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &c->slots[i];
		struct agent_job *j = &jobs[i];
		if (!s->done) {
			s->abandoned = 1;
			url_authority(j->url, j->host, sizeof(j->host));
			if (!started) {
				snprintf(j->error, sizeof(j->error), "cannot start a thread to ask it");
				err = -ENOMEM;
			} else {
				snprintf(j->error, sizeof(j->error), "no answer within %ld s", wait_s);
			}
			continue;
		}
		memcpy(j->host, s->host, sizeof(j->host));
		memcpy(j->error, s->error, sizeof(j->error));
		j->usage_error = s->usage_error;
		j->profile = s->profile;
		j->answered = s->profile != NULL;
		s->profile = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	ctx_put(c);
	return err;
}
