#include "rng.h"

#include <math.h>

uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(rng_t *r, uint64_t seedset, uint64_t stream)
{
    uint64_t st = seedset * 0x9e3779b97f4a7c15ULL ^ (stream + 1) * 0xd1b54a32d192ed03ULL;
    int i;
    for (i = 0; i < 4; i++)
        r->s[i] = splitmix64(&st);
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1; /* the all-zero state is the one forbidden state */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
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

double rng_uniform01(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_uniform(rng_t *r, double a, double b)
{
    return a + (b - a) * rng_uniform01(r);
}

double rng_exponential(rng_t *r, double mean)
{
    return -mean * log1p(-rng_uniform01(r));
}

double rng_normal(rng_t *r, double mean, double stddev)
{
    /* Marsaglia polar method without caching the second value, so that the
     * stream position depends only on the number of calls. */
    double u, v, s;
    do {
        u = 2.0 * rng_uniform01(r) - 1.0;
        v = 2.0 * rng_uniform01(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return mean + stddev * u * sqrt(-2.0 * log(s) / s);
}

long rng_intuniform(rng_t *r, long a, long b)
{
    uint64_t range = (uint64_t)(b - a) + 1, lim, x;
    if (range == 0)
        return (long)rng_next(r);
    lim = UINT64_MAX - UINT64_MAX % range;
    do
        x = rng_next(r);
    while (x >= lim);
    return a + (long)(x % range);
}
