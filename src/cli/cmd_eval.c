/*
 * cmd_eval.c - `cgrad eval MODEL`: a saved model's accuracy on the
 * validation set, counted exactly as `cgrad train` counts it
 * (cg_model_evaluate: one no-grad pass, every image once), so it prints
 * the same figure the training run ended with. Any number of classes.
 */
#include <stdio.h>
#include <string.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"

static const char EVAL_USAGE[] =
    "usage: cgrad eval MODEL [--data PATH | --dataset NAME] [--classes A,B,...] [--json]\n"
    "  Scores a model saved by 'cgrad train --save' on the validation images.\n"
    "  --classes picks the model's classes (in its order) from data with others.\n";

static void print_json(const char *path, const cg_model *m, const cg_score *s, double seconds) {
    printf("{\"command\":\"eval\",\"model\":");
    cg_json_string(stdout, m->name);
    printf(",\"file\":");
    cg_json_string(stdout, path);
    printf(",\"n_classes\":%d,\"accuracy\":", m->n_classes);
    cg_json_number(stdout, s->accuracy);
    printf(",\"correct\":%lld,\"n\":%lld,\"per_class\":{", (long long)s->correct, (long long)s->n);
    for (int c = 0; c < m->n_classes; c++) {
        if (c) putchar(',');
        cg_json_string(stdout, m->class_names[c]);
        putchar(':');
        cg_json_number(stdout, (double)s->class_correct[c] / (double)s->class_n[c]);
    }
    printf("},\"%s\":", cg_cli_model_loss(m) == CG_LOSS_MNIST ? "mnist_loss" : "loss");
    cg_json_number(stdout, s->loss);
    printf(",\"seconds\":");
    cg_json_number(stdout, seconds);
    printf("}\n");
}

static void print_text(const char *path, const cg_model *m, const cg_score *s) {
    char spec[1024];
    printf("%s: %s model (%s), %d classes\n", path, m->name, cg_model_spec(m, spec, sizeof spec),
           m->n_classes);
    for (int c = 0; c < m->n_classes; c++)
        printf("accuracy %-8s %.4f  (%lld/%lld)\n", m->class_names[c],
               (double)s->class_correct[c] / (double)s->class_n[c], (long long)s->class_correct[c],
               (long long)s->class_n[c]);
    printf("accuracy %-8s %.4f  (%lld/%lld)\n", "overall", s->accuracy, (long long)s->correct,
           (long long)s->n);
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
    if ((rc = cg_cli_check_data_opts("eval", &src, 0)) != CG_OPTS_CONTINUE) return rc;

    cg_model *m = NULL;
    cg_dataset valid = {0};
    cg_score s;
    double t0 = cg_cli_now();
    if ((rc = cg_cli_load_model_valid("eval", path, &src, &m, &valid)) != CG_OPTS_CONTINUE)
        goto done;
    if (cg_model_evaluate(m, &valid, cg_cli_model_loss(m), &s) != CG_OK) {
        rc = cg_cmd_fail("eval");
        goto done;
    }
    if (json)
        print_json(path, m, &s, cg_cli_now() - t0);
    else
        print_text(path, m, &s);
    rc = CG_EXIT_OK;
done:
    cg_dataset_free(&valid);
    cg_model_free(m);
    return rc;
}
