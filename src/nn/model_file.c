/*
 * model_file.c - saving and loading a cg_model.
 *
 * The file format, version 2: any list of layers. Every integer and float
 * is little-endian, whatever the machine; offsets in bytes.
 *
 *   offset  size          field
 *   0       8             magic "CGRADMDL" (no terminator)
 *   8       4             u32 format version (2)
 *   12      4             u32 H, the header's size: 92 + 32*n_classes + 72*n_layers
 *   16      4             u32 n_layers (1..64)
 *   20      4             u32 in_ndim (1..3), the dims of one item
 *   24      32            i64 in_shape[4] (unused ones 0)
 *   56      32            model name, NUL-padded ("linear", "mlp", "custom")
 *   88      4             u32 n_classes (0..64)
 *   92      32*n_classes  class names, each NUL-padded to 32 bytes
 *   then, per layer (72 bytes each):
 *           16            kind name, NUL-padded ("linear", "relu", ...)
 *           48            i64 args[6] (INT64_MIN where not given)
 *           8             f32 fargs[2] (NaN where not given)
 *   H       ...           the tensors, float32, row-major: per layer its
 *                         learned ones, then its state (running statistics),
 *                         each of the shape the layer plans from its
 *                         arguments and its input's shape
 *   last    4             u32 CRC-32 (zlib's crc32) of every byte before it
 *
 * The header fixes every tensor's shape, so a reader plans the whole model
 * from the header (layer.h: no allocation), checks that the file's length is
 * exactly H + 4 * (all numbers) + 4 and that the tensors fit in the memory
 * there is, reads the file through in pieces to check the CRC before
 * trusting any of it, and only then allocates the tensors and reads them
 * straight into place. It refuses a weight that is not finite, a running
 * variance below 0 and a class name that is empty, repeated or not
 * printable.
 *
 * Version 1 (cgrad 0.1-0.2: the linear and mlp models only) still loads:
 *   0 magic, 8 u32 version (1), 12 u32 kind (1 linear, 2 mlp), 16 i64
 *   n_inputs, 24 i64 n_hidden (0 for linear), 32 i64 n_outputs, 40 u32
 *   n_classes, 44 class names (32 each), then u32 n_params and per
 *   parameter (w1, b1, w2, b2): u32 ndim, i64 shape[ndim], float32 data;
 *   last the CRC-32.
 *
 * For a binary model (one output) the output is a logit whose sigmoid is
 * the probability of class_names[0] (the book's "is it a 3?").
 *
 * Writing is atomic: the bytes go to a temporary file in the target's
 * folder, which is flushed, fsync'd and then renamed over the target; a
 * crash leaves the old file or the new one, never half of one.
 */
#include "nn/layer.h"
#include "util/file.h"
#include "util/memory.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAGIC "CGRADMDL"
#define MODEL_VERSION 2u
#define V2_FIXED 92
#define V2_LAYER 72
#define KIND_NAME_MAX 16
#define V1_HEADER 44
#define CRC_SIZE 4

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

static const char *name_problem(const void *p, size_t size, bool may_be_empty);
static int bad_class_name(const char (*names)[CG_CLASS_NAME_MAX], int n, const char **why,
                          int *repeats);

static size_t header_size(int n_layers, int n_classes) {
    return V2_FIXED + (size_t)CG_CLASS_NAME_MAX * (size_t)n_classes + V2_LAYER * (size_t)n_layers;
}

/* The tensors of a layer in file order: learned ones, then state. */
static cg_tensor *layer_tensor(const cg_layer *l, int k) {
    return k < l->n_params ? l->params[k] : l->state[k - l->n_params];
}

static uint8_t *put_f32(uint8_t *p, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return cg_put_u32(p, bits);
}

static float get_f32(const uint8_t *p) {
    uint32_t bits = cg_get_u32(p);
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static void put_name(uint8_t *p, const char *name, size_t size) {
    /* strncpy pads with NULs, so no stray bytes reach the file. */
    strncpy((char *)p, name, size);
    p[size - 1] = 0;
}

cg_status cg_model_save(const cg_model *m, const char *path) {
    if (!m || !path || !*path) return cg_fail(CG_ERR_ARG, "model: save needs a model and a path");
    if (m->n_classes < 0 || m->n_classes > CG_MAX_CLASSES)
        return cg_fail(CG_ERR_ARG, "model: %d class names is outside 0..%d", m->n_classes,
                       CG_MAX_CLASSES);
    /* Names the loader would refuse are refused here: a saved file loads. */
    const char *why;
    int repeats, c = bad_class_name(m->class_names, m->n_classes, &why, &repeats);
    if (c >= 0)
        return repeats >= 0
                   ? cg_fail(CG_ERR_ARG, "model: not saving %s: class name %d repeats %d", path, c,
                             repeats)
                   : cg_fail(CG_ERR_ARG, "model: not saving %s: class name %d %s", path, c, why);
    if ((why = name_problem(m->name, CG_MODEL_NAME_MAX, true)))
        return cg_fail(CG_ERR_ARG, "model: not saving %s: the model's name %s", path, why);
    size_t head = header_size(m->n_layers, m->n_classes), size = head + CRC_SIZE;
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        if (strlen(l->kind->name) >= KIND_NAME_MAX)
            return cg_fail(CG_ERR_ARG, "model: layer kind name '%s' is too long", l->kind->name);
        for (int k = 0; k < l->n_params + l->n_state; k++) {
            const cg_tensor *t = layer_tensor(l, k);
            for (int64_t j = 0; j < t->numel; j++)
                if (!isfinite(t->data[j]))
                    return cg_fail(CG_ERR_ARG,
                                   "model: not saving %s: layer %d (%s) has a weight that is not "
                                   "a finite number (%g): training diverged",
                                   path, i + 1, l->kind->name, (double)t->data[j]);
            size += 4 * (size_t)t->numel;
        }
    }
    uint8_t *buf = calloc(1, size);
    if (!buf) return cg_fail(CG_ERR_NOMEM, "model: cannot allocate %zu bytes to save", size);
    uint8_t *p = buf;
    memcpy(p, MODEL_MAGIC, 8);
    p = cg_put_u32(p + 8, MODEL_VERSION);
    p = cg_put_u32(p, (uint32_t)head);
    p = cg_put_u32(p, (uint32_t)m->n_layers);
    p = cg_put_u32(p, (uint32_t)m->in_ndim);
    for (int d = 0; d < 4; d++) p = cg_put_i64(p, d < m->in_ndim ? m->in_shape[d] : 0);
    put_name(p, m->name, CG_MODEL_NAME_MAX);
    p = cg_put_u32(p + CG_MODEL_NAME_MAX, (uint32_t)m->n_classes);
    for (int c = 0; c < m->n_classes; c++, p += CG_CLASS_NAME_MAX)
        put_name(p, m->class_names[c], CG_CLASS_NAME_MAX);
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        put_name(p, l->kind->name, KIND_NAME_MAX);
        p += KIND_NAME_MAX;
        for (int a = 0; a < CG_LAYER_MAX_ARGS; a++) p = cg_put_i64(p, l->args[a]);
        for (int a = 0; a < 2; a++) p = put_f32(p, l->fargs[a]);
    }
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        for (int k = 0; k < l->n_params + l->n_state; k++) {
            const cg_tensor *t = layer_tensor(l, k);
            for (int64_t j = 0; j < t->numel; j++) p = put_f32(p, t->data[j]);
        }
    }
    cg_put_u32(p, cg_crc32(buf, (size_t)(p - buf)));
    cg_status st = cg_write_file_atomic("model", path, buf, size);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

/* Reads a file whose length has been checked to be `size` (version 1). */
static uint8_t *read_all(FILE *f, const char *path, size_t size) {
    uint8_t *buf = malloc(size);
    if (!buf) {
        cg_fail(CG_ERR_NOMEM, "model: cannot allocate %zu bytes to read %s", size, path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_SET) != 0 || fread(buf, 1, size, f) != size) {
        cg_fail(CG_ERR_IO, "model: cannot read %s", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Checks the CRC of a file of `size` bytes by reading it in pieces, before
 * anything is allocated for it: a file whose header promises gigabytes
 * costs a read through it (holes read fast), not gigabytes of memory. */
static cg_status check_crc(FILE *f, const char *path, size_t size) {
    uint8_t piece[1 << 16], tail[CRC_SIZE];
    uint32_t crc = 0;
    size_t left = size - CRC_SIZE;
    if (fseek(f, 0, SEEK_SET) != 0) return cg_fail(CG_ERR_IO, "model: cannot read %s", path);
    while (left > 0) {
        size_t n = left < sizeof piece ? left : sizeof piece;
        if (fread(piece, 1, n, f) != n) return cg_fail(CG_ERR_IO, "model: cannot read %s", path);
        crc = cg_crc32_update(crc, piece, n);
        left -= n;
    }
    if (fread(tail, 1, CRC_SIZE, f) != CRC_SIZE)
        return cg_fail(CG_ERR_IO, "model: cannot read %s", path);
    uint32_t stored = cg_get_u32(tail);
    if (stored != crc)
        return cg_fail(CG_ERR_FORMAT,
                       "model: %s is corrupt: checksum mismatch (stored %08x, computed %08x)", path,
                       stored, crc);
    return CG_OK;
}

/* The model's items, of `shape`, must be `want` numbers (0: any); checked
 * from the header, before the weights are read. */
static cg_status check_inputs(const char *path, const int64_t *shape, int ndim, int64_t want) {
    double have = 1.0;
    char dims[96] = "";
    for (int d = 0; d < ndim; d++) {
        have *= (double)shape[d];
        size_t used = strlen(dims);
        snprintf(dims + used, sizeof dims - used, "%s%lld", d ? "x" : "", (long long)shape[d]);
    }
    if (want == 0 || have == (double)want) return CG_OK;
    return cg_fail(CG_ERR_SHAPE, "model: %s takes items of %s (%.0f numbers); this needs %lld",
                   path, dims, have, (long long)want);
}

/* What is wrong with the name in p's `size` bytes, or NULL: it must be
 * NUL-terminated inside them, printable (no terminal escapes reach a
 * screen from a file) and, unless may_be_empty, not empty. The same rule
 * for saving and loading, so that what cg_model_save writes loads. */
static const char *name_problem(const void *p, size_t size, bool may_be_empty) {
    const uint8_t *s = p, *end = memchr(s, 0, size);
    if (!end) return "is not terminated";
    if (end == s && !may_be_empty) return "is empty";
    for (const uint8_t *q = s; q < end; q++)
        if (*q < 0x20 || *q == 0x7f) return "has a control character";
    return NULL;
}

/* Class names: each a good name (name_problem) and not repeated; the index
 * of the first bad one (and *why, *repeats), or -1. */
static int bad_class_name(const char (*names)[CG_CLASS_NAME_MAX], int n, const char **why,
                          int *repeats) {
    *repeats = -1;
    for (int c = 0; c < n; c++) {
        if ((*why = name_problem(names[c], CG_CLASS_NAME_MAX, false))) return c;
        for (int k = 0; k < c; k++)
            if (strcmp(names[k], names[c]) == 0) {
                *why = "repeats";
                *repeats = k;
                return c;
            }
    }
    return -1;
}

static cg_status read_class_names(cg_model *m, const uint8_t *p, uint32_t n, const char *path) {
    memcpy(m->class_names, p, (size_t)CG_CLASS_NAME_MAX * n);
    const char *why;
    int repeats, c = bad_class_name((const char(*)[CG_CLASS_NAME_MAX])m->class_names, (int)n, &why,
                                    &repeats);
    if (c >= 0) {
        memset(m->class_names, 0, sizeof m->class_names);
        if (repeats >= 0)
            return cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: class name %d repeats %d", path, c,
                           repeats);
        return cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: class name %d %s", path, c, why);
    }
    m->n_classes = (int)n;
    return CG_OK;
}

/* Copies n little-endian floats from p into dst (p may be dst itself),
 * refusing any that is not finite, or negative where it cannot be. */
static cg_status read_floats(float *dst, const uint8_t *p, int64_t n, const char *path, int layer,
                             const char *kind, bool nonneg) {
    for (int64_t j = 0; j < n; j++) {
        dst[j] = get_f32(p + 4 * j);
        if (!isfinite(dst[j]))
            return cg_fail(CG_ERR_FORMAT,
                           "model: %s: layer %d (%s) has a weight that is not a finite number",
                           path, layer, kind);
        if (nonneg && dst[j] < 0.0f)
            return cg_fail(CG_ERR_FORMAT,
                           "model: %s is corrupt: layer %d (%s) has a negative running variance",
                           path, layer, kind);
    }
    return CG_OK;
}

/* The end of a load: the scratch freed, and the model returned, or freed
 * when something failed. */
static cg_model *loaded(cg_model *m, cg_layer_plan *plans, uint8_t *buf, bool ok) {
    free(plans);
    free(buf);
    if (ok) return m;
    cg_model_free(m);
    return NULL;
}

/* A version-2 file of flen bytes, its first `got` bytes in head. */
static cg_model *load_v2(FILE *f, const char *path, const uint8_t *head, size_t got, size_t flen,
                         int64_t want) {
    uint8_t *buf = NULL;
    cg_layer_plan *plans = NULL;
    cg_model *m = NULL;
    if (got < V2_FIXED) {
        cg_fail(CG_ERR_FORMAT, "model: %s is truncated (%zu bytes, shorter than the header)", path,
                flen);
        return NULL;
    }
    uint32_t h = cg_get_u32(head + 12), n_layers = cg_get_u32(head + 16);
    uint32_t in_ndim = cg_get_u32(head + 20), n_classes = cg_get_u32(head + 88);
    if (n_layers < 1 || n_layers > CG_MODEL_MAX_LAYERS || in_ndim < 1 ||
        in_ndim > CG_MAX_DIMS - 1 || n_classes > CG_MAX_CLASSES ||
        h != header_size((int)n_layers, (int)n_classes)) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is corrupt: impossible header (%u layers, %u input dims, %u classes, "
                "header %u bytes)",
                path, n_layers, in_ndim, n_classes, h);
        return NULL;
    }
    if (flen < h + CRC_SIZE || got < h) {
        cg_fail(CG_ERR_FORMAT, "model: %s is truncated (%zu bytes, shorter than its header)", path,
                flen);
        return NULL;
    }
    if (!(m = cg_model_alloc((int)n_layers))) return NULL;
    memcpy(m->name, head + 56, CG_MODEL_NAME_MAX);
    m->name[CG_MODEL_NAME_MAX - 1] = '\0'; /* checked with the class names, below */
    m->in_ndim = (int)in_ndim;
    for (uint32_t d = 0; d < in_ndim; d++) m->in_shape[d] = cg_get_i64(head + 24 + 8 * d);
    const uint8_t *p = head + V2_FIXED + (size_t)CG_CLASS_NAME_MAX * n_classes;
    for (uint32_t i = 0; i < n_layers; i++, p += V2_LAYER) {
        cg_layer *l = &m->layers[i];
        char kind[KIND_NAME_MAX];
        memcpy(kind, p, KIND_NAME_MAX);
        kind[KIND_NAME_MAX - 1] = '\0';
        if (!(l->kind = cg_layer_kind_find(kind))) {
            for (char *q = kind; *q; q++) /* no escapes from the file into the message */
                if ((uint8_t)*q < 0x20 || (uint8_t)*q >= 0x7f) *q = '?';
            cg_fail(CG_ERR_FORMAT,
                    "model: %s: layer %u is of a kind this cgrad does not know "
                    "('%.15s'; a newer cgrad wrote it?)",
                    path, i + 1, kind);
            goto fail;
        }
        for (int a = 0; a < CG_LAYER_MAX_ARGS; a++) l->args[a] = cg_get_i64(p + 16 + 8 * a);
        for (int a = 0; a < 2; a++) l->fargs[a] = get_f32(p + 64 + 4 * a);
    }
    if (!(plans = calloc(n_layers, sizeof *plans))) {
        cg_fail(CG_ERR_NOMEM, "model: out of memory");
        goto fail;
    }
    if (cg_model_plan(m, plans) != CG_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cg_last_error());
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: %s", path, msg);
        goto fail;
    }
    /* Only now, with the sizes matching the file's length, is anything allocated. */
    uint64_t expect = h + (uint64_t)cg_model_plan_bytes(m, plans) + CRC_SIZE;
    if ((uint64_t)flen != expect) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is %s: its header describes %llu bytes but the file has %zu", path,
                (uint64_t)flen < expect ? "truncated" : "corrupt", (unsigned long long)expect,
                flen);
        goto fail;
    }
    /* What the command needs, and room for the weights, before reading. */
    if (check_inputs(path, m->in_shape, m->in_ndim, want) != CG_OK ||
        cg_memory_check("model", (double)(expect - h), "loading its weights") != CG_OK ||
        check_crc(f, path, flen) != CG_OK)
        goto fail;
    /* The CRC held: the header (all in head) is what cgrad wrote. */
    const char *why = name_problem(head + 56, CG_MODEL_NAME_MAX, true);
    if (why) {
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: the model's name %s", path, why);
        goto fail;
    }
    if (read_class_names(m, head + V2_FIXED, n_classes, path) != CG_OK ||
        cg_model_alloc_tensors(m, plans) != CG_OK || fseek(f, (long)h, SEEK_SET) != 0)
        goto fail;
    /* Each tensor's bytes straight into its buffer, then made floats there. */
    for (int i = 0; i < m->n_layers; i++) {
        cg_layer *l = &m->layers[i];
        for (int k = 0; k < l->n_params + l->n_state; k++) {
            cg_tensor *t = layer_tensor(l, k);
            bool nonneg = k >= l->n_params && (plans[i].nonneg_state >> (k - l->n_params) & 1u);
            if (fread(t->data, 4, (size_t)t->numel, f) != (size_t)t->numel) {
                cg_fail(CG_ERR_IO, "model: cannot read %s", path);
                goto fail;
            }
            if (read_floats(t->data, (const uint8_t *)t->data, t->numel, path, i + 1, l->kind->name,
                            nonneg) != CG_OK)
                goto fail;
        }
    }
    return loaded(m, plans, buf, true);
fail:
    return loaded(m, plans, buf, false);
}

/* Bytes of a whole version-1 file, from its header; 0 if impossible. */
static uint64_t v1_size(uint32_t kind, int64_t n_in, int64_t n_hid, int64_t n_out,
                        uint32_t n_classes) {
    bool mlp = kind == CG_MODEL_MLP;
    if ((kind != CG_MODEL_LINEAR && !mlp) || n_classes > CG_MAX_CLASSES) return 0;
    if (n_in < 1 || n_in > CG_LAYER_MAX_WIDTH || n_out < 1 || n_out > CG_LAYER_MAX_WIDTH) return 0;
    if (mlp ? (n_hid < 1 || n_hid > CG_LAYER_MAX_WIDTH) : n_hid != 0) return 0;
    uint64_t widths[3] = {(uint64_t)n_in, (uint64_t)(mlp ? n_hid : n_out), (uint64_t)n_out};
    uint64_t size = V1_HEADER + (uint64_t)CG_CLASS_NAME_MAX * n_classes + 4;
    for (int l = 0; l < (mlp ? 2 : 1); l++) {
        size += 4 + 8 * 2 + 4 * widths[l] * widths[l + 1];
        size += 4 + 8 * 1 + 4 * widths[l + 1];
    }
    return size + CRC_SIZE;
}

static cg_model *load_v1(FILE *f, const char *path, const uint8_t *head, size_t got, size_t flen,
                         int64_t want) {
    if (got < V1_HEADER || flen < V1_HEADER + CRC_SIZE) {
        cg_fail(CG_ERR_FORMAT, "model: %s is truncated (%zu bytes, shorter than the header)", path,
                flen);
        return NULL;
    }
    uint32_t kind = cg_get_u32(head + 12);
    int64_t n_in = cg_get_i64(head + 16), n_hid = cg_get_i64(head + 24),
            n_out = cg_get_i64(head + 32);
    uint32_t n_classes = cg_get_u32(head + 40);
    uint64_t expect = v1_size(kind, n_in, n_hid, n_out, n_classes);
    if (expect == 0) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is corrupt: impossible header (kind %u, sizes %lld/%lld/%lld, %u "
                "classes)",
                path, kind, (long long)n_in, (long long)n_hid, (long long)n_out, n_classes);
        return NULL;
    }
    if ((uint64_t)flen != expect) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is %s: its header describes %llu bytes but the file has %zu", path,
                (uint64_t)flen < expect ? "truncated" : "corrupt", (unsigned long long)expect,
                flen);
        return NULL;
    }
    char spec[96];
    const char *name;
    cg_layer_plan *plans = NULL;
    uint8_t *buf = NULL;
    cg_model *m = NULL;
    /* Checked before anything is allocated; then the file (a few MB for
     * what versions 1 wrote) is read whole. */
    if (check_inputs(path, &n_in, 1, want) != CG_OK || check_crc(f, path, flen) != CG_OK ||
        cg_model_preset((cg_model_kind)kind, n_hid, n_out, spec, sizeof spec, &name) != CG_OK ||
        !(m = cg_model_parse(spec, name, &n_in, 1, n_out, &plans)) ||
        cg_memory_check("model", 2.0 * (double)flen, "reading it") != CG_OK ||
        cg_model_alloc_tensors(m, plans) != CG_OK || !(buf = read_all(f, path, flen)))
        goto fail;
    if (read_class_names(m, buf + V1_HEADER, n_classes, path) != CG_OK) goto fail;
    const uint8_t *p = buf + V1_HEADER + (size_t)CG_CLASS_NAME_MAX * n_classes;
    if (cg_get_u32(p) != (uint32_t)m->n_params) {
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: %u parameters, a %s model has %d", path,
                cg_get_u32(p), name, m->n_params);
        goto fail;
    }
    p += 4;
    for (int i = 0; i < m->n_params; i++) {
        cg_tensor *t = m->params[i];
        bool same = cg_get_u32(p) == (uint32_t)t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = cg_get_i64(p + 4 + 8 * d) == t->shape[d];
        if (!same) {
            cg_fail(CG_ERR_FORMAT,
                    "model: %s is corrupt: parameter %d's shape does not fit the model's sizes",
                    path, i);
            goto fail;
        }
        p += 4 + 8 * (size_t)t->ndim;
        if (read_floats(t->data, p, t->numel, path, i / 2 + 1, "linear", false) != CG_OK) goto fail;
        p += 4 * (size_t)t->numel;
    }
    return loaded(m, plans, buf, true);
fail:
    return loaded(m, plans, buf, false);
}

cg_model *cg_model_load_for(const char *path, int64_t n_inputs) {
    if (!path || !*path) {
        cg_fail(CG_ERR_ARG, "model: load needs a path");
        return NULL;
    }
    struct stat st;
    int fd = cg_open_regular("model", path, &st);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0) {
            cg_fail(CG_ERR_IO, "model: cannot open %s: %s", path, strerror(errno));
            close(fd);
        }
        return NULL;
    }
    cg_model *m = NULL;
    /* The largest header: version 2 with 64 classes and 64 layers. */
    uint8_t head[V2_FIXED + CG_CLASS_NAME_MAX * CG_MAX_CLASSES + V2_LAYER * CG_MODEL_MAX_LAYERS];
    size_t flen = (size_t)st.st_size;
    size_t got = fread(head, 1, flen < sizeof head ? flen : sizeof head, f);
    if (got < 8 || memcmp(head, MODEL_MAGIC, 8) != 0) {
        cg_fail(CG_ERR_FORMAT, "model: %s is not a cgrad model file (no CGRADMDL signature)", path);
        goto done;
    }
    if (got < 12) {
        cg_fail(CG_ERR_FORMAT, "model: %s is truncated (%zu bytes, shorter than the header)", path,
                flen);
        goto done;
    }
    uint32_t version = cg_get_u32(head + 8);
    if (version > MODEL_VERSION)
        cg_fail(CG_ERR_FORMAT, "model: %s was written by a newer cgrad (format %u)", path, version);
    else if (version == 0)
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: format version 0", path);
    else
        m = version == 1 ? load_v1(f, path, head, got, flen, n_inputs)
                         : load_v2(f, path, head, got, flen, n_inputs);
done:
    fclose(f);
    return m;
}

cg_model *cg_model_load(const char *path) { return cg_model_load_for(path, 0); }
