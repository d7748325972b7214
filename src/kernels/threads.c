/*
 * threads.c - how many threads cgrad's kernels use.
 *
 * OpenMP's own setting (omp_set_num_threads) belongs to the calling
 * thread only, so cgrad keeps its own process-wide count as well: GEMM
 * passes it explicitly (num_threads clause), and the plain
 * `#pragma omp parallel for` loops elsewhere see it through the calling
 * thread's OpenMP setting, which cg_set_num_threads also updates.
 */
#include "cgrad_internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

static atomic_int requested; /* 0: OpenMP's default */
static int omp_default = 1;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* OpenMP's default (OMP_NUM_THREADS or the core count), read once before
 * cgrad changes anything, so that cg_set_num_threads(0) can go back to it. */
static void read_default(void) {
    int n = omp_get_max_threads();
    omp_default = n > 0 ? n : 1;
}

void cg_set_num_threads(int n) {
    pthread_once(&default_once, read_default);
    if (n < 0) n = 0;
    atomic_store(&requested, n);
    omp_set_num_threads(n > 0 ? n : omp_default);
}

int cg_get_num_threads(void) {
    pthread_once(&default_once, read_default);
    int n = atomic_load(&requested);
    return n > 0 ? n : omp_default;
}
