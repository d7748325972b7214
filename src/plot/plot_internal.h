/*
 * plot_internal.h - what the plotting files share (internal): cairo's
 * functions, loaded on first use, and a canvas that becomes a PNG or SVG.
 *
 * cairo is dlopen'ed (util/lazy.h) so that a program that draws nothing
 * does not load it and the ~20 libraries behind it (fontconfig, freetype,
 * pixman, X11's). Every cairo call goes through the table `cg_cairo`.
 */
#ifndef CGRAD_PLOT_INTERNAL_H
#define CGRAD_PLOT_INTERNAL_H

#include "cgrad_internal.h"
#include "util/lazy.h"

#include <cairo-svg.h>
#include <cairo.h>

/* (field, symbol, return type, parameters) of every cairo function used. */
#define CG_CAIRO_FNS(X)                                                                          \
    X(image_surface_create, cairo_image_surface_create, cairo_surface_t *,                       \
      (cairo_format_t, int, int))                                                                \
    X(image_surface_get_data, cairo_image_surface_get_data, unsigned char *, (cairo_surface_t *)) \
    X(image_surface_get_stride, cairo_image_surface_get_stride, int, (cairo_surface_t *))        \
    X(svg_surface_create_for_stream, cairo_svg_surface_create_for_stream, cairo_surface_t *,     \
      (cairo_write_func_t, void *, double, double))                                              \
    X(svg_surface_set_document_unit, cairo_svg_surface_set_document_unit, void,                  \
      (cairo_surface_t *, cairo_svg_unit_t))                                                     \
    X(svg_surface_restrict_to_version, cairo_svg_surface_restrict_to_version, void,              \
      (cairo_surface_t *, cairo_svg_version_t))                                                  \
    X(surface_write_to_png_stream, cairo_surface_write_to_png_stream, cairo_status_t,            \
      (cairo_surface_t *, cairo_write_func_t, void *))                                           \
    X(surface_flush, cairo_surface_flush, void, (cairo_surface_t *))                             \
    X(surface_mark_dirty, cairo_surface_mark_dirty, void, (cairo_surface_t *))                   \
    X(surface_finish, cairo_surface_finish, void, (cairo_surface_t *))                           \
    X(surface_status, cairo_surface_status, cairo_status_t, (cairo_surface_t *))                 \
    X(surface_destroy, cairo_surface_destroy, void, (cairo_surface_t *))                         \
    X(create, cairo_create, cairo_t *, (cairo_surface_t *))                                      \
    X(destroy, cairo_destroy, void, (cairo_t *))                                                 \
    X(status, cairo_status, cairo_status_t, (cairo_t *))                                         \
    X(status_to_string, cairo_status_to_string, const char *, (cairo_status_t))                  \
    X(set_user_data, cairo_set_user_data, cairo_status_t,                                        \
      (cairo_t *, const cairo_user_data_key_t *, void *, cairo_destroy_func_t))                  \
    X(get_user_data, cairo_get_user_data, void *, (cairo_t *, const cairo_user_data_key_t *))    \
    X(save, cairo_save, void, (cairo_t *))                                                       \
    X(restore, cairo_restore, void, (cairo_t *))                                                 \
    X(set_source_rgb, cairo_set_source_rgb, void, (cairo_t *, double, double, double))           \
    X(set_source_surface, cairo_set_source_surface, void,                                        \
      (cairo_t *, cairo_surface_t *, double, double))                                            \
    X(get_source, cairo_get_source, cairo_pattern_t *, (cairo_t *))                              \
    X(pattern_set_filter, cairo_pattern_set_filter, void, (cairo_pattern_t *, cairo_filter_t))   \
    X(paint, cairo_paint, void, (cairo_t *))                                                     \
    X(rectangle, cairo_rectangle, void, (cairo_t *, double, double, double, double))             \
    X(arc, cairo_arc, void, (cairo_t *, double, double, double, double, double))                 \
    X(move_to, cairo_move_to, void, (cairo_t *, double, double))                                 \
    X(line_to, cairo_line_to, void, (cairo_t *, double, double))                                 \
    X(new_path, cairo_new_path, void, (cairo_t *))                                               \
    X(new_sub_path, cairo_new_sub_path, void, (cairo_t *))                                       \
    X(fill, cairo_fill, void, (cairo_t *))                                                       \
    X(stroke, cairo_stroke, void, (cairo_t *))                                                   \
    X(clip, cairo_clip, void, (cairo_t *))                                                       \
    X(set_line_width, cairo_set_line_width, void, (cairo_t *, double))                           \
    X(set_line_join, cairo_set_line_join, void, (cairo_t *, cairo_line_join_t))                 \
    X(set_dash, cairo_set_dash, void, (cairo_t *, const double *, int, double))                  \
    X(translate, cairo_translate, void, (cairo_t *, double, double))                             \
    X(rotate, cairo_rotate, void, (cairo_t *, double))                                           \
    X(scale, cairo_scale, void, (cairo_t *, double, double))                                     \
    X(toy_font_face_create, cairo_toy_font_face_create, cairo_font_face_t *,                     \
      (const char *, cairo_font_slant_t, cairo_font_weight_t))                                   \
    X(font_face_status, cairo_font_face_status, cairo_status_t, (cairo_font_face_t *))           \
    X(set_font_face, cairo_set_font_face, void, (cairo_t *, cairo_font_face_t *))                \
    X(set_font_size, cairo_set_font_size, void, (cairo_t *, double))                             \
    X(show_text, cairo_show_text, void, (cairo_t *, const char *))                               \
    X(text_extents, cairo_text_extents, void, (cairo_t *, const char *, cairo_text_extents_t *))

typedef struct cg_cairo_fns {
    CG_CAIRO_FNS(CG_LAZY_FIELD)
} cg_cairo_fns;
extern cg_cairo_fns cg_cairo;

/* Loads libcairo once (cg_lazy_load) and makes the two font faces (DejaVu
 * Sans, regular and bold); `op` names the caller in messages. */
cg_status cg_cairo_load(const char *op);
/* Sets cr's font: DejaVu Sans of `size` pixels, bold or not. */
void cg_set_font(cairo_t *cr, double size, bool bold);

/* A picture being drawn: cr draws on a PNG-to-be or an SVG-to-be.
 *
 * cairo's SVG surface writes text as glyph outlines, which no search or
 * screen reader can read; so an SVG also gets the picture's words as
 * text: its title as <title> and every string drawn (cg_draw_text) in a
 * <desc>, one per line. */
typedef struct cg_canvas {
    const char *op, *path;
    const char *title; /* the SVG's <title> (NULL: none) */
    bool svg;
    char *words;       /* the SVG's <desc>: what cg_draw_text drew, '\n'-separated */
    size_t words_len, words_cap;
    int width, height;
    cairo_surface_t *surface;
    cairo_t *cr;
    uint8_t *buf; /* the encoded file, as cairo writes it */
    size_t len, cap;
    bool nomem;
} cg_canvas;

/* Checks the extension (.png / .svg), loads cairo and starts a white
 * width x height picture with DejaVu Sans selected. On failure nothing is
 * left to close. */
cg_status cg_canvas_open(cg_canvas *cv, const char *op, const char *path, int width, int height);
/* Encodes the picture and replaces path with it atomically, then frees
 * everything (also on failure). */
cg_status cg_canvas_close(cg_canvas *cv);
/* Frees everything, writes nothing (after a failure while drawing). */
void cg_canvas_discard(cg_canvas *cv);

/* ---- text (src/plot/canvas.c) ---- */

typedef enum cg_align { CG_ALIGN_LEFT, CG_ALIGN_CENTER, CG_ALIGN_RIGHT } cg_align;
/* Text of `size` pixels with its baseline's anchor at (x, y); bold or not;
 * rotated by 90 degrees anticlockwise when `vertical` (a y axis' label). */
void cg_draw_text(cairo_t *cr, const char *text, double x, double y, double size, cg_align align,
                  bool bold, bool vertical);
/* Text centred on (x, y) vertically too (tick labels, cell values). */
void cg_draw_text_mid(cairo_t *cr, const char *text, double x, double y, double size,
                      cg_align align);
/* The width of text at `size`. */
double cg_text_width(cairo_t *cr, const char *text, double size, bool bold);

/* The i-th colour of matplotlib's tab10 cycle. */
void cg_series_rgb(int i, double rgb[3]);

/* ---- a rectangle of axes (src/plot/axes.c) ---- */

/* Where data goes on the page: the data range and the rectangle it maps
 * to, linearly or in log10. */
typedef struct cg_axes {
    double x0, y0, w, h;          /* the plot area on the page (y0: top) */
    double xmin, xmax, ymin, ymax; /* the data range (log axes: the values, not their logs) */
    bool log_x, log_y;
} cg_axes;

double cg_axes_px(const cg_axes *a, double x);
double cg_axes_py(const cg_axes *a, double y);
/* Ticks for [lo, hi]: "nice" steps of 1, 2 or 5 x 10^k (about `target` of
 * them), or powers of ten on a log axis; and widens lo, hi out to a tick
 * when `snap`. Returns the count (at most max). */
int cg_axis_ticks(double *lo, double *hi, bool log, int target, bool snap, double *ticks, int max);
/* A tick value as text: "0", "0.5", "1e-03", ... with the fewest digits
 * that tell neighbouring ticks apart (step: the distance between them). */
void cg_tick_label(double v, double step, bool log, char *buf, size_t size);
/* Frame, grid lines, ticks, tick labels, axis labels and title of a. */
void cg_axes_draw(cairo_t *cr, const cg_axes *a, const double *xt, int nx, const double *yt,
                  int ny, const char *title, const char *x_label, const char *y_label);

/* ---- a plot into a rectangle of a canvas (src/plot/lines.c) ---- */
cg_status cg_draw_line_plot(cairo_t *cr, const cg_line_plot *p, double x, double y, double w,
                            double h, const char *op);

#endif
