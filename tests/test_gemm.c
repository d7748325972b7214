/*
 * test_gemm.c - cg_gemm against a plain double-precision triple loop, on
 * every kernel this machine runs: odd sizes hitting every tail, all four
 * transpose pairs, alpha/beta, row strides wider than the rows, pointers
 * off 16-byte alignment, 1 and 2 threads, and the training shapes. Built
 * with -DCGRAD_BLAS=openblas, the OpenBLAS path is one more kernel.
 */
#include "testutil.h"
#include "cgrad_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CGRAD_BLAS_OPENBLAS
#include <cblas.h>
#define HAVE_OPENBLAS true
#else
#define HAVE_OPENBLAS false
#endif

/* Sentinel in the padding past each row: gemm must not write there. */
#define PAD_VALUE 12345.0f

static const char *const kernels[] = {
    "generic", "avx2-fma",
#ifdef CGRAD_BLAS_OPENBLAS
    "openblas",
#endif
};
#define N_KERNELS (sizeof kernels / sizeof kernels[0])

/* One problem: sizes, flags, scalars and layout. */
typedef struct gcase {
    int64_t m, n, k;
    bool ta, tb;
    float alpha, beta;
    int64_t pad_a, pad_b, pad_c; /* extra floats per row */
    int off;                     /* start pointers this many floats in */
} gcase;

/* A matrix of rows x cols with row stride cols + pad, `off` floats into
 * its allocation; the padding holds PAD_VALUE. */
typedef struct mat {
    float *base, *p;
    int64_t rows, cols, ld;
} mat;

static mat mat_new(int64_t rows, int64_t cols, int64_t pad, int off, cg_rng *rng) {
    mat x = {.rows = rows, .cols = cols, .ld = cols + pad};
    size_t n = (size_t)(rows * x.ld + off + 1);
    x.base = malloc(n * sizeof(float));
    assert_non_null(x.base);
    x.p = x.base + off;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < x.ld; j++)
            x.p[i * x.ld + j] = j < cols ? 2.0f * cg_rng_uniform(rng) - 1.0f : PAD_VALUE;
    return x;
}

/* Runs one case on the current kernel and thread count and checks every
 * element against the double-precision reference, within the rounding
 * bound of a k-term float sum; also checks C's padding is untouched.
 * Returns C (caller frees base) for bitwise comparisons. */
static mat run_case(const gcase *g, uint64_t seed) {
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    /* Stored shapes: A m x k (k x m if ta), B k x n (n x k if tb). */
    mat a = g->ta ? mat_new(g->k, g->m, g->pad_a, g->off, &rng)
                  : mat_new(g->m, g->k, g->pad_a, g->off, &rng);
    mat b = g->tb ? mat_new(g->n, g->k, g->pad_b, g->off, &rng)
                  : mat_new(g->k, g->n, g->pad_b, g->off, &rng);
    mat c = mat_new(g->m, g->n, g->pad_c, g->off, &rng);
    float *c0 = malloc(sizeof(float) * (size_t)(g->m * c.ld + 1));
    assert_non_null(c0);
    memcpy(c0, c.p, sizeof(float) * (size_t)(g->m * c.ld));

    cg_clear_error();
    cg_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a.p, a.ld, b.p, b.ld, g->beta, c.p, c.ld);
    assert_int_equal(cg_last_status(), CG_OK);

    const double u = ldexp(1.0, -24);
    for (int64_t i = 0; i < g->m; i++) {
        for (int64_t j = 0; j < g->n; j++) {
            double s = 0.0, sabs = 0.0;
            for (int64_t p = 0; p < g->k; p++) {
                double x = g->ta ? a.p[p * a.ld + i] : a.p[i * a.ld + p];
                double y = g->tb ? b.p[j * b.ld + p] : b.p[p * b.ld + j];
                s += x * y;
                sabs += fabs(x * y);
            }
            double cij = c0[i * c.ld + j];
            double expect = g->alpha * s + (g->beta == 0.0f ? 0.0 : g->beta * cij);
            double scale = fabs(g->alpha) * sabs + fabs(g->beta * cij);
            double tol = 2.0 * (double)(g->k + 3) * u * scale + 1e-30;
            double got = c.p[i * c.ld + j];
            if (!(fabs(got - expect) <= tol))
                fail_msg("%s m=%lld n=%lld k=%lld ta=%d tb=%d alpha=%g beta=%g pads=%lld/%lld/%lld "
                         "off=%d threads=%d: C[%lld,%lld] = %.9g, expected %.9g (tol %.3g)",
                         cg_gemm_kernel_name(), (long long)g->m, (long long)g->n,
                         (long long)g->k, g->ta, g->tb, (double)g->alpha, (double)g->beta,
                         (long long)g->pad_a, (long long)g->pad_b, (long long)g->pad_c, g->off,
                         cg_get_num_threads(), (long long)i, (long long)j, got, expect, tol);
        }
        for (int64_t j = g->n; j < c.ld; j++) assert_true(c.p[i * c.ld + j] == PAD_VALUE);
    }
    free(c0);
    free(a.base);
    free(b.base);
    return c;
}

static void check_case(const gcase *g, uint64_t seed) { free(run_case(g, seed).base); }

/* Sizes 1..67 chosen so that, across the sweep, m covers every residue mod
 * 6 and 4 (the kernels' MR), n every residue mod 16 and 8 (NR), and n
 * crosses the packed-A threshold (4 NR); k covers short, odd and
 * multi-block (past KC = 256, unevenly split) sums; a few larger ones
 * cross the MC / NC blocks and the threading threshold. */
static const int64_t sweep[][3] = {
    {1, 1, 1},    {1, 2, 3},    {2, 1, 5},    {3, 17, 2},   {4, 16, 16},  {5, 15, 31},
    {6, 31, 7},   {7, 33, 64},  {8, 8, 1},    {9, 47, 9},   {10, 23, 11}, {11, 65, 13},
    {12, 48, 67}, {13, 5, 40},  {14, 63, 3},  {17, 67, 29}, {19, 3, 50},  {23, 41, 1},
    {29, 9, 33},  {31, 12, 17}, {35, 54, 8},  {37, 66, 21}, {41, 2, 60},  {43, 20, 6},
    {47, 36, 45}, {53, 59, 4},  {59, 7, 27},  {61, 26, 58}, {64, 64, 64}, {67, 67, 67},
    {5, 67, 300}, {13, 18, 520}, {7, 3, 257}, {150, 70, 9}, {300, 5, 12}, {7, 4100, 5},
    {1, 67, 67},  {67, 1, 67},  {2, 2, 1000},
    /* Over the 2^20-flop threading threshold, so 2 threads really split
     * them: along M (in row chunks taken from a shared counter; at 2000
     * rows a chunk spans more than one MC block), along N, and the two
     * gemv forms. */
    {103, 97, 61}, {2000, 20, 30}, {61, 205, 45}, {1, 1100, 500}, {1100, 1, 500},
};
static const float alphas[] = {1.0f, -0.5f, 2.0f, 0.75f};
static const float betas[] = {0.0f, 1.0f, -1.5f, 0.25f};

static void sweep_kernel(const char *name) {
    if (!cg_gemm_use_kernel(name)) {
        cg_gemm_use_kernel(NULL);
        skip();
    }
    assert_string_equal(cg_gemm_kernel_name(), name);
    int idx = 0;
    for (size_t s = 0; s < sizeof sweep / sizeof sweep[0]; s++)
        for (int t = 0; t < 4; t++, idx++) {
            gcase g = {
                .m = sweep[s][0], .n = sweep[s][1], .k = sweep[s][2],
                .ta = t & 1, .tb = (t >> 1) & 1,
                .alpha = alphas[idx % 4], .beta = betas[(idx / 4 + s) % 4],
                .pad_a = idx % 3, .pad_b = (idx / 3) % 2 * 5, .pad_c = (idx + 1) % 2 * 3,
                .off = idx % 2,
            };
            cg_set_num_threads(1 + idx % 2);
            check_case(&g, 1000 + (uint64_t)idx);
        }
    cg_set_num_threads(0);
    cg_gemm_use_kernel(NULL);
}

static void gemm_generic_matches_reference(void **state) {
    (void)state;
    sweep_kernel("generic");
}

static void gemm_avx2_matches_reference(void **state) {
    (void)state;
    sweep_kernel("avx2-fma");
}

/* Skipped unless built with -DCGRAD_BLAS=openblas. */
static void gemm_openblas_matches_reference(void **state) {
    (void)state;
    sweep_kernel("openblas");
}

/* The shapes training runs (batch 256, 784 pixels, 30 hidden or 1 out)
 * and their backward forms, every kernel, 1 and 2 threads. C must be the
 * same bits on a second run at 2 threads (any kernel) and, for cgrad's
 * own kernels, the same bits at 1 and 2 threads (OpenBLAS promises only
 * the former: its tiles' edges move with the split). */
static void gemm_training_shapes(void **state) {
    (void)state;
    const gcase shapes[] = {
        {.m = 256, .n = 30, .k = 784, .alpha = 1, .beta = 0},             /* x @ w1          */
        {.m = 256, .n = 1, .k = 784, .alpha = 1, .beta = 0},              /* x @ w (linear)  */
        {.m = 256, .n = 1, .k = 30, .alpha = 1, .beta = 0},               /* h @ w2          */
        {.m = 784, .n = 30, .k = 256, .ta = true, .alpha = 1, .beta = 1}, /* x^T @ dC        */
        {.m = 784, .n = 1, .k = 256, .ta = true, .alpha = 1, .beta = 1},  /* x^T @ dC, N = 1 */
        {.m = 256, .n = 784, .k = 30, .tb = true, .alpha = 1, .beta = 0}, /* dC @ w1^T       */
        {.m = 256, .n = 784, .k = 1, .tb = true, .alpha = 1, .beta = 0},  /* dC @ w^T, K = 1 */
        {.m = 1, .n = 784, .k = 256, .alpha = 1, .beta = 0},              /* row @ matrix    */
        {.m = 1, .n = 700, .k = 900, .tb = true, .alpha = 1, .beta = 0},  /* row @ matrix^T  */
        {.m = 1, .n = 700, .k = 900, .alpha = 2, .beta = 0},              /* row @ matrix    */
        {.m = 900, .n = 1, .k = 700, .ta = true, .alpha = 1, .beta = -1}, /* A^T @ column    */
        {.m = 130, .n = 150, .k = 70, .ta = true, .tb = true, .alpha = -1, .beta = 0.5f},
    };
    for (size_t kn = 0; kn < N_KERNELS; kn++) {
        if (!cg_gemm_use_kernel(kernels[kn])) continue;
        const bool own = strcmp(kernels[kn], "openblas") != 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            cg_set_num_threads(1);
            mat c1 = run_case(&shapes[s], 77 + s);
            cg_set_num_threads(2);
            mat c2 = run_case(&shapes[s], 77 + s);
            mat c2b = run_case(&shapes[s], 77 + s);
            size_t bytes = sizeof(float) * (size_t)(shapes[s].m * c1.ld);
            if (own && memcmp(c1.p, c2.p, bytes) != 0)
                fail_msg("%s shape %zu: 1 and 2 threads differ", kernels[kn], s);
            if (memcmp(c2.p, c2b.p, bytes) != 0)
                fail_msg("%s shape %zu: two runs at 2 threads differ", kernels[kn], s);
            free(c1.base);
            free(c2.base);
            free(c2b.base);
        }
    }
    cg_set_num_threads(0);
    cg_gemm_use_kernel(NULL);
}

/*
 * A mostly-zero A (a batch of MNIST) skips the steps where a whole tile of
 * A is zero: the result must be the dense kernel's, bit for bit, on every
 * tail (m, n, k), both layouts of A, alpha/beta, padded and offset
 * operands, 1 and 2 threads; -0.0 and whole zero rows included. With an
 * infinity or NaN in B a zero term is not neutral (0 * inf = NaN): such a
 * call must stay dense.
 */
static void gemm_sparse_a_same_bits(void **state) {
    (void)state;
    if (!cg_gemm_use_kernel("avx2-fma")) skip();
    const gcase shapes[] = {
        {.m = 256, .n = 30, .k = 784, .alpha = 1, .beta = 0},             /* x @ w1     */
        {.m = 784, .n = 30, .k = 256, .ta = true, .alpha = 1, .beta = 1}, /* x^T @ dC   */
        {.m = 37,
         .n = 29,
         .k = 101,
         .alpha = -0.5f,
         .beta = 0.25f,
         .pad_a = 3,
         .pad_c = 1,
         .off = 1},
        {.m = 101, .n = 17, .k = 37, .ta = true, .alpha = 2, .beta = -1.5f, .pad_a = 5, .off = 3},
        {.m = 6, .n = 5, .k = 9, .alpha = 1, .beta = 0},
        {.m = 13, .n = 48, .k = 300, .ta = true, .alpha = 0.75f, .beta = 1, .pad_b = 2},
        {.m = 2000, .n = 20, .k = 30, .alpha = 1, .beta = 0},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const gcase *g = &shapes[s];
        for (int special = 0; special < 2; special++) {
            for (int nt = 1; nt <= 2; nt++) {
                cg_set_num_threads(nt);
                cg_rng rng;
                cg_rng_seed(&rng, 500 + s);
                mat a = g->ta ? mat_new(g->k, g->m, g->pad_a, g->off, &rng)
                              : mat_new(g->m, g->k, g->pad_a, g->off, &rng);
                mat b = mat_new(g->k, g->n, g->pad_b, g->off, &rng);
                mat c = mat_new(g->m, g->n, g->pad_c, g->off, &rng);
                /* 85% zeros, some of them -0.0, and A's first stored row all zero. */
                for (int64_t i = 0; i < a.rows; i++)
                    for (int64_t j = 0; j < a.cols; j++) {
                        float u = cg_rng_uniform(&rng);
                        if (i == 0 || u < 0.85f) a.p[i * a.ld + j] = u < 0.1f ? -0.0f : 0.0f;
                    }
                if (special) b.p[(g->k / 2) * b.ld + g->n / 2] = special == 1 ? INFINITY : NAN;
                const size_t bytes = sizeof(float) * (size_t)(g->m * c.ld);
                float *dense = malloc(bytes);
                assert_non_null(dense);
                memcpy(dense, c.p, bytes);
                cg_gemm_sparse_enable(false);
                cg_gemm(g->ta, false, g->m, g->n, g->k, g->alpha, a.p, a.ld, b.p, b.ld, g->beta,
                        dense, c.ld);
                cg_gemm_sparse_enable(true);
                const int64_t before = cg_gemm_sparse_pieces();
                cg_gemm(g->ta, false, g->m, g->n, g->k, g->alpha, a.p, a.ld, b.p, b.ld, g->beta,
                        c.p, c.ld);
                const int64_t pieces = cg_gemm_sparse_pieces() - before;
                if (memcmp(c.p, dense, bytes) != 0)
                    fail_msg("shape %zu (%lldx%lldx%lld ta=%d), %d threads, B %s: sparse and dense "
                             "differ",
                             s, (long long)g->m, (long long)g->k, (long long)g->n, g->ta, nt,
                             special ? "with inf" : "finite");
                /* All these shapes take the skinny path, so the sparse one unless B is special. */
                if (special ? pieces != 0 : pieces == 0)
                    fail_msg("shape %zu, %d threads: %lld pieces ran sparse", s, nt,
                             (long long)pieces);
                free(dense);
                free(a.base);
                free(b.base);
                free(c.base);
            }
        }
    }
    cg_set_num_threads(0);
    cg_gemm_use_kernel(NULL);
}

/* beta == 0 means C = alpha * op(A) @ op(B): NaN already in C must not
 * survive (0 * NaN would), on the gemm, gemv and k == 0 / alpha == 0 paths. */
static void gemm_beta_zero_overwrites_nan(void **state) {
    (void)state;
    const int64_t shapes[][3] = {{7, 19, 5}, {20, 1, 9}, {1, 20, 9}, {5, 6, 0}, {64, 64, 300}};
    for (size_t kn = 0; kn < N_KERNELS; kn++) {
        if (!cg_gemm_use_kernel(kernels[kn])) continue;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int zero_alpha = 0; zero_alpha < 2; zero_alpha++) {
                int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                float *a = malloc(sizeof(float) * (size_t)(m * k + 1));
                float *b = malloc(sizeof(float) * (size_t)(k * n + 1));
                float *c = malloc(sizeof(float) * (size_t)(m * n));
                assert_true(a && b && c);
                for (int64_t i = 0; i < m * k; i++) a[i] = 1.0f;
                for (int64_t i = 0; i < k * n; i++) b[i] = 0.5f;
                for (int64_t i = 0; i < m * n; i++) c[i] = NAN;
                float alpha = zero_alpha ? 0.0f : 2.0f;
                cg_gemm(false, false, m, n, k, alpha, a, k, b, n, 0.0f, c, n);
                for (int64_t i = 0; i < m * n; i++)
                    if (c[i] != alpha * (float)k * 0.5f)
                        fail_msg("%s %lldx%lldx%lld alpha %g: C[%lld] = %g", kernels[kn],
                                 (long long)m, (long long)k, (long long)n, (double)alpha,
                                 (long long)i, (double)c[i]);
                free(a);
                free(b);
                free(c);
            }
    }
    cg_gemm_use_kernel(NULL);
}

/* Bad sizes and strides are reported (CG_ERR_ARG) and leave C alone. */
static void gemm_rejects_bad_arguments(void **state) {
    (void)state;
    float a[12] = {0}, b[12] = {0}, c[12];
    struct {
        int64_t m, n, k, lda, ldb, ldc;
        bool ta;
        const float *a;
    } bad[] = {
        {-1, 2, 2, 2, 2, 2, false, a}, /* negative m            */
        {2, 2, -3, 2, 2, 2, false, a}, /* negative k            */
        {2, 3, 2, 2, 3, 2, false, a},  /* ldc below n           */
        {2, 2, 3, 2, 2, 2, false, a},  /* lda below k           */
        {3, 2, 2, 2, 2, 2, true, a},   /* lda below m (A^T)     */
        {2, 3, 2, 2, 2, 3, false, a},  /* ldb below n           */
        {2, 2, 2, 2, 2, 2, false, NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int j = 0; j < 12; j++) c[j] = 7.0f;
        cg_clear_error();
        cg_gemm(bad[i].ta, false, bad[i].m, bad[i].n, bad[i].k, 1.0f, bad[i].a, bad[i].lda, b,
                bad[i].ldb, 0.0f, c, bad[i].ldc);
        assert_int_equal(cg_last_status(), CG_ERR_ARG);
        assert_non_null(strstr(cg_last_error(), "gemm"));
        for (int j = 0; j < 12; j++) assert_true(c[j] == 7.0f);
    }
    cg_clear_error();
    cg_gemm(false, false, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, NULL, 5); /* empty: a no-op */
    assert_int_equal(cg_last_status(), CG_OK);
}

/* CGRAD_GEMM=generic forces the portable kernel, =avx2-fma our fastest;
 * otherwise the default is OpenBLAS when built with it, else our fastest.
 * Unknown names are refused. */
static void gemm_kernel_choice(void **state) {
    (void)state;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    bool avx2 = false;
#endif
    const char *fastest = avx2 ? "avx2-fma" : "generic";
    const char *dflt = HAVE_OPENBLAS ? "openblas" : fastest;
    assert_int_equal(setenv("CGRAD_GEMM", "generic", 1), 0);
    assert_true(cg_gemm_use_kernel(NULL));
    assert_string_equal(cg_gemm_kernel_name(), "generic");
    assert_int_equal(setenv("CGRAD_GEMM", "avx2-fma", 1), 0);
    assert_true(cg_gemm_use_kernel(NULL));
    assert_string_equal(cg_gemm_kernel_name(), fastest);
    assert_int_equal(unsetenv("CGRAD_GEMM"), 0);
    assert_true(cg_gemm_use_kernel(NULL));
    assert_string_equal(cg_gemm_kernel_name(), dflt);
    assert_false(cg_gemm_use_kernel("no-such-kernel"));
    assert_string_equal(cg_gemm_kernel_name(), dflt);
    assert_int_equal(cg_gemm_use_kernel("avx2-fma"), avx2);
    assert_int_equal(cg_gemm_use_kernel("openblas"), HAVE_OPENBLAS);
    cg_gemm_use_kernel(NULL);
}

/* A thread that multiplies once and ends: its pack buffers must be freed
 * with it (the sanitizer build's leak check fails otherwise), and its
 * result must be the main thread's, bit for bit. */
typedef struct gemm_call {
    int64_t m, n, k;
    const float *a, *b;
    float *c;
} gemm_call;

static void *one_gemm(void *arg) {
    gemm_call *g = arg;
    cg_gemm(false, false, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b, g->n, 0.0f, g->c, g->n);
    return NULL;
}

static void gemm_from_short_lived_threads(void **state) {
    (void)state;
    cg_rng rng;
    cg_rng_seed(&rng, 9);
    mat a = mat_new(40, 70, 0, 0, &rng), b = mat_new(70, 90, 0, 0, &rng);
    mat c = mat_new(40, 90, 0, 0, &rng), c_main = mat_new(40, 90, 0, 0, &rng);
    gemm_call g = {40, 90, 70, a.p, b.p, c.p};
    gemm_call g_main = g;
    g_main.c = c_main.p;
    one_gemm(&g_main);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, one_gemm, &g), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_memory_equal(c.p, c_main.p, sizeof(float) * 40 * 90);
    }
    free(a.base);
    free(b.base);
    free(c.base);
    free(c_main.base);
}

/* OpenBLAS runs each call on cg_set_num_threads's count, even when its
 * own count was changed behind cgrad's back, and when called from a new
 * thread, whose OpenMP setting is OpenMP's default (which the OpenMP build
 * would otherwise follow). Skipped unless built with -DCGRAD_BLAS=openblas. */
static void gemm_openblas_follows_cgrad_threads(void **state) {
    (void)state;
#ifdef CGRAD_BLAS_OPENBLAS
    assert_true(cg_gemm_use_kernel("openblas"));
    cg_rng rng;
    cg_rng_seed(&rng, 11);
    mat a = mat_new(64, 96, 0, 0, &rng), b = mat_new(96, 80, 0, 0, &rng);
    mat c = mat_new(64, 80, 0, 0, &rng);
    gemm_call g = {64, 80, 96, a.p, b.p, c.p};
    for (int nt = 1; nt <= 3; nt++) {
        cg_set_num_threads(nt);
        one_gemm(&g);
        assert_int_equal(openblas_get_num_threads(), nt);
        openblas_set_num_threads(nt == 1 ? 2 : 1);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, one_gemm, &g), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(openblas_get_num_threads(), nt);
    }
    free(a.base);
    free(b.base);
    free(c.base);
    cg_set_num_threads(0);
    cg_gemm_use_kernel(NULL);
#else
    skip();
#endif
}

static void threads_set_and_get(void **state) {
    (void)state;
    cg_set_num_threads(0);
    int dflt = cg_get_num_threads();
    assert_true(dflt >= 1);
    cg_set_num_threads(3);
    assert_int_equal(cg_get_num_threads(), 3);
    cg_set_num_threads(1);
    assert_int_equal(cg_get_num_threads(), 1);
    cg_set_num_threads(0);
    assert_int_equal(cg_get_num_threads(), dflt);
    cg_set_num_threads(-4); /* negative: treated as 0, the default */
    assert_int_equal(cg_get_num_threads(), dflt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gemm_generic_matches_reference),
        cmocka_unit_test(gemm_avx2_matches_reference),
        cmocka_unit_test(gemm_openblas_matches_reference),
        cmocka_unit_test(gemm_training_shapes),
        cmocka_unit_test(gemm_sparse_a_same_bits),
        cmocka_unit_test(gemm_beta_zero_overwrites_nan),
        cmocka_unit_test(gemm_rejects_bad_arguments),
        cmocka_unit_test(gemm_kernel_choice),
        cmocka_unit_test(gemm_from_short_lived_threads),
        cmocka_unit_test(gemm_openblas_follows_cgrad_threads),
        cmocka_unit_test(threads_set_and_get),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
