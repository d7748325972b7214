/* fuzz_png.c - libFuzzer target: PNG bytes through the decoder, every way
 * the loaders call it (any size, allocated, as the file is, gray and RGB;
 * and a fixed 28x28 buffer, gray and RGB, as the folder loader does for
 * every image after the first). */
#include "data/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int c = 0; c <= 3; c++) {
        if (c == 2) continue;
        cg_image img = {.channels = c};
        if (cg_png_decode(data, size, "fuzz.png", &img) == CG_OK) {
            /* touch every pixel so a short buffer shows under ASan */
            unsigned sum = 0;
            for (int64_t i = 0; i < img.channels * img.width * img.height; i++)
                sum += img.pixels[i];
            (void)sum;
            free(img.pixels);
        }
    }
    bool colour;
    (void)cg_png_has_colour(data, size, "fuzz.png", &colour);
    uint8_t px[3 * 28 * 28];
    cg_image gray = {px, 28, 28, 1}, rgb = {px, 28, 28, 3};
    cg_png_decode(data, size, "fuzz.png", &gray);
    cg_png_decode(data, size, "fuzz.png", &rgb);
    return 0;
}
