/*
 * cross_entropy.c - softmax, log_softmax, nll_loss and cross_entropy, the
 * multi-class losses of fastbook chapter 5, and accuracy by argmax.
 *
 * All of them work on rows: the last dim holds a row's C class scores z.
 * Each row is made stable the usual way: with m = max_j z_j,
 *   softmax(z)_j     = e^(z_j - m) / sum_k e^(z_k - m)
 *   log_softmax(z)_j = z_j - m - log(sum_k e^(z_k - m))
 * Every e^(z_j - m) lies in (0, 1] and the sum is >= 1 (the max's own
 * term), so logits of +-1000 give finite results. cross_entropy fuses
 * nll_loss(log_softmax(z)) into one op: one pass forward over the batch,
 * one pass backward that recomputes each row's softmax from the logits
 * rather than keeping it (a [256, 10] batch is cheap to redo, and nothing
 * is allocated besides the scalar result). Sums run in double, in index
 * order, so results do not depend on anything but the inputs.
 *
 * Targets are class indices stored as floats, [N] or [N, 1]; a value that
 * is not a whole number in 0..C-1 (NaN included) is refused before
 * anything is computed. They pick a term of the loss, so they get no
 * gradient.
 */
#include "cgrad_internal.h"

/* ------------------------------------------------------------------ */
/* rows                                                                */
/* ------------------------------------------------------------------ */

/* The largest of z[0..c), c >= 1. NaN anywhere makes the row's results NaN
 * whatever m is (e^NaN is NaN and it enters the sum), as in PyTorch. */
static float row_max(const float *z, int64_t c) {
    float m = z[0];
    for (int64_t j = 1; j < c; j++) m = z[j] > m ? z[j] : m;
    return m;
}

/* sum_j e^(z_j - m), in double: >= 1 when m is the row's max. */
static double row_sumexp(const float *z, int64_t c, float m) {
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) s += (double)expf(z[j] - m);
    return s;
}

/* The class index a target holds for C classes, or -1 if it is not a whole
 * number in 0..C-1 (written so that NaN fails every test). */
static int64_t class_index(float t, int64_t c) {
    double d = t;
    if (!(d >= 0.0 && d < (double)c && d == floor(d))) return -1;
    return (int64_t)d;
}

/* ------------------------------------------------------------------ */
/* softmax and log_softmax over the last dim                           */
/* ------------------------------------------------------------------ */

/* The result of softmax or log_softmax: x's shape, linked to x, seen as
 * rows of c = x's last dim; NULL after cg_fail for a scalar x. */
static cg_tensor *rows_result(const cg_op *op, cg_tensor *x, int64_t *rows, int64_t *c) {
    if (!x) return NULL;
    if (x->ndim < 1) {
        cg_fail(CG_ERR_SHAPE, "%s: needs a tensor of rank >= 1 (classes along its last dim), "
                              "got a scalar", op->name);
        return NULL;
    }
    *c = x->shape[x->ndim - 1];
    *rows = *c ? x->numel / *c : 0;
    return cg_op_result(op, x->shape, x->ndim, x, NULL, NULL);
}

/*
 * s = softmax(z) per row: s_j = e^(z_j - m) / sum_k e^(z_k - m).
 * ds_j/dz_i = s_j (delta_ij - s_i), so with g = dL/ds
 *   dL/dz_i = sum_j g_j s_j (delta_ij - s_i) = s_i (g_i - sum_j g_j s_j),
 * one dot product per row, from the saved output s alone.
 */
static void softmax_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const int64_t c = x->shape[x->ndim - 1];
    const int64_t rows = c ? x->numel / c : 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *s = out->data + r * c, *g = out->grad + r * c;
        float *gr = gx + r * c;
        double dot = 0.0;
        for (int64_t j = 0; j < c; j++) dot += (double)g[j] * s[j];
        const float fdot = (float)dot;
        for (int64_t j = 0; j < c; j++) gr[j] += s[j] * (g[j] - fdot);
    }
}
static const cg_op OP_SOFTMAX = {"softmax", softmax_backward};

cg_tensor *cg_tensor_softmax(cg_tensor *x) {
    int64_t rows = 0, c = 0;
    cg_tensor *out = rows_result(&OP_SOFTMAX, x, &rows, &c);
    if (!out) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *z = x->data + r * c;
        float *s = out->data + r * c;
        const float m = row_max(z, c);
        double sum = 0.0;
        for (int64_t j = 0; j < c; j++) {
            s[j] = expf(z[j] - m);
            sum += s[j];
        }
        const double inv = 1.0 / sum;
        for (int64_t j = 0; j < c; j++) s[j] = (float)(s[j] * inv);
    }
    return out;
}

/*
 * y = log_softmax(z) per row: y_j = z_j - m - log(sum_k e^(z_k - m)).
 * dy_j/dz_i = delta_ij - s_i with s = softmax(z) = e^y, so with g = dL/dy
 *   dL/dz_i = g_i - s_i sum_j g_j = g_i - e^(y_i) sum_j g_j,
 * again from the saved output alone.
 */
static void log_softmax_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0];
    if (!cg_wants_grad(x)) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const int64_t c = x->shape[x->ndim - 1];
    const int64_t rows = c ? x->numel / c : 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *y = out->data + r * c, *g = out->grad + r * c;
        float *gr = gx + r * c;
        double gsum = 0.0;
        for (int64_t j = 0; j < c; j++) gsum += g[j];
        const float fgsum = (float)gsum;
        for (int64_t j = 0; j < c; j++) gr[j] += g[j] - expf(y[j]) * fgsum;
    }
}
static const cg_op OP_LOG_SOFTMAX = {"log_softmax", log_softmax_backward};

cg_tensor *cg_tensor_log_softmax(cg_tensor *x) {
    int64_t rows = 0, c = 0;
    cg_tensor *out = rows_result(&OP_LOG_SOFTMAX, x, &rows, &c);
    if (!out) return NULL;
    for (int64_t r = 0; r < rows; r++) {
        const float *z = x->data + r * c;
        float *y = out->data + r * c;
        const float m = row_max(z, c);
        const double lse = (double)m + log(row_sumexp(z, c, m)); /* log sum_k e^z_k */
        for (int64_t j = 0; j < c; j++) y[j] = (float)((double)z[j] - lse);
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* nll_loss and cross_entropy                                          */
/* ------------------------------------------------------------------ */

/* Checks x (logits or logp) is [N, C] with C >= 1, targets are [N] or
 * [N, 1], and each target is a class index 0..C-1, then makes the scalar
 * result (linked to x and targets); NULL after cg_fail otherwise. */
static cg_tensor *class_loss_result(const cg_op *op, const char *xname, cg_tensor *x,
                                    cg_tensor *targets) {
    if (!x || !targets) return NULL;
    char sx[64], st[64];
    if (x->ndim != 2 || x->shape[1] < 1) {
        cg_fail(CG_ERR_SHAPE, "%s: %s %s must be [N, C] with C >= 1 classes (targets %s)",
                op->name, xname, cg_shape_str(x, sx, sizeof sx),
                cg_shape_str(targets, st, sizeof st));
        return NULL;
    }
    const int64_t n = x->shape[0], c = x->shape[1];
    const bool fits = (targets->ndim == 1 && targets->shape[0] == n) ||
                      (targets->ndim == 2 && targets->shape[0] == n && targets->shape[1] == 1);
    if (!fits) {
        cg_fail(CG_ERR_SHAPE, "%s: %s %s and targets %s do not match: targets must be [%lld] "
                              "or [%lld, 1]",
                op->name, xname, cg_shape_str(x, sx, sizeof sx),
                cg_shape_str(targets, st, sizeof st), (long long)n, (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (class_index(targets->data[i], c) < 0) {
            cg_fail(CG_ERR_ARG, "%s: target %g at row %lld is not a class index 0..%lld",
                    op->name, (double)targets->data[i], (long long)i, (long long)(c - 1));
            return NULL;
        }
    return cg_op_result(op, NULL, 0, x, targets, NULL);
}

/*
 * nll_loss(y, t) = -(1/N) sum_i y[i, t_i]: only the picked entries have a
 * derivative, dL/dy[i, t_i] = -1/N. (The targets were checked in the
 * forward; one changed since then to a non-index is skipped, not written
 * out of bounds.)
 */
static void nll_loss_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0], *t = out->src[1];
    if (!cg_wants_grad(x)) return;
    const int64_t n = x->shape[0], c = x->shape[1];
    if (n == 0) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const float scale = out->grad[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = class_index(t->data[i], c);
        if (k >= 0) gx[i * c + k] -= scale;
    }
}
static const cg_op OP_NLL_LOSS = {"nll_loss", nll_loss_backward};

cg_tensor *cg_nll_loss(cg_tensor *logp, cg_tensor *targets) {
    cg_tensor *out = class_loss_result(&OP_NLL_LOSS, "logp", logp, targets);
    if (!out) return NULL;
    const int64_t n = logp->shape[0], c = logp->shape[1];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum -= logp->data[i * c + class_index(targets->data[i], c)];
    /* No rows: 0/0 = NaN, like the mean of an empty tensor. */
    out->data[0] = (float)(sum / (double)n);
    return out;
}

/*
 * cross_entropy(z, t) = nll_loss(log_softmax(z), t). Row i's term is
 *   l_i = -log_softmax(z_i)[t_i] = log(sum_k e^(z_ik - m_i)) - (z_i,t_i - m_i)
 * and L = (1/N) sum_i l_i. Chaining log_softmax's derivative with the
 * one-hot gradient of nll_loss (g_j = -delta_j,t_i / N, sum_j g_j = -1/N):
 *   dL/dz_ij = (softmax(z_i)_j - delta_j,t_i) / N
 * The backward recomputes softmax(z_i) = e^(z_ij - m_i) / sum_k e^(z_ik - m_i)
 * row by row, adds it scaled, then takes the target's 1/N off.
 */
static void cross_entropy_backward(cg_tensor *out) {
    cg_tensor *x = out->src[0], *t = out->src[1];
    if (!cg_wants_grad(x)) return;
    const int64_t n = x->shape[0], c = x->shape[1];
    if (n == 0) return;
    float *gx = cg_grad_buf(x);
    if (!gx) return;
    const float scale = out->grad[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        const float *z = x->data + i * c;
        float *gr = gx + i * c;
        const float m = row_max(z, c);
        const float per_e = (float)(1.0 / row_sumexp(z, c, m)) * scale; /* scale / sum */
        for (int64_t j = 0; j < c; j++) gr[j] += expf(z[j] - m) * per_e;
        int64_t k = class_index(t->data[i], c); /* see nll_loss_backward */
        if (k >= 0) gr[k] -= scale;
    }
}
static const cg_op OP_CROSS_ENTROPY = {"cross_entropy", cross_entropy_backward};

cg_tensor *cg_cross_entropy(cg_tensor *logits, cg_tensor *targets) {
    cg_tensor *out = class_loss_result(&OP_CROSS_ENTROPY, "logits", logits, targets);
    if (!out) return NULL;
    const int64_t n = logits->shape[0], c = logits->shape[1];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits->data + i * c;
        const float m = row_max(z, c);
        const int64_t k = class_index(targets->data[i], c);
        sum += log(row_sumexp(z, c, m)) - ((double)z[k] - (double)m);
    }
    /* No rows: 0/0 = NaN, like the mean of an empty tensor. */
    out->data[0] = (float)(sum / (double)n);
    return out;
}

/* ------------------------------------------------------------------ */
/* accuracy                                                            */
/* ------------------------------------------------------------------ */

/*
 * mean(argmax(logits, -1) == targets), the book's chapter 5 accuracy.
 * The argmax is cg_tensor_argmax's: the first max of a row, a NaN winning
 * over any number. A target that is no class index never matches, so it
 * counts as a miss rather than an error.
 */
float cg_accuracy(const cg_tensor *logits, const cg_tensor *targets) {
    if (!logits || !targets) return NAN;
    char sx[64], st[64];
    const int64_t c = logits->ndim ? logits->shape[logits->ndim - 1] : 0;
    if (c < 1) {
        cg_fail(CG_ERR_SHAPE, "accuracy: logits %s have no classes along their last dim",
                cg_shape_str(logits, sx, sizeof sx));
        return NAN;
    }
    const int64_t rows = logits->numel / c;
    if (targets->numel != rows) {
        cg_fail(CG_ERR_SHAPE, "accuracy: logits %s and targets %s differ in rows (%lld vs %lld)",
                cg_shape_str(logits, sx, sizeof sx), cg_shape_str(targets, st, sizeof st),
                (long long)rows, (long long)targets->numel);
        return NAN;
    }
    int64_t correct = 0;
    for (int64_t i = 0; i < rows; i++) {
        const float *z = logits->data + i * c;
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (z[j] > z[best] || (isnan(z[j]) && !isnan(z[best]))) best = j;
        correct += (double)best == (double)targets->data[i];
    }
    /* No rows: 0/0 = NaN, like the mean of an empty tensor. */
    return (float)((double)correct / (double)rows);
}
