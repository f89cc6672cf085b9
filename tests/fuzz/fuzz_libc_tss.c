// SPDX-License-Identifier: MIT
/* The code of a C library's pthread_getspecific, as read from a file of
 * another root (a container's libc: not ours to trust): decoded up to the
 * thread-specific data read, or refused. */
#include "fuzz_util.h"

#include "python/libc_tss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct libc_tss_code out;
	char reason[200];
	if (size > LIBC_TSS_CODE_MAX)
		size = LIBC_TSS_CODE_MAX;
	if (libc_tss__decode(data, size, &out, reason, sizeof(reason)) == 0) {
		struct py_tls_layout calibrated = {.specific_1stblock = 0x310, .entry_size = 16,
						   .data_offset = 8};
		(void)libc_tss__matches(&out, &calibrated);
	} else if (!reason[0] || strchr(reason, '\n')) {
		__builtin_trap(); /* a refusal always says why, on one line */
	}
	return 0;
}
