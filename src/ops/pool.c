/*
 * pool.c - max and average pooling over kernel x kernel windows, and the
 * global average pool.
 *
 * x [N, C, H, W] is N*C planes of H x W; output plane p's element (oh, ow)
 * pools the window rows h = oh*stride - pad + [0, kernel), columns
 * w = ow*stride - pad + [0, kernel), with OH = (H + 2*pad - kernel) / stride + 1
 * (PyTorch's floor mode). Positions outside the plane are padding:
 *   max: y = max over the window's positions inside the plane (padding is
 *        -inf, it never wins); the winner is the first in window order
 *        (row by row), except that a NaN wins (PyTorch propagates NaN).
 *        dL/dx[winner] += dL/dy: the winners' offsets in the plane are
 *        saved (int32, in out->saved) for the backward.
 *   avg: y = sum over the positions inside / kernel^2 (padding counts as
 *        zeros: count_include_pad = true). dL/dx[h, w] += dL/dy / kernel^2
 *        for every window holding (h, w).
 *   global: y[n, c] = sum over the plane / (H*W), dL/dx = dL/dy / (H*W).
 * pad <= kernel/2 (as PyTorch asks) and H, W >= 1 keep at least one
 * position of every window inside the plane.
 *
 * Planes are independent, and each is done whole by one thread in a fixed
 * order, so the results are the same bits on any thread count.
 */
#include "cgrad_internal.h"

#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct pool_job {
    const float *x;
    float *y;
    int32_t *idx;              /* max: the winners' offsets in their plane */
    const float *g;            /* backward: dL/dy            */
    float *gx;                 /* backward: dL/dx            */
    int64_t h, w, oh, ow;
    int k, s, p;
} pool_job;

/* Checks x and the window; fills the job's sizes. false after cg_fail. */
static bool pool_plan(const char *name, const cg_tensor *x, int k, int s, int p, pool_job *jb) {
    char sh[64];
    if (x->ndim != 4) {
        cg_fail(CG_ERR_SHAPE, "%s: x has shape %s, expected [N, C, H, W]", name,
                cg_shape_str(x, sh, sizeof sh));
        return false;
    }
    if (k < 1 || s < 1 || p < 0) {
        cg_fail(CG_ERR_ARG, "%s: kernel %d and stride %d must be at least 1, pad %d at least 0",
                name, k, s, p);
        return false;
    }
    if (p > k / 2) {
        cg_fail(CG_ERR_ARG, "%s: pad %d is more than half the kernel %d", name, p, k);
        return false;
    }
    const int64_t h = x->shape[2], w = x->shape[3];
    if (h < 1 || w < 1) {
        cg_fail(CG_ERR_SHAPE, "%s: x %s has empty planes", name, cg_shape_str(x, sh, sizeof sh));
        return false;
    }
    if (h + 2 * (int64_t)p < k || w + 2 * (int64_t)p < k) {
        cg_fail(CG_ERR_SHAPE, "%s: kernel %d is larger than the padded input %s (pad %d)", name, k,
                cg_shape_str(x, sh, sizeof sh), p);
        return false;
    }
    if (h * w > INT32_MAX) {
        cg_fail(CG_ERR_SHAPE, "%s: planes of %lld elements are too large", name,
                (long long)(h * w));
        return false;
    }
    jb->h = h;
    jb->w = w;
    jb->oh = (h + 2 * p - k) / s + 1;
    jb->ow = (w + 2 * p - k) / s + 1;
    jb->k = k;
    jb->s = s;
    jb->p = p;
    return true;
}

/* [lo, hi) of the window start o*s - p clipped to [0, n). */
static inline void window(int64_t o, const pool_job *jb, int64_t n, int64_t *lo, int64_t *hi) {
    const int64_t a = o * jb->s - jb->p;
    *lo = a < 0 ? 0 : a;
    *hi = a + jb->k < n ? a + jb->k : n;
}

/* Threads for a region over x's planes: one below CG_PARALLEL_MIN elements. */
static int pool_threads(int64_t numel) {
    return numel >= CG_PARALLEL_MIN ? cg_get_num_threads() : 1;
}

/* ------------------------------------------------------------------ */
/* Max pooling                                                         */
/* ------------------------------------------------------------------ */

/* Whether v replaces the best so far m: larger, or the first NaN (v > m,
 * or v NaN while m is not). beats4 below is the same on four lanes. */
#if !defined(__SSE2__)
static inline bool beats(float v, float m) { return v > m || (v != v && m == m); }
#endif

/*
 * 2x2 windows, stride 2, no padding (the usual CNN pool): every window lies
 * inside, at four fixed positions a b / c d. The top row's winner (a, or b
 * if it beats a) meets the bottom row's (c, or d), the top winning ties as
 * it comes first in window order. With SSE2, four windows at a time (the
 * compilers' own vectorisation of these selects comes and goes with small
 * changes, and their scalar code branches: on [512, 8, 28, 28], one core,
 * 1.1 ms here against 2.9 and 13 ms): a, b are the even and odd
 * floats of 8 in the top row, c, d of the bottom one; beats is
 * !(v <= m) & (m == m), and a select is (t & v) | (~t & m). The windows
 * left over (under four) take the same steps on one lane each.
 */
#if defined(__SSE2__)
static inline __m128 beats4(__m128 v, __m128 m) {
    return _mm_andnot_ps(_mm_cmple_ps(v, m), _mm_cmpord_ps(m, m));
}
static inline __m128 select4(__m128 t, __m128 v, __m128 m) {
    return _mm_or_ps(_mm_and_ps(t, v), _mm_andnot_ps(t, m));
}
static inline __m128i select4i(__m128i t, __m128i v, __m128i m) {
    return _mm_or_si128(_mm_and_si128(t, v), _mm_andnot_si128(t, m));
}
/* The windows of a b / c d (lanes), o their a's offsets: y and the winners. */
static inline void max4(__m128 a, __m128 b, __m128 c, __m128 d, __m128i o, __m128i w, __m128 *y,
                        __m128i *idx) {
    const __m128 tb = beats4(b, a), td = beats4(d, c);
    const __m128 top = select4(tb, b, a), bot = select4(td, d, c);
    /* a mask lane is -1: offset - mask adds the column step of 1 */
    const __m128i itop = _mm_sub_epi32(o, _mm_castps_si128(tb));
    const __m128i ibot = _mm_sub_epi32(_mm_add_epi32(o, w), _mm_castps_si128(td));
    const __m128 t = beats4(bot, top);
    *y = select4(t, bot, top);
    *idx = select4i(_mm_castps_si128(t), ibot, itop);
}
#endif

static void max_plane_2x2(const float *xp, float *yp, int32_t *ip, const pool_job *jb) {
    const int64_t W = jb->w, OW = jb->ow;
    for (int64_t oh = 0; oh < jb->oh; oh++) {
        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        float *yo = yp + oh * OW;
        int32_t *io = ip + oh * OW;
        const int32_t base = (int32_t)(2 * oh * W);
        int64_t ow = 0;
#if defined(__SSE2__)
        const __m128i w = _mm_set1_epi32((int32_t)W), step = _mm_setr_epi32(0, 2, 4, 6);
        for (; ow + 4 <= OW; ow += 4) {
            const __m128 t0 = _mm_loadu_ps(r0 + 2 * ow), t1 = _mm_loadu_ps(r0 + 2 * ow + 4);
            const __m128 b0 = _mm_loadu_ps(r1 + 2 * ow), b1 = _mm_loadu_ps(r1 + 2 * ow + 4);
            const __m128i o = _mm_add_epi32(_mm_set1_epi32(base + (int32_t)(2 * ow)), step);
            __m128 y;
            __m128i idx;
            max4(_mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1)),
                 _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0)),
                 _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1)), o, w, &y, &idx);
            _mm_storeu_ps(yo + ow, y);
            _mm_storeu_si128((__m128i *)(io + ow), idx);
        }
        for (; ow < OW; ow++) {
            __m128 y;
            __m128i idx;
            max4(_mm_load_ss(r0 + 2 * ow), _mm_load_ss(r0 + 2 * ow + 1), _mm_load_ss(r1 + 2 * ow),
                 _mm_load_ss(r1 + 2 * ow + 1), _mm_cvtsi32_si128(base + (int32_t)(2 * ow)), w, &y,
                 &idx);
            _mm_store_ss(yo + ow, y);
            io[ow] = _mm_cvtsi128_si32(idx);
        }
#else
        for (; ow < OW; ow++) {
            const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            const int32_t o = base + (int32_t)(2 * ow);
            const bool tb = beats(b, a), td = beats(d, c);
            const float top = tb ? b : a, bot = td ? d : c;
            const bool t = beats(bot, top);
            yo[ow] = t ? bot : top;
            io[ow] = t ? o + (int32_t)W + td : o + tb;
        }
#endif
    }
}

/*
 * Any window: output (oh, ow) pools the rows [h0, h1) and columns [w0, w1)
 * of its plane, clipped to it. Every plane has the same windows, so with
 * SSE2 four planes go at once, lane l reading plane l: no lane ever meets
 * a window the others do not, and the winners' offsets (within a plane)
 * are the same vector for all lanes (3x3 windows, stride 2, pad 1 on
 * [512, 8, 28, 28]: 5.7 ms on one core, 27 ms for plain C, whose compares
 * branch). Planes left over (under four) go one lane at a time, through
 * the same steps. Max starts from -inf with the
 * window's first position as the winner, so a window of -inf gives that
 * position; avg adds in window order from 0 and divides by k^2.
 */
#if defined(__SSE2__)
/* n = 4 lanes or 1; lane l's plane at xp + l*in, its output at y + l*on. */
static inline void window_lanes(const float *xp, int64_t in, int n, int64_t W, int64_t h0,
                                int64_t h1, int64_t w0, int64_t w1, bool max, float div, float *y,
                                int32_t *idx, int64_t on) {
    __m128 m = max ? _mm_set1_ps(-INFINITY) : _mm_setzero_ps();
    __m128i best = _mm_set1_epi32((int32_t)(h0 * W + w0));
    for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) {
            const float *v0 = xp + h * W + w;
            const __m128 v = n == 4 ? _mm_setr_ps(v0[0], v0[in], v0[2 * in], v0[3 * in])
                                    : _mm_set_ss(v0[0]);
            if (max) {
                const __m128 t = beats4(v, m);
                m = select4(t, v, m);
                best = select4i(_mm_castps_si128(t), _mm_set1_epi32((int32_t)(h * W + w)), best);
            } else {
                m = _mm_add_ps(m, v);
            }
        }
    if (!max) m = _mm_div_ps(m, _mm_set1_ps(div));
    float out[4];
    int32_t at[4];
    _mm_storeu_ps(out, m);
    _mm_storeu_si128((__m128i *)at, best);
    for (int l = 0; l < n; l++) {
        y[l * on] = out[l];
        if (max) idx[l * on] = at[l];
    }
}
#else
static inline void window_lanes(const float *xp, int64_t in, int n, int64_t W, int64_t h0,
                                int64_t h1, int64_t w0, int64_t w1, bool max, float div, float *y,
                                int32_t *idx, int64_t on) {
    for (int l = 0; l < n; l++) {
        float m = max ? -INFINITY : 0.0f;
        int32_t best = (int32_t)(h0 * W + w0);
        for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) {
                const float v = xp[l * in + h * W + w];
                if (!max) {
                    m += v;
                } else if (beats(v, m)) {
                    m = v;
                    best = (int32_t)(h * W + w);
                }
            }
        y[l * on] = max ? m : m / div;
        if (max) idx[l * on] = best;
    }
}
#endif

/* Planes [lo, hi) of max (idx set) or avg pooling. */
static inline void pool_part(const pool_job *jb, int64_t lo, int64_t hi, bool max) {
    const int64_t W = jb->w, in = jb->h * W, on = jb->oh * jb->ow;
    const float div = (float)jb->k * (float)jb->k;
    for (int64_t pl = lo; pl < hi;) {
        const int n = hi - pl >= 4 ? 4 : 1;
        const float *xp = jb->x + pl * in;
        float *yp = jb->y + pl * on;
        int32_t *ip = max ? jb->idx + pl * on : NULL;
        for (int64_t oh = 0; oh < jb->oh; oh++) {
            int64_t h0, h1;
            window(oh, jb, jb->h, &h0, &h1);
            for (int64_t ow = 0; ow < jb->ow; ow++) {
                int64_t w0, w1;
                window(ow, jb, W, &w0, &w1);
                const int64_t o = oh * jb->ow + ow;
                window_lanes(xp, in, n, W, h0, h1, w0, w1, max, div, yp + o, ip ? ip + o : NULL,
                             on);
            }
        }
        pl += n;
    }
}

static void max_forward_part(void *ctx, int64_t lo, int64_t hi) {
    const pool_job *jb = ctx;
    /* the 2x2 path's lanes run along a row: for rows of 4 windows or more */
    if (jb->k == 2 && jb->s == 2 && jb->p == 0 && jb->ow >= 4) {
        const int64_t in = jb->h * jb->w, on = jb->oh * jb->ow;
        for (int64_t pl = lo; pl < hi; pl++)
            max_plane_2x2(jb->x + pl * in, jb->y + pl * on, jb->idx + pl * on, jb);
    } else {
        pool_part(jb, lo, hi, true);
    }
}

static void max_backward_part(void *ctx, int64_t lo, int64_t hi) {
    const pool_job *jb = ctx;
    const int64_t in = jb->h * jb->w, on = jb->oh * jb->ow;
    for (int64_t pl = lo; pl < hi; pl++) {
        float *gxp = jb->gx + pl * in;
        const float *gp = jb->g + pl * on;
        const int32_t *ip = jb->idx + pl * on;
        for (int64_t o = 0; o < on; o++) gxp[ip[o]] += gp[o];
    }
}

/* The window and sizes are kept in iparam: kernel, stride, pad. */
static void job_of(pool_job *jb, const cg_tensor *out, const cg_tensor *x) {
    jb->h = x->shape[2];
    jb->w = x->shape[3];
    jb->oh = out->shape[2];
    jb->ow = out->shape[3];
    jb->k = (int)out->iparam[0];
    jb->s = (int)out->iparam[1];
    jb->p = (int)out->iparam[2];
}

static void max_pool_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x) || !out->saved) return;
    pool_job jb = {0};
    job_of(&jb, out, x);
    jb.gx = cg_grad_buf(x);
    if (!jb.gx) return;
    jb.g = out->grad;
    jb.idx = (int32_t *)out->saved;
    cg_guarded_for(pool_threads(x->numel), x->shape[0] * x->shape[1], 2, max_backward_part, &jb);
}
static const cg_op OP_MAX_POOL = {"max_pool2d", max_pool_backward};

cg_tensor *cg_tensor_max_pool2d(cg_tensor *x, int kernel, int stride, int pad) {
    if (!x) return NULL;
    pool_job jb = {0};
    if (!pool_plan("max_pool2d", x, kernel, stride, pad, &jb)) return NULL;
    const int64_t shape[4] = {x->shape[0], x->shape[1], jb.oh, jb.ow};
    const int64_t n_idx = shape[0] * shape[1] * jb.oh * jb.ow; /* int32 in floats */
    float *idx = cg_floats_alloc(n_idx);
    if (!idx) {
        cg_fail(CG_ERR_NOMEM, "max_pool2d: out of memory");
        return NULL;
    }
    cg_tensor *out = cg_op_result(&OP_MAX_POOL, shape, 4, x, NULL, NULL);
    if (!out) {
        cg_floats_free(idx, n_idx);
        return NULL;
    }
    jb.x = x->data;
    jb.y = out->data;
    jb.idx = (int32_t *)idx;
    cg_guarded_for(pool_threads(x->numel), shape[0] * shape[1], 2, max_forward_part, &jb);
    if (out->op) { /* the winners, for the backward; back to the pool with out */
        out->saved = idx;
        out->n_saved = n_idx;
        out->iparam[0] = kernel;
        out->iparam[1] = stride;
        out->iparam[2] = pad;
    } else {
        cg_floats_free(idx, n_idx);
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Average pooling                                                     */
/* ------------------------------------------------------------------ */

static void avg_forward_part(void *ctx, int64_t lo, int64_t hi) { pool_part(ctx, lo, hi, false); }

static void avg_backward_part(void *ctx, int64_t lo, int64_t hi) {
    const pool_job *jb = ctx;
    const int64_t W = jb->w, in = jb->h * W, on = jb->oh * jb->ow, OW = jb->ow;
    const float div = (float)jb->k * (float)jb->k;
    const bool k2s2 = jb->k == 2 && jb->s == 2 && jb->p == 0;
    for (int64_t pl = lo; pl < hi; pl++) {
        float *gxp = jb->gx + pl * in;
        const float *gp = jb->g + pl * on;
        for (int64_t oh = 0; oh < jb->oh; oh++) {
            const float *go = gp + oh * OW;
            if (k2s2) { /* the windows a b / c d, each inside: straight-line adds */
                float *r0 = gxp + 2 * oh * W, *r1 = r0 + W;
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float v = go[ow] / div;
                    r0[2 * ow] += v;
                    r0[2 * ow + 1] += v;
                    r1[2 * ow] += v;
                    r1[2 * ow + 1] += v;
                }
                continue;
            }
            int64_t h0, h1;
            window(oh, jb, jb->h, &h0, &h1);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0, w1;
                window(ow, jb, W, &w0, &w1);
                const float v = go[ow] / div;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) gxp[h * W + w] += v;
            }
        }
    }
}

static void avg_pool_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    pool_job jb = {0};
    job_of(&jb, out, x);
    jb.gx = cg_grad_buf(x);
    if (!jb.gx) return;
    jb.g = out->grad;
    cg_guarded_for(pool_threads(x->numel), x->shape[0] * x->shape[1], 2, avg_backward_part, &jb);
}
static const cg_op OP_AVG_POOL = {"avg_pool2d", avg_pool_backward};

cg_tensor *cg_tensor_avg_pool2d(cg_tensor *x, int kernel, int stride, int pad) {
    if (!x) return NULL;
    pool_job jb = {0};
    if (!pool_plan("avg_pool2d", x, kernel, stride, pad, &jb)) return NULL;
    const int64_t shape[4] = {x->shape[0], x->shape[1], jb.oh, jb.ow};
    cg_tensor *out = cg_op_result(&OP_AVG_POOL, shape, 4, x, NULL, NULL);
    if (!out) return NULL;
    jb.x = x->data;
    jb.y = out->data;
    cg_guarded_for(pool_threads(x->numel), shape[0] * shape[1], 2, avg_forward_part, &jb);
    out->iparam[0] = kernel;
    out->iparam[1] = stride;
    out->iparam[2] = pad;
    return out;
}

/* ------------------------------------------------------------------ */
/* Global average pooling                                              */
/* ------------------------------------------------------------------ */

static void gap_forward_part(void *ctx, int64_t lo, int64_t hi) {
    const pool_job *jb = ctx;
    const int64_t in = jb->h * jb->w;
    for (int64_t pl = lo; pl < hi; pl++)
        jb->y[pl] = (float)(cg_sum_floats(jb->x + pl * in, in) / (double)in);
}

static void gap_backward_part(void *ctx, int64_t lo, int64_t hi) {
    const pool_job *jb = ctx;
    const int64_t in = jb->h * jb->w;
    for (int64_t pl = lo; pl < hi; pl++) {
        const float v = (float)((double)jb->g[pl] / (double)in);
        float *gxp = jb->gx + pl * in;
        for (int64_t i = 0; i < in; i++) gxp[i] += v;
    }
}

static void gap_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    pool_job jb = {.h = x->shape[2], .w = x->shape[3]};
    jb.gx = cg_grad_buf(x);
    if (!jb.gx) return;
    jb.g = out->grad;
    cg_guarded_for(pool_threads(x->numel), out->numel, 2, gap_backward_part, &jb);
}
static const cg_op OP_GAP = {"global_avg_pool", gap_backward};

cg_tensor *cg_tensor_global_avg_pool(cg_tensor *x) {
    if (!x) return NULL;
    if (x->ndim != 4) {
        char sh[64];
        cg_fail(CG_ERR_SHAPE, "global_avg_pool: x has shape %s, expected [N, C, H, W]",
                cg_shape_str(x, sh, sizeof sh));
        return NULL;
    }
    const int64_t shape[2] = {x->shape[0], x->shape[1]};
    cg_tensor *out = cg_op_result(&OP_GAP, shape, 2, x, NULL, NULL);
    if (!out) return NULL;
    /* The mean of an empty plane is NaN (0/0), as in PyTorch. */
    pool_job jb = {.x = x->data, .y = out->data, .h = x->shape[2], .w = x->shape[3]};
    cg_guarded_for(pool_threads(x->numel), out->numel, 2, gap_forward_part, &jb);
    return out;
}
