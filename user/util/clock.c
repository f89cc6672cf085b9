// SPDX-License-Identifier: MIT
#include "util/clock.h"

int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint64_t mono_ns(void)
{
	return (uint64_t)clock_ns(CLOCK_MONOTONIC);
}
