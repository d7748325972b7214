/*
 * activation.c - the elementwise non-linearities as layers: "relu"
 * (max(x, 0), the book's res.max(tensor(0.0))) and "sigmoid"
 * (1 / (1 + e^-x)). Each is its op (src/ops/unary.c), which carries the
 * derivative: relu' = [x > 0], sigmoid' = s (1 - s). No tensors, no
 * arguments, output shape = input shape.
 */
#include "nn/layer.h"

static cg_tensor *relu_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)l, (void)ctx;
    return cg_tensor_relu(x);
}

static cg_tensor *sigmoid_forward(cg_layer *l, cg_tensor *x, const cg_forward_ctx *ctx) {
    (void)l, (void)ctx;
    return cg_tensor_sigmoid(x);
}

const cg_layer_kind CG_LAYER_RELU = {
    .name = "relu",
    .args = "",
    .n_required = 0,
    .help = "relu            max(x, 0)",
    .images = false,
    .plan = cg_plan_same_shape,
    .init = NULL,
    .forward = relu_forward,
};

const cg_layer_kind CG_LAYER_SIGMOID = {
    .name = "sigmoid",
    .args = "",
    .n_required = 0,
    .help = "sigmoid         1 / (1 + exp(-x))",
    .images = false,
    .plan = cg_plan_same_shape,
    .init = NULL,
    .forward = sigmoid_forward,
};
