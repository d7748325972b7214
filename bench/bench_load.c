/*
 * bench_load.c - how long loading MNIST takes: mnist_sample's train and
 * valid folders (14,434 PNGs) with 1 and 2 threads, and full MNIST's
 * gzipped IDX training set. Median of several runs after one warm-up (so
 * the files are in the page cache, as in a notebook's second run).
 *
 * Usage: CGRAD_DATA=/path/to/data bench_load [runs]
 * Compare with bench/load_pil.py, the article's PIL + numpy way.
 */
#include "cgrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One load of train + valid; the image count, or -1 on error. */
static int64_t load_sample(const char *data, double *seconds) {
    char dir[4096];
    cg_dataset train, valid;
    double t0 = now();
    snprintf(dir, sizeof dir, "%s/mnist_sample/train", data);
    if (cg_dataset_load_folder(&train, dir) != CG_OK) return -1;
    snprintf(dir, sizeof dir, "%s/mnist_sample/valid", data);
    if (cg_dataset_load_folder(&valid, dir) != CG_OK) {
        cg_dataset_free(&train);
        return -1;
    }
    *seconds = now() - t0;
    int64_t n = train.x->shape[0] + valid.x->shape[0];
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return n;
}

static int64_t load_idx(const char *data, double *seconds) {
    char img[4096], lab[4096];
    snprintf(img, sizeof img, "%s/mnist/train-images-idx3-ubyte.gz", data);
    snprintf(lab, sizeof lab, "%s/mnist/train-labels-idx1-ubyte.gz", data);
    cg_dataset ds;
    double t0 = now();
    if (cg_dataset_load_idx(&ds, img, lab) != CG_OK) return -1;
    *seconds = now() - t0;
    int64_t n = ds.x->shape[0];
    cg_dataset_free(&ds);
    return n;
}

/* Median seconds of `runs` timed calls after a warm-up; -1 on error. */
static double median_of(int64_t (*load)(const char *, double *), const char *data, int runs, int64_t *n) {
    double t[64], warm;
    if ((*n = load(data, &warm)) < 0) return -1;
    for (int r = 0; r < runs; r++)
        if (load(data, &t[r]) < 0) return -1;
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    return runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
}

int main(int argc, char **argv) {
    const char *data = getenv("CGRAD_DATA");
    if (!data || !*data) {
        fprintf(stderr, "bench_load: set CGRAD_DATA to the folder holding mnist_sample/ and mnist/\n");
        return 2;
    }
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 64) runs = 5;

    printf("loading mnist_sample train+valid (PNG folders), median of %d runs\n", runs);
    const int threads[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        cg_set_num_threads(threads[k]);
        int64_t n;
        double s = median_of(load_sample, data, runs, &n);
        if (s < 0) {
            fprintf(stderr, "bench_load: %s\n", cg_last_error());
            return 1;
        }
        printf("  %d thread%s: %lld images in %.3f s, %.0f images/s\n", threads[k], threads[k] > 1 ? "s" : " ",
               (long long)n, s, (double)n / s);
    }
    cg_set_num_threads(0);
    int64_t n;
    double s = median_of(load_idx, data, runs, &n);
    if (s < 0) {
        fprintf(stderr, "bench_load: %s\n", cg_last_error());
        return 1;
    }
    printf("loading full MNIST train (gzipped IDX): %lld images in %.3f s, %.0f images/s\n", (long long)n, s,
           (double)n / s);
    return 0;
}
