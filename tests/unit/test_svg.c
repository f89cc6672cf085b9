// SPDX-License-Identifier: MIT
/* Unit tests of the SVG flame graph writer: the file parses as XML, every
 * function shows with the right count and share, colours follow the frame
 * kind, names are escaped and cut to fit, empty and huge profiles stay valid
 * and bounded. test_known_profile also leaves the graph in SVG_SAMPLE_PATH for
 * tests/integration/test_svg_browser.py to open in a browser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "formats/svg.h"
#include "profile/profile.h"

#define SVG_SAMPLE_PATH "/tmp/dynoprof-test-svg.svg"

/* Adds a frame and returns its id. */
static uint32_t frame(struct profile *p, enum frame_kind kind, const char *name,
		      const char *module, const char *file, uint32_t line)
{
	struct frame_desc d = { .kind = kind, .name = name, .module = module, .file = file,
				.line = line };
	uint32_t id;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	return id;
}

static void sample(struct profile *p, const char *comm, const uint32_t *frames, uint32_t n,
		   uint64_t count)
{
	uint64_t values[PROFILE_MAX_VALUES] = { count, count * 1000 };
	struct sample_desc s = { .frames = frames, .nframes = n, .pid = 42, .tid = 42,
				 .comm = comm, .values = values };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

/* 100 samples: python3 (80) running Python over CPython, with a kernel read
 * path into the ext4 module; nginx (20) waiting in epoll. */
static struct profile *known_profile(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	assert_true(profile__add_value_type(p, "cpu", "nanoseconds") >= 0);
	uint32_t start = frame(p, FRAME_NATIVE, "_start", "/usr/bin/python3", NULL, 0);
	uint32_t cmain = frame(p, FRAME_NATIVE, "main", "/usr/bin/python3", NULL, 0);
	uint32_t runmain = frame(p, FRAME_NATIVE, "Py_RunMain", "/usr/bin/python3", NULL, 0);
	uint32_t pymain = frame(p, FRAME_PYTHON, "main", NULL, "app.py", 10);
	uint32_t handle = frame(p, FRAME_PYTHON, "handle", NULL, "app.py", 20);
	uint32_t compute = frame(p, FRAME_PYTHON, "compute", NULL, "app.py", 30);
	uint32_t parse = frame(p, FRAME_PYTHON, "parse_json", NULL, "json.py", 5);
	uint32_t entry = frame(p, FRAME_KERNEL, "entry_SYSCALL_64", "[kernel.kallsyms]", NULL, 0);
	uint32_t dosys = frame(p, FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", NULL, 0);
	uint32_t ext4 = frame(p, FRAME_KERNEL, "ext4_file_read_iter", "ext4", NULL, 0);
	uint32_t events = frame(p, FRAME_NATIVE, "ngx_process_events", "/usr/sbin/nginx", NULL, 0);
	uint32_t epoll = frame(p, FRAME_KERNEL, "do_epoll_wait", "[kernel.kallsyms]", NULL, 0);

	sample(p, "python3", (uint32_t[]){ start, cmain, runmain, pymain, handle, compute }, 6, 50);
	sample(p, "python3", (uint32_t[]){ start, cmain, runmain, pymain, handle, parse }, 6, 20);
	sample(p, "python3",
	       (uint32_t[]){ start, cmain, runmain, pymain, handle, entry, dosys, ext4 }, 8, 10);
	sample(p, "nginx", (uint32_t[]){ start, cmain, events, entry, dosys, epoll }, 6, 20);
	return p;
}

/* Renders p into a NUL-terminated heap string; asserts svg__write returns 0. */
static char *render(const struct profile *p, const struct svg_opts *opts)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(svg__write(p, f, opts), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

/* True when a real XML parser accepts svg. */
static int is_well_formed_xml(const char *svg)
{
	FILE *py = popen("/usr/bin/python3 -c 'import xml.dom.minidom,sys; "
			 "xml.dom.minidom.parse(sys.stdin.buffer)'", "w");
	assert_non_null(py);
	fwrite(svg, 1, strlen(svg), py);
	int status = pclose(py);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Returns the <g> start tag of the frame whose tooltip is exactly `tooltip`
 * (as written, i.e. escaped), copied into buf; asserts the frame is there. */
static const char *frame_tag(const char *svg, const char *tooltip, char *buf, size_t len)
{
	char needle[512];
	snprintf(needle, sizeof(needle), "><title>%s</title>", tooltip);
	const char *hit = strstr(svg, needle);
	if (!hit)
		fail_msg("no frame titled \"%s\"", tooltip);
	const char *g = hit;
	while (g > svg && strncmp(g, "<g ", 3) != 0)
		g--;
	size_t n = (size_t)(hit - g) + 1;
	assert_true(n < len);
	memcpy(buf, g, n);
	buf[n] = '\0';
	return buf;
}

/* Returns the fill attribute of the frame titled tooltip, copied into buf. */
static const char *frame_fill(const char *svg, const char *tooltip, char *buf, size_t len)
{
	char needle[512];
	snprintf(needle, sizeof(needle), "<title>%s</title>", tooltip);
	const char *hit = strstr(svg, needle);
	assert_non_null(hit);
	const char *fill = strstr(hit, "fill=\"");
	assert_non_null(fill);
	fill += 6;
	size_t n = strcspn(fill, "\"");
	assert_true(n < len);
	memcpy(buf, fill, n);
	buf[n] = '\0';
	return buf;
}

/* Returns the y of the frame titled tooltip. */
static int frame_y(const char *svg, const char *tooltip)
{
	char needle[512];
	snprintf(needle, sizeof(needle), "<title>%s</title>", tooltip);
	const char *hit = strstr(svg, needle);
	assert_non_null(hit);
	const char *y = strstr(hit, " y=\"");
	assert_non_null(y);
	return atoi(y + 4);
}

static size_t occurrences(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_known_profile(void **state)
{
	(void)state;
	struct profile *p = known_profile();
	struct svg_opts opts = { .subtitle = "4 stacks, 100 samples in 1.0 s" };
	char *svg = render(p, &opts);
	assert_true(is_well_formed_xml(svg));

	/* Keep the graph for the browser test. */
	FILE *f = fopen(SVG_SAMPLE_PATH, "w");
	assert_non_null(f);
	fputs(svg, f);
	assert_int_equal(fclose(f), 0);

	char tag[512];
	static const char *const tooltips[] = {
		"all (100 samples, 100.00%)",
		"python3 (80 samples, 80.00%)",
		"nginx (20 samples, 20.00%)",
		"_start (80 samples, 80.00%)",
		"_start (20 samples, 20.00%)",
		"main (80 samples, 80.00%)",
		"main (20 samples, 20.00%)",
		"Py_RunMain (80 samples, 80.00%)",
		"main (app.py:10) (80 samples, 80.00%)",
		"handle (app.py:20) (80 samples, 80.00%)",
		"compute (app.py:30) (50 samples, 50.00%)",
		"parse_json (json.py:5) (20 samples, 20.00%)",
		"entry_SYSCALL_64 (10 samples, 10.00%)",
		"entry_SYSCALL_64 (20 samples, 20.00%)",
		"ext4_file_read_iter [ext4] (10 samples, 10.00%)",
		"ngx_process_events (20 samples, 20.00%)",
		"do_epoll_wait (20 samples, 20.00%)",
	};
	for (size_t i = 0; i < sizeof(tooltips) / sizeof(tooltips[0]); i++)
		frame_tag(svg, tooltips[i], tag, sizeof(tag));
	/* 18 distinct call paths plus the root, each drawn once. */
	assert_int_equal(occurrences(svg, "<g class=\"frame "), 19);
	assert_non_null(strstr(svg, ">dynoprof</text>"));
	assert_non_null(strstr(svg, ">4 stacks, 100 samples in 1.0 s</text>"));
	assert_non_null(strstr(svg, ">Search</text>"));
	assert_non_null(strstr(svg, ">Reset Zoom</text>"));
	/* Self-contained: nothing is fetched. */
	assert_null(strstr(svg, "href"));
	assert_null(strstr(svg, "http://www.w3.org/2000/svg\" src"));
	free(svg);
	profile__free(p);
}

static void test_colour_classes_follow_kind(void **state)
{
	(void)state;
	struct profile *p = known_profile();
	char *svg = render(p, NULL);
	char tag[512];
	assert_non_null(strstr(frame_tag(svg, "do_epoll_wait (20 samples, 20.00%)", tag, sizeof(tag)),
			       "class=\"frame kernel\""));
	assert_non_null(strstr(frame_tag(svg, "ext4_file_read_iter [ext4] (10 samples, 10.00%)", tag,
					 sizeof(tag)), "class=\"frame kernel\""));
	assert_non_null(strstr(frame_tag(svg, "compute (app.py:30) (50 samples, 50.00%)", tag,
					 sizeof(tag)), "class=\"frame python\""));
	assert_non_null(strstr(frame_tag(svg, "Py_RunMain (80 samples, 80.00%)", tag, sizeof(tag)),
			       "class=\"frame native\""));
	assert_non_null(strstr(frame_tag(svg, "nginx (20 samples, 20.00%)", tag, sizeof(tag)),
			       "class=\"frame special\""));
	assert_non_null(strstr(frame_tag(svg, "all (100 samples, 100.00%)", tag, sizeof(tag)),
			       "class=\"frame special\""));

	/* A function keeps its colour wherever it appears. */
	char a[64], b[64];
	frame_fill(svg, "main (80 samples, 80.00%)", a, sizeof(a));
	frame_fill(svg, "main (20 samples, 20.00%)", b, sizeof(b));
	assert_string_equal(a, b);
	frame_fill(svg, "entry_SYSCALL_64 (10 samples, 10.00%)", a, sizeof(a));
	frame_fill(svg, "entry_SYSCALL_64 (20 samples, 20.00%)", b, sizeof(b));
	assert_string_equal(a, b);
	/* Kernel frames are orange: strong red, middling green, little blue. */
	int r, g, bl;
	assert_int_equal(sscanf(a, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(r > 200 && g >= 110 && g <= 155 && bl < 40);
	/* Native frames are red or yellow, never kernel orange. */
	frame_fill(svg, "main (80 samples, 80.00%)", a, sizeof(a));
	assert_int_equal(sscanf(a, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(r > 200 && (g <= 90 || g >= 180));
	frame_fill(svg, "Py_RunMain (80 samples, 80.00%)", a, sizeof(a));
	assert_int_equal(sscanf(a, "rgb(%d,%d,%d)", &r, &g, &bl), 3);
	assert_true(r > 200 && (g <= 90 || g >= 180));
	free(svg);
	profile__free(p);
}

static void test_escapes_markup_in_names(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	uint32_t op = frame(p, FRAME_NATIVE, "operator<&>\"x\"'y'", NULL, NULL, 0);
	uint32_t tmpl = frame(p, FRAME_NATIVE, "std::vector<int>::push_back", NULL, NULL, 0);
	uint32_t bad = frame(p, FRAME_NATIVE, "bad\x01utf8\xff\xfe end", NULL, NULL, 0);
	uint32_t uni = frame(p, FRAME_PYTHON, "h\xc3\xa9llo", NULL, "caf\xc3\xa9.py", 3);
	sample(p, "a<b>&c", (uint32_t[]){ op, tmpl }, 2, 3);
	sample(p, "a<b>&c", (uint32_t[]){ bad, uni }, 2, 1);
	struct svg_opts opts = { .title = "<title & \"co\">", .subtitle = "]]> <!--" };
	char *svg = render(p, &opts);
	assert_true(is_well_formed_xml(svg));
	char tag[512];
	frame_tag(svg, "operator&lt;&amp;&gt;&quot;x&quot;&#39;y&#39; (3 samples, 75.00%)", tag,
		  sizeof(tag));
	frame_tag(svg, "std::vector&lt;int&gt;::push_back (3 samples, 75.00%)", tag, sizeof(tag));
	frame_tag(svg, "a&lt;b&gt;&amp;c (4 samples, 100.00%)", tag, sizeof(tag));
	/* Bytes that are not UTF-8 (or not XML) become '?', valid UTF-8 stays. */
	frame_tag(svg, "bad?utf8?? end (1 sample, 25.00%)", tag, sizeof(tag));
	frame_tag(svg, "h\xc3\xa9llo (caf\xc3\xa9.py:3) (1 sample, 25.00%)", tag, sizeof(tag));
	assert_null(strstr(svg, "operator<"));
	assert_null(strstr(svg, "vector<int>"));
	assert_non_null(strstr(svg, ">&lt;title &amp; &quot;co&quot;&gt;</text>"));
	free(svg);
	profile__free(p);
}

static void test_empty_profile_says_no_samples(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	/* No value types at all. */
	char *svg = render(p, NULL);
	assert_true(is_well_formed_xml(svg));
	assert_non_null(strstr(svg, ">no samples</text>"));
	assert_int_equal(occurrences(svg, "<g class=\"frame "), 0);
	free(svg);

	/* A value type, and a sample whose chosen value is 0. */
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	uint32_t f = frame(p, FRAME_NATIVE, "idle", NULL, NULL, 0);
	sample(p, "swapper", (uint32_t[]){ f }, 1, 0);
	svg = render(p, NULL);
	assert_true(is_well_formed_xml(svg));
	assert_non_null(strstr(svg, ">no samples</text>"));
	assert_null(strstr(svg, "idle"));
	free(svg);
	profile__free(p);
}

static void test_narrow_frames_skipped_but_counted(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	uint32_t big = frame(p, FRAME_NATIVE, "big", NULL, NULL, 0);
	uint32_t tiny = frame(p, FRAME_NATIVE, "tiny", NULL, NULL, 0);
	uint32_t tiny_child = frame(p, FRAME_NATIVE, "tiny_child", NULL, NULL, 0);
	sample(p, NULL, (uint32_t[]){ big }, 1, 29999);
	sample(p, NULL, (uint32_t[]){ tiny, tiny_child }, 2, 1);

	/* 1/30000 of 1180 px is 0.04 px: below the 0.1 px default. */
	char *svg = render(p, NULL);
	assert_true(is_well_formed_xml(svg));
	char tag[512];
	frame_tag(svg, "all (30,000 samples, 100.00%)", tag, sizeof(tag));
	frame_tag(svg, "big (29,999 samples, 100.00%)", tag, sizeof(tag));
	assert_null(strstr(svg, "tiny"));
	free(svg);

	struct svg_opts all = { .min_frame_px = 1e-9 };
	svg = render(p, &all);
	frame_tag(svg, "tiny (1 sample, 0.00%)", tag, sizeof(tag));
	frame_tag(svg, "tiny_child (1 sample, 0.00%)", tag, sizeof(tag));
	free(svg);
	profile__free(p);
}

static void test_output_is_bounded_for_many_stacks(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	uint32_t root = frame(p, FRAME_NATIVE, "root", NULL, NULL, 0);
	char name[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "leaf_%d", i);
		uint32_t leaf = frame(p, FRAME_NATIVE, name, NULL, NULL, 0);
		sample(p, NULL, (uint32_t[]){ root, leaf }, 2, 1);
	}
	/* 20000 leaves of 0.059 px each: none drawn at the default minimum. */
	char *svg = render(p, NULL);
	assert_int_equal(occurrences(svg, "<g class=\"frame "), 2);
	assert_true(strlen(svg) < 64 * 1024);
	free(svg);
	profile__free(p);
}

static void test_long_names_cut_to_fit(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	char longname[401];
	memset(longname, 'x', 400);
	longname[400] = '\0';
	uint32_t f = frame(p, FRAME_NATIVE, longname, NULL, NULL, 0);
	uint32_t g = frame(p, FRAME_NATIVE, "g", NULL, NULL, 0);
	sample(p, NULL, (uint32_t[]){ f }, 1, 9);
	sample(p, NULL, (uint32_t[]){ g }, 1, 1);
	struct svg_opts opts = { .width = 600 };
	char *svg = render(p, &opts);
	/* The tooltip has the whole name, the label a shortened one ending "..". */
	char tooltip[512];
	snprintf(tooltip, sizeof(tooltip), "<title>%s (9 samples, 90.00%%)</title>", longname);
	const char *hit = strstr(svg, tooltip);
	assert_non_null(hit);
	const char *text = strstr(hit, "<text ");
	assert_non_null(text);
	text = strchr(text, '>') + 1;
	size_t label_len = strcspn(text, "<");
	assert_true(label_len > 10 && label_len < 100);
	assert_memory_equal(text + label_len - 2, "..", 2);
	/* Frame "g" is 58 px wide: 7 characters fit, so its label is whole. */
	assert_non_null(strstr(svg, ">g</text>"));
	free(svg);
	profile__free(p);
}

static void test_value_index_and_units(void **state)
{
	(void)state;
	struct profile *p = known_profile();
	struct svg_opts opts = { .value_index = 1, .title = "CPU time" };
	char *svg = render(p, &opts);
	char tag[512];
	frame_tag(svg, "all (100,000 nanoseconds, 100.00%)", tag, sizeof(tag));
	frame_tag(svg, "compute (app.py:30) (50,000 nanoseconds, 50.00%)", tag, sizeof(tag));
	free(svg);

	opts.value_index = 2;
	FILE *f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(svg__write(p, f, &opts), -EINVAL);
	assert_int_equal(svg__write(NULL, f, NULL), -EINVAL);
	assert_int_equal(svg__write(p, NULL, NULL), -EINVAL);
	fclose(f);
	profile__free(p);
}

static void test_icicle_puts_root_on_top(void **state)
{
	(void)state;
	struct profile *p = known_profile();
	char *flame = render(p, NULL);
	struct svg_opts opts = { .reverse = 1 };
	char *icicle = render(p, &opts);
	const char *root = "all (100 samples, 100.00%)";
	const char *leaf = "compute (app.py:30) (50 samples, 50.00%)";
	assert_true(frame_y(flame, root) > frame_y(flame, leaf));
	assert_true(frame_y(icicle, root) < frame_y(icicle, leaf));
	assert_true(is_well_formed_xml(icicle));
	free(flame);
	free(icicle);
	profile__free(p);
}

static void test_same_profile_same_bytes(void **state)
{
	(void)state;
	struct profile *p = known_profile();
	char *a = render(p, NULL);
	char *b = render(p, NULL);
	assert_string_equal(a, b);
	free(a);
	free(b);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_profile),
		cmocka_unit_test(test_colour_classes_follow_kind),
		cmocka_unit_test(test_escapes_markup_in_names),
		cmocka_unit_test(test_empty_profile_says_no_samples),
		cmocka_unit_test(test_narrow_frames_skipped_but_counted),
		cmocka_unit_test(test_output_is_bounded_for_many_stacks),
		cmocka_unit_test(test_long_names_cut_to_fit),
		cmocka_unit_test(test_value_index_and_units),
		cmocka_unit_test(test_icicle_puts_root_on_top),
		cmocka_unit_test(test_same_profile_same_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
