/*
 * cli_data.h - what train, eval, baseline and predict share: reading a
 * dataset root's training and validation splits, the book's 0/1 targets,
 * and scoring a model on a whole split.
 */
#ifndef CGRAD_CLI_DATA_H
#define CGRAD_CLI_DATA_H

#include "cgrad.h"
#include "cli/options.h"

/*
 * A dataset root is read in the first of these layouts it holds whole
 * (both splits; only the validation split where that is all a command
 * reads, as eval):
 *   1. fastai's: ROOT/train/<class>/<image>.png and ROOT/valid/<class>/<image>.png
 *      (MNIST_SAMPLE, mnist_tiny);
 *   2. full MNIST as PNGs: ROOT/training/<class>/<image>.png and
 *      ROOT/testing/<class>/<image>.png (fastai's mnist_png.tgz, what
 *      `cgrad fetch mnist` unpacks);
 *   3. MNIST's IDX files in ROOT: train-images-idx3-ubyte[.gz] +
 *      train-labels-idx1-ubyte[.gz] are the training split,
 *      t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz] the
 *      validation split (the uncompressed file when both are there).
 * A folder layout's classes are its sub-folder names, sorted, and a class's
 * images come in file-name order (cg_dataset_load_folder); the IDX files'
 * classes are the labels "0".."9", the images in file order. So full MNIST
 * with --classes 3,7 holds the same images as MNIST_SAMPLE (6131 + 6265
 * training, 1010 + 1028 validation), in another order.
 */
typedef enum cg_data_layout {
    CG_LAYOUT_FASTAI = 0,    /* train/, valid/       */
    CG_LAYOUT_MNIST_PNG = 1, /* training/, testing/  */
    CG_LAYOUT_IDX = 2        /* train-*, t10k-*      */
} cg_data_layout;

typedef enum cg_data_split { CG_SPLIT_TRAIN = 0, CG_SPLIT_VALID = 1 } cg_data_split;

/* The layout ROOT holds, with the training split too when need_train.
 * Errors say what is missing: "data: ROOT has train/ but no valid/", or
 * "data: ROOT holds neither train/valid, training/testing nor MNIST IDX
 * files (...)". */
cg_status cg_cli_detect_layout(const char *root, bool need_train, cg_data_layout *layout);

/* Loads one split of ROOT, held in that layout; errors name the folder or
 * file. channels 0: as the images are (cg_dataset_load_folder); 1 or 3:
 * a folder's images read so (cg_dataset_load_folder_as; IDX files are
 * gray whatever is asked). */
cg_status cg_cli_load_split(cg_dataset *ds, const char *root, cg_data_layout layout,
                            cg_data_split split, int channels);

/* The folder of decoded-image caches (cg_dataset_load_folder_cached):
 * cg_cache_dir()/images, made if missing; NULL (no cache) when the
 * environment has CGRAD_NO_CACHE=1 or the folder cannot be made. */
const char *cg_cli_image_cache(char *buf, size_t size);

/*
 * Everything train, eval and baseline do to get their data from --data,
 * --dataset and --classes (options.h): finds the root
 * (cg_cli_dataset_root), detects its layout, loads the training split into
 * *train (unless train is NULL) and the validation split into *valid,
 * keeps only the --classes, in their order, on both
 * (cg_dataset_select_classes), and checks both splits have the same
 * classes. With n_classes > 0 (eval: the model's count) the data must have
 * that many: a dataset with another count and no --classes is a usage
 * error whose message suggests `--classes HINT` (hint NULL: 3,7 where the
 * data has those, else its first two classes).
 * Returns CG_OPTS_CONTINUE, or the exit code after printing why:
 * CG_EXIT_USAGE for what the command line must change (--data with
 * --dataset, a malformed --classes, a class the data lacks, too many
 * classes), CG_EXIT_FAIL for data that cannot be found or read. Either way
 * the caller frees both datasets (they start zeroed).
 */
int cg_cli_load_data(const char *cmd, const cg_data_opts *o, int n_classes, const char *hint,
                     cg_dataset *train, cg_dataset *valid);
/* The same with the splits' channels chosen (see cg_cli_load_split). With
 * channels 0 each split's images decide, and one RGB split makes the other
 * RGB too (read again with 3 channels), so both always agree. */
int cg_cli_load_data_as(const char *cmd, const cg_data_opts *o, int n_classes, const char *hint,
                        int channels, cg_dataset *train, cg_dataset *valid);

/* cg_cli_load_data's checks that need no data (--data with --dataset, the
 * --classes list), for a command with work to do before loading it. */
int cg_cli_check_data_opts(const char *cmd, const cg_data_opts *o, int n_classes);

/* Both splits have the same classes, in the same order. */
cg_status cg_cli_check_classes(const cg_dataset *a, const char *a_name, const cg_dataset *b,
                               const char *b_name);

/* Room for every class name joined with a separator of up to 2 bytes. */
#define CG_CLI_NAMES_MAX (CG_MAX_CLASSES * (CG_CLASS_NAME_MAX + 2))

/* names[0..n) joined by sep ("3,7", "0, 1, 2"), for messages and hints. */
const char *cg_cli_join_names(const char (*names)[CG_CLASS_NAME_MAX], int n, const char *sep,
                              char *buf, size_t size);

/* The model's classes are the data's, in the same order (ds NULL: only that
 * the model names its classes), and its inputs fit the images. */
cg_status cg_cli_check_model(const cg_model *m, const char *model_path, const cg_dataset *ds);

/* The channels of the images a model takes: 1 or 3 for one that starts
 * with an image layer ([C, H, W]), 0 for one that takes flat rows (its
 * n_inputs may be gray or RGB pixels). */
int cg_cli_model_channels(const cg_model *m);
/* What a model takes and what a dataset's images are, for messages:
 * "RGB images of 28x28" / "flat rows"; "gray 28x28". */
const char *cg_cli_model_input(const cg_model *m, char *buf, size_t size);
const char *cg_cli_image_shape(const cg_dataset *ds, char *buf, size_t size);

/* The loss a saved model's head implies: the book's mnist_loss for one
 * output (what `cgrad train` reports by default), cross-entropy otherwise. */
cg_loss_kind cg_cli_model_loss(const cg_model *m);

/* What eval and interpret share: the model saved at path (*m, freed by the
 * caller) and the validation split its classes pick from --data/--dataset/
 * --classes (*valid), checked against each other. CG_OPTS_CONTINUE, or the
 * exit code after printing why. */
int cg_cli_load_model_valid(const char *cmd, const char *path, const cg_data_opts *src,
                            cg_model **m, cg_dataset *valid);

#endif
