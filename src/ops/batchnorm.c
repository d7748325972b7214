/*
 * batchnorm.c - batch normalisation (torch.nn.functional.batch_norm).
 *
 * x is seen as [N, C, S] (S = H*W for [N, C, H, W], 1 for [N, C]); channel
 * c's m = N*S values are the segments x[n, c, 0..S) for n = 0..N-1.
 *
 * Forward, per channel (statistics in double):
 *   training: mean = sum(x) / m, var = sum((x - mean)^2) / m (biased),
 *             running_mean = (1 - momentum) * running_mean + momentum * mean,
 *             running_var  = (1 - momentum) * running_var
 *                            + momentum * var * m / (m - 1)   (unbiased);
 *   eval:     mean, var = running_mean[c], running_var[c];
 *   invstd = 1 / sqrt(var + eps),  xhat = (x - mean) * invstd,
 *   y = xhat * gamma[c] + beta[c]  (gamma = 1, beta = 0 without affine).
 * The sums of the training statistics run over d = x - k, k the channel's
 * first value: var = sum(d^2)/m - (sum(d)/m)^2 then loses nothing to a
 * mean that is large against the spread, and both sums take one pass.
 *
 * Backward, per channel, from dy = dL/dy (sums in double):
 *   dbeta  = sum(dy),  dgamma = sum(dy * xhat);
 *   eval:     dx = dy * gamma * invstd (mean and invstd are constants);
 *   training: mean and invstd depend on x as well; with
 *             dL/dxhat = dy * gamma, d mean/dx_i = 1/m and
 *             d invstd/dx_i = -invstd^3 (x_i - mean) / m, the chain rule gives
 *     dx = gamma * invstd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
 *        = A * dy + B * (x - mean) + D,
 *     A = gamma * invstd, D = -A * sum(dy) / m,
 *     B = -A * invstd^2 * sum(dy * (x - mean)) / m.
 * The mean and invstd the forward used are saved in out->saved ([3C]
 * floats: the means' leading floats, their remainders, the invstds), so
 * the backward needs no statistics pass of its own and repeats the
 * forward's xhat exactly. The mean is kept as the float sum hi + lo of
 * its double value, and x - mean computed as (x - hi) - lo: x - hi is
 * exact for x near the mean, so a mean large against the spread costs no
 * more than float rounding of the result (one more subtraction).
 *
 * Threads take whole channels (cg_guarded_for over C), and each channel's
 * sums run in one fixed order (see `lanes` below), so results are the same
 * bits on any thread count. A thread streams through the rows n once per
 * pass and block of its channels, reading each row's segments in memory
 * order: the forward is two passes (statistics, then y), the backward two
 * (sums, then dx).
 */
#include "cgrad_internal.h"

/* Channels handled together: up to this many of a thread's channels share
 * its passes over the rows (one block for the shapes of an MNIST CNN). */
#define BN_BLOCK 32
/* Below this many values per segment (S), a block's segments of one row
 * are one contiguous run (at most BN_COLS floats), and the loops run along
 * it with per-column constants: segments of 1 to 7 values would leave the
 * per-segment loops nothing to vectorise. */
#define BN_NARROW 8
#define BN_COLS (BN_BLOCK * BN_NARROW)

typedef struct bn_job {
    const float *x;
    float *y;                       /* forward's output             */
    const float *dy;                /* backward's incoming grad     */
    float *gx, *ggamma, *gbeta;     /* backward's outputs (or NULL) */
    int64_t n, c, s;                /* x as [N, C, S]               */
    const float *gamma, *beta;      /* NULL without affine          */
    float *rmean, *rvar;            /* running stats to update      */
    float *st;                      /* [3C]: mean hi, mean lo, invstd */
    bool training;
    double momentum, eps;
} bn_job;

/*
 * A channel's sums go into 8 lanes, lane j taking its segments' elements
 * i = j (mod 8) in order of n, then i; the lanes are added 0..7 at the end.
 * Segments of 8 or more run in registers (lanes_sq, lanes_dot); narrower
 * ones as columns of the block's runs (j = i), then moved into the lanes.
 * Either way, the same order for a channel whichever thread and block hold
 * it.
 */
typedef double lanes[BN_BLOCK][8];

/* Lane j of d = x[i] - k: a1[j] += d, a2[j] += d^2. (The lanes are
 * copied in and out so that they stay in registers along the segment.) */
static inline void lanes_sq(const float *x, int64_t s, double k, double *a1, double *a2) {
    double s1[8], s2[8];
    for (int j = 0; j < 8; j++) {
        s1[j] = a1[j];
        s2[j] = a2[j];
    }
    int64_t i = 0;
    for (; i + 8 <= s; i += 8)
        for (int j = 0; j < 8; j++) {
            const double d = (double)x[i + j] - k;
            s1[j] += d;
            s2[j] += d * d;
        }
    for (int j = 0; i < s; i++, j++) {
        const double d = (double)x[i] - k;
        s1[j] += d;
        s2[j] += d * d;
    }
    for (int j = 0; j < 8; j++) {
        a1[j] = s1[j];
        a2[j] = s2[j];
    }
}

/* Lane j: a1[j] += dy[i], a2[j] += dy[i] * (x[i] - mu). */
static inline void lanes_dot(const float *dy, const float *x, int64_t s, double mu, double *a1,
                             double *a2) {
    double s1[8], s2[8];
    for (int j = 0; j < 8; j++) {
        s1[j] = a1[j];
        s2[j] = a2[j];
    }
    int64_t i = 0;
    for (; i + 8 <= s; i += 8)
        for (int j = 0; j < 8; j++) {
            const double g = dy[i + j];
            s1[j] += g;
            s2[j] += g * ((double)x[i + j] - mu);
        }
    for (int j = 0; i < s; i++, j++) {
        const double g = dy[i];
        s1[j] += g;
        s2[j] += g * ((double)x[i] - mu);
    }
    for (int j = 0; j < 8; j++) {
        a1[j] = s1[j];
        a2[j] = s2[j];
    }
}

static inline double lanes_total(const double *a) {
    double t = 0.0;
    for (int j = 0; j < 8; j++) t += a[j];
    return t;
}

/* Narrow segments: column c * S + s of the block's runs is lane s of its
 * channel c. */
static void columns_to_lanes(const double *f1, const double *f2, int64_t nc, int64_t S, lanes a1,
                             lanes a2) {
    for (int64_t c = 0; c < nc; c++)
        for (int64_t s = 0; s < S; s++) {
            a1[c][s] = f1[c * S + s];
            a2[c][s] = f2[c * S + s];
        }
}

/* The mean of channel c as hi + lo (floats), hi the nearest float. */
static inline void set_mean(float *st, int64_t C, int64_t c, double mean) {
    const float hi = (float)mean;
    st[c] = hi;
    st[C + c] = (float)(mean - (double)hi);
}

/* Training statistics of channels [c0, c1), and the running stats. */
static void bn_stats(const bn_job *jb, int64_t c0, int64_t c1) {
    const int64_t N = jb->n, C = jb->c, S = jb->s, nc = c1 - c0;
    const double m = (double)(N * S);
    lanes a1 = {{0}}, a2 = {{0}};
    double k[BN_BLOCK];
    for (int64_t c = c0; c < c1; c++) k[c - c0] = jb->x[c * S];
    if (S >= BN_NARROW) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = c0; c < c1; c++)
                lanes_sq(jb->x + (n * C + c) * S, S, k[c - c0], a1[c - c0], a2[c - c0]);
    } else {
        const int64_t cols = nc * S;
        double f1[BN_COLS] = {0}, f2[BN_COLS] = {0}, kc[BN_COLS];
        for (int64_t j = 0; j < cols; j++) kc[j] = k[j / S];
        for (int64_t n = 0; n < N; n++) {
            const float *xr = jb->x + (n * C + c0) * S;
            for (int64_t j = 0; j < cols; j++) {
                const double d = (double)xr[j] - kc[j];
                f1[j] += d;
                f2[j] += d * d;
            }
        }
        columns_to_lanes(f1, f2, nc, S, a1, a2);
    }
    for (int64_t c = c0; c < c1; c++) {
        const double d = lanes_total(a1[c - c0]) / m;
        double var = lanes_total(a2[c - c0]) / m - d * d;
        if (var < 0.0) var = 0.0; /* rounding, for a constant channel */
        const double mean = k[c - c0] + d;
        set_mean(jb->st, C, c, mean);
        jb->st[2 * C + c] = (float)(1.0 / sqrt(var + jb->eps));
        if (jb->rmean) {
            const double mo = jb->momentum;
            jb->rmean[c] = (float)((1.0 - mo) * jb->rmean[c] + mo * mean);
            jb->rvar[c] = (float)((1.0 - mo) * jb->rvar[c] + mo * var * m / (m - 1.0));
        }
    }
}

/* Channels [lo, hi): the statistics (training), then
 * y = ((x - hi) - lo) * (gamma * invstd) + beta. */
static void bn_forward_part(void *ctx, int64_t lo, int64_t hi) {
    const bn_job *jb = ctx;
    const int64_t N = jb->n, C = jb->c, S = jb->s;
    for (int64_t c0 = lo; c0 < hi; c0 += BN_BLOCK) {
        const int64_t c1 = c0 + BN_BLOCK < hi ? c0 + BN_BLOCK : hi, nc = c1 - c0;
        if (jb->training) bn_stats(jb, c0, c1);
        /* the constants, per channel (per = 1) or per column of a narrow run */
        const int64_t per = S >= BN_NARROW ? 1 : S;
        float mh[BN_COLS], ml[BN_COLS], sc[BN_COLS], b[BN_COLS];
        for (int64_t j = 0; j < nc * per; j++) {
            const int64_t c = c0 + j / per;
            const float is = jb->st[2 * C + c];
            mh[j] = jb->st[c];
            ml[j] = jb->st[C + c];
            sc[j] = jb->gamma ? jb->gamma[c] * is : is;
            b[j] = jb->beta ? jb->beta[c] : 0.0f;
        }
        for (int64_t n = 0; n < N; n++) {
            const float *xr = jb->x + (n * C + c0) * S;
            float *yr = jb->y + (n * C + c0) * S;
            if (per == 1) {
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t i = c * S; i < (c + 1) * S; i++)
                        yr[i] = ((xr[i] - mh[c]) - ml[c]) * sc[c] + b[c];
            } else {
                for (int64_t j = 0; j < nc * S; j++)
                    yr[j] = ((xr[j] - mh[j]) - ml[j]) * sc[j] + b[j];
            }
        }
    }
}

/* sum(dy) and sum(dy * (x - mean)) of channels [c0, c1). */
static void bn_grad_sums(const bn_job *jb, int64_t c0, int64_t c1, double *sdy, double *sdyx) {
    const int64_t N = jb->n, C = jb->c, S = jb->s, nc = c1 - c0;
    lanes a1 = {{0}}, a2 = {{0}};
    double mu[BN_BLOCK];
    for (int64_t c = c0; c < c1; c++) mu[c - c0] = (double)jb->st[c] + jb->st[C + c];
    if (S >= BN_NARROW) {
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = c0; c < c1; c++) {
                const int64_t off = (n * C + c) * S;
                lanes_dot(jb->dy + off, jb->x + off, S, mu[c - c0], a1[c - c0], a2[c - c0]);
            }
    } else {
        const int64_t cols = nc * S;
        double f1[BN_COLS] = {0}, f2[BN_COLS] = {0}, mc[BN_COLS];
        for (int64_t j = 0; j < cols; j++) mc[j] = mu[j / S];
        for (int64_t n = 0; n < N; n++) {
            const float *g = jb->dy + (n * C + c0) * S, *xr = jb->x + (n * C + c0) * S;
            for (int64_t j = 0; j < cols; j++) {
                const double gj = g[j];
                f1[j] += gj;
                f2[j] += gj * ((double)xr[j] - mc[j]);
            }
        }
        columns_to_lanes(f1, f2, nc, S, a1, a2);
    }
    for (int64_t c = 0; c < nc; c++) {
        sdy[c] = lanes_total(a1[c]);
        sdyx[c] = lanes_total(a2[c]);
    }
}

/* Channels [lo, hi) of the backward (see the top of the file). */
static void bn_backward_part(void *ctx, int64_t lo, int64_t hi) {
    const bn_job *jb = ctx;
    const int64_t N = jb->n, C = jb->c, S = jb->s;
    const double m = (double)(N * S);
    const bool sums = jb->ggamma || jb->gbeta || (jb->gx && jb->training);
    for (int64_t c0 = lo; c0 < hi; c0 += BN_BLOCK) {
        const int64_t c1 = c0 + BN_BLOCK < hi ? c0 + BN_BLOCK : hi, nc = c1 - c0;
        double sdy[BN_BLOCK] = {0}, sdyx[BN_BLOCK] = {0};
        if (sums) bn_grad_sums(jb, c0, c1, sdy, sdyx);
        for (int64_t c = c0; c < c1; c++) {
            /* dgamma = sum(dy * xhat) = invstd * sum(dy * (x - mean)) */
            if (jb->ggamma) jb->ggamma[c] += (float)(sdyx[c - c0] * jb->st[2 * C + c]);
            if (jb->gbeta) jb->gbeta[c] += (float)sdy[c - c0];
        }
        if (!jb->gx) continue;
        /* dx += A * dy + B * ((x - hi) - lo) + D, per channel or column */
        const int64_t per = S >= BN_NARROW ? 1 : S;
        float A[BN_COLS], B[BN_COLS], D[BN_COLS], mh[BN_COLS], ml[BN_COLS];
        for (int64_t j = 0; j < nc * per; j++) {
            const int64_t c = c0 + j / per;
            const double is = jb->st[2 * C + c];
            const double a = (jb->gamma ? jb->gamma[c] : 1.0) * is;
            A[j] = (float)a;
            B[j] = jb->training ? (float)(-a * is * is * sdyx[c - c0] / m) : 0.0f;
            D[j] = jb->training ? (float)(-a * sdy[c - c0] / m) : 0.0f;
            mh[j] = jb->st[c];
            ml[j] = jb->st[C + c];
        }
        for (int64_t n = 0; n < N; n++) {
            const int64_t off = (n * C + c0) * S;
            const float *g = jb->dy + off, *xr = jb->x + off;
            float *gr = jb->gx + off;
            if (per == 1) {
                for (int64_t c = 0; c < nc; c++)
                    for (int64_t i = c * S; i < (c + 1) * S; i++)
                        gr[i] += A[c] * g[i] + B[c] * ((xr[i] - mh[c]) - ml[c]) + D[c];
            } else {
                for (int64_t j = 0; j < nc * S; j++)
                    gr[j] += A[j] * g[j] + B[j] * ((xr[j] - mh[j]) - ml[j]) + D[j];
            }
        }
    }
}

/* Threads for a pass over x: one below CG_PARALLEL_MIN elements. */
static int bn_threads(int64_t numel) { return numel >= CG_PARALLEL_MIN ? cg_get_num_threads() : 1; }

/* The [N, C, S] view of x. */
static void bn_layout(bn_job *jb, const cg_tensor *x) {
    jb->n = x->shape[0];
    jb->c = x->shape[1];
    jb->s = 1;
    for (int d = 2; d < x->ndim; d++) jb->s *= x->shape[d];
}

static void batchnorm_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0], *gamma = out->src[1], *beta = out->src[2];
    if (!out->saved) return;
    bn_job jb = {0};
    bn_layout(&jb, x);
    jb.x = x->data;
    jb.dy = out->grad;
    jb.gamma = gamma ? gamma->data : NULL;
    jb.st = out->saved;
    jb.training = out->iparam[0] != 0;
    /* The grad buffers are taken here, on the calling thread (the pool
     * is per thread). */
    jb.gx = cg_wants_grad(x) ? cg_grad_buf(x) : NULL;
    jb.ggamma = cg_wants_grad(gamma) ? cg_grad_buf(gamma) : NULL;
    jb.gbeta = cg_wants_grad(beta) ? cg_grad_buf(beta) : NULL;
    if (!jb.gx && !jb.ggamma && !jb.gbeta) return;
    cg_guarded_for(bn_threads(x->numel), jb.c, 2, bn_backward_part, &jb);
}
static const cg_op OP_BATCHNORM = {"batchnorm", batchnorm_backward};

/* A per-channel vector must be [C]; CG_OK or a cg_fail naming it. */
static cg_status check_channel_vec(const cg_tensor *v, const char *what, const cg_tensor *x) {
    if (!v || (v->ndim == 1 && v->shape[0] == x->shape[1])) return CG_OK;
    char s1[64], s2[64];
    return cg_fail(
        CG_ERR_SHAPE, "batchnorm: %s has shape %s, expected [%lld] (the channels of x %s)", what,
        cg_shape_str(v, s1, sizeof s1), (long long)x->shape[1], cg_shape_str(x, s2, sizeof s2));
}

cg_tensor *cg_tensor_batchnorm(cg_tensor *x, cg_tensor *gamma, cg_tensor *beta,
                               cg_tensor *running_mean, cg_tensor *running_var, bool training,
                               float momentum, float eps) {
    if (!x) return NULL;
    char s[64];
    if (x->ndim < 2) {
        cg_fail(CG_ERR_SHAPE,
                "batchnorm: x has shape %s, expected [N, C], [N, C, L] or [N, C, H, W]",
                cg_shape_str(x, s, sizeof s));
        return NULL;
    }
    if (check_channel_vec(gamma, "gamma", x) != CG_OK ||
        check_channel_vec(beta, "beta", x) != CG_OK ||
        check_channel_vec(running_mean, "running_mean", x) != CG_OK ||
        check_channel_vec(running_var, "running_var", x) != CG_OK)
        return NULL;
    if (!running_mean != !running_var) {
        cg_fail(CG_ERR_ARG, "batchnorm: running_mean and running_var go together (one is NULL)");
        return NULL;
    }
    if (!training && !running_mean) {
        cg_fail(CG_ERR_ARG, "batchnorm: eval mode needs running_mean and running_var");
        return NULL;
    }
    if (!(eps >= 0.0f) || !isfinite(eps) || !isfinite(momentum)) {
        cg_fail(CG_ERR_ARG, "batchnorm: eps %g must be finite and >= 0, momentum %g finite",
                (double)eps, (double)momentum);
        return NULL;
    }
    bn_job jb = {0};
    bn_layout(&jb, x);
    if (training && jb.n * jb.s < 2) {
        cg_fail(CG_ERR_SHAPE,
                "batchnorm: training needs more than 1 value per channel, x %s has %lld",
                cg_shape_str(x, s, sizeof s), (long long)(jb.n * jb.s));
        return NULL;
    }
    const int64_t n_st = 3 * jb.c;
    float *st = cg_floats_alloc(n_st);
    if (!st) {
        cg_fail(CG_ERR_NOMEM, "batchnorm: out of memory");
        return NULL;
    }
    cg_tensor *out = cg_op_result(&OP_BATCHNORM, x->shape, x->ndim, x, gamma, beta);
    if (!out) {
        cg_floats_free(st, n_st);
        return NULL;
    }
    if (!training) /* the running statistics, as they are now */
        for (int64_t c = 0; c < jb.c; c++) {
            set_mean(st, jb.c, c, running_mean->data[c]);
            st[2 * jb.c + c] = (float)(1.0 / sqrt((double)running_var->data[c] + (double)eps));
        }
    jb.x = x->data;
    jb.y = out->data;
    jb.gamma = gamma ? gamma->data : NULL;
    jb.beta = beta ? beta->data : NULL;
    jb.rmean = training && running_mean ? running_mean->data : NULL;
    jb.rvar = training && running_var ? running_var->data : NULL;
    jb.st = st;
    jb.training = training;
    jb.momentum = momentum;
    jb.eps = eps;
    cg_guarded_for(bn_threads(x->numel), jb.c, 2, bn_forward_part, &jb);
    if (out->op) { /* the backward's mean and invstd, returned to the pool with out */
        out->saved = st;
        out->n_saved = n_st;
        out->iparam[0] = training;
    } else {
        cg_floats_free(st, n_st);
    }
    return out;
}
