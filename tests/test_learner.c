/* test_learner.c - the learner's scoring (src/nn/learner.c): a split is
 * scored in chunks sized by the model's activations, from views of x or
 * from the bytes, and every way gives the figures one pass over the whole
 * split gives. */
#include "testutil.h"

#include "data/data.h"

#include <math.h>
#include <string.h>

enum { N = 300, SIDE = 28, CLASSES = 3 };

/* Random 28x28 images of 3 classes, with floats (x) or bytes only. */
static void make_dataset(cg_dataset *ds, bool floats) {
    static uint8_t pixels[N * SIDE * SIDE], labels[N];
    cg_rng rng;
    cg_rng_seed(&rng, 5);
    for (int i = 0; i < N * SIDE * SIDE; i++) pixels[i] = (uint8_t)cg_rng_below(&rng, 256);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % CLASSES);
    bool prev = cg_data_keep_floats(floats);
    assert_int_equal(cg_dataset_from_u8(ds, "test", "random", pixels, labels, N, SIDE, SIDE),
                     CG_OK);
    cg_data_keep_floats(prev);
    assert_true(floats ? ds->x != NULL : ds->x == NULL);
}

/* A CNN whose activations (64 x 28 x 28 per image) make the chunk far
 * smaller than the split, scored from x and from the bytes, against the
 * loss and counts of one forward pass over all the rows. */
static void test_evaluate_in_chunks_matches_one_pass(void **state) {
    (void)state;
    cg_dataset with_x = {0}, bytes = {0};
    make_dataset(&with_x, true);
    make_dataset(&bytes, false);
    cg_rng rng;
    cg_rng_seed(&rng, 9);
    cg_model *m = cg_model_for_images("conv:64:3,relu,gap,linear", "custom", 1, SIDE, SIDE,
                                      CLASSES, CG_INIT_KAIMING, 0.0f, &rng);
    assert_non_null(m);
    cg_score a, b;
    /* One pass would hold 300 x 64 x 28 x 28 floats per layer (60 MB each);
     * the chunks (64 images at the least) some 40 MB. */
    const bool reset = cg_test_reset_peak_rss();
    const double before = cg_test_peak_rss_mb();
    assert_int_equal(cg_model_evaluate(m, &with_x, CG_LOSS_CE, &a), CG_OK);
    const double grew = cg_test_peak_rss_mb() - before;
    printf("scoring 300 images in chunks: peak memory grew %.1f MB\n", grew);
#ifdef CG_TEST_ASAN
    (void)reset; /* the figure is printed, not checked */
#else
    if (reset) assert_true(grew < 80.0);
#endif
    assert_int_equal(cg_model_evaluate(m, &bytes, CG_LOSS_CE, &b), CG_OK);

    /* One pass over the whole split, by hand. */
    bool prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *preds = cg_model_forward(m, with_x.x);
    cg_tensor *loss = cg_cross_entropy(preds, with_x.y);
    assert_non_null(loss);
    int64_t correct = 0;
    for (int64_t i = 0; i < N; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (preds->data[i * CLASSES + c] > preds->data[i * CLASSES + best]) best = c;
        correct += best == (int)with_x.y->data[i];
    }
    const double want = cg_tensor_item(loss);
    cg_scope_end();
    cg_set_grad_enabled(prev);

    for (int k = 0; k < 2; k++) {
        const cg_score *s = k ? &b : &a;
        assert_int_equal(s->n, N);
        assert_int_equal(s->correct, correct);
        cg_assert_close(s->accuracy, (double)correct / N, 1e-12, 0, "accuracy");
        /* The chunks' means, weighted by their sizes: the mean, to rounding. */
        cg_assert_close(s->loss, want, 0, 1e-6, "loss");
        int64_t total = 0;
        for (int c = 0; c < CLASSES; c++) total += s->class_n[c];
        assert_int_equal(total, N);
    }
    /* x and the bytes give the same bits. */
    assert_true(a.loss == b.loss);
    cg_model_free(m);
    cg_dataset_free(&with_x);
    cg_dataset_free(&bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluate_in_chunks_matches_one_pass),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
