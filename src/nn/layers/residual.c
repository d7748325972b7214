/*
 * residual.c - "res:OUT[:STRIDE]", a ResNet basic block (He et al. 2016),
 * the way fastai builds it (ResBlock with BatchZero):
 *
 *     h = relu(bn1(conv3x3(x, stride)))
 *     h = bn2(conv3x3(h))                       bn2's gamma starts at 0
 *     s = x                                     same shape, or else
 *     s = bn3(conv1x1(x, stride))               a projection to OUT channels
 *     y = relu(h + s)
 *
 * Items [C, H, W] -> [OUT, H', W'], H' = (H - 1) / STRIDE + 1 (STRIDE 1 by
 * default). The convolutions have no bias (each is followed by a batch norm
 * whose beta is one). With bn2's gamma at 0 a new block is the identity (or
 * the projection): a deep stack of them starts as a shallow net and learns
 * what to add, which is what lets it train at high learning rates.
 *
 * Tensors, in file order: w1 [OUT, C, 3, 3], gamma1, beta1, w2 [OUT, OUT,
 * 3, 3], gamma2, beta2, and with a projection w3 [OUT, C, 1, 1], gamma3,
 * beta3; state: each batch norm's running mean and variance.
 * Init: the convolutions He-normal (every one feeds a ReLU, directly or
 * through the sum), N(0, 2 / fan_in); CG_INIT_NORMAL draws N(0, 1) * std.
 */
#include "nn/layer.h"

enum { OUT, STRIDE };
#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

static bool has_projection(const cg_layer *l) {
    return l->args[STRIDE] != 1 || l->in_shape[0] != l->args[OUT];
}

static cg_status res_plan(cg_layer *l, cg_layer_plan *p) {
    int64_t *a = l->args;
    if (a[STRIDE] == CG_ARG_UNSET) a[STRIDE] = 1;
    char spec[64];
    cg_layer_spec(l, spec, sizeof spec);
    if (l->in_ndim != 3)
        return cg_fail(CG_ERR_SHAPE, "%s: needs images [C, H, W], got items of %d dims", spec,
                       l->in_ndim);
    if (a[OUT] < 1 || a[OUT] > CG_LAYER_MAX_WIDTH || a[STRIDE] < 1 || a[STRIDE] > 64)
        return cg_fail(CG_ERR_ARG, "%s: needs OUT >= 1 and STRIDE 1..64", spec);
    const int64_t c = l->in_shape[0], o = a[OUT];
    l->out_ndim = 3;
    l->out_shape[0] = o;
    l->out_shape[1] = (l->in_shape[1] - 1) / a[STRIDE] + 1;
    l->out_shape[2] = (l->in_shape[2] - 1) / a[STRIDE] + 1;
    *p = (cg_layer_plan){
        .n_params = 6,
        .params = {{4, {o, c, 3, 3}}, {1, {o}}, {1, {o}}, {4, {o, o, 3, 3}}, {1, {o}}, {1, {o}}},
        .n_state = 4,
        .state = {{1, {o}}, {1, {o}}, {1, {o}}, {1, {o}}},
        .nonneg_state = 1u << 1 | 1u << 3, /* (mean, variance) pairs */
    };
    if (has_projection(l)) {
        p->params[p->n_params++] = (cg_shape){4, {o, c, 1, 1}};
        p->params[p->n_params++] = (cg_shape){1, {o}};
        p->params[p->n_params++] = (cg_shape){1, {o}};
        p->state[p->n_state++] = (cg_shape){1, {o}};
        p->state[p->n_state++] = (cg_shape){1, {o}};
        p->nonneg_state |= 1u << 5;
    }
    return CG_OK;
}

static void res_init(cg_layer *l, cg_init init, float std, bool before_relu, cg_rng *rng) {
    (void)before_relu;
    for (int k = 0; k < l->n_params; k += 3) {
        cg_tensor *w = l->params[k];
        const int64_t fan_in = w->shape[1] * w->shape[2] * w->shape[3];
        const float sd = init == CG_INIT_NORMAL ? std : (float)sqrt(2.0 / (double)fan_in);
        for (int64_t j = 0; j < w->numel; j++) w->data[j] = cg_rng_normal(rng) * sd;
        /* gamma 1 (0 for the block's last norm: BatchZero), beta 0 */
        for (int64_t c = 0; c < l->params[k + 1]->numel; c++) {
            l->params[k + 1]->data[c] = k == 3 ? 0.0f : 1.0f;
            l->params[k + 2]->data[c] = 0.0f;
        }
    }
    for (int k = 0; k < l->n_state; k += 2)
        for (int64_t c = 0; c < l->state[k]->numel; c++) {
            l->state[k]->data[c] = 0.0f;
            l->state[k + 1]->data[c] = 1.0f;
        }
}

/* bn_j(conv(x, w_j)): conv without bias, then norm j's statistics. */
static cg_tensor *conv_bn(cg_layer *l, int j, cg_tensor *x, int stride, int pad,
                          const cg_forward_ctx *ctx) {
    return cg_tensor_batchnorm(cg_tensor_conv2d(x, l->params[3 * j], NULL, stride, pad),
                               l->params[3 * j + 1], l->params[3 * j + 2], l->state[2 * j],
                               l->state[2 * j + 1], ctx->training, BN_MOMENTUM, BN_EPS);
}

static cg_tensor *res_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    const int stride = (int)l->args[STRIDE];
    cg_tensor *h = cg_tensor_relu(conv_bn(l, 0, x, stride, 1, ctx));
    h = conv_bn(l, 1, h, 1, 1, ctx);
    cg_tensor *s = has_projection(l) ? conv_bn(l, 2, x, stride, 0, ctx) : x;
    return cg_tensor_relu(cg_tensor_add(h, s));
}

const cg_layer_kind CG_LAYER_RESIDUAL = {
    .name = "res",
    .args = "ii",
    .n_required = 1,
    .help = "res:OUT[:STRIDE]  ResNet block: two 3x3 conv+bn, identity or 1x1 shortcut",
    .images = true,
    .plan = res_plan,
    .init = res_init,
    .forward = res_forward,
};
