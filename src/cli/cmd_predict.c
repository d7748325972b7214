/*
 * cmd_predict.c - `cgrad predict MODEL IMAGE.png...`: what a saved model
 * calls each image, and how sure it is.
 *
 * An image becomes a row the way the training images did (pixel / 255, row
 * after row). The model's output is a logit whose sigmoid is the probability
 * of its first class (the book's "is it a 3?"): sigmoid > 0.5 names the
 * first class, otherwise the second with probability 1 - sigmoid.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/json.h"
#include "cli/options.h"

static const char PREDICT_USAGE[] =
    "usage: cgrad predict MODEL IMAGE.png... [--json]\n"
    "  Prints, for each image, the class the model gives it and that class's\n"
    "  probability. Images must have the size the model was trained on (28x28).\n"
    "  --json   one JSON object per image instead of text\n";

/* The model's call on one image: class index and its probability. */
static cg_status predict_one(cg_model *m, const char *path, int *cls, double *prob) {
    uint8_t *px = NULL;
    int64_t w = 0, h = 0;
    if (cg_png_read_gray(path, &px, &w, &h) != CG_OK) return cg_last_status();
    if (w * h != m->n_inputs) {
        free(px);
        return cg_fail(CG_ERR_SHAPE, "%s is %lldx%lld (%lld pixels); the model takes %lld pixels",
                       path, (long long)w, (long long)h, (long long)(w * h),
                       (long long)m->n_inputs);
    }
    double logit;
    cg_status st = cg_cli_classify(m, px, cls, prob, &logit);
    free(px);
    return st;
}

int cg_cmd_predict(int argc, char **argv) {
    bool json = false;
    int n_pos = 0;
    cg_opt opts[] = {CG_OPT_JSON(&json)};
    const char **pos = malloc(sizeof *pos * (size_t)(argc > 1 ? argc : 1));
    if (!pos) {
        cg_fail(CG_ERR_NOMEM, "predict: out of memory");
        return cg_cmd_fail("predict");
    }
    int rc = cg_opts_parse("predict", PREDICT_USAGE, argc, argv, opts, CG_NOPTS(opts), pos, argc,
                           &n_pos);
    if (rc == CG_OPTS_CONTINUE && n_pos < 2)
        rc = cg_usage_error("predict", "give a model file and at least one image");
    if (rc != CG_OPTS_CONTINUE) {
        free(pos);
        return rc;
    }
    cg_model *m = cg_model_load(pos[0]);
    if (!m || cg_cli_check_model(m, pos[0], NULL) != CG_OK) {
        cg_model_free(m);
        free(pos);
        return cg_cmd_fail("predict");
    }
    /* Every image gets its line; a bad one is reported and makes the exit
     * status 1, without hiding the others. */
    rc = CG_EXIT_OK;
    for (int i = 1; i < n_pos; i++) {
        int cls = 0;
        double prob = 0.0;
        if (predict_one(m, pos[i], &cls, &prob) != CG_OK) {
            rc = cg_cmd_fail("predict");
            continue;
        }
        if (json) {
            printf("{\"file\":");
            cg_json_string(stdout, pos[i]);
            printf(",\"class\":");
            cg_json_string(stdout, m->class_names[cls]);
            printf(",\"probability\":");
            cg_json_number(stdout, prob);
            printf("}\n");
        } else {
            printf("%s: %s (probability %.4f)\n", pos[i], m->class_names[cls], prob);
        }
    }
    cg_model_free(m);
    free(pos);
    return rc;
}
