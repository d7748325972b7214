/*
 * elementwise.c - the broadcasting binary ops (add, sub, mul, div and the
 * comparisons gt, lt, eq) and where(cond, a, b).
 *
 * One forward drives them all: cg_bcast turns any pair of shapes into
 * `rows` runs of `inner` elements, and a run is one tight loop per op and
 * per stride pattern (both inputs walking, or one of them fixed), which the
 * compiler vectorises. Backward computes the gradient in the output's shape
 * and folds it back onto each input's shape with cg_sum_to_shape.
 */
#include "cgrad_internal.h"

typedef enum binary_kind { B_ADD, B_SUB, B_MUL, B_DIV, B_GT, B_LT, B_EQ } binary_kind;

/* One run of `n` outputs. sa/sb are 0 (the input is fixed along the run)
 * or 1 (it walks). The four stride patterns each get their own loop so
 * that the compiler sees unit-stride or loop-invariant loads. */
#define RUN(EXPR)                                                              \
    do {                                                                       \
        if (sa && sb)                                                          \
            for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); } \
        else if (sa) {                                                         \
            const float y = b[0];                                              \
            for (int64_t i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); } \
        } else if (sb) {                                                       \
            const float x = a[0];                                              \
            for (int64_t i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); } \
        } else {                                                               \
            const float x = a[0], y = b[0], v = (EXPR);                        \
            for (int64_t i = 0; i < n; i++) o[i] = v;                          \
        }                                                                      \
    } while (0)

static void binary_run(binary_kind kind, int64_t n, const float *a, int64_t sa, const float *b,
                       int64_t sb, float *o) {
    switch (kind) {
    case B_ADD: RUN(x + y); break;
    case B_SUB: RUN(x - y); break;
    case B_MUL: RUN(x * y); break;
    case B_DIV: RUN(x / y); break;
    case B_GT: RUN(x > y ? 1.0f : 0.0f); break;
    case B_LT: RUN(x < y ? 1.0f : 0.0f); break;
    case B_EQ: RUN(x == y ? 1.0f : 0.0f); break;
    }
}

/* out = a (kind) b over the plan, rows in parallel when there is enough work. */
static void binary_apply(binary_kind kind, const cg_bcast *p, const float *a, const float *b,
                         float *out) {
    const int64_t rows = p->rows, inner = p->inner;
#pragma omp parallel for schedule(static) if (rows > 1 && rows * inner >= CG_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3];
        cg_bcast_row_offsets(p, r, off);
        binary_run(kind, inner, a + off[0], p->inner_stride[0], b + off[1], p->inner_stride[1],
                   out + r * inner);
    }
}

/* ---- backward: the chain rule for each op, then un-broadcast ---- */

/* Adds g (output-shaped) into x's grad, summing over x's stretched dims. */
static void add_grad(cg_tensor *x, const cg_tensor *out, const float *g) {
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (gx) cg_sum_to_shape(gx, x->shape, x->ndim, g, out->shape, out->ndim);
}

/* Adds (g (kind) other) into x's grad, e.g. g * b for d(a*b)/da. */
static void add_grad_times(cg_tensor *x, cg_tensor *out, binary_kind kind, cg_tensor *other) {
    if (!cg_wants_grad(x)) return;
    cg_bcast p;
    cg_tensor *ins[2] = {out, other};
    float *tmp = cg_floats_alloc(out->numel);
    if (!tmp || cg_bcast_init(&p, "backward", ins, 2) != CG_OK) {
        cg_floats_free(tmp, out->numel);
        return;
    }
    binary_apply(kind, &p, out->grad, other->data, tmp);
    add_grad(x, out, tmp);
    cg_floats_free(tmp, out->numel);
}

/* d(a+b) = da + db */
static void add_backward(cg_tensor *out) {
    add_grad(out->src[0], out, out->grad);
    add_grad(out->src[1], out, out->grad);
}

/* d(a-b) = da - db */
static void sub_backward(cg_tensor *out) {
    add_grad(out->src[0], out, out->grad);
    if (cg_wants_grad(out->src[1])) {
        float *neg = cg_floats_alloc(out->numel);
        if (!neg) return;
        for (int64_t i = 0; i < out->numel; i++) neg[i] = -out->grad[i];
        add_grad(out->src[1], out, neg);
        cg_floats_free(neg, out->numel);
    }
}

/* d(a*b) = b da + a db */
static void mul_backward(cg_tensor *out) {
    add_grad_times(out->src[0], out, B_MUL, out->src[1]);
    add_grad_times(out->src[1], out, B_MUL, out->src[0]);
}

/* d(a/b) = da / b - (a/b) db / b = da / b - out db / b */
static void div_backward(cg_tensor *out) {
    cg_tensor *b = out->src[1];
    add_grad_times(out->src[0], out, B_DIV, b);
    if (cg_wants_grad(b)) {
        /* g * (-out / b): form -g*out in output shape, then divide by b. */
        float *t = cg_floats_alloc(out->numel);
        if (!t) return;
        for (int64_t i = 0; i < out->numel; i++) t[i] = -out->grad[i] * out->data[i];
        cg_bcast p;
        cg_tensor *ins[2] = {out, b};
        if (cg_bcast_init(&p, "div backward", ins, 2) == CG_OK) {
            binary_apply(B_DIV, &p, t, b->data, t);
            add_grad(b, out, t);
        }
        cg_floats_free(t, out->numel);
    }
}

/* The op table entries; comparisons have no gradient, so no entry. */
static const cg_op OP_ADD = {"add", add_backward};
static const cg_op OP_SUB = {"sub", sub_backward};
static const cg_op OP_MUL = {"mul", mul_backward};
static const cg_op OP_DIV = {"div", div_backward};

static const struct {
    const char *name;
    const cg_op *op;
} binary_table[] = {
    [B_ADD] = {"add", &OP_ADD}, [B_SUB] = {"sub", &OP_SUB}, [B_MUL] = {"mul", &OP_MUL},
    [B_DIV] = {"div", &OP_DIV}, [B_GT] = {"gt", NULL},      [B_LT] = {"lt", NULL},
    [B_EQ] = {"eq", NULL},
};

static cg_tensor *binary(binary_kind kind, cg_tensor *a, cg_tensor *b) {
    if (!a || !b) return NULL;
    cg_bcast p;
    cg_tensor *ins[2] = {a, b};
    if (cg_bcast_init(&p, binary_table[kind].name, ins, 2) != CG_OK) return NULL;
    cg_tensor *out = cg_op_result(binary_table[kind].op, p.out_shape, p.out_ndim, a, b, NULL);
    if (!out) return NULL;
    if (!binary_table[kind].op) out->requires_grad = false;
    binary_apply(kind, &p, a->data, b->data, out->data);
    return out;
}

cg_tensor *cg_tensor_add(cg_tensor *a, cg_tensor *b) { return binary(B_ADD, a, b); }
cg_tensor *cg_tensor_sub(cg_tensor *a, cg_tensor *b) { return binary(B_SUB, a, b); }
cg_tensor *cg_tensor_mul(cg_tensor *a, cg_tensor *b) { return binary(B_MUL, a, b); }
cg_tensor *cg_tensor_div(cg_tensor *a, cg_tensor *b) { return binary(B_DIV, a, b); }
cg_tensor *cg_tensor_gt(cg_tensor *a, cg_tensor *b) { return binary(B_GT, a, b); }
cg_tensor *cg_tensor_lt(cg_tensor *a, cg_tensor *b) { return binary(B_LT, a, b); }
cg_tensor *cg_tensor_eq(cg_tensor *a, cg_tensor *b) { return binary(B_EQ, a, b); }

/* ---- where(cond, a, b) ---- */

/* out = cond ? a : b over the plan of (cond, a, b). */
static void where_apply(const cg_bcast *p, const float *c, const float *a, const float *b,
                        float *out) {
    const int64_t inner = p->inner;
    for (int64_t r = 0; r < p->rows; r++) {
        int64_t off[3];
        cg_bcast_row_offsets(p, r, off);
        const float *cr = c + off[0], *ar = a + off[1], *br = b + off[2];
        const int64_t sc = p->inner_stride[0], sa = p->inner_stride[1], sb = p->inner_stride[2];
        float *o = out + r * inner;
        for (int64_t i = 0; i < inner; i++) o[i] = cr[i * sc] != 0.0f ? ar[i * sa] : br[i * sb];
    }
}

/* d where(c, a, b) = where(c, g, 0) da + where(c, 0, g) db,
 * and where(c, 0, g) = g - where(c, g, 0). */
static void where_backward(cg_tensor *out) {
    cg_tensor *c = out->src[0];
    float *t = cg_floats_alloc(out->numel);
    if (!t) return;
    cg_bcast p;
    /* (cond, grad, zero): cond broadcast against the output's shape; the
     * third input is one zero read with stride 0 throughout. */
    cg_tensor *ins[3] = {c, out, out};
    static const float zero = 0.0f;
    if (cg_bcast_init(&p, "where backward", ins, 2) == CG_OK) {
        p.n_in = 3;
        for (int d = 0; d < p.ndim; d++) p.stride[2][d] = 0;
        p.inner_stride[2] = 0;
        where_apply(&p, c->data, out->grad, &zero, t);
        add_grad(out->src[1], out, t);
        if (cg_wants_grad(out->src[2])) {
            for (int64_t i = 0; i < out->numel; i++) t[i] = out->grad[i] - t[i];
            add_grad(out->src[2], out, t);
        }
    }
    cg_floats_free(t, out->numel);
}

static const cg_op OP_WHERE = {"where", where_backward};

cg_tensor *cg_tensor_where(cg_tensor *cond, cg_tensor *a, cg_tensor *b) {
    if (!cond || !a || !b) return NULL;
    cg_bcast p;
    cg_tensor *ins[3] = {cond, a, b};
    if (cg_bcast_init(&p, "where", ins, 3) != CG_OK) return NULL;
    /* cond never needs a gradient; link only a and b. */
    cg_tensor *out = cg_op_result(&OP_WHERE, p.out_shape, p.out_ndim, NULL, a, b);
    if (!out) return NULL;
    if (out->op) out->src[0] = cg_tensor_retain(cond);
    where_apply(&p, cond->data, a->data, b->data, out->data);
    return out;
}
