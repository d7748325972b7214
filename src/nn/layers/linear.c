/*
 * linear.c - the fully connected layer, "linear:OUT": y = x @ w + b.
 *
 * w is [in, out] (the article's `weights = init_params((28*28,1))`), so the
 * forward pass is a plain x @ w with no transpose; nn.Linear stores the
 * transpose, [out, in], but draws every element from the same
 * distribution, so only the layout differs. The gradients come from the
 * matmul and add ops: dL/dw = x^T @ dL/dy, dL/db = sum over the batch of
 * dL/dy, dL/dx = dL/dy @ w^T.
 *
 * Initialisation (w drawn first, row after row, then b):
 *   CG_INIT_NORMAL   w, b ~ N(0, 1) * std          the article's init_params
 *   CG_INIT_PYTORCH  w, b ~ U(-k, k), k = 1/sqrt(in)
 *     nn.Linear.reset_parameters(): kaiming_uniform_(a = sqrt(5)) gives
 *     bound = gain * sqrt(3 / in) with gain = sqrt(2 / (1 + a^2)) = sqrt(1/3),
 *     i.e. exactly 1/sqrt(in), and the bias uses the same bound.
 *   CG_INIT_KAIMING  before a ReLU: w ~ N(0, 2/in), b = 0 (He et al. 2015:
 *     a ReLU zeroes half its inputs, so doubling the variance keeps each
 *     layer's activations at the same scale through a deep net; fastai's
 *     default for its linear layers). Otherwise as CG_INIT_PYTORCH.
 */
#include "nn/layer.h"

static cg_status linear_plan(cg_layer *l, cg_layer_plan *p) {
    int64_t out = l->args[0];
    if (l->in_ndim != 1)
        return cg_fail(CG_ERR_SHAPE,
                       "linear:%lld: needs a flat input, got items of %d dims (put flatten "
                       "before it)",
                       (long long)out, l->in_ndim);
    if (out < 1 || out > CG_LAYER_MAX_WIDTH)
        return cg_fail(CG_ERR_ARG, "linear: OUT must be between 1 and %lld, got %lld",
                       (long long)CG_LAYER_MAX_WIDTH, (long long)out);
    int64_t in = l->in_shape[0];
    l->out_ndim = 1;
    l->out_shape[0] = out;
    *p = (cg_layer_plan){.n_params = 2,
                         .params = {{2, {in, out}}, {1, {out}}}};
    return CG_OK;
}

static void linear_init(cg_layer *l, cg_init init, float std, bool before_relu, cg_rng *rng) {
    /* fan_in: w's rows, the features in. */
    cg_init_weight_bias(l->params[0], l->params[1], l->params[0]->shape[0], init, std,
                        before_relu, rng);
}

static cg_tensor *linear_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)ctx;
    return cg_tensor_add(cg_tensor_matmul(x, l->params[0]), l->params[1]);
}

const cg_layer_kind CG_LAYER_LINEAR = {
    .name = "linear",
    .args = "i",
    .n_required = 1,
    .help = "linear:OUT      fully connected, x @ w + b, OUT features",
    .images = false,
    .plan = linear_plan,
    .init = linear_init,
    .forward = linear_forward,
};
