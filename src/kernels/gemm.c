/*
 * gemm.c - C = alpha * op(A) @ op(B) + beta * C, row-major: the driver
 * behind matmul, and the portable kernel.
 *
 * The driver is the GotoBLAS / BLIS loop nest (Goto & van de Geijn 2008,
 * "Anatomy of high-performance matrix multiplication"):
 *
 *   for jc over N in NC blocks            B block KC x NC -> L3
 *     for pc over K in KC blocks          pack B into NR-column micro-panels
 *       for ic over M in MC blocks        A block MC x KC -> L2 (packed or not)
 *         for jr over the NR panels       B micro-panel KC x NR -> L1
 *           for ir over the MR panels     microkernel: MR x NR tile of C in registers
 *
 * Packing turns transposes into a copy order, so callers never transpose.
 * Panels are zero-padded to MR / NR, so tails cost padding, not branches.
 * Matrix-vector shapes (N == 1 or M == 1) take a gemv kernel instead: a
 * padded 16-wide tile would do 16x the useful work there.
 *
 * Threads: C is cut into one rectangle per thread, along M or N at tile
 * boundaries, and each thread runs the whole loop nest on its rectangle
 * with its own pack buffers (no barriers). Since each C element's sum is a
 * fixed FMA chain (see gemm_kernel.h), 1 and 2 threads give identical bits.
 */
#include "cgrad_internal.h"
#include "kernels/gemm_kernel.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>

/* Below this many flops (2mnk) a call stays on one thread. Waking the
 * OpenMP team costs microseconds on idle cores (much more when another
 * process holds the second core), about what 2^20 flops take on one core,
 * so below it the split has little to gain. */
#define GEMM_PARALLEL_MIN_FLOPS (1 << 20)
/* A matrix-vector product is memory-bound (one multiply-add per element of A
 * read), so 2^18 flops is already ~0.5 MB of A, tens of microseconds: a
 * linear model's batch, 256 x 784, goes on two threads, each on the rows the
 * row-gather (index_select) wrote from its own core. */
#define GEMV_PARALLEL_MIN_FLOPS (1 << 18)

/* Packed B up to this many floats (128 KiB, a quarter of a 512 KiB L2)
 * is packed over all of K at once; see cg_gemm. */
#define SMALL_B_FLOATS (32 * 1024)

/* ------------------------------------------------------------------ */
/* The portable kernel                                                 */
/* ------------------------------------------------------------------ */

/* 4x8: 8 SSE registers of accumulators on any x86-64 (16 registers), and
 * loops plain enough that compilers vectorise them on other targets too. */
enum { G_MR = 4, G_NR = 8, G_COLS = 64 };

/* The portable kernel's single C-update formula (C unread when beta == 0). */
static inline float scale_add(float ab, const float *c, float alpha, float beta) {
    return beta == 0.0f ? alpha * ab : alpha * ab + beta * *c;
}

static void ukr_generic(int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b,
                        float *c, int64_t ldc, float alpha, float beta, int mr, int nr) {
    float ab[G_MR][G_NR] = {{0}};
    for (int64_t p = 0; p < k; p++, a += csa, b += G_NR)
        for (int i = 0; i < G_MR; i++) {
            const float ai = a[i * rsa];
            /* Without the hint GCC vectorises over p with shuffles, 10x slower. */
#pragma omp simd
            for (int j = 0; j < G_NR; j++) ab[i][j] += ai * b[j];
        }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] = scale_add(ab[i][j], &c[i * ldc + j], alpha, beta);
}

/* Dot products with 8 running sums (lane j takes p = j mod 8), so the loop
 * vectorises without reassociating anything, then summed in lane order. */
static void gemv_rows_generic(int64_t m, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *x, float beta, float *y, int64_t incy) {
    for (int64_t i = 0; i < m; i++) {
        const float *row = a + i * lda;
        float s[8] = {0};
        int64_t p = 0;
        for (; p + 8 <= k; p += 8)
            for (int j = 0; j < 8; j++) s[j] += row[p + j] * x[p + j];
        for (int j = 0; p + j < k; j++) s[j] += row[p + j] * x[p + j];
        float t = 0.0f;
        for (int j = 0; j < 8; j++) t += s[j];
        y[i * incy] = scale_add(t, &y[i * incy], alpha, beta);
    }
}

/* A(i, p) = a[p*lda + i]: for each p, add a contiguous row slice into
 * G_COLS running sums. */
static void gemv_cols_generic(int64_t m, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *x, float beta, float *y, int64_t incy) {
    for (int64_t i = 0; i < m; i += G_COLS) {
        int w = m - i < G_COLS ? (int)(m - i) : G_COLS;
        float s[G_COLS] = {0};
        for (int64_t p = 0; p < k; p++) {
            const float *row = a + p * lda + i;
            for (int j = 0; j < w; j++) s[j] += row[j] * x[p];
        }
        for (int j = 0; j < w; j++)
            y[(i + j) * incy] = scale_add(s[j], &y[(i + j) * incy], alpha, beta);
    }
}

static const cg_gemm_kernel generic_kernel = {
    .name = "generic",
    .mr = G_MR,
    .nr = G_NR,
    .mc = 128,
    .kc = 256,
    .nc = 4096,
    .ukr = ukr_generic,
    .gemv_rows = gemv_rows_generic,
    .gemv_cols = gemv_cols_generic,
};

/* ------------------------------------------------------------------ */
/* Kernel choice                                                       */
/* ------------------------------------------------------------------ */

static _Atomic(const cg_gemm_kernel *) chosen;

#ifdef CGRAD_BLAS_OPENBLAS
/* OpenBLAS as one of the choices: only its name is used, since cg_gemm
 * hands it the whole call (gemm_openblas.c). */
static const cg_gemm_kernel openblas_choice = {.name = CG_GEMM_OPENBLAS_NAME};
#endif

/* The fastest of cgrad's own kernels this CPU runs. */
static const cg_gemm_kernel *own_kernel(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cg_gemm_avx2_kernel())
        return cg_gemm_avx2_kernel();
#endif
    return &generic_kernel;
}

/* $CGRAD_GEMM=generic or avx2-fma picks one of ours; otherwise OpenBLAS
 * when built with it, else our fastest. */
static const cg_gemm_kernel *default_kernel(void) {
    const char *env = getenv("CGRAD_GEMM");
    if (env && strcmp(env, "generic") == 0) return &generic_kernel;
#ifdef CGRAD_BLAS_OPENBLAS
    if (!env || strcmp(env, "avx2-fma") != 0) return &openblas_choice;
#endif
    return own_kernel();
}

static const cg_gemm_kernel *kernel(void) {
    const cg_gemm_kernel *k = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!k) {
        /* Two threads racing here compute the same answer. */
        k = default_kernel();
        atomic_store_explicit(&chosen, k, memory_order_release);
    }
    return k;
}

bool cg_gemm_use_kernel(const char *name) {
    const cg_gemm_kernel *k = NULL;
    if (!name) {
        k = default_kernel();
    } else if (strcmp(name, generic_kernel.name) == 0) {
        k = &generic_kernel;
#ifdef CGRAD_BLAS_OPENBLAS
    } else if (strcmp(name, openblas_choice.name) == 0) {
        k = &openblas_choice;
#endif
    } else if (cg_gemm_avx2_kernel() && strcmp(name, cg_gemm_avx2_kernel()->name) == 0) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            k = cg_gemm_avx2_kernel();
#endif
    }
    if (!k) return false;
    atomic_store_explicit(&chosen, k, memory_order_release);
    return true;
}

const char *cg_gemm_kernel_name(void) { return kernel()->name; }

/* ------------------------------------------------------------------ */
/* Per-thread workspace                                                */
/* ------------------------------------------------------------------ */

/*
 * Pack buffers are per thread and kept between calls, so a training loop
 * allocates nothing in the steady state. The pointer also goes into a
 * pthread key whose destructor frees it when the thread ends; the main
 * thread's buffer stays reachable (through the TLS pointer) until exit.
 */
static _Thread_local float *ws_ptr;
static _Thread_local size_t ws_cap; /* floats */
static pthread_key_t ws_key;
static bool ws_key_ok;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

/* Runs on the exiting thread itself, so it may clear that thread's TLS. */
static void ws_free(void *p) {
    free(p);
    ws_ptr = NULL;
    ws_cap = 0;
}
static void ws_key_init(void) { ws_key_ok = pthread_key_create(&ws_key, ws_free) == 0; }

/* At least n floats, 64-byte aligned; NULL if out of memory. */
static float *workspace(size_t n) {
    if (n <= ws_cap) return ws_ptr;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) return NULL;
    pthread_once(&ws_once, ws_key_init);
    if (ws_key_ok && pthread_setspecific(ws_key, p) != 0) {
        free(p);
        return NULL;
    }
    free(ws_ptr);
    ws_ptr = p;
    ws_cap = bytes / sizeof(float);
    return p;
}

/* ------------------------------------------------------------------ */
/* The driver                                                          */
/* ------------------------------------------------------------------ */

typedef struct gemm_job {
    const cg_gemm_kernel *kr;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int64_t ldc;
    /* op(A)(i, p) = a[i*a_rs + p*a_cs]; op(B)(p, j) = b[p*b_ps + j*b_js]. */
    int64_t a_rs, a_cs, b_ps, b_js;
    int64_t kc; /* K block: from k alone, it fixes where each sum is split */
} gemm_job;

static inline int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
static inline int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }

/*
 * dst[p*R + r] = src[r*rs + p*cs] for r < rows, 0 for rows <= r < R, p < k:
 * one zero-padded micro-panel. Packs A (r = row) and B (r = column) alike;
 * the loop order follows whichever stride is 1, so reads stay contiguous.
 */
static void pack_panel(const float *src, int64_t rs, int64_t cs, int rows, int R, int64_t k,
                       float *dst) {
    if (rs == 1) {
        for (int64_t p = 0; p < k; p++) {
            const float *s = src + p * cs;
            float *d = dst + p * R;
            for (int r = 0; r < rows; r++) d[r] = s[r];
            for (int r = rows; r < R; r++) d[r] = 0.0f;
        }
    } else {
        for (int r = 0; r < rows; r++) {
            const float *s = src + r * rs;
            for (int64_t p = 0; p < k; p++) dst[p * R + r] = s[p * cs];
        }
        for (int r = rows; r < R; r++)
            for (int64_t p = 0; p < k; p++) dst[p * R + r] = 0.0f;
    }
}

/*
 * Whether to pack A. Packing copies the A block once per KC x NC block of
 * B; it pays when the block is reused over many NR panels. With few
 * columns, the microkernel reads A in place through its strides (as BLIS's
 * "sup" kernels do) and only the ragged last MR rows are packed.
 */
static bool want_packed_a(const gemm_job *g, int64_t ncols) { return ncols > 4 * g->kr->nr; }

/* Floats of workspace for the rectangle [m0,m1) x [n0,n1). */
static size_t block_workspace(const gemm_job *g, int64_t mrows, int64_t ncols) {
    const cg_gemm_kernel *kr = g->kr;
    int64_t bsize = g->kc * round_up(min64(kr->nc, ncols), kr->nr);
    /* Read in place, A needs room for its ragged last MR rows only. */
    int64_t arows = want_packed_a(g, ncols) ? round_up(min64(kr->mc, mrows), kr->mr) : kr->mr;
    return (size_t)(bsize + g->kc * arows);
}

/* The plain triple loop, for when no workspace can be had. */
static void gemm_unblocked(const gemm_job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    for (int64_t i = m0; i < m1; i++)
        for (int64_t j = n0; j < n1; j++) {
            float s = 0.0f;
            for (int64_t p = 0; p < g->k; p++)
                s += g->a[i * g->a_rs + p * g->a_cs] * g->b[p * g->b_ps + j * g->b_js];
            float *c = &g->c[i * g->ldc + j];
            *c = scale_add(s, c, g->alpha, g->beta);
        }
}

/*
 * Rows [m0, m1) of C's columns [jc, jc + nc), for the K block [pc, pc + kc)
 * whose B panels are packed at bp: the ic / ir / jr loops of the nest.
 * ap has room for one MC x KC block of A. With `steps` (room for kc), each
 * tile's chains skip the steps where all of its A is zero (sparse A).
 */
static void gemm_rows(const gemm_job *g, int64_t m0, int64_t m1, int64_t jc, int64_t nc,
                      int64_t pc, int64_t kc, const float *bp, float *ap, bool pack_a,
                      int32_t *steps) {
    const cg_gemm_kernel *kr = g->kr;
    const int MR = kr->mr, NR = kr->nr;
    /* Later K blocks add onto what the first one wrote. */
    const float beta = pc == 0 ? g->beta : 1.0f;
    for (int64_t ic = m0; ic < m1; ic += kr->mc) {
        const int64_t mc = min64(kr->mc, m1 - ic);
        const float *ablk = g->a + ic * g->a_rs + pc * g->a_cs;
        /* Panels [0, full) are read in place unless packing. */
        const int64_t full = pack_a ? 0 : mc / MR * MR;
        for (int64_t ir = full; ir < mc; ir += MR)
            pack_panel(ablk + ir * g->a_rs, g->a_rs, g->a_cs, (int)min64(MR, mc - ir), MR, kc,
                       ap + (ir - full) * kc);

        for (int64_t ir = 0; ir < mc; ir += MR) {
            const int mr = (int)min64(MR, mc - ir);
            const bool in_place = ir < full;
            const float *a = in_place ? ablk + ir * g->a_rs : ap + (ir - full) * kc;
            const int64_t rs = in_place ? g->a_rs : 1, cs = in_place ? g->a_cs : MR;
            /* One list per tile, for all its panels of B. */
            const int64_t n_steps = steps ? kr->nonzero_steps(kc, a, rs, cs, steps) : -1;
            for (int64_t jr = 0; jr < nc; jr += NR) {
                const int nr = (int)min64(NR, nc - jr);
                float *c = g->c + (ic + ir) * g->ldc + jc + jr;
                if (n_steps >= 0)
                    kr->ukr_steps(n_steps, steps, a, rs, cs, bp + jr * kc, c, g->ldc, g->alpha,
                                  beta, mr, nr);
                else
                    kr->ukr(kc, a, rs, cs, bp + jr * kc, c, g->ldc, g->alpha, beta, mr, nr);
            }
        }
    }
}

/* B's K block [pc, pc + kc) x columns [jc, jc + nc) into NR-column panels at bp. */
static void pack_b(const gemm_job *g, int64_t jc, int64_t nc, int64_t pc, int64_t kc, float *bp) {
    const int NR = g->kr->nr;
    for (int64_t jr = 0; jr < nc; jr += NR)
        pack_panel(g->b + pc * g->b_ps + (jc + jr) * g->b_js, g->b_js, g->b_ps,
                   (int)min64(NR, nc - jr), NR, kc, bp + jr * kc);
}

/* The loop nest over one rectangle of C; m0 and n0 sit on tile boundaries. */
static void gemm_block(const gemm_job *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const cg_gemm_kernel *kr = g->kr;
    float *ws = workspace(block_workspace(g, m1 - m0, n1 - n0));
    if (!ws) {
        gemm_unblocked(g, m0, m1, n0, n1);
        return;
    }
    float *bp = ws;
    float *ap = ws + g->kc * round_up(min64(kr->nc, n1 - n0), kr->nr);
    const bool pack_a = want_packed_a(g, n1 - n0);
    for (int64_t jc = n0; jc < n1; jc += kr->nc) {
        const int64_t nc = min64(kr->nc, n1 - jc);
        for (int64_t pc = 0; pc < g->k; pc += g->kc) {
            const int64_t kc = min64(g->kc, g->k - pc);
            pack_b(g, jc, nc, pc, kc, bp);
            gemm_rows(g, m0, m1, jc, nc, pc, kc, bp, ap, pack_a, NULL);
        }
    }
}

/* Threads for `flops` of work cut into `units` pieces; one below min_flops. */
static int threads_for(double flops, double min_flops, int64_t units) {
    int nt = cg_get_num_threads();
    if (flops < min_flops || omp_in_parallel()) nt = 1;
    if (nt > units) nt = (int)units;
    return nt < 1 ? 1 : nt;
}

/* Tiles [lo, hi) of C along the cut dimension, for cg_guarded_for. */
typedef struct blocked_part {
    const gemm_job *g;
    bool cut_n;
    int64_t units; /* tiles along the cut dimension */
} blocked_part;

/* Every thread of the team sizes its workspace for the largest piece
 * before any piece runs. Without this a worker that had its piece stolen
 * in every step so far (a starved thread: always, under valgrind) would
 * grow its workspace in whichever later step it first gets one - an
 * allocation in a training loop's steady state. */
static void reserve_block(void *ctx, int t, int n) {
    (void)t;
    const blocked_part *p = ctx;
    const gemm_job *g = p->g;
    const int64_t piece = (p->units + n - 1) / n; /* pieces are never larger */
    if (p->cut_n)
        (void)workspace(block_workspace(g, g->m, min64(piece * g->kr->nr, g->n)));
    else
        (void)workspace(block_workspace(g, min64(piece * g->kr->mr, g->m), g->n));
}

static void gemm_part(void *ctx, int64_t lo, int64_t hi) {
    const blocked_part *p = ctx;
    const gemm_job *g = p->g;
    if (p->cut_n)
        gemm_block(g, 0, g->m, lo * g->kr->nr, min64(hi * g->kr->nr, g->n));
    else
        gemm_block(g, lo * g->kr->mr, min64(hi * g->kr->mr, g->m), 0, g->n);
}

/*
 * The skinny shapes of a small network's training step (256 x 784 x 30,
 * 784 x 256 x 30: a tenth of a millisecond each) have all of B in one packed block (~100 KB
 * for 784 x 30). The threads pack it once, together, each its share of
 * the NR-column panels, into one buffer they all then read; their rows of
 * C go in pieces through cg_guarded_for's work stealing, since on a shared
 * machine the two threads' speeds differ by 5-15% from call to call and
 * with a fixed split the faster one would idle for the difference.
 */
#define ROW_PIECES 6

/*
 * Sparse A. In a training batch of MNIST 81% of the pixels are zero, and a
 * tile of 6 rows is all zero at 58% of the 784 steps of the forward
 * product (256 x 784 x 30) and at 66% of the 256 steps of the weight
 * gradient's (784 x 256 x 30, A^T: 6 neighbouring pixels of a batch row).
 * The kernel's ukr_steps runs a tile's chains over the other steps only:
 * a zero term adds nothing to a sum, so the bits are the dense kernel's
 * (B finite: 0 * inf would be NaN; a B with an infinity or NaN stays
 * dense). One corner differs in sign only: a sum that is -0.0 (a product
 * that underflowed) stays -0.0 where a later zero term would make it
 * +0.0; the two compare equal. Whether A is sparse enough is read off a
 * few of its stored rows.
 */
#define SPARSE_SAMPLE_ROWS 8
static atomic_bool sparse_off;
static atomic_llong sparse_pieces; /* pieces run sparse, for tests */

void cg_gemm_sparse_enable(bool on) { atomic_store(&sparse_off, !on); }
int64_t cg_gemm_sparse_pieces(void) { return atomic_load(&sparse_pieces); }

/* At least two thirds of the sampled elements of A are zero. */
static bool sparse_a(const gemm_job *g) {
    if (!g->kr->nonzero_steps || atomic_load_explicit(&sparse_off, memory_order_relaxed))
        return false;
    /* A's stored rows: op(A)'s rows (a_cs == 1) or its columns. */
    const bool by_rows = g->a_cs == 1;
    const int64_t rows = by_rows ? g->m : g->k, len = by_rows ? g->k : g->m;
    const int64_t stride = by_rows ? g->a_rs : g->a_cs, sample = min64(SPARSE_SAMPLE_ROWS, rows);
    int64_t zeros = 0;
    for (int64_t s = 0; s < sample; s++) {
        const float *row = g->a + rows * s / sample * stride;
        for (int64_t i = 0; i < len; i++) zeros += row[i] == 0.0f;
    }
    return 3 * zeros >= 2 * sample * len;
}

/* No infinity or NaN, i.e. no exponent of all ones; on the bits, so the
 * loop vectorises (a float sum may not be reordered). */
static bool all_finite(const float *x, int64_t n) {
    uint32_t special = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        special |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !special;
}

typedef struct rows_part {
    const gemm_job *g;
    float *bp;              /* the shared packed B */
    bool sparse;            /* A is mostly zeros ...                   */
    atomic_bool b_special;  /* ... and, set while packing, B is not finite */
} rows_part;

/* Floats of workspace a piece needs: room for the ragged last rows of A
 * (or a packed A block), then for a tile's list of steps (k int32s). */
static size_t piece_workspace(const gemm_job *g, int64_t *a_room) {
    const cg_gemm_kernel *kr = g->kr;
    *a_room = g->kc * (want_packed_a(g, g->n) ? round_up(kr->mc, kr->mr) : kr->mr);
    return (size_t)(*a_room + g->k);
}

static void pack_b_share(void *ctx, int t, int n) {
    rows_part *p = ctx;
    const gemm_job *g = p->g;
    /* Every thread of the team makes its room for pieces here, whether or
     * not it gets to take one: a thread that first took a piece in a later
     * step would allocate in a training loop's steady state. */
    int64_t a_room;
    (void)workspace(piece_workspace(g, &a_room));
    const int64_t NR = g->kr->nr, panels = (g->n + NR - 1) / NR;
    const int64_t j0 = panels * t / n * NR, j1 = min64(panels * (t + 1) / n * NR, g->n);
    if (j0 < j1) {
        pack_b(g, j0, j1 - j0, 0, g->k, p->bp + j0 * g->k);
        /* The panels just packed: j1 - j0 columns, padded to whole panels. */
        if (p->sparse && !all_finite(p->bp + j0 * g->k, round_up(j1 - j0, NR) * g->k))
            atomic_store_explicit(&p->b_special, true, memory_order_relaxed);
    }
}

static void gemm_rows_part(void *ctx, int64_t lo, int64_t hi) {
    rows_part *p = ctx;
    const gemm_job *g = p->g;
    const cg_gemm_kernel *kr = g->kr;
    const int64_t m0 = lo * kr->mr, m1 = min64(hi * kr->mr, g->m);
    const bool pack_a = want_packed_a(g, g->n);
    int64_t a_room;
    void *ws = workspace(piece_workspace(g, &a_room));
    if (!ws) {
        gemm_unblocked(g, m0, m1, 0, g->n);
        return;
    }
    float *ap = ws;
    int32_t *steps = (int32_t *)((char *)ws + (size_t)a_room * sizeof(float));
    /* The setup's barrier has ordered every thread's b_special before this. */
    const bool skip = p->sparse && !atomic_load_explicit(&p->b_special, memory_order_relaxed);
    if (skip) atomic_fetch_add_explicit(&sparse_pieces, 1, memory_order_relaxed);
    gemm_rows(g, m0, m1, 0, g->n, 0, g->k, p->bp, ap, pack_a, skip ? steps : NULL);
}

static void gemm_blocked(const gemm_job *g) {
    const int64_t MR = g->kr->mr, NR = g->kr->nr;
    const int64_t um = (g->m + MR - 1) / MR, un = (g->n + NR - 1) / NR;
    /* Cut along the dimension with more tiles: more even, and each thread
     * still sees whole rows or columns of tiles. */
    const bool cut_n = un > um;
    const int64_t units = cut_n ? un : um;
    blocked_part part = {g, cut_n, units};
    const double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k;
    const int nt = threads_for(flops, GEMM_PARALLEL_MIN_FLOPS, units);
    if (!part.cut_n && g->kc == g->k && g->n <= g->kr->nc) { /* all of B in one block */
        /* From the calling thread's pool: the same size every step, so a
         * training loop gets it back without a malloc. */
        const int64_t bsize = g->k * round_up(g->n, NR);
        rows_part rows = {g, cg_floats_alloc(bsize), sparse_a(g), false};
        if (rows.bp) {
            cg_guarded_for_setup(nt, units, ROW_PIECES, pack_b_share, gemm_rows_part, &rows);
            cg_floats_free(rows.bp, bsize);
            return;
        }
    }
    /* Otherwise one piece per thread: a piece re-packs its operands, which
     * costs more than stealing saves in a call this long. */
    cg_guarded_for_setup(nt, units, 1, reserve_block, gemm_part, &part);
}

/* Rows [64 lo, 64 hi) of a matrix-vector product, for cg_guarded_for. */
typedef struct gemv_part {
    cg_gemv_fn fn;
    int64_t m, k;
    float alpha;
    const float *a;
    int64_t rs, lda;
    const float *x;
    float beta;
    float *y;
    int64_t incy;
} gemv_part;

static void gemv_rows_part(void *ctx, int64_t lo, int64_t hi) {
    const gemv_part *p = ctx;
    const int64_t i0 = lo * 64, i1 = min64(hi * 64, p->m);
    if (i0 < i1)
        p->fn(i1 - i0, p->k, p->alpha, p->a + i0 * p->rs, p->lda, p->x, p->beta,
              p->y + i0 * p->incy, p->incy);
}

/*
 * y[i*incy] = alpha * sum_p M(i, p) x[p] + beta * y[i*incy], i < m, with
 * M(i, p) = a[i*rs + p*cs] (one of rs, cs is 1) and x[p] = x[p*incx].
 */
static void gemv(const cg_gemm_kernel *kr, int64_t m, int64_t k, float alpha, const float *a,
                 int64_t rs, int64_t cs, const float *x, int64_t incx, float beta, float *y,
                 int64_t incy) {
    if (incx != 1 && k > 1) {
        /* Gather a strided x (a column of B) once; it is read m times. */
        float *xs = workspace((size_t)k);
        if (!xs) {
            const gemm_job g = {.m = m, .n = 1, .k = k, .alpha = alpha, .beta = beta,
                                .a = a, .b = x, .c = y, .ldc = incy,
                                .a_rs = rs, .a_cs = cs, .b_ps = incx, .b_js = 0};
            gemm_unblocked(&g, 0, m, 0, 1);
            return;
        }
        for (int64_t p = 0; p < k; p++) xs[p] = x[p * incx];
        x = xs;
    }
    /* One of rs, cs is 1: which one picks the kernel. */
    const bool rows = cs == 1;
    gemv_part part = {rows ? kr->gemv_rows : kr->gemv_cols, m, k, alpha, a, rs, rows ? rs : cs,
                      x, beta, y, incy};
    /* Cut rows in blocks of 64: whole vector groups for either kernel. */
    const int64_t units = (m + 63) / 64;
    const double flops = 2.0 * (double)m * (double)k;
    cg_guarded_for(threads_for(flops, GEMV_PARALLEL_MIN_FLOPS, units), units, 2, gemv_rows_part,
                   &part);
}

/* C = beta * C (beta == 0 writes zeros, whatever C held). */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        if (beta == 0.0f)
            memset(row, 0, (size_t)n * sizeof(float));
        else
            for (int64_t j = 0; j < n; j++) row[j] *= beta;
    }
}

void cg_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
             int64_t ldc) {
    if (m < 0 || n < 0 || k < 0) {
        cg_fail(CG_ERR_ARG, "gemm: negative size m=%lld n=%lld k=%lld", (long long)m,
                (long long)n, (long long)k);
        return;
    }
    if (m == 0 || n == 0) return;
    if (!c || ldc < n) {
        cg_fail(CG_ERR_ARG, "gemm: C (%lldx%lld) %s", (long long)m, (long long)n,
                !c ? "is NULL" : "has a row stride ldc below its width");
        return;
    }
    if (k == 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    /* Stored shapes: A is m x k (k x m if trans_a), B is k x n (n x k). */
    const int64_t a_cols = trans_a ? m : k, b_cols = trans_b ? k : n;
    if (!a || !b || lda < a_cols || ldb < b_cols) {
        cg_fail(CG_ERR_ARG,
                "gemm: bad operand for %lldx%lld @ %lldx%lld: %s", (long long)m, (long long)k,
                (long long)k, (long long)n,
                !a ? "A is NULL"
                : !b ? "B is NULL"
                : lda < a_cols ? "lda is below the width of A"
                               : "ldb is below the width of B");
        return;
    }

    const cg_gemm_kernel *kr = kernel();
#ifdef CGRAD_BLAS_OPENBLAS
    if (kr == &openblas_choice) {
        if (cg_gemm_openblas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
            return;
        kr = own_kernel();
    }
#endif
    const int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
    const int64_t b_ps = trans_b ? 1 : ldb, b_js = trans_b ? ldb : 1;
    if (n == 1) {
        /* C's column = op(A) @ op(B)'s column. */
        gemv(kr, m, k, alpha, a, a_rs, a_cs, b, b_ps, beta, c, ldc);
        return;
    }
    if (m == 1) {
        /* C's row = op(A)'s row @ op(B), i.e. C^T = op(B)^T @ op(A)^T. */
        gemv(kr, n, k, alpha, b, b_js, b_ps, a, a_cs, beta, c, 1);
        return;
    }
    gemm_job g = {
        .kr = kr, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
        .a = a, .b = b, .c = c, .ldc = ldc,
        .a_rs = a_rs, .a_cs = a_cs, .b_ps = b_ps, .b_js = b_js,
    };
    /* K blocks. With few columns (a layer's 30 outputs) all of packed B is
     * small, and K goes in one block: each tile then sums its whole chain in
     * registers, with no C reload between blocks, and reads its rows of A in
     * runs long enough for the hardware prefetcher to follow (784 x 30:
     * ~15% faster than four blocks of 196). Otherwise equal blocks of at
     * most KC (784 = 4 x 196, not 3 x 256 + 16): no short last block paying
     * a full C read-modify-write for a few FMAs. kc depends on the shape
     * alone, so sums split at the same places on any number of threads. */
    const bool small_b = k * round_up(n, kr->nr) <= SMALL_B_FLOATS;
    const int64_t nblocks = small_b ? 1 : (k + kr->kc - 1) / kr->kc;
    g.kc = (k + nblocks - 1) / nblocks;
    gemm_blocked(&g);
}
