/*
 * model_file.c - saving and loading a cg_model.
 *
 * The file format, version 1. Every integer and float is little-endian,
 * whatever the machine; offsets in bytes.
 *
 *   offset  size          field
 *   0       8             magic "CGRADMDL" (no terminator)
 *   8       4             u32 format version (1)
 *   12      4             u32 model kind (1 linear, 2 mlp: cg_model_kind)
 *   16      8             i64 n_inputs
 *   24      8             i64 n_hidden (0 for linear)
 *   32      8             i64 n_outputs
 *   40      4             u32 n_classes (0..64)
 *   44      32*n_classes  class names, each NUL-padded to 32 bytes
 *   then    4             u32 n_params (2 linear, 4 mlp)
 *   then, per parameter, in the order of cg_model.params (w1, b1, w2, b2):
 *           4             u32 ndim (1..4)
 *           8*ndim        i64 shape
 *           4*numel       float32 data, row-major
 *   last    4             u32 CRC-32 (zlib's crc32, the gzip/PNG polynomial)
 *                         of every byte before it
 *
 * For a binary model (n_outputs 1) the output is a logit whose sigmoid is
 * the probability of class_names[0] (the book's "is it a 3?").
 *
 * A version-1 file's size follows from its header alone, so a reader checks
 * that size against the file's length before it allocates anything, then
 * reads the file whole and checks the CRC before trusting any of it.
 *
 * Writing is atomic: the bytes go to a temporary file in the target's
 * folder (so rename cannot cross file systems), which is flushed, fsync'd
 * and then renamed over the target; a crash leaves the old file or the new
 * one, never half of one.
 */
#include "nn_internal.h"
#include "util/file.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL_MAGIC "CGRADMDL"
#define MODEL_VERSION 1u
#define HEADER_SIZE 44
#define CRC_SIZE 4

/*
 * Bytes of a whole file for a model of these sizes, from the header's
 * fields alone; 0 if they are impossible. Widths are at most 2^24, so every
 * product fits easily in 64 bits.
 */
static uint64_t file_size_for(uint32_t kind, int64_t n_in, int64_t n_hid, int64_t n_out,
                              uint32_t n_classes) {
    bool mlp = kind == CG_MODEL_MLP;
    if ((kind != CG_MODEL_LINEAR && !mlp) || n_classes > CG_MAX_CLASSES) return 0;
    if (n_in < 1 || n_in > CG_MODEL_MAX_WIDTH || n_out < 1 || n_out > CG_MODEL_MAX_WIDTH) return 0;
    if (mlp ? (n_hid < 1 || n_hid > CG_MODEL_MAX_WIDTH) : n_hid != 0) return 0;
    /* Layer l maps widths[l] -> widths[l + 1]: weight (2-D) then bias (1-D). */
    uint64_t widths[3] = {(uint64_t)n_in, (uint64_t)(mlp ? n_hid : n_out), (uint64_t)n_out};
    uint64_t size = HEADER_SIZE + (uint64_t)CG_CLASS_NAME_MAX * n_classes + 4;
    for (int l = 0; l < (mlp ? 2 : 1); l++) {
        size += 4 + 8 * 2 + 4 * widths[l] * widths[l + 1];
        size += 4 + 8 * 1 + 4 * widths[l + 1];
    }
    return size + CRC_SIZE;
}

/* ------------------------------------------------------------------ */
/* Saving                                                              */
/* ------------------------------------------------------------------ */

/* The file's bytes, in memory (a model is at most a few MB). */
static uint8_t *encode(const cg_model *m, size_t *size_out) {
    size_t size = (size_t)file_size_for((uint32_t)m->kind, m->n_inputs, m->n_hidden,
                                         m->n_outputs, (uint32_t)m->n_classes);
    if (size == 0) {
        cg_fail(CG_ERR_ARG, "model: cannot save a model with impossible sizes");
        return NULL;
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        cg_fail(CG_ERR_NOMEM, "model: cannot allocate %zu bytes to save", size);
        return NULL;
    }
    uint8_t *p = buf;
    memcpy(p, MODEL_MAGIC, 8);
    p = cg_put_u32(p + 8, MODEL_VERSION);
    p = cg_put_u32(p, (uint32_t)m->kind);
    p = cg_put_i64(p, m->n_inputs);
    p = cg_put_i64(p, m->n_hidden);
    p = cg_put_i64(p, m->n_outputs);
    p = cg_put_u32(p, (uint32_t)m->n_classes);
    for (int c = 0; c < m->n_classes; c++) {
        /* strncpy pads with NULs, so no stray bytes reach the file. */
        strncpy((char *)p, m->class_names[c], CG_CLASS_NAME_MAX);
        p[CG_CLASS_NAME_MAX - 1] = 0;
        p += CG_CLASS_NAME_MAX;
    }
    p = cg_put_u32(p, (uint32_t)m->n_params);
    for (int i = 0; i < m->n_params; i++) {
        const cg_tensor *t = m->params[i];
        p = cg_put_u32(p, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) p = cg_put_i64(p, t->shape[d]);
        for (int64_t j = 0; j < t->numel; j++) {
            uint32_t bits;
            memcpy(&bits, &t->data[j], 4);
            p = cg_put_u32(p, bits);
        }
    }
    p = cg_put_u32(p, cg_crc32(buf, (size_t)(p - buf)));
    *size_out = size;
    return buf;
}

cg_status cg_model_save(const cg_model *m, const char *path) {
    if (!m || !path || !*path) return cg_fail(CG_ERR_ARG, "model: save needs a model and a path");
    if (m->n_classes < 0 || m->n_classes > CG_MAX_CLASSES)
        return cg_fail(CG_ERR_ARG, "model: %d class names is outside 0..%d", m->n_classes,
                       CG_MAX_CLASSES);
    /* The encoder trusts the shapes, so check them against the sizes. */
    bool mlp = m->kind == CG_MODEL_MLP;
    int64_t widths[3] = {m->n_inputs, mlp ? m->n_hidden : m->n_outputs, m->n_outputs};
    bool shapes_ok = m->n_params == (mlp ? 4 : 2);
    for (int i = 0; shapes_ok && i < m->n_params; i++) {
        const cg_tensor *t = m->params[i];
        int l = i / 2;
        shapes_ok = t && (i % 2 == 0 ? t->ndim == 2 && t->shape[0] == widths[l] &&
                                           t->shape[1] == widths[l + 1]
                                     : t->ndim == 1 && t->shape[0] == widths[l + 1]);
    }
    if (!shapes_ok) return cg_fail(CG_ERR_ARG, "model: parameters do not fit the model's sizes");
    size_t size;
    uint8_t *buf = encode(m, &size);
    if (!buf) return cg_last_status();

    cg_status st = cg_write_file_atomic("model", path, buf, size);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

/* Reads a file whose length has been checked to be `size`. */
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

/* The parameter section of a file whose length and CRC are verified:
 * every shape must be the one the header's sizes give. */
static cg_status decode_params(cg_model *m, const uint8_t *p, const char *path) {
    uint32_t n_params = cg_get_u32(p);
    p += 4;
    if (n_params != (uint32_t)m->n_params)
        return cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: %u parameters, a %s model has %d",
                       path, n_params, m->kind == CG_MODEL_LINEAR ? "linear" : "mlp", m->n_params);
    for (int i = 0; i < m->n_params; i++) {
        cg_tensor *t = m->params[i];
        uint32_t ndim = cg_get_u32(p);
        p += 4;
        bool same = ndim == (uint32_t)t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = cg_get_i64(p + 8 * d) == t->shape[d];
        if (!same)
            return cg_fail(CG_ERR_FORMAT,
                           "model: %s is corrupt: parameter %d's shape does not fit the model's "
                           "sizes",
                           path, i);
        p += 8 * (size_t)t->ndim;
        for (int64_t j = 0; j < t->numel; j++) {
            uint32_t bits = cg_get_u32(p + 4 * j);
            memcpy(&t->data[j], &bits, 4);
        }
        p += 4 * (size_t)t->numel;
    }
    return CG_OK;
}

cg_model *cg_model_load(const char *path) {
    if (!path || !*path) {
        cg_fail(CG_ERR_ARG, "model: load needs a path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        cg_fail(CG_ERR_IO, "model: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    cg_model *m = NULL;
    uint8_t *buf = NULL;
    uint8_t head[HEADER_SIZE];
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        cg_fail(CG_ERR_IO, "model: %s is not a regular file", path);
        goto done;
    }
    size_t flen = (size_t)st.st_size;
    if (flen < 8 || fread(head, 1, flen < HEADER_SIZE ? flen : HEADER_SIZE, f) < 8 ||
        memcmp(head, MODEL_MAGIC, 8) != 0) {
        cg_fail(CG_ERR_FORMAT, "model: %s is not a cgrad model file (no CGRADMDL signature)", path);
        goto done;
    }
    if (flen < HEADER_SIZE + CRC_SIZE) {
        cg_fail(CG_ERR_FORMAT, "model: %s is truncated (%zu bytes, shorter than the header)", path,
                flen);
        goto done;
    }
    uint32_t version = cg_get_u32(head + 8);
    if (version > MODEL_VERSION) {
        cg_fail(CG_ERR_FORMAT, "model: %s was written by a newer cgrad (format %u)", path, version);
        goto done;
    }
    if (version == 0) {
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: format version 0", path);
        goto done;
    }
    uint32_t kind = cg_get_u32(head + 12);
    int64_t n_in = cg_get_i64(head + 16), n_hid = cg_get_i64(head + 24), n_out = cg_get_i64(head + 32);
    uint32_t n_classes = cg_get_u32(head + 40);
    uint64_t expect = file_size_for(kind, n_in, n_hid, n_out, n_classes);
    if (expect == 0) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is corrupt: impossible header (kind %u, sizes %lld/%lld/%lld, %u "
                "classes)",
                path, kind, (long long)n_in, (long long)n_hid, (long long)n_out, n_classes);
        goto done;
    }
    if ((uint64_t)flen != expect) {
        cg_fail(CG_ERR_FORMAT,
                "model: %s is %s: its header describes %llu bytes but the file has %zu", path,
                (uint64_t)flen < expect ? "truncated" : "corrupt", (unsigned long long)expect, flen);
        goto done;
    }
    /* Only now, with the sizes matching the file's length, is anything allocated. */
    m = cg_model_alloc((cg_model_kind)kind, n_in, n_hid, n_out);
    if (!m) goto done;
    buf = read_all(f, path, flen);
    if (!buf) goto fail;
    uint32_t stored = cg_get_u32(buf + flen - CRC_SIZE), actual = cg_crc32(buf, flen - CRC_SIZE);
    if (stored != actual) {
        cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: checksum mismatch (stored %08x, computed %08x)",
                path, stored, actual);
        goto fail;
    }
    m->n_classes = (int)n_classes;
    const uint8_t *p = buf + HEADER_SIZE;
    for (uint32_t c = 0; c < n_classes; c++, p += CG_CLASS_NAME_MAX) {
        if (memchr(p, 0, CG_CLASS_NAME_MAX) == NULL) {
            cg_fail(CG_ERR_FORMAT, "model: %s is corrupt: class name %u is not terminated", path, c);
            goto fail;
        }
        memcpy(m->class_names[c], p, CG_CLASS_NAME_MAX);
    }
    if (decode_params(m, p, path) != CG_OK) goto fail;
    goto done;

fail:
    cg_model_free(m);
    m = NULL;
done:
    free(buf);
    fclose(f);
    return m;
}
