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
 * run its ~100 us share, and every region of a training step waits with
 * it: two threads then run many times slower than one (seen: an MLP epoch
 * at 690 ms instead of 27 ms). So thread 0 times its own share and the
 * whole region, and keeps a running mean (weight 1/8) of how much longer it
 * waited at the barrier than it worked. On a quiet machine the wait is a
 * few us against ~100 us of work and the mean stays well below zero; a
 * single late worker (a few hundred us, now and then) does not turn it.
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
static _Atomic double lag;              /* running mean of wait - own share, s */
static atomic_bool team_started;        /* the first region also starts the team */

double cg_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static atomic_bool guard_off;

void cg_guard_enable(bool on) { atomic_store(&guard_off, !on); }

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

void cg_guarded_for(int nt, int64_t units, cg_range_fn body, void *ctx) {
    nt = cg_guard_threads(nt);
    if (nt <= 1 || units <= 1) {
        body(ctx, 0, units);
        return;
    }
    const double t0 = cg_seconds();
    double t_own = t0;
#pragma omp parallel num_threads(nt)
    {
        /* Part t of n gets [units*t/n, units*(t+1)/n): the same cut for a
         * given thread count, so results never depend on timing. */
        const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
        const int64_t lo = units * t / n, hi = units * (t + 1) / n;
        if (lo < hi) body(ctx, lo, hi);
        if (t == 0) t_own = cg_seconds();
    }
    cg_guard_report(t0, t_own);
}
