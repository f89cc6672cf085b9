// SPDX-License-Identifier: MIT
/* The agent's config text: the same line parser and checks `--config` and
 * SIGHUP run after the file checks (a memfd would be refused as
 * world-writable before the parser saw a byte). */
#include "fuzz_util.h"

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config c;
	char err[512];
	agent_config__defaults(&c);
	agent_config__parse(&c, "fuzz.conf", data, size, err, sizeof(err));
	return 0;
}
