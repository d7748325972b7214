/* fuzz_model.c - libFuzzer target: bytes as a model file (cg_model_load,
 * src/nn/model_file.c; version 2 and version 1).
 *
 * The loader reads a path, so each input is written to one reused file in
 * a folder of this process's own (on tmpfs, /dev/shm, when there is one:
 * no disk in the loop). Each input is tried twice: as it is, and with its
 * last 4 bytes replaced by the CRC-32 of the others, so that mutations
 * reach the checks behind the checksum (kinds, arguments, class names,
 * weights) instead of stopping at it. A model that loads must also:
 *   - save (its weights are finite, its names valid: save has no reason
 *     to refuse it) and load back as the same model, field for field and
 *     bit for bit;
 *   - write its spec, rebuild from it a model of the same layers and shapes;
 *   - print its summary;
 *   - run forward on zeros in eval mode (a batch of 1 and of 3) and train
 *     mode (3), giving [N, n_outputs] (when its activations are small
 *     enough to be worth the time);
 *   - classify a blank image when it is a classifier the CLI would accept.
 * Anything else aborts, and the sanitizers catch the rest. */
#include "cgrad.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], in_path[96], out_path[96];
static FILE *devnull;

static void cleanup(void) {
    unlink(in_path);
    unlink(out_path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(dir, sizeof dir, "/dev/shm/cgrad-fuzz-model-XXXXXX");
    if (!mkdtemp(dir)) {
        snprintf(dir, sizeof dir, "/tmp/cgrad-fuzz-model-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    snprintf(in_path, sizeof in_path, "%s/in.cgm", dir);
    snprintf(out_path, sizeof out_path, "%s/out.cgm", dir);
    atexit(cleanup);
    if (!(devnull = fopen("/dev/null", "w"))) abort();
    cg_set_num_threads(1); /* tiny models: threads only add overhead */
    return 0;
}

static void check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_model: %s (%s)\n", what, cg_last_error());
        abort();
    }
}

static bool same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* b is a's save-and-load: everything the file holds came back. */
static void check_same(const cg_model *a, const cg_model *b) {
    check(strcmp(a->name, b->name) == 0, "round trip: name");
    check(a->n_layers == b->n_layers, "round trip: layers");
    check(a->in_ndim == b->in_ndim &&
              same_bits(a->in_shape, b->in_shape, sizeof(int64_t) * (size_t)a->in_ndim),
          "round trip: input shape");
    check(a->n_inputs == b->n_inputs && a->n_outputs == b->n_outputs, "round trip: sizes");
    for (int i = 0; i < a->n_layers; i++) {
        const cg_layer *x = &a->layers[i], *y = &b->layers[i];
        check(x->kind == y->kind, "round trip: layer kind");
        check(same_bits(x->args, y->args, sizeof x->args), "round trip: layer args");
        check(same_bits(x->fargs, y->fargs, sizeof x->fargs), "round trip: layer fargs");
        check(x->out_ndim == y->out_ndim &&
                  same_bits(x->out_shape, y->out_shape, sizeof(int64_t) * (size_t)x->out_ndim),
              "round trip: layer output shape");
        check(x->n_params == y->n_params && x->n_state == y->n_state, "round trip: tensors");
    }
    check(a->n_params == b->n_params, "round trip: params");
    for (int i = 0; i < a->n_params; i++)
        check(cg_tensor_same_shape(a->params[i], b->params[i]) &&
                  same_bits(a->params[i]->data, b->params[i]->data,
                            sizeof(float) * (size_t)a->params[i]->numel),
              "round trip: weights");
    check(a->n_classes == b->n_classes, "round trip: classes");
    for (int c = 0; c < a->n_classes; c++)
        check(strcmp(a->class_names[c], b->class_names[c]) == 0, "round trip: class names");
}

/* Elements of every activation of one item: what a forward pass holds. */
static int64_t activations(const cg_model *m) {
    int64_t n = m->n_inputs;
    for (int i = 0; i < m->n_layers; i++) {
        int64_t k = 1;
        for (int d = 0; d < m->layers[i].out_ndim; d++) k *= m->layers[i].out_shape[d];
        n += k;
    }
    return n;
}

static void forward_zeros(cg_model *m, int64_t batch) {
    bool prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *x = cg_tensor_zeros((int64_t[]){batch, m->n_inputs}, 2);
    check(x != NULL, "forward: zeros");
    /* Train mode only for a batch of several: batch norm needs more than
     * one value per channel to take statistics from (as PyTorch). */
    for (int train = 0; train < (batch > 1 ? 2 : 1); train++) {
        cg_model_train(m, train);
        cg_tensor *y = cg_model_forward(m, x);
        check(y != NULL, "forward failed");
        check(y->ndim == 2 && y->shape[0] == batch && y->shape[1] == m->n_outputs,
              "forward: output shape");
    }
    cg_model_train(m, false);
    cg_scope_end();
    cg_set_grad_enabled(prev);
}

static void one_file(const uint8_t *data, size_t size) {
    int fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0) abort();
    cg_model *m = cg_model_load(in_path);
    if (!m) {
        check(cg_last_status() != CG_OK, "load failed without an error");
        return;
    }
    check(!m->training, "a loaded model is in eval mode");
    check(m->n_inputs >= 1 && m->n_outputs >= 1, "a model takes and gives something");

    /* save, load back */
    check(cg_model_save(m, out_path) == CG_OK, "save of a loaded model");
    cg_model *back = cg_model_load(out_path);
    check(back != NULL, "load of a saved model");
    check_same(m, back);
    cg_model_free(back);

    /* spec and summary */
    char spec[CG_MODEL_MAX_LAYERS * 64];
    cg_model_spec(m, spec, sizeof spec);
    cg_model *again = cg_model_from_spec(spec, m->name, m->in_shape, m->in_ndim, m->n_outputs,
                                         CG_INIT_PYTORCH, 1.0f, NULL);
    check(again != NULL, "rebuilding from the model's own spec");
    check(again->n_layers == m->n_layers && again->n_params == m->n_params &&
              cg_model_param_count(again) == cg_model_param_count(m),
          "the spec's model has other layers");
    cg_model_free(again);
    cg_model_summary(m, devnull);

    /* forward, when cheap enough */
    if (activations(m) <= ((int64_t)1 << 16)) {
        forward_zeros(m, 1);
        forward_zeros(m, 3);
        /* A classifier the CLI would accept: one blank image. */
        bool classifier = m->n_classes >= 2 && (m->n_outputs == 1 ? m->n_classes == 2
                                                                   : m->n_outputs == m->n_classes);
        if (classifier) {
            uint8_t *px = calloc((size_t)m->n_inputs, 1);
            double probs[CG_MAX_CLASSES];
            check(px != NULL, "out of memory");
            int cls = cg_model_classify(m, px, probs, NULL);
            check(cls >= 0 && cls < m->n_classes, "classify");
            free(px);
        }
    }
    cg_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one_file(data, size);
    if (size < 12) return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed) abort();
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32(0L, fixed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    if (memcmp(fixed, data, size) != 0) one_file(fixed, size);
    free(fixed);
    return 0;
}
