/*
 * train_opts.h - what `cgrad train` and `cgrad lr-find` share: the model,
 * data and recipe options (--model/--arch, --data..., --loss, --opt, --bs,
 * --init, ...), each model's default recipe, and the model and optimizer
 * they describe (train_opts.c). A command lists the table cg_train_opts
 * fills, adds its own options, parses, then calls cg_train_check, loads
 * the data and calls cg_train_finish_defaults for the task's defaults.
 */
#ifndef CGRAD_CLI_TRAIN_OPTS_H
#define CGRAD_CLI_TRAIN_OPTS_H

#include "cgrad.h"
#include "cli/options.h"

/* --model's choices (MODEL_ARCH: --arch SPEC), --opt's, --sched's, --init's. */
enum { MODEL_LINEAR, MODEL_MLP, MODEL_CNN, MODEL_RESNET, MODEL_ARCH, N_MODELS };
enum { OPT_SGD, OPT_MOMENTUM, OPT_ADAM, OPT_ADAMW };
enum { SCHED_CONSTANT, SCHED_ONE_CYCLE };
enum { INIT_NORMAL, INIT_PYTORCH, INIT_KAIMING };
extern const char *const MODEL_NAMES[], *const OPT_NAMES[], *const SCHED_NAMES[],
                                                                *const INIT_NAMES[];

/* A second stream for the loader, so that changing the model's size does
 * not change the batch order (the golden-ratio constant splitmix64 uses). */
#define LOADER_SEED_MIX 0x9e3779b97f4a7c15ULL

typedef struct train_cfg {
    cg_data_opts src;
    const char *save, *arch, *hidden, *history;
    const char *plot; /* --plot FILE: the recorder's losses and accuracy (cg_plot_recorder) */
    int model, loss, init, opt, sched;
    double lr, std, mom, wd;
    int64_t epochs, bs, threads;
    uint64_t seed;
    bool no_shuffle, json, quiet, summary, one_cycle;
    /* --augment / --no-augment and the transforms' sizes (NAN: not given);
     * after cg_train_finish_defaults augment says whether to, and shift,
     * rotate (degrees) and zoom (scale in 1 +- zoom) are set. */
    bool augment, no_augment;
    double shift, rotate, zoom;
} train_cfg;

/* Room for the table cg_train_opts fills, and a command's own after it. */
#define CG_TRAIN_OPTS_MAX 40

/* Sets *c to "nothing given" and fills opts (room for CG_TRAIN_OPTS_MAX)
 * with the options' table, in train's order; with all false, without
 * train's own (--lr, --sched, --one-cycle, --epochs, --save, --history,
 * --plot, --json, --quiet). Returns the entries written. */
int cg_train_opts(train_cfg *c, cg_opt *opts, bool all);
/* After parsing: what is wrong without the data (cmd names the command in
 * messages), and --model's default; CG_OPTS_CONTINUE or an exit code. */
int cg_train_check(const char *cmd, train_cfg *c);
/* The defaults that depend on the task (two classes or more). */
int cg_train_finish_defaults(const char *cmd, train_cfg *c, int n_classes);
/* The optimizer the options describe (its lr: --lr or the recipe's). */
cg_optim_config cg_train_optim_config(const train_cfg *c);
/* The training batches' augmentation the options describe (zero: none). */
cg_augment cg_train_augment(const train_cfg *c);
/* The model the options describe, for the data's classes and image size. */
cg_model *cg_train_build_model(const train_cfg *c, const cg_dataset *train, cg_rng *rng);

#endif
