/*
 * cmd_interpret.c - `cgrad interpret MODEL`: fastai's
 * ClassificationInterpretation of a saved model on the validation images
 * (the data `cgrad eval` reads): the confusion matrix, the most confused
 * pairs and the top losses, as tables or one JSON object. The work is the
 * library's cg_interpret.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"

static const char INTERPRET_USAGE[] =
    "usage: cgrad interpret MODEL [--data PATH | --dataset NAME] [--classes A,B,...] [options]\n"
    "  Where a model saved by 'cgrad train --save' goes wrong on the validation\n"
    "  images (fastai's ClassificationInterpretation): the confusion matrix (rows:\n"
    "  actual class, columns: predicted), the most confused pairs and the images\n"
    "  with the highest loss (index in the validation split, predicted, actual,\n"
    "  loss, probability of the prediction).\n";

#define DEFAULT_TOP 9 /* fastai's plot_top_losses grids: 9 */
#define TEXT_PAIRS 15 /* the most confused pairs a table shows */

static void print_json(const char *path, const cg_model *m, const cg_interpretation *in,
                       const cg_confused_pair *pairs, int64_t n_pairs, const int64_t *top,
                       int64_t n_top) {
    const char(*names)[CG_CLASS_NAME_MAX] = m->class_names;
    printf("{\"command\":\"interpret\",\"file\":");
    cg_json_string(stdout, path);
    printf(",\"model\":");
    cg_json_string(stdout, m->name);
    printf(",\"loss\":\"%s\",\"n\":%lld,\"accuracy\":", cg_loss_name(cg_cli_model_loss(m)),
           (long long)in->n);
    cg_json_number(stdout, cg_interpretation_accuracy(in));
    printf(",\"classes\":[");
    for (int c = 0; c < in->n_classes; c++) {
        if (c) putchar(',');
        cg_json_string(stdout, names[c]);
    }
    printf("],\"confusion\":[");
    for (int a = 0; a < in->n_classes; a++) {
        printf("%s[", a ? "," : "");
        for (int p = 0; p < in->n_classes; p++)
            printf("%s%lld", p ? "," : "", (long long)in->confusion[a * in->n_classes + p]);
        putchar(']');
    }
    printf("],\"most_confused\":[");
    for (int64_t i = 0; i < n_pairs; i++) {
        printf("%s[", i ? "," : "");
        cg_json_string(stdout, names[pairs[i].actual]);
        putchar(',');
        cg_json_string(stdout, names[pairs[i].predicted]);
        printf(",%lld]", (long long)pairs[i].count);
    }
    printf("],\"top_losses\":[");
    for (int64_t i = 0; i < n_top; i++) {
        int64_t k = top[i];
        printf("%s{\"index\":%lld,\"predicted\":", i ? "," : "", (long long)k);
        cg_json_string(stdout, names[in->predicted[k]]);
        printf(",\"actual\":");
        cg_json_string(stdout, names[in->actual[k]]);
        printf(",\"loss\":");
        cg_json_number(stdout, in->losses[k]);
        printf(",\"probability\":");
        cg_json_number(stdout, in->probs[k]);
        putchar('}');
    }
    printf("]}\n");
}

static void print_text(const char *path, const cg_model *m, const cg_interpretation *in,
                       const cg_confused_pair *pairs, int64_t n_pairs, const int64_t *top,
                       int64_t n_top) {
    const char(*names)[CG_CLASS_NAME_MAX] = m->class_names;
    const int k = in->n_classes;
    int64_t right = 0;
    for (int c = 0; c < k; c++) right += in->confusion[c * k + c];
    printf("%s: %s model, %d classes, %lld validation images, accuracy %.4f (%lld/%lld)\n\n", path,
           m->name, k, (long long)in->n, cg_interpretation_accuracy(in), (long long)right,
           (long long)in->n);
    /* Columns wide enough for every name and count. */
    int w = 6;
    for (int c = 0; c < k; c++)
        if ((int)strlen(names[c]) + 1 > w) w = (int)strlen(names[c]) + 1;
    printf("confusion matrix (rows: actual, columns: predicted)\n%-*s", w + 2, "actual");
    for (int p = 0; p < k; p++) printf("%*s", w + 1, names[p]);
    putchar('\n');
    for (int a = 0; a < k; a++) {
        printf("%-*s", w + 2, names[a]);
        for (int p = 0; p < k; p++) printf("%*lld", w + 1, (long long)in->confusion[a * k + p]);
        putchar('\n');
    }
    printf("\nmost confused (actual -> predicted: count)\n");
    if (n_pairs == 0) printf("  none\n");
    for (int64_t i = 0; i < n_pairs && i < TEXT_PAIRS; i++)
        printf("  %s -> %s: %lld\n", names[pairs[i].actual], names[pairs[i].predicted],
               (long long)pairs[i].count);
    if (n_pairs > TEXT_PAIRS)
        printf("  ... %lld more (--min-val N keeps fewer; --json lists them all)\n",
               (long long)(n_pairs - TEXT_PAIRS));
    printf("\ntop %lld losses\n%8s  %-9s %-9s %10s %12s\n", (long long)n_top, "index", "predicted",
           "actual", "loss", "probability");
    for (int64_t i = 0; i < n_top; i++) {
        int64_t j = top[i];
        printf("%8lld  %-9s %-9s %10.4f %12.4f\n", (long long)j, names[in->predicted[j]],
               names[in->actual[j]], in->losses[j], in->probs[j]);
    }
}

int cg_cmd_interpret(int argc, char **argv) {
    cg_data_opts src = {0};
    const char *path = NULL, *plot = NULL, *plot_top = NULL;
    bool json = false;
    int64_t k = DEFAULT_TOP, min_val = 1;
    int n_pos = 0;
    cg_opt opts[] = {
        CG_OPTS_DATA_SOURCE(&src),
        {"--top", CG_OPT_INT, &k, 0, 1 << 30, NULL, false,
         "how many of the highest losses to list (9)", "K"},
        {"--min-val", CG_OPT_INT, &min_val, 1, 1LL << 40, NULL, false,
         "most_confused lists the pairs seen at least this often (1)", "N"},
        {"--plot", CG_OPT_STR, &plot, 0, 0, NULL, false,
         "draw the confusion matrix as a heatmap (.png or .svg)", "FILE"},
        {"--plot-top-losses", CG_OPT_STR, &plot_top, 0, 0, NULL, false,
         "draw the --top images, each under predicted/actual, loss / probability", "FILE"},
        CG_OPT_JSON(&json),
    };
    int rc = cg_opts_parse("interpret", INTERPRET_USAGE, argc, argv, opts, CG_NOPTS(opts), &path, 1,
                           &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (n_pos != 1) return cg_usage_error("interpret", "give the model file to interpret");
    if ((rc = cg_cli_check_data_opts("interpret", &src, 0)) != CG_OPTS_CONTINUE) return rc;
    const char *plots[2] = {plot, plot_top}, *plot_opts[2] = {"--plot", "--plot-top-losses"};
    for (int i = 0; i < 2; i++)
        if (plots[i] && cg_plot_check_path(plots[i]) != CG_OK)
            return cg_usage_error("interpret", "%s %s: name a .png or .svg file", plot_opts[i],
                                  plots[i]);
    if (plot_top && k < 1) return cg_usage_error("interpret", "--plot-top-losses needs --top >= 1");

    cg_model *m = NULL;
    cg_dataset valid = {0};
    cg_interpretation in = {0};
    cg_confused_pair *pairs = NULL;
    int64_t *top = NULL;
    if ((rc = cg_cli_load_model_valid("interpret", path, &src, &m, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    rc = CG_EXIT_FAIL;
    if (cg_interpret(m, &valid, cg_cli_model_loss(m), &in) != CG_OK) goto fail;
    pairs = malloc(sizeof *pairs * (size_t)(in.n_classes * in.n_classes));
    top = malloc(sizeof *top * (size_t)(k > 0 ? k : 1));
    if (!pairs || !top) {
        cg_fail(CG_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int64_t n_pairs = cg_interpretation_most_confused(&in, min_val, pairs);
    int64_t n_top = cg_interpretation_top_losses(&in, k, top);
    if (n_top < 0) goto fail;
    if (plot && cg_interpretation_plot_confusion(&in, m->class_names, NULL, plot) != CG_OK)
        goto fail;
    if (plot_top && cg_interpretation_plot_top_losses(&in, &valid, k, plot_top) != CG_OK) goto fail;
    if (json)
        print_json(path, m, &in, pairs, n_pairs, top, n_top);
    else
        print_text(path, m, &in, pairs, n_pairs, top, n_top);
    rc = CG_EXIT_OK;
    goto done;
fail:
    rc = cg_cmd_fail("interpret");
done:
    free(pairs);
    free(top);
    cg_interpretation_free(&in);
    cg_dataset_free(&valid);
    cg_model_free(m);
    return rc;
}
