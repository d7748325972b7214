/*
 * axes.c - the frame of a plot: data-to-page mapping, tick positions and
 * labels, grid lines, axis labels and title.
 *
 * Linear ticks are "nice" numbers: the step is 1, 2 or 5 times a power of
 * ten, chosen so that about `target` ticks cover the range (what
 * matplotlib's MaxNLocator does). Log axes tick at the powers of ten, every
 * k-th one when there are many, and at 1, 2, 5 x 10^k when the range is
 * within a decade.
 */
#include "plot/plot_internal.h"

/* On a log axis positions are linear in log10(v). */
static double axis_pos(double v, bool log) { return log ? log10(v) : v; }

double cg_axes_px(const cg_axes *a, double x) {
    double lo = axis_pos(a->xmin, a->log_x), hi = axis_pos(a->xmax, a->log_x);
    return a->x0 + (axis_pos(x, a->log_x) - lo) / (hi - lo) * a->w;
}

double cg_axes_py(const cg_axes *a, double y) {
    double lo = axis_pos(a->ymin, a->log_y), hi = axis_pos(a->ymax, a->log_y);
    return a->y0 + a->h - (axis_pos(y, a->log_y) - lo) / (hi - lo) * a->h;
}

static double nice_step(double range, int target) {
    double raw = range / (target > 0 ? target : 5);
    double mag = pow(10, floor(log10(raw)));
    double norm = raw / mag;
    return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

int cg_axis_ticks(double *lo, double *hi, bool log, int target, bool snap, double *ticks,
                  int max) {
    int n = 0;
    if (log) {
        double a = floor(log10(*lo) + 1e-9), b = ceil(log10(*hi) - 1e-9);
        if (snap) {
            *lo = pow(10, a);
            *hi = pow(10, b);
        }
        if (b - a >= 2 || (b - a >= 1 && snap)) {
            int every = (int)ceil((b - a) / (target > 0 ? target : 5));
            if (every < 1) every = 1;
            for (double e = a; e <= b && n < max; e += every) {
                double v = pow(10, e);
                if (v >= *lo * (1 - 1e-9) && v <= *hi * (1 + 1e-9)) ticks[n++] = v;
            }
            if (n >= 2) return n;
            n = 0;
        }
        /* Within about a decade: 1, 2 and 5 times each power of ten. */
        static const double mult[3] = {1, 2, 5};
        for (double e = a - 1; e <= b && n < max; e++)
            for (int k = 0; k < 3 && n < max; k++) {
                double v = mult[k] * pow(10, e);
                if (v >= *lo * (1 - 1e-9) && v <= *hi * (1 + 1e-9)) ticks[n++] = v;
            }
        return n;
    }
    double step = nice_step(*hi - *lo, target);
    if (snap) {
        *lo = floor(*lo / step + 1e-9) * step;
        *hi = ceil(*hi / step - 1e-9) * step;
    }
    for (double k = ceil(*lo / step - 1e-9); n < max; k++) {
        double v = k * step;
        if (v > *hi + step * 1e-9) break;
        ticks[n++] = fabs(v) < step * 1e-9 ? 0.0 : v; /* never "-0" */
    }
    return n;
}

void cg_tick_label(double v, double step, bool log, char *buf, size_t size) {
    if (log || fabs(v) >= 1e5 || (v != 0 && fabs(v) < 1e-4)) {
        snprintf(buf, size, "%g", v);
        return;
    }
    /* As many decimals as the step has: 0.25 steps need two, 0.5 one. */
    int dec = 0;
    while (dec < 6 && fabs(step * pow(10, dec) - rint(step * pow(10, dec))) > 1e-6 * pow(10, dec))
        dec++;
    snprintf(buf, size, "%.*f", dec, v);
}

#define TICK_FONT 12.0
#define LABEL_FONT 14.0
#define TITLE_FONT 16.0

void cg_axes_draw(cairo_t *cr, const cg_axes *a, const double *xt, int nx, const double *yt,
                  int ny, const char *title, const char *x_label, const char *y_label) {
    char buf[64];
    cg_cairo.save(cr);
    /* Grid lines, light, under everything. */
    cg_cairo.set_line_width(cr, 1);
    cg_cairo.set_source_rgb(cr, 0.88, 0.88, 0.88);
    for (int i = 0; i < nx; i++) {
        double px = round(cg_axes_px(a, xt[i])) + 0.5;
        cg_cairo.move_to(cr, px, a->y0);
        cg_cairo.line_to(cr, px, a->y0 + a->h);
    }
    for (int i = 0; i < ny; i++) {
        double py = round(cg_axes_py(a, yt[i])) + 0.5;
        cg_cairo.move_to(cr, a->x0, py);
        cg_cairo.line_to(cr, a->x0 + a->w, py);
    }
    cg_cairo.stroke(cr);

    /* Frame, tick marks and their values. */
    cg_cairo.set_source_rgb(cr, 0.15, 0.15, 0.15);
    cg_cairo.rectangle(cr, round(a->x0) + 0.5, round(a->y0) + 0.5, round(a->w), round(a->h));
    double xstep = nx > 1 ? xt[1] - xt[0] : 1, ystep = ny > 1 ? yt[1] - yt[0] : 1;
    for (int i = 0; i < nx; i++) {
        double px = round(cg_axes_px(a, xt[i])) + 0.5;
        cg_cairo.move_to(cr, px, a->y0 + a->h);
        cg_cairo.line_to(cr, px, a->y0 + a->h + 5);
    }
    for (int i = 0; i < ny; i++) {
        double py = round(cg_axes_py(a, yt[i])) + 0.5;
        cg_cairo.move_to(cr, a->x0, py);
        cg_cairo.line_to(cr, a->x0 - 5, py);
    }
    cg_cairo.stroke(cr);
    for (int i = 0; i < nx; i++) {
        cg_tick_label(xt[i], xstep, a->log_x, buf, sizeof buf);
        cg_draw_text(cr, buf, cg_axes_px(a, xt[i]), a->y0 + a->h + 8 + TICK_FONT, TICK_FONT,
                     CG_ALIGN_CENTER, false, false);
    }
    double label_w = 0;
    for (int i = 0; i < ny; i++) {
        cg_tick_label(yt[i], ystep, a->log_y, buf, sizeof buf);
        double w = cg_text_width(cr, buf, TICK_FONT, false);
        if (w > label_w) label_w = w;
        cg_draw_text_mid(cr, buf, a->x0 - 8, cg_axes_py(a, yt[i]), TICK_FONT, CG_ALIGN_RIGHT);
    }
    if (x_label)
        cg_draw_text(cr, x_label, a->x0 + a->w / 2, a->y0 + a->h + 20 + TICK_FONT + LABEL_FONT,
                     LABEL_FONT, CG_ALIGN_CENTER, false, false);
    if (y_label)
        cg_draw_text(cr, y_label, a->x0 - 14 - label_w - 6, a->y0 + a->h / 2, LABEL_FONT,
                     CG_ALIGN_CENTER, false, true);
    if (title)
        cg_draw_text(cr, title, a->x0 + a->w / 2, a->y0 - 12, TITLE_FONT, CG_ALIGN_CENTER, true,
                     false);
    cg_cairo.restore(cr);
}
