/*
 * progress.c - the per-epoch table and the terminal progress bar of
 * `cgrad train` (see progress.h).
 */
#include "cli/progress.h"

#include <math.h>
#include <unistd.h>

#include "cli/json.h"
#include "cli/options.h"

#define BAR_WIDTH 30

void cg_progress_init(cg_progress *p, int epochs, bool json, bool quiet) {
    *p = (cg_progress){.out = stdout, .json = json, .quiet = quiet, .epochs = epochs};
    p->bar = !quiet && isatty(fileno(stderr));
    p->last_draw = -1.0;
}

void cg_progress_batch(cg_progress *p, int epoch, int64_t done, int64_t total) {
    if (!p->bar || total <= 0) return;
    double now = cg_cli_now();
    if (done < total && now - p->last_draw < 0.05) return;
    p->last_draw = now;
    int filled = (int)(BAR_WIDTH * done / total);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    /* \r back to the line's start, \033[K erases what a longer line left. */
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %lld/%lld", epoch, p->epochs, bar, (long long)done,
            (long long)total);
    fflush(stderr);
}

void cg_progress_clear(cg_progress *p) {
    if (p->bar && p->last_draw >= 0.0) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->last_draw = -1.0;
    }
}

/* fastai's time column: mm:ss, here with hundredths since an epoch of
 * this model takes well under a second. */
static void print_time(FILE *f, double s) {
    int minutes = (int)(s / 60.0);
    fprintf(f, "%02d:%05.2f", minutes, s - 60.0 * minutes);
}

void cg_progress_row(cg_progress *p, const cg_epoch_stats *s) {
    if (p->quiet) return;
    cg_progress_clear(p);
    FILE *f = p->out;
    if (p->json) {
        fprintf(f, "{\"epoch\":%d,\"train_loss\":", s->epoch);
        cg_json_number(f, s->train_loss);
        fputs(",\"valid_loss\":", f);
        cg_json_number(f, s->valid_loss);
        fputs(",\"accuracy\":", f);
        cg_json_number(f, s->accuracy);
        fputs(",\"seconds\":", f);
        cg_json_number(f, s->seconds);
        fputs("}\n", f);
    } else {
        if (!p->header_done) fprintf(f, "%-6s %-11s %-11s %-9s %s\n", "epoch", "train_loss",
                                     "valid_loss", "accuracy", "time");
        fprintf(f, "%-6d ", s->epoch);
        if (isnan(s->train_loss))
            fprintf(f, "%-11s ", "-");
        else
            fprintf(f, "%-11.6f ", s->train_loss);
        fprintf(f, "%-11.6f %-9.4f ", s->valid_loss, s->accuracy);
        print_time(f, s->seconds);
        fputc('\n', f);
    }
    p->header_done = true;
    fflush(f);
}
