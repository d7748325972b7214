/* fuzz_csv.c - libFuzzer target: bytes as CSV digits and as a labels.csv.
 * The parsers are given exactly `size` bytes (no terminating NUL). */
#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a copy of exactly `size` bytes, so a read past the end trips ASan */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    memcpy(text, data, size);
    cg_dataset ds;
    if (cg_csv_parse(&ds, text, size, "fuzz.csv") == CG_OK) {
        if (ds.height * ds.width != ds.x->shape[1] || ds.n_classes < 1) abort();
        cg_dataset_free(&ds);
    }
    cg_labels labels;
    if (cg_labels_parse(&labels, text, size, "fuzz.csv") == CG_OK) {
        for (int64_t i = 0; i < labels.n; i++)
            if (cg_labels_find(&labels, labels.names[i]) != labels.labels[i]) abort();
        cg_labels_free(&labels);
    }
    free(text);
    return 0;
}
