/* test_autograd.c - the engine end to end: the article's linear model and
 * mnist_loss against a gradient derived by hand, accumulation, no-grad
 * mode, backward's errors, detach, scopes (run under ASan for leaks) and
 * the SGD step. */
#include "testutil.h"

#include <pthread.h>
#include <string.h>

#include <math.h>
#include <string.h>

#define LN3 1.0986123f

/*
 * The article's model and loss on 4 samples of 3 pixels:
 *   linear1(x) = x @ w + b,  mnist_loss(p, t) = mean(where(t == 1, 1 - s, s)), s = sigmoid(p)
 * with w = [ln 3, -ln 3, 0], b = 0 and
 *   x0 = [1, 1, 5]  z0 = 0      s0 = 1/2  t0 = 1
 *   x1 = [1, 0, 0]  z1 = ln 3   s1 = 3/4  t1 = 1
 *   x2 = [0, 1, 0]  z2 = -ln 3  s2 = 1/4  t2 = 1
 *   x3 = [0, 0, 2]  z3 = 0      s3 = 1/2  t3 = 0
 * Loss: l = [1 - 1/2, 1 - 3/4, 1 - 1/4, 1/2] = [1/2, 1/4, 3/4, 1/2], L = 2/4 = 1/2.
 * Chain rule: dL/dz_i = (1/4) c_i s_i (1 - s_i), c_i = -1 where t_i = 1, else +1:
 *   dL/dz = [-(1/4)(1/4), -(1/4)(3/16), -(1/4)(3/16), (1/4)(1/4)]
 *         = [-1/16, -3/64, -3/64, 1/16]
 * and z_i = sum_j x_ij w_j + b gives dL/dw_j = sum_i dL/dz_i x_ij, dL/db = sum_i dL/dz_i:
 *   dL/dw0 = 1(-1/16) + 1(-3/64)           = -7/64
 *   dL/dw1 = 1(-1/16) + 1(-3/64)           = -7/64
 *   dL/dw2 = 5(-1/16) + 2(1/16)            = -3/16
 *   dL/db  = -1/16 - 3/64 - 3/64 + 1/16    = -3/32
 */
static const float X[12] = {1, 1, 5, 1, 0, 0, 0, 1, 0, 0, 0, 2};
static const float T[4] = {1, 1, 1, 0};
static const float DW[3] = {-7.0f / 64, -7.0f / 64, -3.0f / 16};
static const float DB = -3.0f / 32;

typedef struct model {
    cg_tensor *x, *t, *w, *b;
} model;

static model make_model(void) {
    model m;
    m.x = cg_tensor_from_data(X, (int64_t[]){4, 3}, 2);
    m.t = cg_tensor_from_data(T, (int64_t[]){4, 1}, 2); /* train_y.unsqueeze(1) */
    m.w = cg_tensor_requires_grad(
        cg_tensor_from_data((float[]){LN3, -LN3, 0}, (int64_t[]){3, 1}, 2), true);
    m.b = cg_tensor_requires_grad(cg_tensor_zeros((int64_t[]){1}, 1), true);
    return m;
}

static void free_model(model *m) {
    cg_tensor_release(m->x);
    cg_tensor_release(m->t);
    cg_tensor_release(m->w);
    cg_tensor_release(m->b);
}

static cg_tensor *linear1(const model *m) {
    return cg_tensor_add(cg_tensor_matmul(m->x, m->w), m->b);
}

/* The article's mnist_loss written out from single ops. */
static cg_tensor *mnist_loss_ops(cg_tensor *p, cg_tensor *t) {
    cg_tensor *one = cg_tensor_scalar(1);
    cg_tensor *s = cg_tensor_sigmoid(p);
    return cg_tensor_mean(cg_tensor_where(cg_tensor_eq(t, one), cg_tensor_sub(one, s), s));
}

static void assert_model_grads(const model *m, float factor) {
    for (int j = 0; j < 3; j++) cg_assert_close(m->w->grad[j], factor * DW[j], 1e-7, 0, "dL/dw");
    cg_assert_close(m->b->grad[0], factor * DB, 1e-7, 0, "dL/db");
}

static void test_linear_mnist_loss_hand_gradient(void **state) {
    (void)state;
    model m = make_model();
    cg_scope_begin();
    cg_tensor *preds = linear1(&m);
    cg_assert_shape(preds, (int64_t[]){4, 1}, 2);
    cg_tensor *loss = cg_mnist_loss(preds, m.t);
    cg_assert_close(cg_tensor_item(loss), 0.5, 1e-7, 0, "loss");
    assert_int_equal(cg_backward(loss), CG_OK);
    assert_model_grads(&m, 1);
    /* the same through where/sigmoid/mean */
    cg_tensor_zero_grad(m.w);
    cg_tensor_zero_grad(m.b);
    loss = mnist_loss_ops(linear1(&m), m.t);
    cg_assert_close(cg_tensor_item(loss), 0.5, 1e-7, 0, "loss from single ops");
    assert_int_equal(cg_backward(loss), CG_OK);
    assert_model_grads(&m, 1);
    cg_scope_end();
    /* intermediate gradients are gone, the leaves' stay */
    assert_non_null(m.w->grad);
    assert_null(m.x->grad);
    free_model(&m);
}

/* backward adds: twice on one graph, or on two graphs, doubles the grads. */
static void test_backward_accumulates(void **state) {
    (void)state;
    model m = make_model();
    cg_scope_begin();
    cg_tensor *loss = cg_mnist_loss(linear1(&m), m.t);
    assert_int_equal(cg_backward(loss), CG_OK);
    assert_int_equal(cg_backward(loss), CG_OK);
    assert_model_grads(&m, 2);
    cg_scope_end();
    cg_tensor_zero_grad(m.w);
    cg_tensor_zero_grad(m.b);
    for (int step = 0; step < 2; step++) {
        cg_scope_begin();
        assert_int_equal(cg_backward(mnist_loss_ops(linear1(&m), m.t)), CG_OK);
        cg_scope_end();
    }
    assert_model_grads(&m, 2);
    free_model(&m);
}

/* A result made with grad mode off is outside any graph. */
static void assert_unlinked(const cg_tensor *r) {
    assert_non_null(r);
    assert_null(r->op);
    assert_false(r->requires_grad);
    for (int i = 0; i < 3; i++) assert_null(r->src[i]);
}

static void test_no_grad_records_nothing(void **state) {
    (void)state;
    model m = make_model();
    assert_true(cg_grad_enabled());
    bool prev = cg_set_grad_enabled(false);
    assert_true(prev);
    assert_false(cg_grad_enabled());
    cg_scope_begin();
    cg_tensor *preds = linear1(&m);
    cg_tensor *results[] = {
        cg_tensor_matmul(m.x, m.w),
        preds,
        cg_mnist_loss(preds, m.t),
        cg_bce_with_logits(preds, m.t),
        cg_tensor_sigmoid(m.w),
        cg_tensor_relu(m.w),
        cg_tensor_pow(m.w, 2),
        cg_tensor_sum(m.w),
        cg_tensor_mean_dims(m.w, (int[]){0}, 1, false),
        cg_tensor_max(m.w, 0, false),
        cg_tensor_reshape(m.w, (int64_t[]){-1}, 1),
        cg_tensor_rows(m.w, 0, 2),
        cg_tensor_transpose(m.w),
        cg_tensor_index_select(m.w, (int64_t[]){2, 2}, 2),
        cg_tensor_cat((cg_tensor *[]){m.w, m.w, m.w, m.w}, 4, 0),
        cg_tensor_where(m.t, preds, m.b),
    };
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) assert_unlinked(results[i]);
    /* no references held: only this test's own */
    assert_int_equal(m.w->refcount, 1);
    assert_int_equal(m.b->refcount, 1);
    assert_int_equal(cg_backward(cg_tensor_sum(preds)), CG_ERR_STATE);
    cg_scope_end();
    cg_set_grad_enabled(prev);
    assert_null(m.w->grad);
    free_model(&m);
}

static void test_backward_errors(void **state) {
    (void)state;
    model m = make_model();
    cg_scope_begin();
    cg_tensor *preds = linear1(&m);
    assert_int_equal(cg_backward(preds), CG_ERR_SHAPE); /* [4,1]: not one element */
    assert_non_null(strstr(cg_last_error(), "backward"));
    assert_int_equal(cg_backward(cg_tensor_sum(m.x)), CG_ERR_STATE); /* nothing requires grad */
    assert_non_null(strstr(cg_last_error(), "backward"));
    cg_clear_error();
    assert_int_equal(cg_backward(NULL), CG_ERR_ARG);
    /* a failed expression reports its own error through backward */
    cg_tensor *bad = cg_tensor_sum(cg_tensor_matmul(m.w, m.x));
    assert_null(bad);
    assert_int_equal(cg_backward(bad), CG_ERR_SHAPE);
    assert_string_equal(cg_last_error(), "matmul: cannot multiply 3x1 by 4x3");
    cg_clear_error();
    cg_scope_end();
    assert_null(m.w->grad);
    free_model(&m);
}

static void test_detach(void **state) {
    (void)state;
    cg_tensor *x =
        cg_tensor_requires_grad(cg_tensor_from_data((float[]){1, 2, 3}, (int64_t[]){3}, 1), true);
    cg_scope_begin();
    cg_tensor *d = cg_tensor_detach(x);
    assert_ptr_equal(d->data, x->data);
    assert_unlinked(d);
    /* d(sum(x * detach(x)))/dx = detach(x): the detached factor is a constant */
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(x, d))), CG_OK);
    cg_assert_close(x->grad[0], 1, 0, 0, "grad");
    cg_assert_close(x->grad[1], 2, 0, 0, "grad");
    cg_assert_close(x->grad[2], 3, 0, 0, "grad");
    assert_null(d->grad);
    assert_int_equal(cg_backward(cg_tensor_sum(d)), CG_ERR_STATE);
    cg_clear_error();
    cg_scope_end();
    assert_int_equal(x->refcount, 1);
    cg_tensor_release(x);
}

/* A scope ends every tensor made inside it and the graph they formed; a
 * retained result survives alone. ASan's leak check at exit covers the
 * rest (this test runs clean under -DCGRAD_SANITIZE=ON). */
static void test_scope_frees_everything(void **state) {
    (void)state;
    model m = make_model();
    cg_tensor *kept = NULL;
    for (int step = 0; step < 3; step++) {
        cg_scope_begin();
        cg_tensor *preds = linear1(&m);
        assert_true(m.w->refcount > 1); /* the graph holds w */
        cg_tensor *loss = cg_mnist_loss(preds, m.t);
        assert_int_equal(cg_backward(loss), CG_OK);
        cg_scope_begin(); /* nested: ends first, takes only its own */
        cg_tensor *inner = cg_tensor_exp(preds);
        assert_non_null(inner);
        cg_scope_end();
        assert_float_equal(preds->data[0], 0, 1e-7); /* the outer scope's tensor lives */
        if (step == 2) kept = cg_tensor_retain(preds);
        cg_scope_end();
    }
    /* preds kept its graph: x @ w + b through matmul holds w and b */
    assert_int_equal(kept->refcount, 1);
    assert_int_equal(m.b->refcount, 2);
    assert_float_equal(kept->data[1], LN3, 1e-6);
    cg_tensor_release(kept);
    assert_int_equal(m.w->refcount, 1);
    assert_int_equal(m.b->refcount, 1);
    assert_int_equal(m.x->refcount, 1);
    free_model(&m);
}

/* cg_scope_end_keep: a composite function frees its intermediates and
 * hands its result to the caller's scope, or to the caller with none open. */
static cg_tensor *composite(cg_tensor *x) {
    cg_scope_begin();
    return cg_scope_end_keep(cg_tensor_exp(cg_tensor_neg(x)));
}

static void test_scope_end_keep(void **state) {
    (void)state;
    cg_tensor *x = cg_tensor_requires_grad(cg_tensor_full((int64_t[]){2}, 1, 1.0f), true);
    /* No scope open: the caller owns the result; its graph holds neg(x) and x. */
    cg_tensor *y = composite(x);
    assert_non_null(y);
    assert_int_equal(y->refcount, 1);
    assert_int_equal(x->refcount, 2); /* ours, and neg's result's in y's graph */
    assert_float_equal(y->data[0], 0.36787944f, 1e-6);
    cg_tensor_release(y); /* frees y and neg(x): nothing else held them */
    assert_int_equal(x->refcount, 1);
    /* Inside a scope: the scope owns it and frees it at its end. */
    cg_scope_begin();
    cg_tensor *z = composite(x);
    assert_int_equal(z->refcount, 1);
    cg_tensor *loss = cg_tensor_sum(z);
    assert_int_equal(cg_backward(loss), CG_OK);
    assert_float_equal(x->grad[0], -0.36787944f, 1e-6); /* d/dx e^-x = -e^-x */
    cg_scope_end();
    assert_int_equal(x->refcount, 1);
    /* A NULL result (an earlier error) passes through. */
    cg_scope_begin();
    assert_null(cg_scope_end_keep(NULL));
    cg_tensor_release(x);
}

static void test_sgd_step(void **state) {
    (void)state;
    cg_tensor *p =
        cg_tensor_requires_grad(cg_tensor_from_data((float[]){1, 2, 3}, (int64_t[]){3}, 1), true);
    cg_tensor *q =
        cg_tensor_requires_grad(cg_tensor_from_data((float[]){5}, (int64_t[]){1}, 1), true);
    cg_tensor *c = cg_tensor_from_data((float[]){0.5f, -1, 2}, (int64_t[]){3}, 1);
    cg_scope_begin();
    assert_int_equal(cg_backward(cg_tensor_sum(cg_tensor_mul(p, c))), CG_OK); /* p.grad = c */
    cg_scope_end();
    cg_sgd_step((cg_tensor *[]){p, NULL, q}, 3, 0.1f); /* q has no grad: left alone */
    cg_assert_close(p->data[0], 0.95, 1e-7, 0, "p0");
    cg_assert_close(p->data[1], 2.1, 1e-7, 0, "p1");
    cg_assert_close(p->data[2], 2.8, 1e-7, 0, "p2");
    for (int i = 0; i < 3; i++) assert_float_equal(p->grad[i], 0, 0);
    assert_float_equal(q->data[0], 5, 0);
    cg_tensor_release(p);
    cg_tensor_release(q);
    cg_tensor_release(c);
}

/* The article's loop on separable data: predict, loss, backward, step.
 * The loss must fall by half and the accuracy pass 95%. */
static void test_training_loop_learns(void **state) {
    (void)state;
    const int64_t n = 64, d = 5;
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    cg_tensor *x = cg_tensor_randn((int64_t[]){n, d}, 2, &rng);
    cg_tensor *y = cg_tensor_new((int64_t[]){n, 1}, 2);
    /* label: is x0 + 2 x1 - x2 > 0 */
    for (int64_t i = 0; i < n; i++)
        y->data[i] = x->data[i * d] + 2 * x->data[i * d + 1] - x->data[i * d + 2] > 0 ? 1.0f : 0.0f;
    cg_tensor *w = cg_tensor_requires_grad(cg_tensor_randn((int64_t[]){d, 1}, 2, &rng), true);
    cg_tensor *b = cg_tensor_requires_grad(cg_tensor_zeros((int64_t[]){1}, 1), true);
    float first = 0, last = 0, acc = 0;
    for (int epoch = 0; epoch < 200; epoch++) {
        cg_scope_begin();
        cg_tensor *preds = cg_tensor_add(cg_tensor_matmul(x, w), b);
        cg_tensor *loss = cg_mnist_loss(preds, y);
        assert_int_equal(cg_backward(loss), CG_OK);
        if (epoch == 0) first = cg_tensor_item(loss);
        last = cg_tensor_item(loss);
        acc = cg_binary_accuracy(preds, y);
        cg_sgd_step((cg_tensor *[]){w, b}, 2, 1.0f);
        cg_scope_end();
    }
    if (!(last < 0.5f * first)) fail_msg("loss %g -> %g did not halve", first, last);
    /* mnist_loss stops pushing on points it already gets right, so one or
     * two near the boundary may stay wrong; chance would be ~0.5 */
    if (!(acc >= 0.95f)) fail_msg("accuracy %g after training", acc);
    cg_tensor_release(x);
    cg_tensor_release(y);
    cg_tensor_release(w);
    cg_tensor_release(b);
}

/* A program's own threads may use cgrad: each keeps a buffer pool, scope
 * arrays and backward's work lists, freed when the thread ends (a pthread
 * key's destructor). The ASan and valgrind runs of this test in CI are the
 * leak check; here the answers must match the main thread's. */
static void *step_on_thread(void *arg) {
    float *grad_out = arg;
    cg_scope_begin();
    cg_tensor *w =
        cg_tensor_requires_grad(cg_test_uniform((int64_t[]){64, 3}, 2, -1, 1, 4, false), true);
    cg_tensor *x = cg_test_uniform((int64_t[]){300, 64}, 2, -1, 1, 5, false);
    cg_tensor *loss = cg_tensor_mean(cg_tensor_relu(cg_tensor_matmul(x, w)));
    if (loss && cg_backward(loss) == CG_OK) memcpy(grad_out, w->grad, 64 * 3 * sizeof(float));
    cg_scope_end();
    return NULL;
}

static void test_ops_on_short_lived_threads(void **state) {
    (void)state;
    float on_main[64 * 3] = {0}, on_thread[64 * 3] = {0};
    step_on_thread(on_main);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        memset(on_thread, 0, sizeof on_thread);
        assert_int_equal(pthread_create(&t, NULL, step_on_thread, on_thread), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_memory_equal(on_main, on_thread, sizeof on_main);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_on_short_lived_threads),
        cmocka_unit_test(test_linear_mnist_loss_hand_gradient),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_no_grad_records_nothing),
        cmocka_unit_test(test_backward_errors),
        cmocka_unit_test(test_detach),
        cmocka_unit_test(test_scope_frees_everything),
        cmocka_unit_test(test_scope_end_keep),
        cmocka_unit_test(test_sgd_step),
        cmocka_unit_test(test_training_loop_learns),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
