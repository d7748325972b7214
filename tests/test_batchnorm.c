/* test_batchnorm.c - batch normalisation: values against a plain double
 * reference with PyTorch's semantics (biased variance to normalise,
 * unbiased for running_var, momentum 0.1), eval mode on the running
 * statistics, 2-D and 4-D inputs, with and without affine parameters,
 * gradients against the closed form and against finite differences (in
 * training mode they reach x through the batch statistics), errors, and
 * the same bits on 1 and 2 threads. */
#include "cgrad_internal.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

#define TOL 3e-3
#define MOMENTUM 0.1f
#define EPS 1e-5f

/* ---- the reference, in double ---- */

typedef struct ref_bn {
    double mean[64], var[64], invstd[64];
} ref_bn;

/* x as [N, C, S]: y (double) and the new running stats (when rm != NULL). */
static void ref_forward(const cg_tensor *x, const float *gamma, const float *beta, float *rm,
                        float *rv, bool training, double momentum, double eps, double *y,
                        ref_bn *r) {
    const int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C > 0 ? N * C : 1);
    const double m = (double)(N * S);
    assert_true(C <= 64);
    for (int64_t c = 0; c < C; c++) {
        if (training) {
            double s = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < S; i++) s += x->data[(n * C + c) * S + i];
            const double mean = s / m;
            double v = 0;
            for (int64_t n = 0; n < N; n++)
                for (int64_t i = 0; i < S; i++) {
                    const double d = x->data[(n * C + c) * S + i] - mean;
                    v += d * d;
                }
            r->mean[c] = mean;
            r->var[c] = v / m;
            if (rm) {
                rm[c] = (float)((1 - momentum) * rm[c] + momentum * mean);
                rv[c] = (float)((1 - momentum) * rv[c] + momentum * v / (m - 1));
            }
        } else {
            r->mean[c] = rm[c];
            r->var[c] = rv[c];
        }
        r->invstd[c] = 1.0 / sqrt(r->var[c] + eps);
        const double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                const int64_t k = (n * C + c) * S + i;
                y[k] = (x->data[k] - r->mean[c]) * r->invstd[c] * g + b;
            }
    }
}

/* The closed-form gradients of sum(y * dy) (training or eval). */
static void ref_backward(const cg_tensor *x, const float *gamma, const float *dy, bool training,
                         const ref_bn *r, double *gx, double *ggamma, double *gbeta) {
    const int64_t N = x->shape[0], C = x->shape[1], S = x->numel / (N * C);
    const double m = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double sdy = 0, sdyxh = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                const int64_t k = (n * C + c) * S + i;
                sdy += dy[k];
                sdyxh += dy[k] * (x->data[k] - r->mean[c]) * r->invstd[c];
            }
        ggamma[c] = sdyxh;
        gbeta[c] = sdy;
        const double g = gamma ? gamma[c] : 1.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                const int64_t k = (n * C + c) * S + i;
                const double xh = (x->data[k] - r->mean[c]) * r->invstd[c];
                gx[k] = training ? g * r->invstd[c] / m * (m * dy[k] - sdy - xh * sdyxh)
                                 : dy[k] * g * r->invstd[c];
            }
    }
}

static cg_tensor *vec(int64_t c, float lo, float hi, uint64_t seed, bool grad) {
    return cg_test_uniform(&c, 1, lo, hi, seed, grad);
}

/* x of `shape` whose channel c is centred near `shift * (c + 1)`. */
static cg_tensor *input(const int64_t *shape, int ndim, float shift, uint64_t seed, bool grad) {
    cg_tensor *x = cg_test_uniform(shape, ndim, -2, 2, seed, grad);
    const int64_t C = shape[1], S = x->numel / (shape[0] * C);
    for (int64_t k = 0; k < x->numel; k++) x->data[k] += shift * (float)((k / S) % C + 1);
    return x;
}

static void assert_close_all(const float *got, const double *want, int64_t n, double atol,
                             double rtol, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        char w[96];
        snprintf(w, sizeof w, "%s[%lld]", what, (long long)i);
        cg_assert_close(got[i], want[i], atol, rtol, w);
    }
}

/* Forward (and the running stats) against the reference, training then eval. */
static void check_forward(const int64_t *shape, int ndim, bool affine, float shift) {
    cg_scope_begin();
    cg_tensor *x = input(shape, ndim, shift, 5, false);
    const int64_t C = shape[1];
    cg_tensor *gamma = affine ? vec(C, 0.5f, 2, 6, false) : NULL;
    cg_tensor *beta = affine ? vec(C, -1, 1, 7, false) : NULL;
    cg_tensor *rm = vec(C, -0.5f, 0.5f, 8, false), *rv = vec(C, 0.5f, 1.5f, 9, false);
    float erm[64], erv[64];
    memcpy(erm, rm->data, (size_t)C * sizeof(float));
    memcpy(erv, rv->data, (size_t)C * sizeof(float));
    double *want = malloc((size_t)x->numel * sizeof(double));
    assert_non_null(want);
    ref_bn r;
    const float *g = affine ? gamma->data : NULL, *b = affine ? beta->data : NULL;
    for (int step = 0; step < 2; step++) { /* twice: the running stats accumulate */
        cg_tensor *y = cg_tensor_batchnorm(x, gamma, beta, rm, rv, true, MOMENTUM, EPS);
        assert_non_null(y);
        cg_assert_shape(y, shape, ndim);
        ref_forward(x, g, b, erm, erv, true, MOMENTUM, EPS, want, &r);
        assert_close_all(y->data, want, x->numel, 1e-5, 1e-5, "training y");
        for (int64_t c = 0; c < C; c++) {
            cg_assert_close(rm->data[c], erm[c], 1e-6, 1e-6, "running_mean");
            cg_assert_close(rv->data[c], erv[c], 1e-6, 1e-6, "running_var");
        }
        /* a normalised channel: mean beta, biased variance gamma^2 (eps aside) */
        for (int64_t c = 0; c < C && x->numel / C > 1; c++) {
            double s = 0, s2 = 0;
            const int64_t S = x->numel / (shape[0] * C), m = shape[0] * S;
            for (int64_t n = 0; n < shape[0]; n++)
                for (int64_t i = 0; i < S; i++) s += y->data[(n * C + c) * S + i];
            for (int64_t n = 0; n < shape[0]; n++)
                for (int64_t i = 0; i < S; i++) {
                    const double d = y->data[(n * C + c) * S + i] - s / m;
                    s2 += d * d;
                }
            cg_assert_close(s / m, b ? b[c] : 0.0, 1e-5, 0, "channel mean");
            cg_assert_close(s2 / m, g ? (double)g[c] * g[c] : 1.0, 1e-3, 1e-3, "channel var");
        }
    }
    /* eval: the running statistics, which stay as they are */
    cg_tensor *y = cg_tensor_batchnorm(x, gamma, beta, rm, rv, false, MOMENTUM, EPS);
    assert_non_null(y);
    ref_forward(x, g, b, erm, erv, false, MOMENTUM, EPS, want, &r);
    assert_close_all(y->data, want, x->numel, 1e-4, 1e-5, "eval y");
    assert_memory_equal(rm->data, erm, (size_t)C * sizeof(float));
    assert_memory_equal(rv->data, erv, (size_t)C * sizeof(float));
    free(want);
    cg_scope_end();
}

static void test_batchnorm_by_hand(void **state) {
    (void)state;
    cg_scope_begin();
    /* one channel of 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3 */
    cg_tensor *x = cg_tensor_from_data((float[]){1, 2, 3, 4}, (int64_t[]){4, 1}, 2);
    cg_tensor *rm = cg_tensor_zeros((int64_t[]){1}, 1), *rv = cg_tensor_ones((int64_t[]){1}, 1);
    cg_tensor *y = cg_tensor_batchnorm(x, NULL, NULL, rm, rv, true, 0.1f, 0.0f);
    const double is = 1 / sqrt(1.25);
    cg_assert_tensor(y, (float[]){(float)(-1.5 * is), (float)(-0.5 * is), (float)(0.5 * is),
                                  (float)(1.5 * is)}, 4, 1e-6);
    cg_assert_close(rm->data[0], 0.25, 1e-7, 0, "running_mean");
    cg_assert_close(rv->data[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6, 0, "running_var");
    /* eval on those: (x - 0.25) / sqrt(1.0666667 + 1) * 2 + 1 */
    cg_tensor *g = cg_tensor_full((int64_t[]){1}, 1, 2), *b = cg_tensor_ones((int64_t[]){1}, 1);
    y = cg_tensor_batchnorm(x, g, b, rm, rv, false, 0.1f, 1.0f);
    const double ev = 0.9 + 0.1 * 5.0 / 3.0;
    for (int i = 0; i < 4; i++)
        cg_assert_close(y->data[i], (i + 1 - 0.25) / sqrt(ev + 1) * 2 + 1, 1e-6, 0, "eval");
    /* training without running stats tracks nothing and still normalises */
    y = cg_tensor_batchnorm(x, NULL, NULL, NULL, NULL, true, 0.1f, 0.0f);
    assert_non_null(y);
    cg_assert_close(y->data[3], 1.5 * is, 1e-6, 0, "untracked");
    /* a constant channel: var 0, y = beta */
    cg_tensor *k = cg_tensor_full((int64_t[]){3, 1, 2}, 3, 7);
    y = cg_tensor_batchnorm(k, g, b, NULL, NULL, true, 0.1f, 1e-5f);
    cg_assert_tensor(y, (float[]){1, 1, 1, 1, 1, 1}, 6, 0);
    cg_scope_end();
}

static void test_batchnorm_training_4d(void **state) {
    (void)state;
    check_forward((int64_t[]){4, 3, 5, 6}, 4, true, 0);
    check_forward((int64_t[]){3, 5, 7, 1}, 4, false, 1);
    check_forward((int64_t[]){2, 2, 1, 1}, 4, true, 0); /* m = 2, the least */
}

static void test_batchnorm_training_2d(void **state) {
    (void)state;
    check_forward((int64_t[]){7, 5}, 2, true, 0);
    check_forward((int64_t[]){9, 33}, 2, false, 3); /* more channels than a block */
}

static void test_batchnorm_rank3(void **state) {
    (void)state;
    check_forward((int64_t[]){3, 4, 10}, 3, true, 0);
}

/* A mean far from zero against the spread: the shifted sums keep the
 * variance (PyTorch's two-pass result) to float rounding. */
static void test_batchnorm_large_mean(void **state) {
    (void)state;
    check_forward((int64_t[]){16, 3, 4, 4}, 4, true, 1000);
}

/* Eval mode is the running statistics alone: a batch of one works. */
static void test_batchnorm_eval_batch_of_one(void **state) {
    (void)state;
    check_forward((int64_t[]){1, 4, 3, 3}, 4, true, 0);
    cg_scope_begin();
    cg_tensor *x = input((int64_t[]){1, 4}, 2, 0, 3, false);
    cg_tensor *rm = vec(4, -1, 1, 1, false), *rv = vec(4, 0.5f, 2, 2, false);
    cg_tensor *y = cg_tensor_batchnorm(x, NULL, NULL, rm, rv, false, MOMENTUM, EPS);
    for (int c = 0; c < 4; c++)
        cg_assert_close(y->data[c], (x->data[c] - rm->data[c]) / sqrt(rv->data[c] + EPS), 1e-6,
                        1e-6, "eval");
    cg_scope_end();
}

static void test_batchnorm_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = input((int64_t[]){4, 3, 2, 2}, 4, 0, 1, false);
    cg_tensor *c3 = cg_tensor_ones((int64_t[]){3}, 1), *c4 = cg_tensor_ones((int64_t[]){4}, 1);
    cg_tensor *c13 = cg_tensor_ones((int64_t[]){1, 3}, 2);
    struct {
        cg_tensor *x, *g, *b, *rm, *rv;
        bool training;
        const char *msg;
    } cases[] = {
        {cg_tensor_ones((int64_t[]){5}, 1), NULL, NULL, NULL, NULL, true, "shape [5]"},
        {cg_tensor_scalar(1), NULL, NULL, NULL, NULL, true, "expected [N, C]"},
        {x, c4, c3, c3, c3, true, "gamma has shape [4], expected [3]"},
        {x, c3, c13, c3, c3, true, "beta has shape [1, 3]"},
        {x, c3, c3, c4, c3, true, "running_mean"},
        {x, NULL, NULL, c3, c4, false, "running_var"},
        {x, NULL, NULL, c3, NULL, true, "go together"},
        {x, c3, c3, NULL, NULL, false, "eval mode needs"},
        {cg_tensor_ones((int64_t[]){1, 3}, 2), NULL, NULL, NULL, NULL, true, "more than 1 value"},
        {cg_tensor_ones((int64_t[]){0, 3, 2, 2}, 4), NULL, NULL, c3, c3, true, "more than 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_clear_error();
        assert_null(cg_tensor_batchnorm(cases[i].x, cases[i].g, cases[i].b, cases[i].rm,
                                        cases[i].rv, cases[i].training, MOMENTUM, EPS));
        if (!strstr(cg_last_error(), "batchnorm: ") || !strstr(cg_last_error(), cases[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, cg_last_error(), cases[i].msg);
    }
    assert_null(cg_tensor_batchnorm(x, NULL, NULL, NULL, NULL, true, MOMENTUM, -1.0f));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_null(cg_tensor_batchnorm(x, NULL, NULL, NULL, NULL, true, NAN, EPS));
    /* a failed call leaves the running stats alone */
    assert_float_equal(c3->data[0], 1, 0);
    /* an empty batch is fine in eval mode */
    cg_tensor *e = cg_tensor_ones((int64_t[]){0, 3}, 2);
    cg_assert_shape(cg_tensor_batchnorm(e, c3, c3, c3, c3, false, MOMENTUM, EPS), (int64_t[]){0, 3},
                    2);
    /* NULL in, NULL out, the message untouched */
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_batchnorm(NULL, c3, c3, c3, c3, true, MOMENTUM, EPS));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

/* The backward against the closed form, on a batch big enough to run on
 * two threads, and the same bits from 1 and 2 threads (forward, backward,
 * running stats); training and eval. */
static void check_threads(bool training, bool affine) {
    const int64_t shape[4] = {64, 8, 24, 24}; /* 294912 elements: past CG_PARALLEL_MIN */
    cg_tensor *x = input(shape, 4, 0.5f, 21, true);
    cg_tensor *g = affine ? vec(8, 0.5f, 2, 22, true) : NULL,
              *b = affine ? vec(8, -1, 1, 23, true) : NULL;
    cg_tensor *dy = cg_test_uniform(shape, 4, -1, 1, 24, false);
    float *y[2], *gx[2], gg[2][8], gb[2][8], rm[2][8], rv[2][8];
    cg_guard_enable(false);
    for (int t = 0; t < 2; t++) {
        cg_set_num_threads(t + 1);
        cg_tensor *rmt = vec(8, 0, 0.1f, 25, false), *rvt = vec(8, 1, 1.1f, 26, false);
        cg_tensor_zero_grad(x);
        cg_tensor_zero_grad(g);
        cg_tensor_zero_grad(b);
        cg_scope_begin();
        cg_tensor *out = cg_tensor_batchnorm(x, g, b, rmt, rvt, training, MOMENTUM, EPS);
        assert_non_null(out);
        assert_non_null(out->saved);
        assert_int_equal(out->n_saved, 24);
        y[t] = malloc((size_t)x->numel * sizeof(float));
        memcpy(y[t], out->data, (size_t)x->numel * sizeof(float));
        assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(out, dy))), CG_OK);
        cg_scope_end();
        gx[t] = malloc((size_t)x->numel * sizeof(float));
        memcpy(gx[t], x->grad, (size_t)x->numel * sizeof(float));
        if (affine) {
            memcpy(gg[t], g->grad, sizeof gg[t]);
            memcpy(gb[t], b->grad, sizeof gb[t]);
        }
        memcpy(rm[t], rmt->data, sizeof rm[t]);
        memcpy(rv[t], rvt->data, sizeof rv[t]);
        cg_tensor_release(rmt);
        cg_tensor_release(rvt);
    }
    cg_set_num_threads(0);
    cg_guard_enable(true);
    const size_t bytes = (size_t)x->numel * sizeof(float);
    assert_memory_equal(y[0], y[1], bytes);
    assert_memory_equal(gx[0], gx[1], bytes);
    assert_memory_equal(rm[0], rm[1], sizeof rm[0]);
    assert_memory_equal(rv[0], rv[1], sizeof rv[0]);
    if (affine) {
        assert_memory_equal(gg[0], gg[1], 8 * sizeof(float));
        assert_memory_equal(gb[0], gb[1], 8 * sizeof(float));
    }
    /* against the reference (running stats as they were before the call) */
    float erm[8], erv[8];
    cg_tensor *rm0 = vec(8, 0, 0.1f, 25, false), *rv0 = vec(8, 1, 1.1f, 26, false);
    memcpy(erm, rm0->data, sizeof erm);
    memcpy(erv, rv0->data, sizeof erv);
    double *want = malloc((size_t)x->numel * sizeof(double)),
           *wgx = malloc((size_t)x->numel * sizeof(double));
    double wgg[8], wgb[8];
    ref_bn r;
    ref_forward(x, affine ? g->data : NULL, affine ? b->data : NULL, erm, erv, training, MOMENTUM,
                EPS, want, &r);
    ref_backward(x, affine ? g->data : NULL, dy->data, training, &r, wgx, wgg, wgb);
    assert_close_all(y[0], want, x->numel, 1e-5, 1e-5, "y");
    assert_close_all(gx[0], wgx, x->numel, 1e-5, 1e-4, "dx");
    for (int c = 0; c < 8; c++) {
        cg_assert_close(rm[0][c], erm[c], 1e-6, 1e-6, "running_mean");
        cg_assert_close(rv[0][c], erv[c], 1e-6, 1e-6, "running_var");
    }
    if (affine) {
        assert_close_all(gg[0], wgg, 8, 1e-3, 1e-5, "dgamma");
        assert_close_all(gb[0], wgb, 8, 1e-3, 1e-5, "dbeta");
    }
    for (int t = 0; t < 2; t++) {
        free(y[t]);
        free(gx[t]);
    }
    free(want);
    free(wgx);
    cg_tensor_release(rm0);
    cg_tensor_release(rv0);
    cg_tensor_release(x);
    cg_tensor_release(g);
    cg_tensor_release(b);
    cg_tensor_release(dy);
}

static void test_batchnorm_threads_bit_identical(void **state) {
    (void)state;
    check_threads(true, true);
    check_threads(true, false);
    check_threads(false, true);
}

/* With no graph nothing is saved; with one the saved state goes back to the
 * pool with the tensor (ASan would see a leak otherwise). */
static void test_batchnorm_saved_state(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){5, 3}, 2, 0, 2, true);
    bool prev = cg_set_grad_enabled(false);
    cg_tensor *y = cg_tensor_batchnorm(x, NULL, NULL, NULL, NULL, true, MOMENTUM, EPS);
    assert_null(y->saved);
    assert_null(y->op);
    cg_tensor_release(y);
    cg_set_grad_enabled(prev);
    y = cg_tensor_batchnorm(x, NULL, NULL, NULL, NULL, true, MOMENTUM, EPS);
    assert_non_null(y->saved);
    assert_int_equal(y->n_saved, 9);
    assert_string_equal(y->op->name, "batchnorm");
    cg_tensor_release(y);
    cg_tensor_release(x);
}

/* ---- finite differences ---- */

typedef struct bn_ctx {
    bool training, affine, track;
    cg_tensor *rm, *rv;
} bn_ctx;

static cg_tensor *f_bn(cg_tensor *const *in, void *ctx) {
    const bn_ctx *c = ctx;
    return cg_tensor_batchnorm(in[0], c->affine ? in[1] : NULL, c->affine ? in[2] : NULL,
                               c->track ? c->rm : NULL, c->track ? c->rv : NULL, c->training,
                               MOMENTUM, EPS);
}

/* x, gamma, beta all requiring grad (gamma, beta unused without affine). */
static void grad_check(const int64_t *shape, int ndim, bn_ctx c, uint64_t seed) {
    const int64_t C = shape[1];
    cg_tensor *in[3] = {input(shape, ndim, 0.3f, seed, true), vec(C, 0.5f, 2, seed + 1, true),
                        vec(C, -1, 1, seed + 2, true)};
    c.rm = vec(C, -0.5f, 0.5f, seed + 3, false);
    c.rv = vec(C, 0.5f, 1.5f, seed + 4, false);
    cg_check_grad(f_bn, in, c.affine ? 3 : 1, &c, TOL);
    for (int i = 0; i < 3; i++) cg_tensor_release(in[i]);
    cg_tensor_release(c.rm);
    cg_tensor_release(c.rv);
}

static void test_batchnorm_grad_training_4d(void **state) {
    (void)state;
    grad_check((int64_t[]){3, 2, 3, 2}, 4,
               (bn_ctx){.training = true, .affine = true, .track = true}, 30);
    grad_check((int64_t[]){2, 3, 2, 2}, 4, (bn_ctx){.training = true, .affine = false}, 31);
}

static void test_batchnorm_grad_training_2d(void **state) {
    (void)state;
    grad_check((int64_t[]){6, 4}, 2, (bn_ctx){.training = true, .affine = true}, 32);
    grad_check((int64_t[]){5, 3}, 2, (bn_ctx){.training = true, .affine = false, .track = true},
               33);
}

static void test_batchnorm_grad_eval(void **state) {
    (void)state;
    grad_check((int64_t[]){3, 2, 2, 3}, 4,
               (bn_ctx){.training = false, .affine = true, .track = true}, 34);
    grad_check((int64_t[]){4, 3}, 2, (bn_ctx){.training = false, .affine = false, .track = true},
               35);
}

/* Only gamma and beta learn (x a constant): their grads alone. */
static void test_batchnorm_grad_params_only(void **state) {
    (void)state;
    const int64_t shape[4] = {2, 3, 2, 2};
    cg_tensor *in[3] = {input(shape, 4, 0, 40, false), vec(3, 0.5f, 2, 41, true),
                        vec(3, -1, 1, 42, true)};
    bn_ctx c = {.training = true, .affine = true};
    cg_check_grad(f_bn, in, 3, &c, TOL);
    assert_null(in[0]->grad);
    for (int i = 0; i < 3; i++) cg_tensor_release(in[i]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_batchnorm_by_hand),
    cmocka_unit_test(test_batchnorm_training_4d),
    cmocka_unit_test(test_batchnorm_training_2d),
    cmocka_unit_test(test_batchnorm_rank3),
    cmocka_unit_test(test_batchnorm_large_mean),
    cmocka_unit_test(test_batchnorm_eval_batch_of_one),
    cmocka_unit_test(test_batchnorm_errors),
    cmocka_unit_test(test_batchnorm_threads_bit_identical),
    cmocka_unit_test(test_batchnorm_saved_state),
    cmocka_unit_test(test_batchnorm_grad_training_4d),
    cmocka_unit_test(test_batchnorm_grad_training_2d),
    cmocka_unit_test(test_batchnorm_grad_eval),
    cmocka_unit_test(test_batchnorm_grad_params_only),
};

CG_TEST_MAIN(tests)
