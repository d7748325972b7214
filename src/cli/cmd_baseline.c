/*
 * cmd_baseline.c - `cgrad baseline`: the book's first "model", before any
 * learning. The ideal 3 is the per-pixel mean of every training 3 (and so
 * for 7); a validation image is called whichever ideal it is nearer to:
 *
 *     mean3 = stacked_threes.mean(0)
 *     def mnist_distance(a, b): return (a - b).abs().mean((-1, -2))
 *     def is_3(x): return mnist_distance(x, mean3) < mnist_distance(x, mean7)
 *     accuracy_3s = is_3(valid_3_tens).float().mean()          # 0.9168
 *     accuracy_7s = (1 - is_3(valid_7_tens).float()).mean()     # 0.9854
 *
 * Images are rows of 784 here, so the mean over (-1, -2) is a mean over -1.
 * With --distance rmse the distance is sqrt(mean((a - b)^2)), the book's
 * F.mse_loss(a, b).sqrt(). With more than two classes the nearest ideal
 * wins; a tie goes to the later class, as is_3's strict < sends it to 7.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"

static const char BASELINE_USAGE[] =
    "usage: cgrad baseline [--data PATH | --dataset NAME] [--classes A,B[,...]]\n"
    "                      [--distance l1|rmse] [--save-ideals DIR] [--plot FILE] [--json]\n"
    "  The pixel-similarity baseline of fastbook chapter 4: average the training\n"
    "  images of each digit into an 'ideal' digit, then call each validation image\n"
    "  the digit whose ideal it is nearest to. Prints the accuracy per class and\n"
    "  overall (every validation image counted once).\n"
    ;

/* An ideal digit as DIR/ideal_<class>.png, pixel = round(255 * mean). */
static cg_status save_ideal(const char *dir, const cg_dataset *ds, int c, const cg_tensor *ideal) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ideal_%s.png", dir, ds->class_names[c]);
    uint8_t *px = malloc((size_t)ideal->numel);
    if (!px) return cg_fail(CG_ERR_NOMEM, "baseline: out of memory");
    for (int64_t i = 0; i < ideal->numel; i++) {
        float v = ideal->data[i] * 255.0f;
        px[i] = (uint8_t)lrintf(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
    }
    cg_status st = cg_png_write_gray(path, px, ds->width, ds->height);
    free(px);
    return st;
}

/* The ideal digits side by side, as the book shows mean3 and mean7. */
static cg_status plot_ideals(const char *path, const cg_dataset *ds, cg_tensor *const *ideals) {
    cg_plot_image ims[CG_MAX_CLASSES];
    for (int c = 0; c < ds->n_classes; c++)
        ims[c] = (cg_plot_image){.floats = ideals[c]->data, .h = ds->height, .w = ds->width,
                                 .caption = ds->class_names[c]};
    cg_image_grid g = {.title = "The ideal digits (per-pixel means)", .images = ims,
                       .n = ds->n_classes, .cols = ds->n_classes < 10 ? ds->n_classes : 10,
                       .cmap = CG_CMAP_GREYS, .lo = 0, .hi = 1, .cell = 140};
    return cg_plot_image_grid(&g, path);
}

typedef struct baseline_result {
    int64_t n, correct;
    int64_t class_n[CG_MAX_CLASSES], class_correct[CG_MAX_CLASSES];
} baseline_result;

/*
 * Ideals from train, nearest-ideal calls on valid; the ideals stay in the
 * caller's scope for --save-ideals. mnist_distance is one fused op,
 * cg_tensor_row_distance (src/ops/distance.c): as the book writes it,
 * (a - b).abs().mean(-1) is three ops that would write and read back two
 * [N, P] temporaries here (tests/test_distance.c checks the two agree).
 */
static cg_status run_baseline(const cg_dataset *train, const cg_dataset *valid, cg_distance kind,
                              cg_tensor **ideals, baseline_result *r) {
    int nc = train->n_classes;
    int64_t n = valid->x->shape[0];
    for (int c = 0; c < nc; c++) {
        ideals[c] = cg_dataset_mean_image(train, c);
        if (!ideals[c]) return cg_last_status();
    }
    memset(r, 0, sizeof *r);
    r->n = n;
    cg_tensor *dist[CG_MAX_CLASSES];
    for (int c = 0; c < nc; c++)
        if (!(dist[c] = cg_tensor_row_distance(valid->x, ideals[c], kind))) return cg_last_status();
    for (int64_t i = 0; i < n; i++) {
        /* The nearest ideal; a tie goes to the later class (<=), as
         * is_3 = d3 < d7 sends it to 7. */
        int best = 0;
        for (int c = 1; c < nc; c++)
            if (dist[c]->data[i] <= dist[best]->data[i]) best = c;
        int truth = (int)valid->y->data[i];
        r->class_n[truth]++;
        r->class_correct[truth] += best == truth;
        r->correct += best == truth;
    }
    return CG_OK;
}

static double ratio(int64_t a, int64_t b) { return b ? (double)a / (double)b : NAN; }

int cg_cmd_baseline(int argc, char **argv) {
    cg_data_opts src = {0};
    const char *save_dir = NULL, *plot = NULL;
    int kind_opt = 0; /* the index in "l1|rmse" */
    int64_t threads = 0;
    bool json = false;
    cg_opt opts[] = {
        CG_OPTS_DATA_SOURCE(&src),
        {"--distance", CG_OPT_CHOICE, &kind_opt, 0, 0, "l1|rmse", false,
         "mean absolute difference (default) or root mean square", NULL},
        {"--save-ideals", CG_OPT_STR, &save_dir, 0, 0, NULL, false,
         "also write the ideal digits as DIR/ideal_<class>.png", "DIR"},
        {"--plot", CG_OPT_STR, &plot, 0, 0, NULL, false,
         "draw the ideal digits side by side (.png or .svg)", "FILE"},
        CG_OPT_THREADS(&threads),
        CG_OPT_JSON(&json),
    };
    int rc = cg_opts_parse("baseline", BASELINE_USAGE, argc, argv, opts, CG_NOPTS(opts), NULL, 0,
                           NULL);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (plot && cg_plot_check_path(plot) != CG_OK)
        return cg_usage_error("baseline", "--plot %s: name a .png or .svg file", plot);
    if (threads > 0) cg_set_num_threads((int)threads);

    cg_dataset train = {0}, valid = {0};
    double t0 = cg_cli_now();
    if ((rc = cg_cli_load_data("baseline", &src, false, NULL, &train, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    rc = CG_EXIT_FAIL;
    double t1 = cg_cli_now();

    cg_scope_begin();
    cg_tensor *ideals[CG_MAX_CLASSES] = {0};
    baseline_result r;
    const cg_distance kind = kind_opt == 0 ? CG_DIST_L1 : CG_DIST_RMSE;
    cg_status st = run_baseline(&train, &valid, kind, ideals, &r);
    double seconds = cg_cli_now() - t1;
    if (st == CG_OK && save_dir) {
        if (mkdir(save_dir, 0777) != 0 && errno != EEXIST)
            st = cg_fail(CG_ERR_IO, "baseline: cannot create %s: %s", save_dir, strerror(errno));
        for (int c = 0; st == CG_OK && c < train.n_classes; c++)
            st = save_ideal(save_dir, &train, c, ideals[c]);
    }
    if (st == CG_OK && plot) st = plot_ideals(plot, &train, ideals);
    cg_scope_end();
    if (st != CG_OK) {
        rc = cg_cmd_fail("baseline");
        goto done;
    }

    const char *dist_name = kind == CG_DIST_L1 ? "l1" : "rmse";
    if (json) {
        printf("{\"command\":\"baseline\",\"distance\":\"%s\",\"accuracy\":", dist_name);
        cg_json_number(stdout, ratio(r.correct, r.n));
        printf(",\"per_class\":{");
        for (int c = 0; c < valid.n_classes; c++) {
            if (c) putchar(',');
            cg_json_string(stdout, valid.class_names[c]);
            putchar(':');
            cg_json_number(stdout, ratio(r.class_correct[c], r.class_n[c]));
        }
        printf("},\"n\":%lld,\"correct\":%lld,\"n_train\":%lld,\"seconds\":", (long long)r.n,
               (long long)r.correct, (long long)train.x->shape[0]);
        cg_json_number(stdout, seconds);
        printf(",\"load_seconds\":");
        cg_json_number(stdout, t1 - t0);
        printf("}\n");
    } else {
        printf("ideal digits: per-pixel means of %lld training images; distance %s\n",
               (long long)train.x->shape[0], dist_name);
        for (int c = 0; c < valid.n_classes; c++)
            printf("accuracy %-8s %.4f  (%lld/%lld)\n", valid.class_names[c],
                   ratio(r.class_correct[c], r.class_n[c]), (long long)r.class_correct[c],
                   (long long)r.class_n[c]);
        printf("accuracy %-8s %.4f  (%lld/%lld)\n", "overall", ratio(r.correct, r.n),
               (long long)r.correct, (long long)r.n);
        printf("time %.4f s (loading the images: %.2f s)\n", seconds, t1 - t0);
        if (save_dir) printf("wrote %s/ideal_*.png\n", save_dir);
        if (plot) printf("wrote %s\n", plot);
    }
    rc = CG_EXIT_OK;
done:
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return rc;
}
