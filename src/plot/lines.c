/*
 * lines.c - line and scatter plots: one set of axes (cg_plot_lines) or
 * several side by side (cg_plot_panels).
 *
 * The ranges fit the finite points and marks with a 5 % margin each side,
 * as matplotlib's autoscale does (in log10 on a log axis). The legend goes
 * where it covers the fewest points.
 */
#include "plot/plot_internal.h"

#define MAX_TICKS 32
#define LEGEND_FONT 12.0
#define MARK_FONT 12.0

static bool usable(double x, double y, const cg_line_plot *p) {
    return isfinite(x) && isfinite(y) && (!p->log_x || x > 0) && (!p->log_y || y > 0);
}

static double point_x(const cg_plot_series *s, int64_t i) { return s->x ? s->x[i] : (double)i; }

/* The data's range on one axis, padded by 5 % (of the log range on a log
 * axis); false when there is no usable point. */
static bool data_range(const cg_line_plot *p, bool want_x, double *lo, double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int s = 0; s < p->n_series; s++) {
        const cg_plot_series *ser = &p->series[s];
        for (int64_t i = 0; i < ser->n; i++) {
            double x = point_x(ser, i), y = ser->y[i];
            if (!usable(x, y, p)) continue;
            double v = want_x ? x : y;
            a = fmin(a, v);
            b = fmax(b, v);
        }
    }
    for (int m = 0; m < p->n_marks; m++) {
        if (!usable(p->marks[m].x, p->marks[m].y, p)) continue;
        double v = want_x ? p->marks[m].x : p->marks[m].y;
        a = fmin(a, v);
        b = fmax(b, v);
    }
    if (a > b) return false;
    bool log = want_x ? p->log_x : p->log_y;
    if (log) {
        a = log10(a);
        b = log10(b);
    }
    if (b - a < 1e-12 * fmax(1, fabs(a))) { /* one value: a range around it */
        double d = fabs(a) > 0 ? fabs(a) * 0.1 : 1;
        a -= d;
        b += d;
    }
    double pad = 0.05 * (b - a);
    a -= pad;
    b += pad;
    *lo = log ? pow(10, a) : a;
    *hi = log ? pow(10, b) : b;
    return true;
}

static bool has_legend(const cg_line_plot *p) {
    if (p->no_legend) return false;
    for (int s = 0; s < p->n_series; s++)
        if (p->series[s].name) return true;
    return false;
}

static void set_rgb(cairo_t *cr, const double rgb[3]) {
    cg_cairo.set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
}

static void draw_series(cairo_t *cr, const cg_axes *ax, const cg_line_plot *p, int s) {
    const cg_plot_series *ser = &p->series[s];
    double rgb[3];
    cg_series_rgb(s, rgb);
    set_rgb(cr, rgb);
    if (ser->style != CG_SERIES_POINTS) {
        bool pen_down = false;
        for (int64_t i = 0; i < ser->n; i++) {
            double x = point_x(ser, i), y = ser->y[i];
            if (!usable(x, y, p)) {
                pen_down = false; /* a gap in the line */
                continue;
            }
            double px = cg_axes_px(ax, x), py = cg_axes_py(ax, y);
            if (pen_down) cg_cairo.line_to(cr, px, py);
            else cg_cairo.move_to(cr, px, py);
            pen_down = true;
        }
        cg_cairo.set_line_width(cr, 2);
        cg_cairo.set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        cg_cairo.stroke(cr);
    }
    if (ser->style != CG_SERIES_LINE) {
        for (int64_t i = 0; i < ser->n; i++) {
            double x = point_x(ser, i), y = ser->y[i];
            if (!usable(x, y, p)) continue;
            cg_cairo.new_sub_path(cr);
            cg_cairo.arc(cr, cg_axes_px(ax, x), cg_axes_py(ax, y), 3, 0, 2 * M_PI);
        }
        cg_cairo.fill(cr);
    }
}

static void draw_marks(cairo_t *cr, const cg_axes *ax, const cg_line_plot *p) {
    for (int m = 0; m < p->n_marks; m++) {
        const cg_plot_mark *k = &p->marks[m];
        if (!usable(k->x, k->y, p)) continue;
        double px = cg_axes_px(ax, k->x), py = cg_axes_py(ax, k->y);
        cg_cairo.set_source_rgb(cr, 0.85, 0.1, 0.1);
        cg_cairo.set_line_width(cr, 2);
        cg_cairo.new_sub_path(cr);
        cg_cairo.arc(cr, px, py, 6, 0, 2 * M_PI);
        cg_cairo.stroke(cr);
        if (!k->label) continue;
        /* Beside the ring, on the side with room for it. */
        double w = cg_text_width(cr, k->label, MARK_FONT, false);
        bool left = px + 10 + w > ax->x0 + ax->w;
        cg_draw_text(cr, k->label, left ? px - 10 : px + 10, py - 8, MARK_FONT,
                     left ? CG_ALIGN_RIGHT : CG_ALIGN_LEFT, false, false);
    }
}

/* Points of the plot inside the page rectangle (x, y, w, h). */
static int64_t points_in(const cg_axes *ax, const cg_line_plot *p, double x, double y, double w,
                         double h) {
    int64_t n = 0;
    for (int s = 0; s < p->n_series; s++) {
        const cg_plot_series *ser = &p->series[s];
        for (int64_t i = 0; i < ser->n; i++) {
            double dx = point_x(ser, i), dy = ser->y[i];
            if (!usable(dx, dy, p)) continue;
            double px = cg_axes_px(ax, dx), py = cg_axes_py(ax, dy);
            n += px >= x && px <= x + w && py >= y && py <= y + h;
        }
    }
    return n;
}

static void draw_legend(cairo_t *cr, const cg_axes *ax, const cg_line_plot *p) {
    double text_w = 0;
    int rows = 0;
    for (int s = 0; s < p->n_series; s++) {
        if (!p->series[s].name) continue;
        text_w = fmax(text_w, cg_text_width(cr, p->series[s].name, LEGEND_FONT, false));
        rows++;
    }
    const double line = LEGEND_FONT * 1.6, swatch = 24;
    double w = 10 + swatch + 8 + text_w + 10, h = rows * line + 8;
    /* Nine places, 8 px in from the frame: the corners first, then the
     * middles of the edges, then the centre; the first over the fewest
     * points wins (matplotlib's loc="best" does much the same). */
    const double xs[3] = {ax->x0 + ax->w - w - 8, ax->x0 + 8, ax->x0 + (ax->w - w) / 2};
    const double ys[3] = {ax->y0 + 8, ax->y0 + ax->h - h - 8, ax->y0 + (ax->h - h) / 2};
    static const int order[9][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}, {2, 0},
                                    {2, 1}, {0, 2}, {1, 2}, {2, 2}};
    double bx = xs[0], by = ys[0];
    int64_t best = -1;
    for (int k = 0; k < 9 && best != 0; k++) {
        double cx = xs[order[k][0]], cy = ys[order[k][1]];
        int64_t n = points_in(ax, p, cx, cy, w, h);
        if (best < 0 || n < best) {
            best = n;
            bx = cx;
            by = cy;
        }
    }
    cg_cairo.rectangle(cr, bx, by, w, h);
    cg_cairo.set_source_rgb(cr, 1, 1, 1);
    cg_cairo.fill(cr);
    cg_cairo.rectangle(cr, bx + 0.5, by + 0.5, w - 1, h - 1);
    cg_cairo.set_source_rgb(cr, 0.8, 0.8, 0.8);
    cg_cairo.set_line_width(cr, 1);
    cg_cairo.stroke(cr);
    int row = 0;
    for (int s = 0; s < p->n_series; s++) {
        if (!p->series[s].name) continue;
        double cy = by + 4 + line * (row++ + 0.5), rgb[3];
        cg_series_rgb(s, rgb);
        set_rgb(cr, rgb);
        if (p->series[s].style != CG_SERIES_POINTS) {
            cg_cairo.set_line_width(cr, 2);
            cg_cairo.move_to(cr, bx + 10, cy);
            cg_cairo.line_to(cr, bx + 10 + swatch, cy);
            cg_cairo.stroke(cr);
        }
        if (p->series[s].style != CG_SERIES_LINE) {
            cg_cairo.arc(cr, bx + 10 + swatch / 2, cy, 3, 0, 2 * M_PI);
            cg_cairo.fill(cr);
        }
        cg_cairo.set_source_rgb(cr, 0.1, 0.1, 0.1);
        cg_draw_text_mid(cr, p->series[s].name, bx + 10 + swatch + 8, cy, LEGEND_FONT,
                         CG_ALIGN_LEFT);
    }
}

static cg_status check_plot(const cg_line_plot *p, const char *op) {
    if (!p) return cg_fail(CG_ERR_ARG, "%s: no plot given", op);
    if (p->n_series < 0 || (p->n_series > 0 && !p->series) || p->n_marks < 0 ||
        (p->n_marks > 0 && !p->marks))
        return cg_fail(CG_ERR_ARG, "%s: the plot's series or marks are missing", op);
    for (int s = 0; s < p->n_series; s++)
        if (p->series[s].n < 0 || (p->series[s].n > 0 && !p->series[s].y))
            return cg_fail(CG_ERR_ARG, "%s: series %d (%s) has no y values", op, s,
                           p->series[s].name ? p->series[s].name : "unnamed");
    if (p->fix_x && !(p->x_min < p->x_max && (!p->log_x || p->x_min > 0)))
        return cg_fail(CG_ERR_ARG, "%s: the x range %g..%g is empty%s", op, p->x_min, p->x_max,
                       p->log_x ? " or not positive (log axis)" : "");
    if (p->fix_y && !(p->y_min < p->y_max && (!p->log_y || p->y_min > 0)))
        return cg_fail(CG_ERR_ARG, "%s: the y range %g..%g is empty%s", op, p->y_min, p->y_max,
                       p->log_y ? " or not positive (log axis)" : "");
    return CG_OK;
}

cg_status cg_draw_line_plot(cairo_t *cr, const cg_line_plot *p, double x, double y, double w,
                            double h, const char *op) {
    cg_status st = check_plot(p, op);
    if (st != CG_OK) return st;
    cg_axes ax = {.log_x = p->log_x, .log_y = p->log_y};
    if (p->fix_x) {
        ax.xmin = p->x_min;
        ax.xmax = p->x_max;
    } else if (!data_range(p, true, &ax.xmin, &ax.xmax)) {
        return cg_fail(CG_ERR_ARG, "%s: %s: nothing to plot (no point with finite coordinates%s)",
                       op, p->title ? p->title : "plot",
                       p->log_x || p->log_y ? " that are positive on the log axes" : "");
    }
    if (p->fix_y) {
        ax.ymin = p->y_min;
        ax.ymax = p->y_max;
    } else if (!data_range(p, false, &ax.ymin, &ax.ymax)) {
        return cg_fail(CG_ERR_ARG, "%s: %s: nothing to plot", op, p->title ? p->title : "plot");
    }
    double xt[MAX_TICKS], yt[MAX_TICKS];
    int nx = cg_axis_ticks(&ax.xmin, &ax.xmax, ax.log_x, (int)fmax(3, w / 90), false, xt,
                           MAX_TICKS);
    int ny = cg_axis_ticks(&ax.ymin, &ax.ymax, ax.log_y, (int)fmax(3, h / 60), false, yt,
                           MAX_TICKS);
    /* The left margin holds the widest y tick label and the y label. */
    double label_w = 0;
    char buf[64];
    for (int i = 0; i < ny; i++) {
        cg_tick_label(yt[i], ny > 1 ? yt[1] - yt[0] : 1, ax.log_y, buf, sizeof buf);
        label_w = fmax(label_w, cg_text_width(cr, buf, 12, false));
    }
    double left = 14 + label_w + (p->y_label ? 26 : 4), right = 20;
    double top = p->title ? 40 : 16, bottom = p->x_label ? 58 : 36;
    ax.x0 = x + left;
    ax.y0 = y + top;
    ax.w = w - left - right;
    ax.h = h - top - bottom;
    if (ax.w < 20 || ax.h < 20)
        return cg_fail(CG_ERR_ARG, "%s: a %.0f x %.0f plot is too small for its axes", op, w, h);
    cg_axes_draw(cr, &ax, xt, nx, yt, ny, p->title, p->x_label, p->y_label);

    cg_cairo.save(cr);
    cg_cairo.rectangle(cr, ax.x0, ax.y0, ax.w, ax.h);
    cg_cairo.clip(cr);
    for (int s = 0; s < p->n_series; s++) draw_series(cr, &ax, p, s);
    cg_cairo.restore(cr);
    draw_marks(cr, &ax, p);
    if (has_legend(p)) draw_legend(cr, &ax, p);
    return CG_OK;
}

cg_status cg_plot_panels(const cg_line_plot *plots, int n, int cols, const char *title,
                         int panel_width, int panel_height, const char *path) {
    const char *op = "plot";
    if (n < 1 || !plots) return cg_fail(CG_ERR_ARG, "%s: no plots to draw", op);
    if (cols <= 0 || cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int pw = panel_width > 0 ? panel_width : 480, ph = panel_height > 0 ? panel_height : 360;
    int top = title ? 36 : 0;
    if ((int64_t)pw * cols > 16384 || (int64_t)ph * rows + top > 16384)
        return cg_fail(CG_ERR_ARG, "%s: %d panels of %d x %d pixels make too large a picture",
                       op, n, pw, ph);
    cg_canvas cv;
    cg_status st = cg_canvas_open(&cv, op, path, pw * cols, ph * rows + top);
    if (st != CG_OK) return st;
    cv.title = title ? title : plots[0].title;
    if (title)
        cg_draw_text(cv.cr, title, cv.width / 2.0, 26, 18, CG_ALIGN_CENTER, true, false);
    for (int i = 0; i < n && st == CG_OK; i++)
        st = cg_draw_line_plot(cv.cr, &plots[i], (double)(i % cols) * pw,
                               top + (double)(i / cols) * ph, pw, ph, op);
    if (st != CG_OK) {
        cg_canvas_discard(&cv);
        return st;
    }
    return cg_canvas_close(&cv);
}

cg_status cg_plot_lines(const cg_line_plot *plot, int width, int height, const char *path) {
    if (width <= 0 || height <= 0) {
        width = 640;
        height = 480;
    }
    return cg_plot_panels(plot, 1, 1, NULL, width, height, path);
}
