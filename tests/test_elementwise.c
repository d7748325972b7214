/* test_elementwise.c - the broadcasting binary ops and where: forward
 * values on broadcast shapes, broadcast errors, comparisons, and each
 * differentiable op's gradient against finite differences on broadcast
 * shape pairs. */
#include "testutil.h"

#include <string.h>

#define TOL 2e-3

static cg_tensor *from(const float *v, const int64_t *shape, int ndim) {
    cg_tensor *t = cg_tensor_from_data(v, shape, ndim);
    assert_non_null(t);
    return t;
}

static void test_broadcast_forward(void **state) {
    (void)state;
    cg_scope_begin();
    /* [2,3] + [3] */
    cg_tensor *a = from((float[]){1, 2, 3, 4, 5, 6}, (int64_t[]){2, 3}, 2);
    cg_tensor *r = cg_tensor_add(a, from((float[]){10, 20, 30}, (int64_t[]){3}, 1));
    cg_assert_shape(r, (int64_t[]){2, 3}, 2);
    cg_assert_tensor(r, (float[]){11, 22, 33, 14, 25, 36}, 6, 0);
    /* [2,1] * [1,3]: an outer product */
    r = cg_tensor_mul(from((float[]){2, 3}, (int64_t[]){2, 1}, 2),
                      from((float[]){1, 10, 100}, (int64_t[]){1, 3}, 2));
    cg_assert_shape(r, (int64_t[]){2, 3}, 2);
    cg_assert_tensor(r, (float[]){2, 20, 200, 3, 30, 300}, 6, 0);
    /* [4,1] / [1] */
    r = cg_tensor_div(from((float[]){2, 4, 6, 8}, (int64_t[]){4, 1}, 2),
                      from((float[]){2}, (int64_t[]){1}, 1));
    cg_assert_shape(r, (int64_t[]){4, 1}, 2);
    cg_assert_tensor(r, (float[]){1, 2, 3, 4}, 4, 0);
    /* [3] - [2,1] -> [2,3] */
    r = cg_tensor_sub(from((float[]){1, 2, 3}, (int64_t[]){3}, 1),
                      from((float[]){1, 10}, (int64_t[]){2, 1}, 2));
    cg_assert_shape(r, (int64_t[]){2, 3}, 2);
    cg_assert_tensor(r, (float[]){0, 1, 2, -9, -8, -7}, 6, 0);
    /* scalar with [2,2] on either side */
    r = cg_tensor_sub(cg_tensor_scalar(1), from((float[]){1, 2, 3, 4}, (int64_t[]){2, 2}, 2));
    cg_assert_shape(r, (int64_t[]){2, 2}, 2);
    cg_assert_tensor(r, (float[]){0, -1, -2, -3}, 4, 0);
    /* rank 3: [2,1,3] + [4,1] -> [2,4,3], element (i,j,k) = (3i+k) + 10j */
    cg_tensor *x = cg_tensor_reshape(cg_tensor_arange(0, 6, 1), (int64_t[]){2, 1, 3}, 3);
    cg_tensor *y = from((float[]){0, 10, 20, 30}, (int64_t[]){4, 1}, 2);
    r = cg_tensor_add(x, y);
    cg_assert_shape(r, (int64_t[]){2, 4, 3}, 3);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                assert_float_equal(r->data[(i * 4 + j) * 3 + k], (3 * i + k + 10 * j), 0);
    cg_scope_end();
}

static void test_compare_where_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *a = from((float[]){1, 2, 3, 4, 5, 6}, (int64_t[]){2, 3}, 2);
    cg_tensor *b = from((float[]){2, 5, 3}, (int64_t[]){3}, 1);
    cg_tensor *g = cg_tensor_gt(a, b), *l = cg_tensor_lt(a, b), *e = cg_tensor_eq(a, b);
    cg_assert_tensor(g, (float[]){0, 0, 0, 1, 0, 1}, 6, 0);
    cg_assert_tensor(l, (float[]){1, 1, 0, 0, 0, 0}, 6, 0);
    cg_assert_tensor(e, (float[]){0, 0, 1, 0, 1, 0}, 6, 0);
    /* comparisons carry no gradient */
    cg_tensor_requires_grad(a, true);
    cg_tensor *g2 = cg_tensor_gt(a, b);
    assert_null(g2->op);
    assert_false(g2->requires_grad);
    /* where(cond [2,1], a [3], b scalar) -> [2,3] */
    cg_tensor *w =
        cg_tensor_where(from((float[]){1, 0}, (int64_t[]){2, 1}, 2),
                        from((float[]){7, 8, 9}, (int64_t[]){3}, 1), cg_tensor_scalar(-1));
    cg_assert_shape(w, (int64_t[]){2, 3}, 2);
    cg_assert_tensor(w, (float[]){7, 8, 9, -1, -1, -1}, 6, 0);
    cg_scope_end();
}

static void test_broadcast_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *a = cg_tensor_zeros((int64_t[]){2, 3}, 2);
    cg_tensor *b = cg_tensor_zeros((int64_t[]){2}, 1);
    assert_null(cg_tensor_add(a, b));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_string_equal(cg_last_error(), "add: cannot broadcast 2x3 with 2");
    assert_null(cg_tensor_mul(b, a));
    assert_non_null(strstr(cg_last_error(), "mul"));
    assert_null(cg_tensor_where(a, b, a));
    assert_non_null(strstr(cg_last_error(), "where"));
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_add(NULL, a));
    assert_null(cg_tensor_div(a, NULL));
    assert_null(cg_tensor_where(NULL, a, a));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

/* ---- gradients, on pairs of shapes that broadcast ---- */

static const struct {
    int64_t a[3], b[3];
    int na, nb;
} PAIRS[] = {
    {{3, 4}, {3, 4}, 2, 2},       /* same shape */
    {{2, 3}, {3}, 2, 1},          /* [2,3] with [3] */
    {{2, 1}, {1, 3}, 2, 2},       /* both stretch */
    {{4, 1}, {1}, 2, 1},          /* [4,1] with [1] */
    {{0}, {2, 2}, 0, 2},          /* a scalar */
    {{2, 1, 3}, {4, 1}, 3, 2},    /* rank 3 */
};
#define N_PAIRS ((int)(sizeof PAIRS / sizeof PAIRS[0]))

static cg_tensor *f_add(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_add(in[0], in[1]);
}
static cg_tensor *f_sub(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_sub(in[0], in[1]);
}
static cg_tensor *f_mul(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_mul(in[0], in[1]);
}
static cg_tensor *f_div(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_div(in[0], in[1]);
}
/* where(a > 0, a, b): the condition comes from an input but is constant
 * under small changes as long as no a is within eps of 0. */
static cg_tensor *f_where(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_where(cg_tensor_gt(in[0], cg_tensor_scalar(0)), in[0], in[1]);
}

/* Gradient check of f over every pair, both ways round, with b in
 * [b_lo, b_hi) (kept away from 0 for div) and a away from 0 (for where). */
static void check_pairs(cg_test_fn f, float b_lo, float b_hi) {
    for (int p = 0; p < N_PAIRS; p++)
        for (int swap = 0; swap < 2; swap++) {
            const int64_t *sa = swap ? PAIRS[p].b : PAIRS[p].a,
                          *sb = swap ? PAIRS[p].a : PAIRS[p].b;
            int na = swap ? PAIRS[p].nb : PAIRS[p].na, nb = swap ? PAIRS[p].na : PAIRS[p].nb;
            cg_tensor *in[2] = {cg_test_uniform(sa, na, -2, 2, 90 + p, true),
                                cg_test_uniform(sb, nb, b_lo, b_hi, 95 + p, true)};
            for (int64_t i = 0; i < in[0]->numel; i++)
                if (in[0]->data[i] > -0.05f && in[0]->data[i] < 0.05f) in[0]->data[i] = 0.3f;
            cg_check_grad(f, in, 2, NULL, TOL);
            cg_tensor_release(in[0]);
            cg_tensor_release(in[1]);
        }
}

static void test_grad_add(void **state) {
    (void)state;
    check_pairs(f_add, -2, 2);
}
static void test_grad_sub(void **state) {
    (void)state;
    check_pairs(f_sub, -2, 2);
}
static void test_grad_mul(void **state) {
    (void)state;
    check_pairs(f_mul, -2, 2);
}
static void test_grad_div(void **state) {
    (void)state;
    check_pairs(f_div, 0.5f, 2);
}
static void test_grad_where(void **state) {
    (void)state;
    check_pairs(f_where, -2, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_forward),
        cmocka_unit_test(test_compare_where_forward),
        cmocka_unit_test(test_broadcast_errors),
        cmocka_unit_test(test_grad_add),
        cmocka_unit_test(test_grad_sub),
        cmocka_unit_test(test_grad_mul),
        cmocka_unit_test(test_grad_div),
        cmocka_unit_test(test_grad_where),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
