/*
 * image_grid.c - small images in rows and columns, each with a caption of
 * one or two lines under it: show_batch, plot_top_losses, and a model's
 * weights seen as images.
 *
 * Each image becomes a cairo image surface of its own size (one pixel per
 * value, coloured by the map) that is scaled up with the NEAREST filter, so
 * a 28 x 28 digit shows its pixels as squares, not a blur.
 */
#include "plot/plot_internal.h"

#define CAPTION_FONT 12.0
#define TITLE_FONT 16.0
#define PAD 12.0

static cg_status check_image(const cg_plot_image *im, int i, const char *op) {
    if ((im->bytes == NULL) == (im->floats == NULL))
        return cg_fail(CG_ERR_ARG, "%s: image %d needs bytes or floats (one of the two)", op, i);
    if (im->h < 1 || im->w < 1 || im->h > 4096 || im->w > 4096)
        return cg_fail(CG_ERR_ARG, "%s: image %d is %lld x %lld (1..4096 each way)", op, i,
                       (long long)im->h, (long long)im->w);
    return CG_OK;
}

/* The range the floats of images [from, to) span: min..max, or for the
 * diverging map -m..m. */
static void float_range(const cg_image_grid *g, cg_colormap cmap, int from, int to, double *lo,
                        double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int i = from; i < to; i++) {
        const cg_plot_image *im = &g->images[i];
        if (!im->floats) continue;
        for (int64_t k = 0; k < im->h * im->w; k++) {
            double v = im->floats[k];
            if (!isfinite(v)) continue;
            a = fmin(a, v);
            b = fmax(b, v);
        }
    }
    if (a > b) a = b = 0;
    if (cmap == CG_CMAP_DIVERGING) {
        b = fmax(fabs(a), fabs(b));
        a = -b;
    }
    *lo = a;
    *hi = b;
}

/* Draws image i scaled into the square of side `cell` at (x, y), centred;
 * shared: the range of every image's floats (shared_scale). */
static cg_status draw_image(cairo_t *cr, const cg_image_grid *g, cg_colormap cmap, int i,
                            double x, double y, double cell, const double shared[2]) {
    const cg_plot_image *im = &g->images[i];
    double lo = 0, hi = 1;
    if (im->floats) {
        if (cmap != CG_CMAP_DIVERGING && (g->lo != 0 || g->hi != 0)) {
            lo = g->lo;
            hi = g->hi;
        } else if (g->shared_scale) {
            lo = shared[0];
            hi = shared[1];
        } else {
            float_range(g, cmap, i, i + 1, &lo, &hi);
        }
    }
    cairo_surface_t *s = cg_cairo.image_surface_create(CAIRO_FORMAT_RGB24, (int)im->w, (int)im->h);
    if (cg_cairo.surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cg_cairo.surface_destroy(s);
        return cg_fail(CG_ERR_NOMEM, "plot images: out of memory for image %d", i);
    }
    cg_cairo.surface_flush(s);
    unsigned char *data = cg_cairo.image_surface_get_data(s);
    int stride = cg_cairo.image_surface_get_stride(s);
    for (int64_t r = 0; r < im->h; r++) {
        uint32_t *row = (uint32_t *)(void *)(data + r * stride);
        for (int64_t c = 0; c < im->w; c++) {
            double v, rgb[3] = {0.6, 0.6, 0.6};
            if (im->bytes) {
                v = im->bytes[r * im->w + c] / 255.0;
                if (cmap == CG_CMAP_DIVERGING) v = 0.5 + v / 2;
            } else {
                v = im->floats[r * im->w + c];
                v = hi > lo ? (v - lo) / (hi - lo) : 0.5;
            }
            if (isfinite(v)) cg_colormap_rgb(cmap, v, rgb);
            /* RGB24: one native-endian uint32 per pixel, 0x00RRGGBB. */
            row[c] = (uint32_t)lrint(rgb[0] * 255) << 16 | (uint32_t)lrint(rgb[1] * 255) << 8 |
                     (uint32_t)lrint(rgb[2] * 255);
        }
    }
    cg_cairo.surface_mark_dirty(s);
    double scale = cell / (double)(im->h > im->w ? im->h : im->w);
    double dw = im->w * scale, dh = im->h * scale;
    cg_cairo.save(cr);
    cg_cairo.translate(cr, x + (cell - dw) / 2, y + (cell - dh) / 2);
    cg_cairo.scale(cr, scale, scale);
    cg_cairo.set_source_surface(cr, s, 0, 0);
    cg_cairo.pattern_set_filter(cg_cairo.get_source(cr), CAIRO_FILTER_NEAREST);
    cg_cairo.rectangle(cr, 0, 0, (double)im->w, (double)im->h);
    cg_cairo.fill(cr);
    cg_cairo.restore(cr);
    /* A thin frame: white digits on a white page, or a GREYS image's
     * white background, still show where the image ends. */
    cg_cairo.set_source_rgb(cr, 0.7, 0.7, 0.7);
    cg_cairo.set_line_width(cr, 1);
    cg_cairo.rectangle(cr, round(x + (cell - dw) / 2) - 0.5, round(y + (cell - dh) / 2) - 0.5,
                       round(dw) + 1, round(dh) + 1);
    cg_cairo.stroke(cr);
    cg_cairo.surface_destroy(s);
    return CG_OK;
}

/* Splits a caption at its first '\n' into up to two lines. */
static int caption_lines(const char *cap, char lines[2][128]) {
    if (!cap || !*cap) return 0;
    const char *nl = strchr(cap, '\n');
    if (!nl) {
        snprintf(lines[0], 128, "%s", cap);
        return 1;
    }
    snprintf(lines[0], 128, "%.*s", (int)(nl - cap < 127 ? nl - cap : 127), cap);
    snprintf(lines[1], 128, "%s", nl + 1);
    return 2;
}

cg_status cg_plot_image_grid(const cg_image_grid *g, const char *path) {
    const char *op = "plot images";
    if (!g || !g->images || g->n < 1 || g->n > 4096)
        return cg_fail(CG_ERR_ARG, "%s: give 1..4096 images", op);
    for (int i = 0; i < g->n; i++) {
        cg_status st = check_image(&g->images[i], i, op);
        if (st != CG_OK) return st;
    }
    const cg_colormap cmap = g->cmap ? g->cmap : CG_CMAP_GRAY;
    int cols = g->cols > 0 ? g->cols : (int)ceil(sqrt((double)g->n));
    if (cols > g->n) cols = g->n;
    int rows = (g->n + cols - 1) / cols;
    double cell = g->cell > 0 ? g->cell : 112;
    if (cell > 2048) return cg_fail(CG_ERR_ARG, "%s: cells of %g pixels are too large", op, cell);

    cg_status st = cg_cairo_load(op);
    if (st != CG_OK) return st;
    /* Caption widths set the column width: measured on a scratch context. */
    cairo_surface_t *scratch = cg_cairo.image_surface_create(CAIRO_FORMAT_RGB24, 16, 16);
    cairo_t *mc = cg_cairo.create(scratch);
    double cap_w = 0, title_w = g->title ? cg_text_width(mc, g->title, TITLE_FONT, true) : 0;
    int max_lines = 0;
    for (int i = 0; i < g->n; i++) {
        char lines[2][128];
        int nl = caption_lines(g->images[i].caption, lines);
        if (nl > max_lines) max_lines = nl;
        for (int k = 0; k < nl; k++)
            cap_w = fmax(cap_w, cg_text_width(mc, lines[k], CAPTION_FONT, false));
    }
    cg_cairo.destroy(mc);
    cg_cairo.surface_destroy(scratch);
    const double line_h = CAPTION_FONT * 1.35;
    double col_w = fmax(cell, cap_w + 4) + PAD;
    double row_h = cell + max_lines * line_h + (max_lines ? 6 : 0) + PAD;
    double top = g->title ? 40 : PAD;
    double width = fmax(cols * col_w + PAD, title_w + 2 * PAD);
    double height = top + rows * row_h;
    if (width > 16384 || height > 16384)
        return cg_fail(CG_ERR_ARG, "%s: %d images of %g pixels make too large a picture", op,
                       g->n, cell);
    cg_canvas cv;
    if ((st = cg_canvas_open(&cv, op, path, (int)ceil(width), (int)ceil(height))) != CG_OK)
        return st;
    cv.title = g->title;
    double shared[2] = {0, 1};
    if (g->shared_scale) float_range(g, cmap, 0, g->n, &shared[0], &shared[1]);
    double x_off = (cv.width - cols * col_w) / 2; /* the grid centred under a wide title */
    if (g->title)
        cg_draw_text(cv.cr, g->title, cv.width / 2.0, 26, TITLE_FONT, CG_ALIGN_CENTER, true, false);
    for (int i = 0; i < g->n && st == CG_OK; i++) {
        double x = x_off + (i % cols) * col_w + (col_w - cell) / 2;
        double y = top + (i / cols) * row_h;
        st = draw_image(cv.cr, g, cmap, i, x, y, cell, shared);
        char lines[2][128];
        int nl = caption_lines(g->images[i].caption, lines);
        cg_cairo.set_source_rgb(cv.cr, 0.1, 0.1, 0.1);
        for (int k = 0; k < nl; k++)
            cg_draw_text(cv.cr, lines[k], x + cell / 2, y + cell + 4 + (k + 1) * line_h - 3,
                         CAPTION_FONT, CG_ALIGN_CENTER, false, false);
    }
    if (st != CG_OK) {
        cg_canvas_discard(&cv);
        return st;
    }
    return cg_canvas_close(&cv);
}
