/*
 * cgrad/plot.h - pictures: line plots, heatmaps and grids of images, drawn
 * with cairo and written as PNG or SVG. Included by <cgrad.h>.
 *
 * What fastai shows with matplotlib, cgrad draws itself:
 *   cg_plot_lines        plot_function, learn.recorder.plot_loss, lr_find
 *   cg_plot_heatmap      ClassificationInterpretation.plot_confusion_matrix
 *   cg_plot_image_grid   show_batch, plot_top_losses, weights as images
 * and, built on them, the pictures of the chapter itself (the sigmoid, the
 * ideal digits, what a trained model's weights look like).
 *
 * Every call writes one file, its format chosen by the extension: ".png"
 * (a cairo image surface) or ".svg" (a cairo SVG surface); anything else is
 * refused. The file is replaced atomically (temporary file in the same
 * folder, then rename), as every file cgrad writes. The same call writes
 * the same PNG bytes; an SVG's element ids come from cairo's process-wide
 * counters, so the same SVG bytes come from a fresh process.
 *
 * Text is set with cairo's own text API in DejaVu Sans (Debian:
 * fonts-dejavu-core). libcairo is loaded on the first call (dlopen), so a
 * program that never draws never loads it; without it a call fails with
 * CG_ERR_IO and a message naming the package (libcairo2).
 *
 * The structs are meant to be zero-initialised and then filled in:
 * every 0 / NULL field means "the default" as documented beside it.
 */
#ifndef CGRAD_PLOT_H
#define CGRAD_PLOT_H

#include "cgrad/core.h"
#include "cgrad/data.h"
#include "cgrad/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether path names a picture cgrad can write (.png or .svg, any case):
 * CG_OK, or CG_ERR_ARG and a message naming the path, so a program can
 * say so before a long run rather than after it. Loads nothing. */
cg_status cg_plot_check_path(const char *path);

/* How values become colours. */
typedef enum cg_colormap {
    CG_CMAP_DEFAULT = 0,   /* per picture: BLUES for heatmaps, GRAY for images       */
    CG_CMAP_GRAY = 1,      /* low black, high white: an MNIST digit as it is stored  */
    CG_CMAP_GREYS = 2,     /* low white, high black: matplotlib's "Greys", ink on paper */
    CG_CMAP_BLUES = 3,     /* low white to high dark blue: counts                    */
    CG_CMAP_DIVERGING = 4  /* signed values: blue < 0, white at 0, red > 0 ("RdBu_r"),
                              scaled by the largest |value|                          */
} cg_colormap;

/* The colour of v in [0, 1] on map (DIVERGING: 0.5 is white), as r, g, b in
 * [0, 1]. For programs that draw legends of their own. */
void cg_colormap_rgb(cg_colormap map, double v, double rgb[3]);

/* ------------------------------------------------------------------ */
/* Line and scatter plots (src/plot/lines.c)                           */
/* ------------------------------------------------------------------ */

typedef enum cg_series_style {
    CG_SERIES_LINE = 0,   /* points joined by a line                */
    CG_SERIES_POINTS = 1, /* a dot at each point (a scatter plot)   */
    CG_SERIES_BOTH = 2    /* a line with a dot at each point        */
} cg_series_style;

/* One named series: n points (x[i], y[i]). x NULL: 0, 1, ..., n-1. Points
 * with a non-finite coordinate (or x <= 0 on a log axis) are skipped; a
 * line breaks there. Colours follow the series' order (matplotlib's "tab10"). */
typedef struct cg_plot_series {
    const char *name;     /* legend entry; NULL: not in the legend */
    const double *x, *y;
    int64_t n;
    cg_series_style style;
} cg_plot_series;

/* A point to mark: a red ring at (x, y) and, when label is set, the label
 * beside it (lr_find's suggestions: "valley 1.2e-03"). */
typedef struct cg_plot_mark {
    double x, y;
    const char *label;
} cg_plot_mark;

/* One set of axes. The ranges fit the data (and marks) unless fixed. */
typedef struct cg_line_plot {
    const char *title, *x_label, *y_label; /* each NULL: none */
    const cg_plot_series *series;
    int n_series;
    const cg_plot_mark *marks;
    int n_marks;
    bool log_x, log_y;        /* base-10 axes (ticks at powers of ten)      */
    bool fix_x, fix_y;        /* use x_min..x_max / y_min..y_max as given   */
    double x_min, x_max, y_min, y_max;
    bool no_legend;           /* the legend is drawn when a series has a name */
} cg_line_plot;

/* One plot in a width x height picture (0 x 0: 640 x 480). */
cg_status cg_plot_lines(const cg_line_plot *plot, int width, int height, const char *path);

/* Several plots side by side in one picture (cols per row; 0: all in one
 * row), each panel (0 x 0: 480 x 360) pixels, under a title (NULL: none):
 * learn.recorder's losses beside its accuracy. */
cg_status cg_plot_panels(const cg_line_plot *plots, int n, int cols, const char *title,
                         int panel_width, int panel_height, const char *path);

/* ------------------------------------------------------------------ */
/* Heatmaps (src/plot/heatmap.c)                                       */
/* ------------------------------------------------------------------ */

/* A rows x cols matrix (row-major) as coloured cells, row 0 at the top:
 * a confusion matrix has rows "actual", columns "predicted". */
typedef struct cg_heatmap {
    const char *title, *x_label, *y_label;  /* x: under the columns, y: beside the rows */
    const double *values;
    int rows, cols;
    const char *const *row_labels;  /* rows of them; NULL: 0, 1, ...  */
    const char *const *col_labels;  /* cols of them; NULL: 0, 1, ...  */
    cg_colormap cmap;               /* DEFAULT: BLUES                 */
    bool show_values;               /* each cell's value written in it */
    const char *value_format;       /* printf's, for a double; NULL: "%.0f" when every
                                       value is whole (counts), else "%.2f" */
    bool colorbar;                  /* a scale beside the matrix      */
    int cell;                       /* a cell's side in pixels; 0: to fit 640 x 640 */
} cg_heatmap;

cg_status cg_plot_heatmap(const cg_heatmap *map, const char *path);

/* ------------------------------------------------------------------ */
/* Grids of images (src/plot/image_grid.c)                             */
/* ------------------------------------------------------------------ */

/* One h x w gray image, from bytes (0..255) or floats; one of the two. */
typedef struct cg_plot_image {
    const uint8_t *bytes;
    const float *floats;
    int64_t h, w;
    /* Under the image; one '\n' makes it two lines (show_batch's label,
     * plot_top_losses' "3/7 / 2.41 / 0.91"). NULL: none. */
    const char *caption;
} cg_plot_image;

typedef struct cg_image_grid {
    const char *title;              /* NULL: none                                  */
    const cg_plot_image *images;
    int n;
    int cols;                       /* 0: ceil(sqrt(n))                            */
    cg_colormap cmap;               /* DEFAULT: GRAY                               */
    /* Floats are scaled to the map's 0..1: GRAY and GREYS from lo..hi (both 0:
     * each image's own min..max, as matplotlib's imshow); DIVERGING from
     * -m..m, m the image's largest |value| (shared_scale: of every image's).
     * Bytes are v / 255 on GRAY and GREYS. */
    float lo, hi;
    bool shared_scale;
    int cell;                       /* an image's longer side, pixels; 0: 28*4 = 112 */
} cg_image_grid;

cg_status cg_plot_image_grid(const cg_image_grid *grid, const char *path);

/* ------------------------------------------------------------------ */
/* The chapter's pictures, built on the above (src/plot/figures.c)     */
/* ------------------------------------------------------------------ */

/* The functions cg_plot_function draws: "sigmoid" (the article's), "relu",
 * "tanh", "square" (fastbook's f(x) = x**2, the quadratic gradient descent
 * walks down) and "mnist_loss" (its two pieces against the prediction:
 * 1 - sigmoid(p) where the target is 1, sigmoid(p) where it is 0). The i-th
 * name, NULL past the end. */
const char *cg_plot_function_name(int i);

/* fastbook's plot_function(f, title, min, max): f sampled at 200 points of
 * [min, max] and drawn as a line, in a 640 x 480 picture. title NULL: the
 * function's name. An unknown name fails with the list of known ones. */
cg_status cg_plot_function(const char *name, double min, double max, const char *title,
                           const char *path);

/* learn.recorder's pictures: the training loss of every batch and the
 * training and validation loss of every epoch (x: epochs, a batch at its
 * fraction of an epoch) beside the accuracy per epoch. title NULL: none. */
cg_status cg_plot_recorder(const cg_recorder *rec, const char *title, const char *path);

/* What a model learned, as images: its first layer with weights, one image
 * per output unit (a linear model's 28 x 28 weights per class; an MLP's
 * first hidden units; a CNN's first convolution's k x k filters, one per
 * output channel and input channel 0), blue negative, red positive. At
 * most max_units of them (0: 64). A model whose first weighted layer
 * neither reads the image's pixels (linear) nor is a convolution fails. */
cg_status cg_plot_model_weights(const cg_model *m, int max_units, const char *title,
                                const char *path);

/* fastai's show_batch: rows x cols images of ds, each captioned with its
 * class name; the images are a random draw from seed (the same seed, the
 * same images), or the first ones when shuffle is false. */
cg_status cg_plot_dataset_batch(const cg_dataset *ds, int rows, int cols, bool shuffle,
                                uint64_t seed, const char *title, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* CGRAD_PLOT_H */
