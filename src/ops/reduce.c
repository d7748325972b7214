/*
 * reduce.c - sum, mean (over everything or over listed dims), max along a
 * dim and argmax.
 *
 * Sums accumulate in double and always in the same order, so a result
 * never depends on the thread count: the whole-tensor sum cuts the input
 * into fixed blocks (not per-thread shares), sums each block, then adds
 * the block sums in order.
 *
 * sum over dims is the adjoint of broadcasting: its forward is
 * cg_sum_to_shape into the keepdim shape, and its backward broadcasts the
 * gradient back out, with the same cg_bcast plan elementwise ops use.
 * sum, mean, sum_dims and mean_dims are all y = scale * sum over a set of
 * dims (scale = 1 or 1/count), so they share one backward:
 *   dL/dx[i] = scale * dL/dy[the output element x[i] was summed into].
 */
#include "cgrad_internal.h"

/* ------------------------------------------------------------------ */
/* Sums                                                                */
/* ------------------------------------------------------------------ */

/* Elements per block of the whole-tensor sum. Fixed, so the partial sums
 * and their order are the same on 1 or 64 threads. */
#define SUM_BLOCK 8192

static double sum_all(const float *x, int64_t n) {
    int64_t nblocks = (n + SUM_BLOCK - 1) / SUM_BLOCK;
    if (nblocks <= 1) return cg_sum_floats(x, n);
    /* From the float pool (two floats per double): no malloc per call. */
    double *part = (double *)cg_floats_alloc(2 * nblocks);
    if (!part) { /* same value, one thread: block order kept */
        double s = 0.0;
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t lo = b * SUM_BLOCK;
            s += cg_sum_floats(x + lo, n - lo < SUM_BLOCK ? n - lo : SUM_BLOCK);
        }
        return s;
    }
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t lo = b * SUM_BLOCK;
        part[b] = cg_sum_floats(x + lo, n - lo < SUM_BLOCK ? n - lo : SUM_BLOCK);
    }
    double s = 0.0;
    for (int64_t b = 0; b < nblocks; b++) s += part[b];
    cg_floats_free((float *)part, 2 * nblocks);
    return s;
}

/* The keepdim shape of x reduced over the dims in `mask` (bit d = dim d). */
static void keepdim_shape(const cg_tensor *x, unsigned mask, int64_t *kshape) {
    for (int d = 0; d < x->ndim; d++) kshape[d] = (mask >> d) & 1u ? 1 : x->shape[d];
}

/*
 * Shared backward: gx += scale * broadcast(g), g seen in the keepdim shape
 * (iparam[0] = the mask of reduced dims, fparam = scale). The plan over
 * (x's shape, keepdim shape) walks x's grad contiguously; within a run, g
 * either walks along or stays on one element.
 */
static void reduce_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    int64_t kshape[CG_MAX_DIMS];
    keepdim_shape(x, (unsigned)out->iparam[0], kshape);
    const int64_t *shapes[2] = {x->shape, kshape};
    int ndims[2] = {x->ndim, x->ndim};
    cg_bcast p;
    if (cg_bcast_init_shapes(&p, "sum backward", shapes, ndims, 2) != CG_OK) return;
    const float *g = out->grad;
    const float scale = out->fparam;
    const int64_t inner = p.inner, sg = p.inner_stride[1];
#pragma omp parallel for if (x->numel >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t r = 0; r < p.rows; r++) {
        int64_t off[3];
        cg_bcast_row_offsets(&p, r, off);
        float *gr = gx + off[0];
        const float *grow = g + off[1];
        if (sg) {
            for (int64_t i = 0; i < inner; i++) gr[i] += scale * grow[i];
        } else {
            const float v = scale * grow[0];
            for (int64_t i = 0; i < inner; i++) gr[i] += v;
        }
    }
}

static const cg_op OP_SUM = {"sum", reduce_backward};
static const cg_op OP_MEAN = {"mean", reduce_backward};
static const cg_op OP_SUM_DIMS = {"sum_dims", reduce_backward};
static const cg_op OP_MEAN_DIMS = {"mean_dims", reduce_backward};

/* sum or mean of every element: a scalar. */
static cg_tensor *reduce_all(const cg_op *op, cg_tensor *x, bool mean) {
    if (!x) return NULL;
    cg_tensor *out = cg_op_result(op, NULL, 0, x, NULL, NULL);
    if (!out) return NULL;
    double s = sum_all(x->data, x->numel);
    /* The mean of nothing is NaN (0/0), as in PyTorch. */
    out->data[0] = (float)(mean ? s / (double)x->numel : s);
    out->fparam = mean ? (float)(1.0 / (double)x->numel) : 1.0f;
    out->iparam[0] = (int64_t)((1u << x->ndim) - 1u);
    return out;
}

cg_tensor *cg_tensor_sum(cg_tensor *t) { return reduce_all(&OP_SUM, t, false); }
cg_tensor *cg_tensor_mean(cg_tensor *t) { return reduce_all(&OP_MEAN, t, true); }

/*
 * The reduced dims as a bitmask; 0 after cg_fail if the list is empty, a
 * dim is out of range or listed twice.
 */
static unsigned dims_mask(const char *name, const cg_tensor *x, const int *dims, int ndims) {
    if (!dims || ndims < 1 || ndims > x->ndim) {
        cg_fail(CG_ERR_ARG, "%s: need 1..%d dims for a rank-%d tensor, got %d", name, x->ndim,
                x->ndim, ndims);
        return 0;
    }
    unsigned mask = 0;
    for (int i = 0; i < ndims; i++) {
        int d = cg_norm_dim(name, dims[i], x->ndim);
        if (d < 0) return 0;
        if ((mask >> d) & 1u) {
            cg_fail(CG_ERR_ARG, "%s: dim %d is listed twice", name, dims[i]);
            return 0;
        }
        mask |= 1u << d;
    }
    return mask;
}

static cg_tensor *reduce_dims(const cg_op *op, cg_tensor *x, const int *dims, int ndims,
                              bool keepdim, bool mean) {
    if (!x) return NULL;
    unsigned mask = dims_mask(op->name, x, dims, ndims);
    if (!mask) return NULL;
    int64_t kshape[CG_MAX_DIMS], oshape[CG_MAX_DIMS];
    keepdim_shape(x, mask, kshape);
    int ondim = 0;
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++) {
        if ((mask >> d) & 1u)
            count *= x->shape[d];
        if (keepdim || !((mask >> d) & 1u)) oshape[ondim++] = kshape[d];
    }
    cg_tensor *out = cg_op_result(op, oshape, ondim, x, NULL, NULL);
    if (!out) return NULL;
    /* Dropping size-1 dims does not move any element, so the keepdim sum
     * lands in the right place for either output shape. */
    memset(out->data, 0, (size_t)out->numel * sizeof(float));
    /* Only its scratch allocation can fail (the shapes were checked above).
     * out's first reference already belongs to the open scope, if any, so
     * releasing it here would free it twice; it is left to its owner. */
    if (cg_sum_to_shape(out->data, kshape, x->ndim, x->data, x->shape, x->ndim) != CG_OK)
        return NULL;
    const double scale = mean ? 1.0 / (double)count : 1.0;
    if (mean)
        for (int64_t i = 0; i < out->numel; i++) out->data[i] = (float)(out->data[i] * scale);
    out->fparam = (float)scale;
    out->iparam[0] = (int64_t)mask;
    return out;
}

cg_tensor *cg_tensor_sum_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&OP_SUM_DIMS, t, dims, ndims, keepdim, false);
}

cg_tensor *cg_tensor_mean_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim) {
    return reduce_dims(&OP_MEAN_DIMS, t, dims, ndims, keepdim, true);
}

/* ------------------------------------------------------------------ */
/* max and argmax along one dim                                        */
/* ------------------------------------------------------------------ */

/*
 * x seen as [outer, n, inner] around `dim`; for each (o, i) the first
 * index k of the largest x[o, k, i]. NaN wins over any number (PyTorch
 * propagates NaN through max). Rows of `inner` are compared at once, so
 * the loop runs over contiguous memory.
 */
static void max_scan(const float *x, int64_t outer, int64_t n, int64_t inner, float *val,
                     int64_t *idx) {
#pragma omp parallel for if (outer > 1 && outer * n * inner >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t o = 0; o < outer; o++) {
        const float *xo = x + o * n * inner;
        float *v = val + o * inner;
        int64_t *ix = idx + o * inner;
        for (int64_t i = 0; i < inner; i++) {
            v[i] = xo[i];
            ix[i] = 0;
        }
        for (int64_t k = 1; k < n; k++) {
            const float *row = xo + k * inner;
            for (int64_t i = 0; i < inner; i++) {
                bool take = row[i] > v[i] || (row[i] != row[i] && v[i] == v[i]);
                v[i] = take ? row[i] : v[i];
                ix[i] = take ? k : ix[i];
            }
        }
    }
}

/* Validates dim and fills the output shape and the [outer, n, inner] split;
 * -1 after cg_fail. */
static int max_plan(const char *name, const cg_tensor *x, int dim, bool keepdim, int64_t *oshape,
                    int *ondim, int64_t split[3]) {
    int d = cg_norm_dim(name, dim, x->ndim);
    if (d < 0) return -1;
    if (x->shape[d] == 0) {
        char s[64];
        cg_fail(CG_ERR_SHAPE, "%s: dim %d of %s is empty, it has no max", name, dim,
                cg_shape_str(x, s, sizeof s));
        return -1;
    }
    split[0] = split[2] = 1;
    *ondim = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (k < d) split[0] *= x->shape[k];
        if (k > d) split[2] *= x->shape[k];
        if (k != d)
            oshape[(*ondim)++] = x->shape[k];
        else if (keepdim)
            oshape[(*ondim)++] = 1;
    }
    split[1] = x->shape[d];
    return d;
}

/* dL/dx[o, k, i] = dL/dy[o, i] where k is the saved argmax, else 0. */
static void max_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x) || !out->aux) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const int64_t *idx = out->aux;
    const int64_t n = out->iparam[0], inner = out->iparam[1];
    const int64_t outer = inner ? out->numel / inner : 0;
    const float *g = out->grad;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            gx[(o * n + idx[o * inner + i]) * inner + i] += g[o * inner + i];
}
static const cg_op OP_MAX = {"max", max_backward};

/* Scratch for the winners' indices (and values, for argmax), taken before
 * the result so that a failed allocation leaves nothing to undo. */
static int64_t *alloc_idx(const char *name, const int64_t *oshape, int ondim) {
    int64_t n = 1;
    for (int d = 0; d < ondim; d++) n *= oshape[d];
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof *idx);
    if (!idx) cg_fail(CG_ERR_NOMEM, "%s: out of memory", name);
    return idx;
}

cg_tensor *cg_tensor_max(cg_tensor *t, int dim, bool keepdim) {
    if (!t) return NULL;
    int64_t oshape[CG_MAX_DIMS], split[3];
    int ondim;
    if (max_plan("max", t, dim, keepdim, oshape, &ondim, split) < 0) return NULL;
    int64_t *idx = alloc_idx("max", oshape, ondim);
    if (!idx) return NULL;
    cg_tensor *out = cg_op_result(&OP_MAX, oshape, ondim, t, NULL, NULL);
    if (!out) {
        free(idx);
        return NULL;
    }
    max_scan(t->data, split[0], split[1], split[2], out->data, idx);
    if (out->op) { /* the backward needs the winners; freed with out */
        out->aux = idx;
        out->iparam[0] = split[1];
        out->iparam[1] = split[2];
    } else {
        free(idx);
    }
    return out;
}

cg_tensor *cg_tensor_argmax(cg_tensor *t, int dim, bool keepdim) {
    if (!t) return NULL;
    int64_t oshape[CG_MAX_DIMS], split[3];
    int ondim;
    if (max_plan("argmax", t, dim, keepdim, oshape, &ondim, split) < 0) return NULL;
    int64_t *idx = alloc_idx("argmax", oshape, ondim);
    if (!idx) return NULL;
    /* Indices carry no gradient: a plain tensor, outside the graph. The
     * max values go to the result's buffer first and are then overwritten
     * by the indices. */
    cg_tensor *out = cg_tensor_alloc("argmax", oshape, ondim);
    if (out) {
        max_scan(t->data, split[0], split[1], split[2], out->data, idx);
        for (int64_t i = 0; i < out->numel; i++) out->data[i] = (float)idx[i];
    }
    free(idx);
    return out;
}
