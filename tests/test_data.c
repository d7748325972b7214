/* test_data.c - the loaders: PNG decoding of every colour type, the image
 * folder layout, IDX (raw and gzip), CSV digits, labels.csv and
 * select_classes, and each loader without floats (cg_data_keep_floats).
 * Each bad file the loaders may meet is made here, in a temporary folder,
 * and must give a clear error, not a crash. With CGRAD_DATA set, the real
 * MNIST files are checked against each other. */
#include "testutil.h"

#include "data/data.h"

#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

static char *join(char *buf, const char *a, const char *b) {
    int len = snprintf(buf, 512, "%s/%s", a, b);
    assert_true(len > 0 && len < 512);
    return buf;
}

static void make_dir(const char *path) { assert_int_equal(mkdir(path, 0755), 0); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void truncate_file(const char *path, size_t keep) {
    assert_int_equal(truncate(path, (off_t)keep), 0);
}

/* Removes the fixture folder: two levels at most, plain files. */
static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char sub[512];
        rm_tree(join(sub, path, e->d_name));
    }
    closedir(d);
    rmdir(path);
}

static const char *tmp;
static int setup_tmp(void **state) {
    (void)state;
    tmp = cg_test_tmpdir();
    return 0;
}
static int teardown_tmp(void **state) {
    (void)state;
    rm_tree(tmp);
    return 0;
}

/* A w x h 8-bit gray image whose pixel i is (seed + 7 i) mod 256. */
static void pattern(uint8_t *px, int64_t n, int seed) {
    for (int64_t i = 0; i < n; i++) px[i] = (uint8_t)((seed + 7 * i) & 255);
}

static void write_gray(const char *path, int w, int h, int seed) {
    uint8_t px[64 * 64];
    pattern(px, (int64_t)w * h, seed);
    assert_int_equal(cg_png_write_gray(path, px, w, h), CG_OK);
}

/* Asserts the last call failed with `status` and a message holding each of
 * the (NULL-terminated) pieces. */
static void expect_error(cg_status got, cg_status status, ...) {
    const char *msg = cg_last_error();
    if (got != status) fail_msg("status %d, expected %d (message: %s)", got, status, msg);
    va_list ap;
    va_start(ap, status);
    for (const char *piece; (piece = va_arg(ap, const char *)) != NULL;)
        if (!strstr(msg, piece)) fail_msg("message \"%s\" does not contain \"%s\"", msg, piece);
    va_end(ap);
}

/* Reads path with cg_png_read_gray and checks size and pixels. */
static void expect_png(const char *path, int64_t w, int64_t h, const uint8_t *expect, int tol) {
    uint8_t *px = NULL;
    int64_t gw = 0, gh = 0;
    if (cg_png_read_gray(path, &px, &gw, &gh) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(gw, w);
    assert_int_equal(gh, h);
    for (int64_t i = 0; i < w * h; i++)
        if (abs((int)px[i] - (int)expect[i]) > tol)
            fail_msg("%s pixel %lld: got %d, expected %d", path, (long long)i, px[i], expect[i]);
    free(px);
}

/* ------------------------------------------------------------------ */
/* PNG                                                                 */
/* ------------------------------------------------------------------ */

static void test_png_gray8_roundtrip(void **state) {
    (void)state;
    char p[512];
    uint8_t px[5 * 3];
    pattern(px, 15, 3);
    assert_int_equal(cg_png_write_gray(join(p, tmp, "g.png"), px, 5, 3), CG_OK);
    expect_png(p, 5, 3, px, 0);
}

static void test_png_gray16_scaled(void **state) {
    (void)state;
    char p[512];
    /* 0x12ff and 0x00ff round up: keeping the high byte (strip_16) would not */
    const uint16_t v[4] = {0, 0x12ff, 0x00ff, 0xffff};
    uint8_t raw[8], expect[4];
    for (int i = 0; i < 4; i++) {
        raw[2 * i] = (uint8_t)(v[i] >> 8);
        raw[2 * i + 1] = (uint8_t)v[i];
        expect[i] = (uint8_t)((v[i] * 255u + 32767u) / 65535u); /* round(v * 255 / 65535) */
    }
    cg_test_write_png(
        join(p, tmp, "g16.png"),
        &(cg_test_png_spec){.w = 2, .h = 2, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 16},
        raw);
    expect_png(p, 2, 2, expect, 0);
}

static void test_png_gray_low_bit_depths(void **state) {
    (void)state;
    char p[512];
    /* 1-bit: 8 pixels 10110000 -> 255 0 255 255 0 0 0 0 */
    const uint8_t one[1] = {0xb0}, e1[8] = {255, 0, 255, 255, 0, 0, 0, 0};
    cg_test_write_png(
        join(p, tmp, "g1.png"),
        &(cg_test_png_spec){.w = 8, .h = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 1},
        one);
    expect_png(p, 8, 1, e1, 0);
    /* 4-bit: v -> v * 17 */
    const uint8_t four[2] = {0x0f, 0x7a}, e4[4] = {0, 255, 7 * 17, 10 * 17};
    cg_test_write_png(
        join(p, tmp, "g4.png"),
        &(cg_test_png_spec){.w = 4, .h = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 4},
        four);
    expect_png(p, 4, 1, e4, 0);
}

static void test_png_rgb_uses_bt601_weights(void **state) {
    (void)state;
    char p[512];
    /* red, green, blue, white, a gray, a mix */
    const uint8_t rgb[6 * 3] = {255, 0,   0,   0,  255, 0,  0,  0,   255,
                                255, 255, 255, 90, 90,  90, 10, 200, 60};
    uint8_t expect[6];
    for (int i = 0; i < 6; i++)
        expect[i] =
            (uint8_t)(0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2] + 0.5);
    cg_test_write_png(
        join(p, tmp, "rgb.png"),
        &(cg_test_png_spec){.w = 3, .h = 2, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8}, rgb);
    /* libpng truncates its fixed-point sum: within 1 of the rounded value. */
    expect_png(p, 3, 2, expect, 1);
    /* ... and a gray stays exactly itself */
    uint8_t *px;
    int64_t w, h;
    assert_int_equal(cg_png_read_gray(p, &px, &w, &h), CG_OK);
    assert_int_equal(px[3], 255);
    assert_int_equal(px[4], 90);
    /* not the BT.709 weights (0.2126, 0.7152, 0.0722): red would be 54 */
    assert_true(px[0] >= 75 && px[0] <= 77);
    free(px);
    /* a gAMA chunk changes nothing: the weights apply to stored values, as in PIL */
    cg_test_write_png(
        p,
        &(cg_test_png_spec){
            .w = 3, .h = 2, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8, .gamma = 1 / 2.2},
        rgb);
    expect_png(p, 3, 2, expect, 1);
}

static void test_png_rgba_composited_on_black(void **state) {
    (void)state;
    char p[512];
    /* white opaque, white transparent, white half, gray 100 at alpha 51 */
    const uint8_t rgba[4 * 4] = {255, 255, 255, 255, 255, 255, 255, 0,
                                 255, 255, 255, 128, 100, 100, 100, 51};
    const uint8_t expect[4] = {255, 0, 128, 20};
    cg_test_write_png(
        join(p, tmp, "rgba.png"),
        &(cg_test_png_spec){.w = 2, .h = 2, .color_type = PNG_COLOR_TYPE_RGBA, .bit_depth = 8},
        rgba);
    expect_png(p, 2, 2, expect, 0);
    /* gray + alpha, 16 bits */
    const uint8_t ga16[4] = {0xff, 0xff, 0x80, 0x00}; /* gray 65535, alpha 32768 */
    const uint8_t e16[1] = {128};
    cg_test_write_png(join(p, tmp, "ga16.png"),
                      &(cg_test_png_spec){
                          .w = 1, .h = 1, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA, .bit_depth = 16},
                      ga16);
    expect_png(p, 1, 1, e16, 0);
}

static void test_png_palette_and_trns(void **state) {
    (void)state;
    char p[512];
    const png_color pal[3] = {{0, 0, 0}, {255, 255, 255}, {0, 255, 0}};
    const uint8_t idx[4] = {0, 1, 2, 1};
    const uint8_t expect[4] = {0, 255, 150, 255}; /* green: 0.587 * 255 = 149.7 */
    cg_test_write_png(join(p, tmp, "pal.png"),
                      &(cg_test_png_spec){.w = 2,
                                          .h = 2,
                                          .color_type = PNG_COLOR_TYPE_PALETTE,
                                          .bit_depth = 8,
                                          .palette = pal,
                                          .n_palette = 3},
                      idx);
    expect_png(p, 2, 2, expect, 1);
    /* entry 1 (white) fully transparent: it becomes black */
    const uint8_t trns[2] = {255, 0};
    const uint8_t expect_t[4] = {0, 0, 150, 0};
    cg_test_write_png(join(p, tmp, "palt.png"),
                      &(cg_test_png_spec){.w = 2,
                                          .h = 2,
                                          .color_type = PNG_COLOR_TYPE_PALETTE,
                                          .bit_depth = 8,
                                          .palette = pal,
                                          .n_palette = 3,
                                          .trns = trns,
                                          .n_trns = 2},
                      idx);
    expect_png(p, 2, 2, expect_t, 1);
}

static void test_png_interlaced(void **state) {
    (void)state;
    char p[512];
    uint8_t px[13 * 11];
    pattern(px, 13 * 11, 5);
    cg_test_write_png(
        join(p, tmp, "adam7.png"),
        &(cg_test_png_spec){
            .w = 13, .h = 11, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 8, .interlace = 1},
        px);
    expect_png(p, 13, 11, px, 0);
}

static void test_png_truncated(void **state) {
    (void)state;
    char p[512];
    uint8_t px[28 * 28];
    for (int i = 0; i < 28 * 28; i++) px[i] = (uint8_t)(i * 131 % 251); /* compresses poorly */
    assert_int_equal(cg_png_write_gray(join(p, tmp, "cut.png"), px, 28, 28), CG_OK);
    size_t n;
    free(cg_test_read_file(p, &n));
    uint8_t *out = (uint8_t *)1;
    int64_t w, h;
    const size_t keep[] = {n / 2, 40, 8, n - 6};
    for (int k = 0; k < 4; k++) {
        truncate_file(p, keep[k]);
        expect_error(cg_png_read_gray(p, &out, &w, &h), CG_ERR_FORMAT, "png: ", p,
                     "truncated or corrupt (libpng: ", NULL);
        assert_null(out);
    }
}

static void test_png_random_bytes(void **state) {
    (void)state;
    char p[512];
    uint8_t junk[300];
    cg_rng rng;
    cg_rng_seed(&rng, 7);
    for (int i = 0; i < 300; i++) junk[i] = (uint8_t)cg_rng_u32(&rng);
    write_bytes(join(p, tmp, "junk.png"), junk, sizeof junk);
    uint8_t *out;
    int64_t w, h;
    expect_error(cg_png_read_gray(p, &out, &w, &h), CG_ERR_FORMAT, p, "not a PNG file", NULL);
    write_bytes(p, junk, 0);
    expect_error(cg_png_read_gray(p, &out, &w, &h), CG_ERR_FORMAT, p, "not a PNG file", NULL);
    /* the right signature, then junk */
    memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
    write_bytes(p, junk, sizeof junk);
    expect_error(cg_png_read_gray(p, &out, &w, &h), CG_ERR_FORMAT, p,
                 "truncated or corrupt (libpng: ", NULL);
    expect_error(cg_png_read_gray(join(p, tmp, "absent.png"), &out, &w, &h), CG_ERR_IO,
                 "cannot open", p, NULL);
}

/* A header claiming 16000 x 16000 in a 100-byte file is refused before
 * anything that size is allocated. */
static void test_png_huge_header_refused(void **state) {
    (void)state;
    char p[512];
    /* signature, IHDR (16000 x 16000, 8-bit gray), then an IDAT of 40 bytes */
    uint8_t f[100] = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n',     0,    0, 0,
                      13,   'I',  'H', 'D', 'R',  0,    0,    0x3e,     0x80, 0, 0,
                      0x3e, 0x80, 8,   0,   0,    0,    0,    [29] = 0, 0,    0, 0,
                      0,    0,    0,   40,  'I',  'D',  'A',  'T'};
    uLong crc = crc32(0, f + 12, 17);
    f[29] = (uint8_t)(crc >> 24);
    f[30] = (uint8_t)(crc >> 16);
    f[31] = (uint8_t)(crc >> 8);
    f[32] = (uint8_t)crc;
    write_bytes(join(p, tmp, "huge.png"), f, sizeof f);
    uint8_t *out;
    int64_t w, h;
    expect_error(cg_png_read_gray(p, &out, &w, &h), CG_ERR_FORMAT, p, "16000x16000", "cannot fit",
                 NULL);
}

static void test_png_write_errors(void **state) {
    (void)state;
    char p[512];
    uint8_t px[4] = {0};
    expect_error(cg_png_write_gray(join(p, tmp, "no/such/dir.png"), px, 2, 2), CG_ERR_IO,
                 "cannot create", NULL);
    expect_error(cg_png_write_gray(join(p, tmp, "z.png"), px, 0, 2), CG_ERR_ARG, "0x2", NULL);
    expect_error(cg_png_write_gray(p, NULL, 2, 2), CG_ERR_ARG, "png:", NULL);
}

/* ------------------------------------------------------------------ */
/* Image folders                                                       */
/* ------------------------------------------------------------------ */

/* ROOT/{seven,three}/ with names whose byte order differs from numeric. */
static const char *make_folder(void) {
    static char root[512];
    char d[512], p[512];
    make_dir(join(root, tmp, "ds"));
    make_dir(join(d, root, "seven"));
    make_dir(join(d, root, "three"));
    make_dir(join(d, root, ".ipynb_checkpoints"));
    write_gray(join(p, join(d, root, "three"), "9.png"), 4, 3, 9);
    write_gray(join(p, join(d, root, "three"), "10.png"), 4, 3, 10);
    write_gray(join(p, join(d, root, "three"), "100.PNG"), 4, 3, 100);
    write_bytes(join(p, join(d, root, "three"), "notes.txt"), "hi", 2);
    write_bytes(join(p, join(d, root, "three"), "._9.png"), "junk", 4);
    make_dir(join(p, join(d, root, "three"), "sub.png"));
    write_gray(join(p, join(d, root, "seven"), "b.png"), 4, 3, 2);
    write_gray(join(p, join(d, root, "seven"), "a.png"), 4, 3, 1);
    write_bytes(join(p, root, "labels.csv"), "x", 1);
    return root;
}

static void test_folder_order_and_values(void **state) {
    (void)state;
    const char *root = make_folder();
    cg_dataset ds;
    if (cg_dataset_load_folder(&ds, root) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(ds.n_classes, 2);
    assert_string_equal(ds.class_names[0], "seven");
    assert_string_equal(ds.class_names[1], "three");
    assert_int_equal(ds.height, 3);
    assert_int_equal(ds.width, 4);
    cg_assert_shape(ds.x, (int64_t[]){5, 12}, 2);
    cg_assert_shape(ds.y, (int64_t[]){5}, 1);
    /* seven/a, seven/b, three/10, three/100.PNG, three/9 (byte order) */
    const int seeds[5] = {1, 2, 10, 100, 9}, labels[5] = {0, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) {
        uint8_t px[12];
        pattern(px, 12, seeds[i]);
        assert_int_equal((int)ds.y->data[i], labels[i]);
        for (int j = 0; j < 12; j++)
            if (ds.x->data[i * 12 + j] != (float)px[j] / 255.0f)
                fail_msg("row %d pixel %d: %g, expected %d/255", i, j, ds.x->data[i * 12 + j],
                         px[j]);
        assert_memory_equal(ds.pixels + i * 12, px, 12);
    }
    cg_assert_batches_match(&ds);
    cg_dataset_free(&ds);
    assert_null(ds.x);
}

static void test_folder_mixed_png_types(void **state) {
    (void)state;
    char root[512], d[512], p[512];
    make_dir(join(root, tmp, "mixed"));
    make_dir(join(d, root, "c"));
    const uint8_t g16[4] = {0xff, 0xff, 0, 0};
    cg_test_write_png(
        join(p, d, "a.png"),
        &(cg_test_png_spec){.w = 2, .h = 1, .color_type = PNG_COLOR_TYPE_GRAY, .bit_depth = 16},
        g16);
    const uint8_t rgba[8] = {255, 255, 255, 255, 255, 255, 255, 0};
    cg_test_write_png(
        join(p, d, "b.png"),
        &(cg_test_png_spec){.w = 2, .h = 1, .color_type = PNG_COLOR_TYPE_RGBA, .bit_depth = 8},
        rgba);
    const png_color pal[2] = {{0, 0, 0}, {255, 255, 255}};
    const uint8_t idx[2] = {1, 0};
    cg_test_write_png(join(p, d, "c.png"),
                      &(cg_test_png_spec){.w = 2,
                                          .h = 1,
                                          .color_type = PNG_COLOR_TYPE_PALETTE,
                                          .bit_depth = 8,
                                          .palette = pal,
                                          .n_palette = 2},
                      idx);
    /* b.png's colour type makes the folder RGB (test_rgb.c); read gray. */
    cg_dataset ds;
    if (cg_dataset_load_folder_as(&ds, root, NULL, 1) != CG_OK) fail_msg("%s", cg_last_error());
    const float expect[6] = {1, 0, 1, 0, 1, 0};
    cg_assert_tensor(ds.x, expect, 6, 0);
    cg_dataset_free(&ds);
}

static void test_folder_wrong_size(void **state) {
    (void)state;
    const char *root = make_folder();
    char p[512], d[512];
    write_gray(join(p, join(d, root, "three"), "11.png"), 5, 3, 0);
    cg_dataset ds;
    expect_error(cg_dataset_load_folder(&ds, root), CG_ERR_SHAPE, p, "is 5x3",
                 "the other images are 4x3", NULL);
    assert_null(ds.x);
}

/* One large image among small ones, sorting first: the sizes are checked
 * before the split's buffer is allocated (not n x 2000 x 2000 from the
 * first image), and the error names the large file, not a correct one. */
static void test_folder_one_huge_image(void **state) {
    (void)state;
    char root[512], d[512], p[512];
    make_dir(join(root, tmp, "huge"));
    make_dir(join(d, root, "3"));
    for (int i = 1; i <= 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d.png", i);
        write_gray(join(p, d, name), 28, 28, i);
    }
    uint8_t *big = calloc(2000 * 2000, 1);
    assert_non_null(big);
    assert_int_equal(cg_png_write_gray(join(p, d, "0.png"), big, 2000, 2000), CG_OK);
    free(big);
    cg_dataset ds;
    expect_error(cg_dataset_load_folder(&ds, root), CG_ERR_SHAPE, p, "is 2000x2000",
                 "the other images are 28x28", NULL);
    assert_null(ds.x);
}

/* A .png name that is not a regular file (a FIFO would block the reader
 * forever; skipping it would drop an image unnoticed) is an error naming it,
 * returned at once. */
static void test_folder_fifo_image(void **state) {
    (void)state;
    const char *root = make_folder();
    char p[512], d[512];
    join(p, join(d, root, "three"), "5.png");
    assert_int_equal(mkfifo(p, 0644), 0);
    alarm(20); /* a hang fails the test instead of the run */
    cg_dataset ds;
    expect_error(cg_dataset_load_folder(&ds, root), CG_ERR_FORMAT, p,
                 "is not a regular file (a FIFO)", NULL);
    alarm(0);
    assert_null(ds.x);
}

static void test_folder_empty_class(void **state) {
    (void)state;
    const char *root = make_folder();
    char d[512], p[512];
    make_dir(join(d, root, "empty"));
    write_bytes(join(p, d, "readme.txt"), "x", 1);
    cg_dataset ds;
    expect_error(cg_dataset_load_folder(&ds, root), CG_ERR_FORMAT, d, "no .png images", NULL);
    assert_null(ds.x);
}

static void test_folder_no_classes_or_missing(void **state) {
    (void)state;
    char d[512];
    make_dir(join(d, tmp, "bare"));
    cg_dataset ds;
    expect_error(cg_dataset_load_folder(&ds, d), CG_ERR_FORMAT, d, "no class folders", NULL);
    expect_error(cg_dataset_load_folder(&ds, join(d, tmp, "absent")), CG_ERR_IO, "cannot open", d,
                 NULL);
}

/* Several bad files: the error names the first in load order, whatever
 * the thread count. */
static void test_folder_reports_first_bad_file(void **state) {
    (void)state;
    char root[512], d[512], p[512], first_msg[512] = "";
    make_dir(join(root, tmp, "many"));
    make_dir(join(d, root, "k"));
    for (int i = 0; i < 300; i++) {
        char name[32];
        snprintf(name, sizeof name, "%03d.png", i);
        write_gray(join(p, d, name), 6, 6, i);
    }
    truncate_file(join(p, d, "290.png"), 30);
    truncate_file(join(p, d, "150.png"), 50);
    write_bytes(join(p, d, "200.png"), "nope", 4);
    for (int threads = 1; threads <= 4; threads++) {
        cg_set_num_threads(threads);
        cg_dataset ds;
        expect_error(cg_dataset_load_folder(&ds, root), CG_ERR_FORMAT, "150.png",
                     "truncated or corrupt (libpng: ", NULL);
        assert_null(ds.x);
        if (threads == 1)
            snprintf(first_msg, sizeof first_msg, "%s", cg_last_error());
        else
            assert_string_equal(cg_last_error(), first_msg);
    }
    cg_set_num_threads(0);
}

static void test_folder_same_result_any_threads(void **state) {
    (void)state;
    char root[512], d[512], p[512];
    make_dir(join(root, tmp, "par"));
    for (int c = 0; c < 3; c++) {
        char cls[8];
        snprintf(cls, sizeof cls, "%d", c);
        make_dir(join(d, root, cls));
        for (int i = 0; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof name, "%d.png", i);
            write_gray(join(p, d, name), 7, 5, c * 1000 + i);
        }
    }
    cg_dataset one, two;
    cg_set_num_threads(1);
    assert_int_equal(cg_dataset_load_folder(&one, root), CG_OK);
    cg_set_num_threads(2);
    assert_int_equal(cg_dataset_load_folder(&two, root), CG_OK);
    cg_set_num_threads(0);
    assert_int_equal(one.x->numel, 300 * 35);
    assert_memory_equal(one.x->data, two.x->data, sizeof(float) * 300 * 35);
    assert_memory_equal(one.y->data, two.y->data, sizeof(float) * 300);
    cg_dataset_free(&one);
    cg_dataset_free(&two);
}

/* A scope open around the load does not take the dataset's tensors. */
static void test_folder_inside_scope(void **state) {
    (void)state;
    const char *root = make_folder();
    cg_dataset ds;
    cg_scope_begin();
    assert_int_equal(cg_dataset_load_folder(&ds, root), CG_OK);
    cg_scope_end();
    assert_int_equal(ds.x->refcount, 1);
    assert_int_equal(ds.x->shape[0], 5);
    cg_dataset_free(&ds);
}

/* ------------------------------------------------------------------ */
/* IDX                                                                 */
/* ------------------------------------------------------------------ */

static size_t idx_header(uint8_t *h, int ndim, uint32_t n, uint32_t rows, uint32_t cols) {
    uint32_t v[4] = {0x800u | (uint32_t)ndim, n, rows, cols};
    for (int i = 0; i <= ndim; i++)
        for (int b = 0; b < 4; b++) h[4 * i + b] = (uint8_t)(v[i] >> (24 - 8 * b));
    return 4 + 4 * (size_t)ndim;
}

/* Writes header + payload, gzip-compressed when gz. */
static void write_idx(const char *path, bool gz, const uint8_t *head, size_t hn,
                      const uint8_t *data, size_t n) {
    if (!gz) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(head, 1, hn, f);
        fwrite(data, 1, n, f);
        assert_int_equal(fclose(f), 0);
        return;
    }
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, head, (unsigned)hn), (int)hn);
    if (n) assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
    assert_int_equal(gzclose(g), Z_OK);
}

/* 5 images of 2x3 and their labels, raw or gzip. */
static void make_idx_pair(const char *img, const char *lab, bool gz) {
    uint8_t h[16], px[30], lb[5] = {3, 0, 9, 3, 1};
    pattern(px, 30, 40);
    write_idx(img, gz, h, idx_header(h, 3, 5, 2, 3), px, 30);
    write_idx(lab, gz, h, idx_header(h, 1, 5, 0, 0), lb, 5);
}

static void test_idx_raw_and_gzip(void **state) {
    (void)state;
    char img[512], lab[512];
    for (int gz = 0; gz < 2; gz++) {
        make_idx_pair(join(img, tmp, gz ? "i.gz" : "i.idx"), join(lab, tmp, gz ? "l.gz" : "l.idx"),
                      gz);
        cg_dataset ds;
        if (cg_dataset_load_idx(&ds, img, lab) != CG_OK) fail_msg("%s", cg_last_error());
        cg_assert_shape(ds.x, (int64_t[]){5, 6}, 2);
        assert_int_equal(ds.height, 2);
        assert_int_equal(ds.width, 3);
        assert_int_equal(ds.n_classes, 10);
        assert_string_equal(ds.class_names[0], "0");
        assert_string_equal(ds.class_names[9], "9");
        const float y[5] = {3, 0, 9, 3, 1};
        cg_assert_tensor(ds.y, y, 5, 0);
        uint8_t px[30];
        pattern(px, 30, 40);
        for (int i = 0; i < 30; i++) assert_true(ds.x->data[i] == (float)px[i] / 255.0f);
        cg_assert_batches_match(&ds);
        cg_dataset_free(&ds);
    }
}

static void test_idx_bad_magic(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false);
    uint8_t h[8] = {0, 0, 0x0d, 3, 0, 0, 0, 1}; /* 0x0d: a float IDX */
    write_bytes(img, h, 8);
    cg_dataset ds;
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "bad magic 0x00000d03",
                 NULL);
    /* the files swapped */
    make_idx_pair(img, lab, true);
    expect_error(cg_dataset_load_idx(&ds, lab, img), CG_ERR_FORMAT, lab, "holds labels", NULL);
    assert_null(ds.x);
}

static void test_idx_counts_larger_than_file(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false);
    uint8_t h[16], px[30] = {0};
    /* claims 60000 images of 28x28 but holds 30 bytes */
    write_idx(img, false, h, idx_header(h, 3, 60000, 28, 28), px, 30);
    cg_dataset ds;
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img,
                 "header says 47040000 bytes", NULL);
    /* and one byte too many */
    write_idx(img, false, h, idx_header(h, 3, 1, 5, 5), px, 26);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "header says 25 bytes",
                 "holds 26", NULL);
    /* gzip: a million images in a few bytes cannot be */
    write_idx(img, true, h, idx_header(h, 3, 1000000, 28, 28), px, 30);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "gzip file can hold",
                 NULL);
    /* gzip: a little short of its header's count */
    write_idx(img, true, h, idx_header(h, 3, 5, 2, 3), px, 29);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "ends after 29 of 30",
                 NULL);
    /* gzip: more than its header's count */
    write_idx(img, true, h, idx_header(h, 3, 4, 2, 3), px, 30);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "runs past the 24 bytes",
                 NULL);
    /* insane dims */
    write_idx(img, false, h, idx_header(h, 3, 20000000, 1, 1), px, 0);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "20000000 items", NULL);
    write_idx(img, false, h, idx_header(h, 3, 1, 2000, 2000), px, 0);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "2000x2000", NULL);
    /* a header cut short */
    write_bytes(img, h, 6);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, img, "ends inside the header",
                 NULL);
    assert_null(ds.x);
}

static void test_idx_truncated_gzip(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.gz"), join(lab, tmp, "l.gz"), true);
    uint8_t h[16], px[4000];
    for (int i = 0; i < 4000; i++) px[i] = (uint8_t)(i * 2654435761u >> 24);
    write_idx(img, true, h, idx_header(h, 3, 5, 20, 40), px, 4000);
    size_t n;
    uint8_t *whole = cg_test_read_file(img, &n);
    cg_dataset ds;
    const size_t keep[] = {n - 4, n / 2, 12};
    for (int k = 0; k < 3; k++) {
        truncate_file(img, keep[k]);
        expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, "idx: ", img, NULL);
        const char *m = cg_last_error();
        assert_true(strstr(m, "truncated") || strstr(m, "corrupt") || strstr(m, "ends inside"));
    }
    /* a flipped byte in the compressed data: the CRC (or inflate) objects */
    whole[n / 2] ^= 0x55;
    write_bytes(img, whole, n);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, "idx: ", img, NULL);
    free(whole);
    assert_null(ds.x);
}

static void test_idx_count_mismatch_and_labels(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false);
    uint8_t h[16], lb[6] = {1, 2, 3, 4, 5, 6};
    write_idx(lab, false, h, idx_header(h, 1, 6, 0, 0), lb, 6);
    cg_dataset ds;
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, "has 5 images", "has 6 labels",
                 NULL);
    lb[2] = 200;
    write_idx(lab, false, h, idx_header(h, 1, 5, 0, 0), lb, 5);
    expect_error(cg_dataset_load_idx(&ds, img, lab), CG_ERR_FORMAT, lab, "label 200 of item 2",
                 NULL);
    expect_error(cg_dataset_load_idx(&ds, img, join(lab, tmp, "none")), CG_ERR_IO, "cannot open",
                 NULL);
    assert_null(ds.x);
}

/* ------------------------------------------------------------------ */
/* CSV                                                                 */
/* ------------------------------------------------------------------ */

#define NO_BAD 1000
/* One CSV row: label, then npix pixels (pixel k = (seed + k) % 256),
 * with `bad` (unless NO_BAD) put in place of pixel 5. */
static void csv_row(FILE *f, int label, int npix, int seed, int bad) {
    fprintf(f, "%d", label);
    for (int k = 0; k < npix; k++)
        fprintf(f, ",%d", k == 5 && bad != NO_BAD ? bad : (seed + k) % 256);
    fprintf(f, "\r\n");
}

static void write_csv(const char *path, bool header, const int *npix, int rows, int bad_row,
                      int bad) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (header) {
        fprintf(f, "label");
        for (int k = 0; k < npix[0]; k++) fprintf(f, ",pixel%d", k);
        fprintf(f, "\n");
    }
    for (int r = 0; r < rows; r++) csv_row(f, r % 10, npix[r], r * 3, r == bad_row ? bad : NO_BAD);
    fprintf(f, "\n");
    assert_int_equal(fclose(f), 0);
}

static void test_csv_good(void **state) {
    (void)state;
    char p[512];
    const int npix[3] = {784, 784, 784};
    for (int header = 0; header < 2; header++) {
        write_csv(join(p, tmp, "d.csv"), header, npix, 3, -1, -1);
        cg_dataset ds;
        if (cg_dataset_load_csv(&ds, p) != CG_OK) fail_msg("%s", cg_last_error());
        cg_assert_shape(ds.x, (int64_t[]){3, 784}, 2);
        assert_int_equal(ds.height, 28);
        assert_int_equal(ds.width, 28);
        assert_int_equal(ds.n_classes, 3);
        const float y[3] = {0, 1, 2};
        cg_assert_tensor(ds.y, y, 3, 0);
        assert_true(ds.x->data[784 + 10] == (float)(3 + 10) / 255.0f);
        cg_assert_batches_match(&ds);
        cg_dataset_free(&ds);
    }
    /* 16 pixels: a 4x4 image */
    const int sixteen[2] = {16, 16};
    write_csv(p, false, sixteen, 2, -1, -1);
    cg_dataset ds;
    assert_int_equal(cg_dataset_load_csv(&ds, p), CG_OK);
    assert_int_equal(ds.height, 4);
    cg_dataset_free(&ds);
}

static void test_csv_bad_rows(void **state) {
    (void)state;
    char p[512];
    cg_dataset ds;
    const int short_first[3] = {783, 784, 784};
    write_csv(join(p, tmp, "d.csv"), true, short_first, 3, -1, -1);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 2", "783 pixel values", NULL);
    const int long_third[3] = {784, 784, 785};
    write_csv(p, true, long_third, 3, -1, -1);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 4", "785 pixel values",
                 "expected 784", NULL);
    const int short_second[3] = {784, 783, 784};
    write_csv(p, false, short_second, 3, -1, -1);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 2", "783 pixel values", NULL);
    const int ok[3] = {784, 784, 784};
    write_csv(p, true, ok, 3, 1, 256);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 3", "pixel 5 is 256", NULL);
    write_csv(p, false, ok, 3, 2, -1);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 3", "pixel 5 is -1", NULL);
    write_bytes(p, "label,a\n3,x\n", 12);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 2", "\"x\" is not an integer",
                 NULL);
    write_bytes(p, "1,0\n99,0\n", 9);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "line 2", "label \"99\"", NULL);
    write_bytes(p, "label,p\n\n", 9);
    expect_error(cg_dataset_load_csv(&ds, p), CG_ERR_FORMAT, p, "no data rows", NULL);
    assert_null(ds.x);
}

static void test_labels_csv(void **state) {
    (void)state;
    char p[512];
    const char text[] = "name,label\r\ntrain/3/7.png,0\ntrain/7/1.png,1\n\n\"valid/a,b.png\",1\n";
    write_bytes(join(p, tmp, "labels.csv"), text, sizeof text - 1);
    cg_labels l;
    if (cg_read_labels_csv(p, &l) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "train/3/7.png");
    assert_string_equal(l.names[2], "valid/a,b.png");
    assert_int_equal(l.labels[1], 1);
    assert_int_equal(cg_labels_find(&l, "train/3/7.png"), 0);
    assert_int_equal(cg_labels_find(&l, "valid/a,b.png"), 1);
    assert_int_equal(cg_labels_find(&l, "train/3/8.png"), -1);
    cg_labels_free(&l);
    assert_null(l.names);
    write_bytes(p, "a.png,1\na.png,0\n", 16);
    expect_error(cg_read_labels_csv(p, &l), CG_ERR_FORMAT, p, "\"a.png\" is listed twice", NULL);
    write_bytes(p, "name,label\na.png,seven\n", 23);
    expect_error(cg_read_labels_csv(p, &l), CG_ERR_FORMAT, p, "line 2", "label \"seven\"", NULL);
    write_bytes(p, "name,label\nno-comma\n", 20);
    expect_error(cg_read_labels_csv(p, &l), CG_ERR_FORMAT, p, "line 2", "name,label", NULL);
    assert_null(l.names);
}

/* ------------------------------------------------------------------ */
/* select_classes                                                      */
/* ------------------------------------------------------------------ */

static void test_select_classes(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false); /* labels 3 0 9 3 1 */
    cg_dataset ds;
    assert_int_equal(cg_dataset_load_idx(&ds, img, lab), CG_OK);
    float row3[6];
    memcpy(row3, ds.x->data + 3 * 6, sizeof row3);
    const char *keep[2] = {"9", "3"};
    if (cg_dataset_select_classes(&ds, keep, 2) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(ds.n_classes, 2);
    assert_string_equal(ds.class_names[0], "9");
    assert_string_equal(ds.class_names[1], "3");
    cg_assert_shape(ds.x, (int64_t[]){3, 6}, 2);
    const float y[3] = {1, 0, 1}; /* items 0 (3), 2 (9), 3 (3), in their order */
    cg_assert_tensor(ds.y, y, 3, 0);
    assert_memory_equal(ds.x->data + 2 * 6, row3, sizeof row3);
    cg_assert_batches_match(&ds);
    const char *bad[1] = {"7"};
    expect_error(cg_dataset_select_classes(&ds, bad, 1), CG_ERR_ARG, "no class \"7\"", "9, 3",
                 NULL);
    const char *twice[2] = {"3", "3"};
    expect_error(cg_dataset_select_classes(&ds, twice, 2), CG_ERR_ARG, "listed twice", NULL);
    expect_error(cg_dataset_select_classes(&ds, keep, 0), CG_ERR_ARG, "select_classes", NULL);
    cg_assert_shape(ds.x, (int64_t[]){3, 6}, 2); /* failures leave it as it was */
    cg_dataset_free(&ds);
    cg_dataset empty = {0};
    expect_error(cg_dataset_select_classes(&empty, keep, 2), CG_ERR_STATE, "not loaded", NULL);
}

/* ------------------------------------------------------------------ */
/* Real MNIST (CGRAD_DATA)                                             */
/* ------------------------------------------------------------------ */

/* The data folder, or skips the test (exit 77 when CTest runs it alone). */
static const char *data_or_skip(void) {
    const char *d = cg_test_data_dir();
    if (!d) {
        if (getenv("CGRAD_TEST_ONLY")) exit(77);
        skip();
    }
    return d;
}

static int64_t count_label(const cg_dataset *ds, int c) {
    int64_t n = 0;
    for (int64_t i = 0; i < ds->y->numel; i++) n += ds->y->data[i] == (float)c;
    return n;
}

static void load_mnist(cg_dataset *ds, const char *data, const char *which) {
    char img[512], lab[512];
    snprintf(img, sizeof img, "%s/mnist/%s-images-idx3-ubyte.gz", data, which);
    snprintf(lab, sizeof lab, "%s/mnist/%s-labels-idx1-ubyte.gz", data, which);
    if (cg_dataset_load_idx(ds, img, lab) != CG_OK) fail_msg("%s", cg_last_error());
}

static void test_real_mnist_sample_counts(void **state) {
    (void)state;
    const char *data = data_or_skip();
    const char *split[2] = {"train", "valid"};
    const int64_t expect[2][2] = {{6131, 6265}, {1010, 1028}};
    for (int s = 0; s < 2; s++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/mnist_sample/%s", data, split[s]);
        cg_dataset ds;
        if (cg_dataset_load_folder(&ds, dir) != CG_OK) fail_msg("%s", cg_last_error());
        assert_int_equal(ds.n_classes, 2);
        assert_string_equal(ds.class_names[0], "3");
        assert_string_equal(ds.class_names[1], "7");
        cg_assert_shape(ds.x, (int64_t[]){expect[s][0] + expect[s][1], 784}, 2);
        assert_int_equal(count_label(&ds, 0), expect[s][0]);
        assert_int_equal(count_label(&ds, 1), expect[s][1]);
        cg_dataset_free(&ds);
    }
}

static void test_real_mnist_idx(void **state) {
    (void)state;
    const char *data = data_or_skip();
    cg_dataset ds;
    load_mnist(&ds, data, "train");
    cg_assert_shape(ds.x, (int64_t[]){60000, 784}, 2);
    assert_int_equal(ds.n_classes, 10);
    const int first_train[5] = {5, 0, 4, 1, 9}, first_test[5] = {7, 2, 1, 0, 4};
    for (int i = 0; i < 5; i++) assert_int_equal((int)ds.y->data[i], first_train[i]);
    cg_dataset_free(&ds);
    load_mnist(&ds, data, "t10k");
    cg_assert_shape(ds.x, (int64_t[]){10000, 784}, 2);
    for (int i = 0; i < 5; i++) assert_int_equal((int)ds.y->data[i], first_test[i]);
    cg_dataset_free(&ds);
}

/* mnist_sample/train/3/10.png is training image 10, pixel for pixel. */
static void test_real_png_matches_idx(void **state) {
    (void)state;
    const char *data = data_or_skip();
    char path[512];
    snprintf(path, sizeof path, "%s/mnist_sample/train/3/10.png", data);
    uint8_t *px;
    int64_t w, h;
    if (cg_png_read_gray(path, &px, &w, &h) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(w, 28);
    assert_int_equal(h, 28);
    cg_dataset ds;
    load_mnist(&ds, data, "train");
    assert_int_equal((int)ds.y->data[10], 3);
    int nonzero = 0;
    for (int i = 0; i < 784; i++) {
        if (ds.x->data[10 * 784 + i] != (float)px[i] / 255.0f)
            fail_msg("pixel %d: png %d, idx %g", i, px[i], ds.x->data[10 * 784 + i] * 255);
        nonzero += px[i] != 0;
    }
    assert_true(nonzero > 50); /* a digit, not a blank */
    free(px);
    cg_dataset_free(&ds);
}

static void test_real_idx_select_3_7(void **state) {
    (void)state;
    const char *data = data_or_skip();
    const char *which[2] = {"train", "t10k"};
    const int64_t expect[2][2] = {{6131, 6265}, {1010, 1028}};
    const char *keep[2] = {"3", "7"};
    for (int s = 0; s < 2; s++) {
        cg_dataset ds;
        load_mnist(&ds, data, which[s]);
        if (cg_dataset_select_classes(&ds, keep, 2) != CG_OK) fail_msg("%s", cg_last_error());
        assert_int_equal(ds.x->shape[0], expect[s][0] + expect[s][1]);
        assert_int_equal(count_label(&ds, 0), expect[s][0]);
        assert_int_equal(count_label(&ds, 1), expect[s][1]);
        cg_dataset_free(&ds);
    }
}

static void test_real_labels_csv(void **state) {
    (void)state;
    const char *data = data_or_skip();
    char path[512];
    snprintf(path, sizeof path, "%s/mnist_sample/labels.csv", data);
    cg_labels l;
    if (cg_read_labels_csv(path, &l) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(l.n, 6131 + 6265 + 1010 + 1028);
    int64_t per[2] = {0, 0};
    for (int64_t i = 0; i < l.n; i++) {
        /* the label is the class folder's index: 3 -> 0, 7 -> 1 */
        const char *cls = strchr(l.names[i], '/') + 1;
        assert_int_equal(l.labels[i], *cls == '3' ? 0 : 1);
        per[l.labels[i]]++;
    }
    assert_int_equal(per[0], 6131 + 1010);
    assert_int_equal(cg_labels_find(&l, "train/3/10.png"), 0);
    assert_int_equal(cg_labels_find(&l, "valid/7/9990.png"), 1);
    cg_labels_free(&l);
}

/* pixel / 255 in the vector loop, with this CPU's widest vectors and with
 * the build's baseline ones: every one of the 256 values the same bits as
 * a scalar division (a multiply by 1/255 would miss about half), at every
 * alignment and with a tail. */
static void test_u8_to_unit_exact(void **state) {
    (void)state;
    void (*const fns[2])(float *restrict, const uint8_t *restrict,
                         int64_t) = {cg_u8_to_unit, cg_u8_to_unit_portable};
    volatile float d255 = 255.0f; /* a run-time scalar division to compare with */
    for (int f = 0; f < 2; f++) {
        uint8_t src[300];
        float dst[300];
        for (int i = 0; i < 300; i++) src[i] = (uint8_t)(i * 7 + 3);
        for (int off = 0; off < 9; off++)
            for (int n = 0; n + off <= 300; n += 37) {
                fns[f](dst + off, src + off, n);
                for (int i = off; i < off + n; i++)
                    if (dst[i] != (float)src[i] / d255)
                        fail_msg("kernel %d, pixel %d: %.9g, expected %.9g", f, src[i], dst[i],
                                 (float)src[i] / d255);
            }
        for (int v = 0; v < 256; v++) src[v] = (uint8_t)v;
        fns[f](dst, src, 256);
        for (int v = 0; v < 256; v++) assert_true(dst[v] == (float)v / d255);
    }
}

/*
 * A class's rows and its mean image: from the bytes, each pixel's exact sum divided
 * once (so no float summing order shows), equal on 1 and 2 threads, and
 * within a float rounding of the article's mean over x's rows; without
 * bytes, exactly that mean. Bad classes, empty ones and an unloaded
 * dataset are errors.
 */
static void test_dataset_mean_image(void **state) {
    (void)state;
    enum { N = 6000, HW = 784 }; /* big enough for two threads */
    uint8_t *px = malloc((size_t)N * HW), labels[N];
    assert_non_null(px);
    cg_rng rng;
    cg_rng_seed(&rng, 9);
    for (int64_t i = 0; i < (int64_t)N * HW; i++) px[i] = (uint8_t)(cg_rng_uniform(&rng) * 256.0f);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)(i % 3 == 0 ? 2 : 0); /* class 1 empty */
    cg_dataset ds;
    assert_int_equal(cg_dataset_from_u8(&ds, "test", "random", px, labels, N, 28, 28), CG_OK);
    cg_scope_begin();
    for (int c = 0; c <= 2; c += 2) {
        uint64_t sum[HW] = {0};
        int64_t n = 0;
        for (int i = 0; i < N; i++)
            if (labels[i] == c) {
                n++;
                for (int j = 0; j < HW; j++) sum[j] += px[(int64_t)i * HW + j];
            }
        cg_set_num_threads(1);
        cg_tensor *one = cg_dataset_mean_image(&ds, c);
        cg_set_num_threads(2);
        cg_tensor *two = cg_dataset_mean_image(&ds, c);
        assert_true(one && two);
        cg_assert_shape(two, (int64_t[]){HW}, 1);
        assert_memory_equal(one->data, two->data, HW * sizeof(float));
        for (int j = 0; j < HW; j++)
            assert_true(two->data[j] == (float)((double)sum[j] / (255.0 * (double)n)));
        /* The article's way, over x's rows: the same up to float rounding. */
        int64_t *idx = malloc(sizeof *idx * N);
        int64_t k = 0;
        for (int i = 0; i < N; i++)
            if (labels[i] == c) idx[k++] = i;
        int dim0 = 0;
        cg_tensor *article =
            cg_tensor_mean_dims(cg_tensor_index_select(ds.x, idx, k), &dim0, 1, false);
        free(idx);
        for (int j = 0; j < HW; j++)
            cg_assert_close(two->data[j], article->data[j], 1e-6, 1e-5, "mean");
        /* Without the bytes: exactly the article's mean. */
        uint8_t *kept = ds.pixels;
        ds.pixels = NULL;
        cg_tensor *from_x = cg_dataset_mean_image(&ds, c);
        ds.pixels = kept;
        assert_non_null(from_x);
        assert_memory_equal(from_x->data, article->data, HW * sizeof(float));
    }
    cg_set_num_threads(0);
    /* The class's rows themselves (stacked_threes): every third image. */
    int64_t count = -1;
    cg_tensor *rows = cg_dataset_class_rows(&ds, 2, &count);
    assert_int_equal(count, N / 3);
    cg_assert_shape(rows, (int64_t[]){N / 3, HW}, 2);
    assert_memory_equal(rows->data + HW, ds.x->data + 3 * HW, HW * sizeof(float));
    assert_non_null(cg_dataset_class_rows(&ds, 1, &count));
    assert_int_equal(count, 0);
    assert_null(cg_dataset_class_rows(&ds, 5, &count));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_null(cg_dataset_mean_image(&ds, 1));
    assert_non_null(strstr(cg_last_error(), "mean_image: class 1 has no images"));
    assert_null(cg_dataset_mean_image(&ds, 3));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_null(cg_dataset_mean_image(&ds, -1));
    cg_dataset empty = {0};
    assert_null(cg_dataset_mean_image(&empty, 0));
    assert_int_equal(cg_last_status(), CG_ERR_STATE);
    cg_scope_end();
    cg_dataset_free(&ds);
    free(px);
}

/* A batch's errors, and the two cases that must come from x instead of
 * the bytes: none kept (x changed by hand) and x in a graph. */
static void test_dataset_batch_errors_and_fallbacks(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false); /* 5 images, 6 pixels */
    cg_dataset ds;
    assert_int_equal(cg_dataset_load_idx(&ds, img, lab), CG_OK);
    cg_scope_begin();
    const int64_t idx[3] = {4, 0, 4};
    assert_null(cg_dataset_batch(&ds, (const int64_t[]){1, 5}, 2));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "dataset_batch: index 5 (position 1) is outside 0..4"));
    assert_null(cg_dataset_batch(&ds, (const int64_t[]){-1}, 1));
    assert_null(cg_dataset_batch(&ds, NULL, 2));
    assert_non_null(strstr(cg_last_error(), "no index array"));
    cg_dataset empty = {0};
    assert_null(cg_dataset_batch(&empty, idx, 3));
    assert_int_equal(cg_last_status(), CG_ERR_STATE);
    cg_tensor *none = cg_dataset_batch(&ds, idx, 0);
    assert_non_null(none);
    cg_assert_shape(none, (int64_t[]){0, 6}, 2);

    /* x changed in place and the bytes dropped: batches follow x. */
    ds.x->data[4 * 6 + 1] = 2.5f;
    free(ds.pixels);
    ds.pixels = NULL;
    cg_tensor *b = cg_dataset_batch(&ds, idx, 3);
    assert_non_null(b);
    assert_true(b->data[1] == 2.5f && b->data[2 * 6 + 1] == 2.5f);

    /* x in a graph: the batch is index_select's, and gradients reach x. */
    cg_tensor_requires_grad(ds.x, true);
    cg_tensor *g = cg_dataset_batch(&ds, idx, 3);
    assert_true(g && g->requires_grad);
    assert_int_equal(cg_backward(cg_tensor_sum(g)), CG_OK);
    assert_true(ds.x->grad[4 * 6] == 2.0f && ds.x->grad[0] == 1.0f && ds.x->grad[6] == 0.0f);
    cg_scope_end();
    cg_dataset_free(&ds);
}

/* ------------------------------------------------------------------ */
/* Bytes only (cg_data_keep_floats(false))                             */
/* ------------------------------------------------------------------ */

/* The setting back on after a test, even one that failed half way (later
 * tests in the same process expect x). */
static int teardown_floats(void **state) {
    (void)state;
    cg_data_keep_floats(true);
    return 0;
}
static int teardown_tmp_floats(void **state) {
    teardown_floats(state);
    return teardown_tmp(state);
}

/* Asserts b has a's shape and a's bits. */
static void assert_same_bits(const cg_tensor *a, const cg_tensor *b, const char *what) {
    if (!a || !b) fail_msg("%s: %s", what, cg_last_error());
    cg_assert_shape(b, a->shape, a->ndim);
    if (a->numel && memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) != 0)
        fail_msg("%s: not the same bits", what);
}

/*
 * `bytes`, loaded without floats, is `full` less x: the same pixels,
 * labels, classes and image size, and every call on it gives full's bits
 * (batches of any rows on 1 and 2 threads, each class's rows and mean).
 */
static void assert_bytes_only_same(const cg_dataset *full, const cg_dataset *bytes) {
    assert_non_null(full->x);
    assert_null(bytes->x);
    assert_non_null(bytes->pixels);
    const int64_t n = cg_dataset_size(full), len = full->height * full->width;
    assert_int_equal(cg_dataset_size(bytes), n);
    assert_int_equal(full->x->shape[0], n);
    assert_int_equal(bytes->height, full->height);
    assert_int_equal(bytes->width, full->width);
    assert_int_equal(bytes->n_classes, full->n_classes);
    assert_memory_equal(bytes->class_names, full->class_names, sizeof full->class_names);
    assert_memory_equal(bytes->pixels, full->pixels, (size_t)(n * len));
    assert_memory_equal(bytes->y->data, full->y->data, (size_t)n * sizeof(float));
    cg_assert_batches_match(full); /* full's x is its pixels / 255 */

    int64_t *idx = cg_test_rows_backwards(n);
    const int threads = cg_get_num_threads();
    for (int nt = 1; nt <= 2; nt++) {
        cg_set_num_threads(nt);
        cg_scope_begin();
        assert_same_bits(cg_dataset_batch(full, idx, n + 2), cg_dataset_batch(bytes, idx, n + 2),
                         "batch");
        assert_same_bits(cg_dataset_batch(full, idx + n, 2), cg_dataset_batch(bytes, idx + n, 2),
                         "batch of two");
        for (int c = 0; c < full->n_classes; c++) {
            int64_t nf = -1, nb = -1;
            cg_tensor *rows = cg_dataset_class_rows(full, c, &nf);
            assert_same_bits(rows, cg_dataset_class_rows(bytes, c, &nb), "class_rows");
            assert_int_equal(nb, nf);
            cg_tensor *mf = cg_dataset_mean_image(full, c), *mb = cg_dataset_mean_image(bytes, c);
            if (nf == 0) { /* a class with no images has no mean, either way */
                assert_true(!mf && !mb);
                assert_int_equal(cg_last_status(), CG_ERR_ARG);
            } else {
                assert_same_bits(mf, mb, "mean_image");
            }
        }
        cg_scope_end();
    }
    cg_set_num_threads(threads);
    free(idx);
}

/* One of the loaders, as (ds, a, b). */
typedef cg_status (*loader_fn)(cg_dataset *ds, const char *a, const char *b);
static cg_status load_idx_ab(cg_dataset *ds, const char *a, const char *b) {
    return cg_dataset_load_idx(ds, a, b);
}
static cg_status load_csv_a(cg_dataset *ds, const char *a, const char *b) {
    (void)b;
    return cg_dataset_load_csv(ds, a);
}
static cg_status load_folder_a(cg_dataset *ds, const char *a, const char *b) {
    (void)b;
    return cg_dataset_load_folder(ds, a);
}
static cg_status load_cached_ab(cg_dataset *ds, const char *a, const char *b) {
    return cg_dataset_load_folder_cached(ds, a, b);
}

/* Loads with floats (full) and without (bytes); the setting on after. */
static void load_both_ways(loader_fn load, const char *a, const char *b, cg_dataset *full,
                           cg_dataset *bytes) {
    assert_true(cg_data_keep_floats(true)); /* on by default, and every test leaves it on */
    if (load(full, a, b) != CG_OK) fail_msg("%s", cg_last_error());
    assert_true(cg_data_keep_floats(false));
    if (load(bytes, a, b) != CG_OK) fail_msg("%s", cg_last_error());
    assert_false(cg_data_keep_floats(true));
}

/* Both ways, compared; then narrowed to their last and first classes (the
 * setting on meanwhile: select_classes keeps the parts the dataset has)
 * and compared again. */
static void check_loader(loader_fn load, const char *a, const char *b) {
    cg_dataset full, bytes;
    load_both_ways(load, a, b, &full, &bytes);
    assert_bytes_only_same(&full, &bytes);
    char last[CG_CLASS_NAME_MAX], first[CG_CLASS_NAME_MAX]; /* copies: full's names change */
    snprintf(last, sizeof last, "%s", full.class_names[full.n_classes - 1]);
    snprintf(first, sizeof first, "%s", full.class_names[0]);
    const char *keep[2] = {last, first};
    if (cg_dataset_select_classes(&full, keep, 2) != CG_OK) fail_msg("%s", cg_last_error());
    if (cg_dataset_select_classes(&bytes, keep, 2) != CG_OK) fail_msg("%s", cg_last_error());
    assert_int_equal(full.n_classes, 2);
    assert_bytes_only_same(&full, &bytes);
    cg_dataset_free(&full);
    cg_dataset_free(&bytes);
    cg_dataset_free(&bytes); /* twice: a freed dataset is all zero */
    assert_null(bytes.pixels);
}

/* 6,000 images of 28x28, enough for a batch and a mean on two threads;
 * labels 0..9 but 5, so one class is empty. */
static void test_bytes_only_idx(void **state) {
    (void)state;
    enum { N = 6000, HW = 28 * 28 };
    uint8_t h[16], *px = malloc((size_t)N * HW), lb[N];
    assert_non_null(px);
    cg_rng rng;
    cg_rng_seed(&rng, 21);
    for (int64_t i = 0; i < (int64_t)N * HW; i++) px[i] = (uint8_t)cg_rng_u32(&rng);
    for (int i = 0; i < N; i++) lb[i] = (uint8_t)(i % 9 < 5 ? i % 9 : i % 9 + 1);
    char img[512], lab[512];
    for (int gz = 0; gz < 2; gz++) {
        join(img, tmp, gz ? "i.gz" : "i.idx");
        join(lab, tmp, gz ? "l.gz" : "l.idx");
        write_idx(img, gz, h, idx_header(h, 3, N, 28, 28), px, (size_t)N * HW);
        write_idx(lab, gz, h, idx_header(h, 1, N, 0, 0), lb, N);
        check_loader(load_idx_ab, img, lab);
    }
    free(px);
    /* The small pair too (labels 3 0 9 3 1: classes gathered, not together). */
    make_idx_pair(img, lab, false);
    check_loader(load_idx_ab, img, lab);
    cg_data_keep_floats(true);
}

static void test_bytes_only_csv(void **state) {
    (void)state;
    char p[512];
    const int npix[12] = {784, 784, 784, 784, 784, 784, 784, 784, 784, 784, 784, 784};
    write_csv(join(p, tmp, "d.csv"), true, npix, 12, -1, -1);
    check_loader(load_csv_a, p, NULL);
    cg_data_keep_floats(true);
}

static void test_bytes_only_folder(void **state) {
    (void)state;
    check_loader(load_folder_a, make_folder(), NULL);
    /* a folder of 3 classes of 100 7x5 images, decoded on 2 threads */
    char root[512], d[512], p[512];
    make_dir(join(root, tmp, "par"));
    for (int c = 0; c < 3; c++) {
        char cls[8];
        snprintf(cls, sizeof cls, "%d", c);
        make_dir(join(d, root, cls));
        for (int i = 0; i < 100; i++) {
            char name[32];
            snprintf(name, sizeof name, "%d.png", i);
            write_gray(join(p, d, name), 7, 5, c * 1000 + i);
        }
    }
    cg_set_num_threads(2);
    check_loader(load_folder_a, root, NULL);
    cg_set_num_threads(0);
    cg_data_keep_floats(true);
}

/* The one cache file in dir, into path. */
static void cache_file(const char *dir, char *path) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "images-", 7) == 0) {
            join(path, dir, e->d_name);
            n++;
        }
    closedir(d);
    assert_int_equal(n, 1);
}

/* A cached load with floats or without; the setting on after. */
static void load_cached_as(bool floats, cg_dataset *ds, const char *root, const char *cache) {
    cg_data_keep_floats(floats);
    cg_status st = cg_dataset_load_folder_cached(ds, root, cache);
    cg_data_keep_floats(true);
    if (st != CG_OK) fail_msg("%s", cg_last_error());
}

/* The cache file is the same bytes whichever way it was written, and each
 * way reads the file the other wrote (read: not rewritten). */
static void test_bytes_only_cached_folder(void **state) {
    (void)state;
    const char *root = make_folder();
    char off_dir[512], on_dir[512], off_file[512], on_file[512];
    make_dir(join(off_dir, tmp, "cache-off"));
    make_dir(join(on_dir, tmp, "cache-on"));
    cg_dataset full, bytes;
    load_cached_as(false, &bytes, root, off_dir); /* each writes its folder's file */
    load_cached_as(true, &full, root, on_dir);
    assert_bytes_only_same(&full, &bytes);
    cg_dataset_free(&full);
    cg_dataset_free(&bytes);
    cache_file(off_dir, off_file);
    cache_file(on_dir, on_file);
    size_t n_off, n_on;
    uint8_t *off = cg_test_read_file(off_file, &n_off), *on = cg_test_read_file(on_file, &n_on);
    assert_int_equal(n_off, n_on);
    assert_memory_equal(off, on, n_off);
    free(off);
    free(on);
    struct stat off_before, on_before, off_after, on_after;
    assert_int_equal(stat(off_file, &off_before), 0);
    assert_int_equal(stat(on_file, &on_before), 0);
    load_cached_as(true, &full, root, off_dir);
    load_cached_as(false, &bytes, root, on_dir);
    assert_int_equal(stat(off_file, &off_after), 0);
    assert_int_equal(stat(on_file, &on_after), 0);
    assert_int_equal(off_after.st_ino, off_before.st_ino);
    assert_int_equal(on_after.st_ino, on_before.st_ino);
    assert_bytes_only_same(&full, &bytes);
    cg_dataset_free(&full);
    cg_dataset_free(&bytes);
    /* The loader through the common checks (both ways into one folder). */
    check_loader(load_cached_ab, root, on_dir);
}

/* Neither x nor bytes (never loaded, or the bytes dropped), or bytes of no
 * image size: a clean error from every call, never a crash. */
static void test_bytes_only_errors(void **state) {
    (void)state;
    char img[512], lab[512];
    make_idx_pair(join(img, tmp, "i.idx"), join(lab, tmp, "l.idx"), false); /* 5 images of 2x3 */
    const char *keep[1] = {"3"};
    const int64_t idx[2] = {1, 5};
    cg_dataset empty = {0}, ds;
    assert_int_equal(cg_dataset_size(&empty), 0);
    assert_int_equal(cg_dataset_size(NULL), 0);
    cg_data_keep_floats(false);
    if (cg_dataset_load_idx(&ds, img, lab) != CG_OK) fail_msg("%s", cg_last_error());
    cg_data_keep_floats(true);
    assert_null(ds.x);
    assert_int_equal(cg_dataset_size(&ds), 5);
    cg_scope_begin();
    /* bytes only: a bad index or class is the caller's error */
    assert_null(cg_dataset_batch(&ds, idx, 2));
    expect_error(cg_last_status(), CG_ERR_ARG, "dataset_batch: index 5 (position 1)",
                 "outside 0..4", NULL);
    assert_null(cg_dataset_class_rows(&ds, 10, NULL));
    assert_int_equal(cg_last_status(), CG_ERR_ARG);
    /* bytes of no size */
    ds.width = 0;
    assert_null(cg_dataset_batch(&ds, idx, 1));
    expect_error(cg_last_status(), CG_ERR_STATE, "dataset_batch", "bad size, 2x0", NULL);
    ds.width = 3;
    /* the bytes dropped: nothing left to make images from */
    uint8_t *kept = ds.pixels;
    ds.pixels = NULL;
    cg_dataset *const sets[2] = {&empty, &ds};
    for (int s = 0; s < 2; s++) {
        assert_null(cg_dataset_batch(sets[s], idx, 1));
        expect_error(cg_last_status(), CG_ERR_STATE, "dataset_batch: the dataset is not loaded",
                     NULL);
        assert_null(cg_dataset_class_rows(sets[s], 0, NULL));
        expect_error(cg_last_status(), CG_ERR_STATE, "class_rows: the dataset is not loaded", NULL);
        assert_null(cg_dataset_mean_image(sets[s], 0));
        expect_error(cg_last_status(), CG_ERR_STATE, "mean_image: the dataset is not loaded", NULL);
        expect_error(cg_dataset_select_classes(sets[s], keep, 1), CG_ERR_STATE,
                     "select_classes: the dataset is not loaded", NULL);
    }
    cg_scope_end();
    ds.pixels = kept;
    cg_dataset_free(&ds);
    cg_dataset_free(&empty);
}

/* mnist_sample's valid folder (2,038 real digits) both ways. */
static void test_real_bytes_only_sample(void **state) {
    (void)state;
    const char *data = data_or_skip();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mnist_sample/valid", data);
    check_loader(load_folder_a, dir, NULL);
    cg_data_keep_floats(true);
}

/*
 * Full MNIST, train and test, without floats: x NULL, and the process's
 * peak memory under 120 MB (the 188 MB of train floats alone would not
 * fit; the bytes are 47 + 8 MB). Alone in its process, as CTest runs it,
 * the peak itself is checked. After other tests (the whole program in one
 * process) the mark is reset first (Linux's clear_refs) and what the loads
 * add to the memory already held is checked; where the mark cannot be
 * reset, or under AddressSanitizer (its shadow memory and quarantine), the
 * figure is printed, not checked.
 */
static void test_real_bytes_only_mnist_memory(void **state) {
    (void)state;
    enum { LIMIT_MB = 120, ALONE_MB = 16 /* a fresh test process holds ~3 MB */ };
    const char *data = data_or_skip();
    const bool reset = cg_test_reset_peak_rss();
    const double before = cg_test_peak_rss_mb();
    cg_dataset train, test;
    cg_data_keep_floats(false);
    load_mnist(&train, data, "train");
    load_mnist(&test, data, "t10k");
    cg_data_keep_floats(true);
    const double peak = cg_test_peak_rss_mb();
    printf("full MNIST bytes only: peak RSS %.1f MB (%.1f MB before loading%s)\n", peak, before,
           reset ? "" : "; the mark was not reset");
    assert_null(train.x);
    assert_null(test.x);
    assert_int_equal(cg_dataset_size(&train), 60000);
    assert_int_equal(cg_dataset_size(&test), 10000);
    assert_int_equal(train.height * train.width, 784);
    assert_int_equal(train.n_classes, 10);
    const int first_train[5] = {5, 0, 4, 1, 9};
    for (int i = 0; i < 5; i++) assert_int_equal((int)train.y->data[i], first_train[i]);
#ifdef CG_TEST_ASAN
    printf("(AddressSanitizer build: not checked against %d MB)\n", LIMIT_MB);
#else
    if (before < ALONE_MB)
        assert_true(peak < LIMIT_MB);
    else if (reset)
        assert_true(peak - before < LIMIT_MB);
    else
        printf("(the peak could not be reset: not checked against %d MB)\n", LIMIT_MB);
#endif
    /* Batches, a class's mean and the 3s and 7s, from the bytes alone. */
    cg_scope_begin();
    const int64_t rows[3] = {59999, 0, 10};
    cg_tensor *b = cg_dataset_batch(&train, rows, 3);
    assert_non_null(b);
    cg_assert_shape(b, (int64_t[]){3, 784}, 2);
    for (int j = 0; j < 784; j++)
        assert_true(b->data[2 * 784 + j] == (float)train.pixels[10 * 784 + j] / 255.0f);
    assert_non_null(cg_dataset_mean_image(&train, 3));
    cg_scope_end();
    const char *keep[2] = {"3", "7"};
    if (cg_dataset_select_classes(&test, keep, 2) != CG_OK) fail_msg("%s", cg_last_error());
    assert_null(test.x);
    assert_int_equal(cg_dataset_size(&test), 1010 + 1028);
    assert_int_equal(count_label(&test, 0), 1010);
    cg_dataset_free(&train);
    cg_dataset_free(&test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_png_gray8_roundtrip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_gray16_scaled, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_gray_low_bit_depths, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_rgb_uses_bt601_weights, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_rgba_composited_on_black, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_palette_and_trns, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_interlaced, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_truncated, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_random_bytes, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_huge_header_refused, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_png_write_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_order_and_values, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_mixed_png_types, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_wrong_size, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_one_huge_image, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_fifo_image, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_empty_class, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_no_classes_or_missing, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_reports_first_bad_file, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_same_result_any_threads, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_folder_inside_scope, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_raw_and_gzip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_bad_magic, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_counts_larger_than_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_truncated_gzip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_idx_count_mismatch_and_labels, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_csv_good, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_csv_bad_rows, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_labels_csv, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_select_classes, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_u8_to_unit_exact),
        cmocka_unit_test_setup_teardown(test_dataset_batch_errors_and_fallbacks, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test(test_dataset_mean_image),
        cmocka_unit_test(test_real_mnist_sample_counts),
        cmocka_unit_test(test_real_mnist_idx),
        cmocka_unit_test(test_real_png_matches_idx),
        cmocka_unit_test(test_real_idx_select_3_7),
        cmocka_unit_test(test_real_labels_csv),
        cmocka_unit_test_setup_teardown(test_bytes_only_idx, setup_tmp, teardown_tmp_floats),
        cmocka_unit_test_setup_teardown(test_bytes_only_csv, setup_tmp, teardown_tmp_floats),
        cmocka_unit_test_setup_teardown(test_bytes_only_folder, setup_tmp, teardown_tmp_floats),
        cmocka_unit_test_setup_teardown(test_bytes_only_cached_folder, setup_tmp,
                                        teardown_tmp_floats),
        cmocka_unit_test_setup_teardown(test_bytes_only_errors, setup_tmp, teardown_tmp_floats),
        cmocka_unit_test_teardown(test_real_bytes_only_sample, teardown_floats),
        cmocka_unit_test_teardown(test_real_bytes_only_mnist_memory, teardown_floats),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
