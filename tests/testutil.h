/*
 * testutil.h - what every cmocka test program here shares.
 *
 * CG_TEST_MAIN(tests) runs the group; CTest runs each test on its own by
 * setting CGRAD_TEST_ONLY to its name (see tests/CMakeLists.txt).
 */
#ifndef CGRAD_TESTUTIL_H
#define CGRAD_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the three headers above first. */
#include <cmocka.h>

#include "cgrad.h"

#include <png.h>

#define CG_TEST_MAIN(tests)                                              \
    int main(void) {                                                     \
        cg_test_setup_filter();                                          \
        return cmocka_run_group_tests(tests, NULL, NULL);                \
    }

void cg_test_setup_filter(void);

/* |a - b| <= atol + rtol * |b|, with a message naming what differs. */
void cg_assert_close(double actual, double expected, double atol, double rtol, const char *what);
/* Every element of t equals expect[i] within atol. */
void cg_assert_tensor(const cg_tensor *t, const float *expect, int64_t n, double atol);
void cg_assert_shape(const cg_tensor *t, const int64_t *shape, int ndim);

/*
 * Gradient check against central finite differences: f builds an output
 * from inputs[0..n); the check compares, for every element of every input
 * that requires grad, d(sum(f * R))/dx from cg_backward with
 * (L(x+eps) - L(x-eps)) / 2eps, R a fixed random tensor. Returns the
 * largest relative error seen; asserts it is below tol.
 */
typedef cg_tensor *(*cg_test_fn)(cg_tensor *const *inputs, void *ctx);
double cg_check_grad(cg_test_fn f, cg_tensor *const *inputs, int n, void *ctx, double tol);

/* A tensor of `shape` filled uniformly in [lo, hi) from a generator seeded
 * with `seed`, requiring grad if asked (the caller or the scope owns it). */
cg_tensor *cg_test_uniform(const int64_t *shape, int ndim, float lo, float hi, uint64_t seed,
                           bool requires_grad);

/* n + 2 row indices (malloc'd): every row of n backwards, then the first
 * and last rows again. */
int64_t *cg_test_rows_backwards(int64_t n);

/* A loaded dataset keeps the bytes its x was made from (x == pixels / 255
 * bit for bit), and cg_dataset_batch of any rows (reversed, repeated) is
 * exactly cg_tensor_index_select of x, on one thread and on two. */
void cg_assert_batches_match(const cg_dataset *ds);

/* The high-water mark of this process's memory, in MB, and a reset of it
 * to what the process holds now (Linux's /proc/self/clear_refs; false
 * where that cannot be done). */
double cg_test_peak_rss_mb(void);
bool cg_test_reset_peak_rss(void);
/* AddressSanitizer's shadow memory and quarantine make memory figures
 * meaningless: tests print them instead of checking. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CG_TEST_ASAN 1
#endif

/* The whole file, malloc'd (plus a NUL after it); *len gets its size. */
uint8_t *cg_test_read_file(const char *path, size_t *len);

/* $CGRAD_DATA, or NULL after printing that the data tests are skipped. */
const char *cg_test_data_dir(void);
/* A fresh temporary folder for this test (removed by the OS, /tmp). */
const char *cg_test_tmpdir(void);

/* A PNG that cgrad drew: it reads as a PNG (cg_png_read_gray), its size
 * goes to *width, *height, and it is not blank (some, not all, of it drawn
 * darker than the background, with dark strokes and several gray levels). */
void cg_test_check_picture(const char *path, int64_t *width, int64_t *height);

/* ---- the cgrad program, run as a user runs it ---- */

/* $CGRAD_TEST_BUILD/cgrad (ctest sets it), else the cgrad built beside this
 * test program (BUILD/tests/test_x -> BUILD/cgrad); skips the test if none. */
const char *cg_test_cgrad_bin(void);
/* $CGRAD_DATA/mnist_sample, or skips the test. */
const char *cg_test_sample_dir(void);

typedef struct cg_test_run {
    int status; /* exit status, or -1 if it did not exit normally */
    char *out, *err;
} cg_test_run;

/* Runs `cgrad ARGS` (ARGS: shell words, printf-style) with stdin empty and
 * stdout and stderr captured; killed after limit_s seconds when limit_s > 0
 * (a hang then fails the check instead of stalling the suite). */
cg_test_run cg_test_cgrad(int limit_s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
cg_test_run cg_test_vcgrad(int limit_s, const char *fmt, va_list ap);
void cg_test_run_free(cg_test_run *r);
/* Fails, printing both streams, unless r exited with `status`. */
void cg_test_expect_status(const cg_test_run *r, int status, const char *what);

/* A PNG of any type, written with libpng: `data` holds the packed rows
 * (16-bit samples big-endian), as PNG stores them. */
typedef struct cg_test_png_spec {
    int w, h, color_type, bit_depth, interlace;
    const png_color *palette;
    int n_palette;
    const uint8_t *trns;
    int n_trns;
    double gamma; /* a gAMA chunk when > 0 */
} cg_test_png_spec;
void cg_test_write_png(const char *path, const cg_test_png_spec *s, const uint8_t *data);

#endif
