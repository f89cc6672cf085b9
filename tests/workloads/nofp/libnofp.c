/* libnofp.c - the shared library half of nofp_chain (built -O2
 * -fomit-frame-pointer, PIC): reached from the executable through the PLT,
 * lib_entry -> lib_mid -> lib_leaf. */
#include "nofp.h"

static volatile uint64_t sink;

NOINLINE uint64_t lib_leaf(uint64_t n)
{
	return NOFP_SPIN(n);
}

NOINLINE uint64_t lib_mid(uint64_t n)
{
	uint64_t h = lib_leaf(n);
	sink = h;
	return h * 3 + 1;
}

uint64_t lib_entry(uint64_t n)
{
	uint64_t h = lib_mid(n);
	sink = h;
	return h ^ 7;
}
