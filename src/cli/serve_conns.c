/*
 * serve_conns.c - open connections, each with the clock of its request
 * (see serve_conns.h).
 */
#include "cli/serve_conns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    c->next = t->head;
    if (t->head) t->head->prev = c;
    t->head = c;
    t->open++;
    return c;
}

void cg_serve_conn_close(serve_conns *t, serve_conn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next) c->next->prev = c->prev;
    t->open--;
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

double cg_serve_conns_sweep(serve_conns *t, double now) {
    double next = -1.0;
    for (serve_conn *c = t->head; c; c = c->next) {
        if (c->cut || c->answering) continue;
        double due = c->clock + t->deadline_s;
        if (now < due) {
            if (next < 0 || due - now < next) next = due - now;
            continue;
        }
        if (c->started) send_timeout(t, c->fd);
        /* Both ways: the client sees the end of the answer, and the next
         * read libmicrohttpd makes sees the end of the stream. */
        shutdown(c->fd, SHUT_RDWR);
        c->cut = true;
    }
    return next;
}

void cg_serve_conns_clear(serve_conns *t) {
    while (t->head) cg_serve_conn_close(t, t->head);
}
