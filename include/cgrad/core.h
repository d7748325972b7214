/*
 * cgrad/core.h - tensors, autograd and ops: the engine under everything.
 * (Include <cgrad.h>, which includes this and the other public headers.)
 *
 * cgrad retells fastbook chapter 4 ("training a digit classifier") in C:
 * float32 tensors with NumPy broadcasting, reverse-mode autograd, SGD, a
 * shuffling DataLoader, MNIST loaders and a CLI on top.
 *
 * Conventions
 *  - Every public name starts with `cg_`.
 *  - Tensors are contiguous, row-major float32, rank 0..CG_MAX_DIMS.
 *  - Errors: a function that builds a tensor returns NULL on failure; one
 *    that does anything else returns a cg_status. Either way the reason is
 *    in cg_last_error() (per thread), naming the op and the shapes, e.g.
 *    "matmul: cannot multiply 64x784 by 30x1". Every op given a NULL input
 *    returns NULL without touching the message, so a whole expression can
 *    be written first and checked once at the end. Nothing aborts on bad
 *    input.
 *
 * Memory: reference counts plus scopes (like an autorelease pool).
 *  - A tensor has a reference count. cg_tensor_retain() adds one,
 *    cg_tensor_release() drops one and frees the tensor at zero. A tensor
 *    made by an op holds a reference to each of its inputs (the autograd
 *    graph), so releasing the loss of a step frees that step's whole graph.
 *  - While a scope is open (cg_scope_begin), every new tensor's first
 *    reference belongs to the innermost scope, and cg_scope_end() drops it.
 *    So a training step is: begin, build the graph, backward, update, end -
 *    and all intermediates are gone. Retain a tensor to keep it past its
 *    scope. With no scope open, the caller owns the first reference.
 *  - Freed buffers go to a small per-thread pool, so a training loop whose
 *    shapes repeat does not call malloc in the steady state.
 */
#ifndef CGRAD_CORE_H
#define CGRAD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_VERSION_MAJOR 0
#define CG_VERSION_MINOR 3
#define CG_VERSION_PATCH 0
#define CG_VERSION "0.3.0"

/* Highest tensor rank. */
#define CG_MAX_DIMS 4

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

typedef enum cg_status {
    CG_OK = 0,
    CG_ERR_SHAPE,   /* shapes do not fit the op                   */
    CG_ERR_ARG,     /* a bad argument (dim out of range, ...)     */
    CG_ERR_NOMEM,   /* an allocation failed or was too large      */
    CG_ERR_IO,      /* a file could not be opened, read, written  */
    CG_ERR_FORMAT,  /* a file's contents are not what they claim  */
    CG_ERR_NET,     /* a download failed                          */
    CG_ERR_STATE    /* the call does not fit the object's state   */
} cg_status;

/* The message of the last failure on this thread ("" if none). */
const char *cg_last_error(void);
/* The status of the last failure on this thread (CG_OK if none). */
cg_status cg_last_status(void);
void cg_clear_error(void);
/* Records a failure; returns `status` so callers can `return cg_fail(...)`. */
cg_status cg_fail(cg_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------------------ */
/* Random numbers                                                      */
/* ------------------------------------------------------------------ */

/*
 * PCG32 (O'Neill 2014, "PCG-XSH-RR" 64-bit state, 32-bit output) - the same
 * integer sequence on every platform. Uniform floats are the top 24 bits
 * times 2^-24, so in [0, 1). Normals use the Box-Muller transform on two
 * uniforms in double precision, returning both values of each pair.
 */
typedef struct cg_rng {
    uint64_t state;
    uint64_t inc;
    double spare;      /* second Box-Muller value, if has_spare */
    bool has_spare;
} cg_rng;

void cg_rng_seed(cg_rng *rng, uint64_t seed);
uint32_t cg_rng_u32(cg_rng *rng);
/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t cg_rng_below(cg_rng *rng, uint32_t bound);
float cg_rng_uniform(cg_rng *rng);
float cg_rng_normal(cg_rng *rng);
/* The generator used by cg_tensor_rand/randn when given NULL. */
cg_rng *cg_rng_global(void);
void cg_manual_seed(uint64_t seed);

/* ------------------------------------------------------------------ */
/* Tensors                                                             */
/* ------------------------------------------------------------------ */

typedef struct cg_tensor cg_tensor;
typedef struct cg_op cg_op; /* an entry of the op table (src/autograd) */

/* Fields are public to read; change them only through the API. */
struct cg_tensor {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    int64_t numel;
    float *data;          /* contiguous, row-major                      */
    float *grad;          /* NULL until backward reaches this tensor    */
    bool requires_grad;

    /* internals */
    int refcount;
    struct cg_buffer *buffer; /* shared by a tensor and its views */
    const cg_op *op;          /* the op that made it (NULL for a leaf) */
    cg_tensor *src[3];        /* the op's inputs, referenced         */
    float fparam;             /* op parameter (pow exponent, ...)     */
    int64_t iparam[CG_MAX_DIMS + 1];
    void *aux;                /* op-owned saved state, freed with it  */
    float *saved;             /* per-step saved state from the pool   */
    int64_t n_saved;          /* (cg_floats_alloc), freed with it     */
    uint32_t visit;           /* backward's topological-sort mark     */
};

/* Makers. `shape` has `ndim` entries; ndim 0 makes a scalar. */
cg_tensor *cg_tensor_new(const int64_t *shape, int ndim); /* uninitialised */
cg_tensor *cg_tensor_zeros(const int64_t *shape, int ndim);
cg_tensor *cg_tensor_ones(const int64_t *shape, int ndim);
cg_tensor *cg_tensor_full(const int64_t *shape, int ndim, float value);
cg_tensor *cg_tensor_from_data(const float *data, const int64_t *shape, int ndim);
cg_tensor *cg_tensor_scalar(float value);
cg_tensor *cg_tensor_arange(float start, float stop, float step);
/* rng NULL: the global generator. */
cg_tensor *cg_tensor_rand(const int64_t *shape, int ndim, cg_rng *rng);
cg_tensor *cg_tensor_randn(const int64_t *shape, int ndim, cg_rng *rng);

cg_tensor *cg_tensor_retain(cg_tensor *t);
void cg_tensor_release(cg_tensor *t);

/* Value of a one-element tensor (NAN and an error otherwise). */
float cg_tensor_item(const cg_tensor *t);
/* Writes "[12396, 784]" into buf. */
const char *cg_shape_str(const cg_tensor *t, char *buf, size_t size);
bool cg_tensor_same_shape(const cg_tensor *a, const cg_tensor *b);

/* Autograd flags. */
cg_tensor *cg_tensor_requires_grad(cg_tensor *t, bool on); /* returns t */
void cg_tensor_zero_grad(cg_tensor *t);
/* A new tensor sharing t's data, outside any graph. */
cg_tensor *cg_tensor_detach(cg_tensor *t);

/* Scopes (see the top of this file). */
void cg_scope_begin(void);
void cg_scope_end(void);
/* Ends the innermost scope but keeps `result`, handing it to the enclosing
 * scope (or, with none open, to the caller): how a function built from
 * several ops returns its result and frees its intermediates.
 *   cg_scope_begin(); ...; return cg_scope_end_keep(out);                */
cg_tensor *cg_scope_end_keep(cg_tensor *result);

/* Grad mode: with it off, ops record no graph (updates, validation). */
bool cg_grad_enabled(void);
/* Sets the mode, returns the previous one. */
bool cg_set_grad_enabled(bool on);

/* Reverse-mode autodiff from a one-element tensor: adds d(loss)/d(leaf)
 * into every leaf's grad that requires it (so calling it twice doubles
 * them, as in PyTorch). Intermediate gradients are freed afterwards. */
cg_status cg_backward(cg_tensor *loss);

/* ---- shape and layout ---- */

/* A view with a new shape (one entry may be -1, inferred). */
cg_tensor *cg_tensor_reshape(cg_tensor *t, const int64_t *shape, int ndim);
cg_tensor *cg_tensor_unsqueeze(cg_tensor *t, int dim);
/* Removes dim (which must be 1); dim -1..: negative counts from the end. */
cg_tensor *cg_tensor_squeeze(cg_tensor *t, int dim);
/* 2-D transpose, like t.T. */
cg_tensor *cg_tensor_transpose(cg_tensor *t);
/* Rows [start, end) along dim 0, as a view (a batch). */
cg_tensor *cg_tensor_rows(cg_tensor *t, int64_t start, int64_t end);
/* Rows idx[0..n) along dim 0, copied (a shuffled batch). */
cg_tensor *cg_tensor_index_select(cg_tensor *t, const int64_t *idx, int64_t n);
/* Joins n tensors of one shape along a new dim 0 / an existing dim. */
cg_tensor *cg_tensor_stack(cg_tensor *const *ts, int n);
cg_tensor *cg_tensor_cat(cg_tensor *const *ts, int n, int dim);

/* ---- elementwise (binary ones broadcast like NumPy/PyTorch) ---- */
cg_tensor *cg_tensor_add(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_sub(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_mul(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_div(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_neg(cg_tensor *a);
cg_tensor *cg_tensor_exp(cg_tensor *a);
cg_tensor *cg_tensor_log(cg_tensor *a);
cg_tensor *cg_tensor_abs(cg_tensor *a);
cg_tensor *cg_tensor_sqrt(cg_tensor *a);
cg_tensor *cg_tensor_pow(cg_tensor *a, float exponent);
cg_tensor *cg_tensor_sigmoid(cg_tensor *a);
cg_tensor *cg_tensor_relu(cg_tensor *a);
/* max(a, value) elementwise: the article's res.max(tensor(0.0)). */
cg_tensor *cg_tensor_maximum_scalar(cg_tensor *a, float value);
/* Comparisons give 0/1 floats and carry no gradient. */
cg_tensor *cg_tensor_gt(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_lt(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_eq(cg_tensor *a, cg_tensor *b);
/* cond != 0 ? a : b, all three broadcast together. */
cg_tensor *cg_tensor_where(cg_tensor *cond, cg_tensor *a, cg_tensor *b);

/* ---- reductions ---- */
cg_tensor *cg_tensor_sum(cg_tensor *t);  /* all elements -> scalar */
cg_tensor *cg_tensor_mean(cg_tensor *t);
/* Over the dims listed (negative ones count from the end). */
cg_tensor *cg_tensor_sum_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim);
cg_tensor *cg_tensor_mean_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim);
/* Max along dim; the gradient flows to the (first) max element. */
cg_tensor *cg_tensor_max(cg_tensor *t, int dim, bool keepdim);
/* Index of the first max along dim, as floats; no gradient. */
cg_tensor *cg_tensor_argmax(cg_tensor *t, int dim, bool keepdim);

/* ---- normalisation and pooling (src/ops/batchnorm.c, src/ops/pool.c) ---- */
/* Batch normalisation (torch.nn.functional.batch_norm), per channel c of x
 * [N, C, H, W] (over N, H, W) or [N, C] (over N) ([N, C, L] too, over N, L):
 *   training: mean, var (biased) of the batch;
 *             y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c];
 *             running_mean = (1 - momentum) * running_mean + momentum * mean,
 *             running_var  = (1 - momentum) * running_var + momentum * var_unbiased
 *             (in place; PyTorch's rule);
 *   eval: the running statistics instead of the batch's.
 * gamma, beta [C] (NULL: no affine); running_mean, running_var [C] (NULL allowed only in training,
 * then nothing is tracked). Differentiable in x, gamma, beta. */
cg_tensor *cg_tensor_batchnorm(cg_tensor *x, cg_tensor *gamma, cg_tensor *beta,
                               cg_tensor *running_mean, cg_tensor *running_var, bool training,
                               float momentum, float eps);
/* Max / average pooling over kernel x kernel windows of x [N, C, H, W] with stride and zero
 * padding (max: padding never wins; avg: count_include_pad = true, as PyTorch's default)
 * -> [N, C, OH, OW], OH = (H + 2*pad - kernel) / stride + 1. */
cg_tensor *cg_tensor_max_pool2d(cg_tensor *x, int kernel, int stride, int pad);
cg_tensor *cg_tensor_avg_pool2d(cg_tensor *x, int kernel, int stride, int pad);
/* Mean over H and W: [N, C, H, W] -> [N, C] (nn.AdaptiveAvgPool2d(1) + flatten). */
cg_tensor *cg_tensor_global_avg_pool(cg_tensor *x);

/* ---- distances ---- */
typedef enum cg_distance {
    CG_DIST_L1 = 1,  /* mean |x - y|: the book's mnist_distance, (a-b).abs().mean(-1) */
    CG_DIST_RMSE = 2 /* sqrt(mean (x - y)^2): F.mse_loss(a, b).sqrt() */
} cg_distance;
/* How far each row of x [N, P] is from y ([P] or [1, P]): [N]. One fused
 * pass per row (src/ops/distance.c); differentiable in x and y. */
cg_tensor *cg_tensor_row_distance(cg_tensor *x, cg_tensor *y, cg_distance kind);

/* ---- linear algebra ---- */
/* 2-D @ 2-D, 1-D @ 2-D, 2-D @ 1-D and 1-D @ 1-D, like torch.matmul. */
cg_tensor *cg_tensor_matmul(cg_tensor *a, cg_tensor *b);

/* ---- convolution (src/ops/conv.c) ---- */
/* 2-D convolution (cross-correlation, as torch.nn.functional.conv2d), NCHW:
 * x [N, C, H, W], w [O, C, KH, KW], b [O] or NULL -> [N, O, OH, OW] with
 * OH = (H + 2*pad - KH) / stride + 1 (likewise OW); zero padding. Differentiable in x, w, b. */
cg_tensor *cg_tensor_conv2d(cg_tensor *x, cg_tensor *w, cg_tensor *b, int stride, int pad);

/*
 * The GEMM kernel behind matmul, public for benchmarks and embedding:
 * C = alpha * op(A) @ op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is MxK, op(B) is KxN, C is MxN; lda/ldb/ldc are row strides.
 */
void cg_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc);
/* The name of the GEMM kernel chosen at run time ("avx2-fma", "generic", or
 * "openblas" in a build configured with -DCGRAD_BLAS=openblas). */
const char *cg_gemm_kernel_name(void);

/* Threads used by kernels (OpenMP); 0 = OpenMP's default. */
void cg_set_num_threads(int n);
int cg_get_num_threads(void);


#ifdef __cplusplus
}
#endif
#endif /* CGRAD_CORE_H */
