/*
 * term.c - a gray image in the terminal (see term.h for the four modes).
 */
#include "cli/term.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Case-insensitive "does s contain needle". */
static bool contains_nocase(const char *s, const char *needle) {
    size_t n = strlen(needle);
    for (; s && *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return true;
    }
    return false;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

/* POSIX precedence for the character type: LC_ALL, then LC_CTYPE, then LANG. */
static bool locale_is_utf8(void) {
    const char *names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = env_nonempty(names[i]);
        if (v) return contains_nocase(v, "utf-8") || contains_nocase(v, "utf8");
    }
    return false;
}

cg_term_mode cg_term_detect(FILE *f, bool force_ascii) {
    if (force_ascii) return CG_TERM_ASCII;
    const char *forced = env_nonempty("CGRAD_TERM");
    if (forced) {
        if (strcmp(forced, "truecolor") == 0) return CG_TERM_TRUECOLOR;
        if (strcmp(forced, "256") == 0) return CG_TERM_COLOR256;
        if (strcmp(forced, "shade") == 0) return CG_TERM_SHADE;
        return CG_TERM_ASCII;
    }
    if (!locale_is_utf8()) return CG_TERM_ASCII;

    const char *term = env_nonempty("TERM");
    const char *colorterm = env_nonempty("COLORTERM");
    bool tty = f && isatty(fileno(f));
    bool colour = tty && term && strcmp(term, "dumb") != 0 && !env_nonempty("NO_COLOR");
    if (colour && colorterm &&
        (contains_nocase(colorterm, "truecolor") || contains_nocase(colorterm, "24bit")))
        return CG_TERM_TRUECOLOR;
    if (colour && (colorterm || contains_nocase(term, "256color"))) return CG_TERM_COLOR256;
    return CG_TERM_SHADE;
}

const char *cg_term_mode_name(cg_term_mode mode) {
    switch (mode) {
    case CG_TERM_TRUECOLOR: return "24-bit colour half blocks";
    case CG_TERM_COLOR256: return "256-colour half blocks";
    case CG_TERM_SHADE: return "Unicode shade blocks";
    case CG_TERM_ASCII: break;
    }
    return "ASCII";
}

/* Half blocks put one pixel per column; the character ramps two. */
int64_t cg_term_max_width(cg_term_mode mode) {
    return (mode == CG_TERM_TRUECOLOR || mode == CG_TERM_COLOR256) ? 80 : 40;
}

/* The nearest of xterm's grays: 16 is black, 231 white, and 232 + i is the
 * level 8 + 10 i (i = 0..23). */
static int xterm_gray(int v) {
    if (v < 4) return 16;
    if (v > 246) return 231;
    int i = (v - 3) / 10;
    return 232 + (i > 23 ? 23 : i);
}

static void set_colour(FILE *f, bool background, int v, cg_term_mode mode) {
    if (mode == CG_TERM_TRUECOLOR)
        fprintf(f, "\x1b[%d;2;%d;%d;%dm", background ? 48 : 38, v, v, v);
    else
        fprintf(f, "\x1b[%d;5;%dm", background ? 48 : 38, xterm_gray(v));
}

/* Two rows per line: '▀' in the top pixel's colour over the bottom pixel's.
 * Colours are sent only when they change along the line. */
static void draw_half_blocks(FILE *f, const uint8_t *p, int64_t w, int64_t h, cg_term_mode mode) {
    for (int64_t y = 0; y < h; y += 2) {
        int fg = -1, bg = -1;
        for (int64_t x = 0; x < w; x++) {
            int top = p[y * w + x];
            if (top != fg) {
                set_colour(f, false, top, mode);
                fg = top;
            }
            if (y + 1 < h) {
                int bottom = p[(y + 1) * w + x];
                if (bottom != bg) {
                    set_colour(f, true, bottom, mode);
                    bg = bottom;
                }
            } else if (bg != -2) {
                fputs("\x1b[49m", f); /* an odd last row: the terminal's own background */
                bg = -2;
            }
            fputs("\xe2\x96\x80", f); /* U+2580 UPPER HALF BLOCK */
        }
        fputs("\x1b[0m\n", f);
    }
}

static void draw_ramp(FILE *f, const uint8_t *p, int64_t w, int64_t h, bool shade) {
    static const char *const shades[5] = {" ", "\xe2\x96\x91", "\xe2\x96\x92", "\xe2\x96\x93",
                                          "\xe2\x96\x88"};
    static const char ascii[] = " .:-=+*#%@";
    int levels = shade ? 5 : 10;
    for (int64_t y = 0; y < h; y++) {
        for (int64_t x = 0; x < w; x++) {
            int level = p[y * w + x] * levels / 256;
            for (int twice = 0; twice < 2; twice++) {
                if (shade) fputs(shades[level], f);
                else fputc(ascii[level], f);
            }
        }
        fputc('\n', f);
    }
}

/* Box average by a whole factor so that the width fits max_w. */
static uint8_t *shrink(const uint8_t *p, int64_t w, int64_t h, int64_t factor, int64_t *ow,
                       int64_t *oh) {
    *ow = (w + factor - 1) / factor;
    *oh = (h + factor - 1) / factor;
    uint8_t *out = malloc((size_t)(*ow * *oh));
    if (!out) return NULL;
    for (int64_t oy = 0; oy < *oh; oy++)
        for (int64_t ox = 0; ox < *ow; ox++) {
            uint64_t sum = 0, n = 0;
            for (int64_t y = oy * factor; y < h && y < (oy + 1) * factor; y++)
                for (int64_t x = ox * factor; x < w && x < (ox + 1) * factor; x++)
                    sum += p[y * w + x], n++;
            out[oy * *ow + ox] = (uint8_t)((sum + n / 2) / n);
        }
    return out;
}

void cg_term_draw_gray(FILE *f, const uint8_t *pixels, int64_t w, int64_t h, cg_term_mode mode) {
    if (!f || !pixels || w <= 0 || h <= 0) return;
    int64_t max_w = cg_term_max_width(mode);
    uint8_t *small = NULL;
    if (w > max_w) {
        small = shrink(pixels, w, h, (w + max_w - 1) / max_w, &w, &h);
        if (!small) return;
        pixels = small;
    }
    if (mode == CG_TERM_TRUECOLOR || mode == CG_TERM_COLOR256)
        draw_half_blocks(f, pixels, w, h, mode);
    else draw_ramp(f, pixels, w, h, mode == CG_TERM_SHADE);
    free(small);
}

bool cg_term_draw_floats(FILE *f, const float *pixels, int64_t w, int64_t h, cg_term_mode mode) {
    if (!pixels || w <= 0 || h <= 0) return true;
    uint8_t *bytes = malloc((size_t)(w * h));
    if (!bytes) return false;
    for (int64_t i = 0; i < w * h; i++) {
        float v = pixels[i];
        /* !(v > 0) also catches NaN */
        bytes[i] = !(v > 0.0f) ? 0 : v >= 1.0f ? 255 : (uint8_t)(v * 255.0f + 0.5f);
    }
    cg_term_draw_gray(f, bytes, w, h, mode);
    free(bytes);
    return true;
}
