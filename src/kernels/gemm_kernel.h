/*
 * gemm_kernel.h - what the GEMM driver (gemm.c) and its microkernels
 * (gemm.c's portable one, gemm_avx2.c) share.
 *
 * The driver (BLIS / GotoBLAS layout) cuts C into MR x NR register tiles.
 * B is always packed, per KC x NC block, into micro-panels of NR columns:
 * panel[p*NR + j] = op(B)(p, j), zero-padded past n, so a microkernel never
 * needs a column tail on the B side. A is either packed the same way into
 * micro-panels of MR rows (panel[p*MR + i], strides rsa=1, csa=MR) or, for
 * skinny problems where packing would cost more than it saves, read in
 * place through its strides: op(A)(i, p) = a[i*rsa + p*csa].
 *
 * Every C element is one FMA chain over p in increasing order, split at
 * the same KC boundaries whatever the thread count, and each kernel's edge
 * tiles use the same arithmetic as its full ones - so results do not depend
 * on how the tiles were shared out between threads.
 */
#ifndef CG_GEMM_KERNEL_H
#define CG_GEMM_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * C[0..mr) x [0..nr) = alpha * A @ B + beta * C over one tile, where A is
 * MR x k (read at a[i*rsa + p*csa]; rows >= mr must still be readable, the
 * driver pads them) and B is a packed k x NR micro-panel. beta == 0 means
 * overwrite: C is not read, so NaN or garbage in it does not leak through.
 */
typedef void (*cg_ukr_fn)(int64_t k, const float *a, int64_t rsa, int64_t csa,
                          const float *b, float *c, int64_t ldc, float alpha,
                          float beta, int mr, int nr);

/*
 * Matrix-vector product, the N == 1 (or M == 1) case, where a padded tile
 * would waste 15/16 of its work:
 *   y[i*incy] = alpha * sum_p A(i, p) * x[p] + beta * y[i*incy],  i < m,
 * with A(i, p) = a[i*lda + p] (gemv_rows) or a[p*lda + i] (gemv_cols).
 * x is contiguous. beta == 0 overwrites y.
 */
typedef void (*cg_gemv_fn)(int64_t m, int64_t k, float alpha, const float *a,
                           int64_t lda, const float *x, float beta, float *y,
                           int64_t incy);

/*
 * Sparse A (a batch of MNIST is 81% zero pixels). nonzero_steps lists the
 * steps p < k at which some row of an MR-row tile of A (read as the ukr
 * reads it) is not zero, and returns how many, or -1 for strides it does
 * not take; ukr_steps is the ukr with its chain over those steps only (B
 * still packed over all of K: step p reads b + p*NR). The zero terms it
 * leaves out add nothing to a sum when B is finite, so the result has the
 * ukr's bits (but for the sign of an underflowed zero sum, see gemm.c);
 * the driver checks B.
 */
typedef int64_t (*cg_steps_fn)(int64_t k, const float *a, int64_t rsa, int64_t csa,
                               int32_t *steps);
typedef void (*cg_ukr_steps_fn)(int64_t n_steps, const int32_t *steps, const float *a,
                                int64_t rsa, int64_t csa, const float *b, float *c,
                                int64_t ldc, float alpha, float beta, int mr, int nr);

typedef struct cg_gemm_kernel {
    const char *name;
    int mr, nr;     /* register tile                                      */
    int mc, kc, nc; /* cache blocks: A mc x kc in L2, B kc x nc in L3     */
    cg_ukr_fn ukr;
    cg_gemv_fn gemv_rows;
    cg_gemv_fn gemv_cols;
    cg_steps_fn nonzero_steps; /* NULL: A is always taken dense */
    cg_ukr_steps_fn ukr_steps;
} cg_gemm_kernel;

/* The AVX2+FMA kernel; NULL where the compiler cannot build it. */
const cg_gemm_kernel *cg_gemm_avx2_kernel(void);

#ifdef CGRAD_BLAS_OPENBLAS
/*
 * gemm_openblas.c (cmake -DCGRAD_BLAS=openblas): the whole cg_gemm call,
 * arguments already checked, k > 0 and alpha != 0, through OpenBLAS.
 * Returns false, touching nothing, when a size exceeds OpenBLAS's int;
 * cgrad's own driver then does the call.
 */
#define CG_GEMM_OPENBLAS_NAME "openblas"
bool cg_gemm_openblas(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc);
#endif

#endif /* CG_GEMM_KERNEL_H */
