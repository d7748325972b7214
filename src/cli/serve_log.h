/*
 * serve_log.h - the server's stderr, rate-limited.
 *
 * Under a flood (thousands of connections a second over a limit, each of
 * which libmicrohttpd reports) a line per event would write megabytes of
 * stderr a second and slow the one thread that serves. So at most
 * SERVE_LOG_PER_S lines go out in any one second; the rest are counted and
 * reported as one line, "cgrad serve: ... K messages suppressed", before the
 * next line that is printed (or by cg_serve_log_flush).
 *
 * Called from the serving thread only (the server runs in one thread).
 */
#ifndef CGRAD_CLI_SERVE_LOG_H
#define CGRAD_CLI_SERVE_LOG_H

#include <stdarg.h>

#define SERVE_LOG_PER_S 10

/* "cgrad serve: " + the message (a newline is added if it lacks one). */
void cg_serve_vlog(const char *fmt, va_list ap);
void cg_serve_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Reports what was suppressed, if anything: called before exiting. */
void cg_serve_log_flush(void);

#endif
