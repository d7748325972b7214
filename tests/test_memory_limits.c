/* test_memory_limits.c - memory bounded by the real data, not by a header
 * or an option (src/util/memory.c): a model file whose header promises
 * hundreds of MB of weights in a sparse file, a model too big to train, a
 * step too big for the memory there is; and what a model file must hold
 * to be loaded (the inputs a caller needs, running variances >= 0). */
#include "testutil.h"

#include "data/data.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Little-endian fields of a model file (src/nn/model_file.c documents it). */
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void set_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void set_i64(uint8_t *p, int64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* Writes len bytes to path, the last 4 made the CRC-32 of the others. */
static void write_with_crc(const char *path, uint8_t *b, size_t len) {
    set_u32(b + len - 4, (uint32_t)crc32(0L, b, (uInt)(len - 4)));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static cg_model *make(const char *spec, const int64_t *in_shape, int in_ndim, int64_t n_out) {
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    cg_model *m = cg_model_from_spec(spec, NULL, in_shape, in_ndim, n_out, CG_INIT_PYTORCH, 1.0f,
                                     &rng);
    if (!m) fail_msg("'%s': %s", spec, cg_last_error());
    m->n_classes = 2;
    strcpy(m->class_names[0], "3");
    strcpy(m->class_names[1], "7");
    return m;
}

/* Loading fails, with a message holding `what`. */
static void assert_load_fails(const char *path, int64_t n_inputs, const char *what) {
    cg_clear_error();
    cg_model *m = cg_model_load_for(path, n_inputs);
    if (m) {
        cg_model_free(m);
        fail_msg("loading %s should fail (%s)", path, what);
    }
    if (!strstr(cg_last_error(), what))
        fail_msg("message '%s' does not mention '%s'", cg_last_error(), what);
}

/* A header that describes a 784-100000-1 mlp (313 MB of weights) over a
 * file of the right length that is one hole after the header: loading it
 * reads through the hole to check the CRC and allocates nothing for it
 * (it used to read the whole file into memory first). With
 * CGRAD_MEMORY_LIMIT below what the weights need, it is refused before
 * any reading. */
static void test_sparse_model_file_bounded(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/sparse.cgm", cg_test_tmpdir());
    cg_model *m = make("linear:100,relu,linear", (int64_t[]){784}, 1, 1);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    cg_model_free(m);
    size_t len;
    uint8_t *b = cg_test_read_file(path, &len);
    const uint32_t h = get_u32(b + 12);
    /* Layer 1's OUT: 100 -> 100000; the header is all that is kept. */
    set_i64(b + 92 + 32 * 2 + 16, 100000);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, h, f), h);
    assert_int_equal(fclose(f), 0);
    const long long floats = 784LL * 100000 + 100000 + 100000 + 1;
    assert_int_equal(truncate(path, (off_t)(h + 4 * floats + 4)), 0);
    free(b);

    const bool reset = cg_test_reset_peak_rss();
    const double before = cg_test_peak_rss_mb();
    assert_load_fails(path, 0, "checksum mismatch");
    const double grew = cg_test_peak_rss_mb() - before;
    printf("a 313 MB sparse model file: peak memory grew %.1f MB\n", grew);
    if (reset) assert_true(grew < 64.0);

    setenv("CGRAD_MEMORY_LIMIT", "64M", 1);
    assert_load_fails(path, 0, "more than the 64 MB available (CGRAD_MEMORY_LIMIT)");
    assert_int_equal(cg_last_status(), CG_ERR_NOMEM);
    unsetenv("CGRAD_MEMORY_LIMIT");
}

/* A command that needs 28x28 images refuses a model of other inputs from
 * its header, before reading weights; the same file loads for its own. */
static void test_load_for_checks_inputs(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/three.cgm", cg_test_tmpdir());
    cg_model *m = make("linear", (int64_t[]){3}, 1, 1);
    assert_int_equal(cg_model_save(m, path), CG_OK);
    cg_model_free(m);
    assert_load_fails(path, 784, "takes items of 3 (3 numbers); this needs 784");
    assert_int_equal(cg_last_status(), CG_ERR_SHAPE);
    cg_model *back = cg_model_load_for(path, 3);
    assert_non_null(back);
    cg_model_free(back);
}

/* A running variance below 0 cannot come from training (a mean of
 * squares, mixed with momentum): a file holding one is refused, for bn and
 * for each of a residual block's batch norms. */
static void test_negative_running_variance_refused(void **state) {
    (void)state;
    const char *specs[] = {"bn,flatten,linear", "res:2:2,gap,linear"};
    for (int s = 0; s < 2; s++) {
        char path[512];
        snprintf(path, sizeof path, "%s/bn%d.cgm", cg_test_tmpdir(), s);
        cg_model *m = make(specs[s], (int64_t[]){2, 4, 4}, 3, 1);
        assert_int_equal(cg_model_save(m, path), CG_OK);
        const cg_layer *l = &m->layers[0];
        size_t len;
        uint8_t *b = cg_test_read_file(path, &len);
        /* Every (mean, variance) pair's variance in turn. */
        for (int k = 1; k < l->n_state; k += 2) {
            int64_t at = 0;
            for (int p = 0; p < l->n_params; p++) at += l->params[p]->numel;
            for (int q = 0; q < k; q++) at += l->state[q]->numel;
            uint8_t *copy = malloc(len);
            memcpy(copy, b, len);
            size_t off = get_u32(b + 12) + 4 * (size_t)at + 4; /* channel 1 */
            set_u32(copy + off, 0xbf000000u);                  /* -0.5f */
            write_with_crc(path, copy, len);
            assert_load_fails(path, 0, "negative running variance");
            assert_non_null(strstr(cg_last_error(), s ? "layer 1 (res)" : "layer 1 (bn)"));
            free(copy);
        }
        free(b);
        cg_model_free(m);
    }
}

/* A model that cannot fit is refused before anything is allocated or
 * initialized; one that fits is built. */
static void test_model_too_big_refused_up_front(void **state) {
    (void)state;
    setenv("CGRAD_MEMORY_LIMIT", "100M", 1);
    cg_clear_error();
    /* 784 x 100000 weights: 314 MB, 627 MB with their gradients. */
    cg_model *m = cg_model_from_spec("linear:100000,relu,linear", NULL, (int64_t[]){784}, 1, 10,
                                     CG_INIT_PYTORCH, 1.0f, NULL);
    assert_null(m);
    assert_int_equal(cg_last_status(), CG_ERR_NOMEM);
    assert_non_null(strstr(cg_last_error(), "and their gradients needs 6"));
    assert_non_null(strstr(cg_last_error(), "more than the 100 MB available (CGRAD_MEMORY_LIMIT)"));
    m = cg_model_from_spec("linear:1000,relu,linear", NULL, (int64_t[]){784}, 1, 10,
                           CG_INIT_PYTORCH, 1.0f, NULL);
    assert_non_null(m);
    cg_model_free(m);
    unsetenv("CGRAD_MEMORY_LIMIT");
}

/* fit works out what a step takes (gradients, Adam's two buffers, the
 * batch's activations) and refuses a batch that cannot fit, before any. */
static void test_fit_refuses_what_cannot_fit(void **state) {
    (void)state;
    enum { N = 64, SIDE = 28 };
    static uint8_t pixels[N * SIDE * SIDE], labels[N];
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 2);
    cg_dataset ds = {0};
    assert_int_equal(cg_dataset_from_u8(&ds, "test", "zeros", pixels, labels, N, SIDE, SIDE),
                     CG_OK);
    cg_model *m = cg_model_for_images("conv:64:3,relu,gap,linear", "custom", 1, SIDE, SIDE, 2,
                                      CG_INIT_KAIMING, 0.0f, NULL);
    assert_non_null(m);
    cg_fit_config cfg = {.epochs = 1, .bs = N, .seed = 1, .loss = CG_LOSS_CE,
                         .opt = cg_adam_config(1e-3f), .sched = CG_SCHED_CONSTANT};
    /* 64 images x 64 x 28 x 28 floats per layer, three copies: ~120 MB. */
    setenv("CGRAD_MEMORY_LIMIT", "20M", 1);
    cg_clear_error();
    assert_int_equal(cg_fit(m, &ds, &ds, &cfg, NULL, NULL), CG_ERR_NOMEM);
    assert_non_null(strstr(cg_last_error(), "fit: training with batches of 64 needs"));
    unsetenv("CGRAD_MEMORY_LIMIT");
    cfg.bs = 8;
    assert_int_equal(cg_fit(m, &ds, &ds, &cfg, NULL, NULL), CG_OK);
    cg_model_free(m);
    cg_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_model_file_bounded),
        cmocka_unit_test(test_load_for_checks_inputs),
        cmocka_unit_test(test_negative_running_variance_refused),
        cmocka_unit_test(test_model_too_big_refused_up_front),
        cmocka_unit_test(test_fit_refuses_what_cannot_fit),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
