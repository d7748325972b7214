/*
 * batch.c - a dataset's images in bulk: a batch (the article's
 * train_x[idx]) and a class's mean image (stacked_threes.mean(0)).
 *
 * A training step's batch is rows picked at random from the whole training
 * set, so making it is a random read of the data: 256 rows of 784 floats
 * (3 KB each) out of MNIST_SAMPLE's 39 MB. The dataset also keeps the bytes
 * its floats were made from (ds->pixels; torchvision's MNIST likewise keeps
 * a uint8 tensor and divides per item), a quarter of the memory: 9.7 MB,
 * which can stay in a server CPU's L3 where the 39 MB of floats do not.
 * Dividing by 255 per batch gives x's bits (the same correctly rounded
 * division), so a batch is the same tensor whichever way it is made, about
 * twice as fast as gathering the floats (bench/bench_step.c; the figures
 * are in bench/README.md, "Batches from bytes"). A dataset
 * loaded without floats (cg_data_keep_floats(false)) has only the bytes,
 * and everything here is made from them.
 */
#include "data/data.h"

#include <omp.h>

/* Bytes in a cache line: the unit of the prefetches below. */
#define LINE_BYTES 64
/* Pixels from which a batch takes both threads (a batch of 256 has 200 K). */
#define BATCH_PARALLEL_MIN (1 << 16)

typedef struct batch_job {
    float *dst;
    const uint8_t *pixels;
    const int64_t *idx;
    int64_t len;
} batch_job;

/*
 * Rows [lo, hi) of the batch. The hardware prefetcher starts over on every
 * randomly placed row, so row k + 2's lines are requested before row k is
 * converted: two rows of reads always in flight (as index_select does).
 */
static void batch_part(void *ctx, int64_t lo, int64_t hi) {
    const batch_job *j = ctx;
    for (int64_t k = lo; k < hi; k++) {
        if (k + 2 < hi) {
            const uint8_t *next = j->pixels + j->idx[k + 2] * j->len;
            for (int64_t i = 0; i < j->len; i += LINE_BYTES) __builtin_prefetch(next + i);
        }
        cg_u8_to_unit(j->dst + k * j->len, j->pixels + j->idx[k] * j->len, j->len);
    }
}

cg_tensor *cg_dataset_batch(const cg_dataset *ds, const int64_t *idx, int64_t n) {
    int64_t rows, len;
    if (cg_dataset_images("dataset_batch", ds, &rows, &len) != CG_OK) return NULL;
    /* Without bytes, or when x takes part in a graph, x's own rows. */
    if (ds->x && (!ds->pixels || ds->x->requires_grad))
        return cg_tensor_index_select(ds->x, idx, n);
    if (n < 0 || (n > 0 && !idx)) {
        cg_fail(CG_ERR_ARG, "dataset_batch: need n >= 0 indices, got %lld%s", (long long)n,
                idx ? "" : " and no index array");
        return NULL;
    }
    /* Checked here, not by cg_check_rows: without x there is no tensor of
     * rows to check against. */
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= rows) {
            cg_fail(CG_ERR_ARG,
                    "dataset_batch: index %lld (position %lld) is outside 0..%lld, the dataset's "
                    "%lld images",
                    (long long)idx[k], (long long)k, (long long)rows - 1, (long long)rows);
            return NULL;
        }
    cg_tensor *out = cg_tensor_alloc("dataset_batch", (int64_t[]){n, len}, 2);
    if (!out) return NULL;
    batch_job job = {out->data, ds->pixels, idx, len};
    /* Each row is the same division on any thread, so the split is free. */
    cg_guarded_for(n * len >= BATCH_PARALLEL_MIN ? cg_get_num_threads() : 1, n, 4, batch_part,
                   &job);
    return out;
}

/* ------------------------------------------------------------------ */
/* A class's mean image                                                */
/* ------------------------------------------------------------------ */

/* ds's images (as cg_dataset_images) when it has a label for each and c is
 * one of its classes. */
static cg_status check_class(const char *op, const cg_dataset *ds, int c, int64_t *rows,
                             int64_t *len) {
    if (cg_dataset_images(op, ds, rows, len) != CG_OK) return cg_last_status();
    if (!ds->y || ds->y->numel != *rows)
        return cg_fail(CG_ERR_STATE, "%s: the dataset has %lld images but %lld labels", op,
                       (long long)*rows, (long long)cg_dataset_size(ds));
    if (c < 0 || c >= ds->n_classes)
        return cg_fail(CG_ERR_ARG, "%s: class %d is not one of the dataset's %d", op, c,
                       ds->n_classes);
    return CG_OK;
}

cg_tensor *cg_dataset_class_rows(const cg_dataset *ds, int c, int64_t *count) {
    if (count) *count = 0;
    int64_t n_all, len;
    if (check_class("class_rows", ds, c, &n_all, &len) != CG_OK) return NULL;
    int64_t *idx = malloc(sizeof *idx * (size_t)(n_all ? n_all : 1));
    if (!idx) {
        cg_fail(CG_ERR_NOMEM, "class_rows: out of memory listing the images of class %s",
                ds->class_names[c]);
        return NULL;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < n_all; i++)
        if (ds->y->data[i] == (float)c) idx[n++] = i;
    const bool together = n > 0 && idx[n - 1] - idx[0] == n - 1;
    /* Without x, the floats are made from the bytes, as a batch's are. */
    cg_tensor *rows = !ds->x     ? cg_dataset_batch(ds, idx, n)
                      : together ? cg_tensor_rows(ds->x, idx[0], idx[0] + n)
                                 : cg_tensor_index_select(ds->x, idx, n);
    free(idx);
    if (count && rows) *count = n;
    return rows;
}

/*
 * The pixel-similarity baseline's "ideal" digit. From the bytes, each
 * pixel's sum over the class is an exact integer (below 2^32 for up to
 * 16 M images), so the mean has one rounding and no summing order to fix,
 * and it reads 9.7 MB of bytes instead of 39 MB of floats: half the
 * baseline's time. Each thread adds the class's rows of its share of the
 * dataset (whole rows: contiguous, so the widening adds vectorise) into
 * its own sums; integer sums add up the same in any order.
 */
cg_tensor *cg_dataset_mean_image(const cg_dataset *ds, int c) {
    int64_t n_all, len;
    if (check_class("mean_image", ds, c, &n_all, &len) != CG_OK) return NULL;
    const float *label = ds->y->data;
    int64_t n = 0;
    for (int64_t i = 0; i < n_all; i++) n += label[i] == (float)c;
    if (n == 0) {
        cg_fail(CG_ERR_ARG, "mean_image: class %s has no images", ds->class_names[c]);
        return NULL;
    }
    if (!ds->pixels || (ds->x && ds->x->requires_grad)) { /* the article's mean over x's rows */
        int dim0 = 0;
        return cg_tensor_mean_dims(cg_dataset_class_rows(ds, c, NULL), &dim0, 1, false);
    }
    const int nt = n_all * len >= 16 * CG_PARALLEL_MIN ? cg_get_num_threads() : 1;
    uint32_t *sums = calloc((size_t)(nt * len), sizeof *sums);
    cg_tensor *mean = sums ? cg_tensor_alloc("mean_image", &len, 1) : NULL;
    if (!mean) {
        if (!sums)
            cg_fail(CG_ERR_NOMEM, "mean_image: out of memory for class %s", ds->class_names[c]);
        free(sums);
        return NULL;
    }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        uint32_t *sum = sums + (int64_t)t * len;
        for (int64_t i = n_all * t / team; i < n_all * (t + 1) / team; i++) {
            if (label[i] != (float)c) continue;
            const uint8_t *row = ds->pixels + i * len;
            for (int64_t j = 0; j < len; j++) sum[j] += row[j];
        }
    }
    const double scale = 1.0 / (255.0 * (double)n);
    for (int64_t j = 0; j < len; j++) {
        uint32_t total = 0;
        for (int t = 0; t < nt; t++) total += sums[(int64_t)t * len + j];
        mean->data[j] = (float)((double)total * scale);
    }
    free(sums);
    return mean;
}
