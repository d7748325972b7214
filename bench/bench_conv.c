/*
 * bench_conv.c - conv2d's forward, backward-data and backward-weight on
 * the five layers of fastbook's simple_cnn (chapter 13, MNIST 28x28) at
 * batch 512, and what they add up to over an epoch of 60,000 images.
 *
 *   bench_conv [--path P[,P...]] [--threads N] [--reps R] [--batch N] [--min]
 *              [--only LAYER:PASS]
 *
 * Paths: auto (the library's choice), direct, direct-avx2, im2col, or all
 * (the default: every one this CPU runs). Each pass is timed alone: the
 * forward is cg_tensor_conv2d with grad mode off; a backward is the op's
 * backward on a fixed dL/dy, with only x (data) or only w and b (weight)
 * wanting a gradient. The paths take turns run by run (after one warm-up
 * each), so that a machine whose speed drifts - another process on the
 * other core - slows them alike; each gets the median of its R runs (--min:
 * the fastest). GFLOP/s counts 2*N*O*OH*OW*C*KH*KW per pass, the taps in
 * the padding included. The epoch total leaves out the first layer's
 * backward-data, which training never runs (the images want no gradient).
 *
 * --only 3:weight times just conv3's backward-weight (passes: forward, data,
 * weight) on the first path given, for a profiler.
 *
 * bench/pytorch_conv.py times torch.nn.functional.conv2d on the same
 * shapes (/usr/bin/python3 bench/pytorch_conv.py --threads 2).
 * Prints figures only; nothing is asserted.
 */
#include "cgrad.h"
#include "cgrad_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer {
    const char *name;
    int64_t c, h, w, o, k;
    int stride, pad;
} layer;

static const layer LAYERS[] = {
    {"conv1  1->8  k5 s2 p2 28->14", 1, 28, 28, 8, 5, 2, 2},
    {"conv2  8->16 k3 s2 p1 14->7", 8, 14, 14, 16, 3, 2, 1},
    {"conv3 16->32 k3 s2 p1  7->4", 16, 7, 7, 32, 3, 2, 1},
    {"conv4 32->64 k3 s2 p1  4->2", 32, 4, 4, 64, 3, 2, 1},
    {"conv5 64->10 k3 s2 p1  2->1", 64, 2, 2, 10, 3, 2, 1},
};
enum { NLAYERS = sizeof LAYERS / sizeof LAYERS[0], MAX_PATHS = 4 };

static bool use_min;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double summary(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (use_min) return v[0];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static bool set_path(const char *p) { return cg_conv_use_path(strcmp(p, "auto") == 0 ? NULL : p); }

/* Uniform in [-1, 1) from a 32-bit LCG: inputs need no better, and randn
 * of a batch costs more than the convolution. */
static void fill(cg_tensor *t, uint32_t seed) {
    for (int64_t i = 0; i < t->numel; i++) {
        seed = seed * 1664525u + 1013904223u;
        t->data[i] = (float)(seed >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
}

/* Seconds of one pass (0 forward, 1 backward-data, 2 backward-weight and
 * bias) on each of the paths, runs interleaved: out[i] for paths[i]. */
static void time_pass(const layer *L, int64_t batch, int pass, int reps, const char *const *paths,
                      int npaths, double *out) {
    cg_scope_begin();
    const int64_t xs[4] = {batch, L->c, L->h, L->w}, ws[4] = {L->o, L->c, L->k, L->k},
                  bs[1] = {L->o};
    cg_tensor *x = cg_tensor_new(xs, 4), *w = cg_tensor_new(ws, 4), *b = cg_tensor_new(bs, 1);
    fill(x, 1), fill(w, 2), fill(b, 3);
    cg_tensor_requires_grad(x, pass == 1);
    cg_tensor_requires_grad(w, pass == 2);
    cg_tensor_requires_grad(b, pass == 2);
    const bool prev = cg_set_grad_enabled(pass != 0);
    cg_tensor *y = cg_tensor_conv2d(x, w, b, L->stride, L->pad);
    cg_set_grad_enabled(prev);
    if (!y) {
        fprintf(stderr, "bench_conv: %s\n", cg_last_error());
        exit(1);
    }
    float *dy = NULL;
    if (pass) {
        dy = cg_floats_alloc(y->numel);
        for (int64_t i = 0; i < y->numel; i++) dy[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
        y->grad = dy;
    }
    double *t = malloc(sizeof(double) * (size_t)(reps * npaths));
    for (int r = -1; r < reps; r++)
        for (int p = 0; p < npaths; p++) {
            set_path(paths[p]);
            const double t0 = cg_seconds();
            if (pass == 0) {
                cg_scope_begin();
                const bool was = cg_set_grad_enabled(false);
                (void)cg_tensor_conv2d(x, w, b, L->stride, L->pad);
                cg_set_grad_enabled(was);
                cg_scope_end();
            } else {
                y->op->backward(y);
            }
            if (r >= 0) t[p * reps + r] = cg_seconds() - t0;
        }
    for (int p = 0; p < npaths; p++) out[p] = summary(t + p * reps, reps);
    free(t);
    if (pass) y->grad = NULL, cg_floats_free(dy, y->numel);
    cg_scope_end();
    set_path("auto");
}

static double flops_of(const layer *L, int64_t batch) {
    const int64_t oh = (L->h + 2 * L->pad - L->k) / L->stride + 1;
    const int64_t ow = (L->w + 2 * L->pad - L->k) / L->stride + 1;
    return 2.0 * (double)batch * (double)L->o * (double)(oh * ow) * (double)(L->c * L->k * L->k);
}

static void run(const char *const *paths, int npaths, int64_t batch, int reps) {
    double s[NLAYERS][3][MAX_PATHS];
    for (int l = 0; l < NLAYERS; l++)
        for (int p = 0; p < 3; p++) time_pass(&LAYERS[l], batch, p, reps, paths, npaths, s[l][p]);
    const double per_epoch = 60000.0 / (double)batch;
    double total_f = 0;
    for (int l = 0; l < NLAYERS; l++) total_f += flops_of(&LAYERS[l], batch) * (l == 0 ? 2 : 3);
    for (int q = 0; q < npaths; q++) {
        printf("\npath %s, batch %lld, %d thread(s), %s of %d (paths interleaved)\n", paths[q],
               (long long)batch, cg_get_num_threads(), use_min ? "fastest" : "median", reps);
        printf("%-30s %10s %9s %9s %9s %9s %9s %9s\n", "layer", "MFLOP/pass", "fwd ms", "GFLOP/s",
               "bwd-d ms", "GFLOP/s", "bwd-w ms", "GFLOP/s");
        double sum[3] = {0};
        for (int l = 0; l < NLAYERS; l++) {
            const double f = flops_of(&LAYERS[l], batch);
            printf("%-30s %10.1f", LAYERS[l].name, f * 1e-6);
            for (int p = 0; p < 3; p++)
                printf(" %9.3f %9.1f", s[l][p][q] * 1e3, f / s[l][p][q] * 1e-9);
            printf("\n");
            /* Training never asks for the first layer's backward-data. */
            for (int p = 0; p < 3; p++)
                if (p != 1 || l != 0) sum[p] += s[l][p][q];
        }
        const double batch_s = sum[0] + sum[1] + sum[2];
        printf("per batch: forward %.3f ms, bwd-data %.3f ms, bwd-weight %.3f ms = %.3f ms "
               "(%.1f GFLOP/s)\n",
               sum[0] * 1e3, sum[1] * 1e3, sum[2] * 1e3, batch_s * 1e3, total_f / batch_s * 1e-9);
        printf(
            "per epoch (60000 images = %.1f batches): forward %.3f s + backward %.3f s = %.3f s\n",
            per_epoch, sum[0] * per_epoch, (sum[1] + sum[2]) * per_epoch, batch_s * per_epoch);
    }
}

int main(int argc, char **argv) {
    const char *path = "all", *only = NULL;
    int64_t batch = 512;
    int reps = 21, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--min") == 0)
            use_min = true;
        else {
            fprintf(stderr, "usage: bench_conv [--path auto|direct|direct-avx2|im2col|all[,...]] "
                            "[--threads N] [--reps R] [--batch N] [--min] "
                            "[--only LAYER:forward|data|weight]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (batch < 1) batch = 1;
    if (threads > 0) cg_set_num_threads(threads);

    /* The paths, as given or all that run here. */
    const char *paths[MAX_PATHS];
    int npaths = 0;
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", strcmp(path, "all") == 0 ? "direct,direct-avx2,im2col" : path);
    for (char *tok = strtok(buf, ","); tok && npaths < MAX_PATHS; tok = strtok(NULL, ","))
        if (set_path(tok))
            paths[npaths++] = tok;
        else
            printf("path %s: cannot run here\n", tok);
    set_path("auto");
    if (npaths == 0) return 2;
    printf("bench_conv: gemm kernel %s\n", cg_gemm_kernel_name());

    if (only) {
        const int l = atoi(only) - 1;
        const char *colon = strchr(only, ':');
        const char *pn = colon ? colon + 1 : "forward";
        const int p = strcmp(pn, "data") == 0 ? 1 : strcmp(pn, "weight") == 0 ? 2 : 0;
        if (l < 0 || l >= NLAYERS) {
            fprintf(stderr, "bench_conv: --only wants LAYER 1..%d\n", NLAYERS);
            return 2;
        }
        double s;
        time_pass(&LAYERS[l], batch, p, reps, paths, 1, &s);
        printf("%s %s (%s): %.3f ms, %.1f GFLOP/s\n", LAYERS[l].name, pn, paths[0], s * 1e3,
               flops_of(&LAYERS[l], batch) / s * 1e-9);
        return 0;
    }
    run(paths, npaths, batch, reps);
    return 0;
}
