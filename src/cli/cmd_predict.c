/*
 * cmd_predict.c - `cgrad predict MODEL IMAGE.png...`: what a saved model
 * calls each image, and how sure it is.
 *
 * An image becomes a row the way the training images did (pixel / 255, row
 * after row; for a model of RGB images the R, G and B planes one after the
 * other: cg_png_read_item) and cg_model_classify gives each class's
 * probability: for a two-class model with one output, sigmoid(logit) is
 * the first class's (the book's "is it a 3?"), for the others the softmax
 * of the outputs.
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
    "  probability. Images must have the size the model was trained on (28x28),\n"
    "  and are read gray or RGB as the model's training images were.\n"
    ;

/* The model's call on one image: class index and every class's
 * probability (probs has room for the model's classes). */
static int predict_one(cg_model *m, const char *path, double *probs) {
    uint8_t *px = NULL;
    if (cg_png_read_item(path, m->in_shape, m->in_ndim, &px) != CG_OK) return -1;
    int cls = cg_model_classify(m, px, probs, NULL);
    free(px);
    return cls;
}

int cg_cmd_predict(int argc, char **argv) {
    bool json = false;
    int n_pos = 0;
    cg_opt opts[] = {{"--json", CG_OPT_FLAG, &json, 0, 0, NULL, false,
                      "one JSON object per image, with every class's probability", NULL}};
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
    double probs[CG_MAX_CLASSES];
    for (int i = 1; i < n_pos; i++) {
        int cls = predict_one(m, pos[i], probs);
        if (cls < 0) {
            rc = cg_cmd_fail("predict");
            continue;
        }
        if (json) {
            printf("{\"file\":");
            cg_json_string(stdout, pos[i]);
            printf(",\"class\":");
            cg_json_string(stdout, m->class_names[cls]);
            printf(",\"probability\":");
            cg_json_number(stdout, probs[cls]);
            printf(",\"probabilities\":{");
            for (int c = 0; c < m->n_classes; c++) {
                if (c) putchar(',');
                cg_json_string(stdout, m->class_names[c]);
                putchar(':');
                cg_json_number(stdout, probs[c]);
            }
            printf("}}\n");
        } else {
            printf("%s: %s (probability %.4f)\n", pos[i], m->class_names[cls], probs[cls]);
        }
    }
    cg_model_free(m);
    free(pos);
    return rc;
}
