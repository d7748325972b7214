/* test_loss.c - the fused mnist_loss and bce_with_logits: values and
 * gradients by hand, agreement with the same losses built from single ops,
 * stability for large logits, size errors; binary_accuracy. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#define TOL 2e-3
#define LN3 1.0986123f

/* p = [0, ln 3, -ln 3, 2], so sigmoid(p) = [1/2, 3/4, 1/4, s2] with
 * s2 = sigmoid(2) = 0.8807971; targets [1, 1, 0, 0]. */
static const float P4[] = {0, LN3, -LN3, 2};
static const float T4[] = {1, 1, 0, 0};
#define S2 0.88079708

static void test_mnist_loss_values(void **state) {
    (void)state;
    cg_tensor *p = cg_tensor_from_data(P4, (int64_t[]){4, 1}, 2); /* [N,1] preds */
    cg_tensor *t = cg_tensor_from_data(T4, (int64_t[]){4}, 1);    /* [N] targets */
    cg_tensor_requires_grad(p, true);
    cg_scope_begin();
    cg_tensor *loss = cg_mnist_loss(p, t);
    cg_assert_shape(loss, NULL, 0);
    /* l = [1 - 1/2, 1 - 3/4, 1/4, s2], L = mean */
    cg_assert_close(cg_tensor_item(loss), (0.5 + 0.25 + 0.25 + S2) / 4, 1e-6, 0, "mnist_loss");
    assert_int_equal(cg_backward(loss), CG_OK);
    cg_scope_end();
    /* dL/dp_i = (t_i == 1 ? -1 : 1) s_i (1 - s_i) / 4 */
    const double expect[4] = {-0.25 / 4, -0.1875 / 4, 0.1875 / 4, S2 * (1 - S2) / 4};
    for (int i = 0; i < 4; i++) cg_assert_close(p->grad[i], expect[i], 1e-7, 0, "dL/dp");
    cg_tensor_release(p);
    cg_tensor_release(t);
}

static void test_bce_values(void **state) {
    (void)state;
    cg_tensor *p = cg_tensor_from_data(P4, (int64_t[]){4}, 1);
    cg_tensor *t = cg_tensor_from_data(T4, (int64_t[]){4, 1}, 2);
    cg_tensor_requires_grad(p, true);
    cg_scope_begin();
    cg_tensor *loss = cg_bce_with_logits(p, t);
    /* l = -ln s for t = 1, -ln(1 - s) for t = 0:
     * [ln 2, ln(4/3), ln(4/3), -ln(1 - s2)] */
    double want = (log(2.0) + 2 * log(4.0 / 3) - log(1 - S2)) / 4;
    cg_assert_close(cg_tensor_item(loss), want, 1e-6, 0, "bce");
    assert_int_equal(cg_backward(loss), CG_OK);
    cg_scope_end();
    /* dL/dp = (s - t) / 4 */
    const double expect[4] = {-0.5 / 4, -0.25 / 4, 0.25 / 4, S2 / 4};
    for (int i = 0; i < 4; i++) cg_assert_close(p->grad[i], expect[i], 1e-7, 0, "dL/dp");
    cg_tensor_release(p);
    cg_tensor_release(t);
}

/* Logits of +-100 would overflow e^-p in the naive formula; the stable one
 * gives l = 100 for a confident wrong answer and ~0 for a right one. */
static void test_bce_large_logits(void **state) {
    (void)state;
    cg_tensor *p = cg_tensor_requires_grad(
        cg_tensor_from_data((float[]){100, -100, 100, -100}, (int64_t[]){4}, 1), true);
    cg_tensor *t = cg_tensor_from_data((float[]){0, 1, 1, 0}, (int64_t[]){4}, 1);
    cg_scope_begin();
    cg_tensor *loss = cg_bce_with_logits(p, t);
    cg_assert_close(cg_tensor_item(loss), 50, 1e-5, 0, "bce at +-100");
    assert_int_equal(cg_backward(loss), CG_OK);
    cg_tensor *m = cg_mnist_loss(p, t);
    cg_assert_close(cg_tensor_item(m), 0.5, 1e-6, 0, "mnist_loss at +-100");
    cg_scope_end();
    const float expect[4] = {0.25f, -0.25f, 0, 0};
    for (int i = 0; i < 4; i++) {
        assert_true(isfinite(p->grad[i]));
        cg_assert_close(p->grad[i], expect[i], 1e-7, 0, "dL/dp at +-100");
    }
    cg_tensor_release(p);
    cg_tensor_release(t);
}

/* The fused ops against the same formulas built from single ops:
 * mnist_loss = mean(where(t == 1, 1 - sigmoid(p), sigmoid(p))) (the article),
 * bce = mean(-(t log s + (1 - t) log(1 - s))). Values and gradients. */
static cg_tensor *composite_mnist(cg_tensor *p, cg_tensor *t) {
    cg_tensor *one = cg_tensor_scalar(1);
    cg_tensor *s = cg_tensor_sigmoid(p);
    return cg_tensor_mean(cg_tensor_where(cg_tensor_eq(t, one), cg_tensor_sub(one, s), s));
}
static cg_tensor *composite_bce(cg_tensor *p, cg_tensor *t) {
    cg_tensor *one = cg_tensor_scalar(1);
    cg_tensor *s = cg_tensor_sigmoid(p);
    cg_tensor *pos = cg_tensor_mul(t, cg_tensor_log(s));
    cg_tensor *neg = cg_tensor_mul(cg_tensor_sub(one, t), cg_tensor_log(cg_tensor_sub(one, s)));
    return cg_tensor_neg(cg_tensor_mean(cg_tensor_add(pos, neg)));
}

typedef cg_tensor *(*loss_fn)(cg_tensor *, cg_tensor *);

static void compare(loss_fn fused, loss_fn composite, bool soft_targets) {
    const int64_t n = 10;
    cg_tensor *p = cg_test_uniform((int64_t[]){n, 1}, 2, -4, 4, 5, true);
    cg_tensor *t = cg_test_uniform((int64_t[]){n, 1}, 2, 0, 1, 6, false);
    if (!soft_targets)
        for (int64_t i = 0; i < n; i++) t->data[i] = t->data[i] < 0.5f ? 0.0f : 1.0f;
    float fused_grad[10];
    cg_scope_begin();
    cg_tensor *lf = fused(p, t);
    assert_int_equal(cg_backward(lf), CG_OK);
    memcpy(fused_grad, p->grad, sizeof fused_grad);
    cg_tensor_zero_grad(p);
    cg_tensor *lc = composite(p, t);
    assert_int_equal(cg_backward(lc), CG_OK);
    cg_assert_close(cg_tensor_item(lf), cg_tensor_item(lc), 1e-6, 1e-6, "loss");
    for (int64_t i = 0; i < n; i++) cg_assert_close(fused_grad[i], p->grad[i], 1e-7, 1e-5, "grad");
    cg_scope_end();
    cg_tensor_release(p);
    cg_tensor_release(t);
}

static void test_mnist_loss_matches_composite(void **state) {
    (void)state;
    compare(cg_mnist_loss, composite_mnist, false);
}
static void test_bce_matches_composite(void **state) {
    (void)state;
    compare(cg_bce_with_logits, composite_bce, false);
    compare(cg_bce_with_logits, composite_bce, true);
}

static void test_loss_size_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *p = cg_tensor_zeros((int64_t[]){64, 1}, 2);
    cg_tensor *t = cg_tensor_zeros((int64_t[]){63}, 1);
    assert_null(cg_mnist_loss(p, t));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_string_equal(
        cg_last_error(),
        "mnist_loss: preds [64, 1] and targets [63] differ in element count (64 vs 63)");
    assert_null(cg_bce_with_logits(p, t));
    assert_non_null(strstr(cg_last_error(), "bce_with_logits: preds [64, 1] and targets [63]"));
    assert_true(isnan(cg_binary_accuracy(p, t)));
    assert_non_null(strstr(cg_last_error(), "binary_accuracy"));
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_mnist_loss(NULL, t));
    assert_null(cg_bce_with_logits(p, NULL));
    assert_true(isnan(cg_binary_accuracy(NULL, t)));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

static void test_binary_accuracy(void **state) {
    (void)state;
    cg_scope_begin();
    /* sigmoid(p) > 0.5 predicts 1: [1, 0, 1, 0, 0] vs t [1, 1, 0, 0, 0] */
    cg_tensor *p = cg_tensor_from_data((float[]){2, -1, 0.5f, -3, 0}, (int64_t[]){5, 1}, 2);
    cg_tensor *t = cg_tensor_from_data((float[]){1, 1, 0, 0, 0}, (int64_t[]){5}, 1);
    assert_float_equal(cg_binary_accuracy(p, t), 0.6, 1e-7);
    /* 1e-9's sigmoid rounds to exactly 0.5 in float: not above it */
    cg_tensor *tiny = cg_tensor_from_data((float[]){1e-9f}, (int64_t[]){1}, 1);
    assert_float_equal(cg_binary_accuracy(tiny, cg_tensor_zeros((int64_t[]){1}, 1)), 1, 0);
    cg_scope_end();
}

static cg_tensor *f_mnist_loss(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_mnist_loss(in[0], in[1]);
}
static cg_tensor *f_bce(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_bce_with_logits(in[0], in[1]);
}

static void test_grad_mnist_loss(void **state) {
    (void)state;
    cg_tensor *in[2] = {cg_test_uniform((int64_t[]){6, 1}, 2, -3, 3, 11, true),
                        cg_test_uniform((int64_t[]){6}, 1, 0, 1, 12, false)};
    for (int i = 0; i < 6; i++) in[1]->data[i] = (float)(i % 2);
    cg_check_grad(f_mnist_loss, in, 2, NULL, TOL);
    cg_tensor_release(in[0]);
    cg_tensor_release(in[1]);
}

static void test_grad_bce_with_logits(void **state) {
    (void)state;
    /* soft targets with a gradient of their own: dl/dt = -p */
    cg_tensor *in[2] = {cg_test_uniform((int64_t[]){7}, 1, -5, 5, 13, true),
                        cg_test_uniform((int64_t[]){7, 1}, 2, 0, 1, 14, true)};
    cg_check_grad(f_bce, in, 2, NULL, TOL);
    cg_tensor_release(in[0]);
    cg_tensor_release(in[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mnist_loss_values),
        cmocka_unit_test(test_bce_values),
        cmocka_unit_test(test_bce_large_logits),
        cmocka_unit_test(test_mnist_loss_matches_composite),
        cmocka_unit_test(test_bce_matches_composite),
        cmocka_unit_test(test_loss_size_errors),
        cmocka_unit_test(test_binary_accuracy),
        cmocka_unit_test(test_grad_mnist_loss),
        cmocka_unit_test(test_grad_bce_with_logits),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
