/* test_libc_tss.c - reading a C library's thread-specific data layout from the
 * code of its pthread_getspecific: the real bytes of Debian 12's glibc 2.36 and
 * Debian unstable's glibc 2.43 decode to the layout dynoprof calibrates in its
 * own process; altered copies (another slot, entry size, data offset, thread
 * pointer word or bounds check, musl's code, unknown instructions) are refused
 * or decode to a layout that does not match. The host's libc file, the test
 * root's (scripts/python-root.sh, when built) and a patched copy of the host's
 * go through libc_tss__check() as py_detect does.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "python/libc_tss.h"
#include "python/tls_layout.h"

/* __pthread_getspecific of Debian 12's libc6 2.36-9+deb12u14 (first 64 bytes):
 * cmp $0x1f,%edi; ja; mov %edi,%eax; add $0x31,%rax; shl $4,%rax;
 * add %fs:0x10,%rax; mov 0x8(%rax),%rdx; ... */
static const uint8_t glibc_2_36[] = {
	0x83, 0xff, 0x1f, 0x77, 0x3b, 0x89, 0xf8, 0x48, 0x83, 0xc0, 0x31, 0x48, 0xc1,
	0xe0, 0x04, 0x64, 0x48, 0x03, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, 0x48, 0x8b,
	0x50, 0x08, 0x48, 0x85, 0xd2, 0x74, 0x57, 0x89, 0xff, 0x48, 0x8d, 0x0d, 0x56,
	0xaf, 0x14, 0x00, 0x48, 0x8b, 0x30, 0x48, 0xc1, 0xe7, 0x04, 0x48, 0x39, 0x34,
	0x39, 0x75, 0x39, 0x48, 0x89, 0xd0, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x00,
};

/* The same function of Debian unstable's libc6 2.43-7 (the test root's). */
static const uint8_t glibc_2_43[] = {
	0x83, 0xff, 0x1f, 0x77, 0x4b, 0x89, 0xf8, 0x48, 0x83, 0xc0, 0x31, 0x48, 0xc1,
	0xe0, 0x04, 0x64, 0x48, 0x03, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, 0x48, 0x8b,
	0x50, 0x08, 0x48, 0x85, 0xd2, 0x74, 0x27, 0x89, 0xff, 0x48, 0x8d, 0x0d, 0xf6,
	0x2d, 0x15, 0x00, 0x48, 0x8b, 0x30, 0x48, 0xc1, 0xe7, 0x04, 0x48, 0x39, 0x34,
	0x39, 0x75, 0x09, 0x48, 0x89, 0xd0, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x00,
};

/* Offsets of the bytes the altered copies change. */
#define AT_BOUND 2   /* cmp $0x1f */
#define AT_SLOT 10   /* add $0x31 */
#define AT_SHIFT 14  /* shl $4 */
#define AT_TP 20     /* %fs:0x10 */
#define AT_DATA 27   /* mov 0x8(%rax) */

/* musl's pthread_getspecific: self->tsd[k], a pointer array elsewhere:
 * mov %fs:0,%rax; mov %edi,%edi; mov 0x80(%rax),%rax; mov (%rax,%rdi,8),%rax */
static const uint8_t musl[] = {
	0x64, 0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x89, 0xff,
	0x48, 0x8b, 0x80, 0x80, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x04, 0xf8, 0xc3,
};

/* The same formula as glibc's, as a compiler could also write it: endbr64;
 * cmp $0x1f,%edi; jbe +N; <second level: ud2>; mov %edi,%edi;
 * imul $16,%rdi,%rax (6b); mov %fs:0x10,%rdx; lea 0x310(%rdx,%rax,1),%rax;
 * mov 0x8(%rax),%rax */
static const uint8_t rewritten[] = {
	0xf3, 0x0f, 0x1e, 0xfa,                   /* endbr64 */
	0x83, 0xff, 0x1f,                         /* cmp $0x1f,%edi */
	0x76, 0x02,                               /* jbe +2 */
	0x0f, 0x0b,                               /* ud2 (never decoded) */
	0x89, 0xff,                               /* mov %edi,%edi */
	0x48, 0x6b, 0xc7, 0x10,                   /* imul $16,%rdi,%rax */
	0x64, 0x48, 0x8b, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00, /* mov %fs:0x10,%rdx */
	0x48, 0x8d, 0x84, 0x02, 0x10, 0x03, 0x00, 0x00, /* lea 0x310(%rdx,%rax,1),%rax */
	0x48, 0x8b, 0x40, 0x08,                   /* mov 0x8(%rax),%rax */
	0xc3,
};

static const struct py_tls_layout debian12 = {.specific_1stblock = 0x310, .entry_size = 16,
					      .data_offset = 8};

static void expect_decodes(const uint8_t *code, size_t len, uint32_t first, uint32_t entry,
			   uint32_t data, uint32_t keys)
{
	struct libc_tss_code out;
	char reason[200];
	int err = libc_tss__decode(code, len, &out, reason, sizeof(reason));
	if (err)
		fail_msg("not decoded: %s", reason);
	assert_int_equal(out.layout.specific_1stblock, first);
	assert_int_equal(out.layout.entry_size, entry);
	assert_int_equal(out.layout.data_offset, data);
	assert_int_equal(out.inline_keys, keys);
}

static void expect_refused(const uint8_t *code, size_t len, const char *why)
{
	struct libc_tss_code out;
	char reason[200] = "";
	assert_int_equal(libc_tss__decode(code, len, &out, reason, sizeof(reason)), -ENOTSUP);
	if (!strstr(reason, why))
		fail_msg("reason \"%s\" does not say \"%s\"", reason, why);
	assert_null(strchr(reason, '\n'));
}

static void test_real_glibc_bytes(void **state)
{
	(void)state;
	struct libc_tss_code a, b;
	expect_decodes(glibc_2_36, sizeof(glibc_2_36), 0x310, 16, 8, 32);
	expect_decodes(glibc_2_43, sizeof(glibc_2_43), 0x310, 16, 8, 32);
	assert_int_equal(libc_tss__decode(glibc_2_36, sizeof(glibc_2_36), &a, NULL, 0), 0);
	assert_int_equal(libc_tss__decode(glibc_2_43, sizeof(glibc_2_43), &b, NULL, 0), 0);
	assert_true(libc_tss__matches(&a, &debian12));
	assert_true(libc_tss__matches(&b, &debian12));
	/* only the first 28 bytes matter: the fast path up to the data load */
	expect_decodes(glibc_2_43, AT_DATA + 1, 0x310, 16, 8, 32);
	expect_refused(glibc_2_43, AT_DATA, "code ends");
}

static void test_same_formula_other_code(void **state)
{
	(void)state;
	expect_decodes(rewritten, sizeof(rewritten), 0x310, 16, 8, 32);
}

/* A copy of glibc 2.43's bytes with one byte changed. */
static void altered(size_t at, uint8_t value, uint8_t *copy)
{
	memcpy(copy, glibc_2_43, sizeof(glibc_2_43));
	copy[at] = value;
}

static void test_altered_copies(void **state)
{
	(void)state;
	uint8_t copy[sizeof(glibc_2_43)];
	struct libc_tss_code out;

	altered(AT_SLOT, 0x32, copy); /* the block 16 bytes further */
	expect_decodes(copy, sizeof(copy), 0x320, 16, 8, 32);
	assert_int_equal(libc_tss__decode(copy, sizeof(copy), &out, NULL, 0), 0);
	assert_false(libc_tss__matches(&out, &debian12));

	altered(AT_SHIFT, 0x05, copy); /* 32-byte entries */
	expect_decodes(copy, sizeof(copy), 0x620, 32, 8, 32);
	assert_int_equal(libc_tss__decode(copy, sizeof(copy), &out, NULL, 0), 0);
	assert_false(libc_tss__matches(&out, &debian12));

	altered(AT_DATA, 0x00, copy); /* {data, seq} entries */
	expect_decodes(copy, sizeof(copy), 0x310, 16, 0, 32);
	assert_int_equal(libc_tss__decode(copy, sizeof(copy), &out, NULL, 0), 0);
	assert_false(libc_tss__matches(&out, &debian12));

	altered(AT_BOUND, 0x0f, copy); /* only 16 inline keys */
	expect_decodes(copy, sizeof(copy), 0x310, 16, 8, 16);
	assert_int_equal(libc_tss__decode(copy, sizeof(copy), &out, NULL, 0), 0);
	assert_false(libc_tss__matches(&out, &debian12));

	altered(AT_TP, 0x18, copy); /* another word of the TCB */
	expect_refused(copy, sizeof(copy), "%fs:0x18");

	altered(0, 0x0f, copy); /* 0f 83 ...: not a compare */
	expect_refused(copy, sizeof(copy), "unknown instruction 0f ff at +0");

	altered(AT_SHIFT - 3, 0x0f, copy); /* shl becomes 0f c1: xadd */
	expect_refused(copy, sizeof(copy), "unknown instruction 0f c1");

	altered(3, 0x90, copy); /* ja removed: no bounds check before the read */
	copy[4] = 0x90;
	expect_refused(copy, sizeof(copy), "without a bounds check");

	altered(5, 0x89, copy); /* mov %edi,%eax becomes mov %esi,%eax: not the key */
	copy[6] = 0xf0;
	expect_refused(copy, sizeof(copy), "add to an unknown value");

	expect_refused(musl, sizeof(musl), "not from the thread's key block");
	expect_refused(glibc_2_43, 0, "code ends at +0");
	uint8_t loop[] = {0x83, 0xff, 0x1f, 0x76, 0xfb}; /* jbe back */
	expect_refused(loop, sizeof(loop), "leaves the code read");
	uint8_t nops[40];
	memset(nops, 0x90, sizeof(nops));
	expect_refused(nops, sizeof(nops), "first 24 instructions");
}

static const char *host_libc(void)
{
	static const char *const candidates[] = {"/lib/x86_64-linux-gnu/libc.so.6",
						 "/usr/lib/x86_64-linux-gnu/libc.so.6"};
	for (size_t i = 0; i < 2; i++)
		if (access(candidates[i], R_OK) == 0)
			return candidates[i];
	return NULL;
}

static void check_file(const char *path, int expect_err, const char *why)
{
	struct py_tls_layout calibrated;
	struct stat st;
	char reason[300] = "";

	assert_int_equal(tls_layout__calibrate(&calibrated), 0);
	assert_int_equal(stat(path, &st), 0);
	for (int pass = 0; pass < 2; pass++) { /* computed, then cached */
		int err = libc_tss__check(path, &st, "/shown/libc.so.6", &calibrated, reason,
					  sizeof(reason));
		if (err != expect_err)
			fail_msg("%s: %d (%s), expected %d", path, err, reason, expect_err);
		if (why) {
			if (!strstr(reason, why) || !strstr(reason, "/shown/libc.so.6"))
				fail_msg("%s: reason \"%s\"", path, reason);
			printf("%s: %s\n", path, reason);
		}
	}
}

static void test_host_libc_file(void **state)
{
	(void)state;
	const char *path = host_libc();
	uint8_t code[LIBC_TSS_CODE_MAX];
	struct libc_tss_code out;
	assert_non_null(path);
	int n = libc_tss__read_code(path, code, sizeof(code));
	assert_true(n >= 28);
	assert_int_equal(libc_tss__decode(code, (size_t)n, &out, NULL, 0), 0);
	check_file(path, 0, NULL);
}

/* The test root scripts/python-root.sh builds (glibc 2.43), when present. */
static void test_root_libc_file(void **state)
{
	(void)state;
	const char *root = getenv("DYNOPROF_PYTHON_ROOT");
	char path[4096];
	snprintf(path, sizeof(path), "%s/usr/lib/x86_64-linux-gnu/libc.so.6",
		 root && *root ? root : "/var/cache/dynoprof-test/sid");
	if (access(path, R_OK) != 0)
		skip(); /* built by `make test` (scripts/python-root.sh) */
	check_file(path, 0, NULL);
}

/* Copies the host libc to a temporary file and changes one byte of its
 * pthread_getspecific (found by its bytes) to value. */
static void patched_copy(char *out, size_t outlen, size_t at, uint8_t value)
{
	const char *path = host_libc();
	FILE *in = fopen(path, "rb");
	assert_non_null(in);
	fseek(in, 0, SEEK_END);
	long size = ftell(in);
	fseek(in, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, in), (size_t)size);
	fclose(in);
	uint8_t code[LIBC_TSS_CODE_MAX];
	int n = libc_tss__read_code(path, code, sizeof(code));
	assert_true(n >= 28);
	uint8_t *hit = memmem(buf, (size_t)size, code, 28);
	assert_non_null(hit);
	hit[at] = value;
	snprintf(out, outlen, "/tmp/dynoprof-test-libc-%d.so", (int)getpid());
	FILE *o = fopen(out, "wb");
	assert_non_null(o);
	assert_int_equal(fwrite(buf, 1, (size_t)size, o), (size_t)size);
	fclose(o);
	free(buf);
}

static void test_patched_libc_refused(void **state)
{
	(void)state;
	char path[128];
	patched_copy(path, sizeof(path), AT_SLOT, 0x32);
	check_file(path, -ENOTSUP, "keeps thread-specific data at tp+0x320+16*key+8");
	unlink(path);
	patched_copy(path, sizeof(path), AT_TP, 0x18);
	check_file(path, -ENOTSUP, "not understood (load of %fs:0x18");
	unlink(path);
}

static void test_not_a_libc(void **state)
{
	(void)state;
	char self[64];
	snprintf(self, sizeof(self), "/proc/%d/exe", (int)getpid());
	uint8_t code[LIBC_TSS_CODE_MAX];
	assert_int_equal(libc_tss__read_code(self, code, sizeof(code)), -ENOENT);
	check_file(self, -ENOTSUP, "defines no pthread_getspecific");
	assert_int_equal(libc_tss__read_code("/nonexistent/libc.so.6", code, sizeof(code)),
			 -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_glibc_bytes),
		cmocka_unit_test(test_same_formula_other_code),
		cmocka_unit_test(test_altered_copies),
		cmocka_unit_test(test_host_libc_file),
		cmocka_unit_test(test_root_libc_file),
		cmocka_unit_test(test_patched_libc_refused),
		cmocka_unit_test(test_not_a_libc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
