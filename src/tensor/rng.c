/*
 * rng.c - PCG32, our own seeded generator, so a seed means the same numbers
 * on every platform and C library.
 *
 * PCG-XSH-RR (M. O'Neill, "PCG: A Family of Simple Fast Space-Efficient
 * Statistically Good Algorithms for Random Number Generation", 2014):
 *   state' = state * 6364136223846793005 + inc          (64-bit LCG step)
 *   out    = rotr32(((state ^ (state >> 18)) >> 27), state >> 59)
 * The output permutation hides the LCG's weak low bits.
 *
 * Uniform floats: the top 24 bits of a draw times 2^-24, exactly
 * representable, in [0, 1).
 * Normals: Box-Muller on two uniforms u1 in (0, 1], u2 in [0, 1):
 *   r = sqrt(-2 ln u1); z0 = r cos(2 pi u2), z1 = r sin(2 pi u2),
 * computed in double; both values are used, z1 is kept for the next call.
 */
#include "cgrad_internal.h"

#include <math.h>

#define PCG_MULT 6364136223846793005ULL

void cg_rng_seed(cg_rng *rng, uint64_t seed) {
    /* The reference pcg32_srandom(seed, seq) with seq fixed to 54. */
    rng->state = 0;
    rng->inc = (54ULL << 1u) | 1u;
    rng->has_spare = false;
    rng->spare = 0.0;
    (void)cg_rng_u32(rng);
    rng->state += seed;
    (void)cg_rng_u32(rng);
}

uint32_t cg_rng_u32(cg_rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * PCG_MULT + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

uint32_t cg_rng_below(cg_rng *rng, uint32_t bound) {
    if (bound <= 1) return 0;
    /* Reject the low (2^32 mod bound) values so each residue is equally likely. */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = cg_rng_u32(rng);
        if (r >= threshold) return r % bound;
    }
}

float cg_rng_uniform(cg_rng *rng) { return (float)(cg_rng_u32(rng) >> 8) * (1.0f / 16777216.0f); }

float cg_rng_normal(cg_rng *rng) {
    if (rng->has_spare) {
        rng->has_spare = false;
        return (float)rng->spare;
    }
    /* u1 in (0, 1] so that log(u1) is finite. */
    double u1 = ((double)(cg_rng_u32(rng) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(cg_rng_u32(rng) >> 8) / 16777216.0;
    double r = sqrt(-2.0 * log(u1));
    double theta = 2.0 * 3.14159265358979323846 * u2;
    rng->spare = r * sin(theta);
    rng->has_spare = true;
    return (float)(r * cos(theta));
}

static _Thread_local cg_rng global_rng;
static _Thread_local bool global_seeded;

cg_rng *cg_rng_global(void) {
    if (!global_seeded) {
        cg_rng_seed(&global_rng, 42);
        global_seeded = true;
    }
    return &global_rng;
}

void cg_manual_seed(uint64_t seed) {
    cg_rng_seed(&global_rng, seed);
    global_seeded = true;
}
