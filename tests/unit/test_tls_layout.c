/* test_tls_layout.c - glibc's pthread_getspecific layout, as BPF will use it:
 * calibrated once, then the formula must find any thread's value of any key
 * < 32 from that thread's own fsbase.
 */
#include <errno.h>
#include <gnu/libc-version.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "python/tls_layout.h"

/* What a second thread observed. */
struct thread_check {
	const struct py_tls_layout *layout; /* calibrated in the main thread */
	pthread_key_t key;                  /* key to set and look up */
	unsigned long fsbase;               /* the thread's own thread pointer */
	int verify_result;                  /* tls_layout__verify() */
	uint64_t formula_value;             /* read by hand through the formula */
	uint64_t expected;                  /* what the thread stored */
};

static void *second_thread(void *arg)
{
	struct thread_check *check = arg;
	int local;

	check->expected = (uint64_t)(uintptr_t)&local ^ 0x1234000000000000ULL;
	pthread_setspecific(check->key, (void *)(uintptr_t)check->expected);
	check->fsbase = tls_layout__thread_pointer();
	check->verify_result = tls_layout__verify(check->layout, check->key);
	/* The same read BPF does, through process_vm_readv like bpf_probe_read_user. */
	uint64_t slot = check->fsbase + check->layout->specific_1stblock +
			(uint64_t)check->key * check->layout->entry_size + check->layout->data_offset;
	struct iovec local_iov = {.iov_base = &check->formula_value, .iov_len = 8};
	struct iovec remote_iov = {.iov_base = (void *)(uintptr_t)slot, .iov_len = 8};
	if (process_vm_readv(getpid(), &local_iov, 1, &remote_iov, 1, 0) != 8)
		check->formula_value = 0;
	return NULL;
}

static void test_calibrate_matches_glibc(void **state)
{
	struct py_tls_layout layout;
	(void)state;

	assert_int_equal(tls_layout__calibrate(&layout), 0);
	printf("glibc %s: specific_1stblock=0x%x entry_size=%u data_offset=%u\n",
	       gnu_get_libc_version(), layout.specific_1stblock, layout.entry_size,
	       layout.data_offset);
	assert_int_equal(layout.entry_size, 16);
	assert_int_equal(layout.data_offset, 8);
	assert_int_equal(layout.pad, 0);
	if (strcmp(gnu_get_libc_version(), "2.36") == 0)
		assert_int_equal(layout.specific_1stblock, 0x310);
	/* Calibrating again gives the same answer (keys were released). */
	struct py_tls_layout again;
	assert_int_equal(tls_layout__calibrate(&again), 0);
	assert_memory_equal(&layout, &again, sizeof(layout));
}

static void test_second_thread_uses_its_own_fsbase(void **state)
{
	struct py_tls_layout layout;
	struct thread_check check = {0};
	pthread_t thread;
	(void)state;

	assert_int_equal(tls_layout__calibrate(&layout), 0);
	check.layout = &layout;
	assert_int_equal(pthread_key_create(&check.key, NULL), 0);
	assert_true(check.key < TLS_LAYOUT_MAX_KEY);
	/* the main thread's value differs, so a wrong fsbase would be noticed */
	pthread_setspecific(check.key, (void *)0x1111);
	assert_int_equal(pthread_create(&thread, NULL, second_thread, &check), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);

	assert_int_not_equal(check.fsbase, 0);
	assert_int_not_equal(check.fsbase, tls_layout__thread_pointer());
	assert_int_equal(check.verify_result, 0);
	assert_int_equal(check.formula_value, check.expected);
	assert_int_equal(tls_layout__verify(&layout, check.key), 0); /* main: 0x1111 */
	pthread_key_delete(check.key);
}

static void test_verify_rejects_what_it_cannot_check(void **state)
{
	struct py_tls_layout layout, wrong;
	pthread_key_t key;
	(void)state;

	assert_int_equal(tls_layout__calibrate(&layout), 0);
	assert_int_equal(pthread_key_create(&key, NULL), 0);
	assert_int_equal(tls_layout__verify(&layout, key), -ENODATA);
	pthread_setspecific(key, (void *)0x5150);
	assert_int_equal(tls_layout__verify(&layout, key), 0);
	wrong = layout;
	wrong.data_offset = 0; /* the seq word */
	assert_int_equal(tls_layout__verify(&wrong, key), -EFAULT);
	assert_int_equal(tls_layout__verify(&layout, TLS_LAYOUT_MAX_KEY), -ERANGE);
	pthread_key_delete(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calibrate_matches_glibc),
		cmocka_unit_test(test_second_thread_uses_its_own_fsbase),
		cmocka_unit_test(test_verify_rejects_what_it_cannot_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
