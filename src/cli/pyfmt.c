/*
 * pyfmt.c - PyTorch's tensor repr (torch/_tensor_str.py), retold for the
 * walkthrough. The rules kept: precision 4; a float tensor whose values are
 * all whole prints as "1.", otherwise "%.4f", and scientific "%.4e" when
 * the nonzero magnitudes span more than 1000x, exceed 1e8 or (non-whole)
 * go below 1e-4; every element is right-aligned to the widest; tensors of
 * more than 1000 elements show 3 items at each end of every dim; 1-D rows
 * wrap at 80 columns. Widths are measured over the elements shown only.
 */
#include "cli/pyfmt.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cgrad_internal.h"

#define LINEWIDTH 80
#define EDGEITEMS 3
#define THRESHOLD 1000

typedef struct fmt {
    cg_py_kind kind;
    bool any;               /* a nonzero finite value was seen */
    bool int_mode, sci_mode;
    double min_abs, max_abs; /* over nonzero finite values */
    int width;
} fmt;

/* The three passes over the shown elements: gather the magnitudes, then
 * measure the widths once the notation is known, then print. */
typedef enum pass { PASS_STATS, PASS_WIDTH, PASS_PRINT } pass;

typedef struct walker {
    pass pass;
    fmt fmt;
    bool summarize;
    FILE *out;
} walker;

static int format_value(const fmt *f, float value, char *buf, size_t size) {
    double v = value;
    switch (f->kind) {
    case CG_PY_BOOL: return snprintf(buf, size, "%s", v != 0.0 ? "True" : "False");
    case CG_PY_INT: return snprintf(buf, size, "%lld", (long long)llround(v));
    case CG_PY_FLOAT: break;
    }
    if (f->sci_mode) return snprintf(buf, size, "%.4e", v);
    if (f->int_mode) return snprintf(buf, size, isfinite(v) ? "%.0f." : "%.0f", v);
    return snprintf(buf, size, "%.4f", v);
}

static void visit(walker *w, float v) {
    char buf[64];
    if (w->pass == PASS_STATS) {
        double a = fabs((double)v);
        if (w->fmt.kind != CG_PY_FLOAT || !isfinite(a) || a == 0.0) return;
        if (v != ceilf(v)) w->fmt.int_mode = false;
        if (!w->fmt.any || a < w->fmt.min_abs) w->fmt.min_abs = a;
        if (!w->fmt.any || a > w->fmt.max_abs) w->fmt.max_abs = a;
        w->fmt.any = true;
    } else if (w->pass == PASS_WIDTH) {
        /* torch measures floats over the nonzero finite values only */
        if (w->fmt.kind == CG_PY_FLOAT && (!isfinite(v) || v == 0.0f)) return;
        int n = format_value(&w->fmt, v, buf, sizeof buf);
        if (n > w->fmt.width) w->fmt.width = n;
    } else {
        int n = format_value(&w->fmt, v, buf, sizeof buf);
        fprintf(w->out, "%*s%s", w->fmt.width > n ? w->fmt.width - n : 0, "", buf);
    }
}

static void put(walker *w, const char *s) {
    if (w->pass == PASS_PRINT) fputs(s, w->out);
}

static void put_indent(walker *w, const char *sep, int indent) {
    if (w->pass != PASS_PRINT) return;
    fputs(sep, w->out);
    fprintf(w->out, "%*s", indent, "");
}

/* Before item k of a row: nothing, ", " or a wrap to the next line. */
static void item_sep(walker *w, int64_t k, int64_t per_line, int indent) {
    if (k == 0) return;
    if (k % per_line == 0) put_indent(w, ",\n", indent + 1);
    else put(w, ", ");
}

/* A row: "[a, b, c]", wrapped so that a line holds (80 - indent) / (width + 2)
 * items, or "[a, b, c,  ..., x, y, z]" when summarised. */
static void walk_vector(walker *w, const float *data, int64_t n, int indent) {
    bool cut = w->summarize && n > 2 * EDGEITEMS;
    int64_t per_line = (LINEWIDTH - indent) / (w->fmt.width + 2);
    if (per_line < 1) per_line = 1;
    put(w, "[");
    for (int64_t i = 0, k = 0; i < n; i++, k++) {
        if (cut && i == EDGEITEMS) {
            /* the " ..." item stands for the middle and takes a place in the line */
            item_sep(w, k++, per_line, indent);
            put(w, " ...");
            i = n - EDGEITEMS;
        }
        item_sep(w, k, per_line, indent);
        visit(w, data[i]);
    }
    put(w, "]");
}

static void walk(walker *w, const float *data, const int64_t *shape, int ndim, int indent) {
    if (ndim == 0) {
        visit(w, data[0]);
        return;
    }
    if (ndim == 1) {
        walk_vector(w, data, shape[0], indent);
        return;
    }
    int64_t stride = 1;
    for (int d = 1; d < ndim; d++) stride *= shape[d];
    bool cut = w->summarize && shape[0] > 2 * EDGEITEMS;
    /* slices are separated by "," and ndim-1 newlines, then the indent */
    char sep[CG_MAX_DIMS + 2] = ",";
    for (int d = 1; d < ndim; d++) strcat(sep, "\n");
    put(w, "[");
    for (int64_t i = 0; i < shape[0]; i++) {
        if (i > 0) put_indent(w, sep, indent + 1);
        if (cut && i == EDGEITEMS) {
            put(w, "...");
            put_indent(w, sep, indent + 1);
            i = shape[0] - EDGEITEMS;
        }
        walk(w, data + i * stride, shape + 1, ndim - 1, indent + 1);
    }
    put(w, "]");
}

static void choose_notation(fmt *f) {
    if (f->kind != CG_PY_FLOAT || !f->any) return;
    bool wide = f->max_abs / f->min_abs > 1000.0 || f->max_abs > 1.0e8;
    f->sci_mode = f->int_mode ? wide : (wide || f->min_abs < 1.0e-4);
}

static int64_t numel_of(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

void cg_py_print_values(FILE *f, const float *data, const int64_t *shape, int ndim,
                        cg_py_kind kind, const char *suffix) {
    const int indent = 7; /* strlen("tensor(") */
    walker w = {
        .pass = PASS_STATS, .fmt = {.kind = kind, .int_mode = true, .width = 1}, .out = NULL};
    int64_t n = numel_of(shape, ndim);
    w.summarize = n > THRESHOLD;
    if (n == 0) {
        fprintf(f, "tensor([]%s%s)", suffix ? ", " : "", suffix ? suffix : "");
        return;
    }
    walk(&w, data, shape, ndim, indent);
    choose_notation(&w.fmt);
    w.pass = PASS_WIDTH;
    walk(&w, data, shape, ndim, indent);

    /* Printed to memory first: the suffix goes on a new line when the
     * last line would pass 80 columns (torch's _add_suffixes). */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) return;
    w.pass = PASS_PRINT;
    w.out = m;
    fputs("tensor(", m);
    walk(&w, data, shape, ndim, indent);
    fclose(m);
    fputs(text, f);
    if (suffix) {
        const char *nl = strrchr(text, '\n');
        size_t last = nl ? len - (size_t)(nl - text) + 1 : len + 2;
        if (last + strlen(suffix) + 2 > LINEWIDTH) fprintf(f, ",\n%*s%s", indent, "", suffix);
        else fprintf(f, ", %s", suffix);
    }
    fputc(')', f);
    free(text);
}

void cg_py_print_tensor(FILE *f, const cg_tensor *t, cg_py_kind kind) {
    if (!t) {
        fputs("None", f);
        return;
    }
    char suffix[96] = "";
    if (t->op && t->requires_grad) {
        /* "maximum_scalar" -> "MaximumScalarBackward0", as torch names grad_fn */
        size_t j = (size_t)snprintf(suffix, sizeof suffix, "grad_fn=<");
        bool up = true;
        for (const char *p = t->op->name; *p && j + 16 < sizeof suffix; p++) {
            if (*p == '_') {
                up = true;
                continue;
            }
            suffix[j++] = up ? (char)toupper((unsigned char)*p) : *p;
            up = false;
        }
        snprintf(suffix + j, sizeof suffix - j, "Backward0>");
    } else if (t->requires_grad) {
        snprintf(suffix, sizeof suffix, "requires_grad=True");
    }
    cg_py_print_values(f, t->data, t->shape, t->ndim, kind, suffix[0] ? suffix : NULL);
}

void cg_py_print_size(FILE *f, const cg_tensor *t) {
    char buf[96];
    fprintf(f, "torch.Size(%s)", cg_shape_str(t, buf, sizeof buf));
}
