// SPDX-License-Identifier: MIT
/* xoshiro256** and splitmix64 by Blackman and Vigna (public domain reference
 * code, https://prng.di.unimi.it/), bounded integers by Lemire's method. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void rng__seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->state[i] = splitmix64(&seed);
}

uint64_t rng__next(struct rng *r)
{
	uint64_t *s = r->state;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t rng__below(struct rng *r, uint64_t bound)
{
	if (bound == 0)
		return 0;
	unsigned __int128 m = (unsigned __int128)rng__next(r) * bound;
	uint64_t low = (uint64_t)m;

	if (low < bound) {
		/* Reject the few products that would over-represent small results. */
		uint64_t threshold = -bound % bound;

		while (low < threshold) {
			m = (unsigned __int128)rng__next(r) * bound;
			low = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

double rng__uniform(struct rng *r)
{
	return (double)(rng__next(r) >> 11) * 0x1.0p-53;
}

double rng__normal(struct rng *r)
{
	/* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
	double u = 1.0 - rng__uniform(r);
	double v = rng__uniform(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}
