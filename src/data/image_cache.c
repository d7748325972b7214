/*
 * image_cache.c - decoded image folders kept on disk, so a second load of
 * the same folder reads one file instead of decoding every PNG again
 * (cg_dataset_load_folder_cached).
 *
 * The key says which folder contents a cache file holds: FNV-1a, 64-bit
 * (offset basis 0xcbf29ce484222325, prime 0x100000001b3), over the folder's
 * real path and NUL, then for every image taken, in load order, its name
 * relative to the folder ("3/10.png") and NUL, its size and its mtime in
 * nanoseconds (each 8 bytes, little-endian). A file changed, added, removed
 * or renamed gives another key, so another cache file; nothing is ever
 * reused for contents it was not made from, short of a file rewritten with
 * the same size and the same nanosecond mtime.
 *
 * A load that asks for a number of channels (cg_dataset_load_folder_as
 * with 1 or 3) hashes that number last, as 8 bytes; the usual load, which
 * lets the images decide, hashes nothing more. So a folder read both ways
 * keeps a file for each.
 *
 * The file, CACHE_DIR/images-<key as 16 hex digits>.cgimg, version 2,
 * little-endian:
 *
 *   offset  size          field
 *   0       8             magic "CGRADIMG"
 *   8       4             u32 format version (2)
 *   12      4             u32 n_classes (1..64)
 *   16      8             i64 n, the number of images
 *   24      8             i64 height
 *   32      8             i64 width
 *   40      8             u64 the key (again: a file renamed by hand is caught)
 *   48      8             i64 channels (1 gray, 3 RGB)
 *   56      32*n_classes  class names, NUL-padded
 *   then    n             u8 labels (class indices)
 *   then    n*c*h*w       u8 pixels, image after image, plane after plane
 *                         (R, G, B), row after row
 *   last    4             u32 CRC-32 (zlib's crc32) of every byte before it
 *
 * Version 1 (before channels: a 48-byte header, gray pixels) is not read:
 * such a file is of another version, so rebuilt, never misread.
 *
 * The pixels are the decoded 8-bit values, so x = pixel / 255 through the
 * loader's own cg_u8_to_unit gives the same bits as decoding the PNGs. The
 * file holds no floats, so it is the same whether or not the loads that
 * write and read it keep x (cg_data_keep_floats).
 *
 * A cache is only ever a shortcut: a file that is missing, short, corrupt,
 * of another version or for other contents is ignored (the PNGs are
 * decoded and the file rewritten), and a cache that cannot be written (a
 * read-only folder) is skipped silently. The header's sizes are checked
 * against the listing and the file's length before anything is allocated.
 */
#include "data/data.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "CGRADIMG"
#define CACHE_VERSION 2u
#define CACHE_HEADER 56
#define CACHE_CRC 4

/* ------------------------------------------------------------------ */
/* The key                                                             */
/* ------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static uint64_t fnv1a_i64(uint64_t h, int64_t v) {
    uint8_t b[8];
    cg_put_i64(b, v);
    return fnv1a(h, b, 8);
}

static cg_status cache_key(const char *dir, const cg_folder_items *it, int channels,
                           uint64_t *key) {
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return cg_fail(CG_ERR_IO, "cache: cannot resolve %s: %s", dir, strerror(errno));
    const int64_t n = cg_folder_count(it);
    int64_t *size = malloc(2 * (size_t)n * sizeof *size);
    if (!size) return cg_fail(CG_ERR_NOMEM, "cache: out of memory");
    int64_t *mtime = size + n;
    cg_status st = cg_folder_stat_all(it, size, mtime);
    if (st == CG_OK) {
        uint64_t h = fnv1a(FNV_OFFSET, real, strlen(real) + 1);
        for (int64_t i = 0; i < n; i++) {
            const char *rel = cg_folder_rel_path(it, i);
            h = fnv1a(h, rel, strlen(rel) + 1);
            h = fnv1a_i64(fnv1a_i64(h, size[i]), mtime[i]);
        }
        *key = channels ? fnv1a_i64(h, channels) : h;
    }
    free(size);
    return st;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* Bytes of a whole cache file for these sizes; 0 if they are impossible.
 * n is at most the listing's count and c*h*w at most 3 * 2^28, so nothing
 * overflows 64 bits. */
static uint64_t file_size_for(int64_t n, int64_t c, int64_t h, int64_t w, uint32_t n_classes) {
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || n_classes < 1 ||
        n_classes > CG_MAX_CLASSES)
        return 0;
    if (h > CG_PNG_MAX_PIXELS || w > CG_PNG_MAX_PIXELS / h) return 0;
    if (n > CG_MAX_NUMEL / (c * h * w)) return 0;
    return CACHE_HEADER + (uint64_t)CG_CLASS_NAME_MAX * n_classes + (uint64_t)n +
           (uint64_t)n * (uint64_t)(c * h * w) + CACHE_CRC;
}

static bool read_at(int fd, uint8_t *buf, size_t size, off_t at) {
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, buf + got, size - got, at + (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += (size_t)r;
    }
    return true;
}

/* The cached images of this listing into ds (whose class names the listing
 * set), or an error, leaving ds as it was. Messages are for debugging only:
 * the caller ignores them. */
static cg_status cache_read(cg_dataset *ds, const char *path, uint64_t key, int channels,
                            const cg_folder_items *it) {
    int fd = cg_open_regular("cache", path, NULL);
    if (fd < 0) return cg_last_status();
    cg_status st = CG_ERR_FORMAT;
    uint8_t *buf = NULL;
    size_t size = 0;
    uint8_t head[CACHE_HEADER];
    struct stat s;
    if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode) || s.st_size < CACHE_HEADER + CACHE_CRC ||
        !read_at(fd, head, CACHE_HEADER, 0)) {
        cg_fail(CG_ERR_FORMAT, "cache: %s is not a cache file", path);
        goto done;
    }
    uint32_t n_classes = cg_get_u32(head + 12);
    int64_t n = cg_get_i64(head + 16), h = cg_get_i64(head + 24), w = cg_get_i64(head + 32);
    int64_t c = cg_get_i64(head + 48);
    uint64_t expect = file_size_for(n, c, h, w, n_classes);
    if (memcmp(head, CACHE_MAGIC, 8) != 0 || cg_get_u32(head + 8) != CACHE_VERSION ||
        (uint64_t)cg_get_i64(head + 40) != key || n != cg_folder_count(it) ||
        (int)n_classes != ds->n_classes || (channels && c != channels) || expect == 0 ||
        (uint64_t)s.st_size != expect) {
        cg_fail(CG_ERR_FORMAT, "cache: %s does not fit the folder or is truncated", path);
        goto done;
    }
    /* Only now, the sizes matching the listing and the file's length, is
     * anything mapped. The file is mapped, not read into a buffer: its
     * pages are already in the page cache, and a fresh 11 MB buffer would
     * cost ~2,800 page faults (on a VM ~2.5 us each, more than the read).
     * MAP_POPULATE maps them all in one call. (Our writers replace a cache
     * file by rename, never in place, so the mapped file keeps its size.) */
    void *map = mmap(NULL, (size_t)expect, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        cg_fail(CG_ERR_IO, "cache: cannot map %s: %s", path, strerror(errno));
        goto done;
    }
    buf = map;
    size = (size_t)expect;
    if (cg_get_u32(buf + size - CACHE_CRC) != cg_crc32(buf, size - CACHE_CRC)) {
        cg_fail(CG_ERR_FORMAT, "cache: %s is corrupt (checksum)", path);
        goto done;
    }
    const uint8_t *names = buf + CACHE_HEADER,
                  *labels = names + (size_t)CG_CLASS_NAME_MAX * n_classes;
    const uint8_t *pixels = labels + n;
    for (uint32_t c = 0; c < n_classes; c++)
        if (strncmp((const char *)names + (size_t)c * CG_CLASS_NAME_MAX, ds->class_names[c],
                    CG_CLASS_NAME_MAX) != 0) {
            cg_fail(CG_ERR_FORMAT, "cache: %s has other class names", path);
            goto done;
        }
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != cg_folder_label(it, i)) {
            cg_fail(CG_ERR_FORMAT, "cache: %s has other labels", path);
            goto done;
        }
    cg_dataset got = *ds; /* the listing's class names */
    if (cg_dataset_alloc(&got, "cache", n, (int)c, h, w) != CG_OK) goto done;
    cg_dataset_fill_u8(&got, pixels, labels);
    *ds = got;
    st = CG_OK;
done:
    if (buf) munmap(buf, size);
    close(fd);
    return st;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static cg_status cache_write(const cg_dataset *ds, const char *path, uint64_t key) {
    const int64_t n = cg_dataset_size(ds), chw = cg_dataset_image_numel(ds);
    uint64_t expect =
        file_size_for(n, ds->channels, ds->height, ds->width, (uint32_t)ds->n_classes);
    if (expect == 0) return cg_fail(CG_ERR_ARG, "cache: sizes out of range");
    size_t size = (size_t)expect;
    uint8_t *buf = malloc(size);
    if (!buf) return cg_fail(CG_ERR_NOMEM, "cache: cannot allocate %zu bytes", size);
    uint8_t *p = buf;
    memcpy(p, CACHE_MAGIC, 8);
    p = cg_put_u32(p + 8, CACHE_VERSION);
    p = cg_put_u32(p, (uint32_t)ds->n_classes);
    p = cg_put_i64(p, n);
    p = cg_put_i64(p, ds->height);
    p = cg_put_i64(p, ds->width);
    p = cg_put_i64(p, (int64_t)key);
    p = cg_put_i64(p, ds->channels);
    for (int c = 0; c < ds->n_classes; c++, p += CG_CLASS_NAME_MAX)
        strncpy((char *)p, ds->class_names[c], CG_CLASS_NAME_MAX); /* pads with NULs */
    for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)ds->y->data[i];
    p += n;
    memcpy(p, ds->pixels, (size_t)(n * chw)); /* the decoded pixels */
    p += n * chw;
    cg_put_u32(p, cg_crc32(buf, (size_t)(p - buf)));
    cg_status st = cg_write_file_atomic("cache", path, buf, size);
    free(buf);
    return st;
}

/* ------------------------------------------------------------------ */
/* The loader                                                          */
/* ------------------------------------------------------------------ */

cg_status cg_dataset_load_folder_as(cg_dataset *ds, const char *dir, const char *cache_dir,
                                    int channels) {
    cg_folder_items *it;
    cg_status st = cg_folder_list(ds, dir, &it);
    if (st != CG_OK) return st;
    uint64_t key = 0;
    char path[PATH_MAX];
    bool usable = cache_dir && cache_key(dir, it, channels, &key) == CG_OK &&
                  snprintf(path, sizeof path, "%s/images-%016llx.cgimg", cache_dir,
                           (unsigned long long)key) < (int)sizeof path;
    if (usable && cache_read(ds, path, key, channels, it) == CG_OK) {
        cg_folder_items_free(it);
        return CG_OK;
    }
    /* Whatever went wrong with the cache, the PNGs decide. */
    if (cache_dir) cg_clear_error();
    st = cg_folder_decode(ds, it, channels);
    cg_folder_items_free(it);
    if (st == CG_OK && usable && cache_write(ds, path, key) != CG_OK) cg_clear_error();
    return st;
}

cg_status cg_dataset_load_folder_cached(cg_dataset *ds, const char *dir, const char *cache_dir) {
    return cg_dataset_load_folder_as(ds, dir, cache_dir, 0);
}
