/*
 * png.c - PNG files to and from 8-bit gray pixels, with libpng.
 *
 * Whatever its colour type and bit depth, a PNG comes out as one byte of
 * gray per pixel, which is what PIL's Image.open gives for MNIST's files:
 *   - 16-bit samples: png_set_scale_16, v8 = round(v16 * 255 / 65535)
 *     (not png_set_strip_16, which keeps the high byte and so rounds down);
 *   - gray of 1, 2 or 4 bits: png_set_expand_gray_1_2_4_to_8, which scales
 *     0..2^d-1 onto 0..255 (a 1-bit white is 255, not 1);
 *   - palette: png_set_palette_to_rgb, then as RGB;
 *   - RGB: png_set_rgb_to_gray_fixed with the ITU-R BT.601 luma weights,
 *     Y = 0.299 R + 0.587 G + 0.114 B (PIL's convert("L") uses the same).
 *     libpng works in 15-bit fixed point and truncates, so Y can be one
 *     below PIL's rounded value. Gamma is ignored (file and screen gamma
 *     both set to 1), as PIL does: the weights apply to the stored values;
 *   - alpha (an alpha channel, or a tRNS chunk via png_set_tRNS_to_alpha):
 *     composited on black, Y' = round(Y * a / 255). MNIST digits are light
 *     on a black background, so a transparent pixel is background, 0. (Just
 *     stripping alpha would turn "transparent white" into white ink.)
 *
 * libpng reports errors by longjmp. The only setjmp here sits in a
 * two-line trampoline (png_run) whose own locals never change, and all the
 * state a failure must clean up (the buffers we malloc'd, libpng's message)
 * lives in the caller's png_job, reached through a pointer - so nothing the
 * cleanup reads is an automatic variable of the function that called
 * setjmp, which is what C leaves indeterminate after a longjmp. The buffer
 * pointers are volatile all the same, so no compiler may cache them.
 */
#include "data/data.h"
#include "util/file.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>

/* Deflate expands at most 1032:1 (RFC 1951's longest match per 2-bit
 * code), so an image needing more raw bytes than this cannot be valid. */
#define DEFLATE_MAX_RATIO 1032.0

/* Largest PNG file we read into memory. */
#define PNG_MAX_FILE_BYTES ((size_t)1 << 28)

typedef struct png_job {
    png_structp png;
    png_infop info;
    /* memory source (reading) */
    const uint8_t *buf;
    size_t len, pos;
    /* what a failure frees */
    uint8_t *volatile owned;   /* the output, when we allocated it */
    uint8_t *volatile scratch; /* gray+alpha pixels before compositing */
    char msg[160];             /* libpng's error message */
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    /* Warnings (bad ancillary chunks, ...) are not the caller's problem,
     * and a library must not print. */
    (void)png;
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t n) {
    png_job *job = png_get_io_ptr(png);
    if (n > job->len - job->pos) png_error(png, "file ends early");
    memcpy(out, job->buf + job->pos, n);
    job->pos += n;
}

/* Runs body(job) under libpng's error handling; false if libpng failed
 * (job->msg says why). *status gets body's own result otherwise. */
static bool png_run(png_job *job, cg_status (*body)(png_job *, void *), void *arg,
                    cg_status *status) {
    if (setjmp(png_jmpbuf(job->png))) return false;
    *status = body(job, arg);
    return true;
}

static void job_free_buffers(png_job *job) {
    free(job->owned);
    free(job->scratch);
    job->owned = NULL;
    job->scratch = NULL;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

typedef struct decode_arg {
    const char *name;
    cg_gray_image *img;
} decode_arg;

static cg_status decode_body(png_job *job, void *argp) {
    decode_arg *arg = argp;
    png_structp png = job->png;
    png_infop info = job->info;
    png_read_info(png, info);
    int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    int channels = png_get_channels(png, info);

    if (w * h > CG_PNG_MAX_PIXELS)
        return cg_fail(CG_ERR_FORMAT, "png: %s: %lldx%lld is larger than the %lld pixels we decode",
                       arg->name, (long long)w, (long long)h, (long long)CG_PNG_MAX_PIXELS);
    /* The pixels' bits are a lower bound on the inflated IDAT bytes. */
    double raw = (double)w * (double)h * channels * depth / 8.0;
    if (raw > DEFLATE_MAX_RATIO * (double)job->len + 65536.0)
        return cg_fail(CG_ERR_FORMAT,
                       "png: %s: truncated or corrupt (a %lldx%lld image cannot fit in %zu bytes)",
                       arg->name, (long long)w, (long long)h, job->len);
    cg_gray_image *img = arg->img;
    if (img->pixels && (w != img->width || h != img->height))
        return cg_fail(CG_ERR_SHAPE, "png: %s: image is %lldx%lld, expected %lldx%lld", arg->name,
                       (long long)w, (long long)h, (long long)img->width, (long long)img->height);

    if (depth == 16) png_set_scale_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    /* red 0.29900, green 0.58700 (in units of 1e-5); blue is the rest, 0.114. */
    if (type & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
    png_set_gamma_fixed(png, PNG_FP_1, PNG_FP_1);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int out_channels = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || (out_channels != 1 && out_channels != 2) ||
        png_get_rowbytes(png, info) != (size_t)(w * out_channels))
        return cg_fail(CG_ERR_FORMAT,
                       "png: %s: libpng did not give 8-bit gray (%d channels of %d bits)",
                       arg->name, out_channels, png_get_bit_depth(png, info));

    uint8_t *dst = img->pixels;
    if (!dst) {
        job->owned = malloc((size_t)(w * h > 0 ? w * h : 1));
        if (!job->owned) return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", arg->name);
        dst = job->owned;
    }
    /* Interlaced images are read once per pass into the same rows, which
     * libpng fills in place; gray+alpha needs a whole image of scratch. */
    uint8_t *rows = dst;
    if (out_channels == 2) {
        job->scratch = malloc((size_t)(2 * w * h > 0 ? 2 * w * h : 1));
        if (!job->scratch) return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", arg->name);
        rows = job->scratch;
    }
    for (int p = 0; p < passes; p++)
        for (int64_t y = 0; y < h; y++) png_read_row(png, rows + y * w * out_channels, NULL);
    /* Reading to IEND checks the last chunks' CRCs: a file cut after its
     * pixel data is still an error. */
    png_read_end(png, NULL);

    if (out_channels == 2) {
        const uint8_t *ga = job->scratch;
        /* Over black: Y * a/255, rounded (Y*a/255 is never exactly .5). */
        for (int64_t i = 0; i < w * h; i++)
            dst[i] = (uint8_t)((ga[2 * i] * ga[2 * i + 1] + 127) / 255);
    }
    img->width = w;
    img->height = h;
    img->pixels = dst;
    return CG_OK;
}

cg_status cg_png_decode(const uint8_t *buf, size_t len, const char *name, cg_gray_image *img) {
    if (len < 8 || png_sig_cmp(buf, 0, 8) != 0)
        return cg_fail(CG_ERR_FORMAT, "png: %s: not a PNG file (no PNG signature)", name);
    png_job job = {.buf = buf, .len = len};
    job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
    job.info = job.png ? png_create_info_struct(job.png) : NULL;
    if (!job.info) {
        png_destroy_read_struct(job.png ? &job.png : NULL, NULL, NULL);
        return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", name);
    }
    png_set_read_fn(job.png, &job, on_read);
    /* Trust our own size checks, not libpng's 1M x 1M default. */
    png_set_user_limits(job.png, 1u << 20, 1u << 20);
#ifdef PNG_IGNORE_ADLER32
    /* zlib's Adler-32 of the inflated pixels checks again what each IDAT
     * chunk's CRC-32 (still checked) already covers: a damaged file still
     * fails. Skipping it is ~4% of decoding MNIST's small PNGs. */
    png_set_option(job.png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    uint8_t *given = img->pixels;
    decode_arg arg = {name, img};
    cg_status st = CG_OK;
    bool ran = png_run(&job, decode_body, &arg, &st);
    png_destroy_read_struct(&job.png, &job.info, NULL);
    free(job.scratch);
    job.scratch = NULL;
    if (ran && st == CG_OK) return CG_OK; /* img->pixels now owns job.owned */
    job_free_buffers(&job);
    img->pixels = given;
    if (!ran)
        return cg_fail(CG_ERR_FORMAT, "png: %s: truncated or corrupt (libpng: %s)", name, job.msg);
    return st;
}

cg_status cg_png_read_gray(const char *path, uint8_t **pixels, int64_t *width, int64_t *height) {
    if (!path || !pixels || !width || !height)
        return cg_fail(CG_ERR_ARG, "png: read_gray needs a path and three outputs");
    *pixels = NULL;
    cg_bytes file = {0};
    if (cg_read_file("png", path, PNG_MAX_FILE_BYTES, &file) != CG_OK) {
        cg_bytes_free(&file);
        return cg_last_status();
    }
    cg_gray_image img = {0};
    cg_status st = cg_png_decode(file.data, file.len, path, &img);
    cg_bytes_free(&file);
    if (st != CG_OK) return st;
    *pixels = img.pixels;
    *width = img.width;
    *height = img.height;
    return CG_OK;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

typedef struct encode_arg {
    FILE *f;
    const uint8_t *pixels;
    int64_t width, height;
} encode_arg;

static cg_status encode_body(png_job *job, void *argp) {
    encode_arg *arg = argp;
    png_init_io(job->png, arg->f);
    png_set_IHDR(job->png, job->info, (png_uint_32)arg->width, (png_uint_32)arg->height, 8,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(job->png, job->info);
    for (int64_t y = 0; y < arg->height; y++) png_write_row(job->png, arg->pixels + y * arg->width);
    png_write_end(job->png, NULL);
    return CG_OK;
}

cg_status cg_png_write_gray(const char *path, const uint8_t *pixels, int64_t width,
                            int64_t height) {
    if (!path || !pixels)
        return cg_fail(CG_ERR_ARG, "png: write_gray needs a path and pixels");
    if (width < 1 || height < 1 || width > (1 << 20) || height > (1 << 20) ||
        width * height > CG_PNG_MAX_PIXELS)
        return cg_fail(CG_ERR_ARG, "png: %s: cannot write a %lldx%lld image", path,
                       (long long)width, (long long)height);
    /* Encoded in memory, then written as every file cgrad writes is
     * (cg_write_file_atomic): no half image after a crash, and a FIFO or
     * device at path is refused, not replaced. */
    char *encoded = NULL;
    size_t encoded_len = 0;
    FILE *f = open_memstream(&encoded, &encoded_len);
    if (!f) return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", path);
    png_job job = {0};
    job.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, on_error, on_warning);
    job.info = job.png ? png_create_info_struct(job.png) : NULL;
    if (!job.info) {
        png_destroy_write_struct(job.png ? &job.png : NULL, NULL);
        fclose(f);
        free(encoded);
        return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", path);
    }
    encode_arg arg = {f, pixels, width, height};
    cg_status st = CG_OK;
    bool ran = png_run(&job, encode_body, &arg, &st);
    png_destroy_write_struct(&job.png, &job.info);
    bool closed = fclose(f) == 0;
    if (!ran) st = cg_fail(CG_ERR_IO, "png: cannot write %s (libpng: %s)", path, job.msg);
    else if (st == CG_OK && !closed) st = cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", path);
    if (st == CG_OK) st = cg_write_file_atomic("png", path, encoded, encoded_len);
    free(encoded);
    return st;
}
