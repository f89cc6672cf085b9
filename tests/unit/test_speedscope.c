// SPDX-License-Identifier: MIT
/* speedscope JSON: validated by Python's json module, then checked for the
 * frames, per-process profiles and weights a user would see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include <cmocka.h>

#include "formats/speedscope.h"
#include "profile/profile.h"

#include "profile_builder.h"

/* Summarises a speedscope file: one line per frame, then per profile its
 * header and "stack-of-names weight" lines. Exits nonzero on invalid JSON. */
static const char summarise_py[] =
	"import json,sys\n"
	"d=json.load(open(sys.argv[1]))\n"
	"assert d['$schema']=='https://www.speedscope.app/file-format-schema.json'\n"
	"fr=d['shared']['frames']\n"
	"for f in fr: print('frame', json.dumps(f, sort_keys=True))\n"
	"for p in d['profiles']:\n"
	"  assert p['type']=='sampled' and p['startValue']==0\n"
	"  assert len(p['samples'])==len(p['weights'])\n"
	"  assert p['endValue']==sum(p['weights'])\n"
	"  print('profile', p['name'], p['unit'], p['endValue'])\n"
	"  for s,w in zip(p['samples'],p['weights']): print(' ', ';'.join(fr[i]['name'] for i in s), w)\n";

/* Writes p with speedscope__write and returns the summary (caller frees). */
static char *summarise(const struct profile *p, size_t value_index)
{
	char json_path[] = "/tmp/test_speedscope_XXXXXX";
	char py_path[] = "/tmp/test_speedscope_py_XXXXXX";
	int fd = mkstemp(json_path);
	assert_true(fd >= 0);
	FILE *out = fdopen(fd, "w");
	assert_int_equal(speedscope__write(p, out, value_index), 0);
	fclose(out);
	fd = mkstemp(py_path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, summarise_py, strlen(summarise_py)), (ssize_t)strlen(summarise_py));
	close(fd);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", py_path, json_path);
	FILE *py = popen(cmd, "r");
	assert_non_null(py);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), py)) > 0)
		fwrite(buf, 1, n, mem);
	fclose(mem);
	int status = pclose(py);
	unlink(json_path);
	unlink(py_path);
	if (status != 0)
		fail_msg("python rejected the speedscope JSON (status %d): %s", status, text);
	return text;
}

static void test_frames_profiles_weights(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	uint32_t f[] = {
		frame(p, FRAME_NATIVE, "main", NULL, NULL, 0),
		frame(p, FRAME_PYTHON, "handle", NULL, "app/views.py", 42),
		frame(p, FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", NULL, 0),
		frame(p, FRAME_KERNEL, "xfs_iread", "xfs", NULL, 0),
	};
	uint32_t g[] = { f[0], frame(p, FRAME_NATIVE, "zz_idle", NULL, NULL, 0) };
	sample_in(p, "python3", 100, 100, f, 4, 3, 30);
	sample_in(p, "worker-1", 100, 101, f, 2, 2, 20); /* thread of process 100 */
	sample_in(p, "python3", 100, 100, g, 2, 1, 10);
	sample_in(p, "redis", 200, 201, g, 1, 1, 5);
	sample_in(p, "swapper/0", 0, 0, g, 2, 0, 7);    /* no count: absent by samples */

	char *text = summarise(p, 0);
	assert_string_equal(text,
		"frame {\"name\": \"main\"}\n"
		"frame {\"file\": \"app/views.py\", \"line\": 42, \"name\": \"handle\"}\n"
		"frame {\"name\": \"do_syscall_64\"}\n"
		"frame {\"name\": \"xfs_iread [xfs]\"}\n"
		"frame {\"name\": \"zz_idle\"}\n"
		"profile python3 (pid 100) none 6\n"
		"  main;handle 2\n"
		"  main;handle;do_syscall_64;xfs_iread [xfs] 3\n"
		"  main;zz_idle 1\n"
		"profile redis (pid 200) none 1\n"
		"  main 1\n");
	free(text);

	/* Weighted by cpu time; pid 0 is named by comm alone. */
	text = summarise(p, 1);
	assert_non_null(strstr(text, "profile python3 (pid 100) nanoseconds 60\n"));
	assert_non_null(strstr(text, "profile swapper/0 nanoseconds 7\n"));
	free(text);

	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(speedscope__write(p, null, 2), -EINVAL);
	fclose(null);
	profile__free(p);
}

static void test_escaping(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	uint32_t f[] = {
		frame(p, FRAME_NATIVE, "say \"hi\"\\now", NULL, NULL, 0),
		frame(p, FRAME_PYTHON, "tab\there\x01", NULL, "dir\\f\"ile.py", 1),
	};
	sample_in(p, "a\"b", 5, 5, f, 2, 9, 0);
	char *text = summarise(p, 0);
	assert_string_equal(text,
		"frame {\"name\": \"say \\\"hi\\\"\\\\now\"}\n"
		"frame {\"file\": \"dir\\\\f\\\"ile.py\", \"line\": 1, \"name\": \"tab\\there\\u0001\"}\n"
		"profile a\"b (pid 5) none 9\n"
		"  say \"hi\"\\now;tab\there\x01 9\n");
	free(text);
	profile__free(p);
}

static void test_empty_profile(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	char *text = summarise(p, 0);
	assert_string_equal(text, "");
	free(text);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_profiles_weights),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_empty_profile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
