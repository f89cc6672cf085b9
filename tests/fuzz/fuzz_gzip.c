// SPDX-License-Identifier: MIT
/* Gzipped pprof through pprof__read(): the inflate loop (several members,
 * truncation, bombs bounded by PPROF_MAX_DECODED) and then the decoder. The
 * input is made to start with the gzip magic so every run reaches gunzip. */
#include "fuzz_util.h"

#include "formats/pprof.h"
#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	uint8_t *buf = malloc(size + 2);
	size_t len = size;
	if (!buf)
		abort();
	if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
		memcpy(buf, data, size);
	} else {
		buf[0] = 0x1f;
		buf[1] = 0x8b;
		memcpy(buf + 2, data, size);
		len += 2;
	}
	struct profile *p = profile__new();
	FILE *in = fuzz_file(buf, len);
	if (!p)
		abort();
	pprof__read(p, in, err, sizeof(err));
	fclose(in);
	profile__free(p);
	free(buf);
	return 0;
}
