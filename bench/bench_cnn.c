/*
 * bench_cnn.c - where a training epoch of fastbook's simple_cnn (chapter
 * 13, the `ten_cnn` phase of run_bench.sh) goes, layer by layer, set
 * beside the rate cg_gemm reaches on a big square product.
 *
 *   bench_cnn [--threads N] [--reps N] [--batch N] [--mnist DIR]
 *
 * The model is the library's CNN preset (cg_model_preset + cg_model_for_images,
 * PyTorch's default init), in training mode. The input is one batch of real
 * MNIST training images (the IDX files in DIR, default $CGRAD_DATA/mnist;
 * random pixels and labels when they are missing), drawn at random with a
 * fixed seed. Threads: 2 unless --threads says otherwise.
 *
 * Per layer, on a fixed input of its input shape (the previous layer's real
 * output on that batch):
 *   fwd  the layer's forward alone, grad mode on (as in training: the graph
 *        and whatever the op saves for backward are built), the scope's end
 *        (freeing it) not timed;
 *   bwd  the layer's backward from dL/dy = R, a fixed random tensor of the
 *        output's shape: the layer's forward is run in a scope (not timed),
 *        its output's gradient set to R, and what cg_backward does for the
 *        layer's ops is timed - each op's backward, newest first, grad mode
 *        off, then the intermediate gradients freed. This is cg_backward of
 *        sum(layer(x) * R) with the graph cut at the layer's output, so the
 *        mul + sum head (a few passes over the output, as costly as a ReLU's
 *        backward) is left out; it uses the ops' internal backward hooks,
 *        as bench_conv does. The layer's input wants a gradient (allocated,
 *        zeroed and freed inside the timing, as the whole graph does for an
 *        intermediate), except for the first layer's: training never computes
 *        d/d(images). Parameters' gradients are zeroed between repetitions
 *        (not timed); they are accumulated into, as in training.
 * Each figure is the median of --reps repetitions after 3 warm-up ones;
 * the repetitions go in rounds (the GEMMs, every layer, the whole step),
 * so that a machine whose speed drifts slows every figure alike. Each
 * timed layer forward and whole step follows an untimed one, so that its
 * data are in the caches as in a training loop, not evicted by the GEMMs.
 *
 * The whole training step - cg_model_forward, cg_cross_entropy, cg_backward,
 * an Adam step (cg_optimizer_step, which also zeroes the gradients), then
 * the scope's end - is timed the same way on the same batch, prebuilt (so
 * the loader's batch making and the epoch's scoring of the test set are not
 * in it). The per-layer sum is set against it, and both are scaled to an
 * epoch of 60000 / batch steps.
 *
 * MFLOP per batch counts 2*N*O*OH*OW*C*KH*KW for a convolution and
 * 2*N*in*out for a linear layer (others: 0); backward does twice that
 * (data + weight), once for the first layer (weight only). GEMM: cg_gemm on
 * 1024^3 and on the im2col products of the first two convolutions' forward.
 * Prints figures only; nothing is asserted.
 */
#include "cgrad.h"
#include "cgrad_internal.h"
#include "nn/layer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WARMUP 3
#define EPOCH_IMAGES 60000.0

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what) {
    fprintf(stderr, "bench_cnn: %s: %s\n", what, cg_last_error());
    exit(1);
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Zeroes the gradient of every parameter of layer l. */
static void zero_grads(cg_layer *l) {
    for (int p = 0; p < l->n_params; p++) cg_tensor_zero_grad(l->params[p]);
}

/* Seconds of one forward of layer l on x (grad mode on), after an untimed
 * one that brings x and the weights into the caches, as the previous
 * layer's forward leaves them in a training step. */
static double time_forward(cg_layer *l, cg_tensor *x, cg_forward_ctx *ctx) {
    cg_scope_begin();
    if (!l->kind->forward(l, x, ctx)) die("forward");
    cg_scope_end();
    cg_scope_begin();
    const double t0 = cg_seconds();
    cg_tensor *y = l->kind->forward(l, x, ctx);
    const double t1 = cg_seconds();
    if (!y) die("forward");
    cg_scope_end();
    return t1 - t0;
}

/* The graph's nodes made by ops, reachable from t, in post-order (inputs
 * first), as cg_backward's topological sort; n: how many so far. */
static int collect(cg_tensor *t, cg_tensor **nodes, int n, int cap) {
    if (!t || !t->op) return n;
    for (int i = 0; i < n; i++)
        if (nodes[i] == t) return n;
    for (int s = 0; s < 3; s++) n = collect(t->src[s], nodes, n, cap);
    if (n >= cap) {
        fprintf(stderr, "bench_cnn: a layer of more than %d ops\n", cap);
        exit(1);
    }
    nodes[n++] = t;
    return n;
}

/* Seconds of one backward of layer l from dL/dy = R: what cg_backward
 * does for the layer's ops (each op's backward, newest first, with grad
 * mode off, then the intermediate gradients freed), on the layer's graph
 * alone - cut at y, whose gradient is set to R untimed. */
static double time_backward(cg_layer *l, cg_tensor *x, const cg_tensor *R, cg_forward_ctx *ctx) {
    enum { CAP = 256 };
    cg_tensor *nodes[CAP];
    zero_grads(l);
    cg_scope_begin();
    cg_tensor *y = l->kind->forward(l, x, ctx);
    if (!y) die("forward for backward");
    const int n = collect(y, nodes, 0, CAP);
    if (y->op) {
        y->grad = cg_floats_alloc(y->numel);
        if (!y->grad) die("dL/dy");
        memcpy(y->grad, R->data, sizeof(float) * (size_t)y->numel);
    }
    const double t0 = cg_seconds();
    const bool prev = cg_set_grad_enabled(false);
    (void)cg_grad_alloc_failed(true);
    for (int i = n - 1; i >= 0; i--)
        if (nodes[i]->grad) nodes[i]->op->backward(nodes[i]);
    cg_set_grad_enabled(prev);
    for (int i = 0; i < n; i++)
        if (nodes[i]->grad) cg_floats_free(nodes[i]->grad, nodes[i]->numel), nodes[i]->grad = NULL;
    /* x stands for the previous layer's output, whose gradient the whole
     * graph makes (zeroed on first use) and frees likewise. */
    if (x->grad) cg_floats_free(x->grad, x->numel), x->grad = NULL;
    const double t1 = cg_seconds();
    if (cg_grad_alloc_failed(true)) die("backward: out of memory");
    cg_scope_end();
    return t1 - t0;
}

/* C = A @ B on M x K x N, operands filled once. */
typedef struct gemm_case {
    int64_t m, k, n;
    float *a, *b, *c;
} gemm_case;

static gemm_case gemm_make(int64_t m, int64_t k, int64_t n) {
    gemm_case g = {m, k, n, cg_floats_alloc(m * k), cg_floats_alloc(k * n), cg_floats_alloc(m * n)};
    if (!g.a || !g.b || !g.c) {
        fprintf(stderr, "bench_cnn: out of memory\n");
        exit(1);
    }
    uint32_t s = 12345u;
    for (int64_t i = 0; i < m * k; i++)
        s = s * 1664525u + 1013904223u, g.a[i] = (float)(s >> 8) * 1e-7f - 0.8f;
    for (int64_t i = 0; i < k * n; i++)
        s = s * 1664525u + 1013904223u, g.b[i] = (float)(s >> 8) * 1e-7f - 0.8f;
    return g;
}

static double gemm_time(const gemm_case *g) {
    const double t0 = cg_seconds();
    cg_gemm(false, false, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b, g->n, 0.0f, g->c, g->n);
    return cg_seconds() - t0;
}

static void gemm_free(gemm_case *g) {
    cg_floats_free(g->a, g->m * g->k), cg_floats_free(g->b, g->k * g->n),
        cg_floats_free(g->c, g->m * g->n);
}

/* FLOPs of layer l's forward on a batch of n (0 for layers without products). */
static double layer_flops(const cg_layer *l, int64_t n) {
    const char *kind = cg_layer_name(l);
    if (strcmp(kind, "conv") == 0) /* 2*N*OH*OW * (O*C*KH*KW) */
        return 2.0 * (double)n * (double)(l->out_shape[1] * l->out_shape[2]) *
               (double)l->params[0]->numel;
    if (strcmp(kind, "linear") == 0) /* 2*N*in*out */
        return 2.0 * (double)n * (double)l->params[0]->numel;
    return 0.0;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_cnn [--threads N] [--reps N] [--batch N] [--mnist DIR]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 21;
    int64_t batch = 512;
    const char *mnist = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = atoll(argv[++i]);
        else if (strcmp(argv[i], "--mnist") == 0 && i + 1 < argc)
            mnist = argv[++i];
        else
            usage();
    }
    if (threads < 1 || reps < 1 || batch < 1) usage();
    cg_set_num_threads(threads);

    /* ---- the model ---- */
    char spec[256];
    const char *name;
    if (cg_model_preset(CG_MODEL_CNN, 0, 10, spec, sizeof spec, &name) != CG_OK) die("preset");
    cg_rng rng;
    cg_rng_seed(&rng, 42);
    cg_model *m = cg_model_for_images(spec, name, 1, 28, 28, 10, CG_INIT_PYTORCH, 0.0f, &rng);
    if (!m) die("model");
    cg_model_train(m, true);

    /* ---- one batch: real MNIST images, or random pixels ---- */
    const int64_t img_shape[4] = {batch, 1, 28, 28};
    cg_tensor *xb = NULL, *yb = NULL;
    char src[4200] =
        "random pixels and labels (no MNIST IDX files: --mnist DIR or $CGRAD_DATA/mnist)";
    char dir[4096] = "", img[4200], lab[4200];
    const char *data = getenv("CGRAD_DATA");
    if (mnist)
        snprintf(dir, sizeof dir, "%s", mnist);
    else if (data && *data)
        snprintf(dir, sizeof dir, "%s/mnist", data);
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", dir);
    if (*dir && is_file(img) && is_file(lab)) {
        cg_data_keep_floats(false);
        cg_dataset ds;
        if (cg_dataset_load_idx(&ds, img, lab) != CG_OK) die("loading MNIST");
        const int64_t n = ds.y->shape[0];
        int64_t *perm = malloc(sizeof(int64_t) * (size_t)n),
                *idx = malloc(sizeof(int64_t) * (size_t)batch);
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = 0; i < batch; i++) { /* a partial Fisher-Yates; repeats past n */
            const int64_t j = i % n,
                          r = j + (int64_t)(cg_rng_uniform(&rng) * (float)(n - j)) % (n - j);
            const int64_t t = perm[j];
            perm[j] = perm[r], perm[r] = t;
            idx[i] = perm[j];
        }
        cg_tensor *flat = cg_dataset_batch(&ds, idx, batch);
        yb = cg_tensor_index_select(ds.y, idx, batch);
        if (!flat || !yb) die("batch");
        xb = cg_tensor_reshape(flat, img_shape, 4);
        if (!xb) die("reshape");
        cg_tensor_release(flat); /* the view keeps the buffer */
        snprintf(src, sizeof src, "%lld MNIST training images at random (seed 42) from %s",
                 (long long)batch, dir);
        free(perm), free(idx);
        cg_dataset_free(&ds);
    } else {
        xb = cg_tensor_rand(img_shape, 4, &rng);
        const int64_t ys[1] = {batch};
        yb = cg_tensor_new(ys, 1);
        if (!xb || !yb) die("random batch");
        for (int64_t i = 0; i < batch; i++)
            yb->data[i] = (float)((int)(cg_rng_uniform(&rng) * 10.0f) % 10);
    }

    double loadavg = -1;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &loadavg) != 1) loadavg = -1;
        fclose(la);
    }
    const double steps = EPOCH_IMAGES / (double)batch;
    printf(
        "bench_cnn: simple_cnn (%s) in training mode, batch %lld, %d thread(s), gemm kernel %s\n",
        spec, (long long)batch, cg_get_num_threads(), cg_gemm_kernel_name());
    printf("input: %s\n", src);
    printf("figures: median of %d repetitions after %d warm-up; load average %.2f at the start\n",
           reps, WARMUP, loadavg);

    /* ---- every layer's real input: the forward, layer by layer, no graph ---- */
    const int nl = m->n_layers;
    cg_tensor **in = calloc((size_t)nl + 1, sizeof *in);
    cg_forward_ctx ctx = {.training = true, .rng = &m->rng};
    in[0] = xb;
    {
        const bool was = cg_set_grad_enabled(false);
        for (int i = 0; i < nl; i++) {
            in[i + 1] = m->layers[i].kind->forward(&m->layers[i], in[i], &ctx);
            if (!in[i + 1]) die("forward");
        }
        cg_set_grad_enabled(was);
    }

    /* ---- the measurements, in rounds: every layer's forward and backward,
     * one whole step, the GEMMs; so that a machine whose speed drifts slows
     * them alike ---- */
    enum { P_FWD, P_LOSS, P_BWD, P_OPT, P_END, P_TOTAL, NPARTS };
    static const char *const PART[NPARTS] = {"model forward", "cross-entropy", "backward",
                                             "Adam step",     "scope end",     "whole step"};
    cg_tensor **R = calloc((size_t)nl, sizeof *R);
    for (int i = 0; i < nl; i++)
        if (!(R[i] = cg_tensor_rand(in[i + 1]->shape, in[i + 1]->ndim, &rng))) die("R");
    cg_optim_config oc = cg_adam_config(1e-3f);
    cg_optimizer *opt = cg_optimizer_new(&oc, m->params, m->n_params);
    if (!opt) die("optimizer");
    cg_optimizer_zero_grad(opt);

    const int64_t o1 = m->layers[0].out_shape[1] * m->layers[0].out_shape[2];
    int conv2 = -1;
    for (int i = 1; i < nl && conv2 < 0; i++)
        if (strcmp(cg_layer_name(&m->layers[i]), "conv") == 0) conv2 = i;
    enum { NG_MAX = 3 };
    gemm_case gc[NG_MAX];
    int ng = 0;
    gc[ng++] = gemm_make(1024, 1024, 1024);
    gc[ng++] =
        gemm_make(batch * o1, m->layers[0].params[0]->numel / m->layers[0].params[0]->shape[0],
                  m->layers[0].out_shape[0]);
    if (conv2 >= 0) {
        const cg_layer *l = &m->layers[conv2];
        gc[ng++] = gemm_make(batch * l->out_shape[1] * l->out_shape[2],
                             l->params[0]->numel / l->params[0]->shape[0], l->out_shape[0]);
    }

    double *tf = malloc(sizeof(double) * (size_t)(nl * reps)),
           *tb = malloc(sizeof(double) * (size_t)(nl * reps));
    double *pt = malloc(sizeof(double) * (size_t)(reps * NPARTS)),
           *tg = malloc(sizeof(double) * (size_t)(ng * reps));
    for (int r = -WARMUP; r < reps; r++) {
        for (int g = 0; g < ng; g++) {
            const double s = gemm_time(&gc[g]);
            if (r >= 0) tg[g * reps + r] = s;
        }
        for (int i = 0; i < nl; i++) {
            cg_layer *l = &m->layers[i];
            const double f = time_forward(l, in[i], &ctx);
            cg_tensor_requires_grad(in[i], i > 0);
            const double b = time_backward(l, in[i], R[i], &ctx);
            cg_tensor_requires_grad(in[i], false);
            if (r >= 0) tf[i * reps + r] = f, tb[i * reps + r] = b;
        }
        double t[NPARTS + 1];
        for (int twice = 0; twice < 2;
             twice++) { /* the first brings the step's data into the caches */
            t[0] = cg_seconds();
            cg_scope_begin();
            cg_tensor *out = cg_model_forward(m, xb);
            t[1] = cg_seconds();
            cg_tensor *loss = cg_cross_entropy(out, yb);
            t[2] = cg_seconds();
            if (!loss || cg_backward(loss) != CG_OK) die("training step");
            t[3] = cg_seconds();
            if (cg_optimizer_step(opt) != CG_OK) die("Adam step");
            t[4] = cg_seconds();
            cg_scope_end();
            t[5] = cg_seconds();
        }
        if (r < 0) continue;
        for (int p = 0; p < P_TOTAL; p++) pt[p * reps + r] = t[p + 1] - t[p];
        pt[P_TOTAL * reps + r] = t[5] - t[0];
    }
    double *fwd = calloc((size_t)nl, sizeof(double)), *bwd = calloc((size_t)nl, sizeof(double)),
           part[NPARTS], grate[NG_MAX];
    for (int i = 0; i < nl; i++)
        fwd[i] = median(tf + i * reps, reps), bwd[i] = median(tb + i * reps, reps);
    for (int p = 0; p < NPARTS; p++) part[p] = median(pt + p * reps, reps);
    for (int g = 0; g < ng; g++)
        grate[g] = 2.0 * (double)gc[g].m * (double)gc[g].k * (double)gc[g].n /
                   median(tg + g * reps, reps) * 1e-9;
    const double step = part[P_TOTAL], g_sq = grate[0];

    /* ---- the table ---- */
    printf("\nper layer, one batch of %lld (epoch = %.1f steps of it; share = of the whole step)\n",
           (long long)batch, steps);
    printf("%-3s %-14s %-16s %10s %8s %8s %8s %7s %9s %9s %9s\n", "#", "layer", "output",
           "MFLOP fwd", "fwd ms", "bwd ms", "epoch s", "share", "fwd GF/s", "bwd GF/s", "@gemm ms");
    double sum_f = 0, sum_b = 0, conv_flop = 0, conv_s = 0;
    for (int i = 0; i < nl; i++) {
        cg_layer *l = &m->layers[i];
        char ls[64], os[64];
        cg_layer_spec(l, ls, sizeof ls);
        cg_item_shape_str(l->out_shape, l->out_ndim, os, sizeof os);
        const double f = layer_flops(l, batch), fb = f * (i > 0 ? 2.0 : 1.0);
        const double ep = (fwd[i] + bwd[i]) * steps;
        printf("%-3d %-14s %-16s %10.1f %8.3f %8.3f %8.3f %6.1f%%", i, ls, os, f * 1e-6,
               fwd[i] * 1e3, bwd[i] * 1e3, ep, 100.0 * (fwd[i] + bwd[i]) / step);
        if (f > 0) {
            printf(" %9.1f %9.1f %9.3f\n", f / fwd[i] * 1e-9, bwd[i] > 0 ? fb / bwd[i] * 1e-9 : 0.0,
                   (f + fb) / (g_sq * 1e9) * 1e3);
            conv_flop += f + fb, conv_s += fwd[i] + bwd[i];
        } else {
            printf(" %9s %9s %9s\n", "-", "-", "-");
        }
        sum_f += fwd[i], sum_b += bwd[i];
    }
    const double sum = sum_f + sum_b;
    printf("%-3s %-31s %10s %8.3f %8.3f %8.3f %6.1f%%\n", "", "sum of the layers", "", sum_f * 1e3,
           sum_b * 1e3, sum * steps, 100.0 * sum / step);
    char rest[64];
    snprintf(rest, sizeof rest, "rest of the step (%.3f ms)", (step - sum) * 1e3);
    printf("%-3s %-31s %10s %8s %8s %8.3f %6.1f%%\n", "", rest, "", "", "", (step - sum) * steps,
           100.0 * (step - sum) / step);
    printf(
        "(epoch s: (fwd + bwd) x %.1f steps; bwd GF/s counts data + weight gradients, the first\n"
        " layer's weight only; @gemm ms: the layer's fwd + bwd FLOPs at the 1024^3 GEMM rate\n"
        " below. Rest: loss, Adam, scope end, the graph walk, and what the layers do differently\n"
        " inside the whole graph.)\n",
        steps);

    printf(
        "\nwhole training step (forward, cross-entropy, backward, Adam, scope end), median ms:\n");
    for (int p = 0; p < NPARTS; p++)
        printf("  %-14s %8.3f ms  %5.1f%%\n", PART[p], part[p] * 1e3, 100.0 * part[p] / step);
    printf(
        "epoch estimate (%.1f steps): whole step %.3f s, sum of the layers %.3f s (%.1f%% of it)\n",
        steps, step * steps, sum * steps, 100.0 * sum / step);
    printf("  the layers' forward %.3f s + backward %.3f s; not counted: batch making, scoring the "
           "test set\n",
           sum_f * steps, sum_b * steps);

    printf("\nGEMM (cg_gemm, C = A @ B, median of %d, %d thread(s), kernel %s):\n", reps,
           cg_get_num_threads(), cg_gemm_kernel_name());
    static const char *const GNAME[NG_MAX] = {"", " (conv1 im2col forward)",
                                              " (conv2 im2col forward)"};
    for (int g = 0; g < ng; g++) {
        char shp[96];
        snprintf(shp, sizeof shp, "%lld x %lld x %lld%s", (long long)gc[g].m, (long long)gc[g].k,
                 (long long)gc[g].n, GNAME[g]);
        printf("  %-38s %8.1f GFLOP/s\n", shp, grate[g]);
    }
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if (__builtin_cpu_supports("avx512f") && strcmp(cg_gemm_kernel_name(), "avx2-fma") == 0)
        printf(
            "  (this CPU has AVX-512, which conv's direct kernels use: 16 lanes where cg_gemm's\n"
            "   avx2-fma kernel uses 8, so a layer can beat the GEMM rate; the FLOP counts also\n"
            "   include the taps in the padding, which a direct kernel skips)\n");
#endif
    printf("distance to the limit: the convolutions' %.1f MFLOP a step (fwd + bwd) run at %.1f "
           "GFLOP/s\n"
           "  (%.3f ms a step, %.3f s an epoch); at the 1024^3 GEMM rate they would take %.3f ms,\n"
           "  %.3f s an epoch; the whole step runs at %.1f GFLOP/s of conv work, %.1fx the time of "
           "its\n"
           "  conv FLOPs at the 1024^3 GEMM rate.\n",
           conv_flop * 1e-6, conv_s > 0 ? conv_flop / conv_s * 1e-9 : 0.0, conv_s * 1e3,
           conv_s * steps, conv_flop / (g_sq * 1e9) * 1e3, conv_flop / (g_sq * 1e9) * steps,
           conv_flop / step * 1e-9, step / (conv_flop / (g_sq * 1e9)));

    free(pt), free(fwd), free(bwd), free(tf), free(tb), free(tg);
    for (int g = 0; g < ng; g++) gemm_free(&gc[g]);
    for (int i = 0; i < nl; i++) cg_tensor_release(R[i]);
    free(R);
    cg_optimizer_free(opt);
    for (int i = 1; i <= nl; i++) cg_tensor_release(in[i]);
    free(in);
    cg_tensor_release(xb), cg_tensor_release(yb);
    cg_model_free(m);
    return 0;
}
