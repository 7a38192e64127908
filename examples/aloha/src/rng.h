/*
 * rng.h -- deterministic pseudo-random numbers: xoshiro256** seeded through
 * splitmix64, plus the few distributions the model needs. Every module gets
 * its own stream, derived from (seed-set, stream index), so a run's results
 * depend only on its configuration and run number.
 */
#ifndef ALOHA_RNG_H
#define ALOHA_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rng_t;

uint64_t splitmix64(uint64_t *state);
void rng_seed(rng_t *r, uint64_t seedset, uint64_t stream);
uint64_t rng_next(rng_t *r);
double rng_uniform01(rng_t *r);                 /* [0,1) with 53 random bits */
double rng_uniform(rng_t *r, double a, double b);
double rng_exponential(rng_t *r, double mean);
double rng_normal(rng_t *r, double mean, double stddev);
long rng_intuniform(rng_t *r, long a, long b);  /* inclusive */

#endif
