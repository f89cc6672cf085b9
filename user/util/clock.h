/* clock.h - the time, in nanoseconds, of any clock: the one helper every layer
 * uses (CLOCK_MONOTONIC for intervals and BPF timestamps, CLOCK_REALTIME for
 * what users read). */
#ifndef DYNOPROF_CLOCK_H
#define DYNOPROF_CLOCK_H

#include <stdint.h>
#include <time.h>

/* clk's time in nanoseconds (clock_gettime cannot fail for the clocks used). */
int64_t clock_ns(clockid_t clk);

/* CLOCK_MONOTONIC in nanoseconds: the clock of BPF's bpf_ktime_get_ns(). */
uint64_t mono_ns(void);

#endif
