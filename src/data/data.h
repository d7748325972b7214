/*
 * data.h - what the loaders in src/data share (internal).
 *
 * Every parser here works on bytes in memory, so the libFuzzer targets in
 * fuzz/ drive exactly the code that reads users' files. Sizes read from a
 * file are checked against the file's length before anything is allocated.
 */
#ifndef CGRAD_DATA_H
#define CGRAD_DATA_H

#include "cgrad_internal.h"

/* A growable byte buffer, reused by one thread across many files. */
typedef struct cg_bytes {
    uint8_t *data;
    size_t len, cap;
} cg_bytes;

/* Grows b to hold at least `need` bytes (keeps its contents). */
cg_status cg_bytes_reserve(cg_bytes *b, size_t need, const char *op);
void cg_bytes_free(cg_bytes *b);

/* Reads the whole file into b (b->len its size); a file over max_bytes is
 * an error, so a huge or endless file is never slurped. */
cg_status cg_read_file(const char *op, const char *path, size_t max_bytes, cg_bytes *b);
/* The same for `name` relative to the open folder dirfd (openat: no walk
 * of the whole path per file); `path` names the file in messages. */
cg_status cg_read_file_at(const char *op, int dirfd, const char *name, const char *path,
                          size_t max_bytes, cg_bytes *b);

/* dst[i] = src[i] / 255 as float, the same rounding as PyTorch's
 * tensor.float()/255. Serial: callers parallelise over images. */
void cg_u8_to_unit(float *restrict dst, const uint8_t *restrict src, int64_t n);
/* The same with the build's baseline instructions only (for tests). */
void cg_u8_to_unit_portable(float *restrict dst, const uint8_t *restrict src, int64_t n);

/* Gives ds fresh tensors y [n] and, when cg_data_keep_floats is on, x
 * [n, c*h*w], owned by ds whatever scope is open, and pixels [n*c*h*w]
 * (all uninitialised); sets channels, height and width. Every loader
 * allocates here, so every loader honours the setting. */
cg_status cg_dataset_alloc(cg_dataset *ds, const char *op, int64_t n, int c, int64_t h,
                           int64_t w);

/* Item i's label, and its row of x from its row of pixels (pixel / 255)
 * when ds keeps floats: the one place a loader makes floats. Serial. */
void cg_dataset_set_item(cg_dataset *ds, int64_t i, int label);

/* Fills ds's pixels (from cg_dataset_alloc) with its n images of 8-bit
 * pixels (nothing to copy when `pixels` are ds's own), x (if any) with
 * pixel / 255, in parallel, and y with the n labels. */
void cg_dataset_fill_u8(cg_dataset *ds, const uint8_t *pixels, const uint8_t *labels);

/* How many images ds holds and the values in one (C*H*W), from x, or from
 * y and the image size when it holds only bytes; CG_ERR_STATE naming `op`
 * when it holds neither x nor pixels (never loaded, or freed). */
cg_status cg_dataset_images(const char *op, const cg_dataset *ds, int64_t *rows, int64_t *len);

/* Builds a gray ds from 8-bit pixels (n images of h x w, row after row) and
 * labels: n_classes = max label + 1, named "0", "1", ... (digits). A label
 * that is not below CG_MAX_CLASSES is an error naming `name` and the item. */
cg_status cg_dataset_from_u8(cg_dataset *ds, const char *op, const char *name,
                             const uint8_t *pixels, const uint8_t *labels, int64_t n,
                             int64_t h, int64_t w);
/* The same, taking over `pixels` (malloc'd, n*h*w bytes) as ds's own
 * instead of copying them, so a loader's buffer is never held twice;
 * freed here on failure. */
cg_status cg_dataset_adopt_u8(cg_dataset *ds, const char *op, const char *name, uint8_t *pixels,
                              const uint8_t *labels, int64_t n, int64_t h, int64_t w);

/* ---- image folders (folder.c) ---- */

/* The images of a ROOT/<class>/<image>.png folder, listed in load order
 * (see cg_dataset_load_folder), each class folder held open. */
typedef struct cg_folder_items cg_folder_items;

/* Zeroes ds, lists DIR's classes into ds->n_classes/class_names and its
 * images into *items (NULL on failure). */
cg_status cg_folder_list(cg_dataset *ds, const char *dir, cg_folder_items **items);
int64_t cg_folder_count(const cg_folder_items *it);
int cg_folder_label(const cg_folder_items *it, int64_t i);
/* Image i's path relative to DIR ("3/10.png"). */
const char *cg_folder_rel_path(const cg_folder_items *it, int64_t i);
/* Every image's size in bytes and mtime in ns, in list order (arrays of
 * cg_folder_count elements). */
cg_status cg_folder_stat_all(const cg_folder_items *it, int64_t *size, int64_t *mtime_ns);
/* Decodes the listed images into ds (keeping its class names), in
 * parallel, as `channels` planes (0: 3 if any image has colour, else 1;
 * see cg_dataset_load_folder_as); on failure ds is freed. */
cg_status cg_folder_decode(cg_dataset *ds, const cg_folder_items *it, int channels);
void cg_folder_items_free(cg_folder_items *it);

/* ---- PNG (png.c) ---- */

/* Largest image we decode, in pixels (16384 x 16384). */
#define CG_PNG_MAX_PIXELS ((int64_t)1 << 28)

/*
 * Decodes PNG bytes to img->channels planes of 8-bit pixels (1: gray, 3:
 * RGB, 0: as the image is, 3 if cg_png_has_colour; conversions: see
 * png.c), setting img->channels. `name` names the image in messages.
 *  - pixels NULL on entry: any size; *pixels is malloc'd
 *    (channels*width*height) and width/height are set.
 *  - pixels non-NULL on entry: channels must be 1 or 3 and the image
 *    exactly width x height (else CG_ERR_SHAPE naming both sizes); it is
 *    written there.
 * On failure nothing is left allocated.
 */
cg_status cg_png_decode(const uint8_t *buf, size_t len, const char *name, cg_image *img);

/* Whether PNG bytes hold colour: colour type RGB or RGBA, or a palette
 * with an entry whose red, green and blue differ (a palette of grays is
 * gray, as libpng's own check_palette does). From the headers only. */
cg_status cg_png_has_colour(const uint8_t *buf, size_t len, const char *name, bool *colour);

/* ---- IDX (idx.c) ---- */

/* An IDX file's contents: ndim 1 (labels: dims[0] items) or 3 (images:
 * dims[0] images of dims[1] rows x dims[2] cols); data is malloc'd. */
typedef struct cg_idx {
    int ndim;
    int64_t dims[3];
    uint8_t *data;
    int64_t size; /* bytes in data: the product of dims */
} cg_idx;

/* Reads an IDX stream (gzip or raw, told apart by zlib) from fd, which the
 * call closes. `name` is for messages. */
cg_status cg_idx_read_fd(int fd, const char *name, cg_idx *out);
void cg_idx_free(cg_idx *idx);

/* ---- CSV (csv.c) ---- */

/* Parses CSV digits (see cg_dataset_load_csv) from memory. */
cg_status cg_csv_parse(cg_dataset *ds, const char *text, size_t len, const char *name);
/* Parses a labels.csv (see cg_read_labels_csv) from memory. */
cg_status cg_labels_parse(cg_labels *out, const char *text, size_t len, const char *name);

#endif /* CGRAD_DATA_H */
