/*
 * lr_find.c - fastai's learning-rate finder (Learner.lr_find, LRFinder).
 *
 * Mini-batch training with an lr that grows exponentially from start_lr
 * to end_lr over num_it batches,
 *
 *     lr_i = start_lr * (end_lr / start_lr)^(i / num_it),   i = 0 .. num_it-1
 *
 * recording the loss smoothed as fastai's Recorder does (AvgSmoothLoss,
 * beta 0.98: an exponential moving average that starts at 0, divided by
 * 1 - beta^count to undo that start's pull towards 0). The loss first
 * falls as the lr gets big enough to learn, then rises and blows up once
 * the steps overshoot; the finder stops there (smoothed loss above 4x its
 * minimum, or not a number). A good lr lies on the falling slope, and
 * fastai's suggestions (valley, minimum / 10, steepest) pick points on it.
 *
 * The epochs run on as long as needed (fastai: num_it // len(dl) + 1 of
 * them), the loader reshuffling each. The model's weights, batch norm
 * statistics, dropout generator and mode are saved before and put back
 * after, as fastai saves and reloads a _tmp file; the optimizer is the
 * finder's own and is dropped.
 */
#include "nn/layer.h"

#define SMOOTH_BETA 0.98
#define DIV_FACTOR 4.0 /* fastai: stop once smooth_loss > 4 * best_loss */
#define SKIP_END 5     /* fastai's lr_find suggests from lrs[num_it//10:-5] */
#define MIN_NUM_IT 6   /* fastai: num_it < 6 -> 6 */

cg_lr_find_config cg_lr_find_defaults(cg_loss_kind loss, const cg_optim_config *opt, int64_t bs,
                                      uint64_t seed) {
    return (cg_lr_find_config){.start_lr = 1e-7,
                               .end_lr = 10.0,
                               .num_it = 100,
                               .stop_div = true,
                               .bs = bs,
                               .seed = seed,
                               .shuffle = true,
                               .loss = loss,
                               .opt = *opt};
}

void cg_lr_find_result_free(cg_lr_find_result *r) {
    if (!r) return;
    free(r->lrs);
    free(r->losses);
    free(r->raw_losses);
    *r = (cg_lr_find_result){0};
}

/* ------------------------------------------------------------------ */
/* The model's state, saved and put back                               */
/* ------------------------------------------------------------------ */

/* Every float the finder's steps change: each parameter's values and
 * gradient (when it had one) and each layer's state (running statistics),
 * in one buffer, in that order. */
typedef struct model_snapshot {
    float *buf;
    bool *had_grad; /* per parameter */
    cg_rng rng;
    bool training;
} model_snapshot;

static void copy_floats(float *model, float *buf, int64_t n, bool save) {
    if (save)
        memcpy(buf, model, sizeof(float) * (size_t)n);
    else
        memcpy(model, buf, sizeof(float) * (size_t)n);
}

/* Walks the floats a snapshot holds; save: model -> buf, else back. */
static void snapshot_copy(cg_model *m, const model_snapshot *s, bool save) {
    float *at = s->buf;
    for (int i = 0; i < m->n_params; i++) {
        cg_tensor *p = m->params[i];
        copy_floats(p->data, at, p->numel, save);
        at += p->numel;
        if (s->had_grad[i]) {
            copy_floats(p->grad, at, p->numel, save);
            at += p->numel;
        }
    }
    for (int i = 0; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_state; k++) {
            cg_tensor *t = m->layers[i].state[k];
            copy_floats(t->data, at, t->numel, save);
            at += t->numel;
        }
}

static cg_status snapshot_save(cg_model *m, model_snapshot *s) {
    size_t n = 0;
    s->had_grad = calloc((size_t)m->n_params + 1, sizeof *s->had_grad);
    for (int i = 0; s->had_grad && i < m->n_params; i++) {
        s->had_grad[i] = m->params[i]->grad != NULL;
        n += (size_t)m->params[i]->numel * (s->had_grad[i] ? 2 : 1);
    }
    for (int i = 0; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_state; k++) n += (size_t)m->layers[i].state[k]->numel;
    s->buf = malloc(sizeof(float) * (n ? n : 1));
    if (!s->buf || !s->had_grad) return cg_fail(CG_ERR_NOMEM, "lr_find: out of memory");
    snapshot_copy(m, s, true);
    s->rng = m->rng;
    s->training = m->training;
    return CG_OK;
}

/* Puts the model back. A gradient the finder's steps made (none before)
 * is left zeroed, as fastai's after_fit zero_grad leaves it. */
static void snapshot_restore(cg_model *m, const model_snapshot *s) {
    snapshot_copy(m, s, false);
    for (int i = 0; i < m->n_params; i++)
        if (!s->had_grad[i] && m->params[i]->grad)
            memset(m->params[i]->grad, 0, sizeof(float) * (size_t)m->params[i]->numel);
    m->rng = s->rng;
    cg_model_train(m, s->training);
}

static void snapshot_free(model_snapshot *s) {
    free(s->buf);
    free(s->had_grad);
}

/* ------------------------------------------------------------------ */
/* The suggestions                                                     */
/* ------------------------------------------------------------------ */

/* fastai's valley(): lds[i] is the length of the longest decreasing run
 * (subsequence) of losses ending at i; the longest one, from max_start to
 * max_end, is the valley, and the suggestion sits 2/3 of the way down it
 * (sections = len/3; idx = start + sections + sections/2, truncated as
 * fastai's int()). fastai's max_start can be -1 (a run from the very first
 * point): its index is clamped to 0 here where Python would wrap. */
static int64_t valley_index(const double *losses, int64_t n, int64_t *lds) {
    int64_t max_start = 0, max_end = 0;
    for (int64_t i = 0; i < n; i++) lds[i] = 1;
    for (int64_t i = 1; i < n; i++)
        for (int64_t j = 0; j < i; j++) {
            if (losses[i] < losses[j] && lds[i] < lds[j] + 1) lds[i] = lds[j] + 1;
            if (lds[max_end] < lds[i]) {
                max_end = i;
                max_start = max_end - lds[max_end];
            }
        }
    double sections = (double)(max_end - max_start) / 3.0;
    int64_t idx = max_start + (int64_t)sections + (int64_t)(sections / 2.0);
    return idx < 0 ? 0 : idx >= n ? n - 1 : idx;
}

/* fastai's minimum(): the lowest loss (its first occurrence). */
static int64_t minimum_index(const double *losses, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (losses[i] < losses[best]) best = i;
    return best;
}

/* fastai's steep(): argmin over i of (loss[i+1] - loss[i]) / (log lr[i+1] - log lr[i]). */
static int64_t steepest_index(const double *lrs, const double *losses, int64_t n) {
    int64_t best = 0;
    double best_g = INFINITY;
    for (int64_t i = 0; i + 1 < n; i++) {
        double g = (losses[i + 1] - losses[i]) / (log(lrs[i + 1]) - log(lrs[i]));
        if (g < best_g) {
            best_g = g;
            best = i;
        }
    }
    return best;
}

static cg_status suggest(cg_lr_find_result *r, int64_t num_it) {
    /* fastai: lrs[num_it//10:-5], cut at the first NaN. */
    int64_t lo = num_it / 10, hi = r->n - SKIP_END;
    if (hi - lo < 2) lo = 0, hi = r->n;
    for (int64_t i = lo; i < hi; i++)
        if (isnan(r->losses[i])) {
            hi = i;
            break;
        }
    if (hi - lo < 2)
        return cg_fail(CG_ERR_STATE,
                       "lr_find: the loss was not a number after %lld batches: too few points to "
                       "suggest an lr (try a lower start lr)",
                       (long long)r->n);
    int64_t *lds = malloc(sizeof *lds * (size_t)(hi - lo));
    if (!lds) return cg_fail(CG_ERR_NOMEM, "lr_find: out of memory");
    r->suggest_from = lo;
    r->suggest_to = hi;
    const double *lrs = r->lrs + lo, *losses = r->losses + lo;
    r->valley_idx = lo + valley_index(losses, hi - lo, lds);
    r->minimum_idx = lo + minimum_index(losses, hi - lo);
    r->steepest_idx = lo + steepest_index(lrs, losses, hi - lo);
    free(lds);
    r->valley = r->lrs[r->valley_idx];
    r->minimum = r->lrs[r->minimum_idx] / 10.0;
    r->steepest = r->lrs[r->steepest_idx];
    return CG_OK;
}

/* ------------------------------------------------------------------ */
/* The sweep                                                           */
/* ------------------------------------------------------------------ */

static cg_status check_config(const cg_model *m, const cg_dataset *train,
                              const cg_lr_find_config *c) {
    if (!m || !train || !train->y || !c)
        return cg_fail(CG_ERR_ARG, "lr_find: needs a model, training data and a config");
    if (!(c->start_lr > 0) || !(c->end_lr > c->start_lr) || !isfinite(c->end_lr))
        return cg_fail(CG_ERR_ARG,
                       "lr_find: the lrs must satisfy 0 < start_lr < end_lr (got %g, %g)",
                       c->start_lr, c->end_lr);
    if (c->num_it < MIN_NUM_IT || c->num_it > 1000000)
        return cg_fail(CG_ERR_ARG, "lr_find: num_it must be in [%d, 1000000] (got %lld)",
                       MIN_NUM_IT, (long long)c->num_it);
    if (c->bs < 1)
        return cg_fail(CG_ERR_ARG, "lr_find: the batch size must be >= 1 (got %lld)",
                       (long long)c->bs);
    if (cg_dataset_size(train) < 1) return cg_fail(CG_ERR_ARG, "lr_find: no training data");
    if (cg_dataset_image_numel(train) != m->n_inputs)
        return cg_fail(CG_ERR_SHAPE,
                       "lr_find: the model takes %lld inputs, the images have %lld (%lldx%lld)",
                       (long long)m->n_inputs, (long long)cg_dataset_image_numel(train),
                       (long long)train->height, (long long)train->width);
    return cg_check_loss(m, train->n_classes, c->loss);
}

/* One training step at lr on the batch idx[0..count); its loss, NaN after
 * a failure (*st says which). */
static double step(cg_model *m, const cg_dataset *train, cg_tensor *targets, cg_optimizer *opt,
                   cg_loss_kind kind, const int64_t *idx, int64_t count, cg_status *st) {
    cg_scope_begin();
    cg_tensor *xb = cg_dataset_batch(train, idx, count);
    cg_tensor *yb = cg_tensor_index_select(targets, idx, count);
    cg_tensor *loss = cg_loss(kind, cg_model_forward(m, xb), yb);
    *st = loss ? cg_backward(loss) : cg_last_status();
    double value = loss ? (double)cg_tensor_item(loss) : NAN;
    if (*st == CG_OK) *st = cg_optimizer_step(opt);
    cg_scope_end();
    return value;
}

static cg_status sweep(cg_model *m, const cg_dataset *train, const cg_lr_find_config *c,
                       cg_tensor *targets, cg_optimizer *opt, cg_dataloader *dl,
                       cg_lr_find_result *r) {
    double avg = 0.0, best = INFINITY, beta_pow = 1.0;
    const double ratio = c->end_lr / c->start_lr;
    cg_status st = CG_OK;
    cg_model_train(m, true);
    cg_dataloader_reset(dl);
    for (int64_t i = 0; i < c->num_it; i++) {
        const int64_t *idx;
        int64_t count;
        if (!cg_dataloader_next(dl, &idx, &count)) {
            cg_dataloader_reset(dl); /* the next epoch, reshuffled */
            if (!cg_dataloader_next(dl, &idx, &count))
                return cg_fail(CG_ERR_STATE, "lr_find: the loader gives no batches");
        }
        double lr = c->start_lr * pow(ratio, (double)i / (double)c->num_it);
        cg_optimizer_set_lr(opt, (float)lr);
        double loss = step(m, train, targets, opt, c->loss, idx, count, &st);
        if (st != CG_OK) return st;
        avg = SMOOTH_BETA * avg + (1.0 - SMOOTH_BETA) * loss;
        beta_pow *= SMOOTH_BETA;
        double smooth = avg / (1.0 - beta_pow);
        r->lrs[r->n] = lr;
        r->losses[r->n] = smooth;
        r->raw_losses[r->n++] = loss;
        if (c->on_batch) c->on_batch(c->user, i + 1, c->num_it, lr, smooth);
        if (smooth < best) best = smooth;
        if (c->stop_div && (!isfinite(smooth) || smooth > DIV_FACTOR * best)) {
            r->diverged = true;
            break;
        }
    }
    return CG_OK;
}

cg_status cg_lr_find(cg_model *m, const cg_dataset *train, const cg_lr_find_config *cfg,
                     cg_lr_find_result *out) {
    if (out) *out = (cg_lr_find_result){0};
    if (!out) return cg_fail(CG_ERR_ARG, "lr_find: needs somewhere for the result");
    if (check_config(m, train, cfg) != CG_OK) return cg_last_status();
    size_t n = (size_t)cfg->num_it;
    out->lrs = malloc(sizeof(double) * n);
    out->losses = malloc(sizeof(double) * n);
    out->raw_losses = malloc(sizeof(double) * n);
    model_snapshot snap = {0};
    if (!out->lrs || !out->losses || !out->raw_losses || snapshot_save(m, &snap) != CG_OK) {
        snapshot_free(&snap);
        cg_lr_find_result_free(out);
        return cg_fail(CG_ERR_NOMEM, "lr_find: out of memory");
    }
    cg_dataloader dl = {0};
    cg_optimizer *opt = NULL;
    cg_status st = CG_OK;
    /* Made in a scope of our own and kept by one reference, as fit does. */
    cg_scope_begin();
    cg_tensor *targets = cg_tensor_retain(cg_loss_targets(cfg->loss, train->y));
    cg_scope_end();
    if (!targets || !(opt = cg_optimizer_new(&cfg->opt, m->params, m->n_params)) ||
        cg_dataloader_init(&dl, cg_dataset_size(train), cfg->bs, cfg->shuffle, false, cfg->seed) !=
            CG_OK)
        st = cg_last_status() != CG_OK ? cg_last_status() : CG_ERR_STATE;
    if (st == CG_OK) st = sweep(m, train, cfg, targets, opt, &dl, out);
    if (opt) cg_optimizer_zero_grad(opt);
    snapshot_restore(m, &snap);
    if (st == CG_OK) st = suggest(out, cfg->num_it);
    cg_dataloader_free(&dl);
    cg_optimizer_free(opt);
    cg_tensor_release(targets);
    snapshot_free(&snap);
    if (st != CG_OK) cg_lr_find_result_free(out);
    return st;
}

/* ------------------------------------------------------------------ */
/* The picture                                                         */
/* ------------------------------------------------------------------ */

cg_status cg_lr_find_plot(const cg_lr_find_result *r, const char *title, const char *path) {
    if (!r || r->n < 1 || !r->lrs) return cg_fail(CG_ERR_ARG, "lr_find plot: no sweep to draw");
    /* fastai's plot_lr_find(skip_end=5): the last points, where the loss
     * shoots up, would squash the rest of the curve. */
    int64_t n = r->n > 2 * SKIP_END ? r->n - SKIP_END : r->n;
    cg_plot_series loss = {.name = NULL, .x = r->lrs, .y = r->losses, .n = n};
    char labels[3][64];
    snprintf(labels[0], sizeof labels[0], "valley %.2e", r->valley);
    snprintf(labels[1], sizeof labels[1], "minimum %.2e (lr/10)", r->minimum);
    snprintf(labels[2], sizeof labels[2], "steepest %.2e", r->steepest);
    const int64_t at[3] = {r->valley_idx, r->minimum_idx, r->steepest_idx};
    cg_plot_mark marks[3];
    for (int k = 0; k < 3; k++)
        marks[k] = (cg_plot_mark){r->lrs[at[k]], r->losses[at[k]], labels[k]};
    cg_line_plot plot = {.title = title,
                         .x_label = "Learning Rate",
                         .y_label = "Loss",
                         .series = &loss,
                         .n_series = 1,
                         .marks = marks,
                         .n_marks = 3,
                         .log_x = true};
    return cg_plot_lines(&plot, 640, 480, path);
}
