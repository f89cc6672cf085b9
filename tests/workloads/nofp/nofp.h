/* nofp.h - what nofp_chain and libnofp.so share: the library's entry point and
 * the loop every leaf of both spins in. */
#ifndef NOFP_H
#define NOFP_H

#include <stdint.h>

#define NOINLINE __attribute__((noinline))

/* libnofp.so: lib_entry -> lib_mid -> lib_leaf, reached through the PLT. */
uint64_t lib_entry(uint64_t n);

/* A hash of 0..n-1: the loop every leaf spins in. A macro, not an inline
 * function: DWARF names an inlined function as a frame of its own (perf
 * --call-graph dwarf shows it, and test_unwind compares with perf), and the
 * leaf must be the function spinning. */
#define NOFP_SPIN(n)                                            \
	({                                                      \
		uint64_t h_ = 1469598103934665603ull;           \
		for (uint64_t i_ = 0; i_ < (n); i_++)           \
			h_ = (h_ ^ i_) * 1099511628211ull;      \
		h_;                                             \
	})

#endif
