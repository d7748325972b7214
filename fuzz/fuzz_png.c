/* fuzz_png.c - libFuzzer target: PNG bytes through the decoder, both ways
 * the loaders call it (any size, allocated; and a fixed 28x28 buffer, as
 * the folder loader does for every image after the first). */
#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cg_gray_image img = {0};
    if (cg_png_decode(data, size, "fuzz.png", &img) == CG_OK) {
        /* touch every pixel so a short buffer shows under ASan */
        unsigned sum = 0;
        for (int64_t i = 0; i < img.width * img.height; i++) sum += img.pixels[i];
        (void)sum;
        free(img.pixels);
    }
    uint8_t px[28 * 28];
    cg_gray_image fixed = {px, 28, 28};
    cg_png_decode(data, size, "fuzz.png", &fixed);
    return 0;
}
