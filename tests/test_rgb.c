/*
 * test_rgb.c - colour images keep their channels: RGB, RGBA and palette
 * PNGs (written here with libpng) read as three planes (CHW), a folder
 * with any colour image loads as [N, 3*H*W], gray images beside them
 * replicated; the cache keeps the channels; CNN and linear models train
 * on colour alone, through the library and through `cgrad train`, and
 * eval, predict and serve treat RGB models as such.
 *
 * The data: 12x10 images of a 4x4 square on black, "red" (200, 60, 60) or
 * "blue" (40, 110, 220) - two colours of the same gray level (101, through
 * libpng's BT.601 luma), placed the same way in both classes. So read
 * gray, the two classes are the same images, and only colour tells them
 * apart.
 */
#include "testutil.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define W 12
#define H 10
#define HW (W * H)
#define SQ 4
#define N_TRAIN 18 /* per class */
#define N_VALID 6

static const uint8_t COLOURS[2][3] = {{40, 110, 220}, {200, 60, 60}}; /* blue, red */
static const char *const CLASSES[2] = {"blue", "red"};
#define GRAY_LEVEL 101

/* This test's temporary folder, made on first use (cg_test_tmpdir makes
 * a new one on every call). */
static const char *tmpdir(void) {
    static char dir[256];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    return dir;
}

static char *join(char *buf, const char *a, const char *b) {
    int n = snprintf(buf, 1024, "%s/%s", a, b);
    assert_true(n > 0 && n < 1024);
    return buf;
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0) fail_msg("cannot make %s", path);
}

/* ------------------------------------------------------------------ */
/* Writing PNGs with libpng                                            */
/* ------------------------------------------------------------------ */

/* A W x H 8-bit PNG of `s`'s type (testutil's writer) from rows of packed
 * samples (W * samples per pixel bytes a row). */
static void write_png(const char *path, const cg_test_png_spec *s, const uint8_t *data) {
    cg_test_png_spec sized = *s;
    sized.w = W;
    sized.h = H;
    sized.bit_depth = 8;
    cg_test_write_png(path, &sized, data);
}

/* Whether pixel i of image k lies in its square (the same place for both
 * classes). */
static bool in_square(int k, int i) {
    const int pos = (k * 5) % ((W - SQ + 1) * (H - SQ + 1));
    const int x0 = pos % (W - SQ + 1), y0 = pos / (W - SQ + 1), x = i % W, y = i / W;
    return x >= x0 && x < x0 + SQ && y >= y0 && y < y0 + SQ;
}

/* Image k of class c as the planes a loader must give: R, G, B. */
static void expected_planes(int c, int k, uint8_t *planes) {
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < HW; i++) planes[ch * HW + i] = in_square(k, i) ? COLOURS[c][ch] : 0;
}

/* Image k of class c written as PNG colour type `kind`: 0 RGB, 1 RGBA
 * (alpha 0 outside the square, 77 inside: dropped), 2 a palette of black
 * and the colour (the black entry transparent, by tRNS: dropped too). */
static void write_colour(const char *path, int c, int k, int kind) {
    uint8_t data[4 * HW];
    if (kind == 2) {
        const png_color pal[2] = {{0, 0, 0}, {COLOURS[c][0], COLOURS[c][1], COLOURS[c][2]}};
        const png_byte trns[1] = {0};
        for (int i = 0; i < HW; i++) data[i] = in_square(k, i);
        write_png(path,
                  &(cg_test_png_spec){.color_type = PNG_COLOR_TYPE_PALETTE,
                                      .palette = pal,
                                      .n_palette = 2,
                                      .trns = trns,
                                      .n_trns = 1},
                  data);
        return;
    }
    const int spp = kind == 1 ? 4 : 3;
    for (int i = 0; i < HW; i++) {
        for (int ch = 0; ch < 3; ch++) data[spp * i + ch] = in_square(k, i) ? COLOURS[c][ch] : 0;
        if (spp == 4) data[4 * i + 3] = in_square(k, i) ? 77 : 0;
    }
    write_png(
        path,
        &(cg_test_png_spec){.color_type = kind == 1 ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB},
        data);
}

/* A gray image: pixel i is (seed + 11 i) mod 256. */
static void write_gray(const char *path, int seed, uint8_t *px) {
    for (int i = 0; i < HW; i++) px[i] = (uint8_t)((seed + 11 * i) & 255);
    assert_int_equal(cg_png_write_gray(path, px, W, H), CG_OK);
}

/* ROOT/{train,valid}/{blue,red}/NN.png, the PNG types taking turns. */
static const char *make_colour_root(const char *name) {
    static char root[1024];
    char split[1024], dir[1024], p[1024];
    join(root, tmpdir(), name);
    make_dir(root);
    for (int s = 0; s < 2; s++) {
        make_dir(join(split, root, s ? "valid" : "train"));
        for (int c = 0; c < 2; c++) {
            make_dir(join(dir, split, CLASSES[c]));
            for (int k = 0; k < (s ? N_VALID : N_TRAIN); k++) {
                char file[32];
                snprintf(file, sizeof file, "%02d.png", k);
                /* valid images sit elsewhere than the training ones */
                write_colour(join(p, dir, file), c, s ? 100 + k : k, k % 3);
            }
        }
    }
    return root;
}

static void load(cg_dataset *ds, const char *root, const char *split, int channels) {
    char dir[1024];
    if (cg_dataset_load_folder_as(ds, join(dir, root, split), NULL, channels) != CG_OK)
        fail_msg("%s", cg_last_error());
}

/* ------------------------------------------------------------------ */
/* Reading one PNG                                                     */
/* ------------------------------------------------------------------ */

static void test_rgb_png_planes(void **state) {
    (void)state;
    char p[1024];
    const char *tmp = tmpdir();
    uint8_t want[3 * HW];
    for (int kind = 0; kind < 3; kind++)
        for (int c = 0; c < 2; c++) {
            join(p, tmp, "one.png");
            write_colour(p, c, 7, kind);
            expected_planes(c, 7, want);
            cg_image img;
            /* as the file is: colour, so three planes R, G, B */
            if (cg_png_read_image(p, 0, &img) != CG_OK) fail_msg("%s", cg_last_error());
            assert_int_equal(img.channels, 3);
            assert_int_equal(img.width, W);
            assert_int_equal(img.height, H);
            assert_memory_equal(img.pixels, want, sizeof want);
            free(img.pixels);
            /* gray: the luma, the same level for both colours (composited
             * on black where there is alpha, as the gray loader does) */
            if (cg_png_read_image(p, 1, &img) != CG_OK) fail_msg("%s", cg_last_error());
            assert_int_equal(img.channels, 1);
            const int level = kind == 1 ? (GRAY_LEVEL * 77 + 127) / 255 : GRAY_LEVEL;
            for (int i = 0; i < HW; i++)
                assert_int_equal(img.pixels[i], in_square(7, i) ? level : 0);
            free(img.pixels);
        }

    /* A gray PNG is one plane as it is, three equal planes as RGB. */
    uint8_t gray[HW];
    write_gray(join(p, tmp, "gray.png"), 5, gray);
    cg_image img;
    assert_int_equal(cg_png_read_image(p, 0, &img), CG_OK);
    assert_int_equal(img.channels, 1);
    assert_memory_equal(img.pixels, gray, HW);
    free(img.pixels);
    assert_int_equal(cg_png_read_image(p, 3, &img), CG_OK);
    assert_int_equal(img.channels, 3);
    for (int ch = 0; ch < 3; ch++) assert_memory_equal(img.pixels + ch * HW, gray, HW);
    free(img.pixels);

    /* A palette of grays is gray. */
    const png_color grays[2] = {{0, 0, 0}, {180, 180, 180}};
    uint8_t idx[HW];
    for (int i = 0; i < HW; i++) idx[i] = (uint8_t)(i % 2);
    write_png(
        join(p, tmp, "graypal.png"),
        &(cg_test_png_spec){.color_type = PNG_COLOR_TYPE_PALETTE, .palette = grays, .n_palette = 2},
        idx);
    assert_int_equal(cg_png_read_image(p, 0, &img), CG_OK);
    assert_int_equal(img.channels, 1);
    for (int i = 0; i < HW; i++) assert_int_equal(img.pixels[i], i % 2 ? 180 : 0);
    free(img.pixels);

    /* Other counts are refused, naming the file. */
    assert_int_equal(cg_png_read_image(p, 2, &img), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "graypal.png"));
    assert_null(img.pixels);
}

/* A PNG as a model's item: [C, H, W] reads C planes; a flat row gray or
 * RGB as its length says; other sizes are refused, naming both. */
static void test_rgb_png_as_model_item(void **state) {
    (void)state;
    char p[1024];
    join(p, tmpdir(), "item.png");
    write_colour(p, 1, 3, 0);
    uint8_t want[3 * HW], *px;
    expected_planes(1, 3, want);
    const int64_t rgb[3] = {3, H, W}, gray[3] = {1, H, W}, flat_rgb[1] = {3 * HW},
                  flat_gray[1] = {HW};
    assert_int_equal(cg_png_read_item(p, rgb, 3, &px), CG_OK);
    assert_memory_equal(px, want, sizeof want);
    free(px);
    assert_int_equal(cg_png_read_item(p, flat_rgb, 1, &px), CG_OK);
    assert_memory_equal(px, want, sizeof want);
    free(px);
    assert_int_equal(cg_png_read_item(p, gray, 3, &px), CG_OK);
    for (int i = 0; i < HW; i++) assert_int_equal(px[i], in_square(3, i) ? GRAY_LEVEL : 0);
    free(px);
    assert_int_equal(cg_png_read_item(p, flat_gray, 1, &px), CG_OK);
    assert_int_equal(px[0], in_square(3, 0) ? GRAY_LEVEL : 0);
    free(px);
    const int64_t other[3] = {3, W, H}, odd[1] = {2 * HW}, four[3] = {4, H, W};
    assert_int_equal(cg_png_read_item(p, other, 3, &px), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "is 12x10; the model takes 10x12"));
    assert_null(px);
    assert_int_equal(cg_png_read_item(p, odd, 1, &px), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "takes 240 values"));
    assert_int_equal(cg_png_read_item(p, four, 3, &px), CG_ERR_SHAPE);
    assert_non_null(strstr(cg_last_error(), "4 channels"));
}

/* ------------------------------------------------------------------ */
/* Folders                                                             */
/* ------------------------------------------------------------------ */

static void test_rgb_folder_loads_planes(void **state) {
    (void)state;
    const char *root = make_colour_root("colour");
    cg_dataset ds;
    load(&ds, root, "train", 0);
    assert_int_equal(ds.channels, 3);
    assert_int_equal(ds.height, H);
    assert_int_equal(ds.width, W);
    assert_int_equal(cg_dataset_size(&ds), 2 * N_TRAIN);
    assert_int_equal(cg_dataset_image_numel(&ds), 3 * HW);
    cg_assert_shape(ds.x, (int64_t[]){2 * N_TRAIN, 3 * HW}, 2);
    assert_string_equal(ds.class_names[0], "blue");
    assert_string_equal(ds.class_names[1], "red");
    uint8_t want[3 * HW];
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < N_TRAIN; k++) {
            const int64_t i = c * N_TRAIN + k;
            expected_planes(c, k, want);
            assert_int_equal((int)ds.y->data[i], c);
            assert_memory_equal(ds.pixels + i * 3 * HW, want, sizeof want);
            for (int j = 0; j < 3 * HW; j++)
                assert_true(ds.x->data[i * 3 * HW + j] == (float)want[j] / 255.0f);
        }
    cg_assert_batches_match(&ds); /* [n, 3*H*W] rows, from bytes or floats */
    /* A class's mean image has its three planes too. */
    cg_scope_begin();
    cg_tensor *mean = cg_dataset_mean_image(&ds, 1);
    assert_non_null(mean);
    assert_int_equal(mean->numel, 3 * HW);
    cg_scope_end();

    /* Read gray, the classes are the same images: a gray loader could not
     * tell them apart. */
    cg_dataset gray;
    load(&gray, root, "train", 1);
    assert_int_equal(gray.channels, 1);
    assert_int_equal(cg_dataset_image_numel(&gray), HW);
    assert_memory_equal(gray.pixels, gray.pixels + N_TRAIN * HW, (size_t)(N_TRAIN * HW));
    cg_dataset_free(&gray);

    /* select_classes keeps the channels */
    const char *only[1] = {"red"};
    assert_int_equal(cg_dataset_select_classes(&ds, only, 1), CG_OK);
    assert_int_equal(ds.channels, 3);
    expected_planes(1, 0, want);
    assert_memory_equal(ds.pixels, want, sizeof want);
    cg_dataset_free(&ds);
}

/* One colour image makes a folder RGB: its gray images (plain and gray
 * palette) become three equal planes. Without it the folder is gray. */
static void test_rgb_mixed_folder(void **state) {
    (void)state;
    char root[1024], d[1024], p[1024];
    join(root, tmpdir(), "mixed");
    make_dir(root);
    make_dir(join(d, root, "a"));
    uint8_t g0[HW], g1[HW];
    write_gray(join(p, d, "0.png"), 3, g0);
    write_gray(join(p, d, "1.png"), 90, g1);
    const png_color grays[2] = {{0, 0, 0}, {66, 66, 66}};
    uint8_t idx[HW];
    for (int i = 0; i < HW; i++) idx[i] = (uint8_t)(i % 3 == 0);
    write_png(
        join(p, d, "2.png"),
        &(cg_test_png_spec){.color_type = PNG_COLOR_TYPE_PALETTE, .palette = grays, .n_palette = 2},
        idx);

    cg_dataset ds;
    if (cg_dataset_load_folder(&ds, root) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(ds.channels, 1);
    assert_memory_equal(ds.pixels, g0, HW);
    assert_memory_equal(ds.pixels + HW, g1, HW);
    cg_dataset_free(&ds);

    write_colour(join(p, d, "3.png"), 1, 2, 0);
    if (cg_dataset_load_folder(&ds, root) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(ds.channels, 3);
    assert_int_equal(cg_dataset_size(&ds), 4);
    for (int ch = 0; ch < 3; ch++) {
        assert_memory_equal(ds.pixels + ch * HW, g0, HW);
        assert_memory_equal(ds.pixels + 3 * HW + ch * HW, g1, HW);
        for (int i = 0; i < HW; i++)
            assert_int_equal(ds.pixels[6 * HW + ch * HW + i], i % 3 == 0 ? 66 : 0);
    }
    uint8_t want[3 * HW];
    expected_planes(1, 2, want);
    assert_memory_equal(ds.pixels + 9 * HW, want, sizeof want);
    cg_dataset_free(&ds);

    /* Forced gray, the colour image is its luma. */
    if (cg_dataset_load_folder_as(&ds, root, NULL, 1) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(ds.channels, 1);
    assert_memory_equal(ds.pixels, g0, HW);
    assert_int_equal(ds.pixels[3 * HW + HW - 1], in_square(2, HW - 1) ? GRAY_LEVEL : 0);
    cg_dataset_free(&ds);
    assert_int_equal(cg_dataset_load_folder_as(&ds, root, NULL, 2), CG_ERR_ARG);
}

/* The cache gives the same three planes, says how many in its header
 * (version 2), and an old version-1 file is rebuilt, never misread. */
static void test_rgb_cache(void **state) {
    (void)state;
    const char *root = make_colour_root("cached");
    char cache[1024], dir[1024];
    join(cache, tmpdir(), "cache");
    make_dir(cache);
    join(dir, root, "train");
    cg_dataset plain, first, again;
    load(&plain, root, "train", 0);
    assert_int_equal(cg_dataset_load_folder_cached(&first, dir, cache), CG_OK);
    assert_int_equal(cg_dataset_load_folder_cached(&again, dir, cache), CG_OK);
    const size_t bytes = (size_t)(2 * N_TRAIN * 3 * HW);
    for (const cg_dataset *d = &first; d; d = d == &first ? &again : NULL) {
        assert_int_equal(d->channels, 3);
        assert_memory_equal(d->pixels, plain.pixels, bytes);
        assert_memory_equal(d->x->data, plain.x->data, bytes * sizeof(float));
        assert_memory_equal(d->y->data, plain.y->data, 2 * N_TRAIN * sizeof(float));
    }
    cg_dataset_free(&first);
    cg_dataset_free(&again);

    /* The one cache file: version 2, channels 3 at offset 48. */
    char cmd[2048], file[1024];
    snprintf(cmd, sizeof cmd, "ls '%s'/images-*.cgimg", cache);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    assert_non_null(fgets(file, sizeof file, ls));
    file[strcspn(file, "\n")] = '\0';
    char more[1024];
    assert_null(fgets(more, sizeof more, ls));
    pclose(ls);
    size_t len;
    uint8_t *buf = cg_test_read_file(file, &len);
    assert_int_equal(len, 56 + 2 * 32 + 2 * N_TRAIN + bytes + 4);
    assert_int_equal(buf[8], 2);
    assert_int_equal(buf[48], 3);
    /* Rewritten as a version-1 file of the same size: not read, rebuilt. */
    buf[8] = 1;
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(buf);
    assert_int_equal(cg_dataset_load_folder_cached(&again, dir, cache), CG_OK);
    assert_int_equal(again.channels, 3);
    assert_memory_equal(again.pixels, plain.pixels, bytes);
    cg_dataset_free(&again);
    buf = cg_test_read_file(file, &len);
    assert_int_equal(buf[8], 2);
    free(buf);

    /* Read gray through the cache: its own file, and gray. */
    assert_int_equal(cg_dataset_load_folder_as(&again, dir, cache, 1), CG_OK);
    assert_int_equal(again.channels, 1);
    cg_dataset_free(&again);
    assert_int_equal(cg_dataset_load_folder_as(&again, dir, cache, 1), CG_OK);
    assert_int_equal(again.channels, 1);
    assert_memory_equal(again.pixels, again.pixels + N_TRAIN * HW, (size_t)(N_TRAIN * HW));
    cg_dataset_free(&again);
    assert_int_equal(cg_dataset_load_folder_cached(&again, dir, cache), CG_OK);
    assert_int_equal(again.channels, 3);
    cg_dataset_free(&again);
    cg_dataset_free(&plain);
}

/* MNIST stays one plane of 28x28. */
static void test_rgb_mnist_stays_gray(void **state) {
    (void)state;
    const char *data = cg_test_data_dir();
    if (!data) skip();
    char root[1024];
    join(root, data, "mnist_sample");
    cg_dataset ds;
    load(&ds, root, "valid", 0);
    assert_int_equal(ds.channels, 1);
    assert_int_equal(cg_dataset_image_numel(&ds), 784);
    cg_assert_shape(ds.x, (int64_t[]){cg_dataset_size(&ds), 784}, 2);
    cg_dataset_free(&ds);
}

/* ------------------------------------------------------------------ */
/* Training on colour                                                  */
/* ------------------------------------------------------------------ */

static double fit_and_score(cg_model *m, const cg_dataset *train, const cg_dataset *valid,
                            cg_loss_kind loss, cg_optim_config opt, int epochs) {
    cg_fit_config fc = {
        .epochs = epochs, .bs = 6, .seed = 1, .shuffle = true, .loss = loss, .opt = opt};
    cg_score s;
    if (cg_fit(m, train, valid, &fc, NULL, &s) != CG_OK) fail_msg("%s", cg_last_error());
    return s.accuracy;
}

static void test_rgb_models_train_on_colour(void **state) {
    (void)state;
    const char *root = make_colour_root("fit");
    cg_dataset train, valid;
    load(&train, root, "train", 0);
    load(&valid, root, "valid", 0);
    cg_rng rng;
    cg_rng_seed(&rng, 5);

    char spec[1024];
    const char *name;
    assert_int_equal(cg_model_preset(CG_MODEL_CNN, 0, 2, spec, sizeof spec, &name), CG_OK);
    cg_model *cnn = cg_model_for_images(spec, name, train.channels, train.height, train.width, 2,
                                        CG_INIT_PYTORCH, 0.0f, &rng);
    if (!cnn) fail_msg("%s", cg_last_error());
    assert_int_equal(cnn->in_ndim, 3);
    assert_int_equal(cnn->in_shape[0], 3);
    assert_int_equal(cnn->in_shape[1], H);
    assert_int_equal(cnn->in_shape[2], W);
    double acc = fit_and_score(cnn, &train, &valid, CG_LOSS_CE, cg_adam_config(0.01f), 8);
    printf("cnn on colour: accuracy %.4f\n", acc);
    assert_true(acc >= 0.99);

    cg_model *lin = cg_model_new(CG_MODEL_LINEAR, 3 * HW, 0, 1, CG_INIT_PYTORCH, 0.0f, &rng);
    assert_non_null(lin);
    acc = fit_and_score(lin, &train, &valid, CG_LOSS_MNIST, cg_sgd_config(1.0f), 20);
    printf("linear on colour: accuracy %.4f\n", acc);
    assert_true(acc >= 0.99);

    /* A model for gray images of the same size is refused on this data. */
    cg_model *gray = cg_model_new(CG_MODEL_LINEAR, HW, 0, 1, CG_INIT_PYTORCH, 0.0f, &rng);
    cg_fit_config fc = {.epochs = 1, .bs = 6, .loss = CG_LOSS_MNIST, .opt = cg_sgd_config(1.0f)};
    assert_int_equal(cg_fit(gray, &train, &valid, &fc, NULL, NULL), CG_ERR_SHAPE);
    /* On the data read gray, each blue image is a red one: whatever the
     * model learns, it calls each pair the same, so exactly half right. */
    cg_dataset gtrain, gvalid;
    load(&gtrain, root, "train", 1);
    load(&gvalid, root, "valid", 1);
    acc = fit_and_score(gray, &gtrain, &gvalid, CG_LOSS_MNIST, cg_sgd_config(1.0f), 20);
    printf("linear on the same data read gray: accuracy %.4f\n", acc);
    assert_true(acc == 0.5);
    cg_dataset_free(&gtrain);
    cg_dataset_free(&gvalid);
    cg_model_free(gray);
    cg_model_free(lin);
    cg_model_free(cnn);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
}

/* ------------------------------------------------------------------ */
/* The program                                                         */
/* ------------------------------------------------------------------ */

typedef struct run_result {
    int status;
    char *out, *err;
} run_result;

/* Runs `cgrad ARGS` from the build folder (ctest's CGRAD_TEST_BUILD). */
static run_result run(const char *fmt, ...) {
    const char *build = getenv("CGRAD_TEST_BUILD");
    if (!build || !*build) {
        printf("skipped: CGRAD_TEST_BUILD is not set\n");
        skip();
    }
    const char *tmp = tmpdir();
    char args[4096], cmd[8192], path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s/cgrad' %s >'%s/out' 2>'%s/err' </dev/null", build, args, tmp,
             tmp);
    int st = system(cmd);
    run_result r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, NULL, NULL};
    size_t len;
    r.out = (char *)cg_test_read_file(join(path, tmp, "out"), &len);
    r.err = (char *)cg_test_read_file(join(path, tmp, "err"), &len);
    return r;
}

static void expect_run(run_result *r, int status, const char *needle) {
    if (r->status != status || (needle && !strstr(r->out, needle) && !strstr(r->err, needle)))
        fail_msg("exit %d (expected %d), wanted \"%s\"\nstdout: %s\nstderr: %s", r->status, status,
                 needle ? needle : "", r->out, r->err);
    free(r->out);
    free(r->err);
}

/* The accuracy `cgrad train` or `cgrad eval` printed last. */
static double printed_accuracy(const char *out, const char *after) {
    const char *p = strstr(out, after), *last = NULL;
    for (; p; p = strstr(p + 1, after)) last = p;
    if (!last) fail_msg("no \"%s\" in: %s", after, out);
    return strtod(last + strlen(after), NULL);
}

static void test_rgb_cli_train_eval_predict(void **state) {
    (void)state;
    const char *root = make_colour_root("cli");
    const char *tmp = tmpdir();
    const char *models[2] = {"cnn", "linear"};
    for (int k = 0; k < 2; k++) {
        run_result r = run("train --data '%s' --model %s --epochs %d --bs 6 --save '%s/%s.cgm' "
                           "--summary",
                           root, models[k], k ? 20 : 8, tmp, models[k]);
        if (r.status != 0) fail_msg("train %s: %s%s", models[k], r.out, r.err);
        double acc = printed_accuracy(r.out, "accuracy ");
        printf("cgrad train --model %s on colour: accuracy %.4f\n", models[k], acc);
        assert_true(acc >= 0.99);
        if (k == 0) assert_non_null(strstr(r.out, "3, 10, 12")); /* the summary's input */
        free(r.out);
        free(r.err);

        r = run("eval '%s/%s.cgm' --data '%s'", tmp, models[k], root);
        if (r.status != 0) fail_msg("eval %s: %s%s", models[k], r.out, r.err);
        assert_true(printed_accuracy(r.out, "accuracy overall  ") >= 0.99);
        free(r.out);
        free(r.err);

        /* predict reads the PNGs as RGB: each class's colour */
        for (int c = 0; c < 2; c++) {
            char want[64];
            snprintf(want, sizeof want, ": %s (probability", CLASSES[c]);
            r = run("predict '%s/%s.cgm' '%s/valid/%s/04.png'", tmp, models[k], root, CLASSES[c]);
            expect_run(&r, 0, want);
        }
    }
    /* A gray model of the same size is told the data is RGB. */
    cg_rng rng;
    cg_rng_seed(&rng, 1);
    cg_model *gray = cg_model_new(CG_MODEL_LINEAR, HW, 0, 1, CG_INIT_PYTORCH, 0.0f, &rng);
    gray->n_classes = 2;
    snprintf(gray->class_names[0], CG_CLASS_NAME_MAX, "blue");
    snprintf(gray->class_names[1], CG_CLASS_NAME_MAX, "red");
    char path[1024];
    assert_int_equal(cg_model_save(gray, join(path, tmp, "gray.cgm")), CG_OK);
    cg_model_free(gray);
    run_result r = run("eval '%s' --data '%s'", path, root);
    expect_run(&r, 1, "the data's images are RGB 12x10");
}

/* One RGB split makes the other RGB too: training on colour with a gray
 * validation split still works (the gray images as three planes). */
static void test_rgb_cli_splits_agree(void **state) {
    (void)state;
    char root[1024], split[1024], d[1024], p[1024];
    join(root, tmpdir(), "agree");
    make_dir(root);
    for (int s = 0; s < 2; s++) {
        make_dir(join(split, root, s ? "valid" : "train"));
        for (int c = 0; c < 2; c++) {
            make_dir(join(d, split, CLASSES[c]));
            for (int k = 0; k < 4; k++) {
                char file[32];
                snprintf(file, sizeof file, "%d.png", k);
                uint8_t px[HW];
                if (s)
                    write_gray(join(p, d, file), 40 * c + k, px);
                else
                    write_colour(join(p, d, file), c, k, 0);
            }
        }
    }
    run_result r = run("train --data '%s' --model cnn --epochs 1 --bs 4", root);
    expect_run(&r, 0, "accuracy ");
    r = run("train --data '%s' --model linear --epochs 1 --bs 4", root);
    expect_run(&r, 0, "accuracy ");
}

/* serve draws 28x28 gray digits: an RGB model is refused, saying so. */
static void test_rgb_serve_refuses_rgb_model(void **state) {
    (void)state;
    cg_rng rng;
    cg_rng_seed(&rng, 2);
    char spec[1024], path[1024];
    const char *name;
    assert_int_equal(cg_model_preset(CG_MODEL_CNN, 0, 2, spec, sizeof spec, &name), CG_OK);
    cg_model *m = cg_model_for_images(spec, name, 3, 28, 28, 2, CG_INIT_PYTORCH, 0.0f, &rng);
    assert_non_null(m);
    m->n_classes = 2;
    snprintf(m->class_names[0], CG_CLASS_NAME_MAX, "a");
    snprintf(m->class_names[1], CG_CLASS_NAME_MAX, "b");
    assert_int_equal(cg_model_save(m, join(path, tmpdir(), "rgb28.cgm")), CG_OK);
    cg_model_free(m);
    run_result r = run("serve '%s' --port 0", path);
    expect_run(&r, 1,
               "takes items of 3x28x28 (2352 numbers); this needs 784: the page sends gray 28x28");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rgb_png_planes),
        cmocka_unit_test(test_rgb_png_as_model_item),
        cmocka_unit_test(test_rgb_folder_loads_planes),
        cmocka_unit_test(test_rgb_mixed_folder),
        cmocka_unit_test(test_rgb_cache),
        cmocka_unit_test(test_rgb_mnist_stays_gray),
        cmocka_unit_test(test_rgb_models_train_on_colour),
        cmocka_unit_test(test_rgb_cli_train_eval_predict),
        cmocka_unit_test(test_rgb_cli_splits_agree),
        cmocka_unit_test(test_rgb_serve_refuses_rgb_model),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
