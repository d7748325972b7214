/*
 * colormap.c - values in [0, 1] to colours: linear interpolation between
 * five anchors of matplotlib's maps (Blues, RdBu_r), or gray ramps.
 */
#include "plot/plot_internal.h"

static void lerp_anchors(const unsigned anchors[5], double v, double rgb[3]) {
    double t = v * 4;
    int i = t >= 4 ? 3 : (int)t;
    double f = t - i;
    for (int k = 0; k < 3; k++) {
        int sh = 16 - 8 * k;
        double a = (anchors[i] >> sh & 255) / 255.0, b = (anchors[i + 1] >> sh & 255) / 255.0;
        rgb[k] = a + (b - a) * f;
    }
}

void cg_colormap_rgb(cg_colormap map, double v, double rgb[3]) {
    static const unsigned blues[5] = {0xf7fbff, 0xc6dbef, 0x6baed6, 0x2171b5, 0x08306b};
    /* RdBu reversed, with pure white in the middle so that a weight of 0
     * is the page's colour. */
    static const unsigned rdbu_r[5] = {0x053061, 0x4393c3, 0xffffff, 0xd6604d, 0x67001f};
    if (!(v >= 0)) v = 0; /* NaN too */
    if (v > 1) v = 1;
    switch (map) {
    case CG_CMAP_GREYS: rgb[0] = rgb[1] = rgb[2] = 1 - v; return;
    case CG_CMAP_BLUES: lerp_anchors(blues, v, rgb); return;
    case CG_CMAP_DIVERGING: lerp_anchors(rdbu_r, v, rgb); return;
    case CG_CMAP_DEFAULT:
    case CG_CMAP_GRAY:
    default: rgb[0] = rgb[1] = rgb[2] = v; return;
    }
}
