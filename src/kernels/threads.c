/*
 * threads.c - how many threads cgrad's kernels use.
 *
 * OpenMP's own setting (omp_set_num_threads) belongs to the calling
 * thread only, so cgrad keeps its own process-wide count as well: GEMM
 * passes it explicitly (num_threads clause), and the plain
 * `#pragma omp parallel for` loops elsewhere see it through the calling
 * thread's OpenMP setting, which cg_set_num_threads also updates.
 * The straggler guard below drops regions to one thread while another
 * process keeps the second core from them.
 */
#include "cgrad_internal.h"

#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static atomic_int requested; /* 0: OpenMP's default */
static int omp_default = 1;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* OpenMP's default (OMP_NUM_THREADS or the core count), read once before
 * cgrad changes anything, so that cg_set_num_threads(0) can go back to it. */
static void read_default(void) {
    int n = omp_get_max_threads();
    omp_default = n > 0 ? n : 1;
}

void cg_set_num_threads(int n) {
    pthread_once(&default_once, read_default);
    if (n < 0) n = 0;
    atomic_store(&requested, n);
    omp_set_num_threads(n > 0 ? n : omp_default);
}

int cg_get_num_threads(void) {
    pthread_once(&default_once, read_default);
    int n = atomic_load(&requested);
    return n > 0 ? n : omp_default;
}

/*
 * The straggler guard. A parallel region ends at OpenMP's barrier, so it
 * lasts as long as its slowest thread. When another process holds the
 * other core, a worker can wait a whole scheduler slice (milliseconds) to
 * run a share of a tenth of a millisecond, and every region of a training
 * step waits with it: two threads then run many times slower than one
 * (bench/README.md, "Figures behind source comments"). Work stealing (below) absorbs a slow
 * worker, but not one stopped in the middle of a piece. So thread 0 times
 * its own work (its share and what it stole) and the whole region, and
 * keeps a running mean (weight 1/8) of how much longer it waited at the
 * barrier than it worked. On a quiet machine the wait is a few percent of
 * the work and the mean stays well below zero; a single late worker (a
 * few times the work, now and then) does not turn it.
 * When it turns positive, two threads have been losing to one: the next
 * regions run on one thread - 16 of them, doubling while it keeps
 * happening, up to 1024, the stretch halving again with each region that
 * goes well - and then two threads are tried again. Only regions whose
 * result does not depend on the thread count use it, so it changes
 * timings, never a result. (Races between callers on different threads
 * only blur the heuristic.)
 */
#define SOLO_MIN 16
#define SOLO_MAX 1024
static atomic_int solo_left;            /* regions still to run on one thread */
static atomic_int solo_next = SOLO_MIN; /* the length of the next such stretch */
static _Atomic double lag;              /* running mean of wait - own work, s */
static atomic_bool team_started;        /* the first region also starts the team */

double cg_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static atomic_bool guard_off;
static atomic_int late_us; /* workers start each region this late (tests) */

void cg_guard_enable(bool on) { atomic_store(&guard_off, !on); }
void cg_threads_delay_workers(int microseconds) {
    atomic_store(&late_us, microseconds > 0 ? microseconds : 0);
}

/* A worker held up by the scheduler, on demand: thread 0 then steals its
 * pieces, as it does on a loaded machine or under valgrind. */
static void worker_start(int t) {
    const int us = atomic_load_explicit(&late_us, memory_order_relaxed);
    if (t > 0 && us > 0) {
        struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

/* nt, or 1 while a stretch of one-thread regions lasts. */
int cg_guard_threads(int nt) {
    if (atomic_load_explicit(&guard_off, memory_order_relaxed)) return nt;
    if (nt > 1 && atomic_load_explicit(&solo_left, memory_order_relaxed) > 0) {
        atomic_fetch_sub_explicit(&solo_left, 1, memory_order_relaxed);
        return 1;
    }
    return nt;
}

/* After a region that began at t0, whose thread 0 finished its share at t_own. */
void cg_guard_report(double t0, double t_own) {
    const double t_end = cg_seconds();
    /* The first region creates the worker threads: its wait says nothing. */
    if (!atomic_exchange(&team_started, true)) return;
    const double excess = (t_end - t_own) - (t_own - t0);
    const double mean = atomic_load(&lag) * 0.875 + excess * 0.125;
    const int next = atomic_load(&solo_next);
    if (mean > 0.0) {
        atomic_store(&lag, 0.0);
        atomic_store(&solo_left, next);
        atomic_store(&solo_next, next < SOLO_MAX ? 2 * next : SOLO_MAX);
    } else {
        atomic_store(&lag, mean);
        /* Trust returns slowly: contention tends to come back. */
        if (excess < 0.0) atomic_store(&solo_next, next > SOLO_MIN ? next / 2 : SOLO_MIN);
    }
}

/*
 * Work sharing with stealing. [0, units) is cut into nt shares, one per
 * thread, fixed by the thread count alone (so thread t works on the rows
 * it gathered itself, still in its cache), and each share into up to
 * `chunks` pieces. A thread takes its own share's pieces from the front;
 * when it runs out, it takes pieces from the back of the others' shares.
 * On a shared machine two threads' speeds differ by 5-15% from one region
 * to the next, and without stealing the faster one idles at the barrier
 * for the difference; with it they end within one piece of each other.
 * The callers' work per unit does not depend on who does it, so results
 * stay the same bits on any thread count.
 */
#define MAX_SHARES 64

/* One share's pieces [front, back), both ends in one atomic word, so that
 * its owner (from the front) and a thief (from the back) never take the
 * same piece. */
typedef struct share {
    _Atomic uint64_t ends; /* front << 32 | back */
} share;

/* The next piece from the front (owner) or the back (thief); -1 if none. */
static int64_t take_piece(share *s, bool front) {
    uint64_t v = atomic_load_explicit(&s->ends, memory_order_relaxed);
    for (;;) {
        const uint64_t f = v >> 32, b = v & 0xffffffffu;
        if (f >= b) return -1;
        const uint64_t nv = front ? (f + 1) << 32 | b : f << 32 | (b - 1);
        if (atomic_compare_exchange_weak_explicit(&s->ends, &v, nv, memory_order_relaxed,
                                                  memory_order_relaxed))
            return front ? (int64_t)f : (int64_t)(b - 1);
    }
}

void cg_guarded_for(int nt, int64_t units, int chunks, cg_range_fn body, void *ctx) {
    cg_guarded_for_setup(nt, units, chunks, NULL, body, ctx);
}

void cg_guarded_for_setup(int nt, int64_t units, int chunks, cg_setup_fn setup, cg_range_fn body,
                          void *ctx) {
    nt = cg_guard_threads(nt);
    if (nt > MAX_SHARES) nt = MAX_SHARES;
    if (nt > units) nt = (int)units;
    if (nt <= 1) {
        if (setup) setup(ctx, 0, 1);
        body(ctx, 0, units);
        return;
    }
    /* Pieces of `size` units; piece p of share t starts at start[t] + p*size. */
    if (chunks < 1) chunks = 1;
    const int64_t share_len = (units + nt - 1) / nt;
    const int64_t size = (share_len + chunks - 1) / chunks;
    share shares[MAX_SHARES];
    int64_t start[MAX_SHARES + 1];
    for (int t = 0; t <= nt; t++) start[t] = units * t / nt;
    for (int t = 0; t < nt; t++)
        atomic_init(&shares[t].ends, (uint64_t)((start[t + 1] - start[t] + size - 1) / size));
    const double t0 = cg_seconds();
    double t_own = t0;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        worker_start(t);
        if (setup) {
            setup(ctx, t, n);
#pragma omp barrier
        }
        /* Its own share first, then the others' from their far ends. All
         * nt shares are visited: should OpenMP start fewer threads than
         * asked (OMP_THREAD_LIMIT, OMP_DYNAMIC), the unowned ones are
         * taken like any other. */
        for (int q = 0; q < nt; q++) {
            const int o = (t + q) % nt;
            for (int64_t p; (p = take_piece(&shares[o], q == 0)) >= 0;) {
                const int64_t lo = start[o] + p * size;
                const int64_t hi = lo + size < start[o + 1] ? lo + size : start[o + 1];
                body(ctx, lo, hi);
            }
        }
        if (t == 0) t_own = cg_seconds();
    }
    cg_guard_report(t0, t_own);
}
