/* test_reduce.c - sum, mean, sum_dims, mean_dims, max, argmax: values by
 * hand (also after broadcasting ops), errors, determinism across thread
 * counts, and gradients against finite differences. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define TOL 2e-3

static cg_tensor *from(const float *v, const int64_t *shape, int ndim) {
    cg_tensor *t = cg_tensor_from_data(v, shape, ndim);
    assert_non_null(t);
    return t;
}

/* x = [[1, 2, 3], [4, 5, 6]] */
static const float X23[] = {1, 2, 3, 4, 5, 6};

static void test_sum_mean_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = from(X23, (int64_t[]){2, 3}, 2);
    cg_tensor *s = cg_tensor_sum(x), *m = cg_tensor_mean(x);
    cg_assert_shape(s, NULL, 0);
    cg_assert_shape(m, NULL, 0);
    assert_float_equal(cg_tensor_item(s), 21, 0);
    assert_float_equal(cg_tensor_item(m), 3.5, 0);
    /* An empty tensor sums to 0; its mean is 0/0 = NaN, as in PyTorch. */
    cg_tensor *e = cg_tensor_zeros((int64_t[]){0, 3}, 2);
    assert_float_equal(cg_tensor_item(cg_tensor_sum(e)), 0, 0);
    assert_true(isnan(cg_tensor_item(cg_tensor_mean(e))));
    cg_scope_end();
}

/* Reductions of broadcast results: [2,3] + [3] then sums, and the book's
 * mean(where(t == 1, 1 - p, p)) with t [2,1] broadcast against p [2,3]. */
static void test_reduce_after_broadcast(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = from(X23, (int64_t[]){2, 3}, 2);
    cg_tensor *b = from((float[]){10, 20, 30}, (int64_t[]){3}, 1);
    cg_tensor *y = cg_tensor_add(x, b); /* [[11,22,33],[14,25,36]] */
    assert_float_equal(cg_tensor_item(cg_tensor_sum(y)), 141, 0);
    cg_assert_tensor(cg_tensor_sum_dims(y, (int[]){0}, 1, false), (float[]){25, 47, 69}, 3, 0);
    cg_assert_tensor(cg_tensor_mean_dims(y, (int[]){1}, 1, false), (float[]){22, 25}, 2, 1e-6);

    cg_tensor *p = from((float[]){0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, (int64_t[]){2, 3}, 2);
    cg_tensor *t = from((float[]){1, 0}, (int64_t[]){2, 1}, 2);
    cg_tensor *one = cg_tensor_scalar(1);
    cg_tensor *l = cg_tensor_where(cg_tensor_eq(t, one), cg_tensor_sub(one, p), p);
    /* row 0 (t=1): 0.9 0.8 0.7; row 1 (t=0): 0.4 0.5 0.6 -> mean 3.9/6 */
    assert_float_equal(cg_tensor_item(cg_tensor_mean(l)), 0.65, 1e-6);
    cg_assert_tensor(cg_tensor_mean_dims(l, (int[]){-1}, 1, true), (float[]){0.8f, 0.5f}, 2, 1e-6);
    cg_scope_end();
}

static void test_sum_dims_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = from(X23, (int64_t[]){2, 3}, 2);
    cg_tensor *r = cg_tensor_sum_dims(x, (int[]){0}, 1, false);
    cg_assert_shape(r, (int64_t[]){3}, 1);
    cg_assert_tensor(r, (float[]){5, 7, 9}, 3, 0);
    r = cg_tensor_sum_dims(x, (int[]){1}, 1, true);
    cg_assert_shape(r, (int64_t[]){2, 1}, 2);
    cg_assert_tensor(r, (float[]){6, 15}, 2, 0);
    r = cg_tensor_sum_dims(x, (int[]){-1, 0}, 2, false);
    cg_assert_shape(r, NULL, 0);
    assert_float_equal(cg_tensor_item(r), 21, 0);
    r = cg_tensor_sum_dims(x, (int[]){0, 1}, 2, true);
    cg_assert_shape(r, (int64_t[]){1, 1}, 2);

    /* [2,3,2]: element (i,j,k) = 6i + 2j + k; over dims 0 and 2 ->
     * sum_i,k = (0+6) * 2 + 2 * (2j) * 2 + (0+1) * 2 = 14 + 8j */
    cg_tensor *z = cg_tensor_arange(0, 12, 1);
    z = cg_tensor_reshape(z, (int64_t[]){2, 3, 2}, 3);
    r = cg_tensor_sum_dims(z, (int[]){0, 2}, 2, true);
    cg_assert_shape(r, (int64_t[]){1, 3, 1}, 3);
    cg_assert_tensor(r, (float[]){14, 22, 30}, 3, 0);
    r = cg_tensor_mean_dims(z, (int[]){2, 0}, 2, false);
    cg_assert_shape(r, (int64_t[]){3}, 1);
    cg_assert_tensor(r, (float[]){3.5f, 5.5f, 7.5f}, 3, 1e-6);
    r = cg_tensor_mean_dims(z, (int[]){1}, 1, false);
    cg_assert_shape(r, (int64_t[]){2, 2}, 2);
    cg_assert_tensor(r, (float[]){2, 3, 8, 9}, 4, 1e-6);
    cg_scope_end();
}

static void test_reduce_dims_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = from(X23, (int64_t[]){2, 3}, 2);
    assert_null(cg_tensor_sum_dims(x, (int[]){2}, 1, false));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "sum_dims"));
    assert_null(cg_tensor_mean_dims(x, (int[]){-3}, 1, false));
    assert_non_null(strstr(cg_last_error(), "mean_dims"));
    assert_null(cg_tensor_sum_dims(x, (int[]){1, -1}, 2, false));
    assert_non_null(strstr(cg_last_error(), "twice"));
    assert_null(cg_tensor_sum_dims(x, (int[]){0}, 0, false));
    assert_null(cg_tensor_sum_dims(x, NULL, 1, false));
    assert_null(cg_tensor_max(x, 2, false));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_null(cg_tensor_argmax(x, -3, false));
    cg_tensor *e = cg_tensor_zeros((int64_t[]){2, 0}, 2);
    assert_null(cg_tensor_max(e, 1, false));
    assert_non_null(strstr(cg_last_error(), "empty"));
    /* NULL in, NULL out, the message untouched */
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_sum(NULL));
    assert_null(cg_tensor_mean(NULL));
    assert_null(cg_tensor_sum_dims(NULL, (int[]){0}, 1, false));
    assert_null(cg_tensor_max(NULL, 0, false));
    assert_null(cg_tensor_argmax(NULL, 0, false));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

static void test_max_argmax_forward(void **state) {
    (void)state;
    cg_scope_begin();
    /* [[3, 9, 9], [7, 1, -2]]: ties go to the first index. */
    cg_tensor *x = from((float[]){3, 9, 9, 7, 1, -2}, (int64_t[]){2, 3}, 2);
    cg_tensor *m = cg_tensor_max(x, 1, false);
    cg_assert_shape(m, (int64_t[]){2}, 1);
    cg_assert_tensor(m, (float[]){9, 7}, 2, 0);
    cg_tensor *a = cg_tensor_argmax(x, -1, true);
    cg_assert_shape(a, (int64_t[]){2, 1}, 2);
    cg_assert_tensor(a, (float[]){1, 0}, 2, 0);
    m = cg_tensor_max(x, 0, true);
    cg_assert_shape(m, (int64_t[]){1, 3}, 2);
    cg_assert_tensor(m, (float[]){7, 9, 9}, 3, 0);
    cg_assert_tensor(cg_tensor_argmax(x, 0, false), (float[]){1, 0, 0}, 3, 0);
    /* a middle dim of a rank-3 tensor */
    cg_tensor *z = cg_tensor_reshape(cg_tensor_arange(0, 12, 1), (int64_t[]){2, 3, 2}, 3);
    z->data[2] = 100; /* (0, 1, 0) */
    cg_assert_tensor(cg_tensor_max(z, 1, false), (float[]){100, 5, 10, 11}, 4, 0);
    cg_assert_tensor(cg_tensor_argmax(z, 1, false), (float[]){1, 2, 2, 2}, 4, 0);
    /* NaN wins, as in PyTorch */
    cg_tensor *n = from((float[]){1, NAN, 3}, (int64_t[]){3}, 1);
    assert_true(isnan(cg_tensor_item(cg_tensor_max(n, 0, false))));
    assert_float_equal(cg_tensor_item(cg_tensor_argmax(n, 0, false)), 1, 0);
    cg_scope_end();
}

/* max's gradient goes to the first maximum only; argmax records nothing. */
static void test_max_grad_to_first(void **state) {
    (void)state;
    cg_tensor *x = cg_tensor_from_data((float[]){3, 9, 9, 7, 1, -2}, (int64_t[]){2, 3}, 2);
    cg_tensor_requires_grad(x, true);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_max(x, 1, false))), CG_OK);
    cg_tensor *a = cg_tensor_argmax(x, 1, false);
    assert_null(a->op);
    assert_false(a->requires_grad);
    cg_scope_end();
    const float expect[6] = {0, 1, 0, 1, 0, 0};
    for (int i = 0; i < 6; i++) assert_float_equal(x->grad[i], expect[i], 0);
    cg_tensor_release(x);
}

/* The whole-tensor sum runs in fixed blocks: the same bits on 1 or more
 * threads, and within float rounding of the exact (double) sum. */
static void test_sum_deterministic(void **state) {
    (void)state;
    int64_t n = 1000003;
    cg_tensor *x = cg_test_uniform(&n, 1, -1, 1, 7, false);
    double exact = 0;
    for (int64_t i = 0; i < n; i++) exact += x->data[i];
    int prev = cg_get_num_threads();
    cg_set_num_threads(1);
    cg_tensor *s1 = cg_tensor_sum(x);
    cg_set_num_threads(4);
    cg_tensor *s4 = cg_tensor_sum(x);
    cg_set_num_threads(prev);
    assert_memory_equal(s1->data, s4->data, sizeof(float));
    cg_assert_close(s1->data[0], exact, 1e-3, 1e-6, "sum of a million");
    cg_tensor_release(s1);
    cg_tensor_release(s4);
    cg_tensor_release(x);
}

/* A tall matrix's column means (the baseline's mean image: rows cut into
 * fixed chunks, partial rows added in order): the same bits on 1 and 2
 * threads, within float rounding of the exact mean, and a chunk-sized
 * count of rows (no partial sums) and a ragged last chunk both right. */
static void test_mean_dim0_tall_deterministic(void **state) {
    (void)state;
    const int64_t heights[] = {512, 8000}; /* 8000 x 37: past CG_PARALLEL_MIN */
    for (int h = 0; h < 2; h++) {
        int64_t shape[2] = {heights[h], 37};
        cg_tensor *x = cg_test_uniform(shape, 2, 0, 1, 11 + h, false);
        int dim0 = 0, prev = cg_get_num_threads();
        cg_set_num_threads(1);
        cg_tensor *m1 = cg_tensor_mean_dims(x, &dim0, 1, false);
        cg_set_num_threads(2);
        cg_tensor *m2 = cg_tensor_mean_dims(x, &dim0, 1, false);
        cg_set_num_threads(prev);
        assert_non_null(m1);
        assert_non_null(m2);
        assert_memory_equal(m1->data, m2->data, 37 * sizeof(float));
        for (int64_t j = 0; j < 37; j++) {
            double exact = 0;
            for (int64_t i = 0; i < shape[0]; i++) exact += x->data[i * 37 + j];
            cg_assert_close(m1->data[j], exact / (double)shape[0], 1e-6, 1e-6, "column mean");
        }
        cg_tensor_release(m1);
        cg_tensor_release(m2);
        cg_tensor_release(x);
    }
}

/* ---- gradients ---- */

typedef struct dims_ctx {
    int dims[3];
    int ndims;
    bool keepdim;
} dims_ctx;

static cg_tensor *f_sum(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_sum(in[0]);
}
static cg_tensor *f_mean(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_mean(in[0]);
}
static cg_tensor *f_sum_dims(cg_tensor *const *in, void *ctx) {
    dims_ctx *c = ctx;
    return cg_tensor_sum_dims(in[0], c->dims, c->ndims, c->keepdim);
}
static cg_tensor *f_mean_dims(cg_tensor *const *in, void *ctx) {
    dims_ctx *c = ctx;
    return cg_tensor_mean_dims(in[0], c->dims, c->ndims, c->keepdim);
}
static cg_tensor *f_max(cg_tensor *const *in, void *ctx) {
    dims_ctx *c = ctx;
    return cg_tensor_max(in[0], c->dims[0], c->keepdim);
}
/* The reduction of a broadcast product: gradient flows through both. */
static cg_tensor *f_sum_dims_of_product(cg_tensor *const *in, void *ctx) {
    dims_ctx *c = ctx;
    return cg_tensor_sum_dims(cg_tensor_mul(in[0], in[1]), c->dims, c->ndims, c->keepdim);
}

static const struct {
    int64_t shape[3];
    int ndim;
} SHAPES[] = {{{0}, 0}, {{5}, 1}, {{3, 4}, 2}, {{2, 3, 2}, 3}};

static void check_all_shapes(cg_test_fn f) {
    for (int s = 0; s < 4; s++) {
        cg_tensor *x = cg_test_uniform(SHAPES[s].shape, SHAPES[s].ndim, -2, 2, 10 + s, true);
        cg_check_grad(f, &x, 1, NULL, TOL);
        cg_tensor_release(x);
    }
}

/* Gradient check of f on a [2,3,4] input for several dim lists. */
static void check_dims(cg_test_fn f) {
    const dims_ctx cases[] = {{{0}, 1, false}, {{1}, 1, true},     {{-1}, 1, false},
                              {{0, 2}, 2, true}, {{2, 0}, 2, false}, {{0, 1, 2}, 3, false}};
    cg_tensor *x = cg_test_uniform((int64_t[]){2, 3, 4}, 3, -2, 2, 3, true);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dims_ctx c = cases[i];
        cg_check_grad(f, &x, 1, &c, TOL);
    }
    cg_tensor_release(x);
}

static void test_grad_sum(void **state) {
    (void)state;
    check_all_shapes(f_sum);
}
static void test_grad_mean(void **state) {
    (void)state;
    check_all_shapes(f_mean);
}
static void test_grad_sum_dims(void **state) {
    (void)state;
    check_dims(f_sum_dims);
    /* [2,1,4] * [3,1] -> [2,3,4], summed over dim 1 */
    cg_tensor *in[2] = {cg_test_uniform((int64_t[]){2, 1, 4}, 3, -2, 2, 4, true),
                        cg_test_uniform((int64_t[]){3, 1}, 2, -2, 2, 5, true)};
    dims_ctx c = {{1}, 1, false};
    cg_check_grad(f_sum_dims_of_product, in, 2, &c, TOL);
    cg_tensor_release(in[0]);
    cg_tensor_release(in[1]);
}
static void test_grad_mean_dims(void **state) {
    (void)state;
    check_dims(f_mean_dims);
}
static void test_grad_max(void **state) {
    (void)state;
    /* distinct values (a permutation) so no tie sits within eps */
    cg_tensor *flat = cg_tensor_arange(0, 24, 1);
    cg_tensor *x = cg_tensor_reshape(flat, (int64_t[]){2, 3, 4}, 3);
    cg_tensor_release(flat); /* the view keeps the buffer */
    cg_rng rng;
    cg_rng_seed(&rng, 9);
    for (int64_t i = x->numel - 1; i > 0; i--) {
        int64_t j = cg_rng_below(&rng, (uint32_t)(i + 1));
        float t = x->data[i];
        x->data[i] = x->data[j];
        x->data[j] = t;
    }
    for (int64_t i = 0; i < x->numel; i++) x->data[i] = 0.1f * x->data[i] - 1.0f;
    cg_tensor_requires_grad(x, true);
    for (int d = -1; d < 3; d++) {
        dims_ctx c = {{d}, 1, d == 1};
        cg_check_grad(f_max, &x, 1, &c, TOL);
    }
    cg_tensor_release(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_mean_forward),
        cmocka_unit_test(test_reduce_after_broadcast),
        cmocka_unit_test(test_sum_dims_forward),
        cmocka_unit_test(test_reduce_dims_errors),
        cmocka_unit_test(test_max_argmax_forward),
        cmocka_unit_test(test_max_grad_to_first),
        cmocka_unit_test(test_sum_deterministic),
        cmocka_unit_test(test_mean_dim0_tall_deterministic),
        cmocka_unit_test(test_grad_sum),
        cmocka_unit_test(test_grad_mean),
        cmocka_unit_test(test_grad_sum_dims),
        cmocka_unit_test(test_grad_mean_dims),
        cmocka_unit_test(test_grad_max),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
