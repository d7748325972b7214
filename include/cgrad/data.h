/*
 * cgrad/data.h - datasets: loaders (PNG folders, IDX, CSV), the DataLoader,
 * batches, and getting datasets (fetch, locate). Included by <cgrad.h>.
 */
#ifndef CGRAD_DATA_H_PUBLIC
#define CGRAD_DATA_H_PUBLIC

#include "cgrad/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */

#define CG_MAX_CLASSES 64
#define CG_CLASS_NAME_MAX 32

/*
 * Images and labels: the article's train_x / train_y. An image is C planes
 * of H x W (channel-major, CHW, as torchvision's ToTensor gives it): C = 1
 * for gray, 3 for RGB (R, then G, then B). A row of x or pixels is one
 * image's C*H*W values, which an image model views as [C, H, W].
 */
typedef struct cg_dataset {
    /* [N, C*H*W] floats in [0, 1] (pixel / 255); NULL when the dataset was
     * loaded with cg_data_keep_floats(false), and then every call here
     * works from `pixels` instead. */
    cg_tensor *x;
    cg_tensor *y;       /* [N] class index (0..n_classes-1) as a float    */
    /* The 8-bit pixels x was made from, [N, C*H*W] (x = pixels / 255), as
     * torchvision's MNIST keeps them; owned (malloc), or NULL. Every loader
     * sets them; cg_dataset_batch reads them. A program that changes x in
     * place must free them and set NULL, and batches then come from x. */
    uint8_t *pixels;
    int64_t height, width;
    int n_classes;
    char class_names[CG_MAX_CLASSES][CG_CLASS_NAME_MAX];
    /* Planes per image: 1 (gray) or 3 (RGB). Every loader sets it; 0, in a
     * dataset made by hand, counts as 1. */
    int channels;
} cg_dataset;

/* Items in the dataset (rows of y). */
int64_t cg_dataset_size(const cg_dataset *ds);
/* Values in one image, C*H*W (channels 0 counting as 1): what a model's
 * n_inputs must be to take the dataset's images. */
int64_t cg_dataset_image_numel(const cg_dataset *ds);
/*
 * Whether the loaders also make x, the images as floats (on by default, the
 * article's train_x). Off, a dataset holds only its bytes (x NULL): 60,000
 * MNIST images are 47 MB of bytes instead of 188 MB of floats, and batches
 * (cg_dataset_batch) are made from the bytes either way. Process-wide;
 * returns the previous setting.
 */
bool cg_data_keep_floats(bool on);

/*
 * A folder of class folders (fastai's layout): DIR/<class>/<image>.png.
 * Classes are the sub-folder names, sorted; files are taken in sorted
 * order, images only. The folder is RGB (channels 3) if any of its PNGs
 * has colour (colour type RGB or RGBA, or a palette with a colour that is
 * not gray), its gray images then read as three equal planes; else every
 * PNG becomes 8-bit gray, channels 1 (conversions: src/data/png.c).
 */
cg_status cg_dataset_load_folder(cg_dataset *ds, const char *dir);
/*
 * The same, bit for bit, through a cache of decoded images in cache_dir
 * (NULL: no cache): CACHE_DIR/images-<key>.cgimg, keyed by the folder's
 * real path and every image's name, size and mtime (src/data/image_cache.c).
 * A missing, stale or corrupt cache file is rebuilt from the PNGs; one that
 * cannot be written is skipped. The folder cache_dir must exist.
 */
cg_status cg_dataset_load_folder_cached(cg_dataset *ds, const char *dir, const char *cache_dir);
/*
 * cg_dataset_load_folder_cached (cache_dir NULL: no cache) with the
 * channels chosen: 0 decides from the images as above; 1 reads every
 * image gray (colour ones by their luma), 3 every image as RGB (gray ones
 * replicated): how a validation split is read as its training split was,
 * or data for a model that takes C channels.
 */
cg_status cg_dataset_load_folder_as(cg_dataset *ds, const char *dir, const char *cache_dir,
                                    int channels);
/* MNIST IDX files (gzip or raw). */
cg_status cg_dataset_load_idx(cg_dataset *ds, const char *images_path, const char *labels_path);
/* CSV digits: label,p0,...,p783 per line, an optional header line. */
cg_status cg_dataset_load_csv(cg_dataset *ds, const char *path);
/* Keeps only the listed classes (by name), renumbered in the order given. */
cg_status cg_dataset_select_classes(cg_dataset *ds, const char *const *names, int n);
void cg_dataset_free(cg_dataset *ds);
/*
 * A batch: rows idx[0..n) of ds->x as a new [n, C*H*W] tensor, the article's
 * train_x[idx]. Made from ds->pixels when there are some (pixel / 255 per
 * batch, the same bits as x's rows, from a quarter of the memory), else
 * cg_tensor_index_select(ds->x, idx, n), which also records the gather for
 * backward when x requires grad. NULL + cg_last_error on a bad index.
 */
cg_tensor *cg_dataset_batch(const cg_dataset *ds, const int64_t *idx, int64_t n);
/* The rows of ds->x whose label is class c, [count, C*H*W] (count may be 0):
 * the book's stacked_threes; a view when the loader kept them together (a
 * folder's classes are), else a gathered copy (without x, one made from the
 * pixels, the same bits). NULL only on failure. */
cg_tensor *cg_dataset_class_rows(const cg_dataset *ds, int c, int64_t *count);
/*
 * The mean image of class c, [C*H*W] (the article's stacked_threes.mean(0)):
 * from ds->pixels when there are some - each pixel's exact integer sum,
 * divided once in double and rounded to float - else the mean of x's rows
 * of that class. NULL + cg_last_error for a bad class or one with no images.
 */
cg_tensor *cg_dataset_mean_image(const cg_dataset *ds, int c);

/* One PNG file as 8-bit gray pixels (malloc'd, *w x *h). */
cg_status cg_png_read_gray(const char *path, uint8_t **pixels, int64_t *width, int64_t *height);

/* An image of 8-bit pixels: `channels` planes of height x width, one after
 * the other (CHW; for RGB the R plane, then G, then B). */
typedef struct cg_image {
    uint8_t *pixels; /* channels * height * width bytes */
    int64_t width, height;
    int channels;
} cg_image;

/*
 * One PNG file as img->channels planes (pixels malloc'd, the rest set):
 * 1 reads it gray (as cg_png_read_gray), 3 as RGB (gray replicated to
 * three planes, alpha dropped as PIL's convert("RGB") drops it), 0 as
 * the file is - 3 for a PNG with colour, else 1 (see
 * cg_dataset_load_folder).
 */
cg_status cg_png_read_image(const char *path, int channels, cg_image *img);
/*
 * One PNG file as an item for a model whose items have the shape in_shape
 * (in_ndim dimensions, as cg_model's): [C, H, W] takes a W x H image,
 * read with C channels (1 or 3); a flat [n] takes a w x h image read gray
 * when n = w*h, as RGB when n = 3*w*h. *pixels (malloc'd) gets the item's
 * values; a PNG of another size is CG_ERR_SHAPE, naming both.
 */
cg_status cg_png_read_item(const char *path, const int64_t *in_shape, int in_ndim,
                           uint8_t **pixels);
cg_status cg_png_write_gray(const char *path, const uint8_t *pixels, int64_t width, int64_t height);

/*
 * fastai's labels.csv: `name,label` per line (an optional header line),
 * name a path relative to the CSV's folder ("train/3/7.png"), label an
 * integer >= 0. Rows keep the file's order.
 */
typedef struct cg_labels {
    int64_t n;
    char **names;     /* n names, as written (surrounding quotes removed) */
    int *labels;      /* n labels                                         */
    void *internal;   /* the names' storage and a sorted index            */
} cg_labels;

cg_status cg_read_labels_csv(const char *path, cg_labels *labels);
/* The label of `name` (binary search), or -1 if it is not listed. */
int cg_labels_find(const cg_labels *labels, const char *name);
void cg_labels_free(cg_labels *labels);

/*
 * DataLoader over item indices 0..n-1, like fastai's: batches of
 * batch_size, a fresh permutation each epoch when shuffling (from its own
 * generator seeded with `seed`), the last partial batch kept unless
 * drop_last. Defaults as fastai: shuffle off, drop_last off.
 */
typedef struct cg_dataloader {
    int64_t n, batch_size, pos;
    bool shuffle, drop_last;
    int64_t *order;
    cg_rng rng;
} cg_dataloader;

cg_status cg_dataloader_init(cg_dataloader *dl, int64_t n, int64_t batch_size,
                             bool shuffle, bool drop_last, uint64_t seed);
void cg_dataloader_free(cg_dataloader *dl);
int64_t cg_dataloader_num_batches(const cg_dataloader *dl);
/* Starts an epoch (reshuffling when shuffle is on). */
void cg_dataloader_reset(cg_dataloader *dl);
/* Next batch's indices: *idx points into the loader, *count items.
 * Returns false at the end of the epoch. */
bool cg_dataloader_next(cg_dataloader *dl, const int64_t **idx, int64_t *count);

/* ------------------------------------------------------------------ */
/* Augmentation (src/data/augment.c)                                   */
/* ------------------------------------------------------------------ */

/*
 * Random affine transforms of training images, as fastai's batch_tfms
 * (aug_transforms' rotate, zoom and a translation): each image of a batch
 * gets its own rotation by an angle in [-max_rotate_deg, max_rotate_deg]
 * about its centre, a zoom by a factor in [min_scale, max_scale] and a
 * shift by (dx, dy), each in [-max_shift, max_shift] pixels, all uniform.
 * Pixels are sampled bilinearly; what comes from outside the image is 0
 * (MNIST's background). The draws are a hash of (seed, step, item), so a
 * batch's result depends on neither the thread count nor the order the
 * images are done in. A zero config (cg_augment_enabled false) changes
 * nothing.
 */
typedef struct cg_augment {
    float max_shift;            /* pixels, >= 0                            */
    float max_rotate_deg;       /* degrees, 0..180                         */
    float min_scale, max_scale; /* zoom range; both 0: no zoom (1)         */
    uint64_t seed;
} cg_augment;

/* One image's transform: output pixel p shows the input at
 * c + R(-angle) (p - c - (dx, dy)) / scale, c the image's centre. */
typedef struct cg_affine {
    float dx, dy, angle_deg, scale;
} cg_affine;

/* Whether a (may be NULL) changes images at all. */
bool cg_augment_enabled(const cg_augment *a);
/* CG_OK, or CG_ERR_ARG naming the bad field (op names the caller). */
cg_status cg_augment_check(const cg_augment *a, const char *op);
/* The transform item `item` of training step `step` gets. */
cg_affine cg_augment_draw(const cg_augment *a, uint64_t step, int64_t item);
/* dst = src under t, for an image of channels planes of height x width
 * (src and dst must not overlap). */
void cg_affine_warp(const cg_affine *t, const float *src, float *dst, int64_t channels,
                    int64_t height, int64_t width);
/*
 * Transforms n images x[n, channels*height*width] in place, image i with
 * cg_augment_draw(a, step, first_item + i) (first_item: the batch's place
 * in a larger one, 0 for a whole batch). Parallel over images.
 */
cg_status cg_augment_batch(const cg_augment *a, uint64_t step, int64_t first_item, float *x,
                           int64_t n, int64_t channels, int64_t height, int64_t width);

/* ------------------------------------------------------------------ */
/* Getting datasets (src/data/fetch.c, locate.c)                       */
/* ------------------------------------------------------------------ */

/*
 * Like fastai's untar_data: a known name or a URL is downloaded once into
 * the cache, unpacked, and reused from then on.
 *
 * Known names (fastai's URLs):
 *   mnist_sample  https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz
 *                 (train/{3,7}/, valid/{3,7}/, labels.csv)
 *   mnist_tiny    https://s3.amazonaws.com/fast-ai-sample/mnist_tiny.tgz
 *   mnist         https://s3.amazonaws.com/fast-ai-imageclas/mnist_png.tgz
 *                 (PNGs: training/0..9/, testing/0..9/)
 * Any http://, https:// or file:// URL of a .tgz/.tar.gz/.tar.bz2/
 * .tar.xz/.tar/.zip works too; its cache folder is the file name less the
 * extension (.../mnist_tiny.tgz -> mnist_tiny) unless options name one.
 * With CGRAD_MIRROR=BASE set, known names are fetched from BASE/FILE
 * instead (FILE: the URL's last part, e.g. mnist_sample.tgz), for machines
 * that reach only a local mirror.
 *
 * The result is CACHE/NAME, the dataset root: fastai's archives hold one
 * top folder, which becomes that root. It appears by one atomic rename
 * after the archive is downloaded, verified and unpacked, so an
 * interrupted run never leaves a half dataset under NAME. Archive entries
 * that would land outside it (absolute paths, "..", links pointing out),
 * and devices, are refused along with the whole archive.
 * A failure's message names the URL and curl's reason and says how to use
 * data already on disk instead.
 */

/* Default download size limit: a lying server cannot fill the disk. */
#define CG_FETCH_MAX_BYTES ((int64_t)2 << 30)

/* All zero (or NULL options) means the defaults. */
typedef struct cg_fetch_options {
    const char *cache_dir;   /* NULL: cg_cache_dir()                          */
    const char *name;        /* cache folder name; NULL: the known name or the
                                URL's file name less its extension            */
    bool quiet;              /* no progress bar (one is drawn on stderr only
                                when stderr is a terminal)                    */
    bool force;              /* download again even if cached                 */
    int64_t expected_size;   /* archive bytes; 0: unknown (known names have one) */
    const char *sha256;      /* archive SHA-256, 64 hex digits; NULL: unknown */
    int64_t max_bytes;       /* download limit; 0: CG_FETCH_MAX_BYTES         */
    int connect_timeout_s;   /* 0: 30                                         */
    int stall_timeout_s;     /* give up when under 1000 bytes/s this long; 0: 60 */
} cg_fetch_options;

/* Writes the dataset root into out_dir. CG_ERR_NET (download), CG_ERR_FORMAT
 * (size, SHA-256 or archive refused), CG_ERR_IO (cache), CG_ERR_ARG. */
cg_status cg_fetch(const char *name_or_url, char *out_dir, size_t out_size,
                   const cg_fetch_options *opt);

/* The cache folder: $CGRAD_HOME, else $XDG_CACHE_HOME/cgrad, else
 * ~/.cache/cgrad. Returns buf, or NULL (and an error) if it does not fit.
 * It is not created here; cg_fetch creates it. */
const char *cg_cache_dir(char *buf, size_t size);

/* The URL of a known dataset name, NULL if unknown. */
const char *cg_dataset_url(const char *name);
/* The i-th known dataset name (0, 1, ...), NULL past the end. */
const char *cg_dataset_name(int i);

/*
 * Finds dataset `name` (e.g. "mnist_sample") for a program, first match wins:
 *   1. explicit_path (a --data PATH) if not NULL/empty: it must exist,
 *      otherwise an error naming it (no fallback: the user asked for it);
 *   2. $CGRAD_DATA/NAME, if it exists;
 *   3. CACHE/NAME, if it exists;
 *   4. cg_fetch(name) if allow_fetch and the name is known.
 * When nothing is found, ONE message says where it looked, the URL and
 * why the download failed (or that fetching is off), and how to point
 * cgrad at data on disk (--data PATH, or CGRAD_DATA=DIR holding NAME/).
 */
cg_status cg_locate_dataset(const char *name, const char *explicit_path, bool allow_fetch,
                            char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* CGRAD_DATA_H_PUBLIC */
