/*
 * pyfmt.h - printing tensors the way PyTorch's repr does, so that the
 * walkthrough's output reads like the article's notebook cells:
 * "torch.Size([12396, 784])", "tensor([1])", "tensor(0.4333)",
 * "tensor([[20.2336], ..., [28.6816]], grad_fn=<AddBackward0>)".
 */
#ifndef CGRAD_CLI_PYFMT_H
#define CGRAD_CLI_PYFMT_H

#include <stdio.h>

#include "cgrad.h"

/* How to show the floats: PyTorch's float, integer or bool dtypes
 * (cgrad stores labels and comparisons as 0/1 floats). */
typedef enum cg_py_kind { CG_PY_FLOAT, CG_PY_INT, CG_PY_BOOL } cg_py_kind;

/* "torch.Size([12396, 784])" */
void cg_py_print_size(FILE *f, const cg_tensor *t);

/*
 * PyTorch's repr of t: precision 4, fixed or scientific notation by the
 * same rule as torch, right-aligned to a common width; tensors over 1000
 * elements summarised to 3 items at each end of every dim; 1-D lines
 * wrapped at 80 columns. Adds ", grad_fn=<AddBackward0>" for an op result
 * in a graph and ", requires_grad=True" for a leaf that requires grad.
 */
void cg_py_print_tensor(FILE *f, const cg_tensor *t, cg_py_kind kind);

/* The same for plain values, with an optional suffix ("requires_grad=True"). */
void cg_py_print_values(FILE *f, const float *data, const int64_t *shape, int ndim,
                        cg_py_kind kind, const char *suffix);

#endif
