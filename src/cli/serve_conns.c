/*
 * serve_conns.c - open connections, each with the clock of its request
 * (see serve_conns.h).
 */
#include "cli/serve_conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

double cg_serve_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

serve_conn *cg_serve_conn_open(serve_conns *t, int fd, double now) {
    serve_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->clock = now;
    c->prev = t->tail;
    if (t->tail)
        t->tail->next = c;
    else
        t->head = c;
    t->tail = c;
    t->open++;
    return c;
}

void cg_serve_conn_close(serve_conns *t, serve_conn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        t->tail = c->prev;
    t->open--;
    t->cut -= c->cut;
    free(c);
}

void cg_serve_conn_started(serve_conn *c, const char *uri) {
    c->started = true;
    c->query = strchr(uri, '?') != NULL;
}

void cg_serve_conn_answering(serve_conn *c) { c->answering = true; }

void cg_serve_conn_finished(serve_conn *c, double now) {
    c->started = c->answering = c->query = false;
    c->clock = now;
}

int cg_serve_conns_in_flight(const serve_conns *t) {
    int n = 0;
    for (const serve_conn *c = t->head; c; c = c->next) n += c->started && !c->cut;
    return n;
}

/*
 * The 408 is written straight to the socket: libmicrohttpd is only reading
 * on it (no answer is queued), so nothing of its own can be interleaved.
 * Best effort (MSG_DONTWAIT): the socket's send buffer is empty, and a
 * client that cannot take a few hundred bytes gets the close alone.
 */
static void send_timeout(const serve_conns *t, int fd) {
    char body[160], msg[400];
    int nb = snprintf(body, sizeof body,
                      "{\"error\":\"the request did not arrive in whole within %g s\"}\n",
                      t->deadline_s);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     nb, body);
    if (n > 0 && (size_t)n < sizeof msg)
        (void)send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int cg_serve_conns_live(const serve_conns *t) { return t->open - t->cut; }

static void cut(serve_conns *t, serve_conn *c) {
    /* Both ways: the client sees the end of any answer, and the next read
     * libmicrohttpd makes sees the end of the stream. */
    shutdown(c->fd, SHUT_RDWR);
    c->cut = true;
    t->cut++;
}

/* Whether bytes wait on fd that libmicrohttpd has not read yet: a request
 * that has arrived but is not yet seen, not an idle connection. */
static bool has_unread(int fd) {
    int n = 0;
    return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* The sooner of two waits in seconds, -1 being none. */
static double sooner(double a, double b) { return a < 0 || (b >= 0 && b < a) ? b : a; }

double cg_serve_conns_shed_idle(serve_conns *t, double now) {
    double next = -1.0;
    for (serve_conn *c = t->head; c && cg_serve_conns_live(t) > t->keep; c = c->next) {
        if (c->cut || c->started || c->answering) continue;
        /* A connection just opened (or just answered) may have its next
         * request on the way, even read but not yet parsed by MHD. */
        double idle_at = c->clock + t->idle_grace_s;
        if (now < idle_at)
            next = sooner(next, idle_at - now);
        else if (!has_unread(c->fd))
            cut(t, c);
    }
    return next;
}

double cg_serve_conns_sweep(serve_conns *t, double now) {
    double next = cg_serve_conns_shed_idle(t, now);
    for (serve_conn *c = t->head; c; c = c->next) {
        if (c->cut || c->answering) continue;
        double due = c->clock + t->deadline_s;
        if (now < due) {
            next = sooner(next, due - now);
            continue;
        }
        if (c->started) send_timeout(t, c->fd);
        cut(t, c);
    }
    return next;
}

void cg_serve_conns_clear(serve_conns *t) {
    while (t->head) cg_serve_conn_close(t, t->head);
}
