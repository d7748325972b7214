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
        fprintf(stderr, "%s: %s is %lldx%lld = %lld pixels; the model takes %lld\n", argv[0], argv[2],
                (long long)w, (long long)h, (long long)(w * h), (long long)m->n_inputs);
        free(pixels);
        cg_model_free(m);
        return 1;
    }

    /* One row of pixel/255, as the model was trained on. No graph is needed
     * for a prediction, and the scope frees everything made inside it. */
    cg_set_grad_enabled(false);
    cg_scope_begin();
    int64_t shape[2] = {1, m->n_inputs};
    cg_tensor *x = cg_tensor_new(shape, 2);
    if (x)
        for (int64_t i = 0; i < m->n_inputs; i++) x->data[i] = (float)pixels[i] / 255.0f;
    cg_tensor *logits = cg_model_forward(m, x);
    int rc = 0;
    if (!logits) {
        fprintf(stderr, "%s: %s\n", argv[0], cg_last_error());
        rc = 1;
    } else if (m->n_outputs == 1) {
        /* One output: the probability of the first class ("is it a 3?"). */
        float p = cg_tensor_item(cg_tensor_sigmoid(logits));
        const char *yes = m->n_classes > 0 ? m->class_names[0] : "yes";
        const char *no = m->n_classes > 1 ? m->class_names[1] : "no";
        printf("%s: %s (p(%s) = %.4f)\n", argv[2], p > 0.5f ? yes : no, yes, (double)p);
    } else {
        int best = (int)cg_tensor_item(cg_tensor_argmax(logits, 1, false));
        printf("%s: %s (output %d of %lld)\n", argv[2],
               best < m->n_classes ? m->class_names[best] : "?", best, (long long)m->n_outputs);
    }
    cg_scope_end();
    free(pixels);
    cg_model_free(m);
    return rc;
}
