/*
 * progress.h - what `cgrad train` shows while it learns, like fastai's
 * fit(): one table row per epoch,
 *
 *     epoch  train_loss  valid_loss  accuracy  time
 *     0      0.4971      0.4933      0.5059    00:00
 *     1      0.1554      0.0655      0.9470    00:00
 *
 * (--json: one JSON object per epoch instead), and, only when stderr is a
 * terminal, a progress bar over the epoch's batches on stderr, erased before
 * each row. Piped output gets no bar and no escape codes. --quiet shows
 * neither rows nor bar.
 */
#ifndef CGRAD_CLI_PROGRESS_H
#define CGRAD_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cg_progress {
    FILE *out;        /* rows: stdout                            */
    bool json, quiet;
    bool bar;         /* stderr is a terminal and not quiet       */
    bool header_done;
    int epochs;
    double last_draw; /* when the bar was last drawn (seconds)    */
} cg_progress;

/* One epoch's figures; NaN train_loss prints as "-" (or null). */
typedef struct cg_epoch_stats {
    int epoch;
    double train_loss, valid_loss, accuracy, seconds;
} cg_epoch_stats;

void cg_progress_init(cg_progress *p, int epochs, bool json, bool quiet);
/* After batch `done` of `total` in epoch `epoch` (1-based). Redraws at most
 * ~20 times a second. */
void cg_progress_batch(cg_progress *p, int epoch, int64_t done, int64_t total);
/* Prints the epoch's row (the header before the first). */
void cg_progress_row(cg_progress *p, const cg_epoch_stats *s);
/* Erases the bar, if drawn. */
void cg_progress_clear(cg_progress *p);

#endif
