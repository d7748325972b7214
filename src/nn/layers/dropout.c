/*
 * dropout.c - "dropout:P" (nn.Dropout): in train mode each element is
 * zeroed with probability P and the others scaled by 1/(1 - P), so that
 * the expected output equals the input and eval mode (the identity) needs
 * no rescaling. The mask m (0 or 1/(1-P)) is drawn from the model's
 * generator; y = x * m, so dL/dx = dL/dy * m through the mul op.
 */
#include "nn/layer.h"

static cg_status dropout_plan(cg_layer *l, cg_layer_plan *p) {
    float q = l->fargs[0];
    if (!(q >= 0.0f && q < 1.0f))
        return cg_fail(CG_ERR_ARG, "dropout: P must be in [0, 1), got %g", (double)q);
    return cg_plan_same_shape(l, p);
}

static cg_tensor *dropout_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    float q = l->fargs[0];
    if (!x || !ctx->training || q == 0.0f) return x;
    cg_tensor *mask = cg_tensor_new(x->shape, x->ndim);
    if (!mask) return NULL;
    const float keep = 1.0f / (1.0f - q);
    for (int64_t i = 0; i < mask->numel; i++)
        mask->data[i] = cg_rng_uniform(ctx->rng) < q ? 0.0f : keep;
    return cg_tensor_mul(x, mask);
}

const cg_layer_kind CG_LAYER_DROPOUT = {
    .name = "dropout",
    .args = "f",
    .n_required = 1,
    .help = "dropout:P       train mode: zero with probability P, scale by 1/(1-P)",
    .images = false,
    .plan = dropout_plan,
    .init = NULL,
    .forward = dropout_forward,
};
