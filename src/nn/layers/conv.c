/*
 * conv.c - the 2-D convolution layer, "conv:OUT[:KS[:STRIDE[:PAD]]]"
 * (nn.Conv2d(C, OUT, KS, stride=STRIDE, padding=PAD), bias on): items
 * [C, H, W] -> [OUT, OH, OW], OH = (H + 2 PAD - KS) / STRIDE + 1. KS
 * defaults to 3, STRIDE to 1 and PAD to KS / 2 (a "same" convolution at
 * stride 1, fastai's ConvLayer). The op (src/ops/conv.c) carries the
 * gradients of x, w and b.
 *
 * Initialisation (w [OUT, C, KS, KS] drawn first, then b), fan_in = C KS KS:
 *   CG_INIT_PYTORCH  w, b ~ U(-1/sqrt(fan_in), +): nn.Conv2d's default,
 *                    kaiming_uniform_(a = sqrt(5)) as for nn.Linear;
 *   CG_INIT_KAIMING  before a ReLU: w ~ N(0, 2/fan_in), b = 0 (He);
 *                    otherwise as PYTORCH;
 *   CG_INIT_NORMAL   w, b ~ N(0, 1) * std.
 */
#include "nn/layer.h"

enum { OUT, KS, STRIDE, PAD };

static cg_status conv_plan(cg_layer *l, cg_layer_plan *p) {
    int64_t *a = l->args;
    if (a[KS] == CG_ARG_UNSET) a[KS] = 3;
    if (a[STRIDE] == CG_ARG_UNSET) a[STRIDE] = 1;
    if (a[PAD] == CG_ARG_UNSET) a[PAD] = a[KS] / 2;
    char spec[64];
    cg_layer_spec(l, spec, sizeof spec);
    if (l->in_ndim != 3)
        return cg_fail(CG_ERR_SHAPE, "%s: needs images [C, H, W], got items of %d dims", spec,
                       l->in_ndim);
    if (a[OUT] < 1 || a[OUT] > CG_LAYER_MAX_WIDTH || a[KS] < 1 || a[KS] > 64 || a[STRIDE] < 1 ||
        a[STRIDE] > 64 || a[PAD] < 0 || a[PAD] > a[KS])
        return cg_fail(CG_ERR_ARG, "%s: needs OUT >= 1, KS 1..64, STRIDE 1..64, PAD 0..KS", spec);
    const int64_t c = l->in_shape[0], h = l->in_shape[1], w = l->in_shape[2];
    if (h + 2 * a[PAD] < a[KS] || w + 2 * a[PAD] < a[KS])
        return cg_fail(CG_ERR_SHAPE, "%s: a %lldx%lld kernel does not fit %lldx%lld images", spec,
                       (long long)a[KS], (long long)a[KS], (long long)h, (long long)w);
    l->out_ndim = 3;
    l->out_shape[0] = a[OUT];
    l->out_shape[1] = (h + 2 * a[PAD] - a[KS]) / a[STRIDE] + 1;
    l->out_shape[2] = (w + 2 * a[PAD] - a[KS]) / a[STRIDE] + 1;
    *p = (cg_layer_plan){.n_params = 2,
                         .params = {{4, {a[OUT], c, a[KS], a[KS]}}, {1, {a[OUT]}}}};
    return CG_OK;
}

static void conv_init(cg_layer *l, cg_init init, float std, bool before_relu, cg_rng *rng) {
    const cg_tensor *w = l->params[0];
    const int64_t fan_in = w->shape[1] * w->shape[2] * w->shape[3];
    cg_init_weight_bias(l->params[0], l->params[1], fan_in, init, std, before_relu, rng);
}

static cg_tensor *conv_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)ctx;
    return cg_tensor_conv2d(x, l->params[0], l->params[1], (int)l->args[STRIDE],
                            (int)l->args[PAD]);
}

const cg_layer_kind CG_LAYER_CONV = {
    .name = "conv",
    .args = "iiii",
    .n_required = 1,
    .help = "conv:OUT[:KS[:STRIDE[:PAD]]]  2-D convolution (KS 3, STRIDE 1, PAD KS/2)",
    .images = true,
    .plan = conv_plan,
    .init = conv_init,
    .forward = conv_forward,
};
