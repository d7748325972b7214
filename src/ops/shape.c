/*
 * shape.c - ops that move elements without changing them.
 *
 * Views (reshape, unsqueeze, squeeze, rows) share their input's buffer, so
 * they cost no copy; a view is a window of `numel` elements starting at an
 * offset into its base, and its backward adds the gradient back into that
 * same window of the base's gradient. transpose, index_select, stack and
 * cat copy, and their backward is the matching copy in reverse (for
 * index_select a scatter-add, since an index may repeat).
 */
#include "cgrad_internal.h"


/* "[2, -1, 3]" for messages about a requested shape. */
static const char *dims_list(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ------------------------------------------------------------------ */
/* Views                                                               */
/* ------------------------------------------------------------------ */

/* d(view)/d(base) is the identity on the window: base.grad[offset + i] +=
 * view.grad[i]. iparam[0] = offset. */
static void view_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    gx += out->iparam[0];
    const float *g = out->grad;
    const int64_t n = out->numel;
#pragma omp parallel for if (n >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
}

static const cg_op OP_RESHAPE = {"reshape", view_backward};
static const cg_op OP_UNSQUEEZE = {"unsqueeze", view_backward};
static const cg_op OP_SQUEEZE = {"squeeze", view_backward};
static const cg_op OP_ROWS = {"rows", view_backward};

static cg_tensor *view(const cg_op *op, cg_tensor *t, const int64_t *shape, int ndim,
                       int64_t offset) {
    cg_tensor *out = cg_view_result(op, t, shape, ndim, offset);
    if (out) out->iparam[0] = offset;
    return out;
}

cg_tensor *cg_tensor_reshape(cg_tensor *t, const int64_t *shape, int ndim) {
    if (!t) return NULL;
    char want[96], have[64];
    if (ndim < 0 || ndim > CG_MAX_DIMS || (ndim > 0 && !shape)) {
        cg_fail(CG_ERR_SHAPE, "reshape: rank %d is outside 0..%d", ndim, CG_MAX_DIMS);
        return NULL;
    }
    int64_t s[CG_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1) {
            if (infer >= 0) {
                cg_fail(CG_ERR_SHAPE, "reshape: only one dim may be -1, got %s",
                        dims_list(shape, ndim, want, sizeof want));
                return NULL;
            }
            infer = d;
        } else if (s[d] < 0) {
            cg_fail(CG_ERR_SHAPE, "reshape: invalid size %lld in %s", (long long)s[d],
                    dims_list(shape, ndim, want, sizeof want));
            return NULL;
        } else {
            known *= s[d]; /* s[d] <= numel unless numel is 0, checked below */
            if (known > CG_MAX_NUMEL) known = CG_MAX_NUMEL + 1;
        }
    }
    if (infer >= 0) {
        /* With a 0 among the other sizes, any -1 would fit: ambiguous. */
        if (known == 0 || t->numel % known != 0) {
            cg_fail(CG_ERR_SHAPE, "reshape: cannot reshape %s (%lld elements) into %s",
                    cg_shape_str(t, have, sizeof have), (long long)t->numel,
                    dims_list(shape, ndim, want, sizeof want));
            return NULL;
        }
        s[infer] = t->numel / known;
        known = t->numel;
    }
    if (known != t->numel) {
        cg_fail(CG_ERR_SHAPE, "reshape: cannot reshape %s (%lld elements) into %s (%lld elements)",
                cg_shape_str(t, have, sizeof have), (long long)t->numel,
                dims_list(shape, ndim, want, sizeof want), (long long)known);
        return NULL;
    }
    return view(&OP_RESHAPE, t, s, ndim, 0);
}

cg_tensor *cg_tensor_unsqueeze(cg_tensor *t, int dim) {
    if (!t) return NULL;
    if (t->ndim == CG_MAX_DIMS) {
        char have[64];
        cg_fail(CG_ERR_SHAPE, "unsqueeze: %s already has the most dims (%d)",
                cg_shape_str(t, have, sizeof have), CG_MAX_DIMS);
        return NULL;
    }
    /* The new dim can go anywhere in 0..ndim, so dims count in rank ndim + 1. */
    int d = cg_norm_dim("unsqueeze", dim, t->ndim + 1);
    if (d < 0) return NULL;
    int64_t s[CG_MAX_DIMS];
    for (int k = 0, j = 0; k <= t->ndim; k++) s[k] = k == d ? 1 : t->shape[j++];
    return view(&OP_UNSQUEEZE, t, s, t->ndim + 1, 0);
}

cg_tensor *cg_tensor_squeeze(cg_tensor *t, int dim) {
    if (!t) return NULL;
    int d = cg_norm_dim("squeeze", dim, t->ndim);
    if (d < 0) return NULL;
    if (t->shape[d] != 1) {
        char have[64];
        cg_fail(CG_ERR_SHAPE, "squeeze: dim %d of %s has size %lld, not 1", dim,
                cg_shape_str(t, have, sizeof have), (long long)t->shape[d]);
        return NULL;
    }
    int64_t s[CG_MAX_DIMS];
    for (int k = 0, j = 0; k < t->ndim; k++)
        if (k != d) s[j++] = t->shape[k];
    return view(&OP_SQUEEZE, t, s, t->ndim - 1, 0);
}

/* Elements in one step along dim 0 (the product of the other dims). */
static int64_t row_len(const cg_tensor *t) {
    int64_t n = 1;
    for (int d = 1; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

cg_tensor *cg_tensor_rows(cg_tensor *t, int64_t start, int64_t end) {
    if (!t) return NULL;
    char have[64];
    if (t->ndim < 1) {
        cg_fail(CG_ERR_SHAPE, "rows: a scalar has no rows");
        return NULL;
    }
    if (start < 0 || end < start || end > t->shape[0]) {
        cg_fail(CG_ERR_ARG, "rows: [%lld, %lld) is not a range of the %lld rows of %s",
                (long long)start, (long long)end, (long long)t->shape[0],
                cg_shape_str(t, have, sizeof have));
        return NULL;
    }
    int64_t s[CG_MAX_DIMS];
    s[0] = end - start;
    for (int d = 1; d < t->ndim; d++) s[d] = t->shape[d];
    return view(&OP_ROWS, t, s, t->ndim, start * row_len(t));
}

/* ------------------------------------------------------------------ */
/* transpose                                                           */
/* ------------------------------------------------------------------ */

/* Tile edge for the transpose: a 32x32 float tile is 4 KiB, so the rows
 * read and the rows written both stay in L1. */
#define TILE 32

/* dst[j, i] (+)= src[i, j] for src [rows, cols]: the forward copies
 * (add = false), the backward, whose gradient is the transpose of the
 * output's, accumulates. */
static void transpose_into(float *dst, const float *src, int64_t rows, int64_t cols, bool add) {
#pragma omp parallel for if (rows * cols >= CG_PARALLEL_MIN) schedule(static)
    for (int64_t i0 = 0; i0 < rows; i0 += TILE) {
        int64_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
        for (int64_t j0 = 0; j0 < cols; j0 += TILE) {
            int64_t j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) {
                    float v = src[i * cols + j];
                    dst[j * rows + i] = add ? dst[j * rows + i] + v : v;
                }
        }
    }
}

static void transpose_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (gx) transpose_into(gx, out->grad, out->shape[0], out->shape[1], true);
}
static const cg_op OP_TRANSPOSE = {"transpose", transpose_backward};

cg_tensor *cg_tensor_transpose(cg_tensor *t) {
    if (!t) return NULL;
    if (t->ndim != 2) {
        char have[64];
        cg_fail(CG_ERR_SHAPE, "transpose: needs a 2-D tensor, got %s",
                cg_shape_str(t, have, sizeof have));
        return NULL;
    }
    int64_t s[2] = {t->shape[1], t->shape[0]};
    cg_tensor *out = cg_op_result(&OP_TRANSPOSE, s, 2, t, NULL, NULL);
    if (out) transpose_into(out->data, t->data, t->shape[0], t->shape[1], false);
    return out;
}

/* ------------------------------------------------------------------ */
/* index_select                                                        */
/* ------------------------------------------------------------------ */

/* x.grad[idx[k]] += out.grad[k], row by row and in k order: a repeated
 * index gets the sum of its rows' gradients, always added in one order.
 * aux holds a copy of idx. */
static void index_select_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x) || !out->aux) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const int64_t *idx = out->aux;
    const int64_t len = row_len(x), n = out->shape[0];
    const float *g = out->grad;
    for (int64_t k = 0; k < n; k++) {
        float *dst = gx + idx[k] * len;
        const float *src = g + k * len;
        for (int64_t i = 0; i < len; i++) dst[i] += src[i];
    }
}
static const cg_op OP_INDEX_SELECT = {"index_select", index_select_backward};

/* Floats in a 64-byte cache line: the unit the prefetches below ask for. */
#define LINE_FLOATS 16
/* Elements from which a gather takes more than one thread (256 KiB). */
#define GATHER_PARALLEL_MIN (1 << 16)

/*
 * out[k] = x[idx[k]] for k in [k0, k1), rows of `len` floats. The rows of a
 * shuffled batch sit at random places in a table far larger than the
 * caches, and the hardware prefetcher, which follows sequential streams
 * and stops at page ends, starts over on every row. So while row k is
 * copied, row k + 2 is requested a line per line copied: two rows of reads
 * always in flight: an epoch's gathers of MNIST_SAMPLE then take about two
 * thirds of the time a memcpy per row does, near a sequential read of the
 * same bytes (bench/README.md, "Figures behind source comments").
 */
static void gather_rows(float *restrict out, const float *restrict x, const int64_t *idx,
                        int64_t k0, int64_t k1, int64_t len) {
    for (int64_t k = k0; k < k1; k++) {
        const float *src = x + idx[k] * len;
        const float *next = k + 2 < k1 ? x + idx[k + 2] * len : src;
        float *dst = out + k * len;
        int64_t i = 0;
        for (; i + LINE_FLOATS <= len; i += LINE_FLOATS) {
            __builtin_prefetch(next + i);
            memcpy(dst + i, src + i, LINE_FLOATS * sizeof(float)); /* inlined: 4 moves */
        }
        if (i < len) {
            __builtin_prefetch(next + i);
            memcpy(dst + i, src + i, (size_t)(len - i) * sizeof(float));
        }
    }
}

/* Rows [lo, hi) of an index_select's gather, for cg_guarded_for. */
typedef struct gather_job {
    float *dst;
    const float *src;
    const int64_t *idx;
    int64_t len;
} gather_job;

static void gather_part(void *ctx, int64_t lo, int64_t hi) {
    const gather_job *j = ctx;
    gather_rows(j->dst, j->src, j->idx, lo, hi, j->len);
}

cg_status cg_check_rows(const char *op, const cg_tensor *t, const int64_t *idx, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        if (idx[k] < 0 || idx[k] >= t->shape[0]) {
            char have[64];
            return cg_fail(CG_ERR_ARG, "%s: index %lld (position %lld) is outside 0..%lld of %s",
                           op, (long long)idx[k], (long long)k, (long long)t->shape[0] - 1,
                           cg_shape_str(t, have, sizeof have));
        }
    }
    return CG_OK;
}

cg_tensor *cg_tensor_index_select(cg_tensor *t, const int64_t *idx, int64_t n) {
    if (!t) return NULL;
    if (t->ndim < 1) {
        cg_fail(CG_ERR_SHAPE, "index_select: a scalar has no rows");
        return NULL;
    }
    if (n < 0 || (n > 0 && !idx)) {
        cg_fail(CG_ERR_ARG, "index_select: need n >= 0 indices, got %lld%s", (long long)n,
                idx ? "" : " and no index array");
        return NULL;
    }
    if (cg_check_rows("index_select", t, idx, n) != CG_OK) return NULL;
    int64_t s[CG_MAX_DIMS];
    s[0] = n;
    for (int d = 1; d < t->ndim; d++) s[d] = t->shape[d];
    /* The indices are copied before the result exists, so that a failed
     * allocation leaves nothing to undo. The size is bounded by the result's. */
    int64_t *saved = NULL;
    bool keep = cg_grad_enabled() && t->requires_grad;
    if (keep) {
        if (cg_shape_numel("index_select", s, t->ndim) < 0) return NULL;
        saved = malloc((size_t)(n ? n : 1) * sizeof *saved);
        if (!saved) {
            cg_fail(CG_ERR_NOMEM, "index_select: out of memory");
            return NULL;
        }
        if (n) memcpy(saved, idx, (size_t)n * sizeof *saved);
    }
    cg_tensor *out = cg_op_result(&OP_INDEX_SELECT, s, t->ndim, t, NULL, NULL);
    if (!out) {
        free(saved);
        return NULL;
    }
    if (!out->op) { /* no graph recorded, nothing for a backward to read */
        free(saved);
        saved = NULL;
    }
    out->aux = saved;
    const int64_t len = row_len(t);
    /* Gathering is latency-bound: a second thread keeps twice the reads in
     * flight, and pays from a training batch's 256 x 784 floats on. Each
     * part is the same copy on any thread count, so the straggler guard
     * may keep it on one. */
    gather_job job = {out->data, t->data, idx, len};
    cg_guarded_for(n * len >= GATHER_PARALLEL_MIN ? cg_get_num_threads() : 1, n, 4, gather_part,
                   &job);
    return out;
}

/* ------------------------------------------------------------------ */
/* cat and stack                                                       */
/* ------------------------------------------------------------------ */

/*
 * Both are one layout: the output is `outer` blocks, and block o is input
 * 0's o-th chunk, then input 1's, ... Input i's chunk is numel_i / outer
 * elements. cat along d: outer = the product of the dims before d. stack:
 * every input gains a leading dim of 1, so outer = 1 and each chunk is a
 * whole input. The backward reads outer from iparam[0] and copies the
 * chunks of the gradient back.
 *
 * An op records at most three inputs (cg_tensor.src), so a cat of more
 * tensors that needs a gradient is built as a tree of cats of at most
 * three, each level a cat along the same dim. Without a gradient to
 * record, any number of inputs is one pass.
 */

static void cat_backward(cg_tensor *out) {
    const int64_t outer = out->iparam[0];
    if (outer == 0) return;
    const int64_t total = out->numel / outer;
    int64_t off = 0;
    for (int i = 0; i < 3 && out->src[i]; i++) {
        cg_tensor *x = out->src[i];
        const int64_t chunk = x->numel / outer;
        float *gx = cg_wants_grad(x) ? cg_grad_buf(x) : NULL;
        if (gx)
            for (int64_t o = 0; o < outer; o++) {
                const float *g = out->grad + o * total + off;
                float *dst = gx + o * chunk;
                for (int64_t j = 0; j < chunk; j++) dst[j] += g[j];
            }
        off += chunk;
    }
}
static const cg_op OP_CAT = {"cat", cat_backward};
static const cg_op OP_STACK = {"stack", cat_backward};

/* One cat node over ts[0..n) (n <= 3 when a graph is recorded), shape
 * already checked. */
static cg_tensor *cat_node(const cg_op *op, cg_tensor *const *ts, int n, const int64_t *shape,
                           int ndim, int64_t outer) {
    cg_tensor *out = cg_op_result(op, shape, ndim, ts[0], n > 1 ? ts[1] : NULL,
                                  n > 2 ? ts[2] : NULL);
    if (!out) return NULL;
    out->iparam[0] = outer;
    if (outer == 0) return out;
    const int64_t total = out->numel / outer;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const int64_t chunk = ts[i]->numel / outer;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->data + o * total + off, ts[i]->data + o * chunk,
                   (size_t)chunk * sizeof(float));
        off += chunk;
    }
    return out;
}

static bool any_wants_grad(cg_tensor *const *ts, int n) {
    if (!cg_grad_enabled()) return false;
    for (int i = 0; i < n; i++)
        if (ts[i]->requires_grad) return true;
    return false;
}

/* cat of ts[0..n) along `dim` (the new dim 0 when stacking, then dim is 0
 * and the output shape gains it). */
static cg_tensor *cat_tree(cg_tensor *const *ts, int n, int dim, bool stack) {
    const cg_tensor *t0 = ts[0];
    int64_t shape[CG_MAX_DIMS];
    int ndim;
    int64_t outer = 1;
    if (stack) {
        ndim = t0->ndim + 1;
        shape[0] = n;
        for (int d = 0; d < t0->ndim; d++) shape[d + 1] = t0->shape[d];
    } else {
        ndim = t0->ndim;
        for (int d = 0; d < ndim; d++) shape[d] = t0->shape[d];
        shape[dim] = 0;
        for (int i = 0; i < n; i++) shape[dim] += ts[i]->shape[dim];
        for (int d = 0; d < dim; d++) outer *= shape[d];
    }
    if (n <= 3 || !any_wants_grad(ts, n))
        return cat_node(stack ? &OP_STACK : &OP_CAT, ts, n, shape, ndim, outer);

    /* Three sub-trees, built in a scope of our own so that they are freed
     * by the graph that holds them (or at once if we fail); the node on
     * top is made outside it and so belongs to the caller's scope. */
    cg_tensor *part[3] = {NULL, NULL, NULL};
    bool ok = true;
    cg_scope_begin();
    for (int g = 0, lo = 0; g < 3; g++) {
        int hi = (int)((int64_t)n * (g + 1) / 3);
        part[g] = cg_tensor_retain(cat_tree(ts + lo, hi - lo, dim, stack));
        ok = ok && part[g];
        lo = hi;
    }
    cg_scope_end();
    cg_tensor *out = ok ? cat_node(&OP_CAT, part, 3, shape, ndim, outer) : NULL;
    for (int g = 0; g < 3; g++) cg_tensor_release(part[g]);
    return out;
}

/* Common checks: false after cg_fail, or, for a NULL tensor among the
 * inputs, false with the message left alone (NULL in, NULL out). */
static bool cat_inputs_ok(const char *name, cg_tensor *const *ts, int n) {
    if (!ts || n < 1) {
        cg_fail(CG_ERR_ARG, "%s: needs at least one tensor, got %d", name, ts ? n : 0);
        return false;
    }
    for (int i = 0; i < n; i++)
        if (!ts[i]) return false;
    return true;
}

cg_tensor *cg_tensor_stack(cg_tensor *const *ts, int n) {
    if (!cat_inputs_ok("stack", ts, n)) return NULL;
    char s0[64], si[64];
    for (int i = 1; i < n; i++) {
        if (!cg_tensor_same_shape(ts[i], ts[0])) {
            cg_fail(CG_ERR_SHAPE, "stack: tensor %d has shape %s but tensor 0 has %s", i,
                    cg_shape_str(ts[i], si, sizeof si), cg_shape_str(ts[0], s0, sizeof s0));
            return NULL;
        }
    }
    if (ts[0]->ndim == CG_MAX_DIMS) {
        cg_fail(CG_ERR_SHAPE, "stack: %s already has the most dims (%d)",
                cg_shape_str(ts[0], s0, sizeof s0), CG_MAX_DIMS);
        return NULL;
    }
    return cat_tree(ts, n, 0, true);
}

cg_tensor *cg_tensor_cat(cg_tensor *const *ts, int n, int dim) {
    if (!cat_inputs_ok("cat", ts, n)) return NULL;
    int d = cg_norm_dim("cat", dim, ts[0]->ndim);
    if (d < 0) return NULL;
    char s0[64], si[64];
    for (int i = 0; i < n; i++) {
        bool fits = ts[i]->ndim == ts[0]->ndim;
        for (int k = 0; k < ts[0]->ndim && fits; k++)
            fits = k == d || ts[i]->shape[k] == ts[0]->shape[k];
        if (!fits) {
            cg_fail(CG_ERR_SHAPE,
                    "cat: tensor %d has shape %s, which does not fit %s outside dim %d", i,
                    cg_shape_str(ts[i], si, sizeof si), cg_shape_str(ts[0], s0, sizeof s0), dim);
            return NULL;
        }
    }
    /* The joined size is checked where the result is allocated. */
    return cat_tree(ts, n, d, false);
}
