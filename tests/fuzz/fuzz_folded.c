// SPDX-License-Identifier: MIT
/* Folded stack text (`report`, `diff` inputs): read, then write back what was
 * read, with and without the comm prefix. */
#include "fuzz_util.h"

#include "formats/folded.h"
#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	char err[256];
	if (!sink && !(sink = fopen("/dev/null", "w")))
		abort();
	for (int comm = 0; comm < 2; comm++) {
		struct profile *p = profile__new();
		FILE *in = fuzz_file(data, size);
		struct folded_read_opts ro = { .comm_prefix = comm };
		if (!p)
			abort();
		int rc = folded__read(p, in, &ro, err, sizeof(err));
		fclose(in);
		if (!rc) {
			struct folded_opts wo = FOLDED_OPTS_INIT;
			wo.comm_prefix = comm;
			wo.label_frames = 1;
			folded__write(p, sink, &wo);
		}
		profile__free(p);
	}
	return 0;
}
