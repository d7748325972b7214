/*
 * gemm_openblas.c - cg_gemm through OpenBLAS, built only with
 * `cmake -DCGRAD_BLAS=openblas` (see CMakeLists.txt); gemm.c hands a call
 * here when the chosen kernel is "openblas" (the default in such a build).
 *
 * Expects OpenBLAS's OpenMP build (Debian: libopenblas-openmp-dev, runtime
 * libopenblas0-openmp). It runs its threads on libgomp's pool, the one our
 * own `omp parallel` loops use, so the two never hold more than the
 * requested number of cores between them. The pthread build keeps a pool
 * of its own that spins for a while after each call, competing with the
 * OpenMP team of the next elementwise op; it works, but oversubscribes.
 *
 * Threads: the OpenMP build takes its count on every call from the calling
 * thread's omp_get_max_threads() (or stays at 1 once set to 1), the
 * pthread build from openblas_set_num_threads(). cgrad's count is
 * process-wide (threads.c), so each call first sets both to
 * cg_get_num_threads() where they differ - openblas_set_num_threads does
 * both in the OpenMP build. OpenBLAS then cuts C by rows and columns into
 * ranges fixed by the shape and the count, and no K sum is shared between
 * threads, so a given thread count always gives the same bits. Unlike
 * cgrad's own kernels, 1 and 2 threads differ in the last bits (on the
 * training shapes, OpenBLAS 0.3.21 on AVX2): each thread's piece is tiled
 * and summed on its own, so a different cut moves the tile edges.
 *
 * Matrix-vector shapes (N == 1 or M == 1, the linear model) go to sgemv:
 * its sgemm would run them through 16-wide register tiles.
 */
#include "cgrad_internal.h"
#include "kernels/gemm_kernel.h"

#include <cblas.h>
#include <limits.h>
#include <omp.h>

static void match_threads(void) {
    const int nt = cg_get_num_threads();
    if (openblas_get_num_threads() != nt || omp_get_max_threads() != nt)
        openblas_set_num_threads(nt);
}

static bool fits_int(int64_t x) { return x <= INT_MAX; }

bool cg_gemm_openblas(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                      float *c, int64_t ldc) {
    if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) ||
        !fits_int(ldc))
        return false;
    match_threads();
    const enum CBLAS_TRANSPOSE op_a = trans_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE op_b = trans_b ? CblasTrans : CblasNoTrans;
    if (n == 1) {
        /* C's column = op(A) @ x, x = op(B)'s column: B^T is a contiguous
         * row, B a column read every ldb. A is stored m x k (k x m if trans_a). */
        cblas_sgemv(CblasRowMajor, op_a, (int)(trans_a ? k : m), (int)(trans_a ? m : k), alpha, a,
                    (int)lda, b, trans_b ? 1 : (int)ldb, beta, c, (int)ldc);
    } else if (m == 1) {
        /* C's row = x @ op(B), i.e. op(B)^T @ x with x = op(A)'s row. B is
         * stored k x n (n x k if trans_b), so op(B)^T is B transposed back. */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, (int)(trans_b ? n : k),
                    (int)(trans_b ? k : n), alpha, b, (int)ldb, a, trans_a ? (int)lda : 1, beta, c,
                    1);
    } else {
        cblas_sgemm(CblasRowMajor, op_a, op_b, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                    (int)ldb, beta, c, (int)ldc);
    }
    return true;
}
