/*
 * cmd_train.c - `cgrad train`: build a model, fit it, print a row per epoch.
 *
 * The work is the library's (cg_model_from_spec, cg_fit, cg_model_save);
 * this file parses the options, picks each model's defaults and prints.
 *
 * Two kinds of task, told apart by the loss:
 *  - two classes with the book's mnist_loss (or BCE): one output, sigmoid;
 *    the article's recipe by default (plain SGD, constant lr; linear1 at lr
 *    1.0 for 20 epochs, simple_net 784-30-1 at lr 0.1 for 40), with the same
 *    bits as ever for a seed;
 *  - any number of classes with cross-entropy (the default for more than
 *    two, or --loss ce): one output per class, softmax; fastai's recipe by
 *    default (Adam, fit_one_cycle, Kaiming init).
 * A seed fixes everything: the weights come from a generator seeded with
 * it, the batch order from the loader's own generator seeded from it, so
 * the same seed (and thread count) gives the same numbers and a
 * byte-identical --save file.
 *
 * Under mpirun or srun (N > 1 processes) the processes train one model
 * together (cg_fit_config.comm; docs/scaling.md): every rank loads the
 * data and builds the same model, the ranks agree on every failure (the
 * failing rank alone says why), and rank 0 alone prints and saves.
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
#include "util/file.h"

/* --model's choices, and the defaults of each: the one table the options'
 * help lines are written from. */
enum { MODEL_LINEAR, MODEL_MLP, MODEL_CNN, MODEL_RESNET, MODEL_ARCH, N_MODELS };
enum { OPT_SGD, OPT_MOMENTUM, OPT_ADAM, OPT_ADAMW };
enum { SCHED_CONSTANT, SCHED_ONE_CYCLE };
enum { INIT_NORMAL, INIT_PYTORCH, INIT_KAIMING };
static const char MODEL_CHOICES[] = "linear|mlp|cnn|resnet";
static const char *const MODEL_NAMES[] = {"linear", "mlp", "cnn", "resnet", "custom"};
static const cg_model_kind MODEL_KINDS[] = {CG_MODEL_LINEAR, CG_MODEL_MLP, CG_MODEL_CNN,
                                            CG_MODEL_RESNET, 0};
static const char *const OPT_NAMES[] = {"sgd", "momentum", "adam", "adamw"};
static const char *const SCHED_NAMES[] = {"constant", "one-cycle"};
static const char *const INIT_NAMES[] = {"normal", "pytorch", "kaiming"};

typedef struct recipe {
    int loss; /* CG_LOSS_MNIST: the article's one-output models */
    double lr;
    int64_t epochs, bs;
    int init, opt, sched;
    const char *hidden;
} recipe;

/* [model][two classes?]: for more than two classes (row 0) every model is
 * fastai's (softmax, cross-entropy, Adam, one cycle); on two, linear and
 * mlp are the article's (one output, mnist_loss, plain SGD at a constant
 * lr), the others keep cross-entropy with two outputs (the chapter's last
 * step trains a CNN on 3s and 7s that way). */
static const recipe RECIPES[N_MODELS][2] = {
    [MODEL_LINEAR] = {{CG_LOSS_CE, 0.01, 5, 256, INIT_PYTORCH, OPT_ADAM, SCHED_ONE_CYCLE, NULL},
                      {CG_LOSS_MNIST, 1.0, 20, 256, INIT_NORMAL, OPT_SGD, SCHED_CONSTANT, NULL}},
    [MODEL_MLP] = {{CG_LOSS_CE, 0.01, 10, 256, INIT_KAIMING, OPT_ADAM, SCHED_ONE_CYCLE, "128"},
                   {CG_LOSS_MNIST, 0.1, 40, 256, INIT_PYTORCH, OPT_SGD, SCHED_CONSTANT, "30"}},
    [MODEL_CNN] = {{CG_LOSS_CE, 0.1, 5, 512, INIT_PYTORCH, OPT_ADAMW, SCHED_ONE_CYCLE, NULL},
                   {CG_LOSS_CE, 0.1, 5, 512, INIT_PYTORCH, OPT_ADAMW, SCHED_ONE_CYCLE, NULL}},
    [MODEL_RESNET] = {{CG_LOSS_CE, 0.05, 5, 256, INIT_KAIMING, OPT_ADAMW, SCHED_ONE_CYCLE, NULL},
                      {CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAMW, SCHED_ONE_CYCLE, NULL}},
    [MODEL_ARCH] = {{CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAM, SCHED_ONE_CYCLE, NULL},
                    {CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAM, SCHED_ONE_CYCLE, NULL}},
};
#define DEFAULT_SEED 42
#define DEFAULT_MOMENTUM 0.9
#define DEFAULT_WD_ADAMW 0.01

/* A second stream for the loader, so that changing the model's size does
 * not change the batch order (the golden-ratio constant splitmix64 uses). */
#define LOADER_SEED_MIX 0x9e3779b97f4a7c15ULL

typedef struct train_cfg {
    cg_data_opts src;
    const char *save, *arch, *hidden, *history;
    int model, loss, init, opt, sched;
    double lr, std, mom, wd;
    int64_t epochs, bs, threads;
    uint64_t seed;
    bool no_shuffle, json, quiet, summary, one_cycle;
} train_cfg;

/* "linear 1 / 0.01, mlp 0.1 / 0.01, cnn 0.1, ...": a recipe field for each
 * model, two values where two classes differ from more. */
static void recipe_list(char *buf, size_t size, const char *lead, bool lr) {
    int n = snprintf(buf, size, "%s", lead);
    for (int m = 0; m < MODEL_ARCH && n >= 0 && (size_t)n < size; m++) {
        const recipe *r = RECIPES[m];
        double more = lr ? r[0].lr : (double)r[0].epochs, two = lr ? r[1].lr : (double)r[1].epochs;
        n += snprintf(buf + n, size - (size_t)n, "%s%s %g", m ? ", " : "", MODEL_NAMES[m], more);
        if (two != more && (size_t)n < size)
            n += snprintf(buf + n, size - (size_t)n, " (%g for 2 classes)", two);
    }
}

static const char TRAIN_USAGE[] =
    "usage: cgrad train --model NAME | --arch SPEC [options]\n"
    "  Trains a classifier, printing a row per epoch. On two classes linear and\n"
    "  mlp are the article's 3-vs-7 models (one output, the book's mnist_loss);\n"
    "  with more classes (or --loss ce), and for cnn, resnet and --arch, one\n"
    "  output per class and cross-entropy.\n"
    "  Data: every class the data has unless --classes picks some.\n";

/* Help lines that quote the recipes, written once at start-up. */
static char help_lr[256], help_epochs[256], help_opt[200], help_init[200], help_hidden[160],
    help_bs[96];

static void write_help(void) {
    recipe_list(help_lr, sizeof help_lr, "learning rate (one-cycle: its peak):\n", true);
    recipe_list(help_epochs, sizeof help_epochs, "passes over the training set:\n", false);
    snprintf(help_bs, sizeof help_bs, "batch size (%lld; cnn %lld)",
             (long long)RECIPES[MODEL_LINEAR][0].bs, (long long)RECIPES[MODEL_CNN][0].bs);
    snprintf(help_opt, sizeof help_opt,
             "optimizer: %s (plain, two classes), %s (SGD, --mom %g),\n"
             "%s (more classes; betas 0.9/0.99), %s (Adam, decoupled --wd %g)",
             OPT_NAMES[OPT_SGD], OPT_NAMES[OPT_MOMENTUM], DEFAULT_MOMENTUM, OPT_NAMES[OPT_ADAM],
             OPT_NAMES[OPT_ADAMW], DEFAULT_WD_ADAMW);
    snprintf(help_init, sizeof help_init,
             "initial weights: %s (randn*std, two-class linear), %s (nn.Linear's\n"
             "and nn.Conv2d's), %s (He before a ReLU)",
             INIT_NAMES[INIT_NORMAL], INIT_NAMES[INIT_PYTORCH], INIT_NAMES[INIT_KAIMING]);
    snprintf(help_hidden, sizeof help_hidden,
             "mlp's hidden layer widths, e.g. 256,128; two classes %s, more %s",
             RECIPES[MODEL_MLP][1].hidden, RECIPES[MODEL_MLP][0].hidden);
}

/* Parses argv and fills in the defaults that do not depend on the data;
 * CG_OPTS_CONTINUE or an exit code. */
static int parse(int argc, char **argv, train_cfg *c) {
    /* Sentinels tell "not given" from a value, for the per-model defaults. */
    *c = (train_cfg){.model = -1, .loss = -1, .init = -1, .opt = -1, .sched = -1, .lr = NAN,
                     .std = NAN, .mom = NAN, .wd = NAN, .epochs = -1, .bs = -1,
                     .seed = DEFAULT_SEED};
    write_help();
    cg_opt opts[] = {
        {"--model", CG_OPT_CHOICE, &c->model, 0, 0, MODEL_CHOICES, false,
         "the article's linear1 (x@w+b; softmax regression for more classes),\n"
         "the book's simple_net (in -> hidden -> ReLU -> out), ch.13's\n"
         "simple_cnn (five stride-2 convs with batch norm), or a small ResNet",
         NULL},
        {"--arch", CG_OPT_STR, &c->arch, 0, 0, NULL, false,
         "layers, e.g. \"linear:256,relu,dropout:0.2,linear\" (a last linear\n"
         "without a size gets one output per class)",
         "SPEC"},
        CG_OPTS_DATA_SOURCE(&c->src),
        {"--hidden", CG_OPT_STR, &c->hidden, 0, 0, NULL, false, help_hidden, "N[,N...]"},
        {"--loss", CG_OPT_CHOICE, &c->loss, 0, 0, "mnist|bce|ce", false,
         "the book's mnist_loss (two classes' default), binary cross-entropy,\n"
         "or cross-entropy (more classes' default; on two classes: two outputs)",
         NULL},
        {"--opt", CG_OPT_CHOICE, &c->opt, 0, 0, "sgd|momentum|adam|adamw", false, help_opt, NULL},
        {"--sched", CG_OPT_CHOICE, &c->sched, 0, 0, "constant|one-cycle", false,
         "learning rate schedule: constant (two classes) or fastai's\n"
         "fit_one_cycle (more classes)",
         NULL},
        {"--one-cycle", CG_OPT_FLAG, &c->one_cycle, 0, 0, NULL, false, "--sched one-cycle", NULL},
        {"--lr", CG_OPT_FLOAT, &c->lr, 0, 1e6, NULL, true, help_lr, NULL},
        {"--mom", CG_OPT_FLOAT, &c->mom, 0, 0.9999, NULL, false,
         "momentum (SGD) or beta1 (Adam); one-cycle cycles it 0.95-0.85-0.95", NULL},
        {"--wd", CG_OPT_FLOAT, &c->wd, 0, 10, NULL, false, "weight decay (adamw: 0.01, else 0)",
         NULL},
        {"--epochs", CG_OPT_INT, &c->epochs, 1, 100000, NULL, false, help_epochs, NULL},
        {"--bs", CG_OPT_INT, &c->bs, 1, 1 << 24, NULL, false, help_bs, NULL},
        {"--seed", CG_OPT_U64, &c->seed, 0, 0, NULL, false,
         "fixes the initial weights and batch order (42)", NULL},
        {"--init", CG_OPT_CHOICE, &c->init, 0, 0, "normal|pytorch|kaiming", false, help_init, NULL},
        {"--std", CG_OPT_FLOAT, &c->std, 0, 1e6, NULL, false,
         "standard deviation for --init normal (1.0)", NULL},
        {"--no-shuffle", CG_OPT_FLAG, &c->no_shuffle, 0, 0, NULL, false,
         "keep the batches in file order", NULL},
        {"--save", CG_OPT_STR, &c->save, 0, 0, NULL, false,
         "write the trained model (see 'cgrad eval', 'cgrad predict')", "FILE"},
        {"--history", CG_OPT_STR, &c->history, 0, 0, NULL, false,
         "write each epoch's figures (.csv; .json also every batch's loss/lr)", "FILE"},
        {"--summary", CG_OPT_FLAG, &c->summary, 0, 0, NULL, false,
         "print the model's layers, output shapes and parameter counts first", NULL},
        {"--threads", CG_OPT_INT, &c->threads, 0, 1024, NULL, false,
         "threads for the kernels (0: OpenMP's default)", NULL},
        {"--json", CG_OPT_FLAG, &c->json, 0, 0, NULL, false,
         "JSON lines: one per epoch, then a summary", NULL},
        {"--quiet", CG_OPT_FLAG, &c->quiet, 0, 0, NULL, false,
         "no per-epoch rows or progress bar, only the result", NULL},
    };
    int rc = cg_opts_parse("train", TRAIN_USAGE, argc, argv, opts, CG_NOPTS(opts), NULL, 0, NULL);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (c->model < 0 && !c->arch)
        return cg_usage_error("train", "say which model: --model linear, --model mlp or --arch "
                                       "SPEC");
    if (c->model >= 0 && c->arch)
        return cg_usage_error("train", "--model and --arch both say what to build; give one");
    if (c->model != MODEL_MLP && c->hidden)
        return cg_usage_error("train", "--hidden is for --model mlp");
    if (c->one_cycle) {
        if (c->sched == SCHED_CONSTANT)
            return cg_usage_error("train", "--one-cycle and --sched constant disagree");
        c->sched = SCHED_ONE_CYCLE;
    }
    /* --std with a model whose init is never randn*std: said now, before
     * the data is read (the others' init depends on the class count). */
    int model = c->model < 0 ? MODEL_ARCH : c->model;
    if (!isnan(c->std) && (c->init >= 0 ? c->init != INIT_NORMAL
                                        : RECIPES[model][0].init != INIT_NORMAL &&
                                              RECIPES[model][1].init != INIT_NORMAL))
        return cg_usage_error("train", "--std is for --init normal (--init %s has no std)",
                              INIT_NAMES[c->init >= 0 ? c->init : RECIPES[model][1].init]);
    if (c->opt == OPT_SGD && !isnan(c->mom) && c->mom > 0)
        return cg_usage_error("train", "--mom with --opt sgd: use --opt momentum");
    if (c->history) {
        const char *dot = strrchr(c->history, '.');
        if (!dot || (strcmp(dot, ".csv") != 0 && strcmp(dot, ".json") != 0))
            return cg_usage_error("train", "--history %s: name a .csv or .json file", c->history);
    }
    if (c->model < 0) c->model = MODEL_ARCH;
    return cg_cli_check_data_opts("train", &c->src, false);
}

/* The defaults that depend on the task (two classes or more). */
static int finish_defaults(train_cfg *c, int n_classes) {
    const recipe *r = &RECIPES[c->model][n_classes == 2];
    if (c->loss < 0) c->loss = r->loss;
    if (c->loss != CG_LOSS_CE && n_classes != 2)
        return cg_usage_error("train",
                              "--loss %s tells exactly 2 classes apart (one output); the data has "
                              "%d: use --loss ce, or --classes to pick two",
                              cg_loss_name((cg_loss_kind)c->loss), n_classes);
    /* --loss ce on the article's models: fastai's recipe for them. */
    if (c->loss == CG_LOSS_CE && r->loss != CG_LOSS_CE) r = &RECIPES[c->model][0];
    if (c->init < 0) c->init = r->init;
    if (c->init != INIT_NORMAL && !isnan(c->std))
        return cg_usage_error("train", "--std is for --init normal (--init %s has no std)",
                              INIT_NAMES[c->init]);
    if (c->init == INIT_NORMAL && isnan(c->std)) c->std = 1.0;
    if (isnan(c->lr)) c->lr = r->lr;
    if (c->epochs < 0) c->epochs = r->epochs;
    if (c->bs < 0) c->bs = r->bs;
    if (c->opt < 0) c->opt = !isnan(c->mom) && r->opt == OPT_SGD ? OPT_MOMENTUM : r->opt;
    if (c->sched < 0) c->sched = r->sched;
    if (isnan(c->mom))
        c->mom = c->opt == OPT_MOMENTUM ? DEFAULT_MOMENTUM : c->opt >= OPT_ADAM ? 0.9 : 0.0;
    if (isnan(c->wd)) c->wd = c->opt == OPT_ADAMW ? DEFAULT_WD_ADAMW : 0.0;
    if (c->model == MODEL_MLP && !c->hidden && !c->arch) c->hidden = r->hidden;
    return CG_OPTS_CONTINUE;
}

/* Fails early, before the data is loaded, when --save or --history could
 * not be written: what is there must be nothing, a regular file or a link
 * to one (cg_write_target: a FIFO or device is refused, not replaced), and
 * its folder must exist and be writable (the file is replaced). */
static cg_status check_output_path(const char *opt, const char *what, const char *path_in) {
    char path[4096], dir[4096];
    if (cg_write_target(opt, path_in, path, sizeof path) != CG_OK) return cg_last_status();
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (access(dir, W_OK) != 0)
        return cg_fail(CG_ERR_IO, "cannot %s to %s: folder %s: %s", what, path_in, dir,
                       strerror(errno));
    return CG_OK;
}

static cg_optim_config optim_config(const train_cfg *c) {
    cg_optim_config o =
        c->opt >= OPT_ADAM ? cg_adam_config((float)c->lr) : cg_sgd_config((float)c->lr);
    o.momentum = (float)c->mom;
    o.weight_decay = (float)c->wd;
    o.decoupled_wd = c->opt == OPT_ADAMW;
    return o;
}

/* The model the options describe, for data of n_classes classes. */
static cg_model *build_model(const train_cfg *c, const cg_dataset *train, cg_rng *rng) {
    char spec[1024];
    const char *name = MODEL_NAMES[c->model];
    int64_t n_outputs = c->loss == CG_LOSS_CE ? train->n_classes : 1;
    if (c->arch)
        snprintf(spec, sizeof spec, "%s", c->arch);
    else if (c->model == MODEL_MLP ? cg_mlp_spec(c->hidden, spec, sizeof spec)
                                   : cg_model_preset(MODEL_KINDS[c->model], 0, n_outputs, spec,
                                                     sizeof spec, &name))
        return NULL;
    static const cg_init inits[] = {CG_INIT_NORMAL, CG_INIT_PYTORCH, CG_INIT_KAIMING};
    cg_model *m = cg_model_for_images(spec, name, 1, train->height, train->width, n_outputs,
                                      inits[c->init], (float)(isnan(c->std) ? 1.0 : c->std), rng);
    if (!m) return NULL;
    m->n_classes = train->n_classes;
    memcpy(m->class_names, train->class_names, sizeof m->class_names);
    return m;
}

/* What the user sees before the first row. */
static void print_header(const train_cfg *c, const cg_model *m, const cg_dataset *train,
                         const cg_dataset *valid) {
    if (c->summary) {
        cg_model_summary(m, stdout);
        putchar('\n');
    }
    if (c->quiet || c->json) return;
    printf("training %s", m->name);
    if (c->loss != CG_LOSS_CE) {
        /* The article's two-class task, as it always read. */
        if (c->model == MODEL_MLP && !c->arch)
            printf(" (%lld -> %s -> 1)", (long long)m->n_inputs, c->hidden);
        printf(" on %lld images, validating on %lld (%s = 1, %s = 0)\n",
               (long long)cg_dataset_size(train), (long long)cg_dataset_size(valid),
               train->class_names[0], train->class_names[1]);
    } else {
        char spec[1024];
        printf(" (%s) on %lld images of %d classes, validating on %lld\n",
               cg_model_spec(m, spec, sizeof spec), (long long)cg_dataset_size(train),
               train->n_classes, (long long)cg_dataset_size(valid));
    }
    printf("lr %g, batch size %lld, %lld epochs, seed %llu, loss %s, init %s", c->lr,
           (long long)c->bs, (long long)c->epochs, (unsigned long long)c->seed,
           cg_loss_name((cg_loss_kind)c->loss), INIT_NAMES[c->init]);
    if (c->init == INIT_NORMAL) printf(" (std %g)", c->std);
    if (c->opt != OPT_SGD || c->sched != SCHED_CONSTANT) {
        printf(", opt %s", OPT_NAMES[c->opt]);
        if (c->opt != OPT_SGD) printf(" (mom %g", c->mom);
        if (c->opt != OPT_SGD && c->wd > 0) printf(", wd %g", c->wd);
        if (c->opt != OPT_SGD) putchar(')');
        printf(", %s", SCHED_NAMES[c->sched]);
    }
    printf("\n");
}

static void print_summary(const train_cfg *c, const cg_model *m, const cg_dataset *valid,
                          const cg_score *s, const cg_recorder *rec, double seconds,
                          double load_seconds, const cg_comm *comm) {
    if (c->json) {
        const cg_epoch_record *last = &rec->epochs[rec->n_epochs - 1];
        printf("{\"command\":\"train\",\"model\":\"%s\",\"epochs\":%lld,\"seed\":%llu,\"lr\":",
               m->name, (long long)c->epochs, (unsigned long long)c->seed);
        cg_json_number(stdout, c->lr);
        printf(",\"bs\":%lld,\"loss\":\"%s\",\"init\":\"%s\"", (long long)c->bs,
               cg_loss_name((cg_loss_kind)c->loss), INIT_NAMES[c->init]);
        if (c->hidden) {
            bool list = strchr(c->hidden, ',') != NULL;
            printf(",\"hidden\":%s%s%s", list ? "[" : "", c->hidden, list ? "]" : "");
        }
        char spec[1024];
        printf(",\"arch\":");
        cg_json_string(stdout, cg_model_spec(m, spec, sizeof spec));
        printf(",\"opt\":\"%s\",\"sched\":\"%s\",\"params\":%lld,\"n_classes\":%d",
               OPT_NAMES[c->opt], SCHED_NAMES[c->sched], (long long)cg_model_param_count(m),
               valid->n_classes);
        printf(",\"train_loss\":");
        cg_json_number(stdout, last->train_loss);
        printf(",\"valid_loss\":");
        cg_json_number(stdout, s->loss);
        printf(",\"accuracy\":");
        cg_json_number(stdout, s->accuracy);
        printf(",\"correct\":%lld,\"n\":%lld,\"per_class\":{", (long long)s->correct,
               (long long)s->n);
        for (int k = 0; k < valid->n_classes; k++) {
            if (k) putchar(',');
            cg_json_string(stdout, valid->class_names[k]);
            putchar(':');
            cg_json_number(stdout, s->class_n[k] ? (double)s->class_correct[k] / s->class_n[k]
                                                 : NAN);
        }
        printf("},\"seconds\":");
        cg_json_number(stdout, seconds);
        printf(",\"load_seconds\":");
        cg_json_number(stdout, load_seconds);
        double reduce_seconds;
        cg_comm_stats(comm, NULL, &reduce_seconds, NULL);
        printf(",\"ranks\":%d,\"allreduce_seconds\":", cg_comm_size(comm));
        cg_json_number(stdout, reduce_seconds);
        printf(",\"saved\":");
        if (c->save)
            cg_json_string(stdout, c->save);
        else
            fputs("null", stdout);
        printf("}\n");
        return;
    }
    printf("accuracy %.4f (%lld/%lld right) after %lld epochs, %.2f s\n", s->accuracy,
           (long long)s->correct, (long long)s->n, (long long)c->epochs, seconds);
    if (c->save) printf("saved the %s model to %s\n", m->name, c->save);
}

/* A final loss this many times the untrained model's (epoch 0) is a run
 * that blew up, not one that learned: a diverged run's loss lands in the
 * thousands to 1e26 against an untrained 0.5-2.5, while learning lowers it. */
#define DIVERGED_LOSS_RATIO 1000.0

/* How training ended, beyond its figures. */
typedef enum { TRAINED, BLEW_UP, NOT_FINITE } train_end;

/* Whether training diverged; why into buf. A model with a weight or loss
 * that is not a number is not worth saving (cg_model_save refuses it too,
 * with a message about weights rather than the --lr that caused them); one
 * whose loss blew up but stayed finite may still classify (its accuracy is
 * printed), so it is saved, with a warning. */
static train_end diverged(const cg_model *m, const cg_recorder *rec, const cg_score *valid,
                          char *buf, size_t size) {
    const cg_epoch_record *first = &rec->epochs[0], *last = &rec->epochs[rec->n_epochs - 1];
    if (!isfinite(last->train_loss)) {
        snprintf(buf, size, "train loss %g", last->train_loss);
        return NOT_FINITE;
    }
    if (!isfinite(valid->loss)) {
        snprintf(buf, size, "valid loss %g", valid->loss);
        return NOT_FINITE;
    }
    for (int i = 0; i < m->n_params; i++)
        for (int64_t j = 0; j < m->params[i]->numel; j++)
            if (!isfinite(m->params[i]->data[j])) {
                snprintf(buf, size, "a weight is %g", (double)m->params[i]->data[j]);
                return NOT_FINITE;
            }
    if (rec->n_epochs > 1 && isfinite(first->valid_loss) && first->valid_loss > 0 &&
        valid->loss > DIVERGED_LOSS_RATIO * first->valid_loss) {
        snprintf(buf, size, "valid loss %g, up from the untrained model's %g", valid->loss,
                 first->valid_loss);
        return BLEW_UP;
    }
    return TRAINED;
}

/* fit's callbacks: the progress bar and the rows. */
static void on_batch(void *user, int epoch, int64_t batch, int64_t n_batches, float loss) {
    (void)loss;
    cg_progress_batch(user, epoch, batch, n_batches);
}

static bool on_epoch(void *user, const cg_epoch_record *r, const cg_score *valid) {
    (void)valid;
    cg_epoch_stats st = {r->epoch, r->train_loss, r->valid_loss, r->accuracy, r->seconds};
    cg_progress_row(user, &st);
    return true;
}

int cg_cmd_train(int argc, char **argv) {
    train_cfg c;
    int rc = parse(argc, argv, &c);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (c.threads > 0) cg_set_num_threads((int)c.threads);

    /* Started by mpirun / srun as one of several: train together. */
    int launched_rank, launched = cg_comm_launched(&launched_rank);
    cg_comm *comm = NULL;
    if (launched > 1 && !(comm = cg_comm_mpi_world()))
        return launched_rank == 0 ? cg_cmd_fail("train") : CG_EXIT_FAIL;
    const bool lead = cg_comm_rank(comm) == 0; /* prints and saves */

    cg_status out_ok = CG_OK;
    if (lead && ((c.save && check_output_path("--save", "save", c.save) != CG_OK) ||
                 (c.history &&
                  check_output_path("--history", "write the history", c.history) != CG_OK)))
        out_ok = cg_last_status();
    if (cg_comm_agree(comm, out_ok) != CG_OK) {
        rc = cg_comm_peer_failed(comm) ? CG_EXIT_FAIL : cg_cmd_fail("train");
        cg_comm_free(comm);
        return rc;
    }

    cg_dataset train = {0}, valid = {0};
    cg_model *m = NULL;
    cg_recorder rec = {0};
    cg_progress prog;
    double t0 = cg_cli_now();
    /* The datasets keep only their bytes (full MNIST: 47 MB, not 188 MB of
     * floats): batches and scores are made from them, with the same bits. */
    cg_data_keep_floats(false);
    if ((rc = cg_cli_load_data("train", &c.src, 0, NULL, &train, &valid)) == CG_OPTS_CONTINUE)
        rc = finish_defaults(&c, train.n_classes);
    cg_rng rng;
    cg_rng_seed(&rng, c.seed);
    if (rc == CG_OPTS_CONTINUE && !(m = build_model(&c, &train, &rng))) rc = cg_cmd_fail("train");
    /* Every rank goes on, or none (the one that failed has said why). */
    if (cg_comm_agree(comm, rc == CG_OPTS_CONTINUE ? CG_OK : CG_ERR_ARG) != CG_OK) {
        if (rc == CG_OPTS_CONTINUE) rc = CG_EXIT_FAIL;
        goto done;
    }
    cg_progress_init(&prog, (int)c.epochs, c.json && lead, c.quiet || !lead);
    rc = CG_EXIT_FAIL;
    double t1 = cg_cli_now();
    if (lead) print_header(&c, m, &train, &valid);
    if (lead && comm && !c.quiet && !c.json)
        printf("%d processes, each training on its slice of every batch of %lld\n",
               cg_comm_size(comm), (long long)c.bs);

    cg_fit_config fc = {
        .epochs = c.epochs, .bs = c.bs, .seed = c.seed ^ LOADER_SEED_MIX, .shuffle = !c.no_shuffle,
        .loss = (cg_loss_kind)c.loss, .opt = optim_config(&c),
        .sched = c.sched == SCHED_ONE_CYCLE ? CG_SCHED_ONE_CYCLE : CG_SCHED_CONSTANT,
        .score_epoch0 = true, .on_batch = on_batch, .on_epoch = on_epoch, .user = &prog,
        .comm = comm,
    };
    cg_score score;
    if (cg_fit(m, &train, &valid, &fc, &rec, &score) != CG_OK) goto fail;
    cg_progress_clear(&prog);
    double seconds = cg_cli_now() - t1;
    char why[160];
    train_end end = rec.n_epochs > 0 ? diverged(m, &rec, &score, why, sizeof why) : TRAINED;
    if (!lead) {
        rc = CG_EXIT_OK; /* the same weights and figures as rank 0's, which reports them */
        goto done;
    }
    if (end == NOT_FINITE) {
        fprintf(stderr, "cgrad train: training diverged (%s): try a lower --lr%s\n", why,
                c.save ? "; the model is not saved" : "");
        rc = CG_EXIT_FAIL;
        goto done;
    }
    if (end == BLEW_UP)
        fprintf(stderr, "cgrad train: warning: the loss blew up (%s): try a lower --lr\n", why);
    if (c.save && cg_model_save(m, c.save) != CG_OK) goto fail;
    if (c.history && cg_recorder_write(&rec, c.history) != CG_OK) goto fail;
    print_summary(&c, m, &valid, &score, &rec, seconds, t1 - t0, comm);
    rc = CG_EXIT_OK;
    goto done;
fail:
    cg_progress_clear(&prog);
    if (comm && !cg_comm_peer_failed(comm)) {
        char why[512];
        snprintf(why, sizeof why, "%s", cg_last_error());
        cg_fail(cg_last_status(), "rank %d of %d: %s", cg_comm_rank(comm), cg_comm_size(comm),
                why);
    }
    rc = cg_comm_peer_failed(comm) ? CG_EXIT_FAIL : cg_cmd_fail("train");
done:
    cg_recorder_free(&rec);
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    cg_comm_free(comm);
    return rc;
}
