/*
 * train_opts.c - the options `cgrad train` and `cgrad lr-find` share, and
 * each model's recipe (train_opts.h): parsing, the defaults, and the model
 * and optimizer they describe. The work is the library's
 * (cg_model_from_spec, cg_model_preset); this picks what to ask it for.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_data.h"
#include "cli/train_opts.h"

/* --model's choices, and the defaults of each: the one table the options'
 * help lines are written from. */
static const char MODEL_CHOICES[] = "linear|mlp|cnn|resnet";
const char *const MODEL_NAMES[] = {"linear", "mlp", "cnn", "resnet", "custom"};
static const cg_model_kind MODEL_KINDS[] = {CG_MODEL_LINEAR, CG_MODEL_MLP, CG_MODEL_CNN,
                                            CG_MODEL_RESNET, 0};
const char *const OPT_NAMES[] = {"sgd", "momentum", "adam", "adamw"};
const char *const SCHED_NAMES[] = {"constant", "one-cycle"};
const char *const INIT_NAMES[] = {"normal", "pytorch", "kaiming"};

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
    [MODEL_RESNET] = {{CG_LOSS_CE, 0.02, 10, 128, INIT_KAIMING, OPT_ADAMW, SCHED_ONE_CYCLE, NULL},
                      {CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAMW, SCHED_ONE_CYCLE, NULL}},
    [MODEL_ARCH] = {{CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAM, SCHED_ONE_CYCLE, NULL},
                    {CG_LOSS_CE, 0.01, 5, 256, INIT_KAIMING, OPT_ADAM, SCHED_ONE_CYCLE, NULL}},
};
/* [model][two classes?]: trained on augmented images by default
 * (--augment): the resnet, which without them overfits (on 3s and 7s as
 * on all ten digits; bench/README.md, "Augmentation"). */
static const bool AUGMENT_BY_DEFAULT[N_MODELS][2] = {[MODEL_RESNET] = {true, true}};
#define DEFAULT_SEED 42
#define DEFAULT_MOMENTUM 0.9
#define DEFAULT_WD_ADAMW 0.01
/* --augment's transforms: shifts of up to 2 pixels. Rotations and zooms
 * (--rotate, --zoom) scored lower on full MNIST with the resnet (the
 * figures are in bench/README.md, "Augmentation"). */
#define DEFAULT_SHIFT 2.0
#define DEFAULT_ROTATE 0.0
#define DEFAULT_ZOOM 0.0
/* The augmentation's own stream (another odd constant, as LOADER_SEED_MIX). */
#define AUGMENT_SEED_MIX 0xd1b54a32d192ed03ULL

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

/* Help lines that quote the recipes, written once at start-up. */
static char help_lr[256], help_epochs[256], help_opt[200], help_init[200], help_hidden[160],
    help_bs[96], help_augment[256];

static void write_help(void) {
    recipe_list(help_lr, sizeof help_lr, "learning rate (one-cycle: its peak):\n", true);
    recipe_list(help_epochs, sizeof help_epochs, "passes over the training set:\n", false);
    snprintf(help_bs, sizeof help_bs,
             "batch size (%lld; cnn %lld, resnet %lld on more than 2 classes)",
             (long long)RECIPES[MODEL_LINEAR][0].bs, (long long)RECIPES[MODEL_CNN][0].bs,
             (long long)RECIPES[MODEL_RESNET][0].bs);
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
    /* Which models augment by default, from AUGMENT_BY_DEFAULT. */
    char who[96] = "";
    for (int m = 0, n = 0; m < N_MODELS && n >= 0 && (size_t)n < sizeof who; m++) {
        const bool many = AUGMENT_BY_DEFAULT[m][0], two = AUGMENT_BY_DEFAULT[m][1];
        if (many || two)
            n += snprintf(who + n, sizeof who - (size_t)n, "%s%s%s", n ? ", " : "",
                          MODEL_NAMES[m],
                          many && two ? "" : many ? " on more than 2 classes" : " on 2 classes");
    }
    snprintf(help_augment, sizeof help_augment,
             "random shifts of each training image by up to %g pixels (default\n"
             "for %s); --rotate and --zoom add rotations, zooms",
             DEFAULT_SHIFT, who[0] ? who : "no model");
}

/* Options only `cgrad train` has. */
static bool train_only(const char *name) {
    static const char *const names[] = {
        "--lr",   "--sched", "--one-cycle", "--epochs",     "--save",  "--history", "--plot",
        "--json", "--quiet", "--augment",   "--no-augment", "--shift", "--rotate",  "--zoom"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

int cg_train_opts(train_cfg *c, cg_opt *opts, bool all) {
    /* Sentinels tell "not given" from a value, for the per-model defaults. */
    *c = (train_cfg){.model = -1,
                     .loss = -1,
                     .init = -1,
                     .opt = -1,
                     .sched = -1,
                     .lr = NAN,
                     .std = NAN,
                     .mom = NAN,
                     .wd = NAN,
                     .epochs = -1,
                     .bs = -1,
                     .seed = DEFAULT_SEED,
                     .shift = NAN,
                     .rotate = NAN,
                     .zoom = NAN};
    write_help();
    const cg_opt table[] = {
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
        {"--augment", CG_OPT_FLAG, &c->augment, 0, 0, NULL, false, help_augment, NULL},
        {"--no-augment", CG_OPT_FLAG, &c->no_augment, 0, 0, NULL, false,
         "train on the images as they are", NULL},
        {"--shift", CG_OPT_FLOAT, &c->shift, 0, 100, NULL, false,
         "--augment's largest shift, pixels", "PX"},
        {"--rotate", CG_OPT_FLOAT, &c->rotate, 0, 180, NULL, false,
         "--augment's largest rotation, degrees", "DEG"},
        {"--zoom", CG_OPT_FLOAT, &c->zoom, 0, 0.9, NULL, false,
         "--augment's zoom: a scale in 1-X..1+X", NULL},
        {"--save", CG_OPT_STR, &c->save, 0, 0, NULL, false,
         "write the trained model (see 'cgrad eval', 'cgrad predict')", "FILE"},
        {"--history", CG_OPT_STR, &c->history, 0, 0, NULL, false,
         "write each epoch's figures (.csv; .json also every batch's loss/lr)", "FILE"},
        {"--plot", CG_OPT_STR, &c->plot, 0, 0, NULL, false,
         "draw the losses per batch and epoch and the accuracy (.png or .svg)", "FILE"},
        {"--summary", CG_OPT_FLAG, &c->summary, 0, 0, NULL, false,
         "print the model's layers, output shapes and parameter counts first", NULL},
        {"--threads", CG_OPT_INT, &c->threads, 0, 1024, NULL, false,
         "threads for the kernels (0: OpenMP's default)", NULL},
        {"--json", CG_OPT_FLAG, &c->json, 0, 0, NULL, false,
         "JSON lines: one per epoch, then a summary", NULL},
        {"--quiet", CG_OPT_FLAG, &c->quiet, 0, 0, NULL, false,
         "no per-epoch rows or progress bar, only the result", NULL},
    };
    int n = 0;
    for (int i = 0; i < CG_NOPTS(table) && n < CG_TRAIN_OPTS_MAX; i++)
        if (all || !train_only(table[i].name)) opts[n++] = table[i];
    return n;
}

int cg_train_check(const char *cmd, train_cfg *c) {
    if (c->model < 0 && !c->arch)
        return cg_usage_error(cmd, "say which model: --model linear, --model mlp or --arch "
                                   "SPEC");
    if (c->model >= 0 && c->arch)
        return cg_usage_error(cmd, "--model and --arch both say what to build; give one");
    if (c->model != MODEL_MLP && c->hidden)
        return cg_usage_error(cmd, "--hidden is for --model mlp");
    if (c->one_cycle) {
        if (c->sched == SCHED_CONSTANT)
            return cg_usage_error(cmd, "--one-cycle and --sched constant disagree");
        c->sched = SCHED_ONE_CYCLE;
    }
    /* --std with a model whose init is never randn*std: said now, before
     * the data is read (the others' init depends on the class count). */
    int model = c->model < 0 ? MODEL_ARCH : c->model;
    if (!isnan(c->std) && (c->init >= 0 ? c->init != INIT_NORMAL
                                        : RECIPES[model][0].init != INIT_NORMAL &&
                                              RECIPES[model][1].init != INIT_NORMAL))
        return cg_usage_error(cmd, "--std is for --init normal (--init %s has no std)",
                              INIT_NAMES[c->init >= 0 ? c->init : RECIPES[model][1].init]);
    if (c->opt == OPT_SGD && !isnan(c->mom) && c->mom > 0)
        return cg_usage_error(cmd, "--mom with --opt sgd: use --opt momentum");
    bool sized = !isnan(c->shift) || !isnan(c->rotate) || !isnan(c->zoom);
    if (c->no_augment && (c->augment || sized))
        return cg_usage_error(cmd, "--no-augment with --augment, --shift, --rotate or --zoom: "
                                   "give one or the other");
    if (c->history) {
        const char *dot = strrchr(c->history, '.');
        if (!dot || (strcmp(dot, ".csv") != 0 && strcmp(dot, ".json") != 0))
            return cg_usage_error(cmd, "--history %s: name a .csv or .json file", c->history);
    }
    if (c->plot && cg_plot_check_path(c->plot) != CG_OK)
        return cg_usage_error(cmd, "--plot %s: name a .png or .svg file", c->plot);
    if (c->model < 0) c->model = MODEL_ARCH;
    return cg_cli_check_data_opts(cmd, &c->src, false);
}

int cg_train_finish_defaults(const char *cmd, train_cfg *c, int n_classes) {
    const recipe *r = &RECIPES[c->model][n_classes == 2];
    if (c->loss < 0) c->loss = r->loss;
    if (c->loss != CG_LOSS_CE && n_classes != 2)
        return cg_usage_error(cmd,
                              "--loss %s tells exactly 2 classes apart (one output); the data has "
                              "%d: use --loss ce, or --classes to pick two",
                              cg_loss_name((cg_loss_kind)c->loss), n_classes);
    /* --loss ce on the article's models: fastai's recipe for them. */
    if (c->loss == CG_LOSS_CE && r->loss != CG_LOSS_CE) r = &RECIPES[c->model][0];
    if (c->init < 0) c->init = r->init;
    if (c->init != INIT_NORMAL && !isnan(c->std))
        return cg_usage_error(cmd, "--std is for --init normal (--init %s has no std)",
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
    /* --augment (or the model's default) brings --augment's transforms, and
     * --shift, --rotate and --zoom change their own one: `--model resnet
     * --rotate 10` shifts and rotates. Alone, they turn on only themselves. */
    const bool base = c->augment || AUGMENT_BY_DEFAULT[c->model][n_classes == 2];
    const bool sized = !isnan(c->shift) || !isnan(c->rotate) || !isnan(c->zoom);
    c->augment = !c->no_augment && (base || sized);
    const bool defaults = c->augment && base;
    if (isnan(c->shift)) c->shift = defaults ? DEFAULT_SHIFT : 0.0;
    if (isnan(c->rotate)) c->rotate = defaults ? DEFAULT_ROTATE : 0.0;
    if (isnan(c->zoom)) c->zoom = defaults ? DEFAULT_ZOOM : 0.0;
    return CG_OPTS_CONTINUE;
}

cg_optim_config cg_train_optim_config(const train_cfg *c) {
    cg_optim_config o =
        c->opt >= OPT_ADAM ? cg_adam_config((float)c->lr) : cg_sgd_config((float)c->lr);
    o.momentum = (float)c->mom;
    o.weight_decay = (float)c->wd;
    o.decoupled_wd = c->opt == OPT_ADAMW;
    return o;
}

cg_augment cg_train_augment(const train_cfg *c) {
    if (!c->augment) return (cg_augment){0};
    return (cg_augment){.max_shift = (float)c->shift,
                        .max_rotate_deg = (float)c->rotate,
                        .min_scale = (float)(1.0 - c->zoom),
                        .max_scale = (float)(1.0 + c->zoom),
                        .seed = c->seed ^ AUGMENT_SEED_MIX};
}

cg_model *cg_train_build_model(const train_cfg *c, const cg_dataset *train, cg_rng *rng) {
    char spec[1024];
    const char *name = MODEL_NAMES[c->model];
    int64_t n_outputs = c->loss == CG_LOSS_CE ? train->n_classes : 1;
    if (c->arch)
        snprintf(spec, sizeof spec, "%s", c->arch);
    else if (c->model == MODEL_MLP
                 ? cg_mlp_spec(c->hidden, spec, sizeof spec)
                 : cg_model_preset(MODEL_KINDS[c->model], 0, n_outputs, spec, sizeof spec, &name))
        return NULL;
    static const cg_init inits[] = {CG_INIT_NORMAL, CG_INIT_PYTORCH, CG_INIT_KAIMING};
    cg_model *m = cg_model_for_images(spec, name, train->channels, train->height, train->width,
                                      n_outputs, inits[c->init],
                                      (float)(isnan(c->std) ? 1.0 : c->std), rng);
    if (!m) return NULL;
    m->n_classes = train->n_classes;
    memcpy(m->class_names, train->class_names, sizeof m->class_names);
    return m;
}
