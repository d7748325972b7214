/*
 * cmd_eval.c - `cgrad eval MODEL`: a saved model's accuracy on the
 * validation set, counted exactly as `cgrad train` counts it (one no-grad
 * pass, sigmoid(preds) > 0.5 against the label, every image once), so it
 * prints the same figure the training run ended with.
 */
#include <stdio.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"

static const char EVAL_USAGE[] =
    "usage: cgrad eval MODEL [--data PATH | --dataset NAME] [--classes A,B] [--json]\n"
    "  Scores a model saved by 'cgrad train --save' on the validation images.\n"
    CG_USAGE_DATA_SOURCE
    "                       (the model's two, as it was trained: --classes 3,7)\n"
    "  --json               one JSON object instead of text\n";

static const char *model_name(const cg_model *m) {
    return m->kind == CG_MODEL_MLP ? "mlp" : "linear";
}

int cg_cmd_eval(int argc, char **argv) {
    cg_data_opts src = {0};
    const char *path = NULL;
    bool json = false;
    int n_pos = 0;
    cg_opt opts[] = {CG_OPTS_DATA_SOURCE(&src), CG_OPT_JSON(&json)};
    int rc = cg_opts_parse("eval", EVAL_USAGE, argc, argv, opts, CG_NOPTS(opts), &path, 1, &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (n_pos != 1) return cg_usage_error("eval", "give the model file to evaluate");
    if ((rc = cg_cli_check_data_opts("eval", &src, true)) != CG_OPTS_CONTINUE) return rc;

    cg_model *m = NULL;
    cg_dataset valid = {0};
    cg_tensor *targets = NULL;
    cg_score s;
    rc = CG_EXIT_FAIL;
    double t0 = cg_cli_now();
    if (!(m = cg_model_load(path)) || cg_cli_check_model(m, path, NULL) != CG_OK) {
        rc = cg_cmd_fail("eval");
        goto done;
    }
    /* A dataset of more classes: suggest the model's two. */
    char hint[2 * CG_CLASS_NAME_MAX + 2];
    snprintf(hint, sizeof hint, "%s,%s", m->class_names[0], m->class_names[1]);
    if ((rc = cg_cli_load_data("eval", &src, true, hint, NULL, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    rc = CG_EXIT_FAIL;
    if (cg_cli_check_model(m, path, &valid) != CG_OK || !(targets = cg_cli_binary_targets(&valid)) ||
        cg_cli_score(m, valid.x, targets, CG_LOSS_MNIST, &s) != CG_OK) {
        rc = cg_cmd_fail("eval");
        goto done;
    }
    double seconds = cg_cli_now() - t0;
    if (json) {
        printf("{\"command\":\"eval\",\"model\":\"%s\",\"file\":", model_name(m));
        cg_json_string(stdout, path);
        printf(",\"accuracy\":");
        cg_json_number(stdout, s.accuracy);
        printf(",\"correct\":%lld,\"n\":%lld,\"per_class\":{", (long long)s.correct, (long long)s.n);
        for (int c = 0; c < 2; c++) {
            if (c) putchar(',');
            cg_json_string(stdout, m->class_names[c]);
            putchar(':');
            cg_json_number(stdout, (double)s.class_correct[c] / (double)s.class_n[c]);
        }
        printf("},\"mnist_loss\":");
        cg_json_number(stdout, s.loss);
        printf(",\"seconds\":");
        cg_json_number(stdout, seconds);
        printf("}\n");
    } else {
        printf("%s: %s model", path, model_name(m));
        if (m->kind == CG_MODEL_MLP)
            printf(" (%lld -> %lld -> %lld)", (long long)m->n_inputs, (long long)m->n_hidden,
                   (long long)m->n_outputs);
        printf(", classes %s and %s\n", m->class_names[0], m->class_names[1]);
        for (int c = 0; c < 2; c++)
            printf("accuracy %-8s %.4f  (%lld/%lld)\n", m->class_names[c],
                   (double)s.class_correct[c] / (double)s.class_n[c],
                   (long long)s.class_correct[c], (long long)s.class_n[c]);
        printf("accuracy %-8s %.4f  (%lld/%lld)\n", "overall", s.accuracy, (long long)s.correct,
               (long long)s.n);
    }
    rc = CG_EXIT_OK;
done:
    cg_tensor_release(targets);
    cg_dataset_free(&valid);
    cg_model_free(m);
    return rc;
}
