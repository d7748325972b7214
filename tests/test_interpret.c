/*
 * test_interpret.c - fastai's ClassificationInterpretation
 * (src/nn/interpret.c): the confusion matrix counts every item once and
 * its diagonal is what cg_model_evaluate calls right, most_confused lists
 * exactly the matrix's off-diagonal cells, most first, and the top losses
 * are sorted and agree with each item's loss worked out again from
 * cg_model_classify's probabilities - for ten-class cross-entropy models
 * and the article's one-output models (mnist_loss, BCE).
 */
#include "testutil.h"

#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { N = 500, SIDE = 8 };

/* Images of `classes` classes, partly separable (each class brightens a
 * band of the image), so a briefly trained model gets some right and some
 * wrong. */
static void make_dataset(cg_dataset *ds, int classes, bool floats, uint64_t seed) {
    static uint8_t pixels[N * SIDE * SIDE], labels[N];
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    for (int i = 0; i < N; i++) {
        labels[i] = (uint8_t)cg_rng_below(&rng, (uint32_t)classes);
        for (int p = 0; p < SIDE * SIDE; p++) {
            int band = p * classes / (SIDE * SIDE);
            int v = (int)cg_rng_below(&rng, 200) + (band == labels[i] ? 40 : 0);
            pixels[i * SIDE * SIDE + p] = (uint8_t)v;
        }
    }
    bool prev = cg_data_keep_floats(floats);
    assert_int_equal(cg_dataset_from_u8(ds, "test", "bands", pixels, labels, N, SIDE, SIDE), CG_OK);
    cg_data_keep_floats(prev);
}

/* A model for the data, trained for a few epochs with `loss`. */
static cg_model *trained_model(const cg_dataset *ds, const char *spec, cg_loss_kind loss) {
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    int64_t outputs = loss == CG_LOSS_CE ? ds->n_classes : 1;
    cg_model *m =
        cg_model_for_images(spec, NULL, 1, SIDE, SIDE, outputs, CG_INIT_PYTORCH, 0.0f, &rng);
    if (!m) fail_msg("%s", cg_last_error());
    cg_fit_config fc = {.epochs = 1,
                        .bs = 50,
                        .seed = 1,
                        .loss = loss,
                        .opt = loss == CG_LOSS_CE ? cg_adam_config(0.01f) : cg_sgd_config(0.5f)};
    assert_int_equal(cg_fit(m, ds, ds, &fc, NULL, NULL), CG_OK);
    return m;
}

/* The matrix against cg_model_evaluate: every item once, each row the
 * class's items, the diagonal the class's right answers. */
static void check_matrix(cg_model *m, const cg_dataset *ds, cg_loss_kind loss,
                         const cg_interpretation *in) {
    cg_score s;
    assert_int_equal(cg_model_evaluate(m, ds, loss, &s), CG_OK);
    const int k = in->n_classes;
    assert_int_equal(k, ds->n_classes);
    assert_int_equal(in->n, cg_dataset_size(ds));
    int64_t sum = 0, diag = 0;
    for (int a = 0; a < k; a++) {
        int64_t row = 0;
        for (int p = 0; p < k; p++) row += in->confusion[a * k + p];
        assert_int_equal(row, s.class_n[a]);
        assert_int_equal(in->confusion[a * k + a], s.class_correct[a]);
        sum += row;
        diag += in->confusion[a * k + a];
    }
    assert_int_equal(sum, in->n);
    assert_int_equal(diag, s.correct);
    assert_true(cg_interpretation_accuracy(in) == s.accuracy);
    /* And the per-item classes make up the matrix. */
    int64_t *count = calloc((size_t)(k * k), sizeof *count);
    assert_non_null(count);
    for (int64_t i = 0; i < in->n; i++) {
        assert_int_equal(in->actual[i], (int)ds->y->data[i]);
        count[in->actual[i] * k + in->predicted[i]]++;
    }
    assert_memory_equal(count, in->confusion, sizeof *count * (size_t)(k * k));
    /* The mean of the items' losses is the split's loss. */
    double mean = 0.0;
    for (int64_t i = 0; i < in->n; i++) mean += in->losses[i];
    cg_assert_close(mean / (double)in->n, s.loss, 1e-6, 1e-5, "mean item loss");
    free(count);
}

/* most_confused(min_val) against the matrix: every off-diagonal cell with
 * count >= min_val once, most first, ties in row-major order. */
static void check_most_confused(const cg_interpretation *in, int64_t min_val) {
    const int k = in->n_classes;
    cg_confused_pair pairs[CG_MAX_CLASSES * CG_MAX_CLASSES];
    int64_t n = cg_interpretation_most_confused(in, min_val, pairs), want = 0;
    for (int a = 0; a < k; a++)
        for (int p = 0; p < k; p++)
            if (a != p && in->confusion[a * k + p] >= (min_val < 1 ? 1 : min_val)) want++;
    assert_int_equal(n, want);
    for (int64_t i = 0; i < n; i++) {
        assert_true(pairs[i].actual != pairs[i].predicted);
        assert_int_equal(pairs[i].count, in->confusion[pairs[i].actual * k + pairs[i].predicted]);
        assert_true(pairs[i].count >= min_val && pairs[i].count >= 1);
        if (i) {
            const cg_confused_pair *a = &pairs[i - 1], *b = &pairs[i];
            assert_true(a->count > b->count ||
                        (a->count == b->count &&
                         (a->actual * k + a->predicted) < (b->actual * k + b->predicted)));
        }
    }
}

/* The item's loss worked out from cg_model_classify's probabilities:
 * cross-entropy -log p[actual]; mnist_loss 1 - p(3) for a 3 (class 0,
 * target 1), p(3) for a 7; BCE -log p[actual]. */
static double loss_from_probs(cg_loss_kind loss, const double *probs, int actual) {
    if (loss == CG_LOSS_MNIST) return actual == 0 ? 1.0 - probs[0] : probs[0];
    return -log(probs[actual]);
}

static void check_top_losses(cg_model *m, const cg_dataset *ds, cg_loss_kind loss,
                             const cg_interpretation *in, int64_t k) {
    int64_t *top = malloc(sizeof *top * (size_t)k);
    assert_non_null(top);
    int64_t n = cg_interpretation_top_losses(in, k, top);
    assert_int_equal(n, k < in->n ? k : in->n);
    bool *listed = calloc((size_t)in->n, sizeof *listed);
    assert_non_null(listed);
    double probs[CG_MAX_CLASSES];
    const int64_t pixels = ds->height * ds->width;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = top[i];
        assert_true(j >= 0 && j < in->n && !listed[j]);
        listed[j] = true;
        if (i) assert_true(in->losses[top[i - 1]] >= in->losses[j]);
        int cls = cg_model_classify(m, ds->pixels + j * pixels, probs, NULL);
        assert_int_equal(cls, in->predicted[j]);
        cg_assert_close(in->probs[j], probs[cls], 1e-6, 1e-5, "probability of the prediction");
        cg_assert_close(in->losses[j], loss_from_probs(loss, probs, in->actual[j]), 1e-5, 1e-4,
                        "an item's loss");
    }
    /* Nothing left out has a higher loss than the last listed. */
    for (int64_t j = 0; n > 0 && j < in->n; j++)
        if (!listed[j]) assert_true(in->losses[j] <= in->losses[top[n - 1]]);
    free(listed);
    free(top);
}

static void check_all(const char *spec, int classes, cg_loss_kind loss, bool floats) {
    cg_dataset ds = {0};
    make_dataset(&ds, classes, floats, 21);
    cg_model *m = trained_model(&ds, spec, loss);
    cg_interpretation in;
    assert_int_equal(cg_interpret(m, &ds, loss, &in), CG_OK);
    double acc = cg_interpretation_accuracy(&in);
    printf("%s, %d classes, loss %s: accuracy %.4f\n", spec, classes, cg_loss_name(loss), acc);
    /* Some right, some wrong: a matrix worth checking. */
    assert_true(acc > 1.5 / classes && acc < 1.0);
    check_matrix(m, &ds, loss, &in);
    for (int64_t v = 0; v <= 4; v += 2) check_most_confused(&in, v);
    check_top_losses(m, &ds, loss, &in, 20);
    check_top_losses(m, &ds, loss, &in, N + 5);
    cg_interpretation_free(&in);
    cg_model_free(m);
    cg_dataset_free(&ds);
}

static void test_cross_entropy_10_digits(void **state) {
    (void)state;
    check_all("linear:32,relu,linear", 10, CG_LOSS_CE, true);
}

/* From the bytes (no floats), with a CNN: the chunks cg_model_evaluate uses. */
static void test_cnn_from_bytes_10_digits(void **state) {
    (void)state;
    check_all("conv:8:3:2,relu,flatten,linear", 10, CG_LOSS_CE, false);
}

static void test_two_classes_mnist_loss(void **state) {
    (void)state;
    check_all("linear", 2, CG_LOSS_MNIST, true);
}

static void test_two_classes_bce(void **state) {
    (void)state;
    check_all("linear:16,relu,linear", 2, CG_LOSS_BCE, false);
}

/* most_confused and top_losses on a matrix made by hand. */
static void test_most_confused_by_hand(void **state) {
    (void)state;
    int64_t cm[9] = {5, 2, 7, /**/ 0, 9, 2, /**/ 7, 1, 4};
    int act[1] = {0}, pred[1] = {0};
    double losses[5] = {0.5, 2.0, NAN, 2.0, 0.1}, probs[5] = {0};
    cg_interpretation in = {.n_classes = 3,
                            .n = 5,
                            .confusion = cm,
                            .actual = act,
                            .predicted = pred,
                            .losses = losses,
                            .probs = probs};
    cg_confused_pair p[6];
    assert_int_equal(cg_interpretation_most_confused(&in, 2, p), 4);
    cg_confused_pair want[4] = {{0, 2, 7}, {2, 0, 7}, {0, 1, 2}, {1, 2, 2}};
    for (int i = 0; i < 4; i++)
        assert_true(p[i].actual == want[i].actual && p[i].predicted == want[i].predicted &&
                    p[i].count == want[i].count);
    assert_int_equal(cg_interpretation_most_confused(&in, 0, p), 5); /* zeros never listed */
    assert_int_equal(cg_interpretation_most_confused(&in, 8, p), 0);
    cg_assert_close(cg_interpretation_accuracy(&in), 18.0 / 5.0, 0, 1e-12, "diagonal / n");
    int64_t top[5];
    assert_int_equal(cg_interpretation_top_losses(&in, 4, top), 4);
    int64_t want_top[4] = {2, 1, 3, 0}; /* NaN first, as torch.topk; ties by index */
    assert_memory_equal(top, want_top, sizeof want_top);
    assert_int_equal(cg_interpretation_top_losses(&in, 0, top), 0);
}

/* A model whose outputs do not fit the data is refused with a message. */
static void test_mismatch_refused(void **state) {
    (void)state;
    cg_dataset ds = {0};
    make_dataset(&ds, 3, true, 5);
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    cg_model *m =
        cg_model_for_images("linear", NULL, 1, SIDE, SIDE, 4, CG_INIT_PYTORCH, 0.0f, &rng);
    cg_interpretation in;
    assert_int_not_equal(cg_interpret(m, &ds, CG_LOSS_CE, &in), CG_OK);
    assert_non_null(strstr(cg_last_error(), "one output per class"));
    assert_null(in.confusion);
    assert_int_not_equal(cg_interpret(m, &ds, CG_LOSS_MNIST, &in), CG_OK);
    cg_model_free(m);
    cg_dataset_free(&ds);
}

/* plot_confusion_matrix and plot_top_losses as PNGs: drawn, the heatmap
 * three 80-pixel cells square and its labels, the grid three 112-pixel images a row for 9
 * and two for 4; k = 0 refused. */
static void test_plots_are_pictures(void **state) {
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    cg_dataset ds = {0};
    make_dataset(&ds, 3, false, 8);
    cg_model *m = trained_model(&ds, "linear", CG_LOSS_CE);
    cg_interpretation in;
    assert_int_equal(cg_interpret(m, &ds, CG_LOSS_CE, &in), CG_OK);
    int64_t w, h, w4, h4;
    snprintf(path, sizeof path, "%s/cm.png", dir);
    assert_int_equal(cg_interpretation_plot_confusion(&in, ds.class_names, NULL, path), CG_OK);
    cg_test_check_picture(path, &w, &h);
    /* Three cells of 80 pixels (the heatmap's largest), and the labels. */
    assert_true(w >= 3 * 80 && w <= 3 * 80 + 200 && h >= 3 * 80 && h <= 3 * 80 + 200);
    snprintf(path, sizeof path, "%s/top9.png", dir);
    assert_int_equal(cg_interpretation_plot_top_losses(&in, &ds, 9, path), CG_OK);
    cg_test_check_picture(path, &w, &h);
    assert_true(w >= 3 * 112 && w < 4 * 112 + 100 && h >= 3 * 112 && h < 3 * 200 + 100);
    snprintf(path, sizeof path, "%s/top4.png", dir);
    assert_int_equal(cg_interpretation_plot_top_losses(&in, &ds, 4, path), CG_OK);
    cg_test_check_picture(path, &w4, &h4);
    assert_true(w4 >= 2 * 112 && w4 < w && h4 >= 2 * 112 && h4 < h);
    assert_int_equal(cg_interpretation_plot_top_losses(&in, &ds, 0, path), CG_ERR_ARG);
    cg_interpretation_free(&in);
    cg_model_free(m);
    cg_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_entropy_10_digits),
        cmocka_unit_test(test_cnn_from_bytes_10_digits),
        cmocka_unit_test(test_two_classes_mnist_loss),
        cmocka_unit_test(test_two_classes_bce),
        cmocka_unit_test(test_most_confused_by_hand),
        cmocka_unit_test(test_mismatch_refused),
        cmocka_unit_test(test_plots_are_pictures),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
