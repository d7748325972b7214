/*
 * matmul.c - matrix products like torch.matmul for rank 1 and 2.
 *
 * A 1-D left operand [K] is a row [1, K], a 1-D right operand [K] a column
 * [K, 1]; the stretched dim is dropped from the result again. So every case
 * is one C[M,N] = A[M,K] @ B[K,N] and one cg_gemm call.
 *
 * Backward, with G = dL/dC:
 *   dL/dA = G @ B^T   [M,N] @ [N,K]
 *   dL/dB = A^T @ G   [K,M] @ [M,N]
 * cg_gemm reads A and B transposed in place (its trans flags), so no
 * transposed copy is ever made, and beta = 1 adds into the gradients.
 */
#include "cgrad_internal.h"

/* The [M, K] x [K, N] view of a matmul; saved in out->iparam for backward. */
typedef struct mm_dims {
    int64_t m, k, n;
} mm_dims;

static void matmul_backward(cg_tensor *out) {
    cg_tensor *a = out->src[0], *b = out->src[1];
    const int64_t m = out->iparam[0], k = out->iparam[1], n = out->iparam[2];
    const float *g = out->grad;
    if (cg_wants_grad(a)) {
        float *ga = cg_grad_buf(a);
        if (ga) cg_gemm(false, true, m, k, n, 1.0f, g, n, b->data, n, 1.0f, ga, k);
    }
    if (cg_wants_grad(b)) {
        float *gb = cg_grad_buf(b);
        if (gb) cg_gemm(true, false, k, n, m, 1.0f, a->data, k, g, n, 1.0f, gb, n);
    }
}
static const cg_op OP_MATMUL = {"matmul", matmul_backward};

cg_tensor *cg_tensor_matmul(cg_tensor *a, cg_tensor *b) {
    if (!a || !b) return NULL;
    char sa[64], sb[64];
    if (a->ndim < 1 || a->ndim > 2 || b->ndim < 1 || b->ndim > 2) {
        cg_fail(CG_ERR_SHAPE, "matmul: needs 1-D or 2-D operands, got %s and %s",
                cg_shape_str(a, sa, sizeof sa), cg_shape_str(b, sb, sizeof sb));
        return NULL;
    }
    mm_dims d;
    d.m = a->ndim == 2 ? a->shape[0] : 1;
    d.k = a->shape[a->ndim - 1];
    d.n = b->ndim == 2 ? b->shape[1] : 1;
    if (b->shape[0] != d.k) {
        cg_fail(CG_ERR_SHAPE, "matmul: cannot multiply %s by %s",
                cg_dims_str(a->shape, a->ndim, sa, sizeof sa),
                cg_dims_str(b->shape, b->ndim, sb, sizeof sb));
        return NULL;
    }
    int64_t shape[2];
    int ndim = 0;
    if (a->ndim == 2) shape[ndim++] = d.m;
    if (b->ndim == 2) shape[ndim++] = d.n;
    cg_tensor *out = cg_op_result(&OP_MATMUL, shape, ndim, a, b, NULL);
    if (!out) return NULL;
    out->iparam[0] = d.m;
    out->iparam[1] = d.k;
    out->iparam[2] = d.n;
    /* beta = 0: C is written, never read, so its old contents don't matter. */
    cg_gemm(false, false, d.m, d.n, d.k, 1.0f, a->data, d.k, b->data, d.n, 0.0f, out->data, d.n);
    return out;
}
