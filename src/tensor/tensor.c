/*
 * tensor.c - making, sharing and freeing tensors.
 *
 * A tensor is a shape plus a pointer into a reference-counted buffer; views
 * (reshape, a batch of rows) share the buffer. Tensors themselves are
 * reference counted: an op's result holds a reference to each input, which
 * is what keeps the autograd graph alive until the loss is released.
 *
 * Buffers and tensor structs are recycled through small per-thread pools,
 * so a training loop whose shapes repeat every step stops calling malloc
 * after its first step.
 */
#include "cgrad_internal.h"

#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Per-thread pools                                                    */
/* ------------------------------------------------------------------ */

#define POOL_BUFFERS 256
#define POOL_MAX_BYTES ((int64_t)1 << 30)
#define POOL_STRUCTS 1024

typedef struct pool {
    float *ptr[POOL_BUFFERS];
    int64_t len[POOL_BUFFERS];
    int n;
    int64_t bytes;
    cg_tensor *structs[POOL_STRUCTS];
    int n_structs;
    bool registered;
} pool;

static _Thread_local pool the_pool;
static pool *main_pool; /* the first thread's pool, emptied at exit */

static void pool_empty(pool *p) {
    for (int i = 0; i < p->n; i++) free(p->ptr[i]);
    p->n = 0;
    p->bytes = 0;
    for (int i = 0; i < p->n_structs; i++) free(p->structs[i]);
    p->n_structs = 0;
}

static void scopes_free(void);
static void release_stack_free(void);

static void pool_empty_main(void) {
    if (main_pool) pool_empty(main_pool);
    scopes_free();
}

/*
 * What a thread other than the first keeps (its pool, its scopes' arrays,
 * the autograd's work lists) is freed when it ends, by the destructor of a
 * pthread key it is registered with on its first use of the pool: a
 * program that runs cgrad on threads of its own leaks nothing. The first
 * thread's go at exit (atexit above; key destructors do not run for it).
 */
static pthread_key_t thread_key;
static bool thread_key_ok;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_end(void *arg) {
    pool_empty(arg);
    scopes_free();
    release_stack_free();
    cg_backward_thread_free();
}
static void thread_key_init(void) {
    thread_key_ok = pthread_key_create(&thread_key, thread_end) == 0;
}

static pool *get_pool(void) {
    pool *p = &the_pool;
    if (!p->registered) {
        p->registered = true;
        if (!main_pool) {
            main_pool = p;
            atexit(pool_empty_main);
        } else {
            pthread_once(&thread_key_once, thread_key_init);
            if (thread_key_ok) (void)pthread_setspecific(thread_key, p);
        }
    }
    return p;
}

float *cg_floats_alloc(int64_t n) {
    if (n < 0 || n > CG_MAX_NUMEL) return NULL;
    pool *p = get_pool();
    /* Newest first: the buffer freed last is the likeliest to be hot in cache. */
    for (int i = p->n - 1; i >= 0; i--) {
        if (p->len[i] == n) {
            float *f = p->ptr[i];
            p->bytes -= n * (int64_t)sizeof(float);
            p->n--;
            p->ptr[i] = p->ptr[p->n];
            p->len[i] = p->len[p->n];
            return f;
        }
    }
    /* 64-byte alignment suits AVX-512 loads and cache lines. */
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes);
}

/*
 * Maps in every page of a fresh buffer before it is filled. A new page
 * costs a fault when first written, and on a virtual machine a fault costs
 * microseconds: filling MNIST_SAMPLE's 39 MB training tensor spent more
 * time faulting than copying. MADV_POPULATE_WRITE (Linux 5.14) maps a range
 * in one call, about twice as fast with the range cut between the threads
 * (bench/README.md, "Figures behind source comments"). Where the kernel
 * lacks it, nothing happens and the pages fault in as they are written, as
 * before.
 */
void cg_prefault(void *buf, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
    const long page = sysconf(_SC_PAGESIZE);
    if (!buf || page <= 0 || bytes < 64 * (size_t)page) return;
    const uintptr_t lo = ((uintptr_t)buf + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    const uintptr_t hi = ((uintptr_t)buf + bytes) & ~((uintptr_t)page - 1);
    const int64_t pages = (int64_t)((hi - lo) / (uintptr_t)page);
    const int nt = cg_get_num_threads() < 2 ? 1 : 2;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        const uintptr_t a = lo + (uintptr_t)(pages * t / nt) * (uintptr_t)page;
        const uintptr_t b = lo + (uintptr_t)(pages * (t + 1) / nt) * (uintptr_t)page;
        if (b > a) (void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
    }
#else
    (void)buf, (void)bytes;
#endif
}

void cg_floats_free(float *f, int64_t n) {
    if (!f) return;
    pool *p = get_pool();
    int64_t bytes = n * (int64_t)sizeof(float);
    if (p->n < POOL_BUFFERS && p->bytes + bytes <= POOL_MAX_BYTES) {
        p->ptr[p->n] = f;
        p->len[p->n] = n;
        p->n++;
        p->bytes += bytes;
        return;
    }
    free(f);
}

static cg_tensor *struct_alloc(void) {
    pool *p = get_pool();
    cg_tensor *t = p->n_structs > 0 ? p->structs[--p->n_structs] : malloc(sizeof *t);
    if (t) memset(t, 0, sizeof *t);
    return t;
}

static void struct_free(cg_tensor *t) {
    pool *p = get_pool();
    if (p->n_structs < POOL_STRUCTS)
        p->structs[p->n_structs++] = t;
    else
        free(t);
}

/* ------------------------------------------------------------------ */
/* Scopes                                                              */
/* ------------------------------------------------------------------ */

bool cg_tensor_list_push(cg_tensor_list *l, cg_tensor *t) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        cg_tensor **items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return false;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = t;
    return true;
}

typedef cg_tensor_list scope;

#define MAX_SCOPE_DEPTH 64
static _Thread_local scope scopes[MAX_SCOPE_DEPTH];
static _Thread_local int scope_depth;

void cg_scope_begin(void) {
    /* Deeper nesting than this is a caller bug; we keep counting so that
     * begin/end stay paired, and overflowing scopes leave ownership with
     * the caller. */
    scope_depth++;
}

void cg_scope_end(void) {
    if (scope_depth <= 0) return;
    int d = --scope_depth;
    if (d >= MAX_SCOPE_DEPTH) return;
    scope *s = &scopes[d];
    /* Release newest first: results go before the inputs they reference. */
    for (int64_t i = s->n - 1; i >= 0; i--) cg_tensor_release(s->items[i]);
    s->n = 0; /* the items array is kept for the next step */
}

/* At exit: the main thread's scope arrays (see pool_empty_main). */
static void scopes_free(void) {
    for (int i = 0; i < MAX_SCOPE_DEPTH; i++) {
        free(scopes[i].items);
        scopes[i] = (scope){0};
    }
}

static bool scope_adopt(cg_tensor *t);

cg_tensor *cg_scope_end_keep(cg_tensor *result) {
    cg_tensor_retain(result);
    cg_scope_end();
    if (result && !scope_adopt(result)) {
        cg_tensor_release(result);
        cg_fail(CG_ERR_NOMEM, "scope: out of memory");
        return NULL;
    }
    return result;
}

/* Hands the first reference of t to the innermost scope, if any. */
static bool scope_adopt(cg_tensor *t) {
    if (scope_depth == 0) return true;
    if (scope_depth > MAX_SCOPE_DEPTH) return true;
    return cg_tensor_list_push(&scopes[scope_depth - 1], t);
}

/* ------------------------------------------------------------------ */
/* Grad mode                                                           */
/* ------------------------------------------------------------------ */

static _Thread_local bool grad_disabled;

bool cg_grad_enabled(void) { return !grad_disabled; }

bool cg_set_grad_enabled(bool on) {
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

/* ------------------------------------------------------------------ */
/* Shapes                                                              */
/* ------------------------------------------------------------------ */

int64_t cg_shape_numel(const char *op, const int64_t *shape, int ndim) {
    if (ndim < 0 || ndim > CG_MAX_DIMS) {
        cg_fail(CG_ERR_SHAPE, "%s: rank %d is outside 0..%d", op, ndim, CG_MAX_DIMS);
        return -1;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            cg_fail(CG_ERR_SHAPE, "%s: negative size %lld in dim %d", op, (long long)shape[i], i);
            return -1;
        }
        if (shape[i] > 0 && n > CG_MAX_NUMEL / shape[i]) {
            cg_fail(CG_ERR_NOMEM, "%s: shape has more than %lld elements", op,
                    (long long)CG_MAX_NUMEL);
            return -1;
        }
        n *= shape[i];
    }
    return n;
}

const char *cg_dims_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    if (ndim == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    for (int i = 0; i < ndim && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)shape[i]);
    return buf;
}

const char *cg_shape_str(const cg_tensor *t, char *buf, size_t size) {
    size_t used = 0;
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld",
                                 (long long)t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

bool cg_tensor_same_shape(const cg_tensor *a, const cg_tensor *b) {
    if (!a || !b || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

int cg_norm_dim(const char *op, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    if (d < 0 || d >= ndim) {
        cg_fail(CG_ERR_ARG, "%s: dim %d is out of range for a rank-%d tensor", op, dim, ndim);
        return -1;
    }
    return d;
}

/* ------------------------------------------------------------------ */
/* Allocation and lifetime                                             */
/* ------------------------------------------------------------------ */

/* A tensor struct with shape set, no data yet, adopted by the scope. */
static cg_tensor *tensor_shell(const char *op, const int64_t *shape, int ndim) {
    int64_t numel = cg_shape_numel(op, shape, ndim);
    if (numel < 0) return NULL;
    cg_tensor *t = struct_alloc();
    if (!t) {
        cg_fail(CG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->refcount = 1;
    return t;
}

cg_tensor *cg_tensor_alloc(const char *op, const int64_t *shape, int ndim) {
    cg_tensor *t = tensor_shell(op, shape, ndim);
    if (!t) return NULL;
    /* One allocation: the buffer's header in the first 64 bytes, so the
     * data stays 64-byte aligned and both come from (and go back to) the
     * pool together. */
    int64_t alloc = t->numel + CG_BUFFER_HEADER_FLOATS;
    float *mem = cg_floats_alloc(alloc);
    if (!mem) {
        struct_free(t);
        cg_fail(CG_ERR_NOMEM, "%s: cannot allocate %lld floats", op, (long long)t->numel);
        return NULL;
    }
    cg_buffer *b = (cg_buffer *)mem;
    b->data = mem + CG_BUFFER_HEADER_FLOATS;
    b->alloc = alloc;
    b->refcount = 1;
    t->buffer = b;
    t->data = b->data;
    if (!scope_adopt(t)) {
        cg_tensor_release(t);
        cg_fail(CG_ERR_NOMEM, "%s: out of memory", op);
        return NULL;
    }
    return t;
}

cg_tensor *cg_tensor_view_of(cg_tensor *base, const int64_t *shape, int ndim, int64_t offset) {
    cg_tensor *t = tensor_shell("view", shape, ndim);
    if (!t) return NULL;
    t->buffer = base->buffer;
    t->buffer->refcount++;
    t->data = base->data + offset;
    if (!scope_adopt(t)) {
        cg_tensor_release(t);
        cg_fail(CG_ERR_NOMEM, "view: out of memory");
        return NULL;
    }
    return t;
}

/* Records op and its inputs on t when autograd should see it. */
static void link_graph(cg_tensor *t, const cg_op *op, cg_tensor *a, cg_tensor *b, cg_tensor *c) {
    if (grad_disabled || !op || !(cg_wants_grad(a) || cg_wants_grad(b) || cg_wants_grad(c))) return;
    t->op = op;
    t->requires_grad = true;
    cg_tensor *srcs[3] = {a, b, c};
    for (int i = 0; i < 3; i++) t->src[i] = srcs[i] ? cg_tensor_retain(srcs[i]) : NULL;
}

cg_tensor *cg_op_result(const cg_op *op, const int64_t *shape, int ndim, cg_tensor *a,
                        cg_tensor *b, cg_tensor *c) {
    cg_tensor *t = cg_tensor_alloc(op ? op->name : "op", shape, ndim);
    if (t) link_graph(t, op, a, b, c);
    return t;
}

cg_tensor *cg_view_result(const cg_op *op, cg_tensor *base, const int64_t *shape, int ndim,
                          int64_t offset) {
    cg_tensor *t = cg_tensor_view_of(base, shape, ndim, offset);
    if (t) link_graph(t, op, base, NULL, NULL);
    return t;
}

cg_tensor *cg_tensor_retain(cg_tensor *t) {
    if (t) t->refcount++;
    return t;
}

/* Frees the tensors whose count reaches zero, and what they alone held,
 * with an explicit stack so that a long graph cannot overflow the C stack. */
/* cg_tensor_release's work list, kept between calls (freed at thread end). */
static _Thread_local cg_tensor_list release_stack;
static void release_stack_free(void) {
    free(release_stack.items);
    release_stack = (cg_tensor_list){0};
}

void cg_tensor_release(cg_tensor *t) {
    if (!t || --t->refcount > 0) return;
    release_stack.n = 0;
    for (;;) {
        for (int i = 0; i < 3; i++) {
            cg_tensor *s = t->src[i];
            /* Out of memory for the stack (never seen): leak s, not crash. */
            if (s && --s->refcount == 0) (void)cg_tensor_list_push(&release_stack, s);
        }
        free(t->aux);
        cg_floats_free(t->saved, t->n_saved);
        cg_floats_free(t->grad, t->numel);
        if (t->buffer && --t->buffer->refcount == 0)
            cg_floats_free((float *)t->buffer, t->buffer->alloc);
        struct_free(t);
        if (release_stack.n == 0) break;
        t = release_stack.items[--release_stack.n];
    }
    if (release_stack.cap > 4096) { /* do not keep a huge stack around */
        free(release_stack.items);
        release_stack = (cg_tensor_list){0};
    }
}

/* Set when a gradient buffer could not be had, so that cg_backward can
 * report it instead of returning wrong gradients as if all went well. */
static _Thread_local bool grad_alloc_failed;

float *cg_grad_buf(cg_tensor *t) {
    if (!t->grad) {
        t->grad = cg_floats_alloc(t->numel);
        if (t->grad)
            memset(t->grad, 0, (size_t)t->numel * sizeof(float));
        else
            grad_alloc_failed = true;
    }
    return t->grad;
}

bool cg_grad_alloc_failed(bool reset) {
    bool failed = grad_alloc_failed;
    if (reset) grad_alloc_failed = false;
    return failed;
}

/* ------------------------------------------------------------------ */
/* Makers                                                              */
/* ------------------------------------------------------------------ */

cg_tensor *cg_tensor_new(const int64_t *shape, int ndim) {
    return cg_tensor_alloc("tensor", shape, ndim);
}

cg_tensor *cg_tensor_full(const int64_t *shape, int ndim, float value) {
    cg_tensor *t = cg_tensor_alloc("full", shape, ndim);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
    return t;
}

cg_tensor *cg_tensor_zeros(const int64_t *shape, int ndim) {
    return cg_tensor_full(shape, ndim, 0.0f);
}

cg_tensor *cg_tensor_ones(const int64_t *shape, int ndim) {
    return cg_tensor_full(shape, ndim, 1.0f);
}

cg_tensor *cg_tensor_scalar(float value) { return cg_tensor_full(NULL, 0, value); }

cg_tensor *cg_tensor_from_data(const float *data, const int64_t *shape, int ndim) {
    if (!data) {
        cg_fail(CG_ERR_ARG, "from_data: data is NULL");
        return NULL;
    }
    cg_tensor *t = cg_tensor_alloc("from_data", shape, ndim);
    if (t) memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}

cg_tensor *cg_tensor_arange(float start, float stop, float step) {
    if (step == 0.0f || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
        cg_fail(CG_ERR_ARG, "arange: need finite start/stop and a non-zero step");
        return NULL;
    }
    /* Same count as torch.arange: ceil((stop - start) / step), at least 0. */
    double count = ceil(((double)stop - (double)start) / (double)step);
    if (count < 0) count = 0;
    if (count > (double)CG_MAX_NUMEL) {
        cg_fail(CG_ERR_NOMEM, "arange: %.0f elements is too many", count);
        return NULL;
    }
    int64_t n = (int64_t)count;
    cg_tensor *t = cg_tensor_alloc("arange", &n, 1);
    if (t)
        for (int64_t i = 0; i < n; i++) t->data[i] = (float)((double)start + (double)i * step);
    return t;
}

cg_tensor *cg_tensor_rand(const int64_t *shape, int ndim, cg_rng *rng) {
    if (!rng) rng = cg_rng_global();
    cg_tensor *t = cg_tensor_alloc("rand", shape, ndim);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = cg_rng_uniform(rng);
    return t;
}

cg_tensor *cg_tensor_randn(const int64_t *shape, int ndim, cg_rng *rng) {
    if (!rng) rng = cg_rng_global();
    cg_tensor *t = cg_tensor_alloc("randn", shape, ndim);
    if (t)
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = cg_rng_normal(rng);
    return t;
}

/* ------------------------------------------------------------------ */
/* Small accessors                                                     */
/* ------------------------------------------------------------------ */

float cg_tensor_item(const cg_tensor *t) {
    if (!t) return NAN;
    if (t->numel != 1) {
        char s[64];
        cg_fail(CG_ERR_SHAPE, "item: tensor of shape %s has %lld elements, not 1",
                cg_shape_str(t, s, sizeof s), (long long)t->numel);
        return NAN;
    }
    return t->data[0];
}

cg_tensor *cg_tensor_requires_grad(cg_tensor *t, bool on) {
    if (t) t->requires_grad = on;
    return t;
}

void cg_tensor_zero_grad(cg_tensor *t) {
    if (t && t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
}

cg_tensor *cg_tensor_detach(cg_tensor *t) {
    if (!t) return NULL;
    return cg_tensor_view_of(t, t->shape, t->ndim, 0);
}
