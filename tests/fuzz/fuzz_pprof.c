// SPDX-License-Identifier: MIT
/* profile.proto messages (uncompressed), as `report`/`diff` and the agent's
 * history read them: decode, then encode what was decoded. */
#include "fuzz_util.h"

#include "formats/pprof.h"
#include "profile/profile.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct profile *p = profile__new();
	if (!p)
		abort();
	if (!pprof__decode(p, data, size, err, sizeof(err))) {
		struct strbuf out = STRBUF_INIT;
		pprof__encode(p, &out);
		strbuf__release(&out);
	}
	profile__free(p);
	return 0;
}
