/*
 * serve_log.c - at most SERVE_LOG_PER_S lines of stderr a second (see
 * serve_log.h): a fixed one-second window on the monotonic clock, the
 * lines over its budget counted and reported once the next line is let
 * through.
 */
#include "cli/serve_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static struct {
    time_t window;   /* the second (CLOCK_MONOTONIC) being counted */
    int lines;       /* lines printed in it */
    long suppressed; /* lines dropped since the last report */
} log_state = {-1, 0, 0};

static void report_suppressed(void) {
    if (log_state.suppressed > 0)
        fprintf(stderr, "cgrad serve: ... %ld messages suppressed (more than %d a second)\n",
                log_state.suppressed, SERVE_LOG_PER_S);
    log_state.suppressed = 0;
}

void cg_serve_vlog(const char *fmt, va_list ap) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec != log_state.window) {
        log_state.window = ts.tv_sec;
        log_state.lines = 0;
    }
    if (log_state.lines >= SERVE_LOG_PER_S) {
        log_state.suppressed++;
        return;
    }
    /* The report takes a line of the budget too. */
    if (log_state.suppressed > 0) {
        report_suppressed();
        log_state.lines++;
        if (log_state.lines >= SERVE_LOG_PER_S) {
            log_state.suppressed++;
            return;
        }
    }
    log_state.lines++;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    fprintf(stderr, "cgrad serve: %s%s", line, n && line[n - 1] == '\n' ? "" : "\n");
}

void cg_serve_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cg_serve_vlog(fmt, ap);
    va_end(ap);
}

void cg_serve_log_flush(void) { report_suppressed(); }
