/*
 * cmd_show.c - `cgrad show IMAGE.png [--ascii]`: draws an image in the
 * terminal (see term.h for how) and prints its size, the way the article
 * looks at a digit before turning it into numbers.
 *
 * `cgrad show --grid 3x3 --out FILE.png [--data PATH | --dataset NAME]`
 * is fastai's dls.show_batch(): a grid of the dataset's images with their
 * labels, drawn to a picture (cg_plot_dataset_batch in cgrad/plot.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/options.h"
#include "cli/term.h"

static const char SHOW_USAGE[] =
    "usage: cgrad show IMAGE.png [--ascii]\n"
    "       cgrad show --out FILE [--grid RxC] [--data PATH | --dataset NAME] [--classes A,B]\n"
    "                  [--split train|valid] [--seed N] [--title TEXT]\n"
    "  Draws a PNG (made 8-bit gray) in the terminal and prints its size.\n"
    "  With --out: fastai's show_batch - a grid of the dataset's images, each\n"
    "  with its label, drawn as a PNG or SVG (by FILE's extension).\n";

/* "3x3" -> 3, 3. */
static bool parse_grid(const char *s, int *rows, int *cols) {
    char *end;
    long r = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return false;
    const char *c_str = end + 1;
    long c = strtol(c_str, &end, 10);
    if (end == c_str || *end || r < 1 || c < 1 || r > 64 || c > 64) return false;
    *rows = (int)r;
    *cols = (int)c;
    return true;
}

static int show_batch(const cg_data_opts *src, const char *grid, int split, uint64_t seed,
                      const char *title, const char *out) {
    int rows = 3, cols = 3;
    if (grid && !parse_grid(grid, &rows, &cols))
        return cg_usage_error("show", "--grid %s: give rows x columns, e.g. 3x3 (1..64 each)",
                              grid);
    if (cg_plot_check_path(out) != CG_OK)
        return cg_usage_error("show", "--out %s: name a .png or .svg file", out);
    cg_dataset ds = {0};
    cg_data_keep_floats(false); /* the bytes are what is drawn */
    int rc = cg_cli_load_data("show", src, 0, NULL, split == 0 ? &ds : NULL,
                              split == 0 ? NULL : &ds);
    if (rc == CG_OPTS_CONTINUE) {
        rc = CG_EXIT_OK;
        if (cg_plot_dataset_batch(&ds, rows, cols, true, seed, title, out) != CG_OK)
            rc = cg_cmd_fail("show");
        else
            printf("wrote %s: %dx%d images of the %s split\n", out, rows, cols,
                   split == 0 ? "training" : "validation");
    }
    cg_dataset_free(&ds);
    return rc;
}

int cg_cmd_show(int argc, char **argv) {
    bool ascii = false;
    const char *path = NULL, *grid = NULL, *out = NULL, *title = NULL;
    cg_data_opts src = {0};
    int split = 0;
    uint64_t seed = 42;
    int n_pos = 0;
    cg_opt opts[] = {
        {"--ascii", CG_OPT_FLAG, &ascii, 0, 0, NULL, false,
         "plain ASCII characters, whatever the terminal supports", NULL},
        {"--out", CG_OPT_STR, &out, 0, 0, NULL, false,
         "draw a grid of the dataset's images to FILE (.png or .svg)", "FILE"},
        {"--grid", CG_OPT_STR, &grid, 0, 0, NULL, false, "rows x columns of images (3x3)",
         "RxC"},
        CG_OPTS_DATA_SOURCE(&src),
        {"--split", CG_OPT_CHOICE, &split, 0, 0, "train|valid", false,
         "which images: the training ones (default) or the validation ones", NULL},
        {"--seed", CG_OPT_U64, &seed, 0, 0, NULL, false, "which images are drawn (42)", NULL},
        {"--title", CG_OPT_STR, &title, 0, 0, NULL, false, "a title over the grid", "TEXT"},
    };
    int rc = cg_opts_parse("show", SHOW_USAGE, argc, argv, opts, CG_NOPTS(opts), &path, 1, &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
    bool batch = out || grid || src.data || src.dataset || src.classes;
    if (batch) {
        if (n_pos) return cg_usage_error("show", "give an IMAGE.png or --out FILE, not both");
        if (!out) return cg_usage_error("show", "--out FILE is needed to draw a grid");
        if (ascii) return cg_usage_error("show", "--ascii is for drawing IMAGE.png");
        return show_batch(&src, grid, split, seed, title, out);
    }
    if (n_pos != 1) return cg_usage_error("show", "give one image to show (IMAGE.png)");

    uint8_t *pixels = NULL;
    int64_t w = 0, h = 0;
    if (cg_png_read_gray(path, &pixels, &w, &h) != CG_OK) return cg_cmd_fail("show");

    cg_term_mode mode = cg_term_detect(stdout, ascii);
    cg_term_draw_gray(stdout, pixels, w, h, mode);
    int64_t max_w = cg_term_max_width(mode);
    printf("%s: %lldx%lld pixels (width x height), 8-bit gray", path, (long long)w, (long long)h);
    if (w > max_w) printf(", drawn %lld times smaller", (long long)((w + max_w - 1) / max_w));
    printf("\n");
    free(pixels);
    return CG_EXIT_OK;
}
