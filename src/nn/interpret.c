/*
 * interpret.c - fastai's ClassificationInterpretation: where a trained
 * classifier goes wrong.
 *
 *     interp = ClassificationInterpretation.from_learner(learn)
 *     interp.confusion_matrix()    # rows: actual class, columns: predicted
 *     interp.most_confused(min_val=1)
 *     interp.top_losses(k)         # the items the model is most wrong about
 *
 * Every item of the split is scored once, in the chunks cg_model_evaluate
 * uses (cg_eval_chunk), with its rule for the predicted class (one output:
 * class 0 when sigmoid(p) > 0.5, the book's; more: the argmax), so the
 * confusion matrix's diagonal counts exactly the items `cgrad eval` calls
 * right. Each item's loss is the model's loss on that item alone,
 * cg_loss(kind, preds[i:i+1], targets[i:i+1]) - fastai's loss_func with
 * reduction='none'; the probability of the prediction is sigmoid(p) or
 * 1 - sigmoid(p) for one output, the softmax's entry otherwise.
 */
#include "nn/layer.h"

void cg_interpretation_free(cg_interpretation *in) {
    if (!in) return;
    free(in->confusion);
    free(in->actual);
    free(in->predicted);
    free(in->losses);
    free(in->probs);
    *in = (cg_interpretation){0};
}

/* The predicted class of row p (out outputs) and its probability; soft is
 * the row's softmax (out > 1). */
static int predict_row(const float *p, const float *soft, int64_t out, double *prob) {
    if (out == 1) {
        float s = cg_sigmoidf(p[0]);
        int cls = s > 0.5f ? 0 : 1;
        *prob = cls == 0 ? (double)s : 1.0 - (double)s;
        return cls;
    }
    int cls = 0;
    for (int64_t c = 1; c < out; c++)
        if (p[c] > p[cls]) cls = (int)c;
    *prob = soft[cls];
    return cls;
}

/* One chunk: rows lo..lo+cnt of ds. */
static cg_status interpret_chunk(cg_model *m, const cg_dataset *ds, cg_loss_kind kind, int64_t lo,
                                 int64_t cnt, int64_t *idx, cg_interpretation *in) {
    cg_status st = CG_OK;
    cg_scope_begin();
    cg_tensor *x = cg_eval_rows(ds, lo, cnt, idx);
    cg_tensor *labels = cg_tensor_rows(ds->y, lo, lo + cnt);
    cg_tensor *preds = cg_model_forward(m, x);
    cg_tensor *targets = cg_loss_targets(kind, labels);
    cg_tensor *soft = preds && preds->shape[1] > 1 ? cg_tensor_softmax(preds) : preds;
    if (!preds || !targets || !soft) st = cg_last_status();
    const int64_t out = preds ? preds->shape[1] : 0;
    for (int64_t i = 0; st == CG_OK && i < cnt; i++) {
        int64_t k = lo + i;
        int want = (int)labels->data[i];
        if (want < 0 || want >= in->n_classes) {
            st = cg_fail(CG_ERR_ARG, "interpret: item %lld has label %d, not one of %d classes",
                         (long long)k, want, in->n_classes);
            break;
        }
        in->actual[k] = want;
        in->predicted[k] =
            predict_row(preds->data + i * out, soft->data + i * out, out, &in->probs[k]);
        in->confusion[(int64_t)want * in->n_classes + in->predicted[k]]++;
        cg_scope_begin();
        cg_tensor *l =
            cg_loss(kind, cg_tensor_rows(preds, i, i + 1), cg_tensor_rows(targets, i, i + 1));
        if (l)
            in->losses[k] = cg_tensor_item(l);
        else
            st = cg_last_status();
        cg_scope_end();
    }
    cg_scope_end();
    return st;
}

cg_status cg_interpret(cg_model *m, const cg_dataset *ds, cg_loss_kind loss,
                       cg_interpretation *out) {
    if (out) *out = (cg_interpretation){0};
    if (!m || !ds || !ds->y || !out)
        return cg_fail(CG_ERR_ARG, "interpret: needs a model, data and a result");
    if (cg_check_loss(m, ds->n_classes, loss) != CG_OK) return cg_last_status();
    if (cg_dataset_image_numel(ds) != m->n_inputs)
        return cg_fail(CG_ERR_SHAPE,
                       "interpret: the model takes %lld inputs, the images have %lld (%lldx%lld)",
                       (long long)m->n_inputs, (long long)cg_dataset_image_numel(ds),
                       (long long)ds->height, (long long)ds->width);
    const int64_t n = cg_dataset_size(ds), chunk = cg_eval_chunk(m);
    const int k = ds->n_classes;
    out->n_classes = k;
    out->n = n;
    size_t nn = (size_t)(n ? n : 1);
    out->confusion = calloc((size_t)k * (size_t)k, sizeof *out->confusion);
    out->actual = malloc(sizeof *out->actual * nn);
    out->predicted = malloc(sizeof *out->predicted * nn);
    out->losses = malloc(sizeof *out->losses * nn);
    out->probs = malloc(sizeof *out->probs * nn);
    int64_t *idx = ds->x ? NULL : malloc(sizeof *idx * (size_t)chunk);
    if (!out->confusion || !out->actual || !out->predicted || !out->losses || !out->probs ||
        (!ds->x && !idx)) {
        free(idx);
        cg_interpretation_free(out);
        return cg_fail(CG_ERR_NOMEM, "interpret: out of memory");
    }
    bool was_training = cg_model_train(m, false), prev = cg_set_grad_enabled(false);
    cg_status st = CG_OK;
    for (int64_t lo = 0; st == CG_OK && lo < n; lo += chunk)
        st = interpret_chunk(m, ds, loss, lo, n - lo < chunk ? n - lo : chunk, idx, out);
    cg_set_grad_enabled(prev);
    cg_model_train(m, was_training);
    free(idx);
    if (st != CG_OK) cg_interpretation_free(out);
    return st;
}

double cg_interpretation_accuracy(const cg_interpretation *in) {
    if (!in || in->n == 0) return NAN;
    int64_t right = 0;
    for (int c = 0; c < in->n_classes; c++) right += in->confusion[(int64_t)c * in->n_classes + c];
    return (double)right / (double)in->n;
}

/* Most first; ties in the matrix's row-major order (fastai sorts the cells
 * np.where lists, row-major, with a stable sort). */
static int cmp_confused(const void *a, const void *b) {
    const cg_confused_pair *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    if (x->actual != y->actual) return x->actual < y->actual ? -1 : 1;
    return (x->predicted > y->predicted) - (x->predicted < y->predicted);
}

int64_t cg_interpretation_most_confused(const cg_interpretation *in, int64_t min_val,
                                        cg_confused_pair *out) {
    if (!in || !out) return 0;
    if (min_val < 1) min_val = 1; /* the diagonal is zeroed, not a pair: never list zeros */
    int64_t n = 0;
    for (int a = 0; a < in->n_classes; a++)
        for (int p = 0; p < in->n_classes; p++) {
            int64_t c = in->confusion[(int64_t)a * in->n_classes + p];
            if (a != p && c >= min_val) out[n++] = (cg_confused_pair){a, p, c};
        }
    qsort(out, (size_t)n, sizeof *out, cmp_confused);
    return n;
}

typedef struct loss_item {
    double loss;
    int64_t index;
} loss_item;

/* Highest loss first (a NaN loss counts as the highest, as torch.topk
 * ranks it); ties: the lower index first. */
static int cmp_loss(const void *a, const void *b) {
    const loss_item *x = a, *y = b;
    bool xn = isnan(x->loss), yn = isnan(y->loss);
    if (xn != yn) return xn ? -1 : 1;
    if (!xn && x->loss != y->loss) return x->loss > y->loss ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

int64_t cg_interpretation_top_losses(const cg_interpretation *in, int64_t k, int64_t *idx) {
    if (!in || !idx || k < 1 || in->n < 1) return 0;
    loss_item *items = malloc(sizeof *items * (size_t)in->n);
    if (!items) {
        cg_fail(CG_ERR_NOMEM, "interpret: out of memory");
        return -1;
    }
    for (int64_t i = 0; i < in->n; i++) items[i] = (loss_item){in->losses[i], i};
    qsort(items, (size_t)in->n, sizeof *items, cmp_loss);
    if (k > in->n) k = in->n;
    for (int64_t i = 0; i < k; i++) idx[i] = items[i].index;
    free(items);
    return k;
}

/* ------------------------------------------------------------------ */
/* Pictures                                                            */
/* ------------------------------------------------------------------ */

cg_status cg_interpretation_plot_confusion(const cg_interpretation *in,
                                           const char (*names)[CG_CLASS_NAME_MAX],
                                           const char *title, const char *path) {
    if (!in || !in->confusion || !names)
        return cg_fail(CG_ERR_ARG, "confusion matrix plot: needs an interpretation and names");
    const int k = in->n_classes;
    double *values = malloc(sizeof *values * (size_t)(k * k));
    const char **labels = malloc(sizeof *labels * (size_t)k);
    if (!values || !labels) {
        free(values);
        free(labels);
        return cg_fail(CG_ERR_NOMEM, "confusion matrix plot: out of memory");
    }
    for (int i = 0; i < k * k; i++) values[i] = (double)in->confusion[i];
    for (int c = 0; c < k; c++) labels[c] = names[c];
    cg_heatmap map = {.title = title ? title : "Confusion matrix",
                      .x_label = "Predicted",
                      .y_label = "Actual",
                      .values = values,
                      .rows = k,
                      .cols = k,
                      .row_labels = labels,
                      .col_labels = labels,
                      .cmap = CG_CMAP_BLUES,
                      .show_values = true};
    cg_status st = cg_plot_heatmap(&map, path);
    free(values);
    free(labels);
    return st;
}

/* "7/3\n1.00 / 0.99": fastai's f'{pred}/{actual} / {loss:.2f} / {prob:.2f}' on two lines. */
#define CAPTION_MAX (2 * CG_CLASS_NAME_MAX + 48)

cg_status cg_interpretation_plot_top_losses(const cg_interpretation *in, const cg_dataset *ds,
                                            int64_t k, const char *path) {
    if (!in || !ds || in->n != cg_dataset_size(ds) || (!ds->pixels && !ds->x))
        return cg_fail(CG_ERR_ARG, "top losses plot: needs the interpretation of ds's images");
    if (k < 1)
        return cg_fail(CG_ERR_ARG, "top losses plot: k must be >= 1 (got %lld)", (long long)k);
    if (k > in->n) k = in->n;
    int64_t *idx = malloc(sizeof *idx * (size_t)k);
    cg_plot_image *images = calloc((size_t)k, sizeof *images);
    char(*captions)[CAPTION_MAX] = malloc(sizeof *captions * (size_t)k);
    cg_status st = CG_OK;
    if (!idx || !images || !captions)
        st = cg_fail(CG_ERR_NOMEM, "top losses plot: out of memory");
    else if ((k = cg_interpretation_top_losses(in, k, idx)) < 0)
        st = cg_last_status();
    const int64_t side = cg_dataset_image_numel(ds); /* an RGB image shows its R plane */
    for (int64_t i = 0; st == CG_OK && i < k; i++) {
        int64_t j = idx[i];
        snprintf(captions[i], CAPTION_MAX, "%s/%s\n%.2f / %.2f", ds->class_names[in->predicted[j]],
                 ds->class_names[in->actual[j]], in->losses[j], in->probs[j]);
        images[i] = (cg_plot_image){.bytes = ds->pixels ? ds->pixels + j * side : NULL,
                                    .floats = ds->pixels ? NULL : ds->x->data + j * side,
                                    .h = ds->height,
                                    .w = ds->width,
                                    .caption = captions[i]};
    }
    if (st == CG_OK) {
        cg_image_grid grid = {.title = "Prediction/Actual/Loss/Probability",
                              .images = images,
                              .n = (int)k,
                              .lo = 0.0f,
                              .hi = 1.0f};
        st = cg_plot_image_grid(&grid, path);
    }
    free(idx);
    free(images);
    free(captions);
    return st;
}
