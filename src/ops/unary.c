/*
 * unary.c - elementwise ops of one tensor: y = f(x; p), same shape.
 *
 * The whole family is one table: each row gives an op's forward f and its
 * derivative dy/dx, side by side. dy/dx may use x, the saved output y
 * (cheaper for exp, sqrt and sigmoid than recomputing f), and p, the op's
 * scalar parameter (the exponent of pow, the floor of maximum_scalar).
 * From each row the macros below make a forward loop and a backward loop
 *     gx[i] += g[i] * dy/dx
 * (g: the gradient reaching y), and an op-table entry. Adding an op is
 * adding a row and a one-line public function.
 *
 * Elementwise work is independent per element, so the OpenMP split never
 * changes a result bit; it only engages when the tensor is large.
 */
#include "cgrad_internal.h"

/*
 * Notes on the rows, where PyTorch sets the convention:
 *  - abs: the derivative at 0 is taken as 0.
 *  - pow: p = 0 has derivative 0 everywhere (also avoiding 0 * inf at 0).
 *  - sigmoid: cg_sigmoidf never forms e^|x|, so it cannot overflow.
 *  - relu / maximum_scalar: y = max(x, p), written x < p ? p : x so NaN
 *    passes through. At the tie x == p relu's derivative is 0, while
 *    torch.maximum gives each side half: maximum_scalar passes g/2.
 */
#define UNARY_OPS(X)                                                                  \
    /* name            forward y = f(x; p)   dy/dx (x, y, p)                      */  \
    X(neg,            -x,                     -1.0f)                                  \
    X(exp,            expf(x),                y)                                      \
    X(log,            logf(x),                1.0f / x)                               \
    X(abs,            fabsf(x),               (float)((x > 0.0f) - (x < 0.0f)))       \
    X(sqrt,           sqrtf(x),               0.5f / y)                               \
    X(pow,            powf(x, p),             p == 0.0f ? 0.0f : p * powf(x, p - 1.0f)) \
    X(sigmoid,        cg_sigmoidf(x),         y * (1.0f - y))                         \
    X(relu,           x < p ? p : x,          x > p ? 1.0f : 0.0f)                    \
    X(maximum_scalar, x < p ? p : x,          x > p ? 1.0f : (x == p ? 0.5f : 0.0f))

#define PARALLEL_FOR _Pragma("omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)")

#define DEFINE_UNARY(name, f, dfdx)                                                    \
    static void name##_forward(int64_t n, const float *restrict xs, float *restrict ys, \
                               const float p) {                                        \
        (void)p;                                                                       \
        PARALLEL_FOR                                                                   \
        for (int64_t i = 0; i < n; i++) {                                              \
            const float x = xs[i];                                                     \
            ys[i] = (f);                                                               \
        }                                                                              \
    }                                                                                  \
    static void name##_backward(cg_tensor *out) {                                      \
        cg_tensor *src = out->src[0];                                                  \
        float *restrict gx = cg_wants_grad(src) ? cg_grad_buf(src) : NULL;             \
        if (!gx) return;                                                               \
        const float *restrict g = out->grad, *restrict xs = src->data;                 \
        const float *restrict ys = out->data;                                          \
        const float p = out->fparam;                                                   \
        const int64_t n = out->numel;                                                  \
        (void)p;                                                                       \
        PARALLEL_FOR                                                                   \
        for (int64_t i = 0; i < n; i++) {                                              \
            const float x = xs[i], y = ys[i];                                          \
            (void)x;                                                                   \
            (void)y;                                                                   \
            /* dy/dx in a variable of its own: GCC then makes relu's select */         \
            /* a vector compare-and-mask, where inside the product it kept */          \
            /* a branch, mispredicted on half of a layer's random signs. */            \
            const float dydx = (dfdx);                                                 \
            gx[i] = gx[i] + g[i] * dydx;                                               \
        }                                                                              \
    }                                                                                  \
    static const cg_op OP_##name = {#name, name##_backward};

UNARY_OPS(DEFINE_UNARY)

typedef void (*unary_forward_fn)(int64_t n, const float *x, float *y, float p);

/* y = f(x; p) for the op: x's shape, linked to x. NULL in, NULL out. */
static cg_tensor *unary(const cg_op *op, unary_forward_fn forward, cg_tensor *x, float p) {
    if (!x) return NULL;
    cg_tensor *out = cg_op_result(op, x->shape, x->ndim, x, NULL, NULL);
    if (!out) return NULL;
    out->fparam = p;
    forward(out->numel, x->data, out->data, p);
    return out;
}

cg_tensor *cg_tensor_neg(cg_tensor *a) { return unary(&OP_neg, neg_forward, a, 0.0f); }
cg_tensor *cg_tensor_exp(cg_tensor *a) { return unary(&OP_exp, exp_forward, a, 0.0f); }
cg_tensor *cg_tensor_log(cg_tensor *a) { return unary(&OP_log, log_forward, a, 0.0f); }
cg_tensor *cg_tensor_abs(cg_tensor *a) { return unary(&OP_abs, abs_forward, a, 0.0f); }
cg_tensor *cg_tensor_sqrt(cg_tensor *a) { return unary(&OP_sqrt, sqrt_forward, a, 0.0f); }
cg_tensor *cg_tensor_sigmoid(cg_tensor *a) { return unary(&OP_sigmoid, sigmoid_forward, a, 0.0f); }
cg_tensor *cg_tensor_relu(cg_tensor *a) { return unary(&OP_relu, relu_forward, a, 0.0f); }

cg_tensor *cg_tensor_pow(cg_tensor *a, float exponent) {
    return unary(&OP_pow, pow_forward, a, exponent);
}

cg_tensor *cg_tensor_maximum_scalar(cg_tensor *a, float value) {
    return unary(&OP_maximum_scalar, maximum_scalar_forward, a, value);
}
