/*
 * nn_internal.h - what src/nn's files share: a model's parameters allocated
 * with the right shapes, before anything (an init, a file) fills them.
 */
#ifndef CGRAD_NN_INTERNAL_H
#define CGRAD_NN_INTERNAL_H

#include "cgrad_internal.h"

/* Largest layer width we accept: keeps every weight matrix inside
 * CG_MAX_NUMEL and catches nonsense like a negative width cast to int64. */
#define CG_MODEL_MAX_WIDTH ((int64_t)1 << 24)

/* Checks kind and sizes (cg_fail naming the problem otherwise) and returns a
 * model whose parameters have their shapes, requires_grad on and contents
 * undefined; class names empty. */
cg_model *cg_model_alloc(cg_model_kind kind, int64_t n_inputs, int64_t n_hidden, int64_t n_outputs);

#endif
