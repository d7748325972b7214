/* test_dataloader.c - batch sizes and counts as fastai's DataLoader gives
 * them, shuffling (a fresh uniform permutation per epoch) and bad
 * arguments. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* Runs one epoch; checks every batch but the last is full and returns the
 * number of batches, the items seen (in order) in seen[] and the last
 * batch's size. */
static int64_t run_epoch(cg_dataloader *dl, int64_t *seen, int64_t *last) {
    const int64_t *idx;
    int64_t count, batches = 0, total = 0;
    *last = 0;
    while (cg_dataloader_next(dl, &idx, &count)) {
        assert_true(count >= 1 && count <= dl->batch_size);
        if (*last != 0) assert_int_equal(*last, dl->batch_size); /* only the last may be short */
        memcpy(seen + total, idx, (size_t)count * sizeof *idx);
        total += count;
        *last = count;
        batches++;
    }
    return batches;
}

/* True if seen[0..n) holds each of 0..n-1 exactly once. */
static bool is_permutation(const int64_t *seen, int64_t n) {
    char *hit = calloc((size_t)n + 1, 1);
    bool ok = true;
    for (int64_t i = 0; i < n && ok; i++) {
        ok = seen[i] >= 0 && seen[i] < n && !hit[seen[i]];
        if (ok) hit[seen[i]] = 1;
    }
    free(hit);
    return ok;
}

static void test_dataloader_mnist_sample_batches(void **state) {
    (void)state;
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, 12396, 256, false, false, 42), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 49);
    int64_t *seen = malloc(12396 * sizeof *seen), last;
    assert_int_equal(run_epoch(&dl, seen, &last), 49);
    assert_int_equal(last, 108);
    for (int64_t i = 0; i < 12396; i++) assert_int_equal(seen[i], i); /* unshuffled: in order */
    cg_dataloader_free(&dl);

    assert_int_equal(cg_dataloader_init(&dl, 12396, 256, true, true, 42), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 48);
    assert_int_equal(run_epoch(&dl, seen, &last), 48);
    assert_int_equal(last, 256);
    cg_dataloader_free(&dl);
    assert_null(dl.order);
    free(seen);
}

/* The book's example: range(15), bs 5, shuffled -> 3 batches of 5 that
 * cover 0..14 once, in a new order each epoch. */
static void test_dataloader_range15_shuffled(void **state) {
    (void)state;
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, 15, 5, true, false, 1), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 3);
    int64_t a[15], b[15], last;
    assert_int_equal(run_epoch(&dl, a, &last), 3);
    assert_int_equal(last, 5);
    assert_true(is_permutation(a, 15));
    assert_int_equal(run_epoch(&dl, b, &last), 3); /* the next epoch starts by itself */
    assert_true(is_permutation(b, 15));
    bool identity = true, same = true;
    for (int i = 0; i < 15; i++) {
        identity = identity && a[i] == i;
        same = same && a[i] == b[i];
    }
    assert_false(identity);
    assert_false(same);
    cg_dataloader_free(&dl);
}

/* Same seed, same epochs; each epoch's order is a Fisher-Yates shuffle of
 * 0..n-1 drawn with cg_rng_below from the loader's own generator. */
static void test_dataloader_seeded_fisher_yates(void **state) {
    (void)state;
    cg_dataloader d1, d2;
    assert_int_equal(cg_dataloader_init(&d1, 100, 7, true, false, 99), CG_OK);
    assert_int_equal(cg_dataloader_init(&d2, 100, 7, true, false, 99), CG_OK);
    cg_rng rng;
    cg_rng_seed(&rng, 99);
    for (int epoch = 0; epoch < 3; epoch++) {
        int64_t x[100], y[100], expect[100], last;
        for (int i = 0; i < 100; i++) expect[i] = i;
        for (int i = 99; i > 0; i--) {
            int j = (int)cg_rng_below(&rng, (uint32_t)i + 1);
            int64_t t = expect[i];
            expect[i] = expect[j];
            expect[j] = t;
        }
        assert_int_equal(run_epoch(&d1, x, &last), 15);
        assert_int_equal(last, 2);
        cg_dataloader_reset(&d2); /* an explicit reset gives the same epochs */
        run_epoch(&d2, y, &last);
        assert_memory_equal(x, expect, sizeof x);
        assert_memory_equal(y, expect, sizeof y);
    }
    cg_dataloader_free(&d1);
    cg_dataloader_free(&d2);
}

/* Each of the 6 orders of 3 items comes up about equally often (a biased
 * shuffle, e.g. swapping with any j in 0..n-1, fails this). */
static void test_dataloader_shuffle_uniform(void **state) {
    (void)state;
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, 3, 3, true, false, 2024), CG_OK);
    int counts[27] = {0};
    const int epochs = 12000;
    for (int e = 0; e < epochs; e++) {
        const int64_t *idx;
        int64_t count;
        assert_true(cg_dataloader_next(&dl, &idx, &count));
        assert_int_equal(count, 3);
        counts[idx[0] * 9 + idx[1] * 3 + idx[2]]++;
        assert_false(cg_dataloader_next(&dl, &idx, &count));
    }
    int orders = 0;
    for (int k = 0; k < 27; k++) {
        if (!counts[k]) continue;
        orders++;
        /* expected 2000, sd ~41: +-250 is 6 sd */
        if (counts[k] < 1750 || counts[k] > 2250)
            fail_msg("order %d came up %d times of %d", k, counts[k], epochs);
    }
    assert_int_equal(orders, 6);
    cg_dataloader_free(&dl);
}

static void test_dataloader_reset_mid_epoch(void **state) {
    (void)state;
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, 10, 4, false, false, 0), CG_OK);
    const int64_t *idx;
    int64_t count, seen[10], last;
    assert_true(cg_dataloader_next(&dl, &idx, &count));
    assert_int_equal(idx[0], 0);
    cg_dataloader_reset(&dl);
    assert_int_equal(run_epoch(&dl, seen, &last), 3);
    assert_int_equal(seen[0], 0);
    assert_int_equal(last, 2);
    cg_dataloader_free(&dl);
}

static void test_dataloader_edge_cases(void **state) {
    (void)state;
    cg_dataloader dl;
    const int64_t *idx;
    int64_t count, seen[8], last;
    assert_int_equal(cg_dataloader_init(&dl, 0, 4, true, false, 0), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 0);
    assert_false(cg_dataloader_next(&dl, &idx, &count));
    cg_dataloader_free(&dl);
    /* fewer items than a batch: one short batch, or none with drop_last */
    assert_int_equal(cg_dataloader_init(&dl, 3, 8, false, true, 0), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 0);
    assert_int_equal(run_epoch(&dl, seen, &last), 0);
    cg_dataloader_free(&dl);
    assert_int_equal(cg_dataloader_init(&dl, 3, 8, false, false, 0), CG_OK);
    assert_int_equal(cg_dataloader_num_batches(&dl), 1);
    assert_int_equal(run_epoch(&dl, seen, &last), 1);
    assert_int_equal(last, 3);
    cg_dataloader_free(&dl);
    /* an exact multiple has no short batch */
    assert_int_equal(cg_dataloader_init(&dl, 8, 4, true, false, 0), CG_OK);
    assert_int_equal(run_epoch(&dl, seen, &last), 2);
    assert_int_equal(last, 4);
    cg_dataloader_free(&dl);
}

static void test_dataloader_bad_args(void **state) {
    (void)state;
    cg_dataloader dl;
    assert_int_equal(cg_dataloader_init(&dl, 10, 0, false, false, 0), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "batch size 0"));
    assert_null(dl.order);
    assert_int_equal(cg_dataloader_init(&dl, -1, 4, false, false, 0), CG_ERR_ARG);
    assert_non_null(strstr(cg_last_error(), "-1 items"));
    assert_int_equal(cg_dataloader_init(NULL, 4, 4, false, false, 0), CG_ERR_ARG);
    assert_false(cg_dataloader_next(&dl, NULL, NULL)); /* a failed init leaves an inert loader */
    assert_int_equal(cg_dataloader_num_batches(&dl), 0);
    cg_dataloader_free(&dl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataloader_mnist_sample_batches),
        cmocka_unit_test(test_dataloader_range15_shuffled),
        cmocka_unit_test(test_dataloader_seeded_fisher_yates),
        cmocka_unit_test(test_dataloader_shuffle_uniform),
        cmocka_unit_test(test_dataloader_reset_mid_epoch),
        cmocka_unit_test(test_dataloader_edge_cases),
        cmocka_unit_test(test_dataloader_bad_args),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
