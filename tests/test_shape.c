/* test_shape.c - reshape (-1 inference and its errors), unsqueeze, squeeze,
 * transpose, rows, index_select, stack, cat: values, views sharing data,
 * errors, and gradients against finite differences. */
#include "testutil.h"

#include <string.h>

#define TOL 2e-3

static void assert_error(cg_status status, const char *needle) {
    assert_int_equal(cg_last_status(), status);
    if (!strstr(cg_last_error(), needle))
        fail_msg("error \"%s\" does not mention \"%s\"", cg_last_error(), needle);
    cg_clear_error();
}

static cg_tensor *range(float n, const int64_t *shape, int ndim) {
    cg_tensor *t = cg_tensor_reshape(cg_tensor_arange(0, n, 1), shape, ndim);
    assert_non_null(t);
    return t;
}

static void test_reshape_infer(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(24, (int64_t[]){2, 3, 4}, 3);
    cg_tensor *r = cg_tensor_reshape(x, (int64_t[]){-1, 4}, 2);
    cg_assert_shape(r, (int64_t[]){6, 4}, 2);
    assert_ptr_equal(r->data, x->data); /* a view: no copy */
    r = cg_tensor_reshape(x, (int64_t[]){4, -1}, 2);
    cg_assert_shape(r, (int64_t[]){4, 6}, 2);
    r = cg_tensor_reshape(x, (int64_t[]){-1}, 1);
    cg_assert_shape(r, (int64_t[]){24}, 1);
    r = cg_tensor_reshape(x, (int64_t[]){2, -1, 2, 3}, 4);
    cg_assert_shape(r, (int64_t[]){2, 2, 2, 3}, 4);
    /* the article's view(-1, 28*28) */
    cg_tensor *imgs = cg_tensor_zeros((int64_t[]){5, 28, 28}, 3);
    cg_assert_shape(cg_tensor_reshape(imgs, (int64_t[]){-1, 784}, 2), (int64_t[]){5, 784}, 2);
    /* a scalar and back */
    cg_tensor *s = cg_tensor_reshape(cg_tensor_scalar(3), (int64_t[]){1, 1}, 2);
    cg_assert_shape(s, (int64_t[]){1, 1}, 2);
    cg_assert_shape(cg_tensor_reshape(s, NULL, 0), NULL, 0);
    /* An empty tensor: -1 among non-zero sizes is 0; next to a 0, any size
     * would fit, so it is an error. */
    cg_tensor *e = cg_tensor_zeros((int64_t[]){0, 4}, 2);
    cg_assert_shape(cg_tensor_reshape(e, (int64_t[]){2, -1}, 2), (int64_t[]){2, 0}, 2);
    assert_null(cg_tensor_reshape(e, (int64_t[]){0, -1}, 2));
    assert_error(CG_ERR_SHAPE, "reshape");
    cg_scope_end();
}

static void test_reshape_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(6, (int64_t[]){2, 3}, 2);
    assert_null(cg_tensor_reshape(x, (int64_t[]){-1, -1}, 2));
    assert_error(CG_ERR_SHAPE, "only one dim may be -1");
    assert_null(cg_tensor_reshape(x, (int64_t[]){-1, 4}, 2));
    assert_error(CG_ERR_SHAPE, "cannot reshape [2, 3] (6 elements) into [-1, 4]");
    assert_null(cg_tensor_reshape(x, (int64_t[]){4}, 1));
    assert_error(CG_ERR_SHAPE, "cannot reshape [2, 3] (6 elements) into [4] (4 elements)");
    assert_null(cg_tensor_reshape(x, (int64_t[]){-2, -3}, 2));
    assert_error(CG_ERR_SHAPE, "invalid size -2");
    assert_null(cg_tensor_reshape(x, (int64_t[]){1, 1, 1, 2, 3}, 5));
    assert_error(CG_ERR_SHAPE, "rank 5");
    cg_scope_end();
}

static void test_unsqueeze_squeeze(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(6, (int64_t[]){2, 3}, 2);
    cg_assert_shape(cg_tensor_unsqueeze(x, 0), (int64_t[]){1, 2, 3}, 3);
    cg_assert_shape(cg_tensor_unsqueeze(x, 1), (int64_t[]){2, 1, 3}, 3);
    cg_assert_shape(cg_tensor_unsqueeze(x, 2), (int64_t[]){2, 3, 1}, 3);
    cg_assert_shape(cg_tensor_unsqueeze(x, -1), (int64_t[]){2, 3, 1}, 3);
    cg_assert_shape(cg_tensor_unsqueeze(x, -3), (int64_t[]){1, 2, 3}, 3);
    assert_null(cg_tensor_unsqueeze(x, 3));
    assert_error(CG_ERR_ARG, "unsqueeze");
    assert_null(cg_tensor_unsqueeze(x, -4));
    assert_error(CG_ERR_ARG, "unsqueeze");
    cg_tensor *full = cg_tensor_zeros((int64_t[]){1, 1, 1, 1}, 4);
    assert_null(cg_tensor_unsqueeze(full, 0));
    assert_error(CG_ERR_SHAPE, "unsqueeze");
    /* the article's train_y.unsqueeze(1): [N] -> [N, 1] */
    cg_tensor *y = cg_tensor_unsqueeze(cg_tensor_ones((int64_t[]){5}, 1), 1);
    cg_assert_shape(y, (int64_t[]){5, 1}, 2);

    cg_tensor *u = cg_tensor_unsqueeze(x, 1);
    cg_tensor *sq = cg_tensor_squeeze(u, 1);
    cg_assert_shape(sq, (int64_t[]){2, 3}, 2);
    assert_ptr_equal(sq->data, x->data);
    cg_assert_shape(cg_tensor_squeeze(y, -1), (int64_t[]){5}, 1);
    cg_assert_shape(cg_tensor_squeeze(cg_tensor_ones((int64_t[]){1}, 1), 0), NULL, 0);
    assert_null(cg_tensor_squeeze(x, 1));
    assert_error(CG_ERR_SHAPE, "squeeze: dim 1 of [2, 3] has size 3, not 1");
    assert_null(cg_tensor_squeeze(x, 2));
    assert_error(CG_ERR_ARG, "squeeze");
    assert_null(cg_tensor_squeeze(cg_tensor_scalar(1), 0));
    assert_error(CG_ERR_ARG, "squeeze");
    cg_scope_end();
}

static void test_transpose_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(6, (int64_t[]){2, 3}, 2);
    cg_tensor *t = cg_tensor_transpose(x);
    cg_assert_shape(t, (int64_t[]){3, 2}, 2);
    cg_assert_tensor(t, (float[]){0, 3, 1, 4, 2, 5}, 6, 0);
    /* larger than a tile, with edges: t[j, i] = x[i, j] */
    cg_tensor *big = range(70 * 45, (int64_t[]){70, 45}, 2);
    cg_tensor *bt = cg_tensor_transpose(big);
    cg_assert_shape(bt, (int64_t[]){45, 70}, 2);
    for (int64_t i = 0; i < 70; i++)
        for (int64_t j = 0; j < 45; j++) assert_float_equal(bt->data[j * 70 + i], i * 45 + j, 0);
    assert_null(cg_tensor_transpose(cg_tensor_ones((int64_t[]){3}, 1)));
    assert_error(CG_ERR_SHAPE, "transpose: needs a 2-D tensor, got [3]");
    cg_scope_end();
}

static void test_rows_view(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(12, (int64_t[]){4, 3}, 2);
    cg_tensor *r = cg_tensor_rows(x, 1, 3);
    cg_assert_shape(r, (int64_t[]){2, 3}, 2);
    assert_ptr_equal(r->data, x->data + 3);
    cg_assert_tensor(r, (float[]){3, 4, 5, 6, 7, 8}, 6, 0);
    cg_assert_shape(cg_tensor_rows(x, 4, 4), (int64_t[]){0, 3}, 2);
    assert_null(cg_tensor_rows(x, 2, 5));
    assert_error(CG_ERR_ARG, "rows");
    assert_null(cg_tensor_rows(x, 3, 2));
    assert_error(CG_ERR_ARG, "rows");
    assert_null(cg_tensor_rows(x, -1, 2));
    assert_error(CG_ERR_ARG, "rows");
    assert_null(cg_tensor_rows(cg_tensor_scalar(1), 0, 1));
    assert_error(CG_ERR_SHAPE, "rows");
    cg_scope_end();
}

/* A view outlives its base: the buffer is shared, not owned by the base. */
static void test_view_outlives_base(void **state) {
    (void)state;
    cg_tensor *x = cg_tensor_arange(0, 6, 1);
    cg_tensor *r = cg_tensor_rows(x, 2, 5);
    cg_tensor_release(x);
    cg_assert_tensor(r, (float[]){2, 3, 4}, 3, 0);
    cg_tensor_release(r);
}

static void test_index_select_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *x = range(12, (int64_t[]){4, 3}, 2);
    cg_tensor *s = cg_tensor_index_select(x, (int64_t[]){3, 0, 3}, 3);
    cg_assert_shape(s, (int64_t[]){3, 3}, 2);
    cg_assert_tensor(s, (float[]){9, 10, 11, 0, 1, 2, 9, 10, 11}, 9, 0);
    cg_assert_shape(cg_tensor_index_select(x, NULL, 0), (int64_t[]){0, 3}, 2);
    cg_tensor *v = cg_tensor_index_select(cg_tensor_arange(0, 5, 1), (int64_t[]){4, 1}, 2);
    cg_assert_tensor(v, (float[]){4, 1}, 2, 0);
    assert_null(cg_tensor_index_select(x, (int64_t[]){0, 4}, 2));
    assert_error(CG_ERR_ARG, "index 4 (position 1)");
    assert_null(cg_tensor_index_select(x, (int64_t[]){-1}, 1));
    assert_error(CG_ERR_ARG, "index -1");
    assert_null(cg_tensor_index_select(x, NULL, 2));
    assert_error(CG_ERR_ARG, "index_select");
    cg_scope_end();
}

static void test_stack_cat_forward(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *a = range(6, (int64_t[]){2, 3}, 2);
    cg_tensor *b = cg_tensor_add(a, cg_tensor_scalar(10));
    cg_tensor *c = cg_tensor_ones((int64_t[]){1, 3}, 2);
    cg_tensor *ab[2] = {a, b};
    cg_tensor *s = cg_tensor_stack(ab, 2);
    cg_assert_shape(s, (int64_t[]){2, 2, 3}, 3);
    cg_assert_tensor(s, (float[]){0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}, 12, 0);
    cg_tensor *k0 = cg_tensor_cat((cg_tensor *[]){a, c, b}, 3, 0);
    cg_assert_shape(k0, (int64_t[]){5, 3}, 2);
    cg_assert_tensor(k0, (float[]){0, 1, 2, 3, 4, 5, 1, 1, 1, 10, 11, 12, 13, 14, 15}, 15, 0);
    cg_tensor *k1 = cg_tensor_cat(ab, 2, -1);
    cg_assert_shape(k1, (int64_t[]){2, 6}, 2);
    cg_assert_tensor(k1, (float[]){0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15}, 12, 0);
    /* many inputs, no graph: one pass (the article's stack of images) */
    cg_tensor *many[7];
    for (int i = 0; i < 7; i++) many[i] = cg_tensor_full((int64_t[]){2}, 1, (float)i);
    cg_tensor *sm = cg_tensor_stack(many, 7);
    cg_assert_shape(sm, (int64_t[]){7, 2}, 2);
    for (int i = 0; i < 14; i++) assert_float_equal(sm->data[i], (i / 2), 0);
    cg_tensor *cm = cg_tensor_cat(many, 7, 0);
    cg_assert_shape(cm, (int64_t[]){14}, 1);
    /* errors */
    assert_null(cg_tensor_stack((cg_tensor *[]){a, c}, 2));
    assert_error(CG_ERR_SHAPE, "stack: tensor 1 has shape [1, 3] but tensor 0 has [2, 3]");
    assert_null(cg_tensor_cat((cg_tensor *[]){a, c}, 2, 1));
    assert_error(CG_ERR_SHAPE, "cat: tensor 1 has shape [1, 3]");
    assert_null(cg_tensor_cat((cg_tensor *[]){a, many[0]}, 2, 0));
    assert_error(CG_ERR_SHAPE, "cat: tensor 1 has shape [2]");
    assert_null(cg_tensor_cat(ab, 2, 2));
    assert_error(CG_ERR_ARG, "cat");
    assert_null(cg_tensor_cat(ab, 0, 0));
    assert_error(CG_ERR_ARG, "at least one");
    assert_null(cg_tensor_stack(NULL, 1));
    assert_error(CG_ERR_ARG, "at least one");
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_cat((cg_tensor *[]){a, NULL}, 2, 0));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

/* A cat of more than three inputs that needs a gradient becomes a tree of
 * cats of at most three (an op records three inputs). Values, gradients
 * and lifetimes must come out as for one op, with or without a scope. */
static void test_cat_tree(void **state) {
    (void)state;
    cg_tensor *in[7];
    for (int i = 0; i < 7; i++)
        in[i] = cg_tensor_requires_grad(cg_tensor_full((int64_t[]){2}, 1, (float)i), true);
    /* no scope: the caller owns the result, and releasing it frees the tree */
    cg_tensor *s = cg_tensor_stack(in, 7);
    cg_assert_shape(s, (int64_t[]){7, 2}, 2);
    for (int i = 0; i < 14; i++) assert_float_equal(s->data[i], (i / 2), 0);
    cg_tensor *w = cg_tensor_arange(0, 14, 1);
    cg_tensor *w72 = cg_tensor_reshape(w, (int64_t[]){7, 2}, 2);
    cg_tensor *prod = cg_tensor_mul(s, w72);
    cg_tensor *loss = cg_tensor_sum(prod);
    assert_int_equal(cg_backward(loss), CG_OK);
    for (int i = 0; i < 7; i++) {
        assert_float_equal(in[i]->grad[0], 2 * i, 0);
        assert_float_equal(in[i]->grad[1], 2 * i + 1, 0);
    }
    cg_tensor_release(loss);
    cg_tensor_release(prod);
    cg_tensor_release(s);
    cg_tensor_release(w72);
    cg_tensor_release(w);
    /* every input is back to the one reference this test holds */
    for (int i = 0; i < 7; i++) assert_int_equal(in[i]->refcount, 1);
    for (int i = 0; i < 7; i++) cg_tensor_release(in[i]);
}

/* ---- gradients ---- */

static cg_tensor *f_reshape(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_reshape(in[0], (int64_t[]){-1, 2}, 2);
}
static cg_tensor *f_unsqueeze(cg_tensor *const *in, void *ctx) {
    return cg_tensor_unsqueeze(in[0], *(int *)ctx);
}
static cg_tensor *f_squeeze(cg_tensor *const *in, void *ctx) {
    return cg_tensor_squeeze(in[0], *(int *)ctx);
}
static cg_tensor *f_transpose(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_transpose(in[0]);
}
static cg_tensor *f_rows(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_rows(in[0], 1, 3);
}
static cg_tensor *f_index_select(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_index_select(in[0], (int64_t[]){2, 0, 2, 3, 2}, 5);
}
static cg_tensor *f_stack(cg_tensor *const *in, void *ctx) {
    return cg_tensor_stack(in, *(int *)ctx);
}
typedef struct cat_ctx {
    int n, dim;
} cat_ctx;
static cg_tensor *f_cat(cg_tensor *const *in, void *ctx) {
    cat_ctx *c = ctx;
    return cg_tensor_cat(in, c->n, c->dim);
}
/* Two views of one [4,3] tensor multiplied: x as [2,6] times its first two
 * rows as [1,6]; the gradients from both paths add into x. */
static cg_tensor *f_view_and_base(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    cg_tensor *all = cg_tensor_reshape(in[0], (int64_t[]){2, 6}, 2);
    cg_tensor *top = cg_tensor_reshape(cg_tensor_rows(in[0], 0, 2), (int64_t[]){1, -1}, 2);
    return cg_tensor_mul(all, top);
}

static cg_tensor *input(const int64_t *shape, int ndim, uint64_t seed) {
    return cg_test_uniform(shape, ndim, -2, 2, seed, true);
}

static void test_grad_reshape(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){2, 3, 2}, 3, 1);
    cg_check_grad(f_reshape, &x, 1, NULL, TOL);
    cg_tensor_release(x);
    x = input((int64_t[]){4, 3}, 2, 2);
    cg_check_grad(f_view_and_base, &x, 1, NULL, TOL);
    cg_tensor_release(x);
}
static void test_grad_unsqueeze(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){3, 4}, 2, 3);
    for (int d = -3; d <= 2; d++) cg_check_grad(f_unsqueeze, &x, 1, &d, TOL);
    cg_tensor_release(x);
}
static void test_grad_squeeze(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){3, 1, 4}, 3, 4);
    int d = 1;
    cg_check_grad(f_squeeze, &x, 1, &d, TOL);
    d = -2;
    cg_check_grad(f_squeeze, &x, 1, &d, TOL);
    cg_tensor_release(x);
}
static void test_grad_transpose(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){3, 5}, 2, 5);
    cg_check_grad(f_transpose, &x, 1, NULL, TOL);
    cg_tensor_release(x);
    x = input((int64_t[]){40, 33}, 2, 6); /* more than one tile */
    cg_check_grad(f_transpose, &x, 1, NULL, TOL);
    cg_tensor_release(x);
}
static void test_grad_rows(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){4, 3}, 2, 7);
    cg_check_grad(f_rows, &x, 1, NULL, TOL);
    cg_tensor_release(x);
    x = input((int64_t[]){5}, 1, 8);
    cg_check_grad(f_rows, &x, 1, NULL, TOL);
    cg_tensor_release(x);
}
static void test_grad_index_select(void **state) {
    (void)state;
    cg_tensor *x = input((int64_t[]){4, 3}, 2, 9); /* index 2 repeats: its grads add */
    cg_check_grad(f_index_select, &x, 1, NULL, TOL);
    cg_tensor_release(x);
}
static void test_grad_stack(void **state) {
    (void)state;
    cg_tensor *in[5];
    for (int i = 0; i < 5; i++) in[i] = input((int64_t[]){2, 3}, 2, 20 + i);
    for (int n = 1; n <= 5; n++) cg_check_grad(f_stack, in, n, &n, TOL);
    for (int i = 0; i < 5; i++) cg_tensor_release(in[i]);
}
static void test_grad_cat(void **state) {
    (void)state;
    cg_tensor *in[5];
    for (int i = 0; i < 5; i++) in[i] = input((int64_t[]){2, 1 + i, 2}, 3, 30 + i);
    for (int n = 1; n <= 5; n++) {
        cat_ctx c = {n, 1};
        cg_check_grad(f_cat, in, n, &c, TOL);
    }
    for (int i = 0; i < 5; i++) cg_tensor_release(in[i]);
    for (int i = 0; i < 5; i++) in[i] = input((int64_t[]){1 + i % 2, 3}, 2, 40 + i);
    cat_ctx c0 = {5, 0};
    cg_check_grad(f_cat, in, 5, &c0, TOL);
    /* an input without grad among ones with it */
    cg_tensor_release(in[1]);
    in[1] = cg_test_uniform((int64_t[]){2, 3}, 2, -2, 2, 41, false);
    cg_check_grad(f_cat, in, 5, &c0, TOL);
    assert_null(in[1]->grad);
    for (int i = 0; i < 5; i++) cg_tensor_release(in[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape_infer),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_unsqueeze_squeeze),
        cmocka_unit_test(test_transpose_forward),
        cmocka_unit_test(test_rows_view),
        cmocka_unit_test(test_view_outlives_base),
        cmocka_unit_test(test_index_select_forward),
        cmocka_unit_test(test_stack_cat_forward),
        cmocka_unit_test(test_cat_tree),
        cmocka_unit_test(test_grad_reshape),
        cmocka_unit_test(test_grad_unsqueeze),
        cmocka_unit_test(test_grad_squeeze),
        cmocka_unit_test(test_grad_transpose),
        cmocka_unit_test(test_grad_rows),
        cmocka_unit_test(test_grad_index_select),
        cmocka_unit_test(test_grad_stack),
        cmocka_unit_test(test_grad_cat),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
