/*
 * augment.c - random affine transforms of training images (fastai's
 * batch_tfms: rotate, zoom, translate), applied to a batch in place.
 *
 * Each image gets its own transform T, drawn from a hash of (seed, step,
 * item) rather than from a shared generator, so that the images can be
 * done in any order on any number of threads with the same bits, and a
 * batch split across ranks (cg_fit_config.comm) is transformed as the
 * whole batch would be. T maps an input point p to
 *     T(p) = c + scale * R(angle) (p - c) + (dx, dy)
 * about the image's centre c = ((width-1)/2, (height-1)/2), and the output
 * is the input pulled back through it: out(q) = in(T^-1(q)), with
 *     T^-1(q) = c + R(-angle) (q - c - (dx, dy)) / scale,
 * read bilinearly from the four pixels around it, those outside the image
 * counting as 0 (MNIST's black background, as fastai's padding_mode='zeros'
 * would give). With angle 0 and scale 1, T^-1(q) = q - (dx, dy) exactly, so
 * a whole-pixel shift moves pixels without blurring them.
 */
#include "data/data.h"

#include <math.h>
#include <omp.h>

/* Images' worth of floats from which a batch takes every thread. */
#define AUGMENT_PARALLEL_MIN (1 << 15)
#define PI 3.14159265358979323846

bool cg_augment_enabled(const cg_augment *a) {
    return a && (a->max_shift > 0.0f || a->max_rotate_deg > 0.0f ||
                 (a->min_scale != 0.0f && a->min_scale != 1.0f) ||
                 (a->max_scale != 0.0f && a->max_scale != 1.0f));
}

cg_status cg_augment_check(const cg_augment *a, const char *op) {
    if (!a) return CG_OK;
    if (!(a->max_shift >= 0.0f && a->max_shift <= 1e6f))
        return cg_fail(CG_ERR_ARG, "%s: augment's max_shift must be >= 0 pixels (got %g)", op,
                       (double)a->max_shift);
    if (!(a->max_rotate_deg >= 0.0f && a->max_rotate_deg <= 180.0f))
        return cg_fail(CG_ERR_ARG, "%s: augment's max_rotate_deg must be in 0..180 (got %g)", op,
                       (double)a->max_rotate_deg);
    if (a->min_scale == 0.0f && a->max_scale == 0.0f) return CG_OK;
    if (!(a->min_scale > 0.0f && a->min_scale <= a->max_scale && a->max_scale <= 1e3f))
        return cg_fail(CG_ERR_ARG,
                       "%s: augment's scale range must be 0 < min_scale <= max_scale (got %g..%g)",
                       op, (double)a->min_scale, (double)a->max_scale);
    return CG_OK;
}

/* splitmix64's finaliser: a 64-bit mix in which every input bit moves
 * about half the output bits. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The k-th uniform in [-1, 1) of stream h: 24 bits, exact in a float. */
static float symmetric_uniform(uint64_t h, uint64_t k) {
    uint64_t z = mix64(h + (k + 1) * 0x9e3779b97f4a7c15ULL);
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

cg_affine cg_augment_draw(const cg_augment *a, uint64_t step, int64_t item) {
    cg_affine t = {0.0f, 0.0f, 0.0f, 1.0f};
    if (!cg_augment_enabled(a)) return t;
    const uint64_t h = mix64(mix64(a->seed ^ mix64(step)) + (uint64_t)item);
    t.dx = a->max_shift * symmetric_uniform(h, 0);
    t.dy = a->max_shift * symmetric_uniform(h, 1);
    t.angle_deg = a->max_rotate_deg * symmetric_uniform(h, 2);
    if (a->min_scale > 0.0f) {
        const float u = 0.5f * (symmetric_uniform(h, 3) + 1.0f); /* [0, 1) */
        t.scale = a->min_scale + (a->max_scale - a->min_scale) * u;
    }
    return t;
}

/* Pixel (x, y) of a plane, 0 outside it. */
static inline float pixel_or_zero(const float *plane, int64_t x, int64_t y, int64_t width,
                                  int64_t height) {
    return x >= 0 && x < width && y >= 0 && y < height ? plane[y * width + x] : 0.0f;
}

/* floor(v) for |v| far below 2^62, without a call into libm. */
static inline int64_t floor_to_int(float v) {
    const int64_t i = (int64_t)v;
    return (float)i > v ? i - 1 : i;
}

void cg_affine_warp(const cg_affine *t, const float *src, float *dst, int64_t channels,
                    int64_t height, int64_t width) {
    const double rad = (double)t->angle_deg * (PI / 180.0);
    /* R(-angle) / scale; exactly the identity for angle 0, scale 1. */
    const float c = (float)(cos(rad) / (double)t->scale), s = (float)(sin(rad) / (double)t->scale);
    const float cx = 0.5f * (float)(width - 1), cy = 0.5f * (float)(height - 1);
    const int64_t plane = height * width;
    for (int64_t y = 0; y < height; y++)
        for (int64_t x = 0; x < width; x++) {
            const float u = (float)x - cx - t->dx, v = (float)y - cy - t->dy;
            const float sx = c * u + s * v + cx, sy = c * v - s * u + cy;
            float *out = dst + y * width + x;
            /* Outside (or not finite): the four neighbours are all 0. */
            if (!(sx > -1.0f && sx < (float)width && sy > -1.0f && sy < (float)height)) {
                for (int64_t k = 0; k < channels; k++) out[k * plane] = 0.0f;
                continue;
            }
            const int64_t x0 = floor_to_int(sx), y0 = floor_to_int(sy);
            const float fx = sx - (float)x0, fy = sy - (float)y0;
            const bool inside = x0 >= 0 && x0 + 1 < width && y0 >= 0 && y0 + 1 < height;
            for (int64_t k = 0; k < channels; k++) {
                const float *p = src + k * plane;
                float p00, p01, p10, p11;
                if (inside) { /* most pixels: no bounds to check */
                    const float *q = p + y0 * width + x0;
                    p00 = q[0], p01 = q[1], p10 = q[width], p11 = q[width + 1];
                } else {
                    p00 = pixel_or_zero(p, x0, y0, width, height);
                    p01 = pixel_or_zero(p, x0 + 1, y0, width, height);
                    p10 = pixel_or_zero(p, x0, y0 + 1, width, height);
                    p11 = pixel_or_zero(p, x0 + 1, y0 + 1, width, height);
                }
                const float top = (1.0f - fx) * p00 + fx * p01;
                const float bottom = (1.0f - fx) * p10 + fx * p11;
                out[k * plane] = (1.0f - fy) * top + fy * bottom;
            }
        }
}

cg_status cg_augment_batch(const cg_augment *a, uint64_t step, int64_t first_item, float *x,
                           int64_t n, int64_t channels, int64_t height, int64_t width) {
    if (cg_augment_check(a, "augment") != CG_OK) return cg_last_status();
    if (n < 0 || channels < 1 || height < 1 || width < 1 || (n > 0 && !x))
        return cg_fail(CG_ERR_ARG,
                       "augment: needs n >= 0 images of channels, height, width >= 1 (got %lld "
                       "of %lldx%lldx%lld)",
                       (long long)n, (long long)channels, (long long)height, (long long)width);
    if (!cg_augment_enabled(a) || n == 0) return CG_OK;
    const int64_t len = channels * height * width;
    const int nt = n * len >= AUGMENT_PARALLEL_MIN ? cg_get_num_threads() : 1;
    /* Each thread's copy of the image it is working on; from the pool, as
     * the same size comes back every step. */
    const int64_t n_scratch = (int64_t)nt * len;
    float *scratch = cg_floats_alloc(n_scratch);
    if (!scratch) return cg_fail(CG_ERR_NOMEM, "augment: out of memory for %d images", nt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *copy = scratch + (int64_t)omp_get_thread_num() * len;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const cg_affine t = cg_augment_draw(a, step, first_item + i);
            memcpy(copy, x + i * len, sizeof *copy * (size_t)len);
            cg_affine_warp(&t, copy, x + i * len, channels, height, width);
        }
    }
    cg_floats_free(scratch, n_scratch);
    return CG_OK;
}
