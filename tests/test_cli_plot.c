/*
 * test_cli_plot.c - the commands that draw pictures, end to end: `cgrad
 * plot`, `cgrad show --out`, `train --plot`, `baseline --plot` and
 * `walkthrough --figures`, run as the built program ($CGRAD_TEST_BUILD/
 * cgrad) on the real MNIST sample. The pictures' contents are checked in
 * tests/test_plot.c; here, that each command writes a valid picture of the
 * expected size with what it should show, and refuses bad options.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static const char *dir(void) {
    static char d[256];
    if (!d[0]) snprintf(d, sizeof d, "%s", cg_test_tmpdir());
    return d;
}

#define sample cg_test_sample_dir /* testutil.h */

/* Runs `cgrad ARGS` in this test's folder, stdout to DIR/out and stderr to
 * DIR/err; returns the exit status. */
static int cgrad(const char *fmt, ...) {
    /* Made absolute, as the command runs in this test's folder. */
    char bin[4096];
    if (!realpath(cg_test_cgrad_bin(), bin)) fail_msg("%s: no such program", cg_test_cgrad_bin());
    char args[4096], cmd[8192 + 4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >out 2>err </dev/null", dir(), bin, args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* DIR/name's text (malloc'd). */
static char *text_of(const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir(), name);
    size_t len;
    char *s = (char *)cg_test_read_file(path, &len);
    if (!s) fail_msg("cannot read %s", path);
    return s;
}

static bool output_has(const char *name, const char *what) {
    char *s = text_of(name);
    bool has = strstr(s, what) != NULL;
    if (!has) printf("%s lacks '%s':\n%s\n", name, what, s);
    free(s);
    return has;
}

/* DIR/name as 8-bit gray (the project's PNG reader). */
static uint8_t *png_of(const char *name, int64_t *w, int64_t *h) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir(), name);
    uint8_t *px = NULL;
    if (cg_png_read_gray(path, &px, w, h) != CG_OK) fail_msg("%s", cg_last_error());
    return px;
}

/* Pixels darker than `below`: a picture that is all white has none. */
static int64_t dark_pixels(const uint8_t *px, int64_t n, int below) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += px[i] < below;
    return k;
}

static void plot_function_writes_png_and_svg(void **state) {
    (void)state;
    assert_int_equal(cgrad("plot sigmoid --min -4 --max 4 --title Sigmoid --out s.png"), 0);
    assert_true(output_has("out", "wrote s.png"));
    int64_t w, h;
    uint8_t *px = png_of("s.png", &w, &h);
    assert_int_equal(w, 640);
    assert_int_equal(h, 480);
    assert_true(dark_pixels(px, w * h, 128) > 1000);
    free(px);
    /* SVG, and the same bytes from a second run. */
    assert_int_equal(cgrad("plot mnist_loss --min -4 --max 4 --out a.svg"), 0);
    assert_int_equal(cgrad("plot mnist_loss --min -4 --max 4 --out b.svg"), 0);
    char *a = text_of("a.svg"), *b = text_of("b.svg");
    assert_string_equal(a, b);
    assert_non_null(strstr(a, "width=\"640px\" height=\"480px\""));
    assert_non_null(strstr(a, "<title>mnist_loss</title>"));
    assert_non_null(strstr(a, "target 1: 1 - sigmoid(p)"));
    free(a);
    free(b);
}

static void plot_refuses_bad_options(void **state) {
    (void)state;
    assert_int_equal(cgrad("plot sigmoid"), 2);
    assert_true(output_has("err", "--out FILE is needed"));
    assert_int_equal(cgrad("plot sigmoid --out s.jpg"), 2);
    assert_true(output_has("err", "name a .png or .svg file"));
    assert_int_equal(cgrad("plot sigmoid --min 3 --max 1 --out s.png"), 2);
    assert_true(output_has("err", "--min 3 must be below --max 1"));
    assert_int_equal(cgrad("plot cosh --out s.png"), 1);
    assert_true(output_has("err", "cgrad plot: plot: unknown function 'cosh' (known: sigmoid"));
    assert_int_equal(cgrad("plot weights --out w.png"), 2);
    assert_true(output_has("err", "needs --model FILE"));
    assert_int_equal(cgrad("plot sigmoid --model m.cgm --out w.png"), 2);
    assert_int_equal(cgrad("plot weights --model missing.cgm --out w.png"), 1);
    assert_true(output_has("err", "missing.cgm"));
    assert_int_equal(cgrad("plot --help"), 0);
    assert_true(output_has("out", "--units N"));
}

/* show_batch: a 2 x 3 grid of the sample's digits, labelled 3 and 7. */
static void show_draws_a_batch(void **state) {
    (void)state;
    const char *root = sample();
    assert_int_equal(cgrad("show --data '%s' --grid 2x3 --out g.png", root), 0);
    assert_true(output_has("out", "wrote g.png: 2x3 images of the training split"));
    int64_t w, h;
    uint8_t *px = png_of("g.png", &w, &h);
    assert_int_equal(w, 3 * (112 + 12) + 12); /* three 112-pixel cells */
    assert_true(h > 2 * 112 && h < 2 * 170);
    /* Digits are drawn dark on white (matplotlib's Greys): some ink, most white. */
    int64_t ink = dark_pixels(px, w * h, 100);
    assert_true(ink > 6 * 300 && ink < w * h / 3);
    free(px);
    assert_int_equal(cgrad("show --data '%s' --split valid --grid 1x8 --seed 3 --out g.svg", root),
                     0);
    char *s = text_of("g.svg");
    assert_non_null(strstr(s, "<desc>"));
    assert_true(strstr(s, "\n3\n") || strstr(s, ">3\n"));
    assert_true(strstr(s, "\n7\n") || strstr(s, ">7\n"));
    free(s);
    assert_int_equal(cgrad("show --grid 3 --out g.png"), 2);
    assert_true(output_has("err", "--grid 3: give rows x columns"));
    assert_int_equal(cgrad("show x.png --out g.png"), 2);
    assert_int_equal(cgrad("show --data '%s' --grid 2x2", root), 2);
    assert_true(output_has("err", "--out FILE is needed"));
}

/* baseline --plot: the two ideal digits side by side, the same pixels as
 * --save-ideals writes (ink, 255 - gray, where the mean digit has it). */
static void baseline_plots_the_ideal_digits(void **state) {
    (void)state;
    const char *root = sample();
    assert_int_equal(cgrad("baseline --data '%s' --plot ideal.png --save-ideals .", root), 0);
    assert_true(output_has("out", "wrote ideal.png"));
    int64_t w, h, iw, ih;
    uint8_t *px = png_of("ideal.png", &w, &h);
    /* The grid's layout (image_grid.c): 140-pixel cells in 152-pixel
     * columns, centred, under a 40-pixel title band; 5 pixels per pixel. */
    const int cell = 140, col = 152, top = 40;
    int64_t x_off = (w - 2 * col) / 2;
    const char *names[2] = {"ideal_3.png", "ideal_7.png"};
    for (int d = 0; d < 2; d++) {
        uint8_t *ideal = png_of(names[d], &iw, &ih);
        assert_int_equal(iw, 28);
        int64_t x0 = x_off + d * col + (col - cell) / 2, worst = 0, inked = 0;
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) {
                int64_t v = 255 - px[(top + r * 5 + 2) * w + x0 + c * 5 + 2];
                int64_t diff = llabs(v - ideal[r * 28 + c]);
                if (diff > worst) worst = diff;
                inked += ideal[r * 28 + c] > 128;
            }
        assert_true(inked > 30); /* a real digit, not a blank */
        assert_true(worst <= 2);
        free(ideal);
    }
    free(px);
    assert_int_equal(cgrad("baseline --data '%s' --plot ideal.gif", root), 2);
}

/* train --plot: the recorder's two panels; weights of the trained model. */
static void train_plot_and_weights(void **state) {
    (void)state;
    const char *root = sample();
    assert_int_equal(
        cgrad("train --data '%s' --model linear --epochs 2 --quiet --plot t.svg --save m.cgm",
              root),
        0);
    char *s = text_of("t.svg");
    assert_non_null(strstr(s, "width=\"1040px\" height=\"416px\""));
    assert_non_null(strstr(s, "<title>linear</title>"));
    assert_non_null(strstr(s, "train (batch)"));
    assert_non_null(strstr(s, "valid"));
    assert_non_null(strstr(s, "Accuracy"));
    free(s);
    assert_int_equal(cgrad("plot weights --model m.cgm --out w.png"), 0);
    int64_t w, h;
    uint8_t *px = png_of("w.png", &w, &h);
    assert_true(w >= 112 && h >= 112);
    assert_true(dark_pixels(px, w * h, 200) > 112 * 112 / 4); /* coloured weights */
    free(px);
    assert_int_equal(cgrad("train --data '%s' --model linear --plot t.txt", root), 2);
    assert_true(output_has("err", "--plot t.txt: name a .png or .svg file"));
}

/* walkthrough --figures: the same narration plus a line per figure, and
 * the four figures. */
static void walkthrough_figures(void **state) {
    (void)state;
    const char *root = sample();
    assert_int_equal(cgrad("walkthrough --data '%s' --epochs 2 --ascii", root), 0);
    char *plain = text_of("out");
    assert_int_equal(cgrad("walkthrough --data '%s' --epochs 2 --ascii --figures figs", root), 0);
    char *with = text_of("out");
    /* Without the "# figure:" lines, the same text. */
    char *p = with, *q = with;
    int figures = 0;
    while (*p) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "# figure: figs/", 15) == 0) figures++;
        else {
            memmove(q, p, n);
            q += n;
        }
        p += n;
    }
    *q = '\0';
    assert_int_equal(figures, 4);
    assert_string_equal(plain, with);
    free(plain);
    free(with);
    const char *names[4] = {"figs/first_image.png", "figs/ideal_digits.png", "figs/sigmoid.png",
                            "figs/weights.png"};
    for (int i = 0; i < 4; i++) {
        int64_t w, h;
        uint8_t *px = png_of(names[i], &w, &h);
        assert_true(w >= 140 && h >= 140);
        assert_true(dark_pixels(px, w * h, 128) > 200);
        free(px);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plot_function_writes_png_and_svg),
        cmocka_unit_test(plot_refuses_bad_options),
        cmocka_unit_test(show_draws_a_batch),
        cmocka_unit_test(baseline_plots_the_ideal_digits),
        cmocka_unit_test(train_plot_and_weights),
        cmocka_unit_test(walkthrough_figures),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
