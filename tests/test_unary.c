/* test_unary.c - neg, exp, log, abs, sqrt, pow, sigmoid, relu, maximum_scalar:
 * forward values worked out by hand, and each gradient against finite
 * differences on several shapes. */
#include "testutil.h"

#include <math.h>

#define TOL 2e-3

typedef cg_tensor *(*unary_fn)(cg_tensor *);

/* Shapes every gradient check runs on: a scalar up to rank 3. */
static const struct {
    int64_t shape[3];
    int ndim;
} SHAPES[] = {{{0}, 0}, {{5}, 1}, {{3, 4}, 2}, {{2, 3, 2}, 3}};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

static cg_tensor *apply_unary(cg_tensor *const *in, void *ctx) { return (*(unary_fn *)ctx)(in[0]); }

/* Gradient check of fn on every shape with inputs in [lo, hi), moved at
 * least 0.05 away from `kink` (where fn has no derivative), if kink is finite. */
static void check_unary(unary_fn fn, float lo, float hi, float kink) {
    for (int s = 0; s < N_SHAPES; s++) {
        cg_tensor *x = cg_test_uniform(SHAPES[s].shape, SHAPES[s].ndim, lo, hi, 100 + s, true);
        if (isfinite(kink))
            for (int64_t i = 0; i < x->numel; i++)
                if (fabsf(x->data[i] - kink) < 0.05f) x->data[i] = kink + 0.1f;
        cg_check_grad(apply_unary, &x, 1, &fn, TOL);
        cg_tensor_release(x);
    }
}

/* Forward of fn on `in` against `expect`. */
static void check_forward(unary_fn fn, const float *in, const float *expect, int n, double atol) {
    int64_t shape[1] = {n};
    cg_tensor *x = cg_tensor_from_data(in, shape, 1);
    cg_tensor *y = fn(x);
    cg_assert_shape(y, shape, 1);
    cg_assert_tensor(y, expect, n, atol);
    cg_tensor_release(y);
    cg_tensor_release(x);
}

static float pow_exponent;
static cg_tensor *pow_by(cg_tensor *x) { return cg_tensor_pow(x, pow_exponent); }
static float max_floor;
static cg_tensor *maximum_by(cg_tensor *x) { return cg_tensor_maximum_scalar(x, max_floor); }

static void test_unary_forward(void **state) {
    (void)state;
    const float e = 2.718281828f;
    check_forward(cg_tensor_neg, (float[]){1, -2, 0}, (float[]){-1, 2, 0}, 3, 0);
    check_forward(cg_tensor_exp, (float[]){0, 1, -1}, (float[]){1, e, 1 / e}, 3, 1e-6);
    check_forward(cg_tensor_log, (float[]){1, e, 0.25f}, (float[]){0, 1, -1.3862944f}, 3, 1e-6);
    check_forward(cg_tensor_abs, (float[]){-3, 0, 2.5f}, (float[]){3, 0, 2.5f}, 3, 0);
    check_forward(cg_tensor_sqrt, (float[]){4, 0, 2}, (float[]){2, 0, 1.41421356f}, 3, 1e-6);
    check_forward(cg_tensor_relu, (float[]){-1, 0, 3}, (float[]){0, 0, 3}, 3, 0);
    pow_exponent = 2;
    check_forward(pow_by, (float[]){-3, 0.5f, 2}, (float[]){9, 0.25f, 4}, 3, 0);
    pow_exponent = 3;
    check_forward(pow_by, (float[]){-2, 0.5f, 3}, (float[]){-8, 0.125f, 27}, 3, 1e-5);
    pow_exponent = 0.5f;
    check_forward(pow_by, (float[]){9, 2, 0}, (float[]){3, 1.41421356f, 0}, 3, 1e-6);
    max_floor = 0.5f;
    check_forward(maximum_by, (float[]){-1, 0.5f, 2}, (float[]){0.5f, 0.5f, 2}, 3, 0);
    /* sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4 */
    check_forward(cg_tensor_sigmoid, (float[]){0, 1.0986123f, -1.0986123f},
                  (float[]){0.5f, 0.75f, 0.25f}, 3, 1e-6);
}

/* Neither branch may overflow: sigmoid(+-1000) is exactly 1 and 0 (the
 * naive 1 / (1 + e^1000) would form inf), and sigmoid(-80) = e^-80 / (1 +
 * e^-80) keeps its relative precision where 1 - sigmoid(80) could not.
 * sigmoid(x) + sigmoid(-x) == 1 over a range ties the two branches. */
static void test_sigmoid_stable(void **state) {
    (void)state;
    check_forward(cg_tensor_sigmoid, (float[]){1000, -1000, 88, -88, 100},
                  (float[]){1, 0, 1, expf(-88), 1}, 5, 1e-30);
    int64_t n = 41;
    cg_tensor *x = cg_tensor_arange(-100, 105, 5);
    assert_int_equal(x->numel, n);
    cg_tensor *s = cg_tensor_sigmoid(x);
    for (int64_t i = 0; i < n; i++) {
        assert_true(isfinite(s->data[i]));
        assert_true(s->data[i] >= 0.0f && s->data[i] <= 1.0f);
        cg_assert_close(s->data[i] + s->data[n - 1 - i], 1.0, 1e-6, 0, "s(x) + s(-x)");
    }
    cg_assert_close(s->data[4], exp(-80.0), 0, 1e-5, "sigmoid(-80)"); /* x[4] = -80 */
    cg_tensor_release(s);
    cg_tensor_release(x);
}

/* At the kink: relu'(0) = 0 (PyTorch), maximum's tie splits: 1/2. */
static void test_clamp_tie_gradients(void **state) {
    (void)state;
    int64_t shape[1] = {3};
    cg_tensor *x =
        cg_tensor_requires_grad(cg_tensor_from_data((float[]){-1, 0, 2}, shape, 1), true);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_relu(x))), CG_OK);
    cg_scope_end();
    assert_float_equal(x->grad[0], 0, 0);
    assert_float_equal(x->grad[1], 0, 0);
    assert_float_equal(x->grad[2], 1, 0);
    cg_tensor_zero_grad(x);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_maximum_scalar(x, 0))), CG_OK);
    cg_scope_end();
    assert_float_equal(x->grad[0], 0, 0);
    assert_float_equal(x->grad[1], 0.5, 0);
    assert_float_equal(x->grad[2], 1, 0);
    cg_tensor_release(x);
}

/* NULL in, NULL out, and the last error is left alone. */
static void test_unary_null(void **state) {
    (void)state;
    unary_fn fns[] = {cg_tensor_neg,  cg_tensor_exp,     cg_tensor_log,  cg_tensor_abs,
                      cg_tensor_sqrt, cg_tensor_sigmoid, cg_tensor_relu, pow_by,
                      maximum_by};
    cg_fail(CG_ERR_ARG, "earlier");
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) assert_null(fns[i](NULL));
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
}

/* pow keeps its exponent per tensor (not in a global), so two pows in one
 * graph differentiate with their own exponents: d/dx (x^2 + x^3) = 2x + 3x^2. */
static void test_pow_two_exponents(void **state) {
    (void)state;
    cg_tensor *x = cg_tensor_requires_grad(cg_tensor_scalar(2), true);
    cg_scope_begin();
    cg_tensor *y = cg_tensor_add(cg_tensor_pow(x, 2), cg_tensor_pow(x, 3));
    assert_float_equal(cg_tensor_item(y), 12, 1e-6);
    assert_int_equal(cg_backward(y), CG_OK);
    cg_scope_end();
    assert_float_equal(x->grad[0], 16, 1e-5);
    cg_tensor_release(x);
}

static void test_grad_neg(void **state) {
    (void)state;
    check_unary(cg_tensor_neg, -2, 2, NAN);
}
static void test_grad_exp(void **state) {
    (void)state;
    check_unary(cg_tensor_exp, -2, 2, NAN);
}
static void test_grad_log(void **state) {
    (void)state;
    check_unary(cg_tensor_log, 0.2f, 3, NAN);
}
static void test_grad_abs(void **state) {
    (void)state;
    check_unary(cg_tensor_abs, -2, 2, 0);
}
static void test_grad_sqrt(void **state) {
    (void)state;
    check_unary(cg_tensor_sqrt, 0.2f, 4, NAN);
}
static void test_grad_pow(void **state) {
    (void)state;
    const float exps[] = {2, 3, 0.5f, -1.5f, 1, 0};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        pow_exponent = exps[i];
        check_unary(pow_by, 0.3f, 2, NAN); /* x > 0: fractional powers are real */
    }
    pow_exponent = 3;
    check_unary(pow_by, -2, 2, NAN); /* odd integer power of negatives */
}
static void test_grad_sigmoid(void **state) {
    (void)state;
    check_unary(cg_tensor_sigmoid, -6, 6, NAN);
}
static void test_grad_relu(void **state) {
    (void)state;
    check_unary(cg_tensor_relu, -2, 2, 0);
}
static void test_grad_maximum_scalar(void **state) {
    (void)state;
    max_floor = 0.3f;
    check_unary(maximum_by, -2, 2, max_floor);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_forward),
        cmocka_unit_test(test_sigmoid_stable),
        cmocka_unit_test(test_clamp_tie_gradients),
        cmocka_unit_test(test_unary_null),
        cmocka_unit_test(test_pow_two_exponents),
        cmocka_unit_test(test_grad_neg),
        cmocka_unit_test(test_grad_exp),
        cmocka_unit_test(test_grad_log),
        cmocka_unit_test(test_grad_abs),
        cmocka_unit_test(test_grad_sqrt),
        cmocka_unit_test(test_grad_pow),
        cmocka_unit_test(test_grad_sigmoid),
        cmocka_unit_test(test_grad_relu),
        cmocka_unit_test(test_grad_maximum_scalar),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
