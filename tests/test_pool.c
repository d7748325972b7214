/* test_pool.c - max_pool2d, avg_pool2d and global_avg_pool: values and
 * gradients against plain references (odd sizes, strides, paddings, ties),
 * by hand, errors, finite differences, and the same bits on 1 and 2
 * threads. */
#include "cgrad_internal.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

#define TOL 2e-3

/* ---- the references, one plane at a time, in double ---- */

typedef struct win {
    int k, s, p;
} win;

static int64_t out_size(int64_t n, win w) { return (n + 2 * w.p - w.k) / w.s + 1; }

/* y = pool(x) and gx = dL/dx for dL/dy = g, x [N, C, H, W]; max takes the
 * first largest in window order (row by row), avg divides by k^2. */
static void ref_pool(bool max, const cg_tensor *x, win w, const float *g, double *y, double *gx) {
    const int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    const int64_t OH = out_size(H, w), OW = out_size(W, w);
    for (int64_t i = 0; i < x->numel; i++) gx[i] = 0;
    for (int64_t p = 0; p < P; p++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double best = -INFINITY, sum = 0;
                int64_t at = -1;
                for (int64_t dh = 0; dh < w.k; dh++)
                    for (int64_t dw = 0; dw < w.k; dw++) {
                        const int64_t h = oh * w.s - w.p + dh, c = ow * w.s - w.p + dw;
                        if (h < 0 || h >= H || c < 0 || c >= W) continue; /* padding */
                        const int64_t i = (p * H + h) * W + c;
                        sum += x->data[i];
                        const double v = x->data[i];
                        /* larger, or the first NaN (PyTorch propagates NaN) */
                        if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
                            best = x->data[i];
                            at = i;
                        }
                    }
                assert_true(at >= 0);
                const int64_t o = (p * OH + oh) * OW + ow;
                y[o] = max ? best : sum / (w.k * w.k);
                if (max) {
                    gx[at] += g[o];
                } else {
                    for (int64_t dh = 0; dh < w.k; dh++)
                        for (int64_t dw = 0; dw < w.k; dw++) {
                            const int64_t h = oh * w.s - w.p + dh, c = ow * w.s - w.p + dw;
                            if (h >= 0 && h < H && c >= 0 && c < W)
                                gx[(p * H + h) * W + c] += g[o] / (w.k * w.k);
                        }
                }
            }
}

static cg_tensor *pool(bool max, cg_tensor *x, win w) {
    return max ? cg_tensor_max_pool2d(x, w.k, w.s, w.p) : cg_tensor_avg_pool2d(x, w.k, w.s, w.p);
}

static const win WINDOWS[] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {3, 3, 0},
                              {1, 1, 0}, {1, 2, 0}, {4, 3, 2}, {5, 2, 2}, {2, 2, 1}};
#define N_WINDOWS (sizeof WINDOWS / sizeof WINDOWS[0])

/* Forward and backward of every window on x against the reference. */
static void check_windows(bool max, cg_tensor *x) {
    for (size_t k = 0; k < N_WINDOWS; k++) {
        const win w = WINDOWS[k];
        if (x->shape[2] + 2 * w.p < w.k || x->shape[3] + 2 * w.p < w.k) continue;
        cg_tensor_zero_grad(x);
        cg_scope_begin();
        cg_tensor *y = pool(max, x, w);
        if (!y) fail_msg("%s", cg_last_error());
        const int64_t shape[4] = {x->shape[0], x->shape[1], out_size(x->shape[2], w),
                                  out_size(x->shape[3], w)};
        cg_assert_shape(y, shape, 4);
        cg_tensor *g = cg_test_uniform(shape, 4, -1, 1, 99 + k, false);
        assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(y, g))), CG_OK);
        double *ey = malloc((size_t)y->numel * sizeof(double));
        double *egx = malloc((size_t)x->numel * sizeof(double));
        ref_pool(max, x, w, g->data, ey, egx);
        for (int64_t i = 0; i < y->numel; i++)
            if (isnan(y->data[i]) != isnan(ey[i]) || fabs(y->data[i] - ey[i]) > 1e-6)
                fail_msg("k%d s%d p%d: y[%lld] = %.9g, expected %.9g", w.k, w.s, w.p, (long long)i,
                         y->data[i], ey[i]);
        for (int64_t i = 0; i < x->numel; i++)
            if (fabs(x->grad[i] - egx[i]) > 1e-6)
                fail_msg("k%d s%d p%d: dx[%lld] = %.9g, expected %.9g", w.k, w.s, w.p, (long long)i,
                         x->grad[i], egx[i]);
        free(ey);
        free(egx);
        cg_scope_end();
    }
}

/* Values on a grid of a few levels: many ties within windows. */
static cg_tensor *tied(const int64_t *shape, uint64_t seed) {
    cg_tensor *x = cg_test_uniform(shape, 4, -2, 2, seed, true);
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = roundf(x->data[i]);
    return x;
}

static void test_max_pool_vs_reference(void **state) {
    (void)state;
    const int64_t shapes[][4] = {
        {2, 3, 7, 5}, {1, 2, 8, 8}, {2, 1, 5, 9}, {1, 1, 1, 1}, {3, 2, 2, 3}};
    for (int s = 0; s < 5; s++) {
        cg_tensor *x = cg_test_uniform(shapes[s], 4, -3, 3, 50 + s, true);
        check_windows(true, x);
        cg_tensor_release(x);
        x = tied(shapes[s], 60 + s); /* ties: the first in window order */
        check_windows(true, x);
        cg_tensor_release(x);
    }
}

/* NaNs win (the first of a window), -inf windows give their first
 * position: on every path (2x2 rows, four planes at a time, one). */
static void test_max_pool_nan_and_inf(void **state) {
    (void)state;
    const int64_t shapes[][4] = {{5, 2, 6, 10}, {6, 1, 4, 4}, {1, 3, 9, 9}};
    for (int s = 0; s < 3; s++) {
        cg_tensor *x = tied(shapes[s], 40 + s);
        cg_rng rng;
        cg_rng_seed(&rng, 41 + s);
        for (int64_t i = 0; i < x->numel; i++) {
            const uint32_t r = cg_rng_below(&rng, 100);
            if (r < 6) x->data[i] = NAN;
            else if (r < 40) x->data[i] = -INFINITY;
        }
        check_windows(true, x);
        cg_tensor_release(x);
    }
}

static void test_avg_pool_vs_reference(void **state) {
    (void)state;
    const int64_t shapes[][4] = {
        {2, 3, 7, 5}, {1, 2, 8, 8}, {2, 1, 5, 9}, {1, 1, 1, 1}, {3, 2, 2, 3}};
    for (int s = 0; s < 5; s++) {
        cg_tensor *x = cg_test_uniform(shapes[s], 4, -3, 3, 70 + s, true);
        check_windows(false, x);
        cg_tensor_release(x);
    }
}

static void test_pool_by_hand(void **state) {
    (void)state;
    cg_scope_begin();
    /* 4x4:  1  2  3  4
     *       5  6  7  8
     *       9 10 11 12
     *      13 14 15 16 */
    cg_tensor *x = cg_tensor_reshape(cg_tensor_arange(1, 17, 1), (int64_t[]){1, 1, 4, 4}, 4);
    cg_tensor *y = cg_tensor_max_pool2d(x, 2, 2, 0);
    cg_assert_shape(y, (int64_t[]){1, 1, 2, 2}, 4);
    cg_assert_tensor(y, (float[]){6, 8, 14, 16}, 4, 0);
    cg_assert_tensor(cg_tensor_avg_pool2d(x, 2, 2, 0), (float[]){3.5f, 5.5f, 11.5f, 13.5f}, 4, 0);
    /* 3x3, stride 2, pad 1 on the 4x4: 2x2 windows of rows/cols {-1,0,1}, {1,2,3} */
    cg_assert_tensor(cg_tensor_max_pool2d(x, 3, 2, 1), (float[]){6, 8, 14, 16}, 4, 0);
    /* avg counts the padding: top-left window holds 1 2 5 6 of its 9 */
    cg_assert_tensor(cg_tensor_avg_pool2d(x, 3, 2, 1),
                     (float[]){14.0f / 9, 30.0f / 9, 57.0f / 9, 99.0f / 9}, 4, 1e-6);
    cg_tensor *gap = cg_tensor_global_avg_pool(x);
    cg_assert_shape(gap, (int64_t[]){1, 1}, 2);
    cg_assert_tensor(gap, (float[]){8.5f}, 1, 0);
    /* padding never wins: all negative, pad 1 */
    cg_tensor *neg = cg_tensor_full((int64_t[]){1, 1, 2, 2}, 4, -5);
    cg_assert_tensor(cg_tensor_max_pool2d(neg, 2, 1, 1),
                     (float[]){-5, -5, -5, -5, -5, -5, -5, -5, -5}, 9, 0);
    /* -inf everywhere: still -inf (a window's first position) */
    cg_tensor *inf = cg_tensor_full((int64_t[]){1, 1, 3, 3}, 4, -INFINITY);
    assert_true(isinf(cg_tensor_max_pool2d(inf, 3, 1, 1)->data[0]));
    /* NaN wins, as in PyTorch */
    cg_tensor *nan = cg_tensor_from_data((float[]){1, NAN, 3, 4}, (int64_t[]){1, 1, 2, 2}, 4);
    assert_true(isnan(cg_tensor_max_pool2d(nan, 2, 2, 0)->data[0]));
    assert_true(isnan(cg_tensor_max_pool2d(nan, 2, 1, 0)->data[0]));
    cg_scope_end();
}

/* Equal values: the gradient goes to the first of each window only. */
static void test_max_pool_ties_grad_to_first(void **state) {
    (void)state;
    cg_tensor *x = cg_tensor_ones((int64_t[]){1, 1, 4, 4}, 4);
    cg_tensor_requires_grad(x, true);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_max_pool2d(x, 2, 2, 0))), CG_OK);
    cg_scope_end();
    const float want[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    assert_memory_equal(x->grad, want, sizeof want);
    /* overlapping 3x3 windows, stride 1, pad 1: every window's first inside position */
    cg_tensor_zero_grad(x);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_max_pool2d(x, 3, 1, 1))), CG_OK);
    cg_scope_end();
    /* window (oh, ow) starts at (max(oh-1, 0), max(ow-1, 0)): rows 0..3 are
     * the first row of 2, 1, 1, 0 windows, and columns the same */
    const float want3[16] = {4, 2, 2, 0, 2, 1, 1, 0, 2, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        if (x->grad[i] != want3[i]) fail_msg("dx[%d] = %g, expected %g", i, x->grad[i], want3[i]);
    cg_tensor_release(x);
}

static void test_global_avg_pool(void **state) {
    (void)state;
    const int64_t shapes[][4] = {{3, 4, 5, 7}, {2, 3, 1, 1}, {1, 2, 14, 14}};
    for (int s = 0; s < 3; s++) {
        cg_tensor *x = cg_test_uniform(shapes[s], 4, -2, 2, 80 + s, true);
        cg_scope_begin();
        cg_tensor *y = cg_tensor_global_avg_pool(x);
        cg_assert_shape(y, shapes[s], 2);
        cg_tensor *g = cg_test_uniform(shapes[s], 2, -1, 1, 90 + s, false);
        assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(y, g))), CG_OK);
        const int64_t hw = shapes[s][2] * shapes[s][3];
        for (int64_t p = 0; p < y->numel; p++) {
            double sum = 0;
            for (int64_t i = 0; i < hw; i++) sum += x->data[p * hw + i];
            cg_assert_close(y->data[p], sum / hw, 1e-6, 1e-6, "mean");
            for (int64_t i = 0; i < hw; i++)
                cg_assert_close(x->grad[p * hw + i], g->data[p] / hw, 1e-7, 1e-6, "dx");
        }
        cg_scope_end();
        cg_tensor_release(x);
    }
}

static void test_pool_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = cg_tensor_zeros((int64_t[]){1, 2, 4, 5}, 4);
    cg_tensor *r3 = cg_tensor_zeros((int64_t[]){2, 4, 5}, 3);
    struct {
        cg_tensor *x;
        int k, s, p;
        const char *msg;
    } cases[] = {
        {r3, 2, 2, 0, "expected [N, C, H, W]"},
        {x, 0, 1, 0, "kernel 0"},
        {x, 2, 0, 0, "stride 0"},
        {x, 2, 2, -1, "pad -1"},
        {x, 3, 1, 2, "more than half the kernel"},
        {x, 2, 1, 2, "more than half"},
        {x, 5, 1, 0, "larger than the padded input [1, 2, 4, 5]"},
        {x, 7, 1, 1, "larger than the padded input"},
        {cg_tensor_zeros((int64_t[]){1, 1, 0, 3}, 4), 1, 1, 0, "empty planes"},
    };
    for (int max = 0; max < 2; max++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cg_clear_error();
            assert_null(pool(max, cases[i].x, (win){cases[i].k, cases[i].s, cases[i].p}));
            const char *name = max ? "max_pool2d: " : "avg_pool2d: ";
            if (!strstr(cg_last_error(), name) || !strstr(cg_last_error(), cases[i].msg))
                fail_msg("case %zu: \"%s\" lacks \"%s\"", i, cg_last_error(), cases[i].msg);
        }
    /* the largest window that fits: kernel = H + 2 pad */
    cg_assert_shape(cg_tensor_max_pool2d(x, 6, 1, 1), (int64_t[]){1, 2, 1, 2}, 4);
    /* an empty batch is fine */
    cg_assert_shape(cg_tensor_avg_pool2d(cg_tensor_zeros((int64_t[]){0, 2, 4, 4}, 4), 2, 2, 0),
                    (int64_t[]){0, 2, 2, 2}, 4);
    assert_null(cg_tensor_global_avg_pool(r3));
    assert_non_null(strstr(cg_last_error(), "global_avg_pool: "));
    /* NULL in, NULL out, the message untouched */
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_max_pool2d(NULL, 2, 2, 0));
    assert_null(cg_tensor_avg_pool2d(NULL, 2, 2, 0));
    assert_null(cg_tensor_global_avg_pool(NULL));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

/* max_pool2d keeps its winners only for a graph, and returns them to the
 * pool with the tensor. */
static void test_max_pool_saved_state(void **state) {
    (void)state;
    cg_tensor *x = cg_test_uniform((int64_t[]){2, 3, 6, 6}, 4, -1, 1, 5, true);
    bool prev = cg_set_grad_enabled(false);
    cg_tensor *y = cg_tensor_max_pool2d(x, 2, 2, 0);
    assert_null(y->saved);
    cg_tensor_release(y);
    cg_set_grad_enabled(prev);
    y = cg_tensor_max_pool2d(x, 2, 2, 0);
    assert_non_null(y->saved);
    assert_int_equal(y->n_saved, y->numel);
    assert_string_equal(y->op->name, "max_pool2d");
    cg_tensor_release(y);
    cg_tensor_release(x);
}

/* Forward and backward of all three on a batch big enough for two threads:
 * the same bits on 1 and 2. */
static void test_pool_threads_bit_identical(void **state) {
    (void)state;
    const int64_t shape[4] = {64, 16, 23, 24}; /* 565248 elements */
    cg_tensor *x = cg_test_uniform(shape, 4, -1, 1, 7, true);
    const win ws[] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}};
    cg_guard_enable(false);
    for (int op = 0; op < 7; op++) {
        float *y[2], *gx[2];
        int64_t ny = 0;
        for (int t = 0; t < 2; t++) {
            cg_set_num_threads(t + 1);
            cg_tensor_zero_grad(x);
            cg_scope_begin();
            cg_tensor *out = op == 6 ? cg_tensor_global_avg_pool(x) : pool(op < 3, x, ws[op % 3]);
            assert_non_null(out);
            ny = out->numel;
            cg_tensor *g = cg_test_uniform(out->shape, out->ndim, -1, 1, 8, false);
            y[t] = malloc((size_t)ny * sizeof(float));
            memcpy(y[t], out->data, (size_t)ny * sizeof(float));
            assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(out, g))), CG_OK);
            gx[t] = malloc((size_t)x->numel * sizeof(float));
            memcpy(gx[t], x->grad, (size_t)x->numel * sizeof(float));
            cg_scope_end();
        }
        assert_memory_equal(y[0], y[1], (size_t)ny * sizeof(float));
        assert_memory_equal(gx[0], gx[1], (size_t)x->numel * sizeof(float));
        for (int t = 0; t < 2; t++) {
            free(y[t]);
            free(gx[t]);
        }
    }
    cg_set_num_threads(0);
    cg_guard_enable(true);
    cg_tensor_release(x);
}

/* ---- finite differences ---- */

static cg_tensor *f_max_pool(cg_tensor *const *in, void *ctx) {
    const win *w = ctx;
    return cg_tensor_max_pool2d(in[0], w->k, w->s, w->p);
}
static cg_tensor *f_avg_pool(cg_tensor *const *in, void *ctx) {
    const win *w = ctx;
    return cg_tensor_avg_pool2d(in[0], w->k, w->s, w->p);
}
static cg_tensor *f_gap(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_global_avg_pool(in[0]);
}

/* A shuffled arange scaled to steps of 0.05: no two values within eps. */
static cg_tensor *distinct(const int64_t *shape, uint64_t seed) {
    int64_t n = shape[0] * shape[1] * shape[2] * shape[3];
    cg_tensor *x = cg_tensor_new(shape, 4);
    for (int64_t i = 0; i < n; i++) x->data[i] = 0.05f * (float)i - 1.0f;
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cg_rng_below(&rng, (uint32_t)(i + 1));
        float t = x->data[i];
        x->data[i] = x->data[j];
        x->data[j] = t;
    }
    return cg_tensor_requires_grad(x, true);
}

static void test_max_pool_grad(void **state) {
    (void)state;
    cg_tensor *x = distinct((int64_t[]){2, 2, 5, 7}, 3);
    for (size_t k = 0; k < N_WINDOWS; k++) {
        win w = WINDOWS[k];
        cg_check_grad(f_max_pool, &x, 1, &w, TOL);
    }
    cg_tensor_release(x);
}

static void test_avg_pool_grad(void **state) {
    (void)state;
    cg_tensor *x = cg_test_uniform((int64_t[]){2, 2, 5, 6}, 4, -2, 2, 4, true);
    for (size_t k = 0; k < N_WINDOWS; k++) {
        win w = WINDOWS[k];
        cg_check_grad(f_avg_pool, &x, 1, &w, TOL);
    }
    cg_tensor_release(x);
}

static void test_global_avg_pool_grad(void **state) {
    (void)state;
    cg_tensor *x = cg_test_uniform((int64_t[]){2, 3, 3, 4}, 4, -2, 2, 5, true);
    cg_check_grad(f_gap, &x, 1, NULL, TOL);
    cg_tensor_release(x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pool_by_hand),
    cmocka_unit_test(test_max_pool_vs_reference),
    cmocka_unit_test(test_max_pool_nan_and_inf),
    cmocka_unit_test(test_avg_pool_vs_reference),
    cmocka_unit_test(test_max_pool_ties_grad_to_first),
    cmocka_unit_test(test_global_avg_pool),
    cmocka_unit_test(test_pool_errors),
    cmocka_unit_test(test_max_pool_saved_state),
    cmocka_unit_test(test_pool_threads_bit_identical),
    cmocka_unit_test(test_max_pool_grad),
    cmocka_unit_test(test_avg_pool_grad),
    cmocka_unit_test(test_global_avg_pool_grad),
};

CG_TEST_MAIN(tests)
