/*
 * batch.c - a batch of a dataset's images: the article's train_x[idx].
 *
 * A training step's batch is rows picked at random from the whole training
 * set, so making it is a random read of the data: 256 rows of 784 floats
 * (3 KB each) out of MNIST_SAMPLE's 39 MB. The dataset also keeps the bytes
 * its floats were made from (ds->pixels; torchvision's MNIST likewise keeps
 * a uint8 tensor and divides per item), a quarter of the memory: 9.7 MB,
 * which stays in this machine's 32 MB L3 where the 39 MB of floats do not.
 * Dividing by 255 per batch gives x's bits (the same correctly rounded
 * division), so a batch is the same tensor whichever way it is made. On
 * the 2-core VM measured here (bench/bench_step.c), a batch of 256 inside
 * a training step takes ~35 us this way and ~60 us gathering the floats:
 * still 13% of simple_net's step and half of the linear model's.
 */
#include "data/data.h"

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
    if (!ds || !ds->x) {
        cg_fail(CG_ERR_STATE, "dataset_batch: the dataset is not loaded");
        return NULL;
    }
    /* Without bytes, or when x takes part in a graph, x's own rows. */
    if (!ds->pixels || ds->x->requires_grad) return cg_tensor_index_select(ds->x, idx, n);
    if (n < 0 || (n > 0 && !idx)) {
        cg_fail(CG_ERR_ARG, "dataset_batch: need n >= 0 indices, got %lld%s", (long long)n,
                idx ? "" : " and no index array");
        return NULL;
    }
    if (cg_check_rows("dataset_batch", ds->x, idx, n) != CG_OK) return NULL;
    const int64_t len = ds->x->shape[1];
    cg_tensor *out = cg_tensor_alloc("dataset_batch", (int64_t[]){n, len}, 2);
    if (!out) return NULL;
    batch_job job = {out->data, ds->pixels, idx, len};
    /* Each row is the same division on any thread, so the split is free. */
    cg_guarded_for(n * len >= BATCH_PARALLEL_MIN ? cg_get_num_threads() : 1, n, 4, batch_part, &job);
    return out;
}
