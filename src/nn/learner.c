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
 *
 * With a communicator (cfg->comm, src/nn/distributed.c) fit is
 * data-parallel over N processes, each holding the model and the data.
 * Every rank's loader makes the same order from the seed; of each global
 * batch of B rows rank r takes rows [B*r/N, B*(r+1)/N), n_r of them. The
 * losses are means, so rank r's gradient is g_r = (1/n_r) sum_{i in r} dl_i,
 * and the single-process gradient is
 *     g = (1/B) sum_i dl_i = sum_r (n_r / B) g_r,
 * which is what one MPI_Allreduce (a sum) of the n_r/B-weighted gradients
 * gives every rank - for the last, shorter batch too. The same flat buffer
 * carries the weighted loss and each rank's failure flag, so one collective
 * per step does all three. Validation is split the same way and its sums
 * reduced. Without a communicator nothing of this runs: the same bits as
 * ever.
 */
#include "nn/distributed.h"
#include "nn/layer.h"
#include "util/file.h"
#include "util/memory.h"

/* Numbers a scoring pass may hold at once (a forward pass with no graph
 * keeps every layer's output until its chunk is done): 16 MB of floats. */
#define EVAL_BUDGET ((int64_t)1 << 22)
#define EVAL_CHUNK_MAX 4096

/* Rows scored at a time: as many as the budget holds of the model's
 * outputs per item, at most 4096 - MNIST_SAMPLE's validation set in one go
 * for the chapter's models, a few hundred images at a time for a CNN. */
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
cg_tensor *cg_eval_rows(const cg_dataset *ds, int64_t lo, int64_t cnt, int64_t *idx) {
    if (ds->x) return cg_tensor_rows(ds->x, lo, lo + cnt);
    for (int64_t i = 0; i < cnt; i++) idx[i] = lo + i;
    return cg_dataset_batch(ds, idx, cnt);
}

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

/* Scores rows [begin, n) of ds into *out's counts and *loss_sum_out (each
 * chunk's mean loss times its rows); the checks are the caller's. */
static cg_status evaluate_rows(cg_model *m, const cg_dataset *ds, cg_loss_kind loss,
                               int64_t begin, int64_t n, cg_score *out, double *loss_sum_out) {
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
    for (int64_t lo = begin; st == CG_OK && lo < n; lo += chunk) {
        int64_t cnt = n - lo < chunk ? n - lo : chunk;
        cg_scope_begin();
        cg_tensor *x = cg_eval_rows(ds, lo, cnt, idx);
        cg_tensor *labels = cg_tensor_rows(ds->y, lo, lo + cnt);
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
    *loss_sum_out = loss_sum;
    return st;
}

cg_status cg_model_evaluate(cg_model *m, const cg_dataset *ds, cg_loss_kind loss, cg_score *out) {
    if (!m || !ds || !out || !ds->y) return cg_fail(CG_ERR_ARG, "evaluate: needs a model and data");
    memset(out, 0, sizeof *out);
    out->n_classes = ds->n_classes;
    if (cg_check_loss(m, ds->n_classes, loss) != CG_OK) return cg_last_status();
    const int64_t n = cg_dataset_size(ds);
    double loss_sum = 0.0;
    cg_status st = evaluate_rows(m, ds, loss, 0, n, out, &loss_sum);
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
    cg_comm *comm;        /* NULL: one process                          */
    float *flat;          /* comm: every gradient, the loss and a flag  */
    int64_t n_flat;       /* the gradients' floats                      */
} fit_state;

/* ------------------------------------------------------------------ */
/* fit over several ranks (cfg->comm; see the top of the file)         */
/* ------------------------------------------------------------------ */

/* Rank 0's weights (with_params) and state (batch norm's running
 * statistics) to every rank. */
static cg_status share_rank0(cg_comm *c, cg_model *m, bool with_params) {
    for (int i = 0; i < m->n_layers; i++) {
        cg_layer *l = &m->layers[i];
        for (int k = 0; with_params && k < l->n_params; k++)
            if (cg_comm_bcast_floats(c, l->params[k]->data, l->params[k]->numel) != CG_OK)
                return cg_last_status();
        for (int k = 0; k < l->n_state; k++)
            if (cg_comm_bcast_floats(c, l->state[k]->data, l->state[k]->numel) != CG_OK)
                return cg_last_status();
    }
    return CG_OK;
}

/* Every rank must be running the same job: the same amount of data, batch
 * size, epochs, model size and batch order, else the ranks would wait for
 * each other forever or silently train on different orders. Compared with
 * rank 0's, then agreed on. */
static cg_status check_same_job(fit_state *s) {
    static const char *const what[] = {"training items", "validation items", "batch size",
                                       "epochs", "parameters", "loader seed", "shuffle",
                                       "batches per epoch"};
    enum { N_WHAT = sizeof what / sizeof what[0] };
    const cg_fit_config *c = s->cfg;
    int64_t mine[N_WHAT] = {cg_dataset_size(s->train), cg_dataset_size(s->valid), s->dl->batch_size,
                            c->epochs, cg_model_param_count(s->m), (int64_t)c->seed,
                            s->dl->shuffle, cg_dataloader_num_batches(s->dl)};
    int64_t root[N_WHAT];
    memcpy(root, mine, sizeof root);
    cg_status st = cg_comm_bcast_i64(s->comm, root, N_WHAT);
    for (int k = 0; st == CG_OK && k < N_WHAT; k++)
        if (mine[k] != root[k])
            st = cg_fail(CG_ERR_ARG, "fit: rank %d has %s %lld, rank 0 %lld: every rank must "
                                     "train the same data with the same settings",
                         cg_comm_rank(s->comm), what[k], (long long)mine[k],
                         (long long)root[k]);
    return cg_comm_agree(s->comm, st);
}

/* The flat buffer, every parameter's gradient allocated (so a rank whose
 * slice is empty still has one to receive the sum), the same weights on
 * every rank, and a dropout stream of each rank's own. */
static cg_status setup_ranks(fit_state *s) {
    cg_model *m = s->m;
    cg_status st = CG_OK;
    for (int i = 0; i < m->n_params; i++) {
        s->n_flat += m->params[i]->numel;
        if (!cg_grad_buf(m->params[i])) st = cg_fail(CG_ERR_NOMEM, "fit: out of memory");
    }
    if (st == CG_OK && !(s->flat = malloc(sizeof *s->flat * (size_t)(s->n_flat + 2))))
        st = cg_fail(CG_ERR_NOMEM, "fit: out of memory for the gradient buffer");
    if ((st = cg_comm_agree(s->comm, st)) != CG_OK || check_same_job(s) != CG_OK ||
        cg_comm_agree(s->comm, share_rank0(s->comm, m, true)) != CG_OK)
        return cg_last_status();
    /* Rank 0 keeps the stream a single process would use. */
    const uint64_t rank = (uint64_t)cg_comm_rank(s->comm);
    if (rank > 0) cg_rng_seed(&m->rng, m->rng.state ^ (rank * 0x9e3779b97f4a7c15ULL));
    return CG_OK;
}

/* After this rank's forward and backward on n_local of the batch's count
 * rows (st: how they went): the sum over ranks of each gradient times
 * n_local / count, with the batch's mean loss into *value, in one
 * allreduce of the flat buffer. A failure on any rank fails every rank. */
static cg_status average_step(fit_state *s, cg_status st, int64_t n_local, int64_t count,
                              float *value) {
    cg_model *m = s->m;
    float *buf = s->flat;
    const bool have = st == CG_OK && n_local > 0;
    const float w = (float)((double)n_local / (double)count);
    int64_t k = 0;
    for (int i = 0; i < m->n_params; i++) {
        const cg_tensor *p = m->params[i];
        for (int64_t j = 0; j < p->numel; j++) buf[k + j] = have ? p->grad[j] * w : 0.0f;
        k += p->numel;
    }
    buf[k] = have ? *value * w : 0.0f;
    buf[k + 1] = st != CG_OK ? 1.0f : 0.0f;
    if (cg_comm_allreduce_floats(s->comm, buf, k + 2) != CG_OK) return cg_last_status();
    if (buf[k + 1] != 0.0f) return cg_comm_agree(s->comm, st);
    k = 0;
    for (int i = 0; i < m->n_params; i++) {
        cg_tensor *p = m->params[i];
        memcpy(p->grad, buf + k, sizeof *buf * (size_t)p->numel);
        k += p->numel;
    }
    *value = buf[k];
    return CG_OK;
}

/* cg_model_evaluate, or with ranks: rank 0's running statistics to all,
 * then each rank scores its share of the rows and the sums are reduced. */
static cg_status fit_evaluate(fit_state *s, const cg_dataset *ds, cg_score *out) {
    if (!s->comm) return cg_model_evaluate(s->m, ds, s->cfg->loss, out);
    memset(out, 0, sizeof *out);
    out->n_classes = ds->n_classes;
    const int64_t n = cg_dataset_size(ds), r = cg_comm_rank(s->comm), N = cg_comm_size(s->comm);
    double loss_sum = 0.0;
    cg_status st = share_rank0(s->comm, s->m, false);
    if (st == CG_OK) st = evaluate_rows(s->m, ds, s->cfg->loss, n * r / N, n * (r + 1) / N, out,
                                        &loss_sum);
    /* loss, correct, failed, then class_n and class_correct: counts are
     * exact in doubles up to 2^53. */
    enum { LOSS, CORRECT, FAILED, CLASS_N, CLASS_OK = CLASS_N + CG_MAX_CLASSES,
           N_SUMS = CLASS_OK + CG_MAX_CLASSES };
    double sums[N_SUMS] = {[LOSS] = loss_sum, [CORRECT] = (double)out->correct,
                           [FAILED] = st != CG_OK};
    for (int c = 0; c < CG_MAX_CLASSES; c++) {
        sums[CLASS_N + c] = (double)out->class_n[c];
        sums[CLASS_OK + c] = (double)out->class_correct[c];
    }
    if (cg_comm_allreduce_sum(s->comm, sums, N_SUMS) != CG_OK) return cg_last_status();
    if (sums[FAILED] != 0.0) return cg_comm_agree(s->comm, st);
    for (int c = 0; c < CG_MAX_CLASSES; c++) {
        out->class_n[c] = (int64_t)sums[CLASS_N + c];
        out->class_correct[c] = (int64_t)sums[CLASS_OK + c];
    }
    out->n = n;
    out->correct = (int64_t)sums[CORRECT];
    out->loss = sums[LOSS] / (double)n;
    out->accuracy = (double)out->correct / (double)n;
    return CG_OK;
}

/* ------------------------------------------------------------------ */
/* fit                                                                 */
/* ------------------------------------------------------------------ */

/* Records an epoch's row and tells the caller; false: stop (with ranks:
 * when any rank's callback says so, so that all stop together). */
static bool end_epoch(fit_state *s, const cg_epoch_record *row, const cg_score *valid) {
    cg_recorder *r = s->rec;
    if (r && r->n_epochs < r->epoch_cap) r->epochs[r->n_epochs++] = *row;
    int64_t go_on = !s->cfg->on_epoch || s->cfg->on_epoch(s->cfg->user, row, valid);
    if (cg_comm_min_i64(s->comm, &go_on) != CG_OK) return false;
    return go_on != 0;
}

/* A training batch after cfg->augment (items numbered from lo, this
 * rank's place in the batch); NULL on failure. */
static cg_tensor *augment_batch(fit_state *s, cg_tensor *xb, int64_t lo) {
    if (!xb || !cg_augment_enabled(s->cfg->augment)) return xb;
    if (xb->requires_grad) { /* changing its data would break x's gradient */
        cg_fail(CG_ERR_ARG, "fit: augment needs training images that do not require grad");
        return NULL;
    }
    const int64_t n = xb->shape[0], hw = s->train->height * s->train->width;
    return cg_augment_batch(s->cfg->augment, (uint64_t)s->step, lo, xb->data, n,
                            n ? xb->numel / (n * hw) : 1, s->train->height,
                            s->train->width) == CG_OK ? xb : NULL;
}

/* One epoch of steps; *mean_loss is the training loss averaged over the
 * epoch's items (a batch's mean loss weighted by its size). */
static cg_status train_epoch(fit_state *s, int epoch, double *mean_loss) {
    const int64_t *idx;
    int64_t count, done = 0, total = cg_dataloader_num_batches(s->dl);
    const int64_t rank = cg_comm_rank(s->comm), ranks = cg_comm_size(s->comm);
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
        /* This rank's slice of the batch (all of it for one process). */
        const int64_t lo = count * rank / ranks, n_local = count * (rank + 1) / ranks - lo;
        cg_scope_begin();
        float value = NAN;
        if (n_local > 0) {
            cg_tensor *xb = augment_batch(s, cg_dataset_batch(s->train, idx + lo, n_local), lo);
            cg_tensor *yb = cg_tensor_index_select(s->targets, idx + lo, n_local);
            cg_tensor *loss = cg_loss(s->cfg->loss, cg_model_forward(s->m, xb), yb);
            st = loss ? cg_backward(loss) : cg_last_status();
            value = loss ? cg_tensor_item(loss) : NAN;
        }
        if (s->comm) st = average_step(s, st, n_local, count, &value);
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
    if (cg_dataset_image_numel(train) != m->n_inputs)
        return cg_fail(CG_ERR_SHAPE, "fit: the model takes %lld inputs, the images have %lldx%lld",
                       (long long)m->n_inputs, (long long)train->height, (long long)train->width);
    if (cg_check_loss(m, train->n_classes, c->loss) != CG_OK) return cg_last_status();
    if (cg_augment_check(c->augment, "fit") != CG_OK) return cg_last_status();
    /* Up front, not after seconds of paging: what a step will take. */
    int n_states = c->opt.kind == CG_OPTIM_ADAM ? 2 : c->opt.momentum != 0.0f ? 1 : 0;
    char what[96];
    snprintf(what, sizeof what, "training with batches of %lld", (long long)c->bs);
    return cg_memory_check("fit", cg_model_train_bytes(m, c->bs, n_states), what);
}

/* Everything fit needs before its first step; CG_OK or a failure. */
static cg_status setup_fit(fit_state *s) {
    const cg_fit_config *cfg = s->cfg;
    s->sched = cfg->sched == CG_SCHED_ONE_CYCLE ? cg_one_cycle(cfg->opt.lr)
                                                : (cg_schedule){.kind = CG_SCHED_CONSTANT,
                                                                .lr_max = cfg->opt.lr};
    /* Made in a scope of our own and kept by one reference. */
    cg_scope_begin();
    s->targets = cg_tensor_retain(cg_loss_targets(cfg->loss, s->train->y));
    cg_scope_end();
    s->dl = cfg->train_loader ? cfg->train_loader : &s->own_dl;
    if (!s->targets || !(s->opt = cg_optimizer_new(&cfg->opt, s->m->params, s->m->n_params)) ||
        (!cfg->train_loader &&
         cg_dataloader_init(&s->own_dl, cg_dataset_size(s->train), cfg->bs, cfg->shuffle, false,
                            cfg->seed) != CG_OK))
        return cg_last_status() != CG_OK ? cg_last_status() : CG_ERR_STATE;
    if (s->dl->n != cg_dataset_size(s->train))
        return cg_fail(CG_ERR_ARG, "fit: the loader has %lld items, the training data %lld",
                       (long long)s->dl->n, (long long)cg_dataset_size(s->train));
    s->total_steps = cfg->epochs * cg_dataloader_num_batches(s->dl);
    if (s->rec && recorder_reserve(s->rec, s->rec->n_epochs + (int)cfg->epochs + 1,
                                   s->rec->n_batches + s->total_steps) != CG_OK)
        return cg_last_status();
    return CG_OK;
}

cg_status cg_fit(cg_model *m, const cg_dataset *train, const cg_dataset *valid,
                 const cg_fit_config *cfg, cg_recorder *rec, cg_score *final_score) {
    cg_comm *comm = cfg ? cfg->comm : NULL;
    /* With ranks every failure is agreed on, so that none is left waiting
     * in a collective for one that gave up. */
    if (cg_comm_agree(comm, check_config(m, train, valid, cfg)) != CG_OK) return cg_last_status();
    fit_state s = {.m = m, .train = train, .valid = valid, .cfg = cfg, .rec = rec, .comm = comm};
    cg_status st = CG_OK;
    cg_score score = {0};
    if (cg_comm_agree(comm, setup_fit(&s)) != CG_OK || (comm && setup_ranks(&s) != CG_OK))
        goto fail;

    double t0 = cg_seconds();
    bool go_on = true;
    if (cfg->score_epoch0) {
        cg_score on_train;
        if (fit_evaluate(&s, train, &on_train) != CG_OK || fit_evaluate(&s, valid, &score) != CG_OK)
            goto fail;
        cg_epoch_record row = {0, on_train.loss, score.loss, score.accuracy, cg_seconds() - t0};
        go_on = end_epoch(&s, &row, &score);
    }
    for (int e = 1; go_on && e <= (int)cfg->epochs; e++) {
        double te = cg_seconds(), train_loss;
        if (train_epoch(&s, e, &train_loss) != CG_OK || fit_evaluate(&s, valid, &score) != CG_OK)
            goto fail;
        cg_epoch_record row = {e, train_loss, score.loss, score.accuracy, cg_seconds() - te};
        go_on = end_epoch(&s, &row, &score);
    }
    if (final_score) *final_score = score;
    goto done;
fail:
    st = cg_last_status() != CG_OK ? cg_last_status() : CG_ERR_STATE;
done:
    free(s.flat);
    cg_dataloader_free(&s.own_dl);
    cg_optimizer_free(s.opt);
    cg_tensor_release(s.targets);
    return st;
}
