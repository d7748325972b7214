/*
 * broadcast.c - NumPy/PyTorch broadcasting, the one mechanism behind every
 * elementwise op with more than one input and behind the sum reductions.
 *
 * Rule: align the shapes at the right; in each dim the sizes must be equal
 * or one of them 1, and a size-1 (or missing) dim is stretched by reading
 * the same element again, i.e. with stride 0. So [256,1] + [1] -> [256,1],
 * [2,1] * [1,3] -> [2,3].
 *
 * Broadcasting's adjoint is summation: if y = broadcast(x), then
 * dL/dx = sum of dL/dy over the stretched dims (cg_sum_to_shape). The same
 * function is the forward of sum over dims, with keepdim.
 */
#include "cgrad_internal.h"

cg_status cg_bcast_init_shapes(cg_bcast *p, const char *op, const int64_t *const *shapes,
                               const int *ndims, int n) {
    memset(p, 0, sizeof *p);
    p->n_in = n;
    int nd = 0;
    for (int i = 0; i < n; i++) nd = ndims[i] > nd ? ndims[i] : nd;
    p->out_ndim = nd;

    /* Output size per dim, and each input's element strides in output coords. */
    int64_t stride[3][CG_MAX_DIMS];
    for (int d = nd - 1; d >= 0; d--) {
        int64_t size = 1;
        for (int i = 0; i < n; i++) {
            int k = d - (nd - ndims[i]); /* input i's dim aligned with d */
            int64_t s = k >= 0 ? shapes[i][k] : 1;
            if (s == size || s == 1) continue;
            if (size != 1) {
                char b[3][64];
                for (int j = 0; j < n && j < 3; j++) cg_dims_str(shapes[j], ndims[j], b[j], 64);
                if (n == 2)
                    return cg_fail(CG_ERR_SHAPE, "%s: cannot broadcast %s with %s", op, b[0], b[1]);
                return cg_fail(CG_ERR_SHAPE, "%s: cannot broadcast %s, %s and %s", op, b[0], b[1],
                               b[2]);
            }
            size = s;
        }
        p->out_shape[d] = size;
    }
    for (int i = 0; i < n; i++) {
        int64_t s = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int k = d - (nd - ndims[i]);
            int64_t in = k >= 0 ? shapes[i][k] : 1;
            stride[i][d] = (in == 1) ? 0 : s;
            s *= in;
        }
    }

    /* Merge neighbouring dims that every input walks contiguously (or not
     * at all), and drop size-1 dims: fewer, longer runs. */
    int m = 0;
    for (int d = 0; d < nd; d++) {
        int64_t size = p->out_shape[d];
        if (size == 1) continue;
        bool merge = m > 0;
        for (int i = 0; i < n && merge; i++)
            merge = p->stride[i][m - 1] == stride[i][d] * size;
        if (merge) {
            p->shape[m - 1] *= size;
            for (int i = 0; i < n; i++) p->stride[i][m - 1] = stride[i][d];
        } else {
            p->shape[m] = size;
            for (int i = 0; i < n; i++) p->stride[i][m] = stride[i][d];
            m++;
        }
    }
    if (m == 0) { /* a single element */
        p->shape[0] = 1;
        for (int i = 0; i < n; i++) p->stride[i][0] = 0;
        m = 1;
    }
    p->ndim = m;
    p->inner = p->shape[m - 1];
    p->rows = 1;
    for (int d = 0; d < m - 1; d++) p->rows *= p->shape[d];
    for (int i = 0; i < n; i++) p->inner_stride[i] = p->stride[i][m - 1];
    return CG_OK;
}

cg_status cg_bcast_init(cg_bcast *p, const char *op, cg_tensor *const *ins, int n) {
    const int64_t *shapes[3];
    int ndims[3];
    for (int i = 0; i < n; i++) {
        shapes[i] = ins[i]->shape;
        ndims[i] = ins[i]->ndim;
    }
    return cg_bcast_init_shapes(p, op, shapes, ndims, n);
}

void cg_bcast_row_offsets(const cg_bcast *p, int64_t row, int64_t off[3]) {
    off[0] = off[1] = off[2] = 0;
    for (int d = p->ndim - 2; d >= 0; d--) {
        int64_t idx = row % p->shape[d];
        row /= p->shape[d];
        for (int i = 0; i < p->n_in; i++) off[i] += idx * p->stride[i][d];
    }
}

/*
 * Row sums: every run of `inner` source elements reduces to one element,
 * acc[off] += sum(run). Runs that share a destination element (a middle dim
 * reduced as well, e.g. [A,B,C] -> [1,B,1]) add in run order; when every run
 * has its own element (the common [R,C] -> [R,1], a mean over the last dim)
 * the runs are independent and may go to different threads.
 */
static void sum_rows(const cg_bcast *p, double *acc, const float *src) {
    const int64_t rows = p->rows, inner = p->inner;
    const bool own_element = p->ndim == 1 || (p->ndim == 2 && p->stride[0][0] != 0);
    const bool parallel = own_element && rows > 1 && rows * inner >= CG_PARALLEL_MIN;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3];
        cg_bcast_row_offsets(p, r, off);
        acc[off[0]] += cg_sum_floats(src + r * inner, inner);
    }
}

/*
 * Column sums: the destination walks along each run, acc[off + i] +=
 * src[r, i] (a bias gradient [N,C] -> [C], the mean image [N,784] -> [784]).
 * Each acc element is one chain of adds over rows r0..r1 in order; threads
 * take disjoint column ranges [lo, hi) and every chain stays whole, so the
 * bits do not depend on the thread count.
 */
static void sum_cols_range(const cg_bcast *p, double *acc, const float *src, int64_t r0,
                           int64_t r1, int64_t lo, int64_t hi) {
    const int64_t inner = p->inner, n = (hi < inner ? hi : inner) - lo;
    int64_t r = r0;
    /* Four runs at a time when they land on the same slice (always, for
     * [R,C] -> [C]): the same chain of adds as one run at a time, but acc
     * is loaded and stored once per four, which keeps the loop at memory
     * speed. */
    for (; r + 4 <= r1; r += 4) {
        int64_t off[4][3];
        for (int q = 0; q < 4; q++) cg_bcast_row_offsets(p, r + q, off[q]);
        if (off[1][0] != off[0][0] || off[2][0] != off[0][0] || off[3][0] != off[0][0]) break;
        double *a = acc + off[0][0] + lo;
        const float *s0 = src + r * inner + lo, *s1 = s0 + inner, *s2 = s1 + inner,
                    *s3 = s2 + inner;
        for (int64_t i = 0; i < n; i++) {
            double v = a[i];
            v += s0[i];
            v += s1[i];
            v += s2[i];
            v += s3[i];
            a[i] = v;
        }
    }
    for (; r < r1; r++) {
        int64_t off[3];
        cg_bcast_row_offsets(p, r, off);
        double *a = acc + off[0] + lo;
        const float *s = src + r * inner + lo;
        for (int64_t i = 0; i < n; i++) a[i] += s[i];
    }
}

/* Rows per partial sum when many rows fold into one row (see sum_cols). */
#define SUM_CHUNK_ROWS 512

static void sum_cols(const cg_bcast *p, double *acc, const float *src) {
    const int64_t rows = p->rows, inner = p->inner;
    const int64_t chunks = (rows + SUM_CHUNK_ROWS - 1) / SUM_CHUNK_ROWS;
    const bool one_slice = p->ndim == 2 && p->stride[0][0] == 0; /* [R,C] -> [C] */
    if (one_slice && chunks > 1 && rows * inner >= CG_PARALLEL_MIN) {
        /*
         * A tall matrix to one row (12,396 images to their mean): cutting
         * columns would have each thread read a short piece of every row,
         * which the hardware prefetcher follows poorly (measured: half the
         * bandwidth of whole rows). So rows go in fixed chunks of
         * SUM_CHUNK_ROWS, each summed into a partial row of its own (any
         * thread may take any chunk), and the partial rows are then added
         * in chunk order. The chunks depend on the shape alone, so the bits
         * are the same on any number of threads.
         */
        double *part = (double *)cg_floats_alloc(2 * chunks * inner);
        if (part) {
            memset(part, 0, (size_t)(chunks * inner) * sizeof *part);
#pragma omp parallel for schedule(static)
            for (int64_t c = 0; c < chunks; c++) {
                const int64_t r0 = c * SUM_CHUNK_ROWS;
                const int64_t r1 = r0 + SUM_CHUNK_ROWS < rows ? r0 + SUM_CHUNK_ROWS : rows;
                /* the same shape with acc moved: chunk c's partial row */
                sum_cols_range(p, part + c * inner, src, r0, r1, 0, inner);
            }
            for (int64_t c = 0; c < chunks; c++)
                for (int64_t i = 0; i < inner; i++) acc[i] += part[c * inner + i];
            cg_floats_free((float *)part, 2 * chunks * inner);
            return;
        }
    }
    /* Column blocks of whole cache lines (16 floats), at most one per thread. */
    const int64_t lines = (inner + 15) / 16;
    int nt = rows * inner >= CG_PARALLEL_MIN ? cg_get_num_threads() : 1;
    if (nt > lines) nt = (int)lines;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; t++)
        sum_cols_range(p, acc, src, 0, rows, lines * t / nt * 16, lines * (t + 1) / nt * 16);
}

cg_status cg_sum_to_shape(float *dst, const int64_t *dst_shape, int dst_ndim, const float *src,
                          const int64_t *src_shape, int src_ndim) {
    cg_bcast p;
    const int64_t *shapes[2] = {dst_shape, src_shape};
    int ndims[2] = {dst_ndim, src_ndim};
    cg_status st = cg_bcast_init_shapes(&p, "sum_to_shape", shapes, ndims, 2);
    if (st != CG_OK) return st;
    /* src must already have the broadcast shape, i.e. dst only broadcasts. */
    int64_t src_numel = 1, dst_numel = 1;
    for (int d = 0; d < src_ndim; d++) src_numel *= src_shape[d];
    for (int d = 0; d < dst_ndim; d++) dst_numel *= dst_shape[d];
    if (src_numel != p.rows * p.inner || src_ndim < dst_ndim)
        return cg_fail(CG_ERR_SHAPE, "sum_to_shape: shapes do not reduce");
    if (dst_numel == src_numel) { /* nothing stretched: a plain add */
#pragma omp parallel for schedule(static) if (src_numel >= CG_PARALLEL_MIN)
        for (int64_t i = 0; i < src_numel; i++) dst[i] += src[i];
        return CG_OK;
    }
    /* Accumulate in double, each destination element over the source in
     * row order, then add once: exact enough for a mean over 12,396 images
     * and the same bits on every run and any thread count. */
    /* The accumulator comes from the float pool (two floats per double, and
     * 64-byte aligned), so a training loop's backward does not malloc. */
    double *acc = (double *)cg_floats_alloc(2 * dst_numel);
    if (!acc) return cg_fail(CG_ERR_NOMEM, "sum_to_shape: out of memory");
    memset(acc, 0, (size_t)dst_numel * sizeof *acc);
    if (p.inner_stride[0])
        sum_cols(&p, acc, src);
    else
        sum_rows(&p, acc, src);
    for (int64_t i = 0; i < dst_numel; i++) dst[i] += (float)acc[i];
    cg_floats_free((float *)acc, 2 * dst_numel);
    return CG_OK;
}
