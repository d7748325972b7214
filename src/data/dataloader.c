/*
 * dataloader.c - batches of item indices, as fastai's DataLoader gives.
 *
 * An epoch walks `order` in steps of batch_size; the last, shorter batch is
 * kept unless drop_last (12396 items at 256 -> 48 full batches and one of
 * 108). With shuffle on, each epoch starts from 0..n-1 and applies a fresh
 * Fisher-Yates shuffle (Knuth's Algorithm P: for i = n-1 down to 1 swap
 * order[i] with order[j], j uniform in [0, i]), which makes every one of
 * the n! orders equally likely; the loader's own PCG32 stream makes epoch
 * k's order a function of the seed alone.
 *
 * pos < 0 means "no epoch running": cg_dataloader_next starts one, so a
 * plain `while (next(...))` per epoch works with or without a reset first.
 */
#include "cgrad_internal.h"

cg_status cg_dataloader_init(cg_dataloader *dl, int64_t n, int64_t batch_size, bool shuffle,
                             bool drop_last, uint64_t seed) {
    if (!dl) return cg_fail(CG_ERR_ARG, "dataloader: no loader given");
    memset(dl, 0, sizeof *dl);
    /* cg_rng_below draws below a 32-bit bound. */
    if (n < 0 || n > (int64_t)UINT32_MAX)
        return cg_fail(CG_ERR_ARG, "dataloader: %lld items (must be 0..%lld)", (long long)n,
                       (long long)UINT32_MAX);
    if (batch_size < 1)
        return cg_fail(CG_ERR_ARG, "dataloader: batch size %lld (must be at least 1)",
                       (long long)batch_size);
    dl->order = malloc((size_t)(n > 0 ? n : 1) * sizeof *dl->order);
    if (!dl->order)
        return cg_fail(CG_ERR_NOMEM, "dataloader: cannot allocate %lld indices", (long long)n);
    dl->n = n;
    dl->batch_size = batch_size;
    dl->shuffle = shuffle;
    dl->drop_last = drop_last;
    dl->pos = -1;
    cg_rng_seed(&dl->rng, seed);
    for (int64_t i = 0; i < n; i++) dl->order[i] = i;
    return CG_OK;
}

void cg_dataloader_free(cg_dataloader *dl) {
    if (!dl) return;
    free(dl->order);
    memset(dl, 0, sizeof *dl);
}

int64_t cg_dataloader_num_batches(const cg_dataloader *dl) {
    if (!dl || dl->batch_size < 1) return 0;
    return dl->drop_last ? dl->n / dl->batch_size : (dl->n + dl->batch_size - 1) / dl->batch_size;
}

void cg_dataloader_reset(cg_dataloader *dl) {
    if (!dl || !dl->order) return;
    dl->pos = 0;
    if (!dl->shuffle) return;
    for (int64_t i = 0; i < dl->n; i++) dl->order[i] = i;
    for (int64_t i = dl->n - 1; i > 0; i--) {
        int64_t j = cg_rng_below(&dl->rng, (uint32_t)(i + 1));
        int64_t t = dl->order[i];
        dl->order[i] = dl->order[j];
        dl->order[j] = t;
    }
}

bool cg_dataloader_next(cg_dataloader *dl, const int64_t **idx, int64_t *count) {
    if (!dl || !dl->order) return false;
    if (dl->pos < 0) cg_dataloader_reset(dl);
    int64_t left = dl->n - dl->pos;
    if (left <= 0 || (dl->drop_last && left < dl->batch_size)) {
        dl->pos = -1; /* the next call starts a new epoch */
        return false;
    }
    int64_t k = left < dl->batch_size ? left : dl->batch_size;
    if (idx) *idx = dl->order + dl->pos;
    if (count) *count = k;
    dl->pos += k;
    return true;
}
