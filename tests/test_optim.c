/* test_optim.c - optimizers with per-parameter state (SGD with momentum,
 * Nesterov, weight decay L2 and decoupled; Adam, AdamW) against the update
 * rules of cgrad.h worked in double, plain SGD against cg_sgd_step bit for
 * bit, gradients zeroed, parameters without a gradient skipped, bad
 * configs; fastai's one-cycle schedule; one thread against two. */
#include "testutil.h"

#include "cgrad_internal.h" /* cg_grad_buf: a gradient allocated as backward does */

#include <math.h>
#include <string.h>

#define N 4
#define STEPS 3
static const float P0[N] = {1.0f, -2.0f, 0.5f, 3.0f};
/* Fixed gradients of steps 1..3; element 3's first one is 0 (Adam: m = v = 0). */
static const float G[STEPS][N] = {
    {0.1f, -0.2f, 0.3f, 0.0f},
    {-0.4f, 0.5f, 0.1f, 0.2f},
    {0.3f, 0.3f, -0.6f, -0.1f},
};

static cg_tensor *param(void) {
    cg_tensor *p = cg_tensor_from_data(P0, (int64_t[]){N}, 1);
    assert_non_null(p);
    return cg_tensor_requires_grad(p, true);
}

/* Writes g into p's gradient, allocating it the way backward does. */
static void set_grad(cg_tensor *p, const float *g) {
    float *buf = cg_grad_buf(p);
    assert_non_null(buf);
    memcpy(buf, g, (size_t)p->numel * sizeof(float));
}

/* ---- the rules of cgrad.h, in double ---- */

typedef struct ref {
    double p[N], b[N], m[N], v[N];
    int t;
    bool b_ready;
} ref;

static void ref_init(ref *r) {
    memset(r, 0, sizeof *r);
    for (int i = 0; i < N; i++) r->p[i] = P0[i];
}

static void ref_step(ref *r, const cg_optim_config *c, const float *g) {
    const double lr = c->lr, wd = c->weight_decay, mu = c->momentum;
    const bool dec = c->decoupled_wd;
    r->t++;
    for (int i = 0; i < N; i++) {
        double gi = g[i];
        if (wd != 0 && !dec) gi += wd * r->p[i];
        if (c->kind == CG_OPTIM_SGD) {
            if (mu != 0) {
                r->b[i] = r->b_ready ? mu * r->b[i] + gi : gi;
                gi = c->nesterov ? gi + mu * r->b[i] : r->b[i];
            }
            if (dec) r->p[i] *= 1 - lr * wd;
            r->p[i] -= lr * gi;
        } else {
            const double b2 = c->beta2;
            r->m[i] = mu * r->m[i] + (1 - mu) * gi;
            r->v[i] = b2 * r->v[i] + (1 - b2) * gi * gi;
            const double mhat = r->m[i] / (1 - pow(mu, r->t));
            const double vhat = r->v[i] / (1 - pow(b2, r->t));
            if (dec) r->p[i] *= 1 - lr * wd;
            r->p[i] -= lr * mhat / (sqrt(vhat) + c->eps);
        }
    }
    if (mu != 0) r->b_ready = true;
}

/* Three steps of cfg on P0 with G, each checked against the double rules;
 * returns nothing, fails with the step and element that differ. */
static void check_three_steps(const cg_optim_config *cfg, const char *name) {
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(cfg, &p, 1);
    assert_non_null(o);
    ref r;
    ref_init(&r);
    for (int s = 0; s < STEPS; s++) {
        set_grad(p, G[s]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        ref_step(&r, cfg, G[s]);
        for (int i = 0; i < N; i++) {
            char what[96];
            snprintf(what, sizeof what, "%s step %d p[%d]", name, s + 1, i);
            cg_assert_close(p->data[i], r.p[i], 1e-6, 1e-6, what);
            assert_float_equal(p->grad[i], 0.0f, 0.0f);
        }
    }
    cg_optimizer_free(o);
    cg_tensor_release(p);
}

static void test_sgd_plain_values(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    assert_int_equal(c.kind, CG_OPTIM_SGD);
    assert_float_equal(c.momentum, 0, 0);
    assert_float_equal(c.weight_decay, 0, 0);
    check_three_steps(&c, "sgd");
}

static void test_sgd_momentum_values(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    c.momentum = 0.9f;
    /* By hand, element 0: b = 0.1, p = 1 - 0.01 = 0.99; then
     * b = 0.09 - 0.4 = -0.31, p = 0.99 + 0.031 = 1.021;
     * then b = -0.279 + 0.3 = 0.021, p = 1.021 - 0.0021 = 1.0189. */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    const double want[STEPS] = {0.99, 1.021, 1.0189};
    for (int s = 0; s < STEPS; s++) {
        set_grad(p, G[s]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        cg_assert_close(p->data[0], want[s], 1e-6, 0, "momentum p[0] by hand");
    }
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "sgd momentum");
}

static void test_sgd_nesterov_values(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    c.momentum = 0.9f;
    c.nesterov = true;
    /* By hand, element 0, step 1: b = 0.1, g = 0.1 + 0.09 = 0.19, p = 0.981. */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    set_grad(p, G[0]);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_assert_close(p->data[0], 0.981, 1e-6, 0, "nesterov p[0] by hand");
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "sgd nesterov");
}

static void test_sgd_weight_decay_l2(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    c.weight_decay = 0.01f;
    /* By hand, element 0, step 1: g = 0.1 + 0.01 * 1 = 0.11, p = 0.989. */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    set_grad(p, G[0]);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_assert_close(p->data[0], 0.989, 1e-6, 0, "L2 p[0] by hand");
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "sgd wd");
    c.momentum = 0.9f;
    check_three_steps(&c, "sgd momentum wd");
    c.nesterov = true;
    check_three_steps(&c, "sgd nesterov wd");
}

static void test_sgd_weight_decay_decoupled(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    c.weight_decay = 0.5f;
    c.decoupled_wd = true;
    /* By hand, element 0, step 1: p = 1 * (1 - 0.05) - 0.1 * 0.1 = 0.94. */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    set_grad(p, G[0]);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_assert_close(p->data[0], 0.94, 1e-6, 0, "SGDW p[0] by hand");
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "sgdw");
    c.momentum = 0.9f;
    check_three_steps(&c, "sgdw momentum");
}

static void test_adam_values(void **state) {
    (void)state;
    cg_optim_config c = cg_adam_config(0.01f);
    assert_int_equal(c.kind, CG_OPTIM_ADAM);
    assert_float_equal(c.momentum, 0.9f, 0);
    assert_float_equal(c.beta2, 0.99f, 0);
    assert_float_equal(c.eps, 1e-5f, 0);
    assert_float_equal(c.weight_decay, 0, 0);
    assert_false(c.decoupled_wd);
    /* By hand, step 1: mhat = g, vhat = g^2, so p -= lr * g / (|g| + eps):
     * element 0: 1 - 0.01 * 0.1 / 0.10001; element 3 (g = 0) stays. */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    set_grad(p, G[0]);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_assert_close(p->data[0], 1 - 0.01 * 0.1 / 0.10001, 1e-7, 0, "adam p[0] by hand");
    assert_float_equal(p->data[3], 3.0f, 0);
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "adam");
    c.weight_decay = 0.1f; /* L2: g += wd * p */
    check_three_steps(&c, "adam l2");
}

static void test_adamw_values(void **state) {
    (void)state;
    cg_optim_config c = cg_adamw_config(0.01f, 0.1f);
    assert_int_equal(c.kind, CG_OPTIM_ADAM);
    assert_true(c.decoupled_wd);
    assert_float_equal(c.weight_decay, 0.1f, 0);
    /* By hand, element 3 (g = 0), step 1: only the decay, 3 * (1 - 0.001). */
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    set_grad(p, G[0]);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_assert_close(p->data[3], 2.997, 1e-6, 0, "adamw p[3] by hand");
    cg_optimizer_free(o);
    cg_tensor_release(p);
    check_three_steps(&c, "adamw");
}

/* A schedule moves beta1 between steps: the bias correction takes the
 * current beta1 to the power t, as PyTorch's reads group['betas']. */
static void test_adam_follows_current_beta1(void **state) {
    (void)state;
    cg_optim_config c = cg_adam_config(0.01f);
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    ref r;
    ref_init(&r);
    const float betas[STEPS] = {0.95f, 0.9f, 0.85f};
    for (int s = 0; s < STEPS; s++) {
        cg_optimizer_set_momentum(o, betas[s]);
        cg_optimizer_set_lr(o, 0.01f * (float)(s + 1));
        const cg_optim_config *now = cg_optimizer_config(o);
        assert_float_equal(now->momentum, betas[s], 0);
        set_grad(p, G[s]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        ref_step(&r, now, G[s]);
        for (int i = 0; i < N; i++)
            cg_assert_close(p->data[i], r.p[i], 1e-6, 1e-6, "adam, beta1 moved");
    }
    cg_optimizer_free(o);
    cg_tensor_release(p);
}

/* SGD made with momentum 0 whose momentum a schedule raises later: the
 * buffer starts then, b = g on its first step. */
static void test_sgd_momentum_raised_later(void **state) {
    (void)state;
    cg_optim_config c = cg_sgd_config(0.1f);
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    ref r;
    ref_init(&r);
    for (int s = 0; s < STEPS; s++) {
        if (s == 1) cg_optimizer_set_momentum(o, 0.9f);
        set_grad(p, G[s]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        ref_step(&r, cg_optimizer_config(o), G[s]);
        for (int i = 0; i < N; i++)
            cg_assert_close(p->data[i], r.p[i], 1e-6, 1e-6, "momentum raised");
    }
    cg_optimizer_free(o);
    cg_tensor_release(p);
}

/* Plain SGD through the optimizer is the article's step, bit for bit, on a
 * small parameter and on one above the threaded size. */
static void test_plain_sgd_bits_match_sgd_step(void **state) {
    (void)state;
    const int64_t sizes[2] = {37, (1 << 15) + 3};
    for (int k = 0; k < 2; k++) {
        const int64_t shape[1] = {sizes[k]};
        cg_tensor *a = cg_test_uniform(shape, 1, -1, 1, 5, true);
        cg_tensor *b = cg_test_uniform(shape, 1, -1, 1, 5, true);
        cg_optim_config c = cg_sgd_config(0.37f);
        cg_optimizer *o = cg_optimizer_new(&c, &a, 1);
        assert_non_null(o);
        for (int s = 0; s < STEPS; s++) {
            cg_tensor *g = cg_test_uniform(shape, 1, -3, 3, 100 + (uint64_t)s, false);
            set_grad(a, g->data);
            set_grad(b, g->data);
            assert_int_equal(cg_optimizer_step(o), CG_OK);
            cg_sgd_step(&b, 1, 0.37f);
            assert_memory_equal(a->data, b->data, (size_t)sizes[k] * sizeof(float));
            assert_memory_equal(a->grad, b->grad, (size_t)sizes[k] * sizeof(float));
            cg_tensor_release(g);
        }
        cg_optimizer_free(o);
        cg_tensor_release(a);
        cg_tensor_release(b);
    }
}

static void test_step_zeroes_grads(void **state) {
    (void)state;
    const cg_optim_config cfgs[3] = {cg_sgd_config(0.1f), cg_adam_config(0.1f),
                                     cg_adamw_config(0.1f, 0.01f)};
    for (int k = 0; k < 3; k++) {
        cg_tensor *p = param(), *q = param();
        cg_tensor *ps[2] = {p, q};
        cg_optimizer *o = cg_optimizer_new(&cfgs[k], ps, 2);
        assert_non_null(o);
        set_grad(p, G[1]);
        set_grad(q, G[2]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        for (int i = 0; i < N; i++) {
            assert_float_equal(p->grad[i], 0, 0);
            assert_float_equal(q->grad[i], 0, 0);
        }
        /* zero_grad alone: gradients to 0, parameters unchanged */
        set_grad(p, G[1]);
        float before[N];
        memcpy(before, p->data, sizeof before);
        cg_optimizer_zero_grad(o);
        for (int i = 0; i < N; i++) assert_float_equal(p->grad[i], 0, 0);
        assert_memory_equal(p->data, before, sizeof before);
        cg_optimizer_free(o);
        cg_tensor_release(p);
        cg_tensor_release(q);
    }
}

/* A parameter without a gradient (and a NULL entry) is left alone, and its
 * state does not age: Adam's t counts the steps that parameter took, as
 * PyTorch's state['step'], so its first real step is a first step. */
static void test_params_without_grad_skipped(void **state) {
    (void)state;
    const cg_optim_config cfgs[2] = {cg_adam_config(0.01f), cg_sgd_config(0.1f)};
    for (int k = 0; k < 2; k++) {
        cg_optim_config c = cfgs[k];
        if (c.kind == CG_OPTIM_SGD) c.momentum = 0.9f;
        cg_tensor *p = param(), *q = param();
        cg_tensor *ps[3] = {p, NULL, q};
        cg_optimizer *o = cg_optimizer_new(&c, ps, 3);
        assert_non_null(o);
        set_grad(p, G[0]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        assert_null(q->grad);
        assert_memory_equal(q->data, P0, sizeof P0);
        cg_optimizer_zero_grad(o); /* q without a gradient: nothing to do */
        assert_null(q->grad);
        /* q's first gradient: the same as a fresh optimizer's first step */
        set_grad(q, G[1]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        ref r;
        ref_init(&r);
        ref_step(&r, &c, G[1]);
        for (int i = 0; i < N; i++)
            cg_assert_close(q->data[i], r.p[i], 1e-6, 1e-6, "q's first step");
        cg_optimizer_free(o);
        cg_tensor_release(p);
        cg_tensor_release(q);
    }
    /* no parameters at all */
    cg_optim_config c = cg_adam_config(0.01f);
    cg_optimizer *o = cg_optimizer_new(&c, NULL, 0);
    assert_non_null(o);
    assert_int_equal(cg_optimizer_step(o), CG_OK);
    cg_optimizer_zero_grad(o);
    cg_optimizer_free(o);
}

static void expect_rejected(const cg_optim_config *c, cg_tensor *const *ps, int n,
                            const char *word) {
    cg_clear_error();
    cg_optimizer *o = cg_optimizer_new(c, ps, n);
    if (o) {
        cg_optimizer_free(o);
        fail_msg("a config with bad %s was accepted", word);
    }
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    if (!strstr(cg_last_error(), word))
        fail_msg("message \"%s\" does not name %s", cg_last_error(), word);
}

static void test_bad_configs_rejected(void **state) {
    (void)state;
    cg_tensor *p = param();
    cg_tensor *ps[1] = {p};
    cg_optim_config c;
    const float bad_lr[] = {-0.1f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        c = cg_sgd_config(bad_lr[i]);
        expect_rejected(&c, ps, 1, "lr");
    }
    const float bad_mom[] = {-0.1f, 1.0f, 1.5f, NAN};
    for (int i = 0; i < 4; i++) {
        c = cg_sgd_config(0.1f);
        c.momentum = bad_mom[i];
        expect_rejected(&c, ps, 1, "momentum");
        c = cg_adam_config(0.1f);
        c.momentum = bad_mom[i];
        expect_rejected(&c, ps, 1, "beta1");
        c = cg_adam_config(0.1f);
        c.beta2 = bad_mom[i];
        expect_rejected(&c, ps, 1, "beta2");
    }
    const float bad_eps[] = {0.0f, -1e-8f, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        c = cg_adam_config(0.1f);
        c.eps = bad_eps[i];
        expect_rejected(&c, ps, 1, "eps");
    }
    const float bad_wd[] = {-0.01f, NAN, INFINITY};
    for (int i = 0; i < 3; i++) {
        c = cg_sgd_config(0.1f);
        c.weight_decay = bad_wd[i];
        expect_rejected(&c, ps, 1, "weight_decay");
        c = cg_adamw_config(0.1f, bad_wd[i]);
        expect_rejected(&c, ps, 1, "weight_decay");
    }
    c = cg_sgd_config(0.1f);
    c.nesterov = true;
    expect_rejected(&c, ps, 1, "nesterov");
    c = cg_adam_config(0.1f);
    c.nesterov = true;
    expect_rejected(&c, ps, 1, "nesterov");
    c = cg_sgd_config(0.1f);
    c.kind = (cg_optim_kind)7;
    expect_rejected(&c, ps, 1, "kind");
    c = cg_sgd_config(0.1f);
    expect_rejected(&c, NULL, 1, "params");
    expect_rejected(&c, ps, -1, "n = -1");
    expect_rejected(NULL, ps, 1, "config");
    /* the edges that are fine: lr 0, momentum 0, beta2 0 */
    c = cg_adam_config(0.0f);
    c.momentum = 0.0f;
    c.beta2 = 0.0f;
    cg_optimizer *o = cg_optimizer_new(&c, ps, 1);
    assert_non_null(o);
    cg_optimizer_free(o);
    /* NULL optimizer */
    assert_int_equal(cg_optimizer_step(NULL), CG_ERR_ARG);
    assert_null(cg_optimizer_config(NULL));
    cg_optimizer_free(NULL);
    cg_tensor_release(p);
}

/* The setters refuse what the constructor would, keeping the old value. */
static void test_setters(void **state) {
    (void)state;
    cg_tensor *p = param();
    cg_optim_config c = cg_sgd_config(0.1f);
    c.momentum = 0.5f;
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    cg_optimizer_set_lr(o, 0.25f);
    cg_optimizer_set_momentum(o, 0.75f);
    assert_float_equal(cg_optimizer_config(o)->lr, 0.25f, 0);
    assert_float_equal(cg_optimizer_config(o)->momentum, 0.75f, 0);
    cg_clear_error();
    cg_optimizer_set_lr(o, -1.0f);
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    cg_clear_error();
    cg_optimizer_set_momentum(o, 1.0f);
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_float_equal(cg_optimizer_config(o)->lr, 0.25f, 0);
    assert_float_equal(cg_optimizer_config(o)->momentum, 0.75f, 0);
    cg_optimizer_free(o);
    cg_tensor_release(p);
}

/* ---- schedules ---- */

static void test_one_cycle_values(void **state) {
    (void)state;
    const float top = 0.01f;
    cg_schedule s = cg_one_cycle(top);
    assert_int_equal(s.kind, CG_SCHED_ONE_CYCLE);
    assert_float_equal(s.div, 25, 0);
    assert_float_equal(s.div_final, 1e5f, 0);
    assert_float_equal(s.pct_start, 0.25f, 0);
    float lr, mom;
    cg_schedule_at(&s, 0.0, &lr, &mom);
    cg_assert_close(lr, top / 25.0, 1e-9, 1e-6, "lr at 0");
    cg_assert_close(mom, 0.95, 1e-7, 0, "mom at 0");
    cg_schedule_at(&s, 0.25, &lr, &mom); /* the second phase starts at pct */
    cg_assert_close(lr, top, 1e-9, 1e-6, "lr at pct_start");
    cg_assert_close(mom, 0.85, 1e-7, 0, "mom at pct_start");
    cg_schedule_at(&s, 0.999999, &lr, &mom);
    cg_assert_close(lr, top / 1e5, 1e-9, 1e-3, "lr at the end");
    cg_assert_close(mom, 0.95, 1e-6, 0, "mom at the end");
    /* halfway up (x = 1/2, (1 - cos(pi/2)) / 2 = 1/2): lr = top/25 + (top - top/25) / 2
     * = 0.52 top, mom = 0.90 */
    cg_schedule_at(&s, 0.125, &lr, &mom);
    cg_assert_close(lr, 0.52 * top, 1e-9, 1e-6, "lr halfway up");
    cg_assert_close(mom, 0.90, 1e-6, 0, "mom halfway up");
    /* a quarter down (pos = 0.25 + 0.75/4, x = 1/4): (1 - cos(pi/4)) / 2 = 0.1464466
     * of the way from top to top/1e5; mom 0.85 + 0.1 * 0.1464466 */
    const double w = (1 - sqrt(0.5)) / 2;
    cg_schedule_at(&s, 0.25 + 0.75 / 4, &lr, &mom);
    cg_assert_close(lr, top + (top / 1e5 - top) * w, 1e-9, 1e-6, "lr a quarter down");
    cg_assert_close(mom, 0.85 + 0.1 * w, 1e-6, 0, "mom a quarter down");
    /* NULL outputs are allowed */
    cg_schedule_at(&s, 0.5, NULL, NULL);
}

/* Over a run of steps the lr rises to its peak at pct_start and falls
 * after it; the momentum does the opposite. */
static void test_one_cycle_monotonic(void **state) {
    (void)state;
    cg_schedule s = cg_one_cycle(0.1f);
    const int total = 1000;
    float prev_lr = 0, prev_mom = 1;
    for (int step = 0; step < total; step++) {
        const double pos = (double)step / total;
        float lr, mom;
        cg_schedule_at(&s, pos, &lr, &mom);
        if (step > 0) {
            if (pos <= 0.25) {
                if (!(lr >= prev_lr && mom <= prev_mom)) fail_msg("not rising at step %d", step);
            } else if (!(lr <= prev_lr && mom >= prev_mom)) {
                fail_msg("not falling at step %d", step);
            }
        }
        assert_true(lr > 0 && lr <= 0.1f);
        assert_true(mom >= 0.85f - 1e-6f && mom <= 0.95f + 1e-6f);
        prev_lr = lr;
        prev_mom = mom;
    }
}

static void test_constant_schedule(void **state) {
    (void)state;
    cg_schedule s = {.kind = CG_SCHED_CONSTANT, .lr_max = 0.3f};
    float lr = 0, mom = 0.42f;
    cg_schedule_at(&s, 0.7, &lr, &mom);
    assert_float_equal(lr, 0.3f, 0);
    assert_float_equal(mom, 0.42f, 0); /* left as it is */
}

/* One-cycle driving Adam for a few steps: lr and beta1 set from the
 * schedule before each step, the optimizer follows them. */
static void test_one_cycle_drives_adam(void **state) {
    (void)state;
    cg_schedule s = cg_one_cycle(0.01f);
    cg_optim_config c = cg_adam_config(0.01f);
    cg_tensor *p = param();
    cg_optimizer *o = cg_optimizer_new(&c, &p, 1);
    ref r;
    ref_init(&r);
    for (int step = 0; step < STEPS; step++) {
        float lr, mom;
        cg_schedule_at(&s, (double)step / STEPS, &lr, &mom);
        cg_optimizer_set_lr(o, lr);
        cg_optimizer_set_momentum(o, mom);
        set_grad(p, G[step]);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        ref_step(&r, cg_optimizer_config(o), G[step]);
        for (int i = 0; i < N; i++)
            cg_assert_close(p->data[i], r.p[i], 1e-6, 1e-6, "scheduled adam");
    }
    cg_optimizer_free(o);
    cg_tensor_release(p);
}

/* ---- threads ---- */

/* Three steps of cfg on a parameter above the threaded size, on nt threads. */
static cg_tensor *run_on_threads(const cg_optim_config *cfg, int nt, int64_t n) {
    cg_set_num_threads(nt);
    const int64_t shape[1] = {n};
    cg_tensor *p = cg_test_uniform(shape, 1, -1, 1, 7, true);
    cg_optimizer *o = cg_optimizer_new(cfg, &p, 1);
    assert_non_null(o);
    for (int s = 0; s < STEPS; s++) {
        cg_tensor *g = cg_test_uniform(shape, 1, -2, 2, 200 + (uint64_t)s, false);
        set_grad(p, g->data);
        cg_tensor_release(g);
        assert_int_equal(cg_optimizer_step(o), CG_OK);
    }
    cg_optimizer_free(o);
    cg_set_num_threads(0);
    return p;
}

static void test_threads_same_bits(void **state) {
    (void)state;
    const int64_t n = 3 * (1 << 14) + 5;
    cg_optim_config cfgs[4] = {cg_sgd_config(0.1f), cg_sgd_config(0.1f), cg_adam_config(0.01f),
                               cg_adamw_config(0.01f, 0.1f)};
    cfgs[1].momentum = 0.9f;
    cfgs[1].nesterov = true;
    cfgs[1].weight_decay = 0.01f;
    for (int k = 0; k < 4; k++) {
        cg_tensor *one = run_on_threads(&cfgs[k], 1, n);
        cg_tensor *two = run_on_threads(&cfgs[k], 2, n);
        assert_memory_equal(one->data, two->data, (size_t)n * sizeof(float));
        cg_tensor_release(one);
        cg_tensor_release(two);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sgd_plain_values),
    cmocka_unit_test(test_sgd_momentum_values),
    cmocka_unit_test(test_sgd_nesterov_values),
    cmocka_unit_test(test_sgd_weight_decay_l2),
    cmocka_unit_test(test_sgd_weight_decay_decoupled),
    cmocka_unit_test(test_adam_values),
    cmocka_unit_test(test_adamw_values),
    cmocka_unit_test(test_adam_follows_current_beta1),
    cmocka_unit_test(test_sgd_momentum_raised_later),
    cmocka_unit_test(test_plain_sgd_bits_match_sgd_step),
    cmocka_unit_test(test_step_zeroes_grads),
    cmocka_unit_test(test_params_without_grad_skipped),
    cmocka_unit_test(test_bad_configs_rejected),
    cmocka_unit_test(test_setters),
    cmocka_unit_test(test_one_cycle_values),
    cmocka_unit_test(test_one_cycle_monotonic),
    cmocka_unit_test(test_constant_schedule),
    cmocka_unit_test(test_one_cycle_drives_adam),
    cmocka_unit_test(test_threads_same_bits),
};

CG_TEST_MAIN(tests)
