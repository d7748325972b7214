/*
 * csv.c - two CSV readers: digits as `label,p0,...,p783` rows (Kaggle's
 * MNIST train.csv), and fastai's labels.csv (`name,label`).
 *
 * Both parse the whole file from memory, line by line: lines end in "\n"
 * or "\r\n", blank lines are skipped, fields are split on ','. A first
 * line whose label field is not a number is a header and is skipped.
 * Every error names the file and the line.
 */
#include "data/data.h"

#include <limits.h>

/* Largest CSV file we read (Kaggle's MNIST train.csv is 73 MB). */
#define CSV_MAX_FILE ((size_t)1 << 31)

/* One line at a time out of [p, end). */
typedef struct lines {
    const char *p, *end;
    int64_t number; /* of the line last returned, from 1 */
} lines;

/* The next non-blank line as [*s, *e) without its "\r\n"; false at the end. */
static bool next_line(lines *l, const char **s, const char **e) {
    while (l->p < l->end) {
        const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
        const char *stop = nl ? nl : l->end;
        *s = l->p;
        *e = stop;
        l->p = nl ? nl + 1 : l->end;
        l->number++;
        while (*e > *s && ((*e)[-1] == '\r' || (*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
        while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
        if (*s < *e) return true;
    }
    return false;
}

/* [s, e) without surrounding blanks. */
static void trim(const char **s, const char **e) {
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

/* A decimal integer filling [s, e) (blanks around allowed); false if the
 * field is anything else. Nine digits at most, so it cannot overflow. */
static bool parse_int(const char *s, const char *e, long *v) {
    trim(&s, &e);
    bool neg = false;
    if (s < e && (*s == '-' || *s == '+')) neg = *s++ == '-';
    if (s == e || e - s > 9) return false;
    long x = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9') return false;
        x = x * 10 + (*s - '0');
    }
    *v = neg ? -x : x;
    return true;
}

/* The end of the field starting at s. */
static const char *field_end(const char *s, const char *e) {
    const char *c = memchr(s, ',', (size_t)(e - s));
    return c ? c : e;
}

/* Up to 24 characters of a field, for messages. */
#define FIELD_FMT "\"%.*s\""
#define FIELD_ARG(s, e) (int)((e) - (s) > 24 ? 24 : (e) - (s)), (s)

/* ------------------------------------------------------------------ */
/* Digits                                                              */
/* ------------------------------------------------------------------ */

static int64_t isqrt_exact(int64_t n) {
    int64_t r = 0;
    while ((r + 1) * (r + 1) <= n) r++;
    return r * r == n ? r : -1;
}

/* Parses one row into labels/pixels; npix is fixed by the first row. */
static cg_status csv_row(const char *s, const char *e, const char *name, int64_t line,
                         int64_t *npix, int64_t *npix_line, cg_bytes *pixels, cg_bytes *labels) {
    int64_t fields = 1;
    for (const char *c = s; (c = memchr(c, ',', (size_t)(e - c))) != NULL; c++) fields++;
    if (*npix < 0) {
        int64_t side = isqrt_exact(fields - 1);
        if (side < 1)
            return cg_fail(
                CG_ERR_FORMAT,
                "csv: %s line %lld: %lld pixel values is not a square image (784 is 28x28)", name,
                (long long)line, (long long)(fields - 1));
        *npix = fields - 1;
        *npix_line = line;
    } else if (fields - 1 != *npix) {
        return cg_fail(CG_ERR_FORMAT,
                       "csv: %s line %lld: %lld pixel values, expected %lld as on line %lld", name,
                       (long long)line, (long long)(fields - 1), (long long)*npix,
                       (long long)*npix_line);
    }
    if (cg_bytes_reserve(labels, labels->len + 1, "csv") != CG_OK ||
        cg_bytes_reserve(pixels, pixels->len + (size_t)*npix, "csv") != CG_OK)
        return CG_ERR_NOMEM;

    const char *fe = field_end(s, e);
    long v;
    if (!parse_int(s, fe, &v) || v < 0 || v >= CG_MAX_CLASSES)
        return cg_fail(CG_ERR_FORMAT,
                       "csv: %s line %lld: label " FIELD_FMT " is not a class number 0..%d", name,
                       (long long)line, FIELD_ARG(s, fe), CG_MAX_CLASSES - 1);
    labels->data[labels->len++] = (uint8_t)v;
    uint8_t *px = pixels->data + pixels->len;
    for (int64_t k = 0; k < *npix; k++) {
        s = fe + 1;
        fe = field_end(s, e);
        if (!parse_int(s, fe, &v))
            return cg_fail(CG_ERR_FORMAT,
                           "csv: %s line %lld: pixel %lld " FIELD_FMT " is not an integer", name,
                           (long long)line, (long long)k, FIELD_ARG(s, fe));
        if (v < 0 || v > 255)
            return cg_fail(CG_ERR_FORMAT, "csv: %s line %lld: pixel %lld is %ld, outside 0..255",
                           name, (long long)line, (long long)k, v);
        px[k] = (uint8_t)v;
    }
    pixels->len += (size_t)*npix;
    return CG_OK;
}

cg_status cg_csv_parse(cg_dataset *ds, const char *text, size_t len, const char *name) {
    memset(ds, 0, sizeof *ds);
    lines l = {text, text + len, 0};
    const char *s, *e;
    cg_bytes pixels = {0}, labels = {0};
    int64_t npix = -1, npix_line = 0;
    cg_status st = CG_OK;
    bool first = true;
    while (st == CG_OK && next_line(&l, &s, &e)) {
        long v;
        if (first && !parse_int(s, field_end(s, e), &v)) { /* a header */
            first = false;
            continue;
        }
        first = false;
        st = csv_row(s, e, name, l.number, &npix, &npix_line, &pixels, &labels);
    }
    if (st == CG_OK && labels.len == 0)
        st = cg_fail(CG_ERR_FORMAT, "csv: %s holds no data rows", name);
    if (st == CG_OK) {
        int64_t side = isqrt_exact(npix);
        st = cg_dataset_from_u8(ds, "csv", name, pixels.data, labels.data, (int64_t)labels.len,
                                side, side);
    }
    cg_bytes_free(&pixels);
    cg_bytes_free(&labels);
    return st;
}

cg_status cg_dataset_load_csv(cg_dataset *ds, const char *path) {
    if (!ds || !path) return cg_fail(CG_ERR_ARG, "csv: need a dataset and a path");
    memset(ds, 0, sizeof *ds);
    cg_bytes file = {0};
    cg_status st = cg_read_file("csv", path, CSV_MAX_FILE, &file);
    if (st == CG_OK) st = cg_csv_parse(ds, (const char *)file.data, file.len, path);
    cg_bytes_free(&file);
    return st;
}

/* ------------------------------------------------------------------ */
/* labels.csv                                                          */
/* ------------------------------------------------------------------ */

typedef struct label_entry {
    const char *name;
    int label;
} label_entry;

typedef struct labels_store {
    char *text;            /* the names, each NUL-terminated */
    label_entry *by_name;  /* sorted by name, for cg_labels_find */
} labels_store;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const label_entry *)a)->name, ((const label_entry *)b)->name);
}

void cg_labels_free(cg_labels *l) {
    if (!l) return;
    labels_store *store = l->internal;
    if (store) {
        free(store->text);
        free(store->by_name);
        free(store);
    }
    free(l->names);
    free(l->labels);
    memset(l, 0, sizeof *l);
}

/* Builds names[], the sorted index, and checks names are unique. */
static cg_status labels_finish(cg_labels *out, labels_store *store, const size_t *offsets,
                               const char *name) {
    int64_t n = out->n;
    out->names = malloc((size_t)(n ? n : 1) * sizeof *out->names);
    store->by_name = malloc((size_t)(n ? n : 1) * sizeof *store->by_name);
    if (!out->names || !store->by_name)
        return cg_fail(CG_ERR_NOMEM, "csv: %s: out of memory", name);
    for (int64_t i = 0; i < n; i++) {
        out->names[i] = store->text + offsets[i];
        store->by_name[i] = (label_entry){out->names[i], out->labels[i]};
    }
    qsort(store->by_name, (size_t)n, sizeof *store->by_name, cmp_entry);
    for (int64_t i = 1; i < n; i++)
        if (strcmp(store->by_name[i - 1].name, store->by_name[i].name) == 0)
            return cg_fail(CG_ERR_FORMAT, "csv: %s: \"%s\" is listed twice", name,
                           store->by_name[i].name);
    return CG_OK;
}

cg_status cg_labels_parse(cg_labels *out, const char *text, size_t len, const char *name) {
    memset(out, 0, sizeof *out);
    labels_store *store = calloc(1, sizeof *store);
    if (!store) return cg_fail(CG_ERR_NOMEM, "csv: %s: out of memory", name);
    out->internal = store;
    cg_bytes names = {0}, offs = {0}, labs = {0}; /* offs/labs hold size_t/int arrays */
    lines l = {text, text + len, 0};
    const char *s, *e;
    cg_status st = CG_OK;
    bool first = true;
    while (st == CG_OK && next_line(&l, &s, &e)) {
        /* Split at the last comma, so a name may itself hold commas. */
        const char *comma = NULL;
        for (const char *c = e; c > s; c--)
            if (c[-1] == ',') {
                comma = c - 1;
                break;
            }
        long v = -1;
        bool numeric = comma && parse_int(comma + 1, e, &v);
        if (first && !numeric) { /* a header, e.g. "name,label" */
            first = false;
            continue;
        }
        first = false;
        if (!comma) {
            st = cg_fail(CG_ERR_FORMAT, "csv: %s line %lld: expected name,label", name,
                         (long long)l.number);
            break;
        }
        if (!numeric || v < 0) {
            st = cg_fail(CG_ERR_FORMAT,
                         "csv: %s line %lld: label " FIELD_FMT " is not an integer >= 0", name,
                         (long long)l.number, FIELD_ARG(comma + 1, e));
            break;
        }
        const char *ns = s, *ne = comma;
        trim(&ns, &ne);
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
        if (ns == ne || memchr(ns, '\0', (size_t)(ne - ns))) {
            st = cg_fail(CG_ERR_FORMAT, "csv: %s line %lld: empty or bad name", name,
                         (long long)l.number);
            break;
        }
        size_t at = names.len, nlen = (size_t)(ne - ns);
        int label = (int)v;
        if ((st = cg_bytes_reserve(&names, names.len + nlen + 1, "csv")) != CG_OK ||
            (st = cg_bytes_reserve(&offs, offs.len + sizeof at, "csv")) != CG_OK ||
            (st = cg_bytes_reserve(&labs, labs.len + sizeof label, "csv")) != CG_OK)
            break;
        memcpy(names.data + names.len, ns, nlen);
        names.data[names.len + nlen] = '\0';
        names.len += nlen + 1;
        memcpy(offs.data + offs.len, &at, sizeof at);
        offs.len += sizeof at;
        memcpy(labs.data + labs.len, &label, sizeof label);
        labs.len += sizeof label;
        out->n++;
    }
    if (st == CG_OK && out->n == 0) st = cg_fail(CG_ERR_FORMAT, "csv: %s holds no labels", name);
    if (st == CG_OK) {
        /* Hand the buffers over (realloc'd memory suits any type). */
        store->text = (char *)names.data;
        out->labels = (int *)(void *)labs.data;
        names = labs = (cg_bytes){0};
        st = labels_finish(out, store, (const size_t *)(void *)offs.data, name);
    }
    cg_bytes_free(&names);
    cg_bytes_free(&offs);
    cg_bytes_free(&labs);
    if (st != CG_OK) cg_labels_free(out);
    return st;
}

cg_status cg_read_labels_csv(const char *path, cg_labels *labels) {
    if (!path || !labels) return cg_fail(CG_ERR_ARG, "csv: need a path and a cg_labels");
    memset(labels, 0, sizeof *labels);
    cg_bytes file = {0};
    cg_status st = cg_read_file("csv", path, CSV_MAX_FILE, &file);
    if (st == CG_OK) st = cg_labels_parse(labels, (const char *)file.data, file.len, path);
    cg_bytes_free(&file);
    return st;
}

int cg_labels_find(const cg_labels *l, const char *name) {
    if (!l || !l->internal || !name) return -1;
    const labels_store *store = l->internal;
    label_entry key = {name, 0};
    const label_entry *hit = bsearch(&key, store->by_name, (size_t)l->n, sizeof key, cmp_entry);
    return hit ? hit->label : -1;
}
