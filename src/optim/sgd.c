/*
 * sgd.c - plain stochastic gradient descent, the article's update step:
 *   p.data -= lr * p.grad;  p.grad.zero_()
 * It writes parameters in place and records nothing, so it needs no
 * no-grad guard. A parameter without a gradient yet (backward never
 * reached it) is left alone.
 */
#include "cgrad_internal.h"

/* A weight matrix's gradient was written by a GEMM cut by rows between the
 * threads, so most of its cache lines sit in the writer's cache. Updating
 * on one core pulls half of them across (~60 us for a 784 x 30 layer on
 * this 2-core VM, more than its forward GEMM's share of a step); cut the
 * same way, each thread mostly updates rows it wrote. Below 2^14 floats
 * the update is a few us, less than a team wake-up. */
#define SGD_PARALLEL_MIN (1 << 14)

void cg_sgd_step(cg_tensor *const *params, int n, float lr) {
    if (!params) return;
    for (int j = 0; j < n; j++) {
        cg_tensor *p = params[j];
        if (!p || !p->grad) continue;
        float *restrict w = p->data;
        float *restrict g = p->grad;
        const int64_t m = p->numel;
        /* Update and zero in one pass over the gradient. */
#pragma omp parallel for if (m >= SGD_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < m; i++) {
            w[i] -= lr * g[i];
            g[i] = 0.0f;
        }
    }
}
