/*
 * test_mpi.c - data-parallel training (src/nn/distributed.c, cg_fit with a
 * communicator, `cgrad train` under mpirun).
 *
 * Each cmocka test here is a driver: it runs `mpirun -np 2` (bounded by a
 * timeout) on this same program with a scenario's name as argv[1], or on
 * the cgrad program, and checks the exit status and what came out. A
 * scenario runs on every rank and exits 0 when what it checks holds, else
 * prints why and exits 1. Open MPI is told to work without ssh or a
 * network (one node, shared memory: --mca btl self,vader) and, where the
 * tests run as root (CI containers), to allow it.
 *
 * Built without MPI (-DCGRAD_MPI=OFF) the drivers skip, and the one test
 * of that build checks that asking for MPI fails with a clear message.
 */
#include "testutil.h"

#include "data/data.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CGRAD_HAVE_MPI
#include <mpi.h>
#endif

#ifdef CGRAD_HAVE_MPI

/* ------------------------------------------------------------------ */
/* Shared by the scenarios                                             */
/* ------------------------------------------------------------------ */

/* n images of side x side in `classes` classes: noise, plus a bright band
 * whose row depends on the class, so that a model can learn them. */
static void synthetic(cg_dataset *ds, int64_t n, int side, int classes, uint64_t seed) {
    uint8_t *pixels = malloc((size_t)(n * side * side)), *labels = malloc((size_t)n);
    cg_rng rng;
    cg_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        labels[i] = (uint8_t)(i % classes);
        int band = (int)labels[i] * side / classes;
        for (int p = 0; p < side * side; p++) {
            int noise = (int)cg_rng_below(&rng, 120);
            pixels[i * side * side + p] = (uint8_t)(p / side == band ? 135 + noise : noise);
        }
    }
    cg_status st = cg_dataset_from_u8(ds, "test", "synthetic", pixels, labels, n, side, side);
    free(pixels);
    free(labels);
    if (st != CG_OK) {
        fprintf(stderr, "synthetic data: %s\n", cg_last_error());
        exit(1);
    }
}

/* FNV-1a over every weight and every state float (batch norm's running
 * statistics): equal hashes on every rank mean bit-identical models. */
static uint64_t model_hash(const cg_model *m) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        for (int k = 0; k < l->n_params + l->n_state; k++) {
            const cg_tensor *t = k < l->n_params ? l->params[k] : l->state[k - l->n_params];
            const unsigned char *b = (const unsigned char *)t->data;
            for (size_t j = 0; j < (size_t)t->numel * sizeof(float); j++)
                h = (h ^ b[j]) * 1099511628211ULL;
        }
    }
    return h;
}

static int rank_of_world(void) {
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

/* A scenario's failure: says which rank and why, then exit 1. */
#define REQUIRE(cond, ...)                                                            \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "rank %d: %s:%d: ", rank_of_world(), __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, " (last error: %s)\n", cg_last_error());                  \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* on_epoch: the hash of the model, compared across ranks (its own MPI
 * calls, not the library's), counting the epochs where they differ. */
typedef struct epoch_check {
    cg_model *m;
    int epochs, differ;
} epoch_check;

static bool check_hash(void *user, const cg_epoch_record *r, const cg_score *valid) {
    (void)r, (void)valid;
    epoch_check *e = user;
    uint64_t h = model_hash(e->m), lo = h, hi = h;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    e->epochs++;
    e->differ += lo != hi;
    return true;
}

/* Relative size of the difference of two models' weights, ||a - b|| / ||b||
 * over all parameters, and the largest element-wise |a - b| / max|b|. */
static void model_diff(const cg_model *a, const cg_model *b, double *rel_norm, double *rel_max) {
    double d2 = 0, b2 = 0, dmax = 0, bmax = 0;
    for (int i = 0; i < b->n_params; i++)
        for (int64_t j = 0; j < b->params[i]->numel; j++) {
            double x = a->params[i]->data[j], y = b->params[i]->data[j];
            d2 += (x - y) * (x - y);
            b2 += y * y;
            dmax = fmax(dmax, fabs(x - y));
            bmax = fmax(bmax, fabs(y));
        }
    *rel_norm = sqrt(d2 / b2);
    *rel_max = dmax / bmax;
}

/* MNIST_SAMPLE when $CGRAD_DATA has it, else synthetic 3s and 7s. */
static void two_classes(cg_dataset *train, cg_dataset *valid) {
    const char *d = getenv("CGRAD_DATA");
    char path[1024];
    cg_data_keep_floats(false);
    if (d && *d) {
        snprintf(path, sizeof path, "%s/mnist_sample/train", d);
        if (cg_dataset_load_folder(train, path) == CG_OK) {
            snprintf(path, sizeof path, "%s/mnist_sample/valid", d);
            REQUIRE(cg_dataset_load_folder(valid, path) == CG_OK, "loading %s", path);
            return;
        }
    }
    synthetic(train, 1001, 28, 2, 1);
    synthetic(valid, 301, 28, 2, 2);
}

/* The same answer as one process: the article's mlp (784-30-1, mnist_loss,
 * plain SGD) for 3 epochs on 2 ranks with a global batch of 101 (slices of
 * 50 and 51, and a shorter last batch), against one process with batch
 * 101; bit-identical models on the ranks after every epoch. */
static int scenario_same_answer(cg_comm *comm) {
    cg_dataset train = {0}, valid = {0};
    two_classes(&train, &valid);
    cg_fit_config fc = {.epochs = 3,
                        .bs = 101,
                        .seed = 7,
                        .shuffle = true,
                        .loss = CG_LOSS_MNIST,
                        .opt = cg_sgd_config(0.1f),
                        .sched = CG_SCHED_CONSTANT,
                        .score_epoch0 = true,
                        .comm = comm};
    cg_rng rng;
    cg_rng_seed(&rng, 42);
    cg_model *m = cg_model_new(CG_MODEL_MLP, 784, 30, 1, CG_INIT_PYTORCH, 0.0f, &rng);
    epoch_check e = {.m = m};
    fc.on_epoch = check_hash;
    fc.user = &e;
    cg_score multi, one;
    REQUIRE(cg_fit(m, &train, &valid, &fc, NULL, &multi) == CG_OK, "fit on 2 ranks");
    REQUIRE(e.epochs == 4 && e.differ == 0, "weights differ across ranks after %d of %d epochs",
            e.differ, e.epochs);
    if (cg_comm_rank(comm) == 0) {
        cg_rng_seed(&rng, 42);
        cg_model *ref = cg_model_new(CG_MODEL_MLP, 784, 30, 1, CG_INIT_PYTORCH, 0.0f, &rng);
        fc.comm = NULL;
        fc.on_epoch = NULL;
        REQUIRE(cg_fit(ref, &train, &valid, &fc, NULL, &one) == CG_OK, "fit on one process");
        double rel_norm, rel_max;
        model_diff(m, ref, &rel_norm, &rel_max);
        printf("2 ranks vs 1 process, %lld images: weights differ by %.3g (norm), %.3g (max), "
               "relative; accuracy %.4f vs %.4f\n",
               (long long)cg_dataset_size(&train), rel_norm, rel_max, multi.accuracy, one.accuracy);
        REQUIRE(rel_norm < 1e-5 && rel_max < 1e-5, "weights differ by %g / %g", rel_norm, rel_max);
        REQUIRE(fabs(multi.accuracy - one.accuracy) <= 0.001, "accuracy %g vs %g", multi.accuracy,
                one.accuracy);
        REQUIRE(multi.n == one.n && multi.accuracy > 0.7, "scored %lld items, accuracy %g",
                (long long)multi.n, multi.accuracy);
        cg_model_free(ref);
    }
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return 0;
}

/* Every model kind and optimizer: an mlp with dropout, a CNN with batch
 * norm and a small ResNet, each with SGD, SGD with Nesterov momentum, Adam and AdamW under
 * one-cycle, trained on 2 ranks: the same bits on both after every epoch
 * (running statistics included), finite figures, and learning. */
static int scenario_every_kind(cg_comm *comm) {
    cg_dataset train = {0}, valid = {0};
    synthetic(&train, 241, 12, 3, 3);
    synthetic(&valid, 60, 12, 3, 4);
    static const char *const specs[] = {"linear:16,relu,dropout:0.2,linear",
                                        "conv:4:3:2,bn,relu,conv:8:3:2,bn,relu,gap,linear",
                                        "conv:4:3:2,bn,relu,res:8:2,gap,linear"};
    for (int s = 0; s < 3; s++)
        for (int o = 0; o < 4; o++) {
            cg_optim_config opt = o < 2    ? cg_sgd_config(0.05f)
                                  : o == 2 ? cg_adam_config(0.01f)
                                           : cg_adamw_config(0.01f, 0.01f);
            if (o == 1) opt.momentum = 0.9f, opt.nesterov = true;
            cg_rng rng;
            cg_rng_seed(&rng, 11);
            cg_model *m =
                cg_model_for_images(specs[s], "custom", 1, 12, 12, 3, CG_INIT_KAIMING, 0.0f, &rng);
            REQUIRE(m, "model %s", specs[s]);
            epoch_check e = {.m = m};
            cg_fit_config fc = {.epochs = 3,
                                .bs = 33,
                                .seed = 5,
                                .shuffle = true,
                                .loss = CG_LOSS_CE,
                                .opt = opt,
                                .sched = o >= 2 ? CG_SCHED_ONE_CYCLE : CG_SCHED_CONSTANT,
                                .score_epoch0 = true,
                                .on_epoch = check_hash,
                                .user = &e,
                                .comm = comm};
            cg_recorder rec = {0};
            cg_score score;
            REQUIRE(cg_fit(m, &train, &valid, &fc, &rec, &score) == CG_OK, "fit %s opt %d",
                    specs[s], o);
            REQUIRE(e.differ == 0, "%s, optimizer %d: weights differ across ranks", specs[s], o);
            const cg_epoch_record *last = &rec.epochs[rec.n_epochs - 1];
            REQUIRE(isfinite(last->train_loss) && score.n == 60, "%s opt %d: loss %g", specs[s], o,
                    last->train_loss);
            REQUIRE(last->train_loss < rec.epochs[0].train_loss, "%s opt %d: loss %g from %g",
                    specs[s], o, last->train_loss, rec.epochs[0].train_loss);
            cg_recorder_free(&rec);
            cg_model_free(m);
        }
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return 0;
}

/* A rank that fails: rank 1's batches hold an index past its data in the
 * third step, and rank 1 alone has more training items. Both times every
 * rank's fit fails; rank 1 has the reason, rank 0 knows a peer failed. */
static int scenario_one_rank_fails(cg_comm *comm) {
    const int rank = cg_comm_rank(comm);
    cg_dataset train = {0}, valid = {0};
    synthetic(&train, rank == 1 ? 120 : 100, 12, 2, 3);
    synthetic(&valid, 20, 12, 2, 4);
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    cg_model *m =
        cg_model_for_images("linear", "linear", 1, 12, 12, 2, CG_INIT_PYTORCH, 0.0f, &rng);
    cg_fit_config fc = {.epochs = 2,
                        .bs = 10,
                        .seed = 1,
                        .loss = CG_LOSS_CE,
                        .opt = cg_sgd_config(0.1f),
                        .comm = comm};
    REQUIRE(cg_fit(m, &train, &valid, &fc, NULL, NULL) != CG_OK, "fit with unequal data");
    if (rank == 1)
        REQUIRE(strstr(cg_last_error(), "rank 1 has training items 120, rank 0 100") &&
                    !cg_comm_peer_failed(comm),
                "rank 1's message: %s", cg_last_error());
    else
        REQUIRE(cg_comm_peer_failed(comm) && strstr(cg_last_error(), "rank 1 of 2 failed"),
                "rank 0's message: %s", cg_last_error());

    /* The same size, but a bad index in rank 1's half of the third batch. */
    cg_dataset_free(&train);
    synthetic(&train, 100, 12, 2, 3);
    cg_dataloader dl;
    REQUIRE(cg_dataloader_init(&dl, 100, 10, false, false, 1) == CG_OK, "loader");
    if (rank == 1) dl.order[27] = 100000;
    fc.train_loader = &dl;
    uint64_t before = model_hash(m);
    REQUIRE(cg_fit(m, &train, &valid, &fc, NULL, NULL) != CG_OK, "fit with a bad index");
    if (rank == 1)
        REQUIRE(strstr(cg_last_error(), "100000") && !cg_comm_peer_failed(comm),
                "rank 1's message: %s", cg_last_error());
    else
        REQUIRE(cg_comm_peer_failed(comm), "rank 0's message: %s", cg_last_error());
    /* Two steps were taken, the failed third was not, on either rank. */
    REQUIRE(model_hash(m) != before, "no step was taken");
    epoch_check e = {.m = m};
    check_hash(&e, NULL, NULL);
    REQUIRE(e.differ == 0, "the ranks' weights differ after the failed step");
    cg_dataloader_free(&dl);
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return 0;
}

/* A rank that dies: rank 1 is killed in its second step, while rank 0
 * waits for it in the allreduce; mpirun must end rank 0 too, before it
 * writes argv[2]. */
static void die_in_step_2(void *user, int epoch, int64_t batch, int64_t n, float loss) {
    (void)user, (void)n, (void)loss;
    if (rank_of_world() == 1 && epoch == 1 && batch == 2) raise(SIGKILL);
}

static int scenario_rank_dies(cg_comm *comm, const char *save) {
    cg_dataset train = {0}, valid = {0};
    synthetic(&train, 200, 12, 2, 3);
    synthetic(&valid, 20, 12, 2, 4);
    cg_rng rng;
    cg_rng_seed(&rng, 3);
    cg_model *m =
        cg_model_for_images("linear", "linear", 1, 12, 12, 2, CG_INIT_PYTORCH, 0.0f, &rng);
    cg_fit_config fc = {.epochs = 50,
                        .bs = 10,
                        .seed = 1,
                        .loss = CG_LOSS_CE,
                        .opt = cg_sgd_config(0.1f),
                        .on_batch = die_in_step_2,
                        .comm = comm};
    cg_status st = cg_fit(m, &train, &valid, &fc, NULL, NULL);
    if (st == CG_OK && cg_comm_rank(comm) == 0) cg_model_save(m, save);
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return 1; /* reaching here at all is the failure */
}

/* Rank mode: argv[1] names the scenario. */
static int run_scenario(int argc, char **argv) {
    cg_comm *comm = cg_comm_mpi_world();
    if (!comm || cg_comm_size(comm) != 2) {
        fprintf(stderr, "%s: needs 2 MPI ranks (%s)\n", argv[1], cg_last_error());
        return 1;
    }
    cg_set_num_threads(1);
    int rc = 1;
    if (strcmp(argv[1], "same-answer") == 0)
        rc = scenario_same_answer(comm);
    else if (strcmp(argv[1], "every-kind") == 0)
        rc = scenario_every_kind(comm);
    else if (strcmp(argv[1], "one-rank-fails") == 0)
        rc = scenario_one_rank_fails(comm);
    else if (strcmp(argv[1], "rank-dies") == 0 && argc > 2)
        rc = scenario_rank_dies(comm, argv[2]);
    else
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
    cg_comm_free(comm);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The drivers                                                         */
/* ------------------------------------------------------------------ */

typedef struct run_result {
    int status; /* exit status; 124/137: the timeout ended it */
    char *out, *err;
    double seconds;
} run_result;

static char *slurp(const char *dir, const char *name) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    size_t len;
    char *s = (char *)cg_test_read_file(p, &len);
    return s ? s : calloc(1, 1);
}

/* mpirun ARGS (shell words), killed after 120 s, as CI needs it: without
 * ssh (one node), shared memory only, as root where the tests run as root.
 * The ranks of an ASan build leave Open MPI's own allocations (made once
 * at start) to LeakSanitizer: tests/lsan-mpi.supp names them, which needs
 * whole stacks (Open MPI has no frame pointers: the slow unwinder) of
 * components that stay loaded (disable_dlclose). */
static run_result mpirun(const char *fmt, ...) {
    static char dir[256];
    if (!dir[0]) snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd,
             "LSAN_OPTIONS=suppressions=%s/lsan-mpi.supp:print_suppressions=0:"
             "fast_unwind_on_malloc=0 "
             "OMPI_MCA_mca_base_component_disable_dlclose=1 "
             "timeout -s KILL 120 %s --oversubscribe %s --mca btl self,vader "
             "--mca btl_vader_single_copy_mechanism none %s >'%s/out' 2>'%s/err' </dev/null",
             CGRAD_TEST_SOURCE, CGRAD_MPIEXEC, geteuid() == 0 ? "--allow-run-as-root" : "", args,
             dir, dir);
    double t0 = cg_seconds();
    int st = system(cmd);
    run_result r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(dir, "out"), slurp(dir, "err"),
                    cg_seconds() - t0};
    return r;
}

static void run_free(run_result *r) {
    free(r->out);
    free(r->err);
}

static const char *self_exe(void) {
    static char path[1024];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    assert_true(n > 0);
    path[n] = '\0';
    return path;
}

static void expect_ok(const run_result *r, const char *what) {
    if (r->status != 0)
        fail_msg("%s: exit status %d\nstdout: %s\nstderr: %s", what, r->status, r->out, r->err);
    printf("%s", r->out);
}

static void test_two_ranks_same_answer_as_one(void **state) {
    (void)state;
    run_result r = mpirun("-np 2 '%s' same-answer", self_exe());
    expect_ok(&r, "same-answer");
    assert_non_null(strstr(r.out, "2 ranks vs 1 process"));
    run_free(&r);
}

static void test_every_model_kind_and_optimizer(void **state) {
    (void)state;
    run_result r = mpirun("-np 2 '%s' every-kind", self_exe());
    expect_ok(&r, "every-kind");
    run_free(&r);
}

static void test_one_rank_fails_all_stop(void **state) {
    (void)state;
    run_result r = mpirun("-np 2 '%s' one-rank-fails", self_exe());
    expect_ok(&r, "one-rank-fails");
    run_free(&r);
}

static void test_rank_dies_all_end(void **state) {
    (void)state;
    char save[600];
    snprintf(save, sizeof save, "%s/model.cgm", cg_test_tmpdir());
    run_result r = mpirun("-np 2 '%s' rank-dies '%s'", self_exe(), save);
    printf("a rank killed: mpirun ended in %.1f s, status %d\n", r.seconds, r.status);
    /* mpirun's status is the dead rank's signal (128 + 9), as the
     * timeout's would be: the time tells the two apart. */
    if (r.status == 0 || r.seconds > 100)
        fail_msg("rank-dies: exit status %d after %.0f s (expected mpirun's failure, not a "
                 "timeout)\n%s\n%s",
                 r.status, r.seconds, r.out, r.err);
    assert_non_null(strstr(r.err, "rank 1"));
    assert_int_equal(access(save, F_OK), -1);
    run_free(&r);
}

/* ---- the CLI under mpirun ---- */

/* A fastai-layout folder of synthetic 3s and 7s (PNGs) under root. */
static void write_png_folder(const char *root, int per_class_train, int per_class_valid) {
    static const char *const splits[] = {"train", "valid"}, *const classes[] = {"3", "7"};
    char p[700];
    cg_dataset ds = {0};
    synthetic(&ds, 2 * (per_class_train + per_class_valid), 28, 2, 9);
    for (int s = 0; s < 2; s++) {
        snprintf(p, sizeof p, "%s/%s", root, splits[s]);
        assert_int_equal(mkdir(root, 0755) == 0 || access(root, F_OK) == 0, 1);
        assert_int_equal(mkdir(p, 0755), 0);
        for (int c = 0; c < 2; c++) {
            snprintf(p, sizeof p, "%s/%s/%s", root, splits[s], classes[c]);
            assert_int_equal(mkdir(p, 0755), 0);
        }
    }
    const int64_t n = cg_dataset_size(&ds);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)ds.y->data[i];
        int split = i / 2 < per_class_train ? 0 : 1;
        snprintf(p, sizeof p, "%s/%s/%s/%05lld.png", root, splits[split], classes[c], (long long)i);
        assert_int_equal(cg_png_write_gray(p, ds.pixels + i * 784, 28, 28), CG_OK);
    }
    cg_dataset_free(&ds);
}

static const char *cgrad_bin(void) {
    static char path[1024];
    const char *build = getenv("CGRAD_TEST_BUILD");
    snprintf(path, sizeof path, "%s/cgrad", build && *build ? build : CGRAD_TEST_BUILD_DIR);
    return path;
}

/* The number of times needle occurs in hay. */
static int occurrences(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* cgrad train under mpirun -np 2: one summary (rank 0's) with "ranks":2,
 * the same accuracy as one process, and a saved model within 1e-5 of one
 * process's. */
static void test_cli_train_on_two_ranks(void **state) {
    (void)state;
    char dir[300], data[400], m1[400], m2[400];
    snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    snprintf(data, sizeof data, "%s/digits", dir);
    snprintf(m1, sizeof m1, "%s/one.cgm", dir);
    snprintf(m2, sizeof m2, "%s/two.cgm", dir);
    write_png_folder(data, 150, 40);
    const char *args = "train --model mlp --epochs 3 --bs 61 --threads 1 --json --quiet";
    run_result two = mpirun("-np 2 '%s' %s --data '%s' --save '%s'", cgrad_bin(), args, data, m2);
    expect_ok(&two, "cgrad train on 2 ranks");
    assert_int_equal(occurrences(two.out, "\"command\":\"train\""), 1);
    assert_non_null(strstr(two.out, "\"ranks\":2"));
    run_result one = mpirun("-np 1 '%s' %s --data '%s' --save '%s'", cgrad_bin(), args, data, m1);
    expect_ok(&one, "cgrad train on 1 rank");
    assert_non_null(strstr(one.out, "\"ranks\":1"));
    const char *a1 = strstr(one.out, "\"accuracy\":"), *a2 = strstr(two.out, "\"accuracy\":");
    assert_true(a1 && a2);
    cg_assert_close(atof(a2 + 11), atof(a1 + 11), 0.001, 0, "accuracy, 2 ranks vs 1");
    cg_model *x = cg_model_load(m2), *y = cg_model_load(m1);
    assert_true(x && y);
    for (int i = 0; i < y->n_params; i++)
        for (int64_t j = 0; j < y->params[i]->numel; j++)
            cg_assert_close(x->params[i]->data[j], y->params[i]->data[j], 1e-6, 1e-5, "weight");
    cg_model_free(x);
    cg_model_free(y);
    run_free(&one);
    run_free(&two);
}

/* Bad data on one rank (its folder does not exist): every rank ends, with
 * one message (the failing rank's) and a non-zero status, and no model. */
static void test_cli_bad_data_on_one_rank(void **state) {
    (void)state;
    char dir[300], data[400], model[400];
    snprintf(dir, sizeof dir, "%s", cg_test_tmpdir());
    snprintf(data, sizeof data, "%s/digits", dir);
    snprintf(model, sizeof model, "%s/m.cgm", dir);
    write_png_folder(data, 20, 5);
    const char *args = "train --model linear --epochs 2 --threads 1 --quiet";
    run_result r = mpirun("-np 1 '%s' %s --data '%s' --save '%s' : -np 1 '%s' %s --data "
                          "'%s/missing' --save '%s'",
                          cgrad_bin(), args, data, model, cgrad_bin(), args, dir, model);
    printf("bad data on rank 1: status %d, stderr:\n%s", r.status, r.err);
    if (r.status == 0 || r.status == 137) fail_msg("status %d: %s", r.status, r.err);
    assert_int_equal(occurrences(r.err, "cgrad train:"), 1);
    assert_non_null(strstr(r.err, "missing"));
    assert_int_equal(access(model, F_OK), -1);
    run_free(&r);
}

static void test_without_mpi_says_so(void **state) {
    (void)state;
    skip(); /* built with MPI: the drivers above run instead */
}

#else /* built without MPI */

static int run_scenario(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "%s: built without MPI\n", argv[1]);
    return 1;
}

static void skip_without_mpi(void) {
    printf("skipped: built without MPI (cmake -DCGRAD_MPI=ON)\n");
    skip();
}
static void test_two_ranks_same_answer_as_one(void **state) { (void)state, skip_without_mpi(); }
static void test_every_model_kind_and_optimizer(void **state) { (void)state, skip_without_mpi(); }
static void test_one_rank_fails_all_stop(void **state) { (void)state, skip_without_mpi(); }
static void test_rank_dies_all_end(void **state) { (void)state, skip_without_mpi(); }
static void test_cli_train_on_two_ranks(void **state) { (void)state, skip_without_mpi(); }
static void test_cli_bad_data_on_one_rank(void **state) { (void)state, skip_without_mpi(); }

/* Without MPI the API is there, and says why it cannot start; a NULL
 * communicator is one process alone, and agreeing is one's own status. */
static void test_without_mpi_says_so(void **state) {
    (void)state;
    assert_null(cg_comm_mpi_world());
    assert_non_null(strstr(cg_last_error(), "built without MPI"));
    assert_int_equal(cg_comm_rank(NULL), 0);
    assert_int_equal(cg_comm_size(NULL), 1);
    assert_int_equal(cg_comm_agree(NULL, CG_ERR_IO), CG_ERR_IO);
    assert_false(cg_comm_peer_failed(NULL));
    double x[2] = {1, 2};
    assert_int_equal(cg_comm_allreduce_sum(NULL, x, 2), CG_OK);
    assert_true(x[0] == 1 && x[1] == 2);
}

#endif

/* What a launcher's variables say, without starting MPI. */
static void test_launcher_environment(void **state) {
    (void)state;
    static const char *const vars[] = {
        "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK",
        "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    int rank = -1;
    assert_int_equal(cg_comm_launched(&rank), 1);
    assert_int_equal(rank, 0);
    setenv("SLURM_PROCID", "3", 1); /* a batch script's shell: not a step */
    assert_int_equal(cg_comm_launched(&rank), 1);
    setenv("SLURM_STEP_NUM_TASKS", "8", 1);
    assert_int_equal(cg_comm_launched(&rank), 8);
    assert_int_equal(rank, 3);
    setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
    setenv("OMPI_COMM_WORLD_RANK", "9", 1); /* out of range: not believed */
    assert_int_equal(cg_comm_launched(&rank), 1);
    setenv("OMPI_COMM_WORLD_RANK", "2", 1);
    assert_int_equal(cg_comm_launched(&rank), 4);
    assert_int_equal(rank, 2);
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

int main(int argc, char **argv) {
    if (argc > 1) return run_scenario(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_launcher_environment),
        cmocka_unit_test(test_without_mpi_says_so),
        cmocka_unit_test(test_two_ranks_same_answer_as_one),
        cmocka_unit_test(test_every_model_kind_and_optimizer),
        cmocka_unit_test(test_one_rank_fails_all_stop),
        cmocka_unit_test(test_rank_dies_all_end),
        cmocka_unit_test(test_cli_train_on_two_ranks),
        cmocka_unit_test(test_cli_bad_data_on_one_rank),
    };
    cg_test_setup_filter();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
