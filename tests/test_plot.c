/*
 * test_plot.c - the pictures (cgrad/plot.h): each file is read back (PNGs
 * with the project's own reader, as 8-bit gray; SVGs as text) and checked
 * for its size and for a few things that must be where the picture puts
 * them, so that a blank, black or misdrawn picture fails.
 *
 * Gray levels the checks use (libpng's BT.601 luma of cairo's colours):
 * the page is 255, grid lines ~224, the first series' blue (#1f77b4) ~99,
 * frame and text ~26-38.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct picture {
    uint8_t *px;
    int64_t w, h;
} picture;

static picture read_png(const char *path) {
    picture p = {0};
    if (cg_png_read_gray(path, &p.px, &p.w, &p.h) != CG_OK) fail_msg("%s", cg_last_error());
    return p;
}

/* This test's folder (made once: cg_test_tmpdir makes a new one per
 * call) / name; the last four paths stay valid. */
static const char *tmp_dir(void) {
    static char dir[256];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    return dir;
}

static const char *tmp_path(const char *name) {
    static char paths[4][1024];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", tmp_dir(), name);
    return path;
}

/* Whether text has `line` as a whole line. */
static bool has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n' || p[-1] == '>') && (p[n] == '\n' || p[n] == '<'))
            return true;
    return false;
}

/* Pixels of (x0, y0, x1, y1) whose gray is in [lo, hi]: their count and
 * mean position. */
typedef struct ink {
    int64_t n;
    double mx, my;
} ink;

static ink ink_in(const picture *p, int64_t x0, int64_t y0, int64_t x1, int64_t y1, int lo,
                  int hi) {
    ink k = {0};
    for (int64_t y = y0; y < y1 && y < p->h; y++)
        for (int64_t x = x0; x < x1 && x < p->w; x++) {
            int v = p->px[y * p->w + x];
            if (v < lo || v > hi) continue;
            k.n++;
            k.mx += (double)x;
            k.my += (double)y;
        }
    if (k.n) {
        k.mx /= (double)k.n;
        k.my /= (double)k.n;
    }
    return k;
}

/* plot_function(torch.sigmoid, min=-4, max=4): the curve (its blue) rises
 * from near the bottom on the left to near the top on the right. */
static void sigmoid_png_rises_left_to_right(void **state) {
    (void)state;
    const char *path = tmp_path("sigmoid.png");
    assert_int_equal(cg_plot_function("sigmoid", -4, 4, "Sigmoid", path), CG_OK);
    picture p = read_png(path);
    assert_int_equal(p.w, 640);
    assert_int_equal(p.h, 480);
    /* Inside the axes (clear of tick labels and title): blue pixels. */
    ink left = ink_in(&p, 80, 50, 200, 420, 88, 112);
    ink right = ink_in(&p, 480, 50, 610, 420, 88, 112);
    assert_true(left.n > 50 && right.n > 50);
    assert_true(left.my > 330);  /* sigmoid(-4) = 0.018: the bottom */
    assert_true(right.my < 150); /* sigmoid(4) = 0.982: the top     */
    /* And the page is mostly white: not a black or empty picture. */
    ink white = ink_in(&p, 0, 0, p.w, p.h, 250, 255);
    assert_true(white.n > p.w * p.h / 2);
    free(p.px);
}

static void functions_cover_the_article_and_the_book(void **state) {
    (void)state;
    const char *want[] = {"sigmoid", "relu", "tanh", "square", "mnist_loss"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(cg_plot_function_name(i), want[i]);
        assert_int_equal(cg_plot_function(want[i], -2, 2, NULL, tmp_path("f.png")), CG_OK);
    }
    assert_null(cg_plot_function_name(5));
    assert_int_equal(cg_plot_function("cosh", -2, 2, NULL, tmp_path("f.png")), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "unknown function 'cosh'"));
    assert_non_null(strstr(cg_last_error(), "sigmoid"));
    assert_int_equal(cg_plot_function("relu", 2, 2, NULL, tmp_path("f.png")), CG_ERR_ARG);
}

/* relu: flat zero on the left half, rising on the right; ink on the left
 * stays at the bottom, on the right it climbs. */
static void relu_is_flat_then_rising(void **state) {
    (void)state;
    const char *path = tmp_path("relu.png");
    assert_int_equal(cg_plot_function("relu", -2, 2, NULL, path), CG_OK);
    picture p = read_png(path);
    ink left = ink_in(&p, 80, 50, 250, 420, 88, 112);
    ink far_right = ink_in(&p, 520, 50, 610, 420, 88, 112);
    assert_true(left.n > 50 && far_right.n > 20);
    assert_true(left.my > 380);
    assert_true(far_right.my < 150);
    free(p.px);
}

static char *read_text(const char *path) {
    size_t len;
    char *s = (char *)cg_test_read_file(path, &len);
    assert_non_null(s);
    return s;
}

/* An SVG: XML with the size in its <svg> tag, the title and the words as
 * text, and cairo's glyphs for them. */
static void svg_is_well_formed_with_its_text(void **state) {
    (void)state;
    const char *path = tmp_path("sigmoid.svg");
    assert_int_equal(cg_plot_function("sigmoid", -4, 4, "Sigmoid", path), CG_OK);
    char *s = read_text(path);
    assert_true(strncmp(s, "<?xml", 5) == 0);
    char *svg = strstr(s, "<svg");
    assert_non_null(svg);
    char *tag_end = strchr(svg, '>');
    assert_non_null(tag_end);
    *tag_end = '\0';
    assert_non_null(strstr(svg, "width=\"640px\""));
    assert_non_null(strstr(svg, "height=\"480px\""));
    *tag_end = '>';
    assert_non_null(strstr(s, "<title>Sigmoid</title>"));
    char *desc = strstr(s, "<desc>");
    assert_non_null(desc);
    assert_true(has_line(desc, "0.5")); /* a y tick */
    assert_true(has_line(desc, "-4"));  /* an x tick */
    assert_true(has_line(desc, "x"));   /* the x label */
    assert_non_null(strstr(s, "<use xlink:href=\"#glyph")); /* the text, drawn */
    assert_non_null(strstr(s, "<path"));                     /* the curve   */
    /* Ends with the closing tag: cairo finished the document. */
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    assert_true(n > 6 && strncmp(s + n - 6, "</svg>", 6) == 0);
    free(s);

    /* XML's special characters in words are escaped. */
    cg_plot_series ser = {.name = "a<b & c>d", .y = (const double[]){1, 2, 3}, .n = 3};
    cg_line_plot pl = {.title = "x < y & z", .series = &ser, .n_series = 1};
    assert_int_equal(cg_plot_lines(&pl, 0, 0, path), CG_OK);
    s = read_text(path);
    assert_non_null(strstr(s, "<title>x &lt; y &amp; z</title>"));
    assert_non_null(strstr(s, "a&lt;b &amp; c&gt;d"));
    assert_null(strstr(s, "a<b"));
    free(s);
}

/* lr_find's picture: a log x axis with marked points. The marks' red
 * rings change the picture where they are; a series with no positive x
 * has nothing to draw on a log axis. */
static void log_axis_with_marks(void **state) {
    (void)state;
    double lr[60], loss[60];
    for (int i = 0; i < 60; i++) {
        lr[i] = 1e-6 * pow(10, i / 10.0); /* 1e-6 .. ~1e-0 */
        loss[i] = 0.7 - 0.3 * sin(i / 19.0);
    }
    cg_plot_series ser = {.name = "loss", .x = lr, .y = loss, .n = 60};
    cg_line_plot p = {.title = "LR finder", .x_label = "learning rate", .y_label = "loss",
                      .series = &ser, .n_series = 1, .log_x = true};
    const char *plain = tmp_path("lr_plain.png"), *marked = tmp_path("lr_marked.png");
    assert_int_equal(cg_plot_lines(&p, 640, 480, plain), CG_OK);
    cg_plot_mark mark = {lr[30], loss[30], "valley 1e-03"};
    p.marks = &mark;
    p.n_marks = 1;
    assert_int_equal(cg_plot_lines(&p, 640, 480, marked), CG_OK);
    picture a = read_png(plain), b = read_png(marked);
    assert_int_equal(b.w, 640);
    assert_int_equal(b.h, 480);
    /* Where the pictures differ: around the middle of the x axis (lr 1e-3
     * is half way along 1e-6..1e0 in log10). */
    int64_t n = 0;
    double mx = 0;
    for (int64_t i = 0; i < a.w * a.h; i++)
        if (a.px[i] != b.px[i]) {
            n++;
            mx += (double)(i % a.w);
        }
    assert_true(n > 100);
    mx /= (double)n;
    assert_true(mx > 250 && mx < 460);
    free(a.px);
    free(b.px);

    double bad_x[3] = {-1, 0, -2};
    cg_plot_series neg = {.x = bad_x, .y = loss, .n = 3};
    cg_line_plot q = {.series = &neg, .n_series = 1, .log_x = true};
    assert_int_equal(cg_plot_lines(&q, 0, 0, plain), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "nothing to plot"));
}

/* A confusion matrix: dark cells on the diagonal (top-left, bottom-right),
 * light ones off it; the values are written in the cells. */
static void heatmap_diagonal_is_dark(void **state) {
    (void)state;
    const double cm[4] = {900, 10, 20, 1000};
    const char *labels[2] = {"3", "7"};
    cg_heatmap h = {.values = cm, .rows = 2, .cols = 2, .row_labels = labels,
                    .col_labels = labels, .cell = 100};
    const char *path = tmp_path("cm.png");
    assert_int_equal(cg_plot_heatmap(&h, path), CG_OK);
    picture p = read_png(path);
    assert_true(p.w >= 200 && p.h >= 200);
    int64_t mid = p.h / 2;
    /* Dark blue (#08306b and near it: gray < 80) in the upper half sits
     * left of that in the lower half. */
    ink top = ink_in(&p, 0, 0, p.w, mid, 0, 80), bottom = ink_in(&p, 0, mid, p.w, p.h, 0, 80);
    assert_true(top.n > 5000 && bottom.n > 5000);
    assert_true(top.mx + 60 < bottom.mx);
    free(p.px);

    /* With values, a title, labels and a colour bar: as SVG, the words. */
    h.show_values = true;
    h.colorbar = true;
    h.title = "Confusion matrix";
    h.x_label = "Predicted";
    h.y_label = "Actual";
    h.cell = 0;
    const char *svg_path = tmp_path("cm.svg");
    assert_int_equal(cg_plot_heatmap(&h, svg_path), CG_OK);
    char *s = read_text(svg_path);
    assert_non_null(strstr(s, "<title>Confusion matrix</title>"));
    assert_true(has_line(s, "900"));
    assert_true(has_line(s, "1000"));
    assert_non_null(strstr(s, "Predicted"));
    assert_non_null(strstr(s, "Actual"));
    free(s);

    h.rows = 0;
    assert_int_equal(cg_plot_heatmap(&h, path), CG_ERR_ARG);
}

/* A grid: a black image (bytes 0 on GRAY) beside a white one (255) and a
 * zero-weight image on the diverging map (white: 0 is the page). */
static void image_grid_places_images_in_order(void **state) {
    (void)state;
    uint8_t black[16 * 16], white[16 * 16];
    float zeros[16 * 16];
    memset(black, 0, sizeof black);
    memset(white, 255, sizeof white);
    for (int i = 0; i < 256; i++) zeros[i] = 0;
    cg_plot_image ims[3] = {{.bytes = black, .h = 16, .w = 16, .caption = "black"},
                            {.bytes = white, .h = 16, .w = 16, .caption = "white\nline 2"},
                            {.floats = zeros, .h = 16, .w = 16, .caption = "zero"}};
    cg_image_grid g = {.title = "Grid", .images = ims, .n = 2, .cols = 2, .cell = 64};
    const char *path = tmp_path("grid.png");
    assert_int_equal(cg_plot_image_grid(&g, path), CG_OK);
    picture p = read_png(path);
    ink dark = ink_in(&p, 0, 0, p.w, p.h, 0, 5);
    /* The black image, 64 x 64 (text adds a little). */
    assert_true(dark.n >= 64 * 64 && dark.n < 64 * 64 + 1500);
    assert_true(dark.mx < p.w / 2.0);
    free(p.px);

    g.images = &ims[2];
    g.n = 1;
    g.cmap = CG_CMAP_DIVERGING;
    g.title = NULL;
    assert_int_equal(cg_plot_image_grid(&g, path), CG_OK);
    p = read_png(path);
    assert_true(ink_in(&p, 0, 0, p.w, p.h, 0, 5).n < 50); /* only caption pixels */
    free(p.px);

    /* Floats scale per image (a constant one is mid-gray) unless the
     * scale is shared: then 0 beside 1 is black beside white. */
    float ones[16 * 16];
    for (int i = 0; i < 256; i++) ones[i] = 1;
    cg_plot_image pair[2] = {{.floats = zeros, .h = 16, .w = 16},
                             {.floats = ones, .h = 16, .w = 16}};
    cg_image_grid s = {.images = pair, .n = 2, .cell = 64};
    assert_int_equal(cg_plot_image_grid(&s, path), CG_OK);
    p = read_png(path);
    assert_true(ink_in(&p, 0, 0, p.w, p.h, 0, 5).n == 0);
    assert_true(ink_in(&p, 0, 0, p.w, p.h, 120, 135).n >= 2 * 64 * 64);
    free(p.px);
    s.shared_scale = true;
    assert_int_equal(cg_plot_image_grid(&s, path), CG_OK);
    p = read_png(path);
    ink black_ink = ink_in(&p, 0, 0, p.w, p.h, 0, 5);
    assert_true(black_ink.n >= 64 * 64 && black_ink.mx < p.w / 2.0);
    free(p.px);

    cg_plot_image both = {.bytes = black, .floats = zeros, .h = 16, .w = 16};
    g.images = &both;
    assert_int_equal(cg_plot_image_grid(&g, path), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "bytes or floats"));
}

/* learn.recorder's picture: two panels (losses, accuracy). */
static void recorder_draws_two_panels(void **state) {
    (void)state;
    cg_epoch_record epochs[4];
    for (int e = 0; e < 4; e++)
        epochs[e] = (cg_epoch_record){.epoch = e, .train_loss = 0.5 / (e + 1),
                                      .valid_loss = 0.45 / (e + 1), .accuracy = 0.5 + 0.15 * e};
    float batch_loss[30];
    for (int i = 0; i < 30; i++) batch_loss[i] = 0.5f / (1 + i / 10.0f);
    cg_recorder rec = {.n_epochs = 4, .epochs = epochs, .n_batches = 30,
                       .batch_loss = batch_loss};
    const char *path = tmp_path("rec.png");
    assert_int_equal(cg_plot_recorder(&rec, "run", path), CG_OK);
    picture p = read_png(path);
    assert_int_equal(p.w, 2 * 520);
    assert_int_equal(p.h, 380 + 36);
    /* Blue ink in both halves: the batch losses on the left, the
     * accuracy on the right. */
    assert_true(ink_in(&p, 0, 60, 520, p.h - 60, 88, 112).n > 100);
    assert_true(ink_in(&p, 520, 60, p.w, p.h - 60, 88, 112).n > 100);
    free(p.px);
    cg_recorder none = {0};
    assert_int_equal(cg_plot_recorder(&none, NULL, path), CG_ERR_ARG);
}

/* A linear model's weights: +1 on the image's left half, 0 on the right,
 * drawn red and white. */
static void linear_weights_as_an_image(void **state) {
    (void)state;
    cg_model *m = cg_model_new(CG_MODEL_LINEAR, 784, 0, 1, CG_INIT_NORMAL, 1.0f, NULL);
    assert_non_null(m);
    m->n_classes = 2;
    snprintf(m->class_names[0], CG_CLASS_NAME_MAX, "3");
    snprintf(m->class_names[1], CG_CLASS_NAME_MAX, "7");
    cg_tensor *w = m->params[0]; /* [784, 1] */
    for (int i = 0; i < 784; i++) w->data[i] = (i % 28) < 14 ? 1.0f : 0.0f;
    const char *path = tmp_path("w.png");
    assert_int_equal(cg_plot_model_weights(m, 0, NULL, path), CG_OK);
    picture p = read_png(path);
    /* Dark red (#67001f, gray ~34) fills half of a 112 x 112 image. */
    ink red = ink_in(&p, 0, 40, p.w, p.h, 25, 45);
    assert_true(red.n > 112 * 50);
    ink white_half = ink_in(&p, (int64_t)red.mx + 10, 40, (int64_t)red.mx + 60, 140, 250, 255);
    assert_true(white_half.n > 1000);
    free(p.px);
    cg_model_free(m);

    /* A CNN: its first convolution's filters, one image each. */
    cg_model *cnn = cg_model_for_images("conv:6:3:2:1,relu,flatten,linear", "cnn", 1, 28, 28, 2,
                                        CG_INIT_KAIMING, 1.0f, NULL);
    assert_non_null(cnn);
    const char *svg = tmp_path("filters.svg");
    assert_int_equal(cg_plot_model_weights(cnn, 0, NULL, svg), CG_OK);
    char *s = read_text(svg);
    assert_non_null(strstr(s, "filter 5"));
    assert_null(strstr(s, "filter 6"));
    free(s);
    cg_model_free(cnn);
}

/* show_batch on a made-up dataset: the first images when not shuffled,
 * each captioned with its class. */
static void dataset_batch_captions_classes(void **state) {
    (void)state;
    cg_dataset ds = {.height = 8, .width = 8, .n_classes = 2};
    snprintf(ds.class_names[0], CG_CLASS_NAME_MAX, "three");
    snprintf(ds.class_names[1], CG_CLASS_NAME_MAX, "seven");
    ds.pixels = malloc(6 * 64);
    assert_non_null(ds.pixels);
    for (int i = 0; i < 6 * 64; i++) ds.pixels[i] = (uint8_t)(i / 64 * 40);
    int64_t n = 6;
    ds.y = cg_tensor_zeros(&n, 1);
    for (int i = 0; i < 6; i++) ds.y->data[i] = (float)(i % 2);
    const char *svg = tmp_path("batch.svg");
    assert_int_equal(cg_plot_dataset_batch(&ds, 1, 2, false, 0, "batch", svg), CG_OK);
    char *s = read_text(svg);
    assert_non_null(strstr(s, "three\nseven"));
    free(s);
    /* A random draw: the same seed gives the same picture. */
    const char *a = tmp_path("b1.png"), *b = tmp_path("b2.png");
    assert_int_equal(cg_plot_dataset_batch(&ds, 2, 2, true, 7, NULL, a), CG_OK);
    assert_int_equal(cg_plot_dataset_batch(&ds, 2, 2, true, 7, NULL, b), CG_OK);
    size_t la, lb;
    uint8_t *fa = cg_test_read_file(a, &la), *fb = cg_test_read_file(b, &lb);
    assert_true(la == lb && memcmp(fa, fb, la) == 0);
    free(fa);
    free(fb);
    assert_int_equal(cg_plot_dataset_batch(&ds, 0, 2, true, 7, NULL, a), CG_ERR_ARG);
    cg_dataset_free(&ds);
}

/* The file name decides the format; a bad one, or a folder that does not
 * exist, fails with a message naming the path and leaves nothing behind. */
static void bad_paths_fail_clearly(void **state) {
    (void)state;
    assert_int_equal(cg_plot_check_path("a.PNG"), CG_OK);
    assert_int_equal(cg_plot_check_path("a.svg"), CG_OK);
    assert_int_equal(cg_plot_check_path("a.jpg"), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "a.jpg"));
    assert_int_equal(cg_plot_function("sigmoid", -4, 4, NULL, tmp_path("s.pdf")), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), ".png or .svg"));
    assert_int_equal(cg_plot_function("sigmoid", -4, 4, NULL, tmp_path("no/such/s.png")),
                     CG_ERR_IO);
    assert_non_null(strstr(cg_last_error(), "no/such"));
    /* Replacing a file is atomic and leaves no temporary file. */
    const char *path = tmp_path("again.png");
    assert_int_equal(cg_plot_function("tanh", -2, 2, NULL, path), CG_OK);
    assert_int_equal(cg_plot_function("tanh", -3, 3, NULL, path), CG_OK);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "test $(ls -a '%s' | grep -c again) -eq 1", tmp_dir());
    assert_int_equal(system(cmd), 0);
}

/* The same call twice writes the same PNG bytes. (An SVG's element ids
 * come from cairo's process-wide counters, so only a fresh process writes
 * the same SVG again: tests/test_cli_plot.c checks that.) */
static void pictures_are_deterministic(void **state) {
    (void)state;
    const char *a = tmp_path("d1.png"), *b = tmp_path("d2.png");
    assert_int_equal(cg_plot_function("mnist_loss", -4, 4, NULL, a), CG_OK);
    assert_int_equal(cg_plot_function("mnist_loss", -4, 4, NULL, b), CG_OK);
    size_t la, lb;
    uint8_t *fa = cg_test_read_file(a, &la), *fb = cg_test_read_file(b, &lb);
    assert_true(la > 1000 && la == lb && memcmp(fa, fb, la) == 0);
    free(fa);
    free(fb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigmoid_png_rises_left_to_right),
        cmocka_unit_test(functions_cover_the_article_and_the_book),
        cmocka_unit_test(relu_is_flat_then_rising),
        cmocka_unit_test(svg_is_well_formed_with_its_text),
        cmocka_unit_test(log_axis_with_marks),
        cmocka_unit_test(heatmap_diagonal_is_dark),
        cmocka_unit_test(image_grid_places_images_in_order),
        cmocka_unit_test(recorder_draws_two_panels),
        cmocka_unit_test(linear_weights_as_an_image),
        cmocka_unit_test(dataset_batch_captions_classes),
        cmocka_unit_test(bad_paths_fail_clearly),
        cmocka_unit_test(pictures_are_deterministic),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
