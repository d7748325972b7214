/*
 * cgrad_internal.h - what the library's own files share and users don't see.
 *
 * How an op is written (see src/ops/elementwise.c for the pattern):
 *   1. check the inputs (NULL in -> NULL out; bad shapes -> cg_fail + NULL);
 *   2. out = cg_op_result(&OP, shape, ndim, a, b, c): a new tensor that, when
 *      grad mode is on and an input requires grad, records OP and references
 *      its inputs;
 *   3. compute out->data with plain loops over contiguous memory;
 *   4. OP.backward(out) reads out->grad and ADDS into cg_grad_buf(src[i])
 *      for each input whose requires_grad is set.
 * Forward and backward of an op sit side by side in one file.
 *
 * State the backward needs beyond the inputs and out (batchnorm's
 * per-channel mean and 1/std, max_pool2d's winners) goes in out->saved:
 * n_saved floats from cg_floats_alloc (ints or doubles may be stored in
 * them), taken before cg_op_result so a failure leaves nothing to undo,
 * handed to out only when out->op is set (else returned with
 * cg_floats_free at once), and returned to the pool by
 * cg_tensor_release. Being pooled, it costs no malloc once a training
 * loop's shapes repeat (tests/test_alloc.c), where out->aux (malloc'd,
 * free()d with out: cg_tensor_max's winners) costs one every call.
 */
#ifndef CGRAD_INTERNAL_H
#define CGRAD_INTERNAL_H

#include "cgrad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An entry of the op table: its name (for messages and tests) and its
 * backward. Forward is the public function that made the tensor. */
struct cg_op {
    const char *name;
    void (*backward)(cg_tensor *out);
};

/* A reference-counted float buffer; a tensor and its views share one. The
 * header sits in the first CG_BUFFER_HEADER_FLOATS floats of its own
 * allocation (`alloc` floats from cg_floats_alloc), the data after it. */
typedef struct cg_buffer {
    float *data;
    int64_t alloc;
    int refcount;
} cg_buffer;
#define CG_BUFFER_HEADER_FLOATS 16 /* 64 bytes: keeps the data aligned */

/* Largest tensor we agree to allocate (elements): 2^32 floats = 16 GiB. */
#define CG_MAX_NUMEL ((int64_t)1 << 32)

/* ---- tensors (src/tensor/tensor.c) ---- */

/* Checks a shape (0 <= ndim <= CG_MAX_DIMS, dims >= 0, product bounded)
 * and returns its element count, or -1 after cg_fail naming `op`. */
int64_t cg_shape_numel(const char *op, const int64_t *shape, int ndim);
/* "64x784" for messages; buf must hold 64 bytes. */
const char *cg_dims_str(const int64_t *shape, int ndim, char *buf, size_t size);
/* Uninitialised tensor, registered with the current scope. */
cg_tensor *cg_tensor_alloc(const char *op, const int64_t *shape, int ndim);
/* A view of `base` (sharing its buffer) with a new shape, starting
 * `offset` elements into base's data. */
cg_tensor *cg_tensor_view_of(cg_tensor *base, const int64_t *shape, int ndim, int64_t offset);
/* The result of an op: allocated, and linked into the graph when grad mode
 * is on and any non-NULL input requires grad. */
cg_tensor *cg_op_result(const cg_op *op, const int64_t *shape, int ndim,
                        cg_tensor *a, cg_tensor *b, cg_tensor *c);
/* A view of `base`'s buffer as the result of a view op (reshape, rows...):
 * linked into the graph like cg_op_result, sharing base's data. */
cg_tensor *cg_view_result(const cg_op *op, cg_tensor *base, const int64_t *shape, int ndim,
                          int64_t offset);
/* t->grad, allocated and zeroed on first use (NULL if out of memory). */
float *cg_grad_buf(cg_tensor *t);
/* Whether a cg_grad_buf call failed since the last reset. */
bool cg_grad_alloc_failed(bool reset);
/* True if backward should add into t's gradient. */
static inline bool cg_wants_grad(const cg_tensor *t) { return t && t->requires_grad; }

/* A growable array of tensor pointers (scopes, backward's order, ...). */
typedef struct cg_tensor_list {
    cg_tensor **items;
    int64_t n, cap;
} cg_tensor_list;
/* Appends t; false (nothing changed) if memory ran out. */
bool cg_tensor_list_push(cg_tensor_list *l, cg_tensor *t);

/* Aligned buffer allocation through the per-thread pool. */
float *cg_floats_alloc(int64_t n);
void cg_floats_free(float *p, int64_t n);
/* Frees the autograd's per-thread work lists (src/autograd/backward.c); run
 * when a thread that used cgrad ends. */
void cg_backward_thread_free(void);
/* Maps in the pages of a big fresh buffer up front (see tensor.c): for a
 * buffer about to be filled whole, e.g. a loaded dataset. */
void cg_prefault(void *buf, size_t bytes);

/* CG_OK if every idx[0..n) is a row of t (0 <= idx < t's first dim), else
 * a cg_fail naming op, the first bad index and its position. */
cg_status cg_check_rows(const char *op, const cg_tensor *t, const int64_t *idx, int64_t n);

/* Normalises a possibly negative dim for a rank-ndim tensor; -1 + cg_fail if out of range. */
int cg_norm_dim(const char *op, int dim, int ndim);

/* ---- broadcasting (src/ops/broadcast.c) ---- */

/*
 * A broadcast of up to 3 inputs to one output shape, NumPy's rules: align
 * shapes at the right; a dim of 1 stretches. Adjacent dims that every input
 * walks the same way are merged, so [N,1] + [1] becomes one run of N.
 * The output is walked as `rows` runs of `inner` elements; within a run,
 * input i steps by inner_stride[i] (0 or 1).
 */
typedef struct cg_bcast {
    int n_in;
    int ndim;                               /* after merging */
    int64_t shape[CG_MAX_DIMS];
    int64_t stride[3][CG_MAX_DIMS];         /* 0 where input i broadcasts */
    int64_t out_shape[CG_MAX_DIMS];         /* the output shape, unmerged */
    int out_ndim;
    int64_t rows, inner;
    int64_t inner_stride[3];
} cg_bcast;

cg_status cg_bcast_init(cg_bcast *p, const char *op, cg_tensor *const *ins, int n);
/* Same, from raw shapes. */
cg_status cg_bcast_init_shapes(cg_bcast *p, const char *op, const int64_t *const *shapes,
                               const int *ndims, int n);
/* Offsets into each input of the first element of run `row`. */
void cg_bcast_row_offsets(const cg_bcast *p, int64_t row, int64_t off[3]);

/*
 * dst (shape dst_shape) += src (shape src_shape) summed over the dims that
 * dst broadcasts: the adjoint of broadcasting, used by every broadcasting
 * op's backward and by the sum reductions. Sums in double.
 */
cg_status cg_sum_to_shape(float *dst, const int64_t *dst_shape, int dst_ndim,
                          const float *src, const int64_t *src_shape, int src_ndim);
/* The sum of x[0..n) in double. 8 interleaved accumulators (lane j takes
 * i = j mod 8) break the chain of dependent adds, so the loop runs at load
 * speed in vector registers instead of one add latency per element; the
 * lanes are then added in order, so the result is the same on every run.
 * Inline: small planes (a pool's 2x2 to 7x7) are summed many at a time,
 * where a call costs more than the sum. */
static inline double cg_sum_floats(const float *x, int64_t n) {
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    double s = 0.0;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

/* ---- scalar math shared by ops (src/ops/unary.c, src/nn/loss.c) ---- */

/* Sigmoid that never overflows: with e = exp(-|x|) in (0, 1],
 * x >= 0: 1 / (1 + e^-x) = 1 / (1 + e);  x < 0: e^x / (1 + e^x) = e / (1 + e).
 * One exp, a select instead of a branch, so loops over it vectorize. */
static inline float cg_sigmoidf(float x) {
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* ---- threads ---- */
/* Below this many elements (or flops) a loop stays on one thread. The loops
 * it guards are memory-bound: 2^18 floats (1 MiB) take ~50 us on one core,
 * enough to pay for waking a second thread (1-2 us idle, far more when
 * another process holds its core). A training step's elementwise ops are
 * well below it; there the parallel work is the GEMM, matrix-vector products
 * and the batch's row gather, each with a threshold of its own and under the
 * straggler guard below. */
#define CG_PARALLEL_MIN (1 << 18)

/*
 * The straggler guard (src/kernels/threads.c), for parallel regions whose
 * result does not depend on the thread count (GEMM, row gathers): use
 * cg_guard_threads(nt) threads - nt, or 1 while the guard holds - and after
 * a region that ran on several, call cg_guard_report(t0, t_own) with t0 =
 * cg_seconds() taken before it and t_own when thread 0 found no work left.
 */
double cg_seconds(void);
int cg_guard_threads(int nt);
void cg_guard_report(double t0, double t_own);
/* Runs body(ctx, lo, hi) over [0, units) on nt threads, or on one while
 * the guard holds, and reports the region's timing to the guard: the whole
 * protocol above in one call. Thread t owns the t-th of nt equal shares,
 * cut into `chunks` pieces; a thread done with its own share takes pieces
 * from the far end of the others' (see threads.c). chunks = 1 is a plain
 * static split whose shares can still be taken whole by an idle thread.
 * body must give the same result for a unit whichever call covers it. */
typedef void (*cg_range_fn)(void *ctx, int64_t lo, int64_t hi);
void cg_guarded_for(int nt, int64_t units, int chunks, cg_range_fn body, void *ctx);
/* The same, with setup(ctx, t, n) first run by each thread t of the n that
 * take part (n = 1 when the region runs on one), and all of them done with
 * it before any piece starts: for work the pieces share, cut among the
 * threads (the GEMM's packed B). */
typedef void (*cg_setup_fn)(void *ctx, int t, int n);
void cg_guarded_for_setup(int nt, int64_t units, int chunks, cg_setup_fn setup, cg_range_fn body,
                          void *ctx);
/* On by default. Off, every region gets the threads it asks for: a fixed
 * plan, for tests that count what a step does on a given thread count. */
void cg_guard_enable(bool on);
/* Tests: the workers (not thread 0) of every cg_guarded_for region start
 * this many microseconds late, so thread 0 takes their pieces; 0: off. */
void cg_threads_delay_workers(int microseconds);

/* ---- GEMM kernel choice (src/kernels/gemm.c) ---- */
/* Makes cg_gemm use the named kernel ("generic", "avx2-fma", "openblas" when
 * built with -DCGRAD_BLAS=openblas), or with NULL the default: $CGRAD_GEMM's
 * ("generic" or "avx2-fma") if set, else OpenBLAS if built with it, else the
 * fastest this CPU runs.
 * Returns false, changing nothing, if that kernel cannot run here. */
bool cg_gemm_use_kernel(const char *name);
/* On by default: a mostly-zero A skips its all-zero steps (the same bits,
 * see gemm.c). Off, always dense: for tests that compare the two. */
void cg_gemm_sparse_enable(bool on);
/* How many pieces of GEMM work have run sparse so far (for tests). */
int64_t cg_gemm_sparse_pieces(void);

/* ---- convolution path (src/ops/conv.c) ---- */
/* Makes cg_tensor_conv2d use "direct" (its own register-tile kernels:
 * AVX-512 ones where the CPU has them, else AVX2), "direct-avx2" (AVX2 ones only),
 * "im2col" (columns through cg_gemm), or with NULL the default: per shape
 * and pass, whichever measured faster. Returns false, changing nothing, if
 * that path cannot run here (direct needs AVX2 + FMA). For tests and
 * benchmarks. */
bool cg_conv_use_path(const char *name);

#endif /* CGRAD_INTERNAL_H */
