/*
 * canvas.c - a page to draw on with cairo, written out as PNG or SVG, and
 * the text and colour helpers every picture uses.
 *
 * cairo encodes into memory (a write callback appending to a buffer); the
 * bytes then go to the file with cg_write_file_atomic, so a picture is
 * replaced whole or not at all, as a model file is.
 */
#include "plot/plot_internal.h"
#include "util/file.h"

#include <strings.h>

cg_cairo_fns cg_cairo;
static const char *const cairo_names[] = {CG_CAIRO_FNS(CG_LAZY_NAME) NULL};
static cg_lazy_lib cairo_lib =
    CG_LAZY_LIB("libcairo2", cairo_names, cg_cairo, "libcairo.so.2", "libcairo.so");

/* The font: DejaVu Sans, through cairo's toy text API (fontconfig finds
 * it; Debian: fonts-dejavu-core). Its two faces are made once and kept for
 * the life of the process: cairo_select_font_face makes a face per call,
 * and cairo 1.16 loses part of some of them (fontconfig patterns) when its
 * cache of faces drops them, which valgrind and LeakSanitizer report. */
#define FONT "DejaVu Sans"
static cairo_font_face_t *faces[2]; /* regular, bold */
static pthread_once_t faces_once = PTHREAD_ONCE_INIT;

static void make_faces(void) {
    for (int b = 0; b < 2; b++)
        faces[b] = cg_cairo.toy_font_face_create(
            FONT, CAIRO_FONT_SLANT_NORMAL, b ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
}

/* The sanitizer build's LeakSanitizer would fail every program that draws
 * on what cairo 1.16 and fontconfig lose inside themselves (above; the
 * same list as tests/cairo.supp for valgrind): LSan reads this hook. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG_PLOT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(CG_PLOT_ASAN)
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libfontconfig.so\nleak:libcairo.so\n";
}
#endif

cg_status cg_cairo_load(const char *op) {
    cg_status st = cg_lazy_load(&cairo_lib, op);
    if (st != CG_OK) return st;
    pthread_once(&faces_once, make_faces);
    for (int b = 0; b < 2; b++)
        if (cg_cairo.font_face_status(faces[b]) != CAIRO_STATUS_SUCCESS)
            return cg_fail(CG_ERR_IO, "%s: cairo cannot make the font %s: %s", op, FONT,
                           cg_cairo.status_to_string(cg_cairo.font_face_status(faces[b])));
    return CG_OK;
}

void cg_set_font(cairo_t *cr, double size, bool bold) {
    cg_cairo.set_font_face(cr, faces[bold]);
    cg_cairo.set_font_size(cr, size);
}

static cairo_status_t on_write(void *closure, const unsigned char *data, unsigned int n) {
    cg_canvas *cv = closure;
    if (cv->len + n > cv->cap) {
        size_t cap = cv->cap ? cv->cap : 1 << 16;
        while (cap < cv->len + n) cap *= 2;
        uint8_t *p = realloc(cv->buf, cap);
        if (!p) {
            cv->nomem = true;
            return CAIRO_STATUS_NO_MEMORY;
        }
        cv->buf = p;
        cv->cap = cap;
    }
    memcpy(cv->buf + cv->len, data, n);
    cv->len += n;
    return CAIRO_STATUS_SUCCESS;
}

static bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

void cg_canvas_discard(cg_canvas *cv) {
    if (cv->cr) cg_cairo.destroy(cv->cr);
    if (cv->surface) cg_cairo.surface_destroy(cv->surface);
    free(cv->buf);
    free(cv->words);
    cv->cr = NULL;
    cv->surface = NULL;
    cv->buf = NULL;
    cv->words = NULL;
}

/* cr's canvas, for the text log (contexts that only measure have none). */
static const cairo_user_data_key_t canvas_key;

/* Appends n bytes of s to the growing buffer *buf (len, cap); false when
 * out of memory. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (n >= ((size_t)1 << 30) || *len >= ((size_t)1 << 30)) return false; /* no picture's */
    size_t need = *len + n + 1;
    if (!*buf || need > *cap) {
        size_t c = *cap >= 1024 ? *cap : 1024;
        while (c < need) c *= 2;
        char *p = realloc(*buf, c);
        if (!p) return false;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

/* s with &, <, > escaped as XML text needs. */
static bool append_xml(char **buf, size_t *len, size_t *cap, const char *s) {
    for (; s && *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (!(e ? append(buf, len, cap, e, strlen(e)) : append(buf, len, cap, s, 1))) return false;
    }
    return true;
}

/* The encoded SVG with <title> and <desc> put right after its <svg ...>
 * start tag; false when out of memory. */
static bool svg_add_words(cg_canvas *cv) {
    size_t at = 0;
    while (at + 4 <= cv->len && memcmp(cv->buf + at, "<svg", 4) != 0) at++;
    const uint8_t *end = at + 4 <= cv->len ? memchr(cv->buf + at, '>', cv->len - at) : NULL;
    if (!end || (!cv->title && !cv->words_len)) return true;
    size_t head = (size_t)(end + 1 - cv->buf);
    char *out = NULL;
    size_t len = 0, cap = 0;
    bool ok = append(&out, &len, &cap, (const char *)cv->buf, head);
    if (ok && cv->title)
        ok = append(&out, &len, &cap, "\n<title>", 8) && append_xml(&out, &len, &cap, cv->title) &&
             append(&out, &len, &cap, "</title>", 8);
    if (ok && cv->words_len)
        ok = append(&out, &len, &cap, "\n<desc>", 7) && append_xml(&out, &len, &cap, cv->words) &&
             append(&out, &len, &cap, "</desc>", 7);
    ok = ok && append(&out, &len, &cap, (const char *)cv->buf + head, cv->len - head);
    if (!ok) {
        free(out);
        return false;
    }
    free(cv->buf);
    cv->buf = (uint8_t *)out;
    cv->len = cv->cap = len;
    return true;
}

static cg_status check_path(const char *op, const char *path) {
    if (!path || !*path) return cg_fail(CG_ERR_ARG, "%s: no file to write the picture to", op);
    if (!has_ext(path, ".svg") && !has_ext(path, ".png"))
        return cg_fail(CG_ERR_ARG, "%s: %s: unknown picture format (give a .png or .svg file)",
                       op, path);
    return CG_OK;
}

cg_status cg_plot_check_path(const char *path) { return check_path("plot", path); }

cg_status cg_canvas_open(cg_canvas *cv, const char *op, const char *path, int width, int height) {
    memset(cv, 0, sizeof *cv);
    if (check_path(op, path) != CG_OK) return cg_last_status();
    bool svg = has_ext(path, ".svg");
    if (width < 16 || height < 16 || width > 16384 || height > 16384)
        return cg_fail(CG_ERR_ARG, "%s: a picture of %d x %d pixels is out of range (16..16384)",
                       op, width, height);
    cg_status st = cg_cairo_load(op);
    if (st != CG_OK) return st;
    *cv = (cg_canvas){.op = op, .path = path, .svg = svg, .width = width, .height = height};
    if (svg) {
        cv->surface = cg_cairo.svg_surface_create_for_stream(on_write, cv, width, height);
        /* SVG 1.1, what every browser and viewer reads, sized in pixels
         * (cairo's default, points, shows it a third larger). */
        if (cg_cairo.surface_status(cv->surface) == CAIRO_STATUS_SUCCESS) {
            cg_cairo.svg_surface_restrict_to_version(cv->surface, CAIRO_SVG_VERSION_1_1);
            cg_cairo.svg_surface_set_document_unit(cv->surface, CAIRO_SVG_UNIT_PX);
        }
    } else {
        /* RGB24: a PNG without alpha, as the page is opaque white. */
        cv->surface = cg_cairo.image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    }
    cairo_status_t cs = cg_cairo.surface_status(cv->surface);
    if (cs == CAIRO_STATUS_SUCCESS) {
        cv->cr = cg_cairo.create(cv->surface);
        cs = cg_cairo.status(cv->cr);
    }
    if (cs != CAIRO_STATUS_SUCCESS) {
        cg_canvas_discard(cv);
        return cg_fail(CG_ERR_NOMEM, "%s: %s: cairo cannot start a %d x %d picture: %s", op,
                       path, width, height, cg_cairo.status_to_string(cs));
    }
    cg_cairo.set_user_data(cv->cr, &canvas_key, cv, NULL);
    cg_cairo.set_source_rgb(cv->cr, 1, 1, 1);
    cg_cairo.paint(cv->cr);
    cg_cairo.set_source_rgb(cv->cr, 0.1, 0.1, 0.1); /* the ink of text and lines */
    cg_set_font(cv->cr, 12, false);
    return CG_OK;
}

cg_status cg_canvas_close(cg_canvas *cv) {
    cairo_status_t cs = cg_cairo.status(cv->cr);
    cg_cairo.destroy(cv->cr);
    cv->cr = NULL;
    if (cs == CAIRO_STATUS_SUCCESS) {
        if (cv->svg) {
            cg_cairo.surface_finish(cv->surface); /* writes the document's end */
            cs = cg_cairo.surface_status(cv->surface);
        } else {
            cs = cg_cairo.surface_write_to_png_stream(cv->surface, on_write, cv);
        }
    }
    if (cs == CAIRO_STATUS_SUCCESS && cv->svg && !cv->nomem && !svg_add_words(cv))
        cv->nomem = true;
    cg_status st = CG_OK;
    if (cv->nomem)
        st = cg_fail(CG_ERR_NOMEM, "%s: out of memory encoding %s", cv->op, cv->path);
    else if (cs != CAIRO_STATUS_SUCCESS)
        st = cg_fail(CG_ERR_IO, "%s: %s: cairo failed: %s", cv->op, cv->path,
                     cg_cairo.status_to_string(cs));
    else
        st = cg_write_file_atomic(cv->op, cv->path, cv->buf, cv->len);
    cg_canvas_discard(cv);
    return st;
}

double cg_text_width(cairo_t *cr, const char *text, double size, bool bold) {
    cairo_text_extents_t e;
    cg_set_font(cr, size, bold);
    cg_cairo.text_extents(cr, text, &e);
    return e.x_advance;
}

void cg_draw_text(cairo_t *cr, const char *text, double x, double y, double size, cg_align align,
                  bool bold, bool vertical) {
    if (!text || !*text) return;
    cg_canvas *cv = cg_cairo.get_user_data(cr, &canvas_key);
    if (cv && cv->svg &&
        !((cv->words_len == 0 || append(&cv->words, &cv->words_len, &cv->words_cap, "\n", 1)) &&
          append(&cv->words, &cv->words_len, &cv->words_cap, text, strlen(text))))
        cv->nomem = true;
    double w = cg_text_width(cr, text, size, bold);
    double dx = align == CG_ALIGN_LEFT ? 0 : align == CG_ALIGN_CENTER ? -w / 2 : -w;
    cg_cairo.save(cr);
    cg_cairo.translate(cr, x, y);
    if (vertical) cg_cairo.rotate(cr, -M_PI / 2);
    cg_cairo.move_to(cr, dx, 0);
    cg_cairo.show_text(cr, text);
    cg_cairo.new_path(cr);
    cg_cairo.restore(cr);
}

void cg_draw_text_mid(cairo_t *cr, const char *text, double x, double y, double size,
                      cg_align align) {
    /* DejaVu's digits and capitals are ~0.73 em tall: the baseline sits
     * that much below the middle, halved. */
    cg_draw_text(cr, text, x, y + 0.36 * size, size, align, false, false);
}

void cg_series_rgb(int i, double rgb[3]) {
    /* matplotlib's tab10, the colours of fastai's plots. */
    static const unsigned tab10[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
    unsigned c = tab10[((i % 10) + 10) % 10];
    rgb[0] = (c >> 16 & 255) / 255.0;
    rgb[1] = (c >> 8 & 255) / 255.0;
    rgb[2] = (c & 255) / 255.0;
}
