/*
 * bench_load.c - how long loading MNIST takes: mnist_sample's train and
 * valid folders (14,434 PNGs) with 1 and 2 threads, and full MNIST's
 * gzipped IDX training set. Median of several runs after one warm-up (so
 * the files are in the page cache, as in a notebook's second run).
 *
 * Usage: bench_load [--data DIR] [--runs N] [--json]
 *   DIR: the mnist_sample folder or the one holding it (default
 *   $CGRAD_DATA). --json: one load of train+valid, as a CLI command does,
 *   with OMP_NUM_THREADS threads, printed as {"phase":"load",...} (the
 *   contract with bench/run_bench.sh).
 * Compare with bench/load_pil.py, the article's PIL + numpy way.
 */
#include "cgrad.h"

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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One load of train + valid; the image count, or -1 on error. */
/* `data` is the mnist_sample folder. */
static int64_t load_sample(const char *data, double *seconds) {
    char dir[4096];
    cg_dataset train, valid;
    double t0 = now();
    snprintf(dir, sizeof dir, "%s/train", data);
    if (cg_dataset_load_folder(&train, dir) != CG_OK) return -1;
    snprintf(dir, sizeof dir, "%s/valid", data);
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

/* `data` is the mnist (IDX) folder. */
static int64_t load_idx(const char *data, double *seconds) {
    char img[4096], lab[4096];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", data);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", data);
    cg_dataset ds;
    double t0 = now();
    if (cg_dataset_load_idx(&ds, img, lab) != CG_OK) return -1;
    *seconds = now() - t0;
    int64_t n = ds.x->shape[0];
    cg_dataset_free(&ds);
    return n;
}

/* Median seconds of `runs` timed calls after a warm-up; -1 on error. */
static double median_of(int64_t (*load)(const char *, double *), const char *data, int runs,
                        int64_t *n) {
    double t[64], warm;
    if ((*n = load(data, &warm)) < 0) return -1;
    for (int r = 0; r < runs; r++)
        if (load(data, &t[r]) < 0) return -1;
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    return runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
}

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv) {
    const char *data = getenv("CGRAD_DATA");
    int runs = 5;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) data = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) runs = atoi(argv[++i]);
        else if (argv[i][0] != '-') runs = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: bench_load [--data DIR] [--runs N] [--json]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 64) runs = 5;
    if (!data || !*data) {
        fprintf(
            stderr,
            "bench_load: give --data DIR or set CGRAD_DATA (the folder holding mnist_sample/)\n");
        return 2;
    }
    /* DIR may be mnist_sample itself or the data folder above it. */
    char sample[4096], idx[4096];
    snprintf(sample, sizeof sample, "%s/mnist_sample", data);
    snprintf(idx, sizeof idx, "%s/mnist", data);
    if (!is_dir(sample)) {
        snprintf(sample, sizeof sample, "%s", data);
        snprintf(idx, sizeof idx, "%s/../mnist", data);
    }

    if (json) {
        double s;
        int64_t n = load_sample(sample, &s);
        if (n < 0) {
            fprintf(stderr, "bench_load: %s\n", cg_last_error());
            return 1;
        }
        printf("{\"phase\":\"load\",\"seconds\":%.6f,\"images\":%lld,\"threads\":%d}\n", s,
               (long long)n, cg_get_num_threads());
        return 0;
    }

    printf("loading mnist_sample train+valid (PNG folders), median of %d runs\n", runs);
    const int threads[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        cg_set_num_threads(threads[k]);
        int64_t n;
        double s = median_of(load_sample, sample, runs, &n);
        if (s < 0) {
            fprintf(stderr, "bench_load: %s\n", cg_last_error());
            return 1;
        }
        printf("  %d threads: %lld images in %.3f s, %.0f images/s\n", threads[k], (long long)n, s,
               (double)n / s);
    }
    cg_set_num_threads(0);
    if (!is_dir(idx)) return 0;
    int64_t n;
    double s = median_of(load_idx, idx, runs, &n);
    if (s < 0) {
        fprintf(stderr, "bench_load: %s\n", cg_last_error());
        return 1;
    }
    printf("loading full MNIST train (gzipped IDX): %lld images in %.3f s, %.0f images/s\n",
           (long long)n, s, (double)n / s);
    return 0;
}
