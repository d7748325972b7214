/*
 * png.c - PNG files to and from 8-bit pixels, with libpng: gray (one
 * plane) or RGB (three planes, R, G, B, each H x W: CHW, as torchvision's
 * ToTensor lays out what PIL's convert("RGB") gives).
 *
 * Read gray, whatever its colour type and bit depth, a PNG comes out as
 * one byte of gray per pixel, which is what PIL's Image.open gives for
 * MNIST's files:
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
 * Read as RGB, the same 16-bit scaling, gray expansion and palette
 * expansion, then:
 *   - gray (and gray+alpha): png_set_gray_to_rgb, R = G = B = the gray;
 *   - alpha (a channel, or a palette's tRNS): png_set_strip_alpha, the
 *     stored colour kept, as PIL's convert("RGB") does - and so fastai's
 *     PILImage and torchvision's ImageFolder: an RGB dataset reads as
 *     those libraries read it. (A tRNS colour key of a gray or RGB image
 *     is ignored, as PIL's convert("RGB") ignores it.)
 * libpng gives the pixels interleaved (RGBRGB...); they are split into
 * the three planes here.
 *
 * Whether a PNG "has colour" (what makes a folder RGB): colour type RGB
 * or RGBA, or a palette holding a colour whose R, G and B are not all
 * equal; a palette of grays is gray.
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
    uint8_t *volatile scratch; /* gray+alpha or interleaved RGB pixels, as libpng gives them */
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

/* Whether the image read so far (png_read_info done) has colour: an RGB
 * colour type, but for a palette only if one of its entries is not gray. */
static bool info_has_colour(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info);
    if (!(type & PNG_COLOR_MASK_COLOR)) return false;
    if (type != PNG_COLOR_TYPE_PALETTE) return true;
    png_colorp palette = NULL;
    int n = 0;
    if (!png_get_PLTE(png, info, &palette, &n)) return true; /* libpng refuses this anyway */
    for (int i = 0; i < n; i++)
        if (palette[i].red != palette[i].green || palette[i].green != palette[i].blue) return true;
    return false;
}

/* The transformations that make 8-bit gray (see the top of the file). */
static void set_gray(png_structp png, png_infop info, int type, int depth) {
    if (depth == 16) png_set_scale_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    /* red 0.29900, green 0.58700 (in units of 1e-5); blue is the rest, 0.114. */
    if (type & PNG_COLOR_MASK_COLOR)
        png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
}

/* The transformations that make 8-bit RGB, as PIL's convert("RGB"). */
static void set_rgb(png_structp png, int type, int depth) {
    if (depth == 16) png_set_scale_16(png);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (!(type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    /* Drops an alpha channel, and the alpha palette_to_rgb makes of a tRNS. */
    png_set_strip_alpha(png);
}

typedef struct decode_arg {
    const char *name;
    cg_image *img;
} decode_arg;

static cg_status decode_body(png_job *job, void *argp) {
    decode_arg *arg = argp;
    png_structp png = job->png;
    png_infop info = job->info;
    png_read_info(png, info);
    int64_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
    int file_channels = png_get_channels(png, info);

    if (w * h > CG_PNG_MAX_PIXELS)
        return cg_fail(CG_ERR_FORMAT, "png: %s: %lldx%lld is larger than the %lld pixels we decode",
                       arg->name, (long long)w, (long long)h, (long long)CG_PNG_MAX_PIXELS);
    /* The pixels' bits are a lower bound on the inflated IDAT bytes. */
    double raw = (double)w * (double)h * file_channels * depth / 8.0;
    if (raw > DEFLATE_MAX_RATIO * (double)job->len + 65536.0)
        return cg_fail(CG_ERR_FORMAT,
                       "png: %s: truncated or corrupt (a %lldx%lld image cannot fit in %zu bytes)",
                       arg->name, (long long)w, (long long)h, job->len);
    cg_image *img = arg->img;
    if (img->pixels && (w != img->width || h != img->height))
        return cg_fail(CG_ERR_SHAPE, "png: %s: image is %lldx%lld, expected %lldx%lld", arg->name,
                       (long long)w, (long long)h, (long long)img->width, (long long)img->height);
    const int planes = img->channels ? img->channels : info_has_colour(png, info) ? 3 : 1;

    if (planes == 3) set_rgb(png, type, depth);
    else set_gray(png, info, type, depth);
    png_set_gamma_fixed(png, PNG_FP_1, PNG_FP_1);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    /* libpng's rows: gray, gray+alpha (composited below) or RGB. */
    int out_channels = png_get_channels(png, info);
    bool fits = planes == 3 ? out_channels == 3 : out_channels == 1 || out_channels == 2;
    if (png_get_bit_depth(png, info) != 8 || !fits ||
        png_get_rowbytes(png, info) != (size_t)(w * out_channels))
        return cg_fail(CG_ERR_FORMAT,
                       "png: %s: libpng did not give 8-bit %s (%d channels of %d bits)", arg->name,
                       planes == 3 ? "RGB" : "gray", out_channels, png_get_bit_depth(png, info));

    const int64_t hw = w * h;
    uint8_t *dst = img->pixels;
    if (!dst) {
        job->owned = malloc((size_t)(planes * hw > 0 ? planes * hw : 1));
        if (!job->owned) return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", arg->name);
        dst = job->owned;
    }
    /* Interlaced images are read once per pass into the same rows, which
     * libpng fills in place; gray+alpha and RGB need a whole image of
     * scratch (interleaved, as libpng gives it). */
    uint8_t *rows = dst;
    if (out_channels > 1) {
        job->scratch = malloc((size_t)(out_channels * hw > 0 ? out_channels * hw : 1));
        if (!job->scratch) return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", arg->name);
        rows = job->scratch;
    }
    for (int p = 0; p < passes; p++)
        for (int64_t y = 0; y < h; y++) png_read_row(png, rows + y * w * out_channels, NULL);
    /* Reading to IEND checks the last chunks' CRCs: a file cut after its
     * pixel data is still an error. */
    png_read_end(png, NULL);

    const uint8_t *in = job->scratch;
    if (planes == 3) {
        /* RGBRGB... into the R, G and B planes. */
        for (int c = 0; c < 3; c++)
            for (int64_t i = 0; i < hw; i++) dst[c * hw + i] = in[3 * i + c];
    } else if (out_channels == 2) {
        /* Over black: Y * a/255, rounded (Y*a/255 is never exactly .5). */
        for (int64_t i = 0; i < hw; i++)
            dst[i] = (uint8_t)((in[2 * i] * in[2 * i + 1] + 127) / 255);
    }
    img->width = w;
    img->height = h;
    img->channels = planes;
    img->pixels = dst;
    return CG_OK;
}

/* A read job on buf, or an error. */
static cg_status job_start(png_job *job, const uint8_t *buf, size_t len, const char *name) {
    if (len < 8 || png_sig_cmp(buf, 0, 8) != 0)
        return cg_fail(CG_ERR_FORMAT, "png: %s: not a PNG file (no PNG signature)", name);
    *job = (png_job){.buf = buf, .len = len};
    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
    job->info = job->png ? png_create_info_struct(job->png) : NULL;
    if (!job->info) {
        png_destroy_read_struct(job->png ? &job->png : NULL, NULL, NULL);
        return cg_fail(CG_ERR_NOMEM, "png: %s: out of memory", name);
    }
    png_set_read_fn(job->png, job, on_read);
    /* Trust our own size checks, not libpng's 1M x 1M default. */
    png_set_user_limits(job->png, 1u << 20, 1u << 20);
#ifdef PNG_IGNORE_ADLER32
    /* zlib's Adler-32 of the inflated pixels checks again what each IDAT
     * chunk's CRC-32 (still checked) already covers: a damaged file still
     * fails. Skipping it is ~4% of decoding MNIST's small PNGs. */
    png_set_option(job->png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
    return CG_OK;
}

cg_status cg_png_decode(const uint8_t *buf, size_t len, const char *name, cg_image *img) {
    if (img->channels != 0 && img->channels != 1 && img->channels != 3)
        return cg_fail(CG_ERR_ARG, "png: %s: cannot read %d channels (1 gray, 3 RGB, 0 either)",
                       name, img->channels);
    if (img->pixels && !img->channels)
        return cg_fail(CG_ERR_ARG, "png: %s: reading into a buffer needs 1 or 3 channels", name);
    png_job job;
    if (job_start(&job, buf, len, name) != CG_OK) return cg_last_status();
    uint8_t *given = img->pixels;
    const int want = img->channels;
    decode_arg arg = {name, img};
    cg_status st = CG_OK;
    bool ran = png_run(&job, decode_body, &arg, &st);
    png_destroy_read_struct(&job.png, &job.info, NULL);
    free(job.scratch);
    job.scratch = NULL;
    if (ran && st == CG_OK) return CG_OK; /* img->pixels now owns job.owned */
    job_free_buffers(&job);
    img->pixels = given;
    img->channels = want;
    if (!ran)
        return cg_fail(CG_ERR_FORMAT, "png: %s: truncated or corrupt (libpng: %s)", name, job.msg);
    return st;
}

static cg_status colour_body(png_job *job, void *arg) {
    png_read_info(job->png, job->info);
    *(bool *)arg = info_has_colour(job->png, job->info);
    return CG_OK;
}

cg_status cg_png_has_colour(const uint8_t *buf, size_t len, const char *name, bool *colour) {
    png_job job;
    if (job_start(&job, buf, len, name) != CG_OK) return cg_last_status();
    cg_status st = CG_OK;
    bool ran = png_run(&job, colour_body, colour, &st);
    png_destroy_read_struct(&job.png, &job.info, NULL);
    if (!ran)
        return cg_fail(CG_ERR_FORMAT, "png: %s: truncated or corrupt (libpng: %s)", name, job.msg);
    return st;
}

cg_status cg_png_read_image(const char *path, int channels, cg_image *img) {
    if (!path || !img) return cg_fail(CG_ERR_ARG, "png: read_image needs a path and an image");
    *img = (cg_image){.channels = channels};
    cg_bytes file = {0};
    cg_status st = cg_read_file("png", path, PNG_MAX_FILE_BYTES, &file);
    if (st == CG_OK) st = cg_png_decode(file.data, file.len, path, img);
    cg_bytes_free(&file);
    return st;
}

cg_status cg_png_read_gray(const char *path, uint8_t **pixels, int64_t *width, int64_t *height) {
    if (!path || !pixels || !width || !height)
        return cg_fail(CG_ERR_ARG, "png: read_gray needs a path and three outputs");
    *pixels = NULL;
    cg_image img;
    if (cg_png_read_image(path, 1, &img) != CG_OK) return cg_last_status();
    *pixels = img.pixels;
    *width = img.width;
    *height = img.height;
    return CG_OK;
}

cg_status cg_png_read_item(const char *path, const int64_t *in_shape, int in_ndim,
                           uint8_t **pixels) {
    if (!path || !in_shape || !pixels || (in_ndim != 1 && in_ndim != 3))
        return cg_fail(CG_ERR_ARG, "png: read_item needs a path, a shape of 1 or 3 dimensions "
                                   "and an output");
    *pixels = NULL;
    const bool image = in_ndim == 3;
    if (image && in_shape[0] != 1 && in_shape[0] != 3)
        return cg_fail(CG_ERR_SHAPE, "png: %s: the model takes images of %lld channels; a PNG "
                                     "gives 1 (gray) or 3 (RGB)",
                       path, (long long)in_shape[0]);
    /* A flat item's channels follow from its length and the image's size,
     * known once the image is read as it is. */
    cg_image img;
    if (cg_png_read_image(path, image ? (int)in_shape[0] : 0, &img) != CG_OK)
        return cg_last_status();
    const int64_t hw = img.width * img.height;
    int want = image ? (int)in_shape[0] : in_shape[0] == hw ? 1 : in_shape[0] == 3 * hw ? 3 : 0;
    bool fits = image ? img.height == in_shape[1] && img.width == in_shape[2] : want != 0;
    if (!fits) {
        free(img.pixels);
        if (image)
            return cg_fail(CG_ERR_SHAPE, "png: %s is %lldx%lld; the model takes %lldx%lld images",
                           path, (long long)img.width, (long long)img.height,
                           (long long)in_shape[2], (long long)in_shape[1]);
        return cg_fail(CG_ERR_SHAPE,
                       "png: %s is %lldx%lld (%lld pixels); the model takes %lld values, which "
                       "is neither its gray pixels nor 3 planes of them",
                       path, (long long)img.width, (long long)img.height, (long long)hw,
                       (long long)in_shape[0]);
    }
    if (want != img.channels) { /* read again as the model takes it */
        free(img.pixels);
        if (cg_png_read_image(path, want, &img) != CG_OK) return cg_last_status();
    }
    *pixels = img.pixels;
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
