/*
 * cli_data.c - datasets, targets and scoring for the CLI's commands.
 */
#include "cli/cli_data.h"
#include "util/file.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_SIZE 4096

/* What each layout's splits are made of: a folder of class folders, or an
 * IDX images file and its labels file (found with or without ".gz"). */
static const struct layout_parts {
    bool folders;
    const char *part[2][2]; /* [split][0]: folder or images, [1]: labels or NULL */
} LAYOUTS[] = {
    [CG_LAYOUT_FASTAI] = {true, {{"train", NULL}, {"valid", NULL}}},
    [CG_LAYOUT_MNIST_PNG] = {true, {{"training", NULL}, {"testing", NULL}}},
    [CG_LAYOUT_IDX] = {false,
                       {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                        {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}}},
};
#define N_LAYOUTS ((int)(sizeof LAYOUTS / sizeof LAYOUTS[0]))

/* ROOT/NAME as path if it is there: a folder, or a file NAME or NAME.gz
 * (the uncompressed one first: it needs no inflating). A file that is not
 * a regular one (a FIFO) counts as there, so the loader names it as what
 * it is instead of the layout calling it missing. */
static bool find_part(const char *root, const char *name, bool folder, char *path) {
    struct stat st;
    const char *ext[2] = {"", ".gz"};
    for (int k = 0; k < (folder ? 1 : 2); k++) {
        int n = snprintf(path, PATH_SIZE, "%s/%s%s", root, name, ext[k]);
        if (n > 0 && n < PATH_SIZE && stat(path, &st) == 0 &&
            (folder ? S_ISDIR(st.st_mode) : !S_ISDIR(st.st_mode)))
            return true;
    }
    return false;
}

cg_status cg_cli_detect_layout(const char *root, bool need_train, cg_data_layout *layout) {
    /* The first layout found in part: what it has and lacks, for the error. */
    char have[PATH_SIZE + 1] = "", lacks[128] = "", path[PATH_SIZE];
    for (int li = 0; li < N_LAYOUTS; li++) {
        const struct layout_parts *l = &LAYOUTS[li];
        char l_have[PATH_SIZE + 1] = ""; /* a name and its "/" */
        const char *l_lack = NULL;
        for (int s = 0; s < 2; s++)
            for (int k = 0; k < 2 && l->part[s][k]; k++) {
                if (find_part(root, l->part[s][k], l->folders, path)) {
                    if (!l_have[0])
                        snprintf(l_have, sizeof l_have, "%s%s", strrchr(path, '/') + 1,
                                 l->folders ? "/" : "");
                } else if (!l_lack && (s == CG_SPLIT_VALID || need_train)) {
                    l_lack = l->part[s][k];
                }
            }
        if (!l_lack) {
            *layout = (cg_data_layout)li;
            return CG_OK;
        }
        if (l_have[0] && !lacks[0]) {
            snprintf(have, sizeof have, "%s", l_have);
            /* "valid/", "t10k-labels-idx1-ubyte[.gz]" */
            snprintf(lacks, sizeof lacks, "%s%s", l_lack, l->folders ? "/" : "[.gz]");
        }
    }
    if (lacks[0]) return cg_fail(CG_ERR_FORMAT, "data: %s has %s but no %s", root, have, lacks);
    return cg_fail(CG_ERR_FORMAT,
                   "data: %s holds neither train/valid, training/testing nor MNIST IDX files "
                   "(expected <class>/*.png folders in train/ and valid/ or in training/ and "
                   "testing/, or train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                   "t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz])",
                   root);
}

/* The folder or labels file that holds a split's classes, for messages. */
static void split_source(const char *root, cg_data_layout layout, cg_data_split split,
                         char *path) {
    const struct layout_parts *l = &LAYOUTS[layout];
    const char *name = l->part[split][l->folders ? 0 : 1];
    if (!find_part(root, name, l->folders, path) &&
        snprintf(path, PATH_SIZE, "%s/%s", root, name) >= PATH_SIZE)
        snprintf(path, PATH_SIZE, "%s", name); /* too long to show whole */
}

cg_status cg_cli_load_split(cg_dataset *ds, const char *root, cg_data_layout layout,
                            cg_data_split split, int channels) {
    if ((int)layout < 0 || (int)layout >= N_LAYOUTS ||
        (split != CG_SPLIT_TRAIN && split != CG_SPLIT_VALID))
        return cg_fail(CG_ERR_ARG, "data: no layout %d or split %d", (int)layout, (int)split);
    const struct layout_parts *l = &LAYOUTS[layout];
    char images[PATH_SIZE], labels[PATH_SIZE];
    /* A part that is not there keeps its plain name: the loader's error
     * then names the path it could not open. */
    for (int k = 0; k < (l->folders ? 1 : 2); k++) {
        char *p = k ? labels : images;
        if (!find_part(root, l->part[split][k], l->folders, p) &&
            snprintf(p, PATH_SIZE, "%s/%s", root, l->part[split][k]) >= PATH_SIZE)
            return cg_fail(CG_ERR_ARG, "data: path %s/%s is too long", root, l->part[split][k]);
    }
    if (!l->folders) return cg_dataset_load_idx(ds, images, labels);
    char cache[PATH_SIZE];
    const char *cache_dir = cg_cli_image_cache(cache, sizeof cache);
    /* As the images are first: a folder's usual cache file, and no second
     * look at its headers when that is what was wanted. */
    cg_status st = cg_dataset_load_folder_cached(ds, images, cache_dir);
    if (st != CG_OK || channels == 0 || ds->channels == channels) return st;
    cg_dataset_free(ds);
    return cg_dataset_load_folder_as(ds, images, cache_dir, channels);
}

const char *cg_cli_image_cache(char *buf, size_t size) {
    const char *off = getenv("CGRAD_NO_CACHE");
    if (off && strcmp(off, "1") == 0) return NULL;
    char base[PATH_SIZE];
    /* No cache is only slower, so a cache that cannot be had is no error. */
    bool ok = cg_cache_dir(base, sizeof base) &&
              (size_t)snprintf(buf, size, "%s/images", base) < size &&
              cg_make_dirs("cache", buf) == CG_OK;
    if (!ok) cg_clear_error();
    return ok ? buf : NULL;
}

/* --classes, split at the commas. */
typedef struct class_list {
    int n;
    char names[CG_MAX_CLASSES][CG_CLASS_NAME_MAX];
} class_list;

static int parse_classes(const char *cmd, const char *text, int n_classes, class_list *out) {
    out->n = 0;
    for (const char *p = text;; p++) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            return cg_usage_error(cmd, "--classes '%s' has an empty class name (write e.g. 3,7)",
                                  text);
        if (len >= CG_CLASS_NAME_MAX)
            return cg_usage_error(cmd, "--classes: class name '%.*s' is longer than %d bytes",
                                  (int)len, p, CG_CLASS_NAME_MAX - 1);
        if (out->n == CG_MAX_CLASSES)
            return cg_usage_error(cmd, "--classes lists more than %d classes", CG_MAX_CLASSES);
        snprintf(out->names[out->n], CG_CLASS_NAME_MAX, "%.*s", (int)len, p);
        for (int k = 0; k < out->n; k++)
            if (strcmp(out->names[k], out->names[out->n]) == 0)
                return cg_usage_error(cmd, "--classes lists class '%s' twice", out->names[k]);
        out->n++;
        p += len;
        if (!*p) break;
    }
    if (n_classes > 0 && out->n != n_classes)
        return cg_usage_error(cmd, "--classes lists %d class%s; the model tells %d apart",
                              out->n, out->n == 1 ? "" : "es", n_classes);
    if (out->n < 2)
        return cg_usage_error(cmd, "--classes lists 1 class; give at least 2 to tell apart");
    return CG_OPTS_CONTINUE;
}

static int find_class(const cg_dataset *ds, const char *name) {
    for (int c = 0; c < ds->n_classes; c++)
        if (strcmp(ds->class_names[c], name) == 0) return c;
    return -1;
}

/* "0, 1, 2" */
static const char *class_names_text(const cg_dataset *ds, char *buf, size_t size) {
    return cg_cli_join_names(ds->class_names, ds->n_classes, ", ", buf, size);
}

const char *cg_cli_join_names(const char (*names)[CG_CLASS_NAME_MAX], int n, const char *sep,
                              char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < n && used < size; c++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", c ? sep : "", names[c]);
    return buf;
}

/* --classes on one loaded split, or the check of the class count without it. */
static int narrow_split(const char *cmd, const char *source, cg_dataset *ds,
                        const class_list *want, int n_classes, const char *hint) {
    char names[CG_CLI_NAMES_MAX];
    if (want) {
        const char *ptr[CG_MAX_CLASSES];
        for (int k = 0; k < want->n; k++) {
            if (find_class(ds, want->names[k]) < 0)
                return cg_usage_error(cmd, "--classes: %s has no class '%s' (its classes: %s)",
                                      source, want->names[k],
                                      class_names_text(ds, names, sizeof names));
            ptr[k] = want->names[k];
        }
        if (cg_dataset_select_classes(ds, ptr, want->n) != CG_OK) return cg_cmd_fail(cmd);
        return CG_OPTS_CONTINUE;
    }
    if (n_classes <= 0 || ds->n_classes == n_classes) return CG_OPTS_CONTINUE;
    char auto_hint[2 * CG_CLASS_NAME_MAX + 2] = "A,B";
    if (!hint) {
        if (find_class(ds, "3") >= 0 && find_class(ds, "7") >= 0)
            snprintf(auto_hint, sizeof auto_hint, "3,7");
        else if (ds->n_classes > 2)
            snprintf(auto_hint, sizeof auto_hint, "%s,%s", ds->class_names[0], ds->class_names[1]);
        hint = auto_hint;
    }
    return cg_usage_error(cmd,
                          "%s has %d classes (%s); the model tells %d apart: choose them with "
                          "--classes %s",
                          source, ds->n_classes, class_names_text(ds, names, sizeof names),
                          n_classes, hint);
}

/* The checks that need no data; fills *want from --classes. */
static int check_data_opts(const char *cmd, const cg_data_opts *o, int n_classes,
                           class_list *want) {
    if (o->data && o->dataset)
        return cg_usage_error(cmd, "--data PATH and --dataset NAME both say where the data is; "
                                   "give one");
    return o->classes ? parse_classes(cmd, o->classes, n_classes, want) : CG_OPTS_CONTINUE;
}

int cg_cli_check_data_opts(const char *cmd, const cg_data_opts *o, int n_classes) {
    class_list want;
    return check_data_opts(cmd, o, n_classes, &want);
}

int cg_cli_load_data(const char *cmd, const cg_data_opts *o, int n_classes, const char *hint,
                     cg_dataset *train, cg_dataset *valid) {
    return cg_cli_load_data_as(cmd, o, n_classes, hint, 0, train, valid);
}

int cg_cli_load_data_as(const char *cmd, const cg_data_opts *o, int n_classes, const char *hint,
                        int channels, cg_dataset *train, cg_dataset *valid) {
    class_list want;
    int rc = check_data_opts(cmd, o, n_classes, &want);
    if (rc != CG_OPTS_CONTINUE) return rc;
    char root[PATH_SIZE];
    cg_data_layout layout;
    if (cg_cli_dataset_root(o, root, sizeof root) != CG_OK ||
        cg_cli_detect_layout(root, train != NULL, &layout) != CG_OK)
        return cg_cmd_fail(cmd);
    cg_dataset *sets[2] = {train, valid};
    char source[2][PATH_SIZE];
    for (int s = 0; s < 2; s++) {
        if (!sets[s]) continue;
        split_source(root, layout, (cg_data_split)s, source[s]);
        if (cg_cli_load_split(sets[s], root, layout, (cg_data_split)s, channels) != CG_OK)
            return cg_cmd_fail(cmd);
        rc = narrow_split(cmd, source[s], sets[s], o->classes ? &want : NULL, n_classes, hint);
        if (rc != CG_OPTS_CONTINUE) return rc;
    }
    /* Colour in either split makes both RGB: the gray one is read again
     * with its images as three planes (the images of each split decide
     * alone, so this is the one case where they differ). */
    if (train && valid && train->channels != valid->channels) {
        int s = train->channels == 1 ? 0 : 1;
        cg_dataset_free(sets[s]);
        if (cg_cli_load_split(sets[s], root, layout, (cg_data_split)s, 3) != CG_OK)
            return cg_cmd_fail(cmd);
        rc = narrow_split(cmd, source[s], sets[s], o->classes ? &want : NULL, n_classes, hint);
        if (rc != CG_OPTS_CONTINUE) return rc;
    }
    if (train && valid &&
        cg_cli_check_classes(train, source[0], valid, source[1]) != CG_OK)
        return cg_cmd_fail(cmd);
    return CG_OPTS_CONTINUE;
}

cg_status cg_cli_check_classes(const cg_dataset *a, const char *a_name, const cg_dataset *b,
                               const char *b_name) {
    bool same = a->n_classes == b->n_classes;
    for (int c = 0; same && c < a->n_classes; c++)
        same = strcmp(a->class_names[c], b->class_names[c]) == 0;
    if (!same)
        return cg_fail(CG_ERR_FORMAT, "data: %s and %s do not have the same classes", a_name,
                       b_name);
    if (a->n_classes < 2)
        return cg_fail(CG_ERR_FORMAT, "data: %s has %d class%s; a classifier needs 2 or more",
                       a_name, a->n_classes, a->n_classes == 1 ? "" : "es");
    return CG_OK;
}

cg_status cg_cli_check_model(const cg_model *m, const char *model_path, const cg_dataset *ds) {
    if (m->n_classes < 2 || (m->n_outputs != 1 && m->n_outputs != m->n_classes) ||
        (m->n_outputs == 1 && m->n_classes != 2))
        return cg_fail(CG_ERR_FORMAT,
                       "%s: a model with %lld outputs and %d classes; a classifier has one output "
                       "per class (or one for 2 classes)",
                       model_path, (long long)m->n_outputs, m->n_classes);
    if (!ds) return CG_OK;
    if (cg_dataset_image_numel(ds) != m->n_inputs) {
        char takes[96], have[96];
        return cg_fail(CG_ERR_SHAPE, "%s takes %lld values (%s), the data's images are %s",
                       model_path, (long long)m->n_inputs,
                       cg_cli_model_input(m, takes, sizeof takes),
                       cg_cli_image_shape(ds, have, sizeof have));
    }
    bool same = ds->n_classes == m->n_classes;
    for (int c = 0; same && c < m->n_classes; c++)
        same = strcmp(m->class_names[c], ds->class_names[c]) == 0;
    if (!same) {
        char mine[CG_CLI_NAMES_MAX], theirs[CG_CLI_NAMES_MAX], hint[CG_CLI_NAMES_MAX];
        return cg_fail(CG_ERR_FORMAT,
                       "%s was trained on classes %s, the data has %s (--classes %s picks the "
                       "model's)",
                       model_path, cg_cli_join_names(m->class_names, m->n_classes, "/", mine,
                                                     sizeof mine),
                       cg_cli_join_names(ds->class_names, ds->n_classes, "/", theirs,
                                         sizeof theirs),
                       cg_cli_join_names(m->class_names, m->n_classes, ",", hint, sizeof hint));
    }
    return CG_OK;
}

int cg_cli_model_channels(const cg_model *m) {
    return m->in_ndim == 3 && (m->in_shape[0] == 1 || m->in_shape[0] == 3) ? (int)m->in_shape[0]
                                                                             : 0;
}

const char *cg_cli_model_input(const cg_model *m, char *buf, size_t size) {
    if (m->in_ndim == 3)
        snprintf(buf, size, "%s images of %lldx%lld",
                 m->in_shape[0] == 3   ? "RGB"
                 : m->in_shape[0] == 1 ? "gray"
                                       : "multi-channel",
                 (long long)m->in_shape[2], (long long)m->in_shape[1]);
    else
        snprintf(buf, size, "flat rows");
    return buf;
}

const char *cg_cli_image_shape(const cg_dataset *ds, char *buf, size_t size) {
    snprintf(buf, size, "%s %lldx%lld", ds->channels == 3 ? "RGB" : "gray", (long long)ds->width,
             (long long)ds->height);
    return buf;
}

cg_loss_kind cg_cli_model_loss(const cg_model *m) {
    return m->n_outputs == 1 ? CG_LOSS_MNIST : CG_LOSS_CE;
}

int cg_cli_load_model_valid(const char *cmd, const char *path, const cg_data_opts *src,
                            cg_model **m, cg_dataset *valid) {
    int rc;
    if (!(*m = cg_model_load(path)) || cg_cli_check_model(*m, path, NULL) != CG_OK)
        return cg_cmd_fail(cmd);
    /* A dataset of other classes: suggest the model's. */
    char hint[CG_CLI_NAMES_MAX];
    cg_cli_join_names((*m)->class_names, (*m)->n_classes, ",", hint, sizeof hint);
    if ((rc = cg_cli_check_data_opts(cmd, src, (*m)->n_classes)) != CG_OPTS_CONTINUE) return rc;
    cg_data_keep_floats(false);
    /* Read as the model takes its images: an RGB model's data RGB. */
    if ((rc = cg_cli_load_data_as(cmd, src, (*m)->n_classes, hint, cg_cli_model_channels(*m),
                                  NULL, valid)) != CG_OPTS_CONTINUE)
        return rc;
    if (cg_cli_check_model(*m, path, valid) != CG_OK) return cg_cmd_fail(cmd);
    return CG_OPTS_CONTINUE;
}
