/*
 * bench_step.c - where a training step's time goes: the CLI's training
 * loop on MNIST_SAMPLE (batches of 256, shuffled), each part timed on the
 * calling thread with clock_gettime, since every op returns only when its
 * work (on all threads) is done. Parts: the batch (cg_dataset_batch and
 * the targets' index_select), the forward pass, the loss, backward, SGD.
 * It also runs the first layer's two products on a real batch by
 * themselves, dense and with the batch's all-zero tiles skipped (see
 * src/kernels/gemm.c), so the forward and backward can be set against
 * what their matmuls need.
 *
 * Usage: bench_step [--data DIR] [--model linear|mlp] [--epochs N]
 *   DIR: the mnist_sample folder or the one holding it (default
 *   $CGRAD_DATA). Threads: OMP_NUM_THREADS. Validation is not run, so
 *   the steps' sum is less than an epoch of `cgrad train`.
 */
#include "cgrad.h"
#include "cgrad_internal.h" /* cg_gemm_sparse_enable */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum { BATCH = 256, PARTS = 5 };
static const char *const PART_NAMES[PARTS] = {"batch", "forward", "loss", "backward", "sgd"};

/* Microseconds per call of the step's product of shape (m, n, k), A^T if
 * trans_a, with A from a real batch and B random: the best of 3 rounds of
 * 200 (on a shared machine the best round is the one least disturbed). */
static double gemm_us(bool trans_a, int64_t m, int64_t n, int64_t k, const float *a) {
    float *b = malloc((size_t)(k * n) * sizeof(float)),
          *c = malloc((size_t)(m * n) * sizeof(float));
    double best = -1;
    if (b && c) {
        for (int64_t i = 0; i < k * n; i++) b[i] = (float)(i % 5) * 0.1f - 0.2f;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            for (int i = 0; i < 200; i++)
                cg_gemm(trans_a, false, m, n, k, 1.0f, a, trans_a ? m : k, b, n, 0.0f, c, n);
            double us = (now() - t0) / 200 * 1e6;
            if (best < 0 || us < best) best = us;
        }
    }
    free(b), free(c);
    return best;
}

int main(int argc, char **argv) {
    const char *data = getenv("CGRAD_DATA");
    bool mlp = true;
    int epochs = 40;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) data = argv[++i];
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            mlp = strcmp(argv[++i], "linear") != 0;
        else if (strcmp(argv[i], "--epochs") == 0 && i + 1 < argc) epochs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_step [--data DIR] [--model linear|mlp] [--epochs N]\n");
            return 2;
        }
    }
    if (!data || !*data) {
        fprintf(
            stderr,
            "bench_step: give --data DIR or set CGRAD_DATA (the folder holding mnist_sample/)\n");
        return 2;
    }
    if (epochs < 1) epochs = 1;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/mnist_sample/train", data);
    if (!is_dir(dir)) snprintf(dir, sizeof dir, "%s/train", data);
    cg_dataset train;
    if (cg_dataset_load_folder(&train, dir) != CG_OK) {
        fprintf(stderr, "bench_step: %s\n", cg_last_error());
        return 1;
    }
    const int64_t n = train.x->shape[0], pixels = train.x->shape[1];
    /* The article's targets: 1 for a 3 (class 0), 0 for a 7. */
    cg_tensor *targets = cg_tensor_retain(cg_tensor_zeros((int64_t[]){n, 1}, 2));
    for (int64_t i = 0; targets && i < n; i++)
        targets->data[i] = train.y->data[i] == 0.0f ? 1.0f : 0.0f;
    cg_rng rng;
    cg_rng_seed(&rng, 42);
    cg_model *m = cg_model_new(mlp ? CG_MODEL_MLP : CG_MODEL_LINEAR, pixels, 30, 1,
                               mlp ? CG_INIT_PYTORCH : CG_INIT_NORMAL, 1.0f, &rng);
    cg_dataloader dl;
    if (!targets || !m || cg_dataloader_init(&dl, n, BATCH, true, false, 42) != CG_OK) {
        fprintf(stderr, "bench_step: %s\n", cg_last_error());
        return 1;
    }
    const float lr = mlp ? 0.1f : 1.0f;
    double spent[PARTS] = {0};
    int64_t steps = 0;
    for (int e = 0; e < epochs; e++) {
        const int64_t *idx;
        int64_t count;
        cg_dataloader_reset(&dl);
        while (cg_dataloader_next(&dl, &idx, &count)) {
            double t[PARTS + 1];
            t[0] = now();
            cg_scope_begin();
            cg_tensor *xb = cg_dataset_batch(&train, idx, count);
            cg_tensor *yb = cg_tensor_index_select(targets, idx, count);
            t[1] = now();
            cg_tensor *preds = cg_model_forward(m, xb);
            t[2] = now();
            cg_tensor *loss = cg_mnist_loss(preds, yb);
            t[3] = now();
            cg_status st = loss ? cg_backward(loss) : cg_last_status();
            t[4] = now();
            if (st == CG_OK) cg_sgd_step(m->params, m->n_params, lr);
            cg_scope_end();
            t[5] = now();
            if (st != CG_OK) {
                fprintf(stderr, "bench_step: %s\n", cg_last_error());
                return 1;
            }
            for (int p = 0; p < PARTS; p++) spent[p] += t[p + 1] - t[p];
            steps++;
        }
    }
    double total = 0;
    for (int p = 0; p < PARTS; p++) total += spent[p];
    printf("%s, %d threads: %lld steps of %d, %.1f us per step\n", mlp ? "simple_net" : "linear",
           cg_get_num_threads(), (long long)steps, BATCH, total / (double)steps * 1e6);
    for (int p = 0; p < PARTS; p++)
        printf("  %-9s %7.1f us  %4.1f%%\n", PART_NAMES[p], spent[p] / (double)steps * 1e6,
               100.0 * spent[p] / total);
    if (mlp) {
        /* The first layer's two products on one real batch, dense and with
         * the batch's all-zero tiles skipped (the same bits either way). */
        const int64_t *idx;
        int64_t count;
        cg_dataloader_reset(&dl);
        cg_dataloader_next(&dl, &idx, &count);
        cg_scope_begin();
        cg_tensor *xb = cg_dataset_batch(&train, idx, count);
        if (xb) { /* how many steps a 6-row tile of A skips, in either product */
            int64_t zero_fwd = 0, zero_bwd = 0, tiles_fwd = count / 6, tiles_bwd = pixels / 6;
            for (int64_t t = 0; t < tiles_fwd; t++) /* A: 6 batch rows, steps over pixels */
                for (int64_t p = 0; p < pixels; p++) {
                    bool all = true;
                    for (int r = 0; r < 6; r++)
                        all = all && xb->data[(6 * t + r) * pixels + p] == 0.0f;
                    zero_fwd += all;
                }
            for (int64_t t = 0; t < tiles_bwd; t++) /* A^T: 6 pixels, steps over batch rows */
                for (int64_t p = 0; p < count; p++) {
                    bool all = true;
                    for (int r = 0; r < 6; r++)
                        all = all && xb->data[p * pixels + 6 * t + r] == 0.0f;
                    zero_bwd += all;
                }
            printf("  all-zero steps of a 6-row tile on this batch: forward %.0f%%, backward (A^T) "
                   "%.0f%%\n",
                   100.0 * (double)zero_fwd / (double)(tiles_fwd * pixels),
                   100.0 * (double)zero_bwd / (double)(tiles_bwd * count));
        }
        for (int sparse = 0; xb && sparse < 2; sparse++) {
            cg_gemm_sparse_enable(sparse);
            printf("  the step's matmuls alone, %s: %lldx%lldx30 %.1f us, its backward "
                   "%lldx%lldx30 (A^T) %.1f us\n",
                   sparse ? "zero tiles skipped" : "dense", (long long)count, (long long)pixels,
                   gemm_us(false, count, 30, pixels, xb->data), (long long)pixels, (long long)count,
                   gemm_us(true, pixels, 30, count, xb->data));
        }
        cg_scope_end();
    }
    cg_dataloader_free(&dl);
    cg_model_free(m);
    cg_tensor_release(targets);
    cg_dataset_free(&train);
    return 0;
}
