/*
 * batchnorm.c - "bn": batch normalisation of each channel (nn.BatchNorm2d
 * for images [C, H, W], nn.BatchNorm1d for features [C]), momentum 0.1,
 * eps 1e-5, affine. In train mode each channel is normalised by its
 * batch's mean and variance and the running statistics move towards them;
 * in eval mode the running statistics are used (src/ops/batchnorm.c).
 *
 * Tensors: learned gamma = 1 and beta = 0 (what every init gives them, as
 * PyTorch's reset_parameters); state running_mean = 0, running_var = 1,
 * saved with the model.
 */
#include "nn/layer.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

static cg_status bn_plan(cg_layer *l, cg_layer_plan *p) {
    if (l->in_ndim != 1 && l->in_ndim != 3)
        return cg_fail(CG_ERR_SHAPE, "bn: needs images [C, H, W] or features [C], got items of "
                                     "%d dims",
                       l->in_ndim);
    const int64_t c = l->in_shape[0];
    cg_plan_same_shape(l, p);
    *p = (cg_layer_plan){.n_params = 2, .params = {{1, {c}}, {1, {c}}},
                         .n_state = 2, .state = {{1, {c}}, {1, {c}}},
                         .nonneg_state = 1u << 1};
    return CG_OK;
}

/* Also the state's start: the variance 1 (a loaded model overwrites it). */
static void bn_init(cg_layer *l, cg_init init, float std, bool before_relu, cg_rng *rng) {
    (void)init, (void)std, (void)before_relu, (void)rng;
    for (int64_t c = 0; c < l->params[0]->numel; c++) {
        l->params[0]->data[c] = 1.0f;
        l->params[1]->data[c] = 0.0f;
        l->state[0]->data[c] = 0.0f;
        l->state[1]->data[c] = 1.0f;
    }
}

static cg_tensor *bn_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    return cg_tensor_batchnorm(x, l->params[0], l->params[1], l->state[0], l->state[1],
                               ctx->training, BN_MOMENTUM, BN_EPS);
}

const cg_layer_kind CG_LAYER_BATCHNORM = {
    .name = "bn",
    .args = "",
    .n_required = 0,
    .help = "bn              batch norm per channel (momentum 0.1, eps 1e-5)",
    .images = false,
    .plan = bn_plan,
    .init = bn_init,
    .forward = bn_forward,
};
