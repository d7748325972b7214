/*
 * test_model.c - the models (src/nn/model.c) and their file format
 * (src/nn/model_file.c): shapes, inits, forward against hand-computed
 * values, gradients, save/load round trips and every way a file can be bad.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static cg_model *make(cg_model_kind kind, int64_t in, int64_t hidden, cg_init init, uint64_t seed) {
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    cg_model *m = cg_model_new(kind, in, hidden, 1, init, 1.0f, &rng);
    assert_non_null(m);
    m->n_classes = 2;
    strcpy(m->class_names[0], "3");
    strcpy(m->class_names[1], "7");
    return m;
}

static void spit(const char *path, const uint8_t *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void assert_models_equal(const cg_model *a, const cg_model *b) {
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_int_equal(a->n_hidden, b->n_hidden);
    assert_int_equal(a->n_outputs, b->n_outputs);
    assert_int_equal(a->n_params, b->n_params);
    assert_int_equal(a->n_classes, b->n_classes);
    for (int c = 0; c < a->n_classes; c++) assert_string_equal(a->class_names[c], b->class_names[c]);
    for (int i = 0; i < a->n_params; i++) {
        assert_true(cg_tensor_same_shape(a->params[i], b->params[i]));
        assert_true(b->params[i]->requires_grad);
        assert_memory_equal(a->params[i]->data, b->params[i]->data,
                            sizeof(float) * (size_t)a->params[i]->numel);
    }
}

/* Loading `path` fails with a CG_ERR_FORMAT message containing `what`. */
static void assert_load_fails(const char *path, const char *what) {
    cg_clear_error();
    cg_model *m = cg_model_load(path);
    if (m) {
        cg_model_free(m);
        fail_msg("loading %s should fail (%s)", path, what);
    }
    if (!strstr(cg_last_error(), what))
        fail_msg("message '%s' does not mention '%s'", cg_last_error(), what);
    assert_non_null(strstr(cg_last_error(), path));
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

static void test_linear_shapes_and_init(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_LINEAR, 784, 99, CG_INIT_NORMAL, 1);
    assert_int_equal(m->n_params, 2);
    assert_int_equal(m->n_hidden, 0); /* ignored for linear */
    cg_assert_shape(m->params[0], (int64_t[]){784, 1}, 2);
    cg_assert_shape(m->params[1], (int64_t[]){1}, 1);
    for (int i = 0; i < 2; i++) assert_true(m->params[i]->requires_grad);
    /* The article's init_params: randn * std, with std 1 here. */
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < 784; i++) {
        sum += m->params[0]->data[i];
        sq += (double)m->params[0]->data[i] * m->params[0]->data[i];
    }
    double mean = sum / 784, sd = sqrt(sq / 784 - mean * mean);
    cg_assert_close(mean, 0.0, 0.12, 0, "randn mean");
    cg_assert_close(sd, 1.0, 0.1, 0, "randn std");
    /* The same draws as randn from the same seed: w first, then b. */
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    for (int64_t i = 0; i < 784; i++) assert_true(m->params[0]->data[i] == cg_rng_normal(&rng));
    assert_true(m->params[1]->data[0] == cg_rng_normal(&rng));
    cg_model_free(m);

    /* std scales every draw. */
    cg_rng_seed(&rng, 1);
    cg_model *half = cg_model_new(CG_MODEL_LINEAR, 784, 0, 1, CG_INIT_NORMAL, 0.5f, &rng);
    cg_model *one = make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 1);
    assert_non_null(half);
    for (int64_t i = 0; i < 784; i++)
        assert_true(half->params[0]->data[i] == one->params[0]->data[i] * 0.5f);
    cg_model_free(half);
    cg_model_free(one);
}

static void test_mlp_shapes_and_pytorch_init(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 7);
    assert_int_equal(m->n_params, 4);
    cg_assert_shape(m->params[0], (int64_t[]){784, 30}, 2);
    cg_assert_shape(m->params[1], (int64_t[]){30}, 1);
    cg_assert_shape(m->params[2], (int64_t[]){30, 1}, 2);
    cg_assert_shape(m->params[3], (int64_t[]){1}, 1);
    /* nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
    double bound[4] = {1 / sqrt(784.0), 1 / sqrt(784.0), 1 / sqrt(30.0), 1 / sqrt(30.0)};
    for (int p = 0; p < 4; p++) {
        const cg_tensor *t = m->params[p];
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < t->numel; i++) {
            lo = fminf(lo, t->data[i]);
            hi = fmaxf(hi, t->data[i]);
        }
        assert_true(lo >= -bound[p] && hi <= bound[p]);
        if (t->numel >= 30) { /* and it fills the range */
            assert_true(lo < -0.8 * bound[p]);
            assert_true(hi > 0.8 * bound[p]);
        }
    }
    /* Same seed, same model; another seed, another. */
    cg_model *again = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 7);
    cg_model *other = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 8);
    assert_models_equal(m, again);
    assert_memory_not_equal(m->params[0]->data, other->params[0]->data, 784 * 30 * sizeof(float));
    cg_model_free(m);
    cg_model_free(again);
    cg_model_free(other);
}

static void test_model_new_bad_args(void **state) {
    (void)state;
    struct {
        int kind;
        int64_t in, hidden, out;
        int init;
        float std;
        const char *what;
    } bad[] = {
        {0, 784, 30, 1, CG_INIT_NORMAL, 1, "kind"},
        {3, 784, 30, 1, CG_INIT_NORMAL, 1, "kind"},
        {CG_MODEL_LINEAR, 0, 0, 1, CG_INIT_NORMAL, 1, "layer sizes"},
        {CG_MODEL_LINEAR, -5, 0, 1, CG_INIT_NORMAL, 1, "layer sizes"},
        {CG_MODEL_LINEAR, 784, 0, 0, CG_INIT_NORMAL, 1, "layer sizes"},
        {CG_MODEL_MLP, 784, 0, 1, CG_INIT_PYTORCH, 1, "layer sizes"},
        {CG_MODEL_MLP, 784, -1, 1, CG_INIT_PYTORCH, 1, "layer sizes"},
        {CG_MODEL_MLP, (int64_t)1 << 40, 30, 1, CG_INIT_PYTORCH, 1, "layer sizes"},
        {CG_MODEL_LINEAR, 784, 0, 1, 0, 1, "init"},
        {CG_MODEL_LINEAR, 784, 0, 1, CG_INIT_NORMAL, -1, "std"},
        {CG_MODEL_LINEAR, 784, 0, 1, CG_INIT_NORMAL, NAN, "std"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cg_clear_error();
        cg_model *m = cg_model_new((cg_model_kind)bad[i].kind, bad[i].in, bad[i].hidden, bad[i].out,
                                   (cg_init)bad[i].init, bad[i].std, NULL);
        assert_null(m);
        assert_int_equal(cg_last_status(), CG_ERR_ARG);
        if (!strstr(cg_last_error(), bad[i].what))
            fail_msg("case %zu: '%s' does not mention %s", i, cg_last_error(), bad[i].what);
    }
    cg_model_free(NULL); /* like free(NULL) */
}

/* ------------------------------------------------------------------ */
/* Forward and backward                                                */
/* ------------------------------------------------------------------ */

static void test_forward_linear_by_hand(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_LINEAR, 3, 0, CG_INIT_NORMAL, 1);
    const float w[3] = {0.5f, -1.0f, 2.0f};
    memcpy(m->params[0]->data, w, sizeof w);
    m->params[1]->data[0] = 0.25f;
    cg_scope_begin();
    cg_tensor *x = cg_tensor_from_data((float[]){1, 2, 3, -1, 0, 0.5f}, (int64_t[]){2, 3}, 2);
    cg_tensor *y = cg_model_forward(m, x);
    cg_assert_shape(y, (int64_t[]){2, 1}, 2);
    /* 0.5 - 2 + 6 + 0.25; -0.5 + 0 + 1 + 0.25 */
    cg_assert_tensor(y, (float[]){4.75f, 0.75f}, 2, 1e-6);
    cg_scope_end();
    cg_model_free(m);
}

static void test_forward_mlp_by_hand(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_MLP, 2, 2, CG_INIT_PYTORCH, 1);
    /* w1 = [[1, -1], [2, 1]], b1 = [0, -10]: the second unit stays negative
     * for small inputs, so ReLU zeroes it. */
    memcpy(m->params[0]->data, (float[]){1, -1, 2, 1}, 4 * sizeof(float));
    memcpy(m->params[1]->data, (float[]){0, -10}, 2 * sizeof(float));
    memcpy(m->params[2]->data, (float[]){3, 5}, 2 * sizeof(float));
    m->params[3]->data[0] = -1;
    cg_scope_begin();
    cg_tensor *x = cg_tensor_from_data((float[]){1, 1, -2, 0.5f}, (int64_t[]){2, 2}, 2);
    cg_tensor *y = cg_model_forward(m, x);
    /* row 1: h = relu([3, -10]) = [3, 0] -> 9 - 1 = 8
     * row 2: h = relu([-1, -9.5]) = [0, 0] -> -1 */
    cg_assert_tensor(y, (float[]){8, -1}, 2, 1e-6);
    cg_scope_end();
    cg_model_free(m);
}

static void test_forward_bad_input(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 1);
    cg_scope_begin();
    cg_tensor *x = cg_tensor_zeros((int64_t[]){4, 783}, 2);
    cg_clear_error();
    assert_null(cg_model_forward(m, x));
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "784"));
    assert_non_null(strstr(cg_last_error(), "783"));
    assert_null(cg_model_forward(m, cg_tensor_zeros((int64_t[]){784}, 1)));
    assert_null(cg_model_forward(m, NULL));
    assert_null(cg_model_forward(NULL, x));
    cg_scope_end();
    cg_model_free(m);
}

/* Outside any scope, the caller owns only the result: releasing it frees
 * everything (the sanitizer build and valgrind would report a leak). */
static void test_forward_without_scope(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 3);
    cg_tensor *x = cg_tensor_ones((int64_t[]){5, 784}, 2);
    for (int grad = 0; grad < 2; grad++) {
        bool prev = cg_set_grad_enabled(grad);
        cg_tensor *y = cg_model_forward(m, x);
        cg_assert_shape(y, (int64_t[]){5, 1}, 2);
        assert_int_equal(y->refcount, 1);
        cg_tensor_release(y);
        cg_set_grad_enabled(prev);
    }
    cg_tensor_release(x);
    cg_model_free(m);
}

typedef struct { cg_model *m; cg_tensor *x; } fwd_ctx;

static cg_tensor *forward_fn(cg_tensor *const *inputs, void *ctx) {
    (void)inputs;
    fwd_ctx *c = ctx;
    return cg_model_forward(c->m, c->x);
}

/* d(preds)/d(params) from backward agrees with finite differences. */
static void test_forward_gradients(void **state) {
    (void)state;
    cg_model *m = make(CG_MODEL_MLP, 6, 4, CG_INIT_PYTORCH, 5);
    cg_rng rng;
    cg_rng_seed(&rng, 9);
    cg_tensor *x = cg_tensor_randn((int64_t[]){3, 6}, 2, &rng);
    fwd_ctx ctx = {m, x};
    cg_check_grad(forward_fn, m->params, m->n_params, &ctx, 2e-2);
    cg_tensor_release(x);
    cg_model_free(m);

    m = make(CG_MODEL_LINEAR, 6, 0, CG_INIT_NORMAL, 5);
    x = cg_tensor_randn((int64_t[]){3, 6}, 2, &rng);
    ctx = (fwd_ctx){m, x};
    cg_check_grad(forward_fn, m->params, m->n_params, &ctx, 1e-2);
    cg_tensor_release(x);
    cg_model_free(m);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

static void test_save_load_round_trip(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    for (int k = 0; k < 2; k++) {
        cg_model *m = k ? make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 11)
                        : make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 11);
        snprintf(path, sizeof path, "%s/model%d.cgm", dir, k);
        assert_int_equal(cg_model_save(m, path), CG_OK);
        cg_model *back = cg_model_load(path);
        assert_non_null(back);
        assert_models_equal(m, back);
        /* And it computes the same function. */
        cg_scope_begin();
        cg_tensor *x = cg_tensor_rand((int64_t[]){4, 784}, 2, NULL);
        cg_tensor *a = cg_model_forward(m, x), *b = cg_model_forward(back, x);
        assert_memory_equal(a->data, b->data, 4 * sizeof(float));
        cg_scope_end();
        cg_model_free(m);
        cg_model_free(back);
    }
}

/* The documented layout: magic, version, kind, sizes, names, params, CRC. */
static void test_file_layout(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/linear.cgm", dir);
    cg_model *m = make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 2);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    assert_int_equal(len, 44 + 2 * 32 + 4 + (4 + 16 + 784 * 4) + (4 + 8 + 4) + 4);
    assert_memory_equal(b, "CGRADMDL", 8);
    assert_int_equal(b[8], 1); /* version 1, little-endian */
    assert_int_equal(b[9] | b[10] | b[11], 0);
    assert_int_equal(b[12], CG_MODEL_LINEAR);
    assert_int_equal(b[16] | b[17] << 8, 784);
    assert_int_equal(b[32], 1);
    assert_int_equal(b[40], 2);
    assert_string_equal((const char *)b + 44, "3");
    assert_string_equal((const char *)b + 76, "7");
    /* First weight, little-endian float32, after n_params, ndim, shape. */
    size_t off = 44 + 64 + 4 + 4 + 16;
    uint32_t bits = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 |
                    (uint32_t)b[off + 3] << 24;
    float w0;
    memcpy(&w0, &bits, 4);
    assert_true(w0 == m->params[0]->data[0]);
    free(b);
    cg_model_free(m);
}

static void test_save_byte_identical_for_same_seed(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/a.cgm", dir);
    snprintf(p2, sizeof p2, "%s/b.cgm", dir);
    cg_model *a = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 21);
    cg_model *b = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 21);
    assert_int_equal(cg_model_save(a, p1), CG_OK);
    assert_int_equal(cg_model_save(b, p2), CG_OK);
    size_t la, lb;
    uint8_t *ba = cg_test_read_file(p1, &la), *bb = cg_test_read_file(p2, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    cg_model_free(a);
    cg_model_free(b);
}

/* Saving replaces the old file by rename and leaves no temporary behind. */
static void test_save_atomic_replace(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/m.cgm", dir);
    cg_model *a = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 1);
    cg_model *b = make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 1);
    assert_int_equal(cg_model_save(a, path), CG_OK);
    assert_int_equal(cg_model_save(b, path), CG_OK);
    cg_model *back = cg_model_load(path);
    assert_non_null(back);
    assert_models_equal(b, back);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') {
            assert_string_equal(e->d_name, "m.cgm");
            files++;
        }
    closedir(d);
    assert_int_equal(files, 1);
    /* A folder that does not exist: an IO error naming the path. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/m.cgm", dir);
    cg_clear_error();
    assert_int_equal(cg_model_save(a, bad), CG_ERR_IO);
    assert_non_null(strstr(cg_last_error(), bad));
    assert_int_equal(cg_model_save(NULL, path), CG_ERR_ARG);
    cg_model_free(a);
    cg_model_free(b);
    cg_model_free(back);
}

static void test_load_truncated(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512], cut[512];
    snprintf(path, sizeof path, "%s/m.cgm", dir);
    snprintf(cut, sizeof cut, "%s/cut.cgm", dir);
    cg_model *m = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 1);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    size_t lengths[] = {0, 5, 8, 20, 44, 100, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        spit(cut, b, lengths[i]);
        assert_load_fails(cut, lengths[i] < 8 ? "not a cgrad model" : "truncated");
    }
    /* Bytes appended after the checksum: the length no longer fits. */
    uint8_t *longer = malloc(len + 3);
    memcpy(longer, b, len);
    memset(longer + len, 0, 3);
    spit(cut, longer, len + 3);
    assert_load_fails(cut, "corrupt");
    free(longer);
    free(b);
    cg_model_free(m);
}

/* Every single flipped byte is caught: by the magic, the version, the
 * sizes or the CRC. */
static void test_load_every_flipped_byte(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/m.cgm", dir);
    snprintf(bad, sizeof bad, "%s/bad.cgm", dir);
    /* A small mlp: every field of the format, in 304 bytes. */
    cg_model *m = make(CG_MODEL_MLP, 8, 3, CG_INIT_PYTORCH, 4);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    assert_int_equal(len, 304);
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x10;
        spit(bad, b, len);
        b[i] ^= 0x10;
        cg_model *x = cg_model_load(bad);
        if (x) fail_msg("a flipped byte at offset %zu was not noticed", i);
        assert_int_equal(cg_last_status(), CG_ERR_FORMAT);
    }
    /* A flip in the weights (w1's data is at 132..228) is reported as a
     * checksum mismatch. */
    b[200] ^= 1;
    spit(bad, b, len);
    assert_load_fails(bad, "checksum");
    free(b);
    cg_model_free(m);
}

static void test_load_foreign_and_missing(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    const char *text = "these are not the weights you are looking for\n";
    spit(path, (const uint8_t *)text, strlen(text));
    assert_load_fails(path, "not a cgrad model");
    /* A PNG's signature. */
    spit(path, (const uint8_t *)"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    assert_load_fails(path, "not a cgrad model");
    /* Missing file and a folder: IO errors naming them. */
    snprintf(path, sizeof path, "%s/missing.cgm", dir);
    cg_clear_error();
    assert_null(cg_model_load(path));
    assert_int_equal(cg_last_status(), CG_ERR_IO);
    assert_non_null(strstr(cg_last_error(), path));
    assert_null(cg_model_load(dir));
    assert_int_equal(cg_last_status(), CG_ERR_IO);
    assert_null(cg_model_load(NULL));
}

static void test_load_newer_version(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/future.cgm", dir);
    cg_model *m = make(CG_MODEL_LINEAR, 784, 0, CG_INIT_NORMAL, 1);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    b[8] = 7; /* format 7 */
    spit(path, b, len);
    char expect[600];
    snprintf(expect, sizeof expect, "model: %s was written by a newer cgrad (format 7)", path);
    assert_load_fails(path, expect);
    free(b);
    cg_model_free(m);
}

/* A header claiming huge layers is refused from the file's length alone,
 * before anything that size is allocated (ASan would catch a huge malloc). */
static void test_load_huge_sizes_refused(void **state) {
    (void)state;
    const char *dir = cg_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/huge.cgm", dir);
    cg_model *m = make(CG_MODEL_MLP, 784, 30, CG_INIT_PYTORCH, 1);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    /* n_inputs = n_hidden = 2^24: a 2^48-float first layer. */
    memset(b + 16, 0, 16);
    b[19] = 1;
    b[27] = 1;
    spit(path, b, len);
    assert_load_fails(path, "truncated");
    /* Negative and absurd sizes. */
    memset(b + 16, 0xff, 8);
    spit(path, b, len);
    assert_load_fails(path, "impossible header");
    free(b);
    cg_model_free(m);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_linear_shapes_and_init),
    cmocka_unit_test(test_mlp_shapes_and_pytorch_init),
    cmocka_unit_test(test_model_new_bad_args),
    cmocka_unit_test(test_forward_linear_by_hand),
    cmocka_unit_test(test_forward_mlp_by_hand),
    cmocka_unit_test(test_forward_bad_input),
    cmocka_unit_test(test_forward_without_scope),
    cmocka_unit_test(test_forward_gradients),
    cmocka_unit_test(test_save_load_round_trip),
    cmocka_unit_test(test_file_layout),
    cmocka_unit_test(test_save_byte_identical_for_same_seed),
    cmocka_unit_test(test_save_atomic_replace),
    cmocka_unit_test(test_load_truncated),
    cmocka_unit_test(test_load_every_flipped_byte),
    cmocka_unit_test(test_load_foreign_and_missing),
    cmocka_unit_test(test_load_newer_version),
    cmocka_unit_test(test_load_huge_sizes_refused),
};

CG_TEST_MAIN(tests)
