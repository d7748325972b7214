/*
 * schedule.c - learning-rate (and momentum) schedules: fastai's
 * fit_one_cycle, i.e.
 *   lr:  combined_cos(pct_start, lr_max/div, lr_max, lr_max/div_final)
 *   mom: combined_cos(pct_start, mom_max, mom_min, mom_max)
 * where combined_cos(pct, a, b, c) runs SchedCos(a, b) over [0, pct) and
 * SchedCos(b, c) over [pct, 1]; at pos == pct the second phase starts, as
 * in fastai's combine_scheds (idx = the last pcts[i] <= pos).
 */
#include "cgrad_internal.h"

/* fastai's SchedCos: a + (b - a) * (1 - cos(pi x)) / 2, x in [0, 1]. */
static double cos_anneal(double a, double b, double x) {
    const double pi = 3.14159265358979323846;
    return a + (b - a) * (1.0 - cos(pi * x)) / 2.0;
}

cg_schedule cg_one_cycle(float lr_max) {
    return (cg_schedule){.kind = CG_SCHED_ONE_CYCLE,
                         .lr_max = lr_max,
                         .div = 25.0f,
                         .div_final = 1e5f,
                         .pct_start = 0.25f,
                         .mom_max = 0.95f,
                         .mom_min = 0.85f};
}

void cg_schedule_at(const cg_schedule *s, double pos, float *lr, float *mom) {
    if (!s) return;
    if (s->kind != CG_SCHED_ONE_CYCLE) {
        if (lr) *lr = s->lr_max;
        return;
    }
    if (!(pos > 0.0)) pos = 0.0; /* NaN too */
    if (pos > 1.0) pos = 1.0;
    const double pct = s->pct_start, top = s->lr_max;
    double l, m;
    if (pos < pct) {
        const double x = pos / pct;
        l = cos_anneal(top / s->div, top, x);
        m = cos_anneal(s->mom_max, s->mom_min, x);
    } else {
        const double x = pct < 1.0 ? (pos - pct) / (1.0 - pct) : 1.0;
        l = cos_anneal(top, top / s->div_final, x);
        m = cos_anneal(s->mom_min, s->mom_max, x);
    }
    if (lr) *lr = (float)l;
    if (mom) *mom = (float)m;
}
