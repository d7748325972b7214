/*
 * sgd.c - plain stochastic gradient descent, the article's update step:
 *   p.data -= lr * p.grad;  p.grad.zero_()
 * It writes parameters in place and records nothing, so it needs no
 * no-grad guard. A parameter without a gradient yet (backward never
 * reached it) is left alone.
 */
#include "cgrad_internal.h"

void cg_sgd_step(cg_tensor *const *params, int n, float lr) {
    if (!params) return;
    for (int j = 0; j < n; j++) {
        cg_tensor *p = params[j];
        if (!p || !p->grad) continue;
        float *restrict w = p->data;
        float *restrict g = p->grad;
        const int64_t m = p->numel;
        /* Update and zero in one pass over the gradient. */
#pragma omp parallel for if (m >= CG_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < m; i++) {
            w[i] -= lr * g[i];
            g[i] = 0.0f;
        }
    }
}
