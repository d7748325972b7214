/*
 * cli_data.h - what train, eval, baseline and predict share: reading the
 * dataset root's train/ and valid/ folders, the book's 0/1 targets, and
 * scoring a model on a whole split.
 */
#ifndef CGRAD_CLI_DATA_H
#define CGRAD_CLI_DATA_H

#include "cgrad.h"

/* Loads ROOT/SPLIT (a folder of class folders); errors name the folder. */
cg_status cg_cli_load_split(cg_dataset *ds, const char *root, const char *split);

/* Both splits have the same classes, in the same order; for train and eval
 * (binary models) exactly two. */
cg_status cg_cli_check_classes(const cg_dataset *a, const char *a_name, const cg_dataset *b,
                               const char *b_name, bool binary);

/*
 * The article's labels for a binary problem, [N, 1]: 1 where the item is of
 * the first class ("3") and 0 for the second ("7"), as in
 * train_y = tensor([1]*len(threes) + [0]*len(sevens)).unsqueeze(1).
 * Owned by the caller (whatever scope is open).
 */
cg_tensor *cg_cli_binary_targets(const cg_dataset *ds);

typedef enum cg_loss_kind { CG_LOSS_MNIST = 0, CG_LOSS_BCE = 1 } cg_loss_kind;
/* The loss chosen by --loss, on logits. */
cg_tensor *cg_cli_loss(cg_loss_kind kind, cg_tensor *preds, cg_tensor *targets);

/* A model's score on a whole split: everything counted equally. */
typedef struct cg_score {
    double loss;      /* the chosen loss over all items                */
    double accuracy;  /* cg_binary_accuracy over all items            */
    int64_t n, correct;
    int64_t class_n[2], class_correct[2]; /* per class: first, second  */
} cg_score;

/* Scores a binary model (n_outputs 1) on x with targets from
 * cg_cli_binary_targets, in one no-grad pass. */
cg_status cg_cli_score(cg_model *m, cg_tensor *x, cg_tensor *targets, cg_loss_kind loss,
                       cg_score *out);

/* The model's class names agree with the dataset's (binary, 1 output). */
cg_status cg_cli_check_model(const cg_model *m, const char *model_path, const cg_dataset *ds);

#endif
