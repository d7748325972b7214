/* test_conv.c - conv2d: forward and all three gradients against plain
 * nested loops in double (odd sizes, strides, paddings, kernels, channel
 * counts, batch sizes, with and without bias) on both of its paths (direct
 * and im2col); the same bits on 1 and 2 threads; gradients against finite
 * differences; shape and argument errors. */
#include "testutil.h"

#include "cgrad_internal.h"

#include <stdlib.h>
#include <string.h>

/* One convolution to try. */
typedef struct conv_case {
    int64_t n, c, h, w, o, kh, kw;
    int stride, pad;
    bool bias;
} conv_case;

static int64_t out_size(int64_t in, int64_t k, int s, int p) { return (in + 2 * p - k) / s + 1; }

/* The definitions in double: y, and with R = dL/dy: dx, dw, db. */
typedef struct conv_ref {
    double *y, *dx, *dw, *db;
} conv_ref;

static conv_ref reference(const conv_case *k, const float *x, const float *w, const float *b,
                          const float *r) {
    const int64_t oh = out_size(k->h, k->kh, k->stride, k->pad),
                  ow = out_size(k->w, k->kw, k->stride, k->pad);
    conv_ref ref;
    ref.y = calloc((size_t)(k->n * k->o * oh * ow + 1), sizeof(double));
    ref.dx = calloc((size_t)(k->n * k->c * k->h * k->w + 1), sizeof(double));
    ref.dw = calloc((size_t)(k->o * k->c * k->kh * k->kw + 1), sizeof(double));
    ref.db = calloc((size_t)(k->o + 1), sizeof(double));
    assert_true(ref.y && ref.dx && ref.dw && ref.db);
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t o = 0; o < k->o; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    const int64_t yi = ((n * k->o + o) * oh + i) * ow + j;
                    double s = b ? b[o] : 0.0;
                    const double g = r[yi];
                    ref.db[o] += g;
                    for (int64_t c = 0; c < k->c; c++)
                        for (int64_t p = 0; p < k->kh; p++)
                            for (int64_t q = 0; q < k->kw; q++) {
                                const int64_t ih = i * k->stride + p - k->pad,
                                              iw = j * k->stride + q - k->pad;
                                if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) continue;
                                const int64_t xi = ((n * k->c + c) * k->h + ih) * k->w + iw;
                                const int64_t wi = ((o * k->c + c) * k->kh + p) * k->kw + q;
                                s += (double)w[wi] * x[xi];
                                ref.dx[xi] += g * w[wi];
                                ref.dw[wi] += g * x[xi];
                            }
                    ref.y[yi] = s;
                }
    return ref;
}

static void ref_free(conv_ref *r) {
    free(r->y), free(r->dx), free(r->dw), free(r->db);
}

static void assert_close_all(const float *got, const double *want, int64_t n, double atol,
                             const char *what, const conv_case *k) {
    for (int64_t i = 0; i < n; i++) {
        const double diff = fabs(got[i] - want[i]);
        if (!(diff <= atol + 1e-5 * fabs(want[i])))
            fail_msg("%s[%lld]: got %.9g, expected %.9g (case N%lld C%lld %lldx%lld O%lld "
                     "k%lldx%lld s%d p%d%s)",
                     what, (long long)i, got[i], want[i], (long long)k->n, (long long)k->c,
                     (long long)k->h, (long long)k->w, (long long)k->o, (long long)k->kh,
                     (long long)k->kw, k->stride, k->pad, k->bias ? " bias" : "");
    }
}

/* Forward and backward of one case on the current path, against the loops. */
static void check_case(const conv_case *k, uint64_t seed) {
    cg_scope_begin();
    cg_tensor *x = cg_test_uniform((int64_t[]){k->n, k->c, k->h, k->w}, 4, -1, 1, seed, true);
    cg_tensor *w = cg_test_uniform((int64_t[]){k->o, k->c, k->kh, k->kw}, 4, -1, 1, seed + 1, true);
    cg_tensor *b = k->bias ? cg_test_uniform((int64_t[]){k->o}, 1, -1, 1, seed + 2, true) : NULL;
    cg_tensor *y = cg_tensor_conv2d(x, w, b, k->stride, k->pad);
    const int64_t oh = out_size(k->h, k->kh, k->stride, k->pad),
                  ow = out_size(k->w, k->kw, k->stride, k->pad);
    cg_assert_shape(y, (int64_t[]){k->n, k->o, oh, ow}, 4);
    cg_tensor *r = cg_test_uniform(y->shape, 4, -1, 1, seed + 3, false);
    conv_ref ref = reference(k, x->data, w->data, b ? b->data : NULL, r->data);
    const int64_t kk = k->c * k->kh * k->kw;
    assert_close_all(y->data, ref.y, y->numel, 1e-5 * (double)(kk + 1), "y", k);
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(y, r))), CG_OK);
    assert_close_all(x->grad, ref.dx, x->numel, 1e-5 * (double)(k->o * k->kh * k->kw + 1), "dx", k);
    assert_close_all(w->grad, ref.dw, w->numel, 1e-5 * (double)(k->n * oh * ow + 1), "dw", k);
    if (b)
        assert_close_all(b->grad, ref.db, b->numel, 1e-5 * (double)(k->n * oh * ow + 1), "db", k);
    ref_free(&ref);
    cg_scope_end();
}

static const conv_case CASES[] = {
    /* n  c  h  w   o kh kw  s  p  bias */
    {1, 1, 7, 5, 1, 3, 3, 1, 0, false},
    {1, 1, 7, 5, 1, 3, 3, 1, 1, true},
    {2, 3, 7, 5, 4, 3, 3, 2, 1, true},
    {3, 1, 9, 8, 8, 5, 5, 2, 2, true},   /* the first layer's shape, small */
    {2, 8, 7, 7, 16, 3, 3, 2, 1, true},  /* C % 8 == 0: vector col2im */
    {2, 16, 7, 5, 32, 3, 3, 2, 1, false},/* C % 16 == 0 */
    {2, 32, 4, 4, 64, 3, 3, 2, 1, true},
    {5, 64, 2, 2, 10, 3, 3, 2, 1, true}, /* dW with rows = output channels */
    {2, 5, 6, 7, 7, 1, 1, 1, 0, true},   /* 1x1 */
    {2, 5, 6, 7, 7, 1, 1, 2, 2, false},  /* 1x1, stride 2, pad 2: all-zero borders */
    {1, 2, 5, 5, 3, 5, 5, 1, 0, true},   /* kernel = input: one output */
    {2, 3, 3, 4, 5, 5, 5, 1, 2, true},   /* kernel larger than the input */
    {2, 4, 11, 9, 9, 3, 5, 3, 2, true},  /* stride 3, KH != KW */
    {1, 3, 8, 10, 20, 2, 4, 2, 0, true}, /* even kernel, bottom/right rows never read */
    {4, 24, 6, 6, 33, 3, 3, 1, 1, true}, /* C % 8 == 0 but not 16, O = 33 */
    {3, 16, 5, 5, 8, 3, 3, 1, 1, false}, /* O = 8: the 8x8 tile */
    {2, 8, 6, 5, 12, 3, 3, 1, 2, true},
    {7, 2, 5, 3, 3, 3, 1, 2, 1, true},
    {3, 8, 1, 2, 8, 1, 1, 1, 0, true},   /* 2 pixels, 2 positions: the 8x2 transposes */
    {4, 16, 1, 1, 16, 1, 1, 1, 0, true}, /* 1 pixel, 1 position */
    {3, 16, 2, 2, 24, 3, 3, 1, 1, true}, /* 4 pixels, 4 positions, stride 1 */
    {2, 48, 5, 4, 48, 3, 3, 2, 1, true}, /* C % 16 == 0 but not 32; O = 48 */
    {2, 32, 6, 5, 17, 3, 2, 1, 1, true}, /* O = 17: a 16-wide tile and one lane */
    {1, 64, 3, 3, 96, 3, 3, 1, 1, true}, /* wide tiles everywhere */
    /* Few channels, long rows. */
    {2, 1, 28, 28, 8, 5, 5, 2, 2, true},  /* simple_cnn's conv1 */
    {2, 3, 10, 37, 5, 3, 3, 1, 1, true},  /* OW = 37 */
    {3, 2, 9, 40, 12, 3, 3, 2, 0, false}, /* O = 12: a tile and part of one */
    {1, 4, 12, 30, 9, 5, 3, 3, 2, true},  /* stride 3, KH != KW */
};

/* Both ways the direct path can go (where the CPU has AVX-512, "direct"
 * uses its tiles; "direct-avx2" the AVX2 ones only). */
static const char *const DIRECT_PATHS[] = {"direct", "direct-avx2"};
enum { N_DIRECT_PATHS = sizeof DIRECT_PATHS / sizeof DIRECT_PATHS[0] };

static void run_cases(const char *path) {
    assert_true(cg_conv_use_path(path));
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i], 100 + 10 * i);
    assert_true(cg_conv_use_path(NULL));
}

static void test_conv2d_vs_reference(void **state) {
    (void)state;
    /* The default path for each shape. */
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check_case(&CASES[i], 100 + 10 * i);
}

static void test_conv2d_direct_vs_reference(void **state) {
    (void)state;
    if (!cg_conv_use_path("direct")) {
        print_message("no AVX2 + FMA here: the direct path is not built to run\n");
        skip();
    }
    for (int p = 0; p < N_DIRECT_PATHS; p++) run_cases(DIRECT_PATHS[p]);
}

static void test_conv2d_im2col_vs_reference(void **state) {
    (void)state;
    run_cases("im2col");
    /* And with cg_gemm's portable kernel under it, the portable build's case. */
    assert_true(cg_gemm_use_kernel("generic"));
    run_cases("im2col");
    assert_true(cg_gemm_use_kernel(NULL));
}

static void test_conv2d_forward_by_hand(void **state) {
    (void)state;
    cg_scope_begin();
    /* x = 1..9 as 3x3, w = [[1,0],[0,-1]], b = 10, stride 1, pad 0:
     * y[i][j] = x[i][j] - x[i+1][j+1] + 10 = 6 everywhere. */
    cg_tensor *x =
        cg_tensor_from_data((float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, (int64_t[]){1, 1, 3, 3}, 4);
    cg_tensor *w = cg_tensor_from_data((float[]){1, 0, 0, -1}, (int64_t[]){1, 1, 2, 2}, 4);
    cg_tensor *b = cg_tensor_from_data((float[]){10}, (int64_t[]){1}, 1);
    cg_tensor *y = cg_tensor_conv2d(x, w, b, 1, 0);
    cg_assert_shape(y, (int64_t[]){1, 1, 2, 2}, 4);
    cg_assert_tensor(y, (float[]){6, 6, 6, 6}, 4, 0);
    /* pad 1, stride 2, no bias: positions (-1,-1), (-1,1), (1,-1), (1,1):
     * y = x[i][j] (top-left tap, inside only) - x[i+1][j+1]. */
    y = cg_tensor_conv2d(x, w, NULL, 2, 1);
    cg_assert_shape(y, (int64_t[]){1, 1, 2, 2}, 4);
    cg_assert_tensor(y, (float[]){-1, -3, -7, 5 - 9}, 4, 0);
    cg_scope_end();
}

/* Zero-sized batch, output channels, input channels. */
static void test_conv2d_empty(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = cg_tensor_requires_grad(cg_tensor_ones((int64_t[]){0, 3, 5, 5}, 4), true);
    cg_tensor *w = cg_tensor_requires_grad(cg_tensor_ones((int64_t[]){4, 3, 3, 3}, 4), true);
    cg_tensor *y = cg_tensor_conv2d(x, w, NULL, 1, 1);
    cg_assert_shape(y, (int64_t[]){0, 4, 5, 5}, 4);
    assert_int_equal(cg_backward(cg_tensor_sum(y)), CG_OK);
    for (int64_t i = 0; i < w->numel; i++) assert_true(w->grad[i] == 0.0f);
    /* C = 0: a sum of nothing, so y is the bias. */
    x = cg_tensor_ones((int64_t[]){2, 0, 4, 4}, 4);
    w = cg_tensor_ones((int64_t[]){3, 0, 3, 3}, 4);
    cg_tensor *b = cg_tensor_from_data((float[]){1, 2, 3}, (int64_t[]){3}, 1);
    y = cg_tensor_conv2d(x, w, b, 1, 0);
    cg_assert_shape(y, (int64_t[]){2, 3, 2, 2}, 4);
    for (int64_t i = 0; i < y->numel; i++) assert_true(y->data[i] == (float)(i / 4 % 3 + 1));
    /* O = 0 */
    y = cg_tensor_conv2d(cg_tensor_ones((int64_t[]){2, 3, 4, 4}, 4),
                         cg_tensor_ones((int64_t[]){0, 3, 3, 3}, 4), NULL, 1, 0);
    cg_assert_shape(y, (int64_t[]){2, 0, 2, 2}, 4);
    cg_scope_end();
}

/* ---- the same bits on any number of threads ---- */

typedef struct conv_bits {
    float *y, *dx, *dw, *db;
    int64_t ny, nx, nw, nb;
} conv_bits;

static conv_bits run_bits(const conv_case *k, int threads) {
    cg_set_num_threads(threads);
    cg_scope_begin();
    cg_tensor *x = cg_test_uniform((int64_t[]){k->n, k->c, k->h, k->w}, 4, -1, 1, 7, true);
    cg_tensor *w = cg_test_uniform((int64_t[]){k->o, k->c, k->kh, k->kw}, 4, -1, 1, 8, true);
    cg_tensor *b = cg_test_uniform((int64_t[]){k->o}, 1, -1, 1, 9, true);
    cg_tensor *y = cg_tensor_conv2d(x, w, b, k->stride, k->pad);
    assert_non_null(y);
    cg_tensor *r = cg_test_uniform(y->shape, 4, -1, 1, 10, false);
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(y, r))), CG_OK);
    conv_bits o = {malloc(sizeof(float) * (size_t)y->numel),
                   malloc(sizeof(float) * (size_t)x->numel),
                   malloc(sizeof(float) * (size_t)w->numel),
                   malloc(sizeof(float) * (size_t)b->numel),
                   y->numel,
                   x->numel,
                   w->numel,
                   b->numel};
    memcpy(o.y, y->data, sizeof(float) * (size_t)o.ny);
    memcpy(o.dx, x->grad, sizeof(float) * (size_t)o.nx);
    memcpy(o.dw, w->grad, sizeof(float) * (size_t)o.nw);
    memcpy(o.db, b->grad, sizeof(float) * (size_t)o.nb);
    cg_scope_end();
    cg_set_num_threads(0);
    return o;
}

static void bits_free(conv_bits *b) { free(b->y), free(b->dx), free(b->dw), free(b->db); }

static void check_bits(const char *path) {
    /* simple_cnn's five layers on a batch of 64: enough work for two threads. */
    static const conv_case layers[] = {
        {64, 1, 28, 28, 8, 5, 5, 2, 2, true},  {64, 8, 14, 14, 16, 3, 3, 2, 1, true},
        {64, 16, 7, 7, 32, 3, 3, 2, 1, true},  {64, 32, 4, 4, 64, 3, 3, 2, 1, true},
        {64, 64, 2, 2, 10, 3, 3, 2, 1, true},  {37, 3, 17, 13, 9, 3, 3, 1, 1, true},
    };
    assert_true(cg_conv_use_path(path));
    cg_guard_enable(false); /* two threads must really run on two */
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        conv_bits one = run_bits(&layers[i], 1), two = run_bits(&layers[i], 2);
        assert_memory_equal(one.y, two.y, sizeof(float) * (size_t)one.ny);
        assert_memory_equal(one.dx, two.dx, sizeof(float) * (size_t)one.nx);
        assert_memory_equal(one.dw, two.dw, sizeof(float) * (size_t)one.nw);
        assert_memory_equal(one.db, two.db, sizeof(float) * (size_t)one.nb);
        bits_free(&one);
        bits_free(&two);
    }
    cg_guard_enable(true);
    assert_true(cg_conv_use_path(NULL));
}

static void test_conv2d_same_bits_on_1_and_2_threads(void **state) {
    (void)state;
    if (cg_conv_use_path("direct"))
        for (int p = 0; p < N_DIRECT_PATHS; p++) check_bits(DIRECT_PATHS[p]);
    check_bits("im2col");
}

/* ---- finite differences ---- */

typedef struct conv_args {
    int stride, pad;
} conv_args;

static cg_tensor *conv_fn(cg_tensor *const *in, void *ctx) {
    const conv_args *a = ctx;
    return cg_tensor_conv2d(in[0], in[1], in[2], a->stride, a->pad);
}

static void grad_check_path(const char *path, int which) {
    if (!cg_conv_use_path(path)) return;
    static const conv_case small[] = {
        {2, 3, 5, 4, 4, 3, 3, 1, 1, true},
        {2, 8, 5, 5, 5, 3, 3, 2, 2, true},
        {1, 16, 3, 4, 3, 2, 2, 1, 0, true},
        {1, 32, 3, 3, 20, 3, 3, 2, 1, true},
        {1, 2, 4, 17, 3, 3, 3, 2, 1, true},
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        const conv_case *k = &small[i];
        cg_scope_begin();
        cg_tensor *in[3] = {
            cg_test_uniform((int64_t[]){k->n, k->c, k->h, k->w}, 4, -1, 1, 30 + i, which == 0),
            cg_test_uniform((int64_t[]){k->o, k->c, k->kh, k->kw}, 4, -1, 1, 40 + i, which == 1),
            cg_test_uniform((int64_t[]){k->o}, 1, -1, 1, 50 + i, which == 2),
        };
        conv_args a = {k->stride, k->pad};
        cg_check_grad(conv_fn, in, 3, &a, 2e-3);
        cg_scope_end();
    }
    assert_true(cg_conv_use_path(NULL));
}

static void test_conv2d_grad_x(void **state) {
    (void)state;
    for (int p = 0; p < N_DIRECT_PATHS; p++) grad_check_path(DIRECT_PATHS[p], 0);
    grad_check_path("im2col", 0);
}

static void test_conv2d_grad_w(void **state) {
    (void)state;
    for (int p = 0; p < N_DIRECT_PATHS; p++) grad_check_path(DIRECT_PATHS[p], 1);
    grad_check_path("im2col", 1);
}

static void test_conv2d_grad_b(void **state) {
    (void)state;
    for (int p = 0; p < N_DIRECT_PATHS; p++) grad_check_path(DIRECT_PATHS[p], 2);
    grad_check_path("im2col", 2);
}

/* Only some inputs want a gradient: the others get none, the rest is right. */
static void test_conv2d_backward_only_some_inputs(void **state) {
    (void)state;
    const conv_case k = {3, 8, 6, 6, 16, 3, 3, 2, 1, true};
    for (int want = 0; want < 8; want++) {
        cg_scope_begin();
        cg_tensor *x = cg_test_uniform((int64_t[]){k.n, k.c, k.h, k.w}, 4, -1, 1, 1, want & 1);
        cg_tensor *w = cg_test_uniform((int64_t[]){k.o, k.c, k.kh, k.kw}, 4, -1, 1, 2, want & 2);
        cg_tensor *b = cg_test_uniform((int64_t[]){k.o}, 1, -1, 1, 3, want & 4);
        cg_tensor *y = cg_tensor_conv2d(x, w, b, k.stride, k.pad);
        assert_non_null(y);
        cg_tensor *r = cg_test_uniform(y->shape, 4, -1, 1, 4, false);
        conv_ref ref = reference(&k, x->data, w->data, b->data, r->data);
        if (want) {
            assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(y, r))), CG_OK);
        } else {
            assert_null(y->op); /* nothing to differentiate: no graph */
        }
        if (want & 1) assert_close_all(x->grad, ref.dx, x->numel, 1e-4, "dx", &k);
        else assert_null(x->grad);
        if (want & 2) assert_close_all(w->grad, ref.dw, w->numel, 1e-3, "dw", &k);
        else assert_null(w->grad);
        if (want & 4) assert_close_all(b->grad, ref.db, b->numel, 1e-3, "db", &k);
        else assert_null(b->grad);
        ref_free(&ref);
        cg_scope_end();
    }
}

/* ---- errors ---- */

static void assert_conv_error(const int64_t *xs, int xn, const int64_t *ws, int wn,
                              const int64_t *bs, int bn, int stride, int pad, cg_status status,
                              const char *needle) {
    cg_scope_begin();
    cg_clear_error();
    cg_tensor *x = cg_tensor_zeros(xs, xn), *w = cg_tensor_zeros(ws, wn);
    cg_tensor *b = bs ? cg_tensor_zeros(bs, bn) : NULL;
    assert_null(cg_tensor_conv2d(x, w, b, stride, pad));
    assert_int_equal(cg_last_status(), status);
    const char *msg = cg_last_error();
    if (strncmp(msg, "conv2d: ", 8) != 0 || !strstr(msg, needle))
        fail_msg("message \"%s\" does not start with \"conv2d: \" and name \"%s\"", msg, needle);
    cg_scope_end();
}

static void test_conv2d_errors(void **state) {
    (void)state;
    const int64_t x4[4] = {2, 3, 8, 8}, w4[4] = {4, 3, 3, 3}, b1[1] = {4};
    /* wrong ranks */
    assert_conv_error((int64_t[]){3, 8, 8}, 3, w4, 4, NULL, 0, 1, 0, CG_ERR_SHAPE, "[3, 8, 8]");
    assert_conv_error(x4, 4, (int64_t[]){4, 27}, 2, NULL, 0, 1, 0, CG_ERR_SHAPE, "[4, 27]");
    /* channel mismatch */
    assert_conv_error(x4, 4, (int64_t[]){4, 2, 3, 3}, 4, NULL, 0, 1, 0, CG_ERR_SHAPE, "channels");
    /* kernel larger than the padded input */
    assert_conv_error(x4, 4, (int64_t[]){4, 3, 11, 3}, 4, NULL, 0, 1, 1, CG_ERR_SHAPE, "11x3");
    assert_conv_error(x4, 4, (int64_t[]){4, 3, 3, 9}, 4, NULL, 0, 1, 0, CG_ERR_SHAPE,
                      "does not fit");
    assert_conv_error(x4, 4, (int64_t[]){4, 3, 0, 3}, 4, NULL, 0, 1, 0, CG_ERR_SHAPE, "0x3");
    /* stride < 1, pad < 0 */
    assert_conv_error(x4, 4, w4, 4, NULL, 0, 0, 0, CG_ERR_ARG, "stride 0");
    assert_conv_error(x4, 4, w4, 4, NULL, 0, -2, 0, CG_ERR_ARG, "stride -2");
    assert_conv_error(x4, 4, w4, 4, NULL, 0, 1, -1, CG_ERR_ARG, "pad -1");
    /* bias of the wrong size or rank */
    assert_conv_error(x4, 4, w4, 4, (int64_t[]){5}, 1, 1, 0, CG_ERR_SHAPE, "bias [5]");
    assert_conv_error(x4, 4, w4, 4, (int64_t[]){1, 4}, 2, 1, 0, CG_ERR_SHAPE, "bias [1, 4]");
    (void)b1;
}

static void test_conv2d_null(void **state) {
    (void)state;
    cg_scope_begin();
    cg_clear_error();
    cg_tensor *x = cg_tensor_zeros((int64_t[]){1, 1, 3, 3}, 4),
              *w = cg_tensor_zeros((int64_t[]){1, 1, 3, 3}, 4);
    assert_null(cg_tensor_conv2d(NULL, w, NULL, 1, 0));
    assert_null(cg_tensor_conv2d(x, NULL, NULL, 1, 0));
    assert_null(cg_tensor_conv2d(NULL, NULL, NULL, 0, -1));
    assert_int_equal(cg_last_status(), CG_OK); /* NULL in, NULL out, no message */
    assert_non_null(cg_tensor_conv2d(x, w, NULL, 1, 0));
    cg_scope_end();
}

static void test_conv2d_path_names(void **state) {
    (void)state;
    assert_false(cg_conv_use_path("fast"));
    assert_false(cg_conv_use_path("direct-"));
    assert_false(cg_conv_use_path("direct-avx512"));
    assert_true(cg_conv_use_path("im2col"));
    assert_true(cg_conv_use_path(NULL));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_conv2d_forward_by_hand),
    cmocka_unit_test(test_conv2d_vs_reference),
    cmocka_unit_test(test_conv2d_direct_vs_reference),
    cmocka_unit_test(test_conv2d_im2col_vs_reference),
    cmocka_unit_test(test_conv2d_empty),
    cmocka_unit_test(test_conv2d_same_bits_on_1_and_2_threads),
    cmocka_unit_test(test_conv2d_grad_x),
    cmocka_unit_test(test_conv2d_grad_w),
    cmocka_unit_test(test_conv2d_grad_b),
    cmocka_unit_test(test_conv2d_backward_only_some_inputs),
    cmocka_unit_test(test_conv2d_errors),
    cmocka_unit_test(test_conv2d_null),
    cmocka_unit_test(test_conv2d_path_names),
};

CG_TEST_MAIN(tests)
