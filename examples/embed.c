/*
 * embed.c - the smallest program that uses a trained cgrad model: load the
 * file `cgrad train` saved, read a PNG, classify it.
 *
 *     example_embed MODEL IMAGE.png
 *
 * Build your own against the installed library:
 *     cc embed.c $(pkg-config --cflags --libs cgrad)
 */
#include <cgrad.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE.png\n", argv[0]);
        return 2;
    }
    cg_model *m = cg_model_load(argv[1]);
    if (!m) {
        fprintf(stderr, "%s: %s\n", argv[0], cg_last_error());
        return 1;
    }
    uint8_t *pixels = NULL;
    int64_t w, h;
    if (cg_png_read_gray(argv[2], &pixels, &w, &h) != CG_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], cg_last_error());
        cg_model_free(m);
        return 1;
    }
    if (w * h != m->n_inputs) {
        fprintf(stderr, "%s: %s is %lldx%lld = %lld pixels; the model takes %lld\n", argv[0],
                argv[2], (long long)w, (long long)h, (long long)(w * h), (long long)m->n_inputs);
        free(pixels);
        cg_model_free(m);
        return 1;
    }

    /* pixel / 255, as the model was trained on, through the model with no
     * graph: each class's probability (sigmoid for a 3-vs-7 model with one
     * output, softmax for one with an output per class). */
    double probs[CG_MAX_CLASSES];
    int best = cg_model_classify(m, pixels, probs, NULL);
    int rc = 0;
    if (best < 0) {
        fprintf(stderr, "%s: %s\n", argv[0], cg_last_error());
        rc = 1;
    } else {
        printf("%s: %s (probability %.4f)\n", argv[2], m->class_names[best], probs[best]);
    }
    free(pixels);
    cg_model_free(m);
    return rc;
}
