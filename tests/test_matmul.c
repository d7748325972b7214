/* test_matmul.c - matmul for 2-D@2-D, 1-D@2-D, 2-D@1-D, 1-D@1-D: values by
 * hand and against a double-precision reference, shape errors (exact
 * message), and gradients against finite differences and against the
 * closed forms dA = G B^T, dB = A^T G. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define TOL 2e-3

/* C = A @ B in double, the obvious triple loop, for comparison. */
static void reference(const float *a, const float *b, double *c, int64_t m, int64_t k, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)a[i * k + p] * b[p * n + j];
            c[i * n + j] = s;
        }
}

static void test_matmul_forward(void **state) {
    (void)state;
    cg_scope_begin();
    /* [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58,64],[139,154]] */
    cg_tensor *a = cg_tensor_from_data((float[]){1, 2, 3, 4, 5, 6}, (int64_t[]){2, 3}, 2);
    cg_tensor *b = cg_tensor_from_data((float[]){7, 8, 9, 10, 11, 12}, (int64_t[]){3, 2}, 2);
    cg_tensor *c = cg_tensor_matmul(a, b);
    cg_assert_shape(c, (int64_t[]){2, 2}, 2);
    cg_assert_tensor(c, (float[]){58, 64, 139, 154}, 4, 0);
    /* 1-D @ 2-D: [1,2,3] @ b = [58, 64], shape [2] */
    cg_tensor *v3 = cg_tensor_from_data((float[]){1, 2, 3}, (int64_t[]){3}, 1);
    c = cg_tensor_matmul(v3, b);
    cg_assert_shape(c, (int64_t[]){2}, 1);
    cg_assert_tensor(c, (float[]){58, 64}, 2, 0);
    /* 2-D @ 1-D: a @ [1,2,3] = [14, 32], shape [2] */
    c = cg_tensor_matmul(a, v3);
    cg_assert_shape(c, (int64_t[]){2}, 1);
    cg_assert_tensor(c, (float[]){14, 32}, 2, 0);
    /* 1-D @ 1-D: a dot product, a scalar */
    c = cg_tensor_matmul(v3, v3);
    cg_assert_shape(c, NULL, 0);
    assert_float_equal(cg_tensor_item(c), 14, 0);
    /* the article's linear1: [N,784] @ [784,1] -> [N,1] */
    cg_tensor *x = cg_tensor_ones((int64_t[]){4, 784}, 2);
    cg_tensor *w = cg_tensor_full((int64_t[]){784, 1}, 2, 0.5f);
    c = cg_tensor_matmul(x, w);
    cg_assert_shape(c, (int64_t[]){4, 1}, 2);
    cg_assert_tensor(c, (float[]){392, 392, 392, 392}, 4, 0);
    /* K = 0: a sum of nothing, all zeros (C's old contents never leak) */
    c = cg_tensor_matmul(cg_tensor_zeros((int64_t[]){2, 0}, 2),
                         cg_tensor_zeros((int64_t[]){0, 3}, 2));
    cg_assert_shape(c, (int64_t[]){2, 3}, 2);
    cg_assert_tensor(c, (float[]){0, 0, 0, 0, 0, 0}, 6, 0);
    cg_scope_end();
}

/* Odd sizes that cut across any kernel's tiles, against double sums. */
static void test_matmul_vs_reference(void **state) {
    (void)state;
    const int64_t sizes[][3] = {{37, 53, 29}, {1, 100, 7}, {64, 784, 1}, {5, 1, 9}, {70, 300, 65}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t m = sizes[s][0], k = sizes[s][1], n = sizes[s][2];
        cg_scope_begin();
        cg_tensor *a = cg_test_uniform((int64_t[]){m, k}, 2, -1, 1, 50 + s, false);
        cg_tensor *b = cg_test_uniform((int64_t[]){k, n}, 2, -1, 1, 60 + s, false);
        cg_tensor *c = cg_tensor_matmul(a, b);
        cg_assert_shape(c, (int64_t[]){m, n}, 2);
        double *ref = malloc(sizeof(double) * (size_t)(m * n));
        reference(a->data, b->data, ref, m, k, n);
        for (int64_t i = 0; i < m * n; i++)
            cg_assert_close(c->data[i], ref[i], 1e-5 * (double)k, 1e-5, "C element");
        free(ref);
        cg_scope_end();
    }
}

static void assert_matmul_error(const int64_t *sa, int na, const int64_t *sb, int nb,
                                const char *message) {
    cg_scope_begin();
    cg_tensor *a = cg_tensor_zeros(sa, na), *b = cg_tensor_zeros(sb, nb);
    cg_clear_error();
    assert_null(cg_tensor_matmul(a, b));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_string_equal(cg_last_error(), message);
    cg_scope_end();
}

static void test_matmul_errors(void **state) {
    (void)state;
    assert_matmul_error((int64_t[]){64, 784}, 2, (int64_t[]){30, 1}, 2,
                        "matmul: cannot multiply 64x784 by 30x1");
    assert_matmul_error((int64_t[]){3}, 1, (int64_t[]){4, 5}, 2,
                        "matmul: cannot multiply 3 by 4x5");
    assert_matmul_error((int64_t[]){2, 3}, 2, (int64_t[]){2}, 1,
                        "matmul: cannot multiply 2x3 by 2");
    assert_matmul_error((int64_t[]){3}, 1, (int64_t[]){4}, 1, "matmul: cannot multiply 3 by 4");
    assert_matmul_error((int64_t[]){2, 2, 2}, 3, (int64_t[]){2, 2}, 2,
                        "matmul: needs 1-D or 2-D operands, got [2, 2, 2] and [2, 2]");
    assert_matmul_error(NULL, 0, (int64_t[]){2}, 1,
                        "matmul: needs 1-D or 2-D operands, got [] and [2]");
    /* NULL in, NULL out, the message untouched */
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_matmul(NULL, NULL));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
}

/* The closed forms on a size where finite differences would be slow:
 * with L = sum(C * R), dL/dC = R, so dA = R B^T and dB = A^T R. */
static void test_matmul_backward_closed_form(void **state) {
    (void)state;
    const int64_t m = 33, k = 70, n = 17;
    cg_tensor *a = cg_test_uniform((int64_t[]){m, k}, 2, -1, 1, 1, true);
    cg_tensor *b = cg_test_uniform((int64_t[]){k, n}, 2, -1, 1, 2, true);
    cg_tensor *r = cg_test_uniform((int64_t[]){m, n}, 2, -1, 1, 3, false);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(cg_tensor_matmul(a, b), r))), CG_OK);
    cg_scope_end();
    for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < k; p++) {
            double s = 0;
            for (int64_t j = 0; j < n; j++) s += (double)r->data[i * n + j] * b->data[p * n + j];
            cg_assert_close(a->grad[i * k + p], s, 1e-5 * n, 1e-5, "dA = R B^T");
        }
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t i = 0; i < m; i++) s += (double)a->data[i * k + p] * r->data[i * n + j];
            cg_assert_close(b->grad[p * n + j], s, 1e-5 * m, 1e-5, "dB = A^T R");
        }
    cg_tensor_release(a);
    cg_tensor_release(b);
    cg_tensor_release(r);
}

static cg_tensor *f_matmul(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_matmul(in[0], in[1]);
}

static void test_grad_matmul(void **state) {
    (void)state;
    const struct {
        int64_t a[2], b[2];
        int na, nb;
    } cases[] = {
        {{3, 4}, {4, 5}, 2, 2}, /* 2-D @ 2-D */
        {{4, 0}, {4, 5}, 1, 2}, /* 1-D @ 2-D */
        {{3, 4}, {4, 0}, 2, 1}, /* 2-D @ 1-D */
        {{6, 0}, {6, 0}, 1, 1}, /* 1-D @ 1-D */
        {{5, 7}, {7, 1}, 2, 2}, /* linear1's shape: a column */
        {{1, 3}, {3, 6}, 2, 2}, /* a single row */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cg_tensor *in[2] = {cg_test_uniform(cases[i].a, cases[i].na, -1, 1, 70 + i, true),
                            cg_test_uniform(cases[i].b, cases[i].nb, -1, 1, 80 + i, true)};
        cg_check_grad(f_matmul, in, 2, NULL, TOL);
        /* only one side wanting a gradient */
        cg_tensor_requires_grad(in[0], false);
        cg_check_grad(f_matmul, in, 2, NULL, TOL);
        cg_tensor_release(in[0]);
        cg_tensor_release(in[1]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_forward),
        cmocka_unit_test(test_matmul_vs_reference),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_matmul_backward_closed_form),
        cmocka_unit_test(test_grad_matmul),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
