/*
 * train_mnist.c - all ten digits with the library alone: what
 * `cgrad train --model mlp --dataset mnist` does, in a page of C.
 *
 *     example_train_mnist DIR [MODEL_OUT]
 *
 * DIR holds MNIST's four IDX files (train-images-idx3-ubyte.gz, ...). The
 * model is fastai's next step after chapter 4: 784 -> 128 -> ReLU -> 10,
 * cross-entropy, Adam, fit_one_cycle.
 */
#include <cgrad.h>

#include <stdio.h>

/* fit calls this after every epoch: fastai's table row. */
static bool print_row(void *user, const cg_epoch_record *r, const cg_score *valid) {
    (void)user, (void)valid;
    printf("%-6d %-11.6f %-11.6f %.4f\n", r->epoch, r->train_loss, r->valid_loss, r->accuracy);
    return true; /* false would stop training */
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s MNIST_IDX_DIR [MODEL_OUT]\n", argv[0]);
        return 2;
    }
    char images[4096], labels[4096];
    cg_dataset train = {0}, valid = {0};
    cg_data_keep_floats(false); /* bytes only: 47 MB instead of 188 MB */
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", argv[1]);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", argv[1]);
    cg_status st = cg_dataset_load_idx(&train, images, labels);
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", argv[1]);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", argv[1]);
    if (st == CG_OK) st = cg_dataset_load_idx(&valid, images, labels);

    /* nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)) */
    cg_rng rng;
    cg_rng_seed(&rng, 42);
    int64_t in = train.height * train.width;
    cg_model *m = st == CG_OK ? cg_model_from_spec("linear:128,relu,linear", "mlp", &in, 1,
                                                   train.n_classes, CG_INIT_KAIMING, 0.0f, &rng)
                              : NULL;
    if (m) {
        m->n_classes = train.n_classes;
        for (int c = 0; c < train.n_classes; c++)
            snprintf(m->class_names[c], CG_CLASS_NAME_MAX, "%s", train.class_names[c]);
        cg_model_summary(m, stdout);
        /* learn.fit_one_cycle(5, 1e-2) with Adam, batch size 256 */
        cg_fit_config cfg = {.epochs = 5, .bs = 256, .seed = 1, .shuffle = true,
                             .loss = CG_LOSS_CE, .opt = cg_adam_config(1e-2f),
                             .sched = CG_SCHED_ONE_CYCLE, .on_epoch = print_row};
        printf("epoch  train_loss  valid_loss  accuracy\n");
        cg_score score;
        st = cg_fit(m, &train, &valid, &cfg, NULL, &score);
        if (st == CG_OK) printf("accuracy %.4f on %lld test images\n", score.accuracy,
                                (long long)score.n);
        if (st == CG_OK && argc == 3) st = cg_model_save(m, argv[2]);
    }
    int rc = 0;
    if (!m || st != CG_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], cg_last_error());
        rc = 1;
    }
    cg_model_free(m);
    cg_dataset_free(&train);
    cg_dataset_free(&valid);
    return rc;
}
