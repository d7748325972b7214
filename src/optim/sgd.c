/*
 * sgd.c - plain stochastic gradient descent, the article's update step:
 *   p.data -= lr * p.grad;  p.grad.zero_()
 * It writes parameters in place and records nothing, so it needs no
 * no-grad guard. A parameter without a gradient yet (backward never
 * reached it) is left alone.
 *
 * The loop itself, cg_optim_update, is shared with the optimizers that keep
 * state (optimizer.c): every update rule is elementwise, so all of them are
 * cut between the threads the same way.
 */
#include "optim/optim_internal.h"

#include <omp.h>

/* A weight matrix's gradient was written by a GEMM cut by rows between the
 * threads, so most of its cache lines sit in the writer's cache. Updating
 * on one core pulls half of them across, which for simple_net's first layer
 * costs more than its forward GEMM's share of a step; cut the same way,
 * each thread mostly updates rows it wrote. Below 2^14 floats the update
 * is cheaper than waking the team. (Measured: bench/README.md, "SGD".) */
#define SGD_PARALLEL_MIN (1 << 14)

/* Elements [lo, hi) of one update. Each rule reads and writes element i
 * only, so any cut of [0, n) gives the same bits. The scalars are copied
 * to locals first: u's floats could alias w and g as far as the compiler
 * knows, which would keep the loops from vectorizing. */
static void update_range(const cg_update *u, float *restrict w, float *restrict g,
                         float *restrict s1, float *restrict s2, int64_t lo, int64_t hi) {
    const float lr = u->lr, wd = u->wd, decay = u->decay;
    const bool l2 = u->l2, decoupled = u->decoupled;
    if (u->rule == CG_UPDATE_SGD) {
        const bool mom = u->momentum_on, nesterov = u->nesterov, first = u->first;
        const float mu = u->momentum;
        if (!l2 && !decoupled && !mom) {
            /* The article's step. Update and zero in one pass over the
             * gradient. */
            for (int64_t i = lo; i < hi; i++) {
                w[i] -= lr * g[i];
                g[i] = 0.0f;
            }
            return;
        }
        for (int64_t i = lo; i < hi; i++) {
            float gi = g[i];
            if (l2) gi = gi + wd * w[i];            /* grad.add(p, alpha=wd)       */
            if (mom) {
                float b = first ? gi : mu * s1[i] + gi; /* buf.mul_(mu).add_(grad) */
                s1[i] = b;
                gi = nesterov ? gi + mu * b : b;    /* grad.add(buf, alpha=mu)     */
            }
            float p = w[i];
            if (decoupled) p = p * decay;           /* p.mul_(1 - lr*wd)           */
            w[i] = p - lr * gi;                     /* p.add_(grad, alpha=-lr)     */
            g[i] = 0.0f;
        }
        return;
    }
    /* CG_UPDATE_ADAM, in PyTorch's order (its CPU kernels: addcmul is
     * self + value * t1 * t2, addcdiv self + value * t1 / t2). */
    const float b1 = u->beta1, c1 = u->one_minus_beta1, b2 = u->beta2, c2 = u->one_minus_beta2;
    const float step = u->step_size, bc2s = u->bc2_sqrt, eps = u->eps;
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (l2) gi = gi + wd * w[i];                /* grad.add(p, alpha=wd)            */
        const float m = b1 * s1[i] + c1 * gi;       /* m.mul_(b1).add_(g, alpha=1-b1)   */
        const float v = b2 * s2[i] + c2 * gi * gi;  /* v.mul_(b2).addcmul_(g, g, 1-b2)  */
        s1[i] = m;
        s2[i] = v;
        const float denom = sqrtf(v) / bc2s + eps;  /* (v.sqrt() / sqrt(bc2)).add_(eps) */
        float p = w[i];
        if (decoupled) p = p * decay;               /* AdamW: p.mul_(1 - lr*wd)         */
        w[i] = p - step * m / denom;                /* p.addcdiv_(m, denom, -step_size) */
        g[i] = 0.0f;
    }
}

void cg_optim_update(const cg_update *u, float *w, float *g, float *s1, float *s2, int64_t n) {
    /* Thread t of nt takes the t-th of nt equal contiguous shares, what
     * schedule(static) gives a plain loop. */
#pragma omp parallel if (n >= SGD_PARALLEL_MIN)
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        update_range(u, w, g, s1, s2, n * t / nt, n * (t + 1) / nt);
    }
}

void cg_sgd_step(cg_tensor *const *params, int n, float lr) {
    if (!params) return;
    const cg_update u = {.rule = CG_UPDATE_SGD, .lr = lr, .decay = 1.0f};
    for (int j = 0; j < n; j++) {
        cg_tensor *p = params[j];
        if (!p || !p->grad) continue;
        cg_optim_update(&u, p->data, p->grad, NULL, NULL, p->numel);
    }
}
