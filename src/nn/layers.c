/*
 * layers.c - the layer table: every kind a model can be built from.
 *
 * Each row is defined in a file of its own under src/nn/layers/; a spec
 * ("linear:128,relu,linear") names rows by their `name`.
 */
#include "nn/layer.h"

const cg_layer_kind *const CG_LAYER_KINDS[] = {
    &CG_LAYER_LINEAR,  &CG_LAYER_RELU,    &CG_LAYER_SIGMOID, &CG_LAYER_FLATTEN,
    &CG_LAYER_DROPOUT, &CG_LAYER_BATCHNORM, &CG_LAYER_MAXPOOL, &CG_LAYER_AVGPOOL,
    &CG_LAYER_GAP,     &CG_LAYER_CONV,    &CG_LAYER_RESIDUAL, NULL,
};

const cg_layer_kind *cg_layer_kind_find(const char *name) {
    for (int i = 0; CG_LAYER_KINDS[i]; i++)
        if (strcmp(CG_LAYER_KINDS[i]->name, name) == 0) return CG_LAYER_KINDS[i];
    return NULL;
}

const char *cg_layer_kind_name(int i) {
    for (int k = 0; CG_LAYER_KINDS[k]; k++)
        if (k == i) return CG_LAYER_KINDS[k]->name;
    return NULL;
}

const char *cg_layer_name(const cg_layer *l) { return l && l->kind ? l->kind->name : "?"; }

const char *cg_layer_spec(const cg_layer *l, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s", cg_layer_name(l));
    for (int a = 0; l->kind && l->kind->args[a] && n >= 0 && (size_t)n < size; a++) {
        if (l->kind->args[a] == 'i') {
            if (l->args[a] == CG_ARG_UNSET) break;
            n += snprintf(buf + n, size - (size_t)n, ":%lld", (long long)l->args[a]);
        } else {
            if (isnan(l->fargs[a])) break;
            /* The fewest digits that read back as the same float: "0.2",
             * but "0.99999994", not "1" (which dropout would refuse). */
            char num[32];
            for (int prec = 6; prec <= 9; prec++) {
                snprintf(num, sizeof num, "%.*g", prec, (double)l->fargs[a]);
                if ((float)strtod(num, NULL) == l->fargs[a]) break;
            }
            n += snprintf(buf + n, size - (size_t)n, ":%s", num);
        }
    }
    return buf;
}

void cg_init_weight_bias(cg_tensor *w, cg_tensor *b, int64_t fan_in, cg_init init, float std,
                         bool before_relu, cg_rng *rng) {
    if (init == CG_INIT_KAIMING && before_relu) {
        float sd = (float)sqrt(2.0 / (double)fan_in);
        for (int64_t j = 0; j < w->numel; j++) w->data[j] = cg_rng_normal(rng) * sd;
        memset(b->data, 0, sizeof(float) * (size_t)b->numel);
        return;
    }
    cg_tensor *t[2] = {w, b};
    for (int i = 0; i < 2; i++) {
        if (init == CG_INIT_NORMAL) {
            for (int64_t j = 0; j < t[i]->numel; j++) t[i]->data[j] = cg_rng_normal(rng) * std;
        } else {
            /* U(-k, k) from a uniform u in [0, 1): k * (2u - 1). */
            float k = (float)(1.0 / sqrt((double)fan_in));
            for (int64_t j = 0; j < t[i]->numel; j++)
                t[i]->data[j] = k * (2.0f * cg_rng_uniform(rng) - 1.0f);
        }
    }
}

cg_status cg_plan_same_shape(cg_layer *l, cg_layer_plan *p) {
    l->out_ndim = l->in_ndim;
    memcpy(l->out_shape, l->in_shape, sizeof l->out_shape);
    p->n_params = p->n_state = 0;
    return CG_OK;
}

const char *cg_item_shape_str(const int64_t *shape, int ndim, char *buf, size_t size) {
    int n = snprintf(buf, size, "[bs");
    for (int d = 0; d < ndim && n >= 0 && (size_t)n < size; d++)
        n += snprintf(buf + n, size - (size_t)n, ", %lld", (long long)shape[d]);
    if (n >= 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, "]");
    return buf;
}
