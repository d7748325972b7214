/* test_distance.c - cg_tensor_row_distance, the baseline's fused
 * mnist_distance: the same values as the book's op composition
 * ((a - b).abs().mean(-1), and sqrt of the squared mean), gradients
 * against finite differences in x and in y, the same bits on 1 and 2
 * threads, and clear errors for wrong shapes. */
#include "testutil.h"

#include <string.h>

#define TOL 2e-3

/* The book's form, three ops: what the fused op must agree with. */
static cg_tensor *composed(cg_tensor *x, cg_tensor *y, cg_distance kind) {
    int last = -1;
    cg_tensor *r = cg_tensor_sub(x, y);
    if (kind == CG_DIST_L1) return cg_tensor_mean_dims(cg_tensor_abs(r), &last, 1, false);
    return cg_tensor_sqrt(cg_tensor_mean_dims(cg_tensor_mul(r, r), &last, 1, false));
}

static void test_row_distance_matches_ops(void **state) {
    (void)state;
    const int64_t ps[] = {1, 7, 13, 784};
    for (int k = 0; k < 2; k++) {
        const cg_distance kind = k ? CG_DIST_RMSE : CG_DIST_L1;
        for (size_t s = 0; s < sizeof ps / sizeof ps[0]; s++) {
            cg_scope_begin();
            cg_tensor *x = cg_test_uniform((int64_t[]){5, ps[s]}, 2, -1, 1, 3 + s, false);
            cg_tensor *y = cg_test_uniform((int64_t[]){ps[s]}, 1, -1, 1, 30 + s, false);
            cg_tensor *d = cg_tensor_row_distance(x, y, kind);
            cg_tensor *e = composed(x, y, kind);
            assert_non_null(d);
            cg_assert_shape(d, (int64_t[]){5}, 1);
            for (int i = 0; i < 5; i++)
                cg_assert_close(d->data[i], e->data[i], 1e-6, 1e-6, "distance");
            cg_scope_end();
        }
    }
}

static cg_tensor *f_l1(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_row_distance(in[0], in[1], CG_DIST_L1);
}
static cg_tensor *f_rmse(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_row_distance(in[0], in[1], CG_DIST_RMSE);
}

/* d/dx and d/dy against finite differences, y as [P] and as [1, P]. L1's
 * kink at x == y is measure zero for uniform draws. */
static void test_grad_row_distance(void **state) {
    (void)state;
    for (int yd = 1; yd <= 2; yd++) {
        cg_tensor *in[2] = {cg_test_uniform((int64_t[]){4, 9}, 2, -1, 1, 5, true),
                            cg_test_uniform(yd == 1 ? (int64_t[]){9} : (int64_t[]){1, 9}, yd, -1, 1,
                                            6, true)};
        cg_check_grad(f_l1, in, 2, NULL, TOL);
        cg_check_grad(f_rmse, in, 2, NULL, TOL);
        cg_tensor_release(in[0]);
        cg_tensor_release(in[1]);
    }
}

/* RMSE at distance 0 has no slope to follow: the gradient is 0, not NaN. */
static void test_row_distance_zero(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = cg_test_uniform((int64_t[]){1, 6}, 2, -1, 1, 8, true);
    cg_tensor *y = cg_tensor_reshape(x, (int64_t[]){6}, 1);
    cg_tensor *d = cg_tensor_row_distance(x, cg_tensor_detach(y), CG_DIST_RMSE);
    assert_non_null(d);
    assert_true(d->data[0] == 0.0f);
    assert_int_equal(cg_backward(cg_tensor_sum(d)), CG_OK);
    for (int j = 0; j < 6; j++) assert_true(x->grad[j] == 0.0f);
    cg_scope_end();
}

static void test_row_distance_threads(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = cg_test_uniform((int64_t[]){600, 784}, 2, 0, 1, 9, false);
    cg_tensor *y = cg_test_uniform((int64_t[]){784}, 1, 0, 1, 10, false);
    int prev = cg_get_num_threads();
    cg_set_num_threads(1);
    cg_tensor *d1 = cg_tensor_row_distance(x, y, CG_DIST_L1);
    cg_set_num_threads(2);
    cg_tensor *d2 = cg_tensor_row_distance(x, y, CG_DIST_L1);
    cg_set_num_threads(prev);
    assert_memory_equal(d1->data, d2->data, 600 * sizeof(float));
    cg_scope_end();
}

static void test_row_distance_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = cg_test_uniform((int64_t[]){3, 4}, 2, 0, 1, 1, false);
    cg_tensor *y5 = cg_test_uniform((int64_t[]){5}, 1, 0, 1, 2, false);
    cg_tensor *y4 = cg_test_uniform((int64_t[]){4}, 1, 0, 1, 3, false);
    cg_tensor *y24 = cg_test_uniform((int64_t[]){2, 4}, 2, 0, 1, 4, false);
    assert_null(cg_tensor_row_distance(x, y5, CG_DIST_L1));
    assert_non_null(strstr(cg_last_error(),
                           "row_distance: needs rows x [N, P] and one y [P], got [3, 4] and [5]"));
    assert_null(cg_tensor_row_distance(x, y24, CG_DIST_L1));
    assert_null(cg_tensor_row_distance(y4, y4, CG_DIST_L1)); /* x must be 2-D */
    assert_null(cg_tensor_row_distance(x, y4, (cg_distance)7));
    assert_non_null(strstr(cg_last_error(), "unknown distance 7"));
    assert_null(cg_tensor_row_distance(NULL, y4, CG_DIST_L1));
    cg_tensor *none = cg_tensor_row_distance(cg_test_uniform((int64_t[]){0, 4}, 2, 0, 1, 5, false),
                                             y4, CG_DIST_L1);
    assert_non_null(none); /* no rows, no distances */
    assert_int_equal(none->numel, 0);
    cg_scope_end();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_distance_matches_ops),
        cmocka_unit_test(test_grad_row_distance),
        cmocka_unit_test(test_row_distance_zero),
        cmocka_unit_test(test_row_distance_threads),
        cmocka_unit_test(test_row_distance_errors),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
