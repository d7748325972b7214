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
#include "cli/train_opts.h"
#include "util/file.h"

static const char TRAIN_USAGE[] =
    "usage: cgrad train --model NAME | --arch SPEC [options]\n"
    "  Trains a classifier, printing a row per epoch. On two classes linear and\n"
    "  mlp are the article's 3-vs-7 models (one output, the book's mnist_loss);\n"
    "  with more classes (or --loss ce), and for cnn, resnet and --arch, one\n"
    "  output per class and cross-entropy.\n"
    "  Data: every class the data has unless --classes picks some.\n";

/* Parses argv and fills in the defaults that do not depend on the data;
 * CG_OPTS_CONTINUE or an exit code. */
static int parse(int argc, char **argv, train_cfg *c) {
    cg_opt opts[CG_TRAIN_OPTS_MAX];
    int n = cg_train_opts(c, opts, true);
    int rc = cg_opts_parse("train", TRAIN_USAGE, argc, argv, opts, n, NULL, 0, NULL);
    return rc != CG_OPTS_CONTINUE ? rc : cg_train_check("train", c);
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
    if (c->augment)
        printf(", augment (shift %g, rotate %g, zoom %g)", c->shift, c->rotate, c->zoom);
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
        if (c->augment)
            printf(",\"augment\":{\"shift\":%g,\"rotate\":%g,\"zoom\":%g}", c->shift,
                   c->rotate, c->zoom);
        else
            printf(",\"augment\":null");
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
                  check_output_path("--history", "write the history", c.history) != CG_OK) ||
                 (c.plot && check_output_path("--plot", "draw the plot", c.plot) != CG_OK)))
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
        rc = cg_train_finish_defaults("train", &c, train.n_classes);
    cg_rng rng;
    cg_rng_seed(&rng, c.seed);
    if (rc == CG_OPTS_CONTINUE && !(m = cg_train_build_model(&c, &train, &rng)))
        rc = cg_cmd_fail("train");
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

    const cg_augment augment = cg_train_augment(&c);
    cg_fit_config fc = {
        .epochs = c.epochs, .bs = c.bs, .seed = c.seed ^ LOADER_SEED_MIX, .shuffle = !c.no_shuffle,
        .loss = (cg_loss_kind)c.loss, .opt = cg_train_optim_config(&c),
        .sched = c.sched == SCHED_ONE_CYCLE ? CG_SCHED_ONE_CYCLE : CG_SCHED_CONSTANT,
        .score_epoch0 = true, .on_batch = on_batch, .on_epoch = on_epoch, .user = &prog,
        .comm = comm, .augment = &augment,
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
    if (c.plot && cg_plot_recorder(&rec, m->name, c.plot) != CG_OK) goto fail;
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
