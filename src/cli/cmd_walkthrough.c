/*
 * cmd_walkthrough.c - `cgrad walkthrough`: the article ("Building a Simple
 * MNIST Classifier, Part 2", which retells fastbook chapter 4) as a narrated
 * run on the real MNIST_SAMPLE data.
 *
 * Each step prints the Python line it mirrors (">>> ...") and then what
 * cgrad computes for it now, in PyTorch's print format - nothing here is a
 * stored answer. The steps past the article's end (the training loop) are
 * the book's, which the article's Part 3 follows.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgrad.h"
#include "cli/cli_data.h"
#include "cli/options.h"
#include "cli/pyfmt.h"
#include "cli/term.h"
#include "util/file.h"

static const char WALK_USAGE[] =
    "usage: cgrad walkthrough [--data PATH] [--seed N] [--epochs N] [--lr X] [--ascii]\n"
    "                         [--figures DIR]\n"
    "  The article's code, step by step, run on MNIST_SAMPLE with cgrad.\n";

#define BATCH_SIZE 256

typedef struct walk {
    char root[4096];
    uint64_t seed;
    int64_t epochs;
    float lr;
    cg_term_mode mode;
    const char *figures; /* --figures DIR: the article's pictures go there (NULL: none) */
    int64_t height, width;
    /* the article's long-lived tensors, owned here */
    cg_tensor *train_x, *train_y, *valid_x, *valid_y;
    cg_tensor *weights, *bias;
} walk;

/* ------------------------------------------------------------------ */
/* Narration                                                           */
/* ------------------------------------------------------------------ */

/* A Python cell: first line after ">>> ", the rest after "... ". */
static void py(const char *code) {
    const char *prompt = ">>> ";
    while (*code) {
        size_t n = strcspn(code, "\n");
        printf("%s%.*s\n", prompt, (int)n, code);
        code += n + (code[n] == '\n');
        prompt = "... ";
    }
}

/* py() with printf formatting, for cells that show a setting's value. */
static void pyf(const char *fmt, ...) {
    char code[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(code, sizeof code, fmt, ap);
    va_end(ap);
    py(code);
}

/* "lr = 1." as Python writes a whole float, else "lr = 0.1". */
static void py_lr(float lr) {
    if (lr == floorf(lr)) pyf("lr = %.0f.", (double)lr);
    else pyf("lr = %g", (double)lr);
}

static void section(const char *title) { printf("\n== %s ==\n\n", title); }

/* --figures: DIR/name, into path. */
static const char *figure_path(const walk *s, const char *name, char *path, size_t size) {
    snprintf(path, size, "%s/%s", s->figures, name);
    return path;
}

/* One figure drawn (st) at path, said beside the narration; only with
 * --figures, so the narration without it is unchanged. */
static bool figure_done(cg_status st, const char *path, const char *what) {
    if (st != CG_OK) return false;
    printf("# figure: %s (%s)\n", path, what);
    return true;
}

/* Images [h, w] of floats in [0, 1], ink dark on white as show_image draws. */
static bool figure_images(const walk *s, const char *name, const char *what, const char *title,
                          const float *const *images, const char *const *captions, int n) {
    cg_plot_image ims[4];
    for (int i = 0; i < n && i < 4; i++)
        ims[i] = (cg_plot_image){.floats = images[i], .h = s->height, .w = s->width,
                                 .caption = captions[i]};
    cg_image_grid g = {.title = title, .images = ims, .n = n < 4 ? n : 4,
                       .cmap = CG_CMAP_GREYS, .lo = 0, .hi = 1, .cell = 140};
    char path[4200];
    figure_path(s, name, path, sizeof path);
    return figure_done(cg_plot_image_grid(&g, path), path, what);
}

static void print_t(const cg_tensor *t, cg_py_kind kind) {
    cg_py_print_tensor(stdout, t, kind);
    putchar('\n');
}

/* A batch of item indices as PyTorch shows an int tensor. */
static void print_indices(const int64_t *idx, int64_t n) {
    float v[BATCH_SIZE];
    int64_t shape[1] = {n};
    for (int64_t i = 0; i < n && i < BATCH_SIZE; i++) v[i] = (float)idx[i];
    cg_py_print_values(stdout, v, shape, 1, CG_PY_INT, NULL);
}

/* ------------------------------------------------------------------ */
/* The article's helpers, in C                                         */
/* ------------------------------------------------------------------ */

/* def init_params(size, std=1.0): return (torch.randn(size)*std).requires_grad_()
 * Made outside any scope's reach: the caller owns the result. */
static cg_tensor *init_params(const int64_t *size, int ndim, float std) {
    cg_scope_begin();
    cg_tensor *p =
        cg_tensor_retain(cg_tensor_mul(cg_tensor_randn(size, ndim, NULL), cg_tensor_scalar(std)));
    cg_scope_end();
    return cg_tensor_requires_grad(p, true);
}

/* def linear1(xb): return xb@weights + bias */
static cg_tensor *linear1(const walk *s, cg_tensor *xb) {
    return cg_tensor_add(cg_tensor_matmul(xb, s->weights), s->bias);
}

/* The first mnist_loss, before sigmoid: where(targets==1, 1-predictions, predictions).mean() */
static cg_tensor *mnist_loss_raw(cg_tensor *predictions, cg_tensor *targets) {
    cg_tensor *one = cg_tensor_scalar(1.0f);
    return cg_tensor_mean(
        cg_tensor_where(cg_tensor_eq(targets, one), cg_tensor_sub(one, predictions), predictions));
}

/* The images of one class of a cg_dataset as [n, h, w]: the article's
 * stacked_threes. *count gets n. */
static cg_tensor *class_stack(const cg_dataset *ds, const char *dir, const char *name,
                              int64_t *count) {
    int c = -1;
    for (int k = 0; k < ds->n_classes; k++)
        if (strcmp(ds->class_names[k], name) == 0) c = k;
    if (c < 0) {
        cg_fail(CG_ERR_FORMAT, "%s has no class folder '%s' (the article needs 3/ and 7/)", dir,
                name);
        return NULL;
    }
    int64_t n = 0;
    cg_tensor *rows = cg_dataset_class_rows(ds, c, &n);
    int64_t shape[3] = {n, ds->height, ds->width};
    *count = n;
    return cg_tensor_reshape(rows, shape, 3);
}

/* x = torch.cat([threes, sevens]).view(-1, 28*28);
 * y = tensor([1]*len(threes) + [0]*len(sevens)).unsqueeze(1).
 * Both retained: they outlive the scope they are made in. */
static bool make_xy(cg_tensor *threes, cg_tensor *sevens, cg_tensor **x, cg_tensor **y) {
    if (!threes || !sevens) return false;
    int64_t flat[2] = {-1, threes->shape[1] * threes->shape[2]};
    cg_tensor *both[2] = {threes, sevens};
    *x = cg_tensor_retain(cg_tensor_reshape(cg_tensor_cat(both, 2, 0), flat, 2));
    cg_tensor *labels[2] = {cg_tensor_ones(&threes->shape[0], 1),
                            cg_tensor_zeros(&sevens->shape[0], 1)};
    *y = cg_tensor_retain(cg_tensor_unsqueeze(cg_tensor_cat(labels, 2, 0), 1));
    return *x && *y;
}

/* Loads DIR/3 and DIR/7 as [n, 28, 28] stacks (floats in [0, 1]). */
static bool load_stacks(walk *s, const char *split, cg_tensor **threes, cg_tensor **sevens,
                        int64_t *n3, int64_t *n7) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", s->root, split);
    cg_dataset ds = {0};
    char cache[4200];
    if (cg_dataset_load_folder_cached(&ds, dir, cg_cli_image_cache(cache, sizeof cache)) != CG_OK)
        return false;
    *threes = class_stack(&ds, dir, "3", n3);
    *sevens = class_stack(&ds, dir, "7", n7);
    s->height = ds.height;
    s->width = ds.width;
    cg_dataset_free(&ds);
    return *threes && *sevens;
}

/* ------------------------------------------------------------------ */
/* The steps                                                           */
/* ------------------------------------------------------------------ */

static bool step_load(walk *s) {
    section("Loading the data");
    bool ok = false;
    cg_scope_begin();
    printf("# path = untar_data(URLs.MNIST_SAMPLE) is, here: %s\n", s->root);
    py("threes = (path/'train'/'3').ls().sorted()\n"
       "sevens = (path/'train'/'7').ls().sorted()");
    py("seven_tensors = [tensor(Image.open(o)) for o in sevens]\n"
       "three_tensors = [tensor(Image.open(o)) for o in threes]");
    py("stacked_sevens = torch.stack(seven_tensors).float()/255\n"
       "stacked_threes = torch.stack(three_tensors).float()/255");
    printf(
        "# cgrad: cg_dataset_load_folder(path/'train') reads every class folder, files sorted,\n"
        "# each PNG as 8-bit gray, /255; the rows of class '3' and of class '7' are the stacks.\n");
    cg_tensor *threes, *sevens, *v3, *v7;
    int64_t n3, n7, nv3, nv7;
    if (!load_stacks(s, "train", &threes, &sevens, &n3, &n7)) goto done;
    py("stacked_threes.shape, stacked_sevens.shape");
    fputs("(", stdout);
    cg_py_print_size(stdout, threes);
    fputs(", ", stdout);
    cg_py_print_size(stdout, sevens);
    fputs(")\n", stdout);

    py("valid_3_tens = torch.stack([tensor(Image.open(o)) for o in (path/'valid'/'3').ls()])\n"
       "valid_3_tens = valid_3_tens.float()/255\n"
       "valid_7_tens = torch.stack([tensor(Image.open(o)) for o in (path/'valid'/'7').ls()])\n"
       "valid_7_tens = valid_7_tens.float()/255");
    if (!load_stacks(s, "valid", &v3, &v7, &nv3, &nv7)) goto done;
    py("valid_3_tens.shape, valid_7_tens.shape");
    fputs("(", stdout);
    cg_py_print_size(stdout, v3);
    fputs(", ", stdout);
    cg_py_print_size(stdout, v7);
    fputs(")\n", stdout);

    printf("\n# One row of 784 pixels per image, and a label per image: 1 for a 3, 0 for a 7.\n");
    py("train_x = torch.cat([stacked_threes, stacked_sevens]).view(-1, 28*28)");
    py("train_y = tensor([1]*len(threes) + [0]*len(sevens)).unsqueeze(1)");
    if (!make_xy(threes, sevens, &s->train_x, &s->train_y)) goto done;
    if (s->figures) {
        const int dim0[1] = {0};
        cg_tensor *mean3 = cg_tensor_mean_dims(threes, dim0, 1, false);
        cg_tensor *mean7 = cg_tensor_mean_dims(sevens, dim0, 1, false);
        if (!mean3 || !mean7) goto done;
        const float *ideals[2] = {mean3->data, mean7->data};
        const char *caps[2] = {"mean3", "mean7"};
        if (!figure_images(s, "ideal_digits.png", "stacked_threes.mean(0), stacked_sevens.mean(0)",
                           "The ideal 3 and 7", ideals, caps, 2))
            goto done;
    }
    py("print(train_x.shape, train_y.shape)");
    cg_py_print_size(stdout, s->train_x);
    fputs(" ", stdout);
    cg_py_print_size(stdout, s->train_y);
    fputs("\n", stdout);
    py("valid_x = torch.cat([valid_3_tens, valid_7_tens]).view(-1, 28*28)\n");
    py("valid_y = tensor([1]*len(valid_3_tens) + [0]*len(valid_7_tens)).unsqueeze(1)");
    if (!make_xy(v3, v7, &s->valid_x, &s->valid_y)) goto done;
    py("valid_x.shape, valid_y.shape");
    fputs("(", stdout);
    cg_py_print_size(stdout, s->valid_x);
    fputs(", ", stdout);
    cg_py_print_size(stdout, s->valid_y);
    fputs(")\n", stdout);
    ok = true;
done:
    cg_scope_end();
    return ok;
}

static bool step_dataset(walk *s) {
    section("A dataset: pairs of (image, label)");
    bool ok = false;
    cg_scope_begin();
    py("dset = list(zip(train_x, train_y))\n");
    printf("# cgrad: item i of dset is (row i of train_x, row i of train_y).\n");
    py("x, y = dset[0]");
    int64_t one[1] = {1}, flat[1] = {s->train_x->shape[1]};
    cg_tensor *x = cg_tensor_reshape(cg_tensor_rows(s->train_x, 0, 1), flat, 1);
    cg_tensor *y = cg_tensor_reshape(cg_tensor_rows(s->train_y, 0, 1), one, 1);
    if (!x || !y) goto done;
    py("print(x.shape, y)");
    cg_py_print_size(stdout, x);
    fputs(" ", stdout);
    print_t(y, CG_PY_INT);
    py("show_image(x.view(28,28))");
    printf("# drawn with %s:\n", cg_term_mode_name(s->mode));
    if (!cg_term_draw_floats(stdout, x->data, s->width, s->height, s->mode)) {
        cg_fail(CG_ERR_NOMEM, "out of memory drawing the digit");
        goto done;
    }
    if (s->figures) {
        const float *first[1] = {x->data};
        const char *cap[1] = {y->data[0] == 1 ? "y = 1 (a 3)" : "y = 0 (a 7)"};
        if (!figure_images(s, "first_image.png", "show_image(x.view(28,28))", "dset[0]", first,
                           cap, 1))
            goto done;
    }
    py("valid_dset = list(zip(valid_x, valid_y))");
    ok = true;
done:
    cg_scope_end();
    return ok;
}

static bool step_params(walk *s) {
    section("Weights and bias");
    bool ok = false;
    cg_scope_begin();
    py("def init_params(size, std=1.0): return (torch.randn(size)*std).requires_grad_()");
    py("weights = init_params((28*28,1))");
    int64_t wshape[2] = {s->train_x->shape[1], 1}, bshape[1] = {1};
    s->weights = init_params(wshape, 2, 1.0f);
    s->bias = init_params(bshape, 1, 1.0f);
    if (!s->weights || !s->bias) goto done;
    py("weights.shape");
    cg_py_print_size(stdout, s->weights);
    fputs("\n", stdout);
    py("bias = init_params(1)");
    py("bias");
    print_t(s->bias, CG_PY_FLOAT);

    printf("\n# A prediction for the first image: multiply each pixel by its weight, add up, add "
           "the bias.\n");
    py("(train_x[0]*weights.T).sum() + bias");
    int64_t flat[1] = {s->train_x->shape[1]};
    cg_tensor *x0 = cg_tensor_reshape(cg_tensor_rows(s->train_x, 0, 1), flat, 1);
    cg_tensor *p0 =
        cg_tensor_add(cg_tensor_sum(cg_tensor_mul(x0, cg_tensor_transpose(s->weights))), s->bias);
    if (!p0) goto done;
    print_t(p0, CG_PY_FLOAT);
    printf("# The same by matrix multiplication, which does every image at once:\n");
    py("train_x[0]@weights + bias");
    cg_tensor *p0m = linear1(s, x0);
    if (!p0m) goto done;
    print_t(p0m, CG_PY_FLOAT);

    py("def linear1(xb): return xb@weights + bias");
    py("preds = linear1(train_x)");
    cg_tensor *preds = linear1(s, s->train_x);
    if (!preds) goto done;
    py("preds");
    print_t(preds, CG_PY_FLOAT);

    printf("\n# Above 0 we call it a 3. With random weights that is right about half the time:\n");
    py("corrects = (preds>0.0).float() == train_y");
    cg_tensor *corrects = cg_tensor_eq(cg_tensor_gt(preds, cg_tensor_scalar(0.0f)), s->train_y);
    py("corrects");
    if (!corrects) goto done;
    print_t(corrects, CG_PY_BOOL);
    py("corrects.float().mean().item()");
    float acc = cg_tensor_item(cg_tensor_mean(corrects));
    printf("%.4f\n", acc);

    printf("\n# Accuracy is a staircase: nudge one weight and it does not move, so its gradient is "
           "0.\n");
    py("with torch.no_grad(): weights[0] *= 1.0001");
    s->weights->data[0] *= 1.0001f;
    py("preds = linear1(train_x)\n"
       "((preds>0.0).float() == train_y).float().mean().item()");
    bool prev = cg_set_grad_enabled(false);
    float acc2 = cg_tensor_item(cg_tensor_mean(
        cg_tensor_eq(cg_tensor_gt(linear1(s, s->train_x), cg_tensor_scalar(0.0f)), s->train_y)));
    cg_set_grad_enabled(prev);
    printf("%.4f\n", acc2);
    ok = !isnan(acc) && !isnan(acc2);
done:
    cg_scope_end();
    return ok;
}

static bool step_loss(walk *s) {
    (void)s;
    section("A loss function: mnist_loss");
    bool ok = false;
    cg_scope_begin();
    py("def mnist_loss(predictions, targets):\n"
       "    return torch.where(targets==1, 1-predictions, predictions).mean()");
    py("trgts  = tensor([1,0,1])\n");
    py("prds   = tensor([0.9, 0.4, 0.2])");
    const float t3[3] = {1, 0, 1}, p3[3] = {0.9f, 0.4f, 0.2f}, p3b[3] = {0.9f, 0.4f, 0.8f};
    int64_t three[1] = {3};
    cg_tensor *trgts = cg_tensor_from_data(t3, three, 1);
    cg_tensor *prds = cg_tensor_from_data(p3, three, 1);
    cg_tensor *prds_b = cg_tensor_from_data(p3b, three, 1);
    cg_tensor *one = cg_tensor_scalar(1.0f);
    py("torch.where(trgts==1, 1-prds, prds)");
    cg_tensor *w = cg_tensor_where(cg_tensor_eq(trgts, one), cg_tensor_sub(one, prds), prds);
    if (!w) goto done;
    print_t(w, CG_PY_FLOAT);
    py("mnist_loss(prds,trgts)");
    cg_tensor *l1 = mnist_loss_raw(prds, trgts);
    if (!l1) goto done;
    print_t(l1, CG_PY_FLOAT);
    printf("# The third image is a 3 (target 1): predict 0.8 instead of 0.2 and the loss drops.\n");
    py("mnist_loss(tensor([0.9, 0.4, 0.8]),trgts)");
    cg_tensor *l2 = mnist_loss_raw(prds_b, trgts);
    if (!l2) goto done;
    print_t(l2, CG_PY_FLOAT);

    printf("\n# mnist_loss assumes predictions in [0, 1]; sigmoid squeezes any number there.\n");
    py("def sigmoid(x): return 1/(1+torch.exp(-x))");
    py("sigmoid(tensor([-4., -2., 0., 2., 4.]))");
    cg_tensor *xs = cg_tensor_arange(-4.0f, 5.0f, 2.0f);
    cg_tensor *mine = cg_tensor_div(one, cg_tensor_add(one, cg_tensor_exp(cg_tensor_neg(xs))));
    if (!mine) goto done;
    print_t(mine, CG_PY_FLOAT);
    py("torch.sigmoid(tensor([-4., -2., 0., 2., 4.]))");
    cg_tensor *builtin = cg_tensor_sigmoid(xs);
    if (!builtin) goto done;
    print_t(builtin, CG_PY_FLOAT);
    if (s->figures) {
        char path[4200];
        figure_path(s, "sigmoid.png", path, sizeof path);
        if (!figure_done(cg_plot_function("sigmoid", -4, 4, "Sigmoid", path), path,
                         "plot_function(torch.sigmoid, title='Sigmoid', min=-4, max=4)"))
            goto done;
    }
    py("def mnist_loss(predictions, targets):\n"
       "    predictions = predictions.sigmoid()\n"
       "    return torch.where(targets==1, 1-predictions, predictions).mean()");
    py("mnist_loss(prds,trgts), mnist_loss(tensor([0.9, 0.4, 0.8]),trgts)");
    cg_tensor *s1 = cg_mnist_loss(prds, trgts), *s2 = cg_mnist_loss(prds_b, trgts);
    if (!s1 || !s2) goto done;
    fputs("(", stdout);
    cg_py_print_tensor(stdout, s1, CG_PY_FLOAT);
    fputs(", ", stdout);
    cg_py_print_tensor(stdout, s2, CG_PY_FLOAT);
    fputs(")\n", stdout);
    ok = true;
done:
    cg_scope_end();
    return ok;
}

/* Mean of |g| and mean of g over a gradient buffer, in double. */
static void grad_means(const cg_tensor *p, double *mean, double *mean_abs) {
    double sum = 0.0, sum_abs = 0.0;
    for (int64_t i = 0; i < p->numel; i++) {
        sum += p->grad[i];
        sum_abs += fabs(p->grad[i]);
    }
    *mean = p->numel ? sum / (double)p->numel : 0.0;
    *mean_abs = p->numel ? sum_abs / (double)p->numel : 0.0;
}

static bool step_sgd(walk *s) {
    section("Gradients and one step of SGD");
    bool ok = false;
    cg_scope_begin();
    cg_tensor *params[2] = {s->weights, s->bias};
    cg_tensor_zero_grad(s->weights);
    cg_tensor_zero_grad(s->bias);
    py("batch = train_x[:4]");
    cg_tensor *batch = cg_tensor_rows(s->train_x, 0, 4);
    cg_tensor *yb = cg_tensor_rows(s->train_y, 0, 4);
    py("preds = linear1(batch)");
    cg_tensor *preds = linear1(s, batch);
    py("loss = mnist_loss(preds, train_y[:4])");
    cg_tensor *loss = cg_mnist_loss(preds, yb);
    if (!loss) goto done;
    py("loss");
    print_t(loss, CG_PY_FLOAT);
    py("loss.backward()");
    if (cg_backward(loss) != CG_OK) goto done;
    if (!s->weights->grad || !s->bias->grad) {
        cg_fail(CG_ERR_STATE, "backward left no gradient on the parameters");
        goto done;
    }
    py("weights.grad.shape, weights.grad.mean(), weights.grad.abs().mean(), bias.grad");
    double gmean, gabs, bmean, babs;
    grad_means(s->weights, &gmean, &gabs);
    grad_means(s->bias, &bmean, &babs);
    float gm = (float)gmean, ga = (float)gabs;
    int64_t one[1] = {1};
    fputs("(", stdout);
    cg_py_print_size(stdout, s->weights);
    fputs(", ", stdout);
    cg_py_print_values(stdout, &gm, NULL, 0, CG_PY_FLOAT, NULL);
    fputs(", ", stdout);
    cg_py_print_values(stdout, &ga, NULL, 0, CG_PY_FLOAT, NULL);
    fputs(", ", stdout);
    cg_py_print_values(stdout, s->bias->grad, one, 1, CG_PY_FLOAT, NULL);
    fputs(")\n", stdout);

    printf("\n# Step against the gradient, then measure the same batch again.\n");
    py_lr(s->lr);
    py("for p in weights,bias:\n"
       "    p.data -= p.grad*lr\n"
       "    p.grad.zero_()");
    float before = cg_tensor_item(loss);
    cg_sgd_step(params, 2, s->lr);
    py("mnist_loss(linear1(batch), train_y[:4])");
    bool prev = cg_set_grad_enabled(false);
    cg_tensor *after = cg_mnist_loss(linear1(s, batch), yb);
    cg_set_grad_enabled(prev);
    if (!after) goto done;
    print_t(after, CG_PY_FLOAT);
    float a = cg_tensor_item(after);
    printf("# loss %.6f -> %.6f: %s\n", before, a, a < before ? "down" : "not down");
    ok = true;
done:
    cg_scope_end();
    return ok;
}

static bool step_dataloader(walk *s) {
    section("DataLoader: mini-batches");
    cg_dataloader dl;
    py("coll = range(15)");
    py("dl = DataLoader(coll, batch_size=5, shuffle=True)");
    if (cg_dataloader_init(&dl, 15, 5, true, false, s->seed + 1) != CG_OK) return false;
    py("list(dl)");
    const int64_t *idx;
    int64_t n;
    cg_dataloader_reset(&dl);
    fputs("[", stdout);
    for (int b = 0; cg_dataloader_next(&dl, &idx, &n); b++) {
        fputs(b ? ", " : "", stdout);
        print_indices(idx, n); /* coll[i] is i */
    }
    fputs("]\n", stdout);
    cg_dataloader_free(&dl);

    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    py("ds = L(enumerate(string.ascii_lowercase))");
    py("ds");
    printf("(#26) [");
    for (int i = 0; i < 10; i++) printf("%s(%d, '%c')", i ? "," : "", i, letters[i]);
    printf("...]\n");
    py("dl = DataLoader(ds, batch_size=6, shuffle=True)");
    if (cg_dataloader_init(&dl, 26, 6, true, false, s->seed + 2) != CG_OK) return false;
    py("list(dl)");
    cg_dataloader_reset(&dl);
    fputs("[", stdout);
    /* fastai collates a batch of (int, str) pairs into (tensor of ints, tuple of strs) */
    for (int b = 0; cg_dataloader_next(&dl, &idx, &n); b++) {
        fputs(b ? ",\n (" : "(", stdout);
        print_indices(idx, n);
        fputs(", (", stdout);
        for (int64_t i = 0; i < n; i++) printf("%s'%c'", i ? ", " : "", letters[idx[i]]);
        fputs("))", stdout);
    }
    fputs("]\n", stdout);
    cg_dataloader_free(&dl);
    return true;
}

/* def validate_epoch(model): the mean of the batches' accuracies, as the book. */
static float validate_epoch(const walk *s, cg_dataloader *valid_dl) {
    bool prev = cg_set_grad_enabled(false);
    double sum = 0.0;
    int64_t batches = 0, n;
    const int64_t *idx;
    cg_dataloader_reset(valid_dl);
    while (cg_dataloader_next(valid_dl, &idx, &n)) {
        cg_scope_begin();
        cg_tensor *xb = cg_tensor_index_select(s->valid_x, idx, n);
        cg_tensor *yb = cg_tensor_index_select(s->valid_y, idx, n);
        cg_tensor *preds = linear1(s, xb);
        sum += preds ? cg_binary_accuracy(preds, yb) : NAN;
        batches++;
        cg_scope_end();
    }
    cg_set_grad_enabled(prev);
    return batches ? (float)(sum / (double)batches) : NAN;
}

/* fit's view of the article's tensors (train_x, train_y): the images as
 * they are, labels 0 for a 3 and 1 for a 7, so that the targets the
 * mnist_loss takes, (label == 0), are train_y itself. */
static bool article_dataset(const walk *s, cg_tensor *x, cg_tensor *y, cg_dataset *ds) {
    *ds = (cg_dataset){.height = s->height, .width = s->width, .n_classes = 2};
    snprintf(ds->class_names[0], CG_CLASS_NAME_MAX, "3");
    snprintf(ds->class_names[1], CG_CLASS_NAME_MAX, "7");
    cg_scope_begin();
    ds->x = cg_tensor_retain(x);
    ds->y = cg_tensor_retain(
        cg_tensor_reshape(cg_tensor_sub(cg_tensor_scalar(1.0f), y), (int64_t[]){y->numel}, 1));
    cg_scope_end();
    return ds->x && ds->y;
}

/* What train_epoch and the loop's print show, kept between fit's calls. */
typedef struct walk_fit {
    walk *s;
    cg_dataloader *valid_dl;
    double loss_sum; /* this epoch's batch losses */
    int64_t batches;
    float acc;
} walk_fit;

static void walk_batch(void *user, int epoch, int64_t batch, int64_t n_batches, float loss) {
    (void)epoch, (void)batch, (void)n_batches;
    walk_fit *w = user;
    w->loss_sum += loss;
    w->batches++;
}

/* After each epoch: print(validate_epoch(linear1), end=' '), with the
 * epoch's mean batch loss. */
static bool walk_epoch(void *user, const cg_epoch_record *r, const cg_score *valid) {
    (void)valid;
    walk_fit *w = user;
    float loss = w->batches ? (float)(w->loss_sum / (double)w->batches) : NAN;
    w->loss_sum = 0.0;
    w->batches = 0;
    w->acc = validate_epoch(w->s, w->valid_dl);
    printf("epoch %2d  train loss %.4f  validate_epoch %.4f\n", r->epoch, loss, w->acc);
    fflush(stdout);
    return !isnan(w->acc);
}

/* The loop itself, by the library's fit: a model whose one linear layer
 * holds the article's weights and bias (the same tensors afterwards), plain
 * SGD at lr (p -= lr * p.grad; p.grad.zero_(), the article's step), the
 * mnist_loss, the batches of dl. */
static bool train_with_fit(walk *s, cg_dataloader *dl, cg_dataloader *valid_dl, float *acc) {
    cg_dataset train = {0}, valid = {0};
    cg_model *m = NULL;
    bool ok = false;
    cg_rng unused;
    cg_rng_seed(&unused, s->seed);
    int64_t in = s->train_x->shape[1];
    if (!article_dataset(s, s->train_x, s->train_y, &train) ||
        !article_dataset(s, s->valid_x, s->valid_y, &valid) ||
        !(m = cg_model_from_spec("linear", "linear", &in, 1, 1, CG_INIT_NORMAL, 1.0f, &unused)))
        goto done;
    /* linear1 is x @ weights + bias: the layer's w and b are the article's. */
    memcpy(m->params[0]->data, s->weights->data, sizeof(float) * (size_t)s->weights->numel);
    memcpy(m->params[1]->data, s->bias->data, sizeof(float) * (size_t)s->bias->numel);
    cg_tensor_release(s->weights);
    cg_tensor_release(s->bias);
    s->weights = cg_tensor_retain(m->params[0]);
    s->bias = cg_tensor_retain(m->params[1]);
    walk_fit w = {.s = s, .valid_dl = valid_dl, .acc = *acc}; /* --epochs 0: the first */
    cg_fit_config cfg = {.epochs = s->epochs, .bs = BATCH_SIZE, .train_loader = dl,
                         .loss = CG_LOSS_MNIST, .opt = cg_sgd_config(s->lr),
                         .on_batch = walk_batch, .on_epoch = walk_epoch, .user = &w};
    ok = cg_fit(m, &train, &valid, &cfg, NULL, NULL) == CG_OK;
    *acc = w.acc;
done:
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return ok;
}

static bool step_train(walk *s) {
    section("The training loop (the book's code, which the article's Part 3 follows)");
    bool ok = false;
    cg_dataloader dl = {0}, valid_dl = {0};
    cg_scope_begin();
    py("dl = DataLoader(dset, batch_size=256, shuffle=True)");
    printf("# (the book leaves shuffle off; the article explains why a fresh order each epoch "
           "helps)\n");
    if (cg_dataloader_init(&dl, s->train_x->shape[0], BATCH_SIZE, true, false, s->seed + 3) !=
        CG_OK)
        goto done;
    py("xb,yb = first(dl)");
    const int64_t *idx;
    int64_t n;
    cg_dataloader_reset(&dl);
    if (!cg_dataloader_next(&dl, &idx, &n)) {
        cg_fail(CG_ERR_FORMAT, "no training images in %s/train", s->root);
        goto done;
    }
    cg_tensor *xb = cg_tensor_index_select(s->train_x, idx, n);
    cg_tensor *yb = cg_tensor_index_select(s->train_y, idx, n);
    if (!xb || !yb) goto done;
    py("xb.shape,yb.shape");
    fputs("(", stdout);
    cg_py_print_size(stdout, xb);
    fputs(", ", stdout);
    cg_py_print_size(stdout, yb);
    fputs(")\n", stdout);
    py("valid_dl = DataLoader(valid_dset, batch_size=256)");
    if (cg_dataloader_init(&valid_dl, s->valid_x->shape[0], BATCH_SIZE, false, false, 0) != CG_OK)
        goto done;

    py("weights = init_params((28*28,1))\n");
    py("bias = init_params(1)");
    int64_t wshape[2] = {s->train_x->shape[1], 1}, bshape[1] = {1};
    cg_tensor_release(s->weights);
    cg_tensor_release(s->bias);
    s->weights = init_params(wshape, 2, 1.0f);
    s->bias = init_params(bshape, 1, 1.0f);
    if (!s->weights || !s->bias) goto done;
    py("def calc_grad(xb, yb, model):\n"
       "    preds = model(xb)\n"
       "    loss = mnist_loss(preds, yb)\n"
       "    loss.backward()");
    py("def train_epoch(model, lr, params):\n"
       "    for xb,yb in dl:\n"
       "        calc_grad(xb, yb, model)\n"
       "        for p in params:\n"
       "            p.data -= p.grad*lr\n"
       "            p.grad.zero_()");
    py("def batch_accuracy(xb, yb):\n"
       "    preds = xb.sigmoid()\n"
       "    correct = (preds>0.5) == yb\n"
       "    return correct.float().mean()");
    py("def validate_epoch(model):\n"
       "    accs = [batch_accuracy(model(xb), yb) for xb,yb in valid_dl]\n"
       "    return round(torch.stack(accs).mean().item(), 4)");
    py("validate_epoch(linear1)");
    float acc = validate_epoch(s, &valid_dl);
    if (isnan(acc)) goto done;
    printf("%.4f\n", acc);
    py_lr(s->lr);
    py("params = weights,bias");
    pyf("for i in range(%lld):\n"
        "    train_epoch(linear1, lr, params)\n"
        "    print(validate_epoch(linear1), end=' ')",
        (long long)s->epochs);
    if (!train_with_fit(s, &dl, &valid_dl, &acc)) goto done;
    printf("\nfinal accuracy: %.4f\n", acc);
    if (s->figures) {
        /* weights [784, 1] as a 28 x 28 image: red pixels vote 3, blue 7. */
        cg_plot_image im = {.floats = s->weights->data, .h = s->height, .w = s->width,
                            .caption = "red: a 3, blue: a 7"};
        cg_image_grid g = {.title = "weights.view(28,28)", .images = &im, .n = 1,
                           .cmap = CG_CMAP_DIVERGING, .cell = 140};
        char path[4200];
        figure_path(s, "weights.png", path, sizeof path);
        if (!figure_done(cg_plot_image_grid(&g, path), path, "the trained weights as an image"))
            goto done;
    }
    ok = !isnan(acc);
done:
    cg_scope_end();
    cg_dataloader_free(&dl);
    cg_dataloader_free(&valid_dl);
    return ok;
}

int cg_cmd_walkthrough(int argc, char **argv) {
    const char *data = NULL;
    uint64_t seed = 42;
    int64_t epochs = 20;
    double lr = 1.0;
    bool ascii = false;
    const char *figures = NULL;
    cg_opt opts[] = {
        {"--data", CG_OPT_STR, &data, 0, 0, NULL, false,
         "folder with train/ and valid/ (default $CGRAD_DATA/mnist_sample)", "PATH"},
        {"--seed", CG_OPT_U64, &seed, 0, 0, NULL, false,
         "seed of the weights and of the shuffling (default 42)", NULL},
        {"--epochs", CG_OPT_INT, &epochs, 0, 10000, NULL, false,
         "epochs of the final training loop (default 20, as the book)", NULL},
        {"--lr", CG_OPT_FLOAT, &lr, 0, 1000, NULL, true,
         "learning rate (default 1.0, as the book)", NULL},
        {"--ascii", CG_OPT_FLAG, &ascii, 0, 0, NULL, false,
         "draw the digit with plain ASCII characters", NULL},
        {"--figures", CG_OPT_STR, &figures, 0, 0, NULL, false,
         "also draw the article's figures there as PNGs (the first image,\n"
         "the ideal digits, the sigmoid, the trained weights)", "DIR"},
    };
    int rc =
        cg_opts_parse("walkthrough", WALK_USAGE, argc, argv, opts, CG_NOPTS(opts), NULL, 0, NULL);
    if (rc != CG_OPTS_CONTINUE) return rc;

    walk s = {.seed = seed, .epochs = epochs, .lr = (float)lr, .figures = figures};
    if (figures && cg_make_dirs("walkthrough", figures) != CG_OK) return cg_cmd_fail("walkthrough");
    if (cg_cli_data_root(data, s.root, sizeof s.root) != CG_OK) return cg_cmd_fail("walkthrough");
    s.mode = cg_term_detect(stdout, ascii);
    cg_manual_seed(seed);

    printf("cgrad walkthrough: \"Building a Simple MNIST Classifier (Part 2)\" - fastbook chapter "
           "4 - in C\n"
           "data %s, seed %llu; each >>> line is the article's Python, below it what cgrad "
           "computes.\n",
           s.root, (unsigned long long)seed);
    bool ok = step_load(&s) && step_dataset(&s) && step_params(&s) && step_loss(&s) &&
              step_sgd(&s) && step_dataloader(&s) && step_train(&s);
    fflush(stdout);

    cg_tensor *owned[6] = {s.train_x, s.train_y, s.valid_x, s.valid_y, s.weights, s.bias};
    for (int i = 0; i < 6; i++) cg_tensor_release(owned[i]);
    return ok ? CG_EXIT_OK : cg_cmd_fail("walkthrough");
}
