/*
 * bench_allreduce.c - the gradient allreduce alone (cg_comm, the call
 * cg_fit makes once per step with ranks), by buffer size: the figures
 * behind the cost model in docs/scaling.md. Run under mpirun:
 *
 *     mpirun -np 2 build/bench_allreduce [--reps N]
 *
 * For each size it times N back-to-back sums of a float buffer after a
 * barrier-like warm-up (so no rank waits for a slower one's compute), and
 * rank 0 prints the median microseconds per call and the "bus bandwidth"
 * of a ring allreduce, 2 (N-1)/N x bytes / time, the rate the cost model
 * divides by.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/distributed.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int reps = 51;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: mpirun -np N bench_allreduce [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    cg_comm *c = cg_comm_mpi_world();
    if (!c) {
        printf("bench_allreduce: %s\n", cg_last_error());
        return 0;
    }
    const int n_ranks = cg_comm_size(c), rank = cg_comm_rank(c);
    /* The mlp's 23,581 parameters, the CNN's 25,910 (two classes) and 30,542 (ten), then
     * powers of ten. */
    static const int64_t sizes[] = {1, 1000, 23581, 25910, 30542, 100000, 1000000, 10000000};
    float *buf = malloc(sizeof *buf * (size_t)sizes[sizeof sizes / sizeof *sizes - 1]);
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!buf || !t) return 1;
    if (rank == 0)
        printf("allreduce (sum of floats) over %d ranks, median of %d:\n%12s %12s %14s\n", n_ranks,
               reps, "floats", "us/call", "bus GB/s");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int64_t n = sizes[s];
        for (int64_t i = 0; i < n; i++) buf[i] = 1.0f;
        for (int w = 0; w < 3; w++) cg_comm_allreduce_floats(c, buf, n); /* warm-up, in step */
        for (int r = 0; r < reps; r++) {
            double t0 = cg_seconds();
            if (cg_comm_allreduce_floats(c, buf, n) != CG_OK) {
                fprintf(stderr, "bench_allreduce: %s\n", cg_last_error());
                return 1;
            }
            t[r] = cg_seconds() - t0;
        }
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        double sec = t[reps / 2];
        double bus = 2.0 * (n_ranks - 1) / n_ranks * (double)n * sizeof(float) / sec / 1e9;
        if (rank == 0) printf("%12lld %12.1f %14.2f\n", (long long)n, sec * 1e6, bus);
    }
    free(buf);
    free(t);
    cg_comm_free(c);
    return 0;
}
