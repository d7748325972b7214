/*
 * heatmap.c - a matrix as coloured cells (a confusion matrix, weights):
 * row labels on the left, column labels under the cells, optionally each
 * cell's value written in it and a colour bar on the right.
 *
 * Colours run from the smallest to the largest finite value (imshow's
 * default); on the diverging map from -m to m, m the largest |value|, so
 * that 0 is white. Text in a cell is white where the cell is dark.
 */
#include "plot/plot_internal.h"

#define LABEL_FONT 14.0
#define TICK_FONT 12.0
#define TITLE_FONT 16.0

static void row_col_label(const char *const *labels, int i, char *buf, size_t size) {
    if (labels && labels[i]) snprintf(buf, size, "%s", labels[i]);
    else snprintf(buf, size, "%d", i);
}

/* The value's place on the map, 0..1. */
static double map_pos(double v, double lo, double hi) {
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

static void draw_colorbar(cairo_t *cr, cg_colormap cmap, double lo, double hi, double x, double y,
                          double w, double h) {
    /* 64 bands, top = high: the map as a strip. */
    const int bands = 64;
    for (int i = 0; i < bands; i++) {
        double rgb[3];
        cg_colormap_rgb(cmap, 1 - (i + 0.5) / bands, rgb);
        cg_cairo.set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cg_cairo.rectangle(cr, x, y + h * i / bands, w, h / bands + 0.5);
        cg_cairo.fill(cr);
    }
    cg_cairo.set_source_rgb(cr, 0.15, 0.15, 0.15);
    cg_cairo.set_line_width(cr, 1);
    cg_cairo.rectangle(cr, round(x) + 0.5, round(y) + 0.5, round(w), round(h));
    cg_cairo.stroke(cr);
    double ticks[32], a = lo, b = hi;
    if (!(b > a)) return;
    int n = cg_axis_ticks(&a, &b, false, (int)fmax(2, h / 50), false, ticks, 32);
    char buf[64];
    for (int i = 0; i < n; i++) {
        double py = y + h - map_pos(ticks[i], lo, hi) * h;
        cg_cairo.move_to(cr, x + w, round(py) + 0.5);
        cg_cairo.line_to(cr, x + w + 4, round(py) + 0.5);
        cg_cairo.stroke(cr);
        cg_tick_label(ticks[i], n > 1 ? ticks[1] - ticks[0] : 1, false, buf, sizeof buf);
        cg_draw_text_mid(cr, buf, x + w + 7, py, TICK_FONT, CG_ALIGN_LEFT);
    }
}

cg_status cg_plot_heatmap(const cg_heatmap *m, const char *path) {
    const char *op = "plot heatmap";
    if (!m || !m->values || m->rows < 1 || m->cols < 1 || m->rows > 1024 || m->cols > 1024)
        return cg_fail(CG_ERR_ARG, "%s: give a matrix of 1..1024 rows and columns", op);
    const int rows = m->rows, cols = m->cols;
    const cg_colormap cmap = m->cmap ? m->cmap : CG_CMAP_BLUES;
    double lo = INFINITY, hi = -INFINITY;
    bool whole = true;
    for (int64_t i = 0; i < (int64_t)rows * cols; i++) {
        double v = m->values[i];
        if (!isfinite(v)) continue;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        whole = whole && v == rint(v) && fabs(v) < 1e15;
    }
    if (lo > hi) lo = hi = 0;
    if (cmap == CG_CMAP_DIVERGING) {
        hi = fmax(fabs(lo), fabs(hi));
        lo = -hi;
    }
    const char *fmt = m->value_format ? m->value_format : whole ? "%.0f" : "%.2f";
    double cell = m->cell > 0 ? m->cell : fmin(80, fmax(8, 560.0 / (rows > cols ? rows : cols)));

    /* The page's size depends on the labels' widths, and cairo measures
     * text only through a context: a throwaway 16 x 16 one. */
    cg_canvas cv;
    cg_status st = cg_cairo_load(op);
    if (st != CG_OK) return st;
    cairo_surface_t *scratch = cg_cairo.image_surface_create(CAIRO_FORMAT_RGB24, 16, 16);
    cairo_t *mc = cg_cairo.create(scratch);
    char buf[128];
    double row_w = 0, col_w = 0, val_w = 0;
    for (int r = 0; r < rows; r++) {
        row_col_label(m->row_labels, r, buf, sizeof buf);
        row_w = fmax(row_w, cg_text_width(mc, buf, TICK_FONT, false));
    }
    for (int c = 0; c < cols; c++) {
        row_col_label(m->col_labels, c, buf, sizeof buf);
        col_w = fmax(col_w, cg_text_width(mc, buf, TICK_FONT, false));
    }
    if (m->show_values)
        for (int64_t i = 0; i < (int64_t)rows * cols; i++) {
            snprintf(buf, sizeof buf, fmt, m->values[i]);
            val_w = fmax(val_w, cg_text_width(mc, buf, TICK_FONT, false));
        }
    double title_w = m->title ? cg_text_width(mc, m->title, TITLE_FONT, true) : 0;
    cg_cairo.destroy(mc);
    cg_cairo.surface_destroy(scratch);
    if (m->show_values && m->cell <= 0 && val_w + 6 > cell) cell = fmin(80, val_w + 6);
    bool vertical_cols = col_w + 4 > cell; /* column labels turned when they do not fit */

    double left = 12 + (m->y_label ? LABEL_FONT + 12 : 0) + row_w + 8;
    double top = m->title ? 44 : 16;
    double col_band = vertical_cols ? col_w + 10 : TICK_FONT + 10;
    double bottom = col_band + (m->x_label ? LABEL_FONT + 16 : 0) + 12;
    double grid_w = cell * cols, grid_h = cell * rows;
    double bar = m->colorbar ? 20 + 16 + 60 : 0;
    double width = fmax(left + grid_w + bar + 20, title_w + 40);
    double height = top + grid_h + bottom;
    st = cg_canvas_open(&cv, op, path, (int)ceil(width), (int)ceil(height));
    if (st != CG_OK) return st;
    cv.title = m->title;
    cairo_t *cr = cv.cr;
    const double x0 = left, y0 = top;

    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double v = m->values[(int64_t)r * cols + c], rgb[3] = {0.6, 0.6, 0.6};
            if (isfinite(v)) cg_colormap_rgb(cmap, map_pos(v, lo, hi), rgb);
            cg_cairo.set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cg_cairo.rectangle(cr, x0 + c * cell, y0 + r * cell, cell, cell);
            cg_cairo.fill(cr);
            if (!m->show_values) continue;
            /* Luma decides: white text on dark cells. */
            double luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            double ink = luma < 0.5 ? 1 : 0.1;
            cg_cairo.set_source_rgb(cr, ink, ink, ink);
            snprintf(buf, sizeof buf, fmt, v);
            cg_draw_text_mid(cr, buf, x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell, TICK_FONT,
                             CG_ALIGN_CENTER);
        }
    cg_cairo.set_source_rgb(cr, 0.15, 0.15, 0.15);
    cg_cairo.set_line_width(cr, 1);
    cg_cairo.rectangle(cr, round(x0) + 0.5, round(y0) + 0.5, round(grid_w), round(grid_h));
    cg_cairo.stroke(cr);
    for (int r = 0; r < rows; r++) {
        row_col_label(m->row_labels, r, buf, sizeof buf);
        cg_draw_text_mid(cr, buf, x0 - 8, y0 + (r + 0.5) * cell, TICK_FONT, CG_ALIGN_RIGHT);
    }
    for (int c = 0; c < cols; c++) {
        row_col_label(m->col_labels, c, buf, sizeof buf);
        double cx = x0 + (c + 0.5) * cell;
        if (vertical_cols)
            cg_draw_text(cr, buf, cx + 0.36 * TICK_FONT, y0 + grid_h + 8, TICK_FONT,
                         CG_ALIGN_RIGHT, false, true);
        else
            cg_draw_text(cr, buf, cx, y0 + grid_h + 6 + TICK_FONT, TICK_FONT, CG_ALIGN_CENTER,
                         false, false);
    }
    if (m->x_label)
        cg_draw_text(cr, m->x_label, x0 + grid_w / 2, y0 + grid_h + col_band + 6 + LABEL_FONT,
                     LABEL_FONT, CG_ALIGN_CENTER, false, false);
    if (m->y_label)
        cg_draw_text(cr, m->y_label, 12 + LABEL_FONT, y0 + grid_h / 2, LABEL_FONT,
                     CG_ALIGN_CENTER, false, true);
    if (m->title)
        cg_draw_text(cr, m->title, cv.width / 2.0, 28, TITLE_FONT, CG_ALIGN_CENTER, true, false);
    if (m->colorbar) draw_colorbar(cr, cmap, lo, hi, x0 + grid_w + 20, y0, 16, grid_h);
    return cg_canvas_close(&cv);
}
