/*
 * optim_internal.h - the elementwise update loop that cg_sgd_step (sgd.c)
 * and the optimizers with state (optimizer.c) share.
 */
#ifndef CGRAD_OPTIM_INTERNAL_H
#define CGRAD_OPTIM_INTERNAL_H

#include "cgrad_internal.h"

typedef enum cg_update_rule {
    CG_UPDATE_SGD = 1, /* with every flag off, the article's p -= lr * g */
    CG_UPDATE_ADAM = 2
} cg_update_rule;

/*
 * One step's scalars for one parameter, as the loop reads them (float,
 * rounded once from the double they were computed in, as PyTorch rounds a
 * Python scalar to the tensor's float). Per element, with g the gradient:
 *   l2:        g = g + wd * p
 *   decoupled: p = p * decay                  (decay = 1 - lr*wd)
 * SGD, when momentum_on (b the buffer):
 *   b = first ? g : momentum * b + g
 *   g = nesterov ? g + momentum * b : b
 *   p = p - lr * g
 * ADAM (m, v):
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * and then g = 0.
 */
typedef struct cg_update {
    cg_update_rule rule;
    float lr;
    bool l2, decoupled;
    float wd, decay;
    /* SGD */
    bool momentum_on, nesterov, first;
    float momentum;
    /* ADAM */
    float beta1, one_minus_beta1, beta2, one_minus_beta2;
    float step_size, bc2_sqrt, eps;
} cg_update;

/* Applies u to w[0..n) with gradient g[0..n) and zeroes g; s1 is SGD's
 * momentum buffer or Adam's m, s2 Adam's v (NULL where unused). Above
 * SGD_PARALLEL_MIN elements the range is cut between the OpenMP threads in
 * equal contiguous shares; every element's result is the same whichever
 * thread computes it. Defined in sgd.c. */
void cg_optim_update(const cg_update *u, float *w, float *g, float *s1, float *s2, int64_t n);

#endif /* CGRAD_OPTIM_INTERNAL_H */
