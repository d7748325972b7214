/*
 * serve_conns.h - the server's open connections and the deadline of each
 * one's request.
 *
 * libmicrohttpd's own timeout is an idle timeout: it restarts on every byte,
 * so a client that sends one byte every few seconds keeps a connection (and
 * its slot) for as long as it likes. Here every connection has a clock that
 * starts when it opens, and again when a request on it has been answered;
 * a request must be in whole (request line, headers, body) within
 * deadline_s of it, however its bytes trickle in. Past that a connection
 * that has started a request gets "408 Request Timeout" and is closed; one
 * that has not (an idle kept-alive connection) is just closed, as nginx
 * does. While an answer is being sent the clock is off: libmicrohttpd's
 * idle timeout covers a client that stops reading.
 *
 * When more than `keep` are open, those with no request in flight, no
 * bytes waiting to be read, and none started for idle_grace_s since they
 * opened or were last answered, are closed, oldest first (nginx does the same with idle kept-alive ones): an
 * idle socket costs its client nothing to reopen, and holding many of them
 * must not turn real requests away.
 *
 * Closing is done the only way the event loop allows from outside
 * libmicrohttpd: shutdown() of the socket, after which its next read sees
 * the end of the stream and it closes and forgets the connection itself.
 */
#ifndef CGRAD_CLI_SERVE_CONNS_H
#define CGRAD_CLI_SERVE_CONNS_H

#include <stdbool.h>

typedef struct serve_conn {
    int fd;
    double clock;   /* seconds (CLOCK_MONOTONIC) when the request's time began */
    bool started;   /* its request line is in: a request is in flight */
    bool query;     /* that request line's target has a query string ('?') */
    bool answering; /* an answer is queued: no deadline */
    bool cut;       /* shut down (past its deadline, or idle when full) */
    struct serve_conn *prev, *next;
} serve_conn;

typedef struct serve_conns {
    serve_conn *head, *tail; /* oldest first */
    int open;                /* connections open */
    int cut;                 /* of which cut, not yet closed by libmicrohttpd */
    int keep;                /* more than this open: idle ones are closed */
    double deadline_s;       /* for a whole request */
    double idle_grace_s;     /* a connection is idle after this long with nothing in flight */
} serve_conns;

/* Seconds on the monotonic clock. */
double cg_serve_now(void);

/* A connection that opened at `now` (NULL when out of memory). */
serve_conn *cg_serve_conn_open(serve_conns *t, int fd, double now);
/* Forgets c (which libmicrohttpd has closed) and frees it. */
void cg_serve_conn_close(serve_conns *t, serve_conn *c);
/* Its request line (target `uri`, as sent) has come in / its answer is
 * queued / its request is over. */
void cg_serve_conn_started(serve_conn *c, const char *uri);
void cg_serve_conn_answering(serve_conn *c);
void cg_serve_conn_finished(serve_conn *c, double now);
/* Connections open and not cut. */
int cg_serve_conns_live(const serve_conns *t);
/* Cuts idle connections, oldest first, until at most t->keep are live (see
 * above); returns the seconds until the next one becomes idle while more
 * are live, or -1. */
double cg_serve_conns_shed_idle(serve_conns *t, double now);
/* Connections with a request in flight (started, not yet over). */
int cg_serve_conns_in_flight(const serve_conns *t);
/* Cuts every connection past its deadline at `now` (see above); returns the
 * seconds until the next deadline, or -1 when no clock is running. */
double cg_serve_conns_sweep(serve_conns *t, double now);
/* Frees what is left (after the daemon has stopped). */
void cg_serve_conns_clear(serve_conns *t);

#endif
