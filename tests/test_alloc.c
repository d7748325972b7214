/*
 * test_alloc.c - a training loop's steady state calls no allocator.
 *
 * The header promises that freed tensors, buffers and scratch go to
 * per-thread pools, so a step whose shapes repeat does not malloc after
 * the first ones. This program is linked with the linker's --wrap for
 * malloc, calloc, realloc, aligned_alloc and posix_memalign (see
 * tests/CMakeLists.txt): every call to them from the library's objects
 * (and this file's) lands in a __wrap_ function below that counts it and
 * forwards to the real one. Calls from inside the C library or libgomp
 * are not seen, and need not be: they are not cgrad's.
 *
 * The loop is cmd_train's, on random data: a shuffled batch made from the
 * dataset's bytes, forward, loss, backward and SGD in a scope, then a
 * validation pass with grad mode off - for both models (the linear one
 * with mnist_loss, the MLP with binary cross-entropy),
 * at 1 and 2 threads (so that the GEMM's OpenMP workers, with their own
 * pack buffers, take part), and at 2 with fresh workers held back through
 * the warm-up. Three epochs warm the pools up; the next two must not
 * allocate at all.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cgrad_internal.h"
#include "data/data.h"
#include "testutil.h"

/* ---- the counting allocator ---- */

static atomic_bool counting;
static atomic_long calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

static void count(void) {
    if (atomic_load(&counting)) atomic_fetch_add(&calls, 1);
}
void *__wrap_malloc(size_t n) {
    count();
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
    count();
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
    count();
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
    count();
    return __real_aligned_alloc(align, n);
}
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    count();
    return __real_posix_memalign(p, align, n);
}

/* ---- a fixed plan, and the window that is counted ---- */

/* Every region on the threads asked for (no straggler guard). With `late`,
 * the workers start each region of the warm-up late, so thread 0 takes
 * their pieces there - as on a loaded machine, or under valgrind, where a
 * worker can go steps without running a piece. Whatever it first does in
 * the counted steps must find its memory ready all the same. */
static void plan_begin(int threads, bool late) {
    cg_guard_enable(false);
    cg_set_num_threads(threads);
    cg_threads_delay_workers(late ? 2000 : 0);
}

static void counting_begin(void) {
    cg_threads_delay_workers(0);
    atomic_store(&calls, 0);
    atomic_store(&counting, true);
}

/* Stops counting, restores the defaults; the calls counted. */
static long plan_end(void) {
    atomic_store(&counting, false);
    cg_threads_delay_workers(0);
    cg_set_num_threads(0);
    cg_guard_enable(true);
    return atomic_load(&calls);
}

/* A steady-state check on `threads` threads: the allocator calls counted. */
typedef long (*steady_fn)(const void *arg, int threads, bool late);

typedef struct fresh_run {
    steady_fn fn;
    const void *arg;
    long calls;
} fresh_run;

static void *fresh_main(void *p) {
    fresh_run *r = p;
    r->calls = r->fn(r->arg, 2, true);
    return NULL;
}

/* Two threads with late workers, started from a thread of its own: OpenMP
 * gives each thread that starts regions its own team, so its workers begin
 * with empty pools and workspaces, and what an earlier check warmed up
 * cannot hide what this warm-up missed. (The check's own asserts only
 * guard its set-up, which does not fail.) */
static long on_fresh_team(steady_fn fn, const void *arg) {
    fresh_run r = {fn, arg, -1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fresh_main, &r), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    return r.calls;
}

/* One thread; two; two whose workers run nothing in the warm-up. */
static void expect_no_calls(steady_fn fn, const void *arg, const char *what) {
    for (int v = 0; v < 3; v++) {
        const int threads = v == 0 ? 1 : 2;
        const long n = v == 2 ? on_fresh_team(fn, arg) : fn(arg, threads, false);
        if (n != 0)
            fail_msg("%s, %d thread(s)%s: %ld allocator calls in the counted steps", what, threads,
                     v == 2 ? ", workers late through the warm-up" : "", n);
    }
}

/* ---- the training loop ---- */

enum { N_TRAIN = 600, N_VALID = 200, PIXELS = 784, BATCH = 256 };

typedef struct setup {
    cg_dataset train; /* random pixels, as a loader makes them */
    cg_tensor *yt, *xv, *yv;
    cg_model *m;
    cg_dataloader dl;
} setup;

/* Random images in [0, 1) and 0/1 targets [N, 1], owned by the caller. */
static void make_data(int64_t n, uint64_t seed, cg_tensor **x, cg_tensor **y) {
    const int64_t xs[2] = {n, PIXELS}, ys[2] = {n, 1};
    *x = cg_test_uniform(xs, 2, 0.0f, 1.0f, seed, false);
    *y = cg_test_uniform(ys, 2, 0.0f, 1.0f, seed + 1, false);
    for (int64_t i = 0; i < n; i++) (*y)->data[i] = (*y)->data[i] < 0.5f ? 1.0f : 0.0f;
}

static void setup_make(setup *s, cg_model_kind kind) {
    cg_tensor *xt;
    make_data(N_TRAIN, 10, &xt, &s->yt);
    uint8_t *pixels = malloc(N_TRAIN * PIXELS), labels[N_TRAIN] = {0};
    assert_non_null(pixels);
    for (int64_t i = 0; i < N_TRAIN * PIXELS; i++) pixels[i] = (uint8_t)(xt->data[i] * 256.0f);
    assert_int_equal(
        cg_dataset_from_u8(&s->train, "test", "random", pixels, labels, N_TRAIN, 28, 28), CG_OK);
    free(pixels);
    cg_tensor_release(xt);
    make_data(N_VALID, 20, &s->xv, &s->yv);
    cg_rng rng;
    cg_rng_seed(&rng, 42);
    const cg_init init = kind == CG_MODEL_MLP ? CG_INIT_PYTORCH : CG_INIT_NORMAL;
    s->m = cg_model_new(kind, PIXELS, 30, 1, init, 1.0f, &rng);
    assert_non_null(s->m);
    assert_int_equal(cg_dataloader_init(&s->dl, N_TRAIN, BATCH, true, false, 7), CG_OK);
}

static void setup_free(setup *s) {
    cg_dataloader_free(&s->dl);
    cg_model_free(s->m);
    cg_dataset_free(&s->train);
    cg_tensor_release(s->yt);
    cg_tensor_release(s->xv);
    cg_tensor_release(s->yv);
}

static cg_tensor *loss_of(bool bce, cg_tensor *preds, cg_tensor *targets) {
    return bce ? cg_bce_with_logits(preds, targets) : cg_mnist_loss(preds, targets);
}

/* One epoch of SGD, then a validation pass as cg_cli_score makes it. */
static void epoch(setup *s, bool bce) {
    const int64_t *idx;
    int64_t count;
    cg_dataloader_reset(&s->dl);
    while (cg_dataloader_next(&s->dl, &idx, &count)) {
        cg_scope_begin();
        cg_tensor *xb = cg_dataset_batch(&s->train, idx, count);
        cg_tensor *yb = cg_tensor_index_select(s->yt, idx, count);
        cg_tensor *loss = loss_of(bce, cg_model_forward(s->m, xb), yb);
        assert_int_equal(cg_backward(loss), CG_OK);
        cg_sgd_step(s->m->params, s->m->n_params, 0.1f);
        cg_scope_end();
    }
    bool prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *preds = cg_model_forward(s->m, s->xv);
    cg_tensor *l = loss_of(bce, preds, s->yv);
    cg_tensor *is_first = cg_tensor_gt(cg_tensor_sigmoid(preds), cg_tensor_scalar(0.5f));
    assert_non_null(is_first);
    assert_true(cg_tensor_item(l) >= 0.0f);
    assert_true(cg_binary_accuracy(preds, s->yv) >= 0.0f);
    cg_scope_end();
    cg_set_grad_enabled(prev);
}

typedef struct model_case {
    cg_model_kind kind;
    bool bce;
} model_case;

static long model_steady_state(const void *arg, int threads, bool late) {
    const model_case *c = arg;
    plan_begin(threads, late);
    setup s;
    setup_make(&s, c->kind);
    for (int e = 0; e < 3; e++) epoch(&s, c->bce);
    counting_begin();
    epoch(&s, c->bce);
    epoch(&s, c->bce);
    const long n = plan_end();
    setup_free(&s);
    return n;
}

/* The wrappers must see the library's calls, or the checks below could not fail. */
static void wrappers_see_library_calls(void **state) {
    (void)state;
    atomic_store(&calls, 0);
    atomic_store(&counting, true);
    const int64_t shape[2] = {3, 5};
    cg_tensor *t = cg_tensor_zeros(shape, 2); /* a fresh size: the pool has none */
    atomic_store(&counting, false);
    assert_non_null(t);
    cg_tensor_release(t);
    assert_true(atomic_load(&calls) >= 1);
}

static void linear_step_allocates_nothing(void **state) {
    (void)state;
    expect_no_calls(model_steady_state, &(model_case){CG_MODEL_LINEAR, false},
                    "linear, mnist_loss");
}

static void mlp_step_allocates_nothing(void **state) {
    (void)state;
    expect_no_calls(model_steady_state, &(model_case){CG_MODEL_MLP, true}, "mlp, bce");
}

/* The ten-class path: a model from a spec (with dropout), augmented
 * batches, cross-entropy, Adam under fit_one_cycle's schedule, as cg_fit
 * runs them. */
static long ce_adam_steady_state(const void *arg, int threads, bool late) {
    (void)arg;
    plan_begin(threads, late);
    enum { CLASSES = 10 };
    cg_dataset train = {0};
    uint8_t *pixels = malloc(N_TRAIN * PIXELS), labels[N_TRAIN];
    assert_non_null(pixels);
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    for (int64_t i = 0; i < N_TRAIN * PIXELS; i++) pixels[i] = (uint8_t)cg_rng_below(&rng, 256);
    for (int64_t i = 0; i < N_TRAIN; i++) labels[i] = (uint8_t)(i % CLASSES);
    assert_int_equal(cg_dataset_from_u8(&train, "test", "random", pixels, labels, N_TRAIN, 28, 28),
                     CG_OK);
    free(pixels);
    const int64_t in = PIXELS;
    cg_model *m = cg_model_from_spec("linear:64,relu,dropout:0.1,linear:32,relu,linear", "custom",
                                     &in, 1, CLASSES, CG_INIT_KAIMING, 0.0f, &rng);
    assert_non_null(m);
    cg_optim_config cfg = cg_adam_config(1e-3f);
    cg_optimizer *opt = cg_optimizer_new(&cfg, m->params, m->n_params);
    assert_non_null(opt);
    cg_schedule sched = cg_one_cycle(1e-2f);
    const cg_augment aug = {.max_shift = 2.0f, .max_rotate_deg = 10.0f, .seed = 9};
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, N_TRAIN, BATCH, true, false, 7), CG_OK);
    cg_model_train(m, true);
    const int64_t total = 5 * cg_dataloader_num_batches(&dl);
    int64_t step = 0;
    for (int e = 0; e < 5; e++) {
        if (e == 3) counting_begin();
        const int64_t *idx;
        int64_t count;
        cg_dataloader_reset(&dl);
        while (cg_dataloader_next(&dl, &idx, &count)) {
            float lr, mom;
            cg_schedule_at(&sched, (double)step++ / (double)total, &lr, &mom);
            cg_optimizer_set_lr(opt, lr);
            cg_optimizer_set_momentum(opt, mom);
            cg_scope_begin();
            cg_tensor *xb = cg_dataset_batch(&train, idx, count);
            assert_int_equal(cg_augment_batch(&aug, (uint64_t)step, 0, xb->data, count, 1, 28, 28),
                             CG_OK);
            cg_tensor *yb = cg_tensor_index_select(train.y, idx, count);
            cg_tensor *loss = cg_cross_entropy(cg_model_forward(m, xb), yb);
            assert_int_equal(cg_backward(loss), CG_OK);
            assert_int_equal(cg_optimizer_step(opt), CG_OK);
            cg_scope_end();
        }
    }
    const long n = plan_end();
    cg_dataloader_free(&dl);
    cg_optimizer_free(opt);
    cg_model_free(m);
    cg_dataset_free(&train);
    return n;
}

static void ce_adam_step_allocates_nothing(void **state) {
    (void)state;
    expect_no_calls(ce_adam_steady_state, NULL, "ten classes, Adam");
}

/* Batch norm (4-D, then 2-D) and the three pools, training steps and an
 * eval pass: their saved state (means and 1/std, max pool's winners) comes
 * from the pool, so warm steps allocate nothing either. */
static long norm_pool_steady_state(const void *arg, int threads, bool late) {
    (void)arg;
    plan_begin(threads, late);
    const int64_t xs[4] = {128, 8, 16, 16}; /* 262144 elements: two threads' size */
    cg_tensor *x = cg_test_uniform(xs, 4, -1, 1, 3, false);
    int64_t c = 8;
    cg_tensor *p[4] = {cg_tensor_ones(&c, 1), cg_tensor_zeros(&c, 1), cg_tensor_ones(&c, 1),
                       cg_tensor_zeros(&c, 1)};
    cg_tensor *rm[2] = {cg_tensor_zeros(&c, 1), cg_tensor_zeros(&c, 1)};
    cg_tensor *rv[2] = {cg_tensor_ones(&c, 1), cg_tensor_ones(&c, 1)};
    for (int i = 0; i < 4; i++) cg_tensor_requires_grad(p[i], true);
    for (int step = 0; step < 8; step++) {
        if (step == 4) counting_begin();
        const bool training = step % 4 != 3; /* every fourth an eval pass, grad mode off */
        const bool prev = cg_set_grad_enabled(training);
        cg_scope_begin();
        cg_tensor *h = cg_tensor_batchnorm(x, p[0], p[1], rm[0], rv[0], training, 0.1f, 1e-5f);
        h = cg_tensor_max_pool2d(cg_tensor_relu(h), 2, 2, 0);
        h = cg_tensor_global_avg_pool(cg_tensor_avg_pool2d(h, 3, 1, 1));
        h = cg_tensor_batchnorm(h, p[2], p[3], rm[1], rv[1], training, 0.1f, 1e-5f);
        cg_tensor *loss = cg_tensor_mean(cg_tensor_mul(h, h));
        assert_non_null(loss);
        if (training) {
            assert_int_equal(cg_backward(loss), CG_OK);
            cg_sgd_step(p, 4, 0.1f);
        }
        cg_scope_end();
        cg_set_grad_enabled(prev);
    }
    const long n = plan_end();
    cg_tensor_release(x);
    for (int i = 0; i < 4; i++) cg_tensor_release(p[i]);
    for (int i = 0; i < 2; i++) {
        cg_tensor_release(rm[i]);
        cg_tensor_release(rv[i]);
    }
    return n;
}

static void norm_pool_step_allocates_nothing(void **state) {
    (void)state;
    expect_no_calls(norm_pool_steady_state, NULL, "batchnorm and pools");
}

/* Convolutions (src/ops/conv.c): simple_cnn's first two layers on a batch
 * of 64, forward, backward (the first without dL/dx, as on images), SGD. */
static long conv_steady_state(const void *arg, int threads, bool late) {
    (void)arg;
    plan_begin(threads, late);
    enum { N = 64 };
    cg_tensor *x = cg_test_uniform((int64_t[]){N, 1, 28, 28}, 4, 0.0f, 1.0f, 5, false);
    cg_tensor *w1 = cg_test_uniform((int64_t[]){8, 1, 5, 5}, 4, -0.2f, 0.2f, 6, true);
    cg_tensor *b1 = cg_test_uniform((int64_t[]){8}, 1, -0.2f, 0.2f, 7, true);
    cg_tensor *w2 = cg_test_uniform((int64_t[]){16, 8, 3, 3}, 4, -0.2f, 0.2f, 8, true);
    cg_tensor *b2 = cg_test_uniform((int64_t[]){16}, 1, -0.2f, 0.2f, 9, true);
    cg_tensor *params[4] = {w1, b1, w2, b2};
    for (int step = 0; step < 5; step++) {
        if (step == 3) counting_begin();
        cg_scope_begin();
        cg_tensor *h = cg_tensor_relu(cg_tensor_conv2d(x, w1, b1, 2, 2));
        cg_tensor *loss = cg_tensor_mean(cg_tensor_conv2d(h, w2, b2, 2, 1));
        assert_int_equal(cg_backward(loss), CG_OK);
        cg_sgd_step(params, 4, 1e-3f);
        for (int i = 0; i < 4; i++) cg_tensor_zero_grad(params[i]);
        cg_scope_end();
    }
    const long n = plan_end();
    for (int i = 0; i < 4; i++) cg_tensor_release(params[i]);
    cg_tensor_release(x);
    return n;
}

static void conv_step_allocates_nothing(void **state) {
    (void)state;
    expect_no_calls(conv_steady_state, NULL, "conv2d");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrappers_see_library_calls),
        cmocka_unit_test(linear_step_allocates_nothing),
        cmocka_unit_test(mlp_step_allocates_nothing),
        cmocka_unit_test(ce_adam_step_allocates_nothing),
        cmocka_unit_test(norm_pool_step_allocates_nothing),
        cmocka_unit_test(conv_step_allocates_nothing),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
