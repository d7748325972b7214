/*
 * term.h - drawing a gray image (an MNIST digit) in the terminal.
 *
 * Four ways, best first:
 *   TRUECOLOR  '▀' half blocks, 24-bit gray: the top pixel is the
 *              foreground, the one below it the background, so one text
 *              cell shows two pixels and a pixel comes out about square.
 *   COLOR256   the same with the xterm 256-colour gray ramp (232..255).
 *   SHADE      one of " ░▒▓█" per pixel, written twice across because a
 *              text cell is about twice as tall as it is wide.
 *   ASCII      one of " .:-=+*#%@" per pixel, also twice across.
 * Ink is bright: 0 (background) draws as black / ' ', 255 as white / '@',
 * the way MNIST stores digits.
 */
#ifndef CGRAD_CLI_TERM_H
#define CGRAD_CLI_TERM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cg_term_mode {
    CG_TERM_ASCII = 0,
    CG_TERM_SHADE,
    CG_TERM_COLOR256,
    CG_TERM_TRUECOLOR
} cg_term_mode;

/*
 * The best mode for stream f. Colour needs f to be a terminal whose TERM
 * is set and not "dumb" and NO_COLOR unset; 24-bit when COLORTERM says
 * "truecolor"/"24bit", 256 colours when TERM names "256color" or COLORTERM
 * is set otherwise. Any Unicode needs a UTF-8 locale (the first set of
 * LC_ALL, LC_CTYPE, LANG). force_ascii (the --ascii flag) wins over all;
 * then CGRAD_TERM=ascii|shade|256|truecolor, if set, picks the mode.
 */
cg_term_mode cg_term_detect(FILE *f, bool force_ascii);
const char *cg_term_mode_name(cg_term_mode mode);

/* Largest drawing, in pixels across; bigger images are box-averaged down
 * by a whole factor so that they fit about 80 columns. */
int64_t cg_term_max_width(cg_term_mode mode);

/* Draws w x h 8-bit gray pixels (row-major) onto f. */
void cg_term_draw_gray(FILE *f, const uint8_t *pixels, int64_t w, int64_t h, cg_term_mode mode);
/* The same from floats in [0, 1] (a row of the article's train_x);
 * values outside are clamped. Returns false if out of memory. */
bool cg_term_draw_floats(FILE *f, const float *pixels, int64_t w, int64_t h, cg_term_mode mode);

#endif
