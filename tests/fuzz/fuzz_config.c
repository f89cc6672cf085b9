// SPDX-License-Identifier: MIT
/* The agent's config file, loaded from a path as `--config` and SIGHUP do. */
#include "fuzz_util.h"

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config c;
	char err[512];
	agent_config__defaults(&c);
	agent_config__load(&c, fuzz_path(data, size), err, sizeof(err));
	return 0;
}
