// SPDX-License-Identifier: MIT
/* The tag registry (tags/tag_registry.h) and request counts (tags/requests.h)
 * on a real process using libdynotag (tests/unit/fixtures/dynotag_app.c,
 * linked at test time against libdynotag built from libdynotag/dynotag.c):
 * the library found in its mappings and published for BPF, its process tags
 * and the strings behind the thread tag ids a sample carries, ids that cannot
 * be read (dropped, counted), more pairs than a record holds, torn reads,
 * request counters as increases between polls (an exited process's
 * baselines forgotten), and through the aggregator, what lands on a sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "aggregate/aggregate.h"
#include "tags/requests.h"
#include "tags/tag_registry.h"

static char work_dir[64], src_dir[PATH_MAX];
static pid_t app;
static FILE *app_in, *app_out; /* its stdin (a line: one more request), its stdout */
static uint32_t id_endpoint, id_checkout, id_team, id_red;

/* The repository root: from the source tree, or from .output/tests/. */
static int find_src_dir(void)
{
	char exe[PATH_MAX], candidate[PATH_MAX + 16];
	if (realpath("libdynotag/dynotag.c", exe)) {
		snprintf(src_dir, sizeof(src_dir), "%s", getcwd(candidate, sizeof(candidate)));
		return 0;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(candidate, sizeof(candidate), "%s/../..", exe);
	return realpath(candidate, src_dir) ? 0 : -1;
}

/* Starts work_dir/dynotag_app: *in is its stdin, *out its stdout; line gets
 * its first line (the ids), read once it has set its tags. -1 on failure. */
static pid_t start_app(FILE **in, FILE **out, char *line, size_t len)
{
	int pfd[2], ifd[2];
	if (pipe2(pfd, O_CLOEXEC) || pipe2(ifd, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char exe[128];
		dup2(pfd[1], 1);
		dup2(ifd[0], 0);
		snprintf(exe, sizeof(exe), "%s/dynotag_app", work_dir);
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	close(ifd[0]);
	*out = fdopen(pfd[0], "r");
	*in = fdopen(ifd[1], "w");
	if (!*out || !*in || !fgets(line, (int)len, *out))
		return -1;
	return pid;
}

static int setup(void **state)
{
	(void)state;
	char cmd[4 * PATH_MAX];
	if (find_src_dir())
		return -1;
	snprintf(work_dir, sizeof(work_dir), "/tmp/dynoprof-tags-XXXXXX");
	if (!mkdtemp(work_dir))
		return -1;
	/* The library as libdynotag/Makefile.inc builds it, then the app. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; S='%s';"
		 "gcc -std=gnu11 -D_GNU_SOURCE -O1 -fPIC -fvisibility=hidden -shared "
		 "-Wl,-soname,libdynotag.so.1 -Wl,--version-script=$S/libdynotag/libdynotag.map "
		 "-I$S/bpf $S/libdynotag/dynotag.c -lpthread -o libdynotag.so.1;"
		 "ln -sf libdynotag.so.1 libdynotag.so;"
		 "gcc -O1 -I$S/libdynotag $S/tests/unit/fixtures/dynotag_app.c -L. -ldynotag "
		 "-Wl,-rpath,'%s' -o dynotag_app",
		 work_dir, src_dir, work_dir);
	if (system(cmd))
		return -1;
	char line[128];
	app = start_app(&app_in, &app_out, line, sizeof(line));
	if (app < 0)
		return -1;
	return sscanf(line, "%u %u %u %u", &id_endpoint, &id_checkout, &id_team, &id_red) == 4
	       ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	fclose(app_in); /* EOF: it exits */
	waitpid(app, NULL, 0);
	fclose(app_out);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint32_t published_pid;
static int publish(void *ctx, uint32_t pid, const struct tag_proc *info)
{
	(void)ctx;
	published_pid = info && info->runtime_addr ? pid : 0;
	return 0;
}

static const char *label(const struct tag_labels *l, const char *key)
{
	for (unsigned i = 0; i < l->count; i++)
		if (!strcmp(l->keys[i], key))
			return l->values[i];
	return NULL;
}

static void test_thread_and_process_tags(void **state)
{
	(void)state;
	struct tag_registry_opts o = { .publish = publish };
	struct tag_registry *r = tag_registry__new(&o);
	assert_non_null(r);
	struct tag_labels l;
	struct dynotag_pair pairs[DYNOTAG_MAX_TAGS + 2] = {
		{ id_endpoint, id_checkout }, { id_team, id_red },
	};
	assert_int_equal(tag_registry__labels(r, app, TAG_READ_OK, pairs, 2, &l), 0);
	/* Found and published for BPF. */
	assert_int_equal(published_pid, (uint32_t)app);
	assert_string_equal(label(&l, "service"), "shop");
	assert_string_equal(label(&l, "commit"), "abc123");
	assert_string_equal(label(&l, "endpoint"), "/checkout");
	assert_string_equal(label(&l, "team"), "red");
	struct tag_registry_stats st;
	tag_registry__stats(r, &st);
	assert_int_equal(st.tagged_processes, 1);
	assert_int_equal(st.string_failures, 0);

	/* Ids never published: the label is dropped, counted; never guessed. */
	pairs[1] = (struct dynotag_pair){ 4000, 4001 };
	assert_int_equal(tag_registry__labels(r, app, TAG_READ_OK, pairs, 2, &l), 0);
	assert_null(label(&l, "team"));
	assert_string_equal(label(&l, "endpoint"), "/checkout");
	tag_registry__stats(r, &st);
	assert_true(st.string_failures >= 1);
	/* More pairs than a thread record holds: the excess counted. */
	for (int i = 0; i < DYNOTAG_MAX_TAGS + 2; i++)
		pairs[i] = (struct dynotag_pair){ id_team, id_red };
	assert_int_equal(tag_registry__labels(r, app, TAG_READ_OK, pairs, DYNOTAG_MAX_TAGS + 2,
					      &l), 0);
	tag_registry__stats(r, &st);
	assert_int_equal(st.thread_dropped, 2);
	/* Torn: the thread's tags are left out, the process's stay. */
	assert_int_equal(tag_registry__labels(r, app, TAG_READ_RACE, pairs, 2, &l), 0);
	assert_null(label(&l, "team"));
	assert_string_equal(label(&l, "service"), "shop");
	tag_registry__stats(r, &st);
	assert_int_equal(st.races, 1);

	/* The exit withdraws nothing yet (late samples resolve); eviction does. */
	tag_registry__note_exit(r, app);
	assert_int_equal(tag_registry__labels(r, app, TAG_READ_OK, pairs, 1, &l), 0);
	assert_string_equal(label(&l, "team"), "red");
	tag_registry__free(r);
	assert_int_equal(published_pid, 0);
}

struct seen {
	uint64_t checkout, cart;
	int calls;
};

static void on_requests(void *ctx, pid_t pid, const char *endpoint, uint64_t n)
{
	struct seen *s = ctx;
	assert_int_equal(pid, app);
	s->calls++;
	if (!strcmp(endpoint, "/checkout"))
		s->checkout += n;
	else if (!strcmp(endpoint, "/cart"))
		s->cart += n;
}

static void on_counter(void *ctx, const char *endpoint, uint64_t n)
{
	on_requests(ctx, app, endpoint, n);
}

/* The app begins one more /checkout request (done when it says so). */
static void one_more_request(void)
{
	char line[16];
	fputs("go\n", app_in);
	fflush(app_in);
	assert_non_null(fgets(line, sizeof(line), app_out));
	assert_string_equal(line, "ok\n");
}

static void test_request_counts(void **state)
{
	(void)state;
	struct tag_registry *r = tag_registry__new(NULL);
	assert_non_null(r);
	/* Cumulative counters as the process keeps them. */
	assert_int_equal(tag_registry__requests(r, app, on_counter, &(struct seen){ 0 }), -ENOENT);
	assert_int_equal(tag_registry__touch(r, app), 0);
	struct seen s = { 0 };
	assert_int_equal(tag_registry__requests(r, app, on_counter, &s), 0);
	assert_int_equal(s.checkout, 3);
	assert_int_equal(s.cart, 1);
	/* The tracker: the first reading is a baseline, then increases only. */
	struct request_tracker *t = request_tracker__new();
	assert_non_null(t);
	s = (struct seen){ 0 };
	assert_int_equal(request_tracker__poll(t, r, on_requests, &s), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(request_tracker__poll(t, r, on_requests, &s), 0);
	assert_int_equal(s.calls, 0);
	one_more_request();
	one_more_request();
	assert_int_equal(request_tracker__poll(t, r, on_requests, &s), 1);
	assert_int_equal(s.checkout, 2);
	assert_int_equal(s.cart, 0);
	request_tracker__free(t);
	request_tracker__free(NULL);
	/* Scanning /proc finds it too. */
	assert_true(tag_registry__scan(r) >= 1);
	tag_registry__free(r);
}

struct per_pid {
	pid_t pid;      /* the process counted */
	uint64_t mine;  /* its increases */
	uint64_t other; /* other processes' increases */
};

static void count_pid(void *ctx, pid_t pid, const char *endpoint, uint64_t n)
{
	struct per_pid *c = ctx;
	(void)endpoint;
	if (pid == c->pid)
		c->mine += n;
	else
		c->other += n;
}

/* A second tagged process exits: once the registry swept it, the tracker
 * forgets its baselines (its /checkout and /cart), and only those; the
 * first process's counts go on. */
static void test_request_baselines_of_exited_processes_forgotten(void **state)
{
	(void)state;
	struct tag_registry *r = tag_registry__new(NULL);
	struct request_tracker *t = request_tracker__new();
	assert_non_null(r);
	assert_non_null(t);
	FILE *in2, *out2;
	char line[128];
	pid_t app2 = start_app(&in2, &out2, line, sizeof(line));
	assert_true(app2 > 0);
	assert_int_equal(tag_registry__touch(r, app), 0);
	assert_int_equal(tag_registry__touch(r, app2), 0);
	struct per_pid c = { .pid = app };
	assert_int_equal(request_tracker__poll(t, r, count_pid, &c), 0); /* baselines */
	assert_int_equal(request_tracker__retain(t, r), 0);

	fclose(in2); /* EOF: it exits */
	assert_int_equal(waitpid(app2, NULL, 0), app2);
	fclose(out2);
	tag_registry__note_exit(r, app2);
	assert_int_equal(tag_registry__sweep_exited(r), 0); /* seen exited */
	assert_int_equal(tag_registry__sweep_exited(r), 1); /* forgotten */
	assert_false(tag_registry__tracks(r, app2));
	assert_true(tag_registry__tracks(r, app));
	assert_int_equal(request_tracker__retain(t, r), 2);
	assert_int_equal(request_tracker__retain(t, r), 0);

	one_more_request();
	assert_int_equal(request_tracker__poll(t, r, count_pid, &c), 1);
	assert_int_equal(c.mine, 1);
	assert_int_equal(c.other, 0);
	request_tracker__free(t);
	tag_registry__free(r);
}

static void test_tags_land_on_samples(void **state)
{
	(void)state;
	struct tag_registry *tags = tag_registry__new(NULL);
	struct profile *p = profile__new();
	struct symbolizer *sym = symbolizer__new(0);
	assert_non_null(tags);
	assert_non_null(p);
	assert_non_null(sym);
	struct aggregate_opts o = { .user_frames = 1, .ns_per_sample = 1, .tags = tags };
	struct aggregator *a = aggregator__new(p, sym, &o);
	assert_non_null(a);
	static struct profile_sample_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.hdr.type = PROFILE_EVENT_SAMPLE;
	ev.hdr.pid = ev.hdr.tid = (uint32_t)app;
	ev.ustack_len = 1;
	ev.stack[0] = 0x10;
	ev.tag_status = TAG_READ_OK;
	ev.tag_count = 2;
	ev.tags[0] = (struct dynotag_pair){ id_endpoint, id_checkout };
	ev.tags[1] = (struct dynotag_pair){ id_team, id_red };
	assert_int_equal(aggregator__record(a, &ev, offsetof(struct profile_sample_event, stack) + 8),
			 0);
	assert_int_equal(profile__sample_count(p), 1);
	const struct profile_sample *s = profile__sample(p, 0);
	assert_string_equal(profile__sample_label(p, s, "endpoint"), "/checkout");
	assert_string_equal(profile__sample_label(p, s, "team"), "red");
	assert_string_equal(profile__sample_label(p, s, "service"), "shop");
	struct aggregate_stats st;
	aggregator__stats(a, &st);
	assert_int_equal(st.tagged_samples, 1);
	/* Request counts: the process's tags, the endpoint of the requests. */
	assert_int_equal(aggregator__add_requests(a, app, "/cart", 1, 0), 0);
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		s = profile__sample(p, i);
		if (s->values[profile__find_value(p, "requests")]) {
			assert_string_equal(profile__sample_label(p, s, "endpoint"), "/cart");
			assert_string_equal(profile__sample_label(p, s, "commit"), "abc123");
			assert_null(profile__sample_label(p, s, "team"));
		}
	}
	aggregator__free(a);
	symbolizer__free(sym);
	profile__free(p);
	tag_registry__free(tags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_and_process_tags),
		cmocka_unit_test(test_request_counts),
		cmocka_unit_test(test_request_baselines_of_exited_processes_forgotten),
		cmocka_unit_test(test_tags_land_on_samples),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
