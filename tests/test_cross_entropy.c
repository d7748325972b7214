/* test_cross_entropy.c - softmax, log_softmax, nll_loss, the fused
 * cross_entropy and accuracy: values and gradients by hand, agreement with
 * nll_loss(log_softmax) and with the same loss built from single ops,
 * stability for logits of +-1000, every error, empty batches, and
 * finite-difference gradient checks (the test_grad_* ones). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOL 2e-3
#define LN2 0.69314718f
#define LN3 1.0986123f

/* Two rows whose softmax is known: e^[0, ln 2, ln 3] = [1, 2, 3], so
 * softmax = [1/6, 2/6, 3/6]; the second row is the first rotated. */
static const float Z6[] = {0, LN2, LN3, LN3, 0, LN2};
static const double S6[] = {1.0 / 6, 2.0 / 6, 3.0 / 6, 3.0 / 6, 1.0 / 6, 2.0 / 6};

static void test_softmax_values(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *z = cg_tensor_from_data(Z6, (int64_t[]){2, 3}, 2);
    cg_tensor *s = cg_tensor_softmax(z);
    cg_tensor *ls = cg_tensor_log_softmax(z);
    cg_assert_shape(s, (int64_t[]){2, 3}, 2);
    cg_assert_shape(ls, (int64_t[]){2, 3}, 2);
    for (int i = 0; i < 6; i++) {
        cg_assert_close(s->data[i], S6[i], 1e-7, 0, "softmax");
        cg_assert_close(ls->data[i], log(S6[i]), 1e-6, 0, "log_softmax");
    }
    cg_scope_end();
}

/* Rank 1 is one row; rank 3 is rows along its last dim. Each row against
 * e^z / sum e^z worked in double here, and log_softmax against its log. */
static void check_rows(const cg_tensor *z, const cg_tensor *s, const cg_tensor *ls) {
    const int64_t c = z->shape[z->ndim - 1];
    for (int64_t r = 0; r < z->numel / c; r++) {
        double sum = 0, total = 0;
        for (int64_t j = 0; j < c; j++) sum += exp(z->data[r * c + j]);
        for (int64_t j = 0; j < c; j++) {
            double want = exp(z->data[r * c + j]) / sum;
            cg_assert_close(s->data[r * c + j], want, 1e-7, 1e-6, "softmax row");
            cg_assert_close(ls->data[r * c + j], log(want), 1e-6, 1e-6, "log_softmax row");
            total += s->data[r * c + j];
        }
        cg_assert_close(total, 1, 1e-6, 0, "row sum");
    }
}

static void test_softmax_rank1_and_rank3(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *z1 = cg_tensor_from_data(Z6, (int64_t[]){3}, 1);
    cg_tensor *s1 = cg_tensor_softmax(z1);
    cg_assert_shape(s1, (int64_t[]){3}, 1);
    for (int i = 0; i < 3; i++) cg_assert_close(s1->data[i], S6[i], 1e-7, 0, "rank-1 softmax");
    check_rows(z1, s1, cg_tensor_log_softmax(z1));

    cg_tensor *z3 = cg_test_uniform((int64_t[]){2, 3, 4}, 3, -5, 5, 21, false);
    cg_tensor *s3 = cg_tensor_softmax(z3), *ls3 = cg_tensor_log_softmax(z3);
    cg_assert_shape(s3, (int64_t[]){2, 3, 4}, 3);
    cg_assert_shape(ls3, (int64_t[]){2, 3, 4}, 3);
    check_rows(z3, s3, ls3);
    cg_scope_end();
}

static void test_softmax_rows_sum_to_one(void **state) {
    (void)state;
    cg_tensor *z = cg_test_uniform((int64_t[]){64, 10}, 2, -60, 60, 22, false);
    cg_scope_begin();
    cg_tensor *s = cg_tensor_softmax(z), *ls = cg_tensor_log_softmax(z);
    for (int64_t r = 0; r < 64; r++) {
        double sum = 0, esum = 0;
        for (int64_t j = 0; j < 10; j++) {
            assert_true(s->data[r * 10 + j] >= 0 && s->data[r * 10 + j] <= 1);
            assert_true(ls->data[r * 10 + j] <= 0);
            sum += s->data[r * 10 + j];
            esum += exp(ls->data[r * 10 + j]);
        }
        cg_assert_close(sum, 1, 1e-6, 0, "sum of softmax row");
        cg_assert_close(esum, 1, 1e-6, 0, "sum of exp(log_softmax) row");
    }
    cg_scope_end();
    cg_tensor_release(z);
}

/* Targets [2, 1] pick 3/6 and 1/6: L = (ln 2 + ln 6) / 2, and
 * dL/dz = (softmax - onehot) / 2. nll_loss(log_softmax) says the same. */
static void test_cross_entropy_values(void **state) {
    (void)state;
    cg_tensor *z = cg_tensor_requires_grad(cg_tensor_from_data(Z6, (int64_t[]){2, 3}, 2), true);
    cg_tensor *t = cg_tensor_from_data((float[]){2, 1}, (int64_t[]){2}, 1);
    const double onehot[6] = {0, 0, 1, 0, 1, 0};
    cg_scope_begin();
    cg_tensor *loss = cg_cross_entropy(z, t);
    cg_assert_shape(loss, NULL, 0);
    cg_assert_close(cg_tensor_item(loss), (log(2.0) + log(6.0)) / 2, 1e-6, 0, "cross_entropy");
    assert_int_equal(cg_backward(loss), CG_OK);
    for (int i = 0; i < 6; i++)
        cg_assert_close(z->grad[i], (S6[i] - onehot[i]) / 2, 1e-7, 0, "dL/dz");
    cg_tensor_zero_grad(z);
    cg_tensor *nll = cg_nll_loss(cg_tensor_log_softmax(z), t);
    cg_assert_close(cg_tensor_item(nll), (log(2.0) + log(6.0)) / 2, 1e-6, 0, "nll_loss");
    assert_int_equal(cg_backward(nll), CG_OK);
    for (int i = 0; i < 6; i++)
        cg_assert_close(z->grad[i], (S6[i] - onehot[i]) / 2, 1e-7, 0, "dL/dz via nll");
    cg_scope_end();
    /* nll_loss alone: -(1/N) sum_i logp[i, t_i], gradient -1/N at the picks */
    cg_tensor *lp = cg_tensor_requires_grad(
        cg_tensor_from_data((float[]){-1, -2, -3, -4, -5, -6}, (int64_t[]){2, 3}, 2), true);
    cg_scope_begin();
    cg_tensor *nl = cg_nll_loss(lp, cg_tensor_from_data((float[]){0, 2}, (int64_t[]){2, 1}, 2));
    cg_assert_close(cg_tensor_item(nl), (1 + 6) / 2.0, 1e-7, 0, "nll_loss by hand");
    assert_int_equal(cg_backward(nl), CG_OK);
    cg_scope_end();
    const float want[6] = {-0.5f, 0, 0, 0, 0, -0.5f};
    for (int i = 0; i < 6; i++) cg_assert_close(lp->grad[i], want[i], 0, 0, "dnll/dlogp");
    cg_tensor_release(lp);
    cg_tensor_release(z);
    cg_tensor_release(t);
}

/* The fused op against nll_loss(log_softmax(z)) and against the loss built
 * from single ops, -mean(sum((z - log(sum(exp(z), -1))) * onehot, -1)):
 * values and gradients. */
static cg_tensor *composite_ce(cg_tensor *z, cg_tensor *onehot) {
    const int last[1] = {-1};
    cg_tensor *lse = cg_tensor_log(cg_tensor_sum_dims(cg_tensor_exp(z), last, 1, true));
    cg_tensor *picked = cg_tensor_sum_dims(cg_tensor_mul(cg_tensor_sub(z, lse), onehot), last, 1,
                                           false);
    return cg_tensor_neg(cg_tensor_mean(picked));
}

static void test_cross_entropy_matches_composite(void **state) {
    (void)state;
    enum { N = 12, C = 7 };
    cg_tensor *z = cg_test_uniform((int64_t[]){N, C}, 2, -4, 4, 23, true);
    cg_tensor *t = cg_tensor_zeros((int64_t[]){N}, 1);
    cg_tensor *onehot = cg_tensor_zeros((int64_t[]){N, C}, 2);
    for (int i = 0; i < N; i++) {
        t->data[i] = (float)((i * 5 + 3) % C);
        onehot->data[i * C + (i * 5 + 3) % C] = 1;
    }
    float fused[N * C], via_nll[N * C];
    cg_scope_begin();
    cg_tensor *lf = cg_cross_entropy(z, t);
    assert_int_equal(cg_backward(lf), CG_OK);
    memcpy(fused, z->grad, sizeof fused);
    cg_tensor_zero_grad(z);
    cg_tensor *ln = cg_nll_loss(cg_tensor_log_softmax(z), t);
    assert_int_equal(cg_backward(ln), CG_OK);
    memcpy(via_nll, z->grad, sizeof via_nll);
    cg_tensor_zero_grad(z);
    cg_tensor *lc = composite_ce(z, onehot);
    assert_int_equal(cg_backward(lc), CG_OK);
    cg_assert_close(cg_tensor_item(lf), cg_tensor_item(ln), 1e-6, 1e-6, "fused vs nll");
    cg_assert_close(cg_tensor_item(lf), cg_tensor_item(lc), 1e-6, 1e-6, "fused vs composite");
    for (int i = 0; i < N * C; i++) {
        cg_assert_close(fused[i], via_nll[i], 1e-7, 1e-5, "grad vs nll");
        cg_assert_close(fused[i], z->grad[i], 1e-7, 1e-5, "grad vs composite");
    }
    /* softmax against exp(z) / sum(exp(z), -1) */
    const int last[1] = {-1};
    cg_tensor *e = cg_tensor_exp(z);
    cg_tensor *sc = cg_tensor_div(e, cg_tensor_sum_dims(e, last, 1, true));
    cg_tensor *s = cg_tensor_softmax(z);
    for (int i = 0; i < N * C; i++) cg_assert_close(s->data[i], sc->data[i], 1e-8, 1e-6, "softmax");
    cg_scope_end();
    cg_tensor_release(z);
    cg_tensor_release(t);
    cg_tensor_release(onehot);
}

/* e^1000 overflows float; shifted by the row's max nothing does. Row 0 is
 * certain of class 0 and told class 1: l = 2000; row 1 is uniform: ln 3. */
static void test_large_logits(void **state) {
    (void)state;
    cg_tensor *z = cg_tensor_requires_grad(
        cg_tensor_from_data((float[]){1000, -1000, 0, -1000, -1000, -1000}, (int64_t[]){2, 3}, 2),
        true);
    cg_tensor *t = cg_tensor_from_data((float[]){1, 0}, (int64_t[]){2}, 1);
    cg_scope_begin();
    cg_tensor *s = cg_tensor_softmax(z), *ls = cg_tensor_log_softmax(z);
    const float ws[6] = {1, 0, 0, 1.0f / 3, 1.0f / 3, 1.0f / 3};
    const float wls[6] = {0, -2000, -1000, -LN3, -LN3, -LN3};
    cg_assert_tensor(s, ws, 6, 1e-7);
    cg_assert_tensor(ls, wls, 6, 1e-6);
    cg_tensor *loss = cg_cross_entropy(z, t);
    cg_assert_close(cg_tensor_item(loss), (2000 + log(3.0)) / 2, 1e-4, 0, "cross_entropy");
    cg_assert_close(cg_tensor_item(cg_nll_loss(ls, t)), (2000 + log(3.0)) / 2, 1e-4, 0, "nll");
    assert_int_equal(cg_backward(loss), CG_OK);
    const double wg[6] = {0.5, -0.5, 0, (1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6};
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(z->grad[i]));
        cg_assert_close(z->grad[i], wg[i], 1e-7, 0, "dL/dz at +-1000");
    }
    /* softmax's and log_softmax's own gradients stay finite too */
    cg_tensor_zero_grad(z);
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(s, ls))), CG_OK);
    for (int i = 0; i < 6; i++) assert_true(isfinite(z->grad[i]));
    cg_scope_end();
    cg_tensor_release(z);
    cg_tensor_release(t);
}

static void test_cross_entropy_shape_errors(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *z = cg_tensor_zeros((int64_t[]){4, 10}, 2);
    cg_tensor *t3 = cg_tensor_zeros((int64_t[]){3}, 1);
    assert_null(cg_cross_entropy(z, t3));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_string_equal(cg_last_error(), "cross_entropy: logits [4, 10] and targets [3] do not "
                                         "match: targets must be [4] or [4, 1]");
    assert_null(cg_nll_loss(z, t3));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "nll_loss: logp [4, 10] and targets [3]"));
    cg_clear_error();
    /* [N, 2] and [1, N] targets do not fit either */
    assert_null(cg_cross_entropy(z, cg_tensor_zeros((int64_t[]){4, 2}, 2)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    cg_clear_error();
    assert_null(cg_cross_entropy(z, cg_tensor_zeros((int64_t[]){1, 4}, 2)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    /* logits must be [N, C], C >= 1 */
    cg_tensor *t4 = cg_tensor_zeros((int64_t[]){4}, 1);
    assert_null(cg_cross_entropy(cg_tensor_zeros((int64_t[]){4}, 1), t4));
    assert_string_equal(cg_last_error(), "cross_entropy: logits [4] must be [N, C] with C >= 1 "
                                         "classes (targets [4])");
    cg_clear_error();
    assert_null(cg_cross_entropy(cg_tensor_zeros((int64_t[]){4, 10, 1}, 3), t4));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    cg_clear_error();
    assert_null(cg_nll_loss(cg_tensor_zeros((int64_t[]){4, 0}, 2), t4));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "nll_loss: logp [4, 0] must be [N, C]"));
    cg_clear_error();
    assert_null(cg_cross_entropy(cg_tensor_scalar(1), cg_tensor_scalar(0)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    /* softmax needs a last dim */
    cg_clear_error();
    assert_null(cg_tensor_softmax(cg_tensor_scalar(1)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "softmax: needs a tensor of rank >= 1"));
    cg_clear_error();
    assert_null(cg_tensor_log_softmax(cg_tensor_scalar(1)));
    assert_non_null(strstr(cg_last_error(), "log_softmax: needs a tensor of rank >= 1"));
    /* accuracy: rows differ, or no classes */
    cg_clear_error();
    assert_true(isnan(cg_accuracy(z, t3)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_string_equal(cg_last_error(),
                        "accuracy: logits [4, 10] and targets [3] differ in rows (4 vs 3)");
    cg_clear_error();
    assert_true(isnan(cg_accuracy(cg_tensor_zeros((int64_t[]){4, 0}, 2), t4)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    cg_clear_error();
    assert_true(isnan(cg_accuracy(cg_tensor_scalar(1), t4)));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    cg_clear_error();
    cg_scope_end();
}

/* A target must be a whole number in 0..C-1: one that is not is an
 * argument error naming it and its row, for either loss. */
static void expect_bad_target(float bad, const char *shown) {
    cg_tensor *z = cg_tensor_zeros((int64_t[]){5, 10}, 2);
    cg_tensor *t = cg_tensor_from_data((float[]){0, 9, 1, bad, 2}, (int64_t[]){5, 1}, 2);
    char want[128];
    snprintf(want, sizeof want, "cross_entropy: target %s at row 3 is not a class index 0..9",
             shown);
    cg_clear_error();
    assert_null(cg_cross_entropy(z, t));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_string_equal(cg_last_error(), want);
    snprintf(want, sizeof want, "nll_loss: target %s at row 3 is not a class index 0..9", shown);
    cg_clear_error();
    assert_null(cg_nll_loss(z, t));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_string_equal(cg_last_error(), want);
}

static void test_cross_entropy_target_errors(void **state) {
    (void)state;
    cg_scope_begin();
    expect_bad_target(12, "12");
    expect_bad_target(10, "10"); /* == C */
    expect_bad_target(-1, "-1");
    expect_bad_target(2.5f, "2.5");
    expect_bad_target(1e30f, "1e+30");
    expect_bad_target(INFINITY, "inf");
    /* NaN prints as "nan" or "-nan" by its sign bit: match the rest */
    cg_tensor *z = cg_tensor_zeros((int64_t[]){5, 10}, 2);
    cg_tensor *t = cg_tensor_from_data((float[]){0, 9, 1, NAN, 2}, (int64_t[]){5}, 1);
    cg_clear_error();
    assert_null(cg_cross_entropy(z, t));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "nan at row 3 is not a class index 0..9"));
    /* -0 is class 0; the same targets without the bad one are fine */
    t->data[3] = -0.0f;
    assert_non_null(cg_cross_entropy(z, t));
    assert_non_null(cg_nll_loss(z, t));
    cg_clear_error();
    cg_scope_end();
}

/* NULL in, NULL (or NaN) out, with the last error left alone. */
static void test_cross_entropy_null_inputs(void **state) {
    (void)state;
    cg_scope_begin();
    cg_tensor *z = cg_tensor_zeros((int64_t[]){2, 3}, 2);
    cg_tensor *t = cg_tensor_zeros((int64_t[]){2}, 1);
    cg_fail(CG_ERR_ARG, "earlier");
    assert_null(cg_tensor_softmax(NULL));
    assert_null(cg_tensor_log_softmax(NULL));
    assert_null(cg_cross_entropy(NULL, t));
    assert_null(cg_cross_entropy(z, NULL));
    assert_null(cg_nll_loss(NULL, t));
    assert_null(cg_nll_loss(z, NULL));
    assert_true(isnan(cg_accuracy(NULL, t)));
    assert_true(isnan(cg_accuracy(z, NULL)));
    /* a failed op upstream flows through a whole expression */
    assert_null(cg_cross_entropy(cg_tensor_log_softmax(cg_tensor_softmax(NULL)), t));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_string_equal(cg_last_error(), "earlier");
    cg_clear_error();
    cg_scope_end();
}

/* N = 0: the mean of nothing is NaN, backward adds nothing, no crash. */
static void test_cross_entropy_empty_batch(void **state) {
    (void)state;
    cg_tensor *z = cg_tensor_requires_grad(cg_tensor_zeros((int64_t[]){0, 10}, 2), true);
    cg_tensor *t = cg_tensor_zeros((int64_t[]){0}, 1);
    cg_scope_begin();
    cg_tensor *loss = cg_cross_entropy(z, t);
    assert_non_null(loss);
    assert_true(isnan(cg_tensor_item(loss)));
    assert_int_equal(cg_backward(loss), CG_OK);
    cg_tensor *s = cg_tensor_softmax(z);
    cg_assert_shape(s, (int64_t[]){0, 10}, 2);
    cg_tensor *nll = cg_nll_loss(cg_tensor_log_softmax(z), t);
    assert_non_null(nll);
    assert_true(isnan(cg_tensor_item(nll)));
    assert_int_equal(cg_backward(nll), CG_OK);
    assert_true(isnan(cg_accuracy(z, t)));
    /* an empty last dim is empty rows for softmax */
    cg_assert_shape(cg_tensor_softmax(cg_tensor_zeros((int64_t[]){3, 0}, 2)), (int64_t[]){3, 0},
                    2);
    cg_scope_end();
    cg_tensor_release(z);
    cg_tensor_release(t);
}

/* Targets only pick a term: even when they ask for one they get no
 * gradient, and the logits' gradient is the same as without. */
static void test_cross_entropy_targets_no_grad(void **state) {
    (void)state;
    cg_tensor *z = cg_test_uniform((int64_t[]){4, 3}, 2, -2, 2, 24, true);
    cg_tensor *t = cg_tensor_requires_grad(
        cg_tensor_from_data((float[]){0, 2, 1, 2}, (int64_t[]){4}, 1), true);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_cross_entropy(z, t)), CG_OK);
    assert_int_equal(cg_backward(cg_nll_loss(z, t)), CG_OK);
    cg_scope_end();
    if (t->grad)
        for (int i = 0; i < 4; i++) assert_true(t->grad[i] == 0.0f);
    /* targets alone asking for a gradient: backward runs, adds nothing */
    cg_tensor_requires_grad(z, false);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_cross_entropy(z, t)), CG_OK);
    cg_scope_end();
    if (t->grad)
        for (int i = 0; i < 4; i++) assert_true(t->grad[i] == 0.0f);
    cg_tensor_release(z);
    cg_tensor_release(t);
}

static void test_accuracy(void **state) {
    (void)state;
    cg_scope_begin();
    /* argmax rows: 2, 0 (tie: the first), 1, 2; NaN wins like argmax: 1 */
    cg_tensor *z = cg_tensor_from_data(
        (float[]){0, 1, 5, 3, 3, 1, -1, 7, 2, 0, 0, 0.5f, 1, NAN, 2}, (int64_t[]){5, 3}, 2);
    cg_tensor *t = cg_tensor_from_data((float[]){2, 1, 1, 0, 1}, (int64_t[]){5}, 1);
    assert_float_equal(cg_accuracy(z, t), 0.6, 1e-7);
    t->data[1] = 0; /* the tie's first max */
    assert_float_equal(cg_accuracy(z, t), 0.8, 1e-7);
    /* [N, 1] targets; a non-index target is a miss, not an error */
    cg_tensor *t1 = cg_tensor_from_data((float[]){2, 0, 1, 2, 7}, (int64_t[]){5, 1}, 2);
    assert_float_equal(cg_accuracy(z, t1), 0.8, 1e-7);
    assert_int_equal(cg_last_status(), CG_OK);
    /* agrees with argmax on random logits, any rank */
    cg_tensor *r = cg_test_uniform((int64_t[]){4, 8, 10}, 3, -1, 1, 25, false);
    cg_tensor *am = cg_tensor_argmax(r, -1, false);
    cg_tensor *tr = cg_tensor_zeros((int64_t[]){32}, 1);
    int hits = 0;
    for (int i = 0; i < 32; i++) {
        tr->data[i] = (float)(i % 10);
        hits += am->data[i] == tr->data[i];
    }
    assert_float_equal(cg_accuracy(r, tr), hits / 32.0, 1e-7);
    cg_scope_end();
}

static cg_tensor *f_softmax(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_softmax(in[0]);
}
static cg_tensor *f_log_softmax(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_tensor_log_softmax(in[0]);
}
static cg_tensor *f_nll_loss(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_nll_loss(in[0], in[1]);
}
static cg_tensor *f_cross_entropy(cg_tensor *const *in, void *ctx) {
    (void)ctx;
    return cg_cross_entropy(in[0], in[1]);
}

/* Shapes of rank 1, 2 and 3 for the row ops. */
static void check_rows_grad(cg_test_fn f) {
    const int64_t shapes[3][3] = {{6}, {3, 5}, {2, 3, 4}};
    for (int k = 0; k < 3; k++) {
        cg_tensor *in[1] = {cg_test_uniform(shapes[k], k + 1, -3, 3, 30 + (uint64_t)k, true)};
        cg_check_grad(f, in, 1, NULL, TOL);
        cg_tensor_release(in[0]);
    }
}

static void test_grad_softmax(void **state) {
    (void)state;
    check_rows_grad(f_softmax);
}

static void test_grad_log_softmax(void **state) {
    (void)state;
    check_rows_grad(f_log_softmax);
}

static void test_grad_nll_loss(void **state) {
    (void)state;
    /* gradient wrt logp; the targets are fixed and get none */
    cg_tensor *in[2] = {cg_test_uniform((int64_t[]){5, 4}, 2, -4, 0, 40, true),
                        cg_tensor_from_data((float[]){3, 0, 1, 3, 2}, (int64_t[]){5}, 1)};
    cg_check_grad(f_nll_loss, in, 2, NULL, TOL);
    cg_tensor_release(in[0]);
    cg_tensor_release(in[1]);
}

static void test_grad_cross_entropy(void **state) {
    (void)state;
    cg_tensor *in[2] = {cg_test_uniform((int64_t[]){6, 5}, 2, -4, 4, 41, true),
                        cg_tensor_from_data((float[]){4, 0, 2, 2, 1, 3}, (int64_t[]){6, 1}, 2)};
    cg_check_grad(f_cross_entropy, in, 2, NULL, TOL);
    /* one class: the loss is 0 whatever the logits, and so is its gradient */
    cg_tensor *one[2] = {cg_test_uniform((int64_t[]){3, 1}, 2, -4, 4, 42, true),
                         cg_tensor_zeros((int64_t[]){3}, 1)};
    cg_check_grad(f_cross_entropy, one, 2, NULL, TOL);
    cg_tensor_release(in[0]);
    cg_tensor_release(in[1]);
    cg_tensor_release(one[0]);
    cg_tensor_release(one[1]);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_softmax_values),
    cmocka_unit_test(test_softmax_rank1_and_rank3),
    cmocka_unit_test(test_softmax_rows_sum_to_one),
    cmocka_unit_test(test_cross_entropy_values),
    cmocka_unit_test(test_cross_entropy_matches_composite),
    cmocka_unit_test(test_large_logits),
    cmocka_unit_test(test_cross_entropy_shape_errors),
    cmocka_unit_test(test_cross_entropy_target_errors),
    cmocka_unit_test(test_cross_entropy_null_inputs),
    cmocka_unit_test(test_cross_entropy_empty_batch),
    cmocka_unit_test(test_cross_entropy_targets_no_grad),
    cmocka_unit_test(test_accuracy),
    cmocka_unit_test(test_grad_softmax),
    cmocka_unit_test(test_grad_log_softmax),
    cmocka_unit_test(test_grad_nll_loss),
    cmocka_unit_test(test_grad_cross_entropy),
};

CG_TEST_MAIN(tests)
