/* test_rng.c - PCG32: the reference sequence, same seed same numbers,
 * ranges, and the moments of a million normal draws. */
#include "testutil.h"

#include <math.h>

/* pcg32_srandom(42, 54) is the reference demo's seeding (pcg-c-basic's
 * pcg32-demo prints these first six outputs), which cg_rng_seed follows. */
static void test_rng_reference_sequence(void **state) {
    (void)state;
    const uint32_t expect[6] = {0xa15c02b7u, 0x7b47f409u, 0xba1d3330u,
                                0x83d2f293u, 0xbfa4784bu, 0xcbed606eu};
    cg_rng r;
    cg_rng_seed(&r, 42);
    for (int i = 0; i < 6; i++) assert_int_equal(cg_rng_u32(&r), expect[i]);
}

static void test_rng_same_seed_same_numbers(void **state) {
    (void)state;
    cg_rng a, b, c;
    cg_rng_seed(&a, 7);
    cg_rng_seed(&b, 7);
    cg_rng_seed(&c, 8);
    int same_as_other_seed = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = cg_rng_u32(&a);
        assert_int_equal(x, cg_rng_u32(&b));
        same_as_other_seed += x == cg_rng_u32(&c);
    }
    assert_true(same_as_other_seed < 5);
    /* tensors from the global generator repeat after cg_manual_seed */
    int64_t shape[2] = {3, 5};
    cg_manual_seed(123);
    cg_tensor *t1 = cg_tensor_randn(shape, 2, NULL);
    cg_tensor *u1 = cg_tensor_rand(shape, 2, NULL);
    cg_manual_seed(123);
    cg_tensor *t2 = cg_tensor_randn(shape, 2, NULL);
    cg_tensor *u2 = cg_tensor_rand(shape, 2, NULL);
    assert_memory_equal(t1->data, t2->data, 15 * sizeof(float));
    assert_memory_equal(u1->data, u2->data, 15 * sizeof(float));
    cg_tensor_release(t1);
    cg_tensor_release(t2);
    cg_tensor_release(u1);
    cg_tensor_release(u2);
}

static void test_rng_ranges(void **state) {
    (void)state;
    cg_rng r;
    cg_rng_seed(&r, 1);
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        float u = cg_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        uint32_t k = cg_rng_below(&r, 10);
        assert_true(k < 10);
        counts[k]++;
    }
    /* each of 10 values ~10000 times; sd ~95, so 500 is > 5 sd */
    for (int k = 0; k < 10; k++) assert_in_range(counts[k], 9500, 10500);
    assert_int_equal(cg_rng_below(&r, 1), 0);
}

/* A million draws: the sample mean has sd 0.001 and the sample sd about
 * 0.0007, so 0.005 is far outside chance; the fraction beyond 1.96 sd
 * checks the shape (5% for a normal). */
static void test_randn_moments(void **state) {
    (void)state;
    int64_t n = 1000000;
    cg_rng r;
    cg_rng_seed(&r, 2024);
    cg_tensor *t = cg_tensor_randn(&n, 1, &r);
    double s = 0, s2 = 0;
    int64_t tails = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = t->data[i];
        assert_true(isfinite(v));
        s += v;
        s2 += v * v;
        tails += fabs(v) > 1.959964;
    }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    cg_assert_close(mean, 0, 0.005, 0, "randn mean");
    cg_assert_close(sd, 1, 0.005, 0, "randn std");
    cg_assert_close((double)tails / n, 0.05, 0.002, 0, "randn two-sided 5% tail");
    cg_tensor_release(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference_sequence),
        cmocka_unit_test(test_rng_same_seed_same_numbers),
        cmocka_unit_test(test_rng_ranges),
        cmocka_unit_test(test_randn_moments),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
