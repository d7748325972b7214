/*
 * learner.c - training and scoring a model: fastai's Learner.fit and
 * validate, and one image's prediction.
 *
 * fit, for each epoch, for each mini-batch xb, yb of the (shuffled)
 * training set:
 *
 *     lr, mom = schedule(step / total_steps)     # one-cycle, or constant
 *     preds = model(xb)
 *     loss  = loss_fn(preds, yb)                 # mnist_loss, BCE or cross-entropy
 *     loss.backward()
 *     opt.step(); opt.zero_grad()
 *
 * then the whole validation set is scored with no graph, in eval mode. An
 * optional row "epoch 0" scores the untrained model first (the article
 * prints its accuracy before training).
 *
 * Each step runs inside a scope, so the batch, the graph and the loss are
 * freed together at its end and their buffers reused by the next step; the
 * optimizer's state is made on its first step and the recorder's rows up
 * front, so a step allocates nothing after the first (tests/test_alloc.c).
 * The targets are made once. With the same seed (weights, batch order) and
 * thread count, fit gives the same bits.
 */
#include "nn/layer.h"
#include "util/file.h"
#include "util/memory.h"

/* Numbers a scoring pass may hold at once (a forward pass with no graph
 * keeps every layer's output until its chunk is done): 16 MB of floats. */
#define EVAL_BUDGET ((int64_t)1 << 22)
#define EVAL_CHUNK_MAX 4096

/* Rows scored at a time: as many as the budget holds of the model's outputs per item, at most 4096 -
 * MNIST_SAMPLE's validation set in one go for the chapter's models, a few
 * hundred images at a time for a CNN. */
int64_t cg_eval_chunk(const cg_model *m) {
    int64_t per_item = m->n_inputs;
    for (int i = 0; i < m->n_layers; i++) {
        int64_t n = 1;
        for (int d = 0; d < m->layers[i].out_ndim; d++) n *= m->layers[i].out_shape[d];
        per_item += n;
    }
    int64_t rows = EVAL_BUDGET / (per_item > 0 ? per_item : 1);
    return rows < 64 ? 64 : rows > EVAL_CHUNK_MAX ? EVAL_CHUNK_MAX : rows;
}

/* ------------------------------------------------------------------ */
/* Scoring                                                             */
/* ------------------------------------------------------------------ */

/* Adds one batch's preds [n, out] against labels [n] into *s; class_of
 * follows the model's head: the book's sigmoid(p) > 0.5 means class 0 for
 * one output, the argmax otherwise. */
static void count_batch(const cg_tensor *preds, const float *labels, int64_t n, cg_score *s) {
    const int64_t out = preds->shape[1];
    for (int64_t i = 0; i < n; i++) {
        const float *p = preds->data + i * out;
        int cls = 0;
        if (out == 1) {
            cls = cg_sigmoidf(p[0]) > 0.5f ? 0 : 1;
        } else {
            for (int64_t c = 1; c < out; c++)
                if (p[c] > p[cls]) cls = (int)c;
        }
        int want = (int)labels[i];
        bool right = cls == want;
        if (want >= 0 && want < CG_MAX_CLASSES) {
            s->class_n[want]++;
            s->class_correct[want] += right;
        }
        s->correct += right;
    }
}

/* The loss fits the model's outputs and the data's classes. */
cg_status cg_check_loss(const cg_model *m, int n_classes, cg_loss_kind loss) {
    if (!cg_loss_name(loss)) return cg_fail(CG_ERR_ARG, "fit: unknown loss %d", (int)loss);
    bool binary = loss != CG_LOSS_CE;
    if (binary && (m->n_outputs != 1 || n_classes != 2))
        return cg_fail(CG_ERR_ARG,
                       "%s loss needs one output and 2 classes; the model has %lld outputs, the "
                       "data %d classes (use --loss ce)",
                       cg_loss_name(loss), (long long)m->n_outputs, n_classes);
    if (!binary && m->n_outputs != n_classes)
        return cg_fail(CG_ERR_ARG, "cross-entropy needs one output per class: the model has %lld "
                                   "outputs, the data %d classes",
                       (long long)m->n_outputs, n_classes);
    return CG_OK;
}

cg_status cg_model_evaluate(cg_model *m, const cg_dataset *ds, cg_loss_kind loss, cg_score *out) {
    if (!m || !ds || !out || !ds->y) return cg_fail(CG_ERR_ARG, "evaluate: needs a model and data");
    memset(out, 0, sizeof *out);
    out->n_classes = ds->n_classes;
    if (cg_check_loss(m, ds->n_classes, loss) != CG_OK) return cg_last_status();
    const int64_t n = cg_dataset_size(ds);
    bool was_training = cg_model_train(m, false), prev = cg_set_grad_enabled(false);
    cg_status st = CG_OK;
    double loss_sum = 0.0;
    /* In chunks sized by the model's activations (a CNN's are large): rows
     * of x, a view, when the split has floats, else batches made from its
     * bytes. The chapter's models score MNIST_SAMPLE's validation set in
     * one chunk, the article's validate. */
    const int64_t chunk = cg_eval_chunk(m);
    int64_t *idx = ds->x ? NULL : malloc(sizeof *idx * (size_t)chunk);
    if (!ds->x && !idx) st = cg_fail(CG_ERR_NOMEM, "evaluate: out of memory");
    for (int64_t lo = 0; st == CG_OK && lo < n; lo += chunk) {
        int64_t cnt = n - lo < chunk ? n - lo : chunk;
        cg_scope_begin();
        cg_tensor *x, *labels = cg_tensor_rows(ds->y, lo, lo + cnt);
        if (ds->x) {
            x = cg_tensor_rows(ds->x, lo, lo + cnt);
        } else {
            for (int64_t i = 0; i < cnt; i++) idx[i] = lo + i;
            x = cg_dataset_batch(ds, idx, cnt);
        }
        cg_tensor *preds = cg_model_forward(m, x);
        cg_tensor *l = cg_loss(loss, preds, cg_loss_targets(loss, labels));
        if (!l || !labels) {
            st = cg_last_status();
        } else {
            loss_sum += (double)cg_tensor_item(l) * (double)cnt;
            count_batch(preds, labels->data, cnt, out);
        }
        cg_scope_end();
    }
    free(idx);
    cg_set_grad_enabled(prev);
    cg_model_train(m, was_training);
    out->n = n;
    out->loss = loss_sum / (double)n;
    out->accuracy = (double)out->correct / (double)n;
    return st;
}

int cg_model_classify(cg_model *m, const uint8_t *pixels, double *probs, double *logit) {
    if (!m || !pixels || !probs) {
        cg_fail(CG_ERR_ARG, "classify: needs a model, pixels and room for the probabilities");
        return -1;
    }
    bool was_training = cg_model_train(m, false), prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *x = cg_tensor_new((int64_t[]){1, m->n_inputs}, 2);
    if (x)
        /* A single rounded division, as the loaders' pixel / 255. */
        for (int64_t i = 0; i < x->numel; i++) x->data[i] = (float)pixels[i] / 255.0f;
    cg_tensor *z = cg_model_forward(m, x);
    int cls = -1;
    if (z && m->n_outputs == 1) {
        /* The book's rule: sigmoid(logit) is the first class's probability. */
        double s = cg_sigmoidf(z->data[0]);
        cls = s > 0.5 ? 0 : 1;
        probs[0] = s;
        probs[1] = 1.0 - s;
        if (logit) *logit = z->data[0];
    } else if (z) {
        cg_tensor *p = cg_tensor_softmax(z);
        if (p) {
            cls = 0;
            for (int64_t c = 0; c < m->n_outputs; c++) {
                probs[c] = p->data[c];
                if (p->data[c] > p->data[cls]) cls = (int)c;
            }
            if (logit) *logit = z->data[cls];
        }
    }
    cg_scope_end();
    cg_set_grad_enabled(prev);
    cg_model_train(m, was_training);
    return cls;
}

/* ------------------------------------------------------------------ */
/* The recorder                                                        */
/* ------------------------------------------------------------------ */

/* Room for every epoch's row and every batch's figures, made up front. */
static cg_status recorder_reserve(cg_recorder *r, int epochs, int64_t batches) {
    if (epochs > r->epoch_cap) {
        cg_epoch_record *e = realloc(r->epochs, sizeof *e * (size_t)epochs);
        if (!e) return cg_fail(CG_ERR_NOMEM, "fit: out of memory for the recorder");
        r->epochs = e;
        r->epoch_cap = epochs;
    }
    if (batches > r->batch_cap) {
        float *l = realloc(r->batch_loss, sizeof *l * (size_t)batches);
        if (l) r->batch_loss = l;
        float *lr = l ? realloc(r->batch_lr, sizeof *lr * (size_t)batches) : NULL;
        if (lr) r->batch_lr = lr;
        if (!l || !lr) return cg_fail(CG_ERR_NOMEM, "fit: out of memory for the recorder");
        r->batch_cap = batches;
    }
    return CG_OK;
}

void cg_recorder_free(cg_recorder *r) {
    if (!r) return;
    free(r->epochs);
    free(r->batch_loss);
    free(r->batch_lr);
    *r = (cg_recorder){0};
}

/* NaN and infinities as JSON's null / CSV's empty field. */
static void put_number(FILE *f, double v, bool json) {
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else if (json)
        fputs("null", f);
}

cg_status cg_recorder_write(const cg_recorder *r, const char *path) {
    if (!r || !path) return cg_fail(CG_ERR_ARG, "history: needs a recorder and a path");
    const char *dot = strrchr(path, '.');
    bool json = dot && strcmp(dot, ".json") == 0;
    if (!json && !(dot && strcmp(dot, ".csv") == 0))
        return cg_fail(CG_ERR_ARG, "history: %s: the file name must end in .csv or .json", path);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return cg_fail(CG_ERR_NOMEM, "history: out of memory");
    static const char *const cols[] = {"epoch", "train_loss", "valid_loss", "accuracy", "seconds"};
    if (json) fputs("{\"epochs\":[", f);
    else fprintf(f, "%s,%s,%s,%s,%s\n", cols[0], cols[1], cols[2], cols[3], cols[4]);
    for (int i = 0; i < r->n_epochs; i++) {
        const cg_epoch_record *e = &r->epochs[i];
        double v[4] = {e->train_loss, e->valid_loss, e->accuracy, e->seconds};
        if (json) fprintf(f, "%s{\"%s\":%d", i ? "," : "", cols[0], e->epoch);
        else fprintf(f, "%d", e->epoch);
        for (int k = 0; k < 4; k++) {
            if (json) fprintf(f, ",\"%s\":", cols[k + 1]);
            else fputc(',', f);
            put_number(f, v[k], json);
        }
        fputs(json ? "}" : "\n", f);
    }
    if (json) {
        const float *series[2] = {r->batch_loss, r->batch_lr};
        const char *names[2] = {"loss", "lr"};
        fputs("],\"batches\":{", f);
        for (int s = 0; s < 2; s++) {
            fprintf(f, "%s\"%s\":[", s ? "," : "", names[s]);
            for (int64_t b = 0; b < r->n_batches; b++) {
                if (b) fputc(',', f);
                put_number(f, series[s][b], true);
            }
            fputc(']', f);
        }
        fputs("}}\n", f);
    }
    if (fclose(f) != 0 || !text) {
        free(text);
        return cg_fail(CG_ERR_NOMEM, "history: out of memory");
    }
    cg_status st = cg_write_file_atomic("history", path, text, len);
    free(text);
    return st;
}

/* ------------------------------------------------------------------ */
/* fit                                                                 */
/* ------------------------------------------------------------------ */

typedef struct fit_state {
    cg_model *m;
    const cg_dataset *train, *valid;
    const cg_fit_config *cfg;
    cg_recorder *rec;
    cg_tensor *targets;   /* the training labels as the loss wants them */
    cg_optimizer *opt;
    cg_schedule sched;
    cg_dataloader own_dl, *dl; /* the caller's loader, or own_dl */
    int64_t step, total_steps;
} fit_state;

/* Records an epoch's row and tells the caller; false: stop. */
static bool end_epoch(fit_state *s, const cg_epoch_record *row, const cg_score *valid) {
    cg_recorder *r = s->rec;
    if (r && r->n_epochs < r->epoch_cap) r->epochs[r->n_epochs++] = *row;
    return !s->cfg->on_epoch || s->cfg->on_epoch(s->cfg->user, row, valid);
}

/* One epoch of steps; *mean_loss is the training loss averaged over the
 * epoch's items (a batch's mean loss weighted by its size). */
static cg_status train_epoch(fit_state *s, int epoch, double *mean_loss) {
    const int64_t *idx;
    int64_t count, done = 0, total = cg_dataloader_num_batches(s->dl);
    double loss_sum = 0.0;
    cg_dataloader_reset(s->dl);
    cg_model_train(s->m, true);
    cg_status st = CG_OK;
    while (st == CG_OK && cg_dataloader_next(s->dl, &idx, &count)) {
        float lr = s->cfg->opt.lr, mom = s->cfg->opt.momentum;
        if (s->sched.kind != CG_SCHED_CONSTANT) {
            cg_schedule_at(&s->sched, (double)s->step / (double)s->total_steps, &lr, &mom);
            cg_optimizer_set_lr(s->opt, lr);
            cg_optimizer_set_momentum(s->opt, mom);
        }
        cg_scope_begin();
        cg_tensor *xb = cg_dataset_batch(s->train, idx, count);
        cg_tensor *yb = cg_tensor_index_select(s->targets, idx, count);
        cg_tensor *loss = cg_loss(s->cfg->loss, cg_model_forward(s->m, xb), yb);
        st = loss ? cg_backward(loss) : cg_last_status();
        float value = loss ? cg_tensor_item(loss) : NAN;
        if (st == CG_OK) {
            loss_sum += (double)value * (double)count;
            st = cg_optimizer_step(s->opt);
        }
        cg_scope_end();
        if (s->rec && s->rec->n_batches < s->rec->batch_cap) {
            s->rec->batch_loss[s->rec->n_batches] = value;
            s->rec->batch_lr[s->rec->n_batches++] = lr;
        }
        s->step++;
        if (s->cfg->on_batch) s->cfg->on_batch(s->cfg->user, epoch, ++done, total, value);
    }
    cg_model_train(s->m, false);
    *mean_loss = loss_sum / (double)s->dl->n;
    return st;
}

static cg_status check_config(const cg_model *m, const cg_dataset *train, const cg_dataset *valid,
                              const cg_fit_config *c) {
    if (!m || !train || !valid || !c || !train->y || !valid->y)
        return cg_fail(CG_ERR_ARG, "fit: needs a model, training and validation data, a config");
    if (c->epochs < 0 || c->bs < 1)
        return cg_fail(CG_ERR_ARG, "fit: epochs must be >= 0 and the batch size >= 1 (got %lld, "
                                   "%lld)",
                       (long long)c->epochs, (long long)c->bs);
    if (train->n_classes != valid->n_classes)
        return cg_fail(CG_ERR_ARG, "fit: the training data has %d classes, the validation data %d",
                       train->n_classes, valid->n_classes);
    if (cg_dataset_size(train) < 1) return cg_fail(CG_ERR_ARG, "fit: no training data");
    if (train->height * train->width != m->n_inputs)
        return cg_fail(CG_ERR_SHAPE, "fit: the model takes %lld inputs, the images have %lldx%lld",
                       (long long)m->n_inputs, (long long)train->height, (long long)train->width);
    if (cg_check_loss(m, train->n_classes, c->loss) != CG_OK) return cg_last_status();
    /* Up front, not after seconds of paging: what a step will take. */
    int n_states = c->opt.kind == CG_OPTIM_ADAM ? 2 : c->opt.momentum != 0.0f ? 1 : 0;
    char what[96];
    snprintf(what, sizeof what, "training with batches of %lld", (long long)c->bs);
    return cg_memory_check("fit", cg_model_train_bytes(m, c->bs, n_states), what);
}

cg_status cg_fit(cg_model *m, const cg_dataset *train, const cg_dataset *valid,
                 const cg_fit_config *cfg, cg_recorder *rec, cg_score *final_score) {
    if (check_config(m, train, valid, cfg) != CG_OK) return cg_last_status();
    fit_state s = {.m = m, .train = train, .valid = valid, .cfg = cfg, .rec = rec};
    cg_status st = CG_OK;
    cg_score score = {0};
    s.sched = cfg->sched == CG_SCHED_ONE_CYCLE ? cg_one_cycle(cfg->opt.lr)
                                               : (cg_schedule){.kind = CG_SCHED_CONSTANT,
                                                               .lr_max = cfg->opt.lr};
    /* Made in a scope of our own and kept by one reference. */
    cg_scope_begin();
    s.targets = cg_tensor_retain(cg_loss_targets(cfg->loss, train->y));
    cg_scope_end();
    s.dl = cfg->train_loader ? cfg->train_loader : &s.own_dl;
    if (!s.targets || !(s.opt = cg_optimizer_new(&cfg->opt, m->params, m->n_params)) ||
        (!cfg->train_loader &&
         cg_dataloader_init(&s.own_dl, cg_dataset_size(train), cfg->bs, cfg->shuffle, false,
                            cfg->seed) != CG_OK))
        goto fail;
    if (s.dl->n != cg_dataset_size(train)) {
        cg_fail(CG_ERR_ARG, "fit: the loader has %lld items, the training data %lld",
                (long long)s.dl->n, (long long)cg_dataset_size(train));
        goto fail;
    }
    s.total_steps = cfg->epochs * cg_dataloader_num_batches(s.dl);
    if (rec && recorder_reserve(rec, rec->n_epochs + (int)cfg->epochs + 1,
                                rec->n_batches + s.total_steps) != CG_OK)
        goto fail;

    double t0 = cg_seconds();
    bool go_on = true;
    if (cfg->score_epoch0) {
        cg_score on_train;
        if (cg_model_evaluate(m, train, cfg->loss, &on_train) != CG_OK ||
            cg_model_evaluate(m, valid, cfg->loss, &score) != CG_OK)
            goto fail;
        cg_epoch_record row = {0, on_train.loss, score.loss, score.accuracy, cg_seconds() - t0};
        go_on = end_epoch(&s, &row, &score);
    }
    for (int e = 1; go_on && e <= (int)cfg->epochs; e++) {
        double te = cg_seconds(), train_loss;
        if (train_epoch(&s, e, &train_loss) != CG_OK ||
            cg_model_evaluate(m, valid, cfg->loss, &score) != CG_OK)
            goto fail;
        cg_epoch_record row = {e, train_loss, score.loss, score.accuracy, cg_seconds() - te};
        go_on = end_epoch(&s, &row, &score);
    }
    if (final_score) *final_score = score;
    goto done;
fail:
    st = cg_last_status() != CG_OK ? cg_last_status() : CG_ERR_STATE;
done:
    cg_dataloader_free(&s.own_dl);
    cg_optimizer_free(s.opt);
    cg_tensor_release(s.targets);
    return st;
}
