/*
 * dataset.c - the cg_dataset object: making, narrowing and freeing it, and
 * the helpers every loader shares (reading a file, pixels to floats).
 */
#include "data/data.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Byte buffers and files                                              */
/* ------------------------------------------------------------------ */

cg_status cg_bytes_reserve(cg_bytes *b, size_t need, const char *op) {
    if (need <= b->cap) return CG_OK;
    /* Grow by half again so a stream read in pieces costs O(n) copies. */
    size_t cap = b->cap + b->cap / 2;
    if (cap < need) cap = need;
    if (cap < 4096) cap = 4096;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return cg_fail(CG_ERR_NOMEM, "%s: cannot allocate %zu bytes", op, cap);
    b->data = p;
    b->cap = cap;
    return CG_OK;
}

void cg_bytes_free(cg_bytes *b) {
    free(b->data);
    *b = (cg_bytes){0};
}

cg_status cg_read_file_at(const char *op, int dirfd, const char *name, const char *path,
                          size_t max_bytes, cg_bytes *b) {
    b->len = 0;
    struct stat st;
    int fd = cg_open_regular_at(op, dirfd, name, path, &st);
    if (fd < 0) return cg_last_status();
    if ((uint64_t)st.st_size > max_bytes) {
        close(fd);
        return cg_fail(CG_ERR_FORMAT, "%s: %s is %lld bytes, more than the %zu this reader accepts",
                       op, path, (long long)st.st_size, max_bytes);
    }
    size_t size = (size_t)st.st_size;
    /* One spare byte so text parsers may NUL-terminate. */
    if (cg_bytes_reserve(b, size + 1, op) != CG_OK) {
        close(fd);
        return CG_ERR_NOMEM;
    }
    while (b->len < size) {
        ssize_t got = read(fd, b->data + b->len, size - b->len);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            int err = got < 0 ? errno : 0;
            close(fd);
            return cg_fail(CG_ERR_IO, "%s: cannot read %s: %s", op, path,
                           err ? strerror(err) : "the file shrank while being read");
        }
        b->len += (size_t)got;
    }
    close(fd);
    return CG_OK;
}

cg_status cg_read_file(const char *op, const char *path, size_t max_bytes, cg_bytes *b) {
    return cg_read_file_at(op, AT_FDCWD, path, path, max_bytes, b);
}

/* ------------------------------------------------------------------ */
/* Pixels to floats                                                    */
/* ------------------------------------------------------------------ */

/* The division itself, not a multiply by 1/255 (off by an ulp for about
 * half of the 256 values): each result is the correctly rounded quotient,
 * the bits PyTorch's tensor.float()/255 gives. The loop vectorises (widen
 * to int, convert, divide 4 or 8 lanes at a time); division is exact in
 * every instruction set, so the AVX2 build of the same loop gives the same
 * bits, 8 lanes at a time, a third faster than SSE's 4 on a training
 * batch (bench/README.md, "Batches from bytes"). */
static inline __attribute__((always_inline)) void u8_to_unit_loop(float *restrict dst,
                                                                 const uint8_t *restrict src,
                                                                 int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f;
}

void cg_u8_to_unit_portable(float *restrict dst, const uint8_t *restrict src, int64_t n) {
    u8_to_unit_loop(dst, src, n);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) static void
u8_to_unit_avx2(float *restrict dst, const uint8_t *restrict src, int64_t n) {
    u8_to_unit_loop(dst, src, n);
}
#endif

void cg_u8_to_unit(float *restrict dst, const uint8_t *restrict src, int64_t n) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        u8_to_unit_avx2(dst, src, n);
        return;
    }
#endif
    u8_to_unit_loop(dst, src, n);
}

/* ------------------------------------------------------------------ */
/* The dataset object                                                  */
/* ------------------------------------------------------------------ */

/*
 * Whether the loaders make x. It is read once per load, as the dataset is
 * allocated, and meant to be set before loading; atomic only so that a
 * load on another thread meanwhile sees the old or the new value, not a
 * data race.
 */
static atomic_bool keep_floats = true;

bool cg_data_keep_floats(bool on) {
    return atomic_exchange_explicit(&keep_floats, on, memory_order_relaxed);
}

int64_t cg_dataset_size(const cg_dataset *ds) { return ds && ds->y ? ds->y->numel : 0; }

int64_t cg_dataset_image_numel(const cg_dataset *ds) {
    if (!ds) return 0;
    return (ds->channels > 0 ? ds->channels : 1) * ds->height * ds->width;
}

cg_status cg_dataset_images(const char *op, const cg_dataset *ds, int64_t *rows, int64_t *len) {
    if (ds && ds->x) {
        if (ds->x->ndim != 2)
            return cg_fail(CG_ERR_STATE,
                           "%s: the dataset's x has %d dimensions, not 2 ([N, C*H*W])", op,
                           ds->x->ndim);
        *rows = ds->x->shape[0];
        *len = ds->x->shape[1];
        return CG_OK;
    }
    /* Bytes only: y says how many images, the image size how long each. */
    if (!ds || !ds->pixels || !ds->y)
        return cg_fail(CG_ERR_STATE, "%s: the dataset is not loaded (it has no images)", op);
    if (ds->height < 1 || ds->width < 1 || ds->channels < 0 || ds->channels > 3 ||
        ds->height > CG_MAX_NUMEL / 3 / ds->width)
        return cg_fail(CG_ERR_STATE,
                       "%s: the dataset's images have a bad size, %lldx%lld with %d channels", op,
                       (long long)ds->height, (long long)ds->width, ds->channels);
    *rows = ds->y->numel;
    *len = cg_dataset_image_numel(ds);
    return CG_OK;
}

/* A tensor that ds owns: made inside a scope of our own and retained, so
 * exactly one reference is left whether or not the caller has a scope open. */
static cg_tensor *owned_tensor(const char *op, const int64_t *shape, int ndim) {
    cg_scope_begin();
    cg_tensor *t = cg_tensor_retain(cg_tensor_alloc(op, shape, ndim));
    cg_scope_end();
    return t;
}

/* cg_dataset_alloc with its parts chosen: x when `floats`, pixels when
 * `bytes`. x is never made when not asked for, not even for a moment:
 * peak memory is the point of going without it. */
static cg_status alloc_parts(cg_dataset *ds, const char *op, int64_t n, int c, int64_t h,
                             int64_t w, bool floats, bool bytes) {
    if (n < 0 || (c != 1 && c != 3) || h <= 0 || w <= 0 || h > CG_MAX_NUMEL / 3 / w ||
        (n > 0 && c * h * w > CG_MAX_NUMEL / n))
        return cg_fail(CG_ERR_ARG, "%s: bad dataset size %lld images of %d x %lldx%lld", op,
                       (long long)n, c, (long long)h, (long long)w);
    const int64_t numel = n * c * h * w, xs[2] = {n, c * h * w};
    ds->x = NULL;
    ds->pixels = NULL;
    ds->y = owned_tensor(op, &n, 1);
    cg_status st = ds->y ? CG_OK : cg_last_status();
    if (st == CG_OK && floats && !(ds->x = owned_tensor(op, xs, 2))) st = cg_last_status();
    if (st == CG_OK && bytes && !(ds->pixels = malloc(numel > 0 ? (size_t)numel : 1)))
        st = cg_fail(CG_ERR_NOMEM, "%s: cannot allocate %lld images of %d x %lldx%lld pixels",
                     op, (long long)n, c, (long long)h, (long long)w);
    if (st != CG_OK) {
        cg_tensor_release(ds->x);
        cg_tensor_release(ds->y);
        ds->x = ds->y = NULL;
        return st;
    }
    /* They are about to be written whole: map their pages in one go. */
    if (ds->x) cg_prefault(ds->x->data, (size_t)numel * sizeof(float));
    if (ds->pixels) cg_prefault(ds->pixels, (size_t)numel);
    ds->channels = c;
    ds->height = h;
    ds->width = w;
    return CG_OK;
}

/* The setting, as a load allocates its dataset. */
static bool floats_wanted(void) { return atomic_load_explicit(&keep_floats, memory_order_relaxed); }

cg_status cg_dataset_alloc(cg_dataset *ds, const char *op, int64_t n, int c, int64_t h,
                           int64_t w) {
    return alloc_parts(ds, op, n, c, h, w, floats_wanted(), true);
}

void cg_dataset_set_item(cg_dataset *ds, int64_t i, int label) {
    const int64_t chw = cg_dataset_image_numel(ds);
    if (ds->x) cg_u8_to_unit(ds->x->data + i * chw, ds->pixels + i * chw, chw);
    ds->y->data[i] = (float)label;
}

void cg_dataset_fill_u8(cg_dataset *ds, const uint8_t *pixels, const uint8_t *labels) {
    const int64_t n = cg_dataset_size(ds), hw = cg_dataset_image_numel(ds);
#pragma omp parallel for schedule(static) if (n * hw >= 16 * CG_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++) {
        if (pixels != ds->pixels) memcpy(ds->pixels + i * hw, pixels + i * hw, (size_t)hw);
        cg_dataset_set_item(ds, i, labels[i]);
    }
}

/* cg_dataset_from_u8 and cg_dataset_adopt_u8: the pixels are copied from
 * `pixels`, or taken over when `owned` (then the same pointer; freed here
 * on failure) is not NULL. */
static cg_status from_u8(cg_dataset *ds, const char *op, const char *name, const uint8_t *pixels,
                         uint8_t *owned, const uint8_t *labels, int64_t n, int64_t h, int64_t w) {
    memset(ds, 0, sizeof *ds);
    int max_label = -1;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] >= CG_MAX_CLASSES) {
            free(owned);
            return cg_fail(CG_ERR_FORMAT,
                           "%s: %s: label %d of item %lld is not below %d (CG_MAX_CLASSES)", op,
                           name, labels[i], (long long)i, CG_MAX_CLASSES);
        }
        if (labels[i] > max_label) max_label = labels[i];
    }
    if (alloc_parts(ds, op, n, 1, h, w, floats_wanted(), !owned) != CG_OK) {
        free(owned);
        return cg_last_status();
    }
    if (owned) ds->pixels = owned;
    cg_dataset_fill_u8(ds, pixels, labels);
    ds->n_classes = max_label + 1;
    for (int c = 0; c < ds->n_classes; c++)
        snprintf(ds->class_names[c], CG_CLASS_NAME_MAX, "%d", c);
    return CG_OK;
}

cg_status cg_dataset_from_u8(cg_dataset *ds, const char *op, const char *name,
                             const uint8_t *pixels, const uint8_t *labels, int64_t n,
                             int64_t h, int64_t w) {
    return from_u8(ds, op, name, pixels, NULL, labels, n, h, w);
}

cg_status cg_dataset_adopt_u8(cg_dataset *ds, const char *op, const char *name, uint8_t *pixels,
                              const uint8_t *labels, int64_t n, int64_t h, int64_t w) {
    return from_u8(ds, op, name, pixels, pixels, labels, n, h, w);
}

void cg_dataset_free(cg_dataset *ds) {
    if (!ds) return;
    cg_tensor_release(ds->x);
    cg_tensor_release(ds->y);
    free(ds->pixels);
    memset(ds, 0, sizeof *ds);
}

/* Row i's new class, or -1 (also for a label outside 0..n_classes-1). */
static int class_of(const cg_dataset *ds, int64_t i, const int *map) {
    float y = ds->y->data[i];
    if (!(y >= 0.0f && y < (float)ds->n_classes)) return -1;
    return map[(int)y];
}

/*
 * Keeps the rows whose class is listed, in their order, and renumbers the
 * classes 0..n-1 in the order of `names`: full MNIST with {"3", "7"} gives
 * MNIST_SAMPLE (3 -> 0, 7 -> 1, as in its labels.csv).
 */
cg_status cg_dataset_select_classes(cg_dataset *ds, const char *const *names, int n) {
    int64_t rows, cols;
    if (cg_dataset_images("select_classes", ds, &rows, &cols) != CG_OK) return cg_last_status();
    if (!ds->y || ds->y->numel != rows || cols != cg_dataset_image_numel(ds))
        return cg_fail(CG_ERR_STATE,
                       "select_classes: the dataset has %lld images of %lld values but %lld labels "
                       "and an image size of %d x %lldx%lld",
                       (long long)rows, (long long)cols, (long long)cg_dataset_size(ds),
                       ds->channels, (long long)ds->height, (long long)ds->width);
    if (!names || n < 1 || n > CG_MAX_CLASSES)
        return cg_fail(CG_ERR_ARG, "select_classes: need 1..%d class names, got %d", CG_MAX_CLASSES,
                       n);
    int map[CG_MAX_CLASSES]; /* old class -> new class, or -1 */
    for (int c = 0; c < CG_MAX_CLASSES; c++) map[c] = -1;
    for (int k = 0; k < n; k++) {
        int found = -1;
        for (int c = 0; c < ds->n_classes && found < 0; c++)
            if (names[k] && strcmp(ds->class_names[c], names[k]) == 0) found = c;
        if (found < 0) {
            char have[CG_MAX_CLASSES * (CG_CLASS_NAME_MAX + 2)] = "";
            for (int c = 0; c < ds->n_classes; c++) {
                if (c) strcat(have, ", ");
                strcat(have, ds->class_names[c]);
            }
            return cg_fail(CG_ERR_ARG, "select_classes: no class \"%s\" (the classes are: %s)",
                           names[k] ? names[k] : "(null)", have);
        }
        if (map[found] >= 0)
            return cg_fail(CG_ERR_ARG, "select_classes: class \"%s\" is listed twice", names[k]);
        map[found] = k;
    }

    int64_t kept = 0;
    for (int64_t i = 0; i < rows; i++) kept += class_of(ds, i, map) >= 0;

    /* The parts ds has: floats if it keeps them, bytes unless x was
     * changed or made by hand (then there are none to keep). */
    cg_dataset out = *ds;
    if (alloc_parts(&out, "select_classes", kept, ds->channels > 0 ? ds->channels : 1, ds->height,
                    ds->width, ds->x != NULL, ds->pixels != NULL) != CG_OK)
        return cg_last_status();
    for (int64_t i = 0, j = 0; i < rows; i++) {
        int c = class_of(ds, i, map);
        if (c < 0) continue;
        if (ds->x)
            memcpy(out.x->data + j * cols, ds->x->data + i * cols, (size_t)cols * sizeof(float));
        if (ds->pixels) memcpy(out.pixels + j * cols, ds->pixels + i * cols, (size_t)cols);
        out.y->data[j++] = (float)c;
    }
    out.n_classes = n;
    memset(out.class_names, 0, sizeof out.class_names);
    for (int k = 0; k < n; k++) snprintf(out.class_names[k], CG_CLASS_NAME_MAX, "%s", names[k]);
    cg_dataset_free(ds);
    *ds = out;
    return CG_OK;
}
