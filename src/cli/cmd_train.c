/*
 * cmd_train.c - `cgrad train`: fastbook chapter 4's training loop.
 *
 * For each epoch, for each mini-batch xb, yb of the (shuffled) training set:
 *
 *     preds = model(xb)                 # linear1 or simple_net
 *     loss  = mnist_loss(preds, yb)     # or binary cross-entropy
 *     loss.backward()
 *     for p in params: p.data -= lr * p.grad; p.grad.zero_()
 *
 * then the whole validation set is scored with no graph: its loss and the
 * accuracy sigmoid(preds) > 0.5 vs the label, every image counted once.
 * A row "epoch 0" scores the untrained model first.
 *
 * Each step runs inside a scope, so the batch, the graph and the loss are
 * freed together at its end (and their buffers reused by the next step).
 * Everything that does not change between epochs (the images, the targets)
 * is made once. A seed fixes everything: the initial weights come from a
 * generator seeded with it, the batch order from the loader's own generator
 * seeded from it, so the same seed (and thread count) gives the same
 * numbers and a byte-identical --save file.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"
#include "cli/progress.h"

static const char TRAIN_USAGE[] =
    "usage: cgrad train --model linear|mlp [options]\n"
    "  Trains a two-class (3 vs 7) classifier with SGD, printing a row per epoch.\n"
    "  --model linear|mlp   the article's linear1 (x@w+b) or the book's simple_net\n"
    "                       (784 -> hidden -> ReLU -> 1); required\n"
    CG_USAGE_DATA_SOURCE
    "                       (exactly 2; the first is the label-1 class, like 3)\n"
    "  --lr X               learning rate (linear 1.0, mlp 0.1)\n"
    "  --epochs N           passes over the training set (linear 20, mlp 40)\n"
    "  --bs N               batch size (256)\n"
    "  --seed N             fixes the initial weights and batch order (42)\n"
    "  --init normal|pytorch  initial weights: randn*std, the article's init_params\n"
    "                       (linear's default), or nn.Linear's uniform (mlp's default)\n"
    "  --std X              standard deviation for --init normal (1.0)\n"
    "  --hidden N           hidden units of mlp (30)\n"
    "  --loss mnist|bce     the book's mnist_loss (default) or binary cross-entropy\n"
    "  --no-shuffle         keep the batches in file order\n"
    "  --save FILE          write the trained model (see 'cgrad eval', 'cgrad predict')\n"
    "  --threads N          threads for the kernels (0: OpenMP's default)\n"
    "  --json               JSON lines: one per epoch, then a summary\n"
    "  --quiet              no per-epoch rows or progress bar, only the result\n";

static const char *const MODEL_NAMES[] = {"linear", "mlp"};
static const char *const LOSS_NAMES[] = {"mnist", "bce"};
static const char *const INIT_NAMES[] = {"normal", "pytorch"};

/* A second stream for the loader, so that changing the model's size does
 * not change the batch order (the golden-ratio constant splitmix64 uses). */
#define LOADER_SEED_MIX 0x9e3779b97f4a7c15ULL

typedef struct train_cfg {
    cg_data_opts src;
    const char *save;
    int model, loss, init;
    double lr, std;
    int64_t epochs, bs, hidden, threads;
    uint64_t seed;
    bool no_shuffle, json, quiet;
} train_cfg;

/* Parses argv and fills in each model's defaults; CG_OPTS_CONTINUE or an
 * exit code. */
static int parse(int argc, char **argv, train_cfg *c) {
    /* Sentinels tell "not given" from a value, for the per-model defaults. */
    *c = (train_cfg){.model = -1, .loss = CG_LOSS_MNIST, .init = -1, .lr = NAN, .std = NAN,
                     .epochs = -1, .bs = 256, .hidden = -1, .seed = 42};
    cg_opt opts[] = {
        {"--model", CG_OPT_CHOICE, &c->model, 0, 0, "linear|mlp", false},
        CG_OPTS_DATA_SOURCE(&c->src),
        {"--lr", CG_OPT_FLOAT, &c->lr, 0, 1e6, NULL, true},
        {"--epochs", CG_OPT_INT, &c->epochs, 1, 100000, NULL, false},
        {"--bs", CG_OPT_INT, &c->bs, 1, 1 << 24, NULL, false},
        CG_OPT_SEED(&c->seed),
        {"--init", CG_OPT_CHOICE, &c->init, 0, 0, "normal|pytorch", false},
        {"--std", CG_OPT_FLOAT, &c->std, 0, 1e6, NULL, false},
        {"--hidden", CG_OPT_INT, &c->hidden, 1, 1 << 20, NULL, false},
        {"--loss", CG_OPT_CHOICE, &c->loss, 0, 0, "mnist|bce", false},
        {"--no-shuffle", CG_OPT_FLAG, &c->no_shuffle, 0, 0, NULL, false},
        {"--save", CG_OPT_STR, &c->save, 0, 0, NULL, false},
        CG_OPT_THREADS(&c->threads),
        CG_OPT_JSON(&c->json),
        CG_OPT_QUIET(&c->quiet),
    };
    c->threads = 0;
    int rc = cg_opts_parse("train", TRAIN_USAGE, argc, argv, opts, CG_NOPTS(opts), NULL, 0, NULL);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (c->model < 0) return cg_usage_error("train", "say which model: --model linear or --model mlp");
    bool mlp = c->model == 1;
    if (!mlp && c->hidden >= 0) return cg_usage_error("train", "--hidden is for --model mlp");
    if (c->init < 0) c->init = mlp ? 1 : 0;
    if (c->init == 1 && !isnan(c->std))
        return cg_usage_error("train", "--std is for --init normal (pytorch's init has no std)");
    if (isnan(c->lr)) c->lr = mlp ? 0.1 : 1.0;
    if (c->epochs < 0) c->epochs = mlp ? 40 : 20;
    if (c->hidden < 0) c->hidden = mlp ? 30 : 0;
    if (isnan(c->std)) c->std = 1.0;
    return cg_cli_check_data_opts("train", &c->src, true);
}

/* Fails early, before any training, when --save could not be written:
 * its folder must exist and be writable (the file itself is replaced). */
static cg_status check_save_path(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (access(dir, W_OK) != 0)
        return cg_fail(CG_ERR_IO, "cannot save to %s: folder %s: %s", path, dir, strerror(errno));
    return CG_OK;
}

/* One epoch of SGD; *mean_loss is the training loss averaged over the
 * epoch's items (a batch's mean loss weighted by its size). */
static cg_status train_epoch(cg_model *m, const cg_dataset *train, cg_tensor *targets,
                             cg_dataloader *dl, const train_cfg *c, cg_progress *prog, int epoch,
                             double *mean_loss) {
    const int64_t *idx;
    int64_t count, done = 0, total = cg_dataloader_num_batches(dl);
    double loss_sum = 0.0;
    cg_dataloader_reset(dl);
    while (cg_dataloader_next(dl, &idx, &count)) {
        cg_scope_begin();
        cg_tensor *xb = cg_dataset_batch(train, idx, count);
        cg_tensor *yb = cg_tensor_index_select(targets, idx, count);
        cg_tensor *loss = cg_cli_loss((cg_loss_kind)c->loss, cg_model_forward(m, xb), yb);
        cg_status st = loss ? cg_backward(loss) : cg_last_status();
        if (st == CG_OK) {
            loss_sum += (double)cg_tensor_item(loss) * (double)count;
            cg_sgd_step(m->params, m->n_params, (float)c->lr);
        }
        cg_scope_end();
        if (st != CG_OK) return st;
        cg_progress_batch(prog, epoch, ++done, total);
    }
    *mean_loss = loss_sum / (double)dl->n;
    return CG_OK;
}

static void print_summary(const train_cfg *c, const cg_dataset *train, const cg_dataset *valid,
                          const cg_score *s, const cg_epoch_stats *last, double seconds,
                          double load_seconds) {
    if (c->json) {
        printf("{\"command\":\"train\",\"model\":\"%s\",\"epochs\":%lld,\"seed\":%llu,\"lr\":",
               MODEL_NAMES[c->model], (long long)c->epochs, (unsigned long long)c->seed);
        cg_json_number(stdout, c->lr);
        printf(",\"bs\":%lld,\"loss\":\"%s\",\"init\":\"%s\"", (long long)c->bs,
               LOSS_NAMES[c->loss], INIT_NAMES[c->init]);
        if (c->model == 1) printf(",\"hidden\":%lld", (long long)c->hidden);
        printf(",\"train_loss\":");
        cg_json_number(stdout, last->train_loss);
        printf(",\"valid_loss\":");
        cg_json_number(stdout, s->loss);
        printf(",\"accuracy\":");
        cg_json_number(stdout, s->accuracy);
        printf(",\"correct\":%lld,\"n\":%lld,\"per_class\":{", (long long)s->correct,
               (long long)s->n);
        for (int k = 0; k < 2; k++) {
            if (k) putchar(',');
            cg_json_string(stdout, valid->class_names[k]);
            putchar(':');
            cg_json_number(stdout, s->class_n[k] ? (double)s->class_correct[k] / s->class_n[k] : NAN);
        }
        printf("},\"seconds\":");
        cg_json_number(stdout, seconds);
        printf(",\"load_seconds\":");
        cg_json_number(stdout, load_seconds);
        printf(",\"saved\":");
        if (c->save)
            cg_json_string(stdout, c->save);
        else
            fputs("null", stdout);
        printf("}\n");
        return;
    }
    (void)train;
    printf("accuracy %.4f (%lld/%lld right) after %lld epochs, %.2f s\n", s->accuracy,
           (long long)s->correct, (long long)s->n, (long long)c->epochs, seconds);
    if (c->save) printf("saved the %s model to %s\n", MODEL_NAMES[c->model], c->save);
}

int cg_cmd_train(int argc, char **argv) {
    train_cfg c;
    int rc = parse(argc, argv, &c);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (c.threads > 0) cg_set_num_threads((int)c.threads);

    if (c.save && check_save_path(c.save) != CG_OK) return cg_cmd_fail("train");

    cg_dataset train = {0}, valid = {0};
    cg_tensor *train_t = NULL, *valid_t = NULL;
    cg_model *m = NULL;
    cg_dataloader dl = {0};
    cg_progress prog;
    cg_progress_init(&prog, (int)c.epochs, c.json, c.quiet);
    double t0 = cg_cli_now();
    if ((rc = cg_cli_load_data("train", &c.src, true, NULL, &train, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    rc = CG_EXIT_FAIL;
    /* Made once, reused every epoch. */
    train_t = cg_cli_binary_targets(&train);
    valid_t = cg_cli_binary_targets(&valid);
    if (!train_t || !valid_t) goto fail;

    cg_rng rng;
    cg_rng_seed(&rng, c.seed);
    cg_model_kind kind = c.model == 1 ? CG_MODEL_MLP : CG_MODEL_LINEAR;
    cg_init init = c.init == 1 ? CG_INIT_PYTORCH : CG_INIT_NORMAL;
    int64_t n_inputs = train.height * train.width;
    m = cg_model_new(kind, n_inputs, c.hidden, 1, init, (float)c.std, &rng);
    if (!m) goto fail;
    m->n_classes = 2;
    memcpy(m->class_names, train.class_names, sizeof m->class_names[0] * 2);
    if (cg_dataloader_init(&dl, train.x->shape[0], c.bs, !c.no_shuffle, false,
                           c.seed ^ LOADER_SEED_MIX) != CG_OK)
        goto fail;
    double t1 = cg_cli_now();

    if (!c.quiet && !c.json) {
        printf("training %s", MODEL_NAMES[c.model]);
        if (kind == CG_MODEL_MLP) printf(" (%lld -> %lld -> 1)", (long long)n_inputs,
                                         (long long)c.hidden);
        printf(" on %lld images, validating on %lld (%s = 1, %s = 0)\n",
               (long long)train.x->shape[0], (long long)valid.x->shape[0], train.class_names[0],
               train.class_names[1]);
        printf("lr %g, batch size %lld, %lld epochs, seed %llu, loss %s, init %s", c.lr,
               (long long)c.bs, (long long)c.epochs, (unsigned long long)c.seed,
               LOSS_NAMES[c.loss], INIT_NAMES[c.init]);
        if (init == CG_INIT_NORMAL) printf(" (std %g)", c.std);
        printf("\n");
    }

    cg_score score, train_score;
    /* Epoch 0: the random model, on both sets. */
    if (cg_cli_score(m, train.x, train_t, (cg_loss_kind)c.loss, &train_score) != CG_OK ||
        cg_cli_score(m, valid.x, valid_t, (cg_loss_kind)c.loss, &score) != CG_OK)
        goto fail;
    cg_epoch_stats st = {0, train_score.loss, score.loss, score.accuracy, cg_cli_now() - t1};
    cg_progress_row(&prog, &st);
    for (int e = 1; e <= (int)c.epochs; e++) {
        double te = cg_cli_now();
        double train_loss;
        if (train_epoch(m, &train, train_t, &dl, &c, &prog, e, &train_loss) != CG_OK) goto fail;
        if (cg_cli_score(m, valid.x, valid_t, (cg_loss_kind)c.loss, &score) != CG_OK) goto fail;
        st = (cg_epoch_stats){e, train_loss, score.loss, score.accuracy, cg_cli_now() - te};
        cg_progress_row(&prog, &st);
    }
    cg_progress_clear(&prog);
    double seconds = cg_cli_now() - t1;
    if (c.save && cg_model_save(m, c.save) != CG_OK) goto fail;
    print_summary(&c, &train, &valid, &score, &st, seconds, t1 - t0);
    rc = CG_EXIT_OK;
    goto done;
fail:
    cg_progress_clear(&prog);
    rc = cg_cmd_fail("train");
done:
    cg_dataloader_free(&dl);
    cg_model_free(m);
    cg_tensor_release(train_t);
    cg_tensor_release(valid_t);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return rc;
}
