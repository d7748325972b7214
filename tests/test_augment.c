/* test_augment.c - random affine augmentation of training images
 * (src/data/augment.c) and its use by cg_fit: pixels land where the
 * transform says, the identity changes nothing, the draws are the same for
 * a seed on any thread count, nothing is read outside an image, validation
 * never sees it, and `cgrad train --model resnet` reaches its target on
 * full MNIST with it. */
#include "testutil.h"

#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SIDE = 28, LEN = SIDE * SIDE };

/* An image of zeros but for one bright pixel at (x, y). */
static void one_pixel(float *img, int64_t side, int64_t x, int64_t y) {
    memset(img, 0, sizeof *img * (size_t)(side * side));
    img[y * side + x] = 1.0f;
}

/* The image's total and its centre of mass. */
static void mass_centre(const float *img, int64_t side, double *total, double *cx, double *cy) {
    *total = *cx = *cy = 0.0;
    for (int64_t y = 0; y < side; y++)
        for (int64_t x = 0; x < side; x++) {
            *total += img[y * side + x];
            *cx += (double)x * img[y * side + x];
            *cy += (double)y * img[y * side + x];
        }
    *cx /= *total;
    *cy /= *total;
}

static void random_images(float *x, int64_t n, uint64_t seed) {
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n * LEN; i++) x[i] = cg_rng_uniform(&rng);
}

/* A whole-pixel shift moves the pixel by exactly (dx, dy), nothing else
 * lit; a fractional one spreads it over four pixels with its centre of
 * mass moved by (dx, dy); in a batch, every image by its own draw. */
static void test_augment_shift_moves_a_pixel(void **state) {
    (void)state;
    float src[LEN], dst[LEN];
    one_pixel(src, SIDE, 5, 7);
    const cg_affine whole = {2.0f, -3.0f, 0.0f, 1.0f};
    cg_affine_warp(&whole, src, dst, 1, SIDE, SIDE);
    for (int64_t i = 0; i < LEN; i++) assert_true(dst[i] == (i == 4 * SIDE + 7 ? 1.0f : 0.0f));

    const cg_augment a = {.max_shift = 2.0f, .seed = 11};
    enum { N = 40 };
    float *batch = malloc(sizeof *batch * N * LEN);
    assert_non_null(batch);
    for (int i = 0; i < N; i++) one_pixel(batch + i * LEN, SIDE, 10 + i % 7, 12 + i % 5);
    assert_int_equal(cg_augment_batch(&a, 3, 100, batch, N, 1, SIDE, SIDE), CG_OK);
    int fractional = 0;
    for (int i = 0; i < N; i++) {
        const cg_affine t = cg_augment_draw(&a, 3, 100 + i);
        assert_true(fabsf(t.dx) <= 2.0f && fabsf(t.dy) <= 2.0f);
        assert_true(t.angle_deg == 0.0f && t.scale == 1.0f);
        fractional += t.dx != floorf(t.dx);
        double total, cx, cy;
        mass_centre(batch + i * LEN, SIDE, &total, &cx, &cy);
        cg_assert_close(total, 1.0, 1e-5, 0, "a shifted pixel's total");
        cg_assert_close(cx, 10 + i % 7 + t.dx, 1e-4, 0, "centre x after the shift");
        cg_assert_close(cy, 12 + i % 5 + t.dy, 1e-4, 0, "centre y after the shift");
    }
    assert_true(fractional > N / 2); /* the draws are continuous */
    free(batch);
}

/* A quarter turn about the centre: y grows downwards, so a pixel right of
 * the centre goes below it; a zoom by 2 doubles its distance from it. */
static void test_augment_rotation_and_zoom(void **state) {
    (void)state;
    float src[25], dst[25];
    one_pixel(src, 5, 3, 2);
    const cg_affine quarter = {0.0f, 0.0f, 90.0f, 1.0f};
    cg_affine_warp(&quarter, src, dst, 1, 5, 5);
    cg_assert_close(dst[3 * 5 + 2], 1.0, 1e-5, 0, "the pixel after a quarter turn");
    const cg_affine zoom = {0.0f, 0.0f, 0.0f, 2.0f};
    cg_affine_warp(&zoom, src, dst, 1, 5, 5);
    cg_assert_close(dst[2 * 5 + 4], 1.0, 1e-6, 0, "the pixel after a zoom by 2");
    cg_assert_close(dst[2 * 5 + 3], 0.5, 1e-6, 0, "half way between, interpolated");
}

/* No shift, rotation or zoom: the images stay as they were, bit for bit,
 * through the batch call and through the warp itself. */
static void test_augment_zero_is_identity(void **state) {
    (void)state;
    enum { N = 8 };
    float x[N * LEN], want[N * LEN], out[LEN];
    random_images(x, N, 1);
    memcpy(want, x, sizeof x);
    const cg_augment none = {.seed = 5}, unit_zoom = {.min_scale = 1.0f, .max_scale = 1.0f};
    assert_false(cg_augment_enabled(&none));
    assert_false(cg_augment_enabled(&unit_zoom));
    assert_false(cg_augment_enabled(NULL));
    assert_int_equal(cg_augment_batch(&none, 0, 0, x, N, 1, SIDE, SIDE), CG_OK);
    assert_int_equal(cg_augment_batch(NULL, 0, 0, x, N, 1, SIDE, SIDE), CG_OK);
    assert_memory_equal(x, want, sizeof x);
    const cg_affine id = cg_augment_draw(&none, 7, 3);
    assert_true(id.dx == 0.0f && id.dy == 0.0f && id.angle_deg == 0.0f && id.scale == 1.0f);
    cg_affine_warp(&id, x, out, 1, SIDE, SIDE);
    assert_memory_equal(out, x, sizeof out);
}

/* The same seed and step give the same bits on one thread and on two (and
 * two channels are moved alike); another step or seed other images. */
static void test_augment_deterministic_for_seed_and_threads(void **state) {
    (void)state;
    enum { N = 96, C = 2 };
    const size_t bytes = sizeof(float) * N * C * LEN;
    float *orig = malloc(bytes), *one = malloc(bytes), *two = malloc(bytes), *other = malloc(bytes);
    assert_true(orig && one && two && other);
    random_images(orig, N * C, 2);
    const cg_augment a = {.max_shift = 2.0f,
                          .max_rotate_deg = 10.0f,
                          .min_scale = 0.9f,
                          .max_scale = 1.1f,
                          .seed = 42};
    const int prev = cg_get_num_threads();
    memcpy(one, orig, bytes);
    cg_set_num_threads(1);
    assert_int_equal(cg_augment_batch(&a, 17, 0, one, N, C, SIDE, SIDE), CG_OK);
    memcpy(two, orig, bytes);
    cg_set_num_threads(2);
    assert_int_equal(cg_augment_batch(&a, 17, 0, two, N, C, SIDE, SIDE), CG_OK);
    cg_set_num_threads(prev);
    assert_memory_equal(one, two, bytes);
    assert_memory_not_equal(one, orig, bytes);
    /* Channel 1 of each image is channel 0 moved the same way: the same
     * input in both planes gives the same output in both. */
    float pair[2 * LEN];
    memcpy(pair, orig, sizeof(float) * LEN);
    memcpy(pair + LEN, orig, sizeof(float) * LEN);
    assert_int_equal(cg_augment_batch(&a, 17, 0, pair, 1, 2, SIDE, SIDE), CG_OK);
    assert_memory_equal(pair, pair + LEN, sizeof(float) * LEN);
    /* Item numbers from first_item: the batch's second half done alone. */
    memcpy(other, orig + (size_t)(N / 2) * C * LEN, bytes / 2);
    assert_int_equal(cg_augment_batch(&a, 17, N / 2, other, N / 2, C, SIDE, SIDE), CG_OK);
    assert_memory_equal(other, one + (size_t)(N / 2) * C * LEN, bytes / 2);
    memcpy(other, orig, bytes);
    assert_int_equal(cg_augment_batch(&a, 18, 0, other, N, C, SIDE, SIDE), CG_OK);
    assert_memory_not_equal(other, one, bytes);
    const cg_augment b = {.max_shift = 2.0f,
                          .max_rotate_deg = 10.0f,
                          .min_scale = 0.9f,
                          .max_scale = 1.1f,
                          .seed = 43};
    memcpy(other, orig, bytes);
    assert_int_equal(cg_augment_batch(&b, 17, 0, other, N, C, SIDE, SIDE), CG_OK);
    assert_memory_not_equal(other, one, bytes);
    /* The draws stay in their ranges. */
    for (int i = 0; i < 1000; i++) {
        const cg_affine t = cg_augment_draw(&a, (uint64_t)i, i);
        assert_true(fabsf(t.dx) <= 2.0f && fabsf(t.dy) <= 2.0f && fabsf(t.angle_deg) <= 10.0f);
        assert_true(t.scale >= 0.9f && t.scale <= 1.1f);
    }
    free(orig);
    free(one);
    free(two);
    free(other);
}

/* Shifts far past the edge, big zooms and rotations on small and odd
 * images read only inside them (the sanitizer build checks the reads):
 * every output is a weighted mean of pixels in [0, 1] and zeros. Bad
 * configs and shapes are refused with a message. */
static void test_augment_bounds_and_bad_input(void **state) {
    (void)state;
    const cg_augment wild = {.max_shift = 40.0f,
                             .max_rotate_deg = 180.0f,
                             .min_scale = 0.1f,
                             .max_scale = 8.0f,
                             .seed = 3};
    const int64_t sizes[][2] = {{1, 1}, {1, 7}, {5, 3}, {28, 28}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t h = sizes[s][0], w = sizes[s][1], n = 50;
        float *x = malloc(sizeof *x * (size_t)(n * h * w));
        assert_non_null(x);
        for (int64_t i = 0; i < n * h * w; i++) x[i] = (float)((i * 37) % 101) / 100.0f;
        for (uint64_t step = 0; step < 4; step++) {
            assert_int_equal(cg_augment_batch(&wild, step, 0, x, n, 1, h, w), CG_OK);
            for (int64_t i = 0; i < n * h * w; i++) assert_true(x[i] >= 0.0f && x[i] <= 1.000001f);
        }
        free(x);
    }
    float x[LEN] = {0};
    const cg_augment bad[] = {{.max_shift = -1.0f},
                              {.max_shift = NAN},
                              {.max_rotate_deg = 200.0f},
                              {.min_scale = 1.2f, .max_scale = 1.1f},
                              {.min_scale = -0.5f, .max_scale = 1.0f}};
    const char *says[] = {"max_shift", "max_shift", "max_rotate_deg", "scale range", "scale range"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cg_augment_batch(&bad[i], 0, 0, x, 1, 1, SIDE, SIDE), CG_ERR_ARG);
        assert_non_null(strstr(cg_last_error(), says[i]));
    }
    const cg_augment ok = {.max_shift = 1.0f};
    assert_int_equal(cg_augment_batch(&ok, 0, 0, x, 1, 1, 0, SIDE), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "augment: needs"));
    assert_int_equal(cg_augment_batch(&ok, 0, 0, NULL, 2, 1, SIDE, SIDE), CG_ERR_ARG);
    assert_int_equal(cg_augment_batch(&ok, 0, 0, NULL, 0, 1, SIDE, SIDE), CG_OK);
}

/* ------------------------------------------------------------------ */
/* In cg_fit                                                           */
/* ------------------------------------------------------------------ */

enum { N_FIT = 120, FIT_CLASSES = 3 };

/* Images with a class-dependent bright bar and noise, as bytes and floats. */
static void make_dataset(cg_dataset *ds) {
    static uint8_t pixels[N_FIT * LEN], labels[N_FIT];
    cg_rng rng;
    cg_rng_seed(&rng, 8);
    for (int i = 0; i < N_FIT; i++) {
        labels[i] = (uint8_t)(i % FIT_CLASSES);
        for (int p = 0; p < LEN; p++) {
            const int row = p / SIDE;
            const bool bar = row >= 6 + 6 * labels[i] && row < 10 + 6 * labels[i];
            pixels[i * LEN + p] =
                (uint8_t)(bar ? 200 + cg_rng_below(&rng, 56) : cg_rng_below(&rng, 80));
        }
    }
    assert_int_equal(cg_dataset_from_u8(ds, "test", "bars", pixels, labels, N_FIT, SIDE, SIDE),
                     CG_OK);
}

typedef struct last_score {
    cg_score valid;
} last_score;

static bool keep_score(void *user, const cg_epoch_record *r, const cg_score *valid) {
    (void)r;
    ((last_score *)user)->valid = *valid;
    return true;
}

/* A model trained two epochs from the same weights with augmentation `a`;
 * its last validation score (as fit reported it) into *score. */
static cg_model *fit_with(const cg_dataset *ds, const cg_augment *a, cg_score *score) {
    cg_rng rng;
    cg_rng_seed(&rng, 4);
    cg_model *m = cg_model_for_images("conv:4:3:2,relu,gap,linear", NULL, 1, SIDE, SIDE,
                                      FIT_CLASSES, CG_INIT_KAIMING, 0.0f, &rng);
    assert_non_null(m);
    last_score seen = {0};
    cg_fit_config fc = {.epochs = 2,
                        .bs = 32,
                        .seed = 1,
                        .shuffle = true,
                        .loss = CG_LOSS_CE,
                        .opt = cg_adam_config(0.01f),
                        .on_epoch = keep_score,
                        .user = &seen,
                        .augment = a};
    cg_score final;
    assert_int_equal(cg_fit(m, ds, ds, &fc, NULL, &final), CG_OK);
    assert_memory_equal(&seen.valid, &final, sizeof final);
    *score = final;
    return m;
}

static bool same_weights(const cg_model *a, const cg_model *b) {
    for (int i = 0; i < a->n_params; i++)
        if (memcmp(a->params[i]->data, b->params[i]->data,
                   sizeof(float) * (size_t)a->params[i]->numel) != 0)
            return false;
    return true;
}

/* fit with augmentation trains on other images (other weights) but scores
 * the validation set as it is: its reported score is the trained model's
 * cg_model_evaluate, bit for bit. A zero config is no augmentation at all. */
static void test_augment_fit_leaves_validation_alone(void **state) {
    (void)state;
    cg_dataset ds = {0};
    make_dataset(&ds);
    const cg_augment on = {.max_shift = 2.0f,
                           .max_rotate_deg = 10.0f,
                           .min_scale = 0.9f,
                           .max_scale = 1.1f,
                           .seed = 9},
                     zero = {.seed = 9};
    cg_score plain, with_zero, with_aug, again;
    cg_model *m0 = fit_with(&ds, NULL, &plain), *mz = fit_with(&ds, &zero, &with_zero),
             *ma = fit_with(&ds, &on, &with_aug);
    assert_true(same_weights(m0, mz));
    assert_memory_equal(&plain, &with_zero, sizeof plain);
    assert_false(same_weights(m0, ma));
    assert_int_equal(cg_model_evaluate(ma, &ds, CG_LOSS_CE, &again), CG_OK);
    assert_memory_equal(&again, &with_aug, sizeof again);
    /* A bad config is refused before any step. */
    const cg_augment bad = {.max_shift = -2.0f};
    cg_fit_config fc = {
        .epochs = 1, .bs = 32, .loss = CG_LOSS_CE, .opt = cg_adam_config(0.01f), .augment = &bad};
    assert_int_equal(cg_fit(m0, &ds, &ds, &fc, NULL, NULL), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "fit: augment's max_shift"));
    cg_model_free(m0);
    cg_model_free(mz);
    cg_model_free(ma);
    cg_dataset_free(&ds);
}

/* ------------------------------------------------------------------ */
/* The resnet's default on full MNIST (CTest label ten_classes)        */
/* ------------------------------------------------------------------ */

/* `cgrad ARGS` (testutil's runner): its exit status, and in line the last
 * line of its output (stdout, then stderr) that holds `want`. */
static int run_cgrad(const char *args, const char *want, char *line, size_t size) {
    cg_test_run r = cg_test_cgrad(0, "%s", args);
    line[0] = '\0';
    for (int k = 0; k < 2; k++)
        for (char *t = strtok(k ? r.err : r.out, "\n"); t; t = strtok(NULL, "\n"))
            if (strstr(t, want)) snprintf(line, size, "%s", t);
    int status = r.status;
    cg_test_run_free(&r);
    return status;
}

/* --no-augment with a size is a usage error; --json records what was
 * used: shifts for the resnet (its default), none for the cnn, --shift alone turns on only
 * shifts for any model, and a size beside --augment changes that one
 * transform, keeping the default shift (one epoch each). */
static void test_augment_cli_options(void **state) {
    (void)state;
    char line[8192];
    assert_int_equal(
        run_cgrad("train --model resnet --no-augment --shift 1", "--no-augment", line, sizeof line),
        2);
    assert_non_null(strstr(line, "give one or the other"));
    if (!cg_test_data_dir()) skip();
    const char *const runs[][2] = {
        {"train --model resnet --epochs 1 --json --quiet",
         "\"augment\":{\"shift\":2,\"rotate\":0,\"zoom\":0}"},
        {"train --model cnn --epochs 1 --json --quiet", "\"augment\":null"},
        {"train --arch conv:4:3:2,relu,gap,linear --epochs 1 --json --quiet --shift 1.5",
         "\"augment\":{\"shift\":1.5,\"rotate\":0,\"zoom\":0}"},
        {"train --arch conv:4:3:2,relu,gap,linear --epochs 1 --json --quiet --augment --rotate 5",
         "\"augment\":{\"shift\":2,\"rotate\":5,\"zoom\":0}"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        assert_int_equal(run_cgrad(runs[i][0], "\"command\":\"train\"", line, sizeof line), 0);
        if (!strstr(line, runs[i][1])) fail_msg("%s: no %s in %s", runs[i][0], runs[i][1], line);
    }
}

/* `cgrad train --model resnet --dataset mnist --json`: its summary line's
 * accuracy on the 10,000 test images reaches 0.995, augmented. */
static void test_augment_ten_classes_resnet(void **state) {
    (void)state;
    const char *data = cg_test_data_dir();
    char path[1024], line[8192];
    if (!data) skip();
    snprintf(path, sizeof path, "%s/mnist", data);
    if (access(path, R_OK) != 0) {
        printf("skipped: no %s\n", path);
        skip();
    }
    assert_int_equal(run_cgrad("train --model resnet --dataset mnist --threads 2 --json --quiet",
                               "\"command\":\"train\"", line, sizeof line),
                     0);
    const char *acc = strstr(line, "\"accuracy\":"), *secs = strstr(line, "\"seconds\":");
    if (!acc) fail_msg("no summary line from train --model resnet --dataset mnist");
    assert_non_null(strstr(line, "\"augment\":{\"shift\":"));
    assert_non_null(strstr(line, "\"n\":10000"));
    const double accuracy = strtod(acc + strlen("\"accuracy\":"), NULL);
    printf("ten classes: resnet, augmented: accuracy %.4f (target 0.995), %.1f s\n", accuracy,
           secs ? strtod(secs + strlen("\"seconds\":"), NULL) : NAN);
    if (!(accuracy >= 0.995)) fail_msg("resnet on full MNIST: accuracy %.4f < 0.995", accuracy);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_augment_shift_moves_a_pixel),
    cmocka_unit_test(test_augment_rotation_and_zoom),
    cmocka_unit_test(test_augment_zero_is_identity),
    cmocka_unit_test(test_augment_deterministic_for_seed_and_threads),
    cmocka_unit_test(test_augment_bounds_and_bad_input),
    cmocka_unit_test(test_augment_fit_leaves_validation_alone),
    cmocka_unit_test(test_augment_cli_options),
    cmocka_unit_test(test_augment_ten_classes_resnet),
};

CG_TEST_MAIN(tests)
