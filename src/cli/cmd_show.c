/*
 * cmd_show.c - `cgrad show IMAGE.png [--ascii]`: draws an image in the
 * terminal (see term.h for how) and prints its size, the way the article
 * looks at a digit before turning it into numbers.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cgrad.h"
#include "cli/options.h"
#include "cli/term.h"

static const char SHOW_USAGE[] =
    "usage: cgrad show IMAGE.png [--ascii]\n"
    "  Draws a PNG (made 8-bit gray) in the terminal and prints its size.\n";

int cg_cmd_show(int argc, char **argv) {
    bool ascii = false;
    const char *path = NULL;
    int n_pos = 0;
    cg_opt opts[] = {{"--ascii", CG_OPT_FLAG, &ascii, 0, 0, NULL, false,
                      "plain ASCII characters, whatever the terminal supports", NULL}};
    int rc = cg_opts_parse("show", SHOW_USAGE, argc, argv, opts, CG_NOPTS(opts), &path, 1, &n_pos);
    if (rc != CG_OPTS_CONTINUE) return rc;
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
