#include "testutil.h"

#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/wait.h>

void cg_test_setup_filter(void) {
    const char *only = getenv("CGRAD_TEST_ONLY");
    if (only && *only) cmocka_set_test_filter(only);
}

void cg_assert_close(double actual, double expected, double atol, double rtol, const char *what) {
    double diff = fabs(actual - expected);
    if (!(diff <= atol + rtol * fabs(expected))) {
        fail_msg("%s: got %.9g, expected %.9g (diff %.3g)", what, actual, expected, diff);
    }
}

void cg_assert_tensor(const cg_tensor *t, const float *expect, int64_t n, double atol) {
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    for (int64_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "element %lld", (long long)i);
        cg_assert_close(t->data[i], expect[i], atol, 0.0, what);
    }
}

void cg_assert_shape(const cg_tensor *t, const int64_t *shape, int ndim) {
    assert_non_null(t);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
}

/* Loss L = sum(f(x) * R) in double, computed without autograd. */
static double weighted_sum(cg_test_fn f, cg_tensor *const *inputs, void *ctx, const float *r) {
    bool prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *out = f(inputs, ctx);
    assert_non_null(out);
    double s = 0.0;
    for (int64_t i = 0; i < out->numel; i++) s += (double)out->data[i] * r[i];
    cg_scope_end();
    cg_set_grad_enabled(prev);
    return s;
}

double cg_check_grad(cg_test_fn f, cg_tensor *const *inputs, int n, void *ctx, double tol) {
    cg_rng rng;
    cg_rng_seed(&rng, 1234);
    /* Analytic: backward of sum(f(x) * R). */
    for (int i = 0; i < n; i++)
        if (inputs[i]->requires_grad) cg_tensor_zero_grad(inputs[i]);
    cg_scope_begin();
    cg_tensor *out = f(inputs, ctx);
    assert_non_null(out);
    cg_tensor *r = cg_tensor_rand(out->shape, out->ndim, &rng);
    assert_non_null(r);
    for (int64_t i = 0; i < r->numel; i++) r->data[i] = r->data[i] * 2.0f - 1.0f;
    cg_tensor *loss = cg_tensor_sum(cg_tensor_mul(out, r));
    assert_non_null(loss);
    assert_int_equal(cg_backward(loss), CG_OK);
    float *rcopy = malloc(sizeof(float) * (size_t)(r->numel ? r->numel : 1));
    assert_non_null(rcopy);
    memcpy(rcopy, r->data, sizeof(float) * (size_t)r->numel);
    cg_scope_end();

    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        cg_tensor *x = inputs[i];
        if (!x->requires_grad) continue;
        assert_non_null(x->grad);
        for (int64_t j = 0; j < x->numel; j++) {
            float keep = x->data[j];
            double eps = 1e-3 * fmax(1.0, fabs(keep));
            x->data[j] = (float)(keep + eps);
            double lp = weighted_sum(f, inputs, ctx, rcopy);
            x->data[j] = (float)(keep - eps);
            double lm = weighted_sum(f, inputs, ctx, rcopy);
            x->data[j] = keep;
            double numeric = (lp - lm) / (2.0 * eps);
            double analytic = x->grad[j];
            double err = fabs(numeric - analytic) / fmax(1.0, fabs(numeric) + fabs(analytic));
            if (err > worst) worst = err;
            if (err > tol) {
                free(rcopy);
                fail_msg("input %d element %lld: analytic %.6g, numeric %.6g", i, (long long)j,
                         analytic, numeric);
            }
        }
    }
    free(rcopy);
    return worst;
}

cg_tensor *cg_test_uniform(const int64_t *shape, int ndim, float lo, float hi, uint64_t seed,
                           bool requires_grad) {
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    cg_tensor *t = cg_tensor_rand(shape, ndim, &rng);
    assert_non_null(t);
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = lo + (hi - lo) * t->data[i];
    return cg_tensor_requires_grad(t, requires_grad);
}

int64_t *cg_test_rows_backwards(int64_t n) {
    int64_t *idx = malloc((size_t)(n + 2) * sizeof *idx);
    assert_non_null(idx);
    for (int64_t k = 0; k < n; k++) idx[k] = n - 1 - k;
    idx[n] = 0;
    idx[n + 1] = n - 1;
    return idx;
}

void cg_assert_batches_match(const cg_dataset *ds) {
    assert_non_null(ds->pixels);
    const int64_t n = ds->x->shape[0], len = ds->x->shape[1];
    for (int64_t i = 0; i < n * len; i++)
        if (ds->x->data[i] != (float)ds->pixels[i] / 255.0f)
            fail_msg("x[%lld] = %.9g but its pixel is %d", (long long)i, ds->x->data[i],
                     ds->pixels[i]);
    int64_t *idx = cg_test_rows_backwards(n);
    const int threads = cg_get_num_threads();
    for (int nt = 1; nt <= 2; nt++) {
        cg_set_num_threads(nt);
        cg_scope_begin();
        cg_tensor *want = cg_tensor_index_select(ds->x, idx, n + 2);
        cg_tensor *got = cg_dataset_batch(ds, idx, n + 2);
        if (!got) fail_msg("%s", cg_last_error());
        cg_assert_shape(got, want->shape, 2);
        assert_memory_equal(got->data, want->data, (size_t)want->numel * sizeof(float));
        assert_false(got->requires_grad);
        cg_scope_end();
    }
    cg_set_num_threads(threads);
    free(idx);
}

uint8_t *cg_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

const char *cg_test_data_dir(void) {
    const char *d = getenv("CGRAD_DATA");
    if (!d || !*d) {
        printf("skipped: CGRAD_DATA is not set, so the real-data checks do not run\n");
        return NULL;
    }
    return d;
}

const char *cg_test_tmpdir(void) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/cgrad-test-XXXXXX");
    if (!mkdtemp(path)) fail_msg("mkdtemp failed");
    return path;
}

double cg_test_peak_rss_mb(void) {
    struct rusage u;
    assert_int_equal(getrusage(RUSAGE_SELF, &u), 0);
    return (double)u.ru_maxrss / 1024.0; /* KB on Linux */
}

bool cg_test_reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    bool reset = f && fputs("5", f) >= 0;
    if (f && fclose(f) != 0) reset = false;
    return reset;
}

void cg_test_check_picture(const char *path, int64_t *width, int64_t *height) {
    uint8_t *px = NULL;
    int64_t w = 0, h = 0;
    if (cg_png_read_gray(path, &px, &w, &h) != CG_OK) fail_msg("%s", cg_last_error());
    int64_t ink = 0, dark = 0, levels = 0;
    bool seen[256] = {false};
    for (int64_t i = 0; i < w * h; i++) {
        ink += px[i] < 235;
        dark += px[i] < 100;
        if (!seen[px[i]]) levels++, seen[px[i]] = true;
    }
    free(px);
    double frac = (double)ink / (double)(w * h);
    printf("%s: %lldx%lld, %.1f%% drawn, %lld gray levels\n", path, (long long)w, (long long)h,
           100.0 * frac, (long long)levels);
    if (frac < 0.005 || frac > 0.95 || dark == 0 || levels < 8)
        fail_msg("%s looks blank: %.2f%% of it drawn, %lld dark pixels, %lld gray levels", path,
                 100.0 * frac, (long long)dark, (long long)levels);
    *width = w;
    *height = h;
}

/* ------------------------------------------------------------------ */
/* The cgrad program                                                   */
/* ------------------------------------------------------------------ */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    for (size_t got; (got = fread(s + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
    }
    s[len] = '\0';
    fclose(f);
    return s;
}

/* See testutil.h. */
const char *cg_test_cgrad_bin(void) {
    static char path[1024];
    const char *build = getenv("CGRAD_TEST_BUILD");
    if (build && *build) {
        snprintf(path, sizeof path, "%s/cgrad", build);
        return path;
    }
    char self[900];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? (self[n] = '\0', strrchr(self, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/../cgrad", self);
        if (access(path, X_OK) == 0) return path;
    }
    printf("skipped: no cgrad program found (set CGRAD_TEST_BUILD to the build folder)\n");
    skip();
    return NULL;
}

const char *cg_test_sample_dir(void) {
    static char root[1024];
    const char *d = cg_test_data_dir();
    if (!d) skip();
    snprintf(root, sizeof root, "%s/mnist_sample", d);
    return root;
}

cg_test_run cg_test_vcgrad(int limit_s, const char *fmt, va_list ap) {
    static char dir[512];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    char args[1 << 17], limit[32] = "";
    int n = vsnprintf(args, sizeof args, fmt, ap);
    assert_true(n >= 0 && (size_t)n < sizeof args);
    if (limit_s > 0) snprintf(limit, sizeof limit, "timeout -s KILL %d ", limit_s);
    size_t cmd_size = sizeof args + 4096;
    char *cmd = malloc(cmd_size);
    assert_non_null(cmd);
    snprintf(cmd, cmd_size, "%s'%s' %s >'%s/out' 2>'%s/err' </dev/null", limit,
             cg_test_cgrad_bin(), args,
             dir, dir);
    int st = system(cmd);
    free(cmd);
    cg_test_run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, NULL, NULL};
    char p[600];
    snprintf(p, sizeof p, "%s/out", dir);
    r.out = read_text(p);
    snprintf(p, sizeof p, "%s/err", dir);
    r.err = read_text(p);
    return r;
}

cg_test_run cg_test_cgrad(int limit_s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cg_test_run r = cg_test_vcgrad(limit_s, fmt, ap);
    va_end(ap);
    return r;
}

void cg_test_run_free(cg_test_run *r) {
    free(r->out);
    free(r->err);
}

void cg_test_expect_status(const cg_test_run *r, int status, const char *what) {
    if (r->status != status)
        fail_msg("%s: exit status %d, expected %d\nstdout: %s\nstderr: %s", what, r->status,
                 status, r->out, r->err);
}

void cg_test_write_png(const char *path, const cg_test_png_spec *s, const uint8_t *data) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng could not write the fixture %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->bit_depth, s->color_type,
                 s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->n_trns, NULL);
    if (s->gamma > 0) png_set_gAMA(png, info, s->gamma);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < s->h; y++) png_write_row(png, data + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    assert_int_equal(fclose(f), 0);
}
