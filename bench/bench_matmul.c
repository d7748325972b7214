/*
 * bench_matmul.c - GFLOP/s of cg_gemm on the shapes training uses and on
 * 1024^3, at 1 and 2 threads, against the CPU's FP32 peak.
 *
 *   bench_matmul [--kernel generic|avx2-fma] [--threads N] [MxKxN[:tt] ...]
 *
 * A shape is M x K x N (C is MxN); a ":nt" / ":tn" / ":tt" suffix
 * transposes A and/or B. With no shapes it runs the default set. Prints
 * figures only; nothing is asserted.
 *
 * Peak: an x86 core with AVX2 + 2 FMA pipes retires 2 x 8 lanes x 2 flops
 * = 32 FP32 flops per cycle. The clock is measured with a chain of
 * dependent integer adds (1 cycle each on every x86 since the Pentium 4's
 * successors), which sees the real running clock, turbo included, where
 * /proc/cpuinfo's "cpu MHz" may show a nominal one (printed too).
 */
#include "cgrad.h"
#include "cgrad_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOPS_PER_CYCLE 32.0
#define REPS 7

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpuinfo_mhz(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0.0;
    char line[256];
    double mhz = 0.0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0) {
            const char *colon = strchr(line, ':');
            if (colon) mhz = atof(colon + 1);
            break;
        }
    fclose(f);
    return mhz;
}

/* This thread's CPU time: unlike wall time, it stops while another
 * process has the core, so a busy machine does not read as a slow clock. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Clock in MHz from 10 dependent adds per iteration (20M cycles, ~7 ms
 * a run); the fastest of 15 runs. */
static double measured_mhz(void) {
#if defined(__x86_64__)
    const uint64_t n = 2000000;
    double best = 0.0;
    for (int r = 0; r < 15; r++) {
        uint64_t x = 0, iters = n;
        double t0 = cpu_now();
        __asm__ volatile("1:\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "sub $1, %1\n\t"
                         "jnz 1b\n\t"
                         : "+r"(x), "+r"(iters)
                         :
                         : "cc");
        double mhz = 10.0 * (double)n / (cpu_now() - t0) / 1e6;
        if (mhz > best) best = mhz;
    }
    return best;
#else
    return 0.0;
#endif
}

typedef struct shape {
    int64_t m, k, n;
    bool ta, tb;
} shape;

static bool parse_shape(const char *s, shape *sh) {
    long long m, k, n;
    char t[3] = "nn";
    int got = sscanf(s, "%lldx%lldx%lld:%2[nt]", &m, &k, &n, t);
    if (got < 3 || m < 1 || k < 1 || n < 1) return false;
    *sh = (shape){m, k, n, t[0] == 't', t[1] == 't'};
    return true;
}

static float *random_floats(int64_t n, cg_rng *rng) {
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) p[i] = 2.0f * cg_rng_uniform(rng) - 1.0f;
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median GFLOP/s over REPS timings, each of enough calls for ~20 ms; the
 * best one in *best (on a shared machine, the closest to an idle one). */
static double bench(const shape *s, int threads, double *best) {
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    float *a = random_floats(s->m * s->k, &rng);
    float *b = random_floats(s->k * s->n, &rng);
    float *c = random_floats(s->m * s->n, &rng);
    int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    double flops = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    cg_set_num_threads(threads);

    cg_gemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n); /* warm */
    double t0 = now();
    cg_gemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
    double once = now() - t0;
    int calls = once > 0.02 ? 1 : (int)(0.02 / (once > 1e-7 ? once : 1e-7)) + 1;

    double gflops[REPS];
    for (int r = 0; r < REPS; r++) {
        t0 = now();
        for (int i = 0; i < calls; i++)
            cg_gemm(s->ta, s->tb, s->m, s->n, s->k, 1.0f, a, lda, b, ldb, 0.0f, c, s->n);
        gflops[r] = flops * calls / (now() - t0) / 1e9;
    }
    qsort(gflops, REPS, sizeof gflops[0], cmp_double);
    free(a);
    free(b);
    free(c);
    *best = gflops[REPS - 1];
    return gflops[REPS / 2];
}

int main(int argc, char **argv) {
    shape shapes[32];
    int n_shapes = 0, max_threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) {
            if (!cg_gemm_use_kernel(argv[++i])) {
                fprintf(stderr, "kernel %s is not available here\n", argv[i]);
                return 1;
            }
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            max_threads = atoi(argv[++i]);
            if (max_threads < 1) max_threads = 1;
        } else if (n_shapes < 32 && parse_shape(argv[i], &shapes[n_shapes])) {
            n_shapes++;
        } else {
            fprintf(stderr, "usage: %s [--kernel NAME] [--threads N] [MxKxN[:tt] ...]\n", argv[0]);
            return 2;
        }
    }
    if (n_shapes == 0) {
        const shape dflt[] = {
            {256, 784, 1, false, false},   /* linear forward: x @ w          */
            {256, 784, 30, false, false},  /* MLP forward:    x @ w1         */
            {784, 256, 30, true, false},   /* backward:       x^T @ dC       */
            {256, 30, 784, false, true},   /* backward:       dC @ w1^T      */
            {1024, 1024, 1024, false, false},
        };
        n_shapes = (int)(sizeof dflt / sizeof dflt[0]);
        memcpy(shapes, dflt, sizeof dflt);
    }

    double info = cpuinfo_mhz(), meas = measured_mhz();
    double mhz = meas > 0.0 ? meas : info;
    double peak = mhz * 1e-3 * FLOPS_PER_CYCLE;
    printf("kernel: %s\n", cg_gemm_kernel_name());
    printf("clock: %.0f MHz measured (dependent-add chain), %.0f MHz in /proc/cpuinfo\n", meas,
           info);
    printf(
        "peak: %.0f MHz x %.0f flops/cycle = %.1f GFLOP/s per core (FP32, 2 FMA x 8 lanes x 2)\n\n",
        mhz, FLOPS_PER_CYCLE, peak);
    printf("%-22s %8s %14s %9s %8s\n", "M x K x N", "threads", "median GFLOP/s", "% peak", "best");
    for (int s = 0; s < n_shapes; s++) {
        char name[64];
        snprintf(name, sizeof name, "%lldx%lldx%lld%s%s", (long long)shapes[s].m,
                 (long long)shapes[s].k, (long long)shapes[s].n, shapes[s].ta ? " A^T" : "",
                 shapes[s].tb ? " B^T" : "");
        double one = 0.0;
        for (int t = 1; t <= max_threads; t++) {
            double best, g = bench(&shapes[s], t, &best);
            if (t == 1) one = g;
            printf("%-22s %8d %14.1f %8.1f%% %8.1f", name, t, g,
                   peak > 0 ? 100.0 * g / (peak * t) : 0.0, best);
            if (t > 1) printf("   (%.2fx the 1-thread rate)", g / one);
            printf("\n");
        }
    }
    cg_set_num_threads(0);
    return 0;
}
