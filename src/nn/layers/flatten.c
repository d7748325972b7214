/*
 * flatten.c - "flatten": [N, C, H, W] (any item shape) -> [N, C*H*W], as
 * nn.Flatten. A view: no copy, and its gradient is the output's, reshaped.
 */
#include "nn/layer.h"

static cg_status flatten_plan(cg_layer *l, cg_layer_plan *p) {
    int64_t n = 1;
    for (int d = 0; d < l->in_ndim; d++) n *= l->in_shape[d];
    l->out_ndim = 1;
    l->out_shape[0] = n;
    p->n_params = p->n_state = 0;
    return CG_OK;
}

static cg_tensor *flatten_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)ctx;
    if (!x) return NULL;
    return cg_tensor_reshape(x, (int64_t[]){x->shape[0], l->out_shape[0]}, 2);
}

const cg_layer_kind CG_LAYER_FLATTEN = {
    .name = "flatten",
    .args = "",
    .n_required = 0,
    .help = "flatten         one row per item: [N, C, H, W] -> [N, C*H*W]",
    .images = false,
    .plan = flatten_plan,
    .init = NULL,
    .forward = flatten_forward,
};
