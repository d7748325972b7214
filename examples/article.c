/*
 * article.c - "Building a Simple MNIST Classifier (Part 2)" (which retells
 * fastbook chapter 4) in C, line for line as far as C allows, on cgrad.h
 * alone. Each Python line of the article is quoted in a comment above the
 * C that does the same; the training loop at the end is the book's, which
 * the article's Part 3 follows.
 *
 *     example_article [PATH]     PATH: fastai's mnist_sample folder
 *                                (default $CGRAD_DATA/mnist_sample)
 *
 * Memory: one scope holds everything the program makes (cg_scope_end at
 * the end frees it all); each training step has its own scope, so a step's
 * graph is gone before the next one starts.
 */
#include <cgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch-style prints for what the article prints. */
static void print_size(const char *before, const cg_tensor *t, const char *after) {
    char buf[96];
    printf("%storch.Size(%s)%s", before, cg_shape_str(t, buf, sizeof buf), after);
}

static void print_values(const char *label, const cg_tensor *t) {
    printf("%s: tensor(%s", label, t->ndim ? "[" : "");
    for (int64_t i = 0; i < t->numel; i++) printf("%s%.4f", i ? ", " : "", t->data[i]);
    printf("%s)\n", t->ndim ? "]" : "");
}

/* Exits with the library's message when an expression came back NULL. */
static cg_tensor *check(cg_tensor *t, const char *what) {
    if (!t) {
        fprintf(stderr, "example_article: %s: %s\n", what, cg_last_error());
        exit(1);
    }
    return t;
}

/* The images of one class folder as [n, 28*28] rows (a copy). */
static cg_tensor *class_rows(const cg_dataset *ds, const char *name, int64_t *n) {
    int c = 0;
    while (c < ds->n_classes && strcmp(ds->class_names[c], name) != 0) c++;
    int64_t *idx = malloc(sizeof *idx * (size_t)ds->y->shape[0]);
    *n = 0;
    for (int64_t i = 0; idx && i < ds->y->shape[0]; i++)
        if (ds->y->data[i] == (float)c) idx[(*n)++] = i;
    cg_tensor *rows = c < ds->n_classes && idx ? cg_tensor_index_select(ds->x, idx, *n) : NULL;
    free(idx);
    return rows;
}

/* The tensors the article keeps as globals. */
static cg_tensor *weights, *bias;

/* def init_params(size, std=1.0): return (torch.randn(size)*std).requires_grad_() */
static cg_tensor *init_params(const int64_t *size, int ndim, float std) {
    return cg_tensor_requires_grad(
        cg_tensor_mul(cg_tensor_randn(size, ndim, NULL), cg_tensor_scalar(std)), true);
}

/* def linear1(xb): return xb@weights + bias */
static cg_tensor *linear1(cg_tensor *xb) {
    return cg_tensor_add(cg_tensor_matmul(xb, weights), bias);
}

/* def mnist_loss(predictions, targets):
 *     return torch.where(targets==1, 1-predictions, predictions).mean() */
static cg_tensor *mnist_loss_no_sigmoid(cg_tensor *predictions, cg_tensor *targets) {
    cg_tensor *one = cg_tensor_scalar(1.0f);
    return cg_tensor_mean(
        cg_tensor_where(cg_tensor_eq(targets, one), cg_tensor_sub(one, predictions), predictions));
}

/* def mnist_loss(predictions, targets):
 *     predictions = predictions.sigmoid()
 *     return torch.where(targets==1, 1-predictions, predictions).mean() */
static cg_tensor *mnist_loss(cg_tensor *predictions, cg_tensor *targets) {
    predictions = cg_tensor_sigmoid(predictions);
    return mnist_loss_no_sigmoid(predictions, targets);
}

/* def batch_accuracy(xb, yb):
 *     preds = xb.sigmoid()
 *     correct = (preds>0.5) == yb
 *     return correct.float().mean() */
static float batch_accuracy(cg_tensor *xb, cg_tensor *yb) {
    cg_tensor *preds = cg_tensor_sigmoid(xb);
    cg_tensor *correct = cg_tensor_eq(cg_tensor_gt(preds, cg_tensor_scalar(0.5f)), yb);
    return cg_tensor_item(cg_tensor_mean(correct));
}

int main(int argc, char **argv) {
    /* path = untar_data(URLs.MNIST_SAMPLE)
     * -- argv[1], else $CGRAD_DATA/mnist_sample, else cgrad's cache; no
     *    download here (`cgrad fetch mnist_sample` does that). */
    char path[4096], dir[4200];
    if (cg_locate_dataset("mnist_sample", argc > 1 ? argv[1] : NULL, false, path, sizeof path) !=
        CG_OK) {
        printf("example_article: no MNIST_SAMPLE data, nothing to do.\n%s\n", cg_last_error());
        return 0;
    }
    snprintf(dir, sizeof dir, "%s/train", path);
    cg_manual_seed(42);
    cg_scope_begin();

    /* threes = (path/'train'/'3').ls().sorted()
     * sevens = (path/'train'/'7').ls().sorted()
     * seven_tensors = [tensor(Image.open(o)) for o in sevens]
     * three_tensors = [tensor(Image.open(o)) for o in threes]
     * -- cg_dataset_load_folder opens every image of every class folder,
     *    files sorted, and divides by 255 as it goes. */
    cg_dataset train = {0}, valid = {0};
    if (cg_dataset_load_folder(&train, dir) != CG_OK) check(NULL, "loading train/");
    snprintf(dir, sizeof dir, "%s/valid", path);
    if (cg_dataset_load_folder(&valid, dir) != CG_OK) check(NULL, "loading valid/");

    /* stacked_sevens = torch.stack(seven_tensors).float()/255
     * stacked_threes = torch.stack(three_tensors).float()/255 */
    int64_t n3, n7, nv3, nv7, img[3] = {-1, 28, 28};
    cg_tensor *stacked_sevens = cg_tensor_reshape(class_rows(&train, "7", &n7), img, 3);
    cg_tensor *stacked_threes = cg_tensor_reshape(class_rows(&train, "3", &n3), img, 3);

    /* valid_3_tens = torch.stack([tensor(Image.open(o)) for o in (path/'valid'/'3').ls()])
     * valid_3_tens = valid_3_tens.float()/255
     * valid_7_tens = torch.stack([tensor(Image.open(o)) for o in (path/'valid'/'7').ls()])
     * valid_7_tens = valid_7_tens.float()/255 */
    cg_tensor *valid_3_tens = cg_tensor_reshape(class_rows(&valid, "3", &nv3), img, 3);
    cg_tensor *valid_7_tens = cg_tensor_reshape(class_rows(&valid, "7", &nv7), img, 3);
    check(valid_7_tens, "the valid stacks");

    /* train_x = torch.cat([stacked_threes, stacked_sevens]).view(-1, 28*28) */
    int64_t flat[2] = {-1, 28 * 28};
    cg_tensor *train_x = cg_tensor_reshape(
        cg_tensor_cat((cg_tensor *[]){stacked_threes, stacked_sevens}, 2, 0), flat, 2);

    /* train_y = tensor([1]*len(threes) + [0]*len(sevens)).unsqueeze(1) */
    cg_tensor *train_y = cg_tensor_unsqueeze(
        cg_tensor_cat((cg_tensor *[]){cg_tensor_ones(&n3, 1), cg_tensor_zeros(&n7, 1)}, 2, 0), 1);

    /* print(train_x.shape, train_y.shape) */
    check(train_x, "train_x");
    check(train_y, "train_y");
    print_size("", train_x, " ");
    print_size("", train_y, "\n");

    /* dset = list(zip(train_x, train_y))
     * x, y = dset[0]
     * -- a pair of rows, viewed without copying */
    int64_t row[1] = {28 * 28}, one[1] = {1};
    cg_tensor *x = cg_tensor_reshape(cg_tensor_rows(train_x, 0, 1), row, 1);
    cg_tensor *y = cg_tensor_reshape(cg_tensor_rows(train_y, 0, 1), one, 1);
    /* print(x.shape, y) */
    check(y, "dset[0]");
    print_size("", x, " ");
    printf("tensor([%.0f])\n", y->data[0]);

    /* valid_x = torch.cat([valid_3_tens, valid_7_tens]).view(-1, 28*28)
     * valid_y = tensor([1]*len(valid_3_tens) + [0]*len(valid_7_tens)).unsqueeze(1)
     * valid_dset = list(zip(valid_x, valid_y)) */
    cg_tensor *valid_x = cg_tensor_reshape(
        cg_tensor_cat((cg_tensor *[]){valid_3_tens, valid_7_tens}, 2, 0), flat, 2);
    cg_tensor *valid_y = cg_tensor_unsqueeze(
        cg_tensor_cat((cg_tensor *[]){cg_tensor_ones(&nv3, 1), cg_tensor_zeros(&nv7, 1)}, 2, 0), 1);
    check(valid_y, "valid_y");
    check(valid_x, "valid_x");
    /* The datasets now hold all there is; the loaders' copies can go. */
    cg_dataset_free(&train);
    cg_dataset_free(&valid);

    /* weights = init_params((28*28,1)) */
    weights = init_params((int64_t[]){28 * 28, 1}, 2, 1.0f);
    /* bias = init_params(1) */
    bias = init_params(one, 1, 1.0f);
    check(bias, "init_params");
    print_size("weights.shape: ", weights, "\n");

    /* (train_x[0]*weights.T).sum() + bias */
    print_values(
        "(train_x[0]*weights.T).sum() + bias",
        check(cg_tensor_add(cg_tensor_sum(cg_tensor_mul(x, cg_tensor_transpose(weights))), bias),
              "prediction"));

    /* preds = linear1(train_x)
     * preds */
    cg_tensor *preds = check(linear1(train_x), "linear1");
    printf("preds[:3]: %.4f %.4f %.4f\n", preds->data[0], preds->data[1], preds->data[2]);

    /* corrects = (preds>0.0).float() == train_y
     * corrects.float().mean().item() */
    cg_tensor *corrects = cg_tensor_eq(cg_tensor_gt(preds, cg_tensor_scalar(0.0f)), train_y);
    printf("accuracy of the random model: %.4f\n", cg_tensor_item(cg_tensor_mean(corrects)));

    /* The book's small example for mnist_loss:
     * trgts  = tensor([1,0,1])
     * prds   = tensor([0.9, 0.4, 0.2])
     * mnist_loss(prds,trgts)
     * mnist_loss(tensor([0.9, 0.4, 0.8]),trgts) */
    int64_t three[1] = {3};
    cg_tensor *trgts = cg_tensor_from_data((float[]){1, 0, 1}, three, 1);
    cg_tensor *prds = cg_tensor_from_data((float[]){0.9f, 0.4f, 0.2f}, three, 1);
    print_values("mnist_loss(prds,trgts)", check(mnist_loss_no_sigmoid(prds, trgts), "mnist_loss"));
    cg_tensor *prds2 = cg_tensor_from_data((float[]){0.9f, 0.4f, 0.8f}, three, 1);
    print_values("mnist_loss(tensor([0.9, 0.4, 0.8]),trgts)",
                 check(mnist_loss_no_sigmoid(prds2, trgts), "mnist_loss"));
    /* ... and with sigmoid */
    print_values("mnist_loss with sigmoid(prds,trgts)",
                 check(mnist_loss(prds, trgts), "mnist_loss"));

    /* coll = range(15)
     * dl = DataLoader(coll, batch_size=5, shuffle=True)
     * list(dl) */
    cg_dataloader dl;
    const int64_t *idx;
    int64_t n;
    cg_dataloader_init(&dl, 15, 5, true, false, 1);
    cg_dataloader_reset(&dl);
    printf("list(dl):");
    while (cg_dataloader_next(&dl, &idx, &n)) {
        printf(" [");
        for (int64_t i = 0; i < n; i++) printf("%s%lld", i ? ", " : "", (long long)idx[i]);
        printf("]");
    }
    printf("\n");
    cg_dataloader_free(&dl);

    /* ds = L(enumerate(string.ascii_lowercase))
     * dl = DataLoader(ds, batch_size=6, shuffle=True)
     * list(dl) */
    const char *ascii_lowercase = "abcdefghijklmnopqrstuvwxyz";
    cg_dataloader_init(&dl, 26, 6, true, false, 2);
    cg_dataloader_reset(&dl);
    printf("list(dl):");
    while (cg_dataloader_next(&dl, &idx, &n)) {
        printf(" (");
        for (int64_t i = 0; i < n; i++)
            printf("%s%lld:%c", i ? " " : "", (long long)idx[i], ascii_lowercase[idx[i]]);
        printf(")");
    }
    printf("\n");
    cg_dataloader_free(&dl);

    /* -- Part 3 / the book: the training loop --
     * dl = DataLoader(dset, batch_size=256)
     * valid_dl = DataLoader(valid_dset, batch_size=256)
     * (shuffled here: a fresh order each epoch, as the article recommends) */
    cg_dataloader train_dl, valid_dl;
    cg_dataloader_init(&train_dl, train_x->shape[0], 256, true, false, 3);
    cg_dataloader_init(&valid_dl, valid_x->shape[0], 256, false, false, 0);

    /* weights = init_params((28*28,1))
     * bias = init_params(1) */
    weights = init_params((int64_t[]){28 * 28, 1}, 2, 1.0f);
    bias = init_params(one, 1, 1.0f);
    check(bias, "init_params");

    /* lr = 1.
     * params = weights,bias */
    float lr = 1.0f;
    cg_tensor *params[2] = {weights, bias};

    /* for i in range(20): */
    float acc = NAN;
    for (int epoch = 0; epoch < 20; epoch++) {
        /* train_epoch(linear1, lr, params):
         *     for xb,yb in dl: */
        cg_dataloader_reset(&train_dl);
        while (cg_dataloader_next(&train_dl, &idx, &n)) {
            cg_scope_begin();
            cg_tensor *xb = cg_tensor_index_select(train_x, idx, n);
            cg_tensor *yb = cg_tensor_index_select(train_y, idx, n);
            /* calc_grad(xb, yb, model):
             *     preds = model(xb)
             *     loss = mnist_loss(preds, yb)
             *     loss.backward() */
            cg_tensor *loss = check(mnist_loss(linear1(xb), yb), "calc_grad");
            if (cg_backward(loss) != CG_OK) check(NULL, "loss.backward()");
            /* for p in params:
             *     p.data -= p.grad*lr
             *     p.grad.zero_() */
            cg_sgd_step(params, 2, lr);
            cg_scope_end();
        }

        /* print(validate_epoch(linear1), end=' '):
         *     accs = [batch_accuracy(model(xb), yb) for xb,yb in valid_dl]
         *     return round(torch.stack(accs).mean().item(), 4) */
        bool grad = cg_set_grad_enabled(false);
        double sum = 0.0;
        int batches = 0;
        cg_dataloader_reset(&valid_dl);
        while (cg_dataloader_next(&valid_dl, &idx, &n)) {
            cg_scope_begin();
            cg_tensor *xb = cg_tensor_index_select(valid_x, idx, n);
            cg_tensor *yb = cg_tensor_index_select(valid_y, idx, n);
            sum += batch_accuracy(check(linear1(xb), "validate_epoch"), yb);
            batches++;
            cg_scope_end();
        }
        cg_set_grad_enabled(grad);
        acc = (float)(sum / batches);
        printf("%.4f ", acc);
        fflush(stdout);
    }
    printf("\nfinal accuracy: %.4f\n", acc);

    cg_dataloader_free(&train_dl);
    cg_dataloader_free(&valid_dl);
    cg_scope_end();
    return 0;
}
