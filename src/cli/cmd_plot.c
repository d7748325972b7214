/*
 * cmd_plot.c - `cgrad plot`: pictures of the chapter's functions and of
 * what a trained model learned, as PNG or SVG (the library draws them:
 * cg_plot_function, cg_plot_model_weights in cgrad/plot.h).
 *
 *     cgrad plot sigmoid --min -4 --max 4 --out sigmoid.png
 *         plot_function(torch.sigmoid, title='Sigmoid', min=-4, max=4)
 *     cgrad plot weights --model model.cgm --out weights.png
 */
#include <stdio.h>
#include <string.h>

#include "cgrad.h"
#include "cli/options.h"

static const char PLOT_USAGE[] =
    "usage: cgrad plot FUNCTION --out FILE [--min X] [--max X] [--title TEXT]\n"
    "       cgrad plot weights --model FILE --out FILE [--units N] [--title TEXT]\n"
    "  Draws a picture as PNG or SVG (by FILE's extension).\n"
    "  FUNCTION: sigmoid, relu, tanh, square (x**2) or mnist_loss (its two\n"
    "  pieces), as fastbook's plot_function(f, title, min, max).\n"
    "  weights: what a saved model learned - the first layer's weights as\n"
    "  images, blue negative, red positive (a linear model: one 28x28 image\n"
    "  per class; an MLP: its first hidden units; a CNN: its first filters).\n";

int cg_cmd_plot(int argc, char **argv) {
    const char *what = NULL, *out = NULL, *title = NULL, *model_path = NULL;
    double min = -2, max = 2;
    int64_t units = 0;
    int n_pos = 0;
    cg_opt opts[] = {
        {"--out", CG_OPT_STR, &out, 0, 0, NULL, false, "the picture to write (.png or .svg)",
         "FILE"},
        {"--min", CG_OPT_FLOAT, &min, -1e12, 1e12, NULL, false,
         "FUNCTION: the left end of x (-2, as plot_function)", "X"},
        {"--max", CG_OPT_FLOAT, &max, -1e12, 1e12, NULL, false, "FUNCTION: the right end (2)",
         "X"},
        {"--title", CG_OPT_STR, &title, 0, 0, NULL, false,
         "the title (a function's name; a model's kind of first layer)", "TEXT"},
        {"--model", CG_OPT_STR, &model_path, 0, 0, NULL, false,
         "weights: the model file ('cgrad train --save')", "FILE"},
        {"--units", CG_OPT_INT, &units, 1, 4096, NULL, false,
         "weights: at most N units or filters (64)", "N"},
    };
    int rc = cg_opts_parse("plot", PLOT_USAGE, argc, argv, opts, CG_NOPTS(opts), &what, 1, &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
    if (n_pos != 1) return cg_usage_error("plot", "say what to plot: a function or 'weights'");
    if (!out) return cg_usage_error("plot", "--out FILE is needed (a .png or .svg file)");
    if (cg_plot_check_path(out) != CG_OK)
        return cg_usage_error("plot", "--out %s: name a .png or .svg file", out);
    bool weights = strcmp(what, "weights") == 0;
    if (weights != (model_path != NULL))
        return cg_usage_error("plot", weights ? "plot weights needs --model FILE"
                                              : "--model is for 'cgrad plot weights'");
    if (!weights && units)
        return cg_usage_error("plot", "--units is for 'cgrad plot weights'");

    if (weights) {
        cg_model *m = cg_model_load(model_path);
        if (!m) return cg_cmd_fail("plot");
        cg_status st = cg_plot_model_weights(m, (int)units, title, out);
        cg_model_free(m);
        if (st != CG_OK) return cg_cmd_fail("plot");
    } else {
        if (!(min < max))
            return cg_usage_error("plot", "--min %g must be below --max %g", min, max);
        if (cg_plot_function(what, min, max, title, out) != CG_OK) return cg_cmd_fail("plot");
    }
    printf("wrote %s\n", out);
    return CG_EXIT_OK;
}
