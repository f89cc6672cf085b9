// SPDX-License-Identifier: MIT
/* `dynoprof record` run for real (as root: it loads BPF), in-process through
 * cmd_record so the capture path (cli, pipeline, sampler) runs under ASan and
 * UBSan in the unit suite: a command it starts, and a running process given
 * with -p. What a user checks: the exit status, the notes on stderr, and the
 * output's samples against the CPU time the kernel says the workload used
 * (getrusage of our children, /proc/PID/schedstat). The integration suite
 * tests the capture's accuracy and every mode; this is the unit suite's one
 * end-to-end look at it. Without root it says so and passes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "formats/pprof.h"
#include "profile/profile.h"
#include "cli_run.h"

#define FREQ 99
/* About half a second of CPU in dash (a few seconds on a slow machine). */
#define SPIN "i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done"

static char dir[] = "/tmp/dynoprof-record-run-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[96];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static double children_cpu_s(void)
{
	struct rusage ru;
	assert_int_equal(getrusage(RUSAGE_CHILDREN, &ru), 0);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Fails unless samples fit cpu_s of CPU at FREQ Hz: within half and one and
 * a half times, a few samples either way. */
static void expect_samples_for(uint64_t samples, double cpu_s)
{
	double want = cpu_s * FREQ;
	if (samples < 0.5 * want - 3 || samples > 1.5 * want + 3)
		fail_msg("%" PRIu64 " samples for %.3f s of CPU at %d Hz", samples, cpu_s, FREQ);
}

/* A command: started by record, captured until it exits; its samples match
 * the CPU time the kernel charged it (it is our child once record ran it). */
static void test_record_a_command(void **state)
{
	(void)state;
	char out[128], line[4096], want[192];
	snprintf(out, sizeof(out), "%s/sh.folded", dir);
	double before = children_cpu_s();
	int rc = cli_run(cmd_record, "record", "-F", "99", "-o", out, "--", "/bin/sh", "-c", SPIN,
			 NULL);
	double cpu_s = children_cpu_s() - before;
	if (rc)
		fail_msg("record exited %d: %s", rc, err_text);
	assert_non_null(strstr(err_text, "dynoprof: sampling /bin/sh at 99 Hz"));
	snprintf(want, sizeof(want), "dynoprof: wrote %s (folded)\n", out);
	assert_non_null(strstr(err_text, want));
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	uint64_t samples = 0, in_sh = 0;
	while (fgets(line, sizeof(line), f)) {
		char *count = strrchr(line, ' ');
		assert_non_null(count);
		uint64_t n = strtoull(count + 1, NULL, 10);
		samples += n;
		/* (a sample between fork and exec carries our own name) */
		if (!strncmp(line, "sh;", 3))
			in_sh += n;
	}
	fclose(f);
	assert_true(in_sh + 2 >= samples);
	printf("    %" PRIu64 " samples, the command used %.3f s of CPU\n", samples, cpu_s);
	assert_true(cpu_s > 0.1);
	expect_samples_for(samples, cpu_s);
}

static uint64_t schedstat_ns(pid_t pid)
{
	char path[64];
	unsigned long long run = 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%llu", &run), 1);
	fclose(f);
	return run;
}

/* A running process (-p) for one second, written as pprof: every sample is
 * of that process, and there are no more than its CPU time allows. */
static void test_record_a_process(void **state)
{
	(void)state;
	char out[128], pid_text[16];
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", "while :; do :; done", (char *)NULL);
		_exit(127);
	}
	snprintf(out, sizeof(out), "%s/spin.pb.gz", dir);
	snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
	uint64_t before = schedstat_ns(pid);
	int rc = cli_run(cmd_record, "record", "-F", "99", "-p", pid_text, "-d", "1s", "-o", out,
			 NULL);
	double cpu_s = (schedstat_ns(pid) - before) / 1e9;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	if (rc)
		fail_msg("record exited %d: %s", rc, err_text);
	assert_non_null(strstr(err_text, "dynoprof: sampling the given processes at 99 Hz"));

	struct profile *p = profile__new();
	char err[256] = "";
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	if (pprof__read(p, f, err, sizeof(err)))
		fail_msg("%s: %s", out, err);
	fclose(f);
	int samples_index = profile__find_value(p, "samples");
	assert_true(samples_index >= 0);
	uint64_t samples = profile__total(p, (size_t)samples_index);
	for (size_t i = 0; i < profile__sample_count(p); i++)
		assert_int_equal(profile__sample(p, i)->pid, (uint32_t)pid);
	printf("    %" PRIu64 " samples, the process used %.3f s of CPU meanwhile\n", samples,
	       cpu_s);
	assert_true(samples > 0);
	assert_true(samples <= 1.5 * cpu_s * FREQ + 3);
	profile__free(p);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_cli_record_run: needs root (record loads BPF)\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_a_command),
		cmocka_unit_test(test_record_a_process),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
