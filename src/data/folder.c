/*
 * folder.c - fastai's image-folder layout, ROOT/<class>/<image>.png.
 *
 * The order is the article's: classes are the sub-folder names sorted,
 * and within a class the files sorted as Python's sorted() sorts paths
 * (byte order of the names, so "10.png" < "10000.png" < "9.png"). Names
 * starting with '.' are skipped (.ipynb_checkpoints, macOS's "._x.png").
 *
 * Files decode in parallel, each on its own; a failure is reported for the
 * first failing file in that order, whichever thread met it, so the error
 * does not depend on the thread count.
 *
 * A folder is gray or RGB as a whole, decided before anything is decoded:
 * the headers read for the images' sizes also give each PNG's colour type
 * (IHDR), and one colour image makes the folder RGB (a palette image is
 * looked at further, by libpng: a palette of grays is gray). Its gray
 * images are then read as three equal planes, as torchvision's
 * ImageFolder reads every image with convert("RGB").
 */
#include "data/data.h"
#include "util/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest image file we read. */
#define FOLDER_MAX_FILE ((size_t)1 << 28)
/* Most images one folder load takes (so the path list stays bounded). */
#define FOLDER_MAX_FILES ((int64_t)1 << 26)

/* Strings in one growing block; pointers are made once it stops growing. */
typedef struct strlist {
    char *text;
    size_t len, cap;
    size_t *off;
    int64_t n, cap_n;
} strlist;

static void strlist_free(strlist *l) {
    free(l->text);
    free(l->off);
    *l = (strlist){0};
}

/* Appends a, b and c joined into one string. */
static cg_status strlist_add(strlist *l, const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c), need = l->len + la + lb + lc + 1;
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        while (cap < need) cap *= 2;
        char *t = realloc(l->text, cap);
        if (!t) return cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
        l->text = t;
        l->cap = cap;
    }
    if (l->n == l->cap_n) {
        int64_t cn = l->cap_n ? l->cap_n * 2 : 256;
        size_t *o = realloc(l->off, (size_t)cn * sizeof *o);
        if (!o) return cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
        l->off = o;
        l->cap_n = cn;
    }
    l->off[l->n++] = l->len;
    memcpy(l->text + l->len, a, la);
    memcpy(l->text + l->len + la, b, lb);
    memcpy(l->text + l->len + la + lb, c, lc + 1);
    l->len = need;
    return CG_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The strings as a sorted array of pointers into l (malloc'd). */
static char **strlist_sorted(const strlist *l) {
    char **p = malloc((size_t)(l->n ? l->n : 1) * sizeof *p);
    if (!p) {
        cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
        return NULL;
    }
    for (int64_t i = 0; i < l->n; i++) p[i] = l->text + l->off[i];
    qsort(p, (size_t)l->n, sizeof *p, cmp_str);
    return p;
}

static bool has_png_suffix(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* Adds to `out` the names in dir that are folders (want_dirs) or .png
 * files, skipping names that start with '.'. */
static cg_status list_dir(const char *dir, bool want_dirs, strlist *out) {
    DIR *d = opendir(dir);
    if (!d) return cg_fail(CG_ERR_IO, "folder: cannot open %s: %s", dir, strerror(errno));
    cg_status st = CG_OK;
    struct dirent *e;
    while (st == CG_OK && (errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (!want_dirs && !has_png_suffix(e->d_name)) continue;
        bool is_dir = e->d_type == DT_DIR, is_file = e->d_type == DT_REG;
        mode_t mode = e->d_type == DT_LNK ? S_IFLNK : 0;
        /* Links are followed, as Python does; an image name that is not a
         * regular file is stat'ed to say what it is. */
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK || (!want_dirs && !is_file)) {
            char path[4096];
            struct stat s;
            int len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (len > 0 && (size_t)len < sizeof path && stat(path, &s) == 0) {
                is_dir = S_ISDIR(s.st_mode);
                is_file = S_ISREG(s.st_mode);
                mode = s.st_mode;
            }
        }
        /* A FIFO or device named 5.png would hang the reader, and skipping
         * it would quietly drop an image: it is an error, named. (A folder
         * named x.png is no image and is skipped, as before.) */
        if (!want_dirs && !is_file && !is_dir)
            st = cg_fail(CG_ERR_FORMAT, "folder: %s/%s is not a regular file (%s)", dir,
                         e->d_name, cg_file_kind(mode));
        else if (want_dirs ? is_dir : is_file)
            st = strlist_add(out, e->d_name, "", "");
        if (out->n > FOLDER_MAX_FILES)
            st = cg_fail(CG_ERR_ARG, "folder: %s holds more than %lld entries", dir,
                         (long long)FOLDER_MAX_FILES);
    }
    if (st == CG_OK && errno != 0)
        st = cg_fail(CG_ERR_IO, "folder: cannot list %s: %s", dir, strerror(errno));
    closedir(d);
    return st;
}

/* The work list: every image's path, in load order, and its class. Each
 * class folder stays open, so a file is opened relative to it. */
struct cg_folder_items {
    strlist paths;
    char **path;   /* pointers into paths.text */
    int *label;
    int64_t n;
    int n_dirs;
    int dirfd[CG_MAX_CLASSES];
    size_t base[CG_MAX_CLASSES]; /* where the file name starts in a path */
    size_t root_len;             /* where "<class>/<file>" starts: past ROOT/ */
};
typedef struct cg_folder_items folder_items;

static void items_free(folder_items *it) {
    strlist_free(&it->paths);
    free(it->path);
    free(it->label);
    for (int c = 0; c < it->n_dirs; c++) close(it->dirfd[c]);
    *it = (folder_items){0};
}

/* One class folder's .png names, sorted; read by list_class. */
typedef struct class_listing {
    strlist files;
    char **names; /* sorted pointers into files */
    cg_status st;
    char msg[512]; /* the failure's message, made on whichever thread met it */
} class_listing;

static void list_class(const char *dir, class_listing *l) {
    l->st = list_dir(dir, false, &l->files);
    if (l->st == CG_OK && l->files.n == 0)
        l->st = cg_fail(CG_ERR_FORMAT, "folder: class folder %s holds no .png images", dir);
    if (l->st == CG_OK && !(l->names = strlist_sorted(&l->files))) l->st = cg_last_status();
    if (l->st != CG_OK) snprintf(l->msg, sizeof l->msg, "%s", cg_last_error());
}

/* ROOT/<class> into buf; false (with the error set) if it does not fit. */
static bool class_dir(char *buf, size_t size, const char *root, const char *cls) {
    if (snprintf(buf, size, "%s/%s", root, cls) < (int)size) return true;
    cg_fail(CG_ERR_ARG, "folder: path %s/%s is too long", root, cls);
    return false;
}

/*
 * Lists the classes into ds->class_names and the images into items.
 * Reading a folder of 6,000 names and sorting them takes milliseconds
 * (half in the kernel's readdir, half in strcmp), so the class folders are
 * read in parallel, then joined in class order; a failure is reported for the
 * first failing class, so it does not depend on the thread count.
 */
static cg_status list_images(cg_dataset *ds, const char *root, folder_items *it) {
    strlist classes = {0};
    char **cls = NULL;
    class_listing *per = NULL;
    cg_status st = list_dir(root, true, &classes);
    if (st == CG_OK && classes.n == 0)
        st = cg_fail(CG_ERR_FORMAT, "folder: %s has no class folders (expected ROOT/<class>/*.png)",
                     root);
    if (st == CG_OK && classes.n > CG_MAX_CLASSES)
        st = cg_fail(CG_ERR_FORMAT, "folder: %s has %lld class folders, more than %d", root,
                     (long long)classes.n, CG_MAX_CLASSES);
    if (st == CG_OK && !(cls = strlist_sorted(&classes))) st = cg_last_status();
    const int nc = st == CG_OK ? (int)classes.n : 0;
    for (int c = 0; st == CG_OK && c < nc; c++) {
        char dir[4096];
        if (strlen(cls[c]) >= CG_CLASS_NAME_MAX)
            st = cg_fail(CG_ERR_FORMAT, "folder: class name \"%s\" in %s is longer than %d bytes",
                         cls[c], root, CG_CLASS_NAME_MAX - 1);
        else if (class_dir(dir, sizeof dir, root, cls[c]))
            snprintf(ds->class_names[c], CG_CLASS_NAME_MAX, "%s", cls[c]);
        else
            st = cg_last_status();
    }
    if (st == CG_OK && !(per = calloc((size_t)nc, sizeof *per)))
        st = cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");

    if (st == CG_OK) {
#pragma omp parallel for schedule(dynamic, 1) if (nc > 1)
        for (int c = 0; c < nc; c++) {
            char dir[4096];
            (void)class_dir(dir, sizeof dir, root, cls[c]); /* fits: checked above */
            list_class(dir, &per[c]);
        }
    }

    int64_t cap = 0;
    for (int c = 0; st == CG_OK && c < nc; c++) {
        char dir[4096];
        (void)class_dir(dir, sizeof dir, root, cls[c]);
        if (per[c].st != CG_OK) {
            st = cg_fail(per[c].st, "%s", per[c].msg);
            break;
        }
        it->dirfd[c] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (it->dirfd[c] < 0) {
            st = cg_fail(CG_ERR_IO, "folder: cannot open %s: %s", dir, strerror(errno));
            break;
        }
        it->n_dirs = c + 1;
        it->base[c] = strlen(dir) + 1;
        const class_listing *l = &per[c];
        for (int64_t i = 0; st == CG_OK && i < l->files.n; i++) {
            st = strlist_add(&it->paths, dir, "/", l->names[i]);
            if (st == CG_OK && it->paths.n > cap) {
                cap = cap ? cap * 2 : 1024;
                int *lab = realloc(it->label, (size_t)cap * sizeof *lab);
                if (!lab) st = cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
                else it->label = lab;
            }
            if (st == CG_OK) it->label[it->paths.n - 1] = c;
        }
        if (st == CG_OK && it->paths.n > FOLDER_MAX_FILES)
            st = cg_fail(CG_ERR_ARG, "folder: %s holds more than %lld images", root,
                         (long long)FOLDER_MAX_FILES);
    }
    ds->n_classes = (int)classes.n;
    for (int c = 0; per && c < nc; c++) {
        free(per[c].names);
        strlist_free(&per[c].files);
    }
    free(per);
    free(cls);
    strlist_free(&classes);
    if (st != CG_OK) return st;
    /* Paths in the order added (class by class, names sorted). */
    it->n = it->paths.n;
    it->path = malloc((size_t)it->n * sizeof *it->path);
    if (!it->path) return cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
    for (int64_t i = 0; i < it->n; i++) it->path[i] = it->paths.text + it->paths.off[i];
    return CG_OK;
}

/* Reads and decodes image i of the list. */
static cg_status read_png(const folder_items *it, int64_t i, cg_bytes *file, cg_image *img) {
    int c = it->label[i];
    const char *path = it->path[i];
    if (cg_read_file_at("png", it->dirfd[c], path + it->base[c], path, FOLDER_MAX_FILE, file) !=
        CG_OK)
        return cg_last_status();
    return cg_png_decode(file->data, file->len, path, img);
}

/* Decodes images 1..n-1 into ds (image 0 is done and fixed the size). */
static cg_status decode_all(cg_dataset *ds, const folder_items *it) {
    const int64_t n = it->n, chw = cg_dataset_image_numel(ds);
    int64_t first_bad = n; /* the lowest failing index met so far */
    cg_status bad_status = CG_OK;
    char bad_msg[512] = "";

#pragma omp parallel
    {
        cg_bytes file = {0};
#pragma omp for schedule(dynamic, 64)
        for (int64_t i = 1; i < n; i++) {
            int64_t stop;
#pragma omp atomic read
            stop = first_bad;
            /* Files after a known failure cannot change the report. */
            if (i > stop) continue;
            /* Decoded straight into the dataset's bytes, then divided (if it keeps x). */
            cg_image img = {ds->pixels + i * chw, ds->width, ds->height, ds->channels};
            if (read_png(it, i, &file, &img) != CG_OK) {
#pragma omp critical(cg_folder_error)
                if (i < first_bad) {
#pragma omp atomic write
                    first_bad = i;
                    bad_status = cg_last_status();
                    snprintf(bad_msg, sizeof bad_msg, "%s", cg_last_error());
                }
                continue;
            }
            cg_dataset_set_item(ds, i, it->label[i]);
        }
        cg_bytes_free(&file);
    }
    if (first_bad == n) return CG_OK;
    if (bad_status == CG_ERR_SHAPE)
        return cg_fail(bad_status, "%s (the size of the first image, %s)", bad_msg, it->path[0]);
    return cg_fail(bad_status, "%s", bad_msg);
}

cg_status cg_folder_list(cg_dataset *ds, const char *dir, cg_folder_items **items) {
    *items = NULL;
    if (!ds || !dir) return cg_fail(CG_ERR_ARG, "folder: need a dataset and a folder");
    memset(ds, 0, sizeof *ds);
    folder_items *it = calloc(1, sizeof *it);
    if (!it) return cg_fail(CG_ERR_NOMEM, "folder: out of memory listing files");
    it->root_len = strlen(dir) + 1;
    cg_status st = list_images(ds, dir, it);
    if (st != CG_OK) {
        cg_folder_items_free(it);
        memset(ds, 0, sizeof *ds);
        return st;
    }
    *items = it;
    return CG_OK;
}

int64_t cg_folder_count(const cg_folder_items *it) { return it->n; }

int cg_folder_label(const cg_folder_items *it, int64_t i) { return it->label[i]; }

const char *cg_folder_rel_path(const cg_folder_items *it, int64_t i) {
    return it->path[i] + it->root_len;
}

/*
 * Every file's size and mtime, the cache's key (image_cache.c). A stat is
 * a path lookup in the kernel, microseconds, and MNIST_SAMPLE's train
 * folder has 12,396 files, so this is tens of milliseconds on one core
 * (bench/README.md, "Figures behind source comments"): the largest part
 * of a cached load. The lookups are independent and the dentry cache is read under RCU,
 * so two threads take half the time. A failure is reported for the first
 * failing file in list order, from the calling thread (messages are
 * per thread), so it does not depend on the thread count.
 */
cg_status cg_folder_stat_all(const cg_folder_items *it, int64_t *size, int64_t *mtime_ns) {
    const int64_t n = it->n;
    int64_t first_bad = n;
    int bad_errno = 0;
#pragma omp parallel for schedule(static) if (n >= 1024)
    for (int64_t i = 0; i < n; i++) {
        const int c = it->label[i];
        struct stat s;
        if (fstatat(it->dirfd[c], it->path[i] + it->base[c], &s, 0) != 0) {
            const int e = errno;
#pragma omp critical(cg_folder_stat_error)
            if (i < first_bad) {
                first_bad = i;
                bad_errno = e;
            }
            continue;
        }
        size[i] = (int64_t)s.st_size;
        mtime_ns[i] = (int64_t)s.st_mtim.tv_sec * 1000000000 + s.st_mtim.tv_nsec;
    }
    if (first_bad < n)
        return cg_fail(CG_ERR_IO, "folder: cannot stat %s: %s", it->path[first_bad],
                       strerror(bad_errno));
    return CG_OK;
}

void cg_folder_items_free(cg_folder_items *it) {
    if (!it) return;
    items_free(it);
    free(it);
}

/* What a PNG's header says: its size and whether it has colour. */
typedef struct png_header {
    uint32_t w, h; /* 0x0 when the header is not there to read */
    bool colour;
} png_header;

/* Image i's header: the signature, then IHDR's width and height
 * (big-endian), bit depth and colour type. A palette's colours come after
 * IHDR, so a palette image is read whole and its header read by libpng.
 * A header not there to read gives 0x0 and gray: the decoder then says
 * what is wrong with the file. */
static void read_header(const folder_items *it, int64_t i, png_header *out) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const int c = it->label[i];
    const char *name = it->path[i] + it->base[c];
    uint8_t h[26];
    *out = (png_header){0};
    int fd = cg_open_regular_at("png", it->dirfd[c], name, it->path[i], NULL);
    if (fd < 0) return;
    if (pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h && memcmp(h, sig, 8) == 0 &&
        memcmp(h + 12, "IHDR", 4) == 0) {
        out->w = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
        out->h = (uint32_t)h[20] << 24 | (uint32_t)h[21] << 16 | (uint32_t)h[22] << 8 | h[23];
        out->colour = (h[25] & PNG_COLOR_MASK_COLOR) != 0;
    }
    close(fd);
    if (out->colour && h[25] == PNG_COLOR_TYPE_PALETTE) {
        cg_bytes file = {0};
        bool colour = true; /* a file that cannot be read: the decoder's to report */
        if (cg_read_file_at("png", it->dirfd[c], name, it->path[i], FOLDER_MAX_FILE, &file) ==
            CG_OK)
            (void)cg_png_has_colour(file.data, file.len, it->path[i], &colour);
        out->colour = colour;
        cg_bytes_free(&file);
    }
}

/*
 * Every image's size, from its header, against the split's (the size most
 * images have), before anything is allocated for the split: the buffer is
 * n images of that size, so one 8000x8000 image among 28x28 ones must not
 * size it (15 GB), and the error names the odd file, not a correct one.
 * A header is 26 bytes, so this costs an open per file: a few
 * milliseconds for 12,000 files, on all threads. *colour: whether any
 * image has colour.
 */
static cg_status check_headers(const folder_items *it, bool *colour) {
    const int64_t n = it->n;
    png_header *hd = malloc((size_t)n * sizeof *hd);
    if (!hd) return cg_fail(CG_ERR_NOMEM, "folder: out of memory reading image sizes");
#pragma omp parallel for schedule(dynamic, 64) if (n >= 256)
    for (int64_t i = 0; i < n; i++) read_header(it, i, hd + i);
    cg_clear_error(); /* unreadable headers are the decoder's to report */
    *colour = false;
    for (int64_t i = 0; i < n; i++) *colour |= hd[i].colour;
    /* The majority's size (Boyer-Moore vote), then counted: with no
     * majority, the first image's size stands. */
    int64_t cand = 0, votes = 0, same = 0;
    for (int64_t i = 0; i < n; i++) {
        if (votes == 0) cand = i;
        votes += hd[i].w == hd[cand].w && hd[i].h == hd[cand].h ? 1 : -1;
    }
    for (int64_t i = 0; i < n; i++) same += hd[i].w == hd[cand].w && hd[i].h == hd[cand].h;
    if (2 * same <= n) cand = 0;
    const uint32_t w = hd[cand].w, h = hd[cand].h;
    cg_status st = CG_OK;
    for (int64_t i = 0; i < n && st == CG_OK; i++) {
        const png_header *s = hd + i;
        if ((s->w || s->h) && w && h && (s->w != w || s->h != h))
            st = cg_fail(CG_ERR_SHAPE, "folder: %s is %ux%u; %s images are %ux%u", it->path[i],
                         s->w, s->h, 2 * same > n && n - same == 1 ? "the other" : "most", w, h);
    }
    free(hd);
    return st;
}

cg_status cg_folder_decode(cg_dataset *ds, const cg_folder_items *it, int channels) {
    if (channels != 0 && channels != 1 && channels != 3)
        return cg_fail(CG_ERR_ARG, "folder: cannot load images of %d channels (1 gray, 3 RGB, "
                                   "0 as the images are)",
                       channels);
    cg_bytes file = {0};
    bool colour = false;
    cg_status st = check_headers(it, &colour);
    cg_image first = {.channels = channels ? channels : colour ? 3 : 1};
    if (st == CG_OK) st = read_png(it, 0, &file, &first);
    cg_bytes_free(&file);
    /* Keeps the class names cg_folder_list set. */
    if (st == CG_OK)
        st = cg_dataset_alloc(ds, "folder", it->n, first.channels, first.height, first.width);
    if (st == CG_OK) {
        memcpy(ds->pixels, first.pixels, (size_t)cg_dataset_image_numel(ds));
        cg_dataset_set_item(ds, 0, it->label[0]);
        st = decode_all(ds, it);
    }
    free(first.pixels);
    if (st != CG_OK) cg_dataset_free(ds);
    return st;
}

cg_status cg_dataset_load_folder(cg_dataset *ds, const char *dir) {
    return cg_dataset_load_folder_as(ds, dir, NULL, 0);
}
