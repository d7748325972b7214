/*
 * cli_data.c - datasets, targets and scoring for the CLI's commands.
 */
#include "cli/cli_data.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

cg_status cg_cli_load_split(cg_dataset *ds, const char *root, const char *split) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s", root, split) >= (int)sizeof dir)
        return cg_fail(CG_ERR_ARG, "data: path %s/%s is too long", root, split);
    return cg_dataset_load_folder(ds, dir);
}

cg_status cg_cli_check_classes(const cg_dataset *a, const char *a_name, const cg_dataset *b,
                               const char *b_name, bool binary) {
    if (binary && a->n_classes != 2)
        return cg_fail(CG_ERR_FORMAT,
                       "data: %s has %d classes; these models tell exactly 2 apart (like 3 and 7)",
                       a_name, a->n_classes);
    bool same = a->n_classes == b->n_classes;
    for (int c = 0; same && c < a->n_classes; c++)
        same = strcmp(a->class_names[c], b->class_names[c]) == 0;
    if (!same)
        return cg_fail(CG_ERR_FORMAT, "data: %s and %s do not have the same class folders", a_name,
                       b_name);
    return CG_OK;
}

cg_tensor *cg_cli_binary_targets(const cg_dataset *ds) {
    /* (y == 0) as 0/1 floats, then a column: [N] -> [N, 1]. */
    cg_scope_begin();
    return cg_scope_end_keep(cg_tensor_unsqueeze(cg_tensor_eq(ds->y, cg_tensor_scalar(0.0f)), 1));
}

cg_tensor *cg_cli_loss(cg_loss_kind kind, cg_tensor *preds, cg_tensor *targets) {
    return kind == CG_LOSS_BCE ? cg_bce_with_logits(preds, targets) : cg_mnist_loss(preds, targets);
}

cg_status cg_cli_score(cg_model *m, cg_tensor *x, cg_tensor *targets, cg_loss_kind loss,
                       cg_score *out) {
    memset(out, 0, sizeof *out);
    bool prev = cg_set_grad_enabled(false);
    cg_scope_begin();
    cg_tensor *preds = cg_model_forward(m, x);
    cg_tensor *l = cg_cli_loss(loss, preds, targets);
    /* The book's rule: a "3" (target 1) is predicted when sigmoid(p) > 0.5. */
    cg_tensor *is_first = cg_tensor_gt(cg_tensor_sigmoid(preds), cg_tensor_scalar(0.5f));
    cg_status st = CG_OK;
    if (!l || !is_first) {
        st = cg_last_status();
    } else {
        out->loss = cg_tensor_item(l);
        out->accuracy = cg_binary_accuracy(preds, targets);
        out->n = preds->shape[0];
        for (int64_t i = 0; i < out->n; i++) {
            int cls = targets->data[i] == 1.0f ? 0 : 1;
            bool right = (is_first->data[i] != 0.0f) == (cls == 0);
            out->class_n[cls]++;
            out->class_correct[cls] += right;
            out->correct += right;
        }
    }
    cg_scope_end();
    cg_set_grad_enabled(prev);
    return st;
}

cg_status cg_cli_check_model(const cg_model *m, const char *model_path, const cg_dataset *ds) {
    if (m->n_outputs != 1 || m->n_classes != 2)
        return cg_fail(CG_ERR_FORMAT,
                       "%s: a model with %lld outputs and %d classes; this command needs a binary "
                       "model (1 output, 2 classes)",
                       model_path, (long long)m->n_outputs, m->n_classes);
    if (!ds) return CG_OK;
    if (ds->height * ds->width != m->n_inputs)
        return cg_fail(CG_ERR_SHAPE, "%s takes %lld pixels, the data's images have %lldx%lld",
                       model_path, (long long)m->n_inputs, (long long)ds->height,
                       (long long)ds->width);
    for (int c = 0; c < 2; c++)
        if (strcmp(m->class_names[c], ds->class_names[c]) != 0)
            return cg_fail(CG_ERR_FORMAT,
                           "%s was trained on classes %s/%s, the data has %s/%s", model_path,
                           m->class_names[0], m->class_names[1], ds->class_names[0],
                           ds->class_names[1]);
    return CG_OK;
}
