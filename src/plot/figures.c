/*
 * figures.c - the chapter's pictures, made from cgrad's own objects with
 * the general plots: plot_function, the recorder's losses, a model's
 * weights as images, show_batch.
 */
#include "plot/plot_internal.h"

/* ---- plot_function ---- */

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double one_minus_sigmoid(double x) { return 1 - sigmoid(x); }
static double relu(double x) { return x > 0 ? x : 0; }
static double square(double x) { return x * x; }

/* A function to draw: one curve, or two for the loss's two pieces. */
static const struct {
    const char *name, *title, *x_label;
    double (*f[2])(double);
    const char *series[2];
} functions[] = {
    {"sigmoid", "Sigmoid", "x", {sigmoid, NULL}, {NULL, NULL}},
    {"relu", "ReLU", "x", {relu, NULL}, {NULL, NULL}},
    {"tanh", "Tanh", "x", {tanh, NULL}, {NULL, NULL}},
    {"square", "x**2", "x", {square, NULL}, {NULL, NULL}},
    {"mnist_loss",
     "mnist_loss",
     "prediction p",
     {one_minus_sigmoid, sigmoid},
     {"target 1: 1 - sigmoid(p)", "target 0: sigmoid(p)"}},
};
#define N_FUNCTIONS ((int)(sizeof functions / sizeof functions[0]))

const char *cg_plot_function_name(int i) {
    return i >= 0 && i < N_FUNCTIONS ? functions[i].name : NULL;
}

#define FUNCTION_POINTS 200

cg_status cg_plot_function(const char *name, double min, double max, const char *title,
                           const char *path) {
    int k = 0;
    while (k < N_FUNCTIONS && !(name && strcmp(name, functions[k].name) == 0)) k++;
    if (k == N_FUNCTIONS) {
        char known[256] = "";
        for (int i = 0; i < N_FUNCTIONS; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     functions[i].name);
        return cg_fail(CG_ERR_ARG, "plot: unknown function '%s' (known: %s)",
                       name ? name : "(null)", known);
    }
    if (!(min < max) || !isfinite(min) || !isfinite(max))
        return cg_fail(CG_ERR_ARG, "plot: %s: min %g must be below max %g", name, min, max);
    /* As plot_function: x = torch.linspace(min, max), y = f(x). */
    double x[FUNCTION_POINTS], y[2][FUNCTION_POINTS];
    cg_plot_series series[2];
    int n_series = 0;
    for (int s = 0; s < 2 && functions[k].f[s]; s++, n_series++) {
        for (int i = 0; i < FUNCTION_POINTS; i++) {
            x[i] = min + (max - min) * i / (FUNCTION_POINTS - 1);
            y[s][i] = functions[k].f[s](x[i]);
        }
        series[s] = (cg_plot_series){.name = functions[k].series[s], .x = x, .y = y[s],
                                     .n = FUNCTION_POINTS};
    }
    cg_line_plot p = {.title = title ? title : functions[k].title,
                      .x_label = functions[k].x_label,
                      .series = series,
                      .n_series = n_series};
    return cg_plot_lines(&p, 640, 480, path);
}

/* ---- the recorder ---- */

cg_status cg_plot_recorder(const cg_recorder *rec, const char *title, const char *path) {
    if (!rec || rec->n_epochs < 1)
        return cg_fail(CG_ERR_ARG, "plot: the recorder has no epochs to draw");
    int ne = rec->n_epochs, trained = 0;
    for (int e = 0; e < ne; e++) trained += rec->epochs[e].epoch >= 1;
    int64_t nb = rec->n_batches;
    double *buf = malloc(sizeof(double) * (size_t)(2 * nb + 4 * ne));
    if (!buf) return cg_fail(CG_ERR_NOMEM, "plot: out of memory for %lld batches", (long long)nb);
    double *bx = buf, *by = bx + nb, *ex = by + nb, *etrain = ex + ne, *evalid = etrain + ne,
           *eacc = evalid + ne;
    /* Batch i ends (i + 1) / batches-per-epoch of the way through training. */
    double per_epoch = trained > 0 ? (double)nb / trained : 1;
    for (int64_t i = 0; i < nb; i++) {
        bx[i] = (double)(i + 1) / per_epoch;
        by[i] = rec->batch_loss[i];
    }
    for (int e = 0; e < ne; e++) {
        ex[e] = rec->epochs[e].epoch;
        etrain[e] = rec->epochs[e].train_loss;
        evalid[e] = rec->epochs[e].valid_loss;
        eacc[e] = rec->epochs[e].accuracy;
    }
    cg_plot_series losses[3] = {
        {.name = "train (batch)", .x = bx, .y = by, .n = nb},
        {.name = "train (epoch)", .x = ex, .y = etrain, .n = ne, .style = CG_SERIES_BOTH},
        {.name = "valid", .x = ex, .y = evalid, .n = ne, .style = CG_SERIES_BOTH},
    };
    cg_plot_series acc = {.name = "valid accuracy", .x = ex, .y = eacc, .n = ne,
                          .style = CG_SERIES_BOTH};
    cg_line_plot panels[2] = {
        {.title = "Loss", .x_label = "epoch", .y_label = "loss", .series = losses,
         .n_series = 3},
        {.title = "Accuracy", .x_label = "epoch", .y_label = "accuracy", .series = &acc,
         .n_series = 1, .no_legend = true},
    };
    cg_status st = cg_plot_panels(panels, 2, 2, title, 520, 380, path);
    free(buf);
    return st;
}

/* ---- a model's weights ---- */

/* The first layer with weights, or NULL. */
static const cg_layer *first_weighted(const cg_model *m) {
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_params > 0) return &m->layers[i];
    return NULL;
}

cg_status cg_plot_model_weights(const cg_model *m, int max_units, const char *title,
                                const char *path) {
    const char *op = "plot weights";
    if (!m) return cg_fail(CG_ERR_ARG, "%s: no model", op);
    const cg_layer *l = first_weighted(m);
    if (!l) return cg_fail(CG_ERR_ARG, "%s: the model has no weights", op);
    const char *kind = cg_layer_name(l);
    const cg_tensor *w = l->params[0];
    if (max_units <= 0) max_units = 64;
    int64_t units, h, wd;
    bool conv = strcmp(kind, "conv") == 0;
    if (conv) {
        /* [out, in, k, k]: filter j of input channel 0. */
        units = w->shape[0];
        h = w->shape[2];
        wd = w->shape[3];
    } else if (strcmp(kind, "linear") == 0 && l->in_shape[0] == m->n_inputs) {
        /* [in, out]: column j holds unit j's weight for every pixel. */
        units = w->shape[1];
        if (m->in_ndim == 3) {
            h = m->in_shape[1];
            wd = m->in_shape[2];
        } else {
            h = wd = (int64_t)lrint(sqrt((double)m->n_inputs));
        }
        if (h * wd * (m->in_ndim == 3 ? m->in_shape[0] : 1) != m->n_inputs)
            return cg_fail(CG_ERR_ARG, "%s: %lld inputs are not a square image", op,
                           (long long)m->n_inputs);
    } else {
        return cg_fail(CG_ERR_ARG,
                       "%s: the model's first layer with weights (%s) is neither a linear layer "
                       "on the pixels nor a convolution",
                       op, kind);
    }
    int n = (int)(units < max_units ? units : max_units);
    float *px = malloc(sizeof(float) * (size_t)(n * h * wd));
    cg_plot_image *ims = calloc((size_t)n, sizeof *ims);
    char (*caps)[96] = calloc((size_t)n, sizeof *caps);
    if (!px || !ims || !caps) {
        free(px);
        free(ims);
        free(caps);
        return cg_fail(CG_ERR_NOMEM, "%s: out of memory", op);
    }
    /* A linear model (one layer, outputs = classes) names its units by
     * class; one output is the article's "is it a 3" score. */
    bool by_class = !conv && m->n_classes > 0 && m->n_classes == units;
    bool binary = !conv && units == 1 && m->n_classes == 2;
    for (int j = 0; j < n; j++) {
        float *dst = px + (int64_t)j * h * wd;
        for (int64_t k = 0; k < h * wd; k++)
            dst[k] = conv ? w->data[(int64_t)j * w->shape[1] * h * wd + k]
                          : w->data[k * units + j];
        if (by_class) snprintf(caps[j], sizeof caps[j], "%s", m->class_names[j]);
        else if (binary)
            snprintf(caps[j], sizeof caps[j], "%s (red) vs %s (blue)", m->class_names[0],
                     m->class_names[1]);
        else snprintf(caps[j], sizeof caps[j], "%s %d", conv ? "filter" : "unit", j);
        ims[j] = (cg_plot_image){.floats = dst, .h = h, .w = wd, .caption = caps[j]};
    }
    char auto_title[96];
    snprintf(auto_title, sizeof auto_title, "%s: first %s layer's weights", m->name, kind);
    cg_image_grid g = {.title = title ? title : auto_title,
                       .images = ims,
                       .n = n,
                       .cols = n <= 5 ? n : n <= 10 ? (n + 1) / 2 : 8, /* 10 classes: 5 x 2 */
                       .cmap = CG_CMAP_DIVERGING,
                       .cell = conv ? 64 : 112};
    cg_status st = cg_plot_image_grid(&g, path);
    free(px);
    free(ims);
    free(caps);
    return st;
}

/* ---- show_batch ---- */

cg_status cg_plot_dataset_batch(const cg_dataset *ds, int rows, int cols, bool shuffle,
                                uint64_t seed, const char *title, const char *path) {
    const char *op = "show";
    int64_t size = ds ? cg_dataset_size(ds) : 0;
    if (size < 1) return cg_fail(CG_ERR_ARG, "%s: the dataset has no images", op);
    if (rows < 1 || cols < 1 || rows > 64 || cols > 64)
        return cg_fail(CG_ERR_ARG, "%s: a grid of %d x %d (1..64 each way)", op, rows, cols);
    if (!ds->pixels && !ds->x) return cg_fail(CG_ERR_ARG, "%s: the dataset has no pixels", op);
    int n = rows * cols;
    if (n > size) n = (int)size;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)size);
    cg_plot_image *ims = calloc((size_t)n, sizeof *ims);
    if (!idx || !ims) {
        free(idx);
        free(ims);
        return cg_fail(CG_ERR_NOMEM, "%s: out of memory", op);
    }
    for (int64_t i = 0; i < size; i++) idx[i] = i;
    if (shuffle) {
        /* The first n steps of a Fisher-Yates shuffle: n distinct items. */
        cg_rng rng;
        cg_rng_seed(&rng, seed);
        for (int64_t i = 0; i < n; i++) {
            uint64_t left = (uint64_t)(size - i);
            int64_t j = i + (int64_t)(left > UINT32_MAX ? cg_rng_u32(&rng) % left
                                                        : cg_rng_below(&rng, (uint32_t)left));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }
    const int64_t hw = cg_dataset_image_numel(ds); /* an RGB image shows its R plane */
    for (int i = 0; i < n; i++) {
        int64_t k = idx[i];
        int c = (int)ds->y->data[k];
        ims[i] = (cg_plot_image){.h = ds->height, .w = ds->width,
                                 .caption = c >= 0 && c < ds->n_classes ? ds->class_names[c]
                                                                        : NULL};
        if (ds->pixels) ims[i].bytes = ds->pixels + k * hw;
        else ims[i].floats = ds->x->data + k * hw;
    }
    /* Floats are x = pixel / 255: drawn on the bytes' 0..1 scale. */
    cg_image_grid g = {.title = title, .images = ims, .n = n, .cols = cols, .lo = 0, .hi = 1,
                       .cmap = CG_CMAP_GREYS};
    cg_status st = cg_plot_image_grid(&g, path);
    free(idx);
    free(ims);
    return st;
}
