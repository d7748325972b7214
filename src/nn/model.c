/*
 * model.c - the two models of fastbook chapter 4.
 *
 *   linear1:    preds = x @ w + b                      w [in, out], b [out]
 *   simple_net: preds = relu(x @ w1 + b1) @ w2 + b2    w1 [in, hidden], w2 [hidden, out]
 *
 * Weights are stored [in, out] (the article's `weights = init_params((28*28,1))`),
 * so a forward pass is a plain x @ w with no transpose; nn.Linear stores the
 * transpose, [out, in], but draws every element from the same distribution,
 * so only the layout differs.
 *
 * Initialisation:
 *   CG_INIT_NORMAL   w, b ~ N(0, 1) * std      the article's init_params(size, std)
 *   CG_INIT_PYTORCH  w, b ~ U(-k, k), k = 1/sqrt(fan_in)
 * The second is nn.Linear.reset_parameters(): kaiming_uniform_(a = sqrt(5))
 * gives bound = gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a^2)) =
 * sqrt(1/3), i.e. exactly 1/sqrt(fan_in), and the bias uses the same bound.
 * Parameters are drawn in order w1, b1, w2, b2 from one generator, so a seed
 * fixes the whole model.
 */
#include "nn_internal.h"

#include <math.h>

static bool width_ok(int64_t n) { return n >= 1 && n <= CG_MODEL_MAX_WIDTH; }

cg_model *cg_model_alloc(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden, int64_t n_outputs) {
    if (kind != CG_MODEL_LINEAR && kind != CG_MODEL_MLP) {
        cg_fail(CG_ERR_ARG, "model: unknown model kind %d", (int)kind);
        return NULL;
    }
    if (kind == CG_MODEL_LINEAR) n_hidden = 0;
    if (!width_ok(n_inputs) || !width_ok(n_outputs) ||
        (kind == CG_MODEL_MLP && !width_ok(n_hidden))) {
        cg_fail(CG_ERR_ARG,
                "model: layer sizes must be between 1 and %lld, got inputs %lld, hidden %lld, "
                "outputs %lld",
                (long long)CG_MODEL_MAX_WIDTH, (long long)n_inputs, (long long)n_hidden,
                (long long)n_outputs);
        return NULL;
    }
    cg_model *m = calloc(1, sizeof *m);
    if (!m) {
        cg_fail(CG_ERR_NOMEM, "model: out of memory");
        return NULL;
    }
    m->kind = kind;
    m->n_inputs = n_inputs;
    m->n_hidden = n_hidden;
    m->n_outputs = n_outputs;

    /* Layer l maps widths[l] -> widths[l + 1]: a weight [in, out], a bias [out]. */
    int64_t widths[3] = {n_inputs, kind == CG_MODEL_LINEAR ? n_outputs : n_hidden, n_outputs};
    int layers = kind == CG_MODEL_LINEAR ? 1 : 2;
    /* The parameters must outlive any scope the caller has open: made in a
     * scope of our own, each kept by one reference of the model's. */
    cg_scope_begin();
    bool ok = true;
    for (int l = 0; l < layers && ok; l++) {
        int64_t wshape[2] = {widths[l], widths[l + 1]};
        cg_tensor *w = cg_tensor_new(wshape, 2);
        cg_tensor *b = cg_tensor_new(&widths[l + 1], 1);
        ok = w && b;
        if (ok) {
            m->params[m->n_params++] = cg_tensor_retain(cg_tensor_requires_grad(w, true));
            m->params[m->n_params++] = cg_tensor_retain(cg_tensor_requires_grad(b, true));
        }
    }
    cg_scope_end();
    if (!ok) {
        cg_model_free(m);
        return NULL;
    }
    return m;
}

cg_model *cg_model_new(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden,
                       int64_t n_outputs, cg_init init, float std, cg_rng *rng) {
    if (init != CG_INIT_NORMAL && init != CG_INIT_PYTORCH) {
        cg_fail(CG_ERR_ARG, "model: unknown init %d", (int)init);
        return NULL;
    }
    if (init == CG_INIT_NORMAL && !(isfinite(std) && std >= 0.0f)) {
        cg_fail(CG_ERR_ARG, "model: std must be a finite number >= 0, got %g", (double)std);
        return NULL;
    }
    cg_model *m = cg_model_alloc(kind, n_inputs, n_hidden, n_outputs);
    if (!m) return NULL;
    if (!rng) rng = cg_rng_global();

    /* Drawn in order w1, b1, w2, b2; a bias's fan_in is its weight's rows. */
    for (int i = 0; i < m->n_params; i++) {
        cg_tensor *p = m->params[i];
        if (init == CG_INIT_NORMAL) {
            for (int64_t j = 0; j < p->numel; j++) p->data[j] = cg_rng_normal(rng) * std;
        } else {
            /* U(-k, k) from a uniform u in [0, 1): k * (2u - 1). */
            int64_t fan_in = m->params[i & ~1]->shape[0];
            float k = (float)(1.0 / sqrt((double)fan_in));
            for (int64_t j = 0; j < p->numel; j++)
                p->data[j] = k * (2.0f * cg_rng_uniform(rng) - 1.0f);
        }
    }
    return m;
}

void cg_model_free(cg_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_params; i++) cg_tensor_release(m->params[i]);
    free(m);
}

cg_tensor *cg_model_forward(cg_model *m, cg_tensor *x) {
    if (!m || !x) return NULL;
    if (x->ndim != 2 || x->shape[1] != m->n_inputs) {
        char buf[64];
        cg_fail(CG_ERR_SHAPE, "model: input must be [N, %lld], got %s", (long long)m->n_inputs,
                cg_shape_str(x, buf, sizeof buf));
        return NULL;
    }
    /* The intermediates live in a scope of our own, so that a caller with no
     * scope open owns only the result. */
    cg_scope_begin();
    cg_tensor *h = cg_tensor_add(cg_tensor_matmul(x, m->params[0]), m->params[1]);
    if (m->kind == CG_MODEL_MLP)
        h = cg_tensor_add(cg_tensor_matmul(cg_tensor_relu(h), m->params[2]), m->params[3]);
    return cg_scope_end_keep(h);
}
