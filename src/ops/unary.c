/*
 * unary.c - elementwise ops of one tensor: y = f(x), same shape.
 *
 * Each op is a table entry, a forward (the public function) and a backward
 * side by side. Backward adds g * dy/dx into x's gradient, where g is the
 * gradient reaching y. Where dy/dx is cheaper from y than from x (exp,
 * sqrt, sigmoid) the backward reads the saved output instead of
 * recomputing f.
 *
 * Elementwise work is independent per element, so the OpenMP split never
 * changes a result bit; it only engages when the tensor is large.
 */
#include "cgrad_internal.h"

/* The result of a unary op: x's shape, linked to x. NULL in, NULL out. */
static cg_tensor *unary_out(const cg_op *op, cg_tensor *x) {
    return x ? cg_op_result(op, x->shape, x->ndim, x, NULL, NULL) : NULL;
}

/* Where a unary backward adds: x's gradient, or NULL if x takes none. */
static float *unary_grad(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    return cg_wants_grad(x) ? cg_grad_buf(x) : NULL;
}

/* ---- neg: y = -x, dy/dx = -1 ---- */

static void neg_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] -= g[i];
}
static const cg_op OP_NEG = {"neg", neg_backward};

cg_tensor *cg_tensor_neg(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_NEG, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = -x[i];
    return out;
}

/* ---- exp: y = e^x, dy/dx = e^x = y ---- */

static void exp_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * y[i];
}
static const cg_op OP_EXP = {"exp", exp_backward};

cg_tensor *cg_tensor_exp(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_EXP, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
    return out;
}

/* ---- log: y = ln x, dy/dx = 1/x (x <= 0 gives NaN/-inf, as in PyTorch) ---- */

static void log_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *x = out->src[0]->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] / x[i];
}
static const cg_op OP_LOG = {"log", log_backward};

cg_tensor *cg_tensor_log(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_LOG, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]);
    return out;
}

/* ---- abs: y = |x|, dy/dx = sign(x), taken as 0 at x = 0 like PyTorch ---- */

static void abs_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *x = out->src[0]->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * (float)((x[i] > 0.0f) - (x[i] < 0.0f));
}
static const cg_op OP_ABS = {"abs", abs_backward};

cg_tensor *cg_tensor_abs(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_ABS, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return out;
}

/* ---- sqrt: y = x^(1/2), dy/dx = 1 / (2 sqrt x) = 0.5 / y (inf at 0, as in PyTorch) ---- */

static void sqrt_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * 0.5f / y[i];
}
static const cg_op OP_SQRT = {"sqrt", sqrt_backward};

cg_tensor *cg_tensor_sqrt(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_SQRT, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
    return out;
}

/* ---- pow by a scalar: y = x^p, dy/dx = p x^(p-1) ----
 * p = 0 gives dy/dx = 0 everywhere (PyTorch's rule), which also avoids
 * 0 * inf at x = 0. p = 2 (squared errors) takes a multiply, not powf. */

static void pow_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *x = out->src[0]->data;
    const float p = out->fparam;
    int64_t n = out->numel;
    if (p == 0.0f) return;
    if (p == 2.0f) {
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) gx[i] += g[i] * 2.0f * x[i];
        return;
    }
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * p * powf(x[i], p - 1.0f);
}
static const cg_op OP_POW = {"pow", pow_backward};

cg_tensor *cg_tensor_pow(cg_tensor *a, float exponent) {
    cg_tensor *out = unary_out(&OP_POW, a);
    if (!out) return NULL;
    out->fparam = exponent;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
    if (exponent == 2.0f) {
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * x[i];
        return out;
    }
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = powf(x[i], exponent);
    return out;
}

/* ---- sigmoid: y = 1 / (1 + e^-x), dy/dx = y (1 - y) ----
 * Forward is cg_sigmoidf (cgrad_internal.h), which never forms e^|x| and so
 * never overflows for large |x|. */

static void sigmoid_backward(cg_tensor *out) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * y[i] * (1.0f - y[i]);
}
static const cg_op OP_SIGMOID = {"sigmoid", sigmoid_backward};

cg_tensor *cg_tensor_sigmoid(cg_tensor *a) {
    cg_tensor *out = unary_out(&OP_SIGMOID, a);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = cg_sigmoidf(x[i]);
    return out;
}

/* ---- relu and maximum_scalar: y = max(x, v) ----
 * dy/dx = 1 where x > v and 0 where x < v. At the tie x == v the two ops
 * follow PyTorch: relu's derivative at 0 is 0, while torch.maximum gives
 * each side half the gradient, so maximum_scalar passes g/2. One forward and
 * one backward serve both; `tie` is the only difference. v is kept in
 * fparam. Written as x < v ? v : x so that NaN passes through, as in
 * PyTorch. */

static void clamp_min_backward(cg_tensor *out, float tie) {
    float *gx = unary_grad(out);
    if (!gx) return;
    const float *g = out->grad, *x = out->src[0]->data;
    const float v = out->fparam;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++)
        gx[i] += g[i] * (x[i] > v ? 1.0f : (x[i] == v ? tie : 0.0f));
}

static void relu_backward(cg_tensor *out) { clamp_min_backward(out, 0.0f); }
static void maximum_scalar_backward(cg_tensor *out) { clamp_min_backward(out, 0.5f); }
static const cg_op OP_RELU = {"relu", relu_backward};
static const cg_op OP_MAXIMUM_SCALAR = {"maximum_scalar", maximum_scalar_backward};

static cg_tensor *clamp_min(const cg_op *op, cg_tensor *a, float v) {
    cg_tensor *out = unary_out(op, a);
    if (!out) return NULL;
    out->fparam = v;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < v ? v : x[i];
    return out;
}

cg_tensor *cg_tensor_relu(cg_tensor *a) { return clamp_min(&OP_RELU, a, 0.0f); }

cg_tensor *cg_tensor_maximum_scalar(cg_tensor *a, float value) {
    return clamp_min(&OP_MAXIMUM_SCALAR, a, value);
}
