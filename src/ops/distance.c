/*
 * distance.c - the pixel-similarity baseline's distance, as one fused op.
 *
 * fastbook's mnist_distance(a, b) = (a - b).abs().mean((-1, -2)) measures
 * how far each image is from an ideal digit. As three ops (sub, abs, mean)
 * it writes two [N, P] temporaries and reads them back; fused, each row is
 * one pass over its P pixels:
 *   L1:    d_i = (1/P) sum_j |x_ij - y_j|
 *   RMSE:  d_i = sqrt((1/P) sum_j (x_ij - y_j)^2)     (F.mse_loss(a, b).sqrt())
 * Backward, with g_i the gradient reaching d_i and r_ij = x_ij - y_j:
 *   L1:    dd_i/dx_ij = sign(r_ij) / P            (0 at r = 0, as abs's derivative)
 *   RMSE:  dd_i/dx_ij = r_ij / (P d_i)            (0 where d_i = 0)
 * and dd_i/dy_j = -dd_i/dx_ij, summed over the rows. Rows are independent,
 * so threads take rows; each row's sum runs in double over 8 lanes in a
 * fixed order (as cg_sum_floats), so the bits do not depend on the thread
 * count.
 */
#include "cgrad_internal.h"

#include <math.h>

/* The row's mean of |r| or r^2, in double. */
static double row_mean(const float *x, const float *y, int64_t p, cg_distance kind) {
    double acc[8] = {0};
    int64_t j = 0;
    if (kind == CG_DIST_L1) {
        for (; j + 8 <= p; j += 8)
            for (int l = 0; l < 8; l++) acc[l] += fabsf(x[j + l] - y[j + l]);
        for (; j < p; j++) acc[j % 8] += fabsf(x[j] - y[j]);
    } else {
        for (; j + 8 <= p; j += 8)
            for (int l = 0; l < 8; l++) {
                const float r = x[j + l] - y[j + l];
                acc[l] += r * r;
            }
        for (; j < p; j++) acc[j % 8] += (x[j] - y[j]) * (x[j] - y[j]);
    }
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += acc[l];
    return s / (double)p;
}

/* dd_i/dx_ij for one element (see the top of the file). */
static inline float dd_dx(float r, float d, float inv_p, cg_distance kind) {
    if (kind == CG_DIST_L1) return (float)((r > 0.0f) - (r < 0.0f)) * inv_p;
    return d > 0.0f ? r * inv_p / d : 0.0f;
}

static void distance_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0], *y = out->src[1];
    const cg_distance kind = (cg_distance)out->iparam[0];
    const int64_t n = x->shape[0], p = x->shape[1];
    const float inv_p = 1.0f / (float)p;
    const float *g = out->grad, *d = out->data, *xs = x->data, *ys = y->data;
    float *gx = cg_wants_grad(x) ? cg_grad_buf(x) : NULL;
    float *gy = cg_wants_grad(y) ? cg_grad_buf(y) : NULL;
    if (gx) {
#pragma omp parallel for schedule(static) if (n * p >= CG_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < p; j++)
                gx[i * p + j] += g[i] * dd_dx(xs[i * p + j] - ys[j], d[i], inv_p, kind);
    }
    if (gy) {
        /* A column sum over the rows, in row order. */
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < p; j++)
                gy[j] -= g[i] * dd_dx(xs[i * p + j] - ys[j], d[i], inv_p, kind);
    }
}
static const cg_op OP_ROW_DISTANCE = {"row_distance", distance_backward};

cg_tensor *cg_tensor_row_distance(cg_tensor *x, cg_tensor *y, cg_distance kind) {
    if (!x || !y) return NULL;
    char sx[64], sy[64];
    if (kind != CG_DIST_L1 && kind != CG_DIST_RMSE) {
        cg_fail(CG_ERR_ARG, "row_distance: unknown distance %d", (int)kind);
        return NULL;
    }
    if (x->ndim != 2 || x->shape[1] < 1 || y->numel != x->shape[1] ||
        !(y->ndim == 1 || (y->ndim == 2 && y->shape[0] == 1))) {
        cg_fail(CG_ERR_SHAPE, "row_distance: needs rows x [N, P] and one y [P], got %s and %s",
                cg_shape_str(x, sx, sizeof sx), cg_shape_str(y, sy, sizeof sy));
        return NULL;
    }
    const int64_t n = x->shape[0], p = x->shape[1];
    cg_tensor *out = cg_op_result(&OP_ROW_DISTANCE, &n, 1, x, y, NULL);
    if (!out) return NULL;
    out->iparam[0] = kind;
    const float *xs = x->data, *ys = y->data;
    float *d = out->data;
#pragma omp parallel for schedule(static) if (n * p >= CG_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        const double m = row_mean(xs + i * p, ys, p, kind);
        d[i] = (float)(kind == CG_DIST_L1 ? m : sqrt(m));
    }
    return out;
}
