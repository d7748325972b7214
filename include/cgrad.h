/*
 * cgrad.h - the public API of cgrad, a small deep-learning engine in C.
 *
 * cgrad retells fastbook chapter 4 ("training a digit classifier") in C and
 * goes on where fastai goes next. This header includes the four parts:
 *
 *   cgrad/core.h  errors, random numbers, tensors, autograd, every op, GEMM
 *   cgrad/data.h  datasets (PNG folders, IDX, CSV), the DataLoader, fetching
 *   cgrad/nn.h    losses, layers and models, optimizers, schedules, fit
 *   cgrad/plot.h  pictures (PNG, SVG): line plots, heatmaps, grids of images
 *
 * Conventions, memory and errors are described at the top of cgrad/core.h.
 */
#ifndef CGRAD_H
#define CGRAD_H

#include "cgrad/core.h"
#include "cgrad/data.h"
#include "cgrad/nn.h"
#include "cgrad/plot.h"

#endif /* CGRAD_H */
