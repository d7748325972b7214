/*
 * loss.c - the losses of fastbook chapter 4 as fused ops, accuracy, and
 * choosing a loss by its kind (cg_loss). Cross-entropy: cross_entropy.c.
 *
 * Written as sigmoid, where and mean, mnist_loss would build five graph
 * nodes and four temporaries per step; fused, it is one pass forward and
 * one pass backward over the batch, with the derivative worked out below.
 * preds and targets only need the same number of elements, so the
 * article's [N, 1] predictions meet [N] or [N, 1] targets alike. Sums run
 * in double, in index order.
 */
#include "cgrad_internal.h"

/* Checks the pair and makes the scalar result (linked to preds and
 * targets); NULL after cg_fail if their sizes differ. */
static cg_tensor *loss_result(const cg_op *op, cg_tensor *preds, cg_tensor *targets) {
    if (!preds || !targets) return NULL;
    if (preds->numel != targets->numel) {
        char sp[64], st[64];
        cg_fail(CG_ERR_SHAPE, "%s: preds %s and targets %s differ in element count (%lld vs %lld)",
                op->name, cg_shape_str(preds, sp, sizeof sp), cg_shape_str(targets, st, sizeof st),
                (long long)preds->numel, (long long)targets->numel);
        return NULL;
    }
    return cg_op_result(op, NULL, 0, preds, targets, NULL);
}

/*
 * mnist_loss(p, t) = mean(where(t == 1, 1 - sigmoid(p), sigmoid(p))).
 *   s_i = sigmoid(p_i);  l_i = t_i == 1 ? 1 - s_i : s_i;  L = (1/N) sum_i l_i
 * With ds/dp = s (1 - s):
 *   dL/dp_i = (t_i == 1 ? -1 : +1) * s_i (1 - s_i) / N
 * The targets only pick a branch, so they get no gradient.
 */
static void mnist_loss_backward(cg_tensor *out) {
    cg_tensor *p = out->src[0], *t = out->src[1];
    if (!cg_wants_grad(p)) return;
    float *gp = cg_grad_buf(p);
    if (!gp) return;
    const int64_t n = p->numel;
    const float scale = out->grad[0] / (float)n;
    const float *x = p->data, *y = t->data;
    for (int64_t i = 0; i < n; i++) {
        float s = cg_sigmoidf(x[i]);
        float sign = y[i] == 1.0f ? -1.0f : 1.0f;
        gp[i] += sign * s * (1.0f - s) * scale;
    }
}
static const cg_op OP_MNIST_LOSS = {"mnist_loss", mnist_loss_backward};

cg_tensor *cg_mnist_loss(cg_tensor *preds, cg_tensor *targets) {
    cg_tensor *out = loss_result(&OP_MNIST_LOSS, preds, targets);
    if (!out) return NULL;
    const int64_t n = preds->numel;
    const float *x = preds->data, *y = targets->data;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float s = cg_sigmoidf(x[i]);
        sum += y[i] == 1.0f ? 1.0f - s : s;
    }
    out->data[0] = (float)(sum / (double)n);
    return out;
}

/*
 * Binary cross-entropy on logits, with s = sigmoid(p):
 *   l = -(t log s + (1 - t) log(1 - s))
 * Using log s = -log(1 + e^-p) and log(1 - s) = -p - log(1 + e^-p), this is
 *   l = p - p t + log(1 + e^-p),
 * and, to keep e^-p from overflowing for p < 0, the form PyTorch uses:
 *   l = max(p, 0) - p t + log1p(e^-|p|)        (equal for either sign of p)
 * Derivatives of the first form:
 *   dl/dp = 1 - t - e^-p / (1 + e^-p) = (1 - t) - (1 - s) = s - t
 *   dl/dt = -p
 * and L = mean(l) divides both by N.
 */
static void bce_backward(cg_tensor *out) {
    cg_tensor *p = out->src[0], *t = out->src[1];
    const int64_t n = p->numel;
    const float scale = out->grad[0] / (float)n;
    const float *x = p->data, *y = t->data;
    if (cg_wants_grad(p)) {
        float *gp = cg_grad_buf(p);
        if (gp)
            for (int64_t i = 0; i < n; i++) gp[i] += (cg_sigmoidf(x[i]) - y[i]) * scale;
    }
    if (cg_wants_grad(t)) {
        float *gt = cg_grad_buf(t);
        if (gt)
            for (int64_t i = 0; i < n; i++) gt[i] -= x[i] * scale;
    }
}
static const cg_op OP_BCE = {"bce_with_logits", bce_backward};

cg_tensor *cg_bce_with_logits(cg_tensor *preds, cg_tensor *targets) {
    cg_tensor *out = loss_result(&OP_BCE, preds, targets);
    if (!out) return NULL;
    const int64_t n = preds->numel;
    const float *x = preds->data, *y = targets->data;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float p = x[i];
        sum += (double)(p > 0.0f ? p : 0.0f) - (double)p * y[i] + (double)log1pf(expf(-fabsf(p)));
    }
    out->data[0] = (float)(sum / (double)n);
    return out;
}

/*
 * The book's batch_accuracy: mean((sigmoid(p) > 0.5) == (t == 1)).
 * sigmoid is computed rather than testing p > 0, so that tiny positive p
 * whose sigmoid rounds to exactly 0.5 counts as the book counts it.
 */
float cg_binary_accuracy(const cg_tensor *preds, const cg_tensor *targets) {
    if (!preds || !targets) return NAN;
    if (preds->numel != targets->numel) {
        char sp[64], st[64];
        cg_fail(CG_ERR_SHAPE, "binary_accuracy: preds %s and targets %s differ in element count",
                cg_shape_str(preds, sp, sizeof sp), cg_shape_str(targets, st, sizeof st));
        return NAN;
    }
    int64_t correct = 0;
    for (int64_t i = 0; i < preds->numel; i++)
        correct += (cg_sigmoidf(preds->data[i]) > 0.5f) == (targets->data[i] == 1.0f);
    /* No rows: 0/0 = NaN, like the mean of an empty tensor. */
    return (float)((double)correct / (double)preds->numel);
}

/* ------------------------------------------------------------------ */
/* Choosing a loss by name                                             */
/* ------------------------------------------------------------------ */

static const char *const LOSS_NAMES[] = {[CG_LOSS_MNIST] = "mnist", [CG_LOSS_BCE] = "bce",
                                         [CG_LOSS_CE] = "ce"};

const char *cg_loss_name(cg_loss_kind kind) {
    return (unsigned)kind < sizeof LOSS_NAMES / sizeof LOSS_NAMES[0] ? LOSS_NAMES[kind] : NULL;
}

cg_tensor *cg_loss(cg_loss_kind kind, cg_tensor *preds, cg_tensor *targets) {
    switch (kind) {
    case CG_LOSS_MNIST: return cg_mnist_loss(preds, targets);
    case CG_LOSS_BCE: return cg_bce_with_logits(preds, targets);
    case CG_LOSS_CE: return cg_cross_entropy(preds, targets);
    }
    cg_fail(CG_ERR_ARG, "loss: unknown loss kind %d", (int)kind);
    return NULL;
}

cg_tensor *cg_loss_targets(cg_loss_kind kind, const cg_tensor *labels) {
    if (!labels) return NULL;
    cg_tensor *y = (cg_tensor *)labels; /* read only: the ops below copy or view it */
    if (kind == CG_LOSS_CE) return cg_tensor_reshape(y, (int64_t[]){labels->numel}, 1);
    /* (y == 0) as 0/1 floats, then a column: [N] -> [N, 1]. */
    cg_scope_begin();
    return cg_scope_end_keep(cg_tensor_unsqueeze(cg_tensor_eq(y, cg_tensor_scalar(0.0f)), 1));
}
