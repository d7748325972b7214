/*
 * pool.c - the pooling layers: "maxpool:K[:STRIDE[:PAD]]" and
 * "avgpool:K[:STRIDE[:PAD]]" (nn.MaxPool2d / nn.AvgPool2d; STRIDE defaults
 * to K, PAD to 0), and "gap", global average pooling, [C, H, W] -> [C]
 * (nn.AdaptiveAvgPool2d(1) then flatten: what a ResNet ends with). No
 * tensors; the ops (src/ops/pool.c) carry the gradients: to the max of each
 * window, or 1/K^2 to each element of it.
 */
#include "nn/layer.h"

enum { K, STRIDE, PAD };

static cg_status pool_plan(cg_layer *l, cg_layer_plan *p) {
    int64_t *a = l->args;
    if (a[STRIDE] == CG_ARG_UNSET) a[STRIDE] = a[K];
    if (a[PAD] == CG_ARG_UNSET) a[PAD] = 0;
    char spec[64];
    cg_layer_spec(l, spec, sizeof spec);
    if (l->in_ndim != 3)
        return cg_fail(CG_ERR_SHAPE, "%s: needs images [C, H, W], got items of %d dims", spec,
                       l->in_ndim);
    /* PAD > K / 2, not 2 * PAD > K: a PAD from a file may be near INT64_MAX. */
    if (a[K] < 1 || a[K] > 64 || a[STRIDE] < 1 || a[STRIDE] > 64 || a[PAD] < 0 ||
        a[PAD] > a[K] / 2)
        return cg_fail(CG_ERR_ARG, "%s: needs K 1..64, STRIDE 1..64, PAD 0..K/2", spec);
    const int64_t h = l->in_shape[1], w = l->in_shape[2];
    if (h + 2 * a[PAD] < a[K] || w + 2 * a[PAD] < a[K])
        return cg_fail(CG_ERR_SHAPE, "%s: a %lldx%lld window does not fit %lldx%lld images", spec,
                       (long long)a[K], (long long)a[K], (long long)h, (long long)w);
    l->out_ndim = 3;
    l->out_shape[0] = l->in_shape[0];
    l->out_shape[1] = (h + 2 * a[PAD] - a[K]) / a[STRIDE] + 1;
    l->out_shape[2] = (w + 2 * a[PAD] - a[K]) / a[STRIDE] + 1;
    p->n_params = p->n_state = 0;
    return CG_OK;
}

static cg_tensor *maxpool_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)ctx;
    return cg_tensor_max_pool2d(x, (int)l->args[K], (int)l->args[STRIDE], (int)l->args[PAD]);
}

static cg_tensor *avgpool_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)ctx;
    return cg_tensor_avg_pool2d(x, (int)l->args[K], (int)l->args[STRIDE], (int)l->args[PAD]);
}

static cg_status gap_plan(cg_layer *l, cg_layer_plan *p) {
    if (l->in_ndim != 3)
        return cg_fail(CG_ERR_SHAPE, "gap: needs images [C, H, W], got items of %d dims",
                       l->in_ndim);
    l->out_ndim = 1;
    l->out_shape[0] = l->in_shape[0];
    p->n_params = p->n_state = 0;
    return CG_OK;
}

static cg_tensor *gap_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)l, (void)ctx;
    return cg_tensor_global_avg_pool(x);
}

const cg_layer_kind CG_LAYER_MAXPOOL = {
    .name = "maxpool",
    .args = "iii",
    .n_required = 1,
    .help = "maxpool:K[:STRIDE[:PAD]]  max of each KxK window (STRIDE K)",
    .images = true,
    .plan = pool_plan,
    .init = NULL,
    .forward = maxpool_forward,
};

const cg_layer_kind CG_LAYER_AVGPOOL = {
    .name = "avgpool",
    .args = "iii",
    .n_required = 1,
    .help = "avgpool:K[:STRIDE[:PAD]]  mean of each KxK window (STRIDE K)",
    .images = true,
    .plan = pool_plan,
    .init = NULL,
    .forward = avgpool_forward,
};

const cg_layer_kind CG_LAYER_GAP = {
    .name = "gap",
    .args = "",
    .n_required = 0,
    .help = "gap             global average pool: [C, H, W] -> [C]",
    .images = true,
    .plan = gap_plan,
    .init = NULL,
    .forward = gap_forward,
};
