/* test_ksyms.c - kernel symbol table from kallsyms text: a handmade table with
 * modules, kptr_restrict output, and the running kernel's /proc/kallsyms. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "symbolize/ksyms.h"

static const char handmade[] =
	"0000000000000000 A fixed_percpu_data\n"
	"ffffffff81000000 T _stext\n"
	"ffffffff81000000 T startup_64\n"
	"ffffffff81000100 t helper_local\n"
	"ffffffff81000200 T do_work\n"
	"ffffffff81000300 D some_data\n"
	"ffffffff81000400 W weak_fn\n"
	"ffffffff81000480 r some_rodata\n"
	"this line is garbage\n"
	"ffffffffc0001000 t ext4_thing\t[ext4]\n"
	"ffffffffc0001100 T ext4_other\t[ext4]\n"
	"ffffffffc0002000 d ext4_data\t[ext4]\n"
	"ffffffffc0003000 t bpf_prog_6deef7357e7b4530_handler\t[bpf]\n";

static struct ksyms *parse_text(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct ksyms *ksyms;

	assert_non_null(f);
	ksyms = ksyms__parse(f);
	fclose(f);
	return ksyms;
}

static void expect_symbol(const struct ksyms *ksyms, uint64_t addr, const char *want_name,
			  const char *want_module, uint64_t want_offset)
{
	const char *name = NULL, *module = NULL;
	uint64_t offset = 0;

	assert_int_equal(ksyms__lookup(ksyms, addr, &name, &module, &offset), 0);
	assert_string_equal(name, want_name);
	assert_string_equal(module, want_module);
	assert_int_equal(offset, want_offset);
}

static void expect_nothing(const struct ksyms *ksyms, uint64_t addr)
{
	const char *name = NULL;

	assert_int_equal(ksyms__lookup(ksyms, addr, &name, NULL, NULL), -ENOENT);
}

static void test_handmade_core_kernel(void **state)
{
	struct ksyms *ksyms = parse_text(handmade);

	(void)state;
	assert_non_null(ksyms);
	/* Text symbols only; "_stext" and "startup_64" are one function. */
	assert_int_equal(ksyms__count(ksyms), 7);
	expect_symbol(ksyms, 0xffffffff81000010, "startup_64", "", 0x10);
	expect_symbol(ksyms, 0xffffffff81000100, "helper_local", "", 0);
	expect_symbol(ksyms, 0xffffffff81000250, "do_work", "", 0x50);
	expect_symbol(ksyms, 0xffffffff81000410, "weak_fn", "", 0x10);
	/* Data symbols end the function before them. */
	expect_nothing(ksyms, 0xffffffff81000300);
	expect_nothing(ksyms, 0xffffffff81000490);
	expect_nothing(ksyms, 0xffffffff80000000);
	ksyms__free(ksyms);
}

static void test_handmade_modules(void **state)
{
	struct ksyms *ksyms = parse_text(handmade);
	uint64_t addr = 0;

	(void)state;
	assert_non_null(ksyms);
	expect_symbol(ksyms, 0xffffffffc0001050, "ext4_thing", "ext4", 0x50);
	expect_symbol(ksyms, 0xffffffffc0001110, "ext4_other", "ext4", 0x10);
	expect_nothing(ksyms, 0xffffffffc0002010);
	expect_symbol(ksyms, 0xffffffffc0003004, "bpf_prog_6deef7357e7b4530_handler", "bpf", 4);
	/* The highest symbol has no known end: far past it is not attributed. */
	expect_nothing(ksyms, 0xffffffffc0003000 + KSYMS_LAST_SYMBOL_SPAN);
	expect_nothing(ksyms, 0xffffffffffff0000);
	assert_int_equal(ksyms__find(ksyms, "ext4_other", &addr), 0);
	assert_int_equal(addr, 0xffffffffc0001100);
	assert_int_equal(ksyms__find(ksyms, "some_data", &addr), -ENOENT);
	ksyms__free(ksyms);
}

static void test_kptr_restrict_is_reported(void **state)
{
	(void)state;
	errno = 0;
	assert_null(parse_text("0000000000000000 T _stext\n"
			       "0000000000000000 T schedule\n"
			       "0000000000000000 t ext4_thing\t[ext4]\n"));
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_null(parse_text(""));
	assert_int_equal(errno, ENODATA);
	errno = 0;
	assert_null(ksyms__load("/nonexistent/kallsyms"));
	assert_int_equal(errno, ENOENT);
	ksyms__free(NULL);
}

/* Reads the address of name from /proc/kallsyms independently of the parser. */
static uint64_t kallsyms_address(const char *name)
{
	char line[512], sym[256], type;
	uint64_t addr, found = 0;
	FILE *f = fopen("/proc/kallsyms", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, sym) == 3 &&
		    strcmp(sym, name) == 0 && strchr("tT", type)) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

static void test_real_kallsyms(void **state)
{
	const char *functions[] = { "schedule", "do_sys_openat2" };
	struct ksyms *ksyms;

	(void)state;
	if (kallsyms_address("schedule") == 0) {
		print_message("kallsyms addresses hidden (kptr_restrict / not root); skipping\n");
		skip();
	}
	ksyms = ksyms__load(NULL);
	assert_non_null(ksyms);
	assert_true(ksyms__count(ksyms) > 1000);
	for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
		uint64_t addr = kallsyms_address(functions[i]);

		if (!addr)
			continue; /* not in this kernel build */
		expect_symbol(ksyms, addr, functions[i], "", 0);
		expect_symbol(ksyms, addr + 4, functions[i], "", 4);
	}
	ksyms__free(ksyms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handmade_core_kernel),
		cmocka_unit_test(test_handmade_modules),
		cmocka_unit_test(test_kptr_restrict_is_reported),
		cmocka_unit_test(test_real_kallsyms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
