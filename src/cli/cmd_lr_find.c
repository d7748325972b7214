/*
 * cmd_lr_find.c - `cgrad lr-find`: fastai's learning-rate finder on the
 * model and data `cgrad train` would use (the same options, train_opts.h),
 * printing fastai's suggestions (valley, minimum, steepest) and, with
 * --json, the whole sweep. The work is the library's cg_lr_find.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/train_opts.h"

static const char LR_FIND_USAGE[] =
    "usage: cgrad lr-find --model NAME | --arch SPEC [options]\n"
    "  fastai's learning-rate finder: trains the model `cgrad train` would build\n"
    "  (same options) on mini-batches with the lr growing exponentially from\n"
    "  --start-lr to --end-lr, until --num-it batches or the loss blows up, and\n"
    "  suggests lrs from the smoothed loss: valley (fastai's default), minimum\n"
    "  (the lowest loss's lr / 10) and steepest (fastest fall per log lr).\n";

typedef struct lr_find_cli {
    train_cfg t;
    double start_lr, end_lr;
    int64_t num_it;
    const char *plot;
    bool no_stop_div, json, quiet;
} lr_find_cli;

static int parse(int argc, char **argv, lr_find_cli *c) {
    cg_opt opts[CG_TRAIN_OPTS_MAX + 8];
    int n = cg_train_opts(&c->t, opts, false);
    c->start_lr = 1e-7;
    c->end_lr = 10.0;
    c->num_it = 100;
    c->plot = NULL;
    c->no_stop_div = c->json = c->quiet = false;
    const cg_opt own[] = {
        {"--start-lr", CG_OPT_FLOAT, &c->start_lr, 0, 1e6, NULL, true,
         "the sweep's first lr (1e-7)", NULL},
        {"--end-lr", CG_OPT_FLOAT, &c->end_lr, 0, 1e6, NULL, true, "the lr it grows towards (10)",
         NULL},
        {"--num-it", CG_OPT_INT, &c->num_it, 6, 1000000, NULL, false, "batches at most (100)",
         NULL},
        {"--no-stop-div", CG_OPT_FLAG, &c->no_stop_div, 0, 0, NULL, false,
         "run every batch, even after the loss blows up (4x its minimum)", NULL},
        {"--plot", CG_OPT_STR, &c->plot, 0, 0, NULL, false,
         "draw the loss against the lr, the suggestions marked (.png or .svg)", "FILE"},
        {"--json", CG_OPT_FLAG, &c->json, 0, 0, NULL, false,
         "one JSON object: the suggestions and the sweep (lrs, losses)", NULL},
        {"--quiet", CG_OPT_FLAG, &c->quiet, 0, 0, NULL, false, "no progress bar", NULL},
    };
    for (int i = 0; i < CG_NOPTS(own); i++) opts[n++] = own[i];
    int rc = cg_opts_parse("lr-find", LR_FIND_USAGE, argc, argv, opts, n, NULL, 0, NULL);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (!(c->end_lr > c->start_lr))
        return cg_usage_error("lr-find", "--end-lr (%g) must be above --start-lr (%g)", c->end_lr,
                              c->start_lr);
    if (c->plot && cg_plot_check_path(c->plot) != CG_OK)
        return cg_usage_error("lr-find", "--plot %s: name a .png or .svg file", c->plot);
    return cg_train_check("lr-find", &c->t);
}

static void on_batch(void *user, int64_t it, int64_t num_it, double lr, double loss) {
    (void)lr;
    (void)loss;
    cg_progress_batch(user, 1, it, num_it);
}

static void json_series(const char *name, const double *v, int64_t n) {
    printf(",\"%s\":[", name);
    for (int64_t i = 0; i < n; i++) {
        if (i) putchar(',');
        cg_json_number(stdout, v[i]);
    }
    putchar(']');
}

static void print_json(const lr_find_cli *c, const cg_model *m, const cg_lr_find_result *r) {
    char spec[1024];
    printf("{\"command\":\"lr-find\",\"model\":");
    cg_json_string(stdout, m->name);
    printf(",\"arch\":");
    cg_json_string(stdout, cg_model_spec(m, spec, sizeof spec));
    printf(",\"loss\":\"%s\",\"opt\":\"%s\",\"bs\":%lld,\"seed\":%llu,\"start_lr\":",
           cg_loss_name((cg_loss_kind)c->t.loss), OPT_NAMES[c->t.opt], (long long)c->t.bs,
           (unsigned long long)c->t.seed);
    cg_json_number(stdout, c->start_lr);
    printf(",\"end_lr\":");
    cg_json_number(stdout, c->end_lr);
    printf(",\"num_it\":%lld,\"n\":%lld,\"diverged\":%s", (long long)c->num_it, (long long)r->n,
           r->diverged ? "true" : "false");
    printf(",\"plot\":");
    if (c->plot)
        cg_json_string(stdout, c->plot);
    else
        fputs("null", stdout);
    const char *names[] = {"valley", "minimum", "steepest"};
    const double lrs[] = {r->valley, r->minimum, r->steepest};
    const int64_t idx[] = {r->valley_idx, r->minimum_idx, r->steepest_idx};
    for (int k = 0; k < 3; k++) {
        printf(",\"%s\":", names[k]);
        cg_json_number(stdout, lrs[k]);
        printf(",\"%s_idx\":%lld", names[k], (long long)idx[k]);
    }
    printf(",\"suggest_from\":%lld,\"suggest_to\":%lld", (long long)r->suggest_from,
           (long long)r->suggest_to);
    json_series("lrs", r->lrs, r->n);
    json_series("losses", r->losses, r->n);
    json_series("raw_losses", r->raw_losses, r->n);
    printf("}\n");
}

static void print_text(const lr_find_cli *c, const cg_model *m, const cg_dataset *train,
                       const cg_lr_find_result *r) {
    char spec[1024];
    printf("lr-find %s (%s) on %lld images: loss %s, opt %s, batch size %lld, seed %llu\n", m->name,
           cg_model_spec(m, spec, sizeof spec), (long long)cg_dataset_size(train),
           cg_loss_name((cg_loss_kind)c->t.loss), OPT_NAMES[c->t.opt], (long long)c->t.bs,
           (unsigned long long)c->t.seed);
    printf("swept lr %g .. %g over %lld batches", r->lrs[0], r->lrs[r->n - 1], (long long)r->n);
    if (r->diverged) printf(" (stopped: the smoothed loss passed 4x its minimum)");
    printf("\n");
    printf("%-9s %-12s %s\n", "suggest", "lr", "smoothed loss there");
    printf("%-9s %-12.4g %.4f  (fastai's default)\n", "valley", r->valley,
           r->losses[r->valley_idx]);
    printf("%-9s %-12.4g %.4f  (at lr %.4g, the lowest loss; / 10)\n", "minimum", r->minimum,
           r->losses[r->minimum_idx], r->lrs[r->minimum_idx]);
    printf("%-9s %-12.4g %.4f  (the loss falls fastest per log lr)\n", "steepest", r->steepest,
           r->losses[r->steepest_idx]);
    if (c->plot) printf("drew the sweep in %s\n", c->plot);
}

int cg_cmd_lr_find(int argc, char **argv) {
    lr_find_cli c;
    int rc = parse(argc, argv, &c);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (c.t.threads > 0) cg_set_num_threads((int)c.t.threads);

    cg_dataset train = {0}, valid = {0};
    cg_model *m = NULL;
    cg_lr_find_result res = {0};
    cg_progress prog;
    cg_data_keep_floats(false);
    if ((rc = cg_cli_load_data("lr-find", &c.t.src, 0, NULL, &train, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    if ((rc = cg_train_finish_defaults("lr-find", &c.t, train.n_classes)) != CG_OPTS_CONTINUE)
        goto done;
    cg_progress_init(&prog, 1, c.json, c.quiet);

    /* The model `cgrad train` would start from with these options and seed,
     * and the batches it would draw. */
    cg_rng rng;
    cg_rng_seed(&rng, c.t.seed);
    if (!(m = cg_train_build_model(&c.t, &train, &rng))) {
        rc = cg_cmd_fail("lr-find");
        goto done;
    }
    if (c.t.summary) {
        cg_model_summary(m, stdout);
        putchar('\n');
    }
    cg_optim_config opt = cg_train_optim_config(&c.t);
    cg_lr_find_config fc =
        cg_lr_find_defaults((cg_loss_kind)c.t.loss, &opt, c.t.bs, c.t.seed ^ LOADER_SEED_MIX);
    fc.start_lr = c.start_lr;
    fc.end_lr = c.end_lr;
    fc.num_it = c.num_it;
    fc.stop_div = !c.no_stop_div;
    fc.shuffle = !c.t.no_shuffle;
    fc.on_batch = on_batch;
    fc.user = &prog;
    cg_status st = cg_lr_find(m, &train, &fc, &res);
    cg_progress_clear(&prog);
    if (st != CG_OK) {
        rc = cg_cmd_fail("lr-find");
        goto done;
    }
    if (res.suggest_to - res.suggest_from < 10)
        fprintf(stderr,
                "cgrad lr-find: warning: the suggestions come from %lld points of the sweep, too "
                "few to trust: try a lower --start-lr or more --num-it\n",
                (long long)(res.suggest_to - res.suggest_from));
    if (c.plot && cg_lr_find_plot(&res, m->name, c.plot) != CG_OK) {
        rc = cg_cmd_fail("lr-find");
        goto done;
    }
    if (c.json)
        print_json(&c, m, &res);
    else
        print_text(&c, m, &train, &res);
    rc = CG_EXIT_OK;
done:
    cg_lr_find_result_free(&res);
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return rc;
}
