/*
 * error.c - the per-thread "last error" every cgrad call reports through.
 *
 * Library code never aborts on bad input: it records one message naming the
 * op (or file) and the problem, and returns NULL or a status. The message
 * lives in thread-local storage so threads do not see each other's errors.
 */
#include "cgrad_internal.h"

#include <stdarg.h>

static _Thread_local char last_message[512];
static _Thread_local cg_status last_status = CG_OK;

const char *cg_last_error(void) { return last_message; }

cg_status cg_last_status(void) { return last_status; }

void cg_clear_error(void) {
    last_message[0] = '\0';
    last_status = CG_OK;
}

cg_status cg_fail(cg_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_status = status;
    return status;
}
