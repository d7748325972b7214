/*
 * gemm_avx2.c - the AVX2 + FMA GEMM microkernel (6x16) and matrix-vector
 * kernels.
 *
 * Every function here is compiled with __attribute__((target("avx2,fma")))
 * so the rest of the library stays portable; gemm.c calls into this file
 * only after __builtin_cpu_supports() has said the CPU has both.
 *
 * Why 6x16: a tile of C lives in 12 ymm accumulators (6 rows x 2 vectors
 * of 8 floats); each step p loads 2 vectors of B, broadcasts 6 elements of
 * A and issues 12 FMAs. That is 12 FMAs per 8 loads, which keeps both FMA
 * pipes busy (2 x 8 lanes x 2 flops = 32 flops/cycle) with the 16 ymm
 * registers: 12 accumulators + 2 B + 1 broadcast.
 */
#include "kernels/gemm_kernel.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define CG_AVX2 __attribute__((target("avx2,fma")))
#define CG_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

enum { MR = 6, NR = 16 };

/* -1 in the first n of 8 lanes (0 <= n <= 8): masks for the tails. */
CG_AVX2_INLINE __m256i lane_mask(int n) {
    static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
    return _mm256_loadu_si256((const __m256i *)(ones_then_zeros + 8 - n));
}

/* alpha * ab + beta * c, or alpha * ab when beta == 0 (C unread). All C
 * updates in this file go through this one formula so that full tiles, edge
 * tiles and strided outputs round identically. */
CG_AVX2_INLINE __m256 scale_add(__m256 ab, __m256 c, __m256 va, __m256 vb, bool beta0) {
    return beta0 ? _mm256_mul_ps(va, ab) : _mm256_fmadd_ps(va, ab, _mm256_mul_ps(vb, c));
}

/* Full row of a tile: 16 contiguous floats. */
CG_AVX2_INLINE void row_update(float *c, __m256 ab0, __m256 ab1, __m256 va, __m256 vb,
                               bool beta0) {
    __m256 c0 = beta0 ? _mm256_setzero_ps() : _mm256_loadu_ps(c);
    __m256 c1 = beta0 ? _mm256_setzero_ps() : _mm256_loadu_ps(c + 8);
    _mm256_storeu_ps(c, scale_add(ab0, c0, va, vb, beta0));
    _mm256_storeu_ps(c + 8, scale_add(ab1, c1, va, vb, beta0));
}

/* The first n (0..8) floats of c, through a lane mask: a masked load never
 * touches the memory of masked-off lanes, so edges need no scalar loop. */
CG_AVX2_INLINE void masked_update(float *c, int n, __m256 ab, __m256 va, __m256 vb,
                                  bool beta0) {
    if (n <= 0) return;
    __m256i mask = lane_mask(n);
    __m256 cv = beta0 ? _mm256_setzero_ps() : _mm256_maskload_ps(c, mask);
    _mm256_maskstore_ps(c, mask, scale_add(ab, cv, va, vb, beta0));
}

/*
 * One tile. Inlined three times: with the packed-A strides as constants
 * (rsa = 1, csa = MR: the broadcasts become fixed offsets), with run-time
 * strides (A read in place), and over a list of steps: with `steps`, the
 * chain runs over p = steps[0..k) instead of 0..k-1 (see ukr_steps_6x16).
 */
CG_AVX2_INLINE void ukr_body(int64_t k, const int32_t *steps, const float *a, int64_t rsa,
                             int64_t csa, const float *b, float *c, int64_t ldc, float alpha,
                             float beta, int mr, int nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

    /* Warm the C tile while the FMAs run, so the final update does not
     * stall on memory. */
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }

    const float *const a0 = a, *const bz = b;
    const float *a3 = a + 3 * rsa;
    int64_t s = 0; /* the step's place in `steps` */
#define CG_STEP()                                                                 \
    do {                                                                          \
        if (steps) {                                                              \
            a = a0 + steps[s] * csa, a3 = a + 3 * rsa, b = bz + steps[s] * NR;    \
            s++;                                                                  \
        }                                                                         \
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), t;             \
        t = _mm256_broadcast_ss(a);                                               \
        c00 = _mm256_fmadd_ps(t, b0, c00), c01 = _mm256_fmadd_ps(t, b1, c01);     \
        t = _mm256_broadcast_ss(a + rsa);                                         \
        c10 = _mm256_fmadd_ps(t, b0, c10), c11 = _mm256_fmadd_ps(t, b1, c11);     \
        t = _mm256_broadcast_ss(a + 2 * rsa);                                     \
        c20 = _mm256_fmadd_ps(t, b0, c20), c21 = _mm256_fmadd_ps(t, b1, c21);     \
        t = _mm256_broadcast_ss(a3);                                              \
        c30 = _mm256_fmadd_ps(t, b0, c30), c31 = _mm256_fmadd_ps(t, b1, c31);     \
        t = _mm256_broadcast_ss(a3 + rsa);                                        \
        c40 = _mm256_fmadd_ps(t, b0, c40), c41 = _mm256_fmadd_ps(t, b1, c41);     \
        t = _mm256_broadcast_ss(a3 + 2 * rsa);                                    \
        c50 = _mm256_fmadd_ps(t, b0, c50), c51 = _mm256_fmadd_ps(t, b1, c51);     \
        a += csa, a3 += csa, b += NR;                                             \
    } while (0)

    int64_t p = 0;
    for (; p + 2 <= k; p += 2) {
        CG_STEP();
        CG_STEP();
    }
    for (; p < k; p++) CG_STEP();
#undef CG_STEP

    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    if (mr == MR && nr == NR) {
        row_update(c, c00, c01, va, vb, beta0);
        row_update(c + ldc, c10, c11, va, vb, beta0);
        row_update(c + 2 * ldc, c20, c21, va, vb, beta0);
        row_update(c + 3 * ldc, c30, c31, va, vb, beta0);
        row_update(c + 4 * ldc, c40, c41, va, vb, beta0);
        row_update(c + 5 * ldc, c50, c51, va, vb, beta0);
        return;
    }
    /* Edge tile: spill the accumulators once (indexing registers by a
     * run-time row would push all of them to the stack for the whole loop). */
    float t[MR * NR];
    _mm256_storeu_ps(t + 0, c00), _mm256_storeu_ps(t + 8, c01);
    _mm256_storeu_ps(t + 16, c10), _mm256_storeu_ps(t + 24, c11);
    _mm256_storeu_ps(t + 32, c20), _mm256_storeu_ps(t + 40, c21);
    _mm256_storeu_ps(t + 48, c30), _mm256_storeu_ps(t + 56, c31);
    _mm256_storeu_ps(t + 64, c40), _mm256_storeu_ps(t + 72, c41);
    _mm256_storeu_ps(t + 80, c50), _mm256_storeu_ps(t + 88, c51);
    for (int i = 0; i < mr; i++) {
        masked_update(c + i * ldc, nr < 8 ? nr : 8, _mm256_loadu_ps(t + i * NR), va, vb, beta0);
        if (nr > 8)
            masked_update(c + i * ldc + 8, nr - 8, _mm256_loadu_ps(t + i * NR + 8), va, vb, beta0);
    }
}

CG_AVX2 static void ukr_6x16(int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, float *c, int64_t ldc, float alpha, float beta,
                             int mr, int nr) {
    if (rsa == 1 && csa == MR)
        ukr_body(k, NULL, a, 1, MR, b, c, ldc, alpha, beta, mr, nr);
    else
        ukr_body(k, NULL, a, rsa, csa, b, c, ldc, alpha, beta, mr, nr);
}

/* ------------------------------------------------------------------ */
/* Sparse A: a tile's chains over the steps where its A is not all zero */
/* ------------------------------------------------------------------ */

/*
 * For each of the 8 masks a compare can give, its set lanes left-packed
 * (byte l: the l-th set lane), so one permute turns 8 step indices into
 * the list of those whose mask bit is set. Made once (see the kernel's
 * getter below).
 */
static uint64_t left_pack[256];
static pthread_once_t left_pack_once = PTHREAD_ONCE_INIT;

static void left_pack_init(void) {
    for (unsigned m = 0; m < 256; m++) {
        uint64_t packed = 0;
        for (unsigned lane = 0, l = 0; lane < 8; lane++)
            if (m >> lane & 1) packed |= (uint64_t)lane << (8 * l++);
        left_pack[m] = packed;
    }
}

/*
 * steps[0..count) = the p < k where some row of the MR-row tile a has a
 * nonzero A(i, p) = a[i*rsa + p*csa]; returns count, or -1 for strides it
 * does not handle (then the tile stays dense). Zero is tested on the bits,
 * so -0.0 counts as nonzero: keeping a step the tile could skip is always
 * right, only slower. No branch depends on the data: a bit-scan loop
 * mispredicts on the strokes' irregular runs of pixels.
 */
CG_AVX2 static int64_t nonzero_steps_6x16(int64_t k, const float *a, int64_t rsa, int64_t csa,
                                           int32_t *steps) {
    int64_t count = 0, p = 0;
    if (csa == 1) {
        /* Rows along p: the tile's 6 rows or-ed together, 8 steps at a time. */
        const __m256i zero = _mm256_setzero_si256(), eight = _mm256_set1_epi32(8);
        __m256i base = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (; p + 8 <= k; p += 8) {
            __m256i any = _mm256_loadu_si256((const __m256i *)(a + p));
            for (int i = 1; i < MR; i++)
                any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(a + i * rsa + p)));
            const unsigned m =
                ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(any, zero))) &
                0xffu;
            const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)left_pack[m]));
            _mm256_storeu_si256((__m256i *)(steps + count),
                                _mm256_permutevar8x32_epi32(base, perm));
            count += __builtin_popcount(m);
            base = _mm256_add_epi32(base, eight);
        }
        for (; p < k; p++) {
            uint32_t any = 0;
            for (int i = 0; i < MR; i++) {
                uint32_t u;
                memcpy(&u, a + i * rsa + p, sizeof u);
                any |= u;
            }
            steps[count] = (int32_t)p;
            count += any != 0;
        }
        return count;
    }
    if (rsa != 1) return -1;
    /* Rows across p (A^T, or a packed panel): one step's 6 values are
     * contiguous. Before the last step, the 2 floats loaded past them lie
     * in the next step's row (csa >= 6) and are masked off; the last step
     * takes a masked load, which reads none. */
    const __m256i six = lane_mask(MR);
    for (; p + 1 < k; p++) {
        steps[count] = (int32_t)p;
        count += !_mm256_testz_si256(_mm256_loadu_si256((const __m256i *)(a + p * csa)), six);
    }
    if (p < k) {
        steps[count] = (int32_t)p;
        count +=
            !_mm256_testz_si256(_mm256_castps_si256(_mm256_maskload_ps(a + p * csa, six)), six);
    }
    return count;
}

/* The ukr over the listed steps only (B still packed over all of K). */
CG_AVX2 static void ukr_steps_6x16(int64_t n_steps, const int32_t *steps, const float *a,
                                   int64_t rsa, int64_t csa, const float *b, float *c,
                                   int64_t ldc, float alpha, float beta, int mr, int nr) {
    if (rsa == 1 && csa == MR)
        ukr_body(n_steps, steps, a, 1, MR, b, c, ldc, alpha, beta, mr, nr);
    else
        ukr_body(n_steps, steps, a, rsa, csa, b, c, ldc, alpha, beta, mr, nr);
}

/* Horizontal sum in a fixed order: (lo128 + hi128), then pairs. */
CG_AVX2_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/*
 * ROWS dot products sharing x (ROWS is a constant after inlining). Per row:
 * two 8-lane FMA chains over blocks of 16, an 8-block into the first, a
 * masked remainder into the second, then hsum(acc0 + acc1) - the same
 * order for every row, whichever group it falls in.
 */
CG_AVX2_INLINE void dot_rows(int rows, int64_t k, float alpha, const float *a, int64_t lda,
                             const float *x, float beta, float *y, int64_t incy) {
    __m256 acc[4][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t p = 0;
    for (; p + 16 <= k; p += 16) {
        __m256 x0 = _mm256_loadu_ps(x + p), x1 = _mm256_loadu_ps(x + p + 8);
        for (int r = 0; r < rows; r++) {
            acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + p), x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + p + 8), x1, acc[r][1]);
        }
    }
    if (p + 8 <= k) {
        __m256 x0 = _mm256_loadu_ps(x + p);
        for (int r = 0; r < rows; r++)
            acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + r * lda + p), x0, acc[r][0]);
        p += 8;
    }
    if (p < k) {
        __m256i mask = lane_mask((int)(k - p));
        __m256 x0 = _mm256_maskload_ps(x + p, mask);
        for (int r = 0; r < rows; r++)
            acc[r][1] = _mm256_fmadd_ps(_mm256_maskload_ps(a + r * lda + p, mask), x0, acc[r][1]);
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    for (int r = 0; r < rows; r++) {
        /* The scalar result goes through lane 0 of the shared formula. */
        __m256 s = _mm256_set1_ps(hsum(_mm256_add_ps(acc[r][0], acc[r][1])));
        __m256 yv = beta0 ? _mm256_setzero_ps() : _mm256_set1_ps(y[r * incy]);
        y[r * incy] = _mm256_cvtss_f32(scale_add(s, yv, va, vb, beta0));
    }
}

CG_AVX2 static void gemv_rows_avx2(int64_t m, int64_t k, float alpha, const float *a,
                                   int64_t lda, const float *x, float beta, float *y,
                                   int64_t incy) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) dot_rows(4, k, alpha, a + i * lda, lda, x, beta, y + i * incy, incy);
    for (; i < m; i++) dot_rows(1, k, alpha, a + i * lda, lda, x, beta, y + i * incy, incy);
}

/* y[0..n) (n <= 8, stride incy) from one vector of sums. */
CG_AVX2_INLINE void store_y(float *y, int64_t incy, int n, __m256 acc, __m256 va, __m256 vb,
                            bool beta0) {
    if (incy == 1) {
        masked_update(y, n, acc, va, vb, beta0);
        return;
    }
    float t[8] = {0}, s[8];
    if (!beta0)
        for (int j = 0; j < n; j++) t[j] = y[j * incy];
    _mm256_storeu_ps(s, scale_add(acc, _mm256_loadu_ps(t), va, vb, beta0));
    for (int j = 0; j < n; j++) y[j * incy] = s[j];
}

/*
 * A(i, p) = a[p*lda + i]: rows of A are contiguous along i, so vectorise
 * over i: for each p, acc[i] += A(p, i) * x[p]. Each y element is one FMA
 * chain over p whether it sits in a 64-wide block or the masked tail.
 */
CG_AVX2 static void gemv_cols_avx2(int64_t m, int64_t k, float alpha, const float *a,
                                   int64_t lda, const float *x, float beta, float *y,
                                   int64_t incy) {
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const bool beta0 = beta == 0.0f;
    int64_t i = 0;
    for (; i + 64 <= m; i += 64) {
        __m256 acc[8];
        for (int v = 0; v < 8; v++) acc[v] = _mm256_setzero_ps();
        for (int64_t p = 0; p < k; p++) {
            const float *row = a + p * lda + i;
            __m256 xp = _mm256_broadcast_ss(x + p);
            for (int v = 0; v < 8; v++)
                acc[v] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * v), xp, acc[v]);
        }
        for (int v = 0; v < 8; v++) store_y(y + (i + 8 * v) * incy, incy, 8, acc[v], va, vb, beta0);
    }
    for (; i < m; i += 8) {
        int n = m - i < 8 ? (int)(m - i) : 8;
        __m256i mask = lane_mask(n);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t p = 0; p < k; p++)
            acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + p * lda + i, mask),
                                  _mm256_broadcast_ss(x + p), acc);
        store_y(y + i * incy, incy, n, acc, va, vb, beta0);
    }
}

static const cg_gemm_kernel avx2_kernel = {
    .name = "avx2-fma",
    .mr = MR,
    .nr = NR,
    /* A block 144 x 256 floats = 144 KiB sits in a 512 KiB L2 with room for
     * the streaming B micro-panel (256 x 16 = 16 KiB, L1) and C. */
    .mc = 144,
    .kc = 256,
    .nc = 4080,
    .ukr = ukr_6x16,
    .gemv_rows = gemv_rows_avx2,
    .gemv_cols = gemv_cols_avx2,
    .nonzero_steps = nonzero_steps_6x16,
    .ukr_steps = ukr_steps_6x16,
};

const cg_gemm_kernel *cg_gemm_avx2_kernel(void) {
    pthread_once(&left_pack_once, left_pack_init);
    return &avx2_kernel;
}

#else /* not x86 */

const cg_gemm_kernel *cg_gemm_avx2_kernel(void) { return NULL; }

#endif
