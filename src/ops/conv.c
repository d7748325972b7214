/*
 * conv.c - 2-D convolution (cross-correlation, as torch.nn.functional.conv2d),
 * NCHW, forward and both backward products.
 *
 * The math, with s = stride, p = pad, x [N,C,H,W], w [O,C,KH,KW], b [O]:
 *
 *   y[n,o,i,j] = b[o] + sum_{c,kh,kw} w[o,c,kh,kw] * x[n, c, i*s+kh-p, j*s+kw-p]
 *
 * (x is 0 outside [0,H) x [0,W)). Write cols_n [K, OH*OW], K = C*KH*KW, for
 * the input pixels each output position sees (im2col); then per image
 * Y_n = W @ cols_n with W as [O, K], and with G = dL/dY:
 *
 *   dL/dw = sum over n of G_n @ cols_n^T            [O, K]
 *   dL/dx = col2im(W^T @ G_n)   (each column's K values added back onto the
 *                                pixels they were read from)
 *   dL/db = sum over n, i, j of G[n, :, i, j]
 *
 * Two implementations compute this:
 *
 *  - "im2col": the formulas as written, the columns of a group of images
 *    through cg_gemm. Portable (cg_gemm's kernels): the path where the CPU
 *    lacks AVX2 + FMA or the generic GEMM kernel was asked for, and for dX
 *    when C % 8 != 0 (see use_direct).
 *
 *  - "direct" (x86 with AVX2 + FMA): no columns. A register tile of MR x NW
 *    outputs (6 x 16 or 8 x 8 with AVX2; 8 x 16 or 8 x 32 with AVX-512,
 *    where the CPU has it) runs one FMA chain per element, its "A" operand
 *    broadcast from a[row offset + step offset], its "B" operand loaded as
 *    vectors; the offsets come from tables built once per call:
 *      forward  rows = output positions, A(i, k) = x[win(i) + koffn(k)]:
 *               x read in place (NCHW); B = w packed [k][NW]; chain over k.
 *               Finished rows (NHWC) go to y 8 x 8 at a time, with the bias.
 *      dW       rows = channels of one tap, A(i, p) = x[koffn(i) + win(p)],
 *               x in place again; B = dL/dy in NHWC (one transpose per
 *               group); chain over the positions. (Rows = output channels,
 *               or any taps over a padded NHWC copy of x, where C does not
 *               allow rows within one tap: see dw_mode.)
 *      dX       rows = positions, A = dL/dy in NHWC, B = w as [O][K]; chain
 *               over O; each finished row of one tap's channels is added
 *               onto a padded NHWC dL/dx (col2im in the tile's epilogue),
 *               which then goes back onto x's gradient, NCHW.
 *    Output positions are sorted into classes by which taps fall inside the
 *    input, and tiles skip the taps in the padding: a third of the work in
 *    simple_cnn's conv3 and conv4, more than half in conv5.
 *
 * Measured, bench/bench_conv.c (batch 512, simple_cnn's five layers,
 * medians, a 2-core Xeon shared with other work): one thread, the direct
 * path ran every pass 2x to 24x faster than im2col + cg_gemm (an epoch's
 * convolutions: 1.1-1.5 s, 1.4-1.7 s with the AVX2 tiles only, 6.4-7.5 s by
 * im2col), but dX with C % 8 != 0, which adds its tiles onto the input a
 * float at a time (conv1: 3.2-4.4 ms direct, 2.7-3.6 ms by im2col; training
 * never asks for it): use_direct sends that one to im2col.
 * Two threads: 0.62 s an epoch (AVX2 tiles only: 0.77 s); PyTorch 1.13
 * (oneDNN, AVX-512) took 1.09 s for the same passes.
 *
 * Threads: the batch is cut into groups of g images, g from the shape alone,
 * and groups go through cg_guarded_for (work stealing). Forward: each output
 * is its own chain over K, so the bits do not depend on the grouping either.
 * dX: an image's gradient is made by one group, in a fixed order. dW and db:
 * each group writes its own partial sums, then the partials are added in
 * group order - the same order on any number of threads.
 *
 * Memory: all workspace (packed weights, tables, the partials, each group's
 * NHWC buffers) comes from the per-thread pools and goes back at the end of
 * the call; every thread of a region first takes and returns its buffer once
 * (the setup), so a thread that only steals in a later step still finds it in
 * its pool. A training step therefore allocates nothing after its first.
 */
#include "cgrad_internal.h"

#include <omp.h>
#include <stdatomic.h>

/* Below this many flops a pass stays on one thread (as cg_gemm's threshold). */
#define CONV_PARALLEL_MIN_FLOPS (1 << 20)

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ------------------------------------------------------------------ */
/* Shapes                                                              */
/* ------------------------------------------------------------------ */

typedef struct conv_dims {
    int64_t n, c, h, w; /* x [N, C, H, W]    */
    int64_t o, kh, kw;  /* w [O, C, KH, KW]  */
    int64_t oh, ow;     /* y [N, O, OH, OW]  */
    int64_t s, pad;
    int64_t ohw, k; /* OH*OW positions per image; K = C*KH*KW */
} conv_dims;

static conv_dims dims_of(const cg_tensor *x, const cg_tensor *w, int64_t s, int64_t pad) {
    conv_dims d;
    d.n = x->shape[0], d.c = x->shape[1], d.h = x->shape[2], d.w = x->shape[3];
    d.o = w->shape[0], d.kh = w->shape[2], d.kw = w->shape[3];
    d.s = s, d.pad = pad;
    d.oh = (d.h + 2 * pad - d.kh) / s + 1;
    d.ow = (d.w + 2 * pad - d.kw) / s + 1;
    d.ohw = d.oh * d.ow;
    d.k = d.c * d.kh * d.kw;
    return d;
}

static double conv_flops(const conv_dims *d) {
    return 2.0 * (double)d->n * (double)d->o * (double)d->ohw * (double)d->k;
}

/* Threads for a pass of `flops` cut into `units` groups. */
static int threads_for(double flops, int64_t units) {
    int nt = cg_get_num_threads();
    if (flops < CONV_PARALLEL_MIN_FLOPS || omp_in_parallel()) nt = 1;
    if (nt > units) nt = (int)units;
    return nt < 1 ? 1 : nt;
}

/* Where dL/dw[o][c][kh][kw] sits in a group's partial: o*so + c*sc + t*st,
 * t = kh*KW + kw (each path has its own layout). */
typedef struct part_layout {
    int64_t so, sc, st, size;
} part_layout;

/* What a pass's groups share (all paths). */
typedef struct conv_job {
    const conv_dims *d;
    const struct direct_plan *plan;  /* direct path only */
    const struct direct_ctx *tables; /* direct path only */
    int64_t g;                       /* images per group */
    int64_t ws;                      /* floats of workspace a piece takes */
    const float *x, *w, *b, *dy;
    float *y, *gx;
    float *part_w; /* [groups][lw.size]: each group's dL/dw */
    float *part_b; /* [groups][O]: each group's dL/db */
    part_layout lw;
    bool want_x, want_w, want_b;
} conv_job;

/* Every thread of the region takes and returns its piece's workspace once, so
 * the size sits in each thread's pool before any piece runs (see the top). */
static void warm_pool(void *ctx, int t, int n) {
    (void)t, (void)n;
    const conv_job *j = ctx;
    cg_floats_free(cg_floats_alloc(j->ws), j->ws);
}

/* db's partial of images [n0, n0 + gn): sums in double, in a fixed order. */
static void bias_partial(const conv_dims *d, const float *dy, int64_t n0, int64_t gn, float *out) {
    for (int64_t o = 0; o < d->o; o++) {
        double s = 0.0;
        for (int64_t gi = 0; gi < gn; gi++)
            s += cg_sum_floats(dy + ((n0 + gi) * d->o + o) * d->ohw, d->ohw);
        out[o] = (float)s;
    }
}

/* db[o] += the groups' partials, in group order. */
static void bias_reduce(const conv_dims *d, const float *part, int64_t groups, float *gb) {
    for (int64_t o = 0; o < d->o; o++) {
        double s = 0.0;
        for (int64_t q = 0; q < groups; q++) s += part[q * d->o + o];
        gb[o] += (float)s;
    }
}

/* gw += the groups' partials, in group order (summed in place into the
 * first, element by element, then mapped onto w's layout). */
static void weight_reduce(const conv_dims *d, float *part, part_layout L, int64_t groups,
                          float *gw) {
    for (int64_t q = 1; q < groups; q++) {
        const float *src = part + q * L.size;
        for (int64_t e = 0; e < L.size; e++) part[e] += src[e];
    }
    /* gw in order (its writes contiguous; strided reads cost less). */
    const int64_t T = d->kh * d->kw;
    for (int64_t o = 0; o < d->o; o++)
        for (int64_t c = 0; c < d->c; c++)
            for (int64_t t = 0; t < T; t++)
                gw[(o * d->c + c) * T + t] += part[o * L.so + c * L.sc + t * L.st];
}

/*
 * The definitions as plain loops, for images [n0, n0 + gn) of a piece whose
 * workspace could not be had (so that nothing fails once the result exists).
 */
static void naive_forward(const conv_job *j, int64_t n0, int64_t gn) {
    const conv_dims *d = j->d;
    for (int64_t n = n0; n < n0 + gn; n++)
        for (int64_t o = 0; o < d->o; o++)
            for (int64_t i = 0; i < d->oh; i++)
                for (int64_t jj = 0; jj < d->ow; jj++) {
                    float s = 0.0f;
                    for (int64_t c = 0; c < d->c; c++)
                        for (int64_t kh = 0; kh < d->kh; kh++)
                            for (int64_t kw = 0; kw < d->kw; kw++) {
                                const int64_t ih = i * d->s + kh - d->pad,
                                              iw = jj * d->s + kw - d->pad;
                                if (ih >= 0 && ih < d->h && iw >= 0 && iw < d->w)
                                    s += j->w[((o * d->c + c) * d->kh + kh) * d->kw + kw] *
                                         j->x[((n * d->c + c) * d->h + ih) * d->w + iw];
                            }
                    j->y[((n * d->o + o) * d->oh + i) * d->ow + jj] = s + (j->b ? j->b[o] : 0.0f);
                }
}

static void naive_backward(const conv_job *j, int64_t q, int64_t n0, int64_t gn) {
    const conv_dims *d = j->d;
    if (j->want_w) memset(j->part_w + q * j->lw.size, 0, (size_t)j->lw.size * sizeof(float));
    for (int64_t o = 0; o < d->o; o++)
        for (int64_t c = 0; c < d->c; c++)
            for (int64_t kh = 0; kh < d->kh; kh++)
                for (int64_t kw = 0; kw < d->kw; kw++)
                    for (int64_t n = n0; n < n0 + gn; n++)
                        for (int64_t i = 0; i < d->oh; i++)
                            for (int64_t jj = 0; jj < d->ow; jj++) {
                                const int64_t ih = i * d->s + kh - d->pad,
                                              iw = jj * d->s + kw - d->pad;
                                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                                const float g = j->dy[((n * d->o + o) * d->oh + i) * d->ow + jj];
                                if (j->want_w) {
                                    float *pw = j->part_w + q * j->lw.size + o * j->lw.so +
                                                c * j->lw.sc + (kh * d->kw + kw) * j->lw.st;
                                    *pw += g * j->x[((n * d->c + c) * d->h + ih) * d->w + iw];
                                }
                                if (j->want_x)
                                    j->gx[((n * d->c + c) * d->h + ih) * d->w + iw] +=
                                        g * j->w[((o * d->c + c) * d->kh + kh) * d->kw + kw];
                            }
}

/* ------------------------------------------------------------------ */
/* im2col + cg_gemm                                                    */
/* ------------------------------------------------------------------ */

/* Columns of a group this size (K x g*OH*OW floats) stay in L2. */
#define IM2COL_COLS_FLOATS (64 * 1024)

/*
 * cols[r][gi*OHW + i*OW + j], r = (c*KH + kh)*KW + kw: the pixel that tap r
 * of output (i, j) of image gi reads, 0 in the padding. With add, the
 * adjoint (col2im): x[...] += cols[r][...], in the same order.
 */
static void im2col(const conv_dims *d, float *x, int64_t gn, float *cols, bool add) {
    const int64_t npos = gn * d->ohw;
    for (int64_t c = 0; c < d->c; c++)
        for (int64_t kh = 0; kh < d->kh; kh++)
            for (int64_t kw = 0; kw < d->kw; kw++) {
                float *row = cols + ((c * d->kh + kh) * d->kw + kw) * npos;
                /* Output columns j whose input column j*s + kw - pad is inside. */
                const int64_t jlo = min64(d->ow, max64(0, cdiv(d->pad - kw, d->s)));
                const int64_t jhi = max64(jlo, min64(d->ow, cdiv(d->w + d->pad - kw, d->s)));
                for (int64_t gi = 0; gi < gn; gi++) {
                    float *img = x + (gi * d->c + c) * d->h * d->w;
                    for (int64_t i = 0; i < d->oh; i++) {
                        float *col = row + gi * d->ohw + i * d->ow;
                        const int64_t ih = i * d->s + kh - d->pad;
                        if (ih < 0 || ih >= d->h) {
                            if (!add) memset(col, 0, (size_t)d->ow * sizeof(float));
                            continue;
                        }
                        float *src = img + ih * d->w + kw - d->pad;
                        if (add) {
                            for (int64_t j = jlo; j < jhi; j++) src[j * d->s] += col[j];
                        } else {
                            for (int64_t j = 0; j < jlo; j++) col[j] = 0.0f;
                            for (int64_t j = jlo; j < jhi; j++) col[j] = src[j * d->s];
                            for (int64_t j = jhi; j < d->ow; j++) col[j] = 0.0f;
                        }
                    }
                }
            }
}

static int64_t im2col_group(const conv_dims *d) {
    const int64_t per_image = max64(1, d->k * d->ohw);
    return max64(1, min64(max64(d->n, 1), IM2COL_COLS_FLOATS / per_image));
}

static void im2col_forward_part(void *ctx, int64_t lo, int64_t hi) {
    conv_job *j = ctx;
    const conv_dims *d = j->d;
    float *ws = cg_floats_alloc(j->ws);
    for (int64_t q = lo; q < hi; q++) {
        const int64_t n0 = q * j->g, gn = min64(j->g, d->n - n0), npos = gn * d->ohw;
        if (!ws) {
            naive_forward(j, n0, gn);
            continue;
        }
        float *cols = ws, *tmp = ws + d->k * npos;
        im2col(d, (float *)j->x + n0 * d->c * d->h * d->w, gn, cols, false);
        /* tmp [O, g*OHW] = W [O, K] @ cols [K, g*OHW] */
        cg_gemm(false, false, d->o, npos, d->k, 1.0f, j->w, d->k, cols, npos, 0.0f, tmp, npos);
        for (int64_t gi = 0; gi < gn; gi++)
            for (int64_t o = 0; o < d->o; o++) {
                float *dst = j->y + ((n0 + gi) * d->o + o) * d->ohw;
                const float *src = tmp + o * npos + gi * d->ohw;
                if (j->b) {
                    const float bo = j->b[o];
                    for (int64_t s = 0; s < d->ohw; s++) dst[s] = src[s] + bo;
                } else {
                    memcpy(dst, src, (size_t)d->ohw * sizeof(float));
                }
            }
    }
    cg_floats_free(ws, j->ws);
}

static void im2col_backward_part(void *ctx, int64_t lo, int64_t hi) {
    conv_job *j = ctx;
    const conv_dims *d = j->d;
    float *ws = cg_floats_alloc(j->ws);
    for (int64_t q = lo; q < hi; q++) {
        const int64_t n0 = q * j->g, gn = min64(j->g, d->n - n0), npos = gn * d->ohw;
        float *cols = ws, *gy = ws + d->k * npos;
        if (j->want_b) bias_partial(d, j->dy, n0, gn, j->part_b + q * d->o);
        if (!j->want_w && !j->want_x) continue;
        if (!ws) {
            naive_backward(j, q, n0, gn);
            continue;
        }
        /* gy [O, g*OHW]: the group's dL/dy, images side by side. */
        for (int64_t o = 0; o < d->o; o++)
            for (int64_t gi = 0; gi < gn; gi++)
                memcpy(gy + o * npos + gi * d->ohw, j->dy + ((n0 + gi) * d->o + o) * d->ohw,
                       (size_t)d->ohw * sizeof(float));
        if (j->want_w) {
            im2col(d, (float *)j->x + n0 * d->c * d->h * d->w, gn, cols, false);
            /* part [O, K] = gy [O, g*OHW] @ cols^T */
            cg_gemm(false, true, d->o, d->k, npos, 1.0f, gy, npos, cols, npos, 0.0f,
                    j->part_w + q * j->lw.size, d->k);
        }
        if (j->want_x) {
            /* cols = W^T [K, O] @ gy [O, g*OHW], then added onto the pixels. */
            cg_gemm(true, false, d->k, npos, d->o, 1.0f, j->w, d->k, gy, npos, 0.0f, cols, npos);
            im2col(d, j->gx + n0 * d->c * d->h * d->w, gn, cols, true);
        }
    }
    cg_floats_free(ws, j->ws);
}

static void im2col_forward(const conv_dims *d, const float *x, const float *w, const float *b,
                           float *y) {
    conv_job j = {.d = d, .g = im2col_group(d), .x = x, .w = w, .b = b, .y = y};
    const int64_t groups = cdiv(d->n, j.g), npos = j.g * d->ohw;
    j.ws = d->k * npos + d->o * npos;
    cg_guarded_for_setup(threads_for(conv_flops(d), groups), groups, 4, warm_pool,
                         im2col_forward_part, &j);
}

/* The backward's partials, taken before anything is changed. */
typedef struct conv_parts {
    float *w, *b;
    int64_t nw, nb;
} conv_parts;

static bool parts_alloc(conv_parts *P, int64_t nw, int64_t nb) {
    P->nw = nw, P->nb = nb;
    P->w = nw ? cg_floats_alloc(nw) : NULL;
    P->b = nb ? cg_floats_alloc(nb) : NULL;
    if ((nw && !P->w) || (nb && !P->b)) {
        cg_floats_free(P->w, nw);
        cg_floats_free(P->b, nb);
        return false;
    }
    return true;
}

static void parts_free(conv_parts *P) {
    cg_floats_free(P->w, P->nw);
    cg_floats_free(P->b, P->nb);
}

static bool im2col_backward(const conv_dims *d, const float *x, const float *w, const float *dy,
                            float *gx, float *gw, float *gb) {
    conv_job j = {.d = d, .g = im2col_group(d), .x = x, .w = w, .dy = dy, .gx = gx,
                  .want_x = gx != NULL, .want_w = gw != NULL, .want_b = gb != NULL};
    const int64_t groups = cdiv(d->n, j.g), npos = j.g * d->ohw;
    j.ws = d->k * npos + d->o * npos;
    j.lw = (part_layout){d->k, d->kh * d->kw, 1, d->o * d->k};
    conv_parts parts;
    if (!parts_alloc(&parts, gw ? groups * j.lw.size : 0, gb ? groups * d->o : 0)) return false;
    j.part_w = parts.w, j.part_b = parts.b;
    const double flops = conv_flops(d) * ((gx != NULL) + (gw != NULL));
    cg_guarded_for_setup(threads_for(flops, groups), groups, 4, warm_pool, im2col_backward_part,
                         &j);
    if (gw) weight_reduce(d, j.part_w, j.lw, groups, gw);
    if (gb) bias_reduce(d, j.part_b, groups, gb);
    parts_free(&parts);
    return true;
}

/* ------------------------------------------------------------------ */
/* Direct: register tiles (AVX2 + FMA; AVX-512 where the CPU has it)   */
/* ------------------------------------------------------------------ */

#if defined(__x86_64__) || defined(__i386__)
#define CONV_DIRECT 1
#include <immintrin.h>

#define CV_AVX2 __attribute__((target("avx2,fma")))
#define CV_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

/*
 * One register tile: for i < MR rows and j < NW columns,
 *
 *   T(i, j) = sum_{p < k} A(i, p) * B(p, j)       (one FMA chain, p ascending)
 *   A(i, p) = a[ri[i] + (sa ? sa[p] : p * lda)]
 *   B(p, j) = b[(sb ? sb[p] : p * ldb) + j]
 *
 * then, for rows i < mr and vectors v < nv (of VW = 8 or 16 columns), the
 * VW floats at c + crow[i] + ccol[v] are set to (or, with add, added to)
 * T(i, v*VW ..). Rows mr..MR-1 are computed and dropped: their ri must
 * still be readable.
 */
typedef struct tile_job {
    const float *a;
    const int64_t *ri;
    const int32_t *sa;
    int64_t lda;
    const float *b;
    const int32_t *sb;
    int64_t ldb;
    int64_t k;
    float *c;
    const int64_t *crow, *ccol;
    int mr, nv;
    bool add;
} tile_job;

CV_INLINE void out8(float *p, __m256 v, bool add) {
    if (add) v = _mm256_add_ps(_mm256_loadu_ps(p), v);
    _mm256_storeu_ps(p, v);
}

/* a + off floats, off possibly negative: row pointers of a tile may start
 * before the buffer (a window's corner in the padding); every address the
 * tile reads through them is inside. Unsigned arithmetic, so no pointer
 * ever goes out of its object in the C sense. */
static inline const float *row_ptr(const float *a, int64_t off) {
    return (const float *)((uintptr_t)a + (uintptr_t)off * sizeof(float));
}

/* Keeps a row pointer in a register of its own: without it GCC keeps only
 * the offsets and rebuilds each address with a lea per broadcast, and on
 * Intel cores the leas share ports with the FMAs. */
#define CV_OPAQUE(p) __asm__("" : "+r"(p))

/* 6 x 16: 12 accumulators; a step is 6 broadcasts, 2 loads, 12 FMAs (as
 * gemm_avx2.c's microkernel, but with a row pointer each). */
CV_INLINE void tile_6x16(const tile_job *t, const bool has_sa, const bool has_sb) {
    const int64_t *ri = t->ri;
    const float *a0 = row_ptr(t->a, ri[0]), *a1 = row_ptr(t->a, ri[1]), *a2 = row_ptr(t->a, ri[2]);
    const float *a3 = row_ptr(t->a, ri[3]), *a4 = row_ptr(t->a, ri[4]), *a5 = row_ptr(t->a, ri[5]);
    CV_OPAQUE(a0); CV_OPAQUE(a1); CV_OPAQUE(a2); CV_OPAQUE(a3); CV_OPAQUE(a4); CV_OPAQUE(a5);
    const int32_t *sa = t->sa, *sb = t->sb;
    const int64_t lda = t->lda, ldb = t->ldb, k = t->k;
    const float *b = t->b;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define CV_STEP6(p)                                                              \
    do {                                                                         \
        const int64_t ao = has_sa ? (int64_t)sa[p] : (p) * lda;                  \
        const float *bp = b + (has_sb ? (int64_t)sb[p] : (p) * ldb);             \
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);     \
        __m256 v;                                                                \
        v = _mm256_broadcast_ss(a0 + ao);                                        \
        c00 = _mm256_fmadd_ps(v, b0, c00), c01 = _mm256_fmadd_ps(v, b1, c01);    \
        v = _mm256_broadcast_ss(a1 + ao);                                        \
        c10 = _mm256_fmadd_ps(v, b0, c10), c11 = _mm256_fmadd_ps(v, b1, c11);    \
        v = _mm256_broadcast_ss(a2 + ao);                                        \
        c20 = _mm256_fmadd_ps(v, b0, c20), c21 = _mm256_fmadd_ps(v, b1, c21);    \
        v = _mm256_broadcast_ss(a3 + ao);                                        \
        c30 = _mm256_fmadd_ps(v, b0, c30), c31 = _mm256_fmadd_ps(v, b1, c31);    \
        v = _mm256_broadcast_ss(a4 + ao);                                        \
        c40 = _mm256_fmadd_ps(v, b0, c40), c41 = _mm256_fmadd_ps(v, b1, c41);    \
        v = _mm256_broadcast_ss(a5 + ao);                                        \
        c50 = _mm256_fmadd_ps(v, b0, c50), c51 = _mm256_fmadd_ps(v, b1, c51);    \
    } while (0)
    int64_t p = 0;
    for (; p + 2 <= k; p += 2) {
        CV_STEP6(p);
        CV_STEP6(p + 1);
    }
    if (p < k) CV_STEP6(p);
#undef CV_STEP6
    float *c = t->c;
    const int64_t *crow = t->crow, *ccol = t->ccol;
    const int mr = t->mr, nv = t->nv;
    const bool add = t->add;
#define ROW2(i, x0, x1)                                  \
    if (i < mr) {                                        \
        float *r = c + crow[i];                          \
        out8(r + ccol[0], x0, add);                      \
        if (nv > 1) out8(r + ccol[1], x1, add);          \
    }
    ROW2(0, c00, c01) ROW2(1, c10, c11) ROW2(2, c20, c21)
    ROW2(3, c30, c31) ROW2(4, c40, c41) ROW2(5, c50, c51)
#undef ROW2
}

/* 8 x 8, for 8 or fewer columns: 8 accumulators (just enough to cover the
 * FMA latency); a step is 8 broadcasts, 1 load, 8 FMAs, so it runs at about
 * 4/5 of the FMA rate, against 1/2 for a 6 x 16 tile half empty. */
CV_INLINE void tile_8x8(const tile_job *t, const bool has_sa, const bool has_sb) {
    const int64_t *ri = t->ri;
    const float *a0 = row_ptr(t->a, ri[0]), *a1 = row_ptr(t->a, ri[1]);
    const float *a2 = row_ptr(t->a, ri[2]), *a3 = row_ptr(t->a, ri[3]);
    const float *a4 = row_ptr(t->a, ri[4]), *a5 = row_ptr(t->a, ri[5]);
    const float *a6 = row_ptr(t->a, ri[6]), *a7 = row_ptr(t->a, ri[7]);
    CV_OPAQUE(a0); CV_OPAQUE(a1); CV_OPAQUE(a2); CV_OPAQUE(a3);
    CV_OPAQUE(a4); CV_OPAQUE(a5); CV_OPAQUE(a6); CV_OPAQUE(a7);
    const int32_t *sa = t->sa, *sb = t->sb;
    const int64_t lda = t->lda, ldb = t->ldb, k = t->k;
    const float *b = t->b;
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps();
    __m256 c3 = _mm256_setzero_ps(), c4 = _mm256_setzero_ps(), c5 = _mm256_setzero_ps();
    __m256 c6 = _mm256_setzero_ps(), c7 = _mm256_setzero_ps();
#define CV_STEP8(p)                                                                \
    do {                                                                           \
        const int64_t ao = has_sa ? (int64_t)sa[p] : (p) * lda;                    \
        const __m256 b0 = _mm256_loadu_ps(b + (has_sb ? (int64_t)sb[p] : (p) * ldb)); \
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + ao), b0, c0);                \
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + ao), b0, c1);                \
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + ao), b0, c2);                \
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + ao), b0, c3);                \
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + ao), b0, c4);                \
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + ao), b0, c5);                \
        c6 = _mm256_fmadd_ps(_mm256_broadcast_ss(a6 + ao), b0, c6);                \
        c7 = _mm256_fmadd_ps(_mm256_broadcast_ss(a7 + ao), b0, c7);                \
    } while (0)
    int64_t p = 0;
    for (; p + 2 <= k; p += 2) {
        CV_STEP8(p);
        CV_STEP8(p + 1);
    }
    if (p < k) CV_STEP8(p);
#undef CV_STEP8
    float *c = t->c;
    const int64_t *crow = t->crow, *ccol = t->ccol;
    const int mr = t->mr;
    const bool add = t->add;
#define ROW1(i, x0) \
    if (i < mr) out8(c + crow[i] + ccol[0], x0, add);
    ROW1(0, c0) ROW1(1, c1) ROW1(2, c2) ROW1(3, c3) ROW1(4, c4) ROW1(5, c5) ROW1(6, c6) ROW1(7, c7)
#undef ROW1
}

/* The eight variants: shape x (A from a table or strided) x (B likewise). */
#define TILE_FN(NAME, BODY, SA, SB) \
    CV_AVX2 static void NAME(const tile_job *t) { BODY(t, SA, SB); }
TILE_FN(t6x16_ss, tile_6x16, false, false)
TILE_FN(t6x16_ts, tile_6x16, true, false)
TILE_FN(t6x16_st, tile_6x16, false, true)
TILE_FN(t6x16_tt, tile_6x16, true, true)
TILE_FN(t8x8_ss, tile_8x8, false, false)
TILE_FN(t8x8_ts, tile_8x8, true, false)
TILE_FN(t8x8_st, tile_8x8, false, true)
TILE_FN(t8x8_tt, tile_8x8, true, true)
#undef TILE_FN

/*
 * AVX-512 (where the CPU has it): 8 rows x 1 or 2 vectors of 16. With 32
 * registers, 8 rows x 32 columns is 16 accumulators; a step is 8
 * broadcasts, 2 loads and 16 FMAs of twice the width. Measured alone on
 * L1-resident data (Xeon, model 207): 8x32 ran 1.7x the 6x16 AVX2 tile.
 */
#define CV_Z __attribute__((target("avx512f,avx2,fma")))
#define CV_ZINLINE __attribute__((target("avx512f,avx2,fma"), always_inline)) static inline

CV_ZINLINE void out16(float *p, __m512 v, bool add) {
    if (add) v = _mm512_add_ps(_mm512_loadu_ps(p), v);
    _mm512_storeu_ps(p, v);
}

/* NV vectors of 16 columns; with SPLIT (NV = 1), the 16 columns go out as
 * two vectors of 8 at ccol[0] and ccol[1] (dX with C % 16 != 0: each 8 is
 * one tap's channels). */
CV_ZINLINE void tile_8xz(const tile_job *t, const int NV, const bool SPLIT, const bool has_sa,
                         const bool has_sb) {
    const int64_t *ri = t->ri;
    const float *a0 = row_ptr(t->a, ri[0]), *a1 = row_ptr(t->a, ri[1]);
    const float *a2 = row_ptr(t->a, ri[2]), *a3 = row_ptr(t->a, ri[3]);
    const float *a4 = row_ptr(t->a, ri[4]), *a5 = row_ptr(t->a, ri[5]);
    const float *a6 = row_ptr(t->a, ri[6]), *a7 = row_ptr(t->a, ri[7]);
    CV_OPAQUE(a0); CV_OPAQUE(a1); CV_OPAQUE(a2); CV_OPAQUE(a3);
    CV_OPAQUE(a4); CV_OPAQUE(a5); CV_OPAQUE(a6); CV_OPAQUE(a7);
    const int32_t *sa = t->sa, *sb = t->sb;
    const int64_t lda = t->lda, ldb = t->ldb, k = t->k;
    const float *b = t->b;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    for (int64_t p = 0; p < k; p++) {
        const int64_t ao = has_sa ? (int64_t)sa[p] : p * lda;
        const float *bp = b + (has_sb ? (int64_t)sb[p] : p * ldb);
        const __m512 b0 = _mm512_loadu_ps(bp), b1 = NV > 1 ? _mm512_loadu_ps(bp + 16) : b0;
        __m512 v;
#define CV_ZROW(i)                                                   \
        v = _mm512_set1_ps(a##i[ao]);                                \
        c##i##0 = _mm512_fmadd_ps(v, b0, c##i##0);                   \
        if (NV > 1) c##i##1 = _mm512_fmadd_ps(v, b1, c##i##1);
        CV_ZROW(0) CV_ZROW(1) CV_ZROW(2) CV_ZROW(3) CV_ZROW(4) CV_ZROW(5) CV_ZROW(6) CV_ZROW(7)
#undef CV_ZROW
    }
    float *c = t->c;
    const int64_t *crow = t->crow, *ccol = t->ccol;
    const int mr = t->mr, nv = t->nv;
    const bool add = t->add;
#define ROWZ(i)                                                                        \
    if (i < mr) {                                                                      \
        float *r = c + crow[i];                                                        \
        if (SPLIT) {                                                                   \
            out8(r + ccol[0], _mm512_castps512_ps256(c##i##0), add);                   \
            if (nv > 1)                                                                \
                out8(r + ccol[1],                                                      \
                     _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(c##i##0), 1)), \
                     add);                                                             \
        } else {                                                                       \
            out16(r + ccol[0], c##i##0, add);                                          \
            if (NV > 1 && nv > 1) out16(r + ccol[1], c##i##1, add);                    \
        }                                                                              \
    }
    ROWZ(0) ROWZ(1) ROWZ(2) ROWZ(3) ROWZ(4) ROWZ(5) ROWZ(6) ROWZ(7)
#undef ROWZ
}

#define TILE_ZFN(NAME, NV, SPLIT, SA, SB) \
    CV_Z static void NAME(const tile_job *t) { tile_8xz(t, NV, SPLIT, SA, SB); }
TILE_ZFN(z8x16_ss, 1, false, false, false)
TILE_ZFN(z8x16_ts, 1, false, true, false)
TILE_ZFN(z8x16_st, 1, false, false, true)
TILE_ZFN(z8x16_tt, 1, false, true, true)
TILE_ZFN(z8x32_ss, 2, false, false, false)
TILE_ZFN(z8x32_ts, 2, false, true, false)
TILE_ZFN(z8x32_st, 2, false, false, true)
TILE_ZFN(z8x32_tt, 2, false, true, true)
TILE_ZFN(y8x16_ss, 1, true, false, false)
TILE_ZFN(y8x16_ts, 1, true, true, false)
TILE_ZFN(y8x16_st, 1, true, false, true)
TILE_ZFN(y8x16_tt, 1, true, true, true)
#undef TILE_ZFN

/* The tiles: rows (MR), columns (NW) in vectors of VW; RATE, the
 * throughput relative to the best (for choosing between them). The 8x8 is
 * load-bound, at ~0.7 of the 6x16's rate (conv2's dW by it took 2.1 ms
 * against 1.3-1.5 ms by 6x16 tiles over the padded buffer); the AVX-512
 * 8x32 runs ~1.7x the 6x16, and 8x16 twice the 8x8 (the same
 * instructions on vectors twice as wide), so that a half-empty 8x16 does not
 * win over the 8x8 whose dL/dy rows are half as long. Y8X16 is Z8X16 with
 * its 16 columns stored as two vectors of 8 (for dX with C = 8, 24, ...). */
typedef enum tile_kind { T6X16, T8X8, Z8X16, Z8X32, Y8X16, TILE_KINDS } tile_kind;
static const int TILE_MR[TILE_KINDS] = {6, 8, 8, 8, 8};
static const int TILE_NW[TILE_KINDS] = {16, 8, 16, 32, 16};
static const int TILE_VW[TILE_KINDS] = {8, 8, 16, 16, 8};
static const bool TILE_ZMM[TILE_KINDS] = {false, false, true, true, true};
static const double TILE_RATE[TILE_KINDS] = {0.5, 0.35, 0.7, 0.85, 0.6};
typedef void (*tile_fn)(const tile_job *);
static const tile_fn TILE_FNS[TILE_KINDS][2][2] = {
    {{t6x16_ss, t6x16_st}, {t6x16_ts, t6x16_tt}},
    {{t8x8_ss, t8x8_st}, {t8x8_ts, t8x8_tt}},
    {{z8x16_ss, z8x16_st}, {z8x16_ts, z8x16_tt}},
    {{z8x32_ss, z8x32_st}, {z8x32_ts, z8x32_tt}},
    {{y8x16_ss, y8x16_st}, {y8x16_ts, y8x16_tt}},
};

static inline void run_tile(tile_kind kind, const tile_job *t) {
    TILE_FNS[kind][t->sa != NULL][t->sb != NULL](t);
}

/* ccol[v] = base + v*VW for a tile's vectors. */
static inline void tile_cols(tile_kind kind, int64_t base, int64_t *ccol) {
    ccol[0] = base, ccol[1] = base + TILE_VW[kind];
}

static bool cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static bool cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* Whether the AVX-512 tiles may be used (the CPU has them and the AVX2-only
 * path was not asked for); set by cg_conv_use_path. */
static atomic_int zmm_ok = -1;
static bool use_zmm(void) {
    int z = atomic_load_explicit(&zmm_ok, memory_order_relaxed);
    if (z < 0) {
        z = cpu_has_avx512();
        atomic_store(&zmm_ok, z);
    }
    return z;
}

/* ---- NCHW <-> NHWC, 8 x 8 blocks at a time ---- */

/* r[j][i] = r[i][j]: the 8 x 8 block transposed. */
CV_INLINE void tr8x8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* A contiguous [8][n] block (n = 1, 2, 4) as n vectors v[p] = its column
 * p, and back: the n = 4 case is two 4 x 4 transposes, one per 128-bit half. */
CV_INLINE void tr_8xn(const float *src, int n, __m256 *v) {
    if (n == 1) {
        v[0] = _mm256_loadu_ps(src);
    } else if (n == 2) { /* rows 0-3, 4-7: (r0p0 r0p1 r1p0 r1p1 ...) */
        const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
        const __m256 lo = _mm256_permute2f128_ps(a, b, 0x20),
                     hi = _mm256_permute2f128_ps(a, b, 0x31);
        /* lo = r0 r1 | r4 r5 (pairs), hi = r2 r3 | r6 r7 */
        v[0] = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
        v[1] = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
        /* (r0 r1 r2 r3 | r4 r5 r6 r7), each at position p */
    } else {
        const __m256 i0 = _mm256_loadu_ps(src), i1 = _mm256_loadu_ps(src + 8);
        const __m256 i2 = _mm256_loadu_ps(src + 16), i3 = _mm256_loadu_ps(src + 24);
        const __m256 a0 = _mm256_permute2f128_ps(i0, i2, 0x20),
                     a1 = _mm256_permute2f128_ps(i0, i2, 0x31);
        const __m256 a2 = _mm256_permute2f128_ps(i1, i3, 0x20),
                     a3 = _mm256_permute2f128_ps(i1, i3, 0x31);
        const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
        const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
        v[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        v[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        v[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        v[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    }
}

/* The inverse: n vectors v[p] (8 rows each) to the contiguous [8][n] block. */
CV_INLINE void tr_nx8(const __m256 *v, int n, __m256 *out) {
    if (n == 1) {
        out[0] = v[0];
    } else if (n == 2) {
        const __m256 lo = _mm256_unpacklo_ps(v[0], v[1]), hi = _mm256_unpackhi_ps(v[0], v[1]);
        out[0] = _mm256_permute2f128_ps(lo, hi, 0x20);
        out[1] = _mm256_permute2f128_ps(lo, hi, 0x31);
    } else {
        const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
        const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
        const __m256 a0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 a1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 a2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 a3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        out[0] = _mm256_permute2f128_ps(a0, a1, 0x20),
        out[1] = _mm256_permute2f128_ps(a2, a3, 0x20);
        out[2] = _mm256_permute2f128_ps(a0, a1, 0x31),
        out[3] = _mm256_permute2f128_ps(a2, a3, 0x31);
    }
}

/*
 * dst[doff[p] + r] = src[r*ss + p] for r < rows, p < n (a [rows][n] block,
 * rows <= 8, to one row of `rows` floats at each doff[p]): 8 x 8 blocks,
 * the last one shifted back to end at n (it rewrites a few of the same
 * values), and plain loops where n < 8.
 */
CV_AVX2 static void scatter_rows_t(const float *src, int64_t ss, int rows, int64_t n,
                                   const int32_t *doff, float *dst) {
    if (rows < 8) {
        for (int r = 0; r < rows; r++)
            for (int64_t p = 0; p < n; p++) dst[doff[p] + r] = src[r * ss + p];
        return;
    }
    if (ss == n && (n == 1 || n == 2 || n == 4)) {
        /* The [8][n] block is contiguous: n loads, shuffles, n stores. */
        __m256 v[4];
        tr_8xn(src, (int)n, v);
        for (int64_t p = 0; p < n; p++) _mm256_storeu_ps(dst + doff[p], v[p]);
        return;
    }
    if (n < 8) {
        for (int r = 0; r < rows; r++)
            for (int64_t p = 0; p < n; p++) dst[doff[p] + r] = src[r * ss + p];
        return;
    }
    for (int64_t p0 = 0; p0 < n; p0 += 8) {
        const int64_t pp = p0 + 8 <= n ? p0 : n - 8;
        __m256 v[8];
        for (int r = 0; r < 8; r++) v[r] = _mm256_loadu_ps(src + r * ss + pp);
        tr8x8(v);
        for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + doff[pp + q], v[q]);
    }
}

/*
 * The adjoint gather: dst[r*ds + p] (+)= src[soff[p] + r] for r < rows (<= 8),
 * p < n, plus bias[r] when bias is given; with add, every element is added
 * exactly once (no shifted block).
 */
CV_AVX2 static void gather_rows_t(const float *src, const int32_t *soff, int rows, int64_t n,
                                  float *dst, int64_t ds, bool add, const float *bias) {
    int64_t p0 = 0;
    if (rows == 8 && ds == n && (n == 1 || n == 2 || n == 4)) {
        /* dst's [8][n] block is contiguous: n loads, shuffles, n stores. */
        __m256 v[4], out[4];
        for (int64_t p = 0; p < n; p++) v[p] = _mm256_loadu_ps(src + soff[p]);
        if (bias) {
            const __m256 b = _mm256_loadu_ps(bias);
            for (int64_t p = 0; p < n; p++) v[p] = _mm256_add_ps(v[p], b);
        }
        tr_nx8(v, (int)n, out);
        for (int64_t m = 0; m < n; m++) {
            float *d = dst + 8 * m;
            _mm256_storeu_ps(d, add ? _mm256_add_ps(_mm256_loadu_ps(d), out[m]) : out[m]);
        }
        return;
    }
    if (rows == 8) {
        __m256 bv[8];
        for (int r = 0; r < 8; r++) bv[r] = _mm256_set1_ps(bias ? bias[r] : 0.0f);
        for (; p0 + 8 <= n || (!add && n >= 8 && p0 < n); p0 += 8) {
            const int64_t pp = p0 + 8 <= n ? p0 : n - 8;
            __m256 v[8];
            for (int q = 0; q < 8; q++) v[q] = _mm256_loadu_ps(src + soff[pp + q]);
            tr8x8(v);
            for (int r = 0; r < 8; r++) {
                float *d = dst + r * ds + pp;
                if (add) v[r] = _mm256_add_ps(_mm256_loadu_ps(d), v[r]);
                else if (bias) v[r] = _mm256_add_ps(v[r], bv[r]);
                _mm256_storeu_ps(d, v[r]);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        const float b = bias ? bias[r] : 0.0f;
        for (int64_t p = p0; p < n; p++) {
            const float v = src[soff[p] + r];
            dst[r * ds + p] = add ? dst[r * ds + p] + v : bias ? v + b : v;
        }
    }
}

/* ---- the plan: buffers, tables and tiles for one shape ---- */

/*
 * Padding. With stride 2 on small images many taps fall in the zero
 * padding: of simple_cnn's (position, tap) pairs, 31% in conv3 and conv4,
 * 56% in conv5. Output positions are sorted into classes by the rectangle
 * of taps [kh0, kh1) x [kw0, kw1) that stay inside the input (top-left
 * corner, top edge, ..., interior); a forward or dX tile takes its rows from
 * one class and skips the others' taps, and dW's chain for a tap runs over
 * the positions where it is inside. So the forward, which then never reads
 * the padding, reads x in place (NCHW: tap k of the window at q is
 * x[pos[q] + koffn[k]]), and so does dW when a tile's rows are channels of
 * one tap; only dX (and dW where C does not allow that) still go through a
 * zero-padded NHWC buffer.
 */
typedef struct conv_class {
    int64_t kh0, kh1, kw0, kw1; /* the taps inside the input */
    int64_t m;                  /* positions per image */
    int64_t off;                /* its first entry in cposn / cpos / crow (g images' worth) */
    int64_t klo, kn;            /* its taps in fka and in the forward's packed weights */
    int64_t blo, bn;            /* its dX column blocks in dxb */
} conv_class;

/* dW's tiles: rows = taps of one (kh, kw) and x read in place, over the
 * positions where the tap is inside; rows = output channels, B = channels
 * of x at one tap from the padded NHWC buffer, likewise; or rows = any taps
 * over every position, from the padded buffer (C = 1, say). */
typedef enum dw_mode { DW_TAPS, DW_ROWS_O, DW_PADDED } dw_mode;

/* Group sizes (floats of a group's working set). Forward: the group's x and
 * NHWC output stay in L2 with room to spare. Backward: a group's dW chain
 * should be long (>= DW_MIN_POSITIONS steps) so that the partials stay
 * few, while its buffers still fit in L2. */
#define FWD_GROUP_FLOATS (32 * 1024)
#define BWD_GROUP_FLOATS (96 * 1024)
#define DW_MIN_POSITIONS 256

typedef struct direct_plan {
    conv_dims d;
    int64_t hp, wp, img; /* a padded NHWC image: hp x wp x C = img floats */
    int64_t ldf;         /* forward's NHWC output row: O rounded up to the tile width */
    int64_t ldg;         /* dL/dy's NHWC row: O rounded up to what dW's tile reads */
    int64_t kpad;        /* W as [O][kpad] for dX: K rounded up to its tile's width */
    tile_kind fwd, dw, dx;
    dw_mode dwm;
    int64_t g_fwd, g_bwd;
    double inside; /* share of (position, tap) pairs inside the input */
} direct_plan;

/* The taps [lo, hi) of a KH-tap axis that output i reads inside [0, H). */
static void taps_inside(int64_t i, int64_t s, int64_t pad, int64_t k, int64_t h, int64_t *lo,
                        int64_t *hi) {
    *lo = min64(k, max64(0, pad - i * s));
    *hi = max64(*lo, min64(k, h + pad - i * s));
}

/* A tile's useful rate on rows x cols of output: its lanes doing useful
 * work times its rate. */
static double tile_use(tile_kind kind, int64_t rows, int64_t cols) {
    const int64_t mr = TILE_MR[kind], nw = TILE_NW[kind];
    rows = max64(rows, 1), cols = max64(cols, 1);
    return TILE_RATE[kind] * (double)rows / (double)round_up(rows, mr) * (double)cols /
           (double)round_up(cols, nw);
}

/* The best tile for rows x cols among those this CPU runs; with a nonzero
 * nw_div (vw_div, mr_div), only tiles whose width (vector width, rows)
 * divides it: a B row, an output vector or a tile's rows within one tap's
 * C channels. -1 if none. */
static int best_tile(int64_t rows, int64_t cols, int64_t nw_div, int64_t vw_div, int64_t mr_div) {
    int best = -1;
    double use = -1.0;
    for (int k = 0; k < TILE_KINDS; k++) {
        if (TILE_ZMM[k] && !use_zmm()) continue;
        if ((nw_div && nw_div % TILE_NW[k] != 0) || (vw_div && vw_div % TILE_VW[k] != 0) ||
            (mr_div && mr_div % TILE_MR[k] != 0))
            continue;
        const double u = tile_use((tile_kind)k, rows, cols);
        if (u > use) use = u, best = k;
    }
    return best;
}

/* g images, rounded down to whole 24s (tiles of 6 and of 8) when that big. */
static int64_t group_of(int64_t g, int64_t n) {
    g = max64(1, min64(g, n));
    return g >= 24 && g < n ? g / 24 * 24 : g;
}

static direct_plan plan_of(const conv_dims *d) {
    direct_plan P;
    P.d = *d;
    const int64_t C = d->c, K = d->k, O = d->o;
    /* Rows and columns any tap reaches; the rest of the input is never read. */
    P.hp = (d->oh - 1) * d->s + d->kh;
    P.wp = (d->ow - 1) * d->s + d->kw;
    P.img = P.hp * P.wp * C;
    int64_t rows_in = 0, cols_in = 0, lo, hi;
    for (int64_t i = 0; i < d->oh; i++)
        taps_inside(i, d->s, d->pad, d->kh, d->h, &lo, &hi), rows_in += hi - lo;
    for (int64_t j = 0; j < d->ow; j++)
        taps_inside(j, d->s, d->pad, d->kw, d->w, &lo, &hi), cols_in += hi - lo;
    P.inside = (double)rows_in * (double)cols_in / (double)max64(1, d->ohw * d->kh * d->kw);
    const double inside = P.inside > 0 ? P.inside : 1.0;
    /* Forward: rows = positions (many), columns = output channels. */
    P.fwd = (tile_kind)best_tile(1 << 20, O, 0, 0, 0);
    P.ldf = round_up(max64(O, 1), TILE_NW[P.fwd]);
    /* dX: rows = positions, columns = k in blocks, each vector of them
     * within one tap's C channels where C allows (else a 6x16 tile through
     * a scatter). */
    const bool c8 = C % 8 == 0 && C > 0;
    P.dx = c8 ? (tile_kind)best_tile(1 << 20, K, 0, C, 0) : T6X16;
    P.kpad = round_up(max64(K, 1), TILE_NW[P.dx]);
    /* dW [K, O], by the time each mode would take: work / useful rate, the
     * padding skipped or not, and ~15% for packing x into the NHWC buffer. */
    const int taps = C > 0 ? best_tile(K, O, 0, 0, C) : -1;
    const int rows_o = c8 ? best_tile(O, K, C, 0, 0) : -1;
    const int padded = best_tile(K, O, 0, 0, 0);
    const double t_taps = taps >= 0 ? inside / tile_use((tile_kind)taps, K, O) : 1e30;
    const double t_rows_o = rows_o >= 0 ? 1.15 * inside / tile_use((tile_kind)rows_o, O, K) : 1e30;
    const double t_padded = 1.15 / tile_use((tile_kind)padded, K, O);
    if (t_taps <= t_rows_o && t_taps <= t_padded)
        P.dwm = DW_TAPS, P.dw = (tile_kind)taps;
    else if (t_rows_o <= t_padded)
        P.dwm = DW_ROWS_O, P.dw = (tile_kind)rows_o;
    else
        P.dwm = DW_PADDED, P.dw = (tile_kind)padded;
    /* dL/dy's NHWC rows: wide enough for the tiles that read whole rows of them. */
    P.ldg = round_up(max64(O, 1), P.dwm == DW_ROWS_O ? 8 : max64(8, TILE_NW[P.dw]));
    const int64_t n = max64(d->n, 1), x_img = C * d->h * d->w;
    /* At least 4 forward groups where the batch allows, for two threads to share. */
    P.g_fwd = FWD_GROUP_FLOATS / max64(1, x_img + d->ohw * P.ldf);
    P.g_fwd = group_of(min64(P.g_fwd, cdiv(n, 4)), n);
    const int64_t per_image = x_img + (P.dwm == DW_TAPS ? 0 : P.img) + P.img + d->ohw * P.ldg;
    P.g_bwd = group_of(
        max64(cdiv(DW_MIN_POSITIONS, max64(d->ohw, 1)), BWD_GROUP_FLOATS / max64(1, per_image)), n);
    return P;
}

/* Whether the tables' int32 offsets hold this shape's group buffers. */
static bool plan_fits(const direct_plan *P) {
    const int64_t lim = (int64_t)1 << 30;
    const int64_t g = max64(P->g_fwd, P->g_bwd), x_img = P->d.c * P->d.h * P->d.w;
    return max64(P->img, x_img) < lim / g && P->d.ohw * max64(P->ldg, P->ldf) < lim / g &&
           P->d.k * 32 < lim && P->d.kh * P->d.kw * P->d.ohw < lim / g;
}

/* Packed weights and tables, built once per call by the calling thread. */
typedef struct direct_ctx {
    const conv_class *cls;
    int64_t ncls;
    const int32_t *koff;  /* [K]: tap k = (kh*KW + kw)*C + c in a padded NHWC image */
    const int32_t *koffn; /* [K]: the same tap in an NCHW image, from a window's corner */
    const int32_t *npos;  /* [g*OHW]: output q's window in a group's padded buffer (DW_PADDED) */
    const int32_t *cposn, *cpos, *crow; /* by class: window in x (NCHW) and in the padded
                                           buffer; natural index gi*OHW + s */
    const int32_t *fka;         /* forward: by class, koffn[k] of the taps inside */
    const int32_t *dxb;         /* dX: by class, the column blocks k0 with a tap inside */
    const int32_t *tlo, *tcnt;  /* dW: per tap, first entry and positions per image */
    const int32_t *trow, *tpos; /* ... gt row * ldg and window (x for DW_TAPS, else padded) */
    const int32_t *pix;  /* [H*W]: input pixel (h, w)'s C floats in a padded image, or -1 */
    const int32_t *orow; /* [OHW]: output position s's row in an image's NHWC block (s*ld) */
    const float *wt;     /* forward: [O/NW][class taps][NW], zero past O */
    int64_t nk;          /* forward: the classes' taps, all together */
    const float *wk;     /* dX: [O][kpad], zero past K */
    bool pix_all;        /* every input pixel has a place (no -1 in pix) */
} direct_ctx;

/* xp [hp][wp][C] = one NCHW image x, zero-padded. */
static void pack_nhwc(const direct_plan *P, const direct_ctx *T, const float *x, float *xp) {
    const conv_dims *d = &P->d;
    const int64_t C = d->c, wp = P->wp, pad = d->pad, hw = d->h * d->w;
    if (!T->pix_all) memset(xp, 0, (size_t)P->img * sizeof(float));
    /* The padding: whole rows above and below, columns left and right. */
    const int64_t rin0 = min64(pad, P->hp), rin1 = min64(P->hp, d->h + pad);
    const int64_t cin0 = min64(pad, wp), cin1 = min64(wp, d->w + pad);
    if (T->pix_all) {
        for (int64_t r = 0; r < P->hp; r++) {
            float *row = xp + r * wp * C;
            if (r < rin0 || r >= rin1) {
                for (int64_t e = 0; e < wp * C; e++) row[e] = 0.0f;
                continue;
            }
            for (int64_t e = 0; e < cin0 * C; e++) row[e] = 0.0f;
            for (int64_t e = cin1 * C; e < wp * C; e++) row[e] = 0.0f;
        }
    }
    if (C == 1) {
        for (int64_t h = 0; h + pad < rin1; h++)
            for (int64_t w = 0; w + pad < cin1; w++) xp[(h + pad) * wp + w + pad] = x[h * d->w + w];
        return;
    }
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
        const int rows = (int)min64(8, C - c0);
        if (T->pix_all) {
            scatter_rows_t(x + c0 * hw, hw, rows, hw, T->pix, xp + c0);
        } else {
            for (int r = 0; r < rows; r++)
                for (int64_t p = 0; p < hw; p++)
                    if (T->pix[p] >= 0) xp[T->pix[p] + c0 + r] = x[(c0 + r) * hw + p];
        }
    }
}

/* gx (one NCHW image) += the interior of xp [hp][wp][C] (pixels no tap
 * reads get nothing). */
static void unpack_add_nhwc(const direct_plan *P, const direct_ctx *T, const float *xp, float *gx) {
    const conv_dims *d = &P->d;
    const int64_t C = d->c, hw = d->h * d->w;
    for (int64_t c0 = 0; c0 < C; c0 += 8) {
        const int rows = (int)min64(8, C - c0);
        if (T->pix_all) {
            gather_rows_t(xp + c0, T->pix, rows, hw, gx + c0 * hw, hw, true, NULL);
        } else {
            for (int r = 0; r < rows; r++)
                for (int64_t p = 0; p < hw; p++)
                    if (T->pix[p] >= 0) gx[(c0 + r) * hw + p] += xp[T->pix[p] + c0 + r];
        }
    }
}

/* Forward of groups [lo, hi): tiles read x in place, write NHWC rows of
 * yt, which go to y (NCHW) 8 x 8 at a time with the bias. */
static void direct_forward_part(void *ctx, int64_t lo, int64_t hi) {
    conv_job *j = ctx;
    const direct_plan *P = j->plan;
    const conv_dims *d = &P->d;
    const direct_ctx *dc = j->tables;
    float *yt = cg_floats_alloc(j->ws);
    if (!yt) {
        for (int64_t q = lo; q < hi; q++) naive_forward(j, q * j->g, min64(j->g, d->n - q * j->g));
        return;
    }
    const tile_kind kind = P->fwd;
    const int MR = TILE_MR[kind], NW = TILE_NW[kind];
    int64_t ri[8], crow[8], ccol[2];
    tile_job t = {.c = yt, .crow = crow, .ri = ri, .ccol = ccol, .ldb = NW};
    for (int64_t q = lo; q < hi; q++) {
        const int64_t n0 = q * j->g, gn = min64(j->g, d->n - n0);
        t.a = j->x + n0 * d->c * d->h * d->w;
        for (int64_t c = 0; c < dc->ncls; c++) {
            const conv_class *cl = &dc->cls[c];
            const int32_t *cpos = dc->cposn + cl->off, *crw = dc->crow + cl->off;
            const int64_t ne = gn * cl->m;
            t.sa = dc->fka + cl->klo, t.k = cl->kn;
            for (int64_t e0 = 0; e0 < ne; e0 += MR) {
                t.mr = (int)min64(MR, ne - e0);
                for (int i = 0; i < MR; i++) {
                    const int64_t e = e0 + min64(i, t.mr - 1);
                    ri[i] = cpos[e];
                    crow[i] = crw[e] * P->ldf;
                }
                for (int64_t o0 = 0; o0 < d->o; o0 += NW) {
                    t.b = dc->wt + (o0 * dc->nk + cl->klo * NW);
                    t.nv = (int)cdiv(min64(NW, d->o - o0), TILE_VW[kind]);
                    tile_cols(kind, o0, ccol);
                    run_tile(kind, &t);
                }
            }
        }
        /* y (NCHW) = yt's channels, plus the bias. */
        for (int64_t gi = 0; gi < gn; gi++) {
            float *yn = j->y + (n0 + gi) * d->o * d->ohw;
            const float *src = yt + gi * d->ohw * P->ldf;
            for (int64_t o0 = 0; o0 < d->o; o0 += 8)
                gather_rows_t(src + o0, dc->orow, (int)min64(8, d->o - o0), d->ohw,
                              yn + o0 * d->ohw, d->ohw, false, j->b ? j->b + o0 : NULL);
        }
    }
    cg_floats_free(yt, j->ws);
}

/* db's partial from gt [npos][ld] (zero past O): the rows summed in order,
 * in double, 8 channels at a time. */
CV_AVX2 static void bias_partial_nhwc(const float *gt, int64_t npos, int64_t ld, int64_t O,
                                      float *out) {
    for (int64_t o0 = 0; o0 < O; o0 += 8) {
        __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
        for (int64_t p = 0; p < npos; p++) {
            const __m256 v = _mm256_loadu_ps(gt + p * ld + o0);
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
        double s[8];
        _mm256_storeu_pd(s, lo), _mm256_storeu_pd(s + 4, hi);
        for (int64_t o = o0; o < min64(O, o0 + 8); o++) out[o] = (float)s[o - o0];
    }
}

/* dW's partial of one group (see dw_mode). */
static void direct_dw(const conv_job *j, const float *xg, const float *xp, const float *gt,
                      int64_t gn, int64_t npos, float *part) {
    const direct_plan *P = j->plan;
    const conv_dims *d = &P->d;
    const direct_ctx *dc = j->tables;
    const int64_t K = d->k, O = d->o, C = d->c, T = d->kh * d->kw;
    const tile_kind kind = P->dw;
    const int MR = TILE_MR[kind], NW = TILE_NW[kind], VW = TILE_VW[kind];
    int64_t ri[8], crow[8], ccol[2];
    if (P->dwm == DW_TAPS) {
        /* part [K][ldg]: rows = MR channels of tap t, A(i, p) = x[pos_p +
         * koffn[k0+i]] in place, B(p, :) = gt's row of position p, chain
         * over the positions where t is inside. */
        tile_job t = {.a = xg, .ri = ri, .b = gt, .c = part, .crow = crow, .ccol = ccol};
        for (int64_t tap = 0; tap < T; tap++) {
            t.sa = dc->tpos + dc->tlo[tap], t.sb = dc->trow + dc->tlo[tap];
            t.k = gn * dc->tcnt[tap];
            for (int64_t k0 = tap * C; k0 < (tap + 1) * C; k0 += MR) {
                t.mr = MR;
                for (int i = 0; i < MR; i++) {
                    ri[i] = dc->koffn[k0 + i];
                    crow[i] = (k0 + i) * P->ldg;
                }
                for (int64_t o0 = 0; o0 < O; o0 += NW) {
                    t.b = gt + o0;
                    t.nv = (int)cdiv(min64(NW, O - o0), VW);
                    tile_cols(kind, o0, ccol);
                    run_tile(kind, &t);
                }
            }
        }
    } else if (P->dwm == DW_ROWS_O) {
        /* part [O][K]: rows = output channels, A(i, p) = gt[row_p*ldg + o0+i],
         * B(p, :) = NW channels of x at tap t: xp + koff[k0] + pos_p, over
         * the positions where tap t is inside. */
        tile_job t = {.a = gt, .ri = ri, .c = part, .crow = crow, .ccol = ccol};
        for (int64_t tap = 0; tap < T; tap++) {
            t.sa = dc->trow + dc->tlo[tap], t.sb = dc->tpos + dc->tlo[tap];
            t.k = gn * dc->tcnt[tap];
            for (int64_t o0 = 0; o0 < O; o0 += MR) {
                t.mr = (int)min64(MR, O - o0);
                for (int i = 0; i < MR; i++) {
                    ri[i] = o0 + min64(i, t.mr - 1);
                    crow[i] = (o0 + i) * K;
                }
                for (int64_t k0 = tap * C; k0 < (tap + 1) * C; k0 += NW) {
                    t.b = xp + dc->koff[k0];
                    t.nv = NW / VW;
                    tile_cols(kind, k0, ccol);
                    run_tile(kind, &t);
                }
            }
        }
    } else {
        /* part [K][ldg]: rows = any taps, A(i, p) = xp[koff[k0+i] + npos[p]],
         * B(p, :) = gt's row p, chain over all the group's positions. */
        tile_job t = {.a = xp, .ri = ri, .sa = dc->npos, .b = gt, .ldb = P->ldg, .k = npos,
                      .c = part, .crow = crow, .ccol = ccol};
        for (int64_t k0 = 0; k0 < K; k0 += MR) {
            t.mr = (int)min64(MR, K - k0);
            for (int i = 0; i < MR; i++) {
                ri[i] = dc->koff[k0 + min64(i, t.mr - 1)];
                crow[i] = (k0 + i) * P->ldg;
            }
            for (int64_t o0 = 0; o0 < O; o0 += NW) {
                t.b = gt + o0;
                t.nv = (int)cdiv(min64(NW, O - o0), VW);
                tile_cols(kind, o0, ccol);
                run_tile(kind, &t);
            }
        }
    }
}

/* dX of one group into gxp (zeroed here), then onto gx. */
static void direct_dx(const conv_job *j, const float *gt, float *gxp, int64_t n0, int64_t gn) {
    const direct_plan *P = j->plan;
    const conv_dims *d = &P->d;
    const direct_ctx *dc = j->tables;
    const int64_t K = d->k, O = d->o, C = d->c;
    memset(gxp, 0, (size_t)(gn * P->img) * sizeof(float));
    /* Rows = positions of one class, A(i, o) = gt[row_i*ldg + o], B = W
     * [O][kpad]'s columns k0.. (the blocks with a tap inside), chain over O;
     * each row's vectors of one tap's channels are added onto the padded
     * input gradient there (C % VW == 0), or go through tmp one by one. */
    const bool vec = C % 8 == 0 && C > 0;
    const tile_kind kind = P->dx;
    const int MR = TILE_MR[kind], NW = TILE_NW[kind], VW = TILE_VW[kind];
    float tmp[6 * 16];
    int64_t ri[8], crow[8], ccol[2];
    tile_job t = {.a = gt, .ri = ri, .lda = 1, .ldb = P->kpad, .k = O, .ccol = ccol,
                  .crow = crow, .c = vec ? gxp : tmp, .add = vec};
    for (int64_t c = 0; c < dc->ncls; c++) {
        const conv_class *cl = &dc->cls[c];
        const int32_t *cpos = dc->cpos + cl->off, *crw = dc->crow + cl->off;
        const int64_t ne = gn * cl->m;
        for (int64_t e0 = 0; e0 < ne; e0 += MR) {
            const int mr = (int)min64(MR, ne - e0);
            t.mr = mr;
            for (int i = 0; i < MR; i++) {
                const int64_t e = e0 + min64(i, mr - 1);
                ri[i] = crw[e] * P->ldg;
                crow[i] = vec ? cpos[e] : i * 16;
            }
            for (int64_t bi = 0; bi < cl->bn; bi++) {
                const int64_t k0 = dc->dxb[cl->blo + bi], nk = min64(NW, K - k0);
                t.b = dc->wk + k0;
                t.nv = (int)cdiv(nk, VW);
                if (vec) {
                    ccol[0] = dc->koff[k0];
                    ccol[1] = nk > VW ? dc->koff[k0 + VW] : 0;
                    run_tile(kind, &t);
                } else {
                    ccol[0] = 0, ccol[1] = 8;
                    run_tile(kind, &t);
                    for (int i = 0; i < mr; i++) {
                        float *dst = gxp + cpos[e0 + i];
                        for (int64_t kk = 0; kk < nk; kk++)
                            dst[dc->koff[k0 + kk]] += tmp[i * 16 + kk];
                    }
                }
            }
        }
    }
    for (int64_t gi = 0; gi < gn; gi++)
        unpack_add_nhwc(P, dc, gxp + gi * P->img, j->gx + (n0 + gi) * C * d->h * d->w);
}

/* Backward of groups [lo, hi): the group's dW and db partials, its dX. */
static void direct_backward_part(void *ctx, int64_t lo, int64_t hi) {
    conv_job *j = ctx;
    const direct_plan *P = j->plan;
    const conv_dims *d = &P->d;
    const direct_ctx *dc = j->tables;
    float *ws = cg_floats_alloc(j->ws);
    const int64_t g = j->g, O = d->o, C = d->c, x_img = C * d->h * d->w;
    const bool padded = P->dwm != DW_TAPS;
    float *gt = ws, *gxp = gt + g * d->ohw * P->ldg, *xp = gxp + g * P->img;
    for (int64_t q = lo; q < hi; q++) {
        const int64_t n0 = q * g, gn = min64(g, d->n - n0), npos = gn * d->ohw;
        if (!j->want_w && !j->want_x) {
            bias_partial(d, j->dy, n0, gn, j->part_b + q * O);
            continue;
        }
        if (!ws) {
            if (j->want_b) bias_partial(d, j->dy, n0, gn, j->part_b + q * O);
            naive_backward(j, q, n0, gn);
            continue;
        }
        /* gt [g*OHW][ldg]: the group's dL/dy in NHWC, zero past O. */
        for (int64_t gi = 0; gi < gn; gi++) {
            float *dst = gt + gi * d->ohw * P->ldg;
            const float *src = j->dy + (n0 + gi) * O * d->ohw;
            for (int64_t o0 = 0; o0 < O; o0 += 8)
                scatter_rows_t(src + o0 * d->ohw, d->ohw, (int)min64(8, O - o0), d->ohw, dc->orow,
                               dst + o0);
            if (O < P->ldg)
                for (int64_t s = 0; s < d->ohw; s++)
                    for (int64_t o = O; o < P->ldg; o++) dst[s * P->ldg + o] = 0.0f;
        }
        if (j->want_b) bias_partial_nhwc(gt, npos, P->ldg, O, j->part_b + q * O);
        if (j->want_w) {
            const float *xg = j->x + n0 * x_img;
            if (padded)
                for (int64_t gi = 0; gi < gn; gi++)
                    pack_nhwc(P, dc, xg + gi * x_img, xp + gi * P->img);
            direct_dw(j, xg, xp, gt, gn, npos, j->part_w + q * j->lw.size);
        }
        if (j->want_x) direct_dx(j, gt, gxp, n0, gn);
    }
    cg_floats_free(ws, j->ws);
}

/* Tables and packed weights, in one buffer from the pool. */
typedef struct direct_bufs {
    float *mem;
    int64_t len;
    direct_ctx c;
} direct_bufs;

/* Distinct values of (lo, hi) over an axis's outputs: ids[i], count. */
static int64_t axis_classes(int64_t n, int64_t s, int64_t pad, int64_t k, int64_t in, int64_t *ids,
                            int64_t *los, int64_t *his) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t lo, hi, c = 0;
        taps_inside(i, s, pad, k, in, &lo, &hi);
        while (c < count && (los[c] != lo || his[c] != hi)) c++;
        if (c == count) los[c] = lo, his[c] = hi, count++;
        ids[i] = c;
    }
    return count;
}

/*
 * The tables for groups of g images and the packed weights a pass needs
 * (fwd: wt; dx: wk; dw: the per-tap lists). Sizes first, then one
 * allocation (nothing is left to undo if it fails).
 */
static bool direct_bufs_make(const direct_plan *P, const float *w, int64_t g, bool fwd, bool dx,
                             bool dw, direct_bufs *B) {
    const conv_dims *d = &P->d;
    const int64_t K = d->k, O = d->o, C = d->c, T = d->kh * d->kw, hw = d->h * d->w;
    const int64_t np = g * d->ohw, x_img = C * hw;
    /* Axis classes: at most one per output row / column. */
    const int64_t nax = 2 * (3 * (d->oh + d->ow) + 2);
    int64_t *ax = (int64_t *)cg_floats_alloc(nax);
    if (!ax) return false;
    int64_t *rid = ax, *rlo = rid + d->oh, *rhi = rlo + d->oh;
    int64_t *cid = rhi + d->oh, *clo = cid + d->ow, *chi = clo + d->ow;
    const int64_t nr = axis_classes(d->oh, d->s, d->pad, d->kh, d->h, rid, rlo, rhi);
    const int64_t nc = axis_classes(d->ow, d->s, d->pad, d->kw, d->w, cid, clo, chi);
    const int64_t ncls = nr * nc;
    /* Entries: k lists and dX blocks by class, per-tap positions. */
    int64_t nk = 0, nb = 0, ntap = 0;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            nk += (rhi[r] - rlo[r]) * (chi[c] - clo[c]) * C;
            nb += cdiv(K, TILE_NW[P->dx]);
        }
    const bool per_tap = dw && P->dwm != DW_PADDED;
    if (per_tap)
        for (int64_t i = 0; i < d->oh; i++)
            for (int64_t jj = 0; jj < d->ow; jj++)
                ntap += (rhi[rid[i]] - rlo[rid[i]]) * (chi[cid[jj]] - clo[cid[jj]]);
    ntap *= g;
    const int64_t n_cls = round_up(ncls * (int64_t)(sizeof(conv_class) / sizeof(float)), 16);
    const int64_t nint = 2 * K + 4 * np + (fwd ? nk : 0) + (dx ? nb : 0) + 2 * T + 2 * ntap +
                         hw + d->ohw;
    const int64_t nwt = fwd ? round_up(max64(O, 1), TILE_NW[P->fwd]) * nk : 0;
    const int64_t nwk = dx ? O * P->kpad : 0;
    B->len = n_cls + nint + nwt + nwk + 1;
    B->mem = cg_floats_alloc(B->len);
    if (!B->mem) {
        cg_floats_free((float *)ax, nax);
        return false;
    }
    conv_class *cls = (conv_class *)B->mem;
    int32_t *koff = (int32_t *)(B->mem + n_cls), *koffn = koff + K, *npos = koffn + K,
            *cposn = npos + np, *cpos = cposn + np, *crow = cpos + np, *fka = crow + np,
            *dxb = fka + (fwd ? nk : 0), *tlo = dxb + (dx ? nb : 0),
            *tcnt = tlo + T, *trow = tcnt + T, *tpos = trow + ntap, *pix = tpos + ntap,
            *orow = pix + hw;
    float *wt = B->mem + n_cls + nint, *wk = wt + nwt;
    const int NW = TILE_NW[P->fwd];
    /* A window's corner: in a padded image, and in x (NCHW, maybe negative). */
#define WIN_PADDED(gi, i, jj) ((gi) * P->img + ((i) * d->s * P->wp + (jj) * d->s) * C)
#define WIN_X(gi, i, jj) ((gi) * x_img + ((i) * d->s - d->pad) * d->w + (jj) * d->s - d->pad)

    for (int64_t kh = 0; kh < d->kh; kh++)
        for (int64_t kw = 0; kw < d->kw; kw++)
            for (int64_t c = 0; c < C; c++) {
                const int64_t k = (kh * d->kw + kw) * C + c;
                koff[k] = (int32_t)((kh * P->wp + kw) * C + c);
                koffn[k] = (int32_t)(c * hw + kh * d->w + kw);
            }
    for (int64_t gi = 0, q = 0; gi < g; gi++)
        for (int64_t i = 0; i < d->oh; i++)
            for (int64_t jj = 0; jj < d->ow; jj++, q++) npos[q] = (int32_t)WIN_PADDED(gi, i, jj);
    /* Classes: entries class by class, images in order within one. */
    int64_t off = 0, klo = 0, blo = 0;
    for (int64_t r = 0; r < nr; r++)
        for (int64_t c = 0; c < nc; c++) {
            conv_class *cl = &cls[r * nc + c];
            *cl = (conv_class){rlo[r], rhi[r], clo[c], chi[c], 0, off, klo, 0, blo, 0};
            /* The first image's entries, then the others' by offsets. */
            for (int64_t i = 0; i < d->oh; i++)
                for (int64_t jj = 0; rid[i] == r && jj < d->ow; jj++)
                    if (cid[jj] == c) {
                        cposn[off + cl->m] = (int32_t)WIN_X(0, i, jj);
                        cpos[off + cl->m] = (int32_t)WIN_PADDED(0, i, jj);
                        crow[off + cl->m] = (int32_t)(i * d->ow + jj);
                        cl->m++;
                    }
            for (int64_t gi = 1; gi < g; gi++)
                for (int64_t e = 0; e < cl->m; e++) {
                    cposn[off + gi * cl->m + e] = cposn[off + e] + (int32_t)(gi * x_img);
                    cpos[off + gi * cl->m + e] = cpos[off + e] + (int32_t)(gi * P->img);
                    crow[off + gi * cl->m + e] = crow[off + e] + (int32_t)(gi * d->ohw);
                }
            off += g * cl->m;
            for (int64_t kh = cl->kh0; kh < cl->kh1; kh++)
                for (int64_t kw = cl->kw0; kw < cl->kw1; kw++)
                    for (int64_t ch = 0; ch < C; ch++, cl->kn++) {
                        const int64_t k = (kh * d->kw + kw) * C + ch;
                        if (fwd) {
                            fka[klo + cl->kn] = koffn[k];
                            /* wt[o0/NW][klo + p][j] = w[o0 + j][c][kh][kw],
                             * for the class's p-th tap */
                            for (int64_t o0 = 0; o0 < O; o0 += NW)
                                for (int64_t jj = 0; jj < NW; jj++)
                                    wt[o0 * nk + (klo + cl->kn) * NW + jj] =
                                        o0 + jj < O ? w[((o0 + jj) * C + ch) * T + kh * d->kw + kw]
                                                    : 0.0f;
                        }
                    }
            klo += cl->kn;
            for (int64_t k0 = 0; k0 < K; k0 += TILE_NW[P->dx]) {
                bool any = false;
                for (int64_t k = k0; k < min64(K, k0 + TILE_NW[P->dx]) && !any; k++) {
                    const int64_t tap = k / C, kh = tap / d->kw, kw = tap % d->kw;
                    any = kh >= cl->kh0 && kh < cl->kh1 && kw >= cl->kw0 && kw < cl->kw1;
                }
                if (any) {
                    if (dx) dxb[blo + cl->bn] = (int32_t)k0;
                    cl->bn++;
                }
            }
            blo += cl->bn;
        }
    /* Per tap: the positions where it is inside, image by image. */
    int64_t e = 0;
    for (int64_t tap = 0; tap < T; tap++) {
        const int64_t kh = tap / d->kw, kw = tap % d->kw;
        tlo[tap] = (int32_t)e;
        tcnt[tap] = 0;
        if (!per_tap) continue;
        /* The first image's positions, then the others' by offsets. */
        for (int64_t i = 0; i < d->oh; i++) {
            if (kh < rlo[rid[i]] || kh >= rhi[rid[i]]) continue;
            for (int64_t jj = 0; jj < d->ow; jj++) {
                if (kw < clo[cid[jj]] || kw >= chi[cid[jj]]) continue;
                trow[e + tcnt[tap]] = (int32_t)((i * d->ow + jj) * P->ldg);
                tpos[e + tcnt[tap]] =
                    (int32_t)(P->dwm == DW_TAPS ? WIN_X(0, i, jj) : WIN_PADDED(0, i, jj));
                tcnt[tap]++;
            }
        }
        const int64_t m = tcnt[tap];
        const int32_t dpos = (int32_t)(P->dwm == DW_TAPS ? x_img : P->img);
        for (int64_t gi = 1; gi < g; gi++)
            for (int64_t q = 0; q < m; q++) {
                trow[e + gi * m + q] = trow[e + q] + (int32_t)(gi * d->ohw * P->ldg);
                tpos[e + gi * m + q] = tpos[e + q] + (int32_t)gi * dpos;
            }
        e += g * m;
    }
#undef WIN_PADDED
#undef WIN_X
    cg_floats_free((float *)ax, nax);
    bool all = true;
    for (int64_t h = 0; h < d->h; h++)
        for (int64_t ww = 0; ww < d->w; ww++) {
            const bool in = h + d->pad < P->hp && ww + d->pad < P->wp;
            pix[h * d->w + ww] = in ? (int32_t)(((h + d->pad) * P->wp + ww + d->pad) * C) : -1;
            all = all && in;
        }
    const int64_t ld = fwd ? P->ldf : P->ldg;
    for (int64_t s = 0; s < d->ohw; s++) orow[s] = (int32_t)(s * ld);
    if (dx)
        for (int64_t o = 0; o < O; o++) {
            for (int64_t c = 0; c < C; c++)
                for (int64_t t = 0; t < T; t++)
                    wk[o * P->kpad + t * C + c] = w[(o * C + c) * T + t];
            for (int64_t k = K; k < P->kpad; k++) wk[o * P->kpad + k] = 0.0f;
        }
    B->c = (direct_ctx){cls, ncls, koff, koffn, npos, cposn, cpos, crow, fka, dxb, tlo, tcnt,
                        trow, tpos, pix, orow, wt, nk, wk, all};
    return true;
}

/* Forward, with B from direct_bufs_make(.., P.g_fwd, true, false, false, ..). */
static void direct_forward(const direct_plan *P, const direct_bufs *B, const float *x,
                           const float *w, const float *b, float *y) {
    const conv_dims *d = &P->d;
    conv_job j = {.d = d, .plan = P, .tables = &B->c, .g = P->g_fwd, .x = x, .w = w, .b = b,
                  .y = y};
    j.ws = P->g_fwd * d->ohw * P->ldf;
    const int64_t groups = cdiv(d->n, j.g);
    cg_guarded_for_setup(threads_for(conv_flops(d), groups), groups, 4, warm_pool,
                         direct_forward_part, &j);
}

static bool direct_backward(const conv_dims *d, const float *x, const float *w, const float *dy,
                            float *gx, float *gw, float *gb) {
    const direct_plan P = plan_of(d);
    direct_bufs B;
    if (!direct_bufs_make(&P, w, P.g_bwd, false, gx != NULL, gw != NULL, &B)) return false;
    conv_job j = {.d = d, .plan = &P, .tables = &B.c, .g = P.g_bwd, .x = x, .w = w, .dy = dy,
                  .gx = gx, .want_x = gx != NULL, .want_w = gw != NULL, .want_b = gb != NULL};
    j.ws = P.g_bwd * (d->ohw * P.ldg + P.img + (P.dwm == DW_TAPS ? 0 : P.img));
    const int64_t groups = cdiv(d->n, j.g);
    /* rows = o: [O][K]; else [K][ldg]; k = t*C + c either way */
    j.lw = P.dwm == DW_ROWS_O ? (part_layout){d->k, 1, d->c, d->o * d->k}
                              : (part_layout){1, P.ldg, d->c * P.ldg, d->k * P.ldg};
    conv_parts parts;
    if (!parts_alloc(&parts, gw ? groups * j.lw.size : 0, gb ? groups * d->o : 0)) {
        cg_floats_free(B.mem, B.len);
        return false;
    }
    j.part_w = parts.w, j.part_b = parts.b;
    const double flops = conv_flops(d) * ((gx != NULL) + (gw != NULL));
    cg_guarded_for_setup(threads_for(flops, groups), groups, 4, warm_pool, direct_backward_part,
                         &j);
    if (gw) weight_reduce(d, j.part_w, j.lw, groups, gw);
    if (gb) bias_reduce(d, j.part_b, groups, gb);
    parts_free(&parts);
    cg_floats_free(B.mem, B.len);
    return true;
}

#endif /* x86 */

/* ------------------------------------------------------------------ */
/* Choosing a path                                                     */
/* ------------------------------------------------------------------ */

enum { PATH_AUTO = 0, PATH_DIRECT = 1, PATH_IM2COL = 2 };
static atomic_int forced_path;

bool cg_conv_use_path(const char *name) {
    int p;
    bool avx2_only = false;
    if (!name)
        p = PATH_AUTO;
    else if (strcmp(name, "im2col") == 0)
        p = PATH_IM2COL;
    else if (strcmp(name, "direct") == 0)
        p = PATH_DIRECT;
    else if (strcmp(name, "direct-avx2") == 0)
        p = PATH_DIRECT, avx2_only = true;
    else
        return false;
#ifdef CONV_DIRECT
    if (p == PATH_DIRECT && !cpu_has_avx2()) return false;
    atomic_store(&zmm_ok, avx2_only ? 0 : cpu_has_avx512());
#else
    if (p == PATH_DIRECT) return false;
    (void)avx2_only;
#endif
    atomic_store(&forced_path, p);
    return true;
}

enum { PASS_FWD, PASS_DATA, PASS_WEIGHT };

/* Whether this shape's pass runs direct. */
static bool use_direct(const conv_dims *d, int pass) {
#ifdef CONV_DIRECT
    const int forced = atomic_load_explicit(&forced_path, memory_order_relaxed);
    if (forced == PATH_IM2COL) return false;
    static int avx2 = -1; /* races write the same answer */
    if (avx2 < 0) avx2 = cpu_has_avx2();
    if (!avx2) return false;
    const direct_plan P = plan_of(d);
    if (!plan_fits(&P)) return false;
    if (forced == PATH_DIRECT) return true;
    /* The generic GEMM kernel asked for (CGRAD_GEMM=generic, tests): portable. */
    if (strcmp(cg_gemm_kernel_name(), "generic") == 0) return false;
    /* dX with C % 8 != 0 adds its tiles onto the input one float at a time:
     * simple_cnn's conv1 (C = 1) took 3.2-4.6 ms that way, 2.6-3.6 ms by
     * im2col (batch 512, one thread). */
    if (pass == PASS_DATA && d->c % 8 != 0) return false;
    return true;
#else
    (void)d, (void)pass;
    return false;
#endif
}

/* ------------------------------------------------------------------ */
/* The op                                                              */
/* ------------------------------------------------------------------ */

static void conv2d_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0], *w = out->src[1], *b = out->src[2];
    const conv_dims d = dims_of(x, w, out->iparam[0], out->iparam[1]);
    float *gx = cg_wants_grad(x) ? cg_grad_buf(x) : NULL;
    float *gw = cg_wants_grad(w) ? cg_grad_buf(w) : NULL;
    float *gb = cg_wants_grad(b) ? cg_grad_buf(b) : NULL;
    if (!gx && !gw && !gb) return;
    if (d.n * d.o * d.ohw == 0) return;
    /* dX on one path, dW and db on another, or all three in one pass. */
    const bool dx_direct = gx && use_direct(&d, PASS_DATA);
    const bool dw_direct = (gw || gb) && use_direct(&d, PASS_WEIGHT);
    bool ok = true;
#ifdef CONV_DIRECT
    if (dx_direct || dw_direct)
        ok = direct_backward(&d, x->data, w->data, out->grad, dx_direct ? gx : NULL,
                             dw_direct ? gw : NULL, dw_direct ? gb : NULL);
#endif
    if (ok && ((gx && !dx_direct) || ((gw || gb) && !dw_direct)))
        ok = im2col_backward(&d, x->data, w->data, out->grad, dx_direct ? NULL : gx,
                             dw_direct ? NULL : gw, dw_direct ? NULL : gb);
    if (!ok) cg_fail(CG_ERR_NOMEM, "conv2d: out of memory for the backward's partial sums");
}
static const cg_op OP_CONV2D = {"conv2d", conv2d_backward};

cg_tensor *cg_tensor_conv2d(cg_tensor *x, cg_tensor *w, cg_tensor *b, int stride, int pad) {
    if (!x || !w) return NULL;
    char sx[64], sw[64], sb[64];
    if (x->ndim != 4 || w->ndim != 4) {
        cg_fail(CG_ERR_SHAPE, "conv2d: needs x [N, C, H, W] and w [O, C, KH, KW], got %s and %s",
                cg_shape_str(x, sx, sizeof sx), cg_shape_str(w, sw, sizeof sw));
        return NULL;
    }
    if (x->shape[1] != w->shape[1]) {
        cg_fail(CG_ERR_SHAPE, "conv2d: x %s has %lld channels but w %s expects %lld",
                cg_shape_str(x, sx, sizeof sx), (long long)x->shape[1],
                cg_shape_str(w, sw, sizeof sw), (long long)w->shape[1]);
        return NULL;
    }
    if (stride < 1 || pad < 0) {
        cg_fail(CG_ERR_ARG, "conv2d: stride must be >= 1 and pad >= 0, got stride %d, pad %d",
                stride, pad);
        return NULL;
    }
    const int64_t hp = x->shape[2] + 2 * (int64_t)pad, wp = x->shape[3] + 2 * (int64_t)pad;
    if (w->shape[2] < 1 || w->shape[3] < 1 || w->shape[2] > hp || w->shape[3] > wp) {
        cg_fail(CG_ERR_SHAPE, "conv2d: kernel %lldx%lld does not fit input %lldx%lld padded by %d",
                (long long)w->shape[2], (long long)w->shape[3], (long long)x->shape[2],
                (long long)x->shape[3], pad);
        return NULL;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        cg_fail(CG_ERR_SHAPE, "conv2d: bias %s does not match %lld output channels",
                cg_shape_str(b, sb, sizeof sb), (long long)w->shape[0]);
        return NULL;
    }
    const conv_dims d = dims_of(x, w, stride, pad);
    const int64_t shape[4] = {d.n, d.o, d.oh, d.ow};
    if (cg_shape_numel("conv2d", shape, 4) < 0) return NULL;
    const bool empty = d.n * d.o * d.ohw == 0;
#ifdef CONV_DIRECT
    /* The tables and packed weights first: nothing to undo if they fail. */
    const bool direct = !empty && use_direct(&d, PASS_FWD);
    direct_plan P = {0};
    direct_bufs B = {0};
    if (direct) {
        P = plan_of(&d);
        if (!direct_bufs_make(&P, w->data, P.g_fwd, true, false, false, &B)) {
            cg_fail(CG_ERR_NOMEM, "conv2d: out of memory for the workspace");
            return NULL;
        }
    }
#endif
    cg_tensor *out = cg_op_result(&OP_CONV2D, shape, 4, x, w, b);
    if (out) {
        out->iparam[0] = stride;
        out->iparam[1] = pad;
    }
#ifdef CONV_DIRECT
    if (direct) {
        if (out) direct_forward(&P, &B, x->data, w->data, b ? b->data : NULL, out->data);
        cg_floats_free(B.mem, B.len);
        return out;
    }
#endif
    if (out && !empty) im2col_forward(&d, x->data, w->data, b ? b->data : NULL, out->data);
    return out;
}
