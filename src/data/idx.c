/*
 * idx.c - MNIST's IDX files (LeCun et al.), gzip-compressed or raw.
 *
 * Layout: a 4-byte magic 00 00 08 ndim (08: unsigned bytes), ndim
 * big-endian u32 dims, then the bytes in row-major order:
 *   images 0x00000803: n, rows, cols;   labels 0x00000801: n.
 * zlib's gzread reads both kinds of file (a raw one passes through).
 *
 * Untrusted sizes: dims must be sane (n <= 10M, rows*cols <= 1M). A raw
 * file's length must equal header + payload exactly, checked before any
 * allocation. A gzip file's length cannot be known up front, so its
 * payload must fit the 1032:1 limit of deflate, the buffer grows only as
 * bytes arrive (never past what the dims say), and a stream that ends
 * early or runs on is an error.
 */
#include "data/data.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_ITEMS 10000000
#define IDX_MAX_ITEM_BYTES 1000000
#define DEFLATE_MAX_RATIO 1032
/* gzread takes an unsigned int; read in pieces well below it. */
#define IDX_CHUNK ((int64_t)1 << 24)

/* Reads up to n bytes: the count read (short only at a clean end of the
 * data), or -1 after cg_fail when zlib reports an error - a gzip stream
 * cut short is Z_BUF_ERROR, "unexpected end of file". */
static int64_t gz_read(gzFile gz, const char *name, uint8_t *dst, int64_t n) {
    int64_t got = 0;
    while (got < n) {
        int64_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        int r = gzread(gz, dst + got, (unsigned)want);
        int errnum = Z_OK;
        const char *msg = gzerror(gz, &errnum);
        if (r < 0 || errnum != Z_OK) {
            cg_fail(CG_ERR_FORMAT, "idx: %s: truncated or corrupt (zlib: %s)", name,
                    errnum == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void cg_idx_free(cg_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* Everything after gzdopen; the caller closes gz. */
static cg_status idx_read(gzFile gz, const char *name, int64_t file_size, cg_idx *out) {
    uint8_t head[16];
    int64_t got = gz_read(gz, name, head, 4);
    if (got < 0) return CG_ERR_FORMAT;
    if (got < 4) return cg_fail(CG_ERR_FORMAT, "idx: %s: file ends inside the header", name);
    uint32_t magic = be32(head);
    if (magic != 0x00000803 && magic != 0x00000801)
        return cg_fail(
            CG_ERR_FORMAT,
            "idx: %s: bad magic 0x%08x (expected 0x00000803 for images or 0x00000801 for labels)",
            name, magic);
    int ndim = (int)(magic & 0xff);
    got = gz_read(gz, name, head + 4, 4 * ndim);
    if (got < 0) return CG_ERR_FORMAT;
    if (got < 4 * ndim) return cg_fail(CG_ERR_FORMAT, "idx: %s: file ends inside the header", name);
    bool raw = gzdirect(gz) == 1;

    int64_t dims[3] = {be32(head + 4), 1, 1};
    if (ndim == 3) {
        dims[1] = be32(head + 8);
        dims[2] = be32(head + 12);
    }
    if (dims[0] > IDX_MAX_ITEMS)
        return cg_fail(CG_ERR_FORMAT, "idx: %s: %lld items is more than the %d we accept", name,
                       (long long)dims[0], IDX_MAX_ITEMS);
    /* each side first, so rows*cols cannot overflow */
    if (ndim == 3 && (dims[1] < 1 || dims[2] < 1 || dims[1] > IDX_MAX_ITEM_BYTES ||
                      dims[2] > IDX_MAX_ITEM_BYTES || dims[1] * dims[2] > IDX_MAX_ITEM_BYTES))
        return cg_fail(CG_ERR_FORMAT, "idx: %s: bad image size %lldx%lld (rows*cols must be 1..%d)",
                       name, (long long)dims[1], (long long)dims[2], IDX_MAX_ITEM_BYTES);
    int64_t size = dims[0] * dims[1] * dims[2], head_len = 4 + 4 * ndim;
    if (size > CG_MAX_NUMEL)
        return cg_fail(CG_ERR_FORMAT, "idx: %s: %lld bytes of data is more than we load", name,
                       (long long)size);

    if (file_size >= 0 && raw && file_size != head_len + size)
        return cg_fail(CG_ERR_FORMAT,
                       "idx: %s: the header says %lld bytes of data, but the file holds %lld "
                       "(truncated or not IDX)",
                       name, (long long)size, (long long)(file_size - head_len));
    if (file_size >= 0 && !raw && size > DEFLATE_MAX_RATIO * file_size + 65536)
        return cg_fail(
            CG_ERR_FORMAT,
            "idx: %s: the header says %lld bytes of data, more than a %lld-byte gzip file can hold",
            name, (long long)size, (long long)file_size);

    /* Grow toward `size` as data arrives, so a lying header costs at most
     * twice what the stream really holds. */
    uint8_t *data = NULL;
    int64_t cap = 0, have = 0;
    while (have < size) {
        if (have == cap) {
            int64_t next =
                raw ? size : (cap * 2 > ((int64_t)1 << 20) ? cap * 2 : ((int64_t)1 << 20));
            if (next > size) next = size;
            uint8_t *p = realloc(data, (size_t)next);
            if (!p) {
                free(data);
                return cg_fail(CG_ERR_NOMEM, "idx: %s: cannot allocate %lld bytes", name,
                               (long long)next);
            }
            data = p;
            cap = next;
        }
        got = gz_read(gz, name, data + have, cap - have);
        if (got < 0) {
            free(data);
            return CG_ERR_FORMAT;
        }
        have += got;
        if (have < cap) {
            free(data);
            return cg_fail(CG_ERR_FORMAT,
                           "idx: %s: file ends after %lld of %lld data bytes (truncated)", name,
                           (long long)have, (long long)size);
        }
    }
    uint8_t extra;
    got = gz_read(gz, name, &extra, 1);
    if (got != 0) {
        free(data);
        if (got < 0) return CG_ERR_FORMAT;
        return cg_fail(CG_ERR_FORMAT, "idx: %s: data runs past the %lld bytes the header says",
                       name, (long long)size);
    }
    out->ndim = ndim;
    memcpy(out->dims, dims, sizeof dims);
    out->data = data ? data : malloc(1);
    out->size = size;
    if (!out->data) return cg_fail(CG_ERR_NOMEM, "idx: %s: out of memory", name);
    return CG_OK;
}

cg_status cg_idx_read_fd(int fd, const char *name, cg_idx *out) {
    memset(out, 0, sizeof *out);
    struct stat st;
    int64_t file_size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return cg_fail(CG_ERR_NOMEM, "idx: %s: cannot start zlib", name);
    }
    gzbuffer(gz, 1 << 17); /* fewer, larger reads than zlib's 8 KiB */
    cg_status s = idx_read(gz, name, file_size, out);
    gzclose(gz);
    return s;
}

static cg_status idx_open(const char *path, int ndim, cg_idx *out) {
    int fd = cg_open_regular("idx", path, NULL);
    if (fd < 0) return cg_last_status();
    if (cg_idx_read_fd(fd, path, out) != CG_OK) return cg_last_status();
    if (out->ndim != ndim) {
        cg_idx_free(out);
        return cg_fail(CG_ERR_FORMAT,
                       "idx: %s holds %s (magic 0x0000080%d), expected %s (0x0000080%d)", path,
                       ndim == 3 ? "labels" : "images", ndim == 3 ? 1 : 3,
                       ndim == 3 ? "images" : "labels", ndim);
    }
    return CG_OK;
}

cg_status cg_dataset_load_idx(cg_dataset *ds, const char *images_path, const char *labels_path) {
    if (!ds || !images_path || !labels_path)
        return cg_fail(CG_ERR_ARG, "idx: need a dataset, an images file and a labels file");
    memset(ds, 0, sizeof *ds);
    cg_idx img = {0}, lab = {0};
    cg_status st = idx_open(images_path, 3, &img);
    if (st == CG_OK) st = idx_open(labels_path, 1, &lab);
    if (st == CG_OK && img.dims[0] != lab.dims[0])
        st = cg_fail(CG_ERR_FORMAT, "idx: %s has %lld images but %s has %lld labels", images_path,
                     (long long)img.dims[0], labels_path, (long long)lab.dims[0]);
    if (st == CG_OK && img.dims[0] == 0)
        st = cg_fail(CG_ERR_FORMAT, "idx: %s holds no images", images_path);
    if (st == CG_OK) {
        /* The images' buffer becomes the dataset's bytes: full MNIST's
         * 47 MB are never held twice. */
        st = cg_dataset_adopt_u8(ds, "idx", labels_path, img.data, lab.data, img.dims[0],
                                 img.dims[1], img.dims[2]);
        img.data = NULL;
    }
    cg_idx_free(&img);
    cg_idx_free(&lab);
    return st;
}
