/*
 * optimizer.c - optimizers that keep per-parameter state: SGD with
 * momentum, Nesterov and weight decay, Adam and AdamW.
 *
 * Our names against torch.optim and fastai's:
 *   cg_optim_config   torch.optim                 fastai (Optimizer hypers)
 *   lr                lr                          lr
 *   momentum          SGD momentum; Adam betas[0] mom (what fit_one_cycle's
 *                                                 moms schedule)
 *   beta2             Adam betas[1]               sqr_mom
 *   eps               eps                         eps
 *   weight_decay      weight_decay                wd
 *   nesterov          SGD nesterov                -
 *   decoupled_wd      AdamW (SGDW has none)       decouple_wd (true_wd)
 * Defaults: cg_adam_config is fastai's Adam (betas 0.9/0.99, eps 1e-5) but
 * with wd 0 - fastai's own Adam decays by 0.01, decoupled; say so with
 * cg_adamw_config(lr, 0.01f). SGD's dampening is PyTorch's default 0
 * (fastai's SGD: average_grad(dampening=False), the same rule).
 * fastai writes Adam's denominator sqrt(v / bc2) + eps, PyTorch
 * sqrt(v) / sqrt(bc2) + eps; we follow PyTorch's order (see
 * optim_internal.h and sgd.c's update_range for the elementwise part).
 *
 * State, as in PyTorch, is per parameter: its momentum buffer (SGD), its m
 * and v and its own step count t (Adam), so a parameter that had no
 * gradient at some step (skipped, as PyTorch skips p.grad None) neither
 * moves nor ages. The buffers of all parameters sit in one block,
 * allocated by the first step that needs them: Adam's first step; SGD's
 * first step with momentum > 0 (a schedule may raise it from 0 later, as
 * PyTorch creates momentum_buffer then). No other step allocates.
 */
#include "optim/optim_internal.h"

typedef struct param_state {
    float *s1, *s2;   /* SGD's momentum buffer or Adam's m; Adam's v  */
    int64_t step;     /* steps this parameter took: Adam's t           */
    bool buf_ready;   /* SGD: s1 holds b (b = g on the first use)      */
} param_state;

struct cg_optimizer {
    cg_optim_config cfg;
    int n;
    cg_tensor **params; /* a copy of the caller's array; tensors not retained */
    param_state *st;
    float *state;       /* every parameter's buffers, one block */
    int nbuf;           /* buffers per parameter in `state`: 0, 1 or 2 */
};

cg_optim_config cg_sgd_config(float lr) {
    return (cg_optim_config){.kind = CG_OPTIM_SGD, .lr = lr};
}

cg_optim_config cg_adam_config(float lr) {
    return (cg_optim_config){
        .kind = CG_OPTIM_ADAM, .lr = lr, .momentum = 0.9f, .beta2 = 0.99f, .eps = 1e-5f};
}

cg_optim_config cg_adamw_config(float lr, float wd) {
    cg_optim_config c = cg_adam_config(lr);
    c.weight_decay = wd;
    c.decoupled_wd = true;
    return c;
}

static bool lr_ok(float lr) { return isfinite(lr) && lr >= 0.0f; }
static bool momentum_ok(float m) { return m >= 0.0f && m < 1.0f; } /* false for NaN */

static cg_status check_config(const cg_optim_config *c) {
    const char *op = "optimizer_new";
    if (!c) return cg_fail(CG_ERR_ARG, "%s: NULL config", op);
    if (c->kind != CG_OPTIM_SGD && c->kind != CG_OPTIM_ADAM)
        return cg_fail(CG_ERR_ARG, "%s: unknown optimizer kind %d (CG_OPTIM_SGD or CG_OPTIM_ADAM)",
                       op, (int)c->kind);
    const char *mom = c->kind == CG_OPTIM_ADAM ? "beta1 (momentum)" : "momentum";
    if (!lr_ok(c->lr))
        return cg_fail(CG_ERR_ARG, "%s: lr must be finite and >= 0, got %g", op, c->lr);
    if (!momentum_ok(c->momentum))
        return cg_fail(CG_ERR_ARG, "%s: %s must be in [0, 1), got %g", op, mom, c->momentum);
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0.0f))
        return cg_fail(CG_ERR_ARG, "%s: weight_decay must be finite and >= 0, got %g", op,
                       c->weight_decay);
    if (c->kind == CG_OPTIM_ADAM) {
        if (!(c->beta2 >= 0.0f && c->beta2 < 1.0f))
            return cg_fail(CG_ERR_ARG, "%s: beta2 must be in [0, 1), got %g", op, c->beta2);
        if (!(c->eps > 0.0f && isfinite(c->eps)))
            return cg_fail(CG_ERR_ARG, "%s: eps must be finite and > 0, got %g", op, c->eps);
        if (c->nesterov) return cg_fail(CG_ERR_ARG, "%s: nesterov is for SGD only, not Adam", op);
    } else if (c->nesterov && c->momentum == 0.0f) {
        return cg_fail(CG_ERR_ARG, "%s: nesterov needs momentum > 0", op);
    }
    return CG_OK;
}

cg_optimizer *cg_optimizer_new(const cg_optim_config *cfg, cg_tensor *const *params, int n) {
    if (check_config(cfg) != CG_OK) return NULL;
    if (n < 0) {
        cg_fail(CG_ERR_ARG, "optimizer_new: n = %d parameters, must be >= 0", n);
        return NULL;
    }
    if (n > 0 && !params) {
        cg_fail(CG_ERR_ARG, "optimizer_new: NULL params with n = %d", n);
        return NULL;
    }
    cg_optimizer *o = calloc(1, sizeof *o);
    const size_t k = n > 0 ? (size_t)n : 1;
    if (o) {
        o->params = malloc(k * sizeof *o->params);
        o->st = calloc(k, sizeof *o->st);
    }
    if (!o || !o->params || !o->st) {
        cg_optimizer_free(o);
        cg_fail(CG_ERR_NOMEM, "optimizer_new: out of memory for %d parameters", n);
        return NULL;
    }
    o->cfg = *cfg;
    o->n = n;
    for (int j = 0; j < n; j++) o->params[j] = params[j];
    return o;
}

/* Buffers for `nbuf` per parameter, zeroed, in one block; each parameter's
 * buffers start on a 64-byte line. */
static cg_status alloc_state(cg_optimizer *o, int nbuf) {
    const int64_t line = 16; /* floats */
    int64_t total = 0;
    for (int j = 0; j < o->n; j++) {
        const cg_tensor *p = o->params[j];
        if (p) total += (p->numel + line - 1) / line * line * nbuf;
    }
    if (total == 0) total = line;
    if ((uint64_t)total > SIZE_MAX / sizeof(float))
        return cg_fail(CG_ERR_NOMEM, "optimizer_step: %lld floats of state is too many",
                       (long long)total);
    float *block = aligned_alloc(64, (size_t)total * sizeof(float));
    if (!block)
        return cg_fail(CG_ERR_NOMEM, "optimizer_step: out of memory for %lld floats of state",
                       (long long)total);
    memset(block, 0, (size_t)total * sizeof(float));
    float *at = block;
    for (int j = 0; j < o->n; j++) {
        const cg_tensor *p = o->params[j];
        if (!p) continue;
        const int64_t len = (p->numel + line - 1) / line * line;
        o->st[j].s1 = at;
        at += len;
        if (nbuf > 1) {
            o->st[j].s2 = at;
            at += len;
        }
    }
    free(o->state);
    o->state = block;
    o->nbuf = nbuf;
    return CG_OK;
}

cg_status cg_optimizer_step(cg_optimizer *o) {
    if (!o) return cg_fail(CG_ERR_ARG, "optimizer_step: NULL optimizer");
    const cg_optim_config *c = &o->cfg;
    const bool adam = c->kind == CG_OPTIM_ADAM;
    const int need = adam ? 2 : c->momentum > 0.0f ? 1 : 0;
    if (need > o->nbuf && alloc_state(o, need) != CG_OK) return cg_last_status();

    /* The scalars are worked out in double, as PyTorch's are Python
     * floats, and rounded to float once. */
    const double lr = c->lr, wd = c->weight_decay;
    cg_update u = {
        .rule = adam ? CG_UPDATE_ADAM : CG_UPDATE_SGD,
        .lr = c->lr,
        .l2 = wd > 0 && !c->decoupled_wd,       /* g = g + wd * p       */
        .decoupled = wd > 0 && c->decoupled_wd, /* p = p * (1 - lr*wd)  */
        .wd = c->weight_decay,
        .decay = (float)(1.0 - lr * wd),
        .momentum_on = !adam && c->momentum > 0.0f,
        .nesterov = c->nesterov,
        .momentum = c->momentum,
        .beta1 = c->momentum,
        .one_minus_beta1 = (float)(1.0 - (double)c->momentum),
        .beta2 = c->beta2,
        .one_minus_beta2 = (float)(1.0 - (double)c->beta2),
        .eps = c->eps,
    };
    for (int j = 0; j < o->n; j++) {
        cg_tensor *p = o->params[j];
        if (!p || !p->grad) continue;
        param_state *st = &o->st[j];
        st->step++;
        if (adam) {
            /* t = this parameter's step; beta1 is the current one (a
             * schedule moves it), so bc1 is not a running product:
             *   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t
             *   step_size = lr / bc1
             *   p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps)        */
            const double t = (double)st->step;
            const double bc1 = 1.0 - pow((double)c->momentum, t);
            const double bc2 = 1.0 - pow((double)c->beta2, t);
            u.step_size = (float)(lr / bc1);
            u.bc2_sqrt = (float)sqrt(bc2);
        } else if (u.momentum_on) {
            u.first = !st->buf_ready; /* b = g on the buffer's first step */
            st->buf_ready = true;
        }
        cg_optim_update(&u, p->data, p->grad, st->s1, st->s2, p->numel);
    }
    return CG_OK;
}

void cg_optimizer_zero_grad(cg_optimizer *o) {
    if (!o) return;
    for (int j = 0; j < o->n; j++) cg_tensor_zero_grad(o->params[j]);
}

void cg_optimizer_set_lr(cg_optimizer *o, float lr) {
    if (!o) return;
    if (!lr_ok(lr)) {
        cg_fail(CG_ERR_ARG, "optimizer_set_lr: lr must be finite and >= 0, got %g (kept %g)", lr,
                o->cfg.lr);
        return;
    }
    o->cfg.lr = lr;
}

void cg_optimizer_set_momentum(cg_optimizer *o, float momentum) {
    if (!o) return;
    if (!momentum_ok(momentum)) {
        cg_fail(CG_ERR_ARG, "optimizer_set_momentum: momentum must be in [0, 1), got %g (kept %g)",
                momentum, o->cfg.momentum);
        return;
    }
    o->cfg.momentum = momentum;
}

const cg_optim_config *cg_optimizer_config(const cg_optimizer *o) { return o ? &o->cfg : NULL; }

void cg_optimizer_free(cg_optimizer *o) {
    if (!o) return;
    free(o->state);
    free(o->st);
    free(o->params);
    free(o);
}
