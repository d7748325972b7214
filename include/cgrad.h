/*
 * cgrad.h - the whole public API of cgrad, a small deep-learning engine in C.
 *
 * cgrad retells fastbook chapter 4 ("training a digit classifier") in C:
 * float32 tensors with NumPy broadcasting, reverse-mode autograd, SGD, a
 * shuffling DataLoader, MNIST loaders and a CLI on top.
 *
 * Conventions
 *  - Every public name starts with `cg_`.
 *  - Tensors are contiguous, row-major float32, rank 0..CG_MAX_DIMS.
 *  - Errors: a function that builds a tensor returns NULL on failure; one
 *    that does anything else returns a cg_status. Either way the reason is
 *    in cg_last_error() (per thread), naming the op and the shapes, e.g.
 *    "matmul: cannot multiply 64x784 by 30x1". Every op given a NULL input
 *    returns NULL without touching the message, so a whole expression can
 *    be written first and checked once at the end. Nothing aborts on bad
 *    input.
 *
 * Memory: reference counts plus scopes (like an autorelease pool).
 *  - A tensor has a reference count. cg_tensor_retain() adds one,
 *    cg_tensor_release() drops one and frees the tensor at zero. A tensor
 *    made by an op holds a reference to each of its inputs (the autograd
 *    graph), so releasing the loss of a step frees that step's whole graph.
 *  - While a scope is open (cg_scope_begin), every new tensor's first
 *    reference belongs to the innermost scope, and cg_scope_end() drops it.
 *    So a training step is: begin, build the graph, backward, update, end -
 *    and all intermediates are gone. Retain a tensor to keep it past its
 *    scope. With no scope open, the caller owns the first reference.
 *  - Freed buffers go to a small per-thread pool, so a training loop whose
 *    shapes repeat does not call malloc in the steady state.
 */
#ifndef CGRAD_H
#define CGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CG_VERSION_MAJOR 0
#define CG_VERSION_MINOR 2
#define CG_VERSION_PATCH 0
#define CG_VERSION "0.2.0"

/* Highest tensor rank. */
#define CG_MAX_DIMS 4

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

typedef enum cg_status {
    CG_OK = 0,
    CG_ERR_SHAPE,   /* shapes do not fit the op                   */
    CG_ERR_ARG,     /* a bad argument (dim out of range, ...)     */
    CG_ERR_NOMEM,   /* an allocation failed or was too large      */
    CG_ERR_IO,      /* a file could not be opened, read, written  */
    CG_ERR_FORMAT,  /* a file's contents are not what they claim  */
    CG_ERR_NET,     /* a download failed                          */
    CG_ERR_STATE    /* the call does not fit the object's state   */
} cg_status;

/* The message of the last failure on this thread ("" if none). */
const char *cg_last_error(void);
/* The status of the last failure on this thread (CG_OK if none). */
cg_status cg_last_status(void);
void cg_clear_error(void);
/* Records a failure; returns `status` so callers can `return cg_fail(...)`. */
cg_status cg_fail(cg_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------------------ */
/* Random numbers                                                      */
/* ------------------------------------------------------------------ */

/*
 * PCG32 (O'Neill 2014, "PCG-XSH-RR" 64-bit state, 32-bit output) - the same
 * integer sequence on every platform. Uniform floats are the top 24 bits
 * times 2^-24, so in [0, 1). Normals use the Box-Muller transform on two
 * uniforms in double precision, returning both values of each pair.
 */
typedef struct cg_rng {
    uint64_t state;
    uint64_t inc;
    double spare;      /* second Box-Muller value, if has_spare */
    bool has_spare;
} cg_rng;

void cg_rng_seed(cg_rng *rng, uint64_t seed);
uint32_t cg_rng_u32(cg_rng *rng);
/* Uniform integer in [0, bound), without modulo bias. bound > 0. */
uint32_t cg_rng_below(cg_rng *rng, uint32_t bound);
float cg_rng_uniform(cg_rng *rng);
float cg_rng_normal(cg_rng *rng);
/* The generator used by cg_tensor_rand/randn when given NULL. */
cg_rng *cg_rng_global(void);
void cg_manual_seed(uint64_t seed);

/* ------------------------------------------------------------------ */
/* Tensors                                                             */
/* ------------------------------------------------------------------ */

typedef struct cg_tensor cg_tensor;
typedef struct cg_op cg_op; /* an entry of the op table (src/autograd) */

/* Fields are public to read; change them only through the API. */
struct cg_tensor {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    int64_t numel;
    float *data;          /* contiguous, row-major                      */
    float *grad;          /* NULL until backward reaches this tensor    */
    bool requires_grad;

    /* internals */
    int refcount;
    struct cg_buffer *buffer; /* shared by a tensor and its views */
    const cg_op *op;          /* the op that made it (NULL for a leaf) */
    cg_tensor *src[3];        /* the op's inputs, referenced         */
    float fparam;             /* op parameter (pow exponent, ...)     */
    int64_t iparam[CG_MAX_DIMS + 1];
    void *aux;                /* op-owned saved state, freed with it  */
    uint32_t visit;           /* backward's topological-sort mark     */
};

/* Makers. `shape` has `ndim` entries; ndim 0 makes a scalar. */
cg_tensor *cg_tensor_new(const int64_t *shape, int ndim); /* uninitialised */
cg_tensor *cg_tensor_zeros(const int64_t *shape, int ndim);
cg_tensor *cg_tensor_ones(const int64_t *shape, int ndim);
cg_tensor *cg_tensor_full(const int64_t *shape, int ndim, float value);
cg_tensor *cg_tensor_from_data(const float *data, const int64_t *shape, int ndim);
cg_tensor *cg_tensor_scalar(float value);
cg_tensor *cg_tensor_arange(float start, float stop, float step);
/* rng NULL: the global generator. */
cg_tensor *cg_tensor_rand(const int64_t *shape, int ndim, cg_rng *rng);
cg_tensor *cg_tensor_randn(const int64_t *shape, int ndim, cg_rng *rng);

cg_tensor *cg_tensor_retain(cg_tensor *t);
void cg_tensor_release(cg_tensor *t);

/* Value of a one-element tensor (NAN and an error otherwise). */
float cg_tensor_item(const cg_tensor *t);
/* Writes "[12396, 784]" into buf. */
const char *cg_shape_str(const cg_tensor *t, char *buf, size_t size);
bool cg_tensor_same_shape(const cg_tensor *a, const cg_tensor *b);

/* Autograd flags. */
cg_tensor *cg_tensor_requires_grad(cg_tensor *t, bool on); /* returns t */
void cg_tensor_zero_grad(cg_tensor *t);
/* A new tensor sharing t's data, outside any graph. */
cg_tensor *cg_tensor_detach(cg_tensor *t);

/* Scopes (see the top of this file). */
void cg_scope_begin(void);
void cg_scope_end(void);
/* Ends the innermost scope but keeps `result`, handing it to the enclosing
 * scope (or, with none open, to the caller): how a function built from
 * several ops returns its result and frees its intermediates.
 *   cg_scope_begin(); ...; return cg_scope_end_keep(out);                */
cg_tensor *cg_scope_end_keep(cg_tensor *result);

/* Grad mode: with it off, ops record no graph (updates, validation). */
bool cg_grad_enabled(void);
/* Sets the mode, returns the previous one. */
bool cg_set_grad_enabled(bool on);

/* Reverse-mode autodiff from a one-element tensor: adds d(loss)/d(leaf)
 * into every leaf's grad that requires it (so calling it twice doubles
 * them, as in PyTorch). Intermediate gradients are freed afterwards. */
cg_status cg_backward(cg_tensor *loss);

/* ---- shape and layout ---- */

/* A view with a new shape (one entry may be -1, inferred). */
cg_tensor *cg_tensor_reshape(cg_tensor *t, const int64_t *shape, int ndim);
cg_tensor *cg_tensor_unsqueeze(cg_tensor *t, int dim);
/* Removes dim (which must be 1); dim -1..: negative counts from the end. */
cg_tensor *cg_tensor_squeeze(cg_tensor *t, int dim);
/* 2-D transpose, like t.T. */
cg_tensor *cg_tensor_transpose(cg_tensor *t);
/* Rows [start, end) along dim 0, as a view (a batch). */
cg_tensor *cg_tensor_rows(cg_tensor *t, int64_t start, int64_t end);
/* Rows idx[0..n) along dim 0, copied (a shuffled batch). */
cg_tensor *cg_tensor_index_select(cg_tensor *t, const int64_t *idx, int64_t n);
/* Joins n tensors of one shape along a new dim 0 / an existing dim. */
cg_tensor *cg_tensor_stack(cg_tensor *const *ts, int n);
cg_tensor *cg_tensor_cat(cg_tensor *const *ts, int n, int dim);

/* ---- elementwise (binary ones broadcast like NumPy/PyTorch) ---- */
cg_tensor *cg_tensor_add(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_sub(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_mul(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_div(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_neg(cg_tensor *a);
cg_tensor *cg_tensor_exp(cg_tensor *a);
cg_tensor *cg_tensor_log(cg_tensor *a);
cg_tensor *cg_tensor_abs(cg_tensor *a);
cg_tensor *cg_tensor_sqrt(cg_tensor *a);
cg_tensor *cg_tensor_pow(cg_tensor *a, float exponent);
cg_tensor *cg_tensor_sigmoid(cg_tensor *a);
cg_tensor *cg_tensor_relu(cg_tensor *a);
/* max(a, value) elementwise: the article's res.max(tensor(0.0)). */
cg_tensor *cg_tensor_maximum_scalar(cg_tensor *a, float value);
/* Comparisons give 0/1 floats and carry no gradient. */
cg_tensor *cg_tensor_gt(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_lt(cg_tensor *a, cg_tensor *b);
cg_tensor *cg_tensor_eq(cg_tensor *a, cg_tensor *b);
/* cond != 0 ? a : b, all three broadcast together. */
cg_tensor *cg_tensor_where(cg_tensor *cond, cg_tensor *a, cg_tensor *b);

/* ---- reductions ---- */
cg_tensor *cg_tensor_sum(cg_tensor *t);  /* all elements -> scalar */
cg_tensor *cg_tensor_mean(cg_tensor *t);
/* Over the dims listed (negative ones count from the end). */
cg_tensor *cg_tensor_sum_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim);
cg_tensor *cg_tensor_mean_dims(cg_tensor *t, const int *dims, int ndims, bool keepdim);
/* Max along dim; the gradient flows to the (first) max element. */
cg_tensor *cg_tensor_max(cg_tensor *t, int dim, bool keepdim);
/* Index of the first max along dim, as floats; no gradient. */
cg_tensor *cg_tensor_argmax(cg_tensor *t, int dim, bool keepdim);

/* ---- distances ---- */
typedef enum cg_distance {
    CG_DIST_L1 = 1,  /* mean |x - y|: the book's mnist_distance, (a-b).abs().mean(-1) */
    CG_DIST_RMSE = 2 /* sqrt(mean (x - y)^2): F.mse_loss(a, b).sqrt() */
} cg_distance;
/* How far each row of x [N, P] is from y ([P] or [1, P]): [N]. One fused
 * pass per row (src/ops/distance.c); differentiable in x and y. */
cg_tensor *cg_tensor_row_distance(cg_tensor *x, cg_tensor *y, cg_distance kind);

/* ---- linear algebra ---- */
/* 2-D @ 2-D, 1-D @ 2-D, 2-D @ 1-D and 1-D @ 1-D, like torch.matmul. */
cg_tensor *cg_tensor_matmul(cg_tensor *a, cg_tensor *b);

/*
 * The GEMM kernel behind matmul, public for benchmarks and embedding:
 * C = alpha * op(A) @ op(B) + beta * C, row-major, op(X) = X or X^T.
 * op(A) is MxK, op(B) is KxN, C is MxN; lda/ldb/ldc are row strides.
 */
void cg_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc);
/* The name of the GEMM kernel chosen at run time ("avx2-fma", "generic", or
 * "openblas" in a build configured with -DCGRAD_BLAS=openblas). */
const char *cg_gemm_kernel_name(void);

/* Threads used by kernels (OpenMP); 0 = OpenMP's default. */
void cg_set_num_threads(int n);
int cg_get_num_threads(void);

/* ------------------------------------------------------------------ */
/* Losses and optimiser                                                */
/* ------------------------------------------------------------------ */

/* The book's mnist_loss: mean(where(targets == 1, 1 - sigmoid(p), sigmoid(p))). */
cg_tensor *cg_mnist_loss(cg_tensor *preds, cg_tensor *targets);
/* Binary cross-entropy on logits, stable for large |p|:
 * mean(max(p,0) - p*t + log(1 + exp(-|p|))). */
cg_tensor *cg_bce_with_logits(cg_tensor *preds, cg_tensor *targets);
/* Fraction of rows where (sigmoid(p) > 0.5) == (t == 1), the book's batch_accuracy. */
float cg_binary_accuracy(const cg_tensor *preds, const cg_tensor *targets);

/* Plain SGD: p -= lr * p.grad, then p.grad = 0, for each parameter. */
void cg_sgd_step(cg_tensor *const *params, int n, float lr);

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */

#define CG_MAX_CLASSES 64
#define CG_CLASS_NAME_MAX 32

/* Images and labels: the article's train_x / train_y. */
typedef struct cg_dataset {
    cg_tensor *x;       /* [N, H*W] floats in [0, 1] (pixel / 255)        */
    cg_tensor *y;       /* [N] class index (0..n_classes-1) as a float    */
    /* The 8-bit pixels x was made from, [N, H*W] (x = pixels / 255), as
     * torchvision's MNIST keeps them; owned (malloc), or NULL. Every loader
     * sets them; cg_dataset_batch reads them. A program that changes x in
     * place must free them and set NULL, and batches then come from x. */
    uint8_t *pixels;
    int64_t height, width;
    int n_classes;
    char class_names[CG_MAX_CLASSES][CG_CLASS_NAME_MAX];
} cg_dataset;

/*
 * A folder of class folders (fastai's layout): DIR/<class>/<image>.png.
 * Classes are the sub-folder names, sorted; files are taken in sorted
 * order, images only. Every PNG becomes 8-bit gray (see src/data/png.c).
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
/* MNIST IDX files (gzip or raw). */
cg_status cg_dataset_load_idx(cg_dataset *ds, const char *images_path, const char *labels_path);
/* CSV digits: label,p0,...,p783 per line, an optional header line. */
cg_status cg_dataset_load_csv(cg_dataset *ds, const char *path);
/* Keeps only the listed classes (by name), renumbered in the order given. */
cg_status cg_dataset_select_classes(cg_dataset *ds, const char *const *names, int n);
void cg_dataset_free(cg_dataset *ds);
/*
 * A batch: rows idx[0..n) of ds->x as a new [n, H*W] tensor, the article's
 * train_x[idx]. Made from ds->pixels when there are some (pixel / 255 per
 * batch, the same bits as x's rows, from a quarter of the memory), else
 * cg_tensor_index_select(ds->x, idx, n), which also records the gather for
 * backward when x requires grad. NULL + cg_last_error on a bad index.
 */
cg_tensor *cg_dataset_batch(const cg_dataset *ds, const int64_t *idx, int64_t n);
/* The rows of ds->x whose label is class c, [count, H*W] (count may be 0):
 * the book's stacked_threes; a view when the loader kept them together (a
 * folder's classes are), else a gathered copy. NULL only on failure. */
cg_tensor *cg_dataset_class_rows(const cg_dataset *ds, int c, int64_t *count);
/*
 * The mean image of class c, [H*W] (the article's stacked_threes.mean(0)):
 * from ds->pixels when there are some - each pixel's exact integer sum,
 * divided once in double and rounded to float - else the mean of x's rows
 * of that class. NULL + cg_last_error for a bad class or one with no images.
 */
cg_tensor *cg_dataset_mean_image(const cg_dataset *ds, int c);

/* One PNG file as 8-bit gray pixels (malloc'd, *w x *h). */
cg_status cg_png_read_gray(const char *path, uint8_t **pixels, int64_t *width, int64_t *height);
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
/* Models (src/nn)                                                     */
/* ------------------------------------------------------------------ */

typedef enum cg_model_kind {
    CG_MODEL_LINEAR = 1, /* the article's linear1: x @ w + b            */
    CG_MODEL_MLP = 2     /* the book's simple_net: 784 -> hidden -> ReLU -> out */
} cg_model_kind;

typedef struct cg_model {
    cg_model_kind kind;
    int64_t n_inputs, n_hidden, n_outputs; /* n_hidden 0 for linear     */
    int n_params;
    cg_tensor *params[4];     /* linear: w [in,out], b [out]; mlp: w1, b1, w2, b2 */
    int n_classes;            /* class names the outputs stand for        */
    char class_names[CG_MAX_CLASSES][CG_CLASS_NAME_MAX];
} cg_model;

/* How the weights start. CG_INIT_NORMAL is the article's init_params:
 * randn * std. CG_INIT_PYTORCH is nn.Linear's default (uniform in
 * +-1/sqrt(fan_in) for weights and biases), what the book's simple_net gets. */
typedef enum cg_init { CG_INIT_NORMAL = 1, CG_INIT_PYTORCH = 2 } cg_init;

/* NULL + cg_last_error on failure. n_hidden is ignored for LINEAR. */
cg_model *cg_model_new(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden,
                       int64_t n_outputs, cg_init init, float std, cg_rng *rng);
void cg_model_free(cg_model *m);
/* x [N, n_inputs] -> [N, n_outputs] (raw logits). */
cg_tensor *cg_model_forward(cg_model *m, cg_tensor *x);
/* Atomic write (temp file, fsync, rename) of the documented format in src/nn/model_file.c. */
cg_status cg_model_save(const cg_model *m, const char *path);
cg_model *cg_model_load(const char *path);

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

/* @@FETCH API@@ */

#ifdef __cplusplus
}
#endif
#endif /* CGRAD_H */
