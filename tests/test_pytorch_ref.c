/* test_pytorch_ref.c - every model kind, loss and optimizer against
 * PyTorch, the pattern of llm.c's test_gpt2: tests/pytorch/make_fixtures.py
 * (run by hand where PyTorch is installed) trained tiny models for 5 steps
 * and wrote down the inputs, the initial weights, and at every step the
 * loss and every parameter's gradient, then the parameters after the last
 * step (tests/fixtures/NAME.bin). Here cgrad replays the same steps from
 * the same weights and must agree. No PyTorch needed: CI runs this on the
 * committed fixtures. Each case prints the largest differences it saw.
 *
 * The cases (N = 16 rows of 20 inputs, 5 mini-batches):
 *   linear_mnist_sgd      "linear", mnist_loss, SGD lr 1 (the article)
 *   mlp_mnist_sgd         "linear:8,relu,linear", mnist_loss, SGD lr 0.1
 *   mlp_bce_sgd           the same with bce_with_logits
 *   linear_ce_adam        "linear", 4 classes, cross-entropy, Adam lr 1e-2
 *   mlp2_ce_sgd_nesterov  "linear:8,relu,linear:6,relu,linear", 4 classes,
 *                         SGD lr 0.1, momentum 0.9, Nesterov, L2 wd 1e-3
 *   mlp2_ce_adamw_1cycle  the same model, AdamW wd 0.01 under one-cycle
 *                         (lr_max 1e-2 over the 5 steps)
 * and on images (N = 8 images 1x8x8, 4 mini-batches, 3 classes,
 * cross-entropy, train mode: batch norm on batch statistics), where the
 * running statistics after the last step are compared too:
 *   cnn_bn_adamw          "conv:4:3:2,relu,bn,conv:6:3:2,relu,bn,conv:3:3:2,
 *                         bn,flatten" (fastbook's simple_cnn style), AdamW
 *                         lr 1e-2, wd 0.01
 *   resblock_sgd_mom      "conv:4:3,bn,relu,res:6:2,gap,linear" (a res block
 *                         with its 1x1 projection), SGD lr 0.05, momentum 0.9
 *
 * Fixture format (little-endian; u32 = uint32, f32 = IEEE float32; the
 * script's docstring is the other copy of this):
 *     char[8]  magic "CGPTFX1\0"
 *     char[32] the case's name, NUL-padded
 *     u32      n_rows, n_in, n_out, n_steps, n_params
 *     u32      numel[n_params]        in cgrad's order w1, b1, w2, b2, ...
 *     f32      params0[P]             P = sum(numel); cgrad's layout (a
 *                                     linear weight [in, out], a bias [out])
 *     n_steps times:
 *       f32    lr, mom                the step's lr and momentum / beta1
 *       f32    x[n_rows * n_in]       the mini-batch
 *       f32    y[n_rows]              0/1 targets or class indices
 *       f32    loss                   PyTorch's loss
 *       f32    grads[P]               after loss.backward(), as params0
 *     f32      params_final[P]        after the last step
 *     char[4]  "END\0"
 * Version 2 (magic "CGPTFX2\0", the cases with batch norm) adds the
 * running statistics: u32 n_state after n_params, u32 state_numel[n_state]
 * after numel (each layer's state in order: bn running_mean, running_var;
 * res rm1, rv1, rm2, rv2, rm3, rv3), f32 state0[S] after params0 and f32
 * state_final[S] after params_final (S = sum(state_numel)). A conv weight is
 * [out, in, kh, kw], PyTorch's layout.
 * The reader checks every count and length first and fails cleanly (no
 * crash) on a short, long or corrupt file.
 *
 * The fixtures are found next to this source: dirname(__FILE__)/fixtures
 * (CMake compiles tests with absolute paths), or in
 * $CGRAD_PYTORCH_FIXTURES when that is set.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tolerances, float32 against float32: PyTorch's GEMMs and reductions sum
 * in other orders than ours, so the bits differ, and 5 steps let a
 * difference grow a little. Measured (torch 1.13, x86-64): loss within
 * 2.4e-7 (rel 1.6e-7), gradients within 4.5e-8, final parameters within
 * 1.2e-7 - every value under 2% of its tolerance, Adam included (its eps
 * of 1e-5 keeps m / (sqrt(v) + eps) from amplifying tiny differences).
 * The image cases (convolutions, batch norm over 8 to 128 values a
 * channel): loss within 2.4e-7, gradients within 3.4e-6 (rel 7.3e-5; 3%
 * of the tolerance), final parameters within 4.5e-8, running statistics
 * within 1.2e-7 - except the parameters Adam sees only noise for
 * (DEAD_GRAD below). */
#define LOSS_RTOL 1e-5
#define ATOL 1e-5
#define RTOL 1e-4

/* Parameters whose exact gradient is 0. In cnn_bn_adamw the last conv's
 * bias and the batch norm before that conv's beta shift every value of a
 * channel that the last batch norm then subtracts as the batch mean, so
 * their gradients are rounding noise (PyTorch's ~1e-8, cgrad's likewise,
 * the two unrelated) against 0.1..10 for the others. The gradients are
 * still compared (to ATOL: the noise is ~1e-7 at most). But Adam divides
 * by sqrt(v) + eps with eps = 1e-5 > noise, so each step moves such a
 * parameter by about lr * noise / eps ~ 1e-5..1e-4, in a direction of its
 * own on each side: the final values differ by up to 6.9e-5 (measured),
 * and the last batch norm's running mean, which takes the conv's bias,
 * by 1.6e-5. An element whose reference gradient stays under DEAD_GRAD
 * at every step is "dead": its final value is held to DEAD_ATOL (4 steps
 * of lr * 2 noise / eps with noise up to 1.25e-7: 1e-3), and a case with
 * dead elements may set .stats_atol for its running statistics. Everything
 * else keeps ATOL / RTOL. */
#define DEAD_GRAD 1e-6
#define DEAD_ATOL 1e-3
/* The running statistics downstream of dead elements: 10x the drift seen. */
#define STATS_ATOL_DEAD 2e-4

#define FX_MAX_PARAMS 32
#define FX_MAX_STEPS 64
#define FX_MAX_DIM 4096        /* n_rows, n_in, n_out    */
#define FX_MAX_NUMEL (1 << 20) /* one parameter's size   */

static const char FX_MAGIC[8] = {'C', 'G', 'P', 'T', 'F', 'X', '1', '\0'};
static const char FX_MAGIC2[8] = {'C', 'G', 'P', 'T', 'F', 'X', '2', '\0'};
static const char FX_END[4] = {'E', 'N', 'D', '\0'};

typedef struct fx_step {
    float lr, mom, loss;
    const float *x, *y, *grads;
} fx_step;

typedef struct fixture {
    char name[33];
    uint32_t n_rows, n_in, n_out, n_steps, n_params, n_state;
    uint32_t numel[FX_MAX_PARAMS], state_numel[FX_MAX_PARAMS];
    int64_t total;       /* P = sum(numel)                          */
    int64_t state_total; /* S = sum(state_numel), 0 for version 1   */
    const float *params0, *final;
    const float *state0, *state_final; /* NULL for version 1 */
    fx_step steps[FX_MAX_STEPS];
    float *block;  /* every float of the file, decoded */
} fixture;

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static bool rd_bytes(reader *r, void *dst, size_t n) {
    if (r->len - r->pos < n) return false;
    memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return true;
}

static bool rd_u32(reader *r, uint32_t *v) {
    uint8_t b[4];
    if (!rd_bytes(r, b, 4)) return false;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

/* n little-endian float32 into dst (bounds checked before the first). */
static bool rd_f32s(reader *r, float *dst, int64_t n) {
    if (n < 0 || (uint64_t)n > (r->len - r->pos) / 4) return false;
    const uint8_t *b = r->p + r->pos;
    for (int64_t i = 0; i < n; i++, b += 4) {
        const uint32_t u =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&dst[i], &u, sizeof u);
    }
    r->pos += (size_t)n * 4;
    return true;
}

static void fixture_free(fixture *fx) {
    free(fx->block);
    fx->block = NULL;
}

/* Parses buf[0..len) into fx; false with a reason in err (and nothing to
 * free) when the file is not a whole, well-formed fixture. */
static bool fixture_parse(const uint8_t *buf, size_t len, fixture *fx, char *err, size_t errsz) {
    memset(fx, 0, sizeof *fx);
    reader r = {buf, len, 0};
    char magic[8];
    if (!rd_bytes(&r, magic, 8) ||
        (memcmp(magic, FX_MAGIC, 8) != 0 && memcmp(magic, FX_MAGIC2, 8) != 0)) {
        snprintf(err, errsz, "not a fixture (bad magic, or shorter than 8 bytes)");
        return false;
    }
    const bool v2 = memcmp(magic, FX_MAGIC2, 8) == 0;
    if (!rd_bytes(&r, fx->name, 32)) goto short_file;
    fx->name[32] = '\0';
    if (!rd_u32(&r, &fx->n_rows) || !rd_u32(&r, &fx->n_in) || !rd_u32(&r, &fx->n_out) ||
        !rd_u32(&r, &fx->n_steps) || !rd_u32(&r, &fx->n_params) ||
        (v2 && !rd_u32(&r, &fx->n_state)))
        goto short_file;
    if (fx->n_rows < 1 || fx->n_rows > FX_MAX_DIM || fx->n_in < 1 || fx->n_in > FX_MAX_DIM ||
        fx->n_out < 1 || fx->n_out > FX_MAX_DIM || fx->n_steps < 1 ||
        fx->n_steps > FX_MAX_STEPS || fx->n_params < 1 || fx->n_params > FX_MAX_PARAMS ||
        fx->n_state > FX_MAX_PARAMS || (v2 && fx->n_state < 1)) {
        snprintf(err, errsz,
                 "counts out of range: rows %u in %u out %u steps %u params %u state %u",
                 fx->n_rows, fx->n_in, fx->n_out, fx->n_steps, fx->n_params, fx->n_state);
        return false;
    }
    for (uint32_t j = 0; j < fx->n_params; j++) {
        if (!rd_u32(&r, &fx->numel[j])) goto short_file;
        if (fx->numel[j] < 1 || fx->numel[j] > FX_MAX_NUMEL) {
            snprintf(err, errsz, "parameter %u has %u elements", j, fx->numel[j]);
            return false;
        }
        fx->total += fx->numel[j];
    }
    for (uint32_t j = 0; j < fx->n_state; j++) {
        if (!rd_u32(&r, &fx->state_numel[j])) goto short_file;
        if (fx->state_numel[j] < 1 || fx->state_numel[j] > FX_MAX_NUMEL) {
            snprintf(err, errsz, "state tensor %u has %u elements", j, fx->state_numel[j]);
            return false;
        }
        fx->state_total += fx->state_numel[j];
    }
    /* Every count is bounded above, so none of these products overflow. */
    const int64_t rows = fx->n_rows, nx = rows * fx->n_in, P = fx->total, S = fx->state_total;
    const int64_t per_step = 2 + nx + rows + 1 + P;
    const int64_t floats = P + S + fx->n_steps * per_step + P + S;
    if ((uint64_t)floats * 4 + sizeof FX_END != (uint64_t)(len - r.pos)) {
        snprintf(err, errsz, "%zu bytes after the header, the counts say %lld",
                 len - r.pos, (long long)(floats * 4 + (int64_t)sizeof FX_END));
        return false;
    }
    float *f = malloc((size_t)floats * sizeof(float));
    if (!f) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    fx->block = f;
    bool ok = rd_f32s(&r, f, floats);
    fx->params0 = f;
    f += P;
    fx->state0 = v2 ? f : NULL;
    f += S;
    for (uint32_t s = 0; s < fx->n_steps; s++) {
        fx_step *st = &fx->steps[s];
        st->lr = f[0];
        st->mom = f[1];
        st->x = f + 2;
        st->y = st->x + nx;
        st->loss = st->y[rows];
        st->grads = st->y + rows + 1;
        f += per_step;
    }
    fx->final = f;
    fx->state_final = v2 ? f + P : NULL;
    char end[4];
    if (!ok || !rd_bytes(&r, end, 4) || memcmp(end, FX_END, 4) != 0 || r.pos != len) {
        fixture_free(fx);
        snprintf(err, errsz, "bad trailer (the file is corrupt)");
        return false;
    }
    return true;

short_file:
    snprintf(err, errsz, "the file ends in its header (%zu bytes)", len);
    return false;
}

static void fixture_path(const char *name, char *buf, size_t size) {
    const char *env = getenv("CGRAD_PYTORCH_FIXTURES");
    if (env && *env) {
        snprintf(buf, size, "%s/%s.bin", env, name);
        return;
    }
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    if (slash)
        snprintf(buf, size, "%.*s/fixtures/%s.bin", (int)(slash - file), file, name);
    else
        snprintf(buf, size, "fixtures/%s.bin", name);
}

static uint8_t *fixture_bytes(const char *name, size_t *len) {
    char path[1024];
    fixture_path(name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open the fixture %s (made by tests/pytorch/make_fixtures.py)", path);
    fclose(f);
    return cg_test_read_file(path, len);
}

static void fixture_load(const char *name, fixture *fx) {
    size_t len;
    uint8_t *buf = fixture_bytes(name, &len);
    char err[256];
    bool ok = fixture_parse(buf, len, fx, err, sizeof err);
    free(buf);
    if (!ok) fail_msg("fixture %s: %s", name, err);
    if (strcmp(fx->name, name) != 0) {
        fixture_free(fx);
        fail_msg("fixture %s.bin holds the case \"%s\"", name, fx->name);
    }
}

/* ---- comparing ---- */

/* The largest differences seen in one kind of value, and the worst one
 * measured against its tolerance (diff / (atol + rtol * |expected|)). */
typedef struct worst {
    double max_abs, max_rel, ratio;
    double got, want;
    char where[96];
    int64_t count;
} worst;

static void see(worst *w, double got, double want, double atol, double rtol, const char *what,
                int step, int64_t idx) {
    double diff = fabs(got - want);
    double ratio = diff / (atol + rtol * fabs(want));
    if (!isfinite(got) || !isfinite(ratio)) ratio = INFINITY, diff = INFINITY;
    double rel = want != 0 ? diff / fabs(want) : (diff == 0 ? 0 : INFINITY);
    w->count++;
    if (diff > w->max_abs) w->max_abs = diff;
    /* The relative difference of a value near 0 says little. */
    if (rel > w->max_rel && fabs(want) > 1e-3) w->max_rel = rel;
    if (ratio > w->ratio || w->count == 1) {
        w->ratio = ratio;
        w->got = got;
        w->want = want;
        if (step >= 0)
            snprintf(w->where, sizeof w->where, "step %d %s[%lld]", step + 1, what,
                     (long long)idx);
        else
            snprintf(w->where, sizeof w->where, "%s[%lld]", what, (long long)idx);
    }
}

static void report(const char *name, const char *kind, const worst *w) {
    printf("[ pytorch  ] %-22s %-6s max |diff| %.3g, max rel %.3g (|ref| > 1e-3); "
           "worst %.3g of tol at %s\n",
           name, kind, w->max_abs, w->max_rel, w->ratio, w->where);
}

static void assert_within(const char *name, const char *kind, const worst *w) {
    if (!(w->ratio <= 1.0))
        fail_msg("%s: %s %s: cgrad %.9g, PyTorch %.9g (%.3g times the tolerance)", name, kind,
                 w->where, w->got, w->want, w->ratio);
}

/* Where m->params[j] (or, state, the j-th state tensor over the layers)
 * lives: "conv1.p0" - layer 1 (from 1), a conv, its tensor 0. */
static const char *tensor_name(const cg_model *m, int j, bool state, char *buf, size_t size) {
    for (int i = 0; i < m->n_layers; i++) {
        const cg_layer *l = &m->layers[i];
        const int n = state ? l->n_state : l->n_params;
        if (j < n) {
            snprintf(buf, size, "%s%d.%s%d", cg_layer_name(l), i + 1, state ? "s" : "p", j);
            return buf;
        }
        j -= n;
    }
    snprintf(buf, size, "?");
    return buf;
}

/* ---- replaying ---- */

typedef struct ref_case {
    const char *name, *spec;
    int64_t n_out;
    cg_loss_kind loss;
    cg_optim_config opt;
    bool one_cycle; /* cg_one_cycle(opt.lr) over the fixture's steps */
    bool images;    /* items 1x8x8 (cgrad's [1, 8, 8], x given as [N, 64]), Kaiming
                       init (replaced by the fixture's), running stats checked */
    double stats_atol; /* the running statistics' ATOL (0: ATOL); see DEAD_GRAD */
} ref_case;

static void run_case(const ref_case *c) {
    fixture fx;
    fixture_load(c->name, &fx);
    if ((int64_t)fx.n_out != c->n_out) {
        fixture_free(&fx);
        fail_msg("%s: the fixture has %u outputs, the case %lld", c->name, fx.n_out,
                 (long long)c->n_out);
    }
    const int64_t rows = fx.n_rows;
    const bool binary = c->loss != CG_LOSS_CE;

    cg_rng rng;
    cg_rng_seed(&rng, 0); /* any weights: the fixture's replace them */
    cg_model *m =
        c->images ? cg_model_from_spec(c->spec, "custom", (int64_t[]){1, 8, 8}, 3, c->n_out,
                                       CG_INIT_KAIMING, 0.0f, &rng)
                  : cg_model_from_spec(c->spec, NULL, (int64_t[]){fx.n_in}, 1, c->n_out,
                                       CG_INIT_PYTORCH, 0.0f, &rng);
    if (!m) fail_msg("%s: model \"%s\": %s", c->name, c->spec, cg_last_error());
    if (c->images != (fx.state0 != NULL)) {
        fixture_free(&fx);
        fail_msg("%s: an image case needs a version-2 fixture and only it", c->name);
    }
    assert_int_equal(m->n_inputs, fx.n_in);
    /* The running statistics from the fixture (PyTorch's 0 / 1). */
    int n_state = 0;
    for (int i = 0, off = 0; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_state; k++, n_state++) {
            cg_tensor *t = m->layers[i].state[k];
            assert_true(n_state < (int)fx.n_state);
            assert_int_equal(t->numel, fx.state_numel[n_state]);
            memcpy(t->data, fx.state0 + off, (size_t)t->numel * sizeof(float));
            off += (int)t->numel;
        }
    assert_int_equal(n_state, fx.n_state);
    assert_int_equal(m->n_params, fx.n_params);
    for (int j = 0, off = 0; j < m->n_params; j++) {
        cg_tensor *p = m->params[j];
        assert_int_equal(p->numel, fx.numel[j]);
        assert_true(p->requires_grad);
        memcpy(p->data, fx.params0 + off, (size_t)p->numel * sizeof(float));
        off += (int)p->numel;
    }
    cg_optimizer *o = cg_optimizer_new(&c->opt, m->params, m->n_params);
    if (!o) fail_msg("%s: optimizer: %s", c->name, cg_last_error());
    const cg_schedule sched = cg_one_cycle(c->opt.lr);

    worst wl = {0}, wg = {0}, wp = {0}, ws = {0};
    char pname[48];
    for (uint32_t s = 0; s < fx.n_steps; s++) {
        const fx_step *st = &fx.steps[s];
        /* The hyper-parameters first: the fixture says which it used. */
        float lr = c->opt.lr, mom = c->opt.momentum;
        if (c->one_cycle) {
            cg_schedule_at(&sched, (double)s / fx.n_steps, &lr, &mom);
            cg_optimizer_set_lr(o, lr);
            cg_optimizer_set_momentum(o, mom);
        }
        char what[64];
        snprintf(what, sizeof what, "%s step %u lr", c->name, s + 1);
        cg_assert_close(lr, st->lr, 0, 1e-6, what);
        snprintf(what, sizeof what, "%s step %u momentum", c->name, s + 1);
        cg_assert_close(mom, st->mom, 0, 1e-6, what);

        cg_model_train(m, true); /* batch norm on the batch's statistics */
        cg_scope_begin();
        cg_tensor *x = cg_tensor_from_data(st->x, (int64_t[]){rows, fx.n_in}, 2);
        cg_tensor *y = binary ? cg_tensor_from_data(st->y, (int64_t[]){rows, 1}, 2)
                              : cg_tensor_from_data(st->y, (int64_t[]){rows}, 1);
        cg_tensor *loss = cg_loss(c->loss, cg_model_forward(m, x), y);
        if (!loss) fail_msg("%s step %u: %s", c->name, s + 1, cg_last_error());
        see(&wl, cg_tensor_item(loss), st->loss, 0.0, LOSS_RTOL, "loss", (int)s, 0);
        assert_int_equal(cg_backward(loss), CG_OK);
        for (int j = 0, off = 0; j < m->n_params; j++) {
            const cg_tensor *p = m->params[j];
            assert_non_null(p->grad);
            tensor_name(m, j, false, pname, sizeof pname);
            for (int64_t i = 0; i < p->numel; i++)
                see(&wg, p->grad[i], st->grads[off + i], ATOL, RTOL, pname, (int)s, i);
            off += (int)p->numel;
        }
        assert_int_equal(cg_optimizer_step(o), CG_OK);
        cg_scope_end();
    }
    worst wd = {0}; /* the dead elements (DEAD_GRAD) */
    for (int j = 0, off = 0; j < m->n_params; j++) {
        const cg_tensor *p = m->params[j];
        tensor_name(m, j, false, pname, sizeof pname);
        for (int64_t i = 0; i < p->numel; i++) {
            /* Only Adam amplifies the noise; under SGD a dead element
             * moves by lr * noise, and ATOL holds. */
            bool dead = c->opt.kind == CG_OPTIM_ADAM;
            for (uint32_t s = 0; s < fx.n_steps && dead; s++)
                dead = fabs(fx.steps[s].grads[off + i]) < DEAD_GRAD;
            if (dead)
                see(&wd, p->data[i], fx.final[off + i], DEAD_ATOL, 0.0, pname, -1, i);
            else
                see(&wp, p->data[i], fx.final[off + i], ATOL, RTOL, pname, -1, i);
        }
        off += (int)p->numel;
    }
    const double stats_atol = c->stats_atol > 0 ? c->stats_atol : ATOL;
    for (int i = 0, j = 0, off = 0; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_state; k++, j++) {
            const cg_tensor *t = m->layers[i].state[k];
            tensor_name(m, j, true, pname, sizeof pname);
            for (int64_t e = 0; e < t->numel; e++)
                see(&ws, t->data[e], fx.state_final[off + e], stats_atol, RTOL, pname, -1, e);
            off += (int)t->numel;
        }
    report(c->name, "loss", &wl);
    report(c->name, "grads", &wg);
    report(c->name, "params", &wp);
    if (wd.count) report(c->name, "dead", &wd);
    if (n_state) report(c->name, "stats", &ws);
    cg_optimizer_free(o);
    cg_model_free(m);
    fixture_free(&fx);
    assert_within(c->name, "loss", &wl);
    assert_within(c->name, "gradient", &wg);
    assert_within(c->name, "final parameter", &wp);
    assert_within(c->name, "final dead parameter", &wd);
    assert_within(c->name, "final running statistic", &ws);
}

/* ---- the cases ---- */

static void test_pytorch_linear_mnist_sgd(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "linear_mnist_sgd", .spec = "linear", .n_out = 1,
                         .loss = CG_LOSS_MNIST, .opt = cg_sgd_config(1.0f)});
}

static void test_pytorch_mlp_mnist_sgd(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "mlp_mnist_sgd", .spec = "linear:8,relu,linear", .n_out = 1,
                         .loss = CG_LOSS_MNIST, .opt = cg_sgd_config(0.1f)});
}

static void test_pytorch_mlp_bce_sgd(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "mlp_bce_sgd", .spec = "linear:8,relu,linear", .n_out = 1,
                         .loss = CG_LOSS_BCE, .opt = cg_sgd_config(0.1f)});
}

static void test_pytorch_linear_ce_adam(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "linear_ce_adam", .spec = "linear", .n_out = 4,
                         .loss = CG_LOSS_CE, .opt = cg_adam_config(1e-2f)});
}

static void test_pytorch_mlp2_ce_sgd_nesterov(void **state) {
    (void)state;
    cg_optim_config opt = cg_sgd_config(0.1f);
    opt.momentum = 0.9f;
    opt.nesterov = true;
    opt.weight_decay = 1e-3f;
    run_case(&(ref_case){.name = "mlp2_ce_sgd_nesterov",
                         .spec = "linear:8,relu,linear:6,relu,linear", .n_out = 4,
                         .loss = CG_LOSS_CE, .opt = opt});
}

static void test_pytorch_mlp2_ce_adamw_1cycle(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "mlp2_ce_adamw_1cycle",
                         .spec = "linear:8,relu,linear:6,relu,linear", .n_out = 4,
                         .loss = CG_LOSS_CE, .opt = cg_adamw_config(1e-2f, 0.01f),
                         .one_cycle = true});
}

static void test_pytorch_cnn_bn_adamw(void **state) {
    (void)state;
    run_case(&(ref_case){.name = "cnn_bn_adamw",
                         .spec = "conv:4:3:2,relu,bn,conv:6:3:2,relu,bn,conv:3:3:2,bn,flatten",
                         .n_out = 3, .loss = CG_LOSS_CE, .opt = cg_adamw_config(1e-2f, 0.01f),
                         .images = true, .stats_atol = STATS_ATOL_DEAD});
}

static void test_pytorch_resblock_sgd_mom(void **state) {
    (void)state;
    cg_optim_config opt = cg_sgd_config(0.05f);
    opt.momentum = 0.9f;
    run_case(&(ref_case){.name = "resblock_sgd_mom", .spec = "conv:4:3,bn,relu,res:6:2,gap,linear",
                         .n_out = 3, .loss = CG_LOSS_CE, .opt = opt, .images = true});
}

/* Every prefix of a good fixture, and the fixture with one byte more, is
 * refused; each an exact-size copy, so reading past its end is an ASan
 * error. */
static void assert_wrong_sizes_refused(const uint8_t *buf, size_t len, const char *what) {
    fixture fx;
    char err[256];
    for (size_t n = 0; n <= len + 1; n++) {
        if (n == len) continue;
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n < len ? n : len);
        if (n > len) copy[len] = 0;
        if (fixture_parse(copy, n, &fx, err, sizeof err))
            fail_msg("%s: a fixture of %zu bytes (of %zu) was accepted", what, n, len);
        free(copy);
    }
}

/* The reader on broken files: every truncation of a real fixture, one
 * byte too many, a wrong magic, a wrong trailer and absurd counts are
 * refused with a reason, never read past the end (ASan checks that). */
static void test_fixture_reader_rejects_bad_files(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = fixture_bytes("mlp_mnist_sgd", &len);
    fixture fx;
    char err[256];
    assert_true(fixture_parse(buf, len, &fx, err, sizeof err));
    fixture_free(&fx);

    assert_wrong_sizes_refused(buf, len, "version 1");

    buf[0] ^= 1; /* magic */
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    buf[0] ^= 1;
    buf[len - 2] ^= 1; /* trailer */
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    buf[len - 2] ^= 1;
    /* n_steps (offset 8 + 32 + 12) = 0xffffffff, then numel[0] = 2^31. */
    memset(buf + 52, 0xff, 4);
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    buf[52] = 5, buf[53] = buf[54] = buf[55] = 0;
    assert_true(fixture_parse(buf, len, &fx, err, sizeof err));
    fixture_free(&fx);
    buf[60 + 3] = 0x80;
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    free(buf);

    /* Version 2: every truncation, one byte too many, absurd n_state (at
     * 8 + 32 + 20) and state_numel[0] (after the params' sizes). */
    buf = fixture_bytes("cnn_bn_adamw", &len);
    assert_true(fixture_parse(buf, len, &fx, err, sizeof err));
    assert_non_null(fx.state0);
    const uint32_t np = fx.n_params;
    fixture_free(&fx);
    assert_wrong_sizes_refused(buf, len, "version 2");
    uint8_t save[4];
    memcpy(save, buf + 60, 4);
    memset(buf + 60, 0xff, 4);
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    memset(buf + 60, 0, 4);
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    memcpy(buf + 60, save, 4);
    assert_true(fixture_parse(buf, len, &fx, err, sizeof err));
    fixture_free(&fx);
    buf[64 + 4 * np + 3] = 0x80;
    assert_false(fixture_parse(buf, len, &fx, err, sizeof err));
    free(buf);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pytorch_linear_mnist_sgd),
    cmocka_unit_test(test_pytorch_mlp_mnist_sgd),
    cmocka_unit_test(test_pytorch_mlp_bce_sgd),
    cmocka_unit_test(test_pytorch_linear_ce_adam),
    cmocka_unit_test(test_pytorch_mlp2_ce_sgd_nesterov),
    cmocka_unit_test(test_pytorch_mlp2_ce_adamw_1cycle),
    cmocka_unit_test(test_pytorch_cnn_bn_adamw),
    cmocka_unit_test(test_pytorch_resblock_sgd_mom),
    cmocka_unit_test(test_fixture_reader_rejects_bad_files),
};

CG_TEST_MAIN(tests)
