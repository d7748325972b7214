/*
 * model.c - a model is a list of layers (PyTorch's nn.Sequential), built
 * from a spec such as "linear:128,relu,linear:10" (layer.h, layers.c).
 *
 * Building goes in three steps, the same for a new model and a loaded one:
 *   1. parse: kinds and arguments of each layer;
 *   2. plan: each layer's output shape from its input's, and the shapes of
 *      its tensors, with nothing allocated (a model file's size is checked
 *      against this before anything is allocated);
 *   3. allocate the tensors, then initialise them (a new model) or read
 *      them (a loaded one).
 * The chapter's two models are presets: linear1 is "linear" (x @ w + b)
 * and simple_net "linear:30,relu,linear". Their weights are drawn layer by
 * layer, w before b, from one generator, so a seed fixes the whole model,
 * with the same bits as when they were fixed structs.
 */
#include "nn/layer.h"
#include "util/memory.h"

#include <errno.h>

cg_model *cg_model_alloc(int n_layers) {
    if (n_layers < 1 || n_layers > CG_MODEL_MAX_LAYERS) {
        cg_fail(CG_ERR_ARG, "model: %d layers is outside 1..%d", n_layers, CG_MODEL_MAX_LAYERS);
        return NULL;
    }
    cg_model *m = calloc(1, sizeof *m);
    cg_layer *layers = calloc((size_t)n_layers, sizeof *layers);
    if (!m || !layers) {
        free(m);
        free(layers);
        cg_fail(CG_ERR_NOMEM, "model: out of memory");
        return NULL;
    }
    m->layers = layers;
    m->n_layers = n_layers;
    snprintf(m->name, sizeof m->name, "custom");
    cg_rng_seed(&m->rng, 0);
    return m;
}

void cg_model_free(cg_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_layers; i++) {
        cg_layer *l = &m->layers[i];
        for (int k = 0; k < l->n_params; k++) cg_tensor_release(l->params[k]);
        for (int k = 0; k < l->n_state; k++) cg_tensor_release(l->state[k]);
    }
    free(m->params);
    free(m->layers);
    free(m);
}

/* ------------------------------------------------------------------ */
/* Specs                                                               */
/* ------------------------------------------------------------------ */

/* Layers in a spec: one more than its commas. */
static int count_layers(const char *spec) {
    int n = 1;
    for (const char *p = spec; *p; p++) n += *p == ',';
    return n;
}

/* One layer "name[:arg...]" of len bytes at s into l. */
static cg_status parse_layer(const char *s, size_t len, cg_layer *l) {
    char tok[96];
    if (len == 0) return cg_fail(CG_ERR_ARG, "model: empty layer in the spec (two commas?)");
    if (len >= sizeof tok) return cg_fail(CG_ERR_ARG, "model: layer '%.40s...' is too long", s);
    memcpy(tok, s, len);
    tok[len] = '\0';
    char *save = NULL, *name = strtok_r(tok, ":", &save);
    const cg_layer_kind *kind = name ? cg_layer_kind_find(name) : NULL;
    if (!kind) {
        char known[256] = "";
        for (int k = 0; CG_LAYER_KINDS[k]; k++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "",
                     CG_LAYER_KINDS[k]->name);
        return cg_fail(CG_ERR_ARG, "model: unknown layer '%s' (layers: %s)", name ? name : "",
                       known);
    }
    l->kind = kind;
    for (int a = 0; a < CG_LAYER_MAX_ARGS; a++) l->args[a] = CG_ARG_UNSET;
    for (int a = 0; a < 2; a++) l->fargs[a] = NAN;
    int given = 0;
    for (char *arg; (arg = strtok_r(NULL, ":", &save)); given++) {
        char want = kind->args[given];
        if (!want)
            return cg_fail(CG_ERR_ARG, "model: %.*s: %s takes %d argument%s (%s)", (int)len, s,
                           kind->name, (int)strlen(kind->args),
                           strlen(kind->args) == 1 ? "" : "s", kind->help);
        char *end = NULL;
        errno = 0;
        if (want == 'i') {
            long long v = strtoll(arg, &end, 10);
            if (*end || errno) goto bad;
            l->args[given] = v;
        } else {
            double v = strtod(arg, &end);
            if (*end || errno || !isfinite(v)) goto bad;
            l->fargs[given] = (float)v;
        }
        continue;
    bad:
        return cg_fail(CG_ERR_ARG, "model: %.*s: '%s' is not %s", (int)len, s, arg,
                       want == 'i' ? "a whole number" : "a number");
    }
    if (given < kind->n_required && !(kind == &CG_LAYER_LINEAR && given == 0))
        return cg_fail(CG_ERR_ARG, "model: %.*s needs %d argument%s (%s)", (int)len, s,
                       kind->n_required, kind->n_required == 1 ? "" : "s", kind->help);
    return CG_OK;
}

/* Splits the spec into m's layers (m has count_layers(spec) of them). */
static cg_status parse_spec(const char *spec, cg_model *m) {
    const char *p = spec;
    for (int i = 0; i < m->n_layers; i++) {
        while (*p == ' ') p++;
        size_t len = strcspn(p, ",");
        size_t trim = len;
        while (trim > 0 && p[trim - 1] == ' ') trim--;
        if (parse_layer(p, trim, &m->layers[i]) != CG_OK) return cg_last_status();
        p += len + (p[len] == ',');
    }
    /* A last "linear" with no size gets the model's outputs (filled in by
     * the caller); one elsewhere has nothing to go by. */
    for (int i = 0; i < m->n_layers - 1; i++)
        if (m->layers[i].kind == &CG_LAYER_LINEAR && m->layers[i].args[0] == CG_ARG_UNSET)
            return cg_fail(CG_ERR_ARG, "model: layer %d: linear needs its size (linear:OUT); "
                                       "only the last one may leave it out",
                           i + 1);
    return CG_OK;
}

const char *cg_model_spec(const cg_model *m, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n_layers && used < size; i++) {
        char one[64];
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
                                 cg_layer_spec(&m->layers[i], one, sizeof one));
    }
    return buf;
}

cg_status cg_mlp_spec(const char *hidden, char *buf, size_t size) {
    if (!hidden || !buf || size == 0) return cg_fail(CG_ERR_ARG, "model: needs hidden sizes");
    size_t used = 0;
    buf[0] = '\0';
    const char *p = hidden;
    do {
        char *end = NULL;
        errno = 0;
        long long h = strtoll(p, &end, 10);
        if (end == p || errno || (*end && (*end != ',' || !end[1])) || h < 1 ||
            h > CG_LAYER_MAX_WIDTH)
            return cg_fail(CG_ERR_ARG,
                           "model: hidden sizes '%s' must be whole numbers from 1 to %lld, "
                           "separated by commas (e.g. 256,128)",
                           hidden, (long long)CG_LAYER_MAX_WIDTH);
        used += (size_t)snprintf(buf + used, size - used, "linear:%lld,relu,", h);
        p = *end ? end + 1 : end;
    } while (*p && used < size);
    if (used + sizeof "linear" > size) return cg_fail(CG_ERR_ARG, "model: too many hidden layers");
    snprintf(buf + used, size - used, "linear");
    return CG_OK;
}

/* ------------------------------------------------------------------ */
/* Planning and allocating                                             */
/* ------------------------------------------------------------------ */

static int64_t shape_numel(const int64_t *shape, int ndim) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    return n;
}

cg_status cg_model_plan(cg_model *m, cg_layer_plan *plans) {
    if (m->in_ndim < 1 || m->in_ndim > CG_MAX_DIMS - 1)
        return cg_fail(CG_ERR_SHAPE, "model: an item must have 1..%d dims, got %d",
                       CG_MAX_DIMS - 1, m->in_ndim);
    /* In double: three dims of up to 2^24 each would overflow int64. */
    double n_inputs = 1.0;
    for (int d = 0; d < m->in_ndim; d++) {
        if (m->in_shape[d] < 1 || m->in_shape[d] > CG_LAYER_MAX_WIDTH)
            return cg_fail(CG_ERR_SHAPE, "model: input dim %d is %lld, outside 1..%lld", d,
                           (long long)m->in_shape[d], (long long)CG_LAYER_MAX_WIDTH);
        n_inputs *= (double)m->in_shape[d];
    }
    if (n_inputs > (double)CG_LAYER_MAX_WIDTH)
        return cg_fail(CG_ERR_SHAPE, "model: %.0f inputs per item is more than %lld", n_inputs,
                       (long long)CG_LAYER_MAX_WIDTH);
    m->n_inputs = shape_numel(m->in_shape, m->in_ndim);
    const int64_t *shape = m->in_shape;
    int ndim = m->in_ndim;
    for (int i = 0; i < m->n_layers; i++) {
        cg_layer *l = &m->layers[i];
        l->in_ndim = ndim;
        memcpy(l->in_shape, shape, sizeof(int64_t) * (size_t)ndim);
        char msg[512];
        if (l->kind->plan(l, &plans[i]) != CG_OK) {
            snprintf(msg, sizeof msg, "%s", cg_last_error());
            return cg_fail(cg_last_status(), "%s (layer %d)", msg, i + 1);
        }
        /* Every tensor inside CG_MAX_NUMEL, whatever the arguments said. */
        for (int k = 0; k < plans[i].n_params + plans[i].n_state; k++) {
            const cg_shape *s = k < plans[i].n_params ? &plans[i].params[k]
                                                      : &plans[i].state[k - plans[i].n_params];
            double numel = 1.0;
            for (int d = 0; d < s->ndim; d++) numel *= (double)s->dims[d];
            if (numel > (double)CG_MAX_NUMEL)
                return cg_fail(CG_ERR_ARG, "model: layer %d (%s) would hold %.0f numbers, more "
                                           "than %lld",
                               i + 1, l->kind->name, numel, (long long)CG_MAX_NUMEL);
        }
        shape = l->out_shape;
        ndim = l->out_ndim;
    }
    /* forward promises [N, n_outputs]: the last layer must give a row. */
    if (ndim != 1) {
        char buf[64];
        return cg_fail(CG_ERR_SHAPE,
                       "model: the last layer gives %s per item, not a row of outputs (end with "
                       "flatten, gap or linear)",
                       cg_item_shape_str(shape, ndim, buf, sizeof buf));
    }
    m->n_outputs = shape_numel(shape, ndim);
    return CG_OK;
}

double cg_model_plan_bytes(const cg_model *m, const cg_layer_plan *plans) {
    double bytes = 0.0;
    for (int i = 0; i < m->n_layers; i++)
        for (int k = 0; k < plans[i].n_params + plans[i].n_state; k++) {
            const cg_shape *s = k < plans[i].n_params ? &plans[i].params[k]
                                                      : &plans[i].state[k - plans[i].n_params];
            double numel = 1.0;
            for (int d = 0; d < s->ndim; d++) numel *= (double)s->dims[d];
            bytes += sizeof(float) * numel;
        }
    return bytes;
}

double cg_model_train_bytes(const cg_model *m, int64_t bs, int n_opt_states) {
    double params = 0.0, per_item = (double)m->n_inputs;
    for (int i = 0; i < m->n_params; i++) params += (double)m->params[i]->numel;
    for (int i = 0; i < m->n_layers; i++)
        per_item += (double)shape_numel(m->layers[i].out_shape, m->layers[i].out_ndim);
    return sizeof(float) * (params * (1.0 + n_opt_states) + 3.0 * per_item * (double)bs);
}

cg_status cg_model_alloc_tensors(cg_model *m, const cg_layer_plan *plans) {
    char what[96];
    double bytes = cg_model_plan_bytes(m, plans);
    snprintf(what, sizeof what, "a model of %.0f numbers (weights and state)", bytes / 4.0);
    if (cg_memory_check("model", bytes, what) != CG_OK) return cg_last_status();
    int n_params = 0;
    for (int i = 0; i < m->n_layers; i++) n_params += plans[i].n_params;
    m->params = calloc((size_t)(n_params > 0 ? n_params : 1), sizeof *m->params);
    if (!m->params) return cg_fail(CG_ERR_NOMEM, "model: out of memory");
    /* The tensors must outlive any scope the caller has open: made in a
     * scope of our own, each kept by one reference of its layer's. */
    cg_scope_begin();
    bool ok = true;
    for (int i = 0; i < m->n_layers && ok; i++) {
        cg_layer *l = &m->layers[i];
        const cg_layer_plan *p = &plans[i];
        for (int k = 0; k < p->n_params && ok; k++) {
            cg_tensor *t = cg_tensor_new(p->params[k].dims, p->params[k].ndim);
            ok = t != NULL;
            if (ok) {
                l->params[l->n_params++] = cg_tensor_retain(cg_tensor_requires_grad(t, true));
                m->params[m->n_params++] = t;
            }
        }
        for (int k = 0; k < p->n_state && ok; k++) {
            cg_tensor *t = cg_tensor_zeros(p->state[k].dims, p->state[k].ndim);
            ok = t != NULL;
            if (ok) l->state[l->n_state++] = cg_tensor_retain(t);
        }
    }
    cg_scope_end();
    return ok ? CG_OK : cg_last_status();
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

cg_model *cg_model_parse(const char *spec, const char *name, const int64_t *in_shape,
                         int in_ndim, int64_t n_outputs, cg_layer_plan **plans_out) {
    *plans_out = NULL;
    if (!spec || !in_shape) {
        cg_fail(CG_ERR_ARG, "model: needs a spec and an input shape");
        return NULL;
    }
    if (in_ndim < 1 || in_ndim > CG_MAX_DIMS - 1) {
        cg_fail(CG_ERR_SHAPE, "model: an item must have 1..%d dims, got %d", CG_MAX_DIMS - 1,
                in_ndim);
        return NULL;
    }
    cg_model *m = cg_model_alloc(count_layers(spec));
    if (!m) return NULL;
    cg_layer_plan *plans = calloc((size_t)m->n_layers, sizeof *plans);
    if (!plans) {
        cg_fail(CG_ERR_NOMEM, "model: out of memory");
        goto fail;
    }
    if (name) snprintf(m->name, sizeof m->name, "%s", name);
    m->in_ndim = in_ndim;
    memcpy(m->in_shape, in_shape, sizeof(int64_t) * (size_t)in_ndim);
    if (parse_spec(spec, m) != CG_OK) goto fail;
    cg_layer *last = &m->layers[m->n_layers - 1];
    if (last->kind == &CG_LAYER_LINEAR && last->args[0] == CG_ARG_UNSET) last->args[0] = n_outputs;
    if (cg_model_plan(m, plans) != CG_OK) goto fail;
    if (m->n_outputs != n_outputs) {
        char buf[64];
        cg_fail(CG_ERR_SHAPE, "model: '%s' gives %s per item; the data needs %lld outputs", spec,
                cg_item_shape_str(last->out_shape, last->out_ndim, buf, sizeof buf),
                (long long)n_outputs);
        goto fail;
    }
    *plans_out = plans;
    return m;
fail:
    free(plans);
    cg_model_free(m);
    return NULL;
}

cg_model *cg_model_from_spec(const char *spec, const char *name, const int64_t *in_shape,
                             int in_ndim, int64_t n_outputs, cg_init init, float std,
                             cg_rng *rng) {
    if (init != CG_INIT_NORMAL && init != CG_INIT_PYTORCH && init != CG_INIT_KAIMING) {
        cg_fail(CG_ERR_ARG, "model: unknown init %d", (int)init);
        return NULL;
    }
    if (init == CG_INIT_NORMAL && !(isfinite(std) && std >= 0.0f)) {
        cg_fail(CG_ERR_ARG, "model: std must be a finite number >= 0, got %g", (double)std);
        return NULL;
    }
    cg_layer_plan *plans;
    cg_model *m = cg_model_parse(spec, name, in_shape, in_ndim, n_outputs, &plans);
    if (!m) return NULL;
    /* A model built here is built to be trained: room for the gradients
     * too, or a refusal now rather than after initializing gigabytes. */
    char what[96];
    double bytes = cg_model_plan_bytes(m, plans);
    snprintf(what, sizeof what, "a model of %.0f numbers and their gradients", bytes / 4.0);
    cg_status st = cg_memory_check("model", 2.0 * bytes, what);
    if (st == CG_OK) st = cg_model_alloc_tensors(m, plans);
    free(plans);
    if (st != CG_OK) {
        cg_model_free(m);
        return NULL;
    }
    if (!rng) rng = cg_rng_global();
    for (int i = 0; i < m->n_layers; i++) {
        cg_layer *l = &m->layers[i];
        bool before_relu = i + 1 < m->n_layers && m->layers[i + 1].kind == &CG_LAYER_RELU;
        if (l->kind->init) l->kind->init(l, init, std, before_relu, rng);
    }
    /* Dropout's generator, seeded after the weights so they do not move. */
    uint64_t seed = (uint64_t)cg_rng_u32(rng) << 32 | cg_rng_u32(rng);
    cg_rng_seed(&m->rng, seed);
    return m;
}

cg_model *cg_model_for_images(const char *spec, const char *name, int64_t c, int64_t h, int64_t w,
                              int64_t n_outputs, cg_init init, float std, cg_rng *rng) {
    if (!spec) {
        cg_fail(CG_ERR_ARG, "model: needs a spec");
        return NULL;
    }
    if (c < 1 || h < 1 || w < 1 || (double)c * (double)h * (double)w > (double)CG_LAYER_MAX_WIDTH) {
        cg_fail(CG_ERR_SHAPE, "model: images of %lld x %lld x %lld are outside what a model takes",
                (long long)c, (long long)h, (long long)w);
        return NULL;
    }
    char first[32];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(spec, ":,"), spec);
    const cg_layer_kind *kind = cg_layer_kind_find(first);
    if (kind && kind->images)
        return cg_model_from_spec(spec, name, (int64_t[]){c, h, w}, 3, n_outputs, init, std, rng);
    return cg_model_from_spec(spec, name, (int64_t[]){c * h * w}, 1, n_outputs, init, std, rng);
}

/*
 * The presets. fastbook ch.13's simple_cnn is
 *     def conv(ni, nf, ks=3, act=True):
 *         layers = [nn.Conv2d(ni, nf, stride=2, kernel_size=ks, padding=ks//2)]
 *         if act: layers.append(nn.ReLU())
 *         layers.append(nn.BatchNorm2d(nf))
 *     simple_cnn = sequential(conv(1,8, ks=5), conv(8,16), conv(16,32), conv(32,64),
 *                             conv(64,10, act=False), Flatten())
 * 28x28 -> 14 -> 7 -> 4 -> 2 -> 1: 30,542 parameters for 10 classes. The
 * ResNet (He et al. 2016, fastai's ResBlock) is sized for 28x28 digits on
 * a CPU: a stem of one 3x3 conv at full resolution (16 channels), three
 * residual blocks that each halve the image (28 -> 14 -> 7 -> 4; 16, 32,
 * 64 channels), global average pooling and one linear layer: 78,058
 * parameters for ten classes, ~5 MFLOP per image forward. The
 * full-resolution stem is what lifts it past 0.995 on MNIST: the earlier
 * stride-2 5x5 stem left the blocks 14x14 and less to work from, and
 * topped out near 0.9945 however it was trained (bench/README.md,
 * "Augmentation").
 */
cg_status cg_model_preset(cg_model_kind kind, int64_t n_hidden, int64_t n_outputs, char *spec,
                          size_t size, const char **name) {
    long long o = (long long)n_outputs;
    if (n_outputs < 1 || n_outputs > CG_LAYER_MAX_WIDTH)
        return cg_fail(CG_ERR_ARG, "model: outputs must be between 1 and %lld, got %lld",
                       (long long)CG_LAYER_MAX_WIDTH, o);
    switch (kind) {
    case CG_MODEL_LINEAR:
        *name = "linear";
        snprintf(spec, size, "linear:%lld", o);
        return CG_OK;
    case CG_MODEL_MLP:
        if (n_hidden < 1 || n_hidden > CG_LAYER_MAX_WIDTH)
            return cg_fail(CG_ERR_ARG, "model: hidden size must be between 1 and %lld, got %lld",
                           (long long)CG_LAYER_MAX_WIDTH, (long long)n_hidden);
        *name = "mlp";
        snprintf(spec, size, "linear:%lld,relu,linear:%lld", (long long)n_hidden, o);
        return CG_OK;
    case CG_MODEL_CNN:
        *name = "cnn";
        snprintf(spec, size,
                 "conv:8:5:2,relu,bn,conv:16:3:2,relu,bn,conv:32:3:2,relu,bn,"
                 "conv:64:3:2,relu,bn,conv:%lld:3:2,bn,flatten",
                 o);
        return CG_OK;
    case CG_MODEL_RESNET:
        *name = "resnet";
        snprintf(spec, size,
                 "conv:16:3:1,bn,relu,res:16:2,res:32:2,res:64:2,gap,linear:%lld",
                 o);
        return CG_OK;
    }
    return cg_fail(CG_ERR_ARG, "model: unknown model kind %d", (int)kind);
}

cg_model *cg_model_new(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden,
                       int64_t n_outputs, cg_init init, float std, cg_rng *rng) {
    char spec[256];
    const char *name;
    if (kind != CG_MODEL_LINEAR && kind != CG_MODEL_MLP) {
        cg_fail(CG_ERR_ARG, "model: cg_model_new makes linear and mlp models (kind %d takes "
                            "images: see cg_model_for_images)",
                (int)kind);
        return NULL;
    }
    if (cg_model_preset(kind, n_hidden, n_outputs, spec, sizeof spec, &name) != CG_OK) return NULL;
    return cg_model_from_spec(spec, name, &n_inputs, 1, n_outputs, init, std, rng);
}

/* ------------------------------------------------------------------ */
/* Using                                                               */
/* ------------------------------------------------------------------ */

cg_tensor *cg_model_forward(cg_model *m, cg_tensor *x) {
    if (!m || !x) return NULL;
    int64_t rest = x->ndim >= 1 ? x->numel / (x->shape[0] ? x->shape[0] : 1) : 0;
    if (x->ndim < 2 || (x->shape[0] > 0 && rest != m->n_inputs)) {
        char buf[64], want[64];
        cg_fail(CG_ERR_SHAPE, "model: input must be %s (or [N, %lld]), got %s",
                cg_item_shape_str(m->in_shape, m->in_ndim, want, sizeof want),
                (long long)m->n_inputs, cg_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    /* The intermediates live in a scope of our own, so that a caller with
     * no scope open owns only the result. */
    cg_scope_begin();
    cg_tensor *h = x;
    /* [N, 784] -> [N, 1, 28, 28] for a model whose items are images: a view. */
    bool same = x->ndim == m->in_ndim + 1;
    for (int d = 0; same && d < m->in_ndim; d++) same = x->shape[d + 1] == m->in_shape[d];
    if (!same) {
        int64_t shape[CG_MAX_DIMS] = {x->shape[0]};
        memcpy(shape + 1, m->in_shape, sizeof(int64_t) * (size_t)m->in_ndim);
        h = cg_tensor_reshape(x, shape, m->in_ndim + 1);
    }
    cg_forward_ctx ctx = {m->training, &m->rng};
    for (int i = 0; i < m->n_layers && h; i++)
        h = m->layers[i].kind->forward(&m->layers[i], h, &ctx);
    return cg_scope_end_keep(h);
}

bool cg_model_train(cg_model *m, bool on) {
    if (!m) return false;
    bool prev = m->training;
    m->training = on;
    return prev;
}

int64_t cg_model_param_count(const cg_model *m) {
    int64_t n = 0;
    for (int i = 0; m && i < m->n_params; i++) n += m->params[i]->numel;
    return n;
}

/* 1234567 -> "1,234,567" */
static const char *thousands(int64_t v, char *buf, size_t size) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < size; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

void cg_model_summary(const cg_model *m, FILE *f) {
    char shape[64], spec[64], count[32];
    fprintf(f, "%s, input %s\n", m->name, cg_item_shape_str(m->in_shape, m->in_ndim, shape,
                                                            sizeof shape));
    fprintf(f, "%-20s %-22s %12s\n", "Layer", "Output shape", "Param #");
    fprintf(f, "%.*s\n", 56, "========================================================");
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        int64_t n = 0;
        for (int k = 0; k < l->n_params; k++) n += l->params[k]->numel;
        fprintf(f, "%-20s %-22s %12s\n", cg_layer_spec(l, spec, sizeof spec),
                cg_item_shape_str(l->out_shape, l->out_ndim, shape, sizeof shape),
                thousands(n, count, sizeof count));
    }
    fprintf(f, "%.*s\n", 56, "========================================================");
    fprintf(f, "Total params: %s\n", thousands(cg_model_param_count(m), count, sizeof count));
}
