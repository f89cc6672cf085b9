/* rng.h - small deterministic pseudo-random generator (xoshiro256**).
 *
 * Same seed, same stream, on every platform: the statistics code promises
 * reproducible answers for a seed. Not cryptographic. The state is a plain
 * value owned by the caller (one per thread; no locking, no globals).
 */
#ifndef DYNOPROF_RNG_H
#define DYNOPROF_RNG_H

#include <stdint.h>

struct rng {
	uint64_t state[4]; /* xoshiro256** state; never all zero once seeded */
};

/* Seeds r from any 64-bit value (expanded with splitmix64, so nearby seeds
 * give unrelated streams). */
void rng__seed(struct rng *r, uint64_t seed);

/* Returns the next 64 uniformly distributed bits. */
uint64_t rng__next(struct rng *r);

/* Returns an integer uniform on [0, bound) without modulo bias; 0 when
 * bound is 0. */
uint64_t rng__below(struct rng *r, uint64_t bound);

/* Returns a double uniform on [0, 1) with 53 random bits. */
double rng__uniform(struct rng *r);

/* Returns a standard normal deviate (mean 0, variance 1). */
double rng__normal(struct rng *r);

#endif
